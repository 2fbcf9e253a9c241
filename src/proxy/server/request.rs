//! Reading a Messages request: the body (under the layers' limit), the one parse, and
//! the session id the ledger groups by.

use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use bytes::Bytes;

use crate::proxy::anthropic::MessagesRequest;
use crate::proxy::error::ProxyError;

/// The body axum read under [`DefaultBodyLimit`](axum::extract::DefaultBodyLimit), or
/// the Anthropic-shaped reason it could not.
pub(super) fn body_bytes(body: Result<Bytes, BytesRejection>) -> Result<Bytes, ProxyError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            super::layers::too_large()
        } else {
            ProxyError::invalid_request(format!("could not read the request body: {e}"))
        }
    })
}

/// Parse once, naming the offending field on failure.
pub(super) fn parse_request(bytes: &[u8]) -> Result<MessagesRequest, ProxyError> {
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

/// Claude Code's session: its header, else the session in `metadata.user_id` (a JSON
/// object in 2.1, `…_session_<id>` before).
pub(super) fn session_id(req: &MessagesRequest, headers: &HeaderMap) -> Option<String> {
    if let Some(h) = headers
        .get("x-claude-code-session-id")
        .and_then(|v| v.to_str().ok())
    {
        return Some(h.to_owned());
    }
    let user_id = req.metadata.as_ref()?.get("user_id")?.as_str()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

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
