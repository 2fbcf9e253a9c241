//! Which provider and model serve a request, and why; and whether it fits.
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
//! [`guard`] is the context guard: it compares the estimate with the target
//! provider's `context_window` and re-routes, refuses or clamps `max_tokens`.

use serde_json::Value;

use super::anthropic::{Content, ContentBlock, KnownBlock, MessagesRequest, System, Thinking};
use super::tokens::TokenCount;
use crate::config::{Config, ModelRef, ProviderKind};

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
    let decision = |scenario, target: &ModelRef| RouteDecision {
        scenario,
        target: target.clone(),
        subagent_tag: None,
        estimated_tokens: None,
    };

    // 1. explicit `provider,model`.
    if let Some(target) = ModelRef::parse(&req.model) {
        known_provider(config, &req.model, &target)?;
        return Ok(decision(Scenario::Explicit, &target));
    }

    // 2. subagent tag in any system block.
    if let Some((target, tag)) = subagent_tag(req) {
        let requested = target.to_string();
        known_provider(config, &requested, &target)?;
        return Ok(RouteDecision {
            subagent_tag: Some(tag),
            ..decision(Scenario::Subagent, &target)
        });
    }

    let router = &config.router;
    let mut estimated_tokens = None;

    // 3. longContext.
    if let Some(target) = &router.long_context {
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
        if let Some(target) = target {
            if fires() {
                return Ok(RouteDecision {
                    estimated_tokens,
                    ..decision(scenario, target)
                });
            }
        }
    }

    Ok(RouteDecision {
        estimated_tokens,
        ..decision(Scenario::Default, &router.default)
    })
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
                content: Some(super::anthropic::ToolResultContent::Blocks(inner)),
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
    estimator: &super::tokens::TokenEstimator,
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
    let targets = super::fallback::chain(config, scenario, &target, |t| {
        !has_window(t) || overflows(config, t, &count()).is_none()
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
            super::fallback::strip_unsigned_thinking(req);
        }
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

/// Where an Anthropic-kind provider counts tokens: its `/v1/messages` URL plus
/// `/count_tokens`. None for OpenAI-kind providers and URLs of another shape.
pub fn count_tokens_url(provider: &crate::config::Provider) -> Option<String> {
    if provider.kind != ProviderKind::Anthropic {
        return None;
    }
    let url = provider.api_base_url.trim_end_matches('/');
    url.ends_with("/v1/messages")
        .then(|| format!("{url}/count_tokens"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;
    use serde_json::json;

    fn config(router: Value) -> Config {
        config_with(router, json!({}))
    }

    fn config_with(router: Value, extra: Value) -> Config {
        let mut doc = json!({
            "Providers": [
                {"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "api_key": "", "models": ["gpt-oss:20b", "qwen3:8b"], "context_window": 32768},
                {"name": "anthropic", "api_base_url": "https://api.anthropic.com/v1/messages", "api_key": "sk-test", "models": ["claude-sonnet-4-5", "claude-haiku-4-5"]}
            ],
            "Router": router,
        });
        for (k, v) in extra.as_object().unwrap() {
            doc[k] = v.clone();
        }
        ConfigFile::new(std::path::Path::new("/t/config.json"), doc)
            .resolve_with(&|_| None)
            .unwrap()
    }

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

    fn req(body: Value) -> MessagesRequest {
        let mut body = body;
        if body.get("messages").is_none() {
            body["messages"] = json!([{"role": "user", "content": "hi"}]);
        }
        if body.get("model").is_none() {
            body["model"] = json!("claude-opus-4-8");
        }
        serde_json::from_value(body).unwrap()
    }

    fn route(config: &Config, body: Value, tokens: u64) -> RouteDecision {
        decide(config, &req(body), || tokens).unwrap()
    }

    fn mr(s: &str) -> ModelRef {
        ModelRef::parse(s).unwrap()
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

    fn count(total: u64, thinking: u64) -> TokenCount {
        TokenCount {
            messages: total,
            thinking,
            ..TokenCount::default()
        }
    }

    #[test]
    fn guard_refuses_with_the_exact_message() {
        let c = config(json!({"default": "ollama,gpt-oss:20b"}));
        let out = guard(
            &c,
            &mr("ollama,gpt-oss:20b"),
            &count(40_000, 0),
            Some(64_000),
        );
        assert_eq!(
            out,
            GuardOutcome::Refuse {
                message: "prompt is 40000 tokens, the local context is 32768; run /compact or raise the context with `ccr-setup init --context-length`".into()
            }
        );
        // The reserve counts: 31000 + 2048 > 32768.
        assert!(matches!(
            guard(&c, &mr("ollama,gpt-oss:20b"), &count(31_000, 0), None),
            GuardOutcome::Refuse { .. }
        ));
    }

    #[test]
    fn guard_reroutes_to_long_context_when_set() {
        let c = config(
            json!({"default": "ollama,gpt-oss:20b", "longContext": "anthropic,claude-sonnet-4-5"}),
        );
        let out = guard(
            &c,
            &mr("ollama,gpt-oss:20b"),
            &count(40_000, 0),
            Some(64_000),
        );
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
        let out = guard(
            &c,
            &mr("ollama,gpt-oss:20b"),
            &count(40_000, 20_000),
            Some(64_000),
        );
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
        let out = guard(&c, &mr("ollama,gpt-oss:20b"), &count(1_000, 0), Some(500));
        assert!(matches!(
            out,
            GuardOutcome::Send {
                max_tokens: Some(500),
                ..
            }
        ));
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
        let est = super::super::tokens::TokenEstimator::default();
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
        let est = super::super::tokens::TokenEstimator::default();
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
        let est = super::super::tokens::TokenEstimator::default();
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
        let est = super::super::tokens::TokenEstimator::default();
        let c = config(json!({"default": "anthropic,claude-sonnet-4-5"}));
        let mut r = req(json!({"messages": [{"role": "user", "content": "word ".repeat(10)}]}));
        let p = plan(&c, &est, &mut r).unwrap();
        assert_eq!(p.count, None);
        assert_eq!(est.stats().misses, 0);
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
