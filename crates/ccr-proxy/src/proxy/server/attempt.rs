//! One try at one target, for either provider kind. `Err` means nothing reached the
//! client, so [`run_chain`](crate::proxy::fallback::run_chain) may try the next
//! target; `Ok` is a committed answer (a stream's later failures become an SSE
//! `event: error`).

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::context::{
    must_call_tool, parallel_disabled, repairs_text, route_header, Attempt, Scope,
};
use super::finish::RequestMeta;
use crate::config::{ModelRef, Provider, ProviderKind};
use crate::ledger::is_local_provider;
use crate::proxy::capabilities::{missing_in, probe, server_root, Capabilities};
use crate::proxy::error::{ErrorKind, ProxyError};
use crate::proxy::fallback::{AttemptFailure, Attempter};
use crate::proxy::guard::input_tokens_for;
use crate::proxy::repair::{corrective_note, openai_body_with_note};
use crate::proxy::translate::request::{to_openai, TargetOptions};
use crate::proxy::translate::response::{from_openai, ResponseContext, ResponseError};
use crate::proxy::upstream::AttemptError;
use crate::proxy::wire::anthropic::{MessagesRequest, Usage};
use crate::proxy::wire::openai::ChatCompletion;

/// Room over the client's body size for what translation adds (OpenAI's per-message
/// framing, the Ollama schema notes) before the encoding buffer must grow.
const ENCODE_SLACK: usize = 4096;

impl Attempter for Scope<'_> {
    type Answer = Response;
    type Error = AttemptError;

    /// Rewrite the request for `target` and send it.
    async fn attempt(
        &mut self,
        target: &ModelRef,
        fallback_from: Option<&ModelRef>,
    ) -> Result<Response, AttemptError> {
        // A rescue runs the rest of a chain whose first target already failed.
        let fallback_from = fallback_from.or(self.meta.fallback_from.as_ref());
        let config = self.config;
        let Some(provider) = config.provider(&target.provider) else {
            return Err(internal(format!(
                "provider \"{}\" is not configured (Router or fallback names it)",
                target.provider
            )));
        };
        self.plan.prepare(config, target, &mut self.req);
        // `Providers[].max_tokens` caps what any kind of provider is asked for.
        if let Some(limit) = provider.max_tokens {
            let asked = self.req.max_tokens;
            self.req.max_tokens = Some(asked.map_or(limit, |asked| asked.min(limit)));
        }
        let attempt = Attempt {
            scope: self,
            target,
            provider,
            meta: RequestMeta {
                fallback_from: fallback_from.cloned(),
                fallback_reason: self
                    .meta
                    .fallback_reason
                    .clone()
                    .or_else(|| self.fallback_reason.clone()),
                sent_estimate: self
                    .plan
                    .count
                    .as_ref()
                    .map(|c| input_tokens_for(config, target, c)),
                ..self.meta.clone()
            },
            route: route_header(target, self.meta.scenario, fallback_from),
        };
        match provider.kind {
            ProviderKind::OpenAi => attempt.openai(&self.req).await,
            ProviderKind::Anthropic => attempt.anthropic(&self.req).await,
        }
    }

    fn failed(&mut self, failure: &AttemptFailure) {
        self.fallback_reason
            .get_or_insert_with(|| failure.ledger_kind());
    }
}

impl Attempt<'_> {
    /// The upstream request's bytes, in a buffer sized from the client's body (the
    /// translation is about as long): growing by doubling would leave up to half of a
    /// large buffer unused for as long as the request is in flight.
    fn encode(&self, request: &impl serde::Serialize) -> Result<Vec<u8>, AttemptError> {
        let mut body = Vec::with_capacity(self.scope.body.len() + ENCODE_SLACK);
        serde_json::to_writer(&mut body, request)
            .map_err(|e| internal(format!("cannot encode the upstream request: {e}")))?;
        Ok(body)
    }

    /// An OpenAI-kind target for the model as it is: when the upstream's error says
    /// the model lacks a capability the request used (thinking, vision), that is
    /// remembered and the request is sent once more without it (once per capability).
    async fn openai(&self, req: &MessagesRequest) -> Result<Response, AttemptError> {
        let mut known = self.capabilities().await;
        loop {
            let error = match self.openai_for(req, known).await {
                Err(e) => e,
                answer => return answer,
            };
            let Some(missing) = missing_in(&error.failure) else {
                return Err(error);
            };
            let (url, model) = (&self.provider.api_base_url, &self.target.model);
            let learnt = self.state().capabilities.learn(url, model, missing);
            if learnt == known {
                return Err(error);
            }
            tracing::warn!(
                "{} lacks {missing:?} ({}); from now on {}",
                self.target,
                error.failure,
                missing.handling()
            );
            known = learnt;
        }
    }

    /// What the target model is known to take: remembered, else asked of a local
    /// server once ([`probe`]); a cloud model is only known by its errors.
    async fn capabilities(&self) -> Capabilities {
        let state = self.state();
        let (url, model) = (&self.provider.api_base_url, &self.target.model);
        if let Some(known) = state.capabilities.get(url, model) {
            return known;
        }
        let Some(root) = server_root(url).filter(|_| is_local_provider(self.provider)) else {
            return Capabilities::UNKNOWN;
        };
        match probe(state.upstream.client_for(self.provider), &root, model).await {
            Some(asked) => {
                state.capabilities.insert(url, model, asked);
                asked
            }
            None => Capabilities::UNKNOWN,
        }
    }

    /// An OpenAI-kind target: translate, send, translate the answer back.
    async fn openai_for(
        &self,
        req: &MessagesRequest,
        caps: Capabilities,
    ) -> Result<Response, AttemptError> {
        let options = TargetOptions {
            model: &self.target.model,
            max_tokens_limit: self.provider.max_tokens,
            reasoning_in_history: self.provider.reasoning_in_history,
            // Known from its answer to `/api/show`, else guessed from name or port.
            ollama: caps.ollama || crate::proxy::upstream::looks_like_ollama(self.provider),
            caps,
        };
        let translated = to_openai(req, &options).map_err(|e| AttemptError {
            client: ProxyError::invalid_request(e.to_string()),
            failure: AttemptFailure::Status {
                status: 400,
                body: e.to_string(),
            },
        })?;
        // Shared, not copied, when the answer must be asked for once more.
        let mut body = Bytes::from(self.encode(&translated.request)?);
        let names = translated.tool_names;
        let message_id = self.state().next_message_id(self.meta.started_at_ms);
        if self.meta.stream {
            let outgoing = super::translated::Outgoing {
                body,
                names,
                message_id,
                ollama: options.ollama,
            };
            return super::translated::open(self, req, outgoing).await;
        }
        let timeout = self.api_timeout();
        let tools = self.scope.tool_catalog(req);
        let name = &self.provider.name;
        // Ollama ignores `tool_choice`: an answer without the required tool call is
        // asked for once more, then the chain falls back. So is an answer whose tool
        // call cannot be repaired, with a note saying what was wrong.
        let must_call = options.ollama && must_call_tool(req);
        let mut tries = 0;
        let answer = loop {
            tries += 1;
            let response = self.send(Bytes::clone(&body), false, timeout).await?;
            let bytes = read_answer(response, timeout, self.provider).await?;
            let completion: ChatCompletion = serde_json::from_slice(&bytes).map_err(|e| {
                let message = format!(
                    "provider \"{name}\" sent an answer that is not a chat completion: {e}"
                );
                AttemptError {
                    client: ProxyError::bad_gateway(message.clone()),
                    failure: AttemptFailure::BeforeFirstByte(message),
                }
            })?;
            let ctx = ResponseContext {
                fallback_id: &message_id,
                model: &self.target.model,
                // Only used when the upstream reported no usage.
                input_estimate: match completion.usage {
                    None => self.input_estimate(req),
                    Some(_) => 0,
                },
                single_tool_call: options.ollama && parallel_disabled(req),
                tools: tools.as_ref(),
            };
            let unfit = match from_openai(&completion, &names, &ctx) {
                Ok(t) if !must_call || t.response.calls_tool() => break t,
                Ok(_) => {
                    let message = format!(
                        "provider \"{name}\" answered without the tool call tool_choice required (Ollama ignores tool_choice)"
                    );
                    if tries >= 2 {
                        return Err(status_502(message));
                    }
                    tracing::warn!("{message}; asking once more");
                    continue;
                }
                Err(ResponseError::UnfitToolCall(unfit)) => unfit,
                Err(e) => return Err(status_502(format!("provider \"{name}\": {e}"))),
            };
            self.count_unfit_call();
            let message = format!("provider \"{name}\": {unfit}");
            if tries >= 2 {
                return Err(AttemptError {
                    client: ProxyError::bad_gateway(message.clone()),
                    failure: AttemptFailure::UnfitToolCall(message),
                });
            }
            tracing::warn!("{message}; asking once more with a corrective note");
            if let Some(noted) = openai_body_with_note(&body, &corrective_note(&unfit)) {
                body = Bytes::from(noted);
            }
        };
        let repairs = repairs_text(&answer.repairs);
        self.finish_ok(answer.response.usage, answer.usage_estimated, repairs);
        Ok(self.with_route(axum::Json(answer.response).into_response()))
    }

    /// An Anthropic-kind target: the request as parsed, the answer byte for byte.
    async fn anthropic(&self, req: &MessagesRequest) -> Result<Response, AttemptError> {
        // The parsed request is lossless (unknown keys are kept), and the plan may have
        // changed more than the model (max_tokens clamp, unsigned thinking, subagent
        // tag), so it is serialised rather than patched.
        let body = self.encode(req)?;
        if self.meta.stream {
            let response = self.send(Bytes::from(body), true, self.idle()).await?;
            return Ok(super::passthrough::respond(self, response));
        }
        let timeout = self.api_timeout();
        let response = self.send(Bytes::from(body), false, timeout).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
            .unwrap_or(HeaderValue::from_static("application/json"));
        let bytes = read_answer(response, timeout, self.provider).await?;
        let usage = serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| serde_json::from_value::<Usage>(v.get("usage")?.clone()).ok());
        self.finish_ok(usage.unwrap_or_default(), usage.is_none(), None);
        let response = Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(bytes))
            .expect("valid response parts");
        Ok(self.with_route(response))
    }
}

/// An answer the client cannot be given, as a 502 the chain may fall back from.
fn status_502(message: String) -> AttemptError {
    AttemptError {
        client: ProxyError::bad_gateway(message.clone()),
        failure: AttemptFailure::Status {
            status: 502,
            body: message,
        },
    }
}

/// A failure inside the proxy (the target is not configured, the request cannot be
/// encoded): a 500, recorded like an upstream 500.
fn internal(message: String) -> AttemptError {
    AttemptError {
        client: ProxyError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Api,
            message.clone(),
        ),
        failure: AttemptFailure::Status {
            status: 500,
            body: message,
        },
    }
}

/// Read a whole (non-streamed) answer, bounded in time.
async fn read_answer(
    response: reqwest::Response,
    timeout: Duration,
    provider: &Provider,
) -> Result<Bytes, AttemptError> {
    let name = &provider.name;
    let read =
        crate::proxy::upstream::read_capped(response, crate::proxy::upstream::MAX_ANSWER_BYTES);
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(b)) => Ok(b),
        Ok(Err(e @ crate::proxy::upstream::ReadError::TooLarge(_))) => {
            let message = format!("provider \"{name}\" sent too much: {e}");
            Err(AttemptError {
                client: ProxyError::bad_gateway(message.clone()),
                failure: AttemptFailure::BeforeFirstByte(message),
            })
        }
        Ok(Err(e)) => {
            let message = format!("provider \"{name}\" broke off its answer: {e}");
            Err(AttemptError {
                client: ProxyError::bad_gateway(message.clone()),
                failure: AttemptFailure::BeforeFirstByte(message),
            })
        }
        Err(_) => {
            let message = format!(
                "provider \"{name}\" did not finish its answer within {} s",
                timeout.as_secs()
            );
            Err(AttemptError {
                client: ProxyError::new(
                    StatusCode::GATEWAY_TIMEOUT,
                    ErrorKind::Api,
                    message.clone(),
                ),
                failure: AttemptFailure::Timeout(message),
            })
        }
    }
}
