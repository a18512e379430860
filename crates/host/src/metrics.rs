//! [`HostMetrics`]: prometheus-client metrics of the host, also readable
//! directly (tests, status pages).

use plexus_conn::{Checkpoint, Stage};
use plexus_core::Direction;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

type L1 = [(&'static str, &'static str); 1];
type L2 = [(&'static str, &'static str); 2];
type HistFamily = Family<L1, Histogram, fn() -> Histogram>;

/// Every refusal reason the host counts (the `reason` label of
/// `refusals_total`). The set is closed, so the label's cardinality is
/// bounded.
pub const REFUSAL_REASONS: &[&str] = &[
    // the built-in ban list: peer id banned
    "banned_peer",
    // the built-in ban list: IP banned
    "banned_ip",
    // established inbound connections at `HostLimits::max_inbound_connections`
    "peer_cap",
    // pending inbound handshakes at `HostLimits::max_pending_inbound`, every one
    // of them past its security handshake (so none could be evicted)
    "pending_cap",
    // pending inbound handshakes from the remote IP at
    // `HostLimits::max_pending_inbound_per_ip`
    "pending_ip_cap",
    // pending inbound handshakes from the remote's IPv4 /24 or IPv6 /64 at
    // `HostLimits::max_pending_inbound_per_ipv4_24` / `_per_ipv6_64`
    "pending_subnet_cap",
    // established outbound connections at `HostLimits::max_outbound_connections`
    "outbound_cap",
    // connections to one peer beyond `HostLimits::max_connections_per_peer` (> 1)
    "per_peer_cap",
    // the application's gater (any reason it gave)
    "app",
];

/// Every checkpoint label of `refusals_total`.
pub const CHECKPOINTS: &[&str] = &["peer_dial", "addr_dial", "accept", "secured", "upgraded"];

/// Every `state` label of `pending_handshakes` and `pending_evictions_total`:
/// no valid multistream header yet, negotiating the security protocol, in the
/// security handshake, secured (gating and muxer negotiation).
pub const PENDING_STATES: &[&str] = &["awaiting_first_byte", "negotiating", "securing", "muxing"];

/// Every reason label of `streams_reset_total`.
pub const STREAM_RESET_REASONS: &[&str] = &[
    // `HandlerOpts::max_inbound_per_peer` reached for (peer, protocol)
    "per_peer_limit",
    // the handler's backlog (`HandlerOpts::backlog`) is full
    "backlog_full",
    // `HostLimits::max_negotiating_streams` busy on the connection
    "negotiation_slots",
    // the handler was dropped while the stream negotiated
    "unregistered",
];

pub(crate) fn checkpoint_label(c: Checkpoint) -> &'static str {
    match c {
        Checkpoint::PeerDial => "peer_dial",
        Checkpoint::AddrDial => "addr_dial",
        Checkpoint::Accept => "accept",
        Checkpoint::Secured => "secured",
        Checkpoint::Upgraded => "upgraded",
    }
}

fn dir_label(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::Outbound => "outbound",
    }
}

fn static_of(set: &[&'static str], s: &str) -> Option<&'static str> {
    set.iter().copied().find(|x| *x == s)
}

fn handshake_histogram() -> Histogram {
    // 1 ms .. ~33 s
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The host's metrics. Cheap to clone (clones share the values). Register
/// them with [`HostMetrics::register`]; read them directly with the getters.
#[derive(Debug, Clone)]
pub struct HostMetrics {
    connections: Family<L1, Gauge>,
    streams_opened: Counter,
    streams_accepted: Counter,
    streams_reset: Family<L1, Counter>,
    refusals: Family<L2, Counter>,
    handshakes_started: Family<L1, Counter>,
    handshake_failures: Family<L1, Counter>,
    handshakes_completed: Family<L1, Counter>,
    handshake_duration: HistFamily,
    dial_failures: Counter,
    bytes_read: Counter,
    bytes_written: Counter,
    pending: Family<L1, Gauge>,
    evictions: Family<L1, Counter>,
}

impl Default for HostMetrics {
    fn default() -> Self {
        HostMetrics {
            connections: Family::default(),
            streams_opened: Counter::default(),
            streams_accepted: Counter::default(),
            streams_reset: Family::default(),
            refusals: Family::default(),
            handshakes_started: Family::default(),
            handshake_failures: Family::default(),
            handshakes_completed: Family::default(),
            handshake_duration: Family::new_with_constructor(handshake_histogram),
            dial_failures: Counter::default(),
            bytes_read: Counter::default(),
            bytes_written: Counter::default(),
            pending: Family::default(),
            evictions: Family::default(),
        }
    }
}

impl HostMetrics {
    /// Fresh metrics, all zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Register every metric in `registry` (names prefixed `plexus_host_`;
    /// nest with `Registry::sub_registry_with_prefix` for more).
    pub fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("plexus_host");
        r.register(
            "connections",
            "Established connections, by direction",
            self.connections.clone(),
        );
        r.register(
            "streams_opened",
            "Outbound streams opened (new_stream)",
            self.streams_opened.clone(),
        );
        r.register(
            "streams_accepted",
            "Inbound streams negotiated and handed to a handler",
            self.streams_accepted.clone(),
        );
        r.register(
            "streams_reset",
            "Inbound streams reset by the host, by reason",
            self.streams_reset.clone(),
        );
        r.register(
            "refusals",
            "Connections refused, by reason and gater checkpoint",
            self.refusals.clone(),
        );
        r.register(
            "handshakes_started",
            "Handshakes started: inbound connections past accept, outbound dial attempts",
            self.handshakes_started.clone(),
        );
        r.register(
            "handshake_failures",
            "Connection upgrades that failed (not counting gater refusals), by direction",
            self.handshake_failures.clone(),
        );
        r.register(
            "handshakes_completed",
            "Connection upgrades that completed, by direction",
            self.handshakes_completed.clone(),
        );
        r.register(
            "handshake_duration_seconds",
            "Time from accept or dial to an upgraded connection, by direction",
            self.handshake_duration.clone(),
        );
        r.register(
            "dial_failures",
            "Dial attempts (one address each) that failed",
            self.dial_failures.clone(),
        );
        r.register(
            "pending_handshakes",
            "Inbound connections past accept whose upgrade has not finished, by state",
            self.pending.clone(),
        );
        r.register(
            "pending_evictions",
            "Pending inbound connections evicted to make room for a newcomer, by the state they were in",
            self.evictions.clone(),
        );
        r.register(
            "stream_bytes_read",
            "Bytes read from streams (after decryption; multistream included)",
            self.bytes_read.clone(),
        );
        r.register(
            "stream_bytes_written",
            "Bytes written to streams (before encryption; multistream included)",
            self.bytes_written.clone(),
        );
    }

    // ---- recording (crate-internal) ----

    pub(crate) fn refusal(&self, reason: &'static str, checkpoint: &'static str) {
        self.refusals
            .get_or_create(&[("reason", reason), ("checkpoint", checkpoint)])
            .inc();
    }

    pub(crate) fn connection_opened(&self, d: Direction) {
        self.connections
            .get_or_create(&[("direction", dir_label(d))])
            .inc();
    }

    pub(crate) fn connection_closed(&self, d: Direction) {
        self.connections
            .get_or_create(&[("direction", dir_label(d))])
            .dec();
    }

    pub(crate) fn stream_opened(&self) {
        self.streams_opened.inc();
    }

    pub(crate) fn stream_accepted(&self) {
        self.streams_accepted.inc();
    }

    pub(crate) fn stream_reset(&self, reason: &'static str) {
        self.streams_reset
            .get_or_create(&[("reason", reason)])
            .inc();
    }

    pub(crate) fn handshake_started(&self, d: Direction) {
        self.handshakes_started
            .get_or_create(&[("direction", dir_label(d))])
            .inc();
    }

    pub(crate) fn handshake_failed(&self, d: Direction) {
        self.handshake_failures
            .get_or_create(&[("direction", dir_label(d))])
            .inc();
    }

    pub(crate) fn handshake_done(&self, d: Direction, secs: f64) {
        self.handshakes_completed
            .get_or_create(&[("direction", dir_label(d))])
            .inc();
        self.handshake_duration
            .get_or_create(&[("direction", dir_label(d))])
            .observe(secs);
    }

    pub(crate) fn byte_counters(&self) -> crate::stream::ByteCounters {
        crate::stream::ByteCounters {
            read: self.bytes_read.clone(),
            written: self.bytes_written.clone(),
        }
    }

    pub(crate) fn pending_entered(&self, s: Stage) {
        self.pending.get_or_create(&[("state", s.label())]).inc();
    }

    pub(crate) fn pending_left(&self, s: Stage) {
        self.pending.get_or_create(&[("state", s.label())]).dec();
    }

    pub(crate) fn pending_evicted(&self, s: Stage) {
        self.evictions.get_or_create(&[("state", s.label())]).inc();
    }

    pub(crate) fn dial_failed(&self) {
        self.dial_failures.inc();
    }

    // ---- reading ----

    /// Refusals with `reason` (one of [`REFUSAL_REASONS`]) at every
    /// checkpoint together. 0 for an unknown reason.
    pub fn refusals(&self, reason: &str) -> u64 {
        CHECKPOINTS
            .iter()
            .map(|cp| self.refusals_at(reason, cp))
            .sum()
    }

    /// Refusals with `reason` at `checkpoint` (one of [`CHECKPOINTS`]).
    pub fn refusals_at(&self, reason: &str, checkpoint: &str) -> u64 {
        let (Some(r), Some(c)) = (
            static_of(REFUSAL_REASONS, reason),
            static_of(CHECKPOINTS, checkpoint),
        ) else {
            return 0;
        };
        self.refusals
            .get(&[("reason", r), ("checkpoint", c)])
            .map_or(0, |m| m.get())
    }

    /// Every refusal at `checkpoint`, whatever the reason.
    pub fn refusals_at_checkpoint(&self, checkpoint: &str) -> u64 {
        REFUSAL_REASONS
            .iter()
            .map(|r| self.refusals_at(r, checkpoint))
            .sum()
    }

    /// Established connections in direction `d` now.
    pub fn connections_open(&self, d: Direction) -> i64 {
        self.connections
            .get(&[("direction", dir_label(d))])
            .map_or(0, |m| m.get())
    }

    /// Handshakes started in direction `d`: inbound connections that passed
    /// the `accept` checkpoint and the pending cap (each runs a Noise
    /// handshake), outbound dial attempts that were started.
    pub fn handshakes_started(&self, d: Direction) -> u64 {
        self.handshakes_started
            .get(&[("direction", dir_label(d))])
            .map_or(0, |m| m.get())
    }

    /// Upgrades in direction `d` that failed for a reason other than a gater
    /// refusal.
    pub fn handshake_failures(&self, d: Direction) -> u64 {
        self.handshake_failures
            .get(&[("direction", dir_label(d))])
            .map_or(0, |m| m.get())
    }

    /// Connection upgrades in direction `d` that completed.
    pub fn handshakes_completed(&self, d: Direction) -> u64 {
        self.handshakes_completed
            .get(&[("direction", dir_label(d))])
            .map_or(0, |m| m.get())
    }

    /// Pending inbound handshakes in `state` (one of [`PENDING_STATES`]) now.
    pub fn pending_handshakes(&self, state: &str) -> i64 {
        let Some(s) = static_of(PENDING_STATES, state) else {
            return 0;
        };
        self.pending.get(&[("state", s)]).map_or(0, |m| m.get())
    }

    /// Pending inbound handshakes now, every state together.
    pub fn pending_handshakes_total(&self) -> i64 {
        PENDING_STATES
            .iter()
            .map(|s| self.pending_handshakes(s))
            .sum()
    }

    /// Pending inbound connections evicted while in `state` (one of
    /// [`PENDING_STATES`]).
    pub fn pending_evictions(&self, state: &str) -> u64 {
        let Some(s) = static_of(PENDING_STATES, state) else {
            return 0;
        };
        self.evictions.get(&[("state", s)]).map_or(0, |m| m.get())
    }

    /// Pending inbound connections evicted, every state together.
    pub fn pending_evictions_total(&self) -> u64 {
        PENDING_STATES
            .iter()
            .map(|s| self.pending_evictions(s))
            .sum()
    }

    /// Outbound streams opened.
    pub fn streams_opened(&self) -> u64 {
        self.streams_opened.get()
    }

    /// Inbound streams handed to a handler.
    pub fn streams_accepted(&self) -> u64 {
        self.streams_accepted.get()
    }

    /// Inbound streams the host reset for `reason` (one of
    /// [`STREAM_RESET_REASONS`]).
    pub fn streams_reset(&self, reason: &str) -> u64 {
        let Some(r) = static_of(STREAM_RESET_REASONS, reason) else {
            return 0;
        };
        self.streams_reset
            .get(&[("reason", r)])
            .map_or(0, |m| m.get())
    }

    /// Bytes read from streams, all streams together.
    pub fn stream_bytes_read(&self) -> u64 {
        self.bytes_read.get()
    }

    /// Bytes written to streams, all streams together.
    pub fn stream_bytes_written(&self) -> u64 {
        self.bytes_written.get()
    }

    /// Failed dial attempts (one address each).
    pub fn dial_failures(&self) -> u64 {
        self.dial_failures.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_metrics_encode_with_their_labels() {
        let m = HostMetrics::new();
        m.refusal("banned_ip", "accept");
        m.refusal("banned_ip", "accept");
        m.refusal("app", "secured");
        m.connection_opened(Direction::Inbound);
        m.handshake_done(Direction::Outbound, 0.01);
        m.pending_entered(Stage::AwaitingHeader);
        m.pending_entered(Stage::AwaitingHeader);
        m.pending_left(Stage::AwaitingHeader);
        m.pending_entered(Stage::Securing);
        m.pending_evicted(Stage::Negotiating);
        let mut reg = Registry::default();
        m.register(&mut reg);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).unwrap();
        assert!(
            out.contains(r#"plexus_host_refusals_total{reason="banned_ip",checkpoint="accept"} 2"#),
            "{out}"
        );
        assert!(
            out.contains(r#"plexus_host_connections{direction="inbound"} 1"#),
            "{out}"
        );
        assert!(
            out.contains("plexus_host_handshake_duration_seconds_count"),
            "{out}"
        );
        assert_eq!(m.refusals("banned_ip"), 2);
        assert_eq!(m.refusals_at("app", "secured"), 1);
        assert_eq!(m.refusals_at_checkpoint("accept"), 2);
        assert_eq!(m.refusals("no such reason"), 0);
        assert_eq!(m.handshakes_completed(Direction::Outbound), 1);
        assert!(
            out.contains(r#"plexus_host_pending_handshakes{state="awaiting_first_byte"} 1"#),
            "{out}"
        );
        assert!(
            out.contains(r#"plexus_host_pending_evictions_total{state="negotiating"} 1"#),
            "{out}"
        );
        assert_eq!(m.pending_handshakes("securing"), 1);
        assert_eq!(m.pending_handshakes_total(), 2);
        assert_eq!(m.pending_evictions_total(), 1);
        m.refusal("pending_ip_cap", "accept");
        assert_eq!(m.refusals_at("pending_ip_cap", "accept"), 1);
        assert_eq!(m.refusals_at_checkpoint("accept"), 3);
        for s in Stage::ALL {
            assert!(PENDING_STATES.contains(&s.label()));
        }
    }
}
