//! The HTTP server loop: accepting connections within a limit, serving each with hyper under
//! header, idle and write-stall timeouts, and the graceful shutdown.
//!
//! Written here rather than taken from poem's `Server`, which offers none of the timeouts and
//! no connection limit: without them, a client that sends half a header, or a thousand that do,
//! hold their sockets for ever, and at the fd limit the accept loop spins.

use std::{
    convert::Infallible,
    future::Future,
    io,
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper_util::{
    rt::{TokioExecutor, TokioIo, TokioTimer},
    server::conn::auto,
};
use poem::{
    http::uri::Scheme,
    web::{LocalAddr, RemoteAddr},
    Addr, Endpoint, Response,
};
use tokio::{net::TcpListener, sync::Semaphore};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use crate::{
    config::Limits,
    connection::{ConnectionRegistry, WatchedStream},
};

/// File descriptors kept free for everything but client connections: each codex run holds a
/// few pipes and files, the app-server its own, and the runtime a handful.
const RESERVED_FDS_BASE: u64 = 64;
const RESERVED_FDS_PER_RUN: u64 = 8;
/// How long a stopped server gives its streams to send their last event and `[DONE]`.
const LAST_WORDS: Duration = Duration::from_secs(2);
/// The longest pause after an accept that failed for want of resources.
const MAX_ACCEPT_BACKOFF: Duration = Duration::from_secs(1);

/// How the loop serves connections, from [`Limits`].
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub stall_limit: Duration,
    pub http2_max_streams: u32,
    pub shutdown_grace: Duration,
}

impl ServeOptions {
    /// The options for `limits`; without `MAX_CONNECTIONS`, the connection limit is what the
    /// process's fd limit leaves after the codex runs' share.
    pub fn new(limits: &Limits) -> Self {
        ServeOptions {
            max_connections: limits
                .max_connections
                .unwrap_or_else(|| connections_for_fd_limit(raise_fd_limit(), limits)),
            header_timeout: limits.header_timeout,
            stall_limit: limits.codex_idle_timeout,
            http2_max_streams: limits.http2_max_streams,
            shutdown_grace: limits.shutdown_grace,
        }
    }
}

/// Raises the soft fd limit to the hard one, as servers commonly do, and returns it.
fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) => {
            if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
                hard
            } else {
                soft
            }
        }
        Err(_) => 1024,
    }
}

fn connections_for_fd_limit(fd_limit: u64, limits: &Limits) -> usize {
    let reserved = RESERVED_FDS_BASE + RESERVED_FDS_PER_RUN * limits.max_concurrency as u64;
    fd_limit.saturating_sub(reserved).max(16) as usize
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets open requests finish for
/// the grace period; after it, `stop_runs` is cancelled so every running request ends with an
/// error its client can read, and what is still open a moment later is dropped.
pub async fn run<E>(
    listener: TcpListener,
    app: E,
    registry: Arc<ConnectionRegistry>,
    options: ServeOptions,
    shutdown: impl Future<Output = ()>,
    stop_runs: CancellationToken,
) where
    E: Endpoint<Output = Response> + 'static,
{
    let app = Arc::new(app);
    let connections = Arc::new(Semaphore::new(options.max_connections));
    let tracker = TaskTracker::new();
    let closing = CancellationToken::new();
    let local = listener.local_addr().ok();
    let mut backoff = Duration::ZERO;
    tracing::debug!(
        max_connections = options.max_connections,
        "accepting connections"
    );
    tokio::pin!(shutdown);
    loop {
        // At the limit, new connections wait in the kernel's backlog until one closes.
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = connections.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
        };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => {
                backoff = Duration::ZERO;
                accepted
            }
            Err(err) if is_resource_exhaustion(&err) => {
                backoff = (backoff * 2).clamp(Duration::from_millis(10), MAX_ACCEPT_BACKOFF);
                tracing::warn!(%err, pause_ms = backoff.as_millis() as u64, "cannot accept a connection; pausing");
                tokio::time::sleep(backoff).await;
                continue;
            }
            Err(err) => {
                tracing::debug!(%err, "a connection failed while it was accepted");
                continue;
            }
        };
        let connection = Connection {
            app: app.clone(),
            registry: registry.clone(),
            options: options.clone(),
            local: local.unwrap_or(peer),
            peer,
        };
        let closing = closing.clone();
        tracker.spawn(async move {
            connection.serve(socket, closing).await;
            drop(permit);
        });
    }
    drop(listener);
    closing.cancel();
    tracker.close();
    if tokio::time::timeout(options.shutdown_grace, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            connections = tracker.len(),
            "requests still running after SHUTDOWN_GRACE_SECS; stopping them"
        );
        stop_runs.cancel();
        let _ = tokio::time::timeout(LAST_WORDS, tracker.wait()).await;
    }
}

/// The accept errors that say the process or system is out of something: retrying at once
/// would only spin.
fn is_resource_exhaustion(err: &io::Error) -> bool {
    use nix::errno::Errno;
    matches!(
        err.raw_os_error().map(Errno::from_raw),
        Some(Errno::EMFILE | Errno::ENFILE | Errno::ENOBUFS | Errno::ENOMEM)
    )
}

struct Connection<E> {
    app: Arc<E>,
    registry: Arc<ConnectionRegistry>,
    options: ServeOptions,
    local: SocketAddr,
    peer: SocketAddr,
}

impl<E: Endpoint<Output = Response> + 'static> Connection<E> {
    async fn serve(self, socket: tokio::net::TcpStream, closing: CancellationToken) {
        // Replies are streams of small writes; Nagle's algorithm would hold each one back for
        // the peer's delayed ACK (about 40 ms).
        if let Err(err) = socket.set_nodelay(true) {
            tracing::debug!(%err, "could not set TCP_NODELAY");
        }
        let io = WatchedStream::register(
            socket,
            self.peer,
            self.registry.clone(),
            self.options.stall_limit,
        );
        let activity = Arc::new(Activity::default());
        let (app, local, remote, requests) = (
            self.app.clone(),
            LocalAddr(Addr::SocketAddr(self.local)),
            RemoteAddr(Addr::SocketAddr(self.peer)),
            activity.clone(),
        );
        let service = hyper::service::service_fn(move |req| {
            let (app, local, remote) = (app.clone(), local.clone(), remote.clone());
            let request = InFlight::new(requests.clone());
            async move {
                let req = poem::Request::from((req, local, remote, Scheme::HTTP));
                let response =
                    hyper::Response::<BoxBody<Bytes, io::Error>>::from(app.get_response(req).await);
                // The request counts as in flight until its reply's body is done or dropped.
                Ok::<_, Infallible>(response.map(|body| {
                    BoxBody::new(Guarded {
                        body,
                        _request: request,
                    })
                }))
            }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            // hyper starts this timer whenever it waits for a request head, so it also closes
            // keep-alive connections left idle.
            .header_read_timeout(self.options.header_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.options.http2_max_streams)
            .max_pending_accept_reset_streams(20)
            .max_header_list_size(16 * 1024);
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(connection);
        // hyper closes idle HTTP/1 connections itself; an HTTP/2 one with no request in flight
        // for the header timeout is closed here.
        let idle_limit = self.options.header_timeout;
        let mut check = tokio::time::interval(idle_limit.max(Duration::from_millis(200)) / 4);
        let idle = loop {
            tokio::select! {
                _ = connection.as_mut() => return,
                () = closing.cancelled() => break false,
                _ = check.tick() => {
                    if activity.idle_for() >= idle_limit {
                        tracing::debug!(peer = %self.peer, "closing a connection idle for HEADER_TIMEOUT_SECS");
                        break true;
                    }
                }
            }
        };
        connection.as_mut().graceful_shutdown();
        if idle {
            // An HTTP/2 goodbye waits for the client to acknowledge it; an idle client that
            // never does is dropped.
            let _ = tokio::time::timeout(idle_limit, connection).await;
        } else {
            let _ = connection.await;
        }
    }
}

/// A connection's requests in flight, and since when it has had none.
struct Activity {
    in_flight: std::sync::atomic::AtomicUsize,
    quiet_since: std::sync::Mutex<Instant>,
}

impl Default for Activity {
    fn default() -> Self {
        Activity {
            in_flight: 0.into(),
            quiet_since: std::sync::Mutex::new(Instant::now()),
        }
    }
}

impl Activity {
    fn idle_for(&self) -> Duration {
        if self.in_flight.load(std::sync::atomic::Ordering::Acquire) > 0 {
            return Duration::ZERO;
        }
        self.quiet_since.lock().expect("activity lock").elapsed()
    }
}

/// One request in flight on a connection, from its head to the end of its reply.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn new(activity: Arc<Activity>) -> Self {
        activity
            .in_flight
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        InFlight(activity)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.quiet_since.lock().expect("activity lock") = Instant::now();
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A reply body that keeps its request counted as in flight.
struct Guarded {
    body: BoxBody<Bytes, io::Error>,
    _request: InFlight,
}

impl hyper::body::Body for Guarded {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, io::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connection_limit_leaves_fds_for_codex_runs() {
        let limits = Limits {
            max_concurrency: 8,
            ..Limits::default()
        };
        assert_eq!(connections_for_fd_limit(20_000, &limits), 20_000 - 64 - 64);
        assert_eq!(connections_for_fd_limit(100, &limits), 16);
        let pinned = Limits {
            max_connections: Some(7),
            ..Limits::default()
        };
        assert_eq!(ServeOptions::new(&pinned).max_connections, 7);
    }
}
