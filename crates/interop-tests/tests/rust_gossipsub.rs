//! plexus gossipsub ⇄ rust-libp2p gossipsub (libp2p-gossipsub 0.50), over TCP + Noise and
//! yamux or mplex (each side offers only the muxer under test), both dial directions.
//!
//! Both sides are configured the Ethereum way: no signatures (plexus `StrictNoSign`,
//! rust-libp2p `MessageAuthenticity::Anonymous` with `ValidationMode::Anonymous`, which
//! like `StrictNoSign` rejects a message carrying `from`, `seqno`, `signature` or `key`),
//! application validation on (`validate_messages`), and the Ethereum (Altair) content
//! message id for undecompressable data, given to both: the first 20 bytes of
//! SHA-256(`00000000` ‖ topic length (u64 LE) ‖ topic ‖ data). It differs from plexus's
//! built-in default id, so matching ids also show plexus uses `Config::message_id_fn`.
//! Heartbeats are 100 ms, meshes D=2, D_low=1, D_high=4, unsubscribe backoff 1 s. Two
//! settings of the rust side are for the test's sake (see `rust_config` and `rust_node`):
//! its prune backoff is 1 s too, since rust-libp2p backs off a peer that unsubscribes for
//! its own prune backoff (60 s by default) rather than the one in that peer's PRUNE; and
//! its swarm is polled every 20 ms, since libp2p-gossipsub 0.50's heartbeat only runs
//! when something else polls the behaviour.
//!
//! Each test runs one scenario on three nodes, a plexus pair P1, P2 and a rust-libp2p node
//! R, all connected to each other, on `/eth2/<digest>/beacon_block/ssz_snappy`:
//!
//! 1. **Mesh.** P1 and P2 subscribe and mesh; R sees both subscriptions
//!    (`Event::Subscribed`), then subscribes and GRAFTs both (so P1 and P2 each see
//!    R subscribe and `Grafted { by: Remote }`), R's mesh holds P1 and P2 and theirs hold R.
//!    R negotiated `/meshsub/1.3.0` with both (`peer_protocol`: `Gossipsubv1_3`). The
//!    version plexus negotiated is not in the service's snapshot; that P2 sends R an
//!    IDONTWANT (step 3) shows it is at least 1.2 (plexus sends none below).
//! 2. **Messages both ways.** A small message from P1 reaches R and P2, a small and a
//!    4 KiB message from R reach P1 and P2: same data, the same id on every node as the
//!    publisher's (plexus's returned id, rust's `MessageId`), the right propagation source;
//!    every copy is validated with `Accept`.
//! 3. **IDONTWANT both ways.** P1 publishes a 4 KiB message (above both sides' 1000-byte
//!    threshold) while R and P2 hold it in validation, so each has it only from P1: R sends
//!    IDONTWANT to P2 (P2's `idontwant_received` rises) and P2 sends IDONTWANT to R
//!    (P2's `idontwant_sent` rises, and R's `idontwant_msgs_ids` counter, read from its
//!    Prometheus registry, rises). After both `Accept`, P2 skips R
//!    (`idontwant_skipped`), and R does not forward it to P2 either (P2 counts no
//!    duplicate), so each honoured the other's IDONTWANT.
//! 4. **PRUNE and GRAFT both ways.** P1 unsubscribes: R sees it unsubscribe and P1 leaves
//!    R's mesh (plexus's PRUNE). After the backoff P1 subscribes again and GRAFTs R
//!    (`Grafted { by: Local }` on P1; P1 is back in R's mesh, no PRUNE back). R
//!    unsubscribes: P1 and P2 see `Pruned { by: Remote }` (rust's PRUNE) and R's mesh is
//!    empty. After the backoff R subscribes again: P1 and P2 see `Grafted { by: Remote }`
//!    (rust's GRAFT, accepted after the backoff rust announced in its PRUNE), and a last
//!    message from R still reaches both.
//!
//! A fifth test, `lazy_push_relay_to_rust_libp2p`, puts a plexus node L with lazy push
//! (`lazy_push_eager: 0`, so every large forward is an IHAVE) between two rust-libp2p
//! nodes in a line, R1 – L – R2 (yamux; R1 and R2 not connected). A 32 KiB message R1
//! publishes reaches R2 only through L: L announces it to R2 with an IHAVE (L's
//! `lazy_push_announced` rises), R2 asks with IWANT and L serves it (`iwant_served`), and
//! R2 gets it with L as the propagation source, same data and id.
//!
//! Every wait is bounded (20 s) and fails with what it was waiting for.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use libp2p::Swarm;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, ValidationMode};
use libp2p::swarm::SwarmEvent;
use plexus_core::MuxerUpgrade;
use plexus_gossipsub::{
    Acceptance, Config, Event, GossipEvent, Gossipsub, GossipsubService, MeshChange, MessageId,
    RawMessage, ServiceConfig, Snapshot, TopicHash,
};
use plexus_host::{Host, HostConfig};
use plexus_identity::Keypair;
use plexus_mplex::MplexConfig;
use plexus_multiaddr::{Multiaddr, Protocol};
use plexus_yamux::YamuxConfig;
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

/// The Ethereum topic both sides use (a Deneb-era fork digest).
const TOPIC: &str = "/eth2/6a95a1a9/beacon_block/ssz_snappy";
/// Every wait is bounded by this.
const WAIT: Duration = Duration::from_secs(20);
/// The unsubscribe backoff of both sides (rust-libp2p announces whole seconds).
const BACKOFF: Duration = Duration::from_secs(1);
/// Longer than the backoff plus a heartbeat of slack on either side.
const PAST_BACKOFF: Duration = Duration::from_millis(1500);
/// Above both sides' IDONTWANT threshold (1000 bytes).
const LARGE: usize = 4096;

/// The muxer under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mux {
    Yamux,
    Mplex,
}

impl Mux {
    fn protocol(self) -> &'static str {
        match self {
            Mux::Yamux => "/yamux/1.0.0",
            Mux::Mplex => "/mplex/6.7.0",
        }
    }
}

/// The Ethereum (Altair) message id of a message whose data does not snappy-decompress:
/// SHA-256(MESSAGE_DOMAIN_INVALID_SNAPPY ‖ u64 LE topic length ‖ topic ‖ data)[..20].
fn eth_message_id(topic: &str, data: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update([0u8; 4]);
    h.update((topic.len() as u64).to_le_bytes());
    h.update(topic.as_bytes());
    h.update(data);
    h.finalize()[..20].to_vec()
}

/// Deterministic bytes, different per seed.
fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn to_plexus_peer(p: &libp2p::PeerId) -> plexus_core::PeerId {
    plexus_core::PeerId::from_bytes(&p.to_bytes()).unwrap()
}

fn to_rust_peer(p: &plexus_core::PeerId) -> libp2p::PeerId {
    libp2p::PeerId::from_bytes(&p.to_bytes()).unwrap()
}

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("timed out after {WAIT:?} waiting for {what}"))
}

// ---------- the rust-libp2p side ----------

type Command = Box<dyn FnOnce(&mut Swarm<gossipsub::Behaviour>) + Send>;

struct RustNode {
    peer: libp2p::PeerId,
    cmd: mpsc::Sender<Command>,
    events: mpsc::Receiver<SwarmEvent<gossipsub::Event>>,
    /// Gossipsub events received but not yet asked for.
    backlog: VecDeque<gossipsub::Event>,
    /// The behaviour's Prometheus counters.
    registry: Registry,
    topic: IdentTopic,
}

fn rust_config() -> gossipsub::Config {
    gossipsub::ConfigBuilder::default()
        .heartbeat_interval(Duration::from_millis(100))
        .heartbeat_initial_delay(Duration::from_millis(50))
        .mesh_n(2)
        .mesh_n_low(1)
        .mesh_n_high(4)
        .mesh_outbound_min(0)
        .gossip_lazy(2)
        .unsubscribe_backoff(BACKOFF)
        // rust-libp2p's own prune backoff stays at its 60 s default: it would back off a
        // peer that unsubscribes by it if the unsubscription came before the PRUNE (it
        // handles subscriptions before control, and a backoff only grows). plexus sends the
        // PRUNE in a frame before the unsubscription, so its 1 s backoff is the one kept and
        // P1's GRAFT after rejoining is accepted.
        // Three heartbeats of slack after a backoff before rust-libp2p GRAFTs again, to
        // plexus's one (100 ms): its GRAFT never lands in plexus's backoff.
        .backoff_slack(3)
        .validation_mode(ValidationMode::Anonymous)
        .validate_messages()
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId(eth_message_id(m.topic.as_str(), &m.data))
        })
        .build()
        .unwrap()
}

async fn rust_node(mux: Mux, listen: bool) -> (RustNode, Option<libp2p::Multiaddr>) {
    let key = libp2p::identity::Keypair::generate_secp256k1();
    let mut registry = Registry::default();
    let behaviour = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, rust_config())
        .unwrap()
        .with_metrics(&mut registry, Default::default());
    let builder = libp2p::SwarmBuilder::with_existing_identity(key).with_tokio();
    let tcp = libp2p::tcp::Config::default().nodelay(true);
    let idle = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(60));
    let mut swarm: Swarm<gossipsub::Behaviour> = match mux {
        Mux::Yamux => builder
            .with_tcp(
                tcp,
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| behaviour)
            .unwrap()
            .with_swarm_config(idle)
            .build(),
        Mux::Mplex => builder
            .with_tcp(
                tcp,
                libp2p::noise::Config::new,
                libp2p_mplex::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| behaviour)
            .unwrap()
            .with_swarm_config(idle)
            .build(),
    };
    let peer = *swarm.local_peer_id();
    if listen {
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
    }
    // A scenario sees well under a hundred swarm events.
    let (etx, mut events) = mpsc::channel(4096);
    let (cmd, mut crx) = mpsc::channel::<Command>(16);
    // libp2p-gossipsub 0.50 polls its heartbeat `Delay` only when something else polls
    // the behaviour: once a heartbeat has fired, the reset timer has no waker, so on a
    // quiet connection the heartbeat (backoff expiry, mesh maintenance) stalls. A busy
    // network polls it all the time; here a tick stands in for that traffic.
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tokio::spawn(async move {
        loop {
            tokio::select! {
                ev = swarm.select_next_some() => {
                    if etx.try_send(ev).is_err() {
                        eprintln!("rust-libp2p swarm event dropped: the test is not reading");
                    }
                }
                _ = tick.tick() => {}
                c = crx.recv() => match c {
                    Some(f) => f(&mut swarm),
                    // The test is over: drop the swarm.
                    None => return,
                },
            }
        }
    });
    let addr = if listen {
        Some(
            bounded("rust-libp2p to listen", async {
                loop {
                    if let Some(SwarmEvent::NewListenAddr { address, .. }) = events.recv().await {
                        return address;
                    }
                }
            })
            .await,
        )
    } else {
        None
    };
    let node = RustNode {
        peer,
        cmd,
        events,
        backlog: VecDeque::new(),
        registry,
        topic: IdentTopic::new(TOPIC),
    };
    (node, addr)
}

impl RustNode {
    /// Run `f` on the swarm (in its task) and return what it returns.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Swarm<gossipsub::Behaviour>) -> T + Send + 'static,
    ) -> T {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Box::new(move |s| {
                let _ = tx.send(f(s));
            }))
            .await
            .expect("the rust-libp2p swarm task is running");
        rx.await.expect("the rust-libp2p swarm task is running")
    }

    /// The next swarm event; connection failures and closures fail the test.
    async fn next_swarm_event(&mut self) -> SwarmEvent<gossipsub::Event> {
        let ev = self.events.recv().await.expect("rust-libp2p swarm running");
        match &ev {
            SwarmEvent::OutgoingConnectionError { error, .. } => {
                panic!("rust-libp2p dial failed: {error}")
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                panic!("rust-libp2p accept failed: {error}")
            }
            SwarmEvent::ConnectionClosed { peer_id, cause, .. } => {
                panic!("rust-libp2p connection to {peer_id} closed: {cause:?}")
            }
            _ => {}
        }
        ev
    }

    /// The first gossipsub event (received earlier or now) that `f` picks.
    async fn expect<T>(
        &mut self,
        what: &str,
        mut f: impl FnMut(&gossipsub::Event) -> Option<T>,
    ) -> T {
        if let Some(i) = self.backlog.iter().position(|e| f(e).is_some()) {
            let e = self.backlog.remove(i).unwrap();
            return f(&e).unwrap();
        }
        bounded(&format!("rust-libp2p: {what}"), async {
            loop {
                if let SwarmEvent::Behaviour(e) = self.next_swarm_event().await {
                    match f(&e) {
                        Some(t) => return t,
                        None => self.backlog.push_back(e),
                    }
                }
            }
        })
        .await
    }

    /// Drop gossipsub events not asked for so far (at the start of a phase, so a later
    /// `expect` only matches what the phase causes).
    fn forget(&mut self) {
        self.backlog.clear();
        while let Ok(ev) = self.events.try_recv() {
            if let SwarmEvent::ConnectionClosed { peer_id, cause, .. } = ev {
                panic!("rust-libp2p connection to {peer_id} closed: {cause:?}")
            }
        }
    }

    /// Wait for a connection to each of `peers` (when rust-libp2p dialed).
    async fn established(&mut self, peers: &[libp2p::PeerId]) {
        let mut left: Vec<libp2p::PeerId> = peers.to_vec();
        bounded("rust-libp2p connections", async {
            while !left.is_empty() {
                match self.next_swarm_event().await {
                    SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                        left.retain(|p| *p != peer_id)
                    }
                    SwarmEvent::Behaviour(e) => self.backlog.push_back(e),
                    _ => {}
                }
            }
        })
        .await;
    }

    async fn dial(&self, addr: libp2p::Multiaddr) {
        self.with(move |s| s.dial(addr).unwrap()).await;
    }

    async fn subscribe(&self) -> bool {
        let t = self.topic.clone();
        self.with(move |s| s.behaviour_mut().subscribe(&t).unwrap())
            .await
    }

    async fn unsubscribe(&self) -> bool {
        let t = self.topic.clone();
        self.with(move |s| s.behaviour_mut().unsubscribe(&t)).await
    }

    async fn publish(&self, data: Vec<u8>) -> gossipsub::MessageId {
        let t = self.topic.clone();
        self.with(move |s| s.behaviour_mut().publish(t, data))
            .await
            .expect("rust-libp2p publishes")
    }

    async fn mesh(&self) -> Vec<libp2p::PeerId> {
        let h = self.topic.hash();
        self.with(move |s| s.behaviour().mesh_peers(&h).copied().collect())
            .await
    }

    /// Poll the mesh until `ok` holds.
    async fn wait_mesh(&self, what: &str, ok: impl Fn(&[libp2p::PeerId]) -> bool) {
        bounded(&format!("rust-libp2p mesh: {what}"), async {
            while !ok(&self.mesh().await) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }

    /// The protocol rust-libp2p negotiated with `p`, as its `PeerKind` (not exported, so
    /// by name).
    async fn peer_kind(&self, p: libp2p::PeerId) -> Option<String> {
        self.with(move |s| {
            s.behaviour()
                .peer_protocol()
                .find(|(q, _)| **q == p)
                .map(|(_, k)| format!("{k:?}"))
        })
        .await
    }

    /// The next message, with its id and propagation source.
    async fn message(
        &mut self,
        what: &str,
    ) -> (gossipsub::MessageId, libp2p::PeerId, gossipsub::Message) {
        self.expect(what, |e| match e {
            gossipsub::Event::Message {
                propagation_source,
                message_id,
                message,
            } => Some((message_id.clone(), *propagation_source, message.clone())),
            _ => None,
        })
        .await
    }

    async fn validate(&self, id: gossipsub::MessageId, source: libp2p::PeerId) {
        let known = self
            .with(move |s| {
                s.behaviour_mut().report_message_validation_result(
                    &id,
                    &source,
                    MessageAcceptance::Accept,
                )
            })
            .await;
        assert!(known, "rust-libp2p still holds the message for validation");
    }

    /// Message ids received in IDONTWANTs, from rust-libp2p's own counter.
    fn idontwant_ids_received(&self) -> u64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix("idontwant_msgs_ids_total "))
            .unwrap_or_else(|| panic!("no idontwant_msgs_ids counter in\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

// ---------- the plexus side ----------

fn plexus_config() -> Config {
    Config {
        heartbeat_interval: Duration::from_millis(100),
        heartbeat_initial_delay: Duration::from_millis(50),
        backoff_slack: Duration::from_millis(100),
        mesh_n: 2,
        mesh_n_low: 1,
        mesh_n_high: 4,
        mesh_outbound_min: 0,
        mesh_outbound_min_score_kept: 1,
        gossip_lazy: 2,
        unsubscribe_backoff: BACKOFF,
        // Keep IDONTWANTs while the test holds a message in validation (rust-libp2p keeps
        // them 3 s).
        idontwant_ttl_heartbeats: 30,
        validate_messages: true,
        message_id_fn: Arc::new(|m: &RawMessage| {
            MessageId::new(eth_message_id(m.topic.as_str(), &m.data))
        }),
        ..Config::default()
    }
}

struct PlexusNode {
    name: &'static str,
    host: Host,
    g: Gossipsub,
    events: mpsc::Receiver<GossipEvent>,
    /// Router events received but not yet asked for.
    backlog: VecDeque<Event>,
}

async fn plexus_node(name: &'static str, mux: Mux) -> PlexusNode {
    plexus_node_with(name, mux, plexus_config()).await
}

async fn plexus_node_with(name: &'static str, mux: Mux, gossip: Config) -> PlexusNode {
    let mut cfg = HostConfig::new(Keypair::generate_ed25519());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    cfg.muxers = vec![match mux {
        Mux::Yamux => Arc::new(YamuxConfig::default()) as Arc<dyn MuxerUpgrade>,
        Mux::Mplex => Arc::new(MplexConfig::default()),
    }];
    let host = Host::new(cfg).await.unwrap();
    let (g, events) =
        GossipsubService::spawn(host.clone(), gossip, ServiceConfig::default(), None).unwrap();
    PlexusNode {
        name,
        host,
        g,
        events,
        backlog: VecDeque::new(),
    }
}

impl PlexusNode {
    fn addr(&self) -> Multiaddr {
        self.host.listen_addrs()[0]
            .clone()
            .with(Protocol::P2p(self.host.peer_id()))
    }

    fn rust_addr(&self) -> libp2p::Multiaddr {
        self.addr().to_string().parse().unwrap()
    }

    fn rust_peer(&self) -> libp2p::PeerId {
        to_rust_peer(&self.host.peer_id())
    }

    /// The first router event (received earlier or now) that `f` picks.
    async fn expect<T>(&mut self, what: &str, mut f: impl FnMut(&Event) -> Option<T>) -> T {
        if let Some(i) = self.backlog.iter().position(|e| f(e).is_some()) {
            let e = self.backlog.remove(i).unwrap();
            return f(&e).unwrap();
        }
        let name = self.name;
        bounded(&format!("{name}: {what}"), async {
            loop {
                match self.events.recv().await.expect("plexus gossipsub running") {
                    GossipEvent::Router(e) => match f(&e) {
                        Some(t) => return t,
                        None => self.backlog.push_back(e),
                    },
                    GossipEvent::StreamFault(f) => panic!("{name}: stream fault {f}"),
                    other => panic!("{name}: unexpected {other:?}"),
                }
            }
        })
        .await
    }

    /// Drop router events not asked for so far (see [`RustNode::forget`]).
    fn forget(&mut self) {
        self.backlog.clear();
        while let Ok(ev) = self.events.try_recv() {
            if let GossipEvent::StreamFault(f) = ev {
                panic!("{}: stream fault {f}", self.name)
            }
        }
    }

    async fn expect_grafted(&mut self, peer: plexus_core::PeerId, by: MeshChange) {
        self.expect(&format!("Grafted {{ {peer}, {by:?} }}"), |e| match e {
            Event::Grafted {
                peer: p,
                topic,
                by: b,
            } if *p == peer && topic.as_str() == TOPIC && *b == by => Some(()),
            _ => None,
        })
        .await
    }

    async fn expect_pruned(&mut self, peer: plexus_core::PeerId, by: MeshChange) {
        self.expect(&format!("Pruned {{ {peer}, {by:?} }}"), |e| match e {
            Event::Pruned {
                peer: p,
                topic,
                by: b,
            } if *p == peer && topic.as_str() == TOPIC && *b == by => Some(()),
            _ => None,
        })
        .await
    }

    async fn expect_subscription(&mut self, peer: plexus_core::PeerId, subscribed: bool) {
        self.expect(&format!("{peer} subscribed: {subscribed}"), |e| match e {
            Event::Subscribed { peer: p, topic }
                if subscribed && *p == peer && topic.as_str() == TOPIC =>
            {
                Some(())
            }
            Event::Unsubscribed { peer: p, topic }
                if !subscribed && *p == peer && topic.as_str() == TOPIC =>
            {
                Some(())
            }
            _ => None,
        })
        .await
    }

    /// The next message, with its id and the peer it came from.
    async fn message(&mut self, what: &str) -> (MessageId, plexus_core::PeerId, RawMessage) {
        self.expect(what, |e| match e {
            Event::Message {
                source,
                id,
                message,
            } => Some((id.clone(), *source, message.clone())),
            _ => None,
        })
        .await
    }

    async fn accept(&self, id: MessageId) {
        self.g
            .report_validation(id, Acceptance::Accept)
            .await
            .unwrap();
    }

    async fn publish(&self, data: Vec<u8>) -> MessageId {
        self.g
            .publish(TOPIC, data)
            .await
            .unwrap()
            .expect("plexus publishes")
    }

    async fn snapshot(&self) -> Snapshot {
        self.g.snapshot().await.unwrap()
    }

    async fn mesh(&self) -> Vec<plexus_core::PeerId> {
        self.snapshot()
            .await
            .mesh
            .into_iter()
            .find(|(t, _)| t.as_str() == TOPIC)
            .map(|(_, m)| m)
            .unwrap_or_default()
    }

    /// Poll snapshots until `ok` holds.
    async fn wait_snapshot(&self, what: &str, ok: impl Fn(&Snapshot) -> bool) -> Snapshot {
        bounded(&format!("{}: {what}", self.name), async {
            loop {
                let s = self.snapshot().await;
                if ok(&s) {
                    return s;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
    }
}

fn duplicates(s: &Snapshot) -> u64 {
    let t: TopicHash = TOPIC.into();
    s.topics
        .iter()
        .find(|(x, _)| *x == t)
        .map_or(0, |(_, st)| st.duplicates)
}

/// A message published by plexus node `from` reached R (and the other plexus node, which
/// may get it from either): same data, same id everywhere; everyone accepts.
async fn plexus_to_rust(
    from: &PlexusNode,
    other: &mut PlexusNode,
    rust: &mut RustNode,
    data: Vec<u8>,
) {
    let id = from.publish(data.clone()).await;
    assert_eq!(
        id.as_bytes(),
        eth_message_id(TOPIC, &data),
        "plexus used message_id_fn"
    );
    let (rid, source, m) = rust.message("a message from plexus").await;
    assert_eq!(rid.0, id.as_bytes(), "rust-libp2p computed the same id");
    assert_eq!(source, from.rust_peer());
    assert_eq!(m.data, data);
    assert_eq!(m.topic.as_str(), TOPIC);
    assert!(
        m.source.is_none() && m.sequence_number.is_none(),
        "unsigned"
    );
    rust.validate(rid, source).await;
    let (oid, _, om) = other.message("a message from the other plexus node").await;
    assert_eq!(oid, id);
    assert_eq!(om.data[..], data[..]);
    other.accept(oid).await;
}

/// A message published by R reaches both plexus nodes from R: same data, same id; both
/// accept.
async fn rust_to_plexus(rust: &RustNode, mut ps: [&mut PlexusNode; 2], data: Vec<u8>) {
    let rid = rust.publish(data.clone()).await;
    assert_eq!(rid.0, eth_message_id(TOPIC, &data));
    let r = to_plexus_peer(&rust.peer);
    let mut ids = Vec::new();
    // Both receive before either accepts (and forwards): each has it straight from R.
    for p in ps.iter_mut() {
        let (id, source, m) = p.message("a message from rust-libp2p").await;
        assert_eq!(
            id.as_bytes(),
            &rid.0[..],
            "{}: same id as rust-libp2p's",
            p.name
        );
        assert_eq!(source, r, "{}: straight from rust-libp2p", p.name);
        assert_eq!(m.data[..], data[..]);
        assert_eq!(m.topic.as_str(), TOPIC);
        assert!(
            m.from.is_none() && m.seqno.is_none() && m.signature.is_none() && m.key.is_none(),
            "rust-libp2p's Anonymous messages are StrictNoSign"
        );
        ids.push(id);
    }
    for (p, id) in ps.iter().zip(ids) {
        p.accept(id).await;
    }
}

async fn scenario(mux: Mux, plexus_dials: bool) {
    let mut p1 = plexus_node("P1", mux).await;
    let mut p2 = plexus_node("P2", mux).await;
    let (mut rust, rust_addr) = rust_node(mux, plexus_dials).await;
    let r = to_plexus_peer(&rust.peer);
    let (p1_id, p2_id) = (p1.host.peer_id(), p2.host.peer_id());
    let (p1_r, p2_r) = (p1.rust_peer(), p2.rust_peer());

    // ----- connections -----
    p2.host.connect(vec![p1.addr()]).await.unwrap();
    if plexus_dials {
        let a = Multiaddr::from_bytes(&rust_addr.unwrap().to_vec())
            .unwrap()
            .with(Protocol::P2p(r));
        for p in [&p1, &p2] {
            let info = bounded("plexus dial", p.host.connect(vec![a.clone()]))
                .await
                .unwrap();
            assert_eq!(info.muxer, mux.protocol());
        }
        rust.established(&[p1_r, p2_r]).await;
    } else {
        rust.dial(p1.rust_addr()).await;
        rust.dial(p2.rust_addr()).await;
        rust.established(&[p1_r, p2_r]).await;
    }
    for p in [&p1, &p2] {
        let info = bounded("the rust connection on plexus", async {
            loop {
                if let Some(i) = p.host.connection(&r) {
                    return i;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        assert_eq!(info.muxer, mux.protocol());
        assert_eq!(
            info.direction,
            if plexus_dials {
                plexus_core::Direction::Outbound
            } else {
                plexus_core::Direction::Inbound
            }
        );
    }

    // ----- 1. mesh -----
    assert!(p1.g.subscribe(TOPIC).await.unwrap());
    assert!(p2.g.subscribe(TOPIC).await.unwrap());
    p1.wait_snapshot("P2 in the mesh", |s| {
        s.mesh.iter().any(|(_, m)| m.contains(&p2_id))
    })
    .await;
    p2.wait_snapshot("P1 in the mesh", |s| {
        s.mesh.iter().any(|(_, m)| m.contains(&p1_id))
    })
    .await;
    for who in [p1_r, p2_r] {
        rust.expect("a plexus node subscribes", |e| match e {
            gossipsub::Event::Subscribed { peer_id, topic }
                if *peer_id == who && topic.as_str() == TOPIC =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
    }
    // R knows both subscriptions: joining, it GRAFTs both.
    assert!(rust.subscribe().await);
    for p in [&mut p1, &mut p2] {
        p.expect_subscription(r, true).await;
        p.expect_grafted(r, MeshChange::Remote).await;
        assert!(p.mesh().await.contains(&r));
    }
    rust.wait_mesh("P1 and P2", |m| m.contains(&p1_r) && m.contains(&p2_r))
        .await;
    for p in [p1_r, p2_r] {
        assert_eq!(
            rust.peer_kind(p).await,
            Some("Gossipsubv1_3".to_string()),
            "rust-libp2p negotiated /meshsub/1.3.0 with plexus"
        );
    }

    // ----- 2. messages both ways -----
    for p in [&mut p1, &mut p2] {
        p.forget();
    }
    rust.forget();
    plexus_to_rust(&p1, &mut p2, &mut rust, b"block from plexus".to_vec()).await;
    rust_to_plexus(
        &rust,
        [&mut p1, &mut p2],
        b"block from rust-libp2p".to_vec(),
    )
    .await;
    rust_to_plexus(&rust, [&mut p1, &mut p2], pattern(1, LARGE)).await;

    // ----- 3. IDONTWANT both ways -----
    for p in [&mut p1, &mut p2] {
        p.forget();
    }
    rust.forget();
    // The IDONTWANTs P1 and P2 sent each other for R's large message are in.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = p2.snapshot().await;
    let rust_before = rust.idontwant_ids_received();
    let data = pattern(2, LARGE);
    let id = p1.publish(data.clone()).await;
    // R and P2 each have it from P1 and hold it in validation: neither forwards yet.
    let (rid, source, m) = rust.message("P1's large message").await;
    assert_eq!((rid.0.as_slice(), source), (id.as_bytes(), p1_r));
    assert_eq!(m.data, data);
    let (pid, psource, pm) = p2.message("P1's large message").await;
    assert_eq!((&pid, psource), (&id, p1_id));
    assert_eq!(pm.data[..], data[..]);
    let s = p2
        .wait_snapshot("an IDONTWANT from rust-libp2p, one sent to it", |s| {
            s.stats.idontwant_received > before.stats.idontwant_received
                && s.stats.idontwant_sent > before.stats.idontwant_sent
        })
        .await;
    assert_eq!(
        s.stats.idontwant_received - before.stats.idontwant_received,
        1,
        "one IDONTWANT id, from R (P1 sent the message to every topic peer)"
    );
    bounded("rust-libp2p to count P2's IDONTWANT", async {
        while rust.idontwant_ids_received() <= rust_before {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert_eq!(rust.idontwant_ids_received() - rust_before, 1);
    // Now both accept and forward to their mesh, except to each other.
    p2.accept(pid).await;
    rust.validate(rid, source).await;
    p2.wait_snapshot("P2 to skip R, which sent IDONTWANT", |s| {
        s.stats.idontwant_skipped > before.stats.idontwant_skipped
    })
    .await;
    // Three heartbeats for a copy from R to arrive if rust-libp2p ignored our IDONTWANT.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        duplicates(&p2.snapshot().await),
        duplicates(&before),
        "rust-libp2p did not send P2 the message P2 said it did not want"
    );

    // ----- 4. PRUNE and GRAFT both ways -----
    for p in [&mut p1, &mut p2] {
        p.forget();
    }
    rust.forget();
    // plexus PRUNEs rust-libp2p.
    assert!(p1.g.unsubscribe(TOPIC).await.unwrap());
    p1.expect_pruned(r, MeshChange::Local).await;
    rust.expect("P1 unsubscribes", |e| match e {
        gossipsub::Event::Unsubscribed { peer_id, topic }
            if *peer_id == p1_r && topic.as_str() == TOPIC =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    rust.wait_mesh("without P1", |m| !m.contains(&p1_r) && m.contains(&p2_r))
        .await;
    // plexus GRAFTs rust-libp2p, after the backoff both sides keep.
    tokio::time::sleep(PAST_BACKOFF).await;
    assert!(p1.g.subscribe(TOPIC).await.unwrap());
    p1.expect_grafted(r, MeshChange::Local).await;
    rust.wait_mesh("P1 back", |m| m.contains(&p1_r) && m.contains(&p2_r))
        .await;
    // rust-libp2p kept the GRAFT (no PRUNE back), three heartbeats on.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(p1.mesh().await.contains(&r), "R accepted P1's GRAFT");
    assert!(rust.mesh().await.contains(&p1_r));

    // rust-libp2p PRUNEs plexus.
    for p in [&mut p1, &mut p2] {
        p.forget();
    }
    rust.forget();
    assert!(rust.unsubscribe().await);
    for p in [&mut p1, &mut p2] {
        p.expect_pruned(r, MeshChange::Remote).await;
        p.expect_subscription(r, false).await;
        assert!(!p.mesh().await.contains(&r));
    }
    assert!(rust.mesh().await.is_empty());
    // rust-libp2p GRAFTs plexus, after the backoff it announced.
    tokio::time::sleep(PAST_BACKOFF).await;
    assert!(rust.subscribe().await);
    for p in [&mut p1, &mut p2] {
        p.expect_subscription(r, true).await;
        p.expect_grafted(r, MeshChange::Remote).await;
    }
    rust.wait_mesh("P1 and P2 again", |m| {
        m.contains(&p1_r) && m.contains(&p2_r)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    for p in [&p1, &p2] {
        assert!(p.mesh().await.contains(&r), "{} kept R's GRAFT", p.name);
    }
    rust_to_plexus(&rust, [&mut p1, &mut p2], b"still meshed".to_vec()).await;
    for p in [&p1, &p2] {
        let s = p.snapshot().await;
        assert_eq!(
            s.stats.graft_in_backoff, 0,
            "{}: no GRAFT in backoff",
            p.name
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yamux_plexus_dials_rust_libp2p_gossipsub() {
    scenario(Mux::Yamux, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yamux_rust_libp2p_dials_plexus_gossipsub() {
    scenario(Mux::Yamux, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mplex_plexus_dials_rust_libp2p_gossipsub() {
    scenario(Mux::Mplex, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mplex_rust_libp2p_dials_plexus_gossipsub() {
    scenario(Mux::Mplex, false).await;
}

/// R1 – L – R2: rust-libp2p pulls what plexus announces by lazy push.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lazy_push_relay_to_rust_libp2p() {
    let mux = Mux::Yamux;
    let mut l = plexus_node_with(
        "L",
        mux,
        Config {
            lazy_push_threshold: 16 * 1024,
            lazy_push_eager: 0,
            ..plexus_config()
        },
    )
    .await;
    let (mut r1, a1) = rust_node(mux, true).await;
    let (mut r2, a2) = rust_node(mux, true).await;
    let l_r = l.rust_peer();
    for (r, a) in [(&mut r1, a1), (&mut r2, a2)] {
        let a = Multiaddr::from_bytes(&a.unwrap().to_vec())
            .unwrap()
            .with(Protocol::P2p(to_plexus_peer(&r.peer)));
        bounded("L dials", l.host.connect(vec![a])).await.unwrap();
        r.established(&[l_r]).await;
    }
    assert!(l.g.subscribe(TOPIC).await.unwrap());
    for r in [&r1, &r2] {
        assert!(r.subscribe().await);
    }
    let (p1, p2) = (to_plexus_peer(&r1.peer), to_plexus_peer(&r2.peer));
    l.wait_snapshot("R1 and R2 in the mesh", |s| {
        s.mesh
            .iter()
            .any(|(_, m)| m.contains(&p1) && m.contains(&p2))
    })
    .await;
    for r in [&r1, &r2] {
        r.wait_mesh("L", |m| m.contains(&l_r)).await;
    }
    let before = l.snapshot().await;
    let data = pattern(3, 32 * 1024);
    let rid = r1.publish(data.clone()).await;
    let (id, source, _) = l.message("R1's message").await;
    assert_eq!((id.as_bytes(), source), (&rid.0[..], p1));
    l.accept(id).await;
    let (id2, source2, m) = r2.message("R1's message, through L").await;
    assert_eq!(id2, rid);
    assert_eq!(source2, l_r, "from L: R2 has no other path");
    assert_eq!(m.data, data);
    r2.validate(id2, source2).await;
    let s = l.snapshot().await;
    assert_eq!(
        s.stats.lazy_push_announced - before.stats.lazy_push_announced,
        1,
        "L announced it to R2 instead of sending it"
    );
    assert_eq!(
        s.stats.iwant_served - before.stats.iwant_served,
        1,
        "R2 pulled it with IWANT"
    );
}
