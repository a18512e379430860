//! The peer manager's policy in virtual time: events in, actions and gate snapshots out.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use plexus_core::{Blame, Direction, PeerId};
use plexus_eth::{ForkDigest, GoodbyeReason};
use plexus_identity::Keypair;
use plexus_multiaddr::Multiaddr;
use plexus_peer_manager::{
    Action, Advertised, GoodbyeBackoffs, PeerAction, PeerManager, PeerManagerConfig,
    PeerManagerMetrics, PeerMetadata, PeerStatus, ReportSource, SubnetNeeds,
};

const DIGEST: ForkDigest = ForkDigest([1, 2, 3, 4]);

fn peer() -> PeerId {
    Keypair::generate_ed25519().public().to_peer_id()
}

fn addr(ip: u8) -> Multiaddr {
    format!("/ip4/10.0.0.{ip}/tcp/9000").parse().unwrap()
}

fn status(d: ForkDigest) -> PeerStatus {
    PeerStatus {
        fork_digest: d,
        finalized_epoch: 0,
        head_slot: 0,
    }
}

fn cfg(target: usize) -> PeerManagerConfig {
    PeerManagerConfig {
        target_peers: target,
        heartbeat_interval: Duration::from_secs(1),
        goodbye_backoff: GoodbyeBackoffs::all(Duration::from_secs(600)),
        ..PeerManagerConfig::default()
    }
}

fn pm(c: PeerManagerConfig, t0: Instant) -> PeerManager {
    let mut pm = PeerManager::new(c, PeerManagerMetrics::new(), t0);
    pm.set_fork_digests(vec![DIGEST]);
    pm
}

fn drain(pm: &mut PeerManager) -> Vec<Action> {
    std::iter::from_fn(|| pm.poll_action()).collect()
}

/// Connect `p` (from 10.0.0.`ip`) and accept its Status.
fn admit(pm: &mut PeerManager, p: PeerId, ip: u8, dir: Direction, now: Instant) -> Vec<Action> {
    pm.on_connected(p, dir, &addr(ip), now);
    pm.on_status(p, status(DIGEST), now);
    drain(pm)
}

#[test]
fn status_admits_a_peer_to_meshes_and_the_inbound_side_asks_after_status_wait() {
    let t0 = Instant::now();
    let mut m = pm(cfg(10), t0);
    let out = peer();
    m.on_connected(out, Direction::Outbound, &addr(1), t0);
    assert_eq!(
        drain(&mut m),
        vec![Action::RequestStatus(out)],
        "the dialer asks first"
    );
    m.on_status(out, status(DIGEST), t0);
    assert_eq!(
        drain(&mut m),
        vec![
            Action::SetAccepted {
                peer: out,
                accepted: true
            },
            Action::RequestMetadata(out)
        ]
    );
    let inb = peer();
    m.on_connected(inb, Direction::Inbound, &addr(2), t0);
    assert!(
        drain(&mut m).is_empty(),
        "the listener waits for the dialer's Status"
    );
    let wait = m.config().status_wait;
    assert!(m.next_timeout() <= t0 + wait);
    m.tick(t0 + wait - Duration::from_millis(1));
    assert!(!drain(&mut m).contains(&Action::RequestStatus(inb)));
    m.tick(t0 + wait);
    assert!(drain(&mut m).contains(&Action::RequestStatus(inb)));
    assert_eq!(m.accepted_count(), 1, "only Status-accepted peers count");
}

#[test]
fn a_status_that_overtakes_its_connected_event_is_not_lost() {
    let t0 = Instant::now();
    let mut m = pm(cfg(10), t0);
    let p = peer();
    m.on_status(p, status(DIGEST), t0);
    m.on_connected(p, Direction::Inbound, &addr(1), t0);
    assert!(drain(&mut m).contains(&Action::SetAccepted {
        peer: p,
        accepted: true
    }));
}

#[test]
fn wrong_fork_gets_one_goodbye_no_mesh_and_no_redial_before_its_backoff() {
    let t0 = Instant::now();
    let mut m = pm(cfg(10), t0);
    let p = peer();
    m.add_candidate(p, vec![addr(1)], t0);
    m.on_connected(p, Direction::Outbound, &addr(1), t0);
    m.on_status(p, status(ForkDigest([9, 9, 9, 9])), t0);
    let acts = drain(&mut m);
    let goodbyes = acts
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Goodbye {
                    reason: GoodbyeReason::IrrelevantNetwork,
                    ..
                }
            )
        })
        .count();
    assert_eq!(goodbyes, 1);
    assert!(
        !acts
            .iter()
            .any(|a| matches!(a, Action::SetAccepted { accepted: true, .. }))
    );
    // A second Status (the peer asks again) does not send a second Goodbye.
    m.on_status(p, status(ForkDigest([9, 9, 9, 9])), t0);
    assert!(drain(&mut m).is_empty());
    m.on_disconnected(&p, t0);
    let snap = m.gate_snapshot(t0);
    assert!(
        snap.peers.contains_key(&p),
        "refused at peer_dial and secured"
    );
    assert!(
        snap.ips
            .contains_key(&"10.0.0.1".parse::<IpAddr>().unwrap()),
        "and at accept"
    );
    // Heartbeats during the backoff never dial it, even though we are below target.
    for s in 1..600 {
        m.tick(t0 + Duration::from_secs(s));
        assert!(
            !drain(&mut m)
                .iter()
                .any(|a| matches!(a, Action::Dial { .. })),
            "dialed at {s} s"
        );
    }
    m.tick(t0 + Duration::from_secs(601));
    assert!(
        drain(&mut m)
            .iter()
            .any(|a| matches!(a, Action::Dial { peer, .. } if *peer == p))
    );
}

#[test]
fn bad_responses_disconnect_then_ban_and_the_ban_ends() {
    let t0 = Instant::now();
    let mut c = cfg(10);
    c.ban_duration = Duration::from_secs(60);
    let mut m = pm(c, t0);
    let p = peer();
    admit(&mut m, p, 1, Direction::Outbound, t0);
    m.on_blame(p, Blame::PeerMisbehaved, ReportSource::ReqResp, t0);
    assert!(drain(&mut m).is_empty(), "one bad response: -10");
    m.on_blame(p, Blame::Local, ReportSource::ReqResp, t0);
    m.on_blame(p, Blame::PeerIncompatible, ReportSource::ReqResp, t0);
    assert!(
        drain(&mut m).is_empty(),
        "timeouts and incompatibility cost nothing"
    );
    m.on_blame(p, Blame::PeerMisbehaved, ReportSource::ReqResp, t0);
    assert_eq!(
        drain(&mut m),
        vec![Action::Goodbye {
            peer: p,
            reason: GoodbyeReason::BadScore
        }]
    );
    m.on_disconnected(&p, t0);
    // It comes back (an IP shared with others lets it past accept), misbehaves again.
    let t1 = t0 + Duration::from_secs(601);
    m.tick(t1);
    drain(&mut m);
    admit(&mut m, p, 1, Direction::Inbound, t1);
    // Its score decayed from -20 to just above -10 meanwhile; 5 more pass -50.
    for _ in 0..5 {
        m.report(p, PeerAction::LowToleranceError, ReportSource::Client, t1);
    }
    let acts = drain(&mut m);
    assert!(acts.contains(&Action::Ban {
        peer: p,
        duration: Duration::from_secs(60)
    }));
    // One Goodbye (the first report crossed -20); the ban follows it.
    let goodbyes: Vec<&Action> = acts
        .iter()
        .filter(|a| matches!(a, Action::Goodbye { .. }))
        .collect();
    assert_eq!(
        goodbyes,
        vec![&Action::Goodbye {
            peer: p,
            reason: GoodbyeReason::BadScore
        }]
    );
    m.on_disconnected(&p, t1);
    let snap = m.gate_snapshot(t1);
    assert!(snap.peers[&p] >= t1 + Duration::from_secs(60));
    // The ban holds the score: no decay while banned, then probation.
    m.tick(t1 + Duration::from_secs(61));
    let info = m.peer(&p).unwrap();
    assert!(info.ban_until.is_none(), "ban over");
    assert_eq!(
        info.score.app(),
        m.config().score.disconnect_threshold / 2.0
    );
    assert_eq!(m.metrics().bans(), 1);
}

#[test]
fn a_full_node_says_goodbye_129_to_connections_past_its_cap_and_refuses_at_accept() {
    let t0 = Instant::now();
    let mut m = pm(cfg(10), t0);
    let max = m.config().max_peers();
    assert_eq!(max, 11);
    for i in 0..max {
        let acts = admit(&mut m, peer(), i as u8, Direction::Outbound, t0);
        assert!(!acts.iter().any(|a| matches!(a, Action::Goodbye { .. })));
    }
    assert!(
        m.gate_snapshot(t0).inbound_full,
        "accept refuses from now on"
    );
    let late = peer();
    m.on_connected(late, Direction::Inbound, &addr(200), t0);
    assert_eq!(
        drain(&mut m),
        vec![Action::Goodbye {
            peer: late,
            reason: GoodbyeReason::TooManyPeers
        }]
    );
    // The heartbeat prunes back to the target.
    m.tick(t0 + Duration::from_secs(1));
    let pruned = drain(&mut m)
        .iter()
        .filter(|a| {
            matches!(
                a,
                Action::Goodbye {
                    reason: GoodbyeReason::TooManyPeers,
                    ..
                }
            )
        })
        .count();
    assert_eq!(pruned, max - 10);
    assert_eq!(m.accepted_count(), 10);
}

#[test]
fn pruning_keeps_trusted_peers_subnet_coverage_and_the_outbound_floor() {
    let t0 = Instant::now();
    let mut c = cfg(5);
    c.min_outbound_factor = 0.4; // 2 outbound kept
    c.excess_factor = 1.0;
    let mut m = pm(c, t0);
    m.set_needs(SubnetNeeds {
        attnets: 1 << 7,
        ..SubnetNeeds::default()
    });
    let trusted = peer();
    m.add_trusted(trusted, vec![addr(1)], t0);
    admit(&mut m, trusted, 1, Direction::Inbound, t0);
    let subnet: Vec<PeerId> = (0..2).map(|_| peer()).collect();
    for (i, p) in subnet.iter().enumerate() {
        admit(&mut m, *p, 10 + i as u8, Direction::Inbound, t0);
        m.on_metadata(
            p,
            PeerMetadata {
                attnets: 1 << 7,
                ..PeerMetadata::default()
            },
        );
    }
    let outbound: Vec<PeerId> = (0..2).map(|_| peer()).collect();
    for (i, p) in outbound.iter().enumerate() {
        admit(&mut m, *p, 20 + i as u8, Direction::Outbound, t0);
    }
    let plain: Vec<PeerId> = (0..4).map(|_| peer()).collect();
    for (i, p) in plain.iter().enumerate() {
        admit(&mut m, *p, 30 + i as u8, Direction::Inbound, t0);
    }
    // 9 accepted, target 5: prune 4, which can only be the plain inbound peers.
    m.tick(t0 + Duration::from_secs(1));
    let pruned: Vec<PeerId> = drain(&mut m)
        .into_iter()
        .filter_map(|a| match a {
            Action::Goodbye {
                peer,
                reason: GoodbyeReason::TooManyPeers,
            } => Some(peer),
            _ => None,
        })
        .collect();
    let mut want = plain.clone();
    want.sort_by_key(|p| p.to_bytes());
    let mut got = pruned.clone();
    got.sort_by_key(|p| p.to_bytes());
    assert_eq!(got, want);
}

#[test]
fn a_negative_score_is_pruned_first() {
    let t0 = Instant::now();
    let mut m = pm(cfg(2), t0);
    let ps: Vec<PeerId> = (0..3).map(|_| peer()).collect();
    for (i, p) in ps.iter().enumerate() {
        admit(&mut m, *p, i as u8, Direction::Outbound, t0);
    }
    m.report(
        ps[1],
        PeerAction::HighToleranceError,
        ReportSource::Client,
        t0,
    );
    m.tick(t0 + Duration::from_secs(1));
    assert!(drain(&mut m).contains(&Action::Goodbye {
        peer: ps[1],
        reason: GoodbyeReason::TooManyPeers
    }));
}

#[test]
fn dials_follow_the_preference_and_skip_peers_in_backoff() {
    let t0 = Instant::now();
    let mut c = cfg(2);
    c.min_outbound_factor = 0.0;
    let mut m = pm(c, t0);
    m.set_needs(SubnetNeeds {
        attnets: 1 << 3,
        ..SubnetNeeds::default()
    });
    let plain = peer();
    let good = peer();
    let subnet = peer();
    let backed_off = peer();
    for (i, p) in [plain, good, subnet, backed_off].iter().enumerate() {
        m.add_candidate(*p, vec![addr(i as u8)], t0);
    }
    // `good` earned a positive score; `subnet` covers our needed subnet; `backed_off` said
    // goodbye.
    m.set_gossip_score(&good, 1000.0, t0);
    m.on_metadata(
        &subnet,
        PeerMetadata {
            attnets: 1 << 3,
            ..PeerMetadata::default()
        },
    );
    m.on_connected(backed_off, Direction::Outbound, &addr(9), t0);
    m.on_goodbye(backed_off, GoodbyeReason::TooManyPeers, t0);
    m.on_disconnected(&backed_off, t0);
    drain(&mut m);
    let order = m.dial_order(t0);
    assert_eq!(&order[..2], &[subnet, good]);
    assert!(!order.contains(&backed_off));
    m.tick(t0 + Duration::from_secs(1));
    let dialed: Vec<PeerId> = drain(&mut m)
        .into_iter()
        .filter_map(|a| match a {
            Action::Dial { peer, .. } => Some(peer),
            _ => None,
        })
        .collect();
    assert_eq!(
        dialed,
        vec![subnet, good],
        "two wanted, the two best dialed"
    );
}

#[test]
fn a_failed_dial_backs_off_exponentially() {
    let t0 = Instant::now();
    let mut m = pm(cfg(1), t0);
    let p = peer();
    m.add_candidate(p, vec![addr(1)], t0);
    let mut t = t0;
    let mut gaps = Vec::new();
    let mut last: Option<Instant> = None;
    for _ in 0..4 {
        // Tick until it is dialed.
        loop {
            t += Duration::from_secs(1);
            m.tick(t);
            if drain(&mut m)
                .iter()
                .any(|a| matches!(a, Action::Dial { .. }))
            {
                break;
            }
        }
        if let Some(l) = last {
            gaps.push((t - l).as_secs());
        }
        last = Some(t);
        m.on_dial_failed(&p, t);
    }
    assert_eq!(gaps, vec![30, 60, 120], "30 s, then doubled");
}

#[test]
fn an_ip_shared_with_a_good_peer_is_not_refused_at_accept() {
    let t0 = Instant::now();
    let mut m = pm(cfg(10), t0);
    let (bad, good) = (peer(), peer());
    admit(&mut m, good, 1, Direction::Inbound, t0);
    admit(&mut m, bad, 1, Direction::Inbound, t0);
    m.report(bad, PeerAction::Fatal, ReportSource::Client, t0);
    drain(&mut m);
    m.on_disconnected(&bad, t0);
    let snap = m.gate_snapshot(t0);
    assert!(snap.peers.contains_key(&bad), "refused by id after Noise");
    assert!(snap.ips.is_empty(), "the shared IP stays open");
}

#[test]
fn five_banned_peers_on_one_ip_ban_the_ip() {
    let t0 = Instant::now();
    let mut m = pm(cfg(20), t0);
    let mut acts = Vec::new();
    for _ in 0..5 {
        let p = peer();
        admit(&mut m, p, 7, Direction::Inbound, t0);
        m.report(p, PeerAction::Fatal, ReportSource::Client, t0);
        acts.extend(drain(&mut m));
    }
    let ip: IpAddr = "10.0.0.7".parse().unwrap();
    assert_eq!(
        acts.iter()
            .filter(|a| matches!(a, Action::BanIp { ip: i, .. } if *i == ip))
            .count(),
        1
    );
}

#[test]
fn gossip_score_alone_never_disconnects() {
    let t0 = Instant::now();
    let mut m = pm(cfg(10), t0);
    let p = peer();
    admit(&mut m, p, 1, Direction::Inbound, t0);
    m.set_gossip_score(&p, -1e6, t0);
    assert!(drain(&mut m).is_empty());
    m.report(p, PeerAction::HighToleranceError, ReportSource::Client, t0);
    assert!(
        drain(&mut m)
            .iter()
            .any(|a| matches!(a, Action::Goodbye { .. }))
    );
}

#[test]
fn the_store_is_bounded() {
    let t0 = Instant::now();
    let mut c = cfg(10);
    c.max_disconnected_peers = 50;
    let mut m = pm(c, t0);
    for i in 0..2000u32 {
        m.add_candidate(
            peer(),
            vec![addr((i % 250) as u8)],
            t0 + Duration::from_millis(u64::from(i)),
        );
    }
    assert!(m.peers().count() <= 50, "{}", m.peers().count());
}

#[test]
fn a_received_goodbye_closes_and_holds_the_peer_back() {
    let t0 = Instant::now();
    let mut m = pm(cfg(10), t0);
    let p = peer();
    admit(&mut m, p, 1, Direction::Outbound, t0);
    m.on_goodbye(p, GoodbyeReason::TooManyPeers, t0);
    assert_eq!(drain(&mut m), vec![Action::Disconnect(p)]);
    assert_eq!(
        m.metrics().goodbyes_received(GoodbyeReason::TooManyPeers),
        1
    );
    m.on_disconnected(&p, t0);
    assert!(
        m.gate_snapshot(t0 + Duration::from_secs(599)).peers[&p] > t0 + Duration::from_secs(599)
    );
}

#[test]
fn a_local_status_failure_is_retried_and_a_misbehaving_one_is_not() {
    let t0 = Instant::now();
    let mut m = pm(cfg(10), t0);
    let p = peer();
    m.on_connected(p, Direction::Outbound, &addr(1), t0);
    drain(&mut m);
    // A lost stream (the simultaneous-dial rule closed its connection): asked again.
    m.on_status_failed(p, Blame::Local, t0);
    assert_eq!(drain(&mut m), vec![Action::RequestStatus(p)]);
    m.on_status_failed(p, Blame::Local, t0);
    assert_eq!(drain(&mut m), vec![Action::RequestStatus(p)]);
    // status_retries (2) used up.
    m.on_status_failed(p, Blame::Local, t0);
    assert_eq!(
        drain(&mut m),
        vec![Action::Goodbye {
            peer: p,
            reason: GoodbyeReason::UnableToVerifyNetwork
        }]
    );
    let q = peer();
    m.on_connected(q, Direction::Outbound, &addr(2), t0);
    drain(&mut m);
    m.on_status_failed(q, Blame::PeerMisbehaved, t0);
    assert_eq!(
        drain(&mut m),
        vec![Action::Goodbye {
            peer: q,
            reason: GoodbyeReason::UnableToVerifyNetwork
        }]
    );
}

#[test]
fn a_plain_disconnect_stops_our_dials_only_and_churn_refuses_the_peer() {
    let t0 = Instant::now();
    let mut m = pm(cfg(10), t0);
    let p = peer();
    m.add_candidate(p, vec![addr(1)], t0);
    admit(&mut m, p, 1, Direction::Outbound, t0);
    m.on_disconnected(&p, t0);
    let snap = m.gate_snapshot(t0);
    assert!(
        snap.no_dial.contains_key(&p),
        "not dialed for reconnect_backoff"
    );
    assert!(
        !snap.peers.contains_key(&p),
        "its own connection is still welcome"
    );
    assert!(snap.ips.is_empty());
    // It reconnects at once: accepted, no Goodbye.
    let acts = admit(&mut m, p, 1, Direction::Inbound, t0);
    assert!(
        !acts.iter().any(|a| matches!(a, Action::Goodbye { .. })),
        "{acts:?}"
    );
    // Third plain disconnect within the window: churn, refused at the gate.
    m.on_disconnected(&p, t0);
    admit(&mut m, p, 1, Direction::Inbound, t0);
    m.on_disconnected(&p, t0);
    let snap = m.gate_snapshot(t0);
    assert!(snap.peers.contains_key(&p));
    assert!(
        snap.ips
            .contains_key(&"10.0.0.1".parse::<IpAddr>().unwrap())
    );
}

#[test]
fn the_heartbeat_counts_peers_by_state_and_the_time_to_target() {
    let t0 = Instant::now();
    let mut m = pm(cfg(2), t0);
    let (a, b, c) = (peer(), peer(), peer());
    admit(&mut m, a, 1, Direction::Outbound, t0);
    m.on_connected(b, Direction::Inbound, &addr(2), t0);
    m.add_candidate(c, vec![addr(3)], t0);
    assert_eq!(m.metrics().seconds_to_target(), 0.0, "not there yet");
    m.on_status(b, status(DIGEST), t0 + Duration::from_millis(1500));
    assert!((m.metrics().seconds_to_target() - 1.5).abs() < 1e-9);
    m.tick(t0 + Duration::from_secs(2));
    drain(&mut m);
    let metrics = m.metrics();
    assert_eq!(metrics.peers_in_state("connected_accepted"), 2);
    assert_eq!(metrics.peers_in_state("disconnected"), 1);
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let mut text = String::new();
    prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
    assert!(
        text.contains("peer_manager_peers_by_direction{direction=\"inbound\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("peer_manager_peers_by_score{bucket=\"zero\"} 2"),
        "{text}"
    );
}

#[test]
fn pruning_keeps_the_peer_custodying_a_needed_column() {
    let t0 = Instant::now();
    let mut c = cfg(1);
    c.min_outbound_factor = 0.0;
    let mut m = pm(c, t0);
    // Two secp256k1 peers (their node ids decide their custody columns).
    let a = Keypair::generate_secp256k1().public().to_peer_id();
    let b = Keypair::generate_secp256k1().public().to_peer_id();
    let cols = |p: &PeerId| -> u128 {
        plexus_eth::peer_custody_columns(p, 4)
            .unwrap()
            .into_iter()
            .fold(0, |acc, c| acc | 1u128 << c)
    };
    // A column only `a` custodies.
    let only_a = cols(&a) & !cols(&b);
    let need = only_a & only_a.wrapping_neg();
    assert_ne!(need, 0, "four random columns of 128 rarely all coincide");
    m.set_needs(SubnetNeeds {
        columns: need,
        ..SubnetNeeds::default()
    });
    // `a` connects last: by age alone it would be the one pruned.
    admit(&mut m, b, 2, Direction::Inbound, t0);
    admit(
        &mut m,
        a,
        1,
        Direction::Inbound,
        t0 + Duration::from_millis(10),
    );
    for p in [a, b] {
        m.on_metadata(
            &p,
            PeerMetadata {
                custody_group_count: 4,
                ..PeerMetadata::default()
            },
        );
    }
    assert_eq!(
        m.peer(&a).unwrap().metadata.unwrap().custody_columns,
        cols(&a)
    );
    // Target 1: one of the two goes, and it is `b`, the one covering no needed column.
    m.tick(t0 + Duration::from_secs(1));
    let pruned: Vec<PeerId> = drain(&mut m)
        .into_iter()
        .filter_map(|a| match a {
            Action::Goodbye { peer, .. } => Some(peer),
            _ => None,
        })
        .collect();
    assert_eq!(pruned, vec![b]);
}

#[test]
fn a_long_agent_with_multibyte_characters_is_cut_without_panicking() {
    let t0 = Instant::now();
    let mut m = pm(cfg(10), t0);
    let p = peer();
    m.add_candidate(p, vec![addr(1)], t0);
    // 63 ASCII bytes, then a 3-byte character straddling byte 64.
    let agent = format!("{}€€€", "a".repeat(63));
    m.set_agent(&p, agent);
    assert_eq!(
        m.peer(&p).unwrap().agent.as_deref(),
        Some("a".repeat(63).as_str())
    );
}

fn dialed(actions: Vec<Action>) -> Vec<PeerId> {
    actions
        .into_iter()
        .filter_map(|a| match a {
            Action::Dial { peer, .. } => Some(peer),
            _ => None,
        })
        .collect()
}

fn on_subnet(attnet: u32) -> Advertised {
    Advertised {
        attnets: 1 << attnet,
        ..Advertised::default()
    }
}

/// Discovery's advertised subnets put subnet peers first only until the subnet has
/// `target_peers_per_subnet`: the rest of the target goes by score, so nodes sharing a
/// subnet do not dial only each other.
#[test]
fn advertised_subnets_steer_dials_only_while_the_subnet_is_short() {
    let t0 = Instant::now();
    let mut c = cfg(6);
    c.min_outbound_factor = 0.0;
    c.target_peers_per_subnet = 2;
    let mut m = pm(c, t0);
    m.set_needs(SubnetNeeds {
        attnets: 1 << 3,
        ..SubnetNeeds::default()
    });
    let mates: Vec<PeerId> = (0..4).map(|_| peer()).collect();
    let others: Vec<PeerId> = (0..4).map(|_| peer()).collect();
    for (i, p) in mates.iter().enumerate() {
        m.add_discovered(*p, vec![addr(i as u8)], on_subnet(3), t0);
    }
    for (i, p) in others.iter().enumerate() {
        m.add_discovered(*p, vec![addr(10 + i as u8)], on_subnet(5), t0);
        // Better scored than any subnet mate.
        m.set_gossip_score(p, 1000.0, t0);
    }
    let order = m.dial_order(t0);
    assert!(
        mates.contains(&order[0]),
        "a mate first while the subnet is short"
    );
    m.tick(t0 + Duration::from_secs(1));
    let d = dialed(drain(&mut m));
    assert_eq!(d.len(), 6, "the target");
    assert!(mates.contains(&d[0]) && mates.contains(&d[1]), "{d:?}");
    assert_eq!(
        d.iter().filter(|p| mates.contains(p)).count(),
        2,
        "then by score: the other four are the better-scored peers"
    );
    for p in &others {
        assert!(d.contains(p));
    }
}

/// A needed subnet short of peers is dialed even at the target (up to the cap); the
/// heartbeat then prunes back to the target, keeping the subnet peer.
#[test]
fn a_short_subnet_is_dialed_at_the_target_and_kept_when_pruning() {
    let t0 = Instant::now();
    let mut c = cfg(2);
    c.min_outbound_factor = 0.0;
    c.excess_factor = 0.5;
    let mut m = pm(c, t0);
    m.set_needs(SubnetNeeds {
        attnets: 1 << 3,
        ..SubnetNeeds::default()
    });
    let (a, b) = (peer(), peer());
    admit(&mut m, a, 1, Direction::Inbound, t0);
    admit(&mut m, b, 2, Direction::Inbound, t0);
    let mate = peer();
    let plain = peer();
    m.add_discovered(mate, vec![addr(3)], on_subnet(3), t0);
    m.add_candidate(plain, vec![addr(4)], t0);
    let t1 = t0 + Duration::from_secs(1);
    m.tick(t1);
    assert_eq!(
        dialed(drain(&mut m)),
        vec![mate],
        "only the subnet peer, above target"
    );

    admit(&mut m, mate, 3, Direction::Outbound, t1);
    m.tick(t1 + Duration::from_secs(1));
    let actions = drain(&mut m);
    let pruned: Vec<PeerId> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Goodbye { peer, .. } => Some(*peer),
            _ => None,
        })
        .collect();
    assert_eq!(pruned.len(), 1, "{actions:?}");
    assert_ne!(pruned[0], mate, "the subnet peer stays");
    assert!(
        dialed(actions).is_empty(),
        "covered now: nothing more to dial"
    );
}
