//! The fake's native `/v1/messages` (Anthropic Messages, Ollama ≥ 0.14): the model name
//! is used as given, errors are plain HTTP statuses with an Anthropic body, and there is
//! no `count_tokens` route (the router's 404 answers it).

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::openai::message_tokens;
use super::{not_found_text, Ctx};

pub async fn messages(State(ctx): State<Ctx>, Json(body): Json<Value>) -> Response {
    if let Some(r) = ctx.enter("/v1/messages", Some(&body)) {
        return r;
    }
    let name = body["model"].as_str().unwrap_or("").to_owned();
    if ctx.load(&name).await.is_none() {
        let error = json!({"type": "error", "error": {"type": "not_found_error", "message": not_found_text(&name)}});
        return (StatusCode::NOT_FOUND, Json(error)).into_response();
    }
    let chat = ctx.config().chat;
    tokio::time::sleep(chat.first_token_delay).await;
    let empty = Vec::new();
    let input: u64 = body["messages"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(message_tokens)
        .sum();
    let words: Vec<String> = chat
        .answer
        .split_inclusive(' ')
        .map(str::to_owned)
        .collect();
    let usage = json!({"input_tokens": input, "output_tokens": words.len()});
    let message = json!({
        "id": "msg_fake", "type": "message", "role": "assistant", "model": name,
        "content": [{"type": "text", "text": chat.answer}],
        "stop_reason": "end_turn", "stop_sequence": null, "usage": usage,
    });
    if body["stream"].as_bool() != Some(true) {
        return Json(message).into_response();
    }
    let mut start = message.clone();
    start["content"] = json!([]);
    start["stop_reason"] = Value::Null;
    start["usage"]["output_tokens"] = json!(0);
    let mut events = vec![
        (
            "message_start",
            json!({"type": "message_start", "message": start}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
    ];
    for w in &words {
        events.push((
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}),
        ));
    }
    events.push((
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push((
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": words.len()}}),
    ));
    events.push(("message_stop", json!({"type": "message_stop"})));
    let text: String = events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect();
    let stream = futures_util::stream::iter([Ok::<_, Infallible>(bytes::Bytes::from(text))]);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}
