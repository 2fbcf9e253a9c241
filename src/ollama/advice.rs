//! The Ollama failures several commands report, worded once: `up`, `doctor` and the
//! `ollama serve` starter all say "Ollama is not installed" and "Ollama is too old"
//! with these exact messages and fixes.

use super::owner::Owner;
use crate::diagnostic::Diagnostic;
use crate::provision::Platform;

/// How to install Ollama on `platform`.
pub fn install_command(platform: Platform) -> &'static str {
    match platform {
        Platform::MacOs => "`brew install ollama` (or `ccr-setup init`, which installs it)",
        Platform::Linux => {
            "`curl -fsSL https://ollama.com/install.sh | sh` (or `ccr-setup init`, which installs it)"
        }
    }
}

/// No `ollama` on PATH.
pub fn not_installed(platform: Platform) -> Diagnostic {
    Diagnostic::new("Ollama is not installed (`ollama` is not on PATH)")
        .with_hint(install_command(platform))
}

/// The server (or the CLI) at `version` is older than `model` needs (`min`). The fix
/// depends on who runs it: Ollama.app updates itself, brew and the script do not.
pub fn too_old(
    version: &str,
    model: &str,
    min: &str,
    platform: Platform,
    owner: &Owner,
) -> Diagnostic {
    Diagnostic::new(format!(
        "Ollama {version} is too old for {model} (needs ≥ {min})"
    ))
    .with_hint(upgrade_command(platform, owner))
}

/// How to update the Ollama that `owner` runs on `platform`.
pub fn upgrade_command(platform: Platform, owner: &Owner) -> &'static str {
    match (platform, owner) {
        (_, Owner::OllamaApp { .. }) => "update Ollama.app (menu bar → Restart to update), or download the latest from https://ollama.com/download",
        (Platform::MacOs, _) => "`brew upgrade ollama`, then restart the server (`ccr-setup stop --all` and `ccr-setup up`)",
        (Platform::Linux, _) => "`curl -fsSL https://ollama.com/install.sh | sh` (upgrades in place), then restart the server (`ccr-setup stop --all` and `ccr-setup up`)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wording_names_version_model_and_minimum() {
        let d = too_old(
            "0.9.6",
            "gpt-oss:20b",
            "0.11.0",
            Platform::Linux,
            &Owner::Remote,
        );
        assert_eq!(
            d.message,
            "Ollama 0.9.6 is too old for gpt-oss:20b (needs ≥ 0.11.0)"
        );
        assert!(d.hint_or_empty().contains("install.sh"));
        let app = too_old(
            "0.9.6",
            "m",
            "1",
            Platform::MacOs,
            &Owner::OllamaApp { pid: None },
        );
        assert!(app.hint_or_empty().contains("Ollama.app"));
        assert!(not_installed(Platform::MacOs)
            .hint_or_empty()
            .contains("brew install"));
    }
}
