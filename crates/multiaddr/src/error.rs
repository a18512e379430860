//! Multiaddr errors.

/// A multiaddr could not be parsed (text or binary).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Text: a non-empty multiaddr must start with `/`.
    #[error("multiaddr must start with '/'")]
    MissingLeadingSlash,
    /// Text: an empty component (`//`, or just `/`).
    #[error("empty multiaddr component")]
    EmptyComponent,
    /// Text: a protocol name plexus does not know (or does not support).
    #[error("unknown protocol name {0:?}")]
    UnknownProtocolName(String),
    /// Binary: a protocol code plexus does not know (or does not support).
    #[error("unknown protocol code {0:#x}")]
    UnknownProtocolCode(u64),
    /// Text: a protocol that needs a value is the last component.
    #[error("protocol {0} is missing its value")]
    MissingValue(&'static str),
    /// A protocol value is invalid (bad IP, port, UTF-8, peer id…).
    #[error("invalid value for {protocol}: {reason}")]
    InvalidValue {
        /// The protocol name.
        protocol: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A DNS name is empty, longer than 253 bytes, or contains `/`.
    #[error("invalid DNS name: {0}")]
    InvalidDnsName(&'static str),
    /// Binary: a varint is overlong, non-minimal or truncated.
    #[error("invalid varint")]
    InvalidVarint,
    /// Binary: the input ends inside a value.
    #[error("truncated value for {protocol}: need {needed} bytes, have {available}")]
    Truncated {
        /// The protocol name.
        protocol: &'static str,
        /// Bytes needed.
        needed: usize,
        /// Bytes left.
        available: usize,
    },
    /// Binary: a length-prefixed value is longer than the protocol allows.
    #[error("value for {protocol} too long: {len} > {max}")]
    ValueTooLong {
        /// The protocol name.
        protocol: &'static str,
        /// Declared length.
        len: u64,
        /// The protocol's maximum.
        max: usize,
    },
    /// More than [`MAX_COMPONENTS`](crate::MAX_COMPONENTS) components.
    #[error("too many multiaddr components (max {})", crate::MAX_COMPONENTS)]
    TooManyComponents,
    /// Binary input longer than [`MAX_ENCODED_LENGTH`](crate::MAX_ENCODED_LENGTH).
    #[error("binary multiaddr too long: {0} bytes")]
    TooLong(usize),
}
