//! How much memory a context window costs, and which window to recommend.
//!
//! A local session's speed and stability depend on the whole model plus its KV cache
//! fitting in memory; the KV cache grows linearly with the context. The arithmetic
//! follows Ollama's own estimate (`GraphSize` in fs/ggml/ggml.go, v0.33): per layer and
//! token, `(key_length + value_length) × head_count_kv × bytes per element`, where the
//! element has the size of the type `OLLAMA_KV_CACHE_TYPE` names (f16, 2 bytes, when
//! unset; see [`KvCacheType`]);
//! full-attention layers hold `context × num_parallel` tokens. gpt-oss alternates
//! sliding-window layers (even ones, which Ollama sizes at `4096 × num_parallel + 512`
//! tokens whatever the context) with full ones; gemma3 makes every sixth layer global
//! and sizes the others at `sliding_window × num_parallel + 512`. Pure functions only:
//! the caller reads `/api/show` and the machine's memory.

use serde_json::Value;

/// Ollama's default batch (`num_batch`), added to every sliding-window layer's size.
const BATCH: u64 = 512;
/// The window Ollama sizes gpt-oss's sliding layers at (not the GGUF's 128).
const GPT_OSS_SWA_TOKENS: u64 = 4096;
/// gemma3: every sixth layer attends globally.
const GEMMA3_GLOBAL_EVERY: u64 = 6;

/// The attention geometry of a model, from `/api/show`'s `model_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KvShape {
    pub architecture: String,
    /// `<arch>.block_count`: layers.
    pub layers: u64,
    /// `<arch>.attention.head_count_kv` (the largest, when it is per layer).
    pub kv_heads: u64,
    /// `<arch>.attention.key_length` + `value_length` (both default to
    /// `embedding_length / head_count`, as in Ollama).
    pub head_dims: u64,
    /// `<arch>.attention.sliding_window`, when the model has one.
    pub sliding_window: Option<u64>,
    /// `<arch>.full_attention_interval` (qwen3.5's hybrid layers): only every n-th
    /// layer attends and keeps a KV cache; the others are recurrent, with a fixed state.
    pub full_attention_every: Option<u64>,
}

impl KvShape {
    /// Read from `model_info`; None when a needed key is missing.
    pub fn from_model_info(info: &Value) -> Option<KvShape> {
        let arch = info.get("general.architecture")?.as_str()?.to_owned();
        let num = |key: &str| -> Option<u64> {
            match info.get(format!("{arch}.{key}"))? {
                Value::Array(a) => a.iter().filter_map(Value::as_u64).max(),
                v => v.as_u64(),
            }
        };
        let layers = num("block_count")?;
        let kv_heads = num("attention.head_count_kv")?;
        let per_head = num("embedding_length")
            .zip(num("attention.head_count").filter(|h| *h > 0))
            .map(|(e, h)| e / h);
        let key = num("attention.key_length").or(per_head)?;
        let value = num("attention.value_length").or(per_head)?;
        Some(KvShape {
            layers,
            kv_heads,
            head_dims: key + value,
            sliding_window: num("attention.sliding_window").filter(|w| *w > 0),
            full_attention_every: num("full_attention_interval").filter(|n| *n > 0),
            architecture: arch,
        })
    }

    /// Bytes of KV cache for `context` tokens served to `parallel` slots.
    pub fn cache_bytes(&self, context: u64, parallel: u64, kind: &KvCacheType) -> u64 {
        let parallel = parallel.max(1);
        let per_token_layer = self.head_dims * self.kv_heads * kind.quarter_bytes();
        let full = context * parallel;
        let tokens: u64 = (0..self.layers)
            .map(
                |layer| match (self.architecture.as_str(), self.sliding_window) {
                    _ if self
                        .full_attention_every
                        .is_some_and(|n| (layer + 1) % n != 0) =>
                    {
                        0
                    }
                    ("gpt-oss" | "gptoss", _) if layer % 2 == 0 => {
                        GPT_OSS_SWA_TOKENS * parallel + BATCH
                    }
                    // gemma4 follows gemma3's pattern; its global layers' larger heads are
                    // counted for every layer, so the estimate errs high.
                    ("gemma3" | "gemma4", Some(w)) if (layer + 1) % GEMMA3_GLOBAL_EVERY != 0 => {
                        (w * parallel + BATCH).min(full)
                    }
                    _ => full,
                },
            )
            .sum();
        tokens * per_token_layer / 4
    }
}

/// `OLLAMA_KV_CACHE_TYPE` as Ollama reads it: lowercased and passed to its runner,
/// llama-server, as `--cache-type-k/-v` without validation (llm/server.go,
/// llm/llama_server.go ~393). Unset is f16. llama-server takes the types below; any
/// other value makes it refuse to start, so every model load fails.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvCacheType {
    F32,
    /// f16 and bf16: two bytes.
    F16,
    Q8,
    /// q5_0 and q5_1.
    Q5,
    /// q4_0, q4_1 and iq4_nl.
    Q4,
    /// A value llama-server does not take (sized as f16).
    Invalid(String),
}

impl KvCacheType {
    pub fn from_env_value(v: Option<&str>) -> KvCacheType {
        let Some(v) = v.map(|s| s.trim().trim_matches(['"', '\'']).to_ascii_lowercase()) else {
            return KvCacheType::F16;
        };
        match v.as_str() {
            "" | "f16" | "bf16" => KvCacheType::F16,
            "f32" => KvCacheType::F32,
            "q8_0" => KvCacheType::Q8,
            "q5_0" | "q5_1" => KvCacheType::Q5,
            "q4_0" | "q4_1" | "iq4_nl" => KvCacheType::Q4,
            _ => KvCacheType::Invalid(v),
        }
    }

    /// The cache type `OLLAMA_KV_CACHE_TYPE` names in this environment.
    pub fn from_env() -> KvCacheType {
        Self::from_env_value(
            crate::env_vars::non_empty(crate::env_vars::EnvVars::OLLAMA_KV_CACHE_TYPE).as_deref(),
        )
    }

    /// Why every model load fails, when the type is one llama-server refuses.
    pub fn refusal(&self) -> Option<String> {
        let KvCacheType::Invalid(v) = self else {
            return None;
        };
        Some(format!(
            "OLLAMA_KV_CACHE_TYPE={v} is passed to Ollama's runner (llama-server), which takes only f32, f16, bf16, q8_0, q5_0, q5_1, q4_0, q4_1 or iq4_nl and will not start otherwise: unset it or use q8_0"
        ))
    }

    /// Bytes per element × 4, so q4_0's half byte stays an integer (the quantised
    /// types' per-block scales are left out: a few percent).
    fn quarter_bytes(&self) -> u64 {
        match self {
            KvCacheType::F32 => 16,
            KvCacheType::F16 | KvCacheType::Invalid(_) => 8,
            KvCacheType::Q8 => 4,
            KvCacheType::Q5 => 3,
            KvCacheType::Q4 => 2,
        }
    }
}

/// The windows worth recommending, largest first.
pub const CANDIDATES: [u64; 2] = [65_536, 32_768];
/// The share of memory the model and its cache may take; the rest is the OS, the
/// compute graph and the user's other programs (macOS lets the GPU wire about 3/4).
pub const SAFE_SHARE_PERCENT: u64 = 75;

/// What [`recommend`] needs.
#[derive(Debug, Clone)]
pub struct Machine {
    pub memory_bytes: u64,
    /// The model's size on disk (`/api/tags`), about its size in memory.
    pub model_bytes: u64,
    pub parallel: u64,
    pub kv_type: KvCacheType,
}

/// A recommended context and what it costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recommendation {
    pub context: u64,
    pub kv_bytes: u64,
    pub model_bytes: u64,
    /// Model + cache fit in [`SAFE_SHARE_PERCENT`] of memory.
    pub fits: bool,
}

/// The largest of [`CANDIDATES`] (capped at `trained`) whose model + KV cache fit in a
/// safe share of memory, never below `at_least` (what the config already needs); when
/// none fits, `at_least` or the smallest candidate, marked as not fitting.
pub fn recommend(
    shape: &KvShape,
    machine: &Machine,
    trained: Option<u64>,
    at_least: u64,
) -> Recommendation {
    let budget = machine.memory_bytes / 100 * SAFE_SHARE_PERCENT;
    let cost = |context: u64| {
        let kv_bytes = shape.cache_bytes(context, machine.parallel, &machine.kv_type);
        Recommendation {
            context,
            kv_bytes,
            model_bytes: machine.model_bytes,
            fits: machine.model_bytes + kv_bytes <= budget,
        }
    };
    let cap = trained.unwrap_or(u64::MAX);
    let floor = CANDIDATES[CANDIDATES.len() - 1].max(at_least).min(cap);
    CANDIDATES
        .iter()
        .copied()
        .filter(|c| *c <= cap && *c >= floor)
        .map(cost)
        .find(|r| r.fits)
        .unwrap_or_else(|| cost(floor))
}

impl Recommendation {
    /// "65536 tokens: 1.7 GB of KV cache on top of the 13.8 GB model (fits in 75% of
    /// 24.0 GB of memory)".
    pub fn describe(&self, memory_bytes: u64) -> String {
        let h = crate::humanize::bytes;
        format!(
            "{} tokens: {} of KV cache on top of the {} model ({} {SAFE_SHARE_PERCENT}% of {} of memory)",
            self.context,
            h(self.kv_bytes),
            h(self.model_bytes),
            if self.fits { "fits in" } else { "more than" },
            h(memory_bytes)
        )
    }
}

/// `init`'s advice: the context it recommends, whether it fits, and the words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextAdvice {
    pub context: u64,
    pub fits: bool,
    pub text: String,
}

/// `init`'s advice for a pulled model; None when `/api/show` lacks the attention
/// geometry. One slot, and the cache type `OLLAMA_KV_CACHE_TYPE` names.
pub fn advise(
    details: &super::ModelDetails,
    model_bytes: u64,
    memory_bytes: u64,
    at_least: u64,
) -> Option<ContextAdvice> {
    let machine = Machine {
        memory_bytes,
        model_bytes,
        parallel: 1,
        kv_type: KvCacheType::from_env(),
    };
    let r = recommend(
        details.kv.as_ref()?,
        &machine,
        details.trained_context,
        at_least,
    );
    Some(ContextAdvice::of(&r, memory_bytes))
}

impl ContextAdvice {
    /// `r` in `init`'s words.
    pub fn of(r: &Recommendation, memory_bytes: u64) -> ContextAdvice {
        let verdict = if r.fits {
            "recommended for this machine"
        } else {
            "the smallest that suits Claude Code, and tight on this machine"
        };
        ContextAdvice {
            context: r.context,
            fits: r.fits,
            text: format!("context {verdict}: {}", r.describe(memory_bytes)),
        }
    }
}

/// Parallel slots `init` asks Ollama for when they fit.
pub const PREFERRED_SLOTS: u64 = 2;

/// How many slots (`OLLAMA_NUM_PARALLEL`) to run, and what the second one costs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotAdvice {
    pub slots: u32,
    /// KV cache for the context at that many slots, and at one.
    pub kv_bytes: u64,
    pub kv_bytes_one: u64,
    pub model_bytes: u64,
    pub memory_bytes: u64,
}

impl SlotAdvice {
    /// "2 parallel slots: 3.2 GB of KV cache instead of 1.6 GB (fits in 75% of 24.0 GB)".
    pub fn describe(&self) -> String {
        let h = crate::humanize::bytes;
        let fits = self.model_bytes + self.kv_bytes <= self.memory_bytes / 100 * SAFE_SHARE_PERCENT;
        format!(
            "{} parallel slot{}: {} of KV cache (one slot: {}) on top of the {} model ({} {SAFE_SHARE_PERCENT}% of {} of memory)",
            self.slots,
            if self.slots == 1 { "" } else { "s" },
            h(self.kv_bytes),
            h(self.kv_bytes_one),
            h(self.model_bytes),
            if fits { "fits in" } else { "more than" },
            h(self.memory_bytes)
        )
    }
}

/// Two slots when the model and two slots' KV cache at `context` fit the safe share of
/// memory, else one. Ollama keeps one KV cache per slot and nothing in host memory, so
/// with one slot a subagent or a side request evicts the main conversation's cached
/// prompt and the next main turn is prefilled whole (1.52× the ideal prompt tokens in
/// `scripts/bench-session.sh`; 1.00× with two slots). The same arithmetic as
/// [`recommend`], which picks the context.
pub fn advise_slots(
    shape: &KvShape,
    model_bytes: u64,
    memory_bytes: u64,
    context: u64,
) -> SlotAdvice {
    let kv_type = KvCacheType::from_env();
    let budget = memory_bytes / 100 * SAFE_SHARE_PERCENT;
    let kv_bytes_one = shape.cache_bytes(context, 1, &kv_type);
    let kv_two = shape.cache_bytes(context, PREFERRED_SLOTS, &kv_type);
    let two = model_bytes + kv_two <= budget;
    SlotAdvice {
        slots: if two { PREFERRED_SLOTS as u32 } else { 1 },
        kv_bytes: if two { kv_two } else { kv_bytes_one },
        kv_bytes_one,
        model_bytes,
        memory_bytes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `model_info` of gpt-oss:20b as Ollama's `/api/show` returns it (the keys
    /// convert/convert_gptoss.go writes; values of the published GGUF).
    fn gpt_oss_20b() -> Value {
        json!({
            "general.architecture": "gpt-oss",
            "general.parameter_count": 20_914_757_184u64,
            "gpt-oss.block_count": 24,
            "gpt-oss.context_length": 131_072,
            "gpt-oss.embedding_length": 2880,
            "gpt-oss.attention.head_count": 64,
            "gpt-oss.attention.head_count_kv": 8,
            "gpt-oss.attention.key_length": 64,
            "gpt-oss.attention.value_length": 64,
            "gpt-oss.attention.sliding_window": 128,
        })
    }

    const GB: u64 = 1_000_000_000;

    #[test]
    fn gpt_oss_20b_geometry_and_cache_size() {
        let s = KvShape::from_model_info(&gpt_oss_20b()).unwrap();
        assert_eq!((s.layers, s.kv_heads, s.head_dims), (24, 8, 128));
        // 12 full layers × 65536 tokens + 12 sliding layers × 4608 tokens, 2048 B each.
        let want = (12 * 65_536 + 12 * 4_608) * 2_048;
        assert_eq!(s.cache_bytes(65_536, 1, &KvCacheType::F16), want);
        assert_eq!(s.cache_bytes(65_536, 1, &KvCacheType::Q8), want / 2);
        assert_eq!(s.cache_bytes(65_536, 1, &KvCacheType::Q4), want / 4);
        // Two slots double every layer's tokens (sliding ones: 2 × 4096 + 512).
        let two = (12 * 131_072 + 12 * 8_704) * 2_048;
        assert_eq!(s.cache_bytes(65_536, 2, &KvCacheType::F16), two);
    }

    #[test]
    fn a_plain_model_caches_every_layer_and_derives_head_size() {
        let info = json!({"general.architecture": "llama", "llama.block_count": 32,
            "llama.embedding_length": 4096, "llama.attention.head_count": 32,
            "llama.attention.head_count_kv": [8, 8, 4]});
        let s = KvShape::from_model_info(&info).unwrap();
        assert_eq!((s.kv_heads, s.head_dims), (8, 256));
        assert_eq!(
            s.cache_bytes(1000, 1, &KvCacheType::F16),
            32 * 1000 * 256 * 8 * 2
        );
        assert_eq!(
            KvShape::from_model_info(&json!({"general.architecture": "x"})),
            None
        );
    }

    #[test]
    fn qwen35_keeps_a_cache_only_in_its_full_attention_layers() {
        let info = json!({"general.architecture": "qwen35", "qwen35.block_count": 8,
            "qwen35.attention.head_count_kv": 2, "qwen35.attention.key_length": 256,
            "qwen35.attention.value_length": 256, "qwen35.full_attention_interval": 4});
        let s = KvShape::from_model_info(&info).unwrap();
        assert_eq!(s.full_attention_every, Some(4));
        // Layers 3 and 7 attend: 2 layers × 1000 tokens × 512 dims × 2 heads × 2 bytes.
        assert_eq!(
            s.cache_bytes(1000, 1, &KvCacheType::F16),
            2 * 1000 * 512 * 2 * 2
        );
    }

    #[test]
    fn gemma3_sliding_layers_are_capped() {
        let info = json!({"general.architecture": "gemma3", "gemma3.block_count": 12,
            "gemma3.attention.head_count_kv": 4, "gemma3.attention.key_length": 256,
            "gemma3.attention.value_length": 256, "gemma3.attention.sliding_window": 1024});
        let s = KvShape::from_model_info(&info).unwrap();
        let per = 512 * 4 * 2;
        assert_eq!(
            s.cache_bytes(32_768, 1, &KvCacheType::F16),
            (2 * 32_768 + 10 * 1_536) * per
        );
    }

    #[test]
    fn cache_type_from_the_environment() {
        assert_eq!(KvCacheType::from_env_value(None), KvCacheType::F16);
        assert_eq!(KvCacheType::from_env_value(Some("Q8_0")), KvCacheType::Q8);
        assert_eq!(KvCacheType::from_env_value(Some("q4_0")), KvCacheType::Q4);
        assert_eq!(KvCacheType::from_env_value(Some("bf16")), KvCacheType::F16);
        assert_eq!(KvCacheType::from_env_value(Some("'f32'")), KvCacheType::F32);
        assert_eq!(KvCacheType::from_env_value(Some("q5_1")), KvCacheType::Q5);
        assert_eq!(KvCacheType::from_env_value(Some("iq4_nl")), KvCacheType::Q4);
        // Passed through unvalidated: llama-server refuses it, not Ollama.
        let invalid = KvCacheType::from_env_value(Some("Q3_K"));
        assert_eq!(invalid, KvCacheType::Invalid("q3_k".into()));
        assert!(invalid
            .refusal()
            .unwrap()
            .contains("OLLAMA_KV_CACHE_TYPE=q3_k"));
        assert_eq!(KvCacheType::Q8.refusal(), None);
    }

    fn machine(memory_gb: u64) -> Machine {
        Machine {
            memory_bytes: memory_gb * GB,
            model_bytes: 13_793_437_354,
            parallel: 1,
            kv_type: KvCacheType::F16,
        }
    }

    #[test]
    fn recommends_65536_where_it_fits_else_32768() {
        let s = KvShape::from_model_info(&gpt_oss_20b()).unwrap();
        // 24 GB: 18 GB usable; 13.8 GB + 1.72 GB fits.
        let r = recommend(&s, &machine(24), Some(131_072), 32_768);
        assert_eq!((r.context, r.fits), (65_536, true));
        assert_eq!(r.kv_bytes, 1_723_858_944);
        // 18 GB: 13.5 GB usable; neither fits, so the floor, marked.
        let r = recommend(&s, &machine(18), Some(131_072), 32_768);
        assert_eq!((r.context, r.fits), (32_768, false));
        // 20 GB: 15 GB usable; 32768 (0.92 GB of cache) fits, 65536 does not.
        let r = recommend(&s, &machine(20), Some(131_072), 32_768);
        assert_eq!((r.context, r.fits), (32_768, true));
    }

    #[test]
    fn never_below_what_the_config_needs_nor_above_training() {
        let s = KvShape::from_model_info(&gpt_oss_20b()).unwrap();
        let r = recommend(&s, &machine(20), Some(131_072), 65_536);
        assert_eq!(r.context, 65_536);
        assert!(!r.fits);
        let r = recommend(&s, &machine(64), Some(16_384), 32_768);
        assert_eq!(r.context, 16_384);
    }

    #[test]
    fn advice_says_what_it_costs() {
        let details = super::super::ModelDetails::from_show(&json!({
            "capabilities": ["completion", "tools"], "model_info": gpt_oss_20b()}));
        let said = advise(&details, 13_793_437_354, 24 * GB, 32_768)
            .unwrap()
            .text;
        assert_eq!(said, "context recommended for this machine: 65536 tokens: 1.7 GB of KV cache on top of the 13.8 GB model (fits in 75% of 24.0 GB of memory)");
        let said = advise(&details, 13_793_437_354, 16 * GB, 32_768)
            .unwrap()
            .text;
        assert!(said.starts_with("context the smallest that suits Claude Code, and tight on this machine: 32768 tokens: 918.6 MB of KV cache"), "{said}");
        let bare = super::super::ModelDetails::from_show(&json!({"model_info": {}}));
        assert_eq!(advise(&bare, 1, 24 * GB, 32_768), None);
    }

    #[test]
    fn two_slots_where_both_caches_fit_else_one() {
        let shape = KvShape::from_model_info(&gpt_oss_20b()).unwrap();
        let a = advise_slots(&shape, 13_793_437_354, 24 * GB, 32_768);
        assert_eq!(a.slots, 2);
        assert!(a.kv_bytes > a.kv_bytes_one, "{a:?}");
        assert!(
            a.describe().starts_with("2 parallel slots: "),
            "{}",
            a.describe()
        );
        assert!(
            a.describe().contains("fits in 75% of 24.0 GB"),
            "{}",
            a.describe()
        );
        // 18 GB: the model alone nearly fills the safe share.
        let a = advise_slots(&shape, 13_793_437_354, 18 * GB, 32_768);
        assert_eq!(a.slots, 1);
        assert_eq!(a.kv_bytes, a.kv_bytes_one);
    }
}
