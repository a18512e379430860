//! The scoring model: every parameter set is valid, and each parameter does what the model
//! says it does (checked by running PeerScore, not by restating formulas).

use std::time::{Duration, Instant};

use plexus_core::PeerId;
use plexus_eth::{GossipKind, Network};
use plexus_eth_gossip::score::{NetworkLoad, ScoreModel, thresholds};
use plexus_gossipsub::score::{PeerScore, RejectReason};
use plexus_gossipsub::{MessageId, TopicHash};

const MAINNET_LOAD: NetworkLoad = NetworkLoad {
    active_validators: 1_000_000,
    current_slot: 10_000_000,
};

fn mainnet() -> ScoreModel {
    ScoreModel::new(&Network::Mainnet.config(), 8)
}

fn scored_kinds() -> Vec<GossipKind> {
    vec![
        GossipKind::BeaconBlock,
        GossipKind::BeaconAggregateAndProof,
        GossipKind::BeaconAttestation(0),
        GossipKind::VoluntaryExit,
        GossipKind::ProposerSlashing,
        GossipKind::AttesterSlashing,
    ]
}

#[test]
fn every_parameter_set_is_valid_for_every_network_and_load() {
    thresholds().validate().unwrap();
    for net in [
        Network::Mainnet,
        Network::Sepolia,
        Network::Hoodi,
        Network::Minimal,
    ] {
        let m = ScoreModel::new(&net.config(), 8);
        m.peer_params().validate().unwrap();
        for active in [1, 64, 1_000, 100_000, 2_000_000] {
            for slot in [0, 1, 100, 1_000_000] {
                for kind in scored_kinds() {
                    let load = NetworkLoad {
                        active_validators: active,
                        current_slot: slot,
                    };
                    let p = m.topic_params(kind, load).expect("scored");
                    p.validate()
                        .unwrap_or_else(|e| panic!("{net:?} {kind:?} {active} {slot}: {e}"));
                }
            }
        }
    }
}

#[test]
fn the_topic_weights_sum_to_the_shared_maximum() {
    let m = mainnet();
    // 50 points per unit of weight; weights 0.5 + 0.5 + 1 + 3 × 0.05.
    assert!((m.max_positive_score() - 107.5).abs() < 1e-9);
    let p = m.peer_params();
    assert!((p.topic_score_cap - 53.75).abs() < 1e-9);
    assert_eq!(p.ip_colocation_factor_weight, -p.topic_score_cap);
    assert_eq!(p.decay_interval, Duration::from_secs(12));
    assert_eq!(p.retain_score, Duration::from_secs(12 * 32 * 100));
    let subnet = m
        .topic_params(GossipKind::BeaconAttestation(9), MAINNET_LOAD)
        .unwrap();
    assert!((subnet.topic_weight - 1.0 / 64.0).abs() < 1e-12);
}

#[test]
fn unscored_topics_have_no_parameters() {
    let m = mainnet();
    for kind in [
        GossipKind::SyncCommittee(0),
        GossipKind::SyncCommitteeContributionAndProof,
        GossipKind::BlobSidecar(0),
        GossipKind::DataColumnSidecar(3),
        GossipKind::LightClientFinalityUpdate,
        GossipKind::BlsToExecutionChange,
        GossipKind::ExecutionPayloadBid,
    ] {
        assert!(m.topic_params(kind, MAINNET_LOAD).is_none(), "{kind:?}");
    }
}

#[test]
fn committees_and_aggregators_follow_the_validator_count() {
    let m = mainnet();
    // 1M validators: 64 committees per slot (the cap) of ~488, each with ~16 aggregators.
    let (per_slot, aggregators) = m.committees_and_aggregators(1_000_000);
    assert_eq!(per_slot, 64);
    assert!(
        (64.0 * 16.0..64.0 * 17.0).contains(&aggregators),
        "{aggregators}"
    );
    // 20,000 validators: 20000/32/128 = 4 committees per slot of ~156, ~16 aggregators each.
    let (per_slot, aggregators) = m.committees_and_aggregators(20_000);
    assert_eq!(per_slot, 4);
    assert!((60.0..70.0).contains(&aggregators), "{aggregators}");
    // A tiny devnet: one committee, every member an aggregator.
    let (per_slot, aggregators) = m.committees_and_aggregators(64);
    assert_eq!(per_slot, 1);
    assert!((aggregators - 2.0).abs() < 1e-9, "{aggregators}");
}

#[test]
fn mesh_delivery_scoring_waits_until_counters_can_have_converged() {
    let m = mainnet();
    let early = NetworkLoad {
        active_validators: 1_000_000,
        current_slot: 5,
    };
    let block = m.topic_params(GossipKind::BeaconBlock, early).unwrap();
    assert_eq!(block.mesh_message_deliveries_weight, 0.0);
    assert_eq!(block.mesh_failure_penalty_weight, 0.0);
    let block = m
        .topic_params(GossipKind::BeaconBlock, MAINNET_LOAD)
        .unwrap();
    assert!(block.mesh_message_deliveries_weight < 0.0);
    assert!(block.mesh_message_deliveries_threshold > 0.0);
    assert!(block.mesh_message_deliveries_cap >= block.mesh_message_deliveries_threshold);
    assert_eq!(block.mesh_message_deliveries_window, Duration::from_secs(2));
    // Exits and slashings have no steady rate: never P₃.
    let exits = m
        .topic_params(GossipKind::VoluntaryExit, MAINNET_LOAD)
        .unwrap();
    assert_eq!(exits.mesh_message_deliveries_weight, 0.0);
}

fn peer(_: u8) -> PeerId {
    PeerId::random()
}

/// A PeerScore with the model's parameters for the block topic.
fn block_scorer(topic: &TopicHash) -> (PeerScore, ScoreModel) {
    let m = mainnet();
    let mut params = m.peer_params();
    params.topics.insert(
        topic.clone(),
        m.topic_params(GossipKind::BeaconBlock, MAINNET_LOAD)
            .unwrap(),
    );
    (PeerScore::new(params), m)
}

#[test]
fn a_peer_that_delivers_every_block_first_earns_the_first_delivery_maximum() {
    let topic: TopicHash = "/eth2/cc2c5cdb/beacon_block/ssz_snappy".into();
    let (mut s, m) = block_scorer(&topic);
    let p = peer(1);
    let t0 = Instant::now();
    s.add_peer(p, None, t0);
    // One block per slot for a day, each delivered first by `p` (twice its fair share of
    // 1/D is what the cap is set for; every block is 8×, so the cap is reached).
    let slot = Duration::from_secs(12);
    let mut now = t0;
    for n in 0..7200u32 {
        now += slot;
        let id = MessageId::new(n.to_be_bytes().to_vec());
        s.validate_message(&p, &id, &topic, now);
        s.deliver_message(&p, &id, &topic, now);
        s.refresh(now);
    }
    let score = s.score(&p, now);
    // Not in the mesh: P₁ = 0, so the score is the block topic's P₂ maximum: 40 × 0.5.
    assert!((score - 40.0 * 0.5).abs() < 0.5, "score {score}");
    assert!(score < m.peer_params().topic_score_cap);
}

#[test]
fn one_invalid_block_costs_the_whole_positive_score() {
    let topic: TopicHash = "/eth2/cc2c5cdb/beacon_block/ssz_snappy".into();
    let (mut s, m) = block_scorer(&topic);
    let p = peer(2);
    let now = Instant::now();
    s.add_peer(p, None, now);
    let id = MessageId::new(vec![1; 20]);
    s.validate_message(&p, &id, &topic, now);
    s.reject_message(&p, &id, &topic, RejectReason::Invalid, now);
    let score = s.score(&p, now);
    assert!(
        (score + m.max_positive_score()).abs() < 1e-6,
        "score {score}"
    );
    assert!(score < 0.0, "pruned from meshes");
    assert!(
        score > thresholds().gossip_threshold,
        "but still gossiped with"
    );
}

#[test]
fn sustained_misbehaviour_reaches_the_gossip_threshold() {
    let (mut s, m) = block_scorer(&"/eth2/cc2c5cdb/beacon_block/ssz_snappy".into());
    let p = peer(3);
    let t0 = Instant::now();
    s.add_peer(p, None, t0);
    let interval = m.peer_params().decay_interval;
    let mut now = t0;
    let mut crossed_at = None;
    // Ten penalties per epoch (32 decay intervals of one slot), for 20 epochs.
    for tick in 0..(32 * 20) {
        now += interval;
        s.refresh(now);
        if tick % 32 < 10 {
            s.add_penalty(&p, 1);
        }
        if crossed_at.is_none() && s.score(&p, now) <= thresholds().gossip_threshold {
            crossed_at = Some(tick / 32);
        }
    }
    let epoch = crossed_at.expect("sustained misbehaviour reaches the gossip threshold");
    assert!((3..20).contains(&epoch), "crossed in epoch {epoch}");
    // A peer with one penalty per epoch stays far above it.
    let q = peer(4);
    s.add_peer(q, None, now);
    for tick in 0..(32 * 20) {
        now += interval;
        s.refresh(now);
        if tick % 32 == 0 {
            s.add_penalty(&q, 1);
        }
    }
    assert!(s.score(&q, now) > thresholds().gossip_threshold / 10.0);
}
