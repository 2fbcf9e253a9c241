//! A provider whose `api_base_url` lists replicas, through the real proxy app and fake
//! upstreams: each session stays on its replica; a replica that refuses connections
//! hands its sessions to the next one within the same attempt (no fallback); one at
//! its `replica_max_in_flight` sends the session's next request elsewhere.

use crate::support;

use std::time::Duration;

use ccr_setup::config::Replica;
use ccr_setup::proxy::replicas::{preferred, session_key};
use serde_json::{json, Value};
use support::openai_upstream::{openai_transcript, FakeUpstream, Reply, SseEnd};
use support::proxy_app::{route_of, ProxyApp};
use support::sse::{sse_events, sse_text};

fn answer(text: &str) -> Reply {
    Reply::sse_events(
        &openai_transcript(&[json!({ "content": text })], "stop"),
        Duration::ZERO,
        SseEnd::Finish,
    )
}

async fn replica(name: &'static str) -> FakeUpstream {
    FakeUpstream::start_with(move |_, _| answer(name)).await
}

fn doc(urls: &[String], limit: Option<u32>) -> Value {
    let mut provider =
        json!({"name": "team", "api_base_url": urls, "api_key": "", "models": ["m"]});
    if let Some(limit) = limit {
        provider["replica_max_in_flight"] = json!(limit);
    }
    json!({"Providers": [provider], "Router": {"default": "team,m"}})
}

fn request(session: &str, turn: usize) -> Value {
    let user_id = json!({"device_id": "d", "account_uuid": "", "session_id": session}).to_string();
    json!({
        "model": "claude-opus-4-8", "max_tokens": 256, "stream": true,
        "metadata": {"user_id": user_id},
        "messages": [{"role": "user", "content": format!("turn {turn}")}]
    })
}

/// A session id whose home, among `urls`, is replica `home`.
fn session_homed_on(urls: &[String], home: usize) -> String {
    let replicas: Vec<Replica> = urls.iter().map(|u| Replica::new(u.clone())).collect();
    (0..)
        .map(|i| format!("session-{i}"))
        .find(|s| preferred(session_key(s), &replicas) == home)
        .unwrap()
}

async fn text_of(resp: reqwest::Response) -> String {
    assert_eq!(resp.status(), 200);
    sse_text(&sse_events(&resp.text().await.unwrap()))
}

#[tokio::test]
async fn replicas_keep_each_session_on_its_own_replica() {
    let (a, b) = (replica("a").await, replica("b").await);
    let urls = vec![a.url("/v1/chat/completions"), b.url("/v1/chat/completions")];
    let (on_a, on_b) = (session_homed_on(&urls, 0), session_homed_on(&urls, 1));
    let proxy = ProxyApp::start(&doc(&urls, None)).await;
    for turn in 0..4 {
        assert_eq!(text_of(proxy.post(&request(&on_a, turn)).await).await, "a");
        assert_eq!(text_of(proxy.post(&request(&on_b, turn)).await).await, "b");
    }
    assert_eq!(a.requests().len(), 4);
    assert_eq!(b.requests().len(), 4);
}

#[tokio::test]
async fn a_refused_replica_hands_its_session_to_the_next_within_the_attempt() {
    let b = replica("b").await;
    let refused = format!(
        "http://127.0.0.1:{}/v1/chat/completions",
        support::unbound_port()
    );
    let urls = vec![refused, b.url("/v1/chat/completions")];
    let on_refused = session_homed_on(&urls, 0);
    let proxy = ProxyApp::start(&doc(&urls, None)).await;
    for turn in 0..3 {
        let resp = proxy.post(&request(&on_refused, turn)).await;
        // The same target answered: a replica's refusal is not a fallback.
        assert_eq!(route_of(&resp), "team,m; scenario=default; fallback=no");
        assert_eq!(text_of(resp).await, "b");
    }
    assert_eq!(b.requests().len(), 3);
}

#[tokio::test]
async fn a_replica_at_its_in_flight_limit_sends_the_next_request_on() {
    // Replica a holds its first answer for a while; with a limit of one, the same
    // session's next request goes to b rather than queueing behind it.
    let a = FakeUpstream::start_with(|_, n| match n {
        0 => Reply::Delayed {
            delay: Duration::from_millis(1500),
            reply: Box::new(answer("a")),
        },
        _ => answer("a"),
    })
    .await;
    let b = replica("b").await;
    let urls = vec![a.url("/v1/chat/completions"), b.url("/v1/chat/completions")];
    let session = session_homed_on(&urls, 0);
    let proxy = ProxyApp::start(&doc(&urls, Some(1))).await;
    let first = request(&session, 0);
    let slow = proxy.post(&first);
    let next = async {
        assert!(a.wait_for_request(0, Duration::from_secs(5)).await);
        text_of(proxy.post(&request(&session, 1)).await).await
    };
    let (slow, next) = tokio::join!(slow, next);
    assert_eq!(next, "b");
    assert_eq!(text_of(slow).await, "a");
    // Free again: the session is back home.
    assert_eq!(text_of(proxy.post(&request(&session, 2)).await).await, "a");
}
