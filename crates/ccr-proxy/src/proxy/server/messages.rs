//! `POST /v1/messages`: read and parse once, plan, refuse what the plan or the
//! client's budget refuses, and hand the rest to the request's [`ChainStream`].

use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::body::read_json_body;
use super::chain::ChainStream;
use super::context::Scope;
use super::finish::{Finisher, RequestMeta};
use super::offload::{counting_slot, with_request};
use super::request::{parse_request, session_id};
use super::AppState;
use crate::config::{Config, ModelRef};
use crate::ledger::RequestOutcome;
use crate::proxy::auth::Caller;
use crate::proxy::context_edit::EditReport;
use crate::proxy::error::ProxyError;
use crate::proxy::guard::Editing;
use crate::proxy::plan::{plan, Plan, PlanError};

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
    plan: &mut Plan,
) -> Option<crate::proxy::clients::Refusal> {
    let refusal = state.clients.cloud_blocked(caller, config)?;
    plan.targets.retain(|t| {
        config
            .provider(&t.provider)
            .is_some_and(crate::ledger::is_local_provider)
    });
    plan.targets.is_empty().then_some(refusal)
}

/// `POST /v1/messages`: the request is read and planned here, then answered by its
/// [`ChainStream`]; the one [`Finisher`] made here goes with it.
pub(super) async fn messages(
    State(state): State<Arc<AppState>>,
    request: axum::extract::Request,
) -> Response {
    // Taken apart, not extracted: a `HeaderMap` extractor clones the headers.
    let (mut parts, body) = request.into_parts();
    let headers = std::mem::take(&mut parts.headers);
    let caller = super::limits::caller(parts.extensions.remove::<Caller>().map(axum::Extension));
    let mut finisher = Finisher::new(&state);
    let config = state.config.current();
    if let Err(refusal) = state.clients.admit(&caller, &config) {
        return super::limits::over_limit(&refusal, &caller, "/v1/messages");
    }
    finisher.meta.client = caller.client_name().map(Arc::from);
    let body = match read_json_body(&headers, body).await {
        Ok(body) => body,
        Err(e) => return finisher.reject(e, "bad_request"),
    };
    let slot = counting_slot(body.len()).await;
    let req = match parse_request(&body) {
        Ok(req) => req,
        Err(e) => return finisher.reject(e, "bad_request"),
    };
    finisher.meta.stream = req.stream.unwrap_or(false);
    finisher.meta.session_id = session_id(&req, &headers);

    // Planning may count tokens: off the async workers for a large body.
    let (owned_state, owned_config) = (Arc::clone(&state), Arc::clone(&config));
    let session = finisher.meta.session_id.clone();
    let planned = with_request(req, slot, move |req| {
        let editing = Editing {
            estimator: &owned_state.estimator,
            memory: &owned_state.clear_memory,
            session: session.as_deref(),
        };
        plan(&owned_config, &editing, req)
    })
    .await;
    let (req, planned) = match planned {
        Ok(done) => done,
        Err(e) => return finisher.reject(e, "internal"),
    };
    let mut plan = match planned {
        Ok(plan) => plan,
        Err(PlanError::Route(e)) => {
            let e = ProxyError::invalid_request(format!("model: {e}"));
            return finisher.reject(e, "route");
        }
        Err(PlanError::TooLong(message)) => {
            let e = ProxyError::invalid_request(message);
            return finisher.reject(e, "context_guard");
        }
    };
    let meta = &mut finisher.meta;
    meta.scenario = plan.scenario.name();
    meta.edit = plan.edit;
    if let Some(edit) = &plan.edit {
        log_edit(edit, meta.session_id.as_deref());
    }
    // Before the quality reroute, which then finds no cloud target to move to.
    if let Some(refusal) = keep_local_when_over_budget(&state, &config, &caller, &mut plan) {
        let outcome = RequestOutcome::Rejected("cloud_budget".to_owned());
        finisher.failed(429, outcome);
        return super::limits::over_limit(&refusal, &caller, "/v1/messages");
    }
    quality_reroute(&state, &config, &mut finisher.meta, &mut plan);

    let meta = finisher.meta.clone();
    let scope = Scope::new(&state, config, plan, headers, meta, req, body);
    ChainStream::new(scope, finisher).answer().await
}
