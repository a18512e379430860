//! [`BanList`]: the built-in gate's ban tables (peer ids and IPs, each with an
//! expiry).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use plexus_core::PeerId;
use plexus_multiaddr::{Multiaddr, Protocol};
use tokio::time::Instant;

/// A ban far in the future stands for "forever" (an `Instant` cannot hold an
/// arbitrary duration).
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

#[derive(Debug, Clone, Copy)]
struct PeerBan {
    until: Instant,
    /// Also ban every IP this peer is seen at while the ban lasts.
    with_ip: bool,
}

#[derive(Debug, Clone, Copy)]
struct IpBan {
    until: Instant,
    /// The peer ban this IP ban comes from (removed with it by `unban_peer`).
    source: Option<PeerId>,
}

#[derive(Debug, Default)]
struct Tables {
    peers: HashMap<PeerId, PeerBan>,
    ips: HashMap<IpAddr, IpBan>,
    /// The IP each peer was last authenticated from (bounded), so a peer can
    /// be banned together with its IP after it disconnected.
    last_ip: HashMap<PeerId, (IpAddr, Instant)>,
}

/// The ban list of the built-in gate. Cheap to clone (clones share the
/// tables) and cheap to read: a read lock and a hash lookup, never held across
/// an await.
///
/// - A banned **IP** is refused at the `accept` checkpoint, before any byte is
///   read (no Noise work), and at `addr_dial`.
/// - A banned **peer id** is refused at `secured` (right after the Noise
///   handshake, before the muxer) and at `peer_dial`.
/// - [`BanList::ban_peer_and_ip`] bans a peer id and the IPs it is seen at:
///   its last known IP at once, and any IP it authenticates from while banned.
///   That peer's reconnect attempts from those IPs are then refused at
///   `accept`, without a handshake.
///
/// Banning does not close existing connections: call
/// [`Host::disconnect`](crate::Host::disconnect) too.
///
/// Each table holds at most `max_entries`; expired entries are pruned when
/// the table is full and periodically by the host. If still full, the entry
/// expiring soonest makes room.
#[derive(Debug, Clone)]
pub struct BanList {
    tables: Arc<RwLock<Tables>>,
    max_entries: usize,
}

impl BanList {
    /// An empty ban list holding at most `max_entries` per table (at least 1).
    pub fn new(max_entries: usize) -> Self {
        BanList {
            tables: Arc::default(),
            max_entries: max_entries.max(1),
        }
    }

    fn read(&self) -> RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, Tables> {
        self.tables.write().unwrap_or_else(|e| e.into_inner())
    }

    fn until(duration: Duration) -> Instant {
        let now = Instant::now();
        now.checked_add(duration.min(FOREVER))
            .unwrap_or_else(|| now + FOREVER)
    }

    /// Ban `peer` for `duration`: refused at `secured` and `peer_dial`.
    pub fn ban_peer(&self, peer: PeerId, duration: Duration) {
        self.insert_peer(
            peer,
            PeerBan {
                until: Self::until(duration),
                with_ip: false,
            },
        );
    }

    /// Ban `peer` for `duration`, and the IPs it uses: its last seen IP now,
    /// and every IP it authenticates from while the ban lasts (those IP bans
    /// end with the peer ban). A rejected peer's reconnects are then refused at
    /// `accept`, before any Noise work. Honest peers sharing the IP are refused
    /// too: use [`BanList::ban_peer`] when that matters more.
    pub fn ban_peer_and_ip(&self, peer: PeerId, duration: Duration) {
        let until = Self::until(duration);
        self.insert_peer(
            peer,
            PeerBan {
                until,
                with_ip: true,
            },
        );
        let last = self.read().last_ip.get(&peer).map(|(ip, _)| *ip);
        if let Some(ip) = last {
            self.insert_ip(
                ip,
                IpBan {
                    until,
                    source: Some(peer),
                },
            );
        }
    }

    /// Ban `ip` for `duration`: refused at `accept` and `addr_dial`.
    pub fn ban_ip(&self, ip: IpAddr, duration: Duration) {
        self.insert_ip(
            ip,
            IpBan {
                until: Self::until(duration),
                source: None,
            },
        );
    }

    /// Lift the ban of `peer` (and the IP bans that came from it). Returns
    /// whether it was banned.
    pub fn unban_peer(&self, peer: &PeerId) -> bool {
        let mut t = self.write();
        t.ips.retain(|_, b| b.source.as_ref() != Some(peer));
        t.peers.remove(peer).is_some()
    }

    /// Lift the ban of `ip`. Returns whether it was banned.
    pub fn unban_ip(&self, ip: &IpAddr) -> bool {
        self.write().ips.remove(ip).is_some()
    }

    /// Whether `peer` is banned now.
    pub fn is_banned_peer(&self, peer: &PeerId) -> bool {
        let now = Instant::now();
        self.read().peers.get(peer).is_some_and(|b| b.until > now)
    }

    /// Whether `ip` is banned now.
    pub fn is_banned_ip(&self, ip: &IpAddr) -> bool {
        let now = Instant::now();
        self.read().ips.get(ip).is_some_and(|b| b.until > now)
    }

    /// Whether the IP of `addr` (its first component) is banned now.
    pub fn is_banned_addr(&self, addr: &Multiaddr) -> bool {
        ip_of(addr).is_some_and(|ip| self.is_banned_ip(&ip))
    }

    /// The peers banned now.
    pub fn banned_peers(&self) -> Vec<PeerId> {
        let now = Instant::now();
        let t = self.read();
        t.peers
            .iter()
            .filter(|(_, b)| b.until > now)
            .map(|(p, _)| *p)
            .collect()
    }

    /// The IPs banned now.
    pub fn banned_ips(&self) -> Vec<IpAddr> {
        let now = Instant::now();
        let t = self.read();
        t.ips
            .iter()
            .filter(|(_, b)| b.until > now)
            .map(|(ip, _)| *ip)
            .collect()
    }

    /// Drop expired bans.
    pub fn prune(&self) {
        let now = Instant::now();
        let mut t = self.write();
        t.peers.retain(|_, b| b.until > now);
        t.ips.retain(|_, b| b.until > now);
    }

    /// The built-in `secured` check: whether `peer` (authenticated from
    /// `remote`) is banned. Records the peer's IP; if the peer is banned with
    /// its IPs, the IP is banned until the peer ban ends.
    pub(crate) fn check_secured(&self, peer: &PeerId, remote: &Multiaddr) -> bool {
        let now = Instant::now();
        let ip = ip_of(remote);
        let ban = self.read().peers.get(peer).copied();
        match ban {
            Some(b) if b.until > now => {
                if b.with_ip
                    && let Some(ip) = ip
                {
                    self.insert_ip(
                        ip,
                        IpBan {
                            until: b.until,
                            source: Some(*peer),
                        },
                    );
                }
                true
            }
            _ => {
                if let Some(ip) = ip {
                    self.observe(*peer, ip, now);
                }
                false
            }
        }
    }

    fn observe(&self, peer: PeerId, ip: IpAddr, now: Instant) {
        let mut t = self.write();
        if t.last_ip.len() >= self.max_entries
            && !t.last_ip.contains_key(&peer)
            && let Some(oldest) = t
                .last_ip
                .iter()
                .min_by_key(|(_, (_, at))| *at)
                .map(|(p, _)| *p)
        {
            t.last_ip.remove(&oldest);
        }
        t.last_ip.insert(peer, (ip, now));
    }

    fn insert_peer(&self, peer: PeerId, ban: PeerBan) {
        let now = Instant::now();
        let mut t = self.write();
        if t.peers.len() >= self.max_entries && !t.peers.contains_key(&peer) {
            t.peers.retain(|_, b| b.until > now);
            if t.peers.len() >= self.max_entries
                && let Some(p) = t.peers.iter().min_by_key(|(_, b)| b.until).map(|(p, _)| *p)
            {
                t.peers.remove(&p);
            }
        }
        t.peers.insert(peer, ban);
    }

    fn insert_ip(&self, ip: IpAddr, ban: IpBan) {
        let now = Instant::now();
        let mut t = self.write();
        if t.ips.len() >= self.max_entries && !t.ips.contains_key(&ip) {
            t.ips.retain(|_, b| b.until > now);
            if t.ips.len() >= self.max_entries
                && let Some(k) = t.ips.iter().min_by_key(|(_, b)| b.until).map(|(k, _)| *k)
            {
                t.ips.remove(&k);
            }
        }
        // Never shorten an existing ban.
        match t.ips.get_mut(&ip) {
            Some(old) if old.until >= ban.until => {}
            _ => {
                t.ips.insert(ip, ban);
            }
        }
    }
}

/// The IP of an address whose first component is `/ip4` or `/ip6`.
pub(crate) fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(*ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bans_expire_and_are_bounded() {
        let bans = BanList::new(2);
        let (a, b, c) = (PeerId::random(), PeerId::random(), PeerId::random());
        bans.ban_peer(a, Duration::from_secs(10));
        bans.ban_peer(b, Duration::from_secs(20));
        assert!(bans.is_banned_peer(&a) && bans.is_banned_peer(&b));
        // Full: the ban expiring soonest (a) makes room.
        bans.ban_peer(c, Duration::from_secs(30));
        assert!(!bans.is_banned_peer(&a));
        assert!(bans.is_banned_peer(&b) && bans.is_banned_peer(&c));
        tokio::time::advance(Duration::from_secs(21)).await;
        assert!(!bans.is_banned_peer(&b));
        assert!(bans.is_banned_peer(&c));
        bans.prune();
        assert_eq!(bans.banned_peers(), vec![c]);
        assert!(bans.unban_peer(&c));
        assert!(!bans.is_banned_peer(&c));
    }

    #[tokio::test(start_paused = true)]
    async fn peer_and_ip_ban_learns_ips_and_unbans_them() {
        let bans = BanList::new(16);
        let p = PeerId::random();
        let addr1: Multiaddr = "/ip4/10.0.0.1/tcp/1".parse().unwrap();
        let addr2: Multiaddr = "/ip4/10.0.0.2/tcp/1".parse().unwrap();
        assert!(!bans.check_secured(&p, &addr1));
        bans.ban_peer_and_ip(p, Duration::from_secs(60));
        assert!(bans.is_banned_addr(&addr1), "last seen IP banned at once");
        assert!(!bans.is_banned_addr(&addr2));
        // The peer shows up from another IP: refused, and that IP is learnt.
        assert!(bans.check_secured(&p, &addr2));
        assert!(bans.is_banned_addr(&addr2));
        // A plain IP ban is kept when the peer is unbanned.
        let other: IpAddr = "10.0.0.3".parse().unwrap();
        bans.ban_ip(other, Duration::from_secs(60));
        assert!(bans.unban_peer(&p));
        assert!(!bans.is_banned_addr(&addr1) && !bans.is_banned_addr(&addr2));
        assert!(bans.is_banned_ip(&other));
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(!bans.is_banned_ip(&other));
    }

    #[tokio::test(start_paused = true)]
    async fn plain_peer_ban_does_not_touch_ips() {
        let bans = BanList::new(16);
        let p = PeerId::random();
        let addr: Multiaddr = "/ip4/10.0.0.1/tcp/1".parse().unwrap();
        assert!(!bans.check_secured(&p, &addr));
        bans.ban_peer(p, Duration::MAX);
        assert!(bans.check_secured(&p, &addr));
        assert!(!bans.is_banned_addr(&addr));
    }
}
