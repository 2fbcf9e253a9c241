//! The model server a team box runs (`init --server`): vLLM, llama.cpp's
//! `llama-server` or Ollama, found on its default loopback port or at the URL given,
//! and what it says about itself (the served model, the context a request may use).
//!
//! How each one is told apart (checked against the real servers and their source):
//! * Ollama answers `GET /api/version` with `{"version": …}`; `/api/tags` lists the
//!   models, `/api/ps` the loaded ones with the `context_length` that took effect.
//! * vLLM's `GET /v1/models` lists `{"id", "owned_by": "vllm", "max_model_len"}`
//!   (`ModelCard` in `vllm/entrypoints/openai/protocol.py`).
//! * llama-server answers `GET /props` with `default_generation_settings.n_ctx` (the
//!   context of one slot: `-c` divided by `-np`) and `total_slots`; its `/v1/models`
//!   says `owned_by: "llamacpp"` and has no `/api/version` (404).

use std::time::Duration;

use serde_json::Value;

/// The engines `init --server` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineKind {
    Vllm,
    LlamaServer,
    Ollama,
}

impl EngineKind {
    pub const ALL: [EngineKind; 3] = [
        EngineKind::Vllm,
        EngineKind::LlamaServer,
        EngineKind::Ollama,
    ];

    /// The name on the command line, and the provider's name in the config.
    pub fn name(self) -> &'static str {
        match self {
            EngineKind::Vllm => "vllm",
            EngineKind::LlamaServer => "llama-server",
            EngineKind::Ollama => "ollama",
        }
    }

    /// The port it listens on unless told otherwise.
    pub fn default_port(self) -> u16 {
        match self {
            EngineKind::Vllm => 8000,
            EngineKind::LlamaServer => 8080,
            EngineKind::Ollama => 11434,
        }
    }
}

/// A running engine and what it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Engine {
    pub kind: EngineKind,
    /// Scheme, host and port, e.g. `http://127.0.0.1:8000`.
    pub base: String,
    /// The model it serves (the first, when it lists several).
    pub model: Option<String>,
    /// Tokens one request may use, when the engine reports it.
    pub context_window: Option<u32>,
    /// Requests served at once, when the engine reports it (llama-server's slots).
    pub slots: Option<u32>,
}

impl Engine {
    /// The OpenAI-compatible endpoint the proxy forwards to.
    pub fn chat_url(&self) -> String {
        format!("{}/v1/chat/completions", self.base)
    }
}

/// Why no engine could be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    #[error("no model server answers on {}", probed.join(", "))]
    NoneFound { probed: Vec<String> },
    #[error("{url} does not answer as {} ({seen})", kind.name())]
    NotThatEngine {
        url: String,
        kind: EngineKind,
        seen: String,
    },
    #[error("--engine-url {url:?} is not an http(s) URL")]
    BadUrl { url: String },
    #[error("{} at {url} serves no model yet", kind.name())]
    NoModel { url: String, kind: EngineKind },
}

impl crate::diagnostic::Hint for EngineError {
    fn hint(&self) -> Option<String> {
        Some(match self {
            EngineError::NoneFound { .. } => "start the engine first (docs/team.md shows the vLLM, llama-server and Ollama commands), or name it: --engine vllm|llama-server|ollama --engine-url http://HOST:PORT".into(),
            EngineError::NotThatEngine { .. } => "check --engine and --engine-url name the same server, or leave out --engine to detect it".into(),
            EngineError::BadUrl { .. } => "give it as http://127.0.0.1:8000 (the server's address, without /v1/…)".into(),
            EngineError::NoModel { .. } => "load a model in it (for Ollama: `ollama pull MODEL`), or pass --model NAME".into(),
        })
    }
}

/// `--engine-url` as a base: scheme, host and port; a trailing `/v1` or `/` dropped.
pub fn engine_base(url: &str) -> Result<String, EngineError> {
    let bad = || EngineError::BadUrl {
        url: url.to_owned(),
    };
    let parsed = url::Url::parse(url.trim()).map_err(|_| bad())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(bad());
    }
    let path = parsed.path().trim_end_matches('/');
    let path = path.strip_suffix("/v1").unwrap_or(path);
    let origin = parsed.origin().ascii_serialization();
    Ok(format!("{origin}{path}"))
}

/// Probe the given loopback ports (default: each engine's) and identify what answers.
pub async fn detect(ports: &[u16], timeout: Duration) -> Vec<Engine> {
    let mut found = Vec::new();
    for port in ports {
        if let Some(e) = identify(&format!("http://127.0.0.1:{port}"), timeout).await {
            found.push(e);
        }
    }
    found
}

/// The engine at `base`, whichever it is.
pub async fn identify(base: &str, timeout: Duration) -> Option<Engine> {
    let http = client(timeout)?;
    if let Some(v) = get(&http, base, "/api/version").await {
        if v.get("version").and_then(Value::as_str).is_some() {
            return Some(ollama(&http, base).await);
        }
    }
    let models = get(&http, base, "/v1/models").await;
    let first = models
        .as_ref()
        .and_then(|m| m.pointer("/data/0"))
        .cloned()
        .unwrap_or(Value::Null);
    if first.get("owned_by").and_then(Value::as_str) == Some("vllm") {
        return Some(Engine {
            kind: EngineKind::Vllm,
            base: base.to_owned(),
            model: first.get("id").and_then(Value::as_str).map(str::to_owned),
            context_window: as_u32(first.get("max_model_len")),
            slots: None,
        });
    }
    let props = get(&http, base, "/props").await?;
    let settings = props.get("default_generation_settings")?;
    Some(Engine {
        kind: EngineKind::LlamaServer,
        base: base.to_owned(),
        model: first
            .get("id")
            .or_else(|| props.get("model_alias"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        context_window: as_u32(settings.get("n_ctx")),
        slots: as_u32(props.get("total_slots")),
    })
}

/// The engine at `base`, which must be `kind`.
pub async fn expect(
    base: &str,
    kind: EngineKind,
    timeout: Duration,
) -> Result<Engine, EngineError> {
    match identify(base, timeout).await {
        Some(e) if e.kind == kind => Ok(e),
        other => Err(EngineError::NotThatEngine {
            url: base.to_owned(),
            kind,
            seen: match other {
                Some(e) => format!("it is {}", e.kind.name()),
                None => "nothing recognisable answers there".to_owned(),
            },
        }),
    }
}

/// Ollama's first model and, when it is loaded, the context it was loaded with.
async fn ollama(http: &reqwest::Client, base: &str) -> Engine {
    let model = get(http, base, "/api/tags")
        .await
        .and_then(|t| t.pointer("/models/0/name")?.as_str().map(str::to_owned));
    let loaded = get(http, base, "/api/ps").await;
    let context_window = loaded.as_ref().and_then(|ps| {
        ps.get("models")?
            .as_array()?
            .iter()
            .find(|m| model.is_some() && m.get("name").and_then(Value::as_str) == model.as_deref())
            .and_then(|m| as_u32(m.get("context_length")))
    });
    Engine {
        kind: EngineKind::Ollama,
        base: base.to_owned(),
        model,
        context_window,
        slots: None,
    }
}

fn client(timeout: Duration) -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .ok()
}

async fn get(http: &reqwest::Client, base: &str, path: &str) -> Option<Value> {
    let resp = http.get(format!("{base}{path}")).send().await.ok()?;
    if !resp.status().is_success() {
        return None;
    }
    resp.json().await.ok()
}

fn as_u32(v: Option<&Value>) -> Option<u32> {
    v?.as_u64().and_then(|n| u32::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_urls_become_bases() {
        assert_eq!(
            engine_base("http://127.0.0.1:8000/v1/").unwrap(),
            "http://127.0.0.1:8000"
        );
        assert_eq!(
            engine_base("http://gpu-1:8080").unwrap(),
            "http://gpu-1:8080"
        );
        assert!(engine_base("gpu-1:8080").is_err());
        assert!(engine_base("ftp://gpu-1").is_err());
    }
}
