//! Reading a Messages request: the one parse (of the body [`super::body`] read), and
//! the session id the ledger groups by.

use axum::http::HeaderMap;

use crate::proxy::error::ProxyError;
use crate::proxy::wire::anthropic::MessagesRequest;

/// Parse once, naming the offending field on failure. The plain parse runs first:
/// tracking the path of every field cost 7% of a request's CPU, so only a body that
/// fails is parsed again, with the path, for the message.
pub(super) fn parse_request(bytes: &[u8]) -> Result<MessagesRequest, ProxyError> {
    let req: MessagesRequest = match serde_json::from_slice(bytes) {
        Ok(req) => req,
        Err(plain) => return Err(invalid_body(bytes, plain)),
    };
    if req.messages.is_empty() {
        return Err(ProxyError::invalid_request(
            "messages: at least one message is required",
        ));
    }
    Ok(req)
}

/// The error for a body that does not parse: the field it failed at, from a second
/// parse that tracks the path (the same parse, so it fails the same way).
fn invalid_body(bytes: &[u8], plain: serde_json::Error) -> ProxyError {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let (path, inner) = match serde_path_to_error::deserialize::<_, MessagesRequest>(de) {
        Err(e) => (e.path().to_string(), e.into_inner()),
        Ok(_) => (String::new(), plain),
    };
    if path == "." || path.is_empty() {
        ProxyError::invalid_request(format!("invalid request body: {inner}"))
    } else {
        ProxyError::invalid_request(format!("{path}: {inner}"))
    }
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

    /// The message names the field (or says the body is not JSON), as when every
    /// parse tracked the path; the plain parse only moved it off the success path.
    #[test]
    fn a_body_that_does_not_parse_is_named_by_the_path_parse() {
        let e = parse_request(br#"{"model":"m","max_tokens":"x","messages":[]}"#).unwrap_err();
        assert!(
            e.message.starts_with("max_tokens: invalid type: string"),
            "{}",
            e.message
        );
        let e = parse_request(br#"{"model":"m","messages":[{"role":"user","content":7}]}"#)
            .unwrap_err();
        assert!(
            e.message.starts_with("messages[0].content: "),
            "{}",
            e.message
        );
        let e = parse_request(br#"{"model":"#).unwrap_err();
        assert_eq!(
            e.message,
            "model: EOF while parsing a value at line 1 column 9"
        );
        let e = parse_request(b"not json").unwrap_err();
        assert_eq!(
            e.message,
            "invalid request body: expected ident at line 1 column 2"
        );
    }

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
