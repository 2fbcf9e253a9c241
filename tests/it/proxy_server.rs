//! The real axum server on 127.0.0.1:0 in front of the scripted fake upstream.

use crate::support;

use std::time::{Duration, Instant};

use ccr_setup::ledger::RequestOutcome;
use ccr_setup::proxy::server::ServerOptions;
use futures_util::StreamExt;
use serde_json::{json, Value};
use support::openai_upstream::{openai_transcript, FakeUpstream, Piece, Reply, SseEnd};
use support::proxy_app::{self, error_body, ProxyApp};
use support::sse::{sse_events, sse_text};

/// Start the proxy with one provider at `url` (kind from the URL), extra top-level
/// config keys, and a ping interval.
async fn start_proxy(provider: Value, extra: Value, ping: Duration) -> ProxyApp {
    let mut doc = json!({
        "Providers": [provider],
        "Router": {"default": format!("{},target-model", provider["name"].as_str().unwrap())},
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    let options = ServerOptions {
        ping_interval: ping,
    };
    ProxyApp::start_with(proxy_app::config(&doc), options).await
}

fn openai_provider(url: &str) -> Value {
    json!({"name": "local", "api_base_url": url, "api_key": "sk-provider", "models": ["target-model"]})
}

async fn proxy_for(fake: &FakeUpstream) -> ProxyApp {
    start_proxy(
        openai_provider(&fake.url("/v1/chat/completions")),
        json!({}),
        Duration::from_secs(15),
    )
    .await
}

fn request(stream: bool) -> Value {
    json!({
        "model": "claude-opus-4-8",
        "max_tokens": 1024,
        "stream": stream,
        "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=1"}, {"type": "text", "text": "You are helpful."}],
        "messages": [{"role": "user", "content": "Say hi"}],
        "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]
    })
}

fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// POST /v1/messages with the client's own token (which must never go upstream).
async fn post(proxy: &ProxyApp, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}/v1/messages?beta=true", proxy.base))
        .bearer_auth("client-token")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn non_streaming_answer_is_translated_both_ways() {
    let fake = FakeUpstream::start(vec![Reply::json(&json!({
        "id": "chatcmpl-1",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "Running it.", "reasoning_content": "use bash",
            "tool_calls": [{"id": "call_9", "type": "function", "function": {"name": "Bash", "arguments": "{\"command\":\"echo hi\"}"}}]}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 9}
    }))])
    .await;
    let mut proxy = proxy_for(&fake).await;
    let resp = post(&proxy, &request(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["x-ccr-route"],
        "local,target-model; scenario=default; fallback=no"
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["type"], "message");
    assert_eq!(body["stop_reason"], "tool_use");
    assert_eq!(
        body["content"],
        json!([
            {"type": "thinking", "thinking": "use bash", "signature": ""},
            {"type": "text", "text": "Running it."},
            {"type": "tool_use", "id": "call_9", "name": "Bash", "input": {"command": "echo hi"}}
        ])
    );
    assert_eq!(body["usage"]["input_tokens"], 50);

    let got = &fake.requests()[0];
    assert_eq!(got.path, "/v1/chat/completions");
    assert_eq!(got.header("authorization"), Some("Bearer sk-provider"));
    assert_eq!(got.body["model"], "target-model");
    assert_eq!(got.body["messages"][0]["content"], "You are helpful.");
    assert_eq!(got.body["tools"][0]["function"]["name"], "Bash");
    assert_eq!(got.body["stream"], false);

    let record = proxy.next_record().await;
    assert_eq!(
        (
            record.provider.as_str(),
            record.model.as_str(),
            record.scenario.as_str()
        ),
        ("local", "target-model", "default")
    );
    assert_eq!((record.input_tokens, record.output_tokens), (50, 9));
    assert_eq!(record.outcome, RequestOutcome::Ok);
    assert!(!record.stream);
}

#[tokio::test]
async fn streaming_answer_split_at_odd_bytes_comes_out_whole() {
    let transcript = openai_transcript(
        &[
            json!({"role": "assistant", "reasoning": "thinking…"}),
            json!({"content": "Grüße, "}),
            json!({"content": "世界"}),
        ],
        "stop",
    );
    let fake = FakeUpstream::start(vec![Reply::sse_split(
        transcript.as_bytes(),
        7,
        Duration::ZERO,
        SseEnd::Finish,
    )])
    .await;
    let mut proxy = proxy_for(&fake).await;
    let resp = post(&proxy, &request(true)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let evs = sse_events(&resp.text().await.unwrap());
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(sse_text(&evs), "Grüße, 世界");
    assert_eq!(evs[1].1["content_block"]["type"], "thinking");
    assert_eq!(evs[8].1["usage"]["output_tokens"], 12);
    assert!(
        evs[0].1["message"]["usage"]["input_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    let got = &fake.requests()[0];
    assert_eq!(got.body["stream_options"]["include_usage"], true);
    let record = proxy.next_record().await;
    assert_eq!(record.outcome, RequestOutcome::Ok);
    assert!(record.stream);
    assert_eq!(record.output_tokens, 12);
}

#[tokio::test]
async fn endpoints_health_root_and_404() {
    let fake = FakeUpstream::start(vec![Reply::status(500, "unused")]).await;
    let proxy = proxy_for(&fake).await;
    let c = client();
    let head = c.head(format!("{}/", proxy.base)).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        c.get(format!("{}/", proxy.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let health: Value = c
        .get(format!("{}/health", proxy.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(health["providers"][0]["name"], "local");
    assert_eq!(health["providers"][0]["kind"], "openai");

    let (status, body) = error_body(
        c.get(format!("{}/v1/complete", proxy.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "not_found_error");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn bad_requests_are_400_naming_the_field() {
    let fake = FakeUpstream::start(vec![Reply::status(500, "unused")]).await;
    let proxy = proxy_for(&fake).await;
    let c = client();
    let url = format!("{}/v1/messages", proxy.base);
    let (status, body) = error_body(
        c.post(&url)
            .header("content-type", "application/json")
            .body("{\"model\": ")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let (status, body) = error_body(
        c.post(&url)
            .json(&json!({"model": "m", "max_tokens": 5}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("messages"),
        "{body}"
    );

    let (status, body) = error_body(
        c.post(&url)
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": 5}]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("messages[0].content"),
        "{body}"
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn body_over_32_mb_is_413() {
    let fake = FakeUpstream::start(vec![Reply::status(500, "unused")]).await;
    let proxy = proxy_for(&fake).await;
    let big = format!(
        "{{\"model\":\"m\",\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}}]}}",
        "a".repeat(33 * 1024 * 1024)
    );
    let resp = client()
        .post(format!("{}/v1/messages", proxy.base))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    let (status, body) = error_body(resp).await;
    assert_eq!(status, 413);
    assert_eq!(body["error"]["type"], "request_too_large");
}

#[tokio::test]
async fn a_declared_body_over_32_mb_is_refused_before_it_is_sent() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fake = FakeUpstream::start(vec![Reply::status(500, "unused")]).await;
    let proxy = proxy_for(&fake).await;
    let addr = proxy.base.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    // Headers only: the 40 MB the client announces never come.
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n\
         content-length: {}\r\n\r\n{{\"model\":",
        40 * 1024 * 1024
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), tcp.read(&mut answer))
        .await
        .expect("an answer before the body is sent")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""type":"request_too_large""#), "{answer}");
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn connection_refused_is_502_naming_provider_and_url() {
    let url = format!(
        "http://127.0.0.1:{}/v1/chat/completions",
        support::unbound_port()
    );
    let proxy = start_proxy(openai_provider(&url), json!({}), Duration::from_secs(15)).await;
    let (status, body) = error_body(post(&proxy, &request(true)).await).await;
    assert_eq!(status, 502);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"local\"") && message.contains(&url),
        "{message}"
    );
    assert!(!message.contains("ccr-setup up"), "{message}");

    // An Ollama provider gets told how to start it.
    let ollama =
        json!({"name": "ollama", "api_base_url": url, "api_key": "", "models": ["target-model"]});
    let proxy = start_proxy(ollama, json!({}), Duration::from_secs(15)).await;
    let (status, body) = error_body(post(&proxy, &request(false)).await).await;
    assert_eq!(status, 502);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("run `ccr-setup up`"),
        "{body}"
    );
}

#[tokio::test]
async fn upstream_error_status_is_kept_with_its_message() {
    let fake = FakeUpstream::start(vec![
        Reply::status(
            500,
            r#"{"error":{"message":"error parsing tool call: raw='{\"command\":'"}}"#,
        ),
        Reply::status(404, r#"{"error":"model 'target-model' not found"}"#),
    ])
    .await;
    let mut proxy = proxy_for(&fake).await;
    let (status, body) = error_body(post(&proxy, &request(true)).await).await;
    assert_eq!(status, 500);
    assert_eq!(body["error"]["type"], "api_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("error parsing tool call"),
        "{body}"
    );
    let record = proxy.next_record().await;
    assert_eq!(
        record.outcome,
        RequestOutcome::UpstreamError("tool_call_parse".into())
    );

    let (status, body) = error_body(post(&proxy, &request(false)).await).await;
    assert_eq!(status, 404);
    assert_eq!(body["error"]["type"], "not_found_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("model 'target-model' not found"));
}

#[tokio::test]
async fn truncated_or_broken_streams_end_with_an_error_event() {
    let partial = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"half an ans\"}}]}\n\n";
    let fake = FakeUpstream::start(vec![
        Reply::sse_events(partial, Duration::ZERO, SseEnd::Finish),
        Reply::sse_events(partial, Duration::ZERO, SseEnd::Break),
    ])
    .await;
    let mut proxy = proxy_for(&fake).await;
    for expected_kind in ["stream_truncated", "stream_broken"] {
        let resp = post(&proxy, &request(true)).await;
        assert_eq!(resp.status(), 200);
        let evs = sse_events(&resp.text().await.unwrap());
        assert_eq!(sse_text(&evs), "half an ans");
        let (last, data) = evs.last().unwrap();
        assert_eq!(last, "error", "{evs:?}");
        assert_eq!(data["type"], "error");
        assert!(!evs.iter().any(|(n, _)| n == "message_stop"));
        let record = proxy.next_record().await;
        assert_eq!(
            record.outcome,
            RequestOutcome::UpstreamError(expected_kind.into())
        );
    }
}

#[tokio::test]
async fn client_disconnect_closes_the_upstream_connection_within_a_second() {
    let first = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"generating\"}}]}\n\n";
    let fake =
        FakeUpstream::start(vec![Reply::sse_events(first, Duration::ZERO, SseEnd::Hang)]).await;
    let mut proxy = proxy_for(&fake).await;
    let resp = post(&proxy, &request(true)).await;
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("generating") {
        seen.push_str(&String::from_utf8_lossy(
            &body.next().await.unwrap().unwrap(),
        ));
    }
    assert!(fake.client_closed_at(0).is_none(), "still generating");
    let dropped_at = Instant::now();
    drop(body);
    let deadline = dropped_at + Duration::from_secs(1);
    let closed_at = loop {
        if let Some(t) = fake.client_closed_at(0) {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "upstream connection still open 1 s after the client left"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    assert!(closed_at.duration_since(dropped_at) < Duration::from_secs(1));
    let record = proxy.next_record().await;
    assert_eq!(record.outcome, RequestOutcome::ClientCancelled);
}

#[tokio::test]
async fn pings_flow_while_the_upstream_is_silent() {
    let transcript = openai_transcript(&[json!({"content": "late"})], "stop");
    let pieces = vec![Piece {
        delay: Duration::from_millis(600),
        bytes: transcript.into_bytes(),
    }];
    let fake = FakeUpstream::start(vec![Reply::Sse {
        pieces,
        end: SseEnd::Finish,
    }])
    .await;
    let proxy = start_proxy(
        openai_provider(&fake.url("/v1/chat/completions")),
        json!({}),
        Duration::from_millis(100),
    )
    .await;
    let evs = sse_events(&post(&proxy, &request(true)).await.text().await.unwrap());
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "message_start");
    let pings_before_content = names
        .iter()
        .take_while(|n| **n != "content_block_start")
        .filter(|n| **n == "ping")
        .count();
    assert!(
        pings_before_content >= 3,
        "expected pings during 600 ms of silence: {names:?}"
    );
    assert_eq!(sse_text(&evs), "late");
    assert_eq!(*names.last().unwrap(), "message_stop");
}

#[tokio::test]
async fn idle_upstream_times_out_with_an_error_event() {
    let first = "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"then nothing\"}}]}\n\n";
    let fake =
        FakeUpstream::start(vec![Reply::sse_events(first, Duration::ZERO, SseEnd::Hang)]).await;
    let proxy = start_proxy(
        openai_provider(&fake.url("/v1/chat/completions")),
        json!({"STREAM_IDLE_TIMEOUT_MS": 300}),
        Duration::from_millis(50),
    )
    .await;
    let started = Instant::now();
    let evs = sse_events(&post(&proxy, &request(true)).await.text().await.unwrap());
    assert!(started.elapsed() < Duration::from_secs(3));
    let (last, data) = evs.last().unwrap();
    assert_eq!(last, "error");
    assert!(
        data["error"]["message"]
            .as_str()
            .unwrap()
            .contains("STREAM_IDLE_TIMEOUT_MS"),
        "{data}"
    );
    // Pings did not keep the dead upstream alive, and the upstream was let go.
    assert!(evs.iter().any(|(n, _)| n == "ping"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(fake.client_closed_at(0).is_some());
}

#[tokio::test]
async fn anthropic_provider_is_passed_through_byte_for_byte() {
    let upstream_sse = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_up\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"target-model\",\"content\":[],\"stop_reason\":null,\"usage\":{\"input_tokens\":77,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"straight through\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
    );
    let fake = FakeUpstream::start(vec![Reply::sse_split(
        upstream_sse.as_bytes(),
        13,
        Duration::ZERO,
        SseEnd::Finish,
    )])
    .await;
    let provider = json!({"name": "cloud", "api_base_url": fake.url("/v1/messages"), "api_key": "sk-ant-provider", "models": ["target-model"]});
    let mut proxy = start_proxy(provider, json!({}), Duration::from_secs(15)).await;
    let body = request(true);
    let resp = client()
        .post(format!("{}/v1/messages?beta=true", proxy.base))
        .header("x-api-key", "client-key")
        .header("authorization", "Bearer client-token")
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), upstream_sse);

    let got = &fake.requests()[0];
    assert_eq!(got.path, "/v1/messages");
    assert_eq!(got.header("x-api-key"), Some("sk-ant-provider"));
    assert_eq!(got.header("authorization"), None);
    assert_eq!(got.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        got.header("anthropic-beta"),
        Some("interleaved-thinking-2025-05-14")
    );
    let mut expected = body.clone();
    expected["model"] = json!("target-model");
    assert_eq!(got.body, expected, "only the model changed");
    let record = proxy.next_record().await;
    assert_eq!((record.input_tokens, record.output_tokens), (77, 3));
    assert!(!record.tokens_estimated);
}

#[tokio::test]
async fn apikey_is_required_when_configured() {
    let fake = FakeUpstream::start(vec![Reply::status(500, "unused")]).await;
    let proxy = start_proxy(
        openai_provider(&fake.url("/v1/chat/completions")),
        json!({"APIKEY": "proxy-secret"}),
        Duration::from_secs(15),
    )
    .await;
    let (status, body) = error_body(post(&proxy, &request(false)).await).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["type"], "authentication_error");
    // The same layer guards count_tokens and the model list; /health and / stay open
    // for `status` and `doctor`.
    let count = client()
        .post(format!("{}/v1/messages/count_tokens", proxy.base))
        .json(&request(false))
        .send()
        .await
        .unwrap();
    let (status, body) = error_body(count).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (401, Some("authentication_error"))
    );
    let models = client()
        .get(format!("{}/v1/models", proxy.base))
        .header("x-api-key", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 401);
    for path in ["/health", "/"] {
        let open = client()
            .get(format!("{}{path}", proxy.base))
            .send()
            .await
            .unwrap();
        assert_eq!(open.status(), 200, "{path}");
    }
    let models = client()
        .get(format!("{}/v1/models", proxy.base))
        .header("x-api-key", "proxy-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(models.status(), 200);
    assert!(fake.requests().is_empty());
}

#[tokio::test]
async fn an_upstream_that_answers_only_after_prefill_gets_pings_meanwhile() {
    let transcript = openai_transcript(&[json!({"content": "after prefill"})], "stop");
    let fake = FakeUpstream::start(vec![
        Reply::Delayed {
            delay: Duration::from_millis(700),
            reply: Box::new(Reply::sse_events(
                &transcript,
                Duration::ZERO,
                SseEnd::Finish,
            )),
        },
        Reply::Delayed {
            delay: Duration::from_millis(400),
            reply: Box::new(Reply::status(
                500,
                r#"{"error":{"message":"out of memory while loading the model"}}"#,
            )),
        },
    ])
    .await;
    let mut proxy = start_proxy(
        openai_provider(&fake.url("/v1/chat/completions")),
        json!({}),
        Duration::from_millis(100),
    )
    .await;
    let resp = post(&proxy, &request(true)).await;
    assert_eq!(resp.status(), 200, "committed before the upstream answered");
    let evs = sse_events(&resp.text().await.unwrap());
    let names: Vec<&str> = evs.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names[0], "message_start");
    assert!(
        names[1..4].iter().all(|n| *n == "ping"),
        "pings while the upstream prefills: {names:?}"
    );
    assert_eq!(sse_text(&evs), "after prefill");
    assert_eq!(*names.last().unwrap(), "message_stop");
    assert_eq!(proxy.next_record().await.outcome, RequestOutcome::Ok);

    // A late error answer becomes an error event that keeps the upstream's message.
    let evs = sse_events(&post(&proxy, &request(true)).await.text().await.unwrap());
    let (last, data) = evs.last().unwrap();
    assert_eq!(last, "error");
    assert!(
        data["error"]["message"]
            .as_str()
            .unwrap()
            .contains("out of memory while loading the model"),
        "{data}"
    );
    assert_eq!(
        proxy.next_record().await.outcome,
        RequestOutcome::UpstreamError("http_500".into())
    );
}
