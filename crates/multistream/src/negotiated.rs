//! Async glue: drive the sans-IO machines over a tokio byte stream.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::{Config, DialerSelect, ListenerSelect, NegotiationError, Progress, READ_CHUNK};

/// Most application bytes of a lazy dialer's first write that are copied
/// into the same write as the header and proposal.
const COALESCE_MAX: usize = 8 * 1024;

/// What the driver needs of a state machine.
trait Machine {
    fn transmit(&self) -> &[u8];
    fn advance_transmit(&mut self, n: usize);
    fn handle_input(&mut self, input: &mut BytesMut) -> Result<Progress, NegotiationError>;
}

macro_rules! impl_machine {
    ($t:ty) => {
        impl Machine for $t {
            fn transmit(&self) -> &[u8] {
                <$t>::transmit(self)
            }
            fn advance_transmit(&mut self, n: usize) {
                <$t>::advance_transmit(self, n)
            }
            fn handle_input(&mut self, input: &mut BytesMut) -> Result<Progress, NegotiationError> {
                <$t>::handle_input(self, input)
            }
        }
    };
}
impl_machine!(DialerSelect);
impl_machine!(ListenerSelect);

/// Writes all of `buf` to `io`.
fn poll_write_all<T: AsyncWrite + Unpin>(
    io: &mut T,
    buf: &mut BytesMut,
    cx: &mut Context<'_>,
) -> Poll<io::Result<()>> {
    while !buf.is_empty() {
        let n = ready!(Pin::new(&mut *io).poll_write(cx, buf))?;
        if n == 0 {
            return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
        }
        buf.advance(n);
    }
    Poll::Ready(Ok(()))
}

/// Runs `m` to agreement: what it owes is written first; then input is read
/// in chunks of at most [`READ_CHUNK`], and only while `rbuf` holds no whole
/// message, so `rbuf` stays below `max_message_len + 9 + READ_CHUNK` bytes.
/// Pending output is flushed before waiting for input.
fn poll_drive<T: AsyncRead + AsyncWrite + Unpin, M: Machine>(
    cx: &mut Context<'_>,
    io: &mut T,
    m: &mut M,
    rbuf: &mut BytesMut,
) -> Poll<Result<String, NegotiationError>> {
    loop {
        let progress = match m.handle_input(rbuf) {
            Ok(progress) => progress,
            Err(e) => {
                // Best effort, without waiting: send what we owe (e.g. the
                // `na` a lazy dialer needs to learn its fate).
                while !m.transmit().is_empty() {
                    match Pin::new(&mut *io).poll_write(cx, m.transmit()) {
                        Poll::Ready(Ok(n)) if n > 0 => m.advance_transmit(n),
                        _ => break,
                    }
                }
                let _ = Pin::new(&mut *io).poll_flush(cx);
                return Poll::Ready(Err(e));
            }
        };
        while !m.transmit().is_empty() {
            let n = ready!(Pin::new(&mut *io).poll_write(cx, m.transmit()))?;
            if n == 0 {
                return Poll::Ready(Err(io::Error::from(io::ErrorKind::WriteZero).into()));
            }
            m.advance_transmit(n);
        }
        if let Progress::Agreed(p) = progress {
            ready!(Pin::new(&mut *io).poll_flush(cx))?;
            return Poll::Ready(Ok(p));
        }
        let mut chunk = [0u8; READ_CHUNK];
        let mut chunk = ReadBuf::new(&mut chunk);
        match Pin::new(&mut *io).poll_read(cx, &mut chunk) {
            Poll::Pending => {
                ready!(Pin::new(&mut *io).poll_flush(cx))?;
                return Poll::Pending;
            }
            Poll::Ready(res) => res?,
        }
        if chunk.filled().is_empty() {
            return Poll::Ready(Err(NegotiationError::UnexpectedEof));
        }
        rbuf.extend_from_slice(chunk.filled());
    }
}

/// Negotiates as the dialer, proposing `protocols` in order, and waits for
/// the listener's echo. Returns the agreed protocol and the stream.
pub async fn dialer_select<T: AsyncRead + AsyncWrite + Unpin>(
    mut io: T,
    protocols: &[&str],
    cfg: &Config,
) -> Result<(String, Negotiated<T>), NegotiationError> {
    let mut m = DialerSelect::new(protocols, cfg)?;
    let mut rbuf = BytesMut::new();
    let p = poll_fn(|cx| poll_drive(cx, &mut io, &mut m, &mut rbuf)).await?;
    Ok((p, Negotiated::completed(io, rbuf)))
}

/// Negotiates as the listener, agreeing to the first of the dialer's
/// proposals that is in `supported` (exact string match).
/// The echo is flushed before this returns; bytes the dialer pipelined after
/// its proposal are read first from the returned stream.
pub async fn listener_select<T: AsyncRead + AsyncWrite + Unpin>(
    mut io: T,
    supported: &[&str],
    cfg: &Config,
) -> Result<(String, Negotiated<T>), NegotiationError> {
    let mut m = ListenerSelect::new(supported, cfg)?;
    let mut rbuf = BytesMut::new();
    let p = poll_fn(|cx| poll_drive(cx, &mut io, &mut m, &mut rbuf)).await?;
    Ok((p, Negotiated::completed(io, rbuf)))
}

/// Selects `protocol` optimistically ("lazy"/V1Lazy) and returns at once.
///
/// The header and proposal leave with the first application write (or the
/// first flush or read), without waiting for the echo. The first read
/// consumes and checks the listener's header and echo before yielding
/// application data. If the listener answers `na`, that read (and every later
/// read, write or flush) fails with an [`io::Error`] wrapping
/// [`NegotiationError::ProtocolRejected`]. A stream that is only written
/// learns nothing about a rejection until the remote resets it.
pub fn dialer_select_lazy<T: AsyncRead + AsyncWrite + Unpin>(
    io: T,
    protocol: &str,
    cfg: &Config,
) -> Negotiated<T> {
    let mut negotiated = Negotiated::completed(io, BytesMut::new());
    match DialerSelect::new(&[protocol], cfg) {
        Ok(mut machine) => {
            negotiated.wbuf.extend_from_slice(machine.transmit());
            machine.advance_transmit(machine.transmit().len());
            negotiated.coalesce = true;
            negotiated.lazy = Some(Lazy {
                machine,
                protocol: protocol.to_owned(),
            });
        }
        Err(e) => negotiated.failed = Some(e),
    }
    negotiated
}

/// A lazy negotiation awaiting the listener's answer.
#[derive(Debug)]
struct Lazy {
    machine: DialerSelect,
    protocol: String,
}

/// A stream whose protocol was negotiated (or, for a lazy dialer, is being
/// confirmed). Reads first yield bytes the peer sent right after the
/// negotiation, then read from the inner stream. Writes go to the inner
/// stream; a lazy dialer's negotiation bytes are written first (flush to be
/// sure they left).
#[derive(Debug)]
pub struct Negotiated<T> {
    io: T,
    /// Read bytes not yet handed out: negotiation input while `lazy` is set,
    /// then application data read along with the negotiation.
    rbuf: BytesMut,
    /// Bytes owed to `io` before any further application write.
    wbuf: BytesMut,
    /// The next application write may be appended to `wbuf`.
    coalesce: bool,
    lazy: Option<Lazy>,
    failed: Option<NegotiationError>,
}

impl<T> Negotiated<T> {
    fn completed(io: T, rbuf: BytesMut) -> Self {
        Negotiated {
            io,
            rbuf,
            wbuf: BytesMut::new(),
            coalesce: false,
            lazy: None,
            failed: None,
        }
    }

    /// Whether the protocol is confirmed (always, except for a lazy dialer
    /// before its first successful read).
    pub fn is_confirmed(&self) -> bool {
        self.lazy.is_none() && self.failed.is_none()
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Negotiated<T> {
    fn check_failed(&self) -> io::Result<()> {
        match &self.failed {
            Some(e) => Err(e.duplicate().into()),
            None => Ok(()),
        }
    }

    /// Sends what the lazy negotiation owes and reads its answer.
    fn poll_confirm(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check_failed()?;
        let Some(lazy) = self.lazy.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        self.coalesce = false;
        ready!(poll_write_all(&mut self.io, &mut self.wbuf, cx))?;
        let res = ready!(poll_drive(
            cx,
            &mut self.io,
            &mut lazy.machine,
            &mut self.rbuf
        ));
        let protocol = self.lazy.take().map(|l| l.protocol).unwrap_or_default();
        match res {
            Ok(_) => Poll::Ready(Ok(())),
            Err(e) => {
                let e = match e {
                    NegotiationError::ProtocolsExhausted => {
                        NegotiationError::ProtocolRejected(protocol)
                    }
                    e => e,
                };
                self.rbuf = BytesMut::new();
                self.failed = Some(e.duplicate());
                Poll::Ready(Err(e.into()))
            }
        }
    }

    fn poll_flush_inner(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.check_failed()?;
        self.coalesce = false;
        ready!(poll_write_all(&mut self.io, &mut self.wbuf, cx))?;
        Pin::new(&mut self.io).poll_flush(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncRead for Negotiated<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_confirm(cx))?;
        if !this.rbuf.is_empty() {
            let n = this.rbuf.len().min(buf.remaining());
            buf.put_slice(&this.rbuf[..n]);
            this.rbuf.advance(n);
            if this.rbuf.is_empty() {
                this.rbuf = BytesMut::new();
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Negotiated<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.check_failed()?;
        if this.coalesce {
            // Lazy: header, proposal and the first application bytes leave
            // in one write. The bytes are ours now; flushing sends the rest.
            this.coalesce = false;
            let n = data.len().min(COALESCE_MAX);
            this.wbuf.extend_from_slice(&data[..n]);
            if let Poll::Ready(Err(e)) = poll_write_all(&mut this.io, &mut this.wbuf, cx) {
                return Poll::Ready(Err(e));
            }
            return Poll::Ready(Ok(n));
        }
        ready!(poll_write_all(&mut this.io, &mut this.wbuf, cx))?;
        Pin::new(&mut this.io).poll_write(cx, data)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().poll_flush_inner(cx)
    }

    /// Flushes pending negotiation bytes first, then shuts the inner stream
    /// down (after a failed negotiation, only the latter).
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.failed.is_none() {
            ready!(this.poll_flush_inner(cx))?;
        }
        Pin::new(&mut this.io).poll_shutdown(cx)
    }
}

impl<T: plexus_core::MuxedStream> plexus_core::MuxedStream for Negotiated<T> {
    fn reset(&mut self) {
        self.io.reset();
    }
    fn readable(&self) -> usize {
        // Application data read along with the negotiation comes first.
        let ours = if self.lazy.is_none() {
            self.rbuf.len()
        } else {
            0
        };
        ours + self.io.readable()
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

    use super::*;
    use crate::Message;

    /// A muxed stream that says `n` bytes wait in the muxer (reads and writes go nowhere).
    struct Buffered(usize);

    impl AsyncRead for Buffered {
        fn poll_read(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            _: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Poll::Pending
        }
    }

    impl AsyncWrite for Buffered {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            b: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    impl plexus_core::MuxedStream for Buffered {
        fn reset(&mut self) {}
        fn readable(&self) -> usize {
            self.0
        }
    }

    #[test]
    fn readable_counts_bytes_read_past_the_negotiation_and_the_muxers() {
        use plexus_core::MuxedStream;
        let n = Negotiated::completed(Buffered(7), BytesMut::from(&b"early"[..]));
        assert_eq!(n.readable(), 5 + 7);
        let n = Negotiated::completed(Buffered(0), BytesMut::new());
        assert_eq!(n.readable(), 0);
    }

    fn wire(msgs: &[Message], tail: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        for m in msgs {
            m.encode(&mut out);
        }
        out.extend_from_slice(tail);
        out.to_vec()
    }

    #[tokio::test]
    async fn listener_reads_at_most_one_chunk_past_the_proposal() {
        let app: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let (mut a, b) = duplex(1 << 18);
        let input = wire(&[Message::Header, Message::Protocol("/p".into())], &app);
        a.write_all(&input).await.unwrap();
        a.shutdown().await.unwrap();
        let (_, mut s) = listener_select(b, &["/p"], &Config::default())
            .await
            .unwrap();
        assert!(!s.rbuf.is_empty() && s.rbuf.len() <= READ_CHUNK);
        let mut got = Vec::new();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, app);
    }

    #[tokio::test]
    async fn lazy_dialer_reads_at_most_one_chunk_past_the_echo() {
        let app: Vec<u8> = (0..100_000u32).map(|i| (i % 249) as u8).collect();
        let (a, mut b) = duplex(1 << 18);
        let answer = wire(&[Message::Header, Message::Protocol("/p".into())], &app);
        b.write_all(&answer).await.unwrap();
        b.shutdown().await.unwrap();
        let mut s = dialer_select_lazy(a, "/p", &Config::default());
        let mut first = [0u8; 1];
        s.read_exact(&mut first).await.unwrap();
        assert!(s.is_confirmed());
        assert!(s.rbuf.len() < READ_CHUNK);
        let mut got = first.to_vec();
        s.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, app);
    }

    /// A peer whose bytes arrive at most `per_read` at a time; writes vanish.
    struct Feed {
        data: Vec<u8>,
        pos: usize,
        per_read: usize,
    }

    impl AsyncRead for Feed {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            let start = self.pos;
            let n = buf
                .remaining()
                .min(self.per_read)
                .min(self.data.len() - start);
            buf.put_slice(&self.data[start..start + n]);
            self.pos += n;
            Poll::Ready(Ok(()))
        }
    }

    impl AsyncWrite for Feed {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            data: &[u8],
        ) -> Poll<io::Result<usize>> {
            Poll::Ready(Ok(data.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// A listener that records the largest input buffer it was handed.
    struct Watch(ListenerSelect, usize);

    impl Machine for Watch {
        fn transmit(&self) -> &[u8] {
            self.0.transmit()
        }
        fn advance_transmit(&mut self, n: usize) {
            self.0.advance_transmit(n)
        }
        fn handle_input(&mut self, input: &mut BytesMut) -> Result<Progress, NegotiationError> {
            self.1 = self.1.max(input.len());
            self.0.handle_input(input)
        }
    }

    fn drive(
        data: Vec<u8>,
        per_read: usize,
        supported: &str,
    ) -> (Result<String, NegotiationError>, Feed, Watch, BytesMut) {
        let cfg = Config::default();
        let mut io = Feed {
            data,
            pos: 0,
            per_read,
        };
        let mut m = Watch(ListenerSelect::new(&[supported], &cfg).unwrap(), 0);
        let mut rbuf = BytesMut::new();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let Poll::Ready(res) = poll_drive(&mut cx, &mut io, &mut m, &mut rbuf) else {
            panic!("a Feed never blocks")
        };
        (res, io, m, rbuf)
    }

    #[test]
    fn over_long_message_is_rejected_after_its_prefix() {
        let mut input = wire(&[Message::Header], &[0x81, 0x08]);
        input.extend(std::iter::repeat_n(b'x', 5000));
        let (res, io, _, _) = drive(input, 1, "/p");
        assert!(matches!(
            res,
            Err(NegotiationError::InvalidMessage(
                crate::DecodeError::TooLong { max: 1024 }
            ))
        ));
        assert_eq!(io.pos, 22, "nothing read past the offending prefix");
    }

    #[test]
    fn negotiation_buffer_stays_below_one_message_plus_a_chunk() {
        let cfg = Config::default();
        let long = format!("/{}", "x".repeat(1022)); // length prefix 1024
        let input = wire(
            &[Message::Header, Message::Protocol(long.clone())],
            &[7; 4096],
        );
        for per_read in [1, 100, usize::MAX] {
            let (res, _, m, rbuf) = drive(input.clone(), per_read, &long);
            assert_eq!(res.unwrap(), long);
            assert!(
                m.1 <= cfg.max_message_len + 9 + READ_CHUNK,
                "buffered {}",
                m.1
            );
            assert!(rbuf.len() <= READ_CHUNK);
            assert!(rbuf.iter().all(|&b| b == 7));
        }
    }
}
