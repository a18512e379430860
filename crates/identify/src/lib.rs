//! Identify (`/ipfs/id/1.0.0`) and identify push (`/ipfs/id/push/1.0.0`).
//!
//! Two layers:
//!
//! - **Stream level** (no host needed): the [`Identify`] protobuf message,
//!   [`write_identify`] (one length-prefixed message under 4 KiB, trimmed if needed, then a
//!   half-close) and [`read_identify`] (merge up to [`Limits::max_messages`] length-prefixed
//!   messages until EOF, as go-libp2p may split its message in two). [`Decoder`] is the
//!   sans-IO core both readers share; [`decode_identify`] runs it over bytes in memory.
//!   [`PeerInfo`] is the decoded view, verified against the authenticated peer id.
//! - **Host service**: [`IdentifyService::spawn`] answers identify requests, accepts pushes,
//!   identifies every newly connected peer and keeps what it learned per peer.
#![forbid(unsafe_code)]

mod codec;
mod error;
mod info;
mod message;
mod service;

pub use codec::{Decoder, Limits, READ_CHUNK, decode_identify, read_identify, write_identify};
pub use error::IdentifyError;
pub use info::{PeerInfo, verify_public_key};
pub use message::{Identify, MAX_SEND_SIZE, Trimmed};
pub use service::{IdentifyConfig, IdentifyEvent, IdentifyHandle, IdentifyService};

/// The identify protocol id.
pub const PROTOCOL: &str = "/ipfs/id/1.0.0";
/// The identify push protocol id.
pub const PUSH_PROTOCOL: &str = "/ipfs/id/push/1.0.0";
