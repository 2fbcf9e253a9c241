//! The ledger writer: exact rows, migrations from v1, and a full queue that drops
//! instead of blocking.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::ledger::wait_settled;
use ccr_setup::ledger::{
    open_for_reading, read_rows, Ledger, LedgerHandle, LedgerOptions, LedgerRow, RequestOutcome,
    UsageRecord, SCHEMA_VERSION,
};
use rusqlite::Connection;

fn options() -> LedgerOptions {
    LedgerOptions {
        provider_local: HashMap::from([
            ("ollama".to_owned(), true),
            ("anthropic".to_owned(), false),
        ]),
        ..LedgerOptions::default()
    }
}

fn record(at: i64, provider: &str, model: &str) -> UsageRecord {
    UsageRecord {
        started_at_ms: at,
        session_id: Some("user_abc_account__session_123".into()),
        scenario: "default".into(),
        provider: provider.into(),
        model: model.into(),
        fallback_from: None,
        fallback_reason: None,
        context_overflowed: false,
        context_cleared_blocks: 0,
        context_cleared_tokens: 0,
        client: None,
        repairs: None,
        tool_call_failures: 0,
        input_tokens: 1200,
        output_tokens: 34,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        tokens_estimated: false,
        time_to_first_token_ms: Some(210),
        duration_ms: 900,
        outcome: RequestOutcome::Ok,
        http_status: 200,
        stream: true,
    }
}

fn rows(path: &Path) -> Vec<LedgerRow> {
    read_rows(&open_for_reading(path).unwrap(), None).unwrap()
}

#[test]
fn rows_are_stored_exactly_and_hold_no_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let handle = Ledger::spawn(&path, options());

    let ok = record(1_000, "ollama", "gpt-oss:20b");
    let error = UsageRecord {
        outcome: RequestOutcome::UpstreamError("http_500".into()),
        http_status: 500,
        output_tokens: 0,
        time_to_first_token_ms: None,
        tokens_estimated: true,
        ..record(2_000, "ollama", "gpt-oss:20b")
    };
    let fallback = UsageRecord {
        scenario: "think".into(),
        fallback_from: Some("ollama,gpt-oss:20b".into()),
        fallback_reason: Some("tool_call_invalid".into()),
        context_overflowed: false,
        repairs: Some("name,coerced".into()),
        tool_call_failures: 2,
        cache_read_tokens: 5_000,
        cache_write_tokens: 700,
        stream: false,
        session_id: None,
        ..record(3_000, "anthropic", "claude-sonnet-4-5")
    };
    let cancelled = UsageRecord {
        outcome: RequestOutcome::ClientCancelled,
        ..record(4_000, "elsewhere", "m")
    };
    for r in [&ok, &error, &fallback, &cancelled] {
        handle.record(r.clone());
    }
    wait_settled(&handle, 4);
    let h = handle.health();
    assert_eq!((h.written, h.dropped, h.problem), (4, 0, None));

    let expected = |r: &UsageRecord, local: Option<bool>| LedgerRow {
        provider_local: local,
        ..LedgerRow::from_record(r)
    };
    assert_eq!(
        rows(&path),
        vec![
            expected(&ok, Some(true)),
            expected(&error, Some(true)),
            expected(&fallback, Some(false)),
            // A provider the options do not know is stored as unknown.
            expected(&cancelled, None),
        ]
    );
    assert_eq!(rows(&path)[1].error_kind.as_deref(), Some("http_500"));

    // The table has exactly these columns: nothing that could hold prompt or answer text.
    let conn = Connection::open(&path).unwrap();
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('requests')")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        columns,
        [
            "id",
            "started_at_ms",
            "session_id",
            "scenario",
            "provider",
            "model",
            "fallback_from",
            "input_tokens",
            "output_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "tokens_estimated",
            "ttft_ms",
            "duration_ms",
            "outcome",
            "error_kind",
            "http_status",
            "stream",
            "provider_local",
            "fallback_reason",
            "context_overflowed",
            "repairs",
            "tool_call_failures",
            "context_cleared_blocks",
            "context_cleared_tokens",
            "client",
        ]
    );
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
}

/// The v1 schema exactly as the first release wrote it.
const V1_SCHEMA: &str = "CREATE TABLE requests (
        id INTEGER PRIMARY KEY,
        started_at_ms INTEGER NOT NULL,
        session_id TEXT,
        scenario TEXT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT NOT NULL,
        fallback_from TEXT,
        input_tokens INTEGER NOT NULL,
        output_tokens INTEGER NOT NULL,
        cache_read_tokens INTEGER NOT NULL,
        cache_write_tokens INTEGER NOT NULL,
        tokens_estimated INTEGER NOT NULL,
        ttft_ms INTEGER,
        duration_ms INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        error_kind TEXT,
        http_status INTEGER NOT NULL,
        stream INTEGER NOT NULL
    );
    CREATE INDEX requests_started_at ON requests(started_at_ms);
    PRAGMA user_version = 1;";

#[test]
fn a_v1_ledger_migrates_without_losing_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1_SCHEMA).unwrap();
        for (at, provider) in [(10, "ollama"), (20, "anthropic")] {
            conn.execute(
                "INSERT INTO requests (started_at_ms, session_id, scenario, provider, model,
                    fallback_from, input_tokens, output_tokens, cache_read_tokens,
                    cache_write_tokens, tokens_estimated, ttft_ms, duration_ms, outcome,
                    error_kind, http_status, stream)
                 VALUES (?1, NULL, 'default', ?2, 'm', NULL, 100, 10, 0, 0, 0, 50, 500, 'ok',
                    NULL, 200, 1)",
                rusqlite::params![at, provider],
            )
            .unwrap();
        }
    }
    // `stats` can read a v1 file as it is (read-only, no migration).
    let before = rows(&path);
    assert_eq!(before.len(), 2);
    assert!(before.iter().all(|r| r.provider_local.is_none()));

    let handle = Ledger::spawn(&path, options());
    handle.record(record(30, "ollama", "gpt-oss:20b"));
    wait_settled(&handle, 1);
    assert_eq!(handle.health().written, 1, "{:?}", handle.health());

    let after = rows(&path);
    assert_eq!(after.len(), 3);
    assert_eq!(&after[..2], &before[..], "old rows changed");
    assert_eq!(after[2].provider_local, Some(true));
    let version: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
    assert_eq!(SCHEMA_VERSION, 7);
}

/// The v6 schema: v1 and the columns v2 to v6 added.
const V6_ALTERS: &str = "ALTER TABLE requests ADD COLUMN provider_local INTEGER;
    ALTER TABLE requests ADD COLUMN fallback_reason TEXT;
    ALTER TABLE requests ADD COLUMN context_overflowed INTEGER;
    ALTER TABLE requests ADD COLUMN repairs TEXT;
    ALTER TABLE requests ADD COLUMN tool_call_failures INTEGER;
    ALTER TABLE requests ADD COLUMN context_cleared_blocks INTEGER;
    ALTER TABLE requests ADD COLUMN context_cleared_tokens INTEGER;
    PRAGMA user_version = 6;";

#[test]
fn a_v6_ledger_gains_the_client_column_and_keeps_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V1_SCHEMA).unwrap();
        conn.execute_batch(V6_ALTERS).unwrap();
        conn.execute(
            "INSERT INTO requests (started_at_ms, scenario, provider, model, input_tokens,
                output_tokens, cache_read_tokens, cache_write_tokens, tokens_estimated,
                duration_ms, outcome, http_status, stream, provider_local,
                context_cleared_blocks, context_cleared_tokens)
             VALUES (10, 'default', 'ollama', 'm', 100, 10, 0, 0, 0, 500, 'ok', 200, 1, 1, 2, 300)",
            [],
        )
        .unwrap();
    }
    // A v6 file reads as it is, with no client.
    let before = rows(&path);
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].client, None);
    assert_eq!(before[0].context_cleared_blocks, 2);

    let handle = Ledger::spawn(&path, options());
    handle.record(UsageRecord {
        client: Some("alice".into()),
        ..record(30, "ollama", "gpt-oss:20b")
    });
    handle.record(record(40, "ollama", "gpt-oss:20b"));
    wait_settled(&handle, 2);
    assert_eq!(handle.health().written, 2, "{:?}", handle.health());
    let after = rows(&path);
    assert_eq!(&after[..1], &before[..], "the old row changed");
    let clients: Vec<Option<&str>> = after.iter().map(|r| r.client.as_deref()).collect();
    assert_eq!(clients, [None, Some("alice"), None]);
    let version: i64 = Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 7);
}

#[test]
fn a_full_queue_drops_and_counts_without_blocking() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    drop(ccr_setup::ledger::open_for_writing(&path).unwrap());
    // Hold the write lock so the writer is stuck in its busy wait.
    let locker = Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();

    let handle = Ledger::spawn(
        &path,
        LedgerOptions {
            queue_capacity: 4,
            max_batch: 2,
            ..options()
        },
    );
    const N: u64 = 2_000;
    let started = Instant::now();
    for i in 0..N {
        handle.record(record(i as i64, "ollama", "gpt-oss:20b"));
    }
    let elapsed = started.elapsed();
    // 2000 records with a writer blocked on a lock: record() never waits for it.
    assert!(
        elapsed < Duration::from_millis(200),
        "record() blocked: {elapsed:?}"
    );
    assert!(handle.dropped() >= N - 4 - 2, "{:?}", handle.health());

    locker.execute_batch("ROLLBACK").unwrap();
    wait_settled(&handle, N);
    let h = handle.health();
    assert_eq!(h.written + h.dropped, N);
    assert_eq!(rows(&path).len() as u64, h.written);
}

#[test]
fn a_disabled_handle_records_nothing() {
    let handle = LedgerHandle::disabled();
    handle.record(record(1, "ollama", "m"));
    let h = handle.health();
    assert!(!h.enabled);
    assert_eq!((h.written, h.dropped), (0, 0));
}

#[tokio::test]
async fn flush_waits_for_every_queued_row() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let handle = Ledger::spawn(&path, options());
    for i in 0..300 {
        handle.record(record(i, "ollama", "gpt-oss:20b"));
    }
    assert!(handle.flush(Duration::from_secs(10)).await);
    // Right after flush, with no polling: every row is committed.
    assert_eq!(handle.health().written, 300);
    assert_eq!(rows(&path).len(), 300);
    // Nothing queued: returns at once.
    assert!(handle.flush(Duration::ZERO).await);
}

#[tokio::test]
async fn flush_gives_up_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    drop(ccr_setup::ledger::open_for_writing(&path).unwrap());
    let locker = Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let handle = Ledger::spawn(&path, options());
    handle.record(record(1, "ollama", "gpt-oss:20b"));
    // The writer is waiting up to 500 ms for the lock.
    assert!(!handle.flush(Duration::from_millis(50)).await);
}
