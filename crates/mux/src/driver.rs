//! The tokio driver: one task per connection, quinn-style, for any
//! [`MuxCore`].
//!
//! The core sits in an `Arc<Mutex<_>>` (a std mutex, never held across an
//! await or an I/O call) shared by the driver task, the [`Connection`] handle
//! and every [`Stream`] handle. Stream handles call the core directly (no
//! per-stream channels) and wake the driver when they queued output. Each
//! driver iteration:
//!
//! 1. runs due timers, gathers frames from `poll_transmit` into a bounded
//!    write buffer ([`DriverConfig::write_buffer_size`]) and wakes the
//!    stream, accept and open waiters the core's events name;
//! 2. writes the buffer to the transport (local work first);
//! 3. reads the transport into `handle_input`, whatever the state of the
//!    write side or of any stream, **except while the core is
//!    input-blocked** ([`MuxCore::input_blocked`]): the core then leaves
//!    what it was given in the read buffer, the driver stops reading, and
//!    TCP flow control pushes back on the sender. Writing and local
//!    operations go on. When the block ends (a stream read, reset or drop,
//!    a frame sent, a timer), the driver feeds the read buffer to the core
//!    again and resumes reading. The read buffer does not grow while
//!    blocked;
//! 4. arms one timer for `poll_timeout`.
//!
//! Once the core rejects input (the connection failed), the driver reads no
//! more: the read buffer is dropped and the connection closes on the core's
//! schedule (its go-away flushed, or its close deadline).
//!
//! Both buffers are allocated on use and released when idle: the write
//! buffer is reserved when the core has output and dropped after a flush;
//! the read buffer is dropped when a read finds nothing and it holds no
//! bytes (never while input-blocked: it then holds what the core left).
//!
//! After a bounded number of busy iterations it yields to the runtime, so
//! stream readers get to drain their buffers.
//!
//! Dropping a [`Stream`] calls [`MuxCore::detach`]; dropping the
//! [`Connection`] closes the connection politely.

use std::collections::HashMap;
use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use plexus_core::{
    BoxFut, BoxStream, Io, MuxError, MuxStats, MuxedConn, MuxedStream, PROBE, poll_read_probe,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

use crate::{DriverConfig, MuxCore, MuxEvent, StreamErrorKind};

/// Busy driver iterations before yielding to the runtime.
const MAX_SPINS: usize = 16;

/// The least a write batch reserves (see `Driver::gather`): small enough for the allocator's
/// fast path, large enough for a few small frames.
const MIN_BATCH: usize = 1024;

/// Start `core` on `io`: spawns the driver task on the current tokio runtime
/// and returns the connection handle.
pub fn spawn<C: MuxCore, T: Io>(core: C, io: T, cfg: DriverConfig) -> Connection<C> {
    let shared = Arc::new(Mutex::new(Shared {
        core,
        wakers: HashMap::new(),
        accept_wakers: Vec::new(),
        open_wakers: Vec::new(),
        driver: None,
        done_wakers: Vec::new(),
        driver_done: false,
        read_paused: false,
        holds_io_buffers: false,
        flushing: HashMap::new(),
        gathered: 0,
        written: 0,
        flush_low_water: cfg.flush_low_water,
    }));
    let driver = Driver {
        shared: shared.clone(),
        io,
        // Both allocated on first use and released when idle.
        read_buf: BytesMut::new(),
        write_buf: BytesMut::new(),
        write_cap: cfg.write_buffer_size.max(64),
        read_chunk: cfg.read_chunk_size.max(64),
        close_timeout: cfg.close_timeout,
        need_flush: false,
        write_failed: false,
        write_error: None,
        read_done: false,
        shutdown_done: false,
        close_deadline: None,
        timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
        timer_at: None,
        wake_buf: Vec::new(),
        reported_buffers: false,
        written: 0,
        small_reads: true,
        batch: 0,
        last_batch: 0,
    };
    tokio::spawn(driver);
    Connection { shared }
}

#[derive(Default)]
struct StreamWakers {
    read: Option<Waker>,
    write: Option<Waker>,
}

/// A stream's `poll_flush` in progress.
struct Flush {
    /// Once the stream has at most `flush_low_water` bytes left in the core: the value
    /// of `Shared::written` that completes the flush. Fixed when set, so bytes written
    /// after the flush began never hold it back.
    target: Option<u64>,
    waker: Option<Waker>,
}

struct Shared<C: MuxCore> {
    core: C,
    wakers: HashMap<C::StreamId, StreamWakers>,
    accept_wakers: Vec<Waker>,
    open_wakers: Vec<Waker>,
    driver: Option<Waker>,
    done_wakers: Vec<Waker>,
    driver_done: bool,
    /// The driver stopped reading because the core is input-blocked; it
    /// waits to be woken when that ends.
    read_paused: bool,
    /// Whether the driver held a read or write buffer when it last went
    /// idle (see [`Connection::holds_io_buffers`]).
    holds_io_buffers: bool,
    /// Streams waiting in `poll_flush`.
    flushing: HashMap<C::StreamId, Flush>,
    /// Bytes ever taken from the core into the write buffer.
    gathered: u64,
    /// Bytes ever written from the write buffer to the transport (as of the driver's
    /// last gather).
    written: u64,
    /// [`DriverConfig::flush_low_water`].
    flush_low_water: usize,
}

impl<C: MuxCore> Shared<C> {
    /// The driver's waker, if the core has output for it, or input can
    /// resume after a block.
    fn driver_if_needed(&mut self) -> Option<Waker> {
        if self.core.wants_transmit() || (self.read_paused && !self.core.input_blocked()) {
            self.driver.take()
        } else {
            None
        }
    }

    fn wake_all(&mut self, out: &mut Vec<Waker>) {
        out.append(&mut self.accept_wakers);
        out.append(&mut self.open_wakers);
        for w in self.wakers.values_mut() {
            out.extend(w.read.take());
            out.extend(w.write.take());
        }
        for f in self.flushing.values_mut() {
            out.extend(f.waker.take());
        }
    }

    /// Where a flush of `id` would be complete, if the stream has at most
    /// `flush_low_water` bytes left in the core: once at most that many of the bytes up
    /// to its last are unwritten.
    fn flush_target(&self, id: C::StreamId) -> Option<u64> {
        flush_target(self.core.unsent(id), self.gathered, self.flush_low_water)
    }

    /// Wake the flushes that are complete.
    fn wake_flushed(&mut self, out: &mut Vec<Waker>) {
        for (id, f) in &mut self.flushing {
            if f.target.is_none() {
                f.target = flush_target(self.core.unsent(*id), self.gathered, self.flush_low_water);
            }
            if f.target.is_some_and(|t| self.written >= t) {
                out.extend(f.waker.take());
            }
        }
    }

    fn drain_events(&mut self, out: &mut Vec<Waker>) {
        while let Some(ev) = self.core.poll_event() {
            match C::classify(&ev) {
                MuxEvent::InboundStream => out.append(&mut self.accept_wakers),
                MuxEvent::Readable(id) => {
                    if let Some(w) = self.wakers.get_mut(&id) {
                        out.extend(w.read.take());
                    }
                }
                MuxEvent::Writable(id) => {
                    if let Some(w) = self.wakers.get_mut(&id) {
                        out.extend(w.write.take());
                    }
                }
                MuxEvent::Reset(id) => {
                    if let Some(w) = self.wakers.get_mut(&id) {
                        out.extend(w.read.take());
                        out.extend(w.write.take());
                    }
                    if let Some(f) = self.flushing.get_mut(&id) {
                        out.extend(f.waker.take());
                    }
                }
                MuxEvent::OpenReady => out.append(&mut self.open_wakers),
                MuxEvent::GoAway => {
                    out.append(&mut self.open_wakers);
                    out.append(&mut self.accept_wakers);
                }
                MuxEvent::Closed => self.wake_all(out),
            }
        }
    }

    /// Feed `read_buf` to the core. Returns false if the core rejected the
    /// input: the connection failed (the core records why and emits a Closed
    /// event), so nothing more is read and what is buffered is dropped.
    fn feed(&mut self, now: Instant, read_buf: &mut BytesMut, out: &mut Vec<Waker>) -> bool {
        let ok = match self.core.handle_input(now, read_buf) {
            Ok(()) => true,
            Err(e) => {
                tracing::debug!(error = %e, "muxer input rejected");
                *read_buf = BytesMut::new();
                false
            }
        };
        self.read_paused = self.core.input_blocked();
        self.drain_events(out);
        ok
    }
}

/// A flush's target for a stream with `unsent` bytes still in the core, `gathered` bytes
/// having left the core so far: none while more than `low_water` are in the core, else the
/// written count by which at most `low_water` of the bytes up to the stream's last are
/// unwritten.
fn flush_target(unsent: usize, gathered: u64, low_water: usize) -> Option<u64> {
    (unsent <= low_water).then(|| (gathered + unsent as u64).saturating_sub(low_water as u64))
}

fn lock<C: MuxCore>(shared: &Mutex<Shared<C>>) -> MutexGuard<'_, Shared<C>> {
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

struct Driver<C: MuxCore, T> {
    shared: Arc<Mutex<Shared<C>>>,
    io: T,
    read_buf: BytesMut,
    write_buf: BytesMut,
    write_cap: usize,
    read_chunk: usize,
    close_timeout: Duration,
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
    /// Bytes ever written to the transport (published as `Shared::written`).
    written: u64,
    /// The last read from the transport was shorter than [`PROBE`] (see `read_in`).
    small_reads: bool,
    /// Bytes gathered since the write batch was last released.
    batch: usize,
    /// Bytes gathered between the last two releases of the write batch: sizes the next one.
    last_batch: usize,
}

impl<C: MuxCore, T: Io> Driver<C, T> {
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

    /// Step 1: gather output and run due timers. Returns whether the core is
    /// closed and its next timeout.
    fn gather(&mut self, cx: &mut Context<'_>, now: Instant) -> (bool, Option<Instant>) {
        let mut g = lock(&self.shared);
        let sh = &mut *g;
        set_waker(&mut sh.driver, cx.waker());
        if sh.core.poll_timeout().is_some_and(|t| t <= now) {
            sh.core.handle_timeout(now);
        }
        if !self.write_failed && self.write_buf.len() < self.write_cap {
            let budget = self.write_cap - self.write_buf.len();
            if self.write_buf.capacity() == 0 && sh.core.wants_transmit() {
                // Sized like the last batch (twice, within bounds): a connection carrying
                // small messages allocates a small batch, one carrying bulk data one of
                // `write_cap` (the batch grows if more comes).
                let want = (2 * self.last_batch).clamp(MIN_BATCH, self.write_cap);
                self.write_buf.reserve(want);
            }
            let before = self.write_buf.len();
            sh.core.poll_transmit(now, &mut self.write_buf, budget);
            sh.gathered += (self.write_buf.len() - before) as u64;
            self.batch += self.write_buf.len() - before;
        }
        sh.written = self.written;
        sh.wake_flushed(&mut self.wake_buf);
        sh.drain_events(&mut self.wake_buf);
        let out = (sh.core.is_closed(), sh.core.poll_timeout());
        drop(g);
        self.wake();
        out
    }

    /// Step 2: write what we owe. Returns whether anything happened.
    fn write_out(&mut self, cx: &mut Context<'_>) -> bool {
        let mut progress = false;
        while !self.write_buf.is_empty() && !self.write_failed {
            match Pin::new(&mut self.io).poll_write(cx, &self.write_buf) {
                Poll::Ready(Ok(0)) => {
                    self.write_failed(io::ErrorKind::WriteZero.into());
                    progress = true;
                }
                Poll::Ready(Ok(n)) => {
                    self.write_buf.advance(n);
                    self.written += n as u64;
                    self.need_flush = true;
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    self.write_failed(e);
                    progress = true;
                }
                Poll::Pending => break,
            }
        }
        if self.need_flush && self.write_buf.is_empty() && !self.write_failed {
            match Pin::new(&mut self.io).poll_flush(cx) {
                Poll::Ready(Ok(())) => {
                    self.need_flush = false;
                    // All sent: hold no write batch while idle.
                    self.write_buf = BytesMut::new();
                    self.last_batch = std::mem::take(&mut self.batch);
                }
                Poll::Ready(Err(e)) => {
                    self.write_failed(e);
                    progress = true;
                }
                Poll::Pending => {}
            }
        }
        progress
    }

    /// Step 3: read, unless the core is input-blocked. The check and
    /// `read_paused` share one lock with stream operations, so an operation
    /// that ends the block always sees `read_paused` and wakes us. Returns
    /// whether anything happened.
    fn read_in(&mut self, cx: &mut Context<'_>, now: Instant) -> bool {
        let mut progress = false;
        let mut g = lock(&self.shared);
        let sh = &mut *g;
        if sh.read_paused && !sh.core.input_blocked() {
            // Resume: the bytes left in the read buffer first.
            self.read_done = !sh.feed(now, &mut self.read_buf, &mut self.wake_buf);
            progress = true;
        }
        sh.read_paused = sh.core.input_blocked();
        let paused = sh.read_paused || self.read_done;
        drop(g);
        self.wake();
        if paused {
            tracing::trace!("muxer input blocked");
            return progress;
        }
        let res =
            if self.read_buf.is_empty() && self.read_buf.capacity() < PROBE && self.small_reads {
                // Nothing buffered, no read buffer to speak of, and the last read was small:
                // read into the stack first, so that a read that would wait allocates nothing
                // and a small one allocates only what came (a full probe means more is coming:
                // a whole read chunk). Bulk data is read straight into read chunks.
                match poll_read_probe(&mut self.io, cx, self.read_chunk) {
                    Poll::Ready(Ok(got)) => {
                        let n = got.len();
                        if n > 0 {
                            self.read_buf = got;
                        }
                        Poll::Ready(Ok(n))
                    }
                    Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                    Poll::Pending => Poll::Pending,
                }
            } else {
                self.read_buf.reserve(self.read_chunk);
                std::pin::pin!(self.io.read_buf(&mut self.read_buf)).poll(cx)
            };
        if let Poll::Ready(Ok(n)) = res {
            self.small_reads = n < PROBE;
        }
        match res {
            Poll::Ready(Ok(0)) => {
                self.read_ended(None);
                progress = true;
            }
            Poll::Ready(Ok(_)) => {
                // A rejected input ends reading: a failed connection spends
                // no more memory or CPU on what the remote sends; it closes
                // on the core's own deadline.
                self.read_done =
                    !lock(&self.shared).feed(now, &mut self.read_buf, &mut self.wake_buf);
                progress = true;
            }
            Poll::Ready(Err(e)) => {
                self.read_ended(Some(e));
                progress = true;
            }
            Poll::Pending => {
                // Nothing to read: hold no read buffer while idle. Only if
                // empty: a partial frame stays (bytes the core left while
                // input-blocked never get here, as we do not read then).
                if self.read_buf.is_empty() {
                    self.read_buf = BytesMut::new();
                }
            }
        }
        self.wake();
        progress
    }
}

impl<C: MuxCore, T: Io> Future for Driver<C, T> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        for _ in 0..MAX_SPINS {
            let now = now();
            let (closed, deadline) = this.gather(cx, now);

            // 1. Write what we owe.
            let mut progress = this.write_out(cx);

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
                if this.shutdown_done
                    || this.write_failed
                    || now >= deadline
                    || this.poll_timer(cx, deadline)
                {
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

            // 3. Read.
            if !this.read_done {
                progress |= this.read_in(cx, now);
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

/// A multiplexed connection handle: opens and accepts streams. The driver
/// runs on its own task. Dropping the handle closes the connection politely
/// (as [`Connection::close_conn`] without waiting).
pub struct Connection<C: MuxCore> {
    shared: Arc<Mutex<Shared<C>>>,
}

impl<C: MuxCore> std::fmt::Debug for Connection<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").finish_non_exhaustive()
    }
}

impl<C: MuxCore> Connection<C> {
    fn stream(&self, sh: &mut Shared<C>, id: C::StreamId) -> Stream<C> {
        sh.wakers.insert(id, StreamWakers::default());
        Stream {
            shared: self.shared.clone(),
            id,
            write_quota: sh.core.write_quota(),
            written: 0,
        }
    }

    /// Open an outbound stream; waits while the core asks to (yamux: the
    /// ACK backlog is full; mplex never waits).
    pub async fn open_stream(&self) -> Result<Stream<C>, MuxError> {
        poll_fn(|cx| {
            let mut g = lock(&self.shared);
            let sh = &mut *g;
            match sh.core.open() {
                Ok(Some(id)) => {
                    let s = self.stream(sh, id);
                    let w = sh.driver.take();
                    drop(g);
                    w.into_iter().for_each(Waker::wake);
                    Poll::Ready(Ok(s))
                }
                Ok(None) => {
                    register(&mut sh.open_wakers, cx.waker());
                    Poll::Pending
                }
                Err(e) => Poll::Ready(Err(e)),
            }
        })
        .await
    }

    /// Wait for the next inbound stream.
    pub async fn accept_stream(&self) -> Result<Stream<C>, MuxError> {
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

    /// Close politely (whatever the protocol sends on close, flush, shut the
    /// transport down) and wait until the driver has finished.
    pub async fn close_conn(&self) {
        self.with_core_mut(C::close);
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

    /// Inspect the core (counters, RTT, error) under the lock.
    pub fn with_core<R>(&self, f: impl FnOnce(&C) -> R) -> R {
        f(&lock(&self.shared).core)
    }

    /// Act on the core under the lock (e.g. yamux's `go_away`), then wake the
    /// driver so whatever that queued goes out.
    pub fn with_core_mut<R>(&self, f: impl FnOnce(&mut C) -> R) -> R {
        let mut g = lock(&self.shared);
        let r = f(&mut g.core);
        let w = g.driver.take();
        drop(g);
        w.into_iter().for_each(Waker::wake);
        r
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

impl<C: MuxCore> Drop for Connection<C> {
    fn drop(&mut self) {
        self.with_core_mut(C::close);
    }
}

impl<C: MuxCore> MuxedConn for Connection<C> {
    fn open(&self) -> BoxFut<'_, Result<BoxStream, MuxError>> {
        Box::pin(async move { self.open_stream().await.map(|s| Box::new(s) as BoxStream) })
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
        lock(&self.shared).core.stats()
    }
}

/// A multiplexed stream: tokio `AsyncRead` + `AsyncWrite`; `poll_shutdown`
/// half-closes it; [`MuxedStream::reset`] resets it. Errors are the core's
/// stream errors as `io::Error` (a reset is `ConnectionReset`). Written data
/// belongs to the driver, which sends it without further prompting;
/// `poll_flush` waits until at most [`DriverConfig::flush_low_water`] of it is
/// left unwritten.
///
/// [`DriverConfig::flush_low_water`]: crate::DriverConfig::flush_low_water
pub struct Stream<C: MuxCore> {
    shared: Arc<Mutex<Shared<C>>>,
    id: C::StreamId,
    /// Bytes `poll_write` accepts in a row before it yields once
    /// ([`MuxCore::write_quota`]).
    write_quota: Option<usize>,
    /// Bytes accepted since `poll_write` last returned `Pending`.
    written: usize,
}

impl<C: MuxCore> std::fmt::Debug for Stream<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl<C: MuxCore> Stream<C> {
    /// The stream id.
    pub fn id(&self) -> C::StreamId {
        self.id
    }

    /// Run `op` on the core; on success wake the driver if the core now has
    /// output (or input may resume); on `Blocked` park `cx` in the slot
    /// `slot` picks.
    fn op<R>(
        &self,
        cx: &mut Context<'_>,
        op: impl FnOnce(&mut C, C::StreamId) -> Result<R, C::StreamError>,
        slot: fn(&mut StreamWakers) -> &mut Option<Waker>,
    ) -> Poll<io::Result<R>> {
        let mut g = lock(&self.shared);
        let sh = &mut *g;
        match op(&mut sh.core, self.id) {
            Ok(r) => {
                let w = sh.driver_if_needed();
                drop(g);
                w.into_iter().for_each(Waker::wake);
                Poll::Ready(Ok(r))
            }
            Err(e) if e.is_blocked() => {
                set_waker(slot(sh.wakers.entry(self.id).or_default()), cx.waker());
                Poll::Pending
            }
            Err(e) => Poll::Ready(Err(e.to_io_error())),
        }
    }
}

impl<C: MuxCore> AsyncRead for Stream<C> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        let remaining = buf.remaining();
        let read = |c: &mut C, id| {
            // Initialize (zero) only what this read can fill; at least one byte, so an
            // empty read still means end-of-file.
            let n = c.readable(id).clamp(1, remaining);
            c.read(id, buf.initialize_unfilled_to(n))
        };
        match self.op(cx, read, |w| &mut w.read) {
            Poll::Ready(Ok(n)) => {
                buf.advance(n);
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<C: MuxCore> AsyncWrite for Stream<C> {
    /// Queues data for the driver. For a muxer without flow control
    /// ([`MuxCore::write_quota`] set): when the driver drains the send buffer
    /// concurrently (another worker thread), a `write_all` could go on within
    /// one poll of its task for as long as it has data, starving whatever
    /// else that task does (typically reading the answer). So after the
    /// quota accepted without a `Pending`, it yields once (wakes itself,
    /// returns `Pending`).
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Some(quota) = self.write_quota
            && !data.is_empty()
            && self.written >= quota
        {
            self.written = 0;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let r = self.op(cx, |c, id| c.write(id, data), |w| &mut w.write);
        match &r {
            Poll::Ready(Ok(n)) => self.written += n,
            Poll::Pending => self.written = 0,
            Poll::Ready(Err(_)) => {}
        }
        r
    }

    /// Ready once at most [`DriverConfig::flush_low_water`] of the bytes written before
    /// it are still in the muxer (in the core or the driver's write buffer), not yet
    /// written to the transport; an error if the connection ends first.
    ///
    /// [`DriverConfig::flush_low_water`]: crate::DriverConfig::flush_low_water
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut g = lock(&self.shared);
        let sh = &mut *g;
        // A flush already waiting keeps the target it fixed; most flushes never wait.
        let waiting = sh.flushing.get(&self.id).map(|f| f.target);
        let target = match waiting {
            Some(Some(t)) => Some(t),
            _ => sh.flush_target(self.id),
        };
        if target.is_some_and(|t| sh.written >= t) {
            if waiting.is_some() {
                sh.flushing.remove(&self.id);
            }
            return Poll::Ready(Ok(()));
        }
        if sh.driver_done {
            sh.flushing.remove(&self.id);
            return Poll::Ready(Err(io::ErrorKind::BrokenPipe.into()));
        }
        let f = sh.flushing.entry(self.id).or_insert(Flush {
            target: None,
            waker: None,
        });
        f.target = target;
        set_waker(&mut f.waker, cx.waker());
        let w = sh.driver.take();
        drop(g);
        w.into_iter().for_each(Waker::wake);
        Poll::Pending
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // `finish` never blocks; the slot is unused.
        self.op(cx, |c, id| c.finish(id), |w| &mut w.write)
    }
}

impl<C: MuxCore> MuxedStream for Stream<C> {
    fn reset(&mut self) {
        let mut g = lock(&self.shared);
        g.core.reset(self.id);
        let w = g.driver_if_needed();
        drop(g);
        w.into_iter().for_each(Waker::wake);
    }
    fn readable(&self) -> usize {
        lock(&self.shared).core.readable(self.id)
    }
}

impl<C: MuxCore> Drop for Stream<C> {
    fn drop(&mut self) {
        let mut g = lock(&self.shared);
        g.core.detach(self.id);
        g.wakers.remove(&self.id);
        g.flushing.remove(&self.id);
        let w = g.driver_if_needed();
        drop(g);
        w.into_iter().for_each(Waker::wake);
    }
}
