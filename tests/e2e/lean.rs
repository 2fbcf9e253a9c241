//! `ccr-setup code --lean` with the real Claude Code (`CCR_E2E_CLAUDE`): the tool
//! schemas it drops really leave the request the proxy forwards, and the ones a local
//! session works with stay.

use crate::support;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use ccr_setup::context_budget::LEAN_DISALLOWED_TOOLS;
use serde_json::json;
use support::claude_code::{run_code, spawn_proxy, unbound_port};
use support::openai_upstream::{openai_transcript, FakeUpstream, Reply, SseEnd};

/// The tool names of the largest request (Claude Code's main one) among `requests`.
fn main_request_tools(requests: &[support::openai_upstream::Recorded]) -> BTreeSet<String> {
    requests
        .iter()
        .filter_map(|r| r.body["tools"].as_array())
        .max_by_key(|t| t.len())
        .map(|tools| {
            tools
                .iter()
                .filter_map(|t| t["function"]["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// `ccr-setup code [--lean] -p "Say ok."`, which must succeed.
async fn run_lean(config: &Path, claude: &Path, home: &Path, lean: bool) {
    let args: &[&str] = if lean {
        &["--lean", "-p", "Say ok."]
    } else {
        &["-p", "Say ok."]
    };
    let out = run_code(config, claude, home, args).await;
    assert!(
        out.status.success(),
        "ccr-setup code (lean: {lean}) failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_lean_removes_those_tool_schemas_from_what_the_proxy_receives() {
    let Some(claude) = support::require_tool("CCR_E2E_CLAUDE") else {
        return;
    };
    let fake = FakeUpstream::start_with(|req, _| {
        let t = openai_transcript(&[json!({"role": "assistant", "content": "ok"})], "stop");
        if req.body["stream"] == true {
            Reply::sse_events(&t, Duration::from_millis(1), SseEnd::Finish)
        } else {
            Reply::json(
                &json!({"id": "c", "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "ok"}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1}}),
            )
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let port = unbound_port();
    let config = dir.path().join("config.json");
    std::fs::write(
        &config,
        json!({
            "PORT": port, "LEDGER": false,
            "Providers": [{"name": "fake", "api_base_url": fake.url("/v1/chat/completions"),
                           "api_key": "sk-fake", "models": ["fake-model"]}],
            "Router": {"default": "fake,fake-model"},
        })
        .to_string(),
    )
    .unwrap();
    let _proxy = spawn_proxy(&config, dir.path(), port, Stdio::null()).await;
    run_lean(&config, &claude, &dir.path().join("plain"), false).await;
    let seen = fake.requests().len();
    let plain = main_request_tools(&fake.requests());
    run_lean(&config, &claude, &dir.path().join("lean"), true).await;
    let lean = main_request_tools(&fake.requests()[seen..]);

    for kept in ["Read", "Edit", "Write", "Bash", "Agent"] {
        assert!(
            plain.contains(kept) && lean.contains(kept),
            "{kept}: {lean:?}"
        );
    }
    for dropped in [
        "Workflow",
        "WebFetch",
        "WebSearch",
        "NotebookEdit",
        "CronCreate",
    ] {
        assert!(
            plain.contains(dropped),
            "{dropped} is offered without --lean: {plain:?}"
        );
    }
    let still: Vec<_> = LEAN_DISALLOWED_TOOLS
        .iter()
        .filter(|t| lean.contains(**t))
        .collect();
    assert!(still.is_empty(), "--lean left {still:?} in {lean:?}");
    assert_eq!(
        plain.len() - lean.len(),
        LEAN_DISALLOWED_TOOLS
            .iter()
            .filter(|t| plain.contains(**t))
            .count(),
        "only the lean list is dropped: {plain:?} → {lean:?}"
    );
}
