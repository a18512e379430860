//! `plexus eth status` and `plexus eth blocks`: Req/Resp with a beacon node.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use plexus_core::{BoxFut, PeerId};
use plexus_eth::ssz_types::BitVector;
use plexus_eth::{
    BeaconBlocksByRangeRequest, ChainConfig, Epoch, ForkDigest, ForkSchedule, GoodbyeReason,
    MetaDataV3, Network, Root, StatusV2,
};
use plexus_host::Host;
use plexus_reqresp::{
    EpochClock, MetaData, Protocol, ReqResp, ReqRespConfig, ReqRespError, ReqRespHandle, Request,
    RespondError, Responder, ResponseSink, Status, chunk_fields, status_answer,
};
use serde_json::json;

use crate::args::{EthCommand, EthNet};
use crate::output::Out;
use crate::{Failure, connect, with_timeout};

/// The chain as the command understands it.
pub(crate) struct Chain {
    /// The network's fork schedule.
    pub(crate) schedule: Arc<ForkSchedule>,
    /// Genesis (Unix seconds), when known.
    pub(crate) genesis_time: Option<u64>,
    /// The digest we put in our Status: `--fork-digest`, or the wall-clock epoch's.
    pub(crate) digest: ForkDigest,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn parse_root(s: &str) -> Result<Root, Failure> {
    let s = s.trim_start_matches("0x");
    let bad = || Failure::Usage(format!("not a 32-byte hex root: {s:?}"));
    if s.len() != 64 || !s.is_ascii() {
        return Err(bad());
    }
    let mut root = [0u8; 32];
    for (i, b) in root.iter_mut().enumerate() {
        *b = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(root)
}

/// The epoch the wall clock is in (0 before genesis or without a genesis time).
pub(crate) fn wall_epoch(config: &ChainConfig, genesis_time: Option<u64>) -> Epoch {
    wall_slot(config, genesis_time).map_or(0, |s| s / config.preset.slots_per_epoch())
}

/// The slot the wall clock is in: `None` without a genesis time, 0 before genesis.
pub(crate) fn wall_slot(config: &ChainConfig, genesis_time: Option<u64>) -> Option<u64> {
    let genesis = genesis_time?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let since = now.saturating_sub(genesis.saturating_mul(1000));
    Some(since / config.slot_duration_ms.max(1))
}

/// The chain `net` names: a built-in network or a config file, and our digest.
pub(crate) fn chain(net: &EthNet) -> Result<Chain, Failure> {
    let (schedule, genesis_time) = match (&net.config, &net.genesis_validators_root) {
        (Some(path), Some(root)) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Usage(format!("cannot read {}: {e}", path.display())))?;
            let config = ChainConfig::from_yaml(&text)
                .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
            let schedule = ForkSchedule::new(config, parse_root(root)?)
                .map_err(|e| Failure::Usage(format!("{}: {e}", path.display())))?;
            (schedule, net.genesis_time)
        }
        _ => {
            let network = Network::from_name(&net.network)
                .ok_or_else(|| Failure::Usage(format!("unknown network {}", net.network)))?;
            let gvr = network.genesis_validators_root().unwrap_or([0; 32]);
            let schedule = ForkSchedule::new(network.config(), gvr)
                .map_err(|e| Failure::Usage(format!("{}: {e}", network.name())))?;
            (schedule, net.genesis_time.or(network.genesis_time()))
        }
    };
    let epoch = wall_epoch(schedule.config(), genesis_time);
    let digest = net.fork_digest.unwrap_or(schedule.digest_at(epoch));
    Ok(Chain {
        schedule: Arc::new(schedule),
        genesis_time,
        digest,
    })
}

/// Answers the peer's Status with ours, so it keeps the connection while we ask.
struct StatusResponder(StatusV2);

impl Responder for StatusResponder {
    fn protocols(&self) -> Vec<Protocol> {
        vec![Protocol::StatusV1, Protocol::StatusV2]
    }

    fn respond<'a>(
        &'a self,
        _: PeerId,
        request: Request,
        sink: &'a mut ResponseSink,
    ) -> BoxFut<'a, Result<(), RespondError>> {
        Box::pin(async move {
            let Some(ssz) = status_answer(&request, self.0) else {
                return Err(RespondError::ServerError("not served".into()));
            };
            sink.send(&ssz, 0)
                .await
                .map_err(|e| RespondError::ServerError(e.to_string()))
        })
    }
}

fn failed(what: &str, e: ReqRespError) -> Failure {
    Failure::Check(format!("{what}: {e} (blame: {:?})", e.blame()))
}

/// Run an `eth` command on `host`.
pub(crate) async fn run(
    host: &Host,
    cmd: &EthCommand,
    limit: Duration,
    out: Out,
) -> Result<(), Failure> {
    let net = match cmd {
        EthCommand::Status { net, .. } | EthCommand::Blocks { net, .. } => net,
    };
    let chain = chain(net)?;
    let config = chain.schedule.config().clone();
    let genesis = chain.genesis_time;
    let clock: EpochClock = Arc::new(move || wall_epoch(&config, genesis));
    let mut cfg = ReqRespConfig::new(&chain.schedule, clock);
    cfg.first_chunk_timeout = limit;
    cfg.chunk_timeout = limit;
    // A tool, not a node with a chain: peers answer it and do not sync from it.
    let ours = StatusV2::at_genesis(chain.digest);
    let metadata = MetaDataV3 {
        seq_number: 0,
        attnets: BitVector::new(),
        syncnets: BitVector::new(),
        custody_group_count: 0,
    };
    let rr = ReqResp::spawn(
        host.clone(),
        chain.schedule.clone(),
        cfg,
        Arc::new(StatusResponder(ours)),
        metadata,
    )
    .map_err(|e| Failure::Check(format!("cannot start req/resp: {e}")))?;
    let addr = match cmd {
        EthCommand::Status { addr, .. } | EthCommand::Blocks { addr, .. } => addr,
    };
    let conn = connect(host, addr, limit, out).await?;
    let peer = conn.peer;
    let result = async {
        let status = with_timeout("status", limit * 2, rr.status(peer, ours))
            .await?
            .map_err(|e| failed("status", e))?;
        print_status(out, &chain, peer, &status);
        match cmd {
            EthCommand::Status { .. } => {
                let md = with_timeout("metadata", limit * 2, rr.metadata(peer))
                    .await?
                    .map_err(|e| failed("metadata", e))?;
                print_metadata(out, peer, &md);
                Ok(())
            }
            EthCommand::Blocks { from, count, .. } => {
                blocks(&rr, peer, *from, *count, limit, out).await
            }
        }
    }
    .await;
    // Polite either way; the peer may already have gone.
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        rr.goodbye(peer, GoodbyeReason::ClientShutdown),
    )
    .await;
    result
}

fn print_status(out: Out, chain: &Chain, peer: PeerId, status: &Status) {
    let (protocol, digest, fin_root, fin_epoch, head_root, head_slot, earliest) = match status {
        Status::V1(s) => (
            "status/1",
            s.fork_digest,
            s.finalized_root,
            s.finalized_epoch,
            s.head_root,
            s.head_slot,
            None,
        ),
        Status::V2(s) => (
            "status/2",
            s.fork_digest,
            s.finalized_root,
            s.finalized_epoch,
            s.head_root,
            s.head_slot,
            Some(s.earliest_available_slot),
        ),
    };
    let fork = chain.schedule.fork_of_digest(digest).map(|f| f.name());
    let mut human = format!(
        "{protocol} from {peer}: fork digest {digest} ({}), head slot {head_slot} root 0x{}, finalized epoch {fin_epoch} root 0x{}",
        fork.unwrap_or("not on this network"),
        hex(&head_root),
        hex(&fin_root),
    );
    if let Some(e) = earliest {
        human.push_str(&format!(", earliest available slot {e}"));
    }
    let mut fields = json!({
        "peer_id": peer.to_string(),
        "protocol": protocol,
        "fork_digest": digest.to_string(),
        "fork": fork,
        "our_fork_digest": chain.digest.to_string(),
        "finalized_root": format!("0x{}", hex(&fin_root)),
        "finalized_epoch": fin_epoch,
        "head_root": format!("0x{}", hex(&head_root)),
        "head_slot": head_slot,
    });
    if let (Some(e), Some(obj)) = (earliest, fields.as_object_mut()) {
        obj.insert("earliest_available_slot".into(), json!(e));
    }
    out.event("status", fields, Some(human));
}

fn print_metadata(out: Out, peer: PeerId, md: &MetaData) {
    let (protocol, seq, attnets, syncnets, cgc) = match md {
        MetaData::V1(m) => ("metadata/1", m.seq_number, m.attnets.as_slice(), None, None),
        MetaData::V2(m) => (
            "metadata/2",
            m.seq_number,
            m.attnets.as_slice(),
            Some(m.syncnets.as_slice()),
            None,
        ),
        MetaData::V3(m) => (
            "metadata/3",
            m.seq_number,
            m.attnets.as_slice(),
            Some(m.syncnets.as_slice()),
            Some(m.custody_group_count),
        ),
    };
    let mut human = format!(
        "{protocol} from {peer}: seq {seq}, attnets 0x{}",
        hex(attnets)
    );
    if let Some(s) = syncnets {
        human.push_str(&format!(", syncnets 0x{}", hex(s)));
    }
    if let Some(c) = cgc {
        human.push_str(&format!(", custody groups {c}"));
    }
    out.event(
        "metadata",
        json!({
            "peer_id": peer.to_string(),
            "protocol": protocol,
            "seq_number": seq,
            "attnets": format!("0x{}", hex(attnets)),
            "syncnets": syncnets.map(|s| format!("0x{}", hex(s))),
            "custody_group_count": cgc,
        }),
        Some(human),
    );
}

async fn blocks(
    rr: &ReqRespHandle,
    peer: PeerId,
    from: u64,
    count: u64,
    limit: Duration,
    out: Out,
) -> Result<(), Failure> {
    let req = BeaconBlocksByRangeRequest {
        start_slot: from,
        count,
        step: 1,
    };
    let started = Instant::now();
    let mut stream = with_timeout(
        "blocks request",
        limit * 2,
        rr.request(peer, Request::BeaconBlocksByRangeV2(req)),
    )
    .await?
    .map_err(|e| failed("blocks by range", e))?;
    let protocol = stream.protocol();
    let (mut n, mut bytes) = (0u64, 0u64);
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| failed("blocks by range", e))?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let fork = chunk.fork.unwrap_or(plexus_eth::Fork::Phase0);
        let slot = chunk_fields(protocol.response_kind(), fork, &chunk.ssz)
            .ok()
            .and_then(|f| f.slot);
        n += 1;
        bytes += chunk.ssz.len() as u64;
        let context = chunk.context.map(|d| d.to_string());
        out.event(
            "block",
            json!({
                "peer_id": peer.to_string(),
                "slot": slot,
                "size": chunk.ssz.len(),
                "context": context,
                "fork": fork.name(),
                "ms": (ms * 10.0).round() / 10.0,
            }),
            Some(format!(
                "slot {} {} bytes context {} ({}) at {ms:.1} ms",
                slot.map_or("?".into(), |s| s.to_string()),
                chunk.ssz.len(),
                context.as_deref().unwrap_or("none"),
                fork.name(),
            )),
        );
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    out.event(
        "blocks_done",
        json!({
            "peer_id": peer.to_string(),
            "protocol": protocol.id(),
            "blocks": n,
            "bytes": bytes,
            "ms": (ms * 10.0).round() / 10.0,
        }),
        Some(format!(
            "{n} blocks, {bytes} bytes in {ms:.1} ms over {}",
            protocol.id()
        )),
    );
    Ok(())
}
