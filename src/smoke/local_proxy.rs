//! The bundled proxy started in-process on a free loopback port with the user's config
//! and the ledger off (smoke requests are not usage), so `up` can send the smoke
//! requests through exactly the code Claude Code will talk to.

use std::time::Duration;

use url::Url;

use crate::config::Config;
use crate::proxy::reload::LiveConfig;
use crate::proxy::server::{self, AppState, ServerOptions};

/// Why the in-process proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum LocalProxyError {
    #[error("cannot build the proxy's HTTP client")]
    Client(#[source] reqwest::Error),
    #[error("cannot listen on loopback")]
    Listen(#[source] std::io::Error),
}

/// A running in-process proxy; [`LocalProxy::stop`] shuts it down.
pub struct LocalProxy {
    /// `http://127.0.0.1:<port>/v1/messages`.
    pub messages_url: Url,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl LocalProxy {
    pub async fn start(config: &Config) -> Result<LocalProxy, LocalProxyError> {
        let state = AppState::new(
            LiveConfig::new(config.clone()),
            crate::ledger::LedgerHandle::disabled(),
            ServerOptions::default(),
        )
        .map_err(LocalProxyError::Client)?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(LocalProxyError::Listen)?;
        let addr = listener.local_addr().map_err(LocalProxyError::Listen)?;
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server::serve(listener, server::app(state), async {
                let _ = stop_rx.await;
            })
            .await;
        });
        let messages_url = Url::parse(&format!("http://{addr}/v1/messages")).expect("valid url");
        Ok(LocalProxy {
            messages_url,
            stop,
            task,
        })
    }

    /// Stop serving and wait (briefly) for the server task to finish.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = tokio::time::timeout(Duration::from_secs(2), self.task).await;
    }
}
