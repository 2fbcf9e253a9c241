//! A tiny HTTP/1.1 server with canned answers per path (the query ignored), recording
//! every request line and its headers: fake model engines (vLLM, llama-server, Ollama
//! as `init --server` probes them) and a fake team server's usage endpoint. Other
//! paths get the fallback answer (a 404 unless given; [`super::tiny_http`] answers
//! everything with one). Runs on its own thread; dropping it stops it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One answer by path: the status, and the JSON body.
pub type Route = (&'static str, u16, String);

/// The answer for every other path: status, content type, body.
pub type Fallback = (u16, String, String);

pub struct RoutedHttp {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    requests: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RoutedHttp {
    /// Listen on 127.0.0.1:`port` (0: a free one).
    pub fn start(port: u16, routes: Vec<Route>) -> RoutedHttp {
        let not_found = (
            404,
            "application/json".to_owned(),
            r#"{"error":"not found"}"#.to_owned(),
        );
        Self::with_fallback(port, routes, not_found)
    }

    /// [`RoutedHttp::start`] answering `fallback` where no route matches.
    pub fn with_fallback(port: u16, routes: Vec<Route>, fallback: Fallback) -> RoutedHttp {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind routed http");
        let addr = listener.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (flag, log) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if flag.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 8192];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match conn.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&seen).into_owned();
                let path = head
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .split('?')
                    .next()
                    .unwrap_or("")
                    .to_owned();
                log.lock().unwrap().push(head);
                let (status, content_type, body) = routes
                    .iter()
                    .find(|(p, _, _)| *p == path)
                    .map(|(_, s, b)| (*s, "application/json", b.as_str()))
                    .unwrap_or((fallback.0, fallback.1.as_str(), fallback.2.as_str()));
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        RoutedHttp {
            addr,
            stop,
            requests,
            thread: Some(thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port())
    }

    /// Each request's head (request line and headers), in order.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for RoutedHttp {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// vLLM's `/v1/models` (`ModelCard`: `owned_by: "vllm"`, `max_model_len`).
pub fn fake_vllm() -> RoutedHttp {
    RoutedHttp::start(
        0,
        vec![
            ("/v1/models", 200, r#"{"object":"list","data":[{"id":"openai/gpt-oss-20b","object":"model","created":1796614439,"owned_by":"vllm","root":"openai/gpt-oss-20b","parent":null,"max_model_len":131072,"permission":[]}]}"#.to_owned()),
            ("/health", 200, String::new()),
        ],
    )
}

/// llama-server's `/health`, `/props` and `/v1/models`, as the real b-series answers
/// with `-c 32768 -np 4 --alias gpt-oss` (n_ctx is per slot).
pub fn fake_llama_server() -> RoutedHttp {
    RoutedHttp::start(
        0,
        vec![
            ("/health", 200, r#"{"status":"ok"}"#.to_owned()),
            ("/props", 200, r#"{"default_generation_settings":{"n_ctx":8192},"total_slots":4,"model_alias":"gpt-oss","model_path":"/m/gpt-oss.gguf"}"#.to_owned()),
            ("/v1/models", 200, r#"{"object":"list","data":[{"id":"gpt-oss","aliases":["gpt-oss"],"object":"model","created":1,"owned_by":"llamacpp","meta":{"n_ctx":8192,"n_ctx_train":131072}}]}"#.to_owned()),
        ],
    )
}

/// Ollama's `/api/version`, `/api/tags` and `/api/ps` (the model loaded at 32k).
pub fn fake_ollama_engine() -> RoutedHttp {
    RoutedHttp::start(
        0,
        vec![
            ("/api/version", 200, r#"{"version":"0.13.0"}"#.to_owned()),
            ("/api/tags", 200, r#"{"models":[{"name":"gpt-oss:20b","model":"gpt-oss:20b","size":13780173839}]}"#.to_owned()),
            ("/api/ps", 200, r#"{"models":[{"name":"gpt-oss:20b","model":"gpt-oss:20b","context_length":32768}]}"#.to_owned()),
            ("/v1/models", 200, r#"{"object":"list","data":[{"id":"gpt-oss:20b","object":"model","created":1,"owned_by":"library"}]}"#.to_owned()),
        ],
    )
}

/// The team server's usage report for client alice (the contract of `/v1/ccr/usage`).
pub fn usage_body() -> String {
    r#"{"client":"alice","day":"2026-12-07","timezone":"UTC","today":{"requests":12,"input_tokens":120000,"output_tokens":3000,"cloud_usd":0.5,"saved_usd":3.1},"limits":{"daily_requests":500,"daily_cloud_usd":5.0},"session":{"requests":3,"input_tokens":30000,"output_tokens":900,"cloud_usd":0.0,"saved_usd":0.4,"last_model":"vllm,openai/gpt-oss-20b","context_cleared_blocks":0}}"#.to_owned()
}

/// A fake team server answering the usage report with `status` (401 with an
/// Anthropic-shaped error body when not 200).
pub fn fake_team_server(status: u16) -> RoutedHttp {
    let body = if status == 200 {
        usage_body()
    } else {
        r#"{"type":"error","error":{"type":"authentication_error","message":"invalid client key"}}"#
            .to_owned()
    };
    RoutedHttp::start(0, vec![("/v1/ccr/usage", status, body)])
}
