//! Ethereum consensus networking types and rules, without I/O.
//!
//! - **Chain config and fork digests** ([`ChainConfig`], [`ForkSchedule`]): the consensus-spec
//!   config format read by a small strict parser, built-in mainnet, sepolia, hoodi and minimal
//!   configs ([`Network`]), `compute_fork_digest` with Fulu's blob-parameter-only digests, the
//!   current and next digest at an epoch, a digest → fork lookup covering every scheduled
//!   digest, and the ENR `eth2` value ([`EnrForkId`]).
//! - **Gossip topics** ([`GossipTopic`], [`GossipKind`]): every topic from phase 0 through
//!   Gloas, parsing, which topics exist at which fork, and each topic's largest payload.
//! - **Gossip encoding** ([`decode_gossip`], [`encode_gossip`], [`message_id`]): snappy block
//!   format with the declared length checked before decompressing, and the phase 0 and Altair
//!   message ids; [`ForkSchedule::message_id`] is a ready message-id function for gossipsub.
//! - **Req/Resp SSZ containers** ([`StatusV2`], [`MetaDataV3`], the requests, …): derived with
//!   `ethereum_ssz`, with encoded-length bounds ([`SszBounds`]) and checks against the config's
//!   request limits ([`RequestLimits`]).
//! - **PeerDAS custody** ([`node_id`], [`custody_groups`], [`custody_columns`]): a peer's discv5
//!   node id from its secp256k1 key and the data columns it custodies (Fulu `get_custody_groups`,
//!   `compute_columns_for_custody_group`).
//!
//! What is to blame for each error is stated on its type: configs are local input; topics,
//! gossip payloads and requests come from a peer.
#![forbid(unsafe_code)]

mod config;
mod custody;
mod fork;
mod gossip;
mod reqresp;
mod topic;
mod types;
mod yaml;

pub use config::{
    BlobParameters, ChainConfig, ConfigError, DEFAULT_MAX_PAYLOAD_SIZE, ForkParams,
    MAX_BLOB_COMMITMENTS_PER_BLOCK, MAX_CONCURRENT_REQUESTS, MAX_MAX_PAYLOAD_SIZE,
    MAX_REQUEST_LIGHT_CLIENT_UPDATES, NUMBER_OF_COLUMNS, Network, Preset,
    SYNC_COMMITTEE_SUBNET_COUNT,
};
pub use custody::{
    NUMBER_OF_CUSTODY_GROUPS, columns_for_custody_group, custody_columns, custody_groups, node_id,
    node_id_of_peer, peer_custody_columns,
};
pub use fork::{
    DigestEntry, EnrForkId, ForkSchedule, compute_fork_data_root, compute_fork_digest,
    pre_genesis_digest,
};
pub use gossip::{
    GossipError, GossipMessage, GossipMessageError, MESSAGE_DOMAIN_INVALID_SNAPPY,
    MESSAGE_DOMAIN_VALID_SNAPPY, MessageId, declared_len, decode_gossip, decode_gossip_message,
    encode_gossip, message_id, message_id_with_limit,
};
pub use reqresp::{
    BeaconBlocksByHeadRequest, BeaconBlocksByRangeRequest, BeaconBlocksByRootRequest,
    BlobIdentifier, BlobSidecarsByRangeRequest, BlobSidecarsByRootRequest, DataColumnIndices,
    DataColumnSidecarsByRangeRequest, DataColumnSidecarsByRootRequest, DataColumnsByRootIdentifier,
    ErrorMessage, ExecutionPayloadEnvelopesByRangeRequest, ExecutionPayloadEnvelopesByRootRequest,
    Goodbye, GoodbyeReason, LightClientBootstrapRequest, LightClientUpdatesByRangeRequest,
    MetaDataV1, MetaDataV2, MetaDataV3, Ping, RequestError, RequestLimits, SszBounds, SszError,
    StatusV1, StatusV2, decode_ssz, encode_ssz,
};
pub use topic::{
    ENCODING, GossipKind, GossipTopic, MAX_TOPIC_LEN, ResolvedTopic, TopicError,
    max_compressed_len, max_message_size, ssz_max_size,
};
pub use types::{
    Epoch, FAR_FUTURE_EPOCH, Fork, ForkDigest, ParseDigestError, Root, Slot, Version,
    signed_block_slot_and_proposer,
};
pub use yaml::MAX_CONFIG_LEN;

/// The SSZ crates these types are built on, re-exported so users need no pins of their own.
pub use {ssz, ssz_types};
