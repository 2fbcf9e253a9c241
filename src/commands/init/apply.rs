//! Carry out `init`'s plan once the user agreed: installs, writes (with backups),
//! service loads, and the sudo drop-in for a system-wide Ollama.

use std::path::Path;

use anyhow::{bail, Context as _};

use super::super::init_key;
use super::super::prompt::Prompter;
use super::super::{Context, Outcome};
use super::plan::{plan_files, Change, Plan};
use super::tilde;
use crate::config::SecretsStore;
use crate::fsutil;
use crate::output::Printer;
use crate::provision;
use crate::provision::install::{self, InstallStep, OutputLine};
use crate::service::{self, systemd, Manager};

/// Carry out the plan the user agreed to: installs, writes, service loads, the drop-in.
pub(super) fn apply(ctx: &Context, prompter: &Prompter, mut plan: Plan) -> anyhow::Result<Outcome> {
    let out = ctx.out;
    if !plan.installs.is_empty() {
        run_installs(&out, &plan.installs)?;
        // Paths of the freshly installed tools go into the service files.
        let probes = provision::probe_with(&plan.probe_env);
        plan.files = plan_files(
            ctx,
            &plan.answers,
            plan.existing.as_ref(),
            &probes,
            plan.manager,
            &plan.layout,
        )?;
        for note in &plan.files.notes {
            out.line(&format!("Note: {note}"));
        }
    }
    write_files(ctx, &plan)?;
    for cmd in plan.loads() {
        out.line(&format!("$ {cmd}"));
        let r = service::run_command(&cmd)?;
        if !r.success {
            out.err_line(&format!(
                "error: `{cmd}` failed ({}): {}",
                r.code.map_or("signal".into(), |c| format!("exit {c}")),
                r.stderr.trim()
            ));
            out.err_line(
                "The files are written; run the command above by hand once the problem is fixed.",
            );
            return Ok(Outcome::Failed);
        }
    }
    if let Some((path, text, change)) = &plan.files.dropin {
        if *change != Change::Unchanged {
            apply_dropin(&out, prompter, path, text)?;
        }
    }
    let a = &plan.answers.config;
    out.line(&format!("\nDone. Next: `ccr-setup up` starts Ollama with the {}-token context and pulls {}; then `ccr-setup code`.",
        a.context_length, a.model));
    Ok(Outcome::Success)
}

fn run_installs(out: &Printer, installs: &[InstallStep]) -> anyhow::Result<()> {
    for step in installs {
        out.line(&format!(
            "==> Installing {} ({})",
            step.software.name(),
            step.manual
        ));
        if step.uses_sudo {
            out.line("    This installer uses sudo; enter your password if asked.");
        }
        // The error's hint (see `InstallError`) gives the manual command.
        install::run_step(step, &mut |line| match line {
            OutputLine::Command(c) => out.line(&format!("    $ {c}")),
            OutputLine::Stdout(l) | OutputLine::Stderr(l) => out.line(&format!("    | {l}")),
        })?;
    }
    let _ = std::fs::remove_dir_all(crate::paths::run_dir().join("installers"));
    Ok(())
}

/// The config (with a backup), the cloud key, `~/.claude.json` and the service files.
fn write_files(ctx: &Context, plan: &Plan) -> anyhow::Result<()> {
    let out = ctx.out;
    let files = &plan.files;
    if files.config_change != Change::Unchanged {
        super::write_config(&out, &files.config)?;
    }
    if let Some(key) = &plan.answers.key {
        let store = SecretsStore::for_config(&ctx.config_path);
        if let Some(line) = init_key::apply(&store, key)? {
            out.line(&line);
        }
    }
    if let Some(text) = &files.claude_json {
        let path = crate::paths::claude_json_path();
        fsutil::write_with_backup(&path, text.as_bytes(), 0o600)
            .with_context(|| format!("cannot write {}", path.display()))?;
        out.line(&format!("Set hasCompletedOnboarding in {}", tilde(&path)));
    }
    for (r, c) in &files.services {
        if *c == Change::Unchanged {
            continue;
        }
        if r.manager == Manager::Launchd {
            let logs = plan.layout.launchd_logs_dir();
            std::fs::create_dir_all(&logs)
                .with_context(|| format!("cannot create {}", logs.display()))?;
        }
        fsutil::write_with_backup(&r.path, r.contents.as_bytes(), 0o644)
            .with_context(|| format!("cannot write {}", r.path.display()))?;
        out.line(&format!("Wrote {}", tilde(&r.path)));
    }
    Ok(())
}

/// Offer the drop-in for a system-wide ollama.service: show it, ask, run with sudo.
fn apply_dropin(out: &Printer, prompter: &Prompter, path: &Path, text: &str) -> anyhow::Result<()> {
    let staged = crate::paths::run_dir().join(systemd::DROPIN_NAME);
    let as_root = nix::unistd::geteuid().is_root();
    let cmds = systemd::dropin_install_commands(&staged, path, as_root);
    let by_hand = || {
        out.line(&format!(
            "To apply it later, save the file shown above as {} and run:",
            path.display()
        ));
        out.line("    sudo systemctl daemon-reload && sudo systemctl restart ollama.service");
    };
    if let Prompter::NoTerminal = prompter {
        out.line("The system-wide ollama.service needs sudo to change, and there is no terminal to ask on.");
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
        out.line(&format!("$ {cmd}"));
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
