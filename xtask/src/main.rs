//! Project automation, run as `cargo xtask <command>`.
//!
//! - `ci`: fmt check, clippy `-D warnings`, then everything `test` does.
//! - `test`: the layer-order check, `cargo test --workspace`, and the fuzz crate's
//!   tests (every seed corpus replayed through its target; the targets compile).
//! - `deps`: only the layer-order check.
//! - `fuzz [--smoke] [--seconds N] [TARGET…]`: run cargo-fuzz targets (installs
//!   cargo-fuzz if missing). `--smoke` runs each target for a few seconds.
//! - `bench`: the benchmarks against rust-libp2p, release builds: end to end
//!   (`cargo bench -p plexus-interop-tests --bench e2e`), then the gossip network
//!   (`--bench gossip`), then Req/Resp serving blocks by range
//!   (`cargo bench -p plexus-reqresp --bench serve`), then `plexus devnet` at 20 and
//!   100 nodes; prints their tables and writes them, with the commands, the date and the
//!   machine, to `docs/BENCHMARKS.md`. `bench devnet` runs only the devnet rows and
//!   prints them (the file is left as it is).
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

/// The crates of the workspace in layer order: a crate may depend (normal or
/// build dependencies) only on crates of a strictly lower layer.
const LAYERS: &[(&str, u8)] = &[
    ("plexus-identity", 0),
    ("plexus-multiaddr", 1),
    ("plexus-core", 2),
    ("plexus-eth", 2),
    ("plexus-mux", 3),
    ("plexus-multistream", 3),
    ("plexus-noise", 3),
    ("plexus-tls", 3),
    ("plexus-quic", 4),
    ("plexus-tcp", 3),
    ("plexus-yamux", 4),
    ("plexus-mplex", 4),
    ("plexus-testkit", 4),
    ("plexus-conn", 5),
    ("plexus-host", 6),
    ("plexus-identify", 7),
    ("plexus-ping", 7),
    ("plexus-perf", 7),
    ("plexus-gossipsub", 7),
    ("plexus-reqresp", 7),
    ("plexus-eth-gossip", 8),
    ("plexus-peer-manager", 8),
    ("plexus-cli", 9),
    ("plexus-interop-tests", 10),
];

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = root();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci(&root),
        Some("test") => test(&root),
        Some("deps") => deps(&root),
        Some("fuzz") => fuzz(&root, &args[1..]),
        Some("bench") if args.get(1).map(String::as_str) == Some("devnet") => {
            devnet_bench(&root).map(|_| ())
        }
        Some("bench") => bench(&root),
        _ => {
            eprintln!(
                "usage: cargo xtask <ci | test | deps | fuzz [--smoke] [--seconds N] [TARGET...] | bench [devnet]>"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(step: &str, cmd: &mut Command) -> Result<(), String> {
    eprintln!("==> {step}");
    let t = Instant::now();
    let status = cmd
        .status()
        .map_err(|e| format!("{step}: cannot start: {e}"))?;
    eprintln!(
        "<== {step}: {:?} in {:.1}s",
        status.code(),
        t.elapsed().as_secs_f64()
    );
    if status.success() {
        Ok(())
    } else {
        // A CI run once failed for want of disk: say how much there was.
        free_disk();
        Err(format!("{step} failed"))
    }
}

/// Prints the free space of the file system the workspace is on (best effort).
fn free_disk() {
    let _ = Command::new("df")
        .args(["-h", "."])
        .current_dir(root())
        .status();
}

fn ci(root: &Path) -> Result<(), String> {
    free_disk();
    run(
        "fmt",
        cargo().current_dir(root).args(["fmt", "--all", "--check"]),
    )?;
    run(
        "clippy",
        cargo().current_dir(root).args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]),
    )?;
    test(root)
}

fn test(root: &Path) -> Result<(), String> {
    deps(root)?;
    run(
        "tests",
        cargo().current_dir(root).args(["test", "--workspace"]),
    )?;
    // The fuzz crate is outside the workspace (cargo-fuzz builds it with its own
    // flags). Share the workspace's target dir so dependencies build once.
    run(
        "fuzz targets build and replay their seed corpora",
        cargo()
            .current_dir(root)
            .env("CARGO_TARGET_DIR", root.join("target"))
            .args(["test", "--manifest-path", "fuzz/Cargo.toml"]),
    )
}

/// The names of `plexus-*` crates in the `[dependencies]` and
/// `[build-dependencies]` tables of a manifest.
fn plexus_deps(manifest: &str) -> Vec<String> {
    let mut section = String::new();
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            section = line.trim_matches(|c| c == '[' || c == ']').to_string();
            continue;
        }
        if section != "dependencies" && section != "build-dependencies" {
            continue;
        }
        let name = line.split(['=', '.', ' ']).next().unwrap_or("");
        if name.starts_with("plexus-") || name.starts_with("libp2p") {
            out.push(name.to_string());
        }
    }
    out
}

fn deps(root: &Path) -> Result<(), String> {
    eprintln!("==> layer order");
    let mut problems = Vec::new();
    let crates = std::fs::read_dir(root.join("crates")).map_err(|e| e.to_string())?;
    for entry in crates {
        let manifest_path = entry.map_err(|e| e.to_string())?.path().join("Cargo.toml");
        let Ok(manifest) = std::fs::read_to_string(&manifest_path) else {
            continue;
        };
        let name = manifest
            .lines()
            .find_map(|l| l.trim().strip_prefix("name = "))
            .map(|n| n.trim_matches('"').to_string())
            .ok_or_else(|| format!("{}: no package name", manifest_path.display()))?;
        let Some(&(_, layer)) = LAYERS.iter().find(|(n, _)| *n == name) else {
            problems.push(format!(
                "{name} is not in xtask's LAYERS table: give it a layer"
            ));
            continue;
        };
        for dep in plexus_deps(&manifest) {
            if dep.starts_with("libp2p") {
                problems.push(format!(
                    "{name} depends on {dep}: rust-libp2p is for dev-dependencies only"
                ));
                continue;
            }
            match LAYERS.iter().find(|(n, _)| *n == dep) {
                Some(&(_, l)) if l < layer => {}
                Some(&(_, l)) => problems.push(format!(
                    "{name} (layer {layer}) depends on {dep} (layer {l}): not downward"
                )),
                None => problems.push(format!("{name} depends on {dep}, which has no layer")),
            }
        }
    }
    if problems.is_empty() {
        eprintln!("<== layer order: ok");
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

fn fuzz_targets(root: &Path) -> Result<Vec<String>, String> {
    let mut t: Vec<String> = std::fs::read_dir(root.join("fuzz/fuzz_targets"))
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            e.path()
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
        })
        .collect();
    t.sort();
    Ok(t)
}

fn fuzz(root: &Path, args: &[String]) -> Result<(), String> {
    let mut seconds = 60u64;
    let mut chosen = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--smoke" => seconds = 5,
            "--seconds" => {
                seconds = it
                    .next()
                    .and_then(|s| s.parse().ok())
                    .ok_or("--seconds needs a number")?
            }
            t => chosen.push(t.to_string()),
        }
    }
    let all = fuzz_targets(root)?;
    for t in &chosen {
        if !all.contains(t) {
            return Err(format!(
                "unknown fuzz target {t}; known: {}",
                all.join(", ")
            ));
        }
    }
    let targets = if chosen.is_empty() { all } else { chosen };
    let have = cargo()
        .args(["fuzz", "--version"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !have {
        run(
            "install cargo-fuzz",
            cargo().args(["install", "cargo-fuzz", "--locked"]),
        )?;
    }
    for (i, t) in targets.iter().enumerate() {
        let corpus = root.join("fuzz/corpus").join(t);
        // Work on a scratch copy so a run never rewrites the committed seeds.
        let scratch = root.join("fuzz/target/corpus-run").join(t);
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(|e| e.to_string())?;
        run(
            &format!("[{}/{}] fuzz {t} for {seconds}s", i + 1, targets.len()),
            cargo()
                .current_dir(root)
                // cargo-fuzz needs nightly-only flags; the machine has a stable
                // toolchain, which accepts them with RUSTC_BOOTSTRAP.
                .env("RUSTC_BOOTSTRAP", "1")
                .args(["fuzz", "run", t])
                .arg(&scratch)
                .arg(&corpus)
                .args([
                    "--",
                    &format!("-max_total_time={seconds}"),
                    "-rss_limit_mb=2048",
                ]),
        )?;
    }
    Ok(())
}

/// The output of a command, trimmed, or `unknown`.
fn command_output(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// nproc, CPU model, kernel and rustc version, as Markdown list items.
fn machine_description() -> String {
    let nproc = std::thread::available_parallelism()
        .map(|n| n.get().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|k| k.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    let rustc = command_output("rustc", &["--version"]);
    format!("- nproc: {nproc}\n- CPU: {cpu}\n- kernel: Linux {kernel}\n- rustc: {rustc}\n")
}

/// In `docs/BENCHMARKS.md`, everything from this line on is kept when `bench`
/// rewrites the file (analysis of the figures, written by hand).
const NOTES_MARKER: &str =
    "<!-- Hand-written notes below this line are kept by `cargo xtask bench`. -->";

/// Run `cargo bench -p <package> --bench <name>`: progress on stderr, its table echoed
/// to stdout and returned, with the seconds it took (build included).
fn run_bench(root: &Path, package: &str, name: &str) -> Result<(String, f64), String> {
    use std::io::{BufRead, BufReader};
    let step = format!("cargo bench -p {package} --bench {name}");
    eprintln!("==> {step} (release build, then the measurements; progress below)");
    let t = Instant::now();
    let mut child = cargo()
        .current_dir(root)
        .args(["bench", "-p", package, "--bench", name])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("{step}: cannot start: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut table = String::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("{step}: reading its output: {e}"))?;
        println!("{line}");
        table.push_str(&line);
        table.push('\n');
    }
    let status = child.wait().map_err(|e| format!("{step}: {e}"))?;
    let secs = t.elapsed().as_secs_f64();
    eprintln!("<== {step}: {:?} in {secs:.1}s", status.code());
    if !status.success() {
        return Err(format!("{step} failed"));
    }
    Ok((table, secs))
}

/// Node counts of the devnet rows.
const DEVNET_NODES: [u32; 2] = [20, 100];

/// `plexus --json devnet --nodes N` (release build) at each of [`DEVNET_NODES`]: a table
/// of CPU per delivered message, latency p99, duplicates and RSS per node, from each
/// run's JSON report, and the seconds it all took.
fn devnet_bench(root: &Path) -> Result<(String, f64), String> {
    use std::io::{BufRead, BufReader};
    let t = Instant::now();
    run(
        "cargo build --release --bin plexus",
        cargo()
            .current_dir(root)
            .args(["build", "--release", "--bin", "plexus"]),
    )?;
    let bin = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("release/plexus");
    let mut table = String::from(
        "`plexus devnet` with its defaults (12 slots of 1 s, seed 1, every scripted event), \
         one process, every node a full host. CPU is the process's, per delivered message \
         (first receipts at a node, all topics); duplicates are receipts beyond the first per \
         delivered message.\n\n\
         | nodes | result | CPU µs / delivered msg | block p99 | attestation p99 | all topics p99 | duplicates / msg (block, all) | RSS / node | CPU s / node | wall |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
    );
    for nodes in DEVNET_NODES {
        let step = format!("plexus devnet --nodes {nodes}");
        eprintln!("==> {step}");
        let started = Instant::now();
        let mut child = Command::new(&bin)
            .args(["--json", "devnet", "--nodes", &nodes.to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("{step}: cannot start {}: {e}", bin.display()))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut report = None;
        for line in BufReader::new(stdout).lines() {
            let line = line.map_err(|e| format!("{step}: reading its output: {e}"))?;
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            match v["event"].as_str() {
                Some("slot") => eprintln!("    {step}: slot {}", v["slot"]),
                Some("report") => report = Some(v),
                _ => {}
            }
        }
        let status = child.wait().map_err(|e| format!("{step}: {e}"))?;
        let wall = started.elapsed().as_secs_f64();
        eprintln!("<== {step}: {:?} in {wall:.1}s", status.code());
        let r = report.ok_or_else(|| format!("{step}: no report line"))?;
        table.push_str(&devnet_row(&r, wall));
    }
    println!("{table}");
    Ok((table, t.elapsed().as_secs_f64()))
}

/// One table row from a devnet JSON report.
fn devnet_row(r: &serde_json::Value, wall: f64) -> String {
    let f = |v: &serde_json::Value| v.as_f64().unwrap_or(f64::NAN);
    let topics = r["topics"].as_array().cloned().unwrap_or_default();
    let topic = |name: &str| topics.iter().find(|t| t["name"] == name);
    let p99 = |name: &str| topic(name).map_or(f64::NAN, |t| f(&t["latency_ms"]["p99"]));
    let delivered: f64 = topics.iter().map(|t| f(&t["delivered"])).sum();
    let dup_receipts: f64 = topics
        .iter()
        .map(|t| f(&t["duplicates_per_message"]) * f(&t["delivered"]))
        .sum();
    let all_p99 = topics
        .iter()
        .map(|t| f(&t["latency_ms"]["p99"]))
        .fold(f64::NAN, f64::max);
    let nodes = f(&r["nodes"]);
    let cpu_node = f(&r["cpu_seconds_per_node"]);
    let reach: Vec<String> = topics
        .iter()
        .filter(|t| t["delivered"] != t["expected"])
        .map(|t| {
            format!(
                "{} {:.1} %",
                t["name"].as_str().unwrap_or("?"),
                100.0 * f(&t["reach"])
            )
        })
        .collect();
    let result = if r["ok"] == true {
        "OK".to_string()
    } else if reach.is_empty() {
        "FAILED (an event)".to_string()
    } else {
        format!("FAILED: {}", reach.join(", "))
    };
    format!(
        "| {nodes} | {result} | {:.1} | {:.0} ms | {:.0} ms | {:.0} ms | {:.2}, {:.2} | {:.1} MiB | {cpu_node:.2} | {wall:.0} s |\n",
        cpu_node * nodes / delivered.max(1.0) * 1e6,
        p99("beacon_block"),
        p99("beacon_attestation"),
        all_p99,
        topic("beacon_block").map_or(f64::NAN, |t| f(&t["duplicates_per_message"])),
        dup_receipts / delivered.max(1.0),
        f(&r["rss_mib_per_node"]),
    )
}

/// `cargo xtask bench`: run the end-to-end benchmark, the gossip benchmark, then the
/// Req/Resp serving benchmark, show their progress (stderr) and tables (stdout), and
/// write the tables to `docs/BENCHMARKS.md`.
fn bench(root: &Path) -> Result<(), String> {
    const E2E: &str = "cargo bench -p plexus-interop-tests --bench e2e";
    const GOSSIP: &str = "cargo bench -p plexus-interop-tests --bench gossip";
    const SERVE: &str = "cargo bench -p plexus-reqresp --bench serve";
    const DEVNET: &str = "plexus devnet --nodes 20, then --nodes 100 (release build)";
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into());
    let (table, e2e_secs) = run_bench(root, "plexus-interop-tests", "e2e")?;
    let (gossip_table, gossip_secs) = run_bench(root, "plexus-interop-tests", "gossip")?;
    let (serve_table, serve_secs) = run_bench(root, "plexus-reqresp", "serve")?;
    let (devnet_table, devnet_secs) = devnet_bench(root)?;
    let secs = e2e_secs + gossip_secs + serve_secs + devnet_secs;
    let date = command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]);
    let commit = command_output(
        "git",
        &[
            "-C",
            &root.to_string_lossy(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    );
    let dirty = !command_output(
        "git",
        &[
            "-C",
            &root.to_string_lossy(),
            "status",
            "--porcelain",
            "--untracked-files=no",
        ],
    )
    .eq("unknown");
    let code = if dirty {
        format!("commit {commit} plus uncommitted changes")
    } else {
        format!("commit {commit}")
    };
    let doc = format!(
        "# Benchmarks\n\n\
         plexus and rust-libp2p measured side by side on loopback, in one run, on one machine \
         (issue 4). Regenerate with:\n\n\
         ```sh\ncargo xtask bench     # runs: {E2E}, then: {GOSSIP}, then: {SERVE}, then: {DEVNET}\n```\n\n\
         The run took {secs:.0} s including the release builds (end to end {e2e_secs:.0} s, \
         gossip {gossip_secs:.0} s, Req/Resp {serve_secs:.0} s, devnet {devnet_secs:.0} s). \
         Date: {date}. Code: {code}.\n\n\
         Machine:\n\n{machine}- load average (1, 5, 15 min) when the run started: {load}\n\n\
         Micro-benchmarks (criterion, not part of this table): \
         `cargo bench -p plexus-yamux --bench frames`, \
         `cargo bench -p plexus-noise --bench backend` (see `docs/noise-crypto-backend.md`), \
         `cargo bench -p plexus-reqresp --bench codec` (the ssz_snappy codec: a 128 KiB block \
         chunk and a BlocksByRange request, encoded and decoded).\n\n\
         ## Result\n\n{table}\n\
         ## Gossip: a network of nodes, plexus versus rust-libp2p\n\n{gossip_table}\n\
         ## Req/Resp: serving blocks by range\n\n{serve_table}\n\
         ## Devnet: the whole stack, 20 and 100 nodes in one process\n\n{devnet_table}",
        machine = machine_description(),
    );
    let path = root.join("docs/BENCHMARKS.md");
    // Hand-written notes after the marker survive regeneration.
    let kept = std::fs::read_to_string(&path)
        .ok()
        .and_then(|old| old.find(NOTES_MARKER).map(|i| old[i..].to_string()))
        .unwrap_or_else(|| format!("{NOTES_MARKER}\n"));
    let doc = format!("{doc}\n{kept}");
    std::fs::write(&path, doc).map_err(|e| format!("{}: {e}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
