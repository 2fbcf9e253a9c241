//! The Setup page: one `doctor` run (the same probes and rules as `ccr-setup doctor`),
//! plus what the page shows beside the checks: Ollama's version, loaded model and
//! effective context, the config as `config show` prints it (secrets redacted), and
//! every validation problem with its fix.
//!
//! A doctor run takes up to a few seconds (it asks tools for their versions), so it runs
//! on its own task, never on a proxy request's path; one run at a time, and its result
//! is reused for [`FRESH_FOR`], so reloading the page does not start probe storms.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::config::redacted;
use crate::doctor::{self, Check, DoctorEnv, Facts};

/// How long one run's result is served before the next request runs the doctor again.
pub const FRESH_FOR: Duration = Duration::from_secs(15);

/// A "check again" within this long of the last run gets that run.
pub const MIN_GAP: Duration = Duration::from_secs(2);

/// Ollama as the doctor found it.
#[derive(Debug, Clone, Serialize)]
pub struct OllamaHealth {
    pub url: String,
    /// `/api/version`, or why it did not answer.
    pub version: Option<String>,
    pub error: Option<String>,
    /// Who runs the server (ours, Ollama.app, brew services, …), when one answers.
    pub owner: Option<String>,
    /// The model the config asks for, and the context it asks for.
    pub model: String,
    pub configured_context: u32,
    /// The configured model in `/api/ps`: its effective context.
    pub loaded: Option<LoadedInfo>,
    /// Why `/api/ps` could not be read, or "not loaded".
    pub loaded_note: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadedInfo {
    pub name: String,
    pub context_length: Option<u64>,
    pub size_vram: u64,
}

/// One validation problem.
#[derive(Debug, Clone, Serialize)]
pub struct ProblemView {
    pub path: String,
    pub message: String,
    pub fix: String,
}

/// The config file as the page shows it.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigView {
    pub path: String,
    /// The file with secrets replaced by `<redacted>` (as `config show`), when it parsed.
    pub redacted: Option<Value>,
    /// Why the file could not be read or parsed.
    pub error: Option<String>,
    pub problems: Vec<ProblemView>,
}

/// Everything the Setup page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub checked_at_ms: i64,
    pub duration_ms: u64,
    pub ollama: OllamaHealth,
    pub config: ConfigView,
    pub checks: Vec<Check>,
}

fn ollama_health(facts: &Facts) -> OllamaHealth {
    let o = &facts.ollama;
    let (loaded, loaded_note) = match &o.loaded {
        Some(Ok(Some(m))) => (
            Some(LoadedInfo {
                name: m.name.clone(),
                context_length: m.context_length,
                size_vram: m.size_vram,
            }),
            None,
        ),
        Some(Ok(None)) => (None, Some(format!("{} is not loaded", facts.model))),
        Some(Err(e)) => (None, Some(e.clone())),
        None if o.answers() => (None, Some(format!("{} is not installed", facts.model))),
        None => (None, None),
    };
    OllamaHealth {
        url: o.url.to_string(),
        version: o.version.as_ref().ok().cloned(),
        error: o.version.as_ref().err().cloned(),
        owner: o.answers().then(|| o.owner.describe()),
        model: facts.model.clone(),
        configured_context: facts.context_length,
        loaded,
        loaded_note,
    }
}

fn config_view(facts: &Facts) -> ConfigView {
    let c = &facts.config;
    let (redacted, error) = match &c.file {
        Ok(file) => (Some(redacted(&file.doc)), None),
        Err(e) => (None, Some(e.to_string())),
    };
    let problems = match &c.resolved {
        Some(Err(problems)) => problems
            .iter()
            .map(|p| ProblemView {
                path: p.path.clone(),
                message: p.message.clone(),
                fix: p.fix.clone(),
            })
            .collect(),
        _ => Vec::new(),
    };
    ConfigView {
        path: c.path.display().to_string(),
        redacted,
        error,
        problems,
    }
}

/// One doctor run, turned into the page's data.
pub async fn run(env: &DoctorEnv) -> Setup {
    let started = Instant::now();
    let facts = doctor::gather(env).await;
    let checks = doctor::evaluate(&facts);
    Setup {
        checked_at_ms: chrono::Utc::now().timestamp_millis(),
        duration_ms: started.elapsed().as_millis() as u64,
        ollama: ollama_health(&facts),
        config: config_view(&facts),
        checks,
    }
}

/// The last run and when it finished. The lock is held across a run, so concurrent
/// requests wait for the same run instead of starting their own.
#[derive(Debug, Default)]
pub struct SetupCache {
    last: tokio::sync::Mutex<Option<(Instant, Arc<Setup>)>>,
}

impl SetupCache {
    /// A result at most [`FRESH_FOR`] old, running the doctor (on its own task) when
    /// there is none. `fresh` asks for a new run unless one finished within [`MIN_GAP`].
    pub async fn get(
        &self,
        env: DoctorEnv,
        fresh: bool,
    ) -> Result<Arc<Setup>, tokio::task::JoinError> {
        let mut last = self.last.lock().await;
        if let Some((at, setup)) = last.as_ref() {
            let max_age = if fresh { MIN_GAP } else { FRESH_FOR };
            if at.elapsed() < max_age {
                return Ok(setup.clone());
            }
        }
        let setup = Arc::new(tokio::spawn(async move { run(&env).await }).await?);
        *last = Some((Instant::now(), setup.clone()));
        Ok(setup)
    }
}
