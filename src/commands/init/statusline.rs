//! `init`'s last offer: show ccr-setup's status line in Claude Code (see
//! [`crate::statusline`]). Asked after the plan was applied, because it edits a file
//! that is Claude Code's, not ours: its other keys are kept, and a status line the user
//! already has is replaced only when they say so (a backup is kept either way).

use crate::cli::InitArgs;
use crate::commands::prompt::Prompter;
use crate::commands::statusline::STATUSLINE_COMMAND;
use crate::output::Printer;
use crate::statusline::{self, InstallOutcome};

pub(super) fn offer(out: &Printer, prompter: &Prompter, args: &InitArgs) -> anyhow::Result<()> {
    let wanted = match prompter {
        Prompter::Term(_) => prompter.confirm(
            "Show where each request goes (local or cloud, and why) in Claude Code's status line?",
            true,
        )?,
        Prompter::Yes | Prompter::NoTerminal => args.statusline,
    };
    if !wanted {
        return Ok(());
    }
    let path = statusline::claude_settings_path();
    let outcome = match statusline::install(&path, STATUSLINE_COMMAND, false)? {
        InstallOutcome::KeptExisting { existing } => {
            let replace = matches!(prompter, Prompter::Term(_))
                && prompter.confirm(
                    &format!("Claude Code already shows `{existing}` there. Replace it?"),
                    false,
                )?;
            if !replace {
                out.line(&format!(
                    "Kept your status line (`{existing}`); `ccr-setup statusline --install --replace` switches later."
                ));
                return Ok(());
            }
            statusline::install(&path, STATUSLINE_COMMAND, true)?
        }
        other => other,
    };
    match outcome {
        InstallOutcome::Installed { backup } => {
            out.line(&format!(
                "Claude Code's status line now runs `{STATUSLINE_COMMAND}` ({}).",
                path.display()
            ));
            if let Some(b) = backup {
                out.line(&format!(
                    "The previous settings are kept in {}.",
                    b.display()
                ));
            }
        }
        InstallOutcome::AlreadySet => {}
        InstallOutcome::KeptExisting { .. } => unreachable!("replace was asked for"),
    }
    Ok(())
}
