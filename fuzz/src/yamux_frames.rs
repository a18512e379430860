//! Fuzz body for `yamux_frames`: hostile input into one yamux `Core`.
//!
//! The input drives a mix of raw bytes and structured frames (so that most
//! inputs get past the header checks) into `handle_input`, interleaved with
//! transmits, timer runs and application reads. After every step the core's
//! invariants are checked (no stream buffers beyond its window, counters
//! match, queues within their bounds) and `poll_transmit` must respect its
//! budget. A connection error must be sticky and typed.

use std::time::{Duration, Instant};

use arbitrary::{Result, Unstructured};
use bytes::BytesMut;
use plexus_core::{MuxLimits, Role};
use plexus_yamux::frame::{Flags, FrameType, Header};
use plexus_yamux::{Config, Core, Event, StreamId};

/// Run one input.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let _ = drive(&mut u);
}

fn drive(u: &mut Unstructured<'_>) -> Result<()> {
    let role = if u.arbitrary::<bool>()? {
        Role::Initiator
    } else {
        Role::Responder
    };
    let limits = MuxLimits {
        max_streams: u.int_in_range(1..=32)?,
        max_accept_backlog: u.int_in_range(0..=8)?,
        max_ack_backlog: u.int_in_range(1..=8)?,
        max_rapid_resets: u.int_in_range(0..=8)?,
        reset_window: Duration::from_millis(u.int_in_range(0..=2000)?),
    };
    let cfg = Config {
        max_window: u.int_in_range(0..=(1 << 20))?,
        max_connection_window: u.int_in_range(0..=(4 << 20))?,
        max_frame_size: u.int_in_range(1..=70_000)?,
        max_stream_send_buffer: u.int_in_range(1..=(300 << 10))?,
        max_pending_control: u.int_in_range(1..=64)?,
        ..Config::default()
    };
    let mut core = Core::new(role, cfg, limits);
    let start = Instant::now();
    let mut now = start;
    let mut src = BytesMut::new();
    let mut held: Vec<StreamId> = Vec::new();
    let mut buf = vec![0u8; 4096];

    while !u.is_empty() {
        match u.int_in_range(0u8..=9)? {
            0..=4 => {
                let ty = FrameType::from_u8(u.int_in_range(0..=3)?).unwrap_or(FrameType::Data);
                let flags = Flags::from_bits(u.int_in_range(0..=15)?).unwrap_or(Flags::NONE);
                let stream_id = u.int_in_range(0..=12)?;
                let length = if u.arbitrary::<bool>()? {
                    u.arbitrary()?
                } else {
                    u.int_in_range(0..=300)?
                };
                Header {
                    ty,
                    flags,
                    stream_id,
                    length,
                }
                .encode_into(&mut src);
                if ty == FrameType::Data {
                    let n = (length as usize).min(u.len()).min(4096);
                    src.extend_from_slice(u.bytes(n)?);
                }
            }
            5 => {
                let n = u.int_in_range(0..=32)?;
                src.extend_from_slice(u.bytes(n.min(u.len()))?);
            }
            6 => {
                let budget = u.int_in_range(0..=(200 << 10))?;
                let mut out = BytesMut::new();
                core.poll_transmit(now, &mut out, budget);
                assert!(out.len() <= budget, "poll_transmit exceeded its budget");
            }
            7 => {
                now += Duration::from_millis(u.int_in_range(0..=30_000)?);
                core.handle_timeout(now);
            }
            8 => {
                if let Some(&id) = held.get(u.int_in_range(0..=7)?) {
                    let n = u.int_in_range(1..=4096)?;
                    let _ = core.read(id, &mut buf[..n]);
                }
            }
            _ => {
                if let Some(&id) = held.get(u.int_in_range(0..=7)?) {
                    match u.int_in_range(0..=3)? {
                        0 => drop(core.finish(id)),
                        1 => drop(core.reset(id)),
                        2 => {
                            core.detach(id);
                            held.retain(|&h| h != id);
                        }
                        _ => drop(core.write(id, &buf[..100])),
                    }
                } else if let Ok(id) = core.open() {
                    held.push(id);
                }
            }
        }
        let before = core.error().cloned();
        let res = core.handle_input(now, &mut src);
        match (&before, &res) {
            (Some(e), r) => assert_eq!(r.as_ref().err(), Some(e), "errors are sticky"),
            (None, Err(e)) => assert_eq!(core.error(), Some(e)),
            (None, Ok(())) if core.input_blocked() => assert!(
                core.pending_control() >= core.config().max_pending_control,
                "input blocks only on a full control queue"
            ),
            (None, Ok(())) => assert!(src.len() < 12, "complete headers are consumed"),
        }
        while let Some(ev) = core.poll_event() {
            if matches!(ev, Event::InboundStream(_))
                && let Some(id) = core.accept()
            {
                held.push(id);
            }
        }
        core.check_invariants();
    }
    Ok(())
}
