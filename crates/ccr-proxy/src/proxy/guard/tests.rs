use super::*;
use crate::proxy::test_support::{config, mr, req};
use serde_json::json;

fn count(total: u64, thinking: u64) -> TokenCount {
    TokenCount {
        messages: total,
        thinking,
        ..TokenCount::default()
    }
}

/// The guard for the 32k local model on a request with nothing to clear.
fn guard_local(c: &Config, total: u64, thinking: u64) -> GuardOutcome {
    let (est, memory) = (TokenEstimator::default(), ClearMemory::default());
    let editing = Editing {
        estimator: &est,
        memory: &memory,
        session: None,
    };
    let r = req(json!({}));
    guard(
        c,
        &mr("ollama,gpt-oss:20b"),
        &count(total, thinking),
        &r,
        &editing,
    )
}

#[test]
fn guard_refuses_in_anthropics_words_with_the_output_reserve_counted() {
    let c = config(json!({"default": "ollama,gpt-oss:20b"}));
    let GuardOutcome::Refuse { message } = guard_local(&c, 40_000, 0) else {
        panic!("expected a refusal");
    };
    assert!(
        message.starts_with("prompt is too long: 40000 tokens > 28672 maximum"),
        "{message}"
    );
    // The reserve counts: 29000 + 4096 > 32768.
    assert!(matches!(
        guard_local(&c, 29_000, 0),
        GuardOutcome::Refuse { .. }
    ));
    assert!(matches!(
        guard_local(&c, 28_000, 0),
        GuardOutcome::Send { edit: None, .. }
    ));
}

#[test]
fn guard_reroutes_to_long_context_when_nothing_can_be_cleared() {
    let c = config(
        json!({"default": "ollama,gpt-oss:20b", "longContext": "anthropic,claude-sonnet-4-5"}),
    );
    let GuardOutcome::Send {
        target,
        rerouted_to_long_context,
        edit,
    } = guard_local(&c, 40_000, 0)
    else {
        panic!("expected a send");
    };
    assert_eq!(target, mr("anthropic,claude-sonnet-4-5"));
    assert!(rerouted_to_long_context && edit.is_none());
}

#[test]
fn max_tokens_is_clamped_to_the_window_and_dropped_thinking_is_not_counted() {
    let c = config(json!({"default": "ollama,gpt-oss:20b"}));
    // 40k of which 20k is thinking the OpenAI-kind target never receives.
    assert!(matches!(
        guard_local(&c, 40_000, 20_000),
        GuardOutcome::Send { edit: None, .. }
    ));
    let local = mr("ollama,gpt-oss:20b");
    assert_eq!(
        clamp_max_tokens(&c, &local, &count(40_000, 20_000), Some(64_000)),
        Some(32_768 - 20_000)
    );
    assert_eq!(
        clamp_max_tokens(&c, &local, &count(1_000, 0), Some(500)),
        Some(500)
    );
    // No window: untouched.
    let cloud = mr("anthropic,claude-sonnet-4-5");
    assert_eq!(
        clamp_max_tokens(&c, &cloud, &count(400_000, 0), Some(64_000)),
        Some(64_000)
    );
}
