//! Tool-call repair through the whole proxy (issue #19): a scripted local upstream
//! sends each malformed shape; Claude Code must get a call it can run, or the answer
//! is asked for again with a corrective note, then falls back.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::openai_upstream::{openai_transcript, FakeUpstream, Reply, SseEnd};
use support::proxy_app::ProxyApp;
use support::sse::{sse_events, sse_text};

/// Claude Code's Bash and Read tools, as 2.1.197 declares their core.
fn tools() -> Value {
    json!([
        {"name": "Bash", "description": "Run a command.", "input_schema": {
            "type": "object", "additionalProperties": false, "required": ["command"],
            "properties": {"command": {"type": "string"}, "timeout": {"type": "number"},
                           "description": {"type": "string"}}}},
        {"name": "Read", "description": "Read a file.", "input_schema": {
            "type": "object", "additionalProperties": false, "required": ["file_path"],
            "properties": {"file_path": {"type": "string"}, "limit": {"type": "integer"}}}}
    ])
}

fn request(stream: bool) -> Value {
    json!({
        "model": "claude-opus-4-8", "max_tokens": 512, "stream": stream,
        "messages": [{"role": "user", "content": "list the files"}],
        "tools": tools()
    })
}

fn streamed(deltas: &[Value], finish: &str) -> Reply {
    Reply::sse_events(
        &openai_transcript(deltas, finish),
        Duration::ZERO,
        SseEnd::Finish,
    )
}

fn whole(message: Value, finish: &str) -> Reply {
    Reply::json(
        &json!({"id": "c", "object": "chat.completion", "model": "local",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 5, "total_tokens": 35}}),
    )
}

fn call(name: &str, arguments: &str) -> Value {
    json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
        "function": {"name": name, "arguments": arguments}}]})
}

/// The proxy with `local` as the default provider and, when given, a cloud fallback.
async fn proxy(local: &FakeUpstream, cloud: Option<&FakeUpstream>) -> ProxyApp {
    let mut doc = json!({"Providers": [{"name": "local",
        "api_base_url": local.url("/v1/chat/completions"), "api_key": "", "models": ["m"]}],
        "Router": {"default": "local,m"}});
    if let Some(cloud) = cloud {
        doc["Providers"].as_array_mut().unwrap().push(json!({"name": "cloud",
            "api_base_url": cloud.url("/v1/chat/completions"), "api_key": "sk", "models": ["big"]}));
        doc["fallback"] = json!({"default": ["cloud,big"]});
    }
    ProxyApp::start(&doc).await
}

fn tool_uses(events: &[(String, Value)]) -> Vec<(String, Value)> {
    let mut uses = Vec::new();
    for (i, (name, data)) in events.iter().enumerate() {
        if name == "content_block_start" && data["content_block"]["type"] == "tool_use" {
            let index = &data["index"];
            let json: String = events[i..]
                .iter()
                .filter(|(n, d)| n == "content_block_delta" && &d["index"] == index)
                .map(|(_, d)| d["delta"]["partial_json"].as_str().unwrap_or("").to_owned())
                .collect();
            uses.push((
                data["content_block"]["name"].as_str().unwrap().to_owned(),
                serde_json::from_str(&json).unwrap(),
            ));
        }
    }
    uses
}

/// Every shape a local model was seen to send arrives as a call Claude Code can run,
/// streamed and not, and the ledger row names the repair.
#[tokio::test]
async fn malformed_calls_reach_claude_code_repaired() {
    let shapes: Vec<(Value, Value, &str)> = vec![
        (
            call("functions.Bash", r#"{"command":"ls"}"#),
            json!({"command": "ls"}),
            "name",
        ),
        (
            call("Bash", r#""{\"command\":\"ls\"}""#),
            json!({"command": "ls"}),
            "shape",
        ),
        (
            call("Bash", "{'command': 'ls',}"),
            json!({"command": "ls"}),
            "syntax",
        ),
        (
            call("Read", r#"{"file_path": "/p/a.py", "limit": "5"}"#),
            json!({"file_path": "/p/a.py", "limit": 5}),
            "coerced",
        ),
        (
            call("container.exec", r#"{"cmd": ["bash", "-lc", "ls"]}"#),
            json!({"command": "ls"}),
            "name",
        ),
        (
            json!({"content": "```json\n{\"name\": \"Bash\", \"arguments\": {\"command\": \"ls\"}}\n```"}),
            json!({"command": "ls"}),
            "text_call",
        ),
    ];
    for (delta, input, repair) in shapes {
        let message = {
            let mut m = json!({"role": "assistant"});
            if let Some(text) = delta.get("content") {
                m["content"] = text.clone();
            }
            if let Some(calls) = delta.get("tool_calls") {
                m["tool_calls"] = calls.clone();
            }
            m
        };
        let finish = if delta.get("content").is_some() {
            "stop"
        } else {
            "tool_calls"
        };
        let local = FakeUpstream::start(vec![
            streamed(std::slice::from_ref(&delta), finish),
            whole(message, finish),
        ])
        .await;
        let mut app = proxy(&local, None).await;

        let events = sse_events(&app.post(&request(true)).await.text().await.unwrap());
        let expected_name = if input.get("file_path").is_some() {
            "Read"
        } else {
            "Bash"
        };
        assert_eq!(
            tool_uses(&events),
            vec![(expected_name.to_owned(), input.clone())],
            "{delta}: {events:?}"
        );
        let stop = events.iter().find(|(n, _)| n == "message_delta").unwrap();
        assert_eq!(stop.1["delta"]["stop_reason"], "tool_use", "{delta}");
        let row = app.next_record().await;
        assert!(
            row.repairs.as_deref().unwrap_or("").contains(repair),
            "{delta}: {row:?}"
        );

        let v: Value = app.post(&request(false)).await.json().await.unwrap();
        assert_eq!(v["content"][0]["type"], "tool_use", "{delta}: {v}");
        assert_eq!(v["content"][0]["input"], input, "{delta}: {v}");
        assert_eq!(v["stop_reason"], "tool_use");
        let row = app.next_record().await;
        assert!(
            row.repairs.as_deref().unwrap_or("").contains(repair),
            "{delta}: {row:?}"
        );
        assert_eq!(local.requests().len(), 2, "no retry was needed for {delta}");
    }
}

/// A call that cannot fit is never shown: the model is asked once more with a note
/// naming the schema error, after the conversation (the cached prefix holds).
#[tokio::test]
async fn an_unfit_call_is_retried_with_a_corrective_note() {
    let bad = call("Read", r#"{"path": "/p/a.py"}"#);
    let good = call("Read", r#"{"file_path": "/p/a.py"}"#);
    let local = FakeUpstream::start(vec![
        streamed(&[bad], "tool_calls"),
        streamed(&[good], "tool_calls"),
    ])
    .await;
    let mut app = proxy(&local, None).await;
    let events = sse_events(&app.post(&request(true)).await.text().await.unwrap());
    assert_eq!(
        tool_uses(&events),
        vec![("Read".to_owned(), json!({"file_path": "/p/a.py"}))],
        "{events:?}"
    );
    assert!(!events.iter().any(|(n, _)| n == "error"), "{events:?}");
    let sent = local.requests();
    assert_eq!(sent.len(), 2);
    let first = sent[0].body["messages"].as_array().unwrap();
    let second = sent[1].body["messages"].as_array().unwrap();
    assert_eq!(
        &second[..first.len()],
        &first[..],
        "the retry keeps the prefix"
    );
    let note = &second[first.len()];
    assert_eq!(note["role"], "system");
    assert!(
        note["content"].as_str().unwrap().contains("file_path"),
        "{note}"
    );
    let row = app.next_record().await;
    assert_eq!(row.tool_call_failures, 1, "{row:?}");
    assert_eq!(row.provider, "local");
}

/// Text already shown stays; the unusable call's markup is not shown; the retry fails
/// too, so the cloud answers in the same message, its blocks numbered after ours.
#[tokio::test]
async fn after_two_unfit_answers_the_cloud_answers_in_the_same_message() {
    // Qwen XML naming a tool that was not offered: the call cannot be made to fit.
    let markup = |text: &str| json!({"content": format!("{text}\n<function=Deploy>\n<parameter=target>prod</parameter>\n</function>")});
    let local = FakeUpstream::start(vec![
        streamed(&[markup("Checking.")], "stop"),
        streamed(&[markup("Still checking.")], "stop"),
    ])
    .await;
    let cloud_transcript = openai_transcript(&[json!({"content": "from the cloud"})], "stop");
    let cloud = FakeUpstream::start(vec![Reply::sse_events(
        &cloud_transcript,
        Duration::ZERO,
        SseEnd::Finish,
    )])
    .await;
    let mut app = proxy(&local, Some(&cloud)).await;
    let events = sse_events(&app.post(&request(true)).await.text().await.unwrap());
    assert!(!events.iter().any(|(n, _)| n == "error"), "{events:?}");
    assert_eq!(
        sse_text(&events),
        "Checking.\nStill checking.\nfrom the cloud",
        "{events:?}"
    );
    let starts: Vec<u64> = events
        .iter()
        .filter(|(n, _)| n == "content_block_start")
        .map(|(_, d)| d["index"].as_u64().unwrap())
        .collect();
    assert_eq!(starts, [0, 1, 2], "block indexes continue: {events:?}");
    let count = |name: &str| events.iter().filter(|(n, _)| n == name).count();
    assert_eq!((count("message_start"), count("message_stop")), (1, 1));
    assert_eq!(count("content_block_stop"), 3, "{events:?}");
    assert_eq!(local.requests().len(), 2, "one corrective retry");
    let row = app.next_record().await;
    assert_eq!(row.provider, "cloud");
    assert_eq!(row.fallback_reason.as_deref(), Some("tool_call_invalid"));
    assert_eq!(row.tool_call_failures, 2, "{row:?}");
}

/// Without a fallback, two unfit answers end in an Anthropic-shaped error: a 502 for
/// a whole answer, an error event for a stream. Nothing unusable is passed on.
#[tokio::test]
async fn with_nothing_left_to_try_the_client_gets_an_error_not_a_bad_call() {
    let bad = call("Deploy", "{}");
    let message = json!({"role": "assistant", "tool_calls": bad["tool_calls"]});
    let local = FakeUpstream::start_with(move |req, _| match req.body["stream"].as_bool() {
        Some(true) => streamed(std::slice::from_ref(&bad), "tool_calls"),
        _ => whole(message.clone(), "tool_calls"),
    })
    .await;
    let mut app = proxy(&local, None).await;
    let events = sse_events(&app.post(&request(true)).await.text().await.unwrap());
    let error = events
        .iter()
        .find(|(n, _)| n == "error")
        .expect("an error event");
    assert!(
        error.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Deploy"),
        "{error:?}"
    );
    assert!(tool_uses(&events).is_empty());
    let row = app.next_record().await;
    assert_eq!(row.tool_call_failures, 2, "{row:?}");

    let resp = app.post(&request(false)).await;
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no tool of that name"),
        "{v}"
    );
    assert_eq!(local.requests().len(), 4);
}

/// The local model whose answers keep being unusable sends its session to the cloud
/// for `fallback.cloud_requests` requests, then gets another chance; other sessions
/// stay local. The status line's endpoint reports it.
#[tokio::test]
async fn a_session_whose_local_answers_keep_failing_goes_to_the_cloud_for_a_while() {
    let bad = json!({"role": "assistant", "tool_calls": call("Deploy", "{}")["tool_calls"]});
    let local = FakeUpstream::start(vec![whole(bad, "tool_calls")]).await;
    let cloud = FakeUpstream::start(vec![whole(
        json!({"role": "assistant", "content": "from the cloud"}),
        "stop",
    )])
    .await;
    let doc = json!({"Providers": [
        {"name": "local", "api_base_url": local.url("/v1/chat/completions"), "api_key": "", "models": ["m"]},
        // Loopback in the test, so it is marked as the cloud explicitly.
        {"name": "cloud", "api_base_url": cloud.url("/v1/chat/completions"), "api_key": "sk",
         "models": ["big"], "local": false}],
        "Router": {"default": "local,m"},
        "fallback": {"default": ["cloud,big"], "after_local_failures": 2, "cloud_requests": 3}});
    let mut app = ProxyApp::start(&doc).await;
    let in_session = |id: &str| {
        let mut r = request(false);
        r["metadata"] = json!({"user_id": json!({"session_id": id}).to_string()});
        r
    };
    let local_calls = || local.requests().len();

    // Two unusable local answers (each asked twice), both rescued by the cloud.
    for _ in 0..2 {
        let resp = app.post(&in_session("s1")).await;
        assert!(support::proxy_app::route_of(&resp).contains("fallback=yes"));
        let row = app.next_record().await;
        assert_eq!(row.fallback_reason.as_deref(), Some("tool_call_invalid"));
    }
    assert_eq!(local_calls(), 4);

    // The next three go straight to the cloud, and say why.
    for _ in 0..3 {
        let resp = app.post(&in_session("s1")).await;
        assert_eq!(resp.status(), 200);
        let route = support::proxy_app::route_of(&resp);
        assert!(route.starts_with("cloud,big; scenario=quality"), "{route}");
        let row = app.next_record().await;
        assert_eq!(row.scenario, "quality");
    }
    assert_eq!(local_calls(), 4, "the local model was not asked");
    let report: Value = reqwest::get(app.url("/v1/ccr/sessions/s1"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["cloud_requests_left"], 0, "{report}");
    assert_eq!(report["last"]["target"], "cloud,big", "{report}");
    assert_eq!(report["last"]["scenario"], "quality", "{report}");

    // Then local again; and another session was never moved.
    app.post(&in_session("s1")).await;
    assert_eq!(local_calls(), 6);
    app.post(&in_session("s2")).await;
    assert_eq!(local_calls(), 8);
    let unknown = reqwest::get(app.url("/v1/ccr/sessions/nope"))
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}

/// qwen3-coder's XML call leaked as text (ollama#16686, #14834): with and without a line
/// of prose before it, streamed in small pieces and not, it reaches Claude Code as a
/// `tool_use`; the prose stays a text block before it.
#[tokio::test]
async fn qwen3_coder_xml_calls_become_tool_use_with_and_without_prose() {
    let call = "<function=Bash>\n<parameter=command>\nls -la\n</parameter>\n<parameter=timeout>\n5000\n</parameter>\n</function>\n</tool_call>";
    let input = json!({"command": "ls -la", "timeout": 5000});
    for prose in ["", "I'll list the files.\n\n"] {
        let text = format!("{prose}{call}");
        // Streamed the way Ollama streams content: a few characters per chunk, so the
        // markup arrives split.
        let pieces: Vec<Value> = text
            .as_bytes()
            .chunks(7)
            .map(|c| json!({"content": String::from_utf8_lossy(c)}))
            .collect();
        let local = FakeUpstream::start(vec![
            streamed(&pieces, "stop"),
            whole(json!({"role": "assistant", "content": text}), "stop"),
        ])
        .await;
        let mut app = proxy(&local, None).await;
        let events = sse_events(&app.post(&request(true)).await.text().await.unwrap());
        assert_eq!(
            tool_uses(&events),
            vec![("Bash".to_owned(), input.clone())],
            "{prose:?}: {events:?}"
        );
        assert_eq!(sse_text(&events).trim_end(), prose.trim_end(), "{events:?}");
        let stop = events.iter().find(|(n, _)| n == "message_delta").unwrap();
        assert_eq!(stop.1["delta"]["stop_reason"], "tool_use");
        assert!(app
            .next_record()
            .await
            .repairs
            .unwrap_or_default()
            .contains("text_call"));

        let v: Value = app.post(&request(false)).await.json().await.unwrap();
        let blocks = v["content"].as_array().unwrap();
        let last = blocks.last().unwrap();
        assert_eq!(
            (&last["type"], &last["input"]),
            (&json!("tool_use"), &input),
            "{v}"
        );
        match prose {
            "" => assert_eq!(blocks.len(), 1, "{v}"),
            _ => assert_eq!(blocks[0]["text"], prose.trim_end(), "{v}"),
        }
        assert_eq!(v["stop_reason"], "tool_use");
        assert_eq!(local.requests().len(), 2, "no retry was needed");
    }
}
