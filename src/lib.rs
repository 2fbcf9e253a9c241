//! ccr-setup: run Claude Code on a local model.
//!
//! Data flows one way: `cli` parses, `commands` orchestrates, and the domain
//! modules (`config`, `ollama`, `provision`, `service`, `proxy`, `ledger`) do the
//! work and report progress through return values or callbacks, never by printing.

pub mod cli;
pub mod commands;
pub mod config_watch;
pub mod context_budget;
pub mod doctor;
pub mod humanize;
pub mod logging;
pub mod models;
pub mod ollama;
pub mod output;
pub mod port_owner;
pub mod provision;
pub mod service;
pub mod smoke;
pub mod statusline;
pub mod team;
pub mod ui;

// The proxy crate's modules, re-exported under their old paths so `crate::config`,
// `crate::proxy` and the rest read the same in the CLI as before the split.
pub use ccr_proxy::{
    catalogue, config, diagnostic, env_vars, fsutil, ledger, paths, platform, proxy, sanitize,
};
