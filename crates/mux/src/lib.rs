//! The muxer seam: [`MuxCore`], the small sans-IO surface every stream
//! multiplexer core offers (yamux, mplex), and the one tokio driver that runs
//! any of them ([`spawn`], [`Connection`], [`Stream`]).
//!
//! A core takes bytes and `now` in and gives frames, events and its next
//! timeout out; it never touches a socket or a clock. The driver owns the
//! socket and the timer and shares the core (behind a std mutex, never held
//! across an await or an I/O call) with the connection and stream handles,
//! which call the core directly. See [`driver`] for the loop.
//!
//! The muxer conformance suite (`plexus-testkit`) and its virtual-time pair
//! harness run against this trait, so a fix to the driver or the harness
//! reaches every muxer at once.
#![forbid(unsafe_code)]

pub mod driver;

use std::fmt;
use std::hash::Hash;
use std::io;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use plexus_core::{MuxError, MuxStats};

pub use crate::driver::{Connection, Stream, spawn};

/// What a core's event means to the driver: which waiters to wake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MuxEvent<Id> {
    /// An inbound stream is waiting for [`MuxCore::accept`].
    InboundStream,
    /// The stream has data (or end-of-file, or an error) to read.
    Readable(Id),
    /// The stream can take more data.
    Writable(Id),
    /// The stream was reset.
    Reset(Id),
    /// A local open that had to wait may now succeed.
    OpenReady,
    /// The remote will accept no new streams (opens fail from now on).
    GoAway,
    /// The connection is over (an error, or a clean close); every waiter
    /// should look again.
    Closed,
}

/// A stream-level error of a core: either "wait" or a real error.
pub trait StreamErrorKind: fmt::Debug {
    /// Nothing can be done now: wait for `Readable` / `Writable`.
    fn is_blocked(&self) -> bool;
    /// As an `io::Error` for stream handles.
    fn to_io_error(&self) -> io::Error;
}

/// The sans-IO surface of a stream multiplexer's connection core.
///
/// Every method is cheap and non-blocking; the core is deterministic given
/// its inputs. The driver calls them in the order described in [`driver`].
pub trait MuxCore: Send + 'static {
    /// A stream's id.
    type StreamId: Copy + Eq + Hash + fmt::Debug + Send + Sync + Unpin + 'static;
    /// The core's own event type (tests compare these directly).
    type Event: fmt::Debug + Clone + PartialEq;
    /// A stream operation's error.
    type StreamError: StreamErrorKind;
    /// Why input was rejected (the connection failed).
    type InputError: fmt::Display;

    /// Consume complete frames from `src`, leaving a partial frame (or, while
    /// [`MuxCore::input_blocked`], everything not yet consumed) in it.
    fn handle_input(&mut self, now: Instant, src: &mut BytesMut) -> Result<(), Self::InputError>;
    /// The transport ended (end-of-file when `error` is `None`).
    fn handle_transport_closed(&mut self, error: Option<io::Error>);
    /// Whether the core wants no more input now: what it was given stays in
    /// the input buffer and the driver stops reading the transport (TCP flow
    /// control then pushes back on the remote) until this turns false.
    fn input_blocked(&self) -> bool {
        false
    }
    /// Append frames to `dst`, at most `budget` bytes. Returns whether any
    /// were appended.
    fn poll_transmit(&mut self, now: Instant, dst: &mut BytesMut, budget: usize) -> bool;
    /// Whether [`MuxCore::poll_transmit`] has something to send.
    fn wants_transmit(&self) -> bool;
    /// The next event, if any.
    fn poll_event(&mut self) -> Option<Self::Event>;
    /// What an event means to the driver.
    fn classify(event: &Self::Event) -> MuxEvent<Self::StreamId>;
    /// When [`MuxCore::handle_timeout`] is next due.
    fn poll_timeout(&self) -> Option<Instant>;
    /// Run due timers.
    fn handle_timeout(&mut self, now: Instant);

    /// Open an outbound stream: `Ok(None)` means wait for
    /// [`MuxEvent::OpenReady`] (e.g. yamux's ACK backlog is full).
    fn open(&mut self) -> Result<Option<Self::StreamId>, MuxError>;
    /// The next inbound stream, if one is waiting.
    fn accept(&mut self) -> Option<Self::StreamId>;
    /// Why no inbound stream will ever come, if so.
    fn accept_error(&self) -> Option<MuxError>;
    /// Read buffered bytes of `id`; `Ok(0)` is end-of-file.
    fn read(&mut self, id: Self::StreamId, buf: &mut [u8]) -> Result<usize, Self::StreamError>;
    /// Bytes buffered for `id` that a `read` could return now. The driver initializes only
    /// that much of the reader's buffer: a reader offering 64 KiB of fresh spare capacity
    /// for a 200-byte frame must not pay for zeroing 64 KiB.
    fn readable(&self, id: Self::StreamId) -> usize;
    /// Queue bytes on `id`; returns how many were taken.
    fn write(&mut self, id: Self::StreamId, data: &[u8]) -> Result<usize, Self::StreamError>;
    /// Bytes written to `id` that [`MuxCore::poll_transmit`] has not taken yet (0 for an
    /// unknown or reset stream). A stream handle's `poll_flush` waits on it. The default
    /// (always 0) makes a flush wait only for the driver's write batch.
    fn unsent(&self, id: Self::StreamId) -> usize {
        let _ = id;
        0
    }
    /// Half-close `id` after its queued data.
    fn finish(&mut self, id: Self::StreamId) -> Result<(), Self::StreamError>;
    /// Reset `id`.
    fn reset(&mut self, id: Self::StreamId);
    /// The application let go of `id` (its handle was dropped).
    fn detach(&mut self, id: Self::StreamId);
    /// Close the connection politely.
    fn close(&mut self);
    /// Whether the connection is fully closed (nothing more to send).
    fn is_closed(&self) -> bool;
    /// Whether a close has begun (or is over).
    fn is_closing(&self) -> bool;
    /// The per-connection counters.
    fn stats(&self) -> MuxStats;
    /// Bytes a stream handle's `poll_write` accepts in a row before it
    /// yields once to the runtime (`None`: never). A muxer without flow
    /// control sets this so a task that writes and reads also gets to read.
    fn write_quota(&self) -> Option<usize> {
        None
    }
    /// Panics if an internal invariant is broken. For tests, fuzzing and the
    /// virtual-time pair harness; never called by the driver.
    fn check_invariants(&self) {}
}

/// Inside `impl MuxCore for Core { … }`: the methods whose core has an
/// inherent method of the same name and signature, forwarded to it (inherent
/// methods take precedence in `Self::name` paths). The caller writes the
/// associated types and the rest (`classify`, `open`, `reset`, `stats`, and
/// any defaults it overrides).
///
/// A core that lacks one of the inherent methods would make the forwarder
/// call itself; `plexus_testkit::pair::exercise_every_method` calls each
/// once, so a muxer's tests catch that as a stack overflow.
#[macro_export]
macro_rules! forward_to_inherent {
    () => {
        fn handle_input(
            &mut self,
            now: ::std::time::Instant,
            src: &mut $crate::__private::BytesMut,
        ) -> ::std::result::Result<(), Self::InputError> {
            Self::handle_input(self, now, src)
        }
        fn handle_transport_closed(&mut self, error: ::std::option::Option<::std::io::Error>) {
            Self::handle_transport_closed(self, error)
        }
        fn poll_transmit(
            &mut self,
            now: ::std::time::Instant,
            dst: &mut $crate::__private::BytesMut,
            budget: usize,
        ) -> bool {
            Self::poll_transmit(self, now, dst, budget)
        }
        fn wants_transmit(&self) -> bool {
            Self::wants_transmit(self)
        }
        fn input_blocked(&self) -> bool {
            Self::input_blocked(self)
        }
        fn poll_event(&mut self) -> ::std::option::Option<Self::Event> {
            Self::poll_event(self)
        }
        fn poll_timeout(&self) -> ::std::option::Option<::std::time::Instant> {
            Self::poll_timeout(self)
        }
        fn handle_timeout(&mut self, now: ::std::time::Instant) {
            Self::handle_timeout(self, now)
        }
        fn accept(&mut self) -> ::std::option::Option<Self::StreamId> {
            Self::accept(self)
        }
        fn accept_error(&self) -> ::std::option::Option<$crate::__private::MuxError> {
            Self::accept_error(self)
        }
        fn read(
            &mut self,
            id: Self::StreamId,
            buf: &mut [u8],
        ) -> ::std::result::Result<usize, Self::StreamError> {
            Self::read(self, id, buf)
        }
        fn readable(&self, id: Self::StreamId) -> usize {
            Self::readable(self, id)
        }
        fn unsent(&self, id: Self::StreamId) -> usize {
            Self::unsent(self, id)
        }
        fn write(
            &mut self,
            id: Self::StreamId,
            data: &[u8],
        ) -> ::std::result::Result<usize, Self::StreamError> {
            Self::write(self, id, data)
        }
        fn finish(&mut self, id: Self::StreamId) -> ::std::result::Result<(), Self::StreamError> {
            Self::finish(self, id)
        }
        fn detach(&mut self, id: Self::StreamId) {
            Self::detach(self, id)
        }
        fn close(&mut self) {
            Self::close(self)
        }
        fn is_closed(&self) -> bool {
            Self::is_closed(self)
        }
        fn is_closing(&self) -> bool {
            Self::is_closing(self)
        }
        fn check_invariants(&self) {
            Self::check_invariants(self)
        }
    };
}

/// Re-exports for [`forward_to_inherent!`]; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use bytes::BytesMut;
    pub use plexus_core::MuxError;
}

/// The driver's own settings, taken from a muxer's config.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DriverConfig {
    /// Most bytes gathered for one batch of writes to the transport.
    pub write_buffer_size: usize,
    /// Bytes asked of the transport per read.
    pub read_chunk_size: usize,
    /// How long a closing connection may take to flush and shut down.
    pub close_timeout: Duration,
    /// A stream handle's `poll_flush` returns once at most this many bytes written before
    /// it are still in the muxer (not yet written to the transport). A small write then
    /// flushes at once on a quiet connection; a large one waits until it is (nearly) on
    /// the wire, so a writer that hands out one large message at a time really has one in
    /// flight.
    pub flush_low_water: usize,
}
