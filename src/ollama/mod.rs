//! Ollama: a typed HTTP client, and everything `up` needs to get a server running with
//! the right context and the model pulled, without ever touching a server we did not
//! start.
//!
//! * [`host`]: the base URL from `OLLAMA_HOST`, with Ollama's own conventions.
//! * [`client`]: [`OllamaClient`], typed calls for `/api/version`, `/api/tags`,
//!   `/api/show`, `/api/ps`, `/api/pull` (streamed), `/api/chat`, `/v1/chat/completions`.
//! * [`version`]: the minimum Ollama version a model family needs.
//!
//! Nothing here prints: long operations report through callbacks, and `commands::up`
//! does the printing.

pub mod advice;
pub mod client;
pub mod context;
pub mod disk;
pub mod host;
pub mod kv;
pub mod lifecycle;
pub mod owner;
pub mod pull;
pub mod serve;
pub mod version;

pub use client::{
    normalize_model_name, InstalledModel, LoadedModel, ModelDetails, OllamaClient, PullLine,
};
pub use host::{base_url_from_env, is_local, parse_ollama_host, DEFAULT_BASE_URL};

/// What can go wrong talking to Ollama.
#[derive(Debug, thiserror::Error)]
pub enum OllamaError {
    #[error("Ollama is not answering at {url}")]
    Unreachable {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("Ollama at {url} did not answer in time")]
    Timeout { url: String },
    #[error("request to {url} failed")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{url} answered HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
    #[error("unexpected answer from {url}: {message}")]
    Decode { url: String, message: String },
    #[error("the stream from {url} ended before [DONE]")]
    Truncated { url: String },
    /// A stream line or event over the decoder's limit (a server that never ends a
    /// line must not grow memory without bound).
    #[error("{url} sent {frame}; reading stopped there")]
    Oversize {
        url: String,
        frame: crate::proxy::wire::lines::FrameError,
    },
    /// An `{"error":…}` line in the pull stream (Ollama sends these with HTTP 200).
    #[error("pull failed: {message}")]
    Pull { message: String },
}

impl OllamaError {
    /// Nothing is listening (as opposed to a server that answered badly).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, OllamaError::Unreachable { .. })
    }
}
