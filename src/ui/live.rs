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

/// One request as the live table shows it: the ledger's row plus where it ran.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveRow {
    #[serde(flatten)]
    pub row: LedgerRow,
    /// None for requests refused before routing (provider `-`).
    pub local: Option<bool>,
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
    pub fn from_ledger(row: LedgerRow, locality: &Locality) -> LiveRow {
        let local = local_of(&row.provider, row.provider_local, locality);
        LiveRow { row, local }
    }

    /// A request that just finished.
    pub fn from_record(r: &UsageRecord, locality: &Locality) -> LiveRow {
        LiveRow::from_ledger(LedgerRow::from_record(r), locality)
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
            fallback_reason: None,
            context_overflowed: false,
            context_cleared_blocks: 0,
            context_cleared_tokens: 0,
            client: None,
            repairs: None,
            tool_call_failures: 0,
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
        assert_eq!(row.row.outcome, "upstream_error");
        assert_eq!(row.row.error_kind.as_deref(), Some("http_529"));
        assert_eq!(row.row.cache_read_tokens, 30);
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
