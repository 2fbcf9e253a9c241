//! The router config: valid, providers answering, file mode, and auth for the bind address.

use super::*;

pub(super) fn config_valid(f: &Facts) -> Check {
    let c = &f.config;
    let p = c.path.display();
    match (&c.file, &c.resolved) {
        (Err(ConfigError::NotFound { .. }), _) => Check::fail(
            "config.valid",
            format!("no router config at {p}"),
            "`ccr-setup init` (or `ccr-setup doctor --fix`, which writes the default local-only config)",
        )
        .with_action(FixAction::WriteConfig(c.path.clone())),
        (Err(e @ ConfigError::Parse { .. }), _) => Check::fail(
            "config.valid",
            format!("{p} is not valid JSON5"),
            "fix the syntax at the position shown, or move the file away and run `ccr-setup init`",
        )
        .with_detail(e.to_string()),
        (Err(e), _) => Check::fail(
            "config.valid",
            format!("cannot read {p}"),
            format!("make {p} readable by you (`chmod 600 {p}`)"),
        )
        .with_detail(e.to_string()),
        (Ok(_), Some(Err(problems))) => {
            let detail = problems
                .iter()
                .map(|pr| format!("{}: {}", pr.path, pr.message))
                .collect::<Vec<_>>()
                .join("\n");
            let fix = problems
                .iter()
                .map(|pr| format!("{}: {}", pr.path, pr.fix))
                .collect::<Vec<_>>()
                .join("\n");
            Check::fail(
                "config.valid",
                format!("{p} has {} problem(s)", problems.len()),
                fix,
            )
            .with_detail(detail)
        }
        (Ok(_), _) => Check::ok("config.valid", format!("{p} is valid")),
    }
}

pub(super) fn config_providers(f: &Facts) -> Check {
    if f.config.config().is_none() {
        return not_checked("config.providers", "the config is not valid");
    }
    if f.providers.is_empty() {
        return Check::fail(
            "config.providers",
            "the config lists no providers",
            "`ccr-setup init` adds the local Ollama provider",
        );
    }
    let mut lines = Vec::new();
    let mut fixes = Vec::new();
    let mut worst = Status::Ok;
    for p in &f.providers {
        let (status, line, fix) = provider_state(p);
        worst = worst.max(status);
        lines.push(line);
        fixes.extend(fix);
    }
    let n = f.providers.len();
    let check = match worst {
        Status::Ok => Check::ok(
            "config.providers",
            format!("{n} provider(s) reachable, models present"),
        ),
        Status::Warn => Check::warn(
            "config.providers",
            format!(
                "{n} provider(s); some could not be verified or are unreachable (not the default)"
            ),
            fixes.join("\n"),
        ),
        Status::Fail => Check::fail(
            "config.providers",
            "the default provider is unreachable or lacks its model",
            fixes.join("\n"),
        ),
    };
    check.with_detail(lines.join("\n"))
}

pub(super) fn config_mode(f: &Facts) -> Check {
    let c = &f.config;
    let p = c.path.display();
    let (Ok(file), Some(mode)) = (&c.file, c.mode) else {
        return not_checked("config.mode", "there is no readable config");
    };
    let secret = file.holds_secret();
    if secret && mode & 0o077 != 0 {
        Check::fail(
            "config.mode",
            format!("{p} holds a literal key but its mode is {mode:04o}: other users can read it"),
            format!("`chmod 600 {p}`"),
        )
        .with_action(FixAction::Chmod600(c.path.clone()))
    } else if secret {
        Check::ok("config.mode", format!("mode {mode:04o} (it holds a key)"))
    } else {
        Check::ok(
            "config.mode",
            format!("mode {mode:04o} (no literal keys; `$VAR` references only)"),
        )
    }
}

pub(super) fn config_auth(f: &Facts) -> Check {
    let (host, api_key) = match f.config.config() {
        Some(c) if !c.clients.is_empty() && !is_loopback_host(&c.host) => {
            let admin = if c.api_key.as_deref().is_some_and(|k| !k.is_empty()) {
                "an admin APIKEY"
            } else {
                "no admin APIKEY, so the dashboard stays shut"
            };
            let detail = format!(
                "HOST {} with {} client key(s) and {admin}",
                c.host,
                c.clients.len()
            );
            return Check::ok("config.auth", detail);
        }
        Some(c) => (c.host.clone(), c.api_key.clone().unwrap_or_default()),
        None => match &f.config.file {
            Ok(file) => {
                let s = |k: &str| file.raw_str(k).to_owned();
                let h = s("HOST");
                (
                    if h.is_empty() {
                        crate::config::DEFAULT_HOST.to_owned()
                    } else {
                        h
                    },
                    s("APIKEY"),
                )
            }
            Err(_) => return not_checked("config.auth", "there is no readable config"),
        },
    };
    if is_loopback_host(&host) {
        Check::ok(
            "config.auth",
            format!(
                "HOST {host}: only this machine can reach the proxy{}",
                if api_key.is_empty() {
                    ""
                } else {
                    " (APIKEY also set)"
                }
            ),
        )
    } else if api_key.is_empty() {
        Check::fail(
            "config.auth",
            format!("HOST {host} exposes the proxy to the network without an APIKEY"),
            "set \"APIKEY\" to a long random secret (e.g. `openssl rand -hex 24`), or \"HOST\": \"127.0.0.1\"",
        )
    } else if api_key.len() < 16 {
        Check::warn(
            "config.auth",
            format!(
                "HOST {host} is reachable from the network and APIKEY is short ({} characters)",
                api_key.len()
            ),
            "use a longer APIKEY (e.g. `openssl rand -hex 24`)",
        )
    } else {
        Check::ok("config.auth", format!("HOST {host} with an APIKEY"))
    }
}

/// One provider's status, detail line and fix: unreachable or missing a model is a
/// failure for the default provider, a warning for the others.
fn provider_state(p: &crate::doctor::facts::ProviderProbe) -> (Status, String, Option<String>) {
    let at = match p.replicas {
        0 | 1 => format!("Providers[{}] \"{}\"", p.index, p.name),
        n => format!("Providers[{}] \"{}\" ({n} replicas)", p.index, p.name),
    };
    let bad = if p.is_default {
        Status::Fail
    } else {
        Status::Warn
    };
    match &p.answer {
        Err(e) => {
            let fix = if p.is_ollama {
                format!("{at}: start Ollama (`ccr-setup up`)")
            } else {
                format!(
                    "{at}: check api_base_url ({}) and api_key, or that the server runs",
                    crate::config::redact_url(&p.url)
                )
            };
            (bad, format!("{at}: unreachable: {e}"), Some(fix))
        }
        Ok(None) => (
            Status::Warn,
            format!(
                "{at}: reachable, but it does not list its models; not verified: {}",
                p.models.join(", ")
            ),
            Some(format!(
                "{at}: make sure the server serves {}",
                p.models.join(", ")
            )),
        ),
        Ok(Some(ids)) => {
            let norm = |s: &str| {
                if p.is_ollama {
                    crate::ollama::normalize_model_name(s)
                } else {
                    s.to_owned()
                }
            };
            let names: Vec<&str> = p
                .models
                .iter()
                .filter(|m| !ids.iter().any(|id| norm(id) == norm(m)))
                .map(String::as_str)
                .collect();
            if names.is_empty() {
                let line = format!("{at}: reachable; {} present", p.models.join(", "));
                return (Status::Ok, line, None);
            }
            let fix = if p.is_ollama {
                names
                    .iter()
                    .map(|m| format!("`ollama pull {m}`"))
                    .collect::<Vec<_>>()
                    .join("; ")
            } else {
                format!(
                    "{at}: remove {} from its models, or serve {} there",
                    names.join(", "),
                    if names.len() == 1 { "it" } else { "them" }
                )
            };
            let line = format!("{at}: {} not on the server", names.join(", "));
            (bad, line, Some(fix))
        }
    }
}
