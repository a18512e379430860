//! yamux on the shared muxer driver ([`plexus_mux`]): the
//! [`plexus_mux::MuxCore`] glue for [`Core`] and the [`MuxerUpgrade`].
//!
//! The driver always keeps reading its socket, except while the core owes
//! the remote more control frames than [`Config::max_pending_control`]
//! (see [`Core::input_blocked`]).
//!
//! Dropping a [`Stream`] (see [`Core::detach`]): after `poll_shutdown`, or
//! once the remote finished and everything was read, the stream stays alive
//! inside the core until its queued data and FIN are sent and the remote
//! finishes too; input that still arrives is discarded with its credit
//! returned, so the remote never blocks on a reader that is gone. Otherwise
//! (the remote may still send, or data is unread) dropping resets the stream
//! (the remote sees RST, like a TCP close with unread data). Dropping the
//! [`Connection`] closes the connection politely (GoAway).

use plexus_core::{BoxIo, Io, MuxError, MuxLimits, MuxStats, MuxedConn, MuxerUpgrade, Role};
use plexus_mux::{DriverConfig, MuxCore, MuxEvent, StreamErrorKind};

use crate::config::Config;
use crate::core::{Core, Event, StreamId};
use crate::error::{ConnError, StreamError};

/// The multistream protocol id of yamux.
pub const PROTOCOL: &str = "/yamux/1.0.0";

/// A yamux connection handle ([`plexus_mux::Connection`] over [`Core`]):
/// opens and accepts streams; `with_core_mut(|c| c.go_away(code))` sends a
/// GoAway without closing.
pub type Connection = plexus_mux::Connection<Core>;

/// A yamux stream: `poll_shutdown` sends FIN (half-close);
/// [`plexus_core::MuxedStream::reset`] sends RST. Connection failures
/// surface as `io::Error` (kind `ConnectionAborted`, `TimedOut` or
/// `UnexpectedEof`, the source a [`ConnError`]); a reset as
/// `ConnectionReset`.
pub type Stream = plexus_mux::Stream<Core>;

/// yamux as a [`MuxerUpgrade`]: its own [`Config`] plus the shared
/// [`MuxLimits`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct YamuxConfig {
    /// yamux-specific settings.
    pub config: Config,
    /// The limits every muxer enforces.
    pub limits: MuxLimits,
}

impl YamuxConfig {
    /// A config from its parts.
    pub fn new(config: Config, limits: MuxLimits) -> YamuxConfig {
        YamuxConfig { config, limits }
    }

    /// Start yamux on `io`, spawning the driver task on the current tokio
    /// runtime. `role` is the connection role (the dialer is the
    /// [`Role::Initiator`] and opens odd stream ids).
    pub fn connect<T: Io>(&self, io: T, role: Role) -> Connection {
        let core = Core::new(role, self.config.clone(), self.limits.clone());
        let cfg = DriverConfig {
            write_buffer_size: self.config.write_buffer_size,
            read_chunk_size: self.config.read_chunk_size,
            close_timeout: self.config.close_timeout,
            flush_low_water: self.config.flush_low_water,
        };
        plexus_mux::spawn(core, io, cfg)
    }
}

impl MuxerUpgrade for YamuxConfig {
    fn protocol(&self) -> &'static str {
        PROTOCOL
    }

    fn start(&self, io: BoxIo, role: Role) -> Box<dyn MuxedConn> {
        Box::new(self.connect(io, role))
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
            Event::OpenReady => MuxEvent::OpenReady,
            Event::GoAway(_) => MuxEvent::GoAway,
            Event::Closed => MuxEvent::Closed,
        }
    }

    fn open(&mut self) -> Result<Option<StreamId>, MuxError> {
        match Core::open(self) {
            Ok(id) => Ok(Some(id)),
            Err(MuxError::LimitReached("ack backlog")) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn reset(&mut self, id: StreamId) {
        let _ = Core::reset(self, id);
    }

    fn stats(&self) -> MuxStats {
        MuxStats {
            open_streams: self.num_streams(),
            buffered_bytes: self.buffered_bytes(),
            pending_opens: self.ack_backlog(),
            pending_accepts: self.pending_accepts(),
        }
    }
}
