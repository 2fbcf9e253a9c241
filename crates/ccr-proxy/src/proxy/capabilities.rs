//! What a local model can take: vision, thinking, tools and its context, so the
//! request is translated for the model as it is rather than as if it took
//! everything Claude Code sends.
//!
//! Two sources, neither of which guesses the server from its name or port:
//! * **asked:** `POST /api/show` where the server has it (Ollama: `capabilities` and
//!   `model_info["<arch>.context_length"]`), else `GET /props` where it has that
//!   (llama-server: `modalities.vision`, `chat_template_caps.supports_tools`,
//!   `default_generation_settings.n_ctx`), else `GET /v1/models` (vLLM: the model's
//!   `max_model_len`, nothing more). Other servers: unknown.
//! * **told:** an error that names a missing capability (Ollama's `"M" does not
//!   support thinking`, llama-server's `image input is not supported`), matched on the
//!   message because the status differs by server and path. The attempt is retried once
//!   without that part and the answer is remembered.
//!
//! Remembered per provider URL and model, for the proxy's lifetime.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use serde_json::{json, Value};

use super::fallback::AttemptFailure;

/// How long asking a server for a model's capabilities may take before the request
/// goes on without knowing (a server that is loading a model answers late).
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// What is known about one model; `None` is "not known", which is treated as able.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Capabilities {
    pub vision: Option<bool>,
    pub thinking: Option<bool>,
    pub tools: Option<bool>,
    /// Ollama: the trained context; llama-server: the context it runs with.
    pub context: Option<u32>,
    /// The server answered `/api/show` with capabilities: it is Ollama, whatever the
    /// provider's name or port.
    pub ollama: bool,
}

impl Capabilities {
    /// Nothing known: every part of a request is sent.
    pub const UNKNOWN: Capabilities = Capabilities {
        vision: None,
        thinking: None,
        tools: None,
        context: None,
        ollama: false,
    };

    /// Known to have no vision: images must not reach the model.
    pub fn lacks_vision(&self) -> bool {
        self.vision == Some(false)
    }

    /// Known to have no thinking: no `reasoning_effort` (a 400 from Ollama).
    pub fn lacks_thinking(&self) -> bool {
        self.thinking == Some(false)
    }

    /// Ollama's `/api/show` answer. None when it has no `capabilities` list (another
    /// server answering the path).
    pub fn from_show(show: &Value) -> Option<Capabilities> {
        let caps: Vec<&str> = show
            .get("capabilities")?
            .as_array()?
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let info = show.get("model_info");
        let context = info
            .and_then(|i| i.get("general.architecture"))
            .and_then(Value::as_str)
            .and_then(|arch| info?.get(format!("{arch}.context_length"))?.as_u64())
            .and_then(|n| u32::try_from(n).ok());
        Some(Capabilities {
            vision: Some(caps.contains(&"vision")),
            thinking: Some(caps.contains(&"thinking")),
            tools: Some(caps.contains(&"tools")),
            context,
            ollama: true,
        })
    }

    /// llama-server's `/props` answer. None without `modalities` (another server). It
    /// takes `reasoning_effort` from any model without failing, so thinking stays
    /// unknown.
    pub fn from_props(props: &Value) -> Option<Capabilities> {
        let vision = props.get("modalities")?.get("vision")?.as_bool()?;
        let tools = props
            .get("chat_template_caps")
            .and_then(|c| c.get("supports_tools"))
            .and_then(Value::as_bool);
        let context = props
            .get("default_generation_settings")
            .and_then(|s| s.get("n_ctx"))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok());
        Some(Capabilities {
            vision: Some(vision),
            thinking: None,
            tools,
            context,
            ollama: false,
        })
    }

    /// vLLM's `GET /v1/models`: the card of `model` (`owned_by: "vllm"`) carries
    /// `max_model_len`, the context the server runs with. Nothing else is told there.
    pub fn from_models(models: &Value, model: &str) -> Option<Capabilities> {
        let card = models
            .get("data")?
            .as_array()?
            .iter()
            .find(|c| c.get("id").and_then(Value::as_str) == Some(model))?;
        if card.get("owned_by").and_then(Value::as_str) != Some("vllm") {
            return None;
        }
        let context = card
            .get("max_model_len")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok());
        Some(Capabilities {
            context,
            ..Capabilities::UNKNOWN
        })
    }

    /// Remember that the model lacks `missing`.
    pub fn without(mut self, missing: Missing) -> Capabilities {
        match missing {
            Missing::Vision => self.vision = Some(false),
            Missing::Thinking => self.thinking = Some(false),
        }
        self
    }
}

/// A capability an upstream error says the model lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Vision,
    Thinking,
}

impl Missing {
    /// What the proxy does about it, for logs and `doctor`.
    pub fn handling(self) -> &'static str {
        match self {
            Missing::Vision => "images go to Router.image, or become a note the model reads",
            Missing::Thinking => "requests are sent without reasoning_effort",
        }
    }
}

/// The capability an upstream's error text says is missing. Matched on the message,
/// never the status: Ollama answers a thinking request 400, llama-server answers an
/// image 500, and Ollama passes the runner's image error on with the runner's status.
pub fn missing_from_error(message: &str) -> Option<Missing> {
    let lower = message.to_ascii_lowercase();
    if lower.contains("does not support thinking") {
        return Some(Missing::Thinking);
    }
    let about_images = lower.contains("image") || lower.contains("vision");
    let unsupported = lower.contains("not supported")
        || lower.contains("does not support")
        || lower.contains("unsupported");
    (about_images && unsupported).then_some(Missing::Vision)
}

/// The capability a failed attempt's error names, if any (only an answer with an error
/// status has a message to read).
pub fn missing_in(failure: &AttemptFailure) -> Option<Missing> {
    match failure {
        AttemptFailure::Status { body, .. } => missing_from_error(body),
        _ => None,
    }
}

/// The server's root URL for an endpoint URL such as
/// `http://127.0.0.1:11434/v1/chat/completions` (everything before `/v1/`).
pub fn server_root(api_base_url: &str) -> Option<String> {
    let mut url = url::Url::parse(api_base_url).ok()?;
    let path = url.path().to_owned();
    let root = match path.find("/v1/") {
        Some(at) => &path[..at],
        None => path.trim_end_matches('/'),
    };
    url.set_path(root);
    url.set_query(None);
    Some(url.as_str().trim_end_matches('/').to_owned())
}

/// What was learnt, per provider URL and model.
#[derive(Debug, Default)]
pub struct CapabilityCache {
    known: Mutex<HashMap<(String, String), Capabilities>>,
}

impl CapabilityCache {
    pub fn get(&self, url: &str, model: &str) -> Option<Capabilities> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.get(&(url.to_owned(), model.to_owned())).copied()
    }

    pub fn insert(&self, url: &str, model: &str, caps: Capabilities) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known.insert((url.to_owned(), model.to_owned()), caps);
    }

    /// Remember that `model` at `url` lacks `missing`; returns the updated view.
    pub fn learn(&self, url: &str, model: &str, missing: Missing) -> Capabilities {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        let entry = known.entry((url.to_owned(), model.to_owned())).or_default();
        *entry = entry.without(missing);
        *entry
    }
}

/// Ask the server at `root` about `model`: `/api/show`, then `/props`, then
/// `/v1/models`. `None` when the
/// server could not be reached (try again next time); unknown capabilities when it
/// answered but has neither route.
pub async fn probe(client: &reqwest::Client, root: &str, model: &str) -> Option<Capabilities> {
    let show = client
        .post(format!("{root}/api/show"))
        .json(&json!({ "model": model }))
        .timeout(PROBE_TIMEOUT)
        .send()
        .await
        .ok()?;
    if show.status().is_success() {
        if let Some(caps) = json_of(show)
            .await
            .as_ref()
            .and_then(Capabilities::from_show)
        {
            return Some(caps);
        }
    }
    let props = client
        .get(format!("{root}/props"))
        .timeout(PROBE_TIMEOUT)
        .send()
        .await;
    let caps = match props {
        Ok(r) if r.status().is_success() => {
            json_of(r).await.as_ref().and_then(Capabilities::from_props)
        }
        _ => None,
    };
    if caps.is_some() {
        return caps;
    }
    let models = client
        .get(format!("{root}/v1/models"))
        .timeout(PROBE_TIMEOUT)
        .send()
        .await;
    let caps = match models {
        Ok(r) if r.status().is_success() => json_of(r)
            .await
            .as_ref()
            .and_then(|v| Capabilities::from_models(v, model)),
        _ => None,
    };
    Some(caps.unwrap_or(Capabilities::UNKNOWN))
}

/// A small JSON answer (an `/api/show` of a big model is about 1 MB with its template).
async fn json_of(response: reqwest::Response) -> Option<Value> {
    let bytes = crate::proxy::upstream::read_capped(response, 8 * 1024 * 1024)
        .await
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vllm_models_give_the_served_context_of_that_model_only() {
        let models = json!({"object": "list", "data": [
            {"id": "openai/gpt-oss-20b", "object": "model", "owned_by": "vllm", "max_model_len": 65536},
            {"id": "other", "object": "model", "owned_by": "vllm", "max_model_len": 4096}]});
        let caps = Capabilities::from_models(&models, "openai/gpt-oss-20b").unwrap();
        assert_eq!(caps.context, Some(65_536));
        assert_eq!((caps.vision, caps.tools, caps.ollama), (None, None, false));
        assert_eq!(Capabilities::from_models(&models, "missing"), None);
        let not_vllm = json!({"data": [{"id": "m", "owned_by": "library", "max_model_len": 1}]});
        assert_eq!(Capabilities::from_models(&not_vllm, "m"), None);
    }

    #[test]
    fn ollama_show_gives_each_capability_and_the_trained_context() {
        let show = json!({
            "capabilities": ["completion", "tools", "thinking"],
            "model_info": {"general.architecture": "gptoss",
                "gptoss.rope.scaling.original_context_length": 4096,
                "gptoss.context_length": 131072}
        });
        let caps = Capabilities::from_show(&show).unwrap();
        assert_eq!(
            caps,
            Capabilities {
                vision: Some(false),
                thinking: Some(true),
                tools: Some(true),
                context: Some(131_072),
                ollama: true,
            }
        );
        assert!(caps.lacks_vision() && !caps.lacks_thinking());
        let gemma = json!({"capabilities": ["completion", "vision"]});
        let caps = Capabilities::from_show(&gemma).unwrap();
        assert!(caps.lacks_thinking() && !caps.lacks_vision());
        assert_eq!(Capabilities::from_show(&json!({"error": "x"})), None);
    }

    #[test]
    fn llama_server_props_give_vision_and_leave_thinking_unknown() {
        let props = json!({"modalities": {"vision": false, "audio": false},
            "chat_template_caps": {"supports_tools": true},
            "default_generation_settings": {"n_ctx": 8192}});
        let caps = Capabilities::from_props(&props).unwrap();
        assert!(caps.lacks_vision() && !caps.ollama);
        assert_eq!(caps.thinking, None);
        assert_eq!((caps.tools, caps.context), (Some(true), Some(8192)));
        assert_eq!(Capabilities::from_props(&json!({"n_ctx": 1})), None);
    }

    #[test]
    fn errors_are_read_by_their_message() {
        let cases = [
            (
                r#""qwen2.5:7b" does not support thinking"#,
                Some(Missing::Thinking),
            ),
            (
                r#"{"error":{"code":500,"message":"image input is not supported - hint: if this is unexpected, you may need to provide the mmproj","type":"server_error"}}"#,
                Some(Missing::Vision),
            ),
            ("model does not support images", Some(Missing::Vision)),
            ("error parsing tool call: raw='{'", None),
            ("invalid image input", None),
            ("model 'x:latest' not found", None),
        ];
        for (message, expected) in cases {
            assert_eq!(missing_from_error(message), expected, "{message}");
        }
    }

    #[test]
    fn the_root_is_what_comes_before_v1() {
        let root = |u| server_root(u).unwrap();
        assert_eq!(
            root("http://127.0.0.1:11434/v1/chat/completions"),
            "http://127.0.0.1:11434"
        );
        assert_eq!(
            root("http://box:8080/llama/v1/chat/completions?x=1"),
            "http://box:8080/llama"
        );
        assert_eq!(root("http://[::1]:8080/"), "http://[::1]:8080");
    }

    #[test]
    fn the_cache_remembers_per_url_and_model() {
        let cache = CapabilityCache::default();
        assert_eq!(cache.get("u", "m"), None);
        let learnt = cache.learn("u", "m", Missing::Thinking);
        assert!(learnt.lacks_thinking() && !learnt.lacks_vision());
        cache.learn("u", "m", Missing::Vision);
        assert!(cache.get("u", "m").unwrap().lacks_vision());
        assert!(cache.get("u", "m").unwrap().lacks_thinking());
        assert_eq!(cache.get("v", "m"), None);
    }
}
