//! The axum app: endpoints, the per-request flow, streaming with keep-alive pings and
//! idle timeouts, the request log line and the ledger row.
//!
//! One request goes: auth → read the body (≤ 32 MB) → parse once → plan (route,
//! context guard, fallback chain; `route::plan`) → for each target, [`attempt`] until
//! one answers or fails in a way no other target can fix. An attempt is committed once
//! the upstream answered 2xx: from then on failures reach the client as an SSE
//! `event: error` (or a 502 for a non-streamed answer), never as a fallback.
//!
//! Endpoints: `POST /v1/messages` (any query string), `POST /v1/messages/count_tokens`,
//! `GET /health`, `GET|HEAD /`. Anything else is a 404 in Anthropic's
//! error shape.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;

use super::anthropic::{MessagesRequest, MessagesResponse, Usage};
use super::error::{ErrorKind, ProxyError};
use super::fallback::{route_header, AttemptFailure, ROUTE_HEADER};
use super::openai::ChatCompletion;
use super::reload::LiveConfig;
use super::route::{self, Plan, PlanError};
use super::tokens::TokenEstimator;
use super::translate::request::{to_openai, TargetOptions};
use super::translate::response::{from_openai, ResponseContext};
use super::translate::stream::{StreamTranslator, PING_EVENT};
use super::upstream::{AttemptError, Upstream};
use crate::config::{Config, ModelRef, Provider, ProviderKind};
use crate::ledger::{LedgerHandle, RequestOutcome, UsageRecord};

/// Anthropic's own request size limit.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Keep-alive period while the upstream is silent. Claude Code gives up after 300 s
/// without a byte; a local model can prefill a long prompt for minutes.
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(15);

/// Knobs that are not in the config file (tests shorten the ping interval).
#[derive(Debug, Clone, Copy)]
pub struct ServerOptions {
    pub ping_interval: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            ping_interval: DEFAULT_PING_INTERVAL,
        }
    }
}

/// Everything the handlers share. The config is behind [`LiveConfig`] so a reload can
/// replace it; each request takes one snapshot and uses it to the end.
#[derive(Debug)]
pub struct AppState {
    pub config: Arc<LiveConfig>,
    pub upstream: Upstream,
    pub ledger: LedgerHandle,
    pub estimator: TokenEstimator,
    pub options: ServerOptions,
    message_counter: AtomicU64,
}

impl AppState {
    /// The upstream client takes the connect timeout of `config` as it is now.
    pub fn new(
        config: Arc<LiveConfig>,
        ledger: LedgerHandle,
        options: ServerOptions,
    ) -> Result<Arc<AppState>, reqwest::Error> {
        let connect = Duration::from_millis(config.current().connect_timeout_ms);
        Ok(Arc::new(AppState {
            config,
            upstream: Upstream::new(connect)?,
            ledger,
            estimator: TokenEstimator::default(),
            options,
            message_counter: AtomicU64::new(0),
        }))
    }

    fn next_message_id(&self, started_at_ms: i64) -> String {
        let n = self.message_counter.fetch_add(1, Ordering::Relaxed);
        format!("msg_ccr{started_at_ms:x}{n:04x}")
    }
}

/// The app, ready for `axum::serve`.
pub fn app(state: Arc<AppState>) -> axum::Router {
    axum::Router::new()
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/models", get(models))
        .route("/health", get(health))
        .route("/", get(root))
        .fallback(not_found)
        .with_state(state)
}

/// The listener to serve [`app`] on: Nagle's algorithm off for every accepted
/// connection. SSE events are small writes; with Nagle on, each burst after the first
/// can wait for the client's delayed ACK. Measured with wrk, 76 KB streamed request,
/// one connection: p99 86 ms and mean 2.8 ms without this, 3.1 ms and 0.5 ms with it.
pub fn nodelay_listener(
    listener: tokio::net::TcpListener,
) -> impl axum::serve::Listener<Io = tokio::net::TcpStream, Addr = std::net::SocketAddr> {
    use axum::serve::ListenerExt;
    listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    })
}

async fn root() -> &'static str {
    "ccr-setup proxy\n"
}

async fn not_found(method: Method, uri: Uri) -> Response {
    ProxyError::not_found(format!(
        "{method} {} is not an endpoint of this proxy; it serves POST /v1/messages",
        uri.path()
    ))
    .into_response()
}

async fn health(State(state): State<Arc<AppState>>) -> Response {
    let config = state.config.current();
    let providers: Vec<serde_json::Value> = config
        .providers
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "kind": match p.kind { ProviderKind::OpenAi => "openai", ProviderKind::Anthropic => "anthropic" },
                "api_base_url": p.api_base_url,
                "models": p.models,
            })
        })
        .collect();
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "providers": providers,
        "ledger": state.ledger.health(),
    }))
    .into_response()
}

fn auth_error(e: super::auth::AuthError) -> ProxyError {
    ProxyError::new(
        StatusCode::UNAUTHORIZED,
        ErrorKind::Authentication,
        e.to_string(),
    )
}

async fn count_tokens(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let config = state.config.current();
    if let Err(e) = super::auth::check(config.api_key.as_deref(), &headers) {
        return auth_error(e).into_response();
    }
    let bytes = match read_body(body, &headers).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let req = match parse_request(&bytes) {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
    // One routing decision for both paths; a routing error still gets an estimate.
    let count = state.estimator.count(&req);
    let decision = route::decide(&config, &req, || count.total()).ok();
    let upstream = match &decision {
        Some(d) => upstream_count_tokens(&state, &config, &headers, &req, d).await,
        None => None,
    };
    let input_tokens = upstream.unwrap_or_else(|| match &decision {
        // What the routed target will receive (no earlier thinking for OpenAI-kind).
        Some(d) => route::input_tokens_for(&config, &d.target, &count),
        None => count.total(),
    });
    axum::Json(serde_json::json!({ "input_tokens": input_tokens })).into_response()
}

/// count_tokens answered by the Anthropic-kind provider the request routes to (exact
/// figures for cloud models). None when the target is OpenAI-kind, serves no
/// count_tokens, or fails: the estimator answers then.
async fn upstream_count_tokens(
    state: &AppState,
    config: &Config,
    headers: &HeaderMap,
    req: &MessagesRequest,
    decision: &route::RouteDecision,
) -> Option<u64> {
    let provider = config.provider(&decision.target.provider)?;
    let url = route::count_tokens_url(provider)?;
    let mut req = req.clone();
    decision.apply(&mut req);
    super::fallback::strip_unsigned_thinking(&mut req);
    let body = serde_json::to_vec(&req).ok()?;
    let counting = Provider {
        api_base_url: url,
        ..provider.clone()
    };
    let timeout = Duration::from_millis(config.connect_timeout_ms.max(10_000));
    let answer = state
        .upstream
        .send(&counting, headers, Bytes::from(body), false, timeout)
        .await
        .map_err(|e| tracing::debug!("count_tokens upstream failed, estimating: {}", e.failure))
        .ok()?;
    let v: serde_json::Value = tokio::time::timeout(timeout, answer.json())
        .await
        .ok()?
        .ok()?;
    v.get("input_tokens")?.as_u64()
}

/// `GET /v1/models`: the configured `provider,model` pairs.
async fn models(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let config = state.config.current();
    if let Err(e) = super::auth::check(config.api_key.as_deref(), &headers) {
        return auth_error(e).into_response();
    }
    axum::Json(route::models_list(&config)).into_response()
}

/// Read the body, refusing more than [`MAX_BODY_BYTES`] (early, from Content-Length,
/// when the client declared it).
async fn read_body(body: Body, headers: &HeaderMap) -> Result<Bytes, ProxyError> {
    let too_large = || {
        ProxyError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RequestTooLarge,
            format!(
                "request body is larger than {} MB",
                MAX_BODY_BYTES / (1024 * 1024)
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large());
    }
    match http_body_util::Limited::new(body, MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(e) => Err(ProxyError::invalid_request(format!(
            "could not read the request body: {e}"
        ))),
    }
}

/// Parse once, naming the offending field on failure.
fn parse_request(bytes: &[u8]) -> Result<MessagesRequest, ProxyError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let req: MessagesRequest = serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ProxyError::invalid_request(format!("invalid request body: {inner}"))
        } else {
            ProxyError::invalid_request(format!("{path}: {inner}"))
        }
    })?;
    if req.messages.is_empty() {
        return Err(ProxyError::invalid_request(
            "messages: at least one message is required",
        ));
    }
    Ok(req)
}

/// What the log line and the ledger row need, gathered along the way.
#[derive(Debug, Clone)]
struct RequestMeta {
    started: Instant,
    started_at_ms: i64,
    session_id: Option<String>,
    scenario: &'static str,
    fallback_from: Option<ModelRef>,
    stream: bool,
}

/// How one request ended, for [`finish_request`].
struct Ending<'a> {
    target: Option<&'a ModelRef>,
    status: u16,
    usage: Usage,
    tokens_estimated: bool,
    time_to_first_token: Option<Duration>,
    outcome: RequestOutcome,
}

/// Write the one log line and the one ledger row of a request.
fn finish_request(state: &AppState, meta: &RequestMeta, end: Ending<'_>) {
    let duration = meta.started.elapsed();
    let (provider, model) = end
        .target
        .map(|t| (t.provider.as_str(), t.model.as_str()))
        .unwrap_or(("-", "-"));
    let outcome = match end.outcome.detail() {
        Some(detail) => format!("{}:{detail}", end.outcome.kind()),
        None => end.outcome.kind().to_owned(),
    };
    tracing::info!(
        "{} {} {provider},{model} status={} in={}{} out={} {:.1}ms{}{}",
        if meta.stream { "stream" } else { "json" },
        meta.scenario,
        end.status,
        end.usage.input_tokens + end.usage.cache_read_input_tokens.unwrap_or(0),
        if end.tokens_estimated { "~" } else { "" },
        end.usage.output_tokens,
        duration.as_secs_f64() * 1000.0,
        meta.fallback_from
            .as_ref()
            .map(|f| format!(" fallback_from={f}"))
            .unwrap_or_default(),
        if end.outcome == RequestOutcome::Ok {
            String::new()
        } else {
            format!(" outcome={outcome}")
        },
    );
    state.ledger.record(UsageRecord {
        started_at_ms: meta.started_at_ms,
        session_id: meta.session_id.clone(),
        scenario: meta.scenario.to_owned(),
        provider: provider.to_owned(),
        model: model.to_owned(),
        fallback_from: meta.fallback_from.as_ref().map(ModelRef::to_string),
        input_tokens: end.usage.input_tokens,
        output_tokens: end.usage.output_tokens,
        cache_read_tokens: end.usage.cache_read_input_tokens.unwrap_or(0),
        cache_write_tokens: end.usage.cache_creation_input_tokens.unwrap_or(0),
        tokens_estimated: end.tokens_estimated,
        time_to_first_token_ms: end.time_to_first_token.map(|d| d.as_millis() as u64),
        duration_ms: duration.as_millis() as u64,
        outcome: end.outcome,
        http_status: end.status,
        stream: meta.stream,
    });
}

fn session_id(req: &MessagesRequest, headers: &HeaderMap) -> Option<String> {
    if let Some(h) = headers
        .get("x-claude-code-session-id")
        .and_then(|v| v.to_str().ok())
    {
        return Some(h.to_owned());
    }
    let user_id = req.metadata.as_ref()?.get("user_id")?.as_str()?;
    // Claude Code 2.1 sends a JSON object as a string: {"device_id", "session_id", …}.
    if let Ok(serde_json::Value::Object(fields)) = serde_json::from_str(user_id) {
        if let Some(session) = fields.get("session_id").and_then(|v| v.as_str()) {
            return Some(session.to_owned());
        }
    }
    Some(match user_id.rsplit_once("session_") {
        Some((_, session)) => session.to_owned(),
        None => user_id.to_owned(),
    })
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `POST /v1/messages`.
async fn messages(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    let mut meta = RequestMeta {
        started: Instant::now(),
        started_at_ms: unix_ms(),
        session_id: None,
        scenario: "-",
        fallback_from: None,
        stream: false,
    };
    let config = state.config.current();
    let rejected = |state: &AppState, meta: &RequestMeta, e: ProxyError, why: &str| {
        finish_request(
            state,
            meta,
            Ending {
                target: None,
                status: e.status.as_u16(),
                usage: Usage::default(),
                tokens_estimated: false,
                time_to_first_token: None,
                outcome: RequestOutcome::Rejected(why.to_owned()),
            },
        );
        e.into_response()
    };
    if let Err(e) = super::auth::check(config.api_key.as_deref(), &headers) {
        return rejected(&state, &meta, auth_error(e), "auth");
    }
    let bytes = match read_body(body, &headers).await {
        Ok(b) => b,
        Err(e) => return rejected(&state, &meta, e, "bad_request"),
    };
    let mut req = match parse_request(&bytes) {
        Ok(r) => r,
        Err(e) => return rejected(&state, &meta, e, "bad_request"),
    };
    meta.stream = req.stream.unwrap_or(false);
    meta.session_id = session_id(&req, &headers);

    let plan = match route::plan(&config, &state.estimator, &mut req) {
        Ok(plan) => plan,
        Err(PlanError::Route(e)) => {
            return rejected(
                &state,
                &meta,
                ProxyError::invalid_request(format!("model: {e}")),
                "route",
            )
        }
        Err(PlanError::TooLong(message)) => {
            return rejected(
                &state,
                &meta,
                ProxyError::invalid_request(message),
                "context_guard",
            )
        }
    };
    meta.scenario = plan.scenario.name();

    let mut first_failure: Option<ModelRef> = None;
    let mut last: Option<(ModelRef, AttemptError)> = None;
    for (i, target) in plan.targets.iter().enumerate() {
        meta.fallback_from.clone_from(&first_failure);
        match attempt(&state, &config, &plan, &mut req, &headers, target, &meta).await {
            Ok(response) => return response,
            Err(err) => {
                let next = plan.targets.get(i + 1);
                match next {
                    Some(next) if err.failure.retryable() => {
                        tracing::warn!("{target} failed ({}); falling back to {next}", err.failure);
                        first_failure.get_or_insert_with(|| target.clone());
                        last = Some((target.clone(), err));
                    }
                    _ => {
                        last = Some((target.clone(), err));
                        break;
                    }
                }
            }
        }
    }
    let (target, err) = last.expect("a plan always holds at least one target");
    finish_request(
        &state,
        &meta,
        Ending {
            target: Some(&target),
            status: err.client.status.as_u16(),
            usage: Usage::default(),
            tokens_estimated: false,
            time_to_first_token: None,
            outcome: RequestOutcome::UpstreamError(err.failure.ledger_kind()),
        },
    );
    err.client.into_response()
}

/// One try at one target. `Err` means nothing reached the client, so the next target
/// may be tried; once this returns `Ok` the answer is committed.
async fn attempt(
    state: &Arc<AppState>,
    config: &Arc<Config>,
    plan: &Plan,
    req: &mut MessagesRequest,
    headers: &HeaderMap,
    target: &ModelRef,
    meta: &RequestMeta,
) -> Result<Response, AttemptError> {
    let Some(provider) = config.provider(&target.provider) else {
        let message = format!(
            "provider \"{}\" is not configured (Router or fallback names it)",
            target.provider
        );
        return Err(AttemptError {
            client: ProxyError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorKind::Api,
                message.clone(),
            ),
            failure: AttemptFailure::Status {
                status: 500,
                body: message,
            },
        });
    };
    plan.prepare(config, target, req);
    // `Providers[].max_tokens` caps what any kind of provider is asked for.
    if let Some(limit) = provider.max_tokens {
        req.max_tokens = Some(req.max_tokens.map_or(limit, |asked| asked.min(limit)));
    }
    let route = route_header(target, plan.scenario.name(), meta.fallback_from.as_ref());
    match provider.kind {
        ProviderKind::OpenAi => {
            attempt_openai(
                state, config, plan, provider, req, headers, target, meta, route,
            )
            .await
        }
        ProviderKind::Anthropic => {
            attempt_anthropic(state, config, provider, req, headers, target, meta, route).await
        }
    }
}

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

fn with_route(mut response: Response, route: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(route) {
        response.headers_mut().insert(ROUTE_HEADER, v);
    }
    response
}

fn sse_response(body: Body, route: &str) -> Response {
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(body)
        .expect("static headers are valid");
    with_route(response, route)
}

#[allow(clippy::too_many_arguments)]
async fn attempt_openai(
    state: &Arc<AppState>,
    config: &Config,
    plan: &Plan,
    provider: &Provider,
    req: &MessagesRequest,
    headers: &HeaderMap,
    target: &ModelRef,
    meta: &RequestMeta,
    route: String,
) -> Result<Response, AttemptError> {
    let options = TargetOptions {
        model: &target.model,
        max_tokens_limit: provider.max_tokens,
        reasoning_in_history: provider.reasoning_in_history,
    };
    let translated = to_openai(req, &options).map_err(|e| AttemptError {
        client: ProxyError::invalid_request(e.to_string()),
        failure: AttemptFailure::Status {
            status: 400,
            body: e.to_string(),
        },
    })?;
    let body = serde_json::to_vec(&translated.request)
        .map_err(|e| internal(format!("cannot encode the upstream request: {e}")))?;
    let names = translated.tool_names;
    // message_start reports an input estimate (OpenAI upstreams tell the real count
    // only at the end). Counting a new conversation's first request can take
    // milliseconds, so it runs while the upstream is already reading the request.
    let input_estimate = || match &plan.count {
        Some(count) => route::input_tokens_for(config, target, count),
        None => route::input_tokens_for(config, target, &state.estimator.count(req)),
    };
    let idle = Duration::from_millis(config.stream_idle_timeout_ms);
    let message_id = state.next_message_id(meta.started_at_ms);

    if meta.stream {
        // Wait for the upstream's answer head for up to one ping interval: fast
        // failures (refused, 4xx/5xx) keep their HTTP status and can fall back. A
        // server that answers only after its prefill (Ollama) gets the stream
        // committed instead, so the client receives message_start and pings meanwhile.
        let upstream = state.upstream.clone();
        let (owned_provider, owned_headers) = (provider.clone(), headers.clone());
        let mut head: PendingHead = Box::pin(async move {
            upstream
                .send(
                    &owned_provider,
                    &owned_headers,
                    Bytes::from(body),
                    true,
                    idle,
                )
                .await
        });
        let (head_result, input_estimate) = tokio::join!(
            tokio::time::timeout(state.options.ping_interval, &mut head),
            async { input_estimate() }
        );
        let (upstream, pending_head): (ByteStream, Option<PendingHead>) = match head_result {
            Ok(Ok(response)) => (Box::pin(response.bytes_stream()), None),
            Ok(Err(e)) => return Err(e),
            Err(_still_waiting) => (Box::pin(futures_util::stream::empty()), Some(head)),
        };
        let translator =
            StreamTranslator::new(message_id, target.model.clone(), input_estimate, names);
        let stream = TranslatedStream {
            upstream,
            pending_head,
            translator,
            idle,
            ping_interval: state.options.ping_interval,
            started: false,
            done: false,
            last_upstream: tokio::time::Instant::now(),
            first_token: None,
            finisher: Some(Finisher {
                state: state.clone(),
                meta: meta.clone(),
                target: target.clone(),
            }),
        };
        return Ok(sse_response(
            Body::from_stream(stream.into_stream()),
            &route,
        ));
    }

    let api_timeout =
        Duration::from_millis(config.api_timeout_ms.max(config.stream_idle_timeout_ms));
    let response = state
        .upstream
        .send(provider, headers, Bytes::from(body), false, api_timeout)
        .await?;
    let bytes = read_answer(response, api_timeout, provider).await?;
    let completion: ChatCompletion = serde_json::from_slice(&bytes).map_err(|e| {
        let message = format!(
            "provider \"{}\" sent an answer that is not a chat completion: {e}",
            provider.name
        );
        AttemptError {
            client: ProxyError::bad_gateway(message.clone()),
            failure: AttemptFailure::BeforeFirstByte(message),
        }
    })?;
    let ctx = ResponseContext {
        fallback_id: &message_id,
        model: &target.model,
        // Only used when the upstream reported no usage.
        input_estimate: if completion.usage.is_none() {
            input_estimate()
        } else {
            0
        },
    };
    let (answer, estimated) = from_openai(&completion, &names, &ctx).map_err(|e| {
        let message = format!("provider \"{}\": {e}", provider.name);
        AttemptError {
            client: ProxyError::bad_gateway(message.clone()),
            failure: AttemptFailure::Status {
                status: 502,
                body: message,
            },
        }
    })?;
    finish_json(state, meta, target, &answer, estimated);
    Ok(with_route(axum::Json(answer).into_response(), &route))
}

fn finish_json(
    state: &AppState,
    meta: &RequestMeta,
    target: &ModelRef,
    answer: &MessagesResponse,
    estimated: bool,
) {
    finish_request(
        state,
        meta,
        Ending {
            target: Some(target),
            status: 200,
            usage: answer.usage,
            tokens_estimated: estimated,
            time_to_first_token: None,
            outcome: RequestOutcome::Ok,
        },
    );
}

/// Read a whole (non-streamed) answer, bounded in time.
async fn read_answer(
    response: reqwest::Response,
    timeout: Duration,
    provider: &Provider,
) -> Result<Bytes, AttemptError> {
    match tokio::time::timeout(timeout, response.bytes()).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e)) => {
            let message = format!("provider \"{}\" broke off its answer: {e}", provider.name);
            Err(AttemptError {
                client: ProxyError::bad_gateway(message.clone()),
                failure: AttemptFailure::BeforeFirstByte(message),
            })
        }
        Err(_) => {
            let message = format!(
                "provider \"{}\" did not finish its answer within {} s",
                provider.name,
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

#[allow(clippy::too_many_arguments)]
async fn attempt_anthropic(
    state: &Arc<AppState>,
    config: &Config,
    provider: &Provider,
    req: &MessagesRequest,
    headers: &HeaderMap,
    target: &ModelRef,
    meta: &RequestMeta,
    route: String,
) -> Result<Response, AttemptError> {
    // The parsed request is lossless (unknown keys are kept), and the plan may have
    // changed more than the model (max_tokens clamp, unsigned thinking, subagent tag),
    // so it is serialised rather than patched.
    let body = serde_json::to_vec(req)
        .map_err(|e| internal(format!("cannot encode the upstream request: {e}")))?;
    let idle = Duration::from_millis(config.stream_idle_timeout_ms);
    if meta.stream {
        let response = state
            .upstream
            .send(provider, headers, Bytes::from(body), true, idle)
            .await?;
        let stream = PassThroughStream {
            upstream: Box::pin(response.bytes_stream()),
            observer: UsageObserver::default(),
            idle,
            done: false,
            first_token: None,
            finisher: Some(Finisher {
                state: state.clone(),
                meta: meta.clone(),
                target: target.clone(),
            }),
        };
        return Ok(sse_response(
            Body::from_stream(stream.into_stream()),
            &route,
        ));
    }
    let api_timeout =
        Duration::from_millis(config.api_timeout_ms.max(config.stream_idle_timeout_ms));
    let response = state
        .upstream
        .send(provider, headers, Bytes::from(body), false, api_timeout)
        .await?;
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        .unwrap_or(HeaderValue::from_static("application/json"));
    let bytes = read_answer(response, api_timeout, provider).await?;
    let usage = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| serde_json::from_value::<Usage>(v.get("usage")?.clone()).ok());
    finish_request(
        state,
        meta,
        Ending {
            target: Some(target),
            status: 200,
            usage: usage.unwrap_or_default(),
            tokens_estimated: usage.is_none(),
            time_to_first_token: None,
            outcome: RequestOutcome::Ok,
        },
    );
    let response = Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(bytes))
        .expect("valid response parts");
    Ok(with_route(response, &route))
}

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;
type PendingHead =
    Pin<Box<dyn std::future::Future<Output = Result<reqwest::Response, AttemptError>> + Send>>;

/// Writes the log line and ledger row when a streamed answer ends; if the body is
/// dropped first (the client went away), `Drop` records a cancelled request.
struct Finisher {
    state: Arc<AppState>,
    meta: RequestMeta,
    target: ModelRef,
}

impl Finisher {
    fn finish(
        self,
        usage: Usage,
        estimated: bool,
        first_token: Option<Duration>,
        outcome: RequestOutcome,
    ) {
        finish_request(
            &self.state,
            &self.meta,
            Ending {
                target: Some(&self.target),
                status: 200,
                usage,
                tokens_estimated: estimated,
                time_to_first_token: first_token,
                outcome,
            },
        );
    }
}

/// An OpenAI stream being translated, with pings and the idle timeout.
struct TranslatedStream {
    upstream: ByteStream,
    /// The upstream has not answered yet (the stream was committed while waiting).
    pending_head: Option<PendingHead>,
    translator: StreamTranslator,
    idle: Duration,
    ping_interval: Duration,
    started: bool,
    done: bool,
    /// When the upstream last sent bytes (the idle timeout counts from here; pings
    /// do not reset it).
    last_upstream: tokio::time::Instant,
    first_token: Option<Duration>,
    finisher: Option<Finisher>,
}

impl Drop for TranslatedStream {
    fn drop(&mut self) {
        if let Some(f) = self.finisher.take() {
            let summary = self.translator.summary();
            f.finish(
                summary.usage,
                summary.usage_estimated,
                self.first_token,
                RequestOutcome::ClientCancelled,
            );
        }
    }
}

impl TranslatedStream {
    fn into_stream(self) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
        futures_util::stream::unfold(self, |mut s| async move {
            let chunk = s.next_chunk().await?;
            Some((Ok(chunk), s))
        })
    }

    /// The next bytes for the client, or None when the answer is over.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        if !self.started {
            // message_start right away: the client sees the answer begin while the
            // upstream is still prefilling.
            self.started = true;
            self.translator.start(&mut out);
            return Some(Bytes::from(out));
        }
        // A ping goes out when the client has had nothing for a ping interval.
        let ping_at = tokio::time::Instant::now() + self.ping_interval;
        loop {
            if let Some(head) = self.pending_head.as_mut() {
                // `send` bounds its own wait by the idle timeout.
                tokio::select! {
                    biased;
                    result = head => {
                        self.pending_head = None;
                        match result {
                            Ok(response) => {
                                self.upstream = Box::pin(response.bytes_stream());
                                self.last_upstream = tokio::time::Instant::now();
                                continue;
                            }
                            Err(e) => {
                                self.translator.fail(&e.failure.ledger_kind(), e.client, &mut out);
                                self.done = true;
                                self.record_end();
                                return Some(Bytes::from(out));
                            }
                        }
                    }
                    _ = tokio::time::sleep_until(ping_at) => return Some(Bytes::from_static(PING_EVENT)),
                }
            }
            let idle_deadline = self.last_upstream + self.idle;
            tokio::select! {
                biased;
                next = tokio::time::timeout_at(idle_deadline, self.upstream.next()) => {
                    match next {
                        Ok(Some(Ok(bytes))) => {
                            self.last_upstream = tokio::time::Instant::now();
                            if self.first_token.is_none() {
                                self.first_token = Some(self.finisher.as_ref()?.meta.started.elapsed());
                            }
                            self.translator.feed(&bytes, &mut out);
                        }
                        Ok(Some(Err(e))) => self.translator.fail(
                            "stream_broken",
                            ProxyError::bad_gateway(format!("the upstream connection broke mid-answer: {e}")),
                            &mut out,
                        ),
                        Ok(None) => self.translator.finish(&mut out),
                        Err(_) => self.translator.fail(
                            "timeout",
                            ProxyError::new(StatusCode::GATEWAY_TIMEOUT, ErrorKind::Api, format!(
                                "the upstream sent nothing for {} s (STREAM_IDLE_TIMEOUT_MS)",
                                self.idle.as_secs()
                            )),
                            &mut out,
                        ),
                    }
                    if self.translator.is_finished() {
                        self.done = true;
                        self.record_end();
                    }
                    if !out.is_empty() {
                        return Some(Bytes::from(out));
                    }
                    if self.done {
                        return None;
                    }
                }
                _ = tokio::time::sleep_until(ping_at) => return Some(Bytes::from_static(PING_EVENT)),
            }
        }
    }

    fn record_end(&mut self) {
        if let Some(f) = self.finisher.take() {
            let summary = self.translator.summary();
            let outcome = match &summary.error {
                None => RequestOutcome::Ok,
                Some(kind) => RequestOutcome::UpstreamError(kind.clone()),
            };
            f.finish(
                summary.usage,
                summary.usage_estimated,
                self.first_token,
                outcome,
            );
        }
    }
}

/// Reads usage from an Anthropic stream without changing a byte of it, and notices
/// whether it ended with `message_stop`.
#[derive(Debug, Default)]
struct UsageObserver {
    line: Vec<u8>,
    usage: Usage,
    saw_usage: bool,
    saw_stop: bool,
}

impl UsageObserver {
    fn observe(&mut self, mut bytes: &[u8]) {
        while let Some(pos) = memchr::memchr(b'\n', bytes) {
            if self.line.is_empty() {
                self.line_done(&bytes[..pos]);
            } else {
                let mut line = std::mem::take(&mut self.line);
                line.extend_from_slice(&bytes[..pos]);
                self.line_done(&line);
                line.clear();
                self.line = line;
            }
            bytes = &bytes[pos + 1..];
        }
        self.line.extend_from_slice(bytes);
    }

    fn line_done(&mut self, line: &[u8]) {
        let Some(data) = line.strip_prefix(b"data:") else {
            return;
        };
        // Only the two event kinds that carry usage are parsed.
        let is = |needle: &[u8]| memchr::memmem::find(data, needle).is_some();
        if is(b"\"message_stop\"") {
            self.saw_stop = true;
        } else if is(b"\"message_start\"") || is(b"\"message_delta\"") {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(data.trim_ascii()) else {
                return;
            };
            let usage = v
                .get("usage")
                .or_else(|| v.get("message").and_then(|m| m.get("usage")));
            if let Some(u) = usage {
                let get = |k: &str| u.get(k).and_then(serde_json::Value::as_u64);
                if let Some(n) = get("input_tokens") {
                    self.usage.input_tokens = n;
                }
                if let Some(n) = get("output_tokens") {
                    self.usage.output_tokens = n;
                }
                if let Some(n) = get("cache_read_input_tokens") {
                    self.usage.cache_read_input_tokens = Some(n);
                }
                if let Some(n) = get("cache_creation_input_tokens") {
                    self.usage.cache_creation_input_tokens = Some(n);
                }
                self.saw_usage = true;
            }
        }
    }
}

/// An Anthropic stream passed through byte for byte, with the idle timeout, and an
/// error event if it ends without `message_stop`.
struct PassThroughStream {
    upstream: ByteStream,
    observer: UsageObserver,
    idle: Duration,
    done: bool,
    first_token: Option<Duration>,
    finisher: Option<Finisher>,
}

impl Drop for PassThroughStream {
    fn drop(&mut self) {
        if let Some(f) = self.finisher.take() {
            f.finish(
                self.observer.usage,
                !self.observer.saw_usage,
                self.first_token,
                RequestOutcome::ClientCancelled,
            );
        }
    }
}

impl PassThroughStream {
    fn into_stream(self) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
        futures_util::stream::unfold(self, |mut s| async move {
            let chunk = s.next_chunk().await?;
            Some((Ok(chunk), s))
        })
    }

    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let failure = match tokio::time::timeout(self.idle, self.upstream.next()).await {
            Ok(Some(Ok(bytes))) => {
                if self.first_token.is_none() {
                    self.first_token = Some(self.finisher.as_ref()?.meta.started.elapsed());
                }
                self.observer.observe(&bytes);
                return Some(bytes);
            }
            Ok(None) if self.observer.saw_stop => {
                self.done = true;
                self.end(RequestOutcome::Ok);
                return None;
            }
            Ok(None) => (
                "stream_truncated",
                ProxyError::bad_gateway(
                    "the upstream closed the stream before message_stop; the answer is incomplete",
                ),
            ),
            Ok(Some(Err(e))) => (
                "stream_broken",
                ProxyError::bad_gateway(format!("the upstream connection broke mid-answer: {e}")),
            ),
            Err(_) => (
                "timeout",
                ProxyError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    ErrorKind::Api,
                    format!(
                        "the upstream sent nothing for {} s (STREAM_IDLE_TIMEOUT_MS)",
                        self.idle.as_secs()
                    ),
                ),
            ),
        };
        self.done = true;
        self.end(RequestOutcome::UpstreamError(failure.0.to_owned()));
        // The blank lines end any event the upstream left half-written.
        let mut out = b"\n\n".to_vec();
        failure.1.write_sse(&mut out);
        Some(Bytes::from(out))
    }

    fn end(&mut self, outcome: RequestOutcome) {
        if let Some(f) = self.finisher.take() {
            f.finish(
                self.observer.usage,
                !self.observer.saw_usage,
                self.first_token,
                outcome,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(user_id: &str) -> MessagesRequest {
        serde_json::from_value(serde_json::json!({
            "model": "m", "messages": [], "metadata": {"user_id": user_id}
        }))
        .unwrap()
    }

    #[test]
    fn session_id_from_claude_code_metadata_old_and_new() {
        let none = HeaderMap::new();
        assert_eq!(
            session_id(
                &req(r#"{"device_id":"d","account_uuid":"","session_id":"f21a-77"}"#),
                &none
            )
            .as_deref(),
            Some("f21a-77")
        );
        assert_eq!(
            session_id(&req("user_abc_account__session_9c1e"), &none).as_deref(),
            Some("9c1e")
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-claude-code-session-id", HeaderValue::from_static("hdr"));
        assert_eq!(session_id(&req("x"), &headers).as_deref(), Some("hdr"));
    }
}
