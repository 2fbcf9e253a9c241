//! The context guard: does the prompt fit the target's `context_window`?
//!
//! Input + [`MIN_OUTPUT_RESERVE`] must fit the window the provider declares. When it
//! does not, the request moves to `Router.longContext` (if set and it fits) or is
//! refused with a message Claude Code shows; when it fits, `max_tokens` is clamped to
//! what is left of the window. Providers without a window are never checked.

use super::tokens::TokenCount;
use crate::config::{Config, ModelRef, ProviderKind};

/// Output tokens always left free by the context guard: a prompt that leaves less
/// than this cannot produce a useful answer (and our estimate is not exact).
pub const MIN_OUTPUT_RESERVE: u64 = 2_048;

/// What the context guard decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GuardOutcome {
    /// Send to `target` with `max_tokens` (clamped to the window when it has one).
    Send {
        target: ModelRef,
        rerouted_to_long_context: bool,
        max_tokens: Option<u32>,
    },
    /// Too big for every choice: answer 400 with this message.
    Refuse { message: String },
}

/// The message Claude Code shows when a prompt does not fit the local context.
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

pub fn too_long_message(prompt_tokens: u64, window: u32) -> String {
    format!(
        "prompt is {prompt_tokens} tokens, the local context is {window}; run /compact or raise the context with `ccr-setup init --context-length`"
    )
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

/// Does the request fit `target`'s declared window (if any)? Returns the window when
/// it does not.
pub fn overflows(config: &Config, target: &ModelRef, count: &TokenCount) -> Option<(u64, u32)> {
    let window = config.provider(&target.provider)?.context_window?;
    let input = input_tokens_for(config, target, count);
    (input + MIN_OUTPUT_RESERVE > u64::from(window)).then_some((input, window))
}

/// The context guard for the routed `target`. If input + [`MIN_OUTPUT_RESERVE`]
/// exceeds the provider's `context_window`, re-route to `Router.longContext` when it is
/// set and fits; otherwise refuse. When it fits, `max_tokens` is clamped to what is
/// left of the window.
pub fn guard(
    config: &Config,
    target: &ModelRef,
    count: &TokenCount,
    max_tokens: Option<u32>,
) -> GuardOutcome {
    let mut target = target;
    let mut rerouted = false;
    if let Some((input, window)) = overflows(config, target, count) {
        match &config.router.long_context {
            Some(long) if long != target => match overflows(config, long, count) {
                None => {
                    target = long;
                    rerouted = true;
                }
                Some((input, window)) => {
                    return GuardOutcome::Refuse {
                        message: too_long_message(input, window),
                    }
                }
            },
            _ => {
                return GuardOutcome::Refuse {
                    message: too_long_message(input, window),
                }
            }
        }
    }
    GuardOutcome::Send {
        target: target.clone(),
        rerouted_to_long_context: rerouted,
        max_tokens: clamp_max_tokens(config, target, count, max_tokens),
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
mod tests {
    use super::*;
    use crate::proxy::test_support::{config, mr};
    use serde_json::json;

    fn count(total: u64, thinking: u64) -> TokenCount {
        TokenCount {
            messages: total,
            thinking,
            ..TokenCount::default()
        }
    }

    /// The guard for the 32k local model.
    fn guard_local(c: &Config, total: u64, thinking: u64, max: Option<u32>) -> GuardOutcome {
        guard(c, &mr("ollama,gpt-oss:20b"), &count(total, thinking), max)
    }

    #[test]
    fn guard_refuses_with_the_exact_message() {
        let c = config(json!({"default": "ollama,gpt-oss:20b"}));
        let out = guard_local(&c, 40_000, 0, Some(64_000));
        assert_eq!(
            out,
            GuardOutcome::Refuse {
                message: "prompt is 40000 tokens, the local context is 32768; run /compact or raise the context with `ccr-setup init --context-length`".into()
            }
        );
        // The reserve counts: 31000 + 2048 > 32768.
        assert!(matches!(
            guard_local(&c, 31_000, 0, None),
            GuardOutcome::Refuse { .. }
        ));
    }

    #[test]
    fn guard_reroutes_to_long_context_when_set() {
        let c = config(
            json!({"default": "ollama,gpt-oss:20b", "longContext": "anthropic,claude-sonnet-4-5"}),
        );
        let out = guard_local(&c, 40_000, 0, Some(64_000));
        assert_eq!(
            out,
            GuardOutcome::Send {
                target: mr("anthropic,claude-sonnet-4-5"),
                rerouted_to_long_context: true,
                max_tokens: Some(64_000)
            }
        );
    }

    #[test]
    fn guard_clamps_max_tokens_and_ignores_dropped_thinking() {
        let c = config(json!({"default": "ollama,gpt-oss:20b"}));
        // 40k of which 20k is thinking the OpenAI-kind target never receives.
        let out = guard_local(&c, 40_000, 20_000, Some(64_000));
        assert_eq!(
            out,
            GuardOutcome::Send {
                target: mr("ollama,gpt-oss:20b"),
                rerouted_to_long_context: false,
                max_tokens: Some(32_768 - 20_000)
            }
        );
        // No window: untouched.
        let out = guard(
            &c,
            &mr("anthropic,claude-sonnet-4-5"),
            &count(400_000, 0),
            Some(64_000),
        );
        assert!(matches!(
            out,
            GuardOutcome::Send {
                max_tokens: Some(64_000),
                ..
            }
        ));
        let out = guard_local(&c, 1_000, 0, Some(500));
        assert!(matches!(
            out,
            GuardOutcome::Send {
                max_tokens: Some(500),
                ..
            }
        ));
    }
}
