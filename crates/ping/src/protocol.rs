//! The ping exchange on one stream: [`ping`] (dialer) and [`serve`] (listener).

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::PingError;

/// Bytes in one ping payload (and its echo).
pub const PAYLOAD_LEN: usize = 32;

/// Send one ping with a fresh random payload on `stream` and wait for its echo.
/// Returns the round-trip time from the write to the last byte of the echo.
///
/// Can be called again on the same stream for the next ping; half-close the stream (shutdown)
/// after the last one.
///
/// # Errors
/// [`PingError::Mismatch`] when the echo differs, [`PingError::Closed`] when the stream ends
/// first, [`PingError::Io`].
pub async fn ping<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
) -> Result<Duration, PingError> {
    let mut payload = [0u8; PAYLOAD_LEN];
    rand::fill(&mut payload[..]);
    ping_with(stream, payload).await
}

/// [`ping`] with a given payload.
///
/// # Errors
/// As [`ping`].
pub async fn ping_with<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    payload: [u8; PAYLOAD_LEN],
) -> Result<Duration, PingError> {
    let start = Instant::now();
    stream.write_all(&payload).await?;
    stream.flush().await?;
    let mut echo = [0u8; PAYLOAD_LEN];
    let got = read_full(stream, &mut echo).await?;
    if got < PAYLOAD_LEN {
        return Err(PingError::Closed { received: got });
    }
    if echo != payload {
        return Err(PingError::Mismatch);
    }
    Ok(start.elapsed())
}

/// Echo ping payloads on `stream` until the remote half-closes it, then finish the echo and
/// close our side. Returns how many pings were echoed.
///
/// Memory is one 32-byte buffer. Bytes are echoed only in whole payloads: a read never gets
/// ahead of the echo by more than one payload, so a remote that does not read its echoes
/// stalls only its own stream.
///
/// # Errors
/// [`PingError::Truncated`] when the stream ends inside a payload, [`PingError::Io`].
pub async fn serve<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) -> Result<u64, PingError> {
    serve_inner(stream, None).await
}

/// [`serve`], giving up with [`PingError::Timeout`] when no whole payload arrives within
/// `idle` (from the start, or from the previous echo).
///
/// # Errors
/// As [`serve`], and [`PingError::Timeout`].
pub async fn serve_idle<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    idle: Duration,
) -> Result<u64, PingError> {
    serve_inner(stream, Some(idle)).await
}

async fn serve_inner<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    idle: Option<Duration>,
) -> Result<u64, PingError> {
    let mut buf = [0u8; PAYLOAD_LEN];
    let mut count = 0u64;
    loop {
        let read = read_full(stream, &mut buf);
        let got = match idle {
            Some(idle) => tokio::time::timeout(idle, read)
                .await
                .map_err(|_| PingError::Timeout)??,
            None => read.await?,
        };
        match got {
            0 => break,
            PAYLOAD_LEN => {
                stream.write_all(&buf).await?;
                stream.flush().await?;
                count += 1;
            }
            n => return Err(PingError::Truncated { received: n }),
        }
    }
    stream.shutdown().await?;
    Ok(count)
}

/// Read until `buf` is full or the stream ends; returns the bytes read.
async fn read_full<S: AsyncRead + Unpin>(stream: &mut S, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = stream.read(&mut buf[filled..]).await?;
        if n == 0 {
            break;
        }
        filled += n;
    }
    Ok(filled)
}
