//! Client keys (`Clients[].key_hash`): how a key looks, how it is hashed, and how the
//! hash is written in the config.
//!
//! A key is `ccr_` + 43 base64url characters: 32 bytes (256 bits) from the operating
//! system's random source. The config stores only `sha256:<64 hex>` of the whole key.
//! A fast, unsalted hash is right here: salts and slow hashes (bcrypt, argon2) protect
//! guessable passwords, and nobody can guess among 2^256 random keys, so SHA-256 is
//! as strong as any of them while costing the proxy well under a microsecond per check.

use sha2::{Digest, Sha256};

/// What every client key starts with, so a leaked one is recognisable (secret scanners,
/// logs).
pub const KEY_PREFIX: &str = "ccr_";

/// What a `key_hash` value starts with.
pub const HASH_PREFIX: &str = "sha256:";

/// A new client key, or None when the system has no randomness to give.
pub fn new_client_key() -> Option<String> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(format!("{KEY_PREFIX}{}", base64url(&bytes)))
}

/// Unpadded base64url (RFC 4648 §5): the key stays one shell word and URL-safe.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// SHA-256 of a presented key.
pub fn hash_key(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// `sha256:<64 lowercase hex>`, as the config stores it.
pub fn format_hash(hash: &[u8; 32]) -> String {
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    format!("{HASH_PREFIX}{hex}")
}

/// Read a `key_hash` value; None unless it is `sha256:` and 64 hex digits.
pub fn parse_hash(text: &str) -> Option<[u8; 32]> {
    let hex = text.trim().strip_prefix(HASH_PREFIX)?;
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// A client name: 1 to 64 letters, digits, `.`, `_` or `-` (it goes into ledger rows,
/// log lines and JSON as is).
pub fn valid_client_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_hash_round_trips() {
        let a = new_client_key().unwrap();
        let b = new_client_key().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX));
        assert_eq!(a.len(), KEY_PREFIX.len() + 43);
        let text = format_hash(&hash_key(&a));
        assert_eq!(text.len(), HASH_PREFIX.len() + 64);
        assert_eq!(parse_hash(&text), Some(hash_key(&a)));
        assert_eq!(parse_hash(&text.to_uppercase()), None);
        assert_eq!(parse_hash("sha256:abc"), None);
        assert_eq!(parse_hash(&a), None);
        assert_eq!(parse_hash(&format!("sha256:{}", "zz".repeat(32))), None);
        assert_eq!(parse_hash(&format!("sha256:{}", "+f".repeat(32))), None);
    }

    #[test]
    fn base64url_matches_rfc4648() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(b"foob"), "Zm9vYg");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }

    #[test]
    fn names_are_plain() {
        assert!(valid_client_name("alice"));
        assert!(valid_client_name("ci-runner_2.eu"));
        assert!(!valid_client_name(""));
        assert!(!valid_client_name("a b"));
        assert!(!valid_client_name("évé"));
        assert!(!valid_client_name(&"a".repeat(65)));
    }
}
