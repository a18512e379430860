//! The host's errors. Each says who is to blame ([`Blame`]).

use std::sync::Arc;

use plexus_conn::UpgradeError;
use plexus_core::{Blame, MuxError, TransportError};
use plexus_multiaddr::Multiaddr;
use plexus_multistream::NegotiationError;

/// Building a host failed.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: Multiaddr,
        /// Why.
        #[source]
        source: TransportError,
    },
}

/// [`Host::handle`](crate::Host::handle) was called for a protocol that
/// already has a handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protocol {0} already has a handler")]
pub struct AlreadyRegistered(pub String);

/// Why one dial attempt (one address) failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AttemptError {
    /// The transport, the upgrade, or a gater checkpoint failed.
    #[error("{0}")]
    Upgrade(Arc<UpgradeError>),
    /// The attempt took longer than
    /// [`HostLimits::dial_timeout`](crate::HostLimits::dial_timeout).
    #[error("dial timed out")]
    Timeout,
}

impl AttemptError {
    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        match self {
            AttemptError::Upgrade(e) => e.blame(),
            AttemptError::Timeout => Blame::Local,
        }
    }
}

/// A dial failed. Cheap to clone: one in-flight dial's result is shared by
/// every caller waiting for it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum DialError {
    /// No address to dial (none given, none known for the peer, or none left
    /// after the [`DialRanker`](crate::DialRanker)).
    #[error("no address to dial")]
    NoAddresses,
    /// Every candidate address is in dial backoff after recent failures.
    #[error("every address is in dial backoff")]
    Backoff,
    /// The addresses name different peers, or the peer is ourselves.
    #[error("invalid dial target: {0}")]
    InvalidTarget(&'static str),
    /// A local limit forbids the dial (the outbound connection cap).
    #[error("limit reached: {0}")]
    LimitReached(&'static str),
    /// Every address that was tried failed, in order.
    #[error("all {} attempts failed; last: {}", .0.len(), last_error(.0))]
    Failed(Vec<(Multiaddr, AttemptError)>),
    /// The host is shutting down.
    #[error("host shut down")]
    Shutdown,
}

fn last_error(attempts: &[(Multiaddr, AttemptError)]) -> String {
    attempts
        .last()
        .map(|(a, e)| format!("{a}: {e}"))
        .unwrap_or_default()
}

impl DialError {
    /// Who is to blame: that of the last attempt, `Local` otherwise.
    pub fn blame(&self) -> Blame {
        match self {
            DialError::Failed(attempts) => attempts
                .last()
                .map(|(_, e)| e.blame())
                .unwrap_or(Blame::Local),
            _ => Blame::Local,
        }
    }
}

/// [`Host::new_stream`](crate::Host::new_stream) failed.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The peer was not connected and dialing it failed.
    #[error("dial: {0}")]
    Dial(#[from] DialError),
    /// The muxer could not open a stream.
    #[error("open: {0}")]
    Mux(#[from] MuxError),
    /// No protocol was agreed (or a protocol id is invalid).
    #[error("negotiation: {0}")]
    Negotiation(#[from] NegotiationError),
    /// Opening and negotiating took longer than
    /// [`HostLimits::stream_negotiation_timeout`](crate::HostLimits::stream_negotiation_timeout).
    #[error("stream negotiation timed out")]
    Timeout,
    /// No protocol was given.
    #[error("no protocol given")]
    NoProtocols,
    /// The host is shutting down.
    #[error("host shut down")]
    Shutdown,
}

impl OpenError {
    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        match self {
            OpenError::Dial(e) => e.blame(),
            OpenError::Mux(e) => e.blame(),
            OpenError::Negotiation(e) => e.blame(),
            OpenError::Timeout | OpenError::NoProtocols | OpenError::Shutdown => Blame::Local,
        }
    }
}
