//! Which failures move a request to the next model, and the loop that does it.
//!
//! The chain for a request is its routed target followed by `fallback.<scenario>`
//! (or `fallback.default`), see [`chain`]. [`run_chain`] tries them in order and moves
//! on only when an attempt failed in a way another provider can fix
//! ([`AttemptFailure::retryable`]):
//!
//! * the connection was refused, could not be made, or timed out;
//! * the upstream answered 5xx, 408 or 429;
//! * Ollama's tool-call parse failure (`error parsing tool call`, HTTP 500 today, but
//!   matched on the body whatever the status);
//! * the upstream stream broke before the first byte reached the client.
//!
//! Once bytes have reached the client the answer is committed: a failure then is
//! [`AttemptFailure::AfterFirstByte`], never retried, and the server reports it as an
//! SSE `event: error`.
//!
//! [`strip_unsigned_thinking`] prepares history for an Anthropic-kind target: thinking
//! blocks produced by local models carry no signature and the cloud rejects them.

use std::future::Future;

use serde_json::Value;

use super::anthropic::{Content, ContentBlock, KnownBlock, MessagesRequest, Thinking};
use super::route::Scenario;
use crate::config::{Config, ModelRef};

/// Ollama's body when gpt-oss emits a tool call it cannot parse.
pub const OLLAMA_TOOL_CALL_PARSE: &str = "error parsing tool call";

/// How one attempt at one target failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttemptFailure {
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("timed out: {0}")]
    Timeout(String),
    /// The upstream answered with an error status; `body` is its (truncated) text.
    #[error("HTTP {status}: {body}")]
    Status { status: u16, body: String },
    /// The stream broke or ended before anything was sent to the client.
    #[error("upstream failed before the first byte: {0}")]
    BeforeFirstByte(String),
    /// The stream broke after the client got bytes: the answer cannot be switched.
    #[error("upstream failed mid-answer: {0}")]
    AfterFirstByte(String),
}

impl AttemptFailure {
    /// Would another provider plausibly succeed where this one failed?
    pub fn retryable(&self) -> bool {
        match self {
            AttemptFailure::Connect(_)
            | AttemptFailure::Timeout(_)
            | AttemptFailure::BeforeFirstByte(_) => true,
            AttemptFailure::Status { status, body } => {
                *status >= 500
                    || *status == 408
                    || *status == 429
                    || body.contains(OLLAMA_TOOL_CALL_PARSE)
            }
            AttemptFailure::AfterFirstByte(_) => false,
        }
    }

    /// The short error kind the ledger records (`RequestOutcome::UpstreamError`).
    pub fn ledger_kind(&self) -> String {
        match self {
            AttemptFailure::Connect(_) => "connect".into(),
            AttemptFailure::Timeout(_) => "timeout".into(),
            AttemptFailure::Status { body, .. } if body.contains(OLLAMA_TOOL_CALL_PARSE) => {
                "tool_call_parse".into()
            }
            AttemptFailure::Status { status, .. } => format!("http_{status}"),
            AttemptFailure::BeforeFirstByte(_) => "stream_failed_before_first_byte".into(),
            AttemptFailure::AfterFirstByte(_) => "stream_truncated".into(),
        }
    }
}

/// The targets to try, in order: `first`, then the scenario's fallback chain, without
/// repeats and without targets `usable` rejects (for example ones whose context window
/// the prompt does not fit).
pub fn chain(
    config: &Config,
    scenario: Scenario,
    first: &ModelRef,
    usable: impl Fn(&ModelRef) -> bool,
) -> Vec<ModelRef> {
    let mut targets = vec![first.clone()];
    for next in config.fallback_for(scenario.name()) {
        if !targets.contains(next) && usable(next) {
            targets.push(next.clone());
        }
    }
    targets
}

/// What [`run_chain`] ended with.
#[derive(Debug)]
pub struct ChainOutcome<T> {
    /// The answer, or the last failure.
    pub result: Result<T, AttemptFailure>,
    /// The target that answered (or failed last).
    pub target: ModelRef,
    /// Every failed attempt before the last one, in order.
    pub failures: Vec<(ModelRef, AttemptFailure)>,
}

impl<T> ChainOutcome<T> {
    /// The first target that failed, when a later one was tried.
    pub fn fallback_from(&self) -> Option<&ModelRef> {
        self.failures.first().map(|(t, _)| t)
    }
}

/// Try `targets` in order with `attempt` until one succeeds or fails in a way that is
/// not [`retryable`](AttemptFailure::retryable). `on_failure` is told about every
/// failure that moves the request on (for the log).
pub async fn run_chain<T, F, Fut>(
    targets: &[ModelRef],
    mut attempt: F,
    mut on_failure: impl FnMut(&ModelRef, &AttemptFailure, &ModelRef),
) -> ChainOutcome<T>
where
    F: FnMut(&ModelRef) -> Fut,
    Fut: Future<Output = Result<T, AttemptFailure>>,
{
    assert!(
        !targets.is_empty(),
        "a chain always holds the routed target"
    );
    let mut failures = Vec::new();
    for (i, target) in targets.iter().enumerate() {
        match attempt(target).await {
            Ok(answer) => {
                return ChainOutcome {
                    result: Ok(answer),
                    target: target.clone(),
                    failures,
                }
            }
            Err(failure) => match targets.get(i + 1) {
                Some(next) if failure.retryable() => {
                    on_failure(target, &failure, next);
                    failures.push((target.clone(), failure));
                }
                _ => {
                    return ChainOutcome {
                        result: Err(failure),
                        target: target.clone(),
                        failures,
                    }
                }
            },
        }
    }
    unreachable!("the last target always returns")
}

/// The `x-ccr-route` response header: who answered, for which rule, and whether a
/// fallback happened, e.g. `anthropic,claude-sonnet-4-5; scenario=default;
/// fallback=yes; from=ollama,gpt-oss:20b`.
pub const ROUTE_HEADER: &str = "x-ccr-route";

pub fn route_header(
    answered: &ModelRef,
    scenario: &str,
    fallback_from: Option<&ModelRef>,
) -> String {
    match fallback_from {
        Some(from) => format!("{answered}; scenario={scenario}; fallback=yes; from={from}"),
        None => format!("{answered}; scenario={scenario}; fallback=no"),
    }
}

/// What [`strip_unsigned_thinking`] changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThinkingCleanup {
    /// Thinking blocks removed.
    pub removed: usize,
    /// Assistant messages removed because nothing was left in them.
    pub emptied_messages: usize,
    /// `thinking` was turned off for this request (see below).
    pub disabled_thinking: bool,
}

/// A signature Anthropic could have issued: real ones are long base64 strings. Local
/// models' thinking arrives with an empty one.
pub fn plausible_signature(signature: &str) -> bool {
    signature.len() >= 32
        && signature
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'=' | b'-' | b'_'))
}

/// Remove thinking blocks without a plausible signature from history before sending to
/// an Anthropic-kind provider, which rejects them. `redacted_thinking` always comes
/// from Anthropic and stays.
///
/// Anthropic requires that, with thinking on, the assistant message a tool_result
/// answers starts with its thinking block. If we had to strip that block (the tool
/// loop in progress was run by a local model), this request turns thinking off, and
/// drops `clear_thinking` context edits, which require it.
pub fn strip_unsigned_thinking(req: &mut MessagesRequest) -> ThinkingCleanup {
    let mut cleanup = ThinkingCleanup::default();
    let last_assistant = req.messages.iter().rposition(|m| m.role == "assistant");
    let mut stripped_last_assistant = false;
    for (i, message) in req.messages.iter_mut().enumerate() {
        if message.role != "assistant" {
            continue;
        }
        if let Content::Blocks(blocks) = &mut message.content {
            let before = blocks.len();
            blocks.retain(|b| {
                !matches!(b, ContentBlock::Known(KnownBlock::Thinking { signature, .. })
                    if !plausible_signature(signature))
            });
            let removed = before - blocks.len();
            cleanup.removed += removed;
            if removed > 0 && Some(i) == last_assistant {
                stripped_last_assistant = true;
            }
        }
    }
    let before = req.messages.len();
    req.messages.retain(|m| {
        !(m.role == "assistant" && matches!(&m.content, Content::Blocks(b) if b.is_empty()))
    });
    cleanup.emptied_messages = before - req.messages.len();

    let in_tool_loop = req
        .messages
        .last()
        .is_some_and(|m| m.role == "user" && matches!(&m.content, Content::Blocks(b) if b.iter().any(|b| matches!(b, ContentBlock::Known(KnownBlock::ToolResult { .. })))));
    let thinking_on = matches!(
        req.thinking,
        Some(Thinking::Enabled { .. } | Thinking::Adaptive { .. })
    );
    if stripped_last_assistant && in_tool_loop && thinking_on {
        req.thinking = None;
        drop_clear_thinking_edits(req);
        cleanup.disabled_thinking = true;
    }
    cleanup
}

fn drop_clear_thinking_edits(req: &mut MessagesRequest) {
    let Some(Value::Object(cm)) = req.extra.get_mut("context_management") else {
        return;
    };
    if let Some(Value::Array(edits)) = cm.get_mut("edits") {
        edits.retain(|e| {
            !e.get("type")
                .and_then(Value::as_str)
                .is_some_and(|t| t.starts_with("clear_thinking"))
        });
        if edits.is_empty() {
            req.extra.remove("context_management");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;
    use serde_json::json;
    use std::cell::RefCell;

    fn mr(s: &str) -> ModelRef {
        ModelRef::parse(s).unwrap()
    }

    fn status(status: u16, body: &str) -> AttemptFailure {
        AttemptFailure::Status {
            status,
            body: body.into(),
        }
    }

    #[test]
    fn classifies_what_is_worth_another_provider() {
        assert!(AttemptFailure::Connect("connection refused".into()).retryable());
        assert!(AttemptFailure::Timeout("connect".into()).retryable());
        assert!(AttemptFailure::BeforeFirstByte("eof".into()).retryable());
        assert!(status(500, "boom").retryable());
        assert!(status(503, "").retryable());
        assert!(status(429, "slow down").retryable());
        assert!(status(500, r#"{"error":"error parsing tool call: raw='{\"x\"'"}"#).retryable());
        assert!(status(400, "error parsing tool call: raw=''").retryable());
        assert!(!status(400, "messages: field required").retryable());
        assert!(!status(401, "bad key").retryable());
        assert!(!AttemptFailure::AfterFirstByte("reset".into()).retryable());
    }

    #[test]
    fn ledger_kinds() {
        assert_eq!(
            status(500, "error parsing tool call: raw='x'").ledger_kind(),
            "tool_call_parse"
        );
        assert_eq!(status(502, "").ledger_kind(), "http_502");
        assert_eq!(
            AttemptFailure::Connect(String::new()).ledger_kind(),
            "connect"
        );
        assert_eq!(
            AttemptFailure::AfterFirstByte(String::new()).ledger_kind(),
            "stream_truncated"
        );
    }

    fn config() -> Config {
        let doc = json!({
            "Providers": [
                {"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "api_key": "", "models": ["gpt-oss:20b"]},
                {"name": "lmstudio", "api_base_url": "http://127.0.0.1:1234/v1/chat/completions", "api_key": "", "models": ["qwen"]},
                {"name": "anthropic", "api_base_url": "https://api.anthropic.com/v1/messages", "api_key": "k", "models": ["claude-sonnet-4-5"]}
            ],
            "Router": {"default": "ollama,gpt-oss:20b", "think": "anthropic,claude-sonnet-4-5"},
            "fallback": {
                "default": ["ollama,gpt-oss:20b", "lmstudio,qwen", "anthropic,claude-sonnet-4-5"],
                "think": ["ollama,gpt-oss:20b"]
            }
        });
        ConfigFile::new(std::path::Path::new("/t/c.json"), doc)
            .resolve_with(&|_| None)
            .unwrap()
    }

    #[test]
    fn chain_is_target_then_scenario_fallbacks_without_repeats() {
        let c = config();
        assert_eq!(
            chain(&c, Scenario::Default, &mr("ollama,gpt-oss:20b"), |_| true),
            vec![
                mr("ollama,gpt-oss:20b"),
                mr("lmstudio,qwen"),
                mr("anthropic,claude-sonnet-4-5")
            ]
        );
        assert_eq!(
            chain(
                &c,
                Scenario::Think,
                &mr("anthropic,claude-sonnet-4-5"),
                |_| true
            ),
            vec![mr("anthropic,claude-sonnet-4-5"), mr("ollama,gpt-oss:20b")]
        );
        // No chain of its own: the default chain.
        assert_eq!(
            chain(&c, Scenario::Background, &mr("ollama,gpt-oss:20b"), |_| {
                true
            })
            .len(),
            3
        );
        // Unusable targets are skipped.
        assert_eq!(
            chain(&c, Scenario::Default, &mr("ollama,gpt-oss:20b"), |t| t
                .provider
                != "lmstudio"),
            vec![mr("ollama,gpt-oss:20b"), mr("anthropic,claude-sonnet-4-5")]
        );
    }

    fn block_on<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn run_chain_moves_on_only_for_retryable_failures() {
        let targets = [mr("a,1"), mr("b,2"), mr("c,3")];
        let tried = RefCell::new(Vec::new());
        let out = block_on(run_chain(
            &targets,
            |t| {
                tried.borrow_mut().push(t.provider.clone());
                let r = match t.provider.as_str() {
                    "a" => Err(AttemptFailure::Connect("refused".into())),
                    "b" => Err(status(500, "error parsing tool call: raw='{'")),
                    _ => Ok("answer"),
                };
                async move { r }
            },
            |_, _, _| {},
        ));
        assert_eq!(out.result, Ok("answer"));
        assert_eq!(out.target, mr("c,3"));
        assert_eq!(out.fallback_from(), Some(&mr("a,1")));
        assert_eq!(out.failures.len(), 2);
        assert_eq!(*tried.borrow(), ["a", "b", "c"]);

        // A 400 is the request's fault: no fallback.
        let out = block_on(run_chain(
            &targets,
            |_| async { Err::<(), _>(status(400, "bad")) },
            |_, _, _| panic!("must not move on"),
        ));
        assert_eq!(out.target, mr("a,1"));
        assert!(out.failures.is_empty());

        // After the first byte: no fallback either.
        let out = block_on(run_chain(
            &targets,
            |_| async { Err::<(), _>(AttemptFailure::AfterFirstByte("reset".into())) },
            |_, _, _| panic!("must not move on"),
        ));
        assert_eq!(
            out.result,
            Err(AttemptFailure::AfterFirstByte("reset".into()))
        );

        // The last failure is returned when everything fails.
        let out = block_on(run_chain(
            &targets,
            |t| {
                let code = if t.provider == "c" { 503 } else { 500 };
                async move { Err::<(), _>(status(code, "")) }
            },
            |_, _, _| {},
        ));
        assert_eq!(out.result, Err(status(503, "")));
        assert_eq!(out.target, mr("c,3"));
    }

    #[test]
    fn route_header_names_who_answered() {
        assert_eq!(
            route_header(
                &mr("anthropic,claude-sonnet-4-5"),
                "default",
                Some(&mr("ollama,gpt-oss:20b"))
            ),
            "anthropic,claude-sonnet-4-5; scenario=default; fallback=yes; from=ollama,gpt-oss:20b"
        );
        assert_eq!(
            route_header(&mr("ollama,gpt-oss:20b"), "think", None),
            "ollama,gpt-oss:20b; scenario=think; fallback=no"
        );
    }

    const SIG: &str = "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxDTFzrnkCHAmr0aCAiMMpa0UcC6OZ3xx8tsFyVDn6IIpnMyTLhwHbMbcmSgA";

    fn request(body: Value) -> MessagesRequest {
        serde_json::from_value(body).unwrap()
    }

    #[test]
    fn strips_local_thinking_and_keeps_signed_and_redacted() {
        let mut r = request(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "local", "signature": ""}, {"type": "text", "text": "hello"}]},
                {"role": "user", "content": "more"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "cloud", "signature": SIG}, {"type": "redacted_thinking", "data": "abc"}, {"type": "text", "text": "sure"}]},
                {"role": "user", "content": "and"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "only thinking", "signature": "fake"}]},
                {"role": "user", "content": "end"}
            ],
            "thinking": {"type": "adaptive"}
        }));
        let c = strip_unsigned_thinking(&mut r);
        assert_eq!(
            c,
            ThinkingCleanup {
                removed: 2,
                emptied_messages: 1,
                disabled_thinking: false
            }
        );
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(
            v["messages"][1]["content"],
            json!([{"type": "text", "text": "hello"}])
        );
        assert_eq!(v["messages"][3]["content"].as_array().unwrap().len(), 3);
        assert_eq!(r.messages.len(), 6);
        assert!(
            r.thinking.is_some(),
            "a new user turn does not need thinking off"
        );
    }

    #[test]
    fn stripping_the_tool_loops_thinking_turns_thinking_off() {
        let mut r = request(json!({
            "model": "m",
            "messages": [
                {"role": "user", "content": "list files"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "use ls", "signature": ""}, {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "a b"}]}
            ],
            "thinking": {"type": "adaptive"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "output_config": {"effort": "high"}
        }));
        let c = strip_unsigned_thinking(&mut r);
        assert_eq!(
            c,
            ThinkingCleanup {
                removed: 1,
                emptied_messages: 0,
                disabled_thinking: true
            }
        );
        assert!(r.thinking.is_none());
        assert!(!r.extra.contains_key("context_management"));
        assert!(r.extra.contains_key("output_config"));
    }

    #[test]
    fn signatures() {
        assert!(plausible_signature(SIG));
        assert!(!plausible_signature(""));
        assert!(!plausible_signature("local"));
        assert!(!plausible_signature(&"x y".repeat(20)));
    }
}
