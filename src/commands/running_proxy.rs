//! Make sure the proxy answers before a client (`code`, `ui`) talks to it: start it
//! through our service when one is installed, else as a detached background process
//! with a pid file and a log, and wait for its `/health`.

use std::time::Duration;

use anyhow::Context as _;

use super::shared::block_on;
use super::Context;
use crate::config::Config;
use crate::diagnostic::Diagnostic;
use crate::env_vars::EnvVars;
use crate::service::runtime::{self, Owned};
use crate::service::{self, Layout, Manager, ServiceKind};

/// How long a client waits for a proxy it started to answer `/health`.
const START_WAIT: Duration = Duration::from_secs(20);

/// What answers at the proxy's address.
enum ProxyAt {
    /// Nothing (refused, or no answer in time).
    Nothing,
    /// Our proxy (its `/health` shape), accepting our key when the config has one.
    Ours,
    /// Something else: what it answered.
    Stranger(String),
    /// Our proxy, but it refused our `APIKEY`.
    KeyRefused(u16),
}

/// Ask `base` for `/health` and, with an `APIKEY`, whether `/v1/models` accepts it.
async fn probe(base: &str, api_key: Option<&str>) -> ProxyAt {
    let Ok(client) = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .no_proxy()
        .build()
    else {
        return ProxyAt::Nothing;
    };
    let Ok(resp) = client.get(format!("{base}/health")).send().await else {
        return ProxyAt::Nothing;
    };
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    if !status.is_success() || crate::proxy::health::Health::parse(&body).is_none() {
        let start = String::from_utf8_lossy(&body[..body.len().min(60)]).into_owned();
        return ProxyAt::Stranger(format!("HTTP {} on /health: {start:?}", status.as_u16()));
    }
    if let Some(key) = api_key {
        let answer = client
            .get(format!("{base}/v1/models"))
            .header("x-api-key", key)
            .send()
            .await;
        if let Ok(r) = answer {
            if matches!(r.status().as_u16(), 401 | 403) {
                return ProxyAt::KeyRefused(r.status().as_u16());
            }
        }
    }
    ProxyAt::Ours
}

/// Health-check the proxy; if nothing answers, start it through our service when one is
/// installed, else detached with a pid file and a log, and wait for it.
pub(crate) fn ensure_proxy(ctx: &Context, cfg: &Config) -> anyhow::Result<()> {
    let out = ctx.printer(false);
    let base = runtime::proxy_url(&cfg.host, cfg.port);
    match block_on(probe(&base, cfg.api_key.as_deref())) {
        ProxyAt::Ours => return Ok(()),
        ProxyAt::Nothing => {}
        ProxyAt::Stranger(what) => {
            return Err(Diagnostic::new(format!(
                "{base} answers, but not as ccr-setup's proxy ({what}); Claude Code's requests would go to it"
            ))
            .with_hint(format!(
                "stop what listens on port {}, or set another PORT in {}",
                cfg.port,
                ctx.config_path.display()
            ))
            .into())
        }
        ProxyAt::KeyRefused(status) => {
            return Err(Diagnostic::new(format!(
                "the ccr-setup proxy at {base} refused the APIKEY of {} (HTTP {status}): it runs with another config",
                ctx.config_path.display()
            ))
            .with_hint("restart it with this one: `ccr-setup stop`, then run this again")
            .into())
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
