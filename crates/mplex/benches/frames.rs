//! The mplex frame path through two `Core`s, no I/O: a 64 KiB write is framed
//! by `poll_transmit`, parsed by the peer's `handle_input` and read out, in
//! both directions (the opener sends `MessageInitiator` frames, the acceptor
//! `MessageReceiver` ones).
//!
//! `cargo bench -p plexus-mplex --bench frames -- --quick`
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Instant;

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use plexus_core::MuxLimits;
use plexus_mplex::{Config, Core, StreamId};

const LEN: usize = 64 * 1024;

/// Reused buffers: the wire and the reader's destination.
struct Bufs {
    wire: BytesMut,
    out: Vec<u8>,
}

/// One message from `tx` to `rx` on the stream each of them calls by the id
/// paired with it.
fn transfer(
    (tx, ts): (&mut Core, StreamId),
    (rx, rs): (&mut Core, StreamId),
    now: Instant,
    data: &[u8],
    bufs: &mut Bufs,
) -> usize {
    assert_eq!(tx.write(ts, data), Ok(data.len()));
    bufs.wire.clear();
    while tx.poll_transmit(now, &mut bufs.wire, 256 * 1024) {}
    rx.handle_input(now, &mut bufs.wire).unwrap();
    let mut got = 0;
    while got < data.len() {
        got += rx.read(rs, &mut bufs.out[got..]).unwrap();
    }
    while tx.poll_event().is_some() {}
    while rx.poll_event().is_some() {}
    got
}

fn frames(c: &mut Criterion) {
    let now = Instant::now();
    let mut a = Core::new(Config::default(), MuxLimits::default());
    let mut b = Core::new(Config::default(), MuxLimits::default());
    let s = a.open().unwrap();
    let mut wire = BytesMut::with_capacity(LEN + 64);
    while a.poll_transmit(now, &mut wire, 1 << 20) {}
    b.handle_input(now, &mut wire).unwrap();
    let r = b.accept().unwrap();
    let data = vec![0x5au8; LEN];
    let mut bufs = Bufs {
        wire,
        out: vec![0u8; LEN],
    };

    let mut g = c.benchmark_group("frame_64k_core_to_core");
    g.throughput(Throughput::Bytes(LEN as u64));
    g.bench_function("initiator_to_receiver", |bench| {
        bench.iter(|| {
            black_box(transfer(
                (&mut a, s),
                (&mut b, r),
                now,
                black_box(&data),
                &mut bufs,
            ))
        })
    });
    g.bench_function("receiver_to_initiator", |bench| {
        bench.iter(|| {
            black_box(transfer(
                (&mut b, r),
                (&mut a, s),
                now,
                black_box(&data),
                &mut bufs,
            ))
        })
    });
    g.finish();
}

criterion_group!(benches, frames);
criterion_main!(benches);
