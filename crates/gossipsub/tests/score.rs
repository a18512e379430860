//! Peer scoring (P₁–P₇): each term against hand-computed values, decay, caps, retention,
//! bounds and parameter validation.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use plexus_core::PeerId;
use plexus_gossipsub::score::{
    PeerScore, PeerScoreParams, PeerScoreThresholds, RejectReason, ScoreParamsError,
    TopicScoreParams,
};
use plexus_gossipsub::{MessageId, TopicHash};
use proptest::prelude::*;

fn peer(n: u8) -> PeerId {
    PeerId::from_bytes(&[0, 2, 0xab, n]).expect("identity multihash")
}

fn msg(n: u32) -> MessageId {
    MessageId::new(n.to_be_bytes().to_vec())
}

fn topic(name: &str) -> TopicHash {
    TopicHash::from(name)
}

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().expect("ip"))
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[track_caller]
fn assert_close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-9,
        "expected {expected}, got {actual}"
    );
}

/// Everything off: each test turns on what it checks.
fn quiet_params() -> PeerScoreParams {
    PeerScoreParams {
        topics: Default::default(),
        topic_score_cap: 0.0,
        app_specific_weight: 0.0,
        ip_colocation_factor_weight: 0.0,
        ip_colocation_factor_threshold: 1.0,
        ip_colocation_factor_whitelist: Vec::new(),
        behaviour_penalty_weight: 0.0,
        behaviour_penalty_threshold: 0.0,
        behaviour_penalty_decay: 0.5,
        decay_interval: Duration::from_secs(1),
        decay_to_zero: 0.01,
        retain_score: Duration::from_secs(10),
        max_retained_peers: 16,
        max_delivery_records: 100,
        delivery_record_ttl: Duration::from_secs(60),
    }
}

fn quiet_topic() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.0,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        first_message_deliveries_weight: 0.0,
        first_message_deliveries_decay: 0.5,
        first_message_deliveries_cap: 100.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_message_deliveries_decay: 0.5,
        mesh_message_deliveries_cap: 100.0,
        mesh_message_deliveries_threshold: 0.0,
        mesh_message_deliveries_window: ms(10),
        mesh_message_deliveries_activation: Duration::from_secs(1),
        mesh_failure_penalty_weight: 0.0,
        mesh_failure_penalty_decay: 0.5,
        invalid_message_deliveries_weight: 0.0,
        invalid_message_deliveries_decay: 0.5,
    }
}

/// A scorer with one topic "t" and `peers` connected at `t0` with no address.
fn scorer(
    params: PeerScoreParams,
    tp: TopicScoreParams,
    peers: &[PeerId],
    t0: Instant,
) -> PeerScore {
    params.validate().expect("test params valid");
    tp.validate().expect("test topic params valid");
    let mut s = PeerScore::new(params);
    s.set_topic_params(topic("t"), tp);
    for p in peers {
        s.add_peer(*p, None, t0);
    }
    s
}

/// `from` delivers message `n` first and it is accepted at once.
fn accept(s: &mut PeerScore, from: &PeerId, n: u32, now: Instant) {
    s.validate_message(from, &msg(n), &topic("t"), now);
    s.deliver_message(from, &msg(n), &topic("t"), now);
}

#[test]
fn p1_time_in_mesh_counts_whole_quanta_capped_and_only_in_mesh() {
    let t0 = Instant::now();
    let (a, b) = (peer(1), peer(2));
    let tp = TopicScoreParams {
        topic_weight: 0.5,
        time_in_mesh_weight: 2.0,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 10.0,
        ..quiet_topic()
    };
    let mut s = scorer(quiet_params(), tp, &[a, b], t0);
    s.graft(&a, &topic("t"), t0);
    assert_close(s.score(&a, t0), 0.0);
    // 3.7 s = 3 whole quanta: 0.5 · 2 · 3.
    assert_close(s.score(&a, t0 + secs(3.7)), 3.0);
    // Capped at 10 quanta: 0.5 · 2 · 10.
    assert_close(s.score(&a, t0 + secs(100.0)), 10.0);
    // A second GRAFT does not restart the clock.
    s.graft(&a, &topic("t"), t0 + secs(50.0));
    assert_close(s.score(&a, t0 + secs(53.0)), 10.0);
    // Never grafted: nothing.
    assert_close(s.score(&b, t0 + secs(100.0)), 0.0);
    // Out of the mesh: nothing.
    s.prune(&a, &topic("t"), t0 + secs(101.0));
    assert_close(s.score(&a, t0 + secs(102.0)), 0.0);
    // Grafted again: counts from the new graft.
    s.graft(&a, &topic("t"), t0 + secs(110.0));
    assert_close(s.score(&a, t0 + secs(112.5)), 2.0);
}

#[test]
fn p2_first_deliveries_capped_at_increment_and_counted_once_per_message() {
    let t0 = Instant::now();
    let (a, b) = (peer(1), peer(2));
    let tp = TopicScoreParams {
        first_message_deliveries_weight: 1.5,
        first_message_deliveries_cap: 3.0,
        ..quiet_topic()
    };
    let mut s = scorer(quiet_params(), tp, &[a, b], t0);
    accept(&mut s, &a, 1, t0);
    assert_close(s.score(&a, t0), 1.5);
    accept(&mut s, &a, 2, t0);
    // Accepting the same message again is not another first delivery.
    s.deliver_message(&a, &msg(2), &topic("t"), t0);
    assert_close(s.score(&a, t0), 3.0);
    for n in 3..8 {
        accept(&mut s, &a, n, t0);
    }
    // Capped at 3: 1.5 · 3.
    assert_close(s.score(&a, t0), 4.5);
    // A duplicate deliverer earns no P₂.
    s.duplicated_message(&b, &msg(7), &topic("t"), t0);
    assert_close(s.score(&b, t0), 0.0);
}

fn p3_topic() -> TopicScoreParams {
    TopicScoreParams {
        mesh_message_deliveries_weight: -1.0,
        mesh_message_deliveries_threshold: 4.0,
        mesh_message_deliveries_cap: 10.0,
        mesh_message_deliveries_activation: Duration::from_secs(5),
        mesh_message_deliveries_window: ms(10),
        mesh_message_deliveries_decay: 0.5,
        ..quiet_topic()
    }
}

#[test]
fn p3_deficit_applies_only_after_activation_and_below_threshold() {
    let t0 = Instant::now();
    let (a, b) = (peer(1), peer(2));
    let mut s = scorer(quiet_params(), p3_topic(), &[a, b], t0);
    s.graft(&a, &topic("t"), t0);
    s.graft(&b, &topic("t"), t0);
    accept(&mut s, &a, 1, t0 + secs(1.0));
    // Not active until the peer has been in the mesh *longer* than 5 s.
    assert_close(s.score(&a, t0 + secs(4.0)), 0.0);
    assert_close(s.score(&a, t0 + secs(5.0)), 0.0);
    // Active: deficit 4 − 1 = 3, −1 · 3².
    assert_close(s.score(&a, t0 + secs(6.0)), -9.0);
    // b delivered nothing: −4².
    assert_close(s.score(&b, t0 + secs(6.0)), -16.0);
    // Reaching the threshold clears the deficit.
    for n in 2..=4 {
        accept(&mut s, &a, n, t0 + secs(6.0));
    }
    assert_close(s.score(&a, t0 + secs(6.0)), 0.0);
}

#[test]
fn p3_counter_is_capped_at_increment() {
    let t0 = Instant::now();
    let a = peer(1);
    let mut s = scorer(quiet_params(), p3_topic(), &[a], t0);
    s.graft(&a, &topic("t"), t0);
    for n in 0..20 {
        accept(&mut s, &a, n, t0);
    }
    // Counter capped at 10; two decays by 0.5 leave 2.5: deficit 1.5, −1 · 1.5².
    // (Uncapped, 20 → 5 would still be above the threshold.)
    s.refresh(t0 + secs(2.0));
    assert_close(s.score(&a, t0 + secs(6.0)), -2.25);
}

#[test]
fn p3_near_first_deliveries_credited_within_window_late_ones_not() {
    let t0 = Instant::now();
    let (a, b, c, d, e) = (peer(1), peer(2), peer(3), peer(4), peer(5));
    let mut s = scorer(quiet_params(), p3_topic(), &[a, b, c, d, e], t0);
    for p in [a, b, c, d] {
        s.graft(&p, &topic("t"), t0);
    }
    let t = topic("t");
    let start = t0 + secs(10.0);
    s.validate_message(&a, &msg(1), &t, start);
    // While validation is pending: near-first, credited once accepted.
    s.duplicated_message(&b, &msg(1), &t, start + ms(1));
    // e is not in the mesh at the time of acceptance: no credit.
    s.duplicated_message(&e, &msg(1), &t, start + ms(1));
    let validated = start + ms(2);
    s.deliver_message(&a, &msg(1), &t, validated);
    // Within the 10 ms window after validation: credited.
    s.duplicated_message(&c, &msg(1), &t, validated + ms(5));
    // The same peer again: counted once.
    s.duplicated_message(&b, &msg(1), &t, validated + ms(6));
    s.duplicated_message(&c, &msg(1), &t, validated + ms(7));
    // Past the window: not credited.
    s.duplicated_message(&d, &msg(1), &t, validated + ms(50));
    s.graft(&e, &topic("t"), t0);

    let at = t0 + secs(11.0);
    assert_close(s.score(&a, at), -9.0); // first delivery: counter 1
    assert_close(s.score(&b, at), -9.0); // pending duplicate: counter 1
    assert_close(s.score(&c, at), -9.0); // in window: counter 1
    assert_close(s.score(&d, at), -16.0); // late: counter 0
    // e: grafted at t0 (activation passed) but its copy came while it was not in the mesh.
    assert_close(s.score(&e, at), -16.0);
}

#[test]
fn p3b_added_at_prune_only_when_deficit_active_and_sticky() {
    let t0 = Instant::now();
    let (a, b, c, d) = (peer(1), peer(2), peer(3), peer(4));
    let tp = TopicScoreParams {
        mesh_failure_penalty_weight: -2.0,
        mesh_failure_penalty_decay: 0.5,
        ..p3_topic()
    };
    let mut s = scorer(quiet_params(), tp, &[a, b, c, d], t0);
    for p in [a, b, c, d] {
        s.graft(&p, &topic("t"), t0);
    }
    accept(&mut s, &b, 1, t0 + secs(1.0));
    for n in 2..=6 {
        accept(&mut s, &c, n, t0 + secs(1.0));
    }
    // a: pruned before activation: no P₃b.
    s.prune(&a, &topic("t"), t0 + secs(3.0));
    assert_close(s.score(&a, t0 + secs(20.0)), 0.0);
    // b: pruned with an active deficit of 3: P₃b = 9, −2 · 9.
    s.prune(&b, &topic("t"), t0 + secs(6.0));
    assert_close(s.score(&b, t0 + secs(6.0)), -18.0);
    // Sticky: grafted again, before activation, it is still there.
    s.graft(&b, &topic("t"), t0 + secs(6.0));
    assert_close(s.score(&b, t0 + secs(8.0)), -18.0);
    // c: 5 deliveries ≥ threshold 4: no deficit, no P₃b.
    s.prune(&c, &topic("t"), t0 + secs(6.0));
    assert_close(s.score(&c, t0 + secs(6.0)), 0.0);
    // d: disconnected with an active deficit of 4, as for a prune: −2 · 16, retained.
    s.remove_peer(&d, t0 + secs(6.0));
    assert!(s.is_retained(&d));
    assert_close(s.score(&d, t0 + secs(6.0)), -32.0);
    // Decays like the other counters: 7 intervals since t0, 9 · 0.5⁷ = 0.0703125.
    s.refresh(t0 + secs(7.0));
    assert_close(s.score(&b, t0 + secs(8.0)), -2.0 * 0.0703125);
}

fn p4_topic() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 2.0,
        invalid_message_deliveries_weight: -3.0,
        ..quiet_topic()
    }
}

#[test]
fn p4_invalid_penalises_sender_pending_and_later_duplicate_deliverers() {
    let t0 = Instant::now();
    let (a, b, c, d) = (peer(1), peer(2), peer(3), peer(4));
    let mut s = scorer(quiet_params(), p4_topic(), &[a, b, c, d], t0);
    let t = topic("t");
    s.validate_message(&a, &msg(1), &t, t0);
    s.duplicated_message(&b, &msg(1), &t, t0 + ms(1));
    s.reject_message(&a, &msg(1), &t, RejectReason::Invalid, t0 + ms(2));
    // Counter 1: 2 · −3 · 1².
    assert_close(s.score(&a, t0), -6.0);
    assert_close(s.score(&b, t0), -6.0);
    // A duplicate of the invalid message after the verdict: P₄ too, once per peer.
    s.duplicated_message(&c, &msg(1), &t, t0 + secs(5.0));
    s.duplicated_message(&c, &msg(1), &t, t0 + secs(6.0));
    assert_close(s.score(&c, t0), -6.0);
    // The sender's duplicate is not another penalty either.
    s.duplicated_message(&a, &msg(1), &t, t0 + secs(6.0));
    assert_close(s.score(&a, t0), -6.0);
    // A second invalid message: counter 2, squared: 2 · −3 · 4.
    s.validate_message(&a, &msg(2), &t, t0 + secs(7.0));
    s.reject_message(&a, &msg(2), &t, RejectReason::Invalid, t0 + secs(7.0));
    assert_close(s.score(&a, t0), -24.0);
    // Uninvolved peer untouched.
    assert_close(s.score(&d, t0), 0.0);
}

#[test]
fn p4_not_applied_for_ignored_queue_full_or_blacklisted() {
    let t0 = Instant::now();
    let (a, b, c) = (peer(1), peer(2), peer(3));
    let mut s = scorer(quiet_params(), p4_topic(), &[a, b, c], t0);
    let t = topic("t");
    for (n, reason) in [
        (1, RejectReason::Ignored),
        (2, RejectReason::ValidationQueueFull),
        (3, RejectReason::Blacklisted),
    ] {
        s.validate_message(&a, &msg(n), &t, t0);
        s.duplicated_message(&b, &msg(n), &t, t0);
        s.reject_message(&a, &msg(n), &t, reason, t0);
        s.duplicated_message(&c, &msg(n), &t, t0 + ms(1));
    }
    for p in [a, b, c] {
        assert_close(s.score(&p, t0), 0.0);
    }
}

#[test]
fn p4_signature_and_self_origin_penalise_sender_only_and_leave_the_record() {
    let t0 = Instant::now();
    let (a, b, c, d) = (peer(1), peer(2), peer(3), peer(4));
    let tp = TopicScoreParams {
        first_message_deliveries_weight: 1.0,
        ..p4_topic()
    };
    let mut s = scorer(quiet_params(), tp, &[a, b, c, d], t0);
    let t = topic("t");
    s.reject_message(&a, &msg(1), &t, RejectReason::InvalidSignature, t0);
    s.reject_message(&d, &msg(9), &t, RejectReason::SelfOrigin, t0);
    assert_close(s.score(&a, t0), -6.0);
    assert_close(s.score(&d, t0), -6.0);
    // A properly signed copy with the same id is still a normal message.
    accept(&mut s, &b, 1, t0 + ms(1));
    s.duplicated_message(&c, &msg(1), &t, t0 + ms(2));
    assert_close(s.score(&b, t0), 2.0); // P₂: 2 · 1 · 1
    assert_close(s.score(&c, t0), 0.0);
}

#[test]
fn p5_application_score() {
    let t0 = Instant::now();
    let a = peer(1);
    let params = PeerScoreParams {
        app_specific_weight: 2.0,
        ..quiet_params()
    };
    let mut s = scorer(params, quiet_topic(), &[a], t0);
    assert!(s.set_application_score(&a, 3.5));
    assert_close(s.score(&a, t0), 7.0);
    assert!(s.set_application_score(&a, -1.25));
    assert_close(s.score(&a, t0), -2.5);
    assert!(!s.set_application_score(&peer(9), 1.0), "unknown peer");
    assert!(!s.set_application_score(&a, f64::NAN));
    assert!(!s.set_application_score(&a, f64::INFINITY));
    assert_close(s.score(&a, t0), -2.5);
    // Not decayed.
    s.refresh(t0 + secs(10.0));
    assert_close(s.score(&a, t0 + secs(10.0)), -2.5);
}

#[test]
fn p6_ip_colocation_surplus_squared_across_peers() {
    let t0 = Instant::now();
    let params = PeerScoreParams {
        ip_colocation_factor_weight: -2.0,
        ip_colocation_factor_threshold: 2.0,
        ..quiet_params()
    };
    let mut s = PeerScore::try_new(params).expect("valid");
    let shared: Vec<PeerId> = (1..=4).map(peer).collect();
    for p in &shared {
        s.add_peer(*p, ip("1.2.3.4"), t0);
    }
    let alone = peer(5);
    s.add_peer(alone, ip("1.2.3.5"), t0);
    // 4 peers on one address, threshold 2: surplus 2, −2 · 2².
    for p in &shared {
        assert_close(s.score(p, t0), -8.0);
    }
    assert_close(s.score(&alone, t0), 0.0);
    assert_eq!(s.ip_of(&alone), ip("1.2.3.5"));
    // One leaves: surplus 1.
    s.remove_peer(&shared[3], t0);
    assert_close(s.score(&shared[0], t0), -2.0);
    // An IPv4-mapped IPv6 address is the IPv4 address: back to 4.
    let mapped = peer(6);
    s.add_peer(mapped, ip("::ffff:1.2.3.4"), t0);
    assert_close(s.score(&mapped, t0), -8.0);
    assert_close(s.score(&shared[0], t0), -8.0);
    // Re-adding a connected peer with a new address moves it.
    s.add_peer(mapped, ip("9.9.9.9"), t0);
    assert_close(s.score(&mapped, t0), 0.0);
    assert_close(s.score(&shared[0], t0), -2.0);
}

#[test]
fn p6_ipv6_grouped_by_64_prefix() {
    let t0 = Instant::now();
    let params = PeerScoreParams {
        ip_colocation_factor_weight: -1.0,
        ip_colocation_factor_threshold: 1.0,
        ..quiet_params()
    };
    let mut s = PeerScore::try_new(params).expect("valid");
    let (a, b, c) = (peer(1), peer(2), peer(3));
    s.add_peer(a, ip("2001:db8:0:7::1"), t0);
    s.add_peer(b, ip("2001:db8:0:7:ffff::2"), t0);
    s.add_peer(c, ip("2001:db8:0:8::1"), t0);
    // a and b share 2001:db8:0:7::/64: surplus 1.
    assert_close(s.score(&a, t0), -1.0);
    assert_close(s.score(&b, t0), -1.0);
    assert_close(s.score(&c, t0), 0.0);
}

#[test]
fn p6_whitelisted_networks_are_exempt() {
    let t0 = Instant::now();
    let params = PeerScoreParams {
        ip_colocation_factor_weight: -1.0,
        ip_colocation_factor_threshold: 1.0,
        ip_colocation_factor_whitelist: vec![
            ("10.0.0.0".parse().expect("ip"), 8),
            ("fd00::".parse().expect("ip"), 8),
        ],
        ..quiet_params()
    };
    let mut s = PeerScore::try_new(params).expect("valid");
    let white: Vec<PeerId> = (1..=3).map(peer).collect();
    for p in &white {
        s.add_peer(*p, ip("10.1.1.1"), t0);
    }
    let white6: Vec<PeerId> = (4..=6).map(peer).collect();
    for p in &white6 {
        s.add_peer(*p, ip("fd12::1"), t0);
    }
    let black: Vec<PeerId> = (7..=9).map(peer).collect();
    for p in &black {
        s.add_peer(*p, ip("11.1.1.1"), t0);
    }
    for p in white.iter().chain(&white6) {
        assert_close(s.score(p, t0), 0.0);
    }
    // 3 on one address, threshold 1: surplus 2, −1 · 4.
    for p in &black {
        assert_close(s.score(p, t0), -4.0);
    }
}

#[test]
fn p7_behaviour_penalty_squares_the_excess_over_threshold() {
    let t0 = Instant::now();
    let a = peer(1);
    let params = PeerScoreParams {
        behaviour_penalty_weight: -2.0,
        behaviour_penalty_threshold: 3.0,
        behaviour_penalty_decay: 0.5,
        ..quiet_params()
    };
    let mut s = scorer(params, quiet_topic(), &[a], t0);
    s.add_penalty(&a, 2);
    assert_close(s.score(&a, t0), 0.0);
    s.add_penalty(&a, 1);
    assert_close(s.score(&a, t0), 0.0); // at the threshold: no excess
    s.add_penalty(&a, 2);
    // Counter 5, excess 2: −2 · 2².
    assert_close(s.score(&a, t0), -8.0);
    // Decays: 5 → 2.5, under the threshold.
    s.refresh(t0 + secs(1.0));
    assert_close(s.score(&a, t0 + secs(1.0)), 0.0);
    // Unknown peers are ignored.
    s.add_penalty(&peer(9), 100);
    assert_close(s.score(&peer(9), t0), 0.0);
}

#[test]
fn decay_once_per_interval_and_to_zero() {
    let t0 = Instant::now();
    let a = peer(1);
    let params = PeerScoreParams {
        decay_to_zero: 0.3,
        ..quiet_params()
    };
    let tp = TopicScoreParams {
        first_message_deliveries_weight: 1.0,
        first_message_deliveries_decay: 0.5,
        ..quiet_topic()
    };
    // The decay clock starts at the first add_peer (t0).
    let mut s = scorer(params, tp, &[a], t0);
    for n in 0..8 {
        accept(&mut s, &a, n, t0);
    }
    assert_close(s.score(&a, t0), 8.0);
    s.refresh(t0 + secs(0.5)); // no whole interval yet
    assert_close(s.score(&a, t0), 8.0);
    s.refresh(t0 + secs(1.0)); // 1 interval
    assert_close(s.score(&a, t0), 4.0);
    s.refresh(t0 + secs(1.9)); // still within the second interval
    assert_close(s.score(&a, t0), 4.0);
    s.refresh(t0 + secs(3.5)); // 2 more intervals
    assert_close(s.score(&a, t0), 1.0);
    s.refresh(t0 + secs(4.0)); // the anchor was t0 + 3 s: 1 more
    assert_close(s.score(&a, t0), 0.5); // 0.5 ≥ 0.3: kept
    s.refresh(t0 + secs(5.0));
    assert_close(s.score(&a, t0), 0.0); // 0.25 < 0.3: zero
}

#[test]
fn decay_of_p4_counter_before_squaring() {
    let t0 = Instant::now();
    let a = peer(1);
    let tp = TopicScoreParams {
        invalid_message_deliveries_weight: -1.0,
        invalid_message_deliveries_decay: 0.5,
        ..quiet_topic()
    };
    let mut s = scorer(quiet_params(), tp, &[a], t0);
    for n in 0..4 {
        s.reject_message(&a, &msg(n), &topic("t"), RejectReason::Invalid, t0);
    }
    assert_close(s.score(&a, t0), -16.0);
    s.refresh(t0 + secs(1.0)); // 4 → 2
    assert_close(s.score(&a, t0), -4.0);
    s.refresh(t0 + secs(3.0)); // 2 → 0.5
    assert_close(s.score(&a, t0), -0.25);
}

#[test]
fn topic_cap_caps_only_the_positive_topic_part() {
    let t0 = Instant::now();
    let (a, b) = (peer(1), peer(2));
    let params = PeerScoreParams {
        topic_score_cap: 10.0,
        app_specific_weight: 1.0,
        ..quiet_params()
    };
    let tp = TopicScoreParams {
        first_message_deliveries_weight: 1.0,
        invalid_message_deliveries_weight: -1.0,
        ..quiet_topic()
    };
    let mut s = scorer(params, tp.clone(), &[a, b], t0);
    s.set_topic_params(topic("u"), tp);
    for n in 0..8 {
        accept(&mut s, &a, n, t0);
    }
    for n in 100..105 {
        s.validate_message(&a, &msg(n), &topic("u"), t0);
        s.deliver_message(&a, &msg(n), &topic("u"), t0);
    }
    // Topic part 8 + 5 = 13, capped at 10.
    assert_close(s.score(&a, t0), 10.0);
    // The cap does not cover P₅.
    s.set_application_score(&a, 3.0);
    assert_close(s.score(&a, t0), 13.0);
    // A topic without parameters contributes nothing.
    s.validate_message(&b, &msg(200), &topic("other"), t0);
    s.deliver_message(&b, &msg(200), &topic("other"), t0);
    assert_close(s.score(&b, t0), 0.0);
    // Negative topic parts are not capped: 5 invalid in "u" → −25.
    for n in 300..305 {
        s.reject_message(&b, &msg(n), &topic("u"), RejectReason::Invalid, t0);
    }
    assert_close(s.score(&b, t0), -25.0);
    // Cap 0 is no cap.
    let mut params = quiet_params();
    params.topic_score_cap = 0.0;
    let tp = TopicScoreParams {
        first_message_deliveries_weight: 1.0,
        ..quiet_topic()
    };
    let mut s = scorer(params, tp, &[a], t0);
    for n in 0..13 {
        accept(&mut s, &a, n, t0);
    }
    assert_close(s.score(&a, t0), 13.0);
}

#[test]
fn retained_score_restored_on_reconnect_within_retain_score_and_forgotten_after() {
    let t0 = Instant::now();
    let (a, b, c, d, e) = (peer(1), peer(2), peer(3), peer(4), peer(5));
    let params = PeerScoreParams {
        retain_score: Duration::from_secs(10),
        ..quiet_params()
    };
    let tp = TopicScoreParams {
        first_message_deliveries_weight: 1.0,
        invalid_message_deliveries_weight: -1.0,
        invalid_message_deliveries_decay: 0.99,
        ..quiet_topic()
    };
    let mut s = scorer(params, tp, &[a, b, c, d, e], t0);
    for p in [a, b, c] {
        for n in 0..3 {
            let id = u32::from(p.as_bytes()[3]) * 100 + n;
            s.reject_message(&p, &msg(id), &topic("t"), RejectReason::Invalid, t0);
        }
    }
    accept(&mut s, &d, 1, t0);
    for p in [a, b, c, d, e] {
        s.remove_peer(&p, t0 + secs(1.0));
    }
    // Negative and positive scores are retained; a neutral peer is not.
    assert!(s.is_retained(&a) && s.is_retained(&b) && s.is_retained(&c) && s.is_retained(&d));
    assert!(!s.is_retained(&e));
    assert_eq!(s.retained_count(), 4);
    assert_close(s.score(&a, t0 + secs(1.0)), -9.0);
    assert_close(s.score(&d, t0 + secs(1.0)), 1.0);
    // Back within retain_score (no decay yet): restored.
    s.add_peer(a, None, t0 + secs(5.0));
    assert!(s.is_connected(&a) && !s.is_retained(&a));
    assert_close(s.score(&a, t0 + secs(5.0)), -9.0);
    s.add_peer(d, None, t0 + secs(5.0));
    assert_close(s.score(&d, t0 + secs(5.0)), 1.0);
    // Retained counters decay: 9.5 s after the disconnection, still kept (3 · 0.99^10).
    s.refresh(t0 + secs(10.5));
    assert!(s.is_retained(&b));
    let kept = 3.0 * 0.99f64.powi(10);
    assert_close(s.score(&b, t0 + secs(10.5)), -(kept * kept));
    // 10 s after the disconnection: forgotten by refresh.
    s.refresh(t0 + secs(11.0));
    assert!(!s.is_retained(&b));
    s.add_peer(b, None, t0 + secs(11.0));
    assert_close(s.score(&b, t0 + secs(11.0)), 0.0);
    // ... or on reconnection, even if refresh has not run yet.
    let mut s2 = scorer(
        quiet_params(),
        TopicScoreParams {
            invalid_message_deliveries_weight: -1.0,
            ..quiet_topic()
        },
        &[c],
        t0,
    );
    s2.reject_message(&c, &msg(1), &topic("t"), RejectReason::Invalid, t0);
    s2.remove_peer(&c, t0 + secs(1.0));
    assert_close(s2.score(&c, t0 + secs(1.0)), -1.0);
    s2.add_peer(c, None, t0 + secs(11.0));
    assert_close(s2.score(&c, t0 + secs(11.0)), 0.0);
    assert_eq!(s2.retained_count(), 0);
}

#[test]
fn max_retained_peers_drops_the_oldest_disconnection() {
    let t0 = Instant::now();
    let (a, b, c) = (peer(1), peer(2), peer(3));
    let params = PeerScoreParams {
        max_retained_peers: 2,
        behaviour_penalty_weight: -1.0,
        behaviour_penalty_threshold: 0.0,
        ..quiet_params()
    };
    let mut s = scorer(params, quiet_topic(), &[a, b, c], t0);
    for p in [a, b, c] {
        s.add_penalty(&p, 2);
    }
    s.remove_peer(&a, t0 + secs(1.0));
    s.remove_peer(&b, t0 + secs(2.0));
    s.remove_peer(&c, t0 + secs(3.0));
    assert_eq!(s.retained_count(), 2);
    assert!(!s.is_retained(&a));
    assert!(s.is_retained(&b) && s.is_retained(&c));
    s.add_peer(a, None, t0 + secs(4.0));
    assert_close(s.score(&a, t0 + secs(4.0)), 0.0);
    s.add_peer(b, None, t0 + secs(4.0));
    assert_close(s.score(&b, t0 + secs(4.0)), -4.0);
    // max_retained_peers 0: nothing retained.
    let params = PeerScoreParams {
        max_retained_peers: 0,
        behaviour_penalty_weight: -1.0,
        ..quiet_params()
    };
    let mut s = scorer(params, quiet_topic(), &[a], t0);
    s.add_penalty(&a, 2);
    s.remove_peer(&a, t0);
    assert_eq!(s.retained_count(), 0);
    assert_close(s.score(&a, t0), 0.0);
}

#[test]
fn delivery_records_bounded_oldest_evicted_and_expire() {
    let t0 = Instant::now();
    let (a, b) = (peer(1), peer(2));
    let params = PeerScoreParams {
        max_delivery_records: 3,
        delivery_record_ttl: Duration::from_secs(60),
        ..quiet_params()
    };
    let mut s = scorer(params, p4_topic(), &[a, b], t0);
    let t = topic("t");
    s.validate_message(&a, &msg(1), &t, t0);
    s.duplicated_message(&b, &msg(1), &t, t0);
    for n in 2..=4 {
        s.validate_message(&a, &msg(n), &t, t0 + ms(u64::from(n)));
    }
    assert_eq!(s.delivery_record_count(), 3);
    // Message 1's record (with b as a pending deliverer) was evicted: rejecting it now
    // penalises the sender only.
    s.reject_message(&a, &msg(1), &t, RejectReason::Invalid, t0 + secs(1.0));
    assert_close(s.score(&a, t0), -6.0);
    assert_close(s.score(&b, t0), 0.0);
    assert_eq!(s.delivery_record_count(), 3);
    // Expired after the TTL: a late duplicate of the invalid message is not penalised.
    s.refresh(t0 + secs(61.5));
    assert_eq!(s.delivery_record_count(), 0);
    s.duplicated_message(&b, &msg(1), &t, t0 + secs(61.5));
    assert_close(s.score(&b, t0 + secs(61.5)), 0.0);
}

#[test]
fn deliverers_per_record_are_bounded() {
    let t0 = Instant::now();
    let first = peer(0);
    let others: Vec<PeerId> = (1..=80).map(peer).collect();
    let mut all = vec![first];
    all.extend(&others);
    let mut s = scorer(quiet_params(), p4_topic(), &all, t0);
    let t = topic("t");
    s.validate_message(&first, &msg(1), &t, t0);
    for p in &others {
        s.duplicated_message(p, &msg(1), &t, t0);
    }
    s.reject_message(&first, &msg(1), &t, RejectReason::Invalid, t0);
    let penalised = others.iter().filter(|p| s.score(p, t0) < 0.0).count();
    assert_eq!(
        penalised,
        plexus_gossipsub::score::MAX_DELIVERERS_PER_RECORD
    );
    assert_close(s.score(&first, t0), -6.0);
}

#[test]
fn validate_rejects_bad_params() {
    assert_eq!(PeerScoreParams::default().validate(), Ok(()));
    assert_eq!(TopicScoreParams::default().validate(), Ok(()));
    assert_eq!(PeerScoreThresholds::default().validate(), Ok(()));

    let field_of = |e: ScoreParamsError| match e {
        ScoreParamsError::OutOfRange { field, .. } | ScoreParamsError::NotFinite(field) => field,
        ScoreParamsError::ZeroDuration(field) | ScoreParamsError::ZeroCount(field) => field,
        other => panic!("unexpected {other:?}"),
    };
    let topic_err = |f: &dyn Fn(&mut TopicScoreParams)| {
        let mut p = TopicScoreParams::default();
        f(&mut p);
        field_of(p.validate().expect_err("must be rejected"))
    };
    assert_eq!(
        topic_err(&|p| p.invalid_message_deliveries_weight = 1.0),
        "invalid_message_deliveries_weight"
    );
    assert_eq!(
        topic_err(&|p| p.mesh_message_deliveries_weight = 0.5),
        "mesh_message_deliveries_weight"
    );
    assert_eq!(
        topic_err(&|p| p.mesh_failure_penalty_weight = 0.5),
        "mesh_failure_penalty_weight"
    );
    assert_eq!(
        topic_err(&|p| p.first_message_deliveries_weight = -1.0),
        "first_message_deliveries_weight"
    );
    assert_eq!(
        topic_err(&|p| p.time_in_mesh_weight = -0.1),
        "time_in_mesh_weight"
    );
    assert_eq!(topic_err(&|p| p.topic_weight = -1.0), "topic_weight");
    assert_eq!(topic_err(&|p| p.topic_weight = f64::NAN), "topic_weight");
    assert_eq!(
        topic_err(&|p| p.first_message_deliveries_cap = f64::INFINITY),
        "first_message_deliveries_cap"
    );
    for bad in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
        assert_eq!(
            topic_err(&|p| p.first_message_deliveries_decay = bad),
            "first_message_deliveries_decay"
        );
        assert_eq!(
            topic_err(&|p| p.invalid_message_deliveries_decay = bad),
            "invalid_message_deliveries_decay"
        );
    }
    assert_eq!(
        topic_err(&|p| {
            p.mesh_message_deliveries_threshold = 20.0;
            p.mesh_message_deliveries_cap = 10.0;
        }),
        "mesh_message_deliveries_cap"
    );
    assert_eq!(
        topic_err(&|p| p.time_in_mesh_quantum = Duration::ZERO),
        "time_in_mesh_quantum"
    );

    let params_err = |f: &dyn Fn(&mut PeerScoreParams)| {
        let mut p = PeerScoreParams::default();
        f(&mut p);
        p.validate().expect_err("must be rejected")
    };
    let field = |f: &dyn Fn(&mut PeerScoreParams)| field_of(params_err(f));
    assert_eq!(
        field(&|p| p.ip_colocation_factor_weight = 1.0),
        "ip_colocation_factor_weight"
    );
    assert_eq!(
        field(&|p| p.ip_colocation_factor_threshold = 0.5),
        "ip_colocation_factor_threshold"
    );
    assert_eq!(
        field(&|p| p.ip_colocation_factor_threshold = f64::NAN),
        "ip_colocation_factor_threshold"
    );
    assert_eq!(
        field(&|p| p.behaviour_penalty_weight = 1.0),
        "behaviour_penalty_weight"
    );
    assert_eq!(
        field(&|p| p.behaviour_penalty_decay = 1.0),
        "behaviour_penalty_decay"
    );
    assert_eq!(
        field(&|p| p.behaviour_penalty_threshold = -1.0),
        "behaviour_penalty_threshold"
    );
    assert_eq!(
        field(&|p| p.app_specific_weight = -1.0),
        "app_specific_weight"
    );
    assert_eq!(
        field(&|p| p.topic_score_cap = f64::NEG_INFINITY),
        "topic_score_cap"
    );
    assert_eq!(field(&|p| p.decay_to_zero = 0.0), "decay_to_zero");
    assert_eq!(
        field(&|p| p.decay_interval = Duration::ZERO),
        "decay_interval"
    );
    assert_eq!(
        field(&|p| p.max_delivery_records = 0),
        "max_delivery_records"
    );
    assert_eq!(
        field(&|p| p.delivery_record_ttl = Duration::ZERO),
        "delivery_record_ttl"
    );
    assert!(matches!(
        params_err(&|p| p
            .ip_colocation_factor_whitelist
            .push(("10.0.0.0".parse().expect("ip"), 33))),
        ScoreParamsError::InvalidCidr { prefix_len: 33, .. }
    ));
    // A bad topic is reported with its topic.
    match params_err(&|p| {
        let tp = TopicScoreParams {
            invalid_message_deliveries_weight: 5.0,
            ..TopicScoreParams::default()
        };
        p.topics.insert(topic("bad"), tp);
    }) {
        ScoreParamsError::Topic { topic: t, error } => {
            assert_eq!(t, topic("bad"));
            assert_eq!(field_of(*error), "invalid_message_deliveries_weight");
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        PeerScore::try_new(PeerScoreParams {
            decay_to_zero: f64::NAN,
            ..PeerScoreParams::default()
        })
        .is_err()
    );

    let thresholds_err = |f: &dyn Fn(&mut PeerScoreThresholds)| {
        let mut t = PeerScoreThresholds::default();
        f(&mut t);
        field_of(t.validate().expect_err("must be rejected"))
    };
    assert_eq!(
        thresholds_err(&|t| t.gossip_threshold = 1.0),
        "gossip_threshold"
    );
    assert_eq!(
        thresholds_err(&|t| t.publish_threshold = -100.0), // above gossip (−4000)
        "publish_threshold"
    );
    assert_eq!(
        thresholds_err(&|t| t.graylist_threshold = -8000.0), // equal to publish
        "graylist_threshold"
    );
    assert_eq!(
        thresholds_err(&|t| t.accept_px_threshold = -1.0),
        "accept_px_threshold"
    );
    assert_eq!(
        thresholds_err(&|t| t.opportunistic_graft_threshold = -1.0),
        "opportunistic_graft_threshold"
    );
    assert_eq!(
        thresholds_err(&|t| t.gossip_threshold = f64::NAN),
        "gossip_threshold"
    );
    // The boundaries themselves are allowed.
    let edge = PeerScoreThresholds {
        gossip_threshold: 0.0,
        publish_threshold: 0.0,
        graylist_threshold: -1.0,
        accept_px_threshold: 0.0,
        opportunistic_graft_threshold: 0.0,
    };
    assert_eq!(edge.validate(), Ok(()));
}

#[test]
fn default_values() {
    let t = PeerScoreThresholds::default();
    assert_eq!(
        (
            t.gossip_threshold,
            t.publish_threshold,
            t.graylist_threshold,
            t.accept_px_threshold,
            t.opportunistic_graft_threshold
        ),
        (-4000.0, -8000.0, -16000.0, 100.0, 5.0)
    );
    let p = PeerScoreParams::default();
    assert!(p.topics.is_empty());
    assert_eq!(p.decay_interval, Duration::from_secs(1));
    assert_eq!(p.decay_to_zero, 0.01);
    assert_eq!(p.behaviour_penalty_threshold, 6.0);
    // Default loopback whitelist: many local peers are not penalised.
    let mut s = PeerScore::try_new(p).expect("valid");
    let t0 = Instant::now();
    for n in 0..20 {
        s.add_peer(peer(n), ip("127.0.0.1"), t0);
    }
    assert_close(s.score(&peer(0), t0), 0.0);
}

#[test]
fn unknown_peers_score_zero_and_events_for_them_are_ignored() {
    let t0 = Instant::now();
    let (a, stranger) = (peer(1), peer(2));
    let tp = TopicScoreParams {
        first_message_deliveries_weight: 1.0,
        invalid_message_deliveries_weight: -1.0,
        ..quiet_topic()
    };
    let mut s = scorer(quiet_params(), tp, &[a], t0);
    accept(&mut s, &stranger, 1, t0);
    s.graft(&stranger, &topic("t"), t0);
    s.reject_message(&stranger, &msg(2), &topic("t"), RejectReason::Invalid, t0);
    s.prune(&stranger, &topic("t"), t0);
    s.remove_peer(&stranger, t0);
    assert_close(s.score(&stranger, t0), 0.0);
    assert!(!s.is_connected(&stranger) && !s.is_retained(&stranger));
}

#[derive(Debug, Clone)]
enum Op {
    Add(u8, u8),
    Remove(u8),
    Graft(u8),
    Prune(u8),
    Validate(u8, u8),
    Deliver(u8, u8),
    Reject(u8, u8, u8),
    Duplicate(u8, u8),
    Penalty(u8, u8),
    App(u8, i16),
    Advance(u16),
    Refresh,
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0u8..12;
    let m = 0u8..40;
    prop_oneof![
        (p.clone(), 0u8..4).prop_map(|(p, i)| Op::Add(p, i)),
        p.clone().prop_map(Op::Remove),
        p.clone().prop_map(Op::Graft),
        p.clone().prop_map(Op::Prune),
        (p.clone(), m.clone()).prop_map(|(p, m)| Op::Validate(p, m)),
        (p.clone(), m.clone()).prop_map(|(p, m)| Op::Deliver(p, m)),
        (p.clone(), m.clone(), 0u8..6).prop_map(|(p, m, r)| Op::Reject(p, m, r)),
        (p.clone(), m).prop_map(|(p, m)| Op::Duplicate(p, m)),
        (p.clone(), 0u8..5).prop_map(|(p, c)| Op::Penalty(p, c)),
        (p, any::<i16>()).prop_map(|(p, v)| Op::App(p, v)),
        (0u16..3000).prop_map(Op::Advance),
        Just(Op::Refresh),
    ]
}

proptest! {
    /// Any event sequence keeps every score finite and every bound.
    #[test]
    fn scores_stay_finite_and_state_bounded(ops in proptest::collection::vec(op(), 1..200)) {
        let mut params = PeerScoreParams {
            max_retained_peers: 3,
            max_delivery_records: 5,
            ..PeerScoreParams::default()
        };
        params.topics.insert(topic("t"), TopicScoreParams {
            mesh_message_deliveries_weight: -1.0,
            mesh_failure_penalty_weight: -1.0,
            mesh_message_deliveries_activation: Duration::from_secs(1),
            ..TopicScoreParams::default()
        });
        let mut s = PeerScore::try_new(params).expect("valid");
        let t = topic("t");
        let start = Instant::now();
        let mut now = start;
        let reasons = [
            RejectReason::Invalid,
            RejectReason::Ignored,
            RejectReason::InvalidSignature,
            RejectReason::SelfOrigin,
            RejectReason::ValidationQueueFull,
            RejectReason::Blacklisted,
        ];
        for op in ops {
            match op {
                Op::Add(p, i) => s.add_peer(peer(p), ip(&format!("10.9.0.{i}")), now),
                Op::Remove(p) => s.remove_peer(&peer(p), now),
                Op::Graft(p) => s.graft(&peer(p), &t, now),
                Op::Prune(p) => s.prune(&peer(p), &t, now),
                Op::Validate(p, m) => s.validate_message(&peer(p), &msg(m.into()), &t, now),
                Op::Deliver(p, m) => s.deliver_message(&peer(p), &msg(m.into()), &t, now),
                Op::Reject(p, m, r) => {
                    s.reject_message(&peer(p), &msg(m.into()), &t, reasons[usize::from(r)], now)
                }
                Op::Duplicate(p, m) => s.duplicated_message(&peer(p), &msg(m.into()), &t, now),
                Op::Penalty(p, c) => s.add_penalty(&peer(p), c.into()),
                Op::App(p, v) => {
                    s.set_application_score(&peer(p), f64::from(v));
                }
                Op::Advance(d) => now += ms(u64::from(d)),
                Op::Refresh => s.refresh(now),
            }
            prop_assert!(s.retained_count() <= 3);
            prop_assert!(s.delivery_record_count() <= 5);
            for p in 0..12 {
                let score = s.score(&peer(p), now);
                prop_assert!(score.is_finite(), "score {score}");
            }
        }
    }
}
