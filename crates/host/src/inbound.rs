//! The accept path: each listener's loop, the gating of a connection the OS
//! accepted (before any byte is read) and its place in the pending table
//! during the upgrade; then, on established connections, the negotiation of
//! each inbound stream and its hand-off to the protocol's handler.

use std::sync::Arc;
use std::time::Duration;

use plexus_conn::{Stage, UpgradeError, UpgradeObserver};
use plexus_core::{BoxStream, ConnInfo, ConnectionGater, Direction, PendingInbound, Verdict};
use plexus_multistream as mss;
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Instant;

use crate::bans::ip_of;
use crate::inner::Inner;
use crate::stream::{Guarded, InboundStream, Muxed};

/// Pause after a failing `accept` (e.g. out of file descriptors), so the
/// listener does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// A pending inbound connection's place in the table: reports its stages
/// (refusing to go on once evicted) and releases the slot when dropped.
struct PendingSlot {
    inner: Arc<Inner>,
    id: u64,
}

impl UpgradeObserver for PendingSlot {
    fn enter(&self, stage: Stage) -> bool {
        let old = self.inner.pending_lock().set_stage(self.id, stage);
        match old {
            Some(old) => {
                let m = &self.inner.gate_shared.metrics;
                m.pending_left(old);
                m.pending_entered(stage);
                true
            }
            None => false,
        }
    }
}

impl Drop for PendingSlot {
    fn drop(&mut self) {
        let gone = self.inner.pending_lock().remove(self.id);
        if let Some(e) = gone {
            self.inner.gate_shared.metrics.pending_left(e.stage);
        }
    }
}

impl Inner {
    /// An inbound connection the OS accepted: gate it before any byte is read
    /// (ban list, peer cap, the application, then the pending table's
    /// per-source caps; a full table evicts a connection that has not
    /// completed Noise), then upgrade it in its own task. Works on any
    /// transport's [`PendingInbound`].
    fn on_pending(self: &Arc<Self>, pending: Box<dyn PendingInbound>) {
        if let Verdict::Deny(reason) = self
            .gate
            .accept(pending.local_addr(), pending.remote_addr())
        {
            tracing::trace!(remote = %pending.remote_addr(), %reason, "refused at accept");
            pending.refuse();
            return;
        }
        let metrics = &self.gate_shared.metrics;
        let source = ip_of(pending.remote_addr());
        let mut table = self.pending_lock();
        let admitted = match table.admit(source) {
            Ok(a) => a,
            Err(refusal) => {
                drop(table);
                tracing::trace!(remote = %pending.remote_addr(), reason = refusal.label(), "refused at accept");
                metrics.refusal(refusal.label(), "accept");
                pending.refuse();
                return;
            }
        };
        metrics.pending_entered(Stage::AwaitingHeader);
        let victim = admitted.evicted.and_then(|victim| {
            tracing::debug!(
                stage = victim.stage.label(),
                "pending inbound connection evicted for a newcomer"
            );
            metrics.pending_left(victim.stage);
            metrics.pending_evicted(victim.stage);
            victim.handle
        });
        metrics.handshake_started(Direction::Inbound);
        let slot = PendingSlot {
            inner: self.clone(),
            id: admitted.id,
        };
        let inner = self.clone();
        let task = tokio::spawn(async move {
            let slot = slot;
            let mut sd = inner.shutdown_signal();
            let start = Instant::now();
            let upgrade = async {
                let raw = pending.finish().await?;
                inner.upgrader.upgrade_inbound_observed(raw, &slot).await
            };
            let res = tokio::select! {
                r = upgrade => r,
                _ = sd.wait() => return,
            };
            drop(slot);
            let metrics = &inner.gate_shared.metrics;
            match res {
                Ok(conn) => {
                    metrics.handshake_done(Direction::Inbound, start.elapsed().as_secs_f64());
                    let _ = inner.add_connection(conn);
                }
                Err(e) => {
                    if !matches!(e, UpgradeError::Denied { .. } | UpgradeError::Stopped) {
                        metrics.handshake_failed(Direction::Inbound);
                    }
                    tracing::debug!(error = %e, blame = %e.blame(), "inbound upgrade failed");
                }
            }
        });
        table.set_handle(admitted.id, task.abort_handle());
        drop(table);
        // Outside the table's lock: the evicted entry is already gone from the
        // table; dropping its task's future closes its connection.
        if let Some(h) = victim {
            h.abort();
        }
    }

    /// Negotiate an inbound stream's protocol and hand it to its handler.
    pub(crate) async fn negotiate_inbound(
        self: Arc<Self>,
        info: ConnInfo,
        stream: BoxStream,
        permit: OwnedSemaphorePermit,
    ) {
        let metrics = &self.gate_shared.metrics;
        let protocols = self.protocols();
        let names: Vec<&str> = protocols.iter().map(String::as_str).collect();
        let mut sd = self.shutdown_signal();
        let negotiation = tokio::time::timeout(
            self.limits.stream_negotiation_timeout,
            mss::listener_select(Muxed(stream, metrics.byte_counters()), &names, &self.mss),
        );
        let res = tokio::select! {
            r = negotiation => r,
            _ = sd.wait() => return,
        };
        drop(permit);
        let (protocol, mut negotiated) = match res {
            Ok(Ok(x)) => x,
            Ok(Err(e)) => {
                // Dropping the stream resets it.
                tracing::debug!(peer = %info.peer, error = %e, "inbound stream negotiation failed");
                return;
            }
            Err(_) => {
                tracing::debug!(peer = %info.peer, "inbound stream negotiation timed out");
                return;
            }
        };
        let Some(handler) = self.handler(&protocol) else {
            plexus_core::MuxedStream::reset(&mut negotiated);
            metrics.stream_reset("unregistered");
            return;
        };
        let Some(slot) = handler.try_slot(info.peer) else {
            tracing::debug!(peer = %info.peer, %protocol, "inbound stream over the per-peer limit");
            plexus_core::MuxedStream::reset(&mut negotiated);
            metrics.stream_reset("per_peer_limit");
            return;
        };
        let inbound = InboundStream {
            peer: info.peer,
            protocol,
            stream: Box::new(Guarded {
                inner: negotiated,
                _slot: slot,
            }),
            conn: info,
        };
        match handler.tx.try_send(inbound) {
            Ok(()) => metrics.stream_accepted(),
            Err(mpsc::error::TrySendError::Full(mut s)) => {
                tracing::debug!(peer = %s.peer, protocol = %s.protocol, "handler backlog full");
                s.stream.reset();
                metrics.stream_reset("backlog_full");
            }
            Err(mpsc::error::TrySendError::Closed(mut s)) => {
                s.stream.reset();
                metrics.stream_reset("unregistered");
            }
        }
    }
}

/// Accept inbound connections until shutdown.
pub(crate) async fn run_listener(inner: Arc<Inner>, mut listener: Box<dyn plexus_core::Listener>) {
    let mut sd = inner.shutdown_signal();
    loop {
        let res = tokio::select! {
            _ = sd.wait() => break,
            r = listener.accept() => r,
        };
        match res {
            Ok(pending) => inner.on_pending(pending),
            Err(e) => {
                tracing::warn!(addr = %listener.local_addr(), error = %e, "accept failed");
                tokio::select! {
                    _ = sd.wait() => break,
                    _ = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => {}
                }
            }
        }
    }
}
