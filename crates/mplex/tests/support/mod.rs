//! A two-party virtual-time harness for `Core` (no sockets, no sleeps), plus
//! helpers to script raw frames.
#![allow(dead_code, unreachable_pub)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use plexus_core::MuxLimits;
use plexus_mplex::frame::{Header, MAX_FRAME_SIZE};
use plexus_mplex::{Config, Core, Event, StreamId};

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
            a: Core::new(cfg.clone(), limits.clone()),
            b: Core::new(cfg, limits),
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
        // A read-blocked side reads nothing more (TCP pushes back): what it
        // holds stays in its input buffer, the rest stays on the wire.
        moved |= Self::receive(&mut self.b, self.now, &mut self.a_to_b, &mut self.b_in);
        moved |= Self::receive(&mut self.a, self.now, &mut self.b_to_a, &mut self.a_in);
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

    /// Feed `core` what it holds in `input` and then what is due on `wire`,
    /// unless it is read-blocked. Returns whether any byte was consumed.
    fn receive(
        core: &mut Core,
        now: Instant,
        wire: &mut VecDeque<(Instant, Bytes)>,
        input: &mut BytesMut,
    ) -> bool {
        let mut moved = false;
        loop {
            if core.is_read_blocked() {
                return moved;
            }
            let before = input.len();
            core.handle_input(now, input).expect("input");
            moved |= input.len() < before;
            if core.is_read_blocked() {
                return moved;
            }
            match wire.front() {
                Some((t, _)) if *t <= now => {
                    let (_, b) = wire.pop_front().unwrap();
                    input.extend_from_slice(&b);
                    moved = true;
                }
                _ => return moved,
            }
        }
    }

    /// Bytes waiting in a side's input buffer plus on the wire towards it
    /// (what a read-blocked side has not consumed).
    pub fn a_unread(&self) -> usize {
        self.a_in.len() + self.b_to_a.iter().map(|x| x.1.len()).sum::<usize>()
    }

    /// See [`Pair::a_unread`].
    pub fn b_unread(&self) -> usize {
        self.b_in.len() + self.a_to_b.iter().map(|x| x.1.len()).sum::<usize>()
    }

    /// Run until nothing is in flight, advancing the clock to deliveries.
    /// Stops early while a side is read-blocked with data waiting for it (the
    /// application must read, or time must pass).
    pub fn drive(&mut self) {
        for _ in 0..1_000_000 {
            if self.step() {
                continue;
            }
            let next = [
                self.a_to_b
                    .front()
                    .filter(|_| !self.b.is_read_blocked())
                    .map(|x| x.0),
                self.b_to_a
                    .front()
                    .filter(|_| !self.a.is_read_blocked())
                    .map(|x| x.0),
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

/// Write all of `data` to `id` (the send buffer must have room).
pub fn write_all(core: &mut Core, id: StreamId, data: &[u8]) {
    assert_eq!(core.write(id, data), Ok(data.len()), "write {id}");
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
        assert_eq!(h.len as usize, body.len(), "scripted frame length");
        h.encode_into(&mut b);
        b.extend_from_slice(body);
    }
    b
}

/// Decode every frame in `bytes` (prefixes plus bodies).
pub fn parse(mut bytes: &[u8]) -> Vec<(Header, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (h, n) = Header::decode(bytes, MAX_FRAME_SIZE)
            .expect("valid frame")
            .expect("complete prefix");
        bytes = &bytes[n..];
        let len = h.len as usize;
        out.push((h, bytes[..len].to_vec()));
        bytes = &bytes[len..];
    }
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
