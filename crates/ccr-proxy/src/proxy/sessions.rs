//! What the proxy remembers per Claude Code session: where its last request went
//! (for `ccr-setup statusline`) and how usable the local model's recent answers were
//! (for the quality fallback, [`QualityFallback`]). Bounded to the most recent
//! [`MAX_SESSIONS`] sessions; nothing is written to disk (the ledger is the record).

use std::collections::VecDeque;
use std::sync::Mutex;

use hashlink::LruCache;
use serde::{Deserialize, Serialize};

use crate::config::QualityFallback;

/// Sessions remembered at once; the least recently seen is forgotten first.
pub const MAX_SESSIONS: usize = 1024;

/// How many of a session's recent local answers the failure count looks at.
pub const QUALITY_WINDOW: usize = 5;

/// The last request of a session, as `/session` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRequest {
    pub at_ms: i64,
    /// `provider,model` that answered (or last failed).
    pub target: String,
    pub local: bool,
    /// The routing rule (`default`, `think`, `longContext`, `quality`, …).
    pub scenario: String,
    /// The model fallen back from, and why.
    pub fallback_from: Option<String>,
    pub fallback_reason: Option<String>,
    /// `ok`, `upstream_error`, …
    pub outcome: String,
    /// Prompt tokens of the request (cached ones included).
    pub input_tokens: u64,
    /// The local model's context window, when configured.
    pub local_window: Option<u64>,
    /// Old tool results context editing had cleared (or cut) from this request to fit
    /// the local window (absent from proxies before it).
    #[serde(default)]
    pub context_cleared: u32,
}

/// One session as `/session` reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionReport {
    pub session_id: String,
    pub last: Option<LastRequest>,
    /// Requests left before the quality fallback tries the local model again (0: local).
    pub cloud_requests_left: u32,
    /// Unusable local answers among the recent ones.
    pub recent_local_failures: u32,
}

#[derive(Debug, Default)]
struct SessionState {
    last: Option<LastRequest>,
    /// Recent local answers, newest last: true when unusable.
    recent_local: VecDeque<bool>,
    cloud_left: u32,
}

/// Per-session memory, shared by the request handlers.
#[derive(Debug)]
pub struct Sessions {
    inner: Mutex<LruCache<String, SessionState>>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            inner: Mutex::new(LruCache::new(MAX_SESSIONS)),
        }
    }
}

/// What recording an answer changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QualityChange {
    None,
    /// The session just reached the failure limit: the next requests go to the cloud.
    SwitchedToCloud {
        failures: u32,
    },
}

impl Sessions {
    /// Should this request of `session` go to the cloud chain for quality? Takes one
    /// of the session's cloud requests when it does.
    pub fn take_cloud_turn(&self, session: &str) -> bool {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        match map.get_mut(session) {
            Some(s) if s.cloud_left > 0 => {
                s.cloud_left -= 1;
                true
            }
            _ => false,
        }
    }

    /// Record how a request of `session` ended. `local_answer` is whether the local
    /// model was involved and, if so, whether its answer was unusable.
    pub fn record(
        &self,
        session: &str,
        last: LastRequest,
        local_answer: Option<bool>,
        policy: QualityFallback,
    ) -> QualityChange {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(session).is_none() {
            map.insert(session.to_owned(), SessionState::default());
        }
        let Some(state) = map.get_mut(session) else {
            return QualityChange::None;
        };
        state.last = Some(last);
        let Some(unusable) = local_answer else {
            return QualityChange::None;
        };
        state.recent_local.push_back(unusable);
        while state.recent_local.len() > QUALITY_WINDOW {
            state.recent_local.pop_front();
        }
        let failures = state.recent_local.iter().filter(|f| **f).count() as u32;
        if policy.after_local_failures > 0
            && failures >= policy.after_local_failures
            && state.cloud_left == 0
        {
            state.cloud_left = policy.cloud_requests;
            state.recent_local.clear();
            return QualityChange::SwitchedToCloud { failures };
        }
        QualityChange::None
    }

    /// How many sessions the quality fallback has on the cloud right now.
    pub fn on_cloud_for_quality(&self) -> u32 {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().filter(|(_, s)| s.cloud_left > 0).count() as u32
    }

    /// What is known about `session`.
    pub fn report(&self, session: &str) -> Option<SessionReport> {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let state = map.get(session)?;
        Some(SessionReport {
            session_id: session.to_owned(),
            last: state.last.clone(),
            cloud_requests_left: state.cloud_left,
            recent_local_failures: state.recent_local.iter().filter(|f| **f).count() as u32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: QualityFallback = QualityFallback {
        after_local_failures: 2,
        cloud_requests: 3,
    };

    #[test]
    fn two_bad_local_answers_send_the_session_to_the_cloud_then_back() {
        let s = Sessions::default();
        let last = LastRequest::default();
        assert_eq!(
            s.record("a", last.clone(), Some(true), POLICY),
            QualityChange::None
        );
        assert_eq!(
            s.record("a", last.clone(), Some(false), POLICY),
            QualityChange::None
        );
        assert!(!s.take_cloud_turn("a"));
        assert_eq!(
            s.record("a", last.clone(), Some(true), POLICY),
            QualityChange::SwitchedToCloud { failures: 2 }
        );
        // Another session is unaffected.
        assert!(!s.take_cloud_turn("b"));
        assert!((0..3).all(|_| s.take_cloud_turn("a")));
        assert!(
            !s.take_cloud_turn("a"),
            "local again after the cloud requests"
        );
        assert_eq!(s.report("a").unwrap().recent_local_failures, 0);
    }

    #[test]
    fn failures_outside_the_window_and_cloud_only_answers_do_not_count() {
        let s = Sessions::default();
        let last = LastRequest::default();
        s.record("a", last.clone(), Some(true), POLICY);
        for _ in 0..QUALITY_WINDOW {
            s.record("a", last.clone(), Some(false), POLICY);
        }
        s.record("a", last.clone(), None, POLICY);
        assert_eq!(
            s.record("a", last.clone(), Some(true), POLICY),
            QualityChange::None
        );
        let off = QualityFallback {
            after_local_failures: 0,
            ..POLICY
        };
        for _ in 0..5 {
            assert_eq!(
                s.record("b", last.clone(), Some(true), off),
                QualityChange::None
            );
        }
    }

    #[test]
    fn only_the_most_recent_sessions_are_kept() {
        let s = Sessions::default();
        for i in 0..MAX_SESSIONS + 10 {
            s.record(&format!("s{i}"), LastRequest::default(), None, POLICY);
        }
        assert!(s.report("s0").is_none());
        assert!(s.report(&format!("s{}", MAX_SESSIONS + 9)).is_some());
    }
}
