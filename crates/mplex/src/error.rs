//! Connection and stream errors of the mplex core.

use std::io;
use std::time::Duration;

use plexus_core::{Blame, MuxError};

use crate::core::StreamId;
use crate::frame::FrameError;

/// The connection failed. Every variant says who is to blame
/// ([`ConnError::blame`]). mplex has no go-away: the transport is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// A frame prefix could not be decoded (flag 7, a varint too long or not
    /// minimal, a body over `max_frame_size`).
    #[error("bad frame: {0}")]
    Frame(#[from] FrameError),
    /// `NewStream` for an id the remote already has open.
    #[error("NewStream for stream {0}, which the remote already has open")]
    DuplicateStream(u64),
    /// A frame addressed to a stream *we* opened (a `*Receiver` flag) with an
    /// id we never allocated. Usually a peer that inverts the
    /// Initiator/Receiver flags.
    #[error("frame for our stream {0}, which we never opened")]
    UnknownStream(u64),
    /// The remote opened and reset more than `max_rapid_resets` streams within
    /// `reset_window` before we accepted them.
    #[error("rapid-reset flood: {count} streams opened and reset before accept within {window:?}")]
    RapidResetFlood {
        /// Resets counted within the window.
        count: usize,
        /// The window.
        window: Duration,
    },
    /// The remote made us owe `max_pending_control` resets and then read
    /// none of our output for `control_stall_timeout`.
    #[error("remote read nothing for {stalled:?} while owed {pending} control frames")]
    RemoteNotReading {
        /// Resets still owed.
        pending: usize,
        /// How long input was blocked.
        stalled: std::time::Duration,
    },
    /// The transport reached end-of-file before we closed the connection.
    /// mplex has no goodbye message, so this is how a remote's close looks.
    #[error("transport closed by remote")]
    TransportClosed,
    /// The transport failed.
    #[error("transport i/o error ({kind:?}): {message}")]
    Io {
        /// The I/O error kind.
        kind: io::ErrorKind,
        /// Its message.
        message: String,
    },
}

impl ConnError {
    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        match self {
            ConnError::Frame(_)
            | ConnError::DuplicateStream(_)
            | ConnError::UnknownStream(_)
            | ConnError::RapidResetFlood { .. }
            | ConnError::RemoteNotReading { .. } => Blame::PeerMisbehaved,
            ConnError::TransportClosed | ConnError::Io { .. } => Blame::Local,
        }
    }

    /// As the seam error `MuxError::Failed`.
    pub fn to_mux_error(&self) -> MuxError {
        MuxError::Failed {
            blame: self.blame(),
            source: Box::new(self.clone()),
        }
    }

    /// As an `io::Error` for stream handles.
    pub fn to_io_error(&self) -> io::Error {
        let kind = match self {
            ConnError::Io { kind, .. } => *kind,
            ConnError::TransportClosed => io::ErrorKind::UnexpectedEof,
            _ => io::ErrorKind::ConnectionAborted,
        };
        io::Error::new(kind, self.clone())
    }
}

/// Why a stream was reset. Readers see it as `StreamError::Reset(reason)`
/// (inside the `io::Error` of a [`crate::Stream`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResetReason {
    /// The remote reset the stream. Anything unread was dropped.
    #[error("reset by the remote")]
    Remote,
    /// The application reset it.
    #[error("reset locally")]
    Local,
    /// The remote sent more than `max_buffer_per_stream` bytes the
    /// application had not read (mplex has no flow control); the remote got a
    /// reset. Bytes buffered before are still read first.
    #[error("receive buffer of {limit} bytes overflowed")]
    BufferOverflow {
        /// The per-stream limit.
        limit: usize,
    },
    /// The connection's unread bytes would have exceeded
    /// `max_buffer_per_connection`; this stream's frame was the one that did
    /// not fit, so it was reset. Bytes buffered before are still read first.
    #[error("connection receive buffer of {limit} bytes full")]
    ConnectionBufferFull {
        /// The per-connection limit.
        limit: usize,
    },
    /// The remote sent data after closing its write side; the remote got a
    /// reset. Bytes buffered before are still read first.
    #[error("data after the remote's close")]
    DataAfterClose,
}

impl ResetReason {
    /// Who is to blame for the reset. Buffer limits are `Local`: without flow
    /// control an honest sender hits them whenever our reader is slow.
    pub fn blame(&self) -> Blame {
        match self {
            ResetReason::DataAfterClose => Blame::PeerMisbehaved,
            ResetReason::Remote
            | ResetReason::Local
            | ResetReason::BufferOverflow { .. }
            | ResetReason::ConnectionBufferFull { .. } => Blame::Local,
        }
    }
}

/// A stream operation did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// Nothing can be done now: no data to read, or no send-buffer room to
    /// write. Wait for `Event::Readable` / `Event::Writable`.
    #[error("would block")]
    Blocked,
    /// The id is not a stream the application holds (never opened, not yet
    /// accepted, or already detached).
    #[error("unknown stream {0}")]
    Unknown(StreamId),
    /// The stream was reset, for this reason.
    #[error("stream reset: {0}")]
    Reset(ResetReason),
    /// Writing after `finish`.
    #[error("write side already closed")]
    WriteClosed,
    /// The connection was closed locally.
    #[error("connection closed")]
    ConnectionClosed,
    /// The connection failed.
    #[error("connection failed: {0}")]
    Connection(ConnError),
}

impl StreamError {
    /// As an `io::Error` for stream handles; the `StreamError` is its source
    /// (downcast it to see a [`ResetReason`]).
    pub fn to_io_error(&self) -> io::Error {
        match self {
            StreamError::Blocked => io::ErrorKind::WouldBlock.into(),
            StreamError::Unknown(_) => io::Error::new(io::ErrorKind::NotConnected, self.clone()),
            StreamError::Reset(_) => io::Error::new(io::ErrorKind::ConnectionReset, self.clone()),
            StreamError::WriteClosed => io::Error::new(io::ErrorKind::BrokenPipe, self.clone()),
            StreamError::ConnectionClosed => {
                io::Error::new(io::ErrorKind::ConnectionAborted, self.clone())
            }
            StreamError::Connection(e) => e.to_io_error(),
        }
    }
}
