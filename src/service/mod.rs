//! Login services that keep Ollama and the proxy running: launchd agents on macOS,
//! systemd user units on Linux.
//!
//! The module is split by concern:
//! * [`launchd`] and [`systemd`] render service files from `templates/` (pure functions,
//!   snapshot-tested) and name the commands that load and unload them;
//! * this file holds what both share: which services exist ([`ServiceKind`]), where their
//!   files live ([`Layout`]), what to run ([`ServiceSpec`]), the commands as data
//!   ([`ServiceCommand`], so `init` can print its plan before running anything), and
//!   [`inspect`], which `status`, `doctor` and `uninstall` use to see what is installed.
//!
//! Nothing here prints; commands run through [`run_command`] and report back.

pub mod launchd;
pub mod runtime;
pub mod systemd;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::env_vars::EnvVars;
use serde::Serialize;

/// Reverse-DNS prefix of our launchd labels: `dev.ccr-setup.ollama`, `dev.ccr-setup.proxy`.
pub const LAUNCHD_LABEL_PREFIX: &str = "dev.ccr-setup";

/// Which service manager owns our services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Manager {
    Launchd,
    Systemd,
}

impl Manager {
    /// The manager this machine uses: launchd on macOS, systemd when it is running as
    /// the init system (the `sd_booted()` test: `/run/systemd/system` exists), else none.
    pub fn detect() -> Option<Manager> {
        if cfg!(target_os = "macos") {
            Some(Manager::Launchd)
        } else if Path::new("/run/systemd/system").is_dir() {
            Some(Manager::Systemd)
        } else {
            None
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Manager::Launchd => "launchd",
            Manager::Systemd => "systemd",
        }
    }
}

/// The two services ccr-setup can install.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceKind {
    Ollama,
    Proxy,
}

impl ServiceKind {
    pub const ALL: [ServiceKind; 2] = [ServiceKind::Ollama, ServiceKind::Proxy];

    pub fn short(self) -> &'static str {
        match self {
            ServiceKind::Ollama => "ollama",
            ServiceKind::Proxy => "proxy",
        }
    }

    /// The launchd label, e.g. `dev.ccr-setup.proxy`.
    pub fn launchd_label(self) -> String {
        format!("{LAUNCHD_LABEL_PREFIX}.{}", self.short())
    }

    /// The systemd unit name, e.g. `ccr-setup-proxy.service`.
    pub fn systemd_unit(self) -> String {
        format!("ccr-setup-{}.service", self.short())
    }

    /// The name the service manager knows the service by.
    pub fn service_name(self, manager: Manager) -> String {
        match manager {
            Manager::Launchd => self.launchd_label(),
            Manager::Systemd => self.systemd_unit(),
        }
    }

    fn description(self) -> &'static str {
        match self {
            ServiceKind::Ollama => "Ollama model server for ccr-setup",
            ServiceKind::Proxy => "ccr-setup Anthropic-compatible proxy for Claude Code",
        }
    }
}

/// Where service files and service logs live. Built from a home directory so tests
/// can point everything at a temporary one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub home: PathBuf,
    /// The user id in launchd's `gui/<uid>` domain.
    pub uid: u32,
}

impl Layout {
    /// The current user's layout (`$HOME`, real uid).
    pub fn current() -> Layout {
        Layout {
            home: crate::paths::home_dir(),
            uid: nix::unistd::getuid().as_raw(),
        }
    }

    /// `~/Library/LaunchAgents`.
    pub fn launch_agents_dir(&self) -> PathBuf {
        self.home.join("Library/LaunchAgents")
    }

    /// `~/Library/Logs/ccr-setup`: where our launchd agents' output goes.
    pub fn launchd_logs_dir(&self) -> PathBuf {
        self.home.join("Library/Logs/ccr-setup")
    }

    /// `~/.config/systemd/user`.
    pub fn systemd_user_dir(&self) -> PathBuf {
        self.home.join(".config/systemd/user")
    }

    /// The service file for `kind` under `manager`.
    pub fn service_file(&self, manager: Manager, kind: ServiceKind) -> PathBuf {
        match manager {
            Manager::Launchd => self
                .launch_agents_dir()
                .join(format!("{}.plist", kind.launchd_label())),
            Manager::Systemd => self.systemd_user_dir().join(kind.systemd_unit()),
        }
    }

    /// launchd's per-user GUI domain, `gui/<uid>`.
    pub fn launchd_domain(&self) -> String {
        format!("gui/{}", self.uid)
    }
}

/// What a service runs. Paths must be absolute: service managers have no useful PATH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    pub kind: ServiceKind,
    /// Program and arguments; the program is an absolute path.
    pub program: Vec<String>,
    /// Environment for the process. Never put secrets here: service files are readable.
    pub env: Vec<(String, String)>,
    /// The proxy starts after our Ollama service (systemd `After=`/`Wants=`). Off on a
    /// team server, whose engine is the operator's and no unit of ours.
    pub after_our_ollama: bool,
}

impl ServiceSpec {
    /// `ollama serve` with the tuned environment from the config plus `OLLAMA_HOST`.
    pub fn ollama(ollama: &Path, settings: &crate::config::OllamaSettings) -> ServiceSpec {
        let mut env = vec![(
            EnvVars::OLLAMA_HOST.to_owned(),
            "127.0.0.1:11434".to_owned(),
        )];
        env.extend(
            settings
                .tuned_env()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v)),
        );
        ServiceSpec {
            kind: ServiceKind::Ollama,
            program: vec![ollama.to_string_lossy().into_owned(), "serve".to_owned()],
            env,
            after_our_ollama: false,
        }
    }

    /// `ccr-setup proxy` reading the given config (named through `CCR_SETUP_CONFIG`, so
    /// the key stays in the config file and out of the service file).
    pub fn proxy(ccr_setup: &Path, config: &Path) -> ServiceSpec {
        ServiceSpec {
            kind: ServiceKind::Proxy,
            program: vec![ccr_setup.to_string_lossy().into_owned(), "proxy".to_owned()],
            env: vec![(
                EnvVars::CCR_SETUP_CONFIG.to_owned(),
                config.to_string_lossy().into_owned(),
            )],
            after_our_ollama: true,
        }
    }

    /// The proxy of a team server (`init --server`): nothing of ours to start after.
    pub fn server_proxy(ccr_setup: &Path, config: &Path) -> ServiceSpec {
        ServiceSpec {
            after_our_ollama: false,
            ..ServiceSpec::proxy(ccr_setup, config)
        }
    }
}

/// A rendered service file, ready to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedService {
    pub manager: Manager,
    pub kind: ServiceKind,
    pub path: PathBuf,
    pub contents: String,
}

/// Why a service could not be rendered, loaded or inspected.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{field} contains a control character ({value:?}); service files cannot hold it")]
    ControlCharacter { field: String, value: String },
    #[error("{field} must be an absolute path, got {value:?}")]
    NotAbsolute { field: String, value: String },
    #[error("systemd cannot run a program whose path contains quotes or backslashes: {program}; move it to a path without them (e.g. ~/.local/bin) and re-run")]
    UnsupportedExecutable { program: String },
    #[error("cannot render the launchd plist")]
    Plist(#[from] plist::Error),
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        command: String,
        status: String,
        stderr: String,
    },
    #[error("cannot run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
}

/// Render the service file for `spec` under `manager`.
pub fn render(
    manager: Manager,
    layout: &Layout,
    spec: &ServiceSpec,
) -> Result<RenderedService, ServiceError> {
    let program = spec.program.first().map(String::as_str).unwrap_or("");
    if !Path::new(program).is_absolute() {
        return Err(ServiceError::NotAbsolute {
            field: format!("{} program", spec.kind.short()),
            value: program.to_owned(),
        });
    }
    let contents = match manager {
        Manager::Launchd => launchd::render_plist(layout, spec)?,
        Manager::Systemd => systemd::render_unit(spec)?,
    };
    Ok(RenderedService {
        manager,
        kind: spec.kind,
        path: layout.service_file(manager, spec.kind),
        contents,
    })
}

/// One external command (launchctl, systemctl, sudo…), kept as data so it can be shown
/// in a plan before it runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceCommand {
    pub program: String,
    pub args: Vec<String>,
}

impl ServiceCommand {
    pub fn new(program: &str, args: &[&str]) -> ServiceCommand {
        ServiceCommand {
            program: program.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
        }
    }
}

impl std::fmt::Display for ServiceCommand {
    /// Shell-quoted, so a printed command can be pasted.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", shell_quote(&self.program))?;
        for a in &self.args {
            write!(f, " {}", shell_quote(a))?;
        }
        Ok(())
    }
}

/// Quote `s` for a POSIX shell when it needs it.
pub fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandResult {
    pub success: bool,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Run a command to completion, capturing its output. The program is looked up on PATH.
pub fn run_command(cmd: &ServiceCommand) -> Result<CommandResult, ServiceError> {
    let out = Command::new(&cmd.program)
        .args(&cmd.args)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|source| ServiceError::Spawn {
            command: cmd.to_string(),
            source,
        })?;
    Ok(CommandResult {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Run `commands` in order, stopping at the first that cannot run or fails. The error
/// names the command and carries its stderr.
pub fn run_all(commands: &[ServiceCommand]) -> Result<(), ServiceError> {
    for c in commands {
        let r = run_command(c)?;
        if !r.success {
            return Err(ServiceError::Failed {
                command: c.to_string(),
                status: r.code.map_or("signal".into(), |c| format!("exit {c}")),
                stderr: r.stderr.trim().to_owned(),
            });
        }
    }
    Ok(())
}

/// The command that tells whether a service is loaded/running (exit 0 = yes).
pub fn is_loaded_command(manager: Manager, layout: &Layout, kind: ServiceKind) -> ServiceCommand {
    match manager {
        Manager::Launchd => launchd::print_command(layout, kind),
        Manager::Systemd => systemd::is_active_command(kind),
    }
}

/// Is the service loaded? `None` when the manager's tool cannot be run here.
pub fn is_loaded(manager: Manager, layout: &Layout, kind: ServiceKind) -> Option<bool> {
    run_command(&is_loaded_command(manager, layout, kind))
        .ok()
        .map(|r| r.success)
}

/// The commands that (re)load services after their files were written. `changed` are the
/// services whose file was created or changed; `loaded` tells whether a service is loaded
/// now. A loaded service with an unchanged file is left alone.
pub fn load_commands(
    manager: Manager,
    layout: &Layout,
    services: &[(ServiceKind, bool /* changed */, bool /* loaded */)],
) -> Vec<ServiceCommand> {
    match manager {
        Manager::Launchd => launchd::load_commands(layout, services),
        Manager::Systemd => systemd::load_commands(services),
    }
}

/// The commands that stop and unregister services (before their files are removed).
pub fn unload_commands(
    manager: Manager,
    layout: &Layout,
    kinds: &[ServiceKind],
) -> Vec<ServiceCommand> {
    match manager {
        Manager::Launchd => kinds
            .iter()
            .map(|k| launchd::bootout_command(layout, *k))
            .collect(),
        Manager::Systemd => systemd::unload_commands(kinds),
    }
}

/// The command that (re)starts one loaded service: `kickstart -k` or `systemctl --user start`.
pub fn start_command(manager: Manager, layout: &Layout, kind: ServiceKind) -> ServiceCommand {
    match manager {
        Manager::Launchd => launchd::kickstart_command(layout, kind),
        Manager::Systemd => {
            ServiceCommand::new("systemctl", &["--user", "start", &kind.systemd_unit()])
        }
    }
}

/// The commands that start one installed service now: launchd needs `bootstrap` when
/// the agent is not loaded (e.g. after `stop`) and `kickstart -k` when it is.
pub fn start_commands(manager: Manager, layout: &Layout, kind: ServiceKind) -> Vec<ServiceCommand> {
    match manager {
        Manager::Launchd => {
            if is_loaded(manager, layout, kind) == Some(true) {
                vec![launchd::kickstart_command(layout, kind)]
            } else {
                vec![launchd::bootstrap_command(layout, kind)]
            }
        }
        Manager::Systemd => vec![start_command(manager, layout, kind)],
    }
}

/// The command that stops one service until the next login / next start.
pub fn stop_command(manager: Manager, layout: &Layout, kind: ServiceKind) -> ServiceCommand {
    match manager {
        // A KeepAlive agent that is killed comes straight back; bootout is the stop.
        Manager::Launchd => launchd::bootout_command(layout, kind),
        Manager::Systemd => {
            ServiceCommand::new("systemctl", &["--user", "stop", &kind.systemd_unit()])
        }
    }
}

/// What is known about one of our services, for `status`, `doctor` and `uninstall`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ServiceState {
    pub manager: Manager,
    pub kind: ServiceKind,
    /// Label or unit name.
    pub name: String,
    pub path: PathBuf,
    /// The service file exists.
    pub installed: bool,
    /// The manager has it loaded/running; `None` when that could not be asked.
    pub loaded: Option<bool>,
    /// The program the file runs, when it could be read.
    pub program: Option<String>,
    /// Problems with the file: unreadable, program missing or not executable.
    pub problems: Vec<String>,
}

/// Inspect our services under `manager`: installed? loaded? does the program exist?
pub fn inspect(manager: Manager, layout: &Layout) -> Vec<ServiceState> {
    ServiceKind::ALL
        .iter()
        .map(|&kind| inspect_one(manager, layout, kind))
        .collect()
}

fn inspect_one(manager: Manager, layout: &Layout, kind: ServiceKind) -> ServiceState {
    let path = layout.service_file(manager, kind);
    let installed = path.is_file();
    let mut problems = Vec::new();
    let mut program = None;
    if installed {
        let parsed = match manager {
            Manager::Launchd => launchd::program_of(&path),
            Manager::Systemd => systemd::program_of(&path),
        };
        match parsed {
            Ok(p) => {
                if !is_executable(Path::new(&p)) {
                    problems.push(format!("{p} is missing or not executable"));
                }
                program = Some(p);
            }
            Err(e) => problems.push(e),
        }
    }
    let loaded = if installed {
        is_loaded(manager, layout, kind)
    } else {
        Some(false)
    };
    ServiceState {
        manager,
        kind,
        name: kind.service_name(manager),
        path,
        installed,
        loaded,
        program,
        problems,
    }
}

/// Is `path` a regular file with an execute bit?
pub fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Reject values a service file cannot carry (NUL, newlines and other control characters).
fn check_text(field: &str, value: &str) -> Result<(), ServiceError> {
    if value.chars().any(|c| c.is_control()) {
        return Err(ServiceError::ControlCharacter {
            field: field.to_owned(),
            value: value.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_quote_leaves_plain_words_and_quotes_the_rest() {
        assert_eq!(shell_quote("gui/501"), "gui/501");
        assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn names_and_paths() {
        let layout = Layout {
            home: PathBuf::from("/home/u"),
            uid: 501,
        };
        assert_eq!(
            layout.service_file(Manager::Launchd, ServiceKind::Ollama),
            PathBuf::from("/home/u/Library/LaunchAgents/dev.ccr-setup.ollama.plist")
        );
        assert_eq!(
            layout.service_file(Manager::Systemd, ServiceKind::Proxy),
            PathBuf::from("/home/u/.config/systemd/user/ccr-setup-proxy.service")
        );
        assert_eq!(layout.launchd_domain(), "gui/501");
    }

    #[test]
    fn render_rejects_relative_program() {
        let layout = Layout {
            home: PathBuf::from("/h"),
            uid: 1,
        };
        let spec = ServiceSpec {
            kind: ServiceKind::Proxy,
            program: vec!["ccr-setup".into(), "proxy".into()],
            env: vec![],
            after_our_ollama: true,
        };
        let err = render(Manager::Systemd, &layout, &spec).unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
    }
}
