//! Response chunks checked against their request: context digest against the object's slot,
//! slot range and order, requested roots and indices, duplicates.

mod common;

use std::sync::Arc;

use common::*;
use plexus_eth::ssz_types::VariableList;
use plexus_eth::{
    BeaconBlocksByHeadRequest, BeaconBlocksByRangeRequest, BeaconBlocksByRootRequest,
    BlobIdentifier, BlobSidecarsByRootRequest, DataColumnSidecarsByRangeRequest, Fork,
    ForkSchedule, Slot,
};
use plexus_reqresp::{
    BlockRootFn, Protocol, Request, ResponseChecker, ResponseViolation, SuccessChunk,
    block_header_root,
};

fn block_chunk(s: &ForkSchedule, slot: Slot) -> SuccessChunk {
    let epoch = s.config().epoch_at_slot(slot);
    SuccessChunk {
        fork: Some(s.fork_at(epoch)),
        context: Some(s.digest_at(epoch)),
        ssz: fake_block(slot, 1_200),
    }
}

fn checker(s: &Arc<ForkSchedule>, req: Request, root: Option<BlockRootFn>) -> ResponseChecker {
    let limits = s.config().request_limits(Fork::Fulu);
    ResponseChecker::new(req, s.clone(), limits, root)
}

#[test]
fn blocks_by_range_slots_in_range_and_ascending() {
    let s = mainnet();
    let start = slot_of(&s, Fork::Deneb);
    let req = Request::BeaconBlocksByRangeV2(BeaconBlocksByRangeRequest {
        start_slot: start,
        count: 10,
        step: 1,
    });
    let mut c = checker(&s, req.clone(), None);
    c.check(&block_chunk(&s, start)).unwrap();
    c.check(&block_chunk(&s, start + 3)).unwrap();
    assert_eq!(
        c.check(&block_chunk(&s, start + 3)),
        Err(ResponseViolation::OutOfOrder {
            slot: start + 3,
            index: 0
        })
    );
    let mut c = checker(&s, req.clone(), None);
    assert_eq!(
        c.check(&block_chunk(&s, start + 10)),
        Err(ResponseViolation::SlotOutOfRange {
            slot: start + 10,
            start,
            count: 10
        })
    );
    assert!(matches!(
        c.check(&block_chunk(&s, start - 1)),
        Err(ResponseViolation::SlotOutOfRange { .. })
    ));
    // The right bytes under the digest of another epoch's fork.
    let mut wrong = block_chunk(&s, start + 1);
    wrong.context = Some(digest_of(&s, Fork::Capella));
    assert_eq!(
        c.check(&wrong),
        Err(ResponseViolation::ContextMismatch {
            slot: start + 1,
            expected: digest_of(&s, Fork::Deneb),
            got: digest_of(&s, Fork::Capella),
        })
    );
    // A block whose message offset is not 100 cannot be a SignedBeaconBlock.
    let mut bad = block_chunk(&s, start + 2);
    bad.ssz[0] = 99;
    assert!(matches!(
        c.check(&bad),
        Err(ResponseViolation::Malformed(_))
    ));
}

#[test]
fn blocks_by_head_descending() {
    let s = mainnet();
    let req = Request::BeaconBlocksByHead(BeaconBlocksByHeadRequest {
        beacon_root: [1; 32],
        count: 5,
    });
    let top = slot_of(&s, Fork::Fulu) + 40;
    let mut c = checker(&s, req, None);
    c.check(&block_chunk(&s, top)).unwrap();
    c.check(&block_chunk(&s, top - 2)).unwrap();
    assert!(matches!(
        c.check(&block_chunk(&s, top - 1)),
        Err(ResponseViolation::OutOfOrder { .. })
    ));
}

#[test]
fn blocks_by_root_with_a_root_function() {
    let s = mainnet();
    let slot = slot_of(&s, Fork::Electra) + 5;
    // A stand-in root: the slot in the first 8 bytes.
    let root_of = |slot: Slot| {
        let mut r = [0u8; 32];
        r[..8].copy_from_slice(&slot.to_le_bytes());
        r
    };
    let f: BlockRootFn = Arc::new(move |_, ssz: &[u8]| {
        let slot = u64::from_le_bytes(ssz.get(100..108)?.try_into().ok()?);
        Some(root_of(slot))
    });
    let req = Request::BeaconBlocksByRootV2(BeaconBlocksByRootRequest(
        VariableList::new(vec![root_of(slot)]).unwrap(),
    ));
    let mut c = checker(&s, req, Some(f));
    c.check(&block_chunk(&s, slot)).unwrap();
    assert!(matches!(
        c.check(&block_chunk(&s, slot)),
        Err(ResponseViolation::Duplicate { index: 0, .. })
    ));
    assert!(matches!(
        c.check(&block_chunk(&s, slot + 1)),
        Err(ResponseViolation::NotRequested { .. })
    ));
}

#[test]
fn blob_sidecars_by_root_identifiers() {
    let s = mainnet();
    let slot = slot_of(&s, Fork::Deneb) + 1;
    let sidecar = fake_blob_sidecar(slot, 2, 0xab);
    let root = block_header_root(&blob_header(&sidecar));
    let req = Request::BlobSidecarsByRoot(BlobSidecarsByRootRequest(
        VariableList::new(vec![BlobIdentifier {
            block_root: root,
            index: 2,
        }])
        .unwrap(),
    ));
    let chunk = |ssz: Vec<u8>| SuccessChunk {
        fork: Some(Fork::Deneb),
        context: Some(digest_of(&s, Fork::Deneb)),
        ssz,
    };
    let mut c = checker(&s, req, None);
    c.check(&chunk(sidecar.clone())).unwrap();
    assert_eq!(
        c.check(&chunk(sidecar)),
        Err(ResponseViolation::Duplicate { root, index: 2 })
    );
    // Index 1 of the same block, and index 2 of another block, were not asked for.
    assert_eq!(
        c.check(&chunk(fake_blob_sidecar(slot, 1, 0xab))),
        Err(ResponseViolation::NotRequested { root, index: 1 })
    );
    assert!(matches!(
        c.check(&chunk(fake_blob_sidecar(slot, 2, 0xac))),
        Err(ResponseViolation::NotRequested { index: 2, .. })
    ));
}

#[test]
fn data_columns_by_range_columns_and_order() {
    let s = mainnet();
    let start = slot_of(&s, Fork::Fulu);
    let req = Request::DataColumnSidecarsByRange(DataColumnSidecarsByRangeRequest {
        start_slot: start,
        count: 4,
        columns: VariableList::new(vec![3, 9]).unwrap(),
    });
    let chunk = |slot: Slot, index: u64| SuccessChunk {
        fork: Some(Fork::Fulu),
        context: Some(s.digest_at(s.config().epoch_at_slot(slot))),
        ssz: fake_column(slot, index, 1),
    };
    let mut c = checker(&s, req, None);
    c.check(&chunk(start, 3)).unwrap();
    c.check(&chunk(start, 9)).unwrap();
    c.check(&chunk(start + 1, 3)).unwrap();
    assert_eq!(
        c.check(&chunk(start + 1, 4)),
        Err(ResponseViolation::BadIndex(4))
    );
    assert!(matches!(
        c.check(&chunk(start, 9)),
        Err(ResponseViolation::OutOfOrder { .. })
    ));
    assert!(matches!(
        c.check(&chunk(start + 4, 3)),
        Err(ResponseViolation::SlotOutOfRange { .. })
    ));
}

#[test]
fn protocol_table() {
    assert_eq!(
        Protocol::BeaconBlocksByRangeV2.id(),
        "/eth2/beacon_chain/req/beacon_blocks_by_range/2/ssz_snappy"
    );
    for p in Protocol::ALL {
        assert_eq!(Protocol::from_id(p.id()), Some(p));
        assert_eq!(
            p.id(),
            format!(
                "/eth2/beacon_chain/req/{}/{}/ssz_snappy",
                p.name(),
                p.version()
            )
        );
    }
    assert_eq!(
        Protocol::from_id("/eth2/beacon_chain/req/status/1/ssz"),
        None
    );
    let with_context: Vec<&str> = Protocol::ALL
        .iter()
        .filter(|p| p.has_context_bytes())
        .map(|p| p.id())
        .collect();
    assert_eq!(with_context.len(), 13);
    for p in [
        Protocol::StatusV1,
        Protocol::StatusV2,
        Protocol::PingV1,
        Protocol::GoodbyeV1,
        Protocol::MetaDataV3,
        Protocol::BeaconBlocksByRangeV1,
        Protocol::BeaconBlocksByRootV1,
    ] {
        assert!(!p.has_context_bytes(), "{p}");
    }
    assert_eq!(
        Protocol::StatusV2.with_fallbacks(Fork::Fulu),
        [Protocol::StatusV2, Protocol::StatusV1]
    );
    assert_eq!(
        Protocol::MetaDataV3.with_fallbacks(Fork::Electra),
        [Protocol::MetaDataV2, Protocol::MetaDataV1]
    );
    // Response bounds per fork: a block type at every fork; sidecars only where they exist.
    let cfg = plexus_eth::Network::Mainnet.config();
    for f in Fork::ALL {
        assert!(
            Protocol::BeaconBlocksByRangeV2
                .response_bounds(f, &cfg)
                .is_some()
        );
        assert_eq!(
            Protocol::BlobSidecarsByRangeV1
                .response_bounds(f, &cfg)
                .is_some(),
            matches!(f, Fork::Deneb | Fork::Electra)
        );
        assert_eq!(
            Protocol::DataColumnSidecarsByRootV1
                .response_bounds(f, &cfg)
                .is_some(),
            f >= Fork::Fulu
        );
    }
    assert_eq!(
        Protocol::BeaconBlocksByRootV2.response_bounds(Fork::Fulu, &cfg),
        Some((1_120, 10 * 1024 * 1024))
    );
    assert_eq!(Protocol::StatusV2.request_bounds(), Some((92, 92)));
    assert_eq!(Protocol::MetaDataV2.request_bounds(), None);
}
