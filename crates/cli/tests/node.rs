//! `plexus node` against in-process beacon-node stand-ins on loopback: each answers Status
//! (with a given fork digest, head and finalized epoch) over plexus-reqresp and, when asked,
//! runs gossipsub with the Ethereum profile on the `beacon_block` topic of the minimal
//! network. The binary is run as a user runs it and its JSON lines are checked.

use std::sync::Arc;
use std::time::Duration;

use plexus_core::PeerId;
use plexus_eth::ssz_types::BitVector;
use plexus_eth::{
    Fork, ForkDigest, ForkSchedule, GoodbyeReason, GossipKind, GossipTopic, MetaDataV3, Network,
    StatusV2,
};
use plexus_gossipsub::{Event, GossipEvent, Gossipsub, GossipsubService, ServiceConfig};
use plexus_host::Host;
use plexus_reqresp::{
    Protocol, ReqResp, ReqRespConfig, ReqRespEvent, ReqRespHandle, Request, RespondError,
    Responder, ResponseSink, status_answer,
};
use serde_json::Value;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

mod common;
use common::{Proc, addr_of, dump, host, of};

const HEAD_SLOT: u64 = 4_321;
const FINALIZED_EPOCH: u64 = 130;
/// The block the stand-in publishes.
const SLOT: u64 = 4_322;
const PROPOSER: u64 = 77;
const WAIT: Duration = Duration::from_secs(20);

/// The minimal network as `plexus node --network minimal` sees it: no built-in genesis
/// validators root, so zero.
fn schedule() -> Arc<ForkSchedule> {
    Arc::new(ForkSchedule::new(Network::Minimal.config(), [0; 32]).unwrap())
}

/// The minimal network's digest (phase 0 at every epoch).
fn digest() -> ForkDigest {
    schedule().digest_at(0)
}

fn block_topic(d: ForkDigest) -> String {
    GossipTopic::new(d, GossipKind::BeaconBlock).to_string()
}

/// A `SignedBeaconBlock`-shaped payload: `message` at offset 100 (after the signature), its
/// `slot` and `proposer_index` first, then filler for the rest of the block.
fn signed_block(slot: u64, proposer: u64, len: usize) -> Vec<u8> {
    let mut b: Vec<u8> = (0..len).map(|i| (i % 7) as u8).collect();
    b[0..4].copy_from_slice(&100u32.to_le_bytes());
    b[100..108].copy_from_slice(&slot.to_le_bytes());
    b[108..116].copy_from_slice(&proposer.to_le_bytes());
    b
}

/// Answers Status with its digest, head and finalized checkpoint.
struct StatusOf(ForkDigest);

impl Responder for StatusOf {
    fn protocols(&self) -> Vec<Protocol> {
        vec![Protocol::StatusV1, Protocol::StatusV2]
    }

    fn respond<'a>(
        &'a self,
        _: PeerId,
        request: Request,
        sink: &'a mut ResponseSink,
    ) -> plexus_core::BoxFut<'a, Result<(), RespondError>> {
        let v2 = StatusV2 {
            fork_digest: self.0,
            finalized_root: [3; 32],
            finalized_epoch: FINALIZED_EPOCH,
            head_root: [4; 32],
            head_slot: HEAD_SLOT,
            earliest_available_slot: 0,
        };
        let ssz = status_answer(&request, v2);
        Box::pin(async move {
            let Some(ssz) = ssz else {
                return Err(RespondError::ServerError("not served".into()));
            };
            sink.send(&ssz, 0)
                .await
                .map_err(|e| RespondError::ServerError(e.to_string()))
        })
    }
}

/// A beacon node stand-in.
struct StandIn {
    host: Host,
    rr: ReqRespHandle,
    gossip: Option<(Gossipsub, mpsc::Receiver<GossipEvent>)>,
}

impl StandIn {
    fn id(&self) -> String {
        self.host.peer_id().to_string()
    }
}

async fn stand_in(digest: ForkDigest, with_gossip: bool) -> StandIn {
    let h = host(Vec::new()).await;
    let s = schedule();
    let cfg = ReqRespConfig::new(&s, Arc::new(|| 0));
    let md = MetaDataV3 {
        seq_number: 1,
        attnets: BitVector::new(),
        syncnets: BitVector::new(),
        custody_group_count: 4,
    };
    let rr = ReqResp::spawn(h.clone(), s.clone(), cfg, Arc::new(StatusOf(digest)), md).unwrap();
    let gossip = if with_gossip {
        let mut gc = plexus_eth_gossip::gossipsub_config(&s, None);
        // No peer manager here: every peer may join its meshes.
        gc.accept_by_default = true;
        // The node grafts first (once its peer manager accepted our Status); a graft of
        // ours before that would be refused with a 10 s backoff.
        gc.heartbeat_initial_delay = Duration::from_secs(3);
        let (g, events) =
            GossipsubService::spawn(h.clone(), gc, ServiceConfig::default(), None).unwrap();
        g.subscribe(block_topic(digest)).await.unwrap();
        Some((g, events))
    } else {
        None
    };
    StandIn {
        host: h,
        rr,
        gossip,
    }
}

/// The id of the first message on `rx` within `limit`, skipping other events.
async fn next_message(rx: &mut mpsc::Receiver<GossipEvent>, limit: Duration) -> Option<String> {
    let end = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(end, rx.recv()).await {
            Ok(Some(GossipEvent::Router(Event::Message { id, .. }))) => {
                return Some(id.to_string());
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => return None,
        }
    }
}

fn is(ev: &Value, name: &str, peer: &str) -> bool {
    ev["event"] == name && ev["peer_id"] == peer
}

/// Two stand-ins on the minimal network, A and B, both dialed by the node. A publishes a
/// block; the node prints it. B is connected only to the node, so it gets the block only
/// if the node relays it.
fn watch_two_stand_ins(relay: bool) {
    let rt = Runtime::new().unwrap();
    let d = digest();
    let a = rt.block_on(stand_in(d, true));
    let mut b = rt.block_on(stand_in(d, true));
    let (addr_a, addr_b) = (addr_of(&a.host), addr_of(&b.host));
    let d_hex = format!("0x{d}");
    let mut args = vec![
        "--json",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "node",
        "--network",
        "minimal",
        "--fork-digest",
        &d_hex,
        "--peer",
        &addr_a,
        "--peer",
        &addr_b,
        "--summary",
        "0.5",
        "--duration",
        "120",
    ];
    if relay {
        args.push("--relay");
    }
    let node = Proc::spawn(&args);

    let ready = node.wait_for("ready", WAIT, |e| e["event"] == "ready");
    assert_eq!(ready["fork"], "phase0");
    assert_eq!(ready["fork_digest"], d.to_string());
    assert_eq!(ready["relay"], relay);
    // Phase 0's global topics, on our digest.
    let topics: Vec<&str> = ready["topics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    let mut want: Vec<String> = [
        "beacon_block",
        "beacon_aggregate_and_proof",
        "voluntary_exit",
        "proposer_slashing",
        "attester_slashing",
    ]
    .iter()
    .map(|n| format!("/eth2/{d}/{n}/ssz_snappy"))
    .collect();
    want.sort();
    assert_eq!(topics, want);

    for s in [&a, &b] {
        let id = s.id();
        let status = node.wait_for("the stand-in's Status", WAIT, |e| is(e, "status", &id));
        assert_eq!(status["fork_digest"], d.to_string(), "{status}");
        assert_eq!(status["fork"], "phase0");
        assert_eq!(status["relevant"], true);
        assert_eq!(status["head_slot"], HEAD_SLOT);
        assert_eq!(status["finalized_epoch"], FINALIZED_EPOCH);
        let graft = node.wait_for("a beacon_block mesh with the stand-in", WAIT, |e| {
            is(e, "graft", &id) && e["topic"] == "beacon_block"
        });
        assert_eq!(graft["by"], "local", "the node grafted: {graft}");
    }

    let ssz = signed_block(SLOT, PROPOSER, 3_000);
    let max = GossipKind::BeaconBlock.max_uncompressed_len(Fork::Phase0, schedule().config());
    let data = plexus_eth::encode_gossip(&ssz, max).unwrap();
    let (ga, _) = a.gossip.as_ref().unwrap();
    let id = rt
        .block_on(ga.publish(block_topic(d), data.clone()))
        .unwrap()
        .unwrap()
        .to_string();

    let m = node.wait_for("the block", WAIT, |e| {
        e["event"] == "gossip" && e["id"] == id.as_str()
    });
    assert_eq!(m["topic"], "beacon_block", "{m}");
    assert_eq!(m["slot"], SLOT);
    assert_eq!(m["proposer_index"], PROPOSER);
    assert_eq!(m["from"], a.id());
    assert_eq!(m["size"], ssz.len());
    assert_eq!(m["compressed_size"], data.len());
    assert!(data.len() < ssz.len(), "the filler compresses");
    assert_eq!(m["fork_digest"], d.to_string());
    assert_eq!(m["verdict"], if relay { "accept" } else { "ignore" });

    let (_, b_events) = b.gossip.as_mut().unwrap();
    if relay {
        let got = rt.block_on(next_message(b_events, WAIT));
        assert_eq!(got.as_deref(), Some(id.as_str()), "the node relays to B");
    } else {
        // The node reported Ignore as it printed the message: a relay would have followed
        // at once.
        let got = rt.block_on(next_message(b_events, Duration::from_secs(2)));
        assert_eq!(got, None, "the node must not relay without --relay");
    }

    let summary = node.wait_for("a summary with the block", WAIT, |e| {
        e["event"] == "summary" && e["topics"]["beacon_block"]["total"] == 1
    });
    assert_eq!(summary["peers"], 2, "{summary}");
    assert_eq!(summary["accepted_peers"], 2, "{summary}");
    assert_eq!(summary["topics"]["beacon_block"]["mesh"], 2, "{summary}");
    assert_eq!(summary["topics"]["voluntary_exit"]["total"], 0, "{summary}");
    // Nothing was refused, and each message was printed once.
    let evs = node.events();
    assert!(of(&evs, "gossip_refused").is_empty(), "{}", dump(&evs));
    assert_eq!(of(&evs, "gossip").len(), 1, "{}", dump(&evs));
    drop(node);
    for s in [a, b] {
        rt.block_on(s.host.shutdown());
    }
}

#[test]
fn node_prints_status_mesh_and_a_block_and_does_not_relay_by_default() {
    watch_two_stand_ins(false);
}

#[test]
fn node_relays_with_relay() {
    watch_two_stand_ins(true);
}

#[test]
fn a_peer_on_another_fork_gets_goodbye_irrelevant_network() {
    let rt = Runtime::new().unwrap();
    let wrong = ForkDigest([0xde, 0xad, 0xbe, 0xef]);
    let w = rt.block_on(stand_in(wrong, false));
    let mut said = w.rr.events();
    let addr = addr_of(&w.host);
    let mut node = Proc::spawn(&[
        "--json",
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "node",
        "--network",
        "minimal",
        "--peer",
        &addr,
        "--topic",
        "beacon_block",
        "--topic",
        "voluntary_exit",
        "--duration",
        "6",
    ]);
    let ready = node.wait_for("ready", WAIT, |e| e["event"] == "ready");
    let d = digest();
    assert_eq!(
        ready["topics"],
        serde_json::json!([
            block_topic(d),
            GossipTopic::new(d, GossipKind::VoluntaryExit).to_string()
        ]),
        "--topic picks the topics"
    );
    let id = w.id();
    let status = node.wait_for("its Status", WAIT, |e| is(e, "status", &id));
    assert_eq!(status["fork_digest"], "deadbeef");
    assert_eq!(status["relevant"], false);
    assert_eq!(status["fork"], Value::Null, "not a digest of this network");
    assert_eq!(status["our_fork_digest"], d.to_string());
    let bye = node.wait_for("a Goodbye", WAIT, |e| is(e, "goodbye", &id));
    assert_eq!(bye["direction"], "sent");
    assert_eq!(bye["reason"], "irrelevant_network");
    assert_eq!(bye["code"], 2);
    let closed = node.wait_for("the close", WAIT, |e| is(e, "connection_closed", &id));
    assert_eq!(closed["goodbye"], "irrelevant_network", "{closed}");
    assert_eq!(closed["goodbye_sent"], true);

    // --duration ends it, cleanly.
    let status = node.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "{status}");
    let evs = node.events();
    let pos = |name: &str| evs.iter().position(|e| is(e, name, &id)).unwrap();
    assert!(pos("status") < pos("goodbye") && pos("goodbye") < pos("connection_closed"));
    assert!(
        of(&evs, "graft").is_empty(),
        "never in a mesh: {}",
        dump(&evs)
    );
    assert_eq!(evs.last().unwrap()["event"], "stopped", "{}", dump(&evs));

    // The stand-in heard it too.
    let node_id: PeerId = ready["peer_id"].as_str().unwrap().parse().unwrap();
    let mut heard = Vec::new();
    while let Ok(ev) = said.try_recv() {
        if let ReqRespEvent::Goodbye { peer, reason } = ev {
            heard.push((peer, reason));
        }
    }
    assert_eq!(heard, vec![(node_id, GoodbyeReason::IrrelevantNetwork)]);
    rt.block_on(w.host.shutdown());
}

#[test]
fn bad_node_arguments_are_bad_usage() {
    let run = |args: &[&str]| {
        std::process::Command::new(common::BIN)
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["node", "--topic", "beacon_blocks"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown topic name"));
    let out = run(&[
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "node",
        "--network",
        "minimal",
        "--fork-digest",
        "0xdeadbeef",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not one of this network's"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["node", "--duration", "0"]);
    assert_eq!(out.status.code(), Some(2));
}
