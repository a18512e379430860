//! Reading and writing identify messages on a stream.
//!
//! The framing is not in the spec. rust-libp2p writes one uvarint-length-prefixed message;
//! go-libp2p may write two (the second carrying only the signed peer record) and reads up to
//! ten. We write one message under 4 KiB and read, merging, up to [`Limits::max_messages`]
//! messages until the stream ends.

use bytes::{Buf, BytesMut};
use prost::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::message::{MAX_SEND_SIZE, Trimmed, prescan};
use crate::{Identify, IdentifyError};

/// Bytes read from the stream at a time.
pub const READ_CHUNK: usize = 1024;

/// Bounds on what a remote may send on one identify (or push) stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most length-prefixed messages merged from one stream. Default 10, as go-libp2p reads.
    pub max_messages: usize,
    /// Largest message body. Default 8 KiB: go-libp2p's read limit (a message with a signed
    /// peer record may exceed the 4 KiB other implementations send).
    pub max_message_size: usize,
    /// Most bytes on one stream, prefixes included. Default 32 KiB: an honest go-libp2p peer
    /// sends at most a 4 KiB message and a record message.
    pub max_total_size: usize,
    /// Most listen addresses across the merged messages. Default 512: nodes advertise a
    /// handful, and a 4 KiB message holds at most about 400 TCP addresses. The cap bounds the
    /// number of heap objects a stream of tiny entries would create.
    pub max_listen_addrs: usize,
    /// Most protocols across the merged messages. Default 1024 (a beacon node registers a few
    /// dozen; 4 KiB holds about 200 realistic protocol ids).
    pub max_protocols: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_messages: 10,
            max_message_size: 8 * 1024,
            max_total_size: 32 * 1024,
            max_listen_addrs: 512,
            max_protocols: 1024,
        }
    }
}

/// The sans-IO reader: takes the stream's bytes, merges complete messages, enforces
/// [`Limits`]. [`read_identify`] and [`decode_identify`] drive it.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    msg: Identify,
    messages: usize,
    consumed: usize,
    listen_addrs: usize,
    protocols: usize,
}

impl Decoder {
    /// A decoder with nothing merged yet.
    pub fn new(limits: Limits) -> Self {
        Decoder {
            limits,
            msg: Identify::default(),
            messages: 0,
            consumed: 0,
            listen_addrs: 0,
            protocols: 0,
        }
    }

    /// Take every complete message from the front of `buf` and merge it (protobuf merge: a
    /// later scalar field replaces an earlier one, repeated fields concatenate). An incomplete
    /// message stays in `buf`.
    ///
    /// A length prefix is checked as soon as it is complete, before its body arrives, so
    /// `buf` never needs to hold more than one message and the bytes of one read. Errors do not
    /// depend on how the bytes were split into calls.
    ///
    /// # Errors
    /// Every error is the peer's fault: [`IdentifyError::TooManyMessages`],
    /// [`IdentifyError::TotalTooLarge`], [`IdentifyError::InvalidLengthPrefix`],
    /// [`IdentifyError::MessageTooLarge`], [`IdentifyError::TooManyEntries`],
    /// [`IdentifyError::Malformed`], [`IdentifyError::Decode`].
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<(), IdentifyError> {
        let limits = self.limits;
        while !buf.is_empty() {
            if self.messages >= limits.max_messages {
                return Err(IdentifyError::TooManyMessages {
                    max: limits.max_messages,
                });
            }
            let (len, rest) = match unsigned_varint::decode::usize(&buf[..]) {
                Ok(v) => v,
                Err(unsigned_varint::decode::Error::Insufficient) => return Ok(()),
                Err(_) => return Err(IdentifyError::InvalidLengthPrefix),
            };
            let prefix = buf.len() - rest.len();
            if len > limits.max_message_size {
                return Err(IdentifyError::MessageTooLarge {
                    len,
                    max: limits.max_message_size,
                });
            }
            if self.consumed.saturating_add(prefix).saturating_add(len) > limits.max_total_size {
                return Err(IdentifyError::TotalTooLarge {
                    max: limits.max_total_size,
                });
            }
            if rest.len() < len {
                return Ok(());
            }
            let body = &rest[..len];
            let counts = prescan(body)?;
            self.listen_addrs += counts.listen_addrs;
            if self.listen_addrs > limits.max_listen_addrs {
                return Err(IdentifyError::TooManyEntries {
                    what: "listen addresses",
                    max: limits.max_listen_addrs,
                });
            }
            self.protocols += counts.protocols;
            if self.protocols > limits.max_protocols {
                return Err(IdentifyError::TooManyEntries {
                    what: "protocols",
                    max: limits.max_protocols,
                });
            }
            self.msg.merge(body)?;
            self.messages += 1;
            self.consumed += prefix + len;
            buf.advance(prefix + len);
        }
        Ok(())
    }

    /// Messages merged so far.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// The stream ended; `rest` is what [`Decoder::decode`] left unconsumed.
    ///
    /// # Errors
    /// [`IdentifyError::Truncated`] when `rest` is not empty, [`IdentifyError::Empty`] when no
    /// message arrived.
    pub fn finish(self, rest: &[u8]) -> Result<Identify, IdentifyError> {
        if !rest.is_empty() {
            return Err(IdentifyError::Truncated { have: rest.len() });
        }
        if self.messages == 0 {
            return Err(IdentifyError::Empty);
        }
        Ok(self.msg)
    }
}

/// Decode a whole identify stream held in memory (everything up to EOF): the same checks as
/// [`read_identify`].
///
/// # Errors
/// As [`Decoder::decode`] and [`Decoder::finish`].
pub fn decode_identify(data: &[u8], limits: &Limits) -> Result<Identify, IdentifyError> {
    let mut decoder = Decoder::new(*limits);
    let mut buf = BytesMut::from(data);
    decoder.decode(&mut buf)?;
    decoder.finish(&buf)
}

/// Read an identify stream until EOF, merging up to [`Limits::max_messages`]
/// uvarint-length-prefixed messages. The read buffer holds at most one message (up to
/// [`Limits::max_message_size`] plus its prefix) and one [`READ_CHUNK`].
///
/// This does not time out by itself; wrap it in `tokio::time::timeout`.
///
/// # Errors
/// [`IdentifyError::Io`] for a failed read or a reset, and as [`decode_identify`].
pub async fn read_identify<S: AsyncRead + Unpin>(
    stream: &mut S,
    limits: &Limits,
) -> Result<Identify, IdentifyError> {
    let mut decoder = Decoder::new(*limits);
    let mut buf = BytesMut::new();
    let mut chunk = [0u8; READ_CHUNK];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return decoder.finish(&buf);
        }
        buf.extend_from_slice(&chunk[..n]);
        decoder.decode(&mut buf)?;
    }
}

/// Write `msg` as one length-prefixed message with a body of at most [`MAX_SEND_SIZE`] bytes
/// (trimmed as [`Identify::encode_bounded`] describes), flush, and half-close the stream.
///
/// Returns what was trimmed.
///
/// # Errors
/// [`IdentifyError::LocalMessageTooLarge`], [`IdentifyError::Io`].
pub async fn write_identify<S: AsyncWrite + Unpin>(
    stream: &mut S,
    msg: &Identify,
) -> Result<Trimmed, IdentifyError> {
    let (bytes, trimmed) = msg.encode_bounded(MAX_SEND_SIZE)?;
    if !trimmed.is_empty() {
        tracing::warn!(?trimmed, "identify message trimmed to fit 4 KiB");
    }
    stream.write_all(&bytes).await?;
    stream.flush().await?;
    stream.shutdown().await?;
    Ok(trimmed)
}
