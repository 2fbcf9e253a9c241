//! The probes: one streamed chat and one tool call, against Ollama's OpenAI endpoint or
//! a Messages endpoint (the proxy), plus the capability and load checks.
//!
//! Each probe returns numbers (load time, time to first token, tokens/s) rather than
//! printing, so `up` can show them in one line or as JSON.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::{json, Value};
use url::Url;

use crate::ollama::client::{chat_completion_at, chat_completion_stream_at};
use crate::ollama::{OllamaClient, OllamaError};
use crate::proxy::wire::lines::preview;

/// Which part of the smoke test failed, and why.
#[derive(Debug, thiserror::Error)]
pub enum SmokeError {
    #[error("{model} lacks the `tools` capability (it has: {capabilities}); Claude Code needs tool calls, so choose a model that supports them, e.g. gpt-oss:20b")]
    NoTools { model: String, capabilities: String },
    #[error("{model} did not appear in /api/ps after loading it")]
    NotLoaded { model: String },
    #[error(transparent)]
    Ollama(#[from] OllamaError),
    #[error("the answer had no text")]
    EmptyAnswer,
    #[error("the model answered without calling the get_time tool{}", answer.as_ref().map(|a| format!(": {a:?}")).unwrap_or_default())]
    NoToolCall { answer: Option<String> },
    #[error("the proxy answered HTTP {status}: {message}")]
    Proxy { status: u16, message: String },
    #[error("unexpected answer: {0}")]
    Decode(String),
}

/// Timings of one generated answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChatMetrics {
    pub time_to_first_token: Duration,
    pub total: Duration,
    pub output_tokens: u64,
}

impl ChatMetrics {
    /// Generation speed after the first token.
    pub fn tokens_per_second(&self) -> Option<f64> {
        let gen = self
            .total
            .checked_sub(self.time_to_first_token)?
            .as_secs_f64();
        (self.output_tokens > 1 && gen > 0.0).then(|| (self.output_tokens - 1) as f64 / gen)
    }
}

const TOOL_NAME: &str = "get_time";
const TOOL_DESCRIPTION: &str = "Get the current time in a timezone.";

/// The parameters of the tiny tool the tool-call probes offer.
fn get_time_schema() -> Value {
    json!({"type": "object", "properties": {"timezone": {"type": "string", "description": "IANA timezone, e.g. UTC"}}, "required": ["timezone"]})
}

/// The tiny tool the tool-call probe offers, in OpenAI's shape.
pub fn get_time_tool_openai() -> Value {
    json!([{
        "type": "function",
        "function": {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "parameters": get_time_schema()}
    }])
}

/// The same tool in Anthropic's shape, for the probes through the proxy.
fn get_time_tool_anthropic() -> Value {
    json!([{"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "input_schema": get_time_schema()}])
}

/// What a streamed chat probe counts as the answer arrives; one tally for both APIs.
struct ChatTally {
    start: Instant,
    first: Option<Duration>,
    text: String,
    pieces: u64,
}

impl ChatTally {
    fn new(start: Instant) -> ChatTally {
        ChatTally {
            start,
            first: None,
            text: String::new(),
            pieces: 0,
        }
    }

    /// One generated piece at `at`; `is_text` when it belongs to the answer's text
    /// (reasoning times the first token but is not the answer).
    fn piece(&mut self, at: Instant, piece: &str, is_text: bool) {
        if !piece.is_empty() {
            self.first.get_or_insert(at - self.start);
            self.pieces += 1;
        }
        if is_text {
            self.text.push_str(piece);
        }
    }

    /// The metrics, with the output tokens the server reported (pieces counted when it
    /// reported none, or 0); an answer without text is a failure.
    fn finish(self, reported_tokens: Option<u64>) -> Result<ChatMetrics, SmokeError> {
        let total = self.start.elapsed();
        if self.text.trim().is_empty() {
            return Err(SmokeError::EmptyAnswer);
        }
        Ok(ChatMetrics {
            time_to_first_token: self.first.unwrap_or(total),
            total,
            output_tokens: reported_tokens.filter(|n| *n > 0).unwrap_or(self.pieces),
        })
    }
}

const CHAT_PROMPT: &str = "Reply with one short sentence: say hello.";
const TOOL_PROMPT: &str = "What time is it in UTC? Use the get_time tool.";

/// `/api/show` capabilities must include `tools`.
pub async fn check_tools(
    client: &OllamaClient,
    model: &str,
) -> Result<crate::ollama::ModelDetails, SmokeError> {
    let details = client.show(model).await?;
    if !details.has_capability("tools") {
        return Err(SmokeError::NoTools {
            model: model.to_owned(),
            capabilities: details.capabilities.join(", "),
        });
    }
    Ok(details)
}

/// Load the model and read the context that took effect from `/api/ps`.
pub async fn load_and_read_context(
    client: &OllamaClient,
    model: &str,
    keep_alive: &str,
) -> Result<(Duration, Option<u64>), SmokeError> {
    let start = Instant::now();
    client.load(model, Some(keep_alive)).await?;
    let took = start.elapsed();
    let loaded = client
        .loaded(model)
        .await?
        .ok_or_else(|| SmokeError::NotLoaded {
            model: model.to_owned(),
        })?;
    Ok((took, loaded.context_length))
}

/// One streamed chat completion at an OpenAI-compatible endpoint.
pub async fn chat_probe(
    http: &reqwest::Client,
    url: Url,
    model: &str,
) -> Result<ChatMetrics, SmokeError> {
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": CHAT_PROMPT}],
        "max_tokens": 256,
    });
    let mut tally = ChatTally::new(Instant::now());
    let mut stream = chat_completion_stream_at(http, url, &body).await?;
    let mut usage = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if let Some(u) = chunk.usage {
            usage = Some(u.completion_tokens);
        }
        for choice in chunk.choices {
            let delta = choice.delta;
            let piece = [delta.content, delta.reasoning, delta.reasoning_content]
                .into_iter()
                .flatten()
                .collect::<String>();
            // Reasoning counts as text here, as it always has direct to Ollama.
            tally.piece(Instant::now(), &piece, true);
        }
    }
    tally.finish(usage)
}

/// One tool-call request at an OpenAI-compatible endpoint; the model must call
/// `get_time`. gpt-oss through Ollama sometimes fails with HTTP 500 `error parsing tool
/// call`; that is retried once, because it is a sampling accident, not a broken setup.
pub async fn tool_probe(
    http: &reqwest::Client,
    url: Url,
    model: &str,
) -> Result<Duration, SmokeError> {
    let body = json!({
        "model": model,
        "messages": [{"role": "user", "content": TOOL_PROMPT}],
        "tools": get_time_tool_openai(),
        "max_tokens": 512,
    });
    let start = Instant::now();
    let mut attempt = 0;
    let answer = loop {
        attempt += 1;
        match chat_completion_at(http, url.clone(), &body).await {
            Err(OllamaError::Status {
                status: 500,
                ref message,
                ..
            }) if attempt == 1 && message.contains("error parsing tool call") => continue,
            other => break other?,
        }
    };
    let msg = answer
        .choices
        .into_iter()
        .next()
        .map(|c| c.message)
        .unwrap_or_default();
    let calls = msg.tool_calls.as_deref().unwrap_or_default();
    if calls
        .iter()
        .any(|t| t.function.name.as_deref() == Some(TOOL_NAME))
    {
        Ok(start.elapsed())
    } else {
        Err(SmokeError::NoToolCall {
            answer: msg.content.filter(|c| !c.is_empty()),
        })
    }
}

/// One streamed Anthropic Messages request (as Claude Code sends it) at `url`
/// (`…/v1/messages`), e.g. through the bundled proxy.
pub async fn messages_chat_probe(
    http: &reqwest::Client,
    url: Url,
    model: &str,
    api_key: Option<&str>,
) -> Result<ChatMetrics, SmokeError> {
    let body = messages_body(model, 256, CHAT_PROMPT, None);
    let mut tally = ChatTally::new(Instant::now());
    let events = messages_stream(http, url, &body, api_key).await?;
    let mut output_tokens = None;
    for (at, ev) in events {
        match ev.get("type").and_then(Value::as_str) {
            Some("content_block_delta") => {
                let d = &ev["delta"];
                let piece = d["text"].as_str().or(d["thinking"].as_str()).unwrap_or("");
                tally.piece(at, piece, d["type"] == "text_delta");
            }
            Some("message_delta") => {
                let reported = ev.pointer("/usage/output_tokens").and_then(Value::as_u64);
                output_tokens = reported.or(output_tokens);
            }
            _ => {}
        }
    }
    tally.finish(output_tokens)
}

/// A streamed Messages request for `prompt`, with `tools` when given, and thinking as
/// Claude Code asks for it on every main turn (adaptive, `effort: "high"`): a local
/// model without thinking must still answer, or `up` would pass while every Claude
/// Code turn fails.
fn messages_body(model: &str, max_tokens: u32, prompt: &str, tools: Option<Value>) -> Value {
    let mut body = json!({
        "model": model, "max_tokens": max_tokens, "stream": true,
        "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
        "messages": [{"role": "user", "content": prompt}],
    });
    if let Some(tools) = tools {
        body["tools"] = tools;
    }
    body
}

/// One Anthropic Messages tool-call request at `url`: the answer must hold a
/// `tool_use` block for `get_time`.
pub async fn messages_tool_probe(
    http: &reqwest::Client,
    url: Url,
    model: &str,
    api_key: Option<&str>,
) -> Result<Duration, SmokeError> {
    let body = messages_body(model, 512, TOOL_PROMPT, Some(get_time_tool_anthropic()));
    let start = Instant::now();
    let events = messages_stream(http, url, &body, api_key).await?;
    let mut text = String::new();
    for (_, ev) in &events {
        if ev["type"] == "content_block_start"
            && ev.pointer("/content_block/type") == Some(&json!("tool_use"))
            && ev.pointer("/content_block/name") == Some(&json!(TOOL_NAME))
        {
            return Ok(start.elapsed());
        }
        if let Some(t) = ev.pointer("/delta/text").and_then(Value::as_str) {
            text.push_str(t);
        }
    }
    Err(SmokeError::NoToolCall {
        answer: (!text.is_empty()).then_some(text),
    })
}

/// POST a streaming Messages request and collect `(arrival time, event data)` pairs.
/// An `error` event (a failure after HTTP 200) ends it with that error's message.
async fn messages_stream(
    http: &reqwest::Client,
    url: Url,
    body: &Value,
    api_key: Option<&str>,
) -> Result<Vec<(Instant, Value)>, SmokeError> {
    let mut req = http
        .post(url.clone())
        .header("anthropic-version", "2023-06-01")
        .timeout(crate::ollama::client::MODEL_TIMEOUT)
        .json(body);
    if let Some(k) = api_key {
        req = req.header("x-api-key", k);
    }
    let resp = req.send().await.map_err(|e| SmokeError::Proxy {
        status: 0,
        message: e.to_string(),
    })?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        return Err(SmokeError::Proxy {
            status: status.as_u16(),
            message: crate::ollama::client::error_text(&text),
        });
    }
    let mut out = Vec::new();
    let events = crate::ollama::client::sse_data(resp.bytes_stream(), url.to_string());
    let mut events = std::pin::pin!(events);
    while let Some(data) = events.next().await {
        let data = data.map_err(|e| SmokeError::Proxy {
            status: 200,
            message: crate::diagnostic::one_line(&e),
        })?;
        let v: Value = serde_json::from_str(&data)
            .map_err(|e| SmokeError::Decode(format!("{e}: {}", preview(data.as_bytes(), 200))))?;
        if v["type"] == "error" {
            return Err(SmokeError::Proxy {
                status: 200,
                message: v
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("stream error")
                    .to_owned(),
            });
        }
        out.push((Instant::now(), v));
    }
    if !out.iter().any(|(_, v)| v["type"] == "message_stop") {
        return Err(SmokeError::Decode(
            "the stream ended before message_stop".into(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_times_the_first_piece_and_falls_back_to_counted_pieces() {
        let start = Instant::now();
        let mut t = ChatTally::new(start);
        t.piece(start + Duration::from_millis(5), "", true);
        t.piece(start + Duration::from_millis(40), "thinking", false);
        t.piece(start + Duration::from_millis(90), "Hello", true);
        assert_eq!(t.first, Some(Duration::from_millis(40)));
        // A reported 0 is no report: the two pieces count (both probes, one rule).
        let m = t.finish(Some(0)).unwrap();
        assert_eq!(m.output_tokens, 2);
        let mut reported = ChatTally::new(start);
        reported.piece(start, "Hi", true);
        assert_eq!(reported.finish(Some(7)).unwrap().output_tokens, 7);
        // Reasoning alone is not an answer.
        let mut only_thinking = ChatTally::new(start);
        only_thinking.piece(start, "hmm", false);
        assert!(matches!(
            only_thinking.finish(None),
            Err(SmokeError::EmptyAnswer)
        ));
    }

    #[test]
    fn the_proxy_smoke_test_asks_for_thinking_as_claude_code_does() {
        let body = messages_body("m", 256, "hi", None);
        assert_eq!(body["thinking"], json!({"type": "adaptive"}));
        assert_eq!(body["output_config"]["effort"], "high");
    }

    #[test]
    fn tokens_per_second_excludes_the_first_token() {
        let m = ChatMetrics {
            time_to_first_token: Duration::from_secs(1),
            total: Duration::from_secs(3),
            output_tokens: 21,
        };
        assert_eq!(m.tokens_per_second(), Some(10.0));
        let one = ChatMetrics {
            output_tokens: 1,
            ..m
        };
        assert_eq!(one.tokens_per_second(), None);
    }
}
