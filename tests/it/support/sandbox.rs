//! The one sandbox: a temporary machine for running the `ccr-setup` binary (or any
//! program) with a HOME of its own, a PATH holding only recorded fakes
//! ([`FakeBin`]) and an `OLLAMA_HOST` of the test's choosing. With the fake `ollama`
//! executable added ([`Sandbox::up_home`]), it also stops every `ollama serve` it caused
//! to start when dropped.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use serde_json::{json, Value};

use super::fake_bin::FakeBin;
use super::fake_ollama::exe;

pub struct Sandbox {
    pub root: tempfile::TempDir,
    pub home: PathBuf,
    pub fakes: FakeBin,
    /// `OLLAMA_HOST` for commands; `127.0.0.1:9` (nothing answers) unless set.
    pub ollama_host: String,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    pub fn new() -> Sandbox {
        Self::with_home_name("home")
    }

    /// A HOME whose name may hold spaces, `&` or `<`.
    pub fn with_home_name(name: &str) -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        let home = root.path().join(name);
        std::fs::create_dir_all(&home).unwrap();
        let fakes = FakeBin::new(root.path());
        Sandbox {
            root,
            home,
            fakes,
            ollama_host: "127.0.0.1:9".into(),
        }
    }

    pub fn with_ollama_host(mut self, host: &str) -> Sandbox {
        self.ollama_host = host.to_owned();
        self
    }

    /// A sandbox for `up`: the fake `ollama` executable on PATH and a config whose
    /// `ollama` provider points at `ollama_host` (plus an unknown key `up` must keep).
    pub fn up_home(ollama_host: &str) -> Sandbox {
        let sb = Sandbox::new().with_ollama_host(ollama_host);
        sb.add_fake_ollama();
        sb.write_config(&json!({
            "Providers": [{
                "name": "ollama",
                "api_base_url": format!("http://{ollama_host}/v1/chat/completions"),
                "api_key": "ollama",
                "models": ["gpt-oss:20b"],
                "my_own_key": "kept"
            }],
            "Router": {"default": "ollama,gpt-oss:20b"},
        }));
        sb
    }

    /// [`Sandbox::up_home`] for a fresh Ollama on a free port (nothing listens there).
    pub fn up_home_free_port() -> Sandbox {
        Self::up_home(&format!("127.0.0.1:{}", super::net::unbound_port()))
    }

    pub fn state_dir(&self) -> PathBuf {
        self.root.path().join("state")
    }

    /// `program` with a clean environment: HOME, PATH (the fakes only), NO_COLOR, and
    /// stdin from /dev/null.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("HOME", &self.home)
            .env("PATH", self.fakes.path_env())
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        c
    }

    /// The fakes first, then the machine's PATH (for scripts that need real tools).
    pub fn system_path(&self) -> String {
        format!(
            "{}:{}",
            self.fakes.path_env(),
            std::env::var("PATH").unwrap_or_default()
        )
    }

    /// `ccr-setup ARGS` in the sandbox, with its `OLLAMA_HOST`, a models directory of
    /// its own, and the registry lookup pointed at nothing (port 9 refuses at once, so
    /// the disk check uses the model's known size; never the real registry).
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = self.command(env!("CARGO_BIN_EXE_ccr-setup"));
        c.args(args)
            .env("OLLAMA_HOST", &self.ollama_host)
            .env("OLLAMA_MODELS", self.root.path().join("models"))
            .env("CCR_SETUP_OLLAMA_REGISTRY", "http://127.0.0.1:9");
        c
    }

    /// `ccr-setup --config … up ARGS`, with the fake `ollama` recording its starts and
    /// requests.
    pub fn up(&self, args: &[&str]) -> Command {
        let config = self.config_path();
        let mut c = self.cmd(&["--config", config.to_str().unwrap(), "up"]);
        c.args(args)
            .env("FAKE_OLLAMA_RECORD", self.record_path())
            .env("FAKE_OLLAMA_REQUESTS", self.requests_path())
            .env("FAKE_OLLAMA_LIFETIME", "120");
        c
    }

    pub fn config_path(&self) -> PathBuf {
        self.home.join(".claude-code-router/config.json")
    }

    /// Write the config (pretty JSON, mode 0600).
    pub fn write_config(&self, doc: &Value) {
        self.write_config_mode(doc, 0o600);
    }

    pub fn write_config_mode(&self, doc: &Value, mode: u32) {
        let p = self.config_path();
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, serde_json::to_string_pretty(doc).unwrap()).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    pub fn config_doc(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.config_path()).unwrap()).unwrap()
    }

    /// Backups left beside the config.
    pub fn config_backups(&self) -> usize {
        let dir = self.config_path().parent().unwrap().to_owned();
        std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".bak"))
            .count()
    }

    /// The recorded calls, minus the `--version` probes.
    pub fn actions(&self) -> Vec<String> {
        self.fakes
            .calls()
            .into_iter()
            .filter(|c| !c.ends_with(" --version"))
            .collect()
    }

    /// Put the fake `ollama` executable on PATH ([`exe`]); returns its path.
    pub fn add_fake_ollama(&self) -> PathBuf {
        self.fakes.add_script("ollama", &exe::script_body())
    }

    pub fn ollama_exe(&self) -> PathBuf {
        self.fakes.dir.join("ollama")
    }

    /// One JSON line per `ollama serve` start: `{"argv", "env", "pid", "server_pid"}`.
    pub fn record_path(&self) -> PathBuf {
        self.root.path().join("ollama-starts.jsonl")
    }

    /// One `METHOD PATH` line per request the fake executable served.
    pub fn requests_path(&self) -> PathBuf {
        self.root.path().join("ollama-requests.log")
    }

    pub fn serve_starts(&self) -> Vec<Value> {
        std::fs::read_to_string(self.record_path())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub fn served(&self) -> Vec<String> {
        std::fs::read_to_string(self.requests_path())
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    /// `up`'s pid file for the Ollama it started.
    pub fn pid_file(&self) -> PathBuf {
        self.home.join(".claude-code-router/run/ollama.pid")
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        // Stop only the fakes this sandbox caused to start, from their record lines.
        for start in self.serve_starts() {
            exe::kill_recorded(&start, &self.ollama_exe());
        }
    }
}

/// Run a command, panicking with its output unless it exits with `code`.
pub fn run_expect(mut cmd: Command, code: i32) -> (String, String) {
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(code),
        "unexpected exit\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    (stdout, stderr)
}
