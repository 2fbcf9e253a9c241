//! Usage ledger: one row per proxied request, written to SQLite off the hot path.
//!
//! The proxy holds a [`LedgerHandle`] and calls [`LedgerHandle::record`] once per
//! request. `record` never blocks and never fails the request: rows go through a
//! bounded channel to a single writer task; when the channel is full or the database
//! is unusable the row is counted as dropped instead.
//!
//! This file is the contract between the proxy and the ledger; the writer, schema,
//! pricing and the `stats` queries are built by the ledger issue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// How a request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestOutcome {
    Ok,
    /// The client went away before the answer finished.
    ClientCancelled,
    /// The upstream failed; the text is a short error kind such as `connect`,
    /// `http_500`, `stream_truncated`, `tool_call_parse`, `timeout`.
    UpstreamError(String),
    /// The proxy refused the request itself (bad request, auth, context guard).
    Rejected(String),
}

/// One request as the ledger records it. Never holds prompt or response content.
#[derive(Debug, Clone)]
pub struct UsageRecord {
    /// Start of the request, Unix milliseconds.
    pub started_at_ms: i64,
    /// From `metadata.user_id` or Claude Code's session header.
    pub session_id: Option<String>,
    /// The routing rule that fired (`default`, `background`, `think`, `longContext`, …).
    pub scenario: String,
    /// Provider and model that answered (or last failed).
    pub provider: String,
    pub model: String,
    /// Set when a fallback answered: the `provider,model` that failed first.
    pub fallback_from: Option<String>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// True when the token figures are our estimate, not the upstream's.
    pub tokens_estimated: bool,
    pub time_to_first_token_ms: Option<u64>,
    pub duration_ms: u64,
    pub outcome: RequestOutcome,
    pub http_status: u16,
    pub stream: bool,
}

/// Cheap to clone; hand one to every request.
#[derive(Debug, Clone)]
pub struct LedgerHandle {
    sender: Option<tokio::sync::mpsc::Sender<UsageRecord>>,
    dropped: Arc<AtomicU64>,
}

impl LedgerHandle {
    /// A handle that records nothing (ledger disabled, or in tests).
    pub fn disabled() -> Self {
        LedgerHandle {
            sender: None,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A handle feeding `sender`; the ledger writer owns the receiving end.
    pub fn from_sender(sender: tokio::sync::mpsc::Sender<UsageRecord>) -> Self {
        LedgerHandle {
            sender: Some(sender),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queue a row without waiting. A full queue or a stopped writer drops the row and
    /// counts it.
    pub fn record(&self, record: UsageRecord) {
        if let Some(sender) = &self.sender {
            if sender.try_send(record).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Rows dropped so far by this handle (shown by `status`).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The shared counter, so the writer can add rows it failed to store.
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }
}
