//! The one error type of this crate, with its blame.

use std::io;

use plexus_core::{Blame, BoxError};
use plexus_identity::{DecodingError, PeerId};

/// Why reading, writing, verifying or requesting an identify message failed.
///
/// [`IdentifyError::blame`] says who is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentifyError {
    /// Reading or writing the stream failed (including a reset by the remote).
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The exchange did not finish within the configured timeout.
    #[error("identify timed out")]
    Timeout,
    /// The remote closed the stream without sending any message.
    #[error("stream closed before any identify message")]
    Empty,
    /// The remote closed the stream inside a message (in its length prefix or body).
    #[error("stream ended inside an identify message ({have} bytes of it received)")]
    Truncated {
        /// Bytes of the unfinished message that arrived.
        have: usize,
    },
    /// A length prefix is not a minimal unsigned varint of at most 10 bytes.
    #[error("invalid identify length prefix")]
    InvalidLengthPrefix,
    /// A message's length prefix announces more than [`crate::Limits::max_message_size`].
    #[error("identify message of {len} bytes exceeds the limit of {max}")]
    MessageTooLarge {
        /// The announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The remote sent more than [`crate::Limits::max_messages`] messages.
    #[error("more than {max} identify messages on one stream")]
    TooManyMessages {
        /// The limit.
        max: usize,
    },
    /// The stream carried more than [`crate::Limits::max_total_size`] bytes.
    #[error("identify stream exceeds {max} bytes in total")]
    TotalTooLarge {
        /// The limit.
        max: usize,
    },
    /// The merged messages carry more listen addresses or protocols than allowed.
    #[error("too many {what} in identify (limit {max})")]
    TooManyEntries {
        /// `"listen addresses"` or `"protocols"`.
        what: &'static str,
        /// The limit.
        max: usize,
    },
    /// The protobuf wire format is broken (truncated field, bad varint, group wire type).
    #[error("malformed identify protobuf: {0}")]
    Malformed(&'static str),
    /// prost rejected the message (invalid UTF-8, wrong wire type for a known field).
    #[error("undecodable identify message: {0}")]
    Decode(#[from] prost::DecodeError),
    /// The `publicKey` field does not decode as a supported public key.
    #[error("invalid public key in identify: {0}")]
    InvalidPublicKey(DecodingError),
    /// The `publicKey` field is a valid key of another peer than the authenticated one.
    #[error("identify public key belongs to {actual}, connection is authenticated as {expected}")]
    PublicKeyMismatch {
        /// The peer authenticated by the security handshake.
        expected: PeerId,
        /// The peer id of the key in the message.
        actual: PeerId,
    },
    /// Our own message does not fit in [`crate::MAX_SEND_SIZE`] even after trimming every
    /// list (an agent or protocol version string that is far too long).
    #[error("our identify message is {size} bytes after trimming (limit {max})")]
    LocalMessageTooLarge {
        /// Its encoded size after trimming.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// Opening a stream to the peer failed (not connected and not dialable, protocol not
    /// supported, connection closed). `blame` is the host's verdict.
    #[error("opening identify stream ({blame}): {source}")]
    Open {
        /// Who is to blame.
        blame: Blame,
        /// The host's error.
        #[source]
        source: BoxError,
    },
    /// The identify service has shut down.
    #[error("identify service stopped")]
    Stopped,
}

impl IdentifyError {
    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        match self {
            IdentifyError::Truncated { .. }
            | IdentifyError::InvalidLengthPrefix
            | IdentifyError::MessageTooLarge { .. }
            | IdentifyError::TooManyMessages { .. }
            | IdentifyError::TotalTooLarge { .. }
            | IdentifyError::TooManyEntries { .. }
            | IdentifyError::Malformed(_)
            | IdentifyError::Decode(_)
            | IdentifyError::InvalidPublicKey(_)
            | IdentifyError::PublicKeyMismatch { .. } => Blame::PeerMisbehaved,
            IdentifyError::Open { blame, .. } => *blame,
            // A clean close without a message is odd but not harmful (an overloaded peer may
            // refuse this way); I/O failures and timeouts are the network's or ours.
            IdentifyError::Io(_)
            | IdentifyError::Timeout
            | IdentifyError::Empty
            | IdentifyError::LocalMessageTooLarge { .. }
            | IdentifyError::Stopped => Blame::Local,
        }
    }
}
