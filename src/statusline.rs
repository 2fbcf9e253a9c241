//! The line `ccr-setup statusline` prints under Claude Code's prompt (its
//! `statusLine` setting), and installing that setting in `~/.claude/settings.json`.
//!
//! The line says where the session's last request went and why, how much of the local
//! window the prompt used, and today's savings. It is built from what the running
//! proxy remembers about the session (`GET /v1/ccr/sessions/{id}`), so it costs one
//! loopback request; with the proxy down it says so plainly.

use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::humanize;
use crate::proxy::sessions::SessionReport;
use crate::sanitize;

/// What Claude Code pipes to a status line command (the fields we use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaudeStatus {
    pub session_id: Option<String>,
}

impl ClaudeStatus {
    /// Read Claude Code's JSON leniently: a missing or odd field is just unknown.
    pub fn parse(input: &[u8]) -> ClaudeStatus {
        let v: Value = serde_json::from_slice(input).unwrap_or(Value::Null);
        ClaudeStatus {
            session_id: v
                .get("session_id")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        }
    }
}

/// The line for a session the proxy knows, knows nothing of yet, or (None) a proxy
/// that did not answer.
pub fn render(proxy: Option<Option<&SessionReport>>, savings_today_usd: Option<f64>) -> String {
    let mut parts = vec!["ccr".to_owned()];
    match proxy {
        None => parts.push("proxy not running (ccr-setup up)".to_owned()),
        Some(None) => parts.push("proxy up, no request yet in this session".to_owned()),
        Some(Some(report)) => parts.extend(session_parts(report)),
    }
    if let Some(savings) = savings_today_usd {
        parts.push(format!("saved ${savings:.2} today"));
    }
    parts.join(" · ")
}

/// The line when something on `port` could not prove it is the user's proxy.
pub fn render_not_ours(port: u16) -> String {
    format!(
        "ccr · port {port} answers but is not your proxy (key not sent; run `ccr-setup doctor`)"
    )
}

fn session_parts(report: &SessionReport) -> Vec<String> {
    let Some(last) = report.last.as_ref() else {
        return vec!["proxy up, no request yet in this session".to_owned()];
    };
    let model = last
        .target
        .split_once(',')
        .map_or(last.target.as_str(), |(_, m)| m);
    let place = if last.local { "local" } else { "cloud" };
    let mut line = format!("{place} {}", sanitize::field(model));
    if let Some(why) = why(last, report.cloud_requests_left) {
        line.push_str(&format!(" ({why})"));
    }
    if last.outcome != "ok" {
        let outcome = sanitize::field(&last.outcome).replace('_', " ");
        line.push_str(&format!(" [{outcome}]"));
    }
    let mut parts = vec![line];
    if let Some(window) = last.local_window.filter(|w| *w > 0) {
        parts.push(format!(
            "ctx {}/{} {:.0}%",
            humanize::tokens(last.input_tokens),
            humanize::tokens(window),
            last.input_tokens as f64 * 100.0 / window as f64
        ));
    } else if last.input_tokens > 0 {
        parts.push(format!("ctx {}", humanize::tokens(last.input_tokens)));
    }
    if last.context_cleared > 0 {
        parts.push(format!(
            "{} old tool result{} cleared to fit",
            last.context_cleared,
            if last.context_cleared == 1 { "" } else { "s" }
        ));
    }
    parts
}

/// Why the request went where it went, when it was not the plain default.
fn why(last: &crate::proxy::sessions::LastRequest, cloud_left: u32) -> Option<String> {
    if last.scenario == "quality" {
        return Some(match cloud_left {
            0 => "quality: local answers kept failing; local again next".to_owned(),
            n => format!("quality: local answers kept failing; local again in {n}"),
        });
    }
    if let Some(from) = &last.fallback_from {
        let reason = last.fallback_reason.as_deref().unwrap_or("failed");
        return Some(format!(
            "fallback from {}: {}",
            sanitize::field(from),
            sanitize::field(reason).replace('_', " ")
        ));
    }
    match last.scenario.as_str() {
        "default" | "-" | "" => None,
        "longContext" => Some("long context".to_owned()),
        "webSearch" => Some("web search".to_owned()),
        other => Some(sanitize::field(other).into_owned()),
    }
}

/// What installing the status line in Claude Code's settings did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallOutcome {
    /// Written; the previous file (if any) was backed up here.
    Installed { backup: Option<PathBuf> },
    /// The setting already runs this command.
    AlreadySet,
    /// Another status line is set and replacing it was not agreed: left alone.
    KeptExisting { existing: String },
}

/// Errors installing the status line.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a JSON object ({detail})")]
    NotAnObject { path: PathBuf, detail: String },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Set `statusLine` in Claude Code's `settings` file to run `command`, keeping every
/// other key. An existing, different status line is replaced only when `replace`.
pub fn install(
    settings: &Path,
    command: &str,
    replace: bool,
) -> Result<InstallOutcome, InstallError> {
    let mut doc: Map<String, Value> = match std::fs::read(settings) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => Map::new(),
        Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(o)) => o,
            Ok(_) => {
                return Err(InstallError::NotAnObject {
                    path: settings.to_owned(),
                    detail: "it holds JSON that is not an object".to_owned(),
                })
            }
            Err(e) => {
                return Err(InstallError::NotAnObject {
                    path: settings.to_owned(),
                    detail: e.to_string(),
                })
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Map::new(),
        Err(source) => {
            return Err(InstallError::Read {
                path: settings.to_owned(),
                source,
            })
        }
    };
    let wanted = json!({"type": "command", "command": command, "padding": 0});
    if let Some(existing) = doc.get("statusLine") {
        if existing.get("command").and_then(Value::as_str) == Some(command) {
            return Ok(InstallOutcome::AlreadySet);
        }
        if !replace {
            return Ok(InstallOutcome::KeptExisting {
                existing: existing
                    .get("command")
                    .and_then(Value::as_str)
                    .map_or_else(|| existing.to_string(), str::to_owned),
            });
        }
    }
    doc.insert("statusLine".to_owned(), wanted);
    let mut bytes = serde_json::to_vec_pretty(&Value::Object(doc)).expect("a map serialises");
    bytes.push(b'\n');
    let outcome = crate::fsutil::write_with_backup(settings, &bytes, 0o600).map_err(|source| {
        InstallError::Write {
            path: settings.to_owned(),
            source,
        }
    })?;
    Ok(InstallOutcome::Installed {
        backup: match outcome {
            crate::fsutil::WriteOutcome::Replaced { backup } => Some(backup),
            _ => None,
        },
    })
}

/// Claude Code's user settings file.
pub fn claude_settings_path() -> PathBuf {
    crate::paths::home_dir()
        .join(".claude")
        .join("settings.json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::sessions::LastRequest;

    fn report(last: LastRequest, cloud_left: u32) -> SessionReport {
        SessionReport {
            session_id: "s".into(),
            last: Some(last),
            cloud_requests_left: cloud_left,
            recent_local_failures: 0,
        }
    }

    fn local() -> LastRequest {
        LastRequest {
            target: "ollama,gpt-oss:20b".into(),
            local: true,
            scenario: "default".into(),
            outcome: "ok".into(),
            input_tokens: 12_300,
            local_window: Some(32_768),
            ..LastRequest::default()
        }
    }

    #[test]
    fn the_line_says_where_why_how_full_and_what_was_saved() {
        assert_eq!(
            render(Some(Some(&report(local(), 0))), Some(0.42)),
            "ccr · local gpt-oss:20b · ctx 12.3k/32.8k 38% · saved $0.42 today"
        );
        let fell_back = LastRequest {
            target: "anthropic,claude-sonnet-4-5".into(),
            local: false,
            fallback_from: Some("ollama,gpt-oss:20b".into()),
            fallback_reason: Some("tool_call_invalid".into()),
            ..local()
        };
        let line = render(Some(Some(&report(fell_back.clone(), 0))), None);
        assert_eq!(
            line,
            "ccr · cloud claude-sonnet-4-5 (fallback from ollama,gpt-oss:20b: tool call invalid) · ctx 12.3k/32.8k 38%"
        );
        let quality = LastRequest {
            scenario: "quality".into(),
            fallback_from: None,
            ..fell_back
        };
        assert!(render(Some(Some(&report(quality, 7))), None)
            .contains("(quality: local answers kept failing; local again in 7)"));
        let edited = LastRequest {
            input_tokens: 22_900,
            context_cleared: 6,
            ..local()
        };
        assert_eq!(
            render(Some(Some(&report(edited, 0))), None),
            "ccr · local gpt-oss:20b · ctx 22.9k/32.8k 70% · 6 old tool results cleared to fit"
        );
        let think = LastRequest {
            scenario: "think".into(),
            ..local()
        };
        assert!(render(Some(Some(&report(think, 0))), None).contains("local gpt-oss:20b (think)"));
        assert_eq!(
            render(None, Some(1.5)),
            "ccr · proxy not running (ccr-setup up) · saved $1.50 today"
        );
        assert_eq!(
            render(Some(None), None),
            "ccr · proxy up, no request yet in this session"
        );
    }

    #[test]
    fn claude_codes_input_is_read_leniently() {
        let s = ClaudeStatus::parse(br#"{"session_id":"abc","model":{"id":"x"},"cwd":"/p"}"#);
        assert_eq!(s.session_id.as_deref(), Some("abc"));
        assert_eq!(ClaudeStatus::parse(b"not json"), ClaudeStatus::default());
    }

    #[test]
    fn installing_keeps_other_keys_and_asks_before_replacing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".claude/settings.json");
        assert_eq!(
            install(&path, "ccr-setup statusline", false).unwrap(),
            InstallOutcome::Installed { backup: None }
        );
        std::fs::write(
            &path,
            r#"{"model": "opus", "statusLine": {"type": "command", "command": "my-line.sh"}}"#,
        )
        .unwrap();
        assert_eq!(
            install(&path, "ccr-setup statusline", false).unwrap(),
            InstallOutcome::KeptExisting {
                existing: "my-line.sh".into()
            }
        );
        let outcome = install(&path, "ccr-setup statusline", true).unwrap();
        let InstallOutcome::Installed {
            backup: Some(backup),
        } = outcome
        else {
            panic!("{outcome:?}")
        };
        assert!(std::fs::read_to_string(backup)
            .unwrap()
            .contains("my-line.sh"));
        let v: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["model"], "opus");
        assert_eq!(v["statusLine"]["command"], "ccr-setup statusline");
        assert_eq!(
            install(&path, "ccr-setup statusline", false).unwrap(),
            InstallOutcome::AlreadySet
        );
        std::fs::write(&path, "[1]").unwrap();
        assert!(install(&path, "ccr-setup statusline", true).is_err());
    }
}
