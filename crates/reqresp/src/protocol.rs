//! The protocol table: every Req/Resp protocol id from phase 0 through Gloas, its request and
//! response types, whether its success chunks carry context bytes, and the SSZ length bounds of
//! its request and of its response chunks at each fork.

use std::fmt;

use plexus_eth::{
    BeaconBlocksByHeadRequest, BeaconBlocksByRangeRequest, BeaconBlocksByRootRequest,
    BlobSidecarsByRangeRequest, BlobSidecarsByRootRequest, ChainConfig,
    DataColumnSidecarsByRangeRequest, DataColumnSidecarsByRootRequest, ErrorMessage,
    ExecutionPayloadEnvelopesByRangeRequest, ExecutionPayloadEnvelopesByRootRequest, Fork, Goodbye,
    LightClientBootstrapRequest, LightClientUpdatesByRangeRequest, MetaDataV1, MetaDataV2,
    MetaDataV3, Ping, SszBounds, StatusV1, StatusV2,
};

use crate::bounds;

/// The prefix of every Req/Resp protocol id.
pub const PROTOCOL_PREFIX: &str = "/eth2/beacon_chain/req";
/// The only encoding.
pub const ENCODING: &str = "ssz_snappy";
/// Length of the `ForkDigest` context bytes.
pub const CONTEXT_BYTES_LEN: usize = 4;

/// A Req/Resp protocol: one message name at one schema version, `ssz_snappy` encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Protocol {
    /// `status/1` (phase 0): Status v1 both ways, one chunk.
    StatusV1,
    /// `status/2` (Fulu): Status v2 both ways, one chunk.
    StatusV2,
    /// `goodbye/1`: a reason code; clients close without answering (see docs/reqresp.md).
    GoodbyeV1,
    /// `ping/1`: MetaData sequence numbers both ways, one chunk.
    PingV1,
    /// `metadata/1` (phase 0): no request body, MetaData v1.
    MetaDataV1,
    /// `metadata/2` (Altair): no request body, MetaData v2.
    MetaDataV2,
    /// `metadata/3` (Fulu): no request body, MetaData v3.
    MetaDataV3,
    /// `beacon_blocks_by_range/1` (phase 0, deprecated): phase 0 blocks, no context bytes.
    BeaconBlocksByRangeV1,
    /// `beacon_blocks_by_range/2` (Altair): blocks of any fork, with context bytes.
    BeaconBlocksByRangeV2,
    /// `beacon_blocks_by_root/1` (phase 0, deprecated): phase 0 blocks, no context bytes.
    BeaconBlocksByRootV1,
    /// `beacon_blocks_by_root/2` (Altair): blocks of any fork, with context bytes.
    BeaconBlocksByRootV2,
    /// `blob_sidecars_by_range/1` (Deneb; deprecated after Fulu's retention window).
    BlobSidecarsByRangeV1,
    /// `blob_sidecars_by_root/1` (Deneb; idem).
    BlobSidecarsByRootV1,
    /// `data_column_sidecars_by_range/1` (Fulu).
    DataColumnSidecarsByRangeV1,
    /// `data_column_sidecars_by_root/1` (Fulu).
    DataColumnSidecarsByRootV1,
    /// `beacon_blocks_by_head/1` (Fulu): the ancestry of a root, newest first.
    BeaconBlocksByHeadV1,
    /// `light_client_bootstrap/1` (Altair).
    LightClientBootstrapV1,
    /// `light_client_updates_by_range/1` (Altair).
    LightClientUpdatesByRangeV1,
    /// `light_client_finality_update/1` (Altair): no request body.
    LightClientFinalityUpdateV1,
    /// `light_client_optimistic_update/1` (Altair): no request body.
    LightClientOptimisticUpdateV1,
    /// `execution_payload_envelopes_by_range/1` (Gloas).
    ExecutionPayloadEnvelopesByRangeV1,
    /// `execution_payload_envelopes_by_root/1` (Gloas).
    ExecutionPayloadEnvelopesByRootV1,
}

/// What a success chunk of a protocol carries, fork by fork.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseKind {
    /// `StatusV1` / `StatusV2`.
    Status,
    /// A bare `Uint64` (Ping; Goodbye is never answered by clients, but decodes as this).
    Uint64,
    /// `MetaData` of the protocol's version.
    MetaData,
    /// `SignedBeaconBlock` of the chunk's fork (phase 0's on the v1 protocols).
    SignedBeaconBlock,
    /// `BlobSidecar` (Deneb, Electra).
    BlobSidecar,
    /// `DataColumnSidecar` (Fulu's; Gloas's from Gloas).
    DataColumnSidecar,
    /// `LightClientBootstrap` of the chunk's fork.
    LightClientBootstrap,
    /// `LightClientUpdate` of the chunk's fork.
    LightClientUpdate,
    /// `LightClientFinalityUpdate` of the chunk's fork.
    LightClientFinalityUpdate,
    /// `LightClientOptimisticUpdate` of the chunk's fork.
    LightClientOptimisticUpdate,
    /// `SignedExecutionPayloadEnvelope` (Gloas).
    SignedExecutionPayloadEnvelope,
}

/// Where the `ForkDigest` context epoch of a success chunk comes from (the spec's rule; the
/// responder passes the object's slot, [`crate::ForkSchedule`]-style lookup gives the digest).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ContextSource {
    /// `signed_beacon_block.message.slot`.
    BlockSlot,
    /// `signed_block_header.message.slot` of a blob or data column sidecar (Gloas column
    /// sidecars: their `slot` field).
    SidecarSlot,
    /// `header.beacon.slot` of a light client bootstrap.
    BootstrapHeaderSlot,
    /// `attested_header.beacon.slot` of a light client update (not `signature_slot`).
    AttestedHeaderSlot,
    /// The slot of the beacon block an execution payload envelope refers to
    /// (`message.beacon_block_root`).
    EnvelopeBlockSlot,
}

impl Protocol {
    /// Every protocol, oldest first.
    pub const ALL: [Protocol; 22] = [
        Protocol::StatusV1,
        Protocol::StatusV2,
        Protocol::GoodbyeV1,
        Protocol::PingV1,
        Protocol::MetaDataV1,
        Protocol::MetaDataV2,
        Protocol::MetaDataV3,
        Protocol::BeaconBlocksByRangeV1,
        Protocol::BeaconBlocksByRangeV2,
        Protocol::BeaconBlocksByRootV1,
        Protocol::BeaconBlocksByRootV2,
        Protocol::BlobSidecarsByRangeV1,
        Protocol::BlobSidecarsByRootV1,
        Protocol::DataColumnSidecarsByRangeV1,
        Protocol::DataColumnSidecarsByRootV1,
        Protocol::BeaconBlocksByHeadV1,
        Protocol::LightClientBootstrapV1,
        Protocol::LightClientUpdatesByRangeV1,
        Protocol::LightClientFinalityUpdateV1,
        Protocol::LightClientOptimisticUpdateV1,
        Protocol::ExecutionPayloadEnvelopesByRangeV1,
        Protocol::ExecutionPayloadEnvelopesByRootV1,
    ];

    /// The message name (`beacon_blocks_by_range`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::StatusV1 | Protocol::StatusV2 => "status",
            Protocol::GoodbyeV1 => "goodbye",
            Protocol::PingV1 => "ping",
            Protocol::MetaDataV1 | Protocol::MetaDataV2 | Protocol::MetaDataV3 => "metadata",
            Protocol::BeaconBlocksByRangeV1 | Protocol::BeaconBlocksByRangeV2 => {
                "beacon_blocks_by_range"
            }
            Protocol::BeaconBlocksByRootV1 | Protocol::BeaconBlocksByRootV2 => {
                "beacon_blocks_by_root"
            }
            Protocol::BlobSidecarsByRangeV1 => "blob_sidecars_by_range",
            Protocol::BlobSidecarsByRootV1 => "blob_sidecars_by_root",
            Protocol::DataColumnSidecarsByRangeV1 => "data_column_sidecars_by_range",
            Protocol::DataColumnSidecarsByRootV1 => "data_column_sidecars_by_root",
            Protocol::BeaconBlocksByHeadV1 => "beacon_blocks_by_head",
            Protocol::LightClientBootstrapV1 => "light_client_bootstrap",
            Protocol::LightClientUpdatesByRangeV1 => "light_client_updates_by_range",
            Protocol::LightClientFinalityUpdateV1 => "light_client_finality_update",
            Protocol::LightClientOptimisticUpdateV1 => "light_client_optimistic_update",
            Protocol::ExecutionPayloadEnvelopesByRangeV1 => "execution_payload_envelopes_by_range",
            Protocol::ExecutionPayloadEnvelopesByRootV1 => "execution_payload_envelopes_by_root",
        }
    }

    /// The schema version (1, 2, 3).
    pub fn version(self) -> u8 {
        match self {
            Protocol::StatusV2
            | Protocol::MetaDataV2
            | Protocol::BeaconBlocksByRangeV2
            | Protocol::BeaconBlocksByRootV2 => 2,
            Protocol::MetaDataV3 => 3,
            _ => 1,
        }
    }

    /// The full protocol id, `/eth2/beacon_chain/req/<name>/<version>/ssz_snappy`.
    pub fn id(self) -> &'static str {
        match self {
            Protocol::StatusV1 => "/eth2/beacon_chain/req/status/1/ssz_snappy",
            Protocol::StatusV2 => "/eth2/beacon_chain/req/status/2/ssz_snappy",
            Protocol::GoodbyeV1 => "/eth2/beacon_chain/req/goodbye/1/ssz_snappy",
            Protocol::PingV1 => "/eth2/beacon_chain/req/ping/1/ssz_snappy",
            Protocol::MetaDataV1 => "/eth2/beacon_chain/req/metadata/1/ssz_snappy",
            Protocol::MetaDataV2 => "/eth2/beacon_chain/req/metadata/2/ssz_snappy",
            Protocol::MetaDataV3 => "/eth2/beacon_chain/req/metadata/3/ssz_snappy",
            Protocol::BeaconBlocksByRangeV1 => {
                "/eth2/beacon_chain/req/beacon_blocks_by_range/1/ssz_snappy"
            }
            Protocol::BeaconBlocksByRangeV2 => {
                "/eth2/beacon_chain/req/beacon_blocks_by_range/2/ssz_snappy"
            }
            Protocol::BeaconBlocksByRootV1 => {
                "/eth2/beacon_chain/req/beacon_blocks_by_root/1/ssz_snappy"
            }
            Protocol::BeaconBlocksByRootV2 => {
                "/eth2/beacon_chain/req/beacon_blocks_by_root/2/ssz_snappy"
            }
            Protocol::BlobSidecarsByRangeV1 => {
                "/eth2/beacon_chain/req/blob_sidecars_by_range/1/ssz_snappy"
            }
            Protocol::BlobSidecarsByRootV1 => {
                "/eth2/beacon_chain/req/blob_sidecars_by_root/1/ssz_snappy"
            }
            Protocol::DataColumnSidecarsByRangeV1 => {
                "/eth2/beacon_chain/req/data_column_sidecars_by_range/1/ssz_snappy"
            }
            Protocol::DataColumnSidecarsByRootV1 => {
                "/eth2/beacon_chain/req/data_column_sidecars_by_root/1/ssz_snappy"
            }
            Protocol::BeaconBlocksByHeadV1 => {
                "/eth2/beacon_chain/req/beacon_blocks_by_head/1/ssz_snappy"
            }
            Protocol::LightClientBootstrapV1 => {
                "/eth2/beacon_chain/req/light_client_bootstrap/1/ssz_snappy"
            }
            Protocol::LightClientUpdatesByRangeV1 => {
                "/eth2/beacon_chain/req/light_client_updates_by_range/1/ssz_snappy"
            }
            Protocol::LightClientFinalityUpdateV1 => {
                "/eth2/beacon_chain/req/light_client_finality_update/1/ssz_snappy"
            }
            Protocol::LightClientOptimisticUpdateV1 => {
                "/eth2/beacon_chain/req/light_client_optimistic_update/1/ssz_snappy"
            }
            Protocol::ExecutionPayloadEnvelopesByRangeV1 => {
                "/eth2/beacon_chain/req/execution_payload_envelopes_by_range/1/ssz_snappy"
            }
            Protocol::ExecutionPayloadEnvelopesByRootV1 => {
                "/eth2/beacon_chain/req/execution_payload_envelopes_by_root/1/ssz_snappy"
            }
        }
    }

    /// The protocol with this exact id, if any (case-sensitive, `ssz_snappy` only).
    pub fn from_id(id: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.id() == id)
    }

    /// The fork that introduced it.
    pub fn since(self) -> Fork {
        match self {
            Protocol::StatusV1
            | Protocol::GoodbyeV1
            | Protocol::PingV1
            | Protocol::MetaDataV1
            | Protocol::BeaconBlocksByRangeV1
            | Protocol::BeaconBlocksByRootV1 => Fork::Phase0,
            Protocol::MetaDataV2
            | Protocol::BeaconBlocksByRangeV2
            | Protocol::BeaconBlocksByRootV2
            | Protocol::LightClientBootstrapV1
            | Protocol::LightClientUpdatesByRangeV1
            | Protocol::LightClientFinalityUpdateV1
            | Protocol::LightClientOptimisticUpdateV1 => Fork::Altair,
            Protocol::BlobSidecarsByRangeV1 | Protocol::BlobSidecarsByRootV1 => Fork::Deneb,
            Protocol::StatusV2
            | Protocol::MetaDataV3
            | Protocol::DataColumnSidecarsByRangeV1
            | Protocol::DataColumnSidecarsByRootV1
            | Protocol::BeaconBlocksByHeadV1 => Fork::Fulu,
            Protocol::ExecutionPayloadEnvelopesByRangeV1
            | Protocol::ExecutionPayloadEnvelopesByRootV1 => Fork::Gloas,
        }
    }

    /// Whether success chunks carry 4 `ForkDigest` context bytes (the Altair-and-later
    /// protocols with fork-dependent response types). Error chunks never do.
    pub fn has_context_bytes(self) -> bool {
        self.context_source().is_some()
    }

    /// How the responder picks the context epoch, for protocols with context bytes.
    pub fn context_source(self) -> Option<ContextSource> {
        match self {
            Protocol::BeaconBlocksByRangeV2
            | Protocol::BeaconBlocksByRootV2
            | Protocol::BeaconBlocksByHeadV1 => Some(ContextSource::BlockSlot),
            Protocol::BlobSidecarsByRangeV1
            | Protocol::BlobSidecarsByRootV1
            | Protocol::DataColumnSidecarsByRangeV1
            | Protocol::DataColumnSidecarsByRootV1 => Some(ContextSource::SidecarSlot),
            Protocol::LightClientBootstrapV1 => Some(ContextSource::BootstrapHeaderSlot),
            Protocol::LightClientUpdatesByRangeV1
            | Protocol::LightClientFinalityUpdateV1
            | Protocol::LightClientOptimisticUpdateV1 => Some(ContextSource::AttestedHeaderSlot),
            Protocol::ExecutionPayloadEnvelopesByRangeV1
            | Protocol::ExecutionPayloadEnvelopesByRootV1 => Some(ContextSource::EnvelopeBlockSlot),
            Protocol::StatusV1
            | Protocol::StatusV2
            | Protocol::GoodbyeV1
            | Protocol::PingV1
            | Protocol::MetaDataV1
            | Protocol::MetaDataV2
            | Protocol::MetaDataV3
            | Protocol::BeaconBlocksByRangeV1
            | Protocol::BeaconBlocksByRootV1 => None,
        }
    }

    /// Whether the request has no body (`metadata/*`, the light client finality and
    /// optimistic updates): the requester opens the stream and half-closes it, sending nothing.
    pub fn has_empty_request(self) -> bool {
        matches!(
            self,
            Protocol::MetaDataV1
                | Protocol::MetaDataV2
                | Protocol::MetaDataV3
                | Protocol::LightClientFinalityUpdateV1
                | Protocol::LightClientOptimisticUpdateV1
        )
    }

    /// Whether the response is at most one chunk (everything but the list responses).
    pub fn is_single_chunk(self) -> bool {
        matches!(
            self,
            Protocol::StatusV1
                | Protocol::StatusV2
                | Protocol::GoodbyeV1
                | Protocol::PingV1
                | Protocol::MetaDataV1
                | Protocol::MetaDataV2
                | Protocol::MetaDataV3
                | Protocol::LightClientBootstrapV1
                | Protocol::LightClientFinalityUpdateV1
                | Protocol::LightClientOptimisticUpdateV1
        )
    }

    /// The type of its success chunks.
    pub fn response_kind(self) -> ResponseKind {
        match self {
            Protocol::StatusV1 | Protocol::StatusV2 => ResponseKind::Status,
            Protocol::GoodbyeV1 | Protocol::PingV1 => ResponseKind::Uint64,
            Protocol::MetaDataV1 | Protocol::MetaDataV2 | Protocol::MetaDataV3 => {
                ResponseKind::MetaData
            }
            Protocol::BeaconBlocksByRangeV1
            | Protocol::BeaconBlocksByRangeV2
            | Protocol::BeaconBlocksByRootV1
            | Protocol::BeaconBlocksByRootV2
            | Protocol::BeaconBlocksByHeadV1 => ResponseKind::SignedBeaconBlock,
            Protocol::BlobSidecarsByRangeV1 | Protocol::BlobSidecarsByRootV1 => {
                ResponseKind::BlobSidecar
            }
            Protocol::DataColumnSidecarsByRangeV1 | Protocol::DataColumnSidecarsByRootV1 => {
                ResponseKind::DataColumnSidecar
            }
            Protocol::LightClientBootstrapV1 => ResponseKind::LightClientBootstrap,
            Protocol::LightClientUpdatesByRangeV1 => ResponseKind::LightClientUpdate,
            Protocol::LightClientFinalityUpdateV1 => ResponseKind::LightClientFinalityUpdate,
            Protocol::LightClientOptimisticUpdateV1 => ResponseKind::LightClientOptimisticUpdate,
            Protocol::ExecutionPayloadEnvelopesByRangeV1
            | Protocol::ExecutionPayloadEnvelopesByRootV1 => {
                ResponseKind::SignedExecutionPayloadEnvelope
            }
        }
    }

    /// `[min, max]` SSZ length of the request body, from the request type's bounds (the SSZ
    /// list limits are the spec's largest; a fork's smaller limits are checked after decoding).
    /// `None` for protocols without a request body.
    pub fn request_bounds(self) -> Option<(u64, u64)> {
        fn b<T: SszBounds>() -> Option<(u64, u64)> {
            Some((T::ssz_min_len() as u64, T::ssz_max_len() as u64))
        }
        match self {
            Protocol::StatusV1 => b::<StatusV1>(),
            Protocol::StatusV2 => b::<StatusV2>(),
            Protocol::GoodbyeV1 => b::<Goodbye>(),
            Protocol::PingV1 => b::<Ping>(),
            Protocol::BeaconBlocksByRangeV1 | Protocol::BeaconBlocksByRangeV2 => {
                b::<BeaconBlocksByRangeRequest>()
            }
            Protocol::BeaconBlocksByRootV1 | Protocol::BeaconBlocksByRootV2 => {
                b::<BeaconBlocksByRootRequest>()
            }
            Protocol::BlobSidecarsByRangeV1 => b::<BlobSidecarsByRangeRequest>(),
            Protocol::BlobSidecarsByRootV1 => b::<BlobSidecarsByRootRequest>(),
            Protocol::DataColumnSidecarsByRangeV1 => b::<DataColumnSidecarsByRangeRequest>(),
            Protocol::DataColumnSidecarsByRootV1 => b::<DataColumnSidecarsByRootRequest>(),
            Protocol::BeaconBlocksByHeadV1 => b::<BeaconBlocksByHeadRequest>(),
            Protocol::LightClientBootstrapV1 => b::<LightClientBootstrapRequest>(),
            Protocol::LightClientUpdatesByRangeV1 => b::<LightClientUpdatesByRangeRequest>(),
            Protocol::ExecutionPayloadEnvelopesByRangeV1 => {
                b::<ExecutionPayloadEnvelopesByRangeRequest>()
            }
            Protocol::ExecutionPayloadEnvelopesByRootV1 => {
                b::<ExecutionPayloadEnvelopesByRootRequest>()
            }
            Protocol::MetaDataV1
            | Protocol::MetaDataV2
            | Protocol::MetaDataV3
            | Protocol::LightClientFinalityUpdateV1
            | Protocol::LightClientOptimisticUpdateV1 => None,
        }
    }

    /// `[min, max]` SSZ length of a success chunk whose type is `fork`'s (the fork of its
    /// context bytes; ignored for protocols without context bytes), with the max capped at the
    /// config's `MAX_PAYLOAD_SIZE`. `None` when the protocol has no response type at that fork
    /// (a data column sidecar under a Deneb digest, a light client object under phase 0's):
    /// context bytes naming such a fork are wrong.
    pub fn response_bounds(self, fork: Fork, config: &ChainConfig) -> Option<(u64, u64)> {
        let fixed = |n: usize| Some((n as u64, n as u64));
        let (min, max) = match self {
            Protocol::StatusV1 => fixed(<StatusV1 as SszBounds>::ssz_max_len()),
            Protocol::StatusV2 => fixed(<StatusV2 as SszBounds>::ssz_max_len()),
            Protocol::GoodbyeV1 => fixed(<Goodbye as SszBounds>::ssz_max_len()),
            Protocol::PingV1 => fixed(<Ping as SszBounds>::ssz_max_len()),
            Protocol::MetaDataV1 => fixed(<MetaDataV1 as SszBounds>::ssz_max_len()),
            Protocol::MetaDataV2 => fixed(<MetaDataV2 as SszBounds>::ssz_max_len()),
            Protocol::MetaDataV3 => fixed(<MetaDataV3 as SszBounds>::ssz_max_len()),
            Protocol::BeaconBlocksByRangeV1 | Protocol::BeaconBlocksByRootV1 => {
                bounds::signed_beacon_block(Fork::Phase0, config)
            }
            Protocol::BeaconBlocksByRangeV2
            | Protocol::BeaconBlocksByRootV2
            | Protocol::BeaconBlocksByHeadV1 => bounds::signed_beacon_block(fork, config),
            Protocol::BlobSidecarsByRangeV1 | Protocol::BlobSidecarsByRootV1 => {
                bounds::blob_sidecar(fork)
            }
            Protocol::DataColumnSidecarsByRangeV1 | Protocol::DataColumnSidecarsByRootV1 => {
                bounds::data_column_sidecar(fork)
            }
            Protocol::LightClientBootstrapV1 => {
                bounds::light_client(ResponseKind::LightClientBootstrap, fork, config)
            }
            Protocol::LightClientUpdatesByRangeV1 => {
                bounds::light_client(ResponseKind::LightClientUpdate, fork, config)
            }
            Protocol::LightClientFinalityUpdateV1 => {
                bounds::light_client(ResponseKind::LightClientFinalityUpdate, fork, config)
            }
            Protocol::LightClientOptimisticUpdateV1 => {
                bounds::light_client(ResponseKind::LightClientOptimisticUpdate, fork, config)
            }
            Protocol::ExecutionPayloadEnvelopesByRangeV1
            | Protocol::ExecutionPayloadEnvelopesByRootV1 => {
                bounds::signed_execution_payload_envelope(fork)
            }
        }?;
        let max = max.min(config.max_payload_size);
        (min <= max).then_some((min, max))
    }

    /// The protocols to propose for a message, newest version first, given the fork we are at:
    /// `status/2` then `status/1` from Fulu, `metadata/3, /2, /1`, the v2 block protocols
    /// then v1 … Protocols of later forks are left out.
    pub fn with_fallbacks(self, fork: Fork) -> Vec<Protocol> {
        let family: &[Protocol] = match self {
            Protocol::StatusV1 | Protocol::StatusV2 => &[Protocol::StatusV2, Protocol::StatusV1],
            Protocol::MetaDataV1 | Protocol::MetaDataV2 | Protocol::MetaDataV3 => &[
                Protocol::MetaDataV3,
                Protocol::MetaDataV2,
                Protocol::MetaDataV1,
            ],
            Protocol::BeaconBlocksByRangeV1 | Protocol::BeaconBlocksByRangeV2 => &[
                Protocol::BeaconBlocksByRangeV2,
                Protocol::BeaconBlocksByRangeV1,
            ],
            Protocol::BeaconBlocksByRootV1 | Protocol::BeaconBlocksByRootV2 => &[
                Protocol::BeaconBlocksByRootV2,
                Protocol::BeaconBlocksByRootV1,
            ],
            _ => return vec![self],
        };
        family
            .iter()
            .copied()
            .filter(|p| p.since() <= fork)
            .collect()
    }

    /// The bounds of an error chunk's `ErrorMessage` (`List[byte, 256]`).
    pub fn error_bounds() -> (u64, u64) {
        (
            <ErrorMessage as SszBounds>::ssz_min_len() as u64,
            <ErrorMessage as SszBounds>::ssz_max_len() as u64,
        )
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// The result byte of a response chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResponseCode {
    /// 0: a payload of the expected type follows.
    Success,
    /// 1: the request was malformed or semantically invalid.
    InvalidRequest,
    /// 2: the responder failed.
    ServerError,
    /// 3: the responder does not have what was asked (where the spec allows it).
    ResourceUnavailable,
    /// 4–127: reserved; treated as an error.
    Reserved(u8),
    /// 128–255: client-specific errors.
    Custom(u8),
}

impl ResponseCode {
    /// The wire byte.
    pub fn to_u8(self) -> u8 {
        match self {
            ResponseCode::Success => 0,
            ResponseCode::InvalidRequest => 1,
            ResponseCode::ServerError => 2,
            ResponseCode::ResourceUnavailable => 3,
            ResponseCode::Reserved(b) | ResponseCode::Custom(b) => b,
        }
    }

    /// Whether this is an error code (anything but 0).
    pub fn is_error(self) -> bool {
        self != ResponseCode::Success
    }
}

impl From<u8> for ResponseCode {
    fn from(b: u8) -> Self {
        match b {
            0 => ResponseCode::Success,
            1 => ResponseCode::InvalidRequest,
            2 => ResponseCode::ServerError,
            3 => ResponseCode::ResourceUnavailable,
            4..=127 => ResponseCode::Reserved(b),
            _ => ResponseCode::Custom(b),
        }
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseCode::Success => f.write_str("success"),
            ResponseCode::InvalidRequest => f.write_str("invalid request"),
            ResponseCode::ServerError => f.write_str("server error"),
            ResponseCode::ResourceUnavailable => f.write_str("resource unavailable"),
            ResponseCode::Reserved(b) => write!(f, "reserved code {b}"),
            ResponseCode::Custom(b) => write!(f, "client-specific code {b}"),
        }
    }
}
