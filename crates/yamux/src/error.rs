//! Connection and stream errors of the yamux core.

use std::io;
use std::time::Duration;

use plexus_core::{Blame, MuxError};

use crate::frame::FrameError;

/// The connection failed. Every variant says who is to blame
/// ([`ConnError::blame`]); a peer-caused error makes the core send
/// `GoAway(protocol error)` before closing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnError {
    /// A frame header could not be decoded (bad version, type or flag bits).
    #[error("bad frame header: {0}")]
    Frame(#[from] FrameError),
    /// A frame is malformed in context (Data/WindowUpdate on stream 0, SYN and
    /// ACK together, a ping with neither or both of SYN and ACK).
    #[error("invalid frame: {0}")]
    InvalidFrame(&'static str),
    /// A SYN for a stream id the remote may not open: our parity, or not above
    /// every id it opened before (ids are never reused).
    #[error("SYN for invalid stream id {0}")]
    InvalidStreamId(u32),
    /// A frame for a stream id that never existed in this session (an id of
    /// ours we never allocated, or a remote id above its highest SYN).
    #[error("frame for never-opened stream {0}")]
    UnknownStream(u32),
    /// The remote sent more data than the window we granted.
    #[error("stream {stream}: {len} bytes of data with only {window} bytes of window")]
    WindowExceeded {
        /// The stream.
        stream: u32,
        /// The data frame's length.
        len: u32,
        /// The window left when it arrived.
        window: u32,
    },
    /// A window update pushed our send window past `u32::MAX`.
    #[error("stream {0}: window update overflows the send window")]
    WindowOverflow(u32),
    /// The remote opened and reset more than `max_rapid_resets` streams within
    /// `reset_window` before we accepted them.
    #[error("rapid-reset flood: {count} streams opened and reset before accept within {window:?}")]
    RapidResetFlood {
        /// Resets counted within the window.
        count: usize,
        /// The window.
        window: Duration,
    },
    /// The remote made us owe `max_pending_control` ping answers and resets
    /// and then read none of our output for `control_stall_timeout`.
    #[error("remote read nothing for {stalled:?} while owed {pending} control frames")]
    RemoteNotReading {
        /// Control frames still owed.
        pending: usize,
        /// How long input was blocked.
        stalled: Duration,
    },
    /// A ping was not answered within `ping_timeout`.
    #[error("ping not answered within {0:?}")]
    PingTimeout(Duration),
    /// The transport reached end-of-file (the remote closed it).
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
            ConnError::Frame(FrameError::Version(_)) => Blame::PeerIncompatible,
            ConnError::Frame(_)
            | ConnError::InvalidFrame(_)
            | ConnError::InvalidStreamId(_)
            | ConnError::UnknownStream(_)
            | ConnError::WindowExceeded { .. }
            | ConnError::WindowOverflow(_)
            | ConnError::RapidResetFlood { .. }
            | ConnError::RemoteNotReading { .. } => Blame::PeerMisbehaved,
            ConnError::PingTimeout(_) | ConnError::TransportClosed | ConnError::Io { .. } => {
                Blame::Local
            }
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
            ConnError::PingTimeout(_) => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::ConnectionAborted,
        };
        io::Error::new(kind, self.clone())
    }
}

/// A stream operation did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// Nothing can be done now: no data to read, or no window / send buffer
    /// room to write. Wait for `Event::Readable` / `Event::Writable`.
    #[error("would block")]
    Blocked,
    /// The id is not a stream the application holds (never opened, not yet
    /// accepted, or already detached).
    #[error("unknown stream {0}")]
    Unknown(u32),
    /// The stream was reset (by either side).
    #[error("stream reset")]
    Reset,
    /// Writing after `finish`.
    #[error("write side already closed")]
    WriteClosed,
    /// The connection was closed locally or by a go-away handshake.
    #[error("connection closed")]
    ConnectionClosed,
    /// The connection failed.
    #[error("connection failed: {0}")]
    Connection(ConnError),
}

impl StreamError {
    /// As an `io::Error` for stream handles.
    pub fn to_io_error(&self) -> io::Error {
        match self {
            StreamError::Blocked => io::ErrorKind::WouldBlock.into(),
            StreamError::Unknown(_) => io::Error::new(io::ErrorKind::NotConnected, self.clone()),
            StreamError::Reset => io::Error::new(io::ErrorKind::ConnectionReset, self.clone()),
            StreamError::WriteClosed => io::Error::new(io::ErrorKind::BrokenPipe, self.clone()),
            StreamError::ConnectionClosed => {
                io::Error::new(io::ErrorKind::ConnectionAborted, self.clone())
            }
            StreamError::Connection(e) => e.to_io_error(),
        }
    }
}
