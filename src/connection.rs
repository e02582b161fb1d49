//! Noticing that a client has gone away while its request is still being answered.
//!
//! hyper treats a client's FIN as a half-close and keeps writing, so a vanished client is only
//! found out when a write fails, up to a keep-alive interval later, and never while a
//! non-streaming request waits for codex. Instead, each accepted connection keeps a duplicate of
//! its socket, and a request can wait on [`ConnectionRegistry::client_gone`]: a peek that reads
//! end-of-stream means the client closed, and the request's codex run is stopped at once. A
//! peek leaves the bytes in place, so the server's own reading is undisturbed.

use std::{
    collections::HashMap,
    io,
    net::SocketAddr,
    os::fd::{AsFd, OwnedFd},
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
};

use poem::{
    listener::Acceptor,
    web::{LocalAddr, RemoteAddr},
    Addr,
};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
};

/// The open connections, by the client's address.
#[derive(Debug, Default)]
pub struct ConnectionRegistry {
    sockets: Mutex<HashMap<SocketAddr, OwnedFd>>,
}

impl ConnectionRegistry {
    fn register(&self, addr: SocketAddr, stream: &TcpStream) {
        match stream.as_fd().try_clone_to_owned() {
            Ok(fd) => {
                self.sockets.lock().expect("registry lock").insert(addr, fd);
            }
            Err(err) => tracing::debug!(%err, "cannot watch this connection for disconnects"),
        }
    }

    fn unregister(&self, addr: &SocketAddr) {
        self.sockets.lock().expect("registry lock").remove(addr);
    }

    /// Resolves when the client at `addr` has closed its connection; never resolves when that
    /// cannot be known (an unwatched connection, or one with more requests already sent).
    pub async fn client_gone(&self, addr: &RemoteAddr) {
        let fd = match addr.0.as_socket_addr().and_then(|addr| {
            let sockets = self.sockets.lock().expect("registry lock");
            sockets.get(addr).and_then(|fd| fd.try_clone().ok())
        }) {
            Some(fd) => fd,
            None => return std::future::pending().await,
        };
        let Ok(stream) = TcpStream::from_std(std::net::TcpStream::from(fd)) else {
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

/// Wraps the TCP acceptor so each connection is registered while it is open.
pub struct WatchedAcceptor<A> {
    inner: A,
    registry: Arc<ConnectionRegistry>,
}

impl<A> WatchedAcceptor<A> {
    pub fn new(inner: A, registry: Arc<ConnectionRegistry>) -> Self {
        WatchedAcceptor { inner, registry }
    }
}

impl<A: Acceptor<Io = TcpStream>> Acceptor for WatchedAcceptor<A> {
    type Io = WatchedStream;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(
        &mut self,
    ) -> io::Result<(Self::Io, LocalAddr, RemoteAddr, poem::http::uri::Scheme)> {
        let (stream, local, remote, scheme) = self.inner.accept().await?;
        // Replies are streams of small writes; Nagle's algorithm would hold each one back for
        // the peer's delayed ACK (about 40 ms).
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "could not set TCP_NODELAY");
        }
        let key = match &remote.0 {
            Addr::SocketAddr(addr) => {
                self.registry.register(*addr, &stream);
                Some(*addr)
            }
            _ => None,
        };
        Ok((
            WatchedStream {
                inner: stream,
                registry: self.registry.clone(),
                key,
            },
            local,
            remote,
            scheme,
        ))
    }
}

/// A connection that leaves the registry when it closes.
pub struct WatchedStream {
    inner: TcpStream,
    registry: Arc<ConnectionRegistry>,
    key: Option<SocketAddr>,
}

impl Drop for WatchedStream {
    fn drop(&mut self) {
        if let Some(key) = &self.key {
            self.registry.unregister(key);
        }
    }
}

impl AsyncRead for WatchedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for WatchedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
