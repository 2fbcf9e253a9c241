//! Fallback through the real proxy app with two fake upstreams: the first refuses,
//! 500s, rate-limits or returns Ollama's tool-call parse error; the second answers. The
//! client must get the second one's answer with `x-ccr-route` saying so, and the
//! ledger must record where it fell back from. After the first byte reached the client
//! there must be no fallback.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::openai_upstream::{openai_transcript, FakeUpstream, Reply, SseEnd};
use support::proxy_app::{route_of, ProxyApp};
use support::sse::{sse_events, sse_text};

const OLLAMA_TOOL_CALL_ERROR: &str = r#"{"error":{"message":"error parsing tool call: raw='{\"command\":\"ls' err=unexpected end of JSON input","type":"api_error","param":null,"code":null}}"#;

fn completion(text: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    })
}

/// A backup that answers "from backup", streamed or not, as the request asks.
async fn backup() -> FakeUpstream {
    FakeUpstream::start_with(|req, _| {
        if req.body["stream"] == json!(true) {
            Reply::sse_events(
                &openai_transcript(&[json!({"content": "from backup"})], "stop"),
                Duration::ZERO,
                SseEnd::Finish,
            )
        } else {
            Reply::json(&completion("from backup"))
        }
    })
    .await
}

fn doc(local_url: &str, backup_url: &str) -> Value {
    json!({
        "Providers": [
            {"name": "local", "api_base_url": local_url, "api_key": "", "models": ["gpt-oss:20b"]},
            {"name": "backup", "api_base_url": backup_url, "api_key": "sk-backup", "models": ["big-model"]}
        ],
        "Router": {"default": "local,gpt-oss:20b"},
        "fallback": {"default": ["backup,big-model"]}
    })
}

fn request(stream: bool) -> Value {
    json!({
        "model": "claude-opus-4-8",
        "max_tokens": 1024,
        "stream": stream,
        "system": [{"type": "text", "text": "You are helpful."}],
        "messages": [{"role": "user", "content": "Say hi"}]
    })
}

const FELL_BACK: &str = "backup,big-model; scenario=default; fallback=yes; from=local,gpt-oss:20b";

/// The backup's answer text, from a JSON or SSE response.
async fn answer_text(resp: reqwest::Response, stream: bool) -> String {
    if stream {
        sse_text(&sse_events(&resp.text().await.unwrap()))
    } else {
        let v: Value = resp.json().await.unwrap();
        v["content"][0]["text"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

async fn assert_falls_back(first: Reply) {
    for stream in [false, true] {
        let local = FakeUpstream::start(vec![first.clone()]).await;
        let backup = backup().await;
        let mut proxy = ProxyApp::start(&doc(
            &local.url("/v1/chat/completions"),
            &backup.url("/v1/chat/completions"),
        ))
        .await;
        let resp = proxy.post(&request(stream)).await;
        assert_eq!(resp.status(), 200, "stream={stream}");
        assert_eq!(route_of(&resp), FELL_BACK);
        assert_eq!(answer_text(resp, stream).await, "from backup");
        assert_eq!(local.requests().len(), 1);
        let sent = &backup.requests()[0];
        assert_eq!(sent.body["model"], "big-model");
        assert_eq!(sent.header("authorization"), Some("Bearer sk-backup"));

        let row = proxy.next_record().await;
        assert_eq!(row.scenario, "default");
        assert_eq!(
            (row.provider.as_str(), row.model.as_str()),
            ("backup", "big-model")
        );
        assert_eq!(row.fallback_from.as_deref(), Some("local,gpt-oss:20b"));
        assert_eq!(row.http_status, 200);
    }
}

#[tokio::test]
async fn refused_connection_falls_back() {
    let backup = backup().await;
    let refused = format!(
        "http://127.0.0.1:{}/v1/chat/completions",
        support::unbound_port()
    );
    let mut proxy = ProxyApp::start(&doc(&refused, &backup.url("/v1/chat/completions"))).await;
    for stream in [false, true] {
        let resp = proxy.post(&request(stream)).await;
        assert_eq!(resp.status(), 200);
        assert_eq!(route_of(&resp), FELL_BACK);
        assert_eq!(answer_text(resp, stream).await, "from backup");
        let row = proxy.next_record().await;
        assert_eq!(row.fallback_from.as_deref(), Some("local,gpt-oss:20b"));
    }
}

#[tokio::test]
async fn http_500_falls_back() {
    assert_falls_back(Reply::status(
        500,
        r#"{"error":{"message":"CUDA out of memory"}}"#,
    ))
    .await;
}

#[tokio::test]
async fn ollama_tool_call_parse_error_falls_back() {
    assert_falls_back(Reply::status(500, OLLAMA_TOOL_CALL_ERROR)).await;
}

#[tokio::test]
async fn rate_limit_429_falls_back() {
    assert_falls_back(Reply::status(429, r#"{"error":{"message":"slow down"}}"#)).await;
}

#[tokio::test]
async fn a_bad_request_is_not_retried_elsewhere() {
    let local = FakeUpstream::start(vec![Reply::status(
        400,
        r#"{"error":{"message":"tools[0]: invalid schema"}}"#,
    )])
    .await;
    let backup = backup().await;
    let mut proxy = ProxyApp::start(&doc(
        &local.url("/v1/chat/completions"),
        &backup.url("/v1/chat/completions"),
    ))
    .await;
    let resp = proxy.post(&request(false)).await;
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(backup.requests().is_empty(), "a 400 is the request's fault");
    let row = proxy.next_record().await;
    assert_eq!(row.fallback_from, None);
    assert_eq!(row.provider, "local");
}

#[tokio::test]
async fn no_fallback_after_the_first_byte() {
    // The local model starts answering, then its connection breaks.
    let partial = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"I will\"}}]}\n\n";
    let local = FakeUpstream::start(vec![Reply::sse_events(
        partial,
        Duration::from_millis(50),
        SseEnd::Break,
    )])
    .await;
    let backup = backup().await;
    let mut proxy = ProxyApp::start(&doc(
        &local.url("/v1/chat/completions"),
        &backup.url("/v1/chat/completions"),
    ))
    .await;
    let resp = proxy.post(&request(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        route_of(&resp),
        "local,gpt-oss:20b; scenario=default; fallback=no"
    );
    let events = sse_events(&resp.text().await.unwrap());
    assert_eq!(sse_text(&events), "I will", "only the local model's words");
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "error", "{events:?}");
    assert_eq!(data["type"], "error");
    assert!(!events.iter().any(|(n, _)| n == "message_stop"));
    assert!(
        backup.requests().is_empty(),
        "no switch after the first byte"
    );
    let row = proxy.next_record().await;
    assert_eq!(row.provider, "local");
    assert_eq!(row.fallback_from, None);
}

#[tokio::test]
async fn every_target_failing_returns_the_last_error() {
    let local = FakeUpstream::start(vec![Reply::status(500, "boom")]).await;
    let second = FakeUpstream::start(vec![Reply::status(
        503,
        r#"{"error":{"message":"overloaded upstream"}}"#,
    )])
    .await;
    let mut proxy = ProxyApp::start(&doc(
        &local.url("/v1/chat/completions"),
        &second.url("/v1/chat/completions"),
    ))
    .await;
    let resp = proxy.post(&request(false)).await;
    assert_eq!(resp.status(), 503);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("overloaded upstream"),
        "{body}"
    );
    assert_eq!(local.requests().len(), 1);
    assert_eq!(second.requests().len(), 1);
    let row = proxy.next_record().await;
    assert_eq!(row.provider, "backup");
    assert_eq!(row.fallback_from.as_deref(), Some("local,gpt-oss:20b"));
    assert!(
        matches!(row.outcome, ccr_setup::ledger::RequestOutcome::UpstreamError(ref k) if k == "http_503")
    );
}

#[tokio::test]
async fn scenario_chain_is_used_and_anthropic_backup_gets_history_without_local_thinking() {
    let local = FakeUpstream::start(vec![Reply::status(500, OLLAMA_TOOL_CALL_ERROR)]).await;
    let cloud = FakeUpstream::start(vec![Reply::json(&json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "from the cloud"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 40, "output_tokens": 4}
    }))])
    .await;
    let mut proxy = ProxyApp::start(&json!({
        "Providers": [
            {"name": "local", "api_base_url": local.url("/v1/chat/completions"), "api_key": "", "models": ["gpt-oss:20b"]},
            {"name": "cloud", "api_base_url": cloud.url("/v1/messages"), "api_key": "sk-ant-test", "models": ["claude-sonnet-4-5"]}
        ],
        "Router": {"default": "local,gpt-oss:20b", "think": "local,gpt-oss:20b"},
        "fallback": {"think": ["cloud,claude-sonnet-4-5"]}
    }))
    .await;
    // A tool loop the local model ran: its thinking has no signature.
    let body = json!({
        "model": "claude-opus-4-8",
        "max_tokens": 2048,
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "max"},
        "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
        "messages": [
            {"role": "user", "content": "list the files"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should run ls", "signature": ""},
                {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"}}
            ]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "a.txt\nb.txt"}]}
        ]
    });
    let resp = proxy.post(&body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        route_of(&resp),
        "cloud,claude-sonnet-4-5; scenario=think; fallback=yes; from=local,gpt-oss:20b"
    );
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["content"][0]["text"], "from the cloud");

    let sent = &cloud.requests()[0];
    assert_eq!(sent.header("x-api-key"), Some("sk-ant-test"));
    assert_eq!(sent.body["model"], "claude-sonnet-4-5");
    let assistant = &sent.body["messages"][1]["content"];
    assert_eq!(assistant.as_array().unwrap().len(), 1, "{assistant}");
    assert_eq!(assistant[0]["type"], "tool_use");
    // The tool loop lost its thinking block, so thinking is off for this request.
    assert!(sent.body.get("thinking").is_none(), "{}", sent.body);
    assert!(sent.body.get("context_management").is_none());
    let row = proxy.next_record().await;
    assert_eq!(row.scenario, "think");
    assert_eq!(row.fallback_from.as_deref(), Some("local,gpt-oss:20b"));
    assert_eq!(row.input_tokens, 40);
}
