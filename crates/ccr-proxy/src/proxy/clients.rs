//! Team mode's per-client day counters and limits (`Clients[].daily_requests`,
//! `daily_cloud_usd`), and each session's use for `GET /v1/ccr/usage`.
//!
//! Counters live in memory, one entry per client for the current day (in
//! `ClientsTimezone`), seeded from the ledger's rows of the day at start. A request is
//! counted when it is admitted, so `daily_requests` is never exceeded. Its tokens and
//! money are added when it finishes, priced as `stats` prices them ([`RowPricer`]); so
//! a client just under `daily_cloud_usd` may start one more cloud request (or one per
//! request it has in flight) and end a little over it. Only in team mode (a config
//! with `Clients`): without clients nothing here runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use hashlink::LruCache;
use serde::Serialize;

use super::auth::Caller;
use crate::config::Config;
use crate::ledger::{LedgerRow, RowPricer, StatsOptions, UsageRecord};

/// Sessions whose use is remembered (least recently seen forgotten first).
pub const MAX_SESSIONS: usize = 4096;

/// Why `proxy` will not start in server mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("this config is in server mode (\"ServerMode\": true) but has no client keys, so nobody could use it and the admin APIKEY would be shared")]
pub struct NoClients;

impl crate::diagnostic::Hint for NoClients {
    fn hint(&self) -> Option<String> {
        Some(
            "add a key per user with `ccr-setup clients add NAME`, then start the proxy again"
                .into(),
        )
    }
}

/// A server-mode config needs at least one client.
pub fn check_server_mode(config: &Config) -> Result<(), NoClients> {
    if config.server_mode && config.clients.is_empty() {
        Err(NoClients)
    } else {
        Ok(())
    }
}

/// Use over a day or a session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Use {
    pub requests: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cloud_usd: f64,
    pub saved_usd: f64,
}

impl Use {
    fn add_money(&mut self, row: &LedgerRow, money: (f64, f64)) {
        self.input_tokens = self.input_tokens.saturating_add(row.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(row.output_tokens);
        self.cloud_usd += money.0;
        self.saved_usd += money.1;
    }

    fn plus(mut self, other: &Use) -> Use {
        self.requests += other.requests;
        self.input_tokens = self.input_tokens.saturating_add(other.input_tokens);
        self.output_tokens = self.output_tokens.saturating_add(other.output_tokens);
        self.cloud_usd += other.cloud_usd;
        self.saved_usd += other.saved_usd;
        self
    }
}

/// One session's use, as `/v1/ccr/usage?session=` reports it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionUse {
    #[serde(flatten)]
    pub total: Use,
    /// `provider,model` of its last request.
    pub last_model: Option<String>,
    pub context_cleared_blocks: u64,
    /// Whose session it is (None: the admin's).
    #[serde(skip)]
    pub client: Option<Arc<str>>,
}

/// A limit a request ran into.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    Requests {
        limit: u64,
        resets: DateTime<FixedOffset>,
    },
    Cloud {
        limit: f64,
        spent: f64,
        resets: DateTime<FixedOffset>,
    },
}

impl Refusal {
    /// What the 429 says: which limit, the count, and when it resets.
    pub fn message(&self, client: &str) -> String {
        match self {
            Refusal::Requests { limit, resets } => format!(
                "client \"{client}\" has used its {limit} requests for today (Clients[].daily_requests); the count resets at {}; ask the proxy's admin to raise the limit",
                resets.to_rfc3339()
            ),
            Refusal::Cloud { limit, spent, resets } => format!(
                "client \"{client}\" has spent ${spent:.2} of its ${limit:.2} cloud budget for today (Clients[].daily_cloud_usd) and this request has no local model to go to; local models keep working, and the budget resets at {}",
                resets.to_rfc3339()
            ),
        }
    }
}

/// What `GET /v1/ccr/usage` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UsageReport {
    pub client: Option<String>,
    pub day: String,
    pub timezone: String,
    pub today: Use,
    pub limits: Limits,
    pub session: Option<SessionUse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Limits {
    pub daily_requests: Option<u64>,
    pub daily_cloud_usd: Option<f64>,
}

/// Why a session's use is not shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotYourSession;

#[derive(Default)]
struct Inner {
    day: Option<NaiveDate>,
    today: HashMap<Option<Arc<str>>, Use>,
    sessions: Option<LruCache<String, SessionUse>>,
    /// The config generation the pricer was built for, and the pricer (None: the
    /// `--compare-to` model has no price).
    pricer: Option<(u64, Option<Arc<RowPricer>>)>,
    seeded: bool,
}

/// The counters, shared by the request handlers.
#[derive(Default)]
pub struct ClientUsage {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ClientUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClientUsage")
    }
}

/// The calendar day of `now` at `tz`, and the instant the next one starts.
fn day_of(now: DateTime<Utc>, tz: FixedOffset) -> (NaiveDate, DateTime<FixedOffset>) {
    let day = now.with_timezone(&tz).date_naive();
    let next = day
        .succ_opt()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(|t| t.and_local_timezone(tz).single())
        .unwrap_or_else(|| now.with_timezone(&tz));
    (day, next)
}

/// The offset as the usage endpoint shows it: `UTC` or `+02:00`.
fn tz_name(tz: FixedOffset) -> String {
    if tz.local_minus_utc() == 0 {
        "UTC".to_owned()
    } else {
        tz.to_string()
    }
}

impl Inner {
    /// Start a new day's counters when the day changed.
    fn roll(&mut self, day: NaiveDate) {
        if self.day != Some(day) {
            self.day = Some(day);
            self.today.clear();
        }
    }

    fn sessions(&mut self) -> &mut LruCache<String, SessionUse> {
        self.sessions
            .get_or_insert_with(|| LruCache::new(MAX_SESSIONS))
    }

    fn pricer(&mut self, config: &Config, generation: u64) -> Option<Arc<RowPricer>> {
        match &self.pricer {
            Some((g, p)) if *g == generation => p.clone(),
            _ => {
                let pricer = StatsOptions::from_config(Some(config), None)
                    .ok()
                    .and_then(RowPricer::new)
                    .map(Arc::new);
                self.pricer = Some((generation, pricer.clone()));
                pricer
            }
        }
    }

    /// Add a finished request's tokens and money (not its count: see `admit`).
    fn add(&mut self, row: &LedgerRow, money: (f64, f64), count_request: bool) {
        let client = row.client.as_deref().map(Arc::<str>::from);
        let today = self.today.entry(client.clone()).or_default();
        today.add_money(row, money);
        if count_request {
            today.requests += 1;
        }
        let Some(session) = row.session_id.as_deref() else {
            return;
        };
        let sessions = self.sessions();
        if sessions.get(session).is_none() {
            sessions.insert(
                session.to_owned(),
                SessionUse {
                    client,
                    ..SessionUse::default()
                },
            );
        }
        if let Some(s) = sessions.get_mut(session) {
            s.total.requests += 1;
            s.total.add_money(row, money);
            if row.provider != "-" {
                s.last_model = Some(format!("{},{}", row.provider, row.model));
            }
            s.context_cleared_blocks += u64::from(row.context_cleared_blocks);
        }
    }
}

impl ClientUsage {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Count a request of `caller`, unless its `daily_requests` is used up.
    pub fn admit(&self, caller: &Caller, config: &Config) -> Result<(), Refusal> {
        if config.clients.is_empty() {
            return Ok(());
        }
        let (day, resets) = day_of(Utc::now(), config.clients_timezone);
        let limit = caller
            .client_name()
            .and_then(|n| config.client(n)?.daily_requests);
        let key = caller.client_name().map(Arc::<str>::from);
        let mut inner = self.lock();
        inner.roll(day);
        let today = inner.today.entry(key).or_default();
        if limit.is_some_and(|limit| today.requests >= limit) {
            return Err(Refusal::Requests {
                limit: limit.unwrap_or(0),
                resets,
            });
        }
        today.requests += 1;
        Ok(())
    }

    /// The refusal when `caller` has spent its `daily_cloud_usd`: its requests may
    /// then reach local providers only.
    pub fn cloud_blocked(&self, caller: &Caller, config: &Config) -> Option<Refusal> {
        let limit = config.client(caller.client_name()?)?.daily_cloud_usd?;
        let (day, resets) = day_of(Utc::now(), config.clients_timezone);
        let mut inner = self.lock();
        inner.roll(day);
        let spent = inner
            .today
            .get(&caller.client_name().map(Arc::<str>::from))
            .map_or(0.0, |u| u.cloud_usd);
        (spent >= limit).then_some(Refusal::Cloud {
            limit,
            spent,
            resets,
        })
    }

    /// Add a finished request (its ledger record) to its client's day and its session.
    pub fn record(&self, record: &UsageRecord, config: &Config, generation: u64) {
        if config.clients.is_empty() {
            return;
        }
        let row = LedgerRow::from_record(record);
        let (day, _) = day_of(Utc::now(), config.clients_timezone);
        // Priced outside the lock: a price lookup is the slowest step here.
        let pricer = self.lock().pricer(config, generation);
        let money = pricer.map_or((0.0, 0.0), |p| p.money(&row));
        let mut inner = self.lock();
        inner.roll(day);
        inner.add(&row, money, false);
    }

    /// Seed the day's counters from the ledger's rows of today (each counted as a
    /// request), once, when the config first has clients. Rows before today are
    /// skipped.
    pub fn seed(&self, rows: &[LedgerRow], config: &Config, generation: u64) {
        if config.clients.is_empty() {
            return;
        }
        let (day, _) = day_of(Utc::now(), config.clients_timezone);
        let mut inner = self.lock();
        if inner.seeded {
            return;
        }
        inner.seeded = true;
        inner.roll(day);
        let pricer = inner.pricer(config, generation);
        for row in rows {
            let row_day = DateTime::from_timestamp_millis(row.started_at_ms)
                .map(|t| t.with_timezone(&config.clients_timezone).date_naive());
            if row_day == Some(day) {
                let money = pricer.as_ref().map_or((0.0, 0.0), |p| p.money(row));
                inner.add(row, money, true);
            }
        }
    }

    /// Whether the seed has run (the proxy seeds once the config has clients).
    pub fn seeded(&self) -> bool {
        self.lock().seeded
    }

    /// Whether `caller` may see `session`: the admin sees all, a client its own and
    /// sessions nobody has used yet.
    pub fn may_see(&self, caller: &Caller, session: &str) -> bool {
        let Some(name) = caller.client_name() else {
            return true;
        };
        let mut inner = self.lock();
        match inner.sessions().peek(session) {
            Some(s) => s.client.as_deref() == Some(name),
            None => true,
        }
    }

    /// The usage report for `caller` (the admin: every client's day summed, no limits),
    /// with `session`'s use when asked for and the caller's.
    pub fn report(
        &self,
        caller: &Caller,
        config: &Config,
        session: Option<&str>,
    ) -> Result<UsageReport, NotYourSession> {
        let (day, _) = day_of(Utc::now(), config.clients_timezone);
        let client = caller.client_name();
        let mut inner = self.lock();
        inner.roll(day);
        let today = match client {
            Some(name) => inner
                .today
                .get(&Some(Arc::from(name)))
                .copied()
                .unwrap_or_default(),
            None => inner
                .today
                .values()
                .fold(Use::default(), |acc, u| acc.plus(u)),
        };
        let session = match session {
            None => None,
            Some(id) => match inner.sessions().peek(id) {
                Some(s) if client.is_none() || s.client.as_deref() == client => Some(s.clone()),
                Some(_) => return Err(NotYourSession),
                None => None,
            },
        };
        let limits = client.and_then(|n| config.client(n));
        Ok(UsageReport {
            client: client.map(str::to_owned),
            day: day.to_string(),
            timezone: tz_name(config.clients_timezone),
            today: rounded(today),
            limits: Limits {
                daily_requests: limits.and_then(|c| c.daily_requests),
                daily_cloud_usd: limits.and_then(|c| c.daily_cloud_usd),
            },
            session: session.map(|s| SessionUse {
                total: rounded(s.total),
                ..s
            }),
        })
    }
}

/// Money to the cent's hundredth, as `stats` shows it.
fn rounded(mut u: Use) -> Use {
    u.cloud_usd = (u.cloud_usd * 10_000.0).round() / 10_000.0;
    u.saved_usd = (u.saved_usd * 10_000.0).round() / 10_000.0;
    u
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_their_reset_follow_the_offset() {
        let now = DateTime::parse_from_rfc3339("2026-12-07T23:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let utc = FixedOffset::east_opt(0).unwrap();
        let (day, next) = day_of(now, utc);
        assert_eq!(day.to_string(), "2026-12-07");
        assert_eq!(next.to_rfc3339(), "2026-12-08T00:00:00+00:00");
        let plus2 = FixedOffset::east_opt(7200).unwrap();
        let (day, next) = day_of(now, plus2);
        assert_eq!(day.to_string(), "2026-12-08");
        assert_eq!(next.to_rfc3339(), "2026-12-09T00:00:00+02:00");
        assert_eq!(tz_name(plus2), "+02:00");
        assert_eq!(tz_name(utc), "UTC");
    }
}
