//! The sans-IO yamux connection: bytes and `now` in; bytes, events and the
//! next timeout out. No tokio, no clock reads, no randomness: given the same
//! calls it does the same thing.
//!
//! # Driving it
//! - [`Core::handle_input`] with bytes from the transport (it consumes whole
//!   headers and as much payload as present; leftovers stay in `src`).
//! - [`Core::poll_transmit`] to get bytes for the transport, at most `budget`.
//! - [`Core::poll_event`] until `None` after each of the calls above and after
//!   application calls, to learn which streams to wake.
//! - [`Core::handle_timeout`] when the instant from [`Core::poll_timeout`] has
//!   passed (spurious calls are harmless).
//!
//! # Unknown stream ids
//! Stream ids are allocated monotonically and never reused, so the core knows
//! which ids *ever existed* without remembering them: ours below the next id
//! we would allocate, the remote's at or below the highest id it opened. A
//! Data/WindowUpdate frame (without SYN) for an id that ever existed but is no
//! longer tracked (closed, reset, or refused by us) is ignored and its payload
//! discarded: the remote may have sent it before learning of the close. A
//! frame for an id that never existed is a protocol error
//! ([`ConnError::UnknownStream`]).
//!
//! # Flow control and auto-tuning
//! Each stream has a receive window `W` (initially 256 KiB). The invariant
//! `credit + buffered + pending == W` holds, where `credit` is what the remote
//! may still send, `buffered` what sits unread, and `pending` what the
//! application read but we have not yet granted back. Data beyond `credit` is a
//! connection error ([`ConnError::WindowExceeded`]), so no stream ever buffers
//! more than its window. Once `pending ≥ W/2`, a WindowUpdate returns it.
//!
//! Auto-tuning: each stream measures *epochs*, starting at its first data
//! frame. When a WindowUpdate is sent and the bytes granted back in the
//! current epoch reach a full window `W`, the epoch ends: if it lasted at most
//! `4 × RTT`, as in go-yamux (the reader drained a whole window about as fast
//! as the network can deliver it, so the window, not the reader, limits
//! throughput; 2 × RTT proved too strict on loopback, where scheduling delays
//! exceed the RTT and some transfers then stayed at the initial window), `W`
//! doubles, capped at [`Config::max_window`] and only while the sum of all
//! stream windows stays within [`Config::max_connection_window`]. The growth
//! is granted in the same WindowUpdate. Windows never shrink. RTT is a
//! smoothed (1/8 EWMA) measure of our pings (one at start, then every
//! keep-alive interval); without an RTT sample there is no growth.
//!
//! # Sending
//! Control frames go first (go-away, our ping, ping answers, resets, window
//! updates and ACKs), then data round-robin: one frame of at most
//! [`Config::max_frame_size`] per stream per turn, so one bulk stream cannot
//! starve the others.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use plexus_core::{Blame, MuxError, MuxLimits, Role};

use crate::config::{Config, INITIAL_WINDOW};
use crate::error::{ConnError, StreamError};
use crate::frame::{Flags, FrameType, HEADER_LEN, Header};

/// GoAway code: normal termination.
pub const GO_AWAY_NORMAL: u32 = 0;
/// GoAway code: protocol error.
pub const GO_AWAY_PROTOCOL_ERROR: u32 = 1;
/// GoAway code: internal error.
pub const GO_AWAY_INTERNAL_ERROR: u32 = 2;

/// A yamux stream id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(u32);

impl StreamId {
    /// A stream id from its wire value.
    pub const fn new(id: u32) -> StreamId {
        StreamId(id)
    }

    /// The wire value.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Something the application (or driver) should react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A new inbound stream waits in the accept backlog ([`Core::accept`]).
    InboundStream(StreamId),
    /// The stream has data, reached end-of-file, or failed: read it.
    Readable(StreamId),
    /// The stream can take more data (window or send buffer freed).
    Writable(StreamId),
    /// The remote reset the stream.
    Reset(StreamId),
    /// [`Core::open`] may succeed again (the ACK backlog shrank).
    OpenReady,
    /// The remote sent GoAway with this code: no new streams, existing ones
    /// may finish.
    GoAway(u32),
    /// The connection can do no more work: it failed (see [`Core::error`]) or
    /// finished closing. Emitted once.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Flushing a GoAway (and, if `graceful`, queued stream data) before
    /// closing; `deadline` is set at the first call with a `now`.
    Closing {
        graceful: bool,
        deadline: Option<Instant>,
    },
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum App {
    /// Inbound, waiting in the accept backlog.
    Pending,
    /// The application holds it.
    Held,
    /// The application let go after finishing its write side: queued data and
    /// FIN still go out; input is discarded with credit returned.
    Detached,
}

#[derive(Debug)]
struct Stream {
    local: bool,
    app: App,
    // send side
    send_buf: BytesMut,
    send_window: u32,
    syn_pending: bool,
    ack_pending: bool,
    /// Ours, counted in the ACK backlog.
    unacked: bool,
    fin_requested: bool,
    fin_sent: bool,
    write_blocked: bool,
    // receive side
    recv_buf: BytesMut,
    recv_window: u32,
    recv_credit: u32,
    recv_pending: u32,
    remote_fin: bool,
    reset: bool,
    epoch_start: Option<Instant>,
    epoch_consumed: u64,
    // queue membership and event de-duplication
    in_send_queue: bool,
    in_control_queue: bool,
    update_due: bool,
    ev_readable: bool,
    ev_writable: bool,
}

impl Stream {
    fn new(local: bool, app: App) -> Stream {
        Stream {
            local,
            app,
            send_buf: BytesMut::new(),
            send_window: INITIAL_WINDOW,
            syn_pending: local,
            ack_pending: false,
            unacked: local,
            fin_requested: false,
            fin_sent: false,
            write_blocked: false,
            recv_buf: BytesMut::new(),
            recv_window: INITIAL_WINDOW,
            recv_credit: INITIAL_WINDOW,
            recv_pending: 0,
            remote_fin: false,
            reset: false,
            epoch_start: None,
            epoch_consumed: 0,
            in_send_queue: false,
            in_control_queue: false,
            update_due: false,
            ev_readable: false,
            ev_writable: false,
        }
    }

    fn fully_closed(&self) -> bool {
        self.fin_sent && self.remote_fin
    }
}

/// The payload of a data frame still arriving.
#[derive(Debug, Clone, Copy)]
struct Partial {
    id: u32,
    remaining: u32,
    /// The frame is for an untracked stream: drop the bytes.
    discard: bool,
    fin: bool,
}

#[derive(Debug, Clone, Copy)]
struct Ping {
    value: u32,
    queued_at: Instant,
    sent_at: Option<Instant>,
}

/// The sans-IO yamux connection state machine. See the module docs.
#[derive(Debug)]
pub struct Core {
    role: Role,
    cfg: Config,
    limits: MuxLimits,
    state: State,
    error: Option<ConnError>,
    streams: BTreeMap<u32, Stream>,
    next_local_id: u64,
    max_remote_id: u32,
    accept_queue: VecDeque<u32>,
    ack_backlog: usize,
    open_blocked: bool,
    partial: Option<Partial>,
    // output queues
    go_away_out: Option<u32>,
    go_away_sent: bool,
    local_go_away: bool,
    remote_go_away: Option<u32>,
    pongs: VecDeque<u32>,
    rsts: VecDeque<u32>,
    control_queue: VecDeque<u32>,
    send_queue: VecDeque<u32>,
    // events
    events: VecDeque<Event>,
    closed_event: bool,
    // keep-alive / RTT
    started: bool,
    ping_queued: bool,
    outstanding: Option<Ping>,
    next_ping_at: Option<Instant>,
    ping_counter: u32,
    rtt: Option<Duration>,
    // accounting
    rapid_resets: VecDeque<Instant>,
    buffered: usize,
    recv_window_total: u64,
    /// Since when input has been blocked on a full control queue (the
    /// remote is not reading what it made us owe).
    control_blocked_since: Option<Instant>,
}

/// The stream `id` as the application holds it: unknown if it never existed,
/// was dropped by the application, or was removed; an error if it was reset.
fn held_stream(
    streams: &mut BTreeMap<u32, Stream>,
    id: StreamId,
) -> Result<&mut Stream, StreamError> {
    match streams.get_mut(&id.0) {
        Some(s) if s.app == App::Held => {
            if s.reset {
                Err(StreamError::Reset)
            } else {
                Ok(s)
            }
        }
        _ => Err(StreamError::Unknown(id.0)),
    }
}

impl Core {
    /// A new connection. `role` is the *connection* role: the dialer
    /// ([`Role::Initiator`]) opens odd stream ids, the listener even ones.
    pub fn new(role: Role, mut cfg: Config, limits: MuxLimits) -> Core {
        cfg.max_window = cfg.max_window.max(INITIAL_WINDOW);
        cfg.max_frame_size = cfg.max_frame_size.max(1);
        cfg.max_stream_send_buffer = cfg.max_stream_send_buffer.max(1);
        Core {
            role,
            cfg,
            limits,
            state: State::Open,
            error: None,
            streams: BTreeMap::new(),
            next_local_id: match role {
                Role::Initiator => 1,
                Role::Responder => 2,
            },
            max_remote_id: 0,
            accept_queue: VecDeque::new(),
            ack_backlog: 0,
            open_blocked: false,
            partial: None,
            go_away_out: None,
            go_away_sent: false,
            local_go_away: false,
            remote_go_away: None,
            pongs: VecDeque::new(),
            rsts: VecDeque::new(),
            control_queue: VecDeque::new(),
            send_queue: VecDeque::new(),
            events: VecDeque::new(),
            closed_event: false,
            started: false,
            ping_queued: false,
            outstanding: None,
            next_ping_at: None,
            ping_counter: 0,
            rtt: None,
            rapid_resets: VecDeque::new(),
            buffered: 0,
            recv_window_total: 0,
            control_blocked_since: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The limits in force.
    pub fn limits(&self) -> &MuxLimits {
        &self.limits
    }

    // ------------------------------------------------------------------
    // Input
    // ------------------------------------------------------------------

    /// Process bytes from the transport. Consumes every complete header and
    /// as much data payload as present (payload bytes go straight into the
    /// stream's receive buffer, bounded by the window granted before the frame
    /// was accepted); an incomplete header stays in `src`.
    ///
    /// On a protocol violation the connection fails: the error is returned
    /// (and again on every later call), `Event::Closed` is emitted, and a
    /// GoAway(protocol error) is queued for [`Core::poll_transmit`].
    ///
    /// Afterwards poll events and transmit.
    ///
    /// While [`Core::input_blocked`], no further frame is read: the bytes
    /// stay in `src` for a later call.
    pub fn handle_input(&mut self, now: Instant, src: &mut BytesMut) -> Result<(), ConnError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.state == State::Closed {
            src.clear();
            return Ok(());
        }
        self.touch(now);
        let r = self.read_frames(now, src);
        if r.is_ok() {
            self.note_control_queue(now);
        }
        r
    }

    fn read_frames(&mut self, now: Instant, src: &mut BytesMut) -> Result<(), ConnError> {
        loop {
            if let Some(mut p) = self.partial {
                if src.is_empty() {
                    return Ok(());
                }
                let n = src.len().min(p.remaining as usize);
                if !p.discard {
                    self.deliver(p.id, &src[..n]);
                }
                src.advance(n);
                // n <= remaining, which is a u32.
                p.remaining -= n as u32;
                if p.remaining == 0 {
                    self.partial = None;
                    if p.fin && !p.discard {
                        self.on_remote_fin(p.id);
                    }
                } else {
                    self.partial = Some(p);
                }
                continue;
            }
            let Some(head) = src.first_chunk::<HEADER_LEN>() else {
                return Ok(());
            };
            if self.control_full() {
                // Back-pressure: read no more frames until what we owe went
                // out (see `input_blocked`).
                return Ok(());
            }
            let res = Header::decode(head).map_err(ConnError::from);
            let res = match res {
                Ok(h) => {
                    src.advance(HEADER_LEN);
                    self.on_frame(now, h)
                }
                Err(e) => Err(e),
            };
            if let Err(e) = res {
                return Err(self.fail(e));
            }
            if let Some(e) = &self.error {
                return Err(e.clone());
            }
        }
    }

    /// The transport reached end-of-file (`error == None`) or failed. The
    /// connection is closed at once; data already buffered in streams stays
    /// readable. This is an error ([`ConnError::TransportClosed`] /
    /// [`ConnError::Io`]) unless we were closing politely or the remote had
    /// sent GoAway: then streams not finished by the remote read as
    /// `ConnectionClosed`.
    pub fn handle_transport_closed(&mut self, error: Option<std::io::Error>) {
        if self.state == State::Closed {
            return;
        }
        let e = match error {
            None => ConnError::TransportClosed,
            Some(e) => ConnError::Io {
                kind: e.kind(),
                message: e.to_string(),
            },
        };
        // After our own polite close, or after the remote's go-away, the
        // transport closing is the expected end, not an error.
        if self.error.is_none() && self.state == State::Open && self.remote_go_away.is_none() {
            tracing::debug!(error = %e, "yamux transport closed");
            self.error = Some(e);
        }
        self.set_closed();
    }

    fn deliver(&mut self, id: u32, bytes: &[u8]) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.reset {
            return;
        }
        let n = bytes.len() as u32;
        if s.app == App::Detached {
            // Nobody reads: return the credit at once.
            s.recv_pending += n;
            if s.recv_pending >= s.recv_window / 2 && !s.update_due && !s.remote_fin {
                s.update_due = true;
                push_control(&mut self.control_queue, id, s);
            }
            return;
        }
        s.recv_buf.extend_from_slice(bytes);
        self.buffered += bytes.len();
        if s.app == App::Held && !s.ev_readable {
            s.ev_readable = true;
            self.events.push_back(Event::Readable(StreamId(id)));
        }
    }

    fn on_frame(&mut self, now: Instant, h: Header) -> Result<(), ConnError> {
        match h.ty {
            FrameType::Data | FrameType::WindowUpdate => self.on_stream_frame(now, h),
            FrameType::Ping => self.on_ping(now, h),
            FrameType::GoAway => {
                if self.remote_go_away.is_none() {
                    tracing::debug!(code = h.length, "yamux remote go-away");
                    self.remote_go_away = Some(h.length);
                    self.events.push_back(Event::GoAway(h.length));
                }
                Ok(())
            }
        }
    }

    fn on_ping(&mut self, now: Instant, h: Header) -> Result<(), ConnError> {
        if h.flags == Flags::SYN {
            if self.state != State::Open {
                return Ok(());
            }
            self.pongs.push_back(h.length);
            Ok(())
        } else if h.flags == Flags::ACK {
            if let Some(p) = self.outstanding
                && p.value == h.length
            {
                if let Some(sent) = p.sent_at {
                    let sample = now.saturating_duration_since(sent);
                    self.rtt = Some(match self.rtt {
                        None => sample,
                        Some(r) => (r * 7 + sample) / 8,
                    });
                }
                self.outstanding = None;
                self.next_ping_at = self.cfg.keepalive_interval.map(|i| now + i);
            }
            Ok(())
        } else {
            Err(ConnError::InvalidFrame(
                "ping needs exactly one of SYN and ACK",
            ))
        }
    }

    fn skip_body(&mut self, h: Header) {
        if h.ty == FrameType::Data && h.length > 0 {
            self.partial = Some(Partial {
                id: h.stream_id,
                remaining: h.length,
                discard: true,
                fin: false,
            });
        }
    }

    fn on_stream_frame(&mut self, now: Instant, h: Header) -> Result<(), ConnError> {
        let id = h.stream_id;
        let f = h.flags;
        if id == 0 {
            return Err(ConnError::InvalidFrame("data or window update on stream 0"));
        }
        if f.contains(Flags::SYN | Flags::ACK) {
            return Err(ConnError::InvalidFrame("SYN and ACK on one frame"));
        }
        if f.contains(Flags::SYN) {
            if self.is_local_id(id) || id <= self.max_remote_id {
                return Err(ConnError::InvalidStreamId(id));
            }
            self.max_remote_id = id;
            if f.contains(Flags::RST) {
                // Opened and reset in one frame: never reaches the backlog.
                self.note_rapid_reset(now)?;
                self.skip_body(h);
                return Ok(());
            }
            if let Some(reason) = self.refuse_inbound() {
                tracing::debug!(stream = id, reason, "yamux refusing inbound stream");
                self.rsts.push_back(id);
                self.skip_body(h);
                return Ok(());
            }
            self.streams.insert(id, Stream::new(false, App::Pending));
            self.recv_window_total += u64::from(INITIAL_WINDOW);
            self.accept_queue.push_back(id);
            self.events.push_back(Event::InboundStream(StreamId(id)));
        } else if !self.streams.contains_key(&id) {
            if self.ever_existed(id) {
                self.skip_body(h);
                return Ok(());
            }
            return Err(ConnError::UnknownStream(id));
        }

        if f.contains(Flags::ACK) {
            self.on_ack(id);
        }
        if f.contains(Flags::RST) {
            self.on_remote_reset(now, id)?;
            self.skip_body(h);
            return Ok(());
        }
        let Some(s) = self.streams.get_mut(&id) else {
            self.skip_body(h);
            return Ok(());
        };
        if h.ty == FrameType::WindowUpdate {
            if !s.reset {
                s.send_window = s
                    .send_window
                    .checked_add(h.length)
                    .ok_or(ConnError::WindowOverflow(id))?;
                if h.length > 0 {
                    self.maybe_writable(id);
                }
            }
            if f.contains(Flags::FIN) {
                self.on_remote_fin(id);
            }
            return Ok(());
        }
        // Data.
        if s.reset {
            // Reset locally; this was in flight.
            self.skip_body(h);
            return Ok(());
        }
        if s.remote_fin {
            if h.length > 0 {
                tracing::debug!(stream = id, "yamux data after FIN: resetting stream");
                self.skip_body(h);
                self.reset_inner(id, true);
            }
            return Ok(());
        }
        if h.length > s.recv_credit {
            return Err(ConnError::WindowExceeded {
                stream: id,
                len: h.length,
                window: s.recv_credit,
            });
        }
        s.recv_credit -= h.length;
        if s.epoch_start.is_none() {
            s.epoch_start = Some(now);
        }
        if h.length == 0 {
            if f.contains(Flags::FIN) {
                self.on_remote_fin(id);
            }
            return Ok(());
        }
        self.partial = Some(Partial {
            id,
            remaining: h.length,
            discard: false,
            fin: f.contains(Flags::FIN),
        });
        Ok(())
    }

    fn refuse_inbound(&self) -> Option<&'static str> {
        if self.state != State::Open {
            Some("connection closing")
        } else if self.local_go_away {
            Some("go-away sent")
        } else if self.streams.len() >= self.limits.max_streams {
            Some("max_streams reached")
        } else if self.accept_queue.len() >= self.limits.max_accept_backlog {
            Some("accept backlog full")
        } else {
            None
        }
    }

    fn on_ack(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id)
            && s.local
            && s.unacked
        {
            s.unacked = false;
            self.release_ack_slot();
        }
    }

    fn release_ack_slot(&mut self) {
        self.ack_backlog -= 1;
        if self.open_blocked {
            self.open_blocked = false;
            self.events.push_back(Event::OpenReady);
        }
    }

    fn on_remote_reset(&mut self, now: Instant, id: u32) -> Result<(), ConnError> {
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if s.reset {
            return Ok(());
        }
        match s.app {
            App::Pending => {
                self.accept_queue.retain(|&q| q != id);
                self.remove(id);
                self.note_rapid_reset(now)?;
            }
            App::Detached => self.remove(id),
            App::Held => {
                self.mark_reset(id);
                self.events.push_back(Event::Reset(StreamId(id)));
            }
        }
        Ok(())
    }

    fn note_rapid_reset(&mut self, now: Instant) -> Result<(), ConnError> {
        let window = self.limits.reset_window;
        while let Some(&t) = self.rapid_resets.front() {
            if now.saturating_duration_since(t) > window {
                self.rapid_resets.pop_front();
            } else {
                break;
            }
        }
        self.rapid_resets.push_back(now);
        if self.rapid_resets.len() > self.limits.max_rapid_resets {
            return Err(ConnError::RapidResetFlood {
                count: self.rapid_resets.len(),
                window,
            });
        }
        Ok(())
    }

    fn on_remote_fin(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.reset || s.remote_fin {
            return;
        }
        s.remote_fin = true;
        if s.app == App::Held && !s.ev_readable {
            s.ev_readable = true;
            self.events.push_back(Event::Readable(StreamId(id)));
        }
        self.maybe_remove(id);
    }

    // ------------------------------------------------------------------
    // Output
    // ------------------------------------------------------------------

    /// Append frames to `dst`, at most `budget` bytes in total (so the driver
    /// can bound its write buffer). Control frames first (go-away, our ping,
    /// ping answers, resets, window updates and ACKs), then data round-robin,
    /// one frame of at most [`Config::max_frame_size`] per stream per turn.
    /// Returns whether anything was appended. Call again while it returns
    /// `true` and there is room; afterwards poll events.
    pub fn poll_transmit(&mut self, now: Instant, dst: &mut BytesMut, budget: usize) -> bool {
        if self.state == State::Closed {
            return false;
        }
        self.touch(now);
        let start = dst.len();
        let mut left = budget;
        // On a polite close the go-away goes last, after every stream's data
        // and FIN: js-libp2p resets all streams when it reads a go-away.
        let polite = matches!(self.state, State::Closing { graceful: true, .. });
        if (!polite || self.send_queue.is_empty()) && !self.send_go_away(dst, &mut left) {
            return false;
        }
        if self.error.is_some() {
            // After a failure only the go-away goes out.
            self.set_closed();
            return dst.len() > start;
        }
        if self.ping_queued && left >= HEADER_LEN {
            if let Some(p) = &mut self.outstanding {
                Header::ping(p.value).encode_into(dst);
                left -= HEADER_LEN;
                p.sent_at = Some(now);
            }
            self.ping_queued = false;
        }
        while left >= HEADER_LEN {
            let Some(v) = self.pongs.pop_front() else {
                break;
            };
            Header::pong(v).encode_into(dst);
            left -= HEADER_LEN;
        }
        while left >= HEADER_LEN {
            let Some(id) = self.rsts.pop_front() else {
                break;
            };
            Header::window_update(id, Flags::RST, 0).encode_into(dst);
            left -= HEADER_LEN;
        }
        self.note_control_queue(now);
        while left >= HEADER_LEN {
            let Some(id) = self.control_queue.pop_front() else {
                break;
            };
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            s.in_control_queue = false;
            if s.reset {
                continue;
            }
            let flags = take_open_flags(s);
            let due = s.update_due;
            let delta = if due { self.window_delta(now, id) } else { 0 };
            if flags.is_empty() && delta == 0 {
                continue;
            }
            Header::window_update(id, flags, delta).encode_into(dst);
            left -= HEADER_LEN;
        }
        while left > HEADER_LEN {
            let Some(id) = self.send_queue.pop_front() else {
                break;
            };
            let max_frame = self.cfg.max_frame_size as usize;
            let cap = self.cfg.max_stream_send_buffer;
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            s.in_send_queue = false;
            if s.reset || s.fin_sent {
                continue;
            }
            let n = s.send_buf.len().min(max_frame).min(left - HEADER_LEN);
            let mut flags = take_open_flags(s);
            if n > 0 {
                // SYN/ACK may ride on data (every implementation reads the
                // flags first, then the payload); FIN never does: js-libp2p
                // applies FIN before the payload and drops it. See
                // docs/muxer-send-rules.md.
                Header::data(id, flags, n as u32).encode_into(dst);
                dst.extend_from_slice(&s.send_buf[..n]);
                s.send_buf.advance(n);
                shrink_if_idle(&mut s.send_buf);
                left -= HEADER_LEN + n;
                flags = Flags::NONE;
            }
            // FIN goes on its own empty window update once every byte is out
            // (as go-yamux and js-libp2p send it), in this turn if it fits.
            let fin = s.fin_requested && s.send_buf.is_empty() && left >= HEADER_LEN;
            if fin {
                flags |= Flags::FIN;
            }
            if !flags.is_empty() {
                Header::window_update(id, flags, 0).encode_into(dst);
                left -= HEADER_LEN;
            } else if n == 0 {
                continue;
            }
            if fin {
                s.fin_sent = true;
            } else if !s.send_buf.is_empty() || s.fin_requested {
                s.in_send_queue = true;
                self.send_queue.push_back(id);
            }
            if s.write_blocked && s.send_buf.len() < cap && s.send_window > 0 {
                s.write_blocked = false;
                if !s.ev_writable {
                    s.ev_writable = true;
                    self.events.push_back(Event::Writable(StreamId(id)));
                }
            }
            if fin {
                self.maybe_remove(id);
            }
        }
        if polite && self.send_queue.is_empty() {
            self.send_go_away(dst, &mut left);
        }
        if let State::Closing { graceful: true, .. } = self.state
            && !self.wants_transmit()
        {
            self.set_closed();
        }
        dst.len() > start
    }

    /// Put the queued go-away (if any) into `dst` if it fits; false if it
    /// did not fit.
    fn send_go_away(&mut self, dst: &mut BytesMut, left: &mut usize) -> bool {
        let Some(code) = self.go_away_out else {
            return true;
        };
        if *left < HEADER_LEN {
            return false;
        }
        Header::go_away(code).encode_into(dst);
        *left -= HEADER_LEN;
        self.go_away_out = None;
        self.go_away_sent = true;
        true
    }

    /// Whether [`Core::poll_transmit`] has something to send.
    pub fn wants_transmit(&self) -> bool {
        self.state != State::Closed
            && (self.go_away_out.is_some()
                || self.error.is_some()
                || self.ping_queued
                || !self.pongs.is_empty()
                || !self.rsts.is_empty()
                || !self.control_queue.is_empty()
                || !self.send_queue.is_empty())
    }

    /// The window delta to send for `id` now, applying auto-tuning.
    fn window_delta(&mut self, now: Instant, id: u32) -> u32 {
        let max_window = self.cfg.max_window;
        let max_total = self.cfg.max_connection_window;
        let rtt = self.rtt;
        let total = self.recv_window_total;
        let Some(s) = self.streams.get_mut(&id) else {
            return 0;
        };
        s.update_due = false;
        if s.remote_fin {
            return 0;
        }
        s.epoch_consumed += u64::from(s.recv_pending);
        let mut grown = 0u64;
        if s.epoch_consumed >= u64::from(s.recv_window) {
            if let (Some(rtt), Some(start), App::Held) = (rtt, s.epoch_start, s.app) {
                let fast = now.saturating_duration_since(start) <= rtt * 4;
                if fast && s.recv_window < max_window {
                    let new = s.recv_window.saturating_mul(2).min(max_window);
                    let grow = new - s.recv_window;
                    if total + u64::from(grow) <= max_total {
                        s.recv_window = new;
                        s.recv_pending += grow;
                        grown = u64::from(grow);
                        tracing::trace!(stream = id, window = new, "yamux window grown");
                    }
                }
            }
            s.epoch_start = Some(now);
            s.epoch_consumed = 0;
        }
        let delta = s.recv_pending;
        s.recv_credit += delta;
        s.recv_pending = 0;
        self.recv_window_total += grown;
        delta
    }

    // ------------------------------------------------------------------
    // Events and timers
    // ------------------------------------------------------------------

    /// The next event, if any. Between two drains the queue holds at most a
    /// few events per live stream (readable/writable are de-duplicated).
    pub fn poll_event(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        match ev {
            Event::Readable(id) => {
                if let Some(s) = self.streams.get_mut(&id.0) {
                    s.ev_readable = false;
                }
            }
            Event::Writable(id) => {
                if let Some(s) = self.streams.get_mut(&id.0) {
                    s.ev_writable = false;
                }
            }
            _ => {}
        }
        Some(ev)
    }

    /// When [`Core::handle_timeout`] should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut add = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        match self.state {
            State::Closed => return None,
            State::Closing { deadline, .. } => {
                if let Some(d) = deadline {
                    add(d);
                }
                return t;
            }
            State::Open => {}
        }
        if let Some(p) = &self.outstanding {
            add(p.queued_at + self.cfg.ping_timeout);
        } else if let Some(n) = self.next_ping_at {
            add(n);
        }
        if let Some(since) = self.control_blocked_since {
            add(since + self.cfg.control_stall_timeout);
        }
        t
    }

    /// Process timers: keep-alive pings, ping timeout, close deadline.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        self.touch(now);
        if let State::Closing {
            deadline: Some(d), ..
        } = self.state
        {
            if now >= d {
                tracing::debug!("yamux close deadline passed");
                self.set_closed();
            }
            return;
        }
        if let Some(since) = self.control_blocked_since
            && now.saturating_duration_since(since) >= self.cfg.control_stall_timeout
        {
            self.fail(ConnError::RemoteNotReading {
                pending: self.pending_control(),
                stalled: self.cfg.control_stall_timeout,
            });
            return;
        }
        if let Some(p) = self.outstanding {
            if now.saturating_duration_since(p.queued_at) >= self.cfg.ping_timeout {
                self.fail(ConnError::PingTimeout(self.cfg.ping_timeout));
            }
        } else if self.next_ping_at.is_some_and(|n| now >= n) {
            self.queue_ping(now);
        }
    }

    fn touch(&mut self, now: Instant) {
        if !self.started {
            self.started = true;
            // RTT probe.
            self.queue_ping(now);
        }
        if let State::Closing {
            graceful,
            deadline: None,
        } = self.state
        {
            self.state = State::Closing {
                graceful,
                deadline: Some(now + self.cfg.close_timeout),
            };
        }
    }

    fn queue_ping(&mut self, now: Instant) {
        self.ping_counter = self.ping_counter.wrapping_add(1);
        self.outstanding = Some(Ping {
            value: self.ping_counter,
            queued_at: now,
            sent_at: None,
        });
        self.ping_queued = true;
        self.next_ping_at = None;
    }

    // ------------------------------------------------------------------
    // Application side
    // ------------------------------------------------------------------

    /// Open an outbound stream. Its SYN goes out with the first frame (data,
    /// or an empty window update if nothing is written first).
    ///
    /// Errors: `Closed` (closing or closed, or we sent go-away), `Failed`
    /// (connection error), `GoAway` (the remote sent go-away),
    /// `LimitReached("max_streams")`, `LimitReached("ack backlog")` (wait for
    /// `Event::OpenReady`), `LimitReached("stream ids exhausted")`.
    pub fn open(&mut self) -> Result<StreamId, MuxError> {
        if let Some(e) = &self.error {
            return Err(e.to_mux_error());
        }
        if self.state != State::Open || self.local_go_away {
            return Err(MuxError::Closed);
        }
        if let Some(code) = self.remote_go_away {
            return Err(MuxError::GoAway(code));
        }
        if self.streams.len() >= self.limits.max_streams {
            return Err(MuxError::LimitReached("max_streams"));
        }
        if self.ack_backlog >= self.limits.max_ack_backlog {
            self.open_blocked = true;
            return Err(MuxError::LimitReached("ack backlog"));
        }
        if self.next_local_id > u64::from(u32::MAX) {
            return Err(MuxError::LimitReached("stream ids exhausted"));
        }
        let id = self.next_local_id as u32;
        self.next_local_id += 2;
        let mut s = Stream::new(true, App::Held);
        s.in_send_queue = true;
        self.streams.insert(id, s);
        self.send_queue.push_back(id);
        self.ack_backlog += 1;
        self.recv_window_total += u64::from(INITIAL_WINDOW);
        Ok(StreamId(id))
    }

    /// Take the next inbound stream from the accept backlog. Its ACK is
    /// queued now (so the remote's ACK backlog follows our acceptance).
    pub fn accept(&mut self) -> Option<StreamId> {
        while let Some(id) = self.accept_queue.pop_front() {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            s.app = App::Held;
            if self.state == State::Open {
                s.ack_pending = true;
                push_control(&mut self.control_queue, id, s);
            }
            return Some(StreamId(id));
        }
        None
    }

    /// Bytes buffered for stream `id` (0 for a stream not held).
    pub fn readable(&self, id: StreamId) -> usize {
        self.streams.get(&id.0).map_or(0, |s| s.recv_buf.len())
    }

    /// Bytes written to `id` that [`Core::poll_transmit`] has not taken yet (0 once the
    /// stream is reset or finished, whose buffered data never goes out).
    pub fn unsent(&self, id: StreamId) -> usize {
        self.streams
            .get(&id.0)
            .filter(|s| !s.reset && !s.fin_sent)
            .map_or(0, |s| s.send_buf.len())
    }

    /// Read buffered data of `id` into `buf`. `Ok(0)` with a non-empty `buf`
    /// is end-of-file (the remote finished and everything was read). Reading
    /// returns window credit; a WindowUpdate is queued once about half the
    /// window was consumed.
    pub fn read(&mut self, id: StreamId, buf: &mut [u8]) -> Result<usize, StreamError> {
        let s = held_stream(&mut self.streams, id)?;
        if buf.is_empty() {
            return Ok(0);
        }
        if !s.recv_buf.is_empty() {
            let n = buf.len().min(s.recv_buf.len());
            buf[..n].copy_from_slice(&s.recv_buf[..n]);
            s.recv_buf.advance(n);
            shrink_if_idle(&mut s.recv_buf);
            self.buffered -= n;
            s.recv_pending += n as u32;
            let open = matches!(
                self.state,
                State::Open | State::Closing { graceful: true, .. }
            );
            if open && !s.remote_fin && !s.update_due && s.recv_pending >= s.recv_window / 2 {
                s.update_due = true;
                push_control(&mut self.control_queue, id.0, s);
            }
            return Ok(n);
        }
        if s.remote_fin {
            return Ok(0);
        }
        self.conn_status()?;
        Err(StreamError::Blocked)
    }

    /// Queue data for `id`: at most its send window and its send-buffer room
    /// ([`Config::max_stream_send_buffer`]). Returns how much was taken, or
    /// `Blocked` if nothing could be (wait for `Event::Writable`).
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, StreamError> {
        self.conn_status()?;
        if self.state != State::Open {
            return Err(StreamError::ConnectionClosed);
        }
        let cap = self.cfg.max_stream_send_buffer;
        let s = held_stream(&mut self.streams, id)?;
        if s.fin_requested {
            return Err(StreamError::WriteClosed);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let room = cap.saturating_sub(s.send_buf.len());
        let n = data.len().min(room).min(s.send_window as usize);
        if n == 0 {
            s.write_blocked = true;
            return Err(StreamError::Blocked);
        }
        s.send_buf.extend_from_slice(&data[..n]);
        s.send_window -= n as u32;
        if !s.in_send_queue {
            s.in_send_queue = true;
            self.send_queue.push_back(id.0);
        }
        Ok(n)
    }

    /// Half-close `id`: FIN goes out after the queued data. Idempotent.
    pub fn finish(&mut self, id: StreamId) -> Result<(), StreamError> {
        let s = held_stream(&mut self.streams, id)?;
        if s.fin_requested {
            return Ok(());
        }
        s.fin_requested = true;
        if !s.in_send_queue {
            s.in_send_queue = true;
            self.send_queue.push_back(id.0);
        }
        Ok(())
    }

    /// Reset `id` both ways: buffers are dropped and the remote gets RST
    /// (unless it never learned of the stream, or both sides had already
    /// finished). Reads and writes then fail with `Reset`.
    pub fn reset(&mut self, id: StreamId) -> Result<(), StreamError> {
        match self.streams.get(&id.0) {
            Some(s) if s.app == App::Held => {}
            _ => return Err(StreamError::Unknown(id.0)),
        }
        self.reset_inner(id.0, false);
        Ok(())
    }

    /// Reset `id` (locally initiated), queueing an RST. `notify`: emit
    /// `Event::Reset` (the stream is reset because of the remote). Never
    /// fails: what the remote makes us owe is bounded by input pausing at
    /// `max_pending_control`, our own resets by the streams we track.
    fn reset_inner(&mut self, id: u32, notify: bool) {
        let Some(s) = self.streams.get(&id) else {
            return;
        };
        if s.reset || s.fully_closed() {
            return;
        }
        let remote_knows = !s.syn_pending;
        let app = s.app;
        self.mark_reset(id);
        if remote_knows && self.state != State::Closed {
            self.rsts.push_back(id);
        }
        match app {
            App::Pending => {
                self.accept_queue.retain(|&q| q != id);
                self.remove(id);
            }
            App::Detached => self.remove(id),
            App::Held => {
                if notify {
                    self.events.push_back(Event::Reset(StreamId(id)));
                }
            }
        }
    }

    fn mark_reset(&mut self, id: u32) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.reset = true;
        self.buffered -= s.recv_buf.len();
        s.recv_buf = BytesMut::new();
        s.send_buf = BytesMut::new();
        s.syn_pending = false;
        s.ack_pending = false;
        if s.unacked {
            s.unacked = false;
            self.release_ack_slot();
        }
    }

    /// The application is done with `id` (a handle was dropped):
    /// - write side finished: queued data and the FIN still go out and the
    ///   stream lingers (input discarded, credit returned) until the remote
    ///   finishes too;
    /// - write side open, but the remote finished and every byte was read:
    ///   the stream is complete, so it is finished (queued data, then FIN)
    ///   as above rather than reset;
    /// - otherwise (the remote may still send, or data was left unread) the
    ///   stream is reset, like a TCP close with unread data.
    ///
    /// Either way the id is no longer usable by the application. Unknown ids
    /// are ignored.
    pub fn detach(&mut self, id: StreamId) {
        let id = id.0;
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.app == App::Detached {
            return;
        }
        let open = self.state == State::Open;
        if open && s.app == App::Held && !s.reset && s.remote_fin && s.recv_buf.is_empty() {
            s.fin_requested = true;
            if !s.fin_sent && !s.in_send_queue {
                s.in_send_queue = true;
                self.send_queue.push_back(id);
            }
        }
        if s.reset || s.fully_closed() || self.state == State::Closed {
            if s.app == App::Pending {
                self.accept_queue.retain(|&q| q != id);
            }
            self.remove(id);
            return;
        }
        if s.app == App::Held && s.fin_requested {
            s.app = App::Detached;
            let n = s.recv_buf.len();
            self.buffered -= n;
            s.recv_buf = BytesMut::new();
            s.recv_pending += n as u32;
            if !s.remote_fin && !s.update_due && s.recv_pending >= s.recv_window / 2 {
                s.update_due = true;
                push_control(&mut self.control_queue, id, s);
            }
            self.maybe_remove(id);
            return;
        }
        self.reset_inner(id, false);
        self.remove(id);
    }

    /// Send GoAway with `code`: the remote may open no more streams (its SYNs
    /// get RST) and we open none (`open` fails with `Closed`); existing
    /// streams carry on.
    pub fn go_away(&mut self, code: u32) {
        if self.local_go_away || self.state != State::Open {
            return;
        }
        self.local_go_away = true;
        self.go_away_out = Some(code);
    }

    /// Close politely: queued stream data and FINs, then GoAway(normal)
    /// (last, as js-libp2p resets every stream when it reads one), then the
    /// connection is closed (within [`Config::close_timeout`]). Writes fail
    /// from now on.
    pub fn close(&mut self) {
        if self.state != State::Open {
            return;
        }
        self.go_away(GO_AWAY_NORMAL);
        self.state = State::Closing {
            graceful: true,
            deadline: None,
        };
    }

    // ------------------------------------------------------------------
    // State and counters
    // ------------------------------------------------------------------

    /// Whether the connection is closed: no more output, no more input.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Whether new streams can be neither opened nor accepted any more
    /// (closing, closed or failed).
    pub fn is_closing(&self) -> bool {
        self.state != State::Open || self.error.is_some()
    }

    /// The error the connection failed with, if any.
    pub fn error(&self) -> Option<&ConnError> {
        self.error.as_ref()
    }

    /// The go-away code the remote sent, if it did.
    pub fn remote_go_away(&self) -> Option<u32> {
        self.remote_go_away
    }

    /// Why [`Core::accept`] will yield nothing more, if it won't: the
    /// connection is closing or failed, or the remote sent go-away. `None`
    /// while inbound streams may still arrive.
    pub fn accept_error(&self) -> Option<MuxError> {
        if let Some(e) = &self.error {
            return Some(e.to_mux_error());
        }
        if self.state != State::Open {
            return Some(MuxError::Closed);
        }
        self.remote_go_away.map(MuxError::GoAway)
    }

    fn conn_status(&self) -> Result<(), StreamError> {
        if let Some(e) = &self.error {
            return Err(StreamError::Connection(e.clone()));
        }
        if self.state == State::Closed {
            return Err(StreamError::ConnectionClosed);
        }
        Ok(())
    }

    /// The smoothed round-trip time, once a ping was answered.
    pub fn rtt(&self) -> Option<Duration> {
        self.rtt
    }

    /// Streams tracked (both directions, including those in the accept
    /// backlog and detached ones still flushing). Counts against
    /// `MuxLimits::max_streams`.
    pub fn num_streams(&self) -> usize {
        self.streams.len()
    }

    /// Bytes received and not yet read, over all streams.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered
    }

    /// Inbound streams waiting for [`Core::accept`].
    pub fn pending_accepts(&self) -> usize {
        self.accept_queue.len()
    }

    /// Our streams the remote has not acknowledged yet.
    pub fn ack_backlog(&self) -> usize {
        self.ack_backlog
    }

    /// Ping answers and resets waiting to be sent.
    pub fn pending_control(&self) -> usize {
        self.pongs.len() + self.rsts.len()
    }

    /// Whether input is paused: the control frames we owe the remote (ping
    /// answers, resets) reached [`Config::max_pending_control`], so
    /// [`Core::handle_input`] reads no further frame (what it was given stays
    /// in `src`) until [`Core::poll_transmit`] sends some. A driver stops
    /// reading the transport meanwhile, so a remote that floods pings or
    /// stream openings is slowed by TCP flow control instead of growing our
    /// queue. If the remote reads nothing for
    /// [`Config::control_stall_timeout`], the connection fails with
    /// [`ConnError::RemoteNotReading`].
    pub fn input_blocked(&self) -> bool {
        self.state != State::Closed && self.error.is_none() && self.control_full()
    }

    /// Sum of the receive windows of all streams.
    pub fn recv_window_total(&self) -> u64 {
        self.recv_window_total
    }

    /// The current receive window size of `id`.
    pub fn recv_window(&self, id: StreamId) -> Option<u32> {
        self.streams.get(&id.0).map(|s| s.recv_window)
    }

    /// Bytes `id` may still send (its send window).
    pub fn send_window(&self, id: StreamId) -> Option<u32> {
        self.streams.get(&id.0).map(|s| s.send_window)
    }

    /// Bytes received on `id` and not yet read.
    pub fn stream_buffered(&self, id: StreamId) -> Option<usize> {
        self.streams.get(&id.0).map(|s| s.recv_buf.len())
    }

    /// Bytes written to `id` and not yet transmitted.
    pub fn stream_send_buffered(&self, id: StreamId) -> Option<usize> {
        self.streams.get(&id.0).map(|s| s.send_buf.len())
    }

    /// Check internal invariants, panicking if one is broken. A test and fuzz
    /// aid; O(streams).
    pub fn check_invariants(&self) {
        let mut buffered = 0;
        let mut windows = 0u64;
        let mut unacked = 0;
        for (id, s) in &self.streams {
            buffered += s.recv_buf.len();
            windows += u64::from(s.recv_window);
            assert!(
                s.recv_window <= self.cfg.max_window,
                "stream {id}: window above max"
            );
            assert!(
                s.recv_buf.len() <= s.recv_window as usize,
                "stream {id}: buffered beyond window"
            );
            // (After the connection ended, a frame cut off mid-payload leaves
            // its deducted credit behind; nothing can arrive any more.)
            if !s.reset
                && s.app != App::Detached
                && self.state != State::Closed
                && self.error.is_none()
            {
                // Bytes of a data frame still arriving were already deducted.
                let in_flight = match self.partial {
                    Some(p) if p.id == *id && !p.discard => u64::from(p.remaining),
                    _ => 0,
                };
                let sum = u64::from(s.recv_credit)
                    + s.recv_buf.len() as u64
                    + u64::from(s.recv_pending)
                    + in_flight;
                assert_eq!(
                    sum,
                    u64::from(s.recv_window),
                    "stream {id}: credit+buffered+pending+in-flight != window"
                );
            }
            assert!(
                s.send_buf.len() <= self.cfg.max_stream_send_buffer,
                "stream {id}: send buffer over cap"
            );
            if s.unacked {
                unacked += 1;
            }
        }
        assert_eq!(buffered, self.buffered, "buffered total");
        assert_eq!(windows, self.recv_window_total, "window total");
        assert_eq!(unacked, self.ack_backlog, "ack backlog");
        assert!(self.streams.len() <= self.limits.max_streams, "stream cap");
        assert!(
            self.accept_queue.len() <= self.limits.max_accept_backlog,
            "accept backlog"
        );
        assert!(
            self.ack_backlog <= self.limits.max_ack_backlog,
            "ack backlog cap"
        );
        // What the remote made us owe stops at the cap (input blocks); our
        // own resets add at most one per stream.
        assert!(
            self.pending_control() <= self.cfg.max_pending_control + self.limits.max_streams,
            "control queue"
        );
        assert!(
            self.rapid_resets.len() <= self.limits.max_rapid_resets + 1,
            "rapid resets"
        );
    }

    // ------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------

    fn is_local_id(&self, id: u32) -> bool {
        let odd = id % 2 == 1;
        match self.role {
            Role::Initiator => odd,
            Role::Responder => !odd,
        }
    }

    fn ever_existed(&self, id: u32) -> bool {
        if self.is_local_id(id) {
            u64::from(id) < self.next_local_id
        } else {
            id <= self.max_remote_id
        }
    }

    /// Whether the control frames we owe the remote reached
    /// [`Config::max_pending_control`].
    fn control_full(&self) -> bool {
        self.pending_control() >= self.cfg.max_pending_control
    }

    /// Start (or end) the stall clock of a full control queue.
    fn note_control_queue(&mut self, now: Instant) {
        if self.control_full() {
            self.control_blocked_since.get_or_insert(now);
        } else {
            self.control_blocked_since = None;
        }
    }

    fn maybe_writable(&mut self, id: u32) {
        let cap = self.cfg.max_stream_send_buffer;
        if let Some(s) = self.streams.get_mut(&id)
            && s.write_blocked
            && s.send_window > 0
            && s.send_buf.len() < cap
        {
            s.write_blocked = false;
            if !s.ev_writable {
                s.ev_writable = true;
                self.events.push_back(Event::Writable(StreamId(id)));
            }
        }
    }

    fn maybe_remove(&mut self, id: u32) {
        if let Some(s) = self.streams.get(&id)
            && s.app == App::Detached
            && (s.reset || s.fully_closed())
        {
            self.remove(id);
        }
    }

    fn remove(&mut self, id: u32) {
        if let Some(s) = self.streams.remove(&id) {
            self.buffered -= s.recv_buf.len();
            self.recv_window_total -= u64::from(s.recv_window);
            if s.unacked {
                self.release_ack_slot();
            }
        }
    }

    /// Fail the connection with `e` (first error wins) and return the error
    /// in force.
    fn fail(&mut self, e: ConnError) -> ConnError {
        if let Some(old) = &self.error {
            return old.clone();
        }
        tracing::debug!(error = %e, blame = %e.blame(), "yamux connection failed");
        self.error = Some(e.clone());
        self.partial = None;
        self.pongs.clear();
        self.rsts.clear();
        self.control_queue.clear();
        self.send_queue.clear();
        for s in self.streams.values_mut() {
            s.send_buf = BytesMut::new();
        }
        if !self.closed_event {
            self.closed_event = true;
            self.events.push_back(Event::Closed);
        }
        if e.blame() != Blame::Local && !self.go_away_sent {
            self.go_away_out = Some(GO_AWAY_PROTOCOL_ERROR);
            let deadline = match self.state {
                State::Closing { deadline, .. } => deadline,
                _ => None,
            };
            self.state = State::Closing {
                graceful: false,
                deadline,
            };
        } else {
            self.set_closed();
        }
        e
    }

    fn set_closed(&mut self) {
        self.state = State::Closed;
        self.partial = None;
        self.go_away_out = None;
        self.ping_queued = false;
        self.outstanding = None;
        self.next_ping_at = None;
        self.pongs.clear();
        self.rsts.clear();
        self.control_queue.clear();
        self.send_queue.clear();
        for s in self.streams.values_mut() {
            s.send_buf = BytesMut::new();
        }
        let detached: Vec<u32> = self
            .streams
            .iter()
            .filter(|(_, s)| s.app == App::Detached)
            .map(|(&id, _)| id)
            .collect();
        for id in detached {
            self.remove(id);
        }
        if !self.closed_event {
            self.closed_event = true;
            self.events.push_back(Event::Closed);
        }
    }
}

fn take_open_flags(s: &mut Stream) -> Flags {
    let mut f = Flags::NONE;
    if s.syn_pending {
        s.syn_pending = false;
        f |= Flags::SYN;
    }
    if s.ack_pending {
        s.ack_pending = false;
        f |= Flags::ACK;
    }
    f
}

fn push_control(queue: &mut VecDeque<u32>, id: u32, s: &mut Stream) {
    if !s.in_control_queue {
        s.in_control_queue = true;
        queue.push_back(id);
    }
}

/// Capacity an emptied stream buffer keeps; a larger one (left by a burst) is released, so an
/// idle stream does not hold its peak.
const KEEP_CAPACITY: usize = 64 * 1024;

fn shrink_if_idle(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > KEEP_CAPACITY {
        *buf = BytesMut::new();
    }
}
