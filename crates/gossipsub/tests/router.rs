//! Router rules, one test per rule, against fake peers whose RPCs we write and whose frames we
//! decode. Each lesson of the incumbents (docs/gossipsub.md) has a test that fails on the wrong
//! behaviour.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use plexus_core::{Direction, PeerId};
use plexus_gossipsub::score::{PeerScoreParams, PeerScoreThresholds, TopicScoreParams};
use plexus_gossipsub::wire::{self, FrameDecoder, WireLimits};
use plexus_gossipsub::{
    Acceptance, Config, Control, Event, IHave, MessageId, PeerConn, Prune, PublishError,
    RawMessage, Router, Rpc, Signing, SubOpt, TopicHash, Version,
};

const T: &str = "/eth2/00000000/beacon_block/ssz_snappy";

fn topic() -> TopicHash {
    T.into()
}

fn peer(i: u8) -> PeerId {
    let mut k = [7u8; 32];
    k[0] = i;
    plexus_identity::Keypair::ed25519_from_bytes(k)
        .unwrap()
        .public()
        .to_peer_id()
}

fn cfg() -> Config {
    Config {
        heartbeat_initial_delay: Duration::from_millis(700),
        ..Config::default()
    }
}

struct H {
    r: Router,
    now: Instant,
}

impl H {
    fn new(cfg: Config) -> H {
        let now = Instant::now();
        H {
            r: Router::new(cfg, peer(0), 1, now).unwrap(),
            now,
        }
    }

    fn connect(&mut self, p: PeerId, dir: Direction, v: Version) {
        self.r.add_peer(
            p,
            PeerConn {
                direction: dir,
                ip: None,
            },
            self.now,
        );
        self.r.outbound_ready(p, v, self.now);
    }

    /// Connect `n` peers (1..=n) that subscribe to the topic; we subscribe too.
    fn with_peers(&mut self, n: u8, v: Version) -> Vec<PeerId> {
        let peers: Vec<PeerId> = (1..=n).map(peer).collect();
        for (i, p) in peers.iter().enumerate() {
            let dir = if i % 2 == 0 {
                Direction::Outbound
            } else {
                Direction::Inbound
            };
            self.connect(*p, dir, v);
            self.rpc(*p, subscribe_rpc(T));
        }
        self.r.subscribe(topic(), self.now);
        peers
    }

    fn rpc(&mut self, from: PeerId, rpc: Rpc) {
        self.r.handle_rpc(from, rpc, self.now);
    }

    fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        while self.r.poll_timeout() <= end {
            self.now = self.r.poll_timeout();
            self.r.handle_timeout(self.now);
        }
        self.now = end;
    }

    /// Every frame queued for `p`, decoded.
    fn sent(&mut self, p: PeerId) -> Vec<Rpc> {
        let mut out = Vec::new();
        while let Some(f) = self.r.pop_frame(&p, self.now) {
            out.push(decode(f));
        }
        out
    }

    fn events(&mut self) -> Vec<Event> {
        std::iter::from_fn(|| self.r.poll_event()).collect()
    }

    fn drain_all(&mut self) {
        for p in self.r.peers() {
            self.sent(p);
        }
        self.events();
    }
}

fn decode(frame: Bytes) -> Rpc {
    let mut dec = FrameDecoder::new(usize::MAX >> 1);
    let mut buf = BytesMut::from(&frame[..]);
    let body = dec.decode(&mut buf).unwrap().expect("a whole frame");
    assert!(buf.is_empty(), "one frame per pop");
    wire::decode_rpc(body, &WireLimits::default()).unwrap()
}

fn subscribe_rpc(t: &str) -> Rpc {
    Rpc {
        subscriptions: vec![SubOpt {
            subscribe: true,
            topic: t.into(),
        }],
        ..Rpc::default()
    }
}

fn message(data: &[u8]) -> RawMessage {
    let raw = wire::encode_message_raw(None, data, None, T, None, None);
    let rpc = decode(wire::encode_message_frame(&raw));
    rpc.messages.into_iter().next().unwrap()
}

fn msg_rpc(m: &RawMessage) -> Rpc {
    Rpc {
        messages: vec![m.clone()],
        ..Rpc::default()
    }
}

fn control(c: Control) -> Rpc {
    Rpc {
        control: c,
        ..Rpc::default()
    }
}

fn id_of(r: &Router, m: &RawMessage) -> MessageId {
    (r.config().message_id_fn)(m)
}

fn messages_in(rpcs: &[Rpc]) -> usize {
    rpcs.iter().map(|r| r.messages.len()).sum()
}

fn idontwants_in(rpcs: &[Rpc]) -> Vec<MessageId> {
    rpcs.iter()
        .flat_map(|r| r.control.idontwant.iter().cloned())
        .collect()
}

fn grafts_in(rpcs: &[Rpc]) -> usize {
    rpcs.iter().map(|r| r.control.graft.len()).sum()
}

fn prunes_in(rpcs: &[Rpc]) -> Vec<Prune> {
    rpcs.iter()
        .flat_map(|r| r.control.prune.iter().cloned())
        .collect()
}

fn validate_all(h: &mut H, verdict: Acceptance) -> usize {
    let mut n = 0;
    for ev in h.events() {
        if let Event::Message { id, .. } = ev {
            assert!(h.r.report_validation(&id, verdict, h.now));
            n += 1;
        }
    }
    n
}

/// A scoring setup where P₄ and P₇ bite fast.
fn scored_cfg() -> Config {
    let mut topics = HashMap::new();
    topics.insert(
        topic(),
        TopicScoreParams {
            topic_weight: 1.0,
            invalid_message_deliveries_weight: -100.0,
            invalid_message_deliveries_decay: 0.9,
            ..TopicScoreParams::default()
        },
    );
    let params = PeerScoreParams {
        topics,
        behaviour_penalty_weight: -10.0,
        behaviour_penalty_threshold: 0.0,
        ..PeerScoreParams::default()
    };
    let thresholds = PeerScoreThresholds {
        gossip_threshold: -50.0,
        publish_threshold: -100.0,
        graylist_threshold: -200.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 1.0,
    };
    Config {
        score: Some((params, thresholds)),
        ..cfg()
    }
}

// ----- the hello, versions, extensions -----

#[test]
fn first_frame_carries_subscriptions_and_v13_extensions_once() {
    let mut h = H::new(cfg());
    h.r.subscribe(topic(), h.now);
    let (a, b) = (peer(1), peer(2));
    h.connect(a, Direction::Outbound, Version::V1_3);
    h.connect(b, Direction::Outbound, Version::V1_2);
    let to_a = h.sent(a);
    assert_eq!(to_a.len(), 1);
    assert!(
        to_a[0].control.extensions.is_some(),
        "v1.3: extensions in the first RPC"
    );
    assert_eq!(to_a[0].subscriptions.len(), 1);
    let to_b = h.sent(b);
    assert!(to_b[0].control.extensions.is_none(), "never to a v1.2 peer");
    // Later control frames carry no second extensions message.
    h.rpc(a, subscribe_rpc(T));
    h.advance(Duration::from_secs(1));
    assert!(h.sent(a).iter().all(|r| r.control.extensions.is_none()));
}

#[test]
fn features_are_gated_on_the_negotiated_version() {
    let mut h = H::new(cfg());
    let peers = h.with_peers(3, Version::V1_0);
    let v12 = peer(9);
    h.connect(v12, Direction::Outbound, Version::V1_2);
    h.rpc(v12, subscribe_rpc(T));
    h.advance(Duration::from_secs(1));
    h.drain_all();
    // A large message from a v1.0 peer: IDONTWANT only to the v1.2 mesh peer.
    let m = message(&[1u8; 2000]);
    h.rpc(peers[0], msg_rpc(&m));
    for p in &peers[1..] {
        assert!(
            idontwants_in(&h.sent(*p)).is_empty(),
            "no IDONTWANT to v1.0"
        );
    }
    assert_eq!(idontwants_in(&h.sent(v12)).len(), 1);
    // PRUNE to a v1.0 peer has no backoff field.
    h.r.unsubscribe(&topic(), h.now);
    let prunes = prunes_in(&h.sent(peers[1]));
    assert_eq!(prunes.len(), 1);
    assert_eq!(prunes[0].backoff, None);
    let prunes = prunes_in(&h.sent(v12));
    assert_eq!(prunes[0].backoff, Some(10), "unsubscribe backoff to v1.1+");
}

// ----- IDONTWANT (lessons 1 and 2) -----

#[test]
fn idontwant_only_on_first_receipt_and_above_the_threshold() {
    let mut h = H::new(cfg());
    let peers = h.with_peers(4, Version::V1_2);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    let big = message(&[2u8; 1500]);
    let small = message(&[3u8; 100]);
    h.rpc(peers[0], msg_rpc(&big));
    h.rpc(peers[0], msg_rpc(&small));
    // A duplicate of the big one from another peer: no second IDONTWANT.
    h.rpc(peers[1], msg_rpc(&big));
    let id = id_of(&h.r, &big);
    for p in &peers[1..] {
        let sent = idontwants_in(&h.sent(*p));
        assert_eq!(
            sent,
            vec![id.clone()],
            "one IDONTWANT, for the large message only"
        );
    }
    assert!(
        idontwants_in(&h.sent(peers[0])).is_empty(),
        "not to the source"
    );
    assert_eq!(h.r.stats().idontwant_sent, 3);
}

#[test]
fn idontwant_on_publish_has_its_own_threshold() {
    let mut c = cfg();
    c.flood_publish = false;
    c.idontwant_on_publish_threshold = 5000;
    c.idontwant_message_size_threshold = 10;
    let mut h = H::new(c);
    let peers = h.with_peers(12, Version::V1_2);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    h.r.publish(topic(), Bytes::from(vec![1u8; 2000]), h.now)
        .unwrap();
    let any: usize = peers.iter().map(|p| idontwants_in(&h.sent(*p)).len()).sum();
    assert_eq!(any, 0, "2000 bytes is under the publish threshold");
    h.r.publish(topic(), Bytes::from(vec![2u8; 6000]), h.now)
        .unwrap();
    let mesh = h.r.mesh_peers(&topic());
    for p in &peers {
        let sent = h.sent(*p);
        if mesh.contains(p) {
            assert_eq!(messages_in(&sent), 1);
            assert!(
                idontwants_in(&sent).is_empty(),
                "recipients need no IDONTWANT"
            );
        } else {
            assert_eq!(idontwants_in(&sent).len(), 1, "non-recipients are told");
        }
    }
}

#[test]
fn received_idontwant_cancels_queued_copies_and_later_forwards() {
    let mut h = H::new(Config {
        validate_messages: false,
        ..cfg()
    });
    let peers = h.with_peers(3, Version::V1_2);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    let (src, slow) = (peers[0], peers[1]);
    // Two messages queued for `slow` (its writer has not taken them yet).
    let m1 = message(&[4u8; 3000]);
    let m2 = message(&[5u8; 3000]);
    h.rpc(src, msg_rpc(&m1));
    let (lens, _) = h.r.queued(&slow).unwrap();
    assert_eq!(lens[2], 1, "one forward queued");
    // `slow` says it has m1 and will not want m2.
    h.rpc(
        slow,
        control(Control {
            idontwant: vec![id_of(&h.r, &m1), id_of(&h.r, &m2)],
            ..Control::default()
        }),
    );
    assert_eq!(h.r.stats().idontwant_cancelled, 1);
    h.rpc(src, msg_rpc(&m2));
    let sent = h.sent(slow);
    assert_eq!(
        messages_in(&sent),
        0,
        "neither message goes to a peer that said IDONTWANT"
    );
    assert_eq!(h.r.stats().idontwant_skipped, 1);
    assert_eq!(messages_in(&h.sent(peers[2])), 2);
}

#[test]
fn idontwant_storage_is_bounded_and_expires() {
    let mut h = H::new(Config {
        max_idontwant_per_heartbeat: 100,
        ..cfg()
    });
    let peers = h.with_peers(1, Version::V1_2);
    let ids: Vec<MessageId> = (0..1000u32)
        .map(|i| MessageId::new(i.to_be_bytes().to_vec()))
        .collect();
    h.rpc(
        peers[0],
        control(Control {
            idontwant: ids,
            ..Control::default()
        }),
    );
    assert_eq!(h.r.dont_send_len(&peers[0]), 100);
    h.advance(Duration::from_millis(700 * 5));
    assert_eq!(
        h.r.dont_send_len(&peers[0]),
        0,
        "expired after 3 heartbeats"
    );
}

#[test]
fn control_we_send_is_split_to_what_every_implementation_reads() {
    let mut h = H::new(Config {
        validate_messages: false,
        idontwant_message_size_threshold: 10,
        ..cfg()
    });
    let peers = h.with_peers(2, Version::V1_2);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    // 600 large messages in one RPC: 600 IDONTWANTs for the other mesh peer.
    let rpc = Rpc {
        messages: (0..600u32)
            .map(|i| message(&[&i.to_be_bytes()[..], &[0u8; 60]].concat()))
            .collect(),
        ..Rpc::default()
    };
    h.rpc(peers[0], rpc);
    let mut frames = Vec::new();
    while let Some(f) = h.r.pop_frame(&peers[1], h.now) {
        frames.push(f);
    }
    let control: Vec<Rpc> = frames
        .into_iter()
        .map(decode)
        .filter(|r| !r.control.idontwant.is_empty())
        .collect();
    assert_eq!(
        control
            .iter()
            .map(|r| r.control.idontwant.len())
            .sum::<usize>(),
        600
    );
    assert!(control.len() >= 2);
    assert!(
        control
            .iter()
            .all(|r| r.control.idontwant.len() <= plexus_gossipsub::MAX_SENT_IDONTWANT_PER_RPC)
    );
}

#[test]
fn ihave_across_topics_is_split_at_5000_ids_per_rpc() {
    let mut c = cfg();
    c.mesh_n = 1;
    c.mesh_n_low = 1;
    c.mesh_n_high = 1;
    c.mesh_outbound_min = 0;
    c.mesh_outbound_min_score_kept = 1;
    c.flood_publish = false;
    let mut h = H::new(c);
    let topics = ["a", "b", "c"];
    let peers: Vec<PeerId> = (1..=3).map(peer).collect();
    for p in &peers {
        h.connect(*p, Direction::Outbound, Version::V1_1);
        for t in topics {
            h.rpc(*p, subscribe_rpc(t));
        }
    }
    for t in topics {
        h.r.subscribe(t.into(), h.now);
        for i in 0..4000u32 {
            h.r.publish(t.into(), Bytes::from(i.to_be_bytes().to_vec()), h.now)
                .unwrap();
        }
    }
    h.drain_all();
    h.advance(Duration::from_millis(800));
    let mut total = 0;
    for p in &peers {
        for r in h.sent(*p) {
            let ids: usize = r.control.ihave.iter().map(|i| i.ids.len()).sum();
            assert!(
                ids <= plexus_gossipsub::MAX_SENT_IDS_PER_RPC,
                "{ids} IHAVE ids in one RPC"
            );
            total += ids;
        }
    }
    assert!(
        total > 5000,
        "the gossip was large enough to need splitting ({total})"
    );
}

// ----- lazy push -----

fn lazy_cfg(eager: usize) -> Config {
    Config {
        validate_messages: false,
        lazy_push_threshold: 16 * 1024,
        lazy_push_eager: eager,
        ..cfg()
    }
}

fn ihave_ids_in(rpcs: &[Rpc]) -> Vec<MessageId> {
    rpcs.iter()
        .flat_map(|r| r.control.ihave.iter().flat_map(|i| i.ids.iter().cloned()))
        .collect()
}

/// Whole copies and lazy announcements each mesh peer got.
fn copies_and_announcements(h: &mut H, peers: &[PeerId], id: &MessageId) -> (usize, usize) {
    let (mut whole, mut announced) = (0, 0);
    for p in peers {
        let sent = h.sent(*p);
        let m = messages_in(&sent);
        let a = ihave_ids_in(&sent).iter().filter(|i| *i == id).count();
        assert!(
            m + a <= 1,
            "a peer gets a copy or an announcement, not both"
        );
        whole += m;
        announced += a;
    }
    (whole, announced)
}

#[test]
fn lazy_push_forwards_large_messages_whole_to_a_few_and_announces_them_to_the_rest() {
    let mut h = H::new(lazy_cfg(2));
    let peers = h.with_peers(8, Version::V1_2);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    let mesh = h.r.mesh_peers(&topic());
    assert_eq!(mesh.len(), 8);
    let src = mesh[0];
    let big = message(&[6u8; 20_000]);
    h.rpc(src, msg_rpc(&big));
    let id = id_of(&h.r, &big);
    let (whole, announced) = copies_and_announcements(&mut h, &mesh[1..], &id);
    assert_eq!((whole, announced), (2, 5), "two whole copies, five IHAVEs");
    assert_eq!(h.r.stats().lazy_push_announced, 5);
    // Under the threshold every copy goes whole, as without lazy push.
    let small = message(&[7u8; 10_000]);
    h.rpc(src, msg_rpc(&small));
    let id = id_of(&h.r, &small);
    assert_eq!(copies_and_announcements(&mut h, &mesh[1..], &id), (7, 0));
    let _ = peers;
}

#[test]
fn lazy_push_sends_fewer_whole_copies_as_more_mesh_peers_have_the_message() {
    let mut h = H::new(Config {
        validate_messages: true,
        ..lazy_cfg(3)
    });
    h.with_peers(8, Version::V1_2);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    let mesh = h.r.mesh_peers(&topic());
    let big = message(&[8u8; 20_000]);
    let id = id_of(&h.r, &big);
    // The sender, a peer that sent a copy while it was validated, and one that said
    // IDONTWANT: two beyond the sender, so one whole copy of three is left.
    h.rpc(mesh[0], msg_rpc(&big));
    h.rpc(mesh[1], msg_rpc(&big));
    h.rpc(
        mesh[2],
        control(Control {
            idontwant: vec![id.clone()],
            ..Control::default()
        }),
    );
    for p in &mesh {
        h.sent(*p);
    }
    assert_eq!(validate_all(&mut h, Acceptance::Accept), 1);
    assert_eq!(copies_and_announcements(&mut h, &mesh[3..], &id), (1, 4));
    // With as many beyond the sender as whole copies, none goes whole.
    let big = message(&[9u8; 20_000]);
    let id = id_of(&h.r, &big);
    for p in &mesh[..4] {
        h.rpc(*p, msg_rpc(&big));
    }
    for p in &mesh {
        h.sent(*p);
    }
    assert_eq!(validate_all(&mut h, Acceptance::Accept), 1);
    assert_eq!(copies_and_announcements(&mut h, &mesh[4..], &id), (0, 4));
}

#[test]
fn lazy_push_announcements_are_pulled_with_iwant_and_never_replace_own_publishes() {
    let mut h = H::new(Config {
        flood_publish: false,
        ..lazy_cfg(0)
    });
    h.with_peers(8, Version::V1_1);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    let mesh = h.r.mesh_peers(&topic());
    let big = message(&[10u8; 20_000]);
    h.rpc(mesh[0], msg_rpc(&big));
    let id = id_of(&h.r, &big);
    assert_eq!(copies_and_announcements(&mut h, &mesh[1..], &id), (0, 7));
    // A peer that did not get it elsewhere asks, and gets it.
    h.rpc(
        mesh[1],
        control(Control {
            iwant: vec![id.clone()],
            ..Control::default()
        }),
    );
    let (lens, _) = h.r.queued(&mesh[1]).unwrap();
    assert_eq!(lens[2..], [1, 0], "served with the forwards, not as gossip");
    assert_eq!(messages_in(&h.sent(mesh[1])), 1);
    // Our own large publish goes whole to the mesh.
    h.r.publish(topic(), Bytes::from(vec![11u8; 20_000]), h.now)
        .unwrap();
    for p in &mesh {
        assert_eq!(messages_in(&h.sent(*p)), 1, "own publish is never lazy");
    }
}

#[test]
fn lazy_push_announcements_per_peer_per_heartbeat_are_capped() {
    let mut h = H::new(Config {
        max_lazy_push_per_heartbeat: 2,
        heartbeat_interval: Duration::from_secs(10),
        ..lazy_cfg(0)
    });
    h.with_peers(4, Version::V1_2);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    let mesh = h.r.mesh_peers(&topic());
    let mut whole = 0;
    let mut announced = 0;
    for k in 0..4u8 {
        let m = message(&[20 + k; 20_000]);
        h.rpc(mesh[0], msg_rpc(&m));
        let id = id_of(&h.r, &m);
        let (w, a) = copies_and_announcements(&mut h, &mesh[1..2], &id);
        whole += w;
        announced += a;
    }
    assert_eq!(
        (whole, announced),
        (2, 2),
        "past two announcements, copies go whole"
    );
    // The next heartbeat allows two more.
    h.advance(Duration::from_secs(10));
    h.drain_all();
    let m = message(&[30u8; 20_000]);
    h.rpc(mesh[0], msg_rpc(&m));
    let id = id_of(&h.r, &m);
    assert_eq!(copies_and_announcements(&mut h, &mesh[1..2], &id), (0, 1));
}

// ----- send queue (lesson 3) -----

#[test]
fn a_slow_peer_loses_stale_forwards_is_reported_and_delays_no_one() {
    let mut h = H::new(Config {
        validate_messages: false,
        ..cfg()
    });
    let peers = h.with_peers(3, Version::V1_1);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    let slow = peers[1];
    for i in 0..5u8 {
        h.rpc(peers[0], msg_rpc(&message(&[i; 500])));
    }
    // The fast peer's writer drains everything now.
    assert_eq!(messages_in(&h.sent(peers[2])), 5);
    // The slow one takes nothing for longer than the forward timeout.
    h.advance(Duration::from_secs(3));
    let slow_events: Vec<_> = h
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::SlowPeer { peer, .. } if *peer == slow))
        .collect();
    assert_eq!(slow_events.len(), 1);
    if let Event::SlowPeer { dropped, .. } = &slow_events[0] {
        assert_eq!(dropped[2], 5, "five stale forwards dropped");
    }
    assert_eq!(messages_in(&h.sent(slow)), 0);
}

#[test]
fn own_publishes_are_never_dropped_by_the_queue() {
    let mut h = H::new(cfg());
    let peers = h.with_peers(2, Version::V1_1);
    h.drain_all();
    for i in 0..10u8 {
        h.r.publish(topic(), Bytes::from(vec![i; 1000]), h.now)
            .unwrap();
    }
    h.advance(Duration::from_secs(60));
    assert_eq!(
        messages_in(&h.sent(peers[0])),
        10,
        "no timeout on own publishes"
    );
}

#[test]
fn a_full_publish_queue_is_reported() {
    let mut c = cfg();
    c.queue.max_publish_bytes = 3000;
    let mut h = H::new(c);
    let peers = h.with_peers(1, Version::V1_1);
    h.drain_all();
    h.r.publish(topic(), Bytes::from(vec![1; 2000]), h.now)
        .unwrap();
    let err =
        h.r.publish(topic(), Bytes::from(vec![2; 2000]), h.now)
            .unwrap_err();
    assert_eq!(err, PublishError::QueuesFull);
    assert_eq!(messages_in(&h.sent(peers[0])), 1);
}

#[test]
fn control_goes_before_publishes_before_forwards_before_gossip() {
    let mut h = H::new(Config {
        validate_messages: false,
        ..cfg()
    });
    let peers = h.with_peers(2, Version::V1_1);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    let p = peers[1];
    let fwd = message(&[9u8; 50]);
    h.rpc(peers[0], msg_rpc(&fwd));
    h.r.publish(topic(), Bytes::from_static(b"mine"), h.now)
        .unwrap();
    h.r.unsubscribe(&topic(), h.now);
    let sent = h.sent(p);
    assert!(!sent[0].control.prune.is_empty(), "control first");
    assert_eq!(sent[1].subscriptions.len(), 1, "both control frames");
    assert_eq!(&sent[2].messages[0].data[..], b"mine", "then own publish");
    assert_eq!(sent[3].messages[0].data, fwd.data, "then the forward");
}

#[test]
fn a_large_flood_publish_goes_to_the_mesh_first() {
    let mut h = H::new(cfg());
    let peers = h.with_peers(20, Version::V1_1);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    let mesh = h.r.mesh_peers(&topic());
    assert_eq!(mesh.len(), 8);
    let others: Vec<PeerId> = peers
        .iter()
        .filter(|p| !mesh.contains(p))
        .copied()
        .collect();
    // Small: everyone at once.
    h.r.publish(topic(), Bytes::from(vec![1u8; 100]), h.now)
        .unwrap();
    for p in &peers {
        assert_eq!(messages_in(&h.sent(*p)), 1);
    }
    // Large: the other topic peers wait until every mesh writer finished its copy.
    h.r.publish(topic(), Bytes::from(vec![2u8; 100_000]), h.now)
        .unwrap();
    for p in &others {
        assert!(h.r.pop_frame(p, h.now).is_none(), "not before the mesh");
    }
    for p in &mesh[..7] {
        assert!(h.r.pop_frame(p, h.now).is_some());
        assert!(
            h.r.pop_frame(p, h.now).is_none(),
            "the writer is back: copy written"
        );
    }
    assert!(
        h.r.pop_frame(&others[0], h.now).is_none(),
        "one mesh copy still in flight"
    );
    assert!(h.r.pop_frame(&mesh[7], h.now).is_some());
    // The writer reports the copy written without taking another frame.
    h.r.frame_written(&mesh[7], h.now);
    for p in &others {
        assert_eq!(
            messages_in(&h.sent(*p)),
            1,
            "released after the last mesh copy"
        );
    }
    // A mesh writer that never comes back holds the rest for one heartbeat at most.
    h.r.publish(topic(), Bytes::from(vec![3u8; 100_000]), h.now)
        .unwrap();
    assert!(h.r.pop_frame(&others[0], h.now).is_none());
    h.advance(Duration::from_secs(1));
    assert_eq!(messages_in(&h.sent(others[0])), 1);
}

#[test]
fn batch_publish_rotates_first_copies_across_peers() {
    let mut c = cfg();
    c.flood_publish = false;
    let mut h = H::new(c);
    h.with_peers(8, Version::V1_1);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    let msgs: Vec<(TopicHash, Bytes)> = (0..8u8)
        .map(|i| (topic(), Bytes::from(vec![i; 100])))
        .collect();
    let res = h.r.publish_batch(msgs, h.now);
    assert!(res.iter().all(Result::is_ok));
    let mesh = h.r.mesh_peers(&topic());
    assert_eq!(mesh.len(), 8);
    let mut firsts = std::collections::BTreeSet::new();
    for p in mesh {
        let first = h.r.pop_frame(&p, h.now).unwrap();
        firsts.insert(decode(first).messages[0].data.clone());
    }
    assert_eq!(
        firsts.len(),
        8,
        "each peer's first frame is a different message"
    );
}

// ----- validation pipeline -----

#[test]
fn forwarded_only_after_accept_and_ignore_stops_forwarding() {
    let mut h = H::new(cfg());
    let peers = h.with_peers(3, Version::V1_1);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    let m = message(b"accept me");
    h.rpc(peers[0], msg_rpc(&m));
    assert_eq!(messages_in(&h.sent(peers[1])), 0, "not before validation");
    assert_eq!(validate_all(&mut h, Acceptance::Accept), 1);
    assert_eq!(messages_in(&h.sent(peers[1])), 1);
    assert_eq!(messages_in(&h.sent(peers[2])), 1);
    assert_eq!(messages_in(&h.sent(peers[0])), 0, "not back to the source");
    // Lesson 9: an IGNOREd message (e.g. from a past slot) is not forwarded.
    let old = message(b"past slot");
    h.rpc(peers[0], msg_rpc(&old));
    validate_all(&mut h, Acceptance::Ignore);
    assert_eq!(messages_in(&h.sent(peers[1])), 0);
    assert_eq!(messages_in(&h.sent(peers[2])), 0);
    // And not served to IWANT either.
    h.rpc(
        peers[1],
        control(Control {
            iwant: vec![id_of(&h.r, &old)],
            ..Control::default()
        }),
    );
    assert_eq!(messages_in(&h.sent(peers[1])), 0);
}

#[test]
fn reject_penalises_the_sender_ignore_does_not() {
    let mut h = H::new(scored_cfg());
    let peers = h.with_peers(2, Version::V1_1);
    h.drain_all();
    h.rpc(peers[0], msg_rpc(&message(b"bad")));
    validate_all(&mut h, Acceptance::Reject);
    h.rpc(peers[1], msg_rpc(&message(b"stale")));
    validate_all(&mut h, Acceptance::Ignore);
    assert!(h.r.peer_score(&peers[0], h.now) < 0.0);
    assert_eq!(h.r.peer_score(&peers[1], h.now), 0.0);
}

#[test]
fn topic_score_params_can_be_set_and_dropped_at_run_time() {
    let mut h = H::new(scored_cfg());
    let peers = h.with_peers(2, Version::V1_1);
    h.drain_all();
    // Unscored at first: a rejected message on another topic costs nothing.
    let other: TopicHash = "other".into();
    h.rpc(peers[0], subscribe_rpc("other"));
    h.r.subscribe(other.clone(), h.now);
    let bad = RawMessage {
        topic: other.clone(),
        ..message(b"bad on other")
    };
    h.rpc(peers[0], msg_rpc(&bad));
    validate_all(&mut h, Acceptance::Reject);
    assert_eq!(h.r.peer_score(&peers[0], h.now), 0.0);
    // Parameters that break the spec's rules are refused.
    let invalid = TopicScoreParams {
        invalid_message_deliveries_weight: 5.0,
        ..TopicScoreParams::default()
    };
    assert!(!h.r.set_topic_score_params(other.clone(), Some(invalid)));
    // Scored from now on.
    let params = TopicScoreParams {
        topic_weight: 1.0,
        invalid_message_deliveries_weight: -100.0,
        ..TopicScoreParams::default()
    };
    assert!(h.r.set_topic_score_params(other.clone(), Some(params)));
    let bad2 = RawMessage {
        topic: other.clone(),
        ..message(b"bad again")
    };
    h.rpc(peers[0], msg_rpc(&bad2));
    validate_all(&mut h, Acceptance::Reject);
    assert!(h.r.peer_score(&peers[0], h.now) <= -100.0);
    // Dropped: the topic's counters go with it.
    assert!(h.r.set_topic_score_params(other, None));
    assert_eq!(h.r.peer_score(&peers[0], h.now), 0.0);
    // Scoring off: nothing to set.
    let mut plain = H::new(cfg());
    assert!(!plain.r.set_topic_score_params(topic(), None));
}

#[test]
fn strict_no_sign_rejects_signed_fields() {
    let mut h = H::new(scored_cfg());
    let peers = h.with_peers(2, Version::V1_1);
    h.drain_all();
    let raw = wire::encode_message_raw(
        Some(peers[0].as_bytes()),
        b"x",
        Some(&7u64.to_be_bytes()),
        T,
        None,
        None,
    );
    let m = decode(wire::encode_message_frame(&raw)).messages.remove(0);
    h.rpc(peers[0], msg_rpc(&m));
    assert!(
        h.events()
            .iter()
            .all(|e| !matches!(e, Event::Message { .. }))
    );
    assert_eq!(h.r.topic_stats()[&topic()].rejected, 1);
    assert!(
        h.r.peer_score(&peers[0], h.now) < 0.0,
        "P4 for breaking StrictNoSign"
    );
}

#[test]
fn strict_sign_accepts_signed_and_rejects_unsigned() {
    let key = plexus_identity::Keypair::ed25519_from_bytes([3; 32]).unwrap();
    let mut h = H::new(Config {
        signing: Signing::StrictSign(Box::new(key)),
        ..cfg()
    });
    let peers = h.with_peers(1, Version::V1_1);
    h.drain_all();
    let author = plexus_identity::Keypair::ed25519_from_bytes([4; 32]).unwrap();
    let signed = wire::sign_message(&author, T, b"hello", 1);
    let m = decode(wire::encode_message_frame(&signed))
        .messages
        .remove(0);
    h.rpc(peers[0], msg_rpc(&m));
    assert_eq!(validate_all(&mut h, Acceptance::Accept), 1);
    h.rpc(peers[0], msg_rpc(&message(b"unsigned")));
    assert_eq!(validate_all(&mut h, Acceptance::Accept), 0);
    assert_eq!(h.r.topic_stats()[&topic()].rejected, 1);
}

#[test]
fn duplicates_are_caught_on_the_raw_bytes_before_the_id_function() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let c2 = calls.clone();
    let mut h = H::new(Config {
        message_id_fn: Arc::new(move |m: &RawMessage| {
            c2.fetch_add(1, Ordering::Relaxed);
            plexus_gossipsub::default_message_id(m)
        }),
        ..cfg()
    });
    let peers = h.with_peers(3, Version::V1_1);
    h.drain_all();
    let m = message(b"dup");
    for p in &peers {
        h.rpc(*p, msg_rpc(&m));
    }
    assert_eq!(calls.load(Ordering::Relaxed), 1, "id computed once");
    assert_eq!(h.r.topic_stats()[&topic()].duplicates, 2);
    assert_eq!(validate_all(&mut h, Acceptance::Accept), 1);
    // Copies that arrived while it waited are not sent back to their senders.
    assert_eq!(messages_in(&h.sent(peers[1])), 0);
    assert_eq!(messages_in(&h.sent(peers[2])), 0);
}

#[test]
fn pending_validations_are_bounded_per_topic_and_time_out() {
    let mut h = H::new(Config {
        max_pending_validations_per_topic: 2,
        validation_timeout: Duration::from_secs(2),
        ..cfg()
    });
    let peers = h.with_peers(1, Version::V1_1);
    h.drain_all();
    for i in 0..5u8 {
        h.rpc(peers[0], msg_rpc(&message(&[i])));
    }
    assert_eq!(h.r.pending_validations(), 2);
    assert_eq!(h.r.topic_stats()[&topic()].ignored, 3);
    // A copy of a dropped one can still come later.
    h.rpc(peers[0], msg_rpc(&message(&[4])));
    assert_eq!(h.r.topic_stats()[&topic()].duplicates, 0);
    h.advance(Duration::from_secs(3));
    assert_eq!(h.r.pending_validations(), 0, "timed out as ignored");
}

// ----- publish (lessons 5 and 6) -----

#[test]
fn publishing_a_message_we_already_have_is_a_duplicate_and_penalises_no_one() {
    let mut h = H::new(scored_cfg());
    let peers = h.with_peers(2, Version::V1_1);
    h.drain_all();
    let m = message(b"same content");
    h.rpc(peers[0], msg_rpc(&m));
    validate_all(&mut h, Acceptance::Accept);
    let err =
        h.r.publish(topic(), Bytes::from_static(b"same content"), h.now)
            .unwrap_err();
    assert!(matches!(err, PublishError::Duplicate(_)));
    assert!(h.r.peer_score(&peers[0], h.now) >= 0.0);
    // The other way round: we publish, then a peer sends the same content.
    let id =
        h.r.publish(topic(), Bytes::from_static(b"ours"), h.now)
            .unwrap();
    h.rpc(peers[1], msg_rpc(&message(b"ours")));
    assert_eq!(id, id_of(&h.r, &message(b"ours")));
    assert!(h.r.peer_score(&peers[1], h.now) >= 0.0);
}

#[test]
fn publishing_what_we_asked_for_clears_the_promise() {
    let mut h = H::new(scored_cfg());
    let peers = h.with_peers(1, Version::V1_1);
    h.drain_all();
    let m = message(b"advertised");
    let id = id_of(&h.r, &m);
    h.rpc(peers[0], ihave(&id));
    let sent = h.sent(peers[0]);
    assert_eq!(sent.iter().map(|r| r.control.iwant.len()).sum::<usize>(), 1);
    // We publish the same content ourselves before the peer answers.
    h.r.publish(topic(), Bytes::from_static(b"advertised"), h.now)
        .unwrap();
    h.advance(Duration::from_secs(5));
    assert_eq!(h.r.stats().broken_promises, 0);
    assert!(h.r.peer_score(&peers[0], h.now) >= 0.0);
}

#[test]
fn a_broken_iwant_promise_is_penalised() {
    let mut h = H::new(scored_cfg());
    let peers = h.with_peers(1, Version::V1_1);
    h.drain_all();
    h.rpc(
        peers[0],
        control(Control {
            ihave: vec![IHave {
                topic: topic(),
                ids: vec![MessageId::new(vec![1; 20])],
            }],
            ..Control::default()
        }),
    );
    h.advance(Duration::from_secs(5));
    assert_eq!(h.r.stats().broken_promises, 1);
    assert!(h.r.peer_score(&peers[0], h.now) < 0.0);
}

fn ihave(id: &MessageId) -> Rpc {
    control(Control {
        ihave: vec![IHave {
            topic: topic(),
            ids: vec![id.clone()],
        }],
        ..Control::default()
    })
}

fn iwants_in(rpcs: &[Rpc]) -> Vec<MessageId> {
    rpcs.iter()
        .flat_map(|r| r.control.iwant.iter().cloned())
        .collect()
}

#[test]
fn a_broken_promise_is_asked_of_the_next_announcer() {
    let mut h = H::new(cfg());
    let peers = h.with_peers(3, Version::V1_1);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    let id = MessageId::new(vec![2; 20]);
    for p in &peers {
        h.rpc(*p, ihave(&id));
    }
    // Asked of the first only; the others are remembered.
    assert_eq!(iwants_in(&h.sent(peers[0])), vec![id.clone()]);
    assert!(iwants_in(&h.sent(peers[1])).is_empty());
    assert!(iwants_in(&h.sent(peers[2])).is_empty());
    // The first does not deliver: past its follow-up time the second is asked, then the third.
    h.advance(Duration::from_secs(4));
    assert_eq!(h.r.stats().broken_promises, 1);
    assert_eq!(iwants_in(&h.sent(peers[1])), vec![id.clone()]);
    assert!(iwants_in(&h.sent(peers[2])).is_empty());
    h.advance(Duration::from_secs(4));
    assert_eq!(iwants_in(&h.sent(peers[2])), vec![id.clone()]);
    h.advance(Duration::from_secs(4));
    assert_eq!(h.r.stats().broken_promises, 3);
    for p in &peers {
        assert!(iwants_in(&h.sent(*p)).is_empty(), "no one is left to ask");
    }
}

#[test]
fn an_announcer_that_leaves_hands_its_promise_to_the_next() {
    let mut h = H::new(Config {
        validate_messages: false,
        ..cfg()
    });
    let peers = h.with_peers(3, Version::V1_1);
    h.advance(Duration::from_secs(1));
    h.drain_all();
    let m = message(&[40u8; 3000]);
    let id = id_of(&h.r, &m);
    h.rpc(peers[0], ihave(&id));
    h.rpc(peers[1], ihave(&id));
    h.drain_all();
    h.r.remove_peer(&peers[0], h.now);
    assert_eq!(
        iwants_in(&h.sent(peers[1])),
        vec![id.clone()],
        "asked at once"
    );
    // It arrives: nobody else is asked, and no promise breaks.
    h.rpc(peers[1], msg_rpc(&m));
    h.rpc(peers[2], ihave(&id));
    h.advance(Duration::from_secs(8));
    assert!(iwants_in(&h.sent(peers[2])).is_empty());
    assert_eq!(h.r.stats().broken_promises, 0);
}

// ----- control-plane limits -----

#[test]
fn ihave_is_bounded_per_heartbeat() {
    let mut h = H::new(Config {
        max_ihave_messages: 2,
        max_ihave_length: 5,
        ..cfg()
    });
    let peers = h.with_peers(1, Version::V1_1);
    h.drain_all();
    let ihave = |k: u8| {
        control(Control {
            ihave: vec![IHave {
                topic: topic(),
                ids: (0..4u8).map(|i| MessageId::new(vec![k, i])).collect(),
            }],
            ..Control::default()
        })
    };
    for k in 0..4 {
        h.rpc(peers[0], ihave(k));
    }
    let asked: usize = h.sent(peers[0]).iter().map(|r| r.control.iwant.len()).sum();
    assert_eq!(asked, 5, "5 ids per heartbeat, from at most 2 IHAVEs");
}

#[test]
fn iwant_is_served_at_most_gossip_retransmission_times() {
    let mut h = H::new(Config {
        gossip_retransmission: 2,
        ..cfg()
    });
    let peers = h.with_peers(1, Version::V1_1);
    h.drain_all();
    let id =
        h.r.publish(topic(), Bytes::from_static(b"x"), h.now)
            .unwrap();
    h.drain_all();
    for _ in 0..4 {
        h.rpc(
            peers[0],
            control(Control {
                iwant: vec![id.clone()],
                ..Control::default()
            }),
        );
    }
    assert_eq!(messages_in(&h.sent(peers[0])), 2);
}

#[test]
fn subscriptions_per_peer_are_capped() {
    let mut h = H::new(Config {
        max_subscriptions_per_peer: 3,
        ..cfg()
    });
    let p = peer(1);
    h.connect(p, Direction::Inbound, Version::V1_1);
    let rpc = Rpc {
        subscriptions: (0..10)
            .map(|i| SubOpt {
                subscribe: true,
                topic: format!("t{i}").into(),
            })
            .collect(),
        ..Rpc::default()
    };
    h.rpc(p, rpc);
    let subs = h
        .events()
        .iter()
        .filter(|e| matches!(e, Event::Subscribed { .. }))
        .count();
    assert_eq!(subs, 3);
    assert_eq!(h.r.stats().subscriptions_refused, 7);
}

// ----- GRAFT / PRUNE / backoff (lessons 7 and 8) -----

#[test]
fn prune_backoff_from_a_peer_is_clamped() {
    let mut h = H::new(cfg());
    let peers = h.with_peers(1, Version::V1_1);
    h.drain_all();
    h.rpc(
        peers[0],
        control(Control {
            prune: vec![Prune {
                topic: topic(),
                peers: vec![],
                backoff: Some(u64::MAX),
            }],
            ..Control::default()
        }),
    );
    assert!(h.r.in_backoff(&topic(), &peers[0], h.now));
    // Clamped to max_prune_backoff (1 h): expired after 2 h of heartbeats.
    h.advance(Duration::from_secs(3601 + 2));
    assert!(!h.r.in_backoff(&topic(), &peers[0], h.now));
}

#[test]
fn unsubscribe_sends_the_prune_before_the_unsubscription() {
    let mut h = H::new(cfg());
    let peers = h.with_peers(1, Version::V1_1);
    h.drain_all();
    h.r.unsubscribe(&topic(), h.now);
    let sent = h.sent(peers[0]);
    assert_eq!(sent.len(), 2);
    assert_eq!(sent[0].control.prune.len(), 1);
    assert!(sent[0].subscriptions.is_empty(), "PRUNE first, alone");
    assert_eq!(sent[1].subscriptions.len(), 1);
    assert!(!sent[1].subscriptions[0].subscribe);
}

#[test]
fn prunes_for_topics_we_do_not_have_leave_no_state() {
    let mut h = H::new(cfg());
    let peers = h.with_peers(1, Version::V1_1);
    let prune = |t: String| Prune {
        topic: t.into(),
        peers: vec![],
        backoff: Some(3600),
    };
    h.rpc(
        peers[0],
        control(Control {
            prune: (0..1000).map(|i| prune(format!("made-up-{i}"))).collect(),
            ..Control::default()
        }),
    );
    assert!(!h.r.in_backoff(&"made-up-1".into(), &peers[0], h.now));
    assert!(!h.r.in_backoff(&topic(), &peers[0], h.now));
}

#[test]
fn subscribe_honours_backoff() {
    let mut h = H::new(cfg());
    let peers = h.with_peers(1, Version::V1_1);
    assert_eq!(h.r.mesh_peers(&topic()), peers);
    h.drain_all();
    h.rpc(
        peers[0],
        control(Control {
            prune: vec![Prune {
                topic: topic(),
                peers: vec![],
                backoff: Some(30),
            }],
            ..Control::default()
        }),
    );
    h.r.unsubscribe(&topic(), h.now);
    h.r.subscribe(topic(), h.now);
    assert_eq!(
        grafts_in(&h.sent(peers[0])),
        0,
        "no GRAFT inside the backoff"
    );
    h.advance(Duration::from_secs(10));
    assert_eq!(grafts_in(&h.sent(peers[0])), 0, "nor from the heartbeat");
    h.advance(Duration::from_secs(25));
    assert_eq!(grafts_in(&h.sent(peers[0])), 1, "after the backoff");
}

#[test]
fn graft_inside_backoff_is_pruned_and_penalised() {
    let mut h = H::new(scored_cfg());
    let peers = h.with_peers(1, Version::V1_1);
    h.r.unsubscribe(&topic(), h.now);
    h.r.subscribe(topic(), h.now);
    h.drain_all();
    h.rpc(
        peers[0],
        control(Control {
            graft: vec![topic()],
            ..Control::default()
        }),
    );
    let prunes = prunes_in(&h.sent(peers[0]));
    assert_eq!(prunes.len(), 1);
    assert!(h.r.mesh_peers(&topic()).is_empty());
    assert_eq!(h.r.stats().graft_in_backoff, 1);
    assert!(
        h.r.peer_score(&peers[0], h.now) < 0.0,
        "P7 (doubled: a graft flood)"
    );
}

#[test]
fn graft_for_an_unknown_topic_is_ignored() {
    let mut h = H::new(cfg());
    let peers = h.with_peers(1, Version::V1_1);
    h.drain_all();
    h.rpc(
        peers[0],
        control(Control {
            graft: vec!["other".into()],
            ..Control::default()
        }),
    );
    assert!(h.sent(peers[0]).is_empty());
}

#[test]
fn inbound_graft_into_a_full_mesh_is_pruned() {
    let mut h = H::new(cfg());
    let peers: Vec<PeerId> = (1..=16).map(peer).collect();
    for p in &peers {
        h.connect(*p, Direction::Inbound, Version::V1_1);
        h.rpc(*p, subscribe_rpc(T));
    }
    h.r.subscribe(topic(), h.now);
    assert_eq!(h.r.mesh_peers(&topic()).len(), 8);
    h.drain_all();
    let mut pruned = 0;
    for p in &peers {
        h.rpc(
            *p,
            control(Control {
                graft: vec![topic()],
                ..Control::default()
            }),
        );
        pruned += prunes_in(&h.sent(*p)).len();
    }
    assert_eq!(
        h.r.mesh_peers(&topic()).len(),
        12,
        "inbound grafts fill up to D_high"
    );
    assert_eq!(pruned, 4, "and beyond it are answered with PRUNE");
}

// ----- the seed-2 hook -----

#[test]
fn only_accepted_peers_are_grafted_and_unaccepted_grafts_get_prune_without_penalty() {
    let mut h = H::new(Config {
        accept_by_default: false,
        ..scored_cfg()
    });
    let peers = h.with_peers(4, Version::V1_1);
    assert!(h.r.mesh_peers(&topic()).is_empty(), "nobody accepted yet");
    h.drain_all();
    h.rpc(
        peers[0],
        control(Control {
            graft: vec![topic()],
            ..Control::default()
        }),
    );
    assert_eq!(prunes_in(&h.sent(peers[0])).len(), 1);
    assert_eq!(h.r.peer_score(&peers[0], h.now), 0.0, "no penalty");
    assert_eq!(h.r.stats().graft_not_accepted, 1);
    h.r.set_accepted(peers[1], true, h.now);
    h.r.set_accepted(peers[2], true, h.now);
    h.advance(Duration::from_secs(1));
    let mut mesh = h.r.mesh_peers(&topic());
    mesh.sort();
    let mut want = vec![peers[1], peers[2]];
    want.sort();
    assert_eq!(mesh, want);
    // Losing acceptance prunes.
    h.drain_all();
    h.r.set_accepted(peers[1], false, h.now);
    assert_eq!(h.r.mesh_peers(&topic()), vec![peers[2]]);
    assert_eq!(prunes_in(&h.sent(peers[1])).len(), 1);
    // Nor do unaccepted peers get our publishes (flood publish included).
    h.r.publish(topic(), Bytes::from_static(b"m"), h.now)
        .unwrap();
    assert_eq!(messages_in(&h.sent(peers[3])), 0);
    assert_eq!(messages_in(&h.sent(peers[2])), 1);
}

#[test]
fn a_graft_refused_before_acceptance_backs_off_briefly_then_the_mesh_forms() {
    let mut h = H::new(Config {
        accept_by_default: false,
        ..scored_cfg()
    });
    let peers = h.with_peers(1, Version::V1_1);
    h.drain_all();
    // The peer accepted us first and grafts; its Status with us is still running.
    h.rpc(
        peers[0],
        control(Control {
            graft: vec![topic()],
            ..Control::default()
        }),
    );
    let prunes = prunes_in(&h.sent(peers[0]));
    assert_eq!(prunes.len(), 1);
    assert_eq!(
        prunes[0].backoff,
        Some(10),
        "unaccepted_prune_backoff, not 60 s"
    );
    h.r.set_accepted(peers[0], true, h.now);
    // We keep the same backoff: no GRAFT it would refuse (and penalise us for).
    h.advance(Duration::from_secs(9));
    assert!(h.r.mesh_peers(&topic()).is_empty());
    // The backoff ends (plus the usual slack) and the next heartbeat grafts it.
    h.advance(Duration::from_secs(1) + Config::default().backoff_slack + Duration::from_secs(1));
    assert_eq!(
        h.r.mesh_peers(&topic()),
        vec![peers[0]],
        "meshed after ~10 s, not 60 s"
    );
}

#[test]
fn a_lost_outbound_stream_keeps_the_peer_and_a_new_one_re_announces_our_topics() {
    let mut h = H::new(Config {
        accept_by_default: false,
        ..cfg()
    });
    let peers = h.with_peers(1, Version::V1_1);
    let p = peers[0];
    h.r.set_accepted(p, true, h.now);
    h.advance(Duration::from_secs(2));
    assert_eq!(h.r.mesh_peers(&topic()), vec![p]);
    h.drain_all();
    // Our stream to it failed; the connection (and its stream to us) lives on.
    h.r.outbound_lost(&p);
    assert_eq!(h.r.mesh_peers(&topic()), vec![p], "still meshed");
    assert!(h.r.is_accepted(&p), "acceptance kept");
    assert!(
        h.r.topic_peers(&topic()).contains(&p),
        "its subscriptions kept"
    );
    assert!(h.sent(p).is_empty(), "nothing sent without a stream");
    // A publish meanwhile waits in its queue rather than being lost (the driver hands the
    // queue to a writer only once the new stream is up).
    h.r.publish(topic(), Bytes::from_static(b"during"), h.now)
        .unwrap();
    // The reopened stream carries it, and our subscriptions again; messages flow.
    h.r.outbound_ready(p, Version::V1_1, h.now);
    let first = h.sent(p);
    assert_eq!(
        messages_in(&first),
        1,
        "the message published during the gap"
    );
    assert!(first.iter().any(|r| r.subscriptions.len() == 1));
    h.r.publish(topic(), Bytes::from_static(b"after"), h.now)
        .unwrap();
    assert_eq!(messages_in(&h.sent(p)), 1);
}

// ----- heartbeat -----

#[test]
fn the_heartbeat_keeps_the_mesh_within_bounds_with_outbound_quota() {
    let mut h = H::new(cfg());
    let peers = h.with_peers(20, Version::V1_1);
    assert_eq!(h.r.mesh_peers(&topic()).len(), 8);
    // Everybody grafts us: outbound ones are accepted even over D_high.
    for p in &peers {
        h.rpc(
            *p,
            control(Control {
                graft: vec![topic()],
                ..Control::default()
            }),
        );
    }
    assert!(h.r.mesh_peers(&topic()).len() > 12);
    h.advance(Duration::from_secs(1));
    let mesh = h.r.mesh_peers(&topic());
    assert_eq!(mesh.len(), 8, "pruned back to D");
    let outbound = mesh
        .iter()
        .filter(|p| peers.iter().position(|q| q == *p).unwrap() % 2 == 0)
        .count();
    assert!(outbound >= 3, "D_out outbound peers kept, got {outbound}");
}

#[test]
fn gossip_goes_to_max_of_d_lazy_and_the_gossip_factor() {
    let mut h = H::new(cfg());
    let peers = h.with_peers(40, Version::V1_1);
    h.drain_all();
    h.r.publish(topic(), Bytes::from_static(b"g"), h.now)
        .unwrap();
    h.drain_all();
    h.advance(Duration::from_secs(1));
    let got_ihave = peers
        .iter()
        .filter(|p| h.sent(**p).iter().any(|r| !r.control.ihave.is_empty()))
        .count();
    // 32 non-mesh peers: max(6, 0.25·32 = 8) = 8.
    assert_eq!(got_ihave, 8);
}

#[test]
fn fanout_expires_after_its_ttl() {
    let mut c = cfg();
    c.flood_publish = false;
    let mut h = H::new(c);
    let peers: Vec<PeerId> = (1..=3).map(peer).collect();
    for p in &peers {
        h.connect(*p, Direction::Outbound, Version::V1_1);
        h.rpc(*p, subscribe_rpc(T));
    }
    h.r.publish(topic(), Bytes::from_static(b"f"), h.now)
        .unwrap();
    h.drain_all();
    h.advance(Duration::from_secs(30));
    h.r.publish(topic(), Bytes::from_static(b"f2"), h.now)
        .unwrap();
    let reached: usize = peers.iter().map(|p| messages_in(&h.sent(*p))).sum();
    assert_eq!(reached, 3, "fanout reused");
    h.advance(Duration::from_secs(61));
    assert_eq!(h.r.mesh_peers(&topic()).len(), 0);
}

#[test]
fn graylisted_peers_are_ignored_entirely() {
    let mut h = H::new(scored_cfg());
    let peers = h.with_peers(2, Version::V1_1);
    h.drain_all();
    for i in 0..3u8 {
        h.rpc(peers[0], msg_rpc(&message(&[0xEE, i])));
        validate_all(&mut h, Acceptance::Reject);
    }
    assert!(h.r.peer_score(&peers[0], h.now) < -200.0);
    h.rpc(peers[0], msg_rpc(&message(b"after")));
    assert!(h.events().is_empty());
    assert!(h.r.stats().graylisted_rpcs >= 1);
    h.advance(Duration::from_secs(1));
    assert!(
        !h.r.mesh_peers(&topic()).contains(&peers[0]),
        "pruned for a negative score"
    );
}

#[test]
fn px_is_acted_on_only_when_enabled_and_above_the_threshold() {
    for (do_px, app_score, expect) in [
        (false, 100.0, false),
        (true, 0.0, false),
        (true, 100.0, true),
    ] {
        let mut c = scored_cfg();
        c.do_px = do_px;
        if let Some((p, _)) = &mut c.score {
            p.app_specific_weight = 1.0;
        }
        let mut h = H::new(c);
        let peers = h.with_peers(1, Version::V1_1);
        h.r.set_application_score(&peers[0], app_score);
        h.drain_all();
        h.rpc(
            peers[0],
            control(Control {
                prune: vec![Prune {
                    topic: topic(),
                    peers: vec![plexus_gossipsub::PxPeer {
                        peer_id: Some(Bytes::copy_from_slice(peer(50).as_bytes())),
                        signed_peer_record: None,
                    }],
                    backoff: Some(60),
                }],
                ..Control::default()
            }),
        );
        let px = h
            .events()
            .iter()
            .any(|e| matches!(e, Event::PeerExchange { .. }));
        assert_eq!(px, expect, "do_px={do_px} score={app_score}");
    }
}

#[test]
fn opportunistic_grafting_adds_peers_above_a_low_mesh_median() {
    let mut c = scored_cfg();
    c.opportunistic_graft_ticks = 5;
    if let Some((p, _)) = &mut c.score {
        p.app_specific_weight = 1.0;
    }
    let mut h = H::new(c);
    let peers = h.with_peers(10, Version::V1_1);
    let mesh = h.r.mesh_peers(&topic());
    assert_eq!(mesh.len(), 8);
    let outside: Vec<PeerId> = peers
        .iter()
        .filter(|p| !mesh.contains(p))
        .copied()
        .collect();
    for p in &outside {
        assert!(h.r.set_application_score(p, 10.0));
    }
    // Median of the mesh is 0, under the threshold (1.0): every 5 heartbeats, up to 2 peers
    // scoring above the median are grafted.
    h.advance(Duration::from_millis(700 * 4));
    assert_eq!(
        h.r.mesh_peers(&topic()).len(),
        8,
        "not before the 5th heartbeat"
    );
    h.advance(Duration::from_millis(700 * 2));
    let now = h.r.mesh_peers(&topic());
    assert_eq!(now.len(), 10);
    assert!(outside.iter().all(|p| now.contains(p)));
}

#[test]
fn flood_publish_skips_peers_below_the_publish_threshold() {
    let mut c = scored_cfg();
    if let Some((p, _)) = &mut c.score {
        p.app_specific_weight = 1.0;
    }
    let mut h = H::new(c);
    let peers = h.with_peers(3, Version::V1_1);
    h.drain_all();
    // Publish threshold is -100 in scored_cfg.
    h.r.set_application_score(&peers[0], -150.0);
    h.r.publish(topic(), Bytes::from_static(b"p"), h.now)
        .unwrap();
    assert_eq!(messages_in(&h.sent(peers[0])), 0);
    assert_eq!(messages_in(&h.sent(peers[1])), 1);
}

#[test]
fn router_is_deterministic_for_a_seed() {
    let run = || {
        let mut h = H::new(cfg());
        h.with_peers(20, Version::V1_2);
        h.advance(Duration::from_secs(3));
        h.r.mesh_peers(&topic())
    };
    assert_eq!(run(), run());
}

// ----- the experimental PREAMBLE / IMRECEIVING extension -----

use plexus_gossipsub::{Extensions, PREAMBLE_EXTENSION, Preamble};

/// `p` advertises the PREAMBLE extension.
fn advertise_preambles(h: &mut H, p: PeerId) {
    h.rpc(
        p,
        control(Control {
            extensions: Some(Extensions {
                fields: vec![PREAMBLE_EXTENSION],
            }),
            ..Control::default()
        }),
    );
}

/// Peers 1..=n on v1.3 in our mesh; those in `readers` advertise the PREAMBLE extension.
fn preamble_net(n: u8, readers: &[u8]) -> (H, Vec<PeerId>) {
    let mut h = H::new(Config {
        validate_messages: false,
        preamble_threshold: 16 * 1024,
        ..cfg()
    });
    let peers = h.with_peers(n, Version::V1_3);
    for i in readers {
        advertise_preambles(&mut h, peer(*i));
    }
    h.advance(Duration::from_secs(1));
    h.drain_all();
    assert_eq!(h.r.mesh_peers(&topic()).len(), n as usize);
    (h, peers)
}

/// Frames for `p` in wire order, each PREAMBLE right before the frame it announces.
fn sent_with_preambles(h: &mut H, p: PeerId) -> Vec<Rpc> {
    let mut out = Vec::new();
    while let Some(f) = h.r.pop_frame(&p, h.now) {
        if let Some(pre) = h.r.take_preamble(&p) {
            out.push(decode(pre));
        }
        out.push(decode(f));
    }
    out
}

fn preamble_of(m: &RawMessage, h: &H, len: u64) -> Rpc {
    control(Control {
        preamble: vec![Preamble {
            topic: topic(),
            id: id_of(&h.r, m),
            len,
        }],
        ..Control::default()
    })
}

fn imreceivings_in(rpcs: &[Rpc]) -> Vec<MessageId> {
    rpcs.iter()
        .flat_map(|r| r.control.imreceiving.iter().cloned())
        .collect()
}

#[test]
fn we_advertise_the_preamble_extension_only_when_it_is_on() {
    assert_eq!(
        Config::default().preamble_threshold,
        usize::MAX,
        "off by default"
    );
    for (threshold, advertised) in [(16 * 1024, true), (usize::MAX, false)] {
        let mut h = H::new(Config {
            preamble_threshold: threshold,
            ..cfg()
        });
        h.connect(peer(1), Direction::Outbound, Version::V1_3);
        let first = h.sent(peer(1));
        let ext = first[0]
            .control
            .extensions
            .clone()
            .expect("v1.3 extensions");
        assert_eq!(ext.fields.contains(&PREAMBLE_EXTENSION), advertised);
    }
}

#[test]
fn a_large_copy_to_a_peer_that_reads_preambles_follows_one() {
    let (mut h, peers) = preamble_net(3, &[2]);
    let big = message(&[9u8; 20_000]);
    let small = message(&[8u8; 2000]);
    h.rpc(peers[0], msg_rpc(&big));
    h.rpc(peers[0], msg_rpc(&small));
    let id = id_of(&h.r, &big);
    let to_reader = sent_with_preambles(&mut h, peers[1]);
    let pres: Vec<&Preamble> = to_reader
        .iter()
        .flat_map(|r| r.control.preamble.iter())
        .collect();
    assert_eq!(pres.len(), 1, "one PREAMBLE, for the large message only");
    assert_eq!((pres[0].topic.clone(), pres[0].id.clone()), (topic(), id));
    let at = to_reader
        .iter()
        .position(|r| !r.control.preamble.is_empty())
        .unwrap();
    assert_eq!(
        to_reader[at + 1].messages.len(),
        1,
        "the message right after it"
    );
    assert_eq!(to_reader[at + 1].messages[0].data, big.data);
    assert!(pres[0].len >= big.raw.len() as u64);
    // A peer that did not advertise the extension gets the messages and no PREAMBLE.
    let to_other = sent_with_preambles(&mut h, peers[2]);
    assert_eq!(messages_in(&to_other), 2);
    assert!(to_other.iter().all(|r| r.control.preamble.is_empty()));
    assert_eq!(h.r.stats().preambles_sent, 1);
}

#[test]
fn a_preamble_from_a_mesh_peer_tells_the_other_readers_imreceiving_once() {
    let (mut h, peers) = preamble_net(4, &[1, 2, 3]);
    let big = message(&[7u8; 50_000]);
    let id = id_of(&h.r, &big);
    h.rpc(peers[0], preamble_of(&big, &h, 50_100));
    // A second announcement of the same message changes nothing.
    h.rpc(peers[1], preamble_of(&big, &h, 50_100));
    assert_eq!(imreceivings_in(&h.sent(peers[1])), vec![id.clone()]);
    assert_eq!(imreceivings_in(&h.sent(peers[2])), vec![id.clone()]);
    assert!(
        imreceivings_in(&h.sent(peers[0])).is_empty(),
        "not to the announcer"
    );
    assert!(
        imreceivings_in(&h.sent(peers[3])).is_empty(),
        "not to a peer that does not read the extension"
    );
    assert_eq!(h.r.stats().preambles_received, 1);
    // It arrives: nothing is asked for later.
    h.rpc(peers[0], msg_rpc(&big));
    h.drain_all();
    h.advance(Duration::from_secs(5));
    assert_eq!(h.r.stats().preambles_expired, 0);
    // Announcing what we have, or announcing from outside the mesh, is ignored.
    h.rpc(peers[2], preamble_of(&big, &h, 50_100));
    let (mut h2, _) = preamble_net(2, &[1, 2]);
    let stranger = peer(9);
    h2.connect(stranger, Direction::Inbound, Version::V1_3);
    advertise_preambles(&mut h2, stranger);
    h2.rpc(stranger, preamble_of(&big, &h2, 50_100));
    assert_eq!(h.r.stats().preambles_received, 1);
    assert_eq!(h2.r.stats().preambles_received, 0);
}

#[test]
fn imreceiving_holds_back_our_copy_like_idontwant() {
    let (mut h, peers) = preamble_net(3, &[2]);
    let big = message(&[6u8; 30_000]);
    let id = id_of(&h.r, &big);
    for p in [peers[1], peers[2]] {
        h.rpc(
            p,
            control(Control {
                imreceiving: vec![id.clone()],
                ..Control::default()
            }),
        );
    }
    assert_eq!(h.r.stats().imreceiving_received, 1, "only from a reader");
    h.rpc(peers[0], msg_rpc(&big));
    assert_eq!(
        messages_in(&h.sent(peers[1])),
        0,
        "the reader is receiving it"
    );
    assert_eq!(
        messages_in(&h.sent(peers[2])),
        1,
        "a peer without the extension is not heard"
    );
    // A copy already queued is cancelled.
    let big2 = message(&[5u8; 30_000]);
    h.rpc(peers[0], msg_rpc(&big2));
    h.rpc(
        peers[1],
        control(Control {
            imreceiving: vec![id_of(&h.r, &big2)],
            ..Control::default()
        }),
    );
    assert_eq!(messages_in(&h.sent(peers[1])), 0);
    // The reader asks for it after all (its announcer failed it): the request wins.
    h.rpc(
        peers[1],
        control(Control {
            iwant: vec![id],
            ..Control::default()
        }),
    );
    assert_eq!(messages_in(&h.sent(peers[1])), 1);
}

#[test]
fn an_announced_message_that_never_comes_is_asked_for_and_the_announcer_penalised() {
    let mut h = H::new(Config {
        validate_messages: false,
        preamble_threshold: 16 * 1024,
        ..scored_cfg()
    });
    let peers = h.with_peers(4, Version::V1_3);
    for p in &peers {
        advertise_preambles(&mut h, *p);
    }
    h.advance(Duration::from_secs(1));
    h.drain_all();
    let big = message(&[4u8; 40_000]);
    let id = id_of(&h.r, &big);
    h.rpc(peers[0], preamble_of(&big, &h, 40_100));
    h.drain_all();
    // An IHAVE for it meanwhile is not answered with IWANT: it is on its way.
    h.rpc(peers[3], ihave(&id));
    assert!(
        peers
            .iter()
            .all(|p| h.sent(*p).iter().all(|r| r.control.iwant.is_empty()))
    );
    let before = h.r.peer_score(&peers[0], h.now);
    // Deadline: 1 s of grace plus 40 KB at 1 MiB/s; checked at heartbeats.
    h.advance(Duration::from_millis(900));
    assert_eq!(h.r.stats().preambles_expired, 0, "not yet");
    h.advance(Duration::from_secs(2));
    assert_eq!(h.r.stats().preambles_expired, 1);
    let asked: usize = peers[1..]
        .iter()
        .map(|p| {
            h.sent(*p)
                .iter()
                .filter(|r| r.control.iwant.contains(&id))
                .count()
        })
        .sum();
    assert_eq!(asked, 2, "two of the peers we told IMRECEIVING are asked");
    assert!(
        h.r.peer_score(&peers[0], h.now) < before,
        "the announcer is penalised"
    );
}

#[test]
fn unfinished_preambles_per_peer_are_bounded() {
    let (mut h, peers) = preamble_net(2, &[1, 2]);
    for i in 0..12u8 {
        let m = message(&[i; 20_000]);
        h.rpc(peers[0], preamble_of(&m, &h, 20_100));
    }
    assert_eq!(
        h.r.stats().preambles_received,
        h.r.config().max_preambles_per_peer as u64
    );
}
