//! The identify service on a [`Host`]: answers requests, accepts pushes, identifies every new
//! connection, keeps what it learned per connected peer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use plexus_core::{Blame, PeerId};
use plexus_host::{HandlerOpts, Host, HostEvent, InboundStream, Incoming};
use plexus_multiaddr::Multiaddr;
use tokio::io::AsyncWriteExt;
use tokio::sync::{broadcast, oneshot, watch};
use tokio::task::JoinSet;

use crate::{
    IdentifyError, Limits, PROTOCOL, PUSH_PROTOCOL, PeerInfo, read_identify, write_identify,
};

/// Configuration of the [`IdentifyService`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentifyConfig {
    /// The `protocolVersion` we send. Default `ipfs/0.1.0`, as go-libp2p and rust-libp2p.
    pub protocol_version: String,
    /// Bounds on what a peer may send (identify answers and pushes).
    pub limits: Limits,
    /// Time for one whole exchange: opening the stream, negotiating, and the message until
    /// EOF (or writing ours). Default 10 s; an answer is one small message.
    pub timeout: Duration,
    /// Identify every peer when it connects (and the peers already connected at spawn).
    /// Default true.
    pub identify_on_connect: bool,
    /// Inbound bounds of `/ipfs/id/1.0.0` and `/ipfs/id/push/1.0.0`. Default backlog 32, at
    /// most 2 streams per peer per protocol (an honest peer has one identify and rarely one
    /// push in flight).
    pub handler: HandlerOpts,
    /// Capacity of the [`IdentifyEvent`] broadcast. Default 64; a receiver that falls behind
    /// misses the oldest events.
    pub event_capacity: usize,
}

impl Default for IdentifyConfig {
    fn default() -> Self {
        IdentifyConfig {
            protocol_version: "ipfs/0.1.0".into(),
            limits: Limits::default(),
            timeout: Duration::from_secs(10),
            identify_on_connect: true,
            handler: HandlerOpts {
                backlog: 32,
                max_inbound_per_peer: 2,
            },
            event_capacity: 64,
        }
    }
}

/// What the identify service learned.
// Events are rare (one per identify); boxing the info would not save anything.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum IdentifyEvent {
    /// A peer answered an identify request or pushed an update; `info` is everything now known
    /// about it (a push merged into what was known).
    Received {
        /// The peer.
        peer: PeerId,
        /// What we know about it now.
        info: PeerInfo,
        /// Whether this came from a push.
        push: bool,
    },
    /// Identifying a peer (or reading its push) failed.
    Failed {
        /// The peer.
        peer: PeerId,
        /// Who is to blame.
        blame: Blame,
        /// The error, for logs.
        error: String,
    },
}

/// The identify service. [`IdentifyService::spawn`] starts it.
#[derive(Debug)]
pub struct IdentifyService;

impl IdentifyService {
    /// Register `/ipfs/id/1.0.0` and `/ipfs/id/push/1.0.0` on `host` and start serving.
    ///
    /// The service runs until the host shuts down or every [`IdentifyHandle`] clone is
    /// dropped; then both protocols are unregistered.
    /// Must be called within a tokio runtime (it spawns the service task).
    ///
    /// # Errors
    /// [`plexus_host::AlreadyRegistered`] when either protocol already has a handler.
    pub fn spawn(
        host: Host,
        cfg: IdentifyConfig,
    ) -> Result<IdentifyHandle, plexus_host::AlreadyRegistered> {
        let id_incoming = host.handle(PROTOCOL, cfg.handler)?;
        let push_incoming = host.handle(PUSH_PROTOCOL, cfg.handler)?;
        let events = host.events();
        let (event_tx, _) = broadcast::channel(cfg.event_capacity.max(1));
        let (guard, stop) = watch::channel(());
        let shared = Arc::new(Shared {
            host,
            cfg,
            peers: Mutex::new(HashMap::new()),
            inflight: Mutex::new(HashMap::new()),
            events: event_tx,
        });
        tokio::spawn(run(
            shared.clone(),
            id_incoming,
            push_incoming,
            events,
            stop,
        ));
        Ok(IdentifyHandle {
            shared,
            _guard: Arc::new(guard),
        })
    }
}

/// A handle to the identify service (cheap to clone). Dropping the last clone stops it.
#[derive(Clone)]
pub struct IdentifyHandle {
    shared: Arc<Shared>,
    _guard: Arc<watch::Sender<()>>,
}

impl std::fmt::Debug for IdentifyHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentifyHandle")
            .field("peer", &self.shared.host.peer_id())
            .finish_non_exhaustive()
    }
}

struct Shared {
    host: Host,
    cfg: IdentifyConfig,
    /// What we know about each connected peer; entries are removed on disconnect.
    peers: Mutex<HashMap<PeerId, PeerInfo>>,
    /// Peers with an identify exchange in flight, and who waits for its answer. A second
    /// request joins the first instead of opening another stream: js-libp2p accepts one
    /// inbound identify stream per connection and resets any other.
    inflight: Mutex<HashMap<PeerId, Vec<oneshot::Sender<PeerInfo>>>>,
    events: broadcast::Sender<IdentifyEvent>,
}

/// The exchange in flight with `peer`, led by one request. Dropping it (finished or
/// cancelled) removes the entry; waiters that got no answer run their own exchange.
struct Lead<'a> {
    shared: &'a Shared,
    peer: PeerId,
    /// The entry was already removed (by [`Lead::answer`]).
    done: bool,
}

impl Lead<'_> {
    /// Hand a successful answer to everyone who joined.
    fn answer(mut self, info: &PeerInfo) {
        let waiters = self
            .shared
            .inflight()
            .remove(&self.peer)
            .unwrap_or_default();
        self.done = true;
        for w in waiters {
            let _ = w.send(info.clone());
        }
    }
}

impl Drop for Lead<'_> {
    fn drop(&mut self) {
        // Without an answer the senders are dropped: each waiter sees it and tries itself.
        if !self.done {
            self.shared.inflight().remove(&self.peer);
        }
    }
}

impl Shared {
    fn peers(&self) -> MutexGuard<'_, HashMap<PeerId, PeerInfo>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Our own info, as sent to a peer whose connection we see coming from `observed`.
    fn local_info(&self, observed: Option<&Multiaddr>) -> PeerInfo {
        PeerInfo {
            protocol_version: Some(self.cfg.protocol_version.clone()),
            agent_version: Some(self.host.agent_version().to_owned()),
            public_key: Some(self.host.public_key()),
            listen_addrs: self.host.listen_addrs(),
            observed_addr: observed.map(Multiaddr::without_p2p),
            protocols: self.host.protocols(),
            signed_peer_record: None,
            skipped_addrs: 0,
        }
    }

    /// Record `info` about `peer` (replacing for an identify answer, merging for a push) while
    /// the peer is connected, and announce it.
    fn record(&self, peer: PeerId, info: PeerInfo, push: bool) -> PeerInfo {
        let now = {
            let mut peers = self.peers();
            let merged = match peers.get_mut(&peer) {
                Some(known) if push => {
                    known.merge(info);
                    known.clone()
                }
                _ => info,
            };
            // A peer that disconnected meanwhile is not stored (its entry would never be
            // removed); the answer is still returned and announced.
            if self.host.connection(&peer).is_some() {
                peers.insert(peer, merged.clone());
            }
            merged
        };
        let _ = self.events.send(IdentifyEvent::Received {
            peer,
            info: now.clone(),
            push,
        });
        now
    }

    fn failed(&self, peer: PeerId, error: &IdentifyError) {
        tracing::debug!(%peer, %error, blame = %error.blame(), "identify failed");
        let _ = self.events.send(IdentifyEvent::Failed {
            peer,
            blame: error.blame(),
            error: error.to_string(),
        });
    }

    fn inflight(&self) -> MutexGuard<'_, HashMap<PeerId, Vec<oneshot::Sender<PeerInfo>>>> {
        self.inflight.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Join the exchange in flight with `peer` (`Err` with a receiver of its answer), or
    /// lead one (`Ok`).
    fn lead_or_join(&self, peer: PeerId) -> Result<Lead<'_>, oneshot::Receiver<PeerInfo>> {
        let mut inflight = self.inflight();
        match inflight.get_mut(&peer) {
            Some(waiters) => {
                let (tx, rx) = oneshot::channel();
                waiters.push(tx);
                Err(rx)
            }
            None => {
                inflight.insert(peer, Vec::new());
                Ok(Lead {
                    shared: self,
                    peer,
                    done: false,
                })
            }
        }
    }

    /// Request identify from `peer` and record the answer, sharing an exchange already in
    /// flight with that peer. When the shared exchange fails, this request makes its own
    /// (so each caller gets its own error), leading it unless another one started meanwhile.
    async fn identify(&self, peer: PeerId) -> Result<PeerInfo, IdentifyError> {
        let lead = match self.lead_or_join(peer) {
            Ok(lead) => Some(lead),
            Err(rx) => match rx.await {
                Ok(info) => return Ok(info),
                Err(_) => self.lead_or_join(peer).ok(),
            },
        };
        let res = self.exchange(peer).await;
        if let (Some(lead), Ok(info)) = (lead, &res) {
            lead.answer(info);
        }
        res
    }

    /// One identify exchange on a new stream; the answer is recorded.
    async fn exchange(&self, peer: PeerId) -> Result<PeerInfo, IdentifyError> {
        let exchange = async {
            let (_, mut stream) =
                self.host
                    .new_stream(peer, &[PROTOCOL])
                    .await
                    .map_err(|e| IdentifyError::Open {
                        blame: e.blame(),
                        source: Box::new(e),
                    })?;
            let msg = match read_identify(&mut stream, &self.cfg.limits).await {
                Ok(msg) => msg,
                Err(e) => {
                    stream.reset();
                    return Err(e);
                }
            };
            // We never write; closing our side lets the stream end without a reset.
            let _ = stream.shutdown().await;
            PeerInfo::from_message(msg, &peer)
        };
        let res = match tokio::time::timeout(self.cfg.timeout, exchange).await {
            Ok(res) => res,
            Err(_) => Err(IdentifyError::Timeout),
        };
        match res {
            Ok(info) => Ok(self.record(peer, info, false)),
            Err(e) => {
                self.failed(peer, &e);
                Err(e)
            }
        }
    }

    /// Answer an identify request.
    async fn answer(&self, mut inbound: InboundStream) {
        let msg = self
            .local_info(Some(&inbound.conn.remote_addr))
            .to_message();
        let write = write_identify(&mut inbound.stream, &msg);
        match tokio::time::timeout(self.cfg.timeout, write).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(peer = %inbound.peer, error = %e, "answering identify failed");
                inbound.stream.reset();
            }
            Err(_) => {
                tracing::debug!(peer = %inbound.peer, "answering identify timed out");
                inbound.stream.reset();
            }
        }
    }

    /// Read a push and merge it.
    async fn receive_push(&self, mut inbound: InboundStream) {
        let peer = inbound.peer;
        let read = async {
            let msg = read_identify(&mut inbound.stream, &self.cfg.limits).await?;
            PeerInfo::from_message(msg, &peer)
        };
        let res = match tokio::time::timeout(self.cfg.timeout, read).await {
            Ok(res) => res,
            Err(_) => Err(IdentifyError::Timeout),
        };
        match res {
            Ok(info) => {
                let _ = inbound.stream.shutdown().await;
                self.record(peer, info, true);
            }
            Err(e) => {
                inbound.stream.reset();
                self.failed(peer, &e);
            }
        }
    }

    /// Push our info to `peer`.
    async fn push_to(&self, peer: PeerId) -> Result<(), IdentifyError> {
        let observed = self.host.connection(&peer).map(|c| c.remote_addr);
        let msg = self.local_info(observed.as_ref()).to_message();
        let exchange = async {
            let (_, mut stream) =
                self.host
                    .new_stream(peer, &[PUSH_PROTOCOL])
                    .await
                    .map_err(|e| IdentifyError::Open {
                        blame: e.blame(),
                        source: Box::new(e),
                    })?;
            if let Err(e) = write_identify(&mut stream, &msg).await {
                stream.reset();
                return Err(e);
            }
            Ok(())
        };
        match tokio::time::timeout(self.cfg.timeout, exchange).await {
            Ok(res) => res,
            Err(_) => Err(IdentifyError::Timeout),
        }
    }

    /// Forget peers that are no longer connected; identify connected ones we know nothing of.
    /// Run when host events were missed.
    fn reconcile(self: &Arc<Self>, tasks: &mut JoinSet<()>) {
        let connected = self.host.connected_peers();
        let mut unknown = Vec::new();
        {
            let mut peers = self.peers();
            peers.retain(|p, _| connected.contains(p));
            for p in &connected {
                if !peers.contains_key(p) {
                    unknown.push(*p);
                }
            }
        }
        if self.cfg.identify_on_connect {
            for peer in unknown {
                let shared = self.clone();
                tasks.spawn(async move {
                    let _ = shared.identify(peer).await;
                });
            }
        }
    }
}

/// The service task: takes inbound streams and host events until the host shuts down or the
/// last handle is dropped. Per-stream work runs in tasks it owns (aborted when it ends).
async fn run(
    shared: Arc<Shared>,
    mut id_incoming: Incoming,
    mut push_incoming: Incoming,
    mut events: plexus_host::Events,
    mut stop: watch::Receiver<()>,
) {
    let mut tasks = JoinSet::new();
    shared.reconcile(&mut tasks);
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            inbound = id_incoming.next() => {
                let Some(inbound) = inbound else { break };
                let shared = shared.clone();
                tasks.spawn(async move { shared.answer(inbound).await });
            }
            inbound = push_incoming.next() => {
                let Some(inbound) = inbound else { break };
                let shared = shared.clone();
                tasks.spawn(async move { shared.receive_push(inbound).await });
            }
            event = events.recv() => match event {
                Ok(HostEvent::Connected(conn)) => {
                    if shared.cfg.identify_on_connect {
                        let shared = shared.clone();
                        tasks.spawn(async move {
                            let _ = shared.identify(conn.peer).await;
                        });
                    }
                }
                Ok(HostEvent::Disconnected { peer, .. }) => {
                    shared.peers().remove(&peer);
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "identify missed host events; reconciling");
                    shared.reconcile(&mut tasks);
                }
                Err(broadcast::error::RecvError::Closed) => break,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
}

impl IdentifyHandle {
    /// What we know about a connected `peer` (from its identify answer and later pushes).
    pub fn info(&self, peer: &PeerId) -> Option<PeerInfo> {
        self.shared.peers().get(peer).cloned()
    }

    /// Every connected peer we have identified.
    pub fn peers(&self) -> Vec<(PeerId, PeerInfo)> {
        self.shared
            .peers()
            .iter()
            .map(|(p, i)| (*p, i.clone()))
            .collect()
    }

    /// Identify `peer` now (dialing it when not connected and addresses are known) and
    /// record the answer.
    ///
    /// # Errors
    /// Any [`IdentifyError`]; a misbehaving answer is blamed on the peer.
    pub async fn identify(&self, peer: PeerId) -> Result<PeerInfo, IdentifyError> {
        self.shared.identify(peer).await
    }

    /// Push our current info to every connected peer (skipping those that told us they do
    /// not accept pushes), concurrently. Returns how many pushes succeeded.
    pub async fn push(&self) -> usize {
        let targets: Vec<PeerId> = {
            let peers = self.shared.peers();
            self.shared
                .host
                .connected_peers()
                .into_iter()
                .filter(|p| {
                    peers
                        .get(p)
                        .is_none_or(|i| i.protocols.is_empty() || i.supports(PUSH_PROTOCOL))
                })
                .collect()
        };
        let mut set = JoinSet::new();
        for peer in targets {
            let shared = self.shared.clone();
            set.spawn(async move {
                let res = shared.push_to(peer).await;
                if let Err(e) = &res {
                    tracing::debug!(%peer, error = %e, "identify push failed");
                }
                res.is_ok()
            });
        }
        let mut ok = 0;
        while let Some(res) = set.join_next().await {
            if matches!(res, Ok(true)) {
                ok += 1;
            }
        }
        ok
    }

    /// Subscribe to [`IdentifyEvent`]s (a bounded broadcast; see
    /// [`IdentifyConfig::event_capacity`]).
    pub fn events(&self) -> broadcast::Receiver<IdentifyEvent> {
        self.shared.events.subscribe()
    }

    /// The info we send about ourselves (without an observed address).
    pub fn local_info(&self) -> PeerInfo {
        self.shared.local_info(None)
    }
}
