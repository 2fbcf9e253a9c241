//! The local models `init` offers, beyond the default gpt-oss:20b: what each one is
//! (tool-call dialect, capabilities, trained context, download size, attention
//! geometry), each fact with where it was read, so `init` can say what fits this
//! machine before anything is pulled. What fits is decided by the same function that
//! recommends the context length ([`crate::ollama::kv::recommend`]).
//!
//! Once a model is pulled, Ollama's own `/api/show` is the truth (the proxy asks it:
//! `proxy::capabilities`); this list only speaks for models not pulled yet.

use serde_json::Value;

use crate::ollama::kv::{
    self, ContextAdvice, KvCacheType, KvShape, Machine, Recommendation, SlotAdvice,
};

/// How the model writes a tool call, and so what the repair layer may meet as text
/// when the server's parser misses one (`proxy::repair::text_call`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolDialect {
    /// gpt-oss's harmony frames (`<|channel|>commentary to=functions.NAME …`).
    Harmony,
    /// Qwen's XML (`<tool_call><function=NAME><parameter=KEY>…`).
    QwenXml,
    /// Gemma 4's native function calling, parsed by Ollama's gemma4 parser.
    Gemma4,
}

/// One model of the list.
#[derive(Debug, Clone, Copy)]
pub struct LocalModel {
    /// The Ollama name, as `ollama pull` takes it.
    pub name: &'static str,
    pub dialect: ToolDialect,
    /// As `ollama show` lists them.
    pub capabilities: &'static [&'static str],
    pub trained_context: u64,
    /// The download (about the weights' size in memory).
    pub bytes: u64,
    /// The GGUF keys of the attention geometry, as `/api/show`'s `model_info` gives
    /// them; None where no source gave them (the KV cache is then unknown until pulled).
    model_info: Option<&'static str>,
    /// Where each fact was read.
    pub sources: &'static [&'static str],
}

/// The list, the default first.
pub const LOCAL_MODELS: &[LocalModel] = &[
    LocalModel {
        name: "gpt-oss:20b",
        dialect: ToolDialect::Harmony,
        capabilities: &["completion", "tools", "thinking"],
        trained_context: 131_072,
        bytes: 13_800_000_000,
        model_info: Some(
            r#"{"general.architecture": "gptoss", "gptoss.block_count": 24,
            "gptoss.attention.head_count_kv": 8, "gptoss.attention.key_length": 64,
            "gptoss.attention.value_length": 64, "gptoss.attention.sliding_window": 128}"#,
        ),
        sources: &[
            "https://ollama.com/library/gpt-oss (13 GB, 128K context, tools, thinking)",
            "ollama/ollama convert/convert_gptoss.go (the attention keys) and the published GGUF",
            "ollama/ollama server/routes.go: harmony parser for gpt-oss",
        ],
    },
    LocalModel {
        name: "qwen3.5:9b",
        dialect: ToolDialect::QwenXml,
        capabilities: &["completion", "vision", "tools", "thinking"],
        trained_context: 262_144,
        bytes: 6_600_000_000,
        model_info: None,
        sources: &[
            "https://github.com/ollama/ollama/issues/14745 (`ollama show qwen3.5:9b`: qwen35, 9.7B, Q4_K_M, context 262144, completion/vision/tools/thinking; `ollama ls`: 6.6 GB; its leaked call is Qwen XML)",
            "ollama/ollama cmd/launch/models.go: recommended for `ollama launch claude`",
        ],
    },
    LocalModel {
        name: "gemma4:12b",
        dialect: ToolDialect::Gemma4,
        capabilities: &["completion", "vision", "tools", "thinking"],
        trained_context: 262_144,
        bytes: 8_000_000_000,
        model_info: Some(
            r#"{"general.architecture": "gemma4", "gemma4.block_count": 48,
            "gemma4.attention.head_count_kv": 8, "gemma4.attention.key_length": 512,
            "gemma4.attention.value_length": 512, "gemma4.attention.sliding_window": 1024}"#,
        ),
        sources: &[
            "https://ollama.com/library/gemma4:12b-it-q8_0/blobs/047dae1d7894 (gemma4 metadata: 48 blocks, head_count_kv 8, key/value length 512, sliding window 1024, context 262144; vision tools thinking)",
            "https://ollama.com/frozenlab/gemma4-mtp (gemma4:12b Q4_K_M: 8.0 GB, 256K, text and image)",
            "ollama/ollama cmd/launch/models.go: recommended for `ollama launch claude`",
        ],
    },
    LocalModel {
        name: "qwen3-coder:30b",
        dialect: ToolDialect::QwenXml,
        capabilities: &["completion", "tools"],
        trained_context: 262_144,
        bytes: 18_000_000_000,
        model_info: Some(
            r#"{"general.architecture": "qwen3moe", "qwen3moe.block_count": 48,
            "qwen3moe.attention.head_count_kv": 4, "qwen3moe.attention.key_length": 128,
            "qwen3moe.attention.value_length": 128}"#,
        ),
        sources: &[
            "https://github.com/ollama/ollama/issues/12380 (`ollama ls`: qwen3-coder:30b 18 GB)",
            "https://github.com/continuedev/continue/issues/13057 (`ollama show qwen3-coder:30b`: completion, tools)",
            "Qwen/Qwen3-Coder-30B-A3B-Instruct config.json (48 layers, 4 KV heads, head_dim 128, max_position_embeddings 262144)",
            "https://github.com/ollama/ollama/issues/16686 (its calls leak as Qwen XML on 0.33)",
        ],
    },
];

/// The catalogue entry for `name` (tags normalised as Ollama does).
pub fn find(name: &str) -> Option<&'static LocalModel> {
    let want = crate::ollama::normalize_model_name(name);
    LOCAL_MODELS
        .iter()
        .find(|m| crate::ollama::normalize_model_name(m.name) == want)
}

impl LocalModel {
    /// The attention geometry, when known.
    pub fn shape(&self) -> Option<KvShape> {
        let info: Value = serde_json::from_str(self.model_info?).ok()?;
        KvShape::from_model_info(&info)
    }

    pub fn has(&self, capability: &str) -> bool {
        self.capabilities.contains(&capability)
    }

    /// Weights plus an f16 KV cache for `context` tokens in one slot; None when the
    /// geometry is not known.
    pub fn memory_at(&self, context: u64) -> Option<u64> {
        let shape = self.shape()?;
        Some(self.bytes + shape.cache_bytes(context, 1, &KvCacheType::F16))
    }

    /// What [`kv::recommend`] says for this machine, at least `at_least` tokens.
    pub fn recommend(&self, memory_bytes: u64, at_least: u64) -> Option<Recommendation> {
        let machine = Machine {
            memory_bytes,
            model_bytes: self.bytes,
            parallel: 1,
            kv_type: KvCacheType::from_env(),
        };
        Some(kv::recommend(
            &self.shape()?,
            &machine,
            Some(self.trained_context),
            at_least,
        ))
    }
}

/// The models whose weights and cache for `at_least` tokens fit this machine, each with
/// its recommendation, the default first. A model whose geometry is unknown is offered
/// when its weights alone take at most half the memory.
pub fn fitting(
    memory_bytes: u64,
    at_least: u64,
) -> Vec<(&'static LocalModel, Option<Recommendation>)> {
    LOCAL_MODELS
        .iter()
        .filter_map(|m| match m.recommend(memory_bytes, at_least) {
            Some(r) if r.fits => Some((m, Some(r))),
            Some(_) => None,
            None => (m.bytes <= memory_bytes / 2).then_some((m, None)),
        })
        .collect()
}

/// `init`'s advice for a model not pulled yet: the catalogue's size and geometry
/// through [`kv::recommend`]; None for a model the catalogue does not know.
pub fn advise_unpulled(model: &str, memory_bytes: u64, at_least: u64) -> Option<ContextAdvice> {
    let entry = find(model)?;
    let advice = ContextAdvice::of(&entry.recommend(memory_bytes, at_least)?, memory_bytes);
    Some(ContextAdvice {
        text: format!(
            "{}; from {model}'s published size and attention geometry, as it is not pulled yet",
            advice.text
        ),
        ..advice
    })
}

/// [`kv::advise_slots`] for a model not pulled yet, from the catalogue's size and
/// geometry; None for a model the catalogue does not know (or whose geometry it lacks).
pub fn advise_slots_unpulled(model: &str, memory_bytes: u64, context: u64) -> Option<SlotAdvice> {
    let entry = find(model)?;
    Some(kv::advise_slots(
        &entry.shape()?,
        entry.bytes,
        memory_bytes,
        context,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1_000_000_000;

    /// Memory at 32k and 64k tokens (weights + f16 cache), per model: what `init`
    /// weighs against the machine.
    #[test]
    fn memory_at_32k_and_64k() {
        let at = |name: &str, ctx| find(name).unwrap().memory_at(ctx).map(|b| b / 100_000_000);
        // gpt-oss:20b: 12 sliding layers at 4096 + 512 tokens, 12 full ones.
        assert_eq!(
            (at("gpt-oss:20b", 32_768), at("gpt-oss:20b", 65_536)),
            (Some(147), Some(155))
        );
        // qwen3-coder:30b: 48 full layers × 4 heads × 256 dims × 2 bytes = 96 KiB a token.
        assert_eq!(
            (at("qwen3-coder:30b", 32_768), at("qwen3-coder:30b", 65_536)),
            (Some(212), Some(244))
        );
        // gemma4:12b: 8 global layers hold the context, 40 hold the 1024-token window.
        assert_eq!(
            (at("gemma4:12b", 32_768), at("gemma4:12b", 65_536)),
            (Some(133), Some(175))
        );
        // qwen3.5:9b: no source gave its geometry.
        assert_eq!(at("qwen3.5:9b", 32_768), None);
    }

    #[test]
    fn what_fits_is_offered_the_default_first() {
        let names =
            |mem| -> Vec<&str> { fitting(mem, 32_768).iter().map(|(m, _)| m.name).collect() };
        assert_eq!(
            names(32 * GB),
            ["gpt-oss:20b", "qwen3.5:9b", "gemma4:12b", "qwen3-coder:30b"]
        );
        assert_eq!(names(24 * GB), ["gpt-oss:20b", "qwen3.5:9b", "gemma4:12b"]);
        assert_eq!(names(16 * GB), ["qwen3.5:9b"]);
        assert!(names(8 * GB).is_empty());
    }

    /// Each capability listed is the one the proxy adapts to; the dialects are the ones
    /// the repair layer reads.
    #[test]
    fn capabilities_and_dialects() {
        let gpt = find("gpt-oss:20b").unwrap();
        assert!(gpt.has("thinking") && !gpt.has("vision"));
        assert!(find("gemma4:12b").unwrap().has("vision"));
        let coder = find("qwen3-coder:30b").unwrap();
        assert!(!coder.has("thinking") && !coder.has("vision"));
        assert_eq!(coder.dialect, ToolDialect::QwenXml);
        assert_eq!(find("qwen3.5:9b").unwrap().trained_context, 262_144);
        assert!(LOCAL_MODELS.iter().all(|m| !m.sources.is_empty()));
        assert_eq!(LOCAL_MODELS[0].name, crate::config::DEFAULT_MODEL);
    }

    #[test]
    fn the_default_model_is_advised_before_it_is_pulled() {
        let advice = advise_unpulled("gpt-oss:20b", 24 * GB, 32_768).unwrap();
        assert_eq!((advice.context, advice.fits), (65_536, true));
        let said = advice.text;
        assert!(said.starts_with("context recommended for this machine: 65536 tokens: 1.7 GB of KV cache on top of the 13.8 GB model"), "{said}");
        assert!(said.ends_with("as it is not pulled yet"), "{said}");
        assert!(advise_unpulled("gpt-oss:20b", 16 * GB, 32_768)
            .unwrap()
            .text
            .contains("tight on this machine: 32768 tokens"));
        assert!(advise_unpulled("qwen3-coder:30b", 32 * GB, 32_768).is_some());
        assert_eq!(advise_unpulled("qwen3:8b", 24 * GB, 32_768), None);
    }

    #[test]
    fn slots_for_a_model_not_pulled_yet_come_from_the_catalogue() {
        let a = advise_slots_unpulled("gpt-oss:20b", 24 * GB, 32_768).unwrap();
        assert_eq!(a.slots, 2, "{a:?}");
        assert_eq!(
            advise_slots_unpulled("gpt-oss:20b", 18 * GB, 32_768)
                .unwrap()
                .slots,
            1
        );
        assert_eq!(advise_slots_unpulled("qwen3:8b", 24 * GB, 32_768), None);
    }
}
