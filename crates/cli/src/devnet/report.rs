//! The devnet's final report: figures per topic, per slot, per node, Req/Resp, the peer
//! manager, and the outcome of each scripted event. Printed as text, written as JSON and
//! (by `html.rs`) as a self-contained HTML page.

use serde_json::{Value, json};

/// Latency and reach of one gossip topic kind.
#[derive(Debug, Clone, Default)]
pub(crate) struct TopicReport {
    /// The kind's name (`beacon_block`, `beacon_attestation`, …).
    pub name: String,
    /// Messages published (valid ones, by honest nodes).
    pub published: u64,
    /// Deliveries expected: for each message, every honest node subscribed to its topic
    /// other than the publisher.
    pub expected: u64,
    /// Deliveries seen (first receipt at a node).
    pub delivered: u64,
    /// Publish-to-delivery latency percentiles, milliseconds.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Duplicate receipts per delivered message (gossipsub's duplicate counter over this
    /// topic's deliveries).
    pub duplicates_per_message: f64,
    /// The latency distribution: `(upper bound ms, deliveries at or below it)`, cumulative,
    /// for a CDF plot.
    pub cdf: Vec<(f64, u64)>,
}

/// One slot.
#[derive(Debug, Clone, Default)]
pub(crate) struct SlotReport {
    /// The slot.
    pub slot: u64,
    /// Share of expected deliveries of this slot's messages that arrived (0..=1).
    pub delivered_share: f64,
    /// p99 latency of this slot's deliveries, ms.
    pub p99_ms: f64,
    /// Messages delivered per second during the slot (all nodes).
    pub messages_per_s: f64,
    /// Mean connected peers per honest node at the end of the slot.
    pub mean_peers: f64,
    /// Mean mesh size (block topic) per honest node at the end of the slot.
    pub mean_mesh: f64,
}

/// One node.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeReport {
    /// `node-3`.
    pub name: String,
    /// `honest`, `late_joiner`, `misbehaving`, `wrong_fork`, `rejoiner`.
    pub role: String,
    /// Stream bytes written.
    pub bytes_sent: u64,
    /// Stream bytes read.
    pub bytes_received: u64,
    /// Connected peers at the end.
    pub peers: usize,
}

/// Req/Resp served during the run (the late joiner's sync and the rejoiner's).
#[derive(Debug, Clone, Default)]
pub(crate) struct ReqRespReport {
    /// Requests made.
    pub requests: u64,
    /// Requests answered in full.
    pub served: u64,
    /// Blocks received.
    pub blocks: u64,
    /// Request latency percentiles, ms.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
}

/// What the peer managers did, summed over the honest nodes.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeerManagerReport {
    /// Goodbyes sent, by reason label.
    pub goodbyes_sent: Vec<(String, u64)>,
    /// Goodbyes received, by reason label.
    pub goodbyes_received: Vec<(String, u64)>,
    /// Peers banned.
    pub bans: u64,
    /// Refusals by the peer manager's gate: `(reason, checkpoint, count)`.
    pub refusals: Vec<(String, String, u64)>,
    /// Attempts by or to a peer in backoff or banned, refused.
    pub reconnects_refused: u64,
    /// Noise/TLS handshakes the honest nodes started for the misbehaving node's connections
    /// after it was banned (should be 0).
    pub handshakes_after_ban: u64,
}

/// A scripted event and what became of it.
#[derive(Debug, Clone, Default)]
pub(crate) struct EventReport {
    /// `late_joiner`, `misbehaving`, `wrong_fork`, `leave_and_rejoin`.
    pub name: String,
    /// One line on what happened.
    pub outcome: String,
    /// Whether it went as it should.
    pub ok: bool,
}

/// Other devnet processes joined with `--bootstrap`: what this one saw of them.
#[derive(Debug, Clone, Default)]
pub(crate) struct CrossProcess {
    /// Bootstrap addresses given.
    pub bootstrap: usize,
    /// Connections from this process's nodes to nodes of other processes, at the end.
    pub peers: u64,
    /// Valid messages published by other processes, received here (first receipts).
    pub messages: u64,
}

/// The whole report.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    /// Nodes in the run (all roles).
    pub nodes: usize,
    /// Slots simulated.
    pub slots: u64,
    /// Milliseconds per slot.
    pub slot_ms: u64,
    /// The RNG seed.
    pub seed: u64,
    /// Wall-clock seconds of the run.
    pub duration_s: f64,
    /// Per topic kind.
    pub topics: Vec<TopicReport>,
    /// Per slot.
    pub per_slot: Vec<SlotReport>,
    /// Per node.
    pub per_node: Vec<NodeReport>,
    /// Process CPU seconds divided by the node count.
    pub cpu_seconds_per_node: f64,
    /// Process peak RSS divided by the node count, MiB.
    pub rss_mib_per_node: f64,
    /// Req/Resp.
    pub reqresp: ReqRespReport,
    /// Peer managers.
    pub peer_manager: PeerManagerReport,
    /// Scripted events.
    pub events: Vec<EventReport>,
    /// Other processes (`--bootstrap`).
    pub outside: CrossProcess,
    /// Every honest node received every message, the late joiner synced, and every event
    /// went as it should.
    pub ok: bool,
}

impl Report {
    /// The report as JSON.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "nodes": self.nodes,
            "slots": self.slots,
            "slot_ms": self.slot_ms,
            "seed": self.seed,
            "duration_s": self.duration_s,
            "ok": self.ok,
            "topics": self.topics.iter().map(|t| json!({
                "name": t.name,
                "published": t.published,
                "expected": t.expected,
                "delivered": t.delivered,
                "reach": share(t.delivered, t.expected),
                "latency_ms": {"p50": t.p50_ms, "p95": t.p95_ms, "p99": t.p99_ms},
                "duplicates_per_message": t.duplicates_per_message,
                "cdf": t.cdf.iter().map(|(ms, n)| json!([ms, n])).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "per_slot": self.per_slot.iter().map(|s| json!({
                "slot": s.slot,
                "delivered_share": s.delivered_share,
                "p99_ms": s.p99_ms,
                "messages_per_s": s.messages_per_s,
                "mean_peers": s.mean_peers,
                "mean_mesh": s.mean_mesh,
            })).collect::<Vec<_>>(),
            "per_node": self.per_node.iter().map(|n| json!({
                "name": n.name,
                "role": n.role,
                "bytes_sent": n.bytes_sent,
                "bytes_received": n.bytes_received,
                "peers": n.peers,
            })).collect::<Vec<_>>(),
            "cpu_seconds_per_node": self.cpu_seconds_per_node,
            "rss_mib_per_node": self.rss_mib_per_node,
            "reqresp": {
                "requests": self.reqresp.requests,
                "served": self.reqresp.served,
                "blocks": self.reqresp.blocks,
                "latency_ms": {"p50": self.reqresp.p50_ms, "p99": self.reqresp.p99_ms},
            },
            "peer_manager": {
                "goodbyes_sent": pairs(&self.peer_manager.goodbyes_sent),
                "goodbyes_received": pairs(&self.peer_manager.goodbyes_received),
                "bans": self.peer_manager.bans,
                "refusals": self.peer_manager.refusals.iter()
                    .map(|(r, c, n)| json!({"reason": r, "checkpoint": c, "count": n}))
                    .collect::<Vec<_>>(),
                "reconnects_refused": self.peer_manager.reconnects_refused,
                "handshakes_after_ban": self.peer_manager.handshakes_after_ban,
            },
            "cross_process": {
                "bootstrap_addrs": self.outside.bootstrap,
                "peers": self.outside.peers,
                "messages_received": self.outside.messages,
            },
            "events": self.events.iter()
                .map(|e| json!({"name": e.name, "outcome": e.outcome, "ok": e.ok}))
                .collect::<Vec<_>>(),
        })
    }

    /// The report as text for a terminal.
    pub(crate) fn to_text(&self) -> String {
        let mut s = String::new();
        let w = |s: &mut String, l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        w(
            &mut s,
            format!(
                "devnet: {} nodes, {} slots of {} ms, seed {}, {:.1} s: {}",
                self.nodes,
                self.slots,
                self.slot_ms,
                self.seed,
                self.duration_s,
                if self.ok { "OK" } else { "FAILED" }
            ),
        );
        w(&mut s, String::new());
        w(
            &mut s,
            format!(
                "{:<28} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6}",
                "topic", "published", "reach", "p50 ms", "p95 ms", "p99 ms", "dups"
            ),
        );
        for t in &self.topics {
            w(
                &mut s,
                format!(
                    "{:<28} {:>9} {:>7.1}% {:>8.1} {:>8.1} {:>8.1} {:>6.2}",
                    t.name,
                    t.published,
                    100.0 * share(t.delivered, t.expected),
                    t.p50_ms,
                    t.p95_ms,
                    t.p99_ms,
                    t.duplicates_per_message
                ),
            );
        }
        w(&mut s, String::new());
        let (sent, recv): (u64, u64) = self
            .per_node
            .iter()
            .fold((0, 0), |(a, b), n| (a + n.bytes_sent, b + n.bytes_received));
        let n = self.per_node.len().max(1) as f64;
        w(
            &mut s,
            format!(
                "per node: {:.1} MiB sent, {:.1} MiB received, {:.2} CPU s, {:.1} MiB RSS",
                sent as f64 / n / 1048576.0,
                recv as f64 / n / 1048576.0,
                self.cpu_seconds_per_node,
                self.rss_mib_per_node
            ),
        );
        w(
            &mut s,
            format!(
                "req/resp: {} requests, {} served, {} blocks, p50 {:.1} ms, p99 {:.1} ms",
                self.reqresp.requests,
                self.reqresp.served,
                self.reqresp.blocks,
                self.reqresp.p50_ms,
                self.reqresp.p99_ms
            ),
        );
        let pm = &self.peer_manager;
        let list = |v: &[(String, u64)]| {
            v.iter()
                .map(|(r, n)| format!("{r} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        w(
            &mut s,
            format!(
                "peer managers: goodbyes sent [{}], received [{}], {} bans, {} reconnects refused, {} handshakes after a ban",
                list(&pm.goodbyes_sent),
                list(&pm.goodbyes_received),
                pm.bans,
                pm.reconnects_refused,
                pm.handshakes_after_ban
            ),
        );
        for (r, c, n) in &pm.refusals {
            w(&mut s, format!("  refused {n} at {c} ({r})"));
        }
        let o = &self.outside;
        if o.bootstrap > 0 || o.peers > 0 || o.messages > 0 {
            w(
                &mut s,
                format!(
                    "other processes: {} bootstrap addresses, {} connections to their nodes at the end, {} of their messages received",
                    o.bootstrap, o.peers, o.messages
                ),
            );
        }
        w(&mut s, String::new());
        for e in &self.events {
            w(
                &mut s,
                format!(
                    "{} {}: {}",
                    if e.ok { "ok  " } else { "FAIL" },
                    e.name,
                    e.outcome
                ),
            );
        }
        s
    }
}

/// `a / b`, 0 when `b` is 0.
pub(crate) fn share(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn pairs(v: &[(String, u64)]) -> Value {
    Value::Object(v.iter().map(|(k, n)| (k.clone(), json!(n))).collect())
}

/// Percentile `q` (0..=1) of sorted samples (nearest rank); 0 when empty.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&v, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
        assert_eq!(share(1, 0), 0.0);
    }
}
