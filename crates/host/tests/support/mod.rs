//! Helpers shared by the host's test files.
#![allow(dead_code, unreachable_pub)]

use plexus_host::{InboundStream, Incoming};
use tokio::io::AsyncWriteExt;

/// Serve `incoming` with an echo: each stream's bytes are sent back, then the
/// stream is closed.
pub fn serve_echo(mut incoming: Incoming) {
    tokio::spawn(async move {
        while let Some(s) = incoming.next().await {
            tokio::spawn(echo(s));
        }
    });
}

async fn echo(s: InboundStream) {
    let (mut r, mut w) = tokio::io::split(s.stream);
    let _ = tokio::io::copy(&mut r, &mut w).await;
    let _ = w.shutdown().await;
}
