//! The ping service on a [`Host`]: serves `/ipfs/ping/1.0.0`, pings on demand and on an
//! interval over one outbound stream per peer, keeps the last RTT per connected peer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use plexus_core::{BoxStream, PeerId};
use plexus_host::{HandlerOpts, Host, HostEvent, InboundStream, Incoming};
use tokio::sync::{broadcast, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::MissedTickBehavior;

use crate::{PROTOCOL, PingError, ping, serve_idle};

/// Configuration of the [`PingService`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingConfig {
    /// Ping every connected peer this often (first ping right after connecting). `None`:
    /// only on demand. Default 15 s, as rust-libp2p.
    pub interval: Option<Duration>,
    /// Time for one ping: opening the stream when needed, the payload and its echo.
    /// Default 20 s, as rust-libp2p.
    pub timeout: Duration,
    /// An inbound ping stream on which no payload arrives for this long is reset. Default
    /// 60 s, as go-libp2p (pingers send every 15 s).
    pub inbound_idle_timeout: Duration,
    /// Inbound bounds. Default backlog 32 and at most 2 inbound ping streams per peer, as the
    /// spec recommends.
    pub handler: HandlerOpts,
}

impl Default for PingConfig {
    fn default() -> Self {
        PingConfig {
            interval: Some(Duration::from_secs(15)),
            timeout: Duration::from_secs(20),
            inbound_idle_timeout: Duration::from_secs(60),
            handler: HandlerOpts {
                backlog: 32,
                max_inbound_per_peer: 2,
            },
        }
    }
}

/// The ping service. [`PingService::spawn`] starts it.
#[derive(Debug)]
pub struct PingService;

impl PingService {
    /// Register `/ipfs/ping/1.0.0` on `host` and start serving (and pinging on the interval).
    ///
    /// The service runs until the host shuts down or every [`PingHandle`] clone is dropped;
    /// then the protocol is unregistered.
    /// Must be called within a tokio runtime (it spawns the service task).
    ///
    /// # Errors
    /// [`plexus_host::AlreadyRegistered`] when ping already has a handler.
    pub fn spawn(
        host: Host,
        cfg: PingConfig,
    ) -> Result<PingHandle, plexus_host::AlreadyRegistered> {
        let incoming = host.handle(PROTOCOL, cfg.handler)?;
        let events = host.events();
        let (guard, stop) = watch::channel(());
        let shared = Arc::new(Shared {
            host,
            cfg,
            peers: Mutex::new(HashMap::new()),
        });
        tokio::spawn(run(shared.clone(), incoming, events, stop));
        Ok(PingHandle {
            shared,
            _guard: Arc::new(guard),
        })
    }
}

/// A handle to the ping service (cheap to clone). Dropping the last clone stops it.
#[derive(Clone)]
pub struct PingHandle {
    shared: Arc<Shared>,
    _guard: Arc<watch::Sender<()>>,
}

impl std::fmt::Debug for PingHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PingHandle")
            .field("peer", &self.shared.host.peer_id())
            .finish_non_exhaustive()
    }
}

/// The single outbound ping stream to a peer, open or not yet.
type Slot = Arc<tokio::sync::Mutex<Option<BoxStream>>>;

#[derive(Default)]
struct PeerState {
    rtt: Option<Duration>,
    /// Held for the whole of a ping, so a peer never has two outbound ping streams.
    stream: Slot,
}

struct Shared {
    host: Host,
    cfg: PingConfig,
    /// Per peer: last RTT and the outbound stream. Removed on disconnect.
    peers: Mutex<HashMap<PeerId, PeerState>>,
}

impl Shared {
    fn peers(&self) -> MutexGuard<'_, HashMap<PeerId, PeerState>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    async fn ping(&self, peer: PeerId) -> Result<Duration, PingError> {
        let slot = self.peers().entry(peer).or_default().stream.clone();
        let mut stream = slot.lock().await;
        let exchange = async {
            let s = match stream.as_mut() {
                Some(s) => s,
                None => {
                    let (_, s) = self.host.new_stream(peer, &[PROTOCOL]).await.map_err(|e| {
                        PingError::Open {
                            blame: e.blame(),
                            source: Box::new(e),
                        }
                    })?;
                    stream.insert(s)
                }
            };
            ping(s).await
        };
        let res = match tokio::time::timeout(self.cfg.timeout, exchange).await {
            Ok(res) => res,
            Err(_) => Err(PingError::Timeout),
        };
        match res {
            Ok(rtt) => {
                if let Some(state) = self.peers().get_mut(&peer) {
                    state.rtt = Some(rtt);
                }
                Ok(rtt)
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, blame = %e.blame(), "ping failed");
                if let Some(mut s) = stream.take() {
                    s.reset();
                }
                drop(stream);
                if self.host.connection(&peer).is_none() {
                    self.peers().remove(&peer);
                }
                Err(e)
            }
        }
    }

    async fn serve(&self, mut inbound: InboundStream) {
        match serve_idle(&mut inbound.stream, self.cfg.inbound_idle_timeout).await {
            Ok(n) => tracing::trace!(peer = %inbound.peer, pings = n, "ping stream closed"),
            Err(e) => {
                tracing::debug!(peer = %inbound.peer, error = %e, "inbound ping stream failed");
                inbound.stream.reset();
            }
        }
    }

    /// Ping `peer` every interval while it is connected.
    async fn ping_periodically(self: Arc<Self>, peer: PeerId, interval: Duration) {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // Never dial for a periodic ping.
            if self.host.connection(&peer).is_none() {
                break;
            }
            let _ = self.ping(peer).await;
        }
    }
}

struct Pingers {
    by_peer: HashMap<PeerId, AbortHandle>,
}

impl Pingers {
    fn start(&mut self, shared: &Arc<Shared>, tasks: &mut JoinSet<()>, peer: PeerId) {
        let Some(interval) = shared.cfg.interval else {
            return;
        };
        if self.by_peer.get(&peer).is_some_and(|h| !h.is_finished()) {
            return;
        }
        let handle = tasks.spawn(shared.clone().ping_periodically(peer, interval));
        self.by_peer.insert(peer, handle);
    }

    fn stop(&mut self, peer: &PeerId) {
        if let Some(h) = self.by_peer.remove(peer) {
            h.abort();
        }
    }

    fn reconcile(&mut self, shared: &Arc<Shared>, tasks: &mut JoinSet<()>) {
        let connected = shared.host.connected_peers();
        shared.peers().retain(|p, _| connected.contains(p));
        self.by_peer.retain(|p, h| {
            let keep = connected.contains(p) && !h.is_finished();
            if !keep {
                h.abort();
            }
            keep
        });
        for peer in connected {
            self.start(shared, tasks, peer);
        }
    }
}

async fn run(
    shared: Arc<Shared>,
    mut incoming: Incoming,
    mut events: plexus_host::Events,
    mut stop: watch::Receiver<()>,
) {
    let mut tasks = JoinSet::new();
    let mut pingers = Pingers {
        by_peer: HashMap::new(),
    };
    pingers.reconcile(&shared, &mut tasks);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            inbound = incoming.next() => {
                let Some(inbound) = inbound else { break };
                let shared = shared.clone();
                tasks.spawn(async move { shared.serve(inbound).await });
            }
            event = events.recv() => match event {
                Ok(HostEvent::Connected(conn)) => pingers.start(&shared, &mut tasks, conn.peer),
                Ok(HostEvent::Disconnected { peer, .. }) => {
                    pingers.stop(&peer);
                    if let Some(state) = shared.peers().remove(&peer) {
                        // Reset the outbound stream unless a ping holds it (it fails soon).
                        if let Ok(mut s) = state.stream.try_lock()
                            && let Some(mut s) = s.take()
                        {
                            s.reset();
                        }
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => pingers.reconcile(&shared, &mut tasks),
                Err(broadcast::error::RecvError::Closed) => break,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
}

impl PingHandle {
    /// Ping `peer` once over its outbound ping stream (opened, and the peer dialed, when
    /// needed) and record the RTT. Concurrent calls for one peer take turns on that stream.
    ///
    /// # Errors
    /// Any [`PingError`]; the outbound stream is reset after an error and reopened next time.
    pub async fn ping(&self, peer: PeerId) -> Result<Duration, PingError> {
        self.shared.ping(peer).await
    }

    /// The last RTT measured to a connected `peer`.
    pub fn rtt(&self, peer: &PeerId) -> Option<Duration> {
        self.shared.peers().get(peer).and_then(|s| s.rtt)
    }

    /// The last RTT of every connected peer that has one.
    pub fn rtts(&self) -> Vec<(PeerId, Duration)> {
        self.shared
            .peers()
            .iter()
            .filter_map(|(p, s)| s.rtt.map(|r| (*p, r)))
            .collect()
    }
}
