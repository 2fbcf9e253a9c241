//! The answers of team mode's checks: a client's daily limit (429) and a client key on
//! an admin route (403), both Anthropic-shaped.
//!
//! A limit's 429 carries `x-should-retry: false`: the Anthropic SDK in Claude Code
//! retries a 429 (for minutes, with back-off) unless this header says not to, and a
//! limit does not lift before the day ends.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::proxy::auth::{Caller, ADMIN_ONLY};
use crate::proxy::clients::Refusal;
use crate::proxy::error::{ErrorKind, ProxyError};

/// The header the Anthropic SDK reads before deciding to retry.
pub const SHOULD_RETRY: &str = "x-should-retry";

/// The 429 for `refusal`, logged (rate-limited) as any refusal.
pub(super) fn over_limit(refusal: &Refusal, caller: &Caller, path: &str) -> Response {
    let client = caller.client_name().unwrap_or("-");
    let message = refusal.message(client);
    super::refusals::log(&axum::http::Method::POST, path, &message);
    let mut resp = ProxyError::new(StatusCode::TOO_MANY_REQUESTS, ErrorKind::RateLimit, message)
        .into_response();
    resp.headers_mut()
        .insert(SHOULD_RETRY, HeaderValue::from_static("false"));
    resp
}

/// The 403 for a client key on a route that needs the admin `APIKEY`.
pub(super) fn admin_only() -> Response {
    ProxyError::new(StatusCode::FORBIDDEN, ErrorKind::Permission, ADMIN_ONLY).into_response()
}

/// Who the API layer said sent the request (the layer always sets it; a route outside
/// it would see the admin's view only without a key configured, so default to that).
pub(super) fn caller(ext: Option<axum::Extension<Caller>>) -> Caller {
    ext.map_or(Caller::Open, |axum::Extension(c)| c)
}
