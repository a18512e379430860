//! The Ethereum gossip service: plexus-gossipsub with the Ethereum profile, fed and drained
//! in the consensus client's terms (topic kinds, epochs, SSZ payloads).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};

use plexus_core::PeerId;
use plexus_eth::{
    Epoch, ForkSchedule, GossipError, GossipKind, GossipMessageError, GossipTopic, ResolvedTopic,
    encode_gossip,
};
use plexus_gossipsub::{
    Acceptance, Config, Event, GossipEvent, GossipMetrics, Gossipsub, GossipsubService, MessageId,
    PublishError, ServiceConfig, SpawnError, Stopped,
};
use plexus_host::Host;
use tokio::sync::mpsc;

use crate::plan::{TransitionConfig, diff, topics_at};
use crate::score::{NetworkLoad, ScoreModel, thresholds};

/// The Ethereum gossipsub configuration for `schedule`: the spec's parameters (D = 8,
/// D_low = 6, D_high = 12, D_lazy = 6, heartbeat 700 ms, fanout TTL 60 s, mcache 6 / 3,
/// seen TTL of two epochs), `StrictNoSign`, the spec's message-id function (phase 0 or
/// Altair rule by the topic's digest, decompression capped at `MAX_PAYLOAD_SIZE`), the
/// transmit size `max_message_size()`, peers accepted for meshes only when the client says
/// so (after the Status handshake), and scoring when `load` is given (thresholds of
/// [`thresholds`]; topic parameters are added per subscribed topic by [`EthGossip`]).
pub fn gossipsub_config(schedule: &Arc<ForkSchedule>, load: Option<NetworkLoad>) -> Config {
    let c = schedule.config();
    let ids = schedule.clone();
    let mut cfg = Config {
        seen_ttl: std::time::Duration::from_millis(c.seen_ttl_ms()),
        accept_by_default: false,
        signing: plexus_gossipsub::Signing::StrictNoSign,
        message_id_fn: Arc::new(move |m| {
            MessageId::new(ids.message_id(m.topic.as_str(), &m.data).to_vec())
        }),
        ..Config::default()
    };
    cfg.wire.max_transmit_size =
        usize::try_from(plexus_eth::max_message_size(c.max_payload_size)).unwrap_or(usize::MAX);
    if load.is_some() {
        let model = ScoreModel::new(c, cfg.mesh_n);
        cfg.score = Some((model.peer_params(), thresholds()));
    }
    cfg
}

/// How the service runs.
#[derive(Debug, Clone)]
pub struct EthGossipConfig {
    /// The gossipsub configuration; [`gossipsub_config`] by default.
    pub gossipsub: Config,
    /// The glue's settings.
    pub service: ServiceConfig,
    /// When neighbouring digests' topics are joined and left.
    pub transitions: TransitionConfig,
    /// Events buffered for the client; when full the service waits (gossipsub's own event
    /// bound then applies). Default 1024.
    pub event_capacity: usize,
}

impl EthGossipConfig {
    /// The defaults for `schedule`, with scoring when `load` is given.
    pub fn new(schedule: &Arc<ForkSchedule>, load: Option<NetworkLoad>) -> Self {
        EthGossipConfig {
            gossipsub: gossipsub_config(schedule, load),
            service: ServiceConfig::default(),
            transitions: TransitionConfig::default(),
            event_capacity: 1024,
        }
    }
}

/// What the service tells the client.
#[derive(Debug)]
#[non_exhaustive]
pub enum EthGossipEvent {
    /// A message that decoded within its topic's bound. Validate `payload` (SSZ) and answer
    /// with [`EthGossip::report`]; it is forwarded only after `Accept`.
    Message {
        /// Its gossipsub message id (the spec's 20 bytes).
        id: MessageId,
        /// The peer that sent it to us.
        source: PeerId,
        /// The topic, resolved against the schedule (fork, digest, kind, bound).
        topic: ResolvedTopic,
        /// The uncompressed SSZ payload.
        payload: Vec<u8>,
    },
    /// A message refused before the client saw it (unknown topic or digest, snappy that does
    /// not decode, a payload over the topic's bound): already reported as `Reject`, so the
    /// sender is penalised (P₄) and the message not forwarded.
    Refused {
        /// Its message id.
        id: MessageId,
        /// The peer that sent it.
        source: PeerId,
        /// The topic string it came on.
        topic: String,
        /// Why.
        error: GossipMessageError,
    },
    /// Any other gossipsub event (subscriptions, grafts, prunes, slow peers, stream faults).
    Gossipsub(GossipEvent),
}

/// Why a publish failed.
#[derive(Debug, thiserror::Error)]
pub enum EthPublishError {
    /// The kind has no topic at the fork of that epoch.
    #[error("{kind:?} has no topic at epoch {epoch}")]
    NoTopic {
        /// The kind.
        kind: GossipKind,
        /// The epoch.
        epoch: Epoch,
    },
    /// The payload is over the topic's bound (a local fault).
    #[error(transparent)]
    Encode(#[from] GossipError),
    /// The router refused it.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// The service stopped.
    #[error(transparent)]
    Stopped(#[from] Stopped),
}

/// What a call changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TopicChanges {
    /// Topics joined.
    pub subscribed: Vec<String>,
    /// Topics left.
    pub unsubscribed: Vec<String>,
}

struct State {
    kinds: BTreeSet<GossipKind>,
    subscribed: BTreeSet<String>,
    epoch: Epoch,
    load: Option<NetworkLoad>,
}

/// A handle to the Ethereum gossip service (cheap to clone).
#[derive(Clone)]
pub struct EthGossip {
    gossipsub: Gossipsub,
    schedule: Arc<ForkSchedule>,
    transitions: TransitionConfig,
    model: Option<ScoreModel>,
    state: Arc<Mutex<State>>,
    /// Serialises topic changes (they await the router).
    changing: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for EthGossip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EthGossip").finish_non_exhaustive()
    }
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EthGossip {
    /// Start gossipsub on `host` with `cfg` at `epoch`. No topic is joined until
    /// [`EthGossip::set_kinds`]. Scoring is on when `cfg.gossipsub.score` is set and `load`
    /// is given (topic parameters then follow the subscribed topics and `load`).
    /// Must be called within a tokio runtime.
    ///
    /// # Errors
    /// As [`GossipsubService::spawn`].
    pub fn spawn(
        host: Host,
        schedule: Arc<ForkSchedule>,
        cfg: EthGossipConfig,
        epoch: Epoch,
        load: Option<NetworkLoad>,
        metrics: Option<GossipMetrics>,
    ) -> Result<(EthGossip, mpsc::Receiver<EthGossipEvent>), SpawnError> {
        let model = match (&cfg.gossipsub.score, load) {
            (Some(_), Some(_)) => Some(ScoreModel::new(schedule.config(), cfg.gossipsub.mesh_n)),
            _ => None,
        };
        let (gossipsub, mut raw) =
            GossipsubService::spawn(host, cfg.gossipsub, cfg.service, metrics)?;
        let (tx, rx) = mpsc::channel(cfg.event_capacity.max(1));
        let this = EthGossip {
            gossipsub: gossipsub.clone(),
            schedule: schedule.clone(),
            transitions: cfg.transitions,
            model,
            state: Arc::new(Mutex::new(State {
                kinds: BTreeSet::new(),
                subscribed: BTreeSet::new(),
                epoch,
                load,
            })),
            changing: Arc::new(tokio::sync::Mutex::new(())),
        };
        tokio::spawn(async move {
            while let Some(ev) = raw.recv().await {
                let out = translate(&schedule, &gossipsub, ev).await;
                if tx.send(out).await.is_err() {
                    break;
                }
            }
        });
        Ok((this, rx))
    }

    /// The gossipsub handle underneath (accepting peers, application scores, snapshots).
    pub fn gossipsub(&self) -> &Gossipsub {
        &self.gossipsub
    }

    /// The topics currently joined.
    pub fn subscribed(&self) -> BTreeSet<String> {
        lock(&self.state).subscribed.clone()
    }

    /// Follow exactly these topic kinds (e.g. the block and aggregate topics plus the
    /// attestation subnets this node is assigned), on every digest the epoch calls for.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn set_kinds(
        &self,
        kinds: impl IntoIterator<Item = GossipKind>,
    ) -> Result<TopicChanges, Stopped> {
        let kinds: BTreeSet<GossipKind> = kinds.into_iter().collect();
        let _g = self.changing.lock().await;
        lock(&self.state).kinds = kinds;
        self.apply(false).await
    }

    /// Move to `epoch` (call at least once per epoch): joins the next digest's topics ahead
    /// of a fork and leaves the previous digest's after it. With scoring, `load` (when
    /// given) refreshes every scored topic's parameters.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn on_epoch(
        &self,
        epoch: Epoch,
        load: Option<NetworkLoad>,
    ) -> Result<TopicChanges, Stopped> {
        let _g = self.changing.lock().await;
        let refresh = {
            let mut s = lock(&self.state);
            s.epoch = epoch;
            let changed = load.is_some() && load != s.load;
            if load.is_some() {
                s.load = load;
            }
            changed
        };
        self.apply(refresh).await
    }

    async fn apply(&self, refresh_all: bool) -> Result<TopicChanges, Stopped> {
        let (join, leave, load, keep) = {
            let s = lock(&self.state);
            let wanted = topics_at(&self.schedule, s.epoch, &s.kinds, self.transitions);
            let (join, leave) = diff(&s.subscribed, &wanted);
            let keep: Vec<String> = if refresh_all {
                s.subscribed.intersection(&wanted).cloned().collect()
            } else {
                Vec::new()
            };
            (join, leave, s.load, keep)
        };
        for t in join.iter().chain(&keep) {
            self.set_params(t, load).await?;
        }
        for t in &join {
            self.gossipsub.subscribe(t.as_str()).await?;
            lock(&self.state).subscribed.insert(t.clone());
        }
        for t in &leave {
            self.gossipsub.unsubscribe(t.as_str()).await?;
            lock(&self.state).subscribed.remove(t);
            if self.model.is_some() {
                self.gossipsub
                    .set_topic_score_params(t.as_str(), None)
                    .await?;
            }
        }
        Ok(TopicChanges {
            subscribed: join,
            unsubscribed: leave,
        })
    }

    async fn set_params(&self, topic: &str, load: Option<NetworkLoad>) -> Result<(), Stopped> {
        let (Some(model), Some(load)) = (&self.model, load) else {
            return Ok(());
        };
        let Ok(t) = GossipTopic::parse(topic) else {
            return Ok(());
        };
        if let Some(p) = model.topic_params(t.kind, load) {
            self.gossipsub
                .set_topic_score_params(topic, Some(p))
                .await?;
        }
        Ok(())
    }

    /// Publish an SSZ payload of `kind` under the digest of `epoch` (the message's epoch:
    /// its slot's, which decides the digest at a fork boundary): snappy-compressed within
    /// the topic's bound. Returns the message id.
    ///
    /// # Errors
    /// [`EthPublishError`].
    pub async fn publish(
        &self,
        kind: GossipKind,
        epoch: Epoch,
        ssz: &[u8],
    ) -> Result<MessageId, EthPublishError> {
        let entry = self.schedule.entry_at(epoch);
        let config = self.schedule.config();
        if !kind.exists_at(entry.fork, config) {
            return Err(EthPublishError::NoTopic { kind, epoch });
        }
        let data = encode_gossip(ssz, kind.max_uncompressed_len(entry.fork, config))?;
        let topic = GossipTopic::new(entry.digest, kind).to_string();
        Ok(self.gossipsub.publish(topic, data).await??)
    }

    /// The client's verdict on a message it received.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn report(&self, id: MessageId, verdict: Acceptance) -> Result<(), Stopped> {
        self.gossipsub.report_validation(id, verdict).await
    }

    /// Accept (after a valid Status) or stop accepting a peer for meshes.
    ///
    /// # Errors
    /// [`Stopped`].
    pub async fn set_accepted(&self, peer: PeerId, accepted: bool) -> Result<(), Stopped> {
        self.gossipsub.set_accepted(peer, accepted).await
    }
}

async fn translate(
    schedule: &ForkSchedule,
    gossipsub: &Gossipsub,
    ev: GossipEvent,
) -> EthGossipEvent {
    let GossipEvent::Router(Event::Message {
        source,
        id,
        message,
    }) = ev
    else {
        return EthGossipEvent::Gossipsub(ev);
    };
    let topic = message.topic.as_str();
    let (_, decoded) = schedule.decode_message(topic, &message.data);
    match decoded {
        Ok(m) => EthGossipEvent::Message {
            id,
            source,
            topic: m.topic,
            payload: m.payload,
        },
        Err(error) => {
            tracing::debug!(%source, topic, %error, "gossip message refused");
            // A stopped service is noticed by the next call.
            let _ = gossipsub
                .report_validation(id.clone(), Acceptance::Reject)
                .await;
            EthGossipEvent::Refused {
                id,
                source,
                topic: topic.to_string(),
                error,
            }
        }
    }
}
