//! Req/Resp serving benchmark: one responder host serves `beacon_blocks_by_range/2` (64 blocks
//! of 128 KiB, pre-built in memory) to P requester hosts at once, over loopback
//! TCP + Noise + yamux.
//!
//! `cargo bench -p plexus-reqresp --bench serve` (or `cargo xtask bench`, which appends the
//! table to `docs/BENCHMARKS.md`). Progress goes to stderr; the Markdown report to stdout.
//!
//! The responder runs in a child process (this binary re-executed with `--child responder`),
//! so its CPU time (`/proc/<pid>/stat`, user + system, all threads) is its own. The parent runs
//! the P requesters, each its own `Host` with its own Req/Resp service, on one tokio runtime,
//! and for each configuration:
//!
//! 1. starts a fresh responder child and connects the P requesters to it;
//! 2. warm-up: every requester sends one request at once (not measured); its time sets R, the
//!    requests per requester, so a configuration runs for about `PLEXUS_REQRESP_SECONDS`;
//! 3. every requester sends R requests back to back (one at a time, each one's 64 chunks read
//!    and checked by the service before the next), all requesters at once.
//!
//! Per requester: SSZ bytes delivered / its wall time (common start to its last chunk).
//! Aggregate: all SSZ bytes / the wall time until the last requester finished. CPU per MB: the
//! child's CPU seconds over the measurement / MB of SSZ served. MB = 10⁶ bytes of SSZ (the
//! payload before snappy; the wire carries ≈ 58 % of it).
//!
//! The responder's inbound rate limits (`ReqRespConfig::inbound_quotas`) and the requesters'
//! self-limiter (`outbound_quotas`) are raised so that the limiter never holds a request back:
//! by default a peer may ask 128 blocks per 10 s, i.e. two of these requests.
//!
//! Each configuration runs 3 times, rotating through the configurations (so background load
//! falls on all alike); the report gives the median of each figure over the runs and the range.
//!
//! Environment: `PLEXUS_REQRESP_PEERS` (default `1,4,8`), `PLEXUS_REQRESP_ENCODED_PEERS` (configurations served with pre-encoded payloads, default `8`), `PLEXUS_REQRESP_SECONDS` (measured
//! time per run, default 3), `PLEXUS_REQRESP_REPEATS` (fixes R instead),
//! `PLEXUS_REQRESP_RUNS` (default 3), `PLEXUS_BENCH_QUICK=1` (one run of 0.5 s per
//! configuration: for trying the harness, not for results).
//! Benchmarks measure; nothing here asserts a timing.
#![forbid(unsafe_code)]
#![allow(missing_docs)]

mod support;

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use plexus_core::{BoxFut, PeerId};
use plexus_eth::ssz_types::BitVector;
use plexus_eth::{BeaconBlocksByRangeRequest, MetaDataV3, Slot};
use plexus_host::{Host, HostConfig};
use plexus_identity::Keypair;
use plexus_multiaddr::Multiaddr;
use plexus_reqresp::{
    NoResponder, Protocol, Quota, Quotas, ReqResp, ReqRespConfig, ReqRespHandle, Request,
    RespondError, Responder, ResponseSink,
};
use support::{BLOCK_LEN, Chain, block_payload};

/// Blocks per request (and per response).
const BLOCKS: u64 = 64;
/// The target of issue 9.
const TARGET_MB_S: f64 = 15.0;
/// Linux' USER_HZ: `/proc/*/stat` counts CPU time in ticks of 1/100 s.
const TICKS_PER_SEC: f64 = 100.0;

// ------------------------------------------------------------------------------------------
// Shared by both processes
// ------------------------------------------------------------------------------------------

/// The service config of both sides: the wall clock in the chain's newest fork, and rate
/// limits far above what the bench asks (one token is 1 ns of a 1 ms bucket of 10⁶ tokens),
/// so neither the responder's limiter nor the requesters' self-limiter ever waits.
fn config(chain: &Chain) -> ReqRespConfig {
    let epoch = chain.start_slot / chain.schedule.config().preset.slots_per_epoch() + 10;
    let mut cfg = ReqRespConfig::new(&chain.schedule, Arc::new(move || epoch));
    let limits = chain
        .schedule
        .config()
        .request_limits(chain.schedule.fork_at(epoch));
    let unlimited = Quota::new(1_000_000, Duration::from_millis(1));
    let quotas = Quotas {
        blocks: unlimited,
        ..Quotas::for_limits(&limits)
    };
    cfg.inbound_quotas = Some(quotas);
    cfg.outbound_quotas = Some(quotas);
    cfg
}

fn metadata() -> MetaDataV3 {
    MetaDataV3 {
        seq_number: 1,
        attnets: BitVector::new(),
        syncnets: BitVector::new(),
        custody_group_count: 4,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// CPU seconds (user, system) of a process, all its threads: fields 14 and 15 of
/// `/proc/<pid>/stat`, in ticks of 1/100 s.
fn cpu_secs(pid: &str) -> Result<(f64, f64), String> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    // The command name (field 2) may hold spaces: the fields after it follow the last ')'.
    let rest = stat.rsplit_once(')').ok_or("bad stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> Result<f64, String> {
        f.get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .map(|t| t as f64 / TICKS_PER_SEC)
            .ok_or_else(|| format!("bad {path}"))
    };
    // f[0] is field 3 (state): utime is field 14, stime field 15.
    Ok((tick(11)?, tick(12)?))
}

// ------------------------------------------------------------------------------------------
// The responder (child process)
// ------------------------------------------------------------------------------------------

/// Serves `beacon_blocks_by_range/2` from pre-built blocks, one per slot from `start`.
struct Blocks {
    start: Slot,
    blocks: Vec<Vec<u8>>,
    /// The same blocks compressed once, when serving pre-encoded payloads.
    encoded: Option<Vec<plexus_reqresp::EncodedPayload>>,
}

impl Responder for Blocks {
    fn protocols(&self) -> Vec<Protocol> {
        vec![Protocol::BeaconBlocksByRangeV2]
    }

    fn respond<'a>(
        &'a self,
        _peer: PeerId,
        request: Request,
        sink: &'a mut ResponseSink,
    ) -> BoxFut<'a, Result<(), RespondError>> {
        Box::pin(async move {
            let Request::BeaconBlocksByRangeV2(r) = request else {
                return Err(RespondError::ServerError("not served".into()));
            };
            // `step` is deprecated and 1 (validated by the service).
            for slot in r.start_slot..r.start_slot.saturating_add(r.count) {
                let Some(i) = slot
                    .checked_sub(self.start)
                    .and_then(|i| usize::try_from(i).ok())
                    .filter(|i| *i < self.blocks.len())
                else {
                    break;
                };
                let sent = match &self.encoded {
                    Some(e) => sink.send_encoded(&e[i], slot).await,
                    None => sink.send(&self.blocks[i], slot).await,
                };
                sent.map_err(|e| RespondError::ServerError(e.to_string()))?;
            }
            Ok(())
        })
    }
}

/// Start the responder, print `ADDR <multiaddr with /p2p>`, serve until stdin closes.
fn responder_main(encoded: bool) -> ! {
    let rt = runtime();
    let res: Result<(), String> = rt.block_on(async {
        let chain = Chain::mainnet();
        let blocks: Vec<Vec<u8>> = (0..BLOCKS)
            .map(|i| block_payload(chain.start_slot + i, BLOCK_LEN, i))
            .collect();
        let encoded = encoded.then(|| {
            blocks
                .iter()
                .map(|b| plexus_reqresp::EncodedPayload::new(b))
                .collect()
        });
        let mut hc = HostConfig::new(Keypair::generate_secp256k1());
        hc.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr")];
        let host = Host::new(hc).await.map_err(|e| e.to_string())?;
        let cfg = config(&chain);
        let responder = Blocks {
            start: chain.start_slot,
            blocks,
            encoded,
        };
        let _service = ReqResp::spawn(
            host.clone(),
            chain.schedule.clone(),
            cfg,
            Arc::new(responder),
            metadata(),
        )
        .map_err(|e| e.to_string())?;
        let addr = host.listen_addrs()[0]
            .clone()
            .with(plexus_multiaddr::Protocol::P2p(host.peer_id()));
        println!("ADDR {addr}");
        std::io::stdout().flush().map_err(|e| e.to_string())?;
        // The parent closes our stdin when it is done with us.
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await
        .map_err(|e| e.to_string())?;
        Ok(())
    });
    if let Err(e) = res {
        eprintln!("responder: {e}");
        std::process::exit(1);
    }
    std::process::exit(0)
}

// ------------------------------------------------------------------------------------------
// The requesters (parent process)
// ------------------------------------------------------------------------------------------

/// The responder child; its stdin is closed (and it is killed if it lingers) on drop.
struct ResponderProc {
    child: Child,
    addr: Multiaddr,
}

impl ResponderProc {
    fn start(encoded: bool) -> Result<ResponderProc, String> {
        let exe = std::env::current_exe().map_err(|e| e.to_string())?;
        let mut args = vec!["--child", "responder"];
        if encoded {
            args.push("--encoded");
        }
        let mut child = Command::new(exe)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the responder: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        let got = BufReader::new(stdout).read_line(&mut line);
        let addr = match got {
            Ok(n) if n > 0 => line
                .trim()
                .strip_prefix("ADDR ")
                .and_then(|a| a.parse::<Multiaddr>().ok()),
            _ => None,
        };
        let mut proc = ResponderProc {
            child,
            addr: Multiaddr::empty(),
        };
        proc.addr = addr.ok_or_else(|| format!("the responder printed {line:?}"))?;
        Ok(proc)
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }
}

impl Drop for ResponderProc {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One configuration's figures.
struct Row {
    repeats: u64,
    /// SSZ MB/s of each requester.
    per_peer: Vec<f64>,
    /// SSZ bytes of all requesters.
    bytes: u64,
    wall: Duration,
    /// Responder CPU seconds (user, system) over the measurement.
    responder_cpu: (f64, f64),
    /// Requester process CPU seconds (user, system) over the measurement.
    requester_cpu: (f64, f64),
}

impl Row {
    fn mb(&self) -> f64 {
        self.bytes as f64 / 1e6
    }
}

/// Send R requests back to back; the SSZ bytes delivered and the time of the last chunk.
async fn requester(
    handle: ReqRespHandle,
    peer: PeerId,
    request: Request,
    repeats: u64,
    start: Instant,
) -> Result<(u64, Duration), String> {
    let mut bytes = 0u64;
    for _ in 0..repeats {
        let mut st = handle
            .request(peer, request.clone())
            .await
            .map_err(|e| e.to_string())?;
        let mut chunks = 0;
        while let Some(c) = st.next().await {
            let c = c.map_err(|e| e.to_string())?;
            if c.ssz.len() != BLOCK_LEN {
                return Err(format!("a block of {} bytes", c.ssz.len()));
            }
            bytes += c.ssz.len() as u64;
            chunks += 1;
        }
        if chunks != BLOCKS {
            return Err(format!("{chunks} blocks instead of {BLOCKS}"));
        }
    }
    Ok((bytes, start.elapsed()))
}

/// Every requester sends `repeats` requests at once; their bytes and times.
async fn round(
    handles: &[ReqRespHandle],
    peer: PeerId,
    request: &Request,
    repeats: u64,
) -> Result<Vec<(u64, Duration)>, String> {
    let start = Instant::now();
    let tasks: Vec<_> = handles
        .iter()
        .map(|h| tokio::spawn(requester(h.clone(), peer, request.clone(), repeats, start)))
        .collect();
    let mut out = Vec::with_capacity(tasks.len());
    for t in tasks {
        out.push(t.await.map_err(|e| e.to_string())??);
    }
    Ok(out)
}

async fn measure(
    peers: usize,
    responder: &ResponderProc,
    seconds: f64,
    fixed_repeats: Option<u64>,
) -> Result<Row, String> {
    let chain = Chain::mainnet();
    let target = responder.addr.peer_id().ok_or("no /p2p in the address")?;
    let mut handles = Vec::with_capacity(peers);
    let mut hosts = Vec::with_capacity(peers);
    for _ in 0..peers {
        let host = Host::new(HostConfig::new(Keypair::generate_secp256k1()))
            .await
            .map_err(|e| e.to_string())?;
        let handle = ReqResp::spawn(
            host.clone(),
            chain.schedule.clone(),
            config(&chain),
            Arc::new(NoResponder),
            metadata(),
        )
        .map_err(|e| e.to_string())?;
        host.connect(vec![responder.addr.clone()])
            .await
            .map_err(|e| format!("dial: {e}"))?;
        hosts.push(host);
        handles.push(handle);
    }
    let request = Request::BeaconBlocksByRangeV2(BeaconBlocksByRangeRequest {
        start_slot: chain.start_slot,
        count: BLOCKS,
        step: 1,
    });
    // Warm-up (buffers, yamux windows), and the time of one round.
    let t = Instant::now();
    round(&handles, target, &request, 1).await?;
    let one = t.elapsed().as_secs_f64();
    let repeats =
        fixed_repeats.unwrap_or_else(|| ((seconds / one).ceil() as u64).clamp(2, 100_000));
    eprintln!(
        "      warm-up round {:.0} ms; {repeats} requests per requester",
        one * 1e3
    );

    let pid = responder.pid();
    let child0 = cpu_secs(&pid)?;
    let self0 = cpu_secs("self")?;
    let t = Instant::now();
    let results = round(&handles, target, &request, repeats).await?;
    let wall = t.elapsed();
    let child1 = cpu_secs(&pid)?;
    let self1 = cpu_secs("self")?;
    drop(handles);
    drop(hosts);
    Ok(Row {
        repeats,
        per_peer: results
            .iter()
            .map(|(b, d)| *b as f64 / 1e6 / d.as_secs_f64())
            .collect(),
        bytes: results.iter().map(|(b, _)| b).sum(),
        wall,
        responder_cpu: (child1.0 - child0.0, child1.1 - child0.1),
        requester_cpu: (self1.0 - self0.0, self1.1 - self0.1),
    })
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

/// `median [lowest–highest]` over the runs (just the value for one run).
fn over_runs(v: &[f64], digits: usize) -> String {
    if v.len() == 1 {
        format!("{:.digits$}", v[0])
    } else {
        format!(
            "{:.digits$} [{:.digits$}–{:.digits$}]",
            median(v),
            min(v),
            max(v)
        )
    }
}

fn env_f64(name: &str) -> Option<f64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// The runs of one configuration.
struct Config {
    peers: usize,
    /// The responder sends payloads compressed once at start-up.
    encoded: bool,
    rows: Vec<Row>,
    error: Option<String>,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--child") {
        responder_main(args.iter().any(|a| a == "--encoded"));
    }
    let quick = std::env::var_os("PLEXUS_BENCH_QUICK").is_some();
    let peers: Vec<usize> = std::env::var("PLEXUS_REQRESP_PEERS")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|p| p.trim().parse().ok())
                .filter(|p| *p > 0)
                .collect()
        })
        .unwrap_or_else(|| vec![1, 4, 8]);
    let encoded_peers: Vec<usize> = std::env::var("PLEXUS_REQRESP_ENCODED_PEERS")
        .ok()
        .map(|v| {
            v.split(',')
                .filter_map(|p| p.trim().parse().ok())
                .filter(|p| *p > 0)
                .collect()
        })
        .unwrap_or_else(|| vec![8]);
    let seconds = env_f64("PLEXUS_REQRESP_SECONDS").unwrap_or(if quick { 0.5 } else { 3.0 });
    let fixed_repeats = env_f64("PLEXUS_REQRESP_REPEATS").map(|r| (r as u64).max(1));
    let runs =
        env_f64("PLEXUS_REQRESP_RUNS").map_or(if quick { 1 } else { 3 }, |r| (r as usize).max(1));
    let chain = Chain::mainnet();
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    let started = Instant::now();
    let rt = runtime();
    let mut configs: Vec<Config> = peers
        .iter()
        .map(|p| (*p, false))
        .chain(encoded_peers.iter().map(|p| (*p, true)))
        .map(|(peers, encoded)| Config {
            peers,
            encoded,
            rows: Vec::new(),
            error: None,
        })
        .collect();
    // Runs rotate through the configurations, so background load falls on all alike.
    let total = runs * configs.len();
    let mut step = 0;
    for run in 0..runs {
        for c in &mut configs {
            step += 1;
            eprintln!(
                "[{step}/{total}] blocks by range, {} requester(s) (run {}/{runs}) …",
                c.peers,
                run + 1
            );
            let row = ResponderProc::start(c.encoded).and_then(|responder| {
                rt.block_on(measure(c.peers, &responder, seconds, fixed_repeats))
            });
            match row {
                Ok(r) => {
                    eprintln!(
                        "      {:.1} s: {:.1} MB/s per peer (median), {:.1} MB/s aggregate, \
                         responder {:.2} ms CPU per MB",
                        r.wall.as_secs_f64(),
                        median(&r.per_peer),
                        r.mb() / r.wall.as_secs_f64(),
                        1e3 * (r.responder_cpu.0 + r.responder_cpu.1) / r.mb()
                    );
                    c.rows.push(r);
                }
                Err(e) => {
                    eprintln!("      failed: {e}");
                    c.error.get_or_insert(e);
                }
            }
        }
    }
    let run_secs = started.elapsed().as_secs_f64();

    // ---------------- report ----------------
    let mut md = String::new();
    if quick {
        md.push_str("**QUICK MODE (`PLEXUS_BENCH_QUICK`): short runs, not a result.** ");
    }
    let sample = block_payload(chain.start_slot, BLOCK_LEN, 0);
    let mut wire = Vec::new();
    plexus_reqresp::encode_frames(&sample, &mut wire);
    md.push_str(&format!(
        "plexus alone (issue 9). Measurements took {run_secs:.0} s ({} per configuration, \
         rotating through the configurations, each with a fresh responder child process; every \
         figure is the median over the runs, [brackets] give the lowest and highest). Load \
         average (1, 5, 15 min) at the start: {load}.\n\n\
         - One responder host serves `beacon_blocks_by_range/2`: {BLOCKS} blocks of {} KiB of SSZ \
         per request, pre-built in memory, encoded (snappy) per response; in the rows marked \
         \"pre-encoded\" compressed once at start-up and sent with `ResponseSink::send_encoded`, \
         as a node that caches encoded blocks does; \
         context bytes {} ({:?}, mainnet's newest scheduled digest). Payload: half random bytes and \
         half zeros in interleaved runs of 8–64 bytes; snappy frames carry {:.0} % of it.\n\
         - P requesters, each its own host (TCP + Noise + yamux on 127.0.0.1, secp256k1 keys) \
         with its own Req/Resp service, all in the parent process on one tokio runtime (2 \
         workers); the responder runs alone in a child process (2 workers). Both share this \
         machine's cores.\n\
         - Each requester sends R requests back to back (R from a warm-up round, for about \
         {seconds} s), all P at once; every response is decoded and checked against its \
         request by the requester's service.\n\
         - MB/s per peer: SSZ bytes received by one requester / its time from the common start \
         to its last chunk (MB = 10⁶ bytes of SSZ, before snappy); per run the median and the \
         minimum over the P requesters. Aggregate: all SSZ bytes / time until the last \
         requester finished.\n\
         - CPU per MB: user + system CPU time of the responder child (`/proc/<pid>/stat`, all \
         threads, 10 ms ticks) over the measurement / MB served; the requesters' is their whole \
         process (all P hosts).\n\
         - Rate limits raised: the responder's `inbound_quotas` and the requesters' \
         `outbound_quotas` allow 10⁶ blocks per ms per peer, so no request waits for tokens (the \
         default, 128 blocks per 10 s, allows two of these requests per peer).\n\n",
        if runs == 1 {
            "1 run".to_string()
        } else {
            format!("{runs} runs")
        },
        BLOCK_LEN / 1024,
        chain.digest,
        chain.fork,
        100.0 * wire.len() as f64 / sample.len() as f64,
    ));
    md.push_str(
        "| configuration | requests per peer | MB/s per peer, median | MB/s per peer, min | \
         aggregate MB/s | responder CPU per MB (of which system) | requesters' CPU per MB \
         | target ≥ 15 MB/s per peer (min) |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for c in &configs {
        let name = format!(
            "{} requester{} × {BLOCKS} blocks of {} KiB{}",
            c.peers,
            if c.peers == 1 { "" } else { "s" },
            BLOCK_LEN / 1024,
            if c.encoded {
                ", payloads pre-encoded"
            } else {
                ""
            }
        );
        if c.rows.is_empty() {
            let e = c.error.as_deref().unwrap_or("no run");
            md.push_str(&format!(
                "| {name} | – | – | – | – | – | – | not measured: {e} |\n"
            ));
            continue;
        }
        let of = |f: &dyn Fn(&Row) -> f64| c.rows.iter().map(f).collect::<Vec<f64>>();
        let repeats = of(&|r| r.repeats as f64);
        let per_peer_median = of(&|r| median(&r.per_peer));
        let per_peer_min = of(&|r| min(&r.per_peer));
        let aggregate = of(&|r| r.mb() / r.wall.as_secs_f64());
        let responder = of(&|r| 1e3 * (r.responder_cpu.0 + r.responder_cpu.1) / r.mb());
        let responder_sys = of(&|r| 1e3 * r.responder_cpu.1 / r.mb());
        let requesters = of(&|r| 1e3 * (r.requester_cpu.0 + r.requester_cpu.1) / r.mb());
        // The target holds when every peer of every run got at least 15 MB/s.
        let worst = min(&per_peer_min);
        let mut verdict = if worst >= TARGET_MB_S {
            "**met**".to_string()
        } else {
            format!(
                "**missed** by {:.0} % ({worst:.1} < {TARGET_MB_S})",
                (1.0 - worst / TARGET_MB_S) * 100.0
            )
        };
        if let Some(e) = &c.error {
            verdict.push_str(&format!(
                " ({} of {runs} runs failed: {e})",
                runs - c.rows.len()
            ));
        }
        md.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} ms ({:.2} ms) | {} ms | {verdict} |\n",
            over_runs(&repeats, 0),
            over_runs(&per_peer_median, 1),
            over_runs(&per_peer_min, 1),
            over_runs(&aggregate, 1),
            over_runs(&responder, 2),
            median(&responder_sys),
            over_runs(&requesters, 2),
        ));
    }
    print!("{md}");
    let _ = std::io::stdout().flush();
}
