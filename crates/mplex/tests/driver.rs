//! The real tokio driver over an in-memory duplex pipe.

use std::io;
use std::time::Duration;

use plexus_core::{
    Blame, MuxError, MuxLimits, MuxStats, MuxedConn, MuxedStream, MuxerUpgrade, Role,
};
use plexus_mplex::{
    Config, ConnError, Connection, MplexConfig, PROTOCOL, ResetReason, StreamError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: Duration = Duration::from_secs(30);

fn pair_with(a: MplexConfig, b: MplexConfig) -> (Connection, Connection) {
    let (x, y) = tokio::io::duplex(256 * 1024);
    (a.connect(x), b.connect(y))
}

fn pair() -> (Connection, Connection) {
    pair_with(MplexConfig::default(), MplexConfig::default())
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

fn stats(c: &Connection) -> MuxStats {
    MuxedConn::stats(c)
}

/// The `StreamError` inside an `io::Error` from a stream handle.
fn stream_error(e: &io::Error) -> Option<StreamError> {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<StreamError>())
        .cloned()
}

async fn settle(conns: &[&Connection]) {
    for _ in 0..200 {
        if conns.iter().all(|c| stats(c) == MuxStats::default()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn reset_is_an_io_error_with_its_reason() {
    timed(async {
        let (a, b) = pair();
        let mut s = a.open_stream().await.unwrap();
        s.write_all(b"x").await.unwrap();
        let mut r = b.accept_stream().await.unwrap();
        let mut one = [0u8; 1];
        r.read_exact(&mut one).await.unwrap();
        MuxedStream::reset(&mut s);
        let err = r.read(&mut one).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(
            stream_error(&err),
            Some(StreamError::Reset(ResetReason::Remote))
        );
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

/// A reader that stops reading: input blocks for `max_block` (virtual
/// time), then its stream is reset and the other stream carries on.
#[tokio::test(start_paused = true)]
async fn a_reader_that_never_reads_is_reset_after_max_block_and_the_rest_carries_on() {
    timed(async {
        let cfg = Config {
            max_buffer_per_stream: 64 * 1024,
            ..Config::default()
        };
        let max_block = cfg.max_block;
        assert_eq!(max_block, Duration::from_secs(5));
        let (a, b) = pair_with(
            MplexConfig::default(),
            MplexConfig::new(cfg, MuxLimits::default()),
        );
        let mut slow = a.open_stream().await.unwrap();
        let mut other = a.open_stream().await.unwrap();
        slow.write_all(b"first").await.unwrap();
        let mut slow_r = b.accept_stream().await.unwrap();
        let mut other_r = b.accept_stream().await.unwrap();
        // b never reads `slow`: a keeps writing until it learns of the reset,
        // which takes max_block (b's input is blocked until then).
        let start = tokio::time::Instant::now();
        let chunk = vec![7u8; 16 * 1024];
        let err = loop {
            if let Err(e) = slow.write_all(&chunk).await {
                break e;
            }
            tokio::task::yield_now().await;
        };
        let waited = start.elapsed();
        assert!(
            waited >= max_block && waited < max_block + Duration::from_secs(1),
            "reset after max_block, not before: {waited:?}"
        );
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
        assert_eq!(
            stream_error(&err),
            Some(StreamError::Reset(ResetReason::Remote))
        );
        // b's reader gets what was buffered, then the typed reason.
        let mut got = Vec::new();
        let err = slow_r.read_to_end(&mut got).await.unwrap_err();
        assert!(got.starts_with(b"first") && got.len() <= 64 * 1024);
        assert_eq!(
            stream_error(&err),
            Some(StreamError::Reset(ResetReason::BufferOverflow {
                limit: 64 * 1024
            }))
        );
        // The other stream and the connection are fine.
        other.write_all(b"still here").await.unwrap();
        other.shutdown().await.unwrap();
        let mut msg = Vec::new();
        other_r.read_to_end(&mut msg).await.unwrap();
        assert_eq!(msg, b"still here");
        assert!(!a.is_closed() && !b.is_closed());
    })
    .await;
}

/// 64 MiB on one stream to a reader that takes 8 KiB per virtual
/// millisecond: input blocks again and again (64 KiB frames wait for eight
/// reads) but never for `max_block`, so everything arrives byte-exact, with
/// no reset and bounded buffers.
#[tokio::test(start_paused = true)]
async fn sixty_four_mib_to_a_slow_reader_byte_exact() {
    const TOTAL: usize = 64 << 20;
    const CHUNK: usize = 1 << 20;
    timed(async {
        let (a, b) = pair();
        let mut s = a.open_stream().await.unwrap();
        let writer = tokio::spawn(async move {
            for i in 0..TOTAL / CHUNK {
                s.write_all(&pattern_at(i * CHUNK, CHUNK)).await.unwrap();
            }
            s.shutdown().await.unwrap();
            let mut ack = [0u8; 8];
            s.read_exact(&mut ack).await.unwrap();
            u64::from_be_bytes(ack)
        });
        let b = std::sync::Arc::new(b);
        let b2 = b.clone();
        let reader = tokio::spawn(async move {
            let mut r = b2.accept_stream().await.unwrap();
            let mut buf = vec![0u8; 8 * 1024];
            let mut got = 0;
            let mut max_buffered = 0;
            let mut blocked_seen = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                max_buffered = max_buffered.max(stats(&b2).buffered_bytes);
                blocked_seen += usize::from(b2.with_core(|c| c.is_read_blocked()));
                let n = r.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                assert!(
                    buf[..n] == pattern_at(got, n)[..],
                    "byte-exact at offset {got}"
                );
                got += n;
            }
            assert!(max_buffered <= Config::default().max_buffer_per_stream);
            assert!(
                blocked_seen > 100,
                "input blocked on the reader: {blocked_seen}"
            );
            r.write_all(&(got as u64).to_be_bytes()).await.unwrap();
            r.shutdown().await.unwrap();
            got
        });
        assert_eq!(reader.await.unwrap(), TOTAL);
        assert_eq!(writer.await.unwrap(), TOTAL as u64);
        settle(&[&a, &b]).await;
        assert_eq!(stats(&a), MuxStats::default());
        assert_eq!(stats(&b), MuxStats::default());
        assert!(!a.is_closed() && !b.is_closed());
    })
    .await;
}

/// Idle connections hold no I/O buffers: none at the start, none after
/// traffic (both ways); while input is blocked on a slow reader the blocked
/// side keeps the frame left in its read buffer, the sender (all written)
/// holds none.
#[tokio::test(start_paused = true)]
async fn an_idle_connection_holds_no_io_buffers() {
    // Virtual time: a sleep returns once every task is idle.
    async fn idle() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    timed(async {
        let cfg = Config {
            max_buffer_per_stream: 64 * 1024,
            ..Config::default()
        };
        let (a, b) = pair_with(
            MplexConfig::default(),
            MplexConfig::new(cfg, MuxLimits::default()),
        );
        idle().await;
        assert!(!a.holds_io_buffers(), "fresh connection");
        assert!(!b.holds_io_buffers(), "fresh connection");

        // More than b's stream buffer takes: b blocks, a frame left unread.
        let data = pattern(3, 256 * 1024);
        let mut s = a.open_stream().await.unwrap();
        s.write_all(&data).await.unwrap();
        let mut r = b.accept_stream().await.unwrap();
        idle().await;
        assert!(b.with_core(|c| c.is_read_blocked()));
        assert!(b.holds_io_buffers(), "the blocked frame stays buffered");
        assert!(!a.holds_io_buffers(), "everything sent");

        // The reader catches up; b answers; both go idle again.
        let mut got = vec![0u8; data.len()];
        r.read_exact(&mut got).await.unwrap();
        assert!(got == data, "byte-exact");
        r.write_all(b"thanks").await.unwrap();
        let mut ack = [0u8; 6];
        s.read_exact(&mut ack).await.unwrap();
        assert_eq!(&ack, b"thanks");
        idle().await;
        assert!(!b.with_core(|c| c.is_read_blocked()));
        assert!(!a.holds_io_buffers(), "idle after traffic");
        assert!(!b.holds_io_buffers(), "idle after traffic");
        assert!(!a.is_closed() && !b.is_closed());
    })
    .await;
}

/// `len` bytes of a position-keyed pattern starting at `offset`.
fn pattern_at(offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len)
        .map(|i| (i as u32).wrapping_mul(131).wrapping_add(i as u32 >> 16) as u8)
        .collect()
}

#[tokio::test]
async fn accept_backlog_overflow_resets_the_excess() {
    timed(async {
        let limits = MuxLimits {
            max_accept_backlog: 4,
            ..MuxLimits::default()
        };
        let (a, b) = pair_with(
            MplexConfig::default(),
            MplexConfig::new(Config::default(), limits),
        );
        let mut streams = Vec::new();
        for i in 0..10u8 {
            let mut s = a.open_stream().await.unwrap();
            s.write_all(&[i]).await.unwrap();
            streams.push(s);
        }
        for s in streams.iter_mut().skip(4) {
            let mut one = [0u8; 1];
            let e = s.read(&mut one).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::ConnectionReset);
        }
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
        let a = MplexConfig::default().connect(x);
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
            Err(MuxError::Failed { blame, .. }) => assert_eq!(blame, Blame::Local),
            other => panic!("{other:?}"),
        }
    })
    .await;
}

#[tokio::test]
async fn muxer_upgrade_seam_and_stats() {
    timed(async {
        let cfg = MplexConfig::default();
        assert_eq!(cfg.protocol(), PROTOCOL);
        assert_eq!(PROTOCOL, "/mplex/6.7.0");
        let (x, y) = tokio::io::duplex(64 * 1024);
        let a = cfg.start(Box::new(x), Role::Initiator);
        let b = cfg.start(Box::new(y), Role::Responder);
        let mut s = a.open().await.unwrap();
        s.write_all(b"ping").await.unwrap();
        // Wait until b has it buffered, not yet accepted.
        while b.stats().pending_accepts == 0 || b.stats().buffered_bytes < 4 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(
            b.stats(),
            MuxStats {
                open_streams: 1,
                buffered_bytes: 4,
                pending_opens: 0,
                pending_accepts: 1
            }
        );
        let mut r = b.accept().await.unwrap();
        let mut buf = [0u8; 4];
        r.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ping");
        assert_eq!(b.stats().buffered_bytes, 0);
        assert_eq!(b.stats().pending_accepts, 0);
        assert_eq!(a.stats().open_streams, 1);
    })
    .await;
}

#[tokio::test]
async fn peer_violation_reaches_streams_and_accept_with_blame() {
    timed(async {
        let (x, mut raw) = tokio::io::duplex(64 * 1024);
        let a = MplexConfig::default().connect(x);
        let mut s = a.open_stream().await.unwrap();
        s.write_all(b"hi").await.unwrap();
        // The raw peer reads NewStream(0) and the data, then sends flag 7.
        let mut seen = [0u8; 2 + 4];
        raw.read_exact(&mut seen).await.unwrap();
        assert_eq!(seen, [0x00, 0x00, 0x02, 0x02, b'h', b'i']);
        raw.write_all(&[0x07, 0x00]).await.unwrap();
        let mut buf = [0u8; 1];
        let e = s.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::ConnectionAborted);
        let inner = e
            .get_ref()
            .and_then(|e| e.downcast_ref::<ConnError>())
            .cloned();
        assert_eq!(
            inner,
            Some(ConnError::Frame(
                plexus_mplex::frame::FrameError::InvalidFlag(7)
            ))
        );
        match a.accept_stream().await {
            Err(MuxError::Failed { blame, .. }) => assert_eq!(blame, Blame::PeerMisbehaved),
            other => panic!("{other:?}"),
        }
        // The transport is shut down: the peer reads end-of-file.
        let mut rest = Vec::new();
        raw.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
        assert!(MuxedConn::is_closed(&a));
    })
    .await;
}

/// Raw mplex `NewStream` frames for the remote's streams `ids`.
fn new_streams(ids: std::ops::Range<u64>) -> Vec<u8> {
    use plexus_mplex::frame::{Flag, Header};
    let mut b = bytes::BytesMut::new();
    for id in ids {
        Header::new(id, Flag::NewStream, 0).encode_into(&mut b);
    }
    b.to_vec()
}

/// The ids of the resets in `bytes` (whole frames only).
fn resets(mut bytes: &[u8]) -> Vec<u64> {
    use plexus_mplex::frame::{Flag, Header, MAX_FRAME_SIZE};
    let mut out = Vec::new();
    while let Ok(Some((h, n))) = Header::decode(bytes, MAX_FRAME_SIZE) {
        if bytes.len() < n + h.len as usize {
            break;
        }
        bytes = &bytes[n + h.len as usize..];
        if h.flag == Flag::ResetReceiver {
            out.push(h.stream_id);
        }
    }
    out
}

#[tokio::test]
async fn a_burst_of_refused_streams_from_a_peer_that_reads_is_answered_not_punished() {
    timed(async {
        let (x, raw) = tokio::io::duplex(64 * 1024);
        let conn = MplexConfig::default().connect(x);
        let backlog = MuxLimits::default().max_accept_backlog as u64;
        // 5,000 NewStreams in one write: 4,744 refusals, more than the 1,024
        // resets the core may owe at once.
        let got = plexus_testkit::muxer::burst_from_a_reading_peer(
            &conn,
            raw,
            new_streams(0..5000),
            |b| resets(b).len() == (5000 - backlog) as usize,
        )
        .await;
        assert_eq!(resets(&got), (backlog..5000).collect::<Vec<_>>());
        assert_eq!(conn.with_core(|c| c.error().cloned()), None);
        assert_eq!(stats(&conn).pending_accepts, backlog as usize);
    })
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_flooding_peer_that_never_reads_is_closed_with_the_reason() {
    let (x, raw) = tokio::io::duplex(64 * 1024);
    let conn = MplexConfig::default().connect(x);
    let stall = Config::default().control_stall_timeout;
    let backlog = MuxLimits::default().max_accept_backlog as u64;
    // Stream openings beyond the backlog, forever, never reading.
    let chunk = new_streams(backlog..backlog + 100_000);
    let flood = plexus_testkit::muxer::flood_without_reading(&conn, raw, chunk, 64 << 20).await;
    flood.assert_stalled(
        "remote read nothing for 10s while owed 1024 control frames",
        stall,
        4 << 20,
    );
}
