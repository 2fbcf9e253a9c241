//! The dashboard the proxy serves at `/ui`: what it is doing and what it saves.
//!
//! * `routes`: the endpoints (pages, JSON, server-sent events) and the session guard.
//! * `assets`: the page itself, plain HTML/CSS/JS embedded in the binary, and the
//!   security headers every `/ui` answer carries (a strict Content-Security-Policy).
//! * `auth`: one-use login tickets and session cookies, for proxies with an `APIKEY`.
//! * `overview`: the Overview figures, from the same ledger function as `stats`.
//! * `chart`: the savings-per-day chart, drawn here as SVG.
//! * `live`: rows of the Live table, from the ledger and its live feed.
//! * `setup`: the Setup page, one cached `doctor` run.
//!
//! [`router`] returns an `axum::Router` that the proxy merges into its own app; the
//! handlers share one [`UiState`]. Nothing here runs until someone opens the page: an
//! idle dashboard costs the proxy one struct, and a request the one atomic load of
//! [`crate::ledger::LiveFeed::publish`].

mod assets;
mod auth;
mod chart;
mod live;
mod overview;
mod routes;
mod setup;

use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

pub use auth::{COOKIE, SESSION_TTL, TICKET_TTL};
pub use live::LiveRow;
pub use overview::{Overview, Window, WINDOWS};
pub use routes::router;
pub use setup::Setup;

use crate::ledger::LedgerHandle;
use crate::proxy::reload::LiveConfig;

/// At most this many browsers may follow the live feed at once; each holds a
/// connection and a receiver.
pub const MAX_EVENT_STREAMS: usize = 16;

/// The files the dashboard reads.
#[derive(Debug, Clone)]
pub struct UiPaths {
    /// The config file (for the Setup page's doctor run and `config show` view).
    pub config: PathBuf,
    /// The usage ledger.
    pub ledger: PathBuf,
}

/// What the dashboard's handlers share.
#[derive(Debug)]
pub struct UiState {
    config: Arc<LiveConfig>,
    ledger: LedgerHandle,
    paths: UiPaths,
    sessions: auth::Sessions,
    setup: setup::SetupCache,
    /// Live-feed connections open now.
    streams: AtomicUsize,
    /// One overview computation at a time: a page reloaded in a loop cannot take more
    /// than one core from the proxy.
    overview_gate: tokio::sync::Semaphore,
    /// Cancelled on shutdown, so open event streams end and the server can stop.
    shutdown: tokio_util::sync::CancellationToken,
    /// Wrong keys at `POST /ui/ticket`, per client: it answers whether a key is right,
    /// like the API routes, so it is throttled like them.
    ticket_throttle: crate::proxy::auth_throttle::AuthThrottle,
}

impl UiState {
    /// `config` and `ledger` are the proxy's own (the live feed comes from the ledger
    /// handle, whether or not the ledger is enabled).
    pub fn new(config: Arc<LiveConfig>, ledger: LedgerHandle, paths: UiPaths) -> Arc<UiState> {
        Arc::new(UiState {
            config,
            ledger,
            paths,
            sessions: auth::Sessions::default(),
            setup: setup::SetupCache::default(),
            streams: AtomicUsize::new(0),
            overview_gate: tokio::sync::Semaphore::new(1),
            shutdown: tokio_util::sync::CancellationToken::new(),
            ticket_throttle: Default::default(),
        })
    }

    /// End every open event stream (the proxy calls this when it shuts down).
    pub fn close(&self) {
        self.shutdown.cancel();
    }
}
