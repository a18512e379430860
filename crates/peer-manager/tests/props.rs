//! Random event sequences against the sans-IO core: it never panics, and its rules hold
//! after every step.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use plexus_core::{Blame, Direction, PeerId};
use plexus_eth::{ForkDigest, GoodbyeReason};
use plexus_identity::Keypair;
use plexus_multiaddr::Multiaddr;
use plexus_peer_manager::{
    Action, ConnState, PeerAction, PeerManager, PeerManagerConfig, PeerManagerMetrics,
    PeerMetadata, PeerStatus, ReportSource, SubnetNeeds,
};
use proptest::prelude::*;

const DIGEST: ForkDigest = ForkDigest([1, 2, 3, 4]);
const PEERS: usize = 12;

#[derive(Debug, Clone)]
enum Op {
    Candidate(usize),
    Connected(usize, bool),
    Disconnected(usize),
    DialFailed(usize),
    Status(usize, bool),
    StatusFailed(usize, u8),
    Goodbye(usize, u64),
    Report(usize, u8),
    GossipScore(usize, i32),
    Metadata(usize, u64, u64),
    Needs(u64),
    Tick(u16),
}

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PEERS;
    prop_oneof![
        p.clone().prop_map(Op::Candidate),
        (p.clone(), any::<bool>()).prop_map(|(i, o)| Op::Connected(i, o)),
        p.clone().prop_map(Op::Disconnected),
        p.clone().prop_map(Op::DialFailed),
        (p.clone(), any::<bool>()).prop_map(|(i, g)| Op::Status(i, g)),
        (p.clone(), 0u8..3).prop_map(|(i, b)| Op::StatusFailed(i, b)),
        (
            p.clone(),
            prop_oneof![Just(1u64), Just(2), Just(3), Just(129), Just(250), Just(7)]
        )
            .prop_map(|(i, r)| Op::Goodbye(i, r)),
        (p.clone(), 0u8..4).prop_map(|(i, a)| Op::Report(i, a)),
        (p.clone(), -40000i32..2000).prop_map(|(i, s)| Op::GossipScore(i, s)),
        (p.clone(), any::<u64>(), 0u64..129).prop_map(|(i, a, c)| Op::Metadata(i, a, c)),
        any::<u64>().prop_map(Op::Needs),
        (0u16..5000).prop_map(Op::Tick),
    ]
}

fn addr(i: usize) -> Multiaddr {
    format!("/ip4/10.0.0.{}/tcp/9000", i % 4).parse().unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn rules_hold_under_any_event_sequence(ops in proptest::collection::vec(op(), 1..300)) {
        let ids: Vec<PeerId> = (0..PEERS)
            .map(|_| Keypair::generate_ed25519().public().to_peer_id())
            .collect();
        let cfg = PeerManagerConfig {
            target_peers: 4,
            heartbeat_interval: Duration::from_secs(1),
            max_disconnected_peers: 5,
            max_banned_peers: 3,
            ban_duration: Duration::from_secs(20),
            ..PeerManagerConfig::default()
        };
        let t0 = Instant::now();
        let mut now = t0;
        let mut m = PeerManager::new(cfg, PeerManagerMetrics::new(), t0);
        m.set_fork_digests(vec![DIGEST]);
        // Peer 0 is trusted.
        m.add_trusted(ids[0], vec![addr(0)], t0);
        // Goodbyes we sent per peer since its last Connected.
        let mut goodbyes: HashMap<PeerId, u32> = HashMap::new();
        // Connections the host has (the core only learns of them through events).
        let mut connected: HashMap<PeerId, bool> = HashMap::new();
        for op in ops {
            match op {
                Op::Candidate(i) => m.add_candidate(ids[i], vec![addr(i)], now),
                Op::Connected(i, out) => {
                    if connected.insert(ids[i], true).is_none() {
                        goodbyes.remove(&ids[i]);
                        let d = if out { Direction::Outbound } else { Direction::Inbound };
                        m.on_connected(ids[i], d, &addr(i), now);
                    }
                }
                Op::Disconnected(i) => {
                    if connected.remove(&ids[i]).is_some() {
                        m.on_disconnected(&ids[i], now);
                    }
                }
                Op::DialFailed(i) => m.on_dial_failed(&ids[i], now),
                Op::Status(i, good) => {
                    let d = if good { DIGEST } else { ForkDigest([0, 0, 0, 1]) };
                    m.on_status(ids[i], PeerStatus { fork_digest: d, finalized_epoch: 0, head_slot: 0 }, now);
                }
                Op::StatusFailed(i, b) => {
                    let b = [Blame::Local, Blame::PeerIncompatible, Blame::PeerMisbehaved][b as usize];
                    m.on_status_failed(ids[i], b, now);
                }
                Op::Goodbye(i, r) => m.on_goodbye(ids[i], GoodbyeReason::from(r), now),
                Op::Report(i, a) => {
                    let a = [
                        PeerAction::Fatal,
                        PeerAction::LowToleranceError,
                        PeerAction::MidToleranceError,
                        PeerAction::HighToleranceError,
                    ][a as usize];
                    m.report(ids[i], a, ReportSource::Client, now);
                }
                Op::GossipScore(i, s) => m.set_gossip_score(&ids[i], f64::from(s), now),
                Op::Metadata(i, a, c) => m.on_metadata(
                    &ids[i],
                    PeerMetadata { seq_number: 1, attnets: a, syncnets: 0, custody_group_count: c, custody_columns: 0 },
                ),
                Op::Needs(a) => m.set_needs(SubnetNeeds { attnets: a, syncnets: 0, columns: u128::from(a) << 64 | u128::from(a) }),
                Op::Tick(ms) => {
                    now += Duration::from_millis(u64::from(ms));
                    m.tick(now);
                }
            }
            while let Some(a) = m.poll_action() {
                match a {
                    Action::Dial { peer, .. } => {
                        let p = m.peer(&peer).expect("dialed peer is stored");
                        prop_assert!(
                            p.trusted || p.held_until(now).is_none(),
                            "dialed a peer in backoff"
                        );
                        prop_assert!(!connected.contains_key(&peer), "dialed a connected peer");
                    }
                    Action::SetAccepted { peer, accepted: true } => {
                        let p = m.peer(&peer).expect("accepted peer is stored");
                        prop_assert_eq!(p.status.map(|s| s.fork_digest), Some(DIGEST));
                        prop_assert!(connected.contains_key(&peer), "accepted while not connected");
                    }
                    Action::Goodbye { peer, reason } => {
                        if peer == ids[0] {
                            // Only failing Status sends the trusted peer away: never the
                            // peer count or its score.
                            prop_assert!(
                                matches!(
                                    reason,
                                    GoodbyeReason::IrrelevantNetwork
                                        | GoodbyeReason::UnableToVerifyNetwork
                                ),
                                "trusted peer got {:?}",
                                reason
                            );
                        }
                        let n = goodbyes.entry(peer).or_default();
                        *n += 1;
                        prop_assert!(*n <= 1, "two Goodbyes on one connection");
                        prop_assert!(connected.contains_key(&peer), "Goodbye to a peer not connected");
                    }
                    Action::Ban { peer, .. } => {
                        prop_assert!(peer != ids[0], "the trusted peer was banned");
                    }
                    _ => {}
                }
            }
            // The store stays bounded: live and dialing peers plus the two caps (and the
            // trusted one). Dials in flight are bounded themselves.
            let live = connected.len();
            let dialing = m.peers().filter(|(_, p)| p.conn == ConnState::Dialing).count();
            prop_assert!(dialing <= 8, "{} dials in flight (max_concurrent_dials 8)", dialing);
            prop_assert!(
                m.peers().count() <= live + dialing + 5 + 3 + 1 + 1,
                "store: {} ({} live, {} dialing)", m.peers().count(), live, dialing
            );
            prop_assert!(m.accepted_count() <= live);
        }
    }
}
