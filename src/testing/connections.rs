//! The accepted connections, tracked so that stopping the collector can shut them down.

use std::collections::HashMap;
use std::io;
use std::net::Shutdown;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tonic::codegen::tokio_stream::Stream;
use tonic::transport::server::Connected;

/// The listening socket as a stream of tracked connections, for tonic to serve.
#[derive(Debug)]
pub(super) struct Incoming {
    pub(super) listener: TcpListener,
    pub(super) connections: Arc<Connections>,
}

impl Stream for Incoming {
    type Item = io::Result<TrackedConnection>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // tonic logs accept errors and keeps accepting, so the stream never ends.
        self.listener
            .poll_accept(cx)
            .map(|accepted| Some(accepted.and_then(|(stream, _)| self.connections.track(stream))))
    }
}

/// The open connections, so that stopping the collector can drop them.
///
/// tonic serves each connection in a task of its own that outlives the server task, and the
/// collector cannot reach those tasks. It keeps a duplicate handle of each socket instead and
/// shuts the sockets down: the connection tasks then see the connection end, and finish.
#[derive(Debug, Default)]
pub(super) struct Connections {
    inner: Mutex<ConnectionsInner>,
}

#[derive(Debug, Default)]
struct ConnectionsInner {
    next_id: u64,
    open: HashMap<u64, std::net::TcpStream>,
    closed: bool,
}

impl Connections {
    fn lock(&self) -> MutexGuard<'_, ConnectionsInner> {
        // Every update leaves the map consistent; see `Recording::lock`.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a newly accepted connection.
    fn track(self: &Arc<Self>, stream: TcpStream) -> io::Result<TrackedConnection> {
        // Small unary RPCs should not wait for Nagle; failing to set it only costs latency.
        let _ = stream.set_nodelay(true);
        let stream = stream.into_std()?;
        let handle = stream.try_clone()?;
        // Called from `Incoming::poll_next`, so inside the runtime that `from_std` requires.
        let io = TcpStream::from_std(stream)?;

        let mut inner = self.lock();
        if inner.closed {
            // Accepted while `stop` ran: close it too.
            let _ = handle.shutdown(Shutdown::Both);
            return Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "TestCollector stopped",
            ));
        }
        let id = inner.next_id;
        inner.next_id += 1;
        inner.open.insert(id, handle);
        Ok(TrackedConnection {
            io,
            _registration: Registration {
                id,
                connections: Arc::clone(self),
            },
        })
    }

    /// Shuts down every open connection, and any accepted later.
    pub(super) fn close_all(&self) {
        let handles: Vec<std::net::TcpStream> = {
            let mut inner = self.lock();
            inner.closed = true;
            inner.open.drain().map(|(_, handle)| handle).collect()
        };
        for handle in handles {
            // Fails only if the peer is already gone, which is the goal.
            let _ = handle.shutdown(Shutdown::Both);
        }
    }
}

/// Removes a connection's duplicate handle when tonic drops the connection, so that a
/// connection that ends normally is really closed rather than held open by the duplicate.
#[derive(Debug)]
struct Registration {
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.connections.lock().open.remove(&self.id);
    }
}

/// An accepted connection, registered in [`Connections`] while it is open.
#[derive(Debug)]
pub(super) struct TrackedConnection {
    io: TcpStream,
    _registration: Registration,
}

impl Connected for TrackedConnection {
    type ConnectInfo = <TcpStream as Connected>::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.io.connect_info()
    }
}

impl AsyncRead for TrackedConnection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl AsyncWrite for TrackedConnection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}
