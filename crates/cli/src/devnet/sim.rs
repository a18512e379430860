//! The simulation: nodes, traffic, scripted events, measurement.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::IsTerminal;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use plexus_core::{BoxFut, ConnectionGater, PeerId, Verdict};
use plexus_eth::ssz_types::BitVector;
use plexus_eth::{
    BeaconBlocksByRangeRequest, ChainConfig, ForkSchedule, GoodbyeReason, GossipKind, MetaDataV3,
    Network, StatusV2,
};
use plexus_eth_gossip::{EthGossip, EthGossipConfig, EthGossipEvent};
use plexus_gossipsub::{Acceptance, GossipEvent};
use plexus_host::{Host, HostConfig, Keypair};
use plexus_multiaddr::{Multiaddr, Protocol as Addr};
use plexus_peer_manager::service::{PeerManagerBuilder, PeerManagerHandle};
use plexus_peer_manager::{
    Advertised, GoodbyeBackoffs, PeerAction, PeerManagerConfig, ReportSource,
};
use plexus_reqresp::{
    Protocol, ReqResp, ReqRespConfig, ReqRespHandle, Request, RespondError, Responder,
    ResponseSink, status_answer,
};
use serde_json::json;
use tokio::sync::mpsc;

use super::report::{
    CrossProcess, EventReport, NodeReport, PeerManagerReport, Report, ReqRespReport, SlotReport,
    TopicReport, percentile, share,
};
use crate::Failure;
use crate::args::DevnetArgs;
use crate::output::Out;

/// Slots whose traffic is not accounted (the network settles: the last simultaneous
/// dials' losers close and their gossip streams are reopened).
const WARMUP_SLOTS: u64 = 1;
/// Attestation subnets in use (each node attests on `index % ATT_SUBNETS`).
const ATT_SUBNETS: u64 = 4;
/// Data column subnets in use; each node custodies half of them.
const COLUMNS: u64 = 8;
/// Payload layout (every message): `[0..4]` SSZ offset 100 (so a block's slot sits where a
/// `SignedBeaconBlock`'s does), `[4..12]` publisher, `[12..20]` publish time (µs since the
/// run started), `[20..28]` nonce, `[28..36]` checksum, `[100..108]` slot.
const HEADER: usize = 108;

/// What a node is in the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Honest,
    LateJoiner,
    Misbehaving,
    WrongFork,
    Rejoiner,
}

impl Role {
    fn label(self) -> &'static str {
        match self {
            Role::Honest => "honest",
            Role::LateJoiner => "late_joiner",
            Role::Misbehaving => "misbehaving",
            Role::WrongFork => "wrong_fork",
            Role::Rejoiner => "rejoiner",
        }
    }

    /// Receives and checks gossip like an honest node (counted in deliveries).
    fn honest(self) -> bool {
        matches!(self, Role::Honest | Role::LateJoiner | Role::Rejoiner)
    }
}

/// The minimal preset with every fork through Fulu at genesis (Gloas never).
fn schedule(gvr: [u8; 32]) -> Result<Arc<ForkSchedule>, Failure> {
    let text: String = Network::Minimal
        .config_text()
        .lines()
        .map(|l| {
            let fork = ["ALTAIR", "BELLATRIX", "CAPELLA", "DENEB", "ELECTRA", "FULU"]
                .iter()
                .any(|f| l.starts_with(&format!("{f}_FORK_EPOCH:")));
            if fork {
                format!("{}: 0", l.split(':').next().unwrap_or_default())
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = ChainConfig::from_yaml(&text)
        .map_err(|e| Failure::Check(format!("devnet chain config: {e}")))?;
    ForkSchedule::new(config, gvr)
        .map(Arc::new)
        .map_err(|e| Failure::Check(format!("devnet fork schedule: {e}")))
}

fn status(schedule: &ForkSchedule) -> StatusV2 {
    StatusV2::at_genesis(schedule.digest_at(0))
}

/// A cheap deterministic check standing in for signature verification: FNV-1a over the
/// header fields, up to 4 KiB of the body, and the length.
fn checksum(p: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    };
    for &b in p[..28].iter().chain(&p[36..p.len().min(36 + 4096)]) {
        eat(b);
    }
    for b in (p.len() as u64).to_le_bytes() {
        eat(b);
    }
    h
}

fn u64_at(p: &[u8], i: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&p[i..i + 8]);
    u64::from_le_bytes(b)
}

/// A payload of `len` bytes (at least `HEADER`), valid unless `corrupt`.
fn payload(
    len: usize,
    slot: u64,
    publisher: u64,
    at_us: u64,
    nonce: u64,
    corrupt: bool,
) -> Vec<u8> {
    let len = len.max(HEADER);
    let mut p = vec![0u8; len];
    p[0..4].copy_from_slice(&100u32.to_le_bytes());
    p[4..12].copy_from_slice(&publisher.to_le_bytes());
    p[12..20].copy_from_slice(&at_us.to_le_bytes());
    p[20..28].copy_from_slice(&nonce.to_le_bytes());
    p[100..108].copy_from_slice(&slot.to_le_bytes());
    // Body: a cheap pattern that snappy compresses about as well as real blocks (~2x).
    let mut x = nonce.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    for (i, b) in p[HEADER..].iter_mut().enumerate() {
        if i % 2 == 0 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            *b = x as u8;
        }
    }
    let c = checksum(&p) ^ u64::from(corrupt);
    p[28..36].copy_from_slice(&c.to_le_bytes());
    p
}

/// What a received payload says, if its checksum holds.
struct Parsed {
    slot: u64,
    at_us: u64,
    nonce: u64,
}

fn parse(p: &[u8]) -> Option<Parsed> {
    if p.len() < HEADER || u64_at(p, 28) != checksum(p) {
        return None;
    }
    Some(Parsed {
        slot: u64_at(p, 100),
        at_us: u64_at(p, 12),
        nonce: u64_at(p, 20),
    })
}

/// A small deterministic RNG (xorshift64*), seeded per run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The kind's report name: subnets folded together.
fn kind_name(k: GossipKind) -> &'static str {
    match k {
        GossipKind::BeaconBlock => "beacon_block",
        GossipKind::BeaconAggregateAndProof => "beacon_aggregate_and_proof",
        GossipKind::BeaconAttestation(_) => "beacon_attestation",
        GossipKind::SyncCommittee(_) => "sync_committee",
        GossipKind::DataColumnSidecar(_) => "data_column_sidecar",
        _ => "other",
    }
}

const KIND_NAMES: [&str; 5] = [
    "beacon_block",
    "data_column_sidecar",
    "beacon_attestation",
    "beacon_aggregate_and_proof",
    "sync_committee",
];

/// The topics node `i` follows.
fn kinds_of(i: usize) -> Vec<GossipKind> {
    let i = i as u64;
    vec![
        GossipKind::BeaconBlock,
        GossipKind::BeaconAggregateAndProof,
        GossipKind::BeaconAttestation(i % ATT_SUBNETS),
        GossipKind::SyncCommittee(0),
        // Half the columns each (alternate ones), so every column has about n/2
        // custodians and a proposer reaches each through its peers.
        GossipKind::DataColumnSidecar(i % COLUMNS),
        GossipKind::DataColumnSidecar((i + 2) % COLUMNS),
        GossipKind::DataColumnSidecar((i + 4) % COLUMNS),
        GossipKind::DataColumnSidecar((i + 6) % COLUMNS),
    ]
}

/// One delivery: node `node` first received message `nonce` after `latency_ms`.
struct Delivery {
    node: usize,
    nonce: u64,
    latency_ms: f64,
}

/// One published message and who should receive it.
struct Published {
    kind: &'static str,
    slot: u64,
    expected: Vec<usize>,
}

/// Counts the accepts (past every built-in and peer-manager check, so a handshake starts)
/// by remote IP, with their times: the app gater asked after the peer manager's.
#[derive(Default)]
struct Witness {
    accepts: Mutex<Vec<(IpAddr, Instant)>>,
}

impl ConnectionGater for Witness {
    fn accept(&self, _local: &Multiaddr, remote: &Multiaddr) -> Verdict {
        if let Some(Addr::Ip4(ip)) = remote.iter().next() {
            lock(&self.accepts).push((IpAddr::V4(*ip), Instant::now()));
        }
        Verdict::Allow
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Blocks by slot, served by range.
type Store = Arc<Mutex<BTreeMap<u64, Vec<u8>>>>;

/// Serves blocks by range from the node's store (junk when misbehaving).
struct Chain {
    store: Store,
    junk: bool,
}

impl Responder for Chain {
    fn protocols(&self) -> Vec<Protocol> {
        vec![Protocol::BeaconBlocksByRangeV2]
    }

    fn respond<'a>(
        &'a self,
        _: PeerId,
        request: Request,
        sink: &'a mut ResponseSink,
    ) -> BoxFut<'a, Result<(), RespondError>> {
        Box::pin(async move {
            let Request::BeaconBlocksByRangeV2(r) = request else {
                return Err(RespondError::ServerError("not served".into()));
            };
            let blocks: Vec<(u64, Vec<u8>)> = {
                let s = lock(&self.store);
                s.range(r.start_slot..r.start_slot.saturating_add(r.count))
                    .map(|(k, v)| (*k, v.clone()))
                    .collect()
            };
            for (slot, mut b) in blocks {
                if self.junk {
                    // A block from far outside the range asked for.
                    b[100..108].copy_from_slice(&(slot + 1_000_000).to_le_bytes());
                }
                sink.send(&b, slot)
                    .await
                    .map_err(|e| RespondError::ServerError(e.to_string()))?;
            }
            Ok(())
        })
    }
}

/// Everything the nodes write into.
struct Shared {
    start: Instant,
    deliveries: Mutex<Vec<Delivery>>,
    nonce: AtomicU64,
    /// Every nonce this process published (to tell other processes' messages apart).
    own: Mutex<HashSet<u64>>,
}

/// What node `idx` serves, as its MetaData says and as discovery would advertise it (the
/// ENR's `attnets` and `cgc`): attestation subnet `idx mod ATT_SUBNETS`, 4 custody groups.
fn advertised(idx: usize) -> Advertised {
    Advertised {
        attnets: 1 << (idx as u64 % ATT_SUBNETS),
        syncnets: 0,
        custody_group_count: 4,
    }
}

/// Hand a peer to a peer manager as discovery would: with its advertised subnets when
/// known (a node of this process), as a plain candidate otherwise (a bootstrap address).
fn introduce(
    pm: &PeerManagerHandle,
    id: PeerId,
    addrs: &[Multiaddr],
    subnets_of: &HashMap<PeerId, Advertised>,
) {
    match subnets_of.get(&id) {
        Some(adv) => pm.add_discovered(id, addrs.to_vec(), *adv),
        None => pm.add_candidate(id, addrs.to_vec()),
    }
}

struct Node {
    idx: usize,
    role: Role,
    ip: Ipv4Addr,
    host: Host,
    gossip: EthGossip,
    rr: ReqRespHandle,
    pm: Option<PeerManagerHandle>,
    witness: Arc<Witness>,
    store: Store,
    schedule: Arc<ForkSchedule>,
    _identify: plexus_identify::IdentifyHandle,
}

impl Node {
    fn addrs(&self) -> Vec<Multiaddr> {
        self.host
            .listen_addrs()
            .into_iter()
            .map(|a| a.with(Addr::P2p(self.host.peer_id())))
            .collect()
    }

    fn id(&self) -> PeerId {
        self.host.peer_id()
    }
}

/// The run's knobs derived from the arguments.
struct Plan {
    /// The first node's IP (see `node_ip`).
    ip: Ipv4Addr,
    slots: u64,
    slot: Duration,
    late: Option<usize>,
    bad: Option<usize>,
    wrong: Option<usize>,
    rejoin: Option<usize>,
    late_at: u64,
    leave_at: u64,
    back_at: u64,
    target: usize,
}

/// Node `idx`'s IP: counting up from `plan.ip` on loopback (200 per third octet), else
/// `plan.ip` for every node.
fn node_ip(plan: &Plan, idx: usize) -> Ipv4Addr {
    if !plan.ip.is_loopback() {
        return plan.ip;
    }
    let [a, b, c, d] = plan.ip.octets();
    Ipv4Addr::new(a, b, c + (idx / 200) as u8, d + (idx % 200) as u8)
}

/// `--ip` fits `n` nodes: a dialable address and, on loopback, room for `n` addresses.
fn check_ip(ip: Ipv4Addr, n: usize) -> Result<(), Failure> {
    if ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() {
        return Err(Failure::Usage(format!(
            "--ip {ip}: the nodes need an address others can dial"
        )));
    }
    let [_, _, c, d] = ip.octets();
    if ip.is_loopback() && (d == 0 || d > 55 || c as usize + (n - 1) / 200 > 255) {
        return Err(Failure::Usage(format!(
            "--ip {ip}: on loopback each node takes the next address, 200 per third octet: \
             the last octet must be 1..=55 and the third leave room for {n} nodes"
        )));
    }
    Ok(())
}

fn pm_config(plan: &Plan) -> PeerManagerConfig {
    let mut c = PeerManagerConfig {
        target_peers: plan.target,
        min_outbound_factor: 0.0,
        heartbeat_interval: plan.slot / 2,
        status_wait: Duration::from_millis(200),
        ping_interval: plan.slot * 4,
        reconnect_backoff: plan.slot * 2,
        dial_backoff: plan.slot,
        ban_duration: Duration::from_secs(3600),
        goodbye_timeout: Duration::from_millis(500),
        // Subnet peers are dialed first only up to a quarter of the target: mates dial
        // each other both ways, so a larger share would fill whole nodes with peers of
        // their own subnet (and parity of columns), and a proposer would find no peer on
        // the column subnets it does not follow.
        target_peers_per_subnet: (plan.target / 4).max(2),
        ..PeerManagerConfig::default()
    };
    c.goodbye_backoff = GoodbyeBackoffs {
        // A restarting node is welcome back after a slot.
        client_shutdown: plan.slot,
        ..GoodbyeBackoffs::default()
    };
    c
}

async fn start_node(
    idx: usize,
    role: Role,
    key: Keypair,
    plan: &Plan,
    schedule: Arc<ForkSchedule>,
    shared: &Arc<Shared>,
    store: Store,
) -> Result<Node, Failure> {
    let ip = node_ip(plan, idx);
    let fail = |what: &str, e: String| Failure::Check(format!("node {idx}: {what}: {e}"));
    let quic = plexus_quic::QuicTransport::new(&key, plexus_quic::QuicConfig::default());
    let mut hc = HostConfig::new(key.clone());
    hc.tcp.outbound_bind_ip = Some(IpAddr::V4(ip));
    hc.transports = vec![
        Arc::new(quic),
        Arc::new(plexus_tcp::TcpTransport::new(hc.tcp.clone())),
    ];
    hc.listen = vec![
        format!("/ip4/{ip}/tcp/0").parse().expect("valid"),
        format!("/ip4/{ip}/udp/0/quic-v1").parse().expect("valid"),
    ];
    // A mix of muxer preferences: every third node prefers mplex.
    if idx % 3 == 2 {
        let mux = hc.limits.mux.clone();
        hc.muxers = vec![
            Arc::new(plexus_mplex::MplexConfig::new(
                Default::default(),
                mux.clone(),
            )),
            Arc::new(plexus_yamux::YamuxConfig::new(Default::default(), mux)),
        ];
    }
    let witness = Arc::new(Witness::default());
    let ours = status(&schedule);
    let builder = if role == Role::Misbehaving {
        // It ignores every backoff: a plain host that redials at will.
        hc.limits.dial_backoff_initial = Duration::ZERO;
        None
    } else {
        let b = PeerManagerBuilder::with_gater(
            pm_config(plan),
            Arc::new(move || ours),
            Some(witness.clone() as Arc<dyn ConnectionGater>),
        )
        .map_err(|e| fail("peer manager", e.to_string()))?;
        hc.gater = Some(b.gater());
        hc.dial_ranker = Some(b.ranker());
        Some(b)
    };
    let host = Host::new(hc)
        .await
        .map_err(|e| fail("host", e.to_string()))?;
    let epoch_now = Arc::new(|| 0u64);
    let mut rr_cfg = ReqRespConfig::new(&schedule, epoch_now);
    rr_cfg.first_chunk_timeout = plan.slot * 4;
    let chain: Arc<dyn Responder> = Arc::new(Chain {
        store: store.clone(),
        junk: role == Role::Misbehaving,
    });
    let responder = match &builder {
        Some(b) => b.responder(chain),
        None => {
            // Answers Status so the honest side admits it (then it misbehaves).
            Arc::new(plexus_peer_manager_status_only(chain, ours)) as Arc<dyn Responder>
        }
    };
    // MetaData advertises the node's attestation subnet, so peer managers keep (and
    // prefer) peers that cover the subnets they need.
    let adv = advertised(idx);
    let mut attnets = BitVector::new();
    let _ = attnets.set(adv.attnets.trailing_zeros() as usize, true);
    let md = MetaDataV3 {
        seq_number: 1,
        attnets,
        syncnets: BitVector::new(),
        custody_group_count: adv.custody_group_count,
    };
    let rr = ReqResp::spawn(host.clone(), schedule.clone(), rr_cfg, responder, md)
        .map_err(|e| fail("req/resp", e.to_string()))?;
    let mut gcfg = EthGossipConfig::new(&schedule, None);
    gcfg.gossipsub.heartbeat_interval = (plan.slot / 4).max(Duration::from_millis(100));
    gcfg.gossipsub.heartbeat_initial_delay = Duration::from_millis(100);
    // A GRAFT that beats our Status handshake is refused with a short backoff.
    gcfg.gossipsub.unaccepted_prune_backoff = plan.slot / 2;
    if role == Role::Misbehaving {
        gcfg.gossipsub.accept_by_default = true;
    }
    let (gossip, events) = EthGossip::spawn(host.clone(), schedule.clone(), gcfg, 0, None, None)
        .map_err(|e| fail("gossip", e.to_string()))?;
    gossip
        .set_kinds(kinds_of(idx))
        .await
        .map_err(|e| fail("gossip", e.to_string()))?;
    let identify = plexus_identify::IdentifyService::spawn(host.clone(), Default::default())
        .map_err(|e| fail("identify", e.to_string()))?;
    let pm = match builder {
        Some(b) => {
            let h = b
                .with_identify(identify.events())
                .start(host.clone(), rr.clone(), Some(gossip.gossipsub().clone()))
                .map_err(|e| fail("peer manager", e.to_string()))?;
            h.set_fork_digests(vec![schedule.digest_at(0)]);
            h.set_needs(plexus_peer_manager::SubnetNeeds {
                attnets: adv.attnets,
                ..Default::default()
            });
            Some(h)
        }
        None => None,
    };
    tokio::spawn(receive(
        idx,
        role,
        events,
        gossip.clone(),
        pm.clone(),
        store.clone(),
        shared.clone(),
    ));
    Ok(Node {
        idx,
        role,
        ip,
        host,
        gossip,
        rr,
        pm,
        witness,
        store,
        schedule,
        _identify: identify,
    })
}

/// A responder for the node without a peer manager: answers Status itself, the rest goes
/// to `inner`.
fn plexus_peer_manager_status_only(inner: Arc<dyn Responder>, ours: StatusV2) -> StatusOnly {
    StatusOnly { inner, ours }
}

struct StatusOnly {
    inner: Arc<dyn Responder>,
    ours: StatusV2,
}

impl Responder for StatusOnly {
    fn protocols(&self) -> Vec<Protocol> {
        let mut p = self.inner.protocols();
        p.extend([Protocol::StatusV1, Protocol::StatusV2]);
        p
    }

    fn respond<'a>(
        &'a self,
        peer: PeerId,
        request: Request,
        sink: &'a mut ResponseSink,
    ) -> BoxFut<'a, Result<(), RespondError>> {
        match status_answer(&request, self.ours) {
            Some(ssz) => Box::pin(async move {
                sink.send(&ssz, 0)
                    .await
                    .map_err(|e| RespondError::ServerError(e.to_string()))
            }),
            None => self.inner.respond(peer, request, sink),
        }
    }
}

/// A node's receive loop: check each message, report the verdict, record deliveries.
async fn receive(
    idx: usize,
    role: Role,
    mut events: mpsc::Receiver<EthGossipEvent>,
    gossip: EthGossip,
    pm: Option<PeerManagerHandle>,
    store: Store,
    shared: Arc<Shared>,
) {
    while let Some(ev) = events.recv().await {
        match ev {
            EthGossipEvent::Message {
                id,
                source,
                topic,
                payload,
            } => match parse(&payload) {
                Some(p) => {
                    let _ = gossip.report(id, Acceptance::Accept).await;
                    if topic.topic.kind == GossipKind::BeaconBlock {
                        lock(&store).insert(p.slot, payload);
                    }
                    if role.honest() {
                        let now_us = shared.start.elapsed().as_micros() as u64;
                        lock(&shared.deliveries).push(Delivery {
                            node: idx,
                            nonce: p.nonce,
                            latency_ms: now_us.saturating_sub(p.at_us) as f64 / 1000.0,
                        });
                    }
                }
                None => {
                    let _ = gossip.report(id, Acceptance::Reject).await;
                    if let Some(pm) = &pm {
                        pm.report(source, PeerAction::LowToleranceError, ReportSource::Client);
                    }
                }
            },
            EthGossipEvent::Refused { source, .. } => {
                if let Some(pm) = &pm {
                    pm.report(
                        source,
                        PeerAction::LowToleranceError,
                        ReportSource::Gossipsub,
                    );
                }
            }
            EthGossipEvent::Gossipsub(GossipEvent::StreamFault(f)) => {
                if let Some(pm) = &pm {
                    pm.report_blame(f.peer, f.blame, ReportSource::Gossipsub);
                }
            }
            _ => {}
        }
    }
}

/// Process CPU seconds and peak RSS (MiB), from /proc (Linux; zeros elsewhere).
fn process_usage() -> (f64, f64) {
    let cpu = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start at ')'.
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            // USER_HZ is 100 on every Linux platform Rust targets.
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0);
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
            Some(kb / 1024.0)
        })
        .unwrap_or(0.0);
    (cpu, rss)
}

/// Sync by range: ask accepted peers for blocks `[0, upto)` until one answers with all
/// it has; returns (requests, served, blocks stored, latencies ms).
async fn sync(node: &Node, upto: u64, rr_lat: &mut Vec<f64>) -> (u64, u64, u64) {
    let Some(pm) = &node.pm else {
        return (0, 0, 0);
    };
    let (mut requests, mut served, mut blocks) = (0, 0, 0);
    for _ in 0..20 {
        let peers: Vec<PeerId> = pm
            .peers()
            .await
            .into_iter()
            .filter(|(_, p)| p.is_accepted())
            .map(|(id, _)| id)
            .collect();
        for peer in peers.into_iter().take(3) {
            requests += 1;
            let t = Instant::now();
            let req = Request::BeaconBlocksByRangeV2(BeaconBlocksByRangeRequest {
                start_slot: 0,
                count: upto.max(1),
                step: 1,
            });
            let Ok(mut st) = node.rr.request(peer, req).await else {
                continue;
            };
            let mut got = Vec::new();
            let mut good = true;
            while let Some(chunk) = st.next().await {
                match chunk {
                    Ok(c) => got.push(c.ssz.to_vec()),
                    Err(e) => {
                        pm.report_blame(peer, e.blame(), ReportSource::ReqResp);
                        good = false;
                        break;
                    }
                }
            }
            // Check every block like gossip: a bad one costs the peer.
            let mut valid = Vec::new();
            for b in got {
                match parse(&b) {
                    Some(p) if p.slot < upto => valid.push((p.slot, b)),
                    _ => {
                        pm.report(peer, PeerAction::LowToleranceError, ReportSource::Client);
                        good = false;
                    }
                }
            }
            if good {
                served += 1;
                rr_lat.push(t.elapsed().as_secs_f64() * 1000.0);
                blocks += valid.len() as u64;
                let mut s = lock(&node.store);
                for (slot, b) in valid {
                    s.insert(slot, b);
                }
                return (requests, served, blocks);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (requests, served, blocks)
}

/// Run the devnet.
pub(crate) async fn run(args: &DevnetArgs, out: Out) -> Result<(), Failure> {
    let n = (args.nodes as usize).max(2);
    check_ip(args.ip, n)?;
    let mut bootstrap = args.bootstrap.clone();
    if let Some(path) = &args.bootstrap_file {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
        for (i, line) in text.lines().map(str::trim).enumerate() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let a: Multiaddr = line.parse().map_err(|e| {
                Failure::Usage(format!("{} line {}: {line:?}: {e}", path.display(), i + 1))
            })?;
            bootstrap.push(a);
        }
    }
    let events_on = n >= 8;
    // Peers a node can have: the process's other nodes and the other processes' nodes.
    let outside_peers = bootstrap
        .iter()
        .filter_map(|a| a.peer_id())
        .collect::<HashSet<_>>()
        .len();
    let plan = Plan {
        ip: args.ip,
        slots: args.slots.max(4),
        slot: Duration::from_millis(args.slot_ms.max(100)),
        late: (events_on && !args.no_late_joiner).then_some(n - 1),
        bad: (events_on && !args.no_misbehaving).then_some(n - 2),
        wrong: (events_on && !args.no_wrong_fork).then_some(n - 3),
        rejoin: (events_on && !args.no_rejoin).then_some(n - 4),
        late_at: args.slots.max(4) / 2,
        leave_at: args.slots.max(4) / 3,
        back_at: args.slots.max(4) / 3 + 2,
        // Not above what exists: a target the nodes cannot reach keeps every peer manager
        // dialing. With other processes it counts their nodes too, or each node would
        // fill its slots by lot among twice as many candidates and could end up with no
        // peer of its own process on a topic (docs/devnet.md, several processes).
        target: (n - 1 + outside_peers).min(args.target_peers.max(2)),
    };
    let role_of = |i: usize| {
        if Some(i) == plan.late {
            Role::LateJoiner
        } else if Some(i) == plan.bad {
            Role::Misbehaving
        } else if Some(i) == plan.wrong {
            Role::WrongFork
        } else if Some(i) == plan.rejoin {
            Role::Rejoiner
        } else {
            Role::Honest
        }
    };
    let chain = schedule([7; 32])?;
    let other_chain = schedule([8; 32])?;
    // Nonces carry random high bits, so messages of another process (--bootstrap) never
    // pass for ours, whatever the seeds.
    let salt = {
        use std::hash::{BuildHasher, Hasher};
        std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish()
    };
    let shared = Arc::new(Shared {
        start: Instant::now(),
        deliveries: Mutex::new(Vec::new()),
        nonce: AtomicU64::new(1 | salt << 32),
        own: Mutex::new(HashSet::new()),
    });
    let tty = !out.json && std::io::stdout().is_terminal();
    let say = |name: &str, fields: serde_json::Value, line: String| {
        out.event(name, fields, Some(line));
    };
    say(
        "devnet_start",
        json!({"nodes": n, "slots": plan.slots, "slot_ms": plan.slot.as_millis() as u64, "seed": args.seed}),
        format!(
            "devnet: starting {n} nodes ({} slots of {} ms, seed {})",
            plan.slots,
            plan.slot.as_millis(),
            args.seed
        ),
    );

    // Start every node but the late joiner.
    let mut nodes: Vec<Option<Node>> = Vec::new();
    let mut keys = Vec::new();
    for i in 0..n {
        let key = Keypair::generate_secp256k1();
        keys.push(key.clone());
        if Some(i) == plan.late {
            nodes.push(None);
            continue;
        }
        let role = role_of(i);
        let sched = if role == Role::WrongFork {
            other_chain.clone()
        } else {
            chain.clone()
        };
        let node = start_node(i, role, key, &plan, sched, &shared, Store::default()).await?;
        nodes.push(Some(node));
    }
    let mut registry = prometheus_client::registry::Registry::default();
    for node in nodes.iter().flatten() {
        let sub = registry.sub_registry_with_label((
            std::borrow::Cow::Borrowed("node"),
            std::borrow::Cow::Owned(node.idx.to_string()),
        ));
        node.host.metrics().register(sub);
        if let Some(pm) = &node.pm {
            pm.metrics().register(sub);
        }
    }
    if let Some(addr) = args.metrics {
        let bound = crate::metrics::serve(addr, Arc::new(registry))
            .await
            .map_err(|e| Failure::Usage(format!("cannot serve metrics on {addr}: {e}")))?;
        say(
            "metrics",
            json!({"addr": bound.to_string()}),
            format!("devnet: metrics on http://{bound}/"),
        );
    }
    if let Some(path) = &args.addrs_out {
        write_addrs(path, nodes.iter().flatten())?;
        say(
            "addrs_written",
            json!({"file": path.display().to_string()}),
            format!("devnet: node addresses written to {}", path.display()),
        );
    }
    // Everyone knows everyone (discovery stands in), plus the bootstrap addresses.
    let all: Vec<(PeerId, Vec<Multiaddr>)> = nodes
        .iter()
        .flatten()
        .map(|nd| (nd.id(), nd.addrs()))
        .collect();
    // What discovery would advertise for each node (its ENR's attnets and cgc).
    let subnets_of: HashMap<PeerId, Advertised> = nodes
        .iter()
        .flatten()
        .map(|nd| (nd.id(), advertised(nd.idx)))
        .collect();
    let external: Vec<(PeerId, Vec<Multiaddr>)> = bootstrap
        .iter()
        .filter_map(|a| Some((a.peer_id()?, vec![a.clone()])))
        .collect();
    for node in nodes.iter().flatten() {
        if let Some(pm) = &node.pm {
            for (id, addrs) in all.iter().chain(&external) {
                if *id != node.id() {
                    introduce(pm, *id, addrs, &subnets_of);
                }
            }
        }
    }
    // The misbehaving node dials a few honest nodes itself.
    if let Some(b) = plan.bad.and_then(|i| nodes[i].as_ref()) {
        for (id, addrs) in all.iter().take(4) {
            if *id != b.id() {
                let _ = b.host.connect(addrs.clone()).await;
            }
        }
    }

    // Warm up: meshes on the block topic at every honest node.
    let warm = Instant::now();
    let block_topic =
        plexus_eth::GossipTopic::new(chain.digest_at(0), GossipKind::BeaconBlock).to_string();
    // Topics followed by at least two nodes that gossip honestly from the start: only
    // those can have a mesh.
    let mut followers: HashMap<String, usize> = HashMap::new();
    for node in nodes.iter().flatten().filter(|nd| nd.role.honest()) {
        for k in kinds_of(node.idx) {
            *followers
                .entry(plexus_eth::GossipTopic::new(chain.digest_at(0), k).to_string())
                .or_default() += 1;
        }
    }
    let names: HashMap<PeerId, String> = nodes
        .iter()
        .flatten()
        .map(|nd| (nd.id(), format!("node-{} ({})", nd.idx, nd.id())))
        .collect();
    let name_of = |p: &PeerId| names.get(p).cloned().unwrap_or_else(|| p.to_string());
    let mut stable = 0;
    loop {
        let mut ready = 0usize;
        let mut honest = 0usize;
        // Honest nodes with an empty mesh on a topic another honest node follows.
        let mut lonely: Vec<String> = Vec::new();
        // Every mesh edge between honest nodes, as (holder, topic, member).
        let mut edges: HashSet<(PeerId, String, PeerId)> = HashSet::new();
        let mut honest_ids: HashSet<PeerId> = HashSet::new();
        for node in nodes.iter().flatten().filter(|nd| nd.role.honest()) {
            honest += 1;
            honest_ids.insert(node.id());
            // Every topic it shares with another honest node has a mesh.
            if let Ok(s) = node.gossip.gossipsub().snapshot().await {
                for (t, p) in &s.mesh {
                    for m in p {
                        edges.insert((node.id(), t.as_str().to_owned(), *m));
                    }
                }
                let empty: Vec<&str> = s
                    .mesh
                    .iter()
                    .filter(|(t, p)| {
                        followers.get(t.as_str()).copied().unwrap_or(0) >= 2 && p.is_empty()
                    })
                    .map(|(t, _)| t.as_str())
                    .collect();
                if empty.is_empty() {
                    ready += 1;
                } else {
                    lonely.push(format!("node-{}: {}", node.idx, empty.join(" ")));
                }
            }
        }
        // And the meshes agree: a GRAFT still being answered (refused because it beat a
        // Status handshake) shows as an edge one way only.
        let one_way: Vec<String> = edges
            .iter()
            .filter(|(_, _, m)| honest_ids.contains(m))
            .filter(|(a, t, b)| !edges.contains(&(*b, t.clone(), *a)))
            .map(|(a, t, b)| format!("{} -> {} on {t}", name_of(a), name_of(b)))
            .collect();
        let mutual = one_way.is_empty();
        if !mutual {
            ready = ready.saturating_sub(1);
        }
        // Ready three samples in a row.
        stable = if ready == honest { stable + 1 } else { 0 };
        if stable >= 3 || warm.elapsed() > Duration::from_secs(20) {
            say(
                "warm",
                json!({
                    "ready": ready,
                    "honest": honest,
                    "mutual": mutual,
                    "one_way": one_way,
                    "empty_meshes": lonely,
                    "seconds": warm.elapsed().as_secs_f64(),
                }),
                format!(
                    "devnet: meshes formed at {ready}/{honest} honest nodes in {:.1} s",
                    warm.elapsed().as_secs_f64()
                ),
            );
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let mut rng = Rng(args.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let published: Arc<Mutex<HashMap<u64, Published>>> = Arc::default();
    let mut rr_lat = Vec::new();
    let mut rr = ReqRespReport::default();
    let mut slot_reports = Vec::new();
    let mut events: Vec<EventReport> = Vec::new();
    let mut block_slots: HashSet<u64> = HashSet::new();
    let progress = tty.then(|| {
        let pb = indicatif::ProgressBar::new(plan.slots);
        pb.set_style(
            indicatif::ProgressStyle::with_template("{bar:30} slot {pos}/{len} {msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        pb
    });
    let run_start = Instant::now();
    let mut rejoin_store: Option<Store> = None;
    for slot in 0..plan.slots {
        let slot_start = run_start + plan.slot * slot as u32;
        tokio::time::sleep_until(slot_start.into()).await;
        let present = |_i: usize, role: Role| -> bool {
            match role {
                Role::LateJoiner => slot > plan.late_at,
                Role::Rejoiner => slot < plan.leave_at || slot > plan.back_at,
                Role::Honest => true,
                _ => false,
            }
        };
        // Scripted events at the start of the slot.
        if Some(slot) == Some(plan.late_at)
            && let Some(i) = plan.late
        {
            let node = start_node(
                i,
                Role::LateJoiner,
                keys[i].clone(),
                &plan,
                chain.clone(),
                &shared,
                Store::default(),
            )
            .await?;
            if let Some(pm) = &node.pm {
                for (id, addrs) in &all {
                    introduce(pm, *id, addrs, &subnets_of);
                }
            }
            nodes[i] = Some(node);
        }
        if slot == plan.leave_at
            && let Some(i) = plan.rejoin
            && let Some(node) = nodes[i].take()
        {
            for p in node.host.connected_peers() {
                let _ = tokio::time::timeout(
                    Duration::from_millis(500),
                    node.rr.goodbye(p, GoodbyeReason::ClientShutdown),
                )
                .await;
            }
            node.host.shutdown().await;
            rejoin_store = Some(node.store.clone());
            say(
                "leave",
                json!({"node": i, "slot": slot}),
                format!("devnet: node-{i} leaves at slot {slot}"),
            );
        }
        if slot == plan.back_at
            && let Some(i) = plan.rejoin
        {
            let store = rejoin_store.take().unwrap_or_default();
            let node = start_node(
                i,
                Role::Rejoiner,
                keys[i].clone(),
                &plan,
                chain.clone(),
                &shared,
                store,
            )
            .await?;
            if let Some(pm) = &node.pm {
                for (id, addrs) in &all {
                    if *id != node.id() {
                        introduce(pm, *id, addrs, &subnets_of);
                    }
                }
            }
            nodes[i] = Some(node);
            say(
                "rejoin",
                json!({"node": i, "slot": slot}),
                format!("devnet: node-{i} comes back at slot {slot}"),
            );
        }

        // Who follows which topic, for the expected deliveries.
        let subs: Vec<(usize, Role, Vec<GossipKind>)> = nodes
            .iter()
            .flatten()
            .map(|nd| (nd.idx, nd.role, kinds_of(nd.idx)))
            .collect();
        let honest_ids: Vec<usize> = subs
            .iter()
            .filter(|(i, r, _)| present(*i, *r))
            .map(|(i, ..)| *i)
            .collect();
        let publish = |from: usize, kind: GossipKind, len: usize, corrupt: bool, rng: &mut Rng| {
            let nonce = shared.nonce.fetch_add(1, Ordering::Relaxed);
            let at = shared.start.elapsed().as_micros() as u64;
            let p = payload(
                len,
                slot,
                from as u64,
                at,
                nonce ^ (rng.next() << 32),
                corrupt,
            );
            let nonce = u64_at(&p, 20);
            lock(&shared.own).insert(nonce);
            // The first slot is a warm-up: its traffic flows but is not accounted.
            if !corrupt && slot >= WARMUP_SLOTS {
                let expected = subs
                    .iter()
                    .filter(|(i, r, k)| *i != from && present(*i, *r) && k.contains(&kind))
                    .map(|(i, ..)| *i)
                    .collect();
                lock(&published).insert(
                    nonce,
                    Published {
                        kind: kind_name(kind),
                        slot,
                        expected,
                    },
                );
            }
            (kind, p)
        };
        // The proposer: a block of 50–500 KiB (most small) and its column sidecars.
        let proposer = honest_ids[(slot as usize) % honest_ids.len().max(1)];
        let u = rng.unit();
        let block_len = (50.0 + 450.0 * u * u) as usize * 1024;
        let block = publish(
            proposer,
            GossipKind::BeaconBlock,
            block_len,
            false,
            &mut rng,
        );
        // The proposer keeps its own block (it serves it by range like any other).
        if let Some(node) = nodes[proposer].as_ref() {
            lock(&node.store).insert(slot, block.1.clone());
        }
        let mut batch = vec![(proposer, block)];
        block_slots.insert(slot);
        for c in 0..COLUMNS {
            batch.push((
                proposer,
                publish(
                    proposer,
                    GossipKind::DataColumnSidecar(c),
                    24 * 1024,
                    false,
                    &mut rng,
                ),
            ));
        }
        send(&nodes, batch).await;
        tokio::time::sleep_until((slot_start + plan.slot / 3).into()).await;
        // Attestations and sync committee messages from everyone present.
        let mut batch = Vec::new();
        for &i in &honest_ids {
            batch.push((
                i,
                publish(
                    i,
                    GossipKind::BeaconAttestation(i as u64 % ATT_SUBNETS),
                    240,
                    false,
                    &mut rng,
                ),
            ));
            batch.push((
                i,
                publish(i, GossipKind::SyncCommittee(0), 144, false, &mut rng),
            ));
        }
        // The misbehaving node: a burst of invalid attestations on its subnet.
        if let Some(b) = plan.bad {
            for _ in 0..6 {
                batch.push((
                    b,
                    publish(
                        b,
                        GossipKind::BeaconAttestation(b as u64 % ATT_SUBNETS),
                        240,
                        true,
                        &mut rng,
                    ),
                ));
            }
        }
        send(&nodes, batch).await;
        tokio::time::sleep_until((slot_start + plan.slot * 2 / 3).into()).await;
        // One aggregate per attestation subnet.
        let mut batch = Vec::new();
        for s in 0..ATT_SUBNETS {
            if let Some(&i) = honest_ids.iter().find(|&&i| i as u64 % ATT_SUBNETS == s) {
                batch.push((
                    i,
                    publish(i, GossipKind::BeaconAggregateAndProof, 440, false, &mut rng),
                ));
            }
        }
        send(&nodes, batch).await;
        // The misbehaving node keeps trying to reconnect to everyone.
        if let Some(b) = plan.bad.and_then(|i| nodes[i].as_ref()) {
            for (id, addrs) in &all {
                if *id != b.id() && b.host.connection(id).is_none() {
                    let _ =
                        tokio::time::timeout(plan.slot / 8, b.host.connect(addrs.clone())).await;
                }
            }
        }
        // Sync the late joiner and the rejoiner once they are in.
        for (who, at) in [(plan.late, plan.late_at), (plan.rejoin, plan.back_at)] {
            if let Some(i) = who
                && slot == at
                && let Some(node) = nodes[i].as_ref()
            {
                let (q, s, b) = sync(node, slot, &mut rr_lat).await;
                rr.requests += q;
                rr.served += s;
                rr.blocks += b;
            }
        }
        tokio::time::sleep_until((slot_start + plan.slot).into()).await;
        // The slot's figures.
        let (share_ok, p99, count) = {
            let pubs = lock(&published);
            let dels = lock(&shared.deliveries);
            let mut lat = Vec::new();
            let mut got = 0u64;
            let mut want = 0u64;
            for (_, p) in pubs.iter().filter(|(_, p)| p.slot == slot) {
                want += p.expected.len() as u64;
            }
            let this: HashSet<u64> = pubs
                .iter()
                .filter(|(_, p)| p.slot == slot)
                .map(|(k, _)| *k)
                .collect();
            for d in dels.iter().filter(|d| this.contains(&d.nonce)) {
                if pubs[&d.nonce].expected.contains(&d.node) {
                    got += 1;
                }
                lat.push(d.latency_ms);
            }
            lat.sort_by(f64::total_cmp);
            (share(got, want), percentile(&lat, 0.99), lat.len())
        };
        let honest_nodes: Vec<&Node> = nodes
            .iter()
            .flatten()
            .filter(|nd| nd.role.honest())
            .collect();
        let mut peers_sum = 0usize;
        let mut mesh_sum = 0usize;
        for nd in &honest_nodes {
            peers_sum += nd.host.connected_peers().len();
            if let Ok(s) = nd.gossip.gossipsub().snapshot().await {
                mesh_sum += s
                    .mesh
                    .iter()
                    .find(|(t, _)| t.as_str() == block_topic)
                    .map_or(0, |(_, p)| p.len());
            }
        }
        // PLEXUS_DEVNET_DEBUG=1: each honest node's peers and meshes at every slot's end.
        if std::env::var_os("PLEXUS_DEVNET_DEBUG").is_some() {
            let idx_of: HashMap<PeerId, usize> =
                nodes.iter().flatten().map(|nd| (nd.id(), nd.idx)).collect();
            for nd in &honest_nodes {
                let peers: Vec<usize> = nd
                    .host
                    .connected_peers()
                    .iter()
                    .filter_map(|p| idx_of.get(p).copied())
                    .collect();
                let snap = nd.gossip.gossipsub().snapshot().await.ok();
                let meshes: Vec<String> = snap
                    .iter()
                    .flat_map(|s| s.mesh.iter())
                    .map(|(t, ps)| {
                        let name = nd
                            .schedule
                            .resolve_topic(t.as_str())
                            .map(|r| r.topic.kind.to_string())
                            .unwrap_or_default();
                        format!(
                            "{name}:{:?}",
                            ps.iter()
                                .filter_map(|p| idx_of.get(p).copied())
                                .collect::<Vec<_>>()
                        )
                    })
                    .collect();
                let gs = snap.as_ref().map(|s| {
                    (
                        s.peers,
                        s.stats.graft_in_backoff,
                        s.stats.graft_not_accepted,
                        s.stats.subscriptions_refused,
                        s.stats.unsubscribed_topic,
                        s.stats.queue_drops,
                    )
                });
                eprintln!(
                    "slot {slot} node-{} peers {peers:?} gossip(peers,gib,gna,subref,unsub) {gs:?} meshes {}",
                    nd.idx,
                    meshes.join(" ")
                );
            }
        }
        let k = honest_nodes.len().max(1) as f64;
        let sr = SlotReport {
            slot,
            delivered_share: share_ok,
            p99_ms: p99,
            messages_per_s: count as f64 / plan.slot.as_secs_f64(),
            mean_peers: peers_sum as f64 / k,
            mean_mesh: mesh_sum as f64 / k,
        };
        let line = format!(
            "peers {:.1}  mesh {:.1}  {:.0} msg/s  p99 {:.1} ms  delivered {:.1}%",
            sr.mean_peers,
            sr.mean_mesh,
            sr.messages_per_s,
            sr.p99_ms,
            100.0 * sr.delivered_share
        );
        match &progress {
            Some(pb) => {
                pb.set_position(slot + 1);
                pb.set_message(line);
            }
            None => say(
                "slot",
                json!({"slot": slot, "mean_peers": sr.mean_peers, "mean_mesh": sr.mean_mesh,
                       "messages_per_s": sr.messages_per_s, "p99_ms": sr.p99_ms,
                       "delivered_share": sr.delivered_share}),
                format!("slot {:>3}/{}  {line}", slot + 1, plan.slots),
            ),
        }
        // Warm-up slots expect nothing: their 0 of 0 is not a loss, so the report and
        // its plots start at the first accounted slot.
        if slot >= WARMUP_SLOTS {
            slot_reports.push(sr);
        }
    }
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    // A last slot of quiet for stragglers.
    tokio::time::sleep(plan.slot).await;

    // Per topic.
    let mut topics = Vec::new();
    let mut all_delivered = true;
    let mut missing: Vec<String> = Vec::new();
    {
        let pubs = lock(&published);
        let dels = lock(&shared.deliveries);
        for name in KIND_NAMES {
            let mine: HashMap<u64, &Published> = pubs
                .iter()
                .filter(|(_, p)| p.kind == name)
                .map(|(k, p)| (*k, p))
                .collect();
            let expected: u64 = mine.values().map(|p| p.expected.len() as u64).sum();
            let mut lat = Vec::new();
            let mut delivered = 0u64;
            for d in dels.iter() {
                if let Some(p) = mine.get(&d.nonce) {
                    lat.push(d.latency_ms);
                    if p.expected.contains(&d.node) {
                        delivered += 1;
                    }
                }
            }
            all_delivered &= delivered == expected;
            if delivered < expected {
                let got: HashSet<(u64, usize)> = dels
                    .iter()
                    .filter(|d| mine.contains_key(&d.nonce))
                    .map(|d| (d.nonce, d.node))
                    .collect();
                for (k, p) in &mine {
                    for r in &p.expected {
                        if !got.contains(&(*k, *r)) && missing.len() < 20 {
                            missing.push(format!("node-{r} missed a {name} of slot {}", p.slot));
                        }
                    }
                }
            }
            lat.sort_by(f64::total_cmp);
            let cdf = (0..=40)
                .map(|i| {
                    let ms = if lat.is_empty() {
                        0.0
                    } else {
                        lat[lat.len() - 1] * f64::from(i) / 40.0
                    };
                    (ms, lat.partition_point(|x| *x <= ms) as u64)
                })
                .collect();
            topics.push(TopicReport {
                name: name.to_owned(),
                published: mine.len() as u64,
                expected,
                delivered,
                p50_ms: percentile(&lat, 0.5),
                p95_ms: percentile(&lat, 0.95),
                p99_ms: percentile(&lat, 0.99),
                duplicates_per_message: 0.0,
                cdf,
            });
        }
    }
    // Duplicates, from each honest node's router counters.
    let mut dups: HashMap<&'static str, (u64, u64)> = HashMap::new();
    for nd in nodes.iter().flatten().filter(|nd| nd.role.honest()) {
        if let Ok(s) = nd.gossip.gossipsub().snapshot().await {
            for (t, st) in &s.topics {
                if let Ok(r) = nd.schedule.resolve_topic(t.as_str()) {
                    let e = dups.entry(kind_name(r.topic.kind)).or_default();
                    e.0 += st.duplicates;
                    e.1 += st.delivered.max(st.received.saturating_sub(st.duplicates));
                }
            }
        }
    }
    for t in &mut topics {
        if let Some((d, m)) = dups.get(t.name.as_str()) {
            t.duplicates_per_message = share(*d, *m);
        }
    }

    // Peer managers.
    let mut pmr = PeerManagerReport::default();
    let mut sent: BTreeMap<String, u64> = BTreeMap::new();
    let mut recv: BTreeMap<String, u64> = BTreeMap::new();
    let mut refusals: BTreeMap<(String, String), u64> = BTreeMap::new();
    for nd in nodes.iter().flatten() {
        let Some(pm) = &nd.pm else { continue };
        let m = pm.metrics();
        for r in [
            GoodbyeReason::ClientShutdown,
            GoodbyeReason::IrrelevantNetwork,
            GoodbyeReason::Fault,
            GoodbyeReason::UnableToVerifyNetwork,
            GoodbyeReason::TooManyPeers,
            GoodbyeReason::BadScore,
            GoodbyeReason::Banned,
        ] {
            let l = plexus_peer_manager::reason_label(r).to_owned();
            *sent.entry(l.clone()).or_default() += m.goodbyes_sent(r);
            *recv.entry(l).or_default() += m.goodbyes_received(r);
        }
        pmr.bans += m.bans();
        pmr.reconnects_refused += m.reconnects_refused();
        for (r, c) in [
            ("ip_backoff", "accept"),
            ("full", "accept"),
            ("peer_backoff", "secured"),
            ("full", "secured"),
            ("peer_backoff", "peer_dial"),
            ("peer_backoff", "rank"),
        ] {
            *refusals.entry((r.into(), c.into())).or_default() += m.refusals(r, c);
        }
    }
    pmr.goodbyes_sent = sent.into_iter().filter(|(_, n)| *n > 0).collect();
    pmr.goodbyes_received = recv.into_iter().filter(|(_, n)| *n > 0).collect();
    pmr.refusals = refusals
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .map(|((r, c), n)| (r, c, n))
        .collect();

    // The scripted events.
    if let Some(i) = plan.late {
        let synced = nodes[i].as_ref().is_some_and(|nd| {
            let s = lock(&nd.store);
            (0..plan.late_at).all(|sl| !block_slots.contains(&sl) || s.contains_key(&sl))
        });
        events.push(EventReport {
            name: "late_joiner".into(),
            outcome: format!(
                "node-{i} joined at slot {}, synced slots 0..{} by range: {}",
                plan.late_at,
                plan.late_at,
                if synced {
                    "all blocks"
                } else {
                    "missing blocks"
                }
            ),
            ok: synced,
        });
    }
    if let Some(b) = plan.bad
        && let Some(bad) = nodes[b].as_ref()
    {
        let bad_ip = IpAddr::V4(bad.ip);
        let mut banned_by = 0;
        let mut after = 0u64;
        for nd in nodes.iter().flatten().filter(|nd| nd.role.honest()) {
            let Some(pm) = &nd.pm else { continue };
            let entry = pm.peers().await.into_iter().find(|(p, _)| *p == bad.id());
            if let Some((_, info)) = entry
                && let Some(until) = info.ban_until
            {
                banned_by += 1;
                // The ban started `ban_duration` before it ends.
                let ban_start = until.checked_sub(pm_config(&plan).ban_duration);
                after += lock(&nd.witness.accepts)
                    .iter()
                    .filter(|(ip, t)| *ip == bad_ip && ban_start.is_some_and(|s| *t >= s))
                    .count() as u64;
            }
        }
        pmr.handshakes_after_ban = after;
        let ok = banned_by > 0 && after == 0;
        events.push(EventReport {
            name: "misbehaving".into(),
            outcome: format!(
                "node-{b} sent invalid attestations and junk blocks: banned by {banned_by} nodes, {after} handshakes started for it after a ban, {} reconnects refused",
                pmr.reconnects_refused
            ),
            ok,
        });
    }
    if let Some(w) = plan.wrong
        && let Some(wrong) = nodes[w].as_ref()
    {
        let mut in_mesh = 0;
        let mut goodbyes = 0;
        for nd in nodes.iter().flatten().filter(|nd| nd.role.honest()) {
            if let Ok(s) = nd.gossip.gossipsub().snapshot().await {
                in_mesh += s
                    .mesh
                    .iter()
                    .filter(|(_, p)| p.contains(&wrong.id()))
                    .count();
            }
            if let Some(pm) = &nd.pm {
                goodbyes += pm.metrics().goodbyes_sent(GoodbyeReason::IrrelevantNetwork)
                    + pm.metrics()
                        .goodbyes_received(GoodbyeReason::IrrelevantNetwork);
            }
        }
        events.push(EventReport {
            name: "wrong_fork".into(),
            outcome: format!(
                "node-{w} on another fork: {goodbyes} Goodbye(irrelevant network) exchanged, in {in_mesh} meshes"
            ),
            ok: goodbyes > 0 && in_mesh == 0,
        });
    }
    if let Some(r) = plan.rejoin {
        let (peers, synced) = match nodes[r].as_ref() {
            Some(nd) => {
                let s = lock(&nd.store);
                (
                    nd.host.connected_peers().len(),
                    (0..plan.back_at).all(|sl| !block_slots.contains(&sl) || s.contains_key(&sl)),
                )
            }
            None => (0, false),
        };
        events.push(EventReport {
            name: "leave_and_rejoin".into(),
            outcome: format!(
                "node-{r} left at slot {} with Goodbye(client shutdown), came back at slot {}: {peers} peers, {}",
                plan.leave_at,
                plan.back_at,
                if synced { "synced" } else { "missing blocks" }
            ),
            ok: peers > 0 && synced,
        });
    }
    if !missing.is_empty() {
        missing.sort();
        events.push(EventReport {
            name: "delivery".into(),
            outcome: format!("{} (first 20 listed)", missing.join("; ")),
            ok: false,
        });
    }
    rr_lat.sort_by(f64::total_cmp);
    rr.p50_ms = percentile(&rr_lat, 0.5);
    rr.p99_ms = percentile(&rr_lat, 0.99);

    let per_node = nodes
        .iter()
        .flatten()
        .map(|nd| NodeReport {
            name: format!("node-{}", nd.idx),
            role: nd.role.label().into(),
            bytes_sent: nd.host.metrics().stream_bytes_written(),
            bytes_received: nd.host.metrics().stream_bytes_read(),
            peers: nd.host.connected_peers().len(),
        })
        .collect();
    let ours: HashSet<PeerId> = keys.iter().map(|k| k.public().to_peer_id()).collect();
    let outside = CrossProcess {
        bootstrap: bootstrap.len(),
        peers: nodes
            .iter()
            .flatten()
            .map(|nd| {
                nd.host
                    .connected_peers()
                    .iter()
                    .filter(|p| !ours.contains(p))
                    .count() as u64
            })
            .sum(),
        messages: {
            let own = lock(&shared.own);
            lock(&shared.deliveries)
                .iter()
                .filter(|d| !own.contains(&d.nonce))
                .count() as u64
        },
    };
    let (cpu, rss) = process_usage();
    let report = Report {
        outside,
        nodes: n,
        slots: plan.slots,
        slot_ms: plan.slot.as_millis() as u64,
        seed: args.seed,
        duration_s: shared.start.elapsed().as_secs_f64(),
        ok: all_delivered && events.iter().all(|e| e.ok),
        topics,
        per_slot: slot_reports,
        per_node,
        cpu_seconds_per_node: cpu / n as f64,
        rss_mib_per_node: rss / n as f64,
        reqresp: rr,
        peer_manager: pmr,
        events,
    };
    for nd in nodes.iter().flatten() {
        nd.host.shutdown().await;
    }
    if out.json {
        out.event("report", report.to_json(), None);
    } else {
        print!("{}", report.to_text());
    }
    if let Some(dir) = &args.report {
        write_report(dir, &report)?;
        out.event(
            "report_written",
            json!({"dir": dir.display().to_string()}),
            Some(format!(
                "report written to {}/report.html and report.json",
                dir.display()
            )),
        );
    }
    if report.ok {
        Ok(())
    } else {
        Err(Failure::Check(
            "the devnet run did not deliver everything or an event went wrong (see the report)"
                .into(),
        ))
    }
}

/// Write each node's listen addresses with its `/p2p/` id, one per line, to `path`
/// (through a temporary file and a rename, so a reader never sees half of it).
fn write_addrs<'a>(path: &Path, nodes: impl Iterator<Item = &'a Node>) -> Result<(), Failure> {
    let mut text = String::new();
    for nd in nodes {
        for a in nd.addrs() {
            text.push_str(&a.with(Addr::P2p(nd.id())).to_string());
            text.push('\n');
        }
    }
    let io = |e: std::io::Error| Failure::Usage(format!("cannot write {}: {e}", path.display()));
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn write_report(dir: &PathBuf, report: &Report) -> Result<(), Failure> {
    let io = |e: std::io::Error| {
        Failure::Check(format!("cannot write the report to {}: {e}", dir.display()))
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let json = serde_json::to_string_pretty(&report.to_json())
        .map_err(|e| Failure::Check(format!("report json: {e}")))?;
    std::fs::write(dir.join("report.json"), json).map_err(io)?;
    std::fs::write(dir.join("report.html"), super::html::render(report)).map_err(io)?;
    Ok(())
}

/// Publish a batch concurrently, each from its node.
async fn send(nodes: &[Option<Node>], batch: Vec<(usize, (GossipKind, Vec<u8>))>) {
    let futs = batch.into_iter().filter_map(|(i, (kind, p))| {
        let node = nodes.get(i)?.as_ref()?;
        let g = node.gossip.clone();
        Some(async move {
            if let Err(e) = g.publish(kind, 0, &p).await {
                tracing::debug!(node = i, %kind, error = %e, "publish failed");
                if std::env::var_os("PLEXUS_DEVNET_DEBUG").is_some() {
                    eprintln!("node-{i}: publish {kind} failed: {e}");
                }
            }
        })
    });
    futures::future::join_all(futs).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_check_and_corruption_is_caught() {
        let p = payload(1000, 5, 3, 77, 9, false);
        let q = parse(&p).expect("valid");
        assert_eq!((q.slot, q.at_us, q.nonce), (5, 77, 9));
        assert_eq!(u64_at(&p, 4), 3, "the publisher");
        assert!(parse(&payload(1000, 5, 3, 77, 9, true)).is_none());
        let mut r = p.clone();
        r[500] ^= 1;
        assert!(parse(&r).is_none(), "a flipped body byte");
        assert!(parse(&p[..50]).is_none());
    }

    #[test]
    fn the_devnet_chain_has_fulu_at_genesis() {
        let (Ok(s), Ok(t)) = (schedule([7; 32]), schedule([8; 32])) else {
            panic!("the devnet chain config must parse");
        };
        assert_eq!(s.entry_at(0).fork, plexus_eth::Fork::Fulu);
        assert_ne!(s.digest_at(0), t.digest_at(0));
    }
}
