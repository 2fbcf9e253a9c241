//! A faithful, in-process fake of Ollama's HTTP API for every test suite.
//!
//! It follows Ollama's real behaviour (v0.33 source; see /work/shared/README.md) where
//! ccr-setup depends on it:
//! * `GET /api/version` → `{"version"}`; `GET /api/tags` → installed models;
//! * `POST /api/show` → `capabilities` and `model_info` with `general.architecture`,
//!   `<arch>.context_length` **and a decoy** `<arch>.rope.scaling.original_context_length`
//!   (so code that matches any key containing "context_length" fails); unknown model → 404;
//! * `GET /api/ps` lists only models loaded by a chat/load call, each with the effective
//!   `context_length` = min(server context, trained context);
//! * `POST /api/pull` streams NDJSON: "pulling manifest", "pulling <12hex>" per layer with
//!   `digest/total/completed`, "verifying sha256 digest", "writing manifest", "success".
//!   Failures are `{"error":…}` lines **with HTTP 200**; a stall keeps repeating the same
//!   `completed`; downloaded bytes persist, so re-issuing a pull resumes;
//! * `POST /api/chat` with no messages loads the model (`done_reason: "load"`), with
//!   messages answers; `POST /v1/chat/completions` answers (streamed SSE ending in
//!   `data: [DONE]`, or whole), and with `tools` returns a `tool_calls` entry for the first
//!   tool, or Ollama's HTTP 500 `error parsing tool call` when told to fail;
//! * `GET /v2/<ns>/<name>/manifests/<tag>` serves a registry manifest (layer sizes), so
//!   point `CCR_SETUP_OLLAMA_REGISTRY` at the fake to test the disk check.
//!
//! Usage (sync or async tests alike; it runs on its own thread and runtime):
//! ```ignore
//! let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
//! std::env::set_var("OLLAMA_HOST", fake.host_port()); // or pass it to a child process
//! assert_eq!(fake.hits("/api/pull"), 0);
//! fake.update(|s| s.config.server_context = 4096);   // change behaviour mid-test
//! ```
//! Dropping the [`FakeOllama`] stops the server.
#![allow(dead_code)]

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// One model the fake knows (installed or pullable).
#[derive(Debug, Clone)]
pub struct FakeModel {
    /// Full name with tag, e.g. `gpt-oss:20b`.
    pub name: String,
    pub architecture: String,
    pub capabilities: Vec<String>,
    /// `model_info["<arch>.context_length"]`.
    pub trained_context: u64,
    /// Layer sizes in bytes, in pull order; their sum is the model's size.
    pub layers: Vec<u64>,
}

impl FakeModel {
    /// gpt-oss:20b with small layers (3 of them) so pulls are quick.
    pub fn gpt_oss() -> Self {
        FakeModel {
            name: "gpt-oss:20b".into(),
            architecture: "gptoss".into(),
            capabilities: vec!["completion".into(), "tools".into(), "thinking".into()],
            trained_context: 131_072,
            layers: vec![4_000_000, 11_000, 7_000],
        }
    }

    pub fn named(name: &str) -> Self {
        FakeModel {
            name: name.into(),
            ..Self::gpt_oss()
        }
    }

    pub fn size(&self) -> u64 {
        self.layers.iter().sum()
    }

    /// A stable fake sha256 digest for layer `i`.
    pub fn digest(&self, i: usize) -> String {
        let mut h: u64 = 0xcbf29ce484222325;
        for b in self.name.bytes().chain([i as u8]) {
            h = (h ^ b as u64).wrapping_mul(0x100000001b3);
        }
        format!("sha256:{:016x}{:048x}", h, i)
    }
}

/// How `/api/pull` behaves.
#[derive(Debug, Clone)]
pub struct PullBehaviour {
    /// Bytes per progress line.
    pub chunk: u64,
    /// Pause between progress lines.
    pub tick: Duration,
    /// After this many bytes in total, send `{"error": error_message}` (HTTP 200).
    pub error_after: Option<u64>,
    pub error_message: String,
    /// After this many bytes in total, stop advancing (repeat the same line every tick)
    /// on the first `stall_times` pulls; later pulls resume from there.
    pub stall_after: Option<u64>,
    pub stall_times: u32,
    /// While stalled, send nothing (instead of repeating the same `completed`).
    pub stall_silent: bool,
    /// The model is not in the library: "pulling manifest" then the error line.
    pub unknown_model_error: String,
}

impl Default for PullBehaviour {
    fn default() -> Self {
        PullBehaviour {
            chunk: 500_000,
            tick: Duration::from_millis(20),
            error_after: None,
            error_message: "pull model manifest: file does not exist".into(),
            stall_after: None,
            stall_times: 0,
            stall_silent: false,
            unknown_model_error: "pull model manifest: file does not exist".into(),
        }
    }
}

/// How the chat endpoints behave.
#[derive(Debug, Clone)]
pub struct ChatBehaviour {
    pub answer: String,
    /// Tool-call requests fail with Ollama's HTTP 500 `error parsing tool call`.
    pub tool_call_fails: bool,
    /// Tool-call requests are answered with text instead of a tool call.
    pub tool_call_ignored: bool,
    /// Delay before the first token (and before a load finishes).
    pub first_token_delay: Duration,
}

impl Default for ChatBehaviour {
    fn default() -> Self {
        ChatBehaviour {
            answer: "Hello from the fake Ollama.".into(),
            tool_call_fails: false,
            tool_call_ignored: false,
            first_token_delay: Duration::from_millis(5),
        }
    }
}

/// Everything the fake can be told.
#[derive(Debug, Clone)]
pub struct FakeConfig {
    pub version: String,
    /// Installed models (`/api/tags`).
    pub installed: Vec<FakeModel>,
    /// Models `/api/pull` can fetch (installed ones are pullable too).
    pub library: Vec<FakeModel>,
    /// The server's context setting (OLLAMA_CONTEXT_LENGTH, or the app's setting); the
    /// effective context in `/api/ps` is this capped at the model's trained context.
    pub server_context: u64,
    pub pull: PullBehaviour,
    pub chat: ChatBehaviour,
    /// Paths (e.g. `/api/version`) that answer HTTP 500.
    pub fail_paths: Vec<String>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            version: "0.12.3".into(),
            installed: Vec::new(),
            library: vec![FakeModel::gpt_oss()],
            server_context: 32_768,
            pull: PullBehaviour::default(),
            chat: ChatBehaviour::default(),
            fail_paths: Vec::new(),
        }
    }
}

impl FakeConfig {
    pub fn with_installed(mut self, m: FakeModel) -> Self {
        self.installed.push(m);
        self
    }
}

/// The fake's mutable state; tests may inspect or change it through [`FakeOllama`].
#[derive(Debug, Default)]
pub struct FakeState {
    pub config: FakeConfig,
    /// Loaded model name → effective context.
    pub loaded: Vec<(String, u64)>,
    /// Bytes downloaded so far per layer digest (what makes a re-issued pull resume).
    pub downloaded: HashMap<String, u64>,
    /// Pull requests that stalled so far.
    pub stalls_done: u32,
    /// Hits per path.
    pub hits: HashMap<String, u32>,
    /// Bodies of POST requests, in order: (path, body).
    pub bodies: Vec<(String, Value)>,
}

type Shared = Arc<Mutex<FakeState>>;

/// A running fake server. Dropping it stops the server.
pub struct FakeOllama {
    pub addr: SocketAddr,
    pub state: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeOllama {
    /// Start on 127.0.0.1 with a free port.
    pub fn start(config: FakeConfig) -> FakeOllama {
        Self::start_on("127.0.0.1:0".parse().unwrap(), config)
    }

    /// Start on a given address (port 0 for a free one).
    pub fn start_on(addr: SocketAddr, config: FakeConfig) -> FakeOllama {
        let state: Shared = Arc::new(Mutex::new(FakeState {
            config,
            ..FakeState::default()
        }));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                // No graceful shutdown: a stalled pull stream never ends by itself, so
                // stop accepting at once and let the runtime drop open connections.
                tokio::select! {
                    r = axum::serve(listener, app(st)).into_future() => r.unwrap(),
                    _ = shutdown_rx => {}
                }
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        let addr = addr_rx.recv().expect("fake ollama bound");
        FakeOllama {
            addr,
            state,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        }
    }

    /// `127.0.0.1:PORT`, the form `OLLAMA_HOST` takes.
    pub fn host_port(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How many requests hit `path` (e.g. `/api/pull`).
    pub fn hits(&self, path: &str) -> u32 {
        self.state
            .lock()
            .unwrap()
            .hits
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Bodies POSTed to `path`, in order.
    pub fn bodies(&self, path: &str) -> Vec<Value> {
        let s = self.state.lock().unwrap();
        s.bodies
            .iter()
            .filter(|(p, _)| p == path)
            .map(|(_, b)| b.clone())
            .collect()
    }

    /// Change the fake's behaviour or state.
    pub fn update(&self, f: impl FnOnce(&mut FakeState)) {
        f(&mut self.state.lock().unwrap());
    }

    pub fn is_installed(&self, name: &str) -> bool {
        let s = self.state.lock().unwrap();
        s.config.installed.iter().any(|m| m.name == name)
    }
}

impl Drop for FakeOllama {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn app(state: Shared) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { "Ollama is running" }).head(|| async { StatusCode::OK }),
        )
        .route("/api/version", get(version))
        .route("/api/tags", get(tags))
        .route("/api/show", post(show))
        .route("/api/ps", get(ps))
        .route("/api/pull", post(pull))
        .route("/api/chat", post(chat))
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v2/{ns}/{name}/manifests/{tag}", get(manifest))
        .with_state(state)
}

/// Count the hit, record the body, and answer 500 when the path is told to fail.
fn enter(state: &Shared, path: &str, body: Option<&Value>) -> Option<Response> {
    let mut s = state.lock().unwrap();
    *s.hits.entry(path.to_owned()).or_default() += 1;
    if let Some(b) = body {
        s.bodies.push((path.to_owned(), b.clone()));
    }
    if s.config.fail_paths.iter().any(|p| p == path) {
        return Some(
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"error": "fake failure"})),
            )
                .into_response(),
        );
    }
    None
}

fn normalize(name: &str) -> String {
    if name.rsplit('/').next().unwrap_or(name).contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

fn find<'a>(models: &'a [FakeModel], name: &str) -> Option<&'a FakeModel> {
    let want = normalize(name);
    models.iter().find(|m| normalize(&m.name) == want)
}

fn model_field(body: &Value) -> String {
    body.get("model")
        .or_else(|| body.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

fn not_found(model: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        Json(json!({"error": format!("model '{model}' not found")})),
    )
        .into_response()
}

async fn version(State(st): State<Shared>) -> Response {
    if let Some(r) = enter(&st, "/api/version", None) {
        return r;
    }
    let v = st.lock().unwrap().config.version.clone();
    Json(json!({ "version": v })).into_response()
}

async fn tags(State(st): State<Shared>) -> Response {
    if let Some(r) = enter(&st, "/api/tags", None) {
        return r;
    }
    let s = st.lock().unwrap();
    let models: Vec<Value> = s
        .config
        .installed
        .iter()
        .enumerate()
        .map(|(i, m)| {
            json!({
                "name": m.name, "model": m.name, "size": m.size(),
                "digest": format!("{:064x}", i + 1),
                "modified_at": "2026-01-01T00:00:00Z",
                "details": {"format": "gguf", "family": m.architecture, "parameter_size": "20.9B", "quantization_level": "MXFP4"}
            })
        })
        .collect();
    Json(json!({ "models": models })).into_response()
}

async fn show(State(st): State<Shared>, Json(body): Json<Value>) -> Response {
    if let Some(r) = enter(&st, "/api/show", Some(&body)) {
        return r;
    }
    let name = model_field(&body);
    let s = st.lock().unwrap();
    let Some(m) = find(&s.config.installed, &name) else {
        return not_found(&name);
    };
    let arch = &m.architecture;
    let mut info = serde_json::Map::new();
    info.insert("general.architecture".into(), json!(arch));
    info.insert(
        format!("{arch}.rope.scaling.original_context_length"),
        json!(4096),
    );
    info.insert(format!("{arch}.context_length"), json!(m.trained_context));
    info.insert(format!("{arch}.embedding_length"), json!(2880));
    Json(json!({
        "license": "Apache 2.0", "modelfile": "# fake", "template": "{{ .Prompt }}",
        "details": {"format": "gguf", "family": arch},
        "model_info": Value::Object(info),
        "capabilities": m.capabilities,
    }))
    .into_response()
}

async fn ps(State(st): State<Shared>) -> Response {
    if let Some(r) = enter(&st, "/api/ps", None) {
        return r;
    }
    let s = st.lock().unwrap();
    let models: Vec<Value> = s
        .loaded
        .iter()
        .map(|(name, ctx)| {
            let size = find(&s.config.installed, name)
                .map(FakeModel::size)
                .unwrap_or(0);
            json!({
                "name": name, "model": name, "size": size, "size_vram": size,
                "digest": "0".repeat(64), "expires_at": "2099-01-01T00:00:00Z",
                "context_length": ctx,
            })
        })
        .collect();
    Json(json!({ "models": models })).into_response()
}

/// Load `name` (as a chat/generate call would): the effective context is the server's
/// setting capped at the trained context.
fn load(st: &Shared, name: &str) -> Result<(), Box<Response>> {
    let mut s = st.lock().unwrap();
    let Some(m) = find(&s.config.installed, name).cloned() else {
        return Err(Box::new(not_found(name)));
    };
    let ctx = s.config.server_context.min(m.trained_context);
    s.loaded.retain(|(n, _)| normalize(n) != normalize(&m.name));
    s.loaded.push((m.name.clone(), ctx));
    Ok(())
}

fn ndjson(v: Value) -> Result<bytes::Bytes, Infallible> {
    let mut s = v.to_string();
    s.push('\n');
    Ok(bytes::Bytes::from(s))
}

async fn pull(State(st): State<Shared>, Json(body): Json<Value>) -> Response {
    if let Some(r) = enter(&st, "/api/pull", Some(&body)) {
        return r;
    }
    let name = model_field(&body);
    let (tx, rx) = tokio::sync::mpsc::channel::<Value>(16);
    let st2 = st.clone();
    tokio::spawn(async move {
        // Every send fails once the client hangs up; then the "download" stops, as
        // Ollama's does, and the bytes so far are kept for the next pull.
        let _ = run_pull(st2, name, tx).await;
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|v| (ndjson(v), rx))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "application/x-ndjson")
        .body(Body::from_stream(stream))
        .unwrap()
}

async fn run_pull(
    st: Shared,
    name: String,
    tx: tokio::sync::mpsc::Sender<Value>,
) -> Result<(), tokio::sync::mpsc::error::SendError<Value>> {
    let (model, pb) = {
        let s = st.lock().unwrap();
        let model = find(&s.config.library, &name)
            .or_else(|| find(&s.config.installed, &name))
            .cloned();
        (model, s.config.pull.clone())
    };
    tx.send(json!({"status": "pulling manifest"})).await?;
    tokio::time::sleep(pb.tick).await;
    let Some(model) = model else {
        tx.send(json!({"error": pb.unknown_model_error})).await?;
        return Ok(());
    };
    let stall_now = {
        let s = st.lock().unwrap();
        pb.stall_after.is_some() && s.stalls_done < pb.stall_times
    };
    let mut sent_total: u64 = 0; // bytes across layers, for error/stall thresholds
    for (i, &total) in model.layers.iter().enumerate() {
        let digest = model.digest(i);
        let short = &digest[7..19];
        loop {
            let done = *st.lock().unwrap().downloaded.get(&digest).unwrap_or(&0);
            let overall = sent_total + done;
            if let Some(limit) = pb.error_after {
                if overall >= limit {
                    tx.send(json!({"error": pb.error_message})).await?;
                    return Ok(());
                }
            }
            if stall_now && pb.stall_after.is_some_and(|limit| overall >= limit) {
                st.lock().unwrap().stalls_done += 1;
                // Never advance again on this request; keep the connection alive.
                if pb.stall_silent {
                    // The last progress line, then nothing until the client hangs up.
                    tx.send(json!({"status": format!("pulling {short}"), "digest": digest, "total": total, "completed": done}))
                        .await?;
                    tx.closed().await;
                    return Ok(());
                }
                loop {
                    tx.send(json!({"status": format!("pulling {short}"), "digest": digest, "total": total, "completed": done}))
                        .await?;
                    tokio::time::sleep(pb.tick).await;
                }
            }
            tx.send(json!({"status": format!("pulling {short}"), "digest": digest, "total": total, "completed": done}))
                .await?;
            if done >= total {
                break;
            }
            tokio::time::sleep(pb.tick).await;
            let mut step = pb.chunk.min(total - done);
            if let Some(limit) = pb.stall_after.filter(|_| stall_now) {
                step = step
                    .min(limit.saturating_sub(overall))
                    .max(if overall >= limit { 0 } else { 1 });
            }
            if let Some(limit) = pb.error_after {
                step = step.min(limit.saturating_sub(overall).max(1));
            }
            st.lock()
                .unwrap()
                .downloaded
                .insert(digest.clone(), done + step);
        }
        sent_total += total;
    }
    tx.send(json!({"status": "verifying sha256 digest"}))
        .await?;
    tokio::time::sleep(pb.tick).await;
    tx.send(json!({"status": "writing manifest"})).await?;
    {
        let mut s = st.lock().unwrap();
        if find(&s.config.installed, &model.name).is_none() {
            s.config.installed.push(model.clone());
        }
    }
    tx.send(json!({"status": "success"})).await?;
    Ok(())
}

async fn chat(State(st): State<Shared>, Json(body): Json<Value>) -> Response {
    if let Some(r) = enter(&st, "/api/chat", Some(&body)) {
        return r;
    }
    let name = model_field(&body);
    let (delay, answer) = {
        let s = st.lock().unwrap();
        (
            s.config.chat.first_token_delay,
            s.config.chat.answer.clone(),
        )
    };
    if let Err(r) = load(&st, &name) {
        return *r;
    }
    tokio::time::sleep(delay).await;
    let empty = body
        .get("messages")
        .and_then(Value::as_array)
        .is_none_or(|m| m.is_empty());
    if empty {
        return Json(json!({
            "model": name, "created_at": "2026-01-01T00:00:00Z",
            "message": {"role": "assistant", "content": ""},
            "done_reason": "load", "done": true
        }))
        .into_response();
    }
    Json(json!({
        "model": name, "created_at": "2026-01-01T00:00:00Z",
        "message": {"role": "assistant", "content": answer},
        "done_reason": "stop", "done": true,
        "total_duration": 1_000_000, "load_duration": 1000, "prompt_eval_count": 10,
        "prompt_eval_duration": 1000, "eval_count": 6, "eval_duration": 1_000_000
    }))
    .into_response()
}

async fn chat_completions(State(st): State<Shared>, Json(body): Json<Value>) -> Response {
    if let Some(r) = enter(&st, "/v1/chat/completions", Some(&body)) {
        return r;
    }
    let name = model_field(&body);
    let chat = st.lock().unwrap().config.chat.clone();
    if let Err(r) = load(&st, &name) {
        // The OpenAI-compatible layer wraps errors OpenAI-style.
        let _ = r;
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"message": format!("model \"{name}\" not found, try pulling it first"), "type": "api_error", "param": null, "code": null}})),
        )
            .into_response();
    }
    let tool = body
        .get("tools")
        .and_then(Value::as_array)
        .and_then(|t| t.first())
        .and_then(|t| t.pointer("/function/name"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    if tool.is_some() && chat.tool_call_fails {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": {"message": "error parsing tool call: raw='{\"timezone\":', err=unexpected end of JSON input", "type": "api_error", "param": null, "code": null}})),
        )
            .into_response();
    }
    let tool = tool.filter(|_| !chat.tool_call_ignored);
    tokio::time::sleep(chat.first_token_delay).await;
    let stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    let usage = body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let id = "chatcmpl-123";
    let tool_calls = tool.as_ref().map(|t| {
        json!([{"id": "call_abc123", "index": 0, "type": "function",
                "function": {"name": t, "arguments": "{\"timezone\":\"UTC\"}"}}])
    });
    let words: Vec<String> = chat
        .answer
        .split_inclusive(' ')
        .map(str::to_owned)
        .collect();
    if !stream {
        let message = match &tool_calls {
            Some(tc) => {
                json!({"role": "assistant", "content": "", "reasoning": "I should call the tool.", "tool_calls": tc})
            }
            None => json!({"role": "assistant", "content": chat.answer, "reasoning": "Say hello."}),
        };
        return Json(json!({
            "id": id, "object": "chat.completion", "created": 1_767_225_600, "model": name,
            "system_fingerprint": "fp_ollama",
            "choices": [{"index": 0, "message": message,
                          "finish_reason": if tool_calls.is_some() { "tool_calls" } else { "stop" }}],
            "usage": {"prompt_tokens": 12, "completion_tokens": words.len(), "total_tokens": 12 + words.len()}
        }))
        .into_response();
    }
    let mut events: Vec<Value> = Vec::new();
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": 1_767_225_600, "model": name,
               "system_fingerprint": "fp_ollama",
               "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
    };
    events.push(chunk(
        json!({"role": "assistant", "content": "", "reasoning": "Thinking."}),
        Value::Null,
    ));
    match &tool_calls {
        Some(tc) => {
            events.push(chunk(
                json!({"role": "assistant", "content": "", "tool_calls": tc}),
                Value::Null,
            ));
            events.push(chunk(
                json!({"role": "assistant", "content": ""}),
                json!("tool_calls"),
            ));
        }
        None => {
            for w in &words {
                events.push(chunk(
                    json!({"role": "assistant", "content": w}),
                    Value::Null,
                ));
            }
            events.push(chunk(
                json!({"role": "assistant", "content": ""}),
                json!("stop"),
            ));
        }
    }
    if usage {
        events.push(json!({"id": id, "object": "chat.completion.chunk", "created": 1_767_225_600, "model": name,
            "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": words.len(), "total_tokens": 12 + words.len()}}));
    }
    let mut lines: Vec<String> = events.iter().map(|e| format!("data: {e}\n\n")).collect();
    lines.push("data: [DONE]\n\n".into());
    let stream = futures_util::stream::iter(lines).then(|l| async move {
        tokio::time::sleep(Duration::from_millis(2)).await;
        Ok::<_, Infallible>(bytes::Bytes::from(l))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/event-stream")
        .body(Body::from_stream(stream))
        .unwrap()
}

use futures_util::StreamExt;

async fn manifest(
    State(st): State<Shared>,
    Path((ns, name, tag)): Path<(String, String, String)>,
) -> Response {
    let _ = enter(&st, "/v2/manifests", None);
    let s = st.lock().unwrap();
    let full = if ns == "library" {
        format!("{name}:{tag}")
    } else {
        format!("{ns}/{name}:{tag}")
    };
    let Some(m) = find(&s.config.library, &full).or_else(|| find(&s.config.installed, &full))
    else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]})),
        )
            .into_response();
    };
    let layers: Vec<Value> = m
        .layers
        .iter()
        .enumerate()
        .map(|(i, size)| json!({"mediaType": "application/vnd.ollama.image.model", "digest": m.digest(i), "size": size}))
        .collect();
    Json(json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": "sha256:".to_owned() + &"c".repeat(64), "size": 489},
        "layers": layers
    }))
    .into_response()
}
