//! rust-libp2p ⇄ plexus over TCP + Noise + a muxer (yamux, and mplex via
//! `libp2p-mplex`) and over QUIC (rust-libp2p's `with_quic()`, plexus's
//! `QuicTransport`: TLS 1.3 and QUIC's own streams), both dial directions,
//! secp256k1 and ed25519 on each side. Over TCP each side offers only the
//! muxer under test, negotiated with multistream; over QUIC the plexus
//! connection comes out of the transport ready (`/tls/1.0.0`, `/quic-v1`) and
//! the upgrader only checks it. On every connection two streams run at once,
//! one opened by each side (so with mplex both sides send both the Initiator
//! and the Receiver flags); on each, the stream's size goes each way, checked
//! byte for byte, with a half-close in both directions: the opener sends and
//! closes its write side (a FIN on QUIC), the acceptor reads to EOF, then
//! sends and closes, and the opener reads to EOF. Afterwards the plexus
//! connection's counters are back to zero (QUIC counts only the stream
//! handles alive) and the connection is still up.

use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt as _, AsyncWriteExt as _, StreamExt as _};
use libp2p::swarm::SwarmEvent;
use libp2p::{StreamProtocol, Swarm};
use plexus_conn::{Connection, Upgrader};
use plexus_core::{AllowAll, BoxStream, Limits, MuxStats, MuxerUpgrade, Transport};
use plexus_identity::Keypair;
use plexus_mplex::MplexConfig;
use plexus_multiaddr::Multiaddr;
use plexus_noise::NoiseConfig;
use plexus_quic::{QuicConfig, QuicTransport};
use plexus_tcp::TcpTransport;
use plexus_yamux::YamuxConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const PROTO: &str = "/plexus-interop/1.0.0";
/// The muxer under test: yamux or mplex over TCP + Noise, or QUIC (which
/// secures and multiplexes by itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mux {
    Yamux,
    Mplex,
    Quic,
}

impl Mux {
    /// The muxer name in the plexus connection's info.
    fn protocol(self) -> &'static str {
        match self {
            Mux::Yamux => "/yamux/1.0.0",
            Mux::Mplex => "/mplex/6.7.0",
            Mux::Quic => plexus_quic::MUXER,
        }
    }

    /// The security protocol in the plexus connection's info.
    fn security(self) -> &'static str {
        match self {
            Mux::Yamux | Mux::Mplex => plexus_noise::PROTOCOL_ID,
            Mux::Quic => plexus_quic::SECURITY,
        }
    }

    /// A loopback listen address on a free port.
    fn listen(self) -> &'static str {
        match self {
            Mux::Yamux | Mux::Mplex => "/ip4/127.0.0.1/tcp/0",
            Mux::Quic => "/ip4/127.0.0.1/udp/0/quic-v1",
        }
    }

    /// Bytes each way per stream: 16 MiB over yamux and QUIC; 4 MiB over
    /// mplex, which has no flow control (a bulk stream waits on the reader
    /// through TCP).
    fn size(self) -> usize {
        match self {
            Mux::Yamux | Mux::Quic => 16 * 1024 * 1024,
            Mux::Mplex => 4 * 1024 * 1024,
        }
    }
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

fn first_diff(a: &[u8], b: &[u8]) -> String {
    if a.len() != b.len() {
        return format!("length {} != {}", a.len(), b.len());
    }
    let i = a.iter().zip(b).position(|(x, y)| x != y).unwrap();
    format!("first difference at byte {i}")
}

// ---------- the rust-libp2p side ----------

struct RustNode {
    peer: libp2p::PeerId,
    control: libp2p_stream::Control,
    incoming: libp2p_stream::IncomingStreams,
    events: mpsc::Receiver<SwarmEvent<()>>,
    cmd: mpsc::Sender<libp2p::Multiaddr>,
}

fn rust_key(secp: bool) -> libp2p::identity::Keypair {
    if secp {
        libp2p::identity::Keypair::generate_secp256k1()
    } else {
        libp2p::identity::Keypair::generate_ed25519()
    }
}

fn rust_node(key: libp2p::identity::Keypair, listen: bool, mux: Mux) -> RustNode {
    let builder = libp2p::SwarmBuilder::with_existing_identity(key).with_tokio();
    let tcp = libp2p::tcp::Config::default().nodelay(true);
    let mut swarm: Swarm<libp2p_stream::Behaviour> = match mux {
        Mux::Yamux => builder
            .with_tcp(
                tcp,
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| libp2p_stream::Behaviour::new())
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build(),
        Mux::Mplex => builder
            .with_tcp(
                tcp,
                libp2p::noise::Config::new,
                libp2p_mplex::Config::default,
            )
            .unwrap()
            .with_behaviour(|_| libp2p_stream::Behaviour::new())
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build(),
        Mux::Quic => builder
            .with_quic()
            .with_behaviour(|_| libp2p_stream::Behaviour::new())
            .unwrap()
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build(),
    };
    let peer = *swarm.local_peer_id();
    let mut control = swarm.behaviour().new_control();
    let incoming = control.accept(StreamProtocol::new(PROTO)).unwrap();
    if listen {
        swarm.listen_on(mux.listen().parse().unwrap()).unwrap();
    }
    let (etx, events) = mpsc::channel(64);
    let (cmd, mut crx) = mpsc::channel::<libp2p::Multiaddr>(4);
    tokio::spawn(async move {
        loop {
            tokio::select! {
                ev = swarm.select_next_some() => {
                    let _ = etx.try_send(ev);
                }
                Some(addr) = crx.recv() => {
                    swarm.dial(addr).unwrap();
                }
            }
        }
    });
    RustNode {
        peer,
        control,
        incoming,
        events,
        cmd,
    }
}

impl RustNode {
    async fn listen_addr(&mut self) -> libp2p::Multiaddr {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = self.events.recv().await.unwrap() {
                return address;
            }
        }
    }

    async fn established_with(&mut self) -> libp2p::PeerId {
        loop {
            match self.events.recv().await.unwrap() {
                SwarmEvent::ConnectionEstablished { peer_id, .. } => return peer_id,
                SwarmEvent::OutgoingConnectionError { error, .. } => {
                    panic!("rust-libp2p dial failed: {error}")
                }
                SwarmEvent::IncomingConnectionError { error, .. } => {
                    panic!("rust-libp2p accept failed: {error}")
                }
                _ => {}
            }
        }
    }
}

// ---------- the plexus side ----------

fn plexus_key(secp: bool) -> Keypair {
    if secp {
        Keypair::generate_secp256k1()
    } else {
        Keypair::generate_ed25519()
    }
}

/// The upgrader. Over QUIC its Noise and muxers go unused: a ready
/// connection is only checked against the dialed peer and gated.
fn upgrader(key: &Keypair, mux: Mux) -> Upgrader {
    let muxers: Vec<Arc<dyn MuxerUpgrade>> = match mux {
        Mux::Yamux | Mux::Quic => vec![Arc::new(YamuxConfig::default())],
        Mux::Mplex => vec![Arc::new(MplexConfig::default())],
    };
    Upgrader::new(
        Arc::new(NoiseConfig::new(key.clone())),
        muxers,
        Arc::new(AllowAll),
        Limits::default(),
    )
}

fn transport(key: &Keypair, mux: Mux) -> Box<dyn Transport> {
    match mux {
        Mux::Yamux | Mux::Mplex => Box::new(TcpTransport::default()),
        Mux::Quic => Box::new(QuicTransport::new(key, QuicConfig::default())),
    }
}

fn to_plexus_addr(a: &libp2p::Multiaddr) -> Multiaddr {
    Multiaddr::from_bytes(&a.to_vec()).unwrap()
}

// ---------- the stream exchange ----------

/// Opener side of a plexus stream: send ours, half-close, read theirs to EOF.
async fn plexus_opener(s: BoxStream, send: u64, expect: u64, size: usize) {
    let (_, mut s) = plexus_multistream::dialer_select(s, &[PROTO], &Default::default())
        .await
        .unwrap();
    s.write_all(&pattern(send, size)).await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = Vec::with_capacity(size);
    s.read_to_end(&mut got).await.unwrap();
    let want = pattern(expect, size);
    assert!(
        got == want,
        "plexus opener received wrong bytes: {}",
        first_diff(&got, &want)
    );
}

/// Acceptor side of a plexus stream: read theirs to EOF, then send ours and close.
async fn plexus_acceptor(s: BoxStream, send: u64, expect: u64, size: usize) {
    let (proto, mut s) = plexus_multistream::listener_select(s, &[PROTO], &Default::default())
        .await
        .unwrap();
    assert_eq!(proto, PROTO);
    let mut got = Vec::with_capacity(size);
    s.read_to_end(&mut got).await.unwrap();
    let want = pattern(expect, size);
    assert!(
        got == want,
        "plexus acceptor received wrong bytes: {}",
        first_diff(&got, &want)
    );
    s.write_all(&pattern(send, size)).await.unwrap();
    s.shutdown().await.unwrap();
}

async fn rust_opener(
    mut control: libp2p_stream::Control,
    to: libp2p::PeerId,
    send: u64,
    expect: u64,
    size: usize,
) {
    let mut s = control
        .open_stream(to, StreamProtocol::new(PROTO))
        .await
        .unwrap();
    s.write_all(&pattern(send, size)).await.unwrap();
    s.close().await.unwrap();
    let mut got = Vec::with_capacity(size);
    s.read_to_end(&mut got).await.unwrap();
    let want = pattern(expect, size);
    assert!(
        got == want,
        "rust opener received wrong bytes: {}",
        first_diff(&got, &want)
    );
}

async fn rust_acceptor(
    incoming: &mut libp2p_stream::IncomingStreams,
    from: libp2p::PeerId,
    send: u64,
    expect: u64,
    size: usize,
) {
    let (peer, mut s) = incoming.next().await.unwrap();
    assert_eq!(peer, from);
    let mut got = Vec::with_capacity(size);
    s.read_to_end(&mut got).await.unwrap();
    let want = pattern(expect, size);
    assert!(
        got == want,
        "rust acceptor received wrong bytes: {}",
        first_diff(&got, &want)
    );
    s.write_all(&pattern(send, size)).await.unwrap();
    s.close().await.unwrap();
}

/// Both streams at once on an established connection.
async fn exchange(conn: Connection, mut rust: RustNode, me: plexus_core::PeerId, size: usize) {
    assert_eq!(
        conn.info.peer.to_bytes(),
        rust.peer.to_bytes(),
        "plexus authenticated the rust peer"
    );
    // rust-libp2p authenticated us.
    let plexus_peer = rust.established_with().await;
    assert_eq!(
        plexus_peer.to_bytes(),
        me.to_bytes(),
        "rust-libp2p authenticated plexus"
    );

    let muxer = Arc::new(conn.muxer);
    // Stream 1: plexus opens, rust accepts.
    let m1 = muxer.clone();
    let p_open =
        tokio::spawn(async move { plexus_opener(m1.open().await.unwrap(), 1, 2, size).await });
    // Stream 2: rust opens, plexus accepts.
    let m2 = muxer.clone();
    let p_accept =
        tokio::spawn(async move { plexus_acceptor(m2.accept().await.unwrap(), 4, 3, size).await });
    let r_open = tokio::spawn(rust_opener(rust.control.clone(), plexus_peer, 3, 4, size));
    tokio::time::timeout(Duration::from_secs(120), async {
        rust_acceptor(&mut rust.incoming, plexus_peer, 2, 1, size).await;
        p_open.await.unwrap();
        p_accept.await.unwrap();
        r_open.await.unwrap();
        // Both streams were closed both ways and dropped: nothing is left.
        loop {
            let s = muxer.stats();
            if s == MuxStats::default() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("exchange finished");
    assert!(!muxer.is_closed(), "the connection is still up");
}

async fn rust_dials_plexus(mux: Mux, plexus_secp: bool, rust_secp: bool) {
    let key = plexus_key(plexus_secp);
    let upgrader = upgrader(&key, mux);
    let mut listener = transport(&key, mux)
        .listen(mux.listen().parse().unwrap())
        .await
        .unwrap();
    let addr = listener.local_addr().clone();
    let rust = rust_node(rust_key(rust_secp), false, mux);
    let dial_addr: libp2p::Multiaddr = format!("{addr}/p2p/{}", key.public().to_peer_id())
        .parse()
        .unwrap();
    rust.cmd.send(dial_addr).await.unwrap();
    let conn = upgrader
        .accept(listener.accept().await.unwrap())
        .await
        .unwrap();
    assert_eq!(conn.info.direction, plexus_core::Direction::Inbound);
    assert_eq!(conn.info.security, mux.security());
    assert_eq!(conn.info.muxer, mux.protocol());
    exchange(conn, rust, key.public().to_peer_id(), mux.size()).await;
}

async fn plexus_dials_rust(mux: Mux, plexus_secp: bool, rust_secp: bool) {
    let key = plexus_key(plexus_secp);
    let upgrader = upgrader(&key, mux);
    let mut rust = rust_node(rust_key(rust_secp), true, mux);
    let laddr = rust.listen_addr().await;
    let addr = to_plexus_addr(&laddr).with(plexus_multiaddr::Protocol::P2p(
        plexus_core::PeerId::from_bytes(&rust.peer.to_bytes()).unwrap(),
    ));
    let transport = transport(&key, mux);
    let conn = upgrader.dial(transport.as_ref(), addr).await.unwrap();
    assert_eq!(conn.info.direction, plexus_core::Direction::Outbound);
    assert_eq!(conn.info.security, mux.security());
    assert_eq!(conn.info.muxer, mux.protocol());
    exchange(conn, rust, key.public().to_peer_id(), mux.size()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yamux_rust_libp2p_dials_plexus_secp256k1_listener_ed25519_dialer() {
    rust_dials_plexus(Mux::Yamux, true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yamux_rust_libp2p_dials_plexus_ed25519_listener_secp256k1_dialer() {
    rust_dials_plexus(Mux::Yamux, false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yamux_plexus_dials_rust_libp2p_secp256k1_dialer_ed25519_listener() {
    plexus_dials_rust(Mux::Yamux, true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn yamux_plexus_dials_rust_libp2p_ed25519_dialer_secp256k1_listener() {
    plexus_dials_rust(Mux::Yamux, false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mplex_rust_libp2p_dials_plexus_secp256k1_listener_ed25519_dialer() {
    rust_dials_plexus(Mux::Mplex, true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mplex_plexus_dials_rust_libp2p_ed25519_dialer_secp256k1_listener() {
    plexus_dials_rust(Mux::Mplex, false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_rust_libp2p_dials_plexus_secp256k1_listener_ed25519_dialer() {
    rust_dials_plexus(Mux::Quic, true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_rust_libp2p_dials_plexus_ed25519_listener_secp256k1_dialer() {
    rust_dials_plexus(Mux::Quic, false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_plexus_dials_rust_libp2p_secp256k1_dialer_ed25519_listener() {
    plexus_dials_rust(Mux::Quic, true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quic_plexus_dials_rust_libp2p_ed25519_dialer_secp256k1_listener() {
    plexus_dials_rust(Mux::Quic, false, true).await;
}
