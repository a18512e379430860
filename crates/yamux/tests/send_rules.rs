//! The yamux send rules of docs/muxer-send-rules.md, each pinned at the frame
//! level: what a plexus core puts on the wire, decoded frame by frame. Rule
//! names (Y1…) match the document.

mod support;

use std::time::Instant;

use bytes::BytesMut;
use plexus_core::{MuxLimits, Role};
use plexus_yamux::frame::{Flags, FrameType, Header};
use plexus_yamux::{Config, Core, GO_AWAY_NORMAL, GO_AWAY_PROTOCOL_ERROR, INITIAL_WINDOW};
use support::*;

/// A dialer core whose RTT probe was already sent, so outputs below are
/// only what the test provokes.
fn dialer() -> (Core, Instant) {
    let now = Instant::now();
    let mut c = Core::new(Role::Initiator, Config::default(), MuxLimits::default());
    let out = drain_output(&mut c, now);
    assert_eq!(out, vec![(Header::ping(1), vec![])], "the RTT probe");
    (c, now)
}

/// Every frame `c` sends, with `budget` bytes per `poll_transmit` call.
fn output_in_calls(c: &mut Core, now: Instant, budget: usize) -> Vec<(Header, Vec<u8>)> {
    parse(&plexus_testkit::pair::drain_wire_in_calls(c, now, budget))
}

/// No frame that carries payload has FIN or RST (js-libp2p applies them
/// before the payload and drops it).
fn assert_no_flagged_payload(frames: &[(Header, Vec<u8>)]) {
    for (h, body) in frames {
        if !body.is_empty() {
            assert!(
                !h.flags.contains(Flags::FIN) && !h.flags.contains(Flags::RST),
                "payload with FIN/RST: {h:?}"
            );
        }
    }
}

#[test]
fn y1_fin_goes_on_its_own_empty_window_update_after_the_data() {
    let (mut c, now) = dialer();
    let s = c.open().unwrap();
    c.write(s, b"last bytes").unwrap();
    c.finish(s).unwrap();
    let out = drain_output(&mut c, now);
    assert_eq!(
        out,
        vec![
            (Header::data(1, Flags::SYN, 10), b"last bytes".to_vec()),
            (Header::window_update(1, Flags::FIN, 0), vec![]),
        ]
    );
}

#[test]
fn y1_fin_waits_for_the_next_call_when_the_budget_ends_with_the_data() {
    let (mut c, now) = dialer();
    let s = c.open().unwrap();
    c.write(s, &[7u8; 100]).unwrap();
    c.finish(s).unwrap();
    // Exactly one header plus the payload fits the first call.
    let mut first = BytesMut::new();
    assert!(c.poll_transmit(now, &mut first, 12 + 100));
    assert_eq!(
        parse(&first),
        vec![(Header::data(1, Flags::SYN, 100), vec![7u8; 100])]
    );
    let rest = drain_output(&mut c, now);
    assert_eq!(
        rest,
        vec![(Header::window_update(1, Flags::FIN, 0), vec![])]
    );
}

#[test]
fn y1_large_writes_end_with_a_bare_fin_whatever_the_budget() {
    for budget in [13, 40, 1000, 64 * 1024 + 12, 1 << 20] {
        let (mut c, now) = dialer();
        let s = c.open().unwrap();
        c.write(s, &vec![1u8; 200_000]).unwrap();
        c.finish(s).unwrap();
        let out = output_in_calls(&mut c, now, budget);
        assert_no_flagged_payload(&out);
        let last = out.last().unwrap();
        assert_eq!(
            *last,
            (Header::window_update(1, Flags::FIN, 0), vec![]),
            "budget {budget}"
        );
        let fins = out
            .iter()
            .filter(|(h, _)| h.flags.contains(Flags::FIN))
            .count();
        assert_eq!(fins, 1, "budget {budget}");
    }
}

#[test]
fn y2_rst_goes_on_an_empty_window_update_and_nothing_follows() {
    let (mut c, now) = dialer();
    let s = c.open().unwrap();
    c.write(s, b"sent").unwrap();
    drain_output(&mut c, now);
    c.write(s, b"never sent").unwrap();
    c.reset(s).unwrap();
    let out = drain_output(&mut c, now);
    assert_eq!(out, vec![(Header::window_update(1, Flags::RST, 0), vec![])]);
}

#[test]
fn y3_syn_on_the_first_frame_data_or_window_update() {
    let (mut c, now) = dialer();
    let a = c.open().unwrap();
    let b = c.open().unwrap();
    c.write(b, b"x").unwrap();
    let out = drain_output(&mut c, now);
    assert!(out.contains(&(Header::window_update(a.get(), Flags::SYN, 0), vec![])));
    assert!(out.contains(&(Header::data(b.get(), Flags::SYN, 1), b"x".to_vec())));
    // Only the first frame carries SYN.
    c.write(b, b"y").unwrap();
    assert_eq!(
        drain_output(&mut c, now),
        vec![(Header::data(b.get(), Flags::NONE, 1), b"y".to_vec())]
    );
}

#[test]
fn y3_ack_when_the_application_accepts_never_with_syn() {
    let mut p = default_pair();
    let s = p.a.open().unwrap();
    p.a.write(s, b"hi").unwrap();
    p.drive();
    let r = p.b.accept().unwrap();
    let out = drain_output(&mut p.b, p.now);
    assert_eq!(
        out,
        vec![(Header::window_update(r.get(), Flags::ACK, 0), vec![])]
    );
    assert!(
        out.iter()
            .all(|(h, _)| !h.flags.contains(Flags::SYN | Flags::ACK))
    );
}

#[test]
fn y4_data_frames_stay_within_max_frame_size_and_the_window() {
    let (mut c, now) = dialer();
    let s = c.open().unwrap();
    let n = c.write(s, &vec![0u8; 1 << 20]).unwrap();
    assert_eq!(
        n, INITIAL_WINDOW as usize,
        "no more than the remote's window is taken"
    );
    let out = drain_output(&mut c, now);
    let max = Config::default().max_frame_size as usize;
    assert!(
        out.iter()
            .all(|(h, b)| h.ty != FrameType::Data || b.len() <= max)
    );
    let sent: usize = out.iter().map(|(_, b)| b.len()).sum();
    assert_eq!(sent, INITIAL_WINDOW as usize);
}

#[test]
fn y5_pings_are_answered_with_ack_and_the_same_value_on_stream_zero() {
    let (mut c, now) = dialer();
    let mut input = wire(&[(Header::ping(0xdead_beef), &[])]);
    c.handle_input(now, &mut input).unwrap();
    assert_eq!(
        drain_output(&mut c, now),
        vec![(Header::pong(0xdead_beef), vec![])]
    );
    let (h, _) = &parse(&Header::pong(1).encode())[0];
    assert_eq!(
        (h.ty, h.flags, h.stream_id),
        (FrameType::Ping, Flags::ACK, 0)
    );
}

#[test]
fn y6_polite_close_sends_stream_data_and_fin_before_the_go_away() {
    let (mut c, now) = dialer();
    let s = c.open().unwrap();
    c.write(s, &[5u8; 300]).unwrap();
    c.finish(s).unwrap();
    c.close();
    for budget in [13, 100, 1 << 20] {
        let (mut c2, now2) = dialer();
        let s2 = c2.open().unwrap();
        c2.write(s2, &[5u8; 300]).unwrap();
        c2.finish(s2).unwrap();
        c2.close();
        let out = output_in_calls(&mut c2, now2, budget);
        assert_eq!(
            out.last().unwrap(),
            &(Header::go_away(GO_AWAY_NORMAL), vec![]),
            "budget {budget}"
        );
        assert_eq!(
            out.iter()
                .filter(|(h, _)| h.ty == FrameType::GoAway)
                .count(),
            1
        );
        assert!(c2.is_closed());
    }
    let out = drain_output(&mut c, now);
    let kinds: Vec<_> = out.iter().map(|(h, _)| (h.ty, h.flags)).collect();
    assert_eq!(
        kinds,
        vec![
            (FrameType::Data, Flags::SYN),
            (FrameType::WindowUpdate, Flags::FIN),
            (FrameType::GoAway, Flags::NONE),
        ]
    );
}

#[test]
fn y6_a_protocol_error_sends_only_the_go_away() {
    let (mut c, now) = dialer();
    let s = c.open().unwrap();
    c.write(s, b"queued").unwrap();
    // A frame for a stream id that never existed: protocol error.
    let mut input = wire(&[(Header::data(8, Flags::NONE, 0), &[])]);
    c.handle_input(now, &mut input).unwrap_err();
    assert_eq!(
        drain_output(&mut c, now),
        vec![(Header::go_away(GO_AWAY_PROTOCOL_ERROR), vec![])]
    );
}

#[test]
fn y7_window_updates_return_credit_only_after_half_the_window_was_read() {
    let mut p = default_pair();
    let s = p.a.open().unwrap();
    p.a.write(s, &vec![3u8; (INITIAL_WINDOW / 2 - 1) as usize])
        .unwrap();
    p.drive();
    let r = p.b.accept().unwrap();
    drain_output(&mut p.b, p.now);
    read_all(&mut p.b, r);
    assert!(
        drain_output(&mut p.b, p.now).is_empty(),
        "less than half: no update"
    );
    p.a.write(s, &[3u8; 1]).unwrap();
    p.drive();
    read_all(&mut p.b, r);
    let out = drain_output(&mut p.b, p.now);
    assert_eq!(
        out,
        vec![(
            Header::window_update(r.get(), Flags::NONE, INITIAL_WINDOW / 2),
            vec![]
        )]
    );
}
