//! The stored row, as `stats` and the dashboard read it back from SQLite.

use rusqlite::Connection;
use serde::Serialize;

/// One stored row, as `stats` reads it and the dashboard's live table shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerRow {
    pub started_at_ms: i64,
    pub session_id: Option<String>,
    pub scenario: String,
    pub provider: String,
    pub model: String,
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
    pub error_kind: Option<String>,
    pub http_status: u16,
    pub stream: bool,
    /// NULL for rows written before schema v2.
    #[serde(skip)]
    pub provider_local: Option<bool>,
    /// The server likely dropped part of the prompt (false for rows before v4).
    #[serde(default)]
    pub context_overflowed: bool,
    /// Why a fallback answered (the first failure's kind; rows before v3: None).
    #[serde(default)]
    pub fallback_reason: Option<String>,
    /// Repairs made to the answer's tool calls, comma-separated (rows before v5: None).
    #[serde(default)]
    pub repairs: Option<String>,
    /// Tool calls that could not be repaired while answering.
    #[serde(default)]
    pub tool_call_failures: u32,
    /// Old tool results context editing cleared or cut, and the tokens saved (0 for
    /// rows before v6).
    #[serde(default)]
    pub context_cleared_blocks: u32,
    #[serde(default)]
    pub context_cleared_tokens: u64,
    /// The named client that sent it (None: the admin, or rows before v7).
    #[serde(default)]
    pub client: Option<String>,
}

impl LedgerRow {
    /// The row a just-finished request becomes, before it is read back from SQLite
    /// (its locality is not stored yet: `None`).
    pub fn from_record(r: &super::UsageRecord) -> LedgerRow {
        LedgerRow {
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
            provider_local: None,
            context_overflowed: r.context_overflowed,
            fallback_reason: r.fallback_reason.clone(),
            repairs: r.repairs.clone(),
            tool_call_failures: r.tool_call_failures,
            context_cleared_blocks: r.context_cleared_blocks,
            context_cleared_tokens: r.context_cleared_tokens,
            client: r.client.clone(),
        }
    }
}

/// Every row started at or after `since_ms` (all rows for None), oldest first. Works on
/// any schema version this build knows, and on an empty file.
pub fn read_rows(conn: &Connection, since_ms: Option<i64>) -> rusqlite::Result<Vec<LedgerRow>> {
    query_rows(
        conn,
        "WHERE started_at_ms >= ?1 ORDER BY started_at_ms, id",
        since_ms.unwrap_or(i64::MIN),
    )
}

/// The newest `limit` rows, newest first (the dashboard's live table starts with them).
pub fn read_recent(conn: &Connection, limit: u32) -> rusqlite::Result<Vec<LedgerRow>> {
    query_rows(
        conn,
        "ORDER BY started_at_ms DESC, id DESC LIMIT ?1",
        i64::from(limit),
    )
}

/// `SELECT` every column of `requests` followed by `tail` (which binds one parameter).
fn query_rows(conn: &Connection, tail: &str, param: i64) -> rusqlite::Result<Vec<LedgerRow>> {
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('requests')")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    if columns.is_empty() {
        return Ok(Vec::new());
    }
    let local_col = if columns.iter().any(|c| c == "provider_local") {
        "provider_local"
    } else {
        "NULL"
    };
    let overflow_col = if columns.iter().any(|c| c == "context_overflowed") {
        "COALESCE(context_overflowed, 0)"
    } else {
        "0"
    };
    let has = |c: &str| columns.iter().any(|col| col == c);
    let reason_col = if has("fallback_reason") {
        "fallback_reason"
    } else {
        "NULL"
    };
    let (repairs_col, failures_col) = if has("repairs") {
        ("repairs", "COALESCE(tool_call_failures, 0)")
    } else {
        ("NULL", "0")
    };
    let (cleared_blocks_col, cleared_tokens_col) = if has("context_cleared_blocks") {
        (
            "COALESCE(context_cleared_blocks, 0)",
            "COALESCE(context_cleared_tokens, 0)",
        )
    } else {
        ("0", "0")
    };
    let client_col = if has("client") { "client" } else { "NULL" };
    let sql = format!(
        "SELECT started_at_ms, session_id, scenario, provider, model, fallback_from,
                input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                tokens_estimated, ttft_ms, duration_ms, outcome, error_kind, http_status,
                stream, {local_col}, {overflow_col}, {reason_col}, {repairs_col},
                {failures_col}, {cleared_blocks_col}, {cleared_tokens_col}, {client_col}
         FROM requests {tail}"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([param], |r| {
        let count = |i: usize| r.get::<_, i64>(i).map(|v| v.max(0) as u64);
        Ok(LedgerRow {
            started_at_ms: r.get(0)?,
            session_id: r.get(1)?,
            scenario: r.get(2)?,
            provider: r.get(3)?,
            model: r.get(4)?,
            fallback_from: r.get(5)?,
            input_tokens: count(6)?,
            output_tokens: count(7)?,
            cache_read_tokens: count(8)?,
            cache_write_tokens: count(9)?,
            tokens_estimated: r.get(10)?,
            ttft_ms: r.get::<_, Option<i64>>(11)?.map(|v| v.max(0) as u64),
            duration_ms: count(12)?,
            outcome: r.get(13)?,
            error_kind: r.get(14)?,
            http_status: r.get(15)?,
            stream: r.get(16)?,
            provider_local: r.get(17)?,
            context_overflowed: r.get(18)?,
            fallback_reason: r.get(19)?,
            repairs: r.get(20)?,
            tool_call_failures: r.get::<_, i64>(21)?.clamp(0, i64::from(u32::MAX)) as u32,
            context_cleared_blocks: r.get::<_, i64>(22)?.clamp(0, i64::from(u32::MAX)) as u32,
            context_cleared_tokens: count(23)?,
            client: r.get(24)?,
        })
    })?;
    rows.collect()
}
