//! An unusable ledger never breaks recording: a locked, read-only or uncreatable
//! database drops rows, counts them, logs ONE warning for the episode, and the writer
//! recovers when the database does.
//!
//! The logs of every test in this binary go to one captured buffer (a global tracing
//! subscriber, because the writer logs from its own thread); each test counts only the
//! lines that name its own temporary path.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use ccr_setup::ledger::{
    open_for_writing, Ledger, LedgerHandle, LedgerOptions, RequestOutcome, UsageRecord,
};
use rusqlite::Connection;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .init();
        captured
    })
}

/// Log lines at `level` that mention `needle`.
fn lines(level: &str, needle: &Path) -> usize {
    let text = String::from_utf8_lossy(&logs().0.lock().unwrap()).into_owned();
    let needle = needle.display().to_string();
    text.lines()
        .filter(|l| l.contains(level) && l.contains(&needle))
        .count()
}

fn record(at: i64) -> UsageRecord {
    UsageRecord {
        started_at_ms: at,
        session_id: None,
        scenario: "default".into(),
        provider: "ollama".into(),
        model: "gpt-oss:20b".into(),
        fallback_from: None,
        fallback_reason: None,
        context_overflowed: false,
        context_cleared_blocks: 0,
        context_cleared_tokens: 0,
        client: None,
        repairs: None,
        tool_call_failures: 0,
        input_tokens: 10,
        output_tokens: 5,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        tokens_estimated: false,
        time_to_first_token_ms: Some(1),
        duration_ms: 2,
        outcome: RequestOutcome::Ok,
        http_status: 200,
        stream: true,
    }
}

fn fast_retry() -> LedgerOptions {
    LedgerOptions {
        provider_local: HashMap::from([("ollama".to_owned(), true)]),
        reopen_interval: Duration::from_millis(50),
        ..LedgerOptions::default()
    }
}

/// Record rows one by one, each after the previous settled, so every row is its own
/// batch and would produce its own warning if the writer warned per batch.
fn record_each(handle: &LedgerHandle, count: u64) {
    for i in 0..count {
        let target = {
            let h = handle.health();
            h.written + h.dropped + 1
        };
        handle.record(record(i as i64));
        let deadline = Instant::now() + Duration::from_secs(10);
        while {
            let h = handle.health();
            h.written + h.dropped < target
        } {
            assert!(
                Instant::now() < deadline,
                "writer stuck: {:?}",
                handle.health()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn stored(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("SELECT count(*) FROM requests", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn locked_database_drops_warns_once_and_recovers() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    drop(open_for_writing(&path).unwrap());
    let handle = Ledger::spawn(&path, fast_retry());
    record_each(&handle, 1);
    assert_eq!(handle.health().written, 1);

    let locker = Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    locker
        .execute_batch("INSERT INTO requests (started_at_ms, scenario, provider, model, input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, tokens_estimated, duration_ms, outcome, http_status, stream) VALUES (0,'x','x','x',0,0,0,0,0,0,'ok',200,1)")
        .unwrap();
    record_each(&handle, 4);
    let h = handle.health();
    assert_eq!((h.written, h.dropped), (1, 4), "{h:?}");
    let problem = h.problem.expect("the problem is reported for status");
    assert!(problem.contains("locked"), "{problem}");
    assert_eq!(lines("WARN", &path), 1, "one warning for the whole episode");

    locker.execute_batch("ROLLBACK").unwrap();
    record_each(&handle, 2);
    let h = handle.health();
    assert_eq!((h.written, h.dropped, h.problem), (3, 4, None));
    assert_eq!(stored(&path), 3);
    assert_eq!(lines("INFO", &path), 1, "recovery is logged once");
    assert_eq!(lines("WARN", &path), 1);
}

/// Makes a file read-only even for root (CI runs as root, and root ignores mode bits):
/// `chattr +i` as root, `chmod` otherwise. Undone on drop so the temp dir can go.
struct ReadOnly(Vec<PathBuf>);

impl ReadOnly {
    fn new(paths: Vec<PathBuf>) -> ReadOnly {
        for p in &paths {
            if nix::unistd::geteuid().is_root() {
                let status = std::process::Command::new("chattr")
                    .arg("+i")
                    .arg(p)
                    .status()
                    .expect("chattr (e2fsprogs) is needed to make a file read-only for root");
                assert!(status.success(), "chattr +i {} failed", p.display());
            } else {
                use std::os::unix::fs::PermissionsExt;
                let mode = if p.is_dir() { 0o555 } else { 0o444 };
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
            }
        }
        ReadOnly(paths)
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        for p in &self.0 {
            if nix::unistd::geteuid().is_root() {
                let _ = std::process::Command::new("chattr")
                    .arg("-i")
                    .arg(p)
                    .status();
            } else {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755));
            }
        }
    }
}

#[test]
fn read_only_database_drops_and_warns_once() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("ro");
    let path = folder.join("ledger.sqlite");
    {
        let conn = open_for_writing(&path).unwrap();
        // Leave a plain rollback-journal file behind, so nothing but the database
        // itself is needed to open it.
        conn.execute_batch("PRAGMA journal_mode=DELETE").unwrap();
    }
    let guard = ReadOnly::new(vec![path.clone(), folder.clone()]);

    let handle = Ledger::spawn(&path, fast_retry());
    record_each(&handle, 3);
    // Past the reopen interval: the writer tries the file again, still read-only.
    std::thread::sleep(Duration::from_millis(60));
    record_each(&handle, 2);
    let h = handle.health();
    assert_eq!((h.written, h.dropped), (0, 5), "{h:?}");
    let problem = h.problem.expect("the problem is reported for status");
    assert!(problem.contains("readonly"), "{problem}");
    assert_eq!(lines("WARN", &path), 1);

    drop(guard);
    record_each(&handle, 1);
    std::thread::sleep(Duration::from_millis(60));
    record_each(&handle, 1);
    let h = handle.health();
    assert!(
        h.written >= 1,
        "writes resume once the file is writable: {h:?}"
    );
    assert_eq!(lines("WARN", &path), 1);
}

#[test]
fn uncreatable_folder_drops_and_warns_once() {
    logs();
    let dir = tempfile::tempdir().unwrap();
    // A regular file where the folder should be: not even root can create below it.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "").unwrap();
    let path = blocker.join("ledger.sqlite");

    let handle = Ledger::spawn(&path, fast_retry());
    record_each(&handle, 3);
    std::thread::sleep(Duration::from_millis(60));
    record_each(&handle, 3);
    let h = handle.health();
    assert_eq!((h.written, h.dropped), (0, 6), "{h:?}");
    assert!(h.problem.unwrap().contains("cannot create"));
    assert_eq!(lines("WARN", &blocker), 1);
}
