//! The secrets store for provider keys, so a `$ANTHROPIC_API_KEY` in the config resolves
//! in a service (launchd, systemd) whose environment carries no secrets.
//!
//! Where a key lives: the macOS Keychain (service `ccr-setup`, account = the variable
//! name, through the `security` tool) when running on macOS with `security` on PATH,
//! else `secrets.env` beside the config (`~/.claude-code-router/secrets.env`), mode 0600,
//! one `NAME=value` per line. `$VAR` in the config resolves from the process environment
//! first, then from this store ([`ConfigFile::resolve`](super::ConfigFile::resolve)).
//! Nothing here ever prints or logs a value.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The file store's name, beside the config.
pub const SECRETS_FILE: &str = "secrets.env";
/// The Keychain service name the keys are filed under.
pub const KEYCHAIN_SERVICE: &str = "ccr-setup";

/// Where a key's value came from (never the value itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "where", rename_all = "snake_case")]
pub enum KeySource {
    /// The process environment.
    Env,
    /// The macOS Keychain.
    Keychain,
    /// The file store at this path.
    File(PathBuf),
    /// Written into the config itself.
    Literal,
    /// Referenced as `$VAR` but found nowhere.
    Unset,
}

impl std::fmt::Display for KeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeySource::Env => write!(f, "environment"),
            KeySource::Keychain => write!(f, "macOS Keychain (service {KEYCHAIN_SERVICE})"),
            KeySource::File(p) => write!(f, "secrets store {}", p.display()),
            KeySource::Literal => write!(f, "config itself (a literal value)"),
            KeySource::Unset => write!(f, "not set anywhere"),
        }
    }
}

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("`security {action}` failed: {message}")]
    Keychain {
        action: &'static str,
        message: String,
    },
    #[error("{name}: a key must be one line without surrounding spaces")]
    BadValue { name: String },
    #[error("{name} is not a variable name; use letters, digits and _")]
    BadName { name: String },
}

/// The store for one config: its Keychain (when used) and its file.
#[derive(Debug, Clone)]
pub struct SecretsStore {
    file: PathBuf,
    /// The `security` tool, when the Keychain is used.
    keychain: Option<PathBuf>,
}

impl SecretsStore {
    /// The store beside `config_path`. The Keychain is used on macOS (or when the
    /// platform override says macOS) when `security` is on PATH.
    pub fn for_config(config_path: &Path) -> SecretsStore {
        let dir = match config_path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let macos = crate::platform::Platform::from_env().map_or(cfg!(target_os = "macos"), |p| {
            p == crate::platform::Platform::MacOs
        });
        SecretsStore {
            file: dir.join(SECRETS_FILE),
            keychain: macos.then(|| which::which("security").ok()).flatten(),
        }
    }

    /// A store that only uses `file` (tests, and machines without a Keychain).
    pub fn file_only(file: PathBuf) -> SecretsStore {
        SecretsStore {
            file,
            keychain: None,
        }
    }

    /// The file store's path.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Where [`set`](Self::set) puts a key.
    pub fn destination(&self) -> KeySource {
        match self.keychain {
            Some(_) => KeySource::Keychain,
            None => KeySource::File(self.file.clone()),
        }
    }

    /// The stored value of `name` and where it was found. Keychain first, then the file.
    pub fn get(&self, name: &str) -> Result<Option<(String, KeySource)>, SecretsError> {
        if let Some(security) = &self.keychain {
            if let Some(v) = keychain_get(security, name)? {
                return Ok(Some((v, KeySource::Keychain)));
            }
        }
        Ok(read_file(&self.file)?
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| (v, KeySource::File(self.file.clone()))))
    }

    /// Store `value` under `name` (replacing any earlier value). Returns where it went.
    pub fn set(&self, name: &str, value: &str) -> Result<KeySource, SecretsError> {
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(SecretsError::BadName { name: name.into() });
        }
        if value.is_empty() || value.contains(['\n', '\r', '"']) || value.trim() != value {
            return Err(SecretsError::BadValue { name: name.into() });
        }
        if let Some(security) = &self.keychain {
            keychain_set(security, name, value)?;
            return Ok(KeySource::Keychain);
        }
        let mut entries = read_file(&self.file)?;
        entries.retain(|(k, _)| k != name);
        entries.push((name.to_owned(), value.to_owned()));
        let mut text =
            String::from("# Provider keys for ccr-setup (mode 0600). NAME=value per line.\n");
        for (k, v) in &entries {
            text.push_str(&format!("{k}={v}\n"));
        }
        crate::fsutil::write_atomic(&self.file, text.as_bytes(), 0o600).map_err(|source| {
            SecretsError::Write {
                path: self.file.clone(),
                source,
            }
        })?;
        Ok(KeySource::File(self.file.clone()))
    }

    /// Delete `name` from the Keychain, when the Keychain is used. Returns whether an
    /// item was deleted.
    pub fn remove_from_keychain(&self, name: &str) -> Result<bool, SecretsError> {
        let Some(security) = &self.keychain else {
            return Ok(false);
        };
        let out = Command::new(security)
            .args([
                "delete-generic-password",
                "-s",
                KEYCHAIN_SERVICE,
                "-a",
                name,
            ])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| SecretsError::Keychain {
                action: "delete-generic-password",
                message: e.to_string(),
            })?;
        Ok(out.status.success())
    }

    /// Whether the file store exists with a mode wider than 0600 (doctor warns).
    pub fn file_too_open(&self) -> Option<u32> {
        let mode = std::fs::metadata(&self.file).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
}

/// `NAME=value` lines; `#` comments, blank lines and `export ` prefixes are fine, and a
/// value may be quoted. A missing file is empty.
fn read_file(path: &Path) -> Result<Vec<(String, String)>, SecretsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SecretsError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let l = l.strip_prefix("export ").unwrap_or(l);
            let (k, v) = l.split_once('=')?;
            let v = v.trim();
            let v = v
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(v);
            Some((k.trim().to_owned(), v.to_owned()))
        })
        .collect())
}

fn keychain_get(security: &Path, name: &str) -> Result<Option<String>, SecretsError> {
    let out = Command::new(security)
        .args([
            "find-generic-password",
            "-s",
            KEYCHAIN_SERVICE,
            "-a",
            name,
            "-w",
        ])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| SecretsError::Keychain {
            action: "find-generic-password",
            message: e.to_string(),
        })?;
    // Exit 44: "The specified item could not be found in the keychain."
    if !out.status.success() {
        return Ok(None);
    }
    let value = String::from_utf8_lossy(&out.stdout).trim_end().to_owned();
    Ok((!value.is_empty()).then_some(value))
}

/// `security -i` reads the command from stdin, so the key never appears in the process
/// list (as it would as an argument).
fn keychain_set(security: &Path, name: &str, value: &str) -> Result<(), SecretsError> {
    let err = |message: String| SecretsError::Keychain {
        action: "add-generic-password",
        message,
    };
    let mut child = Command::new(security)
        .arg("-i")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| err(e.to_string()))?;
    let line = format!(
        "add-generic-password -U -s {KEYCHAIN_SERVICE} -a {name} -l \"ccr-setup {name}\" -w \"{value}\"\n"
    );
    {
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin
            .write_all(line.as_bytes())
            .map_err(|e| err(e.to_string()))?;
    }
    let out = child.wait_with_output().map_err(|e| err(e.to_string()))?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if !out.status.success() || !stderr.is_empty() {
        return Err(err(if stderr.is_empty() {
            format!("exit {}", out.status)
        } else {
            stderr
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_store_round_trips_at_0600_and_keeps_other_keys() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretsStore::file_only(dir.path().join(SECRETS_FILE));
        assert_eq!(store.get("ANTHROPIC_API_KEY").unwrap(), None);
        std::fs::write(store.file(), "# mine\nexport OTHER='x y'\n").unwrap();
        let to = store.set("ANTHROPIC_API_KEY", "sk-ant-1").unwrap();
        assert_eq!(to, KeySource::File(store.file().to_path_buf()));
        store.set("ANTHROPIC_API_KEY", "sk-ant-2").unwrap();
        let (v, from) = store.get("ANTHROPIC_API_KEY").unwrap().unwrap();
        assert_eq!((v.as_str(), from), ("sk-ant-2", to));
        assert_eq!(store.get("OTHER").unwrap().unwrap().0, "x y");
        let mode = std::fs::metadata(store.file())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(store.file_too_open(), None);
        let text = std::fs::read_to_string(store.file()).unwrap();
        assert_eq!(text.matches("ANTHROPIC_API_KEY").count(), 1, "{text}");
    }

    #[test]
    fn keychain_goes_through_security_with_the_key_on_stdin_never_in_argv() {
        let dir = tempfile::tempdir().unwrap();
        let security = dir.path().join("security");
        let log = dir.path().join("argv.log");
        let item = dir.path().join("item");
        // A fake `security`: `-i` reads one command from stdin and keeps the -w value;
        // find-generic-password prints it; every argv is logged.
        std::fs::write(
            &security,
            format!(
                "#!/bin/sh\necho \"$@\" >> '{log}'\ncase \"$1\" in\n  -i) read -r line; printf '%s' \"$line\" | sed 's/.*-w \"\\(.*\\)\"$/\\1/' > '{item}' ;;\n  find-generic-password) [ -f '{item}' ] && cat '{item}' && echo || exit 44 ;;\n  delete-generic-password) rm -f '{item}' ;;\nesac\n",
                log = log.display(),
                item = item.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&security, std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = SecretsStore {
            file: dir.path().join(SECRETS_FILE),
            keychain: Some(security),
        };
        assert_eq!(store.destination(), KeySource::Keychain);
        assert_eq!(store.get("ANTHROPIC_API_KEY").unwrap(), None);
        assert_eq!(
            store.set("ANTHROPIC_API_KEY", "sk-ant-kc").unwrap(),
            KeySource::Keychain
        );
        assert_eq!(
            store.get("ANTHROPIC_API_KEY").unwrap(),
            Some(("sk-ant-kc".to_owned(), KeySource::Keychain))
        );
        assert!(!store.file().exists(), "the Keychain, not the file");
        let argv = std::fs::read_to_string(&log).unwrap();
        assert!(!argv.contains("sk-ant-kc"), "{argv}");
        assert!(store.remove_from_keychain("ANTHROPIC_API_KEY").unwrap());
        assert_eq!(store.get("ANTHROPIC_API_KEY").unwrap(), None);
    }

    #[test]
    fn bad_names_and_values_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SecretsStore::file_only(dir.path().join(SECRETS_FILE));
        assert!(matches!(
            store.set("A-B", "v"),
            Err(SecretsError::BadName { .. })
        ));
        assert!(matches!(
            store.set("A", "line\nbreak"),
            Err(SecretsError::BadValue { .. })
        ));
        assert!(!store.file().exists());
    }
}
