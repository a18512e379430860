//! Error types.

use crate::keys::KeyType;

/// A key protobuf (or raw key material) could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodingError {
    /// The bytes are not a valid protobuf message.
    #[error("malformed key protobuf: {0}")]
    Protobuf(String),
    /// The bytes decode, but are not the canonical (deterministic) encoding: fields out of tag
    /// order, missing or duplicated fields, non-minimal varints, unknown fields or trailing data.
    #[error("key protobuf is not canonically encoded")]
    NonCanonical,
    /// A known key type that plexus deliberately does not implement (RSA, ECDSA).
    #[error("unsupported key type {name} ({code})")]
    UnsupportedKeyType {
        /// The protobuf enum value.
        code: i32,
        /// Its name in the spec.
        name: &'static str,
    },
    /// A key type value that the spec does not define.
    #[error("unknown key type {0}")]
    UnknownKeyType(i32),
    /// The key data has the wrong length for its type.
    #[error("invalid {key_type:?} key length: expected {expected}, got {actual}")]
    InvalidLength {
        /// The key type.
        key_type: KeyType,
        /// Expected length in bytes (for legacy ed25519 private keys: 64).
        expected: usize,
        /// Actual length in bytes.
        actual: usize,
    },
    /// The public key bytes are not a valid point (or the secret is not a valid scalar).
    #[error("invalid {0:?} key material")]
    InvalidKey(KeyType),
    /// An ed25519 private key whose embedded public key does not match its secret
    /// (or, in the legacy 96-byte form, whose two public key copies differ).
    #[error("ed25519 private key data does not match its public key")]
    Ed25519PublicMismatch,
}

/// A [`PeerId`](crate::PeerId) could not be parsed from bytes or text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The input is empty.
    #[error("empty peer id")]
    Empty,
    /// The input is longer than any valid peer id.
    #[error("peer id too long: {0} bytes/chars")]
    TooLong(usize),
    /// A varint (multihash code/length, CID version/codec) is malformed, overlong or truncated.
    #[error("bad varint in peer id")]
    Varint,
    /// The multihash code is neither identity (0x00) nor sha2-256 (0x12).
    #[error("unsupported multihash code {0:#x}")]
    UnsupportedMultihash(u64),
    /// The multihash digest length is wrong for its code (identity: ≤ 42, sha2-256: 32).
    #[error("invalid multihash digest length {len} for code {code:#x}")]
    InvalidDigestLength {
        /// The multihash code.
        code: u64,
        /// The declared digest length.
        len: u64,
    },
    /// The declared digest length does not match the bytes that follow it.
    #[error("multihash length mismatch: declared {declared}, have {actual}")]
    LengthMismatch {
        /// Declared digest length.
        declared: usize,
        /// Bytes actually present after the header.
        actual: usize,
    },
    /// Invalid base58btc text.
    #[error("invalid base58btc")]
    Base58,
    /// Invalid base32 (lower case, unpadded) text.
    #[error("invalid base32")]
    Base32,
    /// The text uses a multibase prefix plexus does not accept.
    #[error("unsupported multibase prefix {0:?}")]
    UnsupportedMultibase(char),
    /// The CID version is not 1.
    #[error("unsupported CID version {0}")]
    UnsupportedCidVersion(u64),
    /// The CID's multicodec is not `libp2p-key` (0x72).
    #[error("CID codec {0:#x} is not libp2p-key (0x72)")]
    WrongCodec(u64),
}

/// A key file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyFileError {
    /// Reading the file failed.
    #[error("reading key file: {0}")]
    Io(#[from] std::io::Error),
    /// The file is larger than any valid private key protobuf.
    #[error("key file too large: {0} bytes")]
    TooLarge(u64),
    /// The file content is not a valid private key protobuf.
    #[error("decoding key file: {0}")]
    Decoding(#[from] DecodingError),
}
