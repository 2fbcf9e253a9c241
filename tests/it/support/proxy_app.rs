//! The real proxy app (`server::app`) on 127.0.0.1:0, built from a config document, with
//! the ledger rows it writes captured in a channel. Used by the routing, fallback and
//! end-to-end tests; the config can be a file (for live reload) or a literal document.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ccr_setup::config::{Config, ConfigFile};
use ccr_setup::ledger::{LedgerHandle, UsageRecord};
use ccr_setup::proxy::reload::LiveConfig;
use ccr_setup::proxy::server::{app, serve, AppState, ServerOptions};
use serde_json::Value;

pub struct ProxyApp {
    pub base: String,
    pub live: Arc<LiveConfig>,
    ledger: Option<tokio::sync::mpsc::Receiver<UsageRecord>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Drop for ProxyApp {
    fn drop(&mut self) {
        self._server.abort();
    }
}

/// Resolve a config document the way the proxy does (no environment lookups).
pub fn config(doc: &Value) -> Config {
    ConfigFile::new(Path::new("/test/config.json"), doc.clone())
        .resolve_with(&|_| None)
        .unwrap_or_else(|e| panic!("test config is invalid: {e}"))
}

impl ProxyApp {
    pub async fn start(doc: &Value) -> ProxyApp {
        Self::start_config(config(doc)).await
    }

    pub async fn start_config(config: Config) -> ProxyApp {
        Self::start_with(config, ServerOptions::default()).await
    }

    /// With server options (such as the ping interval); ledger rows are captured.
    pub async fn start_with(config: Config, options: ServerOptions) -> ProxyApp {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let mut app = Self::serve(config, LedgerHandle::from_sender(tx), options).await;
        app.ledger = Some(rx);
        app
    }

    /// Recording through a real ledger handle (rows are not captured).
    pub async fn start_with_ledger(config: Config, ledger: LedgerHandle) -> ProxyApp {
        Self::serve(config, ledger, ServerOptions::default()).await
    }

    async fn serve(config: Config, ledger: LedgerHandle, options: ServerOptions) -> ProxyApp {
        let live = LiveConfig::new(config);
        let state = AppState::new(live.clone(), ledger, options).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            serve(listener, app(Arc::clone(&state)), std::future::pending()).await;
        });
        ProxyApp {
            base,
            live,
            ledger: None,
            _server: server,
        }
    }

    /// The next ledger row (one per `/v1/messages` request).
    pub async fn next_record(&mut self) -> UsageRecord {
        let ledger = self.ledger.as_mut().expect("rows are captured");
        tokio::time::timeout(Duration::from_secs(5), ledger.recv())
            .await
            .expect("a ledger row within 5 s")
            .expect("ledger channel open")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST `body` to `/v1/messages?beta=true` as Claude Code does.
    pub async fn post(&self, body: &Value) -> reqwest::Response {
        reqwest::Client::new()
            .post(self.url("/v1/messages?beta=true"))
            .bearer_auth("client-token")
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

/// The `x-ccr-route` header of a response.
pub fn route_of(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("x-ccr-route")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The status and JSON body of an error answer (which must be JSON).
pub async fn error_body(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    assert_eq!(
        resp.headers()["content-type"],
        "application/json",
        "errors are JSON"
    );
    (status, resp.json().await.unwrap())
}
