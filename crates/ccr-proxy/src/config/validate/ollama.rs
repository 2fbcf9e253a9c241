//! The `Ollama` object: the model and server settings `up` starts Ollama with.

use serde_json::{Map, Value};

use super::super::model::OllamaSettings;
use super::Checker;

pub(super) fn build_ollama(c: &mut Checker, root: &Map<String, Value>) -> OllamaSettings {
    let mut s = OllamaSettings::default();
    let fix = "write \"Ollama\": {\"model\": \"gpt-oss:20b\", \"context_length\": 32768}";
    let Some(obj) = c.opt_object(root, "Ollama", fix) else {
        return s;
    };
    if let Some(m) = c.opt_str(obj, "model", "Ollama.model") {
        s.model = m;
    }
    if let Some(v) = c.opt_u64(obj, "context_length", "Ollama.context_length") {
        if (512..=u32::MAX as u64).contains(&v) {
            s.context_length = v as u32;
        } else {
            c.add(
                "Ollama.context_length",
                format!("{v} is not a usable context length"),
                "use at least 512 tokens; 32768 is the recommended value for Claude Code",
            );
        }
    }
    if let Some(v) = c.opt_u64(obj, "num_parallel", "Ollama.num_parallel") {
        s.num_parallel = v.clamp(1, 64) as u32;
    }
    if let Some(v) = c.opt_u64(obj, "max_loaded_models", "Ollama.max_loaded_models") {
        s.max_loaded_models = v.clamp(1, 64) as u32;
    }
    if let Some(v) = c.opt_bool(obj, "flash_attention", "Ollama.flash_attention") {
        s.flash_attention = Some(v);
    }
    if let Some(v) = c.opt_str(obj, "keep_alive", "Ollama.keep_alive") {
        s.keep_alive = v;
    }
    s
}
