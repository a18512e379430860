//! Fuzz body for `mplex_frames`: hostile input into one mplex `Core`.
//!
//! The first byte picks the mode:
//! - even: the rest is raw wire bytes (so seeds can be real transcripts), fed
//!   in chunks whose size the first byte also picks;
//! - odd: the rest drives a mix of structured frames (so most inputs get past
//!   the prefix checks, including flag 7 and oversized lengths), raw bytes,
//!   transmits, time steps and application calls (open, read, write, finish,
//!   reset, detach, close, transport end).
//!
//! Limits are small so that inputs reach them (stream cap, accept backlog,
//! buffer caps, pending resets, rapid resets). After every step: the core's
//! invariants hold (buffers within their caps, counters match, queues
//! bounded), a connection error is sticky, typed and closes the core,
//! complete prefixes are consumed unless input is blocked (read-blocked:
//! a deadline within `max_block` is pending; paused on a full control
//! queue: one within `control_stall_timeout`), and `poll_transmit` respects its budget and
//! emits only whole, valid frames.

use std::time::{Duration, Instant};

use arbitrary::{Result, Unstructured};
use bytes::BytesMut;
use plexus_core::MuxLimits;
use plexus_mplex::frame::{Flag, Header, Kind, MAX_FRAME_SIZE};
use plexus_mplex::{Config, Core, Event, StreamId};

/// Run one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        raw(usize::from(mode >> 1) + 1, rest);
    } else {
        let _ = structured(&mut Unstructured::new(rest));
    }
}

fn small_limits() -> (Config, MuxLimits) {
    let cfg = Config {
        max_send_frame: 1000,
        max_buffer_per_stream: 4096,
        max_buffer_per_connection: 10_000,
        max_stream_send_buffer: 3000,
        max_pending_control: 16,
        ..Config::default()
    };
    let limits = MuxLimits {
        max_streams: 8,
        max_accept_backlog: 4,
        max_rapid_resets: 4,
        reset_window: Duration::from_secs(1),
        ..MuxLimits::default()
    };
    (cfg, limits)
}

struct Harness {
    core: Core,
    now: Instant,
    src: BytesMut,
    held: Vec<StreamId>,
    buf: Vec<u8>,
}

impl Harness {
    fn new(cfg: Config, limits: MuxLimits) -> Harness {
        Harness {
            core: Core::new(cfg, limits),
            now: Instant::now(),
            src: BytesMut::new(),
            held: Vec::new(),
            buf: vec![0u8; 4096],
        }
    }

    /// Feed `src` and check what must hold afterwards.
    fn input(&mut self) {
        let before = self.core.error().cloned();
        let res = self.core.handle_input(self.now, &mut self.src);
        match (&before, &res) {
            (Some(e), r) => assert_eq!(r.as_ref().err(), Some(e), "errors are sticky"),
            (None, Err(e)) => {
                assert_eq!(self.core.error(), Some(e));
                assert!(self.core.is_closed(), "a failed core is closed");
                let _ = e.blame();
            }
            // A prefix is decided within 9 + 10 bytes, unless input is
            // blocked on a data frame that does not fit its stream yet, or
            // paused on a full control queue (what follows stays in `src`).
            (None, Ok(())) => assert!(
                self.src.len() < 19 || self.core.input_blocked(),
                "complete prefixes are consumed unless input is blocked"
            ),
        }
        if self.core.input_blocked() && !self.core.is_read_blocked() {
            assert!(
                self.core.pending_control() >= self.core.config().max_pending_control,
                "input pauses only on a full control queue"
            );
            let t = self
                .core
                .poll_timeout()
                .expect("a paused core has a deadline");
            assert!(
                t <= self.now + self.core.config().control_stall_timeout,
                "stall deadline within control_stall_timeout"
            );
        }
        if self.core.is_read_blocked() {
            let t = self
                .core
                .poll_timeout()
                .expect("a blocked core has a deadline");
            assert!(
                t <= self.now + self.core.config().max_block,
                "block deadline within max_block"
            );
        }
        self.events();
    }

    fn events(&mut self) {
        while let Some(ev) = self.core.poll_event() {
            if matches!(ev, Event::InboundStream(_))
                && let Some(id) = self.core.accept()
            {
                assert!(!id.is_local(), "accepted one of our own streams");
                self.held.push(id);
            }
        }
        self.core.check_invariants();
    }

    fn transmit(&mut self, budget: usize) {
        let mut out = BytesMut::new();
        self.core.poll_transmit(self.now, &mut out, budget);
        assert!(out.len() <= budget, "poll_transmit exceeded its budget");
        check_output(&out, self.core.config().max_send_frame);
        self.events();
    }

    fn read(&mut self, i: usize, n: usize) {
        if let Some(&id) = self.held.get(i) {
            let n = n.clamp(1, self.buf.len());
            let _ = self.core.read(id, &mut self.buf[..n]);
            self.events();
        }
    }
}

/// Our output is whole, valid frames: no flag 7, no oversized or trailing
/// partial frame, bodies only on data (and never more than we send per frame).
fn check_output(mut out: &[u8], max_send: u32) {
    while !out.is_empty() {
        let (h, n) = Header::decode(out, MAX_FRAME_SIZE)
            .expect("our output decodes")
            .expect("our output holds whole prefixes");
        out = &out[n..];
        match h.flag.kind() {
            Kind::Message => assert!(h.len >= 1 && h.len <= max_send, "data frame size"),
            _ => assert_eq!(h.len, 0, "control frames carry no body"),
        }
        assert!(out.len() >= h.len as usize, "our output holds whole bodies");
        out = &out[h.len as usize..];
    }
}

fn raw(chunk: usize, data: &[u8]) {
    let (cfg, limits) = small_limits();
    let mut h = Harness::new(cfg, limits);
    for (i, piece) in data.chunks(chunk).enumerate() {
        h.src.extend_from_slice(piece);
        h.input();
        if i % 3 == 0 {
            h.transmit(64 + i * 7);
        }
        if i % 2 == 0 {
            let n = h.held.len();
            for k in 0..n {
                h.read(k, 700);
            }
        }
        if h.core.is_closed() {
            break;
        }
    }
    h.transmit(1 << 16);
}

fn structured(u: &mut Unstructured<'_>) -> Result<()> {
    let (mut cfg, mut limits) = small_limits();
    cfg.max_buffer_per_stream = u.int_in_range(0..=8192)?;
    cfg.max_buffer_per_connection = u.int_in_range(0..=20_000)?;
    cfg.max_send_frame = u.int_in_range(1..=5000)?;
    cfg.max_frame_size = u.int_in_range(0..=MAX_FRAME_SIZE)?;
    cfg.max_pending_control = u.int_in_range(1..=32)?;
    cfg.max_block = Duration::from_millis(u.int_in_range(0..=6000)?);
    limits.max_streams = u.int_in_range(1..=16)?;
    limits.max_accept_backlog = u.int_in_range(0..=8)?;
    limits.max_rapid_resets = u.int_in_range(0..=8)?;
    let mut h = Harness::new(cfg, limits);
    let data = vec![0x42u8; 3000];

    while !u.is_empty() {
        match u.int_in_range(0u8..=12)? {
            0..=4 => {
                let id = u.int_in_range(0..=8)?;
                let bits: u8 = u.int_in_range(0..=7)?;
                let len = if u.ratio(1, 8)? {
                    u.arbitrary()?
                } else {
                    u.int_in_range(0..=600)?
                };
                match Flag::from_u8(bits) {
                    Some(flag) => Header::new(id, flag, len).encode_into(&mut h.src),
                    None => {
                        // Flag 7 (never produced by the encoder).
                        h.src.extend_from_slice(&[(id << 3 | 7) as u8 & 0x7f, 0]);
                    }
                }
                let n = (len as usize).min(u.len()).min(4096);
                h.src.extend_from_slice(u.bytes(n)?);
            }
            5 => {
                let n = u.int_in_range(0..=32)?;
                h.src.extend_from_slice(u.bytes(n.min(u.len()))?);
            }
            6 => {
                let budget = u.int_in_range(0..=(64 << 10))?;
                h.transmit(budget);
            }
            7 => {
                h.now += Duration::from_millis(u.int_in_range(0..=3000)?);
                h.core.handle_timeout(h.now);
            }
            8 => {
                let i = u.int_in_range(0..=7)?;
                let n = u.int_in_range(1..=4096)?;
                h.read(i, n);
            }
            9 | 10 => {
                if let Some(&id) = h.held.get(u.int_in_range(0..=7)?) {
                    match u.int_in_range(0..=3)? {
                        0 => drop(h.core.finish(id)),
                        1 => drop(h.core.reset(id)),
                        2 => {
                            h.core.detach(id);
                            h.held.retain(|&x| x != id);
                        }
                        _ => {
                            let n = u.int_in_range(0..=3000)?;
                            drop(h.core.write(id, &data[..n]));
                        }
                    }
                } else if let Ok(id) = h.core.open() {
                    assert!(id.is_local());
                    h.held.push(id);
                }
                h.events();
            }
            11 => {
                if u.ratio(1, 4)? {
                    h.core.handle_transport_closed(None);
                } else {
                    h.core.close();
                }
                h.events();
            }
            _ => {
                // Local opens never fail while open and below the cap.
                let before = h.core.num_streams();
                match h.core.open() {
                    Ok(id) => {
                        assert_eq!(h.core.num_streams(), before + 1);
                        h.held.push(id);
                    }
                    Err(_) => assert!(
                        h.core.is_closing() || before >= h.core.limits().max_streams,
                        "open refused without a reason"
                    ),
                }
                h.events();
            }
        }
        h.input();
    }
    Ok(())
}
