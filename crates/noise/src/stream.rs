//! `NoiseStream`: a tokio byte stream over a Noise session, with bounded buffers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::framer::frame_len;
use crate::{LEN_PREFIX_LEN, MAX_FRAME_LEN, MAX_PLAINTEXT_LEN, NoiseError, NoiseFramer, TAG_LEN};

/// Bytes the raw read buffer holds beyond one whole frame, so that one read from the inner
/// stream can take the rest of a frame and the start of the next. 16 KiB.
pub const READ_CHUNK: usize = 16 * 1024;

/// One frame on the wire: the length prefix and the largest ciphertext.
const WIRE_FRAME: usize = LEN_PREFIX_LEN + MAX_FRAME_LEN;

/// The raw (ciphertext) read buffer: one whole frame plus a read chunk.
const RAW_CAP: usize = WIRE_FRAME + READ_CHUNK;

use plexus_core::PROBE;

/// A Noise-encrypted byte stream over `T`.
///
/// Writes are buffered up to one frame of plaintext ([`MAX_PLAINTEXT_LEN`]), copied once into
/// the frame buffer where they are encrypted in place ([`NoiseFramer::seal_in_place`]); a full
/// frame is encrypted at once, a partial one on `poll_flush`. At most one encrypted frame waits
/// for the inner stream, so `poll_write` returns `Pending` only when both a frame of plaintext
/// and a frame of ciphertext are pending. `poll_shutdown` flushes, then shuts down the
/// inner write side (a half-close: reading goes on).
///
/// Reads fill a raw buffer of one frame plus [`READ_CHUNK`] bytes and decrypt each whole frame
/// in place there ([`NoiseFramer::open_in_place`]); reads copy the plaintext out of it, so each
/// byte is copied once, into the caller's buffer, which is never zero-filled (it may be
/// uninitialised). When nothing is buffered and the last read was small, a read goes to a
/// stack buffer first: a read that would wait allocates nothing, a small one only what came.
/// An inner EOF at a frame boundary is EOF; inside a frame it is an `UnexpectedEof` error
/// carrying [`NoiseError::TruncatedFrame`].
///
/// Memory per stream is bounded: about 80 KiB to read, 64 KiB + 64 KiB to write. Every buffer
/// is allocated on first use and released when the stream goes idle (the read buffer when the
/// inner stream has nothing more to read and nothing is buffered, the write buffers when a
/// flush completes), so an idle stream holds no I/O buffer. The raw buffer is read into without
/// zero-filling it. Errors surface as `io::Error`s whose inner error is a
/// [`NoiseError`]; after a Noise error a direction stays failed ([`NoiseError::Poisoned`]).
pub struct NoiseStream<T> {
    inner: T,
    framer: NoiseFramer,
    /// Unconsumed bytes read from `inner` (capacity at most `RAW_CAP`; none while idle): frames
    /// of ciphertext, the first of which may already be decrypted in place (`opened`).
    raw: BytesMut,
    /// The frame at the front of `raw`, decrypted in place, whose plaintext is not all read.
    opened: Option<Opened>,
    read_eof: bool,
    /// The last read from `inner` was shorter than [`PROBE`]: the next one, when nothing is
    /// buffered, goes to the stack first.
    small_reads: bool,
    read_failed: bool,
    /// An error met after some plaintext was already handed out in the same call: reported
    /// by the next read, so that nothing decrypted before it is lost.
    read_error: Option<NoiseError>,
    /// The frame being filled: two bytes of room for the length prefix, then the plaintext
    /// written so far (empty: nothing staged). Sealed in place and swapped with `wire`, so
    /// each written byte is copied once. Capacity what was written and the tag, growing at
    /// least twofold, at most one wire frame; none while idle.
    stage: Vec<u8>,
    /// One encrypted frame being written to `inner`: `wire[wire_start..wire_end]` (a former
    /// `stage`); released when a flush completes.
    wire: Vec<u8>,
    wire_start: usize,
    wire_end: usize,
    write_failed: bool,
    /// An error met by a vectored write after it had accepted some bytes: reported next.
    write_error: Option<io::Error>,
}

/// A frame at the front of the raw buffer, decrypted in place: it spans `raw[..total]`, its
/// unread plaintext is `raw[pos..end]`.
#[derive(Debug, Clone, Copy)]
struct Opened {
    total: usize,
    pos: usize,
    end: usize,
}

impl<T> std::fmt::Debug for NoiseStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseStream")
            .field("framer", &self.framer)
            .field("raw_buffered", &self.raw.len())
            .field("plain_buffered", &self.opened.map_or(0, |o| o.end - o.pos))
            .field("write_buffered", &self.staged())
            .field("wire_pending", &(self.wire_end - self.wire_start))
            .field("read_eof", &self.read_eof)
            .finish_non_exhaustive()
    }
}

impl<T> NoiseStream<T> {
    /// Wrap `inner`, whose handshake produced `framer`. `inner` must not have been read past
    /// the handshake.
    pub fn new(inner: T, framer: NoiseFramer) -> Self {
        NoiseStream {
            inner,
            framer,
            raw: BytesMut::new(),
            opened: None,
            read_eof: false,
            small_reads: true,
            read_failed: false,
            read_error: None,
            stage: Vec::new(),
            wire: Vec::new(),
            wire_start: 0,
            wire_end: 0,
            write_failed: false,
            write_error: None,
        }
    }

    /// The inner stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }

    /// The framer (for its nonce counters).
    pub fn framer(&self) -> &NoiseFramer {
        &self.framer
    }

    /// Plaintext bytes staged for the next frame.
    fn staged(&self) -> usize {
        self.stage.len().saturating_sub(LEN_PREFIX_LEN)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> NoiseStream<T> {
    /// Write the pending encrypted frame to `inner`.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.wire_start < self.wire_end {
            match Pin::new(&mut self.inner)
                .poll_write(cx, &self.wire[self.wire_start..self.wire_end])
            {
                Poll::Ready(Ok(0)) => {
                    self.write_failed = true;
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.wire_start += n,
                Poll::Ready(Err(e)) => {
                    // A frame may be half written: the stream cannot go on.
                    self.write_failed = true;
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        self.wire_start = 0;
        self.wire_end = 0;
        Poll::Ready(Ok(()))
    }

    /// Seal the staged frame in place and make it the pending wire frame (the wire buffer
    /// must be idle).
    fn seal(&mut self) -> io::Result<()> {
        debug_assert_eq!(self.wire_start, self.wire_end);
        let plaintext_len = self.staged();
        self.stage.resize(self.stage.len() + TAG_LEN, 0);
        match self.framer.seal_in_place(&mut self.stage, plaintext_len) {
            Ok(n) => {
                std::mem::swap(&mut self.stage, &mut self.wire);
                self.stage.clear();
                self.wire_start = 0;
                self.wire_end = n;
                Ok(())
            }
            Err(e) => {
                self.write_failed = true;
                Err(e.into_io())
            }
        }
    }

    /// Try to push the pending frame out; only an error matters (`Pending` leaves the waker
    /// registered and the frame buffered).
    fn try_drain(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        match self.poll_drain(cx) {
            Poll::Ready(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Accept some of `buf`: the core of `poll_write`.
    fn write_some(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if let Some(e) = self.write_error.take() {
            return Poll::Ready(Err(e));
        }
        if self.write_failed {
            return Poll::Ready(Err(NoiseError::Poisoned.into_io()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if self.staged() == MAX_PLAINTEXT_LEN {
            // A full frame waits for the wire buffer.
            ready!(self.poll_drain(cx))?;
            self.seal()?;
            self.try_drain(cx)?;
        }
        let prefix = if self.stage.is_empty() {
            LEN_PREFIX_LEN
        } else {
            0
        };
        let n = buf.len().min(MAX_PLAINTEXT_LEN - self.staged());
        // Room for the prefix, these bytes and the tag, growing at least twofold but never
        // past one wire frame: a small write costs a small allocation, a large one a few.
        let want = self.stage.len() + prefix + n + TAG_LEN;
        if self.stage.capacity() < want {
            let cap = want.max(2 * self.stage.capacity()).min(WIRE_FRAME);
            self.stage.reserve_exact(cap - self.stage.len());
        }
        self.stage.extend_from_slice(&[0; LEN_PREFIX_LEN][..prefix]);
        self.stage.extend_from_slice(&buf[..n]);
        if self.staged() == MAX_PLAINTEXT_LEN && self.wire_start == self.wire_end {
            self.seal()?;
            self.try_drain(cx)?;
        }
        Poll::Ready(Ok(n))
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for NoiseStream<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.read_error.take() {
            return Poll::Ready(Err(e.into_io()));
        }
        if this.read_failed {
            return Poll::Ready(Err(NoiseError::Poisoned.into_io()));
        }
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut delivered = false;
        loop {
            // 1. Plaintext decrypted earlier, in place in the raw buffer.
            if let Some(o) = &mut this.opened {
                let n = (o.end - o.pos).min(buf.remaining());
                buf.put_slice(&this.raw[o.pos..o.pos + n]);
                o.pos += n;
                delivered |= n > 0;
                if o.pos == o.end {
                    this.raw.advance(o.total);
                    this.opened = None;
                }
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            // 2. A whole frame in the raw buffer: decrypt it where it lies.
            let need = frame_len(&this.raw);
            if let Some(total) = need
                && this.raw.len() >= total
            {
                match this
                    .framer
                    .open_in_place(&mut this.raw[LEN_PREFIX_LEN..total])
                {
                    Ok(n) => {
                        this.opened = Some(Opened {
                            total,
                            pos: LEN_PREFIX_LEN,
                            end: LEN_PREFIX_LEN + n,
                        });
                    }
                    Err(e) => {
                        this.read_failed = true;
                        if delivered {
                            this.read_error = Some(e);
                            return Poll::Ready(Ok(()));
                        }
                        return Poll::Ready(Err(e.into_io()));
                    }
                }
                continue;
            }
            // 3. Need more ciphertext; never wait once something was delivered.
            if delivered {
                return Poll::Ready(Ok(()));
            }
            if this.read_eof {
                let have = this.raw.len();
                if have == 0 {
                    return Poll::Ready(Ok(()));
                }
                this.read_failed = true;
                let need = need.unwrap_or(LEN_PREFIX_LEN);
                return Poll::Ready(Err(NoiseError::TruncatedFrame { have, need }.into_io()));
            }
            let needed = need.unwrap_or(LEN_PREFIX_LEN);
            let have = this.raw.len();
            if have == 0 && this.raw.capacity() < READ_CHUNK && this.small_reads {
                // Nothing buffered, no read buffer to speak of (idle, or the exact buffer of
                // a small read, consumed), and the last read was small: read into the stack
                // first, so that a read that would wait allocates nothing and a small one
                // allocates only what came. (Bulk data, whose reads fill the probe, is read
                // straight into the whole buffer.)
                match plexus_core::poll_read_probe(&mut this.inner, cx, RAW_CAP) {
                    Poll::Ready(Ok(got)) => {
                        this.small_reads = got.len() < PROBE;
                        if got.is_empty() {
                            this.read_eof = true;
                        } else {
                            this.raw = got;
                        }
                        continue;
                    }
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {
                        this.raw = BytesMut::new();
                        return Poll::Pending;
                    }
                }
            }
            // Room for the rest of this frame and at least READ_CHUNK more, within RAW_CAP
            // (the capacity counts from the first unconsumed byte). An incomplete frame is
            // shorter than WIRE_FRAME, so a fresh buffer has RAW_CAP - have ≥ READ_CHUNK free:
            // never an empty read buffer (a 0-byte read would look like EOF).
            if this.raw.capacity() < needed || this.raw.capacity() - have < READ_CHUNK {
                if have == 0 {
                    // Reuses the allocation when there is one (nothing to move).
                    this.raw.reserve(RAW_CAP);
                } else {
                    // Move the partial frame to the front of a buffer of exactly RAW_CAP bytes
                    // (BytesMut::reserve could grow past it).
                    let mut fresh = BytesMut::with_capacity(RAW_CAP);
                    fresh.extend_from_slice(&this.raw);
                    this.raw = fresh;
                }
            }
            // Reads into the spare capacity without zero-filling it.
            let read = std::pin::pin!(this.inner.read_buf(&mut this.raw)).poll(cx);
            match read {
                Poll::Ready(Ok(0)) => this.read_eof = true,
                Poll::Ready(Ok(n)) => this.small_reads = n < PROBE,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {
                    // Idle: hold no read buffer while waiting.
                    if this.raw.is_empty() {
                        this.raw = BytesMut::new();
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for NoiseStream<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().write_some(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let mut total = 0;
        for b in bufs {
            let mut off = 0;
            while off < b.len() {
                match this.write_some(cx, &b[off..]) {
                    Poll::Ready(Ok(n)) => {
                        off += n;
                        total += n;
                    }
                    // What was accepted stays accepted; the error or the wait comes next call.
                    Poll::Ready(Err(e)) if total == 0 => return Poll::Ready(Err(e)),
                    Poll::Ready(Err(e)) => {
                        this.write_error = Some(e);
                        return Poll::Ready(Ok(total));
                    }
                    Poll::Pending if total == 0 => return Poll::Pending,
                    Poll::Pending => return Poll::Ready(Ok(total)),
                }
            }
        }
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(e) = this.write_error.take() {
            return Poll::Ready(Err(e));
        }
        if this.write_failed {
            return Poll::Ready(Err(NoiseError::Poisoned.into_io()));
        }
        ready!(this.poll_drain(cx))?;
        if !this.stage.is_empty() {
            this.seal()?;
            ready!(this.poll_drain(cx))?;
        }
        ready!(Pin::new(&mut this.inner).poll_flush(cx))?;
        // Everything went out: hold no write buffer until the next write.
        this.stage = Vec::new();
        this.wire = Vec::new();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

// Compile-time checks of the buffer arithmetic.
const _: () = assert!(MAX_PLAINTEXT_LEN + TAG_LEN == MAX_FRAME_LEN);
const _: () = assert!(RAW_CAP > WIRE_FRAME);

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn idle_streams_hold_no_buffers() {
        let (a, b) = tokio::io::duplex(256 * 1024);
        let (fa, fb) = NoiseFramer::insecure_fixed_key_pair();
        let (mut w, mut r) = (NoiseStream::new(a, fa), NoiseStream::new(b, fb));
        assert_eq!(r.raw.capacity() + w.stage.capacity() + w.wire.capacity(), 0);
        let data: Vec<u8> = (0..150_000u32).map(|i| i as u8).collect();
        w.write_all(&data[..10]).await.unwrap();
        assert!(w.stage.capacity() > 0, "a partial frame is staged");
        w.write_all(&data[10..]).await.unwrap();
        w.flush().await.unwrap();
        assert_eq!(
            w.stage.capacity() + w.wire.capacity(),
            0,
            "released by flush"
        );
        // Small reads are served from the frame decrypted in place.
        let mut got = vec![0u8; data.len()];
        for chunk in got.chunks_mut(1000) {
            r.read_exact(chunk).await.unwrap();
        }
        assert_eq!(got, data);
        assert!(r.raw.capacity() <= RAW_CAP);
        // Nothing more to read: the next read waits and releases the read buffers.
        let mut one = [0u8; 1];
        let pending = tokio::time::timeout(std::time::Duration::from_millis(20), r.read(&mut one));
        assert!(pending.await.is_err());
        assert_eq!(r.raw.capacity(), 0);
        // And they come back on use.
        w.write_all(b"again").await.unwrap();
        w.flush().await.unwrap();
        let mut five = [0u8; 5];
        r.read_exact(&mut five).await.unwrap();
        assert_eq!(&five, b"again");
    }

    #[tokio::test]
    async fn small_messages_cost_small_buffers() {
        let (a, b) = tokio::io::duplex(256 * 1024);
        let (fa, fb) = NoiseFramer::insecure_fixed_key_pair();
        let (mut w, mut r) = (NoiseStream::new(a, fa), NoiseStream::new(b, fb));
        // A small write stages a small frame, not a whole wire frame.
        w.write_all(&[7u8; 200]).await.unwrap();
        assert!(w.stage.capacity() >= LEN_PREFIX_LEN + 200 + TAG_LEN);
        assert!(w.stage.capacity() < 1024, "{}", w.stage.capacity());
        w.flush().await.unwrap();
        // Its frame is read through the stack: the read buffer holds just that frame.
        let mut got = [0u8; 200];
        r.read_exact(&mut got).await.unwrap();
        assert_eq!(got, [7u8; 200]);
        assert!(r.small_reads);
        assert!(r.raw.capacity() < 1024, "{}", r.raw.capacity());
        // Many small writes grow the frame up to one wire frame, never past it.
        for _ in 0..1000 {
            w.write_all(&[1u8; 100]).await.unwrap();
            assert!(w.stage.capacity() <= WIRE_FRAME);
        }
        w.flush().await.unwrap();
        // Bulk data is read straight into the whole read buffer.
        let mut all = vec![0u8; 100_000];
        r.read_exact(&mut all).await.unwrap();
        assert!(all.iter().all(|b| *b == 1));
        assert!(!r.small_reads);
        assert!(r.raw.capacity() <= RAW_CAP);
    }
}
