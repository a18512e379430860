//! The host's errors, and the typed causes its events carry. Each says who is
//! to blame ([`Blame`]).

use std::fmt;
use std::sync::Arc;

use plexus_conn::UpgradeError;
use plexus_core::{Blame, BoxError, MuxError, TransportError};
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

/// Why a peer lost its last connection
/// ([`HostEvent::Disconnected`](crate::HostEvent::Disconnected)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DisconnectCause {
    /// We closed it: [`Host::disconnect`](crate::Host::disconnect).
    Local,
    /// The host shut down ([`Host::shutdown`](crate::Host::shutdown), or the
    /// last handle was dropped).
    Shutdown,
    /// The remote closed the connection cleanly: a yamux go-away with the
    /// normal code, a QUIC close, or the transport's end-of-file (mplex has no
    /// goodbye; it is also how a remote that exits ends a yamux connection).
    RemoteClosed,
    /// The muxer failed: a protocol error, an I/O error (e.g. a reset), a
    /// keep-alive timeout, or a go-away with an error code. The error's
    /// [`MuxError::blame`] says whose fault it is.
    Connection(Arc<MuxError>),
}

impl DisconnectCause {
    /// Who is to blame: `Local` for our own close, a shutdown and a clean
    /// close by the remote; the muxer error's blame for
    /// [`DisconnectCause::Connection`].
    pub fn blame(&self) -> Blame {
        match self {
            DisconnectCause::Local | DisconnectCause::Shutdown | DisconnectCause::RemoteClosed => {
                Blame::Local
            }
            DisconnectCause::Connection(e) => e.blame(),
        }
    }

    /// The cause for the error that ended a connection's `accept` loop: a
    /// clean close by the remote ([`MuxError::Closed`], go-away with the
    /// normal code, the transport's end-of-file under yamux or mplex) is
    /// [`DisconnectCause::RemoteClosed`], anything else
    /// [`DisconnectCause::Connection`]. (The host removes a connection from
    /// the pool before closing it itself, so such an error never comes from
    /// our own close.)
    pub(crate) fn from_accept_error(e: MuxError) -> Self {
        match &e {
            MuxError::Closed | MuxError::GoAway(plexus_yamux::GO_AWAY_NORMAL) => {
                DisconnectCause::RemoteClosed
            }
            MuxError::Failed { source, .. } if is_transport_eof(source) => {
                DisconnectCause::RemoteClosed
            }
            _ => DisconnectCause::Connection(Arc::new(e)),
        }
    }
}

/// Whether a muxer's error is the transport's end-of-file (the remote closed
/// the connection without a protocol error), for the built-in muxers.
fn is_transport_eof(source: &BoxError) -> bool {
    matches!(
        source.downcast_ref::<plexus_yamux::ConnError>(),
        Some(plexus_yamux::ConnError::TransportClosed)
    ) || matches!(
        source.downcast_ref::<plexus_mplex::ConnError>(),
        Some(plexus_mplex::ConnError::TransportClosed)
    )
}

impl fmt::Display for DisconnectCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DisconnectCause::Local => f.write_str("disconnected locally"),
            DisconnectCause::Shutdown => f.write_str("host shut down"),
            DisconnectCause::RemoteClosed => f.write_str("closed by the remote"),
            DisconnectCause::Connection(e) => write!(f, "connection failed: {e}"),
        }
    }
}

/// What failed in a [`HostEvent::DialFailed`](crate::HostEvent::DialFailed).
#[derive(Debug, Clone, thiserror::Error)]
pub enum DialFailure {
    /// One address failed (the event's `addr` names it); the dial goes on
    /// with the next candidate, if any.
    #[error(transparent)]
    Attempt(AttemptError),
    /// The whole dial failed before any address could be tried (none known,
    /// all in backoff); the event has no `addr`.
    #[error(transparent)]
    Dial(DialError),
}

impl DialFailure {
    /// Who is to blame: that of the attempt or of the dial.
    pub fn blame(&self) -> Blame {
        match self {
            DialFailure::Attempt(e) => e.blame(),
            DialFailure::Dial(e) => e.blame(),
        }
    }
}
