//! Shared helpers and fakes for the integration tests. Each test binary uses only
//! part of this, hence the allow.
#![allow(dead_code)]

pub mod claude_code;
pub mod fake_bin;
pub mod fake_ollama;
pub mod fake_ollama_bin;
pub mod openai_upstream;
pub mod proxy_app;
pub mod tiny_http;

use std::path::PathBuf;

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
