//! The Claude Code behaviours the proxy relies on, checked on the real binaries (the
//! pinned version and the newest release), as `ccr-setup code` starts them:
//!
//! * `CLAUDE_CODE_ATTRIBUTION_HEADER=0` keeps the volatile `x-anthropic-billing-header`
//!   line out of the system prompt (without it, the line is there: the setting works);
//! * `CLAUDE_CODE_TOTAL_TOKENS_REMINDER=off` keeps `<total_tokens>` reminders out;
//! * the system prompt is byte-identical from one request of the session to the next
//!   (what keeps a local prompt cache warm);
//! * every request carries the session the proxy keys its per-session state by (the
//!   ledger's `session_id` is set on every row).

use crate::support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;
use support::claude_code::{run_claude, run_code, Scratch};
use support::openai_upstream::{FakeUpstream, Recorded, Reply, SseEnd};

/// An Anthropic Messages answer "ok", streamed or whole: the fake is an Anthropic-kind
/// provider, so the proxy passes Claude Code's request through as it came (the OpenAI
/// translation drops the billing line itself).
fn answer(req: &Recorded, _: usize) -> Reply {
    let usage = json!({"input_tokens": 1, "output_tokens": 1});
    if req.body["stream"] != true {
        return Reply::json(
            &json!({"id": "msg_fake", "type": "message", "role": "assistant",
            "model": "m", "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn", "usage": usage}),
        );
    }
    let events = [
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_fake", "type": "message", "role": "assistant", "model": "m", "content": [], "stop_reason": null, "usage": usage}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}}),
        ),
        (
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    let transcript: String = events
        .iter()
        .map(|(name, data)| format!("event: {name}\ndata: {data}\n\n"))
        .collect();
    Reply::sse_events(&transcript, Duration::from_millis(1), SseEnd::Finish)
}

/// The system prompt of a request the upstream received, as one text.
fn system_text(r: &Recorded) -> String {
    r.body["system"].to_string()
}

async fn facts(claude_var: &str) {
    let Some(claude) = support::require_tool(claude_var) else {
        return;
    };
    let fake = FakeUpstream::start_with(answer).await;
    let scratch = Scratch::new();
    scratch.write_config(json!({
        "Providers": [{"name": "local", "api_base_url": fake.url("/v1/messages"),
                       "models": ["m"], "context_window": 32768}],
        "Router": {"default": "local,m"},
    }));
    let proxy = scratch.spawn_proxy(Stdio::null()).await;
    let (home, port, config) = (scratch.home.clone(), scratch.port, scratch.config.clone());
    let base = format!("http://127.0.0.1:{port}");

    // Two turns' worth of requests through `ccr-setup code`.
    let out = run_code(&config, &claude, &home, &["-p", "Say ok."]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run_code(&config, &claude, &home, &["-p", "Say ok again."]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let with_code = fake.requests();
    let main: Vec<&Recorded> = with_code
        .iter()
        .filter(|r| r.body["tools"].as_array().is_some_and(|t| !t.is_empty()))
        .collect();
    assert!(main.len() >= 2, "{} main requests", main.len());
    for r in &with_code {
        let body = r.body.to_string();
        assert!(
            !body.contains("x-anthropic-billing-header"),
            "{claude_var}: CLAUDE_CODE_ATTRIBUTION_HEADER=0 keeps the billing line out"
        );
        assert!(
            !body.contains("<total_tokens>"),
            "{claude_var}: CLAUDE_CODE_TOTAL_TOKENS_REMINDER=off keeps the reminder out"
        );
    }
    assert_eq!(
        system_text(main[0]),
        system_text(main[1]),
        "{claude_var}: the system prompt is byte-stable between runs"
    );

    // The same Claude Code without `code`'s environment: the billing line is there, so
    // the setting is what keeps it out.
    let seen = fake.requests().len();
    let run = run_claude(&claude, &home, &base, "Say ok.", &[]).await;
    assert!(run.status.success(), "{}", run.stderr);
    let plain = fake.requests();
    assert!(
        plain[seen..]
            .iter()
            .any(|r| r.body.to_string().contains("x-anthropic-billing-header")),
        "{claude_var}: without CLAUDE_CODE_ATTRIBUTION_HEADER=0 the billing line is sent"
    );

    // Every request named its session (what the clear points and the status line key by).
    drop(proxy);
    let db = home.join(".claude-code-router/ledger.sqlite");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let (rows, without): (i64, i64) = conn
        .query_row(
            "SELECT COUNT(*), SUM(session_id IS NULL) FROM requests",
            [],
            |r| Ok((r.get(0)?, r.get::<_, Option<i64>>(1)?.unwrap_or(0))),
        )
        .unwrap();
    assert!(rows >= 3, "{rows} ledger rows");
    assert_eq!(
        without, 0,
        "{claude_var}: every request carries its session"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_behaviours_the_proxy_relies_on_hold_in_the_pinned_claude_code() {
    facts("CCR_E2E_CLAUDE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_behaviours_the_proxy_relies_on_hold_in_the_newest_claude_code() {
    facts("CCR_E2E_CLAUDE_LATEST").await;
}
