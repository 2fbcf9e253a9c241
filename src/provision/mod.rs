//! Provisioning: what is on this machine, what `init` would install, and running the
//! installers.
//!
//! * [`probe_all`] finds the tools ccr-setup cares about (`which` + `--version`) and
//!   whatever already serves Ollama (Ollama.app, brew's service, a system unit). `doctor`
//!   reuses it.
//! * [`install`] turns the probes into an install plan for a [`Platform`] and runs the
//!   installers with streamed output and exit-code checks.
//! * [`router_config`] and [`claude_json`] compute the edits `init` makes to the router
//!   config and to `~/.claude.json`.
//!
//! The platform is always a parameter, never `cfg!` deep inside, so tests can exercise
//! the macOS logic on Linux.

pub mod caddy;
pub mod claude_json;
pub mod cloud_key;
pub mod engine;
pub mod install;
pub mod router_config;
pub mod team_config;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::env_vars::EnvVars;

pub use crate::platform::{Platform, UnknownPlatform};

/// A tool found on PATH.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tool {
    pub path: PathBuf,
    /// The version it reports (`x.y.z`), when `--version` answered in time.
    pub version: Option<String>,
}

/// Something that already serves Ollama and must not get a competing server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "snake_case")]
pub enum ExistingOllama {
    /// Ollama.app (macOS) starts its own server and applies its own context setting.
    App(PathBuf),
    /// `brew services start ollama`: the `homebrew.mxcl.ollama` agent.
    BrewService(PathBuf),
    /// The system-wide `ollama.service` from Ollama's Linux installer.
    SystemUnit(PathBuf),
}

impl ExistingOllama {
    /// Why we do not install our own Ollama service, and how to switch.
    pub fn explanation(&self) -> String {
        match self {
            ExistingOllama::App(p) => format!(
                "Ollama.app ({}) already runs an Ollama server and manages its context itself, so ccr-setup installs no Ollama service of its own (two servers would fight over port 11434). Set the context in the app's settings to at least the configured length. To let ccr-setup manage Ollama instead, quit Ollama.app, remove it from Login Items and re-run `ccr-setup init`.",
                p.display()
            ),
            ExistingOllama::BrewService(p) => format!(
                "Homebrew's service ({}) already runs Ollama, so ccr-setup installs no Ollama service of its own. brew rewrites that plist, so our context setting cannot live there: to let ccr-setup manage Ollama, run `brew services stop ollama` and re-run `ccr-setup init`.",
                p.display()
            ),
            ExistingOllama::SystemUnit(p) => format!(
                "The system-wide {} from Ollama's installer already runs Ollama, so ccr-setup installs no second server; it can add a drop-in override with the context length instead (needs sudo).",
                p.display()
            ),
        }
    }
}

/// Everything `init` and `doctor` need to know about the machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probes {
    pub platform: Platform,
    pub brew: Option<Tool>,
    pub ollama: Option<Tool>,
    pub claude: Option<Tool>,
    pub npm: Option<Tool>,
    pub curl: Option<Tool>,
    pub existing_ollama: Option<ExistingOllama>,
}

/// Where probing looks. Production uses `$PATH`, `$HOME` and `/`; tests use temp dirs.
#[derive(Debug, Clone)]
pub struct ProbeEnv {
    pub platform: Platform,
    /// The search path (a `PATH`-style string).
    pub path: std::ffi::OsString,
    pub home: PathBuf,
    /// Root of the file system for system-wide files (`/`).
    pub root: PathBuf,
}

impl ProbeEnv {
    pub fn current(platform: Platform) -> ProbeEnv {
        ProbeEnv {
            platform,
            path: std::env::var_os(EnvVars::PATH).unwrap_or_default(),
            home: crate::paths::home_dir(),
            root: PathBuf::from("/"),
        }
    }
}

/// Probe this machine as the current platform.
pub fn probe_all() -> Probes {
    probe_with(&ProbeEnv::current(Platform::current()))
}

/// Probe with an explicit environment.
pub fn probe_with(env: &ProbeEnv) -> Probes {
    let find = |name: &str| find_tool(name, &env.path);
    Probes {
        platform: env.platform,
        brew: match env.platform {
            Platform::MacOs => find("brew"),
            Platform::Linux => None,
        },
        ollama: find("ollama"),
        claude: find("claude"),
        npm: find("npm"),
        curl: find("curl"),
        existing_ollama: existing_ollama(env),
    }
}

/// `which` a tool on `path` and ask its version.
pub fn find_tool(name: &str, path: &std::ffi::OsStr) -> Option<Tool> {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
    let found = which::which_in(name, Some(path), cwd).ok()?;
    let version = tool_version(&found);
    Some(Tool {
        path: found,
        version,
    })
}

/// Run `<tool> --version` (5 s at most): see [`tool_version_within`].
pub fn tool_version(path: &Path) -> Option<String> {
    tool_version_within(path, Duration::from_secs(5))
}

/// Run `<tool> --version` for at most `timeout` (then it is killed) and pull the first
/// version-looking word out of its output, e.g. `ollama version is 0.12.3` → `0.12.3`.
/// Both streams count: `ollama --version` prints "Warning: client version is x.y.z" on
/// stderr when no server runs. The one version probe: `init` and `doctor` both use it.
pub fn tool_version_within(path: &Path, timeout: Duration) -> Option<String> {
    let mut child = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    // Each pipe is read to its end in its own thread, so a full pipe cannot stall the
    // tool; a grandchild holding a pipe open cannot stall us past the deadline.
    let (tx, rx) = std::sync::mpsc::channel();
    let pipes = [
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    ];
    for (i, pipe) in pipes.into_iter().enumerate() {
        let Some(mut pipe) = pipe else { continue };
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            let _ = tx.send((i, text));
        });
    }
    drop(tx);
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                // Still unreaped, so `kill` reaches our child and nothing else.
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
    // stdout first, then stderr, whichever finished first.
    let mut parts = [String::new(), String::new()];
    for _ in 0..2 {
        // A little grace past the deadline: the tool has exited, its output is in the pipe.
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left.max(Duration::from_millis(500))) {
            Ok((i, text)) => parts[i] = text,
            Err(_) => break,
        }
    }
    parse_version(&parts.join("\n"))
}

/// The first word that looks like a version number (`1.2`, `v0.12.3`, `2.1.197`).
pub fn parse_version(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .map(|w| w.trim_start_matches('v'))
        .find(|w| {
            let mut parts = w.split('.');
            let first = parts.next().unwrap_or("");
            !first.is_empty()
                && first.chars().all(|c| c.is_ascii_digit())
                && w.contains('.')
                && w.chars().next().is_some_and(|c| c.is_ascii_digit())
        })
        .map(str::to_owned)
}

/// Find a server that already runs Ollama on this machine.
pub fn existing_ollama(env: &ProbeEnv) -> Option<ExistingOllama> {
    match env.platform {
        Platform::MacOs => {
            let apps = [
                env.root.join("Applications/Ollama.app"),
                env.home.join("Applications/Ollama.app"),
            ];
            if let Some(app) = apps.into_iter().find(|p| p.is_dir()) {
                return Some(ExistingOllama::App(app));
            }
            let brew_plist = env
                .home
                .join("Library/LaunchAgents/homebrew.mxcl.ollama.plist");
            brew_plist
                .is_file()
                .then_some(ExistingOllama::BrewService(brew_plist))
        }
        Platform::Linux => crate::service::systemd::find_system_ollama_unit(&env.root)
            .map(ExistingOllama::SystemUnit),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_found_in_common_outputs() {
        assert_eq!(
            parse_version("ollama version is 0.12.3\n").as_deref(),
            Some("0.12.3")
        );
        assert_eq!(
            parse_version("2.1.197 (Claude Code)").as_deref(),
            Some("2.1.197")
        );
        assert_eq!(parse_version("Homebrew 4.6.1\n").as_deref(), Some("4.6.1"));
        assert_eq!(
            parse_version("curl 8.5.0 (x86_64-pc-linux-gnu)").as_deref(),
            Some("8.5.0")
        );
        assert_eq!(parse_version("v20.11.1").as_deref(), Some("20.11.1"));
        assert_eq!(parse_version("no digits here"), None);
    }

    #[tokio::test]
    async fn init_and_doctor_read_the_same_version_from_stderr() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ollama = dir.path().join("ollama");
        // What `ollama --version` prints when no server runs: only stderr.
        std::fs::write(
            &ollama,
            "#!/bin/sh\necho 'Warning: client version is 0.12.3' >&2\n",
        )
        .unwrap();
        std::fs::set_permissions(&ollama, std::fs::Permissions::from_mode(0o755)).unwrap();
        let init = find_tool("ollama", dir.path().as_os_str()).and_then(|t| t.version);
        let doctor =
            crate::doctor::probe::tool("ollama", dir.path().as_os_str(), Duration::from_secs(5))
                .await;
        assert_eq!(init.as_deref(), Some("0.12.3"));
        assert_eq!(doctor.version(), init.as_deref());
    }

    #[test]
    fn a_hanging_tool_is_killed_at_the_timeout() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let tool = dir.path().join("slow");
        std::fs::write(&tool, "#!/bin/sh\nsleep 30\necho 1.0.0\n").unwrap();
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
        let start = Instant::now();
        assert_eq!(tool_version_within(&tool, Duration::from_millis(300)), None);
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn probes_find_tools_on_the_given_path_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let ollama = bin.join("ollama");
        std::fs::write(&ollama, "#!/bin/sh\necho 'ollama version is 0.9.1'\n").unwrap();
        std::fs::set_permissions(&ollama, std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = ProbeEnv {
            platform: Platform::MacOs,
            path: bin.clone().into_os_string(),
            home: dir.path().join("home"),
            root: dir.path().join("root"),
        };
        let p = probe_with(&env);
        assert_eq!(p.ollama.as_ref().map(|t| t.path.clone()), Some(ollama));
        assert_eq!(p.ollama.unwrap().version.as_deref(), Some("0.9.1"));
        assert!(p.brew.is_none() && p.claude.is_none() && p.npm.is_none());
        assert_eq!(p.existing_ollama, None);

        std::fs::create_dir_all(env.home.join("Applications/Ollama.app")).unwrap();
        assert!(matches!(
            existing_ollama(&env),
            Some(ExistingOllama::App(_))
        ));
        let linux = ProbeEnv {
            platform: Platform::Linux,
            ..env.clone()
        };
        assert_eq!(existing_ollama(&linux), None);
        let unit = env.root.join("etc/systemd/system/ollama.service");
        std::fs::create_dir_all(unit.parent().unwrap()).unwrap();
        std::fs::write(&unit, "[Service]\n").unwrap();
        assert_eq!(
            existing_ollama(&linux),
            Some(ExistingOllama::SystemUnit(unit))
        );
    }
}
