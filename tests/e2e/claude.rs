//! End to end with the real Claude Code (`CCR_E2E_CLAUDE`) through the real
//! `ccr-setup proxy` binary:
//!
//! * to the scripted fake OpenAI upstream, which first asks for a `Bash` tool call:
//!   Claude Code runs it, sends the result back (the upstream must receive it as a
//!   role `tool` message) and prints the final answer;
//! * to a real llama.cpp `llama-server` serving SmolLM2 (`CCR_E2E_LLAMA_SERVER`,
//!   `CCR_E2E_GGUF`), once as an openai-kind provider (`/v1/chat/completions`) and
//!   once as an anthropic-kind provider (`/v1/messages`), with the usage ledger
//!   recording each answer;
//! * Claude Code killed mid-stream: the proxy closes the upstream connection within 1 s,
//!   so a local GPU stops generating for nobody.

use crate::support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{json, Value};
use support::claude_code::{
    claude_command, run_claude, start_proxy, unbound_port, wait_healthy, Child,
};
use support::openai_upstream::{openai_transcript, FakeUpstream, Recorded, Reply, SseEnd};

const FINAL_TEXT: &str = "The command printed the e2e marker.";

/// The fake's script: a Bash tool call first; once a tool result came back, the final
/// text; any other request (Claude Code's side calls) gets a short text.
fn scripted_answer(req: &Recorded, _n: usize) -> Reply {
    let messages = req.body["messages"].as_array().cloned().unwrap_or_default();
    let has_tool_result = messages.iter().any(|m| m["role"] == "tool");
    let offers_bash = req.body["tools"]
        .as_array()
        .is_some_and(|t| t.iter().any(|t| t["function"]["name"] == "Bash"));
    let transcript = if has_tool_result {
        openai_transcript(
            &[
                json!({"role": "assistant", "content": "The command printed "}),
                json!({"content": "the e2e marker."}),
            ],
            "stop",
        )
    } else if offers_bash {
        let args =
            json!({"command": "echo ccr-e2e-$((6*7))", "description": "Print the e2e marker"})
                .to_string();
        let (a, b) = args.split_at(args.len() / 2);
        openai_transcript(
            &[
                json!({"role": "assistant", "reasoning": "I will run the command."}),
                json!({"tool_calls": [{"index": 0, "id": "call_e2e", "type": "function", "function": {"name": "Bash", "arguments": a}}]}),
                json!({"tool_calls": [{"index": 0, "function": {"arguments": b}}]}),
            ],
            "tool_calls",
        )
    } else {
        openai_transcript(&[json!({"role": "assistant", "content": "ok"})], "stop")
    };
    if req.body["stream"] == true {
        Reply::sse_events(&transcript, Duration::from_millis(5), SseEnd::Finish)
    } else {
        // A whole answer for non-streamed side calls.
        let text = if has_tool_result { FINAL_TEXT } else { "ok" };
        Reply::json(
            &json!({"id": "chatcmpl-fake", "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}], "usage": {"prompt_tokens": 10, "completion_tokens": 2}}),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_runs_a_tool_through_the_proxy_to_a_fake_openai_upstream() {
    let Some(claude) = support::require_tool("CCR_E2E_CLAUDE") else {
        return;
    };
    let fake = FakeUpstream::start_with(scripted_answer).await;
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "Providers": [{"name": "fake", "api_base_url": fake.url("/v1/chat/completions"), "api_key": "sk-fake", "models": ["fake-model"]}],
        "Router": {"default": "fake,fake-model"},
    });
    let (_proxy, base, log) = start_proxy(dir.path(), config).await;

    let run = run_claude(
        &claude,
        dir.path(),
        &base,
        "Run the shell command `echo ccr-e2e-$((6*7))` and tell me what it printed.",
        &["--allowedTools", "Bash"],
    )
    .await;
    let proxy_log = std::fs::read_to_string(&log).unwrap_or_default();
    let context = run.context(&proxy_log);
    assert!(run.status.success(), "{context}");
    assert!(run.stdout.contains(FINAL_TEXT), "{context}");

    // The tool ran: its output (which the command text does not contain) came back to
    // the upstream as a role=tool message answering our call id.
    let requests = fake.requests();
    let tool_message = requests
        .iter()
        .flat_map(|r| r.body["messages"].as_array().cloned().unwrap_or_default())
        .find(|m| m["role"] == "tool")
        .unwrap_or_else(|| panic!("no role=tool message reached the upstream\n{context}"));
    assert_eq!(tool_message["tool_call_id"], "call_e2e", "{tool_message}");
    assert!(
        tool_message["content"]
            .as_str()
            .is_some_and(|c| c.contains("ccr-e2e-42")),
        "the tool's output is in the tool message: {tool_message}"
    );
    // The assistant turn before it carries the call, translated back to OpenAI.
    let second = requests
        .iter()
        .find(|r| {
            r.body["messages"]
                .as_array()
                .is_some_and(|m| m.iter().any(|m| m["role"] == "tool"))
        })
        .unwrap();
    let calls: Vec<&Value> = second.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "assistant" && m["tool_calls"].is_array())
        .collect();
    assert_eq!(calls[0]["tool_calls"][0]["function"]["name"], "Bash");
    // Credentials: the provider's key went upstream, never Claude Code's token.
    assert!(requests
        .iter()
        .all(|r| r.header("authorization") == Some("Bearer sk-fake")));
    assert!(
        proxy_log.contains("fake,fake-model status=200"),
        "{proxy_log}"
    );
    eprintln!(
        "claude printed: {}\nupstream saw {} request(s); proxy log:\n{proxy_log}",
        run.stdout.trim(),
        requests.len()
    );
}

/// Claude Code, llama-server and its model, or None when one is missing (the test
/// then skips, loudly; under CI it fails).
pub(crate) fn claude_and_llama() -> Option<(PathBuf, PathBuf, PathBuf)> {
    Some((
        support::require_tool("CCR_E2E_CLAUDE")?,
        support::require_tool("CCR_E2E_LLAMA_SERVER")?,
        support::require_tool("CCR_E2E_GGUF")?,
    ))
}

/// A running llama-server; killed on drop.
pub(crate) async fn start_llama_server(bin: &Path, gguf: &Path, dir: &Path) -> (Child, u16) {
    let port = unbound_port();
    let child = std::process::Command::new(bin)
        .arg("-m")
        .arg(gguf)
        .args(["--alias", "smollm2", "-c", "8192", "--jinja", "-t", "2"])
        // Greedy sampling: the same short answer every run. Claude Code treats an
        // answer cut off at max_tokens as an error, so a rambling sample would fail.
        .args(["--temp", "0", "--seed", "1"])
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("llama-server.log")).unwrap())
        .spawn()
        .expect("start llama-server");
    let mut child = Child(child);
    wait_healthy(
        &format!("http://127.0.0.1:{port}/health"),
        Duration::from_secs(120),
        &mut child,
        "llama-server",
    )
    .await;
    (child, port)
}

/// Claude Code's full system prompt and tool list do not fit SmolLM2's 8k context, so
/// these runs offer no tools and a short system prompt.
pub(crate) const SMALL_REQUEST_ARGS: &[&str] = &[
    "--tools",
    "",
    "--system-prompt",
    "You are a helpful assistant. Answer in one short sentence.",
];

/// Rows of `provider` in the proxy's ledger under `home` that ended ok with status 200,
/// and their summed output tokens. The writer batches, so poll briefly.
async fn ledger_ok_rows(home: &Path, provider: &str) -> (i64, i64) {
    let path = home.join(".claude-code-router/ledger.sqlite");
    let mut last = (0, 0);
    for _ in 0..50 {
        if let Ok(db) =
            rusqlite::Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        {
            if let Ok(found) = db.query_row(
                "SELECT COUNT(*), COALESCE(SUM(output_tokens), 0) FROM requests
                 WHERE provider = ?1 AND outcome = 'ok' AND http_status = 200",
                [provider],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
            ) {
                last = found;
                if found.0 > 0 {
                    return found;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

/// One llama-server serves both runs (two would fight over two CPU cores).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_gets_real_text_from_llama_server_as_openai_and_anthropic_kind() {
    let Some((claude, server, gguf)) = crate::claude::claude_and_llama() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_llama, port) = start_llama_server(&server, &gguf, dir.path()).await;
    for (kind, path) in [
        ("openai", "/v1/chat/completions"),
        ("anthropic", "/v1/messages"),
    ] {
        let home = dir.path().join(kind);
        std::fs::create_dir_all(&home).unwrap();
        let config = json!({
            "Providers": [{"name": "llama", "api_base_url": format!("http://127.0.0.1:{port}{path}"), "api_key": "", "models": ["smollm2"], "max_tokens": 128}],
            "Router": {"default": "llama,smollm2"},
        });
        let (_proxy, base, log) = start_proxy(&home, config).await;
        let health = support::get_json(&format!("{base}/health")).await;
        assert_eq!(health["providers"][0]["kind"], kind);
        let run = run_claude(
            &claude,
            &home,
            &base,
            // Greedy SmolLM2 answers this briefly ("2 + 2 = 4"); some questions make it
            // loop until max_tokens.
            "What is 2+2?",
            SMALL_REQUEST_ARGS,
        )
        .await;
        let proxy_log = std::fs::read_to_string(&log).unwrap_or_default();
        let llama_log =
            std::fs::read_to_string(dir.path().join("llama-server.log")).unwrap_or_default();
        let tail = llama_log
            .lines()
            .rev()
            .take(30)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        let context = format!(
            "{kind} kind: claude exit {:?}\nstdout: {}\nstderr: {}\nproxy log:\n{proxy_log}\nllama-server log tail:\n{tail}",
            run.status, run.stdout, run.stderr
        );
        assert!(run.status.success(), "{context}");
        // Real generated text that answers the question.
        assert!(
            !run.stdout.trim().is_empty() && run.stdout.contains('4'),
            "claude printed the model's answer\n{context}"
        );
        assert!(!run.stdout.contains("API Error"), "{context}");
        assert!(proxy_log.contains("llama,smollm2 status=200"), "{context}");
        // The usage ledger recorded the answered request with real token counts.
        let (rows, output_tokens) = ledger_ok_rows(&home, "llama").await;
        assert!(
            rows >= 1 && output_tokens > 0,
            "ledger rows {rows}, output tokens {output_tokens}\n{context}"
        );
        eprintln!("{kind} kind: claude printed: {}", run.stdout.trim());
    }
}

/// The main turn's answer streams slowly and never ends on its own; side calls get a
/// short text.
fn endless_answer(req: &Recorded, _n: usize) -> Reply {
    let long_turn =
        req.body["stream"] == true && req.body["tools"].as_array().is_some_and(|t| !t.is_empty());
    if long_turn {
        let words: Vec<Value> = (0..400)
            .map(|i| json!({"content": format!("word{i} ")}))
            .collect();
        Reply::sse_events(
            &openai_transcript(&words, "stop"),
            Duration::from_millis(50),
            SseEnd::Hang,
        )
    } else if req.body["stream"] == true {
        Reply::sse_events(
            &openai_transcript(&[json!({"role": "assistant", "content": "ok"})], "stop"),
            Duration::from_millis(5),
            SseEnd::Finish,
        )
    } else {
        Reply::json(
            &json!({"id": "chatcmpl-fake", "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}], "usage": {"prompt_tokens": 10, "completion_tokens": 2}}),
        )
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_claude_code_mid_stream_closes_the_upstream_connection_within_1s() {
    let Some(claude) = support::require_tool("CCR_E2E_CLAUDE") else {
        return;
    };
    let upstream = FakeUpstream::start_with(endless_answer).await;
    let dir = tempfile::tempdir().unwrap();
    let config = json!({
        "Providers": [{"name": "local", "api_base_url": upstream.url("/v1/chat/completions"), "models": ["gpt-oss:20b"]}],
        "Router": {"default": "local,gpt-oss:20b"},
    });
    let (_proxy, base, log) = start_proxy(dir.path(), config).await;
    let mut child = claude_command(&claude, dir.path(), &base, "Write a long essay.", &[])
        .spawn()
        .expect("start claude");

    // Wait until the long turn is streaming (its index among Claude Code's requests).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let long_turn = loop {
        let found = upstream.requests().iter().position(|r| {
            r.body["stream"] == true && r.body["tools"].as_array().is_some_and(|t| !t.is_empty())
        });
        if let Some(i) = found {
            break i;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "claude never sent its main turn; upstream saw {:?}",
            upstream
                .requests()
                .iter()
                .map(|r| &r.body["model"])
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    // Let some of the answer reach Claude Code, then kill it (SIGKILL: no goodbye).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        upstream.client_closed_at(long_turn).is_none(),
        "closed before the kill"
    );
    child.start_kill().unwrap();
    let killed_at = std::time::Instant::now();
    let _ = child.wait().await;

    let closed = loop {
        if let Some(at) = upstream.client_closed_at(long_turn) {
            break at;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(3),
            "upstream connection still open 3 s after claude was killed\nproxy log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    let after = closed.saturating_duration_since(killed_at);
    assert!(
        after < Duration::from_secs(1),
        "closed {after:?} after the kill"
    );
    eprintln!("upstream connection closed {after:?} after claude was killed");
}
