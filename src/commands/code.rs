//! `ccr-setup code [ARGS…]`: make sure the proxy answers, then exec `claude` with the
//! environment that points it at the proxy. `ccr-setup env` prints the same environment;
//! [`claude_env`] builds it for both.

use std::os::unix::process::CommandExt;
use std::time::Duration;

use anyhow::{bail, Context as _};

use super::shared::{block_on, claude_env, load_client_config};
use super::{Context, Outcome};
use crate::cli::CodeArgs;
use crate::config::Config;
use crate::env_vars::EnvVars;
use crate::service::runtime::{self, Owned};
use crate::service::{self, Layout, Manager, ServiceKind};

/// How long `code` waits for a proxy it started to answer `/health`.
const START_WAIT: Duration = Duration::from_secs(20);

pub fn run(ctx: &Context, args: CodeArgs) -> anyhow::Result<Outcome> {
    let cfg = load_client_config(&ctx.config_path)?;
    let claude = which::which("claude").map_err(|_| {
        anyhow::anyhow!(
            "Claude Code (`claude`) is not on PATH; run `ccr-setup init`, or `npm install -g @anthropic-ai/claude-code`"
        )
    })?;
    ensure_proxy(ctx, &cfg)?;
    let err = std::process::Command::new(&claude)
        .args(&args.args)
        .envs(claude_env(&cfg))
        .exec();
    Err(err).with_context(|| format!("cannot run {}", claude.display()))
}

/// Health-check the proxy; if nothing answers, start it through our service when one is
/// installed, else detached with a pid file and a log, and wait for it.
pub(crate) fn ensure_proxy(ctx: &Context, cfg: &Config) -> anyhow::Result<()> {
    let base = runtime::proxy_url(&cfg.host, cfg.port);
    if block_on(crate::proxy::health::fetch(&base, Duration::from_secs(2))).is_some() {
        return Ok(());
    }
    let layout = Layout::current();
    let service =
        Manager::detect().filter(|m| layout.service_file(*m, ServiceKind::Proxy).is_file());
    let mut detached_log = None;
    let how = if let Some(manager) = service {
        for cmd in service::start_commands(manager, &layout, ServiceKind::Proxy) {
            if !ctx.quiet {
                eprintln!("Starting the proxy through its service: {cmd}");
            }
            let r = service::run_command(&cmd)?;
            if !r.success {
                bail!("`{cmd}` failed: {}", r.stderr.trim());
            }
        }
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
        if !ctx.quiet {
            eprintln!(
                "Started the proxy in the background (pid {pid}, log {}); `ccr-setup stop` stops it.",
                log.display()
            );
        }
        detached_log = Some(log.clone());
        format!("the background proxy (log {})", log.display())
    };
    let deadline = std::time::Instant::now() + START_WAIT;
    loop {
        if block_on(crate::proxy::health::fetch(&base, Duration::from_secs(1))).is_some() {
            return Ok(());
        }
        if let Some(log) = &detached_log {
            // A proxy that already exited will not answer; say why at once.
            if !matches!(
                runtime::owned_pid(Owned::Proxy, &crate::paths::run_dir()),
                runtime::PidState::Running { .. }
            ) {
                let _ = std::fs::remove_file(Owned::Proxy.pid_file(&crate::paths::run_dir()));
                bail!(
                    "the proxy exited right after starting; last lines of {}:\n{}",
                    log.display(),
                    crate::fsutil::tail_lines(log, 10)
                );
            }
        }
        if std::time::Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(150));
    }
    bail!(
        "the proxy did not answer {base}/health within {}s after starting {how}; see the log, or run `ccr-setup proxy` in a terminal to see why",
        START_WAIT.as_secs()
    )
}
