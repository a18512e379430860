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
//! runs under a timeout from [`Limits`].
//!
//! With a single security protocol the dialer uses multistream's lazy select:
//! the Noise first message follows the `/noise` proposal in the same write,
//! saving a round trip. The muxer is taken from the Noise handshake when both
//! sides offered muxers there (inlined muxer negotiation), which saves the
//! muxer's multistream round trip too.
#![forbid(unsafe_code)]

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use plexus_core::{
    Blame, BoxIo, ConnInfo, ConnectionGater, DenyReason, Limits, MuxedConn, MuxerUpgrade, PeerId,
    PendingInbound, RawConn, Role, SecurityError, SecurityUpgrade, Transport, TransportError,
    Verdict,
};
use plexus_multiaddr::Multiaddr;
use plexus_multistream::{self as mss, NegotiationError};

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
            | UpgradeError::Transport(_)
            | UpgradeError::NoTransport(_) => Blame::Local,
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
        let raw = transport.dial(addr).await?;
        self.upgrade_outbound(raw, expect).await
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
        let raw = pending.finish().await?;
        self.upgrade_inbound(raw).await
    }

    /// Upgrade a connection we dialed.
    pub async fn upgrade_outbound(
        &self,
        raw: RawConn,
        expect: Option<PeerId>,
    ) -> Result<Connection, UpgradeError> {
        self.upgrade(raw, Role::Initiator, expect).await
    }

    /// Upgrade a connection the remote dialed (already past `accept`).
    pub async fn upgrade_inbound(&self, raw: RawConn) -> Result<Connection, UpgradeError> {
        self.upgrade(raw, Role::Responder, None).await
    }

    async fn upgrade(
        &self,
        raw: RawConn,
        role: Role,
        expect: Option<PeerId>,
    ) -> Result<Connection, UpgradeError> {
        let RawConn {
            io,
            local_addr,
            remote_addr,
        } = raw;
        let limits = &self.limits;
        let sec_proto = self.security.protocol();

        // 1. Security protocol. One protocol: the dialer proposes lazily, and
        //    the handshake's first message rides along with the proposal.
        let io: BoxIo = match role {
            Role::Initiator => Box::new(mss::dialer_select_lazy(io, sec_proto, &self.mss)),
            Role::Responder => {
                let (_, io) = timed(
                    limits.negotiation_timeout,
                    Step::SecurityNegotiation,
                    mss::listener_select(io, &[sec_proto], &self.mss),
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
        let secured = timed(
            limits.security_timeout,
            Step::SecurityHandshake,
            self.security.secure(io, role, expect, offered),
        )
        .await??;
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
