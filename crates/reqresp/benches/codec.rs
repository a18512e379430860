//! The `ssz_snappy` codec alone, without I/O: a `beacon_blocks_by_range/2` response chunk of
//! one 128 KiB block (result byte, context bytes, varint length, snappy frames), encoded with
//! `encode_success_chunk` and decoded with `ResponseDecoder` (whole, and in the 16 KiB reads
//! the service does); and the 24-byte BlocksByRange request, encoded and decoded.
//!
//! The block payload (`support::block_payload`) is half random bytes and half zeros,
//! interleaved in runs of 8–64 bytes: the snappy frames carry ≈ 58 % of it, so compression
//! has real work to do (an all-zero payload would flatter both directions, a random one would
//! be stored uncompressed). Chunk throughput is in bytes of SSZ payload per second; requests in
//! requests per second.
//!
//! `cargo bench -p plexus-reqresp --bench codec -- --warm-up-time 1 --measurement-time 3`
#![allow(missing_docs)]

mod support;

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use plexus_eth::{BeaconBlocksByRangeRequest, encode_ssz};
use plexus_reqresp::{
    Chunk, CodecConfig, Protocol, Request, ResponseDecoder, decode_request_bytes, encode_request,
    encode_success_chunk,
};
use support::{BLOCK_LEN, Chain, block_payload};

/// Bytes per read in the service's requester (`READ_CHUNK` in `src/service.rs`).
const READ: usize = 16 * 1024;

fn response_chunk(c: &mut Criterion) {
    let chain = Chain::mainnet();
    let codec = CodecConfig::for_chain(chain.schedule.config());
    let block = block_payload(chain.start_slot, BLOCK_LEN, 1);
    let protocol = Protocol::BeaconBlocksByRangeV2;
    let mut wire = Vec::new();
    encode_success_chunk(
        protocol,
        Some(chain.digest),
        &block,
        &chain.schedule,
        &codec,
        &mut wire,
    )
    .expect("the block fits its fork's bounds");
    eprintln!(
        "block_by_range_v2 chunk: {} B of SSZ ({:?}) -> {} B on the wire ({:.1} %)",
        block.len(),
        chain.fork,
        wire.len(),
        100.0 * wire.len() as f64 / block.len() as f64
    );

    let mut g = c.benchmark_group("blocks_by_range_v2_chunk_128k");
    g.throughput(Throughput::Bytes(BLOCK_LEN as u64));
    let mut out = Vec::with_capacity(wire.len() + 1024);
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            encode_success_chunk(
                protocol,
                Some(chain.digest),
                black_box(&block),
                &chain.schedule,
                &codec,
                &mut out,
            )
            .expect("encodes");
            black_box(&out);
        })
    });
    let decode = |step: usize| {
        let mut dec = ResponseDecoder::new(protocol, chain.schedule.clone(), codec, 1);
        let mut got = None;
        for piece in wire.chunks(step) {
            let mut input = black_box(piece);
            while !input.is_empty() {
                if let Some(chunk) = dec.decode(&mut input).expect("valid chunk") {
                    got = Some(chunk);
                }
            }
        }
        dec.finish().expect("complete");
        match got {
            Some(Chunk::Success(s)) => s,
            other => panic!("expected one success chunk, got {other:?}"),
        }
    };
    assert_eq!(decode(wire.len()).ssz, block, "round trip");
    g.bench_function("decode_whole", |b| b.iter(|| black_box(decode(wire.len()))));
    g.bench_function("decode_16k_reads", |b| b.iter(|| black_box(decode(READ))));
    g.finish();
}

fn request(c: &mut Criterion) {
    let chain = Chain::mainnet();
    let codec = CodecConfig::for_chain(chain.schedule.config());
    let protocol = Protocol::BeaconBlocksByRangeV2;
    let req = BeaconBlocksByRangeRequest {
        start_slot: chain.start_slot,
        count: 64,
        step: 1,
    };
    let mut wire = Vec::new();
    encode_request(protocol, &encode_ssz(&req), &codec, &mut wire).expect("encodes");

    let mut g = c.benchmark_group("blocks_by_range_v2_request");
    g.throughput(Throughput::Elements(1));
    let mut out = Vec::with_capacity(64);
    g.bench_function("encode", |b| {
        b.iter(|| {
            out.clear();
            let ssz = Request::BeaconBlocksByRangeV2(black_box(req)).to_ssz();
            encode_request(protocol, &ssz, &codec, &mut out).expect("encodes");
            black_box(&out);
        })
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            let ssz = decode_request_bytes(protocol, codec, black_box(&wire)).expect("valid");
            black_box(Request::from_ssz(protocol, &ssz).expect("valid SSZ"))
        })
    });
    g.finish();
}

criterion_group!(benches, response_chunk, request);
criterion_main!(benches);
