//! The figures behind `ccr-setup stats`: pure functions over a ledger connection (or
//! over rows), so tests can feed a fixture database and check every number.
//!
//! Definitions (the README repeats them for users):
//! * A row whose provider is `-` was refused before routing (bad request, auth, context
//!   guard): it counts as a request and as rejected, but neither local nor cloud.
//! * A row is **local** when its provider was local when written (`provider_local`), or,
//!   for rows that predate that column, when the current config says so.
//! * **Cloud spend** prices every cloud row at its model's price.
//! * **Local cost** is `Pricing.local_per_hour` × the hours local requests ran.
//! * **Would have cost** prices each local row that produced an answer (ok or cancelled
//!   by the client) at the `--compare-to` model, with the row's own token counts.
//!   **Savings** = would have cost − local cost.
//! * **Local failures** are local rows that ended in an upstream error plus requests that
//!   fell back *from* a local provider; **local attempts** are local rows plus those
//!   fallbacks. The failure rate is failures / attempts.
//! * **Tokens/s** per provider is output tokens / generation time (duration − time to
//!   first token) over its successful streamed rows.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration as ChronoDuration, FixedOffset, NaiveDate, Offset};
use rusqlite::Connection;
use serde::Serialize;

use super::pricing::{default_compare_to, provider_locality, Price, PriceTable, PricingError};
use super::LedgerError;
use crate::config::{Config, ConfigFile};

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
    let sql = format!(
        "SELECT started_at_ms, session_id, scenario, provider, model, fallback_from,
                input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                tokens_estimated, ttft_ms, duration_ms, outcome, error_kind, http_status,
                stream, {local_col}, {overflow_col}, {reason_col}, {repairs_col},
                {failures_col}
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
        })
    })?;
    rows.collect()
}

/// How `--by` groups rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Group {
    /// Calendar day in the report's time zone.
    Day,
    /// `provider,model`.
    Model,
    /// The routing scenario (`default`, `background`, `think`, …).
    Route,
}

/// What to compute.
#[derive(Debug, Clone)]
pub struct StatsOptions {
    /// Only rows started at or after this (Unix ms); None for all.
    pub since_ms: Option<i64>,
    pub group_by: Option<Group>,
    /// The cloud model local requests are priced at.
    pub compare_to: String,
    pub prices: PriceTable,
    /// The current config's providers: name → local. Used for rows that predate the
    /// `provider_local` column and for `fallback_from`.
    pub provider_local: HashMap<String, bool>,
    /// Days are calendar days at this offset from UTC.
    pub utc_offset: FixedOffset,
}

impl StatsOptions {
    /// The options `stats` and the dashboard share for a config: its prices (from the
    /// interpolated config when it resolves, else the file as written), the locality of
    /// its providers, the default `--compare-to`, all rows, no grouping, days in this
    /// machine's time zone. Both None: no config, built-in prices.
    pub fn from_config(
        config: Option<&Config>,
        file: Option<&ConfigFile>,
    ) -> Result<StatsOptions, Vec<PricingError>> {
        let null = serde_json::Value::Null;
        let raw = match (config, file) {
            (Some(c), _) => &c.raw,
            (None, Some(f)) => &f.doc,
            (None, None) => &null,
        };
        let prices = PriceTable::from_config(raw)?;
        Ok(StatsOptions {
            since_ms: None,
            group_by: None,
            compare_to: default_compare_to(config, &prices),
            prices,
            provider_local: provider_locality(config, file),
            utc_offset: chrono::Local::now().offset().fix(),
        })
    }
}

/// Sums over a set of rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    pub requests: u64,
    pub ok: u64,
    pub client_cancelled: u64,
    pub upstream_errors: u64,
    pub rejected: u64,
    pub local_requests: u64,
    pub cloud_requests: u64,
    /// local_requests / requests (0 when there are none).
    pub local_share: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_read_tokens: u64,
    pub cache_write_tokens: u64,
    /// Rows whose token figures are the proxy's estimate.
    pub estimated_token_requests: u64,
    pub cloud_cost_usd: f64,
    pub local_cost_usd: f64,
    pub would_have_cost_usd: f64,
    pub savings_usd: f64,
    pub local_attempts: u64,
    pub local_failures: u64,
    /// local_failures / local_attempts (0 when there are none).
    pub local_failure_rate: f64,
    pub fallbacks: u64,
    pub fallbacks_from_local: u64,
    /// Answers whose server likely dropped the start of the prompt.
    pub context_overflows: u64,
    /// Requests the quality fallback sent to the cloud (scenario `quality`): the
    /// session's local answers had kept being unusable.
    pub quality_fallbacks: u64,
}

/// One `--by` group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRow {
    pub key: String,
    #[serde(flatten)]
    pub totals: Totals,
}

/// Speed and reliability of one provider.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderPerf {
    pub provider: String,
    pub local: bool,
    /// Rows this provider answered or last failed.
    pub requests: u64,
    /// Over successful rows that report a time to first token.
    pub median_ttft_ms: Option<f64>,
    pub tokens_per_second: Option<f64>,
    /// Requests this provider failed that a fallback then took over.
    pub fallbacks: u64,
    /// Its rows that ended in an upstream error, plus its `fallbacks`.
    pub failures: u64,
    /// failures / (requests + fallbacks); 0 when there are none.
    pub failure_rate: f64,
}

/// Savings of one calendar day (days without requests included, as 0).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DaySavings {
    pub day: String,
    pub savings_usd: f64,
}

/// Everything `stats` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub since_ms: Option<i64>,
    pub compare_to: String,
    pub compare_to_price: Price,
    pub local_per_hour_usd: f64,
    pub totals: Totals,
    pub group_by: Option<Group>,
    pub groups: Vec<GroupRow>,
    pub providers: Vec<ProviderPerf>,
    pub daily_savings: Vec<DaySavings>,
    /// Cloud models with no price: their tokens are counted, their cost is 0.
    pub unpriced_models: Vec<String>,
    /// Per model, its tool calls repaired and unrepaired (models with neither are
    /// left out).
    pub tool_calls: Vec<super::ToolCallQuality>,
}

/// Read the ledger and compute the report.
pub fn report(conn: &Connection, options: &StatsOptions) -> Result<Report, LedgerError> {
    let path = conn
        .path()
        .map(std::path::PathBuf::from)
        .unwrap_or_default();
    let rows =
        read_rows(conn, options.since_ms).map_err(|source| LedgerError::Sqlite { path, source })?;
    summarize(&rows, options)
}

/// The report for these rows.
pub fn summarize(rows: &[LedgerRow], options: &StatsOptions) -> Result<Report, LedgerError> {
    let (_, compare_price) =
        options
            .prices
            .lookup(&options.compare_to)
            .ok_or_else(|| LedgerError::UnpricedModel {
                model: options.compare_to.clone(),
            })?;
    let ctx = Ctx {
        options,
        compare_price,
    };

    let mut totals = Acc::default();
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    let mut per_day: BTreeMap<NaiveDate, f64> = BTreeMap::new();
    let mut per_provider: BTreeMap<String, ProviderAcc> = BTreeMap::new();
    let mut unpriced = std::collections::BTreeSet::new();
    let mut tool_calls: BTreeMap<String, super::ToolCallQuality> = BTreeMap::new();

    for row in rows {
        super::tool_calls::count(row, &mut tool_calls);
        let figures = ctx.figures(row);
        if figures.unpriced {
            unpriced.insert(row.model.clone());
        }
        totals.add(row, &figures);
        let day = ctx.day(row.started_at_ms);
        *per_day.entry(day).or_default() += figures.savings();
        if let Some(group) = options.group_by {
            let key = match group {
                Group::Day => day.to_string(),
                Group::Model => format!("{},{}", row.provider, row.model),
                Group::Route => row.scenario.clone(),
            };
            groups.entry(key).or_default().add(row, &figures);
        }
        if figures.routed {
            per_provider
                .entry(row.provider.clone())
                .or_default()
                .add(row, figures.local);
        }
        if let Some(from) = row.fallback_from.as_deref() {
            let name = from.split(',').next().unwrap_or(from).trim();
            let acc = per_provider.entry(name.to_owned()).or_default();
            acc.fallbacks += 1;
            if acc.requests == 0 {
                acc.local = ctx.is_local(name);
            }
        }
    }

    let mut groups: Vec<GroupRow> = groups
        .into_iter()
        .map(|(key, acc)| GroupRow {
            key,
            totals: acc.finish(),
        })
        .collect();
    if options.group_by != Some(Group::Day) {
        // Biggest first; the BTreeMap already ordered equal counts by key.
        groups.sort_by_key(|g| std::cmp::Reverse(g.totals.requests));
    }

    let mut providers: Vec<ProviderPerf> = per_provider
        .into_iter()
        .map(|(provider, acc)| acc.finish(provider))
        .collect();
    providers.sort_by_key(|p| std::cmp::Reverse(p.requests));

    Ok(Report {
        since_ms: options.since_ms,
        compare_to: options.compare_to.clone(),
        compare_to_price: compare_price,
        local_per_hour_usd: options.prices.local_per_hour,
        totals: totals.finish(),
        group_by: options.group_by,
        groups,
        providers,
        daily_savings: fill_days(&per_day),
        unpriced_models: unpriced.into_iter().collect(),
        tool_calls: tool_calls.into_values().collect(),
    })
}

struct Ctx<'a> {
    options: &'a StatsOptions,
    compare_price: Price,
}

/// The provider column of a request refused before it was routed.
const UNROUTED: &str = "-";

/// Money and locality of one row.
struct Figures {
    routed: bool,
    local: bool,
    fallback_from_local: bool,
    cloud_cost: f64,
    local_cost: f64,
    would_have: f64,
    unpriced: bool,
}

impl Figures {
    fn savings(&self) -> f64 {
        self.would_have - self.local_cost
    }
}

impl Ctx<'_> {
    fn is_local(&self, provider: &str) -> bool {
        self.options
            .provider_local
            .get(provider)
            .copied()
            .unwrap_or(false)
    }

    fn figures(&self, row: &LedgerRow) -> Figures {
        let routed = row.provider != UNROUTED;
        let local = routed
            && row
                .provider_local
                .unwrap_or_else(|| self.is_local(&row.provider));
        let fallback_from_local = row
            .fallback_from
            .as_deref()
            .and_then(|f| f.split(',').next())
            .is_some_and(|p| self.is_local(p.trim()));
        let tokens = |price: &Price| {
            price.cost(
                row.input_tokens,
                row.output_tokens,
                row.cache_read_tokens,
                row.cache_write_tokens,
            )
        };
        let mut f = Figures {
            routed,
            local,
            fallback_from_local,
            cloud_cost: 0.0,
            local_cost: 0.0,
            would_have: 0.0,
            unpriced: false,
        };
        if local {
            f.local_cost =
                self.options.prices.local_per_hour * row.duration_ms as f64 / 3_600_000.0;
            if matches!(row.outcome.as_str(), "ok" | "client_cancelled") {
                f.would_have = tokens(&self.compare_price);
            }
        } else if routed {
            match self.options.prices.lookup(&row.model) {
                Some((_, price)) => f.cloud_cost = tokens(&price),
                None => {
                    f.unpriced = row.input_tokens.saturating_add(row.output_tokens) > 0;
                }
            }
        }
        f
    }

    fn day(&self, ms: i64) -> NaiveDate {
        DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .with_timezone(&self.options.utc_offset)
            .date_naive()
    }
}

#[derive(Default)]
struct Acc {
    t: Totals,
}

impl Acc {
    fn add(&mut self, row: &LedgerRow, f: &Figures) {
        let t = &mut self.t;
        t.requests += 1;
        match row.outcome.as_str() {
            "ok" => t.ok += 1,
            "client_cancelled" => t.client_cancelled += 1,
            "upstream_error" => t.upstream_errors += 1,
            _ => t.rejected += 1,
        }
        if f.local {
            t.local_requests += 1;
            t.local_attempts += 1;
            if row.outcome == "upstream_error" {
                t.local_failures += 1;
            }
        } else if f.routed {
            t.cloud_requests += 1;
        }
        if row.fallback_from.is_some() {
            t.fallbacks += 1;
            if f.fallback_from_local {
                t.fallbacks_from_local += 1;
                t.local_attempts += 1;
                t.local_failures += 1;
            }
        }
        // Figures an upstream reported: saturate rather than overflow on nonsense.
        t.input_tokens = t.input_tokens.saturating_add(row.input_tokens);
        t.output_tokens = t.output_tokens.saturating_add(row.output_tokens);
        t.cache_read_tokens = t.cache_read_tokens.saturating_add(row.cache_read_tokens);
        t.cache_write_tokens = t.cache_write_tokens.saturating_add(row.cache_write_tokens);
        t.estimated_token_requests += u64::from(row.tokens_estimated);
        t.context_overflows += u64::from(row.context_overflowed);
        t.quality_fallbacks += u64::from(row.scenario == "quality");
        t.cloud_cost_usd += f.cloud_cost;
        t.local_cost_usd += f.local_cost;
        t.would_have_cost_usd += f.would_have;
    }

    fn finish(mut self) -> Totals {
        let t = &mut self.t;
        t.savings_usd = round_usd(t.would_have_cost_usd - t.local_cost_usd);
        t.cloud_cost_usd = round_usd(t.cloud_cost_usd);
        t.local_cost_usd = round_usd(t.local_cost_usd);
        t.would_have_cost_usd = round_usd(t.would_have_cost_usd);
        t.local_share = ratio(t.local_requests, t.requests);
        t.local_failure_rate = ratio(t.local_failures, t.local_attempts);
        self.t
    }
}

#[derive(Default)]
struct ProviderAcc {
    local: bool,
    requests: u64,
    upstream_errors: u64,
    fallbacks: u64,
    ttfts: Vec<u64>,
    gen_tokens: u64,
    gen_ms: u64,
}

impl ProviderAcc {
    fn add(&mut self, row: &LedgerRow, local: bool) {
        self.local = local;
        self.requests += 1;
        if row.outcome == "upstream_error" {
            self.upstream_errors += 1;
        }
        if row.outcome != "ok" {
            return;
        }
        if let Some(ttft) = row.ttft_ms {
            self.ttfts.push(ttft);
            if row.stream && row.output_tokens > 0 && row.duration_ms > ttft {
                self.gen_tokens = self.gen_tokens.saturating_add(row.output_tokens);
                self.gen_ms = self.gen_ms.saturating_add(row.duration_ms - ttft);
            }
        }
    }

    fn finish(mut self, provider: String) -> ProviderPerf {
        self.ttfts.sort_unstable();
        let n = self.ttfts.len();
        let median = match n {
            0 => None,
            _ if n % 2 == 1 => Some(self.ttfts[n / 2] as f64),
            _ => Some((self.ttfts[n / 2 - 1] + self.ttfts[n / 2]) as f64 / 2.0),
        };
        ProviderPerf {
            provider,
            local: self.local,
            requests: self.requests,
            median_ttft_ms: median,
            tokens_per_second: (self.gen_ms > 0)
                .then(|| round_to(self.gen_tokens as f64 * 1000.0 / self.gen_ms as f64, 2)),
            fallbacks: self.fallbacks,
            failures: self.upstream_errors + self.fallbacks,
            failure_rate: ratio(
                self.upstream_errors + self.fallbacks,
                self.requests + self.fallbacks,
            ),
        }
    }
}

/// Every day from the first to the last that has rows, gaps as 0.
fn fill_days(per_day: &BTreeMap<NaiveDate, f64>) -> Vec<DaySavings> {
    let (Some(first), Some(last)) = (per_day.keys().next(), per_day.keys().next_back()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut day = *first;
    while day <= *last {
        out.push(DaySavings {
            day: day.to_string(),
            savings_usd: round_usd(per_day.get(&day).copied().unwrap_or(0.0)),
        });
        day += ChronoDuration::days(1);
    }
    out
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        round_to(a as f64 / b as f64, 4)
    }
}

/// Money to the micro-dollar: stable in JSON and CSV, and exact enough for any bill.
fn round_usd(v: f64) -> f64 {
    round_to(v, 6)
}

fn round_to(v: f64, places: i32) -> f64 {
    let scale = 10f64.powi(places);
    let r = (v * scale).round() / scale;
    if r == 0.0 {
        0.0 // no "-0"
    } else {
        r
    }
}
