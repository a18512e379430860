//! The one error type of this crate, with its blame.

use std::io;

use plexus_core::{Blame, BoxError};

/// Why a ping failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PingError {
    /// Reading or writing the stream failed (including a reset by the remote).
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The echo did not arrive within the configured timeout.
    #[error("ping timed out")]
    Timeout,
    /// The echo differs from the payload we sent.
    #[error("ping echo does not match the payload")]
    Mismatch,
    /// The remote closed the stream before echoing the whole payload.
    #[error("stream closed after {received} of 32 echo bytes")]
    Closed {
        /// Echo bytes received.
        received: usize,
    },
    /// (Serving) the remote closed its side in the middle of a payload.
    #[error("stream ended inside a ping payload ({received} of 32 bytes)")]
    Truncated {
        /// Payload bytes received.
        received: usize,
    },
    /// Opening a stream to the peer failed. `blame` is the host's verdict.
    #[error("opening ping stream ({blame}): {source}")]
    Open {
        /// Who is to blame.
        blame: Blame,
        /// The host's error.
        #[source]
        source: BoxError,
    },
    /// The ping service has shut down.
    #[error("ping service stopped")]
    Stopped,
}

impl PingError {
    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        match self {
            PingError::Mismatch | PingError::Truncated { .. } => Blame::PeerMisbehaved,
            PingError::Open { blame, .. } => *blame,
            // A peer that closes its echo side may be shutting down or limiting its ping
            // streams: not worth a penalty.
            PingError::Io(_)
            | PingError::Timeout
            | PingError::Closed { .. }
            | PingError::Stopped => Blame::Local,
        }
    }
}
