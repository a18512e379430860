//! Fuzz body for `gossipsub_router`: an arbitrary sequence of operations on one gossipsub
//! `Router` (scoring on): peers connecting and leaving, RPCs from them (subscriptions,
//! messages, GRAFT, PRUNE with any backoff, IHAVE, IWANT, IDONTWANT, the v1.3 extensions,
//! PREAMBLE and IMRECEIVING), heartbeats after any delay, our subscribes, publishes and
//! validation verdicts, acceptance changes, and writers taking frames (and the PREAMBLEs
//! before them).
//!
//! Invariants: no panic; right after every heartbeat each mesh has at most D_high peers, only
//! accepted peers subscribed to the topic, none of them in backoff; memory stays bounded (seen
//! ids, pending validations, IDONTWANT entries, announced messages and queued bytes per peer
//! under their caps);
//! every frame we send decodes under the default wire limits and within what js-libp2p
//! accepts (at most 5000 IHAVE and IWANT ids, 500 IDONTWANT ids per RPC).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Bytes, BytesMut};
use plexus_core::{Direction, PeerId};
use plexus_gossipsub::score::{PeerScoreParams, PeerScoreThresholds, TopicScoreParams};
use plexus_gossipsub::wire::{
    FrameDecoder, WireLimits, decode_rpc, encode_message_frame, encode_message_raw,
};
use plexus_gossipsub::{
    Acceptance, Config, Control, Event, Extensions, IHave, MAX_SENT_IDONTWANT_PER_RPC,
    MAX_SENT_IDS_PER_RPC, MessageId, PREAMBLE_EXTENSION, PeerConn, Preamble, Prune, QueueConfig,
    Router, Rpc, SubOpt, TopicHash, Version,
};

const PEERS: usize = 8;
const TOPICS: [&str; 3] = ["a", "b", "/eth2/00000000/beacon_block/ssz_snappy"];

#[derive(Arbitrary, Debug)]
enum Op {
    Extensions {
        peer: u8,
        preamble: bool,
    },
    Preamble {
        peer: u8,
        topic: u8,
        ids: Vec<u8>,
        known: bool,
        len: u64,
    },
    IMReceiving {
        peer: u8,
        ids: Vec<u8>,
        known: bool,
    },
    Connect {
        peer: u8,
        inbound: bool,
        version: u8,
    },
    Disconnect {
        peer: u8,
    },
    Subscribe {
        peer: u8,
        topic: u8,
        on: bool,
    },
    Message {
        peer: u8,
        topic: u8,
        data: Vec<u8>,
        signed_fields: bool,
    },
    Graft {
        peer: u8,
        topic: u8,
    },
    Prune {
        peer: u8,
        topic: u8,
        backoff: Option<u64>,
        px: u8,
    },
    IHave {
        peer: u8,
        topic: u8,
        ids: Vec<u8>,
    },
    IWant {
        peer: u8,
        ids: Vec<u8>,
        known: bool,
    },
    IDontWant {
        peer: u8,
        ids: Vec<u8>,
        known: bool,
    },
    Advance {
        millis: u16,
    },
    Publish {
        topic: u8,
        data: Vec<u8>,
    },
    Join {
        topic: u8,
        on: bool,
    },
    Validate {
        which: u8,
        verdict: u8,
    },
    Accept {
        peer: u8,
        on: bool,
    },
    Drain {
        peer: u8,
        frames: u8,
    },
    /// Our outbound stream to the peer failed; the connection lives on.
    StreamLost {
        peer: u8,
    },
    /// A (re)opened outbound stream to the peer is up.
    StreamReady {
        peer: u8,
        version: u8,
    },
}

fn cfg() -> Config {
    let mut topics = HashMap::new();
    topics.insert(
        TopicHash::from(TOPICS[2]),
        TopicScoreParams {
            topic_weight: 1.0,
            invalid_message_deliveries_weight: -10.0,
            invalid_message_deliveries_decay: 0.9,
            ..TopicScoreParams::default()
        },
    );
    Config {
        mesh_n: 4,
        mesh_n_low: 3,
        mesh_n_high: 6,
        mesh_outbound_min: 1,
        mesh_outbound_min_score_kept: 2,
        gossip_lazy: 2,
        max_ihave_length: 64,
        max_idontwant_per_heartbeat: 64,
        max_pending_validations_per_topic: 8,
        max_seen_messages: 256,
        max_subscriptions_per_peer: 4,
        opportunistic_graft_ticks: 3,
        idontwant_message_size_threshold: 16,
        preamble_threshold: 32,
        lazy_push_threshold: 24,
        lazy_push_eager: 1,
        max_lazy_push_per_heartbeat: 3,
        queue: QueueConfig {
            max_control_bytes: 4096,
            max_publish_bytes: 8192,
            max_forward_bytes: 8192,
            max_gossip_bytes: 4096,
            forward_timeout: Duration::from_millis(500),
            gossip_timeout: Duration::from_millis(700),
        },
        score: Some((
            PeerScoreParams {
                topics,
                ..PeerScoreParams::default()
            },
            PeerScoreThresholds {
                gossip_threshold: -10.0,
                publish_threshold: -20.0,
                graylist_threshold: -40.0,
                accept_px_threshold: 5.0,
                opportunistic_graft_threshold: 1.0,
            },
        )),
        do_px: true,
        ..Config::default()
    }
}

fn ids(bytes: &[u8], known: &[MessageId], use_known: bool) -> Vec<MessageId> {
    if use_known && !known.is_empty() {
        return bytes
            .iter()
            .map(|b| known[*b as usize % known.len()].clone())
            .collect();
    }
    bytes
        .chunks(3)
        .map(|c| MessageId::new(c.to_vec()))
        .collect()
}

fn check_frame(frame: Bytes) -> Rpc {
    let mut dec = FrameDecoder::new(WireLimits::default().max_transmit_size);
    let mut buf = BytesMut::from(&frame[..]);
    let body = dec
        .decode(&mut buf)
        .expect("our frame has a valid prefix")
        .expect("a whole frame");
    assert!(buf.is_empty(), "one frame per pop");
    let rpc = decode_rpc(body, &WireLimits::default()).expect("our frame decodes");
    let ihave: usize = rpc.control.ihave.iter().map(|i| i.ids.len()).sum();
    assert!(ihave <= MAX_SENT_IDS_PER_RPC);
    assert!(rpc.control.iwant.len() <= MAX_SENT_IDS_PER_RPC);
    assert!(rpc.control.idontwant.len() <= MAX_SENT_IDONTWANT_PER_RPC);
    assert!(rpc.control.imreceiving.len() <= MAX_SENT_IDONTWANT_PER_RPC);
    rpc
}

/// Run one input.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let cfg = cfg();
    let d_high = cfg.mesh_n_high;
    let t0 = Instant::now();
    let mut now = t0;
    static PEER_IDS: std::sync::OnceLock<Vec<PeerId>> = std::sync::OnceLock::new();
    let peers = PEER_IDS.get_or_init(|| {
        (0..PEERS as u8)
            .map(|i| {
                let mut k = [9u8; 32];
                k[0] = i;
                plexus_identity::Keypair::ed25519_from_bytes(k)
                    .expect("key")
                    .public()
                    .to_peer_id()
            })
            .collect()
    });
    let Ok(mut r) = Router::new(cfg.clone(), PeerId::random(), 7, now) else {
        return;
    };
    let mut connected = [false; PEERS];
    let mut known: Vec<MessageId> = Vec::new();
    let mut pending: Vec<MessageId> = Vec::new();
    let topic = |t: u8| TopicHash::from(TOPICS[t as usize % TOPICS.len()]);
    let mut ops = 0;
    while let Ok(op) = Op::arbitrary(&mut u) {
        ops += 1;
        if ops > 400 {
            break;
        }
        let p = |i: u8| peers[i as usize % PEERS];
        let rpc_from = |r: &mut Router, i: u8, rpc: Rpc, now: Instant| r.handle_rpc(p(i), rpc, now);
        let control_from = |r: &mut Router, i: u8, control: Control, now: Instant| {
            let rpc = Rpc {
                control,
                ..Rpc::default()
            };
            r.handle_rpc(p(i), rpc, now)
        };
        match op {
            Op::Extensions { peer, preamble } => {
                let c = Control {
                    extensions: Some(Extensions {
                        fields: if preamble {
                            vec![PREAMBLE_EXTENSION]
                        } else {
                            vec![7]
                        },
                    }),
                    ..Control::default()
                };
                control_from(&mut r, peer, c, now);
            }
            Op::Preamble {
                peer,
                topic: t,
                ids: b,
                known: k,
                len,
            } => {
                let c = Control {
                    preamble: ids(&b, &known, k)
                        .into_iter()
                        .map(|id| Preamble {
                            topic: topic(t),
                            id,
                            len,
                        })
                        .collect(),
                    ..Control::default()
                };
                control_from(&mut r, peer, c, now);
            }
            Op::IMReceiving {
                peer,
                ids: b,
                known: k,
            } => {
                let c = Control {
                    imreceiving: ids(&b, &known, k),
                    ..Control::default()
                };
                control_from(&mut r, peer, c, now);
            }
            Op::Connect {
                peer,
                inbound,
                version,
            } => {
                let dir = if inbound {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                };
                let ip = Some(std::net::IpAddr::from([10, 0, 0, peer % 3]));
                r.add_peer(p(peer), PeerConn { direction: dir, ip }, now);
                r.outbound_ready(p(peer), Version::ALL[version as usize % 4], now);
                connected[peer as usize % PEERS] = true;
            }
            Op::Disconnect { peer } => {
                r.remove_peer(&p(peer), now);
                connected[peer as usize % PEERS] = false;
            }
            Op::Subscribe { peer, topic: t, on } => {
                let rpc = Rpc {
                    subscriptions: vec![SubOpt {
                        subscribe: on,
                        topic: topic(t),
                    }],
                    ..Rpc::default()
                };
                rpc_from(&mut r, peer, rpc, now);
            }
            Op::Message {
                peer,
                topic: t,
                mut data,
                signed_fields,
            } => {
                data.truncate(64);
                let seq = 1u64.to_be_bytes();
                let raw = encode_message_raw(
                    signed_fields.then_some(&[1u8, 2][..]),
                    &data,
                    signed_fields.then_some(&seq[..]),
                    topic(t).as_str(),
                    None,
                    None,
                );
                let mut dec = FrameDecoder::new(usize::MAX >> 1);
                let mut buf = BytesMut::from(&encode_message_frame(&raw)[..]);
                let Ok(Some(body)) = dec.decode(&mut buf) else {
                    panic!("our message frame");
                };
                let rpc = decode_rpc(body, &WireLimits::default()).expect("our message");
                if let Some(m) = rpc.messages.first() {
                    known.push((r.config().message_id_fn)(m));
                }
                rpc_from(&mut r, peer, rpc, now);
            }
            Op::Graft { peer, topic: t } => {
                let c = Control {
                    graft: vec![topic(t)],
                    ..Control::default()
                };
                control_from(&mut r, peer, c, now);
            }
            Op::Prune {
                peer,
                topic: t,
                backoff,
                px,
            } => {
                let c = Control {
                    prune: vec![Prune {
                        topic: topic(t),
                        peers: (0..px % 4)
                            .map(|i| plexus_gossipsub::PxPeer {
                                peer_id: Some(Bytes::copy_from_slice(p(i).as_bytes())),
                                signed_peer_record: None,
                            })
                            .collect(),
                        backoff,
                    }],
                    ..Control::default()
                };
                control_from(&mut r, peer, c, now);
            }
            Op::IHave {
                peer,
                topic: t,
                ids: b,
            } => {
                let c = Control {
                    ihave: vec![IHave {
                        topic: topic(t),
                        ids: ids(&b, &known, false),
                    }],
                    ..Control::default()
                };
                control_from(&mut r, peer, c, now);
            }
            Op::IWant {
                peer,
                ids: b,
                known: k,
            } => {
                let c = Control {
                    iwant: ids(&b, &known, k),
                    ..Control::default()
                };
                control_from(&mut r, peer, c, now);
            }
            Op::IDontWant {
                peer,
                ids: b,
                known: k,
            } => {
                let c = Control {
                    idontwant: ids(&b, &known, k),
                    ..Control::default()
                };
                control_from(&mut r, peer, c, now);
            }
            Op::Advance { millis } => {
                now += Duration::from_millis(u64::from(millis) * 10);
                if r.poll_timeout() <= now {
                    r.handle_timeout(now);
                    for t in r.topics() {
                        let mesh = r.mesh_peers(&t);
                        assert!(mesh.len() <= d_high, "mesh of {} > D_high", mesh.len());
                        for m in mesh {
                            assert!(r.is_accepted(&m), "unaccepted peer in a mesh");
                            assert!(!r.in_backoff(&t, &m, now), "a mesh peer in backoff");
                            assert!(
                                r.topic_peers(&t).contains(&m),
                                "unsubscribed peer in a mesh"
                            );
                        }
                    }
                }
            }
            Op::Publish { topic: t, mut data } => {
                data.truncate(64);
                if let Ok(id) = r.publish(topic(t), Bytes::from(data), now) {
                    known.push(id);
                }
            }
            Op::Join { topic: t, on } => {
                if on {
                    r.subscribe(topic(t), now);
                } else {
                    r.unsubscribe(&topic(t), now);
                }
            }
            Op::Validate { which, verdict } => {
                if !pending.is_empty() {
                    let id = pending.swap_remove(which as usize % pending.len());
                    let v = [Acceptance::Accept, Acceptance::Reject, Acceptance::Ignore]
                        [verdict as usize % 3];
                    r.report_validation(&id, v, now);
                }
            }
            Op::Accept { peer, on } => r.set_accepted(p(peer), on, now),
            Op::StreamLost { peer } => r.outbound_lost(&p(peer)),
            Op::StreamReady { peer, version } => {
                r.outbound_ready(p(peer), Version::ALL[version as usize % 4], now)
            }
            Op::Drain { peer, frames } => {
                for _ in 0..frames {
                    match r.pop_frame(&p(peer), now) {
                        Some(f) => {
                            if let Some(pre) = r.take_preamble(&p(peer)) {
                                let announced = check_frame(pre);
                                assert_eq!(announced.control.preamble.len(), 1);
                                let body = check_frame(f);
                                assert_eq!(body.messages.len(), 1, "a PREAMBLE precedes a message");
                            } else {
                                check_frame(f);
                            }
                        }
                        None => break,
                    }
                }
            }
        }
        while let Some(ev) = r.poll_event() {
            if let Event::Message { id, .. } = ev {
                pending.push(id);
            }
        }
        pending.truncate(64);
        known.truncate(256);
        while r.next_ready().is_some() {}
        // Memory bounds.
        assert!(r.seen_len() <= cfg.max_seen_messages);
        assert!(r.pending_validations() <= cfg.max_pending_validations_per_topic * TOPICS.len());
        assert!(r.receiving_len() <= PEERS * cfg.max_preambles_per_peer);
        for peer in peers {
            let cap = cfg.max_idontwant_per_heartbeat * (cfg.idontwant_ttl_heartbeats as usize + 1);
            assert!(r.dont_send_len(peer) <= cap);
            if let Some((_, bytes)) = r.queued(peer) {
                let q = &cfg.queue;
                // A class over its cap holds at most one frame beyond it.
                assert!(bytes[0] <= 2 * q.max_control_bytes + 256 * 1024);
                assert!(bytes[1] <= q.max_publish_bytes + 1024);
                assert!(bytes[2] <= q.max_forward_bytes + 1024);
                assert!(bytes[3] <= q.max_gossip_bytes + 1024);
            }
        }
    }
    let _ = connected;
}
