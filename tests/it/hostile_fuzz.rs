//! Arbitrary input against the request path and the stream translator (issue #15): no
//! panic, and every answer Anthropic-shaped. Property tests with many cases, so they run
//! in the fast suite; `PROPTEST_CASES` raises the count for a longer hunt.

use crate::support;

use ccr_setup::proxy::translate::stream::StreamTranslator;
use ccr_setup::proxy::translate::tool_names::ToolNameMap;
use proptest::prelude::*;
use serde_json::{json, Value};
use support::openai_upstream::{openai_transcript, FakeUpstream, Reply, SseEnd};
use support::proxy_app::{self, ProxyApp};

/// Every SSE event the translator wrote: a known event name and a JSON object whose
/// `type` matches it; the stream ends with `message_stop` or `error`.
fn assert_anthropic_stream(out: &[u8]) -> Result<(), TestCaseError> {
    let text =
        std::str::from_utf8(out).map_err(|e| TestCaseError::fail(format!("not UTF-8: {e}")))?;
    let mut last = String::new();
    for event in text.split_terminator("\n\n").filter(|e| !e.is_empty()) {
        let mut name = None;
        let mut data = None;
        for line in event.lines() {
            if let Some(v) = line.strip_prefix("event: ") {
                name = Some(v);
            } else if let Some(v) = line.strip_prefix("data: ") {
                data = Some(v);
            }
        }
        let (name, data) = (name.unwrap_or(""), data.unwrap_or(""));
        let v: Value = serde_json::from_str(data).map_err(|e| {
            TestCaseError::fail(format!("event {name}: data is not JSON ({e}): {data}"))
        })?;
        prop_assert_eq!(v["type"].as_str(), Some(name), "{}", event);
        last = name.to_owned();
    }
    prop_assert!(
        last == "message_stop" || last == "error",
        "the stream ends with {last:?}"
    );
    Ok(())
}

/// Bytes that look like an OpenAI stream often enough to reach deep states.
fn sse_like() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"data: ".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\n\n".to_vec()),
        Just(b"data: [DONE]\n\n".to_vec()),
        Just(b"event: error\n".to_vec()),
        Just(br#"{"choices":[{"index":0,"delta":{"content":"h"}}]}"#.to_vec()),
        Just(br#"{"choices":[{"index":0,"delta":{"reasoning":"r"}}]}"#.to_vec()),
        Just(br#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c","function":{"name":"Bash","arguments":"{\"a"}}]}}]}"#.to_vec()),
        Just(br#"{"choices":[{"index":1,"delta":{"tool_calls":[{"index":7,"function":{"arguments":"1}"}}]}}]}"#.to_vec()),
        Just(br#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":18446744073709551615,"completion_tokens":-1}}"#.to_vec()),
        Just(br#"{"error":{"message":"boom"}}"#.to_vec()),
        proptest::collection::vec(any::<u8>(), 0..24),
    ];
    proptest::collection::vec(piece, 0..40).prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Any bytes, cut anywhere: the translator never panics and writes only
    /// well-formed Anthropic events, ending the stream properly.
    #[test]
    fn the_stream_translator_survives_any_bytes(
        input in prop_oneof![sse_like(), proptest::collection::vec(any::<u8>(), 0..512)],
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        points.sort_unstable();
        let mut t = StreamTranslator::new("msg_fuzz", "m", 10, ToolNameMap::default());
        let mut out = Vec::new();
        let mut prev = 0;
        for p in points.into_iter().chain([input.len()]) {
            t.feed(&input[prev..p], &mut out);
            prev = p;
        }
        t.finish(&mut out);
        prop_assert!(t.is_finished());
        assert_anthropic_stream(&out)?;
    }
}

/// A valid Claude Code-shaped request, to be mutated.
fn base_request() -> Vec<u8> {
    json!({
        "model": "m", "max_tokens": 64, "stream": false,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "tools": [{"name": "Bash", "description": "run", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}],
        "tool_choice": {"type": "auto"},
        "metadata": {"user_id": "{\"session_id\":\"s-1\"}"},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": ""}, {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "ls"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "a.txt"}]}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}}]}
        ]
    })
    .to_string()
    .into_bytes()
}

/// Places in [`base_request`] whose value the type-confusion strategy replaces.
const POINTERS: &[&str] = &[
    "/model",
    "/max_tokens",
    "/stream",
    "/system",
    "/system/0/text",
    "/tools",
    "/tools/0/name",
    "/tools/0/input_schema",
    "/tool_choice",
    "/metadata",
    "/metadata/user_id",
    "/messages/0/content",
    "/messages/0/role",
    "/messages/1/content/0",
    "/messages/1/content/1/input",
    "/messages/1/content/1/id",
    "/messages/2/content/0/content",
    "/messages/2/content/0/tool_use_id",
    "/messages/2/content/1/source",
];

/// Values of every JSON type, some at their edges.
fn odd_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
        Just(json!([])),
        Just(json!({})),
        Just(json!([{"type": "text"}])),
        Just(json!([{"type": "tool_use", "id": "x", "name": "", "input": 3}])),
        Just(json!({"type": "tool", "name": "Nope"})),
        Just(json!({"type": "any"})),
        Just(json!({"type": "none"})),
        Just(
            json!([{"type": "image", "source": {"type": "url", "url": "http://127.0.0.1:9/x.gif"}}])
        ),
    ]
}

/// A byte-level edit of the base request.
#[derive(Debug, Clone)]
enum Edit {
    Replace(prop::sample::Index, u8),
    Insert(prop::sample::Index, Vec<u8>),
    Delete(prop::sample::Index, usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| Edit::Replace(i, b)),
        (
            any::<prop::sample::Index>(),
            prop_oneof![
                Just(b"null".to_vec()),
                Just(b"[]".to_vec()),
                Just(b"{}".to_vec()),
                Just(b"-1e999".to_vec()),
                Just(b"18446744073709551616".to_vec()),
                Just(b"\"\\ud800\"".to_vec()),
                Just(b"[[[[[[[[".to_vec()),
                proptest::collection::vec(any::<u8>(), 0..8),
            ]
        )
            .prop_map(|(i, b)| Edit::Insert(i, b)),
        (any::<prop::sample::Index>(), 1usize..16).prop_map(|(i, n)| Edit::Delete(i, n)),
    ];
    proptest::collection::vec(edit, 1..6)
}

fn apply(mut body: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
    for e in edits {
        match e {
            Edit::Replace(i, b) => {
                if !body.is_empty() {
                    let i = i.index(body.len());
                    body[i] = *b;
                }
            }
            Edit::Insert(i, bytes) => {
                let i = i.index(body.len() + 1);
                body.splice(i..i, bytes.iter().copied());
            }
            Edit::Delete(i, n) => {
                if !body.is_empty() {
                    let i = i.index(body.len());
                    let end = (i + n).min(body.len());
                    body.drain(i..end);
                }
            }
        }
    }
    body
}

/// The whole request path over HTTP: any body gets either an answer or an
/// Anthropic-shaped error, never a dropped connection, a panic or another shape.
#[test]
fn the_request_path_answers_any_body_in_anthropic_shape() {
    let cases: u32 = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let transcript = openai_transcript(&[json!({"content": "hi"})], "stop");
    let (fake, app) = rt.block_on(async {
        let fake = FakeUpstream::start_with(move |req, _| {
            if req.body["stream"] == json!(true) {
                Reply::sse_events(&transcript, std::time::Duration::ZERO, SseEnd::Finish)
            } else {
                Reply::json(&json!({
                    "id": "c", "object": "chat.completion", "model": "m",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
                }))
            }
        })
        .await;
        let doc = json!({
            "Providers": [{"name": "local", "api_base_url": fake.url("/v1/chat/completions"), "models": ["m"], "context_window": 4096}],
            "Router": {"default": "local,m"},
        });
        let app = ProxyApp::start_config(proxy_app::config(&doc)).await;
        (fake, app)
    });
    let client = reqwest::Client::new();
    let url = app.url("/v1/messages");
    let refused = std::cell::Cell::new(0u32);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig::with_cases(cases));
    let strategy = prop_oneof![
        edits().prop_map(|e| apply(base_request(), &e)),
        proptest::collection::vec((0..POINTERS.len(), odd_value()), 1..4).prop_map(|swaps| {
            let mut v: Value = serde_json::from_slice(&base_request()).unwrap();
            for (i, value) in swaps {
                if let Some(slot) = v.pointer_mut(POINTERS[i]) {
                    *slot = value;
                }
            }
            v.to_string().into_bytes()
        }),
        proptest::collection::vec(any::<u8>(), 0..256),
    ];
    runner
        .run(&strategy, |body| {
            let (status, text) = rt.block_on(async {
                let resp = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .map_err(|e| TestCaseError::fail(format!("no answer: {e}")))?;
                let status = resp.status().as_u16();
                let text = resp
                    .text()
                    .await
                    .map_err(|e| TestCaseError::fail(format!("answer broke: {e}")))?;
                Ok::<_, TestCaseError>((status, text))
            })?;
            if status == 200 {
                if text.starts_with("event:") {
                    assert_anthropic_stream(text.as_bytes())?;
                } else {
                    let v: Value = serde_json::from_str(&text)
                        .map_err(|e| TestCaseError::fail(format!("200 not JSON: {e}")))?;
                    prop_assert_eq!(v["type"].as_str(), Some("message"), "{}", text);
                }
            } else {
                refused.set(refused.get() + 1);
                let v: Value = serde_json::from_str(&text)
                    .map_err(|e| TestCaseError::fail(format!("{status} not JSON ({e}): {text}")))?;
                prop_assert_eq!(v["type"].as_str(), Some("error"), "{}", text);
                prop_assert!(
                    v["error"]["type"].is_string() && v["error"]["message"].is_string(),
                    "{}",
                    text
                );
                prop_assert!((400..600).contains(&status), "{}", status);
            }
            Ok(())
        })
        .unwrap();
    // Both ways were exercised: some bodies reached the upstream, some were refused.
    let forwarded = fake.requests().len() as u32;
    assert!(
        forwarded > cases / 50,
        "only {forwarded} of {cases} reached the upstream"
    );
    assert!(
        refused.get() > cases / 20,
        "only {} of {cases} were refused",
        refused.get()
    );
}
