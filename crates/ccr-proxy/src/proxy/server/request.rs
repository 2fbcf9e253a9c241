//! Reading a Messages request: the one parse (of the body [`super::body`] read), and
//! the session id the ledger groups by.

use axum::http::HeaderMap;

use crate::proxy::error::ProxyError;
use crate::proxy::wire::anthropic::MessagesRequest;

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

/// Longest session id kept as sent. Claude Code's are UUIDs; anything longer is
/// replaced by a hash so a hostile `user_id` cannot bloat the ledger or the log.
pub(super) const MAX_SESSION_ID_BYTES: usize = 128;

/// Claude Code's session: its header, else the session in `metadata.user_id` (a JSON
/// object in 2.1, `…_session_<id>` before); at most [`MAX_SESSION_ID_BYTES`].
pub(super) fn session_id(req: &MessagesRequest, headers: &HeaderMap) -> Option<String> {
    raw_session_id(req, headers).map(bounded)
}

fn raw_session_id(req: &MessagesRequest, headers: &HeaderMap) -> Option<String> {
    if let Some(h) = headers
        .get("x-claude-code-session-id")
        .and_then(|v| v.to_str().ok())
    {
        return Some(h.to_owned());
    }
    let user_id = req.metadata.as_ref()?.get("user_id")?.as_str()?;
    if user_id.len() > 64 * MAX_SESSION_ID_BYTES {
        // Far too long to be Claude Code's JSON: not worth parsing.
        return Some(user_id.to_owned());
    }
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

/// A session id as the proxy stores it (for looking one up).
pub(super) fn bounded_session_id(id: &str) -> String {
    bounded(id.to_owned())
}

/// `id`, or for one over the limit a stable stand-in (`h-` and a 64-bit FNV-1a hash), so
/// the same long id still groups its requests.
fn bounded(id: String) -> String {
    if id.len() <= MAX_SESSION_ID_BYTES {
        return id;
    }
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(id.as_bytes());
    format!("h-{:016x}", hasher.finish())
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

    #[test]
    fn a_long_session_id_becomes_a_stable_hash() {
        let none = HeaderMap::new();
        let long = "s".repeat(10_000);
        let id = session_id(&req(&long), &none).unwrap();
        assert_eq!(id.len(), 18, "{id}");
        assert_eq!(session_id(&req(&long), &none).unwrap(), id, "stable");
        let other = session_id(&req(&"t".repeat(10_000)), &none).unwrap();
        assert_ne!(other, id);
        let edge = "e".repeat(MAX_SESSION_ID_BYTES);
        assert_eq!(session_id(&req(&edge), &none).unwrap(), edge);
    }
}
