//! `ccr-setup status`: Ollama, the proxy, the services and the config on one screen
//! (or as JSON). Liveness comes from the servers' own answers, not from pid files.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

use super::{Context, Outcome};
use crate::cli::StatusArgs;
use crate::config::{DEFAULT_HOST, DEFAULT_PORT};
use crate::ledger::LedgerHealth;
use crate::ollama::{LoadedModel, OllamaClient};
use crate::proxy::health::{self, Health};
use crate::service::runtime::{self, Owned, PidState};
use crate::service::{self, Layout, Manager, ServiceState};

#[derive(Debug, Serialize)]
struct OllamaStatus {
    url: String,
    up: bool,
    version: Option<String>,
    loaded: Vec<LoadedModel>,
    started_by_ccr_setup: PidState,
}

#[derive(Debug, Serialize)]
struct ProxyStatus {
    url: String,
    port: u16,
    up: bool,
    health: Option<Health>,
    started_by_ccr_setup: PidState,
}

#[derive(Debug, Serialize)]
struct Status {
    config: serde_json::Value,
    ollama: OllamaStatus,
    proxy: ProxyStatus,
    service_manager: Option<Manager>,
    services: Vec<ServiceState>,
}

fn gather(ctx: &Context) -> Status {
    // The port and host come from the config; a broken config still gets a status.
    let (host, port, config) = match super::shared::load_client_config(&ctx.config_path) {
        Ok(cfg) => (
            cfg.host.clone(),
            cfg.port,
            json!({"path": ctx.config_path, "exists": true, "valid": true}),
        ),
        Err(e) => (
            DEFAULT_HOST.to_owned(),
            DEFAULT_PORT,
            json!({"path": ctx.config_path, "exists": ctx.config_path.exists(), "valid": false, "error": format!("{e:#}")}),
        ),
    };
    let run_dir = crate::paths::run_dir();
    let client = OllamaClient::new(crate::ollama::base_url_from_env())
        .with_probe_timeout(Duration::from_secs(2));
    let proxy_url = runtime::proxy_url(&host, port);
    let (version, loaded, health) = super::shared::block_on(async {
        let version = client.version().await.ok();
        let loaded = if version.is_some() {
            client.ps().await.unwrap_or_default()
        } else {
            Vec::new()
        };
        let health = health::fetch(&proxy_url, Duration::from_secs(2)).await;
        (version, loaded, health)
    });
    let manager = Manager::detect();
    let layout = Layout::current();
    Status {
        config,
        ollama: OllamaStatus {
            url: client.base_url().to_string(),
            up: version.is_some(),
            version,
            loaded,
            started_by_ccr_setup: runtime::owned_pid(Owned::Ollama, &run_dir),
        },
        proxy: ProxyStatus {
            url: proxy_url,
            port,
            up: health.is_some(),
            health,
            started_by_ccr_setup: runtime::owned_pid(Owned::Proxy, &run_dir),
        },
        service_manager: manager,
        services: manager
            .map(|m| service::inspect(m, &layout))
            .unwrap_or_default(),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "up"
    } else {
        "down"
    }
}

fn pid_note(p: &PidState) -> String {
    match p {
        PidState::Running { pid } => format!(" (started by ccr-setup, pid {pid})"),
        PidState::Stale { .. } => " (stale pid file)".to_owned(),
        _ => String::new(),
    }
}

/// The proxy line: up or down, and what its `/health` says (version, uptime, requests).
fn proxy_line(p: &ProxyStatus) -> String {
    let mut line = format!("Proxy    {} at {}", yes_no(p.up), p.url);
    if let Some(h) = &p.health {
        // Whatever holds the port wrote this: one sanitised field.
        line.push_str(&format!(", version {}", crate::sanitize::field(&h.version)));
        if let Some(u) = h.uptime_secs {
            line.push_str(&format!(", up {}", uptime(u)));
        }
        if let Some(r) = h.requests {
            line.push_str(&format!(", {r} requests served"));
        }
        if let Some(n) = h.quality_fallback_sessions.filter(|n| *n > 0) {
            line.push_str(&format!(
                ", {n} session(s) on the cloud for quality (their local answers kept failing)"
            ));
        }
    }
    line + &pid_note(&p.started_by_ccr_setup)
}

/// `2m5s`, `3h4m`, `2d3h`: the two largest units.
fn uptime(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    match (d, h) {
        (0, 0) => format!("{m}m{s}s"),
        (0, _) => format!("{h}h{m}m"),
        _ => format!("{d}d{h}h"),
    }
}

/// The proxy's usage ledger, from its `/health` answer: rows written and dropped, and
/// why rows are being dropped right now, if they are.
fn ledger_line(ledger: &LedgerHealth) -> String {
    if !ledger.enabled {
        return "Ledger   off (LEDGER: false in the config)".to_owned();
    }
    let mut line = format!(
        "Ledger   {} rows written, {} dropped",
        ledger.written, ledger.dropped
    );
    if let Some(problem) = &ledger.problem {
        line.push_str(&format!(
            "\n         problem: {problem} (requests are still served)"
        ));
    }
    line
}

pub fn run(ctx: &Context, args: StatusArgs) -> anyhow::Result<Outcome> {
    let s = gather(ctx);
    let out = ctx.out;
    if args.json {
        out.document(&format!("{}\n", serde_json::to_string_pretty(&s)?));
        return Ok(Outcome::Success);
    }
    let o = &s.ollama;
    let version = o
        .version
        .as_ref()
        .map(|v| format!(", version {}", crate::sanitize::field(v)))
        .unwrap_or_default();
    out.line(&format!(
        "Ollama   {} at {}{version}{}",
        yes_no(o.up),
        o.url,
        pid_note(&o.started_by_ccr_setup)
    ));
    if o.up && o.loaded.is_empty() {
        out.line("         no model loaded");
    }
    for m in &o.loaded {
        let ctx_len = m
            .context_length
            .map_or("unknown".to_owned(), |c| c.to_string());
        out.line(&format!(
            "         loaded: {} (context {ctx_len})",
            crate::sanitize::field(&m.name)
        ));
    }
    let p = &s.proxy;
    out.line(&proxy_line(p));
    if let Some(ledger) = p.health.as_ref().and_then(|h| h.ledger.as_ref()) {
        out.line(&ledger_line(ledger));
    }
    match s.service_manager {
        None => out.line("Services none (no launchd or running systemd here)"),
        Some(m) => {
            for st in &s.services {
                let state = match (st.installed, st.loaded) {
                    (false, _) => "not installed".to_owned(),
                    (true, Some(true)) => "loaded".to_owned(),
                    (true, Some(false)) => "installed, not loaded".to_owned(),
                    (true, None) => format!("installed ({} not answering)", m.name()),
                };
                out.line(&format!("Service  {:<24} {state}", st.name));
                for problem in &st.problems {
                    out.line(&format!("         problem: {problem}"));
                }
            }
        }
    }
    let valid = s.config["valid"].as_bool().unwrap_or(false);
    out.line(&format!(
        "Config   {}{}",
        ctx.config_path.display(),
        if valid {
            String::new()
        } else if s.config["exists"].as_bool() == Some(false) {
            " (missing: run `ccr-setup init`)".to_owned()
        } else {
            " (invalid: run `ccr-setup config validate`)".to_owned()
        }
    ));
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ledger(enabled: bool, written: u64, dropped: u64, problem: Option<&str>) -> LedgerHealth {
        LedgerHealth {
            enabled,
            written,
            dropped,
            problem: problem.map(str::to_owned),
        }
    }

    #[test]
    fn ledger_line_shows_counts_problem_and_off() {
        assert_eq!(
            ledger_line(&ledger(true, 12, 0, None)),
            "Ledger   12 rows written, 0 dropped"
        );
        assert_eq!(
            ledger_line(&ledger(true, 3, 7, Some("database is locked"))),
            "Ledger   3 rows written, 7 dropped\n         problem: database is locked \
             (requests are still served)"
        );
        assert_eq!(
            ledger_line(&ledger(false, 0, 0, None)),
            "Ledger   off (LEDGER: false in the config)"
        );
    }

    #[test]
    fn the_proxy_line_names_sessions_moved_to_the_cloud_for_quality() {
        let config = crate::proxy::test_support::config(json!({"default": "ollama,gpt-oss:20b"}));
        let ledger = LedgerHealth {
            enabled: true,
            written: 0,
            dropped: 0,
            problem: None,
        };
        let mut health = Health::of(
            &config,
            std::time::Duration::from_secs(60),
            3,
            ledger,
            false,
        );
        let status = |health: &Health| ProxyStatus {
            url: "http://127.0.0.1:3456".into(),
            port: 3456,
            up: true,
            health: Some(health.clone()),
            started_by_ccr_setup: PidState::None,
        };
        assert!(!proxy_line(&status(&health)).contains("quality"));
        health.quality_fallback_sessions = Some(2);
        assert!(
            proxy_line(&status(&health)).contains("2 session(s) on the cloud for quality"),
            "{}",
            proxy_line(&status(&health))
        );
    }

    #[test]
    fn uptime_in_its_two_largest_units() {
        assert_eq!(uptime(125), "2m5s");
        assert_eq!(uptime(3 * 3600 + 4 * 60 + 5), "3h4m");
        assert_eq!(uptime(2 * 86_400 + 3 * 3600 + 9), "2d3h");
    }
}
