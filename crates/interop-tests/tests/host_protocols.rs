//! rust-libp2p ⇄ a plexus host: ping, identify and perf, both dial directions,
//! over TCP + Noise + yamux and over QUIC.
//!
//! rust-libp2p runs its own ping and identify behaviours. It has no perf
//! implementation for this libp2p version (libp2p-perf stopped at 0.53), so
//! its perf side is the few lines of the perf spec over a libp2p-stream
//! stream: still rust-libp2p's transport, security, muxer and multistream.
//!
//! Over TCP both sides run TCP alone. Over QUIC the plexus host runs QUIC and
//! TCP (listening on both, as the consensus spec asks) and rust-libp2p QUIC
//! alone (`with_quic()`), so the connection can only be QUIC: the plexus
//! host's connection says `/tls/1.0.0` and `/quic-v1`, and the address each
//! side observed for the other in identify is a `/udp/…/quic-v1` one. When
//! plexus dials, rust observes plexus's QUIC listen address (plexus dials from
//! its listening endpoint, as rust- and go-libp2p do).

use std::sync::Arc;
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
use plexus_quic::{QuicConfig, QuicTransport};
use plexus_tcp::TcpTransport;
use tokio::sync::mpsc;

const PERF: &str = "/perf/1.0.0";
const RUST_AGENT: &str = "rust-libp2p-interop/1";
const LIMIT: Duration = Duration::from_secs(30);

/// The transport under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Net {
    /// TCP + Noise + yamux on both sides.
    Tcp,
    /// QUIC v1: rust-libp2p on QUIC alone, the plexus host on QUIC and TCP.
    Quic,
}

impl Net {
    fn listen(self) -> &'static str {
        match self {
            Net::Tcp => "/ip4/127.0.0.1/tcp/0",
            Net::Quic => "/ip4/127.0.0.1/udp/0/quic-v1",
        }
    }

    /// The security and muxer names of the plexus host's connection.
    fn names(self) -> (&'static str, &'static str) {
        match self {
            Net::Tcp => (plexus_noise::PROTOCOL_ID, "/yamux/1.0.0"),
            Net::Quic => (plexus_quic::SECURITY, plexus_quic::MUXER),
        }
    }

    /// Whether `a` is an address of this transport on loopback.
    fn is_ours(self, a: &str) -> bool {
        match self {
            Net::Tcp => a.starts_with("/ip4/127.0.0.1/tcp/"),
            Net::Quic => a.starts_with("/ip4/127.0.0.1/udp/") && a.ends_with("/quic-v1"),
        }
    }
}

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

fn rust_node(net: Net, listen: bool) -> RustNode {
    let key = libp2p::identity::Keypair::generate_secp256k1();
    let public = key.public();
    let behaviour = move |_: &libp2p::identity::Keypair| Behaviour {
        ping: ping::Behaviour::new(ping::Config::new().with_interval(Duration::from_millis(100))),
        identify: identify::Behaviour::new(
            identify::Config::new("/interop/1.0.0".into(), public)
                .with_agent_version(RUST_AGENT.into()),
        ),
        stream: libp2p_stream::Behaviour::new(),
    };
    let idle = |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(60));
    let builder = libp2p::SwarmBuilder::with_existing_identity(key).with_tokio();
    let mut swarm: Swarm<Behaviour> = match net {
        Net::Tcp => builder
            .with_tcp(
                libp2p::tcp::Config::default().nodelay(true),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(behaviour)
            .unwrap()
            .with_swarm_config(idle)
            .build(),
        Net::Quic => builder
            .with_quic()
            .with_behaviour(behaviour)
            .unwrap()
            .with_swarm_config(idle)
            .build(),
    };
    let peer = *swarm.local_peer_id();
    let control = swarm.behaviour().stream.new_control();
    if listen {
        swarm.listen_on(net.listen().parse().unwrap()).unwrap();
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

async fn plexus_host(
    net: Net,
) -> (
    Host,
    plexus_identify::IdentifyHandle,
    plexus_ping::PingHandle,
    plexus_perf::PerfHandle,
) {
    let key = Keypair::generate_secp256k1();
    let mut cfg = HostConfig::new(key.clone());
    cfg.listen = vec![Net::Tcp.listen().parse().unwrap()];
    if net == Net::Quic {
        cfg.transports = vec![
            Arc::new(QuicTransport::new(&key, QuicConfig::default())),
            Arc::new(TcpTransport::new(cfg.tcp.clone())),
        ];
        cfg.listen.insert(0, Net::Quic.listen().parse().unwrap());
    }
    let host = Host::new(cfg).await.unwrap();
    let id = IdentifyService::spawn(host.clone(), IdentifyConfig::default()).unwrap();
    let ping = PingService::spawn(host.clone(), PingConfig::default()).unwrap();
    let perf = Perf::enable(&host, PerfConfig::default()).unwrap();
    (host, id, ping, perf)
}

fn same_peer(a: &plexus_host::PeerId, b: &libp2p::PeerId) -> bool {
    a.to_bytes() == b.to_bytes()
}

/// The plexus host's listen address of `net`.
fn listen_addr(host: &Host, net: Net) -> Multiaddr {
    host.listen_addrs()
        .into_iter()
        .find(|a| net.is_ours(&a.to_string()))
        .expect("the host listens on the transport under test")
}

/// The plexus host's connection to `rust` runs over `net`, and plexus
/// observed rust at an address of `net`.
fn check_plexus_conn(host: &Host, rust: &libp2p::PeerId, net: Net) {
    let peer = plexus_host::PeerId::from_bytes(&rust.to_bytes()).unwrap();
    let conn = host.connection(&peer).expect("plexus is connected to rust");
    assert!(same_peer(&conn.peer, rust));
    assert_eq!((conn.security, conn.muxer), net.names());
    assert!(
        net.is_ours(&conn.remote_addr.to_string()),
        "{}",
        conn.remote_addr
    );
}

/// What rust-libp2p's identify got from plexus (its observed address is
/// rust's, as plexus saw it).
fn check_plexus_info(info: &identify::Info, host: &Host, net: Net) {
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
    let observed = info.observed_addr.to_string();
    assert!(net.is_ours(&observed), "{observed}");
    assert_eq!(
        info.public_key.to_peer_id().to_bytes(),
        host.peer_id().to_bytes()
    );
}

/// Ping and identify rust from plexus. `plexus_dialed`: also run perf against
/// rust's server, and over QUIC rust must have observed plexus at its QUIC
/// listen address (plexus dials from its listening endpoint).
async fn plexus_side_checks(
    host: &Host,
    id: &plexus_identify::IdentifyHandle,
    ping: &plexus_ping::PingHandle,
    rust: libp2p::PeerId,
    plexus_dialed: bool,
    net: Net,
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
    let observed = info
        .observed_addr
        .as_ref()
        .expect("rust sends what it observed");
    assert!(net.is_ours(&observed.to_string()), "{observed}");
    if net == Net::Quic && plexus_dialed {
        assert_eq!(*observed, listen_addr(host, net));
    }
    if plexus_dialed {
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

async fn rust_dials_plexus(net: Net) {
    let (host, id, ping, _perf) = plexus_host(net).await;
    let mut rust = rust_node(net, false);
    let addr = listen_addr(&host, net).with(Protocol::P2p(host.peer_id()));
    rust.dial
        .send(addr.to_string().parse().unwrap())
        .await
        .unwrap();
    let plexus_peer = libp2p::PeerId::from_bytes(&host.peer_id().to_bytes()).unwrap();

    let info = rust_sees_plexus(&mut rust, plexus_peer).await;
    check_plexus_info(&info, &host, net);
    check_plexus_conn(&host, &rust.peer, net);

    plexus_side_checks(&host, &id, &ping, rust.peer, false, net).await;
    tokio::time::timeout(LIMIT, rust_perf_client(&mut rust.control, plexus_peer))
        .await
        .expect("rust perf client finished");
}

async fn plexus_dials_rust(net: Net) {
    let (host, id, ping, _perf) = plexus_host(net).await;
    let mut rust = rust_node(net, true);
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
    check_plexus_conn(&host, &rust.peer, net);

    let plexus_peer = libp2p::PeerId::from_bytes(&host.peer_id().to_bytes()).unwrap();
    plexus_side_checks(&host, &id, &ping, rust.peer, true, net).await;
    let info = rust_sees_plexus(&mut rust, plexus_peer).await;
    check_plexus_info(&info, &host, net);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_libp2p_dials_a_plexus_host_and_both_ping_identify_and_perf() {
    rust_dials_plexus(Net::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plexus_host_dials_rust_libp2p_and_both_ping_identify_and_perf() {
    plexus_dials_rust(Net::Tcp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_rust_libp2p_dials_a_plexus_host_and_both_ping_identify_and_perf() {
    rust_dials_plexus(Net::Quic).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_a_plexus_host_dials_rust_libp2p_and_both_ping_identify_and_perf() {
    plexus_dials_rust(Net::Quic).await;
}
