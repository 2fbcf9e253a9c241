//! The safe fixes `doctor --fix` may run. Each one only adds or tightens: it writes a
//! config that does not exist, adds one key to `~/.claude.json`, narrows a file mode, or
//! loads services that are installed but not loaded. Every file write is atomic with a
//! backup (`crate::fsutil`).

use std::path::PathBuf;

use crate::config::ConfigFile;
use crate::provision::router_config::{self, Answers};
use crate::service::{Layout, Manager, ServiceCommand, ServiceKind};

/// One safe fix, named by the check that found the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FixAction {
    /// Write the default local-only router config (what `init --yes` writes).
    WriteConfig(PathBuf),
    /// Add `"hasCompletedOnboarding": true` to `~/.claude.json`, keeping every other key.
    SeedClaudeJson(PathBuf),
    /// `chmod 600` a file that holds a key.
    Chmod600(PathBuf),
    /// Load installed services that are not loaded.
    LoadServices {
        manager: Manager,
        kinds: Vec<ServiceKind>,
    },
}

/// Why a fix did not work.
#[derive(Debug, thiserror::Error)]
pub enum FixError {
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot change the mode of {path}")]
    Chmod {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    ClaudeJson(#[from] crate::provision::claude_json::ClaudeJsonError),
    #[error(transparent)]
    Edit(#[from] router_config::EditError),
    #[error("{path} already exists; doctor never overwrites a config (run `ccr-setup init`)")]
    ConfigExists { path: PathBuf },
    #[error(transparent)]
    Service(#[from] crate::service::ServiceError),
    #[error("`{command}` failed: {output}")]
    Command { command: String, output: String },
}

impl FixAction {
    /// What the fix will do, shown before asking.
    pub fn describe(&self, home: &std::path::Path) -> String {
        match self {
            FixAction::WriteConfig(p) => format!(
                "write the default local-only config to {} (Ollama {} with a {}-token context, mode 0600)",
                p.display(),
                crate::config::DEFAULT_MODEL,
                crate::config::DEFAULT_CONTEXT_LENGTH
            ),
            FixAction::SeedClaudeJson(p) => {
                format!("add \"hasCompletedOnboarding\": true to {}", p.display())
            }
            FixAction::Chmod600(p) => format!("chmod 600 {}", p.display()),
            FixAction::LoadServices { manager, kinds } => {
                let cmds: Vec<String> = load_commands(*manager, home, kinds)
                    .iter()
                    .map(ToString::to_string)
                    .collect();
                format!("load the services: {}", cmds.join("; "))
            }
        }
    }
}

/// The commands that load `kinds` (installed, not loaded) under `manager`.
pub fn load_commands(
    manager: Manager,
    home: &std::path::Path,
    kinds: &[ServiceKind],
) -> Vec<ServiceCommand> {
    let layout = Layout {
        home: home.to_path_buf(),
        uid: nix::unistd::getuid().as_raw(),
    };
    let services: Vec<_> = kinds.iter().map(|k| (*k, false, false)).collect();
    crate::service::load_commands(manager, &layout, &services)
}

/// Run one fix. `home` locates the service files.
pub fn apply(action: &FixAction, home: &std::path::Path) -> Result<(), FixError> {
    match action {
        FixAction::WriteConfig(path) => {
            if path.exists() {
                return Err(FixError::ConfigExists { path: path.clone() });
            }
            let mut doc = serde_json::Value::Null;
            router_config::apply(
                &mut doc,
                &Answers {
                    model: crate::config::DEFAULT_MODEL.to_owned(),
                    context_length: crate::config::DEFAULT_CONTEXT_LENGTH,
                    port: crate::config::DEFAULT_PORT,
                    cloud_fallback: false,
                    cloud_model: crate::catalogue::default_cloud_model().to_owned(),
                    ollama_chat_url: None,
                    num_parallel: None,
                    context_editing: None,
                },
            )?;
            ConfigFile::new(path, doc)
                .save()
                .map_err(|source| FixError::Write {
                    path: path.clone(),
                    source,
                })?;
            Ok(())
        }
        FixAction::SeedClaudeJson(path) => {
            let existing = match std::fs::read_to_string(path) {
                Ok(t) => Some(t),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(source) => {
                    return Err(FixError::Write {
                        path: path.clone(),
                        source,
                    })
                }
            };
            let shown = path.display().to_string();
            if let Some(text) = crate::provision::claude_json::seeded(&shown, existing.as_deref())?
            {
                crate::fsutil::write_with_backup(path, text.as_bytes(), 0o600).map_err(
                    |source| FixError::Write {
                        path: path.clone(),
                        source,
                    },
                )?;
            }
            Ok(())
        }
        FixAction::Chmod600(path) => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(
                |source| FixError::Chmod {
                    path: path.clone(),
                    source,
                },
            )
        }
        FixAction::LoadServices { manager, kinds } => {
            for cmd in load_commands(*manager, home, kinds) {
                let out = crate::service::run_command(&cmd)?;
                if !out.success {
                    return Err(FixError::Command {
                        command: cmd.to_string(),
                        output: format!("{}{}", out.stdout, out.stderr).trim().to_owned(),
                    });
                }
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn write_config_creates_a_valid_private_config_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".claude-code-router/config.json");
        apply(&FixAction::WriteConfig(path.clone()), dir.path()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let cfg = ConfigFile::load(&path)
            .unwrap()
            .resolve_with(&|_| None)
            .unwrap();
        assert_eq!(cfg.router.default.model, crate::config::DEFAULT_MODEL);
        assert!(matches!(
            apply(&FixAction::WriteConfig(path.clone()), dir.path()),
            Err(FixError::ConfigExists { .. })
        ));
    }

    #[test]
    fn seeding_keeps_other_keys_and_chmod_tightens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".claude.json");
        std::fs::write(&path, r#"{"userID":"u1"}"#).unwrap();
        apply(&FixAction::SeedClaudeJson(path.clone()), dir.path()).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["userID"], "u1");
        assert_eq!(v["hasCompletedOnboarding"], true);

        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        apply(&FixAction::Chmod600(path.clone()), dir.path()).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
