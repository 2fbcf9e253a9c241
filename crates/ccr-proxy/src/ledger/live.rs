//! The live tail of the ledger: every row [`super::LedgerHandle::record`] is handed
//! also goes to whoever is watching (the dashboard's live table), whether or not the
//! ledger itself is enabled.
//!
//! Publishing is on the request path, so it costs one atomic load when nobody watches
//! (the usual case) and one `Arc` allocation plus a clone of the row when someone does.
//! A slow watcher never slows the proxy: the channel is a bounded ring, and a watcher
//! that falls behind skips rows (it is told how many).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::broadcast;

use super::UsageRecord;

/// Rows a watcher may fall behind before it starts skipping.
const CAPACITY: usize = 256;

/// Cheap to clone; every clone publishes to the same watchers.
#[derive(Debug, Clone)]
pub struct LiveFeed {
    sender: broadcast::Sender<Arc<UsageRecord>>,
    /// Our own count of [`LiveReceiver`]s: the broadcast channel's count takes a lock,
    /// this is one atomic load on the request path.
    watchers: Arc<AtomicUsize>,
}

impl Default for LiveFeed {
    fn default() -> Self {
        LiveFeed {
            sender: broadcast::channel(CAPACITY).0,
            watchers: Arc::default(),
        }
    }
}

/// One watcher's end of the feed; it stops counting as a watcher when dropped.
#[derive(Debug)]
pub struct LiveReceiver {
    receiver: broadcast::Receiver<Arc<UsageRecord>>,
    watchers: Arc<AtomicUsize>,
}

impl LiveReceiver {
    /// The next row, or how many rows this watcher fell behind by.
    pub async fn recv(&mut self) -> Result<Arc<UsageRecord>, broadcast::error::RecvError> {
        self.receiver.recv().await
    }
}

impl Drop for LiveReceiver {
    fn drop(&mut self) {
        self.watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

impl LiveFeed {
    /// Hand `record` to every current watcher; nothing happens when there is none.
    #[inline]
    pub fn publish(&self, record: &UsageRecord) {
        if self.watchers.load(Ordering::Relaxed) > 0 {
            // Err means the last watcher left in between: nobody to tell.
            let _ = self.sender.send(Arc::new(record.clone()));
        }
    }

    /// Rows recorded from now on.
    pub fn subscribe(&self) -> LiveReceiver {
        self.watchers.fetch_add(1, Ordering::Relaxed);
        LiveReceiver {
            receiver: self.sender.subscribe(),
            watchers: self.watchers.clone(),
        }
    }

    /// How many watchers there are now.
    pub fn watchers(&self) -> usize {
        self.watchers.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::RequestOutcome;

    fn row(n: i64) -> UsageRecord {
        UsageRecord {
            started_at_ms: n,
            session_id: None,
            scenario: "default".into(),
            provider: "ollama".into(),
            model: "m".into(),
            fallback_from: None,
            fallback_reason: None,
            context_overflowed: false,
            context_cleared_blocks: 0,
            context_cleared_tokens: 0,
            client: None,
            repairs: None,
            tool_call_failures: 0,
            input_tokens: 1,
            output_tokens: 2,
            cache_read_tokens: 0,
            cache_write_tokens: 0,
            tokens_estimated: false,
            time_to_first_token_ms: None,
            duration_ms: 3,
            outcome: RequestOutcome::Ok,
            http_status: 200,
            stream: false,
        }
    }

    #[tokio::test]
    async fn watchers_get_rows_published_after_they_subscribe() {
        let feed = LiveFeed::default();
        feed.publish(&row(1)); // nobody watches: dropped
        let mut rx = feed.subscribe();
        assert_eq!(feed.watchers(), 1);
        feed.clone().publish(&row(2));
        assert_eq!(rx.recv().await.unwrap().started_at_ms, 2);
        drop(rx);
        assert_eq!(feed.watchers(), 0);
        feed.publish(&row(3)); // nobody watches again
        let mut late = feed.subscribe();
        feed.publish(&row(4));
        assert_eq!(late.recv().await.unwrap().started_at_ms, 4);
    }

    #[tokio::test]
    async fn a_slow_watcher_skips_rows_instead_of_blocking() {
        let feed = LiveFeed::default();
        let mut rx = feed.subscribe();
        for n in 0..(CAPACITY as i64 + 10) {
            feed.publish(&row(n));
        }
        match rx.recv().await {
            Err(broadcast::error::RecvError::Lagged(skipped)) => assert_eq!(skipped, 10),
            other => panic!("expected a lag notice, got {other:?}"),
        }
        assert_eq!(rx.recv().await.unwrap().started_at_ms, 10);
    }
}
