//! OpenAI chat-completions wire types (the side Ollama, llama.cpp, vLLM and friends speak).
//!
//! Requests are built by `translate::request` and only serialised; responses and
//! stream chunks are only deserialised. Fields the proxy does not use are not modelled
//! (serde ignores them), so servers that add their own keys parse fine.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;

/// `POST /v1/chat/completions` body. Borrows from the Anthropic request it was
/// translated from, so the large parts (tool schemas, long texts) are never copied.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChatRequest<'a> {
    pub model: &'a str,
    pub messages: Vec<ChatMessage<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<ChatTool<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_effort: Option<&'static str>,
    pub stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StreamOptions {
    pub include_usage: bool,
}

/// One message. `content` is null only on an assistant turn that carries tool calls.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChatMessage<'a> {
    pub role: Role,
    pub content: Option<ChatContent<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_calls: Option<Vec<ToolCall<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<&'a str>,
    /// Earlier reasoning sent back (DeepSeek-style APIs require it on tool-call turns).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning_content: Option<Cow<'a, str>>,
    /// The same for Ollama, which reads the assistant field `reasoning` and ignores
    /// `reasoning_content`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<Cow<'a, str>>,
}

impl<'a> ChatMessage<'a> {
    pub fn text(role: Role, text: Cow<'a, str>) -> ChatMessage<'a> {
        ChatMessage {
            role,
            content: Some(ChatContent::Text(text)),
            tool_calls: None,
            tool_call_id: None,
            reasoning_content: None,
            reasoning: None,
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(untagged)]
pub enum ChatContent<'a> {
    Text(Cow<'a, str>),
    Parts(Vec<ContentPart<'a>>),
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ContentPart<'a> {
    Text { text: Cow<'a, str> },
    ImageUrl { image_url: ImageUrl<'a> },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ImageUrl<'a> {
    pub url: Cow<'a, str>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ToolCall<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionCall<'a>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunctionCall<'a> {
    pub name: Cow<'a, str>,
    /// The arguments as a JSON-encoded string, as OpenAI expects.
    pub arguments: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChatTool<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: FunctionDef<'a>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FunctionDef<'a> {
    pub name: Cow<'a, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<Cow<'a, str>>,
    /// The client's `input_schema` text, passed on as it came (see
    /// [`crate::proxy::wire::anthropic::Tool::input_schema`]).
    pub parameters: Cow<'a, RawValue>,
}

/// By JSON text: a schema is compared as the bytes that would be sent.
impl PartialEq for FunctionDef<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.description == other.description
            && self.parameters.get() == other.parameters.get()
    }
}

// ---------------------------------------------------------------------------------
// Responses

/// A non-streaming answer.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatCompletion {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<ChatUsage>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Choice {
    #[serde(default)]
    pub message: ResponseMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponseMessage {
    #[serde(default)]
    pub content: Option<String>,
    /// Ollama's name for the reasoning text.
    #[serde(default)]
    pub reasoning: Option<String>,
    /// vLLM's and DeepSeek's name for it.
    #[serde(default)]
    pub reasoning_content: Option<String>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ResponseToolCall>>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ResponseToolCall {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: ResponseFunction,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ResponseFunction {
    #[serde(default)]
    pub name: Option<String>,
    /// Normally a JSON-encoded string; some servers send the object itself.
    #[serde(default)]
    pub arguments: Option<Value>,
}

impl ResponseFunction {
    /// The arguments as JSON text, whichever way the server sent them.
    pub fn arguments_text(&self) -> String {
        match &self.arguments {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct ChatUsage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, PartialEq, Eq)]
pub struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

impl ChatUsage {
    /// Prompt tokens served from the upstream's cache (0 when not reported).
    pub fn cached_tokens(&self) -> u64 {
        self.prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0)
    }
}

/// One `data:` payload of a streamed answer. Also carries the `error` object some
/// servers send mid-stream instead of a chunk. The texts borrow from the event when
/// they hold no escapes (most tokens), so a chunk costs no allocation per text; parse
/// with `serde_json::from_slice` for that, or `ChatChunk::deserialize(value)` for an
/// owned `ChatChunk<'static>`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChatChunk<'a> {
    #[serde(default, borrow)]
    pub choices: Vec<ChunkChoice<'a>>,
    #[serde(default)]
    pub usage: Option<ChatUsage>,
    #[serde(default)]
    pub error: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ChunkChoice<'a> {
    #[serde(default)]
    pub index: u32,
    #[serde(default, borrow)]
    pub delta: ChunkDelta<'a>,
    #[serde(default, borrow, deserialize_with = "borrowed_text")]
    pub finish_reason: Option<Cow<'a, str>>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub struct ChunkDelta<'a> {
    #[serde(default, borrow, deserialize_with = "borrowed_text")]
    pub content: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_text")]
    pub reasoning: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "borrowed_text")]
    pub reasoning_content: Option<Cow<'a, str>>,
    #[serde(default)]
    pub tool_calls: Option<Vec<ChunkToolCall>>,
}

/// An optional string that borrows from the input when it can: serde's own
/// `Option<Cow<str>>` always allocates (only a bare `Cow<str>` field borrows).
fn borrowed_text<'de: 'a, 'a, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Cow<'a, str>>, D::Error> {
    #[derive(Deserialize)]
    struct Text<'a>(#[serde(borrow)] Cow<'a, str>);
    Ok(Option::<Text<'a>>::deserialize(d)?.map(|t| t.0))
}

/// A tool-call fragment. OpenAI sends id and name in the first fragment of each
/// `index` and argument pieces after; Ollama sends each call whole, sometimes
/// without an `index`.
#[derive(Debug, Clone, Deserialize)]
pub struct ChunkToolCall {
    #[serde(default)]
    pub index: Option<u32>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub function: ResponseFunction,
}

/// The human-readable message inside an OpenAI-style error value: `{"error":
/// {"message": …}}`, `{"error": "…"}`, `{"message": …}` or a bare string.
pub fn error_message(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Object(map) => {
            if let Some(inner) = map.get("error") {
                return error_message(inner);
            }
            map.get("message")
                .or_else(|| map.get("detail"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        }
        _ => None,
    }
}
