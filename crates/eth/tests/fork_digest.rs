//! Fork digests of the published networks, checked against values other implementations and
//! live networks publish, and the schedule built on them.

use plexus_eth::{
    ChainConfig, EnrForkId, FAR_FUTURE_EPOCH, Fork, ForkDigest, ForkSchedule, Network,
    compute_fork_digest, pre_genesis_digest,
};

fn d(hex: &str) -> ForkDigest {
    ForkDigest::from_topic_hex(hex).unwrap()
}

fn schedule(n: Network) -> ForkSchedule {
    ForkSchedule::for_network(n).unwrap()
}

/// (epoch, fork, digest) for every entry of a network's schedule, in order.
fn check(n: Network, expected: &[(u64, Fork, &str)]) {
    let s = schedule(n);
    let got: Vec<(u64, Fork, String)> = s
        .entries()
        .iter()
        .map(|e| (e.epoch, e.fork, e.digest.to_string()))
        .collect();
    let want: Vec<(u64, Fork, String)> = expected
        .iter()
        .map(|(e, f, h)| (*e, *f, h.to_string()))
        .collect();
    assert_eq!(got, want, "{}", n.name());
    for (epoch, fork, hex) in expected {
        assert_eq!(s.digest_at(*epoch), d(hex), "{} at {epoch}", n.name());
        assert_eq!(s.fork_at(*epoch), *fork);
        assert_eq!(s.fork_of_digest(d(hex)), Some(*fork));
        // The schedule agrees with the reference function at every boundary and just before.
        assert_eq!(
            compute_fork_digest(s.config(), s.genesis_validators_root(), *epoch),
            d(hex)
        );
        if *epoch > 0 {
            assert_ne!(s.digest_at(epoch - 1), d(hex));
        }
    }
}

/// Mainnet phase 0 … BPO2. Sources, each independent of this crate: the phase 0 … BPO2 table
/// derived in shared/specs/05 §3 (Python, from the spec's formula); Nethermind's
/// `GossipTopicsTests` (8c9f62fe at the BPO2 epoch 419072) and its fork-digest test cases
/// (b5303f2a … 8c9f62fe); Prysm's topic tests (afcaaba0, ad532ceb, cc2c5cdb); go-ethereum's
/// beacon light-client `TestMainnetForkDigest` (cb0d1acc, 8c9f62fe); ENR crawls of mainnet
/// (8c9f62fe current, ad532ceb / 6a95a1a9 on stragglers).
#[test]
fn mainnet_digests_match_published_values() {
    check(
        Network::Mainnet,
        &[
            (0, Fork::Phase0, "b5303f2a"),
            (74240, Fork::Altair, "afcaaba0"),
            (144896, Fork::Bellatrix, "4a26c58b"),
            (194048, Fork::Capella, "bba4da96"),
            (269568, Fork::Deneb, "6a95a1a9"),
            (364032, Fork::Electra, "ad532ceb"),
            (411392, Fork::Fulu, "cc2c5cdb"),
            (412672, Fork::Fulu, "cb0d1acc"),
            (419072, Fork::Fulu, "8c9f62fe"),
        ],
    );
    let s = schedule(Network::Mainnet);
    assert_eq!(s.digest_at(412671), d("cc2c5cdb"));
    assert_eq!(s.digest_at(500_000), d("8c9f62fe"));
    assert_eq!(
        s.digest_at(FAR_FUTURE_EPOCH),
        d("8c9f62fe"),
        "Gloas is not scheduled on mainnet"
    );
}

/// Sepolia. Published values: d31f6191 (Deneb) and 14045b5a (Electra) as constants in a
/// Cairo/Starknet light-client verifier; 14045b5a, 7e0d3447, fd32b622, 74d01459, 669e6c11 in a
/// Go client's config-loading test; 74d01459 in Lodestar's Sepolia ENR and in a light-client
/// server's observed `updates` context bytes; 669e6c11 as the Gloas digest in two other
/// network tables. Phase 0 … Capella were computed with Python's hashlib from the spec formula
/// (independently of this crate).
#[test]
fn sepolia_digests_match_published_values() {
    check(
        Network::Sepolia,
        &[
            (0, Fork::Phase0, "a8fee8ee"),
            (50, Fork::Altair, "60725ca1"),
            (100, Fork::Bellatrix, "36fa5013"),
            (56832, Fork::Capella, "47eb72b3"),
            (132608, Fork::Deneb, "d31f6191"),
            (222464, Fork::Electra, "14045b5a"),
            (272640, Fork::Fulu, "7e0d3447"),
            (274176, Fork::Fulu, "fd32b622"),
            (275712, Fork::Fulu, "74d01459"),
            (353024, Fork::Gloas, "669e6c11"),
        ],
    );
}

/// Hoodi: every fork up to Deneb at epoch 0, so the schedule starts at Deneb. Published
/// values: 82556a32, e2abcca4, ae9f70a0, c6ecb76c in a Rust client's `fork_digest_vectors`;
/// c6ecb76c in Hoodi ENR crawls and gossip traces (`/eth2/c6ecb76c/beacon_block/ssz_snappy`);
/// 5ad30129 as Hoodi's Gloas digest in a Go network table. d2f1997f computed with Python.
#[test]
fn hoodi_digests_match_published_values() {
    check(
        Network::Hoodi,
        &[
            (0, Fork::Deneb, "d2f1997f"),
            (2048, Fork::Electra, "82556a32"),
            (50688, Fork::Fulu, "e2abcca4"),
            (52480, Fork::Fulu, "ae9f70a0"),
            (54016, Fork::Fulu, "c6ecb76c"),
            (132352, Fork::Gloas, "5ad30129"),
        ],
    );
    // Forks that activate together leave only the last one's digest.
    let s = schedule(Network::Hoodi);
    assert_eq!(
        s.fork_of_digest(d("5df5c106")),
        None,
        "hoodi's phase 0 digest never took effect"
    );
}

#[test]
fn next_digest_and_enr_fork_id_follow_regular_and_bpo_forks() {
    let s = schedule(Network::Mainnet);
    assert_eq!(s.next_digest(411391), Some((411392, d("cc2c5cdb"))));
    assert_eq!(s.next_digest(411392), Some((412672, d("cb0d1acc"))));
    assert_eq!(s.next_digest(419072), None);
    assert_eq!(
        s.enr_fork_id(364100),
        EnrForkId {
            fork_digest: d("ad532ceb"),
            next_fork_version: [6, 0, 0, 0],
            next_fork_epoch: 411392,
        }
    );
    // A BPO fork changes the epoch but not the version.
    assert_eq!(
        s.enr_fork_id(411392),
        EnrForkId {
            fork_digest: d("cc2c5cdb"),
            next_fork_version: [6, 0, 0, 0],
            next_fork_epoch: 412672,
        }
    );
    // Nothing scheduled: the current version and FAR_FUTURE_EPOCH.
    let last = s.enr_fork_id(450_000);
    assert_eq!(last.next_fork_version, [6, 0, 0, 0]);
    assert_eq!(last.next_fork_epoch, FAR_FUTURE_EPOCH);
    assert_eq!(
        plexus_eth::encode_ssz(&last),
        [&[0x8c, 0x9f, 0x62, 0xfe][..], &[6, 0, 0, 0], &[0xff; 8]].concat()
    );
    // Sepolia after BPO2: the next fork is Gloas, 90000076 at 353024 (the ENR value
    // `74d01459 90000076 0x56300` published for Lodestar's Sepolia node).
    let sep = schedule(Network::Sepolia).enr_fork_id(340_000);
    assert_eq!(
        (sep.fork_digest, sep.next_fork_version, sep.next_fork_epoch),
        (d("74d01459"), [0x90, 0, 0, 0x76], 0x56300)
    );
}

#[test]
fn unknown_digests_are_not_found() {
    let s = schedule(Network::Mainnet);
    assert_eq!(s.lookup(d("00000000")), None);
    assert_eq!(
        s.fork_of_digest(d("74d01459")),
        None,
        "a sepolia digest is not mainnet's"
    );
}

#[test]
fn minimal_needs_a_genesis_validators_root() {
    assert!(ForkSchedule::for_network(Network::Minimal).is_none());
    let s = ForkSchedule::new(Network::Minimal.config(), [0u8; 32]).unwrap();
    assert_eq!(
        s.entries().len(),
        1,
        "only genesis is scheduled in minimal.yaml"
    );
    // SHA-256(0x00000001 ‖ 28 zero bytes ‖ 32 zero bytes)[:4], computed with Python's hashlib.
    assert_eq!(s.digest_at(FAR_FUTURE_EPOCH), d("18ae4ccb"));
    assert_eq!(pre_genesis_digest(s.config()), d("18ae4ccb"));
    // The root is an input: another root, another digest.
    let other = ForkSchedule::new(Network::Minimal.config(), [1u8; 32]).unwrap();
    assert_ne!(other.digest_at(0), s.digest_at(0));
}

/// A devnet that schedules Fulu at genesis gets blob parameters mixed in from epoch 0, and a
/// BPO entry before Fulu only sets the parameters in force at Fulu.
#[test]
fn fulu_at_genesis_and_early_blob_schedule_entries() {
    let mut text = Network::Minimal.config_text().replace("BLOB_SCHEDULE: []", "BLOB_SCHEDULE:\n  - EPOCH: 0\n    MAX_BLOBS_PER_BLOCK: 12\n  - EPOCH: 10\n    MAX_BLOBS_PER_BLOCK: 20\n");
    for fork in ["ALTAIR", "BELLATRIX", "CAPELLA", "DENEB", "ELECTRA", "FULU"] {
        text = text.replace(
            &format!("{fork}_FORK_EPOCH: 18446744073709551615"),
            &format!("{fork}_FORK_EPOCH: 0"),
        );
    }
    let config = ChainConfig::from_yaml(&text).unwrap();
    let s = ForkSchedule::new(config, [7u8; 32]).unwrap();
    let epochs: Vec<(u64, Fork)> = s.entries().iter().map(|e| (e.epoch, e.fork)).collect();
    assert_eq!(epochs, vec![(0, Fork::Fulu), (10, Fork::Fulu)]);
    assert_eq!(
        s.entries()[0].blob_parameters.unwrap().max_blobs_per_block,
        12
    );
    assert!(s.entries()[1].is_bpo(Some(&s.entries()[0])));
    assert_eq!(s.config().max_blobs_per_block(Fork::Fulu, 9), 12);
    assert_eq!(s.config().max_blobs_per_block(Fork::Fulu, 10), 20);
}
