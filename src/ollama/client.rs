//! Typed async client for the parts of Ollama's HTTP API that ccr-setup uses.
//!
//! Probes (`version`, `tags`, `show`, `ps`) have a short timeout, because "is it up?"
//! must answer quickly; calls that wait on the model (`pull`, `load`, chats) have only
//! a connect timeout plus a generous overall limit, because a 13 GB model can take
//! minutes to load on a laptop.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use url::Url;

use super::OllamaError;
use crate::proxy::wire::lines::{preview, FrameError, LineDecoder, MAX_NDJSON_LINE_BYTES};
use crate::proxy::wire::openai::{ChatChunk, ChatCompletion};
use crate::proxy::wire::sse::SseDecoder;

/// How long a probe may take before the server counts as not answering.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// Connect timeout for every call: the server is (almost always) on this machine.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Upper bound for a call that waits on the model (load, chat).
pub const MODEL_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// One installed model, from `GET /api/tags`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct InstalledModel {
    pub name: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub digest: String,
}

/// What `POST /api/show` says about a model, reduced to what we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelDetails {
    /// `completion`, `tools`, `thinking`, `vision`, …
    pub capabilities: Vec<String>,
    /// `model_info["general.architecture"]`, e.g. `gptoss`.
    pub architecture: Option<String>,
    /// The trained context: `model_info["<architecture>.context_length"]`, and only that key.
    pub trained_context: Option<u64>,
    /// The attention geometry, for sizing the KV cache (None when `model_info` lacks it).
    pub kv: Option<super::kv::KvShape>,
}

impl ModelDetails {
    pub fn has_capability(&self, name: &str) -> bool {
        self.capabilities.iter().any(|c| c == name)
    }

    /// Build from the raw `/api/show` body. Only the exact `<arch>.context_length` key
    /// counts: keys such as `<arch>.rope.scaling.original_context_length` merely contain
    /// the words and mean something else.
    pub fn from_show(body: &Value) -> ModelDetails {
        let capabilities = body
            .get("capabilities")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let info = body.get("model_info");
        let architecture = info
            .and_then(|i| i.get("general.architecture"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let trained_context = architecture.as_ref().and_then(|arch| {
            info?
                .get(format!("{arch}.context_length"))
                .and_then(Value::as_u64)
        });
        ModelDetails {
            capabilities,
            architecture,
            trained_context,
            kv: info.and_then(super::kv::KvShape::from_model_info),
        }
    }
}

/// One model loaded in memory, from `GET /api/ps`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
pub struct LoadedModel {
    pub name: String,
    #[serde(default)]
    pub model: String,
    #[serde(default)]
    pub size: u64,
    #[serde(default)]
    pub size_vram: u64,
    /// The context that actually took effect (OLLAMA_CONTEXT_LENGTH capped by the
    /// model's trained context, or the server's memory-based default).
    #[serde(default)]
    pub context_length: Option<u64>,
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// One line of the `POST /api/pull` NDJSON stream.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PullLine {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub digest: Option<String>,
    #[serde(default)]
    pub total: Option<u64>,
    #[serde(default)]
    pub completed: Option<u64>,
    /// Ollama reports pull failures as an `{"error": …}` line with HTTP 200.
    #[serde(default)]
    pub error: Option<String>,
}

/// An async client for one Ollama server.
#[derive(Debug, Clone)]
pub struct OllamaClient {
    base: Url,
    http: reqwest::Client,
    probe_timeout: Duration,
}

impl OllamaClient {
    /// A client for the server at `base` (e.g. from [`super::base_url_from_env`]).
    pub fn new(base: Url) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .no_proxy() // Ollama is local; a corporate proxy must not see these calls
            .build()
            .expect("reqwest client with static settings");
        OllamaClient {
            base,
            http,
            probe_timeout: PROBE_TIMEOUT,
        }
    }

    /// Change how long probes wait (tests and `doctor` use a shorter one).
    pub fn with_probe_timeout(mut self, timeout: Duration) -> Self {
        self.probe_timeout = timeout;
        self
    }

    pub fn base_url(&self) -> &Url {
        &self.base
    }

    fn url(&self, path: &str) -> Url {
        // `base` may carry a path prefix (OLLAMA_HOST=https://host/prefix).
        let mut u = self.base.clone();
        let prefix = u.path().trim_end_matches('/').to_owned();
        u.set_path(&format!("{prefix}{path}"));
        u
    }

    /// `GET path` and decode the answer as `T` (decode errors name the URL).
    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, OllamaError> {
        let url = self.url(path);
        let req = self.http.get(url.clone()).timeout(self.probe_timeout);
        decode_json(send_checked(req, &url).await?, &url).await
    }

    async fn post_json(
        &self,
        path: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, OllamaError> {
        let url = self.url(path);
        let req = self.http.post(url.clone()).timeout(timeout).json(body);
        decode_json(send_checked(req, &url).await?, &url).await
    }

    /// `GET /api/version`: the server's version string, e.g. `0.12.3`.
    pub async fn version(&self) -> Result<String, OllamaError> {
        let v: Value = self.get_json("/api/version").await?;
        v.get("version")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| OllamaError::Decode {
                url: self.url("/api/version").to_string(),
                message: format!("no \"version\" in {v}"),
            })
    }

    /// `GET /api/tags`: the installed models.
    pub async fn tags(&self) -> Result<Vec<InstalledModel>, OllamaError> {
        #[derive(Deserialize)]
        struct Tags {
            #[serde(default)]
            models: Vec<InstalledModel>,
        }
        Ok(self.get_json::<Tags>("/api/tags").await?.models)
    }

    /// Is `model` installed? `gpt-oss` and `gpt-oss:latest` name the same model.
    pub async fn has_model(&self, model: &str) -> Result<bool, OllamaError> {
        let want = normalize_model_name(model);
        Ok(self.tags().await?.iter().any(|m| {
            normalize_model_name(&m.name) == want || normalize_model_name(&m.model) == want
        }))
    }

    /// `POST /api/show`: capabilities and trained context of `model`.
    pub async fn show(&self, model: &str) -> Result<ModelDetails, OllamaError> {
        let v = self
            .post_json("/api/show", &json!({ "model": model }), self.probe_timeout)
            .await?;
        Ok(ModelDetails::from_show(&v))
    }

    /// `GET /api/ps`: the models loaded right now.
    pub async fn ps(&self) -> Result<Vec<LoadedModel>, OllamaError> {
        #[derive(Deserialize)]
        struct Ps {
            #[serde(default)]
            models: Vec<LoadedModel>,
        }
        Ok(self.get_json::<Ps>("/api/ps").await?.models)
    }

    /// The loaded entry for `model` in `/api/ps`, if it is loaded.
    pub async fn loaded(&self, model: &str) -> Result<Option<LoadedModel>, OllamaError> {
        let want = normalize_model_name(model);
        Ok(self.ps().await?.into_iter().find(|m| {
            normalize_model_name(&m.name) == want || normalize_model_name(&m.model) == want
        }))
    }

    /// `POST /api/pull` with streaming: one [`PullLine`] per NDJSON line. An
    /// `{"error":…}` line (sent with HTTP 200) ends the stream with
    /// [`OllamaError::Pull`]. Dropping the stream cancels the download; the next pull
    /// resumes it.
    pub async fn pull_stream(
        &self,
        model: &str,
    ) -> Result<impl Stream<Item = Result<PullLine, OllamaError>> + Send + Unpin, OllamaError> {
        let url = self.url("/api/pull");
        let req = self
            .http
            .post(url.clone())
            .json(&json!({ "model": model, "stream": true }));
        let resp = send_checked(req, &url).await?;
        let url = url.to_string();
        let lines = ndjson_lines(resp.bytes_stream(), url.clone());
        Ok(Box::pin(lines.map(move |line| {
            let line = line?;
            let parsed: PullLine =
                serde_json::from_str(&line).map_err(|e| OllamaError::Decode {
                    url: url.clone(),
                    message: format!("{e} in line {:?}", preview(line.as_bytes(), 200)),
                })?;
            match parsed.error {
                Some(message) => Err(OllamaError::Pull { message }),
                None => Ok(parsed),
            }
        })))
    }

    /// Load `model` into memory without generating (`POST /api/chat` with no messages),
    /// keeping it loaded for `keep_alive` (Ollama duration syntax such as `30m`).
    pub async fn load(&self, model: &str, keep_alive: Option<&str>) -> Result<(), OllamaError> {
        let mut body = json!({ "model": model, "messages": [], "stream": false });
        if let Some(k) = keep_alive {
            body["keep_alive"] = json!(k);
        }
        self.post_json("/api/chat", &body, MODEL_TIMEOUT).await?;
        Ok(())
    }

    /// `POST /api/chat` (non-streaming) with a caller-built body; returns Ollama's answer.
    pub async fn chat(&self, body: &Value) -> Result<Value, OllamaError> {
        let mut body = body.clone();
        body["stream"] = json!(false);
        self.post_json("/api/chat", &body, MODEL_TIMEOUT).await
    }

    /// `POST /v1/chat/completions`, non-streaming.
    pub async fn chat_completion(&self, body: &Value) -> Result<ChatCompletion, OllamaError> {
        chat_completion_at(&self.http, self.url("/v1/chat/completions"), body).await
    }

    /// `POST /v1/chat/completions` streamed: the chunks in order. A stream that ends
    /// without `data: [DONE]` has failed and ends with [`OllamaError::Truncated`].
    pub async fn chat_completion_stream(
        &self,
        body: &Value,
    ) -> Result<
        impl Stream<Item = Result<ChatChunk<'static>, OllamaError>> + Send + Unpin,
        OllamaError,
    > {
        chat_completion_stream_at(&self.http, self.url("/v1/chat/completions"), body).await
    }

    /// The underlying HTTP client, for callers that talk to an OpenAI-compatible
    /// endpoint elsewhere (e.g. the proxy) with the same settings.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }
}

/// `POST` a non-streaming chat completion to any OpenAI-compatible `url`.
pub async fn chat_completion_at(
    http: &reqwest::Client,
    url: Url,
    body: &Value,
) -> Result<ChatCompletion, OllamaError> {
    let mut body = body.clone();
    body["stream"] = json!(false);
    let req = http.post(url.clone()).timeout(MODEL_TIMEOUT).json(&body);
    decode_json(send_checked(req, &url).await?, &url).await
}

/// Stream a chat completion from any OpenAI-compatible `url` (SSE `data:` lines).
pub async fn chat_completion_stream_at(
    http: &reqwest::Client,
    url: Url,
    body: &Value,
) -> Result<impl Stream<Item = Result<ChatChunk<'static>, OllamaError>> + Send + Unpin, OllamaError>
{
    let mut body = body.clone();
    body["stream"] = json!(true);
    body["stream_options"] = json!({ "include_usage": true });
    let req = http.post(url.clone()).timeout(MODEL_TIMEOUT).json(&body);
    let resp = send_checked(req, &url).await?;
    let u = url.to_string();
    let lines = sse_data(resp.bytes_stream(), u.clone());
    let state = (Box::pin(lines), false, u);
    Ok(Box::pin(futures_util::stream::unfold(
        state,
        |(mut lines, done, u)| async move {
            if done {
                return None;
            }
            let data = match lines.next().await {
                None => {
                    let err = OllamaError::Truncated { url: u.clone() };
                    return Some((Err(err), (lines, true, u)));
                }
                Some(Err(e)) => return Some((Err(e), (lines, true, u))),
                Some(Ok(data)) => data,
            };
            if data == "[DONE]" {
                return None;
            }
            let item = serde_json::from_str::<Value>(&data)
                .map_err(|e| OllamaError::Decode {
                    url: u.clone(),
                    message: e.to_string(),
                })
                .and_then(|v| {
                    if let Some(err) = v.get("error") {
                        return Err(OllamaError::Status {
                            url: u.clone(),
                            status: 200,
                            message: error_text(&err.to_string()),
                        });
                    }
                    ChatChunk::deserialize(v).map_err(|e| OllamaError::Decode {
                        url: u.clone(),
                        message: e.to_string(),
                    })
                });
            let stop = item.is_err();
            Some((item, (lines, stop, u)))
        },
    )))
}

/// Send `req` to `url`: a failure to connect or send, or a non-2xx answer (with
/// Ollama's `{"error"}` text), becomes the matching [`OllamaError`].
async fn send_checked(
    req: reqwest::RequestBuilder,
    url: &Url,
) -> Result<reqwest::Response, OllamaError> {
    let resp = req.send().await.map_err(|e| transport(url, e))?;
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let body = resp.text().await.unwrap_or_default();
    Err(OllamaError::Status {
        url: url.to_string(),
        status: status.as_u16(),
        message: error_text(&body),
    })
}

/// Read a whole answer as JSON `T`; a body that is not one is a decode error naming
/// `url`, a body cut short by the timeout a timeout.
async fn decode_json<T: serde::de::DeserializeOwned>(
    resp: reqwest::Response,
    url: &Url,
) -> Result<T, OllamaError> {
    let bytes = resp.bytes().await.map_err(|e| transport(url, e))?;
    serde_json::from_slice(&bytes).map_err(|e| OllamaError::Decode {
        url: url.to_string(),
        message: e.to_string(),
    })
}

fn transport(url: &Url, e: reqwest::Error) -> OllamaError {
    if e.is_timeout() {
        OllamaError::Timeout {
            url: url.to_string(),
        }
    } else if e.is_connect() {
        OllamaError::Unreachable {
            url: url.to_string(),
            source: e,
        }
    } else {
        OllamaError::Transport {
            url: url.to_string(),
            source: e,
        }
    }
}

/// What an async reader takes from a byte stream: NDJSON lines, or SSE events' data.
trait Frames: Send + 'static {
    /// The next frame `input` completes (advancing it), as trimmed text; blank frames
    /// are skipped.
    fn next_frame(&mut self, input: &mut &[u8]) -> Option<Result<String, FrameError>>;
    /// The stream ended: a last frame left unterminated.
    fn end(&mut self) -> Result<Option<String>, FrameError>;
}

fn text(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

impl Frames for LineDecoder {
    fn next_frame(&mut self, input: &mut &[u8]) -> Option<Result<String, FrameError>> {
        loop {
            match self.next_line(input)? {
                Ok(line) => match text(line.bytes()) {
                    Some(t) => return Some(Ok(t)),
                    None => continue,
                },
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn end(&mut self) -> Result<Option<String>, FrameError> {
        Ok(self.finish().and_then(text))
    }
}

impl Frames for SseDecoder {
    fn next_frame(&mut self, input: &mut &[u8]) -> Option<Result<String, FrameError>> {
        loop {
            match self.next(input)? {
                Ok(event) => match text(event.data) {
                    Some(t) => return Some(Ok(t)),
                    None => continue,
                },
                Err(e) => return Some(Err(e)),
            }
        }
    }

    fn end(&mut self) -> Result<Option<String>, FrameError> {
        Ok(self.finish()?.and_then(|event| text(event.data)))
    }
}

/// Ollama's NDJSON (`/api/pull`): one trimmed line per item, each at most
/// [`MAX_NDJSON_LINE_BYTES`].
fn ndjson_lines(
    bytes: impl Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
    url: String,
) -> impl Stream<Item = Result<String, OllamaError>> + Send {
    frames(bytes, url, LineDecoder::new(MAX_NDJSON_LINE_BYTES))
}

/// An SSE stream's events, as their `data` text (comments and blank events skipped;
/// also read by `up`'s smoke probes through the proxy).
pub(crate) fn sse_data(
    bytes: impl Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
    url: String,
) -> impl Stream<Item = Result<String, OllamaError>> + Send {
    frames(bytes, url, SseDecoder::default())
}

/// Decode a byte stream with `decoder`, chunk by chunk. A transport error or a frame
/// over the decoder's limit ends the stream after being reported.
fn frames<F: Frames>(
    bytes: impl Stream<Item = reqwest::Result<bytes::Bytes>> + Send + 'static,
    url: String,
    decoder: F,
) -> impl Stream<Item = Result<String, OllamaError>> + Send {
    // The chunk being read and how far; `ended` once nothing more may come.
    let state = (Box::pin(bytes), decoder, bytes::Bytes::new(), 0, false);
    futures_util::stream::unfold(state, move |state| {
        let url = url.clone();
        async move {
            let (mut bytes, mut decoder, mut chunk, mut at, ended) = state;
            if ended {
                return None;
            }
            let oversize = |frame| OllamaError::Oversize {
                url: url.clone(),
                frame,
            };
            loop {
                let mut input = &chunk[at..];
                let frame = decoder.next_frame(&mut input);
                at = chunk.len() - input.len();
                match frame {
                    Some(Ok(t)) => return Some((Ok(t), (bytes, decoder, chunk, at, false))),
                    Some(Err(e)) => {
                        return Some((Err(oversize(e)), (bytes, decoder, chunk, at, true)))
                    }
                    None => {}
                }
                match bytes.next().await {
                    Some(Ok(next)) => (chunk, at) = (next, 0),
                    Some(Err(e)) => {
                        let err = if e.is_timeout() {
                            OllamaError::Timeout { url }
                        } else {
                            OllamaError::Transport { url, source: e }
                        };
                        // End after reporting: a broken stream cannot continue.
                        return Some((Err(err), (bytes, decoder, chunk, at, true)));
                    }
                    None => {
                        let last = decoder.end().map_err(oversize).transpose()?;
                        return Some((last, (bytes, decoder, chunk, at, true)));
                    }
                }
            }
        }
    })
}

/// The message in an error body: Ollama's `{"error":"text"}` (native API), the
/// OpenAI-style `{"error":{"message":"text"}}`, a FastAPI `{"detail":"text"}`, read
/// as the proxy reads them ([`crate::proxy::wire::openai::error_message`]); anything else
/// is shown as is (its first 500 characters).
pub fn error_text(body: &str) -> String {
    let trimmed = body.trim();
    serde_json::from_str::<Value>(trimmed)
        .ok()
        .and_then(|v| crate::proxy::wire::openai::error_message(&v))
        .unwrap_or_else(|| trimmed.chars().take(500).collect())
}

/// `name` → `name:latest`; names with a tag are kept. Ollama treats both as one model.
pub fn normalize_model_name(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_owned()
    } else {
        format!("{name}:latest")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trained_context_uses_the_exact_architecture_key() {
        let body = json!({
            "capabilities": ["completion", "tools", "thinking"],
            "model_info": {
                "general.architecture": "gptoss",
                "gptoss.rope.scaling.original_context_length": 4096,
                "gptoss.context_length": 131072,
                "llama.context_length": 8192
            }
        });
        let d = ModelDetails::from_show(&body);
        assert_eq!(d.trained_context, Some(131072));
        assert_eq!(d.architecture.as_deref(), Some("gptoss"));
        assert!(d.has_capability("tools"));

        // Only a decoy key: no trained context, rather than a wrong one.
        let decoy = json!({"model_info": {"general.architecture": "gptoss", "gptoss.rope.scaling.original_context_length": 4096}});
        assert_eq!(ModelDetails::from_show(&decoy).trained_context, None);
    }

    #[test]
    fn error_bodies() {
        assert_eq!(
            error_text(r#"{"error":"model not found"}"#),
            "model not found"
        );
        assert_eq!(
            error_text(r#"{"error":{"message":"error parsing tool call","type":"api_error"}}"#),
            "error parsing tool call"
        );
        assert_eq!(error_text("plain"), "plain");
        // vLLM and other FastAPI servers: the proxy read this; the client showed the JSON.
        assert_eq!(error_text(r#"{"detail":"Not Found"}"#), "Not Found");
        assert_eq!(
            error_text(r#"{"error":{"code":5}}"#),
            r#"{"error":{"code":5}}"#
        );
    }

    #[test]
    fn model_names() {
        assert_eq!(normalize_model_name("gpt-oss"), "gpt-oss:latest");
        assert_eq!(normalize_model_name("gpt-oss:20b"), "gpt-oss:20b");
        assert_eq!(
            normalize_model_name("registry.local:5000/ns/m"),
            "registry.local:5000/ns/m:latest"
        );
    }
}
