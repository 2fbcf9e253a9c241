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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_gets_the_fallbacks_answer_when_the_default_provider_is_down() {
    let Some(claude) = support::require_tool("CCR_E2E_CLAUDE") else {
        return;
    };
    let fallback = FakeUpstream::start_with(|req, _| {
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
    .await;
    let dir = tempfile::tempdir().unwrap();
    let down = format!(
        "http://127.0.0.1:{}/v1/chat/completions",
        support::free_port()
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
    let context = format!(
        "claude exit {:?}\nstdout: {}\nstderr: {}\nproxy log:\n{proxy_log}",
        run.status, run.stdout, run.stderr
    );
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
    assert!(output.contains("prompt is "), "{context}");
    assert!(
        output.contains("tokens, the local context is 4096; run /compact or raise the context with `ccr-setup init --context-length`"),
        "{context}"
    );
    assert!(
        local.requests().is_empty(),
        "nothing was sent upstream\n{context}"
    );
    eprintln!("claude printed: {}", output.trim());
}
