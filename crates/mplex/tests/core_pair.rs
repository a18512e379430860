//! Two cores in virtual time: lifecycle, flags on the wire, half-close,
//! resets, round robin, many streams, counters back to zero.

mod support;

use std::time::Duration;

use bytes::BytesMut;
use plexus_core::{MuxError, MuxLimits};
use plexus_mplex::frame::{Flag, Header};
use plexus_mplex::{Config, Event, ResetReason, StreamError, StreamId};
use support::*;

fn assert_idle(p: &Pair) {
    for c in [&p.a, &p.b] {
        c.check_invariants();
        assert_eq!(c.num_streams(), 0);
        assert_eq!(c.buffered_bytes(), 0);
        assert_eq!(c.pending_accepts(), 0);
        assert_eq!(c.pending_control(), 0);
        assert!(!c.wants_transmit());
    }
}

#[test]
fn open_accept_write_read_close_both_ways() {
    let mut p = default_pair();
    let s = p.a.open().unwrap();
    assert_eq!(s, StreamId::new(0, true), "streams are numbered from 0");
    p.a.write(s, b"hello").unwrap();
    p.a.finish(s).unwrap();
    assert_eq!(p.a.write(s, b"more"), Err(StreamError::WriteClosed));
    p.drive();
    let r = StreamId::new(0, false);
    assert_eq!(p.take_b_events(), vec![Event::InboundStream(r)]);
    assert_eq!(p.b.pending_accepts(), 1);
    assert_eq!(p.b.accept(), Some(r));
    assert_eq!(read_all(&mut p.b, r), b"hello");
    assert!(at_eof(&mut p.b, r));
    p.b.write(r, b"world").unwrap();
    p.b.finish(r).unwrap();
    p.drive();
    assert!(p.take_a_events().contains(&Event::Readable(s)));
    assert_eq!(read_all(&mut p.a, s), b"world");
    assert!(at_eof(&mut p.a, s));
    p.a.detach(s);
    p.b.detach(r);
    p.drive();
    assert_idle(&p);

    // The other way round; ids are never reused.
    let t = p.b.open().unwrap();
    assert_eq!(
        t,
        StreamId::new(0, true),
        "b numbers its own streams from 0"
    );
    p.b.write(t, b"x").unwrap();
    p.drive();
    let u = p.a.accept().unwrap();
    assert_eq!(u, StreamId::new(0, false));
    assert_eq!(read_all(&mut p.a, u), b"x");
    assert_eq!(p.a.open().unwrap(), StreamId::new(1, true));
}

#[test]
fn frames_carry_initiator_and_receiver_flags() {
    let mut p = default_pair();
    let s = p.a.open().unwrap();
    p.a.write(s, b"hi").unwrap();
    p.a.finish(s).unwrap();
    let out = drain_output(&mut p.a, p.now);
    assert_eq!(
        out,
        vec![
            (Header::new(0, Flag::NewStream, 0), vec![]),
            (Header::new(0, Flag::MessageInitiator, 2), b"hi".to_vec()),
            (Header::new(0, Flag::CloseInitiator, 0), vec![]),
        ]
    );
    let mut buf = wire(&[
        (out[0].0, &[][..]),
        (out[1].0, &b"hi"[..]),
        (out[2].0, &[][..]),
    ]);
    p.b.handle_input(p.now, &mut buf).unwrap();
    let r = p.b.accept().unwrap();
    assert_eq!(read_all(&mut p.b, r), b"hi");
    assert!(at_eof(&mut p.b, r));
    p.b.write(r, b"yo").unwrap();
    p.b.finish(r).unwrap();
    assert_eq!(
        drain_output(&mut p.b, p.now),
        vec![
            (Header::new(0, Flag::MessageReceiver, 2), b"yo".to_vec()),
            (Header::new(0, Flag::CloseReceiver, 0), vec![]),
        ]
    );
    // Closed both ways: a reset has nothing left to abort.
    p.b.reset(r).unwrap();
    assert!(drain_output(&mut p.b, p.now).is_empty());

    let s2 = p.a.open().unwrap();
    p.a.write(s2, b"q").unwrap();
    let mut buf = BytesMut::new();
    while p.a.poll_transmit(p.now, &mut buf, 1 << 20) {}
    p.b.handle_input(p.now, &mut buf).unwrap();
    let r2 = p.b.accept().unwrap();
    p.b.write(r2, b"answer").unwrap();
    p.b.finish(r2).unwrap();
    assert_eq!(
        drain_output(&mut p.b, p.now),
        vec![
            (Header::new(1, Flag::MessageReceiver, 6), b"answer".to_vec()),
            (Header::new(1, Flag::CloseReceiver, 0), vec![]),
        ]
    );
    p.b.reset(r2).unwrap();
    assert_eq!(
        drain_output(&mut p.b, p.now),
        vec![(Header::new(1, Flag::ResetReceiver, 0), vec![])]
    );
    p.a.reset(s2).unwrap();
    assert_eq!(
        drain_output(&mut p.a, p.now),
        vec![(Header::new(1, Flag::ResetInitiator, 0), vec![])]
    );
}

#[test]
fn both_sides_opening_the_same_number_get_distinct_streams() {
    let mut p = default_pair();
    let sa = p.a.open().unwrap();
    let sb = p.b.open().unwrap();
    assert_eq!(sa.id(), sb.id());
    p.a.write(sa, b"from a").unwrap();
    p.b.write(sb, b"from b").unwrap();
    p.drive();
    let ra = p.b.accept().unwrap();
    let rb = p.a.accept().unwrap();
    assert_eq!((ra.id(), rb.id()), (0, 0));
    assert!(!ra.is_local() && !rb.is_local());
    assert_eq!(read_all(&mut p.b, ra), b"from a");
    assert_eq!(read_all(&mut p.a, rb), b"from b");
    // Answers go back on the right stream of each pair.
    p.b.write(ra, b"re: a").unwrap();
    p.a.write(rb, b"re: b").unwrap();
    p.drive();
    assert_eq!(read_all(&mut p.a, sa), b"re: a");
    assert_eq!(read_all(&mut p.b, sb), b"re: b");
    assert_eq!(read_all(&mut p.a, rb), b"");
    assert_eq!(read_all(&mut p.b, ra), b"");
    // Closing one leaves its namesake open.
    p.a.finish(sa).unwrap();
    p.drive();
    assert!(at_eof(&mut p.b, ra));
    assert_eq!(p.a.read(rb, &mut [0; 1]), Err(StreamError::Blocked));
    assert_eq!(p.b.read(sb, &mut [0; 1]), Err(StreamError::Blocked));
}

#[test]
fn half_close_each_way() {
    let mut p = default_pair();
    // The opener closes first; the acceptor keeps writing afterwards.
    let s = p.a.open().unwrap();
    p.a.write(s, b"request").unwrap();
    p.a.finish(s).unwrap();
    p.drive();
    let r = p.b.accept().unwrap();
    assert_eq!(read_all(&mut p.b, r), b"request");
    assert!(at_eof(&mut p.b, r));
    let mut want = Vec::new();
    for i in 0..10u32 {
        let chunk = pattern(i, 10_000);
        write_all(&mut p.b, r, &chunk);
        want.extend_from_slice(&chunk);
        p.drive();
    }
    assert_eq!(
        p.a.stream_buffered(s),
        Some(want.len()),
        "still open from b"
    );
    p.b.finish(r).unwrap();
    p.drive();
    assert!(read_all(&mut p.a, s) == want);
    assert!(at_eof(&mut p.a, s));

    // The acceptor closes first; the opener keeps writing afterwards.
    let s = p.a.open().unwrap();
    p.a.write(s, b"hello").unwrap();
    p.drive();
    let r = p.b.accept().unwrap();
    p.b.write(r, b"bye").unwrap();
    p.b.finish(r).unwrap();
    assert_eq!(p.b.write(r, b"x"), Err(StreamError::WriteClosed));
    p.drive();
    assert_eq!(read_all(&mut p.a, s), b"bye");
    assert!(at_eof(&mut p.a, s));
    let tail = pattern(99, 300_000);
    let mut off = 0;
    while off < tail.len() {
        off += p.a.write(s, &tail[off..]).unwrap();
        p.drive();
    }
    p.a.finish(s).unwrap();
    p.drive();
    let got = read_all(&mut p.b, r);
    let mut want = b"hello".to_vec();
    want.extend_from_slice(&tail);
    assert!(got == want, "byte-exact");
    assert!(at_eof(&mut p.b, r));
    assert!(p.a.error().is_none() && p.b.error().is_none());
}

#[test]
fn resets_both_ways() {
    let mut p = default_pair();
    let s1 = p.a.open().unwrap();
    let s2 = p.a.open().unwrap();
    p.a.write(s1, b"one").unwrap();
    p.a.write(s2, b"two").unwrap();
    p.drive();
    let r1 = p.b.accept().unwrap();
    let r2 = p.b.accept().unwrap();

    // a resets s1 while b has not read "one": b still reads it, then the
    // reset. Writes fail at once. s2 is unaffected.
    p.a.reset(s1).unwrap();
    assert_eq!(
        p.a.read(s1, &mut [0; 4]),
        Err(StreamError::Reset(ResetReason::Local))
    );
    assert_eq!(
        p.a.write(s1, b"x"),
        Err(StreamError::Reset(ResetReason::Local))
    );
    p.drive();
    assert!(p.take_b_events().contains(&Event::Reset(r1)));
    assert_eq!(
        p.b.write(r1, b"x"),
        Err(StreamError::Reset(ResetReason::Remote))
    );
    assert_eq!(read_all(&mut p.b, r1), b"one");
    assert_eq!(
        p.b.read(r1, &mut [0; 4]),
        Err(StreamError::Reset(ResetReason::Remote))
    );
    assert_eq!(p.b.reset_reason(r1), Some(ResetReason::Remote));
    assert_eq!(read_all(&mut p.b, r2), b"two");

    // b resets r2 after a wrote more: a sees the reset.
    p.b.reset(r2).unwrap();
    p.a.write(s2, b"late").unwrap();
    p.drive();
    assert!(p.take_a_events().contains(&Event::Reset(s2)));
    assert_eq!(
        p.a.write(s2, b"x"),
        Err(StreamError::Reset(ResetReason::Remote))
    );
    assert_eq!(p.b.buffered_bytes(), 0, "data after our reset is dropped");

    for id in [s1, s2] {
        p.a.detach(id);
    }
    for id in [r1, r2] {
        p.b.detach(id);
    }
    p.drive();
    assert_idle(&p);

    // Dropping a stream that is still open resets it.
    let s3 = p.a.open().unwrap();
    p.a.write(s3, b"x").unwrap();
    p.drive();
    let r3 = p.b.accept().unwrap();
    p.a.detach(s3);
    p.drive();
    assert_eq!(read_all(&mut p.b, r3), b"x");
    assert_eq!(
        p.b.read(r3, &mut [0; 4]),
        Err(StreamError::Reset(ResetReason::Remote))
    );
    assert_eq!(p.a.num_streams(), 0);
}

#[test]
fn a_reset_before_new_stream_went_out_sends_nothing() {
    let mut p = default_pair();
    let s = p.a.open().unwrap();
    p.a.write(s, b"never sent").unwrap();
    p.a.reset(s).unwrap();
    p.a.detach(s);
    assert!(drain_output(&mut p.a, p.now).is_empty());
    assert_eq!(p.a.num_streams(), 0);
}

#[test]
fn detach_after_finish_still_delivers_everything() {
    let mut p = default_pair();
    let s = p.a.open().unwrap();
    let data = pattern(5, 200_000);
    write_all(&mut p.a, s, &data);
    p.a.finish(s).unwrap();
    p.a.detach(s);
    assert_eq!(
        p.a.num_streams(),
        1,
        "kept until flushed and the remote closes"
    );
    p.drive();
    let r = p.b.accept().unwrap();
    assert_eq!(read_all(&mut p.b, r), data);
    assert!(at_eof(&mut p.b, r));
    // b keeps writing into a's discarded side.
    write_all(&mut p.b, r, &pattern(6, 100_000));
    p.drive();
    assert_eq!(p.a.buffered_bytes(), 0);
    p.b.finish(r).unwrap();
    p.drive();
    assert_eq!(p.a.num_streams(), 0);
    p.b.detach(r);
    assert_idle(&p);
}

#[test]
fn dropping_a_fully_read_stream_finishes_it_instead_of_resetting() {
    let mut p = default_pair();
    let s = p.a.open().unwrap();
    p.a.write(s, b"request").unwrap();
    p.a.finish(s).unwrap();
    p.drive();
    let r = p.b.accept().unwrap();
    assert_eq!(read_all(&mut p.b, r), b"request");
    assert!(at_eof(&mut p.b, r));
    p.b.write(r, b"response").unwrap();
    p.b.detach(r);
    p.drive();
    assert_eq!(read_all(&mut p.a, s), b"response");
    assert!(at_eof(&mut p.a, s), "a clean end, not a reset");
    assert!(!p.take_a_events().contains(&Event::Reset(s)));
    p.a.detach(s);
    assert_idle(&p);

    // With unread data left, dropping resets.
    let s = p.a.open().unwrap();
    p.a.write(s, b"unread").unwrap();
    p.a.finish(s).unwrap();
    p.drive();
    let r = p.b.accept().unwrap();
    p.b.detach(r);
    p.drive();
    assert!(p.take_a_events().contains(&Event::Reset(s)));
}

#[test]
fn polite_close_flushes_queued_data_then_closes() {
    let mut p = default_pair();
    let s = p.a.open().unwrap();
    write_all(&mut p.a, s, &pattern(7, 100_000));
    p.a.finish(s).unwrap();
    p.a.close();
    assert_eq!(p.a.write(s, b"x"), Err(StreamError::ConnectionClosed));
    assert!(matches!(p.a.open(), Err(MuxError::Closed)));
    p.drive();
    assert!(p.a.is_closed());
    assert!(p.a.error().is_none());
    assert!(p.take_a_events().contains(&Event::Closed));
    let r = p.b.accept().unwrap();
    assert_eq!(read_all(&mut p.b, r), pattern(7, 100_000));
    assert!(at_eof(&mut p.b, r));
}

#[test]
fn close_deadline_bounds_flushing() {
    let mut p = default_pair();
    let s = p.a.open().unwrap();
    write_all(&mut p.a, s, &pattern(8, 200_000));
    p.a.close();
    // Nobody transmits (the remote does not read): the deadline closes it.
    let now = p.now;
    let mut out = BytesMut::new();
    p.a.poll_transmit(now, &mut out, 10);
    let deadline = p.a.poll_timeout().expect("close deadline");
    assert_eq!(deadline, now + Config::default().close_timeout);
    p.a.handle_timeout(deadline - std::time::Duration::from_millis(1));
    assert!(!p.a.is_closed());
    p.a.handle_timeout(deadline);
    assert!(p.a.is_closed());
    assert_eq!(p.a.poll_timeout(), None);
}

#[test]
fn a_thousand_concurrent_streams_and_every_counter_back_to_zero() {
    let limits = MuxLimits {
        max_streams: 2000,
        max_accept_backlog: 1000,
        ..MuxLimits::default()
    };
    let mut p = new_pair(Config::default(), limits);
    let ids: Vec<StreamId> = (0..1000).map(|_| p.a.open().unwrap()).collect();
    for (i, &id) in ids.iter().enumerate() {
        write_all(&mut p.a, id, &pattern(i as u32, 1000 + i));
        p.a.finish(id).unwrap();
    }
    p.drive();
    assert_eq!(p.b.pending_accepts(), 1000);
    let mut accepted = Vec::new();
    while let Some(r) = p.b.accept() {
        accepted.push(r);
    }
    assert_eq!(accepted.len(), 1000);
    for (i, &r) in accepted.iter().enumerate() {
        assert_eq!(r, StreamId::new(i as u64, false));
        let got = read_all(&mut p.b, r);
        assert_eq!(got, pattern(i as u32, 1000 + i), "stream {r}");
        assert!(at_eof(&mut p.b, r));
        let back: Vec<u8> = got.iter().rev().copied().collect();
        write_all(&mut p.b, r, &back);
        p.b.finish(r).unwrap();
    }
    p.drive();
    for (i, &id) in ids.iter().enumerate() {
        let mut want = pattern(i as u32, 1000 + i);
        want.reverse();
        assert_eq!(read_all(&mut p.a, id), want);
        assert!(at_eof(&mut p.a, id));
        p.a.detach(id);
    }
    for r in accepted {
        p.b.detach(r);
    }
    p.drive();
    assert_idle(&p);
}

#[test]
fn round_robin_keeps_a_bulk_stream_from_starving_others() {
    let mut p = default_pair();
    let bulk = p.a.open().unwrap();
    let small = p.a.open().unwrap();
    write_all(&mut p.a, bulk, &pattern(8, 256 * 1024));
    p.a.write(small, b"urgent").unwrap();
    let budget = 3 * (64 * 1024 + 8);
    let mut out = BytesMut::new();
    assert!(p.a.poll_transmit(p.now, &mut out, budget));
    assert!(out.len() <= budget);
    let frames = parse(&out);
    let order: Vec<(u64, Flag)> = frames.iter().map(|(h, _)| (h.stream_id, h.flag)).collect();
    assert_eq!(
        &order[..5],
        &[
            (0, Flag::NewStream),
            (0, Flag::MessageInitiator),
            (1, Flag::NewStream),
            (1, Flag::MessageInitiator),
            (0, Flag::MessageInitiator),
        ],
        "one data frame per stream per turn"
    );
    assert!(frames.iter().all(|(_, b)| b.len() <= 64 * 1024));
    assert_eq!(frames[1].1.len(), 64 * 1024);
    assert_eq!(frames[3].1, b"urgent");
    // Tiny budgets are respected exactly and still make progress.
    for budget in [1, 2, 3, 5, 100] {
        let mut out = BytesMut::new();
        p.a.poll_transmit(p.now, &mut out, budget);
        assert!(out.len() <= budget, "{} > {budget}", out.len());
        if budget >= 3 {
            assert!(!out.is_empty(), "budget {budget} made no progress");
        }
    }
}

#[test]
fn large_writes_are_split_and_arrive_byte_exact() {
    let cfg = Config {
        max_send_frame: 10_000,
        ..Config::default()
    };
    let mut p = new_pair(cfg, MuxLimits::default());
    let s = p.a.open().unwrap();
    let data = pattern(11, 3 << 20);
    let mut off = 0;
    let mut got = Vec::new();
    let mut r = None;
    let mut max_frame = 0;
    while got.len() < data.len() {
        if off < data.len()
            && let Ok(n) = p.a.write(s, &data[off..])
        {
            off += n;
        }
        let mut out = BytesMut::new();
        while p.a.poll_transmit(p.now, &mut out, 1 << 20) {}
        for (h, body) in parse(&out) {
            if h.flag == Flag::MessageInitiator {
                max_frame = max_frame.max(body.len());
            }
        }
        p.b.handle_input(p.now, &mut out).unwrap();
        if r.is_none() {
            r = p.b.accept();
        }
        got.extend(read_all(&mut p.b, r.unwrap()));
        while p.a.poll_event().is_some() {}
    }
    assert_eq!(max_frame, 10_000);
    assert!(got == data, "byte-exact");
}

#[test]
fn writes_wait_for_the_send_buffer_to_drain() {
    let cfg = Config {
        max_stream_send_buffer: 1000,
        ..Config::default()
    };
    let mut p = new_pair(cfg, MuxLimits::default());
    let s = p.a.open().unwrap();
    assert_eq!(p.a.write(s, &[1; 1500]), Ok(1000));
    assert_eq!(p.a.write(s, &[1; 10]), Err(StreamError::Blocked));
    p.drive();
    assert!(p.take_a_events().contains(&Event::Writable(s)));
    assert_eq!(p.a.write(s, &[1; 1500]), Ok(1000));
}

#[test]
fn stream_cap_applies_to_local_opens() {
    let limits = MuxLimits {
        max_streams: 2,
        ..MuxLimits::default()
    };
    let mut p = new_pair(Config::default(), limits);
    let s = p.a.open().unwrap();
    p.a.open().unwrap();
    assert!(matches!(
        p.a.open(),
        Err(MuxError::LimitReached("max_streams"))
    ));
    p.a.reset(s).unwrap();
    p.a.detach(s);
    assert_eq!(p.a.open().unwrap(), StreamId::new(2, true));
}

#[test]
fn unknown_and_detached_ids_are_errors_for_the_application() {
    let mut p = default_pair();
    let s = p.a.open().unwrap();
    p.a.detach(s);
    assert_eq!(p.a.read(s, &mut [0; 1]), Err(StreamError::Unknown(s)));
    assert_eq!(p.a.write(s, b"x"), Err(StreamError::Unknown(s)));
    assert_eq!(p.a.finish(s), Err(StreamError::Unknown(s)));
    assert_eq!(p.a.reset(s), Err(StreamError::Unknown(s)));
    // A remote stream still in the backlog is not the application's yet.
    let t = p.b.open().unwrap();
    p.drive();
    let r = StreamId::new(t.id(), false);
    assert_eq!(p.a.read(r, &mut [0; 1]), Err(StreamError::Unknown(r)));
}

/// A bulk stream into a reader capped at 64 KiB, written 64 KiB frames at a
/// time: the receiver has to block (the sender's frames do not fit) and wait
/// for the reader.
fn slow_reader_pair() -> Pair {
    let cfg = Config {
        max_buffer_per_stream: 64 * 1024,
        ..Config::default()
    };
    assert_eq!(cfg.max_block, Duration::from_secs(5));
    new_pair(cfg, MuxLimits::default())
}

#[test]
fn a_slow_reader_that_catches_up_within_max_block_gets_everything() {
    let mut p = slow_reader_pair();
    let total = 1 << 20;
    let data = pattern(11, total);
    let id = p.a.open().unwrap();
    let mut sent = 0;
    let mut got = Vec::with_capacity(total);
    let mut r = None;
    let mut buf = vec![0u8; 16 * 1024];
    let mut longest_block = Duration::ZERO;
    while got.len() < total {
        if sent < total
            && let Ok(n) = p.a.write(id, &data[sent..])
        {
            sent += n;
            if sent == total {
                p.a.finish(id).unwrap();
            }
        }
        p.drive();
        let r = *r.get_or_insert_with(|| p.b.accept().expect("inbound stream"));
        if let Some((on, since)) = p.b.read_blocked_on() {
            assert_eq!(on, r);
            longest_block = longest_block.max(p.now - since);
        }
        // Any deadline due would be a bug: the reader catches up in time.
        if let Some(t) = p.b.poll_timeout() {
            assert!(t > p.now, "block deadline reached");
        }
        // One 16 KiB read per virtual second: a 64 KiB frame waits for four.
        match p.b.read(r, &mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(StreamError::Blocked) => {}
            Err(e) => panic!("reader failed: {e}"),
        }
        p.now += Duration::from_secs(1);
        p.a.handle_timeout(p.now);
        p.b.handle_timeout(p.now);
    }
    assert!(got == data, "byte-exact");
    assert!(
        longest_block == Duration::from_secs(3),
        "input blocked for a while, but less than max_block: {longest_block:?}"
    );
    let r = r.unwrap();
    assert!(at_eof(&mut p.b, r));
    assert_eq!(p.b.reset_reason(r), None);
    assert!(!p.take_b_events().contains(&Event::Reset(r)));
    assert!(!p.take_a_events().contains(&Event::Reset(id)));
    p.b.finish(r).unwrap();
    p.b.detach(r);
    p.drive();
    assert!(at_eof(&mut p.a, id));
    p.a.detach(id);
    p.drive();
    assert_idle(&p);
}

#[test]
fn a_reader_that_never_reads_is_reset_exactly_at_the_deadline_and_others_carry_on() {
    let mut p = slow_reader_pair();
    let slow = p.a.open().unwrap();
    let other = p.a.open().unwrap();
    write_all(&mut p.a, other, b"before, ");
    write_all(&mut p.a, slow, &pattern(1, 200 * 1024));
    p.drive();
    let slow_r = p.b.accept().unwrap();
    let other_r = p.b.accept().unwrap();
    assert_eq!(read_all(&mut p.b, other_r), b"before, ");
    write_all(&mut p.a, other, b"after the block");
    p.a.finish(other).unwrap();
    p.drive();
    let (on, since) = p.b.read_blocked_on().expect("input blocked");
    assert_eq!(on, slow_r);
    let deadline = since + Duration::from_secs(5);
    assert_eq!(p.b.poll_timeout(), Some(deadline));
    assert_eq!(p.b.stream_buffered(slow_r), Some(64 * 1024));
    // The other stream's data is behind the blocked frame: it waits too.
    assert_eq!(p.b.stream_buffered(other_r), Some(0));
    assert!(p.b_unread() > 0);

    p.now = deadline - Duration::from_millis(1);
    p.b.handle_timeout(p.now);
    p.drive();
    assert!(p.b.is_read_blocked());
    assert_eq!(p.b.reset_reason(slow_r), None);

    p.now = deadline;
    p.b.handle_timeout(p.now);
    let limit = ResetReason::BufferOverflow { limit: 64 * 1024 };
    assert_eq!(p.b.reset_reason(slow_r), Some(limit));
    p.drive();
    assert!(!p.b.is_read_blocked());
    assert_eq!(p.b_unread(), 0, "everything after the block consumed");
    // The sender learns of the reset; the other stream carries on.
    assert!(p.take_a_events().contains(&Event::Reset(slow)));
    assert_eq!(
        p.a.write(slow, b"x"),
        Err(StreamError::Reset(ResetReason::Remote))
    );
    assert_eq!(read_all(&mut p.b, other_r), b"after the block");
    assert!(at_eof(&mut p.b, other_r));
    // The slow reader gets what was buffered, then the typed reason.
    assert_eq!(read_all(&mut p.b, slow_r), pattern(1, 64 * 1024));
    assert_eq!(
        p.b.read(slow_r, &mut [0; 1]),
        Err(StreamError::Reset(limit))
    );
    for c in [&p.a, &p.b] {
        assert!(c.error().is_none());
    }
    p.b.finish(other_r).unwrap();
    p.b.detach(other_r);
    p.b.detach(slow_r);
    p.drive();
    assert!(at_eof(&mut p.a, other));
    p.a.detach(other);
    p.a.detach(slow);
    p.drive();
    assert_idle(&p);
}

#[test]
fn the_shared_driver_glue_reaches_every_core_method() {
    let p = default_pair();
    plexus_testkit::pair::exercise_every_method(p.a, p.b);
}
