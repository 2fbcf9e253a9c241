//! What one attempt at one target works with: the request's [`Scope`] (shared by every
//! attempt of a request), the [`Attempt`] context, the stream adapters' [`ChunkSource`]
//! (with the [`Rescue`] a committed stream may ask for) and the route header.
//! `attempt` runs an attempt and `chain` drives them; the stream adapters
//! (`translated`, `passthrough`) read this context, so they do not depend on either.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use bytes::Bytes;

use super::finish::{RequestMeta, StreamEnd};
use super::AppState;
use crate::config::{Config, ModelRef, Provider};
use crate::proxy::guard::input_tokens_for;
use crate::proxy::plan::Plan;
use crate::proxy::repair::ToolCatalog;
use crate::proxy::upstream::AttemptError;
use crate::proxy::wire::anthropic::MessagesRequest;

/// Must the answer call a tool (`tool_choice` any, or a named tool, with tools offered)?
pub(super) fn must_call_tool(req: &MessagesRequest) -> bool {
    use crate::proxy::wire::anthropic::ToolChoice;
    req.tools.as_ref().is_some_and(|t| !t.is_empty())
        && matches!(
            req.tool_choice,
            Some(ToolChoice::Any { .. } | ToolChoice::Tool { .. })
        )
}

/// Did the client ask for at most one tool call per answer?
pub(super) fn parallel_disabled(req: &MessagesRequest) -> bool {
    use crate::proxy::wire::anthropic::ToolChoice;
    matches!(
        req.tool_choice,
        Some(
            ToolChoice::Auto {
                disable_parallel_tool_use: Some(true)
            } | ToolChoice::Any {
                disable_parallel_tool_use: Some(true)
            } | ToolChoice::Tool {
                disable_parallel_tool_use: Some(true),
                ..
            }
        )
    )
}

/// The `x-ccr-route` response header: who answered, for which rule, and whether a
/// fallback happened, e.g. `anthropic,claude-sonnet-4-5; scenario=default;
/// fallback=yes; from=ollama,gpt-oss:20b`.
pub const ROUTE_HEADER: &str = "x-ccr-route";

/// The value of [`ROUTE_HEADER`].
pub fn route_header(
    answered: &ModelRef,
    scenario: &str,
    fallback_from: Option<&ModelRef>,
) -> String {
    match fallback_from {
        Some(from) => format!("{answered}; scenario={scenario}; fallback=yes; from={from}"),
        None => format!("{answered}; scenario={scenario}; fallback=no"),
    }
}

/// A stream adapter ([`translated`](super::translated), [`passthrough`](super::passthrough)):
/// the next bytes for the client, or `None` when its answer is over. It writes no
/// ledger row: [`super::chain::ChainStream`] takes its end (or its rescue) and records it.
pub(super) trait ChunkSource: Send + 'static {
    fn next_chunk(&mut self) -> impl std::future::Future<Output = Option<Bytes>> + Send;

    /// How the answer ended, once it has (taken once).
    fn take_end(&mut self) -> Option<StreamEnd>;

    /// What was seen so far, for a client that went away.
    fn so_far(&self) -> StreamEnd;

    /// A failure the chain may still fix (taken once); the source has given up.
    fn take_rescue(&mut self) -> Option<Rescue> {
        None
    }

    /// Nothing was left to try after [`ChunkSource::take_rescue`]: the error event
    /// that ends the client's answer (the end is then ready to take).
    fn give_up(&mut self, _reason: &str, _error: crate::proxy::error::ProxyError) -> Bytes {
        Bytes::new()
    }
}

/// A stream that failed after it was committed, in a way the chain may still fix:
/// once more at the same target, else at the next ones ([`super::chain`]).
#[derive(Debug)]
pub(super) struct Rescue {
    /// The ledger's fallback reason (`tool_call_parse`, `tool_choice`, …).
    pub reason: String,
    /// How the next answer continues this one.
    pub resume: Resume,
    /// Tool calls in the failed answer that could not be repaired.
    pub unfit_calls: u32,
}

/// How a streamed attempt continues an answer the client already has.
#[derive(Debug, Clone)]
pub(super) struct Resume {
    /// The new answer's first content-block index (blocks before it were shown); its
    /// `message_start` is not sent again.
    pub first_block: u32,
    /// A corrective note for the model (its tool call could not be made to fit).
    pub note: Option<String>,
    /// Ask the same target once more (else: the rest of the chain).
    pub retry: bool,
}

/// What every attempt of one request shares, and the request itself, which each
/// attempt rewrites in place for its target ([`Plan::prepare`]). Owned: the chain
/// keeps it while the answer streams, to continue it at another target.
pub(super) struct Scope {
    pub state: Arc<AppState>,
    pub config: Arc<Config>,
    pub plan: Plan,
    pub headers: Arc<HeaderMap>,
    /// The request's facts for the log line and ledger row, as planned.
    pub meta: RequestMeta,
    pub req: MessagesRequest,
    /// The client's body as it arrived (the tool catalog reads tool schemas from it).
    pub body: Bytes,
    /// Whether a stream may be rescued (false once a rescue fell back).
    pub rescue: bool,
    /// Set while the chain continues a committed stream.
    pub resume: Option<Resume>,
    /// The target a rescue fell back from and why: the later attempts' ledger rows
    /// name them.
    pub rescued_from: Option<(ModelRef, String)>,
    /// The ledger kind of the first failure that moved the request on.
    pub fallback_reason: Option<String>,
    /// Tool calls from any target that could not be repaired, so far.
    pub tool_call_failures: AtomicU32,
    /// Which replica the request belongs on ([`crate::proxy::replicas`]).
    pub affinity: u64,
}

impl Scope {
    /// A request's scope before its first attempt.
    pub fn new(
        state: &Arc<AppState>,
        config: Arc<Config>,
        plan: Plan,
        headers: HeaderMap,
        meta: RequestMeta,
        req: MessagesRequest,
        body: Bytes,
    ) -> Scope {
        let affinity = crate::proxy::replicas::affinity_key(meta.session_id.as_deref(), &req);
        Scope {
            affinity,
            state: Arc::clone(state),
            config,
            plan,
            headers: Arc::new(headers),
            meta,
            req,
            body,
            rescue: true,
            resume: None,
            rescued_from: None,
            fallback_reason: None,
            tool_call_failures: AtomicU32::new(0),
        }
    }

    /// The offered tools, for repairing the answer's tool calls (None when the
    /// request offers none).
    pub fn tool_catalog(&self, req: &MessagesRequest) -> Option<ToolCatalog> {
        let tools = req.tools.as_ref().filter(|t| !t.is_empty())?;
        let names = tools.iter().map(|t| t.name.clone()).collect();
        Some(ToolCatalog::new(names, self.body.clone()))
    }
}

/// A provider a `'static` future can hold: the config snapshot it is in and its
/// place there (a pointer bump, where a clone of the provider took six allocations a
/// request), or a copy for one that is not in the snapshot.
enum OwnedProvider {
    InConfig(Arc<Config>, usize),
    Copy(Box<Provider>),
}

impl OwnedProvider {
    fn of(config: &Arc<Config>, provider: &Provider) -> OwnedProvider {
        match config
            .providers
            .iter()
            .position(|p| std::ptr::eq(p, provider))
        {
            Some(i) => OwnedProvider::InConfig(Arc::clone(config), i),
            None => OwnedProvider::Copy(Box::new(provider.clone())),
        }
    }

    fn get(&self) -> &Provider {
        match self {
            OwnedProvider::InConfig(config, i) => &config.providers[*i],
            OwnedProvider::Copy(provider) => provider,
        }
    }
}

/// One attempt's context: the request's [`Scope`], the target and its provider, the
/// log/ledger facts as of this attempt, and the route header its answer carries.
pub(super) struct Attempt<'a> {
    pub scope: &'a Scope,
    pub target: &'a ModelRef,
    pub provider: &'a Provider,
    pub meta: RequestMeta,
    pub route: String,
}

impl Attempt<'_> {
    pub fn state(&self) -> &Arc<AppState> {
        &self.scope.state
    }

    pub fn config(&self) -> &Config {
        &self.scope.config
    }

    /// Silence allowed between upstream bytes (`STREAM_IDLE_TIMEOUT_MS`).
    pub fn idle(&self) -> Duration {
        Duration::from_millis(self.config().stream_idle_timeout_ms)
    }

    /// How long a non-streamed answer may take.
    pub(super) fn api_timeout(&self) -> Duration {
        let c = self.config();
        Duration::from_millis(c.api_timeout_ms.max(c.stream_idle_timeout_ms))
    }

    /// The input tokens this target receives, for message_start and answers without
    /// usage (OpenAI upstreams report the real count only at the end). The plan
    /// counted the request as edited ([`crate::proxy::plan`]).
    pub fn input_estimate(&self) -> u64 {
        let count = self.scope.plan.count.as_ref();
        count.map_or(0, |c| input_tokens_for(self.config(), self.target, c))
    }

    /// POST `body` upstream, waiting for the answer head at most `head_timeout`: the
    /// one way an attempt sends. The future owns what it needs, so a stream can keep
    /// it while it pings the client.
    pub fn send(
        &self,
        body: Bytes,
        stream: bool,
        head_timeout: Duration,
    ) -> impl std::future::Future<Output = Result<reqwest::Response, AttemptError>> + Send + 'static
    {
        let upstream = self.state().upstream.clone();
        let provider = OwnedProvider::of(&self.scope.config, self.provider);
        let headers = Arc::clone(&self.scope.headers);
        let affinity = self.scope.affinity;
        async move {
            let provider = provider.get();
            upstream
                .send(provider, &headers, body, stream, head_timeout, affinity)
                .await
        }
    }

    /// The meta as of now: with the unrepaired tool calls counted so far.
    pub fn meta_now(&self) -> RequestMeta {
        RequestMeta {
            tool_call_failures: self.meta.tool_call_failures
                + self.scope.tool_call_failures.load(Ordering::Relaxed),
            ..self.meta.clone()
        }
    }

    /// Count one tool call that could not be repaired (for the ledger and the
    /// quality fallback).
    pub fn count_unfit_call(&self) {
        self.scope
            .tool_call_failures
            .fetch_add(1, Ordering::Relaxed);
    }
}

/// The ledger's `repairs` value: the kinds, comma-separated; None when there were none.
pub(super) fn repairs_text(repairs: &[crate::proxy::repair::RepairKind]) -> Option<String> {
    (!repairs.is_empty()).then(|| {
        repairs
            .iter()
            .map(|r| r.as_str())
            .collect::<Vec<_>>()
            .join(",")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mr(s: &str) -> ModelRef {
        ModelRef::parse(s).unwrap()
    }

    #[test]
    fn route_header_names_who_answered() {
        assert_eq!(
            route_header(
                &mr("anthropic,claude-sonnet-4-5"),
                "default",
                Some(&mr("ollama,gpt-oss:20b"))
            ),
            "anthropic,claude-sonnet-4-5; scenario=default; fallback=yes; from=ollama,gpt-oss:20b"
        );
        assert_eq!(
            route_header(&mr("ollama,gpt-oss:20b"), "think", None),
            "ollama,gpt-oss:20b; scenario=think; fallback=no"
        );
    }

    #[test]
    fn a_send_holds_the_snapshot_s_provider_not_a_copy() {
        let config = Arc::new(crate::proxy::test_support::config(
            serde_json::json!({"default": "ollama,gpt-oss:20b"}),
        ));
        let anthropic = config.provider("anthropic").unwrap();
        let held = OwnedProvider::of(&config, anthropic);
        assert!(matches!(held, OwnedProvider::InConfig(_, 1)));
        assert!(std::ptr::eq(held.get(), anthropic));
        // One from elsewhere (not in the snapshot) is copied.
        let outside = anthropic.clone();
        let held = OwnedProvider::of(&config, &outside);
        assert!(matches!(held, OwnedProvider::Copy(_)));
        assert_eq!(held.get().api_base_url, outside.api_base_url);
    }
}
