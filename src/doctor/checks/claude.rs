//! Claude Code: the binary, onboarding, and environment settings that bypass the proxy.

use super::*;

pub(super) fn claude_binary(f: &Facts) -> Check {
    match &f.claude_bin {
        ToolProbe::Missing => Check::fail(
            "claude.binary",
            "Claude Code is not installed (`claude` is not on PATH)",
            "`npm install -g @anthropic-ai/claude-code` (or `ccr-setup init`, which installs it)",
        ),
        ToolProbe::Found {
            path,
            version: None,
        } => version_unknown("claude.binary", "claude", path),
        ToolProbe::Found {
            path,
            version: Some(v),
        } => Check::ok("claude.binary", format!("Claude Code {v}"))
            .with_detail(path.display().to_string()),
    }
}

pub(super) fn claude_onboarding(f: &Facts) -> Check {
    let p = f.claude_json_path.display();
    match &f.claude_json {
        ClaudeJson::Done => Check::ok("claude.onboarding", format!("onboarding done ({p})")),
        ClaudeJson::Missing | ClaudeJson::NotDone => Check::warn(
            "claude.onboarding",
            "Claude Code's onboarding is not done: interactive `claude` will show its welcome screens and ask for an Anthropic login",
            format!("`ccr-setup doctor --fix` adds \"hasCompletedOnboarding\": true to {p} (other keys are kept)"),
        )
        .with_action(FixAction::SeedClaudeJson(f.claude_json_path.clone())),
        ClaudeJson::SetFalse => Check::warn(
            "claude.onboarding",
            format!("{p} sets \"hasCompletedOnboarding\": false"),
            format!("set it to true in {p} to skip the Anthropic login screens"),
        ),
        ClaudeJson::Invalid(e) => Check::fail(
            "claude.onboarding",
            format!("{p} is not valid JSON"),
            format!("fix {p} or move it away (Claude Code recreates it)"),
        )
        .with_detail(e.clone()),
    }
}

/// Do two base URLs name the same server (localhost and 127.0.0.1 are the same)?
pub(super) fn same_base(a: &str, b: &str) -> bool {
    match (Url::parse(a.trim()), Url::parse(b.trim())) {
        (Ok(x), Ok(y)) => {
            crate::config::same_server(&x, &y)
                && x.path().trim_end_matches('/') == y.path().trim_end_matches('/')
        }
        _ => false,
    }
}

pub(super) fn claude_env(f: &Facts) -> Check {
    let proxy = &f.proxy.url;
    let settings = f.claude_settings_path.display().to_string();
    let mut fails = Vec::new();
    let mut warns = Vec::new();
    let mut fixes = Vec::new();
    let settings_env = match &f.claude_settings_env {
        Ok(v) => v.as_slice(),
        Err(e) => {
            return Check::warn(
                "claude.env",
                format!("{settings} is not valid JSON"),
                format!("fix {settings}; Claude Code ignores a broken settings file"),
            )
            .with_detail(e.clone())
        }
    };
    for (k, v) in settings_env {
        match k.as_str() {
            "ANTHROPIC_BASE_URL" if !same_base(v, proxy) => {
                fails.push(format!("{settings} sets ANTHROPIC_BASE_URL={v}, which overrides the proxy ({proxy}) for every `claude`, `ccr-setup code` included"));
                fixes.push(format!("remove \"ANTHROPIC_BASE_URL\" from \"env\" in {settings} (or set it to {proxy})"));
            }
            "ANTHROPIC_API_KEY" | "ANTHROPIC_AUTH_TOKEN" if !v.is_empty() => {
                warns.push(format!("{settings} sets {k}, which replaces the token `ccr-setup code` gives Claude Code"));
                fixes.push(format!("remove \"{k}\" from \"env\" in {settings}; put cloud keys in the router config instead"));
            }
            _ => {}
        }
    }
    for (k, v) in &f.anthropic_env {
        match k.as_str() {
            "ANTHROPIC_BASE_URL" if !same_base(v, proxy) => {
                warns.push(format!("ANTHROPIC_BASE_URL={v} in this shell: a plain `claude` bypasses the proxy ({proxy})"));
                fixes.push("`unset ANTHROPIC_BASE_URL` (and remove it from your shell profile), then start Claude Code with `ccr-setup code`, or `eval \"$(ccr-setup env)\"`".to_owned());
            }
            "ANTHROPIC_API_KEY"
                if !v.is_empty()
                    && f.anthropic_env
                        .iter()
                        .any(|(k2, v2)| k2 == "ANTHROPIC_BASE_URL" && same_base(v2, proxy)) =>
            {
                warns.push("ANTHROPIC_API_KEY is set alongside the proxy's ANTHROPIC_BASE_URL: Claude Code sends your Anthropic key to the proxy and asks whether to use it".to_owned());
                fixes.push("`unset ANTHROPIC_API_KEY` in the shell that runs Claude Code (`ccr-setup code` does this for you); the router config reads the key for cloud fallback".to_owned());
            }
            _ => {}
        }
    }
    let detail = [fails.clone(), warns.clone()].concat().join("\n");
    let fix = fixes.join("\n");
    if !fails.is_empty() {
        Check::fail("claude.env", fails[0].clone(), fix).with_detail(detail)
    } else if !warns.is_empty() {
        Check::warn("claude.env", warns[0].clone(), fix).with_detail(detail)
    } else {
        Check::ok(
            "claude.env",
            "no ANTHROPIC_* setting bypasses or conflicts with the proxy",
        )
    }
}
