//! A scripted hostile remote: raw frames into one core. Asserts typed errors
//! with blame, bounded state, and that other streams carry on where the
//! protocol allows.

mod support;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use plexus_core::{Blame, MuxError, MuxLimits};
use plexus_mplex::frame::{Flag, FrameError, Header, MAX_FRAME_SIZE};
use plexus_mplex::{Config, ConnError, Core, Event, ResetReason, StreamError, StreamId};
use proptest::prelude::*;
use support::*;

fn core_with(cfg: Config, limits: MuxLimits) -> (Core, Instant) {
    (Core::new(cfg, limits), Instant::now())
}

fn core() -> (Core, Instant) {
    core_with(Config::default(), MuxLimits::default())
}

fn frame(id: u64, flag: Flag, body: &[u8]) -> (Header, &[u8]) {
    (Header::new(id, flag, body.len() as u32), body)
}

/// The remote opens its stream `id`.
fn open(id: u64) -> (Header, &'static [u8]) {
    frame(id, Flag::NewStream, b"")
}

/// Data from the remote on a stream it opened.
fn data(id: u64, body: &[u8]) -> (Header, &[u8]) {
    frame(id, Flag::MessageInitiator, body)
}

/// The remote closes a stream it opened.
fn close(id: u64) -> (Header, &'static [u8]) {
    frame(id, Flag::CloseInitiator, b"")
}

/// The remote resets a stream it opened.
fn reset(id: u64) -> (Header, &'static [u8]) {
    frame(id, Flag::ResetInitiator, b"")
}

fn theirs(id: u64) -> StreamId {
    StreamId::new(id, false)
}

fn feed(c: &mut Core, now: Instant, frames: &[(Header, &[u8])]) -> Result<(), ConnError> {
    let mut buf = wire(frames);
    let r = c.handle_input(now, &mut buf);
    if r.is_ok() {
        assert!(buf.is_empty(), "all complete frames consumed");
    }
    c.check_invariants();
    r
}

/// After a peer-caused error: typed error with blame, closed at once with
/// nothing more on the wire, and the error sticks.
fn assert_failed(c: &mut Core, now: Instant, r: Result<(), ConnError>, blame: Blame) -> ConnError {
    let e = r.expect_err("connection error");
    assert_eq!(e.blame(), blame, "{e}");
    assert_eq!(c.error(), Some(&e));
    assert!(drain_events(c).contains(&Event::Closed));
    assert!(drain_output(c, now).is_empty(), "no output after a failure");
    assert!(c.is_closed());
    assert_eq!(
        c.handle_input(now, &mut BytesMut::from(&[0u8, 0][..])),
        Err(e.clone())
    );
    match c.open() {
        Err(MuxError::Failed { blame: b, .. }) => assert_eq!(b, blame),
        other => panic!("{other:?}"),
    }
    match c.accept_error() {
        Some(MuxError::Failed { blame: b, .. }) => assert_eq!(b, blame),
        other => panic!("{other:?}"),
    }
    e
}

#[test]
fn oversized_frame_is_rejected_from_its_prefix() {
    let (mut c, now) = core();
    feed(&mut c, now, &[open(0), data(0, b"ok")]).unwrap();
    let s = c.accept().unwrap();
    // Only the prefix: the 1 MiB + 1 body never needs to arrive.
    let mut buf = BytesMut::new();
    Header::new(0, Flag::MessageInitiator, MAX_FRAME_SIZE + 1).encode_into(&mut buf);
    let r = c.handle_input(now, &mut buf);
    let e = assert_failed(&mut c, now, r, Blame::PeerMisbehaved);
    assert_eq!(
        e,
        ConnError::Frame(FrameError::TooLarge {
            len: u64::from(MAX_FRAME_SIZE) + 1,
            max: MAX_FRAME_SIZE
        })
    );
    // What was accepted before stays readable, then the connection error.
    assert_eq!(read_all(&mut c, s), b"ok");
    assert_eq!(c.read(s, &mut [0; 1]), Err(StreamError::Connection(e)));
}

#[test]
fn a_full_size_frame_is_accepted() {
    let (mut c, now) = core();
    let big = vec![9u8; MAX_FRAME_SIZE as usize];
    feed(&mut c, now, &[open(0), data(0, &big)]).unwrap();
    let s = c.accept().unwrap();
    assert_eq!(c.stream_buffered(s), Some(big.len()));
}

#[test]
fn bad_prefixes_are_typed_errors() {
    let cases: Vec<(Vec<u8>, FrameError)> = vec![
        (vec![0x07, 0x00], FrameError::InvalidFlag(7)),
        (vec![0x0f, 0x00], FrameError::InvalidFlag(7)),
        (vec![0xff; 9], FrameError::HeaderTooLong),
        (vec![0x80, 0x00, 0x00], FrameError::NotMinimal),
        (vec![0x02, 0x80, 0x00], FrameError::NotMinimal),
        (
            [&[0x02][..], &[0xff; 10][..]].concat(),
            FrameError::LengthTooLong,
        ),
    ];
    for (bytes, want) in cases {
        let (mut c, now) = core();
        let r = c.handle_input(now, &mut BytesMut::from(&bytes[..]));
        assert_eq!(
            assert_failed(&mut c, now, r, Blame::PeerMisbehaved),
            ConnError::Frame(want)
        );
    }
}

#[test]
fn a_smaller_frame_limit_is_enforced() {
    let cfg = Config {
        max_frame_size: 1000,
        ..Config::default()
    };
    let (mut c, now) = core_with(cfg, MuxLimits::default());
    feed(&mut c, now, &[open(0), data(0, &[1; 1000])]).unwrap();
    let r = feed(&mut c, now, &[data(0, &[1; 1001])]);
    assert!(matches!(
        assert_failed(&mut c, now, r, Blame::PeerMisbehaved),
        ConnError::Frame(FrameError::TooLarge {
            len: 1001,
            max: 1000
        })
    ));
}

#[test]
fn streams_beyond_the_cap_are_reset_and_the_others_carry_on() {
    let limits = MuxLimits {
        max_streams: 4,
        ..MuxLimits::default()
    };
    let (mut c, now) = core_with(Config::default(), limits);
    let frames: Vec<_> = (0..6).map(open).collect();
    feed(&mut c, now, &frames).unwrap();
    assert_eq!(c.num_streams(), 4);
    assert_eq!(
        drain_output(&mut c, now),
        vec![
            (Header::new(4, Flag::ResetReceiver, 0), vec![]),
            (Header::new(5, Flag::ResetReceiver, 0), vec![]),
        ]
    );
    // What the remote still sends on a refused stream is ignored.
    feed(&mut c, now, &[data(4, b"late"), close(5), reset(4)]).unwrap();
    assert_eq!(c.buffered_bytes(), 0);
    // Existing streams carry on.
    feed(&mut c, now, &[data(0, b"hi")]).unwrap();
    let s = c.accept().unwrap();
    assert_eq!(read_all(&mut c, s), b"hi");
    assert!(c.error().is_none());
    assert!(drain_output(&mut c, now).is_empty());
}

#[test]
fn accept_backlog_overflow_resets_excess_streams() {
    let limits = MuxLimits {
        max_accept_backlog: 2,
        ..MuxLimits::default()
    };
    let (mut c, now) = core_with(Config::default(), limits);
    feed(&mut c, now, &[open(0), open(1), open(2)]).unwrap();
    assert_eq!(c.pending_accepts(), 2);
    assert_eq!(
        drain_output(&mut c, now),
        vec![(Header::new(2, Flag::ResetReceiver, 0), vec![])]
    );
    // Accepting makes room again.
    assert_eq!(c.accept(), Some(theirs(0)));
    feed(&mut c, now, &[open(3)]).unwrap();
    assert_eq!(c.pending_accepts(), 2);
    assert!(drain_output(&mut c, now).is_empty());
}

/// Feed frames that are expected to block input: returns what stays
/// unconsumed (the blocked frame and everything after it).
fn feed_blocked(c: &mut Core, now: Instant, frames: &[(Header, &[u8])]) -> BytesMut {
    let mut buf = wire(frames);
    c.handle_input(now, &mut buf).unwrap();
    c.check_invariants();
    assert!(c.is_read_blocked(), "input blocked");
    buf
}

const MAX_BLOCK: Duration = Duration::from_secs(5);

/// Two accepted remote streams with one 1000-byte cap, stream 0 full, and
/// input blocked at one more byte for it followed by data for stream 1.
fn blocked_on_s0() -> (Core, Instant, StreamId, StreamId, BytesMut) {
    let cfg = Config {
        max_buffer_per_stream: 1000,
        ..Config::default()
    };
    assert_eq!(cfg.max_block, MAX_BLOCK, "the default");
    let (mut c, now) = core_with(cfg, MuxLimits::default());
    feed(&mut c, now, &[open(0), open(1)]).unwrap();
    let s0 = c.accept().unwrap();
    let s1 = c.accept().unwrap();
    // Up to the cap is fine.
    feed(&mut c, now, &[data(0, &[1; 600]), data(0, &[2; 400])]).unwrap();
    assert_eq!(c.stream_buffered(s0), Some(1000));
    assert!(!c.is_read_blocked());
    drain_events(&mut c);
    // One more byte does not fit: input stops at that frame, which stays in
    // `src` with everything after it; nothing is reset yet.
    let frames = [data(0, &[3; 1]), data(1, b"fine")];
    let buf = feed_blocked(&mut c, now, &frames);
    assert_eq!(buf, wire(&frames), "nothing consumed");
    assert_eq!(c.read_blocked_on(), Some((s0, now)));
    assert_eq!(c.poll_timeout(), Some(now + MAX_BLOCK));
    assert_eq!(c.reset_reason(s0), None);
    assert!(drain_events(&mut c).is_empty());
    assert!(drain_output(&mut c, now).is_empty());
    (c, now, s0, s1, buf)
}

#[test]
fn overflow_blocks_input_then_resets_only_that_stream_at_the_deadline() {
    let (mut c, now, s0, s1, mut buf) = blocked_on_s0();
    // Further input is not consumed while blocked; the other stream waits.
    let mut more = buf.clone();
    c.handle_input(now, &mut more).unwrap();
    assert_eq!(more, buf);
    assert_eq!(c.stream_buffered(s1), Some(0));
    // Just before the deadline: still blocked, nothing reset.
    let deadline = now + MAX_BLOCK;
    c.handle_timeout(deadline - Duration::from_millis(1));
    assert!(c.is_read_blocked());
    assert_eq!(c.reset_reason(s0), None);
    // At the deadline: the stream is reset and input resumes.
    c.handle_timeout(deadline);
    c.check_invariants();
    assert!(!c.is_read_blocked());
    assert_eq!(c.poll_timeout(), None);
    assert!(drain_events(&mut c).contains(&Event::Reset(s0)));
    assert_eq!(
        drain_output(&mut c, deadline),
        vec![(Header::new(0, Flag::ResetReceiver, 0), vec![])]
    );
    let limit = ResetReason::BufferOverflow { limit: 1000 };
    assert_eq!(c.reset_reason(s0), Some(limit));
    assert_eq!(c.write(s0, b"x"), Err(StreamError::Reset(limit)));
    // The waiting frame is discarded; the one behind it is delivered.
    c.handle_input(deadline, &mut buf).unwrap();
    assert!(buf.is_empty());
    assert_eq!(read_all(&mut c, s1), b"fine");
    // The reader gets every byte accepted before, then the typed reason.
    let mut want = vec![1u8; 600];
    want.extend_from_slice(&[2; 400]);
    assert_eq!(read_all(&mut c, s0), want);
    assert_eq!(c.read(s0, &mut [0; 1]), Err(StreamError::Reset(limit)));
    assert_eq!(limit.blame(), Blame::Local);
    // Later data for it is ignored; the other stream and the connection
    // carry on.
    feed(&mut c, deadline, &[data(0, &[4; 500]), data(1, b"!")]).unwrap();
    assert_eq!(read_all(&mut c, s1), b"!");
    assert!(c.error().is_none());
    c.detach(s0);
    assert_eq!(c.buffered_bytes(), 0);
    assert!(
        drain_output(&mut c, deadline).is_empty(),
        "reset sent only once"
    );
}

#[test]
fn reading_makes_room_and_input_resumes_with_nothing_lost() {
    let (mut c, now, s0, s1, mut buf) = blocked_on_s0();
    // Reading one byte makes room for the one-byte frame.
    let mut one = [0u8; 1];
    assert_eq!(c.read(s0, &mut one), Ok(1));
    assert!(!c.is_read_blocked());
    assert_eq!(c.poll_timeout(), None, "no deadline once it fits");
    let later = now + Duration::from_secs(1);
    c.handle_input(later, &mut buf).unwrap();
    c.check_invariants();
    assert!(buf.is_empty());
    // A late timer is harmless.
    c.handle_timeout(now + MAX_BLOCK);
    let mut want = vec![1u8; 599];
    want.extend_from_slice(&[2; 400]);
    want.push(3);
    assert_eq!(read_all(&mut c, s0), want);
    assert_eq!(read_all(&mut c, s1), b"fine");
    assert_eq!(c.reset_reason(s0), None);
    assert!(drain_output(&mut c, later).is_empty(), "no reset");
    assert_eq!(c.buffered_bytes(), 0);
}

#[test]
fn resetting_or_dropping_the_blocked_stream_resumes_input_at_once() {
    for drop_it in [false, true] {
        let (mut c, now, s0, s1, mut buf) = blocked_on_s0();
        if drop_it {
            c.detach(s0);
        } else {
            c.reset(s0).unwrap();
        }
        assert!(!c.is_read_blocked());
        assert_eq!(c.poll_timeout(), None);
        c.handle_input(now, &mut buf).unwrap();
        c.check_invariants();
        assert!(buf.is_empty(), "the waiting frame is discarded");
        assert_eq!(read_all(&mut c, s1), b"fine");
        assert_eq!(
            drain_output(&mut c, now),
            vec![(Header::new(0, Flag::ResetReceiver, 0), vec![])]
        );
        if !drop_it {
            assert_eq!(
                c.read(s0, &mut [0; 1]),
                Err(StreamError::Reset(ResetReason::Local))
            );
            c.detach(s0);
        }
        assert_eq!(c.buffered_bytes(), 0);
    }
}

#[test]
fn zero_max_block_or_a_frame_beyond_the_cap_resets_at_once() {
    // max_block zero: the old behaviour, never stalls.
    let cfg = Config {
        max_buffer_per_stream: 100,
        max_block: Duration::ZERO,
        ..Config::default()
    };
    let (mut c, now) = core_with(cfg, MuxLimits::default());
    feed(&mut c, now, &[open(0)]).unwrap();
    let s0 = c.accept().unwrap();
    feed(&mut c, now, &[data(0, &[0; 100]), data(0, &[0; 1])]).unwrap();
    assert!(!c.is_read_blocked());
    assert_eq!(
        c.reset_reason(s0),
        Some(ResetReason::BufferOverflow { limit: 100 })
    );
    // A frame longer than the cap could never fit: reset without waiting.
    let cfg = Config {
        max_buffer_per_stream: 100,
        ..Config::default()
    };
    let (mut c, now) = core_with(cfg, MuxLimits::default());
    feed(&mut c, now, &[open(0), open(1)]).unwrap();
    let s0 = c.accept().unwrap();
    let s1 = c.accept().unwrap();
    feed(&mut c, now, &[data(0, &[0; 101]), data(1, b"x")]).unwrap();
    assert!(!c.is_read_blocked());
    assert_eq!(
        c.reset_reason(s0),
        Some(ResetReason::BufferOverflow { limit: 100 })
    );
    assert_eq!(read_all(&mut c, s1), b"x");
}

#[test]
fn unaccepted_stream_overflowing_is_dropped_from_the_backlog_at_the_deadline() {
    let cfg = Config {
        max_buffer_per_stream: 100,
        ..Config::default()
    };
    let (mut c, now) = core_with(cfg, MuxLimits::default());
    let mut buf = feed_blocked(
        &mut c,
        now,
        &[open(0), data(0, &[0; 100]), data(0, &[0; 1])],
    );
    assert_eq!(c.pending_accepts(), 1);
    c.handle_timeout(now + MAX_BLOCK);
    c.check_invariants();
    assert_eq!((c.pending_accepts(), c.num_streams()), (0, 0));
    assert_eq!(c.buffered_bytes(), 0);
    assert_eq!(
        drain_output(&mut c, now),
        vec![(Header::new(0, Flag::ResetReceiver, 0), vec![])]
    );
    c.handle_input(now + MAX_BLOCK, &mut buf).unwrap();
    assert!(buf.is_empty());
}

#[test]
fn connection_buffer_cap_blocks_then_resets_the_stream_that_does_not_fit() {
    let cfg = Config {
        max_buffer_per_stream: 1000,
        max_buffer_per_connection: 1500,
        ..Config::default()
    };
    let (mut c, now) = core_with(cfg, MuxLimits::default());
    feed(&mut c, now, &[open(0), open(1)]).unwrap();
    let s0 = c.accept().unwrap();
    let s1 = c.accept().unwrap();
    feed(&mut c, now, &[data(0, &[0; 900]), data(1, &[1; 600])]).unwrap();
    assert_eq!(c.buffered_bytes(), 1500);
    let mut buf = feed_blocked(&mut c, now, &[data(1, &[1; 1])]);
    assert_eq!(c.read_blocked_on(), Some((s1, now)));
    c.handle_timeout(now + MAX_BLOCK);
    let full = ResetReason::ConnectionBufferFull { limit: 1500 };
    assert_eq!(c.reset_reason(s1), Some(full));
    assert_eq!(c.reset_reason(s0), None);
    c.handle_input(now + MAX_BLOCK, &mut buf).unwrap();
    assert!(buf.is_empty());
    assert_eq!(read_all(&mut c, s1).len(), 600);
    assert_eq!(c.read(s1, &mut [0; 1]), Err(StreamError::Reset(full)));
    // Reading frees room for the other stream.
    assert_eq!(read_all(&mut c, s0).len(), 900);
    feed(&mut c, now, &[data(0, &[0; 1000])]).unwrap();
    assert_eq!(c.stream_buffered(s0), Some(1000));
    assert!(c.error().is_none());

    // Blocked on the connection cap, reading *another* stream makes room.
    let cfg = Config {
        max_buffer_per_stream: 1000,
        max_buffer_per_connection: 1500,
        ..Config::default()
    };
    let (mut c, now) = core_with(cfg, MuxLimits::default());
    feed(&mut c, now, &[open(0), open(1)]).unwrap();
    let s0 = c.accept().unwrap();
    let s1 = c.accept().unwrap();
    feed(&mut c, now, &[data(0, &[0; 900]), data(1, &[1; 600])]).unwrap();
    let mut buf = feed_blocked(&mut c, now, &[data(1, &[2; 1])]);
    assert_eq!(read_all(&mut c, s0).len(), 900);
    assert!(!c.is_read_blocked());
    c.handle_input(now, &mut buf).unwrap();
    let mut want = vec![1u8; 600];
    want.push(2);
    assert_eq!(read_all(&mut c, s1), want);
    assert_eq!(c.reset_reason(s1), None);
}

#[test]
fn rapid_reset_flood_closes_the_connection() {
    let limits = MuxLimits {
        max_rapid_resets: 10,
        ..MuxLimits::default()
    };
    let (mut c, now) = core_with(Config::default(), limits);
    let mut id = 0;
    let mut batch = |n: usize| {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(open(id));
            v.push(data(id, b"req"));
            v.push(reset(id));
            id += 1;
        }
        v
    };
    // Up to the cap: fine, nothing reaches the backlog, nothing is owed.
    feed(&mut c, now, &batch(10)).unwrap();
    assert_eq!((c.pending_accepts(), c.num_streams()), (0, 0));
    assert!(drain_output(&mut c, now).is_empty());
    // Spread beyond the window, more are fine.
    let later = now + Duration::from_secs(11);
    feed(&mut c, later, &batch(10)).unwrap();
    // One more within the window: flood.
    let r = feed(&mut c, later, &batch(1));
    let e = assert_failed(&mut c, later, r, Blame::PeerMisbehaved);
    assert!(
        matches!(e, ConnError::RapidResetFlood { count: 11, .. }),
        "{e}"
    );
}

#[test]
fn resets_after_accept_are_not_rapid_resets() {
    let limits = MuxLimits {
        max_rapid_resets: 2,
        ..MuxLimits::default()
    };
    let (mut c, now) = core_with(Config::default(), limits);
    for id in 0..10 {
        feed(&mut c, now, &[open(id)]).unwrap();
        let s = c.accept().unwrap();
        feed(&mut c, now, &[reset(id)]).unwrap();
        assert!(drain_events(&mut c).contains(&Event::Reset(s)));
        assert_eq!(
            c.read(s, &mut [0; 1]),
            Err(StreamError::Reset(ResetReason::Remote))
        );
        c.detach(s);
    }
    assert!(c.error().is_none());
    assert_eq!(c.num_streams(), 0);
}

#[test]
fn data_after_close_resets_only_that_stream() {
    let (mut c, now) = core();
    feed(
        &mut c,
        now,
        &[open(0), data(0, b"ab"), close(0), open(1), data(1, b"c")],
    )
    .unwrap();
    let s0 = c.accept().unwrap();
    let s1 = c.accept().unwrap();
    feed(&mut c, now, &[data(0, b"zz"), data(1, b"d")]).unwrap();
    assert!(drain_events(&mut c).contains(&Event::Reset(s0)));
    assert_eq!(read_all(&mut c, s0), b"ab");
    let e = c.read(s0, &mut [0; 4]);
    assert_eq!(e, Err(StreamError::Reset(ResetReason::DataAfterClose)));
    assert_eq!(ResetReason::DataAfterClose.blame(), Blame::PeerMisbehaved);
    assert_eq!(read_all(&mut c, s1), b"cd");
    assert_eq!(
        drain_output(&mut c, now),
        vec![(Header::new(0, Flag::ResetReceiver, 0), vec![])]
    );
    assert!(c.error().is_none());
    // A second close is ignored.
    feed(&mut c, now, &[close(1), close(1)]).unwrap();
    assert!(at_eof(&mut c, s1));
}

#[test]
fn a_frame_for_a_stream_of_ours_we_never_opened_is_an_error() {
    // Typically a peer that inverted the Initiator/Receiver flags.
    let (mut c, now) = core();
    let s = c.open().unwrap();
    drain_output(&mut c, now);
    // Our stream 0 exists: Receiver frames for it are fine.
    feed(&mut c, now, &[frame(0, Flag::MessageReceiver, b"ok")]).unwrap();
    assert_eq!(read_all(&mut c, s), b"ok");
    for flag in [
        Flag::MessageReceiver,
        Flag::CloseReceiver,
        Flag::ResetReceiver,
    ] {
        let (mut c, now) = core();
        c.open().unwrap();
        let r = feed(&mut c, now, &[frame(1, flag, b"")]);
        assert_eq!(
            assert_failed(&mut c, now, r, Blame::PeerMisbehaved),
            ConnError::UnknownStream(1)
        );
    }
}

#[test]
fn frames_for_unknown_remote_streams_are_ignored_without_an_answer() {
    let (mut c, now) = core();
    feed(&mut c, now, &[open(0)]).unwrap();
    let s = c.accept().unwrap();
    // Never-opened remote ids: data, close, reset; nothing owed, nothing kept.
    feed(
        &mut c,
        now,
        &[data(7, &[1; 5000]), close(8), reset(9), data(0, b"x")],
    )
    .unwrap();
    assert_eq!(read_all(&mut c, s), b"x");
    assert!(drain_output(&mut c, now).is_empty());
    assert_eq!((c.num_streams(), c.buffered_bytes()), (1, 0));
    assert!(c.error().is_none());
}

#[test]
fn frames_for_closed_streams_are_ignored() {
    let (mut c, now) = core();
    let ours = c.open().unwrap();
    feed(&mut c, now, &[open(0), open(1)]).unwrap();
    let s0 = c.accept().unwrap();
    let s1 = c.accept().unwrap();
    c.reset(s0).unwrap();
    c.detach(s0);
    c.reset(ours).unwrap();
    c.detach(ours);
    drain_output(&mut c, now);
    // In-flight frames for both closed streams, then real data.
    let big = vec![1u8; 100_000];
    feed(
        &mut c,
        now,
        &[
            data(0, &big),
            close(0),
            reset(0),
            frame(0, Flag::MessageReceiver, b"late"),
            frame(0, Flag::CloseReceiver, b""),
            data(1, b"z"),
        ],
    )
    .unwrap();
    assert_eq!(read_all(&mut c, s1), b"z");
    assert!(drain_output(&mut c, now).is_empty());
    assert!(c.error().is_none());
    assert_eq!(c.buffered_bytes(), 0);
}

/// The application lets go of a stream while a data frame for it is half in:
/// the rest of that body is dropped as it streams in (never kept as data of a
/// stream that takes none, never counted), and the frames after it go where
/// they belong. Found by the `mplex_frames` fuzz target (crash f1ad2d2c): a
/// detach removed the stream but the body stayed marked as data to keep.
#[test]
fn letting_go_of_a_stream_mid_body_drops_the_rest_of_that_body() {
    type LetGo = fn(&mut Core, StreamId);
    let ways: [(&str, LetGo, Flag, Option<usize>); 3] = [
        // Write side open, data unread: reset and forgotten at once.
        ("detach", |c, s| c.detach(s), Flag::ResetReceiver, None),
        // Write side finished: lingers (input discarded) until the remote closes.
        (
            "finish, detach",
            |c, s| {
                c.finish(s).unwrap();
                c.detach(s);
            },
            Flag::CloseReceiver,
            Some(0),
        ),
        // Kept until the application detaches; input discarded.
        (
            "reset",
            |c, s| c.reset(s).unwrap(),
            Flag::ResetReceiver,
            Some(0),
        ),
    ];
    for (how, let_go, answer, left) in ways {
        let (mut c, now) = core();
        feed(&mut c, now, &[open(0), open(1)]).unwrap();
        let s0 = c.accept().unwrap();
        let s1 = c.accept().unwrap();
        // A 10-byte data frame on stream 1: its prefix and 4 bytes of body.
        let mut src = BytesMut::new();
        Header::new(1, Flag::MessageInitiator, 10).encode_into(&mut src);
        src.extend_from_slice(b"0123");
        c.handle_input(now, &mut src).unwrap();
        assert!(src.is_empty());
        assert_eq!(c.stream_buffered(s1), Some(4), "{how}");

        let_go(&mut c, s1);
        // What is kept is data of tracked streams that take it.
        c.check_invariants();
        assert_eq!(c.buffered_bytes(), 0, "{how}");
        assert_eq!(c.stream_buffered(s1), left, "{how}");
        let out = drain_output(&mut c, now);
        let out: Vec<_> = out
            .iter()
            .map(|(h, b)| (h.stream_id, h.flag, b.len()))
            .collect();
        assert_eq!(out, [(1, answer, 0)], "{how}: one answer, nothing else");

        // The other 6 bytes of that body, then data on stream 0.
        let mut src = BytesMut::from(&b"456789"[..]);
        src.extend_from_slice(&wire(&[data(0, b"next")]));
        c.handle_input(now, &mut src).unwrap();
        assert!(src.is_empty());
        c.check_invariants();
        assert_eq!(c.stream_buffered(s1), left, "{how}: the rest was dropped");
        assert_eq!(c.buffered_bytes(), 4, "{how}: only the next frame is kept");
        assert_eq!(read_all(&mut c, s0), b"next", "{how}");
        assert!(drain_output(&mut c, now).is_empty(), "{how}");
        assert!(c.error().is_none(), "{how}");
    }
}

#[test]
fn ignored_bodies_are_discarded_as_they_stream_in() {
    let (mut c, now) = core();
    let mut buf = BytesMut::new();
    Header::new(42, Flag::MessageInitiator, MAX_FRAME_SIZE).encode_into(&mut buf);
    buf.extend_from_slice(&[0u8; 4096]);
    c.handle_input(now, &mut buf).unwrap();
    assert!(buf.is_empty());
    assert_eq!(c.buffered_bytes(), 0);
    c.check_invariants();
}

#[test]
fn duplicate_new_stream_is_an_error_but_reuse_after_close_is_a_new_stream() {
    let (mut c, now) = core();
    feed(&mut c, now, &[open(3)]).unwrap();
    let r = feed(&mut c, now, &[open(3)]);
    assert_eq!(
        assert_failed(&mut c, now, r, Blame::PeerMisbehaved),
        ConnError::DuplicateStream(3)
    );

    let (mut c, now) = core();
    feed(&mut c, now, &[open(3), data(3, b"first"), close(3)]).unwrap();
    let s = c.accept().unwrap();
    assert_eq!(read_all(&mut c, s), b"first");
    c.finish(s).unwrap();
    drain_output(&mut c, now);
    c.detach(s);
    assert_eq!(c.num_streams(), 0);
    feed(&mut c, now, &[open(3), data(3, b"second")]).unwrap();
    let s = c.accept().unwrap();
    assert_eq!(read_all(&mut c, s), b"second");
}

#[test]
fn names_and_bodies_of_control_frames_are_skipped() {
    let (mut c, now) = core();
    feed(
        &mut c,
        now,
        &[
            frame(0, Flag::NewStream, b"a stream name"),
            data(0, b"x"),
            frame(0, Flag::CloseInitiator, b"junk"),
            frame(1, Flag::NewStream, b"other"),
            frame(1, Flag::ResetInitiator, b"junk"),
        ],
    )
    .unwrap();
    let s = c.accept().unwrap();
    assert_eq!(read_all(&mut c, s), b"x");
    assert!(at_eof(&mut c, s));
    assert_eq!(c.pending_accepts(), 0);
}

/// Feed `buf` while the core takes it, answering whenever input pauses (the
/// shared harness); returns every frame we sent.
fn feed_answering(c: &mut Core, now: Instant, buf: BytesMut) -> Vec<(Header, Vec<u8>)> {
    parse(&plexus_testkit::pair::feed_answering(c, now, buf))
}

#[test]
fn a_burst_of_refused_streams_from_a_reading_peer_is_answered_in_full() {
    let cfg = Config {
        max_pending_control: 32,
        ..Config::default()
    };
    let limits = MuxLimits {
        max_accept_backlog: 4,
        ..MuxLimits::default()
    };
    let (mut c, now) = core_with(cfg, limits);
    // 5,000 NewStreams in one read: 4 fit the backlog, the others are
    // refused with a reset, 32 at a time while the remote reads.
    let frames: Vec<_> = (0..5000).map(open).collect();
    let mut buf = wire(&frames);
    c.handle_input(now, &mut buf).unwrap();
    assert_eq!((c.pending_accepts(), c.pending_control()), (4, 32));
    assert!(c.input_blocked());
    assert!(!buf.is_empty(), "the rest waits, unread");
    let mut out = drain_output(&mut c, now);
    out.extend(feed_answering(&mut c, now, buf));
    let resets: Vec<u64> = out
        .iter()
        .filter(|(h, _)| h.flag == Flag::ResetReceiver)
        .map(|(h, _)| h.stream_id)
        .collect();
    assert_eq!(resets, (4..5000).collect::<Vec<_>>());
    assert!(c.error().is_none());
    assert_eq!(c.pending_control(), 0);
}

#[test]
fn a_peer_that_floods_and_never_reads_is_closed_after_the_stall_timeout() {
    let cfg = Config {
        max_pending_control: 32,
        ..Config::default()
    };
    let stall = cfg.control_stall_timeout;
    let limits = MuxLimits {
        max_accept_backlog: 4,
        ..MuxLimits::default()
    };
    let (mut c, now) = core_with(cfg, limits);
    let frames: Vec<_> = (0..1000).map(open).collect();
    let mut buf = wire(&frames);
    let total = buf.len();
    c.handle_input(now, &mut buf).unwrap();
    // Memory stays bounded: 32 resets owed, the rest left unread.
    assert_eq!((c.pending_accepts(), c.pending_control()), (4, 32));
    let left = buf.len();
    assert!(left > total / 2);
    assert_eq!(c.poll_timeout(), Some(now + stall));
    c.handle_input(now + Duration::from_secs(1), &mut buf)
        .unwrap();
    assert_eq!(buf.len(), left, "a paused core reads nothing");
    c.handle_timeout(now + stall - Duration::from_millis(1));
    assert!(c.error().is_none());
    c.handle_timeout(now + stall);
    let e = c.error().cloned().expect("failed");
    assert_eq!(
        e,
        ConnError::RemoteNotReading {
            pending: 32,
            stalled: stall
        }
    );
    assert_eq!(e.blame(), Blame::PeerMisbehaved);
    assert!(drain_events(&mut c).contains(&Event::Closed));
    assert!(!c.input_blocked());
}

#[test]
fn transport_closed_is_a_local_error_and_keeps_buffered_data() {
    let (mut c, now) = core();
    feed(
        &mut c,
        now,
        &[open(0), data(0, b"abc"), open(1), data(1, b"d"), close(1)],
    )
    .unwrap();
    let s0 = c.accept().unwrap();
    let s1 = c.accept().unwrap();
    c.handle_transport_closed(None);
    assert!(c.is_closed());
    assert!(drain_events(&mut c).contains(&Event::Closed));
    assert_eq!(read_all(&mut c, s0), b"abc");
    assert_eq!(
        c.read(s0, &mut [0; 1]),
        Err(StreamError::Connection(ConnError::TransportClosed))
    );
    // A stream the remote had closed still reads to a clean end.
    assert_eq!(read_all(&mut c, s1), b"d");
    assert!(at_eof(&mut c, s1));
    assert_eq!(c.error().map(ConnError::blame), Some(Blame::Local));
    assert!(matches!(
        c.accept_error(),
        Some(MuxError::Failed {
            blame: Blame::Local,
            ..
        })
    ));
    c.detach(s0);
    c.detach(s1);
    assert_eq!((c.num_streams(), c.buffered_bytes()), (0, 0));
}

#[test]
fn transport_closed_after_our_close_is_not_an_error() {
    let (mut c, _now) = core();
    c.close();
    assert!(c.is_closed());
    c.handle_transport_closed(None);
    assert_eq!(c.error(), None);
    assert!(matches!(c.accept_error(), Some(MuxError::Closed)));
}

#[test]
fn partial_frames_are_consumed_incrementally() {
    let (mut c, now) = core();
    let bytes = wire(&[
        frame(1 << 40, Flag::NewStream, b"name"),
        frame(1 << 40, Flag::MessageInitiator, b"hello world"),
    ]);
    let mut src = BytesMut::new();
    for b in bytes.iter() {
        src.extend_from_slice(&[*b]);
        c.handle_input(now, &mut src).unwrap();
        assert!(src.len() < 19, "never holds more than a partial prefix");
        c.check_invariants();
    }
    let s = c.accept().unwrap();
    assert_eq!(s, theirs(1 << 40));
    assert_eq!(read_all(&mut c, s), b"hello world");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16)) {
        let (mut c, now) = core();
        plexus_testkit::pair::feed_arbitrary_chunks(&mut c, now, &chunks);
    }

    #[test]
    fn arbitrary_valid_frames_never_panic(frames in prop::collection::vec((0u64..6, 0u8..7, 0u32..300), 0..60)) {
        let cfg = Config { max_buffer_per_stream: 1000, max_buffer_per_connection: 2500, max_pending_control: 8, ..Config::default() };
        let limits = MuxLimits { max_streams: 4, max_accept_backlog: 2, max_rapid_resets: 3, ..MuxLimits::default() };
        let (mut c, mut now) = core_with(cfg, limits);
        let mut held = Vec::new();
        let mut src = BytesMut::new();
        for (i, (id, flag, len)) in frames.into_iter().enumerate() {
            if i % 7 == 3 && held.len() < 2 && let Ok(s) = c.open() {
                held.push(s);
            }
            let h = Header::new(id, Flag::from_u8(flag).unwrap(), len);
            h.encode_into(&mut src);
            src.extend_from_slice(&vec![0xab; len as usize]);
            let r = c.handle_input(now, &mut src);
            c.check_invariants();
            while c.poll_event().is_some() {}
            if let Some(s) = c.accept() {
                held.push(s);
            }
            if i % 5 == 0 {
                for &s in &held {
                    let _ = c.read(s, &mut [0; 100]);
                }
            }
            if i % 11 == 10 {
                now += Duration::from_secs(3);
                c.handle_timeout(now);
                c.check_invariants();
            }
            if !c.is_read_blocked() && c.error().is_none() {
                prop_assert!(src.len() < 19, "complete prefixes consumed unless blocked");
            }
            c.poll_transmit(now, &mut BytesMut::new(), 1 << 16);
            if r.is_err() {
                break;
            }
        }
    }
}
