//! The host's public face: [`HostConfig`], the cheap-to-clone [`Host`]
//! handle, and the [`HostEvent`]s it sends. The state behind the handle is
//! [`Inner`]; the code working on it lives in `pool.rs`, `dial.rs`,
//! `addrbook.rs`, `inbound.rs` and `handlers.rs`.

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex};

use plexus_conn::Upgrader;
use plexus_core::{
    Blame, BoxStream, ConnInfo, ConnectionGater, MuxError, MuxerUpgrade, PeerId, PublicKey,
    SecurityUpgrade, Transport,
};
use plexus_identity::Keypair;
use plexus_multiaddr::Multiaddr;
use plexus_multistream as mss;
use plexus_noise::NoiseConfig;
use plexus_tcp::{TcpConfig, TcpTransport};
use plexus_yamux::YamuxConfig;
use tokio::sync::{Semaphore, broadcast, watch};

use crate::bans::BanList;
use crate::dial::DialRanker;
use crate::error::{
    AlreadyRegistered, DialError, DialFailure, DisconnectCause, HostError, OpenError,
};
use crate::gate::{GateShared, HostGate};
use crate::inbound::run_listener;
use crate::inner::{Inner, State, run_maintenance};
use crate::limits::{HandlerOpts, HostLimits};
use crate::metrics::HostMetrics;
use crate::pending::{PendingLimits, PendingTable};
use crate::pool::ConnEntry;
use crate::stream::{Incoming, Muxed};

/// Everything a [`Host`] is built from.
pub struct HostConfig {
    /// Our identity.
    pub keypair: Keypair,
    /// Addresses to listen on, bound by [`Host::new`] (port 0 picks a free
    /// port; see [`Host::listen_addrs`]). Default: none (dial only).
    pub listen: Vec<Multiaddr>,
    /// Every bound of the host.
    pub limits: HostLimits,
    /// Muxers in preference order, for connections the upgrader secures
    /// itself (TCP). Empty (the default) means yamux, then mplex (the
    /// consensus spec requires mplex on TCP and gives yamux precedence), each
    /// with its default protocol settings and the per-connection limits of
    /// [`HostLimits::mux`]. Muxers given here carry their own settings and
    /// limits ([`HostLimits::mux`] is then not used); a transport that
    /// multiplexes itself (QUIC) uses none of them.
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

/// What happens to the host's connections. Delivered through a bounded
/// broadcast ([`HostLimits::event_capacity`]): a receiver that falls behind
/// misses the oldest events and gets `RecvError::Lagged` once.
///
/// Events that report a failure carry it typed, with who is to blame
/// ([`HostEvent::blame`]). New kinds of events may be added: match with a
/// `_` arm.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum HostEvent {
    /// A peer got its first connection. (When a second connection replaces
    /// the first, by the simultaneous-dial rule, no event is sent;
    /// [`Host::connection`] shows the survivor.)
    Connected(ConnInfo),
    /// A peer lost its last connection.
    Disconnected {
        /// The peer.
        peer: PeerId,
        /// Why: our [`Host::disconnect`], shutdown, the remote's close, or a
        /// connection error (with its blame).
        cause: DisconnectCause,
    },
    /// A dial failed: one address (`addr` set, `error` is
    /// [`DialFailure::Attempt`]), or the whole dial when no address could be
    /// tried (`addr` unset, `error` is [`DialFailure::Dial`]: none known, all
    /// in backoff).
    DialFailed {
        /// The peer dialed, when known.
        peer: Option<PeerId>,
        /// The address that failed.
        addr: Option<Multiaddr>,
        /// Why.
        error: DialFailure,
    },
    /// A listen address was bound (sent by `Host::new`, before anyone can
    /// subscribe; [`Host::listen_addrs`] is authoritative).
    NewListenAddr(Multiaddr),
}

impl HostEvent {
    /// Who is to blame for the failure the event reports: the
    /// [`DisconnectCause::blame`] of `Disconnected`, the
    /// [`DialFailure::blame`] of `DialFailed`; `None` for the events that
    /// report no failure.
    pub fn blame(&self) -> Option<Blame> {
        match self {
            HostEvent::Disconnected { cause, .. } => Some(cause.blame()),
            HostEvent::DialFailed { error, .. } => Some(error.blame()),
            HostEvent::Connected(_) | HostEvent::NewListenAddr(_) => None,
        }
    }
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
        let mut p = self.inner.protocols();
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
        self.inner.register(protocol, opts)
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
        self.inner.add_addrs(peer, &addrs);
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
        self.inner.disconnect(peer);
    }

    /// The connection to `peer`, if any.
    pub fn connection(&self, peer: &PeerId) -> Option<ConnInfo> {
        self.inner.entry(peer).map(|e| e.info)
    }

    /// The connected peers.
    pub fn connected_peers(&self) -> Vec<PeerId> {
        self.inner.connected_peers()
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
            let entries = self.inner.drain_for_shutdown(&mut st);
            st.handlers.clear();
            entries
        };
        futures::future::join_all(entries.iter().map(|e| e.muxer.close())).await;
    }
}
