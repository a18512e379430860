//! The one limits config of the connection layers. Every bound a remote peer
//! could push against is a named field here (or in a protocol's own config,
//! which documents it), with a safe default. `docs/ARCHITECTURE.md` lists each
//! default and why.

use std::time::Duration;

/// Limits of connection establishment and of every multiplexed connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest time a single multistream-select negotiation may take (security
    /// protocol, muxer). Default 10 s.
    pub negotiation_timeout: Duration,
    /// Longest time the security handshake may take. Default 10 s.
    pub security_timeout: Duration,
    /// Longest time an inbound connection may take to deliver a complete, valid multistream
    /// header (`/multistream/1.0.0`), counted from the start of the upgrade. A real dialer
    /// sends it with its first write; a silent or trickling connection is closed at this
    /// deadline instead of holding a pending slot for the whole negotiation timeout.
    /// Default 2 s.
    pub inbound_header_timeout: Duration,
    /// Longest wait for the remote's next security-handshake message, counted from our last
    /// write of that handshake (or its start): a handshake stalling between messages is
    /// closed. [`Limits::security_timeout`] still bounds the whole handshake. Default 5 s.
    pub handshake_message_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            negotiation_timeout: Duration::from_secs(10),
            security_timeout: Duration::from_secs(10),
            inbound_header_timeout: Duration::from_secs(2),
            handshake_message_timeout: Duration::from_secs(5),
        }
    }
}

/// Per-connection bounds every muxer enforces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MuxLimits {
    /// Most streams open at once on one connection, both directions together.
    /// A remote opening more gets its new stream reset. Default 512.
    pub max_streams: usize,
    /// Most inbound streams waiting for the application to accept them. Beyond
    /// this, new inbound streams are reset. Default 256.
    pub max_accept_backlog: usize,
    /// Most outbound streams the remote has not yet acknowledged; opening more
    /// waits. Default 256 (the libp2p yamux spec's recommendation).
    pub max_ack_backlog: usize,
    /// Most inbound streams the remote may open and then reset before we
    /// accepted them, within [`MuxLimits::reset_window`]. Beyond this the
    /// connection is closed with a protocol error (rapid-reset flood).
    /// Default 256.
    pub max_rapid_resets: usize,
    /// The window over which rapid resets are counted. Default 10 s.
    pub reset_window: Duration,
}

impl Default for MuxLimits {
    fn default() -> Self {
        MuxLimits {
            max_streams: 512,
            max_accept_backlog: 256,
            max_ack_backlog: 256,
            max_rapid_resets: 256,
            reset_window: Duration::from_secs(10),
        }
    }
}
