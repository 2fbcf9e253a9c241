//! The ledger's table and its migrations.
//!
//! The schema version lives in SQLite's `PRAGMA user_version`. Each release appends to
//! [`MIGRATIONS`] and never edits an entry that shipped, so a database written by any
//! earlier release is brought forward in place, in one transaction, keeping its rows.
//! A database from a *newer* release is left alone (see [`LedgerError::TooNew`]).

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::LedgerError;

/// Migration `i` takes the database from version `i` to `i + 1`.
const MIGRATIONS: &[&str] = &[
    // v1: one row per proxied request. No prompt or response content, ever.
    "CREATE TABLE requests (
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
    CREATE INDEX requests_started_at ON requests(started_at_ms);",
    // v2: whether the provider was local when the row was written. Providers get renamed
    // or re-pointed; recording it keeps old rows classified as they were. NULL (rows from
    // v1) means "classify by the current config".
    "ALTER TABLE requests ADD COLUMN provider_local INTEGER;",
    // v3: why a fallback answered, when the local failure has a name (tool_call_parse).
    "ALTER TABLE requests ADD COLUMN fallback_reason TEXT;",
    // v4: the server saw less of the prompt than was sent (silent truncation).
    "ALTER TABLE requests ADD COLUMN context_overflowed INTEGER;",
    // v5: tool-call repair: what was repaired, and how many calls could not be.
    "ALTER TABLE requests ADD COLUMN repairs TEXT;
     ALTER TABLE requests ADD COLUMN tool_call_failures INTEGER;",
    // v6: context editing: old tool results cleared to fit the local window, and the
    // tokens that saved. The one migration of the 2026-12 round; later columns of the
    // round append to this list after it.
    "ALTER TABLE requests ADD COLUMN context_cleared_blocks INTEGER;
     ALTER TABLE requests ADD COLUMN context_cleared_tokens INTEGER;",
    // v7: the named client (team mode's `Clients`) that sent the request; NULL for the
    // admin `APIKEY`, a proxy without keys, and rows from before v7. The index holds
    // only named clients' rows: a solo proxy's inserts (all NULL) then touch no third
    // B-tree, which was a third more page writes a request (#29 item 6).
    "ALTER TABLE requests ADD COLUMN client TEXT;
     CREATE INDEX requests_client ON requests(client, started_at_ms)
        WHERE client IS NOT NULL;",
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a write waits for another connection's lock before giving up on the batch.
/// The writer is off the request path, so waiting here costs the proxy nothing.
const BUSY_TIMEOUT: Duration = Duration::from_millis(500);

fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> LedgerError + '_ {
    move |source| LedgerError::Sqlite {
        path: path.to_path_buf(),
        source,
    }
}

/// Open (creating it and its folder if needed) the ledger for writing: WAL mode, so
/// `stats` can read while the proxy writes, and migrated to [`SCHEMA_VERSION`].
pub fn open_for_writing(path: &Path) -> Result<Connection, LedgerError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        crate::fsutil::create_dir_all(dir).map_err(|source| LedgerError::CreateDir {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    let err = sqlite_err(path);
    let mut conn = Connection::open(path).map_err(&err)?;
    private_mode(path);
    conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
    // journal_mode answers with the mode in force; a read-only file cannot switch to WAL
    // and fails here, which the writer reports like any other unusable database.
    let _mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(&err)?;
    // NORMAL is durable across application crashes in WAL mode; losing the last few rows
    // on a power cut is acceptable for usage statistics.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(&err)?;
    migrate(&mut conn, path)?;
    Ok(conn)
}

/// Take group and other access from the ledger file; SQLite gives its `-wal` and
/// `-shm` files the same mode. The owner's bits stay (a read-only ledger stays so).
fn private_mode(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o077 != 0 {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode & 0o700));
        }
    }
}

/// Open an existing ledger for `stats`. Read-only: reading never creates or migrates the
/// file, and the version check only warns through the error type when it is too new.
pub fn open_for_reading(path: &Path) -> Result<Connection, LedgerError> {
    let err = sqlite_err(path);
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(&err)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(&err)?;
    let version = user_version(&conn).map_err(&err)?;
    if version > SCHEMA_VERSION {
        return Err(LedgerError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(conn)
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
}

/// Apply every migration past the file's `user_version`, all in one transaction.
fn migrate(conn: &mut Connection, path: &Path) -> Result<(), LedgerError> {
    let err = sqlite_err(path);
    // IMMEDIATE takes the write lock before reading the version, so two processes
    // opening the same new file cannot both run migration 1.
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(&err)?;
    let version = user_version(&tx).map_err(&err)?;
    if version > SCHEMA_VERSION {
        return Err(LedgerError::TooNew {
            path: path.to_path_buf(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for sql in &MIGRATIONS[version as usize..] {
        tx.execute_batch(sql).map_err(&err)?;
    }
    if version < SCHEMA_VERSION {
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(&err)?;
    }
    tx.commit().map_err(&err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_file_gets_current_version_and_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/ledger.sqlite");
        let conn = open_for_writing(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        drop(conn);
        // Opening again is a no-op migration.
        let conn = open_for_writing(&path).unwrap();
        assert_eq!(user_version(&conn).unwrap(), SCHEMA_VERSION);
    }

    /// The query plan's detail lines.
    fn plan(conn: &Connection, sql: &str) -> String {
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(3)).unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    #[test]
    fn only_named_clients_rows_enter_the_client_index() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_for_writing(&dir.path().join("ledger.sqlite")).unwrap();
        let named = plan(&conn, "SELECT count(*) FROM requests WHERE client = 'ci'");
        assert!(named.contains("requests_client"), "{named}");
        // A row without a client is not in the index, so no plan can read it there.
        let unnamed = plan(&conn, "SELECT count(*) FROM requests WHERE client IS NULL");
        assert!(!unnamed.contains("requests_client"), "{unnamed}");
    }

    #[test]
    fn newer_schema_is_refused_for_writing_and_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
                .unwrap();
        }
        assert!(matches!(
            open_for_writing(&path),
            Err(LedgerError::TooNew { found, .. }) if found == SCHEMA_VERSION + 1
        ));
        assert!(matches!(
            open_for_reading(&path),
            Err(LedgerError::TooNew { .. })
        ));
    }
}
