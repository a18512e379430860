//! js-libp2p (Lodestar's stack) ⇄ a plexus host, over TCP + Noise + one muxer,
//! and over QUIC.
//!
//! The js side is `js/peer.mjs`, run with Node.js: js-libp2p 2.x (yamux 7, noise
//! 16, mplex 11) and 3.x (yamux 8, noise 17, mplex 12, and QUIC from
//! `@chainsafe/libp2p-quic` 2.1, Lodestar's QUIC transport, a napi-rs module
//! with prebuilt binaries), pinned in `js/package-lock.json` and installed here
//! with `npm ci` once per test binary (skipped while `node_modules` matches the
//! lock). Both majors are tested with both muxers: `@libp2p/mplex` 12.x
//! supports libp2p 3.x. QUIC is tested with 3.x only: `@chainsafe/libp2p-quic`
//! 2.x needs libp2p 3's interfaces (1.x, for libp2p 2, is not installed).
//!
//! Each combination (major × muxer × who dials) checks, with plexus offering
//! only the muxer under test (here and in the gossipsub tests; for QUIC the
//! plexus host runs QUIC and TCP, js QUIC alone):
//! - the connection: each side authenticated the other, the muxer (and
//!   security protocol) is the one under test, and the address js reports for
//!   plexus is one of that transport (`/udp/…/quic-v1` for QUIC);
//! - ping both ways;
//! - identify both ways: plexus gets js's agent version (`js-libp2p/<major>.`),
//!   protocol version, protocols and public key; js gets plexus's (read both
//!   from js's identify result and its peer store); the address each side
//!   observed for the other is one of the transport under test, and when
//!   plexus dialed over QUIC js observed plexus's QUIC listen address (plexus
//!   dials from its listening endpoint);
//! - two streams of `/plexus-interop/1.0.0` at once, one opened by each side:
//!   16 MiB each way, checked byte for byte, with a half-close in both
//!   directions (the opener sends and closes its write side, the acceptor reads
//!   to EOF, then sends and closes, and the opener reads to EOF).
//!
//! Gossipsub (the `gossipsub_*` tests, all eight TCP combinations too): js runs
//! `@chainsafe/libp2p-gossipsub` 14.x with libp2p 2.x and `@libp2p/gossipsub`
//! 17.x with 3.x (gossipsub moved into the js-libp2p monorepo for libp2p 3; the
//! ChainSafe package stops at 14.x, whose dependencies are libp2p 2.x's),
//! configured like Lodestar: `StrictNoSign`, a content message id (the first 20
//! bytes of SHA-256(topic length u64 LE ‖ topic ‖ data): node:crypto on the js
//! side, the same function as plexus's `message_id_fn`), async validation,
//! flood publish, no PX; with a 100 ms heartbeat, D = D_low = 2, D_high = 4
//! on both sides and js's IDONTWANT threshold at 1 KiB. Both js majors speak
//! `/meshsub/1.2.0` at most (plexus offers 1.3.0 first). The js node and two
//! plexus hosts a and b form a triangle (a sends no IDONTWANT, so whatever b
//! counts came from js), all on `/eth2/<digest>/beacon_block/ssz_snappy`.
//! Messages of 1 KiB or more are validated only when the test says so, on
//! every node, so the first copy of each comes from its publisher. Checked:
//! - the meshes: a and b graft js (`Event::Grafted`, and js in their
//!   snapshots' meshes), js's mesh holds a and b (`getMeshPeers`) and js
//!   emitted `gossipsub:graft` for both;
//! - a small and a 4 KiB message each way: same data, topic and message id on
//!   both sides, no author fields (StrictNoSign);
//! - IDONTWANT both ways on a's 4 KiB message: js, getting it from a, sends
//!   IDONTWANT to b (b's `stats.idontwant_received` > 0) and b sends one to js
//!   (js's IDONTWANT handler saw that id from b); once b accepts the message it
//!   does not forward it to js (`stats.idontwant_skipped` > 0); once js
//!   accepts it, js 17.x does not forward it to b either (b's duplicate count
//!   stays put; 14.x records IDONTWANT but forwards anyway, so not checked);
//! - leaving is a PRUNE: b unsubscribes and js gets PRUNE from b; js
//!   unsubscribes and a gets `Event::Pruned { by: MeshChange::Remote }` and
//!   `Event::Unsubscribed` for js, which leaves a's mesh;
//! - no stream fault on either plexus host (plexus decoded all js sent).
//!
//!
//! Lazy push (`gossipsub_lazy_push_*`, js 2.x and 3.x over yamux): see
//! `run_gossip_lazy`; js pulls what a plexus relay announces with IHAVE.
//!
//! No `node`/`npm` on PATH fails every test with one line saying what to
//! install; nothing is skipped.

#[path = "common/js.rs"]
mod js_common;
use js_common::{Line, Node, npm_ready, spawn_node};

use std::sync::{Arc, Mutex};
use std::time::Duration;

use plexus_gossipsub::{
    Acceptance, Config as GossipConfig, Event, GossipEvent, Gossipsub, GossipsubService,
    MeshChange, MessageId, RawMessage, ServiceConfig, Signing, Snapshot, TopicHash,
    default_message_id,
};
use plexus_host::{HandlerOpts, Host, HostConfig, PeerId};
use plexus_identify::{IdentifyConfig, IdentifyService};
use plexus_identity::Keypair;
use plexus_mplex::MplexConfig;
use plexus_multiaddr::{Multiaddr, Protocol};
use plexus_ping::{PingConfig, PingService};
use plexus_quic::{QuicConfig, QuicTransport};
use plexus_tcp::TcpTransport;
use plexus_yamux::YamuxConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin};
use tokio::sync::mpsc;

const PROTO: &str = "/plexus-interop/1.0.0";
/// Bytes each way on each stream.
const SIZE: usize = 16 * 1024 * 1024;
/// Time for a whole combination: js start, connection, checks and streams.
const LIMIT: Duration = Duration::from_secs(180);
/// Time for one wait of the gossipsub tests (a mesh, a message, an IDONTWANT, a PRUNE).
const WAIT: Duration = Duration::from_secs(10);
/// Time for a whole gossipsub combination.
const GOSSIP_LIMIT: Duration = Duration::from_secs(90);

/// The muxer under test: yamux or mplex over TCP + Noise, or QUIC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mux {
    Yamux,
    Mplex,
    Quic,
}

impl Mux {
    /// The name `js/peer.mjs` takes.
    fn name(self) -> &'static str {
        match self {
            Mux::Yamux => "yamux",
            Mux::Mplex => "mplex",
            Mux::Quic => "quic",
        }
    }

    /// The muxer name in the plexus host's connection info.
    fn protocol(self) -> &'static str {
        match self {
            Mux::Yamux => "/yamux/1.0.0",
            Mux::Mplex => "/mplex/6.7.0",
            Mux::Quic => plexus_quic::MUXER,
        }
    }

    /// The security protocol in the plexus host's connection info.
    fn security(self) -> &'static str {
        match self {
            Mux::Yamux | Mux::Mplex => plexus_noise::PROTOCOL_ID,
            Mux::Quic => plexus_quic::SECURITY,
        }
    }

    /// Whether `addr` is a loopback address of this muxer's transport.
    fn is_ours(self, addr: &str) -> bool {
        match self {
            Mux::Yamux | Mux::Mplex => addr.starts_with("/ip4/127.0.0.1/tcp/"),
            Mux::Quic => {
                addr.starts_with("/ip4/127.0.0.1/udp/") && addr.split('/').nth(5) == Some("quic-v1")
            }
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

// ---------- the js peer ----------

impl Line {
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
        let mut args = vec![major.to_string(), mux.name().to_string()];
        args.extend_from_slice(mode);
        let Node {
            child,
            stdin,
            lines,
            stderr,
        } = spawn_node("peer.mjs", &args, 64);
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

    /// Send one command (gossip mode): the fields, tab-separated, on one line.
    async fn send(&mut self, fields: &[&str]) {
        let mut line = fields.join("\t");
        line.push('\n');
        let stdin = self.stdin.as_mut().expect("js stdin is open");
        stdin
            .write_all(line.as_bytes())
            .await
            .expect("writing a command to the js peer");
        stdin.flush().await.expect("flushing the js peer's stdin");
    }

    /// Send a command and wait for its answer. js bounds its own waits by
    /// `WAIT` (answering `error`); this bounds the answer a little later.
    async fn ask(&mut self, fields: &[&str], reply: &str) -> Line {
        self.send(fields).await;
        match tokio::time::timeout(WAIT + Duration::from_secs(5), self.expect(reply)).await {
            Ok(l) => l,
            Err(_) => panic!(
                "no {reply:?} from js for {:?}; stderr:\n{}",
                fields.first(),
                self.stderr.lock().unwrap()
            ),
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

/// A plexus host offering only `mux` (for QUIC: QUIC, and TCP with the default
/// muxers), serving identify, ping and the test protocol.
async fn plexus_host(mux: Mux) -> Plexus {
    let key = Keypair::generate_secp256k1();
    let mut cfg = HostConfig::new(key.clone());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    let limits = cfg.limits.mux.clone();
    match mux {
        Mux::Yamux => cfg.muxers = vec![Arc::new(YamuxConfig::new(Default::default(), limits))],
        Mux::Mplex => cfg.muxers = vec![Arc::new(MplexConfig::new(Default::default(), limits))],
        Mux::Quic => {
            cfg.transports = vec![
                Arc::new(QuicTransport::new(&key, QuicConfig::default())),
                Arc::new(TcpTransport::new(cfg.tcp.clone())),
            ];
            cfg.listen
                .insert(0, "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap());
        }
    }
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

/// The host's listen address on `mux`'s transport.
fn listen_addr(host: &Host, mux: Mux) -> Multiaddr {
    host.listen_addrs()
        .into_iter()
        .find(|a| mux.is_ours(&a.to_string()))
        .expect("the host listens on the transport under test")
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

/// What plexus learns about js: ping and identify. When plexus dialed over
/// QUIC, js observed plexus's QUIC listen address.
async fn plexus_checks_js(
    host: &Host,
    ping: &plexus_ping::PingHandle,
    identify: &plexus_identify::IdentifyHandle,
    js: PeerId,
    major: u32,
    mux: Mux,
    plexus_dialed: bool,
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
    let observed = info
        .observed_addr
        .as_ref()
        .expect("js sends what it observed");
    assert!(mux.is_ours(&observed.to_string()), "{observed}");
    // js appends our peer id (its connection's remote address).
    assert!(
        observed.peer_id().is_none_or(|p| p == host.peer_id()),
        "{observed}"
    );
    if mux == Mux::Quic && plexus_dialed {
        assert_eq!(observed.without_p2p(), listen_addr(host, mux));
    }
}

/// What js reported about plexus.
fn check_js_saw_plexus(identify: &Line, ping: &Line, host: &Host, mux: Mux) {
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
    let observed = identify.get("observed_addr");
    assert!(mux.is_ours(observed), "{observed}");
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
        let addr = listen_addr(&p.host, mux).with(Protocol::P2p(me));
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
        assert!(mux.is_ours(connected.get("addr")), "{connected:?}");
        let conn = loop {
            if let Some(c) = p.host.connection(&js_peer) {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        };
        assert_eq!(conn.peer, js_peer, "plexus authenticated js");
        assert_eq!(conn.security, mux.security());
        assert_eq!(conn.muxer, mux.protocol());
        assert!(
            mux.is_ours(&conn.remote_addr.to_string()),
            "{}",
            conn.remote_addr
        );

        let opener = tokio::spawn(plexus_opener(p.host.clone(), js_peer));
        let acceptor = tokio::spawn(plexus_acceptor(p.incoming, js_peer));
        plexus_checks_js(
            &p.host,
            &p.ping,
            &p.identify,
            js_peer,
            major,
            mux,
            !js_dials,
        )
        .await;

        let ping = js.expect("ping").await;
        let identify = js.expect("identify").await;
        check_js_saw_plexus(&identify, &ping, &p.host, mux);
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

// ---------- gossipsub ----------

/// The topic of the gossipsub tests (a beacon block topic with a made-up fork digest).
const TOPIC: &str = "/eth2/4a26c58b/beacon_block/ssz_snappy";
/// The size of the large messages: above both sides' IDONTWANT thresholds.
const LARGE: usize = 4096;
/// Messages this large wait for the test's verdict on both sides (js: `HOLD`
/// in `js/peer.mjs`), so nobody forwards a large message before the test has
/// seen its IDONTWANTs: every first copy then comes from the publisher.
/// Smaller ones are accepted at once.
const HOLD: usize = 1024;

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

/// The content message id of `msgId` in `js/peer.mjs`: the first 20 bytes of
/// SHA-256(topic length u64 LE ‖ topic ‖ data). plexus's `default_message_id`
/// computes exactly that for a message without `from`/`seqno`, so this hands
/// it the content only (this crate has no SHA-256 of its own).
fn content_id(m: &RawMessage) -> MessageId {
    default_message_id(&RawMessage {
        from: None,
        seqno: None,
        signature: None,
        key: None,
        ..m.clone()
    })
}

/// The plexus side of the gossipsub tests: js's settings (see `js/peer.mjs`).
fn gossip_config(sends_idontwant: bool) -> GossipConfig {
    let heartbeat = Duration::from_millis(100);
    let mut cfg = GossipConfig {
        heartbeat_interval: heartbeat,
        heartbeat_initial_delay: Duration::from_millis(50),
        backoff_slack: heartbeat,
        mesh_n: 2,
        mesh_n_low: 2,
        mesh_n_high: 4,
        mesh_outbound_min: 0,
        mesh_outbound_min_score_kept: 1,
        gossip_lazy: 2,
        signing: Signing::StrictNoSign,
        message_id_fn: Arc::new(content_id),
        ..GossipConfig::default()
    };
    if !sends_idontwant {
        cfg.idontwant_message_size_threshold = usize::MAX;
        cfg.idontwant_on_publish_threshold = usize::MAX;
    }
    cfg
}

/// A plexus host running gossipsub; a task logs every event and accepts every
/// message under `HOLD` bytes (the test answers for larger ones).
struct GossipNode {
    name: &'static str,
    p: Plexus,
    gs: Gossipsub,
    log: Arc<Mutex<Vec<GossipEvent>>>,
}

impl GossipNode {
    async fn new(name: &'static str, mux: Mux, sends_idontwant: bool) -> GossipNode {
        GossipNode::with_config(name, mux, gossip_config(sends_idontwant)).await
    }

    async fn with_config(name: &'static str, mux: Mux, cfg: GossipConfig) -> GossipNode {
        let p = plexus_host(mux).await;
        let (gs, mut events) =
            GossipsubService::spawn(p.host.clone(), cfg, ServiceConfig::default(), None).unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (g, l) = (gs.clone(), log.clone());
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                if let GossipEvent::Router(Event::Message { id, message, .. }) = &ev
                    && message.data.len() < HOLD
                {
                    let _ = g.report_validation(id.clone(), Acceptance::Accept).await;
                }
                l.lock().unwrap().push(ev);
            }
        });
        GossipNode { name, p, gs, log }
    }

    fn peer(&self) -> PeerId {
        self.p.host.peer_id()
    }

    fn addr(&self) -> Multiaddr {
        self.p.host.listen_addrs()[0]
            .clone()
            .with(Protocol::P2p(self.peer()))
    }

    /// The first logged router event `f` picks, waiting up to `WAIT`.
    async fn wait_event<T>(&self, what: &str, mut f: impl FnMut(&Event) -> Option<T>) -> T {
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            let found = self.log.lock().unwrap().iter().find_map(|e| match e {
                GossipEvent::Router(e) => f(e),
                _ => None,
            });
            if let Some(t) = found {
                return t;
            }
            if tokio::time::Instant::now() >= end {
                panic!(
                    "plexus {}: no {what} within {WAIT:?}; events: {:?}",
                    self.name,
                    self.log.lock().unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The message with `id` (the first copy): its source and the message.
    async fn wait_message(&self, id: &str) -> (PeerId, RawMessage) {
        self.wait_event(&format!("message {id}"), |e| match e {
            Event::Message {
                source,
                id: got,
                message,
            } if got.to_string() == id => Some((*source, message.clone())),
            _ => None,
        })
        .await
    }

    async fn mesh(&self) -> Vec<PeerId> {
        let t: TopicHash = TOPIC.into();
        let snap = self.gs.snapshot().await.expect("gossipsub runs");
        snap.mesh
            .into_iter()
            .find(|(x, _)| *x == t)
            .map(|(_, m)| m)
            .unwrap_or_default()
    }

    /// Wait until our mesh of `TOPIC` holds every one of `peers`.
    async fn wait_mesh(&self, peers: &[PeerId]) {
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            let mesh = self.mesh().await;
            if peers.iter().all(|p| mesh.contains(p)) {
                return;
            }
            if tokio::time::Instant::now() >= end {
                panic!(
                    "plexus {}: mesh {mesh:?} lacks some of {peers:?} after {WAIT:?}; events: {:?}",
                    self.name,
                    self.log.lock().unwrap()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until a snapshot satisfies `f`; returns it.
    async fn wait_snapshot(&self, what: &str, f: impl Fn(&Snapshot) -> bool) -> Snapshot {
        let end = tokio::time::Instant::now() + WAIT;
        loop {
            let snap = self.gs.snapshot().await.expect("gossipsub runs");
            if f(&snap) {
                return snap;
            }
            if tokio::time::Instant::now() >= end {
                panic!(
                    "plexus {}: no {what} within {WAIT:?}; stats {:?}",
                    self.name, snap.stats
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Duplicate copies of `TOPIC` messages received so far.
    async fn duplicates(&self) -> u64 {
        let t: TopicHash = TOPIC.into();
        let snap = self.gs.snapshot().await.expect("gossipsub runs");
        snap.topics
            .into_iter()
            .find(|(x, _)| *x == t)
            .map_or(0, |(_, s)| s.duplicates)
    }

    fn faults(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|e| match e {
                GossipEvent::StreamFault(f) => Some(f.to_string()),
                _ => None,
            })
            .collect()
    }
}

/// A message as received by a plexus node: js's data, topic and id, no author.
fn check_plexus_got(node: &GossipNode, msg: &RawMessage, data: &[u8]) {
    assert!(
        msg.data[..] == data[..],
        "plexus {} received wrong data: {}",
        node.name,
        first_diff(&msg.data, data)
    );
    assert_eq!(msg.topic.as_str(), TOPIC);
    assert!(
        msg.from.is_none() && msg.seqno.is_none() && msg.signature.is_none() && msg.key.is_none(),
        "js sent author fields under StrictNoSign: {msg:?}"
    );
}

/// A message as js reported it: plexus's data, topic and id.
fn check_js_got(l: &Line, id: &MessageId, data: &[u8]) {
    assert_eq!(
        l.get("id"),
        id.to_string(),
        "js computed another message id"
    );
    assert_eq!(l.get("topic"), TOPIC);
    let got = unhex(l.get("data"));
    assert!(
        got == data,
        "js received wrong data: {}",
        first_diff(&got, data)
    );
}

/// One gossipsub combination: js-libp2p `major` over `mux` with two plexus hosts.
async fn run_gossip(major: u32, mux: Mux, js_dials: bool) {
    tokio::task::spawn_blocking(npm_ready)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    // a sends no IDONTWANT: whatever b counts came from js.
    let a = GossipNode::new("a", mux, false).await;
    let b = GossipNode::new("b", mux, true).await;
    let mut js = JsPeer::spawn(major, mux, &["gossip".into()]);
    let wait_ms = WAIT.as_millis().to_string();

    tokio::time::timeout(GOSSIP_LIMIT, async {
        let started = js.expect("started").await;
        let js_peer: PeerId = started.get("peer").parse().unwrap();
        let js_addr: Multiaddr = js.expect("listening").await.get("addr").parse().unwrap();
        let (ap, bp) = (a.peer(), b.peer());

        // The triangle.
        let conn = b.p.host.connect(vec![a.addr()]).await.unwrap();
        assert_eq!(conn.peer, ap);
        for n in [&a, &b] {
            if js_dials {
                let l = js.ask(&["dial", &n.addr().to_string()], "dialed").await;
                assert_eq!(
                    l.get("peer"),
                    n.peer().to_string(),
                    "js authenticated plexus"
                );
            } else {
                let conn = n.p.host.connect(vec![js_addr.clone()]).await.unwrap();
                assert_eq!(conn.peer, js_peer, "plexus authenticated js");
            }
            let conn = loop {
                if let Some(c) = n.p.host.connection(&js_peer) {
                    break c;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            assert_eq!(conn.muxer, mux.protocol());
        }

        // Everyone joins; the meshes form.
        assert!(a.gs.subscribe(TOPIC).await.unwrap());
        assert!(b.gs.subscribe(TOPIC).await.unwrap());
        js.ask(&["subscribe", TOPIC], "subscribed").await;
        for n in [&a, &b] {
            n.wait_event("GRAFT with js", |e| match e {
                Event::Grafted { peer, topic, by }
                    if *peer == js_peer && topic.as_str() == TOPIC =>
                {
                    Some(*by)
                }
                _ => None,
            })
            .await;
        }
        a.wait_mesh(&[bp, js_peer]).await;
        b.wait_mesh(&[ap, js_peer]).await;
        let both = format!("{ap},{bp}");
        let mesh = js.ask(&["wait_mesh", TOPIC, &both, &wait_ms], "mesh").await;
        let grafted = mesh.list("grafted");
        for p in [ap, bp] {
            let p = p.to_string();
            assert!(
                grafted.iter().any(|g| g.starts_with(&format!("{p}:"))),
                "js emitted gossipsub:graft for {p}: {grafted:?}"
            );
        }

        // A small message from js, then from a.
        let data = pattern(21, 100);
        let l = js.ask(&["publish", TOPIC, &hex(&data)], "published").await;
        let id = l.get("id").to_owned();
        let recipients = l.list("recipients");
        for p in [ap, bp] {
            assert!(
                recipients.contains(&p.to_string().as_str()),
                "{p} in {recipients:?}"
            );
        }
        for n in [&a, &b] {
            let (source, msg) = n.wait_message(&id).await;
            assert!(
                source == js_peer || source == ap || source == bp,
                "{source}"
            );
            check_plexus_got(n, &msg, &data);
            assert_eq!(content_id(&msg).to_string(), id);
        }
        let data = pattern(22, 100);
        let id = a.gs.publish(TOPIC, data.clone()).await.unwrap().unwrap();
        let l = js
            .ask(&["wait_message", &id.to_string(), &wait_ms], "message")
            .await;
        check_js_got(&l, &id, &data);
        assert!(
            [ap.to_string(), bp.to_string()]
                .iter()
                .any(|p| p == l.get("from")),
            "{l:?}"
        );
        b.wait_message(&id.to_string()).await;

        // A large message from a. Nobody forwards it before the test says so,
        // so js and b each get it from a first, and each sends IDONTWANT to
        // its other mesh peer: js to b, b to js (a sends none).
        let data = pattern(23, LARGE);
        let id = a.gs.publish(TOPIC, data.clone()).await.unwrap().unwrap();
        let ids = id.to_string();
        let l = js.ask(&["wait_message", &ids, &wait_ms], "message").await;
        check_js_got(&l, &id, &data);
        assert_eq!(l.get("from"), ap.to_string(), "js's first copy is a's");
        let (source, msg) = b.wait_message(&ids).await;
        assert_eq!(source, ap, "b's first copy is a's");
        assert_eq!(msg.data[..], data[..]);
        // js → b.
        b.wait_snapshot("IDONTWANT from js", |s| s.stats.idontwant_received > 0)
            .await;
        // b → js.
        let l = js
            .ask(
                &["wait_idontwant", &bp.to_string(), &ids, &wait_ms],
                "idontwant",
            )
            .await;
        assert!(l.list("ids").contains(&ids.as_str()), "{l:?}");
        let a_stats = a.gs.snapshot().await.unwrap().stats;
        assert_eq!(a_stats.idontwant_sent, 0, "a is configured to send none");
        // b accepts it and does not forward it to js, who said IDONTWANT.
        b.gs.report_validation(id.clone(), Acceptance::Accept)
            .await
            .unwrap();
        b.wait_snapshot("forward skipped for js's IDONTWANT", |s| {
            s.stats.idontwant_skipped > 0
        })
        .await;
        // js accepts it: 17.x does not forward it to b, who said IDONTWANT
        // (14.x forwards it all the same: b gets a duplicate).
        let dups = b.duplicates().await;
        js.ask(&["validate", &ids, "accept"], "validated").await;
        if major >= 3 {
            // Forwarding is immediate on js's side; a few heartbeats for stragglers.
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert_eq!(
                b.duplicates().await,
                dups,
                "js forwarded to b despite IDONTWANT"
            );
        }

        // A large message from js.
        let data = pattern(24, LARGE);
        let l = js.ask(&["publish", TOPIC, &hex(&data)], "published").await;
        let id = l.get("id").to_owned();
        for n in [&a, &b] {
            let (source, msg) = n.wait_message(&id).await;
            assert_eq!(source, js_peer, "plexus {}'s first copy is js's", n.name);
            check_plexus_got(n, &msg, &data);
            assert_eq!(content_id(&msg).to_string(), id);
        }
        for n in [&a, &b] {
            n.gs.report_validation(MessageId::new(unhex(&id)), Acceptance::Accept)
                .await
                .unwrap();
        }

        // Leaving is a PRUNE: b leaves (js sees it), then js leaves (a sees it).
        assert!(b.gs.unsubscribe(TOPIC).await.unwrap());
        let l = js
            .ask(&["wait_prune", TOPIC, &bp.to_string(), &wait_ms], "prune")
            .await;
        assert_eq!(l.get("direction"), "inbound");
        js.ask(&["unsubscribe", TOPIC], "unsubscribed").await;
        a.wait_event("PRUNE from js", |e| match e {
            Event::Pruned {
                peer,
                topic,
                by: MeshChange::Remote,
            } if *peer == js_peer && topic.as_str() == TOPIC => Some(()),
            _ => None,
        })
        .await;
        a.wait_event("js unsubscribing", |e| match e {
            Event::Unsubscribed { peer, topic } if *peer == js_peer && topic.as_str() == TOPIC => {
                Some(())
            }
            _ => None,
        })
        .await;
        assert!(!a.mesh().await.contains(&js_peer), "js left a's mesh");

        for n in [&a, &b] {
            assert_eq!(
                n.faults(),
                Vec::<String>::new(),
                "plexus {} stream faults",
                n.name
            );
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "gossipsub with js-libp2p {major} over {} timed out; js stderr:\n{}",
            mux.name(),
            js.stderr.lock().unwrap()
        )
    });
    js.finish().await;
    a.p.host.shutdown().await;
    b.p.host.shutdown().await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn js_libp2p_3_quic_dials_plexus() {
    run(3, Mux::Quic, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plexus_dials_js_libp2p_3_quic() {
    run(3, Mux::Quic, false).await;
}

/// Lazy push to js: plexus hosts p and l and the js node in a line, p – l – js (p and js
/// not connected). l forwards large messages by lazy push with no whole copy
/// (`lazy_push_eager: 0`), so p's 32 KiB message reaches js only if js pulls l's IHAVE with
/// IWANT: js gets it from l, same data and id, and l counts one announcement and one IWANT
/// served.
async fn run_gossip_lazy(major: u32, mux: Mux) {
    tokio::task::spawn_blocking(npm_ready)
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    let p = GossipNode::new("p", mux, true).await;
    let l = GossipNode::with_config(
        "l",
        mux,
        GossipConfig {
            lazy_push_threshold: 16 * 1024,
            lazy_push_eager: 0,
            ..gossip_config(true)
        },
    )
    .await;
    let mut js = JsPeer::spawn(major, mux, &["gossip".into()]);
    let wait_ms = WAIT.as_millis().to_string();
    tokio::time::timeout(GOSSIP_LIMIT, async {
        let started = js.expect("started").await;
        let js_peer: PeerId = started.get("peer").parse().unwrap();
        let js_addr: Multiaddr = js.expect("listening").await.get("addr").parse().unwrap();
        p.p.host.connect(vec![l.addr()]).await.unwrap();
        let conn = l.p.host.connect(vec![js_addr]).await.unwrap();
        assert_eq!(conn.peer, js_peer);
        assert!(p.gs.subscribe(TOPIC).await.unwrap());
        assert!(l.gs.subscribe(TOPIC).await.unwrap());
        js.ask(&["subscribe", TOPIC], "subscribed").await;
        l.wait_mesh(&[p.peer(), js_peer]).await;
        p.wait_mesh(&[l.peer()]).await;
        let lp = l.peer().to_string();
        js.ask(&["wait_mesh", TOPIC, &lp, &wait_ms], "mesh").await;

        let data = pattern(31, 32 * 1024);
        let id = p.gs.publish(TOPIC, data.clone()).await.unwrap().unwrap();
        let (source, _) = l.wait_message(&id.to_string()).await;
        assert_eq!(source, p.peer());
        l.gs.report_validation(id.clone(), Acceptance::Accept)
            .await
            .unwrap();
        let m = js
            .ask(&["wait_message", &id.to_string(), &wait_ms], "message")
            .await;
        check_js_got(&m, &id, &data);
        assert_eq!(m.get("from"), lp, "js's only path is l");
        let s = l.gs.snapshot().await.unwrap().stats;
        assert_eq!(s.lazy_push_announced, 1, "l announced it, did not send it");
        assert_eq!(s.iwant_served, 1, "js pulled it with IWANT");
        for n in [&p, &l] {
            assert_eq!(
                n.faults(),
                Vec::<String>::new(),
                "plexus {} stream faults",
                n.name
            );
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "lazy push to js-libp2p {major} over {} timed out; js stderr:\n{}",
            mux.name(),
            js.stderr.lock().unwrap()
        )
    });
    js.finish().await;
    p.p.host.shutdown().await;
    l.p.host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossipsub_lazy_push_to_js_libp2p_3_yamux() {
    run_gossip_lazy(3, Mux::Yamux).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossipsub_lazy_push_to_js_libp2p_2_yamux() {
    run_gossip_lazy(2, Mux::Yamux).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossipsub_js_libp2p_2_yamux_dials_plexus() {
    run_gossip(2, Mux::Yamux, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossipsub_plexus_dials_js_libp2p_2_yamux() {
    run_gossip(2, Mux::Yamux, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossipsub_js_libp2p_2_mplex_dials_plexus() {
    run_gossip(2, Mux::Mplex, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossipsub_plexus_dials_js_libp2p_2_mplex() {
    run_gossip(2, Mux::Mplex, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossipsub_js_libp2p_3_yamux_dials_plexus() {
    run_gossip(3, Mux::Yamux, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossipsub_plexus_dials_js_libp2p_3_yamux() {
    run_gossip(3, Mux::Yamux, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossipsub_js_libp2p_3_mplex_dials_plexus() {
    run_gossip(3, Mux::Mplex, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossipsub_plexus_dials_js_libp2p_3_mplex() {
    run_gossip(3, Mux::Mplex, false).await;
}
