//! A pasted image with a local model that cannot see (issue #27), end to end: the real
//! Claude Code sends a screenshot turn and then a text turn in one session, through
//! the real `ccr-setup proxy`, to a model without vision. Neither turn may fail: the
//! image becomes a note, and the history never carries it to the model.
//!
//! * the fake Ollama serving gpt-oss (its `/api/show` lists no `vision`; an image would
//!   fail in its runner with a 500, as Ollama's does);
//! * the real llama-server with SmolLM2 and no projector (its `/props` says
//!   `modalities.vision: false`; an image is its 500 `image input is not supported`).

use crate::support;

use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use support::claude_code::{claude_command, start_proxy};
use tokio::io::AsyncWriteExt;

/// A 1×1 PNG.
const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";

/// One Claude Code session fed two user turns over stdin (`--input-format
/// stream-json`): a pasted screenshot with a question, then a text turn. Returns the
/// exit status, the `result` events and everything it printed.
async fn screenshot_then_text(
    claude: &std::path::Path,
    home: &std::path::Path,
    base: &str,
    extra: &[&str],
) -> (std::process::ExitStatus, Vec<Value>, String) {
    let mut args = vec![
        "--input-format",
        "stream-json",
        "--output-format",
        "stream-json",
        "--verbose",
    ];
    args.extend_from_slice(extra);
    let mut cmd = claude_command(claude, home, base, "", &args);
    cmd.stdin(Stdio::piped());
    let mut child = cmd.spawn().expect("start claude");
    let mut stdin = child.stdin.take().unwrap();
    let turns = [
        json!({"type": "user", "message": {"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "text", "text": "What is in this screenshot? Answer in one short sentence."}]}}),
        json!({"type": "user", "message": {"role": "user", "content": "Thanks. What is 2+2?"}}),
    ];
    for turn in &turns {
        stdin
            .write_all(format!("{turn}\n").as_bytes())
            .await
            .unwrap();
    }
    drop(stdin);
    let output = tokio::time::timeout(Duration::from_secs(150), child.wait_with_output())
        .await
        .expect("claude finished within 150 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let results = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["type"] == "result")
        .collect();
    let printed = format!(
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status, results, printed)
}

/// Every turn's `result` is a success, not an API error.
fn assert_both_answered(results: &[Value], context: &str) {
    assert_eq!(results.len(), 2, "two turns, two results\n{context}");
    for r in results {
        assert_eq!(r["is_error"], false, "{r}\n{context}");
        assert_eq!(r["subtype"], "success", "{r}\n{context}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_image_does_not_end_the_session_on_a_fake_ollama_without_vision() {
    use support::fake_ollama::{FakeConfig, FakeModel, FakeOllama};
    let Some(claude) = support::require_tool("CCR_E2E_CLAUDE") else {
        return;
    };
    // Text answers, not tool calls: each turn ends after one answer.
    let mut fake = FakeConfig::default().with_installed(FakeModel::gpt_oss());
    fake.chat.tool_call_ignored = true;
    let ollama = FakeOllama::start(fake);
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "Providers": [{"name": "ollama", "api_base_url": format!("{}/v1/chat/completions", ollama.url()), "api_key": "", "models": ["gpt-oss:20b"]}],
        "Router": {"default": "ollama,gpt-oss:20b"}
    });
    let (_proxy, base, log) = start_proxy(dir.path(), config).await;
    let (status, results, printed) = screenshot_then_text(&claude, dir.path(), &base, &[]).await;
    let context = format!(
        "{printed}\nproxy log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert!(status.success(), "{context}");
    assert_both_answered(&results, &context);
    let bodies = ollama.bodies("/v1/chat/completions");
    assert!(bodies.len() >= 2, "{context}");
    for body in &bodies {
        assert!(!body.to_string().contains("image_url"), "{body}");
    }
    let users: Vec<String> = bodies
        .iter()
        .map(|b| {
            b["messages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|m| m["role"] == "user")
                .map(|m| m["content"].to_string())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect();
    assert!(
        bodies
            .iter()
            .any(|b| b.to_string().contains("Router.image")),
        "the screenshot turn carries the note\n{users:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pasted_image_does_not_end_the_session_on_llama_server_without_a_projector() {
    let Some((claude, server, gguf)) = crate::claude::claude_and_llama() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_llama, port) = crate::claude::start_llama_server(&server, &gguf, dir.path()).await;
    let config = json!({
        "Providers": [{"name": "llama", "api_base_url": format!("http://127.0.0.1:{port}/v1/chat/completions"), "api_key": "", "models": ["smollm2"], "max_tokens": 128}],
        "Router": {"default": "llama,smollm2"},
    });
    let (_proxy, base, log) = start_proxy(dir.path(), config).await;
    let (status, results, printed) = screenshot_then_text(
        &claude,
        dir.path(),
        &base,
        crate::claude::SMALL_REQUEST_ARGS,
    )
    .await;
    let proxy_log = std::fs::read_to_string(&log).unwrap_or_default();
    let context = format!("{printed}\nproxy log:\n{proxy_log}");
    assert!(status.success(), "{context}");
    assert_both_answered(&results, &context);
    assert!(!proxy_log.contains("status=500"), "{context}");
}
