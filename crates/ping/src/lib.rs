//! libp2p ping (`/ipfs/ping/1.0.0`) with the last round-trip time kept per peer.
//!
//! Two layers:
//!
//! - **Stream level** (no host needed): [`ping`] writes 32 random bytes and times their echo
//!   (loopable on one stream); [`serve`] echoes whole payloads until the remote half-closes.
//! - **Host service**: [`PingService::spawn`] serves the protocol (at most two inbound ping
//!   streams per peer, as the spec recommends), pings on demand or on an interval over one
//!   outbound stream per peer, and records the last RTT per peer.
#![forbid(unsafe_code)]

mod error;
mod protocol;
mod service;

pub use error::PingError;
pub use protocol::{PAYLOAD_LEN, ping, ping_with, serve, serve_idle};
pub use service::{PingConfig, PingHandle, PingService};

/// The ping protocol id.
pub const PROTOCOL: &str = "/ipfs/ping/1.0.0";
