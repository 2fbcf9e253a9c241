//! The edits `init` makes to the router config, as a pure function on the JSON tree so
//! that running it twice with the same answers changes nothing, and everything the user
//! added (other providers, keys, Router entries) survives.

use serde_json::{json, Map, Value};

use crate::config::ConfigFile;
use crate::env_vars::EnvVars;

/// The local Ollama provider `init` writes.
pub const OLLAMA_PROVIDER: &str = "ollama";
pub const OLLAMA_CHAT_URL: &str = "http://127.0.0.1:11434/v1/chat/completions";
/// The cloud fallback provider `init` writes when asked.
pub const ANTHROPIC_PROVIDER: &str = "anthropic";
pub const ANTHROPIC_MESSAGES_URL: &str = "https://api.anthropic.com/v1/messages";
/// The Haiku-class cloud model for `Router.background` when cloud fallback is on:
/// Claude Code's subagents (sent with this name by `code`) then run in the cloud and
/// never evict the main conversation from a one-slot local server's prompt cache
/// (docs/performance.md, "Keeping the local prompt cache warm").
pub const BACKGROUND_CLOUD_MODEL: &str = "claude-haiku-4-5";
/// A reference, not the key: the key comes from the environment or the secrets store.
pub const ANTHROPIC_KEY_REF: &str = "$ANTHROPIC_API_KEY";
/// The variable [`ANTHROPIC_KEY_REF`] names.
pub const ANTHROPIC_KEY_VAR: &str = EnvVars::ANTHROPIC_API_KEY;

const TEMPLATE: &str = include_str!("../../templates/config.json");

/// The answers of the `init` wizard that shape the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answers {
    pub model: String,
    pub context_length: u32,
    pub port: u16,
    pub cloud_fallback: bool,
    /// The cloud model for think, long context and fallback (default: the catalogue's
    /// current Sonnet).
    pub cloud_model: String,
    /// The Ollama chat URL when `OLLAMA_HOST` names the server (None: the default
    /// `127.0.0.1:11434`). The `ollama` provider follows it, so the proxy talks to the
    /// Ollama that `up` starts.
    pub ollama_chat_url: Option<String>,
    /// `Ollama.num_parallel` to write (None: leave the config's).
    pub num_parallel: Option<u32>,
    /// The local provider's `context_editing` to write (None: leave the config's).
    pub context_editing: Option<&'static str>,
}

/// The document a fresh config starts from (`templates/config.json`).
pub fn template() -> Value {
    ConfigFile::parse(TEMPLATE).expect("templates/config.json is valid JSON")
}

/// Why the answers could not be applied.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    #[error("{path} is {found}, but init needs an object there; fix or remove it and re-run")]
    NotAnObject { path: &'static str, found: String },
    #[error("Providers is not a list; make it a list ([ … ]) and re-run")]
    ProvidersNotAList,
}

pub(super) fn object<'a>(
    parent: &'a mut Map<String, Value>,
    key: &'static str,
) -> Result<&'a mut Map<String, Value>, EditError> {
    let v = parent.entry(key).or_insert_with(|| json!({}));
    if v.is_null() {
        *v = json!({});
    }
    let found = v.to_string();
    v.as_object_mut()
        .ok_or(EditError::NotAnObject { path: key, found })
}

/// Set `key` only when the current value differs (keeps `"PORT": "3456"` as written).
pub(super) fn set_number(map: &mut Map<String, Value>, key: &str, n: u64) {
    let same = match map.get(key) {
        Some(Value::Number(v)) => v.as_u64() == Some(n),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok() == Some(n),
        _ => false,
    };
    if !same {
        map.insert(key.to_owned(), json!(n));
    }
}

pub(super) fn find_provider<'a>(
    list: &'a mut [Value],
    name: &str,
) -> Option<&'a mut Map<String, Value>> {
    list.iter_mut()
        .filter_map(Value::as_object_mut)
        .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
}

fn ensure_model(provider: &mut Map<String, Value>, model: &str) {
    let models = provider.entry("models").or_insert_with(|| json!([]));
    if !models.is_array() {
        *models = json!([]);
    }
    let list = models.as_array_mut().expect("just made an array");
    if !list.iter().any(|m| m.as_str() == Some(model)) {
        list.push(json!(model));
    }
}

/// Apply the answers to `doc` in place.
pub fn apply(doc: &mut Value, a: &Answers) -> Result<(), EditError> {
    if doc.is_null() {
        *doc = template();
    }
    let root = doc.as_object_mut().ok_or(EditError::NotAnObject {
        path: "the config",
        found: "not an object".into(),
    })?;
    set_number(root, "PORT", a.port as u64);

    let ollama = object(root, "Ollama")?;
    if ollama.get("model").and_then(Value::as_str) != Some(a.model.as_str()) {
        ollama.insert("model".into(), json!(a.model));
    }
    set_number(ollama, "context_length", a.context_length as u64);
    if let Some(n) = a.num_parallel {
        set_number(ollama, "num_parallel", u64::from(n));
    }
    apply_providers(root, a)?;
    apply_routes(root, a)
}

/// The local Ollama provider (with the model and context), and the Anthropic provider
/// when cloud fallback is on; other providers stay as they are.
fn apply_providers(root: &mut Map<String, Value>, a: &Answers) -> Result<(), EditError> {
    let providers = root.entry("Providers").or_insert_with(|| json!([]));
    let list = providers
        .as_array_mut()
        .ok_or(EditError::ProvidersNotAList)?;
    match find_provider(list, OLLAMA_PROVIDER) {
        Some(p) => {
            match &a.ollama_chat_url {
                Some(url) if p.get("api_base_url").and_then(Value::as_str) != Some(url) => {
                    p.insert("api_base_url".into(), json!(url));
                }
                _ => {
                    p.entry("api_base_url")
                        .or_insert_with(|| json!(OLLAMA_CHAT_URL));
                }
            }
            ensure_model(p, &a.model);
            set_number(p, "context_window", a.context_length as u64);
            if let Some(mode) = a.context_editing {
                p.insert("context_editing".into(), json!(mode));
            }
        }
        None => {
            let mut p = json!({
                "name": OLLAMA_PROVIDER,
                "api_base_url": a.ollama_chat_url.as_deref().unwrap_or(OLLAMA_CHAT_URL),
                "api_key": "",
                "models": [a.model],
                "context_window": a.context_length,
            });
            if let Some(mode) = a.context_editing {
                p["context_editing"] = json!(mode);
            }
            list.push(p);
        }
    }
    if a.cloud_fallback {
        match find_provider(list, ANTHROPIC_PROVIDER) {
            Some(p) => {
                ensure_model(p, &a.cloud_model);
                ensure_model(p, BACKGROUND_CLOUD_MODEL);
            }
            None => list.push(json!({
                "name": ANTHROPIC_PROVIDER,
                "api_base_url": ANTHROPIC_MESSAGES_URL,
                "api_key": ANTHROPIC_KEY_REF,
                "models": [a.cloud_model, BACKGROUND_CLOUD_MODEL],
            })),
        }
    }
    Ok(())
}

/// `Router` and `fallback`: the default to the local model, and with cloud fallback
/// think, longContext, image, background and the default fallback chain to the cloud.
/// `image` matters because the default local model (gpt-oss) has no vision: without
/// it a pasted screenshot only becomes a note the local model reads.
fn apply_routes(root: &mut Map<String, Value>, a: &Answers) -> Result<(), EditError> {
    let cloud = format!("{ANTHROPIC_PROVIDER},{}", a.cloud_model);
    // Routes to the anthropic provider follow the chosen cloud model; routes elsewhere
    // are the user's and stay. Turning cloud off removes only exactly what init writes.
    let ours = |v: Option<&Value>| match v {
        None => true,
        Some(Value::String(s)) => s.starts_with(&format!("{ANTHROPIC_PROVIDER},")),
        Some(Value::Array(items)) => {
            items.len() == 1
                && items[0]
                    .as_str()
                    .is_some_and(|s| s.starts_with(&format!("{ANTHROPIC_PROVIDER},")))
        }
        _ => false,
    };
    let router = object(root, "Router")?;
    let default = format!("{OLLAMA_PROVIDER},{}", a.model);
    if router.get("default").and_then(Value::as_str) != Some(default.as_str()) {
        router.insert("default".into(), json!(default));
    }
    let background = format!("{ANTHROPIC_PROVIDER},{BACKGROUND_CLOUD_MODEL}");
    for (key, target) in [
        ("think", &cloud),
        ("longContext", &cloud),
        ("image", &cloud),
        ("background", &background),
    ] {
        let current = router.get(key);
        if a.cloud_fallback {
            if ours(current) && current.and_then(Value::as_str) != Some(target.as_str()) {
                router.insert(key.into(), json!(target));
            }
        } else if current.and_then(Value::as_str) == Some(target.as_str()) {
            // Only undo what init itself would have written.
            router.remove(key);
        }
    }
    let fallback = object(root, "fallback")?;
    let current = fallback.get("default");
    if a.cloud_fallback {
        if ours(current) && current != Some(&json!([cloud])) {
            fallback.insert("default".into(), json!([cloud]));
        }
    } else if current == Some(&json!([cloud])) {
        fallback.remove("default");
    }
    if fallback.is_empty() {
        root.remove("fallback");
    }
    Ok(())
}

/// Does the config already protect the proxy with an `APIKEY`?
pub fn has_api_key(doc: &Value) -> bool {
    doc.get("APIKEY")
        .and_then(Value::as_str)
        .is_some_and(|k| !k.trim().is_empty())
}

/// Set `APIKEY` to `key` unless the config already has one (the user's is kept).
pub fn ensure_api_key(doc: &mut Value, key: &str) {
    if has_api_key(doc) {
        return;
    }
    if let Some(root) = doc.as_object_mut() {
        root.insert("APIKEY".into(), json!(key));
    }
}

/// The OS gave no random bytes for a new key.
#[derive(Debug, thiserror::Error)]
#[error("cannot create an API key: the system's random source failed ({0})")]
pub struct NoRandomness(String);

/// A new random proxy key: 32 bytes from the OS, hex-encoded.
pub fn new_api_key() -> Result<String, NoRandomness> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| NoRandomness(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The config's `PORT`, when it has a valid one.
pub fn current_port(doc: &Value) -> Option<u16> {
    match doc.get("PORT")? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .and_then(|p| u16::try_from(p).ok())
}

/// Read the answers a config already holds (the defaults for a re-run of the wizard).
pub fn current_answers(doc: &Value) -> Option<Answers> {
    let ollama = doc.get("Ollama")?;
    let num = |v: Option<&Value>| -> Option<u64> {
        match v? {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    };
    let anthropic = doc
        .get("Providers")
        .and_then(Value::as_array)
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.get("name").and_then(Value::as_str) == Some(ANTHROPIC_PROVIDER))
        });
    let routed = doc
        .pointer("/Router/think")
        .and_then(Value::as_str)
        .and_then(|s| {
            s.strip_prefix(&format!("{ANTHROPIC_PROVIDER},"))
                .map(str::to_owned)
        });
    let listed = anthropic
        .and_then(|p| p.pointer("/models/0"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let cloud_model = routed
        .or(listed)
        .unwrap_or_else(|| crate::catalogue::default_cloud_model().to_owned());
    Some(Answers {
        model: ollama.get("model")?.as_str()?.to_owned(),
        context_length: num(ollama.get("context_length"))? as u32,
        port: current_port(doc).unwrap_or(crate::config::DEFAULT_PORT),
        cloud_fallback: anthropic.is_some(),
        cloud_model,
        ollama_chat_url: None,
        num_parallel: None,
        context_editing: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn answers(cloud: bool) -> Answers {
        Answers {
            model: "gpt-oss:20b".into(),
            context_length: 32768,
            port: 3456,
            cloud_fallback: cloud,
            cloud_model: crate::catalogue::default_cloud_model().to_owned(),
            ollama_chat_url: None,
            num_parallel: None,
            context_editing: None,
        }
    }

    #[test]
    fn an_api_key_is_added_once_and_a_users_key_kept() {
        let mut doc = template();
        let key = new_api_key().unwrap();
        assert_eq!(key.len(), 64);
        assert_ne!(key, new_api_key().unwrap());
        ensure_api_key(&mut doc, &key);
        assert_eq!(doc["APIKEY"], key.as_str());
        ensure_api_key(&mut doc, "other");
        assert_eq!(doc["APIKEY"], key.as_str(), "an existing key is kept");
    }

    #[test]
    fn fresh_config_validates_and_reapplying_is_a_no_op() {
        let mut doc = Value::Null;
        apply(&mut doc, &answers(true)).unwrap();
        let once = doc.clone();
        apply(&mut doc, &answers(true)).unwrap();
        assert_eq!(doc, once);
        let cfg = ConfigFile::new(Path::new("/c.json"), doc)
            .resolve_with(&|n| (n == "ANTHROPIC_API_KEY").then(|| "sk-test".into()))
            .unwrap();
        assert_eq!(cfg.router.default.to_string(), "ollama,gpt-oss:20b");
        assert_eq!(
            cfg.router.think.as_ref().unwrap().to_string(),
            "anthropic,claude-sonnet-5-5"
        );
        // gpt-oss has no vision: a pasted screenshot goes to the cloud model.
        assert_eq!(
            cfg.router.image.as_ref().unwrap().to_string(),
            "anthropic,claude-sonnet-5-5"
        );
        assert_eq!(cfg.provider("ollama").unwrap().context_window, Some(32768));
        assert_eq!(cfg.ollama.context_length, 32768);
        assert_eq!(
            cfg.provider("anthropic").unwrap().api_key.as_deref(),
            Some("sk-test")
        );
        // Subagents (and anything else sent as Haiku) go to the cloud Haiku.
        assert_eq!(
            cfg.router.background.as_ref().unwrap().to_string(),
            "anthropic,claude-haiku-4-5"
        );
        assert!(crate::catalogue::find(BACKGROUND_CLOUD_MODEL).is_some());
        // The key is referenced, not stored.
        assert_eq!(once["Providers"][1]["api_key"], ANTHROPIC_KEY_REF);
        assert_eq!(current_answers(&once), Some(answers(true)));
    }

    #[test]
    fn user_providers_and_keys_survive() {
        let mut doc = json!({
            "PORT": "3456",
            "APIKEY": "secret",
            "Providers": [{"name": "deepseek", "api_base_url": "https://api.deepseek.com/chat/completions", "api_key": "sk-x", "models": ["deepseek-chat"]},
                          {"name": "ollama", "api_base_url": "http://10.0.0.5:11434/v1/chat/completions", "models": ["qwen3:8b"], "note": "mine"}],
            "Router": {"default": "deepseek,deepseek-chat", "background": "deepseek,deepseek-chat"},
            "CustomKey": {"a": 1}
        });
        apply(&mut doc, &answers(false)).unwrap();
        assert_eq!(doc["PORT"], "3456");
        assert_eq!(doc["APIKEY"], "secret");
        assert_eq!(doc["CustomKey"], json!({"a": 1}));
        assert_eq!(doc["Providers"][0]["api_key"], "sk-x");
        assert_eq!(
            doc["Providers"][1]["api_base_url"],
            "http://10.0.0.5:11434/v1/chat/completions"
        );
        assert_eq!(
            doc["Providers"][1]["models"],
            json!(["qwen3:8b", "gpt-oss:20b"])
        );
        assert_eq!(doc["Providers"][1]["note"], "mine");
        assert_eq!(doc["Router"]["background"], "deepseek,deepseek-chat");
        assert_eq!(doc["Router"]["default"], "ollama,gpt-oss:20b");
        assert!(doc.get("fallback").is_none());
    }

    #[test]
    fn turning_cloud_off_removes_only_what_init_wrote() {
        let mut doc = Value::Null;
        apply(&mut doc, &answers(true)).unwrap();
        doc["Router"]["think"] = json!("anthropic,claude-opus-4-1");
        apply(&mut doc, &answers(false)).unwrap();
        assert_eq!(doc["Router"]["think"], "anthropic,claude-opus-4-1");
        assert!(doc["Router"].get("longContext").is_none());
        assert!(doc["Router"].get("image").is_none());
        assert!(doc["Router"].get("background").is_none());
        assert!(doc.get("fallback").is_none());
    }

    #[test]
    fn another_cloud_model_moves_the_routes_init_wrote() {
        let mut doc = Value::Null;
        apply(&mut doc, &answers(true)).unwrap();
        let opus = Answers {
            cloud_model: "claude-opus-4-8".into(),
            ..answers(true)
        };
        apply(&mut doc, &opus).unwrap();
        assert_eq!(doc["Router"]["think"], "anthropic,claude-opus-4-8");
        assert_eq!(doc["Router"]["longContext"], "anthropic,claude-opus-4-8");
        assert_eq!(doc["Router"]["image"], "anthropic,claude-opus-4-8");
        assert_eq!(
            doc["fallback"]["default"],
            json!(["anthropic,claude-opus-4-8"])
        );
        assert_eq!(
            doc["Providers"][1]["models"],
            json!(["claude-sonnet-5-5", "claude-haiku-4-5", "claude-opus-4-8"])
        );
        assert_eq!(current_answers(&doc), Some(opus));
    }

    #[test]
    fn non_object_router_is_a_clear_error() {
        let mut doc = json!({"Router": "oops"});
        let err = apply(&mut doc, &answers(false)).unwrap_err();
        assert!(err.to_string().contains("Router"), "{err}");
    }
}
