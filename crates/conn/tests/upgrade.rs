//! The upgrader end to end: TCP + Noise + yamux between two plexus nodes, every
//! gater checkpoint, and timeouts (in paused tokio time, no real waiting).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use std::sync::Mutex;

use plexus_conn::{Checkpoint, Stage, Step, UpgradeError, UpgradeObserver, Upgrader};
use plexus_core::{
    AllowAll, Blame, ConnInfo, ConnectionGater, DenyReason, Direction, Limits, MuxerUpgrade,
    PeerId, RawConn, SecurityError, Transport, TransportConn, Verdict,
};
use plexus_identity::Keypair;
use plexus_multiaddr::Multiaddr;
use plexus_noise::NoiseConfig;
use plexus_tcp::TcpTransport;
use plexus_yamux::YamuxConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn upgrader(key: &Keypair, gater: Arc<dyn ConnectionGater>) -> Upgrader {
    upgrader_with(key, gater, Limits::default())
}

fn upgrader_with(key: &Keypair, gater: Arc<dyn ConnectionGater>, limits: Limits) -> Upgrader {
    let muxers: Vec<Arc<dyn MuxerUpgrade>> = vec![Arc::new(YamuxConfig::default())];
    Upgrader::new(
        Arc::new(NoiseConfig::new(key.clone())),
        muxers,
        gater,
        limits,
    )
}

/// A raw connection over one end of an in-memory pipe.
fn pipe_raw(io: tokio::io::DuplexStream) -> TransportConn {
    TransportConn::Raw(RawConn {
        io: Box::new(io),
        local_addr: "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
        remote_addr: "/ip4/127.0.0.1/tcp/2".parse().unwrap(),
    })
}

/// A gater that denies at one checkpoint and counts every call.
#[derive(Default)]
struct Counting {
    deny_at: Option<Checkpoint>,
    calls: [AtomicUsize; 5],
}

impl Counting {
    fn deny(at: Checkpoint) -> Arc<Self> {
        Arc::new(Counting {
            deny_at: Some(at),
            ..Default::default()
        })
    }
    fn hit(&self, c: Checkpoint) -> Verdict {
        self.calls[c as usize].fetch_add(1, Ordering::SeqCst);
        if self.deny_at == Some(c) {
            Verdict::Deny(DenyReason::Other("test"))
        } else {
            Verdict::Allow
        }
    }
    fn count(&self, c: Checkpoint) -> usize {
        self.calls[c as usize].load(Ordering::SeqCst)
    }
}

impl ConnectionGater for Counting {
    fn peer_dial(&self, _: &PeerId) -> Verdict {
        self.hit(Checkpoint::PeerDial)
    }
    fn addr_dial(&self, _: Option<&PeerId>, _: &Multiaddr) -> Verdict {
        self.hit(Checkpoint::AddrDial)
    }
    fn accept(&self, _: &Multiaddr, _: &Multiaddr) -> Verdict {
        self.hit(Checkpoint::Accept)
    }
    fn secured(&self, _: Direction, _: &PeerId, _: &Multiaddr) -> Verdict {
        self.hit(Checkpoint::Secured)
    }
    fn upgraded(&self, _: &ConnInfo) -> Verdict {
        self.hit(Checkpoint::Upgraded)
    }
}

async fn listener() -> (Box<dyn plexus_core::Listener>, Multiaddr) {
    let l = TcpTransport::default()
        .listen("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .await
        .unwrap();
    let a = l.local_addr().clone();
    (l, a)
}

#[tokio::test]
async fn tcp_noise_yamux_both_ways_with_streams_from_each_side() {
    let (ka, kb) = (Keypair::generate_secp256k1(), Keypair::generate_ed25519());
    let (ua, ub) = (
        upgrader(&ka, Arc::new(AllowAll)),
        upgrader(&kb, Arc::new(AllowAll)),
    );
    let (mut l, addr) = listener().await;
    let addr = addr.with(plexus_multiaddr::Protocol::P2p(kb.public().to_peer_id()));

    let server = tokio::spawn(async move {
        let c = ub.accept(l.accept().await.unwrap()).await.unwrap();
        // Echo one inbound stream, then open one of our own.
        let mut s = c.muxer.accept().await.unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.unwrap();
        s.write_all(&buf).await.unwrap();
        s.shutdown().await.unwrap();
        let mut o = c.muxer.open().await.unwrap();
        o.write_all(b"from the listener").await.unwrap();
        o.shutdown().await.unwrap();
        let mut back = Vec::new();
        o.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"ack");
        c.info
    });

    let t = TcpTransport::default();
    let c = ua.dial(&t, addr.clone()).await.unwrap();
    assert_eq!(c.info.peer, kb.public().to_peer_id());
    assert_eq!(c.info.direction, Direction::Outbound);
    assert_eq!(c.info.muxer, "/yamux/1.0.0");
    assert_eq!(c.info.security, "/noise");

    let mut s = c.muxer.open().await.unwrap();
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
    s.write_all(&payload).await.unwrap();
    s.shutdown().await.unwrap();
    let mut echoed = Vec::new();
    s.read_to_end(&mut echoed).await.unwrap();
    assert_eq!(echoed, payload);

    let mut i = c.muxer.accept().await.unwrap();
    let mut got = Vec::new();
    i.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"from the listener");
    i.write_all(b"ack").await.unwrap();
    i.shutdown().await.unwrap();

    let server_info = server.await.unwrap();
    assert_eq!(server_info.peer, ka.public().to_peer_id());
    assert_eq!(server_info.direction, Direction::Inbound);
}

#[tokio::test]
async fn dialing_the_wrong_peer_id_fails_with_mismatch() {
    let (ka, kb) = (Keypair::generate_secp256k1(), Keypair::generate_secp256k1());
    let (ua, ub) = (
        upgrader(&ka, Arc::new(AllowAll)),
        upgrader(&kb, Arc::new(AllowAll)),
    );
    let (mut l, addr) = listener().await;
    let wrong = PeerId::random();
    tokio::spawn(async move {
        let _ = ub.accept(l.accept().await.unwrap()).await;
    });
    let err = ua
        .dial(
            &TcpTransport::default(),
            addr.with(plexus_multiaddr::Protocol::P2p(wrong)),
        )
        .await
        .unwrap_err();
    match err {
        UpgradeError::Security(SecurityError::PeerIdMismatch { expected, actual }) => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, kb.public().to_peer_id());
        }
        other => panic!("expected a peer id mismatch, got {other:?}"),
    }
}

#[tokio::test]
async fn dial_checkpoints_refuse_before_any_connection() {
    let k = Keypair::generate_secp256k1();
    let (mut l, addr) = listener().await;
    let peer = PeerId::random();
    for at in [Checkpoint::PeerDial, Checkpoint::AddrDial] {
        let g = Counting::deny(at);
        let u = upgrader(&k, g.clone());
        let err = u
            .dial(
                &TcpTransport::default(),
                addr.clone().with(plexus_multiaddr::Protocol::P2p(peer)),
            )
            .await
            .unwrap_err();
        assert!(
            matches!(err, UpgradeError::Denied { checkpoint, .. } if checkpoint == at),
            "{err:?}"
        );
        assert_eq!(err.blame(), Blame::Local);
    }
    // Nothing ever reached the listener.
    let nothing = tokio::time::timeout(Duration::from_millis(50), l.accept()).await;
    assert!(nothing.is_err(), "a refused dial must not open a socket");
}

#[tokio::test]
async fn accept_checkpoint_refuses_before_noise() {
    let (ka, kb) = (Keypair::generate_secp256k1(), Keypair::generate_secp256k1());
    let g = Counting::deny(Checkpoint::Accept);
    let (ua, ub) = (upgrader(&ka, Arc::new(AllowAll)), upgrader(&kb, g.clone()));
    let (mut l, addr) = listener().await;
    let server = tokio::spawn(async move { ub.accept(l.accept().await.unwrap()).await });
    let dial = ua.dial(&TcpTransport::default(), addr).await;
    assert!(dial.is_err(), "the dialer must fail");
    let err = server.await.unwrap().unwrap_err();
    assert!(matches!(
        err,
        UpgradeError::Denied {
            checkpoint: Checkpoint::Accept,
            ..
        }
    ));
    assert_eq!(g.count(Checkpoint::Accept), 1);
    assert_eq!(g.count(Checkpoint::Secured), 0, "no handshake was run");
}

#[tokio::test]
async fn secured_and_upgraded_checkpoints_refuse_on_both_sides() {
    for at in [Checkpoint::Secured, Checkpoint::Upgraded] {
        let (ka, kb) = (Keypair::generate_secp256k1(), Keypair::generate_secp256k1());
        let g = Counting::deny(at);
        let (ua, ub) = (upgrader(&ka, Arc::new(AllowAll)), upgrader(&kb, g.clone()));
        let (mut l, addr) = listener().await;
        let server = tokio::spawn(async move { ub.accept(l.accept().await.unwrap()).await });
        let client = ua.dial(&TcpTransport::default(), addr).await;
        let err = server.await.unwrap().unwrap_err();
        assert!(
            matches!(err, UpgradeError::Denied { checkpoint, .. } if checkpoint == at),
            "{err:?}"
        );
        assert_eq!(g.count(Checkpoint::Accept), 1);
        assert_eq!(g.count(Checkpoint::Secured), 1);
        assert_eq!(
            g.count(Checkpoint::Upgraded),
            usize::from(at == Checkpoint::Upgraded)
        );
        // The dialer may have finished its side, but the connection is dead.
        if let Ok(c) = client {
            let opened = async {
                let mut s = c.muxer.open().await?;
                s.write_all(b"x")
                    .await
                    .map_err(|_| plexus_core::MuxError::Closed)?;
                let mut b = [0u8; 1];
                match s.read(&mut b).await {
                    Ok(0) | Err(_) => Err(plexus_core::MuxError::Closed),
                    Ok(_) => Ok(()),
                }
            };
            assert!(
                opened.await.is_err(),
                "a refused connection must not carry data"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn silent_remote_times_out_each_step() {
    let k = Keypair::generate_secp256k1();
    let limits = Limits::default();
    let u = upgrader(&k, Arc::new(AllowAll));
    let elapsed = |since: tokio::time::Instant| since.elapsed();

    // Responder, the remote never says anything: closed at the header
    // deadline, not at the negotiation timeout.
    let (a, _b) = tokio::io::duplex(1024);
    let start = tokio::time::Instant::now();
    let err = u.upgrade_inbound(pipe_raw(a)).await.unwrap_err();
    assert!(
        matches!(err, UpgradeError::Timeout(Step::Header)),
        "{err:?}"
    );
    assert_eq!(elapsed(start), limits.inbound_header_timeout);
    assert_eq!(err.blame(), Blame::Local);

    // The header arrives at once, then nothing: the negotiation timeout.
    let (a, mut b) = tokio::io::duplex(1024);
    b.write_all(b"\x13/multistream/1.0.0\n").await.unwrap();
    let start = tokio::time::Instant::now();
    let err = u.upgrade_inbound(pipe_raw(a)).await.unwrap_err();
    assert!(
        matches!(err, UpgradeError::Timeout(Step::SecurityNegotiation)),
        "{err:?}"
    );
    assert_eq!(elapsed(start), limits.negotiation_timeout);

    // Header, `/noise`, then no Noise message: the per-message deadline.
    let (a, mut b) = tokio::io::duplex(1024);
    b.write_all(b"\x13/multistream/1.0.0\n\x07/noise\n")
        .await
        .unwrap();
    let start = tokio::time::Instant::now();
    let err = u.upgrade_inbound(pipe_raw(a)).await.unwrap_err();
    assert!(
        matches!(err, UpgradeError::Timeout(Step::SecurityMessage)),
        "{err:?}"
    );
    assert_eq!(elapsed(start), limits.handshake_message_timeout);

    // Initiator: the lazy proposal and Noise msg1 go out; nothing comes back.
    let (a, _b) = tokio::io::duplex(1024);
    let start = tokio::time::Instant::now();
    let err = u.upgrade_outbound(pipe_raw(a), None).await.unwrap_err();
    assert!(
        matches!(err, UpgradeError::Timeout(Step::SecurityMessage)),
        "{err:?}"
    );
    assert_eq!(elapsed(start), limits.handshake_message_timeout);

    // With a per-message deadline longer than the whole handshake's, the
    // latter ends it.
    let long = Limits {
        handshake_message_timeout: Duration::from_secs(60),
        ..Limits::default()
    };
    let u = upgrader_with(&k, Arc::new(AllowAll), long.clone());
    let (a, _b) = tokio::io::duplex(1024);
    let start = tokio::time::Instant::now();
    let err = u.upgrade_outbound(pipe_raw(a), None).await.unwrap_err();
    assert!(
        matches!(err, UpgradeError::Timeout(Step::SecurityHandshake)),
        "{err:?}"
    );
    assert_eq!(elapsed(start), long.security_timeout);
}

#[tokio::test(start_paused = true)]
async fn a_header_trickled_slower_than_its_deadline_is_cut_there() {
    let k = Keypair::generate_secp256k1();
    let limits = Limits::default();
    let u = upgrader(&k, Arc::new(AllowAll));
    let (a, mut b) = tokio::io::duplex(1024);
    tokio::spawn(async move {
        for byte in b"\x13/multistream/1.0.0\n" {
            if b.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        // Keep the pipe open.
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    let start = tokio::time::Instant::now();
    let err = u.upgrade_inbound(pipe_raw(a)).await.unwrap_err();
    assert!(
        matches!(err, UpgradeError::Timeout(Step::Header)),
        "{err:?}"
    );
    assert_eq!(start.elapsed(), limits.inbound_header_timeout);
}

/// Records the stages an upgrade enters; stops it at `stop_at`.
#[derive(Default)]
struct Recorder {
    seen: Mutex<Vec<Stage>>,
    stop_at: Option<Stage>,
}

impl UpgradeObserver for Recorder {
    fn enter(&self, stage: Stage) -> bool {
        self.seen.lock().unwrap().push(stage);
        self.stop_at != Some(stage)
    }
}

#[tokio::test]
async fn the_observer_sees_each_stage_and_can_stop_an_unsecured_upgrade() {
    let (kl, kd) = (Keypair::generate_ed25519(), Keypair::generate_ed25519());
    let listener = upgrader(&kl, Arc::new(AllowAll));
    let dialer = upgrader(&kd, Arc::new(AllowAll));

    // An honest upgrade: every stage after admission, in order.
    let rec = Recorder::default();
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (inbound, outbound) = tokio::join!(
        listener.upgrade_inbound_observed(pipe_raw(a), &rec),
        dialer.upgrade_outbound(pipe_raw(b), None)
    );
    inbound.unwrap();
    outbound.unwrap();
    assert_eq!(
        *rec.seen.lock().unwrap(),
        [Stage::Negotiating, Stage::Securing, Stage::Muxing]
    );

    // Stopped when entering the security handshake: no Noise work, and the
    // dialer's handshake fails.
    let rec = Recorder {
        stop_at: Some(Stage::Securing),
        ..Recorder::default()
    };
    let (a, b) = tokio::io::duplex(64 * 1024);
    let (inbound, outbound) = tokio::join!(
        listener.upgrade_inbound_observed(pipe_raw(a), &rec),
        dialer.upgrade_outbound(pipe_raw(b), None)
    );
    let err = inbound.unwrap_err();
    assert!(matches!(err, UpgradeError::Stopped), "{err:?}");
    assert_eq!(err.blame(), Blame::Local);
    assert!(outbound.is_err());
    assert_eq!(
        *rec.seen.lock().unwrap(),
        [Stage::Negotiating, Stage::Securing]
    );
}

#[tokio::test]
async fn garbage_instead_of_multistream_is_blamed_on_the_peer() {
    let k = Keypair::generate_secp256k1();
    let u = upgrader(&k, Arc::new(AllowAll));
    let (a, mut b) = tokio::io::duplex(4096);
    b.write_all(b"\x05GET /\n").await.unwrap();
    let raw = RawConn {
        io: Box::new(a),
        local_addr: "/ip4/127.0.0.1/tcp/1".parse().unwrap(),
        remote_addr: "/ip4/127.0.0.1/tcp/2".parse().unwrap(),
    };
    let err = u
        .upgrade_inbound(TransportConn::Raw(raw))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            UpgradeError::Negotiation {
                step: Step::SecurityNegotiation,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
}

/// A connection as a transport that secures and multiplexes itself (QUIC) hands it over:
/// here a yamux connection over an in-memory pipe, claiming to be `peer`.
fn ready(peer: &Keypair, io: tokio::io::DuplexStream) -> TransportConn {
    let muxer = YamuxConfig::default().start(Box::new(io), plexus_core::Role::Initiator);
    TransportConn::Ready(Box::new(plexus_core::ReadyConn {
        peer: peer.public().to_peer_id(),
        public_key: peer.public(),
        muxer,
        security: "/tls/1.0.0",
        muxer_name: "/quic-v1",
        local_addr: "/ip4/127.0.0.1/udp/1/quic-v1".parse().unwrap(),
        remote_addr: "/ip4/127.0.0.1/udp/2/quic-v1".parse().unwrap(),
    }))
}

#[tokio::test]
async fn a_connection_the_transport_secured_is_checked_and_gated_not_upgraded_again() {
    let (k, remote) = (Keypair::generate_ed25519(), Keypair::generate_secp256k1());
    let u = upgrader(&k, Arc::new(AllowAll));
    // Admitted as it is: no multistream, no Noise; the names come from the transport.
    let (a, _b) = tokio::io::duplex(4096);
    let rec = Recorder::default();
    let c = u
        .upgrade_inbound_observed(ready(&remote, a), &rec)
        .await
        .unwrap();
    assert_eq!(c.info.peer, remote.public().to_peer_id());
    assert_eq!(c.info.direction, Direction::Inbound);
    assert_eq!((c.info.security, c.info.muxer), ("/tls/1.0.0", "/quic-v1"));
    assert_eq!(
        *rec.seen.lock().unwrap(),
        [Stage::Muxing],
        "already secured"
    );
    // Dialed as someone else: the mismatch, as after a Noise handshake.
    let (a, _b) = tokio::io::duplex(4096);
    let other = Keypair::generate_ed25519().public().to_peer_id();
    let err = u
        .upgrade_outbound(ready(&remote, a), Some(other))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            UpgradeError::Security(SecurityError::PeerIdMismatch { .. })
        ),
        "{err:?}"
    );
    // Both checkpoints after authentication apply.
    for at in [Checkpoint::Secured, Checkpoint::Upgraded] {
        let gater = Counting::deny(at);
        let u = upgrader(&k, gater.clone());
        let (a, _b) = tokio::io::duplex(4096);
        let err = u
            .upgrade_outbound(ready(&remote, a), None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, UpgradeError::Denied { checkpoint, .. } if checkpoint == at),
            "{err:?}"
        );
        assert_eq!(gater.count(Checkpoint::Secured), 1);
        assert_eq!(
            gater.count(Checkpoint::Upgraded),
            usize::from(at == Checkpoint::Upgraded)
        );
    }
}
