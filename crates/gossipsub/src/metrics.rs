//! Prometheus metrics of the router, refreshed by the service at every heartbeat.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::queue::Class;
use crate::router::{Router, RouterStats, TopicStats};
use crate::types::TopicHash;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicLabel {
    topic: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TopicOutcome {
    topic: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Kind {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ClassLabel {
    class: &'static str,
}

#[derive(Debug, Default)]
struct Last {
    stats: RouterStats,
    topics: std::collections::BTreeMap<TopicHash, TopicStats>,
}

#[derive(Debug)]
struct Inner {
    mesh_peers: Family<TopicLabel, Gauge>,
    topic_peers: Family<TopicLabel, Gauge>,
    messages: Family<TopicOutcome, Counter>,
    idontwant: Family<Kind, Counter>,
    control: Family<Kind, Counter>,
    queue_drops: Family<ClassLabel, Counter>,
    queue_bytes: Family<ClassLabel, Gauge>,
    scores: Histogram,
    last: Mutex<Last>,
}

/// The router's metrics (cheap to clone). Labels: `topic` only for topics we subscribe to
/// or publish on (a peer cannot add label values), `outcome`, `kind` and `class` from
/// closed sets.
#[derive(Debug, Clone)]
pub struct GossipMetrics(Arc<Inner>);

impl GossipMetrics {
    /// Register the metrics under `gossipsub_` in `registry`.
    pub fn new(registry: &mut Registry) -> Self {
        let inner = Inner {
            mesh_peers: Family::default(),
            topic_peers: Family::default(),
            messages: Family::default(),
            idontwant: Family::default(),
            control: Family::default(),
            queue_drops: Family::default(),
            queue_bytes: Family::default(),
            scores: Histogram::new([
                -10000.0, -1000.0, -100.0, -10.0, -1.0, 0.0, 1.0, 10.0, 100.0, 1000.0,
            ]),
            last: Mutex::new(Last::default()),
        };
        let r = registry.sub_registry_with_prefix("gossipsub");
        r.register(
            "mesh_peers",
            "Peers in our mesh of a topic",
            inner.mesh_peers.clone(),
        );
        r.register(
            "topic_peers",
            "Peers subscribed to a topic",
            inner.topic_peers.clone(),
        );
        r.register(
            "messages",
            "Messages by topic and outcome (received, delivered, duplicate, rejected, ignored, published)",
            inner.messages.clone(),
        );
        r.register(
            "idontwant",
            "IDONTWANT ids sent, received, copies cancelled in the queue, forwards skipped",
            inner.idontwant.clone(),
        );
        r.register(
            "control",
            "Control activity (ihave_sent, lazy_push_announced, iwant_sent, iwant_served, broken_promises, graft_in_backoff, graft_not_accepted, graylisted_rpcs, preamble_sent, preamble_received, preamble_expired, imreceiving_sent, imreceiving_received)",
            inner.control.clone(),
        );
        r.register(
            "queue_drops",
            "Frames dropped per send-queue class",
            inner.queue_drops.clone(),
        );
        r.register(
            "queue_bytes",
            "Bytes queued to all peers per class",
            inner.queue_bytes.clone(),
        );
        r.register(
            "peer_scores",
            "Scores of connected peers, sampled each heartbeat",
            inner.scores.clone(),
        );
        GossipMetrics(Arc::new(inner))
    }

    /// Refresh from the router's counters and state.
    pub fn update(&self, router: &Router, now: Instant) {
        let m = &self.0;
        let mut last = m.last.lock().unwrap_or_else(|e| e.into_inner());
        for topic in router.topics() {
            let l = TopicLabel {
                topic: topic.to_string(),
            };
            m.mesh_peers
                .get_or_create(&l)
                .set(router.mesh_peers(&topic).len() as i64);
            m.topic_peers
                .get_or_create(&l)
                .set(router.topic_peers(&topic).len() as i64);
        }
        for (topic, s) in router.topic_stats() {
            let prev = last.topics.get(topic).cloned().unwrap_or_default();
            for (outcome, now_v, prev_v) in [
                ("received", s.received, prev.received),
                ("delivered", s.delivered, prev.delivered),
                ("duplicate", s.duplicates, prev.duplicates),
                ("rejected", s.rejected, prev.rejected),
                ("ignored", s.ignored, prev.ignored),
                ("published", s.published, prev.published),
            ] {
                m.messages
                    .get_or_create(&TopicOutcome {
                        topic: topic.to_string(),
                        outcome,
                    })
                    .inc_by(now_v.saturating_sub(prev_v));
            }
            last.topics.insert(topic.clone(), s.clone());
        }
        let s = router.stats();
        let p = &last.stats;
        for (kind, a, b) in [
            ("sent", s.idontwant_sent, p.idontwant_sent),
            ("received", s.idontwant_received, p.idontwant_received),
            ("cancelled", s.idontwant_cancelled, p.idontwant_cancelled),
            ("skipped", s.idontwant_skipped, p.idontwant_skipped),
        ] {
            m.idontwant
                .get_or_create(&Kind { kind })
                .inc_by(a.saturating_sub(b));
        }
        for (kind, a, b) in [
            ("ihave_sent", s.ihave_sent, p.ihave_sent),
            (
                "lazy_push_announced",
                s.lazy_push_announced,
                p.lazy_push_announced,
            ),
            ("iwant_sent", s.iwant_sent, p.iwant_sent),
            ("iwant_served", s.iwant_served, p.iwant_served),
            ("broken_promises", s.broken_promises, p.broken_promises),
            ("graft_in_backoff", s.graft_in_backoff, p.graft_in_backoff),
            (
                "graft_not_accepted",
                s.graft_not_accepted,
                p.graft_not_accepted,
            ),
            ("graylisted_rpcs", s.graylisted_rpcs, p.graylisted_rpcs),
            ("preamble_sent", s.preambles_sent, p.preambles_sent),
            (
                "preamble_received",
                s.preambles_received,
                p.preambles_received,
            ),
            ("preamble_expired", s.preambles_expired, p.preambles_expired),
            ("imreceiving_sent", s.imreceiving_sent, p.imreceiving_sent),
            (
                "imreceiving_received",
                s.imreceiving_received,
                p.imreceiving_received,
            ),
        ] {
            m.control
                .get_or_create(&Kind { kind })
                .inc_by(a.saturating_sub(b));
        }
        let mut bytes = [0usize; 4];
        for peer in router.peers() {
            if let Some((_, b)) = router.queued(&peer) {
                for i in 0..4 {
                    bytes[i] += b[i];
                }
            }
            m.scores.observe(router.peer_score(&peer, now));
        }
        for class in Class::ALL {
            let i = class as usize;
            let l = ClassLabel {
                class: class.as_str(),
            };
            m.queue_drops
                .get_or_create(&l)
                .inc_by(s.queue_drops[i].saturating_sub(p.queue_drops[i]));
            m.queue_bytes.get_or_create(&l).set(bytes[i] as i64);
        }
        last.stats = s.clone();
    }
}
