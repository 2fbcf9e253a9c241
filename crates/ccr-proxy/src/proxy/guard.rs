//! The context guard: does the prompt fit the target's `context_window`?
//!
//! Input + the provider's `output_reserve` must fit the window it declares. When it
//! does not, the provider's `context_editing` decides ([`crate::proxy::context_edit`]):
//! `auto` clears old tool results until it fits and moves to `Router.longContext` only
//! when that cannot make it fit; `cloud_first` tries `Router.longContext` first; `off`
//! never edits. What fits nowhere is refused in Anthropic's words, so Claude Code
//! compacts. Providers without a window are never checked.

use super::context_edit::{self, Budget, ClearMemory, EditOutcome, EditPlan};
use super::tokens::{TokenCount, TokenEstimator};
use super::wire::anthropic::MessagesRequest;
use crate::config::{Config, ContextEditing, ModelRef, ProviderKind};

/// What the guard needs to edit a request: the estimator for the blocks it changes,
/// and the clear points of the conversations seen so far.
pub struct Editing<'a> {
    pub estimator: &'a TokenEstimator,
    pub memory: &'a ClearMemory,
    /// Claude Code's session, part of a conversation's key.
    pub session: Option<&'a str>,
}

impl Editing<'_> {
    /// [`context_edit::decide`] for `req`, counted at `input` tokens, against `budget`.
    pub fn decide(&self, req: &MessagesRequest, budget: &Budget, input: u64) -> EditOutcome {
        context_edit::decide(
            req,
            budget,
            input,
            self.estimator,
            self.memory,
            self.session,
        )
    }
}

/// What the context guard decided.
#[derive(Debug)]
pub enum GuardOutcome {
    /// Send to `target`, after `edit` when there is one.
    Send {
        target: ModelRef,
        rerouted_to_long_context: bool,
        edit: Option<EditPlan>,
    },
    /// Too big for every choice: answer 400 with this message.
    Refuse { message: String },
}

/// Did the server see less of the prompt than was sent? Ollama truncates a prompt
/// longer than its context silently (the oldest messages go, server/prompt.go) and
/// reports the truncated count. Signs: the reported prompt fills the window to within
/// 1%, or it is under three quarters of our estimate (o200k counts differ from other
/// tokenizers by far less than that).
pub fn context_overflowed(reported: u64, sent_estimate: Option<u64>, window: Option<u32>) -> bool {
    let Some(window) = window.map(u64::from).filter(|w| *w > 0) else {
        return false;
    };
    let fills_window = reported.saturating_mul(100) >= window.saturating_mul(99);
    let lost_part = sent_estimate
        .filter(|e| *e >= 1000)
        .is_some_and(|e| reported.saturating_mul(4) < e.saturating_mul(3));
    fills_window || lost_part
}

/// Did the runner cut tokens rather than messages? Ollama's llama-server runs gpt-oss
/// with `--context-shift --keep 4` (llm/llama_server.go ~279–318): a generation that
/// reaches the end of the context drops tokens after the first 4 and goes on, instead of
/// stopping with `length`. The reported prompt and output together then exceed the
/// window, which nothing else produces.
pub fn context_shifted(prompt: u64, output: u64, window: Option<u32>) -> bool {
    window
        .filter(|w| *w > 0)
        .is_some_and(|w| prompt.saturating_add(output) > u64::from(w))
}

/// The input tokens `target` will actually receive: earlier thinking is dropped for
/// OpenAI-kind providers unless `reasoning_in_history` is set.
pub fn input_tokens_for(config: &Config, target: &ModelRef, count: &TokenCount) -> u64 {
    match config.provider(&target.provider) {
        Some(p) if p.kind == ProviderKind::OpenAi && !p.reasoning_in_history => {
            count.total_without_thinking()
        }
        _ => count.total(),
    }
}

/// Does the request fit `target`'s declared window (if any), with the provider's
/// `output_reserve` left free? Returns the input and the largest input that fits when
/// it does not.
pub fn overflows(config: &Config, target: &ModelRef, count: &TokenCount) -> Option<(u64, u64)> {
    let budget = Budget::of(config.provider(&target.provider)?)?;
    let input = input_tokens_for(config, target, count);
    (input > budget.limit()).then_some((input, budget.limit()))
}

/// The context guard for the routed `target` (see the module doc).
pub fn guard(
    config: &Config,
    target: &ModelRef,
    count: &TokenCount,
    req: &MessagesRequest,
    editing: &Editing<'_>,
) -> GuardOutcome {
    let send = |target: &ModelRef, rerouted, edit| GuardOutcome::Send {
        target: target.clone(),
        rerouted_to_long_context: rerouted,
        edit,
    };
    let Some(provider) = config.provider(&target.provider) else {
        return send(target, false, None);
    };
    let Some(budget) = Budget::of(provider) else {
        return send(target, false, None);
    };
    let input = input_tokens_for(config, target, count);
    // Router.longContext, when it is another target and the whole prompt fits there.
    let long_context = config
        .router
        .long_context
        .as_ref()
        .filter(|long| *long != target && config.missing_key(&long.provider).is_none())
        .filter(|long| overflows(config, long, count).is_none());
    let too_long = |input| GuardOutcome::Refuse {
        message: context_edit::too_long_message(
            input,
            budget.limit(),
            &provider.name,
            budget.window,
        ),
    };
    let mode = provider.context_editing;
    if input > budget.limit() && mode != ContextEditing::Auto {
        if let Some(long) = long_context {
            return send(long, true, None);
        }
    }
    if mode == ContextEditing::Off {
        return match input > budget.limit() {
            true => too_long(input),
            false => send(target, false, None),
        };
    }
    match editing.decide(req, &budget, input) {
        EditOutcome::Untouched => send(target, false, None),
        EditOutcome::Fits(edit) => send(target, false, Some(edit)),
        EditOutcome::TooLong { input, .. } => match long_context {
            Some(long) => send(long, true, None),
            None => too_long(input),
        },
    }
}

/// `max_tokens` limited to what is left of `target`'s window after the input.
pub fn clamp_max_tokens(
    config: &Config,
    target: &ModelRef,
    count: &TokenCount,
    max_tokens: Option<u32>,
) -> Option<u32> {
    let Some(window) = config
        .provider(&target.provider)
        .and_then(|p| p.context_window)
    else {
        return max_tokens;
    };
    let input = input_tokens_for(config, target, count);
    let room = u32::try_from(u64::from(window).saturating_sub(input)).unwrap_or(u32::MAX);
    Some(max_tokens.map_or(room, |m| m.min(room)))
}

#[cfg(test)]
mod overflow_tests {
    use super::{context_overflowed, context_shifted};

    #[test]
    fn a_token_level_cut_shows_as_more_tokens_than_the_window() {
        assert!(context_shifted(30_000, 3_000, Some(32_768)));
        assert!(
            !context_shifted(30_000, 2_768, Some(32_768)),
            "exactly full"
        );
        assert!(
            !context_shifted(30_000, 9_000, None),
            "no window, no judgement"
        );
    }

    #[test]
    fn truncation_is_seen_at_the_window_or_far_below_the_estimate() {
        assert!(
            context_overflowed(32_500, Some(31_000), Some(32_768)),
            "fills the window"
        );
        assert!(
            context_overflowed(9_000, Some(20_000), Some(32_768)),
            "most of it lost"
        );
        assert!(
            !context_overflowed(19_400, Some(20_000), Some(32_768)),
            "tokenizer noise"
        );
        assert!(
            !context_overflowed(300, Some(900), Some(32_768)),
            "too small to judge"
        );
        assert!(
            !context_overflowed(32_767, Some(32_767), None),
            "no window, no judgement"
        );
    }
}

#[cfg(test)]
mod tests;
