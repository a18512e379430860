//! Dialing: one in-flight dial per peer, candidate ranking ([`DialRanker`],
//! by default [`quic_first`]), per-address backoff, and the attempts
//! themselves (an outbound slot, the transport, the upgrade, the dial
//! timeout), each failure sent as [`HostEvent::DialFailed`].

use std::sync::Arc;
use std::time::Duration;

use plexus_conn::UpgradeError;
use plexus_core::{ConnInfo, Direction, PeerId};
use plexus_multiaddr::{Multiaddr, Protocol};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::error::{AttemptError, DialError, DialFailure};
use crate::host::HostEvent;
use crate::inner::Inner;

/// The application's dial preference.
pub trait DialRanker: Send + Sync + 'static {
    /// Reorder (or drop) candidate addresses for `peer` before dialing; first
    /// is tried first. Addresses come without a `/p2p` suffix. Called without
    /// any host lock held; must not block.
    fn rank(&self, peer: Option<&PeerId>, addrs: Vec<Multiaddr>) -> Vec<Multiaddr>;
}

/// An address in dial backoff.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BackoffEntry {
    /// Not dialed again before this.
    pub(crate) until: Instant,
    /// Consecutive failures (the backoff doubles with each).
    pub(crate) failures: u32,
}

/// The shared result of an in-flight dial (`None` while it runs).
pub(crate) type DialResult = Option<Result<ConnInfo, DialError>>;

/// The default dial order: QUIC addresses first (the consensus spec's primary transport),
/// then the others, each group in the given order.
pub(crate) fn quic_first(mut addrs: Vec<Multiaddr>) -> Vec<Multiaddr> {
    addrs.sort_by_key(|a| !a.iter().any(|p| matches!(p, Protocol::QuicV1)));
    addrs
}

impl Inner {
    /// Dial a known peer, sharing one in-flight dial among all callers.
    pub(crate) async fn dial_peer(
        self: &Arc<Self>,
        peer: PeerId,
        given: Vec<Multiaddr>,
    ) -> Result<ConnInfo, DialError> {
        if peer == self.local_peer {
            return Err(DialError::InvalidTarget("cannot dial ourselves"));
        }
        if self.is_shut_down() {
            return Err(DialError::Shutdown);
        }
        let mut rx = {
            let mut st = self.lock();
            if let Some(e) = st.conns.get(&peer).and_then(|v| v.first()) {
                return Ok(e.info.clone());
            }
            self.add_addrs_locked(&mut st, peer, &given);
            match st.dials.get(&peer) {
                Some(rx) => rx.clone(),
                None => {
                    let mut candidates = given;
                    for a in st.addrs.get(&peer).into_iter().flatten() {
                        if !candidates.contains(a) {
                            candidates.push(a.clone());
                        }
                    }
                    let (tx, rx) = watch::channel(None);
                    st.dials.insert(peer, rx.clone());
                    let inner = self.clone();
                    tokio::spawn(async move {
                        let mut sd = inner.shutdown_signal();
                        let res = tokio::select! {
                            r = inner.dial_addrs(Some(peer), candidates) => r,
                            _ = sd.wait() => Err(DialError::Shutdown),
                        };
                        inner.lock().dials.remove(&peer);
                        tx.send_replace(Some(res));
                    });
                    rx
                }
            }
        };
        match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone().unwrap_or(Err(DialError::Shutdown)),
            Err(_) => Err(DialError::Shutdown),
        }
    }

    fn backed_off(&self, addr: &Multiaddr, now: Instant) -> bool {
        self.lock().backoff.get(addr).is_some_and(|b| b.until > now)
    }

    fn record_dial_failure(&self, addr: &Multiaddr) {
        let initial = self.limits.dial_backoff_initial;
        if initial.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut st = self.lock();
        if st.backoff.len() >= self.limits.max_backoff_entries.max(1)
            && !st.backoff.contains_key(addr)
        {
            st.backoff.retain(|_, b| b.until > now);
            if st.backoff.len() >= self.limits.max_backoff_entries.max(1)
                && let Some(k) = st
                    .backoff
                    .iter()
                    .min_by_key(|(_, b)| b.until)
                    .map(|(k, _)| k.clone())
            {
                st.backoff.remove(&k);
            }
        }
        let failures = st.backoff.get(addr).map_or(0, |b| b.failures) + 1;
        let factor = 1u32 << (failures - 1).min(20);
        let delay = initial
            .checked_mul(factor)
            .unwrap_or(Duration::MAX)
            .min(self.limits.dial_backoff_max);
        st.backoff.insert(
            addr.clone(),
            BackoffEntry {
                until: now + delay,
                failures,
            },
        );
    }

    /// Try `addrs` (transport addresses, no `/p2p`) in ranked order until one
    /// connects.
    pub(crate) async fn dial_addrs(
        self: &Arc<Self>,
        peer: Option<PeerId>,
        addrs: Vec<Multiaddr>,
    ) -> Result<ConnInfo, DialError> {
        let metrics = &self.gate_shared.metrics;
        if self.lock().established_out >= self.limits.max_outbound_connections {
            metrics.refusal("outbound_cap", "peer_dial");
            return Err(DialError::LimitReached("outbound connections"));
        }
        let mut addrs = match &self.ranker {
            Some(r) => r.rank(peer.as_ref(), addrs),
            None => quic_first(addrs),
        };
        addrs.truncate(self.limits.max_addrs_per_peer.max(1));
        let mut failures: Vec<(Multiaddr, AttemptError)> = Vec::new();
        let mut backed_off = 0usize;
        for addr in addrs {
            if let Some(p) = &peer
                && let Some(e) = self.entry(p)
            {
                // Connected meanwhile (e.g. the peer dialed us).
                return Ok(e.info);
            }
            if self.backed_off(&addr, Instant::now()) {
                backed_off += 1;
                continue;
            }
            let mut target = addr.clone();
            if let Some(p) = peer
                && target.try_push(Protocol::P2p(p)).is_err()
            {
                continue;
            }
            let attempt = async {
                let _permit = self.pending_out.acquire().await;
                metrics.handshake_started(Direction::Outbound);
                let start = Instant::now();
                let r = match self.transports.iter().find(|t| t.can_dial(&target)) {
                    Some(t) => self.upgrader.dial(t.as_ref(), target).await,
                    None => Err(UpgradeError::NoTransport(target)),
                };
                if r.is_ok() {
                    metrics.handshake_done(Direction::Outbound, start.elapsed().as_secs_f64());
                }
                r
            };
            let error = match tokio::time::timeout(self.limits.dial_timeout, attempt).await {
                Ok(Ok(conn)) => {
                    self.lock().backoff.remove(&addr);
                    return self.add_connection(conn);
                }
                Ok(Err(e)) => {
                    let denied = matches!(e, UpgradeError::Denied { .. });
                    if !denied {
                        metrics.handshake_failed(Direction::Outbound);
                        self.record_dial_failure(&addr);
                    }
                    AttemptError::Upgrade(Arc::new(e))
                }
                Err(_) => {
                    metrics.handshake_failed(Direction::Outbound);
                    self.record_dial_failure(&addr);
                    AttemptError::Timeout
                }
            };
            tracing::debug!(peer = ?peer, %addr, %error, blame = %error.blame(), "dial attempt failed");
            metrics.dial_failed();
            self.emit(HostEvent::DialFailed {
                peer,
                addr: Some(addr.clone()),
                error: DialFailure::Attempt(error.clone()),
            });
            let peer_denied = matches!(
                &error,
                AttemptError::Upgrade(e) if matches!(**e, UpgradeError::Denied { checkpoint: plexus_conn::Checkpoint::PeerDial, .. })
            );
            failures.push((addr, error));
            if peer_denied {
                // Every other address would be refused the same way.
                break;
            }
        }
        if !failures.is_empty() {
            return Err(DialError::Failed(failures));
        }
        let err = if backed_off > 0 {
            DialError::Backoff
        } else {
            DialError::NoAddresses
        };
        self.emit(HostEvent::DialFailed {
            peer,
            addr: None,
            error: DialFailure::Dial(err.clone()),
        });
        Err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quic_addresses_are_dialed_first_in_their_given_order() {
        let a = |s: &str| s.parse::<Multiaddr>().unwrap();
        let got = quic_first(vec![
            a("/ip4/1.1.1.1/tcp/9000"),
            a("/ip4/2.2.2.2/udp/9001/quic-v1"),
            a("/ip6/::1/tcp/9000"),
            a("/ip4/3.3.3.3/udp/9001/quic-v1"),
        ]);
        assert_eq!(
            got,
            vec![
                a("/ip4/2.2.2.2/udp/9001/quic-v1"),
                a("/ip4/3.3.3.3/udp/9001/quic-v1"),
                a("/ip4/1.1.1.1/tcp/9000"),
                a("/ip6/::1/tcp/9000"),
            ]
        );
    }
}
