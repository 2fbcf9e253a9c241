//! `ccr-setup init`: ask (or take flags), probe, show one plan of installs, writes and
//! service loads, ask once, apply. Re-running with the same answers changes nothing.
//!
//! Prompts go to the terminal: stdin when it is one, else `/dev/tty` (so `curl | sh`
//! still gets a wizard), else the defaults are used and the user is told.
//!
//! `wizard.rs` gathers the answers, `plan.rs` turns them into the plan shown before
//! consent, `apply.rs` carries it out.

use std::path::Path;

use anyhow::Context as _;

use super::prompt::Prompter;
use super::shared::resolve_manager;
use super::{Context, Outcome};
use crate::cli::InitArgs;
use crate::config::{ConfigError, ConfigFile, SecretsStore};
use crate::diagnostic::Diagnostic;
use crate::provision::install;
use crate::provision::{self, Platform, ProbeEnv};
use crate::service::{self, Layout, Manager, ServiceKind};

mod apply;
mod join;
mod plan;
mod server;
mod statusline;
mod wizard;

use plan::{plan_files, print_plan, Plan};
use wizard::{gather, AllAnswers, OllamaInfo};

fn tilde(p: &Path) -> String {
    let home = crate::paths::home_dir();
    match p.strip_prefix(&home) {
        Ok(rest) if home != Path::new("/") => format!("~/{}", rest.display()),
        _ => p.display().to_string(),
    }
}

pub fn run(ctx: &Context, args: InitArgs) -> anyhow::Result<Outcome> {
    if args.server {
        return server::run(ctx, &args);
    }
    if args.join.is_some() {
        return join::run(ctx, &args);
    }
    let out = ctx.out;
    let platform = Platform::from_env()?;
    let manager = resolve_manager(args.service_manager);
    let prompter = Prompter::open(args.yes);
    if let Prompter::NoTerminal = prompter {
        out.err_line("No terminal to ask on (stdin is not a TTY and there is no /dev/tty): planning with the defaults and the flags given; nothing is installed or written without consent.");
    }
    let existing = load_existing(ctx)?;
    let answers = ask(ctx, &prompter, &args, existing.as_ref(), manager)?;
    let plan = make_plan(ctx, &args, platform, manager, answers, existing)?;
    let loads = plan.loads();
    let key_line = plan.key_line();
    for note in &plan.files.notes {
        out.line(&format!("Note: {note}"));
    }
    if !plan.has_changes(&loads, key_line.is_some()) {
        let a = &plan.answers.config;
        out.line(&format!(
            "Nothing to change: {} and the services already match these answers (model {}, context {}, port {}).",
            tilde(&ctx.config_path),
            a.model,
            a.context_length,
            a.port
        ));
        if !args.dry_run {
            statusline::offer(&out, &prompter, &args)?;
        }
        return Ok(Outcome::Success);
    }
    print_plan(
        &out,
        &plan.installs,
        &plan.files,
        &loads,
        key_line.as_deref(),
    );
    if args.dry_run {
        out.line("\nDry run: nothing was changed.");
        return Ok(Outcome::Success);
    }
    if let Prompter::NoTerminal = prompter {
        // Like rustup without -y: installers and writes need a yes from a person.
        out.err_line("\nNo terminal to ask for consent, so nothing was installed or written.");
        out.err_line(&format!(
            "To apply this plan, run:\n    {}",
            super::init_consent::apply_command(
                ctx,
                &args,
                &plan.answers.config,
                plan.answers.services,
                manager
            )
        ));
        return Ok(Outcome::Usage);
    }
    if !prompter.confirm("Apply this plan?", true)? {
        out.line("Nothing was changed.");
        return Ok(Outcome::Success);
    }
    let outcome = apply::apply(ctx, &prompter, plan)?;
    if outcome == Outcome::Success {
        statusline::offer(&out, &prompter, &args)?;
    }
    Ok(outcome)
}

/// The config already there, if any; one that cannot be read stops `init`.
fn load_existing(ctx: &Context) -> anyhow::Result<Option<ConfigFile>> {
    match ConfigFile::load(&ctx.config_path) {
        Ok(f) => Ok(Some(f)),
        Err(ConfigError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e).context(
            Diagnostic::new("init will not overwrite a config it cannot read")
                .with_hint("fix it or move it away, then re-run `ccr-setup init`"),
        ),
    }
}

/// The config must resolve before it is written (a referenced key may be unset here;
/// that is for the proxy). Problems under `ignored` paths are for a later step (a
/// server's `Clients` come after `init --server`).
fn check_resolves(
    ctx: &Context,
    config: &ConfigFile,
    ignored: &[&str],
) -> anyhow::Result<Result<crate::config::Config, ConfigError>> {
    let resolved =
        config.resolve_with(&|n| Some(std::env::var(n).unwrap_or_else(|_| "set-later".into())));
    if let Err(ConfigError::Invalid { problems, .. }) = &resolved {
        let list: Vec<String> = problems
            .iter()
            .filter(|p| !ignored.iter().any(|i| p.path.starts_with(i)))
            .map(|p| format!("  - {p}"))
            .collect();
        if !list.is_empty() {
            return Err(Diagnostic::new(format!(
                "the config would not be valid:\n{}",
                list.join("\n")
            ))
            .with_hint(format!(
                "fix these in {}, then re-run `ccr-setup init`",
                ctx.config_path.display()
            ))
            .into());
        }
    }
    Ok(resolved)
}

/// The consent of `--server` and `--join` after their plan: Some(outcome) when
/// nothing is to be written (a dry run, no terminal to ask on, or a no).
fn consent(
    out: &crate::output::Printer,
    prompter: &Prompter,
    dry_run: bool,
) -> anyhow::Result<Option<Outcome>> {
    if dry_run {
        out.line("\nDry run: nothing was changed.");
        return Ok(Some(Outcome::Success));
    }
    if let Prompter::NoTerminal = prompter {
        out.err_line("\nNo terminal to ask for consent, so nothing was written; add --yes to apply this plan.");
        return Ok(Some(Outcome::Usage));
    }
    if !prompter.confirm("Apply this plan?", true)? {
        out.line("Nothing was changed.");
        return Ok(Some(Outcome::Success));
    }
    Ok(None)
}

/// Write the config (a backup of the old one is kept) and say so.
fn write_config(out: &crate::output::Printer, config: &ConfigFile) -> anyhow::Result<()> {
    match config
        .save()
        .with_context(|| format!("cannot write {}", config.path.display()))?
    {
        crate::fsutil::WriteOutcome::Replaced { backup } => out.line(&format!(
            "Updated {} (backup: {})",
            tilde(&config.path),
            tilde(&backup)
        )),
        _ => out.line(&format!("Wrote {}", tilde(&config.path))),
    }
    Ok(())
}

/// The answers, with the existing config's as defaults.
fn ask(
    ctx: &Context,
    prompter: &Prompter,
    args: &InitArgs,
    existing: Option<&ConfigFile>,
    manager: Option<Manager>,
) -> anyhow::Result<AllAnswers> {
    let ollama = OllamaInfo::fetch();
    let store = SecretsStore::for_config(&ctx.config_path);
    let out = ctx.out;
    gather(&out, prompter, args, existing, &ollama, manager, &store)
}

/// Probe the machine and plan the installs, files and service loads for these answers.
fn make_plan(
    ctx: &Context,
    args: &InitArgs,
    platform: Platform,
    manager: Option<Manager>,
    answers: AllAnswers,
    existing: Option<ConfigFile>,
) -> anyhow::Result<Plan> {
    let out = ctx.out;
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
                out.line(&format!("Note: {tool} is not installed and --no-install was given; install it before `ccr-setup up`."));
            }
        }
    }
    if args.service && manager.is_none() {
        out.line("Note: --service was given, but no service manager was detected (no launchd, systemd not running); pass --service-manager launchd|systemd to choose one.");
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
    Ok(Plan {
        probe_env,
        answers,
        existing,
        manager,
        layout,
        installs,
        files,
        loaded,
    })
}
