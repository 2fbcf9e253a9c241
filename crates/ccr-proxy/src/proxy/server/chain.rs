//! One chain owns the answer. [`ChainStream`] runs the plan's targets in order
//! ([`run_chain`]) until one answers; a streamed answer is pulled from the current
//! attempt's [`Source`], and when that source gives up for a [`Rescue`] (a failure
//! after the stream was committed that another try may fix), the same chain asks the
//! same target once more, then the targets after it, and their answer continues the
//! same client message at the next content-block index. It holds the request's only
//! [`Finisher`], so every request gets one log line and one ledger row, whoever ends
//! it: the answer's end, a failed chain, or the client going away mid-stream. (A
//! client that leaves before any answer began, while the chain still waits on an
//! upstream, drops the chain with no row, as before the chain existed.)

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::attempt::{Answer, Answered, Source};
use super::context::{ChunkSource, Rescue, Resume, Scope, ROUTE_HEADER};
use super::finish::Finisher;
use crate::config::ModelRef;
use crate::ledger::RequestOutcome;
use crate::proxy::error::ProxyError;
use crate::proxy::fallback::{run_chain, Attempter, ChainOutcome};
use crate::proxy::upstream::AttemptError;

/// A request's chain of attempts and, once one streams, the stream the client reads.
pub(super) struct ChainStream {
    scope: Scope,
    /// Taken when the request's row is written.
    finisher: Option<Finisher>,
    /// The answering attempt's stream.
    source: Option<Source>,
    /// The target whose answer the client is reading.
    target: Option<ModelRef>,
    /// A rescue the current source asked for, run on the next pull.
    rescue: Option<Rescue>,
    /// Unrepairable tool calls of answers given up so far.
    unfit_calls: u32,
    /// A retried answer keeps the first answer's time to first token.
    first_token: Option<Duration>,
}

impl ChainStream {
    pub fn new(scope: Scope, finisher: Finisher) -> ChainStream {
        ChainStream {
            scope,
            finisher: Some(finisher),
            source: None,
            target: None,
            rescue: None,
            unfit_calls: 0,
            first_token: None,
        }
    }

    /// Run the chain and answer the client: a whole answer, a stream, or the last
    /// failure.
    pub async fn answer(mut self) -> Response {
        let targets = self.scope.plan.targets.clone();
        let outcome = self.run(&targets).await;
        let Some(mut finisher) = self.finisher.take() else {
            return internal_error();
        };
        let answered = match outcome.result {
            Ok(answered) => answered,
            Err(err) => {
                finisher.meta.fallback_from = outcome.failures.first().map(|(t, _)| t.clone());
                finisher.meta.fallback_reason = self.scope.fallback_reason.take();
                finisher.meta.tool_call_failures = self.scope.tool_call_failures.load(Relaxed);
                finisher.target = Some(outcome.target);
                let failed = RequestOutcome::UpstreamError(err.failure.ledger_kind());
                finisher.failed(err.client.status.as_u16(), failed);
                return err.client.into_response();
            }
        };
        finisher.meta = answered.meta;
        finisher.target = Some(outcome.target.clone());
        let response = match answered.answer {
            Answer::Whole {
                response,
                usage,
                estimated,
                repairs,
            } => {
                finisher.answered(usage, estimated, repairs);
                response
            }
            Answer::Stream(source) => {
                self.finisher = Some(finisher);
                self.source = Some(source);
                self.target = Some(outcome.target);
                sse_response(self)
            }
        };
        with_route(response, &answered.route)
    }

    /// The chain's one loop over `targets`.
    async fn run(&mut self, targets: &[ModelRef]) -> ChainOutcome<Answered, AttemptError> {
        run_chain(targets, &mut self.scope, |target, failure, next| {
            tracing::warn!(
                "{} failed ({failure}); falling back to {}",
                crate::sanitize::field(&target.to_string()),
                crate::sanitize::field(&next.to_string())
            )
        })
        .await
    }

    /// The next bytes for the client, or None when the answer is over.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        loop {
            if let Some(rescue) = self.rescue.take() {
                match self.rescued(rescue).await {
                    Some(last) => return Some(last),
                    None => continue,
                }
            }
            let source = self.source.as_mut()?;
            let chunk = source.next_chunk().await;
            self.rescue = source.take_rescue();
            self.settle();
            match chunk {
                Some(chunk) if !chunk.is_empty() => return Some(chunk),
                Some(_) => continue,
                None if self.rescue.is_some() => continue,
                None => return None,
            }
        }
    }

    /// Record the source's end, once it has one.
    fn settle(&mut self) {
        let Some(mut end) = self.source.as_mut().and_then(ChunkSource::take_end) else {
            return;
        };
        if let Some(mut finisher) = self.finisher.take() {
            finisher.meta.tool_call_failures += self.unfit_calls;
            end.first_token = self.first_token.or(end.first_token);
            finisher.streamed(end);
        }
    }

    /// Continue the answer after its source gave up: the same target once more, else
    /// the targets after it. Returns the error event that ends the answer when
    /// nothing is left to try.
    async fn rescued(&mut self, rescue: Rescue) -> Option<Bytes> {
        let from = self.target.clone()?;
        let name = from.to_string();
        let shown = crate::sanitize::field(&name);
        let Rescue {
            mut reason,
            resume,
            unfit_calls,
        } = rescue;
        self.unfit_calls += unfit_calls;
        let first_block = resume.first_block;
        if resume.retry {
            tracing::warn!(
                "{shown} failed mid-stream ({reason}) before any text or tool call; retrying once"
            );
            self.scope.resume = Some(resume);
            let first_token = self.source.as_ref().and_then(|s| s.so_far().first_token);
            match self.scope.attempt(&from, None).await {
                Ok(answered) => {
                    self.first_token = first_token;
                    return self.switch_to(answered, None);
                }
                Err(e) if !self.fallback_left(&from) => return Some(self.retry_refused(e)),
                Err(e) => reason = e.failure.ledger_kind(),
            }
        }
        tracing::warn!("{shown} failed again ({reason}); falling back");
        let remaining: Vec<ModelRef> = self.after(&from).cloned().collect();
        if remaining.is_empty() {
            let error = ProxyError::bad_gateway("no fallback is configured");
            return Some(self.give_up(&reason, error));
        }
        self.scope.rescue = false;
        self.scope.rescued_from = Some((from, reason.clone()));
        self.scope.resume = Some(Resume {
            first_block,
            note: None,
            retry: false,
        });
        let outcome = self.run(&remaining).await;
        match outcome.result {
            Ok(answered) => {
                self.first_token = None;
                self.switch_to(answered, Some(outcome.target))
            }
            Err(e) => Some(self.give_up(&reason, e.client)),
        }
    }

    /// The targets after `from` in the plan.
    fn after<'s>(&'s self, from: &'s ModelRef) -> impl Iterator<Item = &'s ModelRef> + 's {
        let targets = self.scope.plan.targets.iter();
        targets.skip_while(move |t| *t != from).skip(1)
    }

    fn fallback_left(&self, from: &ModelRef) -> bool {
        self.after(from).next().is_some()
    }

    /// Read the rescue's answer from now on; a new target (a fallback) also takes
    /// the ledger row, with its facts.
    fn switch_to(&mut self, answered: Answered, target: Option<ModelRef>) -> Option<Bytes> {
        let Answer::Stream(source) = answered.answer else {
            let error = ProxyError::bad_gateway("the rescue's answer was not a stream");
            return Some(self.give_up("internal", error));
        };
        if let (Some(target), Some(finisher)) = (target, self.finisher.as_mut()) {
            finisher.meta = answered.meta;
            finisher.target = Some(target.clone());
            self.target = Some(target);
        }
        self.source = Some(source);
        None
    }

    /// The retry failed before it answered and nothing is left: the upstream's error
    /// ends the answer, and the row records its kind.
    fn retry_refused(&mut self, e: AttemptError) -> Bytes {
        let mut out = Vec::new();
        e.client.write_sse(&mut out);
        let source = self.source.as_ref();
        if let (Some(source), Some(mut finisher)) = (source, self.finisher.take()) {
            let mut end = source.so_far();
            end.outcome = RequestOutcome::UpstreamError(e.failure.ledger_kind());
            end.first_token = self.first_token.or(end.first_token);
            finisher.meta.tool_call_failures += self.unfit_calls;
            finisher.streamed(end);
        }
        Bytes::from(out)
    }

    /// Nothing is left to try: the current source ends the answer with an error.
    fn give_up(&mut self, reason: &str, error: ProxyError) -> Bytes {
        let Some(source) = self.source.as_mut() else {
            return Bytes::new();
        };
        let last = source.give_up(reason, error);
        self.settle();
        last
    }
}

impl Drop for ChainStream {
    /// The client went away before the answer ended.
    fn drop(&mut self) {
        let (Some(finisher), Some(source)) = (self.finisher.take(), self.source.as_ref()) else {
            return;
        };
        let mut end = source.so_far();
        end.first_token = self.first_token.or(end.first_token);
        end.unfit_calls += self.unfit_calls;
        finisher.streamed(end);
    }
}

/// A streamed answer: SSE headers around the chain's chunks, pulled as the client
/// reads.
fn sse_response(chain: ChainStream) -> Response {
    let chunks = futures_util::stream::unfold(chain, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<_, std::io::Error>(chunk), s))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .header("x-accel-buffering", "no")
        .body(Body::from_stream(chunks))
        .expect("static headers are valid")
}

fn with_route(mut response: Response, route: &str) -> Response {
    if let Ok(v) = HeaderValue::from_str(route) {
        response.headers_mut().insert(ROUTE_HEADER, v);
    }
    response
}

/// The finisher was gone before the chain ran (never: it is taken only here).
fn internal_error() -> Response {
    ProxyError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        crate::proxy::error::ErrorKind::Api,
        "the request was already recorded",
    )
    .into_response()
}
