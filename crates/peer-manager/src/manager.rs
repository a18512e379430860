//! [`PeerManager`]: the sans-IO core. Events and `now` in; [`Action`]s, a gate snapshot
//! and the next timeout out. No tokio, no sockets: the service ([`crate::service`]) runs
//! it against a host, and the tests run it in virtual time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use plexus_core::{Blame, Direction, PeerId};
use plexus_eth::{Epoch, ForkDigest, GoodbyeReason, Slot};
use plexus_multiaddr::{Multiaddr, Protocol};

use crate::config::PeerManagerConfig;
use crate::gate::GateSnapshot;
use crate::metrics::PeerManagerMetrics;
use crate::score::{PeerAction, ReportSource, Score, ScoreState};

/// What the peer manager asks its driver to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Dial the peer (its known addresses; the host's ranker orders them).
    Dial {
        /// The peer.
        peer: PeerId,
        /// Its addresses.
        addrs: Vec<Multiaddr>,
    },
    /// Ask the peer for its Status (sending ours).
    RequestStatus(PeerId),
    /// Send Goodbye with the reason, then close the connection (after at most
    /// `goodbye_timeout`).
    Goodbye {
        /// The peer.
        peer: PeerId,
        /// Why.
        reason: GoodbyeReason,
    },
    /// Close the connection without a Goodbye (the peer said goodbye first).
    Disconnect(PeerId),
    /// Put the peer id in the host's ban list for `duration`.
    Ban {
        /// The peer.
        peer: PeerId,
        /// For how long.
        duration: Duration,
    },
    /// Put an IP in the host's ban list (explicit evidence: several banned peers at it).
    BanIp {
        /// The IP.
        ip: IpAddr,
        /// For how long.
        duration: Duration,
    },
    /// Tell gossipsub whether the peer may join meshes (Status accepted).
    SetAccepted {
        /// The peer.
        peer: PeerId,
        /// Accepted or not.
        accepted: bool,
    },
    /// Ping the peer (its answer goes to [`PeerManager::on_ping`]).
    Ping(PeerId),
    /// Ask the peer for its MetaData.
    RequestMetadata(PeerId),
}

/// The parts of a peer's Status the peer manager uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerStatus {
    /// Its fork digest.
    pub fork_digest: ForkDigest,
    /// Its finalized epoch.
    pub finalized_epoch: Epoch,
    /// Its head slot.
    pub head_slot: Slot,
}

/// The parts of a peer's MetaData the peer manager uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PeerMetadata {
    /// Sequence number.
    pub seq_number: u64,
    /// Long-lived attestation subnets, bit i = subnet i.
    pub attnets: u64,
    /// Sync committee subnets, bit i = subnet i.
    pub syncnets: u8,
    /// Custody group count (0 before Fulu).
    pub custody_group_count: u64,
    /// The data columns it custodies, bit i = column i (of 128): set by the peer manager
    /// on receipt from the peer's node id and `custody_group_count` (the spec's
    /// `get_custody_groups`); empty for peers without a secp256k1 key.
    pub custody_columns: u128,
}

/// What discovery says a peer serves before we connect: its ENR's `attnets`, `syncnets`
/// and `cgc` (custody group count) fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Advertised {
    /// Long-lived attestation subnets, bit i = subnet i.
    pub attnets: u64,
    /// Sync committee subnets, bit i = subnet i.
    pub syncnets: u8,
    /// Custody group count (0 before Fulu).
    pub custody_group_count: u64,
}

/// The data columns `peer` custodies with `custody_group_count` groups, as a bit set
/// (the spec's `get_custody_groups` on its node id); empty for peers without a secp256k1
/// key.
fn custody_bits(peer: &PeerId, custody_group_count: u64) -> u128 {
    plexus_eth::peer_custody_columns(peer, custody_group_count)
        .unwrap_or_default()
        .into_iter()
        .filter(|c| *c < 128)
        .fold(0u128, |acc, c| acc | 1u128 << c)
}

/// The subnets we need peers on (the client sets them from its duties).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubnetNeeds {
    /// Attestation subnets, bit i = subnet i.
    pub attnets: u64,
    /// Sync committee subnets, bit i = subnet i.
    pub syncnets: u8,
    /// Data columns we need peers custodying (our custody and sampling columns), bit i =
    /// column i.
    pub columns: u128,
}

/// Indices of needs in the coverage table: attestation subnets 0..64, sync committee
/// subnets 64..68, columns 68..196.
const NEED_IDS: usize = 64 + 4 + 128;

impl SubnetNeeds {
    /// How many of our needed subnets `m` covers.
    fn covered(&self, m: &PeerMetadata) -> u32 {
        (self.attnets & m.attnets).count_ones()
            + (self.syncnets & m.syncnets).count_ones()
            + (self.columns & m.custody_columns).count_ones()
    }

    /// The needs `m` covers, as indices (see [`NEED_IDS`]).
    fn covered_ids(&self, m: &PeerMetadata) -> impl Iterator<Item = usize> + use<> {
        let att = self.attnets & m.attnets;
        let sync = self.syncnets & m.syncnets;
        let cols = self.columns & m.custody_columns;
        (0..64)
            .filter(move |i| att >> i & 1 == 1)
            .chain((0..4).filter(move |i| sync >> i & 1 == 1).map(|i| 64 + i))
            .chain((0..128).filter(move |i| cols >> i & 1 == 1).map(|i| 68 + i))
    }
}

/// A peer [`PeerManager::dial_deficit`] may dial, with what ranks it.
struct DialCandidate {
    id: PeerId,
    trusted: bool,
    subnets: Option<PeerMetadata>,
    score: f64,
    succeeded: bool,
    last_failure: Option<Instant>,
    /// [`PeerManager::tie`], computed once.
    tie: u64,
}

/// Why a peer is held back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackoffReason {
    /// A Goodbye was sent or received.
    Goodbye(GoodbyeReason),
    /// It disconnected without a Goodbye.
    Disconnected,
    /// Our dials failed.
    DialFailed,
    /// It disconnected without a Goodbye too often (`max_plain_disconnects` within
    /// `reconnect_backoff`).
    Churn,
}

impl BackoffReason {
    /// Whether the backoff also refuses the peer's own connections (at the gate), or only
    /// keeps us from dialing it.
    pub fn refuses_inbound(self) -> bool {
        matches!(self, BackoffReason::Goodbye(_) | BackoffReason::Churn)
    }
}

/// The Status handshake of a connected peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusState {
    /// Not yet exchanged; `requested` once we asked.
    Pending {
        /// Connected at.
        since: Instant,
        /// We sent our request.
        requested: bool,
    },
    /// Accepted: in gossip meshes, counted toward the target.
    Accepted,
    /// Rejected (a Goodbye is on its way).
    Rejected,
}

/// A peer's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Not connected.
    Disconnected,
    /// We are dialing it.
    Dialing,
    /// Connected.
    Connected {
        /// Who dialed.
        direction: Direction,
        /// Since when.
        since: Instant,
        /// The Status handshake.
        status: StatusState,
        /// A Goodbye was sent or the close is under way: no longer counted.
        closing: bool,
    },
}

/// Dial history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DialHistory {
    /// Successful dials.
    pub successes: u32,
    /// Failures since the last success.
    pub consecutive_failures: u32,
    /// The last failure.
    pub last_failure: Option<Instant>,
}

/// Everything the store keeps about a peer.
#[derive(Debug, Clone)]
pub struct PeerInfo {
    /// Known addresses (at most `max_addrs_per_peer`, newest last).
    pub addrs: Vec<Multiaddr>,
    /// The connection.
    pub conn: ConnState,
    /// The IP of its last connection.
    pub last_ip: Option<IpAddr>,
    /// Its last Status.
    pub status: Option<PeerStatus>,
    /// Its last MetaData.
    pub metadata: Option<PeerMetadata>,
    /// What discovery advertised for it (used until its MetaData arrives).
    pub advertised: Option<PeerMetadata>,
    /// Its agent version (identify).
    pub agent: Option<String>,
    /// Its score.
    pub score: Score,
    /// Banned until.
    pub ban_until: Option<Instant>,
    /// Held back until, and why.
    pub backoff: Option<(Instant, BackoffReason)>,
    /// The last Goodbye: its reason, whether we sent it, when.
    pub last_goodbye: Option<(GoodbyeReason, bool, Instant)>,
    /// Dial history.
    pub dials: DialHistory,
    /// Last connected or disconnected.
    pub last_seen: Instant,
    /// Never pruned, never scored out, always dialed.
    pub trusted: bool,
    last_ping: Option<Instant>,
    /// Status requests that failed locally on this connection.
    status_failures: u8,
    /// Disconnects without a Goodbye, and when the count started.
    plain_disconnects: (u8, Instant),
}

impl PeerInfo {
    fn new(now: Instant) -> Self {
        PeerInfo {
            addrs: Vec::new(),
            conn: ConnState::Disconnected,
            last_ip: None,
            status: None,
            metadata: None,
            advertised: None,
            agent: None,
            score: Score::new(now),
            ban_until: None,
            backoff: None,
            last_goodbye: None,
            dials: DialHistory::default(),
            last_seen: now,
            trusted: false,
            last_ping: None,
            status_failures: 0,
            plain_disconnects: (0, now),
        }
    }

    /// The subnets it serves, as far as we know: its MetaData, else what discovery
    /// advertised.
    pub fn subnets(&self) -> Option<PeerMetadata> {
        self.metadata.or(self.advertised)
    }

    /// Connected and not closing.
    pub fn is_live(&self) -> bool {
        matches!(self.conn, ConnState::Connected { closing: false, .. })
    }

    /// Connected, not closing, Status accepted.
    pub fn is_accepted(&self) -> bool {
        matches!(
            self.conn,
            ConnState::Connected {
                closing: false,
                status: StatusState::Accepted,
                ..
            }
        )
    }

    fn direction(&self) -> Option<Direction> {
        match self.conn {
            ConnState::Connected {
                direction,
                closing: false,
                ..
            } => Some(direction),
            _ => None,
        }
    }

    /// Banned or backed off at `now`: not dialed.
    pub fn held_until(&self, now: Instant) -> Option<Instant> {
        let ban = self.ban_until.filter(|&u| u > now);
        let back = self.backoff.map(|(u, _)| u).filter(|&u| u > now);
        ban.max(back)
    }

    /// Banned, or backed off for a reason that also refuses its own connections (a
    /// Goodbye, churn), at `now`: refused at the gate. A plain disconnect or a failed dial
    /// only stops our dials.
    pub fn refused_until(&self, now: Instant) -> Option<Instant> {
        let ban = self.ban_until.filter(|&u| u > now);
        let back = self
            .backoff
            .filter(|(u, r)| *u > now && r.refuses_inbound())
            .map(|(u, _)| u);
        ban.max(back)
    }
}

/// Why a Status was not accepted (for the client's own checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusVerdict {
    /// The peer is on our chain.
    Relevant,
    /// The peer is on another network or chain.
    Irrelevant,
}

/// The peer manager's state machine.
#[derive(Debug)]
pub struct PeerManager {
    cfg: PeerManagerConfig,
    peers: HashMap<PeerId, PeerInfo>,
    actions: VecDeque<Action>,
    fork_digests: Vec<ForkDigest>,
    needs: SubnetNeeds,
    next_heartbeat: Instant,
    banned_ips: HashMap<IpAddr, Instant>,
    started: Instant,
    target_reached: bool,
    gate_dirty: bool,
    /// Statuses that arrived before the host's `Connected` event (the two travel on
    /// different channels), applied when it comes. Bounded.
    early_status: HashMap<PeerId, (PeerStatus, StatusVerdict, Instant)>,
    metrics: PeerManagerMetrics,
    /// Salt of the last tie-break between equally ranked peers (see
    /// [`PeerManager::set_tie_break_salt`]).
    salt: u64,
}

/// Longest agent version kept (bytes).
const MAX_AGENT_LEN: usize = 64;
/// Statuses kept for peers whose `Connected` has not been seen yet.
const MAX_EARLY_STATUS: usize = 256;
/// How long such a status is kept.
const EARLY_STATUS_TTL: Duration = Duration::from_secs(10);

impl PeerManager {
    /// A peer manager starting at `now`. Check the config with
    /// [`PeerManagerConfig::validate`] first.
    pub fn new(cfg: PeerManagerConfig, metrics: PeerManagerMetrics, now: Instant) -> Self {
        PeerManager {
            next_heartbeat: now + cfg.heartbeat_interval,
            cfg,
            peers: HashMap::new(),
            actions: VecDeque::new(),
            fork_digests: Vec::new(),
            needs: SubnetNeeds::default(),
            banned_ips: HashMap::new(),
            started: now,
            target_reached: false,
            gate_dirty: true,
            early_status: HashMap::new(),
            metrics,
            salt: 0,
        }
    }

    /// The config.
    pub fn config(&self) -> &PeerManagerConfig {
        &self.cfg
    }

    /// A peer's entry.
    pub fn peer(&self, peer: &PeerId) -> Option<&PeerInfo> {
        self.peers.get(peer)
    }

    /// Every stored peer.
    pub fn peers(&self) -> impl Iterator<Item = (&PeerId, &PeerInfo)> {
        self.peers.iter()
    }

    /// The next action, if any.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`PeerManager::tick`] should next run.
    pub fn next_timeout(&self) -> Instant {
        let mut t = self.next_heartbeat;
        for p in self.peers.values() {
            if let ConnState::Connected {
                status:
                    StatusState::Pending {
                        since,
                        requested: false,
                    },
                closing: false,
                ..
            } = p.conn
            {
                t = t.min(since + self.cfg.status_wait);
            }
            if p.is_accepted() {
                let due = p.last_ping.map_or(t, |l| l + self.cfg.ping_interval);
                t = t.min(due);
            }
        }
        t
    }

    /// The fork digests a peer's Status may carry (the current one, and the next
    /// around a fork). Empty: any digest is accepted.
    pub fn set_fork_digests(&mut self, digests: Vec<ForkDigest>) {
        self.fork_digests = digests;
    }

    /// Salt the last tie-break between peers ranked equal for dialing and pruning (a
    /// hash of the salt and the peer id). Nodes with different salts order such peers
    /// differently: with one order everywhere, every node would dial the same peers
    /// first and fill them up. The service sets it from the local peer id; default 0.
    pub fn set_tie_break_salt(&mut self, salt: u64) {
        self.salt = salt;
    }

    /// The salted tie-break rank of `peer`.
    fn tie(&self, peer: &PeerId) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        self.salt.hash(&mut h);
        peer.to_bytes().hash(&mut h);
        h.finish()
    }

    /// The subnets we need peers on.
    pub fn set_needs(&mut self, needs: SubnetNeeds) {
        self.needs = needs;
    }

    /// The number of Status-accepted peers.
    pub fn accepted_count(&self) -> usize {
        self.peers.values().filter(|p| p.is_accepted()).count()
    }

    /// Connected (not closing) peers in `direction` (or both).
    pub fn live_count(&self, direction: Option<Direction>) -> usize {
        self.peers
            .values()
            .filter(|p| p.is_live() && (direction.is_none() || p.direction() == direction))
            .count()
    }

    fn dialing_count(&self) -> usize {
        self.peers
            .values()
            .filter(|p| p.conn == ConnState::Dialing)
            .count()
    }

    fn entry(&mut self, peer: PeerId, now: Instant) -> &mut PeerInfo {
        if !self.peers.contains_key(&peer) {
            self.make_room(now);
        }
        self.peers.entry(peer).or_insert_with(|| PeerInfo::new(now))
    }

    fn add_addrs(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, now: Instant) {
        let max = self.cfg.max_addrs_per_peer.max(1);
        let e = self.entry(peer, now);
        for a in addrs {
            let a = a.without_p2p();
            if a.is_empty() {
                continue;
            }
            e.addrs.retain(|x| *x != a);
            e.addrs.push(a);
        }
        let n = e.addrs.len();
        if n > max {
            e.addrs.drain(..n - max);
        }
    }

    /// A dial candidate (from discovery, the client or a bootnode list).
    pub fn add_candidate(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, now: Instant) {
        self.add_addrs(peer, addrs, now);
    }

    /// A dial candidate from discovery, with the subnets its record advertises: it is
    /// preferred while a needed subnet it serves is short of
    /// [`PeerManagerConfig::target_peers_per_subnet`] peers.
    pub fn add_discovered(
        &mut self,
        peer: PeerId,
        addrs: Vec<Multiaddr>,
        advertised: Advertised,
        now: Instant,
    ) {
        self.add_addrs(peer, addrs, now);
        self.entry(peer, now).advertised = Some(PeerMetadata {
            seq_number: 0,
            attnets: advertised.attnets,
            syncnets: advertised.syncnets,
            custody_group_count: advertised.custody_group_count,
            custody_columns: custody_bits(&peer, advertised.custody_group_count),
        });
    }

    /// A trusted peer: never pruned or scored out, dialed whenever disconnected.
    pub fn add_trusted(&mut self, peer: PeerId, addrs: Vec<Multiaddr>, now: Instant) {
        self.add_addrs(peer, addrs, now);
        self.entry(peer, now).trusted = true;
    }

    /// The peer's agent version (from identify).
    pub fn set_agent(&mut self, peer: &PeerId, agent: String) {
        if let Some(p) = self.peers.get_mut(peer) {
            // The peer chose this string: cut it at a character boundary (`truncate` in
            // the middle of a multibyte character panics).
            let mut end = agent.len().min(MAX_AGENT_LEN);
            while !agent.is_char_boundary(end) {
                end -= 1;
            }
            let mut agent = agent;
            agent.truncate(end);
            p.agent = Some(agent);
        }
    }

    /// A connection to `peer` was established (the host's `Connected`).
    pub fn on_connected(
        &mut self,
        peer: PeerId,
        direction: Direction,
        remote: &Multiaddr,
        now: Instant,
    ) {
        let ip = ip_of(remote);
        let max_peers = self.cfg.max_peers();
        let max_inbound = self.cfg.max_inbound();
        let live = self.live_count(None);
        let live_in = self.live_count(Some(Direction::Inbound));
        let e = self.entry(peer, now);
        if direction == Direction::Outbound {
            e.dials.successes += 1;
            e.dials.consecutive_failures = 0;
        }
        e.last_ip = ip.or(e.last_ip);
        e.last_seen = now;
        e.last_ping = Some(now);
        e.conn = ConnState::Connected {
            direction,
            since: now,
            status: StatusState::Pending {
                since: now,
                requested: direction == Direction::Outbound,
            },
            closing: false,
        };
        let trusted = e.trusted;
        e.status_failures = 0;
        let held = e.refused_until(now).is_some();
        let banned = e.ban_until.is_some_and(|u| u > now);
        let backoff_reason = e.backoff.map(|(_, r)| r);
        self.gate_dirty = true;
        if !trusted {
            // A connection that raced past the gate (both sides dialed at once, or the
            // snapshot was a moment old).
            if banned {
                self.goodbye(peer, GoodbyeReason::Banned, now);
                return;
            }
            if held {
                let reason = match backoff_reason {
                    Some(BackoffReason::Goodbye(r)) => r,
                    _ => GoodbyeReason::TooManyPeers,
                };
                self.goodbye(peer, reason, now);
                return;
            }
            if live >= max_peers || (direction == Direction::Inbound && live_in >= max_inbound) {
                self.goodbye(peer, GoodbyeReason::TooManyPeers, now);
                return;
            }
        }
        if let Some((status, verdict, at)) = self.early_status.remove(&peer)
            && at + EARLY_STATUS_TTL > now
        {
            self.on_status_checked(peer, status, verdict, now);
            return;
        }
        if direction == Direction::Outbound {
            self.actions.push_back(Action::RequestStatus(peer));
        }
    }

    /// The connection to `peer` closed (the host's `Disconnected`).
    pub fn on_disconnected(&mut self, peer: &PeerId, now: Instant) {
        let reconnect = self.cfg.reconnect_backoff;
        let max_plain = self.cfg.max_plain_disconnects;
        let Some(e) = self.peers.get_mut(peer) else {
            return;
        };
        let said_goodbye = e.last_goodbye.is_some_and(
            |(_, _, at)| matches!(e.conn, ConnState::Connected { since, .. } if at >= since),
        );
        e.conn = ConnState::Disconnected;
        e.last_seen = now;
        if e.trusted {
            self.gate_dirty = true;
            return;
        }
        let until = now + reconnect;
        let mut reason = BackoffReason::Disconnected;
        if !said_goodbye {
            // Count disconnects without a Goodbye within the reconnect window; too many
            // and the peer's own connections are refused too.
            let (n, since) = &mut e.plain_disconnects;
            if *since + reconnect <= now {
                *n = 0;
                *since = now;
            }
            *n = n.saturating_add(1);
            if usize::from(*n) >= max_plain {
                reason = BackoffReason::Churn;
            }
        }
        if e.held_until(now).is_none_or(|u| u < until) || reason == BackoffReason::Churn {
            // We do not dial it again before this (and with churn, it is refused).
            let keep = e
                .backoff
                .filter(|(u, r)| *u >= until && r.refuses_inbound());
            e.backoff = Some(keep.unwrap_or((until, reason)));
        }
        self.enforce_caps(now, 0);
        self.gate_dirty = true;
    }

    /// A dial we asked for failed.
    pub fn on_dial_failed(&mut self, peer: &PeerId, now: Instant) {
        let (base, max) = (self.cfg.dial_backoff, self.cfg.max_dial_backoff);
        let Some(e) = self.peers.get_mut(peer) else {
            return;
        };
        if e.conn == ConnState::Dialing {
            e.conn = ConnState::Disconnected;
        }
        e.dials.consecutive_failures = e.dials.consecutive_failures.saturating_add(1);
        e.dials.last_failure = Some(now);
        let exp = e.dials.consecutive_failures.saturating_sub(1).min(20);
        let d = base.saturating_mul(1 << exp).min(max);
        let until = now + d;
        if e.held_until(now).is_none_or(|u| u < until) {
            e.backoff = Some((until, BackoffReason::DialFailed));
        }
        self.enforce_caps(now, 0);
        self.gate_dirty = true;
    }

    /// The peer's Status arrived (its request, or its answer to ours). Checks the fork
    /// digest: a wrong one gets Goodbye(irrelevant network); otherwise the peer is
    /// accepted (into meshes, toward the target) and asked for its MetaData.
    pub fn on_status(&mut self, peer: PeerId, status: PeerStatus, now: Instant) {
        let relevant =
            self.fork_digests.is_empty() || self.fork_digests.contains(&status.fork_digest);
        let verdict = if relevant {
            StatusVerdict::Relevant
        } else {
            StatusVerdict::Irrelevant
        };
        self.on_status_checked(peer, status, verdict, now);
    }

    /// As [`PeerManager::on_status`], with the client's own verdict (e.g. a finalized
    /// checkpoint on another chain).
    pub fn on_status_checked(
        &mut self,
        peer: PeerId,
        status: PeerStatus,
        verdict: StatusVerdict,
        now: Instant,
    ) {
        let connected = self
            .peers
            .get(&peer)
            .is_some_and(|e| matches!(e.conn, ConnState::Connected { .. }));
        if !connected {
            // Its Connected event may still be on its way.
            if self.early_status.len() >= MAX_EARLY_STATUS {
                self.early_status
                    .retain(|_, (_, _, at)| *at + EARLY_STATUS_TTL > now);
            }
            if self.early_status.len() < MAX_EARLY_STATUS {
                self.early_status.insert(peer, (status, verdict, now));
            }
            return;
        }
        let Some(e) = self.peers.get_mut(&peer) else {
            return;
        };
        e.status = Some(status);
        let ConnState::Connected {
            status: st,
            closing: false,
            ..
        } = &mut e.conn
        else {
            return;
        };
        match verdict {
            StatusVerdict::Irrelevant => {
                let was = *st == StatusState::Accepted;
                *st = StatusState::Rejected;
                if was {
                    self.actions.push_back(Action::SetAccepted {
                        peer,
                        accepted: false,
                    });
                }
                self.goodbye(peer, GoodbyeReason::IrrelevantNetwork, now);
            }
            StatusVerdict::Relevant => {
                if matches!(st, StatusState::Pending { .. }) {
                    *st = StatusState::Accepted;
                    self.actions.push_back(Action::SetAccepted {
                        peer,
                        accepted: true,
                    });
                    self.actions.push_back(Action::RequestMetadata(peer));
                    self.gate_dirty = true;
                    if !self.target_reached && self.accepted_count() >= self.cfg.target_peers {
                        self.target_reached = true;
                        self.metrics
                            .set_time_to_target(now.saturating_duration_since(self.started));
                    }
                }
            }
        }
    }

    /// Our Status request to `peer` failed. A local failure (a timeout, a stream lost
    /// with a connection replaced by the simultaneous-dial rule) is retried up to
    /// `status_retries` times; then, or when the peer is to blame, it gets
    /// Goodbye(unable to verify network).
    pub fn on_status_failed(&mut self, peer: PeerId, blame: Blame, now: Instant) {
        self.on_blame(peer, blame, ReportSource::PeerManager, now);
        let retries = self.cfg.status_retries;
        let Some(e) = self.peers.get_mut(&peer) else {
            return;
        };
        if !e.is_live() || e.is_accepted() {
            return;
        }
        if blame == Blame::Local && usize::from(e.status_failures) < retries {
            e.status_failures += 1;
            self.actions.push_back(Action::RequestStatus(peer));
            return;
        }
        self.goodbye(peer, GoodbyeReason::UnableToVerifyNetwork, now);
    }

    /// The peer said Goodbye.
    pub fn on_goodbye(&mut self, peer: PeerId, reason: GoodbyeReason, now: Instant) {
        self.metrics.goodbye(false, reason);
        let backoff = self
            .cfg
            .goodbye_backoff
            .for_reason(reason, self.cfg.ban_duration);
        let Some(e) = self.peers.get_mut(&peer) else {
            return;
        };
        e.last_goodbye = Some((reason, false, now));
        let until = now + backoff;
        if !e.trusted && e.refused_until(now).is_none_or(|u| u < until) {
            e.backoff = Some((until, BackoffReason::Goodbye(reason)));
        }
        if let ConnState::Connected { closing, .. } = &mut e.conn
            && !*closing
        {
            *closing = true;
            self.actions.push_back(Action::Disconnect(peer));
        }
        self.gate_dirty = true;
    }

    /// The client (or a layer) reports what the peer did.
    pub fn report(&mut self, peer: PeerId, action: PeerAction, source: ReportSource, now: Instant) {
        self.metrics.report(source, action);
        let cfg = self.cfg.score.clone();
        let Some(e) = self.peers.get_mut(&peer) else {
            return;
        };
        if e.trusted {
            return;
        }
        e.score.decay(&cfg, now);
        e.score.apply(action);
        self.check_score(peer, now);
    }

    /// An error with a blame from a layer below: a misbehaving peer is penalised
    /// ([`PeerAction::from_blame`]), otherwise nothing.
    pub fn on_blame(&mut self, peer: PeerId, blame: Blame, source: ReportSource, now: Instant) {
        if let Some(a) = PeerAction::from_blame(blame) {
            self.report(peer, a, source, now);
        }
    }

    /// The gossipsub router's score of the peer.
    pub fn set_gossip_score(&mut self, peer: &PeerId, score: f64, now: Instant) {
        if let Some(e) = self.peers.get_mut(peer) {
            e.score.set_gossip(score);
            let p = *peer;
            self.check_score(p, now);
        }
    }

    /// The peer's MetaData arrived. Its custody columns are derived here from its node id.
    pub fn on_metadata(&mut self, peer: &PeerId, md: PeerMetadata) {
        if let Some(e) = self.peers.get_mut(peer) {
            let mut md = md;
            md.custody_columns = custody_bits(peer, md.custody_group_count);
            e.metadata = Some(md);
        }
    }

    /// The peer's ping (its request or its answer) carried `seq`: a newer sequence
    /// number than the MetaData we hold asks for the new MetaData.
    pub fn on_ping(&mut self, peer: PeerId, seq: u64, now: Instant) {
        let Some(e) = self.peers.get_mut(&peer) else {
            return;
        };
        e.last_ping = Some(now);
        if e.is_accepted() && e.metadata.is_none_or(|m| m.seq_number < seq) {
            self.actions.push_back(Action::RequestMetadata(peer));
        }
    }

    fn check_score(&mut self, peer: PeerId, now: Instant) {
        let cfg = &self.cfg;
        let Some(e) = self.peers.get_mut(&peer) else {
            return;
        };
        if e.trusted {
            return;
        }
        match e.score.state(&cfg.score) {
            ScoreState::Healthy => {}
            ScoreState::Ban => {
                if e.ban_until.is_some_and(|u| u > now) {
                    return;
                }
                let until = now + cfg.ban_duration;
                e.ban_until = Some(until);
                e.score.hold(until);
                let ip = e.last_ip;
                let live = e.is_live();
                self.actions.push_back(Action::Ban {
                    peer,
                    duration: cfg.ban_duration,
                });
                self.metrics.ban();
                if live {
                    self.goodbye(peer, GoodbyeReason::Banned, now);
                }
                if let Some(ip) = ip {
                    self.maybe_ban_ip(ip, now);
                }
                self.gate_dirty = true;
            }
            ScoreState::Disconnect => {
                if e.is_live() {
                    self.goodbye(peer, GoodbyeReason::BadScore, now);
                }
            }
        }
    }

    fn maybe_ban_ip(&mut self, ip: IpAddr, now: Instant) {
        let n = self
            .peers
            .values()
            .filter(|p| p.last_ip == Some(ip) && p.ban_until.is_some_and(|u| u > now))
            .count();
        if n >= self.cfg.banned_peers_per_ip && !self.banned_ips.contains_key(&ip) {
            let d = self.cfg.ban_duration;
            self.banned_ips.insert(ip, now + d);
            self.actions.push_back(Action::BanIp { ip, duration: d });
        }
    }

    /// Send Goodbye: the peer is held back for the reason's backoff and no longer counted.
    fn goodbye(&mut self, peer: PeerId, reason: GoodbyeReason, now: Instant) {
        let backoff = self
            .cfg
            .goodbye_backoff
            .for_reason(reason, self.cfg.ban_duration);
        let Some(e) = self.peers.get_mut(&peer) else {
            return;
        };
        let ConnState::Connected { closing, .. } = &mut e.conn else {
            return;
        };
        if *closing {
            return;
        }
        *closing = true;
        e.last_goodbye = Some((reason, true, now));
        let until = now + backoff;
        if !e.trusted && e.refused_until(now).is_none_or(|u| u < until) {
            e.backoff = Some((until, BackoffReason::Goodbye(reason)));
        }
        self.metrics.goodbye(true, reason);
        self.actions.push_back(Action::Goodbye { peer, reason });
        self.gate_dirty = true;
    }

    /// Run timers: inbound peers that sent no Status are asked for it, pings fall due,
    /// and at each heartbeat scores decay, bans end, the excess is pruned, dials start
    /// and the store is trimmed.
    pub fn tick(&mut self, now: Instant) {
        let wait = self.cfg.status_wait;
        let ping = self.cfg.ping_interval;
        for (peer, p) in self.peers.iter_mut() {
            let accepted = p.is_accepted();
            if let ConnState::Connected {
                status: StatusState::Pending { since, requested },
                closing: false,
                ..
            } = &mut p.conn
                && !*requested
                && *since + wait <= now
            {
                *requested = true;
                self.actions.push_back(Action::RequestStatus(*peer));
            }
            if accepted && p.last_ping.is_none_or(|l| l + ping <= now) {
                p.last_ping = Some(now);
                self.actions.push_back(Action::Ping(*peer));
            }
        }
        if now >= self.next_heartbeat {
            self.next_heartbeat = now + self.cfg.heartbeat_interval;
            self.heartbeat(now);
        }
    }

    fn heartbeat(&mut self, now: Instant) {
        let cfg = self.cfg.score.clone();
        let probation = self.cfg.score.disconnect_threshold / 2.0;
        let mut to_check = Vec::new();
        for (peer, p) in self.peers.iter_mut() {
            if let Some(u) = p.ban_until
                && u <= now
            {
                // The ban is over: the peer may come back, on probation.
                p.ban_until = None;
                p.score.set_app(probation, now);
            }
            if p.backoff.is_some_and(|(u, _)| u <= now) {
                p.backoff = None;
            }
            p.score.decay(&cfg, now);
            if p.is_live() {
                to_check.push(*peer);
            }
        }
        self.banned_ips.retain(|_, u| *u > now);
        for peer in to_check {
            self.check_score(peer, now);
        }
        self.prune_excess(now);
        self.dial_deficit(now);
        self.trim_store(now);
        self.metrics.observe(self, now);
        self.gate_dirty = true;
    }

    /// Prune accepted peers above the target, worst first: negative score, then peers
    /// covering none of our needed subnets, then those whose subnets others cover,
    /// lowest score, newest. Trusted peers are never pruned; the outbound floor and
    /// `min_peers_per_subnet` on every needed subnet are kept.
    fn prune_excess(&mut self, now: Instant) {
        let accepted: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| p.is_accepted())
            .map(|(id, _)| *id)
            .collect();
        let target = self.cfg.target_peers;
        if accepted.len() <= target {
            return;
        }
        let mut excess = accepted.len() - target;
        let min_out = self.cfg.min_outbound();
        let mut outbound = self.live_count(Some(Direction::Outbound));
        let mut coverage = [0usize; NEED_IDS];
        for id in &accepted {
            if let Some(m) = self.peers[id].subnets() {
                for s in self.needs.covered_ids(&m) {
                    coverage[s] += 1;
                }
            }
        }
        let cfg = &self.cfg.score;
        let mut order: Vec<(PeerId, bool, u32, f64, Instant, u64)> = accepted
            .iter()
            .filter(|id| !self.peers[*id].trusted)
            .map(|id| {
                let p = &self.peers[id];
                let covered = p.subnets().map_or(0, |m| self.needs.covered(&m));
                let since = match p.conn {
                    ConnState::Connected { since, .. } => since,
                    _ => now,
                };
                (
                    *id,
                    p.score.value(cfg) < 0.0,
                    covered,
                    p.score.value(cfg),
                    since,
                    self.tie(id),
                )
            })
            .collect();
        order.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then(a.2.cmp(&b.2))
                .then(a.3.total_cmp(&b.3))
                .then(b.4.cmp(&a.4))
                .then(a.5.cmp(&b.5))
        });
        let mut prune = Vec::new();
        for (id, negative, ..) in order {
            if excess == 0 {
                break;
            }
            let p = &self.peers[&id];
            let is_out = p.direction() == Some(Direction::Outbound);
            if !negative {
                if is_out && outbound <= min_out {
                    continue;
                }
                if let Some(m) = p.subnets()
                    && self
                        .needs
                        .covered_ids(&m)
                        .any(|s| coverage[s] <= self.cfg.min_peers_per_subnet)
                {
                    continue;
                }
            }
            if let Some(m) = p.subnets() {
                for s in self.needs.covered_ids(&m) {
                    coverage[s] = coverage[s].saturating_sub(1);
                }
            }
            if is_out {
                outbound = outbound.saturating_sub(1);
            }
            prune.push(id);
            excess -= 1;
        }
        for id in prune {
            self.goodbye(id, GoodbyeReason::TooManyPeers, now);
        }
    }

    /// How many connected or dialing peers serve each needed subnet (see [`NEED_IDS`]).
    fn coverage(&self) -> [usize; NEED_IDS] {
        let mut coverage = [0usize; NEED_IDS];
        for p in self.peers.values() {
            if (p.is_live() || p.conn == ConnState::Dialing)
                && let Some(m) = p.subnets()
            {
                for s in self.needs.covered_ids(&m) {
                    coverage[s] += 1;
                }
            }
        }
        coverage
    }

    /// Dial toward the target (and the outbound floor), best candidates first: trusted,
    /// then those serving a needed subnet that fewer than `target_peers_per_subnet`
    /// connected or dialing peers cover (these are dialed even at the target, up to the
    /// connection cap), then by higher score, dialed successfully before, longest since
    /// the last failure. Peers banned or in backoff are not dialed.
    ///
    /// Serving a needed subnet ranks a candidate first only while the subnet is short:
    /// ranking every subnet peer first would fill the target with peers of our own
    /// subnets, and nodes that share subnets would form islands.
    fn dial_deficit(&mut self, now: Instant) {
        let live = self.live_count(None);
        let live_out = self.live_count(Some(Direction::Outbound));
        let dialing = self.dialing_count();
        let active = live + dialing;
        let want_total = self.cfg.target_peers.saturating_sub(active);
        let want_out = self.cfg.min_outbound().saturating_sub(live_out + dialing);
        let mut room = self.cfg.max_peers().saturating_sub(active);
        let mut want = want_total.max(want_out).min(room);
        let slots = self.cfg.max_concurrent_dials.saturating_sub(dialing);
        let mut coverage = self.coverage();
        let cfg = &self.cfg.score;
        let mut cands: Vec<DialCandidate> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.conn == ConnState::Disconnected
                    && !p.addrs.is_empty()
                    && p.held_until(now).is_none()
            })
            .map(|(id, p)| DialCandidate {
                id: *id,
                trusted: p.trusted,
                subnets: p.subnets(),
                score: p.score.value(cfg),
                succeeded: p.dials.successes > 0,
                last_failure: p.dials.last_failure,
                tie: self.tie(id),
            })
            .collect();
        cands.sort_by(|a, b| {
            b.trusted
                .cmp(&a.trusted)
                .then(b.score.total_cmp(&a.score))
                .then(b.succeeded.cmp(&a.succeeded))
                // None (never failed) sorts first, then the oldest failure.
                .then(match (a.last_failure, b.last_failure) {
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, Some(_)) => std::cmp::Ordering::Less,
                    (Some(_), None) => std::cmp::Ordering::Greater,
                    (Some(x), Some(y)) => x.cmp(&y),
                })
                .then(a.tie.cmp(&b.tie))
        });
        let target_cov = self.cfg.target_peers_per_subnet;
        let mut started = 0;
        while started < slots {
            let needs = &self.needs;
            let short = |c: &DialCandidate| {
                c.subnets
                    .is_some_and(|m| needs.covered_ids(&m).any(|s| coverage[s] < target_cov))
            };
            let pick = cands
                .iter()
                .position(|c| c.trusted)
                .or_else(|| (room > 0).then(|| cands.iter().position(short)).flatten())
                .or_else(|| (want > 0 && !cands.is_empty()).then_some(0));
            let Some(i) = pick else { break };
            let c = cands.remove(i);
            if let Some(m) = c.subnets {
                for s in self.needs.covered_ids(&m) {
                    coverage[s] += 1;
                }
            }
            if !c.trusted {
                want = want.saturating_sub(1);
                room = room.saturating_sub(1);
            }
            let p = self.peers.get_mut(&c.id).expect("candidate exists");
            p.conn = ConnState::Dialing;
            self.metrics.dial();
            self.actions.push_back(Action::Dial {
                peer: c.id,
                addrs: p.addrs.clone(),
            });
            started += 1;
        }
    }

    /// The order in which the peer manager would dial the stored peers now (for the
    /// client's inspection and for tests; the host's ranker only orders one peer's
    /// addresses): the same preference as its own dials, trusted first, then peers serving
    /// a needed subnet that is short of peers, then by score.
    pub fn dial_order(&self, now: Instant) -> Vec<PeerId> {
        let cfg = &self.cfg.score;
        let coverage = self.coverage();
        let target_cov = self.cfg.target_peers_per_subnet;
        let short = |p: &PeerInfo| {
            p.subnets()
                .is_some_and(|m| self.needs.covered_ids(&m).any(|s| coverage[s] < target_cov))
        };
        // Each peer's key is computed once (a subnet scan and a hash).
        let mut v: Vec<(PeerId, bool, bool, f64, bool, u64)> = self
            .peers
            .iter()
            .filter(|(_, p)| p.held_until(now).is_none() && !p.is_live())
            .map(|(id, p)| {
                (
                    *id,
                    p.trusted,
                    short(p),
                    p.score.value(cfg),
                    p.dials.successes > 0,
                    self.tie(id),
                )
            })
            .collect();
        v.sort_by(|a, b| {
            b.1.cmp(&a.1)
                .then(b.2.cmp(&a.2))
                .then(b.3.total_cmp(&a.3))
                .then(b.4.cmp(&a.4))
                .then(a.5.cmp(&b.5))
        });
        v.into_iter().map(|k| k.0).collect()
    }

    /// Keep the store bounded: drop disconnected peers past `disconnected_ttl` (unless
    /// held), then the oldest disconnected ones above `max_disconnected_peers`, and the
    /// oldest held ones above `max_banned_peers`.
    fn trim_store(&mut self, now: Instant) {
        let ttl = self.cfg.disconnected_ttl;
        self.peers.retain(|_, p| {
            p.trusted
                || !matches!(p.conn, ConnState::Disconnected)
                || p.held_until(now).is_some()
                || p.last_seen + ttl > now
        });
        self.make_room(now);
    }

    /// Room for one newcomer in each class (free and held) within the caps.
    fn make_room(&mut self, now: Instant) {
        self.enforce_caps(now, 1);
    }

    /// Keep at most `max_disconnected_peers - slack` free and `max_banned_peers` held
    /// disconnected peers: the oldest free ones go first, then the held ones whose hold
    /// ends soonest. Run before a newcomer is stored (`slack` 1), at each heartbeat, and
    /// when a peer leaves the live or dialing set (`slack` 0), so that the caps hold at
    /// every step, not only at heartbeats.
    fn enforce_caps(&mut self, now: Instant, slack: usize) {
        let max_free = self.cfg.max_disconnected_peers.saturating_sub(slack);
        let max_held = self.cfg.max_banned_peers;
        let mut free = Vec::new();
        let mut held = Vec::new();
        for (id, p) in &self.peers {
            if p.trusted || p.conn != ConnState::Disconnected {
                continue;
            }
            match p.held_until(now) {
                Some(until) => held.push((until, *id)),
                None => free.push((p.last_seen, *id)),
            }
        }
        if free.len() > max_free {
            free.sort();
            for (_, id) in &free[..free.len() - max_free] {
                self.peers.remove(id);
            }
        }
        if held.len() > max_held {
            held.sort();
            for (_, id) in &held[..held.len() - max_held] {
                self.peers.remove(id);
            }
        }
    }

    /// The gate's view, if anything changed since the last call.
    pub fn take_gate_snapshot(&mut self, now: Instant) -> Option<Arc<GateSnapshot>> {
        if !std::mem::take(&mut self.gate_dirty) {
            return None;
        }
        Some(Arc::new(self.gate_snapshot(now)))
    }

    /// The gate's view now: peers not to dial (`peer_dial`, the ranker), peers refused at
    /// `secured` (banned, or held back by a Goodbye or churn), IPs refused at `accept` (an
    /// IP whose only known peers are refused, and IPs banned on evidence), and whether
    /// inbound is full.
    pub fn gate_snapshot(&self, now: Instant) -> GateSnapshot {
        let mut peers = HashMap::new();
        let mut no_dial = HashMap::new();
        let mut held_ips: HashMap<IpAddr, Instant> = HashMap::new();
        let mut good_ips: HashSet<IpAddr> = HashSet::new();
        for (id, p) in &self.peers {
            if let Some(u) = p.held_until(now)
                && !p.trusted
            {
                no_dial.insert(*id, u);
            }
            match p.refused_until(now) {
                Some(u) if !p.trusted => {
                    peers.insert(*id, u);
                    if let Some(ip) = p.last_ip {
                        let e = held_ips.entry(ip).or_insert(u);
                        *e = (*e).min(u);
                    }
                }
                _ => {
                    if let Some(ip) = p.last_ip {
                        good_ips.insert(ip);
                    }
                }
            }
        }
        // An IP shared with a peer in good standing is not refused at accept: that
        // peer's attempts are refused by id at `secured` instead.
        held_ips.retain(|ip, _| !good_ips.contains(ip));
        for (ip, u) in &self.banned_ips {
            held_ips.insert(*ip, *u);
        }
        let live = self.live_count(None);
        let live_in = self.live_count(Some(Direction::Inbound));
        GateSnapshot {
            peers,
            no_dial,
            ips: held_ips,
            inbound_full: live >= self.cfg.max_peers() || live_in >= self.cfg.max_inbound(),
        }
    }

    /// The metrics.
    pub fn metrics(&self) -> &PeerManagerMetrics {
        &self.metrics
    }
}

/// The IP of a multiaddr starting with `/ip4` or `/ip6`.
pub(crate) fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(*ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}
