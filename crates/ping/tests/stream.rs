//! Stream-level ping over in-memory pipes.

use plexus_core::Blame;
use plexus_ping::{PAYLOAD_LEN, PingError, ping, ping_with, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

#[tokio::test]
async fn echo_loops_on_one_stream_and_respects_half_close() {
    let (mut client, mut server) = duplex(1024);
    let served = tokio::spawn(async move { serve(&mut server).await });
    for _ in 0..5 {
        ping(&mut client).await.unwrap();
    }
    client.shutdown().await.unwrap();
    // After our half-close the server finishes and closes its side: we read EOF.
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());
    assert_eq!(served.await.unwrap().unwrap(), 5);
}

#[tokio::test]
async fn payload_written_with_half_close_is_still_echoed() {
    let (mut client, mut server) = duplex(1024);
    let served = tokio::spawn(async move { serve(&mut server).await });
    let payload = [7u8; PAYLOAD_LEN];
    client.write_all(&payload).await.unwrap();
    client.shutdown().await.unwrap();
    let mut echo = Vec::new();
    client.read_to_end(&mut echo).await.unwrap();
    assert_eq!(echo, payload);
    assert_eq!(served.await.unwrap().unwrap(), 1);
}

#[tokio::test]
async fn server_echoes_payloads_split_across_writes() {
    let (mut client, mut server) = duplex(1024);
    let served = tokio::spawn(async move { serve(&mut server).await });
    let payload: Vec<u8> = (0..64).collect();
    for piece in payload.chunks(5) {
        client.write_all(piece).await.unwrap();
        client.flush().await.unwrap();
        tokio::task::yield_now().await;
    }
    client.shutdown().await.unwrap();
    let mut echo = Vec::new();
    client.read_to_end(&mut echo).await.unwrap();
    assert_eq!(echo, payload);
    assert_eq!(served.await.unwrap().unwrap(), 2);
}

#[tokio::test]
async fn mismatched_echo_is_misbehaviour() {
    let (mut client, mut server) = duplex(1024);
    tokio::spawn(async move {
        let mut buf = [0u8; PAYLOAD_LEN];
        server.read_exact(&mut buf).await.unwrap();
        buf[31] ^= 1;
        server.write_all(&buf).await.unwrap();
    });
    let err = ping_with(&mut client, [9; PAYLOAD_LEN]).await.unwrap_err();
    assert!(matches!(err, PingError::Mismatch), "{err}");
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
}

#[tokio::test]
async fn short_echo_then_close_is_closed() {
    let (mut client, mut server) = duplex(1024);
    tokio::spawn(async move {
        let mut buf = [0u8; PAYLOAD_LEN];
        server.read_exact(&mut buf).await.unwrap();
        server.write_all(&buf[..10]).await.unwrap();
        server.shutdown().await.unwrap();
    });
    let err = ping(&mut client).await.unwrap_err();
    assert!(matches!(err, PingError::Closed { received: 10 }), "{err}");
    assert_eq!(err.blame(), Blame::Local);
}

#[tokio::test]
async fn partial_payload_before_eof_is_truncated() {
    let (mut client, mut server) = duplex(1024);
    client.write_all(&[1u8; PAYLOAD_LEN + 3]).await.unwrap();
    client.shutdown().await.unwrap();
    let err = serve(&mut server).await.unwrap_err();
    assert!(matches!(err, PingError::Truncated { received: 3 }), "{err}");
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
    // The whole payload before it was echoed.
    let mut echo = [0u8; PAYLOAD_LEN];
    client.read_exact(&mut echo).await.unwrap();
    assert_eq!(echo, [1u8; PAYLOAD_LEN]);
}

#[tokio::test(start_paused = true)]
async fn server_does_not_read_ahead_of_unread_echoes() {
    // A tiny pipe: the client writes many payloads and never reads. The server must block on
    // writing echoes instead of buffering input without bound.
    let (mut client, mut server) = duplex(PAYLOAD_LEN);
    let served = tokio::spawn(async move { serve(&mut server).await });
    let writer = tokio::spawn(async move {
        for _ in 0..100 {
            if client.write_all(&[0u8; PAYLOAD_LEN]).await.is_err() {
                break;
            }
        }
        client
    });
    // Paused time: the sleep completes only once every task is blocked.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert!(!served.is_finished());
    assert!(
        !writer.is_finished(),
        "writer is back-pressured by the unread echoes"
    );
    served.abort();
    writer.abort();
}

#[tokio::test]
async fn random_payloads_differ() {
    // The echo server records what it sees; two pings must not use the same payload.
    let (mut client, mut server) = duplex(1024);
    let seen = tokio::spawn(async move {
        let mut all = Vec::new();
        let mut buf = [0u8; PAYLOAD_LEN];
        for _ in 0..2 {
            server.read_exact(&mut buf).await.unwrap();
            server.write_all(&buf).await.unwrap();
            all.push(buf);
        }
        all
    });
    ping(&mut client).await.unwrap();
    ping(&mut client).await.unwrap();
    let all = seen.await.unwrap();
    assert_ne!(all[0], all[1]);
}
