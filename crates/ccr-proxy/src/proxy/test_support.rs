//! Shared fixtures of the proxy's unit tests: one two-provider config (a 32k local
//! Ollama and a windowless Anthropic) and request builders.

use serde_json::{json, Value};

use super::wire::anthropic::MessagesRequest;
use crate::config::{Config, ConfigFile, ModelRef};

/// The two providers with `router` as `Router`.
pub fn config(router: Value) -> Config {
    config_with(router, json!({}))
}

/// As [`config`], plus top-level keys from `extra` (e.g. `fallback`).
pub fn config_with(router: Value, extra: Value) -> Config {
    let mut doc = json!({
        "Providers": [
            {"name": "ollama", "api_base_url": "http://127.0.0.1:11434/v1/chat/completions", "api_key": "", "models": ["gpt-oss:20b", "qwen3:8b"], "context_window": 32768},
            {"name": "anthropic", "api_base_url": "https://api.anthropic.com/v1/messages", "api_key": "sk-test", "models": ["claude-sonnet-4-5", "claude-haiku-4-5"]}
        ],
        "Router": router,
    });
    for (k, v) in extra.as_object().expect("extra is an object") {
        doc[k] = v.clone();
    }
    ConfigFile::new(std::path::Path::new("/t/config.json"), doc)
        .resolve_with(&|_| None)
        .expect("the fixture config is valid")
}

/// A request from `body`, with one user message and Claude Code's model name unless
/// `body` sets them.
pub fn req(body: Value) -> MessagesRequest {
    let mut body = body;
    if body.get("messages").is_none() {
        body["messages"] = json!([{"role": "user", "content": "hi"}]);
    }
    if body.get("model").is_none() {
        body["model"] = json!("claude-opus-4-8");
    }
    serde_json::from_value(body).expect("the fixture request parses")
}

pub fn mr(s: &str) -> ModelRef {
    ModelRef::parse(s).expect("provider,model")
}
