//! `plexus`: listen, dial, perf, gossip and key tools over the plexus stack.
//!
//! Exit status: 0 when everything asked succeeded, 1 when a check failed
//! (unreachable peer, wrong peer id, a failed ping, identify or perf, no gossip mesh,
//! a publish that reached no peer), 2 for bad usage (malformed arguments, an
//! unreadable key file).
#![forbid(unsafe_code)]

mod args;
mod devnet;
mod eth;
mod gossip;
mod metrics;
mod node;
mod output;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use args::{Cli, Command, Global, KeyKind};
use clap::Parser;
use output::Out;
use plexus_core::ConnInfo;
use plexus_host::{Host, HostConfig, HostEvent};
use plexus_identity::Keypair;
use plexus_multiaddr::Multiaddr;
use serde_json::json;

/// How a run failed.
enum Failure {
    /// Bad usage: exit status 2.
    Usage(String),
    /// Something asked for did not succeed: exit status 1.
    Check(String),
}

fn main() -> ExitCode {
    // Remote input must never panic; if a bug does, say so on one line
    // instead of a backtrace.
    std::panic::set_hook(Box::new(|info| {
        eprintln!("plexus: internal error: {info}");
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) if e.use_stderr() => {
            // Bad usage: one line, not clap's multi-line report with tips.
            let text = e.render().to_string();
            eprintln!("plexus: {}", usage_line(&text));
            return ExitCode::from(2);
        }
        Err(e) => {
            // --help, --version.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    init_tracing(cli.global.verbose);
    let out = Out {
        json: cli.global.json,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            out.error(&format!("cannot start the runtime: {e}"));
            return ExitCode::from(1);
        }
    };
    let result = rt.block_on(run(cli, out));
    // Don't wait for background tasks (listeners, drivers) on the way out.
    rt.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Check(m)) => {
            out.error(&m);
            ExitCode::from(1)
        }
        Err(Failure::Usage(m)) => {
            out.error(&m);
            ExitCode::from(2)
        }
    }
}

/// clap's usage error as one line: its first line, plus the indented lines that follow it
/// when it ends in a colon ("the following required arguments were not provided:").
fn usage_line(text: &str) -> String {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let mut line = lines
        .next()
        .unwrap_or("invalid arguments")
        .trim_start_matches("error: ")
        .to_owned();
    if line.ends_with(':') {
        let rest: Vec<&str> = lines
            .take_while(|l| l.starts_with(' '))
            .map(str::trim)
            .collect();
        if !rest.is_empty() {
            line.push(' ');
            line.push_str(&rest.join(", "));
        }
    }
    line
}

fn init_tracing(verbose: u8) {
    if verbose == 0 {
        return;
    }
    let level = match verbose {
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn load_key(g: &Global) -> Result<Keypair, Failure> {
    match &g.key {
        Some(path) => Keypair::load(path)
            .map_err(|e| Failure::Usage(format!("cannot load key {}: {e}", path.display()))),
        None => Ok(match g.key_type {
            KeyKind::Secp256k1 => Keypair::generate_secp256k1(),
            KeyKind::Ed25519 => Keypair::generate_ed25519(),
        }),
    }
}

async fn run(cli: Cli, out: Out) -> Result<(), Failure> {
    let g = &cli.global;
    let key = load_key(g)?;
    match &cli.command {
        Command::Keygen { out: path } => {
            let key = match g.key_type {
                KeyKind::Secp256k1 => Keypair::generate_secp256k1(),
                KeyKind::Ed25519 => Keypair::generate_ed25519(),
            };
            key.save(path)
                .map_err(|e| Failure::Usage(format!("cannot write {}: {e}", path.display())))?;
            let peer = key.public().to_peer_id();
            out.event(
                "key",
                json!({ "peer_id": peer.to_string(), "path": path.display().to_string() }),
                Some(format!(
                    "wrote {} key for {peer} to {}",
                    key_name(g.key_type),
                    path.display()
                )),
            );
            return Ok(());
        }
        Command::Devnet(args) => {
            let mut args = args.clone();
            args.metrics = g.metrics;
            return devnet::run(&args, out).await;
        }
        Command::Node(args) => return node::run(g, key, args, out).await,
        Command::PeerId => {
            let peer = key.public().to_peer_id();
            out.event(
                "peer_id",
                json!({ "peer_id": peer.to_string() }),
                Some(peer.to_string()),
            );
            return Ok(());
        }
        _ => {}
    }

    let mut listen = g.listen.clone();
    if listen.is_empty() && matches!(cli.command, Command::Listen { .. }) {
        listen = default_listen();
    }
    let cfg = host_config(g, key, listen);
    let host = Host::new(cfg)
        .await
        .map_err(|e| Failure::Check(format!("cannot start the host: {e}")))?;

    // Gossipsub runs only when asked for with --topic.
    let topics: &[String] = match &cli.command {
        Command::Listen { topics } | Command::Dial { topics, .. } => topics,
        _ => &[],
    };
    let mut gossip_metrics = None;
    if let Some(addr) = g.metrics {
        let mut registry = prometheus_client::registry::Registry::default();
        host.metrics().register(&mut registry);
        if !topics.is_empty() {
            gossip_metrics = Some(plexus_gossipsub::GossipMetrics::new(&mut registry));
        }
        let bound = metrics::serve(addr, Arc::new(registry))
            .await
            .map_err(|e| Failure::Usage(format!("cannot serve metrics on {addr}: {e}")))?;
        tracing::info!(%bound, "serving metrics");
    }

    let identify = plexus_identify::IdentifyService::spawn(
        host.clone(),
        plexus_identify::IdentifyConfig::default(),
    )
    .map_err(|e| Failure::Check(format!("cannot start identify: {e}")))?;
    // Ping on demand only: `dial` pings exactly --count times.
    let ping_cfg = plexus_ping::PingConfig {
        interval: None,
        ..Default::default()
    };
    let ping = plexus_ping::PingService::spawn(host.clone(), ping_cfg)
        .map_err(|e| Failure::Check(format!("cannot start ping: {e}")))?;

    // Subscribed before `ready`: a peer that connects on seeing it learns our topics.
    let gossip = if topics.is_empty() {
        None
    } else {
        let publisher = matches!(cli.command, Command::Dial { .. });
        Some(gossip::start(&host, topics, publisher, gossip_metrics).await?)
    };

    let listen_addrs: Vec<String> = host.listen_addrs().iter().map(|a| a.to_string()).collect();
    let mut human = format!("peer id {}", host.peer_id());
    if !listen_addrs.is_empty() {
        human.push_str(&format!("\nlistening on {}", listen_addrs.join(", ")));
    }
    if !topics.is_empty() {
        human.push_str(&format!("\nsubscribed to {}", topics.join(", ")));
    }
    out.event(
        "ready",
        json!({
            "peer_id": host.peer_id().to_string(),
            "listen_addrs": listen_addrs,
            "topics": topics,
        }),
        Some(human),
    );

    let result = match &cli.command {
        Command::Listen { .. } => listen_forever(&host, gossip, out).await,
        Command::Dial {
            addr,
            count,
            topics,
            publish,
        } => {
            let gossip = gossip.map(|(handle, events)| {
                gossip::ignore_messages(handle.clone(), events);
                GossipJob {
                    handle,
                    topics,
                    publish: publish.as_deref(),
                }
            });
            dial(
                &host,
                &identify,
                &ping,
                addr,
                *count,
                gossip,
                g.timeout(),
                out,
            )
            .await
        }
        Command::Perf {
            addr,
            upload,
            download,
        } => perf(&host, addr, *upload, *download, g.timeout(), out).await,
        Command::Eth { command } => eth::run(&host, command, g.timeout(), out).await,
        Command::Keygen { .. } | Command::PeerId | Command::Devnet(_) | Command::Node(_) => Ok(()),
    };
    host.shutdown().await;
    result
}

/// What `listen` and `node` bind without `--listen`: TCP and QUIC on every interface,
/// ports chosen by the system.
fn default_listen() -> Vec<Multiaddr> {
    vec![
        "/ip4/0.0.0.0/tcp/0".parse().expect("valid multiaddr"),
        "/ip4/0.0.0.0/udp/0/quic-v1"
            .parse()
            .expect("valid multiaddr"),
    ]
}

/// The host configuration of every command: QUIC first (the consensus spec's primary
/// transport), TCP as fallback, the muxers of `--muxer`, listening on `listen`.
fn host_config(g: &Global, key: Keypair, listen: Vec<Multiaddr>) -> HostConfig {
    let quic = plexus_quic::QuicTransport::new(&key, plexus_quic::QuicConfig::default());
    let mut cfg = HostConfig::new(key);
    cfg.transports = vec![
        Arc::new(quic),
        Arc::new(plexus_tcp::TcpTransport::new(cfg.tcp.clone())),
    ];
    cfg.listen = listen;
    let mux = cfg.limits.mux.clone();
    cfg.muxers = match g.muxer {
        args::Muxer::Auto => Vec::new(), // the host's default: yamux, then mplex
        args::Muxer::Yamux => vec![Arc::new(plexus_yamux::YamuxConfig::new(
            Default::default(),
            mux,
        ))],
        args::Muxer::Mplex => vec![Arc::new(plexus_mplex::MplexConfig::new(
            Default::default(),
            mux,
        ))],
    };
    cfg
}

fn key_name(k: KeyKind) -> &'static str {
    match k {
        KeyKind::Secp256k1 => "secp256k1",
        KeyKind::Ed25519 => "ed25519",
    }
}

fn direction(d: plexus_core::Direction) -> &'static str {
    match d {
        plexus_core::Direction::Inbound => "inbound",
        plexus_core::Direction::Outbound => "outbound",
    }
}

fn conn_fields(c: &ConnInfo) -> serde_json::Value {
    json!({
        "peer_id": c.peer.to_string(),
        "remote_addr": c.remote_addr.to_string(),
        "local_addr": c.local_addr.to_string(),
        "direction": direction(c.direction),
        "security": c.security,
        "muxer": c.muxer,
    })
}

fn print_host_event(out: Out, ev: &HostEvent) {
    match ev {
        HostEvent::Connected(c) => out.event(
            "connection_opened",
            conn_fields(c),
            Some(format!("connected to {} at {} ({})", c.peer, c.remote_addr, direction(c.direction))),
        ),
        HostEvent::Disconnected { peer, cause } => out.event(
            "connection_closed",
            json!({ "peer_id": peer.to_string(), "reason": cause.to_string(), "blame": cause.blame().to_string() }),
            Some(format!("disconnected from {peer}: {cause}")),
        ),
        HostEvent::DialFailed { peer, addr, error } => out.event(
            "dial_failed",
            json!({ "peer_id": peer.map(|p| p.to_string()), "addr": addr.as_ref().map(|a| a.to_string()), "error": error.to_string(), "blame": error.blame().to_string() }),
            None,
        ),
        HostEvent::NewListenAddr(a) => out.event(
            "listen_addr",
            json!({ "addr": a.to_string() }),
            Some(format!("listening on {a}")),
        ),
        // Kinds added later are not printed.
        _ => {}
    }
}

async fn listen_forever(
    host: &Host,
    gossip: Option<(
        plexus_gossipsub::Gossipsub,
        tokio::sync::mpsc::Receiver<plexus_gossipsub::GossipEvent>,
    )>,
    out: Out,
) -> Result<(), Failure> {
    // The library never serves perf on its own; the command does, as `listen` is a test node.
    let _perf = plexus_perf::Perf::enable(host, plexus_perf::PerfConfig::default())
        .map_err(|e| Failure::Check(format!("cannot start perf: {e}")))?;
    let mut events = host.events();
    let (handle, mut gossip_events) = match gossip {
        Some((h, e)) => (Some(h), Some(e)),
        None => (None, None),
    };
    loop {
        tokio::select! {
            ev = gossip::next_event(&mut gossip_events) => {
                if let Some(h) = &handle {
                    gossip::on_listen_event(h, ev, out).await;
                }
            }
            ev = events.recv() => match ev {
                Ok(ev) => print_host_event(out, &ev),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "event stream lagged");
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
            },
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

async fn with_timeout<T>(
    what: &str,
    limit: Duration,
    f: impl std::future::Future<Output = T>,
) -> Result<T, Failure> {
    tokio::time::timeout(limit, f).await.map_err(|_| {
        Failure::Check(format!(
            "{what} timed out after {:.1} s",
            limit.as_secs_f64()
        ))
    })
}

async fn connect(
    host: &Host,
    addr: &Multiaddr,
    limit: Duration,
    out: Out,
) -> Result<ConnInfo, Failure> {
    let conn = with_timeout("dial", limit, host.connect(vec![addr.clone()]))
        .await?
        .map_err(|e| Failure::Check(format!("dial {addr}: {e}")))?;
    print_host_event(out, &HostEvent::Connected(conn.clone()));
    Ok(conn)
}

/// What `dial` does with gossipsub: wait for a mesh of each topic, publish on it.
struct GossipJob<'a> {
    handle: plexus_gossipsub::Gossipsub,
    topics: &'a [String],
    publish: Option<&'a str>,
}

#[allow(clippy::too_many_arguments)]
async fn dial(
    host: &Host,
    identify: &plexus_identify::IdentifyHandle,
    ping: &plexus_ping::PingHandle,
    addr: &Multiaddr,
    count: u32,
    gossip: Option<GossipJob<'_>>,
    limit: Duration,
    out: Out,
) -> Result<(), Failure> {
    let conn = connect(host, addr, limit, out).await?;
    let peer = conn.peer;
    for seq in 1..=count {
        let rtt = with_timeout("ping", limit, ping.ping(peer))
            .await?
            .map_err(|e| Failure::Check(format!("ping {peer}: {e}")))?;
        let ms = rtt.as_secs_f64() * 1e3;
        out.event(
            "ping",
            json!({ "peer_id": peer.to_string(), "seq": seq, "rtt_ms": ms }),
            Some(format!("ping {seq}/{count}: {ms:.3} ms")),
        );
    }
    let info = with_timeout("identify", limit, identify.identify(peer))
        .await?
        .map_err(|e| Failure::Check(format!("identify {peer}: {e}")))?;
    let listen: Vec<String> = info.listen_addrs.iter().map(|a| a.to_string()).collect();
    let observed = info.observed_addr.as_ref().map(|a| a.to_string());
    out.event(
        "identify",
        json!({
            "peer_id": peer.to_string(),
            "agent_version": info.agent_version,
            "protocol_version": info.protocol_version,
            "protocols": info.protocols,
            "listen_addrs": listen,
            "observed_addr": observed,
        }),
        Some(format!(
            "{peer} runs {}\n  protocol version: {}\n  protocols: {}\n  listen addresses: {}\n  sees us at: {}",
            info.agent_version.as_deref().unwrap_or("(unknown agent)"),
            info.protocol_version.as_deref().unwrap_or("(none)"),
            info.protocols.join(", "),
            listen.join(", "),
            observed.as_deref().unwrap_or("(not given)"),
        )),
    );
    if let Some(job) = gossip {
        // The mesh forms while we ping and identify: we subscribed before connecting.
        for topic in job.topics {
            gossip::wait_mesh(&job.handle, topic, limit, out).await?;
            if let Some(text) = job.publish {
                gossip::publish(&job.handle, topic, text, limit, out).await?;
            }
        }
        // Close politely and wait for it: the close flushes what the gossip writers
        // wrote, which a close left to the runtime's exit may not.
        host.shutdown().await;
    } else {
        host.disconnect(peer);
    }
    out.event(
        "connection_closed",
        json!({ "peer_id": peer.to_string(), "reason": "done" }),
        Some(format!("disconnected from {peer}")),
    );
    Ok(())
}

async fn perf(
    host: &Host,
    addr: &Multiaddr,
    upload: u64,
    download: u64,
    limit: Duration,
    out: Out,
) -> Result<(), Failure> {
    let conn = connect(host, addr, limit, out).await?;
    let peer = conn.peer;
    let bar = (!out.json).then(|| {
        let bar = indicatif::ProgressBar::new(upload + download);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} {msg:>8} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar
    });
    let progress = {
        let bar = bar.clone();
        move |p: plexus_perf::Progress| {
            if let Some(bar) = &bar {
                let done = match p.phase {
                    plexus_perf::Phase::Upload => {
                        bar.set_message("upload");
                        p.bytes
                    }
                    plexus_perf::Phase::Download => {
                        bar.set_message("download");
                        upload + p.bytes
                    }
                };
                bar.set_position(done);
            }
        }
    };
    // Perf moves as many bytes as asked; the timeout bounds only inactivity
    // at connection level, so the transfer itself is not cut short here.
    let result = plexus_perf::perf(host, peer, upload, download, progress)
        .await
        .map_err(|e| Failure::Check(format!("perf {peer}: {e}")))?;
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let up_rate = rate(result.upload_bytes, result.upload_secs);
    let down_rate = rate(result.download_bytes, result.download_secs);
    out.event(
        "perf",
        json!({
            "peer_id": peer.to_string(),
            "upload_bytes": result.upload_bytes,
            "upload_seconds": result.upload_secs,
            "download_bytes": result.download_bytes,
            "download_seconds": result.download_secs,
        }),
        Some(format!(
            "upload   {} bytes in {:.3} s ({up_rate})\ndownload {} bytes in {:.3} s ({down_rate})",
            result.upload_bytes, result.upload_secs, result.download_bytes, result.download_secs
        )),
    );
    Ok(())
}

fn rate(bytes: u64, secs: f64) -> String {
    if bytes == 0 || secs <= 0.0 {
        return "-".into();
    }
    let bits = bytes as f64 * 8.0 / secs;
    if bits >= 1e9 {
        format!("{:.2} Gbit/s", bits / 1e9)
    } else {
        format!("{:.1} Mbit/s", bits / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::usage_line;

    #[test]
    fn usage_errors_fit_on_one_line() {
        let missing = "error: the following required arguments were not provided:\n  --topic <TOPIC>\n\nUsage: plexus dial --topic <TOPIC> <ADDR>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_line(missing),
            "the following required arguments were not provided: --topic <TOPIC>"
        );
        let bad = "error: invalid value 'x' for '--timeout <SECONDS>': expected a number\n\nFor more information, try '--help'.\n";
        assert_eq!(
            usage_line(bad),
            "invalid value 'x' for '--timeout <SECONDS>': expected a number"
        );
        assert_eq!(usage_line(""), "invalid arguments");
    }
}
