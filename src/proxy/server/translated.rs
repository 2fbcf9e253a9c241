//! An OpenAI-kind stream translated to Anthropic events as the bytes arrive, with
//! keep-alive pings while the upstream is silent and the idle timeout.

use std::pin::Pin;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::attempt::{Attempt, ChunkSource};
use super::finish::Finisher;
use crate::ledger::RequestOutcome;
use crate::proxy::anthropic::MessagesRequest;
use crate::proxy::error::{ErrorKind, ProxyError};
use crate::proxy::translate::stream::{StreamTranslator, PING_EVENT};
use crate::proxy::translate::tool_names::ToolNameMap;
use crate::proxy::upstream::AttemptError;

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;
type PendingHead =
    Pin<Box<dyn std::future::Future<Output = Result<reqwest::Response, AttemptError>> + Send>>;

/// Send the translated request and answer with the translated stream.
///
/// Waits for the upstream's answer head for up to one ping interval: fast failures
/// (refused, 4xx/5xx) keep their HTTP status and can fall back. A server that answers
/// only after its prefill (Ollama) gets the stream committed instead, so the client
/// receives message_start and pings meanwhile. Counting a new conversation's first
/// request can take milliseconds, so it runs while the upstream reads the request.
pub(super) async fn open(
    attempt: &Attempt<'_>,
    req: &MessagesRequest,
    body: Vec<u8>,
    names: ToolNameMap,
    message_id: String,
) -> Result<Response, AttemptError> {
    let state = attempt.state();
    let idle = attempt.idle();
    let upstream = state.upstream.clone();
    let (provider, headers) = (attempt.provider.clone(), attempt.scope.headers.clone());
    let mut head: PendingHead = Box::pin(async move {
        upstream
            .send(&provider, &headers, Bytes::from(body), true, idle)
            .await
    });
    let ping_interval = state.options.ping_interval;
    let (head_result, input_estimate) =
        tokio::join!(tokio::time::timeout(ping_interval, &mut head), async {
            attempt.input_estimate(req)
        });
    let (upstream, pending_head): (ByteStream, Option<PendingHead>) = match head_result {
        Ok(Ok(response)) => (Box::pin(response.bytes_stream()), None),
        Ok(Err(e)) => return Err(e),
        Err(_still_waiting) => (Box::pin(futures_util::stream::empty()), Some(head)),
    };
    let model = attempt.target.model.clone();
    let stream = TranslatedStream {
        upstream,
        pending_head,
        translator: StreamTranslator::new(message_id, model, input_estimate, names),
        idle,
        ping_interval,
        started: false,
        done: false,
        last_upstream: tokio::time::Instant::now(),
        first_token: None,
        finisher: Some(attempt.finisher()),
    };
    Ok(attempt.sse_response(stream))
}

/// An OpenAI stream being translated, with pings and the idle timeout.
struct TranslatedStream {
    upstream: ByteStream,
    /// The upstream has not answered yet (the stream was committed while waiting).
    pending_head: Option<PendingHead>,
    translator: StreamTranslator,
    idle: Duration,
    ping_interval: Duration,
    started: bool,
    done: bool,
    /// When the upstream last sent bytes (the idle timeout counts from here; pings
    /// do not reset it).
    last_upstream: tokio::time::Instant,
    first_token: Option<Duration>,
    finisher: Option<Finisher>,
}

impl Drop for TranslatedStream {
    fn drop(&mut self) {
        if let Some(f) = self.finisher.take() {
            let summary = self.translator.summary();
            f.finish(
                summary.usage,
                summary.usage_estimated,
                self.first_token,
                RequestOutcome::ClientCancelled,
            );
        }
    }
}

impl ChunkSource for TranslatedStream {
    /// The next bytes for the client, or None when the answer is over.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        let mut out = Vec::new();
        if !self.started {
            // message_start right away: the client sees the answer begin while the
            // upstream is still prefilling.
            self.started = true;
            self.translator.start(&mut out);
            return Some(Bytes::from(out));
        }
        // A ping goes out when the client has had nothing for a ping interval.
        let ping_at = tokio::time::Instant::now() + self.ping_interval;
        loop {
            if self.pending_head.is_some() {
                match self.wait_for_head(ping_at, &mut out).await {
                    HeadWait::Ping => return Some(Bytes::from_static(PING_EVENT)),
                    HeadWait::Failed => return Some(Bytes::from(out)),
                    HeadWait::Answered => {}
                }
            }
            let idle_deadline = self.last_upstream + self.idle;
            tokio::select! {
                biased;
                next = tokio::time::timeout_at(idle_deadline, self.upstream.next()) => {
                    self.translate(next, &mut out);
                    if !out.is_empty() {
                        return Some(Bytes::from(out));
                    }
                    if self.done {
                        return None;
                    }
                }
                _ = tokio::time::sleep_until(ping_at) => return Some(Bytes::from_static(PING_EVENT)),
            }
        }
    }
}

impl TranslatedStream {
    /// The stream was committed before the upstream answered: wait for its head (its
    /// `send` bounds the wait by the idle timeout) until the next ping is due.
    async fn wait_for_head(
        &mut self,
        ping_at: tokio::time::Instant,
        out: &mut Vec<u8>,
    ) -> HeadWait {
        let Some(head) = self.pending_head.as_mut() else {
            return HeadWait::Answered;
        };
        tokio::select! {
            biased;
            result = head => {
                self.pending_head = None;
                match result {
                    Ok(response) => {
                        self.upstream = Box::pin(response.bytes_stream());
                        self.last_upstream = tokio::time::Instant::now();
                        HeadWait::Answered
                    }
                    Err(e) => {
                        self.translator.fail(&e.failure.ledger_kind(), e.client, out);
                        self.done = true;
                        self.record_end();
                        HeadWait::Failed
                    }
                }
            }
            _ = tokio::time::sleep_until(ping_at) => HeadWait::Ping,
        }
    }

    /// Feed what the upstream sent (or its end, break or silence) to the translator.
    fn translate(
        &mut self,
        next: Result<Option<reqwest::Result<Bytes>>, tokio::time::error::Elapsed>,
        out: &mut Vec<u8>,
    ) {
        match next {
            Ok(Some(Ok(bytes))) => {
                self.last_upstream = tokio::time::Instant::now();
                if self.first_token.is_none() {
                    self.first_token = self.finisher.as_ref().map(Finisher::elapsed);
                }
                self.translator.feed(&bytes, out);
            }
            Ok(Some(Err(e))) => self.translator.fail(
                "stream_broken",
                ProxyError::bad_gateway(format!("the upstream connection broke mid-answer: {e}")),
                out,
            ),
            Ok(None) => self.translator.finish(out),
            Err(_) => self
                .translator
                .fail("timeout", idle_timeout(self.idle), out),
        }
        if self.translator.is_finished() {
            self.done = true;
            self.record_end();
        }
    }

    fn record_end(&mut self) {
        if let Some(f) = self.finisher.take() {
            let summary = self.translator.summary();
            let outcome = match &summary.error {
                None => RequestOutcome::Ok,
                Some(kind) => RequestOutcome::UpstreamError(kind.clone()),
            };
            f.finish(
                summary.usage,
                summary.usage_estimated,
                self.first_token,
                outcome,
            );
        }
    }
}

/// What waiting for a late answer head came to.
enum HeadWait {
    Answered,
    /// It failed; the error event is in the output.
    Failed,
    Ping,
}

/// The error for an upstream silent longer than `STREAM_IDLE_TIMEOUT_MS`.
pub(super) fn idle_timeout(idle: Duration) -> ProxyError {
    ProxyError::new(
        StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Api,
        format!(
            "the upstream sent nothing for {} s (STREAM_IDLE_TIMEOUT_MS)",
            idle.as_secs()
        ),
    )
}
