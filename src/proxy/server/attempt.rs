//! One try at one target, for either provider kind. `Err` means nothing reached the
//! client, so [`run_chain`](crate::proxy::fallback::run_chain) may try the next
//! target; `Ok` is a committed answer (a stream's later failures become an SSE
//! `event: error`).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::finish::{finish_request, Ending, Finisher, RequestMeta};
use super::AppState;
use crate::config::{Config, ModelRef, Provider, ProviderKind};
use crate::proxy::anthropic::{MessagesRequest, Usage};
use crate::proxy::error::{ErrorKind, ProxyError};
use crate::proxy::fallback::{AttemptFailure, Attempter};
use crate::proxy::guard::input_tokens_for;
use crate::proxy::openai::ChatCompletion;
use crate::proxy::plan::Plan;
use crate::proxy::repair::{corrective_note, openai_body_with_note, ToolCatalog};
use crate::proxy::translate::request::{to_openai, TargetOptions};
use crate::proxy::translate::response::{from_openai, ResponseContext, ResponseError};
use crate::proxy::upstream::AttemptError;

/// Room over the client's body size for what translation adds (OpenAI's per-message
/// framing, the Ollama schema notes) before the encoding buffer must grow.
const ENCODE_SLACK: usize = 4096;

/// Must the answer call a tool (`tool_choice` any, or a named tool, with tools offered)?
pub(super) fn must_call_tool(req: &MessagesRequest) -> bool {
    use crate::proxy::anthropic::ToolChoice;
    req.tools.as_ref().is_some_and(|t| !t.is_empty())
        && matches!(
            req.tool_choice,
            Some(ToolChoice::Any { .. } | ToolChoice::Tool { .. })
        )
}

/// Did the client ask for at most one tool call per answer?
pub(super) fn parallel_disabled(req: &MessagesRequest) -> bool {
    use crate::proxy::anthropic::ToolChoice;
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
        Scope {
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

impl Attempter for Scope<'_> {
    type Answer = Response;
    type Error = AttemptError;

    /// Rewrite the request for `target` and send it.
    async fn attempt(
        &mut self,
        target: &ModelRef,
        fallback_from: Option<&ModelRef>,
    ) -> Result<Response, AttemptError> {
        // A rescue runs the rest of a chain whose first target already failed.
        let fallback_from = fallback_from.or(self.meta.fallback_from.as_ref());
        let config = self.config;
        let Some(provider) = config.provider(&target.provider) else {
            return Err(internal(format!(
                "provider \"{}\" is not configured (Router or fallback names it)",
                target.provider
            )));
        };
        self.plan.prepare(config, target, &mut self.req);
        // `Providers[].max_tokens` caps what any kind of provider is asked for.
        if let Some(limit) = provider.max_tokens {
            let asked = self.req.max_tokens;
            self.req.max_tokens = Some(asked.map_or(limit, |asked| asked.min(limit)));
        }
        let attempt = Attempt {
            scope: self,
            target,
            provider,
            meta: RequestMeta {
                fallback_from: fallback_from.cloned(),
                fallback_reason: self
                    .meta
                    .fallback_reason
                    .clone()
                    .or_else(|| self.fallback_reason.clone()),
                sent_estimate: self
                    .plan
                    .count
                    .as_ref()
                    .map(|c| input_tokens_for(config, target, c)),
                ..self.meta.clone()
            },
            route: route_header(target, self.meta.scenario, fallback_from),
        };
        match provider.kind {
            ProviderKind::OpenAi => attempt.openai(&self.req).await,
            ProviderKind::Anthropic => attempt.anthropic(&self.req).await,
        }
    }

    fn failed(&mut self, failure: &AttemptFailure) {
        self.fallback_reason
            .get_or_insert_with(|| failure.ledger_kind());
    }
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
    fn api_timeout(&self) -> Duration {
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
            .send(self.provider, headers, body, stream, head_timeout)
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

    fn with_route(&self, mut response: Response) -> Response {
        if let Ok(v) = HeaderValue::from_str(&self.route) {
            response.headers_mut().insert(ROUTE_HEADER, v);
        }
        response
    }

    fn finish_ok(&self, usage: Usage, estimated: bool, repairs: Option<String>) {
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

    /// The upstream request's bytes, in a buffer sized from the client's body (the
    /// translation is about as long): growing by doubling would leave up to half of a
    /// large buffer unused for as long as the request is in flight.
    fn encode(&self, request: &impl serde::Serialize) -> Result<Vec<u8>, AttemptError> {
        let mut body = Vec::with_capacity(self.scope.body.len() + ENCODE_SLACK);
        serde_json::to_writer(&mut body, request)
            .map_err(|e| internal(format!("cannot encode the upstream request: {e}")))?;
        Ok(body)
    }

    /// An OpenAI-kind target: translate, send, translate the answer back.
    async fn openai(&self, req: &MessagesRequest) -> Result<Response, AttemptError> {
        let options = TargetOptions {
            model: &self.target.model,
            max_tokens_limit: self.provider.max_tokens,
            reasoning_in_history: self.provider.reasoning_in_history,
            ollama: crate::proxy::upstream::looks_like_ollama(self.provider),
        };
        let translated = to_openai(req, &options).map_err(|e| AttemptError {
            client: ProxyError::invalid_request(e.to_string()),
            failure: AttemptFailure::Status {
                status: 400,
                body: e.to_string(),
            },
        })?;
        let body = self.encode(&translated.request)?;
        let names = translated.tool_names;
        let message_id = self.state().next_message_id(self.meta.started_at_ms);
        if self.meta.stream {
            return super::translated::open(self, req, body, names, message_id).await;
        }
        // Shared, not copied, when the answer must be asked for once more.
        let mut body = Bytes::from(body);
        let timeout = self.api_timeout();
        let tools = self.scope.tool_catalog(req);
        let name = &self.provider.name;
        // Ollama ignores `tool_choice`: an answer without the required tool call is
        // asked for once more, then the chain falls back. So is an answer whose tool
        // call cannot be repaired, with a note saying what was wrong.
        let must_call = options.ollama && must_call_tool(req);
        let mut tries = 0;
        let answer = loop {
            tries += 1;
            let response = self.send(Bytes::clone(&body), false, timeout).await?;
            let bytes = read_answer(response, timeout, self.provider).await?;
            let completion: ChatCompletion = serde_json::from_slice(&bytes).map_err(|e| {
                let message = format!(
                    "provider \"{name}\" sent an answer that is not a chat completion: {e}"
                );
                AttemptError {
                    client: ProxyError::bad_gateway(message.clone()),
                    failure: AttemptFailure::BeforeFirstByte(message),
                }
            })?;
            let ctx = ResponseContext {
                fallback_id: &message_id,
                model: &self.target.model,
                // Only used when the upstream reported no usage.
                input_estimate: match completion.usage {
                    None => self.input_estimate(req),
                    Some(_) => 0,
                },
                single_tool_call: options.ollama && parallel_disabled(req),
                tools: tools.as_ref(),
            };
            let unfit = match from_openai(&completion, &names, &ctx) {
                Ok(t) if !must_call || t.response.calls_tool() => break t,
                Ok(_) => {
                    let message = format!(
                        "provider \"{name}\" answered without the tool call tool_choice required (Ollama ignores tool_choice)"
                    );
                    if tries >= 2 {
                        return Err(status_502(message));
                    }
                    tracing::warn!("{message}; asking once more");
                    continue;
                }
                Err(ResponseError::UnfitToolCall(unfit)) => unfit,
                Err(e) => return Err(status_502(format!("provider \"{name}\": {e}"))),
            };
            self.count_unfit_call();
            let message = format!("provider \"{name}\": {unfit}");
            if tries >= 2 {
                return Err(AttemptError {
                    client: ProxyError::bad_gateway(message.clone()),
                    failure: AttemptFailure::UnfitToolCall(message),
                });
            }
            tracing::warn!("{message}; asking once more with a corrective note");
            if let Some(noted) = openai_body_with_note(&body, &corrective_note(&unfit)) {
                body = Bytes::from(noted);
            }
        };
        let repairs = repairs_text(&answer.repairs);
        self.finish_ok(answer.response.usage, answer.usage_estimated, repairs);
        Ok(self.with_route(axum::Json(answer.response).into_response()))
    }

    /// An Anthropic-kind target: the request as parsed, the answer byte for byte.
    async fn anthropic(&self, req: &MessagesRequest) -> Result<Response, AttemptError> {
        // The parsed request is lossless (unknown keys are kept), and the plan may have
        // changed more than the model (max_tokens clamp, unsigned thinking, subagent
        // tag), so it is serialised rather than patched.
        let body = self.encode(req)?;
        if self.meta.stream {
            let response = self.send(Bytes::from(body), true, self.idle()).await?;
            return Ok(super::passthrough::respond(self, response));
        }
        let timeout = self.api_timeout();
        let response = self.send(Bytes::from(body), false, timeout).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
            .unwrap_or(HeaderValue::from_static("application/json"));
        let bytes = read_answer(response, timeout, self.provider).await?;
        let usage = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| serde_json::from_value::<Usage>(v.get("usage")?.clone()).ok());
        self.finish_ok(usage.unwrap_or_default(), usage.is_none(), None);
        let response = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(bytes))
            .expect("valid response parts");
        Ok(self.with_route(response))
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

/// An answer the client cannot be given, as a 502 the chain may fall back from.
fn status_502(message: String) -> AttemptError {
    AttemptError {
        client: ProxyError::bad_gateway(message.clone()),
        failure: AttemptFailure::Status {
            status: 502,
            body: message,
        },
    }
}

/// A failure inside the proxy (the target is not configured, the request cannot be
/// encoded): a 500, recorded like an upstream 500.
fn internal(message: String) -> AttemptError {
    AttemptError {
        client: ProxyError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Api,
            message.clone(),
        ),
        failure: AttemptFailure::Status {
            status: 500,
            body: message,
        },
    }
}

/// Read a whole (non-streamed) answer, bounded in time.
async fn read_answer(
    response: reqwest::Response,
    timeout: Duration,
    provider: &Provider,
) -> Result<Bytes, AttemptError> {
    let name = &provider.name;
    let read =
        crate::proxy::upstream::read_capped(response, crate::proxy::upstream::MAX_ANSWER_BYTES);
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e @ crate::proxy::upstream::ReadError::TooLarge(_))) => {
            let message = format!("provider \"{name}\" sent too much: {e}");
            Err(AttemptError {
                client: ProxyError::bad_gateway(message.clone()),
                failure: AttemptFailure::BeforeFirstByte(message),
            })
        }
        Ok(Err(e)) => {
            let message = format!("provider \"{name}\" broke off its answer: {e}");
            Err(AttemptError {
                client: ProxyError::bad_gateway(message.clone()),
                failure: AttemptFailure::BeforeFirstByte(message),
            })
        }
        Err(_) => {
            let message = format!(
                "provider \"{name}\" did not finish its answer within {} s",
                timeout.as_secs()
            );
            Err(AttemptError {
                client: ProxyError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    ErrorKind::Api,
                    message.clone(),
                ),
                failure: AttemptFailure::Timeout(message),
            })
        }
    }
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
