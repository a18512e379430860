//! The codec's errors, each with its blame.

use plexus_core::Blame;
use plexus_eth::{Fork, ForkDigest};

/// Decoding a request or a response chunk failed. Every variant but [`CodecError::Ssz`] is
/// detected before the payload is handed on; all are the remote's fault
/// ([`Blame::PeerMisbehaved`]): on a request answer `InvalidRequest` (1), on a response stop
/// reading and reset the stream.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// The length prefix is not a minimal unsigned varint (a redundant `0x80 … 0x00` tail).
    #[error("length prefix is not minimally encoded")]
    NonMinimalVarint,
    /// The length prefix is longer than 10 bytes or overflows 64 bits.
    #[error("length prefix overflows u64")]
    VarintOverflow,
    /// The declared SSZ length is outside the type's bounds (or above `MAX_PAYLOAD_SIZE`).
    #[error("declared length {len} outside [{min}, {max}]")]
    LengthOutOfBounds {
        /// Declared length.
        len: u64,
        /// Smallest valid encoding.
        min: u64,
        /// Largest accepted encoding.
        max: u64,
    },
    /// The payload does not start with the snappy stream identifier chunk.
    #[error("snappy stream does not start with the stream identifier")]
    MissingStreamIdentifier,
    /// A stream identifier chunk with the wrong length or magic.
    #[error("malformed snappy stream identifier")]
    BadStreamIdentifier,
    /// A reserved unskippable snappy chunk type (0x02–0x7f).
    #[error("reserved unskippable snappy chunk type {0:#04x}")]
    ReservedChunk(u8),
    /// A snappy chunk longer than the format allows (65,536 uncompressed bytes per chunk).
    #[error("snappy chunk of {len} bytes exceeds {max}")]
    ChunkTooLarge {
        /// Length given in the chunk header (or the block's uncompressed length).
        len: u64,
        /// The bound.
        max: u64,
    },
    /// A snappy chunk would produce more bytes than the declared length (a snappy bomb), found
    /// from its header or block preamble before it is decompressed.
    #[error("snappy chunk would expand to {would_be} bytes, past the declared {declared}")]
    Overflow {
        /// Declared SSZ length.
        declared: u64,
        /// Bytes the payload would hold after this chunk.
        would_be: u64,
    },
    /// More compressed bytes than `max_compressed_len(declared)` for one payload.
    #[error("more than {max} compressed bytes for one payload")]
    CompressedTooLong {
        /// `max_compressed_len(declared)`.
        max: u64,
    },
    /// More snappy chunks than `ceil(declared / 65536) + max_extra_frames` for one payload.
    #[error("more than {max} snappy chunks for one payload")]
    TooManyFrames {
        /// The bound.
        max: u64,
    },
    /// A compressed chunk did not decompress (or its size differs from its preamble).
    #[error("invalid snappy block: {0}")]
    Snappy(String),
    /// A chunk's CRC-32C does not match its uncompressed data.
    #[error("snappy chunk checksum mismatch")]
    BadChecksum,
    /// Bytes after the request, or after the last chunk of a single-chunk response.
    #[error("unexpected bytes after the end of the message")]
    TrailingBytes,
    /// The stream ended inside a request or a response chunk.
    #[error("stream ended inside {0}")]
    UnexpectedEof(&'static str),
    /// Context bytes that are none of the network's fork digests.
    #[error("context bytes {0} are not a known fork digest")]
    UnknownContext(ForkDigest),
    /// Context bytes naming a fork at which this protocol has no response type (a data column
    /// sidecar under a Deneb digest).
    #[error("context bytes {digest} name {fork}, where this protocol has no response type")]
    WrongContext {
        /// The digest received.
        digest: ForkDigest,
        /// Its fork.
        fork: Fork,
    },
    /// A response chunk beyond the most the request allows.
    #[error("more than {max} response chunks")]
    TooManyChunks {
        /// The most the request allows.
        max: u64,
    },
    /// A complete payload that is not valid SSZ of the expected type.
    #[error("invalid SSZ payload: {0}")]
    Ssz(String),
}

impl CodecError {
    /// Who is to blame: always the peer that sent the bytes.
    pub fn blame(&self) -> Blame {
        Blame::PeerMisbehaved
    }
}

/// Encoding a request or a response chunk failed: a local mistake.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The SSZ payload is outside the type's bounds; the spec forbids sending it.
    #[error("payload of {len} bytes outside [{min}, {max}]")]
    OutOfBounds {
        /// Payload length.
        len: u64,
        /// Smallest valid encoding.
        min: u64,
        /// Largest accepted encoding.
        max: u64,
    },
    /// The protocol has no request body, but one was given (or the reverse).
    #[error("{0} request body")]
    RequestBody(&'static str),
    /// Context bytes missing on a protocol that needs them, or given on one that has none.
    #[error("context bytes {0} for this protocol")]
    Context(&'static str),
    /// The context digest names a fork at which the protocol has no response type, or is not
    /// one of the network's digests.
    #[error("context digest {0} does not fit this protocol")]
    BadContext(ForkDigest),
    /// An error chunk was asked for with the success code.
    #[error("an error chunk needs a non-zero code")]
    SuccessCode,
}

impl EncodeError {
    /// Who is to blame: us.
    pub fn blame(&self) -> Blame {
        Blame::Local
    }
}
