//! Command-line arguments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use plexus_multiaddr::Multiaddr;

/// plexus: a lean libp2p node for Ethereum consensus tooling.
#[derive(Debug, Parser)]
#[command(name = "plexus", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) global: Global,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub(crate) struct Global {
    /// Print one JSON object per line on stdout, each with an "event" field.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    /// Turn on tracing logs on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Load the node key from this file (a libp2p PrivateKey protobuf). Without it a fresh key is generated.
    #[arg(long, global = true, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    /// The type of a freshly generated key.
    #[arg(long, global = true, value_enum, default_value_t = KeyKind::Secp256k1)]
    pub(crate) key_type: KeyKind,
    /// Listen on this multiaddr (repeatable).
    #[arg(long = "listen", global = true, value_name = "MULTIADDR", value_parser = parse_multiaddr)]
    pub(crate) listen: Vec<Multiaddr>,
    /// The stream muxers to offer: `auto` offers yamux then mplex; `yamux` or `mplex` offers only that one.
    #[arg(long, global = true, value_enum, default_value_t = Muxer::Auto)]
    pub(crate) muxer: Muxer,
    /// Give up on any single network operation (dial, ping, identify, forming a gossip mesh) after this many seconds.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 10.0, value_parser = parse_seconds)]
    pub(crate) timeout: f64,
    /// Serve Prometheus metrics on this address (e.g. 127.0.0.1:9100).
    #[arg(long, global = true, value_name = "ADDR")]
    pub(crate) metrics: Option<SocketAddr>,
}

impl Global {
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }
}

/// Key types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyKind {
    /// secp256k1, as Ethereum nodes use.
    Secp256k1,
    /// ed25519.
    Ed25519,
}

/// Stream muxers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Muxer {
    /// yamux, then mplex.
    Auto,
    /// /yamux/1.0.0 only.
    Yamux,
    /// /mplex/6.7.0 only.
    Mplex,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Listen and serve ping, identify and perf until interrupted; with --topic, also
    /// gossipsub, printing every message received.
    Listen {
        /// Subscribe to this gossipsub topic and print each message received on it (repeatable).
        /// Messages are accepted (and so relayed to the mesh); gossip uses the Ethereum
        /// parameters (D=8, D_low=6, D_high=12, heartbeat 700 ms).
        #[arg(long = "topic", value_name = "TOPIC", value_parser = parse_topic)]
        topics: Vec<String>,
    },
    /// Connect to ADDR, ping it, identify it, and print what it runs; with --topic, also
    /// wait until the peer is in our gossipsub mesh of each topic, and with --publish,
    /// publish to it.
    Dial {
        /// The peer's multiaddr; a trailing /p2p/<id> is checked against the peer's key.
        #[arg(value_parser = parse_multiaddr)]
        addr: Multiaddr,
        /// How many pings to send.
        #[arg(long, default_value_t = 3)]
        count: u32,
        /// Subscribe to this gossipsub topic and wait (up to --timeout) until our mesh of it
        /// has a peer (repeatable).
        #[arg(long = "topic", value_name = "TOPIC", value_parser = parse_topic)]
        topics: Vec<String>,
        /// Publish TEXT on every --topic once its mesh formed, and report the message id and
        /// how many mesh peers it was sent to. Ids are content hashes: the same TEXT on the
        /// same topic is a duplicate to peers that saw it in the last 768 s.
        #[arg(long, value_name = "TEXT", requires = "topics")]
        publish: Option<String>,
    },
    /// Measure throughput to ADDR with the perf protocol.
    Perf {
        /// The peer's multiaddr.
        #[arg(value_parser = parse_multiaddr)]
        addr: Multiaddr,
        /// Bytes to send (suffixes: K, M, G, KiB, MiB, GiB).
        #[arg(long, value_parser = parse_bytes, default_value = "0")]
        upload: u64,
        /// Bytes to receive (same suffixes).
        #[arg(long, value_parser = parse_bytes, default_value = "0")]
        download: u64,
    },
    /// Generate a key and write it to FILE (mode 0600).
    Keygen {
        /// Where to write the key.
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Print the peer id of the key in --key (or of a fresh key).
    PeerId,
    /// Ethereum consensus Req/Resp with a beacon node.
    Eth {
        /// What to ask.
        #[command(subcommand)]
        command: EthCommand,
    },
    /// Run a local beacon network on the real stack (every node a full host with gossip,
    /// Req/Resp and a peer manager) and print a report: latency, reach, duplicates, bytes,
    /// CPU and memory per node, and what the peer managers did. Exits 1 unless every honest
    /// node received every message and every scripted event went as it should.
    Devnet(DevnetArgs),
    /// Join a beacon network as a watcher: dial each --peer, exchange Status, follow the
    /// fork's core gossip topics and print what arrives (connections, Goodbyes, Status,
    /// each message with its size and id, a block's slot and proposer), with a summary
    /// every slot. Runs until Ctrl-C or --duration.
    Node(NodeArgs),
}

/// `plexus node` options.
#[derive(Debug, Args)]
pub(crate) struct NodeArgs {
    #[command(flatten)]
    pub(crate) net: EthNet,
    /// A peer to dial (repeatable), e.g. a beacon node's `/ip4/…/tcp/9000/p2p/<id>`. With
    /// `/p2p/<id>` the peer manager also redials it after a disconnect (with backoff).
    #[arg(long = "peer", value_name = "MULTIADDR", value_parser = parse_multiaddr)]
    pub(crate) peers: Vec<Multiaddr>,
    /// Follow only this topic (repeatable): a name such as `beacon_block` or
    /// `beacon_attestation_5`. Default: the fork's global topics (block, aggregate, exits,
    /// slashings; sync committee contributions from Altair, BLS changes from Capella, the
    /// Gloas payload topics from Gloas), light-client topics excepted.
    #[arg(long = "topic", value_name = "NAME", value_parser = parse_kind)]
    pub(crate) topics: Vec<plexus_eth::GossipKind>,
    /// Accept and forward every message that decodes within its topic's bound. The node
    /// verifies no signature, so by default it reports each message Ignore: not forwarded,
    /// and peers do not penalise us for it.
    #[arg(long)]
    pub(crate) relay: bool,
    /// Print a summary line every this many seconds (default: one slot).
    #[arg(long, value_name = "SECONDS", value_parser = parse_seconds)]
    pub(crate) summary: Option<f64>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) duration: Option<u64>,
}

/// `plexus devnet` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct DevnetArgs {
    /// Nodes in the network (the scripted events need at least 8).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(2..=1000))]
    pub(crate) nodes: u64,
    /// Slots to simulate.
    #[arg(long, default_value_t = 12)]
    pub(crate) slots: u64,
    /// Milliseconds per slot (traffic scales with it).
    #[arg(long, default_value_t = 1000)]
    pub(crate) slot_ms: u64,
    /// Peers each node's peer manager aims for.
    #[arg(long, default_value_t = 12)]
    pub(crate) target_peers: usize,
    /// Seed for block sizes and message contents.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Write report.html and report.json into this directory.
    #[arg(long, value_name = "DIR")]
    pub(crate) report: Option<PathBuf>,
    /// Addresses of nodes in another devnet process (`/ip4/…/tcp/…/p2p/…`), dialed too.
    #[arg(long, value_name = "MULTIADDR", value_parser = parse_multiaddr)]
    pub(crate) bootstrap: Vec<Multiaddr>,
    /// More --bootstrap addresses, one per line (another process's --addrs-out file).
    #[arg(long, value_name = "FILE")]
    pub(crate) bootstrap_file: Option<PathBuf>,
    /// Once the nodes listen, write their addresses (`…/p2p/<id>`, one per line) to FILE,
    /// for another process's --bootstrap-file.
    #[arg(long, value_name = "FILE")]
    pub(crate) addrs_out: Option<PathBuf>,
    /// Where the nodes listen. A loopback address gives each node its own, counting up
    /// from it (200 per third octet), so refusals by IP are per node; another process on
    /// this machine takes another range (e.g. 127.1.10.10). Any other address is shared by
    /// all nodes, each on its own ports: a run across machines.
    #[arg(long, value_name = "IPV4", default_value = "127.0.10.10")]
    pub(crate) ip: std::net::Ipv4Addr,
    /// No late joiner.
    #[arg(long)]
    pub(crate) no_late_joiner: bool,
    /// No misbehaving node.
    #[arg(long)]
    pub(crate) no_misbehaving: bool,
    /// No node on another fork.
    #[arg(long)]
    pub(crate) no_wrong_fork: bool,
    /// No node that leaves and comes back.
    #[arg(long)]
    pub(crate) no_rejoin: bool,
    /// Set from the global --metrics: every node's metrics (labelled `node`) are served there.
    #[arg(skip)]
    pub(crate) metrics: Option<SocketAddr>,
}

/// `plexus eth` commands.
#[derive(Debug, Subcommand)]
pub(crate) enum EthCommand {
    /// Dial ADDR, exchange Status (status/2, or status/1 with older nodes) and fetch its
    /// MetaData (metadata/3, /2 or /1), and print both.
    Status {
        /// The beacon node's multiaddr.
        #[arg(value_parser = parse_multiaddr)]
        addr: Multiaddr,
        #[command(flatten)]
        net: EthNet,
    },
    /// Dial ADDR, exchange Status, request blocks by range and print one line per block
    /// (slot, size, context bytes, time since the request).
    Blocks {
        /// The beacon node's multiaddr.
        #[arg(value_parser = parse_multiaddr)]
        addr: Multiaddr,
        /// First slot.
        #[arg(long, value_name = "SLOT")]
        from: u64,
        /// Number of slots (at most the fork's MAX_REQUEST_BLOCKS: 1024 before Deneb, 128 from it).
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1024))]
        count: u64,
        #[command(flatten)]
        net: EthNet,
    },
}

/// Which chain: a built-in network, or a private one from its config file.
#[derive(Debug, Args)]
pub(crate) struct EthNet {
    /// A built-in network: mainnet, sepolia, hoodi or minimal.
    #[arg(long, default_value = "mainnet", value_parser = parse_network)]
    pub(crate) network: String,
    /// A private network's chain config (config.yaml); needs --genesis-validators-root.
    #[arg(long, value_name = "FILE", requires = "genesis_validators_root")]
    pub(crate) config: Option<PathBuf>,
    /// The private network's genesis validators root (32 bytes hex).
    #[arg(long, value_name = "HEX", requires = "config")]
    pub(crate) genesis_validators_root: Option<String>,
    /// Genesis time (Unix seconds): fixes the wall-clock epoch, hence our fork digest and
    /// request limits. Built-in public networks know theirs; otherwise epoch 0 is assumed.
    #[arg(long, value_name = "SECONDS")]
    pub(crate) genesis_time: Option<u64>,
    /// The fork digest to put in our Status (4 bytes hex, e.g. a local devnet's). By
    /// default the network's digest at the wall-clock epoch.
    #[arg(long, value_name = "HEX", value_parser = parse_digest)]
    pub(crate) fork_digest: Option<plexus_eth::ForkDigest>,
}

fn parse_network(s: &str) -> Result<String, String> {
    plexus_eth::Network::from_name(s)
        .map(|_| s.to_owned())
        .ok_or_else(|| format!("unknown network {s:?} (mainnet, sepolia, hoodi, minimal)"))
}

fn parse_digest(s: &str) -> Result<plexus_eth::ForkDigest, String> {
    s.trim_start_matches("0x")
        .parse()
        .map_err(|e| format!("not a fork digest: {e}"))
}

fn parse_kind(s: &str) -> Result<plexus_eth::GossipKind, String> {
    plexus_eth::GossipKind::from_name(s).ok_or_else(|| {
        format!("unknown topic name {s:?} (e.g. beacon_block, beacon_attestation_5)")
    })
}

fn parse_multiaddr(s: &str) -> Result<Multiaddr, String> {
    s.parse::<Multiaddr>()
        .map_err(|e| format!("not a multiaddr: {e}"))
}

fn parse_topic(s: &str) -> Result<String, String> {
    if s.is_empty() {
        return Err("a topic must not be empty".into());
    }
    Ok(s.to_owned())
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 86_400.0 => Ok(v),
        _ => Err("expected a number of seconds in (0, 86400]".into()),
    }
}

/// `1024`, `16K`, `16KiB`, `1M`, `1MiB`, `1G`, `1GiB` (K/M/G are decimal, KiB/MiB/GiB binary).
pub(crate) fn parse_bytes(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("not a byte count: {s:?}"))?;
    let mul: u64 = match unit.trim() {
        "" | "B" => 1,
        "K" | "KB" => 1_000,
        "M" | "MB" => 1_000_000,
        "G" | "GB" => 1_000_000_000,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        u => return Err(format!("unknown unit {u:?} (use K, M, G, KiB, MiB or GiB)")),
    };
    n.checked_mul(mul)
        .ok_or_else(|| format!("{s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts() {
        assert_eq!(parse_bytes("0"), Ok(0));
        assert_eq!(parse_bytes("1500"), Ok(1500));
        assert_eq!(parse_bytes("16K"), Ok(16_000));
        assert_eq!(parse_bytes("16KiB"), Ok(16_384));
        assert_eq!(parse_bytes("1MiB"), Ok(1 << 20));
        assert_eq!(parse_bytes("2GiB"), Ok(2 << 30));
        assert!(parse_bytes("1TiB").is_err());
        assert!(parse_bytes("-1").is_err());
        assert!(parse_bytes("MiB").is_err());
        assert!(parse_bytes("99999999999999999999G").is_err());
    }

    #[test]
    fn bad_usage_is_a_parse_error() {
        use clap::Parser as _;
        assert!(Cli::try_parse_from(["plexus", "dial", "/ip4/1.2.3.4/tcp/x"]).is_err());
        assert!(Cli::try_parse_from(["plexus", "dial"]).is_err());
        assert!(Cli::try_parse_from(["plexus", "--muxer", "spdy", "listen"]).is_err());
        assert!(Cli::try_parse_from(["plexus", "--timeout", "0", "listen"]).is_err());
        assert!(
            Cli::try_parse_from(["plexus", "dial", "/ip4/1.2.3.4/tcp/1", "--publish", "x"])
                .is_err(),
            "--publish needs --topic"
        );
        assert!(Cli::try_parse_from(["plexus", "listen", "--topic", ""]).is_err());
        let ok = Cli::try_parse_from([
            "plexus",
            "--json",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--listen",
            "/ip6/::1/tcp/0",
            "perf",
            "/ip4/127.0.0.1/tcp/1",
            "--upload",
            "1MiB",
        ])
        .unwrap();
        assert!(ok.global.json);
        assert_eq!(ok.global.listen.len(), 2);
        assert!(matches!(
            ok.command,
            Command::Perf {
                upload: 1_048_576,
                download: 0,
                ..
            }
        ));
    }

    #[test]
    fn node_takes_repeated_peers_and_topic_names() {
        use clap::Parser as _;
        let n = Cli::try_parse_from([
            "plexus",
            "node",
            "--network",
            "minimal",
            "--peer",
            "/ip4/10.0.0.1/tcp/9000",
            "--peer",
            "/ip4/10.0.0.2/udp/9001/quic-v1",
            "--topic",
            "beacon_block",
            "--topic",
            "beacon_attestation_5",
            "--relay",
            "--duration",
            "30",
        ])
        .unwrap();
        let Command::Node(a) = &n.command else {
            panic!("{:?}", n.command)
        };
        assert_eq!(a.peers.len(), 2);
        assert_eq!(
            a.topics,
            [
                plexus_eth::GossipKind::BeaconBlock,
                plexus_eth::GossipKind::BeaconAttestation(5)
            ]
        );
        assert!(a.relay);
        assert_eq!(a.duration, Some(30));
        assert_eq!(a.summary, None);
        assert!(
            Cli::try_parse_from(["plexus", "node", "--topic", "beacon_attestation_05"]).is_err()
        );
        assert!(Cli::try_parse_from(["plexus", "node", "--summary", "0"]).is_err());
        assert!(Cli::try_parse_from(["plexus", "node", "--peer", "10.0.0.1:9000"]).is_err());
    }

    #[test]
    fn topics_repeat_and_publish_needs_one() {
        use clap::Parser as _;
        let l = Cli::try_parse_from(["plexus", "listen", "--topic", "a", "--topic", "b"]).unwrap();
        assert!(matches!(&l.command, Command::Listen { topics } if topics == &["a", "b"]));
        let l = Cli::try_parse_from(["plexus", "listen"]).unwrap();
        assert!(matches!(&l.command, Command::Listen { topics } if topics.is_empty()));
        let d = Cli::try_parse_from([
            "plexus",
            "dial",
            "/ip4/1.2.3.4/tcp/1",
            "--topic",
            "t",
            "--publish",
            "hello",
        ])
        .unwrap();
        assert!(matches!(
            &d.command,
            Command::Dial { topics, publish: Some(p), .. } if topics == &["t"] && p == "hello"
        ));
    }
}
