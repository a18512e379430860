//! Topic transitions around forks and BPO changes on mainnet's schedule.

use std::collections::BTreeSet;

use plexus_eth::{Fork, ForkDigest, ForkSchedule, GossipKind, Network};
use plexus_eth_gossip::plan::{TransitionConfig, diff, digests_at, topics_at};

fn mainnet() -> ForkSchedule {
    ForkSchedule::for_network(Network::Mainnet).unwrap()
}

fn d(hex: &str) -> ForkDigest {
    hex.parse().unwrap()
}

const ELECTRA: &str = "ad532ceb";
const FULU: &str = "cc2c5cdb"; // epoch 411392
const BPO1: &str = "cb0d1acc"; // epoch 412672

#[test]
fn the_next_digest_is_joined_two_epochs_ahead_and_the_old_one_left_two_after() {
    let s = mainnet();
    let t = TransitionConfig::default();
    let fulu = 411_392;
    assert_eq!(digests_at(&s, fulu - 3, t), vec![d(ELECTRA)]);
    assert_eq!(digests_at(&s, fulu - 2, t), vec![d(ELECTRA), d(FULU)]);
    assert_eq!(digests_at(&s, fulu - 1, t), vec![d(ELECTRA), d(FULU)]);
    assert_eq!(digests_at(&s, fulu, t), vec![d(ELECTRA), d(FULU)]);
    assert_eq!(digests_at(&s, fulu + 1, t), vec![d(ELECTRA), d(FULU)]);
    assert_eq!(digests_at(&s, fulu + 2, t), vec![d(FULU)]);
    // A BPO change is a digest change like a fork.
    let bpo1 = 412_672;
    assert_eq!(digests_at(&s, bpo1 - 2, t), vec![d(FULU), d(BPO1)]);
    assert_eq!(digests_at(&s, bpo1 + 2, t), vec![d(BPO1)]);
    // Other margins.
    let t = TransitionConfig {
        subscribe_ahead_epochs: 0,
        unsubscribe_after_epochs: 0,
    };
    assert_eq!(digests_at(&s, fulu - 1, t), vec![d(ELECTRA)]);
    assert_eq!(digests_at(&s, fulu, t), vec![d(FULU)]);
}

#[test]
fn topics_exist_only_at_forks_that_have_them() {
    let s = mainnet();
    let t = TransitionConfig::default();
    let kinds: BTreeSet<GossipKind> = [
        GossipKind::BeaconBlock,
        GossipKind::BlobSidecar(0),
        GossipKind::DataColumnSidecar(0),
    ]
    .into();
    let topics = topics_at(&s, 411_391, &kinds, t);
    let want: BTreeSet<String> = [
        format!("/eth2/{ELECTRA}/beacon_block/ssz_snappy"),
        format!("/eth2/{ELECTRA}/blob_sidecar_0/ssz_snappy"),
        format!("/eth2/{FULU}/beacon_block/ssz_snappy"),
        format!("/eth2/{FULU}/data_column_sidecar_0/ssz_snappy"),
    ]
    .into();
    assert_eq!(topics, want);
    // After the transition only Fulu's remain; moving there leaves exactly Electra's.
    let later = topics_at(&s, 411_394, &kinds, t);
    let (join, leave) = diff(&topics, &later);
    assert!(join.is_empty());
    assert_eq!(
        leave,
        vec![
            format!("/eth2/{ELECTRA}/beacon_block/ssz_snappy"),
            format!("/eth2/{ELECTRA}/blob_sidecar_0/ssz_snappy"),
        ]
    );
}

#[test]
fn before_genesis_of_any_fork_nothing_is_followed_and_phase0_has_no_previous() {
    let s = mainnet();
    let first = s.entries()[0];
    assert_eq!(first.fork, Fork::Phase0);
    assert_eq!(
        digests_at(&s, 0, TransitionConfig::default()),
        vec![first.digest]
    );
}
