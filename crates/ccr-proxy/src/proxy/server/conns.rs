//! The open connections, so that a cap on them can close the right ones.
//!
//! Each connection is in one of three states: serving a request (never closed here),
//! reading a head (a new connection, or one that received bytes since its last
//! answer), or idle keep-alive. Past the cap, a new connection first closes the
//! oldest one still reading a head (a slow-loris flood is made of those), then the
//! connection idle the longest; when every connection is serving, the new one is
//! closed instead. A flood of partial heads can then never starve a real request.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// What one connection is doing, updated by its IO ([`Tracked`]) and its requests
/// ([`Busy`]).
#[derive(Debug)]
pub struct ConnState {
    /// Requests being served (HTTP/2 can have several).
    active: AtomicU32,
    /// Bytes arrived while no request was being served: a head is being read.
    reading_head: AtomicBool,
    /// When the last request ended, in ms since the registry started.
    idle_since_ms: AtomicU64,
    epoch: Instant,
    /// Wakes the connection's task to close it.
    pub close: Notify,
}

impl ConnState {
    fn new(epoch: Instant) -> ConnState {
        ConnState {
            active: AtomicU32::new(0),
            // A new connection is waiting for its first head.
            reading_head: AtomicBool::new(true),
            idle_since_ms: AtomicU64::new(0),
            epoch,
            close: Notify::new(),
        }
    }

    /// A request starts; the returned guard ends it when dropped (with its answer).
    pub fn busy(self: &Arc<Self>) -> Busy {
        self.active.fetch_add(1, Ordering::AcqRel);
        self.reading_head.store(false, Ordering::Release);
        Busy(Arc::clone(self))
    }

    fn read_bytes(&self) {
        if self.active.load(Ordering::Acquire) == 0 {
            self.reading_head.store(true, Ordering::Release);
        }
    }
}

/// A request in progress on a connection.
#[derive(Debug)]
pub struct Busy(Arc<ConnState>);

impl Drop for Busy {
    fn drop(&mut self) {
        let now = self.0.epoch.elapsed().as_millis() as u64;
        self.0.idle_since_ms.store(now, Ordering::Release);
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The open connections, in accept order.
#[derive(Debug)]
pub struct Registry {
    cap: usize,
    epoch: Instant,
    next_id: AtomicU64,
    open: Mutex<BTreeMap<u64, Arc<ConnState>>>,
}

/// A registered connection; dropping it unregisters.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    registry: Arc<Registry>,
    pub state: Arc<ConnState>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Ok(mut open) = self.registry.open.lock() {
            open.remove(&self.id);
        }
    }
}

impl Registry {
    pub fn new(cap: usize) -> Arc<Registry> {
        Arc::new(Registry {
            cap: cap.max(1),
            epoch: Instant::now(),
            next_id: AtomicU64::new(0),
            open: Mutex::new(BTreeMap::new()),
        })
    }

    /// Register a new connection, closing another first when at the cap. None: every
    /// open connection is serving a request, so the new one is to be closed.
    pub fn admit(self: &Arc<Self>) -> Option<Slot> {
        let mut open = self.open.lock().ok()?;
        if open.len() >= self.cap {
            let victim = victim(&open)?;
            if let Some(state) = open.remove(&victim) {
                state.close.notify_one();
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let state = Arc::new(ConnState::new(self.epoch));
        open.insert(id, Arc::clone(&state));
        Some(Slot {
            id,
            registry: Arc::clone(self),
            state,
        })
    }

    /// Connections open now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.open.lock().map_or(0, |o| o.len())
    }
}

/// The oldest connection reading a head, else the one idle the longest.
fn victim(open: &BTreeMap<u64, Arc<ConnState>>) -> Option<u64> {
    let not_serving = |s: &ConnState| s.active.load(Ordering::Acquire) == 0;
    let head = open
        .iter()
        .find(|(_, s)| not_serving(s) && s.reading_head.load(Ordering::Acquire));
    if let Some((id, _)) = head {
        return Some(*id);
    }
    open.iter()
        .filter(|(_, s)| not_serving(s))
        .min_by_key(|(_, s)| s.idle_since_ms.load(Ordering::Acquire))
        .map(|(id, _)| *id)
}

/// A connection's socket, noting when bytes arrive between requests.
pub struct Tracked<S> {
    pub io: S,
    pub state: Arc<ConnState>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.state.read_bytes();
        }
        polled
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_heads_go_first_then_the_longest_idle_never_a_busy_one() {
        let reg = Registry::new(3);
        let busy = reg.admit().unwrap();
        let _serving = busy.state.busy();
        let idle_old = reg.admit().unwrap();
        drop(idle_old.state.busy());
        let head = reg.admit().unwrap();
        // At the cap: the head is closed for the newcomer.
        let new = reg.admit().unwrap();
        assert_eq!(reg.len(), 3);
        assert!(!reg.open.lock().unwrap().contains_key(&head.id));
        // Then the idle keep-alive (the newcomer is a head too, so it goes first).
        drop(new.state.busy());
        std::thread::sleep(std::time::Duration::from_millis(2));
        drop(new.state.busy());
        let _newer = reg.admit().unwrap();
        assert!(!reg.open.lock().unwrap().contains_key(&idle_old.id));
        assert!(reg.open.lock().unwrap().contains_key(&busy.id));
        // Every connection serving: the newcomer is refused.
        let all_busy = Registry::new(1);
        let only = all_busy.admit().unwrap();
        let _b = only.state.busy();
        assert!(all_busy.admit().is_none());
    }
}
