//! Fuzz body for `yamux_ops`: an arbitrary sequence of application and network
//! operations on two honest yamux `Core`s joined by a link the fuzzer delivers
//! byte by byte.
//!
//! Invariants after every operation: each core's internal invariants hold
//! (buffered ≤ window, counters consistent, queues bounded); `poll_transmit`
//! respects its budget; two honest peers never accuse each other (no
//! `PeerMisbehaved`/`PeerIncompatible` error, only local ones such as a ping
//! timeout when the fuzzer withholds delivery); and every byte read equals the
//! byte written at that offset of that stream and direction.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::{Buf, BytesMut};
use plexus_core::{Blame, MuxLimits, Role};
use plexus_yamux::{Config, Core, Event, StreamError, StreamId};

/// One operation. `side` picks the core (false: the dialer, true: the
/// listener); `stream` indexes that side's held streams.
#[derive(Arbitrary, Debug)]
enum Op {
    Open {
        side: bool,
    },
    Accept {
        side: bool,
    },
    Write {
        side: bool,
        stream: u8,
        len: u16,
    },
    Read {
        side: bool,
        stream: u8,
        len: u16,
    },
    Finish {
        side: bool,
        stream: u8,
    },
    Reset {
        side: bool,
        stream: u8,
    },
    Detach {
        side: bool,
        stream: u8,
    },
    /// Transmit into the side's outbox with this budget.
    Transmit {
        side: bool,
        budget: u16,
    },
    /// Move up to this many bytes from the side's outbox to the peer.
    Deliver {
        side: bool,
        bytes: u16,
    },
    AdvanceTime {
        ms: u16,
    },
    GoAway {
        side: bool,
    },
    Close {
        side: bool,
    },
}

struct Side {
    core: Core,
    held: Vec<StreamId>,
    outbox: BytesMut,
    inbox: BytesMut,
    /// Bytes written / read per stream id in this side's direction.
    written: HashMap<u32, usize>,
    read: HashMap<u32, usize>,
}

impl Side {
    fn new(role: Role, cfg: Config, limits: MuxLimits) -> Side {
        Side {
            core: Core::new(role, cfg, limits),
            held: Vec::new(),
            outbox: BytesMut::new(),
            inbox: BytesMut::new(),
            written: HashMap::new(),
            read: HashMap::new(),
        }
    }

    fn pick(&self, i: u8) -> Option<StreamId> {
        if self.held.is_empty() {
            None
        } else {
            Some(self.held[i as usize % self.held.len()])
        }
    }
}

/// The byte at `offset` of stream `id` written by the dialer (`dir` false) or
/// the listener.
fn byte(id: u32, dir: bool, offset: usize) -> u8 {
    (id.wrapping_mul(7) as usize + offset.wrapping_mul(13) + if dir { 101 } else { 0 }) as u8
}

/// Run one input.
pub fn run(data: &[u8]) {
    let mut u = Unstructured::new(data);
    let cfg = Config {
        max_window: u.int_in_range(0..=(1u32 << 20)).unwrap_or(0),
        max_frame_size: u.int_in_range(1..=70_000).unwrap_or(16 << 10),
        max_stream_send_buffer: u.int_in_range(1..=(300 << 10)).unwrap_or(64 << 10),
        max_pending_control: 64,
        ..Config::default()
    };
    let limits = MuxLimits {
        max_streams: u.int_in_range(1..=16).unwrap_or(8),
        max_accept_backlog: u.int_in_range(0..=8).unwrap_or(4),
        max_ack_backlog: u.int_in_range(1..=8).unwrap_or(4),
        ..MuxLimits::default()
    };
    let mut sides = [
        Side::new(Role::Initiator, cfg.clone(), limits.clone()),
        Side::new(Role::Responder, cfg, limits),
    ];
    let mut now = Instant::now();
    let mut scratch = vec![0u8; 1 << 16];
    let mut buf = vec![0u8; 1 << 16];

    // Out of data, `arbitrary` yields defaults forever: stop at the end.
    while !u.is_empty() {
        let Ok(op) = Op::arbitrary(&mut u) else { break };
        match op {
            Op::Open { side } => {
                let s = &mut sides[side as usize];
                if let Ok(id) = s.core.open() {
                    s.held.push(id);
                }
            }
            Op::Accept { side } => {
                let s = &mut sides[side as usize];
                if let Some(id) = s.core.accept() {
                    s.held.push(id);
                }
            }
            Op::Write { side, stream, len } => {
                let s = &mut sides[side as usize];
                if let Some(id) = s.pick(stream) {
                    let off = *s.written.get(&id.get()).unwrap_or(&0);
                    let len = len as usize;
                    for (i, b) in scratch[..len].iter_mut().enumerate() {
                        *b = byte(id.get(), side, off + i);
                    }
                    if let Ok(n) = s.core.write(id, &scratch[..len]) {
                        assert!(n <= len);
                        *s.written.entry(id.get()).or_default() += n;
                    }
                }
            }
            Op::Read { side, stream, len } => {
                let s = &mut sides[side as usize];
                if let Some(id) = s.pick(stream) {
                    let len = (len as usize).max(1);
                    if let Ok(n) = s.core.read(id, &mut buf[..len]) {
                        let off = s.read.entry(id.get()).or_default();
                        for (i, &b) in buf[..n].iter().enumerate() {
                            assert_eq!(b, byte(id.get(), !side, *off + i), "stream {id} corrupted");
                        }
                        *off += n;
                    }
                }
            }
            Op::Finish { side, stream } => {
                let s = &mut sides[side as usize];
                if let Some(id) = s.pick(stream) {
                    let _ = s.core.finish(id);
                }
            }
            Op::Reset { side, stream } => {
                let s = &mut sides[side as usize];
                if let Some(id) = s.pick(stream) {
                    let _ = s.core.reset(id);
                }
            }
            Op::Detach { side, stream } => {
                let s = &mut sides[side as usize];
                if let Some(id) = s.pick(stream) {
                    s.core.detach(id);
                    s.held.retain(|&h| h != id);
                    assert!(matches!(
                        s.core.read(id, &mut [0]),
                        Err(StreamError::Unknown(_))
                    ));
                }
            }
            Op::Transmit { side, budget } => {
                let s = &mut sides[side as usize];
                let before = s.outbox.len();
                s.core.poll_transmit(now, &mut s.outbox, budget as usize);
                assert!(
                    s.outbox.len() - before <= budget as usize,
                    "budget exceeded"
                );
            }
            Op::Deliver { side, bytes } => {
                let (a, b) = sides.split_at_mut(1);
                let (from, to) = if side {
                    (&mut b[0], &mut a[0])
                } else {
                    (&mut a[0], &mut b[0])
                };
                let n = (bytes as usize).min(from.outbox.len());
                to.inbox.extend_from_slice(&from.outbox[..n]);
                from.outbox.advance(n);
                let _ = to.core.handle_input(now, &mut to.inbox);
            }
            Op::AdvanceTime { ms } => {
                now += Duration::from_millis(u64::from(ms));
                for s in &mut sides {
                    s.core.handle_timeout(now);
                }
            }
            Op::GoAway { side } => sides[side as usize].core.go_away(0),
            Op::Close { side } => sides[side as usize].core.close(),
        }
        for s in &mut sides {
            while let Some(ev) = s.core.poll_event() {
                if let Event::Reset(id) = ev {
                    assert!(
                        s.held.contains(&id),
                        "reset event for a stream the app holds"
                    );
                }
            }
            s.core.check_invariants();
            if let Some(e) = s.core.error() {
                assert_eq!(e.blame(), Blame::Local, "honest peers never misbehave: {e}");
            }
        }
    }
}
