//! Pulling a model with progress, stall detection and resume.
//!
//! Ollama streams one NDJSON line per progress tick. A stalled download does not end
//! the stream or send an error; it only stops advancing `completed`. So we watch the
//! sum of `completed` across layers, and when it has not grown for `stall_timeout` we
//! drop the request and issue the pull again: Ollama keeps the partial blobs, so the
//! new pull resumes where the old one stopped. An `{"error":…}` line is final.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

use super::{OllamaClient, OllamaError};

/// How many times a stalled pull is re-issued before giving up.
pub const DEFAULT_MAX_RESTARTS: u32 = 3;

/// Progress reported while pulling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PullEvent {
    /// A phase without byte progress: `pulling manifest`, `verifying sha256 digest`,
    /// `writing manifest`, `success`.
    Phase(String),
    /// Bytes so far across all layers seen, and their total.
    Progress { completed: u64, total: u64 },
    /// No progress for the stall timeout; the pull is being re-issued (`attempt` of `max`).
    Restarting {
        attempt: u32,
        max: u32,
        completed: u64,
    },
}

#[derive(Debug, Clone, Copy)]
pub struct PullOptions {
    pub stall_timeout: Duration,
    pub max_restarts: u32,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            stall_timeout: Duration::from_secs(60),
            max_restarts: DEFAULT_MAX_RESTARTS,
        }
    }
}

/// What a finished pull did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSummary {
    pub total_bytes: u64,
    pub layers: usize,
    pub restarts: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// Ollama said no (an `{"error":…}` line or an HTTP error): final, not retried.
    #[error(transparent)]
    Ollama {
        #[from]
        source: OllamaError,
    },
    #[error("the pull made no progress for {stall_secs} s, {restarts} times in a row (stuck at {completed} of {total} bytes)")]
    Stalled {
        stall_secs: u64,
        restarts: u32,
        completed: u64,
        total: u64,
    },
}

/// How Go's network errors read when Ollama's server cannot reach the registry: DNS
/// (`dial tcp: lookup registry.ollama.ai …: no such host`), routing and timeouts.
const OFFLINE_SIGNS: &[&str] = &[
    "no such host",
    "dial tcp",
    "network is unreachable",
    "connection refused",
    "i/o timeout",
    "TLS handshake timeout",
    "server misbehaving",
];

impl PullError {
    /// A hint for the user, matched on Ollama's error texts.
    pub fn hint(&self) -> &'static str {
        let text = self.to_string();
        if text.contains("file does not exist") || text.contains("not found") {
            "check the model name and tag at https://ollama.com/library (e.g. gpt-oss:20b)"
        } else if OFFLINE_SIGNS.iter().any(|sign| text.contains(sign)) {
            "Ollama cannot reach its registry (registry.ollama.ai): check the network connection (behind a proxy, the Ollama server needs HTTPS_PROXY in its environment), then run `ccr-setup up` again; the pull resumes"
        } else if text.contains("no space left") {
            "free disk space in the models directory (OLLAMA_MODELS or ~/.ollama/models), then run `ccr-setup up` again; the pull resumes"
        } else if matches!(self, PullError::Stalled { .. }) {
            "check the network connection, then run `ccr-setup up` again; the pull resumes"
        } else if text.contains("not answering") || text.contains("did not answer") {
            "the Ollama server went away; run `ccr-setup up` again"
        } else {
            "run `ccr-setup up` again; the pull resumes where it stopped"
        }
    }
}

/// Sums progress over layers. Layer digests arrive one by one (and again on resume).
#[derive(Debug, Default)]
struct Tally {
    layers: HashMap<String, (u64, u64)>,
}

impl Tally {
    fn update(&mut self, digest: &str, total: u64, completed: u64) {
        let entry = self.layers.entry(digest.to_owned()).or_insert((0, 0));
        entry.0 = total;
        entry.1 = completed
            .min(total)
            .max(if total == 0 { completed } else { 0 });
    }
    fn completed(&self) -> u64 {
        self.layers.values().map(|l| l.1).sum()
    }
    fn total(&self) -> u64 {
        self.layers.values().map(|l| l.0).sum()
    }
    fn downloading(&self) -> bool {
        self.layers.is_empty() || self.layers.values().any(|(t, c)| c < t)
    }
}

/// Pull `model`, reporting through `on_event`. Returns when Ollama says `success`.
/// To cancel (Ctrl-C), drop the future: the request is closed and the next pull resumes.
pub async fn pull_model(
    client: &OllamaClient,
    model: &str,
    opts: PullOptions,
    on_event: &mut (dyn FnMut(PullEvent) + Send),
) -> Result<PullSummary, PullError> {
    let mut tally = Tally::default();
    let mut restarts = 0;
    loop {
        let mut stream = client.pull_stream(model).await?;
        let mut best = tally.completed();
        let mut last_advance = Instant::now();
        let mut phase_is_download = true;
        let stalled = loop {
            let watching = phase_is_download && tally.downloading();
            let next = if watching {
                let deadline = tokio::time::Instant::from_std(last_advance + opts.stall_timeout);
                match tokio::time::timeout_at(deadline, stream.next()).await {
                    Ok(n) => n,
                    Err(_) => break true,
                }
            } else {
                stream.next().await
            };
            let line = match next {
                // The stream ended without "success": the server dropped it; retry.
                None => break true,
                Some(Err(e @ OllamaError::Transport { .. })) if restarts < opts.max_restarts => {
                    tracing::debug!("pull stream broke: {e}");
                    break true;
                }
                // A pull re-issued right after one was dropped shares the download by
                // digest and can briefly get `context canceled` from the old one.
                Some(Err(OllamaError::Pull { message }))
                    if message.contains("context canceled") && restarts < opts.max_restarts =>
                {
                    tracing::debug!("pull answered {message:?}; re-issuing");
                    break true;
                }
                Some(Err(e)) => return Err(e.into()),
                Some(Ok(line)) => line,
            };
            match (&line.digest, line.total) {
                (Some(d), Some(total)) => {
                    phase_is_download = true;
                    tally.update(d, total, line.completed.unwrap_or(0));
                    on_event(PullEvent::Progress {
                        completed: tally.completed(),
                        total: tally.total(),
                    });
                }
                _ => {
                    phase_is_download = line.status == "pulling manifest";
                    on_event(PullEvent::Phase(line.status.clone()));
                    if line.status == "success" {
                        return Ok(PullSummary {
                            total_bytes: tally.total(),
                            layers: tally.layers.len(),
                            restarts,
                        });
                    }
                }
            }
            let now = tally.completed();
            if now > best {
                best = now;
                last_advance = Instant::now();
            } else if phase_is_download
                && tally.downloading()
                && last_advance.elapsed() >= opts.stall_timeout
            {
                // Lines keep coming but `completed` does not move: that is a stall too.
                break true;
            }
        };
        debug_assert!(stalled);
        drop(stream);
        if restarts >= opts.max_restarts {
            return Err(PullError::Stalled {
                stall_secs: opts.stall_timeout.as_secs(),
                restarts,
                completed: tally.completed(),
                total: tally.total(),
            });
        }
        restarts += 1;
        on_event(PullEvent::Restarting {
            attempt: restarts,
            max: opts.max_restarts,
            completed: tally.completed(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tally_sums_layers_and_resumes() {
        let mut t = Tally::default();
        assert!(t.downloading());
        t.update("a", 100, 50);
        t.update("b", 10, 0);
        assert_eq!((t.completed(), t.total()), (50, 110));
        t.update("a", 100, 100);
        t.update("b", 10, 10);
        assert_eq!(t.completed(), 110);
        assert!(!t.downloading());
    }

    #[test]
    fn hints_match_ollama_errors() {
        let e = PullError::Ollama {
            source: OllamaError::Pull {
                message: "pull model manifest: file does not exist".into(),
            },
        };
        assert!(e.hint().contains("model name"));
        let e = PullError::Ollama {
            source: OllamaError::Pull {
                message: "write /x: no space left on device".into(),
            },
        };
        assert!(e.hint().contains("free disk space"));
        let e = PullError::Ollama {
            source: OllamaError::Pull {
                message: "pull model manifest: Get \"https://registry.ollama.ai/v2/library/gpt-oss/manifests/20b\": dial tcp: lookup registry.ollama.ai on 127.0.0.53:53: no such host".into(),
            },
        };
        assert!(e.hint().contains("network"), "{}", e.hint());
    }
}
