//! A two-party virtual-time harness for any [`MuxCore`] (no sockets, no
//! sleeps): two cores joined by an in-memory link with optional one-way
//! latency, plus helpers every muxer's core tests share.
//!
//! A side that is input-blocked ([`MuxCore::input_blocked`]) reads nothing
//! more, as the real driver does: what it holds stays in its input buffer,
//! the rest stays on the wire (TCP pushing back).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use plexus_mux::{MuxCore, StreamErrorKind};

/// Two cores joined by an in-memory link.
pub struct Pair<C: MuxCore> {
    /// The first side (the connection's initiator where roles matter).
    pub a: C,
    /// The second side.
    pub b: C,
    /// The virtual clock.
    pub now: Instant,
    /// One-way latency of the link.
    pub latency: Duration,
    /// Bytes per `poll_transmit` call.
    pub budget: usize,
    a_to_b: VecDeque<(Instant, Bytes)>,
    b_to_a: VecDeque<(Instant, Bytes)>,
    a_in: BytesMut,
    b_in: BytesMut,
    /// Events `a` emitted (see [`Pair::take_a_events`]).
    pub a_events: Vec<C::Event>,
    /// Events `b` emitted.
    pub b_events: Vec<C::Event>,
    /// Bytes `a` has put on the wire.
    pub a_sent: usize,
    /// Bytes `b` has put on the wire.
    pub b_sent: usize,
}

impl<C: MuxCore> Pair<C> {
    /// Join two cores; the clock starts now, with no latency and a 256 KiB
    /// transmit budget.
    pub fn new(a: C, b: C) -> Pair<C> {
        Pair {
            a,
            b,
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

    /// Everything `core` transmits now, as wire chunks due at `at`.
    fn transmit(
        core: &mut C,
        now: Instant,
        at: Instant,
        budget: usize,
        wire: &mut VecDeque<(Instant, Bytes)>,
    ) -> usize {
        let mut sent = 0;
        loop {
            let mut buf = BytesMut::new();
            if !core.poll_transmit(now, &mut buf, budget) {
                return sent;
            }
            assert!(buf.len() <= budget, "poll_transmit exceeded its budget");
            sent += buf.len();
            wire.push_back((at, buf.freeze()));
        }
    }

    /// Feed `core` what it holds in `input` and then what is due on `wire`,
    /// unless it is input-blocked. Returns whether any byte was consumed.
    fn receive(
        core: &mut C,
        now: Instant,
        wire: &mut VecDeque<(Instant, Bytes)>,
        input: &mut BytesMut,
    ) -> bool {
        let mut moved = false;
        loop {
            if core.input_blocked() {
                return moved;
            }
            let before = input.len();
            if let Err(e) = core.handle_input(now, input) {
                panic!("input rejected: {e}");
            }
            moved |= input.len() < before;
            if core.input_blocked() {
                return moved;
            }
            match wire.front() {
                Some((t, _)) if *t <= now => {
                    let (_, b) = wire.pop_front().expect("front");
                    input.extend_from_slice(&b);
                }
                _ => return moved,
            }
        }
    }

    /// Transmit everything both sides have, deliver everything due, collect
    /// events, check both cores' invariants. Returns whether any byte moved.
    pub fn step(&mut self) -> bool {
        let at = self.now + self.latency;
        let a = Self::transmit(&mut self.a, self.now, at, self.budget, &mut self.a_to_b);
        let b = Self::transmit(&mut self.b, self.now, at, self.budget, &mut self.b_to_a);
        self.a_sent += a;
        self.b_sent += b;
        let mut moved = a + b > 0;
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

    /// Bytes waiting in `a`'s input buffer plus on the wire towards it (what
    /// an input-blocked side has not consumed).
    pub fn a_unread(&self) -> usize {
        self.a_in.len() + self.b_to_a.iter().map(|x| x.1.len()).sum::<usize>()
    }

    /// See [`Pair::a_unread`].
    pub fn b_unread(&self) -> usize {
        self.b_in.len() + self.a_to_b.iter().map(|x| x.1.len()).sum::<usize>()
    }

    /// The next delivery a side will take (none towards a blocked side).
    fn next_delivery(&self) -> Option<Instant> {
        [
            self.a_to_b
                .front()
                .filter(|_| !self.b.input_blocked())
                .map(|x| x.0),
            self.b_to_a
                .front()
                .filter(|_| !self.a.input_blocked())
                .map(|x| x.0),
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
    /// not to timers: keep-alive would run forever; due timers fire). Stops
    /// early while a side is input-blocked with data waiting for it (the
    /// application must read, or time must pass).
    pub fn drive(&mut self) {
        for _ in 0..1_000_000 {
            self.fire_timers();
            if self.step() {
                continue;
            }
            match self.next_delivery() {
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
            let next = [
                self.next_delivery(),
                self.a.poll_timeout(),
                self.b.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= end && t > self.now => self.now = t,
                Some(t) if t <= self.now => {}
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

    /// The events `a` emitted since the last call.
    pub fn take_a_events(&mut self) -> Vec<C::Event> {
        std::mem::take(&mut self.a_events)
    }

    /// The events `b` emitted since the last call.
    pub fn take_b_events(&mut self) -> Vec<C::Event> {
        std::mem::take(&mut self.b_events)
    }
}

/// Read everything currently buffered on `id`.
pub fn read_all<C: MuxCore>(core: &mut C, id: C::StreamId) -> Vec<u8> {
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
pub fn at_eof<C: MuxCore>(core: &mut C, id: C::StreamId) -> bool {
    matches!(core.read(id, &mut [0u8; 1]), Ok(0))
}

/// Write all of `data` to `id` (the send buffer must have room).
pub fn write_all<C: MuxCore>(core: &mut C, id: C::StreamId, data: &[u8]) {
    match core.write(id, data) {
        Ok(n) => assert_eq!(n, data.len(), "write {id:?}: short"),
        Err(e) => panic!("write {id:?}: {e:?} (blocked: {})", e.is_blocked()),
    }
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

/// Every event `core` has now.
pub fn drain_events<C: MuxCore>(core: &mut C) -> Vec<C::Event> {
    std::iter::from_fn(|| core.poll_event()).collect()
}

/// Every byte `core` transmits now (in `1 MiB` calls).
pub fn drain_wire<C: MuxCore>(core: &mut C, now: Instant) -> BytesMut {
    drain_wire_in_calls(core, now, 1 << 20)
}

/// Every byte `core` transmits now, `budget` bytes per `poll_transmit` call
/// (for checks that frames come out right however the budget cuts them).
pub fn drain_wire_in_calls<C: MuxCore>(core: &mut C, now: Instant, budget: usize) -> BytesMut {
    let mut buf = BytesMut::new();
    while core.poll_transmit(now, &mut buf, budget) {}
    buf
}

/// Call every [`MuxCore`] method once on a fresh pair (`a` opens a stream to
/// `b`, both sides write, read, finish, reset, close), checking the results a
/// correct core gives. Its point is the glue: a trait method forwarded to an
/// inherent method that does not exist calls itself, which overflows the
/// stack here instead of in production.
pub fn exercise_every_method<C: MuxCore>(a: C, b: C) {
    use plexus_mux::MuxEvent;
    let mut p = Pair::new(a, b);
    let now = p.now;
    assert!(!p.a.input_blocked() && !p.b.input_blocked());
    let s = p.a.open().expect("open").expect("no wait on a fresh core");
    assert_eq!(p.a.write(s, b"hi").ok(), Some(2));
    assert!(p.a.wants_transmit());
    p.drive();
    let events = p.take_b_events();
    assert!(
        events
            .iter()
            .any(|e| C::classify(e) == MuxEvent::InboundStream),
        "{events:?}"
    );
    let r = p.b.accept().expect("accepted");
    assert!(p.b.accept_error().is_none());
    assert_eq!(p.b.readable(r), 2, "readable reports the buffered bytes");
    assert_eq!(read_all(&mut p.b, r), b"hi");
    assert_eq!(p.b.readable(r), 0);
    assert!(p.b.finish(r).is_ok());
    p.a.reset(s);
    p.drive();
    p.a.detach(s);
    p.b.detach(r);
    let _ = p.a.poll_timeout();
    p.a.handle_timeout(now);
    let _ = p.a.write_quota();
    let _ = p.a.stats();
    p.a.check_invariants();
    let mut sink = BytesMut::new();
    let _ = p.a.poll_transmit(now, &mut sink, 1024);
    let _ = p.a.poll_event();
    p.b.handle_input(now, &mut BytesMut::new())
        .unwrap_or_else(|e| panic!("empty input rejected: {e}"));
    p.b.handle_transport_closed(None);
    assert!(p.b.is_closed());
    p.a.close();
    assert!(p.a.is_closing());
    drain_wire(&mut p.a, now);
}

/// Feed arbitrary byte `chunks` into `core` one after the other, as a hostile
/// remote would, accepting every inbound stream and transmitting after each
/// chunk. Never panics (invariants checked after each step), `poll_transmit`
/// stays within its budget, and a rejection is sticky. For each muxer's
/// "arbitrary bytes never panic" property test.
pub fn feed_arbitrary_chunks<C: MuxCore>(core: &mut C, now: Instant, chunks: &[Vec<u8>]) {
    use plexus_mux::MuxEvent;
    let mut src = BytesMut::new();
    for chunk in chunks {
        src.extend_from_slice(chunk);
        let r = core.handle_input(now, &mut src);
        core.check_invariants();
        while let Some(ev) = core.poll_event() {
            if C::classify(&ev) == MuxEvent::InboundStream {
                core.accept();
            }
        }
        let mut out = BytesMut::new();
        core.poll_transmit(now, &mut out, 4096);
        assert!(out.len() <= 4096, "poll_transmit exceeded its budget");
        if let Err(e) = r {
            let again = core.handle_input(now, &mut BytesMut::from(&[0u8; 1][..]));
            assert_eq!(
                again.err().map(|x| x.to_string()),
                Some(e.to_string()),
                "a rejection is sticky"
            );
            return;
        }
    }
}

/// Feed `buf` to `core` while it takes it, transmitting everything it owes
/// whenever its input pauses, as a driver whose remote reads does. Checks
/// that sending what was owed always resumes input. Returns every byte sent.
pub fn feed_answering<C: MuxCore>(core: &mut C, now: Instant, mut buf: BytesMut) -> BytesMut {
    let mut out = BytesMut::new();
    for _ in 0..100_000 {
        if let Err(e) = core.handle_input(now, &mut buf) {
            panic!("input rejected: {e}");
        }
        core.check_invariants();
        out.extend_from_slice(&drain_wire(core, now));
        assert!(!core.input_blocked(), "sending what we owed resumes input");
        if buf.is_empty() {
            return out;
        }
    }
    panic!("input never drained");
}
