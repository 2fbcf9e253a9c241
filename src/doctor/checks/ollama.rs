//! Ollama: the binary, the server, the model, its context, and competing servers.

use super::*;

/// The too-old failure for a server or CLI at `version`, when it is too old.
pub(super) fn too_old(version: &str, f: &Facts) -> Option<Diagnostic> {
    let min = crate::ollama::version::check(version, &f.model).err()?;
    Some(advice::too_old(
        version,
        &f.model,
        min,
        f.platform,
        &f.ollama.owner,
    ))
}

pub(super) fn ollama_binary(f: &Facts) -> Check {
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
        } => version_unknown("ollama.binary", "ollama", path),
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

pub(super) fn ollama_server(f: &Facts) -> Check {
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

pub(super) fn not_checked(id: &'static str, why: &str) -> Check {
    Check::warn(
        id,
        format!("not checked: {why}"),
        "fix the failures above first, then run `ccr-setup doctor` again",
    )
}

pub(super) fn ollama_model(f: &Facts) -> Check {
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

/// What the configured model cannot take of what Claude Code sends, and what the
/// proxy does about it (issue #27): no vision means images go to `Router.image` or
/// become notes; no thinking means no `reasoning_effort` (Ollama's 400 otherwise).
pub(super) fn ollama_capabilities(f: &Facts) -> Check {
    const ID: &str = "ollama.capabilities";
    let Some(Ok(d)) = &f.ollama.details else {
        return not_checked(ID, "the model's /api/show is not available");
    };
    let image_route = f
        .config
        .config()
        .and_then(|c| c.router.image.as_ref())
        .map(ToString::to_string);
    let mut lacks = Vec::new();
    let mut handling = Vec::new();
    if !d.has_capability("vision") {
        lacks.push("vision");
        handling.push(match &image_route {
            Some(route) => format!("no vision: an image just pasted goes to Router.image ({route}); images earlier in the conversation become a one-line note"),
            None => "no vision: images become a note (the model tells you it cannot see them); to have them read, set Router.image to a cloud model with vision (`ccr-setup init` with a cloud key does)".to_owned(),
        });
    }
    if !d.has_capability("thinking") {
        lacks.push("thinking");
        handling.push(
            "no thinking: requests are sent without reasoning_effort, which Ollama would refuse"
                .to_owned(),
        );
    }
    if lacks.is_empty() {
        return Check::ok(ID, format!("{} takes images and thinking", f.model));
    }
    let summary = format!(
        "{} has no {}; the proxy adapts",
        f.model,
        lacks.join(" and no ")
    );
    Check::ok(ID, summary).with_detail(handling.join("\n"))
}

pub(super) fn ollama_context(f: &Facts) -> Check {
    let o = &f.ollama;
    if !o.answers() {
        return not_checked("ollama.context", "the Ollama server does not answer");
    }
    let wanted = f.context_length;
    match &o.loaded {
        Some(Err(e)) if e == crate::doctor::facts::MODEL_LOADING => Check::warn(
            "ollama.context",
            crate::doctor::facts::MODEL_LOADING,
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
            Some(ctx) => match o.owner.parallel_fix(f.num_parallel) {
                Some(fix) if f.num_parallel > 1 => Check::warn(
                    "ollama.context",
                    format!(
                        "{} runs with a {ctx}-token context, but {} runs it: ccr-setup cannot give it the {} parallel slots the config asks for",
                        f.model,
                        o.owner.describe(),
                        f.num_parallel
                    ),
                    fix,
                )
                .with_detail("with one slot, a subagent or side request evicts the main conversation's cached prompt, and the next main turn re-reads all of it"),
                _ => Check::ok(
                    "ollama.context",
                    format!(
                        "{} runs with a {ctx}-token context (configured: {wanted})",
                        f.model
                    ),
                ),
            },
        },
    }
}

pub(super) fn ollama_competing(f: &Facts) -> Check {
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
