//! The Overview page's figures: the same [`ledger::summarize`] that `ccr-setup stats`
//! runs, over the same rows, with the same options, so that the page and
//! `stats --since 24h|7d|30d --json` show equal numbers.
//!
//! The ledger is read once (the last 30 days) and each shorter window is the tail of
//! those rows, which are in time order.

use std::path::Path;

use chrono::DateTime;
use serde::Serialize;

use crate::config::Config;
use crate::ledger::{
    self, DaySavings, LedgerError, LedgerHealth, Price, ProviderPerf, StatsOptions, Totals,
};

const HOUR_MS: i64 = 3_600_000;

/// The windows the page shows, as `stats --since` spells them.
pub const WINDOWS: [(&str, &str, i64); 3] = [
    ("24h", "Last 24 hours", 24 * HOUR_MS),
    ("7d", "Last 7 days", 7 * 24 * HOUR_MS),
    ("30d", "Last 30 days", 30 * 24 * HOUR_MS),
];

/// Days the savings chart spans.
pub const CHART_DAYS: u32 = 30;

/// One window's totals.
#[derive(Debug, Clone, Serialize)]
pub struct Window {
    /// `24h`, `7d` or `30d`.
    pub id: &'static str,
    pub label: &'static str,
    pub since_ms: i64,
    pub totals: Totals,
}

/// Everything the Overview page shows.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    pub now_ms: i64,
    pub compare_to: String,
    pub compare_to_price: Price,
    pub local_per_hour_usd: f64,
    /// Whether the proxy records rows, and how that goes.
    pub ledger: LedgerHealth,
    pub windows: Vec<Window>,
    /// Per provider, over the longest window.
    pub providers: Vec<ProviderPerf>,
    /// The savings chart (SVG, drawn by `chart`), over the last [`CHART_DAYS`] days.
    pub savings_chart_svg: String,
    pub daily_savings: Vec<DaySavings>,
    pub unpriced_models: Vec<String>,
    /// Per named client (team mode; the admin's rows as `(admin)`), over the longest
    /// window; empty without `Clients`.
    pub clients: Vec<ledger::GroupRow>,
}

/// Why the overview could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum OverviewError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("the config's Pricing has problems: {0}")]
    Pricing(String),
}

/// Compute the overview from the ledger at `path` (a missing file is an empty ledger)
/// at time `now_ms`, priced by `config`.
pub fn compute(
    path: &Path,
    config: &Config,
    health: LedgerHealth,
    now_ms: i64,
) -> Result<Overview, OverviewError> {
    let base = StatsOptions::from_config(Some(config), None).map_err(|problems| {
        OverviewError::Pricing(
            problems
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let longest = WINDOWS[WINDOWS.len() - 1].2;
    let rows = if path.exists() {
        let conn = ledger::open_for_reading(path)?;
        ledger::read_rows(&conn, Some(now_ms - longest)).map_err(|source| LedgerError::Sqlite {
            path: path.to_path_buf(),
            source,
        })?
    } else {
        Vec::new()
    };
    let mut windows = Vec::with_capacity(WINDOWS.len());
    let mut last = None;
    for (id, label, span) in WINDOWS {
        let since_ms = now_ms - span;
        let first = rows.partition_point(|r| r.started_at_ms < since_ms);
        let options = StatsOptions {
            since_ms: Some(since_ms),
            ..base.clone()
        };
        let report = ledger::summarize(&rows[first..], &options)?;
        windows.push(Window {
            id,
            label,
            since_ms,
            totals: report.totals.clone(),
        });
        last = Some(report);
    }
    let report = last.expect("WINDOWS is not empty");
    let clients = if config.clients.is_empty() {
        Vec::new()
    } else {
        let options = StatsOptions {
            since_ms: Some(now_ms - longest),
            group_by: Some(ledger::Group::Client),
            ..base.clone()
        };
        ledger::summarize(&rows, &options)?.groups
    };
    let today = DateTime::from_timestamp_millis(now_ms)
        .unwrap_or_default()
        .with_timezone(&base.utc_offset)
        .date_naive();
    let chart_days = super::chart::last_days(&report.daily_savings, today, CHART_DAYS);
    Ok(Overview {
        now_ms,
        compare_to: report.compare_to,
        compare_to_price: report.compare_to_price,
        local_per_hour_usd: report.local_per_hour_usd,
        ledger: health,
        windows,
        providers: report.providers,
        savings_chart_svg: super::chart::savings_svg(&chart_days),
        daily_savings: chart_days,
        unpriced_models: report.unpriced_models,
        clients,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::client_keys::{format_hash, hash_key};
    use crate::ledger::LedgerHealth;

    fn config(clients: bool) -> Config {
        let list = if clients {
            serde_json::json!([{"name": "alice", "key_hash": format_hash(&hash_key("k"))}])
        } else {
            serde_json::json!([])
        };
        let doc = serde_json::json!({
            "Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["m"]}],
            "Router": {"default": "ollama,m"},
            "Clients": list,
        });
        crate::config::ConfigFile::new(Path::new("/t/config.json"), doc)
            .resolve_with(&|_| None)
            .unwrap()
    }

    #[test]
    fn team_mode_shows_each_clients_use() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.sqlite");
        let conn = ledger::open_for_writing(&path).unwrap();
        let now = chrono::Utc::now().timestamp_millis();
        for client in [Some("alice"), Some("alice"), None] {
            conn.execute(
                "INSERT INTO requests (started_at_ms, scenario, provider, model, input_tokens,
                    output_tokens, cache_read_tokens, cache_write_tokens, tokens_estimated,
                    duration_ms, outcome, http_status, stream, provider_local, client)
                 VALUES (?1, 'default', 'ollama', 'm', 100, 10, 0, 0, 0, 50, 'ok', 200, 1, 1, ?2)",
                rusqlite::params![now - 1000, client],
            )
            .unwrap();
        }
        let health = LedgerHealth {
            enabled: true,
            written: 0,
            dropped: 0,
            problem: None,
        };
        let o = compute(&path, &config(true), health.clone(), now).unwrap();
        let rows: Vec<(&str, u64)> = o
            .clients
            .iter()
            .map(|g| (g.key.as_str(), g.totals.requests))
            .collect();
        assert_eq!(rows, [("alice", 2), (ledger::ADMIN_GROUP, 1)]);
        assert!(o.clients[0].totals.savings_usd > 0.0);
        // Without clients, no table.
        let o = compute(&path, &config(false), health, now).unwrap();
        assert!(o.clients.is_empty());
    }
}
