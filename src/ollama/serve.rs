//! Starting `ollama serve` ourselves, and remembering that we did.
//!
//! The child is detached from the terminal (its own session), so closing the terminal
//! or pressing Ctrl-C in `up` does not take Ollama down with it, and its output goes to
//! `~/.claude-code-router/logs/ollama.log`. The pid file in `~/.claude-code-router/run/`
//! is how `up`, `status` and `stop` later know this server is ours, and so may be
//! stopped or restarted; any other server is never touched.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::{OllamaClient, OllamaError};
use crate::diagnostic::Hint;
use crate::service::runtime::{self, Owned};

/// `~/.claude-code-router/run/ollama.pid`: the pid and exact command line, in the format
/// every pid file of ccr-setup uses (`runtime::PidRecord`), so `stop` and `status` read it.
pub fn pid_file_path() -> PathBuf {
    Owned::Ollama.pid_file(&crate::paths::run_dir())
}

/// `~/.claude-code-router/run/ollama.json`: what `up` needs beyond the pid (where the
/// server listens, the context it was started with).
pub fn meta_path() -> PathBuf {
    crate::paths::run_dir().join("ollama.json")
}

/// `~/.claude-code-router/logs/ollama.log`.
pub fn log_path() -> PathBuf {
    crate::paths::logs_dir().join("ollama.log")
}

/// What the pid file records about the server we started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnedServer {
    pub pid: u32,
    /// Where it serves, e.g. `http://127.0.0.1:11434/`.
    pub base_url: String,
    /// The `OLLAMA_CONTEXT_LENGTH` it was started with.
    pub context_length: u32,
    /// RFC 3339 start time.
    pub started_at: String,
}

/// Why our `ollama serve` could not be started or did not come up. Starting it and
/// writing its files fail as any detached process does ([`runtime::RuntimeError`]).
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Launch(#[from] runtime::RuntimeError),
    #[error("`ollama serve` exited ({status}) before answering; last lines of {log}:\n{tail}")]
    Exited {
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("`ollama serve` did not answer at {url} within {secs} s; see {log}")]
    NotReady {
        url: String,
        secs: u64,
        log: PathBuf,
    },
}

impl Hint for ServeError {
    fn hint(&self) -> Option<String> {
        match self {
            ServeError::Exited { .. } | ServeError::NotReady { .. } => Some(
                "read the log above; `ollama serve` must start on its own for `up` to work".into(),
            ),
            ServeError::Launch(_) => None,
        }
    }
}

/// Read the pid file (and its metadata); None when there is no readable pid.
pub fn read_pid_file() -> Option<OwnedServer> {
    let pid = runtime::read_pid(&pid_file_path())?;
    let meta: Option<OwnedServer> = std::fs::read_to_string(meta_path())
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .filter(|m: &OwnedServer| m.pid == pid);
    Some(meta.unwrap_or(OwnedServer {
        pid,
        base_url: String::new(),
        context_length: 0,
        started_at: String::new(),
    }))
}

/// Remove the pid file and its metadata (after our server is gone).
pub fn remove_pid_file() {
    let _ = std::fs::remove_file(pid_file_path());
    let _ = std::fs::remove_file(meta_path());
}

/// Is `pid` live and still running exactly the `ollama serve` our pid file records
/// (guards against a reused pid; a zombie is not live)?
pub fn is_our_ollama_alive(pid: u32) -> bool {
    runtime::PidRecord::read(&pid_file_path())
        .filter(|r| r.pid == pid)
        .and_then(|r| r.matches_process())
        .unwrap_or(false)
}

/// Has `pid` exited (gone, or a zombie nobody has reaped yet)? Unlike a command-line
/// check this has no false positive while the process is in the middle of `exec`
/// (sh → the `ollama` script → the real binary), when its command line reads empty.
pub fn process_gone(pid: u32) -> bool {
    let Some(raw) = runtime::nix_pid(pid) else {
        return true;
    };
    if nix::sys::signal::kill(raw, None).is_err() {
        return true;
    }
    process_state(pid).is_some_and(|state| state.starts_with('Z'))
}

/// The scheduler state letter(s) of `pid`: the field after the parenthesised name in
/// /proc/<pid>/stat on Linux, `ps -o stat=` where there is no /proc (macOS).
fn process_state(pid: u32) -> Option<String> {
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        let after = stat.rsplit_once(')')?.1;
        return after.split_whitespace().next().map(str::to_owned);
    }
    ps_state(pid)
}

/// `ps -o stat=`: the state where /proc does not exist.
fn ps_state(pid: u32) -> Option<String> {
    let out = std::process::Command::new("ps")
        .args(["-o", "stat=", "-p", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !state.is_empty()).then_some(state)
}

/// The command line of `pid`, if it runs.
pub fn process_command(pid: u32) -> Option<String> {
    runtime::command_line(pid)
}

/// The pid-file entry when it names a live Ollama we started at `base_url` (a pid file
/// without metadata, e.g. from an older version, counts for any address).
pub fn owned_server_at(base_url: &url::Url) -> Option<OwnedServer> {
    let owned = read_pid_file()?;
    let same_place = owned.base_url.is_empty()
        || url::Url::parse(&owned.base_url).is_ok_and(|u| {
            u.host_str() == base_url.host_str()
                && u.port_or_known_default() == base_url.port_or_known_default()
        });
    (same_place && is_our_ollama_alive(owned.pid)).then_some(owned)
}

/// Start `program serve` (the `ollama` found on PATH) detached, with `env` added to
/// ours, and write the pid file.
///
/// The server is started through `sh -c '… &'` in a new session, so it is orphaned at
/// once and adopted by init: it survives `up`, is not hit by Ctrl-C in the terminal, and
/// never lingers as a zombie of the proxy that `up` execs into. Does not wait for it to
/// answer: see [`wait_until_ready`].
pub fn spawn_serve(
    program: &Path,
    env: &[(String, String)],
    base_url: &url::Url,
    context_length: u32,
) -> Result<OwnedServer, ServeError> {
    let log = log_path();
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| runtime::RuntimeError::Io { path, source }
    };
    let run = crate::paths::run_dir();
    crate::fsutil::create_dir_all(&run).map_err(io_err(&run))?;
    let pid = runtime::launch_detached(program, &["serve"], env, &log)?;
    let owned = OwnedServer {
        pid,
        base_url: base_url.to_string(),
        context_length,
        started_at: chrono::Utc::now().to_rfc3339(),
    };
    let meta = serde_json::to_string_pretty(&owned).expect("plain struct");
    // No backups: an old pid is worthless once replaced. Metadata first, so a reader
    // that finds the pid also finds where it listens.
    crate::fsutil::write_atomic(&meta_path(), meta.as_bytes(), 0o644)
        .map_err(io_err(&meta_path()))?;
    runtime::PidRecord::new(pid, program, &["serve"])
        .write(&pid_file_path())
        .map_err(io_err(&pid_file_path()))?;
    Ok(owned)
}

/// Poll `/api/version` until it answers, the server process `pid` is gone (when one
/// is given), or `timeout` passes.
pub async fn wait_until_ready(
    client: &OllamaClient,
    pid: Option<u32>,
    timeout: Duration,
) -> Result<String, ServeError> {
    let start = Instant::now();
    loop {
        match client.version().await {
            Ok(v) => return Ok(v),
            Err(OllamaError::Unreachable { .. }) | Err(OllamaError::Timeout { .. }) => {}
            Err(e) => tracing::debug!("waiting for ollama: {e}"),
        }
        if let Some(pid) = pid.filter(|p| process_gone(*p)) {
            remove_pid_file();
            return Err(ServeError::Exited {
                status: format!("pid {pid}"),
                log: log_path(),
                tail: crate::fsutil::tail_lines(&log_path(), 10),
            });
        }
        if start.elapsed() >= timeout {
            return Err(ServeError::NotReady {
                url: client.base_url().to_string(),
                secs: timeout.as_secs(),
                log: log_path(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stop the server our pid file names (SIGTERM, then wait up to `grace`). Only ever
/// called for a pid we wrote ourselves and that still looks like Ollama.
pub async fn stop_owned(owned: &OwnedServer, grace: Duration) -> bool {
    if !is_our_ollama_alive(owned.pid) {
        remove_pid_file();
        return true;
    }
    if let Some(pid) = runtime::nix_pid(owned.pid) {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }
    let start = Instant::now();
    while start.elapsed() < grace {
        if process_gone(owned.pid) {
            remove_pid_file();
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// Wait until nothing accepts connections on `base_url`'s port, up to `timeout`.
///
/// A process that is gone has closed its listener, but a server run through a wrapper
/// (a shell script, a supervisor) can outlive the pid we signalled for a moment; starting
/// the replacement before the port is free makes it fail to bind while the old server
/// keeps answering with the old settings. False when the port is still taken.
pub async fn wait_port_released(base_url: &url::Url, timeout: Duration) -> bool {
    let Ok(addrs) = base_url.socket_addrs(|| Some(super::host::DEFAULT_PORT)) else {
        return true;
    };
    let start = Instant::now();
    loop {
        let mut taken = false;
        for addr in &addrs {
            let connect = tokio::net::TcpStream::connect(addr);
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), connect).await {
                taken = true;
            }
        }
        if !taken {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    #[test]
    fn gone_covers_exited_and_zombie_processes() {
        assert!(!process_gone(std::process::id()));
        let mut reaped = Command::new("true").spawn().unwrap();
        let pid = reaped.id();
        reaped.wait().unwrap();
        assert!(process_gone(pid));
        // Exited but not yet waited for: a zombie.
        let mut zombie = Command::new("true").spawn().unwrap();
        std::thread::sleep(Duration::from_millis(200));
        assert!(process_gone(zombie.id()));
        // The path macOS takes (no /proc), checked here too.
        let state = ps_state(zombie.id());
        assert!(
            state.as_deref().is_some_and(|s| s.starts_with('Z')),
            "{state:?}"
        );
        assert!(ps_state(std::process::id()).is_some_and(|s| !s.starts_with('Z')));
        zombie.wait().unwrap();
    }
}
