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

use std::hash::BuildHasher;
use std::sync::Mutex;

use hashlink::LruCache;

use crate::proxy::anthropic::MessagesRequest;

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
        let first = req
            .messages
            .first()
            .and_then(|m| serde_json::to_string(m).ok())
            .unwrap_or_default();
        self.hasher.hash_one((session.unwrap_or(""), first))
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
