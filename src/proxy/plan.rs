//! Everything decided about a request before the first attempt: the rule that fires
//! ([`route`](super::route)), the context guard ([`guard`](super::guard)) and the
//! targets in order ([`fallback::chain`]); then, per target, the request rewritten for
//! it ([`Plan::prepare`]).

use super::anthropic::MessagesRequest;
use super::fallback;
use super::guard::{clamp_max_tokens, guard, overflows, GuardOutcome};
use super::route::{decide, RouteDecision, RouteError, Scenario};
use super::tokens::{TokenCount, TokenEstimator};
use super::translate::unsigned_thinking::strip_unsigned_thinking;
use crate::config::{Config, ModelRef, ProviderKind};

/// Everything decided before the first attempt: the rule, the targets in order, and
/// the estimate when anything needed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The rule that fired (`longContext` when the context guard re-routed).
    pub scenario: Scenario,
    /// The routed target first, then the fallbacks whose window the prompt fits.
    pub targets: Vec<ModelRef>,
    /// The estimate, when a rule, the guard or the fallback filter needed it.
    pub count: Option<TokenCount>,
    /// The client's `max_tokens`, before any clamp.
    pub requested_max_tokens: Option<u32>,
    /// The context guard moved the request to `Router.longContext`.
    pub rerouted_to_long_context: bool,
}

/// Why a request is answered without trying any provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Route(#[from] RouteError),
    /// The context guard refused: the message is what Claude Code shows.
    #[error("{0}")]
    TooLong(String),
}

/// Route, guard and build the fallback chain for `req`; strips the subagent tag.
/// Tokens are estimated only if a rule, a context window or a fallback needs them.
pub fn plan(
    config: &Config,
    estimator: &TokenEstimator,
    req: &mut MessagesRequest,
) -> Result<Plan, PlanError> {
    let cell = std::cell::OnceCell::new();
    let (decision, count) = {
        let req: &MessagesRequest = req;
        let count = || *cell.get_or_init(|| estimator.count(req));
        let decision = decide(config, req, || count().total())?;
        (decision, count)
    };
    let mut scenario = decision.scenario;
    let mut target = decision.target.clone();
    let mut rerouted = false;
    let has_window = |t: &ModelRef| {
        config
            .provider(&t.provider)
            .is_some_and(|p| p.context_window.is_some())
    };
    if has_window(&target) {
        match guard(config, &target, &count(), req.max_tokens) {
            GuardOutcome::Refuse { message } => return Err(PlanError::TooLong(message)),
            GuardOutcome::Send {
                target: t,
                rerouted_to_long_context,
                ..
            } => {
                if rerouted_to_long_context {
                    scenario = Scenario::LongContext;
                    rerouted = true;
                }
                target = t;
            }
        }
    }
    // Fallbacks skip providers disabled for a missing key, and windows the prompt
    // does not fit.
    let targets = fallback::chain(config, scenario.name(), &target, |t| {
        config.missing_key(&t.provider).is_none()
            && (!has_window(t) || overflows(config, t, &count()).is_none())
    });
    let count = cell.get().copied();
    // Only the tag strip happens here; the model name and max_tokens are per target.
    RouteDecision {
        target: target.clone(),
        ..decision
    }
    .strip_subagent_tag(req);
    Ok(Plan {
        scenario,
        targets,
        count,
        requested_max_tokens: req.max_tokens,
        rerouted_to_long_context: rerouted,
    })
}

impl Plan {
    /// Rewrite `req` for one attempt at `target` (called again, in place, for each
    /// fallback): the routed model name, `max_tokens` clamped to the target's window,
    /// and for Anthropic-kind targets history without unsigned (local) thinking.
    pub fn prepare(&self, config: &Config, target: &ModelRef, req: &mut MessagesRequest) {
        req.model.clone_from(&target.model);
        req.max_tokens = match &self.count {
            Some(count) => clamp_max_tokens(config, target, count, self.requested_max_tokens),
            None => self.requested_max_tokens,
        };
        if config
            .provider(&target.provider)
            .is_some_and(|p| p.kind == ProviderKind::Anthropic)
        {
            strip_unsigned_thinking(req);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::anthropic::{Content, System};
    use crate::proxy::test_support::{config, config_with, mr, req};
    use serde_json::json;

    fn plan_config(long_context: bool) -> Config {
        let mut router = json!({"default": "ollama,gpt-oss:20b"});
        if long_context {
            router["longContext"] = json!("anthropic,claude-sonnet-4-5");
        }
        config_with(
            router,
            json!({"fallback": {"default": ["ollama,qwen3:8b", "anthropic,claude-haiku-4-5"]}}),
        )
    }

    fn big_request(words: usize) -> MessagesRequest {
        req(json!({
            "max_tokens": 64000,
            "system": [{"type": "text", "text": "<CCR-SUBAGENT-MODEL>ollama,gpt-oss:20b</CCR-SUBAGENT-MODEL>agent"}],
            "messages": [
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "local", "signature": ""}, {"type": "text", "text": "ok"}]},
                {"role": "user", "content": "word ".repeat(words)}
            ]
        }))
    }

    #[test]
    fn plan_refuses_a_prompt_over_the_window_with_the_exact_message() {
        let est = TokenEstimator::default();
        let mut r = big_request(40_000);
        let n = est.count(&r).total_without_thinking();
        let err = plan(&plan_config(false), &est, &mut r).unwrap_err();
        assert_eq!(
            err,
            PlanError::TooLong(format!("prompt is {n} tokens, the local context is 32768; run /compact or raise the context with `ccr-setup init --context-length`"))
        );
    }

    #[test]
    fn plan_reroutes_to_long_context_and_filters_fallbacks_that_do_not_fit() {
        let est = TokenEstimator::default();
        let c = plan_config(true);
        let mut r = big_request(40_000);
        let p = plan(&c, &est, &mut r).unwrap();
        assert_eq!(p.scenario, Scenario::LongContext);
        assert!(p.rerouted_to_long_context);
        // longContext has no chain of its own: the default one, minus the 32k local model.
        assert_eq!(
            p.targets,
            vec![
                mr("anthropic,claude-sonnet-4-5"),
                mr("anthropic,claude-haiku-4-5")
            ]
        );
        // The subagent tag is gone either way.
        assert!(matches!(&r.system, Some(System::Blocks(b)) if b[0].text == "agent"));
        // Preparing for the Anthropic target strips the local thinking, keeps max_tokens.
        p.prepare(&c, &p.targets[0], &mut r);
        assert_eq!(r.model, "claude-sonnet-4-5");
        assert_eq!(r.max_tokens, Some(64_000));
        assert!(matches!(&r.messages[0].content, Content::Blocks(b) if b.len() == 1));
    }

    #[test]
    fn plan_for_a_small_prompt_clamps_max_tokens_per_target() {
        let est = TokenEstimator::default();
        let c = plan_config(false);
        let mut r = big_request(1_000);
        let p = plan(&c, &est, &mut r).unwrap();
        assert_eq!(p.scenario, Scenario::Subagent);
        assert_eq!(
            p.targets,
            vec![
                mr("ollama,gpt-oss:20b"),
                mr("ollama,qwen3:8b"),
                mr("anthropic,claude-haiku-4-5")
            ]
        );
        let input = p.count.unwrap().total_without_thinking();
        p.prepare(&c, &p.targets[0], &mut r);
        assert_eq!(r.max_tokens, Some(32_768 - input as u32));
        assert_eq!(r.model, "gpt-oss:20b");
        p.prepare(&c, &p.targets[2], &mut r);
        assert_eq!(
            r.max_tokens,
            Some(64_000),
            "no window: the client's value again"
        );
        assert_eq!(r.model, "claude-haiku-4-5");
    }

    #[test]
    fn plan_without_windows_or_long_context_never_estimates() {
        let est = TokenEstimator::default();
        let c = config(json!({"default": "anthropic,claude-sonnet-4-5"}));
        let mut r = req(json!({"messages": [{"role": "user", "content": "word ".repeat(10)}]}));
        let p = plan(&c, &est, &mut r).unwrap();
        assert_eq!(p.count, None);
        assert_eq!(est.stats().misses, 0);
    }

    #[test]
    fn a_provider_without_its_key_is_skipped_by_rules_and_fallbacks_and_refused_when_named() {
        let est = TokenEstimator::default();
        let c = config_with(
            json!({"default": "ollama,gpt-oss:20b", "think": "anthropic,claude-sonnet-4-5"}),
            json!({
                "Providers": [
                    {"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["gpt-oss:20b", "qwen3:8b"]},
                    {"name": "anthropic", "api_base_url": "https://api.anthropic.com/v1/messages", "api_key": "$ANTHROPIC_API_KEY", "models": ["claude-sonnet-4-5"]}
                ],
                "fallback": {"default": ["anthropic,claude-sonnet-4-5", "ollama,qwen3:8b"]}
            }),
        );
        assert_eq!(c.missing_key("anthropic"), Some("ANTHROPIC_API_KEY"));
        // The think rule points at the disabled provider: the default serves it, and
        // the fallback chain skips the cloud.
        let mut r = req(json!({"thinking": {"type": "enabled", "budget_tokens": 2048}}));
        let p = plan(&c, &est, &mut r).unwrap();
        assert_eq!(p.scenario, Scenario::Default);
        assert_eq!(
            p.targets,
            vec![mr("ollama,gpt-oss:20b"), mr("ollama,qwen3:8b")]
        );
        // Asked for by name: an error naming the variable and the fix.
        let mut r = req(json!({"model": "anthropic,claude-sonnet-4-5"}));
        let err = plan(&c, &est, &mut r).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, PlanError::Route(RouteError::MissingKey { .. })),
            "{text}"
        );
        assert!(text.contains("$ANTHROPIC_API_KEY"), "{text}");
        assert!(text.contains("ccr-setup init"), "{text}");
    }
}
