//! `ccr-setup stop`: stop what ccr-setup started — its proxy (service or background
//! process) and, with `--all`, its Ollama (service or `up`'s child). A pid whose process
//! is no longer ours is never signalled.

use std::time::Duration;

use super::{Context, Outcome};
use crate::cli::StopArgs;
use crate::service::runtime::{self, Owned, PidState};
use crate::service::{self, Layout, Manager, ServiceKind};

/// Stop one of our processes recorded in a pid file. Returns a line to print, if any.
pub(crate) fn stop_owned(what: Owned, run_dir: &std::path::Path) -> anyhow::Result<Option<String>> {
    let file = what.pid_file(run_dir);
    let name = match what {
        Owned::Proxy => "proxy",
        Owned::Ollama => "Ollama",
    };
    Ok(match runtime::owned_pid(what, run_dir) {
        PidState::None => None,
        PidState::Running { pid } => {
            runtime::terminate(pid, Duration::from_secs(10))?;
            let _ = std::fs::remove_file(&file);
            Some(format!("Stopped the {name} ccr-setup started (pid {pid})."))
        }
        PidState::Stale { pid } => {
            let _ = std::fs::remove_file(&file);
            Some(format!(
                "The {name} ccr-setup started{} is no longer running; removed its pid file.",
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
            ))
        }
        PidState::Foreign { pid, command } => {
            let _ = std::fs::remove_file(&file);
            Some(format!(
                "Pid {pid} from {} now belongs to another program ({command}); left it alone and removed the stale pid file.",
                file.display()
            ))
        }
    })
}

pub fn run(ctx: &Context, args: StopArgs) -> anyhow::Result<Outcome> {
    let run_dir = crate::paths::run_dir();
    let mut said = Vec::new();
    let mut failed = false;
    let mut kinds = vec![ServiceKind::Proxy];
    let mut owned = vec![Owned::Proxy];
    if args.all {
        kinds.push(ServiceKind::Ollama);
        owned.push(Owned::Ollama);
    }
    if let Some(manager) = Manager::detect() {
        let layout = Layout::current();
        for kind in &kinds {
            if service::is_loaded(manager, &layout, *kind) == Some(true) {
                let cmd = service::stop_command(manager, &layout, *kind);
                let r = service::run_command(&cmd)?;
                if r.success {
                    said.push(format!("Stopped the {} service ({cmd}).", kind.short()));
                } else {
                    failed = true;
                    said.push(format!("`{cmd}` failed: {}", r.stderr.trim()));
                }
            }
        }
        if said.iter().any(|s| s.contains("service")) && manager == Manager::Launchd {
            said.push("launchd loads the agents again at the next login; `ccr-setup uninstall` removes them.".into());
        }
    }
    for what in owned {
        if let Some(line) = stop_owned(what, &run_dir)? {
            said.push(line);
        }
    }
    if said.is_empty() {
        said.push(format!(
            "Nothing to stop: ccr-setup has no running {} here.",
            if args.all {
                "proxy or Ollama"
            } else {
                "proxy (add --all for Ollama)"
            }
        ));
    }
    if !ctx.quiet || failed {
        for line in said {
            println!("{line}");
        }
    }
    Ok(if failed {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}
