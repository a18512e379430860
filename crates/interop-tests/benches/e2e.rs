//! End-to-end benchmark: plexus and rust-libp2p side by side on loopback, in one run.
//!
//! `cargo bench -p plexus-interop-tests --bench e2e` (or `cargo xtask bench`, which also writes
//! `docs/BENCHMARKS.md`). Progress goes to stderr; the Markdown report goes to stdout.
//!
//! The parent process runs every measurement in a fresh child process (this binary re-executed
//! with `--child …`), so stacks never share an allocator, a runtime or leftover tasks, and a
//! phase that stalls is killed at its cap. Each child uses a tokio multi-thread runtime with 2
//! workers; both nodes of a measurement live in the child.
//!
//! Measurements, for TCP + Noise + yamux, TCP + Noise + mplex and QUIC v1, plexus↔plexus and
//! rust-libp2p↔rust-libp2p (secp256k1 keys on both stacks, default configurations):
//! - single-stream throughput, one direction at a time (dialer→listener, listener→dialer);
//! - time to first application byte: dial, upgrade, open a stream, echo one byte (median);
//! - handshakes per second with concurrent dialers;
//! - RSS per idle connection (both ends, `VmRSS` delta over many connections);
//! - ping RTT on one stream while another stream of the connection runs a bulk transfer;
//! - the physical limits: raw loopback TCP and single-core ChaCha20-Poly1305 (plexus' Noise
//!   framer, i.e. snow over ring).
//!
//! `PLEXUS_BENCH_QUICK=1` shrinks every size (for trying the harness, not for results).
#![forbid(unsafe_code)]

mod support;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::{Outcome, emit, rss_bytes, run_child, verdict};

use bytes::BytesMut;
use futures::StreamExt as _;
use libp2p::StreamProtocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, Swarm, SwarmEvent};
use plexus_conn::Upgrader;
use plexus_core::{AllowAll, BoxIo, Limits, MuxedConn, MuxerUpgrade, Role, Transport};
use plexus_identity::Keypair;
use plexus_multiaddr::{Multiaddr, Protocol};
use plexus_noise::{MAX_PLAINTEXT_LEN, NoiseConfig, NoiseFramer, NoiseHandshake, read_frame};
use plexus_quic::{QuicConfig, QuicTransport};
use plexus_tcp::TcpTransport;
use plexus_yamux::YamuxConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::FuturesAsyncReadCompatExt as _;

/// The application protocol of every benchmark stream.
const PROTO: &str = "/plexus-bench/1.0.0";
/// Application read and write size for bulk transfers (both stacks).
const CHUNK: usize = 128 * 1024;
/// Wall-clock budget for all measurements of one run (the release build comes on top).
const RUN_BUDGET: Duration = Duration::from_secs(480);

/// Bytes received by the receiving end of the current bulk transfer (one per child process),
/// so a transfer cut short by its time limit still yields a rate.
static RECEIVED: AtomicU64 = AtomicU64::new(0);
/// Connections the listening node finished upgrading.
static SERVER_CONNS: AtomicUsize = AtomicUsize::new(0);

// ------------------------------------------------------------------------------------------
// Sizes
// ------------------------------------------------------------------------------------------

struct Sizes {
    quick: bool,
    bulk: u64,
    transfer_limit: Duration,
    ttfb_n: usize,
    hs_total: usize,
    hs_dialers: usize,
    idle_conns: usize,
    hol: Duration,
    ping_every: Duration,
    /// Repetitions of each throughput measurement (the median is reported).
    reps: usize,
    /// Repetitions of each handshake measurement (the median is reported).
    hs_reps: usize,
}

fn sizes() -> Sizes {
    let quick = std::env::var_os("PLEXUS_BENCH_QUICK").is_some_and(|v| v != "0");
    if quick {
        Sizes {
            quick,
            bulk: 64 << 20,
            transfer_limit: Duration::from_secs(10),
            ttfb_n: 20,
            hs_total: 200,
            hs_dialers: 16,
            idle_conns: 100,
            hol: Duration::from_secs(1),
            ping_every: Duration::from_millis(10),
            reps: 1,
            hs_reps: 1,
        }
    } else {
        Sizes {
            quick,
            bulk: 1 << 30,
            transfer_limit: Duration::from_secs(30),
            ttfb_n: 200,
            hs_total: 2000,
            hs_dialers: 64,
            idle_conns: 1000,
            hol: Duration::from_secs(5),
            ping_every: Duration::from_millis(10),
            reps: 5,
            hs_reps: 3,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Stack {
    Plexus,
    Rust,
}

impl Stack {
    fn arg(self) -> &'static str {
        match self {
            Stack::Plexus => "plexus",
            Stack::Rust => "rust",
        }
    }
    fn parse(s: &str) -> Option<Stack> {
        match s {
            "plexus" => Some(Stack::Plexus),
            "rust" => Some(Stack::Rust),
            _ => None,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Stack::Plexus => "plexus",
            Stack::Rust => "rust-libp2p",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Mux {
    Yamux,
    Mplex,
    /// QUIC v1 with TLS 1.3: its own security and streams (no Noise, no muxer).
    Quic,
}

impl Mux {
    fn arg(self) -> &'static str {
        match self {
            Mux::Yamux => "yamux",
            Mux::Mplex => "mplex",
            Mux::Quic => "quic",
        }
    }
    fn parse(s: &str) -> Option<Mux> {
        match s {
            "yamux" => Some(Mux::Yamux),
            "mplex" => Some(Mux::Mplex),
            "quic" => Some(Mux::Quic),
            _ => None,
        }
    }
    /// The section title of its table.
    fn title(self) -> &'static str {
        match self {
            Mux::Yamux => "TCP + Noise + yamux",
            Mux::Mplex => "TCP + Noise + mplex",
            Mux::Quic => "QUIC v1 (TLS 1.3, native streams)",
        }
    }
    /// The listen address of a node.
    fn listen(self) -> &'static str {
        match self {
            Mux::Quic => "/ip4/127.0.0.1/udp/0/quic-v1",
            _ => "/ip4/127.0.0.1/tcp/0",
        }
    }
}

/// plexus' muxer upgrade for `mux` (default configuration), or `None` if that muxer is not
/// built.
fn plexus_muxer(mux: Mux) -> Option<Arc<dyn MuxerUpgrade>> {
    match mux {
        Mux::Yamux => Some(Arc::new(YamuxConfig::default())),
        Mux::Mplex => Some(Arc::new(plexus_mplex::MplexConfig::default())),
        // Not used on QUIC connections (the transport multiplexes); the upgrader wants one.
        Mux::Quic => Some(Arc::new(YamuxConfig::default())),
    }
}

// ------------------------------------------------------------------------------------------
// The application protocol: first byte is the command.
//   'U' u64: the acceptor reads to EOF, then answers one byte 'K' (upload, dialer → listener).
//   'D' u64: the acceptor sends that many bytes and closes (download, listener → dialer).
//   'E':     the acceptor echoes until EOF.
// ------------------------------------------------------------------------------------------

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(mut s: S) -> std::io::Result<()> {
    match s.read_u8().await? {
        b'U' => {
            let _n = s.read_u64().await?;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let k = s.read(&mut buf).await?;
                if k == 0 {
                    break;
                }
                RECEIVED.fetch_add(k as u64, Ordering::Relaxed);
            }
            s.write_all(b"K").await?;
            s.shutdown().await
        }
        b'D' => {
            let n = s.read_u64().await?;
            let buf = vec![0x5au8; CHUNK];
            let mut left = n;
            while left > 0 {
                let k = left.min(CHUNK as u64) as usize;
                s.write_all(&buf[..k]).await?;
                left -= k as u64;
            }
            s.shutdown().await
        }
        b'E' => {
            let mut buf = [0u8; 1024];
            loop {
                let k = s.read(&mut buf).await?;
                if k == 0 {
                    break;
                }
                s.write_all(&buf[..k]).await?;
                s.flush().await?;
            }
            s.shutdown().await
        }
        c => Err(std::io::Error::other(format!("unknown command {c}"))),
    }
}

// ------------------------------------------------------------------------------------------
// rust-libp2p nodes: a swarm with libp2p-stream, driven by one task that takes commands.
// ------------------------------------------------------------------------------------------

enum Cmd {
    Dial {
        addr: libp2p::Multiaddr,
        peer: libp2p::PeerId,
        done: oneshot::Sender<Result<ConnectionId, String>>,
    },
    Close {
        id: ConnectionId,
        done: oneshot::Sender<()>,
    },
}

struct RustNode {
    peer: libp2p::PeerId,
    control: libp2p_stream::Control,
    cmd: mpsc::Sender<Cmd>,
    listen_addr: Option<libp2p::Multiaddr>,
}

fn rust_swarm(mux: Mux) -> Swarm<libp2p_stream::Behaviour> {
    let key = libp2p::identity::Keypair::generate_secp256k1();
    let tcp = || libp2p::tcp::Config::default().nodelay(true);
    let swarm_cfg =
        |c: libp2p::swarm::Config| c.with_idle_connection_timeout(Duration::from_secs(3600));
    let builder = libp2p::SwarmBuilder::with_existing_identity(key).with_tokio();
    match mux {
        Mux::Yamux => builder
            .with_tcp(
                tcp(),
                libp2p::noise::Config::new,
                libp2p::yamux::Config::default,
            )
            .expect("tcp transport")
            .with_behaviour(|_| libp2p_stream::Behaviour::new())
            .expect("behaviour")
            .with_swarm_config(swarm_cfg)
            .build(),
        Mux::Mplex => builder
            .with_tcp(
                tcp(),
                libp2p::noise::Config::new,
                libp2p_mplex::Config::default,
            )
            .expect("tcp transport")
            .with_behaviour(|_| libp2p_stream::Behaviour::new())
            .expect("behaviour")
            .with_swarm_config(swarm_cfg)
            .build(),
        Mux::Quic => builder
            .with_quic()
            .with_behaviour(|_| libp2p_stream::Behaviour::new())
            .expect("behaviour")
            .with_swarm_config(swarm_cfg)
            .build(),
    }
}

async fn rust_node(mux: Mux, listen: bool) -> RustNode {
    let mut swarm = rust_swarm(mux);
    let peer = *swarm.local_peer_id();
    let control = swarm.behaviour().new_control();
    let mut listen_addr = None;
    if listen {
        swarm
            .listen_on(mux.listen().parse().expect("addr"))
            .expect("listen");
        while listen_addr.is_none() {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                listen_addr = Some(address);
            }
        }
    }
    let (cmd, mut rx) = mpsc::channel::<Cmd>(256);
    tokio::spawn(async move {
        let mut dials: HashMap<ConnectionId, oneshot::Sender<Result<ConnectionId, String>>> =
            HashMap::new();
        let mut closes: HashMap<ConnectionId, oneshot::Sender<()>> = HashMap::new();
        loop {
            tokio::select! {
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::ConnectionEstablished { connection_id, endpoint, .. } => {
                        if endpoint.is_listener() {
                            SERVER_CONNS.fetch_add(1, Ordering::Relaxed);
                        }
                        if let Some(tx) = dials.remove(&connection_id) {
                            let _ = tx.send(Ok(connection_id));
                        }
                    }
                    SwarmEvent::OutgoingConnectionError { connection_id, error, .. } => {
                        if let Some(tx) = dials.remove(&connection_id) {
                            let _ = tx.send(Err(error.to_string()));
                        }
                    }
                    SwarmEvent::ConnectionClosed { connection_id, .. } => {
                        if let Some(tx) = closes.remove(&connection_id) {
                            let _ = tx.send(());
                        }
                    }
                    _ => {}
                },
                Some(c) = rx.recv() => match c {
                    Cmd::Dial { addr, peer, done } => {
                        let opts = DialOpts::peer_id(peer)
                            .addresses(vec![addr])
                            .condition(PeerCondition::Always)
                            .build();
                        let id = opts.connection_id();
                        match swarm.dial(opts) {
                            Ok(()) => {
                                dials.insert(id, done);
                            }
                            Err(e) => {
                                let _ = done.send(Err(e.to_string()));
                            }
                        }
                    }
                    Cmd::Close { id, done } => {
                        if swarm.close_connection(id) {
                            closes.insert(id, done);
                        } else {
                            let _ = done.send(());
                        }
                    }
                },
            }
        }
    });
    RustNode {
        peer,
        control,
        cmd,
        listen_addr,
    }
}

// ------------------------------------------------------------------------------------------
// One client (dialing node) facing one server (listening node) of the same stack.
// ------------------------------------------------------------------------------------------

enum Client {
    Plexus {
        up: Upgrader,
        transport: Arc<dyn Transport>,
        addr: Multiaddr,
    },
    Rust {
        node: RustNode,
        server: libp2p::PeerId,
        addr: libp2p::Multiaddr,
    },
}

enum Conn {
    Plexus(Arc<dyn MuxedConn>),
    Rust {
        id: ConnectionId,
        server: libp2p::PeerId,
        control: libp2p_stream::Control,
        cmd: mpsc::Sender<Cmd>,
    },
}

fn plexus_upgrader(key: &Keypair, muxer: Arc<dyn MuxerUpgrade>) -> Upgrader {
    Upgrader::new(
        Arc::new(NoiseConfig::new(key.clone())),
        vec![muxer],
        Arc::new(AllowAll),
        Limits::default(),
    )
}

/// Start a listening node and a dialing node of `stack` with `mux`; return the dialing side.
/// Serve the streams a plexus connection's remote opens, until it closes.
async fn accept_streams(muxer: Arc<dyn MuxedConn>) {
    while let Ok(s) = muxer.accept().await {
        tokio::spawn(async move {
            if let Ok((_, s)) =
                plexus_multistream::listener_select(s, &[PROTO], &Default::default()).await
            {
                let _ = serve(s).await;
            }
        });
    }
}

async fn start_pair(stack: Stack, mux: Mux) -> Result<Client, String> {
    match stack {
        Stack::Plexus => {
            let muxer = plexus_muxer(mux).ok_or("mplex not built")?;
            let server_key = Keypair::generate_secp256k1();
            let server_up = plexus_upgrader(&server_key, muxer.clone());
            let transport = |key: &Keypair| -> Arc<dyn Transport> {
                match mux {
                    Mux::Quic => Arc::new(QuicTransport::new(key, QuicConfig::default())),
                    _ => Arc::new(TcpTransport::default()),
                }
            };
            let mut listener = transport(&server_key)
                .listen(mux.listen().parse().expect("addr"))
                .await
                .map_err(|e| e.to_string())?;
            let addr = listener
                .local_addr()
                .clone()
                .with(Protocol::P2p(server_key.public().to_peer_id()));
            tokio::spawn(async move {
                while let Ok(pending) = listener.accept().await {
                    let up = server_up.clone();
                    tokio::spawn(async move {
                        let Ok(conn) = up.accept(pending).await else {
                            return;
                        };
                        SERVER_CONNS.fetch_add(1, Ordering::Relaxed);
                        // The stream loop gets its own task, as in plexus-host: the
                        // upgrade's state is freed, not kept for the connection's life.
                        tokio::spawn(accept_streams(Arc::from(conn.muxer)));
                    });
                }
            });
            let client_key = Keypair::generate_secp256k1();
            Ok(Client::Plexus {
                up: plexus_upgrader(&client_key, muxer),
                transport: transport(&client_key),
                addr,
            })
        }
        Stack::Rust => {
            let mut server = rust_node(mux, true).await;
            let mut incoming = server
                .control
                .accept(StreamProtocol::new(PROTO))
                .map_err(|e| e.to_string())?;
            tokio::spawn(async move {
                let _keep = server.cmd;
                while let Some((_, s)) = incoming.next().await {
                    tokio::spawn(async move {
                        let _ = serve(s.compat()).await;
                    });
                }
            });
            let node = rust_node(mux, false).await;
            Ok(Client::Rust {
                node,
                server: server.peer,
                addr: server.listen_addr.expect("listening"),
            })
        }
    }
}

impl Client {
    /// Dial the server and upgrade the connection.
    async fn connect(&self) -> Result<Conn, String> {
        match self {
            Client::Plexus {
                up,
                transport,
                addr,
            } => {
                let c = up
                    .dial(transport.as_ref(), addr.clone())
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Conn::Plexus(Arc::from(c.muxer)))
            }
            Client::Rust { node, server, addr } => {
                let (done, rx) = oneshot::channel();
                node.cmd
                    .send(Cmd::Dial {
                        addr: addr.clone(),
                        peer: *server,
                        done,
                    })
                    .await
                    .map_err(|_| "swarm task gone")?;
                let id = rx.await.map_err(|_| "swarm task gone")??;
                Ok(Conn::Rust {
                    id,
                    server: *server,
                    control: node.control.clone(),
                    cmd: node.cmd.clone(),
                })
            }
        }
    }
}

impl Conn {
    /// Open a stream and select the benchmark protocol on it (plexus: lazily, as its host does;
    /// rust-libp2p: as libp2p-stream does).
    async fn open(&self) -> Result<BoxIo, String> {
        match self {
            Conn::Plexus(m) => {
                let s = m.open().await.map_err(|e| e.to_string())?;
                Ok(Box::new(plexus_multistream::dialer_select_lazy(
                    s,
                    PROTO,
                    &Default::default(),
                )))
            }
            Conn::Rust {
                server, control, ..
            } => {
                let s = control
                    .clone()
                    .open_stream(*server, StreamProtocol::new(PROTO))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Box::new(s.compat()))
            }
        }
    }

    /// Close the connection and wait until it is gone.
    async fn close(self) {
        match self {
            Conn::Plexus(m) => m.close().await,
            Conn::Rust { id, cmd, .. } => {
                let (done, rx) = oneshot::channel();
                if cmd.send(Cmd::Close { id, done }).await.is_ok() {
                    let _ = rx.await;
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------
// Child process: one measurement, results as `RESULT key value` lines on stdout.
// ------------------------------------------------------------------------------------------

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn child_main(args: &[String]) -> ! {
    let phase = args.first().cloned().unwrap_or_default();
    let stack = args.get(1).and_then(|s| Stack::parse(s));
    let mux = args.get(2).and_then(|s| Mux::parse(s));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let result: Result<(), String> = if phase == "limit-aead" {
        // One core, no runtime.
        limit_aead(&sizes())
    } else {
        // Everything, the measuring task included, runs on the runtime's 2 workers (not on
        // this thread, which would make a third).
        let args = args.to_vec();
        rt.block_on(async move {
            tokio::spawn(async move {
                let sz = sizes();
                match (phase.as_str(), stack, mux) {
                    ("limit-tcp", _, _) => limit_tcp(&sz).await,
                    ("upload", Some(st), Some(m)) => throughput(&sz, st, m, true).await,
                    ("download", Some(st), Some(m)) => throughput(&sz, st, m, false).await,
                    ("ttfb", Some(st), Some(m)) => ttfb(&sz, st, m).await,
                    ("handshakes", Some(st), Some(m)) => handshakes(&sz, st, m).await,
                    ("rss", Some(st), Some(m)) => rss(&sz, st, m).await,
                    ("hol", Some(st), Some(m)) => hol(&sz, st, m).await,
                    _ => Err(format!("bad child arguments {args:?}")),
                }
            })
            .await
            .unwrap_or_else(|e| Err(format!("measuring task failed: {e}")))
        })
    };
    let code = match result {
        Ok(()) => {
            println!("DONE");
            0
        }
        Err(e) => {
            println!("ERROR {e}");
            1
        }
    };
    let _ = std::io::stdout().flush();
    // Leave at once: background tasks (swarms, drivers) must not delay the exit.
    std::process::exit(code)
}

async fn limit_tcp(sz: &Sizes) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let reader = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await?;
        s.set_nodelay(true)?;
        let mut buf = vec![0u8; CHUNK];
        let mut n = 0u64;
        loop {
            let k = s.read(&mut buf).await?;
            if k == 0 {
                return Ok::<u64, std::io::Error>(n);
            }
            n += k as u64;
        }
    });
    let mut w = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    w.set_nodelay(true).map_err(|e| e.to_string())?;
    let buf = vec![0x5au8; CHUNK];
    let start = Instant::now();
    let mut left = sz.bulk;
    while left > 0 {
        let k = left.min(CHUNK as u64) as usize;
        w.write_all(&buf[..k]).await.map_err(|e| e.to_string())?;
        left -= k as u64;
    }
    w.shutdown().await.map_err(|e| e.to_string())?;
    let n = reader
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())?;
    let secs = start.elapsed().as_secs_f64();
    emit("bytes", n as f64);
    emit("secs", secs);
    Ok(())
}

/// A framer pair from a real Noise handshake (plexus' default backend: snow over ring).
fn framer_pair() -> Result<(NoiseFramer, NoiseFramer), String> {
    let a = NoiseConfig::new(Keypair::generate_ed25519());
    let b = NoiseConfig::new(Keypair::generate_ed25519());
    let e = |e: plexus_noise::NoiseError| e.to_string();
    let mut i = NoiseHandshake::new(&a, Role::Initiator, None, vec![]).map_err(e)?;
    let mut r = NoiseHandshake::new(&b, Role::Responder, None, vec![]).map_err(e)?;
    let mut wire = BytesMut::new();
    let step = |from: &mut NoiseHandshake,
                to: &mut NoiseHandshake,
                wire: &mut BytesMut|
     -> Result<(), String> {
        if from.wants_write() {
            from.write_message(wire).map_err(e)?;
            let msg = read_frame(wire).ok_or("no handshake frame")?;
            to.read_message(&msg).map_err(e)?;
        }
        Ok(())
    };
    for _ in 0..8 {
        if i.is_finished() && r.is_finished() {
            break;
        }
        step(&mut i, &mut r, &mut wire)?;
        step(&mut r, &mut i, &mut wire)?;
    }
    Ok((i.finish().map_err(e)?.framer, r.finish().map_err(e)?.framer))
}

fn limit_aead(sz: &Sizes) -> Result<(), String> {
    const BATCH: usize = 64;
    let (mut tx, mut rx) = framer_pair()?;
    let plain = vec![0x5au8; MAX_PLAINTEXT_LEN];
    let mut wire = BytesMut::with_capacity(BATCH * (MAX_PLAINTEXT_LEN + 18));
    let mut out = BytesMut::with_capacity(MAX_PLAINTEXT_LEN + 64);
    let (mut seal, mut open) = (Duration::ZERO, Duration::ZERO);
    let mut total = 0u64;
    while total < sz.bulk {
        wire.clear();
        let t = Instant::now();
        for _ in 0..BATCH {
            tx.encrypt(&plain, &mut wire).map_err(|e| e.to_string())?;
        }
        seal += t.elapsed();
        let t = Instant::now();
        for _ in 0..BATCH {
            out.clear();
            rx.decrypt_next(&mut wire, &mut out)
                .map_err(|e| e.to_string())?
                .ok_or("short frame")?;
        }
        open += t.elapsed();
        total += (BATCH * MAX_PLAINTEXT_LEN) as u64;
    }
    emit("bytes", total as f64);
    emit("seal_secs", seal.as_secs_f64());
    emit("open_secs", open.as_secs_f64());
    Ok(())
}

async fn throughput(sz: &Sizes, stack: Stack, mux: Mux, upload: bool) -> Result<(), String> {
    let client = start_pair(stack, mux).await?;
    let conn = client.connect().await?;
    let mut s = conn.open().await?;
    let n = sz.bulk;
    let io = |e: std::io::Error| e.to_string();
    let start = Instant::now();
    let work = async {
        if upload {
            let mut head = vec![b'U'];
            head.extend_from_slice(&n.to_be_bytes());
            s.write_all(&head).await.map_err(io)?;
            let buf = vec![0x5au8; CHUNK];
            let mut left = n;
            while left > 0 {
                let k = left.min(CHUNK as u64) as usize;
                s.write_all(&buf[..k]).await.map_err(io)?;
                left -= k as u64;
            }
            s.shutdown().await.map_err(io)?;
            if s.read_u8().await.map_err(io)? != b'K' {
                return Err("bad upload acknowledgement".to_string());
            }
        } else {
            let mut head = vec![b'D'];
            head.extend_from_slice(&n.to_be_bytes());
            s.write_all(&head).await.map_err(io)?;
            s.flush().await.map_err(io)?;
            let mut buf = vec![0u8; CHUNK];
            loop {
                let k = s.read(&mut buf).await.map_err(io)?;
                if k == 0 {
                    break;
                }
                RECEIVED.fetch_add(k as u64, Ordering::Relaxed);
            }
        }
        Ok::<(), String>(())
    };
    let partial = match tokio::time::timeout(sz.transfer_limit, work).await {
        Ok(r) => {
            r?;
            false
        }
        Err(_) => true,
    };
    let secs = start.elapsed().as_secs_f64();
    let bytes = RECEIVED.load(Ordering::Relaxed);
    if !partial && bytes != n {
        return Err(format!("received {bytes} of {n} bytes"));
    }
    emit("bytes", bytes as f64);
    emit("secs", secs);
    emit("partial", if partial { 1.0 } else { 0.0 });
    Ok(())
}

async fn ttfb(sz: &Sizes, stack: Stack, mux: Mux) -> Result<(), String> {
    const WARMUP: usize = 5;
    let client = start_pair(stack, mux).await?;
    let mut samples = Vec::with_capacity(sz.ttfb_n);
    let deadline = Instant::now() + Duration::from_secs(30);
    for i in 0..WARMUP + sz.ttfb_n {
        if Instant::now() > deadline {
            break;
        }
        let t0 = Instant::now();
        let conn = client.connect().await?;
        let mut s = conn.open().await?;
        s.write_all(&[b'E', 0x42])
            .await
            .map_err(|e| e.to_string())?;
        s.flush().await.map_err(|e| e.to_string())?;
        let b = s.read_u8().await.map_err(|e| e.to_string())?;
        let dt = t0.elapsed();
        if b != 0x42 {
            return Err("echo returned a wrong byte".into());
        }
        if i >= WARMUP {
            samples.push(dt);
        }
        drop(s);
        if tokio::time::timeout(Duration::from_secs(5), conn.close())
            .await
            .is_err()
        {
            return Err("closing a connection took over 5 s".into());
        }
    }
    samples.sort();
    emit("n", samples.len() as f64);
    emit("p50_ms", percentile(&samples, 0.5).as_secs_f64() * 1e3);
    emit("p90_ms", percentile(&samples, 0.9).as_secs_f64() * 1e3);
    Ok(())
}

async fn handshakes(sz: &Sizes, stack: Stack, mux: Mux) -> Result<(), String> {
    let client = Arc::new(start_pair(stack, mux).await?);
    // Warm-up, not counted.
    for _ in 0..8 {
        let c = client.connect().await?;
        c.close().await;
    }
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let total = sz.hs_total;
    let start = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..sz.hs_dialers {
        let (client, next, done, failed) =
            (client.clone(), next.clone(), done.clone(), failed.clone());
        workers.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                match client.connect().await {
                    Ok(c) => {
                        done.fetch_add(1, Ordering::Relaxed);
                        // Closing runs beside the next dial (its CPU still counts).
                        tokio::spawn(c.close());
                    }
                    Err(_) => {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }));
    }
    let all = futures::future::join_all(workers);
    let partial = tokio::time::timeout(Duration::from_secs(40), all)
        .await
        .is_err();
    let secs = start.elapsed().as_secs_f64();
    emit("done", done.load(Ordering::Relaxed) as f64);
    emit("failed", failed.load(Ordering::Relaxed) as f64);
    emit("secs", secs);
    emit("partial", if partial { 1.0 } else { 0.0 });
    Ok(())
}

async fn open_conns(client: &Arc<Client>, n: usize) -> Result<Vec<Conn>, String> {
    let results: Vec<Result<Conn, String>> = futures::stream::iter(0..n)
        .map(|_| {
            let c = client.clone();
            async move {
                tokio::spawn(async move { c.connect().await })
                    .await
                    .map_err(|e| e.to_string())?
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn wait_server_conns(n: usize) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while SERVER_CONNS.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            return Err(format!(
                "listener upgraded {} of {n} connections",
                SERVER_CONNS.load(Ordering::Relaxed)
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

async fn rss(sz: &Sizes, stack: Stack, mux: Mux) -> Result<(), String> {
    const WARMUP: usize = 16;
    let client = Arc::new(start_pair(stack, mux).await?);
    let warm = open_conns(&client, WARMUP).await?;
    wait_server_conns(WARMUP).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_bytes()?;
    let conns = open_conns(&client, sz.idle_conns).await?;
    wait_server_conns(WARMUP + sz.idle_conns).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = rss_bytes()?;
    emit("before", before as f64);
    emit("after", after as f64);
    emit("conns", conns.len() as f64);
    drop((warm, conns));
    Ok(())
}

async fn ping_once(s: &mut BoxIo, seq: u64) -> Result<Duration, String> {
    let io = |e: std::io::Error| e.to_string();
    let t = Instant::now();
    s.write_all(&seq.to_be_bytes()).await.map_err(io)?;
    s.flush().await.map_err(io)?;
    let mut back = [0u8; 8];
    s.read_exact(&mut back).await.map_err(io)?;
    if back != seq.to_be_bytes() {
        return Err("ping echo mismatch".into());
    }
    Ok(t.elapsed())
}

async fn pings(
    every: Duration,
    s: &mut BoxIo,
    seq: &mut u64,
    n: Option<usize>,
    for_: Duration,
) -> Result<Vec<Duration>, String> {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let end = Instant::now() + for_;
    let mut out = Vec::new();
    while Instant::now() < end && n.is_none_or(|n| out.len() < n) {
        tick.tick().await;
        *seq += 1;
        let rtt = tokio::time::timeout(Duration::from_secs(5), ping_once(s, *seq))
            .await
            .map_err(|_| "a ping took over 5 s".to_string())??;
        out.push(rtt);
    }
    out.sort();
    Ok(out)
}

async fn hol(sz: &Sizes, stack: Stack, mux: Mux) -> Result<(), String> {
    let client = start_pair(stack, mux).await?;
    let conn = client.connect().await?;
    let mut echo = conn.open().await?;
    echo.write_all(b"E").await.map_err(|e| e.to_string())?;
    let mut seq = 0u64;
    let idle = pings(
        sz.ping_every,
        &mut echo,
        &mut seq,
        Some(50),
        Duration::from_secs(3),
    )
    .await?;
    let mut bulk = conn.open().await?;
    let bulk_task = tokio::spawn(async move {
        let mut head = vec![b'U'];
        head.extend_from_slice(&u64::MAX.to_be_bytes());
        bulk.write_all(&head).await?;
        let buf = vec![0x5au8; CHUNK];
        loop {
            bulk.write_all(&buf).await?;
        }
        #[allow(unreachable_code)]
        Ok::<(), std::io::Error>(())
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b0 = RECEIVED.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let loaded = pings(sz.ping_every, &mut echo, &mut seq, None, sz.hol).await?;
    let bulk_rate = (RECEIVED.load(Ordering::Relaxed) - b0) as f64 / t0.elapsed().as_secs_f64();
    if bulk_task.is_finished() {
        let why = match bulk_task.await {
            Ok(Ok(())) => "ended".to_string(),
            Ok(Err(e)) => e.to_string(),
            Err(e) => e.to_string(),
        };
        return Err(format!("bulk stream failed: {why}"));
    }
    emit("idle_p50_ms", percentile(&idle, 0.5).as_secs_f64() * 1e3);
    emit("p50_ms", percentile(&loaded, 0.5).as_secs_f64() * 1e3);
    emit("p99_ms", percentile(&loaded, 0.99).as_secs_f64() * 1e3);
    emit("max_ms", percentile(&loaded, 1.0).as_secs_f64() * 1e3);
    emit("n", loaded.len() as f64);
    emit("bulk_bps", bulk_rate);
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Parent process: run every child, bound each by a cap and the whole by RUN_BUDGET, report.
// ------------------------------------------------------------------------------------------

struct Parent {
    exe: PathBuf,
    deadline: Instant,
    step: usize,
    steps: usize,
}

impl Parent {
    fn run(&mut self, label: &str, args: &[&str], cap: Duration) -> Outcome {
        self.step += 1;
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left < Duration::from_secs(3) {
            eprintln!(
                "[{}/{}] {label}: skipped (run budget exhausted)",
                self.step, self.steps
            );
            return Err("not measured: run budget exhausted".into());
        }
        let cap = cap.min(left);
        run_child(
            &self.exe,
            &format!("[{}/{}] {label}", self.step, self.steps),
            args,
            cap,
        )
    }
}

fn ms2(x: f64) -> String {
    format!("{x:.2} ms")
}

fn ms1(x: f64) -> String {
    format!("{x:.1} ms")
}

/// The run with the median rate (`bytes/secs` or `done/secs`) among the successful ones; the
/// first error if none succeeded.
fn median_run(runs: Vec<Outcome>) -> Outcome {
    let rate = |v: &HashMap<String, f64>| {
        let secs = v.get("secs").copied().unwrap_or(f64::NAN);
        v.get("bytes")
            .or_else(|| v.get("done"))
            .copied()
            .unwrap_or(f64::NAN)
            / secs
    };
    let mut ok: Vec<HashMap<String, f64>> = Vec::new();
    let mut first_err = None;
    for r in runs {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => {
                first_err.get_or_insert(e);
            }
        }
    }
    if ok.is_empty() {
        return Err(first_err.unwrap_or_else(|| "not measured".into()));
    }
    ok.sort_by(|a, b| rate(a).total_cmp(&rate(b)));
    let n = ok.len();
    let (lo, hi) = (rate(&ok[0]), rate(&ok[n - 1]));
    let mut mid = ok.swap_remove(n / 2);
    mid.insert("runs".into(), n as f64);
    mid.insert("min_rate".into(), lo);
    mid.insert("max_rate".into(), hi);
    Ok(mid)
}

fn mib_per_s(bytes_per_s: f64) -> String {
    format!(
        "{:.0} MiB/s ({:.2} Gbit/s)",
        bytes_per_s / (1024.0 * 1024.0),
        bytes_per_s * 8.0 / 1e9
    )
}

/// A cell: the figure, or why there is none.
fn cell(v: &Result<f64, String>, fmt: impl Fn(f64) -> String) -> String {
    match v {
        Ok(x) => fmt(*x),
        Err(e) => e.clone(),
    }
}

/// ` [slowest–fastest]` over the repeated runs behind a median, or nothing for a single run.
fn spread(o: &Outcome, fmt: impl Fn(f64) -> String) -> String {
    match o {
        Ok(v) if v.get("runs").copied().unwrap_or(1.0) > 1.0 => format!(
            " [{}–{}]",
            fmt(v.get("min_rate").copied().unwrap_or(f64::NAN)),
            fmt(v.get("max_rate").copied().unwrap_or(f64::NAN))
        ),
        _ => String::new(),
    }
}

/// A cell with a figure and a second one in brackets, or why there is none.
fn cell2(
    v: &Result<f64, String>,
    w: &Result<f64, String>,
    fmt_v: impl Fn(f64) -> String,
    fmt_w: impl Fn(f64) -> String,
) -> String {
    match (v, w) {
        (Ok(a), Ok(b)) => format!("{} ({})", fmt_v(*a), fmt_w(*b)),
        (Err(e), _) | (_, Err(e)) => e.clone(),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(i) = args.iter().position(|a| a == "--child") {
        child_main(&args[i + 1..]);
    }
    let sz = sizes();
    let started = Instant::now();
    let mut p = Parent {
        exe: std::env::current_exe().expect("own path"),
        deadline: started + RUN_BUDGET,
        step: 0,
        steps: 0,
    };
    let transfer_cap = sz.transfer_limit + Duration::from_secs(15);

    let muxes = [Mux::Yamux, Mux::Mplex, Mux::Quic];
    let stacks = [Stack::Plexus, Stack::Rust];
    let mut res: HashMap<(&'static str, Mux, Stack), Outcome> = HashMap::new();
    // (phase, label, cap per child, repetitions: the median run is kept)
    let reps = sz.reps;
    let phases: [(&'static str, &str, Duration, usize); 6] = [
        ("upload", "throughput dialer→listener", transfer_cap, reps),
        ("download", "throughput listener→dialer", transfer_cap, reps),
        ("ttfb", "time to first byte", Duration::from_secs(45), 1),
        (
            "handshakes",
            "handshakes/s",
            Duration::from_secs(60),
            sz.hs_reps,
        ),
        ("rss", "RSS per idle connection", Duration::from_secs(60), 1),
        (
            "hol",
            "ping under bulk load",
            sz.hol + Duration::from_secs(20),
            1,
        ),
    ];
    p.steps =
        sz.reps + 1 + phases.iter().map(|ph| ph.3).sum::<usize>() * muxes.len() * stacks.len();

    // Physical limits.
    let tcp_runs: Vec<Outcome> = (0..sz.reps)
        .map(|i| {
            p.run(
                &format!(
                    "raw loopback TCP (tokio, no crypto), run {}/{}",
                    i + 1,
                    sz.reps
                ),
                &["limit-tcp"],
                Duration::from_secs(30),
            )
        })
        .collect();
    let tcp_out = median_run(tcp_runs);
    let tcp = tcp_out.clone().map(|v| v["bytes"] / v["secs"]);
    let aead = p.run(
        "ChaCha20-Poly1305, one core (plexus NoiseFramer: snow + ring)",
        &["limit-aead"],
        Duration::from_secs(30),
    );
    let seal = aead.clone().map(|v| v["bytes"] / v["seal_secs"]);
    let open = aead.map(|v| v["bytes"] / v["open_secs"]);
    let aead_limit = match (&seal, &open) {
        (Ok(s), Ok(o)) => Ok(s.min(*o)),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    };
    let lower_limit = match (&tcp, &aead_limit) {
        (Ok(t), Ok(a)) => Ok(t.min(*a)),
        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
    };

    for (phase, what, cap, n) in phases {
        for mux in muxes {
            // Repetitions alternate between the stacks, so background load on the machine
            // falls on both alike.
            let mut runs: HashMap<Stack, Vec<Outcome>> = HashMap::new();
            for i in 0..n {
                for stack in stacks {
                    let label = if n > 1 {
                        format!("{what}: {} {} (run {}/{n})", stack.name(), mux.arg(), i + 1)
                    } else {
                        format!("{what}: {} {}", stack.name(), mux.arg())
                    };
                    let out = if stack == Stack::Plexus && plexus_muxer(mux).is_none() {
                        p.step += 1;
                        eprintln!(
                            "[{}/{}] {label}: skipped (mplex not built)",
                            p.step, p.steps
                        );
                        Err("not measured: mplex not built".to_string())
                    } else {
                        p.run(&label, &[phase, stack.arg(), mux.arg()], cap)
                    };
                    runs.entry(stack).or_default().push(out);
                }
            }
            for (stack, outs) in runs {
                res.insert((phase, mux, stack), median_run(outs));
            }
        }
    }
    let run_secs = started.elapsed().as_secs_f64();

    // ---------------- report ----------------
    let get = |phase: &'static str,
               mux: Mux,
               stack: Stack,
               f: &dyn Fn(&HashMap<String, f64>) -> f64|
     -> Result<f64, String> {
        match &res[&(phase, mux, stack)] {
            Ok(v) => Ok(f(v)),
            Err(e) => Err(e.clone()),
        }
    };
    let partial = |phase: &'static str, mux: Mux, stack: Stack| -> bool {
        matches!(&res[&(phase, mux, stack)], Ok(v) if v.get("partial").copied().unwrap_or(0.0) > 0.0)
    };
    let mut md = String::new();
    let gib = sz.bulk as f64 / (1u64 << 30) as f64;
    let size_note = if sz.quick {
        "**QUICK MODE (`PLEXUS_BENCH_QUICK`): reduced sizes, not a result.** "
    } else {
        ""
    };
    md.push_str(&format!(
        "{size_note}Measurements took {run_secs:.0} s (each in a fresh child process).\n\n\
         - Throughput: {} per direction, one direction at a time, one stream, {} KiB application \
         writes and reads; each figure is the median of {} runs (a transfer slower than {} s is \
         cut there and marked *partial*).\n\
         - Time to first byte: median and p90 of {} sequential rounds.\n\
         - Handshakes: {} connections by {} concurrent dialers; median of {} runs.\n\
         - Repeated runs alternate plexus and rust-libp2p; [brackets] give the slowest and \
         fastest run.\n\
         - Memory: {} idle connections.\n\
         - Head-of-line: one ping every {} ms for {} s while the same connection carries a bulk \
         upload on another stream.\n\n",
        if gib >= 1.0 {
            format!("{gib:.0} GiB")
        } else {
            format!("{} MiB", sz.bulk >> 20)
        },
        CHUNK / 1024,
        sz.reps,
        sz.transfer_limit.as_secs(),
        sz.ttfb_n,
        sz.hs_total,
        sz.hs_dialers,
        sz.hs_reps,
        sz.idle_conns,
        sz.ping_every.as_millis(),
        sz.hol.as_secs(),
    ));

    md.push_str("### Physical limits (same run)\n\n| limit | figure |\n|---|---|\n");
    md.push_str(&format!(
        "| raw loopback TCP, one connection (tokio, no crypto), median of {} | {}{} |\n",
        sz.reps,
        cell(&tcp, mib_per_s),
        spread(&tcp_out, |x| format!("{:.0}", x / (1024.0 * 1024.0)))
    ));
    md.push_str(&format!(
        "| ChaCha20-Poly1305 seal, one core (64 KiB Noise frames) | {} |\n",
        cell(&seal, mib_per_s)
    ));
    md.push_str(&format!(
        "| ChaCha20-Poly1305 open, one core | {} |\n",
        cell(&open, mib_per_s)
    ));
    md.push_str(&format!(
        "| **lower physical limit** = min(TCP, min(seal, open)) | {} |\n\n",
        cell(&lower_limit, mib_per_s)
    ));

    let mut targets: Vec<(String, String)> = Vec::new();
    for mux in muxes {
        md.push_str(&format!(
            "### {}\n\n| metric | plexus | rust-libp2p | plexus / rust-libp2p | target | verdict |\n|---|---|---|---|---|---|\n",
            mux.title()
        ));
        // Issue 4's targets for TCP, issue 12's for QUIC.
        let quic = mux == Mux::Quic;
        let tput_target = if quic { 1.5 } else { 2.0 };
        let ratio = |a: &Result<f64, String>, b: &Result<f64, String>| match (a, b) {
            (Ok(a), Ok(b)) if *b > 0.0 => Some(a / b),
            _ => None,
        };
        let fmt_ratio = |r: Option<f64>| r.map_or("–".to_string(), |r| format!("{r:.2}×"));
        for (phase, what) in [
            ("upload", "throughput dialer→listener"),
            ("download", "throughput listener→dialer"),
        ] {
            let rate = |st| get(phase, mux, st, &|v| v["bytes"] / v["secs"]);
            let (px, rs) = (rate(Stack::Plexus), rate(Stack::Rust));
            let tag = |st| {
                let mut t = spread(&res[&(phase, mux, st)], |x| {
                    format!("{:.0}", x / (1024.0 * 1024.0))
                });
                if partial(phase, mux, st) {
                    t.push_str(" *partial*");
                }
                t
            };
            let r = ratio(&px, &rs);
            let v = verdict(r, tput_target, true, "×");
            targets.push((
                format!("{} {what} ≥ {tput_target}× rust-libp2p", mux.arg()),
                v.clone(),
            ));
            md.push_str(&format!(
                "| {what} | {}{} | {}{} | {} | ≥ {tput_target}× | {v} |\n",
                cell(&px, mib_per_s),
                tag(Stack::Plexus),
                cell(&rs, mib_per_s),
                tag(Stack::Rust),
                fmt_ratio(r)
            ));
            if quic {
                // The physical limit above is TCP's and Noise's AEAD: no share for QUIC.
                continue;
            }
            let lim = lower_limit.as_ref().ok().copied();
            let share = |x: &Result<f64, String>| match (x, lim) {
                (Ok(x), Some(l)) => Ok(x / l),
                (Err(e), _) => Err(e.clone()),
                (_, None) => Err("no limit".to_string()),
            };
            let (pl, rl) = (share(&px), share(&rs));
            let v = verdict(pl.as_ref().ok().map(|x| x * 100.0), 50.0, true, " %");
            targets.push((
                format!("{} {what} ≥ 50 % of lower physical limit", mux.arg()),
                v.clone(),
            ));
            md.push_str(&format!(
                "| … as share of the lower physical limit | {} | {} | | ≥ 50 % | {v} |\n",
                cell(&pl, |x| format!("{:.0} %", x * 100.0)),
                cell(&rl, |x| format!("{:.0} %", x * 100.0)),
            ));
        }
        let t = |st| get("ttfb", mux, st, &|v| v["p50_ms"]);
        let t90 = |st| get("ttfb", mux, st, &|v| v["p90_ms"]);
        let (px, rs) = (t(Stack::Plexus), t(Stack::Rust));
        md.push_str(&format!(
            "| time to first byte, median (p90) | {} | {} | {} | – | |\n",
            cell2(&px, &t90(Stack::Plexus), ms2, ms2),
            cell2(&rs, &t90(Stack::Rust), ms2, ms2),
            fmt_ratio(ratio(&px, &rs))
        ));
        let h = |st| get("handshakes", mux, st, &|v| v["done"] / v["secs"]);
        let hf = |st| get("handshakes", mux, st, &|v| v["failed"]).unwrap_or(0.0);
        let (px, rs) = (h(Stack::Plexus), h(Stack::Rust));
        let r = ratio(&px, &rs);
        let v = verdict(r, 1.5, true, "×");
        targets.push((
            format!("{} handshakes/s ≥ 1.5× rust-libp2p", mux.arg()),
            v.clone(),
        ));
        let fails = |st| {
            let f = hf(st);
            let range = spread(&res[&("handshakes", mux, st)], |x| format!("{x:.0}"));
            let p = if partial("handshakes", mux, st) {
                " *partial*"
            } else {
                ""
            };
            if f > 0.0 {
                format!("{range} ({f:.0} failed){p}")
            } else {
                format!("{range}{p}")
            }
        };
        md.push_str(&format!(
            "| handshakes per second ({} dialers) | {}{} | {}{} | {} | ≥ 1.5× | {v} |\n",
            sz.hs_dialers,
            cell(&px, |x| format!("{x:.0} /s")),
            fails(Stack::Plexus),
            cell(&rs, |x| format!("{x:.0} /s")),
            fails(Stack::Rust),
            fmt_ratio(r)
        ));
        let m = |st| get("rss", mux, st, &|v| (v["after"] - v["before"]) / v["conns"]);
        let (px, rs) = (m(Stack::Plexus), m(Stack::Rust));
        let r = ratio(&px, &rs);
        let v = verdict(r, 0.5, false, "×");
        targets.push((
            format!("{} RSS per idle connection ≤ 0.5× rust-libp2p", mux.arg()),
            v.clone(),
        ));
        md.push_str(&format!(
            "| RSS per idle connection (both ends) | {} | {} | {} | ≤ 0.5× | {v} |\n",
            cell(&px, |x| format!("{:.1} KiB", x / 1024.0)),
            cell(&rs, |x| format!("{:.1} KiB", x / 1024.0)),
            fmt_ratio(r)
        ));
        let q = |st, k: &'static str| get("hol", mux, st, &move |v| v[k]);
        md.push_str(&format!(
            "| ping RTT, idle connection, p50 | {} | {} | {} | – | |\n",
            cell(&q(Stack::Plexus, "idle_p50_ms"), |x| format!("{x:.3} ms")),
            cell(&q(Stack::Rust, "idle_p50_ms"), |x| format!("{x:.3} ms")),
            fmt_ratio(ratio(
                &q(Stack::Plexus, "idle_p50_ms"),
                &q(Stack::Rust, "idle_p50_ms")
            ))
        ));
        md.push_str(&format!(
            "| ping RTT under bulk load, p50 | {} | {} | {} | – | |\n",
            cell(&q(Stack::Plexus, "p50_ms"), |x| format!("{x:.2} ms")),
            cell(&q(Stack::Rust, "p50_ms"), |x| format!("{x:.2} ms")),
            fmt_ratio(ratio(
                &q(Stack::Plexus, "p50_ms"),
                &q(Stack::Rust, "p50_ms")
            ))
        ));
        let p99 = q(Stack::Plexus, "p99_ms");
        let (p99_target, v) = if quic {
            // Issue 12 asks for the figure, without a target.
            ("–", String::new())
        } else {
            let v = verdict(p99.as_ref().ok().copied(), 5.0, false, " ms");
            targets.push((
                format!("{} ping p99 under bulk load ≤ 5 ms", mux.arg()),
                v.clone(),
            ));
            ("≤ 5 ms", v)
        };
        md.push_str(&format!(
            "| ping RTT under bulk load, p99 (max) | {} | {} | {} | {p99_target} | {v} |\n",
            cell2(&p99, &q(Stack::Plexus, "max_ms"), ms2, ms1),
            cell2(
                &q(Stack::Rust, "p99_ms"),
                &q(Stack::Rust, "max_ms"),
                ms2,
                ms1
            ),
            fmt_ratio(ratio(&p99, &q(Stack::Rust, "p99_ms")))
        ));
        md.push_str(&format!(
            "| bulk rate during the ping test | {} | {} | {} | – | |\n\n",
            cell(&q(Stack::Plexus, "bulk_bps"), mib_per_s),
            cell(&q(Stack::Rust, "bulk_bps"), mib_per_s),
            fmt_ratio(ratio(
                &q(Stack::Plexus, "bulk_bps"),
                &q(Stack::Rust, "bulk_bps")
            ))
        ));
    }

    md.push_str("### Targets (issue 4: TCP; issue 12: QUIC)\n\n| target | verdict |\n|---|---|\n");
    for (t, v) in &targets {
        md.push_str(&format!("| {t} | {v} |\n"));
    }
    md.push_str(
        "\n### Method\n\n\
         - Every figure comes from a fresh child process (this binary re-executed) running a tokio \
         multi-thread runtime with 2 workers; both nodes of a measurement (listener and dialer) live in it \
         and share the machine's cores. secp256k1 identity keys on both stacks; default configurations \
         otherwise (plexus `YamuxConfig::default()` or `MplexConfig::default()`, `Limits::default()`; rust-libp2p \
         `SwarmBuilder` with `tcp::Config::default().nodelay(true)`, `noise::Config`, \
         `yamux::Config::default()` or `libp2p_mplex::Config::default()`).\n\
         - plexus side: `plexus_conn::Upgrader` + `plexus_tcp::TcpTransport`, streams from `MuxedConn`, \
         the protocol selected with `dialer_select_lazy` (as `plexus-host` does) and `listener_select`. \
         rust-libp2p side: a `Swarm<libp2p_stream::Behaviour>` per node, streams from `libp2p_stream::Control`.\n\
         - QUIC: plexus `plexus_quic::QuicTransport` (quinn 0.11, rustls with ring, `QuicConfig::default()`), \
         the connection admitted by the same `Upgrader` (no Noise, no muxer); rust-libp2p `SwarmBuilder::with_quic()` \
         (libp2p-quic: quinn and rustls too). The physical limit rows are TCP's and Noise's, so QUIC has no share row.\n\
         - Throughput: the dialer opens one stream; *dialer→listener* sends the bytes and half-closes, the \
         clock stops when the listener's one-byte acknowledgement arrives; *listener→dialer* asks for the \
         bytes, the clock stops at end of stream.\n\
         - Lower physical limit: min(raw loopback TCP through tokio, single-core ChaCha20-Poly1305 seal and \
         open through plexus' Noise framer). A transfer needs a seal on one side and an open on the other, \
         each on its own core.\n\
         - Time to first byte: dial, full upgrade (multistream, Noise XX, muxer), open a stream, select the \
         protocol, send one byte and read its echo; the connection is then closed (not timed). 5 warm-up \
         rounds are dropped.\n\
         - Handshakes per second: one dialing node, N tasks dialing the same listener at once; each counts a \
         connection when it is fully upgraded on the dialer's side, then closes it in the background.\n\
         - RSS per idle connection: `VmRSS` from `/proc/self/status` before and after opening the idle \
         connections (16 warm-up connections first, then wait until the listener upgraded all of them, \
         then 1 s); the delta divided by the count covers both ends and all per-connection tasks. \
         plexus' listener runs each connection's upgrade in a task that ends with it and the \
         connection's stream loop in another, as plexus-host does, so the upgrade's state is not kept \
         for the connection's life (rust-libp2p's swarm runs its own per-connection tasks).\n\
         - Ping under load: on one connection, an echo stream carries an 8-byte ping every interval \
         (measured RTT = write + echo), while a second stream uploads without pause.\n",
    );
    print!("{md}");
    let _ = std::io::stdout().flush();
}
