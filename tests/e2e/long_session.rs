//! A Claude Code session that outgrows a 32k local window goes on, locally: the real
//! Claude Code (the pinned version and the newest release) through `ccr-setup code`
//! reads eight files of 4–7k tokens each from a scripted local model whose provider
//! declares `context_window: 32768`, then reads the first one again. The proxy clears
//! old tool results (context editing) so that no request over the window reaches the
//! upstream and no API error ends the session; the re-read gets the file's content to
//! the model even though its first result was cleared (2.1.197 answers a re-read of an
//! unchanged file with a pointer to the earlier result).

use crate::support;

use std::path::Path;
use std::time::Duration;

use ccr_setup::proxy::tokens::count_text;
use serde_json::{json, Value};
use support::claude_code::{run_code, Child, Scratch};
use support::openai_upstream::{openai_transcript, FakeUpstream, Recorded, Reply, SseEnd};

const FILES: usize = 8;
const WINDOW: u64 = 32_768;
const DONE: &str = "DONE: all eight files were read.";

/// The marker on the first line of file `i`: seen by the model only if the file's
/// content reached it.
fn marker(i: usize) -> String {
    format!("MARKER-f{i}-7c1e")
}

/// File `i`: about 4k tokens for f0, up to about 7k for f7 (as Read numbers its lines).
fn write_files(work: &Path) {
    for i in 0..FILES {
        let lines = 230 + 35 * i;
        let mut text = format!("{}\n", marker(i));
        for n in 0..lines {
            text.push_str(&format!(
                "{n}: record {i}-{n} holds the quick brown fox and the lazy dog\n"
            ));
        }
        std::fs::write(work.join(format!("f{i}.txt")), text).unwrap();
    }
}

/// The scripted local model: Read f0…f7 one at a time, then f0 again, then finish.
/// Side requests (titles, no tools) get "ok".
fn script(work: &Path) -> impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static {
    let work = work.to_path_buf();
    move |req, _| {
        let messages = req.body["messages"].as_array().cloned().unwrap_or_default();
        let offers_read = req.body["tools"]
            .as_array()
            .is_some_and(|t| t.iter().any(|t| t["function"]["name"] == "Read"));
        let done = messages.iter().filter(|m| m["role"] == "tool").count();
        let deltas = if !offers_read {
            vec![json!({"role": "assistant", "content": "ok"})]
        } else if done <= FILES {
            let file = work.join(format!("f{}.txt", done % FILES));
            let args = json!({"file_path": file}).to_string();
            vec![
                json!({"role": "assistant", "reasoning": "Next file."}),
                json!({"tool_calls": [{"index": 0, "id": format!("call_{done}"), "type": "function", "function": {"name": "Read", "arguments": args}}]}),
            ]
        } else {
            vec![json!({"role": "assistant", "content": DONE})]
        };
        let finish = if offers_read && done <= FILES {
            "tool_calls"
        } else {
            "stop"
        };
        if req.body["stream"] == true {
            Reply::sse_events(
                &openai_transcript(&deltas, finish),
                Duration::from_millis(1),
                SseEnd::Finish,
            )
        } else {
            Reply::json(
                &json!({"id": "c", "choices": [{"index": 0, "finish_reason": "stop",
                "message": {"role": "assistant", "content": "ok"}}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1}}),
            )
        }
    }
}

/// The request's prompt as the upstream received it, in o200k tokens: every message's
/// text and every tool definition (the proxy's own estimate counts the same parts).
fn prompt_tokens(body: &Value) -> u64 {
    let mut text = String::new();
    for m in body["messages"].as_array().into_iter().flatten() {
        match &m["content"] {
            Value::String(s) => text.push_str(s),
            other => text.push_str(&other.to_string()),
        }
        if let Some(calls) = m.get("tool_calls") {
            text.push_str(&calls.to_string());
        }
        text.push('\n');
    }
    if let Some(tools) = body.get("tools") {
        text.push_str(&tools.to_string());
    }
    count_text(&text)
}

/// A proxy in front of a scripted local model with a 32k window, files to read, and
/// the paths a test needs.
struct Setup {
    dir: tempfile::TempDir,
    home: std::path::PathBuf,
    config: std::path::PathBuf,
    log: std::path::PathBuf,
    fake: FakeUpstream,
    _proxy: Child,
}

impl Setup {
    /// `context_editing` set to `mode`; the local model answers with `handler`, given
    /// the work folder.
    async fn start<H>(mode: &str, handler: impl FnOnce(&Path) -> H) -> Setup
    where
        H: Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    {
        let scratch = Scratch::new();
        write_files(&scratch.work);
        let fake = FakeUpstream::start_with(handler(&scratch.work)).await;
        scratch.write_config(json!({
            "Providers": [{"name": "local", "api_base_url": fake.url("/v1/chat/completions"),
                           "models": ["gpt-oss:20b"], "context_window": WINDOW,
                           "context_editing": mode}],
            "Router": {"default": "local,gpt-oss:20b"},
        }));
        let log = scratch.dir.path().join("proxy.stderr");
        let stderr = std::fs::File::create(&log).unwrap();
        let proxy = scratch.spawn_proxy(stderr.into()).await;
        let Scratch {
            dir, home, config, ..
        } = scratch;
        Setup {
            dir,
            home,
            config,
            log,
            fake,
            _proxy: proxy,
        }
    }

    /// `ccr-setup code -p` asking for the eight reads and the re-read.
    async fn read_all(&self, claude: &Path) -> std::process::Output {
        run_code(
            &self.config,
            claude,
            &self.home,
            &[
                "-p",
                "Read f0.txt to f7.txt one at a time, then f0.txt once more.",
                "--allowedTools",
                "Read",
            ],
        )
        .await
    }

    /// Claude Code's exit and output and the proxy's log, for a failed assertion.
    fn context(&self, out: &std::process::Output) -> String {
        let _ = &self.dir;
        format!(
            "exit {:?}\nstdout: {}\nstderr: {}\nproxy log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(&self.log).unwrap_or_default()
        )
    }
}

async fn long_read_session(claude_var: &str) {
    let Some(claude) = support::require_tool(claude_var) else {
        return;
    };
    let setup = Setup::start("auto", script).await;
    let out = setup.read_all(&claude).await;
    let context = setup.context(&out);
    let proxy_log = std::fs::read_to_string(&setup.log).unwrap_or_default();
    let (fake, config, home) = (&setup.fake, &setup.config, &setup.home);
    assert!(out.status.success(), "{context}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(DONE),
        "{context}"
    );

    // Every file was read, and no request the upstream saw was over the window.
    let requests = fake.requests();
    let main: Vec<&Recorded> = requests
        .iter()
        .filter(|r| r.body["tools"].as_array().is_some_and(|t| !t.is_empty()))
        .collect();
    let tool_messages = |r: &Recorded| -> Vec<Value> {
        r.body["messages"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|m| m["role"] == "tool")
            .cloned()
            .collect()
    };
    let last = main.last().expect("main requests reached the upstream");
    let results = tool_messages(last);
    assert_eq!(results.len(), FILES + 1, "{context}");
    for line in proxy_log.lines().filter(|l| l.contains("context editing")) {
        eprintln!("{claude_var}: {line}");
    }
    let sizes: Vec<u64> = main.iter().map(|r| prompt_tokens(&r.body)).collect();
    eprintln!(
        "{claude_var}: {} main requests reached the upstream, prompt tokens {sizes:?}",
        main.len()
    );
    for &tokens in &sizes {
        assert!(
            tokens <= WINDOW,
            "a {tokens}-token request reached a {WINDOW} window\n{context}"
        );
    }
    // The session outgrew the window: the proxy cleared the oldest results…
    let first = results[0]["content"].to_string();
    assert!(
        first.contains("ccr-setup cleared this result") && !first.contains(&marker(0)),
        "f0's first result is cleared by the end: {first}\n{context}"
    );
    assert!(proxy_log.contains("context editing"), "{context}");
    // …and the re-read of f0 got its content to the model all the same.
    let reread = results[FILES]["content"].to_string();
    assert!(
        reread.contains(&marker(0)),
        "the re-read of a cleared file holds the file: {reread}\n{context}"
    );
    // The ledger and /health agree that context was cleared.
    let stats = std::process::Command::new(env!("CARGO_BIN_EXE_ccr-setup"))
        .arg("--config")
        .arg(config)
        .args(["stats", "--json"])
        .env("HOME", home)
        .output()
        .unwrap();
    let stats: Value = serde_json::from_slice(&stats.stdout).unwrap_or_default();
    assert!(
        stats["totals"]["context_cleared_blocks"].as_u64() > Some(0),
        "stats: {stats}\n{context}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_heavy_session_outgrows_32k_and_goes_on_with_the_pinned_claude_code() {
    long_read_session("CCR_E2E_CLAUDE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_heavy_session_outgrows_32k_and_goes_on_with_the_newest_claude_code() {
    long_read_session("CCR_E2E_CLAUDE_LATEST").await;
}

/// The last message of a compaction request Claude Code sends (both versions).
const COMPACT_PROMPT: &str = "CRITICAL: Respond with TEXT ONLY";

/// Whether `req` is a compaction request (its last message is the summary prompt).
fn is_compaction(req: &Recorded) -> bool {
    req.body["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m.to_string().contains(COMPACT_PROMPT))
}

/// `reads`, except that a compaction request is answered with `summary`.
fn summarising(
    reads: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    summary: &'static str,
) -> impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static {
    move |req, n| {
        if !is_compaction(req) {
            return reads(req, n);
        }
        let t = openai_transcript(&[json!({"role": "assistant", "content": summary})], "stop");
        Reply::sse_events(&t, Duration::from_millis(1), SseEnd::Finish)
    }
}

/// With `context_editing: off` the proxy refuses a prompt over the window in
/// Anthropic's words, and the real Claude Code answers that by compacting: its next
/// request is the summary request. (Whether the session then goes on depends on the
/// version; editing, the default, is what keeps it going.)
async fn refusal_makes_claude_code_compact(claude_var: &str) {
    let Some(claude) = support::require_tool(claude_var) else {
        return;
    };
    let setup = Setup::start("off", |work| {
        summarising(script(work), "<summary>Read f0 to f3 so far.</summary>")
    })
    .await;
    let out = setup.read_all(&claude).await;
    let context = setup.context(&out);
    let requests = setup.fake.requests();
    let compaction = requests.iter().position(is_compaction);
    assert!(
        compaction.is_some(),
        "Claude Code compacted after the refusal\n{context}"
    );
    let log = std::fs::read_to_string(&setup.log).unwrap_or_default();
    assert!(
        log.contains("outcome=rejected:context_guard"),
        "the proxy refused first\n{context}"
    );
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("API Error: 400"),
        "a refusal Claude Code does not read as prompt-too-long ends the turn\n{context}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refusal_in_anthropics_words_makes_the_pinned_claude_code_compact() {
    refusal_makes_claude_code_compact("CCR_E2E_CLAUDE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refusal_in_anthropics_words_makes_the_newest_claude_code_compact() {
    refusal_makes_claude_code_compact("CCR_E2E_CLAUDE_LATEST").await;
}

/// `/compact` typed into an interactive Claude Code whose conversation is far over the
/// local window: the compaction request is edited like any other, so it fits and the
/// summary comes back (without editing it would be refused: "Error during compaction").
async fn interactive_compact_on_a_full_window(claude_var: &str) {
    let Some(claude) = support::require_tool(claude_var) else {
        return;
    };
    let setup = Setup::start("auto", |work| {
        summarising(
            script(work),
            "<summary>All eight files were read.</summary>",
        )
    })
    .await;
    let work = setup.home.join("work");
    std::fs::create_dir_all(setup.home.join(".claude")).unwrap();
    std::fs::write(
        setup.home.join(".claude/settings.json"),
        json!({"permissions": {"allow": ["Read"]}}).to_string(),
    )
    .unwrap();
    let bin = setup.home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&claude, bin.join("claude")).unwrap();
    std::fs::write(
        setup.home.join(".claude.json"),
        json!({"hasCompletedOnboarding": true,
               "projects": {work.to_string_lossy(): {"hasTrustDialogAccepted": true}}})
        .to_string(),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ccr-setup"));
    cmd.arg("--config")
        .arg(&setup.config)
        .arg("code")
        .current_dir(&work)
        .env_clear()
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env("HOME", &setup.home)
        .env("TERM", "xterm-256color")
        .env("LANG", "C.UTF-8")
        .env("DISABLE_AUTOUPDATER", "1");
    let fake_requests = {
        let fake = &setup.fake;
        move || fake.requests()
    };
    let compacted = |reqs: &[Recorded]| reqs.iter().any(is_compaction);
    let mut s = expectrl::Session::spawn(cmd).expect("spawn in a pty");
    s.set_expect_timeout(Some(Duration::from_secs(60)));
    let _ = s.get_process_mut().set_window_size(120, 40);
    std::thread::sleep(Duration::from_secs(3));
    s.send("Read f0.txt to f7.txt one at a time, then f0.txt once more.")
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    s.send("\r").unwrap();
    let context = || {
        format!(
            "proxy log:\n{}",
            std::fs::read_to_string(&setup.log).unwrap_or_default()
        )
    };
    // The reads are over when the model was asked for its answer after the re-read.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let finished = |reqs: &[Recorded]| {
        reqs.iter().any(|r| {
            r.body["messages"]
                .as_array()
                .is_some_and(|m| m.iter().filter(|m| m["role"] == "tool").count() > FILES)
        })
    };
    while !finished(&fake_requests()) {
        assert!(
            std::time::Instant::now() < deadline,
            "the reads did not finish\n{}",
            context()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(3));
    s.send("/compact").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    s.send("\r").unwrap();
    let outcome = s.expect(expectrl::Regex("Compacted|Error during compaction|rror"));
    let screen = outcome
        .as_ref()
        .map(|c| String::from_utf8_lossy(c.as_bytes()).into_owned())
        .unwrap_or_default();
    let _ = s.send("\x03");
    let _ = s.send("\x03");
    assert!(
        compacted(&fake_requests()),
        "the compaction request reached the local model\n{}",
        context()
    );
    assert!(
        screen.contains("Compacted"),
        "{claude_var}: /compact succeeded: {outcome:?}\n{}",
        context()
    );
    for r in fake_requests() {
        let tokens = prompt_tokens(&r.body);
        assert!(tokens <= WINDOW, "{tokens} over the window\n{}", context());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_compact_succeeds_on_a_full_window_with_the_pinned_claude_code() {
    interactive_compact_on_a_full_window("CCR_E2E_CLAUDE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interactive_compact_succeeds_on_a_full_window_with_the_newest_claude_code() {
    interactive_compact_on_a_full_window("CCR_E2E_CLAUDE_LATEST").await;
}
