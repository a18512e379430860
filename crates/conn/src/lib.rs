//! The connection upgrader: turns a raw transport connection into an
//! authenticated, multiplexed one.
//!
//! ```text
//! raw ─mss(/noise)─> secured ─gater.secured─> mss(/yamux/1.0.0) or early muxer ─> muxed ─gater.upgraded─> Connection
//! ```
//!
//! Inbound connections meet `gater.accept` first, before a single byte is read
//! ([`Upgrader::accept`]). Outbound dials meet `gater.peer_dial` and
//! `gater.addr_dial` before the transport dials ([`Upgrader::dial`]). Every step
//! runs under a timeout from [`Limits`]; on top of them an inbound connection
//! must deliver a valid multistream header within
//! [`Limits::inbound_header_timeout`], and the security handshake must not
//! stall between messages longer than [`Limits::handshake_message_timeout`].
//! Progress is reported to an [`UpgradeObserver`] (the host's pending table),
//! which may stop an upgrade that has not completed its security handshake.
//!
//! With a single security protocol the dialer uses multistream's lazy select:
//! the Noise first message follows the `/noise` proposal in the same write,
//! saving a round trip. The muxer is taken from the Noise handshake when both
//! sides offered muxers there (inlined muxer negotiation), which saves the
//! muxer's multistream round trip too.
#![forbid(unsafe_code)]

use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use plexus_core::{
    Blame, BoxIo, ConnInfo, ConnectionGater, DenyReason, Limits, MuxedConn, MuxerUpgrade, PeerId,
    PendingInbound, RawConn, ReadyConn, Role, SecurityError, SecurityUpgrade, Transport,
    TransportConn, TransportError, Verdict,
};
use plexus_multiaddr::Multiaddr;
use plexus_multistream::{self as mss, NegotiationError};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// The gater checkpoint that refused a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Checkpoint {
    /// `peer_dial`.
    PeerDial,
    /// `addr_dial`.
    AddrDial,
    /// `accept`.
    Accept,
    /// `secured`.
    Secured,
    /// `upgraded`.
    Upgraded,
}

/// An upgrade step, as named in timeout errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Step {
    /// Negotiating the security protocol.
    SecurityNegotiation,
    /// The security handshake.
    SecurityHandshake,
    /// Negotiating the muxer.
    MuxerNegotiation,
    /// Receiving an inbound connection's multistream header
    /// ([`Limits::inbound_header_timeout`]).
    Header,
    /// Waiting for the remote's next security-handshake message
    /// ([`Limits::handshake_message_timeout`]).
    SecurityMessage,
}

/// Where an upgrade is, as reported to an [`UpgradeObserver`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// Accepted; no complete, valid multistream header received yet.
    AwaitingHeader,
    /// The header arrived; the security protocol is being negotiated.
    Negotiating,
    /// The security handshake (Noise) is running.
    Securing,
    /// The security handshake completed: gating, muxer negotiation.
    Muxing,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 4] = [
        Stage::AwaitingHeader,
        Stage::Negotiating,
        Stage::Securing,
        Stage::Muxing,
    ];

    /// A metrics label: `awaiting_first_byte`, `negotiating`, `securing`,
    /// `muxing`.
    pub fn label(self) -> &'static str {
        match self {
            Stage::AwaitingHeader => "awaiting_first_byte",
            Stage::Negotiating => "negotiating",
            Stage::Securing => "securing",
            Stage::Muxing => "muxing",
        }
    }

    /// Whether the security handshake completed (the connection is
    /// authenticated).
    pub fn is_secured(self) -> bool {
        matches!(self, Stage::Muxing)
    }
}

/// Watches an upgrade's progress and may stop it before it is secured.
pub trait UpgradeObserver: Send + Sync {
    /// The upgrade entered `stage`. Returning `false` stops it: the
    /// connection is dropped and the upgrade fails with
    /// [`UpgradeError::Stopped`]. Called without any upgrader lock held; must
    /// not block.
    fn enter(&self, stage: Stage) -> bool;
}

/// An observer that lets every upgrade go on.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoObserver;

impl UpgradeObserver for NoObserver {
    fn enter(&self, _stage: Stage) -> bool {
        true
    }
}

/// Why an upgrade failed.
#[derive(Debug, thiserror::Error)]
pub enum UpgradeError {
    /// The gater refused the connection.
    #[error("refused at {checkpoint:?}: {reason}")]
    Denied {
        /// Where.
        checkpoint: Checkpoint,
        /// Why.
        reason: DenyReason,
    },
    /// A step took longer than its limit.
    #[error("{0:?} timed out")]
    Timeout(Step),
    /// The transport failed (dial or accept).
    #[error("transport: {0}")]
    Transport(#[from] TransportError),
    /// No transport can dial the address.
    #[error("no transport for {0}")]
    NoTransport(Multiaddr),
    /// A multistream negotiation failed.
    #[error("{step:?}: {source}")]
    Negotiation {
        /// Which negotiation.
        step: Step,
        /// The typed error.
        #[source]
        source: NegotiationError,
    },
    /// The security handshake failed.
    #[error("security: {0}")]
    Security(#[from] SecurityError),
    /// The observer stopped the upgrade (the host evicted the pending
    /// connection to make room) before its security handshake completed.
    #[error("upgrade stopped before the security handshake completed (evicted)")]
    Stopped,
    /// The muxer agreed in the security handshake is not one we run (the
    /// remote chose outside our list).
    #[error("remote selected muxer {0} that we did not offer")]
    UnknownEarlyMuxer(String),
}

impl UpgradeError {
    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        match self {
            UpgradeError::Denied { .. }
            | UpgradeError::Timeout(_)
            | UpgradeError::NoTransport(_)
            | UpgradeError::Stopped => Blame::Local,
            UpgradeError::Transport(e) => e.blame(),
            UpgradeError::Negotiation { source, .. } => source.blame(),
            UpgradeError::Security(e) => e.blame(),
            UpgradeError::UnknownEarlyMuxer(_) => Blame::PeerMisbehaved,
        }
    }
}

/// A fully upgraded connection, not yet announced to anyone.
pub struct Connection {
    /// What the gater's `upgraded` checkpoint saw.
    pub info: ConnInfo,
    /// The multiplexed connection. Its driver is already running.
    pub muxer: Box<dyn MuxedConn>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// Builds upgraded connections from raw ones. Cheap to clone.
#[derive(Clone)]
pub struct Upgrader {
    security: Arc<dyn SecurityUpgrade>,
    muxers: Arc<[Arc<dyn MuxerUpgrade>]>,
    gater: Arc<dyn ConnectionGater>,
    limits: Limits,
    mss: mss::Config,
}

impl Upgrader {
    /// An upgrader with one security protocol, muxers in preference order, a
    /// gater and limits.
    ///
    /// # Panics
    /// If `muxers` is empty (a configuration error, not remote input).
    pub fn new(
        security: Arc<dyn SecurityUpgrade>,
        muxers: Vec<Arc<dyn MuxerUpgrade>>,
        gater: Arc<dyn ConnectionGater>,
        limits: Limits,
    ) -> Self {
        assert!(!muxers.is_empty(), "an upgrader needs at least one muxer");
        Upgrader {
            security,
            muxers: muxers.into(),
            gater,
            limits,
            mss: mss::Config::default(),
        }
    }

    /// Use `mss` for every multistream-select negotiation of the upgrade.
    pub fn with_multistream(mut self, mss: mss::Config) -> Self {
        self.mss = mss;
        self
    }

    /// The limits in force.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The gater in force.
    pub fn gater(&self) -> &Arc<dyn ConnectionGater> {
        &self.gater
    }

    /// Dial `addr` with `transport` and upgrade the connection. A trailing
    /// `/p2p/<id>` in `addr` is the peer we expect; another peer is an error.
    pub async fn dial(
        &self,
        transport: &dyn Transport,
        addr: Multiaddr,
    ) -> Result<Connection, UpgradeError> {
        let expect = addr.peer_id();
        if let Some(peer) = &expect {
            gate(Checkpoint::PeerDial, self.gater.peer_dial(peer))?;
        }
        gate(
            Checkpoint::AddrDial,
            self.gater.addr_dial(expect.as_ref(), &addr),
        )?;
        if !transport.can_dial(&addr) {
            return Err(UpgradeError::NoTransport(addr));
        }
        let conn = transport.dial(addr).await?;
        self.upgrade_outbound(conn, expect).await
    }

    /// Gate an inbound connection before any handshake work, then upgrade it.
    /// A refused connection is closed without reading a byte.
    pub async fn accept(
        &self,
        pending: Box<dyn PendingInbound>,
    ) -> Result<Connection, UpgradeError> {
        if let Verdict::Deny(reason) = self
            .gater
            .accept(pending.local_addr(), pending.remote_addr())
        {
            tracing::debug!(remote = %pending.remote_addr(), %reason, "refused at accept");
            pending.refuse();
            return Err(UpgradeError::Denied {
                checkpoint: Checkpoint::Accept,
                reason,
            });
        }
        let conn = pending.finish().await?;
        self.upgrade_inbound(conn).await
    }

    /// Upgrade a connection we dialed (a raw one is secured and multiplexed; one the
    /// transport secured itself is only checked against `expect` and gated).
    pub async fn upgrade_outbound(
        &self,
        conn: TransportConn,
        expect: Option<PeerId>,
    ) -> Result<Connection, UpgradeError> {
        self.upgrade_any(conn, Role::Initiator, expect, &NoObserver)
            .await
    }

    /// Upgrade a connection the remote dialed (already past `accept`).
    pub async fn upgrade_inbound(&self, conn: TransportConn) -> Result<Connection, UpgradeError> {
        self.upgrade_any(conn, Role::Responder, None, &NoObserver)
            .await
    }

    /// Upgrade a connection the remote dialed, reporting each [`Stage`] it
    /// enters to `observer` (which may stop it before it is secured). The
    /// caller reports [`Stage::AwaitingHeader`] itself when it admits the
    /// connection.
    pub async fn upgrade_inbound_observed(
        &self,
        conn: TransportConn,
        observer: &dyn UpgradeObserver,
    ) -> Result<Connection, UpgradeError> {
        self.upgrade_any(conn, Role::Responder, None, observer)
            .await
    }

    async fn upgrade_any(
        &self,
        conn: TransportConn,
        role: Role,
        expect: Option<PeerId>,
        observer: &dyn UpgradeObserver,
    ) -> Result<Connection, UpgradeError> {
        match conn {
            TransportConn::Raw(raw) => self.upgrade(raw, role, expect, observer).await,
            TransportConn::Ready(ready) => self.admit(*ready, role, expect, observer).await,
        }
    }

    /// A connection the transport secured and multiplexed: the same checks as after a
    /// security handshake (the dialed peer, the `secured` and `upgraded` checkpoints).
    async fn admit(
        &self,
        ready: ReadyConn,
        role: Role,
        expect: Option<PeerId>,
        observer: &dyn UpgradeObserver,
    ) -> Result<Connection, UpgradeError> {
        let ReadyConn {
            peer,
            muxer,
            security,
            muxer_name,
            local_addr,
            remote_addr,
            ..
        } = ready;
        if !observer.enter(Stage::Muxing) {
            muxer.close().await;
            return Err(UpgradeError::Stopped);
        }
        if let Some(expected) = expect
            && expected != peer
        {
            muxer.close().await;
            return Err(UpgradeError::Security(SecurityError::PeerIdMismatch {
                expected,
                actual: peer,
            }));
        }
        let direction = role.direction();
        if let Err(e) = gate(
            Checkpoint::Secured,
            self.gater.secured(direction, &peer, &remote_addr),
        ) {
            muxer.close().await;
            return Err(e);
        }
        let info = ConnInfo {
            peer,
            direction,
            local_addr,
            remote_addr,
            security,
            muxer: muxer_name,
        };
        if let Verdict::Deny(reason) = self.gater.upgraded(&info) {
            muxer.close().await;
            return Err(UpgradeError::Denied {
                checkpoint: Checkpoint::Upgraded,
                reason,
            });
        }
        tracing::debug!(peer = %info.peer, remote = %info.remote_addr, muxer = info.muxer, ?direction, "connection admitted");
        Ok(Connection { info, muxer })
    }

    async fn upgrade(
        &self,
        raw: RawConn,
        role: Role,
        expect: Option<PeerId>,
        observer: &dyn UpgradeObserver,
    ) -> Result<Connection, UpgradeError> {
        let RawConn {
            io,
            local_addr,
            remote_addr,
        } = raw;
        let limits = &self.limits;
        let sec_proto = self.security.protocol();
        let watch = Arc::new(Watch::new(role == Role::Responder));
        let io: BoxIo = Box::new(Watched {
            io,
            watch: watch.clone(),
        });

        // 1. Security protocol. One protocol: the dialer proposes lazily, and
        //    the handshake's first message rides along with the proposal.
        let io: BoxIo = match role {
            Role::Initiator => Box::new(mss::dialer_select_lazy(io, sec_proto, &self.mss)),
            Role::Responder => {
                let (_, io) = security_negotiation(
                    mss::listener_select(io, &[sec_proto], &self.mss),
                    limits,
                    &watch,
                    observer,
                )
                .await?
                .map_err(|source| UpgradeError::Negotiation {
                    step: Step::SecurityNegotiation,
                    source,
                })?;
                Box::new(io)
            }
        };

        // 2. Security handshake, offering our muxers inside it.
        let offered: Vec<String> = self
            .muxers
            .iter()
            .map(|m| m.protocol().to_owned())
            .collect();
        if !observer.enter(Stage::Securing) {
            return Err(UpgradeError::Stopped);
        }
        watch.start_securing();
        let secured = security_handshake(
            self.security.secure(io, role, expect, offered),
            limits,
            &watch,
        )
        .await??;
        watch.stop_securing();
        // From here on the connection is authenticated: the observer learns
        // it before any further await, and cannot stop it any more.
        if !observer.enter(Stage::Muxing) {
            return Err(UpgradeError::Stopped);
        }
        let peer = secured.peer;
        let direction = role.direction();

        // 3. Gate the authenticated peer before spending anything on a muxer.
        gate(
            Checkpoint::Secured,
            self.gater.secured(direction, &peer, &remote_addr),
        )?;

        // 4. Muxer: agreed in the handshake, or negotiated now.
        let (muxer, io): (Arc<dyn MuxerUpgrade>, BoxIo) = match secured.early_muxer {
            Some(name) => {
                let m = self
                    .muxer(&name)
                    .ok_or(UpgradeError::UnknownEarlyMuxer(name))?;
                (m, secured.io)
            }
            None => {
                let names: Vec<&str> = self.muxers.iter().map(|m| m.protocol()).collect();
                let negotiation = async {
                    match role {
                        Role::Initiator => mss::dialer_select(secured.io, &names, &self.mss).await,
                        Role::Responder => {
                            mss::listener_select(secured.io, &names, &self.mss).await
                        }
                    }
                };
                let (name, io) = timed(
                    limits.negotiation_timeout,
                    Step::MuxerNegotiation,
                    negotiation,
                )
                .await?
                .map_err(|source| UpgradeError::Negotiation {
                    step: Step::MuxerNegotiation,
                    source,
                })?;
                let m = self
                    .muxer(&name)
                    .ok_or(UpgradeError::UnknownEarlyMuxer(name))?;
                (m, Box::new(io) as BoxIo)
            }
        };
        let conn = muxer.start(io, role);

        // 5. Last checkpoint before anyone learns of the connection.
        let info = ConnInfo {
            peer,
            direction,
            local_addr,
            remote_addr,
            security: sec_proto,
            muxer: muxer.protocol(),
        };
        if let Verdict::Deny(reason) = self.gater.upgraded(&info) {
            conn.close().await;
            return Err(UpgradeError::Denied {
                checkpoint: Checkpoint::Upgraded,
                reason,
            });
        }
        tracing::debug!(peer = %info.peer, remote = %info.remote_addr, muxer = info.muxer, ?direction, "connection upgraded");
        Ok(Connection { info, muxer: conn })
    }

    fn muxer(&self, name: &str) -> Option<Arc<dyn MuxerUpgrade>> {
        self.muxers.iter().find(|m| m.protocol() == name).cloned()
    }
}

fn gate(checkpoint: Checkpoint, verdict: Verdict) -> Result<(), UpgradeError> {
    match verdict {
        Verdict::Allow => Ok(()),
        Verdict::Deny(reason) => {
            tracing::debug!(?checkpoint, %reason, "connection refused by gater");
            Err(UpgradeError::Denied { checkpoint, reason })
        }
    }
}

async fn timed<F: Future>(limit: Duration, step: Step, f: F) -> Result<F::Output, UpgradeError> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| UpgradeError::Timeout(step))
}

/// The wire bytes of the multistream header message: its length (one varint
/// byte), `/multistream/1.0.0` and `\n`.
fn header_byte(i: usize) -> Option<u8> {
    let h = mss::HEADER.as_bytes();
    let len = h.len() + 1;
    match i {
        0 => u8::try_from(len).ok(),
        i if i <= h.len() => Some(h[i - 1]),
        i if i == len => Some(b'\n'),
        _ => None,
    }
}

/// Length of the header message on the wire.
fn header_len() -> usize {
    mss::HEADER.len() + 2
}

/// `header_left` value once the header is complete.
const HEADER_SEEN: usize = 0;
/// `header_left` value once a byte differed from the header (the negotiation
/// fails on its own; the header never counts as seen).
const HEADER_BROKEN: usize = usize::MAX;

/// Progress of one upgrade, shared between its I/O wrapper and the upgrader.
struct Watch {
    base: Instant,
    /// Header bytes still expected (inbound), [`HEADER_SEEN`] or
    /// [`HEADER_BROKEN`].
    header_left: AtomicUsize,
    /// Whether the security handshake runs (writes are then stamped).
    securing: AtomicBool,
    /// Milliseconds from `base` to our last write of the security handshake
    /// (or its start).
    last_write_ms: AtomicU64,
}

impl Watch {
    fn new(track_header: bool) -> Self {
        Watch {
            base: Instant::now(),
            header_left: AtomicUsize::new(if track_header {
                header_len()
            } else {
                HEADER_SEEN
            }),
            securing: AtomicBool::new(false),
            last_write_ms: AtomicU64::new(0),
        }
    }

    fn header_seen(&self) -> bool {
        self.header_left.load(Ordering::Acquire) == HEADER_SEEN
    }

    /// Account for bytes read while the header is incomplete.
    fn read(&self, bytes: &[u8]) {
        let left = self.header_left.load(Ordering::Acquire);
        if left == HEADER_SEEN || left == HEADER_BROKEN || bytes.is_empty() {
            return;
        }
        let offset = header_len() - left;
        let n = left.min(bytes.len());
        let ok = (0..n).all(|i| header_byte(offset + i) == Some(bytes[i]));
        let next = if ok { left - n } else { HEADER_BROKEN };
        self.header_left.store(next, Ordering::Release);
    }

    fn stamp(&self) {
        let ms = u64::try_from(self.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_write_ms.store(ms, Ordering::Release);
    }

    fn start_securing(&self) {
        self.stamp();
        self.securing.store(true, Ordering::Release);
    }

    fn stop_securing(&self) {
        self.securing.store(false, Ordering::Release);
    }

    fn wrote(&self) {
        if self.securing.load(Ordering::Relaxed) {
            self.stamp();
        }
    }

    /// When the wait for the remote's next handshake message ends.
    fn message_deadline(&self, timeout: Duration) -> Instant {
        self.base + Duration::from_millis(self.last_write_ms.load(Ordering::Acquire)) + timeout
    }
}

/// The raw connection with its progress watched: header bytes read (inbound)
/// and the time of our handshake writes. After the handshake it only
/// forwards (one relaxed atomic load per write).
struct Watched {
    io: BoxIo,
    watch: Arc<Watch>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = res
            && !self.watch.header_seen()
        {
            self.watch.read(&buf.filled()[before..]);
        }
        res
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = res
            && n > 0
        {
            self.watch.wrote();
        }
        res
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let res = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = res
            && n > 0
        {
            self.watch.wrote();
        }
        res
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// The listener's security negotiation: bounded by the negotiation timeout,
/// and by the header deadline until a valid header arrived (reported to the
/// observer as [`Stage::Negotiating`]).
async fn security_negotiation<F: Future>(
    fut: F,
    limits: &Limits,
    watch: &Watch,
    observer: &dyn UpgradeObserver,
) -> Result<F::Output, UpgradeError> {
    let start = Instant::now();
    let mut fut = pin!(fut);
    let mut total = pin!(tokio::time::sleep_until(start + limits.negotiation_timeout));
    let mut header = pin!(tokio::time::sleep_until(
        start + limits.inbound_header_timeout
    ));
    let mut header_seen = false;
    poll_fn(|cx| {
        let done = fut.as_mut().poll(cx);
        // Reported even when the negotiation finished in the same poll that
        // read the header (a lazy dialer sends it all at once).
        if !header_seen && watch.header_seen() {
            header_seen = true;
            if !observer.enter(Stage::Negotiating) {
                return Poll::Ready(Err(UpgradeError::Stopped));
            }
        }
        if let Poll::Ready(r) = done {
            return Poll::Ready(Ok(r));
        }
        if total.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(UpgradeError::Timeout(Step::SecurityNegotiation)));
        }
        if !header_seen && header.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(UpgradeError::Timeout(Step::Header)));
        }
        Poll::Pending
    })
    .await
}

/// The security handshake: bounded as a whole by the security timeout, and
/// per message: the remote's next message must arrive within the message
/// timeout of our last handshake write (or the handshake's start).
async fn security_handshake<F: Future>(
    fut: F,
    limits: &Limits,
    watch: &Watch,
) -> Result<F::Output, UpgradeError> {
    let timeout = limits.handshake_message_timeout;
    let mut fut = pin!(fut);
    let mut total = pin!(tokio::time::sleep(limits.security_timeout));
    let mut message = pin!(tokio::time::sleep_until(watch.message_deadline(timeout)));
    poll_fn(|cx| {
        if let Poll::Ready(r) = fut.as_mut().poll(cx) {
            return Poll::Ready(Ok(r));
        }
        if total.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(UpgradeError::Timeout(Step::SecurityHandshake)));
        }
        while message.as_mut().poll(cx).is_ready() {
            let deadline = watch.message_deadline(timeout);
            if deadline <= Instant::now() {
                return Poll::Ready(Err(UpgradeError::Timeout(Step::SecurityMessage)));
            }
            // We wrote since the timer was set: wait from that write.
            message.as_mut().reset(deadline);
        }
        Poll::Pending
    })
    .await
}
