//! `doctor` on a laptop joined to a team server: there is no local Ollama or proxy to
//! check, so the checks are the join itself (the config and the stored key), the
//! server (it answers over TLS and accepts the key) and Claude Code on PATH.

use std::time::Duration;

use super::Check;
use crate::config::{ConfigFile, Join};

/// How long the server may take to answer.
const SERVER_TIMEOUT: Duration = Duration::from_secs(5);

/// The checks for a joined laptop, or None when the config is not a joined one.
pub async fn checks(config_path: &std::path::Path) -> Option<Vec<Check>> {
    let file = ConfigFile::load(config_path).ok()?;
    if !Join::is_joined(&file.doc) {
        return None;
    }
    let mut checks = Vec::new();
    let join = match file.resolve() {
        Ok(cfg) => Join::of(&cfg),
        Err(e) => {
            checks.push(
                Check::fail(
                    "team.join",
                    "the joined config does not resolve",
                    "re-run `ccr-setup init --join URL` (it stores the key and rewrites the config)",
                )
                .with_detail(e.to_string()),
            );
            None
        }
    };
    if let Some(join) = join {
        checks.push(Check::ok(
            "team.join",
            format!("joined to {} (the key is in the secrets store)", join.url),
        ));
        checks.push(server_check(&join).await);
    }
    checks.push(match which::which("claude") {
        Ok(p) => Check::ok(
            "claude.installed",
            format!("Claude Code at {}", p.display()),
        ),
        Err(_) => Check::fail(
            "claude.installed",
            "Claude Code (`claude`) is not on PATH",
            "npm install -g @anthropic-ai/claude-code",
        ),
    });
    Some(checks)
}

async fn server_check(join: &Join) -> Check {
    match crate::team::fetch_usage(join, None, SERVER_TIMEOUT).await {
        Ok(u) => Check::ok(
            "team.server",
            format!(
                "{} answers: client {}, {} request{} today",
                join.url,
                crate::sanitize::field(&u.client),
                u.today.requests,
                if u.today.requests == 1 { "" } else { "s" }
            ),
        ),
        Err(e) => {
            let fix = crate::diagnostic::Hint::hint(&e).unwrap_or_default();
            Check::fail("team.server", crate::diagnostic::one_line(&e), fix)
        }
    }
}
