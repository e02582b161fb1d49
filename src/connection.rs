//! One accepted connection: noticing that its client has gone away while a request is still
//! being answered, and closing it when the client stops reading.
//!
//! The registry keeps a weak handle to each connection's socket, and a request waits on
//! [`ConnectionRegistry::client_gone`]: a peek that reads end-of-stream means the client closed,
//! and the request's run ends as a departure, at once, logged and counted as 499. (hyper, which
//! does not allow half-closed connections here, also drops the connection when it reads the FIN,
//! and with it the reply and its codex run; this makes that a reported departure rather than a
//! silent drop, whatever hyper happens to be reading.) A peek leaves the bytes in place, so the
//! server's own reading is undisturbed, and it shares the socket rather than a duplicate, so a
//! connection costs one file descriptor.
//!
//! A client that shuts down only its sending side after its request (a legal HTTP/1.1
//! half-close) looks exactly like one that closed: both are a FIN, and the difference shows only
//! when the server writes. It is taken as gone, as nginx does: stopping codex the moment a user
//! presses Stop matters more than the rare client that half-closes and still reads.

use std::{
    collections::HashMap,
    future::Future,
    io,
    net::SocketAddr,
    os::fd::AsFd,
    pin::Pin,
    sync::{Arc, Mutex, Weak},
    task::{ready, Context, Poll},
    time::Duration,
};

use poem::web::RemoteAddr;
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    time::Sleep,
};

/// The open connections, by the client's address.
#[derive(Debug, Default)]
pub struct ConnectionRegistry {
    sockets: Mutex<HashMap<SocketAddr, Weak<TcpStream>>>,
}

impl ConnectionRegistry {
    fn unregister(&self, addr: &SocketAddr) {
        self.sockets.lock().expect("registry lock").remove(addr);
    }

    /// Resolves when the client at `addr` has closed its connection; never resolves when that
    /// cannot be known (an unwatched connection, or one with more requests already sent).
    pub async fn client_gone(&self, addr: &RemoteAddr) {
        let stream = addr.0.as_socket_addr().and_then(|addr| {
            let sockets = self.sockets.lock().expect("registry lock");
            sockets.get(addr).and_then(Weak::upgrade)
        });
        let Some(stream) = stream else {
            return std::future::pending().await;
        };
        let mut byte = [0u8; 1];
        match stream.peek(&mut byte).await {
            // End of stream: the client closed its side.
            Ok(0) | Err(_) => {}
            // Bytes of a further request are waiting: the client is still there, and while they
            // wait, readiness says nothing more.
            Ok(_) => std::future::pending().await,
        }
    }
}

/// A served connection: registered while it is open, and failed with `TimedOut` when a write
/// stays blocked for longer than the stall limit (a client that stopped reading), so hyper
/// drops it and with it the reply, its codex run and its slot.
pub struct WatchedStream {
    socket: Arc<TcpStream>,
    registry: Arc<ConnectionRegistry>,
    addr: SocketAddr,
    stall_limit: Duration,
    /// Armed while a write waits for room in the socket.
    stalled: Option<Pin<Box<Sleep>>>,
}

impl WatchedStream {
    pub fn register(
        socket: TcpStream,
        addr: SocketAddr,
        registry: Arc<ConnectionRegistry>,
        stall_limit: Duration,
    ) -> Self {
        let socket = Arc::new(socket);
        registry
            .sockets
            .lock()
            .expect("registry lock")
            .insert(addr, Arc::downgrade(&socket));
        WatchedStream {
            socket,
            registry,
            addr,
            stall_limit,
            stalled: None,
        }
    }

    /// One write attempt; while the socket stays full, the stall timer runs.
    fn poll_io<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut attempt: impl FnMut(&TcpStream) -> io::Result<T>,
    ) -> Poll<io::Result<T>> {
        loop {
            match self.socket.poll_write_ready(cx) {
                Poll::Ready(Ok(())) => match attempt(&self.socket) {
                    Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                    result => {
                        self.stalled = None;
                        return Poll::Ready(result);
                    }
                },
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => {
                    let limit = self.stall_limit;
                    let timer = self
                        .stalled
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                    ready!(timer.as_mut().poll(cx));
                    tracing::info!(
                        peer = %self.addr,
                        "the client has not read its reply for {} s (CODEX_IDLE_TIMEOUT_SECS); closing the connection",
                        limit.as_secs()
                    );
                    return Poll::Ready(Err(io::ErrorKind::TimedOut.into()));
                }
            }
        }
    }
}

impl Drop for WatchedStream {
    fn drop(&mut self) {
        self.registry.unregister(&self.addr);
    }
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            ready!(self.socket.poll_read_ready(cx))?;
            match self.socket.try_read(buf.initialize_unfilled()) {
                Ok(read) => {
                    buf.advance(read);
                    return Poll::Ready(Ok(()));
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return Poll::Ready(Err(err)),
            }
        }
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, |socket| socket.try_write(buf))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_io(cx, |socket| socket.try_write_vectored(bufs))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// TCP has no buffer of its own to flush.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = nix::sys::socket::shutdown(
            std::os::fd::AsRawFd::as_raw_fd(&self.socket.as_fd()),
            nix::sys::socket::Shutdown::Write,
        );
        Poll::Ready(match result {
            Ok(()) | Err(nix::errno::Errno::ENOTCONN) => Ok(()),
            Err(errno) => Err(errno.into()),
        })
    }
}
