//! Gossipsub v1.1 peer scoring (P₁–P₇).
//!
//! ```text
//! Score(p) = TopicCap(Σₜ wₜ·(w₁·P₁ + w₂·P₂ + w₃·P₃ + w₃b·P₃b + w₄·P₄)) + w₅·P₅ + w₆·P₆ + w₇·P₇
//! ```
//!
//! [`PeerScore`] is sans-IO and deterministic: every call that depends on time takes `now`,
//! and nothing here reads a clock. The router feeds it peer, mesh and message events and asks
//! for [`PeerScore::score`]; [`PeerScore::refresh`] is called every heartbeat to decay the
//! counters and drop expired state.
//!
//! # Terms
//!
//! Per topic (only topics with [`TopicScoreParams`] are tracked or contribute):
//! - **P₁** time in mesh: whole quanta elapsed since the GRAFT (`⌊t / quantum⌋`, as in the
//!   spec's pseudo-code), capped at `time_in_mesh_cap`; only while in the mesh. Computed from
//!   `now` when the score is asked for, so it never lags a decay interval.
//! - **P₂** first deliveries: +1 per valid message first delivered by the peer, capped at
//!   increment time.
//! - **P₃** mesh delivery deficit: `(threshold − counter)²` while the peer has been in the mesh
//!   longer than `mesh_message_deliveries_activation` and its counter is below the threshold.
//!   The counter counts first deliveries and *near-first* ones (a duplicate received while the
//!   first copy was being validated, or within `mesh_message_deliveries_window` after its
//!   validation) by mesh peers, capped at increment time.
//! - **P₃b** mesh failure: sticky; when a peer leaves the mesh (PRUNE, or disconnect) while its
//!   P₃ deficit is active, `deficit²` is added. Uncapped.
//! - **P₄** invalid messages: `counter²`; the counter counts REJECTed messages (never IGNOREd
//!   ones) from the sender and from every peer that delivered the same message. Uncapped.
//!
//! Per peer:
//! - **P₅** application score, as set by [`PeerScore::set_application_score`].
//! - **P₆** IP colocation: `(n − threshold)²` when `n`, the number of connected peers sharing
//!   the peer's address group, exceeds `ip_colocation_factor_threshold`. IPv4 addresses group
//!   by the full address; IPv6 addresses group by their **/64** prefix (one host or subscriber
//!   is routinely given a whole /64, so grouping by full address would let a single host present
//!   2⁶⁴ "different" addresses); IPv4-mapped IPv6 addresses count as the IPv4 address. Peers whose
//!   address is in a whitelisted CIDR are exempt: they get no P₆ and are not counted in any group.
//! - **P₇** behaviour penalty: `(counter − behaviour_penalty_threshold)²` when the counter
//!   exceeds the threshold, else 0.
//!
//! Counters of P₂, P₃, P₃b, P₄ and P₇ are multiplied by their decay factor once per elapsed
//! `decay_interval`; a value that falls below `decay_to_zero` becomes 0. The topic part is capped
//! at `topic_score_cap` when that is positive (only from above: penalties are never capped).
//!
//! # Retention
//!
//! When a peer disconnects ([`PeerScore::remove_peer`]) it leaves every mesh (with the P₃b rule
//! applied as for a PRUNE) and its counters are kept for `retain_score` if they are not all
//! neutral, whatever the sign of the score: the spec keeps scores so that a misbehaving peer
//! cannot reset a negative score by reconnecting *and* so that a well-behaved peer does not lose
//! its standing (go-libp2p keeps only non-positive scores; we keep both). A peer with nothing
//! to remember (all counters zero, no application score) is simply forgotten, as a fresh entry
//! would be identical. Retained counters keep decaying; at most `max_retained_peers` are kept,
//! the oldest disconnection dropped first. A retained peer that reconnects within
//! `retain_score` gets its counters back (with a fresh mesh state and its new address).
//!
//! # Bounds
//!
//! Connected peers are exactly those the router added; per peer, topic state exists only for
//! configured topics. Retained peers are bounded by `max_retained_peers`. Message delivery
//! records are bounded by `max_delivery_records` (oldest evicted first) and expire after
//! `delivery_record_ttl`; each records at most [`MAX_DELIVERERS_PER_RECORD`] extra deliverers
//! (later ones are neither credited nor penalised for that message).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use plexus_core::PeerId;

use crate::types::{MessageId, TopicHash};

/// At most this many peers, besides the first deliverer, are recorded per message while it is
/// pending validation or after it (for near-first credit, P₄ on invalid duplicates and to avoid
/// counting a peer twice). Deliverers beyond it are ignored for that message.
pub const MAX_DELIVERERS_PER_RECORD: usize = 64;

/// An invalid scoring parameter, as reported by the `validate` methods.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScoreParamsError {
    /// A numeric parameter is NaN or infinite.
    #[error("{0} is not a finite number")]
    NotFinite(&'static str),
    /// A numeric parameter is outside its allowed range.
    #[error("{field} = {value} is out of range: it must be {constraint}")]
    OutOfRange {
        /// The parameter's name.
        field: &'static str,
        /// Its value.
        value: f64,
        /// The constraint it breaks.
        constraint: &'static str,
    },
    /// A duration that must be positive is zero.
    #[error("{0} must be a positive duration")]
    ZeroDuration(&'static str),
    /// A count that must be at least 1 is zero.
    #[error("{0} must be at least 1")]
    ZeroCount(&'static str),
    /// A whitelist entry's prefix length is longer than its address.
    #[error("IP colocation whitelist entry {addr}/{prefix_len}: the prefix is too long")]
    InvalidCidr {
        /// The network address.
        addr: IpAddr,
        /// The prefix length.
        prefix_len: u8,
    },
    /// A topic's parameters are invalid.
    #[error("topic {topic}: {error}")]
    Topic {
        /// The topic.
        topic: TopicHash,
        /// What is wrong with its parameters.
        error: Box<ScoreParamsError>,
    },
}

fn check_finite(field: &'static str, value: f64) -> Result<(), ScoreParamsError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(ScoreParamsError::NotFinite(field))
    }
}

fn check_range(
    field: &'static str,
    value: f64,
    ok: bool,
    constraint: &'static str,
) -> Result<(), ScoreParamsError> {
    check_finite(field, value)?;
    if ok {
        Ok(())
    } else {
        Err(ScoreParamsError::OutOfRange {
            field,
            value,
            constraint,
        })
    }
}

fn check_at_least_zero(field: &'static str, value: f64) -> Result<(), ScoreParamsError> {
    check_range(field, value, value >= 0.0, ">= 0")
}

fn check_at_most_zero(field: &'static str, value: f64) -> Result<(), ScoreParamsError> {
    check_range(field, value, value <= 0.0, "<= 0")
}

fn check_decay(field: &'static str, value: f64) -> Result<(), ScoreParamsError> {
    check_range(field, value, value > 0.0 && value < 1.0, "in (0, 1)")
}

fn check_positive_duration(field: &'static str, value: Duration) -> Result<(), ScoreParamsError> {
    if value.is_zero() {
        Err(ScoreParamsError::ZeroDuration(field))
    } else {
        Ok(())
    }
}

/// Global scoring parameters, and the per-topic ones.
///
/// Every constraint [`PeerScoreParams::validate`] checks holds for [`Default`]. Validation
/// is the caller's job ([`PeerScore::try_new`] does it); [`PeerScore`] never panics on
/// invalid parameters but its scores are then meaningless.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerScoreParams {
    /// Per-topic parameters. Topics absent here neither are tracked nor contribute.
    pub topics: HashMap<TopicHash, TopicScoreParams>,
    /// Upper bound of the topic part of the score; `0` means no cap. `>= 0`.
    pub topic_score_cap: f64,
    /// Weight of P₅, the application-specific score. `>= 0`.
    pub app_specific_weight: f64,
    /// Weight of P₆, the IP colocation factor. `<= 0`.
    pub ip_colocation_factor_weight: f64,
    /// Number of peers that may share an address group before P₆ applies. `>= 1`.
    pub ip_colocation_factor_threshold: f64,
    /// Networks (address, prefix length) exempt from P₆.
    pub ip_colocation_factor_whitelist: Vec<(IpAddr, u8)>,
    /// Weight of P₇, the behaviour penalty. `<= 0`.
    pub behaviour_penalty_weight: f64,
    /// Penalty count tolerated before P₇ applies. `>= 0`.
    pub behaviour_penalty_threshold: f64,
    /// Decay factor of the behaviour penalty counter. In `(0, 1)`.
    pub behaviour_penalty_decay: f64,
    /// How often counters decay. Positive.
    pub decay_interval: Duration,
    /// A decayed counter below this becomes 0. In `(0, 1)`.
    pub decay_to_zero: f64,
    /// How long a disconnected peer's counters are kept.
    pub retain_score: Duration,
    /// At most this many disconnected peers are remembered; the oldest disconnection is
    /// forgotten first. `0` disables retention.
    pub max_retained_peers: usize,
    /// At most this many message delivery records are kept; the oldest is evicted first. `>= 1`.
    pub max_delivery_records: usize,
    /// A delivery record is dropped this long after the message was first seen. Positive.
    pub delivery_record_ttl: Duration,
}

impl Default for PeerScoreParams {
    /// No topics; the rest follows the Ethereum (Lighthouse-style) tuning where it is
    /// topic-independent:
    /// - `topic_score_cap` 53.75 (half of Lighthouse's maximum positive score) and
    ///   `ip_colocation_factor_weight` −53.75 (= −cap), `ip_colocation_factor_threshold` 8;
    ///   the loopback networks `127.0.0.0/8` and `::1/128` are whitelisted (peers on the same
    ///   machine, as in local testnets, are not sybils of a remote attacker);
    /// - `app_specific_weight` 1;
    /// - `behaviour_penalty_weight` −10, threshold 6, decay 0.9;
    /// - `decay_interval` 1 s, `decay_to_zero` 0.01;
    /// - `retain_score` 3600 s, at most 1024 retained peers;
    /// - at most 16 384 delivery records, each kept 120 s.
    fn default() -> Self {
        PeerScoreParams {
            topics: HashMap::new(),
            topic_score_cap: 53.75,
            app_specific_weight: 1.0,
            ip_colocation_factor_weight: -53.75,
            ip_colocation_factor_threshold: 8.0,
            ip_colocation_factor_whitelist: vec![
                (IpAddr::V4(Ipv4Addr::new(127, 0, 0, 0)), 8),
                (IpAddr::V6(Ipv6Addr::LOCALHOST), 128),
            ],
            behaviour_penalty_weight: -10.0,
            behaviour_penalty_threshold: 6.0,
            behaviour_penalty_decay: 0.9,
            decay_interval: Duration::from_secs(1),
            decay_to_zero: 0.01,
            retain_score: Duration::from_secs(3600),
            max_retained_peers: 1024,
            max_delivery_records: 16_384,
            delivery_record_ttl: Duration::from_secs(120),
        }
    }
}

impl PeerScoreParams {
    /// Check the constraints of the spec (and those that keep scores finite): weights have
    /// their sign, decays are in `(0, 1)`, thresholds and caps are in range, every number is
    /// finite, durations and bounds that divide or size something are positive, whitelist
    /// prefixes fit their address, and every topic's parameters are valid.
    pub fn validate(&self) -> Result<(), ScoreParamsError> {
        check_at_least_zero("topic_score_cap", self.topic_score_cap)?;
        check_at_least_zero("app_specific_weight", self.app_specific_weight)?;
        check_at_most_zero(
            "ip_colocation_factor_weight",
            self.ip_colocation_factor_weight,
        )?;
        check_range(
            "ip_colocation_factor_threshold",
            self.ip_colocation_factor_threshold,
            self.ip_colocation_factor_threshold >= 1.0,
            ">= 1",
        )?;
        for &(addr, prefix_len) in &self.ip_colocation_factor_whitelist {
            let max = if addr.is_ipv4() { 32 } else { 128 };
            if prefix_len > max {
                return Err(ScoreParamsError::InvalidCidr { addr, prefix_len });
            }
        }
        check_at_most_zero("behaviour_penalty_weight", self.behaviour_penalty_weight)?;
        check_at_least_zero(
            "behaviour_penalty_threshold",
            self.behaviour_penalty_threshold,
        )?;
        check_decay("behaviour_penalty_decay", self.behaviour_penalty_decay)?;
        check_positive_duration("decay_interval", self.decay_interval)?;
        check_decay("decay_to_zero", self.decay_to_zero)?;
        if self.max_delivery_records == 0 {
            return Err(ScoreParamsError::ZeroCount("max_delivery_records"));
        }
        check_positive_duration("delivery_record_ttl", self.delivery_record_ttl)?;
        // A deterministic order, so the same parameters always report the same error.
        let mut topics: Vec<_> = self.topics.iter().collect();
        topics.sort_by(|a, b| a.0.cmp(b.0));
        for (topic, params) in topics {
            params.validate().map_err(|error| ScoreParamsError::Topic {
                topic: topic.clone(),
                error: Box::new(error),
            })?;
        }
        Ok(())
    }
}

/// Scoring parameters of one topic.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicScoreParams {
    /// Weight of the topic's part of the score. `>= 0`.
    pub topic_weight: f64,
    /// Weight of P₁. `>= 0` (the spec: a small positive value).
    pub time_in_mesh_weight: f64,
    /// Time in mesh worth one point of P₁. Positive.
    pub time_in_mesh_quantum: Duration,
    /// Maximum of P₁. `>= 0`.
    pub time_in_mesh_cap: f64,
    /// Weight of P₂. `>= 0`.
    pub first_message_deliveries_weight: f64,
    /// Decay factor of the P₂ counter. In `(0, 1)`.
    pub first_message_deliveries_decay: f64,
    /// Maximum of the P₂ counter. `>= 0`.
    pub first_message_deliveries_cap: f64,
    /// Weight of P₃. `<= 0`.
    pub mesh_message_deliveries_weight: f64,
    /// Decay factor of the P₃ counter. In `(0, 1)`.
    pub mesh_message_deliveries_decay: f64,
    /// Maximum of the P₃ counter. `>= mesh_message_deliveries_threshold`.
    pub mesh_message_deliveries_cap: f64,
    /// P₃ counter below which the deficit is penalised. `>= 0`.
    pub mesh_message_deliveries_threshold: f64,
    /// A duplicate received this long after the first copy was validated still counts as a
    /// near-first delivery.
    pub mesh_message_deliveries_window: Duration,
    /// Time in mesh before P₃ applies.
    pub mesh_message_deliveries_activation: Duration,
    /// Weight of P₃b. `<= 0`.
    pub mesh_failure_penalty_weight: f64,
    /// Decay factor of P₃b. In `(0, 1)`.
    pub mesh_failure_penalty_decay: f64,
    /// Weight of P₄. `<= 0`.
    pub invalid_message_deliveries_weight: f64,
    /// Decay factor of the P₄ counter. In `(0, 1)`.
    pub invalid_message_deliveries_decay: f64,
}

impl Default for TopicScoreParams {
    /// A generic topic (tune per topic for real use):
    /// - `topic_weight` 0.5;
    /// - P₁: weight 10/3600, quantum 1 s, cap 3600 (at most 10 points after an hour);
    /// - P₂: weight 1, decay 0.9, cap 40;
    /// - P₃ and P₃b: **disabled** (weights 0): the threshold must match the topic's expected
    ///   message rate, and a wrong one prunes honest peers. The other P₃ fields are set so
    ///   that enabling it only takes a weight: decay 0.9, threshold 5, cap 40, window 5 ms
    ///   (the spec's 1–5 ms; it is measured from the end of validation), activation 30 s;
    ///   P₃b decay 0.9;
    /// - P₄: weight −100, decay 0.99 (one invalid message costs 50 with the topic weight, so
    ///   the peer drops below 0 at once and, with the default thresholds, is graylisted after
    ///   about 18).
    fn default() -> Self {
        TopicScoreParams {
            topic_weight: 0.5,
            time_in_mesh_weight: 10.0 / 3600.0,
            time_in_mesh_quantum: Duration::from_secs(1),
            time_in_mesh_cap: 3600.0,
            first_message_deliveries_weight: 1.0,
            first_message_deliveries_decay: 0.9,
            first_message_deliveries_cap: 40.0,
            mesh_message_deliveries_weight: 0.0,
            mesh_message_deliveries_decay: 0.9,
            mesh_message_deliveries_cap: 40.0,
            mesh_message_deliveries_threshold: 5.0,
            mesh_message_deliveries_window: Duration::from_millis(5),
            mesh_message_deliveries_activation: Duration::from_secs(30),
            mesh_failure_penalty_weight: 0.0,
            mesh_failure_penalty_decay: 0.9,
            invalid_message_deliveries_weight: -100.0,
            invalid_message_deliveries_decay: 0.99,
        }
    }
}

impl TopicScoreParams {
    /// Check the spec's constraints: weights have their sign (P₁, P₂ non-negative; P₃, P₃b,
    /// P₄ non-positive), decays are in `(0, 1)`, caps are non-negative with the P₃ cap at
    /// least its threshold, the time-in-mesh quantum is positive, every number is finite.
    pub fn validate(&self) -> Result<(), ScoreParamsError> {
        check_at_least_zero("topic_weight", self.topic_weight)?;
        check_at_least_zero("time_in_mesh_weight", self.time_in_mesh_weight)?;
        check_positive_duration("time_in_mesh_quantum", self.time_in_mesh_quantum)?;
        check_at_least_zero("time_in_mesh_cap", self.time_in_mesh_cap)?;
        check_at_least_zero(
            "first_message_deliveries_weight",
            self.first_message_deliveries_weight,
        )?;
        check_decay(
            "first_message_deliveries_decay",
            self.first_message_deliveries_decay,
        )?;
        check_at_least_zero(
            "first_message_deliveries_cap",
            self.first_message_deliveries_cap,
        )?;
        check_at_most_zero(
            "mesh_message_deliveries_weight",
            self.mesh_message_deliveries_weight,
        )?;
        check_decay(
            "mesh_message_deliveries_decay",
            self.mesh_message_deliveries_decay,
        )?;
        check_at_least_zero(
            "mesh_message_deliveries_threshold",
            self.mesh_message_deliveries_threshold,
        )?;
        check_range(
            "mesh_message_deliveries_cap",
            self.mesh_message_deliveries_cap,
            self.mesh_message_deliveries_cap >= self.mesh_message_deliveries_threshold,
            ">= mesh_message_deliveries_threshold",
        )?;
        check_at_most_zero(
            "mesh_failure_penalty_weight",
            self.mesh_failure_penalty_weight,
        )?;
        check_decay(
            "mesh_failure_penalty_decay",
            self.mesh_failure_penalty_decay,
        )?;
        check_at_most_zero(
            "invalid_message_deliveries_weight",
            self.invalid_message_deliveries_weight,
        )?;
        check_decay(
            "invalid_message_deliveries_decay",
            self.invalid_message_deliveries_decay,
        )?;
        Ok(())
    }

    /// P₃'s deficit for a peer grafted at `graft_time` whose counter is `deliveries`: positive
    /// only when it has been in the mesh longer than the activation time and the counter is
    /// below the threshold.
    fn deficit(&self, graft_time: Instant, deliveries: f64, now: Instant) -> f64 {
        let in_mesh = now.saturating_duration_since(graft_time);
        if in_mesh > self.mesh_message_deliveries_activation
            && deliveries < self.mesh_message_deliveries_threshold
        {
            self.mesh_message_deliveries_threshold - deliveries
        } else {
            0.0
        }
    }
}

/// The score thresholds the router acts on.
#[derive(Debug, Clone, PartialEq)]
pub struct PeerScoreThresholds {
    /// Below it: no gossip (IHAVE/IWANT) to or from the peer. `<= 0`.
    pub gossip_threshold: f64,
    /// Below it: not flood-published to. `<= gossip_threshold`.
    pub publish_threshold: f64,
    /// Below it: every RPC from the peer is ignored. `< publish_threshold`.
    pub graylist_threshold: f64,
    /// At or above it: PX from the peer's PRUNE is accepted. `>= 0`.
    pub accept_px_threshold: f64,
    /// When the median mesh score is below it, better peers are grafted opportunistically.
    /// `>= 0`.
    pub opportunistic_graft_threshold: f64,
}

impl Default for PeerScoreThresholds {
    /// The Ethereum (Lighthouse) values: gossip −4000, publish −8000, graylist −16000,
    /// accept PX 100, opportunistic graft 5.
    fn default() -> Self {
        PeerScoreThresholds {
            gossip_threshold: -4000.0,
            publish_threshold: -8000.0,
            graylist_threshold: -16000.0,
            accept_px_threshold: 100.0,
            opportunistic_graft_threshold: 5.0,
        }
    }
}

impl PeerScoreThresholds {
    /// Check `gossip <= 0`, `publish <= gossip`, `graylist < publish`, `accept_px >= 0`,
    /// `opportunistic_graft >= 0`, all finite.
    pub fn validate(&self) -> Result<(), ScoreParamsError> {
        check_at_most_zero("gossip_threshold", self.gossip_threshold)?;
        check_range(
            "publish_threshold",
            self.publish_threshold,
            self.publish_threshold <= self.gossip_threshold,
            "<= gossip_threshold",
        )?;
        check_range(
            "graylist_threshold",
            self.graylist_threshold,
            self.graylist_threshold < self.publish_threshold,
            "< publish_threshold",
        )?;
        check_at_least_zero("accept_px_threshold", self.accept_px_threshold)?;
        check_at_least_zero(
            "opportunistic_graft_threshold",
            self.opportunistic_graft_threshold,
        )?;
        Ok(())
    }
}

/// Why a received message was not accepted, as told to [`PeerScore::reject_message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectReason {
    /// The application REJECTed it: P₄ to the sender and to every peer that delivered it while
    /// validation was pending; later duplicates of it also earn P₄.
    Invalid,
    /// The application IGNOREd it: no penalty, and its duplicates earn neither credit nor
    /// penalty.
    Ignored,
    /// Its signature or authorship fields break the signature policy: P₄ to the sender only.
    /// The delivery record is left alone (the id of such a message proves nothing about other
    /// copies).
    InvalidSignature,
    /// It claims to be authored by us but we did not publish it: P₄ to the sender only, as
    /// for [`RejectReason::InvalidSignature`].
    SelfOrigin,
    /// It could not be validated because the validation queue was full: no penalty, and its
    /// duplicates earn neither credit nor penalty.
    ValidationQueueFull,
    /// The sender or author is blacklisted: nothing is recorded.
    Blacklisted,
}

/// An address group for P₆.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum IpGroup {
    /// A whole IPv4 address.
    V4(u32),
    /// The /64 prefix of an IPv6 address.
    V6(u64),
}

/// IPv4-mapped IPv6 addresses are their IPv4 address.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

fn ip_group(ip: IpAddr) -> IpGroup {
    match canonical_ip(ip) {
        IpAddr::V4(v4) => IpGroup::V4(u32::from(v4)),
        IpAddr::V6(v6) => IpGroup::V6((u128::from(v6) >> 64) as u64),
    }
}

fn cidr_contains(net: IpAddr, prefix_len: u8, ip: IpAddr) -> bool {
    match (net, canonical_ip(ip)) {
        (IpAddr::V4(net), IpAddr::V4(ip)) if prefix_len <= 32 => {
            let shift = 32 - u32::from(prefix_len);
            let mask = u32::MAX.checked_shl(shift).unwrap_or(0);
            u32::from(net) & mask == u32::from(ip) & mask
        }
        (IpAddr::V6(net), IpAddr::V6(ip)) if prefix_len <= 128 => {
            let shift = 128 - u32::from(prefix_len);
            let mask = u128::MAX.checked_shl(shift).unwrap_or(0);
            u128::from(net) & mask == u128::from(ip) & mask
        }
        _ => false,
    }
}

/// The counters of one peer in one configured topic.
#[derive(Debug, Clone, Default)]
struct TopicStats {
    /// When the peer was grafted, while it is in the mesh.
    graft_time: Option<Instant>,
    /// P₂ counter.
    first_message_deliveries: f64,
    /// P₃ counter.
    mesh_message_deliveries: f64,
    /// P₃b.
    mesh_failure_penalty: f64,
    /// P₄ counter.
    invalid_message_deliveries: f64,
}

impl TopicStats {
    fn is_neutral(&self) -> bool {
        self.graft_time.is_none()
            && self.first_message_deliveries == 0.0
            && self.mesh_message_deliveries == 0.0
            && self.mesh_failure_penalty == 0.0
            && self.invalid_message_deliveries == 0.0
    }

    /// Leave the mesh, adding the P₃ deficit (if active) to P₃b.
    fn leave_mesh(&mut self, params: Option<&TopicScoreParams>, now: Instant) {
        let Some(graft_time) = self.graft_time.take() else {
            return;
        };
        if let Some(params) = params {
            let deficit = params.deficit(graft_time, self.mesh_message_deliveries, now);
            self.mesh_failure_penalty += deficit * deficit;
        }
    }

    fn score(&self, params: &TopicScoreParams, now: Instant) -> f64 {
        let mut score = 0.0;
        if let Some(graft_time) = self.graft_time {
            let in_mesh = now.saturating_duration_since(graft_time).as_nanos();
            let quantum = params.time_in_mesh_quantum.as_nanos();
            let quanta = in_mesh.checked_div(quantum).unwrap_or(0) as f64;
            let p1 = quanta.min(params.time_in_mesh_cap);
            score += params.time_in_mesh_weight * p1;
            let deficit = params.deficit(graft_time, self.mesh_message_deliveries, now);
            score += params.mesh_message_deliveries_weight * deficit * deficit;
        }
        score += params.first_message_deliveries_weight * self.first_message_deliveries;
        score += params.mesh_failure_penalty_weight * self.mesh_failure_penalty;
        score += params.invalid_message_deliveries_weight
            * self.invalid_message_deliveries
            * self.invalid_message_deliveries;
        score
    }
}

/// What is known about one peer, connected or retained.
#[derive(Debug, Clone, Default)]
struct PeerStats {
    /// Per configured topic.
    topics: HashMap<TopicHash, TopicStats>,
    /// P₅.
    app_score: f64,
    /// P₇ counter.
    behaviour_penalty: f64,
    /// The peer's address, while connected.
    ip: Option<IpAddr>,
    /// The address group it is counted in for P₆ (absent when whitelisted or unknown).
    group: Option<IpGroup>,
}

impl PeerStats {
    /// Whether a fresh entry would score the same (ignoring mesh and address state).
    fn is_neutral(&self) -> bool {
        self.app_score == 0.0
            && self.behaviour_penalty == 0.0
            && self.topics.values().all(TopicStats::is_neutral)
    }
}

/// A disconnected peer's kept counters.
#[derive(Debug, Clone)]
struct Retained {
    stats: PeerStats,
    disconnected_at: Instant,
    /// Its key in [`PeerScore::retained_order`].
    seq: u64,
}

/// How a message's validation ended, if it has.
#[derive(Debug, Clone, Copy, PartialEq)]
enum DeliveryStatus {
    /// Validation is pending.
    Pending,
    /// Accepted at this time.
    Valid(Instant),
    /// Rejected as invalid.
    Invalid,
    /// Ignored, or never validated: neither credit nor penalty for anyone.
    Ignored,
}

/// What we know about the deliveries of one message.
#[derive(Debug, Clone)]
struct DeliveryRecord {
    topic: TopicHash,
    status: DeliveryStatus,
    first_seen: Instant,
    /// Who delivered it first.
    first_from: PeerId,
    /// Other peers that delivered it (bounded by [`MAX_DELIVERERS_PER_RECORD`]).
    peers: Vec<PeerId>,
    /// Its key in [`PeerScore::delivery_order`].
    seq: u64,
}

/// Peer scores: the state behind the score function, fed by the router.
#[derive(Debug, Clone)]
pub struct PeerScore {
    params: PeerScoreParams,
    /// Connected peers.
    peers: HashMap<PeerId, PeerStats>,
    /// Number of connected (non-whitelisted) peers per address group.
    ip_groups: HashMap<IpGroup, usize>,
    /// Disconnected peers whose counters are kept.
    retained: HashMap<PeerId, Retained>,
    /// Retained peers by disconnection order.
    retained_order: BTreeMap<u64, PeerId>,
    /// Message delivery records.
    deliveries: HashMap<MessageId, DeliveryRecord>,
    /// Delivery records by creation order.
    delivery_order: BTreeMap<u64, MessageId>,
    /// Source of the order keys.
    next_seq: u64,
    /// Start of the current decay interval; set by the first `add_peer` or `refresh`.
    decay_anchor: Option<Instant>,
}

impl PeerScore {
    /// Scores with `params`, which are not checked (see [`PeerScore::try_new`]).
    pub fn new(params: PeerScoreParams) -> Self {
        PeerScore {
            params,
            peers: HashMap::new(),
            ip_groups: HashMap::new(),
            retained: HashMap::new(),
            retained_order: BTreeMap::new(),
            deliveries: HashMap::new(),
            delivery_order: BTreeMap::new(),
            next_seq: 0,
            decay_anchor: None,
        }
    }

    /// Scores with `params`, after [`PeerScoreParams::validate`].
    pub fn try_new(params: PeerScoreParams) -> Result<Self, ScoreParamsError> {
        params.validate()?;
        Ok(Self::new(params))
    }

    /// The parameters in use.
    pub fn params(&self) -> &PeerScoreParams {
        &self.params
    }

    /// The score of `peer` at `now`: 0 for a peer we know nothing about. A disconnected peer
    /// whose counters are retained scores from them (no mesh, no P₆).
    pub fn score(&self, peer: &PeerId, now: Instant) -> f64 {
        let stats = match self.peers.get(peer) {
            Some(stats) => stats,
            None => match self.retained.get(peer) {
                Some(retained) => &retained.stats,
                None => return 0.0,
            },
        };
        let p = &self.params;

        let mut topic_score = 0.0;
        for (topic, topic_stats) in &stats.topics {
            if let Some(topic_params) = p.topics.get(topic) {
                topic_score += topic_params.topic_weight * topic_stats.score(topic_params, now);
            }
        }
        if p.topic_score_cap > 0.0 && topic_score > p.topic_score_cap {
            topic_score = p.topic_score_cap;
        }

        let mut score = topic_score + p.app_specific_weight * stats.app_score;

        if let Some(group) = stats.group {
            let sharing = self.ip_groups.get(&group).copied().unwrap_or(0) as f64;
            if sharing > p.ip_colocation_factor_threshold {
                let surplus = sharing - p.ip_colocation_factor_threshold;
                score += p.ip_colocation_factor_weight * surplus * surplus;
            }
        }

        if stats.behaviour_penalty > p.behaviour_penalty_threshold {
            let excess = stats.behaviour_penalty - p.behaviour_penalty_threshold;
            score += p.behaviour_penalty_weight * excess * excess;
        }

        // Only reachable with invalid parameters; NaN would compare false against every
        // threshold and so pass as a good score.
        if score.is_nan() { 0.0 } else { score }
    }

    /// A peer connected from `ip` (if known). A peer that disconnected less than
    /// `retain_score` ago gets its retained counters back. Adding a connected peer again
    /// only updates its address (when `ip` is given): one address per peer, the latest.
    pub fn add_peer(&mut self, peer: PeerId, ip: Option<IpAddr>, now: Instant) {
        self.decay_anchor.get_or_insert(now);
        if self.peers.contains_key(&peer) {
            if let Some(ip) = ip {
                self.set_ip(&peer, ip);
            }
            return;
        }
        let mut stats = PeerStats::default();
        if let Some(retained) = self.retained.remove(&peer) {
            self.retained_order.remove(&retained.seq);
            if now.saturating_duration_since(retained.disconnected_at) < self.params.retain_score {
                stats = retained.stats;
            }
        }
        self.peers.insert(peer, stats);
        if let Some(ip) = ip {
            self.set_ip(&peer, ip);
        }
    }

    /// Set a connected peer's address, moving it between address groups.
    fn set_ip(&mut self, peer: &PeerId, ip: IpAddr) {
        let whitelisted = self
            .params
            .ip_colocation_factor_whitelist
            .iter()
            .any(|&(net, len)| cidr_contains(net, len, ip));
        let new_group = (!whitelisted).then(|| ip_group(ip));
        let Some(stats) = self.peers.get_mut(peer) else {
            return;
        };
        stats.ip = Some(ip);
        let old_group = std::mem::replace(&mut stats.group, new_group);
        if old_group == new_group {
            return;
        }
        if let Some(old) = old_group {
            Self::leave_group(&mut self.ip_groups, old);
        }
        if let Some(new) = new_group {
            *self.ip_groups.entry(new).or_insert(0) += 1;
        }
    }

    fn leave_group(groups: &mut HashMap<IpGroup, usize>, group: IpGroup) {
        if let Some(count) = groups.get_mut(&group) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                groups.remove(&group);
            }
        }
    }

    /// A peer disconnected: it leaves every mesh (P₃b applied as for a PRUNE where its P₃
    /// deficit is active) and its address group; its counters are retained for
    /// `retain_score` unless they are all neutral (see the module docs).
    pub fn remove_peer(&mut self, peer: &PeerId, now: Instant) {
        let Some(mut stats) = self.peers.remove(peer) else {
            return;
        };
        if let Some(group) = stats.group.take() {
            Self::leave_group(&mut self.ip_groups, group);
        }
        stats.ip = None;
        for (topic, topic_stats) in stats.topics.iter_mut() {
            topic_stats.leave_mesh(self.params.topics.get(topic), now);
        }
        stats.topics.retain(|_, t| !t.is_neutral());
        if stats.is_neutral()
            || self.params.max_retained_peers == 0
            || self.params.retain_score.is_zero()
        {
            return;
        }
        while self.retained.len() >= self.params.max_retained_peers {
            let Some((_, oldest)) = self.retained_order.pop_first() else {
                break;
            };
            self.retained.remove(&oldest);
        }
        let seq = self.next_seq();
        self.retained_order.insert(seq, *peer);
        self.retained.insert(
            *peer,
            Retained {
                stats,
                disconnected_at: now,
                seq,
            },
        );
    }

    fn next_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    /// A connected peer joined our mesh of a configured `topic`. Grafting a peer already in
    /// the mesh keeps its original graft time.
    pub fn graft(&mut self, peer: &PeerId, topic: &TopicHash, now: Instant) {
        if let Some(stats) = self.topic_stats_mut(peer, topic) {
            stats.graft_time.get_or_insert(now);
        }
    }

    /// A peer left our mesh of `topic`: if its P₃ deficit is active, `deficit²` is added to
    /// its P₃b.
    pub fn prune(&mut self, peer: &PeerId, topic: &TopicHash, now: Instant) {
        let params = self.params.topics.get(topic);
        if let Some(stats) = self
            .peers
            .get_mut(peer)
            .and_then(|s| s.topics.get_mut(topic))
        {
            stats.leave_mesh(params, now);
        }
    }

    /// The topic counters of a connected peer in a configured topic, created on demand.
    fn topic_stats_mut(&mut self, peer: &PeerId, topic: &TopicHash) -> Option<&mut TopicStats> {
        if !self.params.topics.contains_key(topic) {
            return None;
        }
        let stats = self.peers.get_mut(peer)?;
        Some(stats.topics.entry(topic.clone()).or_default())
    }

    /// The live (unexpired) delivery record of `id`.
    fn record_mut(&mut self, id: &MessageId, now: Instant) -> Option<&mut DeliveryRecord> {
        let ttl = self.params.delivery_record_ttl;
        self.deliveries
            .get_mut(id)
            .filter(|r| now.saturating_duration_since(r.first_seen) < ttl)
    }

    /// Start a new record for `id` (replacing an expired one), evicting the oldest records
    /// beyond the bound. Returns false when records are disabled (a zero bound).
    fn create_record(
        &mut self,
        from: &PeerId,
        id: &MessageId,
        topic: &TopicHash,
        now: Instant,
    ) -> bool {
        if let Some(old) = self.deliveries.remove(id) {
            self.delivery_order.remove(&old.seq);
        }
        if self.params.max_delivery_records == 0 {
            return false;
        }
        while self.deliveries.len() >= self.params.max_delivery_records {
            let Some((_, oldest)) = self.delivery_order.pop_first() else {
                break;
            };
            self.deliveries.remove(&oldest);
        }
        let seq = self.next_seq();
        self.delivery_order.insert(seq, id.clone());
        self.deliveries.insert(
            id.clone(),
            DeliveryRecord {
                topic: topic.clone(),
                status: DeliveryStatus::Pending,
                first_seen: now,
                first_from: *from,
                peers: Vec::new(),
                seq,
            },
        );
        true
    }

    /// The first copy of a message arrived from `from` and is being validated. Does nothing
    /// if a live record of `id` exists.
    pub fn validate_message(
        &mut self,
        from: &PeerId,
        id: &MessageId,
        topic: &TopicHash,
        now: Instant,
    ) {
        if self.record_mut(id, now).is_none() {
            self.create_record(from, id, topic, now);
        }
    }

    /// The application accepted the message `from` delivered first: P₂ (and P₃ if it is a
    /// mesh peer) to `from`, and P₃ to every mesh peer that delivered a copy while validation
    /// was pending. Does nothing if the message's validation had already ended.
    pub fn deliver_message(
        &mut self,
        from: &PeerId,
        id: &MessageId,
        topic: &TopicHash,
        now: Instant,
    ) {
        if self.record_mut(id, now).is_none() {
            self.create_record(from, id, topic, now);
        }
        let (topic, others) = match self.record_mut(id, now) {
            Some(record) => {
                if record.status != DeliveryStatus::Pending {
                    return;
                }
                record.status = DeliveryStatus::Valid(now);
                record.first_from = *from;
                (record.topic.clone(), record.peers.clone())
            }
            // Records are disabled: credit the first deliverer only.
            None => (topic.clone(), Vec::new()),
        };
        self.mark_first_delivery(from, &topic);
        for peer in others.iter().filter(|p| *p != from) {
            self.mark_mesh_delivery(peer, &topic);
        }
    }

    /// The message `from` delivered first was not accepted, for `reason` (see
    /// [`RejectReason`] for who is penalised).
    pub fn reject_message(
        &mut self,
        from: &PeerId,
        id: &MessageId,
        topic: &TopicHash,
        reason: RejectReason,
        now: Instant,
    ) {
        match reason {
            RejectReason::Blacklisted => {}
            RejectReason::InvalidSignature | RejectReason::SelfOrigin => {
                self.mark_invalid_delivery(from, topic);
            }
            RejectReason::Ignored | RejectReason::ValidationQueueFull => {
                if let Some(record) = self.record_mut(id, now)
                    && record.status == DeliveryStatus::Pending
                {
                    record.status = DeliveryStatus::Ignored;
                    record.peers = Vec::new();
                }
            }
            RejectReason::Invalid => {
                if self.record_mut(id, now).is_none() {
                    self.create_record(from, id, topic, now);
                }
                let (topic, others) = match self.record_mut(id, now) {
                    Some(record) => {
                        if record.status != DeliveryStatus::Pending {
                            return;
                        }
                        record.status = DeliveryStatus::Invalid;
                        record.first_from = *from;
                        (record.topic.clone(), record.peers.clone())
                    }
                    None => (topic.clone(), Vec::new()),
                };
                self.mark_invalid_delivery(from, &topic);
                for peer in others.iter().filter(|p| *p != from) {
                    self.mark_invalid_delivery(peer, &topic);
                }
            }
        }
    }

    /// `from` delivered a copy of a message we already have. While the first copy is being
    /// validated the peer is recorded (and credited or penalised when validation ends); after
    /// acceptance it earns P₃ if it is a mesh peer and the copy came within the topic's
    /// `mesh_message_deliveries_window` of the validation; after rejection it earns P₄.
    /// A peer counts once per message; unknown or expired messages are ignored. Credit and
    /// penalty go to the topic the first copy was recorded under (`topic`, the duplicate's
    /// own topic, is not trusted over it).
    pub fn duplicated_message(
        &mut self,
        from: &PeerId,
        id: &MessageId,
        topic: &TopicHash,
        now: Instant,
    ) {
        let _ = topic;
        let window = |topics: &HashMap<TopicHash, TopicScoreParams>, topic: &TopicHash| {
            topics.get(topic).map(|p| p.mesh_message_deliveries_window)
        };
        let topic_params = &self.params.topics;
        let ttl = self.params.delivery_record_ttl;
        let Some(record) = self
            .deliveries
            .get_mut(id)
            .filter(|r| now.saturating_duration_since(r.first_seen) < ttl)
        else {
            return;
        };
        if record.first_from == *from
            || record.peers.contains(from)
            || record.peers.len() >= MAX_DELIVERERS_PER_RECORD
        {
            return;
        }
        let topic = record.topic.clone();
        match record.status {
            DeliveryStatus::Pending => record.peers.push(*from),
            DeliveryStatus::Valid(validated) => {
                let in_window = window(topic_params, &topic)
                    .is_some_and(|w| now.saturating_duration_since(validated) <= w);
                if in_window {
                    record.peers.push(*from);
                    self.mark_mesh_delivery(from, &topic);
                }
            }
            DeliveryStatus::Invalid => {
                record.peers.push(*from);
                self.mark_invalid_delivery(from, &topic);
            }
            DeliveryStatus::Ignored => {}
        }
    }

    /// P₂ (capped), and P₃ if in the mesh.
    fn mark_first_delivery(&mut self, peer: &PeerId, topic: &TopicHash) {
        let Some(params) = self.params.topics.get(topic) else {
            return;
        };
        let (fmd_cap, mmd_cap) = (
            params.first_message_deliveries_cap,
            params.mesh_message_deliveries_cap,
        );
        if let Some(stats) = self.topic_stats_mut(peer, topic) {
            stats.first_message_deliveries = (stats.first_message_deliveries + 1.0).min(fmd_cap);
            if stats.graft_time.is_some() {
                stats.mesh_message_deliveries = (stats.mesh_message_deliveries + 1.0).min(mmd_cap);
            }
        }
    }

    /// P₃ (capped) if in the mesh.
    fn mark_mesh_delivery(&mut self, peer: &PeerId, topic: &TopicHash) {
        let Some(cap) = self
            .params
            .topics
            .get(topic)
            .map(|p| p.mesh_message_deliveries_cap)
        else {
            return;
        };
        if let Some(stats) = self
            .peers
            .get_mut(peer)
            .and_then(|s| s.topics.get_mut(topic))
            && stats.graft_time.is_some()
        {
            stats.mesh_message_deliveries = (stats.mesh_message_deliveries + 1.0).min(cap);
        }
    }

    /// P₄ counter + 1.
    fn mark_invalid_delivery(&mut self, peer: &PeerId, topic: &TopicHash) {
        if let Some(stats) = self.topic_stats_mut(peer, topic) {
            stats.invalid_message_deliveries += 1.0;
        }
    }

    /// Add `count` to the P₇ counter of a connected or retained peer.
    pub fn add_penalty(&mut self, peer: &PeerId, count: usize) {
        if let Some(stats) = self.stats_mut(peer) {
            stats.behaviour_penalty += count as f64;
        }
    }

    /// Set P₅ of a connected or retained peer. Returns false (and changes nothing) for an
    /// unknown peer or a non-finite `score`.
    pub fn set_application_score(&mut self, peer: &PeerId, score: f64) -> bool {
        if !score.is_finite() {
            return false;
        }
        match self.stats_mut(peer) {
            Some(stats) => {
                stats.app_score = score;
                true
            }
            None => false,
        }
    }

    fn stats_mut(&mut self, peer: &PeerId) -> Option<&mut PeerStats> {
        match self.peers.get_mut(peer) {
            Some(stats) => Some(stats),
            None => self.retained.get_mut(peer).map(|r| &mut r.stats),
        }
    }

    /// Set (or replace) a topic's parameters. Existing P₂ and P₃ counters are lowered to the
    /// new caps. Peers already in the mesh of a newly configured topic accrue P₁ and P₃ only
    /// from their next GRAFT (mesh state is tracked for configured topics only).
    pub fn set_topic_params(&mut self, topic: TopicHash, params: TopicScoreParams) {
        for stats in self
            .peers
            .values_mut()
            .chain(self.retained.values_mut().map(|r| &mut r.stats))
        {
            if let Some(t) = stats.topics.get_mut(&topic) {
                t.first_message_deliveries = t
                    .first_message_deliveries
                    .min(params.first_message_deliveries_cap);
                t.mesh_message_deliveries = t
                    .mesh_message_deliveries
                    .min(params.mesh_message_deliveries_cap);
            }
        }
        self.params.topics.insert(topic, params);
    }

    /// Stop scoring `topic`: its parameters and every peer's counters in it are dropped.
    pub fn remove_topic_params(&mut self, topic: &TopicHash) {
        self.params.topics.remove(topic);
        for stats in self
            .peers
            .values_mut()
            .chain(self.retained.values_mut().map(|r| &mut r.stats))
        {
            stats.topics.remove(topic);
        }
    }

    /// The address a connected peer was added with.
    pub fn ip_of(&self, peer: &PeerId) -> Option<IpAddr> {
        self.peers.get(peer).and_then(|s| s.ip)
    }

    /// Whether `peer` is connected (added and not removed).
    pub fn is_connected(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// Whether `peer` is disconnected with its counters retained.
    pub fn is_retained(&self, peer: &PeerId) -> bool {
        self.retained.contains_key(peer)
    }

    /// Number of disconnected peers whose counters are retained.
    pub fn retained_count(&self) -> usize {
        self.retained.len()
    }

    /// Number of message delivery records held.
    pub fn delivery_record_count(&self) -> usize {
        self.deliveries.len()
    }

    /// The heartbeat's housekeeping: decay every counter once per `decay_interval` elapsed
    /// since the last decay (values below `decay_to_zero` become 0), forget retained peers
    /// disconnected `retain_score` ago or whose counters all decayed to zero, and drop
    /// delivery records older than `delivery_record_ttl`.
    pub fn refresh(&mut self, now: Instant) {
        let anchor = *self.decay_anchor.get_or_insert(now);
        let interval = self.params.decay_interval.as_nanos();
        let elapsed = now.saturating_duration_since(anchor).as_nanos();
        let intervals = elapsed.checked_div(interval).unwrap_or(0);
        if intervals > 0 {
            // Cannot fail: intervals * interval <= elapsed, which came from a Duration.
            let advance = intervals
                .checked_mul(interval)
                .and_then(|n| u64::try_from(n).ok())
                .map(Duration::from_nanos);
            self.decay_anchor = advance.and_then(|d| anchor.checked_add(d)).or(Some(now));
            let times = i32::try_from(intervals).unwrap_or(i32::MAX);
            self.decay(times);
        }

        let retain = self.params.retain_score;
        while let Some((&seq, &peer)) = self.retained_order.first_key_value() {
            let expired = self
                .retained
                .get(&peer)
                .is_none_or(|r| now.saturating_duration_since(r.disconnected_at) >= retain);
            if !expired {
                break;
            }
            self.retained_order.remove(&seq);
            self.retained.remove(&peer);
        }
        let order = &mut self.retained_order;
        self.retained.retain(|_, r| {
            let keep = !r.stats.is_neutral();
            if !keep {
                order.remove(&r.seq);
            }
            keep
        });

        let ttl = self.params.delivery_record_ttl;
        while let Some((&seq, id)) = self.delivery_order.first_key_value() {
            let expired = self
                .deliveries
                .get(id)
                .is_none_or(|r| now.saturating_duration_since(r.first_seen) >= ttl);
            if !expired {
                break;
            }
            if let Some(id) = self.delivery_order.remove(&seq) {
                self.deliveries.remove(&id);
            }
        }
    }

    /// Apply `times` decay steps to every counter of every peer.
    fn decay(&mut self, times: i32) {
        let p = &self.params;
        let to_zero = p.decay_to_zero;
        let decay = |value: &mut f64, factor: f64| {
            *value *= factor.powi(times);
            if *value < to_zero {
                *value = 0.0;
            }
        };
        for stats in self
            .peers
            .values_mut()
            .chain(self.retained.values_mut().map(|r| &mut r.stats))
        {
            decay(&mut stats.behaviour_penalty, p.behaviour_penalty_decay);
            for (topic, t) in stats.topics.iter_mut() {
                let Some(tp) = p.topics.get(topic) else {
                    continue;
                };
                decay(
                    &mut t.first_message_deliveries,
                    tp.first_message_deliveries_decay,
                );
                decay(
                    &mut t.mesh_message_deliveries,
                    tp.mesh_message_deliveries_decay,
                );
                decay(&mut t.mesh_failure_penalty, tp.mesh_failure_penalty_decay);
                decay(
                    &mut t.invalid_message_deliveries,
                    tp.invalid_message_deliveries_decay,
                );
            }
            stats.topics.retain(|_, t| !t.is_neutral());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    #[test]
    fn cidr_matching() {
        let net = addr("10.1.0.0");
        assert!(cidr_contains(net, 16, addr("10.1.255.255")));
        assert!(!cidr_contains(net, 16, addr("10.2.0.0")));
        assert!(cidr_contains(net, 0, addr("200.1.1.1")));
        assert!(cidr_contains(addr("10.1.2.3"), 32, addr("10.1.2.3")));
        assert!(!cidr_contains(addr("10.1.2.3"), 32, addr("10.1.2.4")));
        // IPv4-mapped IPv6 peers match IPv4 networks; families never mix otherwise.
        assert!(cidr_contains(net, 16, addr("::ffff:10.1.2.3")));
        assert!(!cidr_contains(addr("::"), 0, addr("10.1.2.3")));
        assert!(cidr_contains(addr("fd00::"), 8, addr("fdff::1")));
        assert!(!cidr_contains(addr("fd00::"), 8, addr("fe00::1")));
        assert!(cidr_contains(addr("::1"), 128, addr("::1")));
        // Out-of-range prefixes never match.
        assert!(!cidr_contains(net, 33, addr("10.1.0.0")));
        assert!(!cidr_contains(addr("::1"), 129, addr("::1")));
    }

    #[test]
    fn ip_groups() {
        assert_eq!(ip_group(addr("1.2.3.4")), ip_group(addr("::ffff:1.2.3.4")));
        assert_ne!(ip_group(addr("1.2.3.4")), ip_group(addr("1.2.3.5")));
        assert_eq!(
            ip_group(addr("2001:db8:1:2::1")),
            ip_group(addr("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            ip_group(addr("2001:db8:1:2::1")),
            ip_group(addr("2001:db8:1:3::1"))
        );
    }
}
