//! The cloud key's path from question to request: `init` takes it from the environment
//! (or asks), checks it with one `GET /v1/models`, stores it 0600 beside the config, and
//! a proxy started with a bare environment (as a launchd/systemd service is: HOME and
//! nothing else) sends it upstream; a key set nowhere disables only that provider.

use crate::support;

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{json, Value};
use support::claude_code::{wait_for_proxy, Child};
use support::openai_upstream::{FakeUpstream, Reply};
use support::sandbox::{run_expect, Sandbox};
use support::tiny_http::TinyHttp;

fn init_cloud(sb: &Sandbox, key: &str, models_url: &str) -> Command {
    sb.fakes.add("ollama");
    sb.fakes.add("claude");
    let mut cmd = sb.cmd(&[
        "init",
        "--yes",
        "--cloud-fallback",
        "--service-manager",
        "none",
    ]);
    cmd.env("ANTHROPIC_API_KEY", key)
        .env("CCR_SETUP_ANTHROPIC_MODELS_URL", models_url)
        .env("CCR_SETUP_PLATFORM", "linux");
    cmd
}

#[test]
fn a_refused_key_stops_init_before_anything_is_written() {
    let sb = Sandbox::new();
    let refuse = TinyHttp::start(
        0,
        401,
        "application/json",
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#,
    );
    let url = format!("http://{}/v1/models", refuse.addr);
    let (_, err) = run_expect(init_cloud(&sb, "sk-ant-wrong", &url), 1);
    assert!(
        err.trim_end().ends_with(
            "error: the Claude API refused ANTHROPIC_API_KEY (HTTP 401: invalid x-api-key)\n\
             hint: check the key at https://console.anthropic.com/settings/keys and re-run, \
             or pass --no-key-check to store it anyway"
        ),
        "{err}"
    );
    assert!(
        !err.contains("sk-ant-wrong"),
        "the key is never printed: {err}"
    );
    assert!(!sb.config_path().exists());
    assert!(!sb.home.join(".claude-code-router/secrets.env").exists());

    // No network is a warning, not a failure: the key is stored unchecked.
    let (_, err) = run_expect(
        init_cloud(&sb, "sk-ant-offline", "http://127.0.0.1:9/v1/models"),
        0,
    );
    assert!(err.contains("warning: could not check the key"), "{err}");
    let store = std::fs::read_to_string(sb.home.join(".claude-code-router/secrets.env")).unwrap();
    assert!(
        store.contains("ANTHROPIC_API_KEY=sk-ant-offline"),
        "{store}"
    );
}

/// Start `ccr-setup proxy` with only HOME in its environment.
fn bare_proxy(sb: &Sandbox, port: u16) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_ccr-setup"))
        .args(["--config"])
        .arg(sb.config_path())
        .args(["proxy", "--port", &port.to_string()])
        .env_clear()
        .env("HOME", &sb.home)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn message(model: &str) -> Value {
    json!({"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_stored_by_init_reaches_the_upstream_from_a_bare_environment() {
    let sb = Sandbox::new();
    let accept = TinyHttp::start(0, 200, "application/json", r#"{"data": []}"#);
    let url = format!("http://{}/v1/models", accept.addr);
    let (_, err) = run_expect(init_cloud(&sb, "sk-ant-from-init", &url), 0);
    assert!(err.contains("accepted the key"), "{err}");

    // Point the anthropic provider at a fake upstream; no ledger in this test.
    let cloud = FakeUpstream::start(vec![Reply::json(&json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "m",
        "content": [{"type": "text", "text": "hello"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 3, "output_tokens": 1}
    }))])
    .await;
    let mut doc: Value =
        serde_json::from_str(&std::fs::read_to_string(sb.config_path()).unwrap()).unwrap();
    assert_eq!(doc["Providers"][1]["api_key"], "$ANTHROPIC_API_KEY");
    doc["Providers"][1]["api_base_url"] = json!(cloud.url("/v1/messages"));
    doc["LEDGER"] = json!(false);
    std::fs::write(sb.config_path(), doc.to_string()).unwrap();

    let port = support::unbound_port();
    let mut proxy = Child(bare_proxy(&sb, port));
    let base = format!("http://127.0.0.1:{port}");
    wait_for_proxy(&base, Duration::from_secs(10), &mut proxy).await;
    let cloud_model = format!("anthropic,{}", ccr_setup::catalogue::default_cloud_model());
    let proxy_key = doc["APIKEY"].as_str().expect("init created an APIKEY");
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/messages"))
        .header("x-api-key", proxy_key)
        .json(&message(&cloud_model))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let sent = cloud.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].header("x-api-key"), Some("sk-ant-from-init"));
    assert_eq!(
        sent[0].body["model"],
        ccr_setup::catalogue::default_cloud_model()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_cloud_key_set_nowhere_the_proxy_serves_local_and_names_the_variable() {
    let sb = Sandbox::new();
    let local = FakeUpstream::start(vec![Reply::json(&json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "local answer"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    }))])
    .await;
    let cloud = FakeUpstream::start(vec![Reply::status(500, "{}")]).await;
    // What init writes with cloud fallback, pointed at the fakes.
    let doc = json!({
        "LEDGER": false,
        "Providers": [
            {"name": "ollama", "api_base_url": local.url("/v1/chat/completions"), "api_key": "", "models": ["gpt-oss:20b"]},
            {"name": "anthropic", "api_base_url": cloud.url("/v1/messages"), "api_key": "$ANTHROPIC_API_KEY", "models": ["claude-sonnet-5-5"]}
        ],
        "Router": {"default": "ollama,gpt-oss:20b", "think": "anthropic,claude-sonnet-5-5", "longContext": "anthropic,claude-sonnet-5-5"},
        "fallback": {"default": ["anthropic,claude-sonnet-5-5"]}
    });
    std::fs::create_dir_all(sb.config_path().parent().unwrap()).unwrap();
    std::fs::write(sb.config_path(), doc.to_string()).unwrap();

    let port = support::unbound_port();
    let mut proxy = Child(bare_proxy(&sb, port));
    let base = format!("http://127.0.0.1:{port}");
    wait_for_proxy(&base, Duration::from_secs(10), &mut proxy).await;
    let client = reqwest::Client::new();
    let post = |body: Value| {
        client
            .post(format!("{base}/v1/messages"))
            .json(&body)
            .send()
    };

    // Claude Code's own model name and a thinking request both go to the local model.
    let plain = post(message("claude-opus-4-8")).await.unwrap();
    assert_eq!(plain.status(), 200);
    let mut think = message("claude-opus-4-8");
    think["thinking"] = json!({"type": "enabled", "budget_tokens": 2048});
    let think = post(think).await.unwrap();
    assert_eq!(think.status(), 200, "{}", think.text().await.unwrap());
    assert_eq!(local.requests().len(), 2);

    // Routed to the cloud by name: an Anthropic-shaped error naming the variable and fix.
    let named = post(message("anthropic,claude-sonnet-5-5")).await.unwrap();
    assert_eq!(named.status(), 400);
    let body: Value = named.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    let text = body["error"]["message"].as_str().unwrap();
    assert!(text.contains("$ANTHROPIC_API_KEY"), "{text}");
    assert!(text.contains("ccr-setup init"), "{text}");
    assert!(cloud.requests().is_empty(), "the cloud is never called");

    // One warning at start naming the provider and the variable.
    let _ = proxy.0.kill();
    let _ = proxy.0.wait();
    let mut err = String::new();
    use std::io::Read;
    proxy
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(
        err.matches("provider anthropic is disabled: $ANTHROPIC_API_KEY")
            .count(),
        1,
        "{err}"
    );
}
