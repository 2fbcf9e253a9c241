//! Serving the app: our own accept loop instead of `axum::serve`, because the HTTP/1
//! connection settings that bound memory are not reachable through it.
//!
//! hyper grows a connection's read buffer by doubling while reads fill it, up to
//! ~400 KB, and keeps it for the connection's life. A keep-alive connection that once
//! carried a 76 KB Claude Code request held ~270 KB of buffers; 32 of them were a
//! sixth of the proxy's peak memory. [`READ_BUFFER_MAX`] caps that, and Nagle's
//! algorithm is turned off on every connection (see [`serve`]).

use std::future::Future;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

/// Largest read buffer of one HTTP/1 connection. A request head must fit in it (a
/// larger one is answered 431): Claude Code's are about 1 KB, a browser's a few KB;
/// 16 KB is also Node's default limit, so claude-code-router refused the same heads.
/// A body larger than this is read in pieces of it.
pub const READ_BUFFER_MAX: usize = 16 * 1024;

/// Pause after an accept error (out of file descriptors, mostly) before trying again,
/// so a full table does not turn the loop into a busy spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serve `app` on `listener` until `shutdown` completes, then stop accepting and wait
/// for the open connections to finish their requests (the caller bounds that wait).
///
/// Nagle's algorithm is off on every connection: SSE events are small writes, and with
/// Nagle on each burst after the first can wait for the client's delayed ACK. Measured
/// with wrk, 76 KB streamed request, one connection: p99 86 ms and mean 2.8 ms with
/// it, 3.1 ms and 0.5 ms without.
pub async fn serve(
    listener: TcpListener,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().max_buf_size(READ_BUFFER_MAX);
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::debug!("accept failed: {e}");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!("connection ended: {e}");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
