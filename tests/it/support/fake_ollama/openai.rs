//! The fake's `/v1/chat/completions` (Ollama's OpenAI compatibility layer).
//!
//! Requests are checked as Ollama's middleware decodes them (images and tool schemas,
//! 400 before the model is looked up), then the prompt is truncated silently to the
//! context, then the answer is text, one whole tool call, or gpt-oss's tool-call parse
//! failure. `tool_choice` and `parallel_tool_calls` are never read: Ollama drops them.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::StreamExt;
use serde_json::{json, Value};

use super::{model_field, not_found_text, ChatBehaviour, Ctx};

const CREATED: u64 = 1_767_225_600;
/// The arguments of every tool call the fake makes.
pub const TOOL_ARGUMENTS: &str = "{\"timezone\":\"UTC\"}";

/// The runner's (llama-server's) answer to an image for a model without a projector
/// (tools/server/server-common.cpp), which Ollama passes on as the error message.
pub const RUNNER_IMAGE_ERROR: &str = r#"{"error":{"code":500,"message":"image input is not supported - hint: if this is unexpected, you may need to provide the mmproj","type":"server_error"}}"#;

/// Does `reasoning_effort` turn thinking on (openai/openai.go `thinkFromReasoningEffort`,
/// api/types.go `ThinkValue.Bool`)? `none` turns it off; `minimal` is low; `xhigh` is max.
fn thinks(body: &Value) -> bool {
    matches!(
        body["reasoning_effort"].as_str(),
        Some("minimal" | "low" | "medium" | "high" | "max" | "xhigh" | "ultra")
    )
}

/// Any image part in any message.
fn has_image(body: &Value) -> bool {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .any(|p| p["type"] == "image_url")
}

/// An OpenAI-style error body, as Ollama's middleware writes them.
fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": null}});
    (status, Json(body)).into_response()
}

/// Image parts Ollama cannot decode: only base64 data URLs of jpeg, jpg, png or webp
/// (or no media type at all) are taken.
fn check_images(messages: &[Value]) -> Result<(), String> {
    const OK: [&str; 5] = [
        "data:image/jpeg;base64,",
        "data:image/jpg;base64,",
        "data:image/png;base64,",
        "data:image/webp;base64,",
        "data:;base64,",
    ];
    for part in messages
        .iter()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter(|p| p["type"] == "image_url")
    {
        let url = part["image_url"]["url"]
            .as_str()
            .or_else(|| part["image_url"].as_str())
            .unwrap_or("");
        if !OK.iter().any(|p| url.starts_with(p)) {
            return Err("invalid image input".into());
        }
    }
    Ok(())
}

/// A tool schema must fit Ollama's fixed struct: `properties` maps names to objects
/// (a boolean sub-schema such as `"x": true` does not decode), `required` is strings.
fn check_schema(schema: &Value, at: &str) -> Result<(), String> {
    let unfit = |what: &str, go_type: &str| {
        Err(format!(
            "json: cannot unmarshal {what} into Go struct field {at} of type {go_type}"
        ))
    };
    let Some(obj) = schema.as_object() else {
        return unfit(json_kind(schema), "api.ToolProperty");
    };
    if let Some(props) = obj.get("properties") {
        let Some(props) = props.as_object() else {
            return unfit(json_kind(props), "map[string]api.ToolProperty");
        };
        for p in props.values() {
            check_schema(p, &format!("{at}.properties"))?;
        }
    }
    if let Some(req) = obj.get("required") {
        if !req
            .as_array()
            .is_some_and(|r| r.iter().all(Value::is_string))
        {
            return unfit(json_kind(req), "[]string");
        }
    }
    if let Some(items) = obj.get("items").filter(|i| i.is_object()) {
        check_schema(items, &format!("{at}.items"))?;
    }
    // `anyOf` is kept (api/types.go `ToolProperty.AnyOf []ToolProperty`): each member
    // must decode as a property.
    if let Some(members) = obj.get("anyOf") {
        let Some(members) = members.as_array() else {
            return unfit(json_kind(members), "[]api.ToolProperty");
        };
        for m in members {
            check_schema(m, &format!("{at}.anyOf"))?;
        }
    }
    Ok(())
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Null => "null",
        Value::Object(_) => "object",
    }
}

fn check_request(body: &Value) -> Result<(), String> {
    let empty = Vec::new();
    check_images(body["messages"].as_array().unwrap_or(&empty))?;
    for tool in body["tools"].as_array().unwrap_or(&empty) {
        let params = &tool["function"]["parameters"];
        if !params.is_null() {
            check_schema(params, "ChatCompletionRequest.tools.function.parameters")?;
        }
    }
    Ok(())
}

/// The fake's tokenizer: a quarter of the characters, rounded up, plus 4 per message.
pub fn message_tokens(m: &Value) -> u64 {
    let text: String = match &m["content"] {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    };
    (text.chars().count() as u64).div_ceil(4) + 4
}

/// Ollama's silent truncation: drop the oldest non-system messages (never the last)
/// until the prompt fits the context. Returns the kept messages and `prompt_tokens`.
fn truncate(messages: &[Value], context: u64) -> (Vec<Value>, u64) {
    let mut kept: Vec<Value> = messages.to_vec();
    let total = |k: &[Value]| k.iter().map(message_tokens).sum::<u64>();
    while total(&kept) > context {
        let last = kept.len().saturating_sub(1);
        match kept.iter().position(|m| m["role"] != "system") {
            Some(i) if i < last => kept.remove(i),
            _ => break,
        };
    }
    let tokens = total(&kept).min(context);
    (kept, tokens)
}

/// What the model produces for this request.
enum Answer {
    Text { words: Vec<String>, finish: String },
    ToolCall { name: String, id: String },
    ParseFailure,
    Repetition,
}

fn answer(ctx: &Ctx, body: &Value, chat: &ChatBehaviour) -> Answer {
    if body["stream"] == true {
        let mut s = ctx.state.lock().unwrap();
        if s.repetitions_done < chat.repetitions {
            s.repetitions_done += 1;
            return Answer::Repetition;
        }
    }
    let tool = body["tools"][0]["function"]["name"].as_str();
    match tool {
        Some(_) if chat.tool_call_fails => return Answer::ParseFailure,
        Some(name) if !chat.tool_call_ignored => {
            return Answer::ToolCall {
                name: name.to_owned(),
                id: ctx.call_id(),
            };
        }
        _ => {}
    }
    let mut text = chat.answer.clone();
    let mut finish = "stop";
    let stops: Vec<&str> = match &body["stop"] {
        Value::String(s) => vec![s.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if let Some(at) = stops.iter().filter_map(|s| text.find(s)).min() {
        text.truncate(at); // a stop-sequence hit is reported as a plain "stop"
    }
    let mut words: Vec<String> = text.split_inclusive(' ').map(str::to_owned).collect();
    if let Some(max) = body["max_tokens"].as_u64() {
        if (max as usize) < words.len() {
            words.truncate(max as usize);
            finish = "length";
        }
    }
    Answer::Text {
        words,
        finish: finish.into(),
    }
}

pub async fn chat_completions(State(ctx): State<Ctx>, Json(body): Json<Value>) -> Response {
    if let Some(r) = ctx.enter("/v1/chat/completions", Some(&body)) {
        return r;
    }
    if let Err(message) = check_request(&body) {
        return error(StatusCode::BAD_REQUEST, "invalid_request_error", &message);
    }
    let name = model_field(&body);
    let Some(caps) = ctx.capabilities(&name) else {
        let message = not_found_text(&name);
        return error(StatusCode::NOT_FOUND, "not_found_error", &message);
    };
    // server/routes.go: thinking asked of a model without the capability is a 400
    // naming the model as the request gave it (only `/v1/messages` relaxes it).
    if thinks(&body) && !caps.iter().any(|c| c == "thinking") {
        let message = format!("{name:?} does not support thinking");
        return error(StatusCode::BAD_REQUEST, "invalid_request_error", &message);
    }
    if let Some(failed) = super::load_failure(&ctx) {
        return failed;
    }
    let Some(context) = ctx.load(&name).await else {
        let message = not_found_text(&name);
        return error(StatusCode::NOT_FOUND, "not_found_error", &message);
    };
    // Vision is not checked: the image reaches the runner (llama-server without a
    // projector), whose 500 body Ollama passes on as the message, with its status.
    if has_image(&body) && !caps.iter().any(|c| c == "vision") {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            RUNNER_IMAGE_ERROR,
        );
    }
    let empty = Vec::new();
    let (kept, prompt_tokens) = truncate(body["messages"].as_array().unwrap_or(&empty), context);
    ctx.state.lock().unwrap().prompts.push(kept);
    let chat = ctx.config().chat;
    tokio::time::sleep(chat.first_token_delay).await;
    let answer = answer(&ctx, &body, &chat);
    let stream = body["stream"].as_bool().unwrap_or(false);
    let reply = Reply {
        name,
        prompt_tokens,
        reasoning: chat.reasoning,
    };
    match (stream, answer) {
        (false, Answer::ParseFailure) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "error parsing tool call: raw='{\"timezone\":', err=unexpected end of JSON input",
        ),
        (false, answer) => Json(reply.whole(&answer)).into_response(),
        (true, answer) => {
            let usage = body["stream_options"]["include_usage"].as_bool() == Some(true);
            sse(reply.chunks(&answer, usage))
        }
    }
}

struct Reply {
    name: String,
    prompt_tokens: u64,
    reasoning: String,
}

impl Reply {
    fn usage(&self, completion: usize) -> Value {
        json!({"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
               "total_tokens": self.prompt_tokens + completion as u64})
    }

    fn tool_calls(name: &str, id: &str) -> Value {
        json!([{"id": id, "index": 0, "type": "function",
                "function": {"name": name, "arguments": TOOL_ARGUMENTS}}])
    }

    fn whole(&self, answer: &Answer) -> Value {
        let (message, finish, completion) = match answer {
            Answer::Text { words, finish } => (
                json!({"role": "assistant", "content": words.concat(), "reasoning": self.reasoning}),
                finish.as_str(),
                words.len(),
            ),
            Answer::ToolCall { name, id } => (
                json!({"role": "assistant", "content": "", "reasoning": self.reasoning,
                       "tool_calls": Self::tool_calls(name, id)}),
                "tool_calls",
                1,
            ),
            Answer::ParseFailure | Answer::Repetition => unreachable!("streamed only"),
        };
        json!({
            "id": "chatcmpl-123", "object": "chat.completion", "created": CREATED,
            "model": self.name, "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": message, "finish_reason": finish}],
            "usage": self.usage(completion),
        })
    }

    fn chunk(&self, delta: Value, finish: Value) -> String {
        json!({"id": "chatcmpl-123", "object": "chat.completion.chunk", "created": CREATED,
               "model": self.name, "system_fingerprint": "fp_ollama",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
        .to_string()
    }

    /// The `data:` payloads of a streamed answer, `[DONE]` included when it has one.
    fn chunks(&self, answer: &Answer, include_usage: bool) -> Vec<String> {
        let mut out: Vec<String> = self
            .reasoning
            .split_inclusive(' ')
            .map(|r| {
                self.chunk(
                    json!({"role": "assistant", "content": "", "reasoning": r}),
                    Value::Null,
                )
            })
            .collect();
        let (finish, completion) = match answer {
            Answer::ParseFailure => {
                // The harmony parser fails at the end: one empty chunk, then the
                // connection ends with no `[DONE]` and no error text.
                let empty = json!({"model": "", "choices": [{"delta": {"content": ""}, "finish_reason": null}]});
                out.push(empty.to_string());
                return out;
            }
            Answer::Repetition => {
                // The same token 31 times (the first, then 30 repeats), then nothing.
                for _ in 0..31 {
                    let delta = json!({"role": "assistant", "content": "", "reasoning": " wait"});
                    out.push(self.chunk(delta, Value::Null));
                }
                return out;
            }
            Answer::ToolCall { name, id } => {
                let delta = json!({"role": "assistant", "content": "", "tool_calls": Self::tool_calls(name, id)});
                out.push(self.chunk(delta, Value::Null));
                ("tool_calls", 1)
            }
            Answer::Text { words, finish } => {
                for w in words {
                    out.push(self.chunk(json!({"role": "assistant", "content": w}), Value::Null));
                }
                (finish.as_str(), words.len())
            }
        };
        out.push(self.chunk(json!({}), json!(finish)));
        if include_usage {
            let usage = json!({"id": "chatcmpl-123", "object": "chat.completion.chunk",
                "created": CREATED, "model": self.name, "system_fingerprint": "fp_ollama",
                "choices": [], "usage": self.usage(completion)});
            out.push(usage.to_string());
        }
        out.push("[DONE]".into());
        out
    }
}

/// A `text/event-stream` answer, one event every 2 ms.
pub fn sse(events: Vec<String>) -> Response {
    let stream = futures_util::stream::iter(events).then(|e| async move {
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok::<_, Infallible>(bytes::Bytes::from(format!("data: {e}\n\n")))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}
