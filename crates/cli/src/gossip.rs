//! Gossipsub in the command: `listen --topic` prints what arrives, `dial --topic
//! [--publish]` waits for a mesh and publishes.
//!
//! Started only when a command is given `--topic`. The router runs with the Ethereum
//! profile ([`Config::default`]: D=8, D_low=6, D_high=12, heartbeat 700 ms, no signing,
//! content-hash message ids); with fewer peers than D_low the mesh holds the peers there are.

use std::time::Duration;

use plexus_core::PeerId;
use plexus_gossipsub::{
    Acceptance, Config, Event, GossipEvent, GossipMetrics, Gossipsub, GossipsubService, MessageId,
    PublishError, RawMessage, ServiceConfig, Snapshot, TopicHash, wait_for_mesh,
};
use plexus_host::Host;
use serde_json::json;
use tokio::sync::mpsc;

use crate::Failure;
use crate::output::Out;

/// After the router handed a publish to the peers' writers, how long the command waits
/// before closing the connection so the writers pass the frame to the muxer (the close
/// then flushes it). The service reports frames handed over, not frames written.
const WRITE_GRACE: Duration = Duration::from_millis(100);

/// How often the snapshot is polled while waiting for frames to go out.
const POLL: Duration = Duration::from_millis(20);

/// The router configuration. A publisher sends only to its mesh (no flood publishing), so
/// the count of peers it reports is the mesh it waited for.
fn config(publisher: bool) -> Config {
    Config {
        flood_publish: !publisher,
        ..Config::default()
    }
}

/// Start the service on `host` and subscribe to `topics`.
pub(crate) async fn start(
    host: &Host,
    topics: &[String],
    publisher: bool,
    metrics: Option<GossipMetrics>,
) -> Result<(Gossipsub, mpsc::Receiver<GossipEvent>), Failure> {
    let (g, events) = GossipsubService::spawn(
        host.clone(),
        config(publisher),
        ServiceConfig::default(),
        metrics,
    )
    .map_err(|e| Failure::Check(format!("cannot start gossipsub: {e}")))?;
    for t in topics {
        g.subscribe(t.as_str()).await.map_err(stopped)?;
    }
    Ok((g, events))
}

fn stopped(_: plexus_gossipsub::Stopped) -> Failure {
    Failure::Check("the gossipsub service stopped".into())
}

/// The next event of the service, or never once it stopped (for `select!`).
pub(crate) async fn next_event(events: &mut Option<mpsc::Receiver<GossipEvent>>) -> GossipEvent {
    if let Some(rx) = events {
        if let Some(ev) = rx.recv().await {
            return ev;
        }
        *events = None;
    }
    std::future::pending().await
}

/// The listener's handling of an event: accept and print every message (it is a monitor,
/// so what arrives is relayed too); the rest goes to the logs.
pub(crate) async fn on_listen_event(g: &Gossipsub, ev: GossipEvent, out: Out) {
    match ev {
        GossipEvent::Router(Event::Message {
            source,
            id,
            message,
        }) => {
            print_message(out, source, &id, &message);
            let _ = g.report_validation(id, Acceptance::Accept).await;
        }
        GossipEvent::StreamFault(f) => tracing::info!("{f}"),
        other => tracing::debug!(?other, "gossipsub event"),
    }
}

fn print_message(out: Out, source: PeerId, id: &MessageId, m: &RawMessage) {
    out.event(
        "gossip",
        json!({
            "topic": m.topic.as_str(),
            "id": id.to_string(),
            "size": m.data.len(),
            "from": source.to_string(),
        }),
        Some(format!(
            "gossip on {}: {} bytes, id {id}, from {source}",
            m.topic,
            m.data.len()
        )),
    );
}

/// For `dial`: take the service's events so it never stalls, and ignore (neither relay
/// nor penalise) messages the network sends us; we only publish.
pub(crate) fn ignore_messages(g: Gossipsub, mut events: mpsc::Receiver<GossipEvent>) {
    tokio::spawn(async move {
        while let Some(ev) = events.recv().await {
            if let GossipEvent::Router(Event::Message { id, .. }) = ev
                && g.report_validation(id, Acceptance::Ignore).await.is_err()
            {
                return;
            }
        }
    });
}

fn mesh_of(s: &Snapshot, topic: &TopicHash) -> Vec<PeerId> {
    s.mesh
        .iter()
        .find(|(t, _)| t == topic)
        .map(|(_, m)| m.clone())
        .unwrap_or_default()
}

/// Wait until our mesh of `topic` has a peer, with a spinner for people; print the mesh.
pub(crate) async fn wait_mesh(
    g: &Gossipsub,
    topic: &str,
    limit: Duration,
    out: Out,
) -> Result<(), Failure> {
    let t = TopicHash::from(topic);
    let spinner = (!out.json).then(|| {
        let s = indicatif::ProgressBar::new_spinner();
        s.set_message(format!("waiting for a mesh peer on {topic}"));
        s.enable_steady_tick(Duration::from_millis(100));
        s
    });
    let reached = wait_for_mesh(g, &t, 1, limit).await;
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    let mesh = mesh_of(&g.snapshot().await.map_err(stopped)?, &t);
    if reached == 0 || mesh.is_empty() {
        return Err(Failure::Check(format!(
            "no mesh peer on {topic} after {:.1} s (does the peer run gossipsub and subscribe to it?)",
            limit.as_secs_f64()
        )));
    }
    let ids: Vec<String> = mesh.iter().map(|p| p.to_string()).collect();
    out.event(
        "mesh",
        json!({ "topic": topic, "mesh_peers": ids }),
        Some(format!(
            "mesh of {topic}: {} peer{} ({})",
            ids.len(),
            plural(ids.len()),
            ids.join(", ")
        )),
    );
    Ok(())
}

/// Publish `text` on `topic` and report the id and the number of mesh peers it went to,
/// once the router handed it to their writers. Fails when it went to no peer.
pub(crate) async fn publish(
    g: &Gossipsub,
    topic: &str,
    text: &str,
    limit: Duration,
    out: Out,
) -> Result<(), Failure> {
    let t = TopicHash::from(topic);
    let before = g.snapshot().await.map_err(stopped)?;
    // Both commands are queued back to back, so the snapshot is the mesh the publish used
    // (a graft or prune arriving in between is the only difference).
    let (res, after) = tokio::join!(g.publish(t.clone(), text.as_bytes().to_vec()), g.snapshot());
    let id = match res.map_err(stopped)? {
        Ok(id) => id,
        Err(PublishError::Duplicate(id)) => {
            return Err(Failure::Check(format!(
                "message {id} on {topic} was already seen (ids are content hashes: publish different text)"
            )));
        }
        Err(e) => return Err(Failure::Check(format!("publish on {topic}: {e}"))),
    };
    // Ok means queued for at least one mesh peer.
    let peers = mesh_of(&after.map_err(stopped)?, &t).len().max(1);
    // Wait until the router handed that many frames to writers.
    let want = before.stats.frames_sent + peers as u64;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let s = g.snapshot().await.map_err(stopped)?;
        if s.stats.frames_sent >= want {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Failure::Check(format!(
                "message {id} on {topic} was queued for {peers} peer{} but not sent within {:.1} s",
                plural(peers),
                limit.as_secs_f64()
            )));
        }
        tokio::time::sleep(POLL).await;
    }
    tokio::time::sleep(WRITE_GRACE).await;
    out.event(
        "published",
        json!({
            "topic": topic,
            "id": id.to_string(),
            "size": text.len(),
            "peers": peers,
        }),
        Some(format!(
            "published {} bytes on {topic} as {id} to {peers} mesh peer{}",
            text.len(),
            plural(peers)
        )),
    );
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
