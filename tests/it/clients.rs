//! Team mode through the real proxy app: named client keys, which routes each key
//! reaches, per-client daily limits (the 429 and its headers), the cloud budget that
//! keeps a client off every cloud target whatever rule chose it, the ledger's client
//! column, and the usage endpoint's contract.

use crate::support;

use std::time::Duration;

use ccr_setup::config::client_keys::{format_hash, hash_key};
use reqwest::StatusCode;
use serde_json::{json, Value};
use support::openai_upstream::{FakeUpstream, Reply};
use support::proxy_app::{error_body, ProxyApp};

const ADMIN: &str = "admin-secret";
const ALICE: &str = "ccr_alice-key-for-tests";
const BOB: &str = "ccr_bob-key-for-tests";

fn completion(text: &str, prompt_tokens: u64) -> Value {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 3, "total_tokens": prompt_tokens + 3}
    })
}

/// An upstream that answers every request with `text` (never streamed: tests send
/// `stream: false`).
async fn upstream(text: &'static str) -> FakeUpstream {
    FakeUpstream::start(vec![Reply::json(&completion(text, 11))]).await
}

fn client(name: &str, key: &str, limits: Value) -> Value {
    let mut c = json!({"name": name, "key_hash": format_hash(&hash_key(key))});
    for (k, v) in limits.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

/// `local` (loopback) and `cloud` (marked `"local": false`, priced at $1 per prompt
/// token, so one answer of 11 prompt tokens costs $11), every rule pointed at the
/// cloud, the local model as the default's fallback.
fn doc(local: &FakeUpstream, cloud: &FakeUpstream, alice_limits: Value) -> Value {
    json!({
        "Providers": [
            {"name": "local", "api_base_url": local.url("/v1/chat/completions"), "api_key": "", "models": ["small"]},
            {"name": "cloud", "api_base_url": cloud.url("/v1/chat/completions"), "api_key": "sk-cloud", "models": ["big-model"], "local": false}
        ],
        "Router": {
            "default": "local,small",
            "think": "cloud,big-model",
            "background": "cloud,big-model",
            "longContext": "cloud,big-model",
            "longContextThreshold": 2000,
            "image": "cloud,big-model"
        },
        "fallback": {"default": ["cloud,big-model"]},
        "Pricing": {"big-model": {"input": 1000000, "output": 0}},
        "APIKEY": ADMIN,
        "Clients": [client("alice", ALICE, alice_limits), client("bob", BOB, json!({}))]
    })
}

fn request(extra: Value) -> Value {
    let mut r = json!({
        "model": "claude-opus-4-8",
        "max_tokens": 256,
        "stream": false,
        "messages": [{"role": "user", "content": "Say hi"}]
    });
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

async fn post_as(app: &ProxyApp, key: &str, path: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(app.url(path))
        .header("x-api-key", key)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn get_as(app: &ProxyApp, key: &str, path: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
}

async fn text_of(resp: reqwest::Response) -> String {
    let v: Value = resp.json().await.unwrap();
    v["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn client_keys_reach_the_api_and_their_own_usage_only() {
    let (local, cloud) = (upstream("local").await, upstream("cloud").await);
    let mut app = ProxyApp::start(&doc(&local, &cloud, json!({}))).await;
    let alice_session = json!({"metadata": {"user_id": "user_x_account__session_alice-s1"}});
    let bob_session = json!({"metadata": {"user_id": "user_x_account__session_bob-s1"}});

    let resp = post_as(&app, ALICE, "/v1/messages", &request(alice_session.clone())).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(app.next_record().await.client.as_deref(), Some("alice"));
    let resp = post_as(&app, BOB, "/v1/messages", &request(bob_session)).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(app.next_record().await.client.as_deref(), Some("bob"));
    let resp = post_as(&app, ADMIN, "/v1/messages", &request(json!({}))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(app.next_record().await.client, None, "the admin is unnamed");

    let resp = post_as(
        &app,
        ALICE,
        "/v1/messages/count_tokens",
        &request(json!({})),
    )
    .await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        get_as(&app, ALICE, "/v1/models").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get_as(&app, ALICE, "/v1/ccr/usage").await.status(),
        StatusCode::OK
    );
    assert_eq!(
        get_as(&app, ALICE, "/v1/ccr/sessions/alice-s1")
            .await
            .status(),
        StatusCode::OK
    );

    // Admin routes: 403 permission_error naming the admin APIKEY.
    for (method, path) in [
        ("POST", "/v1/ccr/session-token"),
        ("GET", "/v1/ccr/sessions/bob-s1"),
        ("GET", "/v1/ccr/usage?session=bob-s1"),
    ] {
        let req = reqwest::Client::new()
            .request(method.parse().unwrap(), app.url(path))
            .header("x-api-key", ALICE);
        let (status, body) = error_body(req.send().await.unwrap()).await;
        assert_eq!(status, 403, "{path}: {body}");
        assert_eq!(body["error"]["type"], "permission_error", "{path}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("APIKEY"),
            "{path}: {body}"
        );
    }
    // The admin sees every session; a wrong key is a 401.
    assert_eq!(
        get_as(&app, ADMIN, "/v1/ccr/sessions/bob-s1")
            .await
            .status(),
        StatusCode::OK
    );
    let (status, body) = error_body(get_as(&app, "ccr_nobody", "/v1/models").await).await;
    assert_eq!(
        (status, body["error"]["type"].as_str()),
        (401, Some("authentication_error"))
    );

    // A session token minted under the APIKEY keeps working, as the admin.
    let token: Value = post_as(&app, ADMIN, "/v1/ccr/session-token", &json!({}))
        .await
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap();
    let resp = post_as(&app, token, "/v1/messages", &request(json!({}))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(app.next_record().await.client, None);
}

#[tokio::test]
async fn past_daily_requests_a_client_gets_a_429_that_says_do_not_retry() {
    let (local, cloud) = (upstream("local").await, upstream("cloud").await);
    let app = ProxyApp::start(&doc(&local, &cloud, json!({"daily_requests": 2}))).await;
    for _ in 0..2 {
        let resp = post_as(&app, ALICE, "/v1/messages", &request(json!({}))).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let resp = post_as(&app, ALICE, "/v1/messages", &request(json!({}))).await;
    assert_eq!(resp.headers()["x-should-retry"], "false");
    assert!(resp.headers().get("retry-after").is_none());
    let (status, body) = error_body(resp).await;
    assert_eq!(status, 429);
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    let message = body["error"]["message"].as_str().unwrap();
    for part in [
        "\"alice\"",
        "2 requests",
        "daily_requests",
        "resets at",
        "T00:00:00+00:00",
    ] {
        assert!(message.contains(part), "{part:?} missing from {message}");
    }
    // Others are not affected; nothing reached an upstream for the refused request.
    let resp = post_as(&app, BOB, "/v1/messages", &request(json!({}))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(local.requests().len(), 3);
    let usage: Value = get_as(&app, ALICE, "/v1/ccr/usage")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["today"]["requests"], 2);
    assert_eq!(usage["limits"]["daily_requests"], 2);
}

/// Alice has no cloud budget left (`daily_cloud_usd: 0`): a request whose every target
/// is in the cloud is refused with a 429 naming the budget, and the cloud upstream
/// never hears of it.
async fn assert_cloud_refused(extra: Value, rule: &str) {
    let (local, cloud) = (upstream("local").await, upstream("cloud").await);
    let app = ProxyApp::start(&doc(&local, &cloud, json!({"daily_cloud_usd": 0}))).await;
    let resp = post_as(&app, ALICE, "/v1/messages", &request(extra.clone())).await;
    assert_eq!(resp.headers()["x-should-retry"], "false", "{rule}");
    let (status, body) = error_body(resp).await;
    assert_eq!(status, 429, "{rule}: {body}");
    assert_eq!(body["error"]["type"], "rate_limit_error", "{rule}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("daily_cloud_usd"),
        "{rule}: {body}"
    );
    assert!(cloud.requests().is_empty(), "{rule}: the cloud was called");
    // The admin, with no budget, goes to the cloud by the same rule.
    let resp = post_as(&app, ADMIN, "/v1/messages", &request(extra)).await;
    assert_eq!(
        text_of(resp).await,
        "cloud",
        "{rule}: the rule does not pick the cloud"
    );
}

#[tokio::test]
async fn over_budget_think_stays_off_the_cloud() {
    assert_cloud_refused(
        json!({"thinking": {"type": "enabled", "budget_tokens": 1024}}),
        "think",
    )
    .await;
}

#[tokio::test]
async fn over_budget_background_stays_off_the_cloud() {
    assert_cloud_refused(json!({"model": "claude-haiku-4-5-20251001"}), "background").await;
}

#[tokio::test]
async fn over_budget_long_context_stays_off_the_cloud() {
    let long = "lorem ipsum dolor sit amet ".repeat(1500);
    assert_cloud_refused(
        json!({"messages": [{"role": "user", "content": long}]}),
        "longContext",
    )
    .await;
}

#[tokio::test]
async fn over_budget_image_stays_off_the_cloud() {
    let image = json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                       {"type": "text", "text": "what is this?"}]);
    assert_cloud_refused(
        json!({"messages": [{"role": "user", "content": image}]}),
        "image",
    )
    .await;
}

#[tokio::test]
async fn over_budget_explicit_cloud_model_stays_off_the_cloud() {
    assert_cloud_refused(json!({"model": "cloud,big-model"}), "explicit model").await;
}

#[tokio::test]
async fn over_budget_fallback_stays_off_the_cloud() {
    let local = FakeUpstream::start(vec![Reply::status(500, "{\"error\":\"boom\"}")]).await;
    let cloud = upstream("cloud").await;
    let mut app = ProxyApp::start(&doc(&local, &cloud, json!({"daily_cloud_usd": 0}))).await;
    let resp = post_as(&app, ALICE, "/v1/messages", &request(json!({}))).await;
    assert!(resp.status().is_server_error(), "{}", resp.status());
    assert!(cloud.requests().is_empty(), "fell back to the cloud");
    assert_eq!(app.next_record().await.fallback_from, None);
    // The admin falls back to the cloud from the same failure.
    let resp = post_as(&app, ADMIN, "/v1/messages", &request(json!({}))).await;
    assert_eq!(text_of(resp).await, "cloud");
}

#[tokio::test]
async fn a_cloud_budget_is_overshot_by_at_most_the_request_that_crossed_it() {
    let (local, cloud) = (upstream("local").await, upstream("cloud").await);
    let mut d = doc(&local, &cloud, json!({"daily_cloud_usd": 5}));
    // The default is the cloud, the local model its fallback.
    d["Router"]["default"] = json!("cloud,big-model");
    d["fallback"]["default"] = json!(["local,small"]);
    let app = ProxyApp::start(&d).await;
    let session = json!({"metadata": {"user_id": "user_x_account__session_alice-s9"}});
    // Under budget ($0 of $5): the cloud answers, and costs $11.
    let resp = post_as(&app, ALICE, "/v1/messages", &request(session.clone())).await;
    assert_eq!(text_of(resp).await, "cloud");
    // Over it: the same request goes to the local model, which keeps working.
    for _ in 0..2 {
        let resp = post_as(&app, ALICE, "/v1/messages", &request(session.clone())).await;
        assert_eq!(text_of(resp).await, "local");
    }
    assert_eq!(cloud.requests().len(), 1);
    let usage: Value = get_as(&app, ALICE, "/v1/ccr/usage?session=alice-s9")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["today"]["cloud_usd"], 11.0);
    assert_eq!(usage["today"]["requests"], 3);
    assert_eq!(usage["session"]["requests"], 3);
    assert_eq!(usage["session"]["cloud_usd"], 11.0);
    assert_eq!(usage["session"]["last_model"], "local,small");
    assert!(
        usage["session"]["saved_usd"].as_f64().unwrap() > 0.0,
        "{usage}"
    );
}

#[tokio::test]
async fn the_usage_endpoint_keeps_its_contract() {
    let (local, cloud) = (upstream("local").await, upstream("cloud").await);
    let app = ProxyApp::start(&doc(
        &local,
        &cloud,
        json!({"daily_requests": 100, "daily_cloud_usd": 2.5}),
    ))
    .await;
    let session = json!({"metadata": {"user_id": "user_x_account__session_s-42"}});
    post_as(&app, ALICE, "/v1/messages", &request(session)).await;
    post_as(&app, BOB, "/v1/messages", &request(json!({}))).await;
    let usage: Value = get_as(&app, ALICE, "/v1/ccr/usage?session=s-42")
        .await
        .json()
        .await
        .unwrap();
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&usage),
        ["client", "day", "limits", "session", "timezone", "today"]
    );
    assert_eq!(usage["client"], "alice");
    assert_eq!(usage["timezone"], "UTC");
    assert_eq!(usage["day"], chrono::Utc::now().date_naive().to_string());
    assert_eq!(
        keys(&usage["today"]),
        [
            "cloud_usd",
            "input_tokens",
            "output_tokens",
            "requests",
            "saved_usd"
        ]
    );
    assert_eq!(usage["today"]["requests"], 1);
    assert_eq!(usage["today"]["input_tokens"], 11);
    assert_eq!(usage["today"]["output_tokens"], 3);
    assert_eq!(
        usage["limits"],
        json!({"daily_requests": 100, "daily_cloud_usd": 2.5})
    );
    assert_eq!(
        keys(&usage["session"]),
        [
            "cloud_usd",
            "context_cleared_blocks",
            "input_tokens",
            "last_model",
            "output_tokens",
            "requests",
            "saved_usd"
        ]
    );
    assert_eq!(usage["session"]["last_model"], "local,small");
    // No session asked: null. Unknown session: null.
    let usage: Value = get_as(&app, ALICE, "/v1/ccr/usage")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["session"], Value::Null);
    let usage: Value = get_as(&app, ALICE, "/v1/ccr/usage?session=nope")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["session"], Value::Null);
    // The admin: no client, every client's day, no limits, any session.
    let usage: Value = get_as(&app, ADMIN, "/v1/ccr/usage?session=s-42")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(usage["client"], Value::Null);
    assert_eq!(usage["today"]["requests"], 2);
    assert_eq!(
        usage["limits"],
        json!({"daily_requests": null, "daily_cloud_usd": null})
    );
    assert_eq!(usage["session"]["requests"], 1);
}

#[tokio::test]
async fn a_reload_that_adds_or_removes_a_client_takes_effect_at_once() {
    let (local, cloud) = (upstream("local").await, upstream("cloud").await);
    let mut d = doc(&local, &cloud, json!({}));
    let app = ProxyApp::start(&d).await;
    let carol = "ccr_carol-key";
    let (status, _) =
        error_body(post_as(&app, carol, "/v1/messages", &request(json!({}))).await).await;
    assert_eq!(status, 401);
    d["Clients"]
        .as_array_mut()
        .unwrap()
        .push(client("carol", carol, json!({})));
    d["Clients"].as_array_mut().unwrap().remove(0);
    app.live.replace(support::proxy_app::config(&d));
    let resp = post_as(&app, carol, "/v1/messages", &request(json!({}))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, _) =
        error_body(post_as(&app, ALICE, "/v1/messages", &request(json!({}))).await).await;
    assert_eq!(status, 401, "a removed client's key still works");
    let _ = Duration::ZERO;
}

#[tokio::test]
async fn over_budget_quality_reroute_stays_off_the_cloud() {
    // The local model answers with nothing: an unusable answer, twice a session is
    // enough for the quality fallback to send the session's next requests to the cloud.
    let empty = json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": ""}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 11, "completion_tokens": 0, "total_tokens": 11}
    });
    let local = FakeUpstream::start(vec![Reply::json(&empty)]).await;
    let cloud = upstream("cloud").await;
    let mut app = ProxyApp::start(&doc(&local, &cloud, json!({"daily_cloud_usd": 0}))).await;
    let session =
        |id: &str| json!({"metadata": {"user_id": format!("user_x_account__session_{id}")}});
    for _ in 0..3 {
        let resp = post_as(&app, ALICE, "/v1/messages", &request(session("alice-q"))).await;
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!(app.next_record().await.provider, "local");
    }
    assert!(
        cloud.requests().is_empty(),
        "the quality fallback reached the cloud"
    );
    // The admin's session, the same answers: its third request goes to the cloud.
    let mut scenarios = Vec::new();
    for _ in 0..3 {
        post_as(&app, ADMIN, "/v1/messages", &request(session("admin-q"))).await;
        scenarios.push(app.next_record().await.scenario);
    }
    assert_eq!(scenarios, ["default", "default", "quality"]);
    assert_eq!(cloud.requests().len(), 1);
}
