//! Checking a cloud key before `init` stores it: one cheap request (`GET /v1/models`
//! with the key) and a short timeout. A refused key is reported; no network is only a
//! warning, since the key may well be right.

use std::time::Duration;

use crate::env_vars::EnvVars;

/// Anthropic's list-models endpoint: cheap, and it needs a valid key.
pub const ANTHROPIC_MODELS_URL: &str = "https://api.anthropic.com/v1/models";
/// How long the check may take.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// What the provider said about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// 2xx: the key works.
    Accepted,
    /// 401 or 403: the key is wrong, revoked or lacks access.
    Refused { status: u16, message: String },
    /// The provider could not be reached (offline, DNS, timeout).
    Unreachable(String),
    /// Any other answer (429, 5xx…): the key's validity is unknown.
    Inconclusive { status: u16 },
}

/// The URL to check against: the test hook when set, else Anthropic's.
pub fn models_url() -> String {
    std::env::var(EnvVars::CCR_SETUP_ANTHROPIC_MODELS_URL)
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| ANTHROPIC_MODELS_URL.to_owned())
}

/// Ask `url` (a `/v1/models` endpoint) whether `key` is accepted.
pub async fn check(url: &str, key: &str, timeout: Duration) -> KeyCheck {
    let client = match reqwest::Client::builder().timeout(timeout).build() {
        Ok(c) => c,
        Err(e) => return KeyCheck::Unreachable(e.to_string()),
    };
    let resp = client
        .get(url)
        .query(&[("limit", "1")])
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await;
    let resp = match resp {
        Ok(r) => r,
        // The error text never holds the key (it is a header, not in the URL).
        Err(e) => return KeyCheck::Unreachable(without_url(&e)),
    };
    let status = resp.status().as_u16();
    match status {
        200..=299 => KeyCheck::Accepted,
        401 | 403 => {
            let body: serde_json::Value = resp.json().await.unwrap_or_default();
            let message = body
                .pointer("/error/message")
                .and_then(serde_json::Value::as_str)
                .unwrap_or("")
                .to_owned();
            KeyCheck::Refused { status, message }
        }
        _ => KeyCheck::Inconclusive { status },
    }
}

fn without_url(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return format!("no answer within {} s", CHECK_TIMEOUT.as_secs());
    }
    if e.is_connect() {
        return "cannot connect".to_owned();
    }
    e.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve_once(status: &'static str, body: &'static str) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            let resp = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(resp.as_bytes()).await;
        });
        format!("http://{addr}/v1/models")
    }

    #[tokio::test]
    async fn accepted_refused_and_unreachable() {
        let ok = serve_once("200 OK", r#"{"data": []}"#).await;
        assert_eq!(check(&ok, "k", CHECK_TIMEOUT).await, KeyCheck::Accepted);
        let refused = serve_once(
            "401 Unauthorized",
            r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
        )
        .await;
        assert_eq!(
            check(&refused, "k", CHECK_TIMEOUT).await,
            KeyCheck::Refused {
                status: 401,
                message: "invalid x-api-key".into()
            }
        );
        // Port 9 (discard) on loopback: nothing listens.
        assert!(matches!(
            check("http://127.0.0.1:9/v1/models", "k", CHECK_TIMEOUT).await,
            KeyCheck::Unreachable(_)
        ));
    }
}
