//! [`PeerManagerMetrics`]: prometheus-client metrics of the peer manager, also readable
//! directly (tests, the devnet report).

use std::time::{Duration, Instant};

use plexus_core::Direction;
use plexus_eth::GoodbyeReason;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::manager::{ConnState, PeerManager, StatusState};
use crate::score::{PeerAction, ReportSource};

type L1 = [(&'static str, &'static str); 1];
type L2 = [(&'static str, &'static str); 2];

/// Client names the agent version is mapped to (a bounded label set).
pub const CLIENTS: &[&str] = &[
    "lighthouse",
    "prysm",
    "teku",
    "nimbus",
    "lodestar",
    "grandine",
    "erigon",
    "plexus",
    "other",
    "unknown",
];

/// The client named by an agent version (`Lighthouse/v7.0.0/x86_64-linux` → lighthouse).
pub fn client_of(agent: Option<&str>) -> &'static str {
    let Some(a) = agent else { return "unknown" };
    let a = a.to_ascii_lowercase();
    CLIENTS[..8]
        .iter()
        .copied()
        .find(|c| {
            a.split(|ch: char| !ch.is_ascii_alphanumeric())
                .any(|t| t == *c)
        })
        .unwrap_or("other")
}

/// Score buckets for the peers-by-score gauge.
pub const SCORE_BUCKETS: &[&str] = &["banned", "below_disconnect", "negative", "zero", "positive"];

/// Goodbye reason labels.
pub fn reason_label(r: GoodbyeReason) -> &'static str {
    match r {
        GoodbyeReason::ClientShutdown => "client_shutdown",
        GoodbyeReason::IrrelevantNetwork => "irrelevant_network",
        GoodbyeReason::Fault => "fault",
        GoodbyeReason::UnableToVerifyNetwork => "unable_to_verify_network",
        GoodbyeReason::TooManyPeers => "too_many_peers",
        GoodbyeReason::BadScore => "bad_score",
        GoodbyeReason::Banned => "banned",
        GoodbyeReason::BannedIp => "banned_ip",
        _ => "other",
    }
}

/// The peer manager's metrics. Cheap to clone (clones share the values).
#[derive(Debug, Clone, Default)]
pub struct PeerManagerMetrics {
    by_state: Family<L1, Gauge>,
    by_direction: Family<L1, Gauge>,
    by_client: Family<L1, Gauge>,
    by_score: Family<L1, Gauge>,
    goodbyes_sent: Family<L1, Counter>,
    goodbyes_received: Family<L1, Counter>,
    refusals: Family<L2, Counter>,
    reconnects_refused: Counter,
    reports: Family<L2, Counter>,
    bans: Counter,
    dials: Counter,
    seconds_to_target: Gauge<f64, std::sync::atomic::AtomicU64>,
}

impl PeerManagerMetrics {
    /// Fresh metrics.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register every metric under the `peer_manager` prefix.
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("peer_manager");
        r.register(
            "peers_by_state",
            "Stored peers by state",
            self.by_state.clone(),
        );
        r.register(
            "peers_by_direction",
            "Connected peers by direction",
            self.by_direction.clone(),
        );
        r.register(
            "peers_by_client",
            "Connected peers by client",
            self.by_client.clone(),
        );
        r.register(
            "peers_by_score",
            "Connected peers by score bucket",
            self.by_score.clone(),
        );
        r.register(
            "goodbyes_sent",
            "Goodbyes sent, by reason",
            self.goodbyes_sent.clone(),
        );
        r.register(
            "goodbyes_received",
            "Goodbyes received, by reason",
            self.goodbyes_received.clone(),
        );
        r.register(
            "refusals",
            "Connections refused by the peer manager's gate, by reason and checkpoint",
            self.refusals.clone(),
        );
        r.register(
            "reconnects_refused",
            "Attempts by or to a peer in backoff or banned that were refused",
            self.reconnects_refused.clone(),
        );
        r.register(
            "reports",
            "Score reports, by source and action",
            self.reports.clone(),
        );
        r.register("bans", "Peers banned", self.bans.clone());
        r.register(
            "dials",
            "Dials started by the peer manager",
            self.dials.clone(),
        );
        r.register(
            "seconds_to_target",
            "Seconds from start to the target peer count (0 until reached)",
            self.seconds_to_target.clone(),
        );
    }

    pub(crate) fn goodbye(&self, sent: bool, reason: GoodbyeReason) {
        let f = if sent {
            &self.goodbyes_sent
        } else {
            &self.goodbyes_received
        };
        f.get_or_create(&[("reason", reason_label(reason))]).inc();
    }

    pub(crate) fn report(&self, source: ReportSource, action: PeerAction) {
        self.reports
            .get_or_create(&[("source", source.label()), ("action", action.label())])
            .inc();
    }

    pub(crate) fn ban(&self) {
        self.bans.inc();
    }

    pub(crate) fn dial(&self) {
        self.dials.inc();
    }

    pub(crate) fn refusal(&self, reason: &'static str, checkpoint: &'static str, reconnect: bool) {
        self.refusals
            .get_or_create(&[("reason", reason), ("checkpoint", checkpoint)])
            .inc();
        if reconnect {
            self.reconnects_refused.inc();
        }
    }

    pub(crate) fn set_time_to_target(&self, d: Duration) {
        self.seconds_to_target.set(d.as_secs_f64().max(1e-9));
    }

    /// Refresh the gauges from the store.
    pub(crate) fn observe(&self, pm: &PeerManager, now: Instant) {
        let cfg = &pm.config().score;
        let mut state = [0i64; 6];
        let mut dir = [0i64; 2];
        let mut client = [0i64; CLIENTS.len()];
        let mut score = [0i64; SCORE_BUCKETS.len()];
        for (_, p) in pm.peers() {
            let s = match p.conn {
                ConnState::Disconnected if p.ban_until.is_some_and(|u| u > now) => 4,
                ConnState::Disconnected if p.held_until(now).is_some() => 5,
                ConnState::Disconnected => 0,
                ConnState::Dialing => 1,
                ConnState::Connected {
                    status: StatusState::Accepted,
                    closing: false,
                    ..
                } => 3,
                ConnState::Connected { .. } => 2,
            };
            state[s] += 1;
            if let ConnState::Connected {
                direction,
                closing: false,
                ..
            } = p.conn
            {
                dir[usize::from(direction == Direction::Outbound)] += 1;
                let c = client_of(p.agent.as_deref());
                let i = CLIENTS
                    .iter()
                    .position(|x| *x == c)
                    .unwrap_or(CLIENTS.len() - 1);
                client[i] += 1;
                let v = p.score.value(cfg);
                let b = if v <= cfg.ban_threshold {
                    0
                } else if v <= cfg.disconnect_threshold {
                    1
                } else if v < 0.0 {
                    2
                } else if v == 0.0 {
                    3
                } else {
                    4
                };
                score[b] += 1;
            }
        }
        for (i, l) in [
            "disconnected",
            "dialing",
            "connected_pending_status",
            "connected_accepted",
            "banned",
            "backoff",
        ]
        .iter()
        .enumerate()
        {
            self.by_state.get_or_create(&[("state", *l)]).set(state[i]);
        }
        self.by_direction
            .get_or_create(&[("direction", "inbound")])
            .set(dir[0]);
        self.by_direction
            .get_or_create(&[("direction", "outbound")])
            .set(dir[1]);
        for (i, c) in CLIENTS.iter().enumerate() {
            self.by_client
                .get_or_create(&[("client", *c)])
                .set(client[i]);
        }
        for (i, b) in SCORE_BUCKETS.iter().enumerate() {
            self.by_score.get_or_create(&[("bucket", *b)]).set(score[i]);
        }
    }

    /// Goodbyes sent with `reason`.
    pub fn goodbyes_sent(&self, reason: GoodbyeReason) -> u64 {
        self.goodbyes_sent
            .get_or_create(&[("reason", reason_label(reason))])
            .get()
    }

    /// Goodbyes received with `reason`.
    pub fn goodbyes_received(&self, reason: GoodbyeReason) -> u64 {
        self.goodbyes_received
            .get_or_create(&[("reason", reason_label(reason))])
            .get()
    }

    /// Refusals by the gate for `reason` at `checkpoint`.
    pub fn refusals(&self, reason: &'static str, checkpoint: &'static str) -> u64 {
        self.refusals
            .get_or_create(&[("reason", reason), ("checkpoint", checkpoint)])
            .get()
    }

    /// Attempts by or to a peer in backoff or banned that were refused.
    pub fn reconnects_refused(&self) -> u64 {
        self.reconnects_refused.get()
    }

    /// Peers banned.
    pub fn bans(&self) -> u64 {
        self.bans.get()
    }

    /// Dials started.
    pub fn dials(&self) -> u64 {
        self.dials.get()
    }

    /// Seconds from start to the target (0 until reached).
    pub fn seconds_to_target(&self) -> f64 {
        self.seconds_to_target.get()
    }

    /// Stored peers in `state` (`disconnected`, `dialing`, `connected_pending_status`,
    /// `connected_accepted`, `banned`, `backoff`), as of the last heartbeat.
    pub fn peers_in_state(&self, state: &'static str) -> i64 {
        self.by_state.get_or_create(&[("state", state)]).get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_map_to_bounded_client_names() {
        assert_eq!(
            client_of(Some("Lighthouse/v7.0.1-abc/x86_64-linux")),
            "lighthouse"
        );
        assert_eq!(client_of(Some("Prysm/v6.0.0/abc")), "prysm");
        assert_eq!(client_of(Some("teku/v25.1.0/linux-x86_64")), "teku");
        assert_eq!(
            client_of(Some("js-libp2p/2.0.0 lodestar/v1.30")),
            "lodestar"
        );
        assert_eq!(client_of(Some("plexus/0.1.0")), "plexus");
        assert_eq!(client_of(Some("something-else")), "other");
        assert_eq!(client_of(None), "unknown");
    }
}
