//! `NoiseStream`: bulk data, chunking, half-close, flushing and bounded buffering.

use std::io::IoSlice;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use plexus_noise::{MAX_PLAINTEXT_LEN, NoiseStream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};

use super::{PIPE, connect, ed, pattern, secp};

async fn pair() -> (NoiseStream<DuplexStream>, NoiseStream<DuplexStream>) {
    let (a, b) = (secp(), ed());
    let (i, r) = connect(&a, &b, Some(b.local_peer_id()), vec![], vec![]).await;
    (i.unwrap().stream, r.unwrap().stream)
}

/// Write `data` in chunks of varying sizes (from below one byte to several frames), then
/// shut down.
async fn send(mut w: impl AsyncWrite + Unpin, data: &[u8]) {
    let sizes = [
        1,
        1000,
        MAX_PLAINTEXT_LEN,
        MAX_PLAINTEXT_LEN + 1,
        200_000,
        7,
        2 * MAX_PLAINTEXT_LEN,
    ];
    let mut off = 0;
    for size in sizes.iter().cycle() {
        if off == data.len() {
            break;
        }
        let end = (off + size).min(data.len());
        w.write_all(&data[off..end]).await.unwrap();
        off = end;
    }
    w.shutdown().await.unwrap();
}

/// Read to EOF with buffers of varying sizes (smaller and larger than a frame).
async fn recv(mut r: impl AsyncRead + Unpin, expect: usize) -> Vec<u8> {
    let sizes = [3, 4096, 65535, 100_000, 70_000, 17];
    let mut got = Vec::with_capacity(expect);
    let mut buf = vec![0u8; 100_000];
    for size in sizes.iter().cycle() {
        let n = r.read(&mut buf[..*size]).await.unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    got
}

#[tokio::test]
async fn sixteen_mib_each_way_byte_exact() {
    const LEN: usize = 16 << 20;
    let (i, r) = pair().await;
    let (ir, iw) = tokio::io::split(i);
    let (rr, rw) = tokio::io::split(r);
    let up = pattern(LEN, 1);
    let down = pattern(LEN, 2);
    let ((), (), got_up, got_down) =
        tokio::join!(send(iw, &up), send(rw, &down), recv(rr, LEN), recv(ir, LEN));
    assert_eq!(got_up.len(), LEN);
    assert!(got_up == up, "initiator -> responder data differs");
    assert_eq!(got_down.len(), LEN);
    assert!(got_down == down, "responder -> initiator data differs");
}

#[tokio::test]
async fn half_close_keeps_the_other_direction_open() {
    let (mut i, mut r) = pair().await;
    i.write_all(b"last words").await.unwrap();
    i.shutdown().await.unwrap();

    let mut got = Vec::new();
    r.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"last words");
    // EOF stays EOF.
    assert_eq!(r.read(&mut [0u8; 8]).await.unwrap(), 0);

    // The responder can still write, and the initiator still reads.
    let reply = pattern(300_000, 9);
    let ((), back) = tokio::join!(
        async {
            r.write_all(&reply).await.unwrap();
            r.shutdown().await.unwrap();
        },
        async {
            let mut back = Vec::new();
            i.read_to_end(&mut back).await.unwrap();
            back
        }
    );
    assert!(back == reply);
}

fn noop_cx() -> Context<'static> {
    Context::from_waker(Waker::noop())
}

#[tokio::test]
async fn small_writes_wait_for_flush() {
    let (mut i, mut r) = pair().await;
    i.write_all(b"buffered").await.unwrap();
    let mut buf = [0u8; 16];
    let mut rb = ReadBuf::new(&mut buf);
    assert!(
        Pin::new(&mut r)
            .poll_read(&mut noop_cx(), &mut rb)
            .is_pending(),
        "nothing sent before flush"
    );
    i.flush().await.unwrap();
    let n = r.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"buffered");
    // A flush with nothing buffered sends nothing (no empty frame).
    let before = i.framer().sending_nonce();
    i.flush().await.unwrap();
    assert_eq!(i.framer().sending_nonce(), before);
}

#[tokio::test]
async fn empty_write_and_empty_read_buffer() {
    let (mut i, mut r) = pair().await;
    assert_eq!(i.write(&[]).await.unwrap(), 0);
    i.write_all(b"x").await.unwrap();
    i.flush().await.unwrap();
    assert_eq!(
        r.read(&mut []).await.unwrap(),
        0,
        "an empty buffer reads nothing"
    );
    let mut one = [0u8; 1];
    r.read_exact(&mut one).await.unwrap();
    assert_eq!(&one, b"x");
}

#[tokio::test]
async fn vectored_writes_are_gathered_into_frames() {
    let (mut i, mut r) = pair().await;
    assert!(i.is_write_vectored());
    let big = pattern(MAX_PLAINTEXT_LEN + 100, 4);
    let parts: [&[u8]; 4] = [b"head", b"", &big, b"tail"];
    let mut expect = Vec::new();
    for p in parts {
        expect.extend_from_slice(p);
    }
    let mut sent = 0;
    while sent < expect.len() {
        // Rebuild the slices past what was accepted.
        let mut skip = sent;
        let mut slices = Vec::new();
        for p in parts {
            if skip >= p.len() {
                skip -= p.len();
            } else {
                slices.push(IoSlice::new(&p[skip..]));
                skip = 0;
            }
        }
        // Everything fits the stream's own buffers plus the pipe: no reader needed yet.
        let n = i.write_vectored(&slices).await.unwrap();
        assert!(n > 0);
        sent += n;
    }
    let (_, got) = tokio::join!(async { i.shutdown().await.unwrap() }, async {
        let mut got = Vec::new();
        r.read_to_end(&mut got).await.unwrap();
        got
    });
    assert!(got == expect);
}

#[tokio::test]
async fn write_buffering_is_bounded() {
    let (mut i, _r) = pair().await;
    // Nobody reads: the stream accepts at most the pipe, one encrypted frame and one frame
    // of plaintext, then pushes back.
    let chunk = vec![1u8; 10_000];
    let mut accepted = 0usize;
    let mut cx = noop_cx();
    loop {
        match Pin::new(&mut i).poll_write(&mut cx, &chunk) {
            Poll::Ready(Ok(n)) => accepted += n,
            Poll::Ready(Err(e)) => panic!("{e}"),
            Poll::Pending => break,
        }
        assert!(accepted < 10 << 20, "unbounded buffering");
    }
    let frame = MAX_PLAINTEXT_LEN;
    assert!(accepted <= PIPE + 2 * frame, "accepted {accepted}");
    assert!(accepted >= 2 * frame, "accepted only {accepted}");
}

#[tokio::test]
async fn write_errors_poison_the_write_side() {
    let (mut i, r) = pair().await;
    drop(r);
    let data = vec![0u8; 4 * MAX_PLAINTEXT_LEN];
    let e = i.write_all(&data).await.unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe);
    let e = i.write(b"more").await.unwrap_err();
    let inner = e
        .get_ref()
        .and_then(|e| e.downcast_ref::<plexus_noise::NoiseError>());
    assert!(
        matches!(inner, Some(plexus_noise::NoiseError::Poisoned)),
        "{e}"
    );
}
