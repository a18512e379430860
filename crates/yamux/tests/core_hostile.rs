//! A scripted hostile remote: raw frames into one core. Asserts typed errors
//! with blame, bounded state, and that other streams carry on where the
//! protocol allows.

mod support;

use std::time::{Duration, Instant};

use bytes::BytesMut;
use plexus_core::{Blame, MuxError, MuxLimits, Role};
use plexus_yamux::frame::{Flags, FrameError, FrameType, HEADER_LEN, Header};
use plexus_yamux::{
    Config, ConnError, Core, Event, GO_AWAY_PROTOCOL_ERROR, INITIAL_WINDOW, StreamError, StreamId,
};
use proptest::prelude::*;
use support::*;

/// We are the listener (responder); the scripted remote dials and opens odd ids.
fn core_with(cfg: Config, limits: MuxLimits) -> (Core, Instant) {
    let now = Instant::now();
    let mut c = Core::new(Role::Responder, cfg, limits);
    // Consume our RTT probe so outputs below are only reactions.
    let out = drain_output(&mut c, now);
    assert_eq!(out.len(), 1);
    (c, now)
}

fn core() -> (Core, Instant) {
    core_with(Config::default(), MuxLimits::default())
}

fn syn(id: u32, body: &[u8]) -> (Header, &[u8]) {
    (Header::data(id, Flags::SYN, body.len() as u32), body)
}

fn data(id: u32, body: &[u8]) -> (Header, &[u8]) {
    (Header::data(id, Flags::NONE, body.len() as u32), body)
}

fn rst(id: u32) -> (Header, &'static [u8]) {
    (Header::window_update(id, Flags::RST, 0), &[])
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

/// After a peer-caused error: typed error with blame, GoAway(protocol error)
/// on the wire, then closed, and the error sticks.
fn assert_failed(c: &mut Core, now: Instant, r: Result<(), ConnError>, blame: Blame) -> ConnError {
    let e = r.expect_err("connection error");
    assert_eq!(e.blame(), blame, "{e}");
    assert_eq!(c.error(), Some(&e));
    assert!(drain_events(c).contains(&Event::Closed));
    let out = drain_output(c, now);
    assert_eq!(out.len(), 1, "only the go-away goes out: {out:?}");
    assert_eq!(out[0].0, Header::go_away(GO_AWAY_PROTOCOL_ERROR));
    assert!(c.is_closed());
    assert_eq!(
        c.handle_input(now, &mut BytesMut::from(&[0u8; 12][..])),
        Err(e.clone())
    );
    match c.open() {
        Err(MuxError::Failed { blame: b, .. }) => assert_eq!(b, blame),
        other => panic!("{other:?}"),
    }
    e
}

#[test]
fn window_overflow_is_peer_misbehaviour() {
    let (mut c, now) = core();
    let full = vec![7u8; INITIAL_WINDOW as usize];
    feed(&mut c, now, &[syn(1, &full)]).unwrap();
    let s = c.accept().unwrap();
    assert_eq!(c.stream_buffered(s), Some(INITIAL_WINDOW as usize));
    // One more byte than granted: rejected from the header alone.
    let mut hdr = BytesMut::new();
    Header::data(1, Flags::NONE, 1).encode_into(&mut hdr);
    let r = c.handle_input(now, &mut hdr);
    let e = assert_failed(&mut c, now, r, Blame::PeerMisbehaved);
    assert_eq!(
        e,
        ConnError::WindowExceeded {
            stream: 1,
            len: 1,
            window: 0
        }
    );
    // What was already accepted stays readable.
    assert_eq!(read_all(&mut c, s).len(), INITIAL_WINDOW as usize);
    assert!(matches!(
        c.read(s, &mut [0; 1]),
        Err(StreamError::Connection(_))
    ));
}

#[test]
fn huge_data_header_is_rejected_before_its_body() {
    let (mut c, now) = core();
    let mut buf = BytesMut::new();
    Header::data(1, Flags::SYN, u32::MAX).encode_into(&mut buf);
    let r = c.handle_input(now, &mut buf);
    let e = assert_failed(&mut c, now, r, Blame::PeerMisbehaved);
    assert!(matches!(
        e,
        ConnError::WindowExceeded {
            stream: 1,
            len: u32::MAX,
            ..
        }
    ));
}

#[test]
fn window_update_overflow_is_peer_misbehaviour() {
    let (mut c, now) = core();
    feed(&mut c, now, &[syn(1, b"")]).unwrap();
    let r = feed(
        &mut c,
        now,
        &[(Header::window_update(1, Flags::NONE, u32::MAX), &[])],
    );
    assert_eq!(
        assert_failed(&mut c, now, r, Blame::PeerMisbehaved),
        ConnError::WindowOverflow(1)
    );
}

#[test]
fn streams_beyond_the_cap_get_rst_and_the_others_carry_on() {
    let limits = MuxLimits {
        max_streams: 4,
        ..MuxLimits::default()
    };
    let (mut c, now) = core_with(Config::default(), limits);
    let frames: Vec<_> = [1, 3, 5, 7, 9, 11]
        .iter()
        .map(|&id| syn(id, b"hi"))
        .collect();
    feed(&mut c, now, &frames).unwrap();
    assert_eq!(c.num_streams(), 4);
    let out = drain_output(&mut c, now);
    let rsts: Vec<u32> = out
        .iter()
        .filter(|(h, _)| h.flags.contains(Flags::RST))
        .map(|(h, _)| h.stream_id)
        .collect();
    assert_eq!(rsts, vec![9, 11]);
    // Data the remote still sends on a refused stream is ignored.
    feed(&mut c, now, &[data(9, b"late")]).unwrap();
    // Existing streams carry on.
    let s1 = c.accept().unwrap();
    feed(&mut c, now, &[data(1, b" there")]).unwrap();
    assert_eq!(read_all(&mut c, s1), b"hi there");
    assert!(c.error().is_none());
}

#[test]
fn accept_backlog_overflow_resets_excess_streams() {
    let limits = MuxLimits {
        max_accept_backlog: 2,
        ..MuxLimits::default()
    };
    let (mut c, now) = core_with(Config::default(), limits);
    feed(&mut c, now, &[syn(1, b"a"), syn(3, b"b"), syn(5, b"c")]).unwrap();
    assert_eq!(c.pending_accepts(), 2);
    let out = drain_output(&mut c, now);
    assert_eq!(out, vec![(Header::window_update(5, Flags::RST, 0), vec![])]);
    // Accepting makes room again; the ACK goes out.
    let s = c.accept().unwrap();
    assert_eq!(s, StreamId::new(1));
    feed(&mut c, now, &[syn(7, b"d")]).unwrap();
    assert_eq!(c.pending_accepts(), 2);
    let out = drain_output(&mut c, now);
    assert_eq!(out, vec![(Header::window_update(1, Flags::ACK, 0), vec![])]);
}

#[test]
fn unknown_streams_never_opened_are_errors() {
    // A remote id above any it opened, without SYN.
    let (mut c, now) = core();
    let r = feed(&mut c, now, &[data(7, b"x")]);
    assert_eq!(
        assert_failed(&mut c, now, r, Blame::PeerMisbehaved),
        ConnError::UnknownStream(7)
    );
    // One of our ids we never allocated.
    let (mut c, now) = core();
    let r = feed(
        &mut c,
        now,
        &[(Header::window_update(2, Flags::NONE, 5), &[])],
    );
    assert_eq!(
        assert_failed(&mut c, now, r, Blame::PeerMisbehaved),
        ConnError::UnknownStream(2)
    );
}

#[test]
fn frames_for_closed_streams_are_ignored() {
    let (mut c, now) = core();
    feed(&mut c, now, &[syn(1, b"x"), syn(3, b"y")]).unwrap();
    let s1 = c.accept().unwrap();
    let s3 = c.accept().unwrap();
    c.reset(s1).unwrap();
    c.detach(s1);
    drain_output(&mut c, now);
    // In-flight data, window updates and even an RST for the closed stream,
    // followed by a ping: all fine, the ping is answered.
    let big = vec![1u8; 100_000];
    feed(
        &mut c,
        now,
        &[
            data(1, &big),
            (Header::window_update(1, Flags::NONE, 10), &[]),
            rst(1),
            data(3, b"z"),
            (Header::ping(42), &[]),
        ],
    )
    .unwrap();
    assert_eq!(read_all(&mut c, s3), b"yz");
    let out = drain_output(&mut c, now);
    assert!(out.iter().any(|(h, _)| *h == Header::pong(42)));
    assert!(c.error().is_none());
    assert_eq!(c.buffered_bytes(), 0);
}

#[test]
fn ignored_data_is_discarded_as_it_streams_in() {
    let (mut c, now) = core();
    feed(&mut c, now, &[syn(1, b"")]).unwrap();
    let s = c.accept().unwrap();
    c.reset(s).unwrap();
    c.detach(s);
    // A 3 GiB frame for the closed stream: only the header is needed, the
    // body is dropped chunk by chunk.
    let mut buf = BytesMut::new();
    Header::data(1, Flags::NONE, 3 << 30).encode_into(&mut buf);
    buf.extend_from_slice(&[0u8; 4096]);
    c.handle_input(now, &mut buf).unwrap();
    assert!(buf.is_empty());
    assert_eq!(c.buffered_bytes(), 0);
}

#[test]
fn rapid_reset_flood_gets_go_away_and_an_error() {
    let limits = MuxLimits {
        max_rapid_resets: 10,
        ..MuxLimits::default()
    };
    let (mut c, now) = core_with(Config::default(), limits);
    let mut id = 1;
    let mut pair = |n: usize| {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(syn(id, b"req"));
            v.push(rst(id));
            id += 2;
        }
        v
    };
    // Up to the cap: fine, nothing reaches the backlog.
    feed(&mut c, now, &pair(10)).unwrap();
    assert_eq!((c.pending_accepts(), c.num_streams()), (0, 0));
    // Spread beyond the window, more are fine.
    let later = now + Duration::from_secs(11);
    feed(&mut c, later, &pair(10)).unwrap();
    // One more within the window: flood.
    let r = feed(&mut c, later, &pair(1));
    let e = assert_failed(&mut c, later, r, Blame::PeerMisbehaved);
    assert!(
        matches!(e, ConnError::RapidResetFlood { count: 11, .. }),
        "{e}"
    );
}

#[test]
fn syn_with_rst_counts_as_a_rapid_reset() {
    let limits = MuxLimits {
        max_rapid_resets: 3,
        ..MuxLimits::default()
    };
    let (mut c, now) = core_with(Config::default(), limits);
    let frames: Vec<_> = (0..4)
        .map(|i| {
            (
                Header::window_update(2 * i + 1, Flags::SYN | Flags::RST, 0),
                &[][..],
            )
        })
        .collect();
    let r = feed(&mut c, now, &frames);
    assert!(matches!(
        assert_failed(&mut c, now, r, Blame::PeerMisbehaved),
        ConnError::RapidResetFlood { count: 4, .. }
    ));
}

#[test]
fn resets_after_accept_are_not_rapid_resets() {
    let limits = MuxLimits {
        max_rapid_resets: 2,
        ..MuxLimits::default()
    };
    let (mut c, now) = core_with(Config::default(), limits);
    for i in 0..10u32 {
        let id = 2 * i + 1;
        feed(&mut c, now, &[syn(id, b"q")]).unwrap();
        let s = c.accept().unwrap();
        feed(&mut c, now, &[rst(id)]).unwrap();
        assert!(drain_events(&mut c).contains(&Event::Reset(s)));
        c.detach(s);
    }
    assert!(c.error().is_none());
    assert_eq!(c.num_streams(), 0);
}

#[test]
fn bad_headers_are_typed_errors() {
    let cases: Vec<([u8; 12], ConnError, Blame)> = vec![
        (
            [1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0],
            ConnError::Frame(FrameError::Version(1)),
            Blame::PeerIncompatible,
        ),
        (
            [0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            ConnError::Frame(FrameError::Type(9)),
            Blame::PeerMisbehaved,
        ),
        (
            [0, 0, 0, 0x31, 0, 0, 0, 1, 0, 0, 0, 0],
            ConnError::Frame(FrameError::Flags(0x31)),
            Blame::PeerMisbehaved,
        ),
    ];
    for (bytes, want, blame) in cases {
        let (mut c, now) = core();
        let r = c.handle_input(now, &mut BytesMut::from(&bytes[..]));
        assert_eq!(assert_failed(&mut c, now, r, blame), want);
    }
}

#[test]
fn malformed_frames_in_context_are_typed_errors() {
    let cases: Vec<(Header, ConnError)> = vec![
        (
            Header::data(0, Flags::NONE, 0),
            ConnError::InvalidFrame("data or window update on stream 0"),
        ),
        (
            Header::window_update(1, Flags::SYN | Flags::ACK, 0),
            ConnError::InvalidFrame("SYN and ACK on one frame"),
        ),
        (
            Header {
                ty: FrameType::Ping,
                flags: Flags::NONE,
                stream_id: 0,
                length: 1,
            },
            ConnError::InvalidFrame("ping needs exactly one of SYN and ACK"),
        ),
        (
            Header::window_update(2, Flags::SYN, 0),
            ConnError::InvalidStreamId(2),
        ),
    ];
    for (h, want) in cases {
        let (mut c, now) = core();
        let r = feed(&mut c, now, &[(h, &[])]);
        assert_eq!(assert_failed(&mut c, now, r, Blame::PeerMisbehaved), want);
    }
    // Reusing an id (a second SYN for 1, or a SYN below the highest).
    for again in [5, 7, 3] {
        let (mut c, now) = core();
        feed(&mut c, now, &[syn(5, b""), syn(7, b"")]).unwrap();
        let r = feed(&mut c, now, &[syn(again, b"")]);
        assert_eq!(
            assert_failed(&mut c, now, r, Blame::PeerMisbehaved),
            ConnError::InvalidStreamId(again)
        );
    }
}

#[test]
fn data_after_fin_resets_only_that_stream() {
    let (mut c, now) = core();
    feed(
        &mut c,
        now,
        &[
            (Header::data(1, Flags::SYN | Flags::FIN, 2), b"ab"),
            syn(3, b"c"),
        ],
    )
    .unwrap();
    let s1 = c.accept().unwrap();
    let s3 = c.accept().unwrap();
    drain_output(&mut c, now);
    feed(&mut c, now, &[data(1, b"zz"), data(3, b"d")]).unwrap();
    assert!(drain_events(&mut c).contains(&Event::Reset(s1)));
    assert_eq!(c.read(s1, &mut [0; 4]), Err(StreamError::Reset));
    assert_eq!(read_all(&mut c, s3), b"cd");
    let out = drain_output(&mut c, now);
    assert!(out.contains(&(Header::window_update(1, Flags::RST, 0), vec![])));
    assert!(c.error().is_none());
}

/// Feed `buf` while the core takes it, answering whenever input pauses (the
/// shared harness); returns every frame we sent.
fn feed_answering(c: &mut Core, now: Instant, buf: BytesMut) -> Vec<(Header, Vec<u8>)> {
    parse(&plexus_testkit::pair::feed_answering(c, now, buf))
}

#[test]
fn ping_burst_from_a_reading_peer_is_answered_in_full() {
    let cfg = Config {
        max_pending_control: 64,
        ..Config::default()
    };
    let (mut c, now) = core_with(cfg, MuxLimits::default());
    // One burst of 1,025 pings in one read: the core takes 64, blocks, and
    // leaves the rest in the buffer, untouched.
    let pings: Vec<_> = (0..1025).map(|i| (Header::ping(i), &[][..])).collect();
    let mut buf = wire(&pings);
    c.handle_input(now, &mut buf).unwrap();
    assert_eq!(c.pending_control(), 64);
    assert!(c.input_blocked());
    assert_eq!(buf.len(), (1025 - 64) * HEADER_LEN);
    // The remote reads what we owe: every ping is answered, in order.
    let mut out = drain_output(&mut c, now);
    out.extend(feed_answering(&mut c, now, buf));
    let want: Vec<_> = (0..1025).map(|i| (Header::pong(i), vec![])).collect();
    assert_eq!(out, want);
    assert!(c.error().is_none());
    assert_eq!(c.pending_control(), 0);
    // No stall clock left running: the next timeout is the keep-alive.
    assert!(
        c.poll_timeout()
            .is_none_or(|t| t >= now + Duration::from_secs(10))
    );
}

#[test]
fn syn_burst_from_a_reading_peer_is_answered_in_full() {
    let cfg = Config {
        max_pending_control: 32,
        ..Config::default()
    };
    let limits = MuxLimits {
        max_accept_backlog: 4,
        max_streams: 16,
        ..MuxLimits::default()
    };
    let (mut c, now) = core_with(cfg, limits);
    // 5,000 SYNs: 4 fit the accept backlog, every other one is refused with
    // RST, 32 at a time while the remote reads.
    let frames: Vec<_> = (0..5000).map(|i| syn(2 * i + 1, b"")).collect();
    let out = feed_answering(&mut c, now, wire(&frames));
    let rsts: Vec<u32> = out
        .iter()
        .filter(|(h, _)| h.flags == Flags::RST)
        .map(|(h, _)| h.stream_id)
        .collect();
    assert_eq!(rsts, (4..5000).map(|i| 2 * i + 1).collect::<Vec<_>>());
    assert_eq!(c.pending_accepts(), 4);
    assert!(c.error().is_none());
}

#[test]
fn a_peer_that_floods_and_never_reads_is_closed_after_the_stall_timeout() {
    let cfg = Config {
        max_pending_control: 64,
        ..Config::default()
    };
    let stall = cfg.control_stall_timeout;
    let (mut c, now) = core_with(cfg, MuxLimits::default());
    let pings: Vec<_> = (0..1000).map(|i| (Header::ping(i), &[][..])).collect();
    let mut buf = wire(&pings);
    c.handle_input(now, &mut buf).unwrap();
    // Memory stays bounded: 64 answers owed, the rest left unread.
    assert_eq!(c.pending_control(), 64);
    assert_eq!(buf.len(), (1000 - 64) * HEADER_LEN);
    assert_eq!(c.poll_timeout(), Some(now + stall));
    // Feeding again while blocked consumes nothing.
    c.handle_input(now + Duration::from_secs(1), &mut buf)
        .unwrap();
    assert_eq!(buf.len(), (1000 - 64) * HEADER_LEN);
    c.handle_timeout(now + stall - Duration::from_millis(1));
    assert!(c.error().is_none());
    c.handle_timeout(now + stall);
    let e = c.error().cloned().expect("failed");
    assert_eq!(
        e,
        ConnError::RemoteNotReading {
            pending: 64,
            stalled: stall
        }
    );
    assert_eq!(e.blame(), Blame::PeerMisbehaved);
    assert!(e.to_string().contains("remote read nothing for 10s"), "{e}");
    assert!(drain_events(&mut c).contains(&Event::Closed));
    assert!(!c.input_blocked(), "a failed core blocks nothing");
}

#[test]
fn a_peer_that_reads_slowly_is_not_closed() {
    let cfg = Config {
        max_pending_control: 16,
        // Our RTT probe stays unanswered here; only the stall clock counts.
        ping_timeout: Duration::from_secs(3600),
        ..Config::default()
    };
    let stall = cfg.control_stall_timeout;
    let (mut c, mut now) = core_with(cfg, MuxLimits::default());
    let pings: Vec<_> = (0..200).map(|i| (Header::ping(i), &[][..])).collect();
    let mut buf = wire(&pings);
    // The remote reads a few answers every 9 s: progress restarts the clock.
    let mut answered = 0;
    while !buf.is_empty() {
        c.handle_input(now, &mut buf).unwrap();
        now += stall - Duration::from_secs(1);
        c.handle_timeout(now);
        assert_eq!(c.error(), None);
        let mut out = BytesMut::new();
        c.poll_transmit(now, &mut out, 4 * HEADER_LEN);
        answered += parse(&out).len();
    }
    c.handle_input(now, &mut buf).unwrap();
    answered += drain_output(&mut c, now).len();
    assert_eq!(answered, 200);
}

#[test]
fn go_away_received_then_transport_closed() {
    let (mut c, now) = core();
    feed(
        &mut c,
        now,
        &[
            (Header::data(1, Flags::SYN, 3), b"abc"),
            (Header::go_away(0), &[]),
        ],
    )
    .unwrap();
    assert!(drain_events(&mut c).contains(&Event::GoAway(0)));
    assert!(matches!(c.open(), Err(MuxError::GoAway(0))));
    let s = c.accept().unwrap();
    assert!(matches!(c.accept_error(), Some(MuxError::GoAway(0))));
    c.handle_transport_closed(None);
    assert!(c.is_closed());
    // Buffered data survives the transport; after a go-away the close is
    // expected, so the unfinished stream reads as closed, not failed.
    assert_eq!(read_all(&mut c, s), b"abc");
    assert_eq!(c.read(s, &mut [0; 1]), Err(StreamError::ConnectionClosed));
    assert_eq!(c.error(), None);
}

#[test]
fn transport_closed_without_go_away_is_a_local_error() {
    let (mut c, now) = core();
    feed(
        &mut c,
        now,
        &[
            syn(1, b"abc"),
            (Header::data(3, Flags::SYN | Flags::FIN, 1), b"d"),
        ],
    )
    .unwrap();
    let s1 = c.accept().unwrap();
    let s3 = c.accept().unwrap();
    c.handle_transport_closed(None);
    assert!(drain_events(&mut c).contains(&Event::Closed));
    assert_eq!(read_all(&mut c, s1), b"abc");
    assert_eq!(
        c.read(s1, &mut [0; 1]),
        Err(StreamError::Connection(ConnError::TransportClosed))
    );
    // A stream the remote had finished still reads to a clean end.
    assert_eq!(read_all(&mut c, s3), b"d");
    assert!(at_eof(&mut c, s3));
    assert_eq!(c.error().map(ConnError::blame), Some(Blame::Local));
    assert!(matches!(
        c.accept_error(),
        Some(MuxError::Failed {
            blame: Blame::Local,
            ..
        })
    ));
}

#[test]
fn partial_frames_are_consumed_incrementally() {
    let (mut c, now) = core();
    let bytes = wire(&[syn(1, b"hello world"), (Header::ping(5), &[])]);
    let mut src = BytesMut::new();
    for b in bytes.iter() {
        src.extend_from_slice(&[*b]);
        c.handle_input(now, &mut src).unwrap();
        assert!(src.len() < 12, "never holds more than a partial header");
    }
    let s = c.accept().unwrap();
    assert_eq!(read_all(&mut c, s), b"hello world");
    assert!(drain_output(&mut c, now).contains(&(Header::pong(5), vec![])));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 0..16)) {
        let (mut c, now) = core();
        plexus_testkit::pair::feed_arbitrary_chunks(&mut c, now, &chunks);
    }

    #[test]
    fn arbitrary_valid_headers_never_panic(frames in prop::collection::vec((0u8..4, 0u16..16, 0u32..12, 0u32..300), 0..40)) {
        let (mut c, now) = core();
        let mut src = BytesMut::new();
        for (t, f, id, len) in frames {
            let h = Header { ty: FrameType::from_u8(t).unwrap(), flags: Flags::from_bits(f).unwrap(), stream_id: id, length: len };
            h.encode_into(&mut src);
            if h.ty == FrameType::Data {
                src.extend_from_slice(&vec![0xab; len as usize]);
            }
            let r = c.handle_input(now, &mut src);
            c.check_invariants();
            while c.poll_event().is_some() {}
            c.accept();
            c.poll_transmit(now, &mut BytesMut::new(), 1 << 16);
            if r.is_err() {
                break;
            }
        }
    }
}
