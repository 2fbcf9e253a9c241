//! `init` without a terminal and without `--yes` installs and writes nothing (as rustup
//! without `-y`); it prints the plan and this exact command to apply it.

use super::Context;
use crate::cli::{InitArgs, ServiceManagerChoice};
use crate::provision::router_config::Answers;
use crate::service::Manager;

/// The `ccr-setup init --yes …` line that applies exactly the answers just planned.
pub(super) fn apply_command(
    ctx: &Context,
    args: &InitArgs,
    a: &Answers,
    services: bool,
    manager: Option<Manager>,
) -> String {
    let mut words = vec!["ccr-setup".to_owned()];
    if ctx.config_path != crate::paths::default_config_path() {
        words.push("--config".into());
        words.push(shell_quote(&ctx.config_path.display().to_string()));
    }
    words.extend(["init".into(), "--yes".into()]);
    words.extend(["--model".into(), shell_quote(&a.model)]);
    words.extend(["--context-length".into(), a.context_length.to_string()]);
    words.extend(["--port".into(), a.port.to_string()]);
    if a.cloud_fallback {
        words.extend(["--cloud-fallback".into(), "--cloud-model".into()]);
        words.push(shell_quote(&a.cloud_model));
    } else {
        words.push("--no-cloud-fallback".into());
    }
    if manager.is_some() {
        words.push(
            if services {
                "--service"
            } else {
                "--no-service"
            }
            .into(),
        );
    }
    if let Some(choice) = args.service_manager {
        let name = match choice {
            ServiceManagerChoice::Launchd => "launchd",
            ServiceManagerChoice::Systemd => "systemd",
            ServiceManagerChoice::None => "none",
        };
        words.extend(["--service-manager".into(), name.into()]);
    }
    if args.no_install {
        words.push("--no-install".into());
    }
    if args.no_api_key {
        words.push("--no-api-key".into());
    }
    if args.statusline {
        words.push("--statusline".into());
    }
    words.join(" ")
}

/// Quote a word for a POSIX shell when it needs it.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}
