//! Context editing through the real proxy app: a conversation that outgrows a local
//! window reaches the upstream with its oldest tool results cleared, under the window,
//! with the same bytes turn after turn; the count Claude Code sees, the ledger row and
//! the routing to a cloud backup all follow the edit.

use crate::support;

use std::time::Duration;

use ccr_setup::ledger::RequestOutcome;
use serde_json::{json, Value};
use support::openai_upstream::{openai_transcript, FakeUpstream, Reply, SseEnd};
use support::proxy_app::{error_body, route_of, ProxyApp};
use support::sse::sse_events;

const WINDOW: u64 = 16_384;

fn answering() -> Reply {
    Reply::json(
        &json!({"id": "c", "choices": [{"index": 0, "finish_reason": "stop",
        "message": {"role": "assistant", "content": "ok"}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 1}}),
    )
}

/// A Claude Code-like request: a fixed prompt, then `reads` Read calls of ~2k tokens.
fn session(reads: usize, stream: bool) -> Value {
    let mut messages = vec![
        json!({"role": "user", "content": format!("Read them all. {}", "context ".repeat(3_000))}),
    ];
    for i in 0..reads {
        messages.push(json!({"role": "assistant", "content": [{"type": "tool_use", "id": format!("toolu_{i}"), "name": "Read", "input": {"file_path": format!("/w/f{i}.txt")}}]}));
        messages.push(json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": format!("toolu_{i}"), "content": format!("file {i}: {}", "some text here ".repeat(700))}]}));
    }
    json!({
        "model": "claude-opus-4-8", "max_tokens": 64000, "stream": stream,
        "metadata": {"user_id": "{\"session_id\": \"s-ctx\"}"},
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "tools": [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}],
        "messages": messages
    })
}

fn providers(local: &FakeUpstream, cloud: Option<&FakeUpstream>, mode: &str) -> Value {
    let mut p = vec![
        json!({"name": "ollama", "api_base_url": local.url("/v1/chat/completions"),
        "models": ["gpt-oss:20b"], "context_window": WINDOW, "context_editing": mode}),
    ];
    if let Some(cloud) = cloud {
        p.push(
            json!({"name": "cloud", "api_base_url": cloud.url("/v1/chat/completions"),
            "api_key": "sk-cloud", "models": ["big"], "local": false}),
        );
    }
    Value::Array(p)
}

/// The messages the upstream received, as JSON text.
fn sent_messages(upstream: &FakeUpstream, i: usize) -> Vec<Value> {
    upstream.requests()[i].body["messages"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn an_outgrown_window_is_cleared_oldest_first_and_stays_byte_stable() {
    let local = FakeUpstream::start(vec![answering()]).await;
    let mut proxy = ProxyApp::start(&json!({
        "Providers": providers(&local, None, "auto"),
        "Router": {"default": "ollama,gpt-oss:20b"}
    }))
    .await;
    let resp = proxy.post(&session(8, false)).await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let row = proxy.next_record().await;
    assert_eq!(row.outcome, RequestOutcome::Ok);
    assert!(row.context_cleared_blocks >= 3, "{row:?}");
    assert!(row.context_cleared_tokens > 4_000, "{row:?}");

    let turn1 = sent_messages(&local, 0);
    let tool_text = |messages: &[Value], i: usize| -> String {
        messages
            .iter()
            .filter(|m| m["role"] == "tool")
            .nth(i)
            .map(|m| m["content"].to_string())
            .unwrap_or_default()
    };
    assert!(tool_text(&turn1, 0).contains("ccr-setup cleared this result"));
    assert!(tool_text(&turn1, 0).contains("/w/f0.txt"));
    assert!(
        tool_text(&turn1, 7).contains("file 7: some text"),
        "the last result is whole"
    );
    // max_tokens clamped from the edited prompt, which is under the window.
    let max_tokens = local.requests()[0].body["max_tokens"].as_u64().unwrap();
    assert!((4_096..WINDOW).contains(&max_tokens), "{max_tokens}");

    // The next turn (one more read) re-applies exactly those edits: the history the
    // upstream already saw is sent byte for byte (its prompt cache holds).
    let resp = proxy.post(&session(9, false)).await;
    assert_eq!(resp.status(), 200);
    let turn2 = sent_messages(&local, 1);
    let row2 = proxy.next_record().await;
    if row2.context_cleared_blocks == row.context_cleared_blocks {
        assert_eq!(
            serde_json::to_string(&turn2[..turn1.len()]).unwrap(),
            serde_json::to_string(&turn1).unwrap()
        );
    } else {
        // The clear point moved forward: everything before it is unchanged.
        assert!(row2.context_cleared_blocks > row.context_cleared_blocks);
        assert_eq!(turn2[..3], turn1[..3]);
    }
}

#[tokio::test]
async fn a_streamed_answer_reports_the_edited_prompt_in_message_start() {
    let t = openai_transcript(&[json!({"role": "assistant", "content": "ok"})], "stop");
    let local = FakeUpstream::start(vec![Reply::sse_events(
        &t,
        Duration::from_millis(1),
        SseEnd::Finish,
    )])
    .await;
    let mut proxy = ProxyApp::start(&json!({
        "Providers": providers(&local, None, "auto"),
        "Router": {"default": "ollama,gpt-oss:20b"}
    }))
    .await;
    let resp = proxy.post(&session(8, true)).await;
    assert_eq!(resp.status(), 200);
    let events = sse_events(&resp.text().await.unwrap());
    let start = &events.iter().find(|(e, _)| e == "message_start").unwrap().1;
    let input = start["message"]["usage"]["input_tokens"].as_u64().unwrap();
    assert!(
        input <= WINDOW * 70 / 100 && input > 3_000,
        "message_start carries the edited count: {input}"
    );
    let row = proxy.next_record().await;
    assert!(row.context_cleared_blocks > 0, "{row:?}");
}

#[tokio::test]
async fn with_a_cloud_backup_the_cloud_gets_nothing_while_editing_can_fit() {
    let local = FakeUpstream::start(vec![answering()]).await;
    let cloud = FakeUpstream::start(vec![answering()]).await;
    let proxy = ProxyApp::start(&json!({
        "Providers": providers(&local, Some(&cloud), "auto"),
        "Router": {"default": "ollama,gpt-oss:20b", "longContext": "cloud,big", "longContextThreshold": 10000}
    }))
    .await;
    // Over both the window and the longContext threshold, unedited.
    let resp = proxy.post(&session(12, false)).await;
    assert_eq!(resp.status(), 200);
    assert!(
        route_of(&resp).starts_with("ollama,gpt-oss:20b"),
        "{}",
        route_of(&resp)
    );
    assert_eq!(local.requests().len(), 1);
    assert!(
        cloud.requests().is_empty(),
        "the cloud is the backup, not the first choice"
    );

    // A prompt editing cannot fit (one huge message): the cloud takes it.
    let huge = json!({"model": "claude-opus-4-8", "max_tokens": 1000,
        "messages": [{"role": "user", "content": "word ".repeat(20_000)}]});
    let resp = proxy.post(&huge).await;
    assert_eq!(resp.status(), 200);
    assert!(
        route_of(&resp).starts_with("cloud,big"),
        "{}",
        route_of(&resp)
    );
    assert_eq!(cloud.requests().len(), 1);
}

#[tokio::test]
async fn cloud_first_sends_the_unedited_prompt_to_the_cloud_and_off_refuses_as_anthropic_does() {
    let local = FakeUpstream::start(vec![answering()]).await;
    let cloud = FakeUpstream::start(vec![answering()]).await;
    let proxy = ProxyApp::start(&json!({
        "Providers": providers(&local, Some(&cloud), "cloud_first"),
        "Router": {"default": "ollama,gpt-oss:20b", "longContext": "cloud,big"}
    }))
    .await;
    let resp = proxy.post(&session(8, false)).await;
    assert!(
        route_of(&resp).starts_with("cloud,big"),
        "{}",
        route_of(&resp)
    );
    let sent = serde_json::to_string(&cloud.requests()[0].body).unwrap();
    assert!(
        !sent.contains("ccr-setup cleared"),
        "the cloud gets it whole"
    );

    let proxy = ProxyApp::start(&json!({
        "Providers": providers(&local, None, "off"),
        "Router": {"default": "ollama,gpt-oss:20b"}
    }))
    .await;
    let (status, err) = error_body(proxy.post(&session(8, false)).await).await;
    assert_eq!(status, 400);
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        message.starts_with("prompt is too long: ") && message.contains(" tokens > 12288 maximum"),
        "{message}"
    );
    assert_eq!(
        local.requests().len(),
        0,
        "nothing over the window was sent"
    );
}

/// A stream rescued mid-way (the local model's tool call failed to parse, twice) goes on
/// to the next target of the chain with the client's body parsed anew: a second local
/// model with a window must get the request edited exactly as the first did, not whole.
#[tokio::test]
async fn a_rescued_stream_hands_the_next_local_target_the_edited_request() {
    use support::fake_ollama::{FakeConfig, FakeModel, FakeOllama};
    let ollama = FakeOllama::start(
        FakeConfig::default()
            .with_installed(FakeModel::gpt_oss())
            .with_tool_call_parse_failure(),
    );
    let t = openai_transcript(
        &[json!({"role": "assistant", "content": "from the second"})],
        "stop",
    );
    let second = FakeUpstream::start(vec![Reply::sse_events(
        &t,
        Duration::from_millis(1),
        SseEnd::Finish,
    )])
    .await;
    let proxy = ProxyApp::start(&json!({
        "Providers": [
            {"name": "ollama", "api_base_url": format!("{}/v1/chat/completions", ollama.url()),
             "models": ["gpt-oss:20b"], "context_window": WINDOW},
            {"name": "second", "api_base_url": second.url("/v1/chat/completions"),
             "models": ["small"], "context_window": WINDOW}
        ],
        "Router": {"default": "ollama,gpt-oss:20b"},
        "fallback": {"default": ["second,small"]}
    }))
    .await;
    let resp = proxy.post(&session(8, true)).await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("from the second"), "{text}");
    let first = &ollama.bodies("/v1/chat/completions")[0];
    let sent = &second.requests()[0].body;
    assert_eq!(
        first["messages"], sent["messages"],
        "the same edited history reaches both local targets"
    );
    assert!(sent["messages"]
        .to_string()
        .contains("ccr-setup cleared this result"));
}
