//! A two-party virtual-time harness for `Core` (no sockets, no sleeps), plus
//! helpers to script raw frames.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use plexus_core::{MuxLimits, Role};
use plexus_yamux::frame::{FrameType, HEADER_LEN, Header};
use plexus_yamux::{Config, Core, Event, StreamId};

/// Two cores joined by an in-memory link with optional one-way latency.
pub struct Pair {
    pub a: Core,
    pub b: Core,
    pub now: Instant,
    pub latency: Duration,
    /// Bytes per `poll_transmit` call.
    pub budget: usize,
    a_to_b: VecDeque<(Instant, Bytes)>,
    b_to_a: VecDeque<(Instant, Bytes)>,
    a_in: BytesMut,
    b_in: BytesMut,
    pub a_events: Vec<Event>,
    pub b_events: Vec<Event>,
    /// Bytes each side has put on the wire.
    pub a_sent: usize,
    pub b_sent: usize,
}

impl Pair {
    pub fn new(cfg: Config, limits: MuxLimits) -> Pair {
        Pair {
            a: Core::new(Role::Initiator, cfg.clone(), limits.clone()),
            b: Core::new(Role::Responder, cfg, limits),
            now: Instant::now(),
            latency: Duration::ZERO,
            budget: 256 * 1024,
            a_to_b: VecDeque::new(),
            b_to_a: VecDeque::new(),
            a_in: BytesMut::new(),
            b_in: BytesMut::new(),
            a_events: Vec::new(),
            b_events: Vec::new(),
            a_sent: 0,
            b_sent: 0,
        }
    }

    pub fn default_pair() -> Pair {
        Pair::new(Config::default(), MuxLimits::default())
    }

    /// Transmit everything both sides have, deliver everything due, collect
    /// events. Returns whether any byte moved.
    pub fn step(&mut self) -> bool {
        let mut moved = false;
        let at = self.now + self.latency;
        loop {
            let mut buf = BytesMut::new();
            if !self.a.poll_transmit(self.now, &mut buf, self.budget) {
                break;
            }
            assert!(
                buf.len() <= self.budget,
                "poll_transmit exceeded its budget"
            );
            self.a_sent += buf.len();
            self.a_to_b.push_back((at, buf.freeze()));
            moved = true;
        }
        loop {
            let mut buf = BytesMut::new();
            if !self.b.poll_transmit(self.now, &mut buf, self.budget) {
                break;
            }
            assert!(
                buf.len() <= self.budget,
                "poll_transmit exceeded its budget"
            );
            self.b_sent += buf.len();
            self.b_to_a.push_back((at, buf.freeze()));
            moved = true;
        }
        while self.a_to_b.front().is_some_and(|(t, _)| *t <= self.now) {
            let (_, b) = self.a_to_b.pop_front().unwrap();
            self.b_in.extend_from_slice(&b);
            self.b
                .handle_input(self.now, &mut self.b_in)
                .expect("b input");
            moved = true;
        }
        while self.b_to_a.front().is_some_and(|(t, _)| *t <= self.now) {
            let (_, b) = self.b_to_a.pop_front().unwrap();
            self.a_in.extend_from_slice(&b);
            self.a
                .handle_input(self.now, &mut self.a_in)
                .expect("a input");
            moved = true;
        }
        while let Some(e) = self.a.poll_event() {
            self.a_events.push(e);
        }
        while let Some(e) = self.b.poll_event() {
            self.b_events.push(e);
        }
        self.a.check_invariants();
        self.b.check_invariants();
        moved
    }

    /// The next instant something happens on its own: a delivery or a timer.
    fn next_wakeup(&self) -> Option<Instant> {
        [
            self.a_to_b.front().map(|x| x.0),
            self.b_to_a.front().map(|x| x.0),
            self.a.poll_timeout(),
            self.b.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn fire_timers(&mut self) {
        if self.a.poll_timeout().is_some_and(|t| t <= self.now) {
            self.a.handle_timeout(self.now);
        }
        if self.b.poll_timeout().is_some_and(|t| t <= self.now) {
            self.b.handle_timeout(self.now);
        }
    }

    /// Run until nothing is in flight, advancing the clock to deliveries (but
    /// not to timers: keep-alive would run forever).
    pub fn drive(&mut self) {
        for _ in 0..1_000_000 {
            self.fire_timers();
            if self.step() {
                continue;
            }
            let next = [
                self.a_to_b.front().map(|x| x.0),
                self.b_to_a.front().map(|x| x.0),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) => self.now = self.now.max(t),
                None => return,
            }
        }
        panic!("pair did not settle");
    }

    /// Advance the clock by `d`, firing every timer and delivery on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        for _ in 0..1_000_000 {
            self.fire_timers();
            while self.step() {}
            match self.next_wakeup() {
                Some(t) if t <= end => self.now = self.now.max(t),
                _ => {
                    self.now = end;
                    self.fire_timers();
                    while self.step() {}
                    return;
                }
            }
        }
        panic!("advance did not finish");
    }

    pub fn take_a_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.a_events)
    }

    pub fn take_b_events(&mut self) -> Vec<Event> {
        std::mem::take(&mut self.b_events)
    }
}

/// Read everything currently buffered on `id`.
pub fn read_all(core: &mut Core, id: StreamId) -> Vec<u8> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = core.read(id, &mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
    }
    out
}

/// Whether `id` has reached end-of-file.
pub fn at_eof(core: &mut Core, id: StreamId) -> bool {
    matches!(core.read(id, &mut [0u8; 1]), Ok(0))
}

/// A deterministic byte pattern for stream `seed`.
pub fn pattern(seed: u32, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| {
            (i as u32)
                .wrapping_mul(31)
                .wrapping_add(seed.wrapping_mul(7)) as u8
        })
        .collect()
}

/// Frames as wire bytes.
pub fn wire(frames: &[(Header, &[u8])]) -> BytesMut {
    let mut b = BytesMut::new();
    for (h, body) in frames {
        h.encode_into(&mut b);
        b.extend_from_slice(body);
    }
    b
}

/// Decode every frame in `bytes` (headers plus data bodies).
pub fn parse(mut bytes: &[u8]) -> Vec<(Header, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= HEADER_LEN {
        let h = Header::decode(bytes[..HEADER_LEN].try_into().unwrap()).expect("valid header");
        bytes = &bytes[HEADER_LEN..];
        let body = if h.ty == FrameType::Data {
            let n = h.length as usize;
            let b = bytes[..n].to_vec();
            bytes = &bytes[n..];
            b
        } else {
            Vec::new()
        };
        out.push((h, body));
    }
    assert!(bytes.is_empty(), "trailing partial frame");
    out
}

/// Everything `core` transmits now.
pub fn drain_output(core: &mut Core, now: Instant) -> Vec<(Header, Vec<u8>)> {
    let mut buf = BytesMut::new();
    while core.poll_transmit(now, &mut buf, 1 << 20) {}
    parse(&buf)
}

pub fn drain_events(core: &mut Core) -> Vec<Event> {
    std::iter::from_fn(|| core.poll_event()).collect()
}
