//! `POST /v1/messages`: parse once, plan, run the fallback chain, and record a request
//! that no target answered.

use std::sync::Arc;

use axum::extract::rejection::BytesRejection;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::attempt::Scope;
use super::finish::{finish_request, reject, Ending, RequestMeta};
use super::request::{body_bytes, parse_request, session_id};
use super::AppState;
use crate::ledger::RequestOutcome;
use crate::proxy::error::ProxyError;
use crate::proxy::fallback::run_chain;
use crate::proxy::plan::{plan, PlanError};

pub(super) async fn messages(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let mut meta = RequestMeta::now();
    let config = state.config.current();
    let mut req = match body_bytes(body).and_then(|b| parse_request(&b)) {
        Ok(r) => r,
        Err(e) => return reject(&state, &meta, e, "bad_request"),
    };
    meta.stream = req.stream.unwrap_or(false);
    meta.session_id = session_id(&req, &headers);

    let plan = match plan(&config, &state.estimator, &mut req) {
        Ok(plan) => plan,
        Err(PlanError::Route(e)) => {
            let e = ProxyError::invalid_request(format!("model: {e}"));
            return reject(&state, &meta, e, "route");
        }
        Err(PlanError::TooLong(message)) => {
            let e = ProxyError::invalid_request(message);
            return reject(&state, &meta, e, "context_guard");
        }
    };
    meta.scenario = plan.scenario.name();

    let mut scope = Scope {
        state: &state,
        config: &config,
        plan: &plan,
        headers: &headers,
        meta: &meta,
        req,
    };
    let outcome = run_chain(&plan.targets, &mut scope, |target, failure, next| {
        tracing::warn!("{target} failed ({failure}); falling back to {next}")
    })
    .await;
    let err = match outcome.result {
        Ok(answer) => return answer,
        Err(err) => err,
    };
    let meta = RequestMeta {
        fallback_from: outcome.failures.first().map(|(t, _)| t.clone()),
        ..meta
    };
    let failed = RequestOutcome::UpstreamError(err.failure.ledger_kind());
    let end = Ending::failed(Some(&outcome.target), err.client.status.as_u16(), failed);
    finish_request(&state, &meta, end);
    err.client.into_response()
}
