//! The service on real hosts over loopback TCP: meshes form, messages flow after validation,
//! the seed-2 hook keeps an unaccepted peer out, garbage on a stream resets only it.

use std::time::Duration;

use plexus_core::Blame;
use plexus_gossipsub::{
    Acceptance, Config, Event, GossipEvent, Gossipsub, GossipsubService, ServiceConfig, TopicHash,
    wait_for_mesh,
};
use plexus_host::{Host, HostConfig};
use plexus_identity::Keypair;
use plexus_multiaddr::{Multiaddr, Protocol};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

const WAIT: Duration = Duration::from_secs(10);
const T: &str = "/eth2/00000000/beacon_block/ssz_snappy";

async fn host() -> Host {
    let mut cfg = HostConfig::new(Keypair::generate_ed25519());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    Host::new(cfg).await.unwrap()
}

fn addr_of(h: &Host) -> Multiaddr {
    h.listen_addrs()[0].clone().with(Protocol::P2p(h.peer_id()))
}

fn fast() -> Config {
    Config {
        heartbeat_interval: Duration::from_millis(100),
        heartbeat_initial_delay: Duration::from_millis(50),
        mesh_n: 2,
        mesh_n_low: 1,
        mesh_n_high: 4,
        mesh_outbound_min: 0,
        mesh_outbound_min_score_kept: 1,
        gossip_lazy: 2,
        preamble_threshold: 16 * 1024,
        ..Config::default()
    }
}

async fn node(cfg: Config) -> (Host, Gossipsub, mpsc::Receiver<GossipEvent>) {
    node_with(cfg, ServiceConfig::default()).await
}

async fn node_with(
    cfg: Config,
    svc: ServiceConfig,
) -> (Host, Gossipsub, mpsc::Receiver<GossipEvent>) {
    let h = host().await;
    let (g, ev) = GossipsubService::spawn(h.clone(), cfg, svc, None).unwrap();
    (h, g, ev)
}

/// The next message event, validated with `verdict`.
async fn next_message(
    g: &Gossipsub,
    ev: &mut mpsc::Receiver<GossipEvent>,
    verdict: Acceptance,
) -> bytes::Bytes {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Some(GossipEvent::Router(Event::Message { id, message, .. })) = ev.recv().await {
                g.report_validation(id, verdict).await.unwrap();
                return message.data;
            }
        }
    })
    .await
    .expect("a message")
}

#[tokio::test]
async fn three_hosts_form_a_mesh_and_relay_after_validation() {
    let (ha, ga, _ea) = node(fast()).await;
    let (hb, gb, mut eb) = node(fast()).await;
    let (hc, gc, mut ec) = node(fast()).await;
    // a — b — c: c hears a only through b.
    hb.connect(vec![addr_of(&ha)]).await.unwrap();
    hc.connect(vec![addr_of(&hb)]).await.unwrap();
    let t: TopicHash = T.into();
    for g in [&ga, &gb, &gc] {
        g.subscribe(T).await.unwrap();
    }
    assert!(wait_for_mesh(&ga, &t, 1, WAIT).await >= 1);
    assert!(wait_for_mesh(&gc, &t, 1, WAIT).await >= 1);
    assert!(wait_for_mesh(&gb, &t, 2, WAIT).await >= 2);
    ga.publish(T, &b"hello"[..]).await.unwrap().unwrap();
    assert_eq!(
        &next_message(&gb, &mut eb, Acceptance::Accept).await[..],
        b"hello"
    );
    assert_eq!(
        &next_message(&gc, &mut ec, Acceptance::Accept).await[..],
        b"hello"
    );
    // A message b rejects never reaches c.
    ga.publish(T, &b"bad"[..]).await.unwrap().unwrap();
    assert_eq!(
        &next_message(&gb, &mut eb, Acceptance::Reject).await[..],
        b"bad"
    );
    ga.publish(T, &b"after"[..]).await.unwrap().unwrap();
    assert_eq!(
        &next_message(&gb, &mut eb, Acceptance::Accept).await[..],
        b"after"
    );
    assert_eq!(
        &next_message(&gc, &mut ec, Acceptance::Accept).await[..],
        b"after"
    );
    let snap = gb.snapshot().await.unwrap();
    let stats = &snap.topics.iter().find(|(x, _)| *x == t).unwrap().1;
    assert_eq!(stats.rejected, 1);
    assert_eq!(stats.delivered, 2);

    // A large message: each copy over the wire (a → b, b → c) is preceded by a PREAMBLE
    // (the nodes turn the extension on and advertise it on v1.3), which the receiver acts on.
    let big = vec![0x42u8; 64 * 1024];
    ga.publish(T, big.clone()).await.unwrap().unwrap();
    assert_eq!(next_message(&gb, &mut eb, Acceptance::Accept).await, big);
    assert_eq!(next_message(&gc, &mut ec, Acceptance::Accept).await, big);
    let (sa, sb, sc) = (
        ga.snapshot().await.unwrap().stats,
        gb.snapshot().await.unwrap().stats,
        gc.snapshot().await.unwrap().stats,
    );
    assert_eq!((sa.preambles_sent, sb.preambles_sent), (1, 1));
    assert_eq!((sb.preambles_received, sc.preambles_received), (1, 1));
}

#[tokio::test]
async fn an_unaccepted_peer_is_not_meshed_until_accepted() {
    let cfg = Config {
        accept_by_default: false,
        ..fast()
    };
    let (ha, ga, _ea) = node(cfg.clone()).await;
    let (hb, gb, _eb) = node(cfg).await;
    hb.connect(vec![addr_of(&ha)]).await.unwrap();
    let t: TopicHash = T.into();
    ga.subscribe(T).await.unwrap();
    gb.subscribe(T).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ga.snapshot().await.unwrap().mesh[0].1.len(), 0);
    ga.set_accepted(hb.peer_id(), true).await.unwrap();
    gb.set_accepted(ha.peer_id(), true).await.unwrap();
    assert_eq!(wait_for_mesh(&ga, &t, 1, WAIT).await, 1);
    assert_eq!(wait_for_mesh(&gb, &t, 1, WAIT).await, 1);
    // The router's scores, per connected peer, for a peer manager to fold in.
    let scores = ga.peer_scores().await.unwrap();
    assert_eq!(
        scores.iter().map(|(p, _)| *p).collect::<Vec<_>>(),
        vec![hb.peer_id()]
    );
}

#[tokio::test]
async fn garbage_on_a_gossipsub_stream_resets_only_that_stream() {
    let (ha, ga, mut ea) = node(fast()).await;
    let hb = host().await;
    hb.connect(vec![addr_of(&ha)]).await.unwrap();
    let (_, mut s) = hb
        .new_stream(ha.peer_id(), &["/meshsub/1.1.0"])
        .await
        .unwrap();
    // A frame declaring 64 MiB.
    s.write_all(&[0x80, 0x80, 0x80, 0x20]).await.unwrap();
    s.flush().await.unwrap();
    let fault = tokio::time::timeout(WAIT, async {
        loop {
            if let Some(GossipEvent::StreamFault(f)) = ea.recv().await {
                return f;
            }
        }
    })
    .await
    .expect("a fault event");
    assert_eq!(fault.peer, hb.peer_id());
    assert_eq!(fault.blame, Blame::PeerMisbehaved);
    // The connection and the service are fine.
    assert!(ha.connection(&hb.peer_id()).is_some());
    assert!(ga.subscribe(T).await.unwrap());
}

#[tokio::test]
async fn metrics_follow_the_router() {
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;
    let mut registry = Registry::default();
    let metrics = plexus_gossipsub::GossipMetrics::new(&mut registry);
    let ha = host().await;
    let (ga, _ea) =
        GossipsubService::spawn(ha.clone(), fast(), ServiceConfig::default(), Some(metrics))
            .unwrap();
    let (hb, gb, mut eb) = node(fast()).await;
    hb.connect(vec![addr_of(&ha)]).await.unwrap();
    let t: TopicHash = T.into();
    ga.subscribe(T).await.unwrap();
    gb.subscribe(T).await.unwrap();
    assert_eq!(wait_for_mesh(&ga, &t, 1, WAIT).await, 1);
    for i in 0..3u8 {
        ga.publish(T, vec![i; 2000]).await.unwrap().unwrap();
        next_message(&gb, &mut eb, Acceptance::Accept).await;
    }
    // Metrics refresh at each heartbeat (100 ms here).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut text = String::new();
    encode(&mut text, &registry).unwrap();
    let line = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} in\n{text}"))
            .to_owned()
    };
    assert!(
        line("gossipsub_mesh_peers{topic=\"/eth2").ends_with(" 1"),
        "{text}"
    );
    assert!(line("gossipsub_topic_peers{topic=\"/eth2").ends_with(" 1"));
    assert!(
        line("gossipsub_messages_total{topic=\"/eth2/00000000/beacon_block/ssz_snappy\",outcome=\"published\"}")
            .ends_with(" 3")
    );
    assert!(text.contains("gossipsub_queue_drops_total{class=\"forward\"} 0"));
    assert!(text.contains("gossipsub_peer_scores_count"));
}

/// Open a gossipsub stream from `h` to `a` and announce a subscription to `topic` on it.
async fn subscribe_by_hand(h: &Host, a: &Host, topic: &str) -> plexus_core::BoxStream {
    let (_, mut s) = h
        .new_stream(a.peer_id(), &["/meshsub/1.1.0"])
        .await
        .unwrap();
    let subs = [plexus_gossipsub::SubOpt {
        subscribe: true,
        topic: topic.into(),
    }];
    let frame = plexus_gossipsub::wire::encode_control_frame(&subs, &Default::default());
    s.write_all(&frame).await.unwrap();
    s.flush().await.unwrap();
    s
}

/// A host that speaks just enough gossipsub to be sent messages, and never reads them.
async fn stalled_peer(a: &Host, topic: &str) -> (Host, Vec<plexus_host::InboundStream>) {
    let h = host().await;
    let mut incoming = h
        .handle("/meshsub/1.1.0", plexus_host::HandlerOpts::default())
        .unwrap();
    h.connect(vec![addr_of(a)]).await.unwrap();
    std::mem::forget(subscribe_by_hand(&h, a, topic).await);
    // Take `a`'s stream to us and never read it.
    let inbound = tokio::time::timeout(WAIT, incoming.next())
        .await
        .unwrap()
        .unwrap();
    std::mem::forget(incoming);
    (h, vec![inbound])
}

#[tokio::test]
async fn peers_that_stop_reading_do_not_stall_large_messages_to_others() {
    let (ha, ga, _ea) = node(fast()).await;
    let (hc, gc, mut ec) = node(fast()).await;
    ga.subscribe(T).await.unwrap();
    gc.subscribe(T).await.unwrap();
    let _stalled = [stalled_peer(&ha, T).await, stalled_peer(&ha, T).await];
    hc.connect(vec![addr_of(&ha)]).await.unwrap();
    let t: TopicHash = T.into();
    assert_eq!(wait_for_mesh(&gc, &t, 1, WAIT).await, 1);
    // Flood publish: the two stalled peers get every message too. 40 MiB is more than their
    // connections buffer (yamux windows, TCP), so each of their writers blocks holding one of
    // the two large-frame slots until its timeout.
    for i in 0..40u8 {
        ga.publish(T, vec![i; 1 << 20]).await.unwrap().unwrap();
    }
    for i in 0..40u8 {
        let data = next_message(&gc, &mut ec, Acceptance::Accept).await;
        assert_eq!(data[0], i, "in order, none lost");
    }
}

#[tokio::test]
async fn a_copy_slower_than_the_others_gives_up_the_large_slot_early() {
    // One large-frame slot, no fixed timeout to speak of and no rate floor: only the rate of
    // the node's recent copies can free the slot from a peer that stopped reading.
    let svc = ServiceConfig {
        max_large_in_flight: 1,
        large_slot_timeout: Duration::from_secs(3600),
        large_slot_min_rate: 1,
        large_slot_grace: Duration::ZERO,
        ..ServiceConfig::default()
    };
    let (ha, ga, _ea) = node_with(fast(), svc).await;
    let (hc, gc, mut ec) = node(fast()).await;
    ga.subscribe(T).await.unwrap();
    gc.subscribe(T).await.unwrap();
    hc.connect(vec![addr_of(&ha)]).await.unwrap();
    let t: TopicHash = T.into();
    assert_eq!(wait_for_mesh(&gc, &t, 1, WAIT).await, 1);
    // Copies to c, which reads: they set the rate.
    for i in 0..8u8 {
        ga.publish(T, vec![i; 1 << 20]).await.unwrap().unwrap();
        assert_eq!(next_message(&gc, &mut ec, Acceptance::Accept).await[0], i);
    }
    // Two peers that stop reading join; each of their writers blocks on a 1 MiB copy, and
    // c's copies must still get the slot in time.
    let _stalled = [stalled_peer(&ha, T).await, stalled_peer(&ha, T).await];
    for i in 8..40u8 {
        ga.publish(T, vec![i; 1 << 20]).await.unwrap().unwrap();
    }
    for i in 8..40u8 {
        let data = next_message(&gc, &mut ec, Acceptance::Accept).await;
        assert_eq!(data[0], i, "in order, none lost");
    }
}

/// Read whole RPCs from `stream` until one carries a GRAFT for `topic`, or `WAIT` passes.
async fn graft_arrives(stream: &mut plexus_core::BoxStream, topic: &str) -> bool {
    use tokio::io::AsyncReadExt;
    let limits = plexus_gossipsub::wire::WireLimits::default();
    let mut dec = plexus_gossipsub::wire::FrameDecoder::new(limits.max_transmit_size);
    let mut buf = bytes::BytesMut::new();
    let t: TopicHash = topic.into();
    tokio::time::timeout(WAIT, async {
        loop {
            while let Ok(Some(body)) = dec.decode(&mut buf) {
                let rpc = plexus_gossipsub::wire::decode_rpc(body, &limits).expect("an RPC");
                if rpc.control.graft.contains(&t) {
                    return true;
                }
            }
            buf.reserve(4096);
            match stream.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(_) => {}
            }
        }
    })
    .await
    .unwrap_or(false)
}

#[tokio::test]
async fn a_graft_in_a_failed_write_goes_out_on_the_next_stream() {
    // `b` speaks gossipsub by hand. It resets `a`'s first stream to it, then subscribes:
    // `a` grafts `b` at its next heartbeat, the write fails on the reset stream, and `a`
    // opens another. The GRAFT must arrive on that one; lost, `a` would keep `b` in its
    // mesh while `b` never heard of it (seen in the devnet: a one-way mesh edge that
    // stayed).
    let (ha, ga, _ea) = node(fast()).await;
    ga.subscribe(T).await.unwrap();
    let hb = host().await;
    let mut incoming = hb
        .handle("/meshsub/1.1.0", plexus_host::HandlerOpts::default())
        .unwrap();
    hb.connect(vec![addr_of(&ha)]).await.unwrap();
    let mut first = tokio::time::timeout(WAIT, incoming.next())
        .await
        .unwrap()
        .unwrap();
    first.stream.reset();
    let _s = subscribe_by_hand(&hb, &ha, T).await;
    let mut second = tokio::time::timeout(WAIT, incoming.next())
        .await
        .expect("a second stream from a")
        .unwrap();
    assert!(
        graft_arrives(&mut second.stream, T).await,
        "no GRAFT on the new stream"
    );
    let t: TopicHash = T.into();
    assert_eq!(wait_for_mesh(&ga, &t, 1, WAIT).await, 1, "a keeps b meshed");
}
