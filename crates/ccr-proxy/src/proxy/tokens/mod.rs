//! Input-token counting with a per-piece cache.
//!
//! The context guard, the `longContext` rule and `count_tokens` all need the size of a
//! request before it is sent. Local servers do not tell us, and asking them would cost
//! a prefill, so we count with tiktoken's `o200k_base`, the tokenizer family of
//! gpt-oss. For other models it is an estimate, which is all the guard needs.
//!
//! The tokenizer is our own, in [`counter`]: linear in the input (tiktoken's merge is
//! quadratic in one piece and panics on a megabyte of one letter), ~4 MB resident
//! instead of ~54, and it never fails: what it has no time for is estimated from its
//! size and the count is marked [`TokenCount::estimated`]. Counting a large request
//! takes milliseconds, so the proxy runs it on a blocking thread with a time budget
//! ([`TokenEstimator::count_within`]).
//!
//! Claude Code resends the whole conversation every turn. Re-tokenizing a 150k-token
//! history per request would cost tens of milliseconds, so every piece of text we
//! tokenize (a system block, a tool definition, a message block) is cached by a hash
//! of its exact text. A new turn then only tokenizes the new blocks; the rest is a
//! hash and a cache lookup. The cache is an LRU bounded by entry count, shared by all
//! requests, so several sessions and the volatile billing-header block cost nothing
//! beyond their own entries.
//!
//! What counts (documented because it decides when the guard refuses a prompt):
//! * every system block's text;
//! * every tool definition, serialized as JSON (names, descriptions and schemas are
//!   what a chat template renders), plus [`TOOL_OVERHEAD`];
//! * per message [`MESSAGE_OVERHEAD`], and per block: text; tool_use name and
//!   JSON input; tool_result content (recursively); thinking text (reported apart in
//!   [`TokenCount::thinking`] because some targets never receive it); unknown blocks
//!   as their JSON;
//! * each image as a flat [`IMAGE_TOKENS`]: we do not decode images, and base64 data
//!   must never go through the tokenizer.

mod bpe;
pub mod counter;
mod pretokenize;
mod vocab;

pub use counter::{count_text, TextCount};

use std::borrow::Cow;
use std::hash::BuildHasher;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hashlink::LruCache;

use super::wire::anthropic::{
    Content, ContentBlock, KnownBlock, Message, MessagesRequest, System, ToolResultContent,
};

/// Role and separator tokens a chat template adds around each message.
pub const MESSAGE_OVERHEAD: u64 = 4;
/// Framing a chat template adds around each tool definition.
pub const TOOL_OVERHEAD: u64 = 8;
/// Anthropic's figure for a ~1.15 megapixel image, the largest it keeps unscaled.
pub const IMAGE_TOKENS: u64 = 1_600;
/// Default cache size: a 150k-token Claude Code conversation has ~1–3k pieces, so
/// this holds several sessions in well under 2 MB.
pub const DEFAULT_CACHE_ENTRIES: usize = 32_768;
/// Default time one request may spend tokenizing before the rest is estimated from
/// its size. A cold 160k-token conversation takes ~30 ms, so this only cuts
/// pathological inputs (or a starved machine).
pub const DEFAULT_BUDGET: Duration = Duration::from_millis(200);

/// The parts of an estimate; [`TokenCount::total`] is what the guard compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenCount {
    pub system: u64,
    pub tools: u64,
    /// Messages, including their thinking and images.
    pub messages: u64,
    /// The part of `messages` that is thinking blocks from history.
    pub thinking: u64,
    /// The part of `messages` that is images (flat [`IMAGE_TOKENS`] each).
    pub images: u64,
    /// Some text was not tokenized exactly (the time budget ran out, or a piece over
    /// 16 KB was merged window by window); the total is then an upper-bound estimate.
    pub estimated: bool,
}

impl TokenCount {
    pub fn total(&self) -> u64 {
        self.system + self.tools + self.messages
    }

    /// The total for a target that is not sent earlier thinking (an OpenAI-kind
    /// provider without `reasoning_in_history`).
    pub fn total_without_thinking(&self) -> u64 {
        self.total() - self.thinking
    }
}

/// Cache activity, for tests and the benchmark to prove the warm path skips work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub hits: u64,
    pub misses: u64,
    /// Bytes of text that went through the tokenizer.
    pub bytes_tokenized: u64,
}

/// Shared token estimator. Cheap to share behind an `Arc`; all methods take `&self`.
pub struct TokenEstimator {
    cache: Mutex<Inner>,
    hasher: foldhash::quality::RandomState,
    budget: Duration,
}

struct Inner {
    /// Token count of a piece, high bit set when it was not exact.
    counts: LruCache<u64, u32>,
    stats: CacheStats,
}

/// Cached counts keep their "not exact" mark in the top bit.
const INEXACT: u32 = 1 << 31;

impl std::fmt::Debug for TokenEstimator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenEstimator")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl Default for TokenEstimator {
    fn default() -> Self {
        Self::new(DEFAULT_CACHE_ENTRIES)
    }
}

/// Which bucket of [`TokenCount`] a piece belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bucket {
    System,
    Tools,
    Messages,
    Thinking,
}

/// The text pieces of a request, in order, plus the fixed overheads.
#[derive(Default)]
struct Pieces<'a> {
    texts: Vec<(Bucket, Cow<'a, str>)>,
    fixed: TokenCount,
}

impl<'a> Pieces<'a> {
    fn text(&mut self, bucket: Bucket, text: &'a str) {
        if !text.is_empty() {
            self.texts.push((bucket, Cow::Borrowed(text)));
        }
    }

    fn json(&mut self, bucket: Bucket, value: &impl serde::Serialize) {
        if let Ok(s) = serde_json::to_string(value) {
            self.texts.push((bucket, Cow::Owned(s)));
        }
    }

    fn system(&mut self, system: &'a System) {
        match system {
            System::Text(t) => self.text(Bucket::System, t),
            System::Blocks(blocks) => {
                for b in blocks {
                    self.text(Bucket::System, &b.text);
                }
            }
        }
    }

    fn message(&mut self, message: &'a Message) {
        self.fixed.messages += MESSAGE_OVERHEAD;
        match &message.content {
            Content::Text(t) => self.text(Bucket::Messages, t),
            Content::Blocks(blocks) => self.blocks(blocks),
        }
    }

    fn blocks(&mut self, blocks: &'a [ContentBlock]) {
        for block in blocks {
            match block {
                ContentBlock::Known(known) => self.known(known),
                ContentBlock::Unknown(value) => self.json(Bucket::Messages, value),
            }
        }
    }

    fn known(&mut self, block: &'a KnownBlock) {
        match block {
            KnownBlock::Text { text, .. } => self.text(Bucket::Messages, text),
            KnownBlock::Image { .. } => {
                self.fixed.messages += IMAGE_TOKENS;
                self.fixed.images += IMAGE_TOKENS;
            }
            KnownBlock::ToolUse { name, input, .. } => {
                self.text(Bucket::Messages, name);
                self.json(Bucket::Messages, input);
            }
            KnownBlock::ToolResult { content, .. } => match content {
                Some(ToolResultContent::Text(t)) => self.text(Bucket::Messages, t),
                Some(ToolResultContent::Blocks(blocks)) => self.blocks(blocks),
                None => {}
            },
            KnownBlock::Thinking { thinking, .. } => self.text(Bucket::Thinking, thinking),
            // Opaque encrypted data: its size says little about tokens; count nothing
            // rather than tokenize base64.
            KnownBlock::RedactedThinking { .. } => {}
        }
    }
}

impl TokenEstimator {
    /// An estimator whose cache holds at most `cache_entries` piece counts.
    pub fn new(cache_entries: usize) -> Self {
        TokenEstimator {
            cache: Mutex::new(Inner {
                counts: LruCache::new(cache_entries.max(1)),
                stats: CacheStats::default(),
            }),
            hasher: foldhash::quality::RandomState::default(),
            budget: DEFAULT_BUDGET,
        }
    }

    /// The same estimator with another time budget per request.
    pub fn with_budget(mut self, budget: Duration) -> Self {
        self.budget = budget;
        self
    }

    /// Load the tokenizer now instead of on the first request (it takes ~50 ms).
    pub fn warm_up() {
        let _ = counter::tokenizer();
    }

    /// Estimated input tokens of a request: system + tools + messages.
    pub fn estimate(&self, req: &MessagesRequest) -> u64 {
        self.count(req).total()
    }

    /// The estimate by part, within this estimator's time budget. This takes
    /// milliseconds on a large cold request: async code calls it off its workers.
    pub fn count(&self, req: &MessagesRequest) -> TokenCount {
        self.count_within(req, self.budget)
    }

    /// The estimate by part; after `budget` the untokenized rest is estimated from
    /// its size and the count is marked [`TokenCount::estimated`].
    pub fn count_within(&self, req: &MessagesRequest, budget: Duration) -> TokenCount {
        let mut pieces = Pieces::default();
        if let Some(system) = &req.system {
            pieces.system(system);
        }
        for tool in req.tools.iter().flatten() {
            pieces.fixed.tools += TOOL_OVERHEAD;
            pieces.json(Bucket::Tools, tool);
        }
        for message in &req.messages {
            pieces.message(message);
        }
        self.sum(pieces, budget)
    }

    /// Estimated tokens of a bare text, through the cache.
    pub fn count_cached(&self, text: &str) -> u64 {
        let mut pieces = Pieces::default();
        pieces.text(Bucket::Messages, text);
        self.sum(pieces, self.budget).total()
    }

    /// Estimated tokens of a tool result's content as it counts in a request (text,
    /// nested blocks, images at [`IMAGE_TOKENS`]), through the cache.
    pub fn count_result_content(&self, content: &ToolResultContent) -> u64 {
        let mut pieces = Pieces::default();
        match content {
            ToolResultContent::Text(t) => pieces.text(Bucket::Messages, t),
            ToolResultContent::Blocks(blocks) => pieces.blocks(blocks),
        }
        self.sum(pieces, self.budget).total()
    }

    /// Estimated tokens of a JSON value as it counts in a request (a tool call's
    /// input), through the cache.
    pub fn count_json(&self, value: &serde_json::Value) -> u64 {
        let mut pieces = Pieces::default();
        pieces.json(Bucket::Messages, value);
        self.sum(pieces, self.budget).total()
    }

    /// Cache activity so far.
    pub fn stats(&self) -> CacheStats {
        self.lock().stats
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the cache inconsistent (every
        // operation is a single insert or lookup), so a poisoned lock is still usable.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Look every piece up under one lock, tokenize the misses with the lock released
    /// (so other requests are not held up), then store them under a second lock.
    /// Counts cut short by the budget are not stored. The budget starts once the
    /// tokenizer is loaded: loading is once per process, not this request's cost.
    fn sum(&self, pieces: Pieces<'_>, budget: Duration) -> TokenCount {
        let keys: Vec<u64> = pieces
            .texts
            .iter()
            .map(|(_, text)| self.hasher.hash_one(text.as_ref()))
            .collect();
        let mut counts: Vec<Option<u32>> = Vec::with_capacity(keys.len());
        {
            let mut inner = self.lock();
            for key in &keys {
                let hit = inner.counts.get(key).copied();
                if hit.is_some() {
                    inner.stats.hits += 1;
                } else {
                    inner.stats.misses += 1;
                }
                counts.push(hit);
            }
        }
        let mut fresh: Vec<(u64, u32)> = Vec::new();
        let mut bytes = 0u64;
        let mut scratch = bpe::Scratch::default();
        let tokenizer = counter::tokenizer();
        let deadline = Instant::now().checked_add(budget);
        for (i, count) in counts.iter_mut().enumerate() {
            if count.is_none() {
                let text = pieces.texts[i].1.as_ref();
                bytes += text.len() as u64;
                let c = tokenizer.count(text, deadline, &mut scratch);
                let n = u32::try_from(c.tokens)
                    .unwrap_or(INEXACT - 1)
                    .min(INEXACT - 1);
                let n = if c.exact { n } else { n | INEXACT };
                *count = Some(n);
                if !c.cut_short {
                    fresh.push((keys[i], n));
                }
            }
        }
        if !fresh.is_empty() {
            let mut inner = self.lock();
            inner.stats.bytes_tokenized += bytes;
            for (key, n) in fresh {
                inner.counts.insert(key, n);
            }
        }
        let mut total = pieces.fixed;
        for ((bucket, _), count) in pieces.texts.iter().zip(counts) {
            let count = count.unwrap_or(0);
            total.estimated |= count & INEXACT != 0;
            let n = u64::from(count & !INEXACT);
            match bucket {
                Bucket::System => total.system += n,
                Bucket::Tools => total.tools += n,
                Bucket::Messages => total.messages += n,
                Bucket::Thinking => {
                    total.messages += n;
                    total.thinking += n;
                }
            }
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: serde_json::Value) -> MessagesRequest {
        serde_json::from_value(body).unwrap()
    }

    fn conversation(turns: usize) -> serde_json::Value {
        let mut messages = Vec::new();
        for i in 0..turns {
            messages.push(json!({"role": "user", "content": format!("Question {i}: please read src/main.rs and explain it.")}));
            messages.push(json!({"role": "assistant", "content": [
                {"type": "thinking", "thinking": format!("I should read the file, attempt {i}."), "signature": ""},
                {"type": "tool_use", "id": format!("t{i}"), "name": "Read", "input": {"file_path": "/src/main.rs"}}
            ]}));
            messages.push(json!({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": format!("t{i}"), "content": [{"type": "text", "text": format!("fn main() {{ println!(\"{i}\"); }}")}]}
            ]}));
        }
        json!({
            "model": "claude-opus-4-8",
            "system": [{"type": "text", "text": "x-anthropic-billing-header: cc_version=1"}, {"type": "text", "text": "You are Claude Code, a coding assistant."}],
            "tools": [{"name": "Read", "description": "Read a file", "input_schema": {"type": "object", "properties": {"file_path": {"type": "string"}}}}],
            "messages": messages,
            "max_tokens": 64000
        })
    }

    #[test]
    fn counts_text_with_o200k() {
        // o200k_base: "hello world" is two tokens.
        assert_eq!(count_text("hello world"), 2);
        assert_eq!(count_text(""), 0);
    }

    #[test]
    fn counts_every_part_and_separates_thinking() {
        let est = TokenEstimator::default();
        let req = request(conversation(3));
        let c = est.count(&req);
        assert_eq!(
            c.system,
            count_text("x-anthropic-billing-header: cc_version=1")
                + count_text("You are Claude Code, a coding assistant.")
        );
        let tool_json = serde_json::to_string(&req.tools.as_ref().unwrap()[0]).unwrap();
        assert_eq!(c.tools, TOOL_OVERHEAD + count_text(&tool_json));
        let thinking: u64 = (0..3)
            .map(|i| count_text(&format!("I should read the file, attempt {i}.")))
            .sum();
        assert_eq!(c.thinking, thinking);
        assert!(c.messages > thinking + 9 * MESSAGE_OVERHEAD);
        assert_eq!(c.total(), c.system + c.tools + c.messages);
        assert_eq!(c.total_without_thinking(), c.total() - thinking);
        assert_eq!(est.estimate(&req), c.total());
    }

    #[test]
    fn images_are_flat_and_never_tokenized() {
        let est = TokenEstimator::default();
        let data = "A".repeat(200_000);
        let req = request(
            json!({"model": "m", "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
                {"type": "text", "text": "what is this"}
            ]}]}),
        );
        let c = est.count(&req);
        assert_eq!(c.images, IMAGE_TOKENS);
        assert_eq!(
            c.messages,
            MESSAGE_OVERHEAD + IMAGE_TOKENS + count_text("what is this")
        );
        assert!(est.stats().bytes_tokenized < 100);
    }

    #[test]
    fn a_new_turn_only_tokenizes_the_new_turn() {
        let est = TokenEstimator::default();
        let base = request(conversation(50));
        let first = est.estimate(&base);
        let cold = est.stats();
        assert!(cold.bytes_tokenized > 5_000);

        let mut next = base.clone();
        let new_turn = "Now also explain src/lib.rs, please.";
        next.messages.push(
            request(json!({"model": "m", "messages": [{"role": "user", "content": new_turn}]}))
                .messages
                .remove(0),
        );
        let second = est.estimate(&next);
        let warm = est.stats();
        assert_eq!(second, first + MESSAGE_OVERHEAD + count_text(new_turn));
        assert_eq!(
            warm.bytes_tokenized - cold.bytes_tokenized,
            new_turn.len() as u64,
            "only the new turn goes through the tokenizer"
        );
        assert_eq!(warm.misses - cold.misses, 1);
    }

    #[test]
    fn past_the_budget_the_rest_is_estimated_marked_and_not_cached() {
        let est = TokenEstimator::default();
        let text = "word ".repeat(20_000);
        let req = request(json!({"model": "m", "messages": [{"role": "user", "content": text}]}));
        let rushed = est.count_within(&req, Duration::ZERO);
        assert!(rushed.estimated);
        let exact = est.count(&req);
        assert!(!exact.estimated, "the cut-short count was not cached");
        assert_eq!(exact.messages, MESSAGE_OVERHEAD + count_text(&text));
        assert!(
            rushed.total() > exact.total(),
            "the estimate is an upper bound"
        );
    }

    #[test]
    fn a_piece_over_one_window_is_marked_estimated() {
        let est = TokenEstimator::default();
        let req = request(
            json!({"model": "m", "messages": [{"role": "user", "content": "a".repeat(40_000)}]}),
        );
        let c = est.count(&req);
        assert!(c.estimated);
        assert_eq!(est.count(&req), c, "and cached as such");
    }

    #[test]
    fn the_cache_is_bounded() {
        let est = TokenEstimator::new(4);
        for i in 0..20 {
            est.count_cached(&format!("text number {i}"));
        }
        assert!(est.lock().counts.len() <= 4);
        // An evicted entry is counted again, correctly.
        assert_eq!(
            est.count_cached("text number 0"),
            count_text("text number 0")
        );
    }
}
