//! Checks of response chunks against the request that asked for them (sans-IO): the context
//! digest against the object's slot, slots within the requested range and in order, roots and
//! indices among those requested, no duplicates. The fields are read straight from the SSZ
//! bytes at their fixed positions; the client still decodes and verifies the objects.

use std::collections::HashSet;
use std::sync::Arc;

use plexus_core::Blame;
use plexus_eth::{Fork, ForkDigest, ForkSchedule, RequestLimits, Root, Slot};
use sha2::{Digest, Sha256};

use crate::codec::SuccessChunk;
use crate::protocol::ResponseKind;
use crate::request::Request;

/// Computes `hash_tree_root(signed_block.message)` of a `SignedBeaconBlock` of a fork, given
/// its SSZ bytes. plexus has no block types; a client that has them can pass this to check
/// BlocksByRoot answers against the roots asked for. `None` when the bytes do not decode.
pub type BlockRootFn = Arc<dyn Fn(Fork, &[u8]) -> Option<Root> + Send + Sync>;

/// A success chunk that does not answer the request. Blame: the responder
/// ([`Blame::PeerMisbehaved`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseViolation {
    /// The context bytes are not the digest of the object's epoch.
    #[error("context {got} but slot {slot} is in the epoch of {expected}")]
    ContextMismatch {
        /// The object's slot.
        slot: Slot,
        /// The digest of its epoch.
        expected: ForkDigest,
        /// The context bytes received.
        got: ForkDigest,
    },
    /// A slot outside `[start, start + count)`.
    #[error("slot {slot} outside the requested [{start}, {start} + {count})")]
    SlotOutOfRange {
        /// The object's slot.
        slot: Slot,
        /// Requested start.
        start: Slot,
        /// Requested count.
        count: u64,
    },
    /// Objects out of the order the protocol requires (ascending `(slot, index)` for by-range,
    /// descending slots for BlocksByHead), or repeated.
    #[error("slot {slot} index {index} is out of order")]
    OutOfOrder {
        /// The object's slot.
        slot: Slot,
        /// Its index (0 for blocks).
        index: u64,
    },
    /// A `(root, index)` (index 0 for blocks and envelopes) that was not requested.
    #[error("root {} index {index} was not requested", hex(root))]
    NotRequested {
        /// The object's block root.
        root: Root,
        /// Its index.
        index: u64,
    },
    /// The same `(root, index)` twice.
    #[error("root {} index {index} sent twice", hex(root))]
    Duplicate {
        /// The object's block root.
        root: Root,
        /// Its index.
        index: u64,
    },
    /// A blob index not below the fork's blobs per block, or a column not requested.
    #[error("index {0} not requested or out of range")]
    BadIndex(u64),
    /// The payload is too short or malformed where a checked field sits.
    #[error("malformed payload: {0}")]
    Malformed(&'static str),
}

impl ResponseViolation {
    /// Who is to blame: the responder.
    pub fn blame(&self) -> Blame {
        Blame::PeerMisbehaved
    }
}

fn hex(root: &Root) -> String {
    root.iter().map(|b| format!("{b:02x}")).collect()
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    let s = b.get(at..at + 8)?;
    Some(u64::from_le_bytes(s.try_into().ok()?))
}

fn root_at(b: &[u8], at: usize) -> Option<Root> {
    b.get(at..at + 32)?.try_into().ok()
}

fn sha(a: &[u8], b: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(a);
    h.update(b);
    h.finalize().into()
}

/// `hash_tree_root` of a `BeaconBlockHeader` given its 112 SSZ bytes (slot, proposer index,
/// parent root, state root, body root): five leaves padded to eight.
pub fn block_header_root(header: &[u8; 112]) -> Root {
    let mut leaves = [[0u8; 32]; 8];
    leaves[0][..8].copy_from_slice(&header[0..8]);
    leaves[1][..8].copy_from_slice(&header[8..16]);
    leaves[2].copy_from_slice(&header[16..48]);
    leaves[3].copy_from_slice(&header[48..80]);
    leaves[4].copy_from_slice(&header[80..112]);
    let l1: Vec<[u8; 32]> = leaves.chunks(2).map(|p| sha(&p[0], &p[1])).collect();
    let l2: Vec<[u8; 32]> = l1.chunks(2).map(|p| sha(&p[0], &p[1])).collect();
    sha(&l2[0], &l2[1])
}

/// Fields of a success chunk read from its SSZ bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChunkFields {
    /// The slot that fixes the context epoch, where it is in the payload.
    pub slot: Option<Slot>,
    /// The block root the object belongs to (sidecars, Gloas columns, envelopes).
    pub block_root: Option<Root>,
    /// The blob or column index (sidecars).
    pub index: Option<u64>,
}

/// Read the slot, block root and index of a success chunk of `kind` at `fork` from its SSZ
/// bytes (blocks: the slot; blob and Fulu column sidecars: the signed header's slot, its root
/// and the index; Gloas columns: slot, root, index; envelopes: the block root; light client
/// objects: nothing).
///
/// # Errors
/// [`ResponseViolation::Malformed`] when the bytes are too short or an offset is wrong.
pub fn chunk_fields(
    kind: ResponseKind,
    fork: Fork,
    ssz: &[u8],
) -> Result<ChunkFields, ResponseViolation> {
    const SIGNED_FIXED: usize = 4 + 96;
    let malformed = ResponseViolation::Malformed;
    let header = |at: usize| -> Result<(Slot, Root), ResponseViolation> {
        let h: &[u8; 112] = ssz
            .get(at..at + 112)
            .and_then(|s| s.try_into().ok())
            .ok_or(malformed("sidecar header"))?;
        Ok((u64_at(h, 0).unwrap_or_default(), block_header_root(h)))
    };
    Ok(match kind {
        ResponseKind::SignedBeaconBlock => {
            let offset = ssz.get(0..4).ok_or(malformed("block offset"))?;
            if u32::from_le_bytes([offset[0], offset[1], offset[2], offset[3]]) as usize
                != SIGNED_FIXED
            {
                return Err(malformed("block message offset"));
            }
            ChunkFields {
                slot: Some(u64_at(ssz, SIGNED_FIXED).ok_or(malformed("block slot"))?),
                ..ChunkFields::default()
            }
        }
        ResponseKind::BlobSidecar => {
            let (slot, root) = header(8 + 4096 * 32 + 48 + 48)?;
            ChunkFields {
                slot: Some(slot),
                block_root: Some(root),
                index: u64_at(ssz, 0),
            }
        }
        ResponseKind::DataColumnSidecar if fork >= Fork::Gloas => ChunkFields {
            slot: Some(u64_at(ssz, 16).ok_or(malformed("column slot"))?),
            block_root: Some(root_at(ssz, 24).ok_or(malformed("column root"))?),
            index: u64_at(ssz, 0),
        },
        ResponseKind::DataColumnSidecar => {
            let (slot, root) = header(8 + 3 * 4)?;
            ChunkFields {
                slot: Some(slot),
                block_root: Some(root),
                index: u64_at(ssz, 0),
            }
        }
        ResponseKind::SignedExecutionPayloadEnvelope => {
            let offset = ssz.get(0..4).ok_or(malformed("envelope offset"))?;
            if u32::from_le_bytes([offset[0], offset[1], offset[2], offset[3]]) as usize
                != SIGNED_FIXED
            {
                return Err(malformed("envelope message offset"));
            }
            ChunkFields {
                block_root: Some(
                    root_at(ssz, SIGNED_FIXED + 16).ok_or(malformed("envelope root"))?,
                ),
                ..ChunkFields::default()
            }
        }
        _ => ChunkFields::default(),
    })
}

/// Checks each success chunk of a response against its request.
pub struct ResponseChecker {
    request: Request,
    schedule: Arc<ForkSchedule>,
    limits: RequestLimits,
    block_root: Option<BlockRootFn>,
    /// Last `(slot, index)` seen, for order checks.
    last: Option<(Slot, u64)>,
    requested: HashSet<(Root, u64)>,
    seen: HashSet<(Root, u64)>,
}

impl std::fmt::Debug for ResponseChecker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseChecker")
            .field("protocol", &self.request.protocol())
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

impl ResponseChecker {
    /// A checker for the response to `request`, under the requester's `limits` (its fork's).
    /// `block_root` (optional) computes block roots for BlocksByRoot checks.
    pub fn new(
        request: Request,
        schedule: Arc<ForkSchedule>,
        limits: RequestLimits,
        block_root: Option<BlockRootFn>,
    ) -> Self {
        let requested: HashSet<(Root, u64)> = match &request {
            Request::BeaconBlocksByRootV1(r) | Request::BeaconBlocksByRootV2(r) => {
                r.0.iter().map(|root| (*root, 0)).collect()
            }
            Request::BlobSidecarsByRoot(r) => {
                r.0.iter().map(|id| (id.block_root, id.index)).collect()
            }
            Request::DataColumnSidecarsByRoot(r) => {
                r.0.iter()
                    .flat_map(|id| id.columns.iter().map(|c| (id.block_root, *c)))
                    .collect()
            }
            Request::ExecutionPayloadEnvelopesByRoot(r) => {
                r.0.iter().map(|root| (*root, 0)).collect()
            }
            _ => HashSet::new(),
        };
        ResponseChecker {
            request,
            schedule,
            limits,
            block_root,
            last: None,
            requested,
            seen: HashSet::new(),
        }
    }

    /// Check the next success chunk.
    ///
    /// # Errors
    /// The first [`ResponseViolation`].
    pub fn check(&mut self, chunk: &SuccessChunk) -> Result<(), ResponseViolation> {
        let protocol = self.request.protocol();
        let fork = chunk.fork.unwrap_or(Fork::Phase0);
        let fields = chunk_fields(protocol.response_kind(), fork, &chunk.ssz)?;
        if let (Some(slot), Some(got)) = (fields.slot, chunk.context) {
            let expected = self
                .schedule
                .digest_at(self.schedule.config().epoch_at_slot(slot));
            if expected != got {
                return Err(ResponseViolation::ContextMismatch {
                    slot,
                    expected,
                    got,
                });
            }
        }
        let slot = fields.slot.unwrap_or_default();
        let index = fields.index.unwrap_or_default();
        match &self.request {
            Request::BeaconBlocksByRangeV1(r) | Request::BeaconBlocksByRangeV2(r) => {
                self.in_range(slot, r.start_slot, r.count)?;
                self.ascending(slot, 0)?;
            }
            Request::BlobSidecarsByRange(r) => {
                self.in_range(slot, r.start_slot, r.count)?;
                if index >= self.limits.max_blobs_per_block {
                    return Err(ResponseViolation::BadIndex(index));
                }
                self.ascending(slot, index)?;
            }
            Request::DataColumnSidecarsByRange(r) => {
                self.in_range(slot, r.start_slot, r.count)?;
                if !r.columns.contains(&index) {
                    return Err(ResponseViolation::BadIndex(index));
                }
                self.ascending(slot, index)?;
            }
            Request::BeaconBlocksByHead(_) => {
                if self.last.is_some_and(|(s, _)| slot >= s) {
                    return Err(ResponseViolation::OutOfOrder { slot, index: 0 });
                }
                self.last = Some((slot, 0));
            }
            Request::BeaconBlocksByRootV1(_) | Request::BeaconBlocksByRootV2(_) => {
                if let Some(f) = &self.block_root {
                    let root = f(fork, &chunk.ssz).ok_or(ResponseViolation::Malformed("block"))?;
                    self.requested_once(root, 0)?;
                }
            }
            Request::BlobSidecarsByRoot(_)
            | Request::DataColumnSidecarsByRoot(_)
            | Request::ExecutionPayloadEnvelopesByRoot(_) => {
                let root = fields
                    .block_root
                    .ok_or(ResponseViolation::Malformed("block root"))?;
                self.requested_once(root, index)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn in_range(&self, slot: Slot, start: Slot, count: u64) -> Result<(), ResponseViolation> {
        if slot < start || slot - start >= count {
            return Err(ResponseViolation::SlotOutOfRange { slot, start, count });
        }
        Ok(())
    }

    fn ascending(&mut self, slot: Slot, index: u64) -> Result<(), ResponseViolation> {
        if self.last.is_some_and(|last| (slot, index) <= last) {
            return Err(ResponseViolation::OutOfOrder { slot, index });
        }
        self.last = Some((slot, index));
        Ok(())
    }

    fn requested_once(&mut self, root: Root, index: u64) -> Result<(), ResponseViolation> {
        if !self.requested.contains(&(root, index)) {
            return Err(ResponseViolation::NotRequested { root, index });
        }
        if !self.seen.insert((root, index)) {
            return Err(ResponseViolation::Duplicate { root, index });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_header_root_is_the_depth_3_zero_hash() {
        // zerohashes[3] of SSZ merkleization (zerohashes[2] is db56114e…).
        let expected = "c78009fdf07fc56a11f122370658a353aaa542ed63e44c4bc15ff4cd105ab33c";
        assert_eq!(hex(&block_header_root(&[0; 112])), expected);
    }
}
