//! An OpenAI-kind stream translated to Anthropic events as the bytes arrive, with
//! keep-alive pings while the upstream is silent and the idle timeout.
//!
//! **Rescue.** When Ollama cannot parse a tool call that gpt-oss produced while
//! streaming, it answers HTTP 200, streams the reasoning, sends one empty chunk and
//! ends without `[DONE]` (server/routes.go): a failure that arrives after the stream
//! was committed. So while tools are offered to Ollama, thinking is held back (pings
//! keep the client waiting) until text or a tool call starts. A failure while only
//! thinking was held is rescued inside the same client stream: the request is sent
//! once more to the same model, then to the rest of the fallback chain, whose answer
//! follows our `message_start` in place of its own. Its ledger row names the local
//! target and the reason (`tool_call_parse`).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use axum::response::Response;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};

use super::context::{Attempt, ChunkSource, Scope};
use super::finish::{Finisher, RequestMeta};
use super::spliced::Spliced;
use super::AppState;
use crate::config::{Config, ModelRef, Provider};
use crate::ledger::RequestOutcome;
use crate::proxy::capabilities::missing_in;
use crate::proxy::error::{ErrorKind, ProxyError};
use crate::proxy::plan::Plan;
use crate::proxy::repair::{corrective_note, openai_body_with_note, ToolCatalog};
use crate::proxy::translate::stream::{StreamTranslator, PING_EVENT, REPETITION};
use crate::proxy::translate::tool_names::ToolNameMap;
use crate::proxy::upstream::AttemptError;
use crate::proxy::wire::anthropic::MessagesRequest;
use crate::proxy::wire::sse::MAX_EVENT_BYTES;

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
    outgoing: Outgoing,
) -> Result<Response, AttemptError> {
    let state = attempt.state();
    let idle = attempt.idle();
    let upstream = state.upstream.clone();
    let (provider, headers) = (attempt.provider.clone(), attempt.scope.headers.clone());
    let (body, affinity) = (outgoing.body.clone(), attempt.scope.affinity);
    let (learner, model) = (Arc::clone(state), attempt.target.model.clone());
    let mut head: PendingHead = Box::pin(async move {
        let answer = upstream
            .send(&provider, &headers, body, true, idle, affinity)
            .await;
        // An error that comes after the stream was committed (a server that answers
        // only after its prefill) cannot be retried in this answer; the next request
        // is translated without the missing part.
        if let Some(missing) = answer.as_ref().err().and_then(|e| missing_in(&e.failure)) {
            let url = &provider.api_base_url;
            learner.capabilities.learn(url, &model, missing);
        }
        answer
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
    let single_tool_call = outgoing.ollama && super::context::parallel_disabled(req);
    let tools = attempt.scope.tool_catalog(req);
    let rescue = Rescue::for_attempt(attempt, req, &outgoing, input_estimate, tools.clone());
    let Outgoing {
        names, message_id, ..
    } = outgoing;
    let stream = TranslatedStream {
        upstream,
        pending_head,
        translator: StreamTranslator::new(message_id, model, input_estimate, names)
            .single_tool_call(single_tool_call)
            .repair_tools(tools),
        idle,
        ping_interval,
        started: false,
        done: false,
        last_upstream: tokio::time::Instant::now(),
        first_token: None,
        finisher: Some(attempt.finisher()),
        held: rescue.as_ref().map(|_| Vec::new()),
        rescue,
        needs_rescue: false,
        spliced: None,
        unfit_calls: 0,
    };
    Ok(attempt.sse_response(stream))
}

/// The translated request of one streamed OpenAI-kind attempt, as `Attempt::openai`
/// built it.
pub(super) struct Outgoing {
    /// The upstream body (shared with a rescue's retry, not copied).
    pub body: Bytes,
    pub names: ToolNameMap,
    pub message_id: String,
    /// The target looks like Ollama ([`crate::proxy::upstream::looks_like_ollama`],
    /// decided once per attempt).
    pub ollama: bool,
}

/// What a held-back stream needs to try again after it was committed: owned copies,
/// since the handler that made the attempt has returned by then.
struct Rescue {
    state: Arc<AppState>,
    config: Arc<Config>,
    plan: Plan,
    headers: axum::http::HeaderMap,
    meta: RequestMeta,
    /// The client's body, parsed again for the fallback targets.
    client_body: Bytes,
    from: ModelRef,
    provider: Provider,
    /// The translated request, sent again as is for the one local retry.
    upstream_body: Bytes,
    retried: bool,
    /// `tool_choice` any or a named tool: an answer without a tool call breaks it
    /// (Ollama ignores `tool_choice`), so text is held back too until a call starts.
    must_call: bool,
    message_id: String,
    input_estimate: u64,
    names: ToolNameMap,
    /// The offered tools, for the retry's repair mode.
    tools: Option<ToolCatalog>,
    /// The retry goes to the same replica.
    affinity: u64,
}

impl Rescue {
    /// A rescue for streams with tools offered; None otherwise (nothing is held back
    /// then).
    fn for_attempt(
        attempt: &Attempt<'_>,
        req: &MessagesRequest,
        outgoing: &Outgoing,
        input_estimate: u64,
        tools: Option<ToolCatalog>,
    ) -> Option<Box<Rescue>> {
        let scope: &Scope<'_> = attempt.scope;
        if !scope.rescue || tools.is_none() {
            return None;
        }
        Some(Box::new(Rescue {
            state: Arc::clone(scope.state),
            config: Arc::clone(scope.config),
            plan: scope.plan.clone(),
            headers: scope.headers.clone(),
            meta: attempt.meta.clone(),
            client_body: scope.body.clone(),
            from: attempt.target.clone(),
            provider: attempt.provider.clone(),
            upstream_body: outgoing.body.clone(),
            retried: false,
            must_call: outgoing.ollama && super::context::must_call_tool(req),
            message_id: outgoing.message_id.clone(),
            input_estimate,
            names: outgoing.names.clone(),
            tools,
            affinity: scope.affinity,
        }))
    }

    /// The chain's targets after the one that failed.
    fn remaining(&self) -> Vec<ModelRef> {
        self.plan
            .targets
            .iter()
            .skip_while(|t| **t != self.from)
            .skip(1)
            .cloned()
            .collect()
    }

    /// Run the rest of the chain for the request, as the handler would have.
    async fn fall_back(
        &self,
        reason: &str,
        tool_call_failures: u32,
    ) -> Result<Response, AttemptError> {
        let mut req =
            super::request::parse_request(&self.client_body).map_err(|e| AttemptError {
                failure: crate::proxy::fallback::AttemptFailure::Status {
                    status: 400,
                    body: e.message.clone(),
                },
                client: e,
            })?;
        let editing = crate::proxy::guard::Editing {
            estimator: &self.state.estimator,
            memory: &self.state.clear_memory,
            session: self.meta.session_id.as_deref(),
        };
        self.plan.reapply_edit(&self.config, &editing, &mut req);
        let targets = self.remaining();
        let meta = RequestMeta {
            fallback_from: Some(self.from.clone()),
            fallback_reason: Some(reason.to_owned()),
            tool_call_failures,
            ..self.meta.clone()
        };
        let mut scope = Scope::new(
            &self.state,
            &self.config,
            &self.plan,
            &self.headers,
            &meta,
            req,
            self.client_body.clone(),
        );
        scope.rescue = false;
        let outcome =
            crate::proxy::fallback::run_chain(&targets, &mut scope, |target, failure, next| {
                tracing::warn!(
                    "{} failed ({failure}); falling back to {}",
                    crate::sanitize::field(&target.to_string()),
                    crate::sanitize::field(&next.to_string())
                )
            })
            .await;
        outcome.result
    }
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
    /// Thinking events held back while a rescue is still possible (None: not holding).
    held: Option<Vec<u8>>,
    rescue: Option<Box<Rescue>>,
    /// The stream failed while only thinking was held: rescue before anything else.
    needs_rescue: bool,
    /// The fallback's answer, forwarded after our own `message_start`.
    spliced: Option<Spliced>,
    /// Tool calls that could not be repaired, in this answer and its retries.
    unfit_calls: u32,
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
        'rescued: loop {
            if let Some(spliced) = self.spliced.as_mut() {
                return spliced.next_chunk().await;
            }
            if self.needs_rescue {
                self.needs_rescue = false;
                if let Some(chunk) = self.rescue_now().await {
                    return Some(chunk);
                }
                if let Some(spliced) = self.spliced.as_mut() {
                    return spliced.next_chunk().await;
                }
            }
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
                            if self.needs_rescue {
                                continue 'rescued;
                            }
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
                        if self.needs_rescue {
                            // Text shown before an unusable tool call goes out first.
                            if !out.is_empty() {
                                return Some(Bytes::from(out));
                            }
                            continue 'rescued;
                        }
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
            self.needs_rescue = true;
            return;
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
            self.needs_rescue = true;
            return;
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
        match self.rescue.as_ref().is_some_and(|r| r.must_call) {
            true => self.translator.has_tool_call(),
            false => self.translator.has_visible_content(),
        }
    }

    /// The stream failed, or ended without the tool call the client required.
    fn failed_in_hold(&self) -> bool {
        let must_call = self.rescue.as_ref().is_some_and(|r| r.must_call);
        self.translator.error_kind().is_some()
            || (must_call && self.translator.is_finished() && !self.translator.has_tool_call())
    }

    fn can_rescue(&self) -> bool {
        self.rescue
            .as_ref()
            .is_some_and(|r| !r.retried || !r.remaining().is_empty())
    }

    /// Try again: once more at the same model, then the rest of the chain. Returns an
    /// error event when nothing is left to try.
    async fn rescue_now(&mut self) -> Option<Bytes> {
        // Ollama's parse failure: thinking, one empty chunk, an end without [DONE]; or
        // a complete answer without the tool call `tool_choice` required.
        let reason = match self.translator.error_kind() {
            None => "tool_choice".to_owned(),
            Some("stream_truncated") => "tool_call_parse".to_owned(),
            Some(kind) => kind.to_owned(),
        };
        let idle = self.idle;
        // Blocks already shown stay; the new answer's blocks are numbered after them.
        let first_index = match self.translator.has_visible_content() {
            true => self.translator.next_block_index(),
            false => 0,
        };
        let note = self.translator.unfit().map(corrective_note);
        let rescue = self.rescue.as_mut()?;
        // A model caught in a loop tends to loop again: it is asked once more only
        // when nothing else is left to try.
        let loops = reason == REPETITION && !rescue.remaining().is_empty();
        if !rescue.retried && !loops {
            rescue.retried = true;
            tracing::warn!(
                "{} failed mid-stream ({reason}) before any text or tool call; retrying once",
                crate::sanitize::field(&rescue.from.to_string())
            );
            let body = match note.as_deref() {
                Some(note) => openai_body_with_note(&rescue.upstream_body, note)
                    .map(Bytes::from)
                    .unwrap_or_else(|| rescue.upstream_body.clone()),
                None => rescue.upstream_body.clone(),
            };
            let (upstream, provider, headers, idle, affinity) = (
                rescue.state.upstream.clone(),
                rescue.provider.clone(),
                rescue.headers.clone(),
                idle,
                rescue.affinity,
            );
            self.pending_head = Some(Box::pin(async move {
                upstream
                    .send(&provider, &headers, body, true, idle, affinity)
                    .await
            }));
            self.upstream = Box::pin(futures_util::stream::empty());
            let single = self.translator.is_single_tool_call();
            let mut translator = StreamTranslator::new(
                rescue.message_id.clone(),
                rescue.from.model.clone(),
                rescue.input_estimate,
                rescue.names.clone(),
            )
            .single_tool_call(single)
            .first_block_index(first_index)
            .repair_tools(rescue.tools.clone());
            translator.start(&mut Vec::new()); // ours already went out
            self.translator = translator;
            self.held = Some(Vec::new());
            self.done = false;
            return None;
        }
        let rescue = self.rescue.take()?;
        tracing::warn!(
            "{} failed again ({reason}); falling back",
            crate::sanitize::field(&rescue.from.to_string())
        );
        match rescue.fall_back(&reason, self.unfit_calls).await {
            Ok(response) => {
                // The fallback writes its own ledger row (naming us and the reason).
                self.finisher = None;
                self.done = true;
                self.spliced = Some(Spliced::new(response, first_index));
                None
            }
            Err(e) => {
                let mut out = Vec::new();
                self.translator.fail(&reason, e.client, &mut out);
                // `fail` is a no-op on a finished translator: write the event directly.
                if out.is_empty() {
                    ProxyError::bad_gateway(format!(
                        "the local model failed ({reason}) and no fallback answered"
                    ))
                    .write_sse(&mut out);
                }
                self.done = true;
                self.record_end();
                Some(Bytes::from(out))
            }
        }
    }

    fn record_end(&mut self) {
        if let Some(mut f) = self.finisher.take() {
            f.meta.tool_call_failures += self.unfit_calls;
            f.repairs = super::context::repairs_text(&self.translator.repairs());
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

/// Thinking held back (while a rescue is possible) outgrew [`MAX_EVENT_BYTES`].
fn held_too_large() -> ProxyError {
    ProxyError::bad_gateway(format!(
        "the upstream sent more than {} MB of thinking before any answer or tool call; the answer is abandoned",
        MAX_EVENT_BYTES / (1024 * 1024)
    ))
}
