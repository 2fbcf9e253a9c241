//! Helpers more than one command needs, so commands never import from each other:
//! the client config and Claude Code's environment (`code`, `env`, `status`), the
//! service-manager choice (`init`, `uninstall`), stopping our pid-file processes
//! (`stop`, `uninstall`) and a runtime for the few async calls of sync commands.

use std::path::Path;
use std::time::Duration;

use crate::cli::ServiceManagerChoice;
use crate::config::{is_loopback_host, Config, ConfigError, ConfigFile, Join};
use crate::env_vars::EnvVars;
use crate::service::runtime::{self, Owned, PidState};
use crate::service::Manager;

/// The bearer token sent to a proxy that has no `APIKEY` (it accepts any token then;
/// Claude Code only needs one to skip its login).
pub const LOCAL_TOKEN: &str = "ccr-setup-local";

/// The environment for Claude Code, in a stable order. On a laptop joined to a team
/// server, Claude Code talks to the server's https URL with the client key (TLS
/// proves the server, so the key itself is sent); else to the local proxy.
pub fn claude_env(cfg: &Config) -> Vec<(&'static str, String)> {
    let join = Join::of(cfg);
    let (base_url, token) = match &join {
        Some(j) => (j.url.clone(), j.key.clone()),
        None => (
            runtime::proxy_url(&cfg.host, cfg.port),
            cfg.api_key
                .clone()
                .unwrap_or_else(|| LOCAL_TOKEN.to_owned()),
        ),
    };
    let mut env = vec![
        (EnvVars::ANTHROPIC_BASE_URL, base_url),
        (EnvVars::ANTHROPIC_AUTH_TOKEN, token),
        // Empty, so a key in the user's shell is not sent as x-api-key next to the token.
        (EnvVars::ANTHROPIC_API_KEY, String::new()),
        (EnvVars::API_TIMEOUT_MS, cfg.api_timeout_ms.to_string()),
        (EnvVars::DISABLE_TELEMETRY, "1".to_owned()),
        (
            EnvVars::CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC,
            "1".to_owned(),
        ),
        // Keeps the prompt prefix byte-stable so a local server reuses its KV cache.
        (EnvVars::CLAUDE_CODE_ATTRIBUTION_HEADER, "0".to_owned()),
        // Its other modes add a `<total_tokens>N tokens left</total_tokens>` block to the
        // system prompt and after every tool result (a per-turn figure) and are switched
        // on by Anthropic's feature flags; `off` keeps them out of the local prompt.
        (EnvVars::CLAUDE_CODE_TOTAL_TOKENS_REMINDER, "off".to_owned()),
    ];
    // Claude Code raises any value under 100,000 to 100,000 (and 2.1.332 warns about it
    // at every start), so for a smaller window it would only mislead: the proxy's
    // context editing keeps those sessions within the window instead. A larger local
    // window does get threshold compaction from it.
    if let Some(window) = local_default_window(cfg).filter(|w| *w >= AUTO_COMPACT_FLOOR) {
        env.push((EnvVars::CLAUDE_CODE_AUTO_COMPACT_WINDOW, window.to_string()));
    }
    // Claude Code 2.1.197 sends subagent (Task) requests with the main model's name, so
    // they would share the local slot and evict the main conversation's prompt cache.
    // Named as Haiku they take the proxy's background route instead.
    if cfg.router.background.is_some() {
        env.push((
            EnvVars::CLAUDE_CODE_SUBAGENT_MODEL,
            crate::provision::router_config::BACKGROUND_CLOUD_MODEL.to_owned(),
        ));
    }
    // Claude Code (Node) trusts only its own CA list: a private CA (Caddy's `tls
    // internal`) is added this way.
    if let Some(ca) = join.and_then(|j| j.ca_cert) {
        env.push((EnvVars::NODE_EXTRA_CA_CERTS, ca.display().to_string()));
    }
    env
}

/// The team server this laptop joined, when the config at `path` records one. Fails
/// when the config is joined but does not resolve (the key is missing, say), so the
/// command does not fall back to a local proxy that is not there.
pub(crate) fn joined(path: &Path) -> anyhow::Result<Option<Join>> {
    match ConfigFile::load(path) {
        Ok(f) if Join::is_joined(&f.doc) => Ok(Join::of(&f.resolve()?)),
        _ => Ok(None),
    }
}

/// The smallest `CLAUDE_CODE_AUTO_COMPACT_WINDOW` Claude Code honours (2.1.197:
/// `Math.max(1e5, value)`; 2.1.332: "below_minimum").
pub const AUTO_COMPACT_FLOOR: u32 = 100_000;

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

/// A small runtime for the few async calls (health, Ollama) the sync commands make.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
        .block_on(f)
}

/// The service manager from `--service-manager`, else detected.
pub(crate) fn resolve_manager(choice: Option<ServiceManagerChoice>) -> Option<Manager> {
    match choice {
        Some(ServiceManagerChoice::Launchd) => Some(Manager::Launchd),
        Some(ServiceManagerChoice::Systemd) => Some(Manager::Systemd),
        Some(ServiceManagerChoice::None) => None,
        None => Manager::detect(),
    }
}

/// Stop one of our processes recorded in a pid file. Returns a line to print, if any.
pub(crate) fn stop_owned(what: Owned, run_dir: &std::path::Path) -> anyhow::Result<Option<String>> {
    let file = what.pid_file(run_dir);
    let name = match what {
        Owned::Proxy => "proxy",
        Owned::Ollama => "Ollama",
    };
    Ok(match runtime::owned_pid(what, run_dir) {
        PidState::None => None,
        PidState::Running { pid } => {
            runtime::terminate(pid, Duration::from_secs(10))?;
            let _ = std::fs::remove_file(&file);
            Some(format!("Stopped the {name} ccr-setup started (pid {pid})."))
        }
        PidState::Stale { pid } => {
            let _ = std::fs::remove_file(&file);
            Some(format!(
                "The {name} ccr-setup started{} is no longer running; removed its pid file.",
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
            ))
        }
        PidState::Foreign { pid, command } => {
            let _ = std::fs::remove_file(&file);
            Some(format!(
                "Pid {pid} from {} now belongs to another program ({command}); left it alone and removed the stale pid file.",
                file.display()
            ))
        }
    })
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
    fn local_default_gets_a_local_token_and_no_compact_window_under_claude_codes_floor() {
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
        // Claude Code would read 32768 as its 100k floor: not set.
        assert_eq!(get("CLAUDE_CODE_AUTO_COMPACT_WINDOW"), None);
        assert_eq!(get("CLAUDE_CODE_ATTRIBUTION_HEADER"), Some("0"));
        assert_eq!(get("CLAUDE_CODE_TOTAL_TOKENS_REMINDER"), Some("off"));
        // No background route: subagents keep the main model (and the local route).
        assert_eq!(get("CLAUDE_CODE_SUBAGENT_MODEL"), None);
    }

    #[test]
    fn a_joined_laptop_talks_to_the_server_with_its_key() {
        let mut doc = serde_json::Value::Null;
        crate::provision::team_config::apply_join(
            &mut doc,
            "https://team.example.com",
            Some("/etc/team-ca.crt"),
        )
        .unwrap();
        let c = ConfigFile::new(Path::new("/c.json"), doc)
            .resolve_with(&|n| (n == "CCR_SETUP_CLIENT_KEY").then(|| "ccr_k".into()))
            .unwrap();
        let env = claude_env(&c);
        let get = |k: &str| env.iter().find(|(n, _)| *n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("ANTHROPIC_BASE_URL"), Some("https://team.example.com"));
        assert_eq!(get("ANTHROPIC_AUTH_TOKEN"), Some("ccr_k"));
        assert_eq!(get("ANTHROPIC_API_KEY"), Some(""));
        assert_eq!(get("NODE_EXTRA_CA_CERTS"), Some("/etc/team-ca.crt"));
    }

    #[test]
    fn a_local_window_of_100k_or_more_gets_the_compact_window() {
        let c = cfg(json!({
            "Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["m"], "context_window": 131072}],
            "Router": {"default": "ollama,m"}
        }));
        let env = claude_env(&c);
        assert!(env.contains(&("CLAUDE_CODE_AUTO_COMPACT_WINDOW", "131072".to_owned())));
    }

    #[test]
    fn a_background_route_takes_the_subagents() {
        let c = cfg(json!({
            "Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["m"]},
                          {"name": "anthropic", "api_base_url": "https://api.anthropic.com/v1/messages", "models": ["claude-haiku-4-5"]}],
            "Router": {"default": "ollama,m", "background": "anthropic,claude-haiku-4-5"}
        }));
        let env = claude_env(&c);
        assert!(env.contains(&("CLAUDE_CODE_SUBAGENT_MODEL", "claude-haiku-4-5".to_owned())));
        // …and the proxy routes a request with that name to the background entry.
        let req: crate::proxy::wire::anthropic::MessagesRequest = serde_json::from_value(json!({
            "model": "claude-haiku-4-5",
            "messages": [{"role": "user", "content": "List the Python files."}]
        }))
        .unwrap();
        let d = crate::proxy::route::decide(&c, &req, || 10).unwrap();
        assert_eq!(d.target.to_string(), "anthropic,claude-haiku-4-5");
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
