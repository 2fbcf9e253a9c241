//! Judging: facts in, checks out, no I/O. One function per check id, in report order.

use std::path::Path;

use url::Url;

use super::facts::{ClaudeJson, Facts, Launcher};
use super::fix::FixAction;
use super::probe::{PortProbe, ToolProbe};
use super::{Check, Status};
use crate::config::{is_loopback_host, ConfigError, DEFAULT_MODEL};
use crate::diagnostic::Diagnostic;
use crate::ollama::advice;
use crate::provision::Platform;
use crate::service::ServiceKind;

const GIB: u64 = 1 << 30;
/// gpt-oss:20b needs about 13 GB of memory; below 12 GiB it cannot load, below 16 GiB
/// it loads but the rest of the machine starves.
pub const MEMORY_FAIL_GIB: u64 = 12;
pub const MEMORY_WARN_GIB: u64 = 16;
/// Bytes a gpt-oss:20b download needs (13.8 GB plus headroom), as `up` assumes.
pub const DEFAULT_MODEL_DISK_BYTES: u64 = crate::ollama::disk::DEFAULT_MODEL_BYTES;
/// Below this, even an installed model leaves Ollama no room for its blobs and logs.
pub const DISK_LOW_BYTES: u64 = 2_000_000_000;

/// All checks, in the order of [`super::CHECK_IDS`].
pub fn evaluate(f: &Facts) -> Vec<Check> {
    vec![
        platform_os(f),
        platform_memory(f),
        platform_disk(f),
        homebrew(f),
        ollama_binary(f),
        ollama_server(f),
        ollama_model(f),
        ollama_context(f),
        ollama_competing(f),
        claude_binary(f),
        claude_onboarding(f),
        claude_env(f),
        config_valid(f),
        config_providers(f),
        config_mode(f),
        super::keys::config_keys(f),
        config_auth(f),
        proxy_port(f),
        services(f),
    ]
}

fn platform_os(f: &Facts) -> Check {
    let supported = matches!(f.os.as_str(), "linux" | "macos")
        && matches!(f.arch.as_str(), "x86_64" | "aarch64");
    if supported {
        Check::ok("platform.os", format!("{} {}", f.os, f.arch))
    } else {
        Check::fail(
            "platform.os",
            format!("{} {} is not supported", f.os, f.arch),
            "run ccr-setup on macOS or Linux (x86_64 or arm64)",
        )
    }
}

fn platform_memory(f: &Facts) -> Check {
    let Some(bytes) = f.memory_bytes else {
        return Check::warn(
            "platform.memory",
            "could not read the memory size",
            "check it yourself: gpt-oss:20b needs 16 GB of RAM (12 GB at the very least)",
        );
    };
    // The kernel reserves a little, so a 16 GB machine reports ~15.6 GiB: round.
    let gib = (bytes + GIB / 2) / GIB;
    let summary = format!("{gib} GB of memory");
    if f.model != DEFAULT_MODEL {
        return Check::ok("platform.memory", format!("{summary} (model {})", f.model));
    }
    if gib < MEMORY_FAIL_GIB {
        Check::fail(
            "platform.memory",
            format!("{summary}: too little for {DEFAULT_MODEL}, which needs about 13 GB"),
            "use a machine with 16 GB or more, or a smaller model: set \"Ollama\": {\"model\": \"…\"} in the config and `ccr-setup up --model …`",
        )
    } else if gib < MEMORY_WARN_GIB {
        Check::warn(
            "platform.memory",
            format!("{summary}: {DEFAULT_MODEL} will load but leave little for everything else"),
            "close memory-hungry apps before `ccr-setup up`, or use a machine with 16 GB or more",
        )
    } else {
        Check::ok("platform.memory", summary)
    }
}

fn platform_disk(f: &Facts) -> Check {
    if !f.ollama.local {
        return Check::ok(
            "platform.disk",
            format!("models live on the remote server {}", f.ollama.url),
        );
    }
    let (measured, free) = match &f.disk {
        Ok(v) => v.clone(),
        Err(e) => {
            return Check::warn(
                "platform.disk",
                "could not read the free disk space",
                format!("check it yourself: {DEFAULT_MODEL} needs about 15 GB free"),
            )
            .with_detail(e.clone())
        }
    };
    let detail = format!(
        "models directory {} (measured at {})",
        f.models_dir.display(),
        measured.display()
    );
    let summary = format!("{} free for models", crate::humanize::bytes(free));
    let installed = f.ollama.has_model(&f.model) == Some(true);
    let need = (!installed && f.model == DEFAULT_MODEL).then_some(DEFAULT_MODEL_DISK_BYTES);
    let check = match need {
        Some(need) if free < need => Check::fail(
            "platform.disk",
            format!("{summary}; {} needs about {} to download", f.model, crate::humanize::bytes(need)),
            format!(
                "free at least {} on that disk, or point OLLAMA_MODELS at a disk with room (and restart Ollama)",
                crate::humanize::bytes(need - free)
            ),
        ),
        _ if free < DISK_LOW_BYTES => Check::warn(
            "platform.disk",
            format!("{summary}: nearly full"),
            "free some space on that disk; Ollama fails mid-download or mid-load when it runs out",
        ),
        _ => Check::ok("platform.disk", summary),
    };
    check.with_detail(detail)
}

fn homebrew(f: &Facts) -> Check {
    match (&f.platform, &f.brew) {
        (Platform::Linux, _) | (_, None) => Check::ok("homebrew", "not needed on Linux"),
        (Platform::MacOs, Some(ToolProbe::Missing)) => Check::warn(
            "homebrew",
            "Homebrew is not installed (`ccr-setup init` uses it to install Ollama)",
            "/bin/bash -c \"$(curl -fsSL https://raw.githubusercontent.com/Homebrew/install/HEAD/install.sh)\"",
        ),
        (Platform::MacOs, Some(ToolProbe::Found { path, version })) => Check::ok(
            "homebrew",
            format!(
                "Homebrew {}",
                version.as_deref().unwrap_or("(version unknown)")
            ),
        )
        .with_detail(path.display().to_string()),
    }
}

/// The too-old failure for a server or CLI at `version`, when it is too old.
fn too_old(version: &str, f: &Facts) -> Option<Diagnostic> {
    let min = crate::ollama::version::check(version, &f.model).err()?;
    Some(advice::too_old(
        version,
        &f.model,
        min,
        f.platform,
        &f.ollama.owner,
    ))
}

fn ollama_binary(f: &Facts) -> Check {
    match &f.ollama_bin {
        ToolProbe::Missing if !f.ollama.local => Check::ok(
            "ollama.binary",
            format!(
                "not installed here; the server is remote ({})",
                f.ollama.url
            ),
        ),
        ToolProbe::Missing if f.ollama.answers() => Check::warn(
            "ollama.binary",
            "`ollama` is not on PATH, although a server answers",
            format!(
                "add Ollama's directory to PATH, or install the CLI: {}",
                advice::install_command(f.platform)
            ),
        ),
        ToolProbe::Missing => Check::failed("ollama.binary", advice::not_installed(f.platform)),
        ToolProbe::Found {
            path,
            version: None,
        } => Check::warn(
            "ollama.binary",
            "`ollama --version` did not say its version",
            format!("run `{} --version` to see what is wrong", path.display()),
        )
        .with_detail(path.display().to_string()),
        ToolProbe::Found {
            path,
            version: Some(v),
        } => match too_old(v, f) {
            Some(d) => Check::failed("ollama.binary", d),
            None => Check::ok("ollama.binary", format!("Ollama {v}")),
        }
        .with_detail(path.display().to_string()),
    }
}

fn ollama_server(f: &Facts) -> Check {
    let o = &f.ollama;
    match &o.version {
        Err(e) => Check::fail(
            "ollama.server",
            format!("no Ollama server answers at {}", o.url),
            if o.local {
                "`ccr-setup up` (starts Ollama with the configured context), or start your own with `ollama serve`".to_owned()
            } else {
                format!("start the server at {}, or unset OLLAMA_HOST to use a local one", o.url)
            },
        )
        .with_detail(e.clone()),
        Ok(v) => {
            let who = o.owner.describe();
            match too_old(v, f) {
                Some(d) => Check::fail(
                    "ollama.server",
                    format!("the server at {}: {}", o.url, d.message),
                    d.hint_or_empty(),
                )
                .with_detail(format!("run by {who}")),
                None => Check::ok("ollama.server", format!("Ollama {v} answers at {}, run by {who}", o.url)),
            }
        }
    }
}

fn not_checked(id: &'static str, why: &str) -> Check {
    Check::warn(
        id,
        format!("not checked: {why}"),
        "fix the failures above first, then run `ccr-setup doctor` again",
    )
}

fn ollama_model(f: &Facts) -> Check {
    let o = &f.ollama;
    if !o.answers() {
        return not_checked("ollama.model", "the Ollama server does not answer");
    }
    match o.has_model(&f.model) {
        None => Check::warn(
            "ollama.model",
            format!("could not list the installed models at {}", o.url),
            "run `ollama list` to see what is wrong",
        ),
        Some(false) => Check::fail(
            "ollama.model",
            format!("{} is not installed", f.model),
            format!("`ollama pull {}` (or `ccr-setup up`, which pulls it with a progress bar)", f.model),
        ),
        Some(true) => match &o.details {
            Some(Ok(d)) if d.has_capability("tools") => Check::ok(
                "ollama.model",
                format!("{} is installed, with tool calling", f.model),
            )
            .with_detail(format!("capabilities: {}", d.capabilities.join(", "))),
            Some(Ok(d)) => Check::fail(
                "ollama.model",
                format!("{} has no `tools` capability; Claude Code needs tool calls", f.model),
                format!("use a model with tool calling (e.g. {DEFAULT_MODEL}): set \"Ollama\": {{\"model\": …}} and Router.default in the config; if it should have tools, upgrade Ollama and `ollama pull {}` again", f.model),
            )
            .with_detail(format!("capabilities: {}", d.capabilities.join(", "))),
            Some(Err(e)) => Check::warn(
                "ollama.model",
                format!("{} is installed, but /api/show failed", f.model),
                format!("run `ollama show {}` to see what is wrong", f.model),
            )
            .with_detail(e.clone()),
            None => Check::ok("ollama.model", format!("{} is installed", f.model)),
        },
    }
}

fn ollama_context(f: &Facts) -> Check {
    let o = &f.ollama;
    if !o.answers() {
        return not_checked("ollama.context", "the Ollama server does not answer");
    }
    let wanted = f.context_length;
    match &o.loaded {
        Some(Err(e)) if e == super::facts::MODEL_LOADING => Check::warn(
            "ollama.context",
            super::facts::MODEL_LOADING,
            "run `ccr-setup doctor` again when the model has loaded (`ollama ps` shows it)",
        ),
        None | Some(Err(_)) => Check::warn(
            "ollama.context",
            "could not read the loaded models (/api/ps)",
            "run `ollama ps` to see what is wrong",
        ),
        Some(Ok(None)) => Check::ok(
            "ollama.context",
            format!(
                "{} is not loaded, so its context cannot be measured now (configured: {wanted})",
                f.model
            ),
        )
        .with_detail("`ccr-setup up` loads it and checks the effective context"),
        Some(Ok(Some(m))) => match m.context_length {
            None => Check::warn(
                "ollama.context",
                format!(
                    "Ollama does not report the effective context of {}",
                    f.model
                ),
                format!(
                    "upgrade Ollama so /api/ps reports context_length ({})",
                    advice::upgrade_command(f.platform, &o.owner)
                ),
            ),
            Some(ctx) if ctx < wanted as u64 => Check::fail(
                "ollama.context",
                format!(
                    "{} runs with a {ctx}-token context; the config asks for {wanted}",
                    f.model
                ),
                o.owner.context_fix(ctx, wanted),
            )
            .with_detail(format!(
                "Claude Code's prompts alone are ~20k tokens; run by {}",
                o.owner.describe()
            )),
            Some(ctx) => Check::ok(
                "ollama.context",
                format!(
                    "{} runs with a {ctx}-token context (configured: {wanted})",
                    f.model
                ),
            ),
        },
    }
}

fn ollama_competing(f: &Facts) -> Check {
    match f.launchers.as_slice() {
        [] | [_] => Check::ok(
            "ollama.competing",
            match f.launchers.first() {
                Some(l) => format!("one server launcher: {}", l.describe()),
                None => "no Ollama service or app installed".to_owned(),
            },
        ),
        many => {
            let list: Vec<String> = many.iter().map(Launcher::describe).collect();
            let stop: Vec<String> = many[1..].iter().map(Launcher::disable).collect();
            Check::warn(
                "ollama.competing",
                format!("{} start Ollama servers that compete for the port", list.join(" and ")),
                format!("keep one: {}", stop.join("; ")),
            )
            .with_detail(
                "the first to start owns the port; Ollama.app may kill other `ollama` processes, and each applies its own context setting",
            )
        }
    }
}

fn claude_binary(f: &Facts) -> Check {
    match &f.claude_bin {
        ToolProbe::Missing => Check::fail(
            "claude.binary",
            "Claude Code is not installed (`claude` is not on PATH)",
            "`npm install -g @anthropic-ai/claude-code` (or `ccr-setup init`, which installs it)",
        ),
        ToolProbe::Found {
            path,
            version: None,
        } => Check::warn(
            "claude.binary",
            "`claude --version` did not say its version",
            format!("run `{} --version` to see what is wrong", path.display()),
        )
        .with_detail(path.display().to_string()),
        ToolProbe::Found {
            path,
            version: Some(v),
        } => Check::ok("claude.binary", format!("Claude Code {v}"))
            .with_detail(path.display().to_string()),
    }
}

fn claude_onboarding(f: &Facts) -> Check {
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
fn same_base(a: &str, b: &str) -> bool {
    match (Url::parse(a.trim()), Url::parse(b.trim())) {
        (Ok(x), Ok(y)) => {
            x.port_or_known_default() == y.port_or_known_default()
                && (x.host() == y.host()
                    || (crate::ollama::is_local(&x) && crate::ollama::is_local(&y)))
                && x.path().trim_end_matches('/') == y.path().trim_end_matches('/')
        }
        _ => false,
    }
}

fn claude_env(f: &Facts) -> Check {
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

fn config_valid(f: &Facts) -> Check {
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

fn config_providers(f: &Facts) -> Check {
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
        let at = format!("Providers[{}] \"{}\"", p.index, p.name);
        let bad = if p.is_default {
            Status::Fail
        } else {
            Status::Warn
        };
        match &p.answer {
            Err(e) => {
                worst = worst.max(bad);
                lines.push(format!("{at}: unreachable: {e}"));
                fixes.push(if p.is_ollama {
                    format!("{at}: start Ollama (`ccr-setup up`)")
                } else {
                    format!(
                        "{at}: check api_base_url ({}) and api_key, or that the server runs",
                        crate::config::redact_url(&p.url)
                    )
                });
            }
            Ok(None) => {
                worst = worst.max(Status::Warn);
                lines.push(format!(
                    "{at}: reachable, but it does not list its models; not verified: {}",
                    p.models.join(", ")
                ));
                fixes.push(format!(
                    "{at}: make sure the server serves {}",
                    p.models.join(", ")
                ));
            }
            Ok(Some(ids)) => {
                let norm = |s: &str| {
                    if p.is_ollama {
                        crate::ollama::normalize_model_name(s)
                    } else {
                        s.to_owned()
                    }
                };
                let missing: Vec<&String> = p
                    .models
                    .iter()
                    .filter(|m| !ids.iter().any(|id| norm(id) == norm(m)))
                    .collect();
                if missing.is_empty() {
                    lines.push(format!("{at}: reachable; {} present", p.models.join(", ")));
                } else {
                    worst = worst.max(bad);
                    let names: Vec<&str> = missing.iter().map(|s| s.as_str()).collect();
                    lines.push(format!("{at}: {} not on the server", names.join(", ")));
                    fixes.push(if p.is_ollama {
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
                    });
                }
            }
        }
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

fn config_mode(f: &Facts) -> Check {
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

fn config_auth(f: &Facts) -> Check {
    let (host, api_key) = match f.config.config() {
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

/// Is a `/health` answer from our own proxy ([`Health`](crate::proxy::health::Health))?
/// Its version when it is.
pub fn is_our_health(body: &str) -> Option<String> {
    crate::proxy::health::Health::parse(body.as_bytes()).map(|h| h.version)
}

fn proxy_port(f: &Facts) -> Check {
    let p = &f.proxy;
    match &p.probe {
        PortProbe::Closed => Check::warn(
            "proxy.port",
            format!("nothing listens on {}: the proxy is not running", p.url),
            "`ccr-setup up` (or `ccr-setup code`, which starts it when needed)",
        ),
        PortProbe::Unknown(e) => Check::warn(
            "proxy.port",
            format!("cannot tell whether anything listens on {}", p.url),
            "check your firewall; then `ccr-setup status`",
        )
        .with_detail(e.clone()),
        PortProbe::Open => {
            let answer = p.health.as_ref();
            let ours = answer
                .and_then(|a| a.as_ref().ok())
                .filter(|a| a.status == 200)
                .and_then(|a| is_our_health(&a.body));
            match ours {
                Some(v) if v == f.self_version => {
                    Check::ok("proxy.port", format!("our proxy {v} answers at {}", p.url))
                }
                Some(v) => Check::warn(
                    "proxy.port",
                    format!(
                        "our proxy answers at {} but runs version {v}; this is {}",
                        p.url, f.self_version
                    ),
                    "restart it so it runs this binary: `ccr-setup stop`, then `ccr-setup up`",
                ),
                None => {
                    let what = match answer {
                        Some(Ok(a)) => format!(
                            "GET /health answered HTTP {}{}: {}",
                            a.status,
                            a.server
                                .as_ref()
                                .map(|s| format!(" (server: {s})"))
                                .unwrap_or_default(),
                            a.body.chars().take(200).collect::<String>()
                        ),
                        Some(Err(e)) => format!("GET /health failed: {e}"),
                        None => String::new(),
                    };
                    let ccr = if p.port == crate::config::DEFAULT_PORT {
                        " (claude-code-router's Node server uses this port: `ccr stop` stops it)"
                    } else {
                        ""
                    };
                    Check::fail(
                        "proxy.port",
                        format!(
                            "port {} is taken by another program, not our proxy{ccr}",
                            p.port
                        ),
                        format!(
                            "stop that program, or set \"PORT\" in {} to a free port",
                            f.config.path.display()
                        ),
                    )
                    .with_detail(what)
                }
            }
        }
    }
}

fn services(f: &Facts) -> Check {
    let s = &f.services;
    let installed: Vec<_> = s.states.iter().filter(|st| st.installed).collect();
    if installed.is_empty() {
        return Check::ok(
            "services",
            format!(
                "no {} services installed (optional: `ccr-setup init` installs them)",
                s.manager.name()
            ),
        );
    }
    let mut worst = Status::Ok;
    let mut lines = Vec::new();
    let mut fixes = Vec::new();
    let mut reload = Vec::new();
    for st in &installed {
        if st.kind == ServiceKind::Proxy {
            if let (Some(prog), Some(exe)) = (&st.program, &f.current_exe) {
                let same = Path::new(prog) == exe
                    || matches!(
                        (std::fs::canonicalize(prog), std::fs::canonicalize(exe)),
                        (Ok(a), Ok(b)) if a == b
                    );
                if st.problems.is_empty() && !same {
                    worst = worst.max(Status::Warn);
                    lines.push(format!(
                        "{}: runs {prog}, but this ccr-setup is {}",
                        st.name,
                        exe.display()
                    ));
                    fixes.push(
                        "`ccr-setup init` rewrites the service files for this binary".to_owned(),
                    );
                }
            }
        }
        if !st.problems.is_empty() {
            worst = Status::Fail;
            lines.push(format!("{}: {}", st.name, st.problems.join("; ")));
            fixes.push(format!("`ccr-setup init` rewrites {} with the current paths (a stale path after a move or upgrade)", st.path.display()));
            continue;
        }
        match st.loaded {
            Some(true) => lines.push(format!(
                "{}: installed and loaded ({})",
                st.name,
                st.path.display()
            )),
            Some(false) => {
                worst = worst.max(Status::Warn);
                lines.push(format!("{}: installed but not loaded", st.name));
                reload.push(st.kind);
            }
            None => {
                worst = worst.max(Status::Warn);
                lines.push(format!(
                    "{}: installed; {} could not say whether it is loaded{}",
                    st.name,
                    s.manager.name(),
                    if s.manager_running {
                        ""
                    } else {
                        " (it is not running here)"
                    }
                ));
            }
        }
    }
    let mut check = match worst {
        Status::Ok => Check::ok(
            "services",
            format!("{} service(s) installed and loaded", installed.len()),
        ),
        Status::Warn => Check::warn(
            "services",
            "services installed, but not all are loaded or current",
            String::new(),
        ),
        Status::Fail => Check::fail(
            "services",
            "a service file is broken or points at a missing program",
            String::new(),
        ),
    };
    if !reload.is_empty() {
        let cmds = super::fix::load_commands(s.manager, &f.home, &reload);
        fixes.push(
            cmds.iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join("; "),
        );
        check = check.with_action(FixAction::LoadServices {
            manager: s.manager,
            kinds: reload,
        });
    }
    if worst != Status::Ok {
        if fixes.is_empty() {
            fixes.push(format!(
                "check {} with `ccr-setup status`",
                s.manager.name()
            ));
        }
        check.fix = Some(fixes.join("\n"));
    }
    check.with_detail(lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;
    use std::path::PathBuf;

    use crate::ollama::owner::Owner;

    use serde_json::json;

    use super::*;
    use crate::config::ConfigFile;
    use crate::doctor::facts::{ConfigFacts, OllamaFacts, ProviderProbe, ProxyFacts, ServiceFacts};
    use crate::ollama::{InstalledModel, LoadedModel, ModelDetails};
    use crate::service::{Manager, ServiceState};

    fn config(doc: Value) -> ConfigFacts {
        let file = ConfigFile::new(Path::new("/h/.claude-code-router/config.json"), doc);
        let resolved = file.resolve_with(&|_| None).map_err(|e| match e {
            ConfigError::Invalid { problems, .. } => problems,
            other => panic!("{other}"),
        });
        ConfigFacts {
            path: file.path.clone(),
            file: Ok(file),
            resolved: Some(resolved),
            mode: Some(0o600),
            keys: Vec::new(),
            secrets_too_open: None,
        }
    }

    fn base_doc() -> Value {
        json!({
            "Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["gpt-oss:20b"]}],
            "Router": {"default": "ollama,gpt-oss:20b"}
        })
    }

    /// A healthy Linux machine; each test breaks one thing.
    fn healthy() -> Facts {
        let url = Url::parse("http://127.0.0.1:11434/").unwrap();
        Facts {
            platform: Platform::Linux,
            home: PathBuf::from("/h"),
            os: "linux".into(),
            arch: "x86_64".into(),
            memory_bytes: Some(32 * GIB),
            models_dir: PathBuf::from("/h/.ollama/models"),
            disk: Ok((PathBuf::from("/h"), 100_000_000_000)),
            brew: None,
            ollama_bin: ToolProbe::Found {
                path: "/usr/bin/ollama".into(),
                version: Some("0.12.3".into()),
            },
            claude_bin: ToolProbe::Found {
                path: "/usr/bin/claude".into(),
                version: Some("2.1.197".into()),
            },
            ollama: OllamaFacts {
                local: true,
                url,
                version: Ok("0.12.3".into()),
                models: Some(vec![InstalledModel {
                    name: "gpt-oss:20b".into(),
                    model: "gpt-oss:20b".into(),
                    size: 1,
                    digest: String::new(),
                }]),
                details: Some(Ok(ModelDetails {
                    capabilities: vec!["completion".into(), "tools".into()],
                    architecture: Some("gptoss".into()),
                    trained_context: Some(131_072),
                })),
                loaded: Some(Ok(Some(LoadedModel {
                    name: "gpt-oss:20b".into(),
                    model: "gpt-oss:20b".into(),
                    size: 1,
                    size_vram: 1,
                    context_length: Some(32_768),
                    expires_at: None,
                }))),
                owner: Owner::Other {
                    pid: Some(7),
                    command: Some("ollama serve".into()),
                },
            },
            launchers: Vec::new(),
            claude_json_path: PathBuf::from("/h/.claude.json"),
            claude_json: ClaudeJson::Done,
            claude_settings_path: PathBuf::from("/h/.claude/settings.json"),
            claude_settings_env: Ok(Vec::new()),
            anthropic_env: Vec::new(),
            config: config(base_doc()),
            model: DEFAULT_MODEL.into(),
            context_length: 32_768,
            providers: vec![ProviderProbe {
                index: 0,
                name: "ollama".into(),
                url: "http://127.0.0.1:11434/v1/chat/completions".into(),
                is_ollama: true,
                is_default: true,
                models: vec!["gpt-oss:20b".into()],
                answer: Ok(Some(vec!["gpt-oss:20b".into()])),
            }],
            proxy: ProxyFacts {
                url: "http://127.0.0.1:3456".into(),
                port: 3456,
                probe: PortProbe::Open,
                health: Some(Ok(super::super::probe::HttpAnswer {
                    status: 200,
                    body: json!({"status": "ok", "version": env!("CARGO_PKG_VERSION"), "providers": []}).to_string(),
                    server: None,
                })),
            },
            services: ServiceFacts {
                manager: Manager::Systemd,
                manager_running: true,
                states: Vec::new(),
            },
            current_exe: Some(PathBuf::from("/usr/local/bin/ccr-setup")),
            self_version: env!("CARGO_PKG_VERSION").into(),
        }
    }

    fn check(f: &Facts, id: &str) -> Check {
        evaluate(f).into_iter().find(|c| c.id == id).unwrap()
    }

    #[test]
    fn healthy_is_all_ok_and_in_documented_order() {
        let checks = evaluate(&healthy());
        let ids: Vec<&str> = checks.iter().map(|c| c.id).collect();
        assert_eq!(ids, crate::doctor::CHECK_IDS);
        for c in &checks {
            assert_eq!(c.status, Status::Ok, "{c:?}");
        }
    }

    #[test]
    fn memory_thresholds_for_gpt_oss() {
        let mut f = healthy();
        for (gib, want) in [
            (8, Status::Fail),
            (12, Status::Warn),
            (15, Status::Warn),
            (16, Status::Ok),
        ] {
            f.memory_bytes = Some(gib * GIB);
            assert_eq!(check(&f, "platform.memory").status, want, "{gib} GiB");
        }
        // A 16 GB machine whose kernel reserves some still counts as 16.
        f.memory_bytes = Some(16 * GIB - 400 * (1 << 20));
        assert_eq!(check(&f, "platform.memory").status, Status::Ok);
        f.memory_bytes = Some(8 * GIB);
        f.model = "qwen3:4b".into();
        assert_eq!(check(&f, "platform.memory").status, Status::Ok);
    }

    #[test]
    fn disk_needs_room_only_for_a_missing_model() {
        let mut f = healthy();
        f.disk = Ok((PathBuf::from("/h"), 10_000_000_000));
        assert_eq!(check(&f, "platform.disk").status, Status::Ok);
        f.ollama.models = Some(Vec::new());
        let c = check(&f, "platform.disk");
        assert_eq!(c.status, Status::Fail, "{c:?}");
        assert!(c.fix.unwrap().contains("OLLAMA_MODELS"));
        f.disk = Ok((PathBuf::from("/h"), 1_000_000_000));
        f.ollama.models = None;
        f.ollama.local = false;
        assert_eq!(check(&f, "platform.disk").status, Status::Ok);
    }

    #[test]
    fn old_ollama_fails_with_the_minimum_named() {
        let mut f = healthy();
        f.ollama_bin = ToolProbe::Found {
            path: "/usr/bin/ollama".into(),
            version: Some("0.9.6".into()),
        };
        f.ollama.version = Ok("0.9.6".into());
        for id in ["ollama.binary", "ollama.server"] {
            let c = check(&f, id);
            assert_eq!(c.status, Status::Fail);
            assert!(c.summary.contains("0.11.0"), "{c:?}");
        }
    }

    #[test]
    fn missing_tools_capability_fails() {
        let mut f = healthy();
        f.ollama.details = Some(Ok(ModelDetails {
            capabilities: vec!["completion".into()],
            architecture: None,
            trained_context: None,
        }));
        let c = check(&f, "ollama.model");
        assert_eq!(c.status, Status::Fail);
        assert!(c.summary.contains("tools"));
    }

    #[test]
    fn context_fix_depends_on_who_runs_the_server() {
        let mut f = healthy();
        if let Some(Ok(Some(m))) = &mut f.ollama.loaded {
            m.context_length = Some(4096);
        }
        f.ollama.owner = Owner::OllamaApp { pid: None };
        let c = check(&f, "ollama.context");
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.unwrap().contains("Settings"));
        f.ollama.owner = Owner::SystemdService { pid: None };
        assert!(check(&f, "ollama.context")
            .fix
            .unwrap()
            .contains("Environment=\"OLLAMA_CONTEXT_LENGTH=32768\""));
        f.ollama.loaded = Some(Ok(None));
        assert_eq!(check(&f, "ollama.context").status, Status::Ok);
    }

    #[test]
    fn two_launchers_compete() {
        let mut f = healthy();
        f.platform = Platform::MacOs;
        f.launchers = vec![
            Launcher::App("/Applications/Ollama.app".into()),
            Launcher::BrewService("/h/Library/LaunchAgents/homebrew.mxcl.ollama.plist".into()),
        ];
        let c = check(&f, "ollama.competing");
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.unwrap().contains("brew services stop ollama"));
    }

    #[test]
    fn homebrew_matters_on_macos_only() {
        let mut f = healthy();
        assert_eq!(check(&f, "homebrew").status, Status::Ok);
        f.platform = Platform::MacOs;
        f.brew = Some(ToolProbe::Missing);
        assert_eq!(check(&f, "homebrew").status, Status::Warn);
    }

    #[test]
    fn anthropic_settings_that_bypass_the_proxy() {
        let mut f = healthy();
        f.claude_settings_env = Ok(vec![(
            "ANTHROPIC_BASE_URL".into(),
            "https://api.anthropic.com".into(),
        )]);
        let c = check(&f, "claude.env");
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.unwrap().contains("settings.json"));

        // Pointing at the proxy (localhost = 127.0.0.1) is fine.
        f.claude_settings_env = Ok(vec![(
            "ANTHROPIC_BASE_URL".into(),
            "http://localhost:3456/".into(),
        )]);
        assert_eq!(check(&f, "claude.env").status, Status::Ok);

        f.claude_settings_env = Ok(Vec::new());
        f.anthropic_env = vec![("ANTHROPIC_BASE_URL".into(), "https://example.com".into())];
        assert_eq!(check(&f, "claude.env").status, Status::Warn);
        // A key alone is normal cloud use.
        f.anthropic_env = vec![("ANTHROPIC_API_KEY".into(), "sk-ant-x".into())];
        assert_eq!(check(&f, "claude.env").status, Status::Ok);
        f.anthropic_env
            .push(("ANTHROPIC_BASE_URL".into(), "http://127.0.0.1:3456".into()));
        let c = check(&f, "claude.env");
        assert_eq!(c.status, Status::Warn);
        assert!(
            !format!("{c:?}").contains("sk-ant-x"),
            "a secret leaked: {c:?}"
        );
    }

    #[test]
    fn onboarding_fix_is_offered() {
        let mut f = healthy();
        f.claude_json = ClaudeJson::Missing;
        let c = check(&f, "claude.onboarding");
        assert_eq!(c.status, Status::Warn);
        assert_eq!(
            c.action,
            Some(FixAction::SeedClaudeJson("/h/.claude.json".into()))
        );
    }

    #[test]
    fn host_apikey_rule() {
        let mut f = healthy();
        let mut doc = base_doc();
        doc["HOST"] = json!("0.0.0.0");
        f.config = config(doc.clone());
        // Invalid as a whole (validation names HOST), and the auth check fails too.
        assert_eq!(check(&f, "config.valid").status, Status::Fail);
        assert_eq!(check(&f, "config.auth").status, Status::Fail);
        doc["APIKEY"] = json!("short");
        f.config = config(doc.clone());
        assert_eq!(check(&f, "config.auth").status, Status::Warn);
        doc["APIKEY"] = json!("a-long-enough-random-secret");
        f.config = config(doc);
        assert_eq!(check(&f, "config.auth").status, Status::Ok);
    }

    #[test]
    fn providers_fail_for_the_default_and_warn_for_others() {
        let mut f = healthy();
        f.providers.push(ProviderProbe {
            index: 1,
            name: "cloud".into(),
            url: "https://api.example.com/v1/chat/completions".into(),
            is_ollama: false,
            is_default: false,
            models: vec!["big".into()],
            answer: Err("no answer in time".into()),
        });
        assert_eq!(check(&f, "config.providers").status, Status::Warn);
        f.providers[1].answer = Ok(Some(vec!["other".into()]));
        let c = check(&f, "config.providers");
        assert_eq!(c.status, Status::Warn);
        assert!(c.detail.unwrap().contains("big not on the server"));
        // `gpt-oss` and `gpt-oss:latest` are one model to Ollama.
        f.providers[0].models = vec!["gpt-oss".into()];
        f.providers[0].answer = Ok(Some(vec!["gpt-oss:latest".into()]));
        f.providers.truncate(1);
        assert_eq!(check(&f, "config.providers").status, Status::Ok);
        f.providers[0].answer = Ok(Some(vec![]));
        let c = check(&f, "config.providers");
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.unwrap().contains("ollama pull gpt-oss"));
    }

    #[test]
    fn stranger_on_the_port() {
        let mut f = healthy();
        f.proxy.health = Some(Ok(super::super::probe::HttpAnswer {
            status: 404,
            body: "Not Found".into(),
            server: Some("node".into()),
        }));
        let c = check(&f, "proxy.port");
        assert_eq!(c.status, Status::Fail);
        assert!(c.summary.contains("claude-code-router"), "{c:?}");
        f.proxy.probe = PortProbe::Closed;
        f.proxy.health = None;
        assert_eq!(check(&f, "proxy.port").status, Status::Warn);
    }

    fn service(
        kind: ServiceKind,
        program: &str,
        loaded: Option<bool>,
        problems: &[&str],
    ) -> ServiceState {
        ServiceState {
            manager: Manager::Systemd,
            kind,
            name: kind.systemd_unit(),
            path: PathBuf::from(format!("/h/.config/systemd/user/{}", kind.systemd_unit())),
            installed: true,
            loaded,
            program: Some(program.into()),
            problems: problems.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    #[test]
    fn services_stale_unloaded_and_moved() {
        let mut f = healthy();
        f.services.states = vec![
            service(ServiceKind::Ollama, "/usr/bin/ollama", Some(true), &[]),
            service(
                ServiceKind::Proxy,
                "/usr/local/bin/ccr-setup",
                Some(true),
                &[],
            ),
        ];
        assert_eq!(check(&f, "services").status, Status::Ok);

        f.services.states[1].loaded = Some(false);
        let c = check(&f, "services");
        assert_eq!(c.status, Status::Warn);
        assert!(c
            .fix
            .unwrap()
            .contains("systemctl --user enable --now ccr-setup-proxy.service"));
        assert!(matches!(c.action, Some(FixAction::LoadServices { .. })));

        f.services.states[1] = service(ServiceKind::Proxy, "/old/place/ccr-setup", Some(true), &[]);
        let c = check(&f, "services");
        assert_eq!(c.status, Status::Warn, "{c:?}");
        assert!(c.detail.unwrap().contains("/old/place/ccr-setup"));

        f.services.states[1] = service(
            ServiceKind::Proxy,
            "/old/place/ccr-setup",
            Some(true),
            &["/old/place/ccr-setup is missing or not executable"],
        );
        let c = check(&f, "services");
        assert_eq!(c.status, Status::Fail);
        assert!(c.fix.unwrap().contains("ccr-setup init"));
    }

    #[test]
    fn literal_key_in_a_readable_file_fails_with_chmod() {
        let mut f = healthy();
        let mut doc = base_doc();
        doc["APIKEY"] = json!("a-long-enough-random-secret");
        f.config = config(doc);
        f.config.mode = Some(0o644);
        let c = check(&f, "config.mode");
        assert_eq!(c.status, Status::Fail);
        assert_eq!(c.action, Some(FixAction::Chmod600(f.config.path.clone())));
        // A $VAR reference is not a secret.
        let mut doc = base_doc();
        doc["APIKEY"] = json!("$PROXY_KEY");
        f.config = config(doc);
        f.config.mode = Some(0o644);
        assert_eq!(check(&f, "config.mode").status, Status::Ok);
    }
}
