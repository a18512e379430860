//! js-libp2p (Lodestar's stack) ⇄ a plexus host, over TCP + Noise + one muxer.
//!
//! The js side is `js/peer.mjs`, run with Node.js: js-libp2p 2.x (yamux 7, noise
//! 16, mplex 11) and 3.x (yamux 8, noise 17, mplex 12), pinned in
//! `js/package-lock.json` and installed here with `npm ci` once per test binary
//! (skipped while `node_modules` matches the lock). Both majors are tested with
//! both muxers: `@libp2p/mplex` 12.x supports libp2p 3.x.
//!
//! Each combination (major × muxer × who dials) checks, with plexus offering
//! only the muxer under test:
//! - the connection: each side authenticated the other, and the muxer is the
//!   one under test;
//! - ping both ways;
//! - identify both ways: plexus gets js's agent version (`js-libp2p/<major>.`),
//!   protocol version, protocols and public key; js gets plexus's (read both
//!   from js's identify result and its peer store);
//! - two streams of `/plexus-interop/1.0.0` at once, one opened by each side:
//!   16 MiB each way, checked byte for byte, with a half-close in both
//!   directions (the opener sends and closes its write side, the acceptor reads
//!   to EOF, then sends and closes, and the opener reads to EOF).
//!
//! No `node`/`npm` on PATH fails every test with one line saying what to
//! install; nothing is skipped.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use plexus_host::{HandlerOpts, Host, HostConfig, PeerId};
use plexus_identify::{IdentifyConfig, IdentifyService};
use plexus_identity::Keypair;
use plexus_mplex::MplexConfig;
use plexus_multiaddr::{Multiaddr, Protocol};
use plexus_ping::{PingConfig, PingService};
use plexus_yamux::YamuxConfig;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::mpsc;

const PROTO: &str = "/plexus-interop/1.0.0";
/// Bytes each way on each stream.
const SIZE: usize = 16 * 1024 * 1024;
/// Time for a whole combination: js start, connection, checks and streams.
const LIMIT: Duration = Duration::from_secs(180);
const NEED_NODE: &str =
    "js-libp2p interop needs Node.js >= 20 and npm on PATH (Debian: apt-get install nodejs npm)";

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

/// Deterministic bytes, shared with `pattern` in `js/peer.mjs`: xorshift32 from
/// `(seed * 0x9E3779B9) | 1`, 4 bytes little-endian per step.
fn pattern(seed: u32, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9) | 1;
    let mut out = Vec::with_capacity(len + 4);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

fn first_diff(a: &[u8], b: &[u8]) -> String {
    if a.len() != b.len() {
        return format!("length {} != {}", a.len(), b.len());
    }
    let i = a.iter().zip(b).position(|(x, y)| x != y).unwrap();
    format!("first difference at byte {i}")
}

// ---------- installing the js side ----------

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

/// `npm ci` once per test binary, unless `node_modules` was installed from
/// this very lock file (a copy of it is kept as the stamp).
fn npm_ready() -> Result<(), String> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY.get_or_init(install).clone()
}

fn install() -> Result<(), String> {
    let version = std::process::Command::new("node")
        .arg("--version")
        .output()
        .map_err(|e| format!("{NEED_NODE}: `node --version`: {e}"))?;
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    let major: u32 = version
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < 20 {
        return Err(format!("{NEED_NODE}: found node {version:?}"));
    }
    std::process::Command::new("npm")
        .arg("--version")
        .output()
        .map_err(|e| format!("{NEED_NODE}: `npm --version`: {e}"))?;

    let dir = js_dir();
    let lock = std::fs::read(dir.join("package-lock.json"))
        .map_err(|e| format!("reading js/package-lock.json: {e}"))?;
    let stamp = dir.join("node_modules").join(".plexus-installed-lock");
    if std::fs::read(&stamp).is_ok_and(|s| s == lock) {
        return Ok(());
    }
    let out = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("{NEED_NODE}: `npm ci`: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "`npm ci` in {} failed ({}):\n{}",
            dir.display(),
            out.status,
            tail.join("\n")
        ));
    }
    std::fs::write(&stamp, &lock).map_err(|e| format!("writing {}: {e}", stamp.display()))
}

// ---------- the js peer ----------

/// One line of the js peer's stdout: the event, then `key=value` fields.
#[derive(Debug)]
struct Line {
    event: String,
    fields: Vec<(String, String)>,
}

impl Line {
    fn parse(s: &str) -> Line {
        let mut parts = s.split('\t');
        let event = parts.next().unwrap_or_default().to_owned();
        let fields = parts
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_owned(), v.to_owned()),
                None => (p.to_owned(), String::new()),
            })
            .collect();
        Line { event, fields }
    }

    fn get(&self, key: &str) -> &str {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {key} in {self:?}"))
    }

    fn list(&self, key: &str) -> Vec<&str> {
        self.get(key).split(',').filter(|s| !s.is_empty()).collect()
    }
}

struct JsPeer {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<Line>,
    stderr: Arc<Mutex<String>>,
}

impl JsPeer {
    fn spawn(major: u32, mux: Mux, mode: &[String]) -> JsPeer {
        let mut child = Command::new("node")
            .arg("peer.mjs")
            .arg(major.to_string())
            .arg(mux.name())
            .args(mode)
            .current_dir(js_dir())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{NEED_NODE}: spawning node: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel(64);
        tokio::spawn(async move {
            let mut r = BufReader::new(stdout).lines();
            while let Ok(Some(l)) = r.next_line().await {
                if tx.send(Line::parse(&l)).await.is_err() {
                    break;
                }
            }
        });
        // Keep the last 16 KiB of stderr for failure messages.
        let stderr = Arc::new(Mutex::new(String::new()));
        let keep = stderr.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                let mut s = keep.lock().unwrap();
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
                if s.len() > 16 * 1024 {
                    let cut = s.len() - 16 * 1024;
                    let cut = (cut..s.len()).find(|&i| s.is_char_boundary(i)).unwrap();
                    s.drain(..cut);
                }
            }
        });
        JsPeer {
            child,
            stdin,
            lines,
            stderr,
        }
    }

    /// The next line with `event`; panics on an `error` line or an early exit.
    async fn expect(&mut self, event: &str) -> Line {
        loop {
            let Some(l) = self.lines.recv().await else {
                let status = self.child.wait().await;
                panic!(
                    "js peer exited ({status:?}) before {event:?}; stderr:\n{}",
                    self.stderr.lock().unwrap()
                );
            };
            if l.event == "error" {
                panic!(
                    "js peer failed in {}: {}\nstderr:\n{}",
                    l.get("where"),
                    l.get("message"),
                    self.stderr.lock().unwrap()
                );
            }
            if l.event == event {
                return l;
            }
        }
    }

    /// Close its stdin (it stops then) and check it exits cleanly.
    async fn finish(mut self) {
        drop(self.stdin.take());
        let status = tokio::time::timeout(Duration::from_secs(20), self.child.wait())
            .await
            .expect("js peer exits once its stdin closes")
            .unwrap();
        assert!(
            status.success(),
            "js peer exited with {status}; stderr:\n{}",
            self.stderr.lock().unwrap()
        );
    }
}

// ---------- the plexus side ----------

struct Plexus {
    host: Host,
    identify: plexus_identify::IdentifyHandle,
    ping: plexus_ping::PingHandle,
    incoming: plexus_host::Incoming,
}

/// A plexus host offering only `mux`, serving identify, ping and the test protocol.
async fn plexus_host(mux: Mux) -> Plexus {
    let mut cfg = HostConfig::new(Keypair::generate_secp256k1());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    let limits = cfg.limits.mux.clone();
    cfg.muxers = match mux {
        Mux::Yamux => vec![Arc::new(YamuxConfig::new(Default::default(), limits))],
        Mux::Mplex => vec![Arc::new(MplexConfig::new(Default::default(), limits))],
    };
    let host = Host::new(cfg).await.unwrap();
    let identify = IdentifyService::spawn(host.clone(), IdentifyConfig::default()).unwrap();
    let ping = PingService::spawn(
        host.clone(),
        PingConfig {
            interval: None,
            ..Default::default()
        },
    )
    .unwrap();
    let incoming = host.handle(PROTO, HandlerOpts::default()).unwrap();
    Plexus {
        host,
        identify,
        ping,
        incoming,
    }
}

/// Plexus opens a stream: sends pattern 3, half-closes, reads pattern 4 to EOF.
async fn plexus_opener(host: Host, js: PeerId) {
    let (proto, mut s) = host.new_stream(js, &[PROTO]).await.unwrap();
    assert_eq!(proto, PROTO);
    s.write_all(&pattern(3, SIZE)).await.unwrap();
    s.shutdown().await.unwrap();
    let mut got = Vec::with_capacity(SIZE);
    s.read_to_end(&mut got).await.unwrap();
    let want = pattern(4, SIZE);
    assert!(
        got == want,
        "plexus opener received wrong bytes: {}",
        first_diff(&got, &want)
    );
}

/// Plexus accepts js's stream: reads pattern 1 to EOF, sends pattern 2, closes.
async fn plexus_acceptor(mut incoming: plexus_host::Incoming, js: PeerId) {
    let inbound = incoming.next().await.expect("js opens a stream");
    assert_eq!(inbound.peer, js);
    assert_eq!(inbound.protocol, PROTO);
    let mut s = inbound.stream;
    let mut got = Vec::with_capacity(SIZE);
    s.read_to_end(&mut got).await.unwrap();
    let want = pattern(1, SIZE);
    assert!(
        got == want,
        "plexus acceptor received wrong bytes: {}",
        first_diff(&got, &want)
    );
    s.write_all(&pattern(2, SIZE)).await.unwrap();
    s.shutdown().await.unwrap();
}

/// What plexus learns about js: ping and identify.
async fn plexus_checks_js(
    ping: &plexus_ping::PingHandle,
    identify: &plexus_identify::IdentifyHandle,
    js: PeerId,
    major: u32,
) {
    let rtt = ping.ping(js).await.expect("plexus pings js-libp2p");
    assert!(rtt > Duration::ZERO && rtt < LIMIT, "{rtt:?}");
    let info = identify
        .identify(js)
        .await
        .expect("plexus identifies js-libp2p");
    let agent = info.agent_version.as_deref().unwrap_or_default();
    assert!(
        agent.starts_with(&format!("js-libp2p/{major}.")),
        "js agent version {agent:?}"
    );
    assert_eq!(info.protocol_version.as_deref(), Some("ipfs/0.1.0"));
    for want in ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", PROTO] {
        assert!(
            info.protocols.iter().any(|q| q == want),
            "{want} in {:?}",
            info.protocols
        );
    }
    let key = info.public_key.as_ref().expect("js sends its public key");
    assert_eq!(key.to_peer_id(), js);
}

/// What js reported about plexus.
fn check_js_saw_plexus(identify: &Line, ping: &Line, host: &Host) {
    let rtt: f64 = ping.get("rtt_ms").parse().unwrap();
    assert!(rtt >= 0.0 && rtt < LIMIT.as_millis() as f64, "{rtt}");
    assert_eq!(identify.get("peer"), host.peer_id().to_string());
    for key in ["agent_version", "peer_store_agent_version"] {
        assert_eq!(identify.get(key), host.agent_version(), "{key}");
    }
    assert_eq!(
        identify.get("protocol_version"),
        IdentifyConfig::default().protocol_version
    );
    for key in ["protocols", "peer_store_protocols"] {
        let protocols = identify.list(key);
        for want in ["/ipfs/id/1.0.0", "/ipfs/ping/1.0.0", PROTO] {
            assert!(protocols.contains(&want), "{key}: {want} in {protocols:?}");
        }
    }
    let ours: Vec<String> = host.listen_addrs().iter().map(|a| a.to_string()).collect();
    let theirs = identify.list("listen_addrs");
    assert!(!theirs.is_empty(), "js got plexus's listen addresses");
    for a in theirs {
        assert!(ours.iter().any(|o| o == a), "{a} not in {ours:?}");
    }
    assert!(
        identify
            .get("observed_addr")
            .starts_with("/ip4/127.0.0.1/tcp/"),
        "{}",
        identify.get("observed_addr")
    );
    assert_eq!(identify.get("public_key"), "yes");
}

/// One combination: js-libp2p `major` over `mux`, dialing plexus or dialed by it.
async fn run(major: u32, mux: Mux, js_dials: bool) {
    tokio::task::spawn_blocking(npm_ready)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let p = plexus_host(mux).await;
    let me = p.host.peer_id();
    let mode: Vec<String> = if js_dials {
        let addr = p.host.listen_addrs()[0].clone().with(Protocol::P2p(me));
        vec!["dial".into(), addr.to_string()]
    } else {
        vec!["listen".into(), "--remote".into(), me.to_string()]
    };
    let mut js = JsPeer::spawn(major, mux, &mode);

    tokio::time::timeout(LIMIT, async {
        let started = js.expect("started").await;
        let js_peer: PeerId = started.get("peer").parse().unwrap();
        assert!(
            started
                .get("agent_version")
                .starts_with(&format!("js-libp2p/{major}.")),
            "{started:?}"
        );
        if !js_dials {
            let l = js.expect("listening").await;
            let addr: Multiaddr = l.get("addr").parse().unwrap();
            assert_eq!(addr.peer_id(), Some(js_peer));
            let conn = p.host.connect(vec![addr]).await.unwrap();
            assert_eq!(conn.peer, js_peer, "plexus authenticated js");
        }
        let connected = js.expect("connected").await;
        assert_eq!(
            connected.get("peer"),
            me.to_string(),
            "js authenticated plexus"
        );
        let conn = loop {
            if let Some(c) = p.host.connection(&js_peer) {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(conn.peer, js_peer, "plexus authenticated js");
        assert_eq!(conn.muxer, mux.protocol());

        let opener = tokio::spawn(plexus_opener(p.host.clone(), js_peer));
        let acceptor = tokio::spawn(plexus_acceptor(p.incoming, js_peer));
        plexus_checks_js(&p.ping, &p.identify, js_peer, major).await;

        let ping = js.expect("ping").await;
        let identify = js.expect("identify").await;
        check_js_saw_plexus(&identify, &ping, &p.host);
        let mut roles = Vec::new();
        for _ in 0..2 {
            let s = js.expect("stream").await;
            assert_eq!(s.get("sent"), SIZE.to_string(), "{s:?}");
            assert_eq!(s.get("received"), SIZE.to_string(), "{s:?}");
            roles.push(s.get("role").to_owned());
        }
        roles.sort();
        assert_eq!(roles, ["acceptor", "opener"]);
        js.expect("done").await;
        opener.await.unwrap();
        acceptor.await.unwrap();
        // Still connected after all of it, over the same muxer.
        let after = p.host.connection(&js_peer).expect("still connected");
        assert_eq!(after.muxer, mux.protocol());
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "js-libp2p {major} over {} timed out; js stderr:\n{}",
            mux.name(),
            js.stderr.lock().unwrap()
        )
    });
    js.finish().await;
    p.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_2_yamux_dials_plexus() {
    run(2, Mux::Yamux, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plexus_dials_js_libp2p_2_yamux() {
    run(2, Mux::Yamux, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_2_mplex_dials_plexus() {
    run(2, Mux::Mplex, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plexus_dials_js_libp2p_2_mplex() {
    run(2, Mux::Mplex, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_3_yamux_dials_plexus() {
    run(3, Mux::Yamux, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plexus_dials_js_libp2p_3_yamux() {
    run(3, Mux::Yamux, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_3_mplex_dials_plexus() {
    run(3, Mux::Mplex, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plexus_dials_js_libp2p_3_mplex() {
    run(3, Mux::Mplex, false).await;
}
