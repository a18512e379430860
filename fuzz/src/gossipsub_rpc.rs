//! Fuzz target `gossipsub_rpc`: a gossipsub stream of arbitrary remote bytes through the frame
//! decoder and the bounded RPC decoder (`plexus_gossipsub::wire`).
//!
//! The first input byte holds options: its low six bits pick the delivery chunk size (1 to 64
//! bytes), its top bit picks small limits (so the fuzzer reaches every cap) instead of the
//! defaults. The rest is the stream.
//!
//! Asserts: no panic; delivery in chunks and in one piece give the same RPCs and the same error;
//! every accepted RPC is within the limits; its subscriptions and control re-encode to a frame
//! of the announced length that decodes to the same (extension field numbers are not re-sent);
//! every message re-encodes to the same fields and, forwarded as received, decodes to itself;
//! signature verification does not panic.
use bytes::BytesMut;
use plexus_gossipsub::wire::{
    FrameDecoder, MAX_EXTENSION_FIELDS, WireError, WireLimits, control_frame_len, decode_message,
    decode_rpc, encode_control_frame, encode_message_frame, encode_message_raw, verify_message,
};
use plexus_gossipsub::{Control, Extensions, PREAMBLE_EXTENSION, Rpc};

fn small() -> WireLimits {
    WireLimits {
        max_transmit_size: 2048,
        max_subscriptions_per_rpc: 4,
        max_messages_per_rpc: 4,
        max_control_bytes: 512,
        max_ihave: 4,
        max_ihave_ids: 8,
        max_iwant_ids: 8,
        max_idontwant_ids: 8,
        max_preambles: 2,
        max_imreceiving_ids: 8,
        max_graft: 4,
        max_prune: 4,
        max_px_peers: 3,
        max_message_id_len: 16,
        max_topic_len: 16,
        max_px_peer_id_len: 16,
        max_px_record_len: 32,
    }
}

fn unlimited() -> WireLimits {
    WireLimits {
        max_transmit_size: usize::MAX,
        max_subscriptions_per_rpc: usize::MAX,
        max_messages_per_rpc: usize::MAX,
        max_control_bytes: usize::MAX,
        max_ihave: usize::MAX,
        max_ihave_ids: usize::MAX,
        max_iwant_ids: usize::MAX,
        max_idontwant_ids: usize::MAX,
        max_preambles: usize::MAX,
        max_imreceiving_ids: usize::MAX,
        max_graft: usize::MAX,
        max_prune: usize::MAX,
        max_px_peers: usize::MAX,
        max_message_id_len: usize::MAX,
        max_topic_len: usize::MAX,
        max_px_peer_id_len: usize::MAX,
        max_px_record_len: usize::MAX,
    }
}

/// Every RPC of `stream` delivered `chunk` bytes at a time, and the error that ended it.
fn read(stream: &[u8], chunk: usize, limits: &WireLimits) -> (Vec<Rpc>, Option<WireError>) {
    let mut dec = FrameDecoder::new(limits.max_transmit_size);
    let mut buf = BytesMut::new();
    let mut rpcs = Vec::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match dec.decode_rpc(&mut buf, limits) {
                Ok(Some(rpc)) => rpcs.push(rpc),
                Ok(None) => break,
                Err(e) => return (rpcs, Some(e)),
            }
        }
    }
    (rpcs, None)
}

fn within_limits(rpc: &Rpc, l: &WireLimits) {
    let c = &rpc.control;
    assert!(rpc.subscriptions.len() <= l.max_subscriptions_per_rpc);
    assert!(rpc.messages.len() <= l.max_messages_per_rpc);
    assert!(c.ihave.len() <= l.max_ihave);
    assert!(c.ihave.iter().map(|h| h.ids.len()).sum::<usize>() <= l.max_ihave_ids);
    assert!(c.iwant.len() <= l.max_iwant_ids);
    assert!(c.idontwant.len() <= l.max_idontwant_ids);
    assert!(c.preamble.len() <= l.max_preambles);
    assert!(c.imreceiving.len() <= l.max_imreceiving_ids);
    assert!(c.graft.len() <= l.max_graft);
    assert!(c.prune.len() <= l.max_prune);
    let ids = c
        .ihave
        .iter()
        .flat_map(|h| &h.ids)
        .chain(&c.iwant)
        .chain(&c.idontwant)
        .chain(&c.imreceiving)
        .chain(c.preamble.iter().map(|p| &p.id));
    assert!(
        ids.into_iter()
            .all(|id| id.as_bytes().len() <= l.max_message_id_len)
    );
    let topics = rpc
        .subscriptions
        .iter()
        .map(|s| &s.topic)
        .chain(rpc.messages.iter().map(|m| &m.topic))
        .chain(c.ihave.iter().map(|h| &h.topic))
        .chain(&c.graft)
        .chain(c.prune.iter().map(|p| &p.topic))
        .chain(c.preamble.iter().map(|p| &p.topic));
    assert!(
        topics
            .into_iter()
            .all(|t| t.as_str().len() <= l.max_topic_len)
    );
    for p in &c.prune {
        assert!(p.peers.len() <= l.max_px_peers);
        for x in &p.peers {
            assert!(
                x.peer_id
                    .as_ref()
                    .is_none_or(|b| b.len() <= l.max_px_peer_id_len)
            );
            assert!(
                x.signed_peer_record
                    .as_ref()
                    .is_none_or(|b| b.len() <= l.max_px_record_len)
            );
        }
    }
    if let Some(e) = &c.extensions {
        assert!(e.fields.len() <= MAX_EXTENSION_FIELDS);
    }
}

fn reencodes(rpc: &Rpc) {
    let any = unlimited();
    // Subscriptions and control: the extensions message is re-sent with only the extension
    // we implement.
    let control = Control {
        extensions: rpc.control.extensions.as_ref().map(|e| Extensions {
            fields: e
                .fields
                .iter()
                .copied()
                .filter(|f| *f == PREAMBLE_EXTENSION)
                .collect(),
        }),
        ..rpc.control.clone()
    };
    let frame = encode_control_frame(&rpc.subscriptions, &control);
    assert_eq!(frame.len(), control_frame_len(&rpc.subscriptions, &control));
    let (again, err) = read(&frame, frame.len(), &any);
    assert_eq!(err, None);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].subscriptions, rpc.subscriptions);
    assert!(again[0].messages.is_empty());
    assert_eq!(again[0].control, control);

    for m in &rpc.messages {
        let raw = encode_message_raw(
            m.from.as_deref(),
            &m.data,
            m.seqno.as_deref(),
            m.topic.as_str(),
            m.signature.as_deref(),
            m.key.as_deref(),
        );
        let canonical = decode_message(raw.clone()).expect("re-encoded message decodes");
        assert_eq!(canonical.from, m.from);
        assert_eq!(canonical.data, m.data);
        assert_eq!(canonical.seqno, m.seqno);
        assert_eq!(canonical.topic, m.topic);
        assert_eq!(canonical.signature, m.signature);
        assert_eq!(canonical.key, m.key);
        assert_eq!(canonical.raw, raw);
        let fwd = encode_message_frame(&m.raw);
        let (again, err) = read(&fwd, fwd.len(), &any);
        assert_eq!(err, None);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].messages.as_slice(), std::slice::from_ref(m));
        let _ = verify_message(m);
    }
}

/// Run one input.
pub fn run(data: &[u8]) {
    let Some((&options, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(options & 0x3f) + 1;
    let limits = if options & 0x80 != 0 {
        small()
    } else {
        WireLimits::default()
    };
    let whole = read(stream, stream.len().max(1), &limits);
    let chunked = read(stream, chunk, &limits);
    assert_eq!(chunked, whole);
    if let (rpcs, Some(e)) = &whole {
        let _ = (rpcs, e.blame());
    }
    for rpc in &whole.0 {
        within_limits(rpc, &limits);
        reencodes(rpc);
    }
    // A body given straight to the RPC decoder behaves as in a frame.
    let _ = decode_rpc(bytes::Bytes::copy_from_slice(stream), &limits);
}
