//! Anthropic Messages request → OpenAI chat-completions request.
//!
//! The result borrows from the parsed Anthropic request, so tool schemas (about 64 KB
//! in a Claude Code request) and long texts are serialised straight from the client's
//! parsed body without being copied.

use std::borrow::Cow;

use serde_json::value::RawValue;
use serde_json::{json, Value};

use super::tool_names::ToolNameMap;
use crate::proxy::capabilities::Capabilities;
use crate::proxy::wire::anthropic::{
    Content, ContentBlock, ImageSource, KnownBlock, MessagesRequest, System, Thinking, ToolChoice,
    ToolResultContent,
};
use crate::proxy::wire::openai::{
    ChatContent, ChatMessage, ChatRequest, ChatTool, ContentPart, FunctionCall, FunctionDef,
    ImageUrl, Role, StreamOptions, ToolCall,
};

/// Claude Code's first system block: it changes on every request, so sending it would
/// defeat the local server's prompt cache, and it means nothing to another model.
const BILLING_HEADER_PREFIX: &str = "x-anthropic-billing-header";

/// Prefix that tells the model a tool result is an error (OpenAI tool messages have
/// no `is_error` field).
pub const TOOL_ERROR_PREFIX: &str = "[tool error] ";

/// What the translation needs to know about the provider and model that will answer.
#[derive(Debug, Clone, Copy)]
pub struct TargetOptions<'a> {
    /// The upstream model name.
    pub model: &'a str,
    /// `Providers[].max_tokens`: the largest `max_tokens` the provider accepts.
    pub max_tokens_limit: Option<u32>,
    /// `Providers[].reasoning_in_history`: send thinking back as `reasoning_content`
    /// (or as `reasoning` to Ollama).
    pub reasoning_in_history: bool,
    /// The upstream is Ollama: history reasoning goes in the field it reads, `reasoning`.
    pub ollama: bool,
    /// What the model is known to take ([`crate::proxy::capabilities`]): without
    /// vision, images become notes; without thinking, no `reasoning_effort`.
    pub caps: Capabilities,
}

/// A translated request and the tool-name mapping needed to read its answer.
#[derive(Debug, Clone)]
pub struct Translated<'a> {
    pub request: ChatRequest<'a>,
    pub tool_names: ToolNameMap,
}

/// A request that cannot be expressed for the upstream. Names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct TranslateError {
    pub field: String,
    pub message: String,
}

/// `thinking` (and, for adaptive thinking, `output_config.effort`) → `reasoning_effort`.
///
/// Claude's effort scale sits one tier above OpenAI's: Claude Code sends adaptive
/// thinking with `effort: "high"` on every main turn as its ordinary default, so that
/// maps to `medium` (a local model does not reason at high on every turn); `xhigh` and
/// `max` (`/effort max`) map to `high`; `low` and `medium` to `low`. Adaptive without an
/// effort is `medium`.
pub fn reasoning_effort(thinking: Option<&Thinking>, effort: Option<&str>) -> Option<&'static str> {
    match thinking? {
        Thinking::Enabled { budget_tokens } if *budget_tokens <= 4096 => Some("low"),
        Thinking::Enabled { budget_tokens } if *budget_tokens <= 16384 => Some("medium"),
        Thinking::Enabled { .. } => Some("high"),
        Thinking::Adaptive { .. } => match effort {
            Some("low" | "medium") => Some("low"),
            Some("xhigh" | "max") => Some("high"),
            _ => Some("medium"),
        },
        Thinking::Disabled => None,
    }
}

/// The request's `output_config.effort`, as Claude Code sends it.
fn output_effort(req: &MessagesRequest) -> Option<&str> {
    req.extra.get("output_config")?.get("effort")?.as_str()
}

/// Translate `req` for an OpenAI-compatible upstream.
pub fn to_openai<'a>(
    req: &'a MessagesRequest,
    target: &TargetOptions<'a>,
) -> Result<Translated<'a>, TranslateError> {
    let mut names = ToolNameMap::default();
    let mut messages: Vec<ChatMessage<'a>> = Vec::with_capacity(req.messages.len() + 1);

    if let Some(system) = system_text(req.system.as_ref()) {
        messages.push(ChatMessage::text(Role::System, system));
    }

    // The turn the user just gave: the last `user` message (Claude Code may put a
    // `system` message after it), as the image route reads it.
    let current = req.messages.iter().rposition(|m| m.role == "user");
    for (i, message) in req.messages.iter().enumerate() {
        match message.role.as_str() {
            "user" => {
                let images = Images::for_target(target, Some(i) == current);
                push_user(&mut messages, &message.content, images)
            }
            "assistant" => push_assistant(&mut messages, &message.content, target, &mut names),
            "system" => {
                // Claude Code sends these mid-conversation; keep them in place.
                let text = content_text(&message.content);
                if !text.is_empty() {
                    messages.push(ChatMessage::text(Role::System, text));
                }
            }
            other => {
                return Err(TranslateError {
                    field: format!("messages[{i}].role"),
                    message: format!(
                        "unknown role \"{other}\"; expected user, assistant or system"
                    ),
                })
            }
        }
    }

    let mut tools = chat_tools(req, &mut names, target.ollama);
    if target.ollama {
        enforce_tool_choice_by_tools(&mut tools, req.tool_choice.as_ref(), &names);
    }
    let has_tools = !tools.is_empty();
    let (tool_choice, parallel_tool_calls) = match (&req.tool_choice, has_tools) {
        (Some(choice), true) => openai_tool_choice(choice, &mut names),
        _ => (None, None),
    };

    let stream = req.stream.unwrap_or(false);
    let max_tokens = match (req.max_tokens, target.max_tokens_limit) {
        (Some(asked), Some(limit)) => Some(asked.min(limit)),
        (asked, limit) => asked.or(limit),
    };

    Ok(Translated {
        request: ChatRequest {
            model: target.model,
            messages,
            tools: has_tools.then_some(tools),
            tool_choice,
            parallel_tool_calls,
            stop: req.stop_sequences.as_deref().filter(|s| !s.is_empty()),
            temperature: req.temperature,
            top_p: req.top_p,
            max_tokens,
            reasoning_effort: match target.caps.lacks_thinking() {
                // Ollama answers `reasoning_effort` to such a model with a 400.
                true => None,
                false => reasoning_effort(req.thinking.as_ref(), output_effort(req)),
            },
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
        },
        tool_names: names,
    })
}

/// The request's client tools as OpenAI functions (names registered in `names`).
/// Server tools (web_search_…, code_execution_…) have no schema and run on
/// Anthropic's side; an OpenAI upstream cannot run them.
fn chat_tools<'a>(
    req: &'a MessagesRequest,
    names: &mut ToolNameMap,
    ollama: bool,
) -> Vec<ChatTool<'a>> {
    req.tools
        .iter()
        .flatten()
        .filter(|t| t.kind.as_deref().is_none_or(|k| k == "custom"))
        .map(|t| {
            let parameters = match &t.input_schema {
                Some(schema) => Cow::Borrowed(&**schema),
                None => Cow::Borrowed(empty_object_schema()),
            };
            let (description, parameters) = if ollama {
                super::schema_notes::for_ollama(t.description.as_deref(), parameters)
            } else {
                (t.description.as_deref().map(Cow::Borrowed), parameters)
            };
            ChatTool {
                kind: "function",
                function: FunctionDef {
                    name: names.register(&t.name),
                    description,
                    parameters,
                },
            }
        })
        .collect()
}

/// The schema of a tool sent without one: an object with any properties.
fn empty_object_schema() -> &'static RawValue {
    static EMPTY: std::sync::OnceLock<Box<RawValue>> = std::sync::OnceLock::new();
    EMPTY.get_or_init(|| {
        RawValue::from_string(r#"{"type":"object","properties":{}}"#.to_owned())
            .expect("a JSON literal")
    })
}

/// Ollama ignores `tool_choice` (and `parallel_tool_calls`), so what it asks for is
/// enforced through the tools offered: `none` offers none, a named tool offers only
/// that one. (`any` cannot be expressed this way; the answer is taken as it comes.)
fn enforce_tool_choice_by_tools(
    tools: &mut Vec<ChatTool<'_>>,
    choice: Option<&ToolChoice>,
    names: &ToolNameMap,
) {
    match choice {
        Some(ToolChoice::None) => tools.clear(),
        Some(ToolChoice::Tool { name, .. }) => {
            tools.retain(|t| names.to_client(&t.function.name) == name.as_str());
        }
        _ => {}
    }
}

/// `tool_choice` auto/any/tool/none → auto/required/function/none, and
/// `parallel_tool_calls: false` when the client disabled parallel use.
fn openai_tool_choice(
    choice: &ToolChoice,
    names: &mut ToolNameMap,
) -> (Option<Value>, Option<bool>) {
    let (value, disable_parallel) = match choice {
        ToolChoice::Auto {
            disable_parallel_tool_use,
        } => (json!("auto"), *disable_parallel_tool_use),
        ToolChoice::Any {
            disable_parallel_tool_use,
        } => (json!("required"), *disable_parallel_tool_use),
        ToolChoice::Tool {
            name,
            disable_parallel_tool_use,
        } => (
            json!({"type": "function", "function": {"name": names.register(name)}}),
            *disable_parallel_tool_use,
        ),
        ToolChoice::None => (json!("none"), None),
    };
    (Some(value), disable_parallel.filter(|d| *d).map(|_| false))
}

/// The system prompt as one string, without the billing-header block.
fn system_text(system: Option<&System>) -> Option<Cow<'_, str>> {
    match system? {
        System::Text(s) if s.is_empty() => None,
        System::Text(s) => Some(Cow::Borrowed(s)),
        System::Blocks(blocks) => {
            let kept: Vec<&str> = blocks
                .iter()
                .filter(|b| b.kind == "text" && !b.text.starts_with(BILLING_HEADER_PREFIX))
                .map(|b| b.text.as_str())
                .collect();
            match kept.as_slice() {
                [] => None,
                [one] => Some(Cow::Borrowed(one)),
                many => Some(Cow::Owned(many.join("\n\n"))),
            }
        }
    }
}

/// The text of a message's content (text blocks only), for system messages.
fn content_text(content: &Content) -> Cow<'_, str> {
    match content {
        Content::Text(s) => Cow::Borrowed(s),
        Content::Blocks(blocks) => join_texts(blocks.iter().filter_map(|b| match b {
            ContentBlock::Known(KnownBlock::Text { text, .. }) => Some(text.as_str()),
            _ => None,
        })),
    }
}

fn join_texts<'a>(mut texts: impl Iterator<Item = &'a str>) -> Cow<'a, str> {
    let Some(first) = texts.next() else {
        return Cow::Borrowed("");
    };
    match texts.next() {
        None => Cow::Borrowed(first),
        Some(second) => {
            let mut joined = format!("{first}\n{second}");
            for t in texts {
                joined.push('\n');
                joined.push_str(t);
            }
            Cow::Owned(joined)
        }
    }
}

fn image_url(source: &ImageSource) -> Cow<'_, str> {
    match source {
        ImageSource::Base64 { media_type, data } => {
            Cow::Owned(format!("data:{media_type};base64,{data}"))
        }
        ImageSource::Url { url } => Cow::Borrowed(url),
    }
}

/// The image types Ollama decodes from a data URL; anything else is a 400 from it.
const OLLAMA_IMAGE_TYPES: &[&str] = &["image/jpeg", "image/jpg", "image/png", "image/webp"];

/// How the images of one user message are sent.
#[derive(Debug, Clone, Copy)]
struct Images<'m> {
    ollama: bool,
    /// The model is known to have no vision: its name, for the note.
    blind: Option<&'m str>,
    /// The message is the request's last: the image the user just gave.
    current: bool,
}

impl<'m> Images<'m> {
    fn for_target(target: &TargetOptions<'m>, current: bool) -> Images<'m> {
        Images {
            ollama: target.ollama,
            blind: target.caps.lacks_vision().then_some(target.model),
            current,
        }
    }
}

/// What an image just given becomes for a model without vision (the image route, when
/// set, took the request before it got here): the model is asked to tell the user.
pub fn blind_image_note(model: &str) -> String {
    format!(
        "[The user attached an image here, but the local model ({model}) cannot see images. \
         Tell the user that, and that a cloud model with vision can read it: set Router.image \
         in ~/.claude-code-router/config.json (for example \"anthropic,claude-haiku-4-5\"), \
         or run `ccr-setup init` with a cloud API key.]"
    )
}

/// What an image earlier in the conversation becomes for a model without vision: one
/// line, so the history never fails a later turn.
pub const BLIND_EARLIER_NOTE: &str =
    "[an image was attached here; the local model cannot see images]";

/// An image as a content part. A model without vision gets a note instead (an image
/// reaches Ollama's runner unchecked and fails the turn). Ollama fetches no URLs and
/// reads only JPEG, PNG and WebP, and answers anything else with a 400 that would fail
/// the whole turn; such an image becomes a short note, so the model knows one was
/// there and the turn goes on.
fn image_part<'a>(source: &'a ImageSource, images: Images<'_>) -> ContentPart<'a> {
    if let Some(model) = images.blind {
        let text = match images.current {
            true => blind_image_note(model),
            false => BLIND_EARLIER_NOTE.to_owned(),
        };
        return ContentPart::Text {
            text: Cow::Owned(text),
        };
    }
    if images.ollama {
        let note = match source {
            ImageSource::Url { url } => Some(format!(
                "[an image was attached by URL ({}); the local model cannot fetch it]",
                crate::config::redact_url(url)
            )),
            ImageSource::Base64 { media_type, .. }
                if !OLLAMA_IMAGE_TYPES.contains(&media_type.to_ascii_lowercase().as_str()) =>
            {
                Some(format!(
                    "[an image ({media_type}) was attached; the local model reads only JPEG, PNG and WebP]"
                ))
            }
            ImageSource::Base64 { .. } => None,
        };
        if let Some(note) = note {
            return ContentPart::Text {
                text: Cow::Owned(note),
            };
        }
    }
    ContentPart::ImageUrl {
        image_url: ImageUrl {
            url: image_url(source),
        },
    }
}

/// A user turn: its tool results become `tool` messages (first, because they must
/// follow the assistant's tool calls), then the rest becomes one user message.
fn push_user<'a>(out: &mut Vec<ChatMessage<'a>>, content: &'a Content, images: Images<'_>) {
    let blocks = match content {
        Content::Text(s) => {
            out.push(ChatMessage::text(Role::User, Cow::Borrowed(s)));
            return;
        }
        Content::Blocks(blocks) => blocks,
    };
    let mut parts: Vec<ContentPart<'a>> = Vec::new();
    // Images returned by tools: OpenAI tool messages hold text only, so they follow
    // as a user message.
    let mut tool_images: Vec<ContentPart<'a>> = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Known(KnownBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
                ..
            }) => {
                let text = tool_result_text(content.as_ref(), &mut tool_images, images);
                let text = if *is_error == Some(true) {
                    Cow::Owned(format!("{TOOL_ERROR_PREFIX}{text}"))
                } else {
                    text
                };
                out.push(ChatMessage {
                    role: Role::Tool,
                    content: Some(ChatContent::Text(text)),
                    tool_calls: None,
                    tool_call_id: Some(tool_use_id),
                    reasoning_content: None,
                    reasoning: None,
                });
            }
            ContentBlock::Known(KnownBlock::Text { text, .. }) => parts.push(ContentPart::Text {
                text: Cow::Borrowed(text),
            }),
            ContentBlock::Known(KnownBlock::Image { source, .. }) => {
                parts.push(image_part(source, images))
            }
            // Thinking in a user turn, documents, unknown kinds: nothing an OpenAI
            // upstream can read.
            _ => {}
        }
    }
    parts.extend(tool_images);
    if parts.is_empty() {
        return;
    }
    let all_text = parts.iter().all(|p| matches!(p, ContentPart::Text { .. }));
    let content = if all_text {
        // Plain strings are understood by every server; arrays are not.
        let mut texts = parts.into_iter().filter_map(|p| match p {
            ContentPart::Text { text } => Some(text),
            ContentPart::ImageUrl { .. } => None,
        });
        let first = texts.next().unwrap_or_default();
        let joined = texts.fold(first, |mut acc, t| {
            let s = acc.to_mut();
            s.push('\n');
            s.push_str(&t);
            acc
        });
        ChatContent::Text(joined)
    } else {
        ChatContent::Parts(parts)
    };
    out.push(ChatMessage {
        role: Role::User,
        content: Some(content),
        tool_calls: None,
        tool_call_id: None,
        reasoning_content: None,
        reasoning: None,
    });
}

fn tool_result_text<'a>(
    content: Option<&'a ToolResultContent>,
    parts: &mut Vec<ContentPart<'a>>,
    images: Images<'_>,
) -> Cow<'a, str> {
    match content {
        None => Cow::Borrowed(""),
        Some(ToolResultContent::Text(s)) => Cow::Borrowed(s),
        Some(ToolResultContent::Blocks(blocks)) => {
            for block in blocks {
                if let ContentBlock::Known(KnownBlock::Image { source, .. }) = block {
                    parts.push(image_part(source, images));
                }
            }
            join_texts(blocks.iter().filter_map(|b| match b {
                ContentBlock::Known(KnownBlock::Text { text, .. }) => Some(text.as_str()),
                _ => None,
            }))
        }
    }
}

fn push_assistant<'a>(
    out: &mut Vec<ChatMessage<'a>>,
    content: &'a Content,
    target: &TargetOptions<'a>,
    names: &mut ToolNameMap,
) {
    let blocks = match content {
        Content::Text(s) => {
            out.push(ChatMessage::text(Role::Assistant, Cow::Borrowed(s)));
            return;
        }
        Content::Blocks(blocks) => blocks,
    };
    let mut texts: Vec<&'a str> = Vec::new();
    let mut reasoning: Vec<&'a str> = Vec::new();
    let mut calls: Vec<ToolCall<'a>> = Vec::new();
    for block in blocks {
        match block {
            ContentBlock::Known(KnownBlock::Text { text, .. }) => texts.push(text),
            ContentBlock::Known(KnownBlock::ToolUse {
                id, name, input, ..
            }) => calls.push(ToolCall {
                id,
                kind: "function",
                function: FunctionCall {
                    name: names.register(name),
                    arguments: match input {
                        Value::Null => "{}".to_owned(),
                        other => other.to_string(),
                    },
                },
            }),
            ContentBlock::Known(KnownBlock::Thinking { thinking, .. })
                if target.reasoning_in_history =>
            {
                reasoning.push(thinking)
            }
            _ => {}
        }
    }
    if texts.is_empty() && calls.is_empty() && reasoning.is_empty() {
        return;
    }
    let text = join_texts(texts.into_iter());
    let history = (!reasoning.is_empty()).then(|| join_texts(reasoning.into_iter()));
    let (reasoning_content, reasoning) = match target.ollama {
        true => (None, history),
        false => (history, None),
    };
    out.push(ChatMessage {
        role: Role::Assistant,
        content: if text.is_empty() && !calls.is_empty() {
            None
        } else {
            Some(ChatContent::Text(text))
        },
        tool_calls: (!calls.is_empty()).then_some(calls),
        tool_call_id: None,
        reasoning_content,
        reasoning,
    });
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
