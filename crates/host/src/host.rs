//! The host: configuration, the cheap-to-clone handle, and the pool behind it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use plexus_conn::{Connection, Stage, UpgradeError, UpgradeObserver, Upgrader};
use plexus_core::{
    BoxStream, ConnInfo, ConnectionGater, Direction, MuxError, MuxedConn, MuxerUpgrade, PeerId,
    PendingInbound, PublicKey, SecurityUpgrade, Transport, Verdict,
};
use plexus_identity::Keypair;
use plexus_multiaddr::{Multiaddr, Protocol};
use plexus_multistream as mss;
use plexus_noise::NoiseConfig;
use plexus_tcp::{TcpConfig, TcpTransport};
use plexus_yamux::YamuxConfig;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, mpsc, watch};
use tokio::task::AbortHandle;
use tokio::time::Instant;

use crate::bans::BanList;
use crate::error::{AlreadyRegistered, AttemptError, DialError, HostError, OpenError};
use crate::gate::{GateShared, HostGate};
use crate::limits::{HandlerOpts, HostLimits};
use crate::metrics::HostMetrics;
use crate::pending::{PendingLimits, PendingTable};
use crate::stream::{Guarded, Handler, InboundStream, Incoming, Muxed};

/// How often expired bans and backoff entries are pruned.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(30);
/// Pause after a failing `accept` (e.g. out of file descriptors), so the
/// listener does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Everything a [`Host`] is built from.
pub struct HostConfig {
    /// Our identity.
    pub keypair: Keypair,
    /// Addresses to listen on, bound by [`Host::new`] (port 0 picks a free
    /// port; see [`Host::listen_addrs`]). Default: none (dial only).
    pub listen: Vec<Multiaddr>,
    /// Every bound of the host.
    pub limits: HostLimits,
    /// Muxers in preference order. Empty (the default) means yamux, then
    /// mplex (the consensus spec requires mplex on TCP and gives yamux
    /// precedence), both configured with [`HostLimits::mux`]; muxers given
    /// here carry their own limits.
    pub muxers: Vec<Arc<dyn MuxerUpgrade>>,
    /// The application's gater, consulted at each checkpoint after the
    /// built-in one (ban list, caps) allowed the connection.
    pub gater: Option<Arc<dyn ConnectionGater>>,
    /// Orders dial candidates (for `connect` and `new_stream` dials).
    /// Default: QUIC addresses first, then the others, each in the given order
    /// (addresses passed to `connect` first, then the address book, oldest first).
    pub dial_ranker: Option<Arc<dyn DialRanker>>,
    /// Our agent version (for identify). Default `plexus/<crate version>`.
    pub agent_version: String,
    /// TCP settings, for listening and dialing (e.g.
    /// [`TcpConfig::outbound_bind_ip`]), used by the default TCP transport.
    /// Default [`TcpConfig::default`].
    pub tcp: TcpConfig,
    /// Transports, tried in order: each address goes to the first one that can dial it
    /// (and each listen address to the first that can listen on it). Empty (the default)
    /// means TCP alone, with [`HostConfig::tcp`]. A transport that secures and multiplexes
    /// connections itself (QUIC) skips `security` and `muxers`.
    pub transports: Vec<Arc<dyn Transport>>,
    /// The security protocol of raw (TCP) connections. `None` (the default) means Noise
    /// with [`HostConfig::keypair`].
    pub security: Option<Arc<dyn SecurityUpgrade>>,
    /// Multistream-select settings for connection upgrades and streams.
    pub multistream: mss::Config,
}

impl HostConfig {
    /// A config for `keypair` with every other field at its default.
    pub fn new(keypair: Keypair) -> Self {
        HostConfig {
            keypair,
            listen: Vec::new(),
            limits: HostLimits::default(),
            muxers: Vec::new(),
            gater: None,
            dial_ranker: None,
            agent_version: format!("plexus/{}", env!("CARGO_PKG_VERSION")),
            tcp: TcpConfig::default(),
            transports: Vec::new(),
            security: None,
            multistream: mss::Config::default(),
        }
    }
}

impl std::fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostConfig")
            .field("peer", &self.keypair.public().to_peer_id())
            .field("listen", &self.listen)
            .field("limits", &self.limits)
            .field("agent_version", &self.agent_version)
            .finish_non_exhaustive()
    }
}

/// The application's dial preference.
pub trait DialRanker: Send + Sync + 'static {
    /// Reorder (or drop) candidate addresses for `peer` before dialing; first
    /// is tried first. Addresses come without a `/p2p` suffix. Called without
    /// any host lock held; must not block.
    fn rank(&self, peer: Option<&PeerId>, addrs: Vec<Multiaddr>) -> Vec<Multiaddr>;
}

/// What happens to the host's connections. Delivered through a bounded
/// broadcast ([`HostLimits::event_capacity`]): a receiver that falls behind
/// misses the oldest events and gets `RecvError::Lagged` once.
#[derive(Debug, Clone)]
pub enum HostEvent {
    /// A peer got its first connection. (When a second connection replaces
    /// the first, by the simultaneous-dial rule, no event is sent;
    /// [`Host::connection`] shows the survivor.)
    Connected(ConnInfo),
    /// A peer lost its last connection.
    Disconnected {
        /// The peer.
        peer: PeerId,
        /// Why, for logs.
        reason: String,
    },
    /// A dial failed: one address (`addr` set), or the whole dial when no
    /// address could be tried (`addr` unset: none known, all in backoff).
    DialFailed {
        /// The peer dialed, when known.
        peer: Option<PeerId>,
        /// The address that failed.
        addr: Option<Multiaddr>,
        /// Why, for logs.
        error: String,
    },
    /// A listen address was bound (sent by `Host::new`, before anyone can
    /// subscribe; [`Host::listen_addrs`] is authoritative).
    NewListenAddr(Multiaddr),
}

/// The receiving end of the host's events: a bounded broadcast receiver.
pub type Events = broadcast::Receiver<HostEvent>;

/// The host: a cheap-to-clone handle. Connections, listeners and dials run in
/// their own tasks; all of them end on [`Host::shutdown`] or when the last
/// handle is dropped.
#[derive(Clone)]
pub struct Host {
    inner: Arc<Inner>,
    _guard: Arc<Guard>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("peer_id", &self.inner.local_peer)
            .field("listen_addrs", &self.inner.listen_addrs)
            .finish_non_exhaustive()
    }
}

/// Signals shutdown when the last [`Host`] handle is dropped.
struct Guard(Arc<Inner>);

impl Drop for Guard {
    fn drop(&mut self) {
        self.0.signal_shutdown();
    }
}

#[derive(Clone)]
struct ConnEntry {
    id: u64,
    info: ConnInfo,
    muxer: Arc<dyn MuxedConn>,
}

#[derive(Debug, Clone, Copy)]
struct BackoffEntry {
    until: Instant,
    failures: u32,
}

type DialResult = Option<Result<ConnInfo, DialError>>;

#[derive(Default)]
struct State {
    conns: HashMap<PeerId, Vec<ConnEntry>>,
    established_out: usize,
    dials: HashMap<PeerId, watch::Receiver<DialResult>>,
    addrs: HashMap<PeerId, Vec<Multiaddr>>,
    backoff: HashMap<Multiaddr, BackoffEntry>,
    handlers: HashMap<String, Arc<Handler>>,
}

pub(crate) struct Inner {
    local_peer: PeerId,
    public_key: PublicKey,
    agent_version: String,
    limits: HostLimits,
    gate_shared: Arc<GateShared>,
    gate: Arc<HostGate>,
    upgrader: Upgrader,
    transports: Vec<Arc<dyn Transport>>,
    ranker: Option<Arc<dyn DialRanker>>,
    listen_addrs: Vec<Multiaddr>,
    state: Mutex<State>,
    events: broadcast::Sender<HostEvent>,
    shutdown: watch::Sender<bool>,
    pending_out: Arc<Semaphore>,
    pending_in: Mutex<PendingTable<AbortHandle>>,
    mss: mss::Config,
    next_id: AtomicU64,
}

/// Resolves once shutdown was signalled.
struct ShutdownSignal(watch::Receiver<bool>);

impl ShutdownSignal {
    async fn wait(&mut self) {
        let _ = self.0.wait_for(|s| *s).await;
    }
}

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

/// The default dial order: QUIC addresses first (the consensus spec's primary transport),
/// then the others, each group in the given order.
pub(crate) fn quic_first(mut addrs: Vec<Multiaddr>) -> Vec<Multiaddr> {
    addrs.sort_by_key(|a| !a.iter().any(|p| matches!(p, Protocol::QuicV1)));
    addrs
}

/// The IP of a transport address (its first component), if it has one.
fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    match addr.iter().next()? {
        Protocol::Ip4(ip) => Some(IpAddr::V4(*ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(*ip)),
        _ => None,
    }
}

impl Host {
    /// Build a host: bind the listen addresses and start accepting.
    pub async fn new(cfg: HostConfig) -> Result<Host, HostError> {
        let limits = cfg.limits;
        let metrics = HostMetrics::new();
        let bans = BanList::new(limits.max_ban_entries);
        let gate_shared = Arc::new(GateShared {
            bans,
            metrics,
            app: cfg.gater,
            established_in: AtomicUsize::new(0),
            max_inbound: limits.max_inbound_connections,
        });
        let gate = Arc::new(HostGate(gate_shared.clone()));
        let muxers: Vec<Arc<dyn MuxerUpgrade>> = if cfg.muxers.is_empty() {
            vec![
                Arc::new(YamuxConfig::new(
                    plexus_yamux::Config::default(),
                    limits.mux.clone(),
                )),
                Arc::new(plexus_mplex::MplexConfig::new(
                    plexus_mplex::Config::default(),
                    limits.mux.clone(),
                )),
            ]
        } else {
            cfg.muxers
        };
        let public_key = cfg.keypair.public();
        let local_peer = public_key.to_peer_id();
        let security = cfg
            .security
            .unwrap_or_else(|| Arc::new(NoiseConfig::new(cfg.keypair)));
        let upgrader = Upgrader::new(security, muxers, gate.clone(), limits.upgrade_limits())
            .with_multistream(cfg.multistream.clone());
        let transports: Vec<Arc<dyn Transport>> = if cfg.transports.is_empty() {
            vec![Arc::new(TcpTransport::new(cfg.tcp))]
        } else {
            cfg.transports
        };
        let mut listeners = Vec::with_capacity(cfg.listen.len());
        for addr in cfg.listen {
            let Some(t) = transports.iter().find(|t| t.can_dial(&addr)) else {
                return Err(HostError::Listen {
                    source: plexus_core::TransportError::UnsupportedAddr(addr.to_string()),
                    addr,
                });
            };
            let l = t
                .listen(addr.clone())
                .await
                .map_err(|source| HostError::Listen { addr, source })?;
            listeners.push(l);
        }
        let listen_addrs: Vec<Multiaddr> =
            listeners.iter().map(|l| l.local_addr().clone()).collect();
        let (events, _) = broadcast::channel(limits.event_capacity.max(1));
        let pending_limits = PendingLimits {
            max: limits.max_pending_inbound,
            per_ip: limits.max_pending_inbound_per_ip,
            per_ipv4_24: limits.max_pending_inbound_per_ipv4_24,
            per_ipv6_64: limits.max_pending_inbound_per_ipv6_64,
        };
        let (shutdown, _) = watch::channel(false);
        let inner = Arc::new(Inner {
            local_peer,
            public_key,
            agent_version: cfg.agent_version,
            pending_out: Arc::new(Semaphore::new(limits.max_pending_outbound.max(1))),
            limits,
            gate_shared,
            gate,
            upgrader,
            transports,
            ranker: cfg.dial_ranker,
            listen_addrs,
            state: Mutex::new(State::default()),
            events,
            shutdown,
            pending_in: Mutex::new(PendingTable::new(pending_limits)),
            mss: cfg.multistream,
            next_id: AtomicU64::new(1),
        });
        for l in listeners {
            tokio::spawn(run_listener(inner.clone(), l));
        }
        for a in &inner.listen_addrs {
            tracing::info!(addr = %a, peer = %inner.local_peer, "listening");
            inner.emit(HostEvent::NewListenAddr(a.clone()));
        }
        tokio::spawn(run_maintenance(inner.clone()));
        Ok(Host {
            _guard: Arc::new(Guard(inner.clone())),
            inner,
        })
    }

    /// Our peer id.
    pub fn peer_id(&self) -> PeerId {
        self.inner.local_peer
    }

    /// Our identity key.
    pub fn public_key(&self) -> PublicKey {
        self.inner.public_key.clone()
    }

    /// Our agent version.
    pub fn agent_version(&self) -> &str {
        &self.inner.agent_version
    }

    /// The limits in force.
    pub fn limits(&self) -> &HostLimits {
        &self.inner.limits
    }

    /// The addresses actually bound (a 0 port replaced by the real one; a
    /// wildcard IP stays a wildcard).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.inner.listen_addrs.clone()
    }

    /// The inbound protocols registered now, sorted.
    pub fn protocols(&self) -> Vec<String> {
        let mut p: Vec<String> = self.inner.lock().handlers.keys().cloned().collect();
        p.sort();
        p
    }

    /// Register an inbound protocol. Streams beyond `opts.backlog` waiting in
    /// [`Incoming`] are reset; streams beyond `opts.max_inbound_per_peer`
    /// concurrently open for (peer, protocol) are reset. Dropping
    /// [`Incoming`] unregisters the protocol.
    ///
    /// # Panics
    /// If `protocol` is not a valid multistream protocol id (it must start
    /// with `/`, contain no newline and fit in a message): a programming
    /// error, not remote input.
    pub fn handle(&self, protocol: &str, opts: HandlerOpts) -> Result<Incoming, AlreadyRegistered> {
        assert!(
            mss::ListenerSelect::new(&[protocol], &self.inner.mss).is_ok(),
            "invalid protocol id {protocol:?}"
        );
        let mut st = self.inner.lock();
        if st.handlers.contains_key(protocol) {
            return Err(AlreadyRegistered(protocol.to_owned()));
        }
        let (tx, rx) = mpsc::channel(opts.backlog.max(1));
        let id = self.inner.next_id();
        st.handlers.insert(
            protocol.to_owned(),
            Arc::new(Handler {
                id,
                opts,
                tx,
                open: Mutex::default(),
            }),
        );
        Ok(Incoming {
            protocol: protocol.to_owned(),
            id,
            rx,
            host: Arc::downgrade(&self.inner),
        })
    }

    /// Open a stream to `peer` negotiating the first supported of
    /// `protocols`; dials if not connected (using addresses from
    /// [`Host::add_addresses`]), one in-flight dial per peer.
    ///
    /// With one protocol the negotiation is lazy (it leaves with the first
    /// write, saving a round trip): a rejection surfaces on the stream's first
    /// read. With several, the answer is awaited here. Opening and negotiating
    /// run under [`HostLimits::stream_negotiation_timeout`].
    pub async fn new_stream(
        &self,
        peer: PeerId,
        protocols: &[&str],
    ) -> Result<(String, BoxStream), OpenError> {
        if protocols.is_empty() {
            return Err(OpenError::NoProtocols);
        }
        let inner = &self.inner;
        let counters = inner.gate_shared.metrics.byte_counters();
        let mut retried = false;
        loop {
            let entry = match inner.entry(&peer) {
                Some(e) => e,
                None => {
                    inner.dial_peer(peer, Vec::new()).await?;
                    inner.entry(&peer).ok_or(OpenError::Mux(MuxError::Closed))?
                }
            };
            let open = async {
                let s = entry.muxer.open().await?;
                if let [p] = protocols {
                    let n = mss::dialer_select_lazy(Muxed(s, counters.clone()), p, &inner.mss);
                    Ok(((*p).to_owned(), Box::new(n) as BoxStream))
                } else {
                    let (p, n) =
                        mss::dialer_select(Muxed(s, counters.clone()), protocols, &inner.mss)
                            .await?;
                    Ok((p, Box::new(n) as BoxStream))
                }
            };
            let res = tokio::time::timeout(inner.limits.stream_negotiation_timeout, open).await;
            match res {
                Err(_) => return Err(OpenError::Timeout),
                // The connection went away (e.g. replaced by the
                // simultaneous-dial rule) between lookup and open: once more.
                Ok(Err(OpenError::Mux(MuxError::Closed))) if !retried => {
                    retried = true;
                    if inner.is_shut_down() {
                        return Err(OpenError::Shutdown);
                    }
                }
                Ok(Ok(s)) => {
                    inner.gate_shared.metrics.stream_opened();
                    return Ok(s);
                }
                Ok(Err(e)) => return Err(e),
            }
        }
    }

    /// Remember addresses of `peer` for later dials (bounded by
    /// [`HostLimits::max_addrs_per_peer`] and
    /// [`HostLimits::max_address_book_peers`]). A `/p2p` suffix is removed.
    pub fn add_addresses(&self, peer: PeerId, addrs: Vec<Multiaddr>) {
        let mut st = self.inner.lock();
        self.inner.add_addrs_locked(&mut st, peer, &addrs);
    }

    /// Dial: an address list, optionally naming the peer with a `/p2p`
    /// suffix (all suffixes must agree). With a known peer: returns at once if
    /// connected, joins an in-flight dial of it, or dials the given addresses
    /// then the known ones (see [`DialRanker`]). Returns the connection that
    /// survives (see the simultaneous-dial rule in `docs/host.md`).
    pub async fn connect(&self, addrs: Vec<Multiaddr>) -> Result<ConnInfo, DialError> {
        let mut peer = None;
        for a in &addrs {
            if let Some(p) = a.peer_id() {
                match peer {
                    None => peer = Some(p),
                    Some(q) if q != p => {
                        return Err(DialError::InvalidTarget("addresses name different peers"));
                    }
                    _ => {}
                }
            }
        }
        let transport_addrs: Vec<Multiaddr> = addrs
            .iter()
            .map(Multiaddr::without_p2p)
            .filter(|a| !a.is_empty())
            .collect();
        match peer {
            Some(p) => self.inner.dial_peer(p, transport_addrs).await,
            None => self.inner.dial_addrs(None, transport_addrs).await,
        }
    }

    /// Close every connection to `peer`. [`HostEvent::Disconnected`] is sent
    /// here, and on the remote's side when it notices the close.
    pub fn disconnect(&self, peer: PeerId) {
        let removed = {
            let mut st = self.inner.lock();
            let removed = st.conns.remove(&peer).unwrap_or_default();
            for e in &removed {
                self.inner.count_remove(&mut st, e.info.direction);
            }
            removed
        };
        if removed.is_empty() {
            return;
        }
        tracing::debug!(%peer, "disconnecting");
        self.inner.emit(HostEvent::Disconnected {
            peer,
            reason: "disconnected locally".to_owned(),
        });
        for e in removed {
            tokio::spawn(async move { e.muxer.close().await });
        }
    }

    /// The connection to `peer`, if any.
    pub fn connection(&self, peer: &PeerId) -> Option<ConnInfo> {
        self.inner.entry(peer).map(|e| e.info)
    }

    /// The connected peers.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.inner.lock().conns.keys().copied().collect()
    }

    /// A new receiver of host events (it sees events sent from now on).
    pub fn events(&self) -> Events {
        self.inner.events.subscribe()
    }

    /// The built-in gate's ban list.
    pub fn bans(&self) -> &BanList {
        &self.inner.gate_shared.bans
    }

    /// The host's metrics.
    pub fn metrics(&self) -> &HostMetrics {
        &self.inner.gate_shared.metrics
    }

    /// Stop: listeners and dials end, every connection is closed (politely,
    /// bounded by the muxer's close timeout) and `Disconnected` is sent for
    /// each peer. Handlers' [`Incoming`] then yield `None` once drained.
    pub async fn shutdown(&self) {
        self.inner.signal_shutdown();
        let entries: Vec<ConnEntry> = {
            let mut st = self.inner.lock();
            let all: Vec<(PeerId, Vec<ConnEntry>)> = st.conns.drain().collect();
            let mut entries = Vec::new();
            for (peer, v) in all {
                for e in &v {
                    self.inner.count_remove(&mut st, e.info.direction);
                }
                self.inner.emit(HostEvent::Disconnected {
                    peer,
                    reason: "host shut down".to_owned(),
                });
                entries.extend(v);
            }
            st.handlers.clear();
            entries
        };
        futures::future::join_all(entries.iter().map(|e| e.muxer.close())).await;
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn pending_lock(&self) -> MutexGuard<'_, PendingTable<AbortHandle>> {
        self.pending_in.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn emit(&self, ev: HostEvent) {
        let _ = self.events.send(ev);
    }

    fn signal_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    fn is_shut_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    fn shutdown_signal(&self) -> ShutdownSignal {
        ShutdownSignal(self.shutdown.subscribe())
    }

    fn entry(&self, peer: &PeerId) -> Option<ConnEntry> {
        self.lock().conns.get(peer).and_then(|v| v.first()).cloned()
    }

    pub(crate) fn unregister(&self, protocol: &str, id: u64) {
        let mut st = self.lock();
        if st.handlers.get(protocol).is_some_and(|h| h.id == id) {
            st.handlers.remove(protocol);
        }
    }

    fn count_add(&self, st: &mut State, d: Direction) {
        match d {
            Direction::Inbound => {
                self.gate_shared
                    .established_in
                    .fetch_add(1, Ordering::AcqRel);
            }
            Direction::Outbound => st.established_out += 1,
        }
        self.gate_shared.metrics.connection_opened(d);
    }

    fn count_remove(&self, st: &mut State, d: Direction) {
        match d {
            Direction::Inbound => {
                self.gate_shared
                    .established_in
                    .fetch_sub(1, Ordering::AcqRel);
            }
            Direction::Outbound => st.established_out = st.established_out.saturating_sub(1),
        }
        self.gate_shared.metrics.connection_closed(d);
    }

    fn add_addrs_locked(&self, st: &mut State, peer: PeerId, addrs: &[Multiaddr]) {
        let addrs: Vec<Multiaddr> = addrs
            .iter()
            .map(Multiaddr::without_p2p)
            .filter(|a| !a.is_empty())
            .collect();
        if addrs.is_empty() || peer == self.local_peer {
            return;
        }
        if !st.addrs.contains_key(&peer) && st.addrs.len() >= self.limits.max_address_book_peers {
            let victim = st.addrs.keys().find(|p| !st.conns.contains_key(p)).copied();
            match victim {
                Some(v) => {
                    st.addrs.remove(&v);
                }
                None => return,
            }
        }
        let max = self.limits.max_addrs_per_peer.max(1);
        let list = st.addrs.entry(peer).or_default();
        for a in addrs {
            if !list.contains(&a) {
                list.push(a);
            }
        }
        if list.len() > max {
            let excess = list.len() - max;
            list.drain(..excess);
        }
    }

    /// Dial a known peer, sharing one in-flight dial among all callers.
    async fn dial_peer(
        self: &Arc<Self>,
        peer: PeerId,
        given: Vec<Multiaddr>,
    ) -> Result<ConnInfo, DialError> {
        if peer == self.local_peer {
            return Err(DialError::InvalidTarget("cannot dial ourselves"));
        }
        if self.is_shut_down() {
            return Err(DialError::Shutdown);
        }
        let mut rx = {
            let mut st = self.lock();
            if let Some(e) = st.conns.get(&peer).and_then(|v| v.first()) {
                return Ok(e.info.clone());
            }
            self.add_addrs_locked(&mut st, peer, &given);
            match st.dials.get(&peer) {
                Some(rx) => rx.clone(),
                None => {
                    let mut candidates = given;
                    for a in st.addrs.get(&peer).into_iter().flatten() {
                        if !candidates.contains(a) {
                            candidates.push(a.clone());
                        }
                    }
                    let (tx, rx) = watch::channel(None);
                    st.dials.insert(peer, rx.clone());
                    let inner = self.clone();
                    tokio::spawn(async move {
                        let mut sd = inner.shutdown_signal();
                        let res = tokio::select! {
                            r = inner.dial_addrs(Some(peer), candidates) => r,
                            _ = sd.wait() => Err(DialError::Shutdown),
                        };
                        inner.lock().dials.remove(&peer);
                        tx.send_replace(Some(res));
                    });
                    rx
                }
            }
        };
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or(Err(DialError::Shutdown)),
            Err(_) => Err(DialError::Shutdown),
        }
    }

    fn backed_off(&self, addr: &Multiaddr, now: Instant) -> bool {
        self.lock().backoff.get(addr).is_some_and(|b| b.until > now)
    }

    fn record_dial_failure(&self, addr: &Multiaddr) {
        let initial = self.limits.dial_backoff_initial;
        if initial.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut st = self.lock();
        if st.backoff.len() >= self.limits.max_backoff_entries.max(1)
            && !st.backoff.contains_key(addr)
        {
            st.backoff.retain(|_, b| b.until > now);
            if st.backoff.len() >= self.limits.max_backoff_entries.max(1)
                && let Some(k) = st
                    .backoff
                    .iter()
                    .min_by_key(|(_, b)| b.until)
                    .map(|(k, _)| k.clone())
            {
                st.backoff.remove(&k);
            }
        }
        let failures = st.backoff.get(addr).map_or(0, |b| b.failures) + 1;
        let factor = 1u32 << (failures - 1).min(20);
        let delay = initial
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.limits.dial_backoff_max);
        st.backoff.insert(
            addr.clone(),
            BackoffEntry {
                until: now + delay,
                failures,
            },
        );
    }

    /// Try `addrs` (transport addresses, no `/p2p`) in ranked order until one
    /// connects.
    async fn dial_addrs(
        self: &Arc<Self>,
        peer: Option<PeerId>,
        addrs: Vec<Multiaddr>,
    ) -> Result<ConnInfo, DialError> {
        let metrics = &self.gate_shared.metrics;
        if self.lock().established_out >= self.limits.max_outbound_connections {
            metrics.refusal("outbound_cap", "peer_dial");
            return Err(DialError::LimitReached("outbound connections"));
        }
        let mut addrs = match &self.ranker {
            Some(r) => r.rank(peer.as_ref(), addrs),
            None => quic_first(addrs),
        };
        addrs.truncate(self.limits.max_addrs_per_peer.max(1));
        let mut failures: Vec<(Multiaddr, AttemptError)> = Vec::new();
        let mut backed_off = 0usize;
        for addr in addrs {
            if let Some(p) = &peer
                && let Some(e) = self.entry(p)
            {
                // Connected meanwhile (e.g. the peer dialed us).
                return Ok(e.info);
            }
            if self.backed_off(&addr, Instant::now()) {
                backed_off += 1;
                continue;
            }
            let mut target = addr.clone();
            if let Some(p) = peer
                && target.try_push(Protocol::P2p(p)).is_err()
            {
                continue;
            }
            let attempt = async {
                let _permit = self.pending_out.acquire().await;
                metrics.handshake_started(Direction::Outbound);
                let start = Instant::now();
                let r = match self.transports.iter().find(|t| t.can_dial(&target)) {
                    Some(t) => self.upgrader.dial(t.as_ref(), target).await,
                    None => Err(UpgradeError::NoTransport(target)),
                };
                if r.is_ok() {
                    metrics.handshake_done(Direction::Outbound, start.elapsed().as_secs_f64());
                }
                r
            };
            let error = match tokio::time::timeout(self.limits.dial_timeout, attempt).await {
                Ok(Ok(conn)) => {
                    self.lock().backoff.remove(&addr);
                    return self.add_connection(conn);
                }
                Ok(Err(e)) => {
                    let denied = matches!(e, UpgradeError::Denied { .. });
                    if !denied {
                        metrics.handshake_failed(Direction::Outbound);
                        self.record_dial_failure(&addr);
                    }
                    AttemptError::Upgrade(Arc::new(e))
                }
                Err(_) => {
                    metrics.handshake_failed(Direction::Outbound);
                    self.record_dial_failure(&addr);
                    AttemptError::Timeout
                }
            };
            tracing::debug!(peer = ?peer, %addr, %error, "dial attempt failed");
            metrics.dial_failed();
            self.emit(HostEvent::DialFailed {
                peer,
                addr: Some(addr.clone()),
                error: error.to_string(),
            });
            let peer_denied = matches!(
                &error,
                AttemptError::Upgrade(e) if matches!(**e, UpgradeError::Denied { checkpoint: plexus_conn::Checkpoint::PeerDial, .. })
            );
            failures.push((addr, error));
            if peer_denied {
                // Every other address would be refused the same way.
                break;
            }
        }
        if !failures.is_empty() {
            return Err(DialError::Failed(failures));
        }
        let err = if backed_off > 0 {
            DialError::Backoff
        } else {
            DialError::NoAddresses
        };
        self.emit(HostEvent::DialFailed {
            peer,
            addr: None,
            error: err.to_string(),
        });
        Err(err)
    }

    /// Which of two connections to one peer survives, the same on both sides:
    /// with different dialers, the one dialed by the smaller peer id (bytes);
    /// with the same dialer, the newer.
    fn keep_new(&self, existing: &ConnInfo, new: &ConnInfo) -> bool {
        let dialer = |c: &ConnInfo| match c.direction {
            Direction::Outbound => self.local_peer,
            Direction::Inbound => c.peer,
        };
        let (de, dn) = (dialer(existing), dialer(new));
        if de == dn {
            return true;
        }
        let preferred = if self.local_peer.as_bytes() <= new.peer.as_bytes() {
            self.local_peer
        } else {
            new.peer
        };
        dn == preferred
    }

    /// Put an upgraded connection into the pool. Returns the connection that
    /// survives for its peer.
    fn add_connection(self: &Arc<Self>, conn: Connection) -> Result<ConnInfo, DialError> {
        let Connection { info, muxer } = conn;
        let muxer: Arc<dyn MuxedConn> = Arc::from(muxer);
        let peer = info.peer;
        let id = self.next_id();
        let entry = ConnEntry {
            id,
            info: info.clone(),
            muxer: muxer.clone(),
        };
        let metrics = &self.gate_shared.metrics;
        let mut to_close = None;
        let result = {
            let mut st = self.lock();
            let per_peer = self.limits.max_connections_per_peer.max(1);
            let existing = st.conns.get(&peer).map_or(0, Vec::len);
            let at_cap = match info.direction {
                Direction::Inbound => {
                    self.gate_shared.established_in.load(Ordering::Acquire)
                        >= self.limits.max_inbound_connections
                }
                Direction::Outbound => st.established_out >= self.limits.max_outbound_connections,
            };
            if self.is_shut_down() {
                to_close = Some(muxer);
                Err(DialError::Shutdown)
            } else if existing >= per_peer && per_peer == 1 {
                let old = st.conns[&peer][0].clone();
                if self.keep_new(&old.info, &info) {
                    tracing::debug!(%peer, old = %old.info.remote_addr, new = %info.remote_addr, "connection replaced (simultaneous dial rule)");
                    st.conns.insert(peer, vec![entry]);
                    self.count_remove(&mut st, old.info.direction);
                    self.count_add(&mut st, info.direction);
                    tokio::spawn(run_connection(self.clone(), id, info.clone(), muxer));
                    to_close = Some(old.muxer);
                    Ok(info)
                } else {
                    tracing::debug!(%peer, kept = %old.info.remote_addr, dropped = %info.remote_addr, "connection dropped (simultaneous dial rule)");
                    to_close = Some(muxer);
                    Ok(old.info)
                }
            } else if existing >= per_peer {
                metrics.refusal("per_peer_cap", "upgraded");
                to_close = Some(muxer);
                Err(DialError::LimitReached("connections per peer"))
            } else if at_cap {
                let reason = match info.direction {
                    Direction::Inbound => "peer_cap",
                    Direction::Outbound => "outbound_cap",
                };
                metrics.refusal(reason, "upgraded");
                to_close = Some(muxer);
                Err(DialError::LimitReached(reason))
            } else {
                st.conns.entry(peer).or_default().push(entry);
                self.count_add(&mut st, info.direction);
                tokio::spawn(run_connection(self.clone(), id, info.clone(), muxer));
                if existing == 0 {
                    tracing::debug!(%peer, remote = %info.remote_addr, direction = ?info.direction, "connected");
                    self.emit(HostEvent::Connected(info.clone()));
                }
                Ok(info)
            }
        };
        if let Some(m) = to_close {
            tokio::spawn(async move { m.close().await });
        }
        result
    }

    fn connection_closed(&self, id: u64, peer: PeerId, reason: String) {
        let mut st = self.lock();
        let Some(list) = st.conns.get_mut(&peer) else {
            return;
        };
        let Some(pos) = list.iter().position(|e| e.id == id) else {
            return;
        };
        let e = list.remove(pos);
        let now_empty = list.is_empty();
        if now_empty {
            st.conns.remove(&peer);
        }
        self.count_remove(&mut st, e.info.direction);
        drop(st);
        if now_empty {
            tracing::debug!(%peer, %reason, "disconnected");
            self.emit(HostEvent::Disconnected { peer, reason });
        }
    }

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
    async fn negotiate_inbound(
        self: Arc<Self>,
        info: ConnInfo,
        stream: BoxStream,
        permit: OwnedSemaphorePermit,
    ) {
        let metrics = &self.gate_shared.metrics;
        let protocols: Vec<String> = self.lock().handlers.keys().cloned().collect();
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
        let handler = self.lock().handlers.get(&protocol).cloned();
        let Some(handler) = handler else {
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
async fn run_listener(inner: Arc<Inner>, mut listener: Box<dyn plexus_core::Listener>) {
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

/// Accept a connection's inbound streams until it closes (or shutdown).
async fn run_connection(inner: Arc<Inner>, id: u64, info: ConnInfo, muxer: Arc<dyn MuxedConn>) {
    let slots = Arc::new(Semaphore::new(inner.limits.max_negotiating_streams.max(1)));
    let mut sd = inner.shutdown_signal();
    let reason = loop {
        let res = tokio::select! {
            _ = sd.wait() => break "host shut down".to_owned(),
            r = muxer.accept() => r,
        };
        match res {
            Ok(mut s) => match slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    tokio::spawn(inner.clone().negotiate_inbound(info.clone(), s, permit));
                }
                Err(_) => {
                    s.reset();
                    inner.gate_shared.metrics.stream_reset("negotiation_slots");
                }
            },
            Err(e) => break e.to_string(),
        }
    };
    inner.connection_closed(id, info.peer, reason);
    muxer.close().await;
}

/// Prune expired bans and backoff entries now and then.
async fn run_maintenance(inner: Arc<Inner>) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quic_addresses_are_dialed_first_in_their_given_order() {
        let a = |s: &str| s.parse::<Multiaddr>().unwrap();
        let got = quic_first(vec![
            a("/ip4/1.1.1.1/tcp/9000"),
            a("/ip4/2.2.2.2/udp/9001/quic-v1"),
            a("/ip6/::1/tcp/9000"),
            a("/ip4/3.3.3.3/udp/9001/quic-v1"),
        ]);
        assert_eq!(
            got,
            vec![
                a("/ip4/2.2.2.2/udp/9001/quic-v1"),
                a("/ip4/3.3.3.3/udp/9001/quic-v1"),
                a("/ip4/1.1.1.1/tcp/9000"),
                a("/ip6/::1/tcp/9000"),
            ]
        );
    }
}
