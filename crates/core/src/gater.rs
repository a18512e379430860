//! The connection gater: five synchronous checkpoints at which the application
//! can refuse a connection, each as early (and as cheap) as possible.

use std::fmt;

use plexus_identity::PeerId;
use plexus_multiaddr::Multiaddr;

use crate::Direction;

/// Why a checkpoint refused.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DenyReason {
    /// The peer id is banned.
    BannedPeer,
    /// The remote address (IP) is banned.
    BannedAddr,
    /// We are at our connection cap.
    PeerCap,
    /// Any other reason, named by the application (used as a metrics label).
    Other(&'static str),
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::BannedPeer => f.write_str("banned peer"),
            DenyReason::BannedAddr => f.write_str("banned address"),
            DenyReason::PeerCap => f.write_str("peer cap reached"),
            DenyReason::Other(s) => f.write_str(s),
        }
    }
}

/// A checkpoint's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on.
    Allow,
    /// Refuse, silently (the remote learns nothing but a closed connection).
    Deny(DenyReason),
}

/// A connection that completed its upgrade, as shown to
/// [`ConnectionGater::upgraded`].
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The authenticated remote peer.
    pub peer: PeerId,
    /// Who dialed.
    pub direction: Direction,
    /// Our address.
    pub local_addr: Multiaddr,
    /// The remote's address.
    pub remote_addr: Multiaddr,
    /// The security protocol, e.g. `/noise`.
    pub security: &'static str,
    /// The muxer protocol, e.g. `/yamux/1.0.0`.
    pub muxer: &'static str,
}

/// Five checkpoints, in the order a connection meets them. Each is synchronous
/// and must not block: read a snapshot, decide, return. Every method defaults
/// to [`Verdict::Allow`].
pub trait ConnectionGater: Send + Sync + 'static {
    /// Before dialing `peer` at all.
    fn peer_dial(&self, _peer: &PeerId) -> Verdict {
        Verdict::Allow
    }
    /// Before dialing one candidate address of `peer` (or of an unknown peer).
    fn addr_dial(&self, _peer: Option<&PeerId>, _addr: &Multiaddr) -> Verdict {
        Verdict::Allow
    }
    /// An inbound connection was accepted by the OS; no byte has been read and
    /// no handshake work done.
    fn accept(&self, _local: &Multiaddr, _remote: &Multiaddr) -> Verdict {
        Verdict::Allow
    }
    /// The security handshake authenticated `peer`; the muxer is not yet
    /// negotiated.
    fn secured(&self, _direction: Direction, _peer: &PeerId, _remote: &Multiaddr) -> Verdict {
        Verdict::Allow
    }
    /// The connection is fully upgraded, not yet announced to the application.
    fn upgraded(&self, _conn: &ConnInfo) -> Verdict {
        Verdict::Allow
    }
}

/// A gater that allows everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl ConnectionGater for AllowAll {}
