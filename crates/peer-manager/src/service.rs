//! The tokio glue: runs a [`PeerManager`] against a host, Req/Resp and gossipsub.
//!
//! ```no_run
//! # async fn f(keypair: plexus_host::Keypair, schedule: std::sync::Arc<plexus_eth::ForkSchedule>,
//! #     rr_cfg: plexus_reqresp::ReqRespConfig, md: plexus_eth::MetaDataV3,
//! #     status: plexus_peer_manager::service::StatusFn) {
//! use std::sync::Arc;
//! use plexus_peer_manager::{PeerManagerConfig, service::PeerManagerBuilder};
//! let pm = PeerManagerBuilder::new(PeerManagerConfig::default(), status).unwrap();
//! let mut host_cfg = plexus_host::HostConfig::new(keypair);
//! host_cfg.gater = Some(pm.gater());
//! host_cfg.dial_ranker = Some(pm.ranker());
//! let host = plexus_host::Host::new(host_cfg).await.unwrap();
//! let rr = plexus_reqresp::ReqResp::spawn(
//!     host.clone(), schedule, rr_cfg, pm.responder(Arc::new(plexus_reqresp::NoResponder)), md,
//! ).unwrap();
//! let handle = pm.start(host, rr, None).unwrap();
//! # }
//! ```

use std::sync::Arc;
use std::time::Instant;

use plexus_core::{Blame, BoxFut, ConnectionGater, PeerId};
use plexus_eth::StatusV2;
use plexus_gossipsub::Gossipsub;
use plexus_host::{DialRanker, Host, HostEvent};
use plexus_identify::IdentifyEvent;
use plexus_multiaddr::{Multiaddr, Protocol as Proto};
use plexus_reqresp::{
    MetaData, Protocol, ReqRespEvent, ReqRespHandle, Request, RespondError, Responder,
    ResponseSink, Status, status_answer,
};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::config::{ConfigError, PeerManagerConfig};
use crate::gate::PeerManagerGate;
use crate::manager::{
    Action, Advertised, PeerInfo, PeerManager, PeerMetadata, PeerStatus, SubnetNeeds,
};
use crate::metrics::PeerManagerMetrics;
use crate::score::{PeerAction, ReportSource};

/// Our current Status (the client's head and finalized checkpoint), asked for whenever
/// we send or answer one.
pub type StatusFn = Arc<dyn Fn() -> StatusV2 + Send + Sync>;

/// How often a Goodbye's sender checks whether the peer has closed.
const GOODBYE_POLL: std::time::Duration = std::time::Duration::from_millis(20);

/// Commands to the peer manager's task (bounded).
const COMMAND_CAPACITY: usize = 1024;

enum Cmd {
    Candidate(PeerId, Vec<Multiaddr>),
    Discovered(PeerId, Vec<Multiaddr>, Advertised),
    Trusted(PeerId, Vec<Multiaddr>),
    Report(PeerId, PeerAction, ReportSource),
    Blame(PeerId, Blame, ReportSource),
    GossipScore(PeerId, f64),
    Needs(SubnetNeeds),
    ForkDigests(Vec<plexus_eth::ForkDigest>),
    Agent(PeerId, String),
    InboundStatus(PeerId, PeerStatus),
    Peers(oneshot::Sender<Vec<(PeerId, PeerInfo)>>),
}

/// What a spawned request reports back.
enum Done {
    Dial(PeerId, bool),
    Status(PeerId, Result<PeerStatus, Blame>),
    Metadata(PeerId, Result<PeerMetadata, Blame>),
    Ping(PeerId, Result<u64, Blame>),
    GossipScores(Vec<(PeerId, f64)>),
}

/// Builds the peer manager: its gater and ranker go into the host's config, its
/// responder wraps the client's for Req/Resp, then [`PeerManagerBuilder::start`] runs it.
pub struct PeerManagerBuilder {
    identify: Option<broadcast::Receiver<IdentifyEvent>>,
    cfg: PeerManagerConfig,
    metrics: PeerManagerMetrics,
    gate: PeerManagerGate,
    status: StatusFn,
    tx: mpsc::Sender<Cmd>,
    rx: mpsc::Receiver<Cmd>,
}

impl std::fmt::Debug for PeerManagerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerManagerBuilder")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl PeerManagerBuilder {
    /// A peer manager with `cfg`, sending and answering Status from `status`.
    ///
    /// # Errors
    /// The config contradicts itself.
    pub fn new(cfg: PeerManagerConfig, status: StatusFn) -> Result<Self, ConfigError> {
        Self::with_gater(cfg, status, None)
    }

    /// As [`PeerManagerBuilder::new`], with the client's own gater asked after ours.
    ///
    /// # Errors
    /// The config contradicts itself.
    pub fn with_gater(
        cfg: PeerManagerConfig,
        status: StatusFn,
        app: Option<Arc<dyn ConnectionGater>>,
    ) -> Result<Self, ConfigError> {
        cfg.validate(None)?;
        let metrics = PeerManagerMetrics::new();
        let gate = PeerManagerGate::new(metrics.clone(), app);
        let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
        Ok(PeerManagerBuilder {
            identify: None,
            cfg,
            metrics,
            gate,
            status,
            tx,
            rx,
        })
    }

    /// The gater for [`HostConfig::gater`](plexus_host::HostConfig::gater).
    pub fn gater(&self) -> Arc<dyn ConnectionGater> {
        Arc::new(self.gate.clone())
    }

    /// The ranker for [`HostConfig::dial_ranker`](plexus_host::HostConfig::dial_ranker).
    pub fn ranker(&self) -> Arc<dyn DialRanker> {
        Arc::new(self.gate.clone())
    }

    /// The metrics (register them with [`PeerManagerMetrics::register`]).
    pub fn metrics(&self) -> &PeerManagerMetrics {
        &self.metrics
    }

    /// A responder for [`ReqResp::spawn`](plexus_reqresp::ReqResp::spawn): Status
    /// (`status/1` and `/2`) is answered here and reported to the peer manager; every
    /// other protocol goes to `inner`.
    pub fn responder(&self, inner: Arc<dyn Responder>) -> Arc<dyn Responder> {
        Arc::new(StatusResponder {
            inner,
            status: self.status.clone(),
            tx: self.tx.clone(),
        })
    }

    /// Take each peer's agent version (and identify failures' blame) from the identify
    /// service's events.
    pub fn with_identify(mut self, events: broadcast::Receiver<IdentifyEvent>) -> Self {
        self.identify = Some(events);
        self
    }

    /// Start the peer manager on `host` (whose gater and ranker must be ours), with `rr`
    /// for Status, Goodbye, ping and MetaData, and `gossip` for the mesh hook.
    ///
    /// # Errors
    /// The config does not fit the host's connection caps.
    pub fn start(
        self,
        host: Host,
        rr: ReqRespHandle,
        gossip: Option<Gossipsub>,
    ) -> Result<PeerManagerHandle, ConfigError> {
        let limits = host.limits();
        self.cfg.validate(Some((
            limits.max_inbound_connections,
            limits.max_outbound_connections,
        )))?;
        let (done_tx, done_rx) = mpsc::channel(COMMAND_CAPACITY);
        let mut pm = PeerManager::new(self.cfg, self.metrics.clone(), Instant::now());
        pm.set_tie_break_salt({
            use std::hash::{Hash, Hasher};
            let mut h = std::hash::DefaultHasher::new();
            host.peer_id().to_bytes().hash(&mut h);
            h.finish()
        });
        let driver = Driver {
            pm,
            host_events: host.events(),
            rr_events: rr.events(),
            identify: self.identify,
            host,
            rr,
            gossip,
            gate: self.gate.clone(),
            status: self.status,
            done_tx,
        };
        tokio::spawn(driver.run(self.rx, done_rx));
        Ok(PeerManagerHandle {
            tx: self.tx,
            metrics: self.metrics,
        })
    }
}

/// A handle to the running peer manager (cheap to clone). Calls queue a command; when
/// the queue is full (1024) the command is dropped rather than blocking the caller.
#[derive(Clone, Debug)]
pub struct PeerManagerHandle {
    tx: mpsc::Sender<Cmd>,
    metrics: PeerManagerMetrics,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cmd")
    }
}

impl PeerManagerHandle {
    fn send(&self, c: Cmd) {
        if self.tx.try_send(c).is_err() {
            tracing::debug!("peer manager command queue full or stopped; command dropped");
        }
    }

    /// A dial candidate (discovery, bootnodes).
    pub fn add_candidate(&self, peer: PeerId, addrs: Vec<Multiaddr>) {
        self.send(Cmd::Candidate(peer, addrs));
    }

    /// A dial candidate from discovery with the subnets its record advertises (ENR
    /// `attnets`, `syncnets`, `cgc`): preferred while a needed subnet it serves is short
    /// of peers (see [`PeerManager::add_discovered`]).
    pub fn add_discovered(&self, peer: PeerId, addrs: Vec<Multiaddr>, advertised: Advertised) {
        self.send(Cmd::Discovered(peer, addrs, advertised));
    }

    /// A trusted peer: never pruned or scored out, dialed whenever disconnected.
    pub fn add_trusted(&self, peer: PeerId, addrs: Vec<Multiaddr>) {
        self.send(Cmd::Trusted(peer, addrs));
    }

    /// Report what a peer did.
    pub fn report(&self, peer: PeerId, action: PeerAction, source: ReportSource) {
        self.send(Cmd::Report(peer, action, source));
    }

    /// Report an error with a blame (e.g. a gossipsub `StreamFault`, a failed request):
    /// a misbehaving peer is penalised.
    pub fn report_blame(&self, peer: PeerId, blame: Blame, source: ReportSource) {
        self.send(Cmd::Blame(peer, blame, source));
    }

    /// The gossipsub router's score of a peer.
    pub fn set_gossip_score(&self, peer: PeerId, score: f64) {
        self.send(Cmd::GossipScore(peer, score));
    }

    /// The subnets we need peers on.
    pub fn set_needs(&self, needs: SubnetNeeds) {
        self.send(Cmd::Needs(needs));
    }

    /// The fork digests a peer's Status may carry (empty: any).
    pub fn set_fork_digests(&self, digests: Vec<plexus_eth::ForkDigest>) {
        self.send(Cmd::ForkDigests(digests));
    }

    /// A peer's agent version (from identify).
    pub fn set_agent(&self, peer: PeerId, agent: String) {
        self.send(Cmd::Agent(peer, agent));
    }

    /// Every stored peer, as the peer manager sees it now.
    pub async fn peers(&self) -> Vec<(PeerId, PeerInfo)> {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Cmd::Peers(tx)).await.is_err() {
            return Vec::new();
        }
        rx.await.unwrap_or_default()
    }

    /// The metrics.
    pub fn metrics(&self) -> &PeerManagerMetrics {
        &self.metrics
    }
}

fn peer_status(s: &Status) -> PeerStatus {
    match s {
        Status::V1(s) => PeerStatus {
            fork_digest: s.fork_digest,
            finalized_epoch: s.finalized_epoch,
            head_slot: s.head_slot,
        },
        Status::V2(s) => PeerStatus {
            fork_digest: s.fork_digest,
            finalized_epoch: s.finalized_epoch,
            head_slot: s.head_slot,
        },
    }
}

fn peer_metadata(m: &MetaData) -> PeerMetadata {
    let bits = |b: &[bool]| {
        b.iter()
            .enumerate()
            .fold(0u64, |acc, (i, v)| acc | (u64::from(*v) << i))
    };
    match m {
        MetaData::V1(m) => PeerMetadata {
            seq_number: m.seq_number,
            attnets: bits(&m.attnets.iter().collect::<Vec<_>>()),
            ..PeerMetadata::default()
        },
        MetaData::V2(m) => PeerMetadata {
            seq_number: m.seq_number,
            attnets: bits(&m.attnets.iter().collect::<Vec<_>>()),
            syncnets: bits(&m.syncnets.iter().collect::<Vec<_>>()) as u8,
            ..PeerMetadata::default()
        },
        MetaData::V3(m) => PeerMetadata {
            seq_number: m.seq_number,
            attnets: bits(&m.attnets.iter().collect::<Vec<_>>()),
            syncnets: bits(&m.syncnets.iter().collect::<Vec<_>>()) as u8,
            custody_group_count: m.custody_group_count,
            custody_columns: 0,
        },
    }
}

/// Answers Status itself (and tells the peer manager), hands the rest to the client.
struct StatusResponder {
    inner: Arc<dyn Responder>,
    status: StatusFn,
    tx: mpsc::Sender<Cmd>,
}

impl Responder for StatusResponder {
    fn protocols(&self) -> Vec<Protocol> {
        let mut p = self.inner.protocols();
        for s in [Protocol::StatusV1, Protocol::StatusV2] {
            if !p.contains(&s) {
                p.push(s);
            }
        }
        p
    }

    fn respond<'a>(
        &'a self,
        peer: PeerId,
        request: Request,
        sink: &'a mut ResponseSink,
    ) -> BoxFut<'a, Result<(), RespondError>> {
        let theirs = match &request {
            Request::StatusV1(s) => peer_status(&Status::V1(*s)),
            Request::StatusV2(s) => peer_status(&Status::V2(*s)),
            _ => return self.inner.respond(peer, request, sink),
        };
        let _ = self.tx.try_send(Cmd::InboundStatus(peer, theirs));
        let Some(ssz) = status_answer(&request, (self.status)()) else {
            return self.inner.respond(peer, request, sink);
        };
        Box::pin(async move {
            sink.send(&ssz, 0)
                .await
                .map_err(|e| RespondError::ServerError(e.to_string()))
        })
    }
}

struct Driver {
    pm: PeerManager,
    host: Host,
    rr: ReqRespHandle,
    gossip: Option<Gossipsub>,
    gate: PeerManagerGate,
    status: StatusFn,
    host_events: broadcast::Receiver<HostEvent>,
    rr_events: broadcast::Receiver<ReqRespEvent>,
    identify: Option<broadcast::Receiver<IdentifyEvent>>,
    done_tx: mpsc::Sender<Done>,
}

/// The next identify event, or never without an identify service.
async fn next_identify(
    rx: &mut Option<broadcast::Receiver<IdentifyEvent>>,
) -> Result<IdentifyEvent, broadcast::error::RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

impl Driver {
    async fn run(mut self, mut cmds: mpsc::Receiver<Cmd>, mut done: mpsc::Receiver<Done>) {
        self.flush();
        // The gossipsub router's scores are folded in once per heartbeat.
        let mut scores = tokio::time::interval(self.pm.config().heartbeat_interval);
        scores.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = tokio::time::Instant::from_std(self.pm.next_timeout());
            tokio::select! {
                c = cmds.recv() => match c {
                    Some(c) => self.on_cmd(c),
                    None => break,
                },
                d = done.recv() => {
                    if let Some(d) = d {
                        self.on_done(d);
                    }
                }
                ev = self.host_events.recv() => match ev {
                    Ok(ev) => self.on_host(ev),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "peer manager lagged behind host events");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                ev = self.rr_events.recv() => match ev {
                    Ok(ev) => self.on_rr(ev),
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "peer manager lagged behind req/resp events");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                ev = next_identify(&mut self.identify) => match ev {
                    Ok(IdentifyEvent::Received { peer, info, .. }) => {
                        if let Some(agent) = info.agent_version {
                            self.pm.set_agent(&peer, agent);
                        }
                    }
                    Ok(IdentifyEvent::Failed { peer, blame, .. }) => {
                        self.pm.on_blame(peer, blame, ReportSource::Transport, Instant::now());
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => self.identify = None,
                },
                _ = tokio::time::sleep_until(deadline) => {
                    self.pm.tick(Instant::now());
                }
                _ = scores.tick(), if self.gossip.is_some() => {
                    if let Some(g) = self.gossip.clone() {
                        let done = self.done_tx.clone();
                        tokio::spawn(async move {
                            if let Ok(s) = g.peer_scores().await {
                                let _ = done.send(Done::GossipScores(s)).await;
                            }
                        });
                    }
                }
            }
            self.flush();
        }
    }

    fn on_cmd(&mut self, c: Cmd) {
        let now = Instant::now();
        match c {
            Cmd::Candidate(p, a) => self.pm.add_candidate(p, a, now),
            Cmd::Discovered(p, a, adv) => self.pm.add_discovered(p, a, adv, now),
            Cmd::Trusted(p, a) => self.pm.add_trusted(p, a, now),
            Cmd::Report(p, a, s) => self.pm.report(p, a, s, now),
            Cmd::Blame(p, b, s) => self.pm.on_blame(p, b, s, now),
            Cmd::GossipScore(p, s) => self.pm.set_gossip_score(&p, s, now),
            Cmd::Needs(n) => self.pm.set_needs(n),
            Cmd::ForkDigests(d) => self.pm.set_fork_digests(d),
            Cmd::Agent(p, a) => self.pm.set_agent(&p, a),
            Cmd::InboundStatus(p, s) => self.pm.on_status(p, s, now),
            Cmd::Peers(tx) => {
                let _ = tx.send(self.pm.peers().map(|(a, b)| (*a, b.clone())).collect());
            }
        }
    }

    fn on_done(&mut self, d: Done) {
        let now = Instant::now();
        match d {
            Done::Dial(p, ok) => {
                if !ok {
                    self.pm.on_dial_failed(&p, now);
                }
            }
            Done::Status(p, Ok(s)) => self.pm.on_status(p, s, now),
            Done::Status(p, Err(b)) => self.pm.on_status_failed(p, b, now),
            Done::Metadata(p, Ok(m)) => self.pm.on_metadata(&p, m),
            Done::Ping(p, Ok(seq)) => self.pm.on_ping(p, seq, now),
            Done::Metadata(p, Err(b)) | Done::Ping(p, Err(b)) => {
                self.pm.on_blame(p, b, ReportSource::ReqResp, now);
            }
            Done::GossipScores(scores) => {
                for (p, s) in scores {
                    self.pm.set_gossip_score(&p, s, now);
                }
            }
        }
    }

    fn on_host(&mut self, ev: HostEvent) {
        let now = Instant::now();
        match ev {
            HostEvent::Connected(info) => {
                self.pm
                    .on_connected(info.peer, info.direction, &info.remote_addr, now);
            }
            HostEvent::Disconnected { peer, cause } => {
                // A connection that failed by the peer's fault (a muxer protocol error)
                // costs it score.
                self.pm
                    .on_blame(peer, cause.blame(), ReportSource::Transport, now);
                self.pm.on_disconnected(&peer, now);
            }
            HostEvent::DialFailed {
                peer: Some(peer),
                error,
                ..
            } => {
                // A dial whose handshake the peer broke (bad Noise or TLS, garbage).
                self.pm
                    .on_blame(peer, error.blame(), ReportSource::Transport, now);
            }
            _ => {}
        }
    }

    fn on_rr(&mut self, ev: ReqRespEvent) {
        let now = Instant::now();
        match ev {
            ReqRespEvent::Goodbye { peer, reason } => self.pm.on_goodbye(peer, reason, now),
            ReqRespEvent::Ping { peer, seq_number } => self.pm.on_ping(peer, seq_number, now),
            ReqRespEvent::InboundFailed { peer, blame, .. } => {
                self.pm.on_blame(peer, blame, ReportSource::ReqResp, now);
            }
            _ => {}
        }
    }

    /// Carry out the peer manager's actions and publish its gate snapshot.
    fn flush(&mut self) {
        while let Some(a) = self.pm.poll_action() {
            self.execute(a);
        }
        if let Some(snap) = self.pm.take_gate_snapshot(Instant::now()) {
            self.gate.publish(snap);
        }
    }

    fn execute(&mut self, a: Action) {
        let done = self.done_tx.clone();
        // Requests go only to connected peers: a request opens a stream, and a stream to a
        // peer that is gone would dial it.
        if let Action::RequestStatus(p) | Action::Ping(p) | Action::RequestMetadata(p) = &a
            && self.host.connection(p).is_none()
        {
            return;
        }
        match a {
            Action::Dial { peer, addrs } => {
                let host = self.host.clone();
                let addrs: Vec<Multiaddr> = addrs
                    .into_iter()
                    .map(|a| a.with(Proto::P2p(peer)))
                    .collect();
                tokio::spawn(async move {
                    let ok = host.connect(addrs).await.is_ok();
                    let _ = done.send(Done::Dial(peer, ok)).await;
                });
            }
            Action::RequestStatus(peer) => {
                let rr = self.rr.clone();
                let ours = (self.status)();
                tokio::spawn(async move {
                    let r = rr
                        .status(peer, ours)
                        .await
                        .map(|s| peer_status(&s))
                        .map_err(|e| e.blame());
                    let _ = done.send(Done::Status(peer, r)).await;
                });
            }
            Action::Goodbye { peer, reason } => {
                let rr = self.rr.clone();
                let host = self.host.clone();
                let timeout = self.pm.config().goodbye_timeout;
                let gossip = self.gossip.clone();
                tokio::spawn(async move {
                    if let Some(g) = gossip {
                        let _ = g.set_accepted(peer, false).await;
                    }
                    let end = tokio::time::Instant::now() + timeout;
                    let _ = tokio::time::timeout_at(end, rr.goodbye(peer, reason)).await;
                    // Closing at once could drop the Goodbye before the peer reads it: give
                    // it until the timeout to close first (as it does when it reads it).
                    while host.connection(&peer).is_some() && tokio::time::Instant::now() < end {
                        tokio::time::sleep(GOODBYE_POLL).await;
                    }
                    host.disconnect(peer);
                });
            }
            Action::Disconnect(peer) => self.host.disconnect(peer),
            Action::Ban { peer, duration } => {
                self.host.bans().ban_peer(peer, duration);
            }
            Action::BanIp { ip, duration } => self.host.bans().ban_ip(ip, duration),
            Action::SetAccepted { peer, accepted } => {
                if let Some(g) = self.gossip.clone() {
                    tokio::spawn(async move {
                        let _ = g.set_accepted(peer, accepted).await;
                    });
                }
            }
            Action::Ping(peer) => {
                let rr = self.rr.clone();
                tokio::spawn(async move {
                    let r = rr.ping(peer).await.map_err(|e| e.blame());
                    let _ = done.send(Done::Ping(peer, r)).await;
                });
            }
            Action::RequestMetadata(peer) => {
                let rr = self.rr.clone();
                tokio::spawn(async move {
                    let r = rr
                        .metadata(peer)
                        .await
                        .map(|m| peer_metadata(&m))
                        .map_err(|e| e.blame());
                    let _ = done.send(Done::Metadata(peer, r)).await;
                });
            }
        }
    }
}
