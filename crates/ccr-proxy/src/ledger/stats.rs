//! The figures behind `ccr-setup stats`: pure functions over a ledger connection (or
//! over rows), so tests can feed a fixture database and check every number.
//!
//! Definitions (docs/guide.md, "Usage ledger and `stats`", repeats them for users):
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
use super::rows::{read_rows, LedgerRow};
use super::LedgerError;
use crate::config::{Config, ConfigFile};

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
    /// The named client (team mode's `Clients`); the admin's rows as [`ADMIN_GROUP`].
    Client,
}

/// The `--by client` key of rows sent with the admin `APIKEY` (or with no key).
pub const ADMIN_GROUP: &str = "(admin)";

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
    /// Requests context editing changed to fit a local window, the old tool results it
    /// cleared or cut in them, and the prompt tokens that took out.
    pub context_edited_requests: u64,
    pub context_cleared_blocks: u64,
    pub context_cleared_tokens: u64,
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
                Group::Client => row.client.as_deref().unwrap_or(ADMIN_GROUP).to_owned(),
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

/// One row's money, priced as `stats` prices it: what a request cost in the cloud
/// and what a local one saved. For the proxy's per-client day counters, which must
/// agree with `stats` without reading the ledger back.
#[derive(Debug, Clone)]
pub struct RowPricer {
    options: StatsOptions,
    compare_price: Price,
}

impl RowPricer {
    /// None when the `--compare-to` model of `options` has no price.
    pub fn new(options: StatsOptions) -> Option<RowPricer> {
        let (_, compare_price) = options.prices.lookup(&options.compare_to)?;
        Some(RowPricer {
            options,
            compare_price,
        })
    }

    /// (cloud cost, savings) of `row`, in USD.
    pub fn money(&self, row: &LedgerRow) -> (f64, f64) {
        let ctx = Ctx {
            options: &self.options,
            compare_price: self.compare_price,
        };
        let f = ctx.figures(row);
        (f.cloud_cost, f.savings())
    }
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
        t.context_edited_requests += u64::from(row.context_cleared_blocks > 0);
        t.context_cleared_blocks += u64::from(row.context_cleared_blocks);
        t.context_cleared_tokens = t
            .context_cleared_tokens
            .saturating_add(row.context_cleared_tokens);
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
