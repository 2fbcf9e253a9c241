//! An OpenAI-kind stream translated to Anthropic events as the bytes arrive, with
//! keep-alive pings while the upstream is silent and the idle timeout.
//!
//! **Holding back.** When Ollama cannot parse a tool call that gpt-oss produced while
//! streaming, it answers HTTP 200, streams the reasoning, sends one empty chunk and
//! ends without `[DONE]` (server/routes.go): a failure that arrives after the stream
//! was committed. So while tools are offered to Ollama, thinking is held back (pings
//! keep the client waiting) until text or a tool call starts. A failure while only
//! thinking was held (or an unusable tool call) ends this stream with a [`Rescue`]:
//! the chain ([`super::chain`]) asks the same model once more, then the rest of the
//! chain, and their answer continues the same client message. Its ledger row names
//! the local target and the reason (`tool_call_parse`).

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::context::{Attempt, ChunkSource, Rescue, Resume};
use super::finish::StreamEnd;
use crate::ledger::RequestOutcome;
use crate::proxy::capabilities::missing_in;
use crate::proxy::error::{ErrorKind, ProxyError};
use crate::proxy::repair::{corrective_note, openai_body_with_note};
use crate::proxy::translate::stream::{StreamTranslator, PING_EVENT, REPETITION};
use crate::proxy::translate::tool_names::ToolNameMap;
use crate::proxy::upstream::AttemptError;
use crate::proxy::wire::anthropic::MessagesRequest;
use crate::proxy::wire::sse::MAX_EVENT_BYTES;

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;
type PendingHead =
    Pin<Box<dyn std::future::Future<Output = Result<reqwest::Response, AttemptError>> + Send>>;

/// Send the translated request and return the stream that translates its answer.
///
/// Waits for the upstream's answer head for up to one ping interval: fast failures
/// (refused, 4xx/5xx) keep their HTTP status and can fall back. A server that answers
/// only after its prefill (Ollama) gets the stream committed instead, so the client
/// receives message_start and pings meanwhile. A stream that continues a committed
/// answer ([`Resume`]) sends no `message_start` and numbers its blocks after the
/// ones shown.
pub(super) async fn open(
    attempt: &Attempt<'_>,
    req: &MessagesRequest,
    outgoing: Outgoing,
) -> Result<TranslatedStream, AttemptError> {
    let state = attempt.state();
    let idle = attempt.idle();
    let resume = attempt.scope.resume.as_ref();
    let body = match resume.and_then(|r| r.note.as_deref()) {
        Some(note) => openai_body_with_note(&outgoing.body, note)
            .map(Bytes::from)
            .unwrap_or(outgoing.body),
        None => outgoing.body,
    };
    let send = attempt.send(body, true, idle);
    let (learner, model) = (Arc::clone(state), attempt.target.model.clone());
    let url = attempt.provider.api_base_url.clone();
    let mut head: PendingHead = Box::pin(async move {
        let answer = send.await;
        // An error that comes after the stream was committed (a server that answers
        // only after its prefill) cannot be retried in this answer; the next request
        // is translated without the missing part.
        if let Some(missing) = answer.as_ref().err().and_then(|e| missing_in(&e.failure)) {
            learner.capabilities.learn(&url, &model, missing);
        }
        answer
    });
    let ping_interval = state.options.ping_interval;
    let (upstream, pending_head): (ByteStream, Option<PendingHead>) =
        match tokio::time::timeout(ping_interval, &mut head).await {
            Ok(Ok(response)) => (Box::pin(response.bytes_stream()), None),
            Ok(Err(e)) => return Err(e),
            Err(_still_waiting) => (Box::pin(futures_util::stream::empty()), Some(head)),
        };
    let single_tool_call = outgoing.ollama && super::context::parallel_disabled(req);
    let tools = attempt.scope.tool_catalog(req);
    let holding = Holding::for_attempt(attempt, req, outgoing.ollama, tools.is_some());
    let mut translator = StreamTranslator::new(
        outgoing.message_id,
        attempt.target.model.clone(),
        attempt.input_estimate(),
        outgoing.names,
    )
    .single_tool_call(single_tool_call)
    .first_block_index(resume.map_or(0, |r| r.first_block))
    .repair_tools(tools);
    if resume.is_some() {
        translator.start(&mut Vec::new()); // the client has our message_start
    }
    Ok(TranslatedStream {
        upstream,
        pending_head,
        translator,
        idle,
        ping_interval,
        started: resume.is_some(),
        done: false,
        last_upstream: tokio::time::Instant::now(),
        request_started: attempt.meta.started,
        first_token: None,
        end: None,
        held: holding.as_ref().map(|_| Vec::new()),
        holding,
        rescue: None,
        unfit_calls: 0,
        recorded: false,
    })
}

/// The translated request of one streamed OpenAI-kind attempt, as `Attempt::openai`
/// built it.
pub(super) struct Outgoing {
    pub body: Bytes,
    pub names: ToolNameMap,
    pub message_id: String,
    /// The target looks like Ollama ([`crate::proxy::upstream::looks_like_ollama`],
    /// decided once per attempt).
    pub ollama: bool,
}

/// What a stream that holds thinking back knows about what could still rescue it.
struct Holding {
    /// `tool_choice` any or a named tool: an answer without a tool call breaks it
    /// (Ollama ignores `tool_choice`), so text is held back too until a call starts.
    must_call: bool,
    /// This answer is already the one retry at the same target.
    retried: bool,
    /// The chain has targets after this one.
    fallback_left: bool,
}

impl Holding {
    /// For streams with tools offered, unless a rescue already fell back; None
    /// otherwise (nothing is held back then).
    fn for_attempt(
        attempt: &Attempt<'_>,
        req: &MessagesRequest,
        ollama: bool,
        tools: bool,
    ) -> Option<Holding> {
        let scope = attempt.scope;
        if !scope.rescue || !tools {
            return None;
        }
        let targets = &scope.plan.targets;
        let after = targets.iter().skip_while(|t| *t != attempt.target).skip(1);
        Some(Holding {
            must_call: ollama && super::context::must_call_tool(req),
            retried: scope.resume.as_ref().is_some_and(|r| r.retry),
            fallback_left: after.count() > 0,
        })
    }
}

/// An OpenAI stream being translated, with pings and the idle timeout.
pub(super) struct TranslatedStream {
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
    /// When the client's request arrived (time to first token counts from here).
    request_started: Instant,
    first_token: Option<Duration>,
    /// How the answer ended, for the chain to record.
    end: Option<StreamEnd>,
    /// Thinking events held back while a rescue is still possible (None: not holding).
    held: Option<Vec<u8>>,
    holding: Option<Holding>,
    /// The stream failed in a way the chain may still fix.
    rescue: Option<Rescue>,
    /// Tool calls in this answer that could not be repaired.
    unfit_calls: u32,
    /// The end was recorded (the first one counts).
    recorded: bool,
}

impl ChunkSource for TranslatedStream {
    /// The next bytes for the client, or None when this stream is over (ended, or
    /// given up for a [`Rescue`]).
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
                    HeadWait::Failed => {
                        self.hold_or_release(&mut out);
                        return Some(Bytes::from(out));
                    }
                    HeadWait::Answered => {}
                }
            }
            let idle_deadline = self.last_upstream + self.idle;
            tokio::select! {
                biased;
                next = tokio::time::timeout_at(idle_deadline, self.upstream.next()) => {
                    self.translate(next, &mut out);
                    self.hold_or_release(&mut out);
                    // Text shown before an unusable tool call goes out first.
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

    fn take_end(&mut self) -> Option<StreamEnd> {
        self.end.take()
    }

    fn so_far(&self) -> StreamEnd {
        let summary = self.translator.summary();
        StreamEnd {
            usage: summary.usage,
            estimated: summary.usage_estimated,
            first_token: self.first_token,
            outcome: RequestOutcome::ClientCancelled,
            repairs: None,
            unfit_calls: 0,
        }
    }

    fn take_rescue(&mut self) -> Option<Rescue> {
        self.rescue.take()
    }

    /// The rescue found nothing left to answer: end with an error event.
    fn give_up(&mut self, reason: &str, error: ProxyError) -> Bytes {
        let mut out = Vec::new();
        self.translator.fail(reason, error, &mut out);
        // `fail` is a no-op on a finished translator: write the event directly.
        if out.is_empty() {
            ProxyError::bad_gateway(format!(
                "the local model failed ({reason}) and no fallback answered"
            ))
            .write_sse(&mut out);
        }
        self.done = true;
        self.record_end();
        Bytes::from(out)
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
                        if !self.rescue_pending() {
                            self.record_end();
                        }
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
                    self.first_token = Some(self.request_started.elapsed());
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
            // An unusable tool call is settled (and recorded) by `on_unfit`.
            if !self.rescue_pending() && self.translator.unfit().is_none() {
                self.record_end();
            }
        }
    }

    /// The stream failed while only thinking was held and a rescue can still run: its
    /// end is recorded by whatever answers next, not here.
    fn rescue_pending(&self) -> bool {
        let unfit = self.translator.unfit().is_some();
        (unfit || (self.held.is_some() && self.failed_in_hold() && !self.shown()))
            && self.can_rescue()
    }

    /// The answer's tool call could not be made to fit: retry or fall back even after
    /// text was shown (the new answer continues the same message); with nothing left
    /// to try, end with an error event.
    fn on_unfit(&mut self, out: &mut Vec<u8>) {
        self.unfit_calls += 1;
        let visible = self.translator.has_visible_content();
        if let Some(mut held) = self.held.take() {
            if visible {
                held.append(out);
                *out = held;
            } else {
                out.clear();
            }
        }
        if self.can_rescue() {
            return self.ask_rescue();
        }
        let what = self.translator.unfit().map(ToString::to_string);
        ProxyError::bad_gateway(format!(
            "the local model's {}, and no retry or fallback is left",
            what.unwrap_or_default()
        ))
        .write_sse(out);
        self.record_end();
    }

    /// While holding: keep thinking back; release everything once text or a tool call
    /// starts or the stream ends well; on a failure with only thinking held, rescue.
    fn hold_or_release(&mut self, out: &mut Vec<u8>) {
        if self.translator.unfit().is_some() {
            return self.on_unfit(out);
        }
        let rescuable = self.can_rescue();
        let (failed, shown) = (self.failed_in_hold(), self.shown());
        let Some(held) = self.held.as_mut() else {
            return;
        };
        if failed && !shown && rescuable {
            held.clear();
            out.clear();
            return self.ask_rescue();
        }
        if shown || self.translator.is_finished() {
            let mut all = std::mem::take(held);
            all.append(out);
            *out = all;
            self.held = None;
        } else {
            held.append(out);
            if held.len() > MAX_EVENT_BYTES {
                // Thinking without end: drop it and end the answer, as for an
                // over-long stream event (it was 435 MB of RSS).
                self.held = None;
                self.translator.fail("line_too_long", held_too_large(), out);
                self.done = true;
                self.record_end();
            }
        }
    }

    /// What ends holding back: text or a tool call, or only a tool call when the
    /// client required one.
    fn shown(&self) -> bool {
        match self.holding.as_ref().is_some_and(|h| h.must_call) {
            true => self.translator.has_tool_call(),
            false => self.translator.has_visible_content(),
        }
    }

    /// The stream failed, or ended without the tool call the client required.
    fn failed_in_hold(&self) -> bool {
        let must_call = self.holding.as_ref().is_some_and(|h| h.must_call);
        self.translator.error_kind().is_some()
            || (must_call && self.translator.is_finished() && !self.translator.has_tool_call())
    }

    fn can_rescue(&self) -> bool {
        self.holding
            .as_ref()
            .is_some_and(|h| !h.retried || h.fallback_left)
    }

    /// Give this stream up for a [`Rescue`]: once more at the same model, else the
    /// rest of the chain.
    fn ask_rescue(&mut self) {
        // Ollama's parse failure: thinking, one empty chunk, an end without [DONE]; or
        // a complete answer without the tool call `tool_choice` required.
        let reason = match self.translator.error_kind() {
            None => "tool_choice".to_owned(),
            Some("stream_truncated") => "tool_call_parse".to_owned(),
            Some(kind) => kind.to_owned(),
        };
        // Blocks already shown stay; the new answer's blocks are numbered after them.
        let first_block = match self.translator.has_visible_content() {
            true => self.translator.next_block_index(),
            false => 0,
        };
        let Some(holding) = self.holding.as_ref() else {
            return;
        };
        // A model caught in a loop tends to loop again: it is asked once more only
        // when nothing else is left to try.
        let loops = reason == REPETITION && holding.fallback_left;
        let resume = Resume {
            first_block,
            note: self.translator.unfit().map(corrective_note),
            retry: !holding.retried && !loops,
        };
        self.done = true;
        self.rescue = Some(Rescue {
            reason,
            resume,
            unfit_calls: self.unfit_calls,
        });
    }

    /// The answer is over: what the chain records.
    fn record_end(&mut self) {
        if std::mem::replace(&mut self.recorded, true) {
            return;
        }
        let summary = self.translator.summary();
        let outcome = match &summary.error {
            None => RequestOutcome::Ok,
            Some(kind) => RequestOutcome::UpstreamError(kind.clone()),
        };
        self.end = Some(StreamEnd {
            usage: summary.usage,
            estimated: summary.usage_estimated,
            first_token: self.first_token,
            outcome,
            repairs: super::context::repairs_text(&self.translator.repairs()),
            unfit_calls: self.unfit_calls,
        });
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

/// Thinking held back (while a rescue is possible) outgrew [`MAX_EVENT_BYTES`].
fn held_too_large() -> ProxyError {
    ProxyError::bad_gateway(format!(
        "the upstream sent more than {} MB of thinking before any answer or tool call; the answer is abandoned",
        MAX_EVENT_BYTES / (1024 * 1024)
    ))
}
