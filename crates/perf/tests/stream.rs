//! Stream-level perf over in-memory pipes.

use plexus_core::Blame;
use plexus_perf::{PerfError, Phase, Progress, Served, run, serve};
use tokio::io::{AsyncReadExt, AsyncWriteExt, duplex};

const MIB: u64 = 1024 * 1024;

async fn exchange(upload: u64, download: u64) -> (plexus_perf::PerfResult, Served, Vec<Progress>) {
    let (mut client, mut server) = duplex(64 * 1024);
    let server = tokio::spawn(async move { serve(&mut server, 16 * MIB).await });
    let mut reports = Vec::new();
    let result = run(&mut client, upload, download, |p| reports.push(p))
        .await
        .unwrap();
    (result, server.await.unwrap().unwrap(), reports)
}

#[tokio::test]
async fn byte_counts_are_exact() {
    for (up, down) in [(0, 0), (MIB, 0), (0, MIB), (3 * MIB, 2 * MIB)] {
        let (result, served, reports) = exchange(up, down).await;
        assert_eq!(result.upload_bytes, up, "({up}, {down})");
        assert_eq!(result.download_bytes, down, "({up}, {down})");
        assert_eq!(
            served,
            Served {
                uploaded: up,
                sent: down
            },
            "({up}, {down})"
        );
        assert!(result.upload_secs >= 0.0 && result.download_secs >= 0.0);
        // Each phase ends with a report of its full total; bytes never go backwards.
        let last_up = reports.iter().rfind(|p| p.phase == Phase::Upload).unwrap();
        assert_eq!((last_up.bytes, last_up.total), (up, up));
        let last_down = reports
            .iter()
            .rfind(|p| p.phase == Phase::Download)
            .unwrap();
        assert_eq!((last_down.bytes, last_down.total), (down, down));
        for w in reports.windows(2) {
            if w[0].phase == w[1].phase {
                assert!(w[0].bytes <= w[1].bytes);
            } else {
                assert_eq!((w[0].phase, w[1].phase), (Phase::Upload, Phase::Download));
            }
        }
    }
}

#[tokio::test]
async fn server_refuses_oversized_requests_without_sending() {
    let (mut client, mut server) = duplex(64 * 1024);
    client.write_all(&(MIB + 1).to_be_bytes()).await.unwrap();
    client.write_all(&[0u8; 100]).await.unwrap();
    client.shutdown().await.unwrap();
    let err = serve(&mut server, MIB).await.unwrap_err();
    assert!(
        matches!(err, PerfError::RequestTooLarge { requested, max } if requested == MIB + 1 && max == MIB),
        "{err}"
    );
    assert_eq!(err.blame(), Blame::Local);
    drop(server);
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert!(got.is_empty(), "nothing sent on refusal");

    // The maximum itself is served.
    let (mut client, mut server) = duplex(64 * 1024);
    let server = tokio::spawn(async move { serve(&mut server, MIB).await });
    let result = run(&mut client, 0, MIB, |_| {}).await.unwrap();
    assert_eq!(result.download_bytes, MIB);
    assert_eq!(server.await.unwrap().unwrap().sent, MIB);
}

#[tokio::test]
async fn client_sees_refusal_as_an_error() {
    let (mut client, mut server) = duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let r = serve(&mut server, 10).await;
        drop(server);
        r
    });
    let err = run(&mut client, 0, 11, |_| {}).await.unwrap_err();
    assert!(
        matches!(
            err,
            PerfError::ShortDownload {
                expected: 11,
                received: 0
            } | PerfError::Io(_)
        ),
        "{err}"
    );
    assert!(matches!(
        server.await.unwrap(),
        Err(PerfError::RequestTooLarge {
            requested: 11,
            max: 10
        })
    ));
}

#[tokio::test]
async fn short_download_is_the_servers_fault() {
    let (mut client, mut server) = duplex(64 * 1024);
    tokio::spawn(async move {
        let mut header = [0u8; 8];
        server.read_exact(&mut header).await.unwrap();
        let mut sink = Vec::new();
        server.read_to_end(&mut sink).await.unwrap();
        server.write_all(&[0u8; 99]).await.unwrap();
        server.shutdown().await.unwrap();
    });
    let err = run(&mut client, 5, 100, |_| {}).await.unwrap_err();
    assert!(
        matches!(
            err,
            PerfError::ShortDownload {
                expected: 100,
                received: 99
            }
        ),
        "{err}"
    );
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
}

#[tokio::test]
async fn extra_data_is_the_servers_fault() {
    let (mut client, mut server) = duplex(64 * 1024);
    tokio::spawn(async move {
        let mut header = [0u8; 8];
        server.read_exact(&mut header).await.unwrap();
        let mut sink = Vec::new();
        server.read_to_end(&mut sink).await.unwrap();
        let _ = server.write_all(&[0u8; 101]).await;
        let _ = server.shutdown().await;
    });
    let err = run(&mut client, 0, 100, |_| {}).await.unwrap_err();
    assert!(
        matches!(err, PerfError::TooMuchData { expected: 100 }),
        "{err}"
    );
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
}

#[tokio::test]
async fn missing_header_is_the_clients_fault() {
    let (mut client, mut server) = duplex(1024);
    client.write_all(&[0, 0, 1]).await.unwrap();
    client.shutdown().await.unwrap();
    let err = serve(&mut server, MIB).await.unwrap_err();
    assert!(
        matches!(err, PerfError::MissingHeader { received: 3 }),
        "{err}"
    );
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
}

#[tokio::test(start_paused = true)]
async fn server_sends_nothing_before_the_upload_ends() {
    let (mut client, mut server) = duplex(64 * 1024);
    let server = tokio::spawn(async move { serve(&mut server, MIB).await });
    client.write_all(&1000u64.to_be_bytes()).await.unwrap();
    client.write_all(&[0u8; 5000]).await.unwrap();
    client.flush().await.unwrap();
    // Still uploading: no download byte may arrive yet (paused time: the timeout fires only
    // once every task is blocked).
    let mut one = [0u8; 1];
    let early =
        tokio::time::timeout(std::time::Duration::from_millis(200), client.read(&mut one)).await;
    assert!(
        early.is_err(),
        "server wrote while the client was still uploading"
    );
    client.shutdown().await.unwrap();
    let mut got = Vec::new();
    client.read_to_end(&mut got).await.unwrap();
    assert_eq!(got.len(), 1000);
    assert_eq!(
        server.await.unwrap().unwrap(),
        Served {
            uploaded: 5000,
            sent: 1000
        }
    );
}
