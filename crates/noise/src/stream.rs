//! `NoiseStream`: a tokio byte stream over a Noise session, with bounded buffers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::framer::frame_len;
use crate::{LEN_PREFIX_LEN, MAX_FRAME_LEN, MAX_PLAINTEXT_LEN, NoiseError, NoiseFramer, TAG_LEN};

/// Bytes the raw read buffer holds beyond one whole frame, so that one read from the inner
/// stream can take the rest of a frame and the start of the next. 16 KiB.
pub const READ_CHUNK: usize = 16 * 1024;

/// One frame on the wire: the length prefix and the largest ciphertext.
const WIRE_FRAME: usize = LEN_PREFIX_LEN + MAX_FRAME_LEN;

/// The raw (ciphertext) read buffer: one whole frame plus a read chunk.
const RAW_CAP: usize = WIRE_FRAME + READ_CHUNK;

/// A Noise-encrypted byte stream over `T`.
///
/// Writes are buffered up to one frame of plaintext ([`MAX_PLAINTEXT_LEN`]); a full frame is
/// encrypted at once, a partial one on `poll_flush`. At most one encrypted frame waits for the
/// inner stream, so `poll_write` returns `Pending` only when both a frame of plaintext and a
/// frame of ciphertext are pending. Writes of a whole frame or more with nothing buffered are
/// encrypted straight from the caller's buffer. `poll_shutdown` flushes, then shuts down the
/// inner write side (a half-close: reading goes on).
///
/// Reads fill a raw buffer of one frame plus [`READ_CHUNK`] bytes, decrypt whole frames
/// directly into the caller's buffer when it has room for the frame's ciphertext, and
/// otherwise into a one-frame plaintext buffer (allocated on first use) that later reads
/// drain. An inner EOF at a frame boundary is EOF; inside a frame it is an `UnexpectedEof`
/// error carrying [`NoiseError::TruncatedFrame`].
///
/// Memory per stream is bounded: about 80 KiB raw + 64 KiB plaintext to read, 64 KiB + 64 KiB
/// to write, all allocated once. Errors surface as `io::Error`s whose inner error is a
/// [`NoiseError`]; after a Noise error a direction stays failed ([`NoiseError::Poisoned`]).
pub struct NoiseStream<T> {
    inner: T,
    framer: NoiseFramer,
    /// Ciphertext read from `inner`: `raw[raw_start..raw_end]` is unconsumed.
    raw: Vec<u8>,
    raw_start: usize,
    raw_end: usize,
    /// Decrypted plaintext not yet read: `plain[plain_start..plain_end]`. Empty until needed.
    plain: Vec<u8>,
    plain_start: usize,
    plain_end: usize,
    read_eof: bool,
    read_failed: bool,
    /// An error met after some plaintext was already handed out in the same call: reported
    /// by the next read, so that nothing decrypted before it is lost.
    read_error: Option<NoiseError>,
    /// Plaintext waiting to fill a frame (capacity `MAX_PLAINTEXT_LEN`).
    wplain: Vec<u8>,
    /// One encrypted frame being written to `inner`: `wire[wire_start..wire_end]`.
    wire: Vec<u8>,
    wire_start: usize,
    wire_end: usize,
    write_failed: bool,
    /// An error met by a vectored write after it had accepted some bytes: reported next.
    write_error: Option<io::Error>,
}

impl<T> std::fmt::Debug for NoiseStream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseStream")
            .field("framer", &self.framer)
            .field("raw_buffered", &(self.raw_end - self.raw_start))
            .field("plain_buffered", &(self.plain_end - self.plain_start))
            .field("write_buffered", &self.wplain.len())
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
            raw: vec![0; RAW_CAP],
            raw_start: 0,
            raw_end: 0,
            plain: Vec::new(),
            plain_start: 0,
            plain_end: 0,
            read_eof: false,
            read_failed: false,
            read_error: None,
            wplain: Vec::with_capacity(MAX_PLAINTEXT_LEN),
            wire: vec![0; WIRE_FRAME],
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

    /// Encrypt `plaintext` (one frame's worth at most) into the empty wire buffer.
    fn seal(&mut self, from_wplain: bool, plaintext: &[u8]) -> io::Result<()> {
        debug_assert_eq!(self.wire_start, self.wire_end);
        let src = if from_wplain {
            &self.wplain[..]
        } else {
            plaintext
        };
        match self.framer.encrypt_frame(src, &mut self.wire) {
            Ok(n) => {
                self.wire_start = 0;
                self.wire_end = n;
                if from_wplain {
                    self.wplain.clear();
                }
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
        if self.wplain.len() == MAX_PLAINTEXT_LEN {
            // A full frame of plaintext waits for the wire buffer.
            ready!(self.poll_drain(cx))?;
            self.seal(true, &[])?;
            self.try_drain(cx)?;
        }
        let wire_idle = self.wire_start == self.wire_end;
        if self.wplain.is_empty() && wire_idle && buf.len() >= MAX_PLAINTEXT_LEN {
            // A whole frame straight from the caller's buffer, no staging copy.
            self.seal(false, &buf[..MAX_PLAINTEXT_LEN])?;
            self.try_drain(cx)?;
            return Poll::Ready(Ok(MAX_PLAINTEXT_LEN));
        }
        let n = buf.len().min(MAX_PLAINTEXT_LEN - self.wplain.len());
        self.wplain.extend_from_slice(&buf[..n]);
        if self.wplain.len() == MAX_PLAINTEXT_LEN && wire_idle {
            self.seal(true, &[])?;
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
            // 1. Plaintext decrypted earlier.
            if this.plain_start < this.plain_end {
                let n = (this.plain_end - this.plain_start).min(buf.remaining());
                buf.put_slice(&this.plain[this.plain_start..this.plain_start + n]);
                this.plain_start += n;
                delivered = true;
                if buf.remaining() == 0 {
                    return Poll::Ready(Ok(()));
                }
            }
            // 2. A whole frame in the raw buffer.
            let need = frame_len(&this.raw[this.raw_start..this.raw_end]);
            if let Some(total) = need
                && this.raw_end - this.raw_start >= total
            {
                let ct = &this.raw[this.raw_start + LEN_PREFIX_LEN..this.raw_start + total];
                let ct_len = total - LEN_PREFIX_LEN;
                let result = if buf.remaining() >= ct_len {
                    // Straight into the caller's buffer.
                    let dst = buf.initialize_unfilled_to(ct_len);
                    this.framer
                        .decrypt_frame(ct, dst)
                        .inspect(|&n| buf.advance(n))
                } else {
                    if this.plain.is_empty() {
                        this.plain = vec![0; MAX_FRAME_LEN];
                    }
                    this.framer
                        .decrypt_frame(ct, &mut this.plain[..ct_len])
                        .map(|n| {
                            this.plain_start = 0;
                            this.plain_end = n;
                            0
                        })
                };
                match result {
                    Ok(n) => delivered |= n > 0,
                    Err(e) => {
                        this.read_failed = true;
                        if delivered {
                            this.read_error = Some(e);
                            return Poll::Ready(Ok(()));
                        }
                        return Poll::Ready(Err(e.into_io()));
                    }
                }
                this.raw_start += total;
                if this.raw_start == this.raw_end {
                    this.raw_start = 0;
                    this.raw_end = 0;
                }
                continue;
            }
            // 3. Need more ciphertext; never wait once something was delivered.
            if delivered {
                return Poll::Ready(Ok(()));
            }
            if this.read_eof {
                let have = this.raw_end - this.raw_start;
                if have == 0 {
                    return Poll::Ready(Ok(()));
                }
                this.read_failed = true;
                let need = need.unwrap_or(LEN_PREFIX_LEN);
                return Poll::Ready(Err(NoiseError::TruncatedFrame { have, need }.into_io()));
            }
            let needed = need.unwrap_or(LEN_PREFIX_LEN);
            if this.raw_start > 0
                && (this.raw_start + needed > RAW_CAP || RAW_CAP - this.raw_end < READ_CHUNK)
            {
                this.raw.copy_within(this.raw_start..this.raw_end, 0);
                this.raw_end -= this.raw_start;
                this.raw_start = 0;
            }
            // Never an empty read buffer (a 0-byte read would look like EOF): an incomplete
            // frame is shorter than WIRE_FRAME, so at least READ_CHUNK bytes are free here.
            debug_assert!(RAW_CAP - this.raw_end >= READ_CHUNK.min(RAW_CAP - WIRE_FRAME));
            let mut rb = ReadBuf::new(&mut this.raw[this.raw_end..]);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
            let n = rb.filled().len();
            if n == 0 {
                this.read_eof = true;
            } else {
                this.raw_end += n;
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
        if !this.wplain.is_empty() {
            this.seal(true, &[])?;
            ready!(this.poll_drain(cx))?;
        }
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

// Compile-time checks of the buffer arithmetic.
const _: () = assert!(MAX_PLAINTEXT_LEN + TAG_LEN == MAX_FRAME_LEN);
const _: () = assert!(RAW_CAP > WIRE_FRAME);
