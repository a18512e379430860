//! rust-libp2p ⇄ a plexus host: ping, identify and perf, both dial directions.
//!
//! rust-libp2p runs its own ping and identify behaviours. It has no perf
//! implementation for this libp2p version (libp2p-perf stopped at 0.53), so
//! its perf side is the few lines of the perf spec over a libp2p-stream
//! stream: still rust-libp2p's transport, Noise, yamux and multistream.

use std::time::Duration;

use futures::{AsyncReadExt as _, AsyncWriteExt as _, StreamExt as _};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{StreamProtocol, Swarm, identify, ping};
use plexus_host::{Host, HostConfig};
use plexus_identify::{IdentifyConfig, IdentifyService};
use plexus_identity::Keypair;
use plexus_multiaddr::{Multiaddr, Protocol};
use plexus_perf::{Perf, PerfConfig};
use plexus_ping::{PingConfig, PingService};
use tokio::sync::mpsc;

const PERF: &str = "/perf/1.0.0";
const RUST_AGENT: &str = "rust-libp2p-interop/1";
const LIMIT: Duration = Duration::from_secs(30);

#[derive(NetworkBehaviour)]
struct Behaviour {
    ping: ping::Behaviour,
    identify: identify::Behaviour,
    stream: libp2p_stream::Behaviour,
}

struct RustNode {
    peer: libp2p::PeerId,
    control: libp2p_stream::Control,
    events: mpsc::Receiver<SwarmEvent<BehaviourEvent>>,
    dial: mpsc::Sender<libp2p::Multiaddr>,
}

fn rust_node(listen: bool) -> RustNode {
    let key = libp2p::identity::Keypair::generate_secp256k1();
    let public = key.public();
    let mut swarm: Swarm<Behaviour> = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| Behaviour {
            ping: ping::Behaviour::new(
                ping::Config::new().with_interval(Duration::from_millis(100)),
            ),
            identify: identify::Behaviour::new(
                identify::Config::new("/interop/1.0.0".into(), public)
                    .with_agent_version(RUST_AGENT.into()),
            ),
            stream: libp2p_stream::Behaviour::new(),
        })
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let peer = *swarm.local_peer_id();
    let control = swarm.behaviour().stream.new_control();
    if listen {
        swarm
            .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
            .unwrap();
    }
    let (etx, events) = mpsc::channel(256);
    let (dial, mut drx) = mpsc::channel::<libp2p::Multiaddr>(4);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                ev = swarm.select_next_some() => { let _ = etx.try_send(ev); }
                Some(a) = drx.recv() => swarm.dial(a).unwrap(),
            }
        }
    });
    RustNode {
        peer,
        control,
        events,
        dial,
    }
}

/// A perf server on the rust side: read the u64, drain, answer.
fn rust_perf_server(mut control: libp2p_stream::Control) {
    let mut incoming = control.accept(StreamProtocol::new(PERF)).unwrap();
    tokio::spawn(async move {
        while let Some((_, mut s)) = incoming.next().await {
            tokio::spawn(async move {
                let mut n = [0u8; 8];
                s.read_exact(&mut n).await.unwrap();
                let mut sink = Vec::new();
                s.read_to_end(&mut sink).await.unwrap();
                let answer = vec![0x5A; u64::from_be_bytes(n) as usize];
                s.write_all(&answer).await.unwrap();
                s.close().await.unwrap();
            });
        }
    });
}

/// What rust-libp2p learned about plexus, once it has a ping and an identify.
async fn rust_sees_plexus(rust: &mut RustNode, plexus: libp2p::PeerId) -> identify::Info {
    let mut pinged = false;
    let mut info = None;
    tokio::time::timeout(LIMIT, async {
        while !(pinged && info.is_some()) {
            match rust.events.recv().await.unwrap() {
                SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                    peer, result, ..
                })) if peer == plexus => {
                    let rtt = result.expect("rust-libp2p pings plexus");
                    assert!(rtt < LIMIT);
                    pinged = true;
                }
                SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                    peer_id,
                    info: i,
                    ..
                })) if peer_id == plexus => info = Some(i),
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    panic!("rust dial failed: {error}")
                }
                _ => {}
            }
        }
    })
    .await
    .expect("rust-libp2p pinged and identified plexus");
    info.unwrap()
}

async fn plexus_host() -> (
    Host,
    plexus_identify::IdentifyHandle,
    plexus_ping::PingHandle,
    plexus_perf::PerfHandle,
) {
    let mut cfg = HostConfig::new(Keypair::generate_secp256k1());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    let host = Host::new(cfg).await.unwrap();
    let id = IdentifyService::spawn(host.clone(), IdentifyConfig::default()).unwrap();
    let ping = PingService::spawn(host.clone(), PingConfig::default()).unwrap();
    let perf = Perf::enable(&host, PerfConfig::default()).unwrap();
    (host, id, ping, perf)
}

fn same_peer(a: &plexus_host::PeerId, b: &libp2p::PeerId) -> bool {
    a.to_bytes() == b.to_bytes()
}

fn check_plexus_info(info: &identify::Info, host: &Host) {
    assert!(
        info.agent_version.starts_with("plexus/"),
        "{}",
        info.agent_version
    );
    for p in ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", PERF] {
        assert!(
            info.protocols.iter().any(|q| q.as_ref() == p),
            "{p} in {:?}",
            info.protocols
        );
    }
    let listen: Vec<String> = host.listen_addrs().iter().map(|a| a.to_string()).collect();
    for a in &info.listen_addrs {
        assert!(listen.contains(&a.to_string()), "{a} not in {listen:?}");
    }
    assert!(!info.listen_addrs.is_empty());
    assert!(
        info.observed_addr
            .to_string()
            .starts_with("/ip4/127.0.0.1/tcp/"),
        "{}",
        info.observed_addr
    );
    assert_eq!(
        info.public_key.to_peer_id().to_bytes(),
        host.peer_id().to_bytes()
    );
}

async fn plexus_side_checks(
    host: &Host,
    id: &plexus_identify::IdentifyHandle,
    ping: &plexus_ping::PingHandle,
    rust: libp2p::PeerId,
    perf_against_rust: bool,
) {
    let peer = plexus_host::PeerId::from_bytes(&rust.to_bytes()).unwrap();
    let rtt = tokio::time::timeout(LIMIT, ping.ping(peer))
        .await
        .unwrap()
        .unwrap();
    assert!(rtt > Duration::ZERO && rtt < LIMIT);
    assert_eq!(ping.rtt(&peer), Some(rtt), "RTT recorded per peer");
    let info = tokio::time::timeout(LIMIT, id.identify(peer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(info.agent_version.as_deref(), Some(RUST_AGENT));
    assert_eq!(info.protocol_version.as_deref(), Some("/interop/1.0.0"));
    assert!(
        info.protocols.iter().any(|p| p == "/ipfs/ping/1.0.0"),
        "{:?}",
        info.protocols
    );
    assert!(
        info.protocols.iter().any(|p| p == "/ipfs/id/1.0.0"),
        "{:?}",
        info.protocols
    );
    assert!(info.public_key.is_some());
    if perf_against_rust {
        let r = tokio::time::timeout(
            LIMIT,
            plexus_perf::perf(host, peer, 3 << 20, 2 << 20, |_| {}),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(r.upload_bytes, 3 << 20);
        assert_eq!(r.download_bytes, 2 << 20);
    }
}

/// rust-libp2p as perf client against the plexus perf server.
async fn rust_perf_client(control: &mut libp2p_stream::Control, plexus: libp2p::PeerId) {
    let mut s = control
        .open_stream(plexus, StreamProtocol::new(PERF))
        .await
        .unwrap();
    let download: u64 = 2 << 20;
    s.write_all(&download.to_be_bytes()).await.unwrap();
    s.write_all(&vec![7u8; 3 << 20]).await.unwrap();
    s.close().await.unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).await.unwrap();
    assert_eq!(
        got.len() as u64,
        download,
        "plexus served exactly the requested bytes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_libp2p_dials_a_plexus_host_and_both_ping_identify_and_perf() {
    let (host, id, ping, _perf) = plexus_host().await;
    let mut rust = rust_node(false);
    let addr = host.listen_addrs()[0]
        .clone()
        .with(Protocol::P2p(host.peer_id()));
    rust.dial
        .send(addr.to_string().parse().unwrap())
        .await
        .unwrap();
    let plexus_peer = libp2p::PeerId::from_bytes(&host.peer_id().to_bytes()).unwrap();

    let info = rust_sees_plexus(&mut rust, plexus_peer).await;
    check_plexus_info(&info, &host);
    let conn = host.connection(&plexus_host::PeerId::from_bytes(&rust.peer.to_bytes()).unwrap());
    assert!(conn.is_some_and(|c| same_peer(&c.peer, &rust.peer)));

    plexus_side_checks(&host, &id, &ping, rust.peer, false).await;
    tokio::time::timeout(LIMIT, rust_perf_client(&mut rust.control, plexus_peer))
        .await
        .expect("rust perf client finished");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plexus_host_dials_rust_libp2p_and_both_ping_identify_and_perf() {
    let (host, id, ping, _perf) = plexus_host().await;
    let mut rust = rust_node(true);
    rust_perf_server(rust.control.clone());
    let laddr = loop {
        if let SwarmEvent::NewListenAddr { address, .. } = rust.events.recv().await.unwrap() {
            break address;
        }
    };
    let rust_peer = plexus_host::PeerId::from_bytes(&rust.peer.to_bytes()).unwrap();
    let addr = Multiaddr::from_bytes(&laddr.to_vec())
        .unwrap()
        .with(Protocol::P2p(rust_peer));
    let conn = tokio::time::timeout(LIMIT, host.connect(vec![addr]))
        .await
        .unwrap()
        .unwrap();
    assert!(same_peer(&conn.peer, &rust.peer));

    let plexus_peer = libp2p::PeerId::from_bytes(&host.peer_id().to_bytes()).unwrap();
    plexus_side_checks(&host, &id, &ping, rust.peer, true).await;
    let info = rust_sees_plexus(&mut rust, plexus_peer).await;
    check_plexus_info(&info, &host);
}
