//! Step `proxy`: once everything is ready, restart our proxy service when `init`
//! installed one, else replace this process with `ccr-setup proxy` (same pid).

use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde_json::json;

use super::{Context, Outcome, Step};
use crate::config::Config;
use crate::diagnostic::{one_line, Diagnostic};
use crate::output::Printer;
use crate::service;

/// Restart our proxy service (so it serves with the current config) instead of
/// running a second proxy here. None when the service is not installed.
pub(super) fn restart_service(config: Option<&Config>, out: &Printer) -> Option<Outcome> {
    let manager = service::Manager::detect()?;
    let layout = service::Layout::current();
    let kind = service::ServiceKind::Proxy;
    if !layout.service_file(manager, kind).is_file() {
        return None;
    }
    let start = Instant::now();
    let name = kind.service_name(manager);
    // systemd's `start` leaves a running unit alone; `restart` picks up the new config.
    let commands = match manager {
        service::Manager::Systemd => vec![service::ServiceCommand::new(
            "systemctl",
            &["--user", "restart", &name],
        )],
        service::Manager::Launchd => service::start_commands(manager, &layout, kind),
    };
    if let Err(e) = service::run_all(&commands) {
        let d = Diagnostic::new(one_line(&e)).with_hint(format!(
            "check {name} with `ccr-setup doctor`, or run `ccr-setup proxy` in the foreground"
        ));
        out.step_fail(Step::Proxy.name(), &d, start.elapsed());
        return Some(Outcome::Failed);
    }
    let listen = config
        .map(|c| format!("http://{}:{}", c.host, c.port))
        .unwrap_or_else(|| "its configured address".to_owned());
    out.step_ok(
        Step::Proxy.name(),
        &format!("restarted our service {name}; it listens on {listen}"),
        start.elapsed(),
        json!({"service": name, "listen": listen}),
    );
    Some(Outcome::Success)
}

/// Replace this process with the proxy (same pid), as `ccr-setup proxy` would run.
pub(super) fn exec(ctx: &Context, out: &Printer) -> anyhow::Result<Outcome> {
    use std::os::unix::process::CommandExt;
    if !ctx.config_path.exists() {
        let d = Diagnostic::new(format!("no config at {}", ctx.config_path.display()))
            .with_hint("run `ccr-setup init` to write one, or pass --no-exec");
        out.step_fail(Step::Proxy.name(), &d, Duration::ZERO);
        return Ok(Outcome::Failed);
    }
    let exe = std::env::current_exe().context("cannot find our own executable")?;
    out.line(&format!(
        "→ proxy      exec `{} proxy --config {}`",
        exe.display(),
        ctx.config_path.display()
    ));
    let err = std::process::Command::new(&exe)
        .arg("proxy")
        .arg("--config")
        .arg(&ctx.config_path)
        .exec();
    Err(err).with_context(|| format!("cannot exec {}", exe.display()))
}
