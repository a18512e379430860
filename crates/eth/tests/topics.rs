//! Gossip topic strings, which topics exist at which fork, and their size bounds.

use plexus_eth::{
    Fork, ForkDigest, ForkSchedule, GossipKind, GossipTopic, Network, TopicError,
    max_compressed_len, max_message_size, ssz_max_size,
};

fn mainnet() -> ForkSchedule {
    ForkSchedule::for_network(Network::Mainnet).unwrap()
}

/// Topic strings as other implementations spell them: the spec's own example
/// (`/eth2/446a7232/beacon_aggregate_and_proof/ssz_snappy`), Prysm's topic tests (mainnet
/// Electra, Altair and Fulu digests), Nethermind's `GossipTopicsTests` (mainnet BPO2), Hoodi
/// gossip traces.
#[test]
fn topic_strings_match_other_implementations() {
    let cases = [
        "/eth2/446a7232/beacon_aggregate_and_proof/ssz_snappy",
        "/eth2/ad532ceb/sync_committee_contribution_and_proof/ssz_snappy",
        "/eth2/ad532ceb/beacon_aggregate_and_proof/ssz_snappy",
        "/eth2/ad532ceb/beacon_block/ssz_snappy",
        "/eth2/ad532ceb/bls_to_execution_change/ssz_snappy",
        "/eth2/afcaaba0/beacon_attestation_19/ssz_snappy",
        "/eth2/cc2c5cdb/data_column_sidecar_0/ssz_snappy",
        "/eth2/cc2c5cdb/data_column_sidecar_127/ssz_snappy",
        "/eth2/8c9f62fe/beacon_block/ssz_snappy",
        "/eth2/8c9f62fe/voluntary_exit/ssz_snappy",
        "/eth2/c6ecb76c/beacon_attestation_31/ssz_snappy",
    ];
    for s in cases {
        let t = GossipTopic::parse(s).unwrap();
        assert_eq!(t.to_string(), s);
    }
    let t = GossipTopic::parse("/eth2/afcaaba0/beacon_attestation_19/ssz_snappy").unwrap();
    assert_eq!(t.digest, ForkDigest([0xaf, 0xca, 0xab, 0xa0]));
    assert_eq!(t.kind, GossipKind::BeaconAttestation(19));
    assert_eq!(t.kind.subnet(), Some(19));
    // Built from the schedule: the mainnet BPO2 block topic.
    let s = mainnet();
    let built = GossipTopic::new(s.digest_at(419072), GossipKind::BeaconBlock);
    assert_eq!(built.to_string(), "/eth2/8c9f62fe/beacon_block/ssz_snappy");
}

#[test]
fn every_kind_round_trips() {
    let sepolia = ForkSchedule::for_network(Network::Sepolia).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for fork in Fork::ALL {
        for kind in GossipKind::all_at(fork, sepolia.config()) {
            let topic = GossipTopic::new(ForkDigest([1, 2, 3, 4]), kind);
            let text = topic.to_string();
            assert!(text.len() <= plexus_eth::MAX_TOPIC_LEN);
            assert_eq!(GossipTopic::parse(&text), Ok(topic));
            assert_eq!(GossipKind::from_name(&kind.to_string()), Some(kind));
            names.insert(kind.to_string());
        }
    }
    for name in [
        "execution_payload_bid",
        "execution_payload",
        "payload_attestation_message",
        "proposer_preferences",
        "light_client_finality_update",
        "light_client_optimistic_update",
        "blob_sidecar_8",
        "sync_committee_3",
    ] {
        assert!(names.contains(name), "{name}");
    }
}

#[test]
fn malformed_topics_are_rejected() {
    let cases = [
        (
            "/eth2/AFCAABA0/beacon_block/ssz_snappy",
            TopicError::Malformed,
        ),
        (
            "/eth2/0xafcaab/beacon_block/ssz_snappy",
            TopicError::Malformed,
        ),
        (
            "/eth2/afcaaba/beacon_block/ssz_snappy",
            TopicError::Malformed,
        ),
        ("/eth2/afcaaba0/beacon_block/ssz", TopicError::Malformed),
        ("/eth2/afcaaba0/beacon_block", TopicError::Malformed),
        (
            "/eth2/afcaaba0/beacon_block/ssz_snappy/",
            TopicError::Malformed,
        ),
        (
            "/eth1/afcaaba0/beacon_block/ssz_snappy",
            TopicError::Malformed,
        ),
        (
            "eth2/afcaaba0/beacon_block/ssz_snappy",
            TopicError::Malformed,
        ),
        (
            "/eth2/afcaaba0/beacon_blocks/ssz_snappy",
            TopicError::UnknownName,
        ),
        (
            "/eth2/afcaaba0/beacon_attestation_07/ssz_snappy",
            TopicError::UnknownName,
        ),
        (
            "/eth2/afcaaba0/beacon_attestation_/ssz_snappy",
            TopicError::UnknownName,
        ),
        (
            "/eth2/afcaaba0/beacon_attestation_+1/ssz_snappy",
            TopicError::UnknownName,
        ),
        (
            "/eth2/afcaaba0/beacon_attestation_99999999999999999999/ssz_snappy",
            TopicError::UnknownName,
        ),
        (
            "/eth2/afcaaba0/sync_committee_/ssz_snappy",
            TopicError::UnknownName,
        ),
    ];
    for (s, err) in cases {
        assert_eq!(GossipTopic::parse(s), Err(err), "{s}");
    }
    let long = format!("/eth2/afcaaba0/{}/ssz_snappy", "a".repeat(200));
    assert_eq!(
        GossipTopic::parse(&long),
        Err(TopicError::TooLong(long.len()))
    );
}

#[test]
fn topics_exist_only_at_their_forks() {
    let s = mainnet();
    let ok = |t: &str| s.resolve_topic(t).map(|r| r.entry.fork);
    assert_eq!(
        ok("/eth2/6a95a1a9/blob_sidecar_5/ssz_snappy"),
        Ok(Fork::Deneb)
    );
    assert_eq!(
        ok("/eth2/6a95a1a9/blob_sidecar_6/ssz_snappy"),
        Err(TopicError::NotAtFork {
            kind: GossipKind::BlobSidecar(6),
            fork: Fork::Deneb
        })
    );
    assert_eq!(
        ok("/eth2/ad532ceb/blob_sidecar_8/ssz_snappy"),
        Ok(Fork::Electra)
    );
    assert!(
        ok("/eth2/cc2c5cdb/blob_sidecar_0/ssz_snappy").is_err(),
        "blob topics end with Fulu"
    );
    assert_eq!(
        ok("/eth2/8c9f62fe/data_column_sidecar_127/ssz_snappy"),
        Ok(Fork::Fulu)
    );
    assert!(ok("/eth2/8c9f62fe/data_column_sidecar_128/ssz_snappy").is_err());
    assert!(ok("/eth2/ad532ceb/data_column_sidecar_0/ssz_snappy").is_err());
    assert!(ok("/eth2/8c9f62fe/beacon_attestation_64/ssz_snappy").is_err());
    assert!(ok("/eth2/8c9f62fe/sync_committee_4/ssz_snappy").is_err());
    assert!(
        ok("/eth2/b5303f2a/sync_committee_0/ssz_snappy").is_err(),
        "sync topics start at Altair"
    );
    assert!(ok("/eth2/afcaaba0/bls_to_execution_change/ssz_snappy").is_err());
    assert_eq!(
        ok("/eth2/bba4da96/bls_to_execution_change/ssz_snappy"),
        Ok(Fork::Capella)
    );
    assert!(
        ok("/eth2/8c9f62fe/execution_payload_bid/ssz_snappy").is_err(),
        "no Gloas on mainnet"
    );
    assert_eq!(
        ok("/eth2/12345678/beacon_block/ssz_snappy"),
        Err(TopicError::UnknownDigest(ForkDigest([
            0x12, 0x34, 0x56, 0x78
        ])))
    );
    let sepolia = ForkSchedule::for_network(Network::Sepolia).unwrap();
    for name in [
        "execution_payload_bid",
        "execution_payload",
        "payload_attestation_message",
        "proposer_preferences",
    ] {
        let t = format!("/eth2/669e6c11/{name}/ssz_snappy");
        assert_eq!(
            sepolia.resolve_topic(&t).map(|r| r.entry.fork),
            Ok(Fork::Gloas),
            "{t}"
        );
        let before = format!("/eth2/74d01459/{name}/ssz_snappy");
        assert!(sepolia.resolve_topic(&before).is_err(), "{before}");
    }
}

/// phase 0: 5 global + 64 attestation subnets; Altair: + contribution, 2 light client, 4 sync
/// subnets; Capella: + BLS change; Deneb: + 6 blob subnets; Electra: 9 blob subnets; Fulu:
/// blob subnets out, 128 column subnets in; Gloas: + 4 topics.
#[test]
fn topic_counts_per_fork() {
    let c = Network::Sepolia.config();
    let counts: Vec<usize> = Fork::ALL
        .iter()
        .map(|f| GossipKind::all_at(*f, &c).len())
        .collect();
    assert_eq!(counts, vec![69, 76, 76, 77, 83, 86, 205, 209]);
    let s = mainnet();
    assert_eq!(s.topics_at(419072).len(), 205);
    assert!(
        s.topics_at(419072)
            .iter()
            .all(|t| t.digest == s.digest_at(419072))
    );
}

/// The type bounds against the Gloas preset constants (`MAX_SIGNED_AGGREGATE_AND_PROOF_SIZE`,
/// `MAX_ATTESTER_SLASHING_SIZE`, `MAX_DATA_COLUMN_SIDECAR_SIZE`,
/// `MAX_SIGNED_EXECUTION_PAYLOAD_BID_SIZE` in presets/{mainnet,minimal}/gloas.yaml), and
/// fixed sizes from shared/specs/06 §5 (BlobSidecar 131,928; DataColumnSidecar 356 + 2144 n).
#[test]
fn size_bounds_match_the_spec_constants() {
    let main = Network::Mainnet.config();
    let min = Network::Minimal.config();
    let g = Fork::Gloas;
    assert_eq!(
        ssz_max_size(GossipKind::BeaconAggregateAndProof, g, &main),
        Some(16829)
    );
    assert_eq!(
        ssz_max_size(GossipKind::BeaconAggregateAndProof, g, &min),
        Some(1462)
    );
    assert_eq!(
        ssz_max_size(GossipKind::AttesterSlashing, g, &main),
        Some(2_097_616)
    );
    assert_eq!(
        ssz_max_size(GossipKind::AttesterSlashing, g, &min),
        Some(131_536)
    );
    assert_eq!(
        ssz_max_size(GossipKind::DataColumnSidecar(0), g, &main),
        Some(8_585_272)
    );
    assert_eq!(
        ssz_max_size(GossipKind::DataColumnSidecar(0), g, &min),
        Some(8_585_272)
    );
    assert_eq!(
        ssz_max_size(GossipKind::ExecutionPayloadBid, g, &main),
        Some(196_932)
    );
    assert_eq!(
        ssz_max_size(GossipKind::BlobSidecar(0), Fork::Deneb, &main),
        Some(131_928)
    );
    assert_eq!(
        ssz_max_size(GossipKind::DataColumnSidecar(3), Fork::Fulu, &main),
        Some(356 + 2144 * 4096)
    );
    // Before Electra, an attestation has one committee's bits.
    assert_eq!(
        ssz_max_size(GossipKind::BeaconAggregateAndProof, Fork::Deneb, &main),
        Some(693)
    );
    assert_eq!(
        ssz_max_size(GossipKind::BeaconAttestation(0), Fork::Deneb, &main),
        Some(485)
    );
    assert_eq!(
        ssz_max_size(GossipKind::BeaconAttestation(0), Fork::Electra, &main),
        Some(240)
    );
    assert_eq!(
        ssz_max_size(GossipKind::AttesterSlashing, Fork::Phase0, &main),
        Some(33_232)
    );
    assert_eq!(
        ssz_max_size(GossipKind::VoluntaryExit, Fork::Phase0, &main),
        Some(112)
    );
    assert_eq!(
        ssz_max_size(GossipKind::ProposerSlashing, Fork::Phase0, &main),
        Some(416)
    );
    assert_eq!(
        ssz_max_size(GossipKind::SyncCommittee(0), Fork::Altair, &main),
        Some(144)
    );
    assert_eq!(
        ssz_max_size(
            GossipKind::SyncCommitteeContributionAndProof,
            Fork::Altair,
            &main
        ),
        Some(360)
    );
    assert_eq!(
        ssz_max_size(
            GossipKind::SyncCommitteeContributionAndProof,
            Fork::Altair,
            &min
        ),
        Some(345)
    );
    assert_eq!(
        ssz_max_size(GossipKind::BlsToExecutionChange, Fork::Capella, &main),
        Some(172)
    );
    assert_eq!(
        ssz_max_size(GossipKind::PayloadAttestationMessage, g, &main),
        Some(146)
    );
    assert_eq!(
        ssz_max_size(GossipKind::ProposerPreferences, g, &main),
        Some(172)
    );
    // Blocks are bounded by MAX_PAYLOAD_SIZE only; so is a type bound above it.
    assert_eq!(
        GossipKind::BeaconBlock.max_uncompressed_len(Fork::Fulu, &main),
        10 * 1024 * 1024
    );
    let mut small = main.clone();
    small.max_payload_size = 1 << 20;
    assert_eq!(
        GossipKind::DataColumnSidecar(0).max_uncompressed_len(Fork::Fulu, &small),
        1 << 20
    );
    assert_eq!(
        GossipKind::VoluntaryExit.max_uncompressed_len(Fork::Fulu, &small),
        112
    );
}

/// shared/specs/05 §4.4: 12,233,418 and 12,234,442 for 10 MiB.
#[test]
fn message_size_limits() {
    assert_eq!(max_compressed_len(10_485_760), 12_233_418);
    assert_eq!(max_message_size(10_485_760), 12_234_442);
    assert_eq!(max_message_size(1000), 1024 * 1024);
}
