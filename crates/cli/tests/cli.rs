//! The `plexus` binary as a user runs it: `listen` in one process, `dial` and
//! `perf` in another, JSON lines on stdout, exit statuses for bad input.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_plexus");

/// A `plexus listen` process, killed on drop.
struct Listener {
    child: Child,
    peer_id: String,
    addr: String,
    /// The JSON events it prints after `ready`.
    events: mpsc::Receiver<Value>,
}

impl Listener {
    /// The next event named `name`, skipping others, within `limit`.
    fn wait_for(&self, name: &str, limit: Duration) -> Value {
        let end = std::time::Instant::now() + limit;
        loop {
            let left = end.saturating_duration_since(std::time::Instant::now());
            match self.events.recv_timeout(left) {
                Ok(ev) if ev["event"] == name => return ev,
                Ok(_) => {}
                Err(_) => panic!("no {name} event from the listener within {limit:?}"),
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn listen() -> Listener {
    listen_with(&[])
}

/// `plexus --json listen` with `extra` arguments after `listen`.
fn listen_with(extra: &[&str]) -> Listener {
    listen_on("/ip4/127.0.0.1/tcp/0", extra)
}

/// `plexus --json listen` on one address.
fn listen_with_addr(addr: &str) -> Listener {
    listen_on(addr, &[])
}

fn listen_on(addr: &str, extra: &[&str]) -> Listener {
    let mut child = Command::new(BIN)
        .args(["--json", "--listen", addr, "listen"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start plexus listen");
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().expect("a ready line").expect("utf-8");
    let ready: Value = serde_json::from_str(&first).expect("ready is JSON");
    assert_eq!(ready["event"], "ready", "{first}");
    let peer_id = ready["peer_id"].as_str().unwrap().to_string();
    let addr = ready["listen_addrs"][0]
        .as_str()
        .expect("one listen addr")
        .to_string();
    // Keep draining the listener's stdout so it never blocks on a full pipe; events go
    // to whoever asks, and are dropped when nobody does (a full or closed channel).
    let (tx, events) = mpsc::sync_channel(1024);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let ev: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("listener printed non-JSON ({e}): {line}"));
            let _ = tx.try_send(ev);
        }
    });
    Listener {
        child,
        peer_id,
        addr,
        events,
    }
}

fn run(args: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null());
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_with_deadline(child, Duration::from_secs(60))
}

fn wait_with_deadline(mut child: Child, limit: Duration) -> Output {
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("plexus did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn events(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn of<'a>(evs: &'a [Value], name: &str) -> Vec<&'a Value> {
    evs.iter().filter(|e| e["event"] == name).collect()
}

fn assert_one_line_error(out: &Output) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one error line on stderr: {err}");
    assert!(lines[0].starts_with("plexus: "), "{err}");
}

#[test]
fn dial_pings_identifies_and_closes() {
    let l = listen();
    let target = format!("{}/p2p/{}", l.addr, l.peer_id);
    let out = run(&["--json", "dial", &target, "--count", "3"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out);
    assert_eq!(evs[0]["event"], "ready");
    let opened = of(&evs, "connection_opened");
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["peer_id"], l.peer_id.as_str());
    let pings = of(&evs, "ping");
    assert_eq!(pings.len(), 3);
    for p in &pings {
        let rtt = p["rtt_ms"].as_f64().unwrap();
        assert!(rtt > 0.0 && rtt < 10_000.0, "{p}");
    }
    let ids = of(&evs, "identify");
    assert_eq!(ids.len(), 1);
    let id = ids[0];
    assert!(
        id["agent_version"].as_str().unwrap().starts_with("plexus/"),
        "{id}"
    );
    let protocols: Vec<&str> = id["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert!(protocols.contains(&"/ipfs/ping/1.0.0"), "{protocols:?}");
    assert!(protocols.contains(&"/ipfs/id/1.0.0"), "{protocols:?}");
    assert!(
        protocols.contains(&"/perf/1.0.0"),
        "the command enables perf: {protocols:?}"
    );
    assert_eq!(id["listen_addrs"][0], l.addr.as_str());
    assert!(
        id["observed_addr"]
            .as_str()
            .unwrap()
            .starts_with("/ip4/127.0.0.1/tcp/"),
        "{id}"
    );
    assert_eq!(of(&evs, "connection_closed").len(), 1);
}

#[test]
fn dial_and_perf_over_quic() {
    let l = listen_with_addr("/ip4/127.0.0.1/udp/0/quic-v1");
    assert!(l.addr.ends_with("/quic-v1"), "{}", l.addr);
    let target = format!("{}/p2p/{}", l.addr, l.peer_id);
    let out = run(&["--json", "dial", &target, "--count", "2"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out);
    let opened = of(&evs, "connection_opened");
    assert_eq!(opened[0]["security"], "/tls/1.0.0");
    assert_eq!(opened[0]["muxer"], "/quic-v1");
    assert_eq!(of(&evs, "ping").len(), 2);
    let id = of(&evs, "identify")[0];
    assert!(
        id["observed_addr"].as_str().unwrap().ends_with("/quic-v1"),
        "{id}"
    );
    let out = run(&[
        "--json",
        "perf",
        &target,
        "--upload",
        "3MiB",
        "--download",
        "2MiB",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out);
    let perf = of(&evs, "perf");
    assert_eq!(perf.len(), 1, "{evs:?}");
    assert_eq!(perf[0]["upload_bytes"], 3 << 20);
    assert_eq!(perf[0]["download_bytes"], 2 << 20);
}

#[test]
fn perf_moves_exactly_what_was_asked() {
    let l = listen();
    let out = run(&[
        "--json",
        "perf",
        &l.addr,
        "--upload",
        "3MiB",
        "--download",
        "2MiB",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out);
    let perf = of(&evs, "perf");
    assert_eq!(perf.len(), 1);
    assert_eq!(perf[0]["upload_bytes"], 3 * 1024 * 1024);
    assert_eq!(perf[0]["download_bytes"], 2 * 1024 * 1024);
    assert!(perf[0]["upload_seconds"].as_f64().unwrap() > 0.0);
    assert!(perf[0]["download_seconds"].as_f64().unwrap() > 0.0);
}

#[test]
fn malformed_multiaddr_is_bad_usage() {
    let out = run(&["dial", "/ip4/999.1.1.1/tcp/1"]);
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_error(&out);
}

#[test]
fn unreachable_address_fails_the_check() {
    // Bind then drop a listener to find a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(&[
        "--timeout",
        "5",
        "dial",
        &format!("/ip4/127.0.0.1/tcp/{port}"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_one_line_error(&out);
}

#[test]
fn wrong_peer_id_fails_the_check() {
    let l = listen();
    // A valid peer id that is not the listener's.
    let other = run(&["--json", "peer-id"]);
    let other: Value = serde_json::from_slice(&other.stdout).unwrap();
    let target = format!("{}/p2p/{}", l.addr, other["peer_id"].as_str().unwrap());
    let out = run(&["--json", "dial", &target]);
    assert_eq!(out.status.code(), Some(1));
    assert_one_line_error(&out);
    let evs = events(&out);
    assert_eq!(of(&evs, "error").len(), 1);
    assert!(of(&evs, "connection_opened").is_empty());
}

#[test]
fn keygen_then_peer_id_agree_for_both_key_types() {
    let dir = std::env::temp_dir().join(format!("plexus-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (kind, prefix) in [("secp256k1", "16Uiu2"), ("ed25519", "12D3KooW")] {
        let path = dir.join(kind);
        let path = path.to_str().unwrap();
        let gen_out = run(&["--json", "--key-type", kind, "keygen", "--out", path]);
        assert!(gen_out.status.success());
        let generated: Value = serde_json::from_slice(&gen_out.stdout).unwrap();
        let shown = run(&["--json", "--key", path, "peer-id"]);
        let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
        assert_eq!(generated["peer_id"], shown["peer_id"]);
        assert!(
            shown["peer_id"].as_str().unwrap().starts_with(prefix),
            "{shown}"
        );
    }
    let bad = dir.join("garbage");
    std::fs::write(&bad, b"not a key").unwrap();
    let out = run(&["--key", bad.to_str().unwrap(), "peer-id"]);
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_error(&out);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn muxer_flag_selects_mplex_or_yamux() {
    let l = listen();
    for (flag, want) in [
        ("mplex", "/mplex/6.7.0"),
        ("yamux", "/yamux/1.0.0"),
        ("auto", "/yamux/1.0.0"),
    ] {
        let out = run(&["--json", "--muxer", flag, "dial", &l.addr, "--count", "1"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let evs = events(&out);
        assert_eq!(
            of(&evs, "connection_opened")[0]["muxer"],
            want,
            "--muxer {flag}"
        );
        assert_eq!(of(&evs, "ping").len(), 1);
    }
}

const TOPIC: &str = "/eth2/00000000/beacon_block/ssz_snappy";

#[test]
fn dial_publishes_and_listen_prints_the_gossip() {
    let l = listen_with(&["--topic", TOPIC, "--topic", "other"]);
    let target = format!("{}/p2p/{}", l.addr, l.peer_id);
    let out = run(&[
        "--json",
        "dial",
        &target,
        "--count",
        "1",
        "--topic",
        TOPIC,
        "--publish",
        "hello",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let evs = events(&out);
    assert_eq!(evs[0]["event"], "ready");
    assert_eq!(evs[0]["topics"][0], TOPIC);
    let dialer = evs[0]["peer_id"].as_str().unwrap();
    let mesh = of(&evs, "mesh");
    assert_eq!(mesh.len(), 1);
    assert_eq!(mesh[0]["topic"], TOPIC);
    assert_eq!(mesh[0]["mesh_peers"][0], l.peer_id.as_str());
    let published = of(&evs, "published");
    assert_eq!(published.len(), 1, "{evs:?}");
    let p = published[0];
    assert_eq!(p["topic"], TOPIC);
    assert_eq!(p["size"], 5);
    assert!(p["peers"].as_u64().unwrap() >= 1, "{p}");
    let id = p["id"].as_str().unwrap();
    // Content ids of unsigned messages: 20 bytes, hex.
    assert_eq!(id.len(), 40, "{p}");
    assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{p}");
    // The ping and identify of a plain dial still happen, and the dialer closes.
    assert_eq!(of(&evs, "ping").len(), 1);
    assert_eq!(of(&evs, "identify").len(), 1);
    assert_eq!(of(&evs, "connection_closed").len(), 1);

    let g = l.wait_for("gossip", Duration::from_secs(10));
    assert_eq!(g["topic"], TOPIC, "{g}");
    assert_eq!(g["size"], 5, "{g}");
    assert_eq!(g["from"], dialer, "{g}");
    assert_eq!(g["id"], id, "{g}");
    let keys: Vec<&str> = g.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, ["event", "topic", "id", "size", "from"]);
}

#[test]
fn dial_topic_without_a_gossiping_peer_fails_after_the_timeout() {
    // A listener without --topic runs no gossipsub: no mesh can form.
    let l = listen();
    let start = std::time::Instant::now();
    let out = run(&[
        "--json",
        "--timeout",
        "2",
        "dial",
        &l.addr,
        "--count",
        "0",
        "--topic",
        TOPIC,
        "--publish",
        "hello",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(start.elapsed() >= Duration::from_secs(2));
    assert_one_line_error(&out);
    let evs = events(&out);
    assert!(of(&evs, "published").is_empty());
    let err = of(&evs, "error");
    assert_eq!(err.len(), 1);
    assert!(
        err[0]["message"].as_str().unwrap().contains("no mesh peer"),
        "{}",
        err[0]
    );
}

#[test]
fn publish_without_topic_is_bad_usage() {
    let out = run(&["dial", "/ip4/127.0.0.1/tcp/1", "--publish", "hello"]);
    assert_eq!(out.status.code(), Some(2));
    assert_one_line_error(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--topic"), "{err}");
}
