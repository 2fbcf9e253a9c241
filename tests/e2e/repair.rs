//! Tool-call repair with the real Claude Code (2.1.197): a scripted local upstream
//! answers the main turn with each malformed shape a local model was seen to send (a
//! namespaced name, stringified or JSON5 arguments, a string where a number goes,
//! gpt-oss's `container.exec`, a call printed as fenced JSON or in harmony framing);
//! after the proxy's repair, Claude Code runs the Bash command, which writes a marker
//! file, and sends its result back.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::claude_code::{run_claude, start_proxy};
use support::openai_upstream::{openai_transcript, FakeUpstream, Recorded, Reply, SseEnd};

/// The shapes, each as the delta the upstream streams; `MARKER` is replaced by the
/// marker file's name.
fn shapes() -> Vec<(&'static str, Value)> {
    let call = |name: &str, arguments: &str| {
        json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
            "function": {"name": name, "arguments": arguments}}]})
    };
    vec![
        (
            "namespaced name",
            call("functions.Bash", r#"{"command": "touch MARKER"}"#),
        ),
        (
            "stringified arguments",
            call("Bash", r#""{\"command\": \"touch MARKER\"}""#),
        ),
        (
            "json5 arguments",
            call("bash", "{'command': 'touch MARKER', 'timeout': '60000',}"),
        ),
        (
            "container.exec",
            call(
                "container.exec",
                r#"{"cmd": ["bash", "-lc", "touch MARKER"]}"#,
            ),
        ),
        (
            "fenced text",
            json!({"content": "```json\n{\"name\": \"Bash\", \"arguments\": {\"command\": \"touch MARKER\"}}\n```"}),
        ),
        (
            "harmony text",
            json!({"content": "<|channel|>commentary to=functions.Bash <|constrain|>json<|message|>{\"command\": \"touch MARKER\"}<|call|>"}),
        ),
    ]
}

/// The main turn gets the shape; the turn carrying the tool's result, and Claude
/// Code's side requests, get a short text.
fn answer(shape: &Value, req: &Recorded) -> Reply {
    let messages = req.body["messages"].as_array().cloned().unwrap_or_default();
    let has_result = messages.iter().any(|m| m["role"] == "tool");
    let main_turn = req.body["stream"] == true
        && req.body["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["function"]["name"] == "Bash"));
    if main_turn && !has_result {
        let finish = if shape.get("content").is_some() {
            "stop"
        } else {
            "tool_calls"
        };
        return Reply::sse_events(
            &openai_transcript(std::slice::from_ref(shape), finish),
            Duration::from_millis(5),
            SseEnd::Finish,
        );
    }
    let text = json!({"role": "assistant", "content": "Done."});
    if req.body["stream"] == true {
        Reply::sse_events(
            &openai_transcript(&[text], "stop"),
            Duration::from_millis(5),
            SseEnd::Finish,
        )
    } else {
        Reply::json(
            &json!({"id": "c", "choices": [{"index": 0, "finish_reason": "stop",
            "message": text}], "usage": {"prompt_tokens": 10, "completion_tokens": 2}}),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_runs_each_repaired_tool_call() {
    let Some(claude) = support::require_tool("CCR_E2E_CLAUDE") else {
        return;
    };
    for (i, (what, shape)) in shapes().into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let marker = format!("ccr-repair-marker-{i}");
        let shape: Value =
            serde_json::from_str(&shape.to_string().replace("MARKER", &marker)).unwrap();
        let upstream = FakeUpstream::start_with(move |req, _| answer(&shape, req)).await;
        let config = json!({
            "Providers": [{"name": "local", "api_base_url": upstream.url("/v1/chat/completions"),
                           "models": ["gpt-oss:20b"]}],
            "Router": {"default": "local,gpt-oss:20b"},
        });
        let (_proxy, base, log) = start_proxy(dir.path(), config).await;
        let run = run_claude(
            &claude,
            dir.path(),
            &base,
            "Create the marker file.",
            &["--allowedTools", "Bash"],
        )
        .await;
        let proxy_log = std::fs::read_to_string(&log).unwrap_or_default();
        let context = format!("{what}: {}", run.context(&proxy_log));
        assert!(run.status.success(), "{context}");
        assert!(
            dir.path().join("work").join(&marker).exists(),
            "Claude Code did not run the repaired call\n{context}"
        );
        let result_sent = upstream.requests().iter().any(|r| {
            r.body["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"))
        });
        assert!(result_sent, "the tool's result went back\n{context}");
        assert!(proxy_log.contains("repaired a tool call"), "{context}");
        eprintln!("{what}: ran, claude printed {:?}", run.stdout.trim());
    }
}
