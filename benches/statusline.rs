//! What `ccr-setup statusline` costs Claude Code after every message: the whole
//! command, as Claude Code runs it (a new process, Claude Code's JSON on stdin), with a
//! running proxy that knows the session and a ledger holding a day of rows.
//!
//! * `statusline/proxy_up`: the usual case (one loopback request, today's ledger rows).
//! * `statusline/proxy_down`: nothing listens on the config's port.
//!
//! The goal is under 30 ms for `proxy_up`. `cargo bench --bench statusline`

#[path = "../tests/it/support/openai_upstream.rs"]
#[allow(dead_code)]
mod openai_upstream;

use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ccr_setup::config::ConfigFile;
use ccr_setup::ledger::{Ledger, LedgerOptions};
use ccr_setup::proxy::reload::LiveConfig;
use ccr_setup::proxy::server::{app, serve, AppState, ServerOptions};
use criterion::{criterion_group, criterion_main, Criterion};
use openai_upstream::{FakeUpstream, Reply};
use serde_json::{json, Value};

const SESSION: &str = "0f3c1d2e-0000-4000-8000-000000000001";
/// Rows in today's ledger: a long working day of Claude Code turns.
const ROWS: usize = 2_000;

fn doc(upstream: &str, port: u16) -> Value {
    json!({
        "PORT": port,
        "Providers": [{"name": "local", "api_base_url": upstream, "api_key": "",
                       "models": ["gpt-oss:20b"], "context_window": 32768}],
        "Router": {"default": "local,gpt-oss:20b"}
    })
}

fn statusline(home: &Path) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ccr-setup"))
        .arg("statusline")
        .env("HOME", home)
        .env_remove("CCR_SETUP_CONFIG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let input = json!({"session_id": SESSION, "model": {"id": "claude-opus-4-8"}, "cwd": "/p"});
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let up = tempfile::tempdir().unwrap();
    let down = tempfile::tempdir().unwrap();
    let ledger_path = up.path().join(".claude-code-router/ledger.sqlite");
    let (_fake, _ledger) = rt.block_on(async {
        let fake = FakeUpstream::start(vec![Reply::json(&json!({
            "id": "chatcmpl-1", "object": "chat.completion", "model": "fake",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "Hi."}}],
            "usage": {"prompt_tokens": 12_000, "completion_tokens": 3, "total_tokens": 12_003}
        }))])
        .await;
        let url = fake.url("/v1/chat/completions");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let doc = doc(&url, port);
        for home in [up.path(), down.path()] {
            let dir = home.join(".claude-code-router");
            std::fs::create_dir_all(&dir).unwrap();
            let port = if home == up.path() { port } else { 9 };
            std::fs::write(dir.join("config.json"), self::doc(&url, port).to_string()).unwrap();
        }
        let config = ConfigFile::new(Path::new("/bench/config.json"), doc)
            .resolve_with(&|_| None)
            .unwrap();
        let ledger = Ledger::spawn(ledger_path.clone(), LedgerOptions::for_config(&config));
        let state = AppState::new(
            LiveConfig::new(config),
            ledger.clone(),
            ServerOptions::default(),
        )
        .unwrap();
        tokio::spawn(async move {
            serve(listener, app(Arc::clone(&state)), std::future::pending()).await;
        });
        let client = reqwest::Client::new();
        let body = json!({
            "model": "claude-opus-4-8", "max_tokens": 64, "stream": false,
            "metadata": {"user_id": json!({"session_id": SESSION}).to_string()},
            "messages": [{"role": "user", "content": "Say hi"}]
        });
        for _ in 0..ROWS {
            let r = client
                .post(format!("http://127.0.0.1:{port}/v1/messages"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        assert!(
            ledger.flush(Duration::from_secs(30)).await,
            "the ledger settled"
        );
        (fake, ledger)
    });

    let line = statusline(up.path());
    assert!(
        line.starts_with("ccr · local gpt-oss:20b · ctx 12.0k/32.8k 37% · saved $"),
        "{line}"
    );
    let line = statusline(down.path());
    assert!(line.starts_with("ccr · proxy not running"), "{line}");

    let mut g = c.benchmark_group("statusline");
    g.sample_size(30);
    g.bench_function("proxy_up", |b| b.iter(|| statusline(up.path())));
    g.bench_function("proxy_down", |b| b.iter(|| statusline(down.path())));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
