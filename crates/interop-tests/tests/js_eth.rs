//! Ethereum Req/Resp and the Ethereum gossip encoding: plexus ⇄ Lodestar's published packages.
//!
//! The js side is `js/eth.mjs` (Node.js), a js-libp2p 2.x node (TCP, Noise, one muxer) whose
//! wire format is `@lodestar/reqresp` 1.5.1's codec (request and response encoders, the
//! ssz_snappy reader: varint, SSZ bounds, snappy frames), with SSZ types from
//! `@lodestar/types` 1.50.0, fork digests and slot → fork from `@lodestar/config` 1.48.0
//! (its built-in mainnet, Sepolia and Hoodi configs and genesis validators roots) and gossip
//! snappy from `snappyjs` 0.7.0; `eth.mjs` says what is glue and which two shortcomings of the
//! 1.5.1 response reader it works around. Pinned in `js/package-lock.json`, installed with
//! `npm ci` once per test binary (the helpers below are copied from `js_libp2p.rs`).
//!
//! Checked:
//! - `lodestar_fork_digests_match_plexus`: every fork boundary of mainnet, Sepolia and Hoodi
//!   (BPO forks included) has the same epoch, fork and digest in Lodestar's config as in
//!   plexus's `ForkSchedule` (Gloas excepted: Lodestar 1.48 schedules it on none of them).
//! - `plexus_requests_js_*` (plexus requester, js responder; yamux and mplex): Status (every
//!   field both ways, `status/2` and an explicit `status/1`), Ping (both sequence numbers),
//!   MetaData `/3`, `/2` and `/1` (every field), BeaconBlocksByRange v2 across Electra → Fulu
//!   and Fulu → BPO1 with skipped slots: plexus's `ResponseStream` yields exactly the chunks
//!   js sent (SSZ bytes, context bytes, fork, order), and a range before js's earliest slot is
//!   `ReqRespError::ResourceUnavailable` with js's message; Goodbye reaches js with its reason.
//! - `plexus_requests_old_js_mplex`: a pre-Fulu js (mplex only, `status/1`, `metadata/2`):
//!   plexus falls back to `Status::V1` and `MetaData::V2`; blocks across Capella → Deneb.
//! - `js_requests_plexus_*` (js requester, plexus responder with a test `Responder`; yamux and
//!   mplex): js decodes plexus's Status v2 and v1, Ping, MetaData v3/v2/v1, blocks (fork from
//!   plexus's context bytes via Lodestar's config, exact SSZ bytes) and a ResourceUnavailable
//!   error with plexus's message; plexus's responder saw js's Status fields, its ping and its
//!   goodbye reason, and no inbound request failed.
//! - `gossip_encoding_matches_js`: js compresses (snappy block format) and computes the message
//!   id (the phase 0 or Altair rule picked from the topic's digest by Lodestar's config,
//!   SHA-256 from node:crypto); plexus's `decode_gossip`, `ForkSchedule::message_id` and
//!   `decode_message` agree; plexus compresses and js decompresses the same payload and
//!   computes the same id; invalid snappy gets the same invalid-domain id on both sides.
//!
//! No `node`/`npm` on PATH fails every test with one line saying what to install.

#[path = "common/js.rs"]
mod js_common;
use js_common::{Line, Node, npm_ready, spawn_node};

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use plexus_core::{Blame, BoxFut};
use plexus_eth::ssz_types::BitVector;
use plexus_eth::{
    Fork, ForkDigest, ForkSchedule, GoodbyeReason, MetaDataV1, MetaDataV2, MetaDataV3, Network,
    Slot, StatusV1, StatusV2, decode_gossip, decode_ssz, encode_gossip, encode_ssz,
};
use plexus_host::{Host, HostConfig, PeerId};
use plexus_identity::Keypair;
use plexus_mplex::MplexConfig;
use plexus_multiaddr::{Multiaddr, Protocol as Addr};
use plexus_reqresp::{
    MetaData, Protocol, ReqResp, ReqRespConfig, ReqRespError, ReqRespEvent, ReqRespHandle, Request,
    RespondError, Responder, ResponseSink, Status,
};
use plexus_yamux::YamuxConfig;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStdin};
use tokio::sync::{broadcast, mpsc};

/// Time for one wait: a js line, a response.
const WAIT: Duration = Duration::from_secs(10);
/// Time for a whole test.
const LIMIT: Duration = Duration::from_secs(90);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mux {
    Yamux,
    Mplex,
}

impl Mux {
    fn name(self) -> &'static str {
        match self {
            Mux::Yamux => "yamux",
            Mux::Mplex => "mplex",
        }
    }

    fn protocol(self) -> &'static str {
        match self {
            Mux::Yamux => "/yamux/1.0.0",
            Mux::Mplex => "/mplex/6.7.0",
        }
    }
}

// ---------- installing the js side (as in js_libp2p.rs) ----------

// ---------- the js side ----------

impl Line {
    fn has(&self, key: &str) -> bool {
        self.fields.iter().any(|(k, _)| k == key)
    }

    fn u64(&self, key: &str) -> u64 {
        self.get(key)
            .parse()
            .unwrap_or_else(|e| panic!("{key} in {self:?}: {e}"))
    }

    fn bytes(&self, key: &str) -> Vec<u8> {
        unhex(self.get(key).trim_start_matches("0x"))
    }

    fn root(&self, key: &str) -> [u8; 32] {
        self.bytes(key)
            .try_into()
            .unwrap_or_else(|_| panic!("{key} is not 32 bytes in {self:?}"))
    }

    fn digest(&self, key: &str) -> ForkDigest {
        self.get(key)
            .parse()
            .unwrap_or_else(|e| panic!("{key} in {self:?}: {e}"))
    }
}

/// `node eth.mjs …`: commands on stdin, lines on stdout. Lines nobody waited for yet are
/// kept, so inbound-request reports and command answers can interleave.
struct Js {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Line>,
    backlog: VecDeque<Line>,
    stderr: Arc<Mutex<String>>,
}

impl Js {
    fn spawn(args: &[&str]) -> Js {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let Node {
            child,
            stdin,
            lines,
            stderr,
        } = spawn_node("eth.mjs", &args, 256);
        Js {
            child,
            stdin,
            lines,
            backlog: VecDeque::new(),
            stderr,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// The first line with `event` (kept ones first), within `WAIT`; panics on an `error`
    /// line or an early exit.
    async fn expect(&mut self, event: &str) -> Line {
        self.expect_with(event, |_| true).await
    }

    /// The first line with `event` that `pick` accepts (kept ones first), within `WAIT`.
    async fn expect_with(&mut self, event: &str, pick: impl Fn(&Line) -> bool) -> Line {
        if let Some(i) = self
            .backlog
            .iter()
            .position(|l| l.event == event && pick(l))
        {
            return self.backlog.remove(i).unwrap();
        }
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            let l = match tokio::time::timeout_at(end, self.lines.recv()).await {
                Err(_) => panic!(
                    "no {event:?} line from js within {WAIT:?}; kept: {:?}\nstderr:\n{}",
                    self.backlog,
                    self.stderr()
                ),
                Ok(None) => {
                    let status = self.child.wait().await;
                    panic!(
                        "js exited ({status:?}) before {event:?}; stderr:\n{}",
                        self.stderr()
                    );
                }
                Ok(Some(l)) => l,
            };
            if l.event == "error" {
                panic!(
                    "js failed in {}: {}\nstderr:\n{}",
                    l.get("where"),
                    l.get("message"),
                    self.stderr()
                );
            }
            if l.event == event && pick(&l) {
                return l;
            }
            self.backlog.push_back(l);
        }
    }

    /// The next `request` line, which must be for `protocol`.
    async fn expect_request(&mut self, protocol: Protocol) -> Line {
        let l = self.expect("request").await;
        assert_eq!(l.get("protocol"), protocol.id(), "{l:?}");
        l
    }

    async fn send(&mut self, fields: &[&str]) {
        let mut line = fields.join("\t");
        line.push('\n');
        let stdin = self.stdin.as_mut().expect("js stdin is open");
        stdin
            .write_all(line.as_bytes())
            .await
            .expect("writing a command to js");
        stdin.flush().await.expect("flushing js's stdin");
    }

    /// Send a command (name, then arguments) and wait for its answer.
    async fn ask(&mut self, fields: &[&str], reply: &str) -> Line {
        self.send(fields).await;
        self.expect(reply).await
    }

    /// Close its stdin (it stops then) and check it exits cleanly.
    async fn finish(mut self) {
        drop(self.stdin.take());
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("js exits once its stdin closes")
            .unwrap();
        assert!(
            status.success(),
            "js exited with {status}; stderr:\n{}",
            self.stderr()
        );
    }
}

/// `npm ci` if needed, then start `eth.mjs` with `args` and wait for "started".
async fn start_js(args: &[&str]) -> (Js, Line) {
    tokio::task::spawn_blocking(npm_ready)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut js = Js::spawn(args);
    let started = js.expect("started").await;
    (js, started)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length {}", s.len());
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or_else(|e| panic!("hex {s:?}: {e}")))
        .collect()
}

// ---------- the chain both sides agree on ----------

fn mainnet() -> Arc<ForkSchedule> {
    Arc::new(ForkSchedule::for_network(Network::Mainnet).expect("mainnet schedule"))
}

/// The first epoch of `fork`'s `nth` digest (0: the fork itself, 1: its first BPO fork, …).
fn epoch_of(s: &ForkSchedule, fork: Fork, nth: usize) -> u64 {
    s.entries()
        .iter()
        .filter(|e| e.fork == fork)
        .nth(nth)
        .unwrap_or_else(|| panic!("{fork} digest {nth} scheduled"))
        .epoch
}

fn first_slot(s: &ForkSchedule, epoch: u64) -> Slot {
    epoch * s.config().preset.slots_per_epoch()
}

fn digest_at_slot(s: &ForkSchedule, slot: Slot) -> ForkDigest {
    s.digest_at(s.config().epoch_at_slot(slot))
}

fn fork_at_slot(s: &ForkSchedule, slot: Slot) -> Fork {
    s.fork_at(s.config().epoch_at_slot(slot))
}

fn fork_named(name: &str) -> Fork {
    Fork::ALL
        .into_iter()
        .find(|f| f.name() == name)
        .unwrap_or_else(|| panic!("unknown fork {name:?}"))
}

/// plexus's wall clock: a while into mainnet's second BPO fork (Fulu request limits).
fn config(s: &Arc<ForkSchedule>) -> ReqRespConfig {
    let epoch = epoch_of(s, Fork::Fulu, 2) + 100;
    let mut cfg = ReqRespConfig::new(s, Arc::new(move || epoch));
    cfg.first_chunk_timeout = WAIT;
    cfg.chunk_timeout = WAIT;
    cfg
}

fn bits<const N: usize, T: plexus_eth::ssz_types::typenum::Unsigned + Clone>(
    set: [usize; N],
) -> BitVector<T> {
    let mut b = BitVector::new();
    for i in set {
        b.set(i, true).unwrap();
    }
    b
}

fn status_fields(s: &StatusV2) -> Vec<String> {
    vec![
        format!("fork_digest=0x{}", s.fork_digest),
        format!("finalized_root=0x{}", hex(&s.finalized_root)),
        format!("finalized_epoch={}", s.finalized_epoch),
        format!("head_root=0x{}", hex(&s.head_root)),
        format!("head_slot={}", s.head_slot),
        format!("earliest_available_slot={}", s.earliest_available_slot),
    ]
}

fn status_v1_of(l: &Line) -> StatusV1 {
    StatusV1 {
        fork_digest: l.digest("fork_digest"),
        finalized_root: l.root("finalized_root"),
        finalized_epoch: l.u64("finalized_epoch"),
        head_root: l.root("head_root"),
        head_slot: l.u64("head_slot"),
    }
}

fn status_v2_of(l: &Line) -> StatusV2 {
    let v1 = status_v1_of(l);
    StatusV2 {
        fork_digest: v1.fork_digest,
        finalized_root: v1.finalized_root,
        finalized_epoch: v1.finalized_epoch,
        head_root: v1.head_root,
        head_slot: v1.head_slot,
        earliest_available_slot: l.u64("earliest_available_slot"),
    }
}

fn metadata_fields(m: &MetaDataV3) -> Vec<String> {
    vec![
        format!("seq_number={}", m.seq_number),
        format!("attnets=0x{}", hex(m.attnets.as_slice())),
        format!("syncnets=0x{}", hex(m.syncnets.as_slice())),
        format!("custody_group_count={}", m.custody_group_count),
    ]
}

/// A js MetaData line against `m`: the fields of `version` and no others.
fn check_metadata_line(l: &Line, m: &MetaDataV3, version: u8) {
    assert_eq!(l.u64("seq_number"), m.seq_number, "{l:?}");
    assert_eq!(l.get("attnets"), format!("0x{}", hex(m.attnets.as_slice())));
    assert_eq!(l.has("syncnets"), version >= 2, "{l:?}");
    assert_eq!(l.has("custody_group_count"), version >= 3, "{l:?}");
    if version >= 2 {
        assert_eq!(
            l.get("syncnets"),
            format!("0x{}", hex(m.syncnets.as_slice()))
        );
    }
    if version >= 3 {
        assert_eq!(l.u64("custody_group_count"), m.custody_group_count);
    }
}

/// One block as js sent or decoded it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    slot: Slot,
    fork: Fork,
    context: ForkDigest,
    ssz: Vec<u8>,
}

impl Block {
    fn of(l: &Line) -> Block {
        Block {
            slot: l.u64("slot"),
            fork: fork_named(l.get("fork")),
            context: l.digest("context"),
            ssz: l.bytes("ssz"),
        }
    }
}

// ---------- the plexus side ----------

/// A plexus host offering only `mux`.
async fn plexus_host(mux: Mux) -> Host {
    let mut cfg = HostConfig::new(Keypair::generate_secp256k1());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    let limits = cfg.limits.mux.clone();
    cfg.muxers = match mux {
        Mux::Yamux => vec![Arc::new(YamuxConfig::new(Default::default(), limits))],
        Mux::Mplex => vec![Arc::new(MplexConfig::new(Default::default(), limits))],
    };
    Host::new(cfg).await.unwrap()
}

// ---------- fork digests ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lodestar_fork_digests_match_plexus() {
    let (mut js, _) = start_js(&["codec"]).await;
    for network in [Network::Mainnet, Network::Sepolia, Network::Hoodi] {
        let s = ForkSchedule::for_network(network).unwrap();
        let l = js.ask(&["digests", network.name()], "digests").await;
        // Lodestar lists each fork boundary; forks at one epoch collapse to the last, as in
        // plexus.
        let mut theirs: BTreeMap<u64, String> = BTreeMap::new();
        for e in l.get("entries").split(',') {
            let (fork, rest) = e.split_once('@').unwrap();
            let (epoch, digest) = rest.split_once(':').unwrap();
            theirs.insert(epoch.parse().unwrap(), format!("{fork}:{digest}"));
        }
        let ours: BTreeMap<u64, String> = s
            .entries()
            .iter()
            .filter(|e| e.fork != Fork::Gloas)
            .map(|e| (e.epoch, format!("{}:{}", e.fork, e.digest)))
            .collect();
        assert_eq!(
            ours, theirs,
            "{network:?}: plexus (left) vs Lodestar (right)"
        );
    }
    js.finish().await;
}

// ---------- plexus requests, js answers ----------

/// The Status js answers with (js is the responder in `plexus_requests_*`, the requester in
/// `js_requests_plexus_*`).
fn js_status(s: &ForkSchedule, earliest: Slot) -> StatusV2 {
    StatusV2 {
        fork_digest: s.digest_at(epoch_of(s, Fork::Fulu, 2) + 100),
        finalized_root: [0xf1; 32],
        finalized_epoch: epoch_of(s, Fork::Fulu, 2) + 98,
        head_root: std::array::from_fn(|i| i as u8),
        head_slot: first_slot(s, epoch_of(s, Fork::Fulu, 2) + 100) + 5,
        earliest_available_slot: earliest,
    }
}

fn js_metadata() -> MetaDataV3 {
    MetaDataV3 {
        seq_number: (1 << 40) + 7,
        attnets: bits([0, 9, 63]),
        syncnets: bits([1, 3]),
        custody_group_count: 8,
    }
}

fn plexus_status(s: &ForkSchedule) -> StatusV2 {
    StatusV2 {
        fork_digest: s.digest_at(epoch_of(s, Fork::Fulu, 2) + 100),
        finalized_root: [0xab; 32],
        finalized_epoch: epoch_of(s, Fork::Fulu, 2) + 97,
        head_root: std::array::from_fn(|i| 255 - i as u8),
        head_slot: first_slot(s, epoch_of(s, Fork::Fulu, 2) + 100) + 3,
        earliest_available_slot: first_slot(s, epoch_of(s, Fork::Deneb, 0)),
    }
}

fn plexus_metadata() -> MetaDataV3 {
    MetaDataV3 {
        seq_number: 42,
        attnets: bits([2, 33]),
        syncnets: bits([0]),
        custody_group_count: 4,
    }
}

/// Ask plexus for blocks by range and check them against what js says it sent.
async fn blocks_from_js(
    js: &mut Js,
    rr: &ReqRespHandle,
    peer: PeerId,
    s: &ForkSchedule,
    start: Slot,
    count: u64,
    want_slots: &[Slot],
) {
    let req = plexus_eth::BeaconBlocksByRangeRequest {
        start_slot: start,
        count,
        step: 1,
    };
    let mut stream = rr
        .request(peer, Request::BeaconBlocksByRangeV2(req))
        .await
        .unwrap();
    assert_eq!(stream.protocol(), Protocol::BeaconBlocksByRangeV2);
    let mut got = Vec::new();
    while let Some(c) = stream.next().await {
        let c = c.unwrap_or_else(|e| panic!("chunk {} of {start}+{count}: {e}", got.len()));
        got.push(c);
    }
    let l = js.expect_request(Protocol::BeaconBlocksByRangeV2).await;
    assert_eq!(
        (l.u64("start_slot"), l.u64("count"), l.u64("step")),
        (start, count, 1)
    );
    let mut sent = Vec::new();
    for _ in 0..want_slots.len() {
        let l = js
            .expect_with("served", |l| {
                l.get("protocol") == Protocol::BeaconBlocksByRangeV2.id()
            })
            .await;
        sent.push(Block::of(&l));
    }
    let slots: Vec<Slot> = sent.iter().map(|b| b.slot).collect();
    assert_eq!(slots, want_slots, "js served these slots");
    assert_eq!(got.len(), sent.len(), "plexus yielded every chunk js sent");
    for (c, b) in got.iter().zip(&sent) {
        // js's context and fork are Lodestar's; they must be plexus's too.
        assert_eq!(b.context, digest_at_slot(s, b.slot), "slot {}", b.slot);
        assert_eq!(b.fork, fork_at_slot(s, b.slot), "slot {}", b.slot);
        assert_eq!(c.context, Some(b.context), "slot {}", b.slot);
        assert_eq!(c.fork, Some(b.fork), "slot {}", b.slot);
        assert!(c.ssz == b.ssz, "slot {}: SSZ bytes differ", b.slot);
    }
}

async fn run_plexus_requests(mux: Mux, generation: &str) {
    let (mut js, started) = start_js(&["node", mux.name(), generation]).await;
    let current = generation == "current";
    let s = mainnet();
    let host = plexus_host(mux).await;
    let ours = plexus_status(&s);
    let rr = ReqResp::spawn(
        host.clone(),
        s.clone(),
        config(&s),
        Arc::new(plexus_reqresp::NoResponder),
        plexus_metadata(),
    )
    .unwrap();
    let limit = tokio::time::timeout(LIMIT, async {
        let js_peer: PeerId = started.get("peer").parse().unwrap();
        let js_addr: Multiaddr = js.expect("listening").await.get("addr").parse().unwrap();
        // Blocks around the fork boundaries the test crosses.
        let (a, b) = if current {
            (
                first_slot(&s, epoch_of(&s, Fork::Fulu, 0)),
                first_slot(&s, epoch_of(&s, Fork::Fulu, 1)),
            )
        } else {
            (
                first_slot(&s, epoch_of(&s, Fork::Deneb, 0)),
                first_slot(&s, epoch_of(&s, Fork::Deneb, 0)) + 64,
            )
        };
        let have = [a - 3, a - 1, a, a + 2, b - 1, b, b + 1];
        let earliest = a - 10;
        let theirs = js_status(&s, earliest);
        let mut args = vec!["set_status".to_owned()];
        args.extend(status_fields(&theirs));
        js.ask(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            "status_set",
        )
        .await;
        let mut args = vec!["set_metadata".to_owned()];
        args.extend(metadata_fields(&js_metadata()));
        js.ask(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            "metadata_set",
        )
        .await;
        let have_list: Vec<String> = have.iter().map(u64::to_string).collect();
        js.ask(&["serve_blocks", &have_list.join(",")], "blocks_set")
            .await;

        let conn = host.connect(vec![js_addr]).await.unwrap();
        assert_eq!(conn.peer, js_peer, "plexus authenticated js");
        assert_eq!(conn.muxer, mux.protocol());

        // Status: plexus proposes status/2 first; an old js has only status/1.
        let got = rr.status(js_peer, ours).await.unwrap();
        if current {
            assert_eq!(got, Status::V2(theirs));
            let l = js.expect_request(Protocol::StatusV2).await;
            assert_eq!(status_v2_of(&l), ours, "js decoded our status/2");
            let (p, c) = rr
                .request_one(js_peer, Request::StatusV1(ours.into()))
                .await
                .unwrap();
            assert_eq!(p, Protocol::StatusV1);
            assert_eq!(decode_ssz::<StatusV1>(&c.ssz).unwrap(), theirs.into());
        } else {
            assert_eq!(got, Status::V1(theirs.into()));
        }
        let l = js.expect_request(Protocol::StatusV1).await;
        assert!(!l.has("earliest_available_slot"), "{l:?}");
        assert_eq!(status_v1_of(&l), ours.into(), "js decoded our status/1");

        // Ping: each side's MetaData sequence number.
        assert_eq!(rr.ping(js_peer).await.unwrap(), js_metadata().seq_number);
        let l = js.expect_request(Protocol::PingV1).await;
        assert_eq!(l.u64("value"), plexus_metadata().seq_number);

        // MetaData: the newest version js has, then each older one explicitly.
        let md = js_metadata();
        let got = rr.metadata(js_peer).await.unwrap();
        let v2 = MetaDataV2 {
            seq_number: md.seq_number,
            attnets: md.attnets.clone(),
            syncnets: md.syncnets.clone(),
        };
        let v1 = MetaDataV1 {
            seq_number: md.seq_number,
            attnets: md.attnets.clone(),
        };
        if current {
            assert_eq!(got, MetaData::V3(md.clone()));
            js.expect_request(Protocol::MetaDataV3).await;
        } else {
            assert_eq!(got, MetaData::V2(v2.clone()));
        }
        let (p, c) = rr.request_one(js_peer, Request::MetaDataV2).await.unwrap();
        assert_eq!(p, Protocol::MetaDataV2);
        assert_eq!(decode_ssz::<MetaDataV2>(&c.ssz).unwrap(), v2);
        let (p, c) = rr.request_one(js_peer, Request::MetaDataV1).await.unwrap();
        assert_eq!(p, Protocol::MetaDataV1);
        assert_eq!(decode_ssz::<MetaDataV1>(&c.ssz).unwrap(), v1);
        let extra = if current { 0 } else { 1 };
        for _ in 0..2 + extra {
            let l = js.expect("request").await;
            assert!(
                [Protocol::MetaDataV2.id(), Protocol::MetaDataV1.id()].contains(&l.get("protocol")),
                "{l:?}"
            );
        }

        // Blocks across a fork boundary (skipped slots included), then across the next
        // digest (BPO1, or a later Deneb epoch for the old client).
        blocks_from_js(
            &mut js,
            &rr,
            js_peer,
            &s,
            a - 3,
            6,
            &[a - 3, a - 1, a, a + 2],
        )
        .await;
        blocks_from_js(&mut js, &rr, js_peer, &s, b - 1, 3, &[b - 1, b, b + 1]).await;
        if current {
            assert_ne!(digest_at_slot(&s, b - 1), digest_at_slot(&s, b), "BPO1");
        }

        // An error answer: js has pruned everything before `earliest`.
        let req = plexus_eth::BeaconBlocksByRangeRequest {
            start_slot: earliest - 4,
            count: 2,
            step: 1,
        };
        let mut stream = rr
            .request(js_peer, Request::BeaconBlocksByRangeV2(req))
            .await
            .unwrap();
        let err = stream.next().await.expect("an error chunk").unwrap_err();
        let want = format!("js: slots before {earliest} are pruned");
        assert!(
            matches!(&err, ReqRespError::ResourceUnavailable(m) if *m == want),
            "{err}"
        );
        assert_eq!(err.blame(), Blame::PeerIncompatible);
        assert!(
            stream.next().await.is_none(),
            "the response ends with the error"
        );
        js.expect_request(Protocol::BeaconBlocksByRangeV2).await;
        let l = js.expect("served_error").await;
        assert_eq!(l.u64("code"), 3);

        // Goodbye.
        rr.goodbye(js_peer, GoodbyeReason::IrrelevantNetwork)
            .await
            .unwrap();
        let l = js.expect_request(Protocol::GoodbyeV1).await;
        assert_eq!(l.u64("value"), 2);
    })
    .await;
    if limit.is_err() {
        panic!(
            "plexus requesting js over {} timed out; js stderr:\n{}",
            mux.name(),
            js.stderr()
        );
    }
    js.finish().await;
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plexus_requests_js_yamux() {
    run_plexus_requests(Mux::Yamux, "current").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plexus_requests_js_mplex() {
    run_plexus_requests(Mux::Mplex, "current").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plexus_requests_old_js_mplex() {
    run_plexus_requests(Mux::Mplex, "old").await;
}

// ---------- js requests, plexus answers ----------

/// plexus's test chain: Status v1 and v2, and blocks by range from a fixed set; every
/// request is recorded.
struct Chain {
    status: StatusV2,
    blocks: BTreeMap<Slot, Vec<u8>>,
    requests: Mutex<Vec<Request>>,
}

impl Responder for Chain {
    fn protocols(&self) -> Vec<Protocol> {
        vec![
            Protocol::StatusV1,
            Protocol::StatusV2,
            Protocol::BeaconBlocksByRangeV2,
        ]
    }

    fn respond<'a>(
        &'a self,
        _peer: PeerId,
        request: Request,
        sink: &'a mut ResponseSink,
    ) -> BoxFut<'a, Result<(), RespondError>> {
        Box::pin(async move {
            self.requests.lock().unwrap().push(request.clone());
            let sent = match request {
                Request::StatusV2(_) => sink.send(&encode_ssz(&self.status), 0).await,
                Request::StatusV1(_) => {
                    let v1: StatusV1 = self.status.into();
                    sink.send(&encode_ssz(&v1), 0).await
                }
                Request::BeaconBlocksByRangeV2(r) => {
                    let earliest = self.status.earliest_available_slot;
                    if r.start_slot < earliest {
                        return Err(RespondError::ResourceUnavailable(format!(
                            "plexus: slots before {earliest} are pruned"
                        )));
                    }
                    for (slot, ssz) in self.blocks.range(r.start_slot..r.start_slot + r.count) {
                        sink.send(ssz, *slot)
                            .await
                            .map_err(|e| RespondError::ServerError(e.to_string()))?;
                    }
                    Ok(())
                }
                _ => return Err(RespondError::ServerError("not served".into())),
            };
            sent.map_err(|e| RespondError::ServerError(e.to_string()))
        })
    }
}

async fn run_js_requests(mux: Mux) {
    let (mut js, started) = start_js(&["node", mux.name(), "current"]).await;
    let s = mainnet();
    let host = plexus_host(mux).await;
    let limit = tokio::time::timeout(LIMIT, async {
        let js_peer: PeerId = started.get("peer").parse().unwrap();
        js.expect("listening").await;
        // Blocks across Electra → Fulu → BPO1, built by Lodestar (plexus has no block types);
        // plexus sends them with context bytes of its own.
        let a = first_slot(&s, epoch_of(&s, Fork::Fulu, 0));
        let b = first_slot(&s, epoch_of(&s, Fork::Fulu, 1));
        let mut blocks = BTreeMap::new();
        for slot in [a - 2, a - 1, a + 1, b - 1, b] {
            let l = js.ask(&["make_block", &slot.to_string()], "block").await;
            let block = Block::of(&l);
            assert_eq!(block.slot, slot);
            blocks.insert(slot, block.ssz);
        }
        let ours = plexus_status(&s);
        let chain = Arc::new(Chain {
            status: ours,
            blocks: blocks.clone(),
            requests: Mutex::new(Vec::new()),
        });
        let rr = ReqResp::spawn(
            host.clone(),
            s.clone(),
            config(&s),
            chain.clone(),
            plexus_metadata(),
        )
        .unwrap();
        let mut events = rr.events();

        let addr = host.listen_addrs()[0]
            .clone()
            .with(Addr::P2p(host.peer_id()));
        let l = js.ask(&["dial", &addr.to_string()], "dialed").await;
        assert_eq!(
            l.get("peer"),
            host.peer_id().to_string(),
            "js authenticated plexus"
        );
        let conn = loop {
            if let Some(c) = host.connection(&js_peer) {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(conn.muxer, mux.protocol());

        // Status, both versions: js decodes ours, we saw theirs.
        let theirs = js_status(&s, 0);
        for version in ["2", "1"] {
            let mut args = vec!["request_status".to_owned(), version.to_owned()];
            args.extend(status_fields(&theirs));
            let l = js
                .ask(
                    &args.iter().map(String::as_str).collect::<Vec<_>>(),
                    "status",
                )
                .await;
            if version == "2" {
                assert_eq!(l.get("protocol"), Protocol::StatusV2.id());
                assert_eq!(status_v2_of(&l), ours);
            } else {
                assert_eq!(l.get("protocol"), Protocol::StatusV1.id());
                assert!(!l.has("earliest_available_slot"), "{l:?}");
                assert_eq!(status_v1_of(&l), ours.into());
            }
        }
        assert_eq!(
            chain.requests.lock().unwrap()[..],
            [Request::StatusV2(theirs), Request::StatusV1(theirs.into())],
            "plexus decoded js's status requests"
        );

        // Ping: js's number reaches plexus, plexus answers with its own.
        let l = js.ask(&["request_ping", "77"], "ping").await;
        assert_eq!(l.get("protocol"), Protocol::PingV1.id());
        assert_eq!(l.u64("value"), plexus_metadata().seq_number);

        // MetaData, each version.
        for (version, p) in [
            (3, Protocol::MetaDataV3),
            (2, Protocol::MetaDataV2),
            (1, Protocol::MetaDataV1),
        ] {
            let l = js
                .ask(&["request_metadata", &version.to_string()], "metadata")
                .await;
            assert_eq!(l.get("protocol"), p.id());
            check_metadata_line(&l, &plexus_metadata(), version);
        }

        // Blocks: js reads plexus's context bytes with Lodestar's config and decodes each
        // block with that fork's type.
        let l0 = js
            .ask(&["request_blocks", &(a - 2).to_string(), "4"], "block")
            .await;
        let mut got = vec![Block::of(&l0)];
        for _ in 0..2 {
            got.push(Block::of(&js.expect("block").await));
        }
        let l = js.expect("blocks").await;
        assert_eq!((l.u64("count"), l.get("error_code")), (3, ""), "{l:?}");
        let l = js
            .ask(&["request_blocks", &(b - 1).to_string(), "2"], "blocks")
            .await;
        assert_eq!((l.u64("count"), l.get("error_code")), (2, ""), "{l:?}");
        for _ in 0..2 {
            got.push(Block::of(&js.expect("block").await));
        }
        let slots: Vec<Slot> = got.iter().map(|b| b.slot).collect();
        assert_eq!(slots, [a - 2, a - 1, a + 1, b - 1, b]);
        for blk in &got {
            assert_eq!(
                blk.context,
                digest_at_slot(&s, blk.slot),
                "slot {}",
                blk.slot
            );
            assert_eq!(blk.fork, fork_at_slot(&s, blk.slot), "slot {}", blk.slot);
            assert!(
                blk.ssz == blocks[&blk.slot],
                "slot {}: SSZ differs",
                blk.slot
            );
        }
        assert_eq!(got[1].fork, Fork::Electra);
        assert_eq!(got[2].fork, Fork::Fulu);
        assert_ne!(got[3].context, got[4].context, "BPO1 has its own digest");

        // An error answer, with plexus's message.
        let start = ours.earliest_available_slot - 1;
        let l = js
            .ask(&["request_blocks", &start.to_string(), "2"], "blocks")
            .await;
        assert_eq!(l.u64("count"), 0);
        assert_eq!(l.u64("error_code"), 3);
        assert_eq!(
            l.get("error_message"),
            format!(
                "plexus: slots before {} are pruned",
                ours.earliest_available_slot
            )
        );

        // Goodbye: plexus reports js's reason.
        js.ask(&["request_goodbye", "2"], "goodbye_sent").await;

        // What plexus's service saw: js's ping and goodbye, and no failed request.
        let mut ping = None;
        let mut goodbye = None;
        while goodbye.is_none() {
            match tokio::time::timeout(WAIT, events.recv()).await {
                Ok(Ok(ReqRespEvent::Ping { peer, seq_number })) => {
                    ping = Some((peer, seq_number));
                }
                Ok(Ok(ReqRespEvent::Goodbye { peer, reason })) => goodbye = Some((peer, reason)),
                Ok(Ok(ReqRespEvent::InboundFailed { error, .. })) => {
                    panic!("an inbound request failed: {error}")
                }
                Ok(Ok(e)) => panic!("unexpected event {e:?}"),
                Ok(Err(e)) => panic!("events: {e}"),
                Err(_) => panic!("no goodbye event within {WAIT:?}"),
            }
        }
        assert_eq!(ping, Some((js_peer, 77)));
        assert_eq!(goodbye, Some((js_peer, GoodbyeReason::IrrelevantNetwork)));
        assert!(
            matches!(
                events.try_recv(),
                Err(broadcast::error::TryRecvError::Empty)
            ),
            "no further event"
        );
        let recorded = chain.requests.lock().unwrap().len();
        assert_eq!(recorded, 2 + 3, "status ×2 and the three range requests");
    })
    .await;
    if limit.is_err() {
        panic!(
            "js requesting from plexus over {} timed out; js stderr:\n{}",
            mux.name(),
            js.stderr()
        );
    }
    js.finish().await;
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_requests_plexus_yamux() {
    run_js_requests(Mux::Yamux).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_requests_plexus_mplex() {
    run_js_requests(Mux::Mplex).await;
}

// ---------- gossip encoding ----------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_encoding_matches_js() {
    let (mut js, _) = start_js(&["codec"]).await;
    let s = mainnet();
    let max = s.config().max_payload_size;
    let fulu = first_slot(&s, epoch_of(&s, Fork::Fulu, 2));
    let block = Block::of(
        &js.ask(&["make_block", &(fulu + 2).to_string()], "block")
            .await,
    );
    // Incompressible, repetitive, and large (several 64 KiB snappy fragments) payloads.
    let mut noise = Vec::new();
    let mut x = 0x9e37_79b9u32;
    for _ in 0..100 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        noise.push(x as u8);
    }
    let repetitive = b"plexus ".repeat(1500);
    let mut large = Vec::new();
    for i in 0..3000u32 {
        large.extend_from_slice(&block.ssz[..(i as usize * 37) % block.ssz.len()]);
        large.extend_from_slice(&i.to_le_bytes());
    }
    assert!(large.len() > 3 * 65536);
    let payloads: [(&str, &[u8]); 5] = [
        ("block", &block.ssz),
        ("empty", &[]),
        ("noise", &noise),
        ("repetitive", &repetitive),
        ("large", &large),
    ];
    let topics = [
        format!(
            "/eth2/{}/beacon_block/ssz_snappy",
            s.digest_at(epoch_of(&s, Fork::Fulu, 2))
        ),
        format!(
            "/eth2/{}/beacon_block/ssz_snappy",
            s.digest_at(epoch_of(&s, Fork::Altair, 0))
        ),
        format!("/eth2/{}/beacon_block/ssz_snappy", s.digest_at(0)),
    ];
    for topic in &topics {
        let digest: ForkDigest = topic.split('/').nth(2).unwrap().parse().unwrap();
        let fork = s.fork_of_digest(digest).unwrap();
        for (name, payload) in payloads {
            let what = format!("{name} on {topic}");
            // js compresses; plexus decompresses and computes the id.
            let l = js
                .ask(&["gossip_encode", topic, &hex(payload)], "gossip_encoded")
                .await;
            assert_eq!(l.get("fork"), fork.name(), "{what}: the id rule's fork");
            let data = l.bytes("data");
            let id = l.bytes("id");
            assert_eq!(decode_gossip(&data, max).unwrap(), payload, "{what}");
            assert_eq!(s.message_id(topic, &data).to_vec(), id, "{what}: js's id");
            if name == "block" {
                let (got_id, msg) = s.decode_message(topic, &data);
                assert_eq!(got_id.to_vec(), id, "{what}");
                assert_eq!(msg.unwrap().payload, payload, "{what}");
            }
            // plexus compresses; js decompresses and computes the id.
            let data = encode_gossip(payload, max).unwrap();
            let l = js
                .ask(&["gossip_decode", topic, &hex(&data)], "gossip_decoded")
                .await;
            assert_eq!(l.get("valid"), "yes", "{what}");
            assert!(
                l.bytes("ssz") == payload,
                "{what}: js decompressed other bytes"
            );
            assert_eq!(l.bytes("id"), s.message_id(topic, &data).to_vec(), "{what}");
        }
        // Not snappy (an unterminated varint; a copy from before the start): both sides use
        // the invalid-snappy domain over the raw bytes.
        for data in [
            &[0xff, 0xff][..],
            &[0x0c, 0x08, b'a', b'b', b'c', 0x15, 0x09],
        ] {
            assert!(decode_gossip(data, max).is_err());
            let l = js
                .ask(&["gossip_decode", topic, &hex(data)], "gossip_decoded")
                .await;
            assert_eq!(l.get("valid"), "no", "{data:?} on {topic}");
            assert_eq!(
                l.bytes("id"),
                s.message_id(topic, data).to_vec(),
                "{data:?} on {topic}"
            );
        }
    }
    js.finish().await;
}
