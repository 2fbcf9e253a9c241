//! Replicas of one model (`api_base_url` given as a list) and which one a request goes
//! to. A session sticks to one replica, because the replica holds the session's prompt
//! in its KV cache: sending turn 2 elsewhere recomputes the whole prompt.
//!
//! **Affinity.** Each request carries a key: the FNV-1a hash of the Claude Code session
//! id, else of the first user message (the same for every turn of a conversation).
//! Replicas are ranked by rendezvous (highest-random-weight) hashing of key and URL,
//! so adding a replica to `n` moves only the ~1/(n+1) sessions that now rank it first,
//! and removing one moves only its own sessions. FNV, not the std hasher, because the
//! ranking must survive a restart of the proxy.
//!
//! **Moving.** A session leaves its replica only while that replica is down (it refused
//! a connection, or failed [`FAILURES_TO_MARK_DOWN`] times in a row; it is tried again
//! after [`RETRY_AFTER`]) or holds `replica_max_in_flight` requests. When every
//! replica is down or full, the session's own replica is tried first anyway.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::{Replica, MAX_REPLICAS};
use crate::proxy::wire::anthropic::MessagesRequest;

/// How long a replica that refused a connection (or kept failing) is passed over.
pub const RETRY_AFTER: Duration = Duration::from_secs(10);

/// Consecutive failed answers (5xx, timeouts) after which a replica counts as down.
pub const FAILURES_TO_MARK_DOWN: u32 = 3;

/// The affinity key of a request: its session id's hash, else its first user message's.
pub fn affinity_key(session_id: Option<&str>, req: &MessagesRequest) -> u64 {
    if let Some(id) = session_id {
        return session_key(id);
    }
    let mut h = fnv::FnvHasher::default();
    if let Some(first) = req.messages.iter().find(|m| m.role == "user") {
        // Streamed into the hasher: no copy of a possibly large message.
        let _ = serde_json::to_writer(HashWriter(&mut h), &first.content);
    }
    h.finish()
}

/// The affinity key of a session id (FNV-1a of its bytes).
pub fn session_key(id: &str) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write(id.as_bytes());
    h.finish()
}

struct HashWriter<'a>(&'a mut fnv::FnvHasher);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The rendezvous weight of `replica` for `key`: FNV-1a over both, then a 64-bit
/// finaliser (splitmix64's) so that the high bits, which decide the order, depend on
/// every input bit.
pub fn weight(key: u64, replica: u64) -> u64 {
    let mut h = fnv::FnvHasher::default();
    h.write_u64(key);
    h.write_u64(replica);
    let mut z = h.finish();
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The replica a session belongs on when all are up: the one of highest weight.
pub fn preferred(key: u64, replicas: &[Replica]) -> usize {
    (0..replicas.len())
        .max_by_key(|&i| (weight(key, replicas[i].hash), std::cmp::Reverse(i)))
        .unwrap_or(0)
}

/// The order in which a request tries the replicas, on the stack.
#[derive(Debug)]
pub struct Order {
    /// (tier, reversed weight, index), sorted: up and free first, then full, then down.
    ranked: [(u8, u64, u8); MAX_REPLICAS],
    len: usize,
}

impl Order {
    pub fn indexes(&self) -> impl Iterator<Item = usize> + '_ {
        self.ranked[..self.len]
            .iter()
            .map(|&(_, _, i)| usize::from(i))
    }

    /// The replica the session belongs on (whether or not it is tried first).
    pub fn preferred(&self) -> usize {
        let best = self.ranked[..self.len].iter().min_by_key(|&&(_, w, _)| w);
        best.map_or(0, |&(_, _, i)| usize::from(i))
    }
}

#[derive(Debug, Default)]
struct ReplicaState {
    in_flight: Arc<AtomicU32>,
    down_until: Option<Instant>,
    failures: u32,
}

/// What the proxy knows about every replica it sent to, keyed by URL hash, so a
/// config reload keeps it.
#[derive(Debug, Default)]
pub struct ReplicaTable {
    inner: Mutex<HashMap<u64, ReplicaState>>,
}

/// One request's claim on a replica's in-flight count, released when dropped (with
/// the answer's body, see [`Lease::hold_during`]).
#[derive(Debug)]
pub struct Lease(Arc<AtomicU32>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl ReplicaTable {
    /// The order for `key` as of now.
    pub fn order(&self, key: u64, replicas: &[Replica], max_in_flight: Option<u32>) -> Order {
        let now = Instant::now();
        let mut ranked = [(0u8, 0u64, 0u8); MAX_REPLICAS];
        let len = replicas.len().min(MAX_REPLICAS);
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        for (i, replica) in replicas.iter().take(len).enumerate() {
            let tier = match map.get(&replica.hash) {
                Some(s) if s.down_until.is_some_and(|t| t > now) => 2,
                Some(s)
                    if max_in_flight
                        .is_some_and(|limit| s.in_flight.load(Ordering::Relaxed) >= limit) =>
                {
                    1
                }
                _ => 0,
            };
            ranked[i] = (tier, u64::MAX - weight(key, replica.hash), i as u8);
        }
        drop(map);
        ranked[..len].sort_unstable();
        Order { ranked, len }
    }

    /// Count a request in flight on `replica` until the lease is dropped.
    pub fn lease(&self, replica: &Replica) -> Lease {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let counter = Arc::clone(&map.entry(replica.hash).or_default().in_flight);
        counter.fetch_add(1, Ordering::Relaxed);
        Lease(counter)
    }

    /// `replica` answered: it is up.
    pub fn succeeded(&self, replica: &Replica) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = map.get_mut(&replica.hash) {
            s.failures = 0;
            s.down_until = None;
        }
    }

    /// `replica` refused a connection (`refused`) or failed an answer; true when this
    /// marked it down.
    pub fn failed(&self, replica: &Replica, refused: bool) -> bool {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.entry(replica.hash).or_default();
        s.failures += 1;
        if refused || s.failures >= FAILURES_TO_MARK_DOWN {
            s.failures = 0;
            s.down_until = Some(Instant::now() + RETRY_AFTER);
            return true;
        }
        false
    }

    /// Requests in flight on `replica` now.
    pub fn in_flight(&self, replica: &Replica) -> u32 {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&replica.hash)
            .map_or(0, |s| s.in_flight.load(Ordering::Relaxed))
    }
}

impl Lease {
    /// `response` with this lease held until its body is read to the end or dropped:
    /// a streamed answer occupies its replica for as long as it streams.
    pub fn hold_during(self, response: reqwest::Response) -> reqwest::Response {
        let response = http::Response::<reqwest::Body>::from(response);
        let (parts, body) = response.into_parts();
        let body = reqwest::Body::wrap(Leased { body, _lease: self });
        reqwest::Response::from(http::Response::from_parts(parts, body))
    }
}

/// A body that holds a [`Lease`].
struct Leased {
    body: reqwest::Body,
    _lease: Lease,
}

impl http_body::Body for Leased {
    type Data = bytes::Bytes;
    type Error = reqwest::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicas(n: usize) -> Vec<Replica> {
        (0..n)
            .map(|i| Replica::new(format!("http://10.0.0.{i}:8000/v1/chat/completions")))
            .collect()
    }

    fn key(i: usize) -> u64 {
        let mut h = fnv::FnvHasher::default();
        h.write(format!("session-{i}").as_bytes());
        h.finish()
    }

    #[test]
    fn adding_a_replica_moves_about_one_in_n_sessions_and_only_to_it() {
        const SESSIONS: usize = 20_000;
        for n in [1, 2, 3, 7] {
            let (before, after) = (replicas(n), replicas(n + 1));
            let mut moved = 0;
            for s in 0..SESSIONS {
                let (a, b) = (preferred(key(s), &before), preferred(key(s), &after));
                if a != b {
                    assert_eq!(b, n, "a session moved to an old replica");
                    moved += 1;
                }
            }
            let fraction = moved as f64 / SESSIONS as f64;
            let ideal = 1.0 / (n + 1) as f64;
            println!(
                "{n} → {} replicas: {fraction:.4} of {SESSIONS} sessions moved",
                n + 1
            );
            assert!(
                (fraction - ideal).abs() < 0.02,
                "{n}→{}: {fraction:.3} moved, ideal {ideal:.3}",
                n + 1
            );
        }
    }

    #[test]
    fn sessions_spread_evenly() {
        let rs = replicas(4);
        let mut counts = [0usize; 4];
        for s in 0..20_000 {
            counts[preferred(key(s), &rs)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (4_500..5_500).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn a_down_replica_is_tried_last_and_comes_back_after_success() {
        let (table, rs) = (ReplicaTable::default(), replicas(3));
        let k = key(1);
        let home = preferred(k, &rs);
        assert_eq!(table.order(k, &rs, None).indexes().next(), Some(home));
        assert!(table.failed(&rs[home], true));
        let order: Vec<usize> = table.order(k, &rs, None).indexes().collect();
        assert_eq!(order.len(), 3);
        assert_eq!(order[2], home, "{order:?}");
        assert_eq!(table.order(k, &rs, None).preferred(), home);
        table.succeeded(&rs[home]);
        assert_eq!(table.order(k, &rs, None).indexes().next(), Some(home));
    }

    #[test]
    fn answers_that_fail_mark_a_replica_down_only_after_several() {
        let (table, rs) = (ReplicaTable::default(), replicas(2));
        assert!(!table.failed(&rs[0], false));
        assert!(!table.failed(&rs[0], false));
        assert!(table.failed(&rs[0], false));
    }

    #[test]
    fn a_full_replica_sends_the_session_on_until_a_lease_ends() {
        let (table, rs) = (ReplicaTable::default(), replicas(2));
        let k = key(7);
        let home = preferred(k, &rs);
        let lease = table.lease(&rs[home]);
        assert_eq!(table.in_flight(&rs[home]), 1);
        assert_ne!(table.order(k, &rs, Some(1)).indexes().next(), Some(home));
        assert_eq!(table.order(k, &rs, Some(2)).indexes().next(), Some(home));
        assert_eq!(table.order(k, &rs, None).indexes().next(), Some(home));
        drop(lease);
        assert_eq!(table.in_flight(&rs[home]), 0);
        assert_eq!(table.order(k, &rs, Some(1)).indexes().next(), Some(home));
    }

    #[test]
    fn the_key_is_the_session_else_the_first_user_message() {
        let req = |first: &str| -> MessagesRequest {
            serde_json::from_value(serde_json::json!({"model": "m", "messages": [
                {"role": "user", "content": first},
                {"role": "assistant", "content": "x"}]}))
            .unwrap()
        };
        assert_eq!(
            affinity_key(Some("s"), &req("a")),
            affinity_key(Some("s"), &req("b"))
        );
        assert_eq!(affinity_key(None, &req("a")), affinity_key(None, &req("a")));
        assert_ne!(affinity_key(None, &req("a")), affinity_key(None, &req("b")));
        // Stable across builds and restarts: FNV-1a of the bytes.
        assert_eq!(affinity_key(Some("s"), &req("a")), 0xaf63_ee4c_8602_0b22);
    }
}
