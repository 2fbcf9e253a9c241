//! The clear point of each conversation, so it only moves forward.
//!
//! Without memory, each turn would clear from scratch down to the target and so clear a
//! little more every turn: the bytes after the first changed block would differ every
//! time and a one-slot prompt cache would re-prefill them on every turn. With it, a
//! turn re-applies exactly the edits of the last one and clears more only when the
//! request would not fit again.
//!
//! A conversation is keyed by its session and its first message: one Claude Code
//! session carries the main loop, subagents, title requests and compactions, each
//! with its own first message. `/compact` replaces the first message (a new key);
//! `/rewind` drops later messages, and a remembered edit whose block is gone resets
//! that conversation's memory.

use std::sync::Mutex;

use hashlink::LruCache;

use crate::proxy::wire::anthropic::MessagesRequest;

/// Conversations remembered; the oldest is forgotten first.
const CONVERSATIONS: usize = 512;

/// The edits made to one conversation, in the order they were first made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClearState {
    /// `tool_use_id`s whose results (and long inputs) are cleared, oldest first.
    pub cleared: Vec<String>,
    /// Results cut in the middle: id and the bytes of text kept.
    pub cuts: Vec<(String, usize)>,
}

/// `value` without any `cache_control` key, at any depth.
fn strip_cache_control(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            map.remove("cache_control");
            map.values_mut().for_each(strip_cache_control);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(strip_cache_control),
        _ => {}
    }
}

/// An `io::Write` that feeds a hasher.
struct HashWriter<H>(H);

impl<H: std::hash::Hasher> std::io::Write for HashWriter<H> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Clear points by conversation. Shared by all requests.
pub struct ClearMemory {
    map: Mutex<LruCache<u64, ClearState>>,
    hasher: foldhash::quality::RandomState,
}

impl Default for ClearMemory {
    fn default() -> Self {
        ClearMemory {
            map: Mutex::new(LruCache::new(CONVERSATIONS)),
            hasher: foldhash::quality::RandomState::default(),
        }
    }
}

impl std::fmt::Debug for ClearMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClearMemory").finish_non_exhaustive()
    }
}

impl ClearMemory {
    /// The key of `req`'s conversation: its session (when known) and first message.
    pub fn key(&self, session: Option<&str>, req: &MessagesRequest) -> u64 {
        use std::hash::{BuildHasher, Hasher};
        let mut hasher = HashWriter(self.hasher.build_hasher());
        hasher.0.write(session.unwrap_or("").as_bytes());
        hasher.0.write_u8(0xff);
        // The first message's JSON without its `cache_control` marks: Claude Code moves
        // its cache breakpoints from turn to turn (2.1.197 marks the first message on
        // the second request only), and the conversation is the same.
        if let Some(first) = req.messages.first() {
            if let Ok(mut value) = serde_json::to_value(first) {
                strip_cache_control(&mut value);
                let _ = serde_json::to_writer(&mut hasher, &value);
            }
        }
        hasher.0.finish()
    }

    /// What was remembered for `key` (empty when nothing was).
    pub fn get(&self, key: u64) -> ClearState {
        self.lock().get(&key).cloned().unwrap_or_default()
    }

    /// Remember `state` for `key`.
    pub fn put(&self, key: u64, state: ClearState) {
        self.lock().insert(key, state);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<u64, ClearState>> {
        // Every operation is one lookup or insert: a poisoned lock is still consistent.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(first: &str, more: &str) -> MessagesRequest {
        serde_json::from_value(json!({"model": "m", "messages": [
            {"role": "user", "content": first}, {"role": "assistant", "content": more}]}))
        .unwrap()
    }

    #[test]
    fn a_conversation_is_its_session_and_first_message() {
        let m = ClearMemory::default();
        let key = m.key(Some("s1"), &req("read the files", "a"));
        // Later turns of the same conversation: same key.
        assert_eq!(key, m.key(Some("s1"), &req("read the files", "b")));
        // Another session, or a subagent (another first message): another key.
        assert_ne!(key, m.key(Some("s2"), &req("read the files", "a")));
        assert_ne!(key, m.key(Some("s1"), &req("you are a subagent", "a")));
        // A cache breakpoint on the first message is not another conversation.
        let marked: MessagesRequest = serde_json::from_value(json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "read the files", "cache_control": {"type": "ephemeral"}}]},
            {"role": "assistant", "content": "a"}]}))
        .unwrap();
        let plain: MessagesRequest = serde_json::from_value(json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "read the files"}]},
            {"role": "assistant", "content": "a"}]}))
        .unwrap();
        assert_eq!(m.key(Some("s1"), &marked), m.key(Some("s1"), &plain));
        m.put(
            key,
            ClearState {
                cleared: vec!["t1".into()],
                cuts: vec![],
            },
        );
        assert_eq!(m.get(key).cleared, ["t1"]);
        assert_eq!(m.get(key ^ 1), ClearState::default());
    }
}
