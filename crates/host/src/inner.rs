//! [`Inner`]: the state behind every [`Host`](crate::Host) handle, its one
//! lock, the shutdown signal, events, and the maintenance task.
//!
//! The pieces working on it live in their own files: [`crate::pool`] (the
//! connections), [`crate::dial`] (dialing and backoff), [`crate::addrbook`]
//! (known addresses), [`crate::inbound`] (the accept path and inbound
//! streams), [`crate::handlers`] (the protocol registry).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use plexus_conn::Upgrader;
use plexus_core::{PeerId, PublicKey, Transport};
use plexus_multiaddr::Multiaddr;
use plexus_multistream as mss;
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::dial::{BackoffEntry, DialRanker, DialResult};
use crate::gate::{GateShared, HostGate};
use crate::handlers::Handler;
use crate::host::HostEvent;
use crate::limits::HostLimits;
use crate::pending::PendingTable;
use crate::pool::ConnEntry;

/// How often expired bans and backoff entries are pruned.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(30);

/// Everything under the host's one lock, never held across an await.
#[derive(Default)]
pub(crate) struct State {
    /// The pool: each connected peer's connections (see [`crate::pool`]).
    pub(crate) conns: HashMap<PeerId, Vec<ConnEntry>>,
    /// Established outbound connections (inbound ones are counted in
    /// [`GateShared::established_in`], which the gate reads without this lock).
    pub(crate) established_out: usize,
    /// The in-flight dial of each peer being dialed (see [`crate::dial`]).
    pub(crate) dials: HashMap<PeerId, watch::Receiver<DialResult>>,
    /// The address book (see [`crate::addrbook`]).
    pub(crate) addrs: HashMap<PeerId, Vec<Multiaddr>>,
    /// Addresses in dial backoff (see [`crate::dial`]).
    pub(crate) backoff: HashMap<Multiaddr, BackoffEntry>,
    /// The registered inbound protocols (see [`crate::handlers`]).
    pub(crate) handlers: HashMap<String, Arc<Handler>>,
}

/// The host behind its handles.
pub(crate) struct Inner {
    pub(crate) local_peer: PeerId,
    pub(crate) public_key: PublicKey,
    pub(crate) agent_version: String,
    pub(crate) limits: HostLimits,
    pub(crate) gate_shared: Arc<GateShared>,
    pub(crate) gate: Arc<HostGate>,
    pub(crate) upgrader: Upgrader,
    pub(crate) transports: Vec<Arc<dyn Transport>>,
    pub(crate) ranker: Option<Arc<dyn DialRanker>>,
    pub(crate) listen_addrs: Vec<Multiaddr>,
    pub(crate) state: Mutex<State>,
    pub(crate) events: broadcast::Sender<HostEvent>,
    pub(crate) shutdown: watch::Sender<bool>,
    /// Outbound dial attempts running at once
    /// ([`HostLimits::max_pending_outbound`]).
    pub(crate) pending_out: Arc<Semaphore>,
    /// Inbound connections past accept, not yet upgraded.
    pub(crate) pending_in: Mutex<PendingTable<AbortHandle>>,
    pub(crate) mss: mss::Config,
    pub(crate) next_id: AtomicU64,
}

/// Resolves once shutdown was signalled.
pub(crate) struct ShutdownSignal(watch::Receiver<bool>);

impl ShutdownSignal {
    pub(crate) async fn wait(&mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }
}

impl Inner {
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn pending_lock(&self) -> MutexGuard<'_, PendingTable<AbortHandle>> {
        self.pending_in.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn emit(&self, ev: HostEvent) {
        let _ = self.events.send(ev);
    }

    pub(crate) fn signal_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    pub(crate) fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    pub(crate) fn shutdown_signal(&self) -> ShutdownSignal {
        ShutdownSignal(self.shutdown.subscribe())
    }
}

/// Prune expired bans and backoff entries now and then.
pub(crate) async fn run_maintenance(inner: Arc<Inner>) {
    let mut sd = inner.shutdown_signal();
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = sd.wait() => break,
            _ = tick.tick() => {}
        }
        inner.gate_shared.bans.prune();
        let now = Instant::now();
        inner.lock().backoff.retain(|_, b| b.until > now);
    }
}
