//! The gate in front of the API routes (`/v1/messages`, `count_tokens`,
//! `/v1/models`): one middleware making, in this order, the API key check, the limit
//! on requests in flight (429 with `retry-after`), and the refusal of a body whose
//! declared length is over the limit before it is read. The handlers then read the
//! body under the same limit and the JSON shape limits ([`super::body`]).
//!
//! Before all of these, app-wide, the Host, Origin and Content-Type checks
//! ([`super::checks`]). Every refusal is a [`ProxyError`], so it stays Anthropic-shaped.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::proxy::error::{ErrorKind, ProxyError};
use crate::proxy::wire::anthropic::MAX_BODY_BYTES;
use crate::proxy::{auth, auth_throttle};

/// Wrap the API routes in their gate ([`api_gate`]).
pub fn api(
    routes: axum::Router<Arc<AppState>>,
    state: &Arc<AppState>,
) -> axum::Router<Arc<AppState>> {
    routes.route_layer(middleware::from_fn_with_state(Arc::clone(state), api_gate))
}

/// The three checks of an API request, in order, as one middleware: each layer of
/// its own cost a boxed future, a clone of the inner service and a move of the
/// request per request, a few percent of a small request's CPU.
///
/// 1. The API key ([`check_api_key`]).
/// 2. At most `MAX_REQUESTS_IN_FLIGHT` API requests at once: each holds its body, its
///    parse and an upstream connection, so without a bound a burst can take any
///    amount of memory. A request holds its slot until its answer (a whole stream)
///    has been sent.
/// 3. A `Content-Length` over [`MAX_BODY_BYTES`] is answered at once, so the client
///    does not upload 32 MB only to be refused (and the connection is not held
///    meanwhile).
async fn api_gate(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    if let Some(refusal) = check_api_key(&state, &mut req) {
        return refusal;
    }
    let Ok(permit) = Arc::clone(&state.in_flight).try_acquire_owned() else {
        super::refusals::log(
            req.method(),
            req.uri().path(),
            "too many requests in flight",
        );
        let mut resp = ProxyError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::RateLimit,
            "the proxy is serving as many requests as MAX_REQUESTS_IN_FLIGHT allows; retry shortly",
        )
        .into_response();
        resp.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        return resp;
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return ProxyError::request_too_large().into_response();
    }
    next.run(req).await.map(|inner| {
        Body::new(Guarded {
            inner,
            _guard: permit,
        })
    })
}

/// With `APIKEY` or `Clients` set, the request must carry a key ([`auth::identify`],
/// constant-time), and a client that sent too many wrong keys waits
/// ([`auth_throttle`]). Who it is ([`auth::Caller`]) goes into the request's
/// extensions for the handlers. Refusals are logged, not recorded in the ledger: it
/// counts the users' own use. Returns the refusal, if any.
fn check_api_key(state: &AppState, req: &mut Request) -> Option<Response> {
    let config = state.config.current();
    if !config.auth_required() {
        req.extensions_mut().insert(auth::Caller::Open);
        return None;
    }
    let client = || {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0);
        auth_throttle::client_key(peer, req.headers())
    };
    let now = Instant::now();
    // The client's name is worked out only when some client has failed lately.
    let named = state.auth_throttle.tracking().then(client);
    if let Some(wait) = named
        .as_deref()
        .and_then(|client| state.auth_throttle.blocked(client, now))
    {
        super::refusals::log(req.method(), req.uri().path(), "too many wrong API keys");
        let mut resp = ProxyError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorKind::RateLimit,
            "too many requests with a wrong API key from this client; wait, then send the config's APIKEY or your client key",
        )
        .into_response();
        let secs = wait.as_secs().max(1).to_string();
        if let Ok(v) = header::HeaderValue::from_str(&secs) {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return Some(resp);
    }
    match auth::identify(&config, req.headers()) {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            None
        }
        Err(e) => {
            state
                .auth_throttle
                .failed(&named.unwrap_or_else(client), now);
            super::refusals::log(req.method(), req.uri().path(), &e.to_string());
            Some(
                ProxyError::new(
                    StatusCode::UNAUTHORIZED,
                    ErrorKind::Authentication,
                    e.to_string(),
                )
                .into_response(),
            )
        }
    }
}

/// A response body holding `guard` until it is dropped (sent or abandoned), keeping
/// the inner body's length so a JSON answer keeps `Content-Length`: an in-flight slot
/// here, a connection's busy mark in [`super::listen`].
pub(super) struct Guarded<G> {
    pub inner: Body,
    pub _guard: G,
}

impl<G: Send + Unpin + 'static> http_body::Body for Guarded<G> {
    type Data = bytes::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
