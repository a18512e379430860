//! Networks of 50 routers in virtual time (seeded, no sockets, no sleeps), asserting the
//! properties of the whole protocol: mesh degrees, full delivery, duplicates with and
//! without IDONTWANT, an invalid publisher graylisted, backoff after every PRUNE, a slow
//! peer delaying no one, an unaccepted peer in no mesh.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use plexus_gossipsub::score::{PeerScoreParams, PeerScoreThresholds, TopicScoreParams};
use plexus_gossipsub::sim::{LinkShape, Network};
use plexus_gossipsub::{Acceptance, Config, RawMessage, Version};

const T: &str = "/eth2/00000000/beacon_block/ssz_snappy";
const N: usize = 50;

fn shape() -> LinkShape {
    LinkShape {
        latency: Duration::from_millis(25),
        bytes_per_sec: 50_000_000,
    }
}

fn network(seed: u64, version: Version, cfg: impl Fn(usize) -> Config) -> Network {
    network_with(seed, version, cfg, shape())
}

fn network_with(
    seed: u64,
    version: Version,
    cfg: impl Fn(usize) -> Config,
    shape: LinkShape,
) -> Network {
    let mut net = Network::new(N, seed, cfg);
    net.connect_random(10, shape, version);
    for i in 0..N {
        net.subscribe(i, T);
    }
    net.run_for(Duration::from_secs(5));
    net
}

fn base(_: usize) -> Config {
    Config::default()
}

/// A payload whose first byte names the publisher and whose rest makes it unique.
fn payload(publisher: usize, n: u32, size: usize) -> Bytes {
    let mut v = vec![0u8; size.max(8)];
    v[0] = publisher as u8;
    v[1..5].copy_from_slice(&n.to_be_bytes());
    Bytes::from(v)
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize]
}

#[test]
fn mesh_degrees_stay_in_bounds_and_every_message_reaches_every_subscriber() {
    let mut net = network(1, Version::V1_2, base);
    let mut samples = 0;
    for round in 0..40u32 {
        let publisher = (round as usize * 7) % N;
        let size = if round % 4 == 0 { 128 * 1024 } else { 200 };
        net.publish(publisher, T, payload(publisher, round, size))
            .expect("published");
        net.run_for(Duration::from_millis(350));
        for (i, node) in net.nodes.iter().enumerate() {
            let m = node.router.mesh_peers(&T.into()).len();
            assert!(
                (6..=12).contains(&m),
                "node {i}: mesh of {m} at round {round}"
            );
            samples += 1;
        }
    }
    net.run_for(Duration::from_secs(3));
    assert_eq!(samples, 40 * N);
    for (id, (origin, _)) in &net.published {
        for (i, node) in net.nodes.iter().enumerate() {
            assert!(
                node.received.contains_key(id),
                "node {i} missed {id:?} from {origin}"
            );
        }
    }
}

/// Duplicates received per node per large message.
fn duplicates_per_large_message(version: Version) -> f64 {
    duplicates_per_large_message_with(version, base, shape()).0
}

fn no_preamble(_: usize) -> Config {
    Config {
        preamble_threshold: usize::MAX,
        ..Config::default()
    }
}

fn preamble(_: usize) -> Config {
    Config {
        preamble_threshold: 16 * 1024,
        ..Config::default()
    }
}

/// Duplicates received per node per large message, and the p99 of publish-to-delivery.
fn duplicates_per_large_message_with(
    version: Version,
    cfg: fn(usize) -> Config,
    shape: LinkShape,
) -> (f64, Duration) {
    let mut net = network_with(2, version, cfg, shape);
    for i in 0..N {
        // 100 Mbit/s uplinks: a 128 KiB message takes ~10 ms per copy.
        net.set_upload(i, 12_500_000);
    }
    let before: u64 = net
        .nodes
        .iter()
        .map(|n| {
            n.router
                .topic_stats()
                .get(&T.into())
                .map_or(0, |s| s.duplicates)
        })
        .sum();
    let msgs = 10;
    for k in 0..msgs {
        let publisher = (k as usize * 11) % N;
        net.publish(publisher, T, payload(publisher, k, 128 * 1024))
            .expect("published");
        net.run_for(Duration::from_secs(1));
    }
    net.run_for(Duration::from_secs(2));
    for id in net.published.keys() {
        assert!(net.nodes.iter().all(|n| n.received.contains_key(id)));
    }
    let after: u64 = net
        .nodes
        .iter()
        .map(|n| {
            n.router
                .topic_stats()
                .get(&T.into())
                .map_or(0, |s| s.duplicates)
        })
        .sum();
    let mut lat = Vec::new();
    for (id, (_, at)) in &net.published {
        for n in &net.nodes {
            if let Some(t) = n.received.get(id) {
                lat.push(t.saturating_duration_since(*at));
            }
        }
    }
    (
        (after - before) as f64 / (msgs as f64 * N as f64),
        percentile(lat, 0.99),
    )
}

/// PREAMBLE / IMRECEIVING (v1.3, plexus's experimental extension) where sending a copy takes
/// longer than the link's latency: 100 Mbit/s uplinks (about 10 ms per 128 KiB copy) and 1 ms
/// links. There a node tells its mesh IMRECEIVING as a copy starts, long before the copy ends
/// (when IDONTWANT goes), and the target of at most one duplicate is met. Where the
/// latency exceeds the copy time (25 ms links, the shape of the other tests) the lead is too
/// short to matter: measured 3.30 against 3.94 (docs/gossipsub.md).
#[test]
fn preambles_cut_duplicates_below_one_when_copies_outlast_the_latency() {
    let fast = LinkShape {
        latency: Duration::from_millis(1),
        bytes_per_sec: 50_000_000,
    };
    let (with, p99_with) = duplicates_per_large_message_with(Version::V1_3, preamble, fast);
    let (without, p99_without) =
        duplicates_per_large_message_with(Version::V1_3, no_preamble, fast);
    eprintln!(
        "duplicates per node per 128 KiB message, v1.3, 1 ms links: {with:.2} with \
         PREAMBLE/IMRECEIVING (p99 {p99_with:?}), {without:.2} with IDONTWANT only (p99 \
         {p99_without:?})"
    );
    assert!(with <= 1.0, "with PREAMBLE: {with:.2}");
    assert!(with < without * 0.6, "{with:.2} against {without:.2}");
    // Copies that are not sent leave the uplinks free sooner: no slower for it.
    assert!(
        p99_with <= p99_without,
        "{p99_with:?} against {p99_without:?}"
    );
}

#[test]
fn idontwant_removes_over_40_percent_of_duplicates_of_large_messages() {
    let with = duplicates_per_large_message(Version::V1_2);
    let without = duplicates_per_large_message(Version::V1_1);
    eprintln!(
        "duplicates per node per 128 KiB message: {with:.2} with IDONTWANT, {without:.2} without"
    );
    // Without IDONTWANT every mesh peer but the first sender delivers a copy (about D-1).
    assert!(without > 6.0, "without IDONTWANT: {without:.2}");
    // With it, copies still queued when the IDONTWANT arrives are cancelled and later ones
    // never queued; copies already on the wire cannot be recalled (docs/gossipsub.md,
    // "Duplicates"). At 25 ms latency that leaves about 4: lazy push (below) takes it under 1.
    assert!(
        with < without * 0.6,
        "IDONTWANT removes over 40% of duplicates ({with:.2} vs {without:.2})"
    );
}

fn lazy_push(_: usize) -> Config {
    Config {
        lazy_push_threshold: 16 * 1024,
        lazy_push_eager: 2,
        ..Config::default()
    }
}

/// Lazy push with IDONTWANT, on the shape of the other tests (25 ms links, 100 Mbit/s
/// uplinks): large forwards go whole to two mesh peers (fewer when others have it already)
/// and as an IHAVE to the rest. Every message still reaches every node (asserted in the
/// helper), with under one duplicate per node per message, for a longer tail: the nodes that
/// pull pay a round trip (measured 0.67 duplicates, p99 205 against 180 ms; docs/gossipsub.md,
/// "Lazy push").
#[test]
fn lazy_push_with_idontwant_cuts_duplicates_below_one() {
    let (lazy, p99_lazy) = duplicates_per_large_message_with(Version::V1_2, lazy_push, shape());
    let (eager, p99_eager) = duplicates_per_large_message_with(Version::V1_2, base, shape());
    eprintln!(
        "duplicates per node per 128 KiB message, 25 ms links: {lazy:.2} with lazy push (p99 \
         {p99_lazy:?}), {eager:.2} without (p99 {p99_eager:?})"
    );
    assert!(lazy <= 1.0, "with lazy push: {lazy:.2}");
    assert!(eager > 2.0 * lazy, "{lazy:.2} against {eager:.2}");
    assert!(
        p99_lazy.as_secs_f64() <= 1.25 * p99_eager.as_secs_f64(),
        "{p99_lazy:?} against {p99_eager:?}"
    );
}

fn invalid(m: &RawMessage) -> Acceptance {
    if m.data.first() == Some(&0xFF) {
        Acceptance::Reject
    } else {
        Acceptance::Accept
    }
}

fn scored(_: usize) -> Config {
    let mut topics = HashMap::new();
    topics.insert(
        T.into(),
        TopicScoreParams {
            topic_weight: 1.0,
            invalid_message_deliveries_weight: -50.0,
            invalid_message_deliveries_decay: 0.99,
            ..TopicScoreParams::default()
        },
    );
    Config {
        score: Some((
            PeerScoreParams {
                topics,
                ..PeerScoreParams::default()
            },
            PeerScoreThresholds {
                gossip_threshold: -100.0,
                publish_threshold: -200.0,
                graylist_threshold: -400.0,
                accept_px_threshold: 100.0,
                opportunistic_graft_threshold: 1.0,
            },
        )),
        ..Config::default()
    }
}

#[test]
fn an_invalid_publisher_falls_below_graylist_and_is_pruned_everywhere() {
    let mut net = Network::new(N, 3, scored);
    for i in 0..N {
        net.nodes[i].verdict = invalid;
    }
    net.connect_random(10, shape(), Version::V1_2);
    for i in 0..N {
        net.subscribe(i, T);
    }
    net.run_for(Duration::from_secs(5));
    let bad = 0;
    let bad_id = net.nodes[bad].id;
    for k in 0..20u32 {
        let mut p = payload(bad, k, 300).to_vec();
        p[0] = 0xFF;
        net.publish(bad, T, Bytes::from(p));
        net.publish(
            1 + (k as usize % 10),
            T,
            payload(1 + (k as usize % 10), k, 300),
        );
        net.run_for(Duration::from_millis(700));
    }
    net.run_for(Duration::from_secs(2));
    let now = net.now();
    let mut neighbours = 0;
    for (i, node) in net.nodes.iter().enumerate().skip(1) {
        if !net.connected(i, bad) {
            continue;
        }
        neighbours += 1;
        let s = node.router.peer_score(&bad_id, now);
        assert!(s < -400.0, "node {i} scores the invalid publisher {s}");
        assert!(
            !node.router.mesh_peers(&T.into()).contains(&bad_id),
            "node {i} still meshes it"
        );
    }
    assert!(neighbours >= 10);
    // Honest messages still reached everyone; invalid ones reached no application.
    for (id, (origin, _)) in &net.published {
        let reached = net
            .nodes
            .iter()
            .filter(|n| n.received.contains_key(id))
            .count();
        if *origin == bad {
            assert_eq!(reached, 1, "only the author has an invalid message");
        } else {
            let honest = net
                .nodes
                .iter()
                .skip(1)
                .filter(|n| n.received.contains_key(id))
                .count();
            assert_eq!(
                honest,
                N - 1,
                "honest message {id:?} reached {honest} honest nodes"
            );
        }
    }
}

#[test]
fn backoff_is_honoured_after_every_prune() {
    let mut net = network(4, Version::V1_2, base);
    // Churn: nodes leave and rejoin the topic; meshes overflow and shrink.
    for round in 0..30u32 {
        let i = (round as usize * 13) % N;
        let now = net.now();
        net.nodes[i].router.unsubscribe(&T.into(), now);
        net.run_for(Duration::from_millis(300));
        net.subscribe(i, T);
        net.run_for(Duration::from_millis(400));
    }
    net.run_for(Duration::from_secs(70));
    let mut prunes = 0;
    for node in &net.nodes {
        for (from, topic, at, backoff) in &node.prune_backoffs {
            prunes += 1;
            let until = *at + Duration::from_secs(backoff.unwrap_or(60));
            for (to, t, graft_at) in &node.grafts_sent {
                assert!(
                    !(to == from && t == topic && graft_at >= at && *graft_at < until),
                    "GRAFT {:?} after PRUNE at {:?} with backoff {backoff:?}",
                    *graft_at - *at,
                    at
                );
            }
        }
    }
    assert!(prunes > 50, "the churn produced PRUNEs ({prunes})");
    let grafts: usize = net.nodes.iter().map(|n| n.grafts_sent.len()).sum();
    assert!(grafts > prunes / 2, "and re-grafts ({grafts})");
}

/// p99 of publish-to-delivery latency over every node except `skip`.
fn latency_p99(net: &Network, skip: Option<usize>) -> Duration {
    let mut lat = Vec::new();
    for (id, (_, at)) in &net.published {
        for (i, node) in net.nodes.iter().enumerate() {
            if Some(i) == skip {
                continue;
            }
            let got = node.received.get(id).expect("delivered");
            lat.push(*got - *at);
        }
    }
    percentile(lat, 0.99)
}

fn run_with_slow_peer(slow: Option<usize>) -> (Network, Duration) {
    let mut net = Network::new(N, 5, base);
    net.connect_random(10, shape(), Version::V1_2);
    if let Some(s) = slow {
        // Everything sent to `s` crawls at 2 KB/s.
        for i in 0..N {
            if net.connected(i, s) {
                net.set_link(
                    i,
                    s,
                    LinkShape {
                        latency: Duration::from_millis(25),
                        bytes_per_sec: 2_000,
                    },
                );
            }
        }
    }
    for i in 0..N {
        net.subscribe(i, T);
    }
    net.run_for(Duration::from_secs(5));
    for k in 0..30u32 {
        let publisher = 1 + (k as usize * 3) % (N - 1);
        net.publish(publisher, T, payload(publisher, k, 4096));
        net.run_for(Duration::from_millis(300));
    }
    net.run_for(Duration::from_secs(3));
    let p99 = latency_p99(&net, slow);
    (net, p99)
}

#[test]
fn a_slow_peer_delays_no_one_else() {
    let (_, baseline) = run_with_slow_peer(None);
    let (net, with_slow) = run_with_slow_peer(Some(0));
    eprintln!("p99 delivery: {baseline:?} without, {with_slow:?} with a slow peer");
    assert!(
        with_slow <= baseline + baseline / 4 + Duration::from_millis(10),
        "p99 {with_slow:?} with a slow peer vs {baseline:?}"
    );
    let drops: u64 = net
        .nodes
        .iter()
        .map(|n| n.router.stats().queue_drops[2])
        .sum();
    assert!(drops > 0, "stale forwards to the slow peer were dropped");
}

#[test]
fn a_peer_never_accepted_is_never_in_any_mesh() {
    let outcast = 7;
    let mut net = Network::new(N, 6, base);
    let outcast_id = net.nodes[outcast].id;
    for i in 0..N {
        if i != outcast {
            net.nodes[i].refuse.insert(outcast_id);
        }
    }
    net.connect_random(10, shape(), Version::V1_2);
    for i in 0..N {
        net.subscribe(i, T);
    }
    net.run_for(Duration::from_secs(5));
    for k in 0..10u32 {
        let p = 10 + k as usize;
        net.publish(p, T, payload(p, k, 500));
        net.run_for(Duration::from_millis(700));
    }
    net.run_for(Duration::from_secs(2));
    for (i, node) in net.nodes.iter().enumerate() {
        assert!(
            !node.ever_meshed.contains(&outcast_id),
            "node {i} meshed the outcast"
        );
    }
    assert!(net.nodes[outcast].router.mesh_peers(&T.into()).is_empty());
    assert!(
        net.nodes[outcast].received.is_empty(),
        "nobody sends it messages"
    );
    // Everyone else got everything.
    for id in net.published.keys() {
        let reached = net
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i != outcast && n.received.contains_key(id))
            .count();
        assert_eq!(reached, N - 1);
    }
}
