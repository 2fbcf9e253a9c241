//! The axum app: shared state, the router and its layers, and the listener.
//!
//! One `POST /v1/messages` goes: the checks every request meets ([`checks`]), the API
//! layers (API key, requests in flight, declared size; see [`layers`]) →
//! [`messages`]: parse once → [`plan`](crate::proxy::plan) (route, context guard,
//! fallback chain) → [`fallback::run_chain`](crate::proxy::fallback::run_chain) over
//! [`attempt`]s until one answers or fails in a way no other target can fix. An attempt
//! is committed once the upstream answered 2xx: from then on failures reach the client
//! as an SSE `event: error` (streams: [`translated`], [`passthrough`]) or a 502, never
//! as a fallback. [`finish`] writes the one log line and ledger row of every request.
//!
//! Endpoints ([`handlers`]): `POST /v1/messages` (any query string),
//! `POST /v1/messages/count_tokens`, `GET /v1/models`, `GET /v1/ccr/usage` (a client's
//! own use), `GET /health`, `GET|HEAD /`, and
//! with [`app_with_dashboard`] the dashboard's routes under `/ui`.
//! Anything else is a 404 in Anthropic's error shape.

mod attempt;
mod body;
mod checks;
mod conns;
mod context;
mod finish;
mod handlers;
pub mod layers;
mod limits;
mod listen;
mod messages;
mod offload;
mod passthrough;
mod refusals;
mod request;
mod spliced;
mod translated;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::{get, post};

use super::reload::LiveConfig;
use super::tokens::TokenEstimator;
use super::upstream::Upstream;
use crate::ledger::LedgerHandle;

pub use crate::proxy::wire::anthropic::MAX_BODY_BYTES;
pub use listen::{serve, serve_with, ConnLimits, HEADER_READ_TIMEOUT, READ_BUFFER_MAX};

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
    /// Per-session route and quality memory (the status line, the quality fallback).
    pub sessions: crate::proxy::sessions::Sessions,
    /// Each conversation's context-editing clear point ([`crate::proxy::context_edit`]).
    pub clear_memory: crate::proxy::context_edit::ClearMemory,
    /// What each local model can take, per provider URL and model.
    pub capabilities: crate::proxy::capabilities::CapabilityCache,
    /// Per-client day counters and session use (team mode's `Clients`).
    pub clients: crate::proxy::clients::ClientUsage,
    /// API requests being served ([`layers`]: the excess get a 429). Sized from
    /// `MAX_REQUESTS_IN_FLIGHT` at start; a reload does not resize it.
    in_flight: Arc<tokio::sync::Semaphore>,
    /// Wrong API keys, per client ([`layers`]).
    auth_throttle: crate::proxy::auth_throttle::AuthThrottle,
    /// For `/health`'s uptime.
    started: Instant,
    /// `/v1/messages` requests finished (answered, failed or cancelled), for `/health`.
    requests: AtomicU64,
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
        let in_flight = config.current().max_requests_in_flight;
        Ok(Arc::new(AppState {
            config,
            upstream: Upstream::new(connect)?,
            ledger,
            estimator: TokenEstimator::default(),
            options,
            sessions: Default::default(),
            clear_memory: Default::default(),
            capabilities: Default::default(),
            clients: Default::default(),
            in_flight: Arc::new(tokio::sync::Semaphore::new(in_flight)),
            auth_throttle: Default::default(),
            started: Instant::now(),
            requests: AtomicU64::new(0),
            message_counter: AtomicU64::new(0),
        }))
    }

    fn next_message_id(&self, started_at_ms: i64) -> String {
        let n = self.message_counter.fetch_add(1, Ordering::Relaxed);
        format!("msg_ccr{started_at_ms:x}{n:04x}")
    }
}

/// The app, ready for [`serve`]. The API routes sit behind [`layers::api`]; `/`,
/// `/health` and the 404 fallback answer without a key.
pub fn app(state: Arc<AppState>) -> axum::Router {
    app_with_dashboard(state, None)
}

/// [`app`] plus, when given, the dashboard's routes at `/ui` (`crate::ui::router`; it
/// has its own session guard). The caller builds them, so the proxy does not depend on
/// the dashboard, which reads the proxy's config and errors. Layers meant for every
/// request go after the merge, so they cover the dashboard too.
pub fn app_with_dashboard(state: Arc<AppState>, dashboard: Option<axum::Router>) -> axum::Router {
    let api = axum::Router::new()
        .route("/v1/messages", post(messages::messages))
        .route("/v1/messages/count_tokens", post(handlers::count_tokens))
        .route("/v1/models", get(handlers::models))
        .route("/v1/ccr/sessions/{id}", get(handlers::session))
        .route("/v1/ccr/session-token", post(handlers::session_token))
        .route("/v1/ccr/usage", get(handlers::usage));
    let api = layers::api(api, &state);
    let state_for_checks = Arc::clone(&state);
    let app = axum::Router::new()
        .merge(api)
        .route("/health", get(handlers::health))
        .route("/", get(handlers::root))
        .fallback(handlers::not_found)
        .with_state(state);
    let app = match dashboard {
        Some(ui) => app.merge(ui),
        None => app,
    };
    // Outermost, so it runs before everything else, dashboard and 404 included.
    app.layer(axum::middleware::from_fn_with_state(
        state_for_checks,
        checks::request_checks,
    ))
}
