//! Seam traits shared by every plexus layer.
//!
//! The stack is built from independent layers that meet at the traits in this
//! crate, each used as a trait object (boxed once per connection or stream,
//! never per frame):
//!
//! ```text
//! Transport ──> TransportConn::Raw(RawConn) ──multistream──> SecurityUpgrade ──> Secured
//!     │                Secured ──multistream or early muxer──> MuxerUpgrade ──> MuxedConn
//!     ├──────> TransportConn::Ready(ReadyConn): secured and multiplexed by the transport
//!     │        itself (QUIC: TLS 1.3 and native streams) ──────────────────────> MuxedConn
//!     └─ Listener ─> PendingInbound (gate before any handshake work)
//! MuxedConn ──> MuxedStream
//! ```
//!
//! A [`ConnectionGater`] is consulted at five checkpoints (peer dial, address
//! dial, accept, secured, upgraded). [`Limits`] is the one place every bound of
//! the connection layers is configured. Errors carry a [`Blame`] so the layer
//! above can tell a misbehaving peer from an incompatible one or a local fault.
#![forbid(unsafe_code)]

mod error;
mod gater;
mod limits;
mod probe;
pub mod wire;

use std::future::Future;
use std::pin::Pin;

pub use error::{Blame, BoxError, MuxError, SecurityError, TransportError};
pub use gater::{AllowAll, ConnInfo, ConnectionGater, DenyReason, Verdict};
pub use limits::{Limits, MuxLimits};
pub use plexus_identity::{PeerId, PublicKey};
pub use plexus_multiaddr::Multiaddr;
pub use probe::{PROBE, poll_read_probe};
use tokio::io::{AsyncRead, AsyncWrite};

/// A boxed, sendable future: the return type of every async seam method, so
/// the traits stay dyn-compatible.
pub type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A byte stream: what a transport yields and what security and muxers wrap.
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// A boxed [`Io`].
pub type BoxIo = Box<dyn Io>;

/// Which side of a handshake we are. The dialer of a connection is the
/// multistream initiator, the Noise initiator and the yamux client (odd stream
/// ids); the listener is the responder on all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// We opened the connection (or stream).
    Initiator,
    /// The remote opened the connection (or stream).
    Responder,
}

/// Which way a connection was established, seen from this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The remote dialed us.
    Inbound,
    /// We dialed the remote.
    Outbound,
}

impl Role {
    /// The direction of a connection on which we play this role.
    pub fn direction(self) -> Direction {
        match self {
            Role::Initiator => Direction::Outbound,
            Role::Responder => Direction::Inbound,
        }
    }
}

/// An unsecured connection as a transport produced it.
pub struct RawConn {
    /// The byte stream.
    pub io: BoxIo,
    /// Our address on this connection.
    pub local_addr: Multiaddr,
    /// The remote's address on this connection.
    pub remote_addr: Multiaddr,
}

impl std::fmt::Debug for RawConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawConn")
            .field("local_addr", &self.local_addr)
            .field("remote_addr", &self.remote_addr)
            .finish_non_exhaustive()
    }
}

/// A connection a transport secured and multiplexed itself (QUIC): the upgrader only gates
/// it.
pub struct ReadyConn {
    /// The authenticated remote peer.
    pub peer: PeerId,
    /// The remote's identity key.
    pub public_key: PublicKey,
    /// The multiplexed connection, its driver running.
    pub muxer: Box<dyn MuxedConn>,
    /// The security protocol's name for [`ConnInfo::security`], e.g. `/tls/1.0.0`.
    pub security: &'static str,
    /// The muxer's name for [`ConnInfo::muxer`], e.g. `/quic-v1`.
    pub muxer_name: &'static str,
    /// Our address on this connection.
    pub local_addr: Multiaddr,
    /// The remote's address on this connection.
    pub remote_addr: Multiaddr,
}

impl std::fmt::Debug for ReadyConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyConn")
            .field("peer", &self.peer)
            .field("local_addr", &self.local_addr)
            .field("remote_addr", &self.remote_addr)
            .field("security", &self.security)
            .field("muxer", &self.muxer_name)
            .finish_non_exhaustive()
    }
}

/// What a transport's dial or accept produced.
#[derive(Debug)]
pub enum TransportConn {
    /// A byte stream to secure and multiplex (TCP).
    Raw(RawConn),
    /// A connection already secured and multiplexed (QUIC). Boxed: it is much larger than
    /// a raw connection.
    Ready(Box<ReadyConn>),
}

impl TransportConn {
    /// The raw byte stream, when the transport produced one.
    pub fn into_raw(self) -> Option<RawConn> {
        match self {
            TransportConn::Raw(r) => Some(r),
            TransportConn::Ready(_) => None,
        }
    }

    /// The remote's address.
    pub fn remote_addr(&self) -> &Multiaddr {
        match self {
            TransportConn::Raw(r) => &r.remote_addr,
            TransportConn::Ready(r) => &r.remote_addr,
        }
    }
}

/// A way to reach peers: TCP, QUIC.
pub trait Transport: Send + Sync + 'static {
    /// Whether this transport can dial (and listen on) `addr` (ignoring any trailing
    /// `/p2p`).
    fn can_dial(&self, addr: &Multiaddr) -> bool;
    /// Dial `addr`. Resolves once the connection is open: a raw byte stream, or (when the
    /// transport secures connections itself) an authenticated, multiplexed connection. A
    /// trailing `/p2p/<id>` is the peer expected; a transport that authenticates checks it.
    fn dial(&self, addr: Multiaddr) -> BoxFut<'static, Result<TransportConn, TransportError>>;
    /// Start listening on `addr`.
    fn listen(&self, addr: Multiaddr)
    -> BoxFut<'static, Result<Box<dyn Listener>, TransportError>>;
}

/// A bound listener.
pub trait Listener: Send {
    /// The address actually bound (a `0` port is replaced by the real one).
    fn local_addr(&self) -> &Multiaddr;
    /// Wait for the next inbound connection attempt. Nothing beyond the
    /// transport's own accept has been done for it yet: no bytes were read.
    fn accept(&mut self) -> BoxFut<'_, Result<Box<dyn PendingInbound>, TransportError>>;
}

/// An inbound connection that was accepted by the OS but not yet by us: the
/// place to refuse it before any handshake work.
pub trait PendingInbound: Send {
    /// The remote's address.
    fn remote_addr(&self) -> &Multiaddr;
    /// Our address on this connection.
    fn local_addr(&self) -> &Multiaddr;
    /// Take the connection (for a transport that secures connections, run its handshake).
    fn finish(self: Box<Self>) -> BoxFut<'static, Result<TransportConn, TransportError>>;
    /// Refuse the connection: it is closed without reading a byte.
    fn refuse(self: Box<Self>);
}

/// What a security handshake produced: an authenticated, encrypted stream.
pub struct Secured {
    /// The authenticated remote peer.
    pub peer: PeerId,
    /// The remote's identity key.
    pub public_key: PublicKey,
    /// The encrypted byte stream.
    pub io: BoxIo,
    /// A muxer agreed inside the security handshake (Noise extensions), which
    /// saves the muxer's multistream round trip. `None`: negotiate it.
    pub early_muxer: Option<String>,
}

impl std::fmt::Debug for Secured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secured")
            .field("peer", &self.peer)
            .field("early_muxer", &self.early_muxer)
            .finish_non_exhaustive()
    }
}

/// A security protocol, such as Noise.
pub trait SecurityUpgrade: Send + Sync + 'static {
    /// Its multistream protocol id, e.g. `/noise`.
    fn protocol(&self) -> &'static str;
    /// Run the handshake on `io`. `expect`, when set, is the peer we dialed:
    /// any other authenticated peer is an error. `muxers` is our muxer list in
    /// preference order, offered inside the handshake where the protocol can.
    fn secure(
        &self,
        io: BoxIo,
        role: Role,
        expect: Option<PeerId>,
        muxers: Vec<String>,
    ) -> BoxFut<'static, Result<Secured, SecurityError>>;
}

/// A stream of a multiplexed connection. Shutdown (`poll_shutdown`) half-closes
/// it: we stop writing and can still read until the remote closes too.
pub trait MuxedStream: Io {
    /// Abort the stream both ways; the remote sees a reset.
    fn reset(&mut self);
    /// Bytes already received on this stream and waiting to be read: a reader can size its
    /// buffer by what has arrived without reserving what a remote merely announced. A hint;
    /// the default (0) says nothing is known.
    fn readable(&self) -> usize {
        0
    }
}

/// A boxed [`MuxedStream`].
pub type BoxStream = Box<dyn MuxedStream>;

/// A snapshot of a multiplexed connection's per-connection state. After every
/// stream was closed or reset and both sides are idle, each field is zero: the
/// muxer conformance suite checks exactly that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MuxStats {
    /// Streams the muxer tracks (both directions, including ones waiting to
    /// be accepted and closed ones still flushing).
    pub open_streams: usize,
    /// Bytes received and not yet read by the application, over all streams.
    pub buffered_bytes: usize,
    /// Our outbound streams the remote has not acknowledged (0 for muxers
    /// without acknowledgements).
    pub pending_opens: usize,
    /// Inbound streams waiting for [`MuxedConn::accept`].
    pub pending_accepts: usize,
}

/// A multiplexed connection. Its driver runs on its own; these methods only
/// talk to it.
pub trait MuxedConn: Send + Sync + 'static {
    /// Open a new outbound stream.
    fn open(&self) -> BoxFut<'_, Result<BoxStream, MuxError>>;
    /// Wait for the next inbound stream. The backlog of streams not yet taken
    /// here is bounded; streams beyond it are reset.
    fn accept(&self) -> BoxFut<'_, Result<BoxStream, MuxError>>;
    /// Close the connection politely (GoAway where the protocol has one) and
    /// wait until the driver has finished.
    fn close(&self) -> BoxFut<'_, ()>;
    /// Whether the connection is closed.
    fn is_closed(&self) -> bool;
    /// The connection's current per-connection counters.
    fn stats(&self) -> MuxStats;
}

/// A stream multiplexer, such as yamux.
pub trait MuxerUpgrade: Send + Sync + 'static {
    /// Its multistream protocol id, e.g. `/yamux/1.0.0`.
    fn protocol(&self) -> &'static str;
    /// Start the muxer on a secured stream. Spawns the driver on the current
    /// tokio runtime.
    fn start(&self, io: BoxIo, role: Role) -> Box<dyn MuxedConn>;
}
