//! mplex on the shared muxer driver ([`plexus_mux`]): the
//! [`plexus_mux::MuxCore`] glue for [`Core`] and the [`MuxerUpgrade`].
//!
//! The driver keeps reading its socket except while the core is
//! input-blocked ([`Core::input_blocked`]): a data frame does not fit a slow
//! stream's receive buffer (for at most [`Config::max_block`], then that
//! stream is reset), or the control frames we owe the remote reached
//! [`Config::max_pending_control`]. While blocked every stream waits
//! (inherent to mplex, which has no flow control of its own); writing and
//! local operations go on.
//!
//! Dropping a [`Stream`] (see [`Core::detach`]): after `poll_shutdown`, or
//! once the remote closed and everything was read, the stream stays alive
//! inside the core until its queued data and close are sent and the remote
//! closes too; input that still arrives is discarded. Otherwise (the remote
//! may still send, or data is unread) dropping resets the stream (like a TCP
//! close with unread data). Dropping the [`Connection`] closes the
//! connection politely.

use plexus_core::{BoxIo, Io, MuxError, MuxLimits, MuxStats, MuxedConn, MuxerUpgrade, Role};
use plexus_mux::{DriverConfig, MuxCore, MuxEvent, StreamErrorKind};

use crate::config::Config;
use crate::core::{Core, Event, StreamId};
use crate::error::{ConnError, StreamError};

/// The multistream protocol id of mplex (from the Ethereum consensus spec
/// and the libp2p inlined-muxer-negotiation spec; the mplex spec names none).
pub const PROTOCOL: &str = "/mplex/6.7.0";

/// An mplex connection handle ([`plexus_mux::Connection`] over [`Core`]).
/// Opening a stream never waits: mplex has no acknowledgements; the stream
/// cap is an immediate `LimitReached`.
pub type Connection = plexus_mux::Connection<Core>;

/// An mplex stream: `poll_shutdown` sends a close (half-close);
/// [`plexus_core::MuxedStream::reset`] sends a reset. Connection failures
/// surface as `io::Error` (kind `ConnectionAborted` or `UnexpectedEof`, the
/// source a [`ConnError`]); a reset as `ConnectionReset` whose source is a
/// [`StreamError::Reset`] naming the [`crate::ResetReason`]. Its
/// `poll_write` yields once to the runtime after every
/// [`Config::max_stream_send_buffer`] bytes accepted in a row.
pub type Stream = plexus_mux::Stream<Core>;

/// mplex as a [`MuxerUpgrade`]: its own [`Config`] plus the shared
/// [`MuxLimits`] (`max_ack_backlog` is unused: mplex has no acknowledgements).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MplexConfig {
    /// mplex-specific settings.
    pub config: Config,
    /// The limits every muxer enforces.
    pub limits: MuxLimits,
}

impl MplexConfig {
    /// A config from its parts.
    pub fn new(config: Config, limits: MuxLimits) -> MplexConfig {
        MplexConfig { config, limits }
    }

    /// Start mplex on `io`, spawning the driver task on the current tokio
    /// runtime. mplex is symmetric, so no role is needed.
    pub fn connect<T: Io>(&self, io: T) -> Connection {
        let core = Core::new(self.config.clone(), self.limits.clone());
        let cfg = DriverConfig {
            write_buffer_size: self.config.write_buffer_size,
            read_chunk_size: self.config.read_chunk_size,
            close_timeout: self.config.close_timeout,
            flush_low_water: self.config.flush_low_water,
        };
        plexus_mux::spawn(core, io, cfg)
    }
}

impl MuxerUpgrade for MplexConfig {
    fn protocol(&self) -> &'static str {
        PROTOCOL
    }

    fn start(&self, io: BoxIo, _role: Role) -> Box<dyn MuxedConn> {
        Box::new(self.connect(io))
    }
}

impl StreamErrorKind for StreamError {
    fn is_blocked(&self) -> bool {
        matches!(self, StreamError::Blocked)
    }

    fn to_io_error(&self) -> std::io::Error {
        StreamError::to_io_error(self)
    }
}

impl MuxCore for Core {
    type StreamId = StreamId;
    type Event = Event;
    type StreamError = StreamError;
    type InputError = ConnError;

    plexus_mux::forward_to_inherent!();

    fn classify(event: &Event) -> MuxEvent<StreamId> {
        match *event {
            Event::InboundStream(_) => MuxEvent::InboundStream,
            Event::Readable(id) => MuxEvent::Readable(id),
            Event::Writable(id) => MuxEvent::Writable(id),
            Event::Reset(id) => MuxEvent::Reset(id),
            Event::Closed => MuxEvent::Closed,
        }
    }

    fn open(&mut self) -> Result<Option<StreamId>, MuxError> {
        Core::open(self).map(Some)
    }

    fn reset(&mut self, id: StreamId) {
        let _ = Core::reset(self, id);
    }

    fn stats(&self) -> MuxStats {
        MuxStats {
            open_streams: self.num_streams(),
            buffered_bytes: self.buffered_bytes(),
            pending_opens: 0,
            pending_accepts: self.pending_accepts(),
        }
    }

    fn write_quota(&self) -> Option<usize> {
        Some(self.config().max_stream_send_buffer)
    }
}
