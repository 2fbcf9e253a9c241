//! `ccr-setup uninstall`: unload and remove our services, stop what we started, remove
//! our pid and log files. The config is backed up and kept; `--purge` removes it, its
//! backups and the keys stored for it.
//! Ollama, Claude Code, models and `~/.claude.json` are never touched.

use std::path::Path;

use super::prompt::Prompter;
use super::shared::resolve_manager;
use super::{Context, Outcome};
use crate::cli::UninstallArgs;
use crate::config::ConfigFile;
use crate::diagnostic::Diagnostic;
use crate::service::runtime::Owned;
use crate::service::{self, systemd, Layout, Manager, ServiceKind};

fn remove_dir(path: &Path, said: &mut Vec<String>) -> anyhow::Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => said.push(format!("Removed {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(cannot_remove(path, e)),
    }
    Ok(())
}

/// A file or folder `uninstall` could not remove: the OS error as the cause, and what
/// to do.
fn cannot_remove(path: &Path, e: std::io::Error) -> anyhow::Error {
    anyhow::Error::new(e).context(
        Diagnostic::new(format!("cannot remove {}", path.display())).with_hint(
            "check its permissions (or remove it by hand), then re-run `ccr-setup uninstall`",
        ),
    )
}

/// `--purge`: the config, every backup of it, and the keys stored for it.
fn purge_config(config: &Path, said: &mut Vec<String>) -> anyhow::Result<()> {
    let store = ConfigFile::load(config)
        .map(|f| (f.secrets(), f.key_sources()))
        .ok();
    if let Some((store, keys)) = &store {
        for var in keys.iter().filter_map(|k| k.variable.as_deref()) {
            if store.remove_from_keychain(var)? {
                said.push(format!("Removed {var} from the macOS Keychain"));
            }
        }
    }
    let secrets = config
        .parent()
        .unwrap_or(Path::new("."))
        .join(crate::config::secrets::SECRETS_FILE);
    let backups = crate::fsutil::list_backups(config).unwrap_or_default();
    for path in std::iter::once(config.to_path_buf())
        .chain(backups)
        .chain(std::iter::once(secrets))
    {
        match std::fs::remove_file(&path) {
            Ok(()) => said.push(format!("Removed {}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(cannot_remove(&path, e)),
        }
    }
    Ok(())
}

pub fn run(ctx: &Context, args: UninstallArgs) -> anyhow::Result<Outcome> {
    let manager = resolve_manager(args.service_manager);
    let layout = Layout::current();
    let installed: Vec<ServiceKind> = match manager {
        Some(m) => ServiceKind::ALL
            .into_iter()
            .filter(|k| layout.service_file(m, *k).is_file())
            .collect(),
        None => Vec::new(),
    };
    let out = ctx.out;
    print_what_goes(ctx, &args, manager, &layout, &installed);
    if !args.yes {
        let prompter = Prompter::open(false);
        if let Prompter::NoTerminal = prompter {
            return Err(Diagnostic::new("no terminal to confirm the uninstall on")
                .with_hint("re-run with `ccr-setup uninstall --yes`")
                .into());
        }
        if !prompter.confirm("Uninstall?", false)? {
            out.say("Nothing was changed.");
            return Ok(Outcome::Success);
        }
    }

    let mut said = Vec::new();
    let failed = match manager {
        Some(m) => remove_services(m, &layout, &installed, &mut said)?,
        None => false,
    };
    let run_dir = crate::paths::run_dir();
    for what in [Owned::Proxy, Owned::Ollama] {
        if let Some(line) = super::shared::stop_owned(what, &run_dir)? {
            said.push(line);
        }
    }
    remove_dir(&run_dir, &mut said)?;
    remove_dir(&crate::paths::logs_dir(), &mut said)?;
    remove_dir(&layout.launchd_logs_dir(), &mut said)?;
    if args.purge {
        purge_config(&ctx.config_path, &mut said)?;
    } else if ctx.config_path.is_file() {
        let backup = crate::fsutil::make_backup(&ctx.config_path)?;
        said.push(format!("Backed up the config to {}", backup.display()));
    }
    // With -q, only a failure is worth saying (and then all of it, for context).
    for line in said {
        if failed {
            out.line(&line);
        } else {
            out.say(&line);
        }
    }
    out.say(
        "Done. Delete the ccr-setup binary itself to finish (e.g. `cargo uninstall ccr-setup`).",
    );
    Ok(if failed {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}

/// The list shown before the question: what goes, what stays.
fn print_what_goes(
    ctx: &Context,
    args: &UninstallArgs,
    manager: Option<Manager>,
    layout: &Layout,
    installed: &[ServiceKind],
) {
    let out = ctx.out;
    out.line("This removes:");
    if let Some(m) = manager {
        for k in installed {
            out.line(&format!(
                "  {} service {}",
                m.name(),
                layout.service_file(m, *k).display()
            ));
        }
    }
    out.line(&format!(
        "  pid files in {}",
        crate::paths::run_dir().display()
    ));
    out.line(&format!("  logs in {}", crate::paths::logs_dir().display()));
    if manager == Some(Manager::Launchd) {
        out.line(&format!(
            "  logs in {}",
            layout.launchd_logs_dir().display()
        ));
    }
    if args.purge {
        out.line(&format!(
            "  the config {}, its backups and the secrets store beside it (stored keys)",
            ctx.config_path.display()
        ));
    } else {
        out.line(&format!(
            "and keeps the config {} (with a fresh backup).",
            ctx.config_path.display()
        ));
    }
    out.line("Ollama, Claude Code and your models are not touched.");
}

/// Unload and remove our service files; true when an unload or reload failed.
fn remove_services(
    m: Manager,
    layout: &Layout,
    installed: &[ServiceKind],
    said: &mut Vec<String>,
) -> anyhow::Result<bool> {
    let mut failed = false;
    let to_unload: Vec<ServiceKind> = match m {
        // bootout fails on an agent that is not loaded; ask first.
        Manager::Launchd => installed
            .iter()
            .copied()
            .filter(|k| service::is_loaded(m, layout, *k) == Some(true))
            .collect(),
        Manager::Systemd => installed.to_vec(),
    };
    for cmd in service::unload_commands(m, layout, &to_unload) {
        let r = service::run_command(&cmd)?;
        if r.success {
            said.push(format!("$ {cmd}"));
        } else {
            failed = true;
            said.push(format!("`{cmd}` failed: {}", r.stderr.trim()));
        }
    }
    for k in installed {
        let path = layout.service_file(m, *k);
        std::fs::remove_file(&path)?;
        said.push(format!("Removed {}", path.display()));
    }
    if m == Manager::Systemd && !installed.is_empty() {
        let cmd = systemd::daemon_reload_command();
        let r = service::run_command(&cmd)?;
        said.push(format!("$ {cmd}"));
        failed |= !r.success;
    }
    if m == Manager::Systemd {
        let dropin = systemd::dropin_path(&crate::paths::system_root());
        if dropin.is_file() {
            said.push(format!(
                "The drop-in {} for the system-wide ollama.service needs sudo to remove: sudo rm {} && sudo systemctl daemon-reload && sudo systemctl restart ollama.service",
                dropin.display(),
                dropin.display()
            ));
        }
    }
    Ok(failed)
}
