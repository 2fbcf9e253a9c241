//! Shared helpers and fakes of the `it` and `e2e` test binaries: the one [`sandbox`]
//! (HOME, PATH of fakes, command builder), the one fake Ollama ([`fake_ollama`]), the
//! scripted OpenAI-style upstream, the in-process proxy ([`proxy_app`]), the SSE reader
//! and the port helpers. Each binary uses only part of this, hence the allow.
#![allow(dead_code, unused_imports)]

pub mod claude_code;
pub mod fake_bin;
pub mod fake_ollama;
pub mod fake_vllm;
pub mod ledger;
pub mod net;
pub mod openai_upstream;
pub mod proxy_app;
pub mod routed_http;
pub mod sandbox;
pub mod sse;
pub mod tiny_http;
pub mod webdriver;

pub use net::unbound_port;

use std::path::PathBuf;

/// A command that runs `program` in a new session, so it has no controlling terminal
/// (`/dev/tty` cannot open). util-linux's `setsid --wait` does the same on Linux only;
/// this works on macOS too.
pub fn command_without_terminal(program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut cmd = std::process::Command::new(program);
    // SAFETY: setsid(2) is async-signal-safe, and nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid()
                .map(drop)
                .map_err(std::io::Error::from)
        });
    }
    cmd
}

/// A tool on PATH, or a loud skip (a failure under CI).
pub fn tool_on_path(name: &str) -> Option<PathBuf> {
    match which::which(name) {
        Ok(p) => Some(p),
        Err(_) if std::env::var_os("CI").is_some() => {
            panic!("{name} is not on PATH: scripts/ci-deps.sh installs it")
        }
        Err(_) => {
            eprintln!("SKIPPED: {name} is not on PATH (scripts/ci-deps.sh installs it)");
            None
        }
    }
}

/// Path to external software the tests run against, from an environment variable set
/// by `scripts/ci-deps.sh`. Under CI (`CI` set) a missing tool fails the test; on a
/// developer machine the test is skipped with a loud message.
pub fn require_tool(env_var: &str) -> Option<PathBuf> {
    match std::env::var_os(env_var).map(PathBuf::from) {
        Some(p) if p.exists() => Some(p),
        other => {
            let msg = format!(
                "{env_var} is {:?}: run `source scripts/ci-deps.sh` (scripts/test.sh does) to install it",
                other
            );
            if std::env::var_os("CI").is_some() {
                panic!("{msg}");
            }
            eprintln!("SKIPPED: {msg}");
            None
        }
    }
}

/// GET `url` and read its JSON body (any status).
pub async fn get_json(url: &str) -> serde_json::Value {
    let resp = reqwest::get(url)
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    resp.json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
}
