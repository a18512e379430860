//! Peer-scoring parameters for the Ethereum topics, derived from the chain config and the
//! network's load.
//!
//! The consensus spec leaves scoring "under investigation". The clients converged on one
//! model, first published with Lighthouse and adopted by Prysm and Lodestar; this module
//! derives the same quantities from first principles:
//!
//! - a peer earns at most [`MAX_IN_MESH_SCORE`] (P₁) plus [`MAX_FIRST_DELIVERIES_SCORE`]
//!   (P₂) per unit of topic weight; the weights of the scored topics (block 0.5, aggregate
//!   0.5, the attestation subnets 1 in total, exits and slashings 0.05 each) give
//!   [`ScoreModel::max_positive_score`], and the topic cap is half of it;
//! - P₂'s cap is where the decayed counter converges for a peer that delivers first twice
//!   its fair share (`2 × rate / D`) of the topic's expected messages per decay interval;
//! - P₃ (mesh deliveries) expects a fiftieth of the topic's rate from each mesh peer; it is
//!   off for topics with no steady rate (exits, slashings) and during the first slots of a
//!   chain, when the counters cannot have converged;
//! - one invalid message (P₄) costs the whole maximum positive score;
//! - the behaviour penalty reaches the gossip threshold when a peer misbehaves about ten
//!   times per epoch for a sustained period;
//! - topics without parameters (sync committee, blobs, columns, light client, Gloas) add
//!   nothing and cost nothing, as in the other clients.

use std::time::Duration;

use plexus_eth::{ChainConfig, GossipKind};
use plexus_gossipsub::score::{PeerScoreParams, PeerScoreThresholds, TopicScoreParams};

/// P₁ at its cap, per unit of topic weight.
pub const MAX_IN_MESH_SCORE: f64 = 10.0;
/// P₂ at its cap, per unit of topic weight.
pub const MAX_FIRST_DELIVERIES_SCORE: f64 = 40.0;
/// Weight of `beacon_block`.
pub const BEACON_BLOCK_WEIGHT: f64 = 0.5;
/// Weight of `beacon_aggregate_and_proof`.
pub const AGGREGATE_WEIGHT: f64 = 0.5;
/// Weight of `voluntary_exit`.
pub const VOLUNTARY_EXIT_WEIGHT: f64 = 0.05;
/// Weight of `proposer_slashing`.
pub const PROPOSER_SLASHING_WEIGHT: f64 = 0.05;
/// Weight of `attester_slashing`.
pub const ATTESTER_SLASHING_WEIGHT: f64 = 0.05;
/// `TARGET_AGGREGATORS_PER_COMMITTEE` (phase 0 validator constant).
pub const TARGET_AGGREGATORS_PER_COMMITTEE: u64 = 16;
/// How late a mesh peer's copy may be and still count for P₃.
pub const MESH_DELIVERIES_WINDOW: Duration = Duration::from_secs(2);

/// The thresholds every Ethereum client uses: gossip −4000, publish −8000, graylist
/// −16000, accept PX 100, opportunistic graft 5.
pub fn thresholds() -> PeerScoreThresholds {
    PeerScoreThresholds {
        gossip_threshold: -4000.0,
        publish_threshold: -8000.0,
        graylist_threshold: -16000.0,
        accept_px_threshold: 100.0,
        opportunistic_graft_threshold: 5.0,
    }
}

/// What the expected message rates depend on, refreshed by the client each epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkLoad {
    /// Active validators at the head.
    pub active_validators: u64,
    /// The current slot (P₃ stays off until its counters can have converged).
    pub current_slot: u64,
}

/// The chain constants the parameters are derived from.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoreModel {
    slot: Duration,
    slots_per_epoch: u64,
    mesh_n: usize,
    subnets: u64,
    max_committees_per_slot: u64,
    target_committee_size: u64,
    decay_interval: Duration,
    decay_to_zero: f64,
}

/// How a topic's P₃ is tuned: over how many slots its counter decays, how far above the
/// threshold it may climb, and how long after a GRAFT it starts to count.
#[derive(Debug, Clone, Copy)]
struct MeshTuning {
    decay_slots: u64,
    cap_factor: f64,
    activation: Duration,
}

impl ScoreModel {
    /// The model for `config` with mesh degree `mesh_n` (D).
    pub fn new(config: &ChainConfig, mesh_n: usize) -> ScoreModel {
        let slot = Duration::from_millis(config.slot_duration_ms.max(1));
        ScoreModel {
            slot,
            slots_per_epoch: config.preset.slots_per_epoch(),
            mesh_n: mesh_n.max(1),
            subnets: config.attestation_subnet_count.max(1),
            max_committees_per_slot: config.preset.max_committees_per_slot(),
            target_committee_size: config.preset.target_committee_size(),
            decay_interval: slot.max(Duration::from_secs(1)),
            decay_to_zero: 0.01,
        }
    }

    fn epoch(&self) -> Duration {
        self.slot * self.slots_per_epoch as u32
    }

    /// The score a peer can earn at most across the scored topics.
    pub fn max_positive_score(&self) -> f64 {
        (MAX_IN_MESH_SCORE + MAX_FIRST_DELIVERIES_SCORE)
            * (BEACON_BLOCK_WEIGHT
                + AGGREGATE_WEIGHT
                + 1.0 // the attestation subnets, 1/subnets each
                + VOLUNTARY_EXIT_WEIGHT
                + PROPOSER_SLASHING_WEIGHT
                + ATTESTER_SLASHING_WEIGHT)
    }

    /// The decay factor per decay interval that takes a counter to `decay_to_zero` of its
    /// value in `time`.
    pub fn decay_over(&self, time: Duration) -> f64 {
        let ticks = (time.as_secs_f64() / self.decay_interval.as_secs_f64()).max(1.0);
        self.decay_to_zero.powf(1.0 / ticks)
    }

    /// The topic-independent parameters (no topics yet: add them with
    /// [`ScoreModel::topic_params`]).
    pub fn peer_params(&self) -> PeerScoreParams {
        let mut p = PeerScoreParams {
            decay_interval: self.decay_interval,
            decay_to_zero: self.decay_to_zero,
            retain_score: self.epoch() * 100,
            app_specific_weight: 1.0,
            ip_colocation_factor_threshold: 8.0,
            behaviour_penalty_threshold: 6.0,
            behaviour_penalty_decay: self.decay_over(self.epoch() * 10),
            ..PeerScoreParams::default()
        };
        // Ten penalties per epoch, sustained, converge to this counter; its excess over the
        // threshold, squared and weighted, is the gossip threshold.
        let per_interval = 10.0 / self.slots_per_epoch as f64 * self.decay_interval.as_secs_f64()
            / self.slot.as_secs_f64();
        let converged = per_interval / (1.0 - p.behaviour_penalty_decay);
        let excess = (converged - p.behaviour_penalty_threshold).max(1.0);
        p.behaviour_penalty_weight = thresholds().gossip_threshold / (excess * excess);
        p.topic_score_cap = self.max_positive_score() / 2.0;
        p.ip_colocation_factor_weight = -p.topic_score_cap;
        p
    }

    /// Committees per slot and aggregators per slot for `active` validators.
    pub fn committees_and_aggregators(&self, active: u64) -> (u64, f64) {
        let spe = self.slots_per_epoch;
        let per_slot = (active / spe / self.target_committee_size)
            .clamp(1, self.max_committees_per_slot.max(1));
        let committees = per_slot * spe;
        let small = active / committees;
        let large = active - small * committees; // committees one larger
        let modulo = |size: u64| (size / TARGET_AGGREGATORS_PER_COMMITTEE).max(1) as f64;
        // Expected aggregators: each member aggregates with probability 1/modulo.
        let aggregators = ((committees - large) * small) as f64 / modulo(small)
            + (large * (small + 1)) as f64 / modulo(small + 1);
        (per_slot, aggregators / spe as f64)
    }

    /// The parameters of a topic of `kind` under `load`; `None` for topics that are not
    /// scored.
    pub fn topic_params(&self, kind: GossipKind, load: NetworkLoad) -> Option<TopicScoreParams> {
        let spe = self.slots_per_epoch;
        let epoch = self.epoch();
        let active = load.active_validators.max(1);
        match kind {
            GossipKind::BeaconBlock => Some(self.build(
                BEACON_BLOCK_WEIGHT,
                1.0,
                epoch * 20,
                Some(MeshTuning {
                    decay_slots: spe * 5,
                    cap_factor: 3.0,
                    activation: epoch,
                }),
                load,
            )),
            GossipKind::BeaconAggregateAndProof => {
                let (_, aggregators) = self.committees_and_aggregators(active);
                Some(self.build(
                    AGGREGATE_WEIGHT,
                    aggregators,
                    epoch,
                    Some(MeshTuning {
                        decay_slots: spe * 2,
                        cap_factor: 4.0,
                        activation: epoch,
                    }),
                    load,
                ))
            }
            GossipKind::BeaconAttestation(_) => {
                let (per_slot, _) = self.committees_and_aggregators(active);
                // With many committees each subnet sees several bursts per epoch.
                let bursty = per_slot >= 2 * self.subnets / spe;
                let rate = active as f64 / self.subnets as f64 / spe as f64;
                Some(self.build(
                    1.0 / self.subnets as f64,
                    rate,
                    epoch * if bursty { 1 } else { 4 },
                    Some(MeshTuning {
                        decay_slots: spe * if bursty { 4 } else { 16 },
                        cap_factor: 16.0,
                        activation: if bursty {
                            self.slot * (spe as u32 / 2 + 1)
                        } else {
                            epoch * 3
                        },
                    }),
                    load,
                ))
            }
            GossipKind::VoluntaryExit => Some(self.build(
                VOLUNTARY_EXIT_WEIGHT,
                4.0 / spe as f64,
                epoch * 100,
                None,
                load,
            )),
            GossipKind::ProposerSlashing => Some(self.build(
                PROPOSER_SLASHING_WEIGHT,
                1.0 / 5.0 / spe as f64,
                epoch * 100,
                None,
                load,
            )),
            GossipKind::AttesterSlashing => Some(self.build(
                ATTESTER_SLASHING_WEIGHT,
                1.0 / 5.0 / spe as f64,
                epoch * 100,
                None,
                load,
            )),
            _ => None,
        }
    }

    fn build(
        &self,
        weight: f64,
        rate: f64,
        first_decay_time: Duration,
        mesh: Option<MeshTuning>,
        load: NetworkLoad,
    ) -> TopicScoreParams {
        let mut t = TopicScoreParams {
            topic_weight: weight,
            time_in_mesh_quantum: self.slot,
            ..TopicScoreParams::default()
        };
        // P₁: the cap is reached after an hour in the mesh.
        t.time_in_mesh_cap = 3600.0 / self.slot.as_secs_f64();
        t.time_in_mesh_weight = MAX_IN_MESH_SCORE / t.time_in_mesh_cap;
        // P₂.
        t.first_message_deliveries_decay = self.decay_over(first_decay_time);
        t.first_message_deliveries_cap = converge(
            t.first_message_deliveries_decay,
            2.0 * rate / self.mesh_n as f64,
        );
        t.first_message_deliveries_weight =
            MAX_FIRST_DELIVERIES_SCORE / t.first_message_deliveries_cap.max(f64::MIN_POSITIVE);
        // P₃ and P₃b.
        match mesh {
            Some(m) if m.decay_slots < load.current_slot => {
                let decay = self.decay_over(self.slot * m.decay_slots as u32);
                t.mesh_message_deliveries_decay = decay;
                t.mesh_message_deliveries_threshold = converge(decay, rate / 50.0) * decay;
                t.mesh_message_deliveries_cap =
                    (m.cap_factor * t.mesh_message_deliveries_threshold).max(2.0);
                t.mesh_message_deliveries_activation = m.activation;
                t.mesh_message_deliveries_window = MESH_DELIVERIES_WINDOW;
                t.mesh_message_deliveries_weight = -weight;
                t.mesh_failure_penalty_weight = -weight;
                t.mesh_failure_penalty_decay = decay;
            }
            _ => {
                // Off: weights 0 (the other fields keep valid values).
                t.mesh_message_deliveries_weight = 0.0;
                t.mesh_failure_penalty_weight = 0.0;
                t.mesh_message_deliveries_threshold = 0.0;
            }
        }
        // P₄: one invalid message costs the whole positive score.
        t.invalid_message_deliveries_weight = -self.max_positive_score() / weight;
        t.invalid_message_deliveries_decay = self.decay_over(self.epoch() * 50);
        t
    }
}

/// Where a counter that gains `rate` per interval and decays by `decay` converges.
fn converge(decay: f64, rate: f64) -> f64 {
    rate / (1.0 - decay)
}
