//! `ccr-setup statusline`: the line under Claude Code's prompt (see
//! [`crate::statusline`]), and `--install` to set it in Claude Code's settings.
//!
//! Claude Code runs the command after every message, so it must be quick: one
//! loopback request to the proxy with a short timeout (and, with an `APIKEY`, one more
//! every 30 s to check the proxy proves it holds the key before the key is sent), one read of today's ledger
//! rows, no retries. Nothing it meets is an error worth a non-zero exit: a proxy that
//! is down, a config that does not resolve or a missing ledger just shortens the line.
//! On a laptop joined to a team server the line is the server's report of the session
//! (`/v1/ccr/usage?session=…`, one https request within 800 ms), else a plain line.

use std::io::{IsTerminal, Read};
use std::time::Duration;

use super::{Context, Outcome};
use crate::cli::StatuslineArgs;
use crate::config::{Config, ConfigFile, DEFAULT_HOST, DEFAULT_PORT};
use crate::ledger::{self, StatsOptions};
use crate::output::Printer;
use crate::proxy::health;
use crate::proxy::sessions::SessionReport;
use crate::statusline::{self, ClaudeStatus, InstallOutcome};

/// How long the proxy may take to answer before the line says it is not running.
const PROXY_TIMEOUT: Duration = Duration::from_millis(300);

/// How long a team server may take (TLS over the LAN) before the line says it is not
/// answering: Claude Code waits for the status line after every message.
const TEAM_TIMEOUT: Duration = Duration::from_millis(800);

/// The most of Claude Code's JSON read from stdin.
const MAX_INPUT_BYTES: u64 = 1024 * 1024;

/// The command Claude Code's settings run.
pub const STATUSLINE_COMMAND: &str = "ccr-setup statusline";

pub fn run(ctx: &Context, args: StatuslineArgs) -> anyhow::Result<Outcome> {
    let out = ctx.out;
    if args.install {
        return install(&out, args.replace);
    }
    let mut input = Vec::new();
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let _ = stdin.lock().take(MAX_INPUT_BYTES).read_to_end(&mut input);
    }
    let claude = ClaudeStatus::parse(&input);
    if let Ok(Some(join)) = super::shared::joined(&ctx.config_path) {
        let usage = super::shared::block_on(crate::team::fetch_usage(
            &join,
            claude.session_id.as_deref(),
            TEAM_TIMEOUT,
        ));
        out.document_line(&crate::team::report::status_line(usage.ok().as_ref()));
        return Ok(Outcome::Success);
    }
    let config = ConfigFile::load(&ctx.config_path)
        .ok()
        .and_then(|f| f.resolve().ok());
    let proxy = match ask_proxy(config.as_ref(), claude.session_id.as_deref()) {
        Asked::Answer(answer) => answer,
        Asked::NotOurs(port) => {
            out.document_line(&statusline::render_not_ours(port));
            return Ok(Outcome::Success);
        }
    };
    let savings = savings_today(config.as_ref());
    out.document_line(&statusline::render(
        proxy.as_ref().map(Option::as_ref),
        savings,
    ));
    Ok(Outcome::Success)
}

/// Set the status line in `~/.claude/settings.json`.
fn install(out: &Printer, replace: bool) -> anyhow::Result<Outcome> {
    let path = statusline::claude_settings_path();
    let installed = statusline::install(&path, STATUSLINE_COMMAND, replace).map_err(|e| {
        let hint = match e {
            statusline::InstallError::NotAnObject { .. } => {
                "fix the file (Claude Code's settings are one JSON object) or move it away, then run this again"
            }
            _ => "check the file's permissions, then run this again",
        };
        // The OS error stays a cause of its own (a caused-by line), said once.
        let message = e.to_string();
        anyhow::Error::new(e).context(crate::diagnostic::Diagnostic::new(message).with_hint(hint))
    })?;
    match installed {
        InstallOutcome::Installed { backup } => {
            out.line(&format!(
                "Claude Code's status line now runs `{STATUSLINE_COMMAND}` ({}).",
                path.display()
            ));
            if let Some(b) = backup {
                out.line(&format!(
                    "The previous settings are kept in {}.",
                    b.display()
                ));
            }
        }
        InstallOutcome::AlreadySet => out.line(&format!(
            "Claude Code's status line already runs `{STATUSLINE_COMMAND}` ({}).",
            path.display()
        )),
        InstallOutcome::KeptExisting { existing } => out.line(&format!(
            "Claude Code already has a status line (`{existing}`); left as it is. \
             Run `ccr-setup statusline --install --replace` to use ccr-setup's instead \
             (the settings are backed up first)."
        )),
    }
    Ok(Outcome::Success)
}

/// What asking the proxy gave.
enum Asked {
    /// None: the proxy did not answer. Some(None): it answered but does not know the
    /// session (or no session was given).
    Answer(Option<Option<SessionReport>>),
    /// Something on the port could not prove it holds the `APIKEY`: the key was not sent.
    NotOurs(u16),
}

/// How long a verified proxy is trusted before the status line verifies it again
/// (one more loopback request): a squatter that takes the port within this window
/// gets one key-bearing request at most per render.
const VERIFIED_FOR: Duration = Duration::from_secs(30);

/// The status line's note that `base` proved it holds the key, until when.
fn verified_cache() -> std::path::PathBuf {
    crate::paths::run_dir().join("statusline-verified")
}

fn recently_verified(base: &str, now_ms: i64) -> bool {
    std::fs::read_to_string(verified_cache()).is_ok_and(|text| {
        text.split_once(' ').is_some_and(|(until, cached)| {
            cached.trim() == base && until.parse::<i64>().is_ok_and(|u| now_ms < u)
        })
    })
}

fn ask_proxy(config: Option<&Config>, session: Option<&str>) -> Asked {
    let (host, port) = config.map_or((DEFAULT_HOST, DEFAULT_PORT), |c| (c.host.as_str(), c.port));
    let base = crate::service::runtime::proxy_url(host, port);
    let key = config
        .and_then(|c| c.api_key.clone())
        .filter(|k| !k.is_empty());
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return Asked::Answer(None);
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    if key.is_some() && !recently_verified(&base, now_ms) {
        let verified = runtime.block_on(health::verify(&base, key.as_deref(), PROXY_TIMEOUT));
        match verified {
            Ok(_) => {
                let until = now_ms + VERIFIED_FOR.as_millis() as i64;
                let _ = crate::fsutil::write_atomic(
                    &verified_cache(),
                    format!("{until} {base}\n").as_bytes(),
                    0o600,
                );
            }
            Err(health::Unverified::NoAnswer) => return Asked::Answer(None),
            Err(_) => return Asked::NotOurs(port),
        }
    }
    Asked::Answer(runtime.block_on(async move {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(PROXY_TIMEOUT)
            .build()
            .ok()?;
        let path = match session {
            Some(id) => format!("/v1/ccr/sessions/{}", url_segment(id)),
            None => "/health".to_owned(),
        };
        let mut request = client.get(format!("{base}{path}"));
        if let Some(key) = key {
            request = request.header("x-api-key", key);
        }
        let response = request.send().await.ok()?;
        match response.status().as_u16() {
            200 if session.is_some() => Some(response.json::<SessionReport>().await.ok()),
            200 | 404 => Some(None),
            _ => None,
        }
    }))
}

/// A session id as one URL path segment.
fn url_segment(id: &str) -> String {
    url::form_urlencoded::byte_serialize(id.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// Savings since local midnight, from the ledger; None when there is no ledger.
fn savings_today(config: Option<&Config>) -> Option<f64> {
    let path = crate::paths::ledger_path();
    if !path.exists() {
        return None;
    }
    let midnight = chrono::Local::now()
        .date_naive()
        .and_hms_opt(0, 0, 0)?
        .and_local_timezone(chrono::Local)
        .earliest()?
        .timestamp_millis();
    let options = StatsOptions {
        since_ms: Some(midnight),
        ..StatsOptions::from_config(config, None).ok()?
    };
    let conn = ledger::open_for_reading(&path).ok()?;
    Some(ledger::report(&conn, &options).ok()?.totals.savings_usd)
}
