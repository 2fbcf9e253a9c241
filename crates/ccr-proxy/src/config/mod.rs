//! The router config: claude-code-router's schema, kept so its users switch with no edits.
//!
//! * [`ConfigFile`] is the file as the user wrote it (JSON5 parsed to a JSON tree, no
//!   interpolation). Edits go to this tree, so keys we do not know survive a save.
//! * [`Config`] is the typed, interpolated, validated view the rest of the crate uses,
//!   built by [`ConfigFile::resolve`], which reports *every* problem with its JSON path
//!   and the fix.
//!
//! Extensions over claude-code-router (all optional): per-provider `context_window`,
//! `max_tokens` and `reasoning_in_history`; top-level `CONNECT_TIMEOUT_MS`,
//! `STREAM_IDLE_TIMEOUT_MS`, `Ollama` (the settings `up`, `init` and the services use)
//! and `Pricing` (the ledger's price table); `ServerMode` and `Join` for team mode
//! (docs/team.md).

pub mod client_keys;
mod edit;
mod endpoint;
mod file;
mod interpolate;
mod join;
mod model;
pub mod secrets;
mod validate;

pub use edit::{ClientEdit, ContextWindowEdit};
pub use endpoint::{is_loopback_url, ollama_chat_url, same_server};
pub use file::{redacted, ConfigFile, KeyOrigin};
pub use interpolate::interpolate;
pub use join::{server_url, Join, ServerUrlError, CLIENT_KEY_VAR};
pub use model::{
    redact_url, Client, Config, ContextEditing, ModelRef, OllamaSettings, ParsedUrl, Provider,
    ProviderKind, QualityFallback, Replica, Router, DEFAULT_CONTEXT_LENGTH,
    DEFAULT_CONTEXT_TARGET_PERCENT, DEFAULT_HOST, DEFAULT_LONG_CONTEXT_THRESHOLD, DEFAULT_MODEL,
    DEFAULT_OUTPUT_RESERVE, DEFAULT_PORT, MAX_REPLICAS,
};
pub use secrets::{KeySource, SecretsStore};
pub use validate::{is_loopback_host, parse_offset, DEFAULT_MAX_REQUESTS_IN_FLIGHT};

use std::path::PathBuf;

/// One thing wrong with a config: where, what, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// JSON path such as `Router.default` or `Providers[1].api_base_url`.
    pub path: String,
    pub message: String,
    pub fix: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}\n    hint: {}", self.path, self.message, self.fix)
    }
}

/// Why a config could not be loaded or used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no config at {path}")]
    NotFound { path: PathBuf },
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not valid JSON5: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path} has {} problem(s):\n{}", problems.len(), list(problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

impl crate::diagnostic::Hint for ConfigError {
    fn hint(&self) -> Option<String> {
        match self {
            ConfigError::NotFound { .. } => Some("run `ccr-setup init` to create one".into()),
            ConfigError::Parse { .. } => Some(
                "fix the syntax at that position (JSON5: comments and trailing commas are fine)"
                    .into(),
            ),
            ConfigError::Io { .. } | ConfigError::Invalid { .. } => None,
        }
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Load, interpolate and validate the config at `path` in one step.
pub fn load(path: &std::path::Path) -> Result<Config, ConfigError> {
    ConfigFile::load(path)?.resolve()
}
