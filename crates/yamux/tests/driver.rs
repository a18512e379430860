//! The real tokio driver over an in-memory duplex pipe.

use std::io;
use std::time::Duration;

use plexus_core::{MuxError, MuxLimits, MuxedConn, MuxerUpgrade, Role};
use plexus_yamux::{Config, Connection, PROTOCOL, YamuxConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(30);

fn pair_with(a: YamuxConfig, b: YamuxConfig) -> (Connection, Connection) {
    let (x, y) = tokio::io::duplex(256 * 1024);
    (a.connect(x, Role::Initiator), b.connect(y, Role::Responder))
}

fn pair() -> (Connection, Connection) {
    pair_with(YamuxConfig::default(), YamuxConfig::default())
}

async fn timed<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test timed out")
}

#[tokio::test]
async fn reset_is_an_io_error_on_the_other_side() {
    timed(async {
        let (a, b) = pair();
        let mut s = a.open_stream().await.unwrap();
        s.write_all(b"x").await.unwrap();
        let mut r = b.accept_stream().await.unwrap();
        let mut one = [0u8; 1];
        r.read_exact(&mut one).await.unwrap();
        plexus_core::MuxedStream::reset(&mut s);
        let err = r.read(&mut one).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        let err = r.write_all(b"y").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        // Dropping an open stream resets it too.
        let mut s2 = a.open_stream().await.unwrap();
        s2.write_all(b"z").await.unwrap();
        let mut r2 = b.accept_stream().await.unwrap();
        r2.read_exact(&mut one).await.unwrap();
        drop(s2);
        assert_eq!(
            r2.read(&mut one).await.unwrap_err().kind(),
            io::ErrorKind::ConnectionReset
        );
    })
    .await;
}

#[tokio::test]
async fn accept_backlog_overflow_resets_the_excess() {
    timed(async {
        let limits = MuxLimits {
            max_accept_backlog: 4,
            ..MuxLimits::default()
        };
        let (a, b) = pair_with(
            YamuxConfig::default(),
            YamuxConfig::new(Config::default(), limits),
        );
        let mut streams = Vec::new();
        for i in 0..10u8 {
            let mut s = a.open_stream().await.unwrap();
            s.write_all(&[i]).await.unwrap();
            streams.push(s);
        }
        // The first four wait in b's backlog; the other six are reset.
        let mut reset = 0;
        for s in streams.iter_mut().skip(4) {
            let mut one = [0u8; 1];
            let e = s.read(&mut one).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
            reset += 1;
        }
        assert_eq!(reset, 6);
        for i in 0..4u8 {
            let mut r = b.accept_stream().await.unwrap();
            let mut one = [0u8; 1];
            r.read_exact(&mut one).await.unwrap();
            assert_eq!(one[0], i);
        }
        assert!(!b.is_closed() && !a.is_closed());
    })
    .await;
}

#[tokio::test]
async fn transport_failure_reaches_streams_and_accept() {
    timed(async {
        let (x, y) = tokio::io::duplex(1024);
        let a = YamuxConfig::default().connect(x, Role::Initiator);
        let mut s = a.open_stream().await.unwrap();
        s.write_all(b"x").await.unwrap();
        drop(y); // the remote vanishes
        let mut buf = [0u8; 1];
        let e = s.read(&mut buf).await.unwrap_err();
        assert!(
            matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe
            ),
            "{e:?}"
        );
        match a.accept_stream().await {
            Err(MuxError::Failed { blame, .. }) => assert_eq!(blame, plexus_core::Blame::Local),
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn muxer_upgrade_seam() {
    timed(async {
        let cfg = YamuxConfig::default();
        assert_eq!(cfg.protocol(), PROTOCOL);
        assert_eq!(PROTOCOL, "/yamux/1.0.0");
        let (x, y) = tokio::io::duplex(64 * 1024);
        let a = cfg.start(Box::new(x), Role::Initiator);
        let b = cfg.start(Box::new(y), Role::Responder);
        let mut s = a.open().await.unwrap();
        s.write_all(b"ping").await.unwrap();
        let mut r = b.accept().await.unwrap();
        let mut buf = [0u8; 4];
        r.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn silent_peer_is_dropped_by_ping_timeout() {
    // The remote end is held open but never read: our pings go unanswered.
    let (x, _y) = tokio::io::duplex(64 * 1024);
    let a = YamuxConfig::default().connect(x, Role::Initiator);
    let e = tokio::time::timeout(Duration::from_secs(60), a.accept_stream())
        .await
        .unwrap()
        .unwrap_err();
    match e {
        MuxError::Failed { blame, source } => {
            assert_eq!(blame, plexus_core::Blame::Local);
            assert!(source.to_string().contains("ping"), "{source}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn peer_violation_reaches_streams_and_accept_with_blame() {
    timed(async {
        let (x, mut raw) = tokio::io::duplex(64 * 1024);
        let a = YamuxConfig::default().connect(x, Role::Initiator);
        let mut s = a.open_stream().await.unwrap();
        s.write_all(b"hi").await.unwrap();
        // The raw peer reads our ping and SYN+data, then sends a data frame
        // far beyond the window for our stream 1.
        let mut seen = vec![0u8; 12 + 12 + 2];
        raw.read_exact(&mut seen).await.unwrap();
        let mut bad = Vec::new();
        bad.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 1]); // Data, ACK, stream 1
        bad.extend_from_slice(&(1u32 << 30).to_be_bytes());
        raw.write_all(&bad).await.unwrap();
        let mut buf = [0u8; 1];
        let e = s.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted);
        let inner = e
            .get_ref()
            .and_then(|e| e.downcast_ref::<plexus_yamux::ConnError>())
            .cloned();
        assert!(
            matches!(
                inner,
                Some(plexus_yamux::ConnError::WindowExceeded { stream: 1, .. })
            ),
            "{inner:?}"
        );
        match a.accept_stream().await {
            Err(MuxError::Failed { blame, .. }) => {
                assert_eq!(blame, plexus_core::Blame::PeerMisbehaved)
            }
            other => panic!("{other:?}"),
        }
        // The peer is told: GoAway(protocol error), then the transport ends.
        let mut rest = Vec::new();
        raw.read_to_end(&mut rest).await.unwrap();
        assert_eq!(rest, [0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert!(a.is_closed());
    })
    .await;
}

/// A raw yamux peer's burst: `pings` pings, then `syns` stream openings
/// (odd ids, as the dialer) that the listener refuses beyond its backlog.
fn burst(pings: u32, syns: u32) -> Vec<u8> {
    use plexus_yamux::frame::{Flags, Header};
    let mut b = bytes::BytesMut::new();
    for i in 0..pings {
        Header::ping(i).encode_into(&mut b);
    }
    for i in 0..syns {
        Header::window_update(2 * i + 1, Flags::SYN, 0).encode_into(&mut b);
    }
    b.to_vec()
}

/// The pong values and the RST count in `bytes` (whole frames only).
fn answers(mut bytes: &[u8]) -> (Vec<u32>, usize) {
    use plexus_yamux::frame::{Flags, FrameType, HEADER_LEN, Header};
    let (mut pongs, mut rsts) = (Vec::new(), 0);
    while let Some(head) = bytes.first_chunk::<HEADER_LEN>() {
        let h = Header::decode(head).expect("valid frame");
        let body = if h.ty == FrameType::Data {
            h.length as usize
        } else {
            0
        };
        if bytes.len() < HEADER_LEN + body {
            break;
        }
        bytes = &bytes[HEADER_LEN + body..];
        match h.ty {
            FrameType::Ping if h.flags == Flags::ACK => pongs.push(h.length),
            FrameType::WindowUpdate if h.flags.contains(Flags::RST) => rsts += 1,
            _ => {}
        }
    }
    (pongs, rsts)
}

#[tokio::test]
async fn bursts_from_a_peer_that_reads_are_answered_not_punished() {
    timed(async {
        let (x, raw) = tokio::io::duplex(64 * 1024);
        let conn = YamuxConfig::default().connect(x, Role::Responder);
        let refused = 5000 - MuxLimits::default().max_accept_backlog;
        // 1,025 pings (12 KB) and 5,000 SYNs in one write: more than the
        // 1,024 control frames the core may owe at once.
        let got =
            plexus_testkit::muxer::burst_from_a_reading_peer(&conn, raw, burst(1025, 5000), |b| {
                let (p, r) = answers(b);
                p.len() == 1025 && r == refused
            })
            .await;
        let (pongs, _) = answers(&got);
        assert_eq!(
            pongs,
            (0..1025).collect::<Vec<_>>(),
            "every ping answered, in order"
        );
        assert_eq!(conn.with_core(|c| c.error().cloned()), None);
        assert_eq!(
            conn.stats().pending_accepts,
            MuxLimits::default().max_accept_backlog
        );
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_flooding_peer_that_never_reads_is_closed_with_the_reason() {
    let (x, raw) = tokio::io::duplex(64 * 1024);
    let conn = YamuxConfig::default().connect(x, Role::Responder);
    let stall = Config::default().control_stall_timeout;
    // Pings, forever, never reading a byte: our answers fill the pipe, then
    // the driver's write batch, then the core's control queue; input stops.
    let flood =
        plexus_testkit::muxer::flood_without_reading(&conn, raw, burst(1000, 0), 64 << 20).await;
    flood.assert_stalled(
        "remote read nothing for 10s while owed 1024 control frames",
        stall,
        2 << 20,
    );
}
