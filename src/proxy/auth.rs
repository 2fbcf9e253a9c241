//! The `APIKEY` check.
//!
//! When the config sets `APIKEY`, every request must present it, as Claude Code sends
//! it: `x-api-key` (from `ANTHROPIC_API_KEY`) or `Authorization: Bearer` (from
//! `ANTHROPIC_AUTH_TOKEN`). The comparison is constant-time so response timing does
//! not reveal how much of a guess was right. Presented keys are never logged.
//!
//! [`check_bind`] is the other half: the proxy refuses to listen beyond loopback
//! without a key, whether the host came from the config or from `--host`.

use http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::config::is_loopback_host;

/// Why a request was refused; answered as 401 `authentication_error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this proxy requires an API key: send the config's APIKEY as the x-api-key header or as Authorization: Bearer (ccr-setup code sets it for Claude Code)")]
    Missing,
    #[error("invalid API key: the x-api-key / Authorization: Bearer value does not match the config's APIKEY")]
    Invalid,
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
#[error("refusing to listen on {host}: it is reachable from other machines and no APIKEY is set, so anyone on the network could use your models and keys; set \"APIKEY\" in the config to a long random secret, or bind 127.0.0.1")]
pub struct UnsafeBind {
    pub host: String,
}

/// A non-loopback host needs an API key. Checked at start-up for the host actually
/// bound (the config's `HOST` or the `--host` override) and again on every reload, so
/// an edit cannot remove the key from an exposed proxy.
pub fn check_bind(host: &str, api_key: Option<&str>) -> Result<(), UnsafeBind> {
    if is_loopback_host(host) || api_key.is_some_and(|k| !k.is_empty()) {
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

    #[test]
    fn non_loopback_needs_a_key() {
        assert!(check_bind("127.0.0.1", None).is_ok());
        assert!(check_bind("localhost", None).is_ok());
        assert!(check_bind("::1", None).is_ok());
        assert!(check_bind("0.0.0.0", Some("k")).is_ok());
        let err = check_bind("0.0.0.0", None).unwrap_err().to_string();
        assert!(err.contains("0.0.0.0") && err.contains("APIKEY"), "{err}");
        assert!(check_bind("192.168.1.5", Some("")).is_err());
    }
}
