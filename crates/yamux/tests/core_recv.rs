//! The receive path: data frames small and large (large payloads reaching an
//! empty stream buffer are taken from the input without a copy, the others
//! are copied), fed in arbitrary pieces and read back in arbitrary reads.
//! Asserts byte-exact delivery, per-stream order, and that every counter
//! returns to zero once everything is read.

mod support;

use std::time::Instant;

use bytes::BytesMut;
use plexus_core::{MuxLimits, Role};
use plexus_yamux::frame::{Flags, Header};
use plexus_yamux::{Config, Core, INITIAL_WINDOW, StreamError, StreamId};
use proptest::prelude::*;
use support::*;

/// A listener core with the remote's streams `ids` opened (no data yet) and
/// accepted.
fn core_with_streams(cfg: Config, ids: &[u32]) -> (Core, Instant, Vec<StreamId>) {
    let now = Instant::now();
    let mut c = Core::new(Role::Responder, cfg, MuxLimits::default());
    let mut src = BytesMut::new();
    for &id in ids {
        Header::data(id, Flags::SYN, 0).encode_into(&mut src);
    }
    c.handle_input(now, &mut src).expect("SYNs");
    let streams = ids.iter().map(|_| c.accept().expect("accepted")).collect();
    (c, now, streams)
}

fn data(id: u32, body: &[u8]) -> (Header, &[u8]) {
    (Header::data(id, Flags::NONE, body.len() as u32), body)
}

/// Read up to `len` bytes of `id` in reads of at most `chunk`; stops early
/// when nothing is buffered.
fn read_up_to(c: &mut Core, id: StreamId, len: usize, chunk: usize) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; chunk.max(1)];
    while out.len() < len {
        let want = buf.len().min(len - out.len());
        match c.read(id, &mut buf[..want]) {
            Ok(0) | Err(StreamError::Blocked) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => panic!("read {id}: {e}"),
        }
        c.check_invariants();
    }
    out
}

fn assert_all_read(c: &Core, ids: &[StreamId]) {
    assert_eq!(c.buffered_bytes(), 0, "connection buffer drained");
    for &id in ids {
        assert_eq!(c.stream_buffered(id), Some(0), "stream {id} drained");
    }
}

#[test]
fn large_frame_into_an_empty_stream_reads_back_exactly() {
    let (mut c, now, ids) = core_with_streams(Config::default(), &[1]);
    let big = pattern(1, 64 * 1024);
    let mut src = wire(&[data(1, &big)]);
    c.handle_input(now, &mut src).expect("valid");
    assert!(src.is_empty());
    assert_eq!(c.buffered_bytes(), big.len());
    assert_eq!(c.stream_buffered(ids[0]), Some(big.len()));
    c.check_invariants();
    assert_eq!(read_up_to(&mut c, ids[0], usize::MAX, 5000), big);
    assert_all_read(&c, &ids);
    // credit + buffered + pending == window still holds.
    c.check_invariants();
}

#[test]
fn small_and_large_frames_interleaved_with_partial_reads() {
    let (mut c, now, ids) = core_with_streams(Config::default(), &[1, 3]);
    let (a, b) = (ids[0], ids[1]);
    // `a1` arrives in two pieces: 36 KiB into the empty buffer (split), a
    // partial read, then the rest (appended by copy).
    let a1 = pattern(2, 64 * 1024);
    let a2 = pattern(3, 17); // small, appended
    let b1 = pattern(4, 100); // small, empty buffer: copied
    let b2 = pattern(5, 40 * 1024); // large, non-empty buffer: copied
    let a3 = pattern(6, 50 * 1024); // large, non-empty buffer: copied
    let a4 = pattern(7, 33 * 1024); // large, after a full read: split
    let mut all = wire(&[data(1, &a1), data(1, &a2), data(3, &b1), data(3, &b2)]);

    let mut src = all.split_to(12 + 36 * 1024);
    c.handle_input(now, &mut src).expect("valid");
    assert!(src.is_empty());
    assert_eq!(c.stream_buffered(a), Some(36 * 1024));
    let mut got_a = read_up_to(&mut c, a, 1000, 333);
    src.extend_from_slice(&all);
    c.handle_input(now, &mut src).expect("valid");
    assert!(src.is_empty());
    c.check_invariants();
    assert_eq!(c.stream_buffered(a), Some(a1.len() + a2.len() - 1000));
    assert_eq!(c.stream_buffered(b), Some(b1.len() + b2.len()));
    assert_eq!(
        c.buffered_bytes(),
        a1.len() + a2.len() + b1.len() + b2.len() - 1000
    );

    // Partial reads on both, then more for `a`, cut mid-header.
    got_a.extend(read_up_to(&mut c, a, 20_000, 4096));
    let mut got_b = read_up_to(&mut c, b, 50, 50);
    let mut more = wire(&[data(1, &a3)]);
    let mut src = more.split_to(5);
    c.handle_input(now, &mut src).expect("valid");
    assert_eq!(src.len(), 5, "a partial header stays");
    src.extend_from_slice(&more);
    c.handle_input(now, &mut src).expect("valid");
    assert!(src.is_empty());
    c.check_invariants();

    // Drain `a` completely, then a large frame reaches its empty buffer.
    got_a.extend(read_up_to(&mut c, a, usize::MAX, 65_536));
    let mut expected_a = [a1, a2, a3].concat();
    assert_eq!(got_a, expected_a);
    assert_eq!(c.stream_buffered(a), Some(0));
    let mut src = wire(&[data(1, &a4)]);
    c.handle_input(now, &mut src).expect("valid");
    got_a.extend(read_up_to(&mut c, a, usize::MAX, 1 << 20));
    expected_a.extend_from_slice(&a4);
    assert_eq!(got_a, expected_a);

    got_b.extend(read_up_to(&mut c, b, usize::MAX, 999));
    assert_eq!(got_b, [b1, b2].concat());
    assert_all_read(&c, &ids);
    c.check_invariants();
}

/// One scripted frame: (stream index, payload length).
fn frames() -> impl Strategy<Value = Vec<(usize, usize)>> {
    let len = prop_oneof![1usize..300, 4096usize..70_000];
    prop::collection::vec((0usize..2, len), 1..14)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    /// Arbitrary frames on two streams, fed in arbitrary pieces, with
    /// arbitrary partial reads between the pieces: every byte arrives, in
    /// order, and the counters return to zero.
    #[test]
    fn arbitrary_pieces_and_reads_are_byte_exact(
        small_chunk in any::<bool>(),
        frames in frames(),
        pieces in prop::collection::vec(1usize..80_000, 1..40),
        reads in prop::collection::vec((0usize..2, 0usize..100_000, 1usize..20_000), 1..40),
    ) {
        // A 16 KiB read chunk makes the threshold 8 KiB, the default 32 KiB.
        let cfg = Config {
            read_chunk_size: if small_chunk { 16 * 1024 } else { 64 * 1024 },
            ..Config::default()
        };
        let (mut c, now, ids) = core_with_streams(cfg, &[1, 3]);
        let mut expected = [Vec::new(), Vec::new()];
        let mut all = BytesMut::new();
        for (i, (k, len)) in frames.into_iter().enumerate() {
            // Stay within the stream's initial window (no updates are sent).
            let len = len.min(INITIAL_WINDOW as usize - expected[k].len());
            if len == 0 {
                continue;
            }
            let body = pattern(i as u32, len);
            let id = [1, 3][k];
            all.extend_from_slice(&wire(&[data(id, &body)]));
            expected[k].extend_from_slice(&body);
        }
        let mut got = [Vec::new(), Vec::new()];
        let mut src = BytesMut::new();
        let mut pieces = pieces.into_iter().cycle();
        let mut reads = reads.into_iter().cycle();
        while !all.is_empty() {
            let n = pieces.next().unwrap().min(all.len());
            src.extend_from_slice(&all.split_to(n));
            c.handle_input(now, &mut src).expect("valid");
            prop_assert!(src.len() < 12, "only a partial header is left");
            c.check_invariants();
            let (k, len, chunk) = reads.next().unwrap();
            got[k].extend(read_up_to(&mut c, ids[k], len, chunk));
            let held: usize = ids.iter().map(|&id| c.stream_buffered(id).unwrap()).sum();
            prop_assert_eq!(held, c.buffered_bytes());
        }
        prop_assert!(src.is_empty());
        for k in 0..2 {
            got[k].extend(read_up_to(&mut c, ids[k], usize::MAX, 8192));
            prop_assert_eq!(&got[k], &expected[k], "stream {}", k);
        }
        assert_all_read(&c, &ids);
        c.check_invariants();
    }
}
