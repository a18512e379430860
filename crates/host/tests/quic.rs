//! The host with QUIC and TCP together: QUIC dialed first, TCP as fallback, the same
//! checkpoints and refusal counters on QUIC as on TCP, refusal before any TLS work.

use std::sync::Arc;
use std::time::Duration;

use plexus_core::{Direction, Transport};
use plexus_host::{HandlerOpts, Host, HostConfig};
use plexus_identity::Keypair;
use plexus_multiaddr::{Multiaddr, Protocol};
use plexus_quic::{QuicConfig, QuicTransport};
use plexus_tcp::TcpTransport;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ECHO: &str = "/echo/1.0.0";
const WAIT: Duration = Duration::from_secs(10);

/// A host on QUIC and TCP (loopback, free ports), and its QUIC transport.
async fn dual(key: Keypair) -> (Host, QuicTransport) {
    let quic = QuicTransport::new(&key, QuicConfig::default());
    let mut cfg = HostConfig::new(key);
    cfg.transports = vec![
        Arc::new(quic.clone()) as Arc<dyn Transport>,
        Arc::new(TcpTransport::default()),
    ];
    cfg.listen = vec![
        "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap(),
    ];
    cfg.limits.dial_backoff_initial = Duration::ZERO;
    (Host::new(cfg).await.unwrap(), quic)
}

fn addr(h: &Host, quic: bool) -> Multiaddr {
    h.listen_addrs()
        .iter()
        .find(|a| a.iter().any(|p| matches!(p, Protocol::QuicV1)) == quic)
        .unwrap()
        .clone()
}

fn serve_echo(h: &Host) {
    let mut incoming = h.handle(ECHO, HandlerOpts::default()).unwrap();
    tokio::spawn(async move {
        while let Some(mut s) = incoming.next().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                s.stream.read_to_end(&mut buf).await.unwrap();
                s.stream.write_all(&buf).await.unwrap();
                s.stream.shutdown().await.unwrap();
            });
        }
    });
}

async fn echo(h: &Host, peer: plexus_core::PeerId, msg: &[u8]) -> Vec<u8> {
    let (_, mut s) = h.new_stream(peer, &[ECHO]).await.unwrap();
    s.write_all(msg).await.unwrap();
    s.shutdown().await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

#[tokio::test]
async fn quic_is_dialed_first_and_tcp_serves_a_peer_without_it() {
    let (server, _) = dual(Keypair::generate_secp256k1()).await;
    serve_echo(&server);
    let p = server.peer_id();
    // TCP listed first: the host still dials QUIC first.
    let (client, _) = dual(Keypair::generate_ed25519()).await;
    let info = client
        .connect(vec![
            addr(&server, false).with(Protocol::P2p(p)),
            addr(&server, true).with(Protocol::P2p(p)),
        ])
        .await
        .unwrap();
    assert_eq!((info.security, info.muxer), ("/tls/1.0.0", "/quic-v1"));
    assert_eq!(echo(&client, p, &[7u8; 100_000]).await, vec![7u8; 100_000]);
    // A host without QUIC gets there over TCP.
    let tcp_only = {
        let mut cfg = HostConfig::new(Keypair::generate_ed25519());
        cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        Host::new(cfg).await.unwrap()
    };
    let info = tcp_only
        .connect(vec![
            addr(&server, true).with(Protocol::P2p(p)),
            addr(&server, false).with(Protocol::P2p(p)),
        ])
        .await
        .unwrap();
    assert_eq!(info.security, "/noise");
    assert_eq!(echo(&tcp_only, p, b"over tcp").await, b"over tcp");
    // And QUIC alone (the TCP address dropped) still works.
    let (c2, _) = dual(Keypair::generate_ed25519()).await;
    let info = c2
        .connect(vec![addr(&server, true).with(Protocol::P2p(p))])
        .await
        .unwrap();
    assert_eq!(info.muxer, "/quic-v1");
    assert_eq!(echo(&c2, p, b"quic").await, b"quic");
}

#[tokio::test]
async fn a_banned_ip_is_refused_on_quic_before_any_tls_work() {
    let (server, server_quic) = dual(Keypair::generate_ed25519()).await;
    let (client, _) = dual(Keypair::generate_ed25519()).await;
    let target = addr(&server, true).with(Protocol::P2p(server.peer_id()));
    client.connect(vec![target.clone()]).await.unwrap();
    let m = server.metrics();
    assert_eq!(m.handshakes_started(Direction::Inbound), 1);
    server
        .bans()
        .ban_peer_and_ip(client.peer_id(), Duration::from_secs(3600));
    server.disconnect(client.peer_id());
    let t = tokio::time::Instant::now();
    while !client.connected_peers().is_empty() {
        assert!(t.elapsed() < WAIT, "the client saw the disconnect");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..20 {
        let r = client.connect(vec![target.clone()]).await;
        assert!(r.is_err(), "a banned IP must not connect");
    }
    assert_eq!(m.refusals_at("banned_ip", "accept"), 20);
    // None reached the TLS handshake: no handshake counted, none pending in quinn.
    assert_eq!(m.handshakes_started(Direction::Inbound), 1);
    assert_eq!(server_quic.pending_handshakes(), 0);
    assert!(server.connected_peers().is_empty());
}

/// A peer that shuts its host down and exits at once (its runtime dropped, as a process
/// ends) is seen to leave right away: its QUIC CONNECTION_CLOSE goes out before shutdown
/// returns, instead of the connection lingering until the idle timeout.
#[tokio::test]
async fn a_peer_that_shuts_down_and_exits_is_gone_at_once() {
    let (a, _) = dual(Keypair::generate_ed25519()).await;
    let mut ea = a.events();
    let target = addr(&a, true);
    let a_id = a.peer_id();
    let b_id = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let id = rt.block_on(async {
            let (b, _) = dual(Keypair::generate_ed25519()).await;
            let conn = b
                .connect(vec![target.with(Protocol::P2p(a_id))])
                .await
                .unwrap();
            assert!(
                conn.remote_addr
                    .iter()
                    .any(|p| matches!(p, Protocol::QuicV1))
            );
            b.shutdown().await;
            b.peer_id()
        });
        // The process ends: nothing of B runs after this.
        drop(rt);
        id
    })
    .await
    .unwrap();
    let t = std::time::Instant::now();
    tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match ea.recv().await.unwrap() {
                plexus_host::HostEvent::Disconnected { peer, .. } if peer == b_id => break,
                _ => {}
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("B still connected {:?} after it exited", t.elapsed()));
    assert!(a.connection(&b_id).is_none());
}
