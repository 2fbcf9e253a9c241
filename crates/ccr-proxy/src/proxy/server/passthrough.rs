//! An Anthropic-kind stream passed to the client byte for byte, with the idle timeout,
//! usage read on the side for the ledger, and an error event if it ends without
//! `message_stop`. A stream that continues a committed answer (a rescue's fallback)
//! goes through the [`Splicer`] instead: its `message_start` dropped, its blocks
//! numbered after the ones shown.

use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::context::{Attempt, ChunkSource};
use super::finish::StreamEnd;
use super::spliced::Splicer;
use super::translated::idle_timeout;
use crate::ledger::RequestOutcome;
use crate::proxy::error::ProxyError;
use crate::proxy::wire::anthropic::Usage;
use crate::proxy::wire::lines::FrameError;
use crate::proxy::wire::sse::SseDecoder;

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The upstream's stream, to pass on.
pub(super) fn open(attempt: &Attempt<'_>, response: reqwest::Response) -> PassThroughStream {
    let resume = attempt.scope.resume.as_ref();
    PassThroughStream {
        upstream: Box::pin(response.bytes_stream()),
        observer: UsageObserver::default(),
        idle: attempt.idle(),
        done: false,
        request_started: attempt.meta.started,
        first_token: None,
        end: None,
        splicer: resume.map(|r| Splicer::new(r.first_block)),
    }
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
pub(super) struct PassThroughStream {
    upstream: ByteStream,
    observer: UsageObserver,
    idle: Duration,
    done: bool,
    /// When the client's request arrived (time to first token counts from here).
    request_started: Instant,
    first_token: Option<Duration>,
    /// How the answer ended, for the chain to record.
    end: Option<StreamEnd>,
    /// Continuing a committed answer: the events are rewritten to follow it.
    splicer: Option<Splicer>,
}

impl ChunkSource for PassThroughStream {
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let failure = match tokio::time::timeout(self.idle, self.upstream.next()).await {
            Ok(Some(Ok(bytes))) => {
                if self.first_token.is_none() {
                    self.first_token = Some(self.request_started.elapsed());
                }
                self.observer.observe(&bytes);
                match (self.observer.oversize, self.splicer.as_mut()) {
                    (None, None) => return Some(bytes),
                    (None, Some(splicer)) => {
                        let mut out = Vec::new();
                        splicer.feed(&bytes, &mut out);
                        return Some(Bytes::from(out));
                    }
                    (Some(e), _) => (e.kind(), ProxyError::oversize_stream(e)),
                }
            }
            Ok(None) if self.observer.ended() => {
                self.done = true;
                self.end(RequestOutcome::Ok);
                let mut out = Vec::new();
                if let Some(splicer) = self.splicer.as_mut() {
                    splicer.finish(&mut out);
                }
                return (!out.is_empty()).then(|| Bytes::from(out));
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

    fn take_end(&mut self) -> Option<StreamEnd> {
        self.end.take()
    }

    fn so_far(&self) -> StreamEnd {
        self.seen(RequestOutcome::ClientCancelled)
    }
}

impl PassThroughStream {
    /// The answer ended with `outcome`: what the chain records.
    fn end(&mut self, outcome: RequestOutcome) {
        self.end = Some(self.seen(outcome));
    }

    fn seen(&self, outcome: RequestOutcome) -> StreamEnd {
        StreamEnd {
            usage: self.observer.seen.usage,
            estimated: !self.observer.seen.saw_usage,
            first_token: self.first_token,
            outcome,
            repairs: None,
            unfit_calls: 0,
        }
    }
}
