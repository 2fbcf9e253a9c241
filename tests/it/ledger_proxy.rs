//! Real requests through the real proxy (axum on 127.0.0.1) in front of scripted fake
//! upstreams, with the real ledger writer on a SQLite file; then the rows in that file
//! are checked one by one, and `stats` figures over them.

use crate::support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ccr_setup::ledger::{
    open_for_reading, read_rows, summarize, Ledger, LedgerHandle, LedgerOptions, LedgerRow,
    PriceTable, StatsOptions,
};
use rusqlite::Connection;
use serde_json::{json, Value};
use support::ledger::wait_settled_async;
use support::openai_upstream::{openai_transcript, FakeUpstream, Reply, SseEnd};
use support::proxy_app::{self, ProxyApp};

/// Serve `doc` on 127.0.0.1:0, recording through `ledger`.
async fn start_proxy(doc: Value, ledger: LedgerHandle) -> ProxyApp {
    ProxyApp::start_with_ledger(proxy_app::config(&doc), ledger).await
}

fn provider(name: &str, fake: &FakeUpstream, model: &str) -> Value {
    json!({"name": name, "api_base_url": fake.url("/v1/chat/completions"),
           "api_key": "sk-provider", "models": [model]})
}

fn request(stream: bool) -> Value {
    json!({
        "model": "claude-opus-4-8",
        "max_tokens": 256,
        "stream": stream,
        "metadata": {"user_id": "user_0f3c_account__session_abc-123"},
        "messages": [{"role": "user", "content": "Say hi"}]
    })
}

fn completion(prompt: u64, completion: u64) -> Reply {
    Reply::json(&json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "fake",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": "Hi."}}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                  "total_tokens": prompt + completion}
    }))
}

async fn post(base: &str, body: &Value) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/messages?beta=true"))
        .bearer_auth("client-token")
        .json(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap())
}

fn locality() -> HashMap<String, bool> {
    HashMap::from([("local".to_owned(), true), ("cloud".to_owned(), false)])
}

/// The row with its timing fields checked against the wall clock and then blanked, so
/// the rest can be compared exactly.
fn without_timing(mut row: LedgerRow, before_ms: i64, after_ms: i64) -> LedgerRow {
    assert!(
        (before_ms..=after_ms).contains(&row.started_at_ms),
        "started_at_ms {} outside the test's {before_ms}..={after_ms}",
        row.started_at_ms
    );
    assert!(row.duration_ms <= (after_ms - before_ms) as u64);
    if let Some(ttft) = row.ttft_ms {
        assert!(
            ttft <= row.duration_ms,
            "ttft {ttft} > duration {}",
            row.duration_ms
        );
    }
    row.started_at_ms = 0;
    row.duration_ms = 0;
    row.ttft_ms = row.ttft_ms.map(|_| 1);
    row
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_requests_become_exact_ledger_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    let ledger = Ledger::spawn(
        &path,
        LedgerOptions {
            provider_local: locality(),
            ..LedgerOptions::default()
        },
    );
    let before = now_ms();

    // Proxy A: one local provider, no fallback. Streams an answer, then fails with 500.
    let transcript = openai_transcript(&[json!({"role": "assistant", "content": "Hi."})], "stop");
    let fake_a = FakeUpstream::start(vec![
        Reply::sse_events(&transcript, Duration::from_millis(20), SseEnd::Finish),
        Reply::status(500, "{\"error\": \"model crashed\"}"),
    ])
    .await;
    let proxy_a = start_proxy(
        json!({"Providers": [provider("local", &fake_a, "gpt-oss:20b")],
               "Router": {"default": "local,gpt-oss:20b"}}),
        ledger.clone(),
    )
    .await;
    let (status, body) = post(&proxy_a.base, &request(true)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("message_stop"), "{body}");
    wait_settled_async(&ledger, 1).await;
    let (error_status, body) = post(&proxy_a.base, &request(false)).await;
    assert!(error_status >= 500, "{error_status} {body}");
    wait_settled_async(&ledger, 2).await;

    // Proxy B: the local model fails a tool call, the cloud fallback answers.
    let fake_local = FakeUpstream::start(vec![Reply::status(
        500,
        "{\"error\":\"error parsing tool call: raw='{\\\"cmd'\"}",
    )])
    .await;
    let fake_cloud = FakeUpstream::start(vec![completion(77, 5)]).await;
    let proxy_b = start_proxy(
        json!({"Providers": [provider("local", &fake_local, "gpt-oss:20b"),
                             provider("cloud", &fake_cloud, "claude-sonnet-4-5")],
               "Router": {"default": "local,gpt-oss:20b"},
               "fallback": {"default": ["cloud,claude-sonnet-4-5"]}}),
        ledger.clone(),
    )
    .await;
    let (status, body) = post(&proxy_b.base, &request(false)).await;
    assert_eq!(status, 200, "{body}");
    wait_settled_async(&ledger, 3).await;

    // Refused before routing: no messages.
    let (status, _) = post(&proxy_b.base, &json!({"model": "m", "max_tokens": 5})).await;
    assert_eq!(status, 400);
    wait_settled_async(&ledger, 4).await;
    let after = now_ms();

    let h = ledger.health();
    assert_eq!((h.written, h.dropped, h.problem.as_deref()), (4, 0, None));
    let rows = read_rows(&open_for_reading(&path).unwrap(), None).unwrap();
    let rows: Vec<LedgerRow> = rows
        .into_iter()
        .map(|r| without_timing(r, before, after))
        .collect();
    let base = LedgerRow {
        started_at_ms: 0,
        session_id: Some("abc-123".into()),
        scenario: "default".into(),
        provider: "local".into(),
        model: "gpt-oss:20b".into(),
        fallback_from: None,
        input_tokens: 0,
        output_tokens: 0,
        cache_read_tokens: 0,
        cache_write_tokens: 0,
        tokens_estimated: false,
        ttft_ms: None,
        duration_ms: 0,
        outcome: "ok".into(),
        error_kind: None,
        http_status: 200,
        stream: false,
        provider_local: Some(true),
        context_overflowed: false,
        context_cleared_blocks: 0,
        context_cleared_tokens: 0,
        fallback_reason: None,
        repairs: None,
        tool_call_failures: 0,
        client: None,
    };
    let expected = vec![
        // Streamed answer: the upstream's token figures, a time to first token.
        LedgerRow {
            input_tokens: 321,
            output_tokens: 12,
            ttft_ms: Some(1),
            stream: true,
            ..base.clone()
        },
        // Upstream 500, no fallback configured.
        LedgerRow {
            outcome: "upstream_error".into(),
            error_kind: Some("http_500".into()),
            http_status: error_status,
            ..base.clone()
        },
        // Answered by the fallback after the local tool-call failure.
        LedgerRow {
            provider: "cloud".into(),
            model: "claude-sonnet-4-5".into(),
            fallback_from: Some("local,gpt-oss:20b".into()),
            // The chain records why it moved on (Ollama's parse failure, an HTTP 500).
            fallback_reason: Some("tool_call_parse".into()),
            input_tokens: 77,
            output_tokens: 5,
            ttft_ms: rows[2].ttft_ms,
            provider_local: Some(false),
            ..base.clone()
        },
        // Rejected before routing: no provider, no session (the body was unusable).
        LedgerRow {
            session_id: None,
            scenario: "-".into(),
            provider: "-".into(),
            model: "-".into(),
            outcome: "rejected".into(),
            error_kind: Some("bad_request".into()),
            http_status: 400,
            provider_local: None,
            ..base.clone()
        },
    ];
    assert_eq!(rows, expected);

    // And what `stats` makes of them (Sonnet 4.5 at its $3/$15 list price).
    let report = summarize(
        &read_rows(&open_for_reading(&path).unwrap(), None).unwrap(),
        &StatsOptions {
            since_ms: None,
            group_by: None,
            compare_to: "claude-sonnet-4-5".into(),
            prices: PriceTable::builtin(),
            provider_local: locality(),
            utc_offset: chrono::FixedOffset::east_opt(0).unwrap(),
        },
    )
    .unwrap();
    let t = &report.totals;
    assert_eq!(
        (t.requests, t.ok, t.upstream_errors, t.rejected),
        (4, 2, 1, 1)
    );
    assert_eq!((t.local_requests, t.cloud_requests), (2, 1));
    assert_eq!((t.local_attempts, t.local_failures), (3, 2));
    assert_eq!((t.fallbacks, t.fallbacks_from_local), (1, 1));
    // Cloud: 77 × $3 + 5 × $15 per Mtok. Would-have: the streamed local answer,
    // 321 × $3 + 12 × $15 per Mtok.
    assert_eq!(t.cloud_cost_usd, 0.000306);
    assert_eq!(t.would_have_cost_usd, 0.001143);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_ledger_does_not_break_serving() {
    // Load the tokenizer first (slow in a debug build), so the timing below is the
    // request path alone.
    tokio::task::spawn_blocking(ccr_setup::proxy::tokens::TokenEstimator::warm_up)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.sqlite");
    drop(ccr_setup::ledger::open_for_writing(&path).unwrap());
    let locker = Connection::open(&path).unwrap();
    locker.execute_batch("BEGIN EXCLUSIVE").unwrap();
    locker
        .execute_batch(
            "INSERT INTO requests (started_at_ms, scenario, provider, model, input_tokens,
                output_tokens, cache_read_tokens, cache_write_tokens, tokens_estimated,
                duration_ms, outcome, http_status, stream)
             VALUES (0, 'x', 'x', 'x', 0, 0, 0, 0, 0, 0, 'ok', 200, 1)",
        )
        .unwrap();

    let ledger = Ledger::spawn(
        &path,
        LedgerOptions {
            provider_local: locality(),
            reopen_interval: Duration::from_millis(50),
            ..LedgerOptions::default()
        },
    );
    let fake = FakeUpstream::start(vec![completion(10, 2)]).await;
    let proxy = start_proxy(
        json!({"Providers": [provider("local", &fake, "gpt-oss:20b")],
               "Router": {"default": "local,gpt-oss:20b"}}),
        ledger.clone(),
    )
    .await;
    let base = proxy.base.clone();
    for _ in 0..5 {
        let started = Instant::now();
        let (status, body) = post(&base, &request(false)).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains("Hi."), "{body}");
        // The writer waits up to 500 ms for the lock; the request must not.
        assert!(
            started.elapsed() < Duration::from_millis(400),
            "a request waited for the ledger: {:?}",
            started.elapsed()
        );
    }
    wait_settled_async(&ledger, 5).await;
    let health = support::get_json(&format!("{base}/health")).await;
    assert_eq!(health["ledger"]["written"], 0);
    assert_eq!(health["ledger"]["dropped"], 5);
    assert!(
        health["ledger"]["problem"]
            .as_str()
            .unwrap()
            .contains("locked"),
        "{health}"
    );

    locker.execute_batch("ROLLBACK").unwrap();
    // Past the writer's reopen interval, the next row goes in.
    tokio::time::sleep(Duration::from_millis(60)).await;
    let (status, _) = post(&base, &request(false)).await;
    assert_eq!(status, 200);
    wait_settled_async(&ledger, 6).await;
    let h = ledger.health();
    assert_eq!((h.written, h.dropped, h.problem), (1, 5, None));
}
