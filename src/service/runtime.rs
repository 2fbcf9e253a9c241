//! Processes ccr-setup starts without a service manager: a detached proxy (from `code`)
//! or an Ollama child (from `up`), each with a pid file in `~/.claude-code-router/run/`.
//!
//! A pid file alone proves nothing: the process may have exited and the number been
//! reused. The file records the exact command line we started ([`PidRecord`]), and
//! before anything is signalled, [`owned_pid`] checks that the process still runs
//! exactly that, so `stop` never kills somebody else's process.
//! Liveness of the proxy is judged by its `GET /health`, never by a pid.

use std::fs::OpenOptions;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Serialize;
use serde_json::Value;

/// A process ccr-setup may start and later stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Owned {
    Proxy,
    Ollama,
}

impl Owned {
    /// Its pid file: `run/proxy.pid` or `run/ollama.pid`.
    pub fn pid_file(self, run_dir: &Path) -> PathBuf {
        run_dir.join(match self {
            Owned::Proxy => "proxy.pid",
            Owned::Ollama => "ollama.pid",
        })
    }
}

/// Why a process could not be started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("cannot start {program}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot signal pid {pid}")]
    Signal { pid: u32, source: nix::Error },
}

/// A pid as `kill(2)` takes it: the one place a pid (`u32`, as std gives it) becomes
/// an `i32`. None for 0 and for numbers past `i32::MAX`, which `kill(2)` would read as
/// this process group or another group: never something to signal.
pub fn nix_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .map(Pid::from_raw)
}

/// The pid in a pid file, if the file holds one: a bare number (ours) or a JSON object
/// with a `pid` field (what `up` writes for its Ollama child).
pub fn read_pid(path: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    text.parse()
        .ok()
        .or_else(|| {
            serde_json::from_str::<Value>(text)
                .ok()?
                .get("pid")?
                .as_u64()
                .and_then(|p| u32::try_from(p).ok())
        })
        .filter(|p: &u32| nix_pid(*p).is_some())
}

/// What a pid file records: the pid and the exact command line (absolute program path,
/// then the arguments) it was started with. Written as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct PidRecord {
    pub pid: u32,
    pub argv: Vec<String>,
}

impl PidRecord {
    pub fn new(pid: u32, program: &Path, args: &[&str]) -> PidRecord {
        let mut argv = vec![program.display().to_string()];
        argv.extend(args.iter().map(|a| (*a).to_owned()));
        PidRecord { pid, argv }
    }

    /// Read a pid file written by [`write`](Self::write). None for a missing or
    /// unreadable file, and for older files holding only a pid (nothing to match).
    pub fn read(path: &Path) -> Option<PidRecord> {
        let text = std::fs::read_to_string(path).ok()?;
        serde_json::from_str::<PidRecord>(text.trim())
            .ok()
            .filter(|r| nix_pid(r.pid).is_some() && !r.argv.is_empty())
    }

    /// Write the pid file atomically (0644: it holds no secret).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_string(self).map_err(std::io::Error::other)?;
        text.push('\n');
        crate::fsutil::write_atomic(path, text.as_bytes(), 0o644)
    }

    /// Does the running process `pid` still run exactly this command line? Either its
    /// argv equals ours, or it is a script interpreter (`sh`, `python3`…: a shebang
    /// script, or our own `sh` launcher before its `exec`) whose argv ends with ours. A
    /// `tail -f …/ollama serve` does not match.
    pub fn matches_process(&self) -> Option<bool> {
        let actual = process_argv(self.pid)?;
        Some(argv_matches(&actual, &self.argv))
    }
}

/// `actual` is `recorded`, or an interpreter running it.
pub fn argv_matches(actual: &[String], recorded: &[String]) -> bool {
    if actual == recorded {
        return true;
    }
    let interpreter = actual.first().is_some_and(|a| {
        let name = a.rsplit('/').next().unwrap_or(a);
        let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
        matches!(
            base,
            "sh" | "bash" | "dash" | "zsh" | "python" | "node" | "perl" | "env"
        )
    });
    interpreter && actual.len() > recorded.len() && actual.ends_with(recorded)
}

/// The argv of a running process: `/proc/<pid>/cmdline` on Linux (None when it is
/// empty: a zombie or a kernel thread); elsewhere `ps`'s command column split on spaces
/// (exact for paths without spaces).
pub fn process_argv(pid: u32) -> Option<Vec<String>> {
    if let Ok(raw) = std::fs::read(format!("/proc/{pid}/cmdline")) {
        let argv: Vec<String> = raw
            .split(|b| *b == 0)
            .filter(|s| !s.is_empty())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .collect();
        return (!argv.is_empty()).then_some(argv);
    }
    let out = Command::new("ps")
        .args(["-o", "command=", "-p", &pid.to_string()])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    (out.status.success() && !text.is_empty()).then(|| text.split(' ').map(str::to_owned).collect())
}

/// The command line of a running process, its argv joined with spaces.
pub fn command_line(pid: u32) -> Option<String> {
    process_argv(pid).map(|argv| argv.join(" "))
}

/// What a pid file says about a process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PidState {
    /// No pid file.
    None,
    /// The pid file names a running process that still is ours.
    Running { pid: u32 },
    /// The process is gone (or the file is unreadable): the file is stale.
    Stale { pid: Option<u32> },
    /// The pid was reused by a process that is not ours, or the file (from an older
    /// version) records no command line to prove it is ours.
    Foreign { pid: u32, command: String },
}

/// Check the pid file of `what` against the running processes.
pub fn owned_pid(what: Owned, run_dir: &Path) -> PidState {
    let file = what.pid_file(run_dir);
    if !file.exists() {
        return PidState::None;
    }
    let Some(pid) = read_pid(&file) else {
        return PidState::Stale { pid: None };
    };
    let Some(command) = command_line(pid) else {
        return PidState::Stale { pid: Some(pid) };
    };
    match PidRecord::read(&file).and_then(|r| r.matches_process()) {
        Some(true) => PidState::Running { pid },
        _ => PidState::Foreign { pid, command },
    }
}

/// Start `program args…` detached from this terminal (new session, stdin closed, output
/// appended to `log`) and record its pid in `pid_file`. Returns the pid.
pub fn spawn_detached(
    program: &Path,
    args: &[&str],
    env: &[(String, String)],
    log: &Path,
    pid_file: &Path,
) -> Result<u32, RuntimeError> {
    let pid = launch_detached(program, args, env, log)?;
    PidRecord::new(pid, program, args)
        .write(pid_file)
        .map_err(|source| RuntimeError::Io {
            path: pid_file.to_path_buf(),
            source,
        })?;
    Ok(pid)
}

/// Start `program args…` detached (as [`spawn_detached`]) without writing a pid file,
/// for callers that record more than the pid.
pub fn launch_detached(
    program: &Path,
    args: &[&str],
    env: &[(String, String)],
    log: &Path,
) -> Result<u32, RuntimeError> {
    let io_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RuntimeError::Io { path, source }
    };
    if let Some(dir) = log.parent() {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
    }
    // Touch the log so a failure to open it is reported here, not lost in the shell.
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(io_err(log))?;
    // Double fork through sh: the server is not our child, so it never lingers as a
    // zombie under whatever this process becomes (`code` execs into `claude`).
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(r#"l="$1"; shift; "$@" </dev/null >>"$l" 2>&1 & echo $!"#)
        .arg("sh")
        .arg(log)
        .arg(program)
        .args(args)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    // SAFETY: setsid is async-signal-safe; it detaches the server from our terminal so
    // closing the terminal (or Ctrl-C in `claude`) does not stop it.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let spawn_err = |source| RuntimeError::Spawn {
        program: program.display().to_string(),
        source,
    };
    let out = cmd.output().map_err(spawn_err)?;
    let pid: u32 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| {
            spawn_err(std::io::Error::other(format!(
                "no pid from the launcher: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )))
        })?;
    Ok(pid)
}

/// Send SIGTERM to `pid`, wait up to `grace` for it to exit, then SIGKILL. Only call
/// this for a pid that [`owned_pid`] reported as ours.
pub fn terminate(pid: u32, grace: Duration) -> Result<(), RuntimeError> {
    let Some(p) = nix_pid(pid) else {
        return Ok(()); // no process can have it
    };
    match kill(p, Signal::SIGTERM) {
        Ok(()) => {}
        Err(nix::Error::ESRCH) => return Ok(()),
        Err(source) => return Err(RuntimeError::Signal { pid, source }),
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        // Reap it if it is our own child (tests), then see whether it is gone.
        let _ = nix::sys::wait::waitpid(p, Some(nix::sys::wait::WaitPidFlag::WNOHANG));
        if kill(p, None).is_err() || command_line(pid).is_none() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match kill(p, Signal::SIGKILL) {
        Ok(()) | Err(nix::Error::ESRCH) => Ok(()),
        Err(source) => Err(RuntimeError::Signal { pid, source }),
    }
}

/// The URL clients use to reach a proxy bound to `host:port` (a wildcard bind is
/// reached through loopback).
pub fn proxy_url(host: &str, port: u16) -> String {
    let h = match host.trim() {
        "" | "0.0.0.0" | "::" | "[::]" => "127.0.0.1",
        h => h,
    };
    if h.contains(':') && !h.starts_with('[') {
        format!("http://[{h}]:{port}")
    } else {
        format!("http://{h}:{port}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_files_are_checked_against_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path();
        assert_eq!(owned_pid(Owned::Proxy, run), PidState::None);
        // Our own test process is not a ccr-setup proxy: foreign, never to be signalled.
        std::fs::write(
            Owned::Proxy.pid_file(run),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        assert!(matches!(
            owned_pid(Owned::Proxy, run),
            PidState::Foreign { .. }
        ));
        std::fs::write(Owned::Proxy.pid_file(run), "garbage").unwrap();
        // `up` writes JSON pid files; those are read too.
        let json = dir.path().join("j.pid");
        std::fs::write(
            &json,
            r#"{"pid": 4242, "base_url": "http://127.0.0.1:11434/"}"#,
        )
        .unwrap();
        assert_eq!(read_pid(&json), Some(4242));
        assert_eq!(owned_pid(Owned::Proxy, run), PidState::Stale { pid: None });
    }

    #[test]
    fn detached_process_is_recognised_and_terminated() {
        let dir = tempfile::tempdir().unwrap();
        // A stand-in whose command line carries the ollama signature.
        let fake = dir.path().join("ollama");
        std::fs::write(&fake, "#!/bin/sh\nexec sleep 30\n").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let pid_file = Owned::Ollama.pid_file(dir.path());
        // `sh <path>/ollama serve` keeps both words in the command line until exec.
        let pid = spawn_detached(
            Path::new("/bin/sh"),
            &["-c", "sleep 30; :", &format!("{} serve", fake.display())],
            &[],
            &dir.path().join("logs/o.log"),
            &pid_file,
        )
        .unwrap();
        assert_eq!(read_pid(&pid_file), Some(pid));
        assert_eq!(
            owned_pid(Owned::Ollama, dir.path()),
            PidState::Running { pid }
        );
        terminate(pid, Duration::from_secs(5)).unwrap();
        assert!(matches!(
            owned_pid(Owned::Ollama, dir.path()),
            PidState::Stale { .. }
        ));
    }

    #[test]
    fn only_real_pids_reach_kill() {
        assert_eq!(nix_pid(4242), Some(Pid::from_raw(4242)));
        assert_eq!(nix_pid(0), None);
        // `as i32` made this -1: every process we may signal.
        assert_eq!(nix_pid(u32::MAX), None);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("p.pid");
        std::fs::write(&file, format!("{}\n", u32::MAX)).unwrap();
        assert_eq!(read_pid(&file), None);
    }

    #[test]
    fn wildcard_binds_are_reached_through_loopback() {
        assert_eq!(proxy_url("0.0.0.0", 3456), "http://127.0.0.1:3456");
        assert_eq!(proxy_url("::1", 1), "http://[::1]:1");
        assert_eq!(proxy_url("127.0.0.1", 80), "http://127.0.0.1:80");
    }
}
