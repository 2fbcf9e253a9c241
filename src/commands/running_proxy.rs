//! Make sure the proxy answers before a client (`code`, `ui`) talks to it: start it
//! through our service when one is installed, else as a detached background process
//! with a pid file and a log, and wait for its `/health`. What answers must prove it
//! holds the config's `APIKEY` ([`health::verify`]) before the key is sent to it.

use std::time::Duration;

use anyhow::Context as _;

use super::shared::block_on;
use super::Context;
use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::env_vars::EnvVars;
use crate::proxy::health;
use crate::service::runtime::{self, Owned};
use crate::service::{self, Layout, Manager, ServiceKind};

/// How long a client waits for a proxy it started to answer `/health`.
const START_WAIT: Duration = Duration::from_secs(20);

/// How long a client waits for `/health` when checking what answers.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The error for something at the proxy's address that failed [`health::verify`]:
/// names the port's owner where the system tells, and says the key was not sent.
pub(crate) fn not_our_proxy(
    base: &str,
    port: u16,
    why: &health::Unverified,
    has_key: bool,
    config_path: &std::path::Path,
) -> Diagnostic {
    let owner = crate::port_owner::listening_owner(port)
        .map(|o| format!(" Port {port} is held by {o}."))
        .unwrap_or_default();
    let what = match why {
        health::Unverified::NotOurs(answer) => format!("it is not ccr-setup's proxy ({answer})"),
        _ => "it answers like ccr-setup's proxy but cannot prove it holds this config's APIKEY (a proxy started with another config, an older version, or another program imitating it)".to_owned(),
    };
    let sent = if has_key {
        "the APIKEY was not sent to it"
    } else {
        "Claude Code's requests would go to it"
    };
    Diagnostic::new(format!("{base} answers, but {what}; {sent}.{owner}"))
    .with_hint(format!(
        "if that is not your proxy, stop it or set another PORT in {}; if it is an older or differently configured ccr-setup proxy, `ccr-setup stop` and run this again",
        config_path.display()
    ))
}

/// Health-check the proxy; if nothing answers, start it through our service when one is
/// installed, else detached with a pid file and a log, and wait for it.
pub(crate) fn ensure_proxy(ctx: &Context, cfg: &Config) -> anyhow::Result<()> {
    let out = ctx.out;
    let base = runtime::proxy_url(&cfg.host, cfg.port);
    let key = cfg.api_key.as_deref().filter(|k| !k.is_empty());
    match block_on(health::verify(&base, key, PROBE_TIMEOUT)) {
        Ok(_) => return Ok(()),
        Err(health::Unverified::NoAnswer) => {}
        Err(why) => {
            return Err(
                not_our_proxy(&base, cfg.port, &why, key.is_some(), &ctx.config_path).into(),
            )
        }
    }
    let layout = Layout::current();
    let service =
        Manager::detect().filter(|m| layout.service_file(*m, ServiceKind::Proxy).is_file());
    let mut detached_log = None;
    let how = if let Some(manager) = service {
        let commands = service::start_commands(manager, &layout, ServiceKind::Proxy);
        for cmd in &commands {
            out.progress(&format!("Starting the proxy through its service: {cmd}"));
        }
        service::run_all(&commands).context(
            Diagnostic::new("cannot start the proxy service").with_hint(
                "check it with `ccr-setup doctor`, or run `ccr-setup proxy` in a terminal",
            ),
        )?;
        format!("its {} service", manager.name())
    } else {
        let exe = std::env::current_exe().context("cannot locate the ccr-setup binary")?;
        let log = crate::paths::logs_dir().join("proxy.out.log");
        let pid_file = Owned::Proxy.pid_file(&crate::paths::run_dir());
        let env = vec![(
            EnvVars::CCR_SETUP_CONFIG.to_owned(),
            ctx.config_path.to_string_lossy().into_owned(),
        )];
        let pid = runtime::spawn_detached(&exe, &["proxy"], &env, &log, &pid_file)?;
        out.progress(&format!(
            "Started the proxy in the background (pid {pid}, log {}); `ccr-setup stop` stops it.",
            log.display()
        ));
        detached_log = Some(log.clone());
        format!("the background proxy (log {})", log.display())
    };
    let deadline = std::time::Instant::now() + START_WAIT;
    loop {
        match block_on(health::verify(&base, key, Duration::from_secs(1))) {
            Ok(_) => return Ok(()),
            Err(health::Unverified::NoAnswer) => {}
            Err(why) => {
                return Err(
                    not_our_proxy(&base, cfg.port, &why, key.is_some(), &ctx.config_path).into(),
                )
            }
        }
        if let Some(log) = &detached_log {
            // A proxy that already exited will not answer; say why at once.
            if !matches!(
                runtime::owned_pid(Owned::Proxy, &crate::paths::run_dir()),
                runtime::PidState::Running { .. }
            ) {
                let _ = std::fs::remove_file(Owned::Proxy.pid_file(&crate::paths::run_dir()));
                return Err(Diagnostic::new(format!(
                    "the proxy exited right after starting; last lines of {}:\n{}",
                    log.display(),
                    crate::fsutil::tail_lines(log, 10)
                ))
                .with_hint("run `ccr-setup proxy` in a terminal to see why")
                .into());
            }
        }
        if std::time::Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    Err(Diagnostic::new(format!(
        "the proxy did not answer {base}/health within {}s after starting {how}",
        START_WAIT.as_secs()
    ))
    .with_hint("see the log, or run `ccr-setup proxy` in a terminal to see why")
    .into())
}
