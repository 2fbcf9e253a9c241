//! `GET /health`: the one shape the proxy sends and `status`, `code` and `doctor`
//! read, and the client that asks for it.
//!
//! Fields added after the first release are optional when reading, so a proxy of
//! another version is still recognised (and `doctor` can say which version it runs).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Config, ProviderKind};
use crate::ledger::LedgerHealth;

/// The body of `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// Always `"ok"` from a proxy that answers.
    pub status: String,
    /// The proxy's `ccr-setup` version.
    pub version: String,
    /// Seconds since the proxy started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uptime_secs: Option<u64>,
    /// `/v1/messages` requests finished since it started (answered, failed, refused
    /// or cancelled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<u64>,
    pub providers: Vec<HealthProvider>,
    /// The usage ledger's counters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ledger: Option<LedgerHealth>,
    /// Claude Code sessions the quality fallback has sent to the cloud for now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_fallback_sessions: Option<u32>,
    /// The answer to the client's `?nonce=` under the `APIKEY`
    /// ([`crate::proxy::proof`]): the proof that this proxy holds the key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

/// One configured provider, as `/health` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthProvider {
    pub name: String,
    /// `openai` or `anthropic`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_base_url: Option<String>,
    #[serde(default)]
    pub models: Vec<String>,
    /// How many URLs `api_base_url` lists, when more than one (absent from older
    /// proxies and for a single URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<usize>,
}

impl Health {
    /// What a running proxy reports about itself. Provider URLs (redacted) only when
    /// `show_urls`: the caller presented the proxy's `APIKEY`; to anyone else (a web
    /// page, another local user) the names are enough.
    pub fn of(
        config: &Config,
        uptime: Duration,
        requests: u64,
        ledger: LedgerHealth,
        show_urls: bool,
    ) -> Health {
        Health {
            status: "ok".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            uptime_secs: Some(uptime.as_secs()),
            requests: Some(requests),
            providers: config
                .providers
                .iter()
                .map(|p| HealthProvider {
                    name: p.name.clone(),
                    kind: match p.kind {
                        ProviderKind::OpenAi => "openai",
                        ProviderKind::Anthropic => "anthropic",
                    }
                    .to_owned(),
                    api_base_url: show_urls.then(|| p.display_url()),
                    models: p.models.clone(),
                    replicas: (p.replicas.len() > 1).then_some(p.replicas.len()),
                })
                .collect(),
            ledger: Some(ledger),
            quality_fallback_sessions: None,
            proof: None,
        }
    }

    /// Read a `/health` body; `None` when it is not our proxy's shape.
    pub fn parse(body: &[u8]) -> Option<Health> {
        serde_json::from_slice(body).ok()
    }
}

/// Ask the proxy at `base` (`http://host:port`) for its health. `None` when nothing
/// answers within `timeout`, the answer is not 2xx, or it is not our proxy's.
pub async fn fetch(base: &str, timeout: Duration) -> Option<Health> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .ok()?;
    let resp = client.get(format!("{base}/health")).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    Health::parse(&resp.bytes().await.ok()?)
}

/// Why a client would not send its key to what answers at the proxy's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unverified {
    /// Nothing answered `/health` in time.
    NoAnswer,
    /// Something answered, not in our proxy's shape (what it answered, sanitised).
    NotOurs(String),
    /// Our shape, but no proof or a wrong one for our key: a proxy with another
    /// config, an older proxy, or a program imitating ours.
    WrongProof,
}

/// Ask `base` for `/health` with a fresh nonce (no key sent) and check the proof
/// against `key`. Without a key there is nothing to protect or prove: the shape
/// decides.
pub async fn verify(
    base: &str,
    key: Option<&str>,
    timeout: Duration,
) -> Result<Health, Unverified> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .map_err(|_| Unverified::NoAnswer)?;
    let nonce = crate::proxy::proof::new_nonce().ok_or(Unverified::NoAnswer)?;
    let resp = client
        .get(format!("{base}/health?nonce={nonce}"))
        .send()
        .await
        .map_err(|_| Unverified::NoAnswer)?;
    let status = resp.status();
    let body = resp.bytes().await.unwrap_or_default();
    let health = Health::parse(&body)
        .filter(|_| status.is_success())
        .ok_or_else(|| {
            let start = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
            Unverified::NotOurs(format!(
                "HTTP {} on /health: {}",
                status.as_u16(),
                crate::sanitize::untrusted(&start, 80)
            ))
        })?;
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return Ok(health);
    };
    match &health.proof {
        Some(proof) if crate::proxy::proof::verify_health_proof(key, &nonce, proof) => Ok(health),
        _ => Err(Unverified::WrongProof),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_and_reads_an_older_proxy() {
        let config = crate::proxy::test_support::config(json!({"default": "ollama,gpt-oss:20b"}));
        let ledger = LedgerHealth {
            enabled: true,
            written: 3,
            dropped: 0,
            problem: None,
        };
        let sent = Health::of(&config, Duration::from_secs(125), 7, ledger.clone(), false);
        let body = serde_json::to_vec(&sent).unwrap();
        assert_eq!(Health::parse(&body), Some(sent.clone()));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (v["uptime_secs"].as_u64(), v["requests"].as_u64()),
            (Some(125), Some(7))
        );
        assert_eq!(v["providers"][0]["name"], "ollama");
        assert_eq!(v["providers"][1]["kind"], "anthropic");
        assert!(v["providers"][0].get("api_base_url").is_none(), "{v}");
        let keyed = Health::of(&config, Duration::ZERO, 0, ledger, true);
        assert_eq!(
            keyed.providers[0].api_base_url.as_deref(),
            Some("http://127.0.0.1:11434/v1/chat/completions")
        );

        // The first release sent {status, version, providers, ledger} only.
        let old = json!({"status": "ok", "version": "0.0.9", "providers": [{"name": "ollama", "kind": "openai"}]});
        let h = Health::parse(old.to_string().as_bytes()).unwrap();
        assert_eq!(
            (h.version.as_str(), h.uptime_secs, h.requests),
            ("0.0.9", None, None)
        );
        // Something else on the port is not us.
        assert_eq!(Health::parse(br#"{"status":"ok"}"#), None);
        assert_eq!(Health::parse(b"<html>"), None);
    }
}
