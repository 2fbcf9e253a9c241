//! The typed view of a validated config.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::env_vars::EnvVars;
use serde_json::Value;

pub const DEFAULT_HOST: &str = "127.0.0.1";
pub const DEFAULT_PORT: u16 = 3456;
pub const DEFAULT_LONG_CONTEXT_THRESHOLD: u64 = 60_000;
pub const DEFAULT_MODEL: &str = "gpt-oss:20b";
pub const DEFAULT_CONTEXT_LENGTH: u32 = 32_768;
/// claude-code-router's default request timeout.
pub const DEFAULT_API_TIMEOUT_MS: u64 = 600_000;
pub const DEFAULT_CONNECT_TIMEOUT_MS: u64 = 10_000;
/// Local prefill of a long prompt can take minutes, so the idle limit is generous.
pub const DEFAULT_STREAM_IDLE_TIMEOUT_MS: u64 = 600_000;

/// A validated, interpolated config.
#[derive(Debug, Clone)]
pub struct Config {
    pub providers: Vec<Provider>,
    pub router: Router,
    /// `APIKEY`: when set, clients must present it.
    pub api_key: Option<String>,
    pub host: String,
    pub port: u16,
    pub log: bool,
    pub log_level: String,
    pub api_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    pub stream_idle_timeout_ms: u64,
    /// `ALLOWED_ORIGINS`: browser origins (`http://localhost:5173`) whose requests the
    /// proxy serves; a request from any other origin is refused.
    pub allowed_origins: Vec<String>,
    /// `MAX_REQUESTS_IN_FLIGHT`: API requests served at once; the excess get a 429.
    pub max_requests_in_flight: usize,
    /// `fallback`: scenario name (`default`, `think`, …) to the models tried in order.
    pub fallback: BTreeMap<String, Vec<ModelRef>>,
    /// `fallback.after_local_failures` / `fallback.cloud_requests`.
    pub quality: QualityFallback,
    pub ollama: OllamaSettings,
    /// Providers whose `api_key` names a variable set nowhere (neither the environment
    /// nor the secrets store): provider name to that variable. They stay in `providers`
    /// so routes still validate, but the proxy does not call them.
    pub keyless: BTreeMap<String, String>,
    /// `Clients`: named client keys (team mode), each with its own daily limits.
    pub clients: Vec<Client>,
    /// `ClientsTimezone`: the fixed UTC offset the clients' days are counted in
    /// (`"+02:00"`; default UTC).
    pub clients_timezone: chrono::FixedOffset,
    /// `ServerMode`: this proxy serves a team (written by `init --server`); it will not
    /// start without `Clients`.
    pub server_mode: bool,
    /// The whole interpolated document, for extension keys read by one module only
    /// (for example `Pricing`).
    pub raw: Value,
}

impl Config {
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.name == name)
    }

    /// The variable a provider's key is missing from, when it is disabled for that.
    pub fn missing_key(&self, provider: &str) -> Option<&str> {
        self.keyless.get(provider).map(String::as_str)
    }

    /// Whether requests must authenticate: an `APIKEY` or any `Clients` entry.
    pub fn auth_required(&self) -> bool {
        self.api_key.as_deref().is_some_and(|k| !k.is_empty()) || !self.clients.is_empty()
    }

    pub fn client(&self, name: &str) -> Option<&Client> {
        self.clients.iter().find(|c| c.name == name)
    }

    /// The fallback chain for a scenario, or the `default` chain when it has none.
    pub fn fallback_for(&self, scenario: &str) -> &[ModelRef] {
        self.fallback
            .get(scenario)
            .or_else(|| self.fallback.get("default"))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }
}

/// One `Clients[]` entry: a named key (only its SHA-256 is kept) and its daily limits.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub name: String,
    /// SHA-256 of the key ([`crate::config::client_keys`]).
    pub key_hash: [u8; 32],
    /// Requests per day; None: no limit.
    pub daily_requests: Option<u64>,
    /// USD of cloud use per day; None: no limit. Past it, only local providers serve.
    pub daily_cloud_usd: Option<f64>,
}

/// The quality fallback: after `after_local_failures` unusable local answers (tool
/// calls that could not be repaired, empty or cut-off answers) among a session's
/// recent local requests, its next `cloud_requests` requests go to the fallback chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QualityFallback {
    /// 0 turns it off.
    pub after_local_failures: u32,
    pub cloud_requests: u32,
}

impl Default for QualityFallback {
    fn default() -> Self {
        QualityFallback {
            after_local_failures: 2,
            cloud_requests: 10,
        }
    }
}

/// How the proxy talks to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI chat-completions: the proxy translates both ways.
    OpenAi,
    /// Anthropic Messages: the proxy passes requests through.
    Anthropic,
}

/// `Providers[].context_editing`: what happens to a request too long for the
/// provider's `context_window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContextEditing {
    /// Clear the oldest tool results until it fits (and further, to the target); hand
    /// it to `Router.longContext` only when that cannot make it fit.
    #[default]
    Auto,
    /// Hand it to `Router.longContext` first (when set and it fits there), and clear
    /// only when there is none: the cloud before the edit.
    CloudFirst,
    /// Never edit: refuse with Anthropic's "prompt is too long", so Claude Code compacts.
    Off,
}

impl ContextEditing {
    /// The names the config file uses.
    pub const NAMES: [&'static str; 3] = ["auto", "cloud_first", "off"];

    pub fn parse(name: &str) -> Option<ContextEditing> {
        match name {
            "auto" => Some(ContextEditing::Auto),
            "cloud_first" => Some(ContextEditing::CloudFirst),
            "off" => Some(ContextEditing::Off),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ContextEditing::Auto => "auto",
            ContextEditing::CloudFirst => "cloud_first",
            ContextEditing::Off => "off",
        }
    }
}

/// Tokens kept free for the answer by default. gpt-oss reasons before it answers: at
/// Claude Code's default effort a turn's reasoning plus a tool call runs to a few
/// thousand tokens, which the old 2,048 cut short.
pub const DEFAULT_OUTPUT_RESERVE: u32 = 4_096;

/// The share of the window a prompt is cleared down to once it does not fit: the
/// other 30% (less the reserve) is room for the next turns before the next clear.
pub const DEFAULT_CONTEXT_TARGET_PERCENT: u8 = 70;

#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    /// The full endpoint URL, e.g. `http://127.0.0.1:11434/v1/chat/completions`; the
    /// first of [`Provider::replicas`] when the config gives a list.
    pub api_base_url: String,
    /// `api_base_url` given as a list: servers of the same model, each URL with its
    /// stable hash ([`crate::proxy::replicas`] keeps a session on one). Empty for one URL.
    pub replicas: Arc<[Replica]>,
    /// `replica_max_in_flight`: requests one replica takes at once before a session's
    /// request goes to another (None: no limit; the server queues).
    pub replica_max_in_flight: Option<u32>,
    /// None or empty for local servers that need no key.
    pub api_key: Option<String>,
    pub models: Vec<String>,
    pub transformer: Option<Value>,
    pub kind: ProviderKind,
    /// Tokens the server can hold (prompt + output); enables the context guard.
    pub context_window: Option<u32>,
    /// Upper bound for a request's `max_tokens`.
    pub max_tokens: Option<u32>,
    /// Send thinking from history back as `reasoning_content` (DeepSeek-style APIs need it).
    pub reasoning_in_history: bool,
    /// What the proxy does with a request that does not fit `context_window`
    /// (`context_editing`; see [`crate::proxy::context_edit`]).
    pub context_editing: ContextEditing,
    /// Tokens kept free for the answer when fitting a prompt to the window
    /// (`output_reserve`, default [`DEFAULT_OUTPUT_RESERVE`]).
    pub output_reserve: u32,
    /// Once a prompt does not fit, it is cleared down to this share of the window
    /// (`context_target_percent`, default [`DEFAULT_CONTEXT_TARGET_PERCENT`]).
    pub context_target_percent: u8,
    /// `local`: whether the provider counts as the local model (free, and the one the
    /// quality fallback moves away from). None: a loopback URL is local. Set it for a
    /// model server elsewhere on the LAN (`true`) or a cloud tunnel on localhost
    /// (`false`).
    pub local: Option<bool>,
    /// `api_base_url` parsed when the config was loaded ([`Provider::parsed_url`]).
    pub url_parsed: ParsedUrl,
}

/// A URL parsed once, when the config is loaded: the proxy reads the provider's host
/// and port on every request (which HTTP client, is it Ollama), and parsing the text
/// each time showed in the profile. It remembers the text it was parsed from, so a
/// copy of the provider given another URL (count_tokens) is parsed afresh, never stale.
#[derive(Debug, Clone, Default)]
pub struct ParsedUrl {
    text: String,
    url: Option<url::Url>,
}

impl ParsedUrl {
    pub fn new(text: &str) -> ParsedUrl {
        ParsedUrl {
            text: text.to_owned(),
            url: url::Url::parse(text).ok(),
        }
    }
}

/// The most URLs one provider may list: the proxy orders them per request on the
/// stack, and more replicas than this belong behind a load balancer.
pub const MAX_REPLICAS: usize = 32;

/// One URL of a provider whose `api_base_url` is a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replica {
    pub url: String,
    /// 64-bit FNV-1a of `url`: stable across restarts and builds (unlike the std
    /// hasher), so a session lands on the same replica after a proxy restart.
    pub hash: u64,
}

impl Replica {
    pub fn new(url: String) -> Replica {
        use std::hash::Hasher;
        let mut h = fnv::FnvHasher::default();
        h.write(url.as_bytes());
        Replica {
            hash: h.finish(),
            url,
        }
    }
}

impl Provider {
    /// `api_base_url` parsed (None when it does not parse): the copy made when the
    /// config was loaded, or a fresh parse when the URL has changed since.
    pub fn parsed_url(&self) -> std::borrow::Cow<'_, Option<url::Url>> {
        self.parse_url(&self.api_base_url)
    }

    /// `url` parsed: the copy made with the config when it is the URL that was loaded,
    /// else a fresh parse (a replica's URL, or a copy given another URL).
    pub fn parse_url(&self, url: &str) -> std::borrow::Cow<'_, Option<url::Url>> {
        if self.url_parsed.text == url {
            std::borrow::Cow::Borrowed(&self.url_parsed.url)
        } else {
            std::borrow::Cow::Owned(url::Url::parse(url).ok())
        }
    }

    /// How the provider's address reads in `doctor` and `status`: its URL, or the
    /// first one and the number of replicas.
    pub fn display_urls(&self) -> String {
        match self.replicas.len() {
            0 | 1 => self.display_url(),
            n => format!("{} ({n} replicas)", self.display_url()),
        }
    }

    /// `api_base_url` fit to show (in errors, logs, `/health`): user and password
    /// replaced by `***`, and every query value too (`?key=…` is a common way to pass
    /// a key).
    pub fn display_url(&self) -> String {
        redact_url(&self.api_base_url)
    }
}

/// `url` with its credentials and query values replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return "<a URL that does not parse>".to_owned();
    };
    if !parsed.username().is_empty() || parsed.password().is_some() {
        let _ = parsed.set_username("***");
        let _ = parsed.set_password(None);
    }
    if parsed.query().is_some() {
        let keys: Vec<String> = parsed.query_pairs().map(|(k, _)| k.into_owned()).collect();
        let mut pairs = parsed.query_pairs_mut();
        pairs.clear();
        for k in &keys {
            pairs.append_pair(k, "***");
        }
    }
    parsed.to_string()
}

/// A `"provider,model"` reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelRef {
    pub provider: String,
    pub model: String,
}

impl ModelRef {
    /// Parse `"provider,model"`; the model part may itself contain commas-free text such
    /// as `gpt-oss:20b`. Returns None unless both parts are non-empty.
    pub fn parse(s: &str) -> Option<ModelRef> {
        let (provider, model) = s.split_once(',')?;
        let (provider, model) = (provider.trim(), model.trim());
        if provider.is_empty() || model.is_empty() {
            return None;
        }
        Some(ModelRef {
            provider: provider.to_owned(),
            model: model.to_owned(),
        })
    }
}

impl std::fmt::Display for ModelRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{},{}", self.provider, self.model)
    }
}

/// `Router`: which model serves each scenario. Unset scenarios fall through to default.
#[derive(Debug, Clone)]
pub struct Router {
    pub default: ModelRef,
    pub background: Option<ModelRef>,
    pub think: Option<ModelRef>,
    pub long_context: Option<ModelRef>,
    pub long_context_threshold: u64,
    pub web_search: Option<ModelRef>,
    pub image: Option<ModelRef>,
}

/// `Ollama`: how `up`, `init` and the services run Ollama. Every value has a default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OllamaSettings {
    pub model: String,
    pub context_length: u32,
    /// KV memory grows with parallel × context, so one slot by default.
    pub num_parallel: u32,
    pub max_loaded_models: u32,
    /// `Some` forces flash attention on or off; `None` (the default) leaves
    /// `OLLAMA_FLASH_ATTENTION` unset, which Ollama reads as "automatic": on where its
    /// hardware check says the GPU and model support it. Forcing it skips that check.
    pub flash_attention: Option<bool>,
    /// Keeps the model loaded between Claude Code turns (Ollama's default is 5m).
    pub keep_alive: String,
}

impl Default for OllamaSettings {
    fn default() -> Self {
        OllamaSettings {
            model: DEFAULT_MODEL.to_owned(),
            context_length: DEFAULT_CONTEXT_LENGTH,
            num_parallel: 1,
            max_loaded_models: 1,
            flash_attention: None,
            keep_alive: "30m".to_owned(),
        }
    }
}

impl OllamaSettings {
    /// The tuned environment for `ollama serve`, identical for the child `up` spawns and
    /// for the launchd/systemd services.
    pub fn tuned_env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![
            (
                EnvVars::OLLAMA_CONTEXT_LENGTH,
                self.context_length.to_string(),
            ),
            (EnvVars::OLLAMA_NUM_PARALLEL, self.num_parallel.to_string()),
            (
                EnvVars::OLLAMA_MAX_LOADED_MODELS,
                self.max_loaded_models.to_string(),
            ),
        ];
        if let Some(on) = self.flash_attention {
            env.push((
                EnvVars::OLLAMA_FLASH_ATTENTION,
                if on { "1" } else { "0" }.to_owned(),
            ));
        }
        env.push((EnvVars::OLLAMA_KEEP_ALIVE, self.keep_alive.clone()));
        env
    }
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_credentials_and_query_values() {
        assert_eq!(
            redact_url("https://user:pa55@proxy.example/v1/messages?key=sk-1&x=2"),
            "https://***@proxy.example/v1/messages?key=***&x=***"
        );
        assert_eq!(
            redact_url("http://127.0.0.1:11434/v1/chat/completions"),
            "http://127.0.0.1:11434/v1/chat/completions"
        );
        assert!(!redact_url("not a url sk-secret").contains("sk-secret"));
    }
}
