//! Fuzz body for `noise_frame`: arbitrary bytes into the Noise transport framer.
//!
//! The framer is keyed deterministically (`NoiseFramer::insecure_fixed_key_pair`, a fixed XX
//! handshake), so seeds holding frames encrypted by its initiator decrypt, and mutations of
//! them explore the authenticated path as well as the rejecting one.
//!
//! Input: first byte selects the mode (its value mod 4).
//! - 0: the rest is ciphertext fed to `decrypt_next` until it needs more input or fails.
//! - 1: the rest is plaintext, encrypted in chunks sized by its own bytes, then decrypted
//!   again; the round trip must be exact.
//! - 2: the rest is ciphertext read through a `NoiseStream` from a transport that hands it out
//!   in pieces sized by the input's own bytes, waiting (`Pending`) before some; reads until
//!   end-of-file or an error, which must stay (the read side is poisoned).
//! - 3: as 1, but the frames are read through a `NoiseStream` as in 2: every plaintext byte
//!   must come out, in order, then end-of-file.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use plexus_noise::{LEN_PREFIX_LEN, MAX_PLAINTEXT_LEN, NoiseFramer, NoiseStream, TAG_LEN};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Piece sizes around the stream's buffer boundaries (prefix, tag, its 16 KiB read probe, one
/// wire frame); other script bytes give multiples of 389.
const EDGES: [usize; 8] = [1, 2, 17, 18, 16_383, 16_384, 16_385, 65_537];

/// A transport handing out `wire` in pieces sized by `script`; a script byte with the top bit
/// set first answers `Pending` (waking at once, as a socket does when data arrives).
struct Chunked<'a> {
    wire: &'a [u8],
    off: usize,
    script: &'a [u8],
    i: usize,
    waited: bool,
}

impl Chunked<'_> {
    fn next(&mut self) -> u8 {
        let b = self.script.get(self.i % self.script.len().max(1)).copied();
        self.i += 1;
        b.unwrap_or(0)
    }
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.off == self.wire.len() {
            return Poll::Ready(Ok(()));
        }
        let s = self.next();
        if s & 0x80 != 0 && !self.waited {
            self.waited = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        self.waited = false;
        let s = usize::from(s & 0x7f);
        let len = EDGES.get(s).copied().unwrap_or(s * 389);
        let len = len.min(self.wire.len() - self.off).min(buf.remaining());
        let off = self.off;
        buf.put_slice(&self.wire[off..off + len]);
        self.off += len;
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Chunked<'_> {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(b.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Read `wire` through a `NoiseStream` keyed as `rx`, with read sizes from `script`: the
/// plaintext, and whether it ended in an error (else end-of-file).
fn read_stream(rx: NoiseFramer, wire: &[u8], script: &[u8]) -> (Vec<u8>, bool) {
    let io = Chunked {
        wire,
        off: 0,
        script,
        i: 0,
        waited: false,
    };
    let mut stream = NoiseStream::new(io, rx);
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    let mut buf = vec![0u8; 70_000];
    // Every poll either makes progress or waits once: bounded by the pieces and reads.
    for i in 0..4 * wire.len() + 64 {
        let want = (usize::from(script.get(i % script.len().max(1)).copied().unwrap_or(0)) * 271)
            .clamp(1, buf.len());
        let mut rb = ReadBuf::new(&mut buf[..want]);
        match Pin::new(&mut stream).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) if rb.filled().is_empty() => return (out, false),
            Poll::Ready(Ok(())) => out.extend_from_slice(rb.filled()),
            Poll::Ready(Err(_)) => {
                // A failed read side stays failed.
                let mut again = ReadBuf::new(&mut buf[..1]);
                let poll = Pin::new(&mut stream).poll_read(&mut cx, &mut again);
                assert!(matches!(poll, Poll::Ready(Err(_))), "not poisoned");
                return (out, true);
            }
            Poll::Pending => {}
        }
    }
    panic!("no end after {} bytes", wire.len());
}

/// Run one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (mut tx, mut rx) = NoiseFramer::insecure_fixed_key_pair();
    let mut out = BytesMut::new();
    if mode % 4 == 2 {
        let (plain, _) = read_stream(rx, rest, rest);
        assert!(plain.len() <= rest.len());
        return;
    }
    if mode % 4 == 0 {
        let mut input = BytesMut::from(rest);
        let mut frames = 0usize;
        loop {
            let before = input.len();
            match rx.decrypt_next(&mut input, &mut out) {
                Ok(Some(n)) => {
                    frames += 1;
                    // A frame is consumed whole and yields its length minus prefix and tag.
                    assert_eq!(before - input.len(), n + LEN_PREFIX_LEN + TAG_LEN);
                    assert!(n <= MAX_PLAINTEXT_LEN);
                }
                Ok(None) => {
                    assert_eq!(input.len(), before, "an incomplete frame is not consumed");
                    break;
                }
                Err(_) => {
                    // A failed read side stays failed.
                    assert!(rx.decrypt_next(&mut input, &mut out).is_err());
                    break;
                }
            }
        }
        assert!(out.len() <= rest.len());
        assert!(frames <= rest.len() / (LEN_PREFIX_LEN + TAG_LEN));
    } else {
        let mut wire = BytesMut::new();
        let mut off = 0;
        let mut i = 0;
        while off < rest.len() {
            // Chunk sizes from the data itself: small, or up to several frames.
            let len = (usize::from(rest[i % rest.len()]) * 613 + 1).min(rest.len() - off);
            tx.encrypt(&rest[off..off + len], &mut wire)
                .expect("encrypt");
            off += len;
            i += 1;
        }
        if mode % 4 == 3 {
            let (plain, failed) = read_stream(rx, &wire, rest);
            assert!(!failed, "own frames read");
            assert_eq!(&plain[..], rest);
            return;
        }
        while rx
            .decrypt_next(&mut wire, &mut out)
            .expect("own frames decrypt")
            .is_some()
        {}
        assert!(wire.is_empty());
        assert_eq!(&out[..], rest);
    }
}
