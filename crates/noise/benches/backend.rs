//! Crypto backend comparison (ring vs RustCrypto) for Noise transport frames, plus the
//! `NoiseStream` throughput over an in-memory duplex with the default backend.
//!
//! `cargo bench -p plexus-noise --bench backend -- --quick`
#![allow(missing_docs)]

use std::hint::black_box;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use plexus_core::Role;
use plexus_identity::Keypair;
use plexus_noise::{
    CryptoBackend, MAX_PLAINTEXT_LEN, NoiseConfig, NoiseFramer, NoiseHandshake, NoiseStream,
    read_frame,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A framer pair from a real handshake between two configs using `backend`.
fn pair(backend: CryptoBackend) -> (NoiseFramer, NoiseFramer) {
    let a = NoiseConfig::new(Keypair::generate_ed25519()).with_backend(backend);
    let b = NoiseConfig::new(Keypair::generate_ed25519()).with_backend(backend);
    let mut i = NoiseHandshake::new(&a, Role::Initiator, None, vec![]).unwrap();
    let mut r = NoiseHandshake::new(&b, Role::Responder, None, vec![]).unwrap();
    let mut wire = BytesMut::new();
    let step = |from: &mut NoiseHandshake, to: &mut NoiseHandshake, wire: &mut BytesMut| {
        if from.wants_write() {
            from.write_message(wire).unwrap();
            let msg = read_frame(wire).unwrap();
            to.read_message(&msg).unwrap();
        }
    };
    while !(i.is_finished() && r.is_finished()) {
        step(&mut i, &mut r, &mut wire);
        step(&mut r, &mut i, &mut wire);
    }
    (i.finish().unwrap().framer, r.finish().unwrap().framer)
}

fn frames(c: &mut Criterion) {
    let plaintext = vec![0x5au8; MAX_PLAINTEXT_LEN];
    let mut g = c.benchmark_group("frame_64k_encrypt_decrypt");
    g.throughput(Throughput::Bytes(plaintext.len() as u64));
    for (name, backend) in [
        ("accelerated", CryptoBackend::Accelerated),
        ("rustcrypto", CryptoBackend::RustCrypto),
    ] {
        let (mut tx, mut rx) = pair(backend);
        let mut wire = BytesMut::with_capacity(70_000);
        let mut out = BytesMut::with_capacity(70_000);
        g.bench_function(name, |b| {
            b.iter(|| {
                wire.clear();
                out.clear();
                tx.encrypt(black_box(&plaintext), &mut wire).unwrap();
                let n = rx.decrypt_next(&mut wire, &mut out).unwrap();
                black_box(n)
            })
        });
    }
    g.finish();
}

fn stream(c: &mut Criterion) {
    const TOTAL: usize = 16 << 20;
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut g = c.benchmark_group("stream_16MiB_one_way");
    g.throughput(Throughput::Bytes(TOTAL as u64));
    g.sample_size(10);
    for (name, backend) in [
        ("accelerated", CryptoBackend::Accelerated),
        ("rustcrypto", CryptoBackend::RustCrypto),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    let (tx, rx) = pair(backend);
                    let (a, b) = tokio::io::duplex(256 * 1024);
                    let mut w = NoiseStream::new(a, tx);
                    let mut r = NoiseStream::new(b, rx);
                    let data = vec![7u8; 256 * 1024];
                    let writer = async {
                        for _ in 0..TOTAL / data.len() {
                            w.write_all(&data).await.unwrap();
                        }
                        w.shutdown().await.unwrap();
                    };
                    let reader = async {
                        let mut buf = vec![0u8; 256 * 1024];
                        let mut got = 0;
                        loop {
                            let n = r.read(&mut buf).await.unwrap();
                            if n == 0 {
                                break;
                            }
                            got += n;
                        }
                        assert_eq!(got, TOTAL);
                    };
                    tokio::join!(writer, reader);
                })
            })
        });
    }
    g.finish();
}

criterion_group!(benches, frames, stream);
criterion_main!(benches);
