//! The proxy against what a hostile web page or body can send (issue #15). Each test
//! is an attack that worked before the checks existed.

use crate::support;

use serde_json::{json, Value};
use support::openai_upstream::{FakeUpstream, Reply};
use support::proxy_app::{self, error_body, ProxyApp};

fn answer() -> Reply {
    Reply::json(&json!({
        "id": "c", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    }))
}

async fn proxy_for(fake: &FakeUpstream, extra: Value) -> ProxyApp {
    let mut doc = json!({
        "Providers": [{"name": "local", "api_base_url": fake.url("/v1/chat/completions"), "models": ["m"]}],
        "Router": {"default": "local,m"},
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    ProxyApp::start_config(proxy_app::config(&doc)).await
}

fn body() -> String {
    json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
}

#[tokio::test]
async fn a_web_pages_no_cors_text_plain_post_is_refused_and_never_forwarded() {
    let fake = FakeUpstream::start(vec![answer()]).await;
    let app = proxy_for(&fake, json!({})).await;
    let client = reqwest::Client::new();
    // What `fetch(url, {method: "POST", mode: "no-cors", headers: {"Content-Type":
    // "text/plain"}, body})` sends from a page: no preflight.
    let resp = client
        .post(app.url("/v1/messages"))
        .header("content-type", "text/plain;charset=UTF-8")
        .header("origin", "https://evil.example")
        .body(body())
        .send()
        .await
        .unwrap();
    let (status, err) = error_body(resp).await;
    assert_eq!(status, 403, "{err}");
    assert_eq!(err["error"]["type"], "permission_error");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ALLOWED_ORIGINS"));
    // The same body as text/plain without an Origin (a non-browser client gone wrong).
    let resp = client
        .post(app.url("/v1/messages"))
        .header("content-type", "text/plain")
        .body(body())
        .send()
        .await
        .unwrap();
    let (status, err) = error_body(resp).await;
    assert_eq!(status, 415, "{err}");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(fake.requests().is_empty(), "the upstream was called");
    // Claude Code's own request still works.
    let resp = client
        .post(app.url("/v1/messages"))
        .header("content-type", "application/json")
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_listed_origin_is_served() {
    let fake = FakeUpstream::start(vec![answer()]).await;
    let app = proxy_for(&fake, json!({"ALLOWED_ORIGINS": ["http://localhost:5173"]})).await;
    let resp = reqwest::Client::new()
        .post(app.url("/v1/messages"))
        .header("content-type", "application/json")
        .header("origin", "http://localhost:5173")
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 reads
/// the answers; its requests carry `Host: evil.example:PORT`.
#[tokio::test]
async fn a_rebinding_host_is_refused_everywhere_but_the_root() {
    let fake = FakeUpstream::start(vec![answer()]).await;
    let app = proxy_for(&fake, json!({})).await;
    let port = app.base.rsplit(':').next().unwrap();
    let evil = format!("evil.example:{port}");
    let client = reqwest::Client::new();
    for path in ["/health", "/v1/models", "/ui/", "/nope"] {
        let resp = client
            .get(app.url(path))
            .header("host", &evil)
            .send()
            .await
            .unwrap();
        let (status, err) = error_body(resp).await;
        assert_eq!((path, status), (path, 403), "{err}");
    }
    let resp = client
        .post(app.url("/v1/messages"))
        .header("host", &evil)
        .header("content-type", "application/json")
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(fake.requests().is_empty());
    // The liveness answer stays open; loopback names pass.
    let root = client
        .get(app.url("/"))
        .header("host", &evil)
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 200);
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let resp = client
            .get(app.url("/health"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
}
