//! A throttle on wrong API keys, per client: after [`FAILURES_ALLOWED`] failures a
//! client's requests are answered 429 without their key being compared, until its
//! bucket refills ([`REFILL`] per failure). Guessing a short `APIKEY` then costs hours
//! instead of seconds.
//!
//! The client is the peer address, except that a peer on loopback (a reverse proxy
//! on this machine) is told apart by the last `X-Forwarded-For` entry, the one the
//! reverse proxy added: clients behind one reverse proxy are not locked out together,
//! and a client cannot pick another bucket by writing its own `X-Forwarded-For`
//! (the proxy appends the real address after it).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::HeaderMap;

/// Wrong keys a client may send in a burst.
pub const FAILURES_ALLOWED: f64 = 10.0;
/// One more attempt per this much time.
pub const REFILL: Duration = Duration::from_secs(3);
/// Clients remembered at most; past it the table is cleared (a flood of addresses
/// only resets the throttle, it cannot take memory).
const MAX_CLIENTS: usize = 4096;

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

#[derive(Debug, Default)]
pub struct AuthThrottle {
    clients: Mutex<HashMap<String, Bucket>>,
    /// Some client's bucket is not full: false on a proxy whose clients all send
    /// good keys, so a request skips naming its client and the lock.
    tracking: AtomicBool,
}

impl AuthThrottle {
    /// Whether any client has failed lately (its bucket not yet refilled): only then
    /// can [`AuthThrottle::blocked`] say anything but None.
    pub fn tracking(&self) -> bool {
        self.tracking.load(Ordering::Acquire)
    }

    /// None when `client` may try a key now; else how long until it may. A bucket
    /// found full again is forgotten.
    pub fn blocked(&self, client: &str, now: Instant) -> Option<Duration> {
        let mut clients = self.clients.lock().ok()?;
        let bucket = clients.get_mut(client)?;
        refill(bucket, now);
        if bucket.tokens >= FAILURES_ALLOWED {
            clients.remove(client);
            if clients.is_empty() {
                self.tracking.store(false, Ordering::Release);
            }
            return None;
        }
        (bucket.tokens < 1.0).then(|| REFILL.mul_f64(1.0 - bucket.tokens))
    }

    /// `client` sent a wrong (or no) key.
    pub fn failed(&self, client: &str, now: Instant) {
        let Ok(mut clients) = self.clients.lock() else {
            return;
        };
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(client) {
            clients.clear();
        }
        let bucket = clients.entry(client.to_owned()).or_insert(Bucket {
            tokens: FAILURES_ALLOWED,
            at: now,
        });
        refill(bucket, now);
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
        self.tracking.store(true, Ordering::Release);
    }
}

fn refill(bucket: &mut Bucket, now: Instant) {
    let gained = now.saturating_duration_since(bucket.at).as_secs_f64() / REFILL.as_secs_f64();
    bucket.tokens = (bucket.tokens + gained).min(FAILURES_ALLOWED);
    bucket.at = now;
}

/// The throttle's name for a request's client (see the module doc).
pub fn client_key(peer: Option<SocketAddr>, headers: &HeaderMap) -> String {
    let Some(peer) = peer else {
        return "-".to_owned();
    };
    if peer.ip().is_loopback() {
        // The last entry of the last header: the one the reverse proxy appended.
        let forwarded = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .and_then(|a| a.trim().parse::<IpAddr>().ok());
        if let Some(client) = forwarded {
            return client.to_string();
        }
    }
    peer.ip().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guesser_is_blocked_and_slowly_let_back() {
        let t = AuthThrottle::default();
        let now = Instant::now();
        for _ in 0..10 {
            assert_eq!(t.blocked("a", now), None);
            t.failed("a", now);
        }
        assert!(t.blocked("a", now).is_some());
        assert_eq!(t.blocked("b", now), None, "another client is not blocked");
        assert_eq!(t.blocked("a", now + REFILL), None);
    }

    #[test]
    fn a_throttle_with_no_failures_lately_is_not_tracking() {
        let t = AuthThrottle::default();
        let now = Instant::now();
        assert!(!t.tracking(), "nothing failed yet");
        t.failed("a", now);
        t.failed("b", now);
        assert!(t.tracking());
        // "a" refills to full: it is forgotten, but "b" is still tracked.
        assert_eq!(t.blocked("a", now + REFILL), None);
        assert!(t.tracking());
        assert_eq!(t.blocked("b", now + REFILL), None);
        assert!(!t.tracking(), "every bucket full again");
        // Failing again starts over from a full bucket.
        for _ in 0..10 {
            t.failed("a", now + REFILL);
        }
        assert!(t.tracking());
        assert!(t.blocked("a", now + REFILL).is_some());
    }

    #[test]
    fn clients_behind_a_local_reverse_proxy_are_told_apart() {
        let local: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let lan: SocketAddr = "192.168.1.9:5000".parse().unwrap();
        let mut h = HeaderMap::new();
        h.append("x-forwarded-for", "6.6.6.6, 10.0.0.7".parse().unwrap());
        assert_eq!(client_key(Some(local), &h), "10.0.0.7");
        // A direct client cannot choose its bucket.
        assert_eq!(client_key(Some(lan), &h), "192.168.1.9");
        assert_eq!(client_key(Some(local), &HeaderMap::new()), "127.0.0.1");
    }
}
