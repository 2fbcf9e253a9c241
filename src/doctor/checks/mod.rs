//! Judging: facts in, checks out, no I/O. One function per check id, in report order,
//! grouped by what they look at: [`platform`], [`ollama`], [`claude`], [`config`],
//! [`proxy`].

use std::path::Path;

use url::Url;

use super::facts::{ClaudeJson, Facts, Launcher};
use super::fix::FixAction;
use super::probe::{PortProbe, ToolProbe};
use super::{Check, Status};
use crate::config::{is_loopback_host, ConfigError, DEFAULT_MODEL};
use crate::diagnostic::Diagnostic;
use crate::ollama::advice;
use crate::provision::Platform;
use crate::service::ServiceKind;

mod budget;
mod claude;
mod config;
mod ollama;
mod platform;
mod proxy;
#[cfg(test)]
mod tests;

use budget::*;
use claude::*;
use config::*;
use ollama::*;
use platform::*;
pub use proxy::is_our_health;
use proxy::*;

/// A tool found on PATH whose `--version` said no version: a warning under `id`
/// (`claude.binary`, `ollama.binary`), one wording for every tool.
fn version_unknown(id: &'static str, tool: &str, path: &Path) -> Check {
    Check::warn(
        id,
        format!("`{tool} --version` did not say its version"),
        format!("run `{} --version` to see what is wrong", path.display()),
    )
    .with_detail(path.display().to_string())
}

const GIB: u64 = 1 << 30;
/// gpt-oss:20b needs about 13 GB of memory; below 12 GiB it cannot load, below 16 GiB
/// it loads but the rest of the machine starves.
pub const MEMORY_FAIL_GIB: u64 = 12;
pub const MEMORY_WARN_GIB: u64 = 16;
/// Bytes a gpt-oss:20b download needs (13.8 GB plus headroom), as `up` assumes.
pub const DEFAULT_MODEL_DISK_BYTES: u64 = crate::ollama::disk::DEFAULT_MODEL_BYTES;
/// Below this, even an installed model leaves Ollama no room for its blobs and logs.
pub const DISK_LOW_BYTES: u64 = 2_000_000_000;

/// All checks, in the order of [`super::CHECK_IDS`].
pub fn evaluate(f: &Facts) -> Vec<Check> {
    vec![
        platform_os(f),
        platform_memory(f),
        platform_disk(f),
        homebrew(f),
        ollama_binary(f),
        ollama_server(f),
        ollama_model(f),
        ollama_capabilities(f),
        ollama_context(f),
        ollama_competing(f),
        claude_binary(f),
        claude_onboarding(f),
        claude_env(f),
        claude_budget(f),
        config_valid(f),
        config_providers(f),
        config_mode(f),
        super::keys::config_keys(f),
        config_auth(f),
        proxy_port(f),
        proxy_owner(f),
        services(f),
    ]
}
