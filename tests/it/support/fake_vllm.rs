//! A fake vLLM serving gpt-oss (`vllm serve openai/gpt-oss-20b --enable-auto-tool-choice
//! --tool-call-parser openai --reasoning-parser openai_gptoss`), built on the scripted
//! upstream and following docs/vllm-facts.md:
//! * `GET /v1/models`: a list of model cards, `owned_by: "vllm"`, with `max_model_len`;
//! * a prompt of `max_model_len` tokens or more is a 400 `BadRequestError` "This model's
//!   maximum context length is M tokens. However, your request has N input tokens.…",
//!   and prompt + `max_tokens` over the limit is the other 400 ("'max_tokens' or
//!   'max_completion_tokens' is too large");
//! * an unknown model is a 404 `NotFoundError`;
//! * a stream: a first chunk with `role` and empty content, reasoning deltas in
//!   `reasoning` (current source) or `reasoning_content` (older releases), content or
//!   tool-call deltas (the call's name first with empty arguments, then the arguments
//!   in pieces), a finish chunk (`tool_calls` or `stop`), the usage chunk when asked
//!   (`choices: []`), `data: [DONE]`;
//! * a tool call whose arguments are not JSON is still sent as a tool call, with the
//!   raw text as `arguments` (vllm/tool_parsers/openai_tool_parser.py logs "Error
//!   decoding JSON tool call from response." and keeps the text);
//! * an exception in the stream generator after HTTP 200 is `data: {"error": {…}}`
//!   followed by `data: [DONE]`.
//!
//! Tokens are counted as 4 bytes of the request's `messages` and `tools` JSON: close
//! enough for the limits, not the model's tokenizer.

use std::time::Duration;

use serde_json::{json, Value};

use super::openai_upstream::{FakeUpstream, Recorded, Reply, SseEnd};

/// Which field a release streams reasoning in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasoningField {
    /// The current source (`DeltaMessage.reasoning`).
    Reasoning,
    /// Older releases (`DeltaMessage.reasoning_content`).
    ReasoningContent,
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub enum Answer {
    Text {
        reasoning: String,
        text: String,
    },
    /// `arguments` is sent as is, valid JSON or not.
    ToolCall {
        reasoning: String,
        name: String,
        arguments: String,
    },
    /// HTTP 200, some reasoning, then the generator's exception.
    StreamError {
        reasoning: String,
        message: String,
    },
}

pub struct FakeVllm {
    pub upstream: FakeUpstream,
    pub model: String,
    pub max_model_len: u64,
}

impl FakeVllm {
    /// Serve `model` with `max_model_len`, answering the n-th chat request with
    /// `answers[n]` (the last one repeats).
    pub async fn start(
        model: &str,
        max_model_len: u64,
        field: ReasoningField,
        answers: Vec<Answer>,
    ) -> FakeVllm {
        assert!(!answers.is_empty());
        let models = json!({"object": "list", "data": [{
            "id": model, "object": "model", "created": 1_765_000_000, "owned_by": "vllm",
            "root": model, "parent": null, "max_model_len": max_model_len,
            "permission": [{"id": "modelperm-1", "object": "model_permission", "created": 1_765_000_000,
                "allow_create_engine": false, "allow_sampling": true, "allow_logprobs": true,
                "allow_search_indices": false, "allow_view": true, "allow_fine_tuning": false,
                "organization": "*", "group": null, "is_blocking": false}]}]});
        let served = model.to_owned();
        let upstream = FakeUpstream::start_serving(Some(models), move |req, n| {
            if let Some(refusal) = refuse(req, &served, max_model_len) {
                return refusal;
            }
            let answer = &answers[n.min(answers.len() - 1)];
            let stream = req.body["stream"].as_bool().unwrap_or(false);
            assert!(stream, "the fake vLLM answers streams only");
            let usage = req.body["stream_options"]["include_usage"].as_bool() == Some(true);
            let transcript = transcript(&served, field, answer, prompt_tokens(req), usage);
            Reply::sse_events(&transcript, Duration::from_millis(2), SseEnd::Finish)
        })
        .await;
        FakeVllm {
            upstream,
            model: model.to_owned(),
            max_model_len,
        }
    }

    pub fn url(&self) -> String {
        self.upstream.url("/v1/chat/completions")
    }
}

/// The fake's token count of a request.
pub fn prompt_tokens(req: &Recorded) -> u64 {
    let bytes = req.body["messages"].to_string().len() + req.body["tools"].to_string().len();
    (bytes / 4) as u64
}

fn error(status: u16, message: &str, kind: &str, param: Value) -> Reply {
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": status}});
    Reply::status(status, &body.to_string())
}

/// What vLLM refuses before generating (vllm/entrypoints/openai/engine/serving.py).
fn refuse(req: &Recorded, model: &str, max_model_len: u64) -> Option<Reply> {
    let asked = req.body["model"].as_str().unwrap_or("");
    if asked != model {
        let message = format!("The model `{asked}` does not exist.");
        return Some(error(404, &message, "NotFoundError", json!("model")));
    }
    let input = prompt_tokens(req);
    if input >= max_model_len {
        let message = format!("This model's maximum context length is {max_model_len} tokens. However, your request has {input} input tokens. Please reduce the length of the input messages.");
        return Some(error(
            400,
            &message,
            "BadRequestError",
            json!("input_tokens"),
        ));
    }
    let max_tokens = req.body["max_completion_tokens"]
        .as_u64()
        .or(req.body["max_tokens"].as_u64());
    if let Some(out) = max_tokens.filter(|out| input + out > max_model_len) {
        let message = format!("'max_tokens' or 'max_completion_tokens' is too large: {out}. This model's maximum context length is {max_model_len} tokens and your request has {input} input tokens ({out} > {max_model_len} - {input}).");
        return Some(error(400, &message, "BadRequestError", json!("max_tokens")));
    }
    None
}

fn chunk(model: &str, delta: Value, finish: Option<&str>) -> String {
    let c = json!({"id": "chatcmpl-fakevllm", "object": "chat.completion.chunk", "created": 1_765_000_000,
        "model": model, "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
    format!("data: {c}\n\n")
}

/// The SSE answer vLLM streams for `answer`.
pub fn transcript(
    model: &str,
    field: ReasoningField,
    answer: &Answer,
    prompt: u64,
    usage: bool,
) -> String {
    let field = match field {
        ReasoningField::Reasoning => "reasoning",
        ReasoningField::ReasoningContent => "reasoning_content",
    };
    let mut out = chunk(model, json!({"role": "assistant", "content": ""}), None);
    let reasoning = match answer {
        Answer::Text { reasoning, .. }
        | Answer::ToolCall { reasoning, .. }
        | Answer::StreamError { reasoning, .. } => reasoning,
    };
    for word in reasoning.split_inclusive(' ') {
        out += &chunk(model, json!({ field: word }), None);
    }
    let finish = match answer {
        Answer::Text { text, .. } => {
            for word in text.split_inclusive(' ') {
                out += &chunk(model, json!({"content": word}), None);
            }
            "stop"
        }
        Answer::ToolCall {
            name, arguments, ..
        } => {
            let head = json!({"tool_calls": [{"index": 0, "id": "chatcmpl-tool-fake0001", "type": "function",
                "function": {"name": name, "arguments": ""}}]});
            out += &chunk(model, head, None);
            let bytes: Vec<char> = arguments.chars().collect();
            for piece in bytes.chunks(5) {
                let piece: String = piece.iter().collect();
                let delta = json!({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]});
                out += &chunk(model, delta, None);
            }
            "tool_calls"
        }
        Answer::StreamError { message, .. } => {
            let e = json!({"error": {"message": message, "type": "BadRequestError", "param": null, "code": 400}});
            return out + &format!("data: {e}\n\ndata: [DONE]\n\n");
        }
    };
    out += &chunk(model, json!({}), Some(finish));
    if usage {
        let u = json!({"id": "chatcmpl-fakevllm", "object": "chat.completion.chunk", "created": 1_765_000_000,
            "model": model, "choices": [],
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt + 12, "completion_tokens": 12}});
        out += &format!("data: {u}\n\n");
    }
    out + "data: [DONE]\n\n"
}
