//! Token counting off the async workers.
//!
//! The runtime has one worker per core. Counting a large cold request takes
//! milliseconds (and up to the estimator's time budget on pathological text); done on a
//! worker, a few such requests at once would stall every other request, `/health`
//! included. So the work that may count (the plan, `count_tokens`) runs on tokio's
//! blocking pool whenever the body is large enough for that to matter, with the request
//! moved there and back rather than copied. At most one such job per core runs at once:
//! more would not count faster, and each holds its own merge buffers and regex cache.

use std::sync::OnceLock;

use axum::http::StatusCode;
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::{Config, ProviderKind};
use crate::proxy::error::{ErrorKind, ProxyError};
use crate::proxy::guard::Editing;
use crate::proxy::plan::{plan, Plan, PlanError};
use crate::proxy::wire::anthropic::MessagesRequest;

/// Bodies from this size on are counted on the blocking pool. A cold 32 KB counts in
/// well under a millisecond, less than the hop to another thread would cost.
pub(super) const BLOCKING_FROM_BYTES: usize = 32 * 1024;

/// A counting slot for a large body, taken before the body is parsed: requests queued
/// for a slot then hold their bytes, not also their parse (with 32 Claude Code requests
/// in flight and two slots, that was ~100 KB more per waiting request). None for a
/// small body, which is counted inline.
pub(super) async fn counting_slot(body_len: usize) -> Option<SemaphorePermit<'static>> {
    if body_len < BLOCKING_FROM_BYTES {
        return None;
    }
    counting_slots().acquire().await.ok()
}

/// Run `work` on `req`: inline without a slot (a small body), on the blocking pool
/// with one.
pub(super) async fn with_request<T, F>(
    mut req: MessagesRequest,
    slot: Option<SemaphorePermit<'static>>,
    work: F,
) -> Result<(MessagesRequest, T), ProxyError>
where
    T: Send + 'static,
    F: FnOnce(&mut MessagesRequest) -> T + Send + 'static,
{
    let Some(_slot) = slot else {
        let out = work(&mut req);
        return Ok((req, out));
    };
    tokio::task::spawn_blocking(move || {
        let out = work(&mut req);
        (req, out)
    })
    .await
    .map_err(|e| {
        tracing::error!("token counting failed: {e}");
        ProxyError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorKind::Api,
            "the proxy failed while counting the request's tokens",
        )
    })
}

/// One slot per core for counting jobs.
fn counting_slots() -> &'static Semaphore {
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    SLOTS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

/// [`plan`], plus the token count when an OpenAI-kind target may need it for
/// `message_start` and the plan did not count (so that count also happens here, off
/// the workers, instead of later on one).
pub(super) fn plan_counted(
    config: &Config,
    editing: &Editing<'_>,
    req: &mut MessagesRequest,
) -> Result<Plan, PlanError> {
    let mut planned = plan(config, editing, req)?;
    let openai_target = planned.targets.iter().any(|t| {
        config
            .provider(&t.provider)
            .is_some_and(|p| p.kind == ProviderKind::OpenAi)
    });
    if planned.count.is_none() && openai_target {
        planned.count = Some(editing.estimator.count(req));
    }
    Ok(planned)
}
