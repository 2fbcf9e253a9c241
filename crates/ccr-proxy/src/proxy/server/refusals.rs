//! The log line of a refused request: a bounded summary (method, the path cut at
//! [`PATH_MAX`] bytes, the reason), at most [`BURST`] lines at once and [`PER_SECOND`]
//! after that. Any web page can send refused requests as fast as the machine allows
//! (3,000 a second with 15 KB paths grew the log by 44 MB), so what they cost on disk
//! must not depend on what they send. Lines held back are counted, and the count is
//! logged with the next line that is let through.

use std::sync::Mutex;
use std::time::Instant;

use axum::http::Method;

use crate::sanitize;

/// Bytes of the path kept in a refusal's log line.
pub const PATH_MAX: usize = 128;
/// Bytes of the reason kept (reasons quote the client's Host or Origin).
const REASON_MAX: usize = 256;
/// Refusal lines logged in a burst.
pub const BURST: f64 = 20.0;
/// Refusal lines logged per second once the burst is spent.
pub const PER_SECOND: f64 = 2.0;

/// A token bucket: `take` says whether a line may be written now and how many were
/// held back since the last one that was.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last: Option<Instant>,
    held_back: u64,
}

impl Bucket {
    const fn new() -> Bucket {
        Bucket {
            tokens: BURST,
            last: None,
            held_back: 0,
        }
    }

    fn take(&mut self, now: Instant) -> Option<u64> {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * PER_SECOND;
            self.tokens = (self.tokens + refill).min(BURST);
        }
        self.last = Some(now);
        if self.tokens < 1.0 {
            self.held_back += 1;
            return None;
        }
        self.tokens -= 1.0;
        Some(std::mem::take(&mut self.held_back))
    }
}

static BUCKET: Mutex<Bucket> = Mutex::new(Bucket::new());

/// Log that `method path` was refused for `reason`, within the rate.
pub(super) fn log(method: &Method, path: &str, reason: &str) {
    let held_back = match BUCKET.lock() {
        Ok(mut bucket) => bucket.take(Instant::now()),
        Err(_) => return,
    };
    if let Some(held_back) = held_back {
        tracing::warn!("{}", line(method, path, reason, held_back));
    }
}

fn line(method: &Method, path: &str, reason: &str, held_back: u64) -> String {
    let mut line = format!(
        "{} {} refused: {}",
        sanitize::field(method.as_str()),
        sanitize::untrusted(path, PATH_MAX),
        sanitize::untrusted(reason, REASON_MAX)
    );
    if held_back > 0 {
        line.push_str(&format!(
            " ({held_back} earlier refusals not logged: more than {PER_SECOND} a second)"
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_flood_is_logged_at_the_rate_and_counted() {
        let mut bucket = Bucket::new();
        let start = Instant::now();
        let logged = (0..3000).filter(|_| bucket.take(start).is_some()).count();
        assert_eq!(logged, BURST as usize);
        // One second later: two lines, the first carrying the count held back.
        let later = start + Duration::from_secs(1);
        assert_eq!(bucket.take(later), Some(3000 - BURST as u64));
        assert_eq!(bucket.take(later), Some(0));
        assert_eq!(bucket.take(later), None);
    }

    #[test]
    fn the_line_is_bounded_and_one_line() {
        let path = format!("/{}\n2026 INFO forged", "a".repeat(15_000));
        let reason = format!("Host \"{}\" is not ours", "h".repeat(10_000));
        let l = line(&Method::POST, &path, &reason, 7);
        assert!(l.len() < PATH_MAX + REASON_MAX + 200, "{} bytes", l.len());
        assert!(!l.contains('\n'));
        assert!(l.ends_with("(7 earlier refusals not logged: more than 2 a second)"));
        let short = line(&Method::GET, "/v1/x\x1b[2J", "no", 0);
        assert_eq!(short, "GET /v1/x\\u{1b}[2J refused: no");
    }
}
