//! The host's gater: the built-in checks (ban list, peer cap) first, then the
//! application's gater, at each of the five checkpoints; every refusal is
//! counted by reason and checkpoint.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use plexus_conn::Checkpoint;
use plexus_core::{ConnInfo, ConnectionGater, DenyReason, Direction, PeerId, Verdict};
use plexus_multiaddr::Multiaddr;

use crate::bans::BanList;
use crate::metrics::{HostMetrics, checkpoint_label};

/// State shared by the gate and the pool.
pub(crate) struct GateShared {
    pub(crate) bans: BanList,
    pub(crate) metrics: HostMetrics,
    pub(crate) app: Option<Arc<dyn ConnectionGater>>,
    /// Established inbound connections (kept by the pool, read here).
    pub(crate) established_in: AtomicUsize,
    pub(crate) max_inbound: usize,
}

/// The gater handed to the upgrader (and called directly at accept).
pub(crate) struct HostGate(pub(crate) Arc<GateShared>);

fn reason_label(r: &DenyReason) -> &'static str {
    match r {
        DenyReason::BannedPeer => "banned_peer",
        DenyReason::BannedAddr => "banned_ip",
        DenyReason::PeerCap => "peer_cap",
        DenyReason::Other(_) => "app",
    }
}

impl HostGate {
    fn decide(
        &self,
        checkpoint: Checkpoint,
        builtin: Option<DenyReason>,
        app: impl FnOnce(&dyn ConnectionGater) -> Verdict,
    ) -> Verdict {
        let cp = checkpoint_label(checkpoint);
        if let Some(reason) = builtin {
            self.0.metrics.refusal(reason_label(&reason), cp);
            return Verdict::Deny(reason);
        }
        if let Some(g) = &self.0.app
            && let Verdict::Deny(reason) = app(g.as_ref())
        {
            self.0.metrics.refusal("app", cp);
            return Verdict::Deny(reason);
        }
        Verdict::Allow
    }
}

impl ConnectionGater for HostGate {
    fn peer_dial(&self, peer: &PeerId) -> Verdict {
        let builtin = self
            .0
            .bans
            .is_banned_peer(peer)
            .then_some(DenyReason::BannedPeer);
        self.decide(Checkpoint::PeerDial, builtin, |g| g.peer_dial(peer))
    }

    fn addr_dial(&self, peer: Option<&PeerId>, addr: &Multiaddr) -> Verdict {
        let builtin = self
            .0
            .bans
            .is_banned_addr(addr)
            .then_some(DenyReason::BannedAddr);
        self.decide(Checkpoint::AddrDial, builtin, |g| g.addr_dial(peer, addr))
    }

    fn accept(&self, local: &Multiaddr, remote: &Multiaddr) -> Verdict {
        let builtin = if self.0.bans.is_banned_addr(remote) {
            Some(DenyReason::BannedAddr)
        } else if self.0.established_in.load(Ordering::Relaxed) >= self.0.max_inbound {
            Some(DenyReason::PeerCap)
        } else {
            None
        };
        self.decide(Checkpoint::Accept, builtin, |g| g.accept(local, remote))
    }

    fn secured(&self, direction: Direction, peer: &PeerId, remote: &Multiaddr) -> Verdict {
        let builtin = if self.0.bans.check_secured(peer, remote) {
            Some(DenyReason::BannedPeer)
        } else if self.0.bans.is_banned_addr(remote) {
            // A dial to a name that resolved to a banned IP.
            Some(DenyReason::BannedAddr)
        } else {
            None
        };
        self.decide(Checkpoint::Secured, builtin, |g| {
            g.secured(direction, peer, remote)
        })
    }

    fn upgraded(&self, conn: &ConnInfo) -> Verdict {
        self.decide(Checkpoint::Upgraded, None, |g| g.upgraded(conn))
    }
}
