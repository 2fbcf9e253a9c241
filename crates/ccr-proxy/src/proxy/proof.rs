//! Proving to a client that the proxy on the port holds the config's `APIKEY`, before
//! the client sends it, and the per-session tokens `code` gives Claude Code instead.
//!
//! `/health`'s shape is public, so a program another local user started on the port
//! first (before login, after `stop`, after a crash) could answer it and collect the
//! key. So a client sends a random nonce (`GET /health?nonce=…`, no key) and the proxy
//! answers with `HMAC-SHA256(SHA-256(APIKEY), CONTEXT ‖ nonce)`; only a holder of the
//! key can, and nothing on the wire lets the squatter learn it.
//!
//! A session token is `ccrt1.<random>.<expiry>.<mac>`, the MAC under the same derived
//! key: the proxy accepts it without keeping state, and a squatter that collects one
//! (Claude Code sends it with every request) holds a credential that expires and that
//! cannot be turned back into the key.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

const HEALTH_CONTEXT: &[u8] = b"ccr-setup /health proof v1\n";
const TOKEN_CONTEXT: &[u8] = b"ccr-setup session token v1\n";
const TOKEN_PREFIX: &str = "ccrt1.";

/// How long a session token is accepted: a working day and a half of one Claude Code
/// session; `code` mints a new one at each start.
pub const TOKEN_LIFETIME_SECS: u64 = 36 * 3600;

/// Longest nonce the proxy answers (the client sends 32 hex characters).
pub const NONCE_MAX: usize = 128;

fn mac(key: &str, context: &[u8], message: &[u8]) -> HmacSha256 {
    let derived = Sha256::digest(key.as_bytes());
    let mut mac = HmacSha256::new_from_slice(&derived).expect("HMAC takes any key length");
    mac.update(context);
    mac.update(message);
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A nonce is short printable ASCII (it is echoed into the MAC only).
pub fn valid_nonce(nonce: &str) -> bool {
    !nonce.is_empty()
        && nonce.len() <= NONCE_MAX
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The proxy's answer to `nonce`.
pub fn health_proof(key: &str, nonce: &str) -> String {
    hex(&mac(key, HEALTH_CONTEXT, nonce.as_bytes())
        .finalize()
        .into_bytes())
}

/// Whether `proof` answers `nonce` under `key` (constant-time).
pub fn verify_health_proof(key: &str, nonce: &str, proof: &str) -> bool {
    unhex(proof).is_some_and(|p| {
        mac(key, HEALTH_CONTEXT, nonce.as_bytes())
            .verify_slice(&p)
            .is_ok()
    })
}

/// A random nonce for a client (32 hex characters).
pub fn new_nonce() -> Option<String> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(hex(&bytes))
}

/// A session token valid until `now_secs + TOKEN_LIFETIME_SECS`.
pub fn mint_token(key: &str, now_secs: u64) -> Option<String> {
    let mut id = [0u8; 16];
    getrandom::getrandom(&mut id).ok()?;
    let body = format!("{}.{}", hex(&id), now_secs + TOKEN_LIFETIME_SECS);
    let tag = hex(&mac(key, TOKEN_CONTEXT, body.as_bytes())
        .finalize()
        .into_bytes());
    Some(format!("{TOKEN_PREFIX}{body}.{tag}"))
}

/// Whether `token` was minted under `key` and has not expired (constant-time MAC check).
pub fn token_valid(key: &str, token: &str, now_secs: u64) -> bool {
    let Some(rest) = token.strip_prefix(TOKEN_PREFIX) else {
        return false;
    };
    let Some((body, tag)) = rest.rsplit_once('.') else {
        return false;
    };
    let Some(expiry) = body
        .split_once('.')
        .and_then(|(_, e)| e.parse::<u64>().ok())
    else {
        return false;
    };
    let Some(tag) = unhex(tag) else {
        return false;
    };
    let genuine = mac(key, TOKEN_CONTEXT, body.as_bytes())
        .verify_slice(&tag)
        .is_ok();
    genuine && now_secs < expiry
}

/// Whether `text` is shaped like a session token (so a refusal can say it expired).
pub fn looks_like_token(text: &str) -> bool {
    text.starts_with(TOKEN_PREFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_key_holder_can_answer_a_nonce() {
        let nonce = new_nonce().unwrap();
        assert!(valid_nonce(&nonce));
        let proof = health_proof("the-key", &nonce);
        assert!(verify_health_proof("the-key", &nonce, &proof));
        assert!(!verify_health_proof("other-key", &nonce, &proof));
        assert!(!verify_health_proof("the-key", "another-nonce", &proof));
        assert!(!verify_health_proof("the-key", &nonce, "zz"));
        assert!(!valid_nonce("a b"));
        assert!(!valid_nonce(&"a".repeat(NONCE_MAX + 1)));
    }

    #[test]
    fn tokens_verify_expire_and_cannot_be_forged() {
        let now = 1_800_000_000;
        let token = mint_token("the-key", now).unwrap();
        assert!(looks_like_token(&token));
        assert!(token_valid("the-key", &token, now + 60));
        assert!(!token_valid("the-key", &token, now + TOKEN_LIFETIME_SECS));
        assert!(!token_valid("other-key", &token, now + 60));
        // A later expiry written into the token breaks its MAC.
        let (head, tag) = token.rsplit_once('.').unwrap();
        let (id_part, _) = head.rsplit_once('.').unwrap();
        let forged = format!("{id_part}.{}.{tag}", now + 10 * TOKEN_LIFETIME_SECS);
        assert!(!token_valid(
            "the-key",
            &forged,
            now + TOKEN_LIFETIME_SECS + 1
        ));
        assert!(!token_valid("the-key", "the-key", now));
    }
}
