//! The wire layer: framing, bounded decoding, encoding, signing.
//!
//! Remote RPCs are built by hand (byte by byte) so every test controls exactly what arrives.

use bytes::{Bytes, BytesMut};
use plexus_core::Blame;
use plexus_gossipsub::wire::{
    FrameDecoder, MAX_EXTENSION_FIELDS, SIGNING_PREFIX, SignatureError, WireError, WireLimits,
    control_frame_len, decode_message, decode_rpc, encode_control_frame, encode_message_frame,
    encode_message_raw, message_frame_len, sign_message, signable_bytes, verify_message,
};
use plexus_gossipsub::{
    Control, Extensions, IHave, MessageId, PREAMBLE_EXTENSION, Preamble, Prune, PxPeer, RawMessage,
    Rpc, SubOpt, TopicHash,
};
use plexus_identity::{Keypair, PeerId};
use proptest::prelude::*;

// ---------------------------------------------------------------------------------------------
// Hand encoding

fn varint(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// A length-delimited field.
fn ld(n: u64, body: &[u8]) -> Vec<u8> {
    let mut out = varint(n << 3 | 2);
    out.extend(varint(body.len() as u64));
    out.extend_from_slice(body);
    out
}

/// A varint field.
fn vf(n: u64, v: u64) -> Vec<u8> {
    let mut out = varint(n << 3);
    out.extend(varint(v));
    out
}

fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut out = varint(body.len() as u64);
    out.extend_from_slice(body);
    out
}

fn sub(topic: &[u8]) -> Vec<u8> {
    ld(1, &cat(&[vf(1, 1), ld(2, topic)]))
}

fn msg(topic: &[u8], data: &[u8]) -> Vec<u8> {
    ld(2, &cat(&[ld(2, data), ld(4, topic)]))
}

fn control(entries: &[Vec<u8>]) -> Vec<u8> {
    ld(3, &entries.concat())
}

fn ihave(topic: &[u8], ids: &[&[u8]]) -> Vec<u8> {
    let mut body = ld(1, topic);
    for id in ids {
        body.extend(ld(2, id));
    }
    ld(1, &body)
}

fn id_entry(field: u64, ids: &[&[u8]]) -> Vec<u8> {
    let body: Vec<u8> = ids.iter().flat_map(|id| ld(1, id)).collect();
    ld(field, &body)
}

fn iwant(ids: &[&[u8]]) -> Vec<u8> {
    id_entry(2, ids)
}

fn idontwant(ids: &[&[u8]]) -> Vec<u8> {
    id_entry(5, ids)
}

fn preamble(topic: &[u8], id: Option<&[u8]>, len: u64) -> Vec<u8> {
    let mut body = ld(1, topic);
    if let Some(id) = id {
        body.extend(ld(2, id));
    }
    body.extend(vf(3, len));
    ld(u64::from(PREAMBLE_EXTENSION), &body)
}

fn imreceiving(ids: &[&[u8]]) -> Vec<u8> {
    id_entry(u64::from(PREAMBLE_EXTENSION) + 1, ids)
}

fn graft(topic: &[u8]) -> Vec<u8> {
    ld(3, &ld(1, topic))
}

fn px(peer_id: &[u8], record: &[u8]) -> Vec<u8> {
    ld(2, &cat(&[ld(1, peer_id), ld(2, record)]))
}

fn prune(topic: &[u8], peers: &[Vec<u8>], backoff: Option<u64>) -> Vec<u8> {
    let mut body = ld(1, topic);
    body.extend(peers.concat());
    if let Some(b) = backoff {
        body.extend(vf(3, b));
    }
    ld(4, &body)
}

fn decode(body: &[u8], limits: &WireLimits) -> Result<Rpc, WireError> {
    decode_rpc(Bytes::copy_from_slice(body), limits)
}

fn ids(v: &[&[u8]]) -> Vec<MessageId> {
    v.iter().map(|b| MessageId::new(b.to_vec())).collect()
}

/// Decode `body` with one limit set to `at` (accepted) and to `at - 1` (rejected with `want`).
fn at_limit(body: &[u8], set: fn(&mut WireLimits, usize), at: usize, want: WireError) {
    let mut l = WireLimits::default();
    set(&mut l, at);
    if let Err(e) = decode(body, &l) {
        panic!("rejected at the limit {at}: {e}");
    }
    set(&mut l, at - 1);
    assert_eq!(decode(body, &l), Err(want));
}

// ---------------------------------------------------------------------------------------------
// Known encodings

#[test]
fn known_control_frame_is_byte_exact() {
    let subs = [SubOpt {
        subscribe: true,
        topic: "a".into(),
    }];
    let c = Control {
        graft: vec!["a".into()],
        extensions: Some(Extensions::default()),
        ..Control::default()
    };
    let expected = [
        0x10, // body: 16 bytes
        0x0a, 0x05, 0x08, 0x01, 0x12, 0x01,
        b'a', // subscriptions: subscribe=true, topicid="a"
        0x1a, 0x07, // control: 7 bytes
        0x1a, 0x03, 0x0a, 0x01, b'a', // graft: topicID="a"
        0x32, 0x00, // extensions: empty message
    ];
    assert_eq!(&encode_control_frame(&subs, &c)[..], &expected);
    assert_eq!(control_frame_len(&subs, &c), expected.len());

    let c = Control {
        iwant: vec![MessageId::new(vec![0xab, 0xcd])],
        prune: vec![Prune {
            topic: "b".into(),
            peers: vec![],
            backoff: Some(60),
        }],
        ..Control::default()
    };
    let expected = [
        0x0f, 0x1a, 0x0d, // body 15, control 13
        0x12, 0x04, 0x0a, 0x02, 0xab, 0xcd, // iwant: one id
        0x22, 0x05, 0x0a, 0x01, b'b', 0x18, 0x3c, // prune: topicID="b", backoff=60
    ];
    assert_eq!(&encode_control_frame(&[], &c)[..], &expected);

    // Nothing to say: an empty RPC, no control field.
    assert_eq!(&encode_control_frame(&[], &Control::default())[..], &[0x00]);
    let unsub = [SubOpt {
        subscribe: false,
        topic: "a".into(),
    }];
    assert_eq!(
        &encode_control_frame(&unsub, &Control::default())[..],
        &[0x07, 0x0a, 0x05, 0x08, 0x00, 0x12, 0x01, b'a']
    );
}

#[test]
fn known_message_frame_is_byte_exact() {
    let raw = encode_message_raw(None, b"hi", None, "t", None, None);
    // StrictNoSign: from, seqno, signature and key absent, not empty.
    assert_eq!(&raw[..], &[0x12, 0x02, b'h', b'i', 0x22, 0x01, b't']);
    let frame = encode_message_frame(&raw);
    assert_eq!(
        &frame[..],
        &[0x09, 0x12, 0x07, 0x12, 0x02, b'h', b'i', 0x22, 0x01, b't']
    );
    assert_eq!(message_frame_len(raw.len()), frame.len());

    // Empty data is present (empty), absent fields are absent; fields in number order.
    let raw = encode_message_raw(
        Some(&[0xaa]),
        b"",
        Some(&[0, 0, 0, 0, 0, 0, 0, 1]),
        "t",
        Some(&[5]),
        Some(&[6]),
    );
    assert_eq!(
        &raw[..],
        &[
            0x0a, 0x01, 0xaa, 0x12, 0x00, 0x1a, 0x08, 0, 0, 0, 0, 0, 0, 0, 1, 0x22, 0x01, b't',
            0x2a, 0x01, 5, 0x32, 0x01, 6
        ]
    );
}

#[test]
fn message_frame_length_prefix_grows_with_the_message() {
    for len in [0, 100, 124, 125, 126, 16_380, 16_381, 16_382, 70_000] {
        let data = vec![7u8; len];
        let raw = encode_message_raw(None, &data, None, "topic", None, None);
        let frame = encode_message_frame(&raw);
        assert_eq!(frame.len(), message_frame_len(raw.len()));
        let mut buf = BytesMut::from(&frame[..]);
        let rpc = FrameDecoder::new(1 << 20)
            .decode_rpc(&mut buf, &WireLimits::default())
            .unwrap()
            .unwrap();
        assert!(buf.is_empty());
        assert_eq!(rpc.messages.len(), 1);
        assert_eq!(rpc.messages[0].raw, raw);
        assert_eq!(&rpc.messages[0].data[..], &data[..]);
    }
}

// ---------------------------------------------------------------------------------------------
// Roundtrips

fn topic_strategy() -> impl Strategy<Value = TopicHash> {
    "\\PC{0,12}".prop_map(TopicHash::from)
}

fn id_strategy() -> impl Strategy<Value = MessageId> {
    prop::collection::vec(any::<u8>(), 0..40).prop_map(MessageId::new)
}

fn opt_bytes(max: usize) -> impl Strategy<Value = Option<Bytes>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..max).prop_map(Bytes::from))
}

fn control_strategy() -> impl Strategy<Value = Control> {
    let ihave = (topic_strategy(), prop::collection::vec(id_strategy(), 0..5))
        .prop_map(|(topic, ids)| IHave { topic, ids });
    let peer = (opt_bytes(40), opt_bytes(100)).prop_map(|(peer_id, signed_peer_record)| PxPeer {
        peer_id,
        signed_peer_record,
    });
    let prune = (
        topic_strategy(),
        prop::collection::vec(peer, 0..4),
        prop::option::of(any::<u64>()),
    )
        .prop_map(|(topic, peers, backoff)| Prune {
            topic,
            peers,
            backoff,
        });
    let preamble = (topic_strategy(), id_strategy(), any::<u64>())
        .prop_map(|(topic, id, len)| Preamble { topic, id, len });
    (
        (
            prop::collection::vec(ihave, 0..4),
            prop::collection::vec(id_strategy(), 0..6),
            prop::collection::vec(topic_strategy(), 0..4),
            prop::collection::vec(prune, 0..3),
            prop::collection::vec(id_strategy(), 0..6),
        ),
        (
            prop::option::of(any::<bool>()),
            prop::collection::vec(preamble, 0..3),
            prop::collection::vec(id_strategy(), 0..4),
        ),
    )
        .prop_map(
            |((ihave, iwant, graft, prune, idontwant), (ext, preamble, imreceiving))| Control {
                ihave,
                iwant,
                graft,
                prune,
                idontwant,
                // Only the extension we implement is sent; that is what round-trips.
                extensions: ext.map(|ours| Extensions {
                    fields: if ours {
                        vec![PREAMBLE_EXTENSION]
                    } else {
                        Vec::new()
                    },
                }),
                preamble,
                imreceiving,
            },
        )
}

fn subs_strategy() -> impl Strategy<Value = Vec<SubOpt>> {
    prop::collection::vec(
        (any::<bool>(), topic_strategy())
            .prop_map(|(subscribe, topic)| SubOpt { subscribe, topic }),
        0..5,
    )
}

proptest! {
    #[test]
    fn control_frames_roundtrip(subs in subs_strategy(), c in control_strategy(), split in any::<prop::sample::Index>()) {
        let frame = encode_control_frame(&subs, &c);
        prop_assert_eq!(frame.len(), control_frame_len(&subs, &c));
        // Delivered in two pieces, split anywhere.
        let at = split.index(frame.len() + 1);
        let mut dec = FrameDecoder::new(1 << 20);
        let mut buf = BytesMut::from(&frame[..at]);
        let first = dec.decode(&mut buf).unwrap();
        if at < frame.len() {
            prop_assert!(first.is_none());
            buf.extend_from_slice(&frame[at..]);
        } else {
            prop_assert!(first.is_some());
            buf = BytesMut::from(&frame[..]);
        }
        let rpc = dec.decode_rpc(&mut buf, &WireLimits::default()).unwrap().unwrap();
        prop_assert!(buf.is_empty());
        prop_assert_eq!(rpc.subscriptions, subs);
        prop_assert!(rpc.messages.is_empty());
        prop_assert_eq!(rpc.control, c);
    }

    #[test]
    fn messages_roundtrip(
        from in opt_bytes(40),
        data in prop::collection::vec(any::<u8>(), 0..300),
        seqno in opt_bytes(9),
        topic in "\\PC{0,20}",
        signature in opt_bytes(80),
        key in opt_bytes(40),
    ) {
        let raw = encode_message_raw(
            from.as_deref(), &data, seqno.as_deref(), &topic, signature.as_deref(), key.as_deref(),
        );
        let frame = encode_message_frame(&raw);
        let mut buf = BytesMut::from(&frame[..]);
        let rpc = FrameDecoder::new(1 << 20)
            .decode_rpc(&mut buf, &WireLimits::default())
            .unwrap()
            .unwrap();
        prop_assert_eq!(rpc.messages.len(), 1);
        let m = &rpc.messages[0];
        prop_assert_eq!(&m.from, &from);
        prop_assert_eq!(&m.data[..], &data[..]);
        prop_assert_eq!(&m.seqno, &seqno);
        prop_assert_eq!(m.topic.as_str(), topic.as_str());
        prop_assert_eq!(&m.signature, &signature);
        prop_assert_eq!(&m.key, &key);
        prop_assert_eq!(&m.raw, &raw);
        prop_assert_eq!(decode_message(raw.clone()).unwrap(), m.clone());
    }

    #[test]
    fn frames_decode_the_same_however_the_bytes_are_split(
        bodies in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..5),
        chunk in 1usize..40,
    ) {
        let stream: Vec<u8> = bodies.iter().flat_map(|b| frame(b)).collect();
        let mut dec = FrameDecoder::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for piece in stream.chunks(chunk) {
            buf.extend_from_slice(piece);
            while let Some(body) = dec.decode(&mut buf).unwrap() {
                got.push(body.to_vec());
            }
        }
        prop_assert!(buf.is_empty());
        prop_assert_eq!(got, bodies);
    }
}

// ---------------------------------------------------------------------------------------------
// Limits

#[test]
fn transmit_size_is_enforced_on_frames_and_bodies() {
    let body = cat(&[sub(b"abc"), msg(b"t", &[1; 50])]);
    let l = body.len();
    at_limit(
        &body,
        |w, v| w.max_transmit_size = v,
        l,
        WireError::RpcTooLarge { len: l, max: l - 1 },
    );
    let f = frame(&body);
    let mut buf = BytesMut::from(&f[..]);
    assert_eq!(
        FrameDecoder::new(l)
            .decode(&mut buf)
            .unwrap()
            .unwrap()
            .len(),
        l
    );
    let mut buf = BytesMut::from(&f[..]);
    assert_eq!(
        FrameDecoder::new(l - 1).decode(&mut buf),
        Err(WireError::FrameTooLarge {
            declared: l as u64,
            max: l - 1
        })
    );
}

#[test]
fn oversized_frame_is_rejected_before_its_body_arrives() {
    let max = 12_234_442;
    let mut dec = FrameDecoder::new(max);
    // Only the prefix: a frame of exactly the limit waits for its body, reserving nothing.
    let mut buf = BytesMut::from(&varint(max as u64)[..]);
    let cap = buf.capacity();
    assert_eq!(dec.decode(&mut buf), Ok(None));
    assert_eq!(buf.len(), varint(max as u64).len(), "nothing consumed");
    assert_eq!(
        buf.capacity(),
        cap,
        "nothing reserved for the declared length"
    );
    // One byte more is rejected at once.
    let mut buf = BytesMut::from(&varint(max as u64 + 1)[..]);
    assert_eq!(
        dec.decode(&mut buf),
        Err(WireError::FrameTooLarge {
            declared: max as u64 + 1,
            max
        })
    );
    // The largest declarable length.
    let mut buf = BytesMut::from(&varint(u64::MAX)[..]);
    assert_eq!(
        dec.decode(&mut buf),
        Err(WireError::FrameTooLarge {
            declared: u64::MAX,
            max
        })
    );
    assert_eq!(
        WireError::FrameTooLarge {
            declared: 1,
            max: 0
        }
        .blame(),
        Blame::PeerMisbehaved
    );
}

#[test]
fn overlong_and_overflowing_prefixes_are_rejected() {
    let mut dec = FrameDecoder::new(usize::MAX);
    // Nine continuation bytes: still incomplete.
    let mut buf = BytesMut::from(&[0x80u8; 9][..]);
    assert_eq!(dec.decode(&mut buf), Ok(None));
    // A tenth continuation byte: longer than 10 bytes.
    buf.extend_from_slice(&[0x80]);
    assert_eq!(dec.decode(&mut buf), Err(WireError::InvalidLengthPrefix));
    // Ten bytes whose last carries bits past 64.
    let mut over = vec![0xffu8; 9];
    over.push(0x02);
    let mut buf = BytesMut::from(&over[..]);
    assert_eq!(dec.decode(&mut buf), Err(WireError::InvalidLengthPrefix));
    // Ten bytes ending in 0x01: u64::MAX is a valid varint (and far over any limit).
    let mut max = vec![0xffu8; 9];
    max.push(0x01);
    let mut buf = BytesMut::from(&max[..]);
    assert!(matches!(
        FrameDecoder::new(1 << 20).decode(&mut buf),
        Err(WireError::FrameTooLarge {
            declared: u64::MAX,
            ..
        })
    ));
}

#[test]
fn non_minimal_prefixes_are_accepted() {
    // 3 encoded as three bytes, then a zero-length frame encoded as two.
    let mut buf = BytesMut::from(&[0x83, 0x80, 0x00, 1, 2, 3, 0x80, 0x00][..]);
    let mut dec = FrameDecoder::new(16);
    assert_eq!(dec.decode(&mut buf).unwrap().unwrap(), &[1u8, 2, 3][..]);
    assert_eq!(dec.decode(&mut buf).unwrap().unwrap(), Bytes::new());
    assert!(buf.is_empty());
    assert_eq!(
        decode_rpc(Bytes::new(), &WireLimits::default()),
        Ok(Rpc::default())
    );
}

#[test]
fn frame_decoder_takes_frames_byte_by_byte() {
    let a = encode_control_frame(
        &[SubOpt {
            subscribe: true,
            topic: "x".into(),
        }],
        &Control::default(),
    );
    let b = encode_message_frame(&encode_message_raw(None, &[9; 200], None, "x", None, None));
    let stream = [&a[..], &b[..]].concat();
    let mut dec = FrameDecoder::new(1 << 20);
    let mut buf = BytesMut::new();
    let mut rpcs = Vec::new();
    for (i, byte) in stream.iter().enumerate() {
        buf.extend_from_slice(&[*byte]);
        if let Some(rpc) = dec.decode_rpc(&mut buf, &WireLimits::default()).unwrap() {
            rpcs.push((i, rpc));
        }
    }
    assert!(buf.is_empty());
    assert_eq!(rpcs.len(), 2);
    assert_eq!(
        rpcs[0].0,
        a.len() - 1,
        "first RPC as soon as its last byte arrived"
    );
    assert_eq!(rpcs[0].1.subscriptions[0].topic.as_str(), "x");
    assert_eq!(&rpcs[1].1.messages[0].data[..], &[9; 200][..]);
}

#[test]
fn subscription_and_message_counts_are_limited() {
    let body = cat(&[sub(b"a"), sub(b"b"), sub(b"c")]);
    at_limit(
        &body,
        |w, v| w.max_subscriptions_per_rpc = v,
        3,
        WireError::TooManySubscriptions { got: 3, max: 2 },
    );
    let body = cat(&[msg(b"a", b"1"), msg(b"a", b"2"), msg(b"b", b"")]);
    at_limit(
        &body,
        |w, v| w.max_messages_per_rpc = v,
        3,
        WireError::TooManyMessages { got: 3, max: 2 },
    );
}

#[test]
fn control_entry_counts_are_limited() {
    let body = control(&[ihave(b"a", &[]), ihave(b"b", &[b"1"]), ihave(b"c", &[])]);
    at_limit(
        &body,
        |w, v| w.max_ihave = v,
        3,
        WireError::TooManyIHave { got: 3, max: 2 },
    );

    // Counted across entries and across several control fields.
    let body = cat(&[
        control(&[ihave(b"a", &[b"1", b"2"])]),
        control(&[ihave(b"b", &[b"3", b"4", b"5"])]),
    ]);
    at_limit(
        &body,
        |w, v| w.max_ihave_ids = v,
        5,
        WireError::TooManyIHaveIds { got: 5, max: 4 },
    );
    let body = control(&[iwant(&[b"1", b"2"]), iwant(&[b"3", b"4", b"5"])]);
    at_limit(
        &body,
        |w, v| w.max_iwant_ids = v,
        5,
        WireError::TooManyIWantIds { got: 5, max: 4 },
    );
    let body = control(&[
        preamble(b"t", Some(b"1"), 10),
        preamble(b"t", Some(b"2"), 10),
        preamble(b"u", Some(b"3"), 10),
    ]);
    at_limit(
        &body,
        |w, v| w.max_preambles = v,
        3,
        WireError::TooManyPreambles { got: 3, max: 2 },
    );
    let body = control(&[imreceiving(&[b"1", b"2"]), imreceiving(&[b"3", b"4", b"5"])]);
    at_limit(
        &body,
        |w, v| w.max_imreceiving_ids = v,
        5,
        WireError::TooManyIMReceivingIds { got: 5, max: 4 },
    );
    let body = control(&[idontwant(&[b"1", b"2"]), idontwant(&[b"3", b"4", b"5"])]);
    at_limit(
        &body,
        |w, v| w.max_idontwant_ids = v,
        5,
        WireError::TooManyIDontWantIds { got: 5, max: 4 },
    );
    let body = control(&[graft(b"a"), graft(b"b"), graft(b"c")]);
    at_limit(
        &body,
        |w, v| w.max_graft = v,
        3,
        WireError::TooManyGraft { got: 3, max: 2 },
    );
    let body = control(&[
        prune(b"a", &[], None),
        prune(b"b", &[], Some(1)),
        prune(b"c", &[], None),
    ]);
    at_limit(
        &body,
        |w, v| w.max_prune = v,
        3,
        WireError::TooManyPrune { got: 3, max: 2 },
    );

    // Peer exchange: per PRUNE, not per RPC.
    let peers: Vec<Vec<u8>> = (0..4u8).map(|i| px(&[i; 38], &[i; 10])).collect();
    let body = control(&[
        prune(b"a", &peers, Some(60)),
        prune(b"b", &peers[..3], None),
    ]);
    at_limit(
        &body,
        |w, v| w.max_px_peers = v,
        4,
        WireError::TooManyPxPeers { got: 4, max: 3 },
    );
}

#[test]
fn lengths_are_limited() {
    let id = [0xee; 20];
    for body in [
        control(&[ihave(b"a", &[&id])]),
        control(&[iwant(&[&id])]),
        control(&[idontwant(&[&id])]),
    ] {
        at_limit(
            &body,
            |w, v| w.max_message_id_len = v,
            20,
            WireError::MessageIdTooLong { len: 20, max: 19 },
        );
    }
    let t = b"0123456789";
    for body in [
        sub(t),
        msg(t, b"x"),
        control(&[ihave(t, &[])]),
        control(&[graft(t)]),
        control(&[prune(t, &[], None)]),
    ] {
        at_limit(
            &body,
            |w, v| w.max_topic_len = v,
            10,
            WireError::TopicTooLong { len: 10, max: 9 },
        );
    }
    let body = control(&[prune(b"a", &[px(&[1; 38], &[2; 300])], None)]);
    at_limit(
        &body,
        |w, v| w.max_px_peer_id_len = v,
        38,
        WireError::PxPeerIdTooLong { len: 38, max: 37 },
    );
    at_limit(
        &body,
        |w, v| w.max_px_record_len = v,
        300,
        WireError::PxRecordTooLong { len: 300, max: 299 },
    );
}

#[test]
fn control_budget_counts_every_control_field() {
    let one = control(&[graft(b"abc")]); // 7 bytes of control
    let body = cat(&[one.clone(), one]);
    at_limit(
        &body,
        |w, v| w.max_control_bytes = v,
        14,
        WireError::ControlTooLarge { got: 14, max: 13 },
    );
}

#[test]
fn control_budget_is_checked_before_looking_inside() {
    // Default limits: a control part just over 1 MiB made of empty IHAVE entries (2 bytes
    // each, 32 KiB of bookkeeping per KiB if decoded). Rejected for its size, not for its
    // (also excessive) entry count, so nothing inside was looked at, let alone decoded.
    let limits = WireLimits::default();
    let n = limits.max_control_bytes / 2 + 1;
    let entries = [0x0a, 0x00].repeat(n);
    let body = cat(&[sub(b"a"), ld(3, &entries)]);
    assert_eq!(
        decode(&body, &limits),
        Err(WireError::ControlTooLarge {
            got: 2 * n,
            max: limits.max_control_bytes
        })
    );
    // The same entries within the budget are then refused for their count.
    let small = WireLimits {
        max_control_bytes: 2 * n,
        ..limits
    };
    assert_eq!(
        decode(&body, &small),
        Err(WireError::TooManyIHave {
            got: n,
            max: limits.max_ihave
        })
    );
    // Garbage inside an oversized control part: still the size is reported.
    let garbage = cat(&[vec![0x0a, 0x7f, 0x00], vec![0; 20]]);
    let body = ld(3, &garbage);
    let tiny = WireLimits {
        max_control_bytes: 10,
        ..limits
    };
    assert_eq!(
        decode(&body, &tiny),
        Err(WireError::ControlTooLarge { got: 23, max: 10 })
    );
    assert!(matches!(
        decode(&body, &limits),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn default_limits_accept_a_busy_honest_rpc() {
    // A hello with 400 topics, IHAVE of 64 topics × 90 ids (20 bytes), an IWANT of 5000 ids,
    // 16-peer PX on 8 PRUNEs, and a block-sized message.
    let topics: Vec<String> = (0..400)
        .map(|i| format!("/eth2/abcdef01/beacon_attestation_{i}/ssz_snappy"))
        .collect();
    let id = [7u8; 20];
    let ihaves: Vec<Vec<u8>> = topics[..64]
        .iter()
        .map(|t| ihave(t.as_bytes(), &vec![&id[..]; 90]))
        .collect();
    let peers: Vec<Vec<u8>> = (0..16).map(|_| px(&[1; 38], &[2; 400])).collect();
    let prunes: Vec<Vec<u8>> = topics[..8]
        .iter()
        .map(|t| prune(t.as_bytes(), &peers, Some(60)))
        .collect();
    let mut parts: Vec<Vec<u8>> = topics.iter().map(|t| sub(t.as_bytes())).collect();
    parts.push(msg(topics[0].as_bytes(), &vec![0; 2_000_000]));
    parts.push(control(&[
        ihaves.concat(),
        iwant(&vec![&id[..]; 5000]),
        prunes.concat(),
        idontwant(&[&id]),
    ]));
    let rpc = decode(&parts.concat(), &WireLimits::default()).unwrap();
    assert_eq!(rpc.subscriptions.len(), 400);
    assert_eq!(rpc.control.ihave.len(), 64);
    assert_eq!(rpc.control.iwant.len(), 5000);
    assert_eq!(rpc.control.prune[7].peers.len(), 16);
}

// ---------------------------------------------------------------------------------------------
// Content

#[test]
fn non_utf8_message_ids_are_accepted() {
    let a: &[u8] = &[0xff, 0xfe];
    let b: &[u8] = &[0x80];
    let c: &[u8] = &[0xc3, 0x28];
    let body = control(&[ihave(b"t", &[a, b]), iwant(&[c]), idontwant(&[a])]);
    let rpc = decode(&body, &WireLimits::default()).unwrap();
    assert_eq!(rpc.control.ihave[0].ids, ids(&[a, b]));
    assert_eq!(rpc.control.iwant, ids(&[c]));
    assert_eq!(rpc.control.idontwant, ids(&[a]));
}

#[test]
fn non_utf8_topic_is_rejected_everywhere() {
    let bad: &[u8] = &[b'a', 0xff];
    for body in [
        sub(bad),
        msg(bad, b"x"),
        control(&[ihave(bad, &[b"1"])]),
        control(&[graft(bad)]),
        control(&[prune(bad, &[], None)]),
    ] {
        assert_eq!(
            decode(&body, &WireLimits::default()),
            Err(WireError::TopicNotUtf8)
        );
    }
}

#[test]
fn unknown_fields_and_partial_message_fields_are_ignored() {
    let body = cat(&[
        // SubOpts with requestsPartial (3) and supportsSendingPartial (4), plus unknown 9.
        ld(
            1,
            &cat(&[vf(1, 1), ld(2, b"t"), vf(3, 1), vf(4, 1), ld(9, b"?")]),
        ),
        // RPC.partial (10): an opaque partial message.
        ld(10, &cat(&[ld(1, b"group"), ld(2, b"parts")])),
        // A message with an unknown field 7 (fixed64) between known ones.
        ld(
            2,
            &cat(&[ld(2, b"d"), vec![0x39, 1, 2, 3, 4, 5, 6, 7, 8], ld(4, b"t")]),
        ),
        // Unknown RPC field (fixed32).
        vec![0xfd, 0x07, 1, 2, 3, 4],
        control(&[
            // IHAVE with an unknown field 3.
            ld(1, &cat(&[ld(1, b"t"), ld(2, b"i"), vf(3, 5)])),
            // Unknown control field 7.
            ld(7, b"whatever"),
            // PRUNE with an unknown field 9.
            ld(4, &cat(&[ld(1, b"t"), vf(3, 10), ld(9, b"x")])),
            // Extensions: partialMessages (10), an experimental one, and 10 again.
            ld(6, &cat(&[vf(10, 1), ld(0x200001, b"exp"), vf(10, 0)])),
        ]),
    ]);
    let rpc = decode(&body, &WireLimits::default()).unwrap();
    assert_eq!(
        rpc.subscriptions,
        vec![SubOpt {
            subscribe: true,
            topic: "t".into()
        }]
    );
    assert_eq!(rpc.messages.len(), 1);
    assert_eq!(&rpc.messages[0].data[..], b"d");
    assert_eq!(rpc.messages[0].topic.as_str(), "t");
    assert_eq!(
        rpc.control,
        Control {
            ihave: vec![IHave {
                topic: "t".into(),
                ids: ids(&[b"i"]),
            }],
            prune: vec![Prune {
                topic: "t".into(),
                peers: vec![],
                backoff: Some(10),
            }],
            extensions: Some(Extensions {
                fields: vec![10, 0x200001]
            }),
            ..Control::default()
        }
    );
}

#[test]
fn preamble_and_imreceiving_decode_and_are_checked() {
    let body = control(&[
        preamble(b"t", Some(b"abc"), 131_072),
        imreceiving(&[b"x", b"y"]),
        ld(6, &vf(u64::from(PREAMBLE_EXTENSION), 1)),
    ]);
    let rpc = decode(&body, &WireLimits::default()).unwrap();
    assert_eq!(
        rpc.control.preamble,
        vec![Preamble {
            topic: "t".into(),
            id: MessageId::new(b"abc".to_vec()),
            len: 131_072,
        }]
    );
    assert_eq!(rpc.control.imreceiving, ids(&[b"x", b"y"]));
    assert_eq!(
        rpc.control.extensions,
        Some(Extensions {
            fields: vec![PREAMBLE_EXTENSION]
        })
    );
    // Rejected: a PREAMBLE without an id, an overlong id, a bad topic, a length that is not
    // a varint.
    let no_id = control(&[preamble(b"t", None, 5)]);
    assert_eq!(
        decode(&no_id, &WireLimits::default()),
        Err(WireError::PreambleWithoutId)
    );
    let long = vec![0u8; 300];
    let long_id = control(&[preamble(b"t", Some(&long), 5)]);
    assert!(matches!(
        decode(&long_id, &WireLimits::default()),
        Err(WireError::MessageIdTooLong { .. })
    ));
    let bad_topic = control(&[preamble(&[0xff, 0xfe], Some(b"i"), 5)]);
    assert_eq!(
        decode(&bad_topic, &WireLimits::default()),
        Err(WireError::TopicNotUtf8)
    );
    let len_as_bytes = control(&[ld(
        u64::from(PREAMBLE_EXTENSION),
        &cat(&[ld(2, b"i"), ld(3, b"zz")]),
    )]);
    assert!(matches!(
        decode(&len_as_bytes, &WireLimits::default()),
        Err(WireError::Malformed(_))
    ));
    let imreceiving_as_varint = control(&[vf(u64::from(PREAMBLE_EXTENSION) + 1, 7)]);
    assert!(matches!(
        decode(&imreceiving_as_varint, &WireLimits::default()),
        Err(WireError::Malformed(_))
    ));
}

#[test]
fn empty_control_decodes_to_the_default() {
    let rpc = decode(&ld(3, &[]), &WireLimits::default()).unwrap();
    assert_eq!(rpc.control, Control::default());
    assert!(rpc.control.extensions.is_none());
    // Present only when field 6 was sent, even empty.
    let rpc = decode(&control(&[ld(6, &[])]), &WireLimits::default()).unwrap();
    assert_eq!(
        rpc.control,
        Control {
            extensions: Some(Extensions::default()),
            ..Control::default()
        }
    );
}

#[test]
fn extension_fields_are_recorded_once_and_bounded() {
    let fields: Vec<u8> = (1..=100u64)
        .flat_map(|n| vf(n, 0))
        .chain(vf(1, 0))
        .collect();
    let rpc = decode(&control(&[ld(6, &fields)]), &WireLimits::default()).unwrap();
    let ext = rpc.control.extensions.unwrap();
    assert_eq!(ext.fields.len(), MAX_EXTENSION_FIELDS);
    assert_eq!(
        ext.fields,
        (1..=MAX_EXTENSION_FIELDS as u32).collect::<Vec<_>>()
    );
}

#[test]
fn iwant_and_idontwant_entries_are_concatenated() {
    let body = cat(&[
        control(&[
            iwant(&[b"1"]),
            idontwant(&[b"a", b"b"]),
            iwant(&[]),
            iwant(&[b"2", b"3"]),
        ]),
        control(&[iwant(&[b"4"]), idontwant(&[b"c"])]),
    ]);
    let rpc = decode(&body, &WireLimits::default()).unwrap();
    assert_eq!(rpc.control.iwant, ids(&[b"1", b"2", b"3", b"4"]));
    assert_eq!(rpc.control.idontwant, ids(&[b"a", b"b", b"c"]));
}

#[test]
fn missing_optional_fields_take_proto2_defaults() {
    let body = cat(&[
        ld(1, &ld(2, b"t")), // no subscribe flag: unsubscribe
        ld(1, &vf(1, 1)),    // no topic: the empty topic
        control(&[
            ld(3, &[]),
            ld(1, &ld(2, b"i")),
            ld(4, &[]),
            ld(4, &ld(2, &[])),
        ]),
    ]);
    let rpc = decode(&body, &WireLimits::default()).unwrap();
    assert_eq!(
        rpc.subscriptions,
        vec![
            SubOpt {
                subscribe: false,
                topic: "t".into()
            },
            SubOpt {
                subscribe: true,
                topic: "".into()
            }
        ]
    );
    assert_eq!(rpc.control.graft, vec![TopicHash::from("")]);
    assert_eq!(rpc.control.ihave[0].topic.as_str(), "");
    assert_eq!(rpc.control.prune[0].backoff, None);
    assert_eq!(
        rpc.control.prune[1].peers,
        vec![PxPeer {
            peer_id: None,
            signed_peer_record: None
        }]
    );
}

#[test]
fn broken_wire_format_is_malformed() {
    let limits = WireLimits::default();
    for body in [
        vec![0x0a, 0x05, 0x01],                   // truncated field
        vec![0x08],                               // truncated varint
        vec![0x0b],                               // group wire type
        vec![0x02, 0x00],                         // field number 0
        vf(1, 1),                                 // subscriptions as a varint
        vf(3, 1),                                 // control as a varint
        ld(1, &ld(1, b"x")),                      // subscribe as bytes
        ld(2, &cat(&[vf(2, 1), ld(4, b"t")])),    // message data as a varint
        control(&[vf(1, 1)]),                     // IHAVE as a varint
        control(&[ld(1, &vf(2, 1))]),             // IHAVE id as a varint
        control(&[ld(2, &vf(1, 1))]),             // IWANT id as a varint
        control(&[ld(4, &ld(3, b"x"))]),          // backoff as bytes
        control(&[ld(4, &ld(2, &vf(1, 1)))]),     // PX peer id as a varint
        control(&[ld(6, &[0x0b])]),               // group inside extensions
        vec![0xfa, 0xff, 0xff, 0xff, 0x7f, 0x00], // field number over 2^29 - 1
    ] {
        let r = decode(&body, &limits);
        assert!(
            matches!(r, Err(WireError::Malformed(_))),
            "{body:02x?}: {r:?}"
        );
        assert_eq!(r.unwrap_err().blame(), Blame::PeerMisbehaved);
    }
    assert_eq!(
        decode(&ld(2, &ld(2, b"data")), &limits),
        Err(WireError::MessageWithoutTopic)
    );
}

#[test]
fn raw_is_the_received_bytes_zero_copy() {
    // Non-canonical but valid: topic before data, an unknown field, a duplicated seqno.
    let inner = cat(&[
        ld(4, b"t"),
        ld(3, &[1; 8]),
        ld(2, b"payload"),
        vf(15, 3),
        ld(3, &[2; 8]),
    ]);
    let body = Bytes::from(cat(&[
        sub(b"t"),
        ld(2, &inner),
        control(&[iwant(&[b"id"])]),
    ]));
    let rpc = decode_rpc(body.clone(), &WireLimits::default()).unwrap();
    let m = &rpc.messages[0];
    assert_eq!(&m.raw[..], &inner[..]);
    let within = |b: &[u8]| {
        let start = body.as_ptr() as usize;
        let p = b.as_ptr() as usize;
        p >= start && p + b.len() <= start + body.len()
    };
    assert!(within(&m.raw), "raw is a slice of the body");
    assert!(within(&m.data), "data is a slice of the body");
    assert!(
        within(m.seqno.as_ref().unwrap()),
        "seqno is a slice of the body"
    );
    assert!(
        within(rpc.control.iwant[0].as_bytes()),
        "ids are slices of the body"
    );
    assert_eq!(&m.data[..], b"payload");
    assert_eq!(&m.seqno.as_ref().unwrap()[..], &[2; 8], "last seqno wins");
    // Forwarding reuses the bytes unchanged.
    let fwd = encode_message_frame(&m.raw);
    let mut buf = BytesMut::from(&fwd[..]);
    let again = FrameDecoder::new(1 << 20)
        .decode_rpc(&mut buf, &WireLimits::default())
        .unwrap()
        .unwrap();
    assert_eq!(again.messages[0], *m);
}

// ---------------------------------------------------------------------------------------------
// Signing

fn keypairs() -> [Keypair; 2] {
    [
        Keypair::ed25519_from_bytes([1; 32]).unwrap(),
        Keypair::secp256k1_from_bytes([2; 32]).unwrap(),
    ]
}

fn reencode(m: &RawMessage, data: &[u8], topic: &str, key: Option<&[u8]>) -> RawMessage {
    decode_message(encode_message_raw(
        m.from.as_deref(),
        data,
        m.seqno.as_deref(),
        topic,
        m.signature.as_deref(),
        key,
    ))
    .unwrap()
}

#[test]
fn strict_sign_roundtrip() {
    for kp in keypairs() {
        let peer = kp.public().to_peer_id();
        let raw = sign_message(&kp, "topic", b"hello", 0x0102_0304_0506_0708);
        let m = decode_message(raw.clone()).unwrap();
        assert_eq!(m.from.as_deref(), Some(peer.as_bytes()));
        assert_eq!(m.seqno.as_deref(), Some(&[1u8, 2, 3, 4, 5, 6, 7, 8][..]));
        assert_eq!(&m.data[..], b"hello");
        assert_eq!(m.topic.as_str(), "topic");
        assert_eq!(
            m.key, None,
            "ed25519 and secp256k1 keys are inlined in the peer id"
        );
        assert_eq!(verify_message(&m), Ok(peer));

        // Through a frame, as a receiver sees it.
        let mut buf = BytesMut::from(&encode_message_frame(&raw)[..]);
        let rpc = FrameDecoder::new(1 << 20)
            .decode_rpc(&mut buf, &WireLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(verify_message(&rpc.messages[0]), Ok(peer));

        // What was signed: the message without signature and key, after the prefix.
        let unsigned = encode_message_raw(
            m.from.as_deref(),
            b"hello",
            m.seqno.as_deref(),
            "topic",
            None,
            None,
        );
        let expected = [SIGNING_PREFIX, &unsigned[..]].concat();
        assert_eq!(signable_bytes(&raw).unwrap(), expected);
        assert!(kp.public().verify(&expected, m.signature.as_ref().unwrap()));

        // A matching key field is accepted.
        let with_key = reencode(&m, b"hello", "topic", Some(&kp.public().encode_protobuf()));
        assert_eq!(verify_message(&with_key), Ok(peer));
    }
}

#[test]
fn tampered_messages_fail_verification() {
    let [kp, other] = keypairs();
    let m = decode_message(sign_message(&kp, "topic", b"hello", 1)).unwrap();

    let bad = SignatureError::BadSignature;
    assert_eq!(
        verify_message(&reencode(&m, b"hellO", "topic", None)),
        Err(bad.clone())
    );
    assert_eq!(
        verify_message(&reencode(&m, b"hello", "topiC", None)),
        Err(bad.clone())
    );
    let mut seq = m.clone();
    seq.seqno = Some(Bytes::from_static(&[0, 0, 0, 0, 0, 0, 0, 2]));
    let seq = reencode(&seq, b"hello", "topic", None);
    assert_eq!(verify_message(&seq), Err(bad.clone()));

    // Another author claimed: the signature does not verify under their key.
    let mut impostor = m.clone();
    impostor.from = Some(Bytes::from(other.public().to_peer_id().to_bytes()));
    let impostor = reencode(&impostor, b"hello", "topic", None);
    assert_eq!(verify_message(&impostor), Err(bad.clone()));
    assert_eq!(bad.blame(), Blame::PeerMisbehaved);

    // A key that is not the author's.
    let wrong_key = reencode(
        &m,
        b"hello",
        "topic",
        Some(&other.public().encode_protobuf()),
    );
    assert_eq!(verify_message(&wrong_key), Err(SignatureError::KeyMismatch));

    // Missing pieces.
    let mut unsigned = m.clone();
    unsigned.signature = None;
    assert_eq!(
        verify_message(&unsigned),
        Err(SignatureError::MissingSignature)
    );
    let mut anonymous = m.clone();
    anonymous.from = None;
    assert_eq!(verify_message(&anonymous), Err(SignatureError::MissingFrom));
    let mut garbage = m.clone();
    garbage.from = Some(Bytes::from_static(b"not a peer id"));
    assert!(matches!(
        verify_message(&garbage),
        Err(SignatureError::InvalidFrom(_))
    ));
    // A sha2-256 peer id does not inline its key: `key` is needed.
    let mut hashed = m.clone();
    let digest = [0x12, 0x20]
        .iter()
        .copied()
        .chain([9u8; 32])
        .collect::<Vec<_>>();
    assert!(PeerId::from_bytes(&digest).is_ok());
    hashed.from = Some(Bytes::from(digest));
    assert_eq!(verify_message(&hashed), Err(SignatureError::MissingKey));
    let mut bad_key = m;
    bad_key.key = Some(Bytes::from_static(&[8, 0]));
    assert!(matches!(
        verify_message(&bad_key),
        Err(SignatureError::InvalidKey(_))
    ));
}

#[test]
fn signable_bytes_drop_only_signature_and_key() {
    // Odd order: key and signature in the middle, an unknown field kept where it was.
    let raw = cat(&[
        ld(4, b"t"),
        ld(6, b"key"),
        ld(2, b"d"),
        ld(5, b"sig"),
        vf(9, 1),
        ld(1, b"f"),
    ]);
    assert_eq!(
        signable_bytes(&raw).unwrap(),
        cat(&[
            SIGNING_PREFIX.to_vec(),
            ld(4, b"t"),
            ld(2, b"d"),
            vf(9, 1),
            ld(1, b"f")
        ])
    );
    assert!(matches!(
        signable_bytes(&[0x0a, 0x05]),
        Err(WireError::Malformed(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Fuzz seeds

/// Writes the seed corpus of the `gossipsub_rpc` fuzz target:
/// `cargo test -p plexus-gossipsub --test wire -- --ignored write_fuzz_seeds`.
/// The target reads its first byte as options (chunk size, limits), the rest as a stream.
#[test]
#[ignore = "writes fuzz/corpus/gossipsub_rpc"]
fn write_fuzz_seeds() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/gossipsub_rpc");
    std::fs::create_dir_all(&dir).unwrap();
    let kp = Keypair::ed25519_from_bytes([3; 32]).unwrap();
    let full = Control {
        ihave: vec![IHave {
            topic: "t".into(),
            ids: ids(&[b"12345678901234567890", &[0xff]]),
        }],
        iwant: ids(&[b"a", b"b"]),
        graft: vec!["g".into()],
        prune: vec![Prune {
            topic: "p".into(),
            peers: vec![PxPeer {
                peer_id: Some(Bytes::from(kp.public().to_peer_id().to_bytes())),
                signed_peer_record: Some(Bytes::from_static(b"record")),
            }],
            backoff: Some(60),
        }],
        idontwant: ids(&[b"c"]),
        extensions: Some(Extensions {
            fields: vec![PREAMBLE_EXTENSION],
        }),
        preamble: vec![Preamble {
            topic: "t".into(),
            id: MessageId::new(b"12345678901234567890".to_vec()),
            len: 131_072,
        }],
        imreceiving: ids(&[b"d", b"e"]),
    };
    let subs = [SubOpt {
        subscribe: true,
        topic: "/eth2/00000000/beacon_block/ssz_snappy".into(),
    }];
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        (
            "hello",
            encode_control_frame(&subs, &Control::default()).to_vec(),
        ),
        ("control", encode_control_frame(&[], &full).to_vec()),
        (
            "message",
            encode_message_frame(&encode_message_raw(None, b"ssz", None, "t", None, None)).to_vec(),
        ),
        (
            "signed",
            encode_message_frame(&sign_message(&kp, "t", b"data", 1)).to_vec(),
        ),
        (
            "two_frames",
            [
                encode_control_frame(&subs, &full).to_vec(),
                encode_message_frame(&encode_message_raw(None, &[0; 64], None, "u", None, None))
                    .to_vec(),
            ]
            .concat(),
        ),
        (
            "unknown_fields",
            frame(&cat(&[
                ld(10, b"partial"),
                ld(1, &cat(&[vf(1, 1), ld(2, b"t"), vf(3, 1), vf(4, 1)])),
                control(&[ld(6, &cat(&[vf(10, 1), ld(0x200001, b"e")])), ld(7, b"?")]),
            ])),
        ),
        ("oversized_prefix", varint(20_000_000)),
        ("overlong_prefix", vec![0x80; 11]),
    ];
    for (name, stream) in seeds {
        // Options byte 0x07: chunks of 8 bytes, default limits; 0x80 | …: small limits.
        std::fs::write(dir.join(name), [&[0x07u8][..], &stream].concat()).unwrap();
        std::fs::write(
            dir.join(format!("{name}_small")),
            [&[0x80u8][..], &stream].concat(),
        )
        .unwrap();
    }
}

#[test]
fn frame_len_is_known_once_the_prefix_is_and_never_over_the_limit() {
    let dec = FrameDecoder::new(1000);
    assert_eq!(dec.frame_len(&[]), None);
    assert_eq!(dec.frame_len(&[0x80]), None, "incomplete prefix");
    assert_eq!(dec.frame_len(&[0xe8, 0x07]), Some(2 + 1000), "1000 = e8 07");
    assert_eq!(dec.frame_len(&[0xe9, 0x07]), None, "1001 is over the limit");
    assert_eq!(dec.frame_len(&[0x05, 1, 2]), Some(6));
}
