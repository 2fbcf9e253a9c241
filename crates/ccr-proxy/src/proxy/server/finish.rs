//! The end of every `/v1/messages` request: one log line and one ledger row, written
//! once whether it was answered, refused, failed or cancelled by the client.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::config::ModelRef;
use crate::ledger::{RequestOutcome, UsageRecord};
use crate::proxy::context_edit::EditReport;
use crate::proxy::error::ProxyError;
use crate::proxy::wire::anthropic::Usage;
use crate::sanitize;

/// What the log line and the ledger row need, gathered along the way.
#[derive(Debug, Clone)]
pub(super) struct RequestMeta {
    pub started: Instant,
    pub started_at_ms: i64,
    pub session_id: Option<String>,
    pub scenario: &'static str,
    pub fallback_from: Option<ModelRef>,
    /// Set when a stream rescued a retryable local failure (see [`super::translated`]).
    pub fallback_reason: Option<String>,
    /// Our estimate of the prompt the current target receives (when one was made).
    pub sent_estimate: Option<u64>,
    pub stream: bool,
    /// Tool calls that could not be repaired while answering (retried or fallen
    /// back from).
    pub tool_call_failures: u32,
    /// What context editing did to the request, when it did anything.
    pub edit: Option<EditReport>,
    /// The named client that sent it (None: the admin, or no key).
    pub client: Option<std::sync::Arc<str>>,
}

impl RequestMeta {
    /// A request that just arrived: nothing known but the time.
    pub fn now() -> RequestMeta {
        RequestMeta {
            started: Instant::now(),
            started_at_ms: unix_ms(),
            session_id: None,
            scenario: "-",
            fallback_from: None,
            fallback_reason: None,
            sent_estimate: None,
            stream: false,
            tool_call_failures: 0,
            edit: None,
            client: None,
        }
    }
}

/// How one request ended, for [`finish_request`].
pub(super) struct Ending<'a> {
    pub target: Option<&'a ModelRef>,
    pub status: u16,
    pub usage: Usage,
    pub tokens_estimated: bool,
    pub time_to_first_token: Option<Duration>,
    pub outcome: RequestOutcome,
    /// The repairs made to the answer's tool calls, comma-separated.
    pub repairs: Option<String>,
}

impl Ending<'_> {
    /// A 200 from `target`.
    pub fn ok(target: &ModelRef, usage: Usage, estimated: bool) -> Ending<'_> {
        Ending {
            target: Some(target),
            status: 200,
            usage,
            tokens_estimated: estimated,
            time_to_first_token: None,
            outcome: RequestOutcome::Ok,
            repairs: None,
        }
    }

    /// No answer: `status` and `outcome`, no tokens.
    pub fn failed(target: Option<&ModelRef>, status: u16, outcome: RequestOutcome) -> Ending<'_> {
        Ending {
            target,
            status,
            usage: Usage::default(),
            tokens_estimated: false,
            time_to_first_token: None,
            outcome,
            repairs: None,
        }
    }
}

/// Write the one log line and the one ledger row of a request.
fn finish_request(state: &AppState, meta: &RequestMeta, end: Ending<'_>) {
    state.requests.fetch_add(1, Ordering::Relaxed);
    let duration = meta.started.elapsed();
    let (provider, model) = end
        .target
        .map(|t| (t.provider.as_str(), t.model.as_str()))
        .unwrap_or(("-", "-"));
    // The model of an explicit route is the client's text: one sanitised field.
    let (shown_provider, shown_model) = (sanitize::field(provider), sanitize::field(model));
    tracing::info!(
        "{} {} {shown_provider},{shown_model} status={} in={}{} out={} {:.1}ms{}",
        if meta.stream { "stream" } else { "json" },
        meta.scenario,
        end.status,
        end.usage
            .input_tokens
            .saturating_add(end.usage.cache_read_input_tokens.unwrap_or(0)),
        if end.tokens_estimated { "~" } else { "" },
        end.usage.output_tokens,
        duration.as_secs_f64() * 1000.0,
        log_details(meta, &end),
    );
    let reported = end
        .usage
        .input_tokens
        .saturating_add(end.usage.cache_read_input_tokens.unwrap_or(0));
    let window = end
        .target
        .and_then(|t| state.config.current().provider(&t.provider)?.context_window);
    let judged = end.outcome == RequestOutcome::Ok && !end.tokens_estimated;
    let shifted =
        judged && crate::proxy::guard::context_shifted(reported, end.usage.output_tokens, window);
    if shifted {
        tracing::warn!(
            "{shown_provider},{shown_model} used {reported} prompt + {} output tokens in a {}-token context: its server cut tokens from the conversation mid-answer (context shift), so the answer may have lost track; run /compact in Claude Code or raise the context (`ccr-setup init --context-length`)",
            end.usage.output_tokens,
            window.unwrap_or(0)
        );
    }
    let context_overflowed = shifted
        || (judged
            && crate::proxy::guard::context_overflowed(reported, meta.sent_estimate, window));
    if context_overflowed {
        tracing::warn!(
            "{shown_provider},{shown_model} reported {reported} prompt tokens for about {} sent, in a {}-token context: it likely dropped the oldest messages; run /compact in Claude Code or raise the context (`ccr-setup init --context-length`)",
            meta.sent_estimate.unwrap_or(0),
            window.unwrap_or(0)
        );
    }
    remember_session(state, meta, &end, reported, shifted);
    let record = UsageRecord {
        started_at_ms: meta.started_at_ms,
        session_id: meta.session_id.clone(),
        scenario: meta.scenario.to_owned(),
        provider: provider.to_owned(),
        model: model.to_owned(),
        fallback_from: meta.fallback_from.as_ref().map(ModelRef::to_string),
        fallback_reason: meta.fallback_reason.clone(),
        context_overflowed,
        context_cleared_blocks: meta.edit.map_or(0, |e| e.cleared_blocks + e.cut_blocks),
        context_cleared_tokens: meta.edit.map_or(0, |e| e.tokens_saved()),
        repairs: end.repairs,
        tool_call_failures: meta.tool_call_failures,
        input_tokens: end.usage.input_tokens,
        output_tokens: end.usage.output_tokens,
        cache_read_tokens: end.usage.cache_read_input_tokens.unwrap_or(0),
        cache_write_tokens: end.usage.cache_creation_input_tokens.unwrap_or(0),
        tokens_estimated: end.tokens_estimated,
        time_to_first_token_ms: end.time_to_first_token.map(|d| d.as_millis() as u64),
        duration_ms: duration.as_millis() as u64,
        outcome: end.outcome,
        http_status: end.status,
        stream: meta.stream,
        client: meta.client.as_deref().map(str::to_owned),
    };
    state
        .clients
        .record(&record, &state.config.current(), state.config.generation());
    state.ledger.record(record);
}

/// The request log line's optional tail: the fallback, a failed outcome, tool-call
/// repairs and context editing, each only when there is something to say.
fn log_details(meta: &RequestMeta, end: &Ending<'_>) -> String {
    let mut out = String::new();
    if let Some(from) = &meta.fallback_from {
        out.push_str(&format!(
            " fallback_from={}",
            sanitize::field(&from.to_string())
        ));
    }
    if end.outcome != RequestOutcome::Ok {
        match end.outcome.detail() {
            Some(detail) => out.push_str(&format!(" outcome={}:{detail}", end.outcome.kind())),
            None => out.push_str(&format!(" outcome={}", end.outcome.kind())),
        }
    }
    if end.repairs.is_some() || meta.tool_call_failures > 0 {
        out.push_str(&format!(
            " repairs={} unfit_tool_calls={}",
            end.repairs.as_deref().unwrap_or("-"),
            meta.tool_call_failures
        ));
    }
    if let Some(e) = meta.edit {
        out.push_str(&format!(
            " cleared={}/{}tok",
            e.cleared_blocks + e.cut_blocks,
            e.tokens_saved()
        ));
    }
    out
}

/// Failure kinds that say the local model's answer was unusable (not that the server
/// was unreachable): they count toward the quality fallback.
const UNUSABLE: &[&str] = &[
    "tool_call_invalid",
    "tool_call_parse",
    "tool_choice",
    "stream_truncated",
    crate::proxy::translate::stream::REPETITION,
];

/// Remember the session's last route, and whether the local model's answer was
/// usable; switch the session to the cloud when too many were not.
/// A token-level cut (`shifted`) counts as unusable too: the answer lost track.
fn remember_session(
    state: &AppState,
    meta: &RequestMeta,
    end: &Ending<'_>,
    reported: u64,
    shifted: bool,
) {
    let Some(session) = meta.session_id.as_deref() else {
        return;
    };
    let Some(target) = end.target else {
        return;
    };
    let config = state.config.current();
    let is_local = |name: &str| {
        config
            .provider(name)
            .is_some_and(crate::ledger::is_local_provider)
    };
    let local = is_local(&target.provider);
    let from_local = meta
        .fallback_from
        .as_ref()
        .is_some_and(|f| is_local(&f.provider));
    let unusable_kind = |kind: Option<&str>| kind.is_some_and(|k| UNUSABLE.contains(&k));
    let local_answer = (local || from_local).then(|| {
        meta.tool_call_failures > 0
            || (local && shifted)
            || (from_local && unusable_kind(meta.fallback_reason.as_deref()))
            || (local && unusable_kind(end.outcome.detail()))
            || (local && end.outcome == RequestOutcome::Ok && end.usage.output_tokens == 0)
    });
    let window_of = |r: &ModelRef| config.provider(&r.provider)?.context_window;
    let local_window = match local {
        true => window_of(target),
        false => window_of(&config.router.default),
    };
    let last = crate::proxy::sessions::LastRequest {
        at_ms: meta.started_at_ms,
        target: target.to_string(),
        local,
        scenario: meta.scenario.to_owned(),
        fallback_from: meta.fallback_from.as_ref().map(ModelRef::to_string),
        fallback_reason: meta.fallback_reason.clone(),
        outcome: end.outcome.kind().to_owned(),
        input_tokens: reported,
        local_window: local_window.map(u64::from),
        context_cleared: meta.edit.map_or(0, |e| e.cleared_blocks + e.cut_blocks),
    };
    let change = state
        .sessions
        .record(session, last, local_answer, config.quality);
    if let crate::proxy::sessions::QualityChange::SwitchedToCloud { failures } = change {
        tracing::warn!(
            "session {}: {failures} of the local model's recent answers were unusable; its next {} requests go to the fallback chain (fallback.after_local_failures / fallback.cloud_requests)",
            sanitize::field(session),
            config.quality.cloud_requests
        );
    }
}

/// How a streamed answer ended, as its chunk source saw it (a cancellation is
/// reported with what was seen so far).
#[derive(Debug)]
pub(super) struct StreamEnd {
    pub usage: Usage,
    pub estimated: bool,
    pub first_token: Option<Duration>,
    pub outcome: RequestOutcome,
    /// The repairs made to the answer's tool calls ([`Ending::repairs`]).
    pub repairs: Option<String>,
    /// Tool calls in this answer that could not be repaired.
    pub unfit_calls: u32,
}

/// The one writer of a request's log line and ledger row. Made when the request
/// arrives; whatever ends it (a refusal, a failed chain, a whole answer, the end of
/// a stream or the client's disconnect mid-stream) consumes it, so the row is
/// written once.
pub(super) struct Finisher {
    state: Arc<AppState>,
    pub meta: RequestMeta,
    /// The target that answered (or failed last); None for a refusal.
    pub target: Option<ModelRef>,
}

impl Finisher {
    /// A request that just arrived.
    pub fn new(state: &Arc<AppState>) -> Finisher {
        Finisher {
            state: Arc::clone(state),
            meta: RequestMeta::now(),
            target: None,
        }
    }

    /// Answer `error` without trying any provider, recorded as `rejected` + `why`.
    pub fn reject(self, error: ProxyError, why: &str) -> Response {
        let outcome = RequestOutcome::Rejected(why.to_owned());
        self.failed(error.status.as_u16(), outcome);
        error.into_response()
    }

    /// No answer: `status` and `outcome`, no tokens.
    pub fn failed(self, status: u16, outcome: RequestOutcome) {
        let end = Ending::failed(self.target.as_ref(), status, outcome);
        finish_request(&self.state, &self.meta, end);
    }

    /// A whole (non-streamed) answer from [`Finisher::target`].
    pub fn answered(self, usage: Usage, estimated: bool, repairs: Option<String>) {
        let Some(target) = self.target.as_ref() else {
            return;
        };
        let end = Ending {
            repairs,
            ..Ending::ok(target, usage, estimated)
        };
        finish_request(&self.state, &self.meta, end);
    }

    /// A streamed answer from [`Finisher::target`] ended (or was cancelled).
    pub fn streamed(mut self, end: StreamEnd) {
        let Some(target) = self.target.take() else {
            return;
        };
        self.meta.tool_call_failures += end.unfit_calls;
        let ending = Ending {
            time_to_first_token: end.first_token,
            outcome: end.outcome,
            repairs: end.repairs,
            ..Ending::ok(&target, end.usage, end.estimated)
        };
        finish_request(&self.state, &self.meta, ending);
    }
}

fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
