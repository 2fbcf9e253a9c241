//! Who may see the dashboard when the proxy has an `APIKEY`.
//!
//! A browser cannot send the key as a header, and a key in a URL ends up in history and
//! logs. So `ccr-setup ui` (which knows the key) asks the proxy for a **ticket**: random,
//! one use, valid for two minutes. It opens `/ui/login?ticket=…`; the proxy trades the
//! ticket for a **session** cookie (`HttpOnly`, so page scripts never see it;
//! `SameSite=Strict`, so other sites cannot make the browser send it) and redirects to
//! the dashboard. Sessions end after 12 hours, when the proxy restarts, or when the
//! `APIKEY` they were opened under changes. Without an `APIKEY` the dashboard is as open
//! as the proxy itself (which then listens on loopback only).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

/// The cookie that carries a session.
pub const COOKIE: &str = "ccr_ui_session";

/// How long a ticket may wait to be used.
pub const TICKET_TTL: Duration = Duration::from_secs(120);

/// How long a session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// At most this many unused tickets and open sessions are kept (oldest go first), so a
/// client holding the key cannot grow the proxy's memory by asking over and over.
const MAX_TICKETS: usize = 8;
const MAX_SESSIONS: usize = 32;

/// Why the random source failed (the OS refused; practically never).
#[derive(Debug, thiserror::Error)]
#[error("cannot read random bytes for a dashboard token: {0}")]
pub struct RandomError(String);

struct Entry {
    token: String,
    expires: Instant,
    /// The `APIKEY` the entry was issued under.
    key: String,
}

#[derive(Default)]
struct Inner {
    tickets: Vec<Entry>,
    sessions: Vec<Entry>,
}

/// Tickets and sessions, in memory only.
#[derive(Default)]
pub struct Sessions {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sessions { .. }") // never print tokens
    }
}

/// 32 random bytes as hex.
fn random_token() -> Result<String, RandomError> {
    let mut bytes = [0u8; 32];
    getrandom::getrandom(&mut bytes).map_err(|e| RandomError(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Keep live entries, at most `max - 1` of them, so one more fits.
fn prune(entries: &mut Vec<Entry>, now: Instant, max: usize) {
    entries.retain(|e| e.expires > now);
    if entries.len() >= max {
        entries.sort_by_key(|e| e.expires);
        let extra = entries.len() + 1 - max;
        entries.drain(..extra);
    }
}

impl Sessions {
    /// A new one-use ticket for whoever holds `key`.
    pub fn issue_ticket(&self, key: &str) -> Result<String, RandomError> {
        let token = random_token()?;
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        prune(&mut inner.tickets, now, MAX_TICKETS);
        inner.tickets.push(Entry {
            token: token.clone(),
            expires: now + TICKET_TTL,
            key: key.to_owned(),
        });
        Ok(token)
    }

    /// Use up `ticket` and open a session for it; None when the ticket is unknown,
    /// used, expired, or was issued under another `APIKEY`.
    pub fn redeem(&self, ticket: &str, key: &str) -> Result<Option<String>, RandomError> {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let Some(pos) = inner.tickets.iter().position(|e| same(&e.token, ticket)) else {
            return Ok(None);
        };
        let entry = inner.tickets.swap_remove(pos);
        if entry.expires <= now || !same(&entry.key, key) {
            return Ok(None);
        }
        let session = random_token()?;
        prune(&mut inner.sessions, now, MAX_SESSIONS);
        inner.sessions.push(Entry {
            token: session.clone(),
            expires: now + SESSION_TTL,
            key: key.to_owned(),
        });
        Ok(Some(session))
    }

    /// Is `session` open, under the current `key`?
    pub fn is_valid(&self, session: &str, key: &str) -> bool {
        let now = Instant::now();
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .sessions
            .iter()
            .any(|e| same(&e.token, session) && e.expires > now && same(&e.key, key))
    }
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie_value<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k.trim() == name).then(|| v.trim())
    })
}

/// The `Set-Cookie` value for a new session.
pub fn session_cookie(session: &str) -> String {
    format!(
        "{COOKIE}={session}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_TTL.as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ticket_opens_one_session_once() {
        let s = Sessions::default();
        let ticket = s.issue_ticket("key-1").unwrap();
        assert_eq!(ticket.len(), 64);
        let session = s.redeem(&ticket, "key-1").unwrap().expect("a session");
        assert_ne!(session, ticket);
        assert!(s.is_valid(&session, "key-1"));
        assert_eq!(s.redeem(&ticket, "key-1").unwrap(), None, "used twice");
        assert!(!s.is_valid("0".repeat(64).as_str(), "key-1"));
        assert!(!s.is_valid(&ticket, "key-1"), "a ticket is not a session");
    }

    #[test]
    fn a_changed_apikey_ends_tickets_and_sessions() {
        let s = Sessions::default();
        let ticket = s.issue_ticket("old").unwrap();
        assert_eq!(s.redeem(&ticket, "new").unwrap(), None);
        let ticket = s.issue_ticket("old").unwrap();
        let session = s.redeem(&ticket, "old").unwrap().unwrap();
        assert!(!s.is_valid(&session, "new"));
    }

    #[test]
    fn tickets_and_sessions_are_bounded() {
        let s = Sessions::default();
        let tickets: Vec<String> = (0..MAX_TICKETS + 3)
            .map(|_| s.issue_ticket("k").unwrap())
            .collect();
        assert_eq!(s.inner.lock().unwrap().tickets.len(), MAX_TICKETS);
        // The oldest were dropped, the newest still work.
        assert_eq!(s.redeem(&tickets[0], "k").unwrap(), None);
        assert!(s.redeem(tickets.last().unwrap(), "k").unwrap().is_some());
        for _ in 0..MAX_SESSIONS + 5 {
            let t = s.issue_ticket("k").unwrap();
            s.redeem(&t, "k").unwrap().unwrap();
        }
        assert_eq!(s.inner.lock().unwrap().sessions.len(), MAX_SESSIONS);
    }

    #[test]
    fn cookie_header_parsing() {
        let h = "a=1; ccr_ui_session=abc ; b=2";
        assert_eq!(cookie_value(h, COOKIE), Some("abc"));
        assert_eq!(cookie_value("x=1", COOKIE), None);
        let c = session_cookie("s");
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/ui"));
    }
}
