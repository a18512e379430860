//! Two plexus QUIC transports over loopback UDP: authenticated connections both ways,
//! byte-exact streams with half-close from each side, the dialed peer checked in the TLS
//! handshake, refusal before any crypto, the stream limit held by QUIC's credit (which starts
//! small and grows to the limit).

use std::time::Duration;

use plexus_core::{Listener, Transport, TransportConn, TransportError};
use plexus_identity::Keypair;
use plexus_multiaddr::Protocol;
use plexus_quic::{QuicConfig, QuicTransport};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(10);

async fn listening(key: &Keypair, cfg: QuicConfig) -> (QuicTransport, Box<dyn Listener>) {
    let t = QuicTransport::new(key, cfg);
    let l = t
        .listen("/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap())
        .await
        .unwrap();
    (t, l)
}

fn ready(c: TransportConn) -> Box<plexus_core::ReadyConn> {
    match c {
        TransportConn::Ready(r) => r,
        TransportConn::Raw(_) => panic!("QUIC yields ready connections"),
    }
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn authenticated_connection_with_streams_from_each_side() {
    let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_secp256k1());
    let (_tb, mut lb) = listening(&kb, QuicConfig::default()).await;
    let ta = QuicTransport::new(&ka, QuicConfig::default());
    let addr = lb
        .local_addr()
        .clone()
        .with(Protocol::P2p(kb.public().to_peer_id()));
    assert!(ta.can_dial(&addr));
    let dial = tokio::spawn(ta.dial(addr));
    let pending = lb.accept().await.unwrap();
    assert_eq!(pending.local_addr(), lb.local_addr());
    let inbound = ready(pending.finish().await.unwrap());
    let outbound = ready(dial.await.unwrap().unwrap());
    assert_eq!(outbound.peer, kb.public().to_peer_id());
    assert_eq!(inbound.peer, ka.public().to_peer_id());
    assert_eq!(inbound.public_key, ka.public());
    assert_eq!(inbound.remote_addr, outbound.local_addr_or_self());
    // 4 MiB each way on a stream opened by each side, with half-close.
    const N: usize = 4 << 20;
    for (opener, acceptor, seed) in [(&outbound, &inbound, 1u8), (&inbound, &outbound, 2u8)] {
        let mut s = opener.muxer.open().await.unwrap();
        let data = pattern(seed, N);
        let writer = {
            let data = data.clone();
            async move {
                s.write_all(&data).await.unwrap();
                s.shutdown().await.unwrap();
                let mut back = Vec::new();
                s.read_to_end(&mut back).await.unwrap();
                back
            }
        };
        let echo = async {
            let mut r = acceptor.muxer.accept().await.unwrap();
            let mut got = Vec::new();
            r.read_to_end(&mut got).await.unwrap();
            r.write_all(&got[..1024]).await.unwrap();
            r.shutdown().await.unwrap();
            got
        };
        let (back, got) = tokio::time::timeout(WAIT, async { tokio::join!(writer, echo) })
            .await
            .unwrap();
        assert!(got == data, "{} bytes arrived", got.len());
        assert_eq!(back, data[..1024]);
    }
    assert_eq!(outbound.muxer.stats().open_streams, 0);
    outbound.muxer.close().await;
    assert!(outbound.muxer.is_closed());
}

trait LocalAddr {
    fn local_addr_or_self(&self) -> plexus_multiaddr::Multiaddr;
}

impl LocalAddr for plexus_core::ReadyConn {
    /// The dialer's local address with the listener-side IP (the dialer bound 0.0.0.0).
    fn local_addr_or_self(&self) -> plexus_multiaddr::Multiaddr {
        let port = self
            .local_addr
            .iter()
            .find_map(|p| match p {
                Protocol::Udp(p) => Some(*p),
                _ => None,
            })
            .unwrap();
        format!("/ip4/127.0.0.1/udp/{port}/quic-v1")
            .parse()
            .unwrap()
    }
}

#[tokio::test]
async fn a_dial_reaching_another_peer_fails_in_the_handshake() {
    let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let (_tb, mut lb) = listening(&kb, QuicConfig::default()).await;
    let ta = QuicTransport::new(&ka, QuicConfig::default());
    let someone_else = Keypair::generate_ed25519().public().to_peer_id();
    let addr = lb.local_addr().clone().with(Protocol::P2p(someone_else));
    let dial = tokio::spawn(ta.dial(addr));
    let server = tokio::spawn(async move {
        let p = lb.accept().await.unwrap();
        p.finish().await.map(|_| ())
    });
    let err = dial.await.unwrap().unwrap_err();
    assert!(matches!(err, TransportError::Security(_)), "{err:?}");
    assert!(
        server.await.unwrap().is_err(),
        "the listener sees the abort"
    );
}

#[tokio::test]
async fn a_refused_attempt_costs_no_handshake_and_the_dialer_learns_at_once() {
    let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let (tb, mut lb) = listening(&kb, QuicConfig::default()).await;
    let ta = QuicTransport::new(&ka, QuicConfig::default());
    let dial = tokio::spawn(ta.dial(lb.local_addr().clone()));
    let pending = lb.accept().await.unwrap();
    assert_eq!(tb.pending_handshakes(), 0);
    pending.refuse();
    let started = tokio::time::Instant::now();
    let err = dial.await.unwrap().unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "refused promptly, not timed out: {err:?}"
    );
    assert!(!matches!(err, TransportError::Timeout(_)), "{err:?}");
    assert_eq!(tb.pending_handshakes(), 0);
}

#[tokio::test]
async fn streams_beyond_the_limit_wait_for_credit_instead_of_being_reset() {
    let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let cfg = QuicConfig {
        max_concurrent_bidi_streams: 4,
        ..QuicConfig::default()
    };
    let (_tb, mut lb) = listening(&kb, cfg.clone()).await;
    let ta = QuicTransport::new(&ka, cfg);
    let dial = tokio::spawn(ta.dial(lb.local_addr().clone()));
    let inbound = ready(lb.accept().await.unwrap().finish().await.unwrap());
    let outbound = ready(dial.await.unwrap().unwrap());
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut s = outbound.muxer.open().await.unwrap();
        s.write_all(b"x").await.unwrap();
        held.push(s);
    }
    // The fifth waits: the listener has granted four.
    let fifth = tokio::time::timeout(Duration::from_millis(400), outbound.muxer.open()).await;
    assert!(fifth.is_err(), "the fifth stream waits for credit");
    // The listener takes one and finishes it both ways: credit returns.
    let mut s = inbound.muxer.accept().await.unwrap();
    let mut one = [0u8; 1];
    s.read_exact(&mut one).await.unwrap();
    s.shutdown().await.unwrap();
    let mut first = held.remove(0);
    first.shutdown().await.unwrap();
    let mut rest = Vec::new();
    first.read_to_end(&mut rest).await.unwrap();
    drop((s, first));
    let fifth = tokio::time::timeout(WAIT, async {
        loop {
            // The fifth opens once the first stream is fully closed on both sides.
            if let Ok(s) =
                tokio::time::timeout(Duration::from_millis(200), outbound.muxer.open()).await
            {
                return s;
            }
        }
    })
    .await
    .expect("credit returned");
    assert!(fifth.is_ok());
}

#[tokio::test]
async fn stream_credit_starts_small_and_grows_to_the_limit_as_streams_are_held() {
    let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let cfg = QuicConfig {
        initial_concurrent_bidi_streams: 2,
        max_concurrent_bidi_streams: 8,
        ..QuicConfig::default()
    };
    let (_tb, mut lb) = listening(&kb, cfg.clone()).await;
    let ta = QuicTransport::new(&ka, cfg);
    let dial = tokio::spawn(ta.dial(lb.local_addr().clone()));
    let inbound = ready(lb.accept().await.unwrap().finish().await.unwrap());
    let outbound = ready(dial.await.unwrap().unwrap());
    // The listener accepts and holds every stream.
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok(mut s) = inbound.muxer.accept().await {
            let mut one = [0u8; 1];
            s.read_exact(&mut one).await.unwrap();
            held.push(s);
        }
        held.len()
    });
    // Credit starts at 2 and doubles as held streams reach half of it: all 8 open.
    let mut open = Vec::new();
    for i in 0..8 {
        let mut s = tokio::time::timeout(WAIT, outbound.muxer.open())
            .await
            .unwrap_or_else(|_| panic!("stream {i} got credit"))
            .unwrap();
        s.write_all(b"x").await.unwrap();
        s.flush().await.unwrap();
        open.push(s);
    }
    // Never beyond the limit.
    let ninth = tokio::time::timeout(Duration::from_millis(400), outbound.muxer.open()).await;
    assert!(ninth.is_err(), "the ninth stream waits for credit");
    drop(open);
    outbound.muxer.close().await;
    assert_eq!(holder.await.unwrap(), 8);
}

#[tokio::test]
async fn dials_leave_from_the_listening_port_when_it_can_reach_the_peer() {
    let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let (_tb, mut lb) = listening(&kb, QuicConfig::default()).await;
    // A dials from its own listening endpoint: B sees A's listen port as the source.
    let (ta, la) = listening(&ka, QuicConfig::default()).await;
    let dial = tokio::spawn(ta.dial(lb.local_addr().clone()));
    let pending = lb.accept().await.unwrap();
    assert_eq!(pending.remote_addr(), la.local_addr());
    let _in = pending.finish().await.unwrap();
    let _out = dial.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_stream_dropped_mid_answer_is_a_reset_and_after_the_end_a_close() {
    let (ka, kb) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let (_tb, mut lb) = listening(&kb, QuicConfig::default()).await;
    let ta = QuicTransport::new(&ka, QuicConfig::default());
    let dial = tokio::spawn(ta.dial(lb.local_addr().clone()));
    let inbound = ready(lb.accept().await.unwrap().finish().await.unwrap());
    let outbound = ready(dial.await.unwrap().unwrap());
    // The responder writes part of an answer and gives up without reading to the end.
    let mut s = outbound.muxer.open().await.unwrap();
    s.write_all(b"request").await.unwrap();
    let mut r = inbound.muxer.accept().await.unwrap();
    r.write_all(b"partial").await.unwrap();
    r.flush().await.unwrap();
    drop(r);
    let mut got = Vec::new();
    let end = tokio::time::timeout(WAIT, s.read_to_end(&mut got))
        .await
        .unwrap();
    assert!(
        end.is_err(),
        "a reset, not a clean end: {end:?} after {got:?}"
    );
    // A responder that read the request to its end and then drops its stream closes it.
    let mut s = outbound.muxer.open().await.unwrap();
    s.write_all(b"request").await.unwrap();
    s.shutdown().await.unwrap();
    let mut r = inbound.muxer.accept().await.unwrap();
    let mut req = Vec::new();
    r.read_to_end(&mut req).await.unwrap();
    r.write_all(b"whole answer").await.unwrap();
    drop(r);
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut got))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, b"whole answer");
}
