//! An Anthropic-kind stream passed to the client byte for byte, with the idle timeout,
//! usage read on the side for the ledger, and an error event if it ends without
//! `message_stop`.

use std::pin::Pin;
use std::time::Duration;

use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::context::{Attempt, ChunkSource};
use super::finish::Finisher;
use super::translated::idle_timeout;
use crate::ledger::RequestOutcome;
use crate::proxy::error::ProxyError;
use crate::proxy::wire::anthropic::Usage;
use crate::proxy::wire::lines::FrameError;
use crate::proxy::wire::sse::SseDecoder;

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Answer with the upstream's stream.
pub(super) fn respond(attempt: &Attempt<'_>, response: reqwest::Response) -> Response {
    let stream = PassThroughStream {
        upstream: Box::pin(response.bytes_stream()),
        observer: UsageObserver::default(),
        idle: attempt.idle(),
        done: false,
        first_token: None,
        finisher: Some(attempt.finisher()),
    };
    attempt.sse_response(stream)
}

/// Reads usage from an Anthropic stream without changing a byte of it, and notices
/// whether it ended with `message_stop`.
#[derive(Debug, Default)]
struct UsageObserver {
    sse: SseDecoder,
    seen: Seen,
    /// The stream outgrew a limit of the decoder: it is ended with an error.
    oversize: Option<FrameError>,
}

/// What the events so far said.
#[derive(Debug, Default)]
struct Seen {
    usage: Usage,
    saw_usage: bool,
    saw_stop: bool,
}

impl UsageObserver {
    fn observe(&mut self, mut bytes: &[u8]) {
        while let Some(event) = self.sse.next(&mut bytes) {
            match event {
                Ok(event) => self.seen.event(event.data),
                Err(e) => self.oversize = Some(e),
            }
        }
    }

    /// The upstream's body ended: whether it ended with `message_stop` (a last event
    /// without its blank line counts, as a line-by-line reader saw it).
    fn ended(&mut self) -> bool {
        if let Ok(Some(event)) = self.sse.finish() {
            self.seen.event(event.data);
        }
        self.seen.saw_stop
    }
}

impl Seen {
    fn event(&mut self, data: &[u8]) {
        // Only the two event kinds that carry usage are parsed.
        let is = |needle: &[u8]| memchr::memmem::find(data, needle).is_some();
        if is(b"\"message_stop\"") {
            self.saw_stop = true;
        } else if is(b"\"message_start\"") || is(b"\"message_delta\"") {
            let Ok(v) = serde_json::from_slice::<serde_json::Value>(data.trim_ascii()) else {
                return;
            };
            let usage = v
                .get("usage")
                .or_else(|| v.get("message").and_then(|m| m.get("usage")));
            if let Some(u) = usage {
                self.add_usage(u);
            }
        }
    }

    /// Later events overwrite what earlier ones reported, field by field.
    fn add_usage(&mut self, u: &serde_json::Value) {
        let get = |k: &str| u.get(k).and_then(serde_json::Value::as_u64);
        if let Some(n) = get("input_tokens") {
            self.usage.input_tokens = n;
        }
        if let Some(n) = get("output_tokens") {
            self.usage.output_tokens = n;
        }
        if let Some(n) = get("cache_read_input_tokens") {
            self.usage.cache_read_input_tokens = Some(n);
        }
        if let Some(n) = get("cache_creation_input_tokens") {
            self.usage.cache_creation_input_tokens = Some(n);
        }
        self.saw_usage = true;
    }
}

/// An Anthropic stream passed through byte for byte.
struct PassThroughStream {
    upstream: ByteStream,
    observer: UsageObserver,
    idle: Duration,
    done: bool,
    first_token: Option<Duration>,
    finisher: Option<Finisher>,
}

impl Drop for PassThroughStream {
    fn drop(&mut self) {
        self.end(RequestOutcome::ClientCancelled);
    }
}

impl ChunkSource for PassThroughStream {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let failure = match tokio::time::timeout(self.idle, self.upstream.next()).await {
            Ok(Some(Ok(bytes))) => {
                if self.first_token.is_none() {
                    self.first_token = self.finisher.as_ref().map(Finisher::elapsed);
                }
                self.observer.observe(&bytes);
                match self.observer.oversize {
                    None => return Some(bytes),
                    Some(e) => (e.kind(), ProxyError::oversize_stream(e)),
                }
            }
            Ok(None) if self.observer.ended() => {
                self.done = true;
                self.end(RequestOutcome::Ok);
                return None;
            }
            Ok(None) => (
                "stream_truncated",
                ProxyError::bad_gateway(
                    "the upstream closed the stream before message_stop; the answer is incomplete",
                ),
            ),
            Ok(Some(Err(e))) => (
                "stream_broken",
                ProxyError::bad_gateway(format!("the upstream connection broke mid-answer: {e}")),
            ),
            Err(_) => ("timeout", idle_timeout(self.idle)),
        };
        self.done = true;
        self.end(RequestOutcome::UpstreamError(failure.0.to_owned()));
        // The blank lines end any event the upstream left half-written.
        let mut out = b"\n\n".to_vec();
        failure.1.write_sse(&mut out);
        Some(Bytes::from(out))
    }
}

impl PassThroughStream {
    /// Record the end once: the first call wins (a later `Drop` finds nothing left).
    fn end(&mut self, outcome: RequestOutcome) {
        if let Some(f) = self.finisher.take() {
            f.finish(
                self.observer.seen.usage,
                !self.observer.seen.saw_usage,
                self.first_token,
                outcome,
            );
        }
    }
}
