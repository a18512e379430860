//! The muxer conformance suite (`plexus_testkit::muxer`) against yamux with
//! its default configuration: one test per case.
//!
//! Below it, the suite is checked against yamux with one fault injected at
//! the seam (a shutdown that does not half-close, a reset read as EOF,
//! a counter that never returns to zero): each must fail its case, so the
//! suite cannot pass a broken muxer by accident.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use plexus_core::{
    BoxFut, BoxIo, BoxStream, MuxError, MuxStats, MuxedConn, MuxedStream, MuxerUpgrade, Role,
};
use plexus_yamux::YamuxConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

plexus_testkit::muxer_conformance_tests!(YamuxConfig::default());

/// One fault injected between the suite and yamux.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    /// `poll_shutdown` succeeds without sending anything.
    ShutdownIgnored,
    /// A failed read is reported as end-of-file.
    ErrorAsEof,
    /// `buffered_bytes` is always one too high.
    LeakyStats,
}

struct Faulty(Fault);

impl MuxerUpgrade for Faulty {
    fn protocol(&self) -> &'static str {
        "/faulty-yamux"
    }

    fn start(&self, io: BoxIo, role: Role) -> Box<dyn MuxedConn> {
        Box::new(FaultyConn {
            inner: YamuxConfig::default().start(io, role),
            fault: self.0,
        })
    }
}

struct FaultyConn {
    inner: Box<dyn MuxedConn>,
    fault: Fault,
}

impl FaultyConn {
    fn wrap(&self, s: Result<BoxStream, MuxError>) -> Result<BoxStream, MuxError> {
        s.map(|inner| {
            Box::new(FaultyStream {
                inner,
                fault: self.fault,
            }) as BoxStream
        })
    }
}

impl MuxedConn for FaultyConn {
    fn open(&self) -> BoxFut<'_, Result<BoxStream, MuxError>> {
        Box::pin(async move { self.wrap(self.inner.open().await) })
    }

    fn accept(&self) -> BoxFut<'_, Result<BoxStream, MuxError>> {
        Box::pin(async move { self.wrap(self.inner.accept().await) })
    }

    fn close(&self) -> BoxFut<'_, ()> {
        self.inner.close()
    }

    fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    fn stats(&self) -> MuxStats {
        let mut s = self.inner.stats();
        if self.fault == Fault::LeakyStats {
            s.buffered_bytes += 1;
        }
        s
    }
}

struct FaultyStream {
    inner: BoxStream,
    fault: Fault,
}

impl AsyncRead for FaultyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let fault = self.fault;
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(Err(_)) if fault == Fault::ErrorAsEof => Poll::Ready(Ok(())),
            other => other,
        }
    }
}

impl AsyncWrite for FaultyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.fault == Fault::ShutdownIgnored {
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl MuxedStream for FaultyStream {
    fn reset(&mut self) {
        self.inner.reset();
    }
}

fn faulty(fault: Fault) -> Arc<dyn MuxerUpgrade> {
    Arc::new(Faulty(fault))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "initiator: write after shutdown succeeded")]
async fn suite_catches_shutdown_that_does_not_half_close() {
    plexus_testkit::muxer::write_after_close(faulty(Fault::ShutdownIgnored)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "read after reset() returned Ok(0), expected an error")]
async fn suite_catches_reset_read_as_eof() {
    plexus_testkit::muxer::reset_by_initiator(faulty(Fault::ErrorAsEof)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "read returned EOF after 0 bytes, expected an error")]
async fn suite_catches_vanished_peer_read_as_eof() {
    plexus_testkit::muxer::peer_vanishes_mid_stream(faulty(Fault::ErrorAsEof)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[should_panic(expected = "initiator: expected all counters zero")]
async fn suite_catches_counter_not_back_to_zero() {
    plexus_testkit::muxer::simple_write_read(faulty(Fault::LeakyStats)).await;
}
