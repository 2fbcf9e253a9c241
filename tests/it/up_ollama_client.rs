//! The typed Ollama client against the fake server: each call, the exact trained-context
//! key, error lines in a 200 pull stream, and streamed chat completions.

use crate::support;

use ccr_setup::ollama::{parse_ollama_host, OllamaClient, OllamaError};
use futures_util::StreamExt;
use serde_json::json;
use support::fake_ollama::{FakeConfig, FakeModel, FakeOllama};

fn client(fake: &FakeOllama) -> OllamaClient {
    OllamaClient::new(parse_ollama_host(Some(&fake.host_port())))
}

#[tokio::test]
async fn probes_and_model_details() {
    let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
    let c = client(&fake);
    assert_eq!(c.version().await.unwrap(), "0.12.3");
    let tags = c.tags().await.unwrap();
    assert_eq!(tags.len(), 1);
    assert_eq!(tags[0].name, "gpt-oss:20b");
    assert!(c.has_model("gpt-oss:20b").await.unwrap());
    assert!(!c.has_model("gpt-oss").await.unwrap());

    let d = c.show("gpt-oss:20b").await.unwrap();
    assert!(d.has_capability("tools"));
    // The fake also serves a decoy `gptoss.rope.scaling.original_context_length: 4096`.
    assert_eq!(d.trained_context, Some(131_072));

    match c.show("nope:1b").await {
        Err(OllamaError::Status {
            status: 404,
            message,
            ..
        }) => {
            assert!(message.contains("not found"), "{message}")
        }
        other => panic!("expected 404, got {other:?}"),
    }
}

#[tokio::test]
async fn load_then_ps_reports_the_effective_context() {
    let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
    fake.update(|s| s.config.server_context = 4096);
    let c = client(&fake);
    assert!(c.loaded("gpt-oss:20b").await.unwrap().is_none());
    c.load("gpt-oss:20b", Some("30m")).await.unwrap();
    let loaded = c.loaded("gpt-oss:20b").await.unwrap().unwrap();
    assert_eq!(loaded.context_length, Some(4096));
    assert_eq!(fake.bodies("/api/chat")[0]["keep_alive"], "30m");
}

#[tokio::test]
async fn pull_stream_reports_layers_and_error_lines() {
    let fake = FakeOllama::start(FakeConfig::default());
    let c = client(&fake);
    let mut s = c.pull_stream("gpt-oss:20b").await.unwrap();
    let mut statuses = Vec::new();
    while let Some(line) = s.next().await {
        statuses.push(line.unwrap().status);
    }
    assert_eq!(statuses.first().unwrap(), "pulling manifest");
    assert_eq!(statuses.last().unwrap(), "success");
    assert!(statuses.iter().any(|s| s == "verifying sha256 digest"));
    let layers: std::collections::BTreeSet<_> = statuses
        .iter()
        .filter(|s| s.starts_with("pulling ") && *s != "pulling manifest")
        .collect();
    assert_eq!(layers.len(), 3, "{layers:?}");
    assert!(fake.is_installed("gpt-oss:20b"));

    let mut s = c.pull_stream("missing:7b").await.unwrap();
    let mut last = None;
    while let Some(line) = s.next().await {
        last = Some(line);
    }
    match last {
        Some(Err(OllamaError::Pull { message })) => {
            assert_eq!(message, "pull model manifest: file does not exist")
        }
        other => panic!("expected a pull error, got {other:?}"),
    }
}

#[tokio::test]
async fn chat_completions_plain_streamed_and_tool_call() {
    let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
    let c = client(&fake);
    let plain = c
        .chat_completion(
            &json!({"model": "gpt-oss:20b", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await
        .unwrap();
    let msg = &plain.choices[0].message;
    assert!(msg.content.as_deref().unwrap().contains("fake Ollama"));

    let mut stream = c
        .chat_completion_stream(
            &json!({"model": "gpt-oss:20b", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await
        .unwrap();
    let mut text = String::new();
    let mut usage = None;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        if let Some(u) = chunk.usage {
            usage = Some(u);
        }
        for ch in chunk.choices {
            text.push_str(ch.delta.content.as_deref().unwrap_or(""));
        }
    }
    assert_eq!(text, "Hello from the fake Ollama.");
    assert_eq!(usage.unwrap().completion_tokens, 5);

    let tools = json!([{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}]);
    let tc = c
        .chat_completion(&json!({"model": "gpt-oss:20b", "messages": [{"role": "user", "content": "time?"}], "tools": tools}))
        .await
        .unwrap();
    let calls = tc.choices[0].message.tool_calls.as_ref().unwrap();
    assert_eq!(calls[0].function.name.as_deref(), Some("get_time"));

    fake.update(|s| s.config.chat.tool_call_fails = true);
    let err = c
        .chat_completion(&json!({"model": "gpt-oss:20b", "messages": [], "tools": tools}))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("error parsing tool call"), "{err}");
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    let port = support::unbound_port();
    let c = OllamaClient::new(parse_ollama_host(Some(&format!("127.0.0.1:{port}"))));
    assert!(c.version().await.unwrap_err().is_unreachable());
}

/// An answer that is not JSON is a decode error naming the URL and what the parser
/// saw, for the native API (`/api/version`) and the OpenAI one alike (one decoder).
#[tokio::test]
async fn an_answer_that_is_not_json_names_the_url_and_the_parse_error() {
    let stranger = support::tiny_http::TinyHttp::start(0, 200, "text/html", "<html>hi</html>");
    let c = OllamaClient::new(parse_ollama_host(Some(&stranger.addr.to_string())));
    let version = c.version().await.unwrap_err();
    let chat = c.chat_completion(&json!({"model": "m"})).await.unwrap_err();
    for (err, path) in [(version, "/api/version"), (chat, "/v1/chat/completions")] {
        match err {
            OllamaError::Decode { url, message } => {
                assert!(url.ends_with(path), "{url}");
                assert!(message.contains("line 1 column 1"), "{message}");
            }
            other => panic!("{path}: {other:?}"),
        }
    }
}

/// Both kinds of stall are caught: lines that repeat the same `completed`, and silence.
/// Each re-issued pull resumes; after `max_restarts` the pull gives up with the numbers.
#[tokio::test]
async fn pull_model_restarts_stalls_and_gives_up_after_the_limit() {
    use ccr_setup::ollama::pull::{pull_model, PullError, PullEvent, PullOptions};
    use std::time::Duration;
    for silent in [false, true] {
        let mut cfg = FakeConfig::default();
        cfg.pull.stall_after = Some(1_000_000);
        cfg.pull.stall_times = 2;
        cfg.pull.stall_silent = silent;
        let fake = FakeOllama::start(cfg);
        let c = client(&fake);
        let opts = PullOptions {
            stall_timeout: Duration::from_millis(300),
            max_restarts: 3,
        };
        let mut events = Vec::new();
        let summary = pull_model(&c, "gpt-oss:20b", opts, &mut |e| events.push(e))
            .await
            .unwrap();
        assert_eq!(summary.restarts, 2, "silent={silent}");
        assert_eq!(summary.layers, 3);
        assert_eq!(fake.hits("/api/pull"), 3);
        let restarts: Vec<_> = events
            .iter()
            .filter(|e| matches!(e, PullEvent::Restarting { .. }))
            .collect();
        assert_eq!(restarts.len(), 2);
        // Progress never went backwards across the restarts (the pulls resumed).
        let mut last = 0;
        for e in &events {
            if let PullEvent::Progress { completed, .. } = e {
                assert!(*completed >= last, "silent={silent}: {events:?}");
                last = *completed;
            }
        }
        assert!(fake.is_installed("gpt-oss:20b"));

        // More stalls than restarts allowed: a clear error with where it stopped.
        let mut cfg = FakeConfig::default();
        cfg.pull.stall_after = Some(1_000_000);
        cfg.pull.stall_times = 10;
        cfg.pull.stall_silent = silent;
        let fake = FakeOllama::start(cfg);
        let opts = PullOptions {
            stall_timeout: Duration::from_millis(200),
            max_restarts: 2,
        };
        let err = pull_model(&client(&fake), "gpt-oss:20b", opts, &mut |_| {})
            .await
            .unwrap_err();
        match err {
            PullError::Stalled {
                restarts,
                completed,
                ..
            } => {
                assert_eq!(restarts, 2);
                assert_eq!(completed, 1_000_000);
            }
            other => panic!("expected a stall, got {other}"),
        }
        assert_eq!(fake.hits("/api/pull"), 3);
    }
}

/// A pull re-issued right after one was dropped (Ctrl-C, a stall) can get
/// `{"error":"context canceled"}` while Ollama tears the old download down: that is
/// retried, not reported as a failure.
#[tokio::test]
async fn pull_model_retries_context_canceled_after_a_dropped_pull() {
    use ccr_setup::ollama::pull::{pull_model, PullOptions};
    use std::time::Duration;
    let mut cfg = FakeConfig::default();
    cfg.pull.canceled_after_drop = 1;
    cfg.pull.tick = Duration::from_millis(50);
    let fake = FakeOllama::start(cfg);
    let mut first = reqwest::Client::new()
        .post(format!("{}/api/pull", fake.url()))
        .json(&serde_json::json!({"model": "gpt-oss:20b"}))
        .send()
        .await
        .unwrap();
    first.chunk().await.unwrap();
    drop(first);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while fake.state.lock().unwrap().pulls_dropped == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the drop was never noticed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let opts = PullOptions {
        stall_timeout: Duration::from_secs(5),
        max_restarts: 3,
    };
    let summary = pull_model(&client(&fake), "gpt-oss:20b", opts, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(summary.restarts, 1);
}

/// A pull whose server never ends a line (a broken proxy in between, a hostile server)
/// ends in an error naming the limit, instead of buffering without bound (the old
/// reader held all 64 MB offered and waited for a newline forever).
#[tokio::test]
async fn a_pull_line_that_never_ends_is_an_error_naming_the_limit() {
    use std::time::Duration;
    use support::openai_upstream::{FakeUpstream, Piece, Reply, SseEnd};
    let piece = |bytes: Vec<u8>| Piece {
        delay: Duration::ZERO,
        bytes,
    };
    let mut pieces = vec![piece(
        b"{\"status\":\"pulling manifest\"}\n{\"status\":\"".to_vec(),
    )];
    pieces.extend((0..64).map(|_| piece(vec![b'x'; 1024 * 1024])));
    let fake = FakeUpstream::start(vec![Reply::Sse {
        pieces,
        end: SseEnd::Hang,
    }])
    .await;
    let c = OllamaClient::new(parse_ollama_host(Some(&fake.url(""))));
    let mut pull = c.pull_stream("m").await.unwrap();
    let first = pull.next().await.unwrap().unwrap();
    assert_eq!(first.status, "pulling manifest");
    let err = tokio::time::timeout(Duration::from_secs(30), pull.next())
        .await
        .expect("the client gives up on the line, not the test on the client")
        .expect("an error, not the end")
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("/api/pull"), "{text}");
    assert!(text.contains("one stream line larger than 1 MB"), "{text}");
    assert!(pull.next().await.is_none(), "nothing after the error");
}
