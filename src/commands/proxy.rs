//! `ccr-setup proxy`: run the bundled proxy in the foreground until Ctrl-C / SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use super::{Context, Outcome};
use crate::cli::ProxyArgs;
use crate::config_watch::{self, ReloadEvent, WatchOptions};
use crate::ledger::{Ledger, LedgerHandle, LedgerOptions};
use crate::proxy::reload::LiveConfig;
use crate::proxy::server::{self, AppState, ServerOptions};

/// How long in-flight answers get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// How long shutdown waits for the ledger writer to commit queued rows.
const LEDGER_FLUSH: Duration = Duration::from_secs(2);

pub fn run(ctx: &Context, args: ProxyArgs) -> anyhow::Result<Outcome> {
    let config = crate::config::load(&ctx.config_path)?;
    let host = args.host.unwrap_or_else(|| config.host.clone());
    let port = args.port.unwrap_or(config.port);
    crate::proxy::auth::check_bind(&host, &config)?;
    crate::proxy::clients::check_server_mode(&config)?;

    crate::proxy::allocator::tune_for_proxy();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(ctx, config, host, port))
}

/// One warning per provider disabled for a key set nowhere (at start and on reload).
fn warn_keyless(config: &crate::config::Config) {
    for (provider, variable) in &config.keyless {
        tracing::warn!(
            "provider {provider} is disabled: ${variable} is not set in the environment or the secrets store; routes and fallbacks skip it. Fix: `ccr-setup init` (stores the key) or export {variable}, then restart the proxy"
        );
    }
}

/// Seed the per-client day counters from today's ledger rows, once the config has
/// clients (at start, or at the reload that adds the first). A ledger that cannot be
/// read starts the counters at zero, said once.
fn seed_clients(state: &AppState) {
    let config = state.config.current();
    if config.clients.is_empty() || state.clients.seeded() {
        return;
    }
    let path = crate::paths::ledger_path();
    // A day is at most 26 hours long in any offset's terms; `seed` keeps today's rows.
    let since = chrono::Utc::now().timestamp_millis() - 26 * 3_600_000;
    let rows = if path.exists() {
        crate::ledger::open_for_reading(&path)
            .map_err(|e| crate::diagnostic::one_line(&e))
            .and_then(|conn| {
                crate::ledger::read_rows(&conn, Some(since))
                    .map_err(|e| crate::diagnostic::one_line(&e))
            })
            .unwrap_or_else(|e| {
                tracing::warn!("client limits start from zero: cannot read the usage ledger: {e}");
                Vec::new()
            })
    } else {
        Vec::new()
    };
    state
        .clients
        .seed(&rows, &config, state.config.generation());
}

/// What the proxy does on each config watcher event: log it, and seed the client
/// counters the first time a reload brings clients.
fn on_reload(state: Arc<AppState>) -> impl Fn(ReloadEvent) + Send + 'static {
    move |event| match event {
        ReloadEvent::Reloaded { generation } => {
            tracing::info!("config reloaded (generation {generation})");
            seed_clients(&state);
        }
        ReloadEvent::Rejected { error } => {
            tracing::warn!("config edit rejected, previous config kept: {error}")
        }
        ReloadEvent::RestartNeeded { what } => {
            tracing::warn!("{what} changed; restart the proxy to apply it")
        }
        ReloadEvent::EventsUnavailable { error } => {
            tracing::debug!("file events unavailable, polling the config: {error}")
        }
    }
}

async fn serve(
    ctx: &Context,
    config: crate::config::Config,
    host: String,
    port: u16,
) -> anyhow::Result<Outcome> {
    let ledger = if crate::ledger::ledger_enabled(&config.raw) {
        Ledger::spawn(
            crate::paths::ledger_path(),
            LedgerOptions::for_config(&config),
        )
    } else {
        LedgerHandle::disabled()
    };
    warn_keyless(&config);
    let live = LiveConfig::new(config);
    let state = AppState::new(live.clone(), ledger, ServerOptions::default())
        .context("cannot build the HTTP client")?;
    seed_clients(&state);
    let seeding = Arc::clone(&state);
    let dashboard = crate::ui::UiState::new(
        live.clone(),
        state.ledger.clone(),
        crate::ui::UiPaths {
            config: ctx.config_path.clone(),
            ledger: crate::paths::ledger_path(),
        },
    );

    let bind_host = host.clone();
    let _watcher = config_watch::watch(
        ctx.config_path.clone(),
        live,
        WatchOptions::default(),
        move |candidate| {
            crate::proxy::auth::check_bind(&bind_host, candidate).map_err(|e| e.to_string())?;
            crate::proxy::clients::check_server_mode(candidate).map_err(|e| e.to_string())?;
            warn_keyless(candidate);
            Ok(())
        },
        on_reload(seeding),
    );
    // The tokenizer is not loaded here: its tables take ~54 MB, and an idle proxy (the
    // login service waiting for Claude Code) should stay small. The first request that
    // needs an estimate loads it (~100 ms, overlapped with the upstream's work).

    let address = format!("{host}:{port}");
    let listener = tokio::net::TcpListener::bind(&address)
        .await
        .with_context(|| {
            format!("cannot listen on {address} (is another proxy running? `ccr-setup status`)")
        })?;
    tracing::info!(
        "ccr-setup proxy {} listening on http://{}",
        env!("CARGO_PKG_VERSION"),
        listener.local_addr()?
    );

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = server::serve(
        listener,
        server::app_with_dashboard(
            Arc::clone(&state),
            Some(crate::ui::router(dashboard.clone())),
        ),
        async move {
            let _ = stop_rx.await;
        },
    );
    let mut server = std::pin::pin!(server);
    tokio::select! {
        () = &mut server => return Ok(Outcome::Success),
        _ = shutdown_signal() => {}
    }
    tracing::info!("shutting down");
    dashboard.close();
    let _ = stop_tx.send(());
    if tokio::time::timeout(SHUTDOWN_GRACE, server).await.is_err() {
        tracing::warn!(
            "answers still in flight after {} s were cut off",
            SHUTDOWN_GRACE.as_secs()
        );
    }
    // The last requests' rows are still queued; commit them before the process exits.
    if !state.ledger.flush(LEDGER_FLUSH).await {
        tracing::warn!("usage ledger: the last rows were not written before exit");
    }
    Ok(Outcome::Success)
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
