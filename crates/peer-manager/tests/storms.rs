//! The reconnect storms, on loopback with real hosts: each scenario counts handshakes,
//! refusals, Goodbyes and dials, with the peer manager and (where the issue asks for a
//! comparison) with a plain host. Every node listens and dials from its own loopback IP
//! (127.0.0.N), as peers on a real network would, so refusals by IP are per node.
//!
//! The `before/after` lines printed (`--nocapture`) are the numbers in
//! docs/peer-manager.md.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use futures::StreamExt;
use plexus_core::{BoxFut, Direction, PeerId};
use plexus_eth::ssz_types::BitVector;
use plexus_eth::{
    BeaconBlocksByRangeRequest, Fork, ForkDigest, ForkSchedule, GoodbyeReason, MetaDataV3, Network,
    StatusV2,
};
use plexus_gossipsub::{Config as GossipConfig, Gossipsub, GossipsubService, ServiceConfig};
use plexus_host::{Host, HostConfig, HostEvent};
use plexus_identity::Keypair;
use plexus_multiaddr::{Multiaddr, Protocol as Addr};
use plexus_peer_manager::service::{PeerManagerBuilder, PeerManagerHandle};
use plexus_peer_manager::{GoodbyeBackoffs, PeerManagerConfig, ReportSource};
use plexus_reqresp::{
    Protocol, ReqResp, ReqRespConfig, ReqRespHandle, Request, RespondError, Responder, ResponseSink,
};

/// Each node gets its own loopback address (127.0.0.10 and up; Linux routes all of
/// 127/8 to lo).
static NEXT_IP: AtomicU8 = AtomicU8::new(10);

fn next_ip() -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(
        127,
        0,
        0,
        NEXT_IP.fetch_add(1, Ordering::Relaxed),
    ))
}

fn schedule() -> Arc<ForkSchedule> {
    Arc::new(ForkSchedule::for_network(Network::Mainnet).expect("mainnet"))
}

fn deneb(s: &ForkSchedule) -> (ForkDigest, u64) {
    let e = s
        .entries()
        .iter()
        .find(|e| e.fork == Fork::Deneb)
        .expect("deneb");
    (e.digest, e.epoch)
}

fn status(digest: ForkDigest) -> StatusV2 {
    StatusV2::at_genesis(digest)
}

/// Fast timers, so a scenario takes seconds.
fn fast(target: usize) -> PeerManagerConfig {
    PeerManagerConfig {
        target_peers: target,
        min_outbound_factor: 0.0,
        heartbeat_interval: Duration::from_millis(100),
        status_wait: Duration::from_millis(200),
        ping_interval: Duration::from_secs(5),
        goodbye_backoff: GoodbyeBackoffs::all(Duration::from_secs(60)),
        reconnect_backoff: Duration::from_secs(60),
        goodbye_timeout: Duration::from_millis(500),
        ..PeerManagerConfig::default()
    }
}

/// Answers Status with `digest`; answers BlocksByRange with a block outside the range
/// when `bad`.
struct Chain {
    digest: ForkDigest,
    bad: bool,
}

impl Responder for Chain {
    fn protocols(&self) -> Vec<Protocol> {
        vec![
            Protocol::StatusV1,
            Protocol::StatusV2,
            Protocol::BeaconBlocksByRangeV2,
        ]
    }

    fn respond<'a>(
        &'a self,
        _: PeerId,
        request: Request,
        sink: &'a mut ResponseSink,
    ) -> BoxFut<'a, Result<(), RespondError>> {
        Box::pin(async move {
            match request {
                Request::StatusV2(_) => {
                    sink.send(&plexus_eth::encode_ssz(&status(self.digest)), 0)
                        .await
                        .map_err(|e| RespondError::ServerError(e.to_string()))?;
                }
                Request::BeaconBlocksByRangeV2(r) if self.bad => {
                    // A block far outside the range asked for.
                    let slot = r.start_slot + r.count + 1000;
                    let mut b = vec![0u8; 1_200];
                    b[0..4].copy_from_slice(&100u32.to_le_bytes());
                    b[100..108].copy_from_slice(&slot.to_le_bytes());
                    sink.send(&b, slot)
                        .await
                        .map_err(|e| RespondError::ServerError(e.to_string()))?;
                }
                _ => return Err(RespondError::ResourceUnavailable("no".into())),
            }
            Ok(())
        })
    }
}

struct Node {
    _identify: Option<plexus_identify::IdentifyHandle>,
    host: Host,
    rr: ReqRespHandle,
    pm: Option<PeerManagerHandle>,
    gossip: Option<Gossipsub>,
    /// Kept open (unread: the service drops events once its queue is full).
    _gossip_events: Option<tokio::sync::mpsc::Receiver<plexus_gossipsub::GossipEvent>>,
}

impl Node {
    fn addr(&self) -> Multiaddr {
        self.host.listen_addrs()[0]
            .clone()
            .with(Addr::P2p(self.host.peer_id()))
    }

    fn id(&self) -> PeerId {
        self.host.peer_id()
    }

    fn pm(&self) -> &PeerManagerHandle {
        self.pm.as_ref().expect("node has a peer manager")
    }
}

struct Opts {
    pm: Option<PeerManagerConfig>,
    digest: Option<ForkDigest>,
    bad: bool,
    gossip: bool,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            pm: Some(fast(10)),
            digest: None,
            bad: false,
            gossip: false,
        }
    }
}

async fn node(o: Opts) -> Node {
    let s = schedule();
    let (deneb_digest, deneb_epoch) = deneb(&s);
    let digest = o.digest.unwrap_or(deneb_digest);
    let ip = next_ip();
    let mut hc = HostConfig::new(Keypair::generate_ed25519());
    hc.listen = vec![format!("/ip4/{ip}/tcp/0").parse().unwrap()];
    hc.tcp.outbound_bind_ip = Some(ip);
    if o.pm.is_none() {
        // Without a peer manager it redials at will, as a misbehaving peer would.
        hc.limits.dial_backoff_initial = Duration::ZERO;
    }
    let chain: Arc<dyn Responder> = Arc::new(Chain { digest, bad: o.bad });
    let builder = o.pm.map(|cfg| {
        let b = PeerManagerBuilder::new(cfg, Arc::new(move || status(digest))).unwrap();
        hc.gater = Some(b.gater());
        hc.dial_ranker = Some(b.ranker());
        b
    });
    let host = Host::new(hc).await.unwrap();
    let epoch = deneb_epoch + 10;
    let mut rr_cfg = ReqRespConfig::new(&s, Arc::new(move || epoch));
    // Several requests at once (the spec's 2 would queue the rest), so a burst of junk
    // responses arrives on one connection.
    rr_cfg.max_concurrent_requests = 8;
    let responder = match &builder {
        Some(b) => b.responder(chain),
        None => chain,
    };
    let md = MetaDataV3 {
        seq_number: 1,
        attnets: BitVector::new(),
        syncnets: BitVector::new(),
        custody_group_count: 4,
    };
    let rr = ReqResp::spawn(host.clone(), s, rr_cfg, responder, md).unwrap();
    let (gossip, gossip_events) = if o.gossip {
        let cfg = GossipConfig {
            heartbeat_interval: Duration::from_millis(100),
            heartbeat_initial_delay: Duration::from_millis(50),
            mesh_n: 3,
            mesh_n_low: 2,
            mesh_n_high: 6,
            mesh_outbound_min: 0,
            mesh_outbound_min_score_kept: 1,
            gossip_lazy: 2,
            // Without a peer manager nothing would ever accept a peer: mesh with everyone,
            // as stacks without the hook do.
            accept_by_default: builder.is_none(),
            ..GossipConfig::default()
        };
        let (g, ev) =
            GossipsubService::spawn(host.clone(), cfg, ServiceConfig::default(), None).unwrap();
        g.subscribe("blocks").await.unwrap();
        (Some(g), Some(ev))
    } else {
        (None, None)
    };
    // Identify feeds the agent version to the peer manager (peer-managed nodes only).
    let identify = builder.as_ref().map(|_| {
        plexus_identify::IdentifyService::spawn(host.clone(), Default::default()).unwrap()
    });
    let pm = builder.map(|b| {
        let h = b
            .with_identify(
                identify
                    .as_ref()
                    .expect("spawned with the builder")
                    .events(),
            )
            .start(host.clone(), rr.clone(), gossip.clone())
            .unwrap();
        h.set_fork_digests(vec![digest]);
        h
    });
    Node {
        _identify: identify,
        host,
        rr,
        pm,
        gossip,
        _gossip_events: gossip_events,
    }
}

/// A bare host dialing from 127.0.0.1 that, like an attacker, ignores dial backoff.
async fn bare() -> Host {
    let mut hc = HostConfig::new(Keypair::generate_ed25519());
    hc.limits.dial_backoff_initial = Duration::ZERO;
    Host::new(hc).await.unwrap()
}

async fn eventually(what: &str, secs: u64, mut f: impl AsyncFnMut() -> bool) {
    let end = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < end {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for: {what}");
}

fn handshakes_in(h: &Host) -> u64 {
    h.metrics().handshakes_started(Direction::Inbound)
}

/// A responder that keeps answering with blocks outside the range: the victim's client
/// reports each error's blame to its peer manager. The peer is scored down, said goodbye
/// to and banned; its next 20 reconnects are refused at accept (no handshake started for
/// them); once the ban is over it may connect again. A plain host starts a handshake for
/// every reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_sending_bad_responses_is_banned_and_its_reconnects_cost_no_handshake() {
    let mut cfg = fast(10);
    // Long enough for the storm below on a loaded 2-core machine, short enough to wait out.
    cfg.ban_duration = Duration::from_secs(8);
    cfg.goodbye_backoff = GoodbyeBackoffs::all(Duration::from_secs(8));
    cfg.reconnect_backoff = Duration::from_secs(8);
    let victim = node(Opts {
        pm: Some(cfg),
        ..Opts::default()
    })
    .await;
    let bad = node(Opts {
        pm: None,
        bad: true,
        ..Opts::default()
    })
    .await;
    bad.host.connect(vec![victim.addr()]).await.unwrap();
    eventually("victim sees the connection", 5, async || {
        victim.host.connection(&bad.id()).is_some()
    })
    .await;
    // The victim's client asks for blocks, gets junk, and reports it.
    let req = || {
        Request::BeaconBlocksByRangeV2(BeaconBlocksByRangeRequest {
            start_slot: 10,
            count: 2,
            step: 1,
        })
    };
    let mut errors = 0;
    // Six at -10 each pass the ban threshold of -50 (five reach it only without decay).
    let asks = (0..6).map(|_| victim.rr.request(bad.id(), req()));
    for r in futures::future::join_all(asks).await {
        let mut st = r.expect("request opened");
        if let Some(Err(e)) = st.next().await {
            victim
                .pm()
                .report_blame(bad.id(), e.blame(), ReportSource::ReqResp);
            errors += 1;
        }
    }
    assert_eq!(errors, 6, "six junk responses");
    eventually("banned", 5, async || victim.pm().metrics().bans() == 1).await;
    eventually("disconnected, on both sides", 5, async || {
        victim.host.connection(&bad.id()).is_none() && bad.host.connection(&victim.id()).is_none()
    })
    .await;
    assert_eq!(
        victim.pm().metrics().goodbyes_sent(GoodbyeReason::BadScore)
            + victim.pm().metrics().goodbyes_sent(GoodbyeReason::Banned),
        1,
        "one Goodbye"
    );
    // The storm: 20 reconnects within the ban.
    let before = handshakes_in(&victim.host);
    for _ in 0..20 {
        assert!(bad.host.connect(vec![victim.addr()]).await.is_err());
    }
    let with_pm = handshakes_in(&victim.host) - before;
    assert_eq!(with_pm, 0, "every reconnect refused at accept");
    assert!(victim.pm().metrics().refusals("ip_backoff", "accept") >= 20);

    // The same storm against a plain host.
    let plain = node(Opts {
        pm: None,
        ..Opts::default()
    })
    .await;
    let before = handshakes_in(&plain.host);
    for _ in 0..20 {
        bad.host.connect(vec![plain.addr()]).await.unwrap();
        bad.host.disconnect(plain.id());
        eventually("plain host saw the close", 5, async || {
            plain.host.connection(&bad.id()).is_none()
        })
        .await;
    }
    let without_pm = handshakes_in(&plain.host) - before;
    assert_eq!(without_pm, 20);
    println!(
        "bad responder, 20 reconnects: handshakes started by the victim: with peer manager {with_pm}, plain host {without_pm}"
    );

    // After the ban the peer may come back.
    eventually("reconnect after the ban", 20, async || {
        bad.host.connect(vec![victim.addr()]).await.is_ok()
    })
    .await;
}

/// A node above its target prunes a peer with Goodbye(129), and the pruned peer does not
/// redial before its backoff. A node at its cap gets 100 dials from new peers: each is
/// refused at accept, before any handshake. A plain host starts 100 handshakes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_node_refuses_dials_before_crypto_and_prunes_with_goodbye_129() {
    // Target 3, room for 4: the fourth peer gets in and is pruned back out.
    assert_eq!(fast(3).max_peers(), 4);
    let full = node(Opts {
        pm: Some(fast(3)),
        ..Opts::default()
    })
    .await;
    let mut peers = Vec::new();
    for _ in 0..4 {
        let n = node(Opts::default()).await;
        n.pm().add_candidate(full.id(), vec![full.addr()]);
        peers.push(n);
    }
    eventually("one Goodbye(129) received", 10, async || {
        peers
            .iter()
            .map(|n| {
                n.pm()
                    .metrics()
                    .goodbyes_received(GoodbyeReason::TooManyPeers)
            })
            .sum::<u64>()
            == 1
    })
    .await;
    assert_eq!(
        full.pm()
            .metrics()
            .goodbyes_sent(GoodbyeReason::TooManyPeers),
        1
    );
    let dials = || peers.iter().map(|n| n.pm().metrics().dials()).sum::<u64>();
    let before = dials();
    // 20 heartbeats of the pruned peer: it wants a peer and knows one, but waits.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(dials(), before, "no redial during the backoff");
    assert_eq!(full.host.connected_peers().len(), 3);

    // Target 3 with no excess: at 3 peers the node is full.
    let mut cfg = fast(3);
    cfg.excess_factor = 0.0;
    let full = node(Opts {
        pm: Some(cfg),
        ..Opts::default()
    })
    .await;
    let mut peers = Vec::new();
    for _ in 0..3 {
        let n = node(Opts::default()).await;
        n.pm().add_candidate(full.id(), vec![full.addr()]);
        peers.push(n);
    }
    eventually("three accepted", 10, async || {
        full.pm()
            .peers()
            .await
            .iter()
            .filter(|(_, p)| p.is_accepted())
            .count()
            == 3
    })
    .await;
    let newcomers: Vec<Host> = futures::future::join_all((0..100).map(|_| bare())).await;
    let before = handshakes_in(&full.host);
    let mut refused = 0;
    for n in &newcomers {
        if n.connect(vec![full.addr()]).await.is_err() {
            refused += 1;
        }
    }
    let with_pm = handshakes_in(&full.host) - before;
    assert_eq!(refused, 100, "all 100 dials refused");
    assert_eq!(with_pm, 0, "none of them started a handshake");
    assert_eq!(full.pm().metrics().refusals("full", "accept"), 100);
    assert_eq!(full.host.connected_peers().len(), 3);

    // The same 100 dials against a plain host (default limits).
    let plain = node(Opts {
        pm: None,
        ..Opts::default()
    })
    .await;
    let before = handshakes_in(&plain.host);
    for n in &newcomers {
        let _ = n.connect(vec![plain.addr()]).await;
    }
    let without_pm = handshakes_in(&plain.host) - before;
    assert_eq!(without_pm, 100);
    println!(
        "full node, 100 dials from new peers: handshakes started: with peer manager {with_pm}, plain host {without_pm}"
    );
}

/// Two peer-managed nodes that dial each other over and over end with one connection
/// and no connect/disconnect churn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_dialing_each_other_end_with_one_connection_and_no_churn() {
    let a = node(Opts::default()).await;
    let b = node(Opts::default()).await;
    let mut ev_a = a.host.events();
    a.pm().add_candidate(b.id(), vec![b.addr()]);
    b.pm().add_candidate(a.id(), vec![a.addr()]);
    for _ in 0..10 {
        let (x, y) = tokio::join!(
            a.host.connect(vec![b.addr()]),
            b.host.connect(vec![a.addr()])
        );
        if x.is_err() && y.is_err() {
            while let Ok(ev) = ev_a.try_recv() {
                eprintln!("A event: {ev:?}");
            }
            eprintln!("A's view of B: {:?}", a.pm().peers().await);
        }
        assert!(x.is_ok() || y.is_ok(), "{x:?} {y:?}");
        if x.is_err() || y.is_err() {
            eprintln!("one side of a simultaneous dial failed: {x:?} {y:?}");
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(a.host.connected_peers(), vec![b.id()]);
    assert_eq!(b.host.connected_peers(), vec![a.id()]);
    let (mut connected, mut disconnected) = (0, 0);
    while let Ok(ev) = ev_a.try_recv() {
        match ev {
            HostEvent::Connected(_) => connected += 1,
            HostEvent::Disconnected { .. } => disconnected += 1,
            _ => {}
        }
    }
    assert_eq!((connected, disconnected), (1, 0));
    // Identify told A's peer manager B's agent.
    eventually("agent known", 5, async || {
        a.pm().peers().await.iter().any(|(p, i)| {
            *p == b.id() && i.agent.as_deref().is_some_and(|x| x.starts_with("plexus/"))
        })
    })
    .await;
    assert_eq!(
        a.pm().metrics().goodbyes_sent(GoodbyeReason::TooManyPeers),
        0
    );
}

/// A peer on another fork gets one Goodbye(2), is not redialed within its backoff, and
/// never enters a gossip mesh.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_on_the_wrong_fork_gets_one_goodbye_and_no_mesh() {
    let a = node(Opts {
        gossip: true,
        ..Opts::default()
    })
    .await;
    let other = node(Opts {
        digest: Some(ForkDigest([0xde, 0xad, 0xbe, 0xef])),
        gossip: true,
        ..Opts::default()
    })
    .await;
    a.pm().add_candidate(other.id(), vec![other.addr()]);
    // Each side finds the other's digest wrong; whichever reads the other's Status first
    // says Goodbye (both may).
    let said = |n: &Node| {
        let m = n.pm().metrics();
        (
            m.goodbyes_sent(GoodbyeReason::IrrelevantNetwork),
            m.goodbyes_received(GoodbyeReason::IrrelevantNetwork),
        )
    };
    eventually("goodbye said", 10, async || {
        let (sent, received) = said(&a);
        sent + received >= 1
    })
    .await;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let snap = a.gossip.as_ref().unwrap().snapshot().await.unwrap();
        assert!(
            snap.mesh
                .iter()
                .all(|(_, peers)| !peers.contains(&other.id())),
            "never in a mesh"
        );
    }
    assert!(
        said(&a).0 <= 1 && said(&other).0 <= 1,
        "at most one Goodbye each"
    );
    assert_eq!(a.pm().metrics().dials(), 1, "dialed once, not again");
    assert!(a.host.connection(&other.id()).is_none());
}

/// The largest mesh seen and the number of (sample, node, peer) mesh entries holding a
/// peer that failed Status, over 40 samples 100 ms apart, in a 20-node network: 14 nodes
/// on our chain and 6 whose Status is rejected but which subscribe to the same topic.
async fn mesh_run(with_pm: bool) -> (usize, usize) {
    let wrong = ForkDigest([9, 9, 9, 9]);
    let mut nodes = Vec::new();
    for i in 0..20 {
        nodes.push(
            node(Opts {
                pm: with_pm.then(|| fast(8)),
                digest: (i >= 14).then_some(wrong),
                gossip: true,
                ..Opts::default()
            })
            .await,
        );
    }
    for (i, n) in nodes.iter().enumerate() {
        for m in &nodes[i + 1..] {
            match &n.pm {
                Some(pm) => pm.add_candidate(m.id(), vec![m.addr()]),
                None => {
                    let _ = n.host.connect(vec![m.addr()]).await;
                }
            }
        }
    }
    let honest: std::collections::HashSet<PeerId> = nodes[..14].iter().map(Node::id).collect();
    let (mut max_mesh, mut violations) = (0, 0);
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for n in &nodes[..14] {
            let snap = n.gossip.as_ref().unwrap().snapshot().await.unwrap();
            for (_, peers) in &snap.mesh {
                max_mesh = max_mesh.max(peers.len());
                violations += peers.iter().filter(|p| !honest.contains(p)).count();
            }
        }
    }
    (max_mesh, violations)
}

/// With the peer manager, every mesh of an honest node holds only Status-accepted peers
/// at every sample, and meshes form; without it, rejected peers sit in meshes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_meshes_hold_only_status_accepted_peers_in_a_20_node_network() {
    let (max_mesh, violations) = mesh_run(true).await;
    assert_eq!(violations, 0, "a peer that failed Status is in a mesh");
    assert!(max_mesh >= 2, "meshes formed (largest {max_mesh})");
    let (_, without_pm) = mesh_run(false).await;
    assert!(without_pm > 0, "the plain network meshes with everyone");
    println!(
        "20 nodes, 6 failing Status: mesh entries holding such a peer over 40 samples: with peer manager {violations}, plain hosts {without_pm}"
    );
}
