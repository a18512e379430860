//! Gossip encoding and message ids: hand-built snappy blocks and ids computed with Python's
//! hashlib, and hostile inputs (snappy bombs, lying headers).

use plexus_eth::{
    Fork, ForkSchedule, GossipError, GossipKind, GossipMessageError, Network, TopicError,
    declared_len, decode_gossip, decode_gossip_message, encode_gossip, message_id,
    message_id_with_limit,
};
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
}

/// "hello" as one snappy literal: varint 5, tag (5-1)<<2, bytes.
const HELLO: &[u8] = &[0x05, 0x10, b'h', b'e', b'l', b'l', b'o'];
/// "abcabcabcabc": varint 12, literal "abc" (tag 0x08), copy of 9 bytes at offset 3 with a
/// 1-byte offset (tag 0b000_101_01 = 0x15, offset 0x03).
const ABC4: &[u8] = &[0x0c, 0x08, b'a', b'b', b'c', 0x15, 0x03];
const ALTAIR_TOPIC: &str = "/eth2/afcaaba0/beacon_block/ssz_snappy";
const PHASE0_TOPIC: &str = "/eth2/b5303f2a/beacon_block/ssz_snappy";

/// `SHA256(MESSAGE_DOMAIN_INVALID_SNAPPY ‖ u64_le(len(topic)) ‖ topic ‖ data)[:20]`.
fn invalid_snappy_id(topic: &str, data: &[u8]) -> [u8; 20] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update([0u8; 4]);
    h.update((topic.len() as u64).to_le_bytes());
    h.update(topic.as_bytes());
    h.update(data);
    h.finalize()[..20].try_into().unwrap()
}

#[test]
fn hand_built_blocks_decode() {
    assert_eq!(decode_gossip(HELLO, 100).unwrap(), b"hello");
    assert_eq!(decode_gossip(ABC4, 100).unwrap(), b"abcabcabcabc");
    assert_eq!(declared_len(ABC4), Ok(12));
    assert_eq!(decode_gossip(&[0x00], 0).unwrap(), b"");
}

/// Expected ids computed with Python's hashlib over the spec's concatenations
/// (`SHA256(domain ‖ [u64_le(len(topic)) ‖ topic ‖] payload)[:20]`).
#[test]
fn message_ids_match_hand_computed_values() {
    assert_eq!(
        message_id(PHASE0_TOPIC, HELLO, Fork::Phase0).to_vec(),
        hex("79d62a59d0e47597aeb73cb85ba034c3f67f90e8")
    );
    assert_eq!(
        message_id(ALTAIR_TOPIC, HELLO, Fork::Altair).to_vec(),
        hex("3783b6a34e0dfd713222c5e808e2aedff212c6a4")
    );
    assert_eq!(
        message_id(ALTAIR_TOPIC, ABC4, Fork::Fulu).to_vec(),
        hex("016ead7dc37480355601b09f2443415b2d55fbbd")
    );
    // Not snappy (an unterminated varint): the raw data under the invalid-snappy domain.
    assert_eq!(
        message_id(ALTAIR_TOPIC, &[0xff, 0xff], Fork::Altair).to_vec(),
        hex("f4fb9de849983a174edcd3a407ff585435b461b1")
    );
    assert_eq!(
        message_id(PHASE0_TOPIC, &[0xff, 0xff], Fork::Phase0).to_vec(),
        hex("70bf5dd334d1d0f5346e284db74989aabf87c2c4")
    );
}

#[test]
fn schedule_picks_the_message_id_rule_from_the_topic_digest() {
    let s = ForkSchedule::for_network(Network::Mainnet).unwrap();
    assert_eq!(
        s.message_id(PHASE0_TOPIC, HELLO),
        message_id(PHASE0_TOPIC, HELLO, Fork::Phase0)
    );
    assert_eq!(
        s.message_id(ALTAIR_TOPIC, HELLO),
        message_id(ALTAIR_TOPIC, HELLO, Fork::Altair)
    );
    assert_ne!(
        message_id(PHASE0_TOPIC, HELLO, Fork::Phase0),
        message_id(PHASE0_TOPIC, HELLO, Fork::Altair)
    );
    // Unknown digest or not a topic at all: the Altair rule.
    let t = "/eth2/00000000/beacon_block/ssz_snappy";
    assert_eq!(s.message_id(t, HELLO), message_id(t, HELLO, Fork::Altair));
    assert_eq!(
        s.message_id("junk", HELLO),
        message_id("junk", HELLO, Fork::Altair)
    );
}

/// A config's message domains are the ones the schedule hashes with.
#[test]
fn schedule_uses_the_configs_message_domains() {
    let text = Network::Mainnet.config_text().replace(
        "MESSAGE_DOMAIN_VALID_SNAPPY: 0x01000000",
        "MESSAGE_DOMAIN_VALID_SNAPPY: 0x02000000",
    );
    let config = plexus_eth::ChainConfig::from_yaml(&text).unwrap();
    let gvr = Network::Mainnet.genesis_validators_root().unwrap();
    let s = ForkSchedule::new(config, gvr).unwrap();
    let id = s.message_id(PHASE0_TOPIC, HELLO);
    assert_ne!(id, message_id(PHASE0_TOPIC, HELLO, Fork::Phase0));
    use sha2::Digest;
    let want: [u8; 20] = sha2::Sha256::digest([&[2u8, 0, 0, 0][..], b"hello"].concat())[..20]
        .try_into()
        .unwrap();
    assert_eq!(id, want);
    // The invalid-snappy domain is unchanged.
    assert_eq!(
        s.message_id(PHASE0_TOPIC, &[0xff, 0xff]),
        message_id(PHASE0_TOPIC, &[0xff, 0xff], Fork::Phase0)
    );
}

#[test]
fn decode_message_resolves_checks_and_ids() {
    let s = ForkSchedule::for_network(Network::Mainnet).unwrap();
    let topic = "/eth2/8c9f62fe/voluntary_exit/ssz_snappy";
    let exit = vec![7u8; 112];
    let data = encode_gossip(&exit, 112).unwrap();
    let (id, msg) = s.decode_message(topic, &data);
    let msg = msg.unwrap();
    assert_eq!(msg.payload, exit);
    assert_eq!(msg.id, id);
    assert_eq!(msg.topic.topic.kind, GossipKind::VoluntaryExit);
    assert_eq!(msg.topic.max_uncompressed_len, 112);
    assert_eq!(id, message_id(topic, &data, Fork::Fulu));
    // One byte over the type's size: rejected, and the id is still the valid-snappy one every
    // node computes (the id's cap is MAX_PAYLOAD_SIZE, not the topic's bound).
    let data = encode_gossip(&[7u8; 113], 1000).unwrap();
    let (id, msg) = s.decode_message(topic, &data);
    assert_eq!(
        msg,
        Err(GossipMessageError::Payload(GossipError::TooLarge {
            declared: 113,
            limit: 112
        }))
    );
    assert_eq!(id, message_id(topic, &data, Fork::Fulu));
    // Compressed data too long for the topic but not for MAX_PAYLOAD_SIZE: same rule.
    let noise: Vec<u8> = (0u32..200)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let data = encode_gossip(&noise, 1000).unwrap();
    assert!(data.len() > 162, "incompressible");
    let (id, msg) = s.decode_message(topic, &data);
    assert!(matches!(
        msg,
        Err(GossipMessageError::Payload(
            GossipError::CompressedTooLarge { .. }
        ))
    ));
    assert_eq!(id, message_id(topic, &data, Fork::Fulu));
    assert_ne!(id, invalid_snappy_id(topic, &data));
    // Unknown topic: rejected, with an id.
    let (id, msg) = s.decode_message("/eth2/8c9f62fe/nope/ssz_snappy", HELLO);
    assert_eq!(msg, Err(GossipMessageError::Topic(TopicError::UnknownName)));
    assert_eq!(
        id,
        message_id("/eth2/8c9f62fe/nope/ssz_snappy", HELLO, Fork::Altair)
    );
}

/// A header declaring more than the topic allows is refused from the header alone: the body
/// here is garbage, so reaching the decompressor would give `BadSnappy` instead.
#[test]
fn snappy_bomb_is_refused_before_decompressing() {
    // varint(1 MiB) then junk.
    let mut bomb = vec![0x80, 0x80, 0x40];
    bomb.extend_from_slice(&[0xff; 20]);
    assert_eq!(declared_len(&bomb), Ok(1 << 20));
    assert_eq!(
        decode_gossip(&bomb, 240),
        Err(GossipError::TooLarge {
            declared: 1 << 20,
            limit: 240
        })
    );
    // A real block of 10 MiB + 1 zeros (a few hundred KiB compressed) on a 10 MiB topic.
    let big = encode_gossip(&vec![0u8; 10 * 1024 * 1024 + 1], u64::MAX).unwrap();
    assert!(big.len() < 1024 * 1024);
    assert_eq!(
        decode_gossip(&big, 10 * 1024 * 1024),
        Err(GossipError::TooLarge {
            declared: 10 * 1024 * 1024 + 1,
            limit: 10 * 1024 * 1024
        })
    );
    // Its id falls back to the invalid-snappy form (it does not decompress within the cap).
    let t = ALTAIR_TOPIC;
    let invalid = invalid_snappy_id(t, &big);
    assert_eq!(
        message_id_with_limit(t, &big, Fork::Altair, 10 * 1024 * 1024),
        invalid
    );
    // With a cap above its size it decompresses and gets the valid-snappy id.
    assert_ne!(
        message_id_with_limit(t, &big, Fork::Altair, 11 * 1024 * 1024),
        invalid
    );
    // A header within the limit but more than the body could ever expand to (22× its length)
    // is refused without allocating the declared size.
    let mut liar = vec![0x80, 0x80, 0x80, 0x04]; // varint(8 MiB)
    liar.extend_from_slice(&[0x00; 16]);
    assert!(matches!(
        decode_gossip(&liar, 10 * 1024 * 1024),
        Err(GossipError::BadSnappy(_))
    ));
    // Compressed data longer than max_compressed_len(limit).
    assert_eq!(
        decode_gossip(&[0u8; 300], 200),
        Err(GossipError::CompressedTooLarge {
            len: 300,
            max: 265,
            limit: 200
        })
    );
}

#[test]
fn block_whose_content_differs_from_its_header_is_rejected() {
    // Header says 10 bytes, the literal holds 5.
    let short = [0x0a, 0x10, b'h', b'e', b'l', b'l', b'o'];
    assert!(matches!(
        decode_gossip(&short, 100),
        Err(GossipError::BadSnappy(_))
    ));
    // Header says 3 bytes, the block produces 12.
    let long = [0x03, 0x08, b'a', b'b', b'c', 0x15, 0x03];
    assert!(matches!(
        decode_gossip(&long, 100),
        Err(GossipError::BadSnappy(_))
    ));
    // Copy before any output (offset beyond what was produced).
    let bad_offset = [0x09, 0x15, 0x03];
    assert!(matches!(
        decode_gossip(&bad_offset, 100),
        Err(GossipError::BadSnappy(_))
    ));
    // Empty input and a truncated header.
    assert_eq!(decode_gossip(&[], 100), Err(GossipError::BadHeader));
    assert_eq!(decode_gossip(&[0x80], 100), Err(GossipError::BadHeader));
    // Such messages get the invalid-snappy id.
    assert_eq!(
        message_id(ALTAIR_TOPIC, &short, Fork::Altair),
        decode_gossip_message(ALTAIR_TOPIC, &short, Fork::Altair, 3).0
    );
}

#[test]
fn encode_refuses_oversized_payloads() {
    assert_eq!(
        encode_gossip(&[0u8; 241], 240),
        Err(GossipError::TooLarge {
            declared: 241,
            limit: 240
        })
    );
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(data in proptest::collection::vec(any::<u8>(), 0..4096), extra in 0u64..64) {
        let limit = data.len() as u64 + extra;
        let compressed = encode_gossip(&data, limit).unwrap();
        prop_assert!(compressed.len() as u64 <= plexus_eth::max_compressed_len(data.len() as u64));
        prop_assert_eq!(decode_gossip(&compressed, limit).unwrap(), data.clone());
        let (id, payload) = decode_gossip_message(ALTAIR_TOPIC, &compressed, Fork::Altair, limit);
        prop_assert_eq!(payload.unwrap(), data);
        prop_assert_eq!(id, message_id(ALTAIR_TOPIC, &compressed, Fork::Altair));
    }

    #[test]
    fn arbitrary_bytes_never_panic_nor_exceed_the_limit(data in proptest::collection::vec(any::<u8>(), 0..512), limit in 0u64..100_000) {
        if let Ok(out) = decode_gossip(&data, limit) {
            prop_assert!(out.len() as u64 <= limit);
            prop_assert_eq!(out.len() as u64, declared_len(&data).unwrap());
        }
        let _ = message_id(ALTAIR_TOPIC, &data, Fork::Phase0);
    }
}
