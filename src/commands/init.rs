//! `ccr-setup init`: ask (or take flags), probe, show one plan of installs, writes and
//! service loads, ask once, apply. Re-running with the same answers changes nothing.
//!
//! Prompts go to the terminal: stdin when it is one, else `/dev/tty` (so `curl | sh`
//! still gets a wizard), else the defaults are used and the user is told.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use console::Term;
use dialoguer::theme::ColorfulTheme;

use super::init_key::{self, CloudKey};
use super::prompt::Prompter;
use super::shared::resolve_manager;
use super::{Context, Outcome};
use crate::cli::InitArgs;
use crate::config::{
    ConfigError, ConfigFile, OllamaSettings, SecretsStore, DEFAULT_CONTEXT_LENGTH, DEFAULT_MODEL,
    DEFAULT_PORT,
};
use crate::diagnostic::Diagnostic;
use crate::fsutil::{self, WriteOutcome};
use crate::ollama::{InstalledModel, ModelDetails, OllamaClient};
use crate::provision::install::{self, InstallStep, OutputLine};
use crate::provision::router_config::{self, Answers};
use crate::provision::{self, claude_json, ExistingOllama, Platform, ProbeEnv, Probes};
use crate::service::{
    self, systemd, Layout, Manager, RenderedService, ServiceCommand, ServiceKind, ServiceSpec,
};

/// What Ollama told us, when it answered.
struct OllamaInfo {
    client: OllamaClient,
    models: Option<Vec<InstalledModel>>,
}

impl OllamaInfo {
    fn fetch() -> OllamaInfo {
        let client = OllamaClient::new(crate::ollama::base_url_from_env())
            .with_probe_timeout(Duration::from_secs(2));
        let models = super::shared::block_on(client.tags()).ok();
        OllamaInfo { client, models }
    }

    /// `/api/show` of the model, when it is pulled and Ollama answers.
    fn details(&self, model: &str) -> Option<ModelDetails> {
        self.models.as_ref()?;
        super::shared::block_on(self.client.show(model)).ok()
    }

    /// The context this machine affords the model and what it costs (`ollama::kv`).
    fn context_advice(&self, model: &str, details: Option<&ModelDetails>) -> Option<String> {
        let want = crate::ollama::normalize_model_name(model);
        let pulled = (self.models.iter().flatten())
            .find(|m| crate::ollama::normalize_model_name(&m.name) == want);
        let memory = super::shared::block_on(crate::doctor::probe::memory_bytes())?;
        let least = DEFAULT_CONTEXT_LENGTH.into();
        match (details, pulled) {
            (Some(d), Some(m)) => crate::ollama::kv::advise(d, m.size, memory, least),
            _ => crate::ollama::kv::advise_unpulled(model, memory, least),
        }
    }
}

fn check_context(model: &str, ctx: u32, trained: Option<u64>) -> Result<(), String> {
    if ctx < 2048 {
        return Err(format!("{ctx} tokens is too small for Claude Code's prompts; use at least 2048 (default {DEFAULT_CONTEXT_LENGTH})"));
    }
    match trained {
        Some(t) if u64::from(ctx) > t => Err(format!(
            "{model} was trained on {t} tokens of context; Ollama caps OLLAMA_CONTEXT_LENGTH there, so use {t} or less"
        )),
        _ => Ok(()),
    }
}

/// All the answers: the config ones, whether to install services, and the cloud key.
struct AllAnswers {
    config: Answers,
    services: bool,
    /// With cloud fallback: the key to store, or why none is.
    key: Option<CloudKey>,
    /// A new `APIKEY` for the proxy, when the config has none and the user did not
    /// decline one.
    proxy_key: Option<String>,
}

fn gather(
    prompter: &Prompter,
    args: &InitArgs,
    base: Option<Answers>,
    ollama: &OllamaInfo,
    manager: Option<Manager>,
    store: &SecretsStore,
    has_api_key: bool,
) -> anyhow::Result<AllAnswers> {
    let defaults = base.unwrap_or_else(|| Answers {
        model: DEFAULT_MODEL.to_owned(),
        context_length: DEFAULT_CONTEXT_LENGTH,
        port: DEFAULT_PORT,
        cloud_fallback: crate::env_vars::non_empty(crate::env_vars::EnvVars::ANTHROPIC_API_KEY)
            .is_some(),
        cloud_model: crate::catalogue::default_cloud_model().to_owned(),
        ollama_chat_url: None,
    });
    let theme = ColorfulTheme::default();
    let term = prompter.term();

    let model = match (&args.model, term) {
        (Some(m), _) => m.clone(),
        (None, None) => defaults.model.clone(),
        (None, Some(t)) => ask_model(t, &theme, &defaults.model, ollama.models.as_deref())?,
    };
    let details = ollama.details(&model);
    let trained = details.as_ref().and_then(|d| d.trained_context);
    let advice = ollama.context_advice(&model, details.as_ref());
    match (&advice, term, args.context_length) {
        (Some(a), None, _) | (Some(a), _, Some(_)) => println!("Note: {a}"),
        _ => {}
    }
    let context_length = match (args.context_length, term) {
        (Some(c), _) => c,
        (None, None) => defaults.context_length,
        (None, Some(t)) => {
            let prompt = match (trained, &advice) {
                (Some(tc), Some(a)) => format!("Context length in tokens (trained: {tc}; {a})"),
                (Some(tc), None) => format!("Context length in tokens (trained: {tc})"),
                _ => "Context length in tokens".to_owned(),
            };
            let m = model.clone();
            dialoguer::Input::<u32>::with_theme(&theme)
                .with_prompt(prompt)
                .default(
                    defaults
                        .context_length
                        .min(trained.map_or(u32::MAX, |t| t as u32)),
                )
                .validate_with(move |c: &u32| check_context(&m, *c, trained))
                .interact_text_on(t)?
        }
    };
    if let Err(why) = check_context(&model, context_length, trained) {
        bail!("--context-length {context_length}: {why}");
    }
    let port = match (args.port, term) {
        (Some(p), _) => p,
        (None, None) => defaults.port,
        (None, Some(t)) => dialoguer::Input::<u16>::with_theme(&theme)
            .with_prompt("Proxy port")
            .default(defaults.port)
            .validate_with(|p: &u16| {
                if *p == 0 {
                    Err("use a port from 1 to 65535")
                } else {
                    Ok(())
                }
            })
            .interact_text_on(t)?,
    };
    if port == 0 {
        return Err(Diagnostic::new("--port 0 is not a port")
            .with_hint(format!(
                "use a port from 1 to 65535 (default {DEFAULT_PORT})"
            ))
            .into());
    }
    let cloud_fallback = if args.cloud_fallback {
        true
    } else if args.no_cloud_fallback {
        false
    } else {
        match term {
            None => defaults.cloud_fallback,
            Some(t) => dialoguer::Confirm::with_theme(&theme)
                .with_prompt("Add the Claude API as cloud fallback (think, long context, errors)?")
                .default(defaults.cloud_fallback)
                .interact_on(t)?,
        }
    };
    let cloud_model = args
        .cloud_model
        .clone()
        .unwrap_or_else(|| defaults.cloud_model.clone());
    if cloud_model.trim().is_empty() || cloud_model.contains(',') {
        bail!(
            "--cloud-model {cloud_model:?}: give one model id, e.g. {}",
            crate::catalogue::default_cloud_model()
        );
    }
    let key = match cloud_fallback {
        true => Some(init_key::gather(term, store, !args.no_key_check)?),
        false => None,
    };
    let services = match manager {
        None => false,
        Some(m) => {
            if args.service {
                true
            } else if args.no_service {
                false
            } else {
                match term {
                    None => true,
                    Some(t) => dialoguer::Confirm::with_theme(&theme)
                        .with_prompt(format!(
                            "Start Ollama and the proxy at login ({} services)?",
                            m.name()
                        ))
                        .default(true)
                        .interact_on(t)?,
                }
            }
        }
    };
    let proxy_key = match (has_api_key, args.no_api_key, term) {
        (true, _, _) | (false, true, _) => None,
        (false, false, None) => Some(router_config::new_api_key()?),
        (false, false, Some(t)) => dialoguer::Confirm::with_theme(&theme)
            .with_prompt("Protect the proxy with a random API key (recommended: web pages and other local users cannot use it)?")
            .default(true)
            .interact_on(t)?
            .then(router_config::new_api_key)
            .transpose()?,
    };
    Ok(AllAnswers {
        config: Answers {
            model,
            context_length,
            port,
            cloud_fallback,
            cloud_model,
            ollama_chat_url: crate::env_vars::non_empty(crate::env_vars::EnvVars::OLLAMA_HOST)
                .map(|_| router_config::ollama_chat_url(&crate::ollama::base_url_from_env())),
        },
        services,
        key,
        proxy_key,
    })
}

fn ask_model(
    t: &Term,
    theme: &ColorfulTheme,
    default: &str,
    pulled: Option<&[InstalledModel]>,
) -> anyhow::Result<String> {
    let Some(pulled) = pulled.filter(|p| !p.is_empty()) else {
        return Ok(dialoguer::Input::<String>::with_theme(theme)
            .with_prompt("Ollama model (`ccr-setup up` pulls it if needed)")
            .default(default.to_owned())
            .interact_text_on(t)?);
    };
    let mut names: Vec<String> = pulled.iter().map(|m| m.name.clone()).collect();
    let mut items: Vec<String> = pulled
        .iter()
        .map(|m| format!("{} ({})", m.name, crate::humanize::bytes(m.size)))
        .collect();
    if !names.iter().any(|n| n == default) {
        names.insert(0, default.to_owned());
        items.insert(
            0,
            format!("{default} (not pulled yet; `ccr-setup up` pulls it)"),
        );
    }
    items.push("another model…".to_owned());
    let default_index = names.iter().position(|n| n == default).unwrap_or(0);
    let pick = dialoguer::Select::with_theme(theme)
        .with_prompt("Ollama model")
        .items(&items)
        .default(default_index)
        .interact_on(t)?;
    if pick < names.len() {
        Ok(names[pick].clone())
    } else {
        Ok(dialoguer::Input::<String>::with_theme(theme)
            .with_prompt("Model name")
            .interact_text_on(t)?)
    }
}

/// Whether a file write would change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Change {
    Create,
    Update,
    Unchanged,
}

impl Change {
    fn of(path: &Path, contents: &[u8]) -> Change {
        match std::fs::read(path) {
            Ok(old) if old == contents => Change::Unchanged,
            Ok(_) => Change::Update,
            Err(_) => Change::Create,
        }
    }
    fn word(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Unchanged => "unchanged",
        }
    }
}

/// Everything `init` would write and load.
struct FilePlan {
    config: ConfigFile,
    config_change: Change,
    claude_json: Option<String>,
    services: Vec<(RenderedService, Change)>,
    dropin: Option<(PathBuf, String, Change)>,
    notes: Vec<String>,
}

fn plan_files(
    ctx: &Context,
    answers: &AllAnswers,
    existing: Option<&ConfigFile>,
    probes: &Probes,
    manager: Option<Manager>,
    layout: &Layout,
) -> anyhow::Result<FilePlan> {
    let mut notes = Vec::new();
    let mut doc = existing
        .map(|f| f.doc.clone())
        .unwrap_or_else(router_config::template);
    router_config::apply(&mut doc, &answers.config)?;
    if let Some(key) = &answers.proxy_key {
        router_config::ensure_api_key(&mut doc, key);
    }
    let config_change = match existing {
        None => Change::Create,
        Some(f) if f.doc == doc => Change::Unchanged,
        Some(_) => Change::Update,
    };
    let config = ConfigFile::new(&ctx.config_path, doc);
    // The config must resolve (a referenced key may be unset here; that is for the proxy).
    if let Err(ConfigError::Invalid { problems, .. }) =
        config.resolve_with(&|n| Some(std::env::var(n).unwrap_or_else(|_| "set-later".into())))
    {
        let list: Vec<String> = problems.iter().map(|p| format!("  - {p}")).collect();
        bail!(
            "the config would not be valid; fix these in {} and re-run:\n{}",
            ctx.config_path.display(),
            list.join("\n")
        );
    }

    let claude_path = crate::paths::claude_json_path();
    let current = std::fs::read_to_string(&claude_path).ok();
    let claude_json = claude_json::seeded(&claude_path.display().to_string(), current.as_deref())?;

    let settings = OllamaSettings {
        model: answers.config.model.clone(),
        context_length: answers.config.context_length,
        ..OllamaSettings::default()
    };
    let mut services = Vec::new();
    let mut dropin = None;
    if let (true, Some(manager)) = (answers.services, manager) {
        let competing = match (&probes.existing_ollama, manager) {
            (
                Some(e @ (ExistingOllama::App(_) | ExistingOllama::BrewService(_))),
                Manager::Launchd,
            ) => Some(e),
            (Some(e @ ExistingOllama::SystemUnit(_)), Manager::Systemd) => Some(e),
            _ => None,
        };
        match competing {
            Some(e) => {
                notes.push(e.explanation());
                if let ExistingOllama::SystemUnit(_) = e {
                    let path = systemd::dropin_path(&crate::paths::system_root());
                    let text = systemd::render_ollama_dropin(&settings);
                    let change = Change::of(&path, text.as_bytes());
                    dropin = Some((path, text, change));
                }
            }
            None => {
                let ollama = ollama_binary(probes);
                let spec = ServiceSpec::ollama(&ollama, &settings);
                services.push(service::render(manager, layout, &spec)?);
            }
        }
        let exe = std::env::current_exe().context("cannot locate the ccr-setup binary")?;
        let spec = ServiceSpec::proxy(&exe, &ctx.config_path);
        services.push(service::render(manager, layout, &spec)?);
    }
    let services = services
        .into_iter()
        .map(|r| {
            let c = Change::of(&r.path, r.contents.as_bytes());
            (r, c)
        })
        .collect();
    Ok(FilePlan {
        config,
        config_change,
        claude_json,
        services,
        dropin,
        notes,
    })
}

/// Where Ollama is, or will be once installed.
fn ollama_binary(probes: &Probes) -> PathBuf {
    if let Some(t) = &probes.ollama {
        return t.path.clone();
    }
    match (&probes.brew, probes.platform) {
        (Some(brew), Platform::MacOs) => brew.path.with_file_name("ollama"),
        (None, Platform::MacOs) => PathBuf::from("/opt/homebrew/bin/ollama"),
        (_, Platform::Linux) => PathBuf::from("/usr/local/bin/ollama"),
    }
}

fn tilde(p: &Path) -> String {
    let home = crate::paths::home_dir();
    match p.strip_prefix(&home) {
        Ok(rest) if home != Path::new("/") => format!("~/{}", rest.display()),
        _ => p.display().to_string(),
    }
}

pub fn run(ctx: &Context, args: InitArgs) -> anyhow::Result<Outcome> {
    let platform = Platform::from_env()?;
    let manager = resolve_manager(args.service_manager);
    let prompter = Prompter::open(args.yes);
    if let Prompter::NoTerminal = prompter {
        eprintln!("No terminal to ask on (stdin is not a TTY and there is no /dev/tty): planning with the defaults and the flags given; nothing is installed or written without consent.");
    }
    let existing = match ConfigFile::load(&ctx.config_path) {
        Ok(f) => Some(f),
        Err(ConfigError::NotFound { .. }) => None,
        Err(e) => {
            return Err(e).context(
                Diagnostic::new("init will not overwrite a config it cannot read")
                    .with_hint("fix it or move it away, then re-run `ccr-setup init`"),
            )
        }
    };
    let base = existing
        .as_ref()
        .and_then(|f| router_config::current_answers(&f.doc));
    let ollama = OllamaInfo::fetch();
    let store = SecretsStore::for_config(&ctx.config_path);
    let has_api_key = existing
        .as_ref()
        .is_some_and(|f| router_config::has_api_key(&f.doc));
    let answers = gather(
        &prompter,
        &args,
        base,
        &ollama,
        manager,
        &store,
        has_api_key,
    )?;

    let probe_env = ProbeEnv {
        root: crate::paths::system_root(),
        ..ProbeEnv::current(platform)
    };
    let probes = provision::probe_with(&probe_env);
    let scratch = crate::paths::run_dir().join("installers");
    let installs = if args.no_install {
        Vec::new()
    } else {
        install::plan_installs(platform, &probes, &scratch)?
    };
    if args.no_install {
        for (tool, missing) in [
            ("Ollama", probes.ollama.is_none()),
            ("Claude Code", probes.claude.is_none()),
        ] {
            if missing {
                println!("Note: {tool} is not installed and --no-install was given; install it before `ccr-setup up`.");
            }
        }
    }
    if args.service && manager.is_none() {
        println!("Note: --service was given, but no service manager was detected (no launchd, systemd not running); pass --service-manager launchd|systemd to choose one.");
    }
    let layout = Layout::current();
    let files = plan_files(ctx, &answers, existing.as_ref(), &probes, manager, &layout)?;
    let loaded: Vec<(ServiceKind, bool)> = files
        .services
        .iter()
        .map(|(r, _)| {
            (
                r.kind,
                service::is_loaded(r.manager, &layout, r.kind) == Some(true),
            )
        })
        .collect();
    let loads = load_plan(manager, &layout, &files, &loaded);

    let proxy_key_line = answers.proxy_key.as_ref().map(|_| {
        format!(
            "    {:<9} APIKEY in the config: a new random proxy key (`ccr-setup code` and `env` pass it; --no-api-key to skip)",
            "add"
        )
    });
    let key_line = [
        answers.key.as_ref().and_then(CloudKey::plan_line),
        proxy_key_line,
    ]
    .into_iter()
    .flatten()
    .reduce(|a, b| format!("{a}\n{b}"));
    let changes = !installs.is_empty()
        || key_line.is_some()
        || files.config_change != Change::Unchanged
        || files.claude_json.is_some()
        || files.services.iter().any(|(_, c)| *c != Change::Unchanged)
        || !loads.is_empty()
        || files
            .dropin
            .as_ref()
            .is_some_and(|d| d.2 != Change::Unchanged);
    for note in &files.notes {
        println!("Note: {note}");
    }
    if !changes {
        println!(
            "Nothing to change: {} and the services already match these answers (model {}, context {}, port {}).",
            tilde(&ctx.config_path),
            answers.config.model,
            answers.config.context_length,
            answers.config.port
        );
        return Ok(Outcome::Success);
    }
    print_plan(&installs, &files, &loads, key_line.as_deref());
    if args.dry_run {
        println!("\nDry run: nothing was changed.");
        return Ok(Outcome::Success);
    }
    if let Prompter::NoTerminal = prompter {
        // Like rustup without -y: installers and writes need a yes from a person.
        eprintln!("\nNo terminal to ask for consent, so nothing was installed or written.");
        eprintln!(
            "To apply this plan, run:\n    {}",
            super::init_consent::apply_command(
                ctx,
                &args,
                &answers.config,
                answers.services,
                manager
            )
        );
        return Ok(Outcome::Usage);
    }
    if !prompter.confirm("Apply this plan?", true)? {
        println!("Nothing was changed.");
        return Ok(Outcome::Success);
    }
    apply(
        ctx,
        &prompter,
        platform,
        &probe_env,
        &answers,
        existing.as_ref(),
        manager,
        &layout,
        installs,
        files,
        &loaded,
    )
}

fn load_plan(
    manager: Option<Manager>,
    layout: &Layout,
    files: &FilePlan,
    loaded: &[(ServiceKind, bool)],
) -> Vec<ServiceCommand> {
    let Some(manager) = manager else {
        return Vec::new();
    };
    // Looked up by kind: after an install the set of services can change (Ollama's
    // Linux installer creates its own system service, so ours is dropped).
    let states: Vec<(ServiceKind, bool, bool)> = files
        .services
        .iter()
        .map(|(r, c)| {
            let is_loaded = loaded.iter().any(|(k, l)| *k == r.kind && *l);
            (r.kind, *c != Change::Unchanged, is_loaded)
        })
        .collect();
    service::load_commands(manager, layout, &states)
}

fn print_plan(
    installs: &[InstallStep],
    files: &FilePlan,
    loads: &[ServiceCommand],
    key_line: Option<&str>,
) {
    println!("Plan:");
    if !installs.is_empty() {
        println!("  Install:");
        for step in installs {
            let sudo = if step.uses_sudo {
                " (the installer uses sudo and may ask for your password)"
            } else {
                ""
            };
            println!("    {}: {}{sudo}", step.software.name(), step.manual);
        }
    }
    println!("  Write:");
    println!(
        "    {:<9} {} (router config{})",
        files.config_change.word(),
        tilde(&files.config.path),
        if files.config_change == Change::Update {
            "; a backup is kept"
        } else {
            ""
        }
    );
    if let Some(line) = key_line {
        println!("{line}");
    }
    if files.claude_json.is_some() {
        let path = crate::paths::claude_json_path();
        let word = if path.exists() { "update" } else { "create" };
        println!(
            "    {word:<9} {} (hasCompletedOnboarding: true, other keys kept)",
            tilde(&path)
        );
    }
    for (r, c) in &files.services {
        println!(
            "    {:<9} {} ({} service)",
            c.word(),
            tilde(&r.path),
            r.kind.short()
        );
    }
    if let Some((path, text, change)) = &files.dropin {
        if *change != Change::Unchanged {
            println!(
                "    {:<9} {} (with sudo), containing:",
                change.word(),
                path.display()
            );
            for line in text.lines() {
                println!("        {line}");
            }
        }
    }
    if !loads.is_empty() {
        println!("  Load:");
        for c in loads {
            println!("    {c}");
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn apply(
    ctx: &Context,
    prompter: &Prompter,
    platform: Platform,
    probe_env: &ProbeEnv,
    answers: &AllAnswers,
    existing: Option<&ConfigFile>,
    manager: Option<Manager>,
    layout: &Layout,
    installs: Vec<InstallStep>,
    mut files: FilePlan,
    loaded: &[(ServiceKind, bool)],
) -> anyhow::Result<Outcome> {
    let _ = platform;
    if !installs.is_empty() {
        for step in &installs {
            println!("==> Installing {} ({})", step.software.name(), step.manual);
            if step.uses_sudo {
                println!("    This installer uses sudo; enter your password if asked.");
            }
            // The error's hint (see `InstallError`) gives the manual command.
            install::run_step(step, &mut |line| match line {
                OutputLine::Command(c) => println!("    $ {c}"),
                OutputLine::Stdout(l) | OutputLine::Stderr(l) => println!("    | {l}"),
            })?;
        }
        let _ = std::fs::remove_dir_all(crate::paths::run_dir().join("installers"));
        // Paths of the freshly installed tools go into the service files.
        let probes = provision::probe_with(probe_env);
        files = plan_files(ctx, answers, existing, &probes, manager, layout)?;
        for note in &files.notes {
            println!("Note: {note}");
        }
    }

    if files.config_change != Change::Unchanged {
        match files
            .config
            .save()
            .with_context(|| format!("cannot write {}", files.config.path.display()))?
        {
            WriteOutcome::Replaced { backup } => println!(
                "Updated {} (backup: {})",
                tilde(&files.config.path),
                tilde(&backup)
            ),
            _ => println!("Wrote {}", tilde(&files.config.path)),
        }
    }
    if let Some(key) = &answers.key {
        let store = SecretsStore::for_config(&ctx.config_path);
        if let Some(line) = init_key::apply(&store, key)? {
            println!("{line}");
        }
    }
    if let Some(text) = &files.claude_json {
        let path = crate::paths::claude_json_path();
        fsutil::write_with_backup(&path, text.as_bytes(), 0o600)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("Set hasCompletedOnboarding in {}", tilde(&path));
    }
    for (r, c) in &files.services {
        if *c == Change::Unchanged {
            continue;
        }
        if r.manager == Manager::Launchd {
            let logs = layout.launchd_logs_dir();
            std::fs::create_dir_all(&logs)
                .with_context(|| format!("cannot create {}", logs.display()))?;
        }
        fsutil::write_with_backup(&r.path, r.contents.as_bytes(), 0o644)
            .with_context(|| format!("cannot write {}", r.path.display()))?;
        println!("Wrote {}", tilde(&r.path));
    }
    for cmd in load_plan(manager, layout, &files, loaded) {
        println!("$ {cmd}");
        let r = service::run_command(&cmd)?;
        if !r.success {
            eprintln!(
                "error: `{cmd}` failed ({}): {}",
                r.code.map_or("signal".into(), |c| format!("exit {c}")),
                r.stderr.trim()
            );
            eprintln!(
                "The files are written; run the command above by hand once the problem is fixed."
            );
            return Ok(Outcome::Failed);
        }
    }
    if let Some((path, text, change)) = &files.dropin {
        if *change != Change::Unchanged {
            apply_dropin(prompter, path, text)?;
        }
    }
    println!("\nDone. Next: `ccr-setup up` starts Ollama with the {}-token context and pulls {}; then `ccr-setup code`.",
        answers.config.context_length, answers.config.model);
    Ok(Outcome::Success)
}

/// Offer the drop-in for a system-wide ollama.service: show it, ask, run with sudo.
fn apply_dropin(prompter: &Prompter, path: &Path, text: &str) -> anyhow::Result<()> {
    let staged = crate::paths::run_dir().join(systemd::DROPIN_NAME);
    let as_root = nix::unistd::geteuid().is_root();
    let cmds = systemd::dropin_install_commands(&staged, path, as_root);
    let by_hand = || {
        println!(
            "To apply it later, save the file shown above as {} and run:",
            path.display()
        );
        println!("    sudo systemctl daemon-reload && sudo systemctl restart ollama.service");
    };
    if let Prompter::NoTerminal = prompter {
        println!("The system-wide ollama.service needs sudo to change, and there is no terminal to ask on.");
        by_hand();
        return Ok(());
    }
    if !prompter.confirm(
        &format!(
            "Install the drop-in {} with sudo and restart ollama.service?",
            path.display()
        ),
        true,
    )? {
        by_hand();
        return Ok(());
    }
    fsutil::write_atomic(&staged, text.as_bytes(), 0o644)?;
    for cmd in cmds {
        println!("$ {cmd}");
        let status = std::process::Command::new(&cmd.program)
            .args(&cmd.args)
            .status()
            .with_context(|| format!("cannot run `{cmd}`"))?;
        if !status.success() {
            let _ = std::fs::remove_file(&staged);
            bail!("`{cmd}` failed ({status}); nothing else was changed for ollama.service");
        }
    }
    let _ = std::fs::remove_file(&staged);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn context_is_checked_against_the_trained_length() {
        assert!(check_context("m", 32768, Some(131072)).is_ok());
        assert!(check_context("m", 32768, None).is_ok());
        let err = check_context("m", 200_000, Some(131072)).unwrap_err();
        assert!(err.contains("131072"), "{err}");
        assert!(check_context("m", 100, None).is_err());
    }
}
