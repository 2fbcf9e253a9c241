//! A client past its `daily_requests` gets a 429 with `x-should-retry: false`; the
//! real Claude Code (pinned and newest) must then give up at once, not retry with
//! back-off for minutes. The proxy logs each refused request, so its log counts what
//! Claude Code sent; the run's wall time says whether it waited.

use crate::support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use ccr_setup::config::client_keys::{format_hash, hash_key};
use serde_json::json;
use support::claude_code::{claude_command, Scratch, CLAUDE_TIMEOUT};
use support::openai_upstream::{FakeUpstream, Reply};

const KEY: &str = "ccr_e2e-alice-key";

async fn a_limit_429_stops_claude_code(claude_var: &str) {
    let Some(claude) = support::require_tool(claude_var) else {
        return;
    };
    // Never reached: every request of the client is over its limit of 0.
    let fake = FakeUpstream::start(vec![Reply::status(500, "{}")]).await;
    let scratch = Scratch::new();
    scratch.write_config(json!({
        "Providers": [{"name": "local", "api_base_url": fake.url("/v1/chat/completions"), "models": ["m"]}],
        "Router": {"default": "local,m"},
        "APIKEY": "admin-secret",
        "Clients": [{"name": "alice", "key_hash": format_hash(&hash_key(KEY)), "daily_requests": 0}]
    }));
    let log = scratch.dir.path().join("proxy.log");
    let _proxy = scratch
        .spawn_proxy(Stdio::from(std::fs::File::create(&log).unwrap()))
        .await;
    let (home, base) = (
        scratch.home.clone(),
        format!("http://127.0.0.1:{}", scratch.port),
    );

    let started = Instant::now();
    let mut cmd = claude_command(&claude, &home, &base, "Say ok.", &[]);
    cmd.env("ANTHROPIC_AUTH_TOKEN", KEY);
    let out = tokio::time::timeout(CLAUDE_TIMEOUT, cmd.spawn().unwrap().wait_with_output())
        .await
        .expect("claude -p gave up within the timeout")
        .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let proxy_log = std::fs::read_to_string(&log).unwrap();
    let refused = proxy_log
        .lines()
        .filter(|l| l.contains("refused: client \"alice\""))
        .count();
    eprintln!(
        "{claude_var}: {refused} request(s) refused, claude -p exited {:?} after {:.1} s",
        out.status.code(),
        took.as_secs_f64()
    );
    let context = format!("stdout: {stdout}\nstderr: {stderr}\nproxy log:\n{proxy_log}");
    assert!(
        refused >= 1,
        "{claude_var}: no request reached the limit\n{context}"
    );
    // One refusal per request Claude Code makes, none repeated: with retries the SDK
    // sends the same request up to 10 more times, over minutes.
    assert!(
        refused <= 2,
        "{claude_var}: {refused} refusals: Claude Code retried\n{context}"
    );
    assert!(
        took < Duration::from_secs(20),
        "{claude_var}: took {took:?}: Claude Code waited to retry\n{context}"
    );
    // The user sees why.
    assert!(
        format!("{stdout}{stderr}").contains("daily_requests"),
        "{claude_var}: the reason was not shown\n{context}"
    );
    assert!(fake.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_limit_429_stops_the_pinned_claude_code_at_once() {
    a_limit_429_stops_claude_code("CCR_E2E_CLAUDE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_limit_429_stops_the_newest_claude_code_at_once() {
    a_limit_429_stops_claude_code("CCR_E2E_CLAUDE_LATEST").await;
}
