//! Errors that cross layer seams, each carrying who is to blame.

use std::fmt;

use plexus_identity::PeerId;

/// A boxed error, the typed source of a seam error. Downcast it to the layer's
/// own error type (e.g. `NoiseError`) for details.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Who is to blame for a failure. This is the bridge to peer scoring: a
/// misbehaving peer is penalised, an incompatible one is only disconnected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Blame {
    /// The peer broke the protocol (bad signature, window overflow, garbage).
    PeerMisbehaved,
    /// The peer is honest but cannot talk to us (no common protocol, an
    /// unsupported key type).
    PeerIncompatible,
    /// The failure is ours or the network's (I/O error, timeout, local limit,
    /// shutdown).
    Local,
}

impl fmt::Display for Blame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Blame::PeerMisbehaved => "peer misbehaved",
            Blame::PeerIncompatible => "peer incompatible",
            Blame::Local => "local",
        })
    }
}

/// A security handshake failed.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// The remote authenticated as a different peer than the one dialed.
    #[error("peer id mismatch: dialed {expected}, remote is {actual}")]
    PeerIdMismatch {
        /// The peer we dialed.
        expected: PeerId,
        /// The peer that answered.
        actual: PeerId,
    },
    /// The handshake failed; `blame` says whose fault it is and `source` is the
    /// protocol's own typed error.
    #[error("{blame}: {source}")]
    Failed {
        /// Who is to blame.
        blame: Blame,
        /// The protocol's typed error.
        #[source]
        source: BoxError,
    },
}

impl SecurityError {
    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        match self {
            // Dialing the wrong key is not the remote's protocol fault, but it
            // is not who we asked for: treat as incompatible.
            SecurityError::PeerIdMismatch { .. } => Blame::PeerIncompatible,
            SecurityError::Failed { blame, .. } => *blame,
        }
    }
}

/// Opening or accepting a stream failed.
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    /// The connection is closed (locally, by the remote, or after an error).
    #[error("connection closed")]
    Closed,
    /// The remote sent GoAway: no new streams on this connection.
    #[error("remote sent go-away (code {0})")]
    GoAway(u32),
    /// A local limit forbids another stream right now (stream cap, or too many
    /// streams the remote has not yet acknowledged).
    #[error("stream limit reached: {0}")]
    LimitReached(&'static str),
    /// The connection failed; `blame` says whose fault it is.
    #[error("{blame}: {source}")]
    Failed {
        /// Who is to blame.
        blame: Blame,
        /// The muxer's typed error.
        #[source]
        source: BoxError,
    },
}

impl MuxError {
    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        match self {
            MuxError::Closed | MuxError::GoAway(_) | MuxError::LimitReached(_) => Blame::Local,
            MuxError::Failed { blame, .. } => *blame,
        }
    }
}

/// A transport operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The transport cannot handle this address.
    #[error("unsupported address: {0}")]
    UnsupportedAddr(String),
    /// An I/O error (connection refused, bind failed, …).
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The transport's own security handshake failed (QUIC's TLS 1.3).
    #[error("security: {0}")]
    Security(#[from] SecurityError),
    /// The transport's handshake took longer than its limit.
    #[error("{0} timed out")]
    Timeout(&'static str),
}

impl TransportError {
    /// Who is to blame: the remote for a failed security handshake (as the protocol's error
    /// says), us otherwise (unreachable addresses and timeouts are not proof of
    /// misbehaviour).
    pub fn blame(&self) -> Blame {
        match self {
            TransportError::Security(e) => e.blame(),
            _ => Blame::Local,
        }
    }
}
