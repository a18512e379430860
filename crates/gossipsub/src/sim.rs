//! A deterministic network of routers in virtual time: no sockets, no sleeps.
//!
//! Each directed link has a latency and a bandwidth and one writer that takes one frame at a
//! time from the sender's router, as the tokio glue does. Frames go through the real wire
//! codec. The application of each node validates with a [`Verdict`] function. Used by the
//! simulation tests and the router fuzz target; useful to try parameters.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use plexus_core::{Direction, PeerId};
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

use crate::Config;
use crate::router::{Acceptance, Event, PeerConn, Router};
use crate::types::{MessageId, RawMessage, Version};
use crate::wire::{FrameDecoder, decode_rpc};

/// How a node's application judges a message.
pub type Verdict = fn(&RawMessage) -> Acceptance;

/// A link's shape. A frame occupies the sender's uplink for `len / upload` and the link for
/// `len / min(upload, bytes_per_sec)`, then arrives `latency` later: a slow link slows only
/// itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkShape {
    /// One-way latency.
    pub latency: Duration,
    /// Bytes per second the link carries (the receiver's share).
    pub bytes_per_sec: u64,
}

impl Default for LinkShape {
    fn default() -> Self {
        LinkShape {
            latency: Duration::from_millis(20),
            bytes_per_sec: 50_000_000,
        }
    }
}

#[derive(Debug)]
struct Link {
    shape: LinkShape,
    busy: bool,
}

/// Default upload of a node: 100 Mbit/s.
pub const DEFAULT_UPLOAD: u64 = 12_500_000;

/// A message's arrival at one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The node.
    pub node: usize,
    /// When the application got it.
    pub at: Instant,
}

/// One node: a router and what its application saw.
pub struct Node {
    /// Its peer id.
    pub id: PeerId,
    /// Its router.
    pub router: Router,
    /// How its application validates.
    pub verdict: Verdict,
    /// Peers its application refuses (never accepted for meshes).
    pub refuse: BTreeSet<PeerId>,
    /// Messages received (first copy), by id.
    pub received: BTreeMap<MessageId, Instant>,
    /// Bytes of frames this node received.
    pub bytes_in: u64,
    /// Mesh members added at any time, per topic (for "never in a mesh" checks).
    pub ever_meshed: BTreeSet<PeerId>,
    /// Every PRUNE received with its backoff in seconds: (from, topic, when, backoff).
    pub prune_backoffs: Vec<(PeerId, crate::TopicHash, Instant, Option<u64>)>,
    /// Every GRAFT this node's router sent: (to, topic, when).
    pub grafts_sent: Vec<(PeerId, crate::TopicHash, Instant)>,
    /// Upload bytes per second shared by all its links.
    pub upload: u64,
    uplink_busy: bool,
    /// Round-robin cursor over peers for the uplink.
    cursor: usize,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Wake {
    /// A frame arrives at `to` from `from`.
    Arrive { to: usize, from: usize, seq: u64 },
    /// The writer of link (from, to) finished a frame.
    Idle { from: usize, to: usize },
    /// Node `node`'s uplink is free again.
    Uplink { node: usize },
    /// Node `node`'s application finished validating message `id`.
    Validated {
        node: usize,
        id: MessageId,
        verdict: Acceptance,
    },
}

/// The network.
pub struct Network {
    /// The nodes.
    pub nodes: Vec<Node>,
    index: HashMap<PeerId, usize>,
    links: BTreeMap<(usize, usize), Link>,
    wakes: BinaryHeap<Reverse<(Instant, u64, Wake)>>,
    frames: HashMap<u64, Bytes>,
    seq: u64,
    now: Instant,
    start: Instant,
    rng: SmallRng,
    /// Origin time of each published message.
    pub published: BTreeMap<MessageId, (usize, Instant)>,
    /// How long an application takes to validate a message (a beacon node checks
    /// signatures: tens of milliseconds for a block). Default zero.
    pub validation_delay: Duration,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network")
            .field("nodes", &self.nodes.len())
            .finish_non_exhaustive()
    }
}

/// Accept everything.
pub fn accept_all(_: &RawMessage) -> Acceptance {
    Acceptance::Accept
}

impl Network {
    /// `n` nodes with configs from `cfg(i)`, seeded.
    ///
    /// # Panics
    /// If a config is invalid (a test setup error).
    pub fn new(n: usize, seed: u64, cfg: impl Fn(usize) -> Config) -> Network {
        let start = Instant::now();
        let mut rng = SmallRng::seed_from_u64(seed);
        let mut nodes = Vec::with_capacity(n);
        let mut index = HashMap::new();
        for i in 0..n {
            let mut key = [0u8; 32];
            key[..8].copy_from_slice(&(seed ^ (i as u64 + 1)).to_le_bytes());
            key[8] = 1;
            let id = plexus_identity::Keypair::ed25519_from_bytes(key)
                .expect("valid ed25519 secret")
                .public()
                .to_peer_id();
            let router = Router::new(cfg(i), id, rng.random(), start).expect("valid config");
            index.insert(id, i);
            nodes.push(Node {
                id,
                router,
                verdict: accept_all,
                refuse: BTreeSet::new(),
                received: BTreeMap::new(),
                bytes_in: 0,
                ever_meshed: BTreeSet::new(),
                prune_backoffs: Vec::new(),
                grafts_sent: Vec::new(),
                upload: DEFAULT_UPLOAD,
                uplink_busy: false,
                cursor: 0,
            });
        }
        Network {
            nodes,
            index,
            links: BTreeMap::new(),
            wakes: BinaryHeap::new(),
            frames: HashMap::new(),
            seq: 0,
            now: start,
            start,
            rng,
            published: BTreeMap::new(),
            validation_delay: Duration::ZERO,
        }
    }

    /// The current virtual time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Time since the start.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The node index of a peer id.
    pub fn index_of(&self, p: &PeerId) -> Option<usize> {
        self.index.get(p).copied()
    }

    /// Connect `a` (dialer) to `b` with both directions shaped `shape`, both speaking
    /// `version`.
    pub fn connect(&mut self, a: usize, b: usize, shape: LinkShape, version: Version) {
        if a == b || self.links.contains_key(&(a, b)) {
            return;
        }
        self.links.insert((a, b), Link { shape, busy: false });
        self.links.insert((b, a), Link { shape, busy: false });
        let now = self.now;
        let (ia, ib) = (self.nodes[a].id, self.nodes[b].id);
        let ip_a = Some(std::net::IpAddr::from([10, 0, (a >> 8) as u8, a as u8]));
        let ip_b = Some(std::net::IpAddr::from([10, 0, (b >> 8) as u8, b as u8]));
        for (x, peer, dir, ip) in [
            (a, ib, Direction::Outbound, ip_b),
            (b, ia, Direction::Inbound, ip_a),
        ] {
            let node = &mut self.nodes[x];
            node.router
                .add_peer(peer, PeerConn { direction: dir, ip }, now);
            if node.refuse.contains(&peer) {
                node.router.set_accepted(peer, false, now);
            }
        }
        self.nodes[a].router.outbound_ready(ib, version, now);
        self.nodes[b].router.outbound_ready(ia, version, now);
        self.pump(a);
        self.pump(b);
    }

    /// Set node `i`'s upload bytes per second.
    pub fn set_upload(&mut self, i: usize, bytes_per_sec: u64) {
        self.nodes[i].upload = bytes_per_sec;
    }

    /// Connect every node to `k` random others (it dials them).
    pub fn connect_random(&mut self, k: usize, shape: LinkShape, version: Version) {
        let n = self.nodes.len();
        for a in 0..n {
            let mut others: Vec<usize> = (0..n).filter(|b| *b != a).collect();
            others.shuffle(&mut self.rng);
            for b in others.into_iter().take(k) {
                self.connect(a, b, shape, version);
            }
        }
    }

    /// Change the shape of the link `from → to`.
    pub fn set_link(&mut self, from: usize, to: usize, shape: LinkShape) {
        if let Some(l) = self.links.get_mut(&(from, to)) {
            l.shape = shape;
        }
    }

    /// Whether `a` and `b` are connected.
    pub fn connected(&self, a: usize, b: usize) -> bool {
        self.links.contains_key(&(a, b))
    }

    /// Disconnect `a` and `b`.
    pub fn disconnect(&mut self, a: usize, b: usize) {
        self.links.remove(&(a, b));
        self.links.remove(&(b, a));
        let now = self.now;
        let (ia, ib) = (self.nodes[a].id, self.nodes[b].id);
        self.nodes[a].router.remove_peer(&ib, now);
        self.nodes[b].router.remove_peer(&ia, now);
    }

    /// Let node `i` subscribe to `topic`.
    pub fn subscribe(&mut self, i: usize, topic: &str) {
        let now = self.now;
        self.nodes[i].router.subscribe(topic.into(), now);
        self.pump(i);
    }

    /// Let node `i` publish; returns the id when the router took it.
    pub fn publish(&mut self, i: usize, topic: &str, data: Bytes) -> Option<MessageId> {
        let now = self.now;
        let res = self.nodes[i].router.publish(topic.into(), data, now);
        self.pump(i);
        let id = res.ok()?;
        self.published.insert(id.clone(), (i, now));
        self.nodes[i].received.insert(id.clone(), now);
        Some(id)
    }

    /// Run until virtual time `t`.
    pub fn run_until(&mut self, t: Instant) {
        loop {
            let next_wake = self.wakes.peek().map(|Reverse((at, _, _))| *at);
            let (ti, next_timer) = self
                .nodes
                .iter()
                .enumerate()
                .map(|(i, n)| (i, n.router.poll_timeout()))
                .min_by_key(|(_, at)| *at)
                .unwrap_or((0, t));
            let next = match next_wake {
                Some(w) if w <= next_timer => w,
                _ => next_timer,
            };
            if next > t {
                self.now = t;
                return;
            }
            self.now = self.now.max(next);
            if next_wake == Some(next) {
                if let Some(Reverse((_, _, wake))) = self.wakes.pop() {
                    self.wake(wake);
                }
            } else {
                let now = self.now;
                self.nodes[ti].router.handle_timeout(now);
                self.pump(ti);
            }
        }
    }

    /// Run for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    fn wake(&mut self, wake: Wake) {
        let now = self.now;
        match wake {
            Wake::Idle { from, to } => {
                if let Some(l) = self.links.get_mut(&(from, to)) {
                    l.busy = false;
                }
                let peer = self.nodes[to].id;
                self.nodes[from].router.frame_written(&peer, now);
                self.start_writes(from);
            }
            Wake::Uplink { node } => {
                self.nodes[node].uplink_busy = false;
                self.start_writes(node);
            }
            Wake::Validated { node, id, verdict } => {
                let n = &mut self.nodes[node];
                if n.router.report_validation(&id, verdict, now) && verdict == Acceptance::Accept {
                    n.received.entry(id).or_insert(now);
                }
                self.pump(node);
            }
            Wake::Arrive { to, from, seq } => {
                let Some(frame) = self.frames.remove(&seq) else {
                    return;
                };
                if !self.links.contains_key(&(from, to)) {
                    return;
                }
                let src = self.nodes[from].id;
                let node = &mut self.nodes[to];
                node.bytes_in += frame.len() as u64;
                let limits = node.router.config().wire;
                let mut dec = FrameDecoder::new(limits.max_transmit_size);
                let mut buf = BytesMut::from(&frame[..]);
                while let Ok(Some(body)) = dec.decode(&mut buf) {
                    match decode_rpc(body, &limits) {
                        Ok(rpc) => {
                            for p in &rpc.control.prune {
                                node.prune_backoffs
                                    .push((src, p.topic.clone(), now, p.backoff));
                            }
                            node.router.handle_rpc(src, rpc, now);
                        }
                        Err(e) => panic!("our own encoding failed to decode: {e}"),
                    }
                }
                self.pump(to);
            }
        }
    }

    /// Drain node `i`'s events (answering validations) and start idle writers.
    fn pump(&mut self, i: usize) {
        let now = self.now;
        loop {
            let node = &mut self.nodes[i];
            let Some(ev) = node.router.poll_event() else {
                break;
            };
            match ev {
                Event::Message { id, message, .. } => {
                    let verdict = (node.verdict)(&message);
                    if !node.router.config().validate_messages {
                        if verdict == Acceptance::Accept {
                            node.received.entry(id.clone()).or_insert(now);
                        }
                    } else if self.validation_delay.is_zero() {
                        if verdict == Acceptance::Accept {
                            node.received.entry(id.clone()).or_insert(now);
                        }
                        node.router.report_validation(&id, verdict, now);
                    } else {
                        self.seq += 1;
                        let at = now + self.validation_delay;
                        self.wakes.push(Reverse((
                            at,
                            self.seq * 3,
                            Wake::Validated {
                                node: i,
                                id,
                                verdict,
                            },
                        )));
                    }
                }
                Event::Grafted { peer, topic, by } => {
                    node.ever_meshed.insert(peer);
                    if by == crate::MeshChange::Local {
                        node.grafts_sent.push((peer, topic, now));
                    }
                }
                _ => {}
            }
        }
        while self.nodes[i].router.next_ready().is_some() {}
        self.start_writes(i);
    }

    /// While node `from`'s uplink is free, give it to the next link (round robin) that is
    /// free and has a frame.
    fn start_writes(&mut self, from: usize) {
        if self.nodes[from].uplink_busy {
            return;
        }
        let outs: Vec<usize> = self
            .links
            .range((from, 0)..(from + 1, 0))
            .filter(|(_, l)| !l.busy)
            .map(|((_, to), _)| *to)
            .collect();
        if outs.is_empty() {
            return;
        }
        let n = outs.len();
        let start = self.nodes[from].cursor % n;
        for k in 0..n {
            let to = outs[(start + k) % n];
            if self.start_write(from, to) {
                self.nodes[from].cursor = start + k + 1;
                return;
            }
        }
    }

    /// Start one frame on link (from, to); false when there is none.
    fn start_write(&mut self, from: usize, to: usize) -> bool {
        let now = self.now;
        let upload = self.nodes[from].upload.max(1);
        let Some(link) = self.links.get_mut(&(from, to)) else {
            return false;
        };
        if link.busy {
            return false;
        }
        let peer = self.nodes[to].id;
        let Some(frame) = self.nodes[from].router.pop_frame(&peer, now) else {
            return false;
        };
        link.busy = true;
        let rate = link.shape.bytes_per_sec.clamp(1, upload);
        let latency = link.shape.latency;
        // A PREAMBLE goes first, in the same write: it arrives once its own bytes are across.
        let mut pre_len = 0;
        if let Some(pre) = self.nodes[from].router.take_preamble(&peer) {
            pre_len = pre.len() as u64;
            let pre_tx = Duration::from_nanos(pre_len.saturating_mul(1_000_000_000) / rate);
            self.seq += 1;
            let pseq = self.seq;
            self.frames.insert(pseq, pre);
            self.wakes.push(Reverse((
                now + pre_tx + latency,
                pseq * 3 + 2,
                Wake::Arrive {
                    to,
                    from,
                    seq: pseq,
                },
            )));
        }
        let len = frame.len() as u64 + pre_len;
        let up = Duration::from_nanos(len.saturating_mul(1_000_000_000) / upload);
        let tx = Duration::from_nanos(len.saturating_mul(1_000_000_000) / rate);
        self.nodes[from].uplink_busy = true;
        self.seq += 1;
        let seq = self.seq;
        self.frames.insert(seq, frame);
        self.wakes
            .push(Reverse((now + up, seq * 3, Wake::Uplink { node: from })));
        self.wakes
            .push(Reverse((now + tx, seq * 3 + 1, Wake::Idle { from, to })));
        self.wakes.push(Reverse((
            now + tx + latency,
            seq * 3 + 2,
            Wake::Arrive { to, from, seq },
        )));
        true
    }
}
