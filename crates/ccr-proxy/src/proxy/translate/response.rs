//! OpenAI chat completion (non-streaming) → Anthropic Messages response.

use serde_json::Value;

use super::tool_names::ToolNameMap;
use crate::proxy::repair::text_call::{self, TextVerdict};
use crate::proxy::repair::{fit_call, RepairKind, ToolCatalog, Unfit};
use crate::proxy::wire::anthropic::{MessagesResponse, ResponseBlock, StopReason, Usage};
use crate::proxy::wire::openai::{ChatCompletion, ChatUsage};

/// An upstream answer the client cannot be given.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResponseError {
    #[error("the upstream answer has no choices")]
    NoChoices,
    #[error("the upstream's arguments for tool `{name}` are not valid JSON: {detail}")]
    BadToolArguments { name: String, detail: String },
    /// A tool call that could not be made to fit the offered tools (or a call the
    /// model printed as text that cannot): worth a corrective retry, then fallback.
    #[error("the model's {0}")]
    UnfitToolCall(Unfit),
}

/// Anthropic usage from OpenAI usage: cached prompt tokens are reported apart, as
/// Anthropic does. Falls back to `input_estimate` when the upstream reported nothing.
pub fn usage_from_openai(usage: Option<&ChatUsage>, input_estimate: u64) -> (Usage, bool) {
    match usage {
        Some(u) => {
            let cached = u.cached_tokens();
            (
                Usage {
                    input_tokens: u.prompt_tokens.saturating_sub(cached),
                    output_tokens: u.completion_tokens,
                    cache_creation_input_tokens: None,
                    cache_read_input_tokens: (cached > 0).then_some(cached),
                },
                false,
            )
        }
        None => (
            Usage {
                input_tokens: input_estimate,
                ..Usage::default()
            },
            true,
        ),
    }
}

/// What the caller knows that the upstream answer does not carry.
#[derive(Debug, Clone, Copy)]
pub struct ResponseContext<'a> {
    /// Message id to use when the upstream gave none.
    pub fallback_id: &'a str,
    /// The model that answered (reported back to the client).
    pub model: &'a str,
    /// Input-token estimate, used only when the upstream reports no usage.
    pub input_estimate: u64,
    /// Keep only the first tool call: the client disabled parallel tool use and the
    /// upstream (Ollama) ignores `parallel_tool_calls`.
    pub single_tool_call: bool,
    /// The offered tools, when the answer's tool calls are to be repaired
    /// ([`crate::proxy::repair`]); None passes calls on as sent.
    pub tools: Option<&'a ToolCatalog>,
}

/// A translated answer.
#[derive(Debug, Clone)]
pub struct Translated {
    pub response: MessagesResponse,
    /// The usage figures are estimates (the upstream reported none).
    pub usage_estimated: bool,
    /// The repairs made to its tool calls (empty when none were needed).
    pub repairs: Vec<RepairKind>,
}

/// Translate a whole answer.
pub fn from_openai(
    resp: &ChatCompletion,
    names: &ToolNameMap,
    ctx: &ResponseContext,
) -> Result<Translated, ResponseError> {
    let choice = resp.choices.first().ok_or(ResponseError::NoChoices)?;
    let msg = &choice.message;
    let id = match resp.id.as_deref() {
        Some(id) if !id.is_empty() => format!("msg_{id}"),
        _ => ctx.fallback_id.to_owned(),
    };

    let mut content = Vec::new();
    let reasoning = msg
        .reasoning_content
        .as_deref()
        .or(msg.reasoning.as_deref())
        .filter(|r| !r.is_empty());
    if let Some(thinking) = reasoning {
        content.push(ResponseBlock::Thinking {
            thinking: thinking.to_owned(),
            signature: String::new(),
        });
    }
    let calls = msg.tool_calls.as_deref().unwrap_or_default();
    let mut repairs = Vec::new();
    if let Some(text) = msg.content.as_deref().filter(|t| !t.is_empty()) {
        let tools = ctx.tools.filter(|_| calls.is_empty());
        text_blocks(text, tools, &id, &mut repairs, &mut content)?;
    }
    let keep = if ctx.single_tool_call { 1 } else { calls.len() };
    if calls.len() > keep {
        tracing::info!(
            "kept the first of {} tool calls: the client disabled parallel tool use, which the upstream ignores",
            calls.len()
        );
    }
    for (i, call) in calls.iter().take(keep).enumerate() {
        let (name, input) = call_input(call, names, ctx.tools, &mut repairs)?;
        content.push(ResponseBlock::ToolUse {
            id: call
                .id
                .clone()
                .filter(|id| !id.is_empty())
                .unwrap_or_else(|| format!("toolu_{id}_{i}")),
            name,
            input,
        });
    }

    let has_tool_calls = content
        .iter()
        .any(|b| matches!(b, ResponseBlock::ToolUse { .. }));
    let stop_reason = match choice.finish_reason.as_deref() {
        Some(reason) => StopReason::from_openai(reason),
        // Some servers omit finish_reason on tool-call answers.
        None if has_tool_calls => StopReason::ToolUse,
        None => StopReason::EndTurn,
    };
    // Some servers say "stop" after tool calls (and a call printed as text always
    // ends that way): the client must still run them.
    let stop_reason = match stop_reason {
        StopReason::EndTurn if has_tool_calls => StopReason::ToolUse,
        other => other,
    };
    let (usage, estimated) = usage_from_openai(resp.usage.as_ref(), ctx.input_estimate);

    repairs.sort();
    repairs.dedup();
    Ok(Translated {
        response: MessagesResponse {
            id,
            kind: "message".to_owned(),
            role: "assistant".to_owned(),
            model: ctx.model.to_owned(),
            content,
            stop_reason: Some(stop_reason),
            stop_sequence: None,
            usage,
        },
        usage_estimated: estimated,
        repairs,
    })
}

/// The answer's text as blocks: text, or (when the tools are known and the answer has
/// no calls) the call it printed, after the prose before it; a failed call attempt is
/// an error.
fn text_blocks(
    text: &str,
    tools: Option<&ToolCatalog>,
    id: &str,
    repairs: &mut Vec<RepairKind>,
    content: &mut Vec<ResponseBlock>,
) -> Result<(), ResponseError> {
    let verdict = match tools {
        Some(tools) => text_call::classify(tools, text),
        None => TextVerdict::Prose,
    };
    let call = match verdict {
        TextVerdict::Prose => {
            content.push(ResponseBlock::Text {
                text: text.to_owned(),
            });
            return Ok(());
        }
        TextVerdict::Call(call) => call,
        TextVerdict::ProseThenCall(prose, call) => {
            content.push(ResponseBlock::Text { text: prose });
            call
        }
        TextVerdict::Attempt(unfit) => return Err(ResponseError::UnfitToolCall(unfit)),
    };
    tracing::info!("repaired a tool call: {}", call.detail.join(", "));
    repairs.extend(call.repairs);
    content.push(ResponseBlock::ToolUse {
        id: format!("toolu_{id}_0"),
        name: call.name,
        input: call.input,
    });
    Ok(())
}

/// One call's client name and input: repaired against the tools when they are known,
/// else parsed as sent.
fn call_input(
    call: &crate::proxy::wire::openai::ResponseToolCall,
    names: &ToolNameMap,
    tools: Option<&ToolCatalog>,
    repairs: &mut Vec<RepairKind>,
) -> Result<(String, Value), ResponseError> {
    let upstream_name = call.function.name.as_deref().unwrap_or_default();
    let name = names.to_client(upstream_name).to_owned();
    let args = call.function.arguments_text();
    match tools {
        Some(tools) => {
            let fitted =
                fit_call(tools, &name, &args, true).map_err(ResponseError::UnfitToolCall)?;
            if !fitted.repairs.is_empty() {
                tracing::info!("repaired a tool call: {}", fitted.detail.join(", "));
                repairs.extend(fitted.repairs);
            }
            Ok((fitted.name, fitted.input))
        }
        None if args.trim().is_empty() => Ok((name, Value::Object(Default::default()))),
        None => {
            let input =
                serde_json::from_str(&args).map_err(|e| ResponseError::BadToolArguments {
                    name: name.clone(),
                    detail: e.to_string(),
                })?;
            Ok((name, input))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const CTX: ResponseContext = ResponseContext {
        fallback_id: "msg_local",
        model: "gpt-oss:20b",
        input_estimate: 42,
        single_tool_call: false,
        tools: None,
    };

    fn run(v: Value) -> Result<(MessagesResponse, bool), ResponseError> {
        let resp: ChatCompletion = serde_json::from_value(v).unwrap();
        from_openai(&resp, &ToolNameMap::default(), &CTX).map(|t| (t.response, t.usage_estimated))
    }

    #[test]
    fn reasoning_text_and_tool_calls_in_anthropic_order() {
        let (r, estimated) = run(json!({
            "id": "chatcmpl-1",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": "Let me look.", "reasoning": "need ls",
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"ls\"}"}}]
            }}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 60}}
        }))
        .unwrap();
        assert!(!estimated);
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({
                "id": "msg_chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-oss:20b",
                "content": [
                    {"type": "thinking", "thinking": "need ls", "signature": ""},
                    {"type": "text", "text": "Let me look."},
                    {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}}
                ],
                "stop_reason": "tool_use", "stop_sequence": null,
                "usage": {"input_tokens": 40, "output_tokens": 20, "cache_read_input_tokens": 60}
            })
        );
    }

    #[test]
    fn finish_reasons_and_missing_usage() {
        for (finish, stop) in [
            ("stop", StopReason::EndTurn),
            ("length", StopReason::MaxTokens),
            ("content_filter", StopReason::Refusal),
        ] {
            let (r, estimated) =
                run(json!({"choices": [{"finish_reason": finish, "message": {"content": "x"}}]}))
                    .unwrap();
            assert_eq!(r.stop_reason, Some(stop));
            assert!(estimated);
            assert_eq!(r.usage.input_tokens, 42);
            assert_eq!(r.id, "msg_local");
        }
    }

    #[test]
    fn broken_answers_are_errors_not_guesses() {
        assert_eq!(
            run(json!({"choices": []})).unwrap_err(),
            ResponseError::NoChoices
        );
        let err = run(json!({"choices": [{"message": {"tool_calls": [{"function": {"name": "Bash", "arguments": "{\"command\": "}}]}}]})).unwrap_err();
        assert!(
            matches!(err, ResponseError::BadToolArguments { ref name, .. } if name == "Bash"),
            "{err}"
        );
        // Arguments sent as an object (some servers) are accepted.
        let (r, _) = run(json!({"choices": [{"message": {"tool_calls": [{"id": "c", "function": {"name": "Bash", "arguments": {"command": "ls"}}}]}}]})).unwrap();
        assert_eq!(r.stop_reason, Some(StopReason::ToolUse));
        assert!(
            matches!(&r.content[0], ResponseBlock::ToolUse { input, .. } if input["command"] == "ls")
        );
    }

    #[test]
    fn tool_calls_are_repaired_when_the_tools_are_known() {
        let tools = crate::proxy::repair::tests::claude_code_catalog();
        let ctx = ResponseContext {
            tools: Some(&tools),
            ..CTX
        };
        let translate = |v: Value| {
            let resp: ChatCompletion = serde_json::from_value(v).unwrap();
            from_openai(&resp, &ToolNameMap::default(), &ctx)
        };
        // A call printed as text becomes a tool_use block, and the turn a tool turn.
        let t = translate(json!({"choices": [{"finish_reason": "stop", "message": {
            "content": "{\"name\": \"Bash\", \"arguments\": {\"command\": \"ls\"}}"}}]}))
        .unwrap();
        assert_eq!(t.response.stop_reason, Some(StopReason::ToolUse));
        assert!(matches!(&t.response.content[0],
            ResponseBlock::ToolUse { name, input, .. } if name == "Bash" && input["command"] == "ls"));
        assert_eq!(t.repairs, vec![RepairKind::TextCall]);
        // A namespaced name with a string number.
        let t = translate(
            json!({"choices": [{"finish_reason": "tool_calls", "message": {
            "tool_calls": [{"id": "c1", "function": {"name": "functions.Read",
                "arguments": "{\"file_path\": \"/p/a.py\", \"limit\": \"5\"}"}}]}}]}),
        )
        .unwrap();
        assert!(matches!(&t.response.content[0],
            ResponseBlock::ToolUse { name, input, .. } if name == "Read" && input["limit"] == 5));
        assert_eq!(t.repairs, vec![RepairKind::Name, RepairKind::Coerced]);
        // A call that cannot fit is an error for the caller to retry, never passed on.
        let err = translate(json!({"choices": [{"message": {
            "tool_calls": [{"id": "c1", "function": {"name": "Read", "arguments": "{\"path\": \"/p\"}"}}]}}]}))
        .unwrap_err();
        assert!(
            matches!(err, ResponseError::UnfitToolCall(ref u) if u.reason.contains("file_path")),
            "{err}"
        );
    }
}
