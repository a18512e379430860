//! mplex (`/mplex/6.7.0`): a sans-IO connection [`Core`] plus a tokio driver
//! that always keeps reading its socket.
//!
//! mplex is deprecated in libp2p (no flow control) but still required by the
//! Ethereum consensus spec on TCP; yamux is preferred in negotiation and mplex
//! offered for peers that need it.
//!
//! - [`frame`]: the varint frame prefix codec (pure encode/decode).
//! - [`Core`]: the whole protocol (streams keyed by number *and* opener, the
//!   Initiator/Receiver flags, half-close, reset, bounded buffers with
//!   reset-on-overflow, limits) as a deterministic state machine driven with
//!   bytes and `now`. See its module docs for the overflow policy and how
//!   unknown stream ids are treated.
//! - [`MplexConfig`]: the [`plexus_core::MuxerUpgrade`]; it spawns one driver
//!   task per connection and hands out a [`Connection`]
//!   ([`plexus_core::MuxedConn`]) whose streams are [`Stream`]s
//!   ([`plexus_core::MuxedStream`]).
//!
//! # Limits
//! From [`plexus_core::MuxLimits`]: `max_streams` (remote `NewStream`s beyond
//! it are reset, the connection carries on; local opens fail with
//! `LimitReached`), `max_accept_backlog` (excess inbound streams are reset),
//! `max_rapid_resets` within `reset_window` (streams the remote opens and
//! resets before we accepted them; beyond it [`ConnError::RapidResetFlood`]).
//! `max_ack_backlog` does not apply (no acknowledgements). From [`Config`]:
//! `max_frame_size` (1 MiB), `max_send_frame`, `max_buffer_per_stream`,
//! `max_buffer_per_connection`, `max_stream_send_buffer`,
//! `max_pending_control`, `close_timeout`, `write_buffer_size`,
//! `read_chunk_size`.
//!
//! # Decisions
//! - A slow reader never stalls the connection: a stream whose unread data
//!   would exceed its cap (or the connection's) is reset, and its reader sees
//!   the buffered bytes and then [`ResetReason::BufferOverflow`] (or
//!   [`ResetReason::ConnectionBufferFull`]). go-mplex blocks the connection
//!   for up to 5 s first; rust-libp2p blocks by default.
//! - Data after the remote's close resets just that stream
//!   ([`ResetReason::DataAfterClose`]). Writing after our own close is
//!   [`StreamError::WriteClosed`].
//! - Frames for untracked streams are ignored, except `*Receiver` frames for
//!   ids we never allocated ([`ConnError::UnknownStream`]); we never answer an
//!   unknown id with a reset. See [`Core`].
//! - A reset by the remote keeps already-received bytes readable (then the
//!   error); only our own reset drops them.
//! - Dropping a stream handle: see [`Core::detach`].
//! - The receiving application must keep up: an inbound stream buffers data
//!   before it is accepted (counted against both caps), so an application
//!   that accepts late, or reads from a task the runtime does not schedule
//!   while `max_buffer_per_stream` bytes arrive, finds the stream reset.
//!   Accept and read in tasks of their own.
//! - A stream handle's `poll_write` yields once to the runtime after every
//!   `max_stream_send_buffer` bytes it accepted in a row, so a task that
//!   writes and reads (`join!`) also gets to read.
#![forbid(unsafe_code)]

mod config;
mod core;
mod driver;
mod error;
pub mod frame;

pub use crate::config::Config;
pub use crate::core::{Core, Event, StreamId};
pub use crate::driver::{Connection, MplexConfig, PROTOCOL, Stream};
pub use crate::error::{ConnError, ResetReason, StreamError};
