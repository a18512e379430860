//! Reading when nothing is buffered, without holding a read buffer while waiting.

use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};

/// The most bytes one [`poll_read_probe`] takes: 16 KiB.
pub const PROBE: usize = 16 * 1024;

/// Read from `io` into a stack buffer of [`PROBE`] bytes (never zero-filled) and return what
/// came in a buffer of its own: of exactly that many bytes when the read took fewer than
/// `PROBE` (a small read allocates only what came), else of `full` bytes capacity (at least
/// `PROBE`: more is coming). A read that would wait allocates nothing. An empty buffer is
/// end-of-file.
///
/// For a reader that releases its buffer while idle: with this, polling an idle source costs
/// no allocation, and small messages cost small ones.
pub fn poll_read_probe<R: AsyncRead + Unpin + ?Sized>(
    io: &mut R,
    cx: &mut Context<'_>,
    full: usize,
) -> Poll<io::Result<BytesMut>> {
    let mut probe = [MaybeUninit::<u8>::uninit(); PROBE];
    let mut probe = ReadBuf::uninit(&mut probe);
    match Pin::new(io).poll_read(cx, &mut probe) {
        Poll::Ready(Ok(())) => {
            let got = probe.filled();
            let cap = if got.len() < PROBE {
                got.len()
            } else {
                full.max(PROBE)
            };
            let mut buf = BytesMut::with_capacity(cap);
            buf.extend_from_slice(got);
            Poll::Ready(Ok(buf))
        }
        Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
        Poll::Pending => Poll::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_probe_allocates_what_came_nothing_while_waiting_and_all_when_full() {
        let (mut w, mut r) = tokio::io::duplex(64 * 1024);
        let mut cx = Context::from_waker(Waker::noop());
        assert!(poll_read_probe(&mut r, &mut cx, 100_000).is_pending());
        w.write_all(&[1u8; 300]).await.unwrap();
        let Poll::Ready(Ok(got)) = poll_read_probe(&mut r, &mut cx, 100_000) else {
            panic!("data was there");
        };
        assert_eq!(&got[..], &[1u8; 300][..]);
        assert_eq!(got.capacity(), 300);
        w.write_all(&vec![2u8; PROBE + 1]).await.unwrap();
        let Poll::Ready(Ok(got)) = poll_read_probe(&mut r, &mut cx, 100_000) else {
            panic!("data was there");
        };
        assert_eq!(got.len(), PROBE);
        assert!(got.capacity() >= 100_000);
        drop(w);
        let _ = poll_read_probe(&mut r, &mut cx, 0); // the last byte
        let Poll::Ready(Ok(end)) = poll_read_probe(&mut r, &mut cx, 0) else {
            panic!("end-of-file");
        };
        assert!(end.is_empty());
    }
}
