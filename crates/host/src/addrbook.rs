//! The address book: transport addresses (no `/p2p`) remembered per peer for
//! later dials, bounded per peer ([`HostLimits::max_addrs_per_peer`], oldest
//! dropped first) and in peers ([`HostLimits::max_address_book_peers`], a
//! peer that is not connected makes room).
//!
//! [`HostLimits::max_addrs_per_peer`]: crate::HostLimits::max_addrs_per_peer
//! [`HostLimits::max_address_book_peers`]: crate::HostLimits::max_address_book_peers

use plexus_core::PeerId;
use plexus_multiaddr::Multiaddr;

use crate::inner::{Inner, State};

impl Inner {
    /// Remember `addrs` of `peer` (a `/p2p` suffix is removed; nothing is
    /// kept for our own peer id), under the host's lock.
    pub(crate) fn add_addrs_locked(&self, st: &mut State, peer: PeerId, addrs: &[Multiaddr]) {
        let addrs: Vec<Multiaddr> = addrs
            .iter()
            .map(Multiaddr::without_p2p)
            .filter(|a| !a.is_empty())
            .collect();
        if addrs.is_empty() || peer == self.local_peer {
            return;
        }
        if !st.addrs.contains_key(&peer) && st.addrs.len() >= self.limits.max_address_book_peers {
            let victim = st.addrs.keys().find(|p| !st.conns.contains_key(p)).copied();
            match victim {
                Some(v) => {
                    st.addrs.remove(&v);
                }
                None => return,
            }
        }
        let max = self.limits.max_addrs_per_peer.max(1);
        let list = st.addrs.entry(peer).or_default();
        for a in addrs {
            if !list.contains(&a) {
                list.push(a);
            }
        }
        if list.len() > max {
            let excess = list.len() - max;
            list.drain(..excess);
        }
    }

    /// Remember `addrs` of `peer` (see [`Inner::add_addrs_locked`]).
    pub(crate) fn add_addrs(&self, peer: PeerId, addrs: &[Multiaddr]) {
        let mut st = self.lock();
        self.add_addrs_locked(&mut st, peer, addrs);
    }
}
