//! Perf between two hosts over loopback TCP.

use std::time::Duration;

use plexus_host::{Host, HostConfig};
use plexus_identity::Keypair;
use plexus_multiaddr::{Multiaddr, Protocol};
use plexus_perf::{PROTOCOL, Perf, PerfConfig, PerfError, Phase, perf};

const MIB: u64 = 1024 * 1024;
const WAIT: Duration = Duration::from_secs(30);

async fn host() -> Host {
    let mut cfg = HostConfig::new(Keypair::generate_ed25519());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    Host::new(cfg).await.unwrap()
}

fn addr_of(h: &Host) -> Multiaddr {
    h.listen_addrs()[0].clone().with(Protocol::P2p(h.peer_id()))
}

#[tokio::test]
async fn perf_between_two_hosts() {
    let client = host().await;
    let server = host().await;
    let _enabled = Perf::enable(&server, PerfConfig::default()).unwrap();
    client.connect(vec![addr_of(&server)]).await.unwrap();
    for (up, down) in [(0, 0), (MIB, 0), (0, MIB), (3 * MIB, 2 * MIB)] {
        let mut last_down = None;
        let result = tokio::time::timeout(
            WAIT,
            perf(&client, server.peer_id(), up, down, |p| {
                if p.phase == Phase::Download {
                    last_down = Some(p.bytes);
                }
            }),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!((result.upload_bytes, result.download_bytes), (up, down));
        assert_eq!(last_down, Some(down));
    }
}

#[tokio::test]
async fn perf_is_off_unless_enabled() {
    let client = host().await;
    let server = host().await;
    assert!(!server.protocols().iter().any(|p| p == PROTOCOL));
    client.connect(vec![addr_of(&server)]).await.unwrap();
    let err = perf(&client, server.peer_id(), 10, 10, |_| {})
        .await
        .unwrap_err();
    assert!(
        matches!(err, PerfError::Io(_) | PerfError::Open { .. }),
        "{err}"
    );

    // Enabled, then disabled by dropping the handle.
    let handle = Perf::enable(&server, PerfConfig::default()).unwrap();
    assert!(server.protocols().iter().any(|p| p == PROTOCOL));
    perf(&client, server.peer_id(), 10, 10, |_| {})
        .await
        .unwrap();
    drop(handle);
    tokio::time::timeout(WAIT, async {
        while server.protocols().iter().any(|p| p == PROTOCOL) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("perf unregistered");
}

#[tokio::test]
async fn oversized_request_is_refused_and_the_next_one_served() {
    let client = host().await;
    let server = host().await;
    let cfg = PerfConfig {
        max_download: MIB,
        ..PerfConfig::default()
    };
    let _enabled = Perf::enable(&server, cfg).unwrap();
    client.connect(vec![addr_of(&server)]).await.unwrap();
    let err = tokio::time::timeout(WAIT, perf(&client, server.peer_id(), 0, MIB + 1, |_| {}))
        .await
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(err, PerfError::Io(_)),
        "refused with a reset: {err}"
    );
    let ok = perf(&client, server.peer_id(), 0, MIB, |_| {})
        .await
        .unwrap();
    assert_eq!(ok.download_bytes, MIB);
}
