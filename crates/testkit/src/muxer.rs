//! The muxer conformance suite (go-libp2p's `p2p/muxer/testsuite` idea, with
//! resource accounting built in).
//!
//! Every case takes an `Arc<dyn MuxerUpgrade>`, builds a fresh
//! [`connected_pair`] (initiator and responder over an in-memory
//! [`tokio::io::duplex`] pipe), exercises it only through the seam traits
//! ([`MuxedConn`], [`plexus_core::MuxedStream`]) and finally waits, bounded,
//! until [`MuxedConn::stats`] equals [`MuxStats::default()`] on both sides
//! ([`assert_idle`]). A case that hangs fails after [`CASE_TIMEOUT`]; every
//! single wait that must be prompt fails after [`PROMPT`].
//!
//! # Running it
//! One test per case (preferred: readable failures):
//!
//! ```ignore
//! plexus_testkit::muxer_conformance_tests!(plexus_yamux::YamuxConfig::default());
//! ```
//!
//! or one case by hand, or all of them in one test with [`run_all`]:
//!
//! ```ignore
//! #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
//! async fn reset() {
//!     let muxer: Arc<dyn MuxerUpgrade> = Arc::new(MyMuxer::default());
//!     plexus_testkit::muxer::reset_by_initiator(muxer).await;
//! }
//! ```
//!
//! Every function here must be called inside a tokio runtime (muxers spawn
//! their driver on it).
//!
//! # What a muxer must do to pass
//! - `open` may return before the remote accepted; data written on such a
//!   stream is delivered once the remote accepts it.
//! - `poll_shutdown` half-closes: later writes fail, the remote reads EOF
//!   after the data, and reading goes on until the remote closes too.
//! - `reset()` aborts both ways: later local reads and writes fail, and the
//!   remote's reads and writes fail (an error, never EOF).
//! - When the transport dies, pending and later stream reads and writes fail
//!   (never EOF: a cut-off stream must not look complete), `accept` and
//!   `open` fail, and nothing hangs. The same holds after
//!   [`MuxedConn::close`] for streams that were still open.
//! - Once every stream was closed both ways or reset and the handles were
//!   dropped, all [`MuxStats`] counters return to zero (and they are live:
//!   [`open_before_accept`] checks that `open_streams`, `pending_accepts` and
//!   `buffered_bytes` count streams waiting to be accepted).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use plexus_core::{BoxFut, BoxStream, MuxStats, MuxedConn, MuxerUpgrade, Role};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Capacity of each direction of the in-memory pipe between the two
/// connections (like a socket buffer: small enough that a muxer which stops
/// reading its transport stalls the other side).
pub const DUPLEX_BUFFER: usize = 64 * 1024;

/// How long [`assert_idle`] waits for the counters to return to zero.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long any single step that must be prompt may take (an error surfacing
/// after a reset or a dead transport, an accept, a close).
pub const PROMPT: Duration = Duration::from_secs(5);

/// The bound on a whole case: a hang fails the case instead of the test run.
pub const CASE_TIMEOUT: Duration = Duration::from_secs(60);

/// Streams in [`stress_1000_streams_10_msgs`].
pub const STRESS_STREAMS: usize = 1000;
/// Messages per stream in [`stress_1000_streams_10_msgs`].
pub const STRESS_MSGS: usize = 10;
/// Bytes per message in [`stress_1000_streams_10_msgs`].
pub const STRESS_MSG_LEN: usize = 128;
/// Streams in flight at once in [`stress_1000_streams_10_msgs`]: below every
/// default stream limit (`MuxLimits::max_streams` 512, the accept and ACK
/// backlogs 256), so the case tests concurrency, not limits.
pub const STRESS_CONCURRENCY: usize = 100;

/// Messages in [`many_small_messages`].
pub const SMALL_MSGS: usize = 10_000;
/// Bytes per message in [`many_small_messages`].
pub const SMALL_MSG_LEN: usize = 16;

/// Size of the single write in [`one_large_message`].
pub const LARGE_MSG_LEN: usize = 32 * 1024 * 1024;

/// One conformance case: its name (also the name of its `pub async fn` in
/// this module) and a function running it.
#[derive(Clone, Copy)]
pub struct Case {
    /// The case's name, e.g. `"simple_write_read"`.
    pub name: &'static str,
    /// Run the case on fresh connections made by the muxer; panics on failure.
    pub run: fn(Arc<dyn MuxerUpgrade>) -> BoxFut<'static, ()>,
}

impl std::fmt::Debug for Case {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Case").field("name", &self.name).finish()
    }
}

macro_rules! cases {
    ($($name:ident),+ $(,)?) => {
        /// Every case of the suite, in the order [`run_all`] runs them.
        pub const CASES: &[Case] = &[
            $(Case { name: stringify!($name), run: |m| Box::pin($name(m)) }),+
        ];
    };
}

cases!(
    simple_write_read,
    write_after_close,
    half_close_initiator,
    half_close_responder,
    reset_by_initiator,
    reset_by_responder,
    open_before_accept,
    stress_1000_streams_10_msgs,
    many_small_messages,
    one_large_message,
    peer_vanishes_mid_stream,
    close_ends_accept,
    close_with_streams_open,
    drop_after_shutdown_delivers,
    close_delivers_then_the_remote_sees_the_end,
    flush_waits_until_the_transport_took_the_data,
    flush_is_not_held_back_by_later_traffic,
    readable_counts_what_arrived,
);

/// One `#[tokio::test(flavor = "multi_thread", worker_threads = 2)]` per
/// conformance case, each named after its case, in the calling module.
///
/// The argument is an expression whose value implements
/// [`plexus_core::MuxerUpgrade`]; it is evaluated once per test (each case
/// starts its own connections from it):
///
/// ```ignore
/// //! crates/yamux/tests/conformance.rs
/// plexus_testkit::muxer_conformance_tests!(plexus_yamux::YamuxConfig::default());
/// ```
///
/// The caller needs no tokio dependency of its own for this. Adding a case to
/// the suite without adding it here fails to compile.
#[macro_export]
macro_rules! muxer_conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::muxer_conformance_tests!(@cases ($factory)
            simple_write_read,
            write_after_close,
            half_close_initiator,
            half_close_responder,
            reset_by_initiator,
            reset_by_responder,
            open_before_accept,
            stress_1000_streams_10_msgs,
            many_small_messages,
            one_large_message,
            peer_vanishes_mid_stream,
            close_ends_accept,
            close_with_streams_open,
            drop_after_shutdown_delivers,
            close_delivers_then_the_remote_sees_the_end,
            flush_waits_until_the_transport_took_the_data,
            flush_is_not_held_back_by_later_traffic,
            readable_counts_what_arrived,
        );
    };
    (@cases ($factory:expr) $($case:ident),+ $(,)?) => {
        $(
            #[$crate::__private::tokio::test(
                flavor = "multi_thread",
                worker_threads = 2,
                crate = "::plexus_testkit::__private::tokio"
            )]
            async fn $case() {
                let muxer: ::std::sync::Arc<dyn $crate::__private::MuxerUpgrade> =
                    ::std::sync::Arc::new($factory);
                $crate::muxer::$case(muxer).await;
            }
        )+
        const _: () = ::std::assert!(
            [$(::std::stringify!($case)),+].len() == $crate::muxer::CASES.len(),
            "muxer_conformance_tests! does not list every case of plexus_testkit::muxer::CASES",
        );
    };
}

/// Run every case in [`CASES`], each on a fresh pair, one after the other.
/// Panics at the first failing case (its name is printed to stderr first).
/// Prefer [`muxer_conformance_tests!`](crate::muxer_conformance_tests), which
/// makes one test per case.
pub async fn run_all(muxer: Arc<dyn MuxerUpgrade>) {
    for case in CASES {
        eprintln!("muxer conformance: {}", case.name);
        (case.run)(muxer.clone()).await;
    }
}

/// Start `muxer` on both ends of an in-memory pipe: `(initiator, responder)`.
/// Must be called inside a tokio runtime.
pub fn connected_pair(muxer: &dyn MuxerUpgrade) -> (Box<dyn MuxedConn>, Box<dyn MuxedConn>) {
    let (x, y) = tokio::io::duplex(DUPLEX_BUFFER);
    (
        muxer.start(Box::new(x), Role::Initiator),
        muxer.start(Box::new(y), Role::Responder),
    )
}

/// Like [`connected_pair`], but the initiator's transport can be cut with the
/// returned [`Severer`] (the peer crashing or its socket dying). Must be
/// called inside a tokio runtime.
pub fn severable_pair(
    muxer: &dyn MuxerUpgrade,
) -> (Box<dyn MuxedConn>, Box<dyn MuxedConn>, Severer) {
    let (x, y) = tokio::io::duplex(DUPLEX_BUFFER);
    let state = Arc::new(Mutex::new(SeverState {
        io: Some(x),
        read: None,
        write: None,
    }));
    (
        muxer.start(Box::new(SeverableIo(state.clone())), Role::Initiator),
        muxer.start(Box::new(y), Role::Responder),
        Severer(state),
    )
}

/// Cuts the initiator's transport of a [`severable_pair`].
#[derive(Debug)]
pub struct Severer(Arc<Mutex<SeverState>>);

impl Severer {
    /// Drop the initiator's end of the pipe: the responder's transport reads
    /// EOF and its writes fail; the initiator's transport fails every read and
    /// write from now on (pending ones are woken). Idempotent.
    pub fn sever(&self) {
        let (io, read, write) = {
            let mut g = lock(&self.0);
            (g.io.take(), g.read.take(), g.write.take())
        };
        drop(io);
        read.into_iter().chain(write).for_each(Waker::wake);
    }
}

#[derive(Debug)]
struct SeverState {
    io: Option<DuplexStream>,
    read: Option<Waker>,
    write: Option<Waker>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn severed() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "transport severed by the test",
    )
}

/// The initiator's transport in a [`severable_pair`].
struct SeverableIo(Arc<Mutex<SeverState>>);

impl SeverableIo {
    fn poll_with<R>(
        &self,
        cx: &mut Context<'_>,
        read_side: bool,
        f: impl FnOnce(Pin<&mut DuplexStream>, &mut Context<'_>) -> Poll<io::Result<R>>,
    ) -> Poll<io::Result<R>> {
        let mut g = lock(&self.0);
        let st = &mut *g;
        let Some(io) = st.io.as_mut() else {
            return Poll::Ready(Err(severed()));
        };
        let res = f(Pin::new(io), cx);
        if res.is_pending() {
            let slot = if read_side {
                &mut st.read
            } else {
                &mut st.write
            };
            match slot {
                Some(w) if w.will_wake(cx.waker()) => {}
                _ => *slot = Some(cx.waker().clone()),
            }
        }
        res
    }
}

impl AsyncRead for SeverableIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.poll_with(cx, true, |io, cx| io.poll_read(cx, buf))
    }
}

impl AsyncWrite for SeverableIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_with(cx, false, |io, cx| io.poll_write(cx, data))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_with(cx, false, |io, cx| io.poll_flush(cx))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.poll_with(cx, false, |io, cx| io.poll_shutdown(cx))
    }
}

/// A transport that writes at most [`SLOW_WRITE`] bytes per millisecond (reads pass
/// through): the link, not the peer, is the bottleneck, so the writer's muxer stays full.
struct SlowWriter {
    io: DuplexStream,
    next: Pin<Box<tokio::time::Sleep>>,
}

/// Bytes per millisecond a [`SlowWriter`] writes.
const SLOW_WRITE: usize = 16 * 1024;

impl AsyncRead for SlowWriter {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for SlowWriter {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.next.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let n = data.len().min(SLOW_WRITE);
        let r = Pin::new(&mut self.io).poll_write(cx, &data[..n]);
        if matches!(r, Poll::Ready(Ok(_))) {
            let at = Instant::now() + Duration::from_millis(1);
            self.next.as_mut().reset(at);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Wait (bounded by [`IDLE_TIMEOUT`], polling every few milliseconds) until
/// every counter of `conn` is zero; panic with the last stats otherwise.
/// `side` names the connection in the message.
pub async fn assert_idle(conn: &dyn MuxedConn, side: &str) {
    wait_stats(conn, side, IDLE_TIMEOUT, "all counters zero", |s| {
        s == MuxStats::default()
    })
    .await;
}

/// Wait (bounded by `limit`, polling every few milliseconds) until `pred`
/// holds for `conn.stats()`; panic with the last stats otherwise.
pub async fn wait_stats(
    conn: &dyn MuxedConn,
    side: &str,
    limit: Duration,
    what: &str,
    pred: impl Fn(MuxStats) -> bool,
) {
    let deadline = Instant::now() + limit;
    loop {
        let s = conn.stats();
        if pred(s) {
            return;
        }
        if Instant::now() >= deadline {
            panic!("{side}: expected {what} within {limit:?}, stats are {s:?}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `fut`, or a panic naming `what` if it takes longer than `limit`.
pub async fn within<F: Future>(limit: Duration, what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(limit, fut).await {
        Ok(v) => v,
        Err(_) => panic!("{what}: no result within {limit:?} (hang)"),
    }
}

/// `len` bytes that differ with `seed` and along the buffer.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            // xorshift64
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn assert_bytes(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {} bytes, first differing byte at {first:?}",
            got.len(),
            want.len()
        );
    }
}

async fn case(name: &str, body: impl Future<Output = ()>) {
    within(CASE_TIMEOUT, name, body).await;
}

async fn join<T>(h: JoinHandle<T>) -> T {
    joined(h.await)
}

/// A task's output, re-raising its panic.
fn joined<T>(r: Result<T, tokio::task::JoinError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => match e.try_into_panic() {
            Ok(p) => std::panic::resume_unwind(p),
            Err(e) => panic!("task failed: {e}"),
        },
    }
}

async fn open(conn: &dyn MuxedConn, who: &str) -> BoxStream {
    match within(PROMPT, &format!("{who}: open"), conn.open()).await {
        Ok(s) => s,
        Err(e) => panic!("{who}: open failed: {e}"),
    }
}

async fn accept(conn: &dyn MuxedConn, who: &str) -> BoxStream {
    match within(PROMPT, &format!("{who}: accept"), conn.accept()).await {
        Ok(s) => s,
        Err(e) => panic!("{who}: accept failed: {e}"),
    }
}

async fn write_all(s: &mut BoxStream, data: &[u8], what: &str) {
    if let Err(e) = s.write_all(data).await {
        panic!("{what}: write failed: {e}");
    }
    if let Err(e) = s.flush().await {
        panic!("{what}: flush failed: {e}");
    }
}

async fn shutdown(s: &mut BoxStream, what: &str) {
    if let Err(e) = s.shutdown().await {
        panic!("{what}: shutdown failed: {e}");
    }
}

async fn read_to_end(s: &mut BoxStream, what: &str) -> Vec<u8> {
    let mut v = Vec::new();
    if let Err(e) = s.read_to_end(&mut v).await {
        panic!("{what}: read to EOF failed after {} bytes: {e}", v.len());
    }
    v
}

async fn read_exact(s: &mut BoxStream, n: usize, what: &str) -> Vec<u8> {
    let mut v = vec![0; n];
    if let Err(e) = s.read_exact(&mut v).await {
        panic!("{what}: reading {n} bytes failed: {e}");
    }
    v
}

async fn expect_eof(s: &mut BoxStream, what: &str) {
    let mut b = [0u8; 1];
    match s.read(&mut b).await {
        Ok(0) => {}
        Ok(_) => panic!("{what}: expected EOF, got more data"),
        Err(e) => panic!("{what}: expected EOF, got error {e}"),
    }
}

/// Read until an error, allowing at most `max_data` bytes of data before it;
/// panic on EOF (a cut-off or reset stream must not look complete).
async fn expect_read_error(s: &mut BoxStream, max_data: usize, what: &str) -> io::Error {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0;
    loop {
        match s.read(&mut buf).await {
            Ok(0) => panic!("{what}: read returned EOF after {total} bytes, expected an error"),
            Ok(n) => {
                total += n;
                assert!(
                    total <= max_data,
                    "{what}: read {total} bytes, expected an error after at most {max_data}"
                );
            }
            Err(e) => return e,
        }
    }
}

async fn expect_write_error(s: &mut BoxStream, what: &str) {
    // Callers make sure the muxer already knows (the remote's reset was
    // read, the connection is closed), so even one byte must fail.
    if s.write_all(b"x").await.is_ok() && s.flush().await.is_ok() {
        panic!("{what}: write succeeded, expected an error");
    }
}

async fn finish(a: &dyn MuxedConn, b: &dyn MuxedConn) {
    assert_idle(a, "initiator").await;
    assert_idle(b, "responder").await;
    within(PROMPT, "initiator: close", a.close()).await;
    within(PROMPT, "responder: close", b.close()).await;
    assert!(a.is_closed(), "initiator: is_closed() false after close()");
    assert!(b.is_closed(), "responder: is_closed() false after close()");
}

/// `MuxedStream::readable` counts the bytes that arrived and were not read yet: 0 on a
/// fresh stream, what the remote wrote once it arrived (never more), less what was read,
/// and 0 again when all was read.
pub async fn readable_counts_what_arrived(muxer: Arc<dyn MuxerUpgrade>) {
    case("readable_counts_what_arrived", async move {
        let (a, b) = connected_pair(&*muxer);
        let mut sa = open(&*a, "initiator").await;
        write_all(&mut sa, b"hi", "initiator").await;
        let mut sb = accept(&*b, "responder").await;
        let mut two = [0u8; 2];
        within(PROMPT, "responder: read", sb.read_exact(&mut two))
            .await
            .expect("read");
        assert_eq!(sb.readable(), 0, "all read");
        let data = pattern(12, 20_000);
        write_all(&mut sa, &data, "initiator").await;
        let deadline = tokio::time::Instant::now() + PROMPT;
        while sb.readable() < data.len() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "responder: {} of {} bytes arrived",
                sb.readable(),
                data.len()
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(sb.readable(), data.len(), "no more than was written");
        let mut part = vec![0u8; 5_000];
        within(PROMPT, "responder: read", sb.read_exact(&mut part))
            .await
            .expect("read");
        assert_eq!(sb.readable(), data.len() - part.len());
        let mut rest = vec![0u8; data.len() - part.len()];
        within(PROMPT, "responder: read", sb.read_exact(&mut rest))
            .await
            .expect("read");
        assert_eq!(sb.readable(), 0);
        part.extend_from_slice(&rest);
        assert_bytes(&part, &data, "responder");
        drop((sa, sb));
        finish(&*a, &*b).await;
    })
    .await;
}

/// The initiator opens a stream, writes 4 KiB and half-closes; the responder
/// accepts, reads exactly that to EOF, echoes it and half-closes; the
/// initiator reads the echo to EOF. Counters back to zero.
pub async fn simple_write_read(muxer: Arc<dyn MuxerUpgrade>) {
    case("simple_write_read", async move {
        let (a, b) = connected_pair(&*muxer);
        let req = pattern(1, 4096);
        let mut sa = open(&*a, "initiator").await;
        write_all(&mut sa, &req, "initiator").await;
        shutdown(&mut sa, "initiator").await;
        let mut sb = accept(&*b, "responder").await;
        let got = read_to_end(&mut sb, "responder").await;
        assert_bytes(&got, &req, "responder: request");
        write_all(&mut sb, &got, "responder").await;
        shutdown(&mut sb, "responder").await;
        let back = read_to_end(&mut sa, "initiator").await;
        assert_bytes(&back, &req, "initiator: echo");
        drop((sa, sb));
        finish(&*a, &*b).await;
    })
    .await;
}

/// Writing after `shutdown` fails on both sides; the remote reads the data
/// written before it, then EOF (and EOF again on the next read); reading
/// still works after our own shutdown.
pub async fn write_after_close(muxer: Arc<dyn MuxerUpgrade>) {
    case("write_after_close", async move {
        let (a, b) = connected_pair(&*muxer);
        let mut sa = open(&*a, "initiator").await;
        write_all(&mut sa, b"hello", "initiator").await;
        shutdown(&mut sa, "initiator").await;
        assert!(
            sa.write_all(b"again").await.is_err(),
            "initiator: write after shutdown succeeded"
        );
        let mut sb = accept(&*b, "responder").await;
        let got = read_to_end(&mut sb, "responder").await;
        assert_bytes(&got, b"hello", "responder: data before FIN");
        expect_eof(&mut sb, "responder: second read after EOF").await;
        write_all(&mut sb, b"bye", "responder").await;
        shutdown(&mut sb, "responder").await;
        assert!(
            sb.write_all(b"again").await.is_err(),
            "responder: write after shutdown succeeded"
        );
        let back = read_to_end(&mut sa, "initiator").await;
        assert_bytes(&back, b"bye", "initiator: data after own shutdown");
        drop((sa, sb));
        finish(&*a, &*b).await;
    })
    .await;
}

/// The initiator writes 64 KiB and half-closes first; the responder reads it
/// to EOF and then sends 1 MiB (several flow-control windows), which the
/// initiator still reads in full.
pub async fn half_close_initiator(muxer: Arc<dyn MuxerUpgrade>) {
    case("half_close_initiator", async move {
        let (a, b) = connected_pair(&*muxer);
        let req = pattern(2, 64 * 1024);
        let resp = pattern(3, 1024 * 1024);
        let mut sa = open(&*a, "initiator").await;
        write_all(&mut sa, &req, "initiator").await;
        shutdown(&mut sa, "initiator").await;
        let mut sb = accept(&*b, "responder").await;
        let got = read_to_end(&mut sb, "responder").await;
        assert_bytes(&got, &req, "responder: request");
        let ((), back) = tokio::join!(
            async {
                write_all(&mut sb, &resp, "responder: after remote FIN").await;
                shutdown(&mut sb, "responder").await;
            },
            read_to_end(&mut sa, "initiator: after own shutdown"),
        );
        assert_bytes(&back, &resp, "initiator: response after own shutdown");
        drop((sa, sb));
        finish(&*a, &*b).await;
    })
    .await;
}

/// The initiator writes 3 MiB, half-closes and drops its handle at once;
/// every byte still reaches the responder, which reads to EOF and drops its
/// handle too; then neither side tracks the stream any more.
pub async fn drop_after_shutdown_delivers(muxer: Arc<dyn MuxerUpgrade>) {
    case("drop_after_shutdown_delivers", async move {
        let (a, b) = connected_pair(&*muxer);
        let data = pattern(9, 3 << 20);
        let mut sa = open(&*a, "initiator").await;
        let writer = tokio::spawn({
            let data = data.clone();
            async move {
                write_all(&mut sa, &data, "initiator").await;
                shutdown(&mut sa, "initiator").await;
                drop(sa);
            }
        });
        let mut sb = accept(&*b, "responder").await;
        let got = read_to_end(&mut sb, "responder").await;
        join(writer).await;
        assert_bytes(&got, &data, "responder: all sent before the drop");
        drop(sb);
        finish(&*a, &*b).await;
    })
    .await;
}

/// The initiator writes, half-closes and closes the connection at once:
/// opening fails from then on; the responder still accepts the stream and
/// reads it to its end, then its `accept` fails (whatever the protocol says
/// on close: a go-away, or the transport's end) and it reports closed.
pub async fn close_delivers_then_the_remote_sees_the_end(muxer: Arc<dyn MuxerUpgrade>) {
    case("close_delivers_then_the_remote_sees_the_end", async move {
        let (a, b) = connected_pair(&*muxer);
        let mut sa = open(&*a, "initiator").await;
        write_all(&mut sa, b"bye", "initiator").await;
        shutdown(&mut sa, "initiator").await;
        within(PROMPT, "initiator: close", a.close()).await;
        assert!(a.is_closed(), "initiator: closed");
        assert!(
            matches!(a.open().await, Err(plexus_core::MuxError::Closed)),
            "initiator: open after close"
        );
        let mut sb = accept(&*b, "responder").await;
        let got = read_to_end(&mut sb, "responder").await;
        assert_bytes(&got, b"bye", "responder: data sent before the close");
        let end = within(PROMPT, "responder: accept after the close", b.accept()).await;
        assert!(
            end.is_err(),
            "responder: accept must fail after the remote closed"
        );
        drop((sa, sb));
        wait_closed(&*b, "responder").await;
    })
    .await;
}

/// The responder half-closes first: it reads the initiator's 64 KiB, sends
/// 1 MiB and half-closes; the initiator reads it to EOF, then sends 1 MiB
/// more, which the responder still reads in full after its own shutdown.
pub async fn half_close_responder(muxer: Arc<dyn MuxerUpgrade>) {
    case("half_close_responder", async move {
        let (a, b) = connected_pair(&*muxer);
        let req = pattern(4, 64 * 1024);
        let resp = pattern(5, 1024 * 1024);
        let more = pattern(6, 1024 * 1024);
        let mut sa = open(&*a, "initiator").await;
        write_all(&mut sa, &req, "initiator").await;
        let mut sb = accept(&*b, "responder").await;
        let got = read_exact(&mut sb, req.len(), "responder").await;
        assert_bytes(&got, &req, "responder: request");
        let ((), back) = tokio::join!(
            async {
                write_all(&mut sb, &resp, "responder").await;
                shutdown(&mut sb, "responder").await;
            },
            read_to_end(&mut sa, "initiator"),
        );
        assert_bytes(&back, &resp, "initiator: response");
        let ((), rest) = tokio::join!(
            async {
                write_all(&mut sa, &more, "initiator: after remote FIN").await;
                shutdown(&mut sa, "initiator").await;
            },
            read_to_end(&mut sb, "responder: after own shutdown"),
        );
        assert_bytes(&rest, &more, "responder: data after own shutdown");
        drop((sa, sb));
        finish(&*a, &*b).await;
    })
    .await;
}

/// The initiator resets a stream with data in flight both ways.
/// See [`reset_by_responder`] for what is asserted.
pub async fn reset_by_initiator(muxer: Arc<dyn MuxerUpgrade>) {
    case("reset_by_initiator", reset_case(muxer, Role::Initiator)).await;
}

/// The responder resets a stream with data in flight both ways: after
/// `reset()` the resetting side's own reads and writes fail; the other side's
/// reads fail (possibly after data sent before the reset, never with EOF)
/// and then its writes fail. Data buffered on either side is released:
/// counters back to zero.
pub async fn reset_by_responder(muxer: Arc<dyn MuxerUpgrade>) {
    case("reset_by_responder", reset_case(muxer, Role::Responder)).await;
}

async fn reset_case(muxer: Arc<dyn MuxerUpgrade>, resetter: Role) {
    let (a, b) = connected_pair(&*muxer);
    let mut sa = open(&*a, "initiator").await;
    write_all(&mut sa, b"hello", "initiator").await;
    let mut sb = accept(&*b, "responder").await;
    let got = read_exact(&mut sb, 5, "responder").await;
    assert_bytes(&got, b"hello", "responder");
    let (mut r, mut o, rn, on) = match resetter {
        Role::Initiator => (sa, sb, "initiator (resetting)", "responder (remote)"),
        Role::Responder => (sb, sa, "responder (resetting)", "initiator (remote)"),
    };
    // Unread data both ways when the reset happens.
    let in_flight = 8 * 1024;
    write_all(&mut o, &pattern(7, in_flight), on).await;
    write_all(&mut r, &pattern(8, in_flight), rn).await;
    r.reset();
    expect_write_error(&mut r, &format!("{rn}: write after reset()")).await;
    let mut buf = [0u8; 64];
    match within(PROMPT, rn, r.read(&mut buf)).await {
        Err(_) => {}
        Ok(n) => panic!("{rn}: read after reset() returned Ok({n}), expected an error"),
    }
    within(
        PROMPT,
        &format!("{on}: read after remote reset"),
        expect_read_error(&mut o, in_flight, &format!("{on}: read after remote reset")),
    )
    .await;
    within(
        PROMPT,
        &format!("{on}: write after remote reset"),
        expect_write_error(&mut o, &format!("{on}: write after remote reset")),
    )
    .await;
    drop((r, o));
    finish(&*a, &*b).await;
}

/// Streams opened, written and half-closed before the remote accepts them
/// are delivered: the responder first reports them (`pending_accepts` 8,
/// `buffered_bytes` 8 × 1000, `open_streams` 8; the initiator
/// `open_streams` 8), then accepts all 8 and reads each stream's own data.
pub async fn open_before_accept(muxer: Arc<dyn MuxerUpgrade>) {
    const N: usize = 8;
    const LEN: usize = 1000;
    case("open_before_accept", async move {
        let (a, b) = connected_pair(&*muxer);
        let mut outbound = Vec::new();
        for i in 0..N {
            let mut s = open(&*a, "initiator").await;
            let mut msg = pattern(100 + i as u64, LEN);
            msg[0] = i as u8;
            write_all(&mut s, &msg, "initiator").await;
            shutdown(&mut s, "initiator").await;
            outbound.push(s);
        }
        wait_stats(
            &*b,
            "responder",
            PROMPT,
            "8 streams waiting to be accepted with their data buffered",
            |s| s.pending_accepts == N && s.buffered_bytes == N * LEN && s.open_streams == N,
        )
        .await;
        let sa = a.stats();
        assert_eq!(sa.open_streams, N, "initiator: open_streams, stats {sa:?}");
        let mut seen = [false; N];
        for _ in 0..N {
            let mut s = accept(&*b, "responder").await;
            let got = read_to_end(&mut s, "responder").await;
            assert_eq!(got.len(), LEN, "responder: stream length");
            let i = usize::from(got[0]);
            assert!(i < N && !seen[i], "responder: stream {i} seen twice");
            seen[i] = true;
            let mut want = pattern(100 + i as u64, LEN);
            want[0] = i as u8;
            assert_bytes(&got, &want, "responder: stream data");
            write_all(&mut s, &[i as u8], "responder").await;
            shutdown(&mut s, "responder").await;
        }
        for (i, mut s) in outbound.into_iter().enumerate() {
            let back = read_to_end(&mut s, "initiator").await;
            assert_bytes(&back, &[i as u8], "initiator: acknowledgement");
        }
        finish(&*a, &*b).await;
    })
    .await;
}

fn stress_msg(stream: usize, msg: usize) -> Vec<u8> {
    let mut m = pattern((stream * STRESS_MSGS + msg) as u64, STRESS_MSG_LEN);
    m[..4].copy_from_slice(&(stream as u32).to_be_bytes());
    m[4..8].copy_from_slice(&(msg as u32).to_be_bytes());
    m
}

/// 1,000 streams × 10 messages of 128 bytes, 100 streams in flight at once on
/// two worker threads: every message is checked by the responder (stream
/// and message index, payload) and echoed, every echo is checked by the
/// initiator; each stream ends with EOF both ways; every stream index
/// arrives exactly once.
pub async fn stress_1000_streams_10_msgs(muxer: Arc<dyn MuxerUpgrade>) {
    case("stress_1000_streams_10_msgs", async move {
        let (a, b) = connected_pair(&*muxer);
        let a: Arc<dyn MuxedConn> = Arc::from(a);
        let b: Arc<dyn MuxedConn> = Arc::from(b);
        let server = tokio::spawn({
            let b = b.clone();
            async move {
                let mut tasks = Vec::with_capacity(STRESS_STREAMS);
                for _ in 0..STRESS_STREAMS {
                    let mut s = accept(&*b, "responder").await;
                    tasks.push(tokio::spawn(async move {
                        let mut idx = None;
                        for m in 0..STRESS_MSGS {
                            let got = read_exact(&mut s, STRESS_MSG_LEN, "responder").await;
                            let i = u32::from_be_bytes([got[0], got[1], got[2], got[3]]) as usize;
                            assert!(i < STRESS_STREAMS, "responder: bad stream index {i}");
                            assert_eq!(*idx.get_or_insert(i), i, "responder: index changed");
                            assert_bytes(&got, &stress_msg(i, m), "responder: message");
                            write_all(&mut s, &got, "responder").await;
                        }
                        expect_eof(&mut s, "responder: after 10 messages").await;
                        shutdown(&mut s, "responder").await;
                        idx.unwrap_or(usize::MAX)
                    }));
                }
                let mut seen = Vec::with_capacity(STRESS_STREAMS);
                for t in tasks {
                    seen.push(join(t).await);
                }
                seen
            }
        });
        let permits = Arc::new(tokio::sync::Semaphore::new(STRESS_CONCURRENCY));
        let mut clients = Vec::with_capacity(STRESS_STREAMS);
        for i in 0..STRESS_STREAMS {
            let permit = permits.clone().acquire_owned().await.expect("semaphore");
            let a = a.clone();
            clients.push(tokio::spawn(async move {
                let _permit = permit;
                let mut s = open(&*a, "initiator").await;
                for m in 0..STRESS_MSGS {
                    let msg = stress_msg(i, m);
                    write_all(&mut s, &msg, "initiator").await;
                    let echo = read_exact(&mut s, STRESS_MSG_LEN, "initiator").await;
                    assert_bytes(&echo, &msg, "initiator: echo");
                }
                shutdown(&mut s, "initiator").await;
                expect_eof(&mut s, "initiator: after 10 echoes").await;
            }));
        }
        for c in clients {
            join(c).await;
        }
        let mut seen = join(server).await;
        seen.sort_unstable();
        assert!(
            seen.iter().copied().eq(0..STRESS_STREAMS),
            "responder: every stream index exactly once"
        );
        finish(&*a, &*b).await;
    })
    .await;
}

/// 10,000 messages of 16 bytes on one stream, each its own `write_all`,
/// read concurrently 16 bytes at a time and each checked (index and
/// payload), then EOF both ways.
pub async fn many_small_messages(muxer: Arc<dyn MuxerUpgrade>) {
    fn msg(i: usize) -> Vec<u8> {
        let mut m = pattern(i as u64, SMALL_MSG_LEN);
        m[..4].copy_from_slice(&(i as u32).to_be_bytes());
        m
    }
    case("many_small_messages", async move {
        let (a, b) = connected_pair(&*muxer);
        let mut sa = open(&*a, "initiator").await;
        write_all(&mut sa, &msg(0), "initiator").await;
        let mut sb = accept(&*b, "responder").await;
        tokio::join!(
            async {
                for i in 1..SMALL_MSGS {
                    write_all(&mut sa, &msg(i), "initiator").await;
                }
                shutdown(&mut sa, "initiator").await;
            },
            async {
                for i in 0..SMALL_MSGS {
                    let got = read_exact(&mut sb, SMALL_MSG_LEN, "responder").await;
                    assert_bytes(&got, &msg(i), &format!("responder: message {i}"));
                }
                expect_eof(&mut sb, "responder: after the last message").await;
                shutdown(&mut sb, "responder").await;
            },
        );
        expect_eof(&mut sa, "initiator").await;
        drop((sa, sb));
        finish(&*a, &*b).await;
    })
    .await;
}

/// One 32 MiB `write_all` on one stream, read concurrently and compared
/// byte for byte; the responder answers with the length it got.
pub async fn one_large_message(muxer: Arc<dyn MuxerUpgrade>) {
    case("one_large_message", async move {
        let (a, b) = connected_pair(&*muxer);
        let data = pattern(9, LARGE_MSG_LEN);
        let mut sa = open(&*a, "initiator").await;
        write_all(&mut sa, &data[..1], "initiator").await;
        let mut sb = accept(&*b, "responder").await;
        let ((), got) = tokio::join!(
            async {
                write_all(&mut sa, &data[1..], "initiator").await;
                shutdown(&mut sa, "initiator").await;
            },
            read_to_end(&mut sb, "responder"),
        );
        assert_bytes(&got, &data, "responder: large message");
        write_all(&mut sb, &(got.len() as u64).to_be_bytes(), "responder").await;
        shutdown(&mut sb, "responder").await;
        let ack = read_to_end(&mut sa, "initiator").await;
        assert_bytes(
            &ack,
            &(LARGE_MSG_LEN as u64).to_be_bytes(),
            "initiator: ack",
        );
        drop((sa, sb));
        finish(&*a, &*b).await;
    })
    .await;
}

/// Bytes written before the flush in [`flush_waits_until_the_transport_took_the_data`].
pub const FLUSH_MSG_LEN: usize = 200 * 1024;
/// The transport's buffer in [`flush_waits_until_the_transport_took_the_data`].
pub const FLUSH_PIPE: usize = 16 * 1024;
/// The most a flush may leave unwritten (the drivers' default `flush_low_water`).
pub const FLUSH_LOW_WATER: usize = 16 * 1024;

/// A stream's `flush` returns once the data written before it is (nearly) on the wire:
/// over a transport nobody reads (a pipe of [`FLUSH_PIPE`] bytes), a small write flushes
/// at once, but [`FLUSH_MSG_LEN`] bytes do not, however long we wait; once the far end
/// reads, the flush returns, by when at most [`FLUSH_LOW_WATER`] bytes were left
/// unwritten.
pub async fn flush_waits_until_the_transport_took_the_data(muxer: Arc<dyn MuxerUpgrade>) {
    case("flush_waits_until_the_transport_took_the_data", async move {
        let (x, mut far) = tokio::io::duplex(FLUSH_PIPE);
        let a = muxer.start(Box::new(x), Role::Initiator);
        let mut s = open(&*a, "initiator").await;
        write_all(&mut s, b"small", "initiator").await;
        within(PROMPT, "a small flush", s.flush())
            .await
            .expect("a small flush");
        let data = pattern(11, FLUSH_MSG_LEN);
        // Taken at once (within the stream's send buffer and window): no flush yet.
        within(PROMPT, "the large write", s.write_all(&data))
            .await
            .expect("the large write");
        {
            let flush = s.flush();
            tokio::pin!(flush);
            assert!(
                tokio::time::timeout(Duration::from_millis(300), flush.as_mut())
                    .await
                    .is_err(),
                "flush returned while the transport had taken at most {FLUSH_PIPE} of {FLUSH_MSG_LEN} bytes"
            );
            let drained = Arc::new(AtomicUsize::new(0));
            let counter = drained.clone();
            let reader = tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                while let Ok(n) = far.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                    counter.fetch_add(n, Ordering::Relaxed);
                }
            });
            within(PROMPT, "the flush once the far end reads", flush)
                .await
                .expect("the flush");
            // The pipe holds at most FLUSH_PIPE of what the driver wrote.
            let read = drained.load(Ordering::Relaxed);
            assert!(
                read + FLUSH_PIPE + FLUSH_LOW_WATER >= FLUSH_MSG_LEN,
                "flush returned with {} of {FLUSH_MSG_LEN} bytes unwritten",
                FLUSH_MSG_LEN - read - FLUSH_PIPE
            );
            reader.abort();
        }
        drop(s);
    })
    .await;
}

/// A flush completes although another stream keeps the connection busy afterwards: it
/// waits for the bytes written before it, not for an idle connection. Over a link that
/// writes 16 KiB per millisecond, one stream writes [`FLUSH_MSG_LEN`] bytes and flushes
/// while a second writes without pause; the responder reads both.
pub async fn flush_is_not_held_back_by_later_traffic(muxer: Arc<dyn MuxerUpgrade>) {
    case("flush_is_not_held_back_by_later_traffic", async move {
        let (x, y) = tokio::io::duplex(DUPLEX_BUFFER);
        let slow = SlowWriter {
            io: x,
            next: Box::pin(tokio::time::sleep(Duration::ZERO)),
        };
        let a = muxer.start(Box::new(slow), Role::Initiator);
        let b = muxer.start(Box::new(y), Role::Responder);
        let mut bulk = open(&*a, "initiator").await;
        write_all(&mut bulk, b"b", "initiator").await;
        let sb = accept(&*b, "responder").await;
        let mut s = open(&*a, "initiator").await;
        write_all(&mut s, b"s", "initiator").await;
        let ss = accept(&*b, "responder").await;
        // The responder drains both streams for as long as the case runs.
        let drain = |mut r: BoxStream| {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while matches!(r.read(&mut buf).await, Ok(n) if n > 0) {}
            })
        };
        let (d1, d2) = (drain(sb), drain(ss));
        let writer = tokio::spawn(async move {
            let chunk = vec![0x5a; 64 * 1024];
            while bulk.write_all(&chunk).await.is_ok() {}
        });
        // Let the bulk stream fill the muxer first.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let data = pattern(12, FLUSH_MSG_LEN);
        within(PROMPT, "the write", s.write_all(&data))
            .await
            .expect("the write");
        within(PROMPT, "the flush behind a busy stream", s.flush())
            .await
            .expect("the flush");
        writer.abort();
        d1.abort();
        d2.abort();
        drop(s);
        drop((a, b));
    })
    .await;
}

/// The initiator's transport dies (see [`Severer`]) while the responder is
/// blocked reading a half-sent message on one stream and writing (without
/// the initiator reading) on another. Within [`PROMPT`]: the responder's
/// read fails (an error, not EOF) and its write fails; its `accept` and
/// `open` fail and `is_closed()` turns true; on the initiator, `accept`, a
/// stream read and a stream write fail too. Once the stream handles are
/// dropped, both sides' counters are back to zero.
pub async fn peer_vanishes_mid_stream(muxer: Arc<dyn MuxerUpgrade>) {
    case("peer_vanishes_mid_stream", async move {
        let (a, b, severer) = severable_pair(&*muxer);
        // Stream 1: the initiator sent half of a 2000-byte message.
        let mut sa1 = open(&*a, "initiator").await;
        write_all(&mut sa1, &pattern(10, 1000), "initiator").await;
        let mut sb1 = accept(&*b, "responder").await;
        let got = read_exact(&mut sb1, 1000, "responder").await;
        assert_bytes(&got, &pattern(10, 1000), "responder");
        // Stream 2: the responder writes; the initiator never reads.
        let mut sb2 = open(&*b, "responder").await;
        write_all(&mut sb2, b"x", "responder").await;
        let sa2 = accept(&*a, "initiator").await;
        let written = Arc::new(AtomicUsize::new(0));
        let writer = tokio::spawn({
            let written = written.clone();
            async move {
                let chunk = vec![7u8; 16 * 1024];
                // Far beyond any window or buffer: the write must block or
                // fail long before this.
                while written.load(Ordering::Relaxed) < 256 * 1024 * 1024 {
                    if let Err(e) = sb2.write_all(&chunk).await {
                        return (sb2, Some(e));
                    }
                    written.fetch_add(chunk.len(), Ordering::Relaxed);
                }
                (sb2, None)
            }
        });
        let reader = tokio::spawn(async move {
            let e = expect_read_error(&mut sb1, 0, "responder: read on a vanished peer").await;
            (sb1, e)
        });
        // Let the writer fill every buffer and block (bounded).
        let mut last = usize::MAX;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let now = written.load(Ordering::Relaxed);
            if now == last || writer.is_finished() {
                break;
            }
            last = now;
        }
        severer.sever();
        let (sb1, _) = joined(within(PROMPT, "responder: pending read", reader).await);
        let (sb2, err) = joined(within(PROMPT, "responder: pending write", writer).await);
        assert!(
            err.is_some(),
            "responder: wrote 256 MiB to a stream nobody reads, expected an error"
        );
        assert!(
            within(PROMPT, "responder: accept", b.accept())
                .await
                .is_err(),
            "responder: accept succeeded on a dead connection"
        );
        assert!(
            within(PROMPT, "responder: open", b.open()).await.is_err(),
            "responder: open succeeded on a dead connection"
        );
        wait_closed(&*b, "responder").await;
        // The side whose transport died fails too.
        wait_closed(&*a, "initiator").await;
        assert!(
            within(PROMPT, "initiator: accept", a.accept())
                .await
                .is_err(),
            "initiator: accept succeeded after its transport died"
        );
        let mut sa2 = sa2;
        within(
            PROMPT,
            "initiator: read",
            expect_read_error(
                &mut sa2,
                usize::MAX,
                "initiator: read after its transport died",
            ),
        )
        .await;
        within(
            PROMPT,
            "initiator: write",
            expect_write_error(&mut sa1, "initiator: write after its transport died"),
        )
        .await;
        drop((sb1, sb2));
        assert_idle(&*b, "responder (survivor)").await;
        drop((sa1, sa2));
        assert_idle(&*a, "initiator (vanished)").await;
        within(PROMPT, "responder: close", b.close()).await;
        within(PROMPT, "initiator: close", a.close()).await;
    })
    .await;
}

async fn wait_closed(conn: &dyn MuxedConn, side: &str) {
    let deadline = Instant::now() + PROMPT;
    while !conn.is_closed() {
        assert!(
            Instant::now() < deadline,
            "{side}: is_closed() still false after {PROMPT:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// `close()` ends a pending `accept` with an error, on the closing side and
/// on the remote; afterwards `accept` and `open` fail on both sides and both
/// report `is_closed()`.
pub async fn close_ends_accept(muxer: Arc<dyn MuxerUpgrade>) {
    case("close_ends_accept", async move {
        let (a, b) = connected_pair(&*muxer);
        let a: Arc<dyn MuxedConn> = Arc::from(a);
        let b: Arc<dyn MuxedConn> = Arc::from(b);
        let pending = |c: Arc<dyn MuxedConn>| {
            tokio::spawn(async move { c.accept().await.map(drop).map_err(|e| e.to_string()) })
        };
        let local = pending(a.clone());
        let remote = pending(b.clone());
        tokio::time::sleep(Duration::from_millis(20)).await;
        within(PROMPT, "initiator: close", a.close()).await;
        assert!(a.is_closed(), "initiator: is_closed() false after close()");
        let r = joined(within(PROMPT, "initiator: pending accept", local).await);
        assert!(
            r.is_err(),
            "initiator: pending accept succeeded after close()"
        );
        let r = joined(within(PROMPT, "responder: pending accept", remote).await);
        assert!(
            r.is_err(),
            "responder: pending accept succeeded after remote close()"
        );
        assert!(
            within(PROMPT, "initiator: accept", a.accept())
                .await
                .is_err(),
            "initiator: accept after close() succeeded"
        );
        assert!(
            within(PROMPT, "initiator: open", a.open()).await.is_err(),
            "initiator: open after close() succeeded"
        );
        wait_closed(&*b, "responder").await;
        assert!(
            within(PROMPT, "responder: open", b.open()).await.is_err(),
            "responder: open after remote close() succeeded"
        );
        finish(&*a, &*b).await;
    })
    .await;
}

/// The initiator closes the connection while 10 streams are open both ways
/// with unread data on both sides: afterwards every stream's read and write
/// fail on both sides (an error, never EOF: the streams were cut off), and
/// once the handles are dropped the counters are back to zero.
pub async fn close_with_streams_open(muxer: Arc<dyn MuxerUpgrade>) {
    const N: usize = 10;
    case("close_with_streams_open", async move {
        let (a, b) = connected_pair(&*muxer);
        let mut streams = Vec::new();
        for i in 0..N {
            let mut sa = open(&*a, "initiator").await;
            write_all(&mut sa, &pattern(20 + i as u64, 2000), "initiator").await;
            let mut sb = accept(&*b, "responder").await;
            let got = read_exact(&mut sb, 1000, "responder").await;
            assert_bytes(&got, &pattern(20 + i as u64, 2000)[..1000], "responder");
            write_all(&mut sb, &pattern(40 + i as u64, 500), "responder").await;
            streams.push((sa, sb));
        }
        within(PROMPT, "initiator: close", a.close()).await;
        wait_closed(&*b, "responder").await;
        for (sa, sb) in &mut streams {
            within(
                PROMPT,
                "initiator: read",
                expect_read_error(sa, 500, "initiator: read after close()"),
            )
            .await;
            within(
                PROMPT,
                "initiator: write",
                expect_write_error(sa, "initiator: write after close()"),
            )
            .await;
            within(
                PROMPT,
                "responder: read",
                expect_read_error(sb, 1000, "responder: read after remote close()"),
            )
            .await;
            within(
                PROMPT,
                "responder: write",
                expect_write_error(sb, "responder: write after remote close()"),
            )
            .await;
        }
        drop(streams);
        finish(&*a, &*b).await;
    })
    .await;
}

// ---------------------------------------------------------------------------
// Back-pressure checks against a raw remote (the muxer's own frames, written
// by the test through the other end of an in-memory pipe).
// ---------------------------------------------------------------------------

/// A remote that writes `burst` (raw frames of the muxer under test) in one
/// go while reading everything `conn`'s side sends; returns every byte it
/// read once `answered(&bytes)` says all answers are in (bounded by
/// [`CASE_TIMEOUT`]). `conn` must not fail meanwhile: an honest burst is
/// answered, not punished.
pub async fn burst_from_a_reading_peer(
    conn: &dyn MuxedConn,
    raw: DuplexStream,
    burst: Vec<u8>,
    answered: impl Fn(&[u8]) -> bool,
) -> Vec<u8> {
    let (mut rd, mut wr) = tokio::io::split(raw);
    let writer = tokio::spawn(async move {
        wr.write_all(&burst).await.expect("write the burst");
        wr
    });
    let read = within(CASE_TIMEOUT, "reading the answers to a burst", async {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        while !answered(&got) {
            let n = rd.read(&mut buf).await.expect("read answers");
            assert!(n > 0, "connection closed before every answer came");
            got.extend_from_slice(&buf[..n]);
        }
        got
    })
    .await;
    let _wr = join(writer).await;
    assert!(!conn.is_closed(), "an honest burst costs no connection");
    read
}

impl Flood {
    /// Assert the verdict a flood must get: the connection failed, blamed on
    /// the peer, with `reason` in its message, no sooner than `stall` after
    /// the flood began and less than a second later; the flooder wrote fewer
    /// than `max_written` bytes (memory stayed bounded: it was stuck once
    /// the pipe and our bounded buffers were full, and released by the
    /// close).
    pub fn assert_stalled(&self, reason: &str, stall: Duration, max_written: usize) {
        match &self.error {
            plexus_core::MuxError::Failed { blame, source } => {
                assert_eq!(*blame, plexus_core::Blame::PeerMisbehaved);
                let msg = source.to_string();
                assert!(msg.contains(reason), "{msg}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            self.elapsed >= stall,
            "only after the stall timeout: {:?}",
            self.elapsed
        );
        assert!(
            self.elapsed < stall + Duration::from_secs(1),
            "{:?}",
            self.elapsed
        );
        assert!(
            self.written < max_written,
            "the flooder wrote {} bytes",
            self.written
        );
    }
}

/// What [`flood_without_reading`] saw.
#[derive(Debug)]
pub struct Flood {
    /// The error `accept` returned when the connection failed.
    pub error: plexus_core::MuxError,
    /// From the first write until the failure (tokio time: run the test with
    /// paused time).
    pub elapsed: Duration,
    /// Bytes the remote managed to write before it was stopped by TCP-like
    /// back-pressure and then by the close.
    pub written: usize,
}

/// A remote that writes `chunk` (raw frames that each make `conn` owe it a
/// control frame) over and over without ever reading. Streams it opens
/// within our limits are accepted and held. Returns when `conn` fails (its
/// `accept` errors) and the remote's writes stop; at most `max_written`
/// bytes are written (the caller asserts far fewer were).
pub async fn flood_without_reading(
    conn: &dyn MuxedConn,
    raw: DuplexStream,
    chunk: Vec<u8>,
    max_written: usize,
) -> Flood {
    let start = Instant::now();
    let (rd, mut wr) = tokio::io::split(raw);
    let flooder = tokio::spawn(async move {
        let mut written = 0usize;
        while written < max_written && wr.write_all(&chunk).await.is_ok() {
            written += chunk.len();
        }
        written
    });
    // Streams the flood opens within our limits are accepted and held (a
    // dropped stream would owe a reset of its own).
    let mut held = Vec::new();
    let error = loop {
        match within(
            Duration::from_secs(600),
            "the flood's verdict",
            conn.accept(),
        )
        .await
        {
            Ok(s) => held.push(s),
            Err(e) => break e,
        }
    };
    drop(held);
    let elapsed = start.elapsed();
    within(Duration::from_secs(600), "closing", conn.close()).await;
    let written = within(
        Duration::from_secs(600),
        "the flooder stopping",
        join(flooder),
    )
    .await;
    drop(rd);
    Flood {
        error,
        elapsed,
        written,
    }
}
