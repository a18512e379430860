//! The ssz_snappy codec: spec vectors, bytes produced independently (snap's framing encoder),
//! round trips of every protocol, split input, and every rejection with its typed error.

mod common;

use std::io::{Read, Write};

use common::*;
use plexus_eth::ssz_types::VariableList;
use plexus_eth::{
    BeaconBlocksByRangeRequest, BeaconBlocksByRootRequest, BlobIdentifier,
    BlobSidecarsByRangeRequest, BlobSidecarsByRootRequest, DataColumnSidecarsByRangeRequest,
    DataColumnSidecarsByRootRequest, DataColumnsByRootIdentifier, ErrorMessage,
    ExecutionPayloadEnvelopesByRangeRequest, ExecutionPayloadEnvelopesByRootRequest, Fork,
    ForkDigest, Goodbye, LightClientBootstrapRequest, LightClientUpdatesByRangeRequest, Ping,
    StatusV1, StatusV2, encode_ssz,
};
use plexus_reqresp::{
    Chunk, CodecConfig, CodecError, Protocol, Request, RequestDecoder, ResponseCode,
    STREAM_IDENTIFIER, SuccessChunk, decode_request_bytes, encode_error_chunk, encode_frames,
    encode_request, encode_success_chunk, encode_varint, masked_crc32c, status_answer,
};

fn request_bytes(req: &Request) -> Vec<u8> {
    let mut out = Vec::new();
    encode_request(
        req.protocol(),
        &req.to_ssz(),
        &CodecConfig::default(),
        &mut out,
    )
    .expect("encodes");
    out
}

fn decode_req(protocol: Protocol, bytes: &[u8]) -> Result<Vec<u8>, CodecError> {
    decode_request_bytes(protocol, CodecConfig::default(), bytes)
}

fn snap_frames(data: &[u8]) -> Vec<u8> {
    let mut w = snap::write::FrameEncoder::new(Vec::new());
    w.write_all(data).unwrap();
    w.into_inner().unwrap()
}

fn status() -> StatusV1 {
    StatusV1 {
        fork_digest: ForkDigest([0xb5, 0x30, 0x3f, 0x2a]),
        finalized_root: [0; 32],
        finalized_epoch: 1,
        head_root: [0; 32],
        head_slot: 1,
    }
}

/// 06-eth-reqresp.md §2: `ping/1` request for seq 1.
#[test]
fn ping_request_matches_spec_vector() {
    let vector = hex("08 ff060000734e61507059 01 0c0000 0175de41 0100000000000000");
    assert_eq!(request_bytes(&Request::Ping(Ping(1))), vector);
    let ssz = decode_req(Protocol::PingV1, &vector).unwrap();
    assert_eq!(
        Request::from_ssz(Protocol::PingV1, &ssz).unwrap(),
        Request::Ping(Ping(1))
    );
    // The same payload as a compressed chunk (type 0x00) is equally valid.
    let block = snap::raw::Encoder::new()
        .compress_vec(&1u64.to_le_bytes())
        .unwrap();
    let mut compressed = vec![0x08];
    compressed.extend_from_slice(&STREAM_IDENTIFIER);
    compressed.push(0x00);
    compressed.extend_from_slice(&((block.len() + 4) as u32).to_le_bytes()[..3]);
    compressed.extend_from_slice(&masked_crc32c(&1u64.to_le_bytes()).to_le_bytes());
    compressed.extend_from_slice(&block);
    assert_eq!(
        decode_req(Protocol::PingV1, &compressed).unwrap(),
        1u64.to_le_bytes()
    );
}

/// Our frames are byte for byte what snap's `FrameEncoder` (Lighthouse's and Grandine's
/// encoder) writes, for sizes across the 64 KiB chunk boundary, compressible or not; and
/// snap's `FrameDecoder` reads ours.
#[test]
fn frames_match_snap_frame_encoder() {
    let mut rng = 0x1234_5678_u64;
    for len in [0usize, 1, 8, 84, 1000, 65_535, 65_536, 65_537, 200_000] {
        for random in [false, true] {
            let data: Vec<u8> = (0..len)
                .map(|i| {
                    if random {
                        rng ^= rng << 13;
                        rng ^= rng >> 7;
                        rng ^= rng << 17;
                        rng as u8
                    } else {
                        (i / 100) as u8
                    }
                })
                .collect();
            let mut ours = Vec::new();
            encode_frames(&data, &mut ours);
            assert_eq!(ours, snap_frames(&data), "len {len} random {random}");
            let mut back = Vec::new();
            snap::read::FrameDecoder::new(&ours[..])
                .read_to_end(&mut back)
                .unwrap();
            assert_eq!(back, data);
        }
    }
}

/// Lighthouse's codec test: this Status v1 encodes to 42 framed bytes.
#[test]
fn status_frames_as_lighthouse_measures() {
    let s = StatusV1 {
        fork_digest: ForkDigest([0; 4]),
        finalized_root: [0; 32],
        finalized_epoch: 1,
        head_root: [0; 32],
        head_slot: 1,
    };
    let mut frames = Vec::new();
    encode_frames(&encode_ssz(&s), &mut frames);
    assert_eq!(frames.len(), 42);
}

fn sample_requests() -> Vec<Request> {
    let roots: VariableList<[u8; 32], _> = VariableList::new(vec![[7u8; 32], [8u8; 32]]).unwrap();
    let range = BeaconBlocksByRangeRequest {
        start_slot: 100,
        count: 64,
        step: 1,
    };
    vec![
        Request::StatusV1(status()),
        Request::StatusV2(StatusV2 {
            fork_digest: ForkDigest([1, 2, 3, 4]),
            finalized_root: [9; 32],
            finalized_epoch: 10,
            head_root: [3; 32],
            head_slot: 400,
            earliest_available_slot: 12,
        }),
        Request::Goodbye(Goodbye(1)),
        Request::Ping(Ping(u64::MAX)),
        Request::MetaDataV1,
        Request::MetaDataV2,
        Request::MetaDataV3,
        Request::BeaconBlocksByRangeV1(range),
        Request::BeaconBlocksByRangeV2(range),
        Request::BeaconBlocksByRootV1(BeaconBlocksByRootRequest(roots.clone())),
        Request::BeaconBlocksByRootV2(BeaconBlocksByRootRequest(roots.clone())),
        Request::BlobSidecarsByRange(BlobSidecarsByRangeRequest {
            start_slot: 5,
            count: 2,
        }),
        Request::BlobSidecarsByRoot(BlobSidecarsByRootRequest(
            VariableList::new(vec![BlobIdentifier {
                block_root: [1; 32],
                index: 3,
            }])
            .unwrap(),
        )),
        Request::DataColumnSidecarsByRange(DataColumnSidecarsByRangeRequest {
            start_slot: 1,
            count: 2,
            columns: VariableList::new(vec![0, 5, 127]).unwrap(),
        }),
        Request::DataColumnSidecarsByRoot(DataColumnSidecarsByRootRequest(
            VariableList::new(vec![DataColumnsByRootIdentifier {
                block_root: [4; 32],
                columns: VariableList::new(vec![0, 5]).unwrap(),
            }])
            .unwrap(),
        )),
        Request::BeaconBlocksByHead(plexus_eth::BeaconBlocksByHeadRequest {
            beacon_root: [2; 32],
            count: 16,
        }),
        Request::LightClientBootstrap(LightClientBootstrapRequest([5; 32])),
        Request::LightClientUpdatesByRange(LightClientUpdatesByRangeRequest {
            start_period: 3,
            count: 4,
        }),
        Request::LightClientFinalityUpdate,
        Request::LightClientOptimisticUpdate,
        Request::ExecutionPayloadEnvelopesByRange(ExecutionPayloadEnvelopesByRangeRequest {
            start_slot: 9,
            count: 1,
        }),
        Request::ExecutionPayloadEnvelopesByRoot(ExecutionPayloadEnvelopesByRootRequest(
            VariableList::new(vec![[7u8; 32]]).unwrap(),
        )),
    ]
}

/// Every protocol's request encodes to varint + frames (or nothing) and decodes back, whole
/// and one byte at a time; the frames are snap's.
#[test]
fn every_request_round_trips() {
    let requests = sample_requests();
    let protocols: std::collections::HashSet<Protocol> =
        requests.iter().map(|r| r.protocol()).collect();
    assert_eq!(
        protocols.len(),
        Protocol::ALL.len(),
        "one sample per protocol"
    );
    for req in requests {
        let p = req.protocol();
        let bytes = request_bytes(&req);
        if p.has_empty_request() {
            assert!(
                bytes.is_empty(),
                "{p}: no bytes at all for an empty request"
            );
        } else {
            let ssz = req.to_ssz();
            let mut expected = Vec::new();
            encode_varint(ssz.len() as u64, &mut expected);
            expected.extend_from_slice(&snap_frames(&ssz));
            assert_eq!(bytes, expected, "{p}");
        }
        let whole = decode_req(p, &bytes).unwrap();
        assert_eq!(Request::from_ssz(p, &whole).unwrap(), req, "{p}");
        let mut dec = RequestDecoder::new(p, CodecConfig::default());
        for b in &bytes {
            dec.feed(std::slice::from_ref(b)).unwrap();
        }
        assert_eq!(dec.finish().unwrap(), whole, "{p} split");
    }
}

/// The spec notes' worked example: a one-identifier DataColumnSidecarsByRoot request.
#[test]
fn data_columns_by_root_ssz_layout() {
    let req = DataColumnSidecarsByRootRequest(
        VariableList::new(vec![DataColumnsByRootIdentifier {
            block_root: [0xaa; 32],
            columns: VariableList::new(vec![0, 5]).unwrap(),
        }])
        .unwrap(),
    );
    let mut expected = hex("04000000");
    expected.extend_from_slice(&[0xaa; 32]);
    expected.extend_from_slice(&hex("24000000 0000000000000000 0500000000000000"));
    assert_eq!(encode_ssz(&req), expected);
}

/// Two block chunks of different forks with their context bytes, then EOF: decoded whole and
/// split at every byte, with each chunk's fork taken from its digest.
#[test]
fn blocks_by_range_response_with_context_bytes() {
    let schedule = mainnet();
    let altair = digest_of(&schedule, Fork::Altair);
    let deneb = digest_of(&schedule, Fork::Deneb);
    let b1 = fake_block(slot_of(&schedule, Fork::Altair), 2_000);
    let b2 = fake_block(slot_of(&schedule, Fork::Deneb), 70_000);
    let cfg = CodecConfig::default();
    let mut bytes = Vec::new();
    let p = Protocol::BeaconBlocksByRangeV2;
    encode_success_chunk(p, Some(altair), &b1, &schedule, &cfg, &mut bytes).unwrap();
    encode_success_chunk(p, Some(deneb), &b2, &schedule, &cfg, &mut bytes).unwrap();
    // Independently framed: result ‖ context ‖ varint ‖ snap frames.
    let mut expected = vec![0];
    expected.extend_from_slice(&altair.0);
    encode_varint(2_000, &mut expected);
    expected.extend_from_slice(&snap_frames(&b1));
    assert_eq!(&bytes[..expected.len()], &expected[..]);

    let want = vec![
        Chunk::Success(SuccessChunk {
            fork: Some(Fork::Altair),
            context: Some(altair),
            ssz: b1,
        }),
        Chunk::Success(SuccessChunk {
            fork: Some(Fork::Deneb),
            context: Some(deneb),
            ssz: b2,
        }),
    ];
    assert_eq!(decode_all(p, &schedule, 64, &bytes).unwrap(), want);
    for step in [1, 2, 3, 7, 4096] {
        assert_eq!(
            decode_split(p, &schedule, 64, &bytes, step).unwrap(),
            want,
            "{step}"
        );
    }
}

/// A response that ends with an error chunk: the code and message come through, the
/// response is over, and error chunks carry no context bytes.
#[test]
fn error_chunk_ends_the_response() {
    let schedule = mainnet();
    let mut bytes = Vec::new();
    let p = Protocol::BeaconBlocksByRangeV2;
    let d = digest_of(&schedule, Fork::Capella);
    let block = fake_block(slot_of(&schedule, Fork::Capella), 1_084);
    encode_success_chunk(
        p,
        Some(d),
        &block,
        &schedule,
        &CodecConfig::default(),
        &mut bytes,
    )
    .unwrap();
    let err_start = bytes.len();
    encode_error_chunk(
        ResponseCode::ResourceUnavailable,
        &ErrorMessage::new("pruned"),
        &mut bytes,
    )
    .unwrap();
    assert_eq!(bytes[err_start], 3);
    assert_eq!(bytes[err_start + 1], 6, "varint right after the code");
    let chunks = decode_all(p, &schedule, 10, &bytes).unwrap();
    assert_eq!(chunks.len(), 2);
    match &chunks[1] {
        Chunk::Error { code, message } => {
            assert_eq!(*code, ResponseCode::ResourceUnavailable);
            assert_eq!(message.to_string_lossy(), "pruned");
        }
        c => panic!("expected an error chunk, got {c:?}"),
    }
    // Nothing may follow an error chunk.
    let mut more = bytes.clone();
    more.push(0);
    assert_eq!(
        decode_all(p, &schedule, 10, &more),
        Err(CodecError::TrailingBytes)
    );
    // Reserved and client-specific codes are errors too.
    for code in [4u8, 127, 128, 255] {
        let mut b = Vec::new();
        encode_error_chunk(ResponseCode::from(code), &ErrorMessage::new("x"), &mut b).unwrap();
        let c = decode_all(Protocol::StatusV1, &schedule, 1, &b).unwrap();
        assert!(matches!(&c[0], Chunk::Error { code: got, .. } if got.to_u8() == code));
    }
}

/// An `ErrorMessage` longer than 256 bytes is refused from its length prefix.
#[test]
fn error_message_over_256_bytes() {
    let schedule = mainnet();
    let mut b = vec![2];
    encode_varint(257, &mut b);
    encode_frames(&[b'x'; 257], &mut b);
    assert_eq!(
        decode_all(Protocol::PingV1, &schedule, 1, &b),
        Err(CodecError::LengthOutOfBounds {
            len: 257,
            min: 0,
            max: 256
        })
    );
    // An empty message: the length 0, with or without a bare stream identifier after it.
    let mut b = vec![2, 0];
    let c = decode_all(Protocol::PingV1, &schedule, 1, &b).unwrap();
    assert!(
        matches!(&c[0], Chunk::Error { code: ResponseCode::ServerError, message } if message.0.is_empty())
    );
    b.extend_from_slice(&STREAM_IDENTIFIER);
    // The response is over after an error chunk: the requester stops reading there.
    let mut dec = plexus_reqresp::ResponseDecoder::new(
        Protocol::PingV1,
        schedule.clone(),
        CodecConfig::default(),
        1,
    );
    let mut input = &b[..];
    assert!(matches!(
        dec.decode(&mut input),
        Ok(Some(Chunk::Error { .. }))
    ));
    assert!(dec.is_done());
    assert_eq!(input.len(), STREAM_IDENTIFIER.len());
    // Some encoders write a bare stream identifier for the empty message: accepted, and
    // nothing else after it.
    assert_eq!(
        decode_all(Protocol::PingV1, &schedule, 1, &b)
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        decode_all(Protocol::PingV1, &schedule, 1, &b[..7]),
        Err(CodecError::UnexpectedEof("a stream identifier"))
    );
    b.push(0);
    assert_eq!(
        decode_all(Protocol::PingV1, &schedule, 1, &b),
        Err(CodecError::TrailingBytes)
    );
    // We write nothing at all for it, as snap's encoder.
    let mut ours = Vec::new();
    encode_error_chunk(ResponseCode::ServerError, &ErrorMessage::new(""), &mut ours).unwrap();
    assert_eq!(ours, [2, 0]);
}

// ---- hostile input -------------------------------------------------------------------------

/// A snappy bomb: frames of 64 KiB of zeros (a few KiB each) under a small declared length.
/// It fails at the first frame that would overflow, from that frame's block preamble, before
/// it is decompressed, and nothing after that frame is read.
#[test]
fn snappy_bomb_fails_at_first_overflowing_frame() {
    let zeros = vec![0u8; 65_536];
    let mut frames = Vec::new();
    encode_frames(&zeros, &mut frames);
    assert!(frames.len() < 4_000, "compresses well: {}", frames.len());

    // Status: 84 bytes declared; the bomb's chunk header already claims more compressed
    // bytes than max_compressed_len(84) = 130: refused before its body is read.
    let mut bytes = vec![84];
    bytes.extend_from_slice(&frames);
    let mut dec = RequestDecoder::new(Protocol::StatusV1, CodecConfig::default());
    assert_eq!(
        dec.feed(&bytes[..1 + STREAM_IDENTIFIER.len() + 4]),
        Err(CodecError::CompressedTooLong { max: 130 })
    );
    // BlocksByRoot, 156 roots (4,992 bytes) declared: the chunk fits the compressed budget
    // but its block preamble says 65,536 bytes.
    let mut bytes = Vec::new();
    encode_varint(4_992, &mut bytes);
    bytes.extend_from_slice(&frames);
    assert_eq!(
        decode_req(Protocol::BeaconBlocksByRootV2, &bytes),
        Err(CodecError::Overflow {
            declared: 4_992,
            would_be: 65_536
        })
    );

    // A block response: 100,000 declared; the first chunk fits, the second would not.
    let schedule = mainnet();
    let d = digest_of(&schedule, Fork::Deneb);
    let mut bytes = vec![0];
    bytes.extend_from_slice(&d.0);
    encode_varint(100_000, &mut bytes);
    bytes.extend_from_slice(&STREAM_IDENTIFIER);
    let one = &frames[STREAM_IDENTIFIER.len()..];
    for _ in 0..100 {
        bytes.extend_from_slice(one);
    }
    let mut dec = plexus_reqresp::ResponseDecoder::new(
        Protocol::BeaconBlocksByRangeV2,
        schedule.clone(),
        CodecConfig::default(),
        1,
    );
    let mut input = &bytes[..];
    assert_eq!(
        dec.decode(&mut input),
        Err(CodecError::Overflow {
            declared: 100_000,
            would_be: 131_072
        })
    );
    let read = bytes.len() - input.len();
    assert_eq!(
        read,
        1 + 4 + 3 + 10 + 2 * one.len(),
        "stopped after the second chunk"
    );

    // Uncompressed chunks overflow from their header alone: the body is never read.
    let mut bytes = vec![8];
    bytes.extend_from_slice(&STREAM_IDENTIFIER);
    bytes.extend_from_slice(&[0x01, 0x10, 0x00, 0x00]); // 12 data bytes + crc
    let mut dec = RequestDecoder::new(Protocol::PingV1, CodecConfig::default());
    assert_eq!(
        dec.feed(&bytes),
        Err(CodecError::Overflow {
            declared: 8,
            would_be: 12
        })
    );
}

/// Declared lengths outside the type's bounds are refused from the varint alone.
#[test]
fn declared_length_outside_type_bounds() {
    let schedule = mainnet();
    // Status v1 is exactly 84 bytes.
    for len in [0u64, 83, 85, 1 << 40] {
        let mut b = Vec::new();
        encode_varint(len, &mut b);
        assert_eq!(
            decode_req(Protocol::StatusV1, &b),
            Err(CodecError::LengthOutOfBounds {
                len,
                min: 84,
                max: 84
            })
        );
    }
    // BlocksByRoot: at most 1024 roots.
    let mut b = Vec::new();
    encode_varint(1025 * 32, &mut b);
    assert!(matches!(
        decode_req(Protocol::BeaconBlocksByRootV2, &b),
        Err(CodecError::LengthOutOfBounds { max: 32_768, .. })
    ));
    // A phase 0 block above its maximum (157,756); an Altair one below its minimum (564).
    let mut b = vec![0];
    b.extend_from_slice(&digest_of(&schedule, Fork::Phase0).0);
    encode_varint(157_757, &mut b);
    assert_eq!(
        decode_all(Protocol::BeaconBlocksByRangeV2, &schedule, 1, &b),
        Err(CodecError::LengthOutOfBounds {
            len: 157_757,
            min: 404,
            max: 157_756
        })
    );
    let mut b = vec![0];
    b.extend_from_slice(&digest_of(&schedule, Fork::Altair).0);
    encode_varint(563, &mut b);
    assert!(matches!(
        decode_all(Protocol::BeaconBlocksByRangeV2, &schedule, 1, &b),
        Err(CodecError::LengthOutOfBounds {
            len: 563,
            min: 564,
            ..
        })
    ));
    // A Deneb block is bounded by MAX_PAYLOAD_SIZE (10 MiB).
    let mut b = vec![0];
    b.extend_from_slice(&digest_of(&schedule, Fork::Deneb).0);
    encode_varint(10 * 1024 * 1024 + 1, &mut b);
    assert!(matches!(
        decode_all(Protocol::BeaconBlocksByRangeV2, &schedule, 1, &b),
        Err(CodecError::LengthOutOfBounds {
            max: 10_485_760,
            ..
        })
    ));
    // The v1 protocol carries phase 0 blocks only.
    let mut b = vec![0];
    encode_varint(157_757, &mut b);
    assert!(matches!(
        decode_all(Protocol::BeaconBlocksByRangeV1, &schedule, 1, &b),
        Err(CodecError::LengthOutOfBounds { .. })
    ));
}

/// Non-minimal varints are refused in requests and responses.
#[test]
fn non_minimal_varints() {
    let s = encode_ssz(&status());
    let mut b = vec![0xd4, 0x00]; // 84 with a redundant zero group
    encode_frames(&s, &mut b);
    assert_eq!(
        decode_req(Protocol::StatusV1, &b),
        Err(CodecError::NonMinimalVarint)
    );
    let schedule = mainnet();
    let mut b = vec![0, 0x88, 0x80, 0x00];
    encode_frames(&8u64.to_le_bytes(), &mut b);
    assert_eq!(
        decode_all(Protocol::PingV1, &schedule, 1, &b),
        Err(CodecError::NonMinimalVarint)
    );
    // 11 continuation bytes.
    let b = [0x80u8; 11];
    assert_eq!(
        decode_req(Protocol::PingV1, &b),
        Err(CodecError::VarintOverflow)
    );
}

/// More chunks than the request allows, and a second chunk on a single-chunk protocol.
#[test]
fn more_chunks_than_requested() {
    let schedule = mainnet();
    let p = Protocol::BeaconBlocksByRangeV2;
    let d = digest_of(&schedule, Fork::Bellatrix);
    let mut bytes = Vec::new();
    for i in 0..3 {
        let block = fake_block(slot_of(&schedule, Fork::Bellatrix) + i, 1_076);
        encode_success_chunk(
            p,
            Some(d),
            &block,
            &schedule,
            &CodecConfig::default(),
            &mut bytes,
        )
        .unwrap();
    }
    assert_eq!(decode_all(p, &schedule, 3, &bytes).unwrap().len(), 3);
    assert_eq!(
        decode_all(p, &schedule, 2, &bytes),
        Err(CodecError::TooManyChunks { max: 2 })
    );
    assert_eq!(
        decode_all(p, &schedule, 0, &bytes),
        Err(CodecError::TooManyChunks { max: 0 })
    );
    let mut two = Vec::new();
    for _ in 0..2 {
        two.push(0);
        two.push(8);
        encode_frames(&5u64.to_le_bytes(), &mut two);
    }
    assert_eq!(
        decode_all(Protocol::PingV1, &schedule, 5, &two),
        Err(CodecError::TooManyChunks { max: 1 })
    );
}

/// Context bytes that are no digest of the network, or a fork where the protocol has no type.
#[test]
fn wrong_context_bytes() {
    let schedule = mainnet();
    let block = fake_block(0, 404);
    let mut b = vec![0, 0xde, 0xad, 0xbe, 0xef];
    encode_varint(block.len() as u64, &mut b);
    encode_frames(&block, &mut b);
    assert_eq!(
        decode_all(Protocol::BeaconBlocksByRootV2, &schedule, 1, &b),
        Err(CodecError::UnknownContext(ForkDigest([
            0xde, 0xad, 0xbe, 0xef
        ])))
    );
    // A data column sidecar under a Deneb digest; a blob sidecar under Fulu's; a light client
    // bootstrap under phase 0's. Refused before the length is read.
    for (p, fork) in [
        (Protocol::DataColumnSidecarsByRangeV1, Fork::Deneb),
        (Protocol::BlobSidecarsByRootV1, Fork::Fulu),
        (Protocol::LightClientBootstrapV1, Fork::Phase0),
    ] {
        let digest = digest_of(&schedule, fork);
        let mut b = vec![0];
        b.extend_from_slice(&digest.0);
        assert_eq!(
            decode_all(p, &schedule, 1, &b),
            Err(CodecError::WrongContext { digest, fork }),
            "{p}"
        );
    }
    // BPO digests map to Fulu.
    let bpo = schedule.entries().last().unwrap();
    assert_eq!(bpo.fork, Fork::Fulu);
    let col = fake_column(bpo.epoch * 32, 3, 1);
    let mut b = Vec::new();
    encode_success_chunk(
        Protocol::DataColumnSidecarsByRootV1,
        Some(bpo.digest),
        &col,
        &schedule,
        &CodecConfig::default(),
        &mut b,
    )
    .unwrap();
    let c = decode_all(Protocol::DataColumnSidecarsByRootV1, &schedule, 1, &b).unwrap();
    assert!(matches!(&c[0], Chunk::Success(s) if s.fork == Some(Fork::Fulu)));
}

/// Bytes after a complete request.
#[test]
fn trailing_bytes_after_request() {
    let mut b = request_bytes(&Request::Ping(Ping(3)));
    b.push(0);
    assert_eq!(
        decode_req(Protocol::PingV1, &b),
        Err(CodecError::TrailingBytes)
    );
    // A second framed stream after the payload.
    let mut b = request_bytes(&Request::Ping(Ping(3)));
    encode_frames(&[1], &mut b);
    assert_eq!(
        decode_req(Protocol::PingV1, &b),
        Err(CodecError::TrailingBytes)
    );
    // Any byte on a protocol without a request body.
    assert_eq!(
        decode_req(Protocol::MetaDataV2, &[0]),
        Err(CodecError::TrailingBytes)
    );
    assert_eq!(decode_req(Protocol::MetaDataV2, &[]), Ok(Vec::new()));
    // An empty list may be followed by a bare stream identifier (some encoders write it),
    // but not by half of one or anything else.
    let mut b = vec![0];
    assert_eq!(
        decode_req(Protocol::BeaconBlocksByRootV2, &b),
        Ok(Vec::new())
    );
    b.extend_from_slice(&STREAM_IDENTIFIER);
    assert_eq!(
        decode_req(Protocol::BeaconBlocksByRootV2, &b),
        Ok(Vec::new())
    );
    assert_eq!(
        decode_req(Protocol::BeaconBlocksByRootV2, &b[..6]),
        Err(CodecError::UnexpectedEof("the request payload"))
    );
    b.push(0);
    assert_eq!(
        decode_req(Protocol::BeaconBlocksByRootV2, &b),
        Err(CodecError::TrailingBytes)
    );
}

/// The stream ends inside a request or a chunk.
#[test]
fn early_eof() {
    let b = request_bytes(&Request::StatusV1(status()));
    for cut in [0, 1, 5, b.len() - 1] {
        assert!(
            matches!(
                decode_req(Protocol::StatusV1, &b[..cut]),
                Err(CodecError::UnexpectedEof(_))
            ),
            "cut at {cut}"
        );
    }
    let schedule = mainnet();
    let d = digest_of(&schedule, Fork::Altair);
    let mut r = Vec::new();
    let block = fake_block(slot_of(&schedule, Fork::Altair), 600);
    encode_success_chunk(
        Protocol::BeaconBlocksByRootV2,
        Some(d),
        &block,
        &schedule,
        &CodecConfig::default(),
        &mut r,
    )
    .unwrap();
    for cut in [2, 5, 6, r.len() - 1] {
        assert!(
            matches!(
                decode_all(Protocol::BeaconBlocksByRootV2, &schedule, 2, &r[..cut]),
                Err(CodecError::UnexpectedEof(_))
            ),
            "cut at {cut}"
        );
    }
    // At a chunk boundary EOF is a clean end (fewer chunks than the most allowed).
    assert_eq!(
        decode_all(Protocol::BeaconBlocksByRootV2, &schedule, 2, &r)
            .unwrap()
            .len(),
        1
    );
}

/// Broken framing: no stream identifier, a bad one, reserved chunk types, bad checksums,
/// oversized chunks, padding past the compressed budget, too many chunks, garbage blocks.
#[test]
fn broken_frames() {
    let data = 7u64.to_le_bytes();
    let with = |frames: &[u8]| {
        let mut b = vec![8];
        b.extend_from_slice(frames);
        decode_req(Protocol::PingV1, &b)
    };
    let mut good = Vec::new();
    encode_frames(&data, &mut good);
    assert_eq!(with(&good), Ok(data.to_vec()));
    assert_eq!(
        with(&good[STREAM_IDENTIFIER.len()..]),
        Err(CodecError::MissingStreamIdentifier)
    );
    let mut bad_magic = good.clone();
    bad_magic[9] = b'X';
    assert_eq!(with(&bad_magic), Err(CodecError::BadStreamIdentifier));
    let mut bad_crc = good.clone();
    bad_crc[14] ^= 1;
    assert_eq!(with(&bad_crc), Err(CodecError::BadChecksum));
    let mut reserved = STREAM_IDENTIFIER.to_vec();
    reserved.extend_from_slice(&[0x02, 0x00, 0x00, 0x00]);
    assert_eq!(with(&reserved), Err(CodecError::ReservedChunk(0x02)));
    // A repeated stream identifier and a skippable chunk are fine within the budget.
    let mut skippable = STREAM_IDENTIFIER.to_vec();
    skippable.extend_from_slice(&[0x80, 0x02, 0x00, 0x00, 0xaa, 0xbb]);
    skippable.extend_from_slice(&good[STREAM_IDENTIFIER.len()..]);
    assert_eq!(with(&skippable), Ok(data.to_vec()));
    let mut repeated = good.clone();
    repeated.splice(0..0, STREAM_IDENTIFIER);
    assert_eq!(with(&repeated), Ok(data.to_vec()));
    // Padding until the budget of max_compressed_len(8) = 41 bytes is spent.
    let mut padded = STREAM_IDENTIFIER.to_vec();
    padded.extend_from_slice(&[0xfe, 0x20, 0x00, 0x00]);
    padded.extend_from_slice(&[0; 32]);
    assert_eq!(
        with(&padded),
        Err(CodecError::CompressedTooLong { max: 41 })
    );
    // A compressed chunk claiming 16 MiB.
    let mut huge = STREAM_IDENTIFIER.to_vec();
    huge.extend_from_slice(&[0x00, 0xff, 0xff, 0xff]);
    let mut big = vec![0xff, 0xff, 0x0f]; // 1 MiB declared, many frames allowed
    big.extend_from_slice(&huge);
    assert_eq!(
        decode_req(Protocol::BeaconBlocksByRootV2, &big[..]).map(|_| ()),
        Err(CodecError::LengthOutOfBounds {
            len: 262_143,
            min: 0,
            max: 32_768
        })
    );
    let schedule = mainnet();
    let mut b = vec![0];
    b.extend_from_slice(&digest_of(&schedule, Fork::Deneb).0);
    encode_varint(1_000_000, &mut b);
    b.extend_from_slice(&huge);
    assert_eq!(
        decode_all(Protocol::BeaconBlocksByRangeV2, &schedule, 1, &b),
        Err(CodecError::ChunkTooLarge {
            len: 16_777_215,
            max: 76_494
        })
    );
    // Empty data chunks (0 bytes each) beyond ceil(len / 64 KiB) + 32.
    let mut b = vec![0];
    b.extend_from_slice(&digest_of(&schedule, Fork::Deneb).0);
    encode_varint(2_000, &mut b);
    b.extend_from_slice(&STREAM_IDENTIFIER);
    let empty_crc = masked_crc32c(&[]).to_le_bytes();
    for _ in 0..40 {
        b.extend_from_slice(&[0x01, 0x04, 0x00, 0x00]);
        b.extend_from_slice(&empty_crc);
    }
    assert_eq!(
        decode_all(Protocol::BeaconBlocksByRangeV2, &schedule, 1, &b),
        Err(CodecError::TooManyFrames { max: 33 })
    );
    // A compressed chunk whose block is garbage.
    let mut garbage = STREAM_IDENTIFIER.to_vec();
    garbage.extend_from_slice(&[0x00, 0x08, 0x00, 0x00, 0, 0, 0, 0, 0x08, 0xff, 0xff, 0xff]);
    assert!(matches!(with(&garbage), Err(CodecError::Snappy(_))));
}

/// The encoders refuse what the spec forbids sending.
#[test]
fn encoder_refusals() {
    let schedule = mainnet();
    let cfg = CodecConfig::default();
    let mut out = Vec::new();
    assert!(matches!(
        encode_request(Protocol::StatusV1, &[0; 83], &cfg, &mut out),
        Err(plexus_reqresp::EncodeError::OutOfBounds { len: 83, .. })
    ));
    assert!(encode_request(Protocol::MetaDataV2, &[1], &cfg, &mut out).is_err());
    let block = fake_block(0, 500);
    assert!(
        encode_success_chunk(
            Protocol::BeaconBlocksByRangeV2,
            None,
            &block,
            &schedule,
            &cfg,
            &mut out
        )
        .is_err(),
        "context bytes required"
    );
    assert!(
        encode_success_chunk(
            Protocol::StatusV1,
            Some(ForkDigest([0; 4])),
            &encode_ssz(&status()),
            &schedule,
            &cfg,
            &mut out
        )
        .is_err(),
        "no context bytes on status"
    );
    assert!(
        encode_success_chunk(
            Protocol::DataColumnSidecarsByRangeV1,
            Some(digest_of(&schedule, Fork::Deneb)),
            &fake_column(0, 0, 0),
            &schedule,
            &cfg,
            &mut out
        )
        .is_err(),
        "no column sidecars at Deneb"
    );
    assert!(encode_error_chunk(ResponseCode::Success, &ErrorMessage::new("x"), &mut out).is_err());
    assert!(out.is_empty(), "nothing written on refusal");
}

/// Gloas: envelopes and Gloas column sidecars under Sepolia's Gloas digest.
#[test]
fn gloas_responses() {
    let schedule = sepolia();
    let gloas = digest_of(&schedule, Fork::Gloas);
    let cfg = CodecConfig::default();
    let mut envelope = vec![0u8; 740];
    envelope[0..4].copy_from_slice(&100u32.to_le_bytes());
    let mut b = Vec::new();
    encode_success_chunk(
        Protocol::ExecutionPayloadEnvelopesByRootV1,
        Some(gloas),
        &envelope,
        &schedule,
        &cfg,
        &mut b,
    )
    .unwrap();
    let c = decode_all(
        Protocol::ExecutionPayloadEnvelopesByRootV1,
        &schedule,
        1,
        &b,
    )
    .unwrap();
    assert!(matches!(&c[0], Chunk::Success(s) if s.fork == Some(Fork::Gloas)));
    // Envelopes do not exist before Gloas.
    let fulu = digest_of(&schedule, Fork::Fulu);
    let mut b = vec![0];
    b.extend_from_slice(&fulu.0);
    assert_eq!(
        decode_all(
            Protocol::ExecutionPayloadEnvelopesByRangeV1,
            &schedule,
            1,
            &b
        ),
        Err(CodecError::WrongContext {
            digest: fulu,
            fork: Fork::Fulu
        })
    );
    // A Gloas column sidecar is 56 bytes at least, a Fulu one 356.
    let mut b = vec![0];
    b.extend_from_slice(&gloas.0);
    encode_varint(100, &mut b);
    let mut dec = plexus_reqresp::ResponseDecoder::new(
        Protocol::DataColumnSidecarsByRootV1,
        schedule.clone(),
        cfg,
        1,
    );
    let mut input = &b[..];
    assert_eq!(
        dec.decode(&mut input),
        Ok(None),
        "100 bytes is a valid Gloas length"
    );
}

#[test]
fn a_pre_encoded_payload_gives_the_same_chunk_and_the_same_checks() {
    let s = mainnet();
    let cfg = CodecConfig::default();
    let p = Protocol::BeaconBlocksByRangeV2;
    let slot = slot_of(&s, Fork::Deneb);
    let d = digest_of(&s, Fork::Deneb);
    let block = fake_block(slot, 140_000);
    let mut whole = Vec::new();
    encode_success_chunk(p, Some(d), &block, &s, &cfg, &mut whole).unwrap();
    let encoded = plexus_reqresp::EncodedPayload::new(&block);
    assert_eq!(encoded.ssz_len(), block.len());
    let mut split = Vec::new();
    plexus_reqresp::encode_success_head(p, Some(d), &encoded, &s, &cfg, &mut split).unwrap();
    split.extend_from_slice(encoded.bytes());
    assert_eq!(
        split, whole,
        "head + shared payload = the chunk encoded at once"
    );
    // The same bounds apply: a block below the Deneb minimum, a missing digest.
    let tiny = plexus_reqresp::EncodedPayload::new(&[0u8; 16]);
    let mut out = Vec::new();
    assert!(plexus_reqresp::encode_success_head(p, Some(d), &tiny, &s, &cfg, &mut out).is_err());
    assert!(plexus_reqresp::encode_success_head(p, None, &encoded, &s, &cfg, &mut out).is_err());
    assert!(out.is_empty(), "nothing written for a refused chunk");
}

/// A Status request is answered in its own version; anything else is not a Status.
#[test]
fn status_answer_follows_the_request_version() {
    let ours = StatusV2 {
        earliest_available_slot: 17,
        ..StatusV2::at_genesis(ForkDigest([1, 2, 3, 4]))
    };
    let v1 = status_answer(&Request::StatusV1(status()), ours).unwrap();
    assert_eq!(v1.len(), 84);
    assert_eq!(v1, encode_ssz(&StatusV1::from(ours)));
    let v2 = status_answer(&Request::StatusV2(ours), ours).unwrap();
    assert_eq!(v2.len(), 92);
    assert_eq!(v2, encode_ssz(&ours));
    assert_eq!(status_answer(&Request::Ping(Ping(1)), ours), None);
}
