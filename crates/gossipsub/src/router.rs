//! The sans-IO gossipsub router.
//!
//! Inputs: peer changes ([`Router::add_peer`], [`Router::outbound_ready`],
//! [`Router::remove_peer`], [`Router::set_accepted`]), decoded RPCs ([`Router::handle_rpc`]),
//! [`Router::subscribe`] / [`Router::unsubscribe`], [`Router::publish`], validation results
//! ([`Router::report_validation`]) and [`Router::handle_timeout`], each with `now`.
//! Outputs: frames per peer ([`Router::next_ready`], [`Router::pop_frame`]), events
//! ([`Router::poll_event`]) and the next timeout ([`Router::poll_timeout`]).
//!
//! Deterministic: given the same inputs and seed, the same outputs. Sets that are iterated
//! are ordered (`BTreeMap`/`BTreeSet`); randomness comes from one seeded generator.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use plexus_core::{Direction, PeerId};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use crate::config::{Config, ConfigError, Signing};
use crate::mcache::MessageCache;
use crate::queue::{Class, PeerQueue};
use crate::score::{PeerScore, PeerScoreThresholds, RejectReason};
use crate::time_cache::TimeCache;
use crate::types::{
    Control, Extensions, IHave, MessageId, PREAMBLE_EXTENSION, Preamble, Prune, PxPeer, RawMessage,
    Rpc, SubOpt, TopicHash, Version,
};
use crate::wire;

/// The application's verdict on a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Acceptance {
    /// Valid: deliver and forward.
    Accept,
    /// Invalid: drop and penalise the sender (P₄).
    Reject,
    /// Drop without forwarding and without penalty (e.g. a message from a past slot).
    Ignore,
}

/// Who changed a mesh.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MeshChange {
    /// We grafted or pruned.
    Local,
    /// The peer sent GRAFT or PRUNE.
    Remote,
}

/// What the router tells the application.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum Event {
    /// A new message on a subscribed topic. With [`Config::validate_messages`] the
    /// application must answer with [`Router::report_validation`]; it is forwarded only
    /// after `Accept`.
    Message {
        /// The peer that sent it to us.
        source: PeerId,
        /// Its id.
        id: MessageId,
        /// The message.
        message: RawMessage,
    },
    /// A peer subscribed to a topic.
    Subscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: TopicHash,
    },
    /// A peer unsubscribed from a topic.
    Unsubscribed {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: TopicHash,
    },
    /// A peer joined our mesh of a topic.
    Grafted {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: TopicHash,
        /// Who grafted.
        by: MeshChange,
    },
    /// A peer left our mesh of a topic.
    Pruned {
        /// The peer.
        peer: PeerId,
        /// The topic.
        topic: TopicHash,
        /// Who pruned.
        by: MeshChange,
    },
    /// A peer does not take what we send fast enough: forwards or gossip replies timed out
    /// or were refused by its queue since the last heartbeat. The application may
    /// disconnect it.
    SlowPeer {
        /// The peer.
        peer: PeerId,
        /// Frames dropped per class (control, publish, forward, gossip).
        dropped: [u64; 4],
        /// Bytes still queued per class.
        queued: [usize; 4],
    },
    /// A PRUNE from a peer above the accept-PX threshold offered peers (only with
    /// [`Config::do_px`]).
    PeerExchange {
        /// Who offered them.
        from: PeerId,
        /// The topic pruned.
        topic: TopicHash,
        /// The peers offered.
        peers: Vec<PxPeer>,
    },
}

/// Why a publish failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PublishError {
    /// We already have this message (content ids: another node published it first). Not a
    /// fault of anyone.
    #[error("duplicate message {0}")]
    Duplicate(MessageId),
    /// No peer to send it to.
    #[error("no peers for the topic")]
    NoPeers,
    /// Every eligible peer's publish queue is full.
    #[error("the publish queue of every peer is full")]
    QueuesFull,
    /// The message exceeds the transmit size.
    #[error("message of {size} bytes exceeds the transmit size {max}")]
    TooLarge {
        /// The encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// A connected peer as the glue reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerConn {
    /// Who dialed (D_out counts outbound connections).
    pub direction: Direction,
    /// The remote IP, for the colocation factor.
    pub ip: Option<IpAddr>,
}

/// Counters per topic.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicStats {
    /// First copies received.
    pub received: u64,
    /// Messages accepted (ours or validated).
    pub delivered: u64,
    /// Duplicate copies received.
    pub duplicates: u64,
    /// Messages rejected (invalid, or broke the signing policy).
    pub rejected: u64,
    /// Messages ignored by the application, timed out in validation, or dropped because the
    /// validation queue was full.
    pub ignored: u64,
    /// Messages we published.
    pub published: u64,
}

/// Counters of the whole router.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouterStats {
    /// IDONTWANT ids sent.
    pub idontwant_sent: u64,
    /// IDONTWANT ids received (honoured).
    pub idontwant_received: u64,
    /// Queued copies removed because an IDONTWANT arrived.
    pub idontwant_cancelled: u64,
    /// Copies not forwarded because the peer sent IDONTWANT (or IMRECEIVING).
    pub idontwant_skipped: u64,
    /// PREAMBLEs sent ahead of a message copy (experimental extension).
    pub preambles_sent: u64,
    /// PREAMBLEs received and acted upon (a message we did not have, from a mesh peer).
    pub preambles_received: u64,
    /// Announced messages that did not arrive by their deadline (then asked for with IWANT).
    pub preambles_expired: u64,
    /// IMRECEIVING ids sent.
    pub imreceiving_sent: u64,
    /// IMRECEIVING ids received (honoured as IDONTWANT).
    pub imreceiving_received: u64,
    /// Frames dropped per queue class (control, publish, forward, gossip).
    pub queue_drops: [u64; 4],
    /// RPCs ignored because the sender is graylisted.
    pub graylisted_rpcs: u64,
    /// IHAVE ids sent.
    pub ihave_sent: u64,
    /// Forwards announced with an IHAVE instead of a whole copy ([`Config::lazy_push_threshold`]).
    pub lazy_push_announced: u64,
    /// IWANT ids sent.
    pub iwant_sent: u64,
    /// Messages served to IWANT.
    pub iwant_served: u64,
    /// IWANT promises broken.
    pub broken_promises: u64,
    /// Messages for topics we are not subscribed to.
    pub unsubscribed_topic: u64,
    /// GRAFTs answered with PRUNE because of backoff.
    pub graft_in_backoff: u64,
    /// GRAFTs answered with PRUNE because the peer is not accepted.
    pub graft_not_accepted: u64,
    /// Subscriptions ignored (per-peer cap).
    pub subscriptions_refused: u64,
    /// Frames popped for sending.
    pub frames_sent: u64,
    /// Bytes popped for sending.
    pub bytes_sent: u64,
}

#[derive(Debug)]
struct PeerState {
    conn: PeerConn,
    /// The version negotiated on our outbound stream; `None` until then (nothing is sent to
    /// the peer before it).
    version: Option<Version>,
    /// Our stream failed and a new one is being opened ([`Router::outbound_lost`]): messages
    /// still queue for it, and go out once the new stream is up.
    reopening: bool,
    accepted: bool,
    topics: BTreeSet<TopicHash>,
    queue: PeerQueue,
    pending_subs: Vec<SubOpt>,
    pending: Control,
    /// Pending control holds something that must not be dropped (GRAFT, PRUNE, SUBOPTS).
    pending_mandatory: bool,
    extensions_sent: bool,
    extensions_received: bool,
    /// It advertised plexus's PREAMBLE / IMRECEIVING extension (and runs v1.3).
    preamble_ext: bool,
    /// The PREAMBLE to write right before the frame the writer took last
    /// ([`Router::take_preamble`]).
    preamble_out: Option<Bytes>,
    /// Its PREAMBLE announcements not yet completed (bounded by `max_preambles_per_peer`).
    preambles_open: usize,
    /// The own publish the writer took last, until it comes back for the next frame (then
    /// that copy is on the wire).
    in_flight: Option<MessageId>,
    /// IDONTWANT: id → heartbeat tick it arrived.
    dont_send: HashMap<MessageId, u64>,
    idontwant_this_hb: usize,
    ihave_this_hb: usize,
    iasked_this_hb: usize,
    /// Lazy-push announcements to it this heartbeat (at most `max_lazy_push_per_heartbeat`).
    lazy_this_hb: usize,
    /// Those not yet asked for: an IWANT for one is served as a forward.
    lazy_announced: Vec<MessageId>,
}

#[derive(Debug)]
struct Pending {
    source: PeerId,
    message: RawMessage,
    received: Instant,
    /// Other peers that sent a copy while it waited (not forwarded back to them).
    also_from: Vec<PeerId>,
}

#[derive(Debug)]
struct Deferred {
    frame: Bytes,
    /// Mesh copies not yet written.
    waiting: usize,
    /// Topic peers to queue once they are.
    rest: Vec<PeerId>,
}

/// A message a mesh peer announced with a PREAMBLE, on its way to us.
#[derive(Debug)]
struct Receiving {
    /// Who announced it.
    from: PeerId,
    /// When it should have arrived.
    deadline: Instant,
    /// The mesh peers we told IMRECEIVING (they hold back their copies).
    told: Vec<PeerId>,
}

/// Peers asked with IWANT when an announced message does not arrive in time.
const PREAMBLE_FALLBACK_PEERS: usize = 2;

/// Peers remembered per pending message as having sent a copy.
const MAX_ALSO_FROM: usize = 16;

/// Other announcers remembered per promised message.
const MAX_ALTERNATES: usize = 2;

/// The router. See the module documentation.
pub struct Router {
    cfg: Config,
    thresholds: PeerScoreThresholds,
    score: Option<PeerScore>,
    rng: SmallRng,
    /// Key of the raw-bytes duplicate hash.
    raw_hash_key: [u8; 32],
    local: PeerId,
    peers: BTreeMap<PeerId, PeerState>,
    /// Peers subscribed to each topic.
    topic_peers: BTreeMap<TopicHash, BTreeSet<PeerId>>,
    /// Our meshes: one per subscribed topic.
    mesh: BTreeMap<TopicHash, BTreeSet<PeerId>>,
    /// Fanout peers and last publish time, for topics we publish to without subscribing.
    fanout: BTreeMap<TopicHash, (BTreeSet<PeerId>, Instant)>,
    /// When each (topic, peer) may be grafted again.
    backoff: HashMap<TopicHash, HashMap<PeerId, Instant>>,
    /// When we last pruned each (topic, peer), for the graft flood penalty.
    pruned_at: HashMap<(TopicHash, PeerId), Instant>,
    mcache: MessageCache,
    seen: TimeCache<MessageId, ()>,
    /// Keyed hash of a message's raw bytes → its id: duplicates are caught before the id
    /// function runs.
    raw_seen: TimeCache<u128, MessageId>,
    /// IWANT promises: id → (advertiser, deadline).
    promises: HashMap<MessageId, Vec<(PeerId, Instant)>>,
    /// Other peers that announced a promised message while we waited for it (at most
    /// `MAX_ALTERNATES` per id; only for ids in `promises`): asked in turn if the promise
    /// breaks or its advertiser leaves.
    alternates: HashMap<MessageId, Vec<PeerId>>,
    pending: HashMap<MessageId, Pending>,
    /// Messages announced to us by a PREAMBLE and not yet received.
    receiving: HashMap<MessageId, Receiving>,
    /// Large own publishes waiting for their mesh copies to be written before the copies
    /// for the other topic peers are queued.
    deferred: BTreeMap<MessageId, Deferred>,
    pending_per_topic: HashMap<TopicHash, usize>,
    accept_overrides: HashMap<PeerId, bool>,
    events: VecDeque<Event>,
    ready: BTreeSet<PeerId>,
    dirty: BTreeSet<PeerId>,
    next_heartbeat: Instant,
    ticks: u64,
    seqno: u64,
    topic_stats: BTreeMap<TopicHash, TopicStats>,
    stats: RouterStats,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("local", &self.local)
            .field("peers", &self.peers.len())
            .field("mesh", &self.mesh.len())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// A router for the local peer `local`, with randomness from `seed`.
    ///
    /// # Errors
    /// The configuration breaks a rule ([`Config::validate`]).
    pub fn new(cfg: Config, local: PeerId, seed: u64, now: Instant) -> Result<Self, ConfigError> {
        cfg.validate()?;
        let mut rng = SmallRng::seed_from_u64(seed);
        let raw_hash_key: [u8; 32] = rng.random();
        let (score, thresholds) = match &cfg.score {
            Some((p, t)) => (Some(PeerScore::new(p.clone())), t.clone()),
            None => (None, PeerScoreThresholds::default()),
        };
        Ok(Router {
            mcache: MessageCache::new(cfg.history_length, cfg.history_gossip),
            seen: TimeCache::new(cfg.seen_ttl, cfg.max_seen_messages),
            raw_seen: TimeCache::new(cfg.seen_ttl, cfg.max_seen_messages),
            next_heartbeat: now + cfg.heartbeat_initial_delay,
            seqno: rng.random(),
            cfg,
            thresholds,
            score,
            rng,
            raw_hash_key,
            local,
            peers: BTreeMap::new(),
            topic_peers: BTreeMap::new(),
            mesh: BTreeMap::new(),
            fanout: BTreeMap::new(),
            backoff: HashMap::new(),
            pruned_at: HashMap::new(),
            promises: HashMap::new(),
            alternates: HashMap::new(),
            pending: HashMap::new(),
            deferred: BTreeMap::new(),
            receiving: HashMap::new(),
            pending_per_topic: HashMap::new(),
            accept_overrides: HashMap::new(),
            events: VecDeque::new(),
            ready: BTreeSet::new(),
            dirty: BTreeSet::new(),
            ticks: 0,
            topic_stats: BTreeMap::new(),
            stats: RouterStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    // ----- queries -----

    /// Our mesh of `topic` (empty when not subscribed).
    pub fn mesh_peers(&self, topic: &TopicHash) -> Vec<PeerId> {
        self.mesh
            .get(topic)
            .map(|m| m.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Topics we are subscribed to.
    pub fn topics(&self) -> Vec<TopicHash> {
        self.mesh.keys().cloned().collect()
    }

    /// Peers known to be subscribed to `topic`.
    pub fn topic_peers(&self, topic: &TopicHash) -> Vec<PeerId> {
        self.topic_peers
            .get(topic)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The peer's score (0 without scoring or for unknown peers).
    pub fn peer_score(&self, peer: &PeerId, now: Instant) -> f64 {
        self.score.as_ref().map_or(0.0, |s| s.score(peer, now))
    }

    /// Whether the peer is in backoff for `topic` (a GRAFT from it now is refused and
    /// penalised). We graft it ourselves only `backoff_slack` later.
    pub fn in_backoff(&self, topic: &TopicHash, peer: &PeerId, now: Instant) -> bool {
        self.backoff
            .get(topic)
            .and_then(|b| b.get(peer))
            .is_some_and(|until| *until > now)
    }

    /// Whether our own GRAFT to the peer must still wait: its backoff plus the slack. The
    /// slack applies to our grafts only: applied to its grafts too, a peer that re-grafts
    /// the moment the backoff we sent it ends would be refused and penalised.
    fn graft_waits(&self, topic: &TopicHash, peer: &PeerId, now: Instant) -> bool {
        self.backoff
            .get(topic)
            .and_then(|b| b.get(peer))
            .is_some_and(|until| *until + self.cfg.backoff_slack > now)
    }

    /// The version negotiated with the peer, once our stream to it is up.
    pub fn peer_version(&self, peer: &PeerId) -> Option<Version> {
        self.peers.get(peer).and_then(|p| p.version)
    }

    /// Whether the peer is accepted for meshes.
    pub fn is_accepted(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|p| p.accepted)
    }

    /// Whether the router knows the peer ([`Router::add_peer`] and no removal since).
    pub fn has_peer(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// Connected gossipsub peers.
    pub fn peers(&self) -> Vec<PeerId> {
        self.peers.keys().copied().collect()
    }

    /// Counters per topic.
    pub fn topic_stats(&self) -> &BTreeMap<TopicHash, TopicStats> {
        &self.topic_stats
    }

    /// Counters of the whole router.
    pub fn stats(&self) -> &RouterStats {
        &self.stats
    }

    /// Frames and bytes queued for a peer, per class (control, publish, forward, gossip).
    pub fn queued(&self, peer: &PeerId) -> Option<([usize; 4], [usize; 4])> {
        self.peers
            .get(peer)
            .map(|p| (p.queue.lens(), p.queue.bytes()))
    }

    /// Messages awaiting validation.
    pub fn pending_validations(&self) -> usize {
        self.pending.len()
    }

    /// Ids in the seen cache.
    pub fn seen_len(&self) -> usize {
        self.seen.len()
    }

    /// Messages in the message cache.
    pub fn mcache_len(&self) -> usize {
        self.mcache.len()
    }

    /// IDONTWANT ids stored for a peer.
    pub fn dont_send_len(&self, peer: &PeerId) -> usize {
        self.peers.get(peer).map_or(0, |p| p.dont_send.len())
    }

    // ----- outputs -----

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Router::handle_timeout`] is due.
    pub fn poll_timeout(&self) -> Instant {
        self.next_heartbeat
    }

    /// A peer whose queue received frames since the last call (its writer, if idle, should
    /// call [`Router::pop_frame`]).
    pub fn next_ready(&mut self) -> Option<PeerId> {
        self.ready.pop_first()
    }

    /// The next frame to write to `peer`, highest priority first. A writer takes one frame
    /// at a time, so everything not yet written stays editable here.
    pub fn pop_frame(&mut self, peer: &PeerId, now: Instant) -> Option<Bytes> {
        let p = self.peers.get_mut(peer)?;
        // The writer is back: the publish it took last is on the wire.
        if let Some(done) = p.in_flight.take() {
            self.copy_written(&done, now);
        }
        let p = self.peers.get_mut(peer)?;
        let (class, frame, id) = p.queue.pop(&self.cfg.queue, now)?;
        p.preamble_out = None;
        if let Some(id) = &id
            && p.preamble_ext
            && class != Class::Control
            && frame.len() >= self.cfg.preamble_threshold
            && let Some(topic) = self.mcache.topic_of(id)
        {
            let control = Control {
                preamble: vec![Preamble {
                    topic: topic.clone(),
                    id: id.clone(),
                    len: frame.len() as u64,
                }],
                ..Control::default()
            };
            let pre = wire::encode_control_frame(&[], &control);
            self.stats.frames_sent += 1;
            self.stats.bytes_sent += pre.len() as u64;
            self.stats.preambles_sent += 1;
            p.preamble_out = Some(pre);
        }
        if class == Class::Publish {
            p.in_flight = id;
        }
        self.stats.frames_sent += 1;
        self.stats.bytes_sent += frame.len() as u64;
        Some(frame)
    }

    /// The PREAMBLE frame to write right before the frame [`Router::pop_frame`] just returned
    /// for `peer`, if that frame is a large message and the peer reads the experimental
    /// PREAMBLE extension ([`Config::preamble_threshold`]). Write both at once: the PREAMBLE
    /// promises that the message follows without delay.
    pub fn take_preamble(&mut self, peer: &PeerId) -> Option<Bytes> {
        // Called after every pop: with the extension off (the default), no peer lookup.
        if !self.preambles_on() {
            return None;
        }
        self.peers.get_mut(peer)?.preamble_out.take()
    }

    /// The writer of `peer` finished writing the frame it took last. (Taking the next frame
    /// implies it too.) A large publish waiting for its mesh copies is released by the last.
    pub fn frame_written(&mut self, peer: &PeerId, now: Instant) {
        if let Some(done) = self.peers.get_mut(peer).and_then(|p| p.in_flight.take()) {
            self.copy_written(&done, now);
        }
    }

    /// The length of the frame [`Router::pop_frame`] would return now, without taking it
    /// (the glue uses it to limit how many large frames are on the wire at once).
    pub fn next_frame_len(&mut self, peer: &PeerId, now: Instant) -> Option<usize> {
        let p = self.peers.get_mut(peer)?;
        p.queue.peek_len(&self.cfg.queue, now)
    }

    /// One mesh copy of a deferred publish was written; the last one releases the rest.
    fn copy_written(&mut self, id: &MessageId, now: Instant) {
        let Some(d) = self.deferred.get_mut(id) else {
            return;
        };
        d.waiting = d.waiting.saturating_sub(1);
        if d.waiting == 0 {
            self.release_deferred(id, now);
        }
    }

    fn release_deferred(&mut self, id: &MessageId, now: Instant) {
        if let Some(d) = self.deferred.remove(id) {
            for p in d.rest {
                self.enqueue(p, Class::Publish, d.frame.clone(), Some(id.clone()), now);
            }
        }
    }

    // ----- peers -----

    /// A connection to `peer` is up. Nothing is sent to it until [`Router::outbound_ready`].
    pub fn add_peer(&mut self, peer: PeerId, conn: PeerConn, now: Instant) {
        if self.peers.contains_key(&peer) {
            if let Some(p) = self.peers.get_mut(&peer) {
                p.conn = conn;
            }
            return;
        }
        let accepted = self
            .accept_overrides
            .get(&peer)
            .copied()
            .unwrap_or(self.cfg.accept_by_default);
        self.peers.insert(
            peer,
            PeerState {
                conn,
                version: None,
                reopening: false,
                accepted,
                topics: BTreeSet::new(),
                queue: PeerQueue::default(),
                pending_subs: Vec::new(),
                pending: Control::default(),
                pending_mandatory: false,
                extensions_sent: false,
                extensions_received: false,
                preamble_ext: false,
                preamble_out: None,
                preambles_open: 0,
                in_flight: None,
                dont_send: HashMap::new(),
                idontwant_this_hb: 0,
                ihave_this_hb: 0,
                lazy_this_hb: 0,
                lazy_announced: Vec::new(),
                iasked_this_hb: 0,
            },
        );
        if let Some(s) = &mut self.score {
            s.add_peer(peer, conn.ip, now);
        }
    }

    /// Our outbound stream to `peer` negotiated `version`: send it our subscriptions (and,
    /// for v1.3, the extensions message in that first RPC).
    pub fn outbound_ready(&mut self, peer: PeerId, version: Version, now: Instant) {
        let topics: Vec<TopicHash> = self.mesh.keys().cloned().collect();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.version.is_some() {
            return;
        }
        p.version = Some(version);
        p.reopening = false;
        for topic in topics {
            p.pending_subs.push(SubOpt {
                subscribe: true,
                topic,
            });
        }
        p.pending_mandatory = true;
        self.dirty.insert(peer);
        self.flush(now);
    }

    /// Our outbound stream to the peer failed while the connection stays up (for example it
    /// was opened on the connection the simultaneous-dial rule closed): nothing is sent to
    /// it until [`Router::outbound_ready`] again, which re-announces our subscriptions;
    /// messages meanwhile wait in its queue (bounded as always). Its subscriptions, mesh
    /// places, acceptance and score are kept.
    pub fn outbound_lost(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.version = None;
            p.reopening = true;
        }
    }

    /// The peer is gone: it leaves every mesh and fanout; its score is retained for
    /// the configured time.
    pub fn remove_peer(&mut self, peer: &PeerId, now: Instant) {
        let Some(state) = self.peers.remove(peer) else {
            return;
        };
        for topic in &state.topics {
            if let Some(set) = self.topic_peers.get_mut(topic) {
                set.remove(peer);
                if set.is_empty() {
                    self.topic_peers.remove(topic);
                }
            }
        }
        for (topic, m) in self.mesh.iter_mut() {
            if m.remove(peer)
                && let Some(s) = &mut self.score
            {
                s.prune(peer, topic, now);
            }
        }
        for (set, _) in self.fanout.values_mut() {
            set.remove(peer);
        }
        for alts in self.alternates.values_mut() {
            alts.retain(|p| p != peer);
        }
        let mut orphaned: Vec<MessageId> = Vec::new();
        for (id, list) in self.promises.iter_mut() {
            list.retain(|(p, _)| p != peer);
            if list.is_empty() {
                orphaned.push(id.clone());
            }
        }
        self.promises.retain(|_, l| !l.is_empty());
        // What it promised will not come from it: ask another announcer now.
        let reask = !orphaned.is_empty();
        for id in orphaned {
            self.ask_alternate(&id, now);
        }
        // Its announcements will not deliver: ask for them elsewhere now.
        let announced: Vec<MessageId> = self
            .receiving
            .iter()
            .filter(|(_, r)| r.from == *peer)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &announced {
            self.announcement_failed(id, false);
        }
        self.accept_overrides.remove(peer);
        self.ready.remove(peer);
        self.dirty.remove(peer);
        if let Some(s) = &mut self.score {
            s.remove_peer(peer, now);
        }
        if reask || !announced.is_empty() {
            self.flush(now);
        }
    }

    /// The application's acceptance of a peer (for Ethereum: it passed the Status
    /// handshake). Only accepted peers are grafted, kept in a mesh or picked for fanout;
    /// losing acceptance prunes the peer from every mesh.
    pub fn set_accepted(&mut self, peer: PeerId, accepted: bool, now: Instant) {
        let Some(p) = self.peers.get_mut(&peer) else {
            self.accept_overrides.insert(peer, accepted);
            return;
        };
        if p.accepted == accepted {
            return;
        }
        p.accepted = accepted;
        if !accepted {
            let topics: Vec<TopicHash> = self
                .mesh
                .iter()
                .filter(|(_, m)| m.contains(&peer))
                .map(|(t, _)| t.clone())
                .collect();
            for topic in topics {
                self.prune_peer(&topic, peer, self.cfg.prune_backoff, false, now);
            }
            for (set, _) in self.fanout.values_mut() {
                set.remove(&peer);
            }
            self.flush(now);
        }
    }

    /// The application-specific score (P₅) of a peer.
    pub fn set_application_score(&mut self, peer: &PeerId, score: f64) -> bool {
        self.score
            .as_mut()
            .is_some_and(|s| s.set_application_score(peer, score))
    }

    /// Set (`Some`) or drop (`None`) the score parameters of one topic, e.g. for the topics
    /// of a fork digest that is coming or going. False when scoring is off. Parameters that
    /// break a rule of the spec are refused (false) and nothing changes.
    pub fn set_topic_score_params(
        &mut self,
        topic: TopicHash,
        params: Option<crate::score::TopicScoreParams>,
    ) -> bool {
        let Some(score) = self.score.as_mut() else {
            return false;
        };
        match params {
            Some(p) => {
                if p.validate().is_err() {
                    return false;
                }
                score.set_topic_params(topic, p);
            }
            None => score.remove_topic_params(&topic),
        }
        true
    }

    // ----- subscriptions -----

    /// Join `topic`: the mesh is built from fanout and known topic peers (accepted, not in
    /// backoff, score ≥ 0), each sent GRAFT; every peer learns of the subscription.
    /// Returns false when already subscribed.
    pub fn subscribe(&mut self, topic: TopicHash, now: Instant) -> bool {
        if self.mesh.contains_key(&topic) {
            return false;
        }
        let mut mesh = BTreeSet::new();
        if let Some((fanout, _)) = self.fanout.remove(&topic) {
            for p in fanout {
                if mesh.len() < self.cfg.mesh_n && self.can_graft(&topic, &p, now) {
                    mesh.insert(p);
                }
            }
        }
        self.mesh.insert(topic.clone(), mesh.clone());
        let need = self.cfg.mesh_n.saturating_sub(mesh.len());
        let extra = self.pick(&topic, need, now, |r, p| {
            !mesh.contains(p) && r.can_graft(&topic, p, now)
        });
        for p in mesh.into_iter().chain(extra) {
            self.graft_peer(&topic, p, now);
        }
        let ready: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, s)| s.version.is_some())
            .map(|(p, _)| *p)
            .collect();
        for p in ready {
            self.queue_sub(p, &topic, true);
        }
        self.flush(now);
        true
    }

    /// Leave `topic`: every mesh peer gets PRUNE with the unsubscribe backoff, every peer
    /// learns of it. Returns false when not subscribed.
    pub fn unsubscribe(&mut self, topic: &TopicHash, now: Instant) -> bool {
        let Some(mesh) = self.mesh.get(topic).cloned() else {
            return false;
        };
        for p in mesh {
            self.prune_peer(topic, p, self.cfg.unsubscribe_backoff, false, now);
        }
        // The PRUNEs go in a frame of their own, before the unsubscription: rust-libp2p
        // handles subscriptions before control and would apply its own (longer) prune
        // backoff on seeing the unsubscription first, then refuse and penalise our GRAFT
        // when we rejoin after our shorter unsubscribe backoff.
        self.flush(now);
        self.mesh.remove(topic);
        let ready: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, s)| s.version.is_some())
            .map(|(p, _)| *p)
            .collect();
        for p in ready {
            self.queue_sub(p, topic, false);
        }
        self.flush(now);
        true
    }

    // ----- publishing -----

    /// Publish `data` on `topic`. Sent to every topic peer above the publish threshold
    /// (flood publish), else to the mesh or fanout. Own publishes are queued in their own
    /// class and never dropped once queued.
    ///
    /// # Errors
    /// [`PublishError`].
    pub fn publish(
        &mut self,
        topic: TopicHash,
        data: Bytes,
        now: Instant,
    ) -> Result<MessageId, PublishError> {
        self.publish_batch(vec![(topic, data)], now)
            .pop()
            .unwrap_or(Err(PublishError::NoPeers))
    }

    /// Publish several messages at once (e.g. a block's data columns), one result each.
    /// Peer `j` of `P` recipients gets the messages starting at message `j·k/P` of `k`,
    /// so the first frames the writers take cover distinct messages: every message has a
    /// first copy on the wire before any message gets a second.
    pub fn publish_batch(
        &mut self,
        msgs: Vec<(TopicHash, Bytes)>,
        now: Instant,
    ) -> Vec<Result<MessageId, PublishError>> {
        type Planned = Result<(MessageId, TopicHash, Bytes, Vec<PeerId>), PublishError>;
        let planned: Vec<Planned> = msgs
            .into_iter()
            .map(|(topic, data)| self.plan_publish(topic, data, now))
            .collect();
        let mut per_peer: BTreeMap<PeerId, Vec<usize>> = BTreeMap::new();
        // Large flood publishes: the mesh now, the other topic peers once the mesh copies
        // are written.
        let mut later: Vec<Vec<PeerId>> = vec![Vec::new(); planned.len()];
        for (i, p) in planned.iter().enumerate() {
            if let Ok((_, topic, frame, peers)) = p {
                let mesh = self.mesh.get(topic);
                let mesh_first = self.cfg.flood_publish
                    && frame.len() >= self.cfg.mesh_first_publish_threshold
                    && mesh.is_some_and(|m| peers.iter().any(|x| m.contains(x)));
                for peer in peers {
                    if mesh_first && !mesh.is_some_and(|m| m.contains(peer)) {
                        later[i].push(*peer);
                    } else {
                        per_peer.entry(*peer).or_default().push(i);
                    }
                }
            }
        }
        let mut queued = vec![0usize; planned.len()];
        let n_peers = per_peer.len().max(1);
        for (j, (peer, idxs)) in per_peer.into_iter().enumerate() {
            let offset = j * idxs.len() / n_peers;
            for k in 0..idxs.len() {
                let i = idxs[(k + offset) % idxs.len()];
                let Ok((id, _, frame, _)) = &planned[i] else {
                    continue;
                };
                if self.enqueue(peer, Class::Publish, frame.clone(), Some(id.clone()), now) {
                    queued[i] += 1;
                }
            }
        }
        for (i, p) in planned.iter().enumerate() {
            let Ok((id, _, frame, _)) = p else {
                continue;
            };
            let rest = std::mem::take(&mut later[i]);
            if rest.is_empty() {
                continue;
            }
            if queued[i] == 0 {
                // No mesh copy could be queued: nothing to wait for.
                for peer in rest {
                    if self.enqueue(peer, Class::Publish, frame.clone(), Some(id.clone()), now) {
                        queued[i] += 1;
                    }
                }
            } else {
                self.deferred.insert(
                    id.clone(),
                    Deferred {
                        frame: frame.clone(),
                        waiting: queued[i],
                        rest,
                    },
                );
            }
        }
        let mut out = Vec::with_capacity(planned.len());
        for (i, p) in planned.into_iter().enumerate() {
            out.push(match p {
                Err(e) => Err(e),
                Ok(_) if queued[i] == 0 => Err(PublishError::QueuesFull),
                Ok((id, topic, _, _)) => {
                    self.topic_stats.entry(topic).or_default().published += 1;
                    Ok(id)
                }
            });
        }
        self.flush(now);
        out
    }

    /// Build one of our messages and choose its recipients; records it as seen.
    fn plan_publish(
        &mut self,
        topic: TopicHash,
        data: Bytes,
        now: Instant,
    ) -> Result<(MessageId, TopicHash, Bytes, Vec<PeerId>), PublishError> {
        self.seqno = self.seqno.wrapping_add(1);
        let raw = match &self.cfg.signing {
            Signing::StrictNoSign => {
                wire::encode_message_raw(None, &data, None, topic.as_str(), None, None)
            }
            Signing::StrictSign(key) => wire::sign_message(key, topic.as_str(), &data, self.seqno),
        };
        let frame = wire::encode_message_frame(&raw);
        if frame.len() > self.cfg.wire.max_transmit_size {
            return Err(PublishError::TooLarge {
                size: frame.len(),
                max: self.cfg.wire.max_transmit_size,
            });
        }
        let message = wire::decode_message(raw.clone()).unwrap_or_else(|_| RawMessage {
            from: None,
            data: data.clone(),
            seqno: None,
            topic: topic.clone(),
            signature: None,
            key: None,
            raw: raw.clone(),
        });
        let id = (self.cfg.message_id_fn)(&message);
        if self.seen.contains(&id) {
            return Err(PublishError::Duplicate(id));
        }
        let recipients = self.publish_recipients(&topic, now);
        if recipients.is_empty() {
            return Err(PublishError::NoPeers);
        }
        self.seen.insert(id.clone(), (), now);
        let key = self.raw_key(&raw);
        self.raw_seen.insert(key, id.clone(), now);
        self.mcache.put(id.clone(), topic.clone(), frame.clone());
        // We have it now: nobody owes it to us any more (rust-libp2p #5928).
        self.promises.remove(&id);
        self.alternates.remove(&id);
        if raw.len() >= self.cfg.idontwant_on_publish_threshold {
            let others: Vec<PeerId> = self
                .topic_peers
                .get(&topic)
                .map(|s| {
                    s.iter()
                        .filter(|p| !recipients.contains(p))
                        .copied()
                        .collect()
                })
                .unwrap_or_default();
            for p in others {
                self.queue_idontwant(p, &id);
            }
        }
        Ok((id, topic, frame, recipients))
    }

    fn publish_recipients(&mut self, topic: &TopicHash, now: Instant) -> Vec<PeerId> {
        if self.cfg.flood_publish {
            let publish = self.thresholds.publish_threshold;
            let cands: Vec<PeerId> = self
                .topic_peers
                .get(topic)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            return cands
                .into_iter()
                .filter(|p| self.deliverable(p) && self.peer_score(p, now) >= publish)
                .collect();
        }
        if let Some(m) = self.mesh.get(topic) {
            return m.iter().copied().collect();
        }
        let publish = self.thresholds.publish_threshold;
        let existing = self.fanout.get(topic).map(|(s, _)| s.clone());
        let set = match existing {
            Some(s) if !s.is_empty() => s,
            _ => {
                let picked = self.pick(topic, self.cfg.mesh_n, now, |r, p| {
                    r.is_accepted(p) && r.peer_score(p, now) >= publish
                });
                picked.into_iter().collect()
            }
        };
        let out = set.iter().copied().collect();
        self.fanout.insert(topic.clone(), (set, now));
        out
    }

    // ----- validation -----

    /// The application's verdict on a message it got in [`Event::Message`]. `Accept`
    /// forwards it to the mesh; `Reject` penalises the sender (P₄); `Ignore` drops it.
    /// Returns false when the message is not pending (unknown, or timed out).
    pub fn report_validation(&mut self, id: &MessageId, result: Acceptance, now: Instant) -> bool {
        let Some(p) = self.pending.remove(id) else {
            return false;
        };
        if let Some(n) = self.pending_per_topic.get_mut(&p.message.topic) {
            *n = n.saturating_sub(1);
        }
        let topic = p.message.topic.clone();
        match result {
            Acceptance::Accept => self.accept(id.clone(), p.source, p.message, &p.also_from, now),
            Acceptance::Reject => {
                self.topic_stats.entry(topic.clone()).or_default().rejected += 1;
                if let Some(s) = &mut self.score {
                    s.reject_message(&p.source, id, &topic, RejectReason::Invalid, now);
                }
            }
            Acceptance::Ignore => {
                self.topic_stats.entry(topic.clone()).or_default().ignored += 1;
                if let Some(s) = &mut self.score {
                    s.reject_message(&p.source, id, &topic, RejectReason::Ignored, now);
                }
            }
        }
        self.flush(now);
        true
    }

    fn accept(
        &mut self,
        id: MessageId,
        source: PeerId,
        message: RawMessage,
        also_from: &[PeerId],
        now: Instant,
    ) {
        let topic = message.topic.clone();
        self.topic_stats.entry(topic.clone()).or_default().delivered += 1;
        if let Some(s) = &mut self.score {
            s.deliver_message(&source, &id, &topic, now);
        }
        let frame = wire::encode_message_frame(&message.raw);
        self.mcache.put(id.clone(), topic.clone(), frame.clone());
        let author = message
            .from
            .as_ref()
            .and_then(|f| PeerId::from_bytes(f).ok());
        let targets: Vec<PeerId> = self
            .mesh
            .get(&topic)
            .map(|m| m.iter().copied().collect())
            .unwrap_or_default();
        let mut to: Vec<PeerId> = Vec::new();
        for p in targets {
            if p == source || also_from.contains(&p) || Some(p) == author {
                continue;
            }
            let skip = self
                .peers
                .get(&p)
                .is_some_and(|s| s.dont_send.contains_key(&id));
            if skip {
                self.stats.idontwant_skipped += 1;
                continue;
            }
            to.push(p);
        }
        // Lazy push: whole copies to a few, an IHAVE to the rest. Every mesh peer known to
        // have the message beyond its sender means it is spreading already, and one whole
        // copy fewer is needed.
        let mut eager = usize::MAX;
        if frame.len() >= self.cfg.lazy_push_threshold {
            to.shuffle(&mut self.rng);
            let mesh_len = self.mesh.get(&topic).map_or(0, BTreeSet::len);
            let have = mesh_len.saturating_sub(to.len());
            eager = self
                .cfg
                .lazy_push_eager
                .saturating_sub(have.saturating_sub(1));
        }
        for (i, p) in to.into_iter().enumerate() {
            if i >= eager && self.announce_lazily(p, &topic, &id, now) {
                continue;
            }
            self.enqueue(p, Class::Forward, frame.clone(), Some(id.clone()), now);
        }
    }

    /// Queue a lazy-push IHAVE for `id` to `p`; false when `p` must get the copy whole (it
    /// is below the gossip threshold, or had its announcements for this heartbeat).
    fn announce_lazily(
        &mut self,
        p: PeerId,
        topic: &TopicHash,
        id: &MessageId,
        now: Instant,
    ) -> bool {
        if self.peer_score(&p, now) < self.thresholds.gossip_threshold {
            return false;
        }
        let max = self.cfg.max_lazy_push_per_heartbeat;
        let Some(s) = self.peers.get_mut(&p) else {
            return false;
        };
        if s.lazy_this_hb >= max || s.version.is_none() {
            return false;
        }
        s.lazy_this_hb += 1;
        s.lazy_announced.push(id.clone());
        s.pending.ihave.push(IHave {
            topic: topic.clone(),
            ids: vec![id.clone()],
        });
        self.dirty.insert(p);
        self.stats.ihave_sent += 1;
        self.stats.lazy_push_announced += 1;
        true
    }

    // ----- RPCs -----

    /// A decoded RPC from `from`. RPCs from graylisted peers are ignored whole.
    pub fn handle_rpc(&mut self, from: PeerId, rpc: Rpc, now: Instant) {
        if !self.peers.contains_key(&from) {
            return;
        }
        if self.peer_score(&from, now) < self.thresholds.graylist_threshold {
            self.stats.graylisted_rpcs += 1;
            return;
        }
        for sub in rpc.subscriptions {
            self.handle_subscription(from, sub);
        }
        for msg in rpc.messages {
            self.handle_message(from, msg, now);
        }
        let c = rpc.control;
        let preambles_on = self.preambles_on();
        if let Some(ext) = &c.extensions
            && let Some(p) = self.peers.get_mut(&from)
            && !p.extensions_received
        {
            // Only the first one counts; a repeat is ignored.
            p.extensions_received = true;
            // Its extensions arrive on its stream, which may be up before ours: what it
            // advertised is enough (it runs v1.3 to send them).
            p.preamble_ext = preambles_on && ext.fields.contains(&PREAMBLE_EXTENSION);
        }
        if !c.idontwant.is_empty() {
            self.handle_idontwant(from, c.idontwant);
        }
        if preambles_on {
            if !c.imreceiving.is_empty() {
                self.handle_imreceiving(from, c.imreceiving);
            }
            for pre in c.preamble {
                self.handle_preamble(from, pre, now);
            }
        }
        for ihave in c.ihave {
            self.handle_ihave(from, ihave, now);
        }
        if !c.iwant.is_empty() {
            self.handle_iwant(from, c.iwant, now);
        }
        for topic in c.graft {
            self.handle_graft(from, topic, now);
        }
        for prune in c.prune {
            self.handle_prune(from, prune, now);
        }
        self.flush(now);
    }

    fn handle_subscription(&mut self, from: PeerId, sub: SubOpt) {
        let max = self.cfg.max_subscriptions_per_peer;
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        if sub.subscribe {
            if p.topics.contains(&sub.topic) {
                return;
            }
            if p.topics.len() >= max {
                self.stats.subscriptions_refused += 1;
                return;
            }
            p.topics.insert(sub.topic.clone());
            self.topic_peers
                .entry(sub.topic.clone())
                .or_default()
                .insert(from);
            self.events.push_back(Event::Subscribed {
                peer: from,
                topic: sub.topic,
            });
        } else {
            if !p.topics.remove(&sub.topic) {
                return;
            }
            if let Some(set) = self.topic_peers.get_mut(&sub.topic) {
                set.remove(&from);
                if set.is_empty() {
                    self.topic_peers.remove(&sub.topic);
                }
            }
            if let Some(m) = self.mesh.get_mut(&sub.topic)
                && m.remove(&from)
            {
                self.events.push_back(Event::Pruned {
                    peer: from,
                    topic: sub.topic.clone(),
                    by: MeshChange::Remote,
                });
            }
            if let Some((set, _)) = self.fanout.get_mut(&sub.topic) {
                set.remove(&from);
            }
            self.events.push_back(Event::Unsubscribed {
                peer: from,
                topic: sub.topic,
            });
        }
    }

    /// Keyed BLAKE3 of a message's raw bytes, truncated to 128 bits: a key nobody else
    /// knows, so nobody can make a new message look like a duplicate of another. BLAKE3 runs
    /// at several GB/s with SIMD: every duplicate is hashed, so this matters.
    fn raw_key(&self, raw: &[u8]) -> u128 {
        let h = blake3::keyed_hash(&self.raw_hash_key, raw);
        let mut k = [0u8; 16];
        k.copy_from_slice(&h.as_bytes()[..16]);
        u128::from_le_bytes(k)
    }

    fn handle_message(&mut self, from: PeerId, msg: RawMessage, now: Instant) {
        let topic = msg.topic.clone();
        if !self.mesh.contains_key(&topic) {
            self.stats.unsubscribed_topic += 1;
            return;
        }
        // The duplicate check runs on the raw bytes, before the id function (which may
        // decompress) and before any validation.
        let key = self.raw_key(&msg.raw);
        if let Some(id) = self.raw_seen.get(&key).cloned() {
            self.duplicate(from, &id, &topic, now);
            return;
        }
        let id = (self.cfg.message_id_fn)(&msg);
        self.raw_seen.insert(key, id.clone(), now);
        if !self.seen.insert(id.clone(), (), now) {
            self.duplicate(from, &id, &topic, now);
            return;
        }
        self.topic_stats.entry(topic.clone()).or_default().received += 1;
        // Whoever sent it, it arrived: promises for it are kept, an announcement completed.
        self.promises.remove(&id);
        self.alternates.remove(&id);
        if let Some(r) = self.receiving.remove(&id)
            && let Some(p) = self.peers.get_mut(&r.from)
        {
            p.preambles_open = p.preambles_open.saturating_sub(1);
        }
        if let Err(reason) = self.check_signing(&msg) {
            self.topic_stats.entry(topic.clone()).or_default().rejected += 1;
            tracing::debug!(peer = %from, %topic, reason, "message breaks the signing policy");
            if let Some(s) = &mut self.score {
                s.reject_message(&from, &id, &topic, RejectReason::InvalidSignature, now);
            }
            return;
        }
        if msg.raw.len() >= self.cfg.idontwant_message_size_threshold {
            let mesh: Vec<PeerId> = self
                .mesh
                .get(&topic)
                .map(|m| m.iter().copied().filter(|p| *p != from).collect())
                .unwrap_or_default();
            for p in mesh {
                self.queue_idontwant(p, &id);
            }
        }
        if let Some(s) = &mut self.score {
            s.validate_message(&from, &id, &topic, now);
        }
        if !self.cfg.validate_messages {
            self.events.push_back(Event::Message {
                source: from,
                id: id.clone(),
                message: msg.clone(),
            });
            self.accept(id, from, msg, &[], now);
            return;
        }
        let n = self.pending_per_topic.entry(topic.clone()).or_insert(0);
        if *n >= self.cfg.max_pending_validations_per_topic {
            // Forget it so a later copy can still bring it.
            self.seen.remove(&id);
            self.raw_seen.remove(&key);
            self.topic_stats.entry(topic.clone()).or_default().ignored += 1;
            if let Some(s) = &mut self.score {
                s.reject_message(&from, &id, &topic, RejectReason::ValidationQueueFull, now);
            }
            return;
        }
        *n += 1;
        self.pending.insert(
            id.clone(),
            Pending {
                source: from,
                message: msg.clone(),
                received: now,
                also_from: Vec::new(),
            },
        );
        self.events.push_back(Event::Message {
            source: from,
            id,
            message: msg,
        });
    }

    fn check_signing(&self, msg: &RawMessage) -> Result<(), &'static str> {
        match &self.cfg.signing {
            Signing::StrictNoSign => {
                if msg.from.is_some()
                    || msg.seqno.is_some()
                    || msg.signature.is_some()
                    || msg.key.is_some()
                {
                    return Err("from, seqno, signature or key present under StrictNoSign");
                }
                Ok(())
            }
            Signing::StrictSign(_) => match wire::verify_message(msg) {
                Ok(_) => Ok(()),
                Err(_) => Err("missing or invalid signature under StrictSign"),
            },
        }
    }

    fn duplicate(&mut self, from: PeerId, id: &MessageId, topic: &TopicHash, now: Instant) {
        self.topic_stats
            .entry(topic.clone())
            .or_default()
            .duplicates += 1;
        if let Some(s) = &mut self.score {
            s.duplicated_message(&from, id, topic, now);
        }
        if let Some(p) = self.pending.get_mut(id)
            && p.source != from
            && !p.also_from.contains(&from)
            && p.also_from.len() < MAX_ALSO_FROM
        {
            p.also_from.push(from);
        }
    }

    fn handle_idontwant(&mut self, from: PeerId, ids: Vec<MessageId>) {
        self.hold_back(from, ids, false);
    }

    /// Whether the experimental PREAMBLE / IMRECEIVING extension is on.
    fn preambles_on(&self) -> bool {
        self.cfg.preamble_threshold != usize::MAX
    }

    /// IMRECEIVING: the peer is receiving these messages from someone else right now. Honoured
    /// as IDONTWANT (same per-heartbeat cap, same expiry), from peers that read the extension.
    fn handle_imreceiving(&mut self, from: PeerId, ids: Vec<MessageId>) {
        self.hold_back(from, ids, true);
    }

    /// IDONTWANT or IMRECEIVING from `from`: cancel its queued copies of `ids` and send it none
    /// later (per-heartbeat cap, expiry after `idontwant_ttl_heartbeats`).
    fn hold_back(&mut self, from: PeerId, ids: Vec<MessageId>, imreceiving: bool) {
        let max = self.cfg.max_idontwant_per_heartbeat;
        let tick = self.ticks;
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        if imreceiving && !p.preamble_ext {
            return;
        }
        for id in ids {
            if p.idontwant_this_hb >= max {
                break;
            }
            p.idontwant_this_hb += 1;
            if imreceiving {
                self.stats.imreceiving_received += 1;
            } else {
                self.stats.idontwant_received += 1;
            }
            self.stats.idontwant_cancelled += p.queue.cancel(&id) as u64;
            p.dont_send.insert(id, tick);
        }
    }

    /// PREAMBLE: a mesh peer starts sending us a message. If we do not have it, tell our other
    /// mesh peers that read the extension IMRECEIVING, so they hold back their copies, and
    /// give the announcer until a deadline to deliver.
    fn handle_preamble(&mut self, from: PeerId, pre: Preamble, now: Instant) {
        let in_mesh = self.mesh.get(&pre.topic).is_some_and(|m| m.contains(&from));
        if !in_mesh || self.seen.contains(&pre.id) || self.receiving.contains_key(&pre.id) {
            return;
        }
        let max = self.cfg.max_preambles_per_peer;
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        if !p.preamble_ext || p.preambles_open >= max {
            return;
        }
        p.preambles_open += 1;
        self.stats.preambles_received += 1;
        // A stated length beyond any frame we accept is capped there.
        let len = pre.len.min(self.cfg.wire.max_transmit_size as u64);
        let transfer =
            Duration::from_secs_f64(len as f64 / self.cfg.preamble_min_rate.max(1) as f64);
        let told: Vec<PeerId> = self
            .mesh
            .get(&pre.topic)
            .map(|m| m.iter().copied().filter(|q| *q != from).collect())
            .unwrap_or_default();
        let told: Vec<PeerId> = told
            .into_iter()
            .filter(|q| self.queue_imreceiving(*q, &pre.id))
            .collect();
        self.receiving.insert(
            pre.id,
            Receiving {
                from,
                deadline: now + self.cfg.preamble_grace + transfer,
                told,
            },
        );
    }

    /// Queue IMRECEIVING for `id` to `p` if it reads the extension; whether queued.
    fn queue_imreceiving(&mut self, p: PeerId, id: &MessageId) -> bool {
        match self.peers.get_mut(&p) {
            Some(s) if s.preamble_ext && s.accepted => {
                s.pending.imreceiving.push(id.clone());
                self.stats.imreceiving_sent += 1;
                self.dirty.insert(p);
                true
            }
            _ => false,
        }
    }

    /// Announced messages past their deadline: the announcer gets a behaviour penalty, and
    /// the message is asked for with IWANT from mesh peers we had told IMRECEIVING (they
    /// held back their copies because of us).
    fn expire_preambles(&mut self, now: Instant) {
        let late: Vec<MessageId> = self
            .receiving
            .iter()
            .filter(|(_, r)| r.deadline <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in late {
            self.announcement_failed(&id, true);
        }
    }

    /// An announced message will not come from its announcer (late, or the announcer left):
    /// forget the announcement; unless the message arrived meanwhile, ask for it.
    fn announcement_failed(&mut self, id: &MessageId, penalise: bool) {
        let Some(r) = self.receiving.remove(id) else {
            return;
        };
        if let Some(p) = self.peers.get_mut(&r.from) {
            p.preambles_open = p.preambles_open.saturating_sub(1);
        }
        if self.seen.contains(id) {
            return;
        }
        self.stats.preambles_expired += 1;
        if penalise && let Some(s) = &mut self.score {
            s.add_penalty(&r.from, 1);
        }
        let mut asked = 0;
        for q in r.told {
            if asked >= PREAMBLE_FALLBACK_PEERS {
                break;
            }
            if let Some(p) = self.peers.get_mut(&q)
                && p.version.is_some()
            {
                p.pending.iwant.push(id.clone());
                self.stats.iwant_sent += 1;
                self.dirty.insert(q);
                asked += 1;
            }
        }
    }

    /// Messages under announcement (bounded by the peers times
    /// [`Config::max_preambles_per_peer`]).
    pub fn receiving_len(&self) -> usize {
        self.receiving.len()
    }

    fn handle_ihave(&mut self, from: PeerId, ihave: IHave, now: Instant) {
        if self.peer_score(&from, now) < self.thresholds.gossip_threshold {
            return;
        }
        if !self.mesh.contains_key(&ihave.topic) {
            return;
        }
        let max_msgs = self.cfg.max_ihave_messages;
        let max_len = self.cfg.max_ihave_length;
        let Some(p) = self.peers.get_mut(&from) else {
            return;
        };
        p.ihave_this_hb += 1;
        if p.ihave_this_hb > max_msgs || p.iasked_this_hb >= max_len {
            return;
        }
        // Linear in the ids (an IHAVE may carry 20,000): duplicates are caught by a set, not
        // by scanning what was kept so far.
        let mut unique: std::collections::HashSet<MessageId> = std::collections::HashSet::new();
        let mut want: Vec<MessageId> = Vec::new();
        for id in ihave.ids {
            if self.seen.contains(&id) || self.receiving.contains_key(&id) {
                continue;
            }
            if let Some(list) = self.promises.get(&id) {
                // Asked of someone else already: remember this announcer in case that
                // promise breaks.
                if !list.iter().any(|(q, _)| *q == from) {
                    let alts = self.alternates.entry(id).or_default();
                    if alts.len() < MAX_ALTERNATES && !alts.contains(&from) {
                        alts.push(from);
                    }
                }
                continue;
            }
            if unique.insert(id.clone()) {
                want.push(id);
            }
        }
        if want.is_empty() {
            return;
        }
        let budget = max_len - p.iasked_this_hb;
        if want.len() > budget {
            want.shuffle(&mut self.rng);
            want.truncate(budget);
        }
        p.iasked_this_hb += want.len();
        // One random id of the request is the promise the advertiser must keep.
        let i = self.rng.random_range(0..want.len());
        self.promises
            .entry(want[i].clone())
            .or_default()
            .push((from, now + self.cfg.iwant_followup_time));
        self.stats.iwant_sent += want.len() as u64;
        p.pending.iwant.extend(want);
        self.dirty.insert(from);
    }

    fn handle_iwant(&mut self, from: PeerId, ids: Vec<MessageId>, now: Instant) {
        if self.peer_score(&from, now) < self.thresholds.gossip_threshold {
            return;
        }
        for id in ids {
            // An IWANT after an IMRECEIVING is the fallback of an announcement that did not
            // deliver: the request wins.
            let Some(p) = self.peers.get_mut(&from) else {
                return;
            };
            if p.dont_send.contains_key(&id) {
                if !p.preamble_ext {
                    continue;
                }
                p.dont_send.remove(&id);
            }
            // A message we announced by lazy push is this peer's mesh copy: it goes with the
            // forwards, not behind them.
            let class = match p.lazy_announced.iter().position(|a| *a == id) {
                Some(i) => {
                    p.lazy_announced.swap_remove(i);
                    Class::Forward
                }
                None => Class::Gossip,
            };
            if let Some(frame) = self
                .mcache
                .get_for(&id, from, self.cfg.gossip_retransmission)
                && self.enqueue(from, class, frame, Some(id), now)
            {
                self.stats.iwant_served += 1;
            }
        }
    }

    fn handle_graft(&mut self, from: PeerId, topic: TopicHash, now: Instant) {
        let _span = tracing::debug_span!("graft_in", peer = %from, %topic).entered();
        let Some(mesh) = self.mesh.get(&topic) else {
            // Not subscribed: ignored (v1.1).
            return;
        };
        if mesh.contains(&from) {
            return;
        }
        let mesh_len = mesh.len();
        let Some(p) = self.peers.get(&from) else {
            return;
        };
        let inbound = p.conn.direction == Direction::Inbound;
        if !p.accepted {
            // Most often its Status handshake with us is still running: a short backoff,
            // on both sides, so the mesh forms soon after we accept it (a full
            // `prune_backoff` would keep the two apart for a minute).
            self.stats.graft_not_accepted += 1;
            tracing::debug!(reason = "not accepted", "graft refused");
            let backoff = self.cfg.unaccepted_prune_backoff;
            self.set_backoff(&topic, from, backoff, now);
            self.queue_prune(from, &topic, backoff, false, now);
            return;
        }
        if self.in_backoff(&topic, &from, now) {
            self.stats.graft_in_backoff += 1;
            tracing::debug!(reason = "backoff", "graft refused, penalised");
            let flood = self.pruned_at.get(&(topic.clone(), from)).is_some_and(|t| {
                now.saturating_duration_since(*t) < self.cfg.graft_flood_threshold
            });
            if let Some(s) = &mut self.score {
                s.add_penalty(&from, if flood { 2 } else { 1 });
            }
            self.set_backoff(&topic, from, self.cfg.prune_backoff, now);
            self.queue_prune(from, &topic, self.cfg.prune_backoff, false, now);
            return;
        }
        if self.peer_score(&from, now) < 0.0 {
            tracing::debug!(reason = "negative score", "graft refused");
            self.set_backoff(&topic, from, self.cfg.prune_backoff, now);
            self.queue_prune(from, &topic, self.cfg.prune_backoff, false, now);
            return;
        }
        if mesh_len >= self.cfg.mesh_n_high && inbound {
            tracing::debug!(reason = "mesh full, inbound", "graft refused");
            self.set_backoff(&topic, from, self.cfg.prune_backoff, now);
            self.queue_prune(from, &topic, self.cfg.prune_backoff, true, now);
            return;
        }
        if let Some(m) = self.mesh.get_mut(&topic) {
            m.insert(from);
        }
        if let Some(s) = &mut self.score {
            s.graft(&from, &topic, now);
        }
        tracing::debug!(peer = %from, %topic, "grafted by remote");
        self.events.push_back(Event::Grafted {
            peer: from,
            topic,
            by: MeshChange::Remote,
        });
    }

    fn handle_prune(&mut self, from: PeerId, prune: Prune, now: Instant) {
        let topic = prune.topic;
        let _span = tracing::debug_span!("prune_in", peer = %from, %topic).entered();
        if !self.mesh.contains_key(&topic) {
            // Not a topic of ours: nothing to leave, and no backoff entry a peer could use
            // to grow our memory with made-up topics.
            return;
        }
        if let Some(m) = self.mesh.get_mut(&topic)
            && m.remove(&from)
        {
            if let Some(s) = &mut self.score {
                s.prune(&from, &topic, now);
            }
            tracing::debug!(peer = %from, %topic, "pruned by remote");
            self.events.push_back(Event::Pruned {
                peer: from,
                topic: topic.clone(),
                by: MeshChange::Remote,
            });
        }
        // Every duration a peer sends is clamped.
        let backoff = prune
            .backoff
            .map(|s| Duration::from_secs(s.min(self.cfg.max_prune_backoff.as_secs())))
            .unwrap_or(self.cfg.prune_backoff);
        self.set_backoff(&topic, from, backoff, now);
        if self.cfg.do_px
            && !prune.peers.is_empty()
            && self.peer_score(&from, now) >= self.thresholds.accept_px_threshold
        {
            let mut peers = prune.peers;
            peers.truncate(self.cfg.prune_peers);
            self.events
                .push_back(Event::PeerExchange { from, topic, peers });
        }
    }

    // ----- heartbeat -----

    /// Run what is due at `now`: the heartbeat (mesh maintenance, fanout, gossip, cache
    /// shifts, expiries, score decay, slow-peer reports).
    pub fn handle_timeout(&mut self, now: Instant) {
        if now < self.next_heartbeat {
            return;
        }
        self.next_heartbeat = now + self.cfg.heartbeat_interval;
        self.heartbeat(now);
        self.flush(now);
    }

    fn heartbeat(&mut self, now: Instant) {
        self.ticks += 1;
        // Deferred copies wait at most until the next heartbeat (a slow mesh peer must not
        // hold them back).
        let deferred: Vec<MessageId> = self.deferred.keys().cloned().collect();
        for id in deferred {
            self.release_deferred(&id, now);
        }
        if let Some(s) = &mut self.score {
            s.refresh(now);
        }
        self.expire_backoffs(now);
        self.check_promises(now);
        self.expire_preambles(now);
        self.expire_validations(now);
        self.seen.expire(now);
        self.raw_seen.expire(now);

        let topics: Vec<TopicHash> = self.mesh.keys().cloned().collect();
        for topic in &topics {
            self.maintain_mesh(topic, now);
        }
        self.maintain_fanout(now);
        for topic in &topics {
            let exclude = self.mesh.get(topic).cloned().unwrap_or_default();
            self.emit_gossip(topic, &exclude, now);
        }
        let fanout: Vec<(TopicHash, BTreeSet<PeerId>)> = self
            .fanout
            .iter()
            .map(|(t, (s, _))| (t.clone(), s.clone()))
            .collect();
        for (topic, exclude) in fanout {
            self.emit_gossip(&topic, &exclude, now);
        }
        self.mcache.shift();

        let ttl = self.cfg.idontwant_ttl_heartbeats;
        let tick = self.ticks;
        let qcfg = self.cfg.queue.clone();
        for (peer, p) in self.peers.iter_mut() {
            p.dont_send.retain(|_, t| *t + ttl > tick);
            p.idontwant_this_hb = 0;
            p.ihave_this_hb = 0;
            p.iasked_this_hb = 0;
            p.lazy_this_hb = 0;
            p.lazy_announced.clear();
            p.queue.expire(&qcfg, now);
            let dropped = p.queue.take_drops();
            if dropped.iter().any(|d| *d > 0) {
                for (i, d) in dropped.iter().enumerate() {
                    self.stats.queue_drops[i] += d;
                }
                tracing::debug!(%peer, ?dropped, "slow peer");
                self.events.push_back(Event::SlowPeer {
                    peer: *peer,
                    dropped,
                    queued: p.queue.bytes(),
                });
            }
        }
        self.pruned_at
            .retain(|_, t| now.saturating_duration_since(*t) < self.cfg.graft_flood_threshold);
    }

    fn maintain_mesh(&mut self, topic: &TopicHash, now: Instant) {
        let _span = tracing::debug_span!("mesh_maintenance", %topic).entered();
        let Some(mesh) = self.mesh.get(topic).cloned() else {
            return;
        };
        // Peers with a negative score, or no longer eligible, leave.
        for p in &mesh {
            let eligible =
                self.is_accepted(p) && self.peers.get(p).is_some_and(|s| s.topics.contains(topic));
            if !eligible || self.peer_score(p, now) < 0.0 {
                self.prune_peer(topic, *p, self.cfg.prune_backoff, false, now);
            }
        }
        let mesh = self.mesh.get(topic).cloned().unwrap_or_default();
        let n = mesh.len();
        if n < self.cfg.mesh_n_low {
            let need = self.cfg.mesh_n - n;
            let add = self.pick(topic, need, now, |r, p| {
                !mesh.contains(p) && r.can_graft(topic, p, now)
            });
            for p in add {
                self.graft_peer(topic, p, now);
            }
        } else if n > self.cfg.mesh_n_high {
            self.shrink_mesh(topic, &mesh, now);
        }
        // Outbound quota.
        let mesh = self.mesh.get(topic).cloned().unwrap_or_default();
        if mesh.len() >= self.cfg.mesh_n_low {
            let outbound = mesh.iter().filter(|p| self.is_outbound(p)).count();
            if outbound < self.cfg.mesh_outbound_min {
                // Never past D_high: the heartbeat leaves every mesh within bounds.
                let need = (self.cfg.mesh_outbound_min - outbound)
                    .min(self.cfg.mesh_n_high.saturating_sub(mesh.len()));
                let add = self.pick(topic, need, now, |r, p| {
                    !mesh.contains(p) && r.is_outbound(p) && r.can_graft(topic, p, now)
                });
                for p in add {
                    self.graft_peer(topic, p, now);
                }
            }
        }
        // Opportunistic grafting.
        if self.score.is_some()
            && self.cfg.opportunistic_graft_ticks > 0
            && self
                .ticks
                .is_multiple_of(self.cfg.opportunistic_graft_ticks)
        {
            let mesh = self.mesh.get(topic).cloned().unwrap_or_default();
            if mesh.len() > 1 {
                let mut scores: Vec<f64> = mesh.iter().map(|p| self.peer_score(p, now)).collect();
                scores.sort_by(f64::total_cmp);
                let median = scores[scores.len() / 2];
                if median < self.thresholds.opportunistic_graft_threshold {
                    let room = self.cfg.mesh_n_high.saturating_sub(mesh.len());
                    let n = self.cfg.opportunistic_graft_peers.min(room);
                    let add = self.pick(topic, n, now, |r, p| {
                        !mesh.contains(p)
                            && r.can_graft(topic, p, now)
                            && r.peer_score(p, now) > median
                    });
                    for p in add {
                        tracing::debug!(peer = %p, %topic, median, "opportunistic graft");
                        self.graft_peer(topic, p, now);
                    }
                }
            }
        }
    }

    /// Keep D peers of an oversized mesh: the best D_score by score, the rest at random,
    /// with at least D_out outbound; prune the others.
    fn shrink_mesh(&mut self, topic: &TopicHash, mesh: &BTreeSet<PeerId>, now: Instant) {
        let mut peers: Vec<PeerId> = mesh.iter().copied().collect();
        peers.shuffle(&mut self.rng);
        peers.sort_by(|a, b| self.peer_score(b, now).total_cmp(&self.peer_score(a, now)));
        let d = self.cfg.mesh_n;
        let d_score = self.cfg.mesh_outbound_min_score_kept.min(d);
        let (best, rest) = peers.split_at(d_score.min(peers.len()));
        let mut rest = rest.to_vec();
        rest.shuffle(&mut self.rng);
        let mut keep: Vec<PeerId> = best.to_vec();
        keep.extend(rest.iter().take(d - keep.len()).copied());
        // Enough outbound peers among the kept ones.
        let outbound_kept = keep.iter().filter(|p| self.is_outbound(p)).count();
        if outbound_kept < self.cfg.mesh_outbound_min {
            let mut spare: Vec<PeerId> = rest
                .iter()
                .filter(|p| !keep.contains(p) && self.is_outbound(p))
                .copied()
                .collect();
            let mut need = self.cfg.mesh_outbound_min - outbound_kept;
            // Replace inbound peers from the random part (never the best D_score).
            let mut i = keep.len();
            while need > 0 && i > d_score {
                i -= 1;
                if !self.is_outbound(&keep[i]) {
                    if let Some(o) = spare.pop() {
                        keep[i] = o;
                        need -= 1;
                    } else {
                        break;
                    }
                }
            }
        }
        for p in peers {
            if !keep.contains(&p) {
                self.prune_peer(topic, p, self.cfg.prune_backoff, true, now);
            }
        }
    }

    fn maintain_fanout(&mut self, now: Instant) {
        let ttl = self.cfg.fanout_ttl;
        self.fanout
            .retain(|_, (_, last)| now.saturating_duration_since(*last) < ttl);
        let topics: Vec<TopicHash> = self.fanout.keys().cloned().collect();
        let publish = self.thresholds.publish_threshold;
        for topic in topics {
            let Some((set, _)) = self.fanout.get(&topic).cloned() else {
                continue;
            };
            let keep: BTreeSet<PeerId> = set
                .into_iter()
                .filter(|p| {
                    self.is_accepted(p)
                        && self.peers.get(p).is_some_and(|s| s.topics.contains(&topic))
                        && self.peer_score(p, now) >= publish
                })
                .collect();
            let need = self.cfg.mesh_n.saturating_sub(keep.len());
            let add = self.pick(&topic, need, now, |r, p| {
                !keep.contains(p) && r.is_accepted(p) && r.peer_score(p, now) >= publish
            });
            if let Some((set, _)) = self.fanout.get_mut(&topic) {
                *set = keep.into_iter().chain(add).collect();
            }
        }
    }

    fn emit_gossip(&mut self, topic: &TopicHash, exclude: &BTreeSet<PeerId>, now: Instant) {
        let mut ids = self.mcache.gossip_ids(topic);
        if ids.is_empty() {
            return;
        }
        let gossip = self.thresholds.gossip_threshold;
        let cands: Vec<PeerId> = self
            .topic_peers
            .get(topic)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        let mut cands: Vec<PeerId> = cands
            .into_iter()
            .filter(|p| {
                !exclude.contains(p) && self.sendable(p) && self.peer_score(p, now) >= gossip
            })
            .collect();
        let n = ((self.cfg.gossip_factor * cands.len() as f64) as usize).max(self.cfg.gossip_lazy);
        cands.shuffle(&mut self.rng);
        cands.truncate(n);
        for p in cands {
            if ids.len() > self.cfg.max_ihave_ids_sent {
                ids.shuffle(&mut self.rng);
            }
            let take: Vec<MessageId> = ids
                .iter()
                .filter(|id| {
                    self.peers
                        .get(&p)
                        .is_some_and(|s| !s.dont_send.contains_key(*id))
                })
                .take(self.cfg.max_ihave_ids_sent)
                .cloned()
                .collect();
            if take.is_empty() {
                continue;
            }
            if let Some(s) = self.peers.get_mut(&p) {
                self.stats.ihave_sent += take.len() as u64;
                s.pending.ihave.push(IHave {
                    topic: topic.clone(),
                    ids: take,
                });
                self.dirty.insert(p);
            }
        }
    }

    fn expire_backoffs(&mut self, now: Instant) {
        // Kept until our own grafts may resume (the slack past the backoff).
        let slack = self.cfg.backoff_slack;
        for b in self.backoff.values_mut() {
            b.retain(|_, until| *until + slack > now);
        }
        self.backoff.retain(|_, b| !b.is_empty());
    }

    fn check_promises(&mut self, now: Instant) {
        let mut broken: Vec<PeerId> = Vec::new();
        let mut lapsed: Vec<MessageId> = Vec::new();
        self.promises.retain(|id, list| {
            list.retain(|(p, deadline)| {
                if *deadline <= now {
                    broken.push(*p);
                    false
                } else {
                    true
                }
            });
            if list.is_empty() {
                lapsed.push(id.clone());
            }
            !list.is_empty()
        });
        for id in lapsed {
            self.ask_alternate(&id, now);
        }
        self.stats.broken_promises += broken.len() as u64;
        if let Some(s) = &mut self.score {
            for p in broken {
                s.add_penalty(&p, 1);
            }
        }
    }

    /// No promise for `id` is pending any more and the message has not come: ask the next
    /// peer that announced it too, if one is still here; else forget the announcers.
    fn ask_alternate(&mut self, id: &MessageId, now: Instant) {
        let Some(mut alts) = self.alternates.remove(id) else {
            return;
        };
        if self.seen.contains(id) || self.promises.contains_key(id) {
            return;
        }
        while !alts.is_empty() {
            let q = alts.remove(0);
            if let Some(p) = self.peers.get_mut(&q)
                && p.version.is_some()
            {
                p.pending.iwant.push(id.clone());
                self.stats.iwant_sent += 1;
                self.dirty.insert(q);
                self.promises
                    .insert(id.clone(), vec![(q, now + self.cfg.iwant_followup_time)]);
                if !alts.is_empty() {
                    self.alternates.insert(id.clone(), alts);
                }
                return;
            }
        }
    }

    fn expire_validations(&mut self, now: Instant) {
        let timeout = self.cfg.validation_timeout;
        let expired: Vec<MessageId> = self
            .pending
            .iter()
            .filter(|(_, p)| now.saturating_duration_since(p.received) >= timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(p) = self.pending.remove(&id) {
                let topic = p.message.topic;
                if let Some(n) = self.pending_per_topic.get_mut(&topic) {
                    *n = n.saturating_sub(1);
                }
                self.topic_stats.entry(topic.clone()).or_default().ignored += 1;
                if let Some(s) = &mut self.score {
                    s.reject_message(&p.source, &id, &topic, RejectReason::Ignored, now);
                }
            }
        }
    }

    // ----- helpers -----

    fn is_outbound(&self, p: &PeerId) -> bool {
        self.peers
            .get(p)
            .is_some_and(|s| s.conn.direction == Direction::Outbound)
    }

    /// Whether a message for the peer can be queued: accepted, and our stream is up or
    /// being reopened.
    fn deliverable(&self, p: &PeerId) -> bool {
        self.peers
            .get(p)
            .is_some_and(|s| (s.version.is_some() || s.reopening) && s.accepted)
    }

    /// Whether we can send to the peer: our stream is up and the application accepts it.
    fn sendable(&self, p: &PeerId) -> bool {
        self.peers
            .get(p)
            .is_some_and(|s| s.version.is_some() && s.accepted)
    }

    /// Whether we may graft `p` into our mesh of `topic`: sendable, subscribed, not in
    /// backoff, score ≥ 0.
    fn can_graft(&self, topic: &TopicHash, p: &PeerId, now: Instant) -> bool {
        self.sendable(p)
            && self.peers.get(p).is_some_and(|s| s.topics.contains(topic))
            && !self.graft_waits(topic, p, now)
            && self.peer_score(p, now) >= 0.0
    }

    /// Up to `n` random peers subscribed to `topic` that pass `filter`.
    fn pick(
        &mut self,
        topic: &TopicHash,
        n: usize,
        _now: Instant,
        filter: impl Fn(&Router, &PeerId) -> bool,
    ) -> Vec<PeerId> {
        if n == 0 {
            return Vec::new();
        }
        let mut cands: Vec<PeerId> = self
            .topic_peers
            .get(topic)
            .map(|s| s.iter().filter(|p| filter(self, p)).copied().collect())
            .unwrap_or_default();
        cands.shuffle(&mut self.rng);
        cands.truncate(n);
        cands
    }

    fn graft_peer(&mut self, topic: &TopicHash, p: PeerId, now: Instant) {
        let Some(m) = self.mesh.get_mut(topic) else {
            return;
        };
        m.insert(p);
        if let Some(s) = &mut self.score {
            s.graft(&p, topic, now);
        }
        if let Some(s) = self.peers.get_mut(&p) {
            s.pending.graft.push(topic.clone());
            s.pending_mandatory = true;
            self.dirty.insert(p);
        }
        tracing::debug!(peer = %p, %topic, "graft");
        self.events.push_back(Event::Grafted {
            peer: p,
            topic: topic.clone(),
            by: MeshChange::Local,
        });
    }

    /// Remove `p` from our mesh, tell it (PRUNE with backoff, PX if asked and allowed) and
    /// back off ourselves.
    fn prune_peer(
        &mut self,
        topic: &TopicHash,
        p: PeerId,
        backoff: Duration,
        px: bool,
        now: Instant,
    ) {
        if let Some(m) = self.mesh.get_mut(topic)
            && m.remove(&p)
        {
            if let Some(s) = &mut self.score {
                s.prune(&p, topic, now);
            }
            tracing::debug!(peer = %p, %topic, "prune");
            self.events.push_back(Event::Pruned {
                peer: p,
                topic: topic.clone(),
                by: MeshChange::Local,
            });
        }
        self.set_backoff(topic, p, backoff, now);
        self.queue_prune(p, topic, backoff, px, now);
    }

    fn set_backoff(&mut self, topic: &TopicHash, p: PeerId, backoff: Duration, now: Instant) {
        let until = now + backoff;
        let entry = self
            .backoff
            .entry(topic.clone())
            .or_default()
            .entry(p)
            .or_insert(until);
        if *entry < until {
            *entry = until;
        }
        self.pruned_at.insert((topic.clone(), p), now);
    }

    fn queue_prune(
        &mut self,
        p: PeerId,
        topic: &TopicHash,
        backoff: Duration,
        px: bool,
        now: Instant,
    ) {
        let Some(version) = self.peers.get(&p).and_then(|s| s.version) else {
            return;
        };
        let peers =
            if px && self.cfg.do_px && version.has_backoff() && self.peer_score(&p, now) >= 0.0 {
                let candidates = self.pick(topic, self.cfg.prune_peers, now, |r, q| {
                    *q != p && r.peer_score(q, now) >= 0.0
                });
                candidates
                    .into_iter()
                    .map(|q| PxPeer {
                        peer_id: Some(Bytes::copy_from_slice(q.as_bytes())),
                        signed_peer_record: None,
                    })
                    .collect()
            } else {
                Vec::new()
            };
        let Some(s) = self.peers.get_mut(&p) else {
            return;
        };
        s.pending.prune.push(Prune {
            topic: topic.clone(),
            peers,
            backoff: version.has_backoff().then_some(backoff.as_secs()),
        });
        s.pending_mandatory = true;
        self.dirty.insert(p);
    }

    fn queue_sub(&mut self, p: PeerId, topic: &TopicHash, subscribe: bool) {
        if let Some(s) = self.peers.get_mut(&p) {
            s.pending_subs.push(SubOpt {
                subscribe,
                topic: topic.clone(),
            });
            s.pending_mandatory = true;
            self.dirty.insert(p);
        }
    }

    fn queue_idontwant(&mut self, p: PeerId, id: &MessageId) {
        if let Some(s) = self.peers.get_mut(&p)
            && s.version.is_some_and(Version::has_idontwant)
            && s.accepted
        {
            s.pending.idontwant.push(id.clone());
            self.stats.idontwant_sent += 1;
            self.dirty.insert(p);
        }
    }

    /// Put a frame in a peer's queue; false when refused.
    fn enqueue(
        &mut self,
        p: PeerId,
        class: Class,
        frame: Bytes,
        id: Option<MessageId>,
        now: Instant,
    ) -> bool {
        let Some(s) = self.peers.get_mut(&p) else {
            return false;
        };
        if s.version.is_none() && !s.reopening {
            return false;
        }
        match s.queue.push(&self.cfg.queue, class, frame, id, false, now) {
            Ok(()) => {
                self.ready.insert(p);
                true
            }
            Err(_) => false,
        }
    }

    /// Encode each dirty peer's pending control into one frame.
    fn flush(&mut self, now: Instant) {
        while let Some(p) = self.dirty.pop_first() {
            let Some(s) = self.peers.get_mut(&p) else {
                continue;
            };
            let Some(version) = s.version else {
                s.pending = Control::default();
                s.pending_subs.clear();
                s.pending_mandatory = false;
                continue;
            };
            let mut control = std::mem::take(&mut s.pending);
            let subs = std::mem::take(&mut s.pending_subs);
            let mandatory = std::mem::take(&mut s.pending_mandatory);
            if !version.has_idontwant() {
                control.idontwant.clear();
            }
            if !s.preamble_ext {
                control.imreceiving.clear();
            }
            if version.has_extensions() && !s.extensions_sent {
                s.extensions_sent = true;
                let on = self.cfg.preamble_threshold != usize::MAX;
                control.extensions = Some(Extensions {
                    fields: if on {
                        vec![PREAMBLE_EXTENSION]
                    } else {
                        Vec::new()
                    },
                });
            }
            if control.is_empty() && subs.is_empty() {
                continue;
            }
            for (subs, control) in split_control(subs, control) {
                let frame = wire::encode_control_frame(&subs, &control);
                if s.queue
                    .push(&self.cfg.queue, Class::Control, frame, None, mandatory, now)
                    .is_ok()
                {
                    self.ready.insert(p);
                }
            }
        }
    }
}

/// Most IHAVE ids, and most IWANT ids, in one RPC we send: js-libp2p rejects an RPC with
/// more than 5000 of either.
pub const MAX_SENT_IDS_PER_RPC: usize = 5000;
/// Most IDONTWANT ids in one RPC we send: js-libp2p rejects more than 512.
pub const MAX_SENT_IDONTWANT_PER_RPC: usize = 500;
/// Most control bytes (estimated) in one RPC we send: jvm-libp2p rejects more than 256 KiB
/// of control and subscriptions.
pub const MAX_SENT_CONTROL_BYTES: usize = 192 * 1024;

/// Split pending control into RPCs every implementation reads (send conservatively).
fn split_control(subs: Vec<SubOpt>, control: Control) -> Vec<(Vec<SubOpt>, Control)> {
    struct Acc {
        out: Vec<(Vec<SubOpt>, Control)>,
        subs: Vec<SubOpt>,
        c: Control,
        bytes: usize,
        ihave: usize,
        iwant: usize,
        idontwant: usize,
    }
    impl Acc {
        fn room(&mut self, bytes: usize) {
            if self.bytes + bytes > MAX_SENT_CONTROL_BYTES && self.bytes > 0 {
                self.cut();
            }
            self.bytes += bytes;
        }
        fn cut(&mut self) {
            let subs = std::mem::take(&mut self.subs);
            let c = std::mem::take(&mut self.c);
            if !subs.is_empty() || !c.is_empty() {
                self.out.push((subs, c));
            }
            self.bytes = 0;
            self.ihave = 0;
            self.iwant = 0;
            self.idontwant = 0;
        }
    }
    let mut a = Acc {
        out: Vec::new(),
        subs: Vec::new(),
        c: Control::default(),
        bytes: 0,
        ihave: 0,
        iwant: 0,
        idontwant: 0,
    };
    a.c.extensions = control.extensions;
    for sub in subs {
        a.room(sub.topic.as_str().len() + 8);
        a.subs.push(sub);
    }
    for t in control.graft {
        a.room(t.as_str().len() + 6);
        a.c.graft.push(t);
    }
    for pr in control.prune {
        let px: usize = pr
            .peers
            .iter()
            .map(|p| {
                p.peer_id.as_ref().map_or(0, |b| b.len())
                    + p.signed_peer_record.as_ref().map_or(0, |b| b.len())
                    + 8
            })
            .sum();
        a.room(pr.topic.as_str().len() + px + 16);
        a.c.prune.push(pr);
    }
    for id in control.idontwant {
        if a.idontwant >= MAX_SENT_IDONTWANT_PER_RPC {
            a.cut();
        }
        a.room(id.as_bytes().len() + 4);
        a.idontwant += 1;
        a.c.idontwant.push(id);
    }
    // IMRECEIVING counts with IDONTWANT (plexus peers only read it; same shape).
    for id in control.imreceiving {
        if a.idontwant >= MAX_SENT_IDONTWANT_PER_RPC {
            a.cut();
        }
        a.room(id.as_bytes().len() + 8);
        a.idontwant += 1;
        a.c.imreceiving.push(id);
    }
    for id in control.iwant {
        if a.iwant >= MAX_SENT_IDS_PER_RPC {
            a.cut();
        }
        a.room(id.as_bytes().len() + 4);
        a.iwant += 1;
        a.c.iwant.push(id);
    }
    for ih in control.ihave {
        let topic = ih.topic;
        let header = topic.as_str().len() + 6;
        a.room(header);
        let mut entry = IHave {
            topic: topic.clone(),
            ids: Vec::new(),
        };
        for id in ih.ids {
            let b = id.as_bytes().len() + 4;
            if a.ihave >= MAX_SENT_IDS_PER_RPC || a.bytes + b > MAX_SENT_CONTROL_BYTES {
                if !entry.ids.is_empty() {
                    let full = std::mem::take(&mut entry.ids);
                    a.c.ihave.push(IHave {
                        topic: topic.clone(),
                        ids: full,
                    });
                }
                a.cut();
                a.bytes += header;
            }
            a.bytes += b;
            a.ihave += 1;
            entry.ids.push(id);
        }
        if !entry.ids.is_empty() {
            a.c.ihave.push(entry);
        }
    }
    a.cut();
    a.out
}
