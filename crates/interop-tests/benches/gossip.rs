//! Gossip benchmark: a network of N nodes on loopback, plexus versus rust-libp2p, in one run.
//!
//! `cargo bench -p plexus-interop-tests --bench gossip` (or `cargo xtask bench`, which runs the
//! end-to-end bench first and writes both tables to `docs/BENCHMARKS.md`). Progress goes to
//! stderr; the Markdown report goes to stdout.
//!
//! The parent runs each stack in a fresh child process (this binary re-executed with
//! `--child gossip plexus|rust`), so the stacks never share an allocator, a runtime or leftover
//! tasks; three runs per stack, alternating, and the report gives the median of each figure. A
//! child runs all N nodes on one tokio multi-thread runtime with 2 workers, over TCP +
//! Noise + yamux on 127.0.0.1, with secp256k1 keys:
//!
//! 1. N nodes subscribe to two topics (small and large messages); each node dials a few
//!    random others (the same graph from the same seed for both stacks).
//! 2. Warm-up: until every node's mesh of both topics holds min(D_low, its peers) peers.
//! 3. Small phase: `small_count` messages of 200 B at `small_rate`/s, publisher k mod N; then
//!    wait until every node delivered every message (or a timeout), then a settle time (three
//!    heartbeats, so the IHAVE gossip the messages cause is counted).
//! 4. Large phase: the same with 128 KiB messages.
//!
//! A third child, `--child gossip plexus-lazy`, runs plexus with lazy push
//! (`Config::lazy_push_threshold` 16 KiB, `lazy_push_eager` 2) and the large phase only; the
//! report gives it a table of its own beside the two stacks' large-phase figures.
//!
//! Each payload carries its kind, sequence number and publish time (nanoseconds since the
//! child's start; all nodes share the process clock); each receiver records the delivery time
//! when its application sees the message, and answers Accept at once.
//!
//! Per phase the child reports CPU seconds (user + system of the whole process, from
//! `/proc/self/stat`), deliveries, latencies, duplicates (copies received after the first, all
//! nodes), stream bytes written (all nodes), and RSS.
//!
//! `PLEXUS_BENCH_QUICK=1` shrinks the message counts (for trying the harness, not for results);
//! `PLEXUS_GOSSIP_NODES=n` changes the network size; `PLEXUS_GOSSIP_PHASES=small` or `large` runs
//! only that phase (for profiling one child: `perf record … gossip-<hash> --child gossip plexus`);
//! `PLEXUS_GOSSIP_LARGE_IN_FLIGHT=n` sets plexus's `ServiceConfig::max_large_in_flight`;
//! `PLEXUS_GOSSIP_LAZY_EAGER=n` sets the lazy-push child's `lazy_push_eager`.
#![forbid(unsafe_code)]

mod support;

use std::collections::{BTreeSet, HashMap};
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::{emit, rss_bytes, run_child, verdict};

use futures::StreamExt as _;
use libp2p::Swarm;
use libp2p::gossipsub::{self, IdentTopic, MessageAcceptance, MessageAuthenticity, ValidationMode};
use libp2p::swarm::SwarmEvent;
use plexus_gossipsub::{
    Acceptance, Config, Event, GossipEvent, GossipMetrics, Gossipsub, GossipsubService,
    ServiceConfig, TopicHash,
};
use plexus_host::{Host, HostConfig};
use plexus_identity::Keypair;
use plexus_multiaddr::{Multiaddr, Protocol};
use prometheus_client::registry::Registry;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

/// Small messages go to this topic (attestation-like).
const TOPIC_SMALL: &str = "/eth2/00000000/beacon_attestation_0/ssz_snappy";
/// Large messages go to this topic (block-like).
const TOPIC_LARGE: &str = "/eth2/00000000/beacon_block/ssz_snappy";
/// Payload sizes.
const SMALL_LEN: usize = 200;
const LARGE_LEN: usize = 128 * 1024;
/// Header of each payload: kind (u8), sequence (u32 LE), publish time (u64 LE, ns since start).
const HEADER: usize = 13;
/// The topology's seed (the same graph for both stacks).
const SEED: u64 = 0x5eed_2026;
/// The Ethereum gossip parameters both stacks run with.
const D: usize = 8;
const D_LOW: usize = 6;
const D_HIGH: usize = 12;
const D_LAZY: usize = 6;
const D_OUT: usize = 3;
const HEARTBEAT: Duration = Duration::from_millis(700);
const HEARTBEAT_INITIAL_DELAY: Duration = Duration::from_millis(100);
const HISTORY_LENGTH: usize = 6;
const HISTORY_GOSSIP: usize = 3;
const SEEN_TTL: Duration = Duration::from_secs(768);
const IDONTWANT_THRESHOLD: usize = 1000;
/// Largest RPC, both stacks (plexus' default, the Ethereum `max_message_size()`).
const MAX_TRANSMIT: usize = 12_234_442;
/// Warm-up bound.
const WARMUP_LIMIT: Duration = Duration::from_secs(10);
/// After the last publish of a phase, wait at most this long for the missing deliveries.
const DELIVERY_LIMIT: Duration = Duration::from_secs(10);
/// After the last delivery of a phase, the window stays open this long (three heartbeats: the
/// gossip windows of the message cache), so the IHAVE/IWANT traffic the messages cause counts.
const SETTLE: Duration = Duration::from_millis(2100);

// ------------------------------------------------------------------------------------------
// Sizes
// ------------------------------------------------------------------------------------------

struct Sizes {
    quick: bool,
    nodes: usize,
    /// Each node dials this many random others (edges already present are not dialed twice).
    dials: usize,
    small_count: usize,
    small_rate: f64,
    large_count: usize,
    large_rate: f64,
    /// Runs per stack (alternating); the report gives medians.
    runs: usize,
}

fn sizes() -> Sizes {
    let quick = std::env::var_os("PLEXUS_BENCH_QUICK").is_some_and(|v| v != "0");
    let nodes = std::env::var("PLEXUS_GOSSIP_NODES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    if quick {
        Sizes {
            quick,
            nodes,
            dials: 5,
            small_count: 50,
            small_rate: 50.0,
            large_count: 10,
            large_rate: 5.0,
            runs: 1,
        }
    } else {
        Sizes {
            quick,
            nodes,
            dials: 5,
            small_count: 300,
            small_rate: 50.0,
            large_count: 50,
            large_rate: 5.0,
            runs: 3,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Stack {
    Plexus,
    Rust,
    /// plexus with lazy push, large phase only.
    PlexusLazy,
}

/// A row of the lazy-push table: label, result key, divided by deliveries, format, and the
/// target (bound, whether a ratio to rust-libp2p).
type LazyRow<'a> = (
    &'a str,
    String,
    bool,
    &'a dyn Fn(f64) -> String,
    Option<(f64, bool)>,
);

/// Set in a `plexus-lazy` child: plexus nodes forward large messages by lazy push.
static LAZY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl Stack {
    fn arg(self) -> &'static str {
        match self {
            Stack::Plexus => "plexus",
            Stack::Rust => "rust",
            Stack::PlexusLazy => "plexus-lazy",
        }
    }
    fn parse(s: &str) -> Option<Stack> {
        match s {
            "plexus" => Some(Stack::Plexus),
            "rust" => Some(Stack::Rust),
            "plexus-lazy" => Some(Stack::PlexusLazy),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Stack::Plexus => "plexus",
            Stack::Rust => "rust-libp2p",
            Stack::PlexusLazy => "plexus with lazy push",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Small = 0,
    Large = 1,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Small => "small",
            Kind::Large => "large",
        }
    }
    fn topic(self) -> &'static str {
        match self {
            Kind::Small => TOPIC_SMALL,
            Kind::Large => TOPIC_LARGE,
        }
    }
    fn len(self) -> usize {
        match self {
            Kind::Small => SMALL_LEN,
            Kind::Large => LARGE_LEN,
        }
    }
}

// ------------------------------------------------------------------------------------------
// Helpers
// ------------------------------------------------------------------------------------------

/// CPU seconds (user, system) of this process, all threads (`/proc/self/stat`, fields 14 and
/// 15, in clock ticks of 1/100 s: Linux' USER_HZ).
fn cpu_secs() -> Result<(f64, f64), String> {
    let stat = std::fs::read_to_string("/proc/self/stat").map_err(|e| e.to_string())?;
    // The command name (field 2) may hold spaces: fields after it follow the last ')'.
    let rest = stat.rsplit_once(')').ok_or("bad /proc/self/stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<f64, String> {
        f.get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .map(|t| t as f64 / 100.0)
            .ok_or_else(|| "bad /proc/self/stat".to_string())
    };
    // rest[0] is field 3 (state): utime is field 14, stime field 15.
    Ok((tick(11)?, tick(12)?))
}

/// A small deterministic generator (xorshift64*), so the topology does not depend on `rand`'s
/// algorithms.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The graph: (dialer, listener) pairs, each undirected edge once. Each node picks `dials`
/// distinct random others; a pair already connected (either way) is not dialed again.
fn topology(n: usize, dials: usize) -> Vec<(usize, usize)> {
    let mut rng = Rng(SEED);
    let mut seen = BTreeSet::new();
    let mut edges = Vec::new();
    for i in 0..n {
        let mut picked = BTreeSet::new();
        while picked.len() < dials.min(n - 1) {
            let j = rng.below(n);
            if j != i {
                picked.insert(j);
            }
        }
        for j in picked {
            if seen.insert((i.min(j), i.max(j))) {
                edges.push((i, j));
            }
        }
    }
    edges
}

fn degrees(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut d = vec![0; n];
    for &(a, b) in edges {
        d[a] += 1;
        d[b] += 1;
    }
    d
}

/// The content message id both stacks use: the first 20 bytes of
/// SHA-256(topic length (u64 LE) ‖ topic ‖ data) (plexus' `default_message_id` for unsigned
/// messages).
fn content_id(topic: &str, data: &[u8]) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update((topic.len() as u64).to_le_bytes());
    h.update(topic.as_bytes());
    h.update(data);
    h.finalize()[..20].to_vec()
}

fn payload(kind: Kind, seq: u32, start: Instant) -> Vec<u8> {
    let mut p = vec![0xa5u8; kind.len()];
    p[0] = kind as u8;
    p[1..5].copy_from_slice(&seq.to_le_bytes());
    let ts = start.elapsed().as_nanos() as u64;
    p[5..13].copy_from_slice(&ts.to_le_bytes());
    p
}

/// Deliveries as the applications see them, shared by every node of the child.
struct Recorder {
    start: Instant,
    inner: Mutex<Rec>,
}

#[derive(Default)]
struct Rec {
    /// Deliveries per sequence number, per kind.
    count: [Vec<u32>; 2],
    /// Publish-to-delivery latencies in microseconds, per kind.
    lat_us: [Vec<u64>; 2],
    /// Deliveries per kind.
    total: [u64; 2],
    /// Time (since start) of the latest delivery, per kind.
    last: [Duration; 2],
    /// Payloads that did not parse.
    bad: u64,
}

impl Recorder {
    fn new(start: Instant, small: usize, large: usize) -> Recorder {
        let rec = Rec {
            count: [vec![0; small], vec![0; large]],
            ..Rec::default()
        };
        Recorder {
            start,
            inner: Mutex::new(rec),
        }
    }

    fn record(&self, data: &[u8]) {
        let now = self.start.elapsed();
        let mut r = self.inner.lock().expect("recorder lock");
        if data.len() < HEADER {
            r.bad += 1;
            return;
        }
        let k = data[0] as usize;
        let seq = u32::from_le_bytes(data[1..5].try_into().expect("4 bytes")) as usize;
        let ts = Duration::from_nanos(u64::from_le_bytes(data[5..13].try_into().expect("8 bytes")));
        if k > 1 || seq >= r.count[k].len() {
            r.bad += 1;
            return;
        }
        r.count[k][seq] += 1;
        r.total[k] += 1;
        r.last[k] = r.last[k].max(now);
        let lat = now.saturating_sub(ts).as_micros() as u64;
        r.lat_us[k].push(lat);
    }

    fn total(&self, kind: Kind) -> u64 {
        self.inner.lock().expect("recorder lock").total[kind as usize]
    }
}

// ------------------------------------------------------------------------------------------
// The two stacks behind one interface.
// ------------------------------------------------------------------------------------------

/// Counters of one node, read at the window's edges.
#[derive(Clone, Copy, Default, Debug)]
struct Counters {
    /// Duplicate copies received, per kind (topic).
    dups: [u64; 2],
    /// Stream bytes written (above the muxer: gossipsub frames and multistream).
    bytes_sent: u64,
}

impl std::ops::Sub for Counters {
    type Output = Counters;
    fn sub(self, o: Counters) -> Counters {
        Counters {
            dups: [self.dups[0] - o.dups[0], self.dups[1] - o.dups[1]],
            bytes_sent: self.bytes_sent - o.bytes_sent,
        }
    }
}

impl std::ops::Add for Counters {
    type Output = Counters;
    fn add(self, o: Counters) -> Counters {
        Counters {
            dups: [self.dups[0] + o.dups[0], self.dups[1] + o.dups[1]],
            bytes_sent: self.bytes_sent + o.bytes_sent,
        }
    }
}

// ---------------- plexus ----------------

struct PlexusNode {
    host: Host,
    gossip: Gossipsub,
    addr: Multiaddr,
    _registry: Registry,
}

fn plexus_config() -> Config {
    let mut cfg = Config {
        mesh_n: D,
        mesh_n_low: D_LOW,
        mesh_n_high: D_HIGH,
        mesh_outbound_min: D_OUT,
        gossip_lazy: D_LAZY,
        heartbeat_interval: HEARTBEAT,
        heartbeat_initial_delay: HEARTBEAT_INITIAL_DELAY,
        history_length: HISTORY_LENGTH,
        history_gossip: HISTORY_GOSSIP,
        seen_ttl: SEEN_TTL,
        // Lighthouse runs rust-libp2p with flood publish off; both stacks do here.
        flood_publish: false,
        idontwant_message_size_threshold: IDONTWANT_THRESHOLD,
        // rust-libp2p's `idontwant_on_publish` is off by default and Lighthouse leaves it so.
        idontwant_on_publish_threshold: usize::MAX,
        validate_messages: true,
        accept_by_default: true,
        signing: plexus_gossipsub::Signing::StrictNoSign,
        message_id_fn: Arc::new(plexus_gossipsub::default_message_id),
        score: None,
        ..Config::default()
    };
    cfg.wire.max_transmit_size = MAX_TRANSMIT;
    if LAZY.load(std::sync::atomic::Ordering::Relaxed) {
        cfg.lazy_push_threshold = 16 * 1024;
        cfg.lazy_push_eager = std::env::var("PLEXUS_GOSSIP_LAZY_EAGER")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
    }
    cfg
}

async fn plexus_node(i: usize, rec: Arc<Recorder>) -> Result<PlexusNode, String> {
    let mut cfg = HostConfig::new(Keypair::generate_secp256k1());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")];
    let host = Host::new(cfg).await.map_err(|e| e.to_string())?;
    let addr = host.listen_addrs()[0]
        .clone()
        .with(Protocol::P2p(host.peer_id()));
    let mut registry = Registry::default();
    let metrics = GossipMetrics::new(&mut registry);
    let mut svc = ServiceConfig {
        seed: Some(SEED ^ i as u64),
        ..ServiceConfig::default()
    };
    // For experiments: `PLEXUS_GOSSIP_LARGE_IN_FLIGHT=n` (the default is the service's).
    if let Some(n) = std::env::var("PLEXUS_GOSSIP_LARGE_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        svc.max_large_in_flight = n;
    }
    let (gossip, mut events) =
        GossipsubService::spawn(host.clone(), plexus_config(), svc, Some(metrics))
            .map_err(|e| e.to_string())?;
    // The application: record each message and accept it at once.
    let g = gossip.clone();
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let GossipEvent::Router(Event::Message { id, message, .. }) = ev {
                rec.record(&message.data);
                if g.report_validation(id, Acceptance::Accept).await.is_err() {
                    return;
                }
            }
        }
    });
    for k in [Kind::Small, Kind::Large] {
        gossip
            .subscribe(k.topic())
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(PlexusNode {
        host,
        gossip,
        addr,
        _registry: registry,
    })
}

// ---------------- rust-libp2p ----------------

type RustCmd = Box<dyn FnOnce(&mut Swarm<gossipsub::Behaviour>) + Send>;

struct RustNode {
    cmd: mpsc::Sender<RustCmd>,
    addr: libp2p::Multiaddr,
    registry: Registry,
}

fn rust_config() -> gossipsub::Config {
    gossipsub::ConfigBuilder::default()
        .mesh_n(D)
        .mesh_n_low(D_LOW)
        .mesh_n_high(D_HIGH)
        .mesh_outbound_min(D_OUT)
        .gossip_lazy(D_LAZY)
        .heartbeat_interval(HEARTBEAT)
        .heartbeat_initial_delay(HEARTBEAT_INITIAL_DELAY)
        .history_length(HISTORY_LENGTH)
        .history_gossip(HISTORY_GOSSIP)
        .duplicate_cache_time(SEEN_TTL)
        .flood_publish(false)
        .idontwant_message_size_threshold(IDONTWANT_THRESHOLD)
        .idontwant_on_publish(false)
        .max_transmit_size(MAX_TRANSMIT)
        .validate_messages()
        .validation_mode(ValidationMode::Anonymous)
        .allow_self_origin(true)
        .message_id_fn(|m: &gossipsub::Message| {
            gossipsub::MessageId(content_id(m.topic.as_str(), &m.data))
        })
        .build()
        .expect("valid gossipsub config")
}

async fn rust_node(rec: Arc<Recorder>) -> Result<RustNode, String> {
    use libp2p::Transport as _;
    let key = libp2p::identity::Keypair::generate_secp256k1();
    let mut registry = Registry::default();
    let behaviour = gossipsub::Behaviour::new(MessageAuthenticity::Anonymous, rust_config())
        .map_err(|e| e.to_string())?
        .with_metrics(&mut registry, Default::default());
    // TCP + Noise + yamux as `SwarmBuilder::with_tcp` builds it, wrapped in libp2p-metrics'
    // bandwidth counters (what `with_bandwidth_metrics` does): bytes on the muxed streams.
    let mut swarm: Swarm<gossipsub::Behaviour> = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_other_transport(|key| {
            let t =
                libp2p::tcp::tokio::Transport::new(libp2p::tcp::Config::default().nodelay(true))
                    .upgrade(libp2p::core::upgrade::Version::V1Lazy)
                    .authenticate(libp2p::noise::Config::new(key)?)
                    .multiplex(libp2p::yamux::Config::default());
            Ok::<_, Box<dyn std::error::Error + Send + Sync>>(
                libp2p_metrics::BandwidthTransport::new(t, &mut registry).map(
                    |(peer, muxer), _| (peer, libp2p::core::muxing::StreamMuxerBox::new(muxer)),
                ),
            )
        })
        .map_err(|e| e.to_string())?
        .with_behaviour(|_| behaviour)
        .map_err(|e| e.to_string())?
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(3600)))
        .build();
    for k in [Kind::Small, Kind::Large] {
        swarm
            .behaviour_mut()
            .subscribe(&IdentTopic::new(k.topic()))
            .map_err(|e| e.to_string())?;
    }
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().expect("addr"))
        .map_err(|e| e.to_string())?;
    let peer = *swarm.local_peer_id();
    let (addr_tx, addr_rx) = oneshot::channel();
    let (cmd, mut crx) = mpsc::channel::<RustCmd>(256);
    tokio::spawn(async move {
        let mut addr_tx = Some(addr_tx);
        loop {
            tokio::select! {
                ev = swarm.select_next_some() => match ev {
                    // The application: record each message and accept it at once.
                    SwarmEvent::Behaviour(gossipsub::Event::Message {
                        propagation_source,
                        message_id,
                        message,
                    }) => {
                        rec.record(&message.data);
                        swarm.behaviour_mut().report_message_validation_result(
                            &message_id,
                            &propagation_source,
                            MessageAcceptance::Accept,
                        );
                    }
                    SwarmEvent::NewListenAddr { address, .. } => {
                        if let Some(tx) = addr_tx.take() {
                            let _ = tx.send(address);
                        }
                    }
                    _ => {}
                },
                c = crx.recv() => match c {
                    Some(f) => f(&mut swarm),
                    None => return,
                },
            }
        }
    });
    let addr = addr_rx
        .await
        .map_err(|_| "rust-libp2p node did not listen")?
        .with(libp2p::multiaddr::Protocol::P2p(peer));
    Ok(RustNode {
        cmd,
        addr,
        registry,
    })
}

impl RustNode {
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Swarm<gossipsub::Behaviour>) -> T + Send + 'static,
    ) -> Result<T, String> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(Box::new(move |s| {
                let _ = tx.send(f(s));
            }))
            .await
            .map_err(|_| "rust-libp2p swarm stopped")?;
        rx.await
            .map_err(|_| "rust-libp2p swarm stopped".to_string())
    }

    /// Sum of the registry's samples of `metric` whose labels contain `label`.
    fn metric(&self, metric: &str, label: &str) -> u64 {
        let mut text = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text.lines()
            .filter(|l| {
                l.strip_prefix(metric)
                    .is_some_and(|r| r.starts_with('{') || r.starts_with(' '))
                    && l.contains(label)
            })
            .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
            .sum::<f64>() as u64
    }
}

// ---------------- the network ----------------

enum Net {
    Plexus(Vec<PlexusNode>),
    Rust(Vec<RustNode>),
}

impl Net {
    async fn start(stack: Stack, n: usize, rec: &Arc<Recorder>) -> Result<Net, String> {
        Ok(match stack {
            Stack::Plexus | Stack::PlexusLazy => {
                let mut v = Vec::new();
                for i in 0..n {
                    v.push(plexus_node(i, rec.clone()).await?);
                }
                Net::Plexus(v)
            }
            Stack::Rust => {
                let mut v = Vec::new();
                for _ in 0..n {
                    v.push(rust_node(rec.clone()).await?);
                }
                Net::Rust(v)
            }
        })
    }

    async fn connect(&self, edges: &[(usize, usize)]) -> Result<(), String> {
        match self {
            Net::Plexus(v) => {
                for &(a, b) in edges {
                    v[a].host
                        .connect(vec![v[b].addr.clone()])
                        .await
                        .map_err(|e| format!("plexus dial {a}→{b}: {e}"))?;
                }
            }
            Net::Rust(v) => {
                for &(a, b) in edges {
                    let addr = v[b].addr.clone();
                    v[a].with(move |s| s.dial(addr).map_err(|e| e.to_string()))
                        .await??;
                }
            }
        }
        Ok(())
    }

    /// Connected peers of each node.
    async fn peers(&self) -> Result<Vec<usize>, String> {
        let mut out = Vec::new();
        match self {
            Net::Plexus(v) => {
                for n in v {
                    out.push(n.host.connected_peers().len());
                }
            }
            Net::Rust(v) => {
                for n in v {
                    out.push(n.with(|s| s.connected_peers().count()).await?);
                }
            }
        }
        Ok(out)
    }

    /// Mesh sizes of each node, per kind.
    async fn meshes(&self) -> Result<Vec<[usize; 2]>, String> {
        let mut out = Vec::new();
        match self {
            Net::Plexus(v) => {
                for n in v {
                    let snap = n.gossip.snapshot().await.map_err(|e| e.to_string())?;
                    let size = |t: &str| {
                        let t: TopicHash = t.into();
                        snap.mesh
                            .iter()
                            .find(|(x, _)| *x == t)
                            .map_or(0, |(_, m)| m.len())
                    };
                    out.push([size(TOPIC_SMALL), size(TOPIC_LARGE)]);
                }
            }
            Net::Rust(v) => {
                for n in v {
                    out.push(
                        n.with(|s| {
                            let size = |t: &str| {
                                s.behaviour().mesh_peers(&IdentTopic::new(t).hash()).count()
                            };
                            [size(TOPIC_SMALL), size(TOPIC_LARGE)]
                        })
                        .await?,
                    );
                }
            }
        }
        Ok(out)
    }

    /// Publish from node `i`; false if the stack refused.
    async fn publish(&self, i: usize, kind: Kind, data: Vec<u8>) -> Result<bool, String> {
        match self {
            Net::Plexus(v) => Ok(v[i]
                .gossip
                .publish(kind.topic(), data)
                .await
                .map_err(|e| e.to_string())?
                .is_ok()),
            Net::Rust(v) => {
                v[i].with(move |s| {
                    s.behaviour_mut()
                        .publish(IdentTopic::new(kind.topic()), data)
                        .is_ok()
                })
                .await
            }
        }
    }

    /// Counters summed over all nodes.
    async fn counters(&self) -> Result<Counters, String> {
        let mut sum = Counters::default();
        match self {
            Net::Plexus(v) => {
                for n in v {
                    let snap = n.gossip.snapshot().await.map_err(|e| e.to_string())?;
                    let dups = |t: &str| {
                        let t: TopicHash = t.into();
                        snap.topics
                            .iter()
                            .find(|(x, _)| *x == t)
                            .map_or(0, |(_, s)| s.duplicates)
                    };
                    sum = sum
                        + Counters {
                            dups: [dups(TOPIC_SMALL), dups(TOPIC_LARGE)],
                            bytes_sent: n.host.metrics().stream_bytes_written(),
                        };
                }
            }
            Net::Rust(v) => {
                for n in v {
                    let dups = |t: &str| {
                        let label = format!("\"{t}\"");
                        let all = n.metric("topic_msg_recv_counts_unfiltered_total", &label);
                        let first = n.metric("topic_msg_recv_counts_total", &label);
                        all.saturating_sub(first)
                    };
                    sum = sum
                        + Counters {
                            dups: [dups(TOPIC_SMALL), dups(TOPIC_LARGE)],
                            bytes_sent: n
                                .metric("libp2p_bandwidth_bytes_total", "direction=\"Outbound\""),
                        };
                }
            }
        }
        Ok(sum)
    }

    /// Extra counters for the progress line (not in the table).
    async fn extras(&self) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        match self {
            Net::Plexus(v) => {
                let mut s = [0u64; 11];
                for n in v {
                    if let Ok(snap) = n.gossip.snapshot().await {
                        let st = &snap.stats;
                        s[0] += st.idontwant_sent;
                        s[1] += st.idontwant_cancelled + st.idontwant_skipped;
                        s[2] += st.ihave_sent;
                        s[3] += st.iwant_sent;
                        s[4] += st.queue_drops.iter().sum::<u64>();
                        s[5] += st.frames_sent;
                        s[6] += st.preambles_sent;
                        s[7] += st.preambles_received;
                        s[8] += st.imreceiving_sent;
                        s[9] += st.preambles_expired;
                        s[10] += st.imreceiving_received;
                    }
                }
                for (k, x) in [
                    "idontwant_ids_sent",
                    "idontwant_copies_saved",
                    "ihave_ids_sent",
                    "iwant_ids_sent",
                    "queue_drops",
                    "frames_sent",
                    "preambles_sent",
                    "preambles_received",
                    "imreceiving_ids_sent",
                    "preambles_expired",
                    "imreceiving_ids_received",
                ]
                .iter()
                .zip(s)
                {
                    out.push((format!("x_{k}"), x as f64));
                }
            }
            Net::Rust(v) => {
                let mut s = [0u64; 2];
                for n in v {
                    s[0] += n.metric("idontwant_msgs_ids_total", "");
                    s[1] += n.metric("topic_iwant_msgs_total", "");
                }
                out.push(("x_idontwant_ids_received".into(), s[0] as f64));
                out.push(("x_iwant_msgs".into(), s[1] as f64));
            }
        }
        out
    }
}

// ------------------------------------------------------------------------------------------
// Child process: one stack, results as `RESULT key value` lines on stdout.
// ------------------------------------------------------------------------------------------

fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

async fn gossip(sz: &Sizes, stack: Stack) -> Result<(), String> {
    let start = Instant::now();
    let n = sz.nodes;
    let edges = topology(n, sz.dials);
    let deg = degrees(n, &edges);
    emit("nodes", n as f64);
    emit("edges", edges.len() as f64);
    emit("min_degree", *deg.iter().min().unwrap_or(&0) as f64);
    emit("max_degree", *deg.iter().max().unwrap_or(&0) as f64);
    let rec = Arc::new(Recorder::new(start, sz.small_count, sz.large_count));

    let rss0 = rss_bytes()?;
    let net = Net::start(stack, n, &rec).await?;
    net.connect(&edges).await?;
    // Every connection up on both ends.
    let t = Instant::now();
    loop {
        let p = net.peers().await?;
        if p == deg {
            break;
        }
        if t.elapsed() > WARMUP_LIMIT {
            return Err(format!("connections: {p:?}, want {deg:?}"));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Warm-up: every mesh at min(D_low, peers).
    let warm = Instant::now();
    let mut meshes;
    loop {
        meshes = net.meshes().await?;
        let ok = meshes
            .iter()
            .zip(&deg)
            .all(|(m, d)| m.iter().all(|x| *x >= D_LOW.min(*d)));
        if ok || warm.elapsed() > WARMUP_LIMIT {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    emit("warmup_s", warm.elapsed().as_secs_f64());
    emit(
        "min_mesh",
        meshes
            .iter()
            .flat_map(|m| m.iter())
            .min()
            .copied()
            .unwrap_or(0) as f64,
    );
    emit(
        "mean_mesh",
        meshes.iter().flat_map(|m| m.iter()).sum::<usize>() as f64 / (2 * n) as f64,
    );
    // One more heartbeat so the last grafts settle.
    tokio::time::sleep(HEARTBEAT).await;
    let rss1 = rss_bytes()?;
    emit("rss_before", rss0 as f64);
    emit("rss_warm", rss1 as f64);

    let only = std::env::var("PLEXUS_GOSSIP_PHASES").ok();
    for (kind, count, rate) in [
        (Kind::Small, sz.small_count, sz.small_rate),
        (Kind::Large, sz.large_count, sz.large_rate),
    ] {
        let name = kind.name();
        if only.as_deref().is_some_and(|o| o != name)
            || (stack == Stack::PlexusLazy && kind == Kind::Small)
        {
            continue;
        }
        let expected = (count * (n - 1)) as u64;
        let meshes = net.meshes().await?;
        emit(
            &format!("{name}_mean_mesh"),
            meshes.iter().map(|m| m[kind as usize]).sum::<usize>() as f64 / n as f64,
        );
        let c0 = net.counters().await?;
        let (u0, s0) = cpu_secs()?;
        let t0 = Instant::now();
        let period = Duration::from_secs_f64(1.0 / rate);
        let mut failed = 0u64;
        for k in 0..count {
            tokio::time::sleep_until((t0 + period * k as u32).into()).await;
            let data = payload(kind, k as u32, start);
            if !net.publish(k % n, kind, data).await? {
                failed += 1;
            }
        }
        let publish_s = t0.elapsed().as_secs_f64();
        let want = expected - failed * (n as u64 - 1);
        let until = Instant::now() + DELIVERY_LIMIT;
        while rec.total(kind) < want && Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delivered_at = Instant::now();
        tokio::time::sleep(SETTLE).await;
        let (u1, s1) = cpu_secs()?;
        let window = t0.elapsed().as_secs_f64();
        let c = net.counters().await? - c0;
        let (lats, total, missing, last, bad) = {
            let r = rec.inner.lock().expect("recorder lock");
            let mut l = r.lat_us[kind as usize].clone();
            l.sort_unstable();
            let missing: u64 = r.count[kind as usize]
                .iter()
                .map(|&c| (n as u64 - 1).saturating_sub(c as u64))
                .sum();
            (
                l,
                r.total[kind as usize],
                missing,
                r.last[kind as usize],
                r.bad,
            )
        };
        emit(&format!("{name}_published"), (count as u64 - failed) as f64);
        emit(&format!("{name}_publish_failed"), failed as f64);
        emit(&format!("{name}_expected"), expected as f64);
        emit(&format!("{name}_deliveries"), total as f64);
        emit(&format!("{name}_missing"), missing as f64);
        emit(&format!("{name}_bad"), bad as f64);
        emit(
            &format!("{name}_p50_ms"),
            percentile(&lats, 0.50) as f64 / 1e3,
        );
        emit(
            &format!("{name}_p99_ms"),
            percentile(&lats, 0.99) as f64 / 1e3,
        );
        emit(
            &format!("{name}_max_ms"),
            lats.last().copied().unwrap_or(0) as f64 / 1e3,
        );
        emit(&format!("{name}_dups"), c.dups[kind as usize] as f64);
        emit(
            &format!("{name}_dups_other_topic"),
            c.dups[1 - kind as usize] as f64,
        );
        emit(&format!("{name}_bytes_sent"), c.bytes_sent as f64);
        emit(&format!("{name}_cpu_user_s"), u1 - u0);
        emit(&format!("{name}_cpu_sys_s"), s1 - s0);
        emit(&format!("{name}_cpu_s"), (u1 - u0) + (s1 - s0));
        emit(&format!("{name}_window_s"), window);
        emit(&format!("{name}_publish_s"), publish_s);
        emit(
            &format!("{name}_last_delivery_s"),
            last.saturating_sub(t0.duration_since(start)).as_secs_f64(),
        );
        emit(
            &format!("{name}_wait_s"),
            delivered_at.duration_since(t0).as_secs_f64(),
        );
    }
    emit("rss_end", rss_bytes()? as f64);
    for (k, v) in net.extras().await {
        emit(&k, v);
    }
    emit("child_s", start.elapsed().as_secs_f64());
    Ok(())
}

fn child_main(args: &[String]) -> ! {
    let phase = args.first().cloned().unwrap_or_default();
    let stack = args.get(1).and_then(|s| Stack::parse(s));
    if stack == Some(Stack::PlexusLazy) {
        LAZY.store(true, std::sync::atomic::Ordering::Relaxed);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let args = args.to_vec();
    // Everything, the measuring task included, runs on the runtime's 2 workers.
    let result: Result<(), String> = rt.block_on(async move {
        tokio::spawn(async move {
            let sz = sizes();
            match (phase.as_str(), stack) {
                ("gossip", Some(st)) => gossip(&sz, st).await,
                _ => Err(format!("bad child arguments {args:?}")),
            }
        })
        .await
        .unwrap_or_else(|e| Err(format!("measuring task failed: {e}")))
    });
    let code = match result {
        Ok(()) => {
            println!("DONE");
            0
        }
        Err(e) => {
            println!("ERROR {e}");
            1
        }
    };
    let _ = std::io::stdout().flush();
    // Leave at once: background tasks (swarms, drivers) must not delay the exit.
    std::process::exit(code)
}

// ------------------------------------------------------------------------------------------
// Parent process.
// ------------------------------------------------------------------------------------------

/// The successful runs of one stack, or why there are none.
struct Runs {
    ok: Vec<HashMap<String, f64>>,
    err: Option<String>,
}

/// Median, slowest and fastest of a figure over the runs.
#[derive(Clone, Copy)]
struct Stat {
    med: f64,
    min: f64,
    max: f64,
    n: usize,
}

impl Runs {
    fn stat(&self, f: &dyn Fn(&HashMap<String, f64>) -> f64) -> Result<Stat, String> {
        let mut v: Vec<f64> = self.ok.iter().map(f).filter(|x| x.is_finite()).collect();
        if v.is_empty() {
            return Err(self.err.clone().unwrap_or_else(|| "not measured".into()));
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        let med = if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        };
        Ok(Stat {
            med,
            min: v[0],
            max: v[n - 1],
            n,
        })
    }
}

fn val(v: &HashMap<String, f64>, k: &str) -> f64 {
    v.get(k).copied().unwrap_or(f64::NAN)
}

/// A cell: the median with ` [min–max]` when there were several runs, or why there is none.
fn cell(s: &Result<Stat, String>, fmt: &dyn Fn(f64) -> String, spread: bool) -> String {
    match s {
        Ok(s) if spread && s.n > 1 => format!("{} [{}–{}]", fmt(s.med), fmt(s.min), fmt(s.max)),
        Ok(s) => fmt(s.med),
        Err(e) => e.clone(),
    }
}

fn ratio(a: &Result<Stat, String>, b: &Result<Stat, String>) -> Option<f64> {
    match (a, b) {
        (Ok(a), Ok(b)) if b.med > 0.0 => Some(a.med / b.med),
        _ => None,
    }
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or("–".to_string(), |r| format!("{r:.2}×"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child_main(&args[i + 1..]);
    }
    let sz = sizes();
    let started = Instant::now();
    let exe = std::env::current_exe().expect("own path");
    let stacks = [Stack::Plexus, Stack::Rust, Stack::PlexusLazy];
    let cap = Duration::from_secs(120);
    let mut res: HashMap<Stack, Runs> = stacks
        .iter()
        .map(|s| {
            (
                *s,
                Runs {
                    ok: Vec::new(),
                    err: None,
                },
            )
        })
        .collect();
    // Runs alternate between the stacks, so background load falls on both alike.
    let total = sz.runs * stacks.len();
    let mut step = 0;
    for r in 0..sz.runs {
        for st in stacks {
            step += 1;
            let label = format!(
                "[{step}/{total}] gossip, {} nodes: {} (run {}/{})",
                sz.nodes,
                st.name(),
                r + 1,
                sz.runs
            );
            let runs = res.get_mut(&st).expect("every stack");
            match run_child(&exe, &label, &["gossip", st.arg()], cap) {
                Ok(v) => runs.ok.push(v),
                Err(e) => {
                    runs.err.get_or_insert(e);
                }
            }
        }
    }
    let run_secs = started.elapsed().as_secs_f64();

    // ---------------- report ----------------
    let get = |st: Stack, f: &dyn Fn(&HashMap<String, f64>) -> f64| res[&st].stat(f);
    let mut md = String::new();
    let size_note = if sz.quick {
        "**QUICK MODE (`PLEXUS_BENCH_QUICK`): reduced sizes, not a result.** "
    } else {
        ""
    };
    let edges = topology(sz.nodes, sz.dials);
    let deg = degrees(sz.nodes, &edges);
    md.push_str(&format!(
        "{size_note}Measurements took {run_secs:.0} s ({} per stack, alternating, each in a fresh \
         child process; every figure is the median over the runs, [brackets] give the lowest and \
         highest).\n\n\
         - Network: {} nodes on 127.0.0.1 in one process per stack, TCP + Noise + yamux, secp256k1 \
         keys; each node dials {} random others (seeded: the same graph for both stacks), {} \
         connections, degree {}–{} (mean {:.1}).\n\
         - Two topics: small messages ({SMALL_LEN} B) on one, large ({} KiB) on the other, every node \
         subscribed to both.\n\
         - Small phase: {} messages at {}/s; then large phase: {} messages at {}/s; publisher of \
         message *k* is node *k* mod {}. Each phase's window runs from its first publish until every \
         node delivered every message, plus {:.1} s (three heartbeats, so the gossip the messages \
         cause is counted).\n\n",
        if sz.runs == 1 {
            "1 run".to_string()
        } else {
            format!("{} runs", sz.runs)
        },
        sz.nodes,
        sz.dials,
        edges.len(),
        deg.iter().min().unwrap_or(&0),
        deg.iter().max().unwrap_or(&0),
        deg.iter().sum::<usize>() as f64 / sz.nodes as f64,
        LARGE_LEN / 1024,
        sz.small_count,
        sz.small_rate,
        sz.large_count,
        sz.large_rate,
        sz.nodes,
        SETTLE.as_secs_f64(),
    ));
    md.push_str(
        "| metric | plexus | rust-libp2p | plexus / rust-libp2p | target | verdict |\n\
         |---|---|---|---|---|---|\n",
    );
    let mut targets: Vec<(String, String)> = Vec::new();
    for kind in [Kind::Small, Kind::Large] {
        let k = kind.name();
        let size = if kind == Kind::Small {
            format!("{SMALL_LEN} B")
        } else {
            format!("{} KiB", LARGE_LEN / 1024)
        };
        let per_delivery = |key: String| {
            let d = format!("{k}_deliveries");
            move |v: &HashMap<String, f64>| val(v, &key) / val(v, &d)
        };
        let us = |x: f64| format!("{:.0} µs", x * 1e6);
        // CPU per delivered message.
        let f = per_delivery(format!("{k}_cpu_s"));
        let (px, rs) = (get(Stack::Plexus, &f), get(Stack::Rust, &f));
        let r = ratio(&px, &rs);
        let v = verdict(r, 0.5, false, "×");
        targets.push((
            format!("CPU per delivered {k} message ≤ 0.5× rust-libp2p"),
            v.clone(),
        ));
        md.push_str(&format!(
            "| CPU per delivered message, {size} | {} | {} | {} | ≤ 0.5× | {v} |\n",
            cell(&px, &us, true),
            cell(&rs, &us, true),
            fmt_ratio(r)
        ));
        let copies = format!("{k}_dups");
        let d = format!("{k}_deliveries");
        let cpu = format!("{k}_cpu_s");
        let f = |v: &HashMap<String, f64>| val(v, &cpu) / (val(v, &d) + val(v, &copies));
        let (px, rs) = (get(Stack::Plexus, &f), get(Stack::Rust, &f));
        md.push_str(&format!(
            "| … per received copy (first or duplicate) | {} | {} | {} | – | |\n",
            cell(&px, &us, false),
            cell(&rs, &us, false),
            fmt_ratio(ratio(&px, &rs))
        ));
        let f = per_delivery(format!("{k}_cpu_sys_s"));
        let (px, rs) = (get(Stack::Plexus, &f), get(Stack::Rust, &f));
        md.push_str(&format!(
            "| … of which system (kernel) time, per delivered message | {} | {} | {} | – | |\n",
            cell(&px, &us, false),
            cell(&rs, &us, false),
            fmt_ratio(ratio(&px, &rs))
        ));
        // Latency.
        let ms = |x: f64| format!("{x:.2} ms");
        let key = format!("{k}_p50_ms");
        let f = |v: &HashMap<String, f64>| val(v, &key);
        let (px, rs) = (get(Stack::Plexus, &f), get(Stack::Rust, &f));
        md.push_str(&format!(
            "| publish→delivery latency p50, {size} | {} | {} | {} | – | |\n",
            cell(&px, &ms, true),
            cell(&rs, &ms, true),
            fmt_ratio(ratio(&px, &rs))
        ));
        let key = format!("{k}_p99_ms");
        let f = |v: &HashMap<String, f64>| val(v, &key);
        let (px, rs) = (get(Stack::Plexus, &f), get(Stack::Rust, &f));
        let r = ratio(&px, &rs);
        let v = verdict(r, 1.0, false, "×");
        targets.push((format!("p99 latency, {k} ≤ rust-libp2p's"), v.clone()));
        md.push_str(&format!(
            "| publish→delivery latency p99, {size} | {} | {} | {} | ≤ 1× | {v} |\n",
            cell(&px, &ms, true),
            cell(&rs, &ms, true),
            fmt_ratio(r)
        ));
        let key = format!("{k}_max_ms");
        let f = |v: &HashMap<String, f64>| val(v, &key);
        let (px, rs) = (get(Stack::Plexus, &f), get(Stack::Rust, &f));
        md.push_str(&format!(
            "| publish→delivery latency max, {size} | {} | {} | {} | – | |\n",
            cell(&px, &ms, true),
            cell(&rs, &ms, true),
            fmt_ratio(ratio(&px, &rs))
        ));
        // Duplicates.
        let f = per_delivery(format!("{k}_dups"));
        let (px, rs) = (get(Stack::Plexus, &f), get(Stack::Rust, &f));
        let f2 = |x: f64| format!("{x:.2}");
        let (target, v) = if kind == Kind::Large {
            let v = verdict(px.as_ref().ok().map(|s| s.med), 1.0, false, "");
            targets.push(("duplicates per large message ≤ 1".into(), v.clone()));
            ("≤ 1", v)
        } else {
            ("–", String::new())
        };
        md.push_str(&format!(
            "| duplicates received per delivered message, {size} | {} | {} | {} | {target} | {v} |\n",
            cell(&px, &f2, true),
            cell(&rs, &f2, true),
            fmt_ratio(ratio(&px, &rs))
        ));
        let key = format!("{k}_mean_mesh");
        let f = |v: &HashMap<String, f64>| val(v, &key);
        let (px, rs) = (get(Stack::Plexus, &f), get(Stack::Rust, &f));
        md.push_str(&format!(
            "| mean mesh size of the topic (D = {D}) | {} | {} | {} | – | |\n",
            cell(&px, &f2, false),
            cell(&rs, &f2, false),
            fmt_ratio(ratio(&px, &rs))
        ));
        // Bytes.
        let f = per_delivery(format!("{k}_bytes_sent"));
        let (px, rs) = (get(Stack::Plexus, &f), get(Stack::Rust, &f));
        let len = kind.len() as f64;
        let b = |x: f64| {
            if x >= 10.0 * 1024.0 {
                format!("{:.0} KiB ({:.2}× payload)", x / 1024.0, x / len)
            } else {
                format!("{x:.0} B ({:.2}× payload)", x / len)
            }
        };
        md.push_str(&format!(
            "| bytes sent per delivered message, {size} | {} | {} | {} | – | |\n",
            cell(&px, &b, false),
            cell(&rs, &b, false),
            fmt_ratio(ratio(&px, &rs))
        ));
        // Deliveries, summed over the runs.
        let dl = |st: Stack| {
            let runs = &res[&st];
            if runs.ok.is_empty() {
                return runs.err.clone().unwrap_or_else(|| "not measured".into());
            }
            let sum = |key: &str| runs.ok.iter().map(|v| val(v, key)).sum::<f64>();
            let miss = sum(&format!("{k}_missing"));
            let failed = sum(&format!("{k}_publish_failed"));
            let mut s = format!(
                "{:.0} / {:.0}",
                sum(&format!("{k}_deliveries")),
                sum(&format!("{k}_expected")),
            );
            if miss > 0.0 {
                s.push_str(&format!(", **{miss:.0} missing**"));
            }
            if failed > 0.0 {
                s.push_str(&format!(", **{failed:.0} publishes refused**"));
            }
            if let Some(e) = &runs.err {
                s.push_str(&format!(" (a run {e})"));
            }
            s
        };
        md.push_str(&format!(
            "| deliveries / expected (all runs), {size} | {} | {} | | | |\n",
            dl(Stack::Plexus),
            dl(Stack::Rust)
        ));
    }
    let kib = |x: f64| format!("{:.0} KiB", x / 1024.0);
    for (key, what) in [
        (
            "rss_warm",
            "RSS per node after warm-up (idle, meshes formed)",
        ),
        ("rss_end", "RSS per node after both phases"),
    ] {
        let f = |v: &HashMap<String, f64>| (val(v, key) - val(v, "rss_before")) / val(v, "nodes");
        let (px, rs) = (get(Stack::Plexus, &f), get(Stack::Rust, &f));
        md.push_str(&format!(
            "| {what} | {} | {} | {} | – | |\n",
            cell(&px, &kib, false),
            cell(&rs, &kib, false),
            fmt_ratio(ratio(&px, &rs))
        ));
    }
    let warm = |st: Stack| {
        let w = get(st, &|v| val(v, "warmup_s"));
        let m = get(st, &|v| val(v, "min_mesh"));
        let a = get(st, &|v| val(v, "mean_mesh"));
        match (w, m, a) {
            (Ok(w), Ok(m), Ok(a)) => {
                format!("{:.1} s; mesh ≥ {:.0}, mean {:.1}", w.med, m.min, a.med)
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => e,
        }
    };
    md.push_str(&format!(
        "| warm-up until every mesh ≥ min(D_low, peers) | {} | {} | | | |\n\n",
        warm(Stack::Plexus),
        warm(Stack::Rust)
    ));

    // plexus with lazy push, large phase, beside the two stacks' defaults.
    md.push_str(&format!(
        "### Large messages with lazy push\n\n\
         plexus with `lazy_push_threshold` 16 KiB and `lazy_push_eager` 2 (forwards of the \
         {} KiB messages go whole to at most two mesh peers and as an IHAVE to the others; own \
         publishes go whole), large phase only, same network and runs:\n\n\
         | metric, {} KiB | plexus, lazy push | plexus | rust-libp2p | lazy / rust-libp2p | target | verdict |\n\
         |---|---|---|---|---|---|---|\n",
        LARGE_LEN / 1024,
        LARGE_LEN / 1024
    ));
    {
        let k = Kind::Large.name();
        let d = format!("{k}_deliveries");
        let us = |x: f64| format!("{:.0} µs", x * 1e6);
        let ms = |x: f64| format!("{x:.2} ms");
        let f2 = |x: f64| format!("{x:.2}");
        let kib = |x: f64| format!("{:.0} KiB", x / 1024.0);
        let rows: [LazyRow; 6] = [
            (
                "CPU per delivered message",
                format!("{k}_cpu_s"),
                true,
                &us,
                Some((0.5, true)),
            ),
            ("latency p50", format!("{k}_p50_ms"), false, &ms, None),
            (
                "latency p99",
                format!("{k}_p99_ms"),
                false,
                &ms,
                Some((1.0, true)),
            ),
            (
                "duplicates per delivered message",
                format!("{k}_dups"),
                true,
                &f2,
                Some((1.0, false)),
            ),
            (
                "bytes sent per delivered message",
                format!("{k}_bytes_sent"),
                true,
                &kib,
                None,
            ),
            ("mean mesh size", format!("{k}_mean_mesh"), false, &f2, None),
        ];
        for (what, key, per, fmt, target) in rows {
            let f = |v: &HashMap<String, f64>| {
                if per {
                    val(v, &key) / val(v, &d)
                } else {
                    val(v, &key)
                }
            };
            let (lz, px, rs) = (
                get(Stack::PlexusLazy, &f),
                get(Stack::Plexus, &f),
                get(Stack::Rust, &f),
            );
            let r = ratio(&lz, &rs);
            let (t, v) = match target {
                Some((x, true)) => {
                    let v = verdict(r, x, false, "×");
                    (format!("≤ {x}×"), v)
                }
                Some((x, false)) => {
                    let v = verdict(lz.as_ref().ok().map(|s| s.med), x, false, "");
                    (format!("≤ {x}"), v)
                }
                None => ("–".to_string(), String::new()),
            };
            if !v.is_empty() {
                targets.push((format!("with lazy push: {what}, large, {t}"), v.clone()));
            }
            md.push_str(&format!(
                "| {what} | {} | {} | {} | {} | {t} | {v} |\n",
                cell(&lz, fmt, true),
                cell(&px, fmt, false),
                cell(&rs, fmt, false),
                fmt_ratio(r)
            ));
        }
        let f =
            |v: &HashMap<String, f64>| (val(v, "rss_end") - val(v, "rss_before")) / val(v, "nodes");
        let (lz, px, rs) = (
            get(Stack::PlexusLazy, &f),
            get(Stack::Plexus, &f),
            get(Stack::Rust, &f),
        );
        md.push_str(&format!(
            "| RSS per node at the end (lazy: large phase only; others: both phases) | {} | {} | {} | {} | – | |\n",
            cell(&lz, &kib, false),
            cell(&px, &kib, false),
            cell(&rs, &kib, false),
            fmt_ratio(ratio(&lz, &rs))
        ));
        let runs = &res[&Stack::PlexusLazy];
        let sum = |key: &str| runs.ok.iter().map(|v| val(v, key)).sum::<f64>();
        md.push_str(&format!(
            "| deliveries / expected (all runs) | {:.0} / {:.0}{} | | | | | |\n\n",
            sum(&d),
            sum(&format!("{k}_expected")),
            runs.err
                .as_ref()
                .map(|e| format!(" (a run {e})"))
                .unwrap_or_default()
        ));
    }

    md.push_str("### Gossip targets\n\n| target | verdict |\n|---|---|\n");
    for (t, v) in &targets {
        md.push_str(&format!("| {t} | {v} |\n"));
    }
    md.push_str(&format!(
        "\n### Gossip method\n\n\
         - One child process per stack (this binary re-executed), a tokio multi-thread runtime with 2 \
         workers running all nodes; the application task of each node records the delivery time when \
         it sees a message and answers Accept at once (validation on in both stacks, as Lighthouse \
         runs rust-libp2p).\n\
         - Parameters, both stacks: D={D}, D_low={D_LOW}, D_high={D_HIGH}, D_lazy={D_LAZY}, D_out={D_OUT}, \
         heartbeat {} ms (first after {} ms), message cache {HISTORY_LENGTH}/{HISTORY_GOSSIP}, seen \
         cache {} s, flood publish off (as Lighthouse sets it), IDONTWANT on receipt for messages of \
         ≥ {IDONTWANT_THRESHOLD} B (not on publish: rust-libp2p's and Lighthouse's default), max \
         transmit size {MAX_TRANSMIT} B, no signatures (plexus `StrictNoSign`, rust-libp2p \
         `Anonymous`), the same content message id (first 20 bytes of SHA-256(topic length u64 LE ‖ \
         topic ‖ data)), no peer scoring; otherwise each stack's defaults (send queues, timeouts). \
         plexus: `plexus_host::Host` + `GossipsubService` (+ `GossipMetrics`); rust-libp2p 0.57: \
         `gossipsub::Behaviour` 0.50 with its Prometheus metrics, TCP + Noise + yamux as \
         `SwarmBuilder::with_tcp` builds it, wrapped in libp2p-metrics' bandwidth counters.\n\
         - CPU: user + system seconds of the whole child process (`/proc/self/stat`, 10 ms ticks) over \
         the phase's window, divided by the deliveries in it (all nodes, so the figure includes \
         encryption, muxing, forwarding and the duplicates); *per received copy* divides it by all \
         copies received instead (first copies plus duplicates), which does not depend on how many \
         copies the meshes carry. Mesh size: mean over the nodes at the start of the phase.\n\
         - Latency: delivery time at each receiving node minus the publish time written into the \
         payload just before `publish` (same process clock); p50 / p99 / max over all deliveries of \
         the phase.\n\
         - Duplicates: copies received after the first, summed over all nodes, divided by the \
         deliveries (so ≈ duplicates per node per message). plexus: the router's per-topic \
         `TopicStats::duplicates`; rust-libp2p: `topic_msg_recv_counts_unfiltered` − \
         `topic_msg_recv_counts` of its metrics (every received copy minus first copies).\n\
         - Bytes sent: bytes written to muxed streams (above yamux, below Noise: gossipsub RPCs incl. \
         control, plus multistream), summed over all nodes, per delivery. plexus: \
         `HostMetrics::stream_bytes_written`; rust-libp2p: libp2p-metrics `libp2p_bandwidth_bytes` \
         (outbound).\n\
         - RSS per node: (`VmRSS` after warm-up, or after both phases, − `VmRSS` before the nodes \
         were created) / nodes.\n",
        HEARTBEAT.as_millis(),
        HEARTBEAT_INITIAL_DELAY.as_millis(),
        SEEN_TTL.as_secs(),
    ));
    print!("{md}");
    let _ = std::io::stdout().flush();
}
