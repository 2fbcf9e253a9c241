//! Serving the app: our own accept loop instead of `axum::serve`, because the HTTP/1
//! connection settings that bound memory are not reachable through it.
//!
//! hyper grows a connection's read buffer by doubling while reads fill it, up to
//! ~400 KB, and keeps it for the connection's life. A keep-alive connection that once
//! carried a 76 KB Claude Code request held ~270 KB of buffers; 32 of them were a
//! sixth of the proxy's peak memory. [`READ_BUFFER_MAX`] caps that, and Nagle's
//! algorithm is turned off on every connection (see [`serve`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use super::conns::{ConnState, Registry, Tracked};

/// Largest read buffer of one HTTP/1 connection. A request head must fit in it (a
/// larger one is answered 431): Claude Code's are about 1 KB, a browser's a few KB;
/// 16 KB is also Node's default limit, so claude-code-router refused the same heads.
/// A body larger than this is read in pieces of it.
pub const READ_BUFFER_MAX: usize = 16 * 1024;

/// Pause after an accept error (out of file descriptors, mostly) before trying again,
/// so a full table does not turn the loop into a busy spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// How long a client has to send a whole request head (HTTP/1). Claude Code, curl and
/// browsers send theirs at once; a connection that trickles one is closed. It also
/// closes keep-alive connections idle this long.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections served at most, whatever the file-descriptor limit allows.
pub const MAX_CONNECTIONS: usize = 4096;

/// File descriptors kept for everything but client connections: upstream connections
/// (one per request in flight, more while a fallback runs), the ledger, the logs.
const RESERVED_FDS: u64 = 256;

/// The bounds on client connections ([`serve_with`]).
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Open connections at most; past it, see [`super::conns`].
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

impl ConnLimits {
    /// [`MAX_CONNECTIONS`], or fewer when the open-file limit (raised to its hard
    /// limit first) would not hold them beside [`RESERVED_FDS`].
    pub fn from_fd_limit() -> ConnLimits {
        let fds = raise_fd_limit();
        ConnLimits {
            max_connections: (fds.saturating_sub(RESERVED_FDS) as usize).clamp(16, MAX_CONNECTIONS),
            header_read_timeout: HEADER_READ_TIMEOUT,
        }
    }
}

/// Raise the soft open-file limit to the hard one (systemd's soft default is 1,024)
/// and return the soft limit now in force.
fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return hard;
    }
    soft
}

/// Serve `app` on `listener` until `shutdown` completes, then stop accepting and wait
/// for the open connections to finish their requests (the caller bounds that wait).
/// The connection limits come from the open-file limit ([`ConnLimits::from_fd_limit`]).
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    serve_with(listener, app, shutdown, ConnLimits::from_fd_limit()).await;
}

/// [`serve`] with explicit connection limits.
///
/// Nagle's algorithm is off on every connection: SSE events are small writes, and with
/// Nagle on each burst after the first can wait for the client's delayed ACK. Measured
/// with wrk, 76 KB streamed request, one connection: p99 86 ms and mean 2.8 ms with
/// it, 3.1 ms and 0.5 ms without.
pub async fn serve_with(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
    limits: ConnLimits,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .max_buf_size(READ_BUFFER_MAX)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let registry = Registry::new(limits.max_connections);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(slot) = registry.admit() else {
            tracing::debug!("connection closed at once: every open connection is serving");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(tracked_service(app.clone(), &slot.state, peer));
        let io = Tracked {
            io: stream,
            state: Arc::clone(&slot.state),
        };
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(io), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            tokio::select! {
                ended = connection => if let Err(e) = ended {
                    tracing::trace!("connection ended: {e}");
                },
                () = slot.state.close.notified() => {
                    tracing::trace!("connection closed to make room");
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// `app`, marking the connection busy from a request's start until its answer (a whole
/// stream) has been sent or dropped, with the peer's address on each request.
fn tracked_service(
    app: axum::Router,
    conn: &Arc<ConnState>,
    peer: std::net::SocketAddr,
) -> impl tower::Service<
    http::Request<hyper::body::Incoming>,
    Response = axum::response::Response,
    Error = std::convert::Infallible,
    Future = impl Send,
> + Clone {
    let conn = Arc::clone(conn);
    tower::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        let busy = conn.busy();
        // The peer, for the throttle on wrong keys (`ConnectInfo`, as axum names it).
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let app = app.clone();
        async move {
            let resp = app.oneshot(req).await?;
            Ok(resp.map(|inner| {
                axum::body::Body::new(super::layers::Guarded {
                    inner,
                    _guard: busy,
                })
            }))
        }
    })
}
