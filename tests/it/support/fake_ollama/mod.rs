//! The one fake Ollama: in-process for the tests, and the fake `ollama` executable
//! ([`exe`]) for the runs where `up` starts `ollama serve` itself.
//!
//! It behaves as Ollama v0.33 does where ccr-setup depends on it, fact by fact from
//! `/work/shared/ollama-facts.md`; every fact has a test named `fact_…` in
//! `tests/it/ollama_facts.rs`, so the fake cannot drift back to a kinder picture:
//! * start: the port is bound at once, HTTP is served only after
//!   [`FakeConfig::start_delay`] (GPU discovery);
//! * `/api/*` ([`api`]): version, tags, show (`<arch>.context_length` plus a decoy key,
//!   capabilities, 404 with the normalised name), ps (blocks while a model loads),
//!   pull NDJSON (`completed` omitted when 0, `removing unused layers`, errors as HTTP 200
//!   lines after `pulling manifest`, the offline DNS text, `context canceled`), chat;
//! * `/v1/chat/completions` ([`openai`]): `reasoning` deltas, whole tool calls with
//!   `call_` + 8 character ids, the `choices: []` usage chunk, the streamed and unstreamed
//!   tool-call parse failures, ignored `tool_choice`, silent truncation, the 400s;
//! * `/v1/messages` ([`messages`]): the native Anthropic basics, no `count_tokens`;
//! * `GET /v2/<ns>/<name>/manifests/<tag>`: a registry manifest (layer sizes), for
//!   `CCR_SETUP_OLLAMA_REGISTRY`.
//!
//! ```ignore
//! let fake = FakeOllama::start(FakeConfig::default().with_installed(FakeModel::gpt_oss()));
//! fake.update(|s| s.config.server_context = 4096);   // change behaviour mid-test
//! assert_eq!(fake.hits("/api/pull"), 0);
//! ```
//! Dropping the [`FakeOllama`] stops the server.
#![allow(dead_code)]

pub mod api;
pub mod exe;
pub mod messages;
pub mod openai;

use std::collections::HashMap;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
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
    /// gpt-oss:20b (`completion`, `tools`, `thinking`; 131072 trained) with three small
    /// layers so pulls are quick.
    pub fn gpt_oss() -> Self {
        FakeModel {
            name: "gpt-oss:20b".into(),
            architecture: "gptoss".into(),
            capabilities: vec!["completion".into(), "tools".into(), "thinking".into()],
            trained_context: 131_072,
            layers: vec![4_000_000, 11_000, 7_000],
        }
    }

    /// A model with `completion` and `tools` only: no thinking, no vision (as Ollama
    /// lists qwen2.5-coder).
    pub fn plain(name: &str) -> Self {
        FakeModel {
            name: name.into(),
            architecture: "qwen2".into(),
            capabilities: vec!["completion".into(), "tools".into()],
            trained_context: 32_768,
            ..Self::gpt_oss()
        }
    }

    /// A model with vision and thinking as well (as Ollama lists gemma4 and qwen3.5).
    pub fn seeing(name: &str) -> Self {
        let mut m = Self::named(name);
        m.capabilities.push("vision".into());
        m
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

/// The error text of a pull without a network (a failed DNS lookup of the registry).
pub const OFFLINE_PULL_ERROR: &str = "pull model manifest: Get \"https://registry.ollama.ai/v2/library/gpt-oss/manifests/20b\": dial tcp: lookup registry.ollama.ai on 127.0.0.53:53: no such host";

/// How `/api/pull` behaves.
#[derive(Debug, Clone)]
pub struct PullBehaviour {
    /// Bytes per progress line.
    pub chunk: u64,
    /// Pause between progress lines (Ollama: about 60 ms per layer).
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
    /// No network: "pulling manifest" then [`OFFLINE_PULL_ERROR`].
    pub offline: bool,
    /// A pull re-issued after one was dropped gets `{"error":"context canceled"}` this
    /// many times (the download is shared by digest and still being torn down).
    pub canceled_after_drop: u32,
    /// Send `removing unused layers` before `success` (Ollama does, sometimes).
    pub removes_unused_layers: bool,
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
            offline: false,
            canceled_after_drop: 0,
            removes_unused_layers: true,
        }
    }
}

/// How the chat endpoints behave.
#[derive(Debug, Clone)]
pub struct ChatBehaviour {
    pub answer: String,
    /// The reasoning gpt-oss streams before its answer (in the `reasoning` field).
    pub reasoning: String,
    /// Tool-call requests fail to parse, as gpt-oss's sometimes do: HTTP 500 unstreamed;
    /// streamed, HTTP 200, reasoning, one empty chunk and no `[DONE]`.
    pub tool_call_fails: bool,
    /// Tool-call requests are answered with text instead of a tool call.
    pub tool_call_ignored: bool,
    /// The first this-many streamed answers loop in their reasoning: the runner stops
    /// after 30 repeats of one token (llm/llama_server.go ~1692), so the stream ends
    /// with the token 31 times and no finish chunk or `[DONE]`. (Unstreamed: not
    /// modelled.)
    pub repetitions: u32,
    /// Delay before the first token.
    pub first_token_delay: Duration,
}

impl Default for ChatBehaviour {
    fn default() -> Self {
        ChatBehaviour {
            answer: "Hello from the fake Ollama.".into(),
            reasoning: "The user greets me. I answer briefly.".into(),
            tool_call_fails: false,
            tool_call_ignored: false,
            repetitions: 0,
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
    /// effective context is this capped at the model's trained context.
    pub server_context: u64,
    /// Between binding the port and serving HTTP (GPU discovery): connections are
    /// accepted, requests hang.
    pub start_delay: Duration,
    /// How long loading a model takes; `/api/ps` blocks meanwhile.
    pub load_duration: Duration,
    pub pull: PullBehaviour,
    pub chat: ChatBehaviour,
    /// Paths (e.g. `/api/version`) that answer HTTP 500.
    pub fail_paths: Vec<String>,
    /// Every model load fails with this (the runner does not start), HTTP 500.
    pub load_error: Option<String>,
    /// Append `METHOD PATH` per request to this file (the executable's log for tests).
    pub request_log: Option<std::path::PathBuf>,
}

impl Default for FakeConfig {
    fn default() -> Self {
        FakeConfig {
            version: "0.12.3".into(),
            installed: Vec::new(),
            library: vec![FakeModel::gpt_oss()],
            server_context: 32_768,
            start_delay: Duration::ZERO,
            load_duration: Duration::ZERO,
            pull: PullBehaviour::default(),
            chat: ChatBehaviour::default(),
            fail_paths: Vec::new(),
            load_error: None,
            request_log: None,
        }
    }
}

/// Builder-style modes, one per behaviour a test picks.
impl FakeConfig {
    pub fn with_installed(mut self, m: FakeModel) -> Self {
        self.installed.push(m);
        self
    }

    pub fn with_start_delay(mut self, delay: Duration) -> Self {
        self.start_delay = delay;
        self
    }

    pub fn with_load_duration(mut self, duration: Duration) -> Self {
        self.load_duration = duration;
        self
    }

    pub fn with_server_context(mut self, context: u64) -> Self {
        self.server_context = context;
        self
    }

    pub fn with_tool_call_parse_failure(mut self) -> Self {
        self.chat.tool_call_fails = true;
        self
    }

    pub fn offline(mut self) -> Self {
        self.pull.offline = true;
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
    /// Pull streams the client dropped before the end.
    pub pulls_dropped: u32,
    /// `context canceled` answers given so far.
    pub cancels_done: u32,
    /// Tool-call ids handed out so far (they make each id unique).
    pub calls_made: u32,
    /// Streamed answers that ended in a repetition loop so far.
    pub repetitions_done: u32,
    /// The messages the model saw, per `/v1/chat/completions` request (after the
    /// silent truncation).
    pub prompts: Vec<Vec<Value>>,
    /// Hits per path.
    pub hits: HashMap<String, u32>,
    /// Bodies of POST requests, in order: (path, body).
    pub bodies: Vec<(String, Value)>,
}

/// What every handler gets: the state, and the scheduler lock a model load holds (the
/// one `/api/ps` waits on).
#[derive(Clone)]
pub struct Ctx {
    pub state: Arc<Mutex<FakeState>>,
    sched: Arc<tokio::sync::Mutex<()>>,
}

/// A running fake server. Dropping it stops the server.
pub struct FakeOllama {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<FakeState>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeOllama {
    /// Start on 127.0.0.1 with a free port.
    pub fn start(config: FakeConfig) -> FakeOllama {
        Self::start_on("127.0.0.1:0".parse().unwrap(), config)
    }

    /// Start on a given address (port 0 for a free one). Returns once the port is bound;
    /// HTTP is served after the configured start delay.
    pub fn start_on(addr: SocketAddr, config: FakeConfig) -> FakeOllama {
        let delay = config.start_delay;
        let ctx = Ctx {
            state: Arc::new(Mutex::new(FakeState {
                config,
                ..FakeState::default()
            })),
            sched: Arc::new(tokio::sync::Mutex::new(())),
        };
        let state = ctx.state.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind(addr).await;
                let listener = match listener {
                    Ok(l) => l,
                    Err(e) => return addr_tx.send(Err(e)).unwrap(),
                };
                addr_tx.send(Ok(listener.local_addr().unwrap())).unwrap();
                // No graceful shutdown: a stalled pull stream never ends by itself, so
                // stop accepting at once and let the runtime drop open connections.
                let serve = async {
                    tokio::time::sleep(delay).await;
                    axum::serve(listener, app(ctx)).into_future().await
                };
                tokio::select! {
                    r = serve => r.unwrap(),
                    _ = shutdown_rx => {}
                }
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        let addr = addr_rx
            .recv()
            .expect("fake ollama thread")
            .unwrap_or_else(|e| panic!("fake ollama cannot bind {addr}: {e}"));
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
        let s = self.state.lock().unwrap();
        s.hits.get(path).copied().unwrap_or(0)
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

fn app(ctx: Ctx) -> Router {
    let log = ctx.config().request_log;
    let router = Router::new()
        .route(
            "/",
            get(|| async { "Ollama is running" }).head(|| async { StatusCode::OK }),
        )
        .route("/api/version", get(api::version))
        .route("/api/tags", get(api::tags))
        .route("/api/show", post(api::show))
        .route("/api/ps", get(api::ps))
        .route("/api/pull", post(api::pull))
        .route("/api/chat", post(api::chat))
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/messages", post(messages::messages))
        .route("/v2/{ns}/{name}/manifests/{tag}", get(api::manifest))
        // gin's own answer to a route it does not have.
        .fallback(|| async { (StatusCode::NOT_FOUND, "404 page not found") })
        .with_state(ctx);
    let Some(log) = log else {
        return router;
    };
    router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let line = format!("{} {}\n", req.method(), req.uri().path());
            let log = log.clone();
            async move {
                use std::io::Write;
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&log);
                let _ = file.and_then(|mut f| f.write_all(line.as_bytes()));
                next.run(req).await
            }
        },
    ))
}

impl Ctx {
    /// Count the hit, record the body, and answer 500 when the path is told to fail.
    fn enter(&self, path: &str, body: Option<&Value>) -> Option<Response> {
        let mut s = self.state.lock().unwrap();
        *s.hits.entry(path.to_owned()).or_default() += 1;
        if let Some(b) = body {
            s.bodies.push((path.to_owned(), b.clone()));
        }
        if s.config.fail_paths.iter().any(|p| p == path) {
            let body = Json(json!({"error": "fake failure"}));
            return Some((StatusCode::INTERNAL_SERVER_ERROR, body).into_response());
        }
        None
    }

    fn config(&self) -> FakeConfig {
        self.state.lock().unwrap().config.clone()
    }

    /// Load `name` as a chat call does: under the scheduler lock (which `/api/ps` waits
    /// on) for `load_duration` unless it is already loaded; the effective context is the
    /// server's setting capped at the trained context. `None`: not installed.
    async fn load(&self, name: &str) -> Option<u64> {
        if self.config().load_error.is_some() {
            return None;
        }
        let model = {
            let s = self.state.lock().unwrap();
            find(&s.config.installed, name).cloned()?
        };
        let _sched = self.sched.lock().await;
        let (loaded, duration, ctx) = {
            let s = self.state.lock().unwrap();
            let ctx = s.config.server_context.min(model.trained_context);
            let loaded = s
                .loaded
                .iter()
                .any(|(n, c)| same(n, &model.name) && *c == ctx);
            (loaded, s.config.load_duration, ctx)
        };
        if !loaded {
            tokio::time::sleep(duration).await;
            let mut s = self.state.lock().unwrap();
            s.loaded.retain(|(n, _)| !same(n, &model.name));
            s.loaded.push((model.name.clone(), ctx));
        }
        Some(ctx)
    }

    /// The capabilities `/api/show` lists for `name`; `None`: not installed.
    fn capabilities(&self, name: &str) -> Option<Vec<String>> {
        let s = self.state.lock().unwrap();
        find(&s.config.installed, name).map(|m| m.capabilities.clone())
    }

    /// A fresh tool-call id: `call_` and 8 lowercase letters or digits.
    fn call_id(&self) -> String {
        let mut s = self.state.lock().unwrap();
        s.calls_made += 1;
        let mut x = u64::from(s.calls_made).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
        let tail: String = (0..8)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                alphabet[(x % 36) as usize] as char
            })
            .collect();
        format!("call_{tail}")
    }
}

/// Ollama's model-name normalisation: a name without a tag gets `:latest`.
pub fn normalize(name: &str) -> String {
    if name.rsplit('/').next().unwrap_or(name).contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

fn same(a: &str, b: &str) -> bool {
    normalize(a) == normalize(b)
}

fn find<'a>(models: &'a [FakeModel], name: &str) -> Option<&'a FakeModel> {
    models.iter().find(|m| same(&m.name, name))
}

fn model_field(body: &Value) -> String {
    body.get("model")
        .or_else(|| body.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// The 500 of a load whose runner did not start (llm/llama_server.go: `llama-server
/// process has terminated: …`), when the fake is told to fail loads.
fn load_failure(ctx: &Ctx) -> Option<Response> {
    let error = ctx.config().load_error?;
    let body = Json(json!({ "error": error }));
    Some((StatusCode::INTERNAL_SERVER_ERROR, body).into_response())
}

/// The text of Ollama's unknown-model error, with the name normalised.
fn not_found_text(model: &str) -> String {
    format!("model '{}' not found", normalize(model))
}

/// A whole-body answer read from a request that is not JSON: Ollama's 400.
fn bad_json(e: impl std::fmt::Display) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": e.to_string()})),
    )
        .into_response()
}
