//! `doctor`: every check that tells why Claude Code on a local model is not working,
//! each with the exact fix.
//!
//! The run has two halves so that the slow part is concurrent and the judgement is pure:
//! * [`gather`] asks the machine (tools on PATH, the Ollama server, the proxy port, the
//!   config file, service files, memory and disk) with every probe running concurrently
//!   under a short timeout, and returns plain [`Facts`];
//! * [`evaluate`] turns facts into a stable list of [`Check`]s without any I/O, so each
//!   rule is unit-tested on hand-made facts.
//!
//! Every probe reads the environment the process sees (`PATH`, `HOME`, `OLLAMA_HOST`,
//! `OLLAMA_MODELS`, the config path), which is how the integration tests point a real
//! run at fakes. Nothing here prints and nothing here changes the machine, except
//! [`fix::apply`], which `doctor --fix` calls after showing the fixes.

pub mod checks;
pub mod facts;
pub mod fix;
pub mod keys;
pub mod mcp;
pub mod probe;
mod provider_facts;
pub mod team;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub use checks::evaluate;
pub use facts::{gather, Facts};
pub use fix::FixAction;

use crate::env_vars::EnvVars;
use crate::provision::Platform;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but something is off or could not be verified.
    Warn,
    /// Claude Code on the local model will not work until this is fixed.
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One line of the report. The `id`s are stable (documented in docs/guide.md) so scripts
/// and the installer can look a check up in `--json` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    /// One line: what was found.
    pub summary: String,
    /// More context (paths, versions, each config problem), when there is any.
    pub detail: Option<String>,
    /// The exact command or setting that fixes a warning or failure.
    pub fix: Option<String>,
    /// The safe fix `doctor --fix` may run for this check.
    #[serde(skip)]
    pub action: Option<FixAction>,
}

impl Check {
    pub fn ok(id: &'static str, summary: impl Into<String>) -> Check {
        Check {
            id,
            status: Status::Ok,
            summary: summary.into(),
            detail: None,
            fix: None,
            action: None,
        }
    }

    pub fn warn(id: &'static str, summary: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Warn,
            fix: Some(fix.into()),
            ..Check::ok(id, summary)
        }
    }

    pub fn fail(id: &'static str, summary: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            status: Status::Fail,
            fix: Some(fix.into()),
            ..Check::ok(id, summary)
        }
    }

    /// A failure worded once elsewhere (see [`crate::diagnostic`]): its message is the
    /// summary and its hint the fix.
    pub fn failed(id: &'static str, failure: crate::diagnostic::Diagnostic) -> Check {
        Check {
            status: Status::Fail,
            fix: failure.hint,
            ..Check::ok(id, failure.message)
        }
    }

    pub fn with_detail(mut self, detail: impl Into<String>) -> Check {
        let d = detail.into();
        self.detail = (!d.is_empty()).then_some(d);
        self
    }

    pub fn with_action(mut self, action: FixAction) -> Check {
        self.action = Some(action);
        self
    }
}

/// Every check id, in report order. docs/guide.md documents each one.
pub const CHECK_IDS: &[&str] = &[
    "platform.os",
    "platform.memory",
    "platform.disk",
    "homebrew",
    "ollama.binary",
    "ollama.server",
    "ollama.model",
    "ollama.capabilities",
    "ollama.context",
    "ollama.competing",
    "claude.binary",
    "claude.onboarding",
    "claude.env",
    "claude.budget",
    "config.valid",
    "config.providers",
    "config.mode",
    "config.keys",
    "config.auth",
    "proxy.port",
    "proxy.owner",
    "services",
];

/// Where the probes look. [`DoctorEnv::current`] reads the process environment; tests
/// of the pure parts build one by hand.
#[derive(Debug, Clone)]
pub struct DoctorEnv {
    pub platform: Platform,
    /// `PATH`, where `ollama`, `claude` and `brew` are looked up.
    pub path: std::ffi::OsString,
    pub home: PathBuf,
    /// Root for system-wide files (`/`).
    pub root: PathBuf,
    pub config_path: PathBuf,
    /// The Ollama server, from `OLLAMA_HOST`.
    pub ollama_url: url::Url,
    /// Where Ollama keeps models (`OLLAMA_MODELS`, else `~/.ollama/models`).
    pub models_dir: PathBuf,
    /// `ANTHROPIC_*` variables of this shell that change where Claude Code sends requests.
    pub anthropic_env: Vec<(String, String)>,
    /// This binary, to spot services that point at an older or moved copy.
    pub current_exe: Option<PathBuf>,
    /// The directory a session would start in (Claude Code keys per-project MCP
    /// servers by it): the current one.
    pub project: PathBuf,
    /// How long one network probe may take.
    pub probe_timeout: Duration,
}

/// The shell variables that redirect or authenticate Claude Code.
pub const ANTHROPIC_VARS: &[&str] = &[
    EnvVars::ANTHROPIC_BASE_URL,
    EnvVars::ANTHROPIC_API_KEY,
    EnvVars::ANTHROPIC_AUTH_TOKEN,
];

impl DoctorEnv {
    pub fn current(config_path: PathBuf) -> DoctorEnv {
        let home = crate::paths::home_dir();
        DoctorEnv {
            platform: Platform::current(),
            path: std::env::var_os(EnvVars::PATH).unwrap_or_default(),
            home,
            root: PathBuf::from("/"),
            config_path,
            ollama_url: crate::ollama::base_url_from_env(),
            models_dir: crate::ollama::disk::models_dir(),
            anthropic_env: ANTHROPIC_VARS
                .iter()
                .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
                .collect(),
            current_exe: std::env::current_exe().ok(),
            project: std::env::current_dir().unwrap_or_default(),
            probe_timeout: Duration::from_millis(1500),
        }
    }
}

/// Gather and evaluate: the whole doctor run.
pub async fn run(env: &DoctorEnv) -> Vec<Check> {
    let facts = gather(env).await;
    evaluate(&facts)
}

/// Did anything fail? (Warnings do not fail the run.)
pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}
