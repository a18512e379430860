//! The identify service between two hosts over loopback TCP.

use std::time::Duration;

use plexus_core::{Blame, PeerId};
use plexus_host::{HandlerOpts, Host, HostConfig};
use plexus_identify::{
    IdentifyConfig, IdentifyError, IdentifyEvent, IdentifyHandle, IdentifyService, PROTOCOL,
    PUSH_PROTOCOL, PeerInfo, write_identify,
};
use plexus_identity::Keypair;
use plexus_multiaddr::{Multiaddr, Protocol};
use tokio::sync::broadcast;

const WAIT: Duration = Duration::from_secs(10);

async fn host(agent: &str) -> Host {
    let mut cfg = HostConfig::new(Keypair::generate_ed25519());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    cfg.agent_version = agent.into();
    Host::new(cfg).await.unwrap()
}

fn addr_of(h: &Host) -> Multiaddr {
    h.listen_addrs()[0].clone().with(Protocol::P2p(h.peer_id()))
}

/// Wait for the next `Received` event about `peer` with the given push flag.
async fn received(
    events: &mut broadcast::Receiver<IdentifyEvent>,
    peer: PeerId,
    want_push: bool,
) -> PeerInfo {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await.unwrap() {
                IdentifyEvent::Received {
                    peer: p,
                    info,
                    push,
                } if p == peer && push == want_push => {
                    return info;
                }
                _ => {}
            }
        }
    })
    .await
    .expect("identify event")
}

fn check_info(info: &PeerInfo, of: &Host, seen_from: &Host) {
    assert_eq!(info.agent_version.as_deref(), Some(of.agent_version()));
    assert_eq!(info.protocol_version.as_deref(), Some("ipfs/0.1.0"));
    assert_eq!(info.public_key, Some(of.public_key()));
    assert_eq!(info.listen_addrs, of.listen_addrs());
    assert!(
        info.supports(PROTOCOL) && info.supports(PUSH_PROTOCOL),
        "{:?}",
        info.protocols
    );
    assert_eq!(info.protocols, of.protocols());
    assert_eq!(info.skipped_addrs, 0);
    // The observed address is where `of` sees the connection come from: our local address.
    let conn = seen_from.connection(&of.peer_id()).unwrap();
    assert_eq!(info.observed_addr.as_ref(), Some(&conn.local_addr));
}

#[tokio::test]
async fn identify_both_ways_on_connect() {
    let a = host("agent-a/1.0").await;
    let b = host("agent-b/2.0").await;
    let ia = IdentifyService::spawn(a.clone(), IdentifyConfig::default()).unwrap();
    let ib = IdentifyService::spawn(b.clone(), IdentifyConfig::default()).unwrap();
    let mut ea = ia.events();
    let mut eb = ib.events();
    a.connect(vec![addr_of(&b)]).await.unwrap();

    let about_b = received(&mut ea, b.peer_id(), false).await;
    let about_a = received(&mut eb, a.peer_id(), false).await;
    check_info(&about_b, &b, &a);
    check_info(&about_a, &a, &b);
    assert_eq!(ia.info(&b.peer_id()), Some(about_b));
    assert_eq!(ib.info(&a.peer_id()), Some(about_a));

    // Disconnecting forgets the peer.
    a.disconnect(b.peer_id());
    tokio::time::timeout(WAIT, async {
        while ia.info(&b.peer_id()).is_some() || ib.info(&a.peer_id()).is_some() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("info removed on disconnect");
}

#[tokio::test]
async fn on_demand_identify_and_push() {
    let cfg = IdentifyConfig {
        identify_on_connect: false,
        ..IdentifyConfig::default()
    };
    let a = host("a/1").await;
    let b = host("b/1").await;
    let ia = IdentifyService::spawn(a.clone(), cfg.clone()).unwrap();
    let ib = IdentifyService::spawn(b.clone(), cfg).unwrap();
    let mut eb = ib.events();
    a.connect(vec![addr_of(&b)]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ia.info(&b.peer_id()), None, "not identified on connect");

    let info = ia.identify(b.peer_id()).await.unwrap();
    check_info(&info, &b, &a);
    assert_eq!(ia.info(&b.peer_id()), Some(info));

    // B learns about A only through A's push; a new protocol shows up in it.
    let _extra = a.handle("/extra/1.0.0", HandlerOpts::default()).unwrap();
    assert_eq!(ia.push().await, 1);
    let pushed = received(&mut eb, a.peer_id(), true).await;
    assert!(pushed.supports("/extra/1.0.0"));
    assert_eq!(pushed.public_key, Some(a.public_key()));
    assert_eq!(ib.info(&a.peer_id()), Some(pushed));
}

#[tokio::test]
async fn forged_public_key_is_blamed_on_the_peer() {
    let a = host("a/1").await;
    let b = host("liar/1").await;
    let cfg = IdentifyConfig {
        identify_on_connect: false,
        ..IdentifyConfig::default()
    };
    let ia: IdentifyHandle = IdentifyService::spawn(a.clone(), cfg).unwrap();
    let mut ea = ia.events();
    // B answers identify with someone else's key.
    let mut incoming = b.handle(PROTOCOL, HandlerOpts::default()).unwrap();
    let other = Keypair::generate_ed25519();
    tokio::spawn(async move {
        while let Some(mut s) = incoming.next().await {
            let msg = PeerInfo {
                agent_version: Some("liar/1".into()),
                public_key: Some(other.public()),
                ..PeerInfo::default()
            }
            .to_message();
            let _ = write_identify(&mut s.stream, &msg).await;
        }
    });
    a.connect(vec![addr_of(&b)]).await.unwrap();
    let err = ia.identify(b.peer_id()).await.unwrap_err();
    assert!(
        matches!(err, IdentifyError::PublicKeyMismatch { expected, .. } if expected == b.peer_id()),
        "{err}"
    );
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
    assert_eq!(ia.info(&b.peer_id()), None);
    let event = tokio::time::timeout(WAIT, ea.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(event, IdentifyEvent::Failed { peer, blame: Blame::PeerMisbehaved, .. } if peer == b.peer_id()),
        "{event:?}"
    );
}

#[tokio::test]
async fn unsupported_peer_fails_without_blame() {
    let a = host("a/1").await;
    let b = host("b/1").await;
    let cfg = IdentifyConfig {
        identify_on_connect: false,
        ..IdentifyConfig::default()
    };
    let ia = IdentifyService::spawn(a.clone(), cfg).unwrap();
    a.connect(vec![addr_of(&b)]).await.unwrap();
    let err = ia.identify(b.peer_id()).await.unwrap_err();
    assert_ne!(err.blame(), Blame::PeerMisbehaved, "{err}");
}

#[tokio::test]
async fn dropping_the_handle_unregisters() {
    let a = host("a/1").await;
    let ia = IdentifyService::spawn(a.clone(), IdentifyConfig::default()).unwrap();
    assert!(a.protocols().contains(&PROTOCOL.to_string()));
    assert!(IdentifyService::spawn(a.clone(), IdentifyConfig::default()).is_err());
    drop(ia);
    tokio::time::timeout(WAIT, async {
        while a
            .protocols()
            .iter()
            .any(|p| p == PROTOCOL || p == PUSH_PROTOCOL)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("protocols unregistered");
}

/// Requests made while an exchange with the peer is in flight share it: one stream, one
/// answer for all (js-libp2p resets a second concurrent identify stream). A later request
/// opens a new one.
#[tokio::test]
async fn concurrent_requests_share_one_stream() {
    let a = host("a/1").await;
    let b = host("slow/1").await;
    let cfg = IdentifyConfig {
        identify_on_connect: false,
        ..IdentifyConfig::default()
    };
    let ia = IdentifyService::spawn(a.clone(), cfg).unwrap();
    // B answers every identify stream after a pause, and counts them.
    let mut incoming = b.handle(PROTOCOL, HandlerOpts::default()).unwrap();
    let streams = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = streams.clone();
    let b_key = b.public_key();
    tokio::spawn(async move {
        while let Some(mut s) = incoming.next().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let msg = PeerInfo {
                agent_version: Some("slow/1".into()),
                public_key: Some(b_key.clone()),
                ..PeerInfo::default()
            }
            .to_message();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                let _ = write_identify(&mut s.stream, &msg).await;
            });
        }
    });
    a.connect(vec![addr_of(&b)]).await.unwrap();
    let peer = b.peer_id();
    let (r1, r2, r3) = tokio::join!(ia.identify(peer), ia.identify(peer), ia.identify(peer));
    let (r1, r2, r3) = (r1.unwrap(), r2.unwrap(), r3.unwrap());
    assert_eq!(r1.agent_version.as_deref(), Some("slow/1"));
    assert_eq!(r1, r2);
    assert_eq!(r1, r3);
    let count = || streams.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(count(), 1, "one identify stream for three requests");

    // Once answered, the next request makes a new exchange.
    ia.identify(peer).await.unwrap();
    assert_eq!(count(), 2, "the later request opened its own stream");
}

/// When the shared exchange fails, each joined request tries on its own and gets its own
/// result: here the peer resets the first stream and answers the next.
#[tokio::test]
async fn joined_request_retries_when_the_shared_exchange_fails() {
    let a = host("a/1").await;
    let b = host("flaky/1").await;
    let cfg = IdentifyConfig {
        identify_on_connect: false,
        ..IdentifyConfig::default()
    };
    let ia = IdentifyService::spawn(a.clone(), cfg).unwrap();
    let mut incoming = b.handle(PROTOCOL, HandlerOpts::default()).unwrap();
    let b_key = b.public_key();
    tokio::spawn(async move {
        let mut n = 0;
        while let Some(mut s) = incoming.next().await {
            n += 1;
            let msg = PeerInfo {
                agent_version: Some("flaky/1".into()),
                public_key: Some(b_key.clone()),
                ..PeerInfo::default()
            }
            .to_message();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(200)).await;
                if n == 1 {
                    s.stream.reset();
                } else {
                    let _ = write_identify(&mut s.stream, &msg).await;
                }
            });
        }
    });
    a.connect(vec![addr_of(&b)]).await.unwrap();
    let peer = b.peer_id();
    let (first, joined) = tokio::join!(ia.identify(peer), ia.identify(peer));
    assert!(first.is_err(), "the reset exchange fails for its leader");
    let info = joined.expect("the joined request retried on a new stream");
    assert_eq!(info.agent_version.as_deref(), Some("flaky/1"));
}
