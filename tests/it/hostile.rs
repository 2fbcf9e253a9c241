//! The proxy against what a hostile web page or body can send (issue #15). Each test
//! is an attack that worked before the checks existed.

use crate::support;

use serde_json::{json, Value};
use support::openai_upstream::{FakeUpstream, Reply};
use support::proxy_app::{self, error_body, ProxyApp};

fn answer() -> Reply {
    Reply::json(&json!({
        "id": "c", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    }))
}

async fn proxy_for(fake: &FakeUpstream, extra: Value) -> ProxyApp {
    let mut doc = json!({
        "Providers": [{"name": "local", "api_base_url": fake.url("/v1/chat/completions"), "models": ["m"]}],
        "Router": {"default": "local,m"},
    });
    for (k, v) in extra.as_object().unwrap() {
        doc[k] = v.clone();
    }
    ProxyApp::start_config(proxy_app::config(&doc)).await
}

fn body() -> String {
    json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]})
        .to_string()
}

#[tokio::test]
async fn a_web_pages_no_cors_text_plain_post_is_refused_and_never_forwarded() {
    let fake = FakeUpstream::start(vec![answer()]).await;
    let app = proxy_for(&fake, json!({})).await;
    let client = reqwest::Client::new();
    // What `fetch(url, {method: "POST", mode: "no-cors", headers: {"Content-Type":
    // "text/plain"}, body})` sends from a page: no preflight.
    let resp = client
        .post(app.url("/v1/messages"))
        .header("content-type", "text/plain;charset=UTF-8")
        .header("origin", "https://evil.example")
        .body(body())
        .send()
        .await
        .unwrap();
    let (status, err) = error_body(resp).await;
    assert_eq!(status, 403, "{err}");
    assert_eq!(err["error"]["type"], "permission_error");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("ALLOWED_ORIGINS"));
    // The same body as text/plain without an Origin (a non-browser client gone wrong).
    let resp = client
        .post(app.url("/v1/messages"))
        .header("content-type", "text/plain")
        .body(body())
        .send()
        .await
        .unwrap();
    let (status, err) = error_body(resp).await;
    assert_eq!(status, 415, "{err}");
    assert_eq!(err["error"]["type"], "invalid_request_error");
    assert!(fake.requests().is_empty(), "the upstream was called");
    // Claude Code's own request still works.
    let resp = client
        .post(app.url("/v1/messages"))
        .header("content-type", "application/json")
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(fake.requests().len(), 1);
}

#[tokio::test]
async fn a_listed_origin_is_served() {
    let fake = FakeUpstream::start(vec![answer()]).await;
    let app = proxy_for(&fake, json!({"ALLOWED_ORIGINS": ["http://localhost:5173"]})).await;
    let resp = reqwest::Client::new()
        .post(app.url("/v1/messages"))
        .header("content-type", "application/json")
        .header("origin", "http://localhost:5173")
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

/// DNS rebinding: a page on evil.example whose name now resolves to 127.0.0.1 reads
/// the answers; its requests carry `Host: evil.example:PORT`.
#[tokio::test]
async fn a_rebinding_host_is_refused_everywhere_but_the_root() {
    let fake = FakeUpstream::start(vec![answer()]).await;
    let app = proxy_for(&fake, json!({})).await;
    let port = app.base.rsplit(':').next().unwrap();
    let evil = format!("evil.example:{port}");
    let client = reqwest::Client::new();
    for path in ["/health", "/v1/models", "/ui/", "/nope"] {
        let resp = client
            .get(app.url(path))
            .header("host", &evil)
            .send()
            .await
            .unwrap();
        let (status, err) = error_body(resp).await;
        assert_eq!((path, status), (path, 403), "{err}");
    }
    let resp = client
        .post(app.url("/v1/messages"))
        .header("host", &evil)
        .header("content-type", "application/json")
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert!(fake.requests().is_empty());
    // The liveness answer stays open; loopback names pass.
    let root = client
        .get(app.url("/"))
        .header("host", &evil)
        .send()
        .await
        .unwrap();
    assert_eq!(root.status(), 200);
    for host in [format!("localhost:{port}"), format!("127.0.0.1:{port}")] {
        let resp = client
            .get(app.url("/health"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
}

/// A 30 MB `metadata.user_id` on a request that is then refused (no such model) used to
/// be written to the ledger verbatim.
#[tokio::test]
async fn a_30_mb_user_id_leaves_a_small_ledger_row() {
    let fake = FakeUpstream::start(vec![answer()]).await;
    let mut app = proxy_for(&fake, json!({})).await;
    let user_id = "u".repeat(30 * 1024 * 1024);
    let body = json!({
        "model": "nowhere,nothing", "max_tokens": 10,
        "metadata": {"user_id": user_id},
        "messages": [{"role": "user", "content": "hi"}]
    });
    let resp = app.post(&body).await;
    assert_eq!(resp.status(), 400);
    let row = app.next_record().await;
    let size = format!("{row:?}").len();
    assert!(size < 1024, "a ledger row of {size} bytes");
    assert!(row.session_id.unwrap().len() <= 128);
}

/// `ccr-setup proxy` as a child, so its own peak memory can be read.
struct ProxyChild {
    child: support::claude_code::Child,
    base: String,
    _sandbox: std::sync::Arc<support::sandbox::Sandbox>,
}

impl ProxyChild {
    async fn start(upstream: &str) -> ProxyChild {
        Self::start_with(upstream, |_| {}).await
    }

    /// With `tweak` applied to the command first (its stderr, its limits).
    async fn start_with(
        upstream: &str,
        tweak: impl FnOnce(&mut std::process::Command),
    ) -> ProxyChild {
        let sandbox = support::sandbox::Sandbox::new();
        sandbox.write_config(&json!({
            "Providers": [{"name": "local", "api_base_url": upstream, "models": ["m"]}],
            "Router": {"default": "local,m"},
        }));
        Self::spawn(std::sync::Arc::new(sandbox), tweak).await
    }

    /// The proxy in `sandbox`, as configured there.
    async fn spawn(
        sandbox: std::sync::Arc<support::sandbox::Sandbox>,
        tweak: impl FnOnce(&mut std::process::Command),
    ) -> ProxyChild {
        let port = support::net::unbound_port();
        let mut cmd = sandbox.cmd(&["proxy", "--port", &port.to_string()]);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        tweak(&mut cmd);
        let child = cmd.spawn().unwrap();
        ProxyChild::started(child, port, sandbox).await
    }

    /// `ccr-setup proxy` as `sandbox`'s config has it (its `PORT`, which is `port`),
    /// for the clients (`code`, `ui`, `statusline`) that read the same config.
    async fn on_config_port(sandbox: support::sandbox::Sandbox, port: u16) -> ProxyChild {
        let child = sandbox
            .cmd(&["proxy"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        ProxyChild::started(child, port, std::sync::Arc::new(sandbox)).await
    }

    /// `child`, once it answers `/health` on `port` as ccr-setup's proxy.
    async fn started(
        child: std::process::Child,
        port: u16,
        sandbox: std::sync::Arc<support::sandbox::Sandbox>,
    ) -> ProxyChild {
        let mut child = support::claude_code::Child(child);
        let base = format!("http://127.0.0.1:{port}");
        support::claude_code::wait_for_proxy(&base, std::time::Duration::from_secs(10), &mut child)
            .await;
        ProxyChild {
            child,
            base,
            _sandbox: sandbox,
        }
    }

    /// Peak resident memory (VmHWM) in MiB.
    fn peak_mib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.0.id())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        let kb: u64 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        kb / 1024
    }
}

/// 16 concurrent 30 MB bodies of tiny values: as `serde_json::Value`s each would be
/// gigabytes. The proxy refuses them while they arrive, stays small, and `/health`
/// answers meanwhile.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_value_bodies_keep_the_proxy_small_and_responsive() {
    let fake = FakeUpstream::start(vec![answer()]).await;
    let proxy = ProxyChild::start(&fake.url("/v1/chat/completions")).await;
    let items = "0,".repeat(15 * 1024 * 1024);
    let body = bytes::Bytes::from(format!(
        r#"{{"model":"m","max_tokens":1,"messages":[{{"role":"user","content":[{items}0]}}]}}"#
    ));
    let client = reqwest::Client::new();
    let sends: Vec<_> = (0..16)
        .map(|_| {
            let (client, body, url) = (
                client.clone(),
                body.clone(),
                format!("{}/v1/messages", proxy.base),
            );
            tokio::spawn(async move {
                let resp = client
                    .post(url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match resp {
                    // Refused while the body still arrives: the answer, or a closed
                    // connection when the refusal came before the upload ended.
                    Ok(r) => {
                        let status = r.status().as_u16();
                        let text = r.text().await.unwrap_or_default();
                        assert_eq!(status, 400, "{text}");
                        assert!(text.contains("JSON values"), "{text}");
                    }
                    Err(e) => assert!(!e.is_timeout(), "{e}"),
                }
            })
        })
        .collect();
    let mut slowest = std::time::Duration::ZERO;
    while sends.iter().any(|s| !s.is_finished()) {
        let t = std::time::Instant::now();
        let health = client
            .get(format!("{}/health", proxy.base))
            .timeout(std::time::Duration::from_secs(5))
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        slowest = slowest.max(t.elapsed());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for s in sends {
        s.await.unwrap();
    }
    let peak = proxy.peak_mib();
    assert!(peak < 512, "peak RSS {peak} MiB");
    assert!(
        slowest < std::time::Duration::from_secs(1),
        "/health took {slowest:?}"
    );
    assert!(fake.requests().is_empty());
}

/// Past `MAX_REQUESTS_IN_FLIGHT`, a request gets a 429 with `retry-after` at once; a
/// slot is held until its stream has ended, then freed.
#[tokio::test]
async fn requests_past_the_in_flight_limit_get_a_429() {
    use support::openai_upstream::{openai_transcript, SseEnd};
    let transcript = openai_transcript(&[json!({"content": "hi"})], "stop");
    let slow = Reply::sse_events(
        &transcript,
        std::time::Duration::from_millis(300),
        SseEnd::Finish,
    );
    let fake = FakeUpstream::start(vec![slow]).await;
    let app = proxy_for(&fake, json!({"MAX_REQUESTS_IN_FLIGHT": 2})).await;
    let stream_body = json!({"model": "m", "max_tokens": 10, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let first = app.post(&stream_body).await;
    let second = app.post(&stream_body).await;
    assert_eq!(
        (first.status().as_u16(), second.status().as_u16()),
        (200, 200)
    );
    let third = app.post(&stream_body).await;
    assert_eq!(third.headers()["retry-after"], "1");
    let (status, err) = error_body(third).await;
    assert_eq!(
        (status, err["error"]["type"].as_str()),
        (429, Some("rate_limit_error"))
    );
    // Reading both streams to their end frees the slots.
    first.text().await.unwrap();
    second.text().await.unwrap();
    assert_eq!(app.post(&stream_body).await.status(), 200);
}

/// An upstream that starts a stream, then trickles bytes without a newline: each
/// stream adapter ends the answer with an error event once one line passes 8 MB,
/// instead of buffering forever (100 MB are offered).
#[tokio::test]
async fn a_newline_less_trickle_ends_in_an_error_event() {
    use support::openai_upstream::{Piece, SseEnd};
    let megabyte = vec![b'x'; 1024 * 1024];
    for (path, start) in [
        (
            "/v1/chat/completions",
            "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: ",
        ),
        (
            "/v1/messages",
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}}\n\ndata: ",
        ),
    ] {
        let mut pieces = vec![Piece {
            delay: std::time::Duration::ZERO,
            bytes: start.as_bytes().to_vec(),
        }];
        pieces.extend((0..100).map(|_| Piece {
            delay: std::time::Duration::ZERO,
            bytes: megabyte.clone(),
        }));
        let fake = FakeUpstream::start(vec![Reply::Sse {
            pieces,
            end: SseEnd::Hang,
        }])
        .await;
        let doc = json!({
            "Providers": [{"name": "up", "api_base_url": fake.url(path), "api_key": "k", "models": ["m"]}],
            "Router": {"default": "up,m"},
        });
        let app = ProxyApp::start_config(proxy_app::config(&doc)).await;
        let resp = app
            .post(&json!({"model": "m", "max_tokens": 10, "stream": true,
                "messages": [{"role": "user", "content": "hi"}]}))
            .await;
        assert_eq!(resp.status(), 200, "{path}");
        let text = tokio::time::timeout(std::time::Duration::from_secs(30), resp.text())
            .await
            .expect("the stream ends")
            .unwrap();
        let tail = &text[text.len().saturating_sub(400)..];
        assert!(tail.contains("event: error"), "{path}: {tail}");
        assert!(tail.contains("larger than 8 MB"), "{path}: {tail}");
        assert!(text.len() < 10 * 1024 * 1024, "{path}: {} bytes", text.len());
    }
}

/// With `HTTP_PROXY`/`ALL_PROXY` set in the proxy's environment, a loopback upstream is
/// still called directly (a proxy would see every local prompt), while the variables
/// stay in force for remote providers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_proxy_never_sees_a_loopback_upstream() {
    let fake = FakeUpstream::start(vec![answer()]).await;
    // The "corporate proxy": records whatever reaches it.
    let recorder = FakeUpstream::start(vec![Reply::status(502, "proxy")]).await;
    let sandbox = support::sandbox::Sandbox::new();
    sandbox.write_config(&json!({
        "Providers": [{"name": "local", "api_base_url": fake.url("/v1/chat/completions"), "models": ["m"]}],
        "Router": {"default": "local,m"},
    }));
    let port = support::net::unbound_port();
    let proxy_url = format!("http://{}", recorder.addr);
    let mut child = support::claude_code::Child(
        sandbox
            .cmd(&["proxy", "--port", &port.to_string()])
            .env("HTTP_PROXY", &proxy_url)
            .env("http_proxy", &proxy_url)
            .env("ALL_PROXY", &proxy_url)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let base = format!("http://127.0.0.1:{port}");
    support::claude_code::wait_for_proxy(&base, std::time::Duration::from_secs(10), &mut child)
        .await;
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let status = client
        .post(format!("{base}/v1/messages"))
        .json(&json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16();
    drop(child);
    assert_eq!(status, 200);
    assert_eq!(fake.requests().len(), 1);
    assert!(
        recorder.requests().is_empty(),
        "the local prompt went through HTTP_PROXY"
    );
}

/// Upstream-reported token counts at the edge of u64 (in an answer and in a stream)
/// are carried without overflow: the answer arrives and the ledger row is written.
#[tokio::test]
async fn absurd_upstream_token_counts_do_not_overflow() {
    use support::openai_upstream::SseEnd;
    let max = u64::MAX;
    let usage = json!({"prompt_tokens": max, "completion_tokens": max, "total_tokens": max,
        "prompt_tokens_details": {"cached_tokens": max}});
    let whole = Reply::json(&json!({
        "id": "c", "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
        "usage": usage,
    }));
    let chunk = |delta: Value, finish: Value, usage: Value| {
        json!({"id": "c", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], "usage": usage})
    };
    let transcript = format!(
        "data: {}\n\ndata: {}\n\ndata: [DONE]\n\n",
        chunk(json!({"content": "hi"}), Value::Null, Value::Null),
        chunk(json!({}), json!("stop"), usage.clone()),
    );
    let streamed = Reply::sse_events(&transcript, std::time::Duration::ZERO, SseEnd::Finish);
    let fake = FakeUpstream::start(vec![whole, streamed]).await;
    let mut app = proxy_for(&fake, json!({})).await;
    let resp = app.post(&serde_json::from_str(&body()).unwrap()).await;
    assert_eq!(resp.status(), 200);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "hi", "{v}");
    let row = app.next_record().await;
    assert_eq!(row.http_status, 200);
    let resp = app
        .post(&json!({"model": "m", "max_tokens": 10, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    let text = resp.text().await.unwrap();
    assert!(text.contains("message_stop"), "{text}");
    let row = app.next_record().await;
    assert_eq!(row.outcome, ccr_setup::ledger::RequestOutcome::Ok);
}

/// A connection's read buffer is bounded (`READ_BUFFER_MAX`): a request head that
/// does not fit is refused with 431 before any of it is parsed, and a body many times
/// the buffer's size is still read, in pieces, and answered.
#[tokio::test]
async fn a_head_past_the_read_buffer_is_refused_and_large_bodies_still_pass() {
    use ccr_setup::proxy::server::READ_BUFFER_MAX;
    let fake = FakeUpstream::start(vec![answer(), answer()]).await;
    let app = proxy_for(&fake, json!({})).await;
    let client = reqwest::Client::new();
    let post = |extra_header: usize, body: String| {
        client
            .post(app.url("/v1/messages"))
            .header("content-type", "application/json")
            .header("x-padding", "p".repeat(extra_header))
            .body(body)
            .send()
    };
    let refused = post(READ_BUFFER_MAX + 1024, body()).await.unwrap();
    assert_eq!(refused.status(), 431);
    assert_eq!(
        fake.requests().len(),
        0,
        "a refused head is never forwarded"
    );

    // A browser-sized head (8 KB of cookies) and a 10x-buffer body are served.
    let big = json!({"model": "m", "max_tokens": 10, "messages": [{"role": "user",
        "content": "word ".repeat(READ_BUFFER_MAX * 2)}]})
    .to_string();
    assert!(big.len() > READ_BUFFER_MAX * 8);
    let served = post(8 * 1024, big).await.unwrap();
    assert_eq!(served.status(), 200, "{}", served.text().await.unwrap());
    assert_eq!(fake.requests().len(), 1);
}

/// Bytes in the files under `dir` (the proxy's logs).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Item 1 of #28: 3,000 cross-site refusals with 14 KB paths used to grow the log file
/// and stderr by ~44 MB each. Refusals are now a bounded, rate-limited summary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_requests_leaves_the_logs_small() {
    use futures_util::StreamExt;
    let fake = FakeUpstream::start(vec![answer()]).await;
    let stderr_dir = tempfile::tempdir().unwrap();
    let stderr_path = stderr_dir.path().join("stderr");
    let stderr = std::fs::File::create(&stderr_path).unwrap();
    let proxy = ProxyChild::start_with(&fake.url("/v1/chat/completions"), |cmd| {
        cmd.stderr(stderr);
    })
    .await;
    let path = format!("/{}", "a".repeat(14 * 1024));
    let client = reqwest::Client::new();
    let statuses: Vec<u16> = futures_util::stream::iter(0..3000)
        .map(|_| {
            client
                .post(format!("{}{path}", proxy.base))
                .header("content-type", "text/plain")
                .header("origin", "https://evil.example")
                .body("x")
                .send()
        })
        .buffer_unordered(16)
        .map(|r| r.map(|r| r.status().as_u16()).unwrap_or(0))
        .collect()
        .await;
    assert!(statuses.iter().all(|s| *s == 403), "{:?}", &statuses[..5]);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let logs = proxy._sandbox.home.join(".claude-code-router/logs");
    let (file, err) = (
        dir_bytes(&logs),
        std::fs::metadata(&stderr_path).unwrap().len(),
    );
    assert!(file > 0, "nothing was logged to {}", logs.display());
    assert!(file < 64 * 1024, "the log file grew by {file} bytes");
    assert!(err < 64 * 1024, "stderr grew by {err} bytes");
    let text = std::fs::read_to_string(&stderr_path).unwrap();
    let refusal = text.lines().find(|l| l.contains("refused")).unwrap();
    assert!(refusal.len() < 600, "{refusal}");
}

/// Item 2 of #28: 2,000 partial request heads against a proxy whose open-file limit is
/// 512 (systemd's default is 1,024) used to take every descriptor: `/health` starved.
/// Now the oldest heads are closed to make room, and a streamed answer in progress is
/// served to its end.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_heads_cannot_starve_the_proxy() {
    use std::os::unix::process::CommandExt;
    use support::openai_upstream::{openai_transcript, SseEnd};
    use tokio::io::AsyncWriteExt;
    let deltas: Vec<Value> = (0..20)
        .map(|i| json!({"content": format!("w{i} ")}))
        .collect();
    let slow = Reply::sse_events(
        &openai_transcript(&deltas, "stop"),
        std::time::Duration::from_millis(100),
        SseEnd::Finish,
    );
    let fake = FakeUpstream::start(vec![slow]).await;
    let proxy = ProxyChild::start_with(&fake.url("/v1/chat/completions"), |cmd| unsafe {
        cmd.pre_exec(|| {
            nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE, 512, 512)
                .map_err(std::io::Error::from)
        });
    })
    .await;
    let client = reqwest::Client::new();
    let streamed = client
        .post(format!("{}/v1/messages", proxy.base))
        .json(&json!({"model": "m", "max_tokens": 10, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status(), 200);
    let reading = tokio::spawn(streamed.text());
    let addr = proxy.base.trim_start_matches("http://").to_owned();
    let mut heads = Vec::new();
    for _ in 0..2000 {
        let connect = tokio::net::TcpStream::connect(&addr);
        let Ok(Ok(mut s)) =
            tokio::time::timeout(std::time::Duration::from_millis(200), connect).await
        else {
            continue;
        };
        let _ = s
            .write_all(b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            .await;
        heads.push(s);
    }
    for _ in 0..5 {
        let health = reqwest::Client::new()
            .get(format!("{}/health", proxy.base))
            .timeout(std::time::Duration::from_secs(3))
            .send()
            .await
            .expect("/health answers during the flood");
        assert_eq!(health.status(), 200);
    }
    let text = tokio::time::timeout(std::time::Duration::from_secs(20), reading)
        .await
        .expect("the stream ends")
        .unwrap()
        .unwrap();
    assert!(text.contains("w19"), "{text}");
    assert!(text.contains("message_stop"), "{text}");
    drop(heads);
}

/// Item 2 of #28: a head sent one byte at a time, never finished, is closed after the
/// header read timeout (there was none).
#[tokio::test]
async fn a_head_that_never_ends_is_closed() {
    use ccr_setup::proxy::server::{app, serve_with, AppState, ConnLimits, ServerOptions};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let live = ccr_setup::proxy::reload::LiveConfig::new(proxy_app::config(&json!({
        "Providers": [{"name": "local", "api_base_url": "http://127.0.0.1:9/v1/chat/completions", "models": ["m"]}],
        "Router": {"default": "local,m"},
    })));
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    let state = AppState::new(
        live,
        ccr_setup::ledger::LedgerHandle::from_sender(tx),
        ServerOptions::default(),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let limits = ConnLimits {
        max_connections: 64,
        header_read_timeout: std::time::Duration::from_millis(300),
    };
    let server = tokio::spawn(serve_with(
        listener,
        app(state),
        std::future::pending(),
        limits,
    ));
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read =
        tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "the connection stayed open");
    server.abort();
}

/// Item 7 of #28: with tools offered, thinking is held back until text or a call
/// starts (so a failed call can be retried unseen). An upstream that only thinks used
/// to be held whole (435 MB of RSS); past 8 MB the answer now ends with an error event.
#[tokio::test]
async fn endless_held_back_thinking_ends_in_an_error_event() {
    use support::openai_upstream::SseEnd;
    let piece = "t".repeat(64 * 1024);
    let chunk = json!({"id": "c", "object": "chat.completion.chunk", "model": "m",
        "choices": [{"index": 0, "delta": {"reasoning": piece}}]});
    let mut transcript = format!("data: {chunk}\n\n").repeat(200);
    transcript.push_str(&format!(
        "data: {}\n\ndata: [DONE]\n\n",
        json!({"id": "c", "object": "chat.completion.chunk", "model": "m",
            "choices": [{"index": 0, "delta": {"content": "done"}, "finish_reason": "stop"}]})
    ));
    let fake = FakeUpstream::start(vec![Reply::sse_events(
        &transcript,
        std::time::Duration::ZERO,
        SseEnd::Finish,
    )])
    .await;
    let app = proxy_for(&fake, json!({})).await;
    let resp = app
        .post(&json!({"model": "m", "max_tokens": 10, "stream": true,
            "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    assert_eq!(resp.status(), 200);
    let text = tokio::time::timeout(std::time::Duration::from_secs(30), resp.text())
        .await
        .expect("the stream ends")
        .unwrap();
    assert!(text.len() < 1024 * 1024, "{} bytes", text.len());
    assert!(text.contains("event: error"), "{text}");
    assert!(text.contains("8 MB of thinking"), "{text}");
}

/// Item 5 of #28: a tool call whose arguments do not fit the schema used to put the
/// jsonschema error, which quotes the whole value (a file the model meant to write),
/// into the log and the 502 body. Now only the JSON pointer and the error kind.
#[tokio::test]
async fn an_unfit_tool_call_never_echoes_its_value() {
    let secret = format!("SECRET-FILE-CONTENT {}", "line of code\n".repeat(25_000));
    let call = || {
        Reply::json(&json!({
            "id": "c", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant",
                "content": null, "tool_calls": [{"id": "t1", "type": "function",
                "function": {"name": "Bash", "arguments": json!({"timeout": secret}).to_string()}}]}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
        }))
    };
    let fake = FakeUpstream::start(vec![call(), call(), call()]).await;
    let app = proxy_for(&fake, json!({})).await;
    let resp = app
        .post(&json!({"model": "m", "max_tokens": 10,
            "tools": [{"name": "Bash", "input_schema": {"type": "object",
                "properties": {"timeout": {"type": "integer"}}, "required": ["timeout"]}}],
            "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    let (status, err) = error_body(resp).await;
    assert_eq!(status, 502, "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(
        !message.contains("SECRET"),
        "{}",
        &message[..message.len().min(300)]
    );
    assert!(message.len() < 1024, "{} bytes", message.len());
    assert!(message.contains("/timeout"), "{message}");
}

/// Item 10 of #28: an install made by an older version (folders 0755, files 0644) is
/// tightened when the proxy starts, and what the proxy then writes (logs, the ledger
/// and its -wal/-shm) is private to the user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_config_folder_is_private_to_the_user() {
    use std::os::unix::fs::PermissionsExt;
    let fake = FakeUpstream::start(vec![answer()]).await;
    let proxy = ProxyChild::start(&fake.url("/v1/chat/completions")).await;
    let sandbox = std::sync::Arc::clone(&proxy._sandbox);
    let root = sandbox.home.join(".claude-code-router");
    drop(proxy);
    let set = |p: &std::path::Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    // Loosen everything, as an older version left it, then start again.
    for entry in walk(&root) {
        set(&entry, if entry.is_dir() { 0o755 } else { 0o644 });
    }
    set(&root, 0o755);
    let proxy = ProxyChild::spawn(sandbox, |_| {}).await;
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/messages", proxy.base))
        .json(&serde_json::from_str::<Value>(&body()).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let entries = walk(&root);
    let names: Vec<String> = entries
        .iter()
        .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(
        names.iter().any(|n| n.starts_with("logs/proxy.log")),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == "ledger.sqlite-wal"), "{names:?}");
    for path in entries.iter().chain([&root]) {
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} is {mode:o}", path.display());
    }
}

/// Every file and folder under `root`.
fn walk(root: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}

/// Item 11 of #28: HTTP/2 with prior knowledge carries the host in `:authority` and
/// sends no `Host` header, so the DNS-rebinding check never saw it.
#[tokio::test]
async fn h2c_rebinding_is_refused_by_its_authority() {
    let fake = FakeUpstream::start(vec![answer()]).await;
    let app = proxy_for(&fake, json!({})).await;
    let addr: std::net::SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .resolve("evil.example", addr)
        .build()
        .unwrap();
    let resp = client
        .get(format!("http://evil.example:{}/health", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(resp.status(), 403);
    let ok = client.get(app.url("/health")).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}

/// Item 9 of #28: `GET /ui/api/setup?fresh=1` re-ran doctor (which calls each
/// provider's `/models` with its key) for any `<img>` on any page. A re-run is now a
/// POST, which the Origin check covers, and it is rate-limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_get_cannot_rerun_doctor() {
    let fake = FakeUpstream::start(vec![answer()]).await;
    let proxy = ProxyChild::start(&fake.url("/v1/chat/completions")).await;
    let client = reqwest::Client::new();
    let checked_at = |v: Value| v["checked_at_ms"].as_i64().unwrap();
    let url = format!("{}/ui/api/setup", proxy.base);
    let first = checked_at(client.get(&url).send().await.unwrap().json().await.unwrap());
    // Past the old 2 s gap, `fresh=1` by GET gets the same run.
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    let by_get: Value = client
        .get(format!("{url}?fresh=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(checked_at(by_get), first, "a GET ran doctor again");
    let cross_site = client
        .post(&url)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross_site.status(), 403);
    let rerun = client.post(&url).send().await.unwrap();
    assert_eq!(rerun.status(), 200);
    let second = checked_at(rerun.json().await.unwrap());
    assert!(second > first);
    // Twice in a row: the second gets the same run.
    let again = checked_at(
        client
            .post(&url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    assert_eq!(again, second);
}

/// Item 13 of #28: wrong API keys were answered 401 as fast as they came. Now a
/// client gets 429 after a few, without its key being compared; another client behind
/// the same local reverse proxy (told apart by `X-Forwarded-For`) is not locked out.
#[tokio::test]
async fn repeated_wrong_keys_are_throttled_per_client() {
    let fake = FakeUpstream::start(vec![answer()]).await;
    let app = proxy_for(&fake, json!({"APIKEY": "right-key"})).await;
    let client = reqwest::Client::new();
    let send = |key: &str, forwarded: &str| {
        client
            .get(app.url("/v1/models"))
            .header("x-api-key", key)
            .header("x-forwarded-for", forwarded)
            .send()
    };
    let mut statuses = Vec::new();
    for i in 0..30 {
        statuses.push(
            send(&format!("guess-{i}"), "10.0.0.1")
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(statuses[29], 429, "{statuses:?}");
    assert!(
        statuses.iter().filter(|s| **s == 401).count() <= 10,
        "{statuses:?}"
    );
    let blocked = send("right-key", "10.0.0.1").await.unwrap();
    assert_eq!(blocked.status(), 429, "even the right key waits: no oracle");
    assert!(blocked.headers().contains_key("retry-after"));
    let neighbour = send("right-key", "10.0.0.2").await.unwrap();
    assert_eq!(neighbour.status(), 200);
}

/// Item 13 of #28: `POST /ui/ticket` also says whether a key is right, so it is
/// throttled the same way (in the proxy the command runs, with its dashboard).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_keys_at_the_dashboard_ticket_are_throttled_too() {
    let sandbox = support::sandbox::Sandbox::new();
    let port = support::net::unbound_port();
    sandbox.write_config(&json!({
        "PORT": port, "APIKEY": "right-key",
        "Providers": [{"name": "local", "api_base_url": "http://127.0.0.1:9/v1/chat/completions", "models": ["m"]}],
        "Router": {"default": "local,m"},
    }));
    let proxy = ProxyChild::on_config_port(sandbox, port).await;
    let client = reqwest::Client::new();
    let ticket = |key: String| {
        client
            .post(format!("{}/ui/ticket", proxy.base))
            .header("x-api-key", key)
            .send()
    };
    let mut statuses = Vec::new();
    for i in 0..15 {
        statuses.push(
            ticket(format!("guess-{i}"))
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(statuses[0], 401);
    assert_eq!(statuses[14], 429, "{statuses:?}");
    assert_eq!(ticket("right-key".into()).await.unwrap().status(), 429);
}

/// Item 13 of #28: under launchd the proxy's stderr is `proxy.err.log`, which nothing
/// rotated. The proxy now empties it past 16 MB (launchd appends, so writing goes on).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overgrown_stderr_file_is_emptied() {
    use std::io::Write;
    let fake = FakeUpstream::start(vec![answer()]).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("proxy.err.log");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap();
    file.write_all(&vec![b'x'; 20 * 1024 * 1024]).unwrap();
    let proxy = ProxyChild::start_with(&fake.url("/v1/chat/completions"), |cmd| {
        cmd.stderr(file);
    })
    .await;
    let size = std::fs::metadata(&path).unwrap().len();
    drop(proxy);
    assert!(size < 1024 * 1024, "proxy.err.log is {size} bytes");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("was emptied"), "{text}");
}

/// A program on the proxy's port answering `/health` in our public shape, recording
/// every request it receives (head and body).
fn squatter() -> (u16, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            let _ = s.set_read_timeout(Some(std::time::Duration::from_millis(300)));
            let mut buf = vec![0u8; 65536];
            let n = s.read(&mut buf).unwrap_or(0);
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..n]).into_owned());
            let body = r#"{"status":"ok","version":"0.1.0","providers":[{"name":"ollama","kind":"openai"}]}"#;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (port, seen)
}

/// Item 3 of #28: another local user who binds the proxy's port first answers
/// `/health` in our (public) shape. `code`, `ui` and `statusline` used to send it the
/// APIKEY; now they ask for a proof of the key first, name the port's owner, and send
/// nothing secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_squatter_on_the_port_never_gets_the_key() {
    let (port, seen) = squatter();
    let sandbox = support::sandbox::Sandbox::new();
    sandbox.write_config(&json!({
        "PORT": port, "APIKEY": "the-users-own-key-0123456789",
        "Providers": [{"name": "local", "api_base_url": "http://127.0.0.1:9/v1/chat/completions", "models": ["m"]}],
        "Router": {"default": "local,m"},
    }));
    let ran = sandbox.root.path().join("claude-ran");
    sandbox
        .fakes
        .add_script("claude", &format!(": > '{}'", ran.display()));
    let out = sandbox.cmd(&["code", "--", "-p", "hi"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the APIKEY was not sent"), "{err}");
    assert!(
        err.contains(&format!("pid {}", std::process::id())),
        "the owner is named: {err}"
    );
    assert!(!ran.exists(), "claude ran against the squatter");
    let out = sandbox.cmd(&["ui", "--no-open"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = sandbox
        .cmd(&["statusline"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin
                .take()
                .unwrap()
                .write_all(br#"{"session_id":"s1"}"#)?;
            c.wait_with_output()
        })
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(line.contains("is not your proxy"), "{line}");
    let seen = seen.lock().unwrap();
    assert!(!seen.is_empty());
    for request in seen.iter() {
        assert!(!request.contains("the-users-own-key"), "sent: {request}");
        assert!(request.starts_with("GET /health?nonce="), "{request}");
    }
}

/// Item 3 of #28: `code` gives Claude Code a session token the verified proxy minted,
/// not the APIKEY: a squatter after a crash learns nothing that outlives the token, and
/// a token cannot mint another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_gives_claude_a_session_token_instead_of_the_key() {
    let fake = FakeUpstream::start(vec![answer()]).await;
    let sandbox = support::sandbox::Sandbox::new();
    let port = support::net::unbound_port();
    let key = "the-users-own-key-0123456789";
    sandbox.write_config(&json!({
        "PORT": port, "APIKEY": key,
        "Providers": [{"name": "local", "api_base_url": fake.url("/v1/chat/completions"), "models": ["m"]}],
        "Router": {"default": "local,m"},
    }));
    let proxy = ProxyChild::on_config_port(sandbox, port).await;
    let sandbox = &proxy._sandbox;
    let env_file = sandbox.root.path().join("claude.env");
    sandbox.fakes.add_script(
        "claude",
        &format!(
            "printf '%s' \"$ANTHROPIC_AUTH_TOKEN\" > '{}'",
            env_file.display()
        ),
    );
    let out = sandbox.cmd(&["code", "--", "-p", "hi"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = std::fs::read_to_string(&env_file).unwrap();
    assert!(token.starts_with("ccrt1."), "{token}");
    assert!(!token.contains(key));
    let client = reqwest::Client::new();
    let models = |credential: String| {
        client
            .get(format!("{}/v1/models", proxy.base))
            .bearer_auth(credential)
            .send()
    };
    assert_eq!(models(token.clone()).await.unwrap().status(), 200);
    assert_eq!(models(format!("{token}x")).await.unwrap().status(), 401);
    let renewed = client
        .post(format!("{}/v1/ccr/session-token", proxy.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(renewed.status(), 401, "a token minted another");
    // The status line verifies the proxy (then remembers it for 30 s) and is served.
    let out = sandbox
        .cmd(&["statusline"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(line.contains("proxy up"), "{line}");
    let cache = sandbox
        .home
        .join(".claude-code-router/run/statusline-verified");
    assert!(std::fs::read_to_string(cache)
        .unwrap()
        .contains(&proxy.base));
}

/// Item 8 of #28: `ui` opened `/ui/login?ticket=…`, so the ticket sat in the argv of
/// `xdg-open` and the browser, which any local user can read from `/proc/*/cmdline`
/// and redeem first. Now the opener gets a `file://` page private to the user (0600 in
/// a 0700 folder) that posts the ticket. A racer redeeming everything it can see in the
/// opener's argv fails; the browser, reading the page, logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_ticket_is_in_no_argv_a_racer_can_redeem() {
    use std::os::unix::fs::PermissionsExt;
    let sandbox = support::sandbox::Sandbox::new();
    let port = support::net::unbound_port();
    sandbox.write_config(&json!({
        "PORT": port, "APIKEY": "the-users-own-key-0123456789",
        "Providers": [{"name": "local", "api_base_url": "http://127.0.0.1:9/v1/chat/completions", "models": ["m"]}],
        "Router": {"default": "local,m"},
    }));
    let proxy = ProxyChild::on_config_port(sandbox, port).await;
    let sandbox = &proxy._sandbox;
    let argv_file = sandbox.root.path().join("opener.argv");
    sandbox.fakes.add_script(
        "xdg-open",
        &format!("printf '%s\\n' \"$@\" > '{}'", argv_file.display()),
    );
    let out = sandbox.cmd(&["ui"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let argv = std::fs::read_to_string(&argv_file).unwrap();

    // The racer: every word of the opener's argv, tried as a ticket both ways.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let words: Vec<&str> = argv
        .split(|c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_')
        .filter(|w| w.len() >= 8)
        .collect();
    assert!(!words.is_empty(), "{argv}");
    for word in &words {
        let by_get = client
            .get(format!("{}/ui/login?ticket={word}", proxy.base))
            .send()
            .await
            .unwrap();
        assert_eq!(by_get.status(), 401, "redeemed {word} from {argv}");
        let by_post = client
            .post(format!("{}/ui/login", proxy.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("ticket={word}"))
            .send()
            .await
            .unwrap();
        assert_eq!(by_post.status(), 401, "redeemed {word} from {argv}");
    }

    // What only the user can read: the page, 0600 in a 0700 folder.
    let url = url::Url::parse(argv.trim()).unwrap();
    let page_path = url.to_file_path().unwrap();
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&page_path), 0o600);
    assert_eq!(mode(page_path.parent().unwrap()), 0o700);
    let page = std::fs::read_to_string(&page_path).unwrap();
    let ticket = page
        .split("name=\"ticket\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    // The browser posts the form from the file:// page: Origin null, a form body.
    let login = client
        .post(format!("{}/ui/login", proxy.base))
        .header("origin", "null")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("ticket={ticket}"))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    let session = cookie.split(';').next().unwrap();
    let overview = client
        .get(format!("{}/ui/api/overview", proxy.base))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(overview.status(), 200);
}

/// Item 6 of #28: `config show` (and the dashboard's Setup page, which uses the same
/// redaction) hid only keys named like `api_key`/`token`; a URL's userinfo and query,
/// `headers.Authorization` and transformer options were printed in clear.
#[test]
fn config_show_hides_secrets_by_their_shape_and_place() {
    let sandbox = support::sandbox::Sandbox::new();
    sandbox.write_config(&json!({
        "Providers": [{
            "name": "gw",
            "api_base_url": "https://bob:hunter2pass@gw.example/v1/chat/completions?key=query-secret-1",
            "api_key": "$GW_KEY",
            "models": ["m"],
            "headers": {"Authorization": "Bearer header-secret-2"},
            "transformer": {"use": [["openrouter", {"provider": {"order": ["x"]}, "apiKeyOption": "option-secret-3", "note": "option-secret-4"}]]}
        }],
        "Router": {"default": "gw,m"},
    }));
    let out = sandbox
        .cmd(&["config", "show"])
        .env("GW_KEY", "k")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for secret in [
        "hunter2pass",
        "query-secret-1",
        "header-secret-2",
        "option-secret-3",
        "option-secret-4",
    ] {
        assert!(!text.contains(secret), "{secret} shown:\n{text}");
    }
    assert!(
        text.contains("gw.example/v1/chat/completions?key=***"),
        "{text}"
    );
    assert!(text.contains("\"openrouter\""), "{text}");
    assert!(text.contains("$GW_KEY"), "{text}");
}

/// Item 4 of #28: the model of an explicit route is the client's text, stored as sent;
/// `stats` printed its ESC sequences raw (a title change, a screen clear) and the log
/// took its `\n` as a new line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hostile_model_name_is_escaped_in_stats_and_the_log() {
    let fake = FakeUpstream::start(vec![answer()]).await;
    let proxy = ProxyChild::start(&fake.url("/v1/chat/completions")).await;
    let model = "local,m\u{1b}]0;pwned\u{7}\u{1b}[2J\n2026-01-01T00:00:00Z  INFO forged line";
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/messages", proxy.base))
        .json(&json!({"model": model, "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    // The ledger writer commits in the background.
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    let sandbox = &proxy._sandbox;
    let out = sandbox
        .cmd(&["stats", "--since", "all", "--by", "model"])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        table.contains("\\u{1b}]0;pwned"),
        "the model is shown, escaped:\n{table}"
    );
    assert!(
        !table.contains('\u{1b}') && !table.contains('\u{7}'),
        "{table:?}"
    );
    let logs = sandbox.home.join(".claude-code-router/logs");
    let log: String = std::fs::read_dir(&logs)
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert!(!log.contains('\u{1b}'), "{log:?}");
    assert!(
        !log.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")),
        "a forged line: {log}"
    );
}

/// Item 13 of #28: for a provider URL with a query (a key passed as `?key=`), doctor
/// asked for `…/chat/completions?key=SECRET/models`: the wrong path, with the key glued
/// into the query value. The models path now goes on the path, the query stays a query,
/// and the report shows the key as `***`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_joins_the_models_path_onto_a_url_with_a_query() {
    let fake = FakeUpstream::start(vec![Reply::json(&json!({"data": [{"id": "m"}]}))]).await;
    let sandbox = support::sandbox::Sandbox::new();
    let url = format!("{}?key=query-secret-5", fake.url("/v1/chat/completions"));
    sandbox.write_config(&json!({
        "Providers": [{"name": "gw", "api_base_url": url, "api_key": "k", "models": ["m"]}],
        "Router": {"default": "gw,m"},
    }));
    let out = sandbox.cmd(&["doctor", "--json"]).output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    let asked: Vec<String> = fake.requests().iter().map(|r| r.path.clone()).collect();
    assert!(
        asked.iter().any(|p| p == "/v1/models?key=query-secret-5"),
        "{asked:?}"
    );
    assert!(!report.contains("query-secret-5"), "{report}");
}

/// Item 3 of #28: a squatter's answers were printed raw. `status` shows the version
/// whatever holds the port reports, so it goes through the sanitiser.
#[test]
fn status_prints_a_squatters_version_escaped() {
    let body = json!({"status": "ok", "version": "9\u{1b}]0;pwned\u{7}\u{1b}[2J", "providers": []})
        .to_string();
    let squatter = support::tiny_http::TinyHttp::start(0, 200, "application/json", &body);
    let sandbox = support::sandbox::Sandbox::new();
    sandbox.write_config(&json!({
        "PORT": squatter.port(),
        "Providers": [{"name": "local", "api_base_url": "http://127.0.0.1:9/v1/chat/completions", "models": ["m"]}],
        "Router": {"default": "local,m"},
    }));
    let out = sandbox.cmd(&["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(text.contains("version 9\\u{1b}]0;pwned"), "{text}");
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
}
