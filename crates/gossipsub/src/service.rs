//! The tokio glue: runs a [`Router`] on a [`Host`].
//!
//! One driver task owns the router and every gossipsub stream; it polls them itself, so a
//! frame costs no hop between tasks. Per peer: one outbound stream (opened when the peer
//! connects, offering `/meshsub/1.3.0` down to `/meshsub/1.0.0`), written one frame at a time
//! from the router (a write in progress is a future the driver polls), so everything not yet
//! written stays in the router's editable queue; and the inbound stream the peer opened,
//! read as length-prefixed RPCs bounded by the wire limits. The driver reads an inbound
//! stream only when it is ready for the next RPC: a peer that floods us is slowed by TCP
//! (and the muxer's window), not buffered.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::{FuturesUnordered, SelectAll};
use plexus_core::{Blame, PeerId};
use plexus_host::{HandlerOpts, Host, HostEvent, InboundStream, Incoming};
use plexus_multiaddr::{Multiaddr, Protocol};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand::seq::SliceRandom;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::config::Config;
use crate::metrics::GossipMetrics;
use crate::router::{Acceptance, Event, PeerConn, PublishError, Router, RouterStats, TopicStats};
use crate::types::{MessageId, Rpc, TopicHash, Version};
use crate::wire::{FrameDecoder, decode_rpc};

/// Settings of the glue (the router's are in [`Config`]).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// Inbound stream bounds per protocol. Default backlog 64, at most 2 inbound streams
    /// per peer (one, plus its replacement while the old one closes).
    pub handler: HandlerOpts,
    /// Events queued for the application. When full, a new message is dropped as ignored
    /// (counted) rather than stalling the router. Default 4096.
    pub event_capacity: usize,
    /// Commands queued from handles. Default 1024.
    pub command_capacity: usize,
    /// The router's random seed; `None` draws one.
    pub seed: Option<u64>,
    /// Frames at least this large are "large" for [`ServiceConfig::max_large_in_flight`].
    /// Default 16 KiB.
    pub large_frame: usize,
    /// Large frames being written at once, over all peers. The rest wait in the router's
    /// queues, where an IDONTWANT can still cancel them, and the copy on the wire gets the
    /// uplink's full bandwidth (the first copy of a block reaches a peer sooner than if
    /// every copy shared the uplink). A copy slower than the others gives up its slot (see
    /// [`ServiceConfig::large_slot_min_rate`]). Default 1.
    pub max_large_in_flight: usize,
    /// A large frame still being written after this long gives up its slot whatever its
    /// size (the writer goes on): a peer that stops reading cannot stall the others.
    /// Default 1 s.
    pub large_slot_timeout: Duration,
    /// A large frame holds its slot for at most `large_slot_grace` plus its length at the
    /// rate copies are being taken: [`SLOW_COPY_FACTOR`] times slower than the recent
    /// average of this node's large copies, or this rate (bytes per second) when that is
    /// slower still. A peer that reads more slowly than the rest thus gives up its slot
    /// early and the next copy starts beside it. Default 1 MiB/s.
    pub large_slot_min_rate: u64,
    /// Scheduling slack added to every large frame's slot time; copies written within it
    /// are left out of the average rate (the transport's buffers took them at once).
    /// Default 20 ms.
    pub large_slot_grace: Duration,
}

/// How many times slower than this node's recent large copies a copy may go before it gives
/// up its large-frame slot.
pub const SLOW_COPY_FACTOR: f64 = 4.0;

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            handler: HandlerOpts {
                backlog: 64,
                max_inbound_per_peer: 2,
            },
            event_capacity: 4096,
            command_capacity: 1024,
            seed: None,
            large_frame: 16 * 1024,
            max_large_in_flight: 1,
            large_slot_timeout: Duration::from_secs(1),
            large_slot_min_rate: 1 << 20,
            large_slot_grace: Duration::from_millis(20),
        }
    }
}

/// A problem with a peer's inbound stream, for the application's peer scoring.
#[derive(Debug, Clone, thiserror::Error)]
#[error("gossipsub stream from {peer}: {error}")]
pub struct StreamFault {
    /// The peer.
    pub peer: PeerId,
    /// Who is to blame.
    pub blame: Blame,
    /// What went wrong.
    pub error: String,
}

/// What the service tells the application: the router's events, plus stream faults.
// A fault is rare and a message is the common case: boxing the message variant would add an
// allocation per message for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum GossipEvent {
    /// A router event.
    Router(Event),
    /// A peer sent bytes we could not accept; its stream was reset.
    StreamFault(StreamFault),
}

/// A snapshot of the router's state.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Whole-router counters.
    pub stats: RouterStats,
    /// Counters per topic.
    pub topics: Vec<(TopicHash, TopicStats)>,
    /// Mesh peers per subscribed topic.
    pub mesh: Vec<(TopicHash, Vec<PeerId>)>,
    /// Connected gossipsub peers.
    pub peers: usize,
}

enum Cmd {
    Subscribe(TopicHash, oneshot::Sender<bool>),
    Unsubscribe(TopicHash, oneshot::Sender<bool>),
    Publish(
        TopicHash,
        Bytes,
        oneshot::Sender<Result<MessageId, PublishError>>,
    ),
    Validate(MessageId, Acceptance),
    Accept(PeerId, bool),
    AppScore(PeerId, f64),
    TopicParams(
        TopicHash,
        Option<crate::score::TopicScoreParams>,
        oneshot::Sender<bool>,
    ),
    Snapshot(oneshot::Sender<Snapshot>),
    Scores(oneshot::Sender<Vec<(PeerId, f64)>>),
}

/// An outbound stream opened (or not) for a peer.
type Opened = (PeerId, Result<(Version, plexus_core::BoxStream), String>);

/// What an inbound stream yields: a decoded RPC, or the fault that ended it.
// `Rpc` is the common item: boxing it would cost an allocation per RPC.
#[allow(clippy::large_enum_variant)]
enum Read {
    Rpc(Rpc),
    Fault(StreamFault),
}

/// An inbound stream, as the RPCs read from it.
type Reader = Pin<Box<dyn futures::Stream<Item = (PeerId, Read)> + Send>>;

/// A frame (and the PREAMBLE before it) whose write failed.
type Unsent = (Option<Bytes>, Bytes);

/// A frame being written: yields the peer, the writer's generation, the stream back, and,
/// when the write failed, what it did not write.
type Write =
    Pin<Box<dyn Future<Output = (PeerId, u64, plexus_core::BoxStream, Option<Unsent>)> + Send>>;

/// The gossipsub service. [`GossipsubService::spawn`] starts it.
#[derive(Debug)]
pub struct GossipsubService;

impl GossipsubService {
    /// Register the meshsub protocols on `host` and start the router.
    ///
    /// Returns the handle and the receiver of events (take messages from it and answer
    /// each with [`Gossipsub::report_validation`] when [`Config::validate_messages`]).
    /// Must be called within a tokio runtime.
    ///
    /// # Errors
    /// [`plexus_host::AlreadyRegistered`] when a meshsub protocol has a handler; an invalid
    /// configuration is reported as [`SpawnError::Config`].
    pub fn spawn(
        host: Host,
        cfg: Config,
        svc: ServiceConfig,
        metrics: Option<GossipMetrics>,
    ) -> Result<(Gossipsub, mpsc::Receiver<GossipEvent>), SpawnError> {
        let seed = svc.seed.unwrap_or_else(rand::random);
        let router = Router::new(cfg, host.peer_id(), seed, Instant::now().into_std())
            .map_err(SpawnError::Config)?;
        let mut incoming = SelectAll::new();
        for v in Version::ALL {
            let inc: Incoming = host
                .handle(v.protocol(), svc.handler)
                .map_err(SpawnError::Registered)?;
            incoming.push(inc);
        }
        let (cmd_tx, cmd_rx) = mpsc::channel(svc.command_capacity.max(1));
        let (event_tx, event_rx) = mpsc::channel(svc.event_capacity.max(1));
        // Only stream-opening tasks send here, at most one per peer at a time.
        let (opened_tx, opened_rx) = mpsc::channel(64);
        let driver = Driver {
            events: host.events(),
            host,
            router,
            writers: HashMap::new(),
            writes: FuturesUnordered::new(),
            unsent: HashMap::new(),
            readers: SelectAll::new(),
            generation: 0,
            ready: Vec::new(),
            rng: SmallRng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15),
            event_tx,
            opened_tx,
            metrics,
            dropped_events: 0,
            opening: HashSet::new(),
            reopens: HashMap::new(),
            large_in_flight: 0,
            waiting_large: std::collections::VecDeque::new(),
            large_frame: svc.large_frame,
            max_large_in_flight: svc.max_large_in_flight.max(1),
            slots: SlotTimes {
                timeout: svc.large_slot_timeout,
                min_rate: svc.large_slot_min_rate.max(1) as f64,
                grace: svc.large_slot_grace,
                bytes: 0.0,
                secs: 0.0,
            },
        };
        // Every log line of this node's router and glue names the node (many nodes can share
        // a process: tests, the devnet).
        let span = tracing::debug_span!("gossipsub", local = %driver.host.peer_id());
        tokio::spawn(tracing::Instrument::instrument(
            driver.run(cmd_rx, opened_rx, incoming),
            span,
        ));
        Ok((Gossipsub { cmd: cmd_tx }, event_rx))
    }
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The configuration is invalid.
    #[error("config: {0}")]
    Config(#[from] crate::ConfigError),
    /// A meshsub protocol already has a handler.
    #[error(transparent)]
    Registered(#[from] plexus_host::AlreadyRegistered),
}

/// A handle to the service (cheap to clone). The service stops when every handle is
/// dropped or the host shuts down.
#[derive(Clone, Debug)]
pub struct Gossipsub {
    cmd: mpsc::Sender<Cmd>,
}

/// The service stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("gossipsub service stopped")]
pub struct Stopped;

impl Gossipsub {
    async fn ask<T>(&self, f: impl FnOnce(oneshot::Sender<T>) -> Cmd) -> Result<T, Stopped> {
        let (tx, rx) = oneshot::channel();
        self.cmd.send(f(tx)).await.map_err(|_| Stopped)?;
        rx.await.map_err(|_| Stopped)
    }

    /// Subscribe to `topic`; false when already subscribed.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn subscribe(&self, topic: impl Into<TopicHash>) -> Result<bool, Stopped> {
        let t = topic.into();
        self.ask(|tx| Cmd::Subscribe(t, tx)).await
    }

    /// Unsubscribe from `topic`; false when not subscribed.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn unsubscribe(&self, topic: impl Into<TopicHash>) -> Result<bool, Stopped> {
        let t = topic.into();
        self.ask(|tx| Cmd::Unsubscribe(t, tx)).await
    }

    /// Publish `data` on `topic`.
    ///
    /// # Errors
    /// [`Stopped`], or the router's [`PublishError`] inside.
    pub async fn publish(
        &self,
        topic: impl Into<TopicHash>,
        data: impl Into<Bytes>,
    ) -> Result<Result<MessageId, PublishError>, Stopped> {
        let (t, d) = (topic.into(), data.into());
        self.ask(|tx| Cmd::Publish(t, d, tx)).await
    }

    /// The application's verdict on a received message.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn report_validation(
        &self,
        id: MessageId,
        verdict: Acceptance,
    ) -> Result<(), Stopped> {
        self.cmd
            .send(Cmd::Validate(id, verdict))
            .await
            .map_err(|_| Stopped)
    }

    /// Accept (or stop accepting) a peer for meshes (the seed-2 hook).
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn set_accepted(&self, peer: PeerId, accepted: bool) -> Result<(), Stopped> {
        self.cmd
            .send(Cmd::Accept(peer, accepted))
            .await
            .map_err(|_| Stopped)
    }

    /// The application-specific score (P₅) of a peer.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn set_application_score(&self, peer: PeerId, score: f64) -> Result<(), Stopped> {
        self.cmd
            .send(Cmd::AppScore(peer, score))
            .await
            .map_err(|_| Stopped)
    }

    /// Set (`Some`) or drop (`None`) one topic's score parameters; false when scoring is
    /// off or the parameters are invalid (see [`Router::set_topic_score_params`]).
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn set_topic_score_params(
        &self,
        topic: impl Into<TopicHash>,
        params: Option<crate::score::TopicScoreParams>,
    ) -> Result<bool, Stopped> {
        let t = topic.into();
        self.ask(|tx| Cmd::TopicParams(t, params, tx)).await
    }

    /// A snapshot of counters and meshes.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn snapshot(&self) -> Result<Snapshot, Stopped> {
        self.ask(Cmd::Snapshot).await
    }

    /// Every connected peer's router score (P1–P7; 0 without scoring), for a peer manager
    /// to fold into its own.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn peer_scores(&self) -> Result<Vec<(PeerId, f64)>, Stopped> {
        self.ask(Cmd::Scores).await
    }
}

struct Writer {
    /// Tells this writer's writes from those of an earlier stream to the same peer.
    generation: u64,
    /// The stream, when no write is in progress.
    stream: Option<plexus_core::BoxStream>,
    /// The large frame being written, if any.
    large: Option<LargeCopy>,
}

/// A large frame handed to a writer.
struct LargeCopy {
    since: std::time::Instant,
    len: usize,
    /// When it gives up its slot if still being written.
    deadline: std::time::Instant,
    /// Whether it still holds a slot (false once its deadline passed).
    holds_slot: bool,
}

/// How long a large frame may hold its slot: its length at the rate of recent copies, slowed
/// by [`SLOW_COPY_FACTOR`] and at least `min_rate`, plus `grace`; at most `timeout`.
struct SlotTimes {
    timeout: Duration,
    min_rate: f64,
    grace: Duration,
    /// Moving averages of the bytes and seconds of recent large copies (their ratio is the
    /// rate; averaging both keeps copies that took no measurable time from making it
    /// infinite).
    bytes: f64,
    secs: f64,
}

/// Weight of the newest copy in [`SlotTimes`]' averages.
const RATE_WEIGHT: f64 = 0.125;

impl SlotTimes {
    fn hold(&self, len: usize) -> Duration {
        let typical = if self.secs > 0.0 {
            self.bytes / self.secs / SLOW_COPY_FACTOR
        } else {
            0.0
        };
        let rate = typical.max(self.min_rate);
        let t = self.grace.as_secs_f64() + len as f64 / rate;
        Duration::from_secs_f64(t.min(self.timeout.as_secs_f64()))
    }

    /// A large copy written in `took`. One done within the grace is not counted: the
    /// transport's buffers took it at once, which says nothing of the link's rate.
    fn record(&mut self, len: usize, took: Duration) {
        if took < self.grace {
            return;
        }
        if self.secs == 0.0 && self.bytes == 0.0 {
            self.bytes = len as f64;
            self.secs = took.as_secs_f64();
        } else {
            self.bytes += (len as f64 - self.bytes) * RATE_WEIGHT;
            self.secs += (took.as_secs_f64() - self.secs) * RATE_WEIGHT;
        }
    }
}

struct Driver {
    host: Host,
    events: plexus_host::Events,
    router: Router,
    writers: HashMap<PeerId, Writer>,
    /// Frames being written.
    writes: FuturesUnordered<Write>,
    /// Per peer, the frame whose write failed, written first on the stream that replaces the
    /// failed one: it may carry a GRAFT or PRUNE, and losing one leaves a mesh edge known to
    /// one side only. (A frame the peer already read is harmless twice: a repeated GRAFT,
    /// PRUNE or subscription changes nothing, a repeated message is a duplicate.)
    unsent: HashMap<PeerId, Unsent>,
    /// Inbound streams.
    readers: SelectAll<Reader>,
    /// The last writer generation handed out.
    generation: u64,
    /// Peers with frames to feed (kept to reuse its allocation).
    ready: Vec<PeerId>,
    /// Orders [`Driver::ready`].
    rng: SmallRng,
    event_tx: mpsc::Sender<GossipEvent>,
    opened_tx: mpsc::Sender<Opened>,
    metrics: Option<GossipMetrics>,
    dropped_events: u64,
    /// Outbound streams being opened.
    opening: HashSet<PeerId>,
    /// Large frames being written.
    large_in_flight: usize,
    /// Peers whose next frame is large and waits for a slot, in arrival order.
    waiting_large: std::collections::VecDeque<PeerId>,
    large_frame: usize,
    max_large_in_flight: usize,
    slots: SlotTimes,
    /// Outbound streams reopened per peer after a failure (at most [`MAX_REOPENS`]).
    reopens: HashMap<PeerId, u8>,
}

/// Times an outbound stream is reopened after it failed while the connection stayed up.
const MAX_REOPENS: u8 = 3;
/// Pause before retrying a stream that could not be opened on a live connection.
const REOPEN_DELAY: Duration = Duration::from_millis(200);

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(a) => Some(IpAddr::V4(*a)),
        Protocol::Ip6(a) => Some(IpAddr::V6(*a)),
        _ => None,
    })
}

impl Driver {
    async fn run(
        mut self,
        mut cmds: mpsc::Receiver<Cmd>,
        mut opened: mpsc::Receiver<Opened>,
        mut incoming: SelectAll<Incoming>,
    ) {
        // Peers connected before we started.
        for peer in self.host.connected_peers() {
            if let Some(info) = self.host.connection(&peer) {
                self.connected(info);
            }
        }
        let timer = tokio::time::sleep_until(Instant::from_std(self.router.poll_timeout()));
        tokio::pin!(timer);
        loop {
            let mut deadline = self.router.poll_timeout();
            if let Some(slot) = self.next_slot_deadline() {
                deadline = deadline.min(slot);
            }
            let deadline = Instant::from_std(deadline);
            if timer.deadline() != deadline {
                timer.as_mut().reset(deadline);
            }
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => break,
                },
                Some((peer, read)) = self.readers.next() => {
                    self.read(peer, read);
                    // Take what else is already there before the bookkeeping of `after`.
                    for _ in 0..RPC_BATCH {
                        match futures::poll!(self.readers.next()) {
                            std::task::Poll::Ready(Some((peer, read))) => self.read(peer, read),
                            _ => break,
                        }
                    }
                }
                Some((peer, generation, stream, unsent)) = self.writes.next() => {
                    self.written(peer, generation, stream, unsent);
                }
                Some((peer, res)) = opened.recv() => self.opened(peer, res),
                ev = self.events.recv() => match ev {
                    Ok(HostEvent::Connected(info)) => self.connected(info),
                    Ok(HostEvent::Disconnected { peer, .. }) => self.disconnected(peer),
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => self.reconcile(),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                Some(inbound) = incoming.next() => self.inbound(inbound),
                () = &mut timer => {
                    let now = Instant::now().into_std();
                    self.release_stale_slots(now);
                    self.router.handle_timeout(now);
                    if let Some(m) = &self.metrics {
                        m.update(&self.router, now);
                    }
                }
            }
            self.after();
        }
        // Stopped: close the idle outbound streams politely (a stream with a write in
        // progress goes with the driver, unclosed).
        for (_, w) in self.writers.drain() {
            if let Some(stream) = w.stream {
                close(stream);
            }
        }
    }

    fn now(&self) -> std::time::Instant {
        Instant::now().into_std()
    }

    fn command(&mut self, cmd: Cmd) {
        let now = self.now();
        match cmd {
            Cmd::Subscribe(t, tx) => {
                let _ = tx.send(self.router.subscribe(t, now));
            }
            Cmd::Unsubscribe(t, tx) => {
                let _ = tx.send(self.router.unsubscribe(&t, now));
            }
            Cmd::Publish(t, d, tx) => {
                let _ = tx.send(self.router.publish(t, d, now));
            }
            Cmd::Validate(id, v) => {
                self.router.report_validation(&id, v, now);
            }
            Cmd::Accept(p, a) => self.router.set_accepted(p, a, now),
            Cmd::AppScore(p, s) => {
                self.router.set_application_score(&p, s);
            }
            Cmd::TopicParams(t, p, tx) => {
                let _ = tx.send(self.router.set_topic_score_params(t, p));
            }
            Cmd::Snapshot(tx) => {
                let r = &self.router;
                let snap = Snapshot {
                    stats: r.stats().clone(),
                    topics: r
                        .topic_stats()
                        .iter()
                        .map(|(t, s)| (t.clone(), s.clone()))
                        .collect(),
                    mesh: r
                        .topics()
                        .into_iter()
                        .map(|t| {
                            let m = r.mesh_peers(&t);
                            (t, m)
                        })
                        .collect(),
                    peers: r.peers().len(),
                };
                let _ = tx.send(snap);
            }
            Cmd::Scores(tx) => {
                let now = self.now();
                let r = &self.router;
                let _ = tx.send(
                    r.peers()
                        .into_iter()
                        .map(|p| (p, r.peer_score(&p, now)))
                        .collect(),
                );
            }
        }
    }

    fn read(&mut self, peer: PeerId, read: Read) {
        match read {
            Read::Rpc(rpc) => {
                let now = self.now();
                // The inbound stream can beat the host's Connected event here.
                if !self.router.has_peer(&peer) {
                    match self.host.connection(&peer) {
                        Some(info) => self.connected(info),
                        None => return,
                    }
                }
                self.router.handle_rpc(peer, rpc, now);
            }
            Read::Fault(f) => {
                tracing::debug!(peer = %f.peer, blame = %f.blame, error = %f.error, "gossipsub stream fault");
                let _ = self.event_tx.try_send(GossipEvent::StreamFault(f));
            }
        }
    }

    fn opened(&mut self, peer: PeerId, res: Result<(Version, plexus_core::BoxStream), String>) {
        self.opening.remove(&peer);
        match res {
            Ok((version, stream)) => {
                if self.host.connection(&peer).is_none() || self.writers.contains_key(&peer) {
                    close(stream);
                    return;
                }
                self.generation += 1;
                let generation = self.generation;
                let stream = match self.unsent.remove(&peer) {
                    // The frame the failed stream did not take goes first (outside the
                    // large-frame slots: this is rare).
                    Some((preamble, frame)) => {
                        tracing::debug!(%peer, len = frame.len(), "writing the unsent frame again");
                        self.writes
                            .push(write(peer, generation, stream, preamble, frame));
                        None
                    }
                    None => Some(stream),
                };
                self.writers.insert(
                    peer,
                    Writer {
                        generation,
                        stream,
                        large: None,
                    },
                );
                self.router.outbound_ready(peer, version, self.now());
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "no gossipsub stream to peer");
                // Still connected (the stream may have gone to a connection that was
                // being replaced): try again shortly, a few times.
                if !self.reopen(peer, REOPEN_DELAY) {
                    self.unsent.remove(&peer);
                }
            }
        }
    }

    /// A write finished: the writer takes its stream back and the next frame, or, when the
    /// write failed, the stream is replaced.
    fn written(
        &mut self,
        peer: PeerId,
        generation: u64,
        stream: plexus_core::BoxStream,
        unsent: Option<Unsent>,
    ) {
        let now = self.now();
        let ok = unsent.is_none();
        let Some(w) = self
            .writers
            .get_mut(&peer)
            .filter(|w| w.generation == generation)
        else {
            // The writer went away (peer gone, or a newer stream) while this was written.
            close(stream);
            return;
        };
        let copy = w.large.take();
        if ok {
            w.stream = Some(stream);
        }
        if let Some(copy) = copy {
            self.slots
                .record(copy.len, now.saturating_duration_since(copy.since));
            if copy.holds_slot {
                self.large_done();
            }
        }
        if ok {
            self.router.frame_written(&peer, now);
            self.feed(peer);
            return;
        }
        tracing::debug!(%peer, "gossipsub outbound stream failed");
        self.drop_writer(&peer);
        // Still connected: keep what the router knows of the peer (its subscriptions come
        // on its own stream, which may be fine; its acceptance came from the application)
        // and open a new stream, a few times.
        if self.host.connection(&peer).is_some() && self.reopen(peer, Duration::ZERO) {
            self.router.outbound_lost(&peer);
            if let Some(unsent) = unsent {
                self.unsent.insert(peer, unsent);
            }
        } else {
            self.unsent.remove(&peer);
            self.router.remove_peer(&peer, now);
        }
    }

    fn connected(&mut self, info: plexus_core::ConnInfo) {
        let now = self.now();
        let peer = info.peer;
        self.router.add_peer(
            peer,
            PeerConn {
                direction: info.direction,
                ip: ip_of(&info.remote_addr),
            },
            now,
        );
        self.open_stream(peer, Duration::ZERO);
    }

    /// Open another outbound stream to a still-connected peer after `delay`, unless
    /// [`MAX_REOPENS`] were used; false when given up.
    fn reopen(&mut self, peer: PeerId, delay: Duration) -> bool {
        if self.host.connection(&peer).is_none() {
            return false;
        }
        let n = self.reopens.entry(peer).or_insert(0);
        if *n >= MAX_REOPENS {
            return false;
        }
        *n += 1;
        self.open_stream(peer, delay);
        true
    }

    /// Open our outbound stream to `peer` (after `delay`), unless one is open or opening.
    fn open_stream(&mut self, peer: PeerId, delay: Duration) {
        if self.writers.contains_key(&peer) || !self.opening.insert(peer) {
            return;
        }
        let host = self.host.clone();
        let tx = self.opened_tx.clone();
        tokio::spawn(async move {
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let protocols: Vec<&str> = Version::ALL.iter().map(|v| v.protocol()).collect();
            let res = match host.new_stream(peer, &protocols).await {
                Ok((p, s)) => match Version::from_protocol(&p) {
                    Some(v) => Ok((v, s)),
                    None => Err(format!("unexpected protocol {p}")),
                },
                Err(e) => Err(e.to_string()),
            };
            let _ = tx.send((peer, res)).await;
        });
    }

    fn disconnected(&mut self, peer: PeerId) {
        let now = self.now();
        self.drop_writer(&peer);
        self.unsent.remove(&peer);
        self.reopens.remove(&peer);
        self.router.remove_peer(&peer, now);
    }

    fn reconcile(&mut self) {
        let connected = self.host.connected_peers();
        for p in self.router.peers() {
            if !connected.contains(&p) {
                self.disconnected(p);
            }
        }
        for p in connected {
            if !self.router.peers().contains(&p)
                && let Some(info) = self.host.connection(&p)
            {
                self.connected(info);
            }
        }
    }

    fn inbound(&mut self, inbound: InboundStream) {
        if Version::from_protocol(&inbound.protocol).is_none() {
            return;
        }
        let limits = self.router.config().wire;
        self.readers.push(reader(inbound, limits));
    }

    /// Deliver events and start idle writers.
    fn after(&mut self) {
        let now = self.now();
        while let Some(ev) = self.router.poll_event() {
            if let (Event::Message { id, .. }, true) = (&ev, self.router.config().validate_messages)
                && self.event_tx.capacity() == 0
            {
                // The application is not keeping up: drop the message as ignored
                // rather than stall every peer.
                self.dropped_events += 1;
                let id = id.clone();
                self.router.report_validation(&id, Acceptance::Ignore, now);
                continue;
            }
            if self.event_tx.try_send(GossipEvent::Router(ev)).is_err() {
                self.dropped_events += 1;
            }
        }
        // Peers made ready together are fed in random order: with one large frame in flight,
        // the order is the order their copies go out, and a fixed one (the router's, by
        // peer id) would make the same peers last at every node.
        // Feeding can make more peers ready (a written copy releases the next one held
        // back): repeat until none is left, as the loop over the router's order did.
        let mut ready = std::mem::take(&mut self.ready);
        loop {
            while let Some(peer) = self.router.next_ready() {
                ready.push(peer);
            }
            if ready.is_empty() {
                break;
            }
            ready.shuffle(&mut self.rng);
            for peer in ready.drain(..) {
                self.feed(peer);
            }
        }
        self.ready = ready;
    }

    /// Forget the peer's writer. Its stream is closed politely: at once when idle, else
    /// when the write in progress ends.
    fn drop_writer(&mut self, peer: &PeerId) {
        let Some(w) = self.writers.remove(peer) else {
            return;
        };
        if let Some(stream) = w.stream {
            close(stream);
        }
        if w.large.is_some_and(|c| c.holds_slot) {
            self.large_done();
        }
    }

    /// When the first large frame holding a slot passes its deadline, if a peer waits for a
    /// slot (otherwise nothing needs to happen then).
    fn next_slot_deadline(&self) -> Option<std::time::Instant> {
        if self.waiting_large.is_empty() {
            return None;
        }
        self.writers
            .values()
            .filter_map(|w| w.large.as_ref().filter(|c| c.holds_slot))
            .map(|c| c.deadline)
            .min()
    }

    /// Large frames past their deadline give up their slots (a peer that reads slowly or
    /// not at all must not hold them: it would stall every other peer's large frames); the
    /// freed slots go to waiting peers.
    fn release_stale_slots(&mut self, now: std::time::Instant) {
        let mut freed = 0;
        for w in self.writers.values_mut() {
            if let Some(c) = &mut w.large
                && c.holds_slot
                && now >= c.deadline
            {
                c.holds_slot = false;
                freed += 1;
            }
        }
        for _ in 0..freed {
            self.large_done();
        }
    }

    /// A large frame finished (or its writer went away): give the slot to the next waiting
    /// peer.
    fn large_done(&mut self) {
        self.large_in_flight = self.large_in_flight.saturating_sub(1);
        while self.large_in_flight < self.max_large_in_flight {
            let Some(next) = self.waiting_large.pop_front() else {
                break;
            };
            self.feed(next);
        }
    }

    /// Hand the next frame to the peer's writer if it is idle (a large frame only when a
    /// large slot is free).
    fn feed(&mut self, peer: PeerId) {
        let now = self.now();
        let Some(w) = self.writers.get(&peer) else {
            return;
        };
        if w.stream.is_none() {
            return;
        }
        let Some(len) = self.router.next_frame_len(&peer, now) else {
            return;
        };
        let large = len >= self.large_frame;
        if large && self.large_in_flight >= self.max_large_in_flight {
            self.release_stale_slots(now);
        }
        if large && self.large_in_flight >= self.max_large_in_flight {
            if !self.waiting_large.contains(&peer) {
                self.waiting_large.push_back(peer);
            }
            return;
        }
        let Some(mut frame) = self.router.pop_frame(&peer, now) else {
            return;
        };
        let mut preamble = self.router.take_preamble(&peer);
        if !large {
            // Small frames waiting behind this one go in the same write (one muxer frame,
            // one Noise frame, one syscall), up to COALESCE bytes.
            let mut batch: Option<BytesMut> = None;
            while let Some(next) = self.router.next_frame_len(&peer, now) {
                let have = batch.as_ref().map_or(frame.len(), BytesMut::len);
                if next >= self.large_frame || have + next > COALESCE {
                    break;
                }
                let Some(more) = self.router.pop_frame(&peer, now) else {
                    break;
                };
                let b = batch.get_or_insert_with(|| BytesMut::from(&frame[..]));
                // A PREAMBLE goes right before its message, in the same write.
                if let Some(pre) = self.router.take_preamble(&peer) {
                    b.extend_from_slice(&pre);
                }
                b.extend_from_slice(&more);
            }
            if let Some(b) = batch {
                frame = b.freeze();
            }
        }
        let Some(w) = self.writers.get_mut(&peer) else {
            return;
        };
        let Some(stream) = w.stream.take() else {
            return;
        };
        if large {
            w.large = Some(LargeCopy {
                since: now,
                len: frame.len(),
                deadline: now + self.slots.hold(frame.len()),
                holds_slot: true,
            });
            self.large_in_flight += 1;
        }
        self.writes
            .push(write(peer, w.generation, stream, preamble.take(), frame));
    }
}

/// Write one frame (its PREAMBLE, if any, first) and flush it.
fn write(
    peer: PeerId,
    generation: u64,
    mut stream: plexus_core::BoxStream,
    preamble: Option<Bytes>,
    frame: Bytes,
) -> Write {
    Box::pin(async move {
        // The PREAMBLE goes first: a whole frame of its own, which the receiver decodes as
        // soon as its bytes are in, while the message is still on its way.
        let pre_ok = match &preamble {
            Some(pre) => stream.write_all(pre).await.is_ok(),
            None => true,
        };
        let ok = pre_ok
            && match stream.write_all(&frame).await {
                Ok(()) => stream.flush().await.is_ok(),
                Err(_) => false,
            };
        (peer, generation, stream, (!ok).then_some((preamble, frame)))
    })
}

/// Close an outbound stream we no longer write, politely, off the driver.
fn close(mut stream: plexus_core::BoxStream) {
    tokio::spawn(async move {
        let _ = stream.shutdown().await;
    });
}

/// RPCs taken from the inbound streams per wake-up of the driver before it delivers events
/// and feeds writers.
const RPC_BATCH: usize = 64;

/// Most bytes of small frames written together.
const COALESCE: usize = 16 * 1024;

/// Most bytes reserved for one read of an inbound stream.
const READ_CHUNK: usize = 64 * 1024;
/// Bytes reserved for a read when no frame is pending (most RPCs are small).
const IDLE_READ: usize = 2048;

/// An inbound stream as the RPCs on it. It ends at the stream's end, or after the fault that
/// reset it.
fn reader(inbound: InboundStream, limits: crate::wire::WireLimits) -> Reader {
    struct State {
        inbound: InboundStream,
        dec: FrameDecoder,
        buf: BytesMut,
        done: bool,
    }
    let state = State {
        dec: FrameDecoder::new(limits.max_transmit_size),
        inbound,
        buf: BytesMut::new(),
        done: false,
    };
    Box::pin(futures::stream::unfold(state, move |mut st| async move {
        if st.done {
            return None;
        }
        let peer = st.inbound.peer;
        loop {
            let err = match st.dec.decode(&mut st.buf) {
                Ok(Some(body)) => match decode_rpc(body, &limits) {
                    Ok(rpc) => return Some(((peer, Read::Rpc(rpc)), st)),
                    Err(e) => e,
                },
                Ok(None) => {
                    // Room for the rest of the frame being read: what of it has already
                    // arrived (buffered in the muxer) at once, in one allocation, else
                    // chunks of at most READ_CHUNK, never reserving a declared length
                    // before its bytes arrive; a small read when nothing is pending, so an
                    // idle stream holds little.
                    let want = match st.dec.frame_len(&st.buf) {
                        Some(total) => {
                            let rest = total.saturating_sub(st.buf.len());
                            let arrived = st.inbound.stream.readable().min(rest);
                            arrived.max(rest.clamp(1, READ_CHUNK))
                        }
                        None => IDLE_READ,
                    };
                    st.buf.reserve(want);
                    match st.inbound.stream.read_buf(&mut st.buf).await {
                        Ok(0) | Err(_) => return None,
                        Ok(_) => continue,
                    }
                }
                Err(e) => e,
            };
            st.inbound.stream.reset();
            st.done = true;
            let fault = StreamFault {
                peer,
                blame: err.blame(),
                error: err.to_string(),
            };
            return Some(((peer, Read::Fault(fault)), st));
        }
    }))
}

/// Wait until our mesh of `topic` has at least `n` peers (polling snapshots), up to
/// `timeout`; returns the mesh size reached.
pub async fn wait_for_mesh(g: &Gossipsub, topic: &TopicHash, n: usize, timeout: Duration) -> usize {
    let end = Instant::now() + timeout;
    loop {
        let size = g
            .snapshot()
            .await
            .ok()
            .and_then(|s| {
                s.mesh
                    .into_iter()
                    .find(|(t, _)| t == topic)
                    .map(|(_, m)| m.len())
            })
            .unwrap_or(0);
        if size >= n || Instant::now() >= end {
            return size;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
