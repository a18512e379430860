//! `plexus node`: one node joining a beacon network as a watcher.
//!
//! The node is assembled as a beacon node's network layer is (docs/node.md):
//! - a host whose gater and dial ranker are the peer manager's;
//! - Req/Resp with the peer manager answering Status (ours is a syncing node's: the
//!   current digest, nothing finalized, head at genesis), and the built-in ping, MetaData
//!   and Goodbye;
//! - gossipsub with the Ethereum profile (plexus-eth-gossip's configuration and topic plan),
//!   meshes only with peers whose Status the peer manager accepted;
//! - identify.
//!
//! It has no chain, so it cannot verify a signature: by default every message that decodes
//! is reported `Ignore` (not forwarded, and peers do not penalise us for it); `--relay`
//! accepts them. A message that does not decode within its topic's bound, or a block whose
//! SSZ fixed part is malformed, is rejected either way.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use plexus_core::PeerId;
use plexus_eth::ssz_types::BitVector;
use plexus_eth::{
    Epoch, Fork, ForkDigest, ForkSchedule, GoodbyeReason, GossipKind, GossipTopic, MetaDataV3,
};
use plexus_eth_gossip::TransitionConfig;
use plexus_eth_gossip::plan::{diff, digests_at, topics_at};
use plexus_gossipsub::{
    Acceptance, Event, GossipEvent, GossipMetrics, Gossipsub, GossipsubService, MeshChange,
    MessageId, RawMessage, ServiceConfig,
};
use plexus_host::{Host, HostEvent, Keypair};
use plexus_identify::IdentifyEvent;
use plexus_peer_manager::service::{PeerManagerBuilder, PeerManagerHandle};
use plexus_peer_manager::{PeerAction, PeerManagerConfig, PeerStatus, ReportSource, reason_label};
use plexus_reqresp::{
    EpochClock, NoResponder, ReqResp, ReqRespConfig, ReqRespEvent, ReqRespHandle,
};
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::args::{Global, NodeArgs};
use crate::eth::{Chain, chain, wall_epoch, wall_slot};
use crate::output::Out;
use crate::{Failure, default_listen, host_config, print_host_event};

/// How often the peer manager's view is read for new Status and Goodbyes.
const PEER_POLL: Duration = Duration::from_millis(200);

/// How long the Goodbye(client shutdown) to each peer, and its close, may take on the way
/// out.
const SHUTDOWN_GOODBYE: Duration = Duration::from_secs(2);

/// The custody group count we advertise in MetaData (the spec's `CUSTODY_REQUIREMENT`, the
/// least a node may advertise from Fulu on; the node serves no columns, but a smaller
/// value would be invalid).
const CUSTODY_REQUIREMENT: u64 = 4;

/// The default topics: every topic without a subnet that the network's forks have, except
/// the light-client ones (served only by nodes that serve light clients). Which of them
/// exist at a digest is [`topics_at`]'s question.
pub(crate) fn core_kinds(schedule: &ForkSchedule) -> BTreeSet<GossipKind> {
    Fork::ALL
        .iter()
        .flat_map(|f| GossipKind::all_at(*f, schedule.config()))
        .filter(|k| {
            k.subnet().is_none()
                && !matches!(
                    k,
                    GossipKind::LightClientFinalityUpdate | GossipKind::LightClientOptimisticUpdate
                )
        })
        .collect()
}

/// Where the node is in time: the wall-clock epoch, or the epoch of `--fork-digest`'s
/// schedule entry when given (the node then stays on that digest).
#[derive(Clone)]
struct Clock {
    schedule: Arc<ForkSchedule>,
    genesis_time: Option<u64>,
    pinned: Option<Epoch>,
}

impl Clock {
    fn epoch(&self) -> Epoch {
        self.pinned
            .unwrap_or_else(|| wall_epoch(self.schedule.config(), self.genesis_time))
    }

    fn digest(&self) -> ForkDigest {
        self.schedule.digest_at(self.epoch())
    }

    /// When to join and leave neighbouring digests' topics: the spec's defaults, or never
    /// when pinned to one digest.
    fn transitions(&self) -> TransitionConfig {
        match self.pinned {
            Some(_) => TransitionConfig {
                subscribe_ahead_epochs: 0,
                unsubscribe_after_epochs: 0,
            },
            None => TransitionConfig::default(),
        }
    }
}

/// A topic as printed: its name on the current digest, `name@digest` on another (next to a
/// fork the node follows two).
fn label(topic: &GossipTopic, current: ForkDigest) -> String {
    if topic.digest == current {
        topic.kind.to_string()
    } else {
        format!("{}@{}", topic.kind, topic.digest)
    }
}

fn label_of(topic: &str, current: ForkDigest) -> String {
    GossipTopic::parse(topic).map_or_else(|_| topic.to_owned(), |t| label(&t, current))
}

fn reason_text(r: GoodbyeReason) -> String {
    format!("{} ({})", reason_label(r).replace('_', " "), r.code())
}

/// Counters of one topic between summaries.
#[derive(Default)]
struct TopicCount {
    since_summary: u64,
    total: u64,
}

/// The running node.
struct Node {
    host: Host,
    rr: ReqRespHandle,
    gossip: Gossipsub,
    pm: PeerManagerHandle,
    clock: Clock,
    out: Out,
    relay: bool,
    kinds: BTreeSet<GossipKind>,
    /// Topics joined.
    subscribed: BTreeSet<String>,
    /// Digests a peer's Status may carry (the peer manager's list).
    digests: Vec<ForkDigest>,
    /// The digest of our Status and of unmarked topic labels.
    current: ForkDigest,
    /// The last Status printed per peer.
    seen_status: HashMap<PeerId, PeerStatus>,
    /// The last Goodbye printed per peer (the peer manager's timestamp).
    seen_goodbye: HashMap<PeerId, std::time::Instant>,
    /// The Goodbye of a peer's current connection, for its `connection_closed`.
    conn_goodbye: HashMap<PeerId, (GoodbyeReason, bool)>,
    /// Status-accepted peers at the last poll.
    accepted: usize,
    counts: BTreeMap<String, TopicCount>,
}

/// Run `plexus node`.
pub(crate) async fn run(
    g: &Global,
    key: Keypair,
    args: &NodeArgs,
    out: Out,
) -> Result<(), Failure> {
    let Chain {
        schedule,
        genesis_time,
        ..
    } = chain(&args.net)?;
    let pinned = match args.net.fork_digest {
        Some(d) => Some(
            schedule
                .lookup(d)
                .ok_or_else(|| {
                    Failure::Usage(format!(
                        "fork digest {d} is not one of this network's (give its --config and --genesis-validators-root)"
                    ))
                })?
                .epoch,
        ),
        None => None,
    };
    let clock = Clock {
        schedule: schedule.clone(),
        genesis_time,
        pinned,
    };
    let kinds: BTreeSet<GossipKind> = if args.topics.is_empty() {
        core_kinds(&schedule)
    } else {
        args.topics.iter().copied().collect()
    };
    let first = topics_at(&schedule, clock.epoch(), &kinds, clock.transitions());
    if first.is_empty() {
        return Err(Failure::Usage(format!(
            "no --topic exists at {} (digest {})",
            schedule.fork_at(clock.epoch()).name(),
            clock.digest()
        )));
    }

    let status_clock = clock.clone();
    let pm_builder = PeerManagerBuilder::new(
        PeerManagerConfig::default(),
        Arc::new(move || plexus_eth::StatusV2::at_genesis(status_clock.digest())),
    )
    .map_err(|e| Failure::Check(format!("peer manager: {e}")))?;
    let listen = if g.listen.is_empty() {
        default_listen()
    } else {
        g.listen.clone()
    };
    let mut hc = host_config(g, key, listen);
    hc.gater = Some(pm_builder.gater());
    hc.dial_ranker = Some(pm_builder.ranker());
    let host = Host::new(hc)
        .await
        .map_err(|e| Failure::Check(format!("cannot start the host: {e}")))?;

    let mut gossip_metrics = None;
    if let Some(addr) = g.metrics {
        let mut registry = prometheus_client::registry::Registry::default();
        host.metrics().register(&mut registry);
        pm_builder.metrics().register(&mut registry);
        gossip_metrics = Some(GossipMetrics::new(&mut registry));
        let bound = crate::metrics::serve(addr, Arc::new(registry))
            .await
            .map_err(|e| Failure::Usage(format!("cannot serve metrics on {addr}: {e}")))?;
        tracing::info!(%bound, "serving metrics");
    }

    let rr_clock = clock.clone();
    let epoch_now: EpochClock = Arc::new(move || rr_clock.epoch());
    let rr_cfg = ReqRespConfig::new(&schedule, epoch_now);
    let metadata = MetaDataV3 {
        seq_number: 0,
        attnets: BitVector::new(),
        syncnets: BitVector::new(),
        custody_group_count: CUSTODY_REQUIREMENT,
    };
    let rr = ReqResp::spawn(
        host.clone(),
        schedule.clone(),
        rr_cfg,
        pm_builder.responder(Arc::new(NoResponder)),
        metadata,
    )
    .map_err(|e| Failure::Check(format!("cannot start req/resp: {e}")))?;
    let (gossip, gossip_events) = GossipsubService::spawn(
        host.clone(),
        plexus_eth_gossip::gossipsub_config(&schedule, None),
        ServiceConfig::default(),
        gossip_metrics,
    )
    .map_err(|e| Failure::Check(format!("cannot start gossipsub: {e}")))?;
    let identify = plexus_identify::IdentifyService::spawn(host.clone(), Default::default())
        .map_err(|e| Failure::Check(format!("cannot start identify: {e}")))?;
    let identify_events = identify.events();
    let pm = pm_builder
        .with_identify(identify.events())
        .start(host.clone(), rr.clone(), Some(gossip.clone()))
        .map_err(|e| Failure::Check(format!("peer manager: {e}")))?;

    let mut node = Node {
        host,
        rr,
        gossip,
        pm,
        current: clock.digest(),
        clock,
        out,
        relay: args.relay,
        kinds,
        subscribed: BTreeSet::new(),
        digests: Vec::new(),
        seen_status: HashMap::new(),
        seen_goodbye: HashMap::new(),
        conn_goodbye: HashMap::new(),
        accepted: 0,
        counts: BTreeMap::new(),
    };
    // Subscribed before dialing: a peer learns our topics when the connection opens.
    node.follow_epoch(false).await?;
    node.print_ready(&args.net.network);

    let result = node
        .watch(
            &args.peers,
            identify_events,
            gossip_events,
            args.summary,
            args.duration,
        )
        .await;
    node.shutdown().await;
    drop(identify);
    result
}

impl Node {
    fn print_ready(&self, network: &str) {
        let listen: Vec<String> = self
            .host
            .listen_addrs()
            .iter()
            .map(|a| a.to_string())
            .collect();
        let fork = self.clock.schedule.fork_at(self.clock.epoch()).name();
        let topics: Vec<String> = self.subscribed.iter().cloned().collect();
        let names: Vec<String> = topics.iter().map(|t| label_of(t, self.current)).collect();
        let network = match self.clock.schedule.config().config_name.as_str() {
            "" => network.to_owned(),
            n => n.to_owned(),
        };
        let mut human = format!("peer id {}", self.host.peer_id());
        if !listen.is_empty() {
            human.push_str(&format!("\nlistening on {}", listen.join(", ")));
        }
        human.push_str(&format!(
            "\n{network}, {fork} (fork digest {}), epoch {}; following {}",
            self.current,
            self.clock.epoch(),
            names.join(", ")
        ));
        human.push_str(if self.relay {
            "\nrelaying every message that decodes (--relay)"
        } else {
            "\nnot relaying: messages are reported Ignore (no signature checks here)"
        });
        self.out.event(
            "ready",
            json!({
                "peer_id": self.host.peer_id().to_string(),
                "listen_addrs": listen,
                "network": network,
                "fork": fork,
                "fork_digest": self.current.to_string(),
                "epoch": self.clock.epoch(),
                "topics": topics,
                "relay": self.relay,
            }),
            Some(human),
        );
    }

    /// Join and leave topics for the clock's epoch, and tell the peer manager which
    /// digests a Status may carry. `report`: print what changed.
    async fn follow_epoch(&mut self, report: bool) -> Result<(), Failure> {
        let epoch = self.clock.epoch();
        let t = self.clock.transitions();
        let schedule = self.clock.schedule.clone();
        let wanted = topics_at(&schedule, epoch, &self.kinds, t);
        let (join, leave) = diff(&self.subscribed, &wanted);
        let stopped = |_| Failure::Check("the gossipsub service stopped".into());
        for topic in &join {
            self.gossip
                .subscribe(topic.as_str())
                .await
                .map_err(stopped)?;
            self.subscribed.insert(topic.clone());
        }
        for topic in &leave {
            self.gossip
                .unsubscribe(topic.as_str())
                .await
                .map_err(stopped)?;
            self.subscribed.remove(topic);
        }
        let digests = digests_at(&schedule, epoch, t);
        if digests != self.digests {
            self.pm.set_fork_digests(digests.clone());
            self.digests = digests;
        }
        let current = self.clock.digest();
        if report && (current != self.current || !join.is_empty() || !leave.is_empty()) {
            self.out.event(
                "topics",
                json!({
                    "epoch": epoch,
                    "fork": schedule.fork_at(epoch).name(),
                    "fork_digest": current.to_string(),
                    "subscribed": join,
                    "unsubscribed": leave,
                }),
                Some(format!(
                    "epoch {epoch}: fork digest {current}; joined {}; left {}",
                    list_or_none(&join),
                    list_or_none(&leave)
                )),
            );
        }
        self.current = current;
        Ok(())
    }

    async fn watch(
        &mut self,
        peers: &[plexus_multiaddr::Multiaddr],
        mut identify: broadcast::Receiver<IdentifyEvent>,
        mut gossip: mpsc::Receiver<GossipEvent>,
        summary: Option<f64>,
        duration: Option<u64>,
    ) -> Result<(), Failure> {
        let mut host_events = self.host.events();
        let mut rr_events = self.rr.events();
        for addr in peers {
            let host = self.host.clone();
            let pm = self.pm.clone();
            let addr = addr.clone();
            // Dialed now; the peer manager redials a peer it knows the id of after a
            // disconnect or a failure, with its backoffs.
            tokio::spawn(async move {
                let known = addr.peer_id();
                let result = host.connect(vec![addr.clone()]).await;
                match (known, result) {
                    (Some(peer), _) => pm.add_candidate(peer, vec![addr.without_p2p()]),
                    (None, Ok(conn)) => pm.add_candidate(conn.peer, vec![addr]),
                    // The failure was printed from the host's events.
                    (None, Err(_)) => {}
                }
            });
        }
        let slot = Duration::from_millis(self.clock.schedule.config().slot_duration_ms.max(1));
        let every = summary.map_or(slot, Duration::from_secs_f64);
        let mut summary_tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let mut slot_tick = tokio::time::interval_at(tokio::time::Instant::now() + slot, slot);
        let mut poll = tokio::time::interval(PEER_POLL);
        for t in [&mut summary_tick, &mut slot_tick, &mut poll] {
            t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        }
        let stop = async {
            match duration {
                Some(s) => tokio::time::sleep(Duration::from_secs(s)).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tokio::signal::ctrl_c() => break,
                ev = host_events.recv() => match ev {
                    Ok(ev) => self.on_host_event(ev).await,
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "host events lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                ev = rr_events.recv() => match ev {
                    // The peer manager records it (sent and received Goodbyes are printed
                    // from its view, once each).
                    Ok(ReqRespEvent::Goodbye { .. }) => self.poll_peers().await,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        tracing::warn!(missed = n, "req/resp events lagged");
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                ev = identify.recv() => match ev {
                    Ok(IdentifyEvent::Received { peer, info, push: false }) => {
                        self.print_identify(peer, &info);
                    }
                    Ok(IdentifyEvent::Failed { peer, error, .. }) => {
                        tracing::debug!(%peer, %error, "identify failed");
                    }
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                },
                ev = gossip.recv() => match ev {
                    Some(ev) => self.on_gossip(ev).await,
                    None => return Err(Failure::Check("the gossipsub service stopped".into())),
                },
                _ = poll.tick() => self.poll_peers().await,
                _ = slot_tick.tick() => self.follow_epoch(true).await?,
                _ = summary_tick.tick() => self.summary().await,
            }
        }
        Ok(())
    }

    async fn on_host_event(&mut self, ev: HostEvent) {
        match ev {
            HostEvent::Connected(c) => {
                self.conn_goodbye.remove(&c.peer);
                print_host_event(self.out, &HostEvent::Connected(c));
            }
            HostEvent::Disconnected { peer, cause } => {
                // A Goodbye sent on this connection is in the peer manager's view by now:
                // print it before the close.
                self.poll_peers().await;
                let goodbye = self.conn_goodbye.remove(&peer);
                let mut fields = json!({
                    "peer_id": peer.to_string(),
                    "reason": cause.to_string(),
                    "blame": cause.blame().to_string(),
                });
                let mut human = format!("disconnected from {peer}: {cause}");
                if let (Some((r, sent)), Some(obj)) = (goodbye, fields.as_object_mut()) {
                    obj.insert("goodbye".into(), json!(reason_label(r)));
                    obj.insert("goodbye_code".into(), json!(r.code()));
                    obj.insert("goodbye_sent".into(), json!(sent));
                    human.push_str(&format!(
                        " (after goodbye {}: {})",
                        if sent { "sent" } else { "received" },
                        reason_text(r)
                    ));
                }
                self.out.event("connection_closed", fields, Some(human));
            }
            HostEvent::DialFailed { peer, addr, error } => {
                let addr = addr.map(|a| a.to_string());
                let what = addr
                    .clone()
                    .or_else(|| peer.map(|p| p.to_string()))
                    .unwrap_or_else(|| "a peer".into());
                self.out.event(
                    "dial_failed",
                    json!({
                        "peer_id": peer.map(|p| p.to_string()),
                        "addr": addr,
                        "error": error.to_string(),
                        "blame": error.blame().to_string(),
                    }),
                    Some(format!("dial {what} failed: {error}")),
                );
            }
            other => print_host_event(self.out, &other),
        }
    }

    /// Read the peer manager's view: print each new Status and each new Goodbye (sent or
    /// received), and count the accepted peers.
    async fn poll_peers(&mut self) {
        let peers = self.pm.peers().await;
        let mut accepted = 0;
        for (peer, info) in &peers {
            if matches!(
                info.conn,
                plexus_peer_manager::ConnState::Connected {
                    status: plexus_peer_manager::StatusState::Accepted,
                    closing: false,
                    ..
                }
            ) {
                accepted += 1;
            }
            if let Some(s) = info.status
                && self.seen_status.get(peer) != Some(&s)
            {
                self.seen_status.insert(*peer, s);
                self.print_status(*peer, s);
            }
            if let Some((reason, sent, at)) = info.last_goodbye
                && self.seen_goodbye.get(peer) != Some(&at)
            {
                self.seen_goodbye.insert(*peer, at);
                self.print_goodbye(*peer, reason, sent);
            }
        }
        // Forget peers the peer manager forgot.
        let known: std::collections::HashSet<PeerId> = peers.iter().map(|(p, _)| *p).collect();
        self.seen_status.retain(|p, _| known.contains(p));
        self.seen_goodbye.retain(|p, _| known.contains(p));
        self.accepted = accepted;
    }

    fn print_status(&self, peer: PeerId, s: PeerStatus) {
        let fork = self
            .clock
            .schedule
            .fork_of_digest(s.fork_digest)
            .map(|f| f.name());
        let relevant = self.digests.is_empty() || self.digests.contains(&s.fork_digest);
        let mut human = format!(
            "status from {peer}: fork digest {} ({}), finalized epoch {}, head slot {}",
            s.fork_digest,
            fork.unwrap_or("not on this network"),
            s.finalized_epoch,
            s.head_slot
        );
        if !relevant {
            human.push_str(&format!(" - not our fork digest {}", self.current));
        }
        self.out.event(
            "status",
            json!({
                "peer_id": peer.to_string(),
                "fork_digest": s.fork_digest.to_string(),
                "fork": fork,
                "our_fork_digest": self.current.to_string(),
                "relevant": relevant,
                "finalized_epoch": s.finalized_epoch,
                "head_slot": s.head_slot,
            }),
            Some(human),
        );
    }

    /// Print a Goodbye and remember it for the connection's close.
    fn print_goodbye(&mut self, peer: PeerId, reason: GoodbyeReason, sent: bool) {
        self.conn_goodbye.insert(peer, (reason, sent));
        let human = if sent {
            format!("goodbye to {peer}: {}", reason_text(reason))
        } else {
            format!("goodbye from {peer}: {}", reason_text(reason))
        };
        self.out.event(
            "goodbye",
            json!({
                "peer_id": peer.to_string(),
                "direction": if sent { "sent" } else { "received" },
                "reason": reason_label(reason),
                "code": reason.code(),
            }),
            Some(human),
        );
    }

    fn print_identify(&self, peer: PeerId, info: &plexus_identify::PeerInfo) {
        self.out.event(
            "identify",
            json!({
                "peer_id": peer.to_string(),
                "agent_version": info.agent_version,
                "protocol_version": info.protocol_version,
            }),
            Some(format!(
                "{peer} runs {}",
                info.agent_version.as_deref().unwrap_or("(unknown agent)")
            )),
        );
    }

    async fn on_gossip(&mut self, ev: GossipEvent) {
        match ev {
            GossipEvent::Router(Event::Message {
                source,
                id,
                message,
            }) => self.on_message(source, id, message).await,
            GossipEvent::Router(Event::Grafted { peer, topic, by }) => {
                // A mesh peer's Status was accepted: print it first.
                if !self.seen_status.contains_key(&peer) {
                    self.poll_peers().await;
                }
                self.print_mesh(peer, topic.as_str(), true, by);
            }
            GossipEvent::Router(Event::Pruned { peer, topic, by }) => {
                self.print_mesh(peer, topic.as_str(), false, by);
            }
            GossipEvent::StreamFault(f) => {
                tracing::info!(peer = %f.peer, error = %f.error, "gossip stream fault");
                self.pm
                    .report_blame(f.peer, f.blame, ReportSource::Gossipsub);
            }
            other => tracing::debug!(?other, "gossipsub event"),
        }
    }

    fn print_mesh(&self, peer: PeerId, topic: &str, joined: bool, by: MeshChange) {
        let name = label_of(topic, self.current);
        let by = match by {
            MeshChange::Local => "local",
            MeshChange::Remote => "remote",
        };
        let (event, verb) = if joined {
            ("graft", "joined")
        } else {
            ("prune", "left")
        };
        self.out.event(
            event,
            json!({ "topic": name, "peer_id": peer.to_string(), "by": by }),
            Some(format!(
                "mesh {name}: {peer} {verb} ({})",
                if by == "local" {
                    "by us"
                } else {
                    "by the peer"
                }
            )),
        );
    }

    async fn on_message(&mut self, source: PeerId, id: MessageId, message: RawMessage) {
        let compressed = message.data.len();
        let (_, decoded) = self
            .clock
            .schedule
            .decode_message(message.topic.as_str(), &message.data);
        let m = match decoded {
            Ok(m) => m,
            Err(error) => {
                let _ = self
                    .gossip
                    .report_validation(id.clone(), Acceptance::Reject)
                    .await;
                self.pm.report(
                    source,
                    PeerAction::LowToleranceError,
                    ReportSource::Gossipsub,
                );
                self.out.event(
                    "gossip_refused",
                    json!({
                        "topic": message.topic.as_str(),
                        "id": id.to_string(),
                        "from": source.to_string(),
                        "compressed_size": compressed,
                        "error": error.to_string(),
                    }),
                    Some(format!(
                        "refused on {}: {error} ({compressed} bytes, id {id}, from {source})",
                        message.topic
                    )),
                );
                return;
            }
        };
        let topic = m.topic.topic;
        let block = (topic.kind == GossipKind::BeaconBlock)
            .then(|| plexus_eth::signed_block_slot_and_proposer(&m.payload));
        let verdict = match block {
            // Not a SignedBeaconBlock: invalid whatever the signature.
            Some(None) => Acceptance::Reject,
            _ if self.relay => Acceptance::Accept,
            _ => Acceptance::Ignore,
        };
        let _ = self.gossip.report_validation(id.clone(), verdict).await;
        if verdict == Acceptance::Reject {
            self.pm.report(
                source,
                PeerAction::LowToleranceError,
                ReportSource::Gossipsub,
            );
        }
        let name = label(&topic, self.current);
        let c = self.counts.entry(name.clone()).or_default();
        c.since_summary += 1;
        c.total += 1;
        let verdict_name = match verdict {
            Acceptance::Accept => "accept",
            Acceptance::Reject => "reject",
            Acceptance::Ignore => "ignore",
        };
        let mut fields = Map::new();
        fields.insert("topic".into(), json!(name));
        fields.insert("fork_digest".into(), json!(topic.digest.to_string()));
        fields.insert("fork".into(), json!(m.topic.entry.fork.name()));
        fields.insert("size".into(), json!(m.payload.len()));
        fields.insert("compressed_size".into(), json!(compressed));
        fields.insert("id".into(), json!(id.to_string()));
        fields.insert("from".into(), json!(source.to_string()));
        fields.insert("verdict".into(), json!(verdict_name));
        let mut human = name.clone();
        match block {
            Some(Some((slot, proposer))) => {
                fields.insert("slot".into(), json!(slot));
                fields.insert("proposer_index".into(), json!(proposer));
                human.push_str(&format!(" slot {slot} proposer {proposer}"));
            }
            Some(None) => human.push_str(" (malformed block)"),
            None => {}
        }
        human.push_str(&format!(
            ": {} bytes ({compressed} compressed), id {id}, from {source}",
            m.payload.len()
        ));
        if verdict != Acceptance::Ignore {
            human.push_str(&format!(" [{verdict_name}]"));
        }
        self.out.event("gossip", Value::Object(fields), Some(human));
    }

    async fn summary(&mut self) {
        let Ok(snap) = self.gossip.snapshot().await else {
            return;
        };
        let peers = self.host.connected_peers().len();
        let mut topics = Map::new();
        let mut parts = Vec::new();
        for t in &self.subscribed {
            let name = label_of(t, self.current);
            let mesh = snap
                .mesh
                .iter()
                .find(|(h, _)| h.as_str() == t)
                .map_or(0, |(_, m)| m.len());
            let duplicates = snap
                .topics
                .iter()
                .find(|(h, _)| h.as_str() == t)
                .map_or(0, |(_, s)| s.duplicates);
            let (recent, total) = self
                .counts
                .get(&name)
                .map_or((0, 0), |c| (c.since_summary, c.total));
            parts.push(format!("{name} mesh {mesh} msgs {recent}"));
            topics.insert(
                name,
                json!({
                    "mesh": mesh,
                    "messages": recent,
                    "total": total,
                    "duplicates": duplicates,
                }),
            );
        }
        for c in self.counts.values_mut() {
            c.since_summary = 0;
        }
        let slot = wall_slot(self.clock.schedule.config(), self.clock.genesis_time);
        let when = slot.map_or_else(
            || format!("epoch {}", self.clock.epoch()),
            |s| format!("slot {s}"),
        );
        self.out.event(
            "summary",
            json!({
                "slot": slot,
                "epoch": self.clock.epoch(),
                "peers": peers,
                "accepted_peers": self.accepted,
                "topics": topics,
            }),
            Some(format!(
                "{when}: {peers} peer{}, {} accepted | {}",
                if peers == 1 { "" } else { "s" },
                self.accepted,
                parts.join(" | ")
            )),
        );
    }

    /// Say Goodbye(client shutdown) to every peer, give them until [`SHUTDOWN_GOODBYE`] to
    /// read it and close (closing at once could drop it unread), and close the host.
    async fn shutdown(&mut self) {
        let end = tokio::time::Instant::now() + SHUTDOWN_GOODBYE;
        let peers = self.host.connected_peers();
        let goodbyes = peers.iter().map(|p| {
            let rr = self.rr.clone();
            let p = *p;
            async move {
                tokio::time::timeout_at(end, rr.goodbye(p, GoodbyeReason::ClientShutdown))
                    .await
                    .is_ok_and(|r| r.is_ok())
            }
        });
        let sent = futures::future::join_all(goodbyes).await;
        for (p, ok) in peers.iter().zip(sent) {
            if ok {
                self.print_goodbye(*p, GoodbyeReason::ClientShutdown, true);
            }
        }
        while !self.host.connected_peers().is_empty() && tokio::time::Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.host.shutdown().await;
        self.out.event(
            "stopped",
            json!({ "peers": peers.len() }),
            Some("stopped".into()),
        );
    }
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use plexus_eth::Network;

    #[test]
    fn core_topics_follow_the_fork() {
        let mainnet = ForkSchedule::for_network(Network::Mainnet).unwrap();
        let kinds = core_kinds(&mainnet);
        assert!(kinds.iter().all(|k| k.subnet().is_none()));
        assert!(!kinds.contains(&GossipKind::LightClientFinalityUpdate));
        let names = |epoch: Epoch| -> BTreeSet<String> {
            topics_at(&mainnet, epoch, &kinds, TransitionConfig::default())
                .iter()
                .map(|t| GossipTopic::parse(t).unwrap().kind.to_string())
                .collect()
        };
        let phase0: BTreeSet<String> = [
            "beacon_block",
            "beacon_aggregate_and_proof",
            "voluntary_exit",
            "proposer_slashing",
            "attester_slashing",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(names(0), phase0);
        let fulu = mainnet
            .entries()
            .iter()
            .find(|e| e.fork == Fork::Fulu)
            .unwrap()
            .epoch;
        let mut later = phase0.clone();
        later.insert("sync_committee_contribution_and_proof".into());
        later.insert("bls_to_execution_change".into());
        assert_eq!(names(fulu + 10), later);
    }

    #[test]
    fn topic_labels_mark_other_digests() {
        let d = ForkDigest([1, 2, 3, 4]);
        let other = ForkDigest([5, 6, 7, 8]);
        let t = GossipTopic::new(d, GossipKind::BeaconBlock);
        assert_eq!(label(&t, d), "beacon_block");
        assert_eq!(label(&t, other), "beacon_block@01020304");
        assert_eq!(label_of("/not/a/topic", d), "/not/a/topic");
    }
}
