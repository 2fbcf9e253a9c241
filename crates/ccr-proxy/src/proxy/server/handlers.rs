//! The small endpoints: `/`, `/health`, `/v1/models`, `count_tokens` and the 404.
//! (`/v1/messages` has its own module, [`messages`](super::messages).)

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::body::read_json_body;
use super::offload::{counting_slot, with_request};
use super::request::parse_request;
use super::AppState;
use crate::config::{Config, Provider};
use crate::proxy::error::ProxyError;
use crate::proxy::guard::input_tokens_for;
use crate::proxy::health::Health;
use crate::proxy::route::{self, RouteDecision};
use crate::proxy::translate::unsigned_thinking::strip_unsigned_thinking;
use crate::proxy::upstream::count_tokens_url;
use crate::proxy::wire::anthropic::MessagesRequest;

pub(super) async fn root() -> &'static str {
    "ccr-setup proxy\n"
}

pub(super) async fn not_found(method: Method, uri: Uri) -> Response {
    ProxyError::not_found(format!(
        "{method} {} is not an endpoint of this proxy; it serves POST /v1/messages",
        crate::sanitize::untrusted(uri.path(), 128)
    ))
    .into_response()
}

/// `GET /health`: [`Health`], with provider URLs only for a caller holding the key,
/// and with `?nonce=` the proof that this proxy holds it ([`crate::proxy::proof`]).
pub(super) async fn health(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let config = state.config.current();
    let key = config.api_key.as_deref().filter(|k| !k.is_empty());
    let show_urls = key.is_some() && crate::proxy::auth::check(key, &headers).is_ok();
    let mut health = Health::of(
        &config,
        state.started.elapsed(),
        state.requests.load(Ordering::Relaxed),
        state.ledger.health(),
        show_urls,
    );
    health.quality_fallback_sessions = Some(state.sessions.on_cloud_for_quality());
    let nonce = query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "nonce")
            .map(|(_, v)| v.into_owned())
    });
    if let (Some(key), Some(nonce)) = (key, nonce) {
        if crate::proxy::proof::valid_nonce(&nonce) {
            health.proof = Some(crate::proxy::proof::health_proof(key, &nonce));
        }
    }
    axum::Json(health).into_response()
}

/// `POST /v1/ccr/session-token`: a session token for `ccr-setup code` to give Claude
/// Code instead of the `APIKEY` ([`crate::proxy::proof`]). Only the key itself mints
/// one (a token cannot renew itself).
pub(super) async fn session_token(
    State(state): State<Arc<AppState>>,
    caller: Option<axum::Extension<crate::proxy::auth::Caller>>,
    headers: HeaderMap,
) -> Response {
    if !super::limits::caller(caller).is_admin() {
        return super::limits::admin_only();
    }
    let config = state.config.current();
    let key = config.api_key.as_deref().filter(|k| !k.is_empty());
    let Some(key) = key else {
        return ProxyError::not_found("this proxy has no APIKEY, so it needs no session token")
            .into_response();
    };
    if let Err(e) = crate::proxy::auth::check_key_only(Some(key), &headers) {
        return ProxyError::new(
            axum::http::StatusCode::UNAUTHORIZED,
            crate::proxy::error::ErrorKind::Authentication,
            format!("{e}; a session token cannot mint another"),
        )
        .into_response();
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    match crate::proxy::proof::mint_token(key, now) {
        Some(token) => axum::Json(serde_json::json!({
            "token": token,
            "expires_in_s": crate::proxy::proof::TOKEN_LIFETIME_SECS,
        }))
        .into_response(),
        None => ProxyError::new(
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            crate::proxy::error::ErrorKind::Api,
            "no randomness for a session token",
        )
        .into_response(),
    }
}

/// `GET /v1/ccr/sessions/{id}`: what the proxy knows about one Claude Code session
/// ([`crate::proxy::sessions::SessionReport`]), for `ccr-setup statusline`.
pub(super) async fn session(
    State(state): State<Arc<AppState>>,
    caller: Option<axum::Extension<crate::proxy::auth::Caller>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let id = super::request::bounded_session_id(&id);
    if !state.clients.may_see(&super::limits::caller(caller), &id) {
        return not_your_session();
    }
    match state.sessions.report(&id) {
        Some(report) => axum::Json(report).into_response(),
        None => ProxyError::not_found(
            "this proxy has not served that session yet (or has restarted since)",
        )
        .into_response(),
    }
}

fn not_your_session() -> Response {
    ProxyError::new(
        axum::http::StatusCode::FORBIDDEN,
        crate::proxy::error::ErrorKind::Permission,
        "that session belongs to another client; a client key sees only its own sessions (the admin APIKEY sees all)",
    )
    .into_response()
}

/// `GET /v1/ccr/usage[?session=ID]`: the caller's use today, its limits, and with
/// `session` that session's use ([`crate::proxy::clients::UsageReport`]). The admin
/// (`client: null`) gets every client's day summed.
pub(super) async fn usage(
    State(state): State<Arc<AppState>>,
    caller: Option<axum::Extension<crate::proxy::auth::Caller>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let caller = super::limits::caller(caller);
    let session = query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "session")
            .map(|(_, v)| super::request::bounded_session_id(&v))
    });
    let config = state.config.current();
    match state.clients.report(&caller, &config, session.as_deref()) {
        Ok(report) => axum::Json(report).into_response(),
        Err(crate::proxy::clients::NotYourSession) => not_your_session(),
    }
}

/// `GET /v1/models`: the configured `provider,model` pairs.
pub(super) async fn models(State(state): State<Arc<AppState>>) -> Response {
    axum::Json(route::models_list(&state.config.current())).into_response()
}

/// `POST /v1/messages/count_tokens`: `{"input_tokens": N}`.
pub(super) async fn count_tokens(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let config = state.config.current();
    let body = match read_json_body(&headers, body).await {
        Ok(body) => body,
        Err(e) => return e.into_response(),
    };
    let slot = counting_slot(body.len()).await;
    let req = match parse_request(&body) {
        Ok(req) => req,
        Err(e) => return e.into_response(),
    };
    drop(body);
    // One routing decision for both paths; a routing error still gets an estimate.
    // Counted off the async workers for a large body.
    let owned_state = Arc::clone(&state);
    let counted = with_request(req, slot, move |req| owned_state.estimator.count(req));
    let (req, count) = match counted.await {
        Ok(done) => done,
        Err(e) => return e.into_response(),
    };
    let decision = route::decide(&config, &req, || count.total()).ok();
    let upstream = match &decision {
        Some(d) => upstream_count_tokens(&state, &config, &headers, &req, d).await,
        None => None,
    };
    let input_tokens = upstream.unwrap_or_else(|| match &decision {
        // What the routed target will receive (no earlier thinking for OpenAI-kind).
        Some(d) => input_tokens_for(&config, &d.target, &count),
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
    decision: &RouteDecision,
) -> Option<u64> {
    let provider = config.provider(&decision.target.provider)?;
    let url = count_tokens_url(provider)?;
    let mut req = req.clone();
    decision.apply(&mut req);
    strip_unsigned_thinking(&mut req);
    let body = serde_json::to_vec(&req).ok()?;
    // Counting needs no affinity: it goes to the first URL.
    let counting = Provider {
        api_base_url: url,
        replicas: Default::default(),
        ..provider.clone()
    };
    let timeout = Duration::from_millis(config.connect_timeout_ms.max(10_000));
    let answer = state
        .upstream
        .send(&counting, headers, Bytes::from(body), false, timeout, 0)
        .await
        .map_err(|e| tracing::debug!("count_tokens upstream failed, estimating: {}", e.failure))
        .ok()?;
    let read = crate::proxy::upstream::read_capped(
        answer,
        crate::proxy::upstream::MAX_COUNT_TOKENS_ANSWER_BYTES,
    );
    let body = tokio::time::timeout(timeout, read).await.ok()?.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    v.get("input_tokens")?.as_u64()
}
