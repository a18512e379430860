//! yamux (`/yamux/1.0.0`): a sans-IO connection [`Core`], run by the shared
//! muxer driver ([`plexus_mux`]), which keeps reading its socket except while
//! the control frames we owe the remote are at their cap.
//!
//! - [`frame`]: the 12-byte header codec (pure encode/decode).
//! - [`Core`]: the whole protocol (streams, windows with auto-tuning, ACK
//!   backlog, limits, keep-alive) as a deterministic state machine driven with
//!   bytes and `now`. See its module docs for flow control, auto-tuning and how
//!   unknown stream ids are treated.
//! - [`YamuxConfig`]: the [`plexus_core::MuxerUpgrade`]; it spawns one
//!   [`plexus_mux`] driver task per connection and hands out a [`Connection`]
//!   ([`plexus_core::MuxedConn`]) whose streams are [`Stream`]s
//!   ([`plexus_core::MuxedStream`]).
//!
//! # Limits
//! From [`plexus_core::MuxLimits`]: `max_streams` (remote SYNs beyond it get
//! RST, local opens fail with `LimitReached`), `max_accept_backlog` (excess
//! inbound streams get RST), `max_ack_backlog` (local opens wait),
//! `max_rapid_resets` within `reset_window` (streams the remote opens and
//! resets before we accepted them; beyond it: GoAway(protocol error) and
//! [`ConnError::RapidResetFlood`]). From [`Config`]: `max_window`,
//! `max_connection_window`, `max_frame_size`, `max_stream_send_buffer`,
//! `keepalive_interval`, `ping_timeout`, `max_pending_control` (at which
//! input pauses until the owed control frames went out),
//! `control_stall_timeout`,
//! `close_timeout`, `write_buffer_size`, `read_chunk_size`.
//!
//! # Decisions
//! - Unknown stream ids: frames for ids that existed in this session but are
//!   no longer tracked (closed, reset, refused) are ignored and their payload
//!   discarded as it streams in; frames for ids that never existed are a
//!   connection error ([`ConnError::UnknownStream`]). See [`Core`].
//! - GoAway received: our opens fail with `MuxError::GoAway`; existing streams
//!   carry on; SYNs the remote still sends are accepted (as go-yamux does: the
//!   go-away only promises the sender will accept nothing new). GoAway sent:
//!   remote SYNs get RST. A transport closing after a go-away (either way) is
//!   a normal end, not an error.
//! - Data after the remote's FIN resets just that stream.
//! - ACKs are sent when the application accepts a stream, so the remote's
//!   ACK backlog tracks our acceptance (back-pressure on stream opening).
//! - Dropping a stream handle: see [`Core::detach`].
#![forbid(unsafe_code)]

mod config;
mod core;
mod driver;
mod error;
pub mod frame;

pub use crate::config::{Config, INITIAL_WINDOW};
pub use crate::core::{
    Core, Event, GO_AWAY_INTERNAL_ERROR, GO_AWAY_NORMAL, GO_AWAY_PROTOCOL_ERROR, StreamId,
};
pub use crate::driver::{Connection, PROTOCOL, Stream, YamuxConfig};
pub use crate::error::{ConnError, StreamError};
