//! Perf on a [`Host`]: [`Perf::enable`] serves `/perf/1.0.0`; [`perf`] runs the client.

use plexus_core::PeerId;
use plexus_host::{HandlerOpts, Host, InboundStream};
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::{PROTOCOL, PerfError, PerfResult, Progress, run, serve};

/// Configuration of the perf server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerfConfig {
    /// Largest download a client may request, in bytes; larger requests are refused with a
    /// stream reset. Default 1 GiB (about 10 s at 1 Gbit/s).
    pub max_download: u64,
    /// Inbound bounds. Default backlog 4, one perf stream per peer at a time: a benchmark
    /// measures one stream.
    pub handler: HandlerOpts,
}

impl Default for PerfConfig {
    fn default() -> Self {
        PerfConfig {
            max_download: 1 << 30,
            handler: HandlerOpts {
                backlog: 4,
                max_inbound_per_peer: 1,
            },
        }
    }
}

/// The perf server. The library never enables it on its own: perf lets any connected peer
/// make us send up to [`PerfConfig::max_download`] bytes, so enable it only on nodes that
/// are not publicly reachable, or for trusted peers.
#[derive(Debug)]
pub struct Perf;

impl Perf {
    /// Register `/perf/1.0.0` on `host` and serve it until the returned handle is dropped (or
    /// the host shuts down); then the protocol is unregistered.
    /// Must be called within a tokio runtime (it spawns the service task).
    ///
    /// # Errors
    /// [`plexus_host::AlreadyRegistered`] when perf already has a handler.
    pub fn enable(
        host: &Host,
        cfg: PerfConfig,
    ) -> Result<PerfHandle, plexus_host::AlreadyRegistered> {
        let mut incoming = host.handle(PROTOCOL, cfg.handler)?;
        let (guard, mut stop) = watch::channel(());
        tokio::spawn(async move {
            let mut tasks = JoinSet::new();
            loop {
                tokio::select! {
                    _ = stop.changed() => break,
                    inbound = incoming.next() => {
                        let Some(inbound) = inbound else { break };
                        tasks.spawn(serve_one(inbound, cfg.max_download));
                    }
                    Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                }
            }
            tasks.shutdown().await;
        });
        Ok(PerfHandle { _guard: guard })
    }
}

/// Keeps the perf server running; dropping it stops the server and unregisters `/perf/1.0.0`.
#[derive(Debug)]
pub struct PerfHandle {
    _guard: watch::Sender<()>,
}

async fn serve_one(mut inbound: InboundStream, max_download: u64) {
    match serve(&mut inbound.stream, max_download).await {
        Ok(served) => tracing::debug!(
            peer = %inbound.peer,
            uploaded = served.uploaded,
            sent = served.sent,
            "perf run served"
        ),
        Err(e) => {
            tracing::debug!(peer = %inbound.peer, error = %e, "perf run refused or failed");
            inbound.stream.reset();
        }
    }
}

/// Run a perf measurement against `peer` (dialing it when needed): upload `upload` bytes, then
/// download `download` bytes. `progress` is called as [`run`] describes.
///
/// There is no timeout: wrap the call in `tokio::time::timeout` if needed.
///
/// # Errors
/// [`PerfError::Open`] when the stream cannot be opened, and as [`run`]. A server that
/// refuses (unsupported protocol, request too large) shows as [`PerfError::Io`].
pub async fn perf(
    host: &Host,
    peer: PeerId,
    upload: u64,
    download: u64,
    progress: impl FnMut(Progress),
) -> Result<PerfResult, PerfError> {
    let (_, mut stream) =
        host.new_stream(peer, &[PROTOCOL])
            .await
            .map_err(|e| PerfError::Open {
                blame: e.blame(),
                source: Box::new(e),
            })?;
    let res = run(&mut stream, upload, download, progress).await;
    if res.is_err() {
        stream.reset();
    }
    res
}
