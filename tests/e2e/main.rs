//! The end-to-end tests, one binary: the real Claude Code (2.1.197, and the newest
//! release where a test says so) and a real
//! llama-server with a tiny model, through the real `ccr-setup proxy`. They need the
//! tools `scripts/ci-deps.sh` installs (`source` it first; `scripts/test.sh` does) and
//! take minutes: `cargo test --test e2e`. Helpers are the `it` binary's `support`.

#[path = "../it/support/mod.rs"]
mod support;

mod claude;
mod claude_facts;
mod client_limits;
mod fallback;
mod lean;
mod long_session;
mod repair;
mod replicas;
mod statusline;
mod team;
mod ui_browser;
mod vision;
