//! `ccr-setup stop`: stop what ccr-setup started — its proxy (service or background
//! process) and, with `--all`, its Ollama (service or `up`'s child). A pid whose process
//! is no longer ours is never signalled.

use super::shared::stop_owned;
use super::{Context, Outcome};
use crate::cli::StopArgs;
use crate::service::runtime::Owned;
use crate::service::{self, Layout, Manager, ServiceKind};

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
    // With -q, only a failure is worth saying (and then all of it, for context).
    let out = ctx.out;
    for line in said {
        if failed {
            out.line(&line);
        } else {
            out.say(&line);
        }
    }
    Ok(if failed {
        Outcome::Failed
    } else {
        Outcome::Success
    })
}
