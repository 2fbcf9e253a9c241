//! The Live page's rows: the newest ledger rows to start with, then every request as it
//! finishes, as server-sent events (`/ui/events`) from the ledger's [`LiveFeed`].
//!
//! A row carries what the ledger holds about a request and nothing more: no prompt or
//! answer content exists to show.
//!
//! [`LiveFeed`]: crate::ledger::LiveFeed

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;

use crate::ledger::{LedgerRow, UsageRecord};

/// Rows the live table starts with.
pub const RECENT_ROWS: u32 = 50;

/// A comment line this often keeps idle connections (and proxies between) open.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One request as the live table shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveRow {
    pub started_at_ms: i64,
    pub session_id: Option<String>,
    pub scenario: String,
    pub provider: String,
    pub model: String,
    /// None for requests refused before routing (provider `-`).
    pub local: Option<bool>,
    pub fallback_from: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    pub tokens_estimated: bool,
    pub ttft_ms: Option<u64>,
    pub duration_ms: u64,
    /// `ok`, `client_cancelled`, `upstream_error` or `rejected`.
    pub outcome: String,
    /// The failure kind (`connect`, `http_500`, `context_guard`, …).
    pub error_kind: Option<String>,
    pub http_status: u16,
    pub stream: bool,
}

/// Provider name → local, for rows that do not say.
pub type Locality = HashMap<String, bool>;

fn local_of(provider: &str, stored: Option<bool>, locality: &Locality) -> Option<bool> {
    if provider == "-" {
        return None;
    }
    stored.or_else(|| Some(locality.get(provider).copied().unwrap_or(false)))
}

impl LiveRow {
    /// A row read back from the ledger.
    pub fn from_ledger(r: LedgerRow, locality: &Locality) -> LiveRow {
        LiveRow {
            local: local_of(&r.provider, r.provider_local, locality),
            started_at_ms: r.started_at_ms,
            session_id: r.session_id,
            scenario: r.scenario,
            provider: r.provider,
            model: r.model,
            fallback_from: r.fallback_from,
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cache_read_tokens: r.cache_read_tokens,
            cache_write_tokens: r.cache_write_tokens,
            tokens_estimated: r.tokens_estimated,
            ttft_ms: r.ttft_ms,
            duration_ms: r.duration_ms,
            outcome: r.outcome,
            error_kind: r.error_kind,
            http_status: r.http_status,
            stream: r.stream,
        }
    }

    /// A request that just finished.
    pub fn from_record(r: &UsageRecord, locality: &Locality) -> LiveRow {
        LiveRow {
            local: local_of(&r.provider, None, locality),
            started_at_ms: r.started_at_ms,
            session_id: r.session_id.clone(),
            scenario: r.scenario.clone(),
            provider: r.provider.clone(),
            model: r.model.clone(),
            fallback_from: r.fallback_from.clone(),
            input_tokens: r.input_tokens,
            output_tokens: r.output_tokens,
            cache_read_tokens: r.cache_read_tokens,
            cache_write_tokens: r.cache_write_tokens,
            tokens_estimated: r.tokens_estimated,
            ttft_ms: r.time_to_first_token_ms,
            duration_ms: r.duration_ms,
            outcome: r.outcome.kind().to_owned(),
            error_kind: r.outcome.detail().map(str::to_owned),
            http_status: r.http_status,
            stream: r.stream,
        }
    }
}

/// One server-sent event, already framed.
pub fn sse_event(name: &str, data: &impl Serialize) -> String {
    // serde_json never emits a raw newline, so one `data:` line is always enough.
    let json = serde_json::to_string(data).unwrap_or_else(|_| "null".into());
    format!("event: {name}\ndata: {json}\n\n")
}

/// What the next receive on the feed turns into: an event to send, or the end.
pub fn next_event(
    received: Result<Arc<UsageRecord>, RecvError>,
    locality: &Locality,
) -> Option<String> {
    match received {
        Ok(record) => Some(sse_event(
            "request",
            &LiveRow::from_record(&record, locality),
        )),
        Err(RecvError::Lagged(skipped)) => Some(sse_event(
            "lagged",
            &serde_json::json!({ "skipped": skipped }),
        )),
        Err(RecvError::Closed) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RequestOutcome;

    fn record(provider: &str, outcome: RequestOutcome) -> UsageRecord {
        UsageRecord {
            started_at_ms: 5,
            session_id: Some("s".into()),
            scenario: "think".into(),
            provider: provider.into(),
            model: "m".into(),
            fallback_from: Some("ollama,m".into()),
            input_tokens: 10,
            output_tokens: 20,
            cache_read_tokens: 30,
            cache_write_tokens: 0,
            tokens_estimated: true,
            time_to_first_token_ms: Some(7),
            duration_ms: 9,
            outcome,
            http_status: 502,
            stream: true,
        }
    }

    #[test]
    fn records_become_rows_with_locality_and_failure_kind() {
        let locality: Locality = [("ollama".to_owned(), true)].into();
        let row = LiveRow::from_record(
            &record(
                "anthropic",
                RequestOutcome::UpstreamError("http_529".into()),
            ),
            &locality,
        );
        assert_eq!(row.local, Some(false));
        assert_eq!(row.outcome, "upstream_error");
        assert_eq!(row.error_kind.as_deref(), Some("http_529"));
        assert_eq!(row.cache_read_tokens, 30);
        let ours = LiveRow::from_record(&record("ollama", RequestOutcome::Ok), &locality);
        assert_eq!(ours.local, Some(true));
        let refused = LiveRow::from_record(
            &record("-", RequestOutcome::Rejected("auth".into())),
            &locality,
        );
        assert_eq!(refused.local, None);
    }

    #[test]
    fn events_are_one_data_line() {
        let e = sse_event("request", &serde_json::json!({"a": "x\ny"}));
        assert_eq!(e, "event: request\ndata: {\"a\":\"x\\ny\"}\n\n");
        let lagged = next_event(Err(RecvError::Lagged(3)), &Locality::new()).unwrap();
        assert!(lagged.starts_with("event: lagged\ndata: {\"skipped\":3}"));
        assert_eq!(next_event(Err(RecvError::Closed), &Locality::new()), None);
    }
}
