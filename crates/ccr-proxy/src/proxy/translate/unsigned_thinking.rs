//! History an Anthropic-kind target accepts: thinking blocks produced by local models
//! carry no signature, and the cloud rejects them.

use serde_json::Value;

use crate::proxy::wire::anthropic::{Content, ContentBlock, KnownBlock, MessagesRequest, Thinking};

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
    use serde_json::json;

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
