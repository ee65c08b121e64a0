//! The listening socket and the accept loop: systemd's socket activation and readiness
//! notice, a bound on open connections, a deadline on request headers, a small
//! per-connection read buffer, and graceful shutdown. `axum::serve` sets none of these, so
//! a caller sending half a header could hold a connection (and its buffer) for good.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1::Builder;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::config::HttpConfig;

/// Largest read buffer of one HTTP/1 connection: the longest request head accepted, and
/// what one connection's body reads can hold at once. hyper's default (~400 KiB) times a
/// few hundred idle senders is already a large share of the memory budget.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// How long connections may finish their requests once shutdown has begun.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// The socket systemd passed (socket activation: the socket outlives restarts, so no
/// connection is refused while the service starts again), else a new one bound to
/// `listen`.
pub async fn bind(listen: &str) -> anyhow::Result<TcpListener> {
    use anyhow::Context;
    let inherited = listenfd::ListenFd::from_env()
        .take_tcp_listener(0)
        .context("taking the listening socket passed in LISTEN_FDS")?;
    if let Some(listener) = inherited {
        listener
            .set_nonblocking(true)
            .context("the listening socket passed in LISTEN_FDS")?;
        return TcpListener::from_std(listener)
            .context("the listening socket passed in LISTEN_FDS");
    }
    let addr: std::net::SocketAddr = listen
        .parse()
        .with_context(|| format!("listen address {listen:?}"))?;
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))
}

/// Tells systemd (a `Type=notify` unit, which set `NOTIFY_SOCKET`) that the service is
/// ready; without systemd there is nobody to tell.
pub fn notify_ready() {
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!("telling systemd the service is ready: {e}");
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open requests finish
/// (up to 30 s, `SHUTDOWN_GRACE`).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: &HttpConfig,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs))
        .max_buf_size(READ_BUFFER_BYTES);
    tokio::pin!(shutdown);
    loop {
        // Past the bound, new connections wait in the kernel's backlog rather than cost
        // memory here.
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: pause instead of spinning.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection ended: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open {SHUTDOWN_GRACE:?} after shutdown began; closing them"
        );
    }
}
