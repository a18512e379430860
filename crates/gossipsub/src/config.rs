//! Router configuration. Every limit is a named field with a safe default; the defaults are the
//! Ethereum consensus values where the consensus spec names them (D=8, D_low=6, D_high=12,
//! D_lazy=6, heartbeat 700 ms, fanout TTL 60 s, mcache 6/3, seen TTL 768 s).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use plexus_identity::Keypair;
use sha2::{Digest, Sha256};

use crate::score::{PeerScoreParams, PeerScoreThresholds};
use crate::types::{MessageId, RawMessage};
use crate::wire::WireLimits;

/// How messages are authored and checked.
#[derive(Clone)]
pub enum Signing {
    /// No `from`, `seqno`, `signature` or `key`: they must be absent, and a message carrying
    /// any of them is rejected (Ethereum).
    StrictNoSign,
    /// Every message carries `from`, `seqno` and a valid `signature`; ours are signed with
    /// this key (boxed: the enum stays small for the common `StrictNoSign`).
    StrictSign(Box<Keypair>),
}

impl fmt::Debug for Signing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Signing::StrictNoSign => f.write_str("StrictNoSign"),
            Signing::StrictSign(k) => write!(f, "StrictSign({})", k.public().to_peer_id()),
        }
    }
}

/// The application's message-id function. All peers of a topic must compute the same ids.
pub type MessageIdFn = Arc<dyn Fn(&RawMessage) -> MessageId + Send + Sync>;

/// The default message id: `from ‖ seqno` when both are present (the pubsub default), else
/// the first 20 bytes of SHA-256(topic length (u64 LE) ‖ topic ‖ data): a content id, so
/// unsigned messages still get ids every peer agrees on.
pub fn default_message_id(m: &RawMessage) -> MessageId {
    match (&m.from, &m.seqno) {
        (Some(from), Some(seqno)) => {
            let mut id = Vec::with_capacity(from.len() + seqno.len());
            id.extend_from_slice(from);
            id.extend_from_slice(seqno);
            MessageId::new(id)
        }
        _ => {
            let mut h = Sha256::new();
            h.update((m.topic.as_str().len() as u64).to_le_bytes());
            h.update(m.topic.as_str().as_bytes());
            h.update(&m.data);
            MessageId::new(h.finalize()[..20].to_vec())
        }
    }
}

/// Per-peer send queue bounds, by priority class (control > own publish > forward > gossip
/// replies). The queue is editable: an IDONTWANT removes queued copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// Bytes of control frames queued for one peer. Beyond it optional control (IHAVE, IWANT,
    /// IDONTWANT) is not queued, and mandatory control (subscriptions, GRAFT, PRUNE) still is
    /// up to twice this. Default 1 MiB.
    pub max_control_bytes: usize,
    /// Bytes of our own publishes queued for one peer. Own publishes are never dropped once
    /// queued (no timeout); a peer whose publish queue is full is skipped for the next
    /// publish and reported slow. Default 64 MiB (a Fulu block's 128 columns to one peer).
    pub max_publish_bytes: usize,
    /// Bytes of forwarded messages queued for one peer; a forward beyond it is dropped and
    /// counted. Default 32 MiB.
    pub max_forward_bytes: usize,
    /// Bytes of IWANT replies queued for one peer. Default 8 MiB.
    pub max_gossip_bytes: usize,
    /// A forward still queued after this long is dropped (its value has passed) and the peer
    /// reported slow. Default 2 s.
    pub forward_timeout: Duration,
    /// An IWANT reply still queued after this long is dropped. Default 3 s (the IWANT
    /// follow-up time: a later reply would not keep the promise anyway).
    pub gossip_timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            max_control_bytes: 1 << 20,
            max_publish_bytes: 64 << 20,
            max_forward_bytes: 32 << 20,
            max_gossip_bytes: 8 << 20,
            forward_timeout: Duration::from_secs(2),
            gossip_timeout: Duration::from_secs(3),
        }
    }
}

/// The router's configuration. [`Config::default`] is the Ethereum consensus profile.
#[derive(Clone)]
pub struct Config {
    /// Mesh degree target D. Default 8 (Ethereum).
    pub mesh_n: usize,
    /// D_low: below it the heartbeat grafts. Default 6.
    pub mesh_n_low: usize,
    /// D_high: above it the heartbeat prunes to D. Default 12.
    pub mesh_n_high: usize,
    /// D_score: peers kept by score when pruning an oversized mesh. Default 5.
    pub mesh_outbound_min_score_kept: usize,
    /// D_out: outbound connections kept in each mesh (< D_low, ≤ D/2). Default 3.
    pub mesh_outbound_min: usize,
    /// D_lazy: minimum peers sent IHAVE gossip per topic per heartbeat. Default 6.
    pub gossip_lazy: usize,
    /// Share of eligible non-mesh peers sent gossip (adaptive gossip). Default 0.25.
    pub gossip_factor: f64,
    /// Heartbeat interval. Default 700 ms.
    pub heartbeat_interval: Duration,
    /// Delay of the first heartbeat. Default 100 ms.
    pub heartbeat_initial_delay: Duration,
    /// A fanout topic not published to for this long is forgotten. Default 60 s.
    pub fanout_ttl: Duration,
    /// History windows of the message cache. Default 6.
    pub history_length: usize,
    /// Windows whose ids are gossiped. Default 3.
    pub history_gossip: usize,
    /// How long a message id stays in the seen cache. Default 768 s (Ethereum mainnet: 2
    /// epochs).
    pub seen_ttl: Duration,
    /// Most ids in the seen cache (oldest forgotten first). Default 1,048,576.
    pub max_seen_messages: usize,
    /// Backoff after a PRUNE (sent or received without a backoff field). Default 60 s.
    pub prune_backoff: Duration,
    /// Backoff after we leave a topic. Default 10 s.
    pub unsubscribe_backoff: Duration,
    /// Backoff in the PRUNE that answers a GRAFT from a peer not yet accepted (its Status
    /// handshake still running), and kept on our side too: the mesh forms this long after
    /// acceptance instead of after `prune_backoff`. Default 10 s.
    pub unaccepted_prune_backoff: Duration,
    /// Largest backoff accepted from a PRUNE; larger values are clamped (remote durations
    /// once overflowed timers elsewhere). Default 1 h.
    pub max_prune_backoff: Duration,
    /// Slack added to a backoff before we graft the peer ourselves, so we never re-graft a
    /// heartbeat early. A GRAFT from the peer is checked against the backoff alone.
    /// Default one heartbeat.
    pub backoff_slack: Duration,
    /// A GRAFT this soon after our PRUNE draws an extra behaviour penalty. Default 10 s.
    pub graft_flood_threshold: Duration,
    /// Publish to every topic peer above the publish threshold, not just the mesh. Default
    /// true.
    pub flood_publish: bool,
    /// Send peer exchange in PRUNE and act on received PX. Default false.
    pub do_px: bool,
    /// Peers offered per PRUNE when PX is on. Default 16.
    pub prune_peers: usize,
    /// Heartbeats between opportunistic grafting rounds. Default 60.
    pub opportunistic_graft_ticks: u64,
    /// Peers grafted per opportunistic round. Default 2.
    pub opportunistic_graft_peers: usize,
    /// IWANT replies to one peer per message id (GossipRetransmission). Default 3.
    pub gossip_retransmission: u32,
    /// IHAVE messages accepted from one peer per heartbeat. Default 10.
    pub max_ihave_messages: usize,
    /// Message ids requested by IWANT from one peer per heartbeat. Default 5000.
    pub max_ihave_length: usize,
    /// Ids sent in one IHAVE. Default 5000.
    pub max_ihave_ids_sent: usize,
    /// Time for an IHAVE advertiser to deliver what we asked for. Default 3 s.
    pub iwant_followup_time: Duration,
    /// Messages at least this large (encoded) get an IDONTWANT to the mesh on first
    /// receipt. Default 1000 bytes.
    pub idontwant_message_size_threshold: usize,
    /// Own publishes at least this large get an IDONTWANT to topic peers not sent the
    /// message. Default 1000 bytes; `usize::MAX` disables.
    pub idontwant_on_publish_threshold: usize,
    /// A flood-published message at least this large (encoded) goes to the mesh first: the
    /// copies for the other topic peers are queued once every mesh peer's writer has
    /// finished its copy (or at the next heartbeat), so the peers that forward it get it at
    /// full bandwidth. Default 16 KiB; `usize::MAX` disables.
    pub mesh_first_publish_threshold: usize,
    /// IDONTWANT ids honoured from one peer per heartbeat (storage bound). Default 5000.
    pub max_idontwant_per_heartbeat: usize,
    /// Lazy push of large forwards: a message at least this large (encoded) that we forward
    /// goes whole to only a few mesh peers ([`Config::lazy_push_eager`]); the other mesh
    /// peers get an IHAVE for it at once and pull it with IWANT unless another copy reaches
    /// them first. IHAVE and IWANT are v1.0 control messages, so every implementation takes
    /// part. Cuts duplicates below one per message at the cost of a round trip for the
    /// peers that pull (docs/gossipsub.md, "Lazy push"). Own publishes always go whole.
    /// `usize::MAX` (the default) forwards every copy whole, as go-, rust- and js-libp2p do.
    pub lazy_push_threshold: usize,
    /// Whole copies of a lazily pushed forward when only the peer that sent it to us is known
    /// to have it; one fewer for every other mesh peer known to have it (it sent a copy or an
    /// IDONTWANT), down to none. Default 2.
    pub lazy_push_eager: usize,
    /// Lazy-push announcements to one peer per heartbeat; past it, copies go whole. Default
    /// 5: go-, rust- and js-libp2p each heed 10 IHAVE messages from a peer per heartbeat, and
    /// half of that leaves room for the heartbeat's own gossip.
    pub max_lazy_push_per_heartbeat: usize,
    /// Heartbeats an IDONTWANT entry is kept. Default 3.
    pub idontwant_ttl_heartbeats: u64,
    /// plexus's experimental PREAMBLE / IMRECEIVING extension ([`crate::PREAMBLE_EXTENSION`],
    /// v1.3 peers that advertise it only): a message at least this large (encoded) sent to
    /// such a peer is preceded by a PREAMBLE (topic, id, length) as its copy starts; on a
    /// PREAMBLE from a mesh peer for a message we do not have, we tell our other mesh peers
    /// IMRECEIVING, which they treat as an IDONTWANT sent before the message arrived.
    /// `usize::MAX` (the default) neither advertises nor sends the extension, and ignores
    /// PREAMBLEs and IMRECEIVINGs received. Off by default: a mesh peer that announces a
    /// message and then stalls makes our other mesh peers hold their copies back until the
    /// deadline below, and the draft's answer (a behaviour penalty) takes several messages
    /// to bite. 16 KiB is a sensible value where every peer is trusted or links are slow.
    pub preamble_threshold: usize,
    /// Unfinished PREAMBLE announcements kept per peer; more are ignored. Default 8.
    pub max_preambles_per_peer: usize,
    /// How long a message announced by a PREAMBLE may take to arrive: this plus its length at
    /// `preamble_min_rate`. Past it, the message is asked for with IWANT from a mesh peer we
    /// told IMRECEIVING (up to two), and the announcer gets a behaviour penalty. Default 1 s.
    pub preamble_grace: Duration,
    /// The slowest transfer rate a PREAMBLE's deadline allows, bytes per second. Default
    /// 1 MiB/s.
    pub preamble_min_rate: u64,
    /// Topics one peer may be subscribed to (further subscriptions ignored). Default 256.
    pub max_subscriptions_per_peer: usize,
    /// Messages awaiting application validation per topic; more are dropped (counted,
    /// no penalty). Default 1024.
    pub max_pending_validations_per_topic: usize,
    /// A message not validated within this time is dropped as ignored. Default 12 s.
    pub validation_timeout: Duration,
    /// Whether the application validates messages (Accept / Reject / Ignore) before they
    /// are forwarded. Default true.
    pub validate_messages: bool,
    /// Every connected gossipsub peer is accepted for the mesh unless the application says
    /// otherwise. Default true (generic use); Ethereum clients set false and accept peers
    /// after the Status handshake.
    pub accept_by_default: bool,
    /// Authoring and checking policy. Default [`Signing::StrictNoSign`].
    pub signing: Signing,
    /// The message-id function. Default [`default_message_id`].
    pub message_id_fn: MessageIdFn,
    /// Peer scoring; `None` disables it (every score is 0).
    pub score: Option<(PeerScoreParams, PeerScoreThresholds)>,
    /// Wire decoding bounds.
    pub wire: WireLimits,
    /// Per-peer send queue bounds.
    pub queue: QueueConfig,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("mesh_n", &self.mesh_n)
            .field("mesh_n_low", &self.mesh_n_low)
            .field("mesh_n_high", &self.mesh_n_high)
            .field("heartbeat_interval", &self.heartbeat_interval)
            .field("signing", &self.signing)
            .field("scoring", &self.score.is_some())
            .finish_non_exhaustive()
    }
}

impl Default for Config {
    fn default() -> Self {
        let heartbeat = Duration::from_millis(700);
        Config {
            mesh_n: 8,
            mesh_n_low: 6,
            mesh_n_high: 12,
            mesh_outbound_min_score_kept: 5,
            mesh_outbound_min: 3,
            gossip_lazy: 6,
            gossip_factor: 0.25,
            heartbeat_interval: heartbeat,
            heartbeat_initial_delay: Duration::from_millis(100),
            fanout_ttl: Duration::from_secs(60),
            history_length: 6,
            history_gossip: 3,
            seen_ttl: Duration::from_secs(768),
            max_seen_messages: 1 << 20,
            prune_backoff: Duration::from_secs(60),
            unaccepted_prune_backoff: Duration::from_secs(10),
            unsubscribe_backoff: Duration::from_secs(10),
            max_prune_backoff: Duration::from_secs(3600),
            backoff_slack: heartbeat,
            graft_flood_threshold: Duration::from_secs(10),
            flood_publish: true,
            do_px: false,
            prune_peers: 16,
            opportunistic_graft_ticks: 60,
            opportunistic_graft_peers: 2,
            gossip_retransmission: 3,
            max_ihave_messages: 10,
            max_ihave_length: 5000,
            max_ihave_ids_sent: 5000,
            iwant_followup_time: Duration::from_secs(3),
            idontwant_message_size_threshold: 1000,
            idontwant_on_publish_threshold: 1000,
            mesh_first_publish_threshold: 16 * 1024,
            max_idontwant_per_heartbeat: 5000,
            lazy_push_threshold: usize::MAX,
            lazy_push_eager: 2,
            max_lazy_push_per_heartbeat: 5,
            idontwant_ttl_heartbeats: 3,
            preamble_threshold: usize::MAX,
            max_preambles_per_peer: 8,
            preamble_grace: Duration::from_secs(1),
            preamble_min_rate: 1 << 20,
            max_subscriptions_per_peer: 256,
            max_pending_validations_per_topic: 1024,
            validation_timeout: Duration::from_secs(12),
            validate_messages: true,
            accept_by_default: true,
            signing: Signing::StrictNoSign,
            message_id_fn: Arc::new(default_message_id),
            score: None,
            wire: WireLimits::default(),
            queue: QueueConfig::default(),
        }
    }
}

/// A configuration that breaks a rule of the spec.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The mesh degrees are out of order.
    #[error("need D_low <= D <= D_high (got {low} <= {d} <= {high})")]
    MeshDegrees {
        /// D_low.
        low: usize,
        /// D.
        d: usize,
        /// D_high.
        high: usize,
    },
    /// D_out must be below D_low and at most D/2.
    #[error("D_out ({d_out}) must be < D_low and <= D/2")]
    MeshOutbound {
        /// D_out.
        d_out: usize,
    },
    /// D_score must not exceed D.
    #[error("D_score ({0}) must be <= D")]
    MeshScore(usize),
    /// The gossip windows must fit in the history.
    #[error("history_gossip ({gossip}) must be in 1..=history_length ({length})")]
    History {
        /// history_gossip.
        gossip: usize,
        /// history_length.
        length: usize,
    },
    /// The heartbeat interval must be positive.
    #[error("heartbeat_interval must be positive")]
    Heartbeat,
    /// The gossip factor must be in [0, 1].
    #[error("gossip_factor must be in [0, 1]")]
    GossipFactor,
    /// The scoring parameters are invalid.
    #[error("score parameters: {0}")]
    Score(String),
}

impl Config {
    /// Check the rules between fields.
    ///
    /// # Errors
    /// The first rule broken.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.mesh_n_low <= self.mesh_n && self.mesh_n <= self.mesh_n_high) {
            return Err(ConfigError::MeshDegrees {
                low: self.mesh_n_low,
                d: self.mesh_n,
                high: self.mesh_n_high,
            });
        }
        let d_out = self.mesh_outbound_min;
        if d_out > 0 && (d_out >= self.mesh_n_low || d_out > self.mesh_n / 2) {
            return Err(ConfigError::MeshOutbound { d_out });
        }
        if self.mesh_outbound_min_score_kept > self.mesh_n {
            return Err(ConfigError::MeshScore(self.mesh_outbound_min_score_kept));
        }
        if self.history_gossip == 0 || self.history_gossip > self.history_length {
            return Err(ConfigError::History {
                gossip: self.history_gossip,
                length: self.history_length,
            });
        }
        if self.heartbeat_interval.is_zero() {
            return Err(ConfigError::Heartbeat);
        }
        if !(0.0..=1.0).contains(&self.gossip_factor) {
            return Err(ConfigError::GossipFactor);
        }
        if let Some((p, t)) = &self.score {
            p.validate()
                .map_err(|e| ConfigError::Score(e.to_string()))?;
            t.validate()
                .map_err(|e| ConfigError::Score(e.to_string()))?;
        }
        Ok(())
    }
}
