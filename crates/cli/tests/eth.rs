//! `plexus eth status` and `plexus eth blocks` against in-process beacon-node stand-ins: a
//! current node (yamux, status/2, metadata/3) served by plexus-reqresp, and an older node
//! written against the wire format alone (mplex only, status/1, metadata/2).

use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use plexus_core::PeerId;
use plexus_eth::ssz::Encode;
use plexus_eth::ssz_types::BitVector;
use plexus_eth::{
    Fork, ForkDigest, ForkSchedule, MetaDataV2, MetaDataV3, Network, StatusV1, StatusV2,
};
use plexus_host::{HandlerOpts, Host};
use plexus_reqresp::{
    CodecConfig, EpochClock, Protocol, ReqResp, ReqRespConfig, Request, RespondError, Responder,
    ResponseSink, decode_request_bytes, encode_success_chunk,
};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

mod common;
use common::{BIN, addr_of, host, of};

fn schedule() -> Arc<ForkSchedule> {
    Arc::new(ForkSchedule::for_network(Network::Mainnet).unwrap())
}

fn first_slot_of(fork: Fork) -> u64 {
    let s = schedule();
    s.entries().iter().find(|e| e.fork == fork).unwrap().epoch * 32
}

fn digest_at_slot(slot: u64) -> ForkDigest {
    schedule().digest_at(slot / 32)
}

/// A block-shaped payload: `message` offset 100, then the slot; `len` bytes.
fn block(slot: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    b[0..4].copy_from_slice(&100u32.to_le_bytes());
    b[100..108].copy_from_slice(&slot.to_le_bytes());
    for (i, x) in b.iter_mut().enumerate().skip(108) {
        *x = (i % 13) as u8;
    }
    b
}

fn run(args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.wait_with_output().unwrap()
}

fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

const HEAD_SLOT: u64 = 13_200_000;

/// A current node: answers status/2 with a known head and serves blocks at every slot.
struct Current;

impl Responder for Current {
    fn protocols(&self) -> Vec<Protocol> {
        vec![Protocol::StatusV2, Protocol::BeaconBlocksByRangeV2]
    }

    fn respond<'a>(
        &'a self,
        _: PeerId,
        request: Request,
        sink: &'a mut ResponseSink,
    ) -> plexus_core::BoxFut<'a, Result<(), RespondError>> {
        Box::pin(async move {
            match request {
                Request::StatusV2(theirs) => {
                    let ours = StatusV2 {
                        fork_digest: theirs.fork_digest,
                        finalized_root: [7; 32],
                        finalized_epoch: HEAD_SLOT / 32 - 2,
                        head_root: [9; 32],
                        head_slot: HEAD_SLOT,
                        earliest_available_slot: 4_096,
                    };
                    sink.send(&ours.as_ssz_bytes(), 0)
                        .await
                        .map_err(|e| RespondError::ServerError(e.to_string()))
                }
                Request::BeaconBlocksByRangeV2(r) => {
                    for slot in r.start_slot..r.start_slot + r.count {
                        sink.send(&block(slot, 2_000 + (slot % 3) as usize * 500), slot)
                            .await
                            .map_err(|e| RespondError::ServerError(e.to_string()))?;
                    }
                    Ok(())
                }
                _ => Err(RespondError::ServerError("not served".into())),
            }
        })
    }
}

#[test]
fn status_metadata_and_blocks_from_a_current_node() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = rt.block_on(host(Vec::new()));
    let _rr = rt.block_on(async {
        let s = schedule();
        let clock: EpochClock = Arc::new(|| HEAD_SLOT / 32);
        let cfg = ReqRespConfig::new(&s, clock);
        let md = MetaDataV3 {
            seq_number: 42,
            attnets: BitVector::new(),
            syncnets: BitVector::new(),
            custody_group_count: 8,
        };
        ReqResp::spawn(h.clone(), s, cfg, Arc::new(Current), md).unwrap()
    });
    let addr = addr_of(&h);

    let out = run(&["--json", "eth", "status", &addr, "--network", "mainnet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out);
    let status = of(&evs, "status");
    assert_eq!(status.len(), 1, "{evs:?}");
    let s = status[0];
    assert_eq!(s["protocol"], "status/2");
    assert_eq!(s["head_slot"], HEAD_SLOT);
    assert_eq!(s["head_root"], format!("0x{}", "09".repeat(32)));
    assert_eq!(s["finalized_epoch"], HEAD_SLOT / 32 - 2);
    assert_eq!(s["earliest_available_slot"], 4_096);
    // The node echoes the digest we sent: ours is mainnet's at the wall-clock epoch.
    let now_digest = schedule().digest_at(
        (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1_606_824_023)
            / 12
            / 32,
    );
    assert_eq!(s["fork_digest"], now_digest.to_string());
    assert_eq!(s["our_fork_digest"], now_digest.to_string());
    assert!(s["fork"].is_string());
    let md = of(&evs, "metadata");
    assert_eq!(md.len(), 1);
    assert_eq!(md[0]["protocol"], "metadata/3");
    assert_eq!(md[0]["seq_number"], 42);
    assert_eq!(md[0]["custody_group_count"], 8);
    assert_eq!(md[0]["attnets"], "0x0000000000000000");

    // Blocks across the Electra → Fulu boundary: the context bytes change with the slot.
    let from = first_slot_of(Fork::Fulu) - 2;
    let out = run(&[
        "--json",
        "eth",
        "blocks",
        &addr,
        "--from",
        &from.to_string(),
        "--count",
        "4",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out);
    let blocks = of(&evs, "block");
    assert_eq!(blocks.len(), 4, "{evs:?}");
    for (i, b) in blocks.iter().enumerate() {
        let slot = from + i as u64;
        assert_eq!(b["slot"], slot);
        assert_eq!(b["size"], 2_000 + (slot % 3) as usize * 500);
        assert_eq!(b["context"], digest_at_slot(slot).to_string());
        let fork = if i < 2 { "electra" } else { "fulu" };
        assert_eq!(b["fork"], fork);
        assert!(b["ms"].as_f64().unwrap() >= 0.0);
    }
    let done = of(&evs, "blocks_done");
    assert_eq!(done[0]["blocks"], 4);
    assert_eq!(
        done[0]["protocol"],
        "/eth2/beacon_chain/req/beacon_blocks_by_range/2/ssz_snappy"
    );
    rt.block_on(h.shutdown());
}

/// An older node (pre-Fulu software): mplex only, `status/1`, `metadata/2` and
/// `beacon_blocks_by_range/2`, written against the wire format with the codec's functions.
async fn old_node() -> Host {
    let mplex: Arc<dyn plexus_core::MuxerUpgrade> = Arc::new(plexus_mplex::MplexConfig::new(
        Default::default(),
        Default::default(),
    ));
    let h = host(vec![mplex]).await;
    let s = schedule();
    for p in [
        Protocol::StatusV1,
        Protocol::MetaDataV2,
        Protocol::BeaconBlocksByRangeV2,
    ] {
        let mut incoming = h.handle(p.id(), HandlerOpts::default()).unwrap();
        let s = s.clone();
        tokio::spawn(async move {
            while let Some(mut inb) = incoming.next().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let cfg = CodecConfig::default();
                    let mut req = Vec::new();
                    if p != Protocol::MetaDataV2 {
                        inb.stream.read_to_end(&mut req).await.unwrap();
                    }
                    let mut out = Vec::new();
                    match p {
                        Protocol::StatusV1 => {
                            let ssz = decode_request_bytes(p, cfg, &req).unwrap();
                            let theirs = Request::from_ssz(p, &ssz).unwrap();
                            let Request::StatusV1(t) = theirs else {
                                panic!("{theirs:?}")
                            };
                            let ours = StatusV1 {
                                fork_digest: t.fork_digest,
                                finalized_root: [1; 32],
                                finalized_epoch: 100,
                                head_root: [2; 32],
                                head_slot: 3_300,
                            };
                            encode_success_chunk(p, None, &ours.as_ssz_bytes(), &s, &cfg, &mut out)
                                .unwrap();
                        }
                        Protocol::MetaDataV2 => {
                            let mut attnets = BitVector::new();
                            attnets.set(3, true).unwrap();
                            let md = MetaDataV2 {
                                seq_number: 7,
                                attnets,
                                syncnets: BitVector::new(),
                            };
                            encode_success_chunk(p, None, &md.as_ssz_bytes(), &s, &cfg, &mut out)
                                .unwrap();
                        }
                        _ => {
                            let ssz = decode_request_bytes(p, cfg, &req).unwrap();
                            let Request::BeaconBlocksByRangeV2(r) =
                                Request::from_ssz(p, &ssz).unwrap()
                            else {
                                panic!("not a range request")
                            };
                            for slot in r.start_slot..r.start_slot + r.count {
                                let d = digest_at_slot(slot);
                                encode_success_chunk(
                                    p,
                                    Some(d),
                                    &block(slot, 2_000),
                                    &s,
                                    &cfg,
                                    &mut out,
                                )
                                .unwrap();
                            }
                        }
                    }
                    inb.stream.write_all(&out).await.unwrap();
                    inb.stream.shutdown().await.unwrap();
                });
            }
        });
    }
    h
}

#[test]
fn status_metadata_and_blocks_from_an_older_mplex_only_node() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let h = rt.block_on(old_node());
    let addr = addr_of(&h);
    let out = run(&["--json", "eth", "status", &addr]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out);
    let conn = of(&evs, "connection_opened");
    assert_eq!(conn[0]["muxer"], "/mplex/6.7.0");
    let s = of(&evs, "status");
    assert_eq!(s[0]["protocol"], "status/1");
    assert_eq!(s[0]["head_slot"], 3_300);
    assert_eq!(s[0]["finalized_epoch"], 100);
    assert!(s[0].get("earliest_available_slot").is_none());
    let md = of(&evs, "metadata");
    assert_eq!(md[0]["protocol"], "metadata/2");
    assert_eq!(md[0]["seq_number"], 7);
    assert_eq!(md[0]["attnets"], "0x0800000000000000");
    assert_eq!(md[0]["custody_group_count"], Value::Null);

    let from = first_slot_of(Fork::Deneb) + 5;
    let out = run(&[
        "--json",
        "eth",
        "blocks",
        &addr,
        "--from",
        &from.to_string(),
        "--count",
        "3",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out);
    let blocks = of(&evs, "block");
    assert_eq!(blocks.len(), 3);
    for (i, b) in blocks.iter().enumerate() {
        assert_eq!(b["slot"], from + i as u64);
        assert_eq!(b["fork"], "deneb");
        assert_eq!(b["context"], digest_at_slot(from).to_string());
    }
    rt.block_on(h.shutdown());
}

#[test]
fn bad_eth_arguments_are_bad_usage() {
    let out = run(&[
        "eth",
        "blocks",
        "/ip4/127.0.0.1/tcp/1",
        "--from",
        "1",
        "--count",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2), "count 0 is bad usage");
    let out = run(&[
        "eth",
        "status",
        "/ip4/127.0.0.1/tcp/1",
        "--network",
        "nonet",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown network"));
}
