//! The service on real hosts over loopback: Ethereum topics, ids and payloads end to end,
//! refusal of undecodable messages before the client, next-fork topics joined ahead.

use std::sync::Arc;
use std::time::Duration;

use plexus_eth::{ForkSchedule, GossipKind, GossipMessageError, Network};
use plexus_eth_gossip::{EthGossip, EthGossipConfig, EthGossipEvent, NetworkLoad};
use plexus_gossipsub::{
    Acceptance, Config, GossipsubService, ServiceConfig, TopicHash, wait_for_mesh,
};
use plexus_host::{Host, HostConfig};
use plexus_identity::Keypair;
use plexus_multiaddr::{Multiaddr, Protocol};
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);
/// Mainnet's Fulu epoch.
const FULU: u64 = 411_392;

async fn host() -> Host {
    let mut cfg = HostConfig::new(Keypair::generate_secp256k1());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    Host::new(cfg).await.unwrap()
}

fn addr_of(h: &Host) -> Multiaddr {
    h.listen_addrs()[0].clone().with(Protocol::P2p(h.peer_id()))
}

fn schedule() -> Arc<ForkSchedule> {
    Arc::new(ForkSchedule::for_network(Network::Mainnet).unwrap())
}

/// The Ethereum profile with a fast heartbeat and small meshes (two nodes).
fn fast(gossipsub: Config) -> Config {
    Config {
        heartbeat_interval: Duration::from_millis(100),
        heartbeat_initial_delay: Duration::from_millis(50),
        mesh_n: 2,
        mesh_n_low: 1,
        mesh_n_high: 4,
        mesh_outbound_min: 0,
        mesh_outbound_min_score_kept: 1,
        gossip_lazy: 2,
        ..gossipsub
    }
}

async fn node(epoch: u64) -> (Host, EthGossip, mpsc::Receiver<EthGossipEvent>) {
    let h = host().await;
    let s = schedule();
    let load = NetworkLoad {
        active_validators: 1_000_000,
        current_slot: epoch * 32,
    };
    let mut cfg = EthGossipConfig::new(&s, Some(load));
    cfg.gossipsub = fast(cfg.gossipsub);
    let (g, ev) = EthGossip::spawn(h.clone(), s, cfg, epoch, Some(load), None).unwrap();
    (h, g, ev)
}

async fn next_message(ev: &mut mpsc::Receiver<EthGossipEvent>) -> EthGossipEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            if let e @ (EthGossipEvent::Message { .. } | EthGossipEvent::Refused { .. }) =
                ev.recv().await.expect("service running")
            {
                return e;
            }
        }
    })
    .await
    .expect("a message event")
}

#[tokio::test]
async fn a_block_travels_with_the_spec_id_and_only_between_accepted_peers() {
    let epoch = FULU + 10;
    let (ha, ga, _ea) = node(epoch).await;
    let (hb, gb, mut eb) = node(epoch).await;
    hb.connect(vec![addr_of(&ha)]).await.unwrap();
    let block_topic = "/eth2/cc2c5cdb/beacon_block/ssz_snappy".to_string();
    for g in [&ga, &gb] {
        let ch = g.set_kinds([GossipKind::BeaconBlock]).await.unwrap();
        assert_eq!(ch.subscribed, vec![block_topic.clone()]);
    }
    // Not accepted yet (the Status handshake has not happened): no mesh.
    let t: TopicHash = block_topic.as_str().into();
    assert_eq!(
        wait_for_mesh(ga.gossipsub(), &t, 1, Duration::from_millis(600)).await,
        0
    );
    ga.set_accepted(hb.peer_id(), true).await.unwrap();
    gb.set_accepted(ha.peer_id(), true).await.unwrap();
    assert!(wait_for_mesh(ga.gossipsub(), &t, 1, WAIT).await >= 1);
    let block: Vec<u8> = (0..50_000u32).map(|i| (i % 7) as u8).collect();
    let id = ga
        .publish(GossipKind::BeaconBlock, epoch, &block)
        .await
        .unwrap();
    match next_message(&mut eb).await {
        EthGossipEvent::Message {
            id: got,
            source,
            topic,
            payload,
        } => {
            assert_eq!(got, id);
            assert_eq!(source, ha.peer_id());
            assert_eq!(topic.topic.kind, GossipKind::BeaconBlock);
            assert_eq!(topic.topic.to_string(), block_topic);
            assert_eq!(payload, block);
            // The spec's Altair+ id over the compressed data on the wire.
            let wire = plexus_eth::encode_gossip(&block, 10 << 20).unwrap();
            let spec = plexus_eth::message_id(&block_topic, &wire, plexus_eth::Fork::Fulu);
            assert_eq!(got.as_bytes(), &spec[..]);
            gb.report(got, Acceptance::Accept).await.unwrap();
        }
        other => panic!("expected the block, got {other:?}"),
    }
}

#[tokio::test]
async fn a_message_that_does_not_decode_is_rejected_before_the_client() {
    let epoch = FULU + 10;
    let (hb, gb, mut eb) = node(epoch).await;
    // A raw gossipsub node with the same profile, publishing garbage on the block topic.
    let ha = host().await;
    let s = schedule();
    let (raw, _rx) = GossipsubService::spawn(
        ha.clone(),
        fast(plexus_eth_gossip::gossipsub_config(&s, None)),
        ServiceConfig::default(),
        None,
    )
    .unwrap();
    hb.connect(vec![addr_of(&ha)]).await.unwrap();
    let topic = "/eth2/cc2c5cdb/beacon_block/ssz_snappy";
    gb.set_kinds([GossipKind::BeaconBlock]).await.unwrap();
    raw.subscribe(topic).await.unwrap();
    raw.set_accepted(hb.peer_id(), true).await.unwrap();
    gb.set_accepted(ha.peer_id(), true).await.unwrap();
    assert!(wait_for_mesh(&raw, &topic.into(), 1, WAIT).await >= 1);
    // A snappy preamble declaring 100 MiB: over the block bound, refused before decompressing.
    let mut bomb = vec![0x80, 0x80, 0x80, 0x32];
    bomb.extend_from_slice(&[0u8; 64]);
    raw.publish(topic, bomb).await.unwrap().unwrap();
    match next_message(&mut eb).await {
        EthGossipEvent::Refused {
            source,
            topic: got,
            error,
            ..
        } => {
            assert_eq!(source, ha.peer_id());
            assert_eq!(got, topic);
            assert!(matches!(error, GossipMessageError::Payload(_)), "{error:?}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    // The rejection counts against the sender (P₄ with the model's weights: below zero).
    let snap = gb.gossipsub().snapshot().await.unwrap();
    assert_eq!(
        snap.topics
            .iter()
            .find(|(t, _)| t.as_str() == topic)
            .map(|(_, s)| s.rejected),
        Some(1)
    );
}

#[tokio::test]
async fn next_fork_topics_are_joined_ahead_and_old_ones_left_after() {
    let (_h, g, _e) = node(FULU - 5).await;
    let ch = g
        .set_kinds([GossipKind::BeaconBlock, GossipKind::BlobSidecar(1)])
        .await
        .unwrap();
    assert_eq!(
        ch.subscribed,
        vec![
            "/eth2/ad532ceb/beacon_block/ssz_snappy".to_string(),
            "/eth2/ad532ceb/blob_sidecar_1/ssz_snappy".to_string(),
        ]
    );
    let ch = g.on_epoch(FULU - 2, None).await.unwrap();
    assert_eq!(
        ch.subscribed,
        vec!["/eth2/cc2c5cdb/beacon_block/ssz_snappy".to_string()]
    );
    assert!(ch.unsubscribed.is_empty());
    let ch = g.on_epoch(FULU + 2, None).await.unwrap();
    assert!(ch.subscribed.is_empty());
    assert_eq!(
        ch.unsubscribed,
        vec![
            "/eth2/ad532ceb/beacon_block/ssz_snappy".to_string(),
            "/eth2/ad532ceb/blob_sidecar_1/ssz_snappy".to_string(),
        ]
    );
    assert_eq!(
        g.subscribed().into_iter().collect::<Vec<_>>(),
        vec!["/eth2/cc2c5cdb/beacon_block/ssz_snappy".to_string()]
    );
    // Publishing under an epoch whose fork lacks the kind is refused locally.
    assert!(
        g.publish(GossipKind::BlobSidecar(1), FULU + 2, &[0u8; 10])
            .await
            .is_err()
    );
}
