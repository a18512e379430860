//! mplex (`/mplex/6.7.0`): a sans-IO connection [`Core`], run by the shared
//! muxer driver ([`plexus_mux`]), which keeps reading its socket except while
//! briefly blocked on a slow reader or while the resets we owe the remote are
//! at their cap.
//!
//! mplex is deprecated in libp2p (no flow control) but still required by the
//! Ethereum consensus spec on TCP; yamux is preferred in negotiation and mplex
//! offered for peers that need it.
//!
//! - [`frame`]: the varint frame prefix codec (pure encode/decode).
//! - [`Core`]: the whole protocol (streams keyed by number *and* opener, the
//!   Initiator/Receiver flags, half-close, reset, bounded buffers with
//!   block-then-reset on overflow, limits) as a deterministic state machine driven with
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
//! `max_buffer_per_connection`, `max_block` (5 s), `max_stream_send_buffer`,
//! `max_pending_control` (input pauses there), `control_stall_timeout`,
//! `close_timeout`, `write_buffer_size`,
//! `read_chunk_size`.
//!
//! # Decisions
//! - A slow reader stalls the connection briefly, then is reset (go-mplex's
//!   behaviour): a data frame that would take its stream's unread data over
//!   `max_buffer_per_stream` (or the connection's over
//!   `max_buffer_per_connection`) blocks input at that frame. The driver
//!   stops reading the socket (TCP flow control pushes back on the sender;
//!   the read buffer does not grow) but keeps writing and serving local
//!   operations. Once the application reads enough, input resumes and
//!   nothing is lost, so bulk transfers (BlocksByRange) survive a reader
//!   that lags. If it has not read within `max_block` (default 5 s, go-mplex's
//!   `ReceiveTimeout`), the stream is reset, its frame discarded, and input
//!   resumes: its reader sees the buffered bytes and then
//!   [`ResetReason::BufferOverflow`] (or
//!   [`ResetReason::ConnectionBufferFull`]). Resetting or dropping the
//!   blocked stream ends the block at once. **While blocked, no stream of the
//!   connection receives anything**: mplex carries all streams in one
//!   ordered byte stream without per-stream flow control, so this
//!   head-of-line blocking is inherent (bounded by `max_block`; prefer
//!   yamux). `max_block = 0` resets at once instead. rust-libp2p blocks
//!   without a deadline by default.
//! - Data after the remote's close resets just that stream
//!   ([`ResetReason::DataAfterClose`]). Writing after our own close is
//!   [`StreamError::WriteClosed`].
//! - Frames for untracked streams are ignored, except `*Receiver` frames for
//!   ids we never allocated ([`ConnError::UnknownStream`]); we never answer an
//!   unknown id with a reset. See [`Core`].
//! - A reset by the remote keeps already-received bytes readable (then the
//!   error); only our own reset drops them.
//! - Dropping a stream handle: see [`Core::detach`].
//! - The receiving application should keep up: an inbound stream buffers
//!   data before it is accepted (counted against both caps), so an
//!   application that accepts late stalls the whole connection, and finds
//!   the stream reset if it has not read within `max_block`. Accept and read
//!   in tasks of their own.
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
