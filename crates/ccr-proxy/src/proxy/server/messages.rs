//! `POST /v1/messages`: parse once, plan, run the fallback chain, and record a request
//! that no target answered.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::body::read_json_body;
use super::context::Scope;
use super::finish::{finish_request, reject, Ending, RequestMeta};
use super::offload::{counting_slot, plan_counted, with_request};
use super::request::{parse_request, session_id};
use super::AppState;
use crate::config::{Config, ModelRef};
use crate::ledger::RequestOutcome;
use crate::proxy::auth::Caller;
use crate::proxy::context_edit::EditReport;
use crate::proxy::error::ProxyError;
use crate::proxy::fallback::run_chain;
use crate::proxy::guard::Editing;
use crate::proxy::plan::{Plan, PlanError};

/// A session whose local answers kept being unusable goes to the cloud part of its
/// chain for a while ([`crate::proxy::sessions`]); off when the chain has no cloud
/// target. The ledger row's scenario says `quality`.
fn quality_reroute(state: &AppState, config: &Config, meta: &mut RequestMeta, plan: &mut Plan) {
    let Some(session) = meta.session_id.as_deref() else {
        return;
    };
    let is_local = |r: &ModelRef| {
        config
            .provider(&r.provider)
            .is_some_and(crate::ledger::is_local_provider)
    };
    if !plan.targets.first().is_some_and(is_local) {
        return;
    }
    let cloud: Vec<ModelRef> = plan
        .targets
        .iter()
        .filter(|t| !is_local(t))
        .cloned()
        .collect();
    if cloud.is_empty() || !state.sessions.take_cloud_turn(session) {
        return;
    }
    tracing::info!(
        "session {}: sent to {} for quality (the local model's recent answers were unusable)",
        crate::sanitize::field(session),
        cloud[0]
    );
    plan.targets = cloud;
    meta.scenario = QUALITY_SCENARIO;
}

/// A clear point that moved is worth an INFO line: the local prompt cache is
/// re-prefilled from there once. Re-applied clears are in the request's own line.
fn log_edit(edit: &EditReport, session: Option<&str>) {
    if edit.newly_cleared == 0 && edit.cut_blocks == 0 {
        return;
    }
    tracing::info!(
        "context editing{}: {} -> {} tokens; cleared {} more old tool results ({} in all), cut {}, restored {} re-reads",
        session
            .map(|s| format!(" for session {}", crate::sanitize::field(s)))
            .unwrap_or_default(),
        edit.input_before,
        edit.input_after,
        edit.newly_cleared,
        edit.cleared_blocks,
        edit.cut_blocks,
        edit.restored_reads,
    );
}

/// The scenario of a request the quality fallback sent to the cloud.
pub const QUALITY_SCENARIO: &str = "quality";

/// A client over its `daily_cloud_usd` keeps only the local targets, whatever rule
/// (or fallback, or explicit model) put the cloud ones there; with none left, the
/// request is refused (a ledger row, `rejected: cloud_budget`): the 429 returned says
/// why.
fn keep_local_when_over_budget(
    state: &AppState,
    config: &Config,
    caller: &Caller,
    meta: &RequestMeta,
    plan: &mut Plan,
) -> Option<Response> {
    let refusal = state.clients.cloud_blocked(caller, config)?;
    plan.targets.retain(|t| {
        config
            .provider(&t.provider)
            .is_some_and(crate::ledger::is_local_provider)
    });
    if plan.targets.is_empty() {
        let outcome = RequestOutcome::Rejected("cloud_budget".to_owned());
        finish_request(state, meta, Ending::failed(None, 429, outcome));
        return Some(super::limits::over_limit(&refusal, caller, "/v1/messages"));
    }
    None
}

pub(super) async fn messages(
    State(state): State<Arc<AppState>>,
    caller: Option<axum::Extension<Caller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut meta = RequestMeta::now();
    let config = state.config.current();
    let caller = super::limits::caller(caller);
    if let Err(refusal) = state.clients.admit(&caller, &config) {
        return super::limits::over_limit(&refusal, &caller, "/v1/messages");
    }
    meta.client = caller.client_name().map(Arc::from);
    let body = match read_json_body(&headers, body).await {
        Ok(body) => body,
        Err(e) => return reject(&state, &meta, e, "bad_request"),
    };
    let slot = counting_slot(body.len()).await;
    let req = match parse_request(&body) {
        Ok(req) => req,
        Err(e) => return reject(&state, &meta, e, "bad_request"),
    };
    meta.stream = req.stream.unwrap_or(false);
    meta.session_id = session_id(&req, &headers);

    // Planning may count tokens: off the async workers for a large body.
    let (owned_state, owned_config) = (Arc::clone(&state), Arc::clone(&config));
    let session = meta.session_id.clone();
    let planned = with_request(req, slot, move |req| {
        let editing = Editing {
            estimator: &owned_state.estimator,
            memory: &owned_state.clear_memory,
            session: session.as_deref(),
        };
        plan_counted(&owned_config, &editing, req)
    })
    .await;
    let (req, planned) = match planned {
        Ok(done) => done,
        Err(e) => return reject(&state, &meta, e, "internal"),
    };
    let mut plan = match planned {
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
    meta.edit = plan.edit;
    if let Some(edit) = &plan.edit {
        log_edit(edit, meta.session_id.as_deref());
    }
    // Before the quality reroute, which then finds no cloud target to move to.
    if let Some(refused) = keep_local_when_over_budget(&state, &config, &caller, &meta, &mut plan) {
        return refused;
    }
    quality_reroute(&state, &config, &mut meta, &mut plan);

    let mut scope = Scope::new(&state, &config, &plan, &headers, &meta, req, body);
    let outcome = run_chain(&plan.targets, &mut scope, |target, failure, next| {
        tracing::warn!(
            "{} failed ({failure}); falling back to {}",
            crate::sanitize::field(&target.to_string()),
            crate::sanitize::field(&next.to_string())
        )
    })
    .await;
    let err = match outcome.result {
        Ok(answer) => return answer,
        Err(err) => err,
    };
    let meta = RequestMeta {
        fallback_from: outcome.failures.first().map(|(t, _)| t.clone()),
        fallback_reason: scope.fallback_reason.take(),
        tool_call_failures: scope
            .tool_call_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        ..meta
    };
    let failed = RequestOutcome::UpstreamError(err.failure.ledger_kind());
    let end = Ending::failed(Some(&outcome.target), err.client.status.as_u16(), failed);
    finish_request(&state, &meta, end);
    err.client.into_response()
}
