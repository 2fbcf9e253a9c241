//! Anthropic-shaped errors: every failure the proxy reports, as an HTTP answer or as a
//! mid-stream `event: error`. Claude Code stops at once on a clear 4xx and retries 5xx
//! for minutes, so the status class matters as much as the message.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::wire::anthropic::{ErrorBody, StreamEvent, MAX_BODY_BYTES};
use super::wire::lines::FrameError;

/// Anthropic's error `type`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    InvalidRequest,
    Authentication,
    Permission,
    NotFound,
    RequestTooLarge,
    RateLimit,
    Api,
    Overloaded,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidRequest => "invalid_request_error",
            ErrorKind::Authentication => "authentication_error",
            ErrorKind::Permission => "permission_error",
            ErrorKind::NotFound => "not_found_error",
            ErrorKind::RequestTooLarge => "request_too_large",
            ErrorKind::RateLimit => "rate_limit_error",
            ErrorKind::Api => "api_error",
            ErrorKind::Overloaded => "overloaded_error",
        }
    }

    /// The error type Anthropic uses for an HTTP status (used to re-wrap upstream errors
    /// in the same class).
    pub fn for_status(status: StatusCode) -> ErrorKind {
        match status.as_u16() {
            401 => ErrorKind::Authentication,
            403 => ErrorKind::Permission,
            404 => ErrorKind::NotFound,
            413 => ErrorKind::RequestTooLarge,
            429 => ErrorKind::RateLimit,
            529 => ErrorKind::Overloaded,
            400..=499 => ErrorKind::InvalidRequest,
            _ => ErrorKind::Api,
        }
    }
}

/// A failure answered with `{"type":"error","error":{"type","message"}}`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}: {message}", kind.as_str())]
pub struct ProxyError {
    pub status: StatusCode,
    pub kind: ErrorKind,
    pub message: String,
}

impl ProxyError {
    pub fn new(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> Self {
        ProxyError {
            status,
            kind,
            message: message.into(),
        }
    }

    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorKind::InvalidRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, ErrorKind::NotFound, message)
    }

    /// The proxy itself failed to reach or understand the upstream.
    pub fn bad_gateway(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_GATEWAY, ErrorKind::Api, message)
    }

    /// The 413 for a request body over [`MAX_BODY_BYTES`].
    pub fn request_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::RequestTooLarge,
            format!(
                "request body is larger than {} MB",
                MAX_BODY_BYTES / (1024 * 1024)
            ),
        )
    }

    /// The upstream's stream outgrew a limit of the SSE decoder.
    pub fn oversize_stream(e: FrameError) -> Self {
        Self::bad_gateway(format!("the upstream sent {e}; the answer is abandoned"))
    }

    /// The upstream answered `status`; keep its class and its message.
    pub fn from_upstream_status(status: StatusCode, message: impl Into<String>) -> Self {
        let status = if status.is_client_error() || status.is_server_error() {
            status
        } else {
            // A 1xx/3xx answer is a broken upstream as far as the client is concerned.
            StatusCode::BAD_GATEWAY
        };
        Self::new(status, ErrorKind::for_status(status), message)
    }

    /// The JSON body.
    pub fn body(&self) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Envelope<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            error: ErrorBody<'a>,
        }
        serde_json::to_vec(&Envelope {
            kind: "error",
            error: ErrorBody {
                kind: self.kind.as_str(),
                message: &self.message,
            },
        })
        .expect("error bodies always serialise")
    }

    /// The same error as an SSE `event: error`, for failures after the stream began.
    pub fn write_sse(&self, out: &mut Vec<u8>) {
        StreamEvent::Error {
            error: ErrorBody {
                kind: self.kind.as_str(),
                message: &self.message,
            },
        }
        .write_sse(out);
    }
}

impl IntoResponse for ProxyError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            self.body(),
        )
            .into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_and_event_have_anthropic_shape() {
        let e = ProxyError::invalid_request("messages: missing field");
        let v: serde_json::Value = serde_json::from_slice(&e.body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "error", "error": {"type": "invalid_request_error", "message": "messages: missing field"}})
        );
        let mut out = Vec::new();
        e.write_sse(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"messages: missing field\"}}\n\n"
        );
    }

    #[test]
    fn upstream_status_keeps_its_class() {
        let e = ProxyError::from_upstream_status(StatusCode::INTERNAL_SERVER_ERROR, "boom");
        assert_eq!(
            (e.status, e.kind),
            (StatusCode::INTERNAL_SERVER_ERROR, ErrorKind::Api)
        );
        let e = ProxyError::from_upstream_status(StatusCode::UNPROCESSABLE_ENTITY, "bad");
        assert_eq!(e.kind, ErrorKind::InvalidRequest);
        let e = ProxyError::from_upstream_status(StatusCode::TOO_MANY_REQUESTS, "slow");
        assert_eq!(e.kind, ErrorKind::RateLimit);
        let e = ProxyError::from_upstream_status(StatusCode::FOUND, "moved");
        assert_eq!(e.status, StatusCode::BAD_GATEWAY);
    }
}
