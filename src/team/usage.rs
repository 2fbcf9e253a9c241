//! The client's own usage, as the team server reports it at `GET /v1/ccr/usage`
//! (`?session=<id>` adds one Claude Code session). The key goes in `x-api-key`, the
//! same header Claude Code's `ANTHROPIC_API_KEY` uses; the server checks it like any
//! API request and answers only about the key's own client.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::Join;

/// Today's totals and the limits (`limits` fields are null when unlimited).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Usage {
    pub client: String,
    pub day: String,
    #[serde(default)]
    pub timezone: Option<String>,
    pub today: Totals,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub session: Option<SessionUsage>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Totals {
    #[serde(default)]
    pub requests: u64,
    #[serde(default)]
    pub input_tokens: u64,
    #[serde(default)]
    pub output_tokens: u64,
    #[serde(default)]
    pub cloud_usd: f64,
    #[serde(default)]
    pub saved_usd: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Limits {
    #[serde(default)]
    pub daily_requests: Option<u64>,
    #[serde(default)]
    pub daily_cloud_usd: Option<f64>,
}

/// One session's totals and where its last request went.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct SessionUsage {
    #[serde(flatten)]
    pub totals: Totals,
    /// `provider,model` of the last request.
    #[serde(default)]
    pub last_model: Option<String>,
    #[serde(default)]
    pub context_cleared_blocks: u64,
}

/// Why the server's usage could not be read.
#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("the team server at {url} refused the client key (HTTP 401)")]
    Unauthorized { url: String },
    #[error("the team server at {url} does not let this key read its usage (HTTP 403)")]
    Forbidden { url: String },
    #[error("cannot reach the team server at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("the team server at {url} answered HTTP {status}{}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Status {
        url: String,
        status: u16,
        message: Option<String>,
    },
    #[error("the team server at {url} gave an answer that is not ccr-setup's usage report")]
    NotUsage { url: String },
    #[error("cannot read a PEM certificate from {path} (Join.ca_cert)")]
    BadCa { path: std::path::PathBuf },
}

impl crate::diagnostic::Hint for UsageError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            UsageError::Unauthorized { .. } => "check the key (`ccr_…`, printed once by `ccr-setup clients add NAME` on the server); ask the server's admin for a new one if it was removed".into(),
            UsageError::Forbidden { .. } => "the key is known but not allowed this; ask the server's admin".into(),
            UsageError::Unreachable { .. } => "check the address and that the server's Caddy and proxy run (`systemctl --user status ccr-setup-proxy` there); a certificate the laptop does not trust shows here too".into(),
            UsageError::Status { status: 404, .. } | UsageError::NotUsage { .. } => "the server may run an older ccr-setup without team mode; update it there".into(),
            UsageError::BadCa { .. } => "copy the server's CA certificate (Caddy's root.crt, see docs/team.md) there, or re-run `ccr-setup init --join URL --ca-cert PATH`".into(),
            UsageError::Status { .. } => "see the server's log (`journalctl --user -u ccr-setup-proxy` there)".into(),
        })
    }
}

/// `GET {url}/v1/ccr/usage[?session=…]` with the client key, within `timeout`.
pub async fn fetch_usage(
    join: &Join,
    session: Option<&str>,
    timeout: Duration,
) -> Result<Usage, UsageError> {
    let base = join.url.as_str();
    let unreachable = |source| UsageError::Unreachable {
        url: base.to_owned(),
        source,
    };
    let mut builder = reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout);
    if let Some(path) = &join.ca_cert {
        builder = builder.add_root_certificate(read_ca(path)?);
    }
    let client = builder.build().map_err(unreachable)?;
    let mut request = client
        .get(format!("{base}/v1/ccr/usage"))
        .header("x-api-key", &join.key);
    if let Some(id) = session {
        request = request.query(&[("session", id)]);
    }
    let resp = request.send().await.map_err(unreachable)?;
    let status = resp.status().as_u16();
    let body = resp.bytes().await.map_err(unreachable)?;
    match status {
        200 => serde_json::from_slice(&body).map_err(|_| UsageError::NotUsage {
            url: base.to_owned(),
        }),
        401 => Err(UsageError::Unauthorized {
            url: base.to_owned(),
        }),
        403 => Err(UsageError::Forbidden {
            url: base.to_owned(),
        }),
        status => Err(UsageError::Status {
            url: base.to_owned(),
            status,
            message: error_message(&body),
        }),
    }
}

/// The CA certificate `Join.ca_cert` names.
fn read_ca(path: &std::path::Path) -> Result<reqwest::Certificate, UsageError> {
    let bad = || UsageError::BadCa {
        path: path.to_owned(),
    };
    let pem = std::fs::read(path).map_err(|_| bad())?;
    reqwest::Certificate::from_pem(&pem).map_err(|_| bad())
}

/// The message of an Anthropic-shaped error body, cleaned for one line.
fn error_message(body: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let m = v.pointer("/error/message")?.as_str()?;
    Some(crate::sanitize::field(m).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contracts_example_parses() {
        let u: Usage = serde_json::from_str(r#"{"client":"alice","day":"2026-12-07","timezone":"UTC",
            "today":{"requests":3,"input_tokens":100,"output_tokens":20,"cloud_usd":0.5,"saved_usd":1.25},
            "limits":{"daily_requests":100,"daily_cloud_usd":null},
            "session":{"requests":1,"input_tokens":10,"output_tokens":2,"cloud_usd":0,"saved_usd":0.1,"last_model":"vllm,gpt-oss","context_cleared_blocks":2}}"#).unwrap();
        assert_eq!(u.client, "alice");
        assert_eq!(u.today.requests, 3);
        assert_eq!(u.limits.daily_requests, Some(100));
        assert_eq!(u.limits.daily_cloud_usd, None);
        let s = u.session.unwrap();
        assert_eq!(s.totals.saved_usd, 0.1);
        assert_eq!(s.last_model.as_deref(), Some("vllm,gpt-oss"));
        assert_eq!(s.context_cleared_blocks, 2);
        let no_session: Usage = serde_json::from_str(
            r#"{"client":"a","day":"d","today":{"requests":0},"limits":{},"session":null}"#,
        )
        .unwrap();
        assert!(no_session.session.is_none());
    }
}
