//! The mplex send rules of docs/muxer-send-rules.md, each pinned at the frame
//! level: what a plexus core puts on the wire, decoded frame by frame. Rule
//! names (M1…) match the document.

mod support;

use std::time::Instant;

use plexus_core::MuxLimits;
use plexus_mplex::frame::{Flag, Header};
use plexus_mplex::{Config, Core, StreamId};
use support::*;

fn core() -> (Core, Instant) {
    (
        Core::new(Config::default(), MuxLimits::default()),
        Instant::now(),
    )
}

/// Every frame `c` sends, with `budget` bytes per `poll_transmit` call.
fn output_in_calls(c: &mut Core, now: Instant, budget: usize) -> Vec<(Header, Vec<u8>)> {
    parse(&plexus_testkit::pair::drain_wire_in_calls(c, now, budget))
}

#[test]
fn m1_new_stream_has_an_empty_body_and_comes_first() {
    let (mut c, now) = core();
    let s = c.open().unwrap();
    c.write(s, b"hello").unwrap();
    let out = drain_output(&mut c, now);
    assert_eq!(
        out,
        vec![
            (Header::new(0, Flag::NewStream, 0), vec![]),
            (Header::new(0, Flag::MessageInitiator, 5), b"hello".to_vec()),
        ]
    );
}

#[test]
fn m2_messages_stay_within_max_send_frame() {
    let (mut c, now) = core();
    let s = c.open().unwrap();
    let n = c.write(s, &vec![9u8; 200_000]).unwrap();
    let out = drain_output(&mut c, now);
    let max = Config::default().max_send_frame as usize;
    let bodies: Vec<usize> = out
        .iter()
        .filter(|(h, _)| h.flag == Flag::MessageInitiator)
        .map(|(_, b)| b.len())
        .collect();
    assert!(bodies.iter().all(|&l| l > 0 && l <= max), "{bodies:?}");
    assert_eq!(bodies.iter().sum::<usize>(), n);
}

#[test]
fn m3_close_is_its_own_frame_once_after_the_last_message() {
    for budget in [3, 10, 1000, 1 << 20] {
        let (mut c, now) = core();
        let s = c.open().unwrap();
        c.write(s, &vec![1u8; 5000]).unwrap();
        c.finish(s).unwrap();
        let out = output_in_calls(&mut c, now, budget);
        let last = out.last().unwrap();
        assert_eq!(
            *last,
            (Header::new(0, Flag::CloseInitiator, 0), vec![]),
            "budget {budget}"
        );
        let closes = out
            .iter()
            .filter(|(h, _)| h.flag == Flag::CloseInitiator)
            .count();
        assert_eq!(closes, 1, "budget {budget}");
        let data: usize = out.iter().map(|(_, b)| b.len()).sum();
        assert_eq!(data, 5000, "budget {budget}");
    }
}

#[test]
fn m4_reset_is_empty_and_ends_the_stream_on_the_wire() {
    let (mut c, now) = core();
    let s = c.open().unwrap();
    c.write(s, b"sent").unwrap();
    drain_output(&mut c, now);
    c.write(s, b"dropped").unwrap();
    c.reset(s).unwrap();
    assert_eq!(
        drain_output(&mut c, now),
        vec![(Header::new(0, Flag::ResetInitiator, 0), vec![])]
    );
    assert!(drain_output(&mut c, now).is_empty());
}

#[test]
fn m4_a_stream_the_remote_never_heard_of_is_dropped_silently() {
    let (mut c, now) = core();
    let s = c.open().unwrap();
    c.write(s, b"never sent").unwrap();
    c.reset(s).unwrap();
    assert!(drain_output(&mut c, now).is_empty());
}

#[test]
fn m5_receiver_flags_on_streams_the_remote_opened() {
    let mut p = default_pair();
    let s = p.a.open().unwrap();
    p.a.write(s, b"ping").unwrap();
    p.drive();
    let r = p.b.accept().unwrap();
    assert_eq!(r, StreamId::new(0, false));
    p.b.write(r, b"pong").unwrap();
    p.b.finish(r).unwrap();
    let out = drain_output(&mut p.b, p.now);
    assert_eq!(
        out,
        vec![
            (Header::new(0, Flag::MessageReceiver, 4), b"pong".to_vec()),
            (Header::new(0, Flag::CloseReceiver, 0), vec![]),
        ]
    );
    // `a` has not closed its side: resetting sends the Receiver reset.
    p.b.reset(r).unwrap();
    assert_eq!(
        drain_output(&mut p.b, p.now),
        vec![(Header::new(0, Flag::ResetReceiver, 0), vec![])]
    );
}

#[test]
fn m6_frames_for_unknown_streams_get_no_answer() {
    let (mut c, now) = core();
    // A message and a close for a stream the remote never opened, and a
    // reset for one of ours that never existed... as Initiator flags (their
    // id space): ignored, nothing sent back.
    let mut input = wire(&[
        (Header::new(7, Flag::MessageInitiator, 3), b"abc"),
        (Header::new(7, Flag::CloseInitiator, 0), b""),
        (Header::new(9, Flag::ResetInitiator, 0), b""),
    ]);
    c.handle_input(now, &mut input).unwrap();
    assert!(drain_output(&mut c, now).is_empty());
    assert!(c.error().is_none());
}
