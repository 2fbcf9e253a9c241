//! Which provider and model serve a request, and why: the rule that fires.
//!
//! [`decide`] applies claude-code-router's rules, in this order (the first that fires
//! wins):
//!
//! 1. **explicit**: the request's `model` is `provider,model` (Claude Code's
//!    `/model provider,model`).
//! 2. **subagent**: a system block, at any index, starts with
//!    `<CCR-SUBAGENT-MODEL>provider,model</CCR-SUBAGENT-MODEL>`; the tag is stripped
//!    before the request is sent ([`RouteDecision::apply`]).
//! 3. **longContext**: the estimated input tokens exceed `Router.longContextThreshold`.
//! 4. **background**: the model name contains `haiku`.
//! 5. **webSearch**: a tool's `type` starts with `web_search`.
//! 6. **think**: `thinking` is `{"type": "enabled"}` with a non-zero budget, or
//!    `{"type": "adaptive"}` with `output_config.effort` of `xhigh` or `max`.
//!    Claude Code 2.1.197 sends adaptive + `effort: "high"` on *every* main turn by
//!    default, so counting `high` would send every ordinary turn to the cloud and
//!    defeat "simple tasks go local". The think route therefore fires when the user
//!    asks for more than the default (`--effort xhigh|max`, `/effort max`) or when a
//!    client sends an explicit thinking budget.
//! 7. **image**: the last user message holds an image (directly or inside a
//!    tool_result).
//! 8. **default**.
//!
//! Rules 3–7 fire only when their `Router` entry is set; an unset scenario does not
//! fire and the next rule is checked, ending at default. Rules 1 and 2 name a provider
//! directly: an unknown provider is an error (a typo must not silently run on
//! another model).
//!
//! The context guard, the fallback chain and the plan that puts them together live in
//! the sibling modules `guard`, `fallback` and `plan`, which build on this one.

use serde_json::Value;

use super::wire::anthropic::{
    Content, ContentBlock, KnownBlock, MessagesRequest, System, Thinking,
};
use crate::config::{Config, ModelRef};

/// The routing rule that fired. Its [`name`](Scenario::name) is the key of
/// `fallback{}` and of the ledger's `scenario` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    Explicit,
    Subagent,
    LongContext,
    Background,
    WebSearch,
    Think,
    Image,
    Default,
}

impl Scenario {
    /// The config spelling (`longContext`, `webSearch`, …).
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Explicit => "explicit",
            Scenario::Subagent => "subagent",
            Scenario::LongContext => "longContext",
            Scenario::Background => "background",
            Scenario::WebSearch => "webSearch",
            Scenario::Think => "think",
            Scenario::Image => "image",
            Scenario::Default => "default",
        }
    }
}

impl std::fmt::Display for Scenario {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

pub const SUBAGENT_OPEN: &str = "<CCR-SUBAGENT-MODEL>";
pub const SUBAGENT_CLOSE: &str = "</CCR-SUBAGENT-MODEL>";

/// Where a subagent tag sits, so [`RouteDecision::apply`] can strip it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubagentTag {
    /// Index of the system block (0 for a string `system`).
    pub block: usize,
    /// Bytes to remove from the start of that block's text (the tag, any whitespace
    /// before it, and the whitespace after it).
    pub strip_len: usize,
}

/// The outcome of routing one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDecision {
    pub scenario: Scenario,
    pub target: ModelRef,
    pub subagent_tag: Option<SubagentTag>,
    /// The estimate, when a rule needed it (so the caller does not count twice).
    pub estimated_tokens: Option<u64>,
}

impl RouteDecision {
    /// Rewrite the request for its target: the routed model name replaces the one the
    /// client sent, and the subagent tag is removed.
    pub fn apply(&self, req: &mut MessagesRequest) {
        req.model.clone_from(&self.target.model);
        self.strip_subagent_tag(req);
    }

    /// Remove the `<CCR-SUBAGENT-MODEL>` tag that routed this request, if any.
    pub fn strip_subagent_tag(&self, req: &mut MessagesRequest) {
        if let Some(tag) = &self.subagent_tag {
            match &mut req.system {
                Some(System::Text(text)) if tag.block == 0 => {
                    text.drain(..tag.strip_len.min(text.len()));
                }
                Some(System::Blocks(blocks)) => {
                    if let Some(b) = blocks.get_mut(tag.block) {
                        b.text.drain(..tag.strip_len.min(b.text.len()));
                    }
                }
                _ => {}
            }
        }
    }
}

/// Why a request cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("model \"{requested}\" names provider \"{provider}\", which is not configured (configured: {known}); fix the name or add it to Providers")]
    UnknownProvider {
        requested: String,
        provider: String,
        known: String,
    },
    #[error("provider \"{provider}\" is disabled: its api_key ${variable} is not set in the proxy's environment or the secrets store; run `ccr-setup init` (it asks for the key and stores it) or export {variable} where the proxy runs, then restart the proxy")]
    MissingKey { provider: String, variable: String },
}

/// A scenario, its `Router` entry, and whether it fires for this request.
type Rule<'a> = (Scenario, &'a Option<ModelRef>, &'a dyn Fn() -> bool);

/// Route a request. `estimate` is called at most once, and only when the
/// `longContext` rule needs it.
pub fn decide(
    config: &Config,
    req: &MessagesRequest,
    estimate: impl FnOnce() -> u64,
) -> Result<RouteDecision, RouteError> {
    decide_with(config, req, Some(estimate))
}

/// The decision as if the `longContext` rule did not exist: where the request goes when
/// a local target can edit it to fit instead ([`crate::proxy::plan`]).
pub fn decide_below_long_context(
    config: &Config,
    req: &MessagesRequest,
) -> Result<RouteDecision, RouteError> {
    decide_with(config, req, None::<fn() -> u64>)
}

/// [`decide`], with the `longContext` rule only when there is an `estimate`.
fn decide_with(
    config: &Config,
    req: &MessagesRequest,
    estimate: Option<impl FnOnce() -> u64>,
) -> Result<RouteDecision, RouteError> {
    let decision = |scenario, target: &ModelRef| RouteDecision {
        scenario,
        target: target.clone(),
        subagent_tag: None,
        estimated_tokens: None,
    };

    // 1. explicit `provider,model`.
    if let Some(target) = ModelRef::parse(&req.model) {
        known_provider(config, &req.model, &target)?;
        has_key(config, &target)?;
        return Ok(decision(Scenario::Explicit, &target));
    }

    // 2. subagent tag in any system block.
    if let Some((target, tag)) = subagent_tag(req) {
        let requested = target.to_string();
        known_provider(config, &requested, &target)?;
        has_key(config, &target)?;
        return Ok(RouteDecision {
            subagent_tag: Some(tag),
            ..decision(Scenario::Subagent, &target)
        });
    }

    let router = &config.router;
    let mut estimated_tokens = None;

    // Rules whose provider is disabled (its key set nowhere) do not fire.
    let enabled = |t: &&ModelRef| config.missing_key(&t.provider).is_none();

    // 3. longContext.
    if let (Some(target), Some(estimate)) = (router.long_context.as_ref().filter(enabled), estimate)
    {
        let tokens = estimate();
        estimated_tokens = Some(tokens);
        if tokens > router.long_context_threshold {
            return Ok(RouteDecision {
                estimated_tokens,
                ..decision(Scenario::LongContext, target)
            });
        }
    }

    let rules: [Rule<'_>; 4] = [
        (Scenario::Background, &router.background, &|| {
            req.model.contains("haiku")
        }),
        (Scenario::WebSearch, &router.web_search, &|| {
            has_web_search_tool(req)
        }),
        (Scenario::Think, &router.think, &|| wants_thinking(req)),
        (Scenario::Image, &router.image, &|| {
            last_user_message_has_image(req)
        }),
    ];
    for (scenario, target, fires) in rules {
        if let Some(target) = target.as_ref().filter(enabled) {
            if fires() {
                return Ok(RouteDecision {
                    estimated_tokens,
                    ..decision(scenario, target)
                });
            }
        }
    }

    has_key(config, &router.default)?;
    Ok(RouteDecision {
        estimated_tokens,
        ..decision(Scenario::Default, &router.default)
    })
}

/// A target whose provider is disabled for a missing key is an error naming the
/// variable and the fix.
fn has_key(config: &Config, target: &ModelRef) -> Result<(), RouteError> {
    match config.missing_key(&target.provider) {
        None => Ok(()),
        Some(variable) => Err(RouteError::MissingKey {
            provider: target.provider.clone(),
            variable: variable.to_owned(),
        }),
    }
}

fn known_provider(config: &Config, requested: &str, target: &ModelRef) -> Result<(), RouteError> {
    if config.provider(&target.provider).is_some() {
        return Ok(());
    }
    Err(RouteError::UnknownProvider {
        requested: requested.to_owned(),
        provider: target.provider.clone(),
        known: config
            .providers
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The first system block starting with a subagent tag, and the model it names.
pub fn subagent_tag(req: &MessagesRequest) -> Option<(ModelRef, SubagentTag)> {
    let texts: Vec<&str> = match req.system.as_ref()? {
        System::Text(t) => vec![t.as_str()],
        System::Blocks(blocks) => blocks.iter().map(|b| b.text.as_str()).collect(),
    };
    texts.iter().enumerate().find_map(|(block, text)| {
        let trimmed = text.trim_start();
        let rest = trimmed.strip_prefix(SUBAGENT_OPEN)?;
        let end = rest.find(SUBAGENT_CLOSE)?;
        let target = ModelRef::parse(&rest[..end])?;
        let after = &rest[end + SUBAGENT_CLOSE.len()..];
        let strip_len = text.len() - after.trim_start().len();
        Some((target, SubagentTag { block, strip_len }))
    })
}

/// Rule 5: a server tool such as `web_search_20250305`.
pub fn has_web_search_tool(req: &MessagesRequest) -> bool {
    req.tools.iter().flatten().any(|t| {
        t.kind
            .as_deref()
            .is_some_and(|k| k.starts_with("web_search"))
    })
}

/// Efforts that count as "think" for an adaptive request: only those above Claude
/// Code's default (`high`), so the default turn stays on the default route.
pub const THINK_EFFORTS: &[&str] = &["xhigh", "max"];

/// Rule 6: explicit thinking with a budget, or adaptive thinking above the default effort.
pub fn wants_thinking(req: &MessagesRequest) -> bool {
    match &req.thinking {
        Some(Thinking::Enabled { budget_tokens }) => *budget_tokens > 0,
        Some(Thinking::Adaptive { .. }) => req
            .extra
            .get("output_config")
            .and_then(|c| c.get("effort"))
            .and_then(Value::as_str)
            .is_some_and(|e| THINK_EFFORTS.contains(&e)),
        Some(Thinking::Disabled) | None => false,
    }
}

/// Rule 7: the last `user` message holds an image, at top level or in a tool_result.
pub fn last_user_message_has_image(req: &MessagesRequest) -> bool {
    fn has_image(blocks: &[ContentBlock]) -> bool {
        blocks.iter().any(|b| match b {
            ContentBlock::Known(KnownBlock::Image { .. }) => true,
            ContentBlock::Known(KnownBlock::ToolResult {
                content: Some(super::wire::anthropic::ToolResultContent::Blocks(inner)),
                ..
            }) => has_image(inner),
            _ => false,
        })
    }
    match req.messages.iter().rev().find(|m| m.role == "user") {
        Some(m) => matches!(&m.content, Content::Blocks(b) if has_image(b)),
        None => false,
    }
}

/// `GET /v1/models`: every configured `provider,model` pair, in Anthropic's list shape,
/// so Claude Code's model picker (and `/model`) can offer them. The id is exactly what
/// rule 1 routes on.
pub fn models_list(config: &Config) -> Value {
    let data: Vec<Value> = config
        .providers
        .iter()
        .flat_map(|p| {
            p.models.iter().map(move |m| {
                serde_json::json!({
                    "type": "model",
                    "id": format!("{},{m}", p.name),
                    "display_name": format!("{m} ({})", p.name),
                    "created_at": "1970-01-01T00:00:00Z",
                })
            })
        })
        .collect();
    let first = data.first().map(|m| m["id"].clone()).unwrap_or(Value::Null);
    let last = data.last().map(|m| m["id"].clone()).unwrap_or(Value::Null);
    serde_json::json!({"data": data, "has_more": false, "first_id": first, "last_id": last})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proxy::test_support::{config, mr, req};
    use serde_json::json;

    fn every_scenario() -> Config {
        config(json!({
            "default": "ollama,gpt-oss:20b",
            "background": "ollama,qwen3:8b",
            "think": "anthropic,claude-sonnet-4-5",
            "longContext": "anthropic,claude-sonnet-4-5",
            "longContextThreshold": 1000,
            "webSearch": "anthropic,claude-haiku-4-5",
            "image": "anthropic,claude-haiku-4-5",
        }))
    }

    fn route(config: &Config, body: Value, tokens: u64) -> RouteDecision {
        decide(config, &req(body), || tokens).unwrap()
    }

    #[test]
    fn explicit_provider_model_wins_over_everything() {
        let c = every_scenario();
        let d = route(
            &c,
            json!({"model": "ollama,qwen3:8b", "thinking": {"type": "enabled", "budget_tokens": 1000}}),
            1_000_000,
        );
        assert_eq!(
            (d.scenario, d.target),
            (Scenario::Explicit, mr("ollama,qwen3:8b"))
        );
    }

    #[test]
    fn explicit_unknown_provider_is_an_error_naming_it() {
        let c = every_scenario();
        let err = decide(&c, &req(json!({"model": "olama,gpt-oss:20b"})), || 0).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("\"olama\"") && msg.contains("ollama, anthropic"),
            "{msg}"
        );
    }

    #[test]
    fn subagent_tag_at_system_index_2_routes_and_is_stripped() {
        let c = every_scenario();
        let mut r = req(json!({
            "system": [
                {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197"},
                {"type": "text", "text": "You are Claude Code"},
                {"type": "text", "text": "<CCR-SUBAGENT-MODEL>anthropic,claude-haiku-4-5</CCR-SUBAGENT-MODEL>\nYou review code.", "cache_control": {"type": "ephemeral"}}
            ],
            "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}
        }));
        let d = decide(&c, &r, || 5_000_000).unwrap();
        assert_eq!(d.scenario, Scenario::Subagent);
        assert_eq!(d.target, mr("anthropic,claude-haiku-4-5"));
        assert_eq!(d.subagent_tag.as_ref().unwrap().block, 2);
        d.apply(&mut r);
        assert_eq!(r.model, "claude-haiku-4-5");
        let Some(System::Blocks(b)) = &r.system else {
            panic!()
        };
        assert_eq!(b[2].text, "You review code.");
        assert_eq!(b[1].text, "You are Claude Code");
        assert!(b[2].extra.contains_key("cache_control"));
    }

    #[test]
    fn subagent_tag_must_start_the_block() {
        let c = every_scenario();
        let d = route(
            &c,
            json!({"system": [{"type": "text", "text": "See <CCR-SUBAGENT-MODEL>anthropic,claude-haiku-4-5</CCR-SUBAGENT-MODEL>"}]}),
            10,
        );
        assert_eq!(d.scenario, Scenario::Default);
        // A string system works too.
        let mut r = req(
            json!({"system": "  <CCR-SUBAGENT-MODEL>ollama,qwen3:8b</CCR-SUBAGENT-MODEL> rest"}),
        );
        let d = decide(&c, &r, || 10).unwrap();
        assert_eq!(d.target, mr("ollama,qwen3:8b"));
        d.apply(&mut r);
        assert!(matches!(&r.system, Some(System::Text(t)) if t == "rest"));
    }

    #[test]
    fn long_context_above_threshold() {
        let c = every_scenario();
        let d = route(&c, json!({"model": "claude-haiku-4-5"}), 1001);
        assert_eq!(d.scenario, Scenario::LongContext);
        assert_eq!(d.estimated_tokens, Some(1001));
        // At the threshold it does not fire (strictly greater), and haiku wins.
        let d = route(&c, json!({"model": "claude-haiku-4-5"}), 1000);
        assert_eq!(d.scenario, Scenario::Background);
    }

    #[test]
    fn background_for_haiku() {
        let c = every_scenario();
        let d = route(
            &c,
            json!({"model": "claude-haiku-4-5-20251001", "thinking": {"type": "enabled", "budget_tokens": 31999}}),
            10,
        );
        assert_eq!(
            (d.scenario, d.target),
            (Scenario::Background, mr("ollama,qwen3:8b"))
        );
    }

    #[test]
    fn web_search_for_a_web_search_tool() {
        let c = every_scenario();
        let d = route(
            &c,
            json!({"tools": [{"name": "Bash", "input_schema": {}}, {"type": "web_search_20250305", "name": "web_search"}], "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}}),
            10,
        );
        assert_eq!(d.scenario, Scenario::WebSearch);
        // A tool merely *named* web_search is not a server tool.
        let d = route(
            &c,
            json!({"tools": [{"name": "web_search", "input_schema": {}}]}),
            10,
        );
        assert_eq!(d.scenario, Scenario::Default);
    }

    #[test]
    fn think_counts_enabled_and_adaptive_at_high_effort_only() {
        let c = every_scenario();
        let think = |body| route(&c, body, 10).scenario == Scenario::Think;
        assert!(think(
            json!({"thinking": {"type": "enabled", "budget_tokens": 2048}})
        ));
        assert!(!think(
            json!({"thinking": {"type": "enabled", "budget_tokens": 0}})
        ));
        for effort in ["xhigh", "max"] {
            assert!(think(
                json!({"thinking": {"type": "adaptive"}, "output_config": {"effort": effort}})
            ));
        }
        // `high` is Claude Code's default effort on every main turn: not a think request.
        for effort in ["low", "medium", "high"] {
            assert!(!think(
                json!({"thinking": {"type": "adaptive"}, "output_config": {"effort": effort}})
            ));
        }
        assert!(!think(json!({"thinking": {"type": "adaptive"}})));
        assert!(!think(
            json!({"thinking": {"type": "disabled"}, "output_config": {"effort": "max"}})
        ));
        assert!(!think(json!({})));
    }

    #[test]
    fn image_in_the_last_user_message() {
        let c = every_scenario();
        let img = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}});
        let d = route(
            &c,
            json!({"messages": [{"role": "user", "content": [img.clone(), {"type": "text", "text": "what is it"}]}]}),
            10,
        );
        assert_eq!(d.scenario, Scenario::Image);
        let d = route(
            &c,
            json!({"messages": [
                {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Read", "input": {}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [img.clone()]}]}
            ]}),
            10,
        );
        assert_eq!(d.scenario, Scenario::Image);
        // An image earlier in the conversation does not count.
        let d = route(
            &c,
            json!({"messages": [
                {"role": "user", "content": [img]},
                {"role": "assistant", "content": "a cat"},
                {"role": "user", "content": "thanks"}
            ]}),
            10,
        );
        assert_eq!(d.scenario, Scenario::Default);
    }

    #[test]
    fn default_otherwise_and_unset_scenarios_fall_through() {
        let c = every_scenario();
        let d = route(&c, json!({}), 10);
        assert_eq!(
            (d.scenario, d.target),
            (Scenario::Default, mr("ollama,gpt-oss:20b"))
        );

        let only_default = config(json!({"default": "ollama,gpt-oss:20b"}));
        let mut estimated = false;
        let d = decide(
            &only_default,
            &req(json!({"model": "claude-haiku-4-5", "thinking": {"type": "enabled", "budget_tokens": 9}, "tools": [{"type": "web_search_20250305", "name": "web_search"}]})),
            || {
                estimated = true;
                1_000_000
            },
        )
        .unwrap();
        assert_eq!(d.scenario, Scenario::Default);
        assert!(!estimated, "no longContext route, so no token estimate");
        assert_eq!(d.estimated_tokens, None);
    }

    #[test]
    fn an_unset_rule_lets_the_next_one_fire() {
        let c = config(
            json!({"default": "ollama,gpt-oss:20b", "think": "anthropic,claude-sonnet-4-5"}),
        );
        let d = route(
            &c,
            json!({"model": "claude-haiku-4-5", "thinking": {"type": "enabled", "budget_tokens": 9}}),
            10,
        );
        assert_eq!(d.scenario, Scenario::Think);
    }

    #[test]
    fn apply_replaces_the_client_model_name() {
        let c = every_scenario();
        let mut r = req(json!({}));
        route(&c, json!({}), 1).apply(&mut r);
        assert_eq!(r.model, "gpt-oss:20b");
    }

    #[test]
    fn models_list_has_every_configured_pair() {
        let v = models_list(&every_scenario());
        let ids: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            [
                "ollama,gpt-oss:20b",
                "ollama,qwen3:8b",
                "anthropic,claude-sonnet-4-5",
                "anthropic,claude-haiku-4-5"
            ]
        );
        assert_eq!(v["first_id"], "ollama,gpt-oss:20b");
        assert_eq!(v["has_more"], false);
        // Every id routes by rule 1.
        for id in ids {
            assert_eq!(
                route(&every_scenario(), json!({"model": id}), 0).scenario,
                Scenario::Explicit
            );
        }
    }
}
