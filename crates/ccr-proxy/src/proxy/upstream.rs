//! The HTTP client side: one pooled client, the request headers each provider kind
//! needs, and failures turned into both an Anthropic error (for the client) and an
//! [`AttemptFailure`] (for the fallback decision and the ledger).
//!
//! Cancellation is by ownership: the upstream response is owned by the body stream
//! sent to the client, so when the client goes away the response is dropped and the
//! upstream connection is closed at once (the GPU stops generating).

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, StatusCode};
use bytes::Bytes;
use futures_util::StreamExt;

use super::error::{ErrorKind, ProxyError};
use super::fallback::AttemptFailure;
use super::replicas::ReplicaTable;
use crate::config::{Provider, ProviderKind};

/// The Anthropic API version sent when the client named none.
pub const DEFAULT_ANTHROPIC_VERSION: &str = "2023-06-01";

/// The most of an upstream error body kept for the message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// The largest non-streamed answer read from an upstream.
pub const MAX_ANSWER_BYTES: usize = 64 * 1024 * 1024;
/// The largest `count_tokens` answer read (it is one small JSON object).
pub const MAX_COUNT_TOKENS_ANSWER_BYTES: usize = 1024 * 1024;

/// A failed attempt: what the client is told, and how the fallback logic sees it.
#[derive(Debug, Clone)]
pub struct AttemptError {
    pub client: ProxyError,
    pub failure: AttemptFailure,
}

impl AsRef<AttemptFailure> for AttemptError {
    fn as_ref(&self) -> &AttemptFailure {
        &self.failure
    }
}

/// The shared clients. Cloning is cheap (the pools are shared).
#[derive(Debug, Clone)]
pub struct Upstream {
    /// For loopback providers: never through `HTTP_PROXY`/`ALL_PROXY`, which would send
    /// every local prompt to that proxy in clear text (and usually fail).
    local: reqwest::Client,
    /// For remote providers: `HTTP(S)_PROXY`/`NO_PROXY` honoured (a corporate proxy in
    /// front of the Claude API is real).
    remote: reqwest::Client,
    /// Which replicas are up and how busy, for providers with several URLs.
    pub replicas: Arc<ReplicaTable>,
}

impl Upstream {
    /// Clients with the config's connect timeout. No overall timeout: streams are
    /// bounded by the idle timeout between chunks instead, which the caller applies.
    pub fn new(connect_timeout: Duration) -> Result<Upstream, reqwest::Error> {
        let builder = || {
            reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .tcp_nodelay(true)
                .pool_idle_timeout(Duration::from_secs(90))
                // Upstreams are configured by URL; a redirect would resend credentials
                // to a host the user did not name.
                .redirect(reqwest::redirect::Policy::none())
        };
        Ok(Upstream {
            local: builder().no_proxy().build()?,
            remote: builder().build()?,
            replicas: Default::default(),
        })
    }

    /// The client for `provider`: local providers never go through a proxy.
    pub fn client_for(&self, provider: &Provider) -> &reqwest::Client {
        self.client_for_url(provider.parsed_url().as_ref().as_ref())
    }

    /// The client for `url`: a loopback address never goes through a proxy.
    fn client_for_url(&self, url: Option<&url::Url>) -> &reqwest::Client {
        if url.is_some_and(crate::config::is_loopback_url) {
            &self.local
        } else {
            &self.remote
        }
    }

    /// POST `body` to the provider: to its one URL, or to the replica `affinity` (the
    /// session's key, [`crate::proxy::replicas::affinity_key`]) belongs on. A replica
    /// that refuses the connection (nothing was sent) is marked down and the next one
    /// in the session's order is tried. Waits for the response head at most
    /// `head_timeout` (a local server may prefill for minutes before answering). A
    /// non-2xx answer is read (bounded) and returned as an error that keeps the
    /// upstream's message.
    pub async fn send(
        &self,
        provider: &Provider,
        client_headers: &HeaderMap,
        body: Bytes,
        stream: bool,
        head_timeout: Duration,
        affinity: u64,
    ) -> Result<reqwest::Response, AttemptError> {
        let request = Request {
            provider,
            client_headers,
            stream,
            head_timeout,
        };
        if provider.replicas.len() < 2 {
            return request
                .send(self, &provider.api_base_url, body)
                .await
                .map_err(|(e, _)| e);
        }
        let table = &self.replicas;
        let order = table.order(affinity, &provider.replicas, provider.replica_max_in_flight);
        let home = order.preferred();
        let mut refused = None;
        for i in order.indexes() {
            let replica = &provider.replicas[i];
            let lease = table.lease(replica);
            match request.send(self, &replica.url, Bytes::clone(&body)).await {
                Ok(response) => {
                    table.succeeded(replica);
                    if i != home {
                        tracing::info!(
                            "{}: replica {i} answered for key {affinity:016x}, whose replica {home} is down or full",
                            provider.name
                        );
                    } else {
                        tracing::debug!(
                            "{}: replica {i} of {} for key {affinity:016x}",
                            provider.name,
                            provider.replicas.len()
                        );
                    }
                    return Ok(lease.hold_during(response));
                }
                Err((e, connected)) => {
                    let countable = !connected
                        || matches!(e.failure, AttemptFailure::Timeout(_))
                        || matches!(e.failure, AttemptFailure::Status { status, .. } if status >= 500);
                    if countable && table.failed(replica, !connected) {
                        tracing::warn!(
                            "{}: replica {i} ({}) is down for {} s: {}",
                            provider.name,
                            crate::config::redact_url(&replica.url),
                            super::replicas::RETRY_AFTER.as_secs(),
                            e.failure
                        );
                    }
                    if connected {
                        return Err(e);
                    }
                    refused = Some(e);
                }
            }
        }
        Err(refused.expect("a provider with replicas has at least two"))
    }
}

/// One POST's settings, for whichever URL it goes to.
struct Request<'a> {
    provider: &'a Provider,
    client_headers: &'a HeaderMap,
    stream: bool,
    head_timeout: Duration,
}

impl Request<'_> {
    /// POST to `url`. The error comes with whether a connection was made (false: the
    /// server never saw the request, so another replica may take it).
    async fn send(
        &self,
        upstream: &Upstream,
        url: &str,
        body: Bytes,
    ) -> Result<reqwest::Response, (AttemptError, bool)> {
        let (provider, client_headers) = (self.provider, self.client_headers);
        let head_timeout = self.head_timeout;
        // The provider's own URL was parsed with the config; a replica's is parsed here.
        let parsed = provider.parse_url(url);
        let client = upstream.client_for_url(parsed.as_ref().as_ref());
        let req = match parsed.as_ref() {
            Some(parsed) => client.post(parsed.clone()),
            None => client.post(url),
        };
        let mut req = req
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if self.stream {
            req = req.header(reqwest::header::ACCEPT, "text/event-stream");
        }
        let key = provider.api_key.as_deref().filter(|k| !k.is_empty());
        match provider.kind {
            ProviderKind::OpenAi => {
                if let Some(key) = key {
                    req = req.bearer_auth(key);
                }
            }
            ProviderKind::Anthropic => {
                if let Some(key) = key {
                    req = req.header("x-api-key", key);
                }
                let version = client_headers
                    .get("anthropic-version")
                    .cloned()
                    .unwrap_or(HeaderValue::from_static(DEFAULT_ANTHROPIC_VERSION));
                req = req.header("anthropic-version", version);
                if let Some(beta) = client_headers.get("anthropic-beta") {
                    req = req.header("anthropic-beta", beta.clone());
                }
            }
        }

        let response = match tokio::time::timeout(head_timeout, req.send()).await {
            Err(_) => {
                return Err((
                    timeout_error(provider, url, head_timeout, "an answer"),
                    true,
                ))
            }
            Ok(Err(e)) => return Err((send_error(provider, url, &e), !e.is_connect())),
            Ok(Ok(r)) => r,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let text = read_bounded(response, head_timeout).await;
        let message = serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| super::wire::openai::error_message(&v))
            .unwrap_or_else(|| text.trim().to_owned());
        let status = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        // A local server's own "prompt does not fit", in the wording Claude Code reads
        // its counts from, so it compacts by the right amount.
        let overflow = (status == StatusCode::BAD_REQUEST)
            .then(|| super::overflow::prompt_overflow(&message))
            .flatten();
        let client = match overflow {
            Some((input, limit)) => ProxyError::invalid_request(
                super::overflow::anthropic_message(&provider.name, input, limit, &message),
            ),
            None => ProxyError::from_upstream_status(
                status,
                format!(
                    "provider \"{}\" answered HTTP {}: {message}",
                    provider.name,
                    status.as_u16()
                ),
            ),
        };
        Err((
            AttemptError {
                client,
                failure: AttemptFailure::Status {
                    status: status.as_u16(),
                    body: message,
                },
            },
            true,
        ))
    }
}

/// Read at most [`ERROR_BODY_LIMIT`] bytes of an error answer, lossily decoded.
async fn read_bounded(response: reqwest::Response, timeout: Duration) -> String {
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    let read = async {
        while let Some(Ok(chunk)) = stream.next().await {
            let room = ERROR_BODY_LIMIT - body.len();
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= ERROR_BODY_LIMIT {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
    String::from_utf8_lossy(&body).into_owned()
}

/// Why a whole answer could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the answer is larger than {} MB", .0 / (1024 * 1024))]
    TooLarge(usize),
    #[error("{0}")]
    Broken(#[from] reqwest::Error),
}

/// Read a whole answer of at most `limit` bytes (no time bound: the caller sets one).
pub async fn read_capped(response: reqwest::Response, limit: usize) -> Result<Bytes, ReadError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge(limit));
    }
    let mut body = bytes::BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Where an Anthropic-kind provider counts tokens: its `/v1/messages` URL plus
/// `/count_tokens`. None for OpenAI-kind providers and URLs of another shape.
pub fn count_tokens_url(provider: &crate::config::Provider) -> Option<String> {
    if provider.kind != ProviderKind::Anthropic {
        return None;
    }
    let url = provider.api_base_url.trim_end_matches('/');
    url.ends_with("/v1/messages")
        .then(|| format!("{url}/count_tokens"))
}

/// Is this provider an Ollama server (so the fix is `ccr-setup up`)?
pub fn looks_like_ollama(provider: &Provider) -> bool {
    provider.name.to_ascii_lowercase().contains("ollama")
        || provider
            .parsed_url()
            .as_ref()
            .as_ref()
            .and_then(url::Url::port)
            == Some(11434)
}

fn send_error(provider: &Provider, url: &str, e: &reqwest::Error) -> AttemptError {
    if e.is_timeout() {
        return timeout_error(provider, url, Duration::ZERO, "a connection");
    }
    // reqwest's Display hides the cause ("error sending request"); the root cause
    // says "Connection refused" or "dns error".
    let mut cause = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    let hint = if looks_like_ollama(provider) {
        " Ollama is not running or not reachable: run `ccr-setup up` (or `ccr-setup doctor`)."
    } else {
        " Check that the server is running and that api_base_url is right."
    };
    AttemptError {
        client: ProxyError::new(
            StatusCode::BAD_GATEWAY,
            ErrorKind::Api,
            format!(
                "cannot reach provider \"{}\" at {}: {cause}.{hint}",
                provider.name,
                crate::config::redact_url(url)
            ),
        ),
        failure: AttemptFailure::Connect(cause),
    }
}

fn timeout_error(
    provider: &Provider,
    url: &str,
    after: Duration,
    waiting_for: &str,
) -> AttemptError {
    let after = if after.is_zero() {
        "the connect timeout (CONNECT_TIMEOUT_MS)".to_owned()
    } else {
        format!("{} s", after.as_secs_f64())
    };
    let message = format!(
        "provider \"{}\" at {} gave no {waiting_for} within {after}",
        provider.name,
        crate::config::redact_url(url)
    );
    AttemptError {
        client: ProxyError::new(StatusCode::GATEWAY_TIMEOUT, ErrorKind::Api, message.clone()),
        failure: AttemptFailure::Timeout(message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(name: &str, url: &str) -> Provider {
        Provider {
            name: name.into(),
            api_base_url: url.into(),
            replicas: Arc::from([]),
            replica_max_in_flight: None,
            api_key: None,
            models: vec![],
            transformer: None,
            kind: ProviderKind::OpenAi,
            context_window: None,
            max_tokens: None,
            reasoning_in_history: false,
            context_editing: Default::default(),
            output_reserve: crate::config::DEFAULT_OUTPUT_RESERVE,
            context_target_percent: crate::config::DEFAULT_CONTEXT_TARGET_PERCENT,
            local: None,
            url_parsed: crate::config::ParsedUrl::new(url),
        }
    }

    #[test]
    fn ollama_is_recognised_by_name_or_port() {
        assert!(looks_like_ollama(&provider(
            "local",
            "http://127.0.0.1:11434/v1/chat/completions"
        )));
        assert!(looks_like_ollama(&provider(
            "Ollama-box",
            "http://10.0.0.2:8080/v1/chat/completions"
        )));
        assert!(!looks_like_ollama(&provider(
            "llama",
            "http://127.0.0.1:8080/v1/chat/completions"
        )));
    }

    /// The URL parsed with the config is used only while it is still the provider's
    /// URL: a copy given another one (as count_tokens makes) is read from its own.
    #[test]
    fn a_copy_given_another_url_is_read_from_that_url() {
        let local = provider("llama", "http://127.0.0.1:8080/v1/chat/completions");
        let moved = Provider {
            api_base_url: "http://10.0.0.2:11434/v1/chat/completions".into(),
            ..local.clone()
        };
        assert!(!looks_like_ollama(&local));
        assert!(looks_like_ollama(&moved));
        let upstream = Upstream::new(Duration::from_secs(1)).unwrap();
        assert!(std::ptr::eq(upstream.client_for(&local), &upstream.local));
        assert!(std::ptr::eq(upstream.client_for(&moved), &upstream.remote));
    }
}
