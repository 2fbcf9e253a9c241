//! What `init` would install, write and load: the plan shown before consent, and the
//! check of whether anything would change at all.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::super::init_key::CloudKey;
use super::super::Context;
use super::tilde;
use super::wizard::AllAnswers;
use crate::config::{ConfigFile, OllamaSettings};
use crate::output::Printer;
use crate::provision::install::InstallStep;
use crate::provision::router_config;
use crate::provision::{claude_json, ExistingOllama, Platform, ProbeEnv, Probes};
use crate::service::{
    self, systemd, Layout, Manager, RenderedService, ServiceCommand, ServiceKind, ServiceSpec,
};

/// Whether a file write would change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    Create,
    Update,
    Unchanged,
}

impl Change {
    pub(super) fn of(path: &Path, contents: &[u8]) -> Change {
        match std::fs::read(path) {
            Ok(old) if old == contents => Change::Unchanged,
            Ok(_) => Change::Update,
            Err(_) => Change::Create,
        }
    }
    pub(super) fn word(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Unchanged => "unchanged",
        }
    }
}

/// Everything `init` would write and load.
pub(super) struct FilePlan {
    pub config: ConfigFile,
    pub config_change: Change,
    pub claude_json: Option<String>,
    pub services: Vec<(RenderedService, Change)>,
    pub dropin: Option<(PathBuf, String, Change)>,
    pub notes: Vec<String>,
}

pub(super) fn plan_files(
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
    let resolved = super::check_resolves(ctx, &config, &[])?;

    let claude_path = crate::paths::claude_json_path();
    let current = std::fs::read_to_string(&claude_path).ok();
    let claude_json = claude_json::seeded(&claude_path.display().to_string(), current.as_deref())?;

    // The service runs Ollama with the config's settings as written (slots, keep-alive,
    // flash attention), not only the answers.
    let settings = match &resolved {
        Ok(cfg) => cfg.ollama.clone(),
        Err(_) => OllamaSettings {
            model: answers.config.model.clone(),
            context_length: answers.config.context_length,
            ..OllamaSettings::default()
        },
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

pub(super) fn load_plan(
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

pub(super) fn print_plan(
    out: &Printer,
    installs: &[InstallStep],
    files: &FilePlan,
    loads: &[ServiceCommand],
    key_line: Option<&str>,
) {
    out.line("Plan:");
    if !installs.is_empty() {
        out.line("  Install:");
        for step in installs {
            let sudo = if step.uses_sudo {
                " (the installer uses sudo and may ask for your password)"
            } else {
                ""
            };
            out.line(&format!(
                "    {}: {}{sudo}",
                step.software.name(),
                step.manual
            ));
        }
    }
    out.line("  Write:");
    out.line(&format!(
        "    {:<9} {} (router config{})",
        files.config_change.word(),
        tilde(&files.config.path),
        if files.config_change == Change::Update {
            "; a backup is kept"
        } else {
            ""
        }
    ));
    if let Some(line) = key_line {
        out.line(line);
    }
    if files.claude_json.is_some() {
        let path = crate::paths::claude_json_path();
        let word = if path.exists() { "update" } else { "create" };
        out.line(&format!(
            "    {word:<9} {} (hasCompletedOnboarding: true, other keys kept)",
            tilde(&path)
        ));
    }
    for (r, c) in &files.services {
        out.line(&format!(
            "    {:<9} {} ({} service)",
            c.word(),
            tilde(&r.path),
            r.kind.short()
        ));
    }
    if let Some((path, text, change)) = &files.dropin {
        if *change != Change::Unchanged {
            out.line(&format!(
                "    {:<9} {} (with sudo), containing:",
                change.word(),
                path.display()
            ));
            for line in text.lines() {
                out.line(&format!("        {line}"));
            }
        }
    }
    if !loads.is_empty() {
        out.line("  Load:");
        for c in loads {
            out.line(&format!("    {c}"));
        }
    }
}

/// Everything `run` decided before asking for consent; `apply` carries it out.
pub(super) struct Plan {
    pub probe_env: ProbeEnv,
    pub answers: AllAnswers,
    pub existing: Option<ConfigFile>,
    pub manager: Option<Manager>,
    pub layout: Layout,
    pub installs: Vec<InstallStep>,
    pub files: FilePlan,
    /// Per planned service, whether it was loaded before `init` ran.
    pub loaded: Vec<(ServiceKind, bool)>,
}

impl Plan {
    /// The service load commands this plan needs.
    pub fn loads(&self) -> Vec<ServiceCommand> {
        load_plan(self.manager, &self.layout, &self.files, &self.loaded)
    }

    /// The plan's lines about keys: the cloud key to store and a new proxy `APIKEY`.
    pub fn key_line(&self) -> Option<String> {
        let proxy_key_line = self.answers.proxy_key.as_ref().map(|_| {
            format!(
                "    {:<9} APIKEY in the config: a new random proxy key (`ccr-setup code` and `env` pass it; --no-api-key to skip)",
                "add"
            )
        });
        [
            self.answers.key.as_ref().and_then(CloudKey::plan_line),
            proxy_key_line,
        ]
        .into_iter()
        .flatten()
        .reduce(|a, b| format!("{a}\n{b}"))
    }

    /// Would applying change anything? Re-running with the same answers must not.
    pub fn has_changes(&self, loads: &[ServiceCommand], keys_change: bool) -> bool {
        let files = &self.files;
        !self.installs.is_empty()
            || keys_change
            || files.config_change != Change::Unchanged
            || files.claude_json.is_some()
            || files.services.iter().any(|(_, c)| *c != Change::Unchanged)
            || !loads.is_empty()
            || files
                .dropin
                .as_ref()
                .is_some_and(|d| d.2 != Change::Unchanged)
    }
}
