//! The tower layers in front of the API routes (`/v1/messages`, `count_tokens`,
//! `/v1/models`), in the order a request meets them: the API key check, a body whose
//! declared length is over the limit refused before it is read, then the limit the
//! handlers' body extractor applies while reading (for bodies without a length).
//!
//! Request checks that must refuse strangers before anything else (Host, Origin,
//! Content-Type, a limit on requests in flight) go at the top of the `ServiceBuilder`
//! in [`api`], one `.layer(…)` each, answering with a [`ProxyError`] so every refusal
//! stays Anthropic-shaped.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tower::ServiceBuilder;

use super::AppState;
use crate::proxy::auth;
use crate::proxy::error::{ErrorKind, ProxyError};

/// Anthropic's own request size limit.
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Wrap the API routes in their layers (outermost first).
pub fn api(
    routes: axum::Router<Arc<AppState>>,
    state: &Arc<AppState>,
) -> axum::Router<Arc<AppState>> {
    routes.route_layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn_with_state(
                Arc::clone(state),
                require_api_key,
            ))
            .layer(middleware::from_fn(refuse_declared_oversize))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
    )
}

/// With `APIKEY` set, the request must carry it ([`auth::check`], constant-time).
/// Refusals are logged, not recorded in the ledger: it counts the user's own use.
async fn require_api_key(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let config = state.config.current();
    match auth::check(config.api_key.as_deref(), req.headers()) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            tracing::warn!("{} {} refused: {e}", req.method(), req.uri().path());
            ProxyError::new(
                StatusCode::UNAUTHORIZED,
                ErrorKind::Authentication,
                e.to_string(),
            )
            .into_response()
        }
    }
}

/// A `Content-Length` over [`MAX_BODY_BYTES`] is answered at once, so the client does
/// not upload 32 MB only to be refused (and the connection is not held meanwhile).
async fn refuse_declared_oversize(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return too_large().into_response();
    }
    next.run(req).await
}

/// The 413 for a body over [`MAX_BODY_BYTES`].
pub(super) fn too_large() -> ProxyError {
    ProxyError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::RequestTooLarge,
        format!(
            "request body is larger than {} MB",
            MAX_BODY_BYTES / (1024 * 1024)
        ),
    )
}
