//! Usage ledger: one row per proxied request, written to SQLite off the hot path.
//!
//! The proxy holds a [`LedgerHandle`] and calls [`LedgerHandle::record`] once per
//! request. `record` never blocks and never fails the request: rows go through a
//! bounded channel to a single writer task; when the channel is full or the database
//! is unusable the row is counted as dropped instead.
//!
//! This file is the contract between the proxy and the ledger. Around it:
//!
//! * `schema`: the table and its versioned migrations (`PRAGMA user_version`).
//! * `writer`: [`Ledger::spawn`], the one thread that owns the database connection and
//!   writes rows in batched transactions.
//! * `pricing`: the price table (built-in Anthropic list prices plus `Pricing` from the
//!   config) and which providers count as local.
//! * `stats`: pure queries over a `rusqlite::Connection` that `ccr-setup stats` renders.
//! * `live`: the live tail, every recorded row handed to watchers (the dashboard).

mod live;
mod pricing;
mod rows;
mod schema;
mod stats;
mod tool_calls;
mod writer;

pub use live::{LiveFeed, LiveReceiver};
pub use pricing::{
    default_compare_to, fallback_compare_to, is_local_provider, ledger_enabled, provider_locality,
    Price, PriceTable, PricingError,
};
pub use rows::{read_recent, read_rows, LedgerRow};
pub use schema::{open_for_reading, open_for_writing, SCHEMA_VERSION};
pub use stats::{
    report, summarize, DaySavings, Group, GroupRow, ProviderPerf, Report, RowPricer, StatsOptions,
    Totals, ADMIN_GROUP,
};
pub use tool_calls::ToolCallQuality;
pub use writer::{Ledger, LedgerOptions};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Why the ledger could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("cannot create the ledger's folder {path}")]
    CreateDir {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ledger {path}")]
    Sqlite {
        path: std::path::PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "no price for model `{model}`; add it to the config, e.g. \
         \"Pricing\": {{\"{model}\": {{\"input\": 3, \"output\": 15}}}} (USD per million tokens)"
    )]
    UnpricedModel { model: String },
    #[error(
        "ledger {path} has schema version {found}, newer than this ccr-setup understands \
         ({supported}); upgrade ccr-setup (rows are not written to it meanwhile)"
    )]
    TooNew {
        path: std::path::PathBuf,
        found: i64,
        supported: i64,
    },
}

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
    /// Why the answer came from a fallback when the first target's failure had a name
    /// of its own (`tool_call_parse`: a local model's tool call Ollama could not parse).
    pub fallback_reason: Option<String>,
    /// The server reported fewer prompt tokens than were sent, or a full window: it
    /// likely dropped the oldest messages ([`crate::proxy::guard::context_overflowed`]).
    pub context_overflowed: bool,
    /// Old tool results that context editing cleared (or cut) to fit the local window,
    /// and the tokens that took out of the prompt ([`crate::proxy::context_edit`]).
    pub context_cleared_blocks: u32,
    pub context_cleared_tokens: u64,
    /// The repairs made to the answer's tool calls (`name,coerced`, …), if any
    /// ([`crate::proxy::repair::RepairKind`]).
    pub repairs: Option<String>,
    /// Tool calls that could not be repaired while answering this request (the
    /// local model's, when a fallback answered).
    pub tool_call_failures: u32,
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
    /// The `Clients[]` name whose key sent it; None for the admin `APIKEY` (or no key).
    pub client: Option<String>,
}

impl RequestOutcome {
    /// The value stored in the `outcome` column.
    pub fn kind(&self) -> &'static str {
        match self {
            RequestOutcome::Ok => "ok",
            RequestOutcome::ClientCancelled => "client_cancelled",
            RequestOutcome::UpstreamError(_) => "upstream_error",
            RequestOutcome::Rejected(_) => "rejected",
        }
    }

    /// The error kind stored beside it, if any.
    pub fn detail(&self) -> Option<&str> {
        match self {
            RequestOutcome::UpstreamError(kind) | RequestOutcome::Rejected(kind) => Some(kind),
            RequestOutcome::Ok | RequestOutcome::ClientCancelled => None,
        }
    }
}

/// What `status` shows about the ledger of a running proxy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LedgerHealth {
    /// False for [`LedgerHandle::disabled`].
    pub enabled: bool,
    /// Rows committed to the database.
    pub written: u64,
    /// Rows lost: queue full, or the database unusable (locked, read-only, disk full).
    pub dropped: u64,
    /// Set while the database is unusable: the last error, in one line.
    pub problem: Option<String>,
}

/// State the writer shares with every handle, so `status` can read it.
#[derive(Debug, Default)]
struct WriterState {
    written: AtomicU64,
    /// Rows that entered the queue.
    queued: AtomicU64,
    /// Queued rows the writer has finished with (written, or dropped because the
    /// database was unusable).
    settled: AtomicU64,
    problem: Mutex<Option<String>>,
}

/// Cheap to clone; hand one to every request.
#[derive(Debug, Clone)]
pub struct LedgerHandle {
    sender: Option<tokio::sync::mpsc::Sender<UsageRecord>>,
    dropped: Arc<AtomicU64>,
    state: Arc<WriterState>,
    live: LiveFeed,
}

impl LedgerHandle {
    /// A handle that records nothing (ledger disabled, or in tests).
    pub fn disabled() -> Self {
        LedgerHandle {
            sender: None,
            dropped: Arc::new(AtomicU64::new(0)),
            state: Arc::default(),
            live: LiveFeed::default(),
        }
    }

    /// A handle feeding `sender`; the ledger writer owns the receiving end.
    pub fn from_sender(sender: tokio::sync::mpsc::Sender<UsageRecord>) -> Self {
        LedgerHandle {
            sender: Some(sender),
            dropped: Arc::new(AtomicU64::new(0)),
            state: Arc::default(),
            live: LiveFeed::default(),
        }
    }

    /// Queue a row without waiting. A full queue or a stopped writer drops the row and
    /// counts it. Watchers of [`LedgerHandle::live`] see the row either way, even when
    /// the ledger is disabled.
    pub fn record(&self, record: UsageRecord) {
        self.live.publish(&record);
        if let Some(sender) = &self.sender {
            match sender.try_send(record) {
                Ok(()) => {
                    self.state.queued.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Wait (up to `timeout`) until every row queued so far has been written or given
    /// up on. The proxy calls this on shutdown so the last requests are not lost when
    /// the process exits. Returns false on timeout.
    pub async fn flush(&self, timeout: std::time::Duration) -> bool {
        let target = self.state.queued.load(Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + timeout;
        while self.state.settled.load(Ordering::Acquire) < target {
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        true
    }

    /// The live tail of this handle: rows recorded from now on (the dashboard's live
    /// table).
    pub fn live(&self) -> &LiveFeed {
        &self.live
    }

    /// Rows dropped so far by this handle (shown by `status`).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The shared counter, so the writer can add rows it failed to store.
    pub fn dropped_counter(&self) -> Arc<AtomicU64> {
        self.dropped.clone()
    }

    /// Whether this handle feeds a writer.
    pub fn is_enabled(&self) -> bool {
        self.sender.is_some()
    }

    /// Rows written and dropped so far, and the current problem if the database is
    /// unusable. For `status` and the proxy's health endpoint.
    pub fn health(&self) -> LedgerHealth {
        LedgerHealth {
            enabled: self.is_enabled(),
            written: self.state.written.load(Ordering::Relaxed),
            dropped: self.dropped(),
            problem: self
                .state
                .problem
                .lock()
                .map(|p| p.clone())
                .unwrap_or_default(),
        }
    }
}
