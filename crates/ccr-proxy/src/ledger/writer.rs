//! The single ledger writer: one thread owns the SQLite connection, takes rows from a
//! bounded channel and writes whatever has queued up in one transaction.
//!
//! The request path only ever does a `try_send` ([`LedgerHandle::record`]). The
//! database is opened on the writer thread, so proxy start-up does not wait for it.
//! When the database is unusable (locked past the busy timeout, read-only, disk full,
//! a newer schema) the batch is counted as dropped, ONE warning is logged for the whole
//! episode, and the writer keeps trying (reopening at most every `reopen_interval`);
//! when a write succeeds again it logs that once too. Nothing here panics.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection};
use tokio::sync::mpsc;

use super::{schema, LedgerError, LedgerHandle, UsageRecord, WriterState};

/// Tuning and context for [`Ledger::spawn`].
#[derive(Debug, Clone)]
pub struct LedgerOptions {
    /// Provider name → whether it is local (see [`super::is_local_provider`]), stored in
    /// each row so later config edits do not reclassify history. Unknown names store NULL.
    pub provider_local: HashMap<String, bool>,
    /// Rows that may wait for the writer; past this `record` drops (and counts) them.
    pub queue_capacity: usize,
    /// Most rows written in one transaction.
    pub max_batch: usize,
    /// While the database is unusable, how often to try opening it again.
    pub reopen_interval: Duration,
    /// After the first row of a batch arrives, how long to let more rows gather before
    /// committing. Each commit costs tens of microseconds of CPU that a busy proxy on a
    /// small machine would rather spend serving; a few milliseconds of delay before a
    /// row is visible to `stats` costs nothing.
    pub linger: Duration,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        LedgerOptions {
            provider_local: HashMap::new(),
            // A few seconds of a very busy proxy; each row is ~200 bytes.
            queue_capacity: 8192,
            max_batch: 512,
            reopen_interval: Duration::from_secs(5),
            linger: Duration::from_millis(5),
        }
    }
}

impl LedgerOptions {
    /// Options with the locality of every provider in `config`.
    pub fn for_config(config: &crate::config::Config) -> Self {
        LedgerOptions {
            provider_local: config
                .providers
                .iter()
                .map(|p| (p.name.clone(), super::is_local_provider(p)))
                .collect(),
            ..LedgerOptions::default()
        }
    }
}

/// Starts the writer. See the module docs.
pub struct Ledger;

impl Ledger {
    /// Start the writer thread for the ledger at `path` and return the handle the proxy
    /// records through. Returns at once; the database is opened on the writer thread.
    /// The thread ends when every clone of the handle has been dropped and the queue is
    /// drained.
    pub fn spawn(path: impl Into<PathBuf>, options: LedgerOptions) -> LedgerHandle {
        let (sender, receiver) = mpsc::channel(options.queue_capacity.max(1));
        let handle = LedgerHandle::from_sender(sender);
        let mut writer = Writer {
            path: path.into(),
            options,
            conn: None,
            last_open_attempt: None,
            state: handle.state.clone(),
            dropped: handle.dropped_counter(),
        };
        let spawned = std::thread::Builder::new()
            .name("ccr-ledger".into())
            .spawn(move || writer.run(receiver));
        if let Err(e) = spawned {
            // The receiver is gone with the closure, so every record() now counts as
            // dropped; say so once.
            tracing::warn!("usage ledger disabled: cannot start its writer thread: {e}");
            set_problem(
                &handle.state,
                Some(format!("writer thread not started: {e}")),
            );
        }
        handle
    }
}

fn set_problem(state: &WriterState, problem: Option<String>) {
    if let Ok(mut slot) = state.problem.lock() {
        *slot = problem;
    }
}

struct Writer {
    path: PathBuf,
    options: LedgerOptions,
    conn: Option<Connection>,
    last_open_attempt: Option<Instant>,
    state: Arc<WriterState>,
    dropped: Arc<std::sync::atomic::AtomicU64>,
}

impl Writer {
    fn run(&mut self, mut receiver: mpsc::Receiver<UsageRecord>) {
        let mut batch = Vec::with_capacity(self.options.max_batch);
        while let Some(first) = receiver.blocking_recv() {
            batch.push(first);
            if !self.options.linger.is_zero() {
                std::thread::sleep(self.options.linger);
            }
            while batch.len() < self.options.max_batch {
                match receiver.try_recv() {
                    Ok(record) => batch.push(record),
                    Err(_) => break,
                }
            }
            self.write_batch(&batch);
            self.state
                .settled
                // Release: `written`/`dropped` above are visible to whoever sees this.
                .fetch_add(batch.len() as u64, Ordering::Release);
            batch.clear();
        }
    }

    fn write_batch(&mut self, batch: &[UsageRecord]) {
        let result = match self.ensure_open() {
            Opened::Yes => insert(
                self.conn.as_ref().expect("ensure_open opened it"),
                &self.path,
                batch,
                &self.options.provider_local,
            ),
            Opened::Failed(e) => Err(e),
            Opened::NotYet => {
                // Still within the reopen interval after a failure that was already
                // reported: drop quietly and keep the recorded problem.
                self.dropped
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                return;
            }
        };
        match result {
            Ok(()) => {
                self.state
                    .written
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                let was_failing = self
                    .state
                    .problem
                    .lock()
                    .map(|p| p.is_some())
                    .unwrap_or(false);
                if was_failing {
                    tracing::info!("usage ledger {} is writable again", self.path.display());
                    set_problem(&self.state, None);
                }
            }
            Err(e) => {
                self.dropped
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                let first_failure = self
                    .state
                    .problem
                    .lock()
                    .map(|p| p.is_none())
                    .unwrap_or(false);
                let why = crate::diagnostic::one_line(&e);
                if first_failure {
                    tracing::warn!(
                        "usage ledger unusable; requests are still served but not recorded \
                         (counted as dropped) until it recovers: {why}"
                    );
                }
                set_problem(&self.state, Some(why));
                if !keeps_connection(&e) {
                    self.conn = None;
                }
            }
        }
    }

    /// Open the connection if there is none and it is time to (re)try.
    fn ensure_open(&mut self) -> Opened {
        if self.conn.is_some() {
            return Opened::Yes;
        }
        let due = self
            .last_open_attempt
            .is_none_or(|t| t.elapsed() >= self.options.reopen_interval);
        if !due {
            return Opened::NotYet;
        }
        self.last_open_attempt = Some(Instant::now());
        match schema::open_for_writing(&self.path) {
            Ok(conn) => {
                self.conn = Some(conn);
                Opened::Yes
            }
            Err(e) => Opened::Failed(e),
        }
    }
}

enum Opened {
    Yes,
    Failed(LedgerError),
    NotYet,
}

/// Busy, locked, full and read-only are conditions of the file, not of the connection:
/// keep the connection and try again with the next batch. Anything else reopens.
fn keeps_connection(e: &LedgerError) -> bool {
    use rusqlite::ErrorCode::*;
    match e {
        LedgerError::Sqlite {
            source: rusqlite::Error::SqliteFailure(f, _),
            ..
        } => matches!(f.code, DatabaseBusy | DatabaseLocked | DiskFull | ReadOnly),
        _ => false,
    }
}

fn insert(
    conn: &Connection,
    path: &Path,
    batch: &[UsageRecord],
    provider_local: &HashMap<String, bool>,
) -> Result<(), LedgerError> {
    let err = |source| LedgerError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    // An unchecked transaction borrows the connection immutably; it rolls back on drop
    // if the commit is never reached.
    let tx = conn.unchecked_transaction().map_err(err)?;
    {
        let mut stmt = tx
            .prepare_cached(
                "INSERT INTO requests (started_at_ms, session_id, scenario, provider, model,
                    fallback_from, input_tokens, output_tokens, cache_read_tokens,
                    cache_write_tokens, tokens_estimated, ttft_ms, duration_ms, outcome,
                    error_kind, http_status, stream, provider_local, fallback_reason,
                    context_overflowed, repairs, tool_call_failures,
                    context_cleared_blocks, context_cleared_tokens, client)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15,
                    ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25)",
            )
            .map_err(err)?;
        for r in batch {
            stmt.execute(params![
                r.started_at_ms,
                r.session_id,
                r.scenario,
                r.provider,
                r.model,
                r.fallback_from,
                clamp(r.input_tokens),
                clamp(r.output_tokens),
                clamp(r.cache_read_tokens),
                clamp(r.cache_write_tokens),
                r.tokens_estimated,
                r.time_to_first_token_ms.map(clamp),
                clamp(r.duration_ms),
                r.outcome.kind(),
                r.outcome.detail(),
                r.http_status,
                r.stream,
                provider_local.get(&r.provider).copied(),
                r.fallback_reason,
                r.context_overflowed,
                r.repairs,
                r.tool_call_failures,
                r.context_cleared_blocks,
                clamp(r.context_cleared_tokens),
                r.client.as_deref(),
            ])
            .map_err(err)?;
        }
    }
    tx.commit().map_err(err)
}

/// SQLite integers are i64; a u64 past that is nonsense data, so saturate.
fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
