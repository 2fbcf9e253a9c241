//! Running the real `ccr-setup proxy` binary and the real Claude Code (`claude -p`)
//! against it, for the end-to-end tests. Every child is killed and reaped on drop.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const CLAUDE_TIMEOUT: Duration = Duration::from_secs(180);

/// A child process this test started; killed and reaped on drop.
pub struct Child(pub std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub use super::net::unbound_port;

/// Wait until `url` answers 2xx; fail if `child` exits first or `timeout` passes.
pub async fn wait_healthy(url: &str, timeout: Duration, child: &mut Child, what: &str) {
    wait_until(url, timeout, child, what, |_| true).await
}

/// Wait until the `ccr-setup proxy` that `child` runs answers `{base}/health`; fail if it
/// exits first (its port was taken, say) or `timeout` passes. Any 2xx is not enough:
/// another program on the port would pass, and the test would then talk to it.
pub async fn wait_for_proxy(base: &str, timeout: Duration, child: &mut Child) {
    wait_until(
        &format!("{base}/health"),
        timeout,
        child,
        "ccr-setup proxy",
        |body| {
            serde_json::from_slice::<Value>(body)
                .is_ok_and(|health| health["version"] == env!("CARGO_PKG_VERSION"))
        },
    )
    .await
}

/// Poll `url` until it answers 2xx with a body `is_ours` accepts.
async fn wait_until(
    url: &str,
    timeout: Duration,
    child: &mut Child,
    what: &str,
    is_ours: impl Fn(&[u8]) -> bool,
) {
    // Straight to loopback, whatever HTTP_PROXY the test run has.
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    loop {
        if let Ok(r) = client.get(url).send().await {
            let status = r.status();
            let body = r.bytes().await.unwrap_or_default();
            if status.is_success() && is_ours(&body) {
                return;
            }
            last = format!("{status}: {}", String::from_utf8_lossy(&body));
        }
        if let Ok(Some(status)) = child.0.try_wait() {
            panic!("{what} exited early with {status}; {url} last answered {last}");
        }
        assert!(
            Instant::now() < deadline,
            "{what} not healthy at {url} after {timeout:?}; last answer {last}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Run `ccr-setup proxy` with `config` (HOME is `dir`, so logs and ledger stay there).
/// Returns the child, the base URL and the file holding the proxy's stderr log.
pub async fn start_proxy(dir: &Path, config: Value) -> (Child, String, PathBuf) {
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    let port = unbound_port();
    let log = dir.join("proxy.stderr");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ccr-setup"))
        .args(["--config"])
        .arg(&config_path)
        .args(["proxy", "--port", &port.to_string()])
        .env("HOME", dir)
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut child = Child(child);
    let base = format!("http://127.0.0.1:{port}");
    wait_for_proxy(&base, Duration::from_secs(20), &mut child).await;
    (child, base, log)
}

pub struct ClaudeRun {
    pub status: std::process::ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl ClaudeRun {
    /// What a failed assertion shows: Claude Code's exit, output, and the proxy's log.
    pub fn context(&self, proxy_log: &str) -> String {
        format!(
            "claude exit {:?}\nstdout: {}\nstderr: {}\nproxy log:\n{proxy_log}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// `claude -p PROMPT ARGS…` with a clean environment pointed at the proxy at `base`
/// (HOME is `home`, onboarding pre-seeded). Output is piped; the child dies with its
/// handle.
pub fn claude_command(
    claude: &Path,
    home: &Path,
    base: &str,
    prompt: &str,
    args: &[&str],
) -> tokio::process::Command {
    std::fs::write(
        home.join(".claude.json"),
        json!({"hasCompletedOnboarding": true}).to_string(),
    )
    .unwrap();
    let work = home.join("work");
    std::fs::create_dir_all(&work).unwrap();
    let mut cmd = tokio::process::Command::new(claude);
    cmd.arg("-p")
        .arg(prompt)
        .args(args)
        .current_dir(&work)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("TERM", "dumb")
        .env("ANTHROPIC_BASE_URL", base)
        .env("ANTHROPIC_AUTH_TOKEN", "x")
        .env("CLAUDE_CODE_MAX_OUTPUT_TOKENS", "512")
        .env("DISABLE_TELEMETRY", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Run `claude -p` to completion (see [`claude_command`]) within [`CLAUDE_TIMEOUT`].
pub async fn run_claude(
    claude: &Path,
    home: &Path,
    base: &str,
    prompt: &str,
    args: &[&str],
) -> ClaudeRun {
    let child = claude_command(claude, home, base, prompt, args)
        .spawn()
        .expect("start claude");
    let output = tokio::time::timeout(CLAUDE_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("claude -p did not finish within {CLAUDE_TIMEOUT:?}"))
        .unwrap();
    ClaudeRun {
        status: output.status,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// One proxy's scratch space: a temporary directory with `home/work/` (Claude Code's
/// HOME and working folder), a free port, and where `config.json` goes.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    pub home: PathBuf,
    pub work: PathBuf,
    pub port: u16,
    pub config: PathBuf,
}

impl Scratch {
    pub fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let work = home.join("work");
        std::fs::create_dir_all(&work).unwrap();
        let config = dir.path().join("config.json");
        Scratch {
            dir,
            home,
            work,
            port: unbound_port(),
            config,
        }
    }

    /// Write `doc` as the config, with `PORT` set to this scratch's port.
    pub fn write_config(&self, mut doc: Value) {
        doc["PORT"] = json!(self.port);
        std::fs::write(&self.config, doc.to_string()).unwrap();
    }

    /// The proxy on this config and port, its stderr to `stderr`.
    pub async fn spawn_proxy(&self, stderr: Stdio) -> Child {
        spawn_proxy(&self.config, &self.home, self.port, stderr).await
    }
}

/// `ccr-setup --config CONFIG proxy` with HOME at `home`, waited for until `/health`
/// answers on `port` (the config's `PORT`); its stderr goes to `stderr`.
pub async fn spawn_proxy(config: &Path, home: &Path, port: u16, stderr: Stdio) -> Child {
    let mut proxy = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_ccr-setup"))
            .arg("--config")
            .arg(config)
            .arg("proxy")
            .env("HOME", home)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    wait_for_proxy(&base, Duration::from_secs(20), &mut proxy).await;
    proxy
}

/// `ccr-setup --config CONFIG code ARGS…` as a user runs it: the real `claude` first on
/// PATH, HOME at `home` (onboarding pre-seeded), in `home/work`, within [`CLAUDE_TIMEOUT`].
pub async fn run_code(
    config: &Path,
    claude: &Path,
    home: &Path,
    args: &[&str],
) -> std::process::Output {
    std::fs::create_dir_all(home.join("work")).unwrap();
    std::fs::write(
        home.join(".claude.json"),
        json!({"hasCompletedOnboarding": true}).to_string(),
    )
    .unwrap();
    let bin = home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let _ = std::os::unix::fs::symlink(claude, bin.join("claude"));
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ccr-setup"))
        .arg("--config")
        .arg(config)
        .arg("code")
        .args(args)
        .current_dir(home.join("work"))
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("TERM", "dumb")
        .env("CLAUDE_CODE_MAX_OUTPUT_TOKENS", "512")
        .env("DISABLE_AUTOUPDATER", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(CLAUDE_TIMEOUT, out)
        .await
        .expect("ccr-setup code finished in time")
        .unwrap()
}
