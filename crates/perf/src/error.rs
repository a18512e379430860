//! The one error type of this crate, with its blame.

use std::io;

use plexus_core::{Blame, BoxError};

/// Why a perf run (client or server side) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PerfError {
    /// Reading or writing the stream failed (including a reset: how a server refuses).
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// (Server) the stream ended before the 8-byte request header.
    #[error("stream ended after {received} of 8 header bytes")]
    MissingHeader {
        /// Header bytes received.
        received: usize,
    },
    /// (Server) the client asked for more bytes than we are willing to send.
    #[error("client requested {requested} bytes, the limit is {max}")]
    RequestTooLarge {
        /// The request.
        requested: u64,
        /// Our limit.
        max: u64,
    },
    /// (Client) the server closed the stream before sending what we asked for.
    #[error("server sent {received} of {expected} bytes")]
    ShortDownload {
        /// Bytes asked for.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// (Client) the server sent more than we asked for.
    #[error("server sent more than the {expected} bytes asked for")]
    TooMuchData {
        /// Bytes asked for.
        expected: u64,
    },
    /// Opening a stream to the peer failed. `blame` is the host's verdict.
    #[error("opening perf stream ({blame}): {source}")]
    Open {
        /// Who is to blame.
        blame: Blame,
        /// The host's error.
        #[source]
        source: BoxError,
    },
}

impl PerfError {
    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        match self {
            PerfError::MissingHeader { .. }
            | PerfError::ShortDownload { .. }
            | PerfError::TooMuchData { .. } => Blame::PeerMisbehaved,
            PerfError::Open { blame, .. } => *blame,
            // Any request size is valid in the protocol; refusing it is our limit.
            PerfError::Io(_) | PerfError::RequestTooLarge { .. } => Blame::Local,
        }
    }
}
