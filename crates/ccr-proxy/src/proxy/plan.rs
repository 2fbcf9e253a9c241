//! Everything decided about a request before the first attempt: the rule that fires
//! ([`route`](super::route)), the context guard ([`guard`](super::guard)) and the
//! targets in order ([`fallback::chain`]); then, per target, the request rewritten for
//! it ([`Plan::prepare`]).

use super::context_edit::{Budget, EditOutcome, EditReport};
use super::fallback;
use super::guard::{clamp_max_tokens, guard, input_tokens_for, overflows, Editing, GuardOutcome};
use super::route::{decide, decide_below_long_context, RouteDecision, RouteError, Scenario};
use super::tokens::TokenCount;
use super::translate::unsigned_thinking::strip_unsigned_thinking;
use super::wire::anthropic::MessagesRequest;
use crate::config::{Config, ContextEditing, ModelRef, ProviderKind};

/// Everything decided before the first attempt: the rule, the targets in order, and
/// the estimate when anything needed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The rule that fired (`longContext` when the context guard re-routed).
    pub scenario: Scenario,
    /// The routed target first, then the fallbacks whose window the prompt fits.
    pub targets: Vec<ModelRef>,
    /// The estimate (of the request as edited, when it was), when a rule, the guard
    /// or the fallback filter needed it.
    pub count: Option<TokenCount>,
    /// The client's `max_tokens`, before any clamp.
    pub requested_max_tokens: Option<u32>,
    /// The context guard moved the request to `Router.longContext`.
    pub rerouted_to_long_context: bool,
    /// What context editing did to the request, when it did anything.
    pub edit: Option<EditReport>,
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

/// Route, guard (editing the request to fit a local window) and build the fallback
/// chain for `req`; strips the subagent tag. Tokens are estimated only if a rule, a
/// context window or a fallback needs them.
pub fn plan(
    config: &Config,
    editing: &Editing<'_>,
    req: &mut MessagesRequest,
) -> Result<Plan, PlanError> {
    let estimator = editing.estimator;
    let mut count = None::<TokenCount>;
    let mut decision = {
        let req: &MessagesRequest = req;
        let count = &mut count;
        decide(config, req, || {
            count.get_or_insert_with(|| estimator.count(req)).total()
        })?
    };
    // The longContext threshold fired on the unedited prompt; a local target that
    // edits first takes it when editing can make it fit (the cloud is the backup).
    if decision.scenario == Scenario::LongContext {
        let below = decide_below_long_context(config, req)?;
        if edits_first(config, &below.target) {
            decision = RouteDecision {
                estimated_tokens: decision.estimated_tokens,
                ..below
            };
        }
    }
    let mut scenario = decision.scenario;
    let mut target = decision.target.clone();
    let mut rerouted = false;
    let mut edit = None;
    let has_window = |t: &ModelRef| {
        config
            .provider(&t.provider)
            .is_some_and(|p| p.context_window.is_some())
    };
    if has_window(&target) {
        let counted = *count.get_or_insert_with(|| estimator.count(req));
        match guard(config, &target, &counted, req, editing) {
            GuardOutcome::Refuse { message } => return Err(PlanError::TooLong(message)),
            GuardOutcome::Send {
                target: t,
                rerouted_to_long_context,
                edit: edit_plan,
            } => {
                if rerouted_to_long_context {
                    scenario = Scenario::LongContext;
                    rerouted = true;
                }
                target = t;
                if let Some(edit_plan) = edit_plan {
                    let mut report = edit_plan.apply(req, editing.memory);
                    // Everything downstream (max_tokens, message_start, the ledger)
                    // sees the edited prompt: counted again, almost all from cache.
                    let recounted = estimator.count(req);
                    report.input_after = input_tokens_for(config, &target, &recounted);
                    count = Some(recounted);
                    edit = Some(report);
                }
            }
        }
    }
    // Fallbacks skip providers disabled for a missing key, and windows the prompt
    // does not fit.
    if count.is_none() && config.fallback_for(scenario.name()).iter().any(has_window) {
        count = Some(estimator.count(req));
    }
    let targets = fallback::chain(config, scenario.name(), &target, |t| {
        config.missing_key(&t.provider).is_none()
            && (!has_window(t) || count.is_some_and(|c| overflows(config, t, &c).is_none()))
    });
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
        edit,
    })
}

impl Plan {
    /// Edit `req` again as this plan's edit did: the stream's rescue parses the client's
    /// body anew, and a later target with a window must get the same fitted request.
    /// The conversation's remembered clear point makes the edit the same bytes.
    pub fn reapply_edit(&self, config: &Config, editing: &Editing<'_>, req: &mut MessagesRequest) {
        if self.edit.is_none() {
            return;
        }
        let Some(target) = self.targets.first() else {
            return;
        };
        let Some(budget) = config.provider(&target.provider).and_then(Budget::of) else {
            return;
        };
        let input = input_tokens_for(config, target, &editing.estimator.count(req));
        if let EditOutcome::Fits(edit) = editing.decide(req, &budget, input) {
            edit.apply(req, editing.memory);
        }
    }
}

/// Does `target` edit a prompt to fit its window before the cloud takes it?
fn edits_first(config: &Config, target: &ModelRef) -> bool {
    config
        .provider(&target.provider)
        .is_some_and(|p| p.context_window.is_some() && p.context_editing == ContextEditing::Auto)
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
    use crate::proxy::context_edit::{too_long_message, ClearMemory};
    use crate::proxy::test_support::{config, config_with, mr, req};
    use crate::proxy::tokens::TokenEstimator;
    use crate::proxy::wire::anthropic::{Content, System};
    use serde_json::json;

    /// [`plan`] with a fresh clear memory and no session.
    fn run(c: &Config, est: &TokenEstimator, r: &mut MessagesRequest) -> Result<Plan, PlanError> {
        let memory = ClearMemory::default();
        let editing = Editing {
            estimator: est,
            memory: &memory,
            session: None,
        };
        plan(c, &editing, r)
    }

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
        let err = run(&plan_config(false), &est, &mut r).unwrap_err();
        assert_eq!(
            err,
            PlanError::TooLong(too_long_message(n, 32_768 - 4_096, "ollama", 32_768))
        );
    }

    #[test]
    fn plan_reroutes_to_long_context_and_filters_fallbacks_that_do_not_fit() {
        let est = TokenEstimator::default();
        let c = plan_config(true);
        let mut r = big_request(40_000);
        let p = run(&c, &est, &mut r).unwrap();
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
        let p = run(&c, &est, &mut r).unwrap();
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
        let p = run(&c, &est, &mut r).unwrap();
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
        let p = run(&c, &est, &mut r).unwrap();
        assert_eq!(p.scenario, Scenario::Default);
        assert_eq!(
            p.targets,
            vec![mr("ollama,gpt-oss:20b"), mr("ollama,qwen3:8b")]
        );
        // Asked for by name: an error naming the variable and the fix.
        let mut r = req(json!({"model": "anthropic,claude-sonnet-4-5"}));
        let err = run(&c, &est, &mut r).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, PlanError::Route(RouteError::MissingKey { .. })),
            "{text}"
        );
        assert!(text.contains("$ANTHROPIC_API_KEY"), "{text}");
        assert!(text.contains("ccr-setup init"), "{text}");
    }

    /// A conversation of `reads` file reads of ~6k tokens each behind a ~12k prompt.
    fn long_session(reads: usize) -> MessagesRequest {
        let mut messages = vec![json!({"role": "user", "content": "context ".repeat(12_000)})];
        for i in 0..reads {
            messages.push(json!({"role": "assistant", "content": [{"type": "tool_use", "id": format!("t{i}"), "name": "Read", "input": {"file_path": format!("/f{i}")}}]}));
            messages.push(json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": format!("t{i}"), "content": "text of the file ".repeat(1_500)}]}));
        }
        req(json!({"max_tokens": 64000, "messages": messages}))
    }

    fn with_editing(mode: &str, long_context: bool) -> Config {
        let mut router = json!({"default": "ollama,gpt-oss:20b"});
        if long_context {
            router["longContext"] = json!("anthropic,claude-sonnet-4-5");
        }
        config_with(
            router,
            json!({"Providers": [
                {"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "models": ["gpt-oss:20b"], "context_window": 32768, "context_editing": mode},
                {"name": "anthropic", "api_base_url": "https://api.anthropic.com/v1/messages", "api_key": "sk-test", "models": ["claude-sonnet-4-5"]}
            ]}),
        )
    }

    #[test]
    fn a_long_local_session_is_edited_locally_before_the_cloud_backup_takes_it() {
        let est = TokenEstimator::default();
        let c = with_editing("auto", true);
        // Over the 60k longContext threshold unedited: still served locally, edited.
        let mut r = long_session(10);
        let unedited = est.count(&r).total();
        assert!(unedited > 60_000, "{unedited}");
        let p = run(&c, &est, &mut r).unwrap();
        assert_eq!(p.targets[0], mr("ollama,gpt-oss:20b"), "{p:?}");
        assert_eq!(p.scenario, Scenario::Default);
        let edit = p.edit.expect("edited");
        assert!(edit.cleared_blocks >= 8, "{edit:?}");
        // The count downstream is the edited one, and max_tokens is clamped from it.
        let counted = p.count.unwrap().total_without_thinking();
        assert_eq!(counted, edit.input_after);
        assert!(counted <= 32_768 * 70 / 100, "{counted}");
        assert_eq!(
            counted,
            est.count(&r).total_without_thinking(),
            "the request is edited"
        );
        p.prepare(&c, &p.targets[0], &mut r);
        assert_eq!(r.max_tokens, Some(32_768 - counted as u32));
    }

    #[test]
    fn cloud_first_and_off_keep_their_order() {
        let est = TokenEstimator::default();
        let mut r = long_session(4);
        let p = run(&with_editing("cloud_first", true), &est, &mut r).unwrap();
        assert_eq!(p.targets[0], mr("anthropic,claude-sonnet-4-5"));
        assert!(p.rerouted_to_long_context && p.edit.is_none());
        // cloud_first without a cloud route still edits.
        let mut r = long_session(4);
        let p = run(&with_editing("cloud_first", false), &est, &mut r).unwrap();
        assert!(p.edit.is_some_and(|e| e.cleared_blocks > 0), "{p:?}");
        // off: Anthropic's refusal, so Claude Code compacts.
        let mut r = long_session(4);
        let err = run(&with_editing("off", false), &est, &mut r).unwrap_err();
        assert!(err.to_string().starts_with("prompt is too long: "), "{err}");
    }
}
