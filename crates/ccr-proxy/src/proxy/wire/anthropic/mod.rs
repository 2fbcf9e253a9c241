//! Anthropic Messages API wire types (the side Claude Code speaks).
//!
//! Requests are parsed into these types once per request; everything the proxy
//! does not model is kept in `extra` maps so a pass-through loses nothing. The
//! answer side (messages, stream events, usage, errors) is in `answer`.

mod answer;
mod delta_sse;

pub use answer::*;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// Anthropic's own request size limit (the proxy refuses larger bodies the same way).
pub const MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// `POST /v1/messages` body.
///
/// Deserialised by hand (below) rather than with `#[serde(flatten)]`: flatten makes
/// serde buffer the whole body into an intermediate tree first, which tripled the
/// parse time of a 76 KB Claude Code request.
#[derive(Debug, Clone, Serialize)]
pub struct MessagesRequest {
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<System>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sequences: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<Tool>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<Thinking>,
    /// Everything else (context_management, output_config, …), kept for pass-through.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `system`: a string or a list of text blocks.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum System {
    Text(String),
    Blocks(Vec<SystemBlock>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SystemBlock {
    #[serde(rename = "type", default = "text_type")]
    pub kind: String,
    #[serde(default)]
    pub text: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn text_type() -> String {
    "text".to_owned()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Message {
    /// `user`, `assistant`, or (Claude Code sends it mid-conversation) `system`.
    pub role: String,
    pub content: Content,
}

/// Message content: a plain string or a list of blocks.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

/// One content block. Unknown block types are kept as raw JSON.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ContentBlock {
    Known(KnownBlock),
    Unknown(Value),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum KnownBlock {
    Text {
        text: String,
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    Image {
        source: ImageSource,
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    ToolResult {
        tool_use_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<ToolResultContent>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        is_error: Option<bool>,
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    Thinking {
        thinking: String,
        #[serde(default)]
        signature: String,
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
    RedactedThinking {
        data: String,
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ImageSource {
    Base64 { media_type: String, data: String },
    Url { url: String },
}

/// `tool_result.content`: a string or a list of blocks (text, images).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum ToolResultContent {
    Text(String),
    Blocks(Vec<ContentBlock>),
}

/// A tool definition. Server tools (`web_search_20250305`, …) have a `type` and no schema.
/// Deserialised by hand for the same reason as [`MessagesRequest`].
#[derive(Debug, Clone, Serialize)]
pub struct Tool {
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Kept as the client's JSON text: the proxy passes schemas on without looking
    /// inside (only the Ollama path and tool-call repair parse one, when they need it).
    /// As a `Value` tree, Claude Code's ~50 KB of schemas took ~150 KB per request in
    /// flight and a parse and re-encode on every turn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_schema: Option<Box<RawValue>>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ToolChoice {
    Auto {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Any {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    Tool {
        name: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        disable_parallel_tool_use: Option<bool>,
    },
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Thinking {
    Enabled {
        #[serde(default)]
        budget_tokens: u32,
    },
    Disabled,
    Adaptive {
        #[serde(flatten)]
        extra: Map<String, Value>,
    },
}

/// Deserialise a JSON object field by field: known keys straight into their typed
/// slots, every other key into `extra` as JSON. `$on_key` matches a key and returns
/// true when it consumed the value.
macro_rules! object_visitor {
    ($expecting:literal, $map:ident, $extra:ident, $on_key:expr) => {{
        let mut $extra = Map::new();
        while let Some(key) = $map.next_key::<String>()? {
            let consumed: bool = $on_key(&key, &mut $map)?;
            if !consumed {
                let value: Value = $map.next_value()?;
                $extra.insert(key, value);
            }
        }
        $extra
    }};
}

impl<'de> Deserialize<'de> for MessagesRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = MessagesRequest;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a Messages API request object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<MessagesRequest, A::Error> {
                let mut model: Option<String> = None;
                let mut messages: Option<Vec<Message>> = None;
                let mut r = MessagesRequest {
                    model: String::new(),
                    messages: Vec::new(),
                    system: None,
                    max_tokens: None,
                    metadata: None,
                    stop_sequences: None,
                    stream: None,
                    temperature: None,
                    top_p: None,
                    top_k: None,
                    tools: None,
                    tool_choice: None,
                    thinking: None,
                    extra: Map::new(),
                };
                let extra = object_visitor!(
                    "request",
                    map,
                    extra,
                    |key: &str, map: &mut A| -> Result<bool, A::Error> {
                        match key {
                            "model" => model = Some(map.next_value()?),
                            "messages" => messages = Some(map.next_value()?),
                            "system" => r.system = map.next_value()?,
                            "max_tokens" => r.max_tokens = map.next_value()?,
                            "metadata" => r.metadata = map.next_value()?,
                            "stop_sequences" => r.stop_sequences = map.next_value()?,
                            "stream" => r.stream = map.next_value()?,
                            "temperature" => r.temperature = map.next_value()?,
                            "top_p" => r.top_p = map.next_value()?,
                            "top_k" => r.top_k = map.next_value()?,
                            "tools" => r.tools = map.next_value()?,
                            "tool_choice" => r.tool_choice = map.next_value()?,
                            "thinking" => r.thinking = map.next_value()?,
                            _ => return Ok(false),
                        }
                        Ok(true)
                    }
                );
                r.model = model.ok_or_else(|| serde::de::Error::missing_field("model"))?;
                r.messages = messages.ok_or_else(|| serde::de::Error::missing_field("messages"))?;
                r.extra = extra;
                Ok(r)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Tool {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Tool;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a tool definition object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Tool, A::Error> {
                let mut name: Option<String> = None;
                let mut kind = None;
                let mut description = None;
                let mut input_schema = None;
                let extra = object_visitor!(
                    "tool",
                    map,
                    extra,
                    |key: &str, map: &mut A| -> Result<bool, A::Error> {
                        match key {
                            "name" => name = Some(map.next_value()?),
                            "type" => kind = map.next_value()?,
                            "description" => description = map.next_value()?,
                            "input_schema" => input_schema = map.next_value()?,
                            _ => return Ok(false),
                        }
                        Ok(true)
                    }
                );
                Ok(Tool {
                    name: name.ok_or_else(|| serde::de::Error::missing_field("name"))?,
                    kind,
                    description,
                    input_schema,
                    extra,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// `String | [item…]` enums (system, message content, tool-result content), read
/// without serde's untagged buffering: the JSON type decides the variant directly.
macro_rules! string_or_seq {
    ($ty:ident, $item:ty, $what:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> serde::de::Visitor<'de> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                        f.write_str($what)
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<$ty, E> {
                        Ok($ty::Text(v.to_owned()))
                    }
                    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<$ty, E> {
                        Ok($ty::Text(v))
                    }
                    fn visit_seq<A: serde::de::SeqAccess<'de>>(
                        self,
                        mut seq: A,
                    ) -> Result<$ty, A::Error> {
                        let mut items: Vec<$item> =
                            Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
                        while let Some(item) = seq.next_element()? {
                            items.push(item);
                        }
                        Ok($ty::Blocks(items))
                    }
                }
                d.deserialize_any(V)
            }
        }
    };
}

string_or_seq!(System, SystemBlock, "a string or a list of text blocks");
string_or_seq!(
    Content,
    ContentBlock,
    "a string or a list of content blocks"
);
string_or_seq!(
    ToolResultContent,
    ContentBlock,
    "a string or a list of content blocks"
);

impl<'de> Deserialize<'de> for ContentBlock {
    /// One pass into a JSON object, then the known kinds are taken apart by moving
    /// their fields out (no second parse, no string copies). A block whose fields do not
    /// fit its kind is kept whole as `Unknown`, as serde's untagged fallback did.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(ContentBlock::from_value(Value::deserialize(d)?))
    }
}

impl ContentBlock {
    fn from_value(v: Value) -> ContentBlock {
        let Value::Object(mut m) = v else {
            return ContentBlock::Unknown(v);
        };
        let is_str = |m: &Map<String, Value>, k: &str| matches!(m.get(k), Some(Value::String(_)));
        let take_str = |m: &mut Map<String, Value>, k: &str| match m.shift_remove(k) {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        let kind = match m.get("type") {
            Some(Value::String(k)) => k.clone(),
            _ => return ContentBlock::Unknown(Value::Object(m)),
        };
        let known = match kind.as_str() {
            "text" if is_str(&m, "text") => {
                m.shift_remove("type");
                let text = take_str(&mut m, "text");
                KnownBlock::Text { text, extra: m }
            }
            "image" => {
                let source = m
                    .get("source")
                    .and_then(|s| ImageSource::deserialize(s).ok());
                match source {
                    Some(source) => {
                        m.shift_remove("type");
                        m.shift_remove("source");
                        KnownBlock::Image { source, extra: m }
                    }
                    None => return ContentBlock::Unknown(Value::Object(m)),
                }
            }
            "tool_use" if is_str(&m, "id") && is_str(&m, "name") => {
                m.shift_remove("type");
                let id = take_str(&mut m, "id");
                let name = take_str(&mut m, "name");
                let input = m.shift_remove("input").unwrap_or(Value::Null);
                KnownBlock::ToolUse {
                    id,
                    name,
                    input,
                    extra: m,
                }
            }
            "tool_result"
                if is_str(&m, "tool_use_id")
                    && matches!(
                        m.get("content"),
                        None | Some(Value::Null | Value::String(_) | Value::Array(_))
                    )
                    && matches!(m.get("is_error"), None | Some(Value::Null | Value::Bool(_))) =>
            {
                m.shift_remove("type");
                let tool_use_id = take_str(&mut m, "tool_use_id");
                let content = match m.shift_remove("content") {
                    Some(Value::String(s)) => Some(ToolResultContent::Text(s)),
                    Some(Value::Array(items)) => Some(ToolResultContent::Blocks(
                        items.into_iter().map(ContentBlock::from_value).collect(),
                    )),
                    _ => None,
                };
                let is_error = m.shift_remove("is_error").and_then(|v| v.as_bool());
                KnownBlock::ToolResult {
                    tool_use_id,
                    content,
                    is_error,
                    extra: m,
                }
            }
            "thinking"
                if is_str(&m, "thinking")
                    && matches!(m.get("signature"), None | Some(Value::String(_))) =>
            {
                m.shift_remove("type");
                let thinking = take_str(&mut m, "thinking");
                let signature = take_str(&mut m, "signature");
                KnownBlock::Thinking {
                    thinking,
                    signature,
                    extra: m,
                }
            }
            "redacted_thinking" if is_str(&m, "data") => {
                m.shift_remove("type");
                let data = take_str(&mut m, "data");
                KnownBlock::RedactedThinking { data, extra: m }
            }
            _ => return ContentBlock::Unknown(Value::Object(m)),
        };
        ContentBlock::Known(known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn blocks_that_do_not_fit_their_kind_are_kept_whole_as_unknown() {
        let blocks: Vec<ContentBlock> = serde_json::from_value(json!([
            {"type": "text", "text": 5},
            {"type": "tool_use", "id": "t"},
            {"type": "image", "source": {"type": "ftp"}},
            "not an object",
            {"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "ok"}], "is_error": true, "cache_control": {"type": "ephemeral"}}
        ]))
        .unwrap();
        for b in &blocks[..4] {
            assert!(matches!(b, ContentBlock::Unknown(_)), "{b:?}");
        }
        match &blocks[4] {
            ContentBlock::Known(KnownBlock::ToolResult {
                content: Some(ToolResultContent::Blocks(inner)),
                is_error: Some(true),
                extra,
                ..
            }) => {
                assert!(
                    matches!(&inner[0], ContentBlock::Known(KnownBlock::Text { text, .. }) if text == "ok")
                );
                assert!(extra.contains_key("cache_control"));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            serde_json::to_value(&blocks[0]).unwrap(),
            json!({"type": "text", "text": 5})
        );
    }

    #[test]
    fn missing_model_or_messages_is_named() {
        let err = serde_json::from_value::<MessagesRequest>(json!({"messages": []})).unwrap_err();
        assert!(err.to_string().contains("missing field `model`"), "{err}");
        let err = serde_json::from_value::<MessagesRequest>(json!({"model": "m"})).unwrap_err();
        assert!(
            err.to_string().contains("missing field `messages`"),
            "{err}"
        );
    }

    #[test]
    fn parses_claude_code_shaped_request_and_keeps_unknowns() {
        let body = json!({
            "model": "claude-opus-4-8",
            "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=1"}, {"type": "text", "text": "You are Claude Code", "cache_control": {"type": "ephemeral"}}],
            "messages": [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": ""}, {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "a\nb"}], "is_error": false}, {"type": "mystery", "x": 1}]},
                {"role": "system", "content": "mid-conversation note"}
            ],
            "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object"}}, {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}],
            "tool_choice": {"type": "any"},
            "thinking": {"type": "adaptive"},
            "context_management": {"edits": []},
            "max_tokens": 64000,
            "stream": true
        });
        let req: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
        assert!(matches!(req.thinking, Some(Thinking::Adaptive { .. })));
        assert!(matches!(req.tool_choice, Some(ToolChoice::Any { .. })));
        assert!(req.extra.contains_key("context_management"));
        match &req.messages[2].content {
            Content::Blocks(b) => {
                assert!(matches!(
                    b[0],
                    ContentBlock::Known(KnownBlock::ToolResult { .. })
                ));
                assert!(matches!(b[1], ContentBlock::Unknown(_)));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            req.tools.as_ref().unwrap()[1].kind.as_deref(),
            Some("web_search_20250305")
        );
        // Round trip loses nothing.
        assert_eq!(serde_json::to_value(&req).unwrap(), body);
    }
}
