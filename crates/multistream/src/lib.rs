//! multistream-select 1.0 (`/multistream/1.0.0`): agreeing on the protocol
//! of a connection or stream.
//!
//! - [`Message`]: the sans-IO message codec (`uvarint(len) ‖ msg ‖ '\n'`).
//! - [`DialerSelect`] and [`ListenerSelect`]: sans-IO state machines, bytes in
//!   and bytes out, no IO and no clock.
//! - [`dialer_select`], [`dialer_select_lazy`] and [`listener_select`]: async
//!   glue over any tokio byte stream, returning a [`Negotiated`] stream.
//!
//! Timeouts are the caller's business (the upgrader wraps these calls).
//!
//! # Decisions
//! - Protocol ids must start with `/` and contain no `\n`; anything else is an
//!   invalid message ([`DecodeError::InvalidProtocolId`], blame
//!   `PeerMisbehaved`). Every libp2p and Ethereum protocol id has this form.
//! - An EOF before agreement ([`NegotiationError::UnexpectedEof`]) is blamed
//!   `Local`: the peer may have crashed, timed out, or given up after `na`,
//!   none of which is worth a penalty.
//! - `ls` is answered (some implementations answer `na` instead) with as many
//!   of our protocols as fit into one message within our limits; every `ls`
//!   counts against [`Config::max_rejections`] like a rejected proposal.
//! - A first message that is a different `/multistream/…` version is
//!   [`NegotiationError::UnsupportedVersion`] (`PeerIncompatible`); any other
//!   wrong first message is `PeerMisbehaved`.
#![forbid(unsafe_code)]

mod error;
mod message;
mod negotiated;
mod select;

pub use error::NegotiationError;
pub use message::{DecodeError, HEADER, Message};
pub use negotiated::{Negotiated, dialer_select, dialer_select_lazy, listener_select};
pub use select::{DialerSelect, ListenerSelect, Progress};

/// Default for [`Config::max_message_len`]: 1024 bytes, go-multistream's limit.
pub const MAX_MESSAGE_LEN: usize = 1024;
/// Default for [`Config::max_rejections`].
pub const MAX_REJECTIONS: usize = 16;
/// Default for [`Config::max_ls_protocols`].
pub const MAX_LS_PROTOCOLS: usize = 128;
/// Most bytes read from the socket at once during a negotiation. The read
/// buffer never exceeds `max_message_len + 9 + READ_CHUNK` bytes.
pub const READ_CHUNK: usize = 256;

/// Limits of one negotiation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest accepted length prefix (it counts the trailing `\n`). A peer
    /// announcing more is rejected at once, before the body is read.
    /// Default [`MAX_MESSAGE_LEN`] (1024), as go-multistream; our own protocol
    /// ids must fit too.
    pub max_message_len: usize,
    /// How many proposals (and `ls` requests) a listener answers without
    /// agreement; one more fails with
    /// [`NegotiationError::TooManyRejections`]. Default [`MAX_REJECTIONS`]
    /// (16): honest dialers propose a handful of versions of one protocol.
    pub max_rejections: usize,
    /// Most protocol ids accepted in one `ls` response, and sent in ours.
    /// Default [`MAX_LS_PROTOCOLS`] (128): a beacon node speaks a few dozen.
    pub max_ls_protocols: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_message_len: MAX_MESSAGE_LEN,
            max_rejections: MAX_REJECTIONS,
            max_ls_protocols: MAX_LS_PROTOCOLS,
        }
    }
}
