//! The proxy translates for each local model as it is (issue #27): capabilities asked
//! of the server (`/api/show`, `/props`), or learnt from a capability error and
//! remembered; images and thinking kept from a model that cannot take them.

use crate::support;

use std::time::Duration;

use serde_json::{json, Value};
use support::fake_ollama::openai::RUNNER_IMAGE_ERROR;
use support::fake_ollama::{FakeConfig, FakeModel, FakeOllama};
use support::openai_upstream::{openai_transcript, FakeUpstream, Reply, SseEnd};
use support::proxy_app::{route_of, ProxyApp};
use support::sse::{sse_events, sse_text};

const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/// The proxy with `ollama,<model>` at `url` as the default and `extra` merged into
/// the document.
async fn proxy(url: &str, model: &str, extra: Value) -> ProxyApp {
    let mut doc = json!({
        "Providers": [{"name": "ollama", "api_base_url": url, "api_key": "", "models": [model]}],
        "Router": {"default": format!("ollama,{model}")}
    });
    for (k, v) in extra.as_object().unwrap() {
        match (k.as_str(), v) {
            ("Providers", Value::Array(more)) => doc["Providers"]
                .as_array_mut()
                .unwrap()
                .extend(more.clone()),
            ("Router", Value::Object(more)) => {
                for (rk, rv) in more {
                    doc["Router"][rk] = rv.clone();
                }
            }
            _ => doc[k] = v.clone(),
        }
    }
    ProxyApp::start(&doc).await
}

/// A Claude Code main request: streamed, adaptive thinking at its default effort.
fn claude_code(messages: Value) -> Value {
    json!({"model": "claude-opus-4-8", "max_tokens": 512, "stream": true,
           "thinking": {"type": "adaptive"}, "output_config": {"effort": "high"},
           "messages": messages})
}

fn screenshot(text: &str) -> Value {
    json!({"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "text", "text": text}]})
}

/// Post `body`; the answer's text, with no error event.
async fn answered(app: &ProxyApp, body: &Value) -> String {
    let resp = app.post(body).await;
    assert_eq!(resp.status(), 200);
    let events = sse_events(&resp.text().await.unwrap());
    assert!(!events.iter().any(|(n, _)| n == "error"), "{events:?}");
    sse_text(&events)
}

#[tokio::test]
async fn proxy_screenshot_then_three_text_turns_on_gpt_oss_never_send_an_image() {
    let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
    let url = format!("{}/v1/chat/completions", fake.url());
    let app = proxy(&url, "gpt-oss:20b", json!({})).await;
    let mut history = vec![screenshot("what does this screenshot show?")];
    for turn in ["thanks", "and now?", "one more"] {
        let text = answered(&app, &claude_code(json!(history))).await;
        assert_eq!(text, "Hello from the fake Ollama.");
        history.push(json!({"role": "assistant", "content": text}));
        history.push(json!({"role": "user", "content": turn}));
    }
    answered(&app, &claude_code(json!(history))).await;
    let bodies = fake.bodies("/v1/chat/completions");
    assert_eq!(bodies.len(), 4, "each turn answered at the first try");
    for body in &bodies {
        assert!(!body.to_string().contains("image_url"), "{body}");
        assert_eq!(
            body["reasoning_effort"], "medium",
            "Claude Code's default effort"
        );
    }
    // The screenshot turn tells the model it cannot see, and how the user adds a
    // cloud image route; later turns carry the one-line note.
    let first = bodies[0]["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        first["content"].as_str().unwrap().contains("Router.image"),
        "{first}"
    );
    let later = &bodies[3]["messages"][0]["content"];
    assert!(
        later
            .as_str()
            .unwrap()
            .starts_with("[an image was attached here"),
        "{later}"
    );
    assert_eq!(fake.hits("/api/show"), 1, "asked once, then remembered");
}

#[tokio::test]
async fn proxy_screenshot_goes_to_the_image_route_and_later_turns_stay_local() {
    let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
    let transcript = openai_transcript(&[json!({"content": "a cat"})], "stop");
    let cloud = FakeUpstream::start(vec![Reply::sse_events(
        &transcript,
        Duration::ZERO,
        SseEnd::Finish,
    )])
    .await;
    let url = format!("{}/v1/chat/completions", fake.url());
    let extra = json!({
        "Providers": [{"name": "cloud", "api_base_url": cloud.url("/v1/chat/completions"),
                       "api_key": "sk-cloud", "models": ["vision-model"]}],
        "Router": {"image": "cloud,vision-model"}
    });
    let app = proxy(&url, "gpt-oss:20b", extra).await;
    let mut history = vec![screenshot("what is this?")];
    let resp = app.post(&claude_code(json!(history))).await;
    assert!(
        route_of(&resp).starts_with("cloud,vision-model"),
        "{}",
        route_of(&resp)
    );
    assert_eq!(sse_text(&sse_events(&resp.text().await.unwrap())), "a cat");
    assert!(cloud.requests()[0].body.to_string().contains("image_url"));
    history.push(json!({"role": "assistant", "content": "a cat"}));
    history.push(json!({"role": "user", "content": "thanks"}));
    let resp = app.post(&claude_code(json!(history))).await;
    assert!(
        route_of(&resp).starts_with("ollama,gpt-oss:20b"),
        "{}",
        route_of(&resp)
    );
    assert_eq!(
        sse_text(&sse_events(&resp.text().await.unwrap())),
        "Hello from the fake Ollama."
    );
    let sent = fake.bodies("/v1/chat/completions");
    assert!(!sent[0].to_string().contains("image_url"), "{}", sent[0]);
}

#[tokio::test]
async fn proxy_a_model_without_thinking_never_receives_reasoning_effort() {
    let fake = FakeOllama::start(
        FakeConfig::default().with_installed(FakeModel::plain("qwen2.5-coder:7b")),
    );
    let url = format!("{}/v1/chat/completions", fake.url());
    let app = proxy(&url, "qwen2.5-coder:7b", json!({})).await;
    for effort in ["high", "max"] {
        let mut req = claude_code(json!([{"role": "user", "content": "hi"}]));
        req["output_config"]["effort"] = json!(effort);
        assert_eq!(answered(&app, &req).await, "Hello from the fake Ollama.");
    }
    let bodies = fake.bodies("/v1/chat/completions");
    assert_eq!(bodies.len(), 2, "no 400 and no retry: {bodies:?}");
    assert!(
        bodies.iter().all(|b| b.get("reasoning_effort").is_none()),
        "{bodies:?}"
    );
}

/// A server with neither `/api/show` nor `/props` (vLLM, a scripted upstream): the
/// capability error is read from its message, the request is sent once more without
/// the part, and the next request leaves it out from the start.
#[tokio::test]
async fn proxy_a_capability_error_is_retried_without_the_part_and_remembered() {
    let ok = openai_transcript(&[json!({"content": "ok"})], "stop");
    let upstream = FakeUpstream::start_with(move |req, _| {
        let body = req.body.to_string();
        if body.contains("reasoning_effort") {
            let error = json!({"error": {"message": "\"m\" does not support thinking", "type": "invalid_request_error"}});
            return Reply::status(400, &error.to_string());
        }
        if body.contains("image_url") {
            let error = json!({"error": {"message": RUNNER_IMAGE_ERROR, "type": "api_error"}});
            return Reply::status(500, &error.to_string());
        }
        Reply::sse_events(&ok, Duration::ZERO, SseEnd::Finish)
    })
    .await;
    let app = proxy(&upstream.url("/v1/chat/completions"), "m", json!({})).await;
    let first = claude_code(json!([screenshot("what is this?")]));
    assert_eq!(answered(&app, &first).await, "ok");
    let sent: Vec<String> = upstream
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    assert_eq!(
        sent.len(),
        3,
        "thinking refused, image refused, then answered"
    );
    assert!(sent[1].contains("image_url") && !sent[1].contains("reasoning_effort"));
    assert!(sent[2].contains("Router.image") && !sent[2].contains("image_url"));
    // Remembered: the next turn is sent without either part at the first try.
    let next = claude_code(json!([screenshot("and this one?")]));
    assert_eq!(answered(&app, &next).await, "ok");
    assert_eq!(upstream.requests().len(), 4);
    assert!(
        upstream.probes() >= 2,
        "it asked /api/show and /props first"
    );
}

/// A capability error that arrives after the stream was committed (the server answered
/// only after a ping interval): that answer ends in an error event, and the next
/// request is sent without the part from the start.
#[tokio::test]
async fn proxy_a_late_capability_error_is_remembered_for_the_next_request() {
    let ok = openai_transcript(&[json!({"content": "ok"})], "stop");
    let upstream = FakeUpstream::start_with(move |req, _| {
        if req.body.to_string().contains("reasoning_effort") {
            let error = json!({"error": {"message": "\"m\" does not support thinking", "type": "invalid_request_error"}});
            return Reply::Delayed {
                delay: Duration::from_millis(300),
                reply: Box::new(Reply::status(400, &error.to_string())),
            };
        }
        Reply::sse_events(&ok, Duration::ZERO, SseEnd::Finish)
    })
    .await;
    let doc = json!({
        "Providers": [{"name": "local", "api_base_url": upstream.url("/v1/chat/completions"), "api_key": "", "models": ["m"]}],
        "Router": {"default": "local,m"}
    });
    let options = ccr_setup::proxy::server::ServerOptions {
        ping_interval: Duration::from_millis(50),
    };
    let app = ProxyApp::start_with(support::proxy_app::config(&doc), options).await;
    let req = claude_code(json!([{"role": "user", "content": "hi"}]));
    let events = sse_events(&app.post(&req).await.text().await.unwrap());
    assert!(events.iter().any(|(n, _)| n == "error"), "{events:?}");
    assert_eq!(answered(&app, &req).await, "ok");
    let sent: Vec<String> = upstream
        .requests()
        .iter()
        .map(|r| r.body.to_string())
        .collect();
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(!sent[1].contains("reasoning_effort"), "{}", sent[1]);
}

/// An Ollama under any provider name and port is known by its answer to `/api/show`,
/// so what Ollama needs applies (here: `tool_choice: none`, which Ollama ignores, is
/// enforced by offering no tools).
#[tokio::test]
async fn proxy_an_ollama_is_known_by_its_api_show_not_its_name_or_port() {
    let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
    let doc = json!({
        "Providers": [{"name": "box", "api_base_url": format!("{}/v1/chat/completions", fake.url()),
                       "api_key": "", "models": ["gpt-oss:20b"]}],
        "Router": {"default": "box,gpt-oss:20b"}
    });
    let app = ProxyApp::start(&doc).await;
    let mut req = claude_code(json!([{"role": "user", "content": "hi"}]));
    req["tools"] = json!([{"name": "get_time", "input_schema": {"type": "object"}}]);
    req["tool_choice"] = json!({"type": "none"});
    assert_eq!(answered(&app, &req).await, "Hello from the fake Ollama.");
    let sent = &fake.bodies("/v1/chat/completions")[0];
    assert!(sent.get("tools").is_none(), "{sent}");
}
