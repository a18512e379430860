//! The ping service between two hosts over loopback TCP.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use plexus_host::{HandlerOpts, Host, HostConfig};
use plexus_identity::Keypair;
use plexus_multiaddr::{Multiaddr, Protocol};
use plexus_ping::{PROTOCOL, PingConfig, PingService, ping, serve};

const WAIT: Duration = Duration::from_secs(10);

async fn host() -> Host {
    let mut cfg = HostConfig::new(Keypair::generate_ed25519());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    Host::new(cfg).await.unwrap()
}

fn addr_of(h: &Host) -> Multiaddr {
    h.listen_addrs()[0].clone().with(Protocol::P2p(h.peer_id()))
}

fn on_demand() -> PingConfig {
    PingConfig {
        interval: None,
        ..PingConfig::default()
    }
}

#[tokio::test]
async fn rtt_is_recorded_per_peer() {
    let a = host().await;
    let b = host().await;
    let c = host().await;
    let pa = PingService::spawn(a.clone(), on_demand()).unwrap();
    let pb = PingService::spawn(b.clone(), on_demand()).unwrap();
    let _pc = PingService::spawn(c.clone(), on_demand()).unwrap();
    a.connect(vec![addr_of(&b)]).await.unwrap();
    a.connect(vec![addr_of(&c)]).await.unwrap();

    let rtt_b = pa.ping(b.peer_id()).await.unwrap();
    assert_eq!(pa.rtt(&b.peer_id()), Some(rtt_b));
    assert_eq!(pa.rtt(&c.peer_id()), None, "c not pinged yet");
    let rtt_c = pa.ping(c.peer_id()).await.unwrap();
    assert_eq!(pa.rtt(&c.peer_id()), Some(rtt_c));
    assert_eq!(pa.rtt(&b.peer_id()), Some(rtt_b), "b's entry is its own");
    let second = pa.ping(b.peer_id()).await.unwrap();
    assert_eq!(pa.rtt(&b.peer_id()), Some(second));
    assert_eq!(pa.rtts().len(), 2);
    // Being pinged records nothing on the other side.
    assert_eq!(pb.rtt(&a.peer_id()), None);

    a.disconnect(b.peer_id());
    tokio::time::timeout(WAIT, async {
        while pa.rtt(&b.peer_id()).is_some() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("rtt forgotten on disconnect");
    assert_eq!(pa.rtt(&c.peer_id()), Some(rtt_c));
}

#[tokio::test]
async fn interval_pings_both_ways() {
    let cfg = PingConfig {
        interval: Some(Duration::from_millis(50)),
        ..PingConfig::default()
    };
    let a = host().await;
    let b = host().await;
    let pa = PingService::spawn(a.clone(), cfg.clone()).unwrap();
    let pb = PingService::spawn(b.clone(), cfg).unwrap();
    a.connect(vec![addr_of(&b)]).await.unwrap();
    tokio::time::timeout(WAIT, async {
        while pa.rtt(&b.peer_id()).is_none() || pb.rtt(&a.peer_id()).is_none() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("both sides measured an rtt");
}

#[tokio::test]
async fn one_outbound_stream_per_peer() {
    let a = host().await;
    let b = host().await;
    let pa = PingService::spawn(a.clone(), on_demand()).unwrap();
    // B counts the ping streams it gets and echoes on each.
    let mut incoming = b
        .handle(
            PROTOCOL,
            HandlerOpts {
                backlog: 32,
                max_inbound_per_peer: 32,
            },
        )
        .unwrap();
    let streams = Arc::new(AtomicUsize::new(0));
    let count = streams.clone();
    tokio::spawn(async move {
        while let Some(mut s) = incoming.next().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let _ = serve(&mut s.stream).await;
            });
        }
    });
    a.connect(vec![addr_of(&b)]).await.unwrap();
    let pings: Vec<_> = (0..8)
        .map(|_| {
            let pa = pa.clone();
            let peer = b.peer_id();
            tokio::spawn(async move { pa.ping(peer).await })
        })
        .collect();
    for p in pings {
        p.await.unwrap().unwrap();
    }
    assert_eq!(streams.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn third_inbound_stream_from_a_peer_is_reset() {
    let a = host().await;
    let b = host().await;
    let _pb = PingService::spawn(b.clone(), on_demand()).unwrap();
    a.connect(vec![addr_of(&b)]).await.unwrap();
    let (_, mut s1) = a.new_stream(b.peer_id(), &[PROTOCOL]).await.unwrap();
    ping(&mut s1).await.unwrap();
    let (_, mut s2) = a.new_stream(b.peer_id(), &[PROTOCOL]).await.unwrap();
    ping(&mut s2).await.unwrap();
    let (_, mut s3) = a.new_stream(b.peer_id(), &[PROTOCOL]).await.unwrap();
    assert!(
        tokio::time::timeout(WAIT, ping(&mut s3))
            .await
            .unwrap()
            .is_err(),
        "a third concurrent inbound ping stream is refused"
    );
    // The first two still work.
    ping(&mut s1).await.unwrap();
    ping(&mut s2).await.unwrap();
}
