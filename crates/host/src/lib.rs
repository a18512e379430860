//! The plexus host: a connection pool with bounded protocol handlers, dialing
//! with backoff, connection gating the application can drive, events and
//! metrics.
//!
//! ```text
//! Host (cheap handle) ──> pool: one connection per peer ──> per connection: accept streams
//!   handle(proto) ─> Incoming (bounded)      <── listener_select, per-(peer, proto) limit
//!   new_stream(peer, protos) ─> dial if needed (one in-flight dial per peer, backoff, ranker)
//!   events() ─> bounded broadcast            bans() ─> built-in gate   metrics() ─> prometheus
//! ```
//!
//! There is no `NetworkBehaviour`: each protocol is a handler that takes
//! streams from its [`Incoming`] (bounded; overflow is reset) and opens streams
//! with [`Host::new_stream`].
//!
//! # Events
//! [`Host::events`] is a bounded broadcast of [`HostEvent`]. Failures come
//! typed, with who is to blame ([`HostEvent::blame`]): a `Disconnected`
//! carries a [`DisconnectCause`] (our `disconnect`, shutdown, the remote's
//! clean close, or the muxer's error), a `DialFailed` a [`DialFailure`] (one
//! address's [`AttemptError`], or the whole dial's [`DialError`]).
//!
//! # Gating
//! At each of the five checkpoints of [`plexus_conn`], the built-in gate runs
//! first ([`BanList`] and the connection caps of [`HostLimits`]), then the
//! application's [`ConnectionGater`](plexus_core::ConnectionGater). A banned
//! IP, the peer cap and the pending-handshake cap refuse an inbound connection
//! at `accept`, before a byte is read; a banned peer id is refused at
//! `secured`, after Noise and before the muxer. Every refusal is counted in
//! [`HostMetrics`] by reason and checkpoint.
//!
//! # Pending handshakes
//! Inbound connections past `accept` and not yet upgraded sit in a bounded
//! table ([`HostLimits::max_pending_inbound`]) with per-IP and per-subnet
//! caps checked at accept. When it is full, a newcomer evicts the oldest
//! connection that has not completed Noise (from the source holding the most
//! slots). Deadlines by progress ([`HostLimits::inbound_header_timeout`],
//! [`HostLimits::handshake_message_timeout`]) close connections that do no
//! work. The policy sits on the transport-independent accept path.
//!
//! # One connection per peer
//! With [`HostLimits::max_connections_per_peer`] = 1 (the default), when a
//! second connection to a connected peer is established (both sides dialed
//! at once), both sides keep the connection dialed by the peer with the
//! smaller peer id bytes and close the other; two connections with the same
//! dialer keep the newer. `docs/host.md` has the details and every default.
#![forbid(unsafe_code)]

mod addrbook;
mod bans;
mod dial;
mod error;
mod gate;
mod handlers;
mod host;
mod inbound;
mod inner;
mod limits;
mod metrics;
mod pending;
mod pool;
mod stream;

pub use bans::BanList;
pub use dial::DialRanker;
pub use error::{
    AlreadyRegistered, AttemptError, DialError, DialFailure, DisconnectCause, HostError, OpenError,
};
pub use host::{Events, Host, HostConfig, HostEvent};
pub use limits::{HandlerOpts, HostLimits};
pub use metrics::{
    CHECKPOINTS, HostMetrics, PENDING_STATES, REFUSAL_REASONS, STREAM_RESET_REASONS,
};
pub use plexus_core::{Blame, BoxStream, ConnInfo, Direction, PeerId, PublicKey};
pub use plexus_identity::Keypair;
pub use plexus_multiaddr::Multiaddr;
pub use plexus_tcp::TcpConfig;
pub use stream::{InboundStream, Incoming};
