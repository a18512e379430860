//! SSZ containers of every Req/Resp request (and of the small responses: Status, Ping,
//! MetaData, Goodbye, ErrorMessage), their encoded-length bounds, and the runtime checks of a
//! request against the chain config's limits.
//!
//! The list limits of the SSZ types are the spec's largest values (typenum); a config may set
//! smaller ones, checked by each request's `validate`. Encoding and decoding are
//! `ethereum_ssz`'s (`ssz::Encode::as_ssz_bytes`, `ssz::Decode::from_ssz_bytes`, or
//! [`decode_ssz`], which maps the error).

use ssz::{Decode, Encode};
use ssz_derive::{Decode, Encode};
use ssz_types::typenum::{U4, U64, U128, U256, U1024};

/// 1152 (`MAX_REQUEST_BLOCKS_DENEB × MAX_BLOBS_PER_BLOCK_ELECTRA`), which typenum does not name.
type U1152 = ssz_types::typenum::Sum<U1024, U128>;
use ssz_types::{BitVector, VariableList};

use crate::config::{ChainConfig, MAX_REQUEST_LIGHT_CLIENT_UPDATES, NUMBER_OF_COLUMNS};
use crate::types::{Epoch, Fork, ForkDigest, Root, Slot};

/// An SSZ payload did not decode. Blame: the peer that sent it (`PeerMisbehaved`; on a
/// request, answer `InvalidRequest`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid SSZ: {0:?}")]
pub struct SszError(pub ssz::DecodeError);

/// Decode `T` from SSZ bytes: exactly one value, no trailing bytes, offsets and list limits
/// checked (by `ethereum_ssz` / `ssz_types`).
pub fn decode_ssz<T: Decode>(bytes: &[u8]) -> Result<T, SszError> {
    T::from_ssz_bytes(bytes).map_err(SszError)
}

/// The smallest and largest SSZ encodings of a message type: a Req/Resp codec rejects a
/// declared length outside `[ssz_min_len, min(ssz_max_len, MAX_PAYLOAD_SIZE)]` before reading
/// the payload. For list types the maximum is at the SSZ type's limit (the spec's largest
/// value); a config's smaller limit is checked by `validate` after decoding.
pub trait SszBounds {
    /// Smallest valid encoding, in bytes.
    fn ssz_min_len() -> usize;
    /// Largest valid encoding, in bytes.
    fn ssz_max_len() -> usize;
}

macro_rules! fixed_bounds {
    ($($t:ty),* $(,)?) => {$(
        impl SszBounds for $t {
            fn ssz_min_len() -> usize {
                <$t as Decode>::ssz_fixed_len()
            }
            fn ssz_max_len() -> usize {
                <$t as Decode>::ssz_fixed_len()
            }
        }
    )*};
}

/// A request asks for more than the config allows, or is malformed beyond SSZ. Blame: the
/// requesting peer (`PeerMisbehaved`; answer `InvalidRequest`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// More items than the limit for this fork.
    #[error("request lists {len} items, more than the {max} allowed")]
    TooMany {
        /// Items requested.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// `step` is 0 (BlocksByRange; the spec requires 1).
    #[error("step is 0")]
    ZeroStep,
    /// `start_slot + count` (or period) overflows u64.
    #[error("start {start} + count {count} overflows")]
    RangeOverflow {
        /// Start slot or period.
        start: u64,
        /// Count.
        count: u64,
    },
    /// A column index is not below `NUMBER_OF_COLUMNS`.
    #[error("column index {0} is not below NUMBER_OF_COLUMNS")]
    ColumnOutOfRange(u64),
    /// A column index appears twice in one request entry.
    #[error("column index {0} is requested twice")]
    DuplicateColumn(u64),
}

/// The request limits of a fork, from the chain config.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestLimits {
    /// `MAX_REQUEST_BLOCKS`, or `MAX_REQUEST_BLOCKS_DENEB` from Deneb.
    pub max_request_blocks: u64,
    /// `compute_max_request_blob_sidecars()`: `MAX_REQUEST_BLOCKS_DENEB` × the fork's max blobs
    /// (Deneb's, else Electra's; blob requests end with Fulu's retention window).
    pub max_request_blob_sidecars: u64,
    /// Blobs per block for BlobSidecarsByRange (Deneb's, else Electra's).
    pub max_blobs_per_block: u64,
    /// `compute_max_request_data_column_sidecars()`: `MAX_REQUEST_BLOCKS_DENEB × NUMBER_OF_COLUMNS`.
    pub max_request_data_column_sidecars: u64,
    /// `MAX_REQUEST_BLOCKS_DENEB`: data column identifiers per by-root request.
    pub max_request_column_identifiers: u64,
    /// `MAX_REQUEST_PAYLOADS` (Gloas).
    pub max_request_payloads: u64,
    /// `NUMBER_OF_COLUMNS`.
    pub number_of_columns: u64,
}

impl ChainConfig {
    /// The request limits in force at `fork`.
    pub fn request_limits(&self, fork: Fork) -> RequestLimits {
        let blobs = if fork >= Fork::Electra {
            self.max_blobs_per_block_electra
        } else {
            self.max_blobs_per_block
        };
        RequestLimits {
            max_request_blocks: if fork >= Fork::Deneb {
                self.max_request_blocks_deneb
            } else {
                self.max_request_blocks
            },
            max_request_blob_sidecars: self.max_request_blocks_deneb.saturating_mul(blobs),
            max_blobs_per_block: blobs,
            max_request_data_column_sidecars: self
                .max_request_blocks_deneb
                .saturating_mul(NUMBER_OF_COLUMNS),
            max_request_column_identifiers: self.max_request_blocks_deneb,
            max_request_payloads: self.max_request_payloads,
            number_of_columns: NUMBER_OF_COLUMNS,
        }
    }
}

fn check_len(len: usize, max: u64) -> Result<(), RequestError> {
    if len as u64 > max {
        return Err(RequestError::TooMany {
            len: len as u64,
            max,
        });
    }
    Ok(())
}

fn check_range(start: u64, count: u64) -> Result<(), RequestError> {
    start
        .checked_add(count)
        .map(|_| ())
        .ok_or(RequestError::RangeOverflow { start, count })
}

fn check_columns(columns: &[u64], number_of_columns: u64) -> Result<(), RequestError> {
    let mut seen = [false; NUMBER_OF_COLUMNS as usize];
    for &c in columns {
        if c >= number_of_columns || c >= NUMBER_OF_COLUMNS {
            return Err(RequestError::ColumnOutOfRange(c));
        }
        let slot = &mut seen[c as usize];
        if *slot {
            return Err(RequestError::DuplicateColumn(c));
        }
        *slot = true;
    }
    Ok(())
}

/// `Status` v1 (`status/1`, 84 bytes): the handshake every dialer sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct StatusV1 {
    /// The sender's digest at its wall-clock epoch.
    pub fork_digest: ForkDigest,
    /// Finalized checkpoint root (zero at genesis).
    pub finalized_root: Root,
    /// Finalized checkpoint epoch.
    pub finalized_epoch: Epoch,
    /// Head block root.
    pub head_root: Root,
    /// Head block slot.
    pub head_slot: Slot,
}

/// `Status` v2 (`status/2`, Fulu, 92 bytes): v1 plus `earliest_available_slot`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct StatusV2 {
    /// The sender's digest at its wall-clock epoch.
    pub fork_digest: ForkDigest,
    /// Finalized checkpoint root (zero at genesis).
    pub finalized_root: Root,
    /// Finalized checkpoint epoch.
    pub finalized_epoch: Epoch,
    /// Head block root.
    pub head_root: Root,
    /// Head block slot.
    pub head_slot: Slot,
    /// The earliest slot from which the sender serves blocks (and sidecars, see the spec).
    pub earliest_available_slot: Slot,
}

impl StatusV2 {
    /// The Status of a node at genesis on `fork_digest`: nothing finalized, head at slot 0
    /// with zero roots. What a tool or a node without a chain sends (peers answer it and
    /// never sync from it).
    pub fn at_genesis(fork_digest: ForkDigest) -> StatusV2 {
        StatusV2 {
            fork_digest,
            finalized_root: [0; 32],
            finalized_epoch: 0,
            head_root: [0; 32],
            head_slot: 0,
            earliest_available_slot: 0,
        }
    }
}

impl From<StatusV2> for StatusV1 {
    fn from(s: StatusV2) -> Self {
        StatusV1 {
            fork_digest: s.fork_digest,
            finalized_root: s.finalized_root,
            finalized_epoch: s.finalized_epoch,
            head_root: s.head_root,
            head_slot: s.head_slot,
        }
    }
}

/// A Goodbye reason (`goodbye/1`; a bare u64 on the wire). Codes 1–3 are the spec's; 128 and
/// above are client-specific (the named ones are what clients commonly send); any other
/// value is kept as [`GoodbyeReason::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GoodbyeReason {
    /// 1: client shut down.
    ClientShutdown,
    /// 2: irrelevant network (wrong fork digest, disjoint finalized chain).
    IrrelevantNetwork,
    /// 3: fault or error.
    Fault,
    /// 128: unable to verify the network (client-specific).
    UnableToVerifyNetwork,
    /// 129: too many peers (client-specific).
    TooManyPeers,
    /// 250: bad peer score (client-specific).
    BadScore,
    /// 251: banned (client-specific).
    Banned,
    /// 252: IP banned (client-specific).
    BannedIp,
    /// Any other code (4–127 are reserved).
    Other(u64),
}

impl GoodbyeReason {
    /// The wire code.
    pub fn code(self) -> u64 {
        match self {
            GoodbyeReason::ClientShutdown => 1,
            GoodbyeReason::IrrelevantNetwork => 2,
            GoodbyeReason::Fault => 3,
            GoodbyeReason::UnableToVerifyNetwork => 128,
            GoodbyeReason::TooManyPeers => 129,
            GoodbyeReason::BadScore => 250,
            GoodbyeReason::Banned => 251,
            GoodbyeReason::BannedIp => 252,
            GoodbyeReason::Other(c) => c,
        }
    }
}

impl From<u64> for GoodbyeReason {
    fn from(code: u64) -> Self {
        match code {
            1 => GoodbyeReason::ClientShutdown,
            2 => GoodbyeReason::IrrelevantNetwork,
            3 => GoodbyeReason::Fault,
            128 => GoodbyeReason::UnableToVerifyNetwork,
            129 => GoodbyeReason::TooManyPeers,
            250 => GoodbyeReason::BadScore,
            251 => GoodbyeReason::Banned,
            252 => GoodbyeReason::BannedIp,
            c => GoodbyeReason::Other(c),
        }
    }
}

/// `goodbye/1` request and response: the reason code as a bare `Uint64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
#[ssz(struct_behaviour = "transparent")]
pub struct Goodbye(pub u64);

impl Goodbye {
    /// The named reason.
    pub fn reason(self) -> GoodbyeReason {
        GoodbyeReason::from(self.0)
    }
}

impl From<GoodbyeReason> for Goodbye {
    fn from(r: GoodbyeReason) -> Self {
        Goodbye(r.code())
    }
}

/// `ping/1` request and response: the sender's `MetaData.seq_number` as a bare `Uint64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
#[ssz(struct_behaviour = "transparent")]
pub struct Ping(pub u64);

/// `MetaData` v1 (`metadata/1`, phase 0, 16 bytes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct MetaDataV1 {
    /// Incremented on every change.
    pub seq_number: u64,
    /// Long-lived attestation subnets (`Bitvector[ATTESTATION_SUBNET_COUNT]`).
    pub attnets: BitVector<U64>,
}

/// `MetaData` v2 (`metadata/2`, Altair, 17 bytes): v1 plus `syncnets`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct MetaDataV2 {
    /// Incremented on every change.
    pub seq_number: u64,
    /// Long-lived attestation subnets.
    pub attnets: BitVector<U64>,
    /// Sync committee subnets (`Bitvector[SYNC_COMMITTEE_SUBNET_COUNT]`).
    pub syncnets: BitVector<U4>,
}

/// `MetaData` v3 (`metadata/3`, Fulu, 25 bytes): v2 plus `custody_group_count`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct MetaDataV3 {
    /// Incremented on every change.
    pub seq_number: u64,
    /// Long-lived attestation subnets.
    pub attnets: BitVector<U64>,
    /// Sync committee subnets.
    pub syncnets: BitVector<U4>,
    /// Custody group count (`cgc`).
    pub custody_group_count: u64,
}

/// `beacon_blocks_by_range/1` and `/2` request (24 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct BeaconBlocksByRangeRequest {
    /// First slot.
    pub start_slot: Slot,
    /// Number of slots.
    pub count: u64,
    /// Deprecated, must be 1 (a responder may answer one block for a larger step).
    pub step: u64,
}

impl BeaconBlocksByRangeRequest {
    /// Reject `step == 0` and slot overflow.
    pub fn validate(&self) -> Result<(), RequestError> {
        if self.step == 0 {
            return Err(RequestError::ZeroStep);
        }
        check_range(self.start_slot, self.count)
    }

    /// Most response chunks: `min(count, MAX_REQUEST_BLOCKS[_DENEB])`, 1 for `step > 1`.
    pub fn max_response_chunks(&self, limits: &RequestLimits) -> u64 {
        let n = self.count.min(limits.max_request_blocks);
        if self.step > 1 { n.min(1) } else { n }
    }
}

/// `beacon_blocks_by_root/1` and `/2` request: `List[Root, MAX_REQUEST_BLOCKS]` (1024; from
/// Deneb the config's `MAX_REQUEST_BLOCKS_DENEB`, checked by `validate`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
#[ssz(struct_behaviour = "transparent")]
pub struct BeaconBlocksByRootRequest(pub VariableList<Root, U1024>);

impl BeaconBlocksByRootRequest {
    /// At most `limits.max_request_blocks` roots.
    pub fn validate(&self, limits: &RequestLimits) -> Result<(), RequestError> {
        check_len(self.0.len(), limits.max_request_blocks)
    }

    /// Most response chunks: one per root.
    pub fn max_response_chunks(&self) -> u64 {
        self.0.len() as u64
    }
}

/// `blob_sidecars_by_range/1` request (Deneb, 16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct BlobSidecarsByRangeRequest {
    /// First slot.
    pub start_slot: Slot,
    /// Number of slots.
    pub count: u64,
}

impl BlobSidecarsByRangeRequest {
    /// Reject slot overflow.
    pub fn validate(&self) -> Result<(), RequestError> {
        check_range(self.start_slot, self.count)
    }

    /// Most response chunks: `min(count × max blobs, compute_max_request_blob_sidecars())`.
    pub fn max_response_chunks(&self, limits: &RequestLimits) -> u64 {
        self.count
            .saturating_mul(limits.max_blobs_per_block)
            .min(limits.max_request_blob_sidecars)
    }
}

/// `BlobIdentifier` (Deneb, 40 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct BlobIdentifier {
    /// Block root.
    pub block_root: Root,
    /// Blob index in the block.
    pub index: u64,
}

/// `blob_sidecars_by_root/1` request: `List[BlobIdentifier, compute_max_request_blob_sidecars()]`
/// (1152, Electra's; Deneb's 768 is checked by `validate`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
#[ssz(struct_behaviour = "transparent")]
pub struct BlobSidecarsByRootRequest(pub VariableList<BlobIdentifier, U1152>);

impl BlobSidecarsByRootRequest {
    /// At most `compute_max_request_blob_sidecars()` identifiers.
    pub fn validate(&self, limits: &RequestLimits) -> Result<(), RequestError> {
        check_len(self.0.len(), limits.max_request_blob_sidecars)
    }

    /// Most response chunks: one per identifier.
    pub fn max_response_chunks(&self) -> u64 {
        self.0.len() as u64
    }
}

/// `DataColumnIndices`: `List[ColumnIndex, NUMBER_OF_COLUMNS]`.
pub type DataColumnIndices = VariableList<u64, U128>;

/// `data_column_sidecars_by_range/1` request (Fulu, 20 + 8 × columns bytes).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct DataColumnSidecarsByRangeRequest {
    /// First slot.
    pub start_slot: Slot,
    /// Number of slots.
    pub count: u64,
    /// Column indices.
    pub columns: DataColumnIndices,
}

impl DataColumnSidecarsByRangeRequest {
    /// Reject slot overflow, column indices ≥ `NUMBER_OF_COLUMNS` and repeated indices.
    pub fn validate(&self, limits: &RequestLimits) -> Result<(), RequestError> {
        check_range(self.start_slot, self.count)?;
        check_columns(&self.columns, limits.number_of_columns)
    }

    /// Most response chunks:
    /// `min(count × len(columns), compute_max_request_data_column_sidecars())`.
    pub fn max_response_chunks(&self, limits: &RequestLimits) -> u64 {
        self.count
            .saturating_mul(self.columns.len() as u64)
            .min(limits.max_request_data_column_sidecars)
    }
}

/// `DataColumnsByRootIdentifier` (Fulu): a block root and the columns wanted from it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct DataColumnsByRootIdentifier {
    /// Block root.
    pub block_root: Root,
    /// Column indices.
    pub columns: DataColumnIndices,
}

/// `data_column_sidecars_by_root/1` request:
/// `List[DataColumnsByRootIdentifier, MAX_REQUEST_BLOCKS_DENEB]` (128).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
#[ssz(struct_behaviour = "transparent")]
pub struct DataColumnSidecarsByRootRequest(pub VariableList<DataColumnsByRootIdentifier, U128>);

impl DataColumnSidecarsByRootRequest {
    /// At most `MAX_REQUEST_BLOCKS_DENEB` identifiers, at most
    /// `compute_max_request_data_column_sidecars()` columns in all, each below
    /// `NUMBER_OF_COLUMNS` and not repeated within its identifier.
    pub fn validate(&self, limits: &RequestLimits) -> Result<(), RequestError> {
        check_len(self.0.len(), limits.max_request_column_identifiers)?;
        let total: usize = self.0.iter().map(|id| id.columns.len()).sum();
        check_len(total, limits.max_request_data_column_sidecars)?;
        self.0
            .iter()
            .try_for_each(|id| check_columns(&id.columns, limits.number_of_columns))
    }

    /// Most response chunks: the number of columns requested.
    pub fn max_response_chunks(&self) -> u64 {
        self.0.iter().map(|id| id.columns.len() as u64).sum()
    }
}

/// `beacon_blocks_by_head/1` request (Fulu, 40 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct BeaconBlocksByHeadRequest {
    /// The head of the ancestry walked (included).
    pub beacon_root: Root,
    /// Number of blocks.
    pub count: u64,
}

impl BeaconBlocksByHeadRequest {
    /// Most response chunks: `min(count, MAX_REQUEST_BLOCKS_DENEB)`.
    pub fn max_response_chunks(&self, limits: &RequestLimits) -> u64 {
        self.count.min(limits.max_request_blocks)
    }
}

/// `execution_payload_envelopes_by_range/1` request (Gloas, 16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct ExecutionPayloadEnvelopesByRangeRequest {
    /// First slot.
    pub start_slot: Slot,
    /// Number of slots.
    pub count: u64,
}

impl ExecutionPayloadEnvelopesByRangeRequest {
    /// Reject slot overflow.
    pub fn validate(&self) -> Result<(), RequestError> {
        check_range(self.start_slot, self.count)
    }

    /// Most response chunks: `min(count, MAX_REQUEST_BLOCKS_DENEB)` (the spec makes it
    /// equivalent to BeaconBlocksByRange v2).
    pub fn max_response_chunks(&self, limits: &RequestLimits) -> u64 {
        self.count.min(limits.max_request_blocks)
    }
}

/// `execution_payload_envelopes_by_root/1` request (Gloas):
/// `ExecutionPayloadEnvelopeRoots = List[Root, MAX_REQUEST_PAYLOADS]` (128).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
#[ssz(struct_behaviour = "transparent")]
pub struct ExecutionPayloadEnvelopesByRootRequest(pub VariableList<Root, U128>);

impl ExecutionPayloadEnvelopesByRootRequest {
    /// At most `MAX_REQUEST_PAYLOADS` roots.
    pub fn validate(&self, limits: &RequestLimits) -> Result<(), RequestError> {
        check_len(self.0.len(), limits.max_request_payloads)
    }

    /// Most response chunks: one per root.
    pub fn max_response_chunks(&self) -> u64 {
        self.0.len() as u64
    }
}

/// `light_client_bootstrap/1` request (Altair): a block root.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
#[ssz(struct_behaviour = "transparent")]
pub struct LightClientBootstrapRequest(pub Root);

/// `light_client_updates_by_range/1` request (Altair, 16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct LightClientUpdatesByRangeRequest {
    /// First sync committee period.
    pub start_period: u64,
    /// Number of periods.
    pub count: u64,
}

impl LightClientUpdatesByRangeRequest {
    /// Reject period overflow.
    pub fn validate(&self) -> Result<(), RequestError> {
        check_range(self.start_period, self.count)
    }

    /// Most response chunks: `min(count, MAX_REQUEST_LIGHT_CLIENT_UPDATES)`.
    pub fn max_response_chunks(&self) -> u64 {
        self.count.min(MAX_REQUEST_LIGHT_CLIENT_UPDATES)
    }
}

/// `ErrorMessage`: the payload of an error response chunk, `List[byte, 256]` (UTF-8 by
/// convention, any bytes accepted).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Encode, Decode)]
#[ssz(struct_behaviour = "transparent")]
pub struct ErrorMessage(pub VariableList<u8, U256>);

impl ErrorMessage {
    /// The message, cut at 256 bytes (on a character boundary).
    pub fn new(text: &str) -> Self {
        let mut end = text.len().min(256);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        ErrorMessage(VariableList::new(text.as_bytes()[..end].to_vec()).unwrap_or_default())
    }

    /// The message as text, invalid UTF-8 replaced.
    pub fn to_string_lossy(&self) -> String {
        String::from_utf8_lossy(&self.0).into_owned()
    }
}

fixed_bounds!(
    StatusV1,
    StatusV2,
    Goodbye,
    Ping,
    MetaDataV1,
    MetaDataV2,
    MetaDataV3,
    BeaconBlocksByRangeRequest,
    BlobSidecarsByRangeRequest,
    BeaconBlocksByHeadRequest,
    ExecutionPayloadEnvelopesByRangeRequest,
    LightClientBootstrapRequest,
    LightClientUpdatesByRangeRequest,
    crate::fork::EnrForkId,
);

const ROOT: usize = 32;
const OFFSET: usize = 4;
const BLOB_IDENTIFIER: usize = 40;
const MAX_COLUMNS: usize = NUMBER_OF_COLUMNS as usize;

macro_rules! list_bounds {
    ($t:ty, $max:expr) => {
        impl SszBounds for $t {
            fn ssz_min_len() -> usize {
                0
            }
            fn ssz_max_len() -> usize {
                $max
            }
        }
    };
}

list_bounds!(BeaconBlocksByRootRequest, 1024 * ROOT);
list_bounds!(BlobSidecarsByRootRequest, 1152 * BLOB_IDENTIFIER);
list_bounds!(ExecutionPayloadEnvelopesByRootRequest, 128 * ROOT);
list_bounds!(ErrorMessage, 256);
list_bounds!(
    DataColumnSidecarsByRootRequest,
    128 * (OFFSET + ROOT + OFFSET + 8 * MAX_COLUMNS)
);

impl SszBounds for DataColumnSidecarsByRangeRequest {
    fn ssz_min_len() -> usize {
        8 + 8 + OFFSET
    }
    fn ssz_max_len() -> usize {
        8 + 8 + OFFSET + 8 * MAX_COLUMNS
    }
}

impl SszBounds for DataColumnsByRootIdentifier {
    fn ssz_min_len() -> usize {
        ROOT + OFFSET
    }
    fn ssz_max_len() -> usize {
        ROOT + OFFSET + 8 * MAX_COLUMNS
    }
}

/// Encode any of these messages (`ssz::Encode::as_ssz_bytes`).
pub fn encode_ssz<T: Encode>(value: &T) -> Vec<u8> {
    value.as_ssz_bytes()
}
