//! Getting an Ollama server to answer at `OLLAMA_HOST`, the first step of `up`.
//!
//! A server that answers is reused, whoever runs it; only our own server, started with
//! another context, is restarted. Ours still starting is waited for. When nothing
//! answers, our login service (from `init --service`) is started if installed, else a
//! detached `ollama serve` child with the tuned environment. A server we did not start
//! is never stopped.

use std::time::Duration;

use url::Url;

use super::owner::{self, Owner};
use super::serve;
use super::{OllamaClient, OllamaError};
use crate::config::OllamaSettings;
use crate::diagnostic::{one_line, Diagnostic, Hint};
use crate::env_vars::EnvVars;
use crate::service;

/// How long a freshly started `ollama serve` may take to answer `/api/version`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How the server came to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HowReady {
    /// It was already running.
    Running,
    /// Ours was still starting; we waited for it.
    WasStarting { pid: u32 },
    /// We started `ollama serve` as a detached child.
    Started { pid: u32, context_length: u32 },
    /// We started our login service.
    StartedService { unit: String },
}

/// A server that answers, who runs it and its version.
#[derive(Debug, Clone)]
pub struct Ready {
    pub owner: Owner,
    pub version: String,
    pub how: HowReady,
}

/// `http://127.0.0.1:11434`, as the step lines show a base URL.
pub fn display_url(u: &Url) -> String {
    u.as_str().trim_end_matches('/').to_owned()
}

/// Make sure a server answers at the client's base URL with `settings`' context.
pub async fn ensure_server(
    client: &OllamaClient,
    settings: &OllamaSettings,
) -> Result<Ready, Diagnostic> {
    let base = client.base_url().clone();
    let wanted = settings.context_length;
    // A server that accepts but does not answer within a second is starting: Ollama
    // binds its port first, then discovers GPUs (up to 90 s) before serving HTTP.
    let first_probe = client.clone().with_probe_timeout(FIRST_PROBE_TIMEOUT);
    match first_probe.version().await {
        Err(OllamaError::Timeout { .. }) if super::is_local(&base) => {
            return wait_for_starting(client, &base).await;
        }
        _ => {}
    }
    match client.version().await {
        Ok(version) => {
            let owner = owner::detect(&base);
            if let Owner::Ours(ours) = &owner {
                if ours.context_length != 0 && ours.context_length != wanted {
                    // Ours, started with another context: ours to restart.
                    if !serve::stop_owned(ours, Duration::from_secs(10)).await {
                        return Err(Diagnostic::new(format!(
                            "our Ollama (pid {}) did not stop to apply the new context",
                            ours.pid
                        ))
                        .with_hint("run `ccr-setup stop --all`, then `ccr-setup up` again"));
                    }
                    if !serve::wait_port_released(&base, Duration::from_secs(10)).await {
                        return Err(Diagnostic::new(format!(
                            "our Ollama (pid {}) stopped, but {} still accepts connections",
                            ours.pid,
                            display_url(&base)
                        ))
                        .with_hint("another program holds Ollama's port: stop it, then run `ccr-setup up` again"));
                    }
                    return start(client, settings).await;
                }
            }
            Ok(Ready {
                owner,
                version,
                how: HowReady::Running,
            })
        }
        Err(e) if e.is_unreachable() && super::is_local(&base) => {
            // Ours is alive but not answering yet (still starting): wait for it rather
            // than start a second server that would fail on the port.
            if let Some(ours) = serve::owned_server_at(&base) {
                if let Ok(version) =
                    serve::wait_until_ready(client, Some(ours.pid), READY_TIMEOUT).await
                {
                    let pid = ours.pid;
                    return Ok(Ready {
                        owner: Owner::Ours(ours),
                        version,
                        how: HowReady::WasStarting { pid },
                    });
                }
            }
            start(client, settings).await
        }
        Err(e) => {
            let hint = if super::is_local(&base) {
                "something answers on Ollama's port but not like Ollama: stop it, or set OLLAMA_HOST to where Ollama runs".to_owned()
            } else {
                format!(
                    "start Ollama on {} or unset OLLAMA_HOST to use a local one",
                    display_url(&base)
                )
            };
            Err(Diagnostic::new(one_line(&e)).with_hint(hint))
        }
    }
}

/// How long the first `/api/version` may take before the server counts as starting.
const FIRST_PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Something on the local port accepts connections but has not answered: wait for it
/// (ours or not) rather than start a second server that would fail on the port.
async fn wait_for_starting(client: &OllamaClient, base: &Url) -> Result<Ready, Diagnostic> {
    let ours = serve::owned_server_at(base);
    let pid = ours.as_ref().map(|o| o.pid);
    match serve::wait_until_ready(client, pid, READY_TIMEOUT).await {
        Ok(version) => Ok(match ours {
            Some(ours) => Ready {
                how: HowReady::WasStarting { pid: ours.pid },
                owner: Owner::Ours(ours),
                version,
            },
            None => Ready {
                owner: owner::detect(base),
                version,
                how: HowReady::Running,
            },
        }),
        Err(e) => Err(Diagnostic {
            message: format!(
                "something accepts connections on {} but did not answer as Ollama: {}",
                display_url(base),
                one_line(&e)
            ),
            hint: Some("if it is Ollama, it may still be starting (check its log); otherwise stop what holds the port, or set OLLAMA_HOST to where Ollama runs".to_owned()),
        }),
    }
}

/// Nothing answers: start our service when installed, else `ollama serve`.
async fn start(client: &OllamaClient, settings: &OllamaSettings) -> Result<Ready, Diagnostic> {
    if let Some(result) = start_our_service(client).await {
        return result;
    }
    let base = client.base_url().clone();
    let mut env: Vec<(String, String)> = settings
        .tuned_env()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    let host = crate::env_vars::non_empty(EnvVars::OLLAMA_HOST)
        .unwrap_or_else(|| format!("127.0.0.1:{}", super::host::DEFAULT_PORT));
    env.push((EnvVars::OLLAMA_HOST.to_owned(), host));
    let program = which::which("ollama")
        .map_err(|_| super::advice::not_installed(crate::provision::Platform::current()))?;
    let owned = serve::spawn_serve(&program, &env, &base, settings.context_length)
        .map_err(|e| Diagnostic::new(format!("cannot start Ollama: {}", one_line(&e))))?;
    let version = serve::wait_until_ready(client, Some(owned.pid), READY_TIMEOUT)
        .await
        .map_err(|e| Diagnostic {
            message: one_line(&e),
            hint: e.hint(),
        })?;
    Ok(Ready {
        how: HowReady::Started {
            pid: owned.pid,
            context_length: owned.context_length,
        },
        owner: Owner::Ours(owned),
        version,
    })
}

/// Prefer our installed Ollama service (from `init --service`) over a child: it carries
/// the same tuned environment and survives logout. None when not installed.
async fn start_our_service(client: &OllamaClient) -> Option<Result<Ready, Diagnostic>> {
    let manager = service::Manager::detect()?;
    let layout = service::Layout::current();
    let kind = service::ServiceKind::Ollama;
    if !layout.service_file(manager, kind).is_file() {
        return None;
    }
    let unit = kind.service_name(manager);
    let commands = service::start_commands(manager, &layout, kind);
    if let Err(e) = service::run_all(&commands) {
        return Some(Err(Diagnostic::new(one_line(&e)).with_hint(format!(
            "check the service: `ccr-setup doctor`, or re-run `ccr-setup init` to reinstall {unit}"
        ))));
    }
    Some(
        match serve::wait_until_ready(client, None, READY_TIMEOUT).await {
            Ok(version) => Ok(Ready {
                owner: Owner::OurService { unit: unit.clone() },
                version,
                how: HowReady::StartedService { unit },
            }),
            Err(e) => Err(Diagnostic::new(one_line(&e)).with_hint(format!(
                "see the service's log (`ccr-setup status`); {unit} must start Ollama"
            ))),
        },
    )
}
