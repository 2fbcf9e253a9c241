//! The proxy in front of a fake vLLM serving gpt-oss (support/fake_vllm.rs, which
//! follows docs/vllm-facts.md): reasoning in either field becomes thinking, tool calls
//! become tool_use (also when the arguments are not JSON), a context overflow becomes
//! Anthropic's own "prompt is too long: N tokens > M maximum", a mid-stream error
//! becomes an `event: error`, and `/v1/models` tells the model's window.

use crate::support;

use serde_json::{json, Value};
use support::fake_vllm::{Answer, FakeVllm, ReasoningField};
use support::proxy_app::{error_body, ProxyApp};
use support::sse::{sse_events, sse_text};

const MODEL: &str = "openai/gpt-oss-20b";

fn doc(url: &str, window: Option<u64>) -> Value {
    let mut provider =
        json!({"name": "vllm", "api_base_url": url, "api_key": "", "models": [MODEL]});
    if let Some(w) = window {
        provider["context_window"] = json!(w);
    }
    json!({"Providers": [provider], "Router": {"default": format!("vllm,{MODEL}")}})
}

fn request(text: &str) -> Value {
    json!({
        "model": "claude-opus-4-8", "max_tokens": 1024, "stream": true,
        "system": [{"type": "text", "text": "You are helpful."}],
        "messages": [{"role": "user", "content": text}],
        "tools": [{"name": "Bash", "description": "Run a command",
            "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}}]
    })
}

async fn stream_of(vllm: &FakeVllm, window: Option<u64>) -> Vec<(String, Value)> {
    let proxy = ProxyApp::start(&doc(&vllm.url(), window)).await;
    let resp = proxy.post(&request("list the files")).await;
    assert_eq!(resp.status(), 200);
    sse_events(&resp.text().await.unwrap())
}

fn thinking(events: &[(String, Value)]) -> String {
    events
        .iter()
        .filter_map(|(_, d)| d["delta"]["thinking"].as_str())
        .collect()
}

#[tokio::test]
async fn vllm_reasoning_in_either_field_streams_as_thinking_then_text() {
    for field in [ReasoningField::Reasoning, ReasoningField::ReasoningContent] {
        let answer = Answer::Text {
            reasoning: "The user wants files.".into(),
            text: "Here they are.".into(),
        };
        let vllm = FakeVllm::start(MODEL, 8192, field, vec![answer]).await;
        let events = stream_of(&vllm, Some(8192)).await;
        assert_eq!(thinking(&events), "The user wants files.", "{field:?}");
        assert_eq!(sse_text(&events), "Here they are.", "{field:?}");
        let sent = &vllm.upstream.requests()[0];
        assert_eq!(sent.body["model"], MODEL);
    }
}

/// The tool_use input an answer streamed (its input_json_delta pieces, joined).
fn tool_input(events: &[(String, Value)]) -> (String, Value) {
    let name = events
        .iter()
        .find_map(|(_, d)| d["content_block"]["name"].as_str())
        .expect("a tool_use block")
        .to_owned();
    let json: String = events
        .iter()
        .filter_map(|(_, d)| d["delta"]["partial_json"].as_str())
        .collect();
    (
        name,
        serde_json::from_str(&json).expect("the input is JSON"),
    )
}

#[tokio::test]
async fn vllm_tool_calls_become_tool_use_even_with_broken_arguments() {
    // vLLM's openai tool parser keeps arguments it cannot decode as raw text: the
    // proxy's repair must still hand Claude Code a JSON input.
    for arguments in [r#"{"command": "ls -la"}"#, r#"{"command": "ls -la",}"#] {
        let answer = Answer::ToolCall {
            reasoning: "I should list.".into(),
            name: "Bash".into(),
            arguments: arguments.into(),
        };
        let vllm = FakeVllm::start(MODEL, 8192, ReasoningField::Reasoning, vec![answer]).await;
        let events = stream_of(&vllm, Some(8192)).await;
        let (name, input) = tool_input(&events);
        assert_eq!(name, "Bash");
        assert_eq!(input, json!({"command": "ls -la"}), "{arguments}");
        let stop = events
            .iter()
            .find_map(|(_, d)| d["delta"]["stop_reason"].as_str());
        assert_eq!(stop, Some("tool_use"));
    }
}

#[tokio::test]
async fn vllm_context_overflow_becomes_anthropics_prompt_is_too_long() {
    let answer = Answer::Text {
        reasoning: String::new(),
        text: "unused".into(),
    };
    let vllm = FakeVllm::start(MODEL, 2048, ReasoningField::Reasoning, vec![answer]).await;
    // No context_window configured: the proxy does not know the limit, vLLM refuses.
    let proxy = ProxyApp::start(&doc(&vllm.url(), None)).await;
    let resp = proxy.post(&request(&"word ".repeat(4000))).await;
    let (status, body) = error_body(resp).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let message = body["error"]["message"].as_str().unwrap();
    // Claude Code reads both counts with this pattern and compacts.
    let re = regex_automata::meta::Regex::new(r"^prompt is too long: (\d+) tokens > 2048 maximum")
        .unwrap();
    assert!(re.is_match(message), "{message}");
    assert!(
        message.contains("maximum context length is 2048"),
        "{message}"
    );
}

#[tokio::test]
async fn vllm_error_in_the_stream_becomes_an_error_event() {
    let answer = Answer::StreamError {
        reasoning: "Thinking ".into(),
        message: "unexpected tokens remaining in message header".into(),
    };
    let vllm = FakeVllm::start(MODEL, 8192, ReasoningField::Reasoning, vec![answer]).await;
    let proxy = ProxyApp::start(&doc(&vllm.url(), Some(8192))).await;
    let resp = proxy.post(&request("hi")).await;
    let body = resp.text().await.unwrap();
    let events = sse_events(&body);
    let error = events
        .iter()
        .find(|(name, _)| name == "error")
        .unwrap_or_else(|| panic!("no error event: {body}"));
    let message = error.1["error"]["message"].as_str().unwrap();
    assert!(message.contains("unexpected tokens remaining"), "{message}");
}

#[tokio::test]
async fn vllm_models_tell_the_served_context_window() {
    let answer = Answer::Text {
        reasoning: String::new(),
        text: "x".into(),
    };
    let vllm = FakeVllm::start(MODEL, 65_536, ReasoningField::Reasoning, vec![answer]).await;
    let root = vllm.upstream.url("");
    let client = reqwest::Client::new();
    let caps = ccr_setup::proxy::capabilities::probe(&client, &root, MODEL)
        .await
        .expect("the server answered");
    assert_eq!(caps.context, Some(65_536));
    let other = ccr_setup::proxy::capabilities::probe(&client, &root, "other")
        .await
        .unwrap();
    assert_eq!(other.context, None);
}
