//! [`PeerManagerGate`]: the peer manager's connection gater and dial ranker. It reads an
//! immutable [`GateSnapshot`] the peer manager publishes after each change: no lock is
//! held beyond a pointer copy, and nothing waits on the peer manager's task.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock};
use std::time::Instant;

use plexus_core::{ConnInfo, ConnectionGater, DenyReason, Direction, PeerId, Verdict};
use plexus_host::DialRanker;
use plexus_multiaddr::{Multiaddr, Protocol};

use crate::manager::ip_of;
use crate::metrics::PeerManagerMetrics;

/// What the gate knows: who is held back until when, which IPs are refused at accept,
/// and whether inbound is full.
#[derive(Debug, Clone, Default)]
pub struct GateSnapshot {
    /// Peers banned or held back by a Goodbye or churn, with the end of it: refused at
    /// `secured` (their own connections).
    pub peers: HashMap<PeerId, Instant>,
    /// Peers we do not dial (every backoff, bans), with the end of it: refused at
    /// `peer_dial` and given no address by the ranker.
    pub no_dial: HashMap<PeerId, Instant>,
    /// IPs refused at `accept`: IPs whose only known peers are held back, and IPs banned
    /// on evidence.
    pub ips: HashMap<IpAddr, Instant>,
    /// Connected peers at `max_peers`, or inbound peers at `max_inbound`: new inbound
    /// connections are refused at `accept`, before any crypto.
    pub inbound_full: bool,
}

/// The gater and ranker the host calls; cheap to clone.
#[derive(Clone)]
pub struct PeerManagerGate {
    snap: Arc<RwLock<Arc<GateSnapshot>>>,
    app: Option<Arc<dyn ConnectionGater>>,
    metrics: PeerManagerMetrics,
}

impl std::fmt::Debug for PeerManagerGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerManagerGate").finish_non_exhaustive()
    }
}

impl PeerManagerGate {
    /// A gate that allows everything until the first snapshot; `app` (the client's own
    /// gater, if any) is asked after the peer manager allowed a connection.
    pub fn new(metrics: PeerManagerMetrics, app: Option<Arc<dyn ConnectionGater>>) -> Self {
        PeerManagerGate {
            snap: Arc::default(),
            app,
            metrics,
        }
    }

    /// Publish a new snapshot.
    pub fn publish(&self, snap: Arc<GateSnapshot>) {
        *self.snap.write().unwrap_or_else(|e| e.into_inner()) = snap;
    }

    fn current(&self) -> Arc<GateSnapshot> {
        self.snap.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn refused(&self, peer: &PeerId) -> bool {
        self.current()
            .peers
            .get(peer)
            .is_some_and(|u| *u > Instant::now())
    }

    fn no_dial(&self, peer: &PeerId) -> bool {
        self.current()
            .no_dial
            .get(peer)
            .is_some_and(|u| *u > Instant::now())
    }
}

impl ConnectionGater for PeerManagerGate {
    fn peer_dial(&self, peer: &PeerId) -> Verdict {
        if self.no_dial(peer) {
            self.metrics.refusal("peer_backoff", "peer_dial", true);
            return Verdict::Deny(DenyReason::Other("peer_backoff"));
        }
        self.app
            .as_ref()
            .map_or(Verdict::Allow, |g| g.peer_dial(peer))
    }

    fn addr_dial(&self, peer: Option<&PeerId>, addr: &Multiaddr) -> Verdict {
        self.app
            .as_ref()
            .map_or(Verdict::Allow, |g| g.addr_dial(peer, addr))
    }

    fn accept(&self, local: &Multiaddr, remote: &Multiaddr) -> Verdict {
        let snap = self.current();
        if let Some(ip) = ip_of(remote)
            && snap.ips.get(&ip).is_some_and(|u| *u > Instant::now())
        {
            self.metrics.refusal("ip_backoff", "accept", true);
            return Verdict::Deny(DenyReason::Other("ip_backoff"));
        }
        if snap.inbound_full {
            self.metrics.refusal("full", "accept", false);
            return Verdict::Deny(DenyReason::PeerCap);
        }
        self.app
            .as_ref()
            .map_or(Verdict::Allow, |g| g.accept(local, remote))
    }

    fn secured(&self, direction: Direction, peer: &PeerId, remote: &Multiaddr) -> Verdict {
        if self.refused(peer) {
            self.metrics.refusal("peer_backoff", "secured", true);
            return Verdict::Deny(DenyReason::Other("peer_backoff"));
        }
        if direction == Direction::Inbound && self.current().inbound_full {
            self.metrics.refusal("full", "secured", false);
            return Verdict::Deny(DenyReason::PeerCap);
        }
        self.app
            .as_ref()
            .map_or(Verdict::Allow, |g| g.secured(direction, peer, remote))
    }

    fn upgraded(&self, conn: &ConnInfo) -> Verdict {
        self.app
            .as_ref()
            .map_or(Verdict::Allow, |g| g.upgraded(conn))
    }
}

impl DialRanker for PeerManagerGate {
    /// No address for a peer that is banned or in backoff (it is not dialed at all);
    /// otherwise QUIC addresses first (the consensus spec's preference), each group in
    /// the given order.
    fn rank(&self, peer: Option<&PeerId>, addrs: Vec<Multiaddr>) -> Vec<Multiaddr> {
        if let Some(p) = peer
            && self.no_dial(p)
        {
            self.metrics.refusal("peer_backoff", "rank", true);
            return Vec::new();
        }
        let (mut quic, other): (Vec<_>, Vec<_>) = addrs
            .into_iter()
            .partition(|a| a.iter().any(|p| matches!(p, Protocol::QuicV1)));
        quic.extend(other);
        quic
    }
}
