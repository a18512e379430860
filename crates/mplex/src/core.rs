//! The sans-IO mplex connection: bytes and `now` in; bytes, events and the
//! next timeout out. No tokio, no clock reads, no randomness: given the same
//! calls it does the same thing.
//!
//! # Driving it
//! - [`Core::handle_input`] with bytes from the transport (it consumes whole
//!   frame prefixes and as much body as present; a partial prefix, at most
//!   18 bytes, stays in `src`).
//! - [`Core::poll_transmit`] to get bytes for the transport, at most `budget`.
//! - [`Core::poll_event`] until `None` after each of the calls above and after
//!   application calls, to learn which streams to wake.
//! - [`Core::handle_timeout`] when the instant from [`Core::poll_timeout`] has
//!   passed (the close deadline and the read-block deadline; mplex has no
//!   keep-alive).
//! - While [`Core::is_read_blocked`], stop reading the transport (keep the
//!   unconsumed bytes in `src`); call [`Core::handle_input`] again with them
//!   once it turns false.
//!
//! # Streams and flags
//! A stream is identified by its number *and* by who opened it
//! ([`StreamId`]): both sides number their streams from 0, independently.
//! On receipt, `NewStream` and the `*Initiator` flags address a stream the
//! remote opened; the `*Receiver` flags one we opened. We send `*Initiator`
//! flags on our streams and `*Receiver` flags on the remote's.
//!
//! # No flow control: block briefly, then reset
//! mplex cannot tell a sender to slow down. Every data frame is checked, from
//! its length prefix and before its body is buffered, against
//! [`Config::max_buffer_per_stream`] and [`Config::max_buffer_per_connection`].
//! A frame that does not fit **blocks input** (go-mplex's behaviour): the core
//! stops consuming at that frame, leaving its prefix and body in `src`, and
//! [`Core::is_read_blocked`] turns true. The driver then stops reading the
//! transport (TCP flow control pushes back on the sender) but keeps writing
//! and serving local operations. As soon as the application reads enough of
//! the stream (or of others, for the connection cap) the frame fits, and the
//! next [`Core::handle_input`] consumes it. If that has not happened within
//! [`Config::max_block`] ([`Core::poll_timeout`] reports the deadline,
//! [`Core::handle_timeout`] acts on it), the stream is reset: the frame is
//! discarded, the remote gets a reset, and the local reader reads every byte
//! buffered before and then
//! `StreamError::Reset(ResetReason::BufferOverflow | ConnectionBufferFull)`;
//! input resumes. If the application resets or drops the blocked stream, the
//! frame is discarded and input resumes at once. A frame that could never fit
//! (longer than a cap), or any overflow with `max_block` zero, resets at once.
//!
//! While blocked, **no stream makes progress on input**: mplex multiplexes
//! one ordered byte stream, so the frames behind the blocked one wait too.
//! That is inherent to mplex (yamux has per-stream windows) and bounded by
//! `max_block`.
//!
//! Data after the remote's close resets just that stream at once
//! (`ResetReason::DataAfterClose`). A reset by the remote keeps what was
//! buffered readable (rust-libp2p resets a stream dropped without `close`,
//! often right after writing its last bytes); only a local reset drops it.
//!
//! # Unknown stream ids
//! Frames (data, close, reset) for a stream that is not tracked are ignored
//! and their bodies discarded as they stream in, with one exception: a
//! `*Receiver` frame for an id *we* never allocated (at or above our next id)
//! is [`ConnError::UnknownStream`] — typically a peer with inverted flags. We
//! cannot tell a remote id that never existed from one that was closed, reset
//! or refused long ago (the spec does not make ids monotonic, and remembering
//! every id is unbounded), so those are ignored, as go-mplex and rust-libp2p
//! do. We never answer an unknown id with a reset: that would let a peer make
//! us owe one frame per frame it sends. `NewStream` for an id the remote has
//! open is [`ConnError::DuplicateStream`]; for one it closed before, it opens
//! a new stream (the spec leaves reuse undefined).
//!
//! # Sending
//! Resets go first, then streams round-robin: per turn one stream sends its
//! `NewStream` (if not sent yet), one data frame of at most
//! [`Config::max_send_frame`] bytes, and its close once its data is out.
//!
//! # Closing
//! [`Core::close`] flushes queued stream data and closes, within
//! [`Config::close_timeout`]. A peer-caused error closes at once: mplex has no
//! go-away, the driver shuts the transport down.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::time::Instant;

use bytes::{Buf, BytesMut};
use plexus_core::{MuxError, MuxLimits};

use crate::config::Config;
use crate::error::{ConnError, ResetReason, StreamError};
use crate::frame::{Flag, Header, Kind, MAX_FRAME_SIZE, MAX_STREAM_ID, varint_len};

/// An mplex stream: its number and whether we opened it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId {
    id: u64,
    local: bool,
}

impl StreamId {
    /// The stream numbered `id`, opened by us (`local`) or by the remote.
    pub const fn new(id: u64, local: bool) -> StreamId {
        StreamId { id, local }
    }

    /// The number on the wire.
    pub const fn id(self) -> u64 {
        self.id
    }

    /// Whether we opened it (we send `*Initiator` flags on it).
    pub const fn is_local(self) -> bool {
        self.local
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = if self.local { "ours" } else { "theirs" };
        write!(f, "{}/{side}", self.id)
    }
}

/// Something the application (or driver) should react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A new inbound stream waits in the accept backlog ([`Core::accept`]).
    InboundStream(StreamId),
    /// The stream has data, reached end-of-file, or failed: read it.
    Readable(StreamId),
    /// The stream can take more data (send buffer freed).
    Writable(StreamId),
    /// The stream was reset by the remote, or by us because of the remote
    /// (buffer overflow, data after close). Reading says why.
    Reset(StreamId),
    /// The connection can do no more work: it failed (see [`Core::error`]) or
    /// finished closing. Emitted once.
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// Flushing queued stream data before closing; `deadline` is set at the
    /// first call with a `now`.
    Closing {
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
    /// the close still go out; input is discarded.
    Detached,
}

#[derive(Debug)]
struct Stream {
    app: App,
    // send side
    send_buf: BytesMut,
    /// Ours, and our NewStream is not out yet.
    open_pending: bool,
    fin_requested: bool,
    fin_sent: bool,
    write_blocked: bool,
    // receive side
    recv_buf: BytesMut,
    remote_fin: bool,
    reset: Option<ResetReason>,
    // queue membership and event de-duplication
    in_send_queue: bool,
    ev_readable: bool,
    ev_writable: bool,
}

impl Stream {
    fn new(app: App, local: bool) -> Stream {
        Stream {
            app,
            send_buf: BytesMut::new(),
            open_pending: local,
            fin_requested: false,
            fin_sent: false,
            write_blocked: false,
            recv_buf: BytesMut::new(),
            remote_fin: false,
            reset: None,
            in_send_queue: local,
            ev_readable: false,
            ev_writable: false,
        }
    }

    fn fully_closed(&self) -> bool {
        self.fin_sent && self.remote_fin
    }
}

/// The body of a frame still arriving.
#[derive(Debug, Clone, Copy)]
struct Partial {
    id: StreamId,
    remaining: u32,
    /// Not stream data we keep (a stream name, an ignored or refused stream,
    /// or a stream that stopped taking data while this body was arriving:
    /// removed, detached or reset): drop the bytes. Set by
    /// `Core::discard_partial` whenever a stream stops taking data, so a
    /// kept body always belongs to a tracked stream that takes it.
    discard: bool,
}

/// Input stopped at a data frame that does not fit its stream's (or the
/// connection's) receive buffer yet. The frame is still in `src`.
#[derive(Debug, Clone, Copy)]
struct Blocked {
    id: StreamId,
    len: usize,
    since: Instant,
}

/// The sans-IO mplex connection state machine. See the module docs.
#[derive(Debug)]
pub struct Core {
    cfg: Config,
    limits: MuxLimits,
    state: State,
    error: Option<ConnError>,
    streams: BTreeMap<StreamId, Stream>,
    next_local_id: u64,
    accept_queue: VecDeque<StreamId>,
    partial: Option<Partial>,
    rsts: VecDeque<StreamId>,
    send_queue: VecDeque<StreamId>,
    events: VecDeque<Event>,
    closed_event: bool,
    rapid_resets: VecDeque<Instant>,
    buffered: usize,
    blocked: Option<Blocked>,
    /// Since when the control queue has been full (input paused; see
    /// [`Core::input_blocked`]).
    control_blocked_since: Option<Instant>,
}

/// The stream `id` as the application holds it.
fn held_stream(
    streams: &mut BTreeMap<StreamId, Stream>,
    id: StreamId,
) -> Result<&mut Stream, StreamError> {
    match streams.get_mut(&id) {
        Some(s) if s.app == App::Held => Ok(s),
        _ => Err(StreamError::Unknown(id)),
    }
}

impl Core {
    /// A new connection. mplex is symmetric: both sides number their own
    /// streams from 0, so the connection role does not matter here.
    pub fn new(mut cfg: Config, limits: MuxLimits) -> Core {
        cfg.max_send_frame = cfg.max_send_frame.clamp(1, MAX_FRAME_SIZE);
        cfg.max_stream_send_buffer = cfg.max_stream_send_buffer.max(1);
        Core {
            cfg,
            limits,
            state: State::Open,
            error: None,
            streams: BTreeMap::new(),
            next_local_id: 0,
            accept_queue: VecDeque::new(),
            partial: None,
            rsts: VecDeque::new(),
            send_queue: VecDeque::new(),
            events: VecDeque::new(),
            closed_event: false,
            rapid_resets: VecDeque::new(),
            buffered: 0,
            blocked: None,
            control_blocked_since: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The limits in force (`max_ack_backlog` is unused: mplex has no
    /// acknowledgements).
    pub fn limits(&self) -> &MuxLimits {
        &self.limits
    }

    // ------------------------------------------------------------------
    // Input
    // ------------------------------------------------------------------

    /// Process bytes from the transport. Consumes every complete frame prefix
    /// and as much body as present (data goes straight into the stream's
    /// receive buffer, whose room was checked from the prefix); a partial
    /// prefix stays in `src`. A data frame that does not fit its stream's
    /// buffer yet stops consumption at its prefix ([`Core::is_read_blocked`]):
    /// it and everything after it stay in `src` until the application reads,
    /// or [`Config::max_block`] passes (see the module docs).
    ///
    /// On a protocol violation the connection fails: the error is returned
    /// (and again on every later call), `Event::Closed` is emitted and the
    /// core is closed (the driver shuts the transport down).
    ///
    /// Afterwards poll events and transmit.
    pub fn handle_input(&mut self, now: Instant, src: &mut BytesMut) -> Result<(), ConnError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.state == State::Closed {
            src.clear();
            return Ok(());
        }
        self.touch(now);
        if self.is_read_blocked() {
            return Ok(());
        }
        self.blocked = None;
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
                // n <= remaining, a u32.
                p.remaining -= n as u32;
                self.partial = (p.remaining > 0).then_some(p);
                continue;
            }
            if self.control_full() {
                // Back-pressure: read no more frames until what we owe went
                // out (see `input_blocked`).
                return Ok(());
            }
            let (h, used) = match Header::decode(src, self.cfg.max_frame_size) {
                Ok(Some(x)) => x,
                Ok(None) => return Ok(()),
                Err(e) => return Err(self.fail(e.into())),
            };
            match self.on_frame(now, h) {
                Ok(true) => src.advance(used),
                // Blocked: the frame stays in `src`.
                Ok(false) => return Ok(()),
                Err(e) => return Err(self.fail(e)),
            }
        }
    }

    /// The transport reached end-of-file (`error == None`) or failed. The
    /// connection is closed at once; data already buffered in streams stays
    /// readable. Unless we were closing, this is recorded as the connection's
    /// error ([`ConnError::TransportClosed`] / [`ConnError::Io`], both
    /// `Local`): mplex has no goodbye, so streams the remote had not closed
    /// read as failed, never as a clean end.
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
        if self.error.is_none() && self.state == State::Open {
            tracing::debug!(error = %e, "mplex transport closed");
            self.error = Some(e);
        }
        self.set_closed();
    }

    fn deliver(&mut self, id: StreamId, bytes: &[u8]) {
        // A kept body's stream is tracked and takes data (`discard_partial`);
        // the checks below are a second line of defence.
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.reset.is_some() || s.app == App::Detached {
            return;
        }
        s.recv_buf.extend_from_slice(bytes);
        self.buffered += bytes.len();
        if s.app == App::Held && !s.ev_readable {
            s.ev_readable = true;
            self.events.push_back(Event::Readable(id));
        }
    }

    /// `id` takes no more data (it is being removed, detached or reset): the
    /// rest of a body arriving for it is dropped, not delivered.
    fn discard_partial(&mut self, id: StreamId) {
        if let Some(p) = &mut self.partial
            && p.id == id
        {
            p.discard = true;
        }
    }

    /// Drop the body of the frame just decoded.
    fn skip_body(&mut self, id: StreamId, len: u32) {
        if len > 0 {
            self.partial = Some(Partial {
                id,
                remaining: len,
                discard: true,
            });
        }
    }

    /// Act on a decoded prefix. `Ok(false)`: input blocks at this frame (it
    /// was not consumed).
    fn on_frame(&mut self, now: Instant, h: Header) -> Result<bool, ConnError> {
        // Frames from a stream's opener address the remote's streams; the
        // `*Receiver` ones address ours.
        let id = StreamId::new(h.stream_id, !h.flag.from_opener());
        tracing::trace!(stream = %id, flag = ?h.flag, len = h.len, "mplex frame");
        let kind = h.flag.kind();
        if kind == Kind::NewStream {
            return self.on_new_stream(id, h.len).map(|()| true);
        }
        if !self.streams.contains_key(&id) {
            if id.local && id.id >= self.next_local_id {
                return Err(ConnError::UnknownStream(id.id));
            }
            self.skip_body(id, h.len);
            return Ok(true);
        }
        match kind {
            Kind::Message => self.on_message(now, id, h.len),
            Kind::Close => {
                self.skip_body(id, h.len);
                self.on_remote_fin(id);
                Ok(true)
            }
            Kind::Reset => {
                self.skip_body(id, h.len);
                self.on_remote_reset(now, id).map(|()| true)
            }
            Kind::NewStream => unreachable!("handled above"),
        }
    }

    fn on_new_stream(&mut self, id: StreamId, len: u32) -> Result<(), ConnError> {
        if self.streams.contains_key(&id) {
            return Err(ConnError::DuplicateStream(id.id));
        }
        // The body is the stream's name: debugging only, never kept.
        self.skip_body(id, len);
        if let Some(reason) = self.refuse_inbound() {
            tracing::debug!(stream = %id, reason, "mplex refusing inbound stream");
            self.rsts.push_back(id);
            return Ok(());
        }
        self.streams.insert(id, Stream::new(App::Pending, false));
        self.accept_queue.push_back(id);
        self.events.push_back(Event::InboundStream(id));
        Ok(())
    }

    /// A data frame's prefix. `Ok(false)`: it does not fit yet and input
    /// blocks at it.
    fn on_message(&mut self, now: Instant, id: StreamId, len: u32) -> Result<bool, ConnError> {
        let per_stream = self.cfg.max_buffer_per_stream;
        let per_conn = self.cfg.max_buffer_per_connection;
        let Some(s) = self.streams.get(&id) else {
            self.skip_body(id, len);
            return Ok(true);
        };
        if s.reset.is_some() || s.app == App::Detached || len == 0 {
            self.skip_body(id, len);
            return Ok(true);
        }
        let n = len as usize;
        if s.remote_fin {
            let reason = ResetReason::DataAfterClose;
            tracing::debug!(stream = %id, %reason, "mplex resetting stream");
            self.skip_body(id, len);
            self.reset_inner(id, reason, true);
            return Ok(true);
        }
        if let Some(reason) = self.overflow(id, n) {
            // Wait for the reader, unless it could never fit or waiting is
            // off.
            let never = n > per_stream || n > per_conn;
            if !never && !self.cfg.max_block.is_zero() {
                tracing::debug!(stream = %id, len = n, %reason, "mplex input blocked on a slow reader");
                self.blocked = Some(Blocked {
                    id,
                    len: n,
                    since: now,
                });
                return Ok(false);
            }
            tracing::debug!(stream = %id, %reason, "mplex resetting stream");
            self.skip_body(id, len);
            self.reset_inner(id, reason, true);
            return Ok(true);
        }
        self.partial = Some(Partial {
            id,
            remaining: len,
            discard: false,
        });
        Ok(true)
    }

    /// Why `n` more bytes for `id` do not fit now, if they don't.
    fn overflow(&self, id: StreamId, n: usize) -> Option<ResetReason> {
        let per_stream = self.cfg.max_buffer_per_stream;
        let per_conn = self.cfg.max_buffer_per_connection;
        let held = self.streams.get(&id).map_or(0, |s| s.recv_buf.len());
        if held + n > per_stream {
            Some(ResetReason::BufferOverflow { limit: per_stream })
        } else if self.buffered + n > per_conn {
            Some(ResetReason::ConnectionBufferFull { limit: per_conn })
        } else {
            None
        }
    }

    /// Whether input is stopped at a data frame that does not fit its
    /// stream's (or the connection's) receive buffer yet. While true, the
    /// driver does not read the transport; [`Core::handle_input`] consumes
    /// nothing. It turns false when the application reads enough, resets or
    /// drops the stream, or at the deadline ([`Config::max_block`],
    /// [`Core::handle_timeout`]); then call `handle_input` again with the
    /// bytes left in `src`.
    pub fn is_read_blocked(&self) -> bool {
        let Some(b) = self.blocked else {
            return false;
        };
        if self.state == State::Closed {
            return false;
        }
        match self.streams.get(&b.id) {
            // The frame will be discarded.
            None => false,
            Some(s) if s.reset.is_some() || s.app == App::Detached => false,
            Some(_) => self.overflow(b.id, b.len).is_some(),
        }
    }

    /// The stream input is blocked on and since when, if it is
    /// ([`Core::is_read_blocked`]).
    pub fn read_blocked_on(&self) -> Option<(StreamId, Instant)> {
        if !self.is_read_blocked() {
            return None;
        }
        self.blocked.map(|b| (b.id, b.since))
    }

    fn refuse_inbound(&self) -> Option<&'static str> {
        if self.state != State::Open {
            Some("connection closing")
        } else if self.streams.len() >= self.limits.max_streams {
            Some("max_streams reached")
        } else if self.accept_queue.len() >= self.limits.max_accept_backlog {
            Some("accept backlog full")
        } else {
            None
        }
    }

    fn on_remote_reset(&mut self, now: Instant, id: StreamId) -> Result<(), ConnError> {
        let Some(s) = self.streams.get(&id) else {
            return Ok(());
        };
        if s.reset.is_some() {
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
                self.mark_reset(id, ResetReason::Remote);
                self.events.push_back(Event::Reset(id));
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

    fn on_remote_fin(&mut self, id: StreamId) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.reset.is_some() || s.remote_fin {
            return;
        }
        s.remote_fin = true;
        if s.app == App::Held && !s.ev_readable {
            s.ev_readable = true;
            self.events.push_back(Event::Readable(id));
        }
        self.maybe_remove(id);
    }

    // ------------------------------------------------------------------
    // Output
    // ------------------------------------------------------------------

    /// Append frames to `dst`, at most `budget` bytes in total (so the driver
    /// can bound its write buffer). Resets first, then streams round-robin:
    /// per turn a stream sends its `NewStream` if due, one data frame of at
    /// most [`Config::max_send_frame`] bytes, and its close once its data is
    /// out. Returns whether anything was appended. Call again while it
    /// returns `true` and there is room; afterwards poll events.
    pub fn poll_transmit(&mut self, now: Instant, dst: &mut BytesMut, budget: usize) -> bool {
        if self.state == State::Closed {
            return false;
        }
        self.touch(now);
        let start = dst.len();
        let mut left = budget;
        while let Some(&id) = self.rsts.front() {
            let h = Header::new(id.id, Flag::new(Kind::Reset, id.local), 0);
            let n = h.encoded_len();
            if n > left {
                break;
            }
            h.encode_into(dst);
            left -= n;
            self.rsts.pop_front();
        }
        self.note_control_queue(now);
        let max_frame = self.cfg.max_send_frame as usize;
        let cap = self.cfg.max_stream_send_buffer;
        while let Some(&id) = self.send_queue.front() {
            let Some(s) = self.streams.get_mut(&id) else {
                self.send_queue.pop_front();
                continue;
            };
            let idle = !s.open_pending && s.send_buf.is_empty() && !s.fin_requested;
            if s.reset.is_some() || s.fin_sent || idle {
                s.in_send_queue = false;
                self.send_queue.pop_front();
                continue;
            }
            let before = left;
            if s.open_pending {
                let h = Header::new(id.id, Flag::NewStream, 0);
                let n = h.encoded_len();
                if n > left {
                    break;
                }
                h.encode_into(dst);
                left -= n;
                s.open_pending = false;
            }
            if !s.send_buf.is_empty() {
                let flag = Flag::new(Kind::Message, id.local);
                // The header varint, without the length varint (1 byte for 0).
                let head = Header::new(id.id, flag, 0).encoded_len() - 1;
                let room = left.saturating_sub(head);
                let want = s.send_buf.len().min(max_frame).min(room);
                // The length varint of `want` is the longest one needed.
                let n = want.min(room.saturating_sub(varint_len(want as u64)));
                if n > 0 {
                    let h = Header::new(id.id, flag, n as u32);
                    h.encode_into(dst);
                    dst.extend_from_slice(&s.send_buf[..n]);
                    s.send_buf.advance(n);
                    shrink_if_idle(&mut s.send_buf);
                    left -= h.encoded_len() + n;
                }
            }
            if s.send_buf.is_empty() && s.fin_requested {
                let h = Header::new(id.id, Flag::new(Kind::Close, id.local), 0);
                let n = h.encoded_len();
                if n <= left {
                    h.encode_into(dst);
                    left -= n;
                    s.fin_sent = true;
                }
            }
            if left == before {
                // Nothing of this stream fits: keep it first in line.
                break;
            }
            self.send_queue.pop_front();
            s.in_send_queue = false;
            if !s.fin_sent && (!s.send_buf.is_empty() || s.fin_requested) {
                s.in_send_queue = true;
                self.send_queue.push_back(id);
            }
            if s.write_blocked && s.send_buf.len() < cap {
                s.write_blocked = false;
                if !s.ev_writable {
                    s.ev_writable = true;
                    self.events.push_back(Event::Writable(id));
                }
            }
            if s.fin_sent {
                self.maybe_remove(id);
            }
        }
        if let State::Closing { .. } = self.state
            && !self.wants_transmit()
        {
            self.set_closed();
        }
        dst.len() > start
    }

    /// Whether [`Core::poll_transmit`] has something to send.
    pub fn wants_transmit(&self) -> bool {
        self.state != State::Closed && (!self.rsts.is_empty() || !self.send_queue.is_empty())
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
                if let Some(s) = self.streams.get_mut(&id) {
                    s.ev_readable = false;
                }
            }
            Event::Writable(id) => {
                if let Some(s) = self.streams.get_mut(&id) {
                    s.ev_writable = false;
                }
            }
            _ => {}
        }
        Some(ev)
    }

    /// When [`Core::handle_timeout`] should next be called: the close
    /// deadline while closing, the read-block deadline (blocked since +
    /// [`Config::max_block`]) while [`Core::is_read_blocked`], and the stall
    /// deadline (paused since + [`Config::control_stall_timeout`]) while the
    /// control queue is full. mplex has no keep-alive.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let close = match self.state {
            State::Closing { deadline } => deadline,
            _ => None,
        };
        let block = self
            .read_blocked_on()
            .map(|(_, since)| since + self.cfg.max_block);
        let stall = self
            .control_blocked_since
            .map(|since| since + self.cfg.control_stall_timeout);
        [close, block, stall].into_iter().flatten().min()
    }

    /// Process timers: the close deadline, and the read-block deadline (the
    /// blocked stream is reset for `BufferOverflow` or
    /// `ConnectionBufferFull`, its waiting frame will be discarded, and input
    /// resumes). Spurious calls are harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        self.touch(now);
        if let State::Closing { deadline: Some(d) } = self.state
            && now >= d
        {
            tracing::debug!("mplex close deadline passed");
            self.set_closed();
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
        if let Some((id, since)) = self.read_blocked_on()
            && now >= since + self.cfg.max_block
        {
            let len = self.blocked.map_or(0, |b| b.len);
            self.blocked = None;
            if let Some(reason) = self.overflow(id, len) {
                tracing::debug!(stream = %id, %reason, "mplex reader too slow, resetting stream");
                self.reset_inner(id, reason, true);
            }
        }
    }

    fn touch(&mut self, now: Instant) {
        if let State::Closing { deadline: None } = self.state {
            self.state = State::Closing {
                deadline: Some(now + self.cfg.close_timeout),
            };
        }
    }

    // ------------------------------------------------------------------
    // Application side
    // ------------------------------------------------------------------

    /// Open an outbound stream (numbered from 0 up, never reused). Its
    /// `NewStream` (with an empty name) goes out at the next transmit, before
    /// any of its data.
    ///
    /// Errors: `Closed` (closing or closed), `Failed` (connection error),
    /// `LimitReached("max_streams")`, `LimitReached("stream ids exhausted")`.
    pub fn open(&mut self) -> Result<StreamId, MuxError> {
        if let Some(e) = &self.error {
            return Err(e.to_mux_error());
        }
        if self.state != State::Open {
            return Err(MuxError::Closed);
        }
        if self.streams.len() >= self.limits.max_streams {
            return Err(MuxError::LimitReached("max_streams"));
        }
        if self.next_local_id > MAX_STREAM_ID {
            return Err(MuxError::LimitReached("stream ids exhausted"));
        }
        let id = StreamId::new(self.next_local_id, true);
        self.next_local_id += 1;
        self.streams.insert(id, Stream::new(App::Held, true));
        self.send_queue.push_back(id);
        Ok(id)
    }

    /// Take the next inbound stream from the accept backlog.
    pub fn accept(&mut self) -> Option<StreamId> {
        while let Some(id) = self.accept_queue.pop_front() {
            let Some(s) = self.streams.get_mut(&id) else {
                continue;
            };
            s.app = App::Held;
            return Some(id);
        }
        None
    }

    /// Bytes buffered for stream `id` (0 for a stream not held).
    pub fn readable(&self, id: StreamId) -> usize {
        self.streams.get(&id).map_or(0, |s| s.recv_buf.len())
    }

    /// Bytes written to `id` that [`Core::poll_transmit`] has not taken yet (0 once the
    /// stream is reset or closed for writing, whose buffered data never goes out).
    pub fn unsent(&self, id: StreamId) -> usize {
        self.streams
            .get(&id)
            .filter(|s| s.reset.is_none() && !s.fin_sent)
            .map_or(0, |s| s.send_buf.len())
    }

    /// Read buffered data of `id` into `buf`. `Ok(0)` with a non-empty `buf`
    /// is end-of-file (the remote closed and everything was read). After a
    /// reset, buffered data is still returned first (unless we reset it
    /// ourselves), then `Reset(reason)`.
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
            return Ok(n);
        }
        if let Some(r) = s.reset {
            return Err(StreamError::Reset(r));
        }
        if s.remote_fin {
            return Ok(0);
        }
        self.conn_status()?;
        Err(StreamError::Blocked)
    }

    /// Queue data for `id`, at most its send-buffer room
    /// ([`Config::max_stream_send_buffer`]). Returns how much was taken, or
    /// `Blocked` if nothing could be (wait for `Event::Writable`).
    pub fn write(&mut self, id: StreamId, data: &[u8]) -> Result<usize, StreamError> {
        self.conn_status()?;
        if self.state != State::Open {
            return Err(StreamError::ConnectionClosed);
        }
        let cap = self.cfg.max_stream_send_buffer;
        let s = held_stream(&mut self.streams, id)?;
        if let Some(r) = s.reset {
            return Err(StreamError::Reset(r));
        }
        if s.fin_requested {
            return Err(StreamError::WriteClosed);
        }
        if data.is_empty() {
            return Ok(0);
        }
        let n = data.len().min(cap.saturating_sub(s.send_buf.len()));
        if n == 0 {
            s.write_blocked = true;
            return Err(StreamError::Blocked);
        }
        s.send_buf.extend_from_slice(&data[..n]);
        if !s.in_send_queue {
            s.in_send_queue = true;
            self.send_queue.push_back(id);
        }
        Ok(n)
    }

    /// Half-close `id`: its close goes out after the queued data. Idempotent.
    pub fn finish(&mut self, id: StreamId) -> Result<(), StreamError> {
        let s = held_stream(&mut self.streams, id)?;
        if let Some(r) = s.reset {
            return Err(StreamError::Reset(r));
        }
        if s.fin_requested {
            return Ok(());
        }
        s.fin_requested = true;
        if !s.in_send_queue {
            s.in_send_queue = true;
            self.send_queue.push_back(id);
        }
        Ok(())
    }

    /// Reset `id` both ways: buffers are dropped and the remote gets a reset
    /// (unless it never learned of the stream, or both sides had already
    /// closed). Reads and writes then fail with `Reset(Local)`.
    pub fn reset(&mut self, id: StreamId) -> Result<(), StreamError> {
        held_stream(&mut self.streams, id)?;
        self.reset_inner(id, ResetReason::Local, false);
        Ok(())
    }

    /// Reset `id` from our side for `reason`, queueing a reset frame.
    /// `notify`: emit `Event::Reset` (the reset was caused by the remote).
    fn reset_inner(&mut self, id: StreamId, reason: ResetReason, notify: bool) {
        let Some(s) = self.streams.get(&id) else {
            return;
        };
        if s.reset.is_some() || s.fully_closed() {
            return;
        }
        let remote_knows = !s.open_pending;
        let app = s.app;
        self.mark_reset(id, reason);
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
                    self.events.push_back(Event::Reset(id));
                }
            }
        }
    }

    /// Mark `id` reset. Only a local reset drops what was received; otherwise
    /// it stays readable before the error.
    fn mark_reset(&mut self, id: StreamId, reason: ResetReason) {
        self.discard_partial(id);
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        s.reset = Some(reason);
        if reason == ResetReason::Local {
            self.buffered -= s.recv_buf.len();
            s.recv_buf = BytesMut::new();
        }
        s.send_buf = BytesMut::new();
        s.open_pending = false;
    }

    /// The application is done with `id` (a handle was dropped):
    /// - write side finished: queued data and the close still go out and the
    ///   stream lingers (input discarded) until the remote closes or resets;
    /// - write side open, but the remote closed and every byte was read: the
    ///   stream is complete, so it is finished (queued data, then close) as
    ///   above rather than reset;
    /// - otherwise (the remote may still send, or data was left unread) the
    ///   stream is reset, like a TCP close with unread data.
    ///
    /// Either way the id is no longer usable by the application. Unknown ids
    /// are ignored.
    pub fn detach(&mut self, id: StreamId) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if s.app == App::Detached {
            return;
        }
        let open = self.state == State::Open;
        if open && s.app == App::Held && s.reset.is_none() && s.remote_fin && s.recv_buf.is_empty()
        {
            s.fin_requested = true;
            if !s.fin_sent && !s.in_send_queue {
                s.in_send_queue = true;
                self.send_queue.push_back(id);
            }
        }
        if s.reset.is_some() || s.fully_closed() || self.state == State::Closed {
            if s.app == App::Pending {
                self.accept_queue.retain(|&q| q != id);
            }
            self.remove(id);
            return;
        }
        if s.app == App::Held && s.fin_requested {
            s.app = App::Detached;
            self.buffered -= s.recv_buf.len();
            s.recv_buf = BytesMut::new();
            self.discard_partial(id);
            self.maybe_remove(id);
            return;
        }
        self.reset_inner(id, ResetReason::Local, false);
        self.remove(id);
    }

    /// Close politely: queued stream data (and requested closes) go out, then
    /// the connection is closed (within [`Config::close_timeout`]). Writes
    /// and opens fail from now on; inbound streams are refused.
    pub fn close(&mut self) {
        if self.state != State::Open {
            return;
        }
        self.state = State::Closing { deadline: None };
        if !self.wants_transmit() {
            self.set_closed();
        }
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

    /// Why [`Core::accept`] will yield nothing more, if it won't: the
    /// connection is closing or failed. `None` while inbound streams may
    /// still arrive.
    pub fn accept_error(&self) -> Option<MuxError> {
        if let Some(e) = &self.error {
            return Some(e.to_mux_error());
        }
        if self.state != State::Open {
            return Some(MuxError::Closed);
        }
        None
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

    /// Resets waiting to be sent.
    pub fn pending_control(&self) -> usize {
        self.rsts.len()
    }

    /// Whether input is paused: [`Core::is_read_blocked`] (a frame waits for
    /// a slow stream), or the resets we owe the remote reached
    /// [`Config::max_pending_control`], so [`Core::handle_input`] reads no
    /// further frame (what it was given stays in `src`) until
    /// [`Core::poll_transmit`] sends some. A driver stops reading the
    /// transport meanwhile, so a remote that floods stream openings is slowed
    /// by TCP flow control instead of growing our queue. If the remote reads
    /// nothing for [`Config::control_stall_timeout`], the connection fails
    /// with [`ConnError::RemoteNotReading`].
    pub fn input_blocked(&self) -> bool {
        self.is_read_blocked()
            || (self.state != State::Closed && self.error.is_none() && self.control_full())
    }

    /// Bytes received on `id` and not yet read.
    pub fn stream_buffered(&self, id: StreamId) -> Option<usize> {
        self.streams.get(&id).map(|s| s.recv_buf.len())
    }

    /// Bytes written to `id` and not yet transmitted.
    pub fn stream_send_buffered(&self, id: StreamId) -> Option<usize> {
        self.streams.get(&id).map(|s| s.send_buf.len())
    }

    /// Why `id` was reset, if it was.
    pub fn reset_reason(&self, id: StreamId) -> Option<ResetReason> {
        self.streams.get(&id).and_then(|s| s.reset)
    }

    /// Check internal invariants, panicking if one is broken. A test and fuzz
    /// aid; O(streams).
    pub fn check_invariants(&self) {
        let mut buffered = 0;
        for (id, s) in &self.streams {
            buffered += s.recv_buf.len();
            let in_flight = match self.partial {
                Some(p) if p.id == *id && !p.discard => p.remaining as usize,
                _ => 0,
            };
            assert!(
                s.recv_buf.len() + in_flight <= self.cfg.max_buffer_per_stream,
                "stream {id}: buffered beyond the per-stream cap"
            );
            assert!(
                s.send_buf.len() <= self.cfg.max_stream_send_buffer,
                "stream {id}: send buffer over cap"
            );
            if s.app == App::Detached {
                assert!(s.recv_buf.is_empty(), "stream {id}: detached with data");
            }
            if s.open_pending {
                assert!(id.local, "stream {id}: remote stream pending open");
            }
            if id.local {
                assert!(id.id < self.next_local_id, "stream {id}: id not allocated");
            }
            if s.app == App::Pending {
                assert!(!id.local, "stream {id}: our stream in the backlog");
            }
        }
        assert_eq!(buffered, self.buffered, "buffered total");
        let in_flight = match self.partial {
            Some(p) if !p.discard => p.remaining as usize,
            _ => 0,
        };
        assert!(
            self.buffered + in_flight <= self.cfg.max_buffer_per_connection,
            "connection buffer cap"
        );
        if let Some(b) = self.blocked {
            assert!(self.partial.is_none(), "blocked inside a frame body");
            assert_ne!(self.state, State::Closed, "blocked while closed");
            assert!(b.len > 0, "blocked on an empty frame");
            assert!(
                b.len <= self.cfg.max_buffer_per_stream
                    && b.len <= self.cfg.max_buffer_per_connection,
                "blocked on a frame that can never fit"
            );
        }
        if let Some(p) = self.partial {
            assert!(p.remaining > 0, "empty partial");
            if !p.discard {
                let s = self.streams.get(&p.id);
                assert!(s.is_some(), "partial for an untracked stream kept");
                assert!(
                    s.is_some_and(|s| s.reset.is_none() && s.app != App::Detached),
                    "partial kept for a stream that takes no data"
                );
            }
        }
        assert!(self.streams.len() <= self.limits.max_streams, "stream cap");
        assert!(
            self.accept_queue.len() <= self.limits.max_accept_backlog,
            "accept backlog"
        );
        for id in &self.accept_queue {
            assert_eq!(
                self.streams.get(id).map(|s| s.app),
                Some(App::Pending),
                "backlog entry {id}"
            );
        }
        // What the remote made us owe stops at the cap (input pauses); our
        // own resets add at most one per stream.
        assert!(
            self.rsts.len() <= self.cfg.max_pending_control + self.limits.max_streams,
            "control queue"
        );
        assert!(
            self.rapid_resets.len() <= self.limits.max_rapid_resets + 1,
            "rapid resets"
        );
        if self.error.is_some() {
            assert_eq!(self.state, State::Closed, "failed but not closed");
        }
    }

    // ------------------------------------------------------------------
    // Internals
    // ------------------------------------------------------------------

    /// Whether the resets we owe the remote reached
    /// [`Config::max_pending_control`].
    fn control_full(&self) -> bool {
        self.rsts.len() >= self.cfg.max_pending_control
    }

    /// Start (or end) the stall clock of a full control queue.
    fn note_control_queue(&mut self, now: Instant) {
        if self.control_full() {
            self.control_blocked_since.get_or_insert(now);
        } else {
            self.control_blocked_since = None;
        }
    }

    fn maybe_remove(&mut self, id: StreamId) {
        if let Some(s) = self.streams.get(&id)
            && s.app == App::Detached
            && (s.reset.is_some() || s.fully_closed())
        {
            self.remove(id);
        }
    }

    fn remove(&mut self, id: StreamId) {
        self.discard_partial(id);
        if let Some(s) = self.streams.remove(&id) {
            self.buffered -= s.recv_buf.len();
        }
    }

    /// Fail the connection with `e` (first error wins) and return the error
    /// in force. mplex has no go-away: the connection closes at once.
    fn fail(&mut self, e: ConnError) -> ConnError {
        if let Some(old) = &self.error {
            return old.clone();
        }
        tracing::debug!(error = %e, blame = %e.blame(), "mplex connection failed");
        self.error = Some(e.clone());
        self.set_closed();
        e
    }

    fn set_closed(&mut self) {
        self.state = State::Closed;
        self.partial = None;
        self.blocked = None;
        self.rsts.clear();
        self.send_queue.clear();
        for s in self.streams.values_mut() {
            s.send_buf = BytesMut::new();
            s.in_send_queue = false;
        }
        let detached: Vec<StreamId> = self
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

/// Capacity an emptied stream buffer keeps; a larger one (left by a burst) is released, so an
/// idle stream does not hold its peak.
const KEEP_CAPACITY: usize = 64 * 1024;

fn shrink_if_idle(buf: &mut BytesMut) {
    if buf.is_empty() && buf.capacity() > KEEP_CAPACITY {
        *buf = BytesMut::new();
    }
}
