//! The perf exchange on one stream: [`run`] (client) and [`serve`] (server).

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::PerfError;

/// Size of one write of perf data and of the read buffer, in bytes.
pub const CHUNK: usize = 64 * 1024;

/// The data both sides send: zeros, from one static buffer (no allocation per chunk or per run).
static ZEROS: [u8; CHUNK] = [0; CHUNK];

/// The shortest time between two [`Progress`] reports within a phase. The last report of each
/// phase is always made.
pub const PROGRESS_INTERVAL: Duration = Duration::from_millis(100);

/// Which half of a perf run a [`Progress`] report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// We send bytes to the server.
    Upload,
    /// The server sends bytes to us.
    Download,
}

/// A progress report of a perf run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// The phase.
    pub phase: Phase,
    /// Bytes moved so far in this phase.
    pub bytes: u64,
    /// Bytes this phase moves in total.
    pub total: u64,
    /// Time since the phase started.
    pub elapsed: Duration,
}

/// What a perf run measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerfResult {
    /// Bytes uploaded (excluding the 8-byte header).
    pub upload_bytes: u64,
    /// Seconds from the start of the run until our write side was closed.
    pub upload_secs: f64,
    /// Bytes downloaded.
    pub download_bytes: u64,
    /// Seconds from closing our write side until the server's EOF. Includes the time the server
    /// needed to drain the upload still in flight.
    pub download_secs: f64,
}

/// What the server side of a perf run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Served {
    /// Bytes the client uploaded.
    pub uploaded: u64,
    /// Bytes sent back (what the client requested).
    pub sent: u64,
}

/// Reports progress at most every [`PROGRESS_INTERVAL`], and always at the end.
struct Reporter<F> {
    progress: F,
    phase: Phase,
    total: u64,
    start: Instant,
    last: Instant,
}

impl<F: FnMut(Progress)> Reporter<F> {
    fn new(progress: F, phase: Phase, total: u64) -> Self {
        let now = Instant::now();
        Reporter {
            progress,
            phase,
            total,
            start: now,
            last: now,
        }
    }

    fn report(&mut self, bytes: u64, last: bool) {
        let now = Instant::now();
        if last || now.duration_since(self.last) >= PROGRESS_INTERVAL {
            self.last = now;
            (self.progress)(Progress {
                phase: self.phase,
                bytes,
                total: self.total,
                elapsed: now.duration_since(self.start),
            });
        }
    }

    fn into_inner(self) -> F {
        self.progress
    }
}

/// Write `n` zero bytes in [`CHUNK`]-sized writes, reporting progress.
async fn send_zeros<S: AsyncWrite + Unpin>(
    stream: &mut S,
    n: u64,
    mut report: impl FnMut(u64, bool),
) -> std::io::Result<()> {
    let mut sent = 0u64;
    while sent < n {
        let len = usize::try_from(n - sent).map_or(CHUNK, |rest| rest.min(CHUNK));
        stream.write_all(&ZEROS[..len]).await?;
        sent += len as u64;
        report(sent, false);
    }
    Ok(())
}

/// Run the perf protocol as the client on a fresh `/perf/1.0.0` stream: ask for `download`
/// bytes, upload `upload` bytes, close our write side, then read exactly `download` bytes
/// and the server's EOF.
///
/// `progress` is called at most every [`PROGRESS_INTERVAL`] per phase and once at the end of
/// each phase (with `bytes == total`).
///
/// # Errors
/// [`PerfError::ShortDownload`], [`PerfError::TooMuchData`] (the server's fault),
/// [`PerfError::Io`] (including a server that refused the request by resetting the stream).
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    upload: u64,
    download: u64,
    progress: impl FnMut(Progress),
) -> Result<PerfResult, PerfError> {
    let mut up = Reporter::new(progress, Phase::Upload, upload);
    stream.write_all(&download.to_be_bytes()).await?;
    send_zeros(stream, upload, |n, last| up.report(n, last)).await?;
    stream.shutdown().await?;
    up.report(upload, true);
    let upload_secs = up.start.elapsed().as_secs_f64();

    let mut down = Reporter::new(up.into_inner(), Phase::Download, download);
    let mut buf = vec![0u8; CHUNK];
    let mut received = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        received += n as u64;
        if received > download {
            return Err(PerfError::TooMuchData { expected: download });
        }
        down.report(received, false);
    }
    if received < download {
        return Err(PerfError::ShortDownload {
            expected: download,
            received,
        });
    }
    down.report(received, true);
    Ok(PerfResult {
        upload_bytes: upload,
        upload_secs,
        download_bytes: received,
        download_secs: down.start.elapsed().as_secs_f64(),
    })
}

/// Serve one perf request: read the 8-byte big-endian count, refuse it when above
/// `max_download`, drain the upload until EOF, then (not concurrently) send the requested
/// bytes and close the stream.
///
/// On [`PerfError::RequestTooLarge`] nothing was sent; the caller should reset the stream so the
/// client sees a refusal rather than a short download.
///
/// # Errors
/// [`PerfError::MissingHeader`], [`PerfError::RequestTooLarge`], [`PerfError::Io`].
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    max_download: u64,
) -> Result<Served, PerfError> {
    let mut header = [0u8; 8];
    let mut got = 0;
    while got < header.len() {
        let n = stream.read(&mut header[got..]).await?;
        if n == 0 {
            return Err(PerfError::MissingHeader { received: got });
        }
        got += n;
    }
    let requested = u64::from_be_bytes(header);
    if requested > max_download {
        return Err(PerfError::RequestTooLarge {
            requested,
            max: max_download,
        });
    }
    let mut buf = vec![0u8; CHUNK];
    let mut uploaded = 0u64;
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        uploaded += n as u64;
    }
    drop(buf);
    send_zeros(stream, requested, |_, _| {}).await?;
    stream.shutdown().await?;
    Ok(Served {
        uploaded,
        sent: requested,
    })
}
