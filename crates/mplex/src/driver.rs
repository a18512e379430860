//! The tokio driver: one task per connection, as for yamux.
//!
//! The [`Core`] sits in an `Arc<Mutex<_>>` (a std mutex, never held across an
//! await or an I/O call) shared by the driver task, the [`Connection`] handle
//! and every [`Stream`] handle. Stream handles call the core directly (no
//! per-stream channels) and wake the driver when they queued output. Each
//! driver iteration:
//!
//! 1. runs due timers, gathers frames from `poll_transmit` into a bounded
//!    write buffer ([`Config::write_buffer_size`]) and wakes the stream and
//!    accept wakers the core's events name;
//! 2. writes the buffer to the transport (local work first);
//! 3. reads the transport into `handle_input`, whatever the state of the
//!    write side, **except while the core is read-blocked**
//!    ([`Core::is_read_blocked`]): a data frame does not fit a slow stream's
//!    receive buffer, so the driver leaves it (and what follows) in its read
//!    buffer and stops reading, letting TCP flow control push back on the
//!    sender (mplex has none of its own). Writing and local operations go
//!    on. When the application reads that stream (its `poll_read` wakes the
//!    driver), resets or drops it, or [`Config::max_block`] passes (the
//!    stream is then reset), the driver feeds the read buffer to the core
//!    again and resumes reading. The read buffer does not grow while
//!    blocked; while blocked every stream waits (inherent to mplex);
//! 4. arms one timer for `poll_timeout` (the close deadline, the read-block
//!    deadline).
//!
//! Both buffers are allocated on use and released when idle: the write
//! buffer is reserved when the core has output and dropped after a flush;
//! the read buffer is dropped when a read finds nothing and it holds no
//! bytes (never while read-blocked: it then holds the frame left over).
//!
//! After a bounded number of busy iterations (at most 16 reads of
//! [`Config::read_chunk_size`]) it yields to the runtime, so stream readers
//! get to drain their buffers.
//!
//! Dropping a [`Stream`] (see [`Core::detach`]): after `poll_shutdown`, or
//! once the remote closed and everything was read, the stream stays alive
//! inside the core until its queued data and close are sent and the remote
//! closes too; input that still arrives is discarded. Otherwise (the remote
//! may still send, or data is unread) dropping resets the stream (like a TCP
//! close with unread data). Dropping the [`Connection`] closes the connection
//! politely.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

use bytes::{Buf, BytesMut};
use plexus_core::{
    BoxFut, BoxIo, BoxStream, Io, MuxError, MuxLimits, MuxStats, MuxedConn, MuxedStream,
    MuxerUpgrade, Role,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::config::Config;
use crate::core::{Core, Event, StreamId};
use crate::error::StreamError;

/// The multistream protocol id of mplex (from the Ethereum consensus spec
/// and the libp2p inlined-muxer-negotiation spec; the mplex spec names none).
pub const PROTOCOL: &str = "/mplex/6.7.0";

/// Busy driver iterations before yielding to the runtime.
const MAX_SPINS: usize = 16;

/// mplex as a [`MuxerUpgrade`]: its own [`Config`] plus the shared
/// [`MuxLimits`] (`max_ack_backlog` is unused: mplex has no acknowledgements).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MplexConfig {
    /// mplex-specific settings.
    pub config: Config,
    /// The limits every muxer enforces.
    pub limits: MuxLimits,
}

impl MplexConfig {
    /// A config from its parts.
    pub fn new(config: Config, limits: MuxLimits) -> MplexConfig {
        MplexConfig { config, limits }
    }

    /// Start mplex on `io`, spawning the driver task on the current tokio
    /// runtime. mplex is symmetric, so no role is needed.
    pub fn connect<T: Io>(&self, io: T) -> Connection {
        let core = Core::new(self.config.clone(), self.limits.clone());
        let shared = Arc::new(Mutex::new(Shared {
            core,
            wakers: HashMap::new(),
            accept_wakers: Vec::new(),
            driver: None,
            done_wakers: Vec::new(),
            driver_done: false,
            read_paused: false,
            holds_io_buffers: false,
        }));
        let driver = Driver {
            shared: shared.clone(),
            io,
            // Both allocated on first use and released when idle.
            read_buf: BytesMut::new(),
            write_buf: BytesMut::new(),
            write_cap: self.config.write_buffer_size.max(64),
            read_chunk: self.config.read_chunk_size.max(64),
            close_timeout: self.config.close_timeout,
            need_flush: false,
            write_failed: false,
            write_error: None,
            read_done: false,
            shutdown_done: false,
            close_deadline: None,
            timer: Box::pin(tokio::time::sleep(std::time::Duration::ZERO)),
            timer_at: None,
            wake_buf: Vec::new(),
            reported_buffers: false,
        };
        tokio::spawn(driver);
        Connection { shared }
    }
}

impl MuxerUpgrade for MplexConfig {
    fn protocol(&self) -> &'static str {
        PROTOCOL
    }

    fn start(&self, io: BoxIo, _role: Role) -> Box<dyn MuxedConn> {
        Box::new(self.connect(io))
    }
}

#[derive(Default)]
struct StreamWakers {
    read: Option<Waker>,
    write: Option<Waker>,
}

struct Shared {
    core: Core,
    wakers: HashMap<StreamId, StreamWakers>,
    accept_wakers: Vec<Waker>,
    driver: Option<Waker>,
    done_wakers: Vec<Waker>,
    driver_done: bool,
    /// The driver stopped reading because the core is read-blocked; it waits
    /// to be woken when that ends.
    read_paused: bool,
    /// Whether the driver held a read or write buffer when it last went
    /// idle (see [`Connection::holds_io_buffers`]).
    holds_io_buffers: bool,
}

impl Shared {
    /// The driver's waker, if the core has output for it, or input can
    /// resume after a read-block.
    fn driver_if_needed(&mut self) -> Option<Waker> {
        if self.core.wants_transmit() || (self.read_paused && !self.core.is_read_blocked()) {
            self.driver.take()
        } else {
            None
        }
    }

    fn wake_all(&mut self, out: &mut Vec<Waker>) {
        out.append(&mut self.accept_wakers);
        for w in self.wakers.values_mut() {
            out.extend(w.read.take());
            out.extend(w.write.take());
        }
    }

    fn drain_events(&mut self, out: &mut Vec<Waker>) {
        while let Some(ev) = self.core.poll_event() {
            match ev {
                Event::InboundStream(_) => out.append(&mut self.accept_wakers),
                Event::Readable(id) => {
                    if let Some(w) = self.wakers.get_mut(&id) {
                        out.extend(w.read.take());
                    }
                }
                Event::Writable(id) => {
                    if let Some(w) = self.wakers.get_mut(&id) {
                        out.extend(w.write.take());
                    }
                }
                Event::Reset(id) => {
                    if let Some(w) = self.wakers.get_mut(&id) {
                        out.extend(w.read.take());
                        out.extend(w.write.take());
                    }
                }
                Event::Closed => self.wake_all(out),
            }
        }
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

fn register(list: &mut Vec<Waker>, w: &Waker) {
    if !list.iter().any(|x| x.will_wake(w)) {
        list.push(w.clone());
    }
}

fn set_waker(slot: &mut Option<Waker>, w: &Waker) {
    match slot {
        Some(old) if old.will_wake(w) => {}
        _ => *slot = Some(w.clone()),
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

struct Driver<T> {
    shared: Arc<Mutex<Shared>>,
    io: T,
    read_buf: BytesMut,
    write_buf: BytesMut,
    write_cap: usize,
    read_chunk: usize,
    close_timeout: std::time::Duration,
    need_flush: bool,
    write_failed: bool,
    write_error: Option<io::Error>,
    read_done: bool,
    shutdown_done: bool,
    close_deadline: Option<Instant>,
    timer: Pin<Box<tokio::time::Sleep>>,
    timer_at: Option<Instant>,
    wake_buf: Vec<Waker>,
    /// The last value stored in `Shared::holds_io_buffers`.
    reported_buffers: bool,
}

impl<T: Io> Driver<T> {
    /// Writing failed: nothing more goes out, but what the remote sent
    /// before may still be waiting, so reading goes on until end-of-file (or
    /// the close timeout); then the core learns of this error.
    fn write_failed(&mut self, e: io::Error) {
        self.write_failed = true;
        // Nothing more goes out: release the batch.
        self.write_buf = BytesMut::new();
        self.write_error.get_or_insert(e);
    }

    /// Reading ended (end-of-file or error): the connection is over.
    fn read_ended(&mut self, e: Option<io::Error>) {
        self.read_done = true;
        let e = self.write_error.take().or(e);
        let mut g = lock(&self.shared);
        g.core.handle_transport_closed(e);
        g.drain_events(&mut self.wake_buf);
    }

    fn wake(&mut self) {
        for w in self.wake_buf.drain(..) {
            w.wake();
        }
    }

    /// Poll the timer for `at`; true if it fired.
    fn poll_timer(&mut self, cx: &mut Context<'_>, at: Instant) -> bool {
        if self.timer_at != Some(at) {
            self.timer
                .as_mut()
                .reset(tokio::time::Instant::from_std(at));
            self.timer_at = Some(at);
        }
        self.timer.as_mut().poll(cx).is_ready()
    }

    /// Going idle: record whether a buffer is still held (a lock only when
    /// that changed, so at most once per busy/idle transition).
    fn report_buffers(&mut self) {
        let held = self.read_buf.capacity() > 0 || self.write_buf.capacity() > 0;
        if held != self.reported_buffers {
            self.reported_buffers = held;
            lock(&self.shared).holds_io_buffers = held;
        }
    }

    fn finish(&mut self) {
        let mut g = lock(&self.shared);
        g.driver_done = true;
        g.holds_io_buffers = false;
        g.wake_all(&mut self.wake_buf);
        self.wake_buf.append(&mut g.done_wakers);
        drop(g);
        self.wake();
    }
}

impl<T: Io> Future for Driver<T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        for _ in 0..MAX_SPINS {
            let now = now();
            let mut progress = false;
            let (closed, deadline) = {
                let mut g = lock(&this.shared);
                let sh = &mut *g;
                set_waker(&mut sh.driver, cx.waker());
                if sh.core.poll_timeout().is_some_and(|t| t <= now) {
                    sh.core.handle_timeout(now);
                }
                if !this.write_failed && this.write_buf.len() < this.write_cap {
                    let budget = this.write_cap - this.write_buf.len();
                    if this.write_buf.capacity() == 0 && sh.core.wants_transmit() {
                        // One allocation for the batch (not touched beyond what is written).
                        this.write_buf.reserve(this.write_cap);
                    }
                    sh.core.poll_transmit(now, &mut this.write_buf, budget);
                }
                sh.drain_events(&mut this.wake_buf);
                (sh.core.is_closed(), sh.core.poll_timeout())
            };
            this.wake();

            // 1. Write what we owe.
            while !this.write_buf.is_empty() && !this.write_failed {
                match Pin::new(&mut this.io).poll_write(cx, &this.write_buf) {
                    Poll::Ready(Ok(0)) => {
                        this.write_failed(io::ErrorKind::WriteZero.into());
                        progress = true;
                    }
                    Poll::Ready(Ok(n)) => {
                        this.write_buf.advance(n);
                        this.need_flush = true;
                        progress = true;
                    }
                    Poll::Ready(Err(e)) => {
                        this.write_failed(e);
                        progress = true;
                    }
                    Poll::Pending => break,
                }
            }
            if this.need_flush && this.write_buf.is_empty() && !this.write_failed {
                match Pin::new(&mut this.io).poll_flush(cx) {
                    Poll::Ready(Ok(())) => {
                        this.need_flush = false;
                        // All sent: hold no write batch while idle.
                        this.write_buf = BytesMut::new();
                    }
                    Poll::Ready(Err(e)) => {
                        this.write_failed(e);
                        progress = true;
                    }
                    Poll::Pending => {}
                }
            }

            // 2. Closed: flush, shut down (bounded by close_timeout), finish.
            if closed {
                let deadline = *this.close_deadline.get_or_insert(now + this.close_timeout);
                let flushed = this.write_buf.is_empty() || this.write_failed;
                if flushed
                    && !this.shutdown_done
                    && !this.write_failed
                    && Pin::new(&mut this.io).poll_shutdown(cx).is_ready()
                {
                    this.shutdown_done = true;
                }
                if this.shutdown_done || this.write_failed || now >= deadline {
                    this.finish();
                    return Poll::Ready(());
                }
                if this.poll_timer(cx, deadline) {
                    this.finish();
                    return Poll::Ready(());
                }
                return Poll::Pending;
            }

            // A failed write side waits for the read side, within bounds.
            if this.write_failed {
                let deadline = *this.close_deadline.get_or_insert(now + this.close_timeout);
                if now >= deadline || this.poll_timer(cx, deadline) {
                    this.read_ended(None);
                    this.wake();
                    continue;
                }
            }

            // 3. Read, unless the core is blocked on a slow stream. The check
            // and `read_paused` share one lock with stream reads, so a read
            // that ends the block always sees `read_paused` and wakes us.
            if !this.read_done {
                let mut g = lock(&this.shared);
                let sh = &mut *g;
                if sh.read_paused && !sh.core.is_read_blocked() {
                    // Resume: the bytes left in the read buffer first.
                    sh.read_paused = false;
                    if let Err(e) = sh.core.handle_input(now, &mut this.read_buf) {
                        tracing::debug!(error = %e, "mplex input rejected");
                    }
                    sh.drain_events(&mut this.wake_buf);
                    progress = true;
                }
                sh.read_paused = sh.core.is_read_blocked();
                let paused = sh.read_paused;
                drop(g);
                this.wake();
                if paused {
                    tracing::trace!("mplex input blocked on a slow reader");
                } else {
                    this.read_buf.reserve(this.read_chunk);
                    let res = std::pin::pin!(this.io.read_buf(&mut this.read_buf)).poll(cx);
                    match res {
                        Poll::Ready(Ok(0)) => {
                            this.read_ended(None);
                            progress = true;
                        }
                        Poll::Ready(Ok(_)) => {
                            let mut g = lock(&this.shared);
                            let sh = &mut *g;
                            // A failure is recorded in the core (and surfaces
                            // as Event::Closed); nothing else to do here.
                            if let Err(e) = sh.core.handle_input(now, &mut this.read_buf) {
                                tracing::debug!(error = %e, "mplex input rejected");
                            }
                            sh.read_paused = sh.core.is_read_blocked();
                            sh.drain_events(&mut this.wake_buf);
                            progress = true;
                        }
                        Poll::Ready(Err(e)) => {
                            this.read_ended(Some(e));
                            progress = true;
                        }
                        Poll::Pending => {
                            // Nothing to read: hold no read buffer while idle.
                            // Only if empty: a partial frame stays (a frame the
                            // core left while read-blocked never gets here, as
                            // the driver does not read then).
                            if this.read_buf.is_empty() {
                                this.read_buf = BytesMut::new();
                            }
                        }
                    }
                    this.wake();
                }
            }

            // 4. Timer.
            if let Some(at) = deadline
                && this.poll_timer(cx, at)
            {
                progress = true;
            }

            if !progress {
                this.report_buffers();
                return Poll::Pending;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// An mplex connection handle: opens and accepts streams. The driver runs on
/// its own task. Dropping the handle closes the connection politely (as
/// [`Connection::close`] without waiting).
pub struct Connection {
    shared: Arc<Mutex<Shared>>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl Connection {
    fn stream(&self, sh: &mut Shared, id: StreamId) -> Stream {
        sh.wakers.insert(id, StreamWakers::default());
        Stream {
            shared: self.shared.clone(),
            id,
            write_quota: sh.core.config().max_stream_send_buffer,
            written: 0,
        }
    }

    /// Open an outbound stream. Never waits: mplex has no acknowledgements;
    /// the stream cap is an immediate `LimitReached`.
    pub fn open_stream(&self) -> Result<Stream, MuxError> {
        let mut g = lock(&self.shared);
        let sh = &mut *g;
        let id = sh.core.open()?;
        let s = self.stream(sh, id);
        let w = sh.driver.take();
        drop(g);
        w.into_iter().for_each(Waker::wake);
        Ok(s)
    }

    /// Wait for the next inbound stream.
    pub async fn accept_stream(&self) -> Result<Stream, MuxError> {
        poll_fn(|cx| {
            let mut g = lock(&self.shared);
            let sh = &mut *g;
            if let Some(id) = sh.core.accept() {
                let s = self.stream(sh, id);
                let w = sh.driver_if_needed();
                drop(g);
                w.into_iter().for_each(Waker::wake);
                return Poll::Ready(Ok(s));
            }
            if let Some(e) = sh.core.accept_error() {
                return Poll::Ready(Err(e));
            }
            if sh.driver_done {
                return Poll::Ready(Err(MuxError::Closed));
            }
            register(&mut sh.accept_wakers, cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Close politely (flush queued data, shut the transport down) and wait until
    /// the driver has finished.
    pub async fn close_conn(&self) {
        self.start_close();
        poll_fn(|cx| {
            let mut g = lock(&self.shared);
            if g.driver_done {
                return Poll::Ready(());
            }
            register(&mut g.done_wakers, cx.waker());
            Poll::Pending
        })
        .await
    }

    fn start_close(&self) {
        let mut g = lock(&self.shared);
        g.core.close();
        let w = g.driver.take();
        drop(g);
        w.into_iter().for_each(Waker::wake);
    }

    /// Inspect the core (counters, error) under the lock.
    pub fn with_core<R>(&self, f: impl FnOnce(&Core) -> R) -> R {
        f(&lock(&self.shared).core)
    }

    /// Whether the driver task has finished.
    pub fn driver_finished(&self) -> bool {
        lock(&self.shared).driver_done
    }

    /// Whether the driver held a read or write buffer when it last went
    /// idle (waiting for I/O or the application). For tests: an idle
    /// connection holds none.
    #[doc(hidden)]
    pub fn holds_io_buffers(&self) -> bool {
        lock(&self.shared).holds_io_buffers
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.start_close();
    }
}

impl MuxedConn for Connection {
    fn open(&self) -> BoxFut<'_, Result<BoxStream, MuxError>> {
        Box::pin(async move { self.open_stream().map(|s| Box::new(s) as BoxStream) })
    }

    fn accept(&self) -> BoxFut<'_, Result<BoxStream, MuxError>> {
        Box::pin(async move { self.accept_stream().await.map(|s| Box::new(s) as BoxStream) })
    }

    fn close(&self) -> BoxFut<'_, ()> {
        Box::pin(self.close_conn())
    }

    fn is_closed(&self) -> bool {
        let g = lock(&self.shared);
        g.driver_done || g.core.is_closing()
    }

    fn stats(&self) -> MuxStats {
        let g = lock(&self.shared);
        MuxStats {
            open_streams: g.core.num_streams(),
            buffered_bytes: g.core.buffered_bytes(),
            pending_opens: 0,
            pending_accepts: g.core.pending_accepts(),
        }
    }
}

/// An mplex stream: tokio `AsyncRead` + `AsyncWrite`; `poll_shutdown` sends
/// a close (half-close); [`MuxedStream::reset`] sends a reset. Connection
/// failures surface as `io::Error` (kind `ConnectionAborted` or
/// `UnexpectedEof`, the source a `ConnError`); a reset as `ConnectionReset`
/// whose source is a [`StreamError::Reset`] naming the [`crate::ResetReason`].
/// `poll_flush` returns at once: written data belongs to the driver, which
/// sends it without further prompting.
pub struct Stream {
    shared: Arc<Mutex<Shared>>,
    id: StreamId,
    /// Bytes `poll_write` accepts in a row before it yields once.
    write_quota: usize,
    /// Bytes accepted since `poll_write` last returned `Pending`.
    written: usize,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Stream {
    /// The stream id.
    pub fn id(&self) -> StreamId {
        self.id
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let mut g = lock(&self.shared);
        let sh = &mut *g;
        match sh.core.read(self.id, buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                let w = sh.driver_if_needed();
                drop(g);
                w.into_iter().for_each(Waker::wake);
                Poll::Ready(Ok(()))
            }
            Err(StreamError::Blocked) => {
                let slot = sh.wakers.entry(self.id).or_default();
                set_waker(&mut slot.read, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e.to_io_error())),
        }
    }
}

impl AsyncWrite for Stream {
    /// Queues data for the driver. mplex has no flow control to pace a
    /// writer: when the driver drains the send buffer concurrently (another
    /// worker thread), a `write_all` could go on within one poll of its task
    /// for as long as it has data, starving whatever else that task does
    /// (typically reading the answer, so the remote's receive buffer
    /// overflows). So after [`Config::max_stream_send_buffer`] bytes accepted
    /// without a `Pending`, it yields once (wakes itself, returns `Pending`).
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if !data.is_empty() && self.written >= self.write_quota {
            self.written = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let this = &mut *self;
        let mut g = lock(&this.shared);
        let sh = &mut *g;
        match sh.core.write(this.id, data) {
            Ok(n) => {
                this.written += n;
                let w = sh.driver_if_needed();
                drop(g);
                w.into_iter().for_each(Waker::wake);
                Poll::Ready(Ok(n))
            }
            Err(StreamError::Blocked) => {
                this.written = 0;
                let slot = sh.wakers.entry(this.id).or_default();
                set_waker(&mut slot.write, cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e.to_io_error())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut g = lock(&self.shared);
        let sh = &mut *g;
        match sh.core.finish(self.id) {
            Ok(()) => {
                let w = sh.driver_if_needed();
                drop(g);
                w.into_iter().for_each(Waker::wake);
                Poll::Ready(Ok(()))
            }
            Err(e) => Poll::Ready(Err(e.to_io_error())),
        }
    }
}

impl MuxedStream for Stream {
    fn reset(&mut self) {
        let mut g = lock(&self.shared);
        let _ = g.core.reset(self.id);
        let w = g.driver_if_needed();
        drop(g);
        w.into_iter().for_each(Waker::wake);
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let mut g = lock(&self.shared);
        g.core.detach(self.id);
        g.wakers.remove(&self.id);
        let w = g.driver_if_needed();
        drop(g);
        w.into_iter().for_each(Waker::wake);
    }
}
