//! The one error type of this crate, with its blame.

use std::io;

use plexus_core::{Blame, SecurityError};
use plexus_identity::{DecodingError, PeerId};

/// Why a Noise handshake or a Noise transport operation failed.
///
/// [`NoiseError::blame`] says who is at fault. Inside a [`crate::NoiseStream`] the error is
/// carried as the inner error of a [`std::io::Error`] (downcast with
/// `io_error.get_ref().and_then(|e| e.downcast_ref::<NoiseError>())`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NoiseError {
    /// Reading or writing the underlying stream failed, or it ended during the handshake.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// A message or frame failed to decrypt (bad tag, wrong key, shorter than a tag).
    #[error("decryption failed")]
    Decrypt,
    /// A handshake message does not have the shape XX requires (e.g. a first message that is
    /// not exactly one ephemeral key).
    #[error("malformed handshake message {msg}: {reason}")]
    MalformedMessage {
        /// Which handshake message (1, 2 or 3).
        msg: u8,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The decrypted handshake payload is not a valid `NoiseHandshakePayload` protobuf.
    #[error("undecodable handshake payload: {0}")]
    InvalidPayload(#[from] prost::DecodeError),
    /// The handshake payload is malformed at the protobuf wire level.
    #[error("malformed handshake payload: {0}")]
    MalformedPayload(&'static str),
    /// The handshake payload exceeds one of the [`crate::PayloadLimits`].
    #[error("handshake payload over limit: {what} (limit {limit})")]
    PayloadLimit {
        /// Which limit.
        what: &'static str,
        /// Its value.
        limit: usize,
    },
    /// The payload carries no identity key.
    #[error("handshake payload without identity key")]
    MissingIdentityKey,
    /// The payload carries no identity signature.
    #[error("handshake payload without identity signature")]
    MissingSignature,
    /// The identity key is a key type plexus does not implement (RSA, ECDSA, unknown).
    #[error("unsupported identity key: {0}")]
    UnsupportedKey(DecodingError),
    /// The identity key does not decode (bad length, not a curve point, non-canonical).
    #[error("invalid identity key: {0}")]
    InvalidKey(DecodingError),
    /// The identity signature over the Noise static key does not verify.
    #[error("identity signature over the noise static key does not verify")]
    BadSignature,
    /// The remote authenticated as another peer than the one dialed.
    #[error("peer id mismatch: dialed {expected}, remote is {actual}")]
    PeerIdMismatch {
        /// The peer we dialed.
        expected: PeerId,
        /// The peer that answered.
        actual: PeerId,
    },
    /// Both sides listed stream muxers in the handshake and no muxer is on both lists.
    #[error("no common stream muxer (ours {ours:?}, theirs {theirs:?})")]
    NoCommonMuxer {
        /// Our list.
        ours: Vec<String>,
        /// The remote's list.
        theirs: Vec<String>,
    },
    /// Our own handshake payload does not fit (our muxer list is over the limits).
    #[error("local handshake payload over limit: {0}")]
    LocalPayloadTooLarge(&'static str),
    /// The stream ended in the middle of a transport frame.
    #[error("stream ended inside a frame ({have} of {need} bytes)")]
    TruncatedFrame {
        /// Bytes of the frame received (including the length prefix).
        have: usize,
        /// Bytes the frame needs (including the length prefix).
        need: usize,
    },
    /// A cipher state used its last nonce (2^64 − 1 messages): the connection must end.
    #[error("noise nonce exhausted")]
    NonceExhausted,
    /// This direction of the framer or stream failed before; it cannot be used again.
    #[error("noise session failed earlier")]
    Poisoned,
    /// An output buffer is too small, or a plaintext larger than one frame was passed where a
    /// single frame was asked for (a caller bug).
    #[error("buffer too small or plaintext too large for one frame")]
    BufferSize,
    /// The Noise library refused an operation it should not have (a bug).
    #[error("noise internal error ({context}): {source}")]
    Internal {
        /// What we were doing.
        context: &'static str,
        /// snow's error.
        #[source]
        source: snow::Error,
    },
}

impl NoiseError {
    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        match self {
            NoiseError::Decrypt
            | NoiseError::MalformedMessage { .. }
            | NoiseError::InvalidPayload(_)
            | NoiseError::MalformedPayload(_)
            | NoiseError::PayloadLimit { .. }
            | NoiseError::MissingIdentityKey
            | NoiseError::MissingSignature
            | NoiseError::InvalidKey(_)
            | NoiseError::BadSignature => Blame::PeerMisbehaved,
            NoiseError::UnsupportedKey(_)
            | NoiseError::PeerIdMismatch { .. }
            | NoiseError::NoCommonMuxer { .. } => Blame::PeerIncompatible,
            NoiseError::Io(_)
            | NoiseError::LocalPayloadTooLarge(_)
            | NoiseError::TruncatedFrame { .. }
            | NoiseError::NonceExhausted
            | NoiseError::Poisoned
            | NoiseError::BufferSize
            | NoiseError::Internal { .. } => Blame::Local,
        }
    }

    /// Map a snow error from a decryption or handshake read to our error.
    pub(crate) fn from_snow_read(e: snow::Error, context: &'static str) -> NoiseError {
        match e {
            snow::Error::Decrypt | snow::Error::Input | snow::Error::Dh => NoiseError::Decrypt,
            snow::Error::State(snow::error::StateProblem::Exhausted) => NoiseError::NonceExhausted,
            source => NoiseError::Internal { context, source },
        }
    }

    /// Map a snow error from an encryption or handshake write to our error.
    pub(crate) fn from_snow_write(e: snow::Error, context: &'static str) -> NoiseError {
        match e {
            snow::Error::State(snow::error::StateProblem::Exhausted) => NoiseError::NonceExhausted,
            source => NoiseError::Internal { context, source },
        }
    }

    /// The `io::ErrorKind` this error surfaces as inside a [`crate::NoiseStream`].
    pub(crate) fn io_kind(&self) -> io::ErrorKind {
        match self {
            NoiseError::Io(e) => e.kind(),
            NoiseError::TruncatedFrame { .. } => io::ErrorKind::UnexpectedEof,
            NoiseError::Decrypt => io::ErrorKind::InvalidData,
            _ => io::ErrorKind::Other,
        }
    }

    /// Wrap into an `io::Error` (an I/O error is passed through unchanged).
    pub(crate) fn into_io(self) -> io::Error {
        match self {
            NoiseError::Io(e) => e,
            other => io::Error::new(other.io_kind(), other),
        }
    }
}

impl From<NoiseError> for SecurityError {
    fn from(e: NoiseError) -> SecurityError {
        match e {
            NoiseError::PeerIdMismatch { expected, actual } => {
                SecurityError::PeerIdMismatch { expected, actual }
            }
            other => SecurityError::Failed {
                blame: other.blame(),
                source: Box::new(other),
            },
        }
    }
}
