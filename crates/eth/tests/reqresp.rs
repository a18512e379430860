//! Req/Resp SSZ containers: encodings checked against bytes built by hand from the spec's
//! layouts (shared/specs/06 §5 and the worked examples of 07 §1; the consensus-spec-tests SSZ
//! vectors do not cover these containers), decoding hardening, length bounds and the limit
//! checks.

use plexus_eth::ssz::{Decode, Encode};
use plexus_eth::ssz_types::{BitVector, VariableList};
use plexus_eth::*;
use proptest::prelude::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap()
}

const R1: [u8; 32] = [0x11; 32];
const R2: [u8; 32] = [0x22; 32];

/// Encode, compare with the expected bytes, decode back, and check the length is within the
/// type's bounds.
fn vector<T: Encode + Decode + SszBounds + PartialEq + std::fmt::Debug>(value: T, bytes: &[u8]) {
    assert_eq!(value.as_ssz_bytes(), bytes, "{value:?}");
    assert_eq!(decode_ssz::<T>(bytes).unwrap(), value);
    assert!((T::ssz_min_len()..=T::ssz_max_len()).contains(&bytes.len()));
}

fn bits<N: plexus_eth::ssz_types::typenum::Unsigned + Clone>(set: &[usize]) -> BitVector<N> {
    let mut b = BitVector::<N>::new();
    for i in set {
        b.set(*i, true).unwrap();
    }
    b
}

fn list<T, N: plexus_eth::ssz_types::typenum::Unsigned>(v: Vec<T>) -> VariableList<T, N> {
    VariableList::new(v).unwrap()
}

#[test]
fn status_goodbye_ping_vectors() {
    let v1 = StatusV1 {
        fork_digest: ForkDigest([0xb5, 0x30, 0x3f, 0x2a]),
        finalized_root: R1,
        finalized_epoch: 5,
        head_root: R2,
        head_slot: 200,
    };
    let v1_bytes = [
        hex("b5303f2a"),
        R1.to_vec(),
        hex("0500000000000000"),
        R2.to_vec(),
        hex("c800000000000000"),
    ]
    .concat();
    assert_eq!(v1_bytes.len(), 84);
    vector(v1, &v1_bytes);
    let v2 = StatusV2 {
        fork_digest: v1.fork_digest,
        finalized_root: R1,
        finalized_epoch: 5,
        head_root: R2,
        head_slot: 200,
        earliest_available_slot: 0x0102,
    };
    vector(v2, &[v1_bytes, hex("0201000000000000")].concat());
    assert_eq!(StatusV1::from(v2), v1);
    vector(
        Goodbye::from(GoodbyeReason::IrrelevantNetwork),
        &hex("0200000000000000"),
    );
    vector(Ping(1), &hex("0100000000000000"));
}

#[test]
fn goodbye_reasons_are_named() {
    for (code, reason) in [
        (1, GoodbyeReason::ClientShutdown),
        (2, GoodbyeReason::IrrelevantNetwork),
        (3, GoodbyeReason::Fault),
        (128, GoodbyeReason::UnableToVerifyNetwork),
        (129, GoodbyeReason::TooManyPeers),
        (250, GoodbyeReason::BadScore),
        (251, GoodbyeReason::Banned),
        (252, GoodbyeReason::BannedIp),
        (4, GoodbyeReason::Other(4)),
        (u64::MAX, GoodbyeReason::Other(u64::MAX)),
    ] {
        assert_eq!(GoodbyeReason::from(code), reason);
        assert_eq!(reason.code(), code);
        assert_eq!(Goodbye(code).reason(), reason);
    }
}

/// 07 §1: MetaData v2 {seq 1, attnets bits 0 and 9, syncnets bit 1} =
/// `0100000000000000 0102000000000000 02`.
#[test]
fn metadata_vectors() {
    vector(
        MetaDataV1 {
            seq_number: 1,
            attnets: bits(&[0, 9]),
        },
        &hex("0100000000000000 0102000000000000"),
    );
    vector(
        MetaDataV2 {
            seq_number: 1,
            attnets: bits(&[0, 9]),
            syncnets: bits(&[1]),
        },
        &hex("0100000000000000 0102000000000000 02"),
    );
    vector(
        MetaDataV3 {
            seq_number: 1,
            attnets: bits(&[0, 9]),
            syncnets: bits(&[1]),
            custody_group_count: 128,
        },
        &hex("0100000000000000 0102000000000000 02 8000000000000000"),
    );
    // Syncnets is a Bitvector[4]: the high four bits of its byte must be zero.
    assert!(decode_ssz::<MetaDataV2>(&hex("0100000000000000 0102000000000000 12")).is_err());
    assert!(decode_ssz::<MetaDataV2>(&hex("0100000000000000 0102000000000000")).is_err());
    assert!(
        decode_ssz::<MetaDataV3>(&hex("0100000000000000 0102000000000000 02 80000000000000"))
            .is_err()
    );
}

#[test]
fn block_and_blob_request_vectors() {
    vector(
        BeaconBlocksByRangeRequest {
            start_slot: 16,
            count: 64,
            step: 1,
        },
        &hex("1000000000000000 4000000000000000 0100000000000000"),
    );
    vector(
        BeaconBlocksByRootRequest(list(vec![R1, R2])),
        &[R1, R2].concat(),
    );
    vector(BeaconBlocksByRootRequest(list(vec![])), &[]);
    vector(
        BlobSidecarsByRangeRequest {
            start_slot: 5,
            count: 2,
        },
        &hex("0500000000000000 0200000000000000"),
    );
    let id = BlobIdentifier {
        block_root: R1,
        index: 3,
    };
    assert_eq!(
        id.as_ssz_bytes(),
        [R1.to_vec(), hex("0300000000000000")].concat()
    );
    vector(
        BlobSidecarsByRootRequest(list(vec![
            id,
            BlobIdentifier {
                block_root: R2,
                index: 0,
            },
        ])),
        &[
            R1.to_vec(),
            hex("0300000000000000"),
            R2.to_vec(),
            hex("0000000000000000"),
        ]
        .concat(),
    );
    vector(
        BeaconBlocksByHeadRequest {
            beacon_root: R1,
            count: 64,
        },
        &[R1.to_vec(), hex("4000000000000000")].concat(),
    );
    vector(
        ExecutionPayloadEnvelopesByRangeRequest {
            start_slot: 7,
            count: 1,
        },
        &hex("0700000000000000 0100000000000000"),
    );
    vector(ExecutionPayloadEnvelopesByRootRequest(list(vec![R2])), &R2);
    vector(LightClientBootstrapRequest(R1), &R1);
    vector(
        LightClientUpdatesByRangeRequest {
            start_period: 10,
            count: 3,
        },
        &hex("0a00000000000000 0300000000000000"),
    );
    vector(ErrorMessage::new("bad"), b"bad");
    assert_eq!(ErrorMessage::new(&"é".repeat(200)).0.len(), 256);
    assert_eq!(
        ErrorMessage(list(vec![0xff, b'x'])).to_string_lossy(),
        "\u{fffd}x"
    );
}

/// 07 §1: DataColumnsByRootIdentifier {R, [0, 5]} = `R ‖ 24000000 ‖ 0000000000000000 ‖
/// 0500000000000000`, and a one-element request wraps it as `04000000 ‖ …`.
#[test]
fn data_column_request_vectors() {
    let cols = |c: Vec<u64>| -> DataColumnIndices { list(c) };
    let ident = DataColumnsByRootIdentifier {
        block_root: R1,
        columns: cols(vec![0, 5]),
    };
    let ident_bytes = [
        R1.to_vec(),
        hex("24000000 0000000000000000 0500000000000000"),
    ]
    .concat();
    vector(ident.clone(), &ident_bytes);
    vector(
        DataColumnSidecarsByRootRequest(list(vec![ident.clone()])),
        &[hex("04000000"), ident_bytes.clone()].concat(),
    );
    // Two identifiers: offsets 8 and 8 + 52 = 60.
    let second = DataColumnsByRootIdentifier {
        block_root: R2,
        columns: cols(vec![127]),
    };
    let second_bytes = [R2.to_vec(), hex("24000000 7f00000000000000")].concat();
    vector(
        DataColumnSidecarsByRootRequest(list(vec![ident, second])),
        &[hex("08000000 3c000000"), ident_bytes, second_bytes].concat(),
    );
    vector(
        DataColumnSidecarsByRangeRequest {
            start_slot: 1,
            count: 2,
            columns: cols(vec![0, 5]),
        },
        &hex("0100000000000000 0200000000000000 14000000 0000000000000000 0500000000000000"),
    );
    vector(
        DataColumnSidecarsByRangeRequest {
            start_slot: 1,
            count: 2,
            columns: cols(vec![]),
        },
        &hex("0100000000000000 0200000000000000 14000000"),
    );
}

#[test]
fn malformed_encodings_are_rejected() {
    assert!(decode_ssz::<StatusV1>(&[0u8; 83]).is_err());
    assert!(decode_ssz::<StatusV1>(&[0u8; 85]).is_err());
    assert!(decode_ssz::<StatusV2>(&[0u8; 84]).is_err());
    assert!(decode_ssz::<Ping>(&[0u8; 9]).is_err());
    assert!(decode_ssz::<BeaconBlocksByRootRequest>(&[0u8; 33]).is_err());
    assert!(
        decode_ssz::<BeaconBlocksByRootRequest>(&vec![0u8; 1025 * 32]).is_err(),
        "above the SSZ limit"
    );
    assert!(decode_ssz::<BeaconBlocksByRootRequest>(&vec![0u8; 1024 * 32]).is_ok());
    assert!(decode_ssz::<BlobSidecarsByRootRequest>(&vec![0u8; 1153 * 40]).is_err());
    assert!(decode_ssz::<ExecutionPayloadEnvelopesByRootRequest>(&vec![0u8; 129 * 32]).is_err());
    assert!(decode_ssz::<ErrorMessage>(&[b'x'; 257]).is_err());
    // DataColumnSidecarsByRange: wrong offset, columns not whole, too many columns.
    let head = hex("0100000000000000 0200000000000000");
    assert!(
        decode_ssz::<DataColumnSidecarsByRangeRequest>(
            &[head.clone(), hex("15000000 00")].concat()
        )
        .is_err()
    );
    assert!(
        decode_ssz::<DataColumnSidecarsByRangeRequest>(
            &[head.clone(), hex("14000000 0000")].concat()
        )
        .is_err()
    );
    let too_many = [head.clone(), hex("14000000"), vec![0u8; 129 * 8]].concat();
    assert!(decode_ssz::<DataColumnSidecarsByRangeRequest>(&too_many).is_err());
    assert!(decode_ssz::<DataColumnSidecarsByRangeRequest>(&head).is_err());
    // DataColumnSidecarsByRoot: offsets into nowhere, not a multiple of 4, decreasing.
    assert!(decode_ssz::<DataColumnSidecarsByRootRequest>(&hex("00000000")).is_err());
    assert!(decode_ssz::<DataColumnSidecarsByRootRequest>(&hex("05000000 00")).is_err());
    assert!(decode_ssz::<DataColumnSidecarsByRootRequest>(&hex("08000000 04000000")).is_err());
    let one = [R1.to_vec(), hex("24000000")].concat();
    assert!(
        decode_ssz::<DataColumnSidecarsByRootRequest>(
            &[hex("04000000"), one.clone(), vec![0]].concat()
        )
        .is_err()
    );
    assert!(
        decode_ssz::<DataColumnSidecarsByRootRequest>(&[hex("04000000"), one].concat()).is_ok()
    );
}

#[test]
fn length_bounds_are_those_of_the_extreme_values() {
    fn fixed<T: SszBounds>() -> (usize, usize) {
        (T::ssz_min_len(), T::ssz_max_len())
    }
    assert_eq!(fixed::<StatusV1>(), (84, 84));
    assert_eq!(fixed::<StatusV2>(), (92, 92));
    assert_eq!(fixed::<MetaDataV1>(), (16, 16));
    assert_eq!(fixed::<MetaDataV2>(), (17, 17));
    assert_eq!(fixed::<MetaDataV3>(), (25, 25));
    assert_eq!(fixed::<Goodbye>(), (8, 8));
    assert_eq!(fixed::<Ping>(), (8, 8));
    assert_eq!(fixed::<BeaconBlocksByRangeRequest>(), (24, 24));
    assert_eq!(fixed::<BlobSidecarsByRangeRequest>(), (16, 16));
    assert_eq!(fixed::<BeaconBlocksByHeadRequest>(), (40, 40));
    assert_eq!(fixed::<ExecutionPayloadEnvelopesByRangeRequest>(), (16, 16));
    assert_eq!(fixed::<LightClientBootstrapRequest>(), (32, 32));
    assert_eq!(fixed::<LightClientUpdatesByRangeRequest>(), (16, 16));
    assert_eq!(fixed::<EnrForkId>(), (16, 16));

    let full_cols = || -> DataColumnIndices { list((0..128).collect()) };
    let max_ident = DataColumnsByRootIdentifier {
        block_root: R1,
        columns: full_cols(),
    };
    let min_ident = DataColumnsByRootIdentifier {
        block_root: R1,
        columns: list(vec![]),
    };
    assert_eq!(
        max_ident.as_ssz_bytes().len(),
        DataColumnsByRootIdentifier::ssz_max_len()
    );
    assert_eq!(
        min_ident.as_ssz_bytes().len(),
        DataColumnsByRootIdentifier::ssz_min_len()
    );
    let max_by_root = DataColumnSidecarsByRootRequest(list(vec![max_ident; 128]));
    assert_eq!(
        max_by_root.as_ssz_bytes().len(),
        DataColumnSidecarsByRootRequest::ssz_max_len()
    );
    let range = |columns| DataColumnSidecarsByRangeRequest {
        start_slot: 0,
        count: 0,
        columns,
    };
    assert_eq!(
        range(full_cols()).as_ssz_bytes().len(),
        DataColumnSidecarsByRangeRequest::ssz_max_len()
    );
    assert_eq!(
        range(list(vec![])).as_ssz_bytes().len(),
        DataColumnSidecarsByRangeRequest::ssz_min_len()
    );
    assert_eq!(
        BeaconBlocksByRootRequest(list(vec![R1; 1024]))
            .as_ssz_bytes()
            .len(),
        BeaconBlocksByRootRequest::ssz_max_len()
    );
    let id = BlobIdentifier {
        block_root: R1,
        index: 0,
    };
    assert_eq!(
        BlobSidecarsByRootRequest(list(vec![id; 1152]))
            .as_ssz_bytes()
            .len(),
        BlobSidecarsByRootRequest::ssz_max_len()
    );
    assert_eq!(
        ExecutionPayloadEnvelopesByRootRequest(list(vec![R1; 128]))
            .as_ssz_bytes()
            .len(),
        ExecutionPayloadEnvelopesByRootRequest::ssz_max_len()
    );
    assert_eq!(
        ErrorMessage(list(vec![0; 256])).as_ssz_bytes().len(),
        ErrorMessage::ssz_max_len()
    );
    for (min, _) in [
        (BeaconBlocksByRootRequest::ssz_min_len(), 0),
        (BlobSidecarsByRootRequest::ssz_min_len(), 0),
        (DataColumnSidecarsByRootRequest::ssz_min_len(), 0),
        (ExecutionPayloadEnvelopesByRootRequest::ssz_min_len(), 0),
        (ErrorMessage::ssz_min_len(), 0),
    ] {
        assert_eq!(min, 0, "an empty list encodes to nothing");
    }
}

#[test]
fn request_limits_follow_the_fork() {
    let c = Network::Mainnet.config();
    let phase0 = c.request_limits(Fork::Phase0);
    let deneb = c.request_limits(Fork::Deneb);
    let electra = c.request_limits(Fork::Electra);
    let fulu = c.request_limits(Fork::Fulu);
    assert_eq!(
        (phase0.max_request_blocks, deneb.max_request_blocks),
        (1024, 128)
    );
    assert_eq!(
        (
            deneb.max_request_blob_sidecars,
            electra.max_request_blob_sidecars
        ),
        (768, 1152)
    );
    assert_eq!(fulu.max_request_data_column_sidecars, 16384);
    assert_eq!(fulu.max_request_payloads, 128);

    let roots = |n: usize| BeaconBlocksByRootRequest(list(vec![R1; n]));
    assert_eq!(roots(1024).validate(&phase0), Ok(()));
    assert_eq!(roots(128).validate(&deneb), Ok(()));
    assert_eq!(
        roots(129).validate(&deneb),
        Err(RequestError::TooMany { len: 129, max: 128 })
    );
    let ids = |n: usize| {
        BlobSidecarsByRootRequest(list(vec![
            BlobIdentifier {
                block_root: R1,
                index: 0
            };
            n
        ]))
    };
    assert_eq!(
        ids(769).validate(&deneb),
        Err(RequestError::TooMany { len: 769, max: 768 })
    );
    assert_eq!(ids(769).validate(&electra), Ok(()));
    let envelopes = ExecutionPayloadEnvelopesByRootRequest(list(vec![R1; 100]));
    let mut small = c.clone();
    small.max_request_payloads = 64;
    assert_eq!(envelopes.validate(&fulu), Ok(()));
    assert_eq!(
        envelopes.validate(&small.request_limits(Fork::Gloas)),
        Err(RequestError::TooMany { len: 100, max: 64 })
    );

    let by_range = |start_slot, count, step| BeaconBlocksByRangeRequest {
        start_slot,
        count,
        step,
    };
    assert_eq!(by_range(0, 5000, 1).validate(), Ok(()));
    assert_eq!(by_range(0, 5000, 1).max_response_chunks(&deneb), 128);
    assert_eq!(by_range(0, 5000, 1).max_response_chunks(&phase0), 1024);
    assert_eq!(by_range(0, 10, 2).max_response_chunks(&deneb), 1);
    assert_eq!(by_range(0, 10, 0).validate(), Err(RequestError::ZeroStep));
    assert_eq!(
        by_range(u64::MAX, 2, 1).validate(),
        Err(RequestError::RangeOverflow {
            start: u64::MAX,
            count: 2
        })
    );
    assert_eq!(
        BlobSidecarsByRangeRequest {
            start_slot: 0,
            count: 10
        }
        .max_response_chunks(&electra),
        90
    );
    assert_eq!(
        BlobSidecarsByRangeRequest {
            start_slot: 0,
            count: u64::MAX
        }
        .max_response_chunks(&electra),
        1152
    );
    assert_eq!(
        BeaconBlocksByHeadRequest {
            beacon_root: R1,
            count: 500
        }
        .max_response_chunks(&fulu),
        128
    );
    assert_eq!(
        LightClientUpdatesByRangeRequest {
            start_period: 0,
            count: 500
        }
        .max_response_chunks(),
        128
    );

    let cols = |c: Vec<u64>| -> DataColumnIndices { list(c) };
    let range = |columns| DataColumnSidecarsByRangeRequest {
        start_slot: 0,
        count: 200,
        columns,
    };
    assert_eq!(range(cols(vec![0, 127])).validate(&fulu), Ok(()));
    assert_eq!(range(cols(vec![0, 127])).max_response_chunks(&fulu), 400);
    assert_eq!(
        range(cols((0..128).collect())).max_response_chunks(&fulu),
        16384
    );
    assert_eq!(
        range(cols(vec![128])).validate(&fulu),
        Err(RequestError::ColumnOutOfRange(128))
    );
    assert_eq!(
        range(cols(vec![3, 3])).validate(&fulu),
        Err(RequestError::DuplicateColumn(3))
    );
    let ident = |c| DataColumnsByRootIdentifier {
        block_root: R1,
        columns: cols(c),
    };
    let by_root = DataColumnSidecarsByRootRequest(list(vec![ident(vec![1, 2]), ident(vec![2])]));
    assert_eq!(by_root.validate(&fulu), Ok(()));
    assert_eq!(by_root.max_response_chunks(), 3);
    let dup = DataColumnSidecarsByRootRequest(list(vec![ident(vec![9, 9])]));
    assert_eq!(dup.validate(&fulu), Err(RequestError::DuplicateColumn(9)));
    let mut tight = c.clone();
    tight.max_request_blocks_deneb = 1;
    let tight = tight.request_limits(Fork::Fulu);
    assert_eq!(
        by_root.validate(&tight),
        Err(RequestError::TooMany { len: 2, max: 1 })
    );
    let wide = DataColumnSidecarsByRootRequest(list(vec![ident((0..100).collect())]));
    assert_eq!(wide.validate(&tight), Ok(()));
    let wider = DataColumnSidecarsByRootRequest(list(vec![ident((0..128).collect())]));
    assert_eq!(wider.validate(&tight), Ok(()));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = decode_ssz::<StatusV2>(&data);
        let _ = decode_ssz::<MetaDataV3>(&data);
        let _ = decode_ssz::<BeaconBlocksByRootRequest>(&data);
        let _ = decode_ssz::<BlobSidecarsByRootRequest>(&data);
        let _ = decode_ssz::<DataColumnSidecarsByRangeRequest>(&data);
        if let Ok(r) = decode_ssz::<DataColumnSidecarsByRootRequest>(&data) {
            // Whatever decodes re-encodes to the same bytes (canonical).
            prop_assert_eq!(r.as_ssz_bytes(), data.clone());
            prop_assert!(data.len() <= DataColumnSidecarsByRootRequest::ssz_max_len());
        }
    }

    #[test]
    fn data_column_range_round_trips(start in any::<u64>(), count in any::<u64>(), cols in proptest::collection::vec(0u64..128, 0..128)) {
        let r = DataColumnSidecarsByRangeRequest { start_slot: start, count, columns: list(cols) };
        let bytes = r.as_ssz_bytes();
        prop_assert_eq!(bytes.len(), 20 + 8 * r.columns.len());
        prop_assert_eq!(decode_ssz::<DataColumnSidecarsByRangeRequest>(&bytes).unwrap(), r);
    }
}
