//! The `APIKEY` and client key checks.
//!
//! When the config sets `APIKEY` or `Clients`, every request must present a key, as
//! Claude Code sends it: `x-api-key` (from `ANTHROPIC_API_KEY`) or
//! `Authorization: Bearer` (from `ANTHROPIC_AUTH_TOKEN`). [`identify`] says who it is:
//! the admin (`APIKEY`, or a session token minted under it) or a named client (the
//! SHA-256 of the key matches a `Clients[].key_hash`). Comparisons are constant-time
//! and never stop at the first match, so response timing does not reveal how much of
//! a guess was right nor which client matched. Presented keys are never logged.
//!
//! [`check_bind`] is the other half: the proxy refuses to listen beyond loopback
//! without a key, whether the host came from the config or from `--host`.

use std::sync::Arc;

use http::HeaderMap;
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::config::{is_loopback_host, Config};

/// Why a request was refused; answered as 401 `authentication_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this proxy requires an API key: send the config's APIKEY or your client key as the x-api-key header or as Authorization: Bearer (ccr-setup code sets it for Claude Code)")]
    Missing,
    #[error("invalid API key: the x-api-key / Authorization: Bearer value does not match the config's APIKEY or any client key")]
    Invalid,
}

/// Who sent a request, once its key checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// No key is configured: a loopback proxy with one user, who owns everything.
    Open,
    /// The config's `APIKEY`, or a session token minted under it.
    Admin,
    /// A `Clients[]` entry, by name.
    Client(Arc<str>),
}

impl Caller {
    /// The client's name; None for the admin (the ledger's unnamed client).
    pub fn client_name(&self) -> Option<&str> {
        match self {
            Caller::Client(name) => Some(name),
            Caller::Open | Caller::Admin => None,
        }
    }

    /// Whether the caller may use the admin's routes (dashboard, session tokens).
    pub fn is_admin(&self) -> bool {
        !matches!(self, Caller::Client(_))
    }
}

/// The 403 message for a client key on an admin route.
pub const ADMIN_ONLY: &str = "a client key reaches only /v1/messages, /v1/messages/count_tokens, /v1/models and its own usage (/v1/ccr/usage); this needs the admin APIKEY";

/// Who presents the headers' key: the admin ([`check`]'s rules) or a named client.
/// With neither `APIKEY` nor `Clients` configured, everyone is [`Caller::Open`]. The
/// admin wins when a request carries both kinds of key.
pub fn identify(config: &Config, headers: &HeaderMap) -> Result<Caller, AuthError> {
    if !config.auth_required() {
        return Ok(Caller::Open);
    }
    let admin_key = config.api_key.as_deref().filter(|k| !k.is_empty());
    let admin = match admin_key {
        Some(key) => check(Some(key), headers),
        None => Err(presence(headers)),
    };
    match (admin, client_of(config, headers)) {
        (Ok(()), _) => Ok(Caller::Admin),
        (Err(_), Some(name)) => Ok(Caller::Client(name)),
        (Err(e), None) => Err(e),
    }
}

fn presence(headers: &HeaderMap) -> AuthError {
    if presented_keys(headers).next().is_none() {
        AuthError::Missing
    } else {
        AuthError::Invalid
    }
}

/// The client whose `key_hash` is the SHA-256 of a presented key. Every presented key
/// is compared with every client's hash, whatever matched before.
fn client_of(config: &Config, headers: &HeaderMap) -> Option<Arc<str>> {
    if config.clients.is_empty() {
        return None;
    }
    // 0: none; i + 1: clients[i].
    let mut found = 0u32;
    for key in presented_keys(headers) {
        let hash = crate::config::client_keys::hash_key(key);
        for (i, client) in config.clients.iter().enumerate() {
            let eq = hash.as_slice().ct_eq(client.key_hash.as_slice());
            found.conditional_assign(&(i as u32 + 1), eq);
        }
    }
    let index = (found as usize).checked_sub(1)?;
    Some(Arc::from(config.clients[index].name.as_str()))
}

/// Check a request's headers against the configured key, or a session token minted
/// under it ([`crate::proxy::proof`], what `ccr-setup code` gives Claude Code). No key
/// (or an empty one) configured means no check.
pub fn check(expected: Option<&str>, headers: &HeaderMap) -> Result<(), AuthError> {
    check_with(expected, headers, true)
}

/// [`check`] accepting the key itself only: what may mint a session token.
pub fn check_key_only(expected: Option<&str>, headers: &HeaderMap) -> Result<(), AuthError> {
    check_with(expected, headers, false)
}

fn check_with(expected: Option<&str>, headers: &HeaderMap, tokens: bool) -> Result<(), AuthError> {
    let Some(expected) = expected.filter(|k| !k.is_empty()) else {
        return Ok(());
    };
    let mut presented = presented_keys(headers).peekable();
    if presented.peek().is_none() {
        return Err(AuthError::Missing);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Compare every candidate (at most two) so timing does not tell which header held
    // the match either.
    let mut ok = subtle::Choice::from(0);
    for key in presented {
        ok |= key.as_bytes().ct_eq(expected.as_bytes());
        if tokens && crate::proxy::proof::token_valid(expected, key, now) {
            ok |= subtle::Choice::from(1);
        }
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(AuthError::Invalid)
    }
}

/// The non-empty keys a request carries.
fn presented_keys(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    let x_api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim);
    let bearer = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    x_api_key
        .into_iter()
        .chain(bearer)
        .filter(|k| !k.is_empty())
}

/// Why the proxy refuses to listen on an address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("refusing to listen on {host}: it is reachable from other machines and neither APIKEY nor Clients is set, so anyone on the network could use your models and keys; set \"APIKEY\" in the config to a long random secret, add client keys (`ccr-setup clients add NAME`), or bind 127.0.0.1")]
pub struct UnsafeBind {
    pub host: String,
}

/// A non-loopback host needs an API key or client keys ([`Config::auth_required`]).
/// Checked at start-up for the host actually bound (the config's `HOST` or the
/// `--host` override) and again on every reload, so an edit cannot remove the keys
/// from an exposed proxy.
pub fn check_bind(host: &str, config: &Config) -> Result<(), UnsafeBind> {
    if is_loopback_host(host) || config.auth_required() {
        Ok(())
    } else {
        Err(UnsafeBind {
            host: host.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn no_key_configured_lets_everything_through() {
        assert_eq!(check(None, &headers(&[])), Ok(()));
        assert_eq!(check(Some(""), &headers(&[])), Ok(()));
    }

    #[test]
    fn accepts_x_api_key_or_bearer() {
        let key = Some("s3cret-key");
        assert_eq!(check(key, &headers(&[("x-api-key", "s3cret-key")])), Ok(()));
        assert_eq!(
            check(key, &headers(&[("authorization", "Bearer s3cret-key")])),
            Ok(())
        );
        assert_eq!(
            check(key, &headers(&[("authorization", "bearer  s3cret-key ")])),
            Ok(())
        );
        // Claude Code with ANTHROPIC_AUTH_TOKEN may also send an empty x-api-key.
        assert_eq!(
            check(
                key,
                &headers(&[("x-api-key", ""), ("authorization", "Bearer s3cret-key")])
            ),
            Ok(())
        );
        // A wrong x-api-key next to the right bearer still passes: either may carry it.
        assert_eq!(
            check(
                key,
                &headers(&[
                    ("x-api-key", "other"),
                    ("authorization", "Bearer s3cret-key")
                ])
            ),
            Ok(())
        );
    }

    #[test]
    fn refuses_missing_and_wrong_keys() {
        let key = Some("s3cret-key");
        assert_eq!(check(key, &headers(&[])), Err(AuthError::Missing));
        assert_eq!(
            check(key, &headers(&[("x-api-key", "")])),
            Err(AuthError::Missing)
        );
        assert_eq!(
            check(key, &headers(&[("x-api-key", "s3cret-ke")])),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            check(key, &headers(&[("x-api-key", "s3cret-key2")])),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            check(key, &headers(&[("authorization", "Basic s3cret-key")])),
            Err(AuthError::Missing)
        );
        // The message never echoes what was presented.
        let msg = check(key, &headers(&[("x-api-key", "guess-123")]))
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("guess-123") && !msg.contains("s3cret"));
    }

    #[test]
    fn session_tokens_pass_but_cannot_mint_more() {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = crate::proxy::proof::mint_token("s3cret-key", now).unwrap();
        let bearer = format!("Bearer {token}");
        let h = headers(&[("authorization", bearer.as_str())]);
        assert_eq!(check(Some("s3cret-key"), &h), Ok(()));
        assert_eq!(check(Some("another-key"), &h), Err(AuthError::Invalid));
        assert_eq!(
            check_key_only(Some("s3cret-key"), &h),
            Err(AuthError::Invalid)
        );
        let expired = crate::proxy::proof::mint_token("s3cret-key", 1_000).unwrap();
        let h = headers(&[("x-api-key", expired.as_str())]);
        assert_eq!(check(Some("s3cret-key"), &h), Err(AuthError::Invalid));
    }

    fn config(api_key: Option<&str>, clients: &[(&str, &str)]) -> Config {
        use crate::config::client_keys::{format_hash, hash_key};
        let clients: Vec<serde_json::Value> = clients
            .iter()
            .map(|(n, k)| serde_json::json!({"name": n, "key_hash": format_hash(&hash_key(k))}))
            .collect();
        let doc = serde_json::json!({
            "Providers": [{"name": "o", "api_base_url": "http://127.0.0.1:1/v1/chat/completions", "models": ["m"]}],
            "Router": {"default": "o,m"},
            "APIKEY": api_key,
            "Clients": clients,
        });
        crate::config::ConfigFile::new(std::path::Path::new("/t/config.json"), doc)
            .resolve_with(&|_| None)
            .unwrap()
    }

    #[test]
    fn non_loopback_needs_a_key() {
        let open = config(None, &[]);
        assert!(check_bind("127.0.0.1", &open).is_ok());
        assert!(check_bind("localhost", &open).is_ok());
        assert!(check_bind("::1", &open).is_ok());
        assert!(check_bind("0.0.0.0", &config(Some("k"), &[])).is_ok());
        assert!(check_bind("0.0.0.0", &config(None, &[("alice", "ccr_a")])).is_ok());
        let err = check_bind("0.0.0.0", &open).unwrap_err().to_string();
        assert!(err.contains("0.0.0.0") && err.contains("APIKEY"), "{err}");
        assert!(check_bind("192.168.1.5", &config(Some(""), &[])).is_err());
    }

    #[test]
    fn callers_are_told_apart() {
        let cfg = config(Some("admin-key"), &[("alice", "ccr_a"), ("bob", "ccr_b")]);
        let who = |h: &[(&'static str, &str)]| identify(&cfg, &headers(h));
        assert_eq!(who(&[("x-api-key", "admin-key")]), Ok(Caller::Admin));
        assert_eq!(
            who(&[("x-api-key", "ccr_b")]),
            Ok(Caller::Client(Arc::from("bob")))
        );
        assert_eq!(
            who(&[("authorization", "Bearer ccr_a")]),
            Ok(Caller::Client(Arc::from("alice")))
        );
        assert_eq!(
            who(&[
                ("x-api-key", "ccr_a"),
                ("authorization", "Bearer admin-key")
            ]),
            Ok(Caller::Admin)
        );
        assert_eq!(who(&[("x-api-key", "ccr_c")]), Err(AuthError::Invalid));
        assert_eq!(who(&[]), Err(AuthError::Missing));
        // Clients only: the APIKEY check is skipped, client keys still work.
        let cfg = config(None, &[("alice", "ccr_a")]);
        assert_eq!(
            identify(&cfg, &headers(&[("x-api-key", "ccr_a")])),
            Ok(Caller::Client(Arc::from("alice")))
        );
        assert_eq!(
            identify(&cfg, &headers(&[("x-api-key", "x")])),
            Err(AuthError::Invalid)
        );
        assert_eq!(
            identify(&config(None, &[]), &headers(&[])),
            Ok(Caller::Open)
        );
        // A session token minted under the APIKEY stays the admin's.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let token = crate::proxy::proof::mint_token("admin-key", now).unwrap();
        let cfg = config(Some("admin-key"), &[("alice", "ccr_a")]);
        assert_eq!(
            identify(&cfg, &headers(&[("x-api-key", token.as_str())])),
            Ok(Caller::Admin)
        );
    }
}
