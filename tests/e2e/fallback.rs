//! End to end with the real Claude Code (`CCR_E2E_CLAUDE`) through the real
//! `ccr-setup proxy` binary:
//!
//! * the default provider is down (nothing listens on its port) and the fallback, a
//!   scripted OpenAI upstream, answers: Claude Code prints the fallback's answer;
//! * the default provider declares a 4096-token window, which Claude Code's prompt
//!   (system prompt + tools, ~20k tokens) exceeds: Claude Code shows the context
//!   guard's message and exits non-zero, and nothing reaches the upstream.

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::claude_code::{run_claude, start_proxy};
use support::openai_upstream::{openai_transcript, FakeUpstream, Reply, SseEnd};

const FALLBACK_TEXT: &str = "The fallback model answered.";

/// A scripted OpenAI upstream answering [`FALLBACK_TEXT`], streamed or not.
async fn fallback_upstream() -> FakeUpstream {
    FakeUpstream::start_with(|req, _| {
        if req.body["stream"] == true {
            Reply::sse_events(
                &openai_transcript(&[json!({"role": "assistant", "content": FALLBACK_TEXT})], "stop"),
                Duration::from_millis(5),
                SseEnd::Finish,
            )
        } else {
            Reply::json(&json!({"id": "chatcmpl-fb", "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": FALLBACK_TEXT}}], "usage": {"prompt_tokens": 10, "completion_tokens": 5}}))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_gets_the_fallbacks_answer_when_the_default_provider_is_down() {
    let Some(claude) = support::require_tool("CCR_E2E_CLAUDE") else {
        return;
    };
    let fallback = fallback_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let down = format!(
        "http://127.0.0.1:{}/v1/chat/completions",
        support::unbound_port()
    );
    let config = json!({
        "Providers": [
            {"name": "down", "api_base_url": down, "api_key": "", "models": ["local-model"]},
            {"name": "cloud", "api_base_url": fallback.url("/v1/chat/completions"), "api_key": "sk-cloud", "models": ["cloud-model"]}
        ],
        "Router": {"default": "down,local-model"},
        "fallback": {"default": ["cloud,cloud-model"]}
    });
    let (_proxy, base, log) = start_proxy(dir.path(), config).await;
    let run = run_claude(&claude, dir.path(), &base, "Say hello.", &[]).await;
    let proxy_log = std::fs::read_to_string(&log).unwrap_or_default();
    let context = run.context(&proxy_log);
    assert!(run.status.success(), "{context}");
    assert!(run.stdout.contains(FALLBACK_TEXT), "{context}");
    assert!(!fallback.requests().is_empty(), "{context}");
    assert!(fallback
        .requests()
        .iter()
        .all(|r| r.body["model"] == "cloud-model"));
    assert!(
        proxy_log.contains("cloud,cloud-model status=200")
            && proxy_log.contains("fallback_from=down,local-model"),
        "the log names who answered and where it fell back from\n{context}"
    );
    eprintln!(
        "claude printed: {}\nproxy log:\n{proxy_log}",
        run.stdout.trim()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_shows_the_context_guard_error_and_exits_non_zero() {
    let Some(claude) = support::require_tool("CCR_E2E_CLAUDE") else {
        return;
    };
    let local = FakeUpstream::start(vec![Reply::status(500, "must not be called")]).await;
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "Providers": [{"name": "ollama", "api_base_url": local.url("/v1/chat/completions"), "api_key": "", "models": ["gpt-oss:20b"], "context_window": 4096}],
        "Router": {"default": "ollama,gpt-oss:20b"}
    });
    let (_proxy, base, log) = start_proxy(dir.path(), config).await;
    let run = run_claude(&claude, dir.path(), &base, "Say hello.", &[]).await;
    let proxy_log = std::fs::read_to_string(&log).unwrap_or_default();
    let output = format!("{}\n{}", run.stdout, run.stderr);
    let context = format!(
        "claude exit {:?}\noutput: {output}\nproxy log:\n{proxy_log}",
        run.status
    );
    assert!(!run.status.success(), "{context}");
    // Claude Code read the refusal as Anthropic's "prompt is too long" (its own message,
    // with the limit it parsed from ours: a 4096 window less the 2048 kept for the
    // answer), not as a plain API error; one exchange cannot be compacted, so it stops.
    assert!(output.contains("Prompt is too long"), "{context}");
    assert!(output.contains("2048"), "{context}");
    assert!(!output.contains("API Error: 400"), "{context}");
    assert!(
        proxy_log.contains("outcome=rejected:context_guard"),
        "{context}"
    );
    assert!(
        local.requests().is_empty(),
        "nothing was sent upstream\n{context}"
    );
    eprintln!("claude printed: {}", output.trim());
}

/// Ollama's real failure when gpt-oss's streamed tool call does not parse: HTTP 200,
/// reasoning, one empty chunk, an end without `[DONE]` (the fake Ollama in that mode).
/// Claude Code always streams and always offers tools, so the proxy holds the thinking
/// back, retries once, then answers from the cloud fallback inside the same stream;
/// the ledger row says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_gets_the_fallbacks_answer_when_ollama_cannot_parse_a_tool_call() {
    use support::fake_ollama::{FakeConfig, FakeModel, FakeOllama};
    let Some(claude) = support::require_tool("CCR_E2E_CLAUDE") else {
        return;
    };
    let ollama = FakeOllama::start(
        FakeConfig::default()
            .with_installed(FakeModel::gpt_oss())
            .with_tool_call_parse_failure(),
    );
    let fallback = fallback_upstream().await;
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "Providers": [
            {"name": "ollama", "api_base_url": format!("{}/v1/chat/completions", ollama.url()), "api_key": "", "models": ["gpt-oss:20b"]},
            {"name": "cloud", "api_base_url": fallback.url("/v1/chat/completions"), "api_key": "sk-cloud", "models": ["cloud-model"]}
        ],
        "Router": {"default": "ollama,gpt-oss:20b"},
        "fallback": {"default": ["cloud,cloud-model"]}
    });
    let (_proxy, base, log) = start_proxy(dir.path(), config).await;
    let run = run_claude(&claude, dir.path(), &base, "What time is it?", &[]).await;
    let proxy_log = std::fs::read_to_string(&log).unwrap_or_default();
    let context = run.context(&proxy_log);
    assert!(run.status.success(), "{context}");
    assert!(run.stdout.contains(FALLBACK_TEXT), "{context}");
    assert!(
        ollama.bodies("/v1/chat/completions").len() >= 2,
        "the local model was retried once before the fallback\n{context}"
    );
    // The ledger (written by the proxy child under HOME) names the reason.
    let db = dir.path().join(".claude-code-router/ledger.sqlite");
    let mut reasons = Vec::new();
    for _ in 0..50 {
        if let Ok(conn) = rusqlite::Connection::open(&db) {
            if let Ok(mut stmt) = conn.prepare(
                "SELECT fallback_from, fallback_reason FROM requests WHERE fallback_reason IS NOT NULL",
            ) {
                reasons = stmt
                    .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                    .unwrap()
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
            }
        }
        if !reasons.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        reasons.contains(&(
            "ollama,gpt-oss:20b".to_owned(),
            "tool_call_parse".to_owned()
        )),
        "{reasons:?}\n{context}"
    );
}
