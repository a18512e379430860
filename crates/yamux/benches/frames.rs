//! The yamux frame path without I/O: 64 KiB data frames written through one [`Core`] and read
//! by another (the write buffer, framing, the peer's receive buffer, the read and the window
//! update coming back), plus the 12-byte header codec.
//!
//! `cargo bench -p plexus-yamux --bench frames -- --quick`
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use plexus_core::{MuxLimits, Role};
use plexus_yamux::frame::{Flags, HEADER_LEN, Header};
use plexus_yamux::{Config, Core, Event, StreamId};

const FRAME: usize = 64 * 1024;
/// Bytes per `poll_transmit` call, as the driver's default write batch.
const BUDGET: usize = 256 * 1024;

/// Move everything `from` wants to send into `to`, then drain `to`'s events.
fn shuttle(now: Instant, from: &mut Core, to: &mut Core, wire: &mut BytesMut) -> Option<StreamId> {
    while from.poll_transmit(now, wire, BUDGET) {}
    to.handle_input(now, wire).expect("valid frames");
    let mut inbound = None;
    while let Some(ev) = to.poll_event() {
        if let Event::InboundStream(id) = ev {
            inbound = Some(id);
        }
    }
    while from.poll_event().is_some() {}
    inbound
}

/// A client and a server core with one stream open and accepted on both sides.
fn connected(now: Instant) -> (Core, Core, StreamId, StreamId, BytesMut) {
    let mut client = Core::new(Role::Initiator, Config::default(), MuxLimits::default());
    let mut server = Core::new(Role::Responder, Config::default(), MuxLimits::default());
    let mut wire = BytesMut::with_capacity(BUDGET + FRAME);
    let cid = client.open().expect("open");
    shuttle(now, &mut client, &mut server, &mut wire).expect("SYN arrives");
    let sid = server.accept().expect("accept");
    shuttle(now, &mut server, &mut client, &mut wire);
    (client, server, cid, sid, wire)
}

fn data_path(c: &mut Criterion) {
    let now = Instant::now();
    let data = vec![0x5au8; FRAME];
    let mut buf = vec![0u8; FRAME];
    let mut g = c.benchmark_group("yamux_core");
    g.throughput(Throughput::Bytes(FRAME as u64));
    g.measurement_time(Duration::from_secs(3));
    g.warm_up_time(Duration::from_secs(1));
    let (mut client, mut server, cid, sid, mut wire) = connected(now);
    g.bench_function("data_64k_write_transmit_input_read", |b| {
        b.iter(|| {
            let n = client.write(cid, black_box(&data)).expect("window open");
            assert_eq!(n, FRAME, "the whole frame fits the window");
            shuttle(now, &mut client, &mut server, &mut wire);
            let mut got = 0;
            while got < FRAME {
                got += server.read(sid, &mut buf[got..]).expect("data buffered");
            }
            // Window updates (every other frame) go back.
            shuttle(now, &mut server, &mut client, &mut wire);
            black_box(&buf);
        })
    });
    g.finish();
}

fn header(c: &mut Criterion) {
    let mut g = c.benchmark_group("yamux_header");
    g.measurement_time(Duration::from_secs(2));
    g.warm_up_time(Duration::from_millis(500));
    let h = Header::data(7, Flags::SYN | Flags::FIN, 65536);
    g.bench_function("encode", |b| b.iter(|| black_box(black_box(&h).encode())));
    let wire: [u8; HEADER_LEN] = h.encode();
    g.bench_function("decode", |b| {
        b.iter(|| black_box(Header::decode(black_box(&wire)).expect("valid header")))
    });
    let mut out = BytesMut::with_capacity(HEADER_LEN * 1024);
    g.bench_function("encode_into_bytesmut", |b| {
        b.iter(|| {
            if out.len() + HEADER_LEN > out.capacity() {
                out.clear();
            }
            black_box(&h).encode_into(&mut out);
        })
    });
    g.finish();
}

criterion_group!(benches, data_path, header);
criterion_main!(benches);
