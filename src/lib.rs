//! ccr-setup: run Claude Code on a local model.
//!
//! Data flows one way: `cli` parses, `commands` orchestrates, and the domain
//! modules (`config`, `ollama`, `provision`, `service`, `proxy`, `ledger`) do the
//! work and report progress through return values or callbacks, never by printing.

pub mod catalogue;
pub mod cli;
pub mod commands;
pub mod config;
pub mod context_budget;
pub mod diagnostic;
pub mod doctor;
pub mod env_vars;
pub mod fsutil;
pub mod humanize;
pub mod ledger;
pub mod logging;
pub mod models;
pub mod ollama;
pub mod output;
pub mod paths;
pub mod platform;
pub mod port_owner;
pub mod provision;
pub mod proxy;
pub mod sanitize;
pub mod service;
pub mod smoke;
pub mod statusline;
pub mod team;
pub mod ui;
