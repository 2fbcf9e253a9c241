//! What one attempt at one target works with: the request's [`Scope`] (shared by every
//! attempt of a request), the [`Attempt`] context, the stream adapters' [`ChunkSource`]
//! and the route header. `attempt` runs an attempt; the stream adapters
//! (`translated`, `passthrough`) read this context, so they do not depend on it.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;

use super::finish::{finish_request, Ending, Finisher, RequestMeta};
use super::AppState;
use crate::config::{Config, ModelRef, Provider};
use crate::proxy::guard::input_tokens_for;
use crate::proxy::plan::Plan;
use crate::proxy::repair::ToolCatalog;
use crate::proxy::upstream::AttemptError;
use crate::proxy::wire::anthropic::{MessagesRequest, Usage};

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
/// the next bytes for the client, or `None` when the answer is over.
pub(super) trait ChunkSource: Send + 'static {
    fn next_chunk(&mut self) -> impl std::future::Future<Output = Option<Bytes>> + Send;
}

/// What every attempt of one request shares, and the request itself, which each
/// attempt rewrites in place for its target ([`Plan::prepare`]).
pub(super) struct Scope<'a> {
    pub state: &'a Arc<AppState>,
    pub config: &'a Arc<Config>,
    pub plan: &'a Plan,
    pub headers: &'a HeaderMap,
    pub meta: &'a RequestMeta,
    pub req: MessagesRequest,
    /// The client's body as it arrived: a committed stream that must fall back after
    /// all ([`super::translated`]) parses it again rather than every request cloning
    /// the parsed one.
    pub body: Bytes,
    /// Whether a stream may rescue a retryable failure (false inside a rescue).
    pub rescue: bool,
    /// The ledger kind of the first failure that moved the request on.
    pub fallback_reason: Option<String>,
    /// Tool calls from any target that could not be repaired, so far.
    pub tool_call_failures: AtomicU32,
    /// Which replica the request belongs on ([`crate::proxy::replicas`]).
    pub affinity: u64,
}

impl<'a> Scope<'a> {
    /// A request's scope before its first attempt.
    pub fn new(
        state: &'a Arc<AppState>,
        config: &'a Arc<Config>,
        plan: &'a Plan,
        headers: &'a HeaderMap,
        meta: &'a RequestMeta,
        req: MessagesRequest,
        body: Bytes,
    ) -> Scope<'a> {
        let affinity = crate::proxy::replicas::affinity_key(meta.session_id.as_deref(), &req);
        Scope {
            affinity,
            state,
            config,
            plan,
            headers,
            meta,
            req,
            body,
            rescue: true,
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

/// One attempt's context: the request's [`Scope`], the target and its provider, the
/// log/ledger facts as of this attempt, and the route header its answer carries.
pub(super) struct Attempt<'a> {
    pub scope: &'a Scope<'a>,
    pub target: &'a ModelRef,
    pub provider: &'a Provider,
    pub meta: RequestMeta,
    pub route: String,
}

impl Attempt<'_> {
    pub fn state(&self) -> &Arc<AppState> {
        self.scope.state
    }

    pub fn config(&self) -> &Config {
        self.scope.config
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
    /// usage (OpenAI upstreams report the real count only at the end).
    pub fn input_estimate(&self, req: &MessagesRequest) -> u64 {
        let (config, target) = (self.config(), self.target);
        match &self.scope.plan.count {
            Some(count) => input_tokens_for(config, target, count),
            None => input_tokens_for(config, target, &self.state().estimator.count(req)),
        }
    }

    /// Records the streamed answer's end (or the client's disconnect).
    pub fn finisher(&self) -> Finisher {
        Finisher {
            state: Arc::clone(self.state()),
            meta: self.meta.clone(),
            target: self.target.clone(),
            repairs: None,
        }
    }

    /// POST `body` upstream, waiting for the answer head at most `head_timeout`.
    pub async fn send(
        &self,
        body: Bytes,
        stream: bool,
        head_timeout: Duration,
    ) -> Result<reqwest::Response, AttemptError> {
        let headers = self.scope.headers;
        let upstream = &self.state().upstream;
        upstream
            .send(
                self.provider,
                headers,
                body,
                stream,
                head_timeout,
                self.scope.affinity,
            )
            .await
    }

    /// A streamed answer: SSE headers and the route header around the chunks of
    /// `source`, pulled as the client reads.
    pub fn sse_response<S: ChunkSource>(&self, source: S) -> Response {
        let chunks = futures_util::stream::unfold(source, |mut s| async move {
            let chunk = s.next_chunk().await?;
            Some((Ok::<_, std::io::Error>(chunk), s))
        });
        let response = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "text/event-stream")
            .header(header::CACHE_CONTROL, "no-cache")
            .header("x-accel-buffering", "no")
            .body(Body::from_stream(chunks))
            .expect("static headers are valid");
        self.with_route(response)
    }

    pub(super) fn with_route(&self, mut response: Response) -> Response {
        if let Ok(v) = HeaderValue::from_str(&self.route) {
            response.headers_mut().insert(ROUTE_HEADER, v);
        }
        response
    }

    pub(super) fn finish_ok(&self, usage: Usage, estimated: bool, repairs: Option<String>) {
        let end = Ending {
            repairs,
            ..Ending::ok(self.target, usage, estimated)
        };
        finish_request(self.state(), &self.meta_now(), end);
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
}
