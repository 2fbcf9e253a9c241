//! `ccr-setup code [ARGS…]`: make sure the proxy answers, then exec `claude` with the
//! environment that points it at the proxy. `ccr-setup env` prints the same environment;
//! [`claude_env`] builds it for both.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context as _};

use super::{Context, Outcome};
use crate::cli::CodeArgs;
use crate::config::{is_loopback_host, Config, ConfigError, ConfigFile};
use crate::service::runtime::{self, Owned};
use crate::service::{self, Layout, Manager, ServiceKind};

/// The bearer token sent to a proxy that has no `APIKEY` (it accepts any token then;
/// Claude Code only needs one to skip its login).
pub const LOCAL_TOKEN: &str = "ccr-setup-local";

/// How long `code` waits for a proxy it started to answer `/health`.
const START_WAIT: Duration = Duration::from_secs(20);

/// The environment for Claude Code, in a stable order.
pub fn claude_env(cfg: &Config) -> Vec<(&'static str, String)> {
    let mut env = vec![
        (
            "ANTHROPIC_BASE_URL",
            runtime::proxy_url(&cfg.host, cfg.port),
        ),
        (
            "ANTHROPIC_AUTH_TOKEN",
            cfg.api_key
                .clone()
                .unwrap_or_else(|| LOCAL_TOKEN.to_owned()),
        ),
        // Empty, so a key in the user's shell is not sent as x-api-key next to the token.
        ("ANTHROPIC_API_KEY", String::new()),
        ("API_TIMEOUT_MS", cfg.api_timeout_ms.to_string()),
        ("DISABLE_TELEMETRY", "1".to_owned()),
        ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_owned()),
        // Keeps the prompt prefix byte-stable so a local server reuses its KV cache.
        ("CLAUDE_CODE_ATTRIBUTION_HEADER", "0".to_owned()),
        // Its other modes add a `<total_tokens>N tokens left</total_tokens>` block to the
        // system prompt and after every tool result (a per-turn figure) and are switched
        // on by Anthropic's feature flags; `off` keeps them out of the local prompt.
        ("CLAUDE_CODE_TOTAL_TOKENS_REMINDER", "off".to_owned()),
    ];
    if let Some(window) = local_default_window(cfg) {
        env.push(("CLAUDE_CODE_AUTO_COMPACT_WINDOW", window.to_string()));
    }
    env
}

/// The default route's context window, when that provider runs on this machine:
/// Claude Code then compacts before the local server would truncate.
fn local_default_window(cfg: &Config) -> Option<u32> {
    let provider = cfg.provider(&cfg.router.default.provider)?;
    let url = url::Url::parse(&provider.api_base_url).ok()?;
    let host = url.host_str()?;
    if !is_loopback_host(host) {
        return None;
    }
    provider
        .context_window
        .or_else(|| (provider.name == "ollama").then_some(cfg.ollama.context_length))
}

/// Load the config for a client of the proxy. Cloud keys referenced as `$VAR` matter to
/// the proxy, not to `code`/`env`, so an unset provider key does not stop them.
pub(crate) fn load_client_config(path: &Path) -> anyhow::Result<Config> {
    let file = ConfigFile::load(path)?;
    match file.resolve() {
        Ok(cfg) => Ok(cfg),
        Err(ConfigError::Invalid { problems, .. })
            if problems.iter().all(|p| {
                p.path.starts_with("Providers[")
                    && p.path.ends_with(".api_key")
                    && p.message.contains("is not set")
            }) =>
        {
            Ok(file.resolve_with(&|name| Some(std::env::var(name).unwrap_or_default()))?)
        }
        Err(e) => Err(e.into()),
    }
}

/// The last `n` lines of a log file, for error messages.
fn log_tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A small runtime for the few async calls (health, Ollama) the sync commands make.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
        .block_on(f)
}

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
fn ensure_proxy(ctx: &Context, cfg: &Config) -> anyhow::Result<()> {
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
            "CCR_SETUP_CONFIG".to_owned(),
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
                    log_tail(log, 10)
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cfg(doc: serde_json::Value) -> Config {
        ConfigFile::new(Path::new("/c.json"), doc)
            .resolve_with(&|_| None)
            .unwrap()
    }

    #[test]
    fn local_default_gets_the_compact_window_and_a_local_token() {
        let c = cfg(json!({
            "PORT": 4000,
            "Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["m"], "context_window": 32768}],
            "Router": {"default": "ollama,m"}
        }));
        let env = claude_env(&c);
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ANTHROPIC_BASE_URL"), Some("http://127.0.0.1:4000"));
        assert_eq!(get("ANTHROPIC_AUTH_TOKEN"), Some(LOCAL_TOKEN));
        assert_eq!(get("ANTHROPIC_API_KEY"), Some(""));
        assert_eq!(get("API_TIMEOUT_MS"), Some("600000"));
        assert_eq!(get("CLAUDE_CODE_AUTO_COMPACT_WINDOW"), Some("32768"));
        assert_eq!(get("CLAUDE_CODE_ATTRIBUTION_HEADER"), Some("0"));
        assert_eq!(get("CLAUDE_CODE_TOTAL_TOKENS_REMINDER"), Some("off"));
    }

    #[test]
    fn cloud_default_has_no_compact_window_and_apikey_is_the_token() {
        let c = cfg(json!({
            "APIKEY": "proxy-secret",
            "Providers": [{"name": "a", "api_base_url": "https://api.anthropic.com/v1/messages", "models": ["m"], "context_window": 200000}],
            "Router": {"default": "a,m"}
        }));
        let env = claude_env(&c);
        assert!(env
            .iter()
            .all(|(k, _)| *k != "CLAUDE_CODE_AUTO_COMPACT_WINDOW"));
        assert!(env.contains(&("ANTHROPIC_AUTH_TOKEN", "proxy-secret".to_owned())));
    }
}
