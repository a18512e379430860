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

fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(131)
                .wrapping_add(seed.wrapping_mul(17)) as u8
        })
        .collect()
}

async fn timed<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(LIMIT, f)
        .await
        .expect("test timed out")
}

#[tokio::test]
async fn sixteen_mib_on_one_stream_byte_exact() {
    timed(async {
        let (a, b) = pair();
        let data = pattern(1, 16 << 20);
        let want = data.clone();
        let writer = tokio::spawn(async move {
            let mut s = a.open_stream().await.unwrap();
            s.write_all(&data).await.unwrap();
            s.shutdown().await.unwrap();
            // Read the 8-byte ack so the connection outlives the transfer.
            let mut ack = [0u8; 8];
            s.read_exact(&mut ack).await.unwrap();
            (a, u64::from_be_bytes(ack))
        });
        let mut s = b.accept_stream().await.unwrap();
        let mut got = Vec::with_capacity(want.len());
        s.read_to_end(&mut got).await.unwrap();
        assert!(got == want, "byte-exact transfer");
        s.write_all(&(got.len() as u64).to_be_bytes())
            .await
            .unwrap();
        s.shutdown().await.unwrap();
        let (a, n) = writer.await.unwrap();
        assert_eq!(n, 16 << 20);
        drop(s);
        a.close_conn().await;
        assert!(a.driver_finished());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_parallel_streams_echo_byte_exact() {
    timed(async {
        let (a, b) = pair();
        let server = tokio::spawn(async move {
            let mut tasks = Vec::new();
            for _ in 0..100 {
                let mut s = b.accept_stream().await.unwrap();
                tasks.push(tokio::spawn(async move {
                    let mut buf = Vec::new();
                    s.read_to_end(&mut buf).await.unwrap();
                    s.write_all(&buf).await.unwrap();
                    s.shutdown().await.unwrap();
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            b
        });
        let a = std::sync::Arc::new(a);
        let mut clients = Vec::new();
        for i in 0..100u32 {
            let a = a.clone();
            clients.push(tokio::spawn(async move {
                let data = pattern(i, 64 * 1024);
                let mut s = a.open_stream().await.unwrap();
                let (mut r, mut w) = tokio::io::split(&mut s);
                let send = async {
                    w.write_all(&data).await.unwrap();
                    w.shutdown().await.unwrap();
                };
                let mut back = Vec::new();
                let recv = r.read_to_end(&mut back);
                let ((), n) = tokio::join!(send, recv);
                n.unwrap();
                assert!(back == data, "stream {i} echoed byte-exact");
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
        let b = server.await.unwrap();
        // Every stream closed cleanly on both sides: nothing left.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            a.with_core(|c| (c.num_streams(), c.buffered_bytes(), c.ack_backlog())),
            (0, 0, 0)
        );
        assert_eq!(
            b.with_core(|c| (c.num_streams(), c.buffered_bytes(), c.pending_accepts())),
            (0, 0, 0)
        );
    })
    .await;
}

#[tokio::test]
async fn half_close_lets_the_other_side_answer() {
    timed(async {
        let (a, b) = pair();
        let mut s = a.open_stream().await.unwrap();
        s.write_all(b"request").await.unwrap();
        s.shutdown().await.unwrap();
        assert_eq!(
            s.write_all(b"x").await.unwrap_err().kind(),
            io::ErrorKind::BrokenPipe
        );
        let mut r = b.accept_stream().await.unwrap();
        let mut req = Vec::new();
        r.read_to_end(&mut req).await.unwrap();
        assert_eq!(req, b"request");
        r.write_all(b"response").await.unwrap();
        r.shutdown().await.unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).await.unwrap();
        assert_eq!(resp, b"response");
    })
    .await;
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
async fn dropping_after_shutdown_still_delivers() {
    timed(async {
        let (a, b) = pair();
        let data = pattern(9, 3 << 20);
        let want = data.clone();
        let mut s = a.open_stream().await.unwrap();
        let writer = tokio::spawn(async move {
            s.write_all(&data).await.unwrap();
            s.shutdown().await.unwrap();
            drop(s);
        });
        let mut r = b.accept_stream().await.unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert!(got == want);
        drop(r);
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(a.with_core(|c| c.num_streams()), 0);
        assert_eq!(b.with_core(|c| c.num_streams()), 0);
    })
    .await;
}

#[tokio::test]
async fn close_is_seen_by_the_remote_and_ends_both_drivers() {
    timed(async {
        let (a, b) = pair();
        let conn: Box<dyn MuxedConn> = Box::new(a);
        let mut s = conn.open().await.unwrap();
        s.write_all(b"bye").await.unwrap();
        s.shutdown().await.unwrap();
        conn.close().await;
        assert!(conn.is_closed());
        assert!(matches!(conn.open().await, Err(MuxError::Closed)));
        // b still gets the stream opened before the close, then learns of it.
        let mut r = b.accept_stream().await.unwrap();
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"bye");
        let e = b.accept_stream().await.unwrap_err();
        assert!(matches!(e, MuxError::GoAway(0) | MuxError::Closed), "{e:?}");
        while !b.driver_finished() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(b.is_closed());
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
