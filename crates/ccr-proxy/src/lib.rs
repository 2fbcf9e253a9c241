//! ccr-proxy: the proxy half of ccr-setup, as its own crate so the compiler keeps the
//! graph one-way. It holds what the running proxy needs and nothing of the CLI (no
//! clap, dialoguer, indicatif or notify):
//!
//! - `proxy`: the Anthropic Messages server (wire types, translation, repair, tokens,
//!   route/guard/fallback, context editing, server);
//! - `config`: the router config's types, loading, validation and atomic writes. They
//!   live here, not in the CLI, because the proxy reads every field on every request
//!   and validation uses the proxy's own rules (routes, capabilities);
//! - `ledger`: the SQLite usage ledger. It moves with the proxy rather than hiding
//!   behind a trait, because the proxy is its only writer and `stats` and the
//!   dashboard read it through the same schema module;
//! - small shared pieces both halves use: `diagnostic` (a failure with its fix),
//!   `env_vars`, `paths`, `platform`, `fsutil`, `sanitize`, `catalogue`.
//!
//! The file watcher that reloads the config lives in the CLI (`ccr_setup::config_watch`);
//! the proxy only offers [`proxy::reload::LiveConfig`] to swap a config in.

pub mod catalogue;
pub mod config;
pub mod diagnostic;
pub mod env_vars;
pub mod fsutil;
pub mod ledger;
pub mod paths;
pub mod platform;
pub mod proxy;
pub mod sanitize;
