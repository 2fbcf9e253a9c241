//! A scripted fake upstream (OpenAI chat completions, or any JSON/SSE answer) on
//! 127.0.0.1, written on raw TCP so a test controls every byte: how an SSE answer is
//! chunked and delayed, whether it ends cleanly, breaks mid-stream or hangs. It
//! records each request it received and when a client closed its connection before
//! the answer was over (the proof that the proxy cancels upstream work).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One request as the fake received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A piece of an SSE answer, written as one HTTP chunk after `delay`.
#[derive(Debug, Clone)]
pub struct Piece {
    pub delay: Duration,
    pub bytes: Vec<u8>,
}

/// How an SSE answer ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SseEnd {
    /// The terminating chunk: a clean end of the body.
    Finish,
    /// The connection is dropped mid-body (the client sees a transport error).
    Break,
    /// Nothing more is sent and the connection stays open until the client closes it.
    Hang,
}

#[derive(Debug, Clone)]
pub enum Reply {
    /// A whole answer with this status and body.
    Json { status: u16, body: String },
    /// A `text/event-stream` answer in chunked encoding.
    Sse { pieces: Vec<Piece>, end: SseEnd },
    /// Nothing at all (not even the status line) for `delay`, then `reply`: a server
    /// that answers only once its prefill is done.
    Delayed { delay: Duration, reply: Box<Reply> },
}

impl Reply {
    pub fn json(body: &Value) -> Reply {
        Reply::Json {
            status: 200,
            body: body.to_string(),
        }
    }

    pub fn status(status: u16, body: &str) -> Reply {
        Reply::Json {
            status,
            body: body.to_owned(),
        }
    }

    /// An SSE transcript sent as one piece per event (split at blank lines), each
    /// after `delay`.
    pub fn sse_events(transcript: &str, delay: Duration, end: SseEnd) -> Reply {
        let pieces = transcript
            .split_inclusive("\n\n")
            .map(|e| Piece {
                delay,
                bytes: e.as_bytes().to_vec(),
            })
            .collect();
        Reply::Sse { pieces, end }
    }

    /// An SSE transcript cut into pieces of `size` bytes (splitting lines and UTF-8
    /// characters), each after `delay`.
    pub fn sse_split(transcript: &[u8], size: usize, delay: Duration, end: SseEnd) -> Reply {
        let pieces = transcript
            .chunks(size.max(1))
            .map(|c| Piece {
                delay,
                bytes: c.to_vec(),
            })
            .collect();
        Reply::Sse { pieces, end }
    }
}

/// Build an OpenAI SSE transcript: one chunk per delta, then a finish chunk with
/// usage, then `[DONE]`.
pub fn openai_transcript(deltas: &[Value], finish_reason: &str) -> String {
    let mut out = String::new();
    for delta in deltas {
        let chunk = serde_json::json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake", "choices": [{"index": 0, "delta": delta, "finish_reason": null}]});
        out.push_str(&format!("data: {chunk}\n\n"));
    }
    let last = serde_json::json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": "fake", "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}], "usage": {"prompt_tokens": 321, "completion_tokens": 12, "total_tokens": 333}});
    out.push_str(&format!("data: {last}\n\ndata: [DONE]\n\n"));
    out
}

type Handler = dyn Fn(&Recorded, usize) -> Reply + Send + Sync;

#[derive(Default)]
struct Shared {
    requests: Vec<Recorded>,
    /// Per request index: when the client closed the connection before the answer
    /// was over.
    client_closed: Vec<Option<Instant>>,
    /// Capability questions (`/api/show`, `/props`, `/v1/models`) answered.
    probes: usize,
    /// The `GET /v1/models` answer; 404 when None (a scripted server without models).
    models: Option<String>,
}

pub struct FakeUpstream {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FakeUpstream {
    /// Answer the n-th request with `replies[n]` (the last one repeats).
    pub async fn start(replies: Vec<Reply>) -> FakeUpstream {
        assert!(!replies.is_empty());
        Self::start_with(move |_, n| replies[n.min(replies.len() - 1)].clone()).await
    }

    /// Answer each request with `handler(request, index)`.
    pub async fn start_with(
        handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> FakeUpstream {
        Self::start_serving(None, handler).await
    }

    /// As [`FakeUpstream::start_with`], answering `GET /v1/models` with `models`.
    pub async fn start_serving(
        models: Option<Value>,
        handler: impl Fn(&Recorded, usize) -> Reply + Send + Sync + 'static,
    ) -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Mutex::new(Shared {
            models: models.map(|m| m.to_string()),
            ..Shared::default()
        }));
        let handler: Arc<Handler> = Arc::new(handler);
        let task = {
            let shared = shared.clone();
            tokio::spawn(async move {
                while let Ok((socket, _)) = listener.accept().await {
                    let shared = shared.clone();
                    let handler = handler.clone();
                    tokio::spawn(async move {
                        let _ = serve_one(socket, shared, handler).await;
                    });
                }
            })
        };
        FakeUpstream { addr, shared, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// How many capability questions (`/api/show`, `/props`) the proxy asked.
    pub fn probes(&self) -> usize {
        self.shared.lock().unwrap().probes
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.lock().unwrap().requests.clone()
    }

    /// When the client closed request `index`'s connection early, if it did.
    pub fn client_closed_at(&self, index: usize) -> Option<Instant> {
        self.shared
            .lock()
            .unwrap()
            .client_closed
            .get(index)
            .copied()
            .flatten()
    }

    /// Wait until request `index` was received.
    pub async fn wait_for_request(&self, index: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.shared.lock().unwrap().requests.len() > index {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }
}

async fn read_request(socket: &mut TcpStream) -> Option<Recorded> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = socket.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let n = socket.read(&mut tmp).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&tmp[..n]);
    }
    Some(Recorded {
        method,
        path,
        headers,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

/// Wait `delay`, unless the client closes the connection first (then true).
async fn sleep_or_closed(socket: &mut TcpStream, delay: Duration) -> bool {
    let mut probe = [0u8; 1];
    tokio::select! {
        _ = tokio::time::sleep(delay) => false,
        r = socket.read(&mut probe) => matches!(r, Ok(0) | Err(_)),
    }
}

async fn serve_one(
    mut socket: TcpStream,
    shared: Arc<Mutex<Shared>>,
    handler: Arc<Handler>,
) -> std::io::Result<()> {
    let Some(request) = read_request(&mut socket).await else {
        return Ok(());
    };
    // The proxy asks a local server what a model can take (Ollama's `/api/show`,
    // llama-server's `/props`, vLLM's `/v1/models`); a scripted OpenAI server has none
    // unless given models, and the question is not one of the scripted requests.
    if matches!(request.path.as_str(), "/api/show" | "/props" | "/v1/models") {
        let models = {
            let mut s = shared.lock().unwrap();
            s.probes += 1;
            s.models.clone().filter(|_| request.path == "/v1/models")
        };
        let (status, body) = match &models {
            Some(m) => ("200 OK", m.as_str()),
            None => ("404 Not Found", "404 page not found"),
        };
        let head = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        socket.write_all(head.as_bytes()).await?;
        return socket.write_all(body.as_bytes()).await;
    }
    let index = {
        let mut s = shared.lock().unwrap();
        s.requests.push(request.clone());
        s.client_closed.push(None);
        s.requests.len() - 1
    };
    let closed = |shared: &Mutex<Shared>| {
        shared.lock().unwrap().client_closed[index] = Some(Instant::now());
    };
    let mut reply = handler(&request, index);
    while let Reply::Delayed {
        delay,
        reply: inner,
    } = reply
    {
        if sleep_or_closed(&mut socket, delay).await {
            closed(&shared);
            return Ok(());
        }
        reply = *inner;
    }
    match reply {
        Reply::Delayed { .. } => unreachable!("unwrapped above"),
        Reply::Json { status, body } => {
            let head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                reason(status),
                body.len()
            );
            socket.write_all(head.as_bytes()).await?;
            socket.write_all(body.as_bytes()).await?;
        }
        Reply::Sse { pieces, end } => {
            socket
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
                .await?;
            for piece in pieces {
                if !piece.delay.is_zero() && sleep_or_closed(&mut socket, piece.delay).await {
                    closed(&shared);
                    return Ok(());
                }
                let mut chunk = format!("{:x}\r\n", piece.bytes.len()).into_bytes();
                chunk.extend_from_slice(&piece.bytes);
                chunk.extend_from_slice(b"\r\n");
                if socket.write_all(&chunk).await.is_err() {
                    closed(&shared);
                    return Ok(());
                }
            }
            match end {
                SseEnd::Finish => socket.write_all(b"0\r\n\r\n").await?,
                SseEnd::Break => return Ok(()),
                SseEnd::Hang => {
                    if sleep_or_closed(&mut socket, Duration::from_secs(3600)).await {
                        closed(&shared);
                    }
                    return Ok(());
                }
            }
        }
    }
    socket.flush().await?;
    let _ = socket.shutdown().await;
    Ok(())
}
