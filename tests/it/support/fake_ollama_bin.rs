//! A fake `ollama` executable for tests that run the `ccr-setup` binary: `up` spawns
//! `ollama serve` from PATH, so the test puts `fake_ollama.py` first on PATH, named
//! `ollama` (python3 is on every machine we test on). The fake
//! serves the endpoints `up` needs on the port from `OLLAMA_HOST`, with the same shapes
//! as the in-process [`super::fake_ollama`], and records its environment to a file.
//!
//! [`UpHome`] bundles a temporary HOME, the fake on PATH, a config pointing at the
//! Ollama address, and cleanup: dropping it stops the `ollama serve` that `up` started
//! (found through `up`'s own pid file, and only if it is the fake).
#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

const SCRIPT: &str = include_str!("fake_ollama.py");

/// A temporary HOME with the fake `ollama` on PATH and a config for `up`.
pub struct UpHome {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub bin: PathBuf,
    /// One JSON line per `ollama serve` start: `{"argv", "env", "pid"}`.
    pub record: PathBuf,
    /// One `METHOD PATH` line per request the fake executable served.
    pub requests: PathBuf,
    pub config: PathBuf,
    /// `127.0.0.1:PORT`, the value of OLLAMA_HOST for `up`.
    pub ollama_host: String,
}

impl UpHome {
    /// A home whose Ollama address is `ollama_host` (`127.0.0.1:PORT`).
    pub fn new(ollama_host: &str) -> UpHome {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&home).unwrap();
        std::fs::create_dir_all(&bin).unwrap();
        let py = bin.join("fake_ollama.py");
        std::fs::write(&py, SCRIPT).unwrap();
        // The script itself (it starts with `#!/usr/bin/env python3`), not a wrapper
        // that execs it: `up` records `<bin>/ollama serve` in its pid file and `stop`
        // signals only a process running exactly that (through its interpreter).
        let sh = bin.join("ollama");
        std::fs::write(&sh, SCRIPT).unwrap();
        std::fs::set_permissions(&sh, std::fs::Permissions::from_mode(0o755)).unwrap();
        let config = home.join(".claude-code-router/config.json");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        let doc = json!({
            "Providers": [{
                "name": "ollama",
                "api_base_url": format!("http://{ollama_host}/v1/chat/completions"),
                "api_key": "ollama",
                "models": ["gpt-oss:20b"],
                "my_own_key": "kept"
            }],
            "Router": {"default": "ollama,gpt-oss:20b"},
        });
        std::fs::write(&config, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        UpHome {
            record: dir.path().join("ollama-env.jsonl"),
            requests: dir.path().join("ollama-requests.log"),
            home,
            bin,
            config,
            ollama_host: ollama_host.to_owned(),
            dir,
        }
    }

    /// A home for a fresh Ollama on a free port (nothing listens there yet).
    pub fn with_free_port() -> UpHome {
        Self::new(&format!(
            "127.0.0.1:{}",
            free_port_outside_ephemeral_range()
        ))
    }

    /// `ccr-setup --config … up ARGS` with this home, PATH and OLLAMA_HOST.
    pub fn up(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_ccr-setup"));
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        for (k, _) in std::env::vars() {
            if k.starts_with("OLLAMA_")
                || k.starts_with("CCR_SETUP")
                || k.starts_with("FAKE_OLLAMA")
            {
                cmd.env_remove(k);
            }
        }
        cmd.env("HOME", &self.home)
            .env("PATH", path)
            .env("OLLAMA_HOST", &self.ollama_host)
            .env("OLLAMA_MODELS", self.home.join(".ollama/models"))
            .env("FAKE_OLLAMA_RECORD", &self.record)
            .env("FAKE_OLLAMA_REQUESTS", &self.requests)
            .env("FAKE_OLLAMA_LIFETIME", "120")
            .env("NO_COLOR", "1")
            // Never the real registry from a test: port 9 (discard) refuses at once, so
            // the disk check falls back to the default model's known size.
            .env("CCR_SETUP_OLLAMA_REGISTRY", "http://127.0.0.1:9")
            .arg("--config")
            .arg(&self.config)
            .arg("up")
            .args(args);
        cmd
    }

    /// Point the registry (for the disk check's manifest size) at `url`.
    pub fn registry_env(cmd: &mut Command, url: &str) {
        cmd.env("CCR_SETUP_OLLAMA_REGISTRY", url);
    }

    /// The environments `ollama serve` was started with, one per start.
    pub fn serve_starts(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.record)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Requests the fake executable served, as `METHOD PATH` lines.
    pub fn served(&self) -> Vec<String> {
        std::fs::read_to_string(&self.requests)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    pub fn config_doc(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(&self.config).unwrap()).unwrap()
    }

    pub fn pid_file(&self) -> PathBuf {
        self.home.join(".claude-code-router/run/ollama.pid")
    }

    /// Backups `up` left beside the config.
    pub fn config_backups(&self) -> usize {
        let dir = self.config.parent().unwrap();
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".bak"))
            .count()
    }
}

impl Drop for UpHome {
    fn drop(&mut self) {
        // Stop only the fake we caused to start: its pid from the record file.
        for start in self.serve_starts() {
            if let Some(pid) = start["pid"].as_i64() {
                kill_if_fake(pid as i32, &self.bin);
            }
        }
    }
}

/// A port that is free now and that no `bind(…:0)` elsewhere in the test run can take
/// before the process we start binds it: the kernel hands out port-0 binds from the
/// ephemeral range (32768–60999 on Linux, 49152–65535 on macOS), so we pick below it.
pub fn free_port_outside_ephemeral_range() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        ^ (std::process::id() << 8)
        ^ COUNTER.fetch_add(7919, Ordering::Relaxed);
    let mut x = seed | 1;
    for _ in 0..200 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        let port = 20_000 + (x % 12_000) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port in 20000-31999");
}

fn kill_if_fake(pid: i32, bin: &Path) {
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .or_else(|_| {
            Command::new("ps")
                .args(["-p", &pid.to_string(), "-o", "command="])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        })
        .unwrap_or_default();
    let ours = [bin.join("fake_ollama.py"), bin.join("ollama")];
    if ours
        .iter()
        .any(|p| cmdline.contains(&format!("{} ", p.display())))
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
