//! Fuzz target `eth_gossip`: an Ethereum gossip message (topic string and snappy data, both
//! remote) through `plexus_eth`: topic parsing and resolution against mainnet's and Sepolia's
//! schedules, the bounded snappy decoder, and the message-id functions.
//!
//! Input layout: byte 0 picks the topic (a known topic of some fork when below 0xf0, else the
//! topic string is read from the input: byte 1 is its length); the rest is `Message.data`.
//! Byte 0 = 0xff instead feeds the rest to the chain-config parser (local input, fuzzed for
//! robustness).
//!
//! Both the raw data and a decoded payload also go through `signed_block_slot_and_proposer`
//! (the `SignedBeaconBlock` fixed-part reader `plexus node` prints blocks with).
//!
//! Asserts: no panic; a parsed topic prints back to the same string; a decoded payload is at
//! most the topic's bound and exactly the declared length, re-encodes and decodes to itself;
//! the message id returned with a decode equals the stand-alone message-id function's; a
//! config that parses validates and builds a schedule.
use std::sync::OnceLock;

use plexus_eth::{
    ChainConfig, ForkSchedule, GossipKind, GossipTopic, Network, declared_len, decode_gossip,
    encode_gossip, message_id_with_limit, signed_block_slot_and_proposer,
};

fn schedules() -> &'static [ForkSchedule; 2] {
    static S: OnceLock<[ForkSchedule; 2]> = OnceLock::new();
    S.get_or_init(|| {
        [Network::Mainnet, Network::Sepolia]
            .map(|n| ForkSchedule::for_network(n).expect("built-in network"))
    })
}

/// A valid topic string picked by `sel`: some kind at some digest of the schedule.
fn known_topic(s: &ForkSchedule, sel: u8) -> String {
    let entries = s.entries();
    let entry = entries[usize::from(sel) % entries.len()];
    let kinds = GossipKind::all_at(entry.fork, s.config());
    let kind = kinds[usize::from(sel / 8) % kinds.len()];
    GossipTopic::new(entry.digest, kind).to_string()
}

/// `signed_block_slot_and_proposer` reads only a well-formed fixed part, and reads it
/// right.
fn block_fields(ssz: &[u8]) {
    if let Some((slot, proposer)) = signed_block_slot_and_proposer(ssz) {
        assert!(ssz.len() >= 184 && ssz[..4] == 100u32.to_le_bytes());
        assert_eq!(slot.to_le_bytes(), ssz[100..108]);
        assert_eq!(proposer.to_le_bytes(), ssz[108..116]);
    }
}

pub fn run(data: &[u8]) {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    if sel == 0xff {
        if let Ok(text) = std::str::from_utf8(rest)
            && let Ok(config) = ChainConfig::from_yaml(text)
        {
            assert_eq!(config.validate(), Ok(()));
            let _ = ForkSchedule::new(config, [0u8; 32]);
        }
        return;
    }
    let schedule = &schedules()[usize::from(sel & 1)];
    let (topic, payload) = if sel < 0xf0 {
        (known_topic(schedule, sel >> 1), rest)
    } else {
        let Some((&len, rest)) = rest.split_first() else {
            return;
        };
        let (t, p) = rest.split_at(usize::from(len).min(rest.len()));
        (String::from_utf8_lossy(t).into_owned(), p)
    };

    if let Ok(parsed) = GossipTopic::parse(&topic) {
        assert_eq!(parsed.to_string(), topic);
    }

    let (id, result) = schedule.decode_message(&topic, payload);
    assert_eq!(id, schedule.message_id(&topic, payload));
    if let Ok(msg) = result {
        let bound = msg.topic.max_uncompressed_len;
        assert!(msg.payload.len() as u64 <= bound);
        assert_eq!(Ok(msg.payload.len() as u64), declared_len(payload));
        assert_eq!(msg.id, id);
        let again = encode_gossip(&msg.payload, bound).expect("within the bound");
        assert_eq!(
            decode_gossip(&again, bound).as_deref(),
            Ok(&msg.payload[..])
        );
        block_fields(&msg.payload);
        let fork = msg.topic.entry.fork;
        assert_eq!(
            id,
            message_id_with_limit(&topic, payload, fork, schedule.config().max_payload_size)
        );
    }

    block_fields(payload);

    // Small limits reach every early refusal.
    for limit in [0, 1, 64, 240] {
        if let Ok(out) = decode_gossip(payload, limit) {
            assert!(out.len() as u64 <= limit);
        }
    }
}
