//! Routing, the context guard, count_tokens, /v1/models, auth and live reload through
//! the real proxy app in front of fake upstreams.

use crate::support;

use std::time::Duration;

use ccr_setup::ledger::RequestOutcome;
use ccr_setup::proxy::tokens::TokenEstimator;
use ccr_setup::proxy::wire::anthropic::MessagesRequest;
use serde_json::{json, Value};
use support::openai_upstream::{FakeUpstream, Reply};
use support::proxy_app::{error_body, route_of, ProxyApp};

fn completion(text: &str) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}
    })
}

async fn answering(text: &str) -> FakeUpstream {
    FakeUpstream::start(vec![Reply::json(&completion(text))]).await
}

fn provider(name: &str, fake: &FakeUpstream, models: &[&str], window: Option<u32>) -> Value {
    let mut p = json!({"name": name, "api_base_url": fake.url("/v1/chat/completions"), "api_key": "", "models": models});
    if let Some(w) = window {
        p["context_window"] = json!(w);
    }
    p
}

fn ask(text: &str) -> Value {
    json!({
        "model": "claude-opus-4-8",
        "max_tokens": 64000,
        "system": [{"type": "text", "text": "You are helpful."}],
        "messages": [{"role": "user", "content": text}]
    })
}

/// Input tokens as the proxy estimates them for an OpenAI-kind target.
fn estimate(body: &Value) -> u64 {
    let req: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
    TokenEstimator::default()
        .count(&req)
        .total_without_thinking()
}

#[tokio::test]
async fn a_prompt_larger_than_the_window_is_refused_in_anthropics_words() {
    let local = answering("unused").await;
    let mut proxy = ProxyApp::start(&json!({
        "Providers": [provider("ollama", &local, &["gpt-oss:20b"], Some(4096))],
        "Router": {"default": "ollama,gpt-oss:20b"}
    }))
    .await;
    let body = ask(&"lorem ipsum dolor sit amet ".repeat(1000));
    let n = estimate(&body);
    assert!(n > 4096);
    let (status, err) = error_body(proxy.post(&body).await).await;
    assert_eq!(status, 400);
    assert_eq!(err["type"], "error");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    // Anthropic's wording, which makes Claude Code compact (nothing to clear here: the
    // prompt is one message). 4096-token window, 2048 of it kept for the answer.
    assert_eq!(
        err["error"]["message"],
        format!("prompt is too long: {n} tokens > 2048 maximum (provider \"ollama\" has a 4096-token context; ccr-setup kept 2048 tokens free for the answer and could not clear enough old tool results)")
    );
    assert!(
        local.requests().is_empty(),
        "nothing was sent to be silently truncated"
    );
    let row = proxy.next_record().await;
    assert_eq!(
        row.outcome,
        RequestOutcome::Rejected("context_guard".into())
    );
    assert_eq!(row.http_status, 400);
}

#[tokio::test]
async fn a_prompt_larger_than_the_window_goes_to_long_context_when_set() {
    let local = answering("unused").await;
    let cloud = answering("long answer").await;
    let mut proxy = ProxyApp::start(&json!({
        "Providers": [
            provider("ollama", &local, &["gpt-oss:20b"], Some(4096)),
            provider("cloud", &cloud, &["big-context"], None)
        ],
        // Threshold above the prompt: only the context guard can move it.
        "Router": {"default": "ollama,gpt-oss:20b", "longContext": "cloud,big-context", "longContextThreshold": 100000}
    }))
    .await;
    let resp = proxy
        .post(&ask(&"lorem ipsum dolor sit amet ".repeat(1000)))
        .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        route_of(&resp),
        "cloud,big-context; scenario=longContext; fallback=no"
    );
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["content"][0]["text"], "long answer");
    assert!(local.requests().is_empty());
    assert_eq!(cloud.requests()[0].body["model"], "big-context");
    assert_eq!(
        cloud.requests()[0].body["max_tokens"],
        64000,
        "no window, no clamp"
    );
    assert_eq!(proxy.next_record().await.scenario, "longContext");
}

#[tokio::test]
async fn max_tokens_is_clamped_to_what_fits_the_window() {
    let local = answering("ok").await;
    let proxy = ProxyApp::start(&json!({
        "Providers": [provider("ollama", &local, &["gpt-oss:20b"], Some(32768))],
        "Router": {"default": "ollama,gpt-oss:20b"}
    }))
    .await;
    let body = ask("hello there");
    let n = estimate(&body);
    assert_eq!(proxy.post(&body).await.status(), 200);
    assert_eq!(local.requests()[0].body["max_tokens"], json!(32768 - n));
}

#[tokio::test]
async fn rules_route_to_their_models_and_the_subagent_tag_is_stripped() {
    let local = FakeUpstream::start(vec![Reply::json(&completion("ok"))]).await;
    let cloud = FakeUpstream::start(vec![Reply::json(&completion("ok"))]).await;
    let proxy = ProxyApp::start(&json!({
        "Providers": [
            provider("ollama", &local, &["gpt-oss:20b", "qwen3:8b"], None),
            provider("cloud", &cloud, &["smart", "fast"], None)
        ],
        "Router": {"default": "ollama,gpt-oss:20b", "background": "ollama,qwen3:8b", "think": "cloud,smart"}
    }))
    .await;

    // Subagent tag at system index 2 (after the billing header and Claude Code's intro).
    let mut body = ask("review this");
    body["system"] = json!([
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1.197"},
        {"type": "text", "text": "You are Claude Code"},
        {"type": "text", "text": "<CCR-SUBAGENT-MODEL>cloud,fast</CCR-SUBAGENT-MODEL>\nYou are a code reviewer."}
    ]);
    let resp = proxy.post(&body).await;
    assert_eq!(
        route_of(&resp),
        "cloud,fast; scenario=subagent; fallback=no"
    );
    let sent = &cloud.requests()[0].body;
    assert_eq!(sent["model"], "fast");
    let system = serde_json::to_string(&sent["messages"][0]).unwrap();
    assert!(!system.contains("CCR-SUBAGENT-MODEL"), "{system}");
    assert!(system.contains("You are a code reviewer."), "{system}");

    // think: adaptive above Claude Code's default effort.
    let mut body = ask("hard question");
    body["thinking"] = json!({"type": "adaptive"});
    body["output_config"] = json!({"effort": "max"});
    let resp = proxy.post(&body).await;
    assert_eq!(route_of(&resp), "cloud,smart; scenario=think; fallback=no");
    assert_eq!(cloud.requests()[1].body["model"], "smart");

    // background: a haiku model, even with thinking on.
    let mut body = ask("title please");
    body["model"] = json!("claude-haiku-4-5-20251001");
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 31999});
    let resp = proxy.post(&body).await;
    assert_eq!(
        route_of(&resp),
        "ollama,qwen3:8b; scenario=background; fallback=no"
    );
    assert_eq!(local.requests()[0].body["model"], "qwen3:8b");

    // explicit provider,model (Claude Code's `/model ollama,gpt-oss:20b`).
    let mut body = ask("hi");
    body["model"] = json!("ollama,gpt-oss:20b");
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 1024});
    let resp = proxy.post(&body).await;
    assert_eq!(
        route_of(&resp),
        "ollama,gpt-oss:20b; scenario=explicit; fallback=no"
    );
    assert_eq!(local.requests()[1].body["model"], "gpt-oss:20b");

    // default, with medium effort.
    let mut body = ask("hi");
    body["thinking"] = json!({"type": "adaptive"});
    body["output_config"] = json!({"effort": "medium"});
    let resp = proxy.post(&body).await;
    assert_eq!(
        route_of(&resp),
        "ollama,gpt-oss:20b; scenario=default; fallback=no"
    );

    // An unknown provider is a 400 naming it, not a silent default.
    let mut body = ask("hi");
    body["model"] = json!("olama,gpt-oss:20b");
    let (status, err) = error_body(proxy.post(&body).await).await;
    assert_eq!(status, 400);
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"olama\""),
        "{err}"
    );
}

#[tokio::test]
async fn models_lists_the_configured_pairs() {
    let local = answering("ok").await;
    let proxy = ProxyApp::start(&json!({
        "Providers": [provider("ollama", &local, &["gpt-oss:20b", "qwen3:8b"], None)],
        "Router": {"default": "ollama,gpt-oss:20b"}
    }))
    .await;
    let v: Value = reqwest::get(proxy.url("/v1/models"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["ollama,gpt-oss:20b", "ollama,qwen3:8b"]);
}

#[tokio::test]
async fn count_tokens_estimates_locally_and_asks_anthropic_providers() {
    let local = answering("ok").await;
    let cloud = FakeUpstream::start_with(|req, _| {
        if req.path == "/v1/messages/count_tokens" && req.body["model"] == "claude-sonnet-4-5" {
            Reply::json(&json!({"input_tokens": 4242}))
        } else {
            Reply::status(
                404,
                r#"{"type":"error","error":{"type":"not_found_error","message":"no"}}"#,
            )
        }
    })
    .await;
    let proxy = ProxyApp::start(&json!({
        "Providers": [
            provider("ollama", &local, &["gpt-oss:20b"], None),
            {"name": "anthropic", "api_base_url": cloud.url("/v1/messages"), "api_key": "sk-ant", "models": ["claude-sonnet-4-5", "claude-gone"]}
        ],
        "Router": {"default": "ollama,gpt-oss:20b"}
    }))
    .await;
    let count = |body: Value| {
        let url = proxy.url("/v1/messages/count_tokens");
        async move {
            let v: Value = reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["input_tokens"].as_u64().unwrap()
        }
    };
    // History with a local model's thinking, which an OpenAI-kind target never receives.
    let body = json!({"model": "claude-opus-4-8", "system": "be brief", "messages": [
        {"role": "user", "content": "count these words please"},
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "the user wants a count of words", "signature": ""}, {"type": "text", "text": "four"}]},
        {"role": "user", "content": "thanks"}
    ]});
    let req: MessagesRequest = serde_json::from_value(body.clone()).unwrap();
    let full = TokenEstimator::default().count(&req);
    assert!(full.thinking > 0);
    assert_eq!(count(body.clone()).await, full.total_without_thinking());
    assert!(
        local.requests().is_empty(),
        "the estimate needs no upstream"
    );

    let mut cloud_body = body.clone();
    cloud_body["model"] = json!("anthropic,claude-sonnet-4-5");
    assert_eq!(count(cloud_body).await, 4242);
    let sent = &cloud.requests()[0];
    assert_eq!(sent.header("x-api-key"), Some("sk-ant"));

    // The provider cannot count: the estimate answers.
    let mut gone = body.clone();
    gone["model"] = json!("anthropic,claude-gone");
    assert_eq!(
        count(gone).await,
        full.total(),
        "an Anthropic target keeps the thinking"
    );
}

#[tokio::test]
async fn apikey_accepts_x_api_key_or_bearer_everywhere() {
    let local = answering("ok").await;
    let proxy = ProxyApp::start(&json!({
        "Providers": [provider("ollama", &local, &["gpt-oss:20b"], None)],
        "Router": {"default": "ollama,gpt-oss:20b"},
        "APIKEY": "proxy-secret-123"
    }))
    .await;
    let client = reqwest::Client::new();
    let messages = proxy.url("/v1/messages");
    let ok = client
        .post(&messages)
        .header("x-api-key", "proxy-secret-123")
        .json(&ask("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok = client
        .post(&messages)
        .bearer_auth("proxy-secret-123")
        .json(&ask("hi"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let (status, err) = error_body(
        client
            .post(&messages)
            .bearer_auth("proxy-secret-12")
            .json(&ask("hi"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, err["error"]["type"].as_str()),
        (401, Some("authentication_error"))
    );
    assert!(!err.to_string().contains("proxy-secret"), "never echo keys");
    for path in ["/v1/models", "/v1/messages/count_tokens"] {
        let resp = if path == "/v1/models" {
            client.get(proxy.url(path)).send().await.unwrap()
        } else {
            client
                .post(proxy.url(path))
                .json(&ask("hi"))
                .send()
                .await
                .unwrap()
        };
        assert_eq!(resp.status(), 401, "{path}");
    }
    assert_eq!(local.requests().len(), 2);
}

#[tokio::test]
async fn config_edits_apply_without_a_restart_and_bad_ones_are_ignored() {
    use ccr_setup::config_watch::{watch, WatchOptions};
    let first = answering("first").await;
    let second = answering("second").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    let doc = |default: &str| {
        json!({
            "Providers": [provider("one", &first, &["m"], None), provider("two", &second, &["m"], None)],
            "Router": {"default": default}
        })
    };
    std::fs::write(&path, doc("one,m").to_string()).unwrap();
    let proxy = ProxyApp::start_config(ccr_setup::config::load(&path).unwrap()).await;
    let _watcher = watch(
        path.clone(),
        proxy.live.clone(),
        WatchOptions {
            poll: Duration::from_millis(100),
            debounce: Duration::from_millis(20),
        },
        |_| Ok(()),
        |_| {},
    );
    let text = |resp: reqwest::Response| async move {
        let v: Value = resp.json().await.unwrap();
        v["content"][0]["text"].as_str().unwrap().to_owned()
    };
    assert_eq!(text(proxy.post(&ask("hi")).await).await, "first");

    std::fs::write(&path, doc("two,m").to_string()).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while proxy.live.generation() == 0 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(text(proxy.post(&ask("hi")).await).await, "second");

    // A bad edit (unknown provider) keeps the last good config.
    std::fs::write(&path, doc("three,m").to_string()).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(proxy.live.generation(), 1);
    assert_eq!(text(proxy.post(&ask("hi")).await).await, "second");
}

#[test]
fn the_proxy_refuses_a_non_loopback_host_override_without_apikey() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    std::fs::write(
        &path,
        json!({
            "Providers": [{"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "api_key": "", "models": ["gpt-oss:20b"]}],
            "Router": {"default": "ollama,gpt-oss:20b"}
        })
        .to_string(),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ccr-setup"))
        .args([
            "--config",
            path.to_str().unwrap(),
            "proxy",
            "--host",
            "0.0.0.0",
            "--port",
            "1",
        ])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0") && stderr.contains("APIKEY"),
        "{stderr}"
    );
}
