//! The status line on the real Claude Code (interactive, in a PTY): with
//! `statusLine` set to `ccr-setup statusline`, the line appears under the prompt
//! naming the local model, and changes when a request falls back to the cloud because
//! the local model's tool call could not be used.

use crate::support;

use std::io::Write as _;
use std::num::NonZeroU16;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use expectrl::Session;
use serde_json::json;
use support::claude_code::start_proxy;
use support::openai_upstream::{openai_transcript, FakeUpstream, Reply, SseEnd};

fn text_reply(text: &str) -> Reply {
    Reply::sse_events(
        &openai_transcript(&[json!({"role": "assistant", "content": text})], "stop"),
        Duration::from_millis(5),
        SseEnd::Finish,
    )
}

/// The terminal as a terminal emulator (vt100) renders it: Claude Code redraws only
/// the cells that changed, so the byte stream alone does not hold whole lines.
struct Screen {
    parser: vt100::Parser,
}

impl Screen {
    fn new() -> Screen {
        Screen {
            parser: vt100::Parser::new(
                NonZeroU16::new(40).unwrap(),
                NonZeroU16::new(140).unwrap(),
                0,
            ),
        }
    }

    fn pump(&mut self, s: &mut Session) {
        let mut buf = [0u8; 65536];
        while let Ok(n) = s.try_read(&mut buf) {
            if n == 0 {
                break;
            }
            self.parser.process(&buf[..n]);
        }
    }

    fn contents(&self) -> String {
        self.parser.screen().contents()
    }

    /// Wait until the screen shows `needle`, answering Claude Code's trust dialog on
    /// the way.
    fn wait_for(&mut self, s: &mut Session, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            self.pump(s);
            let screen = self.contents();
            if screen.contains(needle) {
                return;
            }
            if screen.contains("Yes, I trust this folder") {
                s.send("\r").unwrap();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "the screen never showed {needle:?}; it shows:\n{}",
            self.contents()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_line_shows_the_local_model_then_the_fallback_with_the_pinned_claude_code() {
    status_line_shows_local_then_fallback("CCR_E2E_CLAUDE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_line_shows_the_local_model_then_the_fallback_with_the_newest_claude_code() {
    status_line_shows_local_then_fallback("CCR_E2E_CLAUDE_LATEST").await;
}

/// Claude Code started by `ccr-setup --config X code`, with the status line installed as
/// plain `ccr-setup statusline` (no `--config`): the status line, which Claude Code runs
/// as its child, reads the session's config X through `CCR_SETUP_CONFIG` and so finds
/// the proxy X names.
async fn status_line_shows_local_then_fallback(claude_var: &str) {
    let Some(claude) = support::require_tool(claude_var) else {
        return;
    };
    // The local model answers in prose until `broken`; then, when tools are offered,
    // with a call to a tool that does not exist (unusable even after repair).
    let broken = Arc::new(AtomicBool::new(false));
    let local_broken = Arc::clone(&broken);
    let local = FakeUpstream::start_with(move |req, _| {
        let tools = req.body["tools"].as_array().is_some_and(|t| !t.is_empty());
        if local_broken.load(Ordering::SeqCst) && tools {
            let call = json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                "function": {"name": "Deploy", "arguments": "{}"}}]});
            Reply::sse_events(
                &openai_transcript(&[call], "tool_calls"),
                Duration::from_millis(5),
                SseEnd::Finish,
            )
        } else {
            text_reply("Local says hi.")
        }
    })
    .await;
    let cloud = FakeUpstream::start(vec![text_reply("The cloud answered.")]).await;

    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    let mut config = json!({
        "Providers": [
            {"name": "local", "api_base_url": local.url("/v1/chat/completions"), "api_key": "",
             "models": ["small"], "context_window": 32768},
            {"name": "cloud", "api_base_url": cloud.url("/v1/chat/completions"), "api_key": "sk",
             "models": ["big"], "local": false}
        ],
        "Router": {"default": "local,small"},
        "fallback": {"default": ["cloud,big"]}
    });
    let (_proxy, base, log) = start_proxy(home, config.clone()).await;
    // The status line finds the proxy through the config's PORT.
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    config["PORT"] = json!(port);
    let statusline_config = home.join("statusline-config.json");
    std::fs::write(&statusline_config, config.to_string()).unwrap();

    let work = home.join("work");
    std::fs::create_dir_all(home.join(".claude")).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(
        home.join(".claude.json"),
        json!({"hasCompletedOnboarding": true,
               "projects": {work.to_str().unwrap(): {"hasTrustDialogAccepted": true}}})
        .to_string(),
    )
    .unwrap();
    // As `statusline --install` writes it, with this build's binary; the config is the
    // one `code` was given, not named here.
    let command = format!("{} statusline", env!("CARGO_BIN_EXE_ccr-setup"));
    std::fs::write(
        home.join(".claude/settings.json"),
        json!({"statusLine": {"type": "command", "command": command, "padding": 0}}).to_string(),
    )
    .unwrap();

    let bin = home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(&claude, bin.join("claude")).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ccr-setup"));
    cmd.arg("--config")
        .arg(&statusline_config)
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
        .env("HOME", home)
        .env("TERM", "xterm-256color")
        .env("LANG", "C.UTF-8")
        .env("CLAUDE_CODE_MAX_OUTPUT_TOKENS", "512")
        .env("DISABLE_AUTOUPDATER", "1");
    let mut s = Session::spawn(cmd).expect("claude in a pty");
    s.get_process_mut().set_window_size(140, 40).unwrap();
    let mut screen = Screen::new();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        std::thread::sleep(Duration::from_secs(3));
        screen.pump(&mut s);
        s.send("Say hi.").unwrap();
        std::thread::sleep(Duration::from_millis(700));
        s.send("\r").unwrap();
        screen.wait_for(&mut s, "Local says hi.", Duration::from_secs(90));
        screen.wait_for(&mut s, "ccr · local small · ctx ", Duration::from_secs(60));

        broken.store(true, Ordering::SeqCst);
        s.send("Deploy it.").unwrap();
        std::thread::sleep(Duration::from_millis(700));
        s.send("\r").unwrap();
        screen.wait_for(&mut s, "The cloud answered.", Duration::from_secs(90));
        screen.wait_for(
            &mut s,
            "ccr · cloud big (fallback from local,small: tool call invalid)",
            Duration::from_secs(60),
        );
    }));
    let _ = s.send("\u{3}");
    let _ = s.send("\u{3}");
    let _ = s.get_process_mut().exit(true);
    if let Err(panic) = result {
        let proxy_log = std::fs::read_to_string(&log).unwrap_or_default();
        let _ = writeln!(std::io::stderr(), "proxy log:\n{proxy_log}");
        std::panic::resume_unwind(panic);
    }
    assert!(
        !cloud.requests().is_empty(),
        "the second turn reached the cloud"
    );
}
