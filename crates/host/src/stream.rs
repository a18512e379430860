//! Stream wrappers: byte counting, the inbound stream holding its per-peer
//! slot, and the public [`InboundStream`] and [`Incoming`].

use std::io;
use std::pin::Pin;
use std::sync::Weak;
use std::task::{Context, Poll};

use plexus_core::{BoxStream, ConnInfo, MuxedStream, PeerId};
use plexus_multistream::Negotiated;
use prometheus_client::metrics::counter::Counter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;

use crate::handlers::Slot;
use crate::inner::Inner;

/// A [`BoxStream`] as a [`MuxedStream`] (so `Negotiated` can wrap it),
/// counting the bytes read and written.
pub(crate) struct Muxed(pub(crate) BoxStream, pub(crate) ByteCounters);

/// Counters of stream bytes (shared, atomic).
#[derive(Clone, Debug)]
pub(crate) struct ByteCounters {
    pub(crate) read: Counter,
    pub(crate) written: Counter,
}

impl AsyncRead for Muxed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut *self.0).poll_read(cx, buf);
        let n = buf.filled().len().saturating_sub(before);
        if n > 0 {
            self.1.read.inc_by(n as u64);
        }
        r
    }
}

impl AsyncWrite for Muxed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut *self.0).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.1.written.inc_by(*n as u64);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut *self.0).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = &r {
            self.1.written.inc_by(*n as u64);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

impl MuxedStream for Muxed {
    fn reset(&mut self) {
        self.0.reset();
    }
    fn readable(&self) -> usize {
        self.0.readable()
    }
}

/// An inbound stream holding its (peer, protocol) slot until dropped.
pub(crate) struct Guarded {
    pub(crate) inner: Negotiated<Muxed>,
    pub(crate) _slot: Slot,
}

impl AsyncRead for Guarded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Guarded {
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
}

impl MuxedStream for Guarded {
    fn reset(&mut self) {
        self.inner.reset();
    }
    fn readable(&self) -> usize {
        self.inner.readable()
    }
}

/// An inbound stream on a registered protocol, handed out by [`Incoming`].
pub struct InboundStream {
    /// The remote peer.
    pub peer: PeerId,
    /// The negotiated protocol.
    pub protocol: String,
    /// The stream. Dropping it (without shutting it down) resets it and frees
    /// the peer's slot for this protocol.
    pub stream: BoxStream,
    /// The connection it arrived on.
    pub conn: ConnInfo,
}

impl std::fmt::Debug for InboundStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundStream")
            .field("peer", &self.peer)
            .field("protocol", &self.protocol)
            .field("remote_addr", &self.conn.remote_addr)
            .finish_non_exhaustive()
    }
}

/// The inbound streams of one registered protocol: a bounded queue
/// ([`HandlerOpts::backlog`](crate::HandlerOpts::backlog)). Dropping it
/// unregisters the protocol (new streams then get `na`); streams still queued
/// are reset.
pub struct Incoming {
    pub(crate) protocol: String,
    pub(crate) id: u64,
    pub(crate) rx: mpsc::Receiver<InboundStream>,
    pub(crate) host: Weak<Inner>,
}

impl Incoming {
    /// The next inbound stream; `None` once the host shut down.
    pub async fn next(&mut self) -> Option<InboundStream> {
        self.rx.recv().await
    }

    /// The protocol this handler serves.
    pub fn protocol(&self) -> &str {
        &self.protocol
    }
}

impl futures::Stream for Incoming {
    type Item = InboundStream;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx)
    }
}

impl std::fmt::Debug for Incoming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Incoming")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if let Some(host) = self.host.upgrade() {
            host.unregister(&self.protocol, self.id);
        }
    }
}
