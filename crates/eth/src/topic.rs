//! Gossip topics: names from phase 0 through Gloas, the topic string
//! `/eth2/<fork digest>/<name>/ssz_snappy`, which topics exist at which fork, and the largest
//! uncompressed payload each may carry.

use std::fmt;

use crate::config::{ChainConfig, SYNC_COMMITTEE_SUBNET_COUNT};
use crate::fork::{DigestEntry, ForkSchedule};
use crate::types::{Fork, ForkDigest};

/// The only gossip encoding: SSZ, then snappy block compression.
pub const ENCODING: &str = "ssz_snappy";
/// Longest topic string accepted by [`GossipTopic::parse`]; the longest real one is 63 bytes
/// (`/eth2/xxxxxxxx/sync_committee_contribution_and_proof/ssz_snappy`).
pub const MAX_TOPIC_LEN: usize = 128;

/// What a gossip topic carries. Subnet topics hold their subnet id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GossipKind {
    /// `beacon_block`: `SignedBeaconBlock` of the fork.
    BeaconBlock,
    /// `beacon_aggregate_and_proof`: `SignedAggregateAndProof`.
    BeaconAggregateAndProof,
    /// `beacon_attestation_{subnet}`: `Attestation`, from Electra `SingleAttestation`.
    BeaconAttestation(u64),
    /// `voluntary_exit`: `SignedVoluntaryExit`.
    VoluntaryExit,
    /// `proposer_slashing`: `ProposerSlashing`.
    ProposerSlashing,
    /// `attester_slashing`: `AttesterSlashing`.
    AttesterSlashing,
    /// `sync_committee_contribution_and_proof` (Altair): `SignedContributionAndProof`.
    SyncCommitteeContributionAndProof,
    /// `sync_committee_{subnet}` (Altair): `SyncCommitteeMessage`.
    SyncCommittee(u64),
    /// `light_client_finality_update` (Altair light client): `LightClientFinalityUpdate`.
    LightClientFinalityUpdate,
    /// `light_client_optimistic_update` (Altair light client): `LightClientOptimisticUpdate`.
    LightClientOptimisticUpdate,
    /// `bls_to_execution_change` (Capella): `SignedBLSToExecutionChange`.
    BlsToExecutionChange,
    /// `blob_sidecar_{subnet}` (Deneb, Electra; deprecated in Fulu): `BlobSidecar`.
    BlobSidecar(u64),
    /// `data_column_sidecar_{subnet}` (Fulu): `DataColumnSidecar`.
    DataColumnSidecar(u64),
    /// `execution_payload_bid` (Gloas): `SignedExecutionPayloadBid`.
    ExecutionPayloadBid,
    /// `execution_payload` (Gloas): `SignedExecutionPayloadEnvelope`.
    ExecutionPayload,
    /// `payload_attestation_message` (Gloas): `PayloadAttestationMessage`.
    PayloadAttestationMessage,
    /// `proposer_preferences` (Gloas): `SignedProposerPreferences`.
    ProposerPreferences,
}

/// Names without a subnet, with their kinds.
const PLAIN: [(&str, GossipKind); 13] = [
    ("beacon_block", GossipKind::BeaconBlock),
    (
        "beacon_aggregate_and_proof",
        GossipKind::BeaconAggregateAndProof,
    ),
    ("voluntary_exit", GossipKind::VoluntaryExit),
    ("proposer_slashing", GossipKind::ProposerSlashing),
    ("attester_slashing", GossipKind::AttesterSlashing),
    (
        "sync_committee_contribution_and_proof",
        GossipKind::SyncCommitteeContributionAndProof,
    ),
    (
        "light_client_finality_update",
        GossipKind::LightClientFinalityUpdate,
    ),
    (
        "light_client_optimistic_update",
        GossipKind::LightClientOptimisticUpdate,
    ),
    ("bls_to_execution_change", GossipKind::BlsToExecutionChange),
    ("execution_payload_bid", GossipKind::ExecutionPayloadBid),
    ("execution_payload", GossipKind::ExecutionPayload),
    (
        "payload_attestation_message",
        GossipKind::PayloadAttestationMessage,
    ),
    ("proposer_preferences", GossipKind::ProposerPreferences),
];

/// Subnet name prefixes, with their constructors.
/// Builds a subnet topic kind from its id.
type MakeKind = fn(u64) -> GossipKind;

const SUBNET: [(&str, MakeKind); 4] = [
    ("beacon_attestation_", GossipKind::BeaconAttestation),
    ("sync_committee_", GossipKind::SyncCommittee),
    ("blob_sidecar_", GossipKind::BlobSidecar),
    ("data_column_sidecar_", GossipKind::DataColumnSidecar),
];

impl GossipKind {
    /// Parse a topic name (`beacon_block`, `beacon_attestation_7`, …). Subnet ids are decimal
    /// without leading zeros; whether the subnet exists is [`GossipKind::exists_at`]'s question.
    pub fn from_name(name: &str) -> Option<GossipKind> {
        if let Some((_, kind)) = PLAIN.iter().find(|(n, _)| *n == name) {
            return Some(*kind);
        }
        for (prefix, make) in SUBNET {
            if let Some(id) = name.strip_prefix(prefix) {
                let canonical = !id.is_empty()
                    && id.len() <= 20
                    && id.bytes().all(|b| b.is_ascii_digit())
                    && (id == "0" || !id.starts_with('0'));
                return canonical.then(|| id.parse().ok().map(make)).flatten();
            }
        }
        None
    }

    /// The subnet id of a subnet topic.
    pub fn subnet(self) -> Option<u64> {
        match self {
            GossipKind::BeaconAttestation(s)
            | GossipKind::SyncCommittee(s)
            | GossipKind::BlobSidecar(s)
            | GossipKind::DataColumnSidecar(s) => Some(s),
            _ => None,
        }
    }

    /// The first fork that has this topic.
    pub fn since(self) -> Fork {
        match self {
            GossipKind::BeaconBlock
            | GossipKind::BeaconAggregateAndProof
            | GossipKind::BeaconAttestation(_)
            | GossipKind::VoluntaryExit
            | GossipKind::ProposerSlashing
            | GossipKind::AttesterSlashing => Fork::Phase0,
            GossipKind::SyncCommitteeContributionAndProof
            | GossipKind::SyncCommittee(_)
            | GossipKind::LightClientFinalityUpdate
            | GossipKind::LightClientOptimisticUpdate => Fork::Altair,
            GossipKind::BlsToExecutionChange => Fork::Capella,
            GossipKind::BlobSidecar(_) => Fork::Deneb,
            GossipKind::DataColumnSidecar(_) => Fork::Fulu,
            GossipKind::ExecutionPayloadBid
            | GossipKind::ExecutionPayload
            | GossipKind::PayloadAttestationMessage
            | GossipKind::ProposerPreferences => Fork::Gloas,
        }
    }

    /// Whether the topic exists at `fork` under `config`: introduced at or before it, not yet
    /// removed (`blob_sidecar_*` ends at Fulu), and its subnet below the fork's subnet count.
    pub fn exists_at(self, fork: Fork, config: &ChainConfig) -> bool {
        if fork < self.since() {
            return false;
        }
        match self {
            GossipKind::BeaconAttestation(s) => s < config.attestation_subnet_count,
            GossipKind::SyncCommittee(s) => s < SYNC_COMMITTEE_SUBNET_COUNT,
            GossipKind::BlobSidecar(s) => match fork {
                Fork::Deneb => s < config.blob_sidecar_subnet_count,
                Fork::Electra => s < config.blob_sidecar_subnet_count_electra,
                _ => false,
            },
            GossipKind::DataColumnSidecar(s) => s < config.data_column_sidecar_subnet_count,
            _ => true,
        }
    }

    /// Every topic that exists at `fork` under `config`, subnets included.
    pub fn all_at(fork: Fork, config: &ChainConfig) -> Vec<GossipKind> {
        let mut out: Vec<GossipKind> = PLAIN
            .iter()
            .map(|(_, k)| *k)
            .filter(|k| k.exists_at(fork, config))
            .collect();
        let counts = [
            (
                GossipKind::BeaconAttestation as MakeKind,
                config.attestation_subnet_count,
            ),
            (GossipKind::SyncCommittee, SYNC_COMMITTEE_SUBNET_COUNT),
            (
                GossipKind::BlobSidecar,
                config
                    .blob_sidecar_subnet_count
                    .max(config.blob_sidecar_subnet_count_electra),
            ),
            (
                GossipKind::DataColumnSidecar,
                config.data_column_sidecar_subnet_count,
            ),
        ];
        for (make, count) in counts {
            out.extend((0..count).map(make).filter(|k| k.exists_at(fork, config)));
        }
        out
    }

    /// The largest uncompressed payload this topic may carry at `fork`:
    /// `min(MAX_PAYLOAD_SIZE, the SSZ type's maximum size)` (see [`ssz_max_size`]).
    pub fn max_uncompressed_len(self, fork: Fork, config: &ChainConfig) -> u64 {
        ssz_max_size(self, fork, config)
            .map_or(config.max_payload_size, |m| m.min(config.max_payload_size))
    }
}

impl fmt::Display for GossipKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some((name, _)) = PLAIN.iter().find(|(_, k)| k == self) {
            return f.write_str(name);
        }
        let (prefix, id) = match *self {
            GossipKind::BeaconAttestation(s) => ("beacon_attestation_", s),
            GossipKind::SyncCommittee(s) => ("sync_committee_", s),
            GossipKind::BlobSidecar(s) => ("blob_sidecar_", s),
            GossipKind::DataColumnSidecar(s) => ("data_column_sidecar_", s),
            _ => return Ok(()),
        };
        write!(f, "{prefix}{id}")
    }
}

// Sizes of fixed-size consensus types (bytes), for the bounds below.
const SIGNATURE: u64 = 96;
const ATTESTATION_DATA: u64 = 8 + 8 + 32 + 40 + 40;
const SIGNED_BLOCK_HEADER: u64 = 8 + 8 + 32 + 32 + 32 + SIGNATURE;
const OFFSET: u64 = 4;

/// The largest SSZ encoding of a topic's payload type at `fork`, where it is below
/// `MAX_PAYLOAD_SIZE` and fixed by the type definitions (Gloas states some of them as
/// `MAX_*_SIZE` preset constants; the same formulas give those values). `None` where only
/// `MAX_PAYLOAD_SIZE` bounds the type (blocks, execution payload envelopes, light client
/// updates, whose bound this crate does not derive).
pub fn ssz_max_size(kind: GossipKind, fork: Fork, config: &ChainConfig) -> Option<u64> {
    let p = config.preset;
    let bitlist = |bits: u64| bits / 8 + 1;
    let bitvector = |bits: u64| bits.div_ceil(8);
    let committee_bits = p.max_validators_per_committee();
    Some(match kind {
        GossipKind::BeaconBlock
        | GossipKind::ExecutionPayload
        | GossipKind::LightClientFinalityUpdate
        | GossipKind::LightClientOptimisticUpdate => return None,
        GossipKind::BeaconAggregateAndProof => {
            // SignedAggregateAndProof{message: AggregateAndProof{aggregator_index, aggregate:
            // Attestation, selection_proof}, signature}; Electra's Attestation adds
            // committee_bits and widens aggregation_bits to all committees of the slot.
            let attestation = if fork >= Fork::Electra {
                OFFSET
                    + ATTESTATION_DATA
                    + SIGNATURE
                    + bitvector(p.max_committees_per_slot())
                    + bitlist(committee_bits * p.max_committees_per_slot())
            } else {
                OFFSET + ATTESTATION_DATA + SIGNATURE + bitlist(committee_bits)
            };
            (OFFSET + SIGNATURE) + (8 + OFFSET + SIGNATURE) + attestation
        }
        GossipKind::BeaconAttestation(_) => {
            if fork >= Fork::Electra {
                // SingleAttestation{committee_index, attester_index, data, signature}
                8 + 8 + ATTESTATION_DATA + SIGNATURE
            } else {
                OFFSET + ATTESTATION_DATA + SIGNATURE + bitlist(committee_bits)
            }
        }
        GossipKind::VoluntaryExit => 8 + 8 + SIGNATURE,
        GossipKind::ProposerSlashing => 2 * SIGNED_BLOCK_HEADER,
        GossipKind::AttesterSlashing => {
            // Two IndexedAttestation{attesting_indices: List[u64, N], data, signature}.
            let indices = if fork >= Fork::Electra {
                committee_bits * p.max_committees_per_slot()
            } else {
                committee_bits
            };
            2 * OFFSET + 2 * (OFFSET + ATTESTATION_DATA + SIGNATURE + 8 * indices)
        }
        GossipKind::SyncCommitteeContributionAndProof => {
            // SignedContributionAndProof{ContributionAndProof{aggregator_index,
            // SyncCommitteeContribution{slot, root, subcommittee_index, bits, signature},
            // selection_proof}, signature}
            let bits = bitvector(p.sync_committee_size() / SYNC_COMMITTEE_SUBNET_COUNT);
            8 + (8 + 32 + 8 + bits + SIGNATURE) + SIGNATURE + SIGNATURE
        }
        GossipKind::SyncCommittee(_) => 8 + 32 + 8 + SIGNATURE,
        GossipKind::BlsToExecutionChange => 8 + 48 + 20 + SIGNATURE,
        GossipKind::BlobSidecar(_) => {
            // index, blob (4096 field elements), commitment, proof, header, 17-deep proof
            8 + 4096 * 32 + 48 + 48 + SIGNED_BLOCK_HEADER + 17 * 32
        }
        GossipKind::DataColumnSidecar(_) => {
            let cells = crate::config::MAX_BLOB_COMMITMENTS_PER_BLOCK;
            let cell = 64 * 32;
            if fork >= Fork::Gloas {
                // index, column, kzg_proofs, slot, beacon_block_root
                // (= MAX_DATA_COLUMN_SIDECAR_SIZE, 8,585,272)
                8 + OFFSET + OFFSET + 8 + 32 + cells * (cell + 48)
            } else {
                // index, column, kzg_commitments, kzg_proofs, header, 4-deep proof
                8 + 3 * OFFSET + SIGNED_BLOCK_HEADER + 4 * 32 + cells * (cell + 48 + 48)
            }
        }
        // MAX_SIGNED_EXECUTION_PAYLOAD_BID_SIZE (Gloas preset, both presets).
        GossipKind::ExecutionPayloadBid => 196_932,
        // PayloadAttestationMessage{validator_index, PayloadAttestationData{beacon_block_root,
        // slot, payload_present, blob_data_available}, signature}
        GossipKind::PayloadAttestationMessage => 8 + (32 + 8 + 1 + 1) + SIGNATURE,
        // SignedProposerPreferences{ProposerPreferences{dependent_root, proposal_slot,
        // validator_index, fee_recipient, target_gas_limit}, signature}
        GossipKind::ProposerPreferences => (32 + 8 + 8 + 20 + 8) + SIGNATURE,
    })
}

/// `max_compressed_len(n) = 32 + n + n / 6`: snappy's worst case for `n` input bytes.
pub fn max_compressed_len(n: u64) -> u64 {
    32u64.saturating_add(n).saturating_add(n / 6)
}

/// `max_message_size() = max(max_compressed_len(MAX_PAYLOAD_SIZE) + 1024, 1 MiB)`: the largest
/// gossipsub RPC frame.
pub fn max_message_size(max_payload_size: u64) -> u64 {
    max_compressed_len(max_payload_size)
        .saturating_add(1024)
        .max(1024 * 1024)
}

/// A topic string's parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct GossipTopic {
    /// The fork digest of the message's context epoch.
    pub digest: ForkDigest,
    /// What the topic carries.
    pub kind: GossipKind,
}

/// A topic string is not a known Ethereum gossip topic. Blame: the peer that used it
/// (`PeerMisbehaved`: the spec says to reject messages on unknown topics).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Longer than [`MAX_TOPIC_LEN`].
    #[error("topic is {0} bytes long")]
    TooLong(usize),
    /// Not `/eth2/<8 lowercase hex>/<name>/ssz_snappy`.
    #[error("topic is not /eth2/<digest>/<name>/ssz_snappy")]
    Malformed,
    /// The name is not a known topic name.
    #[error("unknown topic name")]
    UnknownName,
    /// The digest is none of this network's.
    #[error("fork digest {0} is not one of this network's")]
    UnknownDigest(ForkDigest),
    /// The topic does not exist at the digest's fork (too early, removed, or subnet too high).
    #[error("topic {kind} does not exist at {fork}")]
    NotAtFork {
        /// The topic.
        kind: GossipKind,
        /// The digest's fork.
        fork: Fork,
    },
}

impl GossipTopic {
    /// A topic.
    pub fn new(digest: ForkDigest, kind: GossipKind) -> Self {
        GossipTopic { digest, kind }
    }

    /// Parse a topic string (syntax only; [`ForkSchedule::resolve_topic`] also checks the
    /// digest and the fork).
    pub fn parse(topic: &str) -> Result<GossipTopic, TopicError> {
        if topic.len() > MAX_TOPIC_LEN {
            return Err(TopicError::TooLong(topic.len()));
        }
        let rest = topic.strip_prefix("/eth2/").ok_or(TopicError::Malformed)?;
        let (digest, rest) = rest.split_once('/').ok_or(TopicError::Malformed)?;
        let (name, encoding) = rest.split_once('/').ok_or(TopicError::Malformed)?;
        if encoding != ENCODING {
            return Err(TopicError::Malformed);
        }
        let digest = ForkDigest::from_topic_hex(digest).ok_or(TopicError::Malformed)?;
        let kind = GossipKind::from_name(name).ok_or(TopicError::UnknownName)?;
        Ok(GossipTopic { digest, kind })
    }
}

impl fmt::Display for GossipTopic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/eth2/{}/{}/{ENCODING}", self.digest, self.kind)
    }
}

/// A topic checked against a network: its parts, its fork's schedule entry, and its payload
/// bound.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedTopic {
    /// The parsed topic.
    pub topic: GossipTopic,
    /// The schedule entry of its digest (fork, version, blob parameters).
    pub entry: DigestEntry,
    /// [`GossipKind::max_uncompressed_len`] at that fork.
    pub max_uncompressed_len: u64,
}

impl ForkSchedule {
    /// Parse a topic string and check it against this network: a known digest, a topic that
    /// exists at that digest's fork.
    pub fn resolve_topic(&self, topic: &str) -> Result<ResolvedTopic, TopicError> {
        let topic = GossipTopic::parse(topic)?;
        let entry = *self
            .lookup(topic.digest)
            .ok_or(TopicError::UnknownDigest(topic.digest))?;
        if !topic.kind.exists_at(entry.fork, self.config()) {
            return Err(TopicError::NotAtFork {
                kind: topic.kind,
                fork: entry.fork,
            });
        }
        Ok(ResolvedTopic {
            topic,
            entry,
            max_uncompressed_len: topic.kind.max_uncompressed_len(entry.fork, self.config()),
        })
    }

    /// Every topic of the digest in force at `epoch` (subscribe to these; to the next
    /// digest's ahead of a fork, see [`ForkSchedule::next_entry`]).
    pub fn topics_at(&self, epoch: u64) -> Vec<GossipTopic> {
        let entry = self.entry_at(epoch);
        GossipKind::all_at(entry.fork, self.config())
            .into_iter()
            .map(|kind| GossipTopic::new(entry.digest, kind))
            .collect()
    }
}
