//! The connection pool: upgraded connections by peer, the
//! one-connection-per-peer (simultaneous-dial) rule, the connection caps and
//! counts, and each connection's life from insertion to its close (the
//! per-connection task accepting streams, and the cause of the
//! [`HostEvent::Disconnected`] it ends with).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use plexus_conn::Connection;
use plexus_core::{ConnInfo, Direction, MuxedConn, PeerId};
use tokio::sync::Semaphore;

use crate::error::{DialError, DisconnectCause};
use crate::host::HostEvent;
use crate::inner::{Inner, State};

/// How long the loser of a simultaneous dial stays open after the winner is chosen.
pub(crate) const SIMULTANEOUS_DIAL_GRACE: Duration = Duration::from_millis(500);

/// One connection in the pool.
#[derive(Clone)]
pub(crate) struct ConnEntry {
    /// The host-wide id telling two connections to one peer apart.
    pub(crate) id: u64,
    pub(crate) info: ConnInfo,
    pub(crate) muxer: Arc<dyn MuxedConn>,
}

impl Inner {
    /// The connection to `peer` streams are opened on (its first).
    pub(crate) fn entry(&self, peer: &PeerId) -> Option<ConnEntry> {
        self.lock().conns.get(peer).and_then(|v| v.first()).cloned()
    }

    /// The connected peers.
    pub(crate) fn connected_peers(&self) -> Vec<PeerId> {
        self.lock().conns.keys().copied().collect()
    }

    pub(crate) fn count_add(&self, st: &mut State, d: Direction) {
        match d {
            Direction::Inbound => {
                self.gate_shared
                    .established_in
                    .fetch_add(1, Ordering::AcqRel);
            }
            Direction::Outbound => st.established_out += 1,
        }
        self.gate_shared.metrics.connection_opened(d);
    }

    pub(crate) fn count_remove(&self, st: &mut State, d: Direction) {
        match d {
            Direction::Inbound => {
                self.gate_shared
                    .established_in
                    .fetch_sub(1, Ordering::AcqRel);
            }
            Direction::Outbound => st.established_out = st.established_out.saturating_sub(1),
        }
        self.gate_shared.metrics.connection_closed(d);
    }

    /// Which of two connections to one peer survives, the same on both sides:
    /// with different dialers, the one dialed by the smaller peer id (bytes);
    /// with the same dialer, the newer.
    pub(crate) fn keep_new(&self, existing: &ConnInfo, new: &ConnInfo) -> bool {
        let dialer = |c: &ConnInfo| match c.direction {
            Direction::Outbound => self.local_peer,
            Direction::Inbound => c.peer,
        };
        let (de, dn) = (dialer(existing), dialer(new));
        if de == dn {
            return true;
        }
        let preferred = if self.local_peer.as_bytes() <= new.peer.as_bytes() {
            self.local_peer
        } else {
            new.peer
        };
        dn == preferred
    }

    /// Put an upgraded connection into the pool. Returns the connection that
    /// survives for its peer.
    pub(crate) fn add_connection(
        self: &Arc<Self>,
        conn: Connection,
    ) -> Result<ConnInfo, DialError> {
        let Connection { info, muxer } = conn;
        let muxer: Arc<dyn MuxedConn> = Arc::from(muxer);
        let peer = info.peer;
        let id = self.next_id();
        let entry = ConnEntry {
            id,
            info: info.clone(),
            muxer: muxer.clone(),
        };
        let metrics = &self.gate_shared.metrics;
        let mut to_close = None;
        let mut loser = None;
        let result = {
            let mut st = self.lock();
            let per_peer = self.limits.max_connections_per_peer.max(1);
            let existing = st.conns.get(&peer).map_or(0, Vec::len);
            let at_cap = match info.direction {
                Direction::Inbound => {
                    self.gate_shared.established_in.load(Ordering::Acquire)
                        >= self.limits.max_inbound_connections
                }
                Direction::Outbound => st.established_out >= self.limits.max_outbound_connections,
            };
            if self.is_shut_down() {
                to_close = Some(muxer);
                Err(DialError::Shutdown)
            } else if existing >= per_peer && per_peer == 1 {
                let old = st.conns[&peer][0].clone();
                if self.keep_new(&old.info, &info) {
                    tracing::debug!(%peer, old = %old.info.remote_addr, new = %info.remote_addr, "connection replaced (simultaneous dial rule)");
                    st.conns.insert(peer, vec![entry]);
                    self.count_remove(&mut st, old.info.direction);
                    self.count_add(&mut st, info.direction);
                    tokio::spawn(run_connection(self.clone(), id, info.clone(), muxer));
                    loser = Some(old.muxer);
                    Ok(info)
                } else {
                    tracing::debug!(%peer, kept = %old.info.remote_addr, dropped = %info.remote_addr, "connection dropped (simultaneous dial rule)");
                    // Serve its streams until it closes (its id is not in the pool, so
                    // its end sends no event).
                    tokio::spawn(run_connection(
                        self.clone(),
                        id,
                        info.clone(),
                        muxer.clone(),
                    ));
                    loser = Some(muxer);
                    Ok(old.info)
                }
            } else if existing >= per_peer {
                metrics.refusal("per_peer_cap", "upgraded");
                to_close = Some(muxer);
                Err(DialError::LimitReached("connections per peer"))
            } else if at_cap {
                let reason = match info.direction {
                    Direction::Inbound => "peer_cap",
                    Direction::Outbound => "outbound_cap",
                };
                metrics.refusal(reason, "upgraded");
                to_close = Some(muxer);
                Err(DialError::LimitReached(reason))
            } else {
                st.conns.entry(peer).or_default().push(entry);
                self.count_add(&mut st, info.direction);
                tokio::spawn(run_connection(self.clone(), id, info.clone(), muxer));
                if existing == 0 {
                    tracing::debug!(%peer, remote = %info.remote_addr, direction = ?info.direction, "connected");
                    self.emit(HostEvent::Connected(info.clone()));
                }
                Ok(info)
            }
        };
        if let Some(m) = to_close {
            tokio::spawn(async move { m.close().await });
        }
        if let Some(m) = loser {
            // The remote may not have the winner yet: closing the loser at once would
            // show it a disconnect and a reconnect. Both sides pick the same winner, so
            // after a moment it has replaced the loser silently there too.
            tokio::spawn(async move {
                tokio::time::sleep(SIMULTANEOUS_DIAL_GRACE).await;
                m.close().await;
            });
        }
        result
    }

    /// Connection `id` of `peer` ended by itself (its muxer's `accept`
    /// failed, or shutdown): take it out of the pool, and send
    /// [`HostEvent::Disconnected`] if it was the peer's last. Nothing happens
    /// if the pool no longer holds it (closed by us, or replaced).
    pub(crate) fn connection_closed(&self, id: u64, peer: PeerId, cause: DisconnectCause) {
        let mut st = self.lock();
        let Some(list) = st.conns.get_mut(&peer) else {
            return;
        };
        let Some(pos) = list.iter().position(|e| e.id == id) else {
            return;
        };
        let e = list.remove(pos);
        let now_empty = list.is_empty();
        if now_empty {
            st.conns.remove(&peer);
        }
        self.count_remove(&mut st, e.info.direction);
        drop(st);
        if now_empty {
            tracing::debug!(%peer, %cause, blame = %cause.blame(), "disconnected");
            self.emit(HostEvent::Disconnected { peer, cause });
        }
    }

    /// Close every connection to `peer` (see
    /// [`Host::disconnect`](crate::Host::disconnect)).
    pub(crate) fn disconnect(&self, peer: PeerId) {
        let removed = {
            let mut st = self.lock();
            let removed = st.conns.remove(&peer).unwrap_or_default();
            for e in &removed {
                self.count_remove(&mut st, e.info.direction);
            }
            removed
        };
        if removed.is_empty() {
            return;
        }
        tracing::debug!(%peer, "disconnecting");
        self.emit(HostEvent::Disconnected {
            peer,
            cause: DisconnectCause::Local,
        });
        for e in removed {
            tokio::spawn(async move { e.muxer.close().await });
        }
    }

    /// Empty the pool at shutdown: [`HostEvent::Disconnected`] for each peer;
    /// returns the connections, for the caller to close.
    pub(crate) fn drain_for_shutdown(&self, st: &mut State) -> Vec<ConnEntry> {
        let all: Vec<(PeerId, Vec<ConnEntry>)> = st.conns.drain().collect();
        let mut entries = Vec::new();
        for (peer, v) in all {
            for e in &v {
                self.count_remove(st, e.info.direction);
            }
            self.emit(HostEvent::Disconnected {
                peer,
                cause: DisconnectCause::Shutdown,
            });
            entries.extend(v);
        }
        entries
    }
}

/// Accept a connection's inbound streams until it closes (or shutdown).
pub(crate) async fn run_connection(
    inner: Arc<Inner>,
    id: u64,
    info: ConnInfo,
    muxer: Arc<dyn MuxedConn>,
) {
    let slots = Arc::new(Semaphore::new(inner.limits.max_negotiating_streams.max(1)));
    let mut sd = inner.shutdown_signal();
    let cause = loop {
        let res = tokio::select! {
            _ = sd.wait() => break DisconnectCause::Shutdown,
            r = muxer.accept() => r,
        };
        match res {
            Ok(mut s) => match slots.clone().try_acquire_owned() {
                Ok(permit) => {
                    tokio::spawn(inner.clone().negotiate_inbound(info.clone(), s, permit));
                }
                Err(_) => {
                    s.reset();
                    inner.gate_shared.metrics.stream_reset("negotiation_slots");
                }
            },
            Err(e) => break DisconnectCause::from_accept_error(e),
        }
    };
    inner.connection_closed(id, info.peer, cause);
    muxer.close().await;
}
