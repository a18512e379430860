//! [`PeerManagerConfig`]: every policy number of the peer manager, with its default.

use std::time::Duration;

use plexus_eth::GoodbyeReason;

/// The peer manager's policy. Every field has a documented default
/// ([`PeerManagerConfig::default`]); [`PeerManagerConfig::validate`] checks them against
/// each other and against the host's hard cap.
#[derive(Debug, Clone)]
pub struct PeerManagerConfig {
    /// Peers we aim for (Status-accepted). Default 100 (Lighthouse's default).
    pub target_peers: usize,
    /// Connected peers allowed above the target, as a fraction of it: inbound
    /// connections are refused at `accept`, before any crypto, once
    /// `ceil(target × (1 + excess))` peers are connected. The excess is pruned back to
    /// the target at each heartbeat. Default 0.1.
    pub excess_factor: f64,
    /// The outbound share we keep: pruning never takes the number of outbound peers
    /// below `ceil(target × min_outbound_factor)`, inbound connections are refused once
    /// inbound peers would leave no room for it, and we dial while below it even at
    /// the target. Default 0.2.
    pub min_outbound_factor: f64,
    /// Peers covering a needed subnet are kept while the subnet has at most this many
    /// connected peers. Default 2.
    pub min_peers_per_subnet: usize,
    /// Peers we want on each needed subnet. While fewer connected (or dialing) peers
    /// cover one, candidates that advertise it (discovery's ENR `attnets`, `syncnets`,
    /// `cgc`; see [`crate::PeerManager::add_discovered`]) or whose MetaData shows it are
    /// dialed first, and dialed even at the target, up to the connection cap; pruning
    /// then drops the excess among peers that cover nothing short. Default 6 (Lighthouse's
    /// and Lodestar's `TARGET_SUBNET_PEERS`).
    pub target_peers_per_subnet: usize,
    /// Dials in flight at once. Default 8.
    pub max_concurrent_dials: usize,
    /// How often scores decay, the excess is pruned, dials are started and pings are
    /// due. Default 30 s (Lighthouse's heartbeat).
    pub heartbeat_interval: Duration,
    /// How long an inbound peer has to send its Status before we ask for it. The dialer
    /// sends Status first (consensus spec). Default 5 s.
    pub status_wait: Duration,
    /// How often each connected peer is pinged (a higher MetaData sequence number in
    /// the answer triggers a MetaData request). Default 30 s.
    pub ping_interval: Duration,
    /// Backoffs after a Goodbye, sent or received, by reason: the peer is not dialed and
    /// its inbound attempts are refused until it has passed. See [`GoodbyeBackoffs`].
    pub goodbye_backoff: GoodbyeBackoffs,
    /// After a disconnect without a Goodbye we do not dial the peer for this long (its own
    /// connections are still accepted). Default 30 s.
    pub reconnect_backoff: Duration,
    /// A peer that disconnects without a Goodbye this many times within
    /// `reconnect_backoff` is refused (at the gate) for `reconnect_backoff`. Default 3.
    pub max_plain_disconnects: usize,
    /// Status requests that fail locally (timeout, lost stream) are retried this many
    /// times before Goodbye(unable to verify network). Default 2.
    pub status_retries: usize,
    /// Backoff after the first failed dial; doubled for each further consecutive
    /// failure, up to `max_dial_backoff`. Default 30 s.
    pub dial_backoff: Duration,
    /// The longest dial backoff. Default 1 h.
    pub max_dial_backoff: Duration,
    /// The score model. See [`ScoreConfig`].
    pub score: ScoreConfig,
    /// How long a banned peer stays banned (and its decay held). Default 12 h
    /// (Lighthouse).
    pub ban_duration: Duration,
    /// An IP is banned (refused at `accept` for everyone) only on explicit evidence:
    /// when this many banned peers were last seen at it. Default 5 (Lighthouse).
    pub banned_peers_per_ip: usize,
    /// Disconnected peers kept in the store (with their addresses, score and history);
    /// the oldest without a running ban or backoff go first. Default 500.
    pub max_disconnected_peers: usize,
    /// Banned or backed-off peers kept in the store beyond `max_disconnected_peers`.
    /// Default 1000.
    pub max_banned_peers: usize,
    /// A disconnected peer's entry is dropped this long after it was last seen (unless
    /// a ban or backoff holds it). Default 6 h.
    pub disconnected_ttl: Duration,
    /// Addresses kept per peer. Default 8.
    pub max_addrs_per_peer: usize,
    /// How long a Goodbye may take, sent and read, before we close the connection
    /// ourselves (a peer that reads it closes first). Default 2 s.
    pub goodbye_timeout: Duration,
}

/// Backoffs after a Goodbye by reason (sent or received).
#[derive(Debug, Clone)]
pub struct GoodbyeBackoffs {
    /// 1, client shutdown: the peer restarts. Default 60 s.
    pub client_shutdown: Duration,
    /// 2, irrelevant network (wrong fork digest or chain). Default 1 h.
    pub irrelevant_network: Duration,
    /// 129, too many peers. Default 600 s (Lighthouse's reconnection timeout).
    pub too_many_peers: Duration,
    /// 250, bad score. Default 30 min.
    pub bad_score: Duration,
    /// 3, 128 and any other reason. Default 600 s.
    pub other: Duration,
}

impl Default for GoodbyeBackoffs {
    fn default() -> Self {
        GoodbyeBackoffs {
            client_shutdown: Duration::from_secs(60),
            irrelevant_network: Duration::from_secs(3600),
            too_many_peers: Duration::from_secs(600),
            bad_score: Duration::from_secs(1800),
            other: Duration::from_secs(600),
        }
    }
}

impl GoodbyeBackoffs {
    /// The backoff for `reason`; a ban (251, 252) lasts `ban_duration`.
    pub fn for_reason(&self, reason: GoodbyeReason, ban_duration: Duration) -> Duration {
        match reason {
            GoodbyeReason::ClientShutdown => self.client_shutdown,
            GoodbyeReason::IrrelevantNetwork => self.irrelevant_network,
            GoodbyeReason::TooManyPeers => self.too_many_peers,
            GoodbyeReason::BadScore => self.bad_score,
            GoodbyeReason::Banned | GoodbyeReason::BannedIp => ban_duration,
            _ => self.other,
        }
    }

    /// Every backoff the same (tests).
    pub fn all(d: Duration) -> Self {
        GoodbyeBackoffs {
            client_shutdown: d,
            irrelevant_network: d,
            too_many_peers: d,
            bad_score: d,
            other: d,
        }
    }
}

/// The score model (Lighthouse's): a score in [-100, 100] that decays toward 0 with a
/// half-life, a disconnect threshold and a ban threshold.
#[derive(Debug, Clone)]
pub struct ScoreConfig {
    /// Half-life of the decay toward 0. Default 600 s.
    pub halflife: Duration,
    /// At or below this the peer is disconnected with Goodbye(250). Default -20.
    pub disconnect_threshold: f64,
    /// At or below this the peer is banned with Goodbye(251). Default -50.
    pub ban_threshold: f64,
    /// The gossipsub router score is folded in with this weight per point; its
    /// contribution is capped just above `disconnect_threshold`, so gossip alone never
    /// disconnects (gossipsub graylists on its own). Default 19 / 16000 (the Ethereum
    /// graylist threshold then contributes -19).
    pub gossip_weight: f64,
    /// Cap on a positive gossip contribution. Default 5.
    pub gossip_positive_cap: f64,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        ScoreConfig {
            halflife: Duration::from_secs(600),
            disconnect_threshold: -20.0,
            ban_threshold: -50.0,
            gossip_weight: 19.0 / 16000.0,
            gossip_positive_cap: 5.0,
        }
    }
}

impl Default for PeerManagerConfig {
    fn default() -> Self {
        PeerManagerConfig {
            target_peers: 100,
            excess_factor: 0.1,
            min_outbound_factor: 0.2,
            min_peers_per_subnet: 2,
            target_peers_per_subnet: 6,
            max_concurrent_dials: 8,
            heartbeat_interval: Duration::from_secs(30),
            status_wait: Duration::from_secs(5),
            ping_interval: Duration::from_secs(30),
            goodbye_backoff: GoodbyeBackoffs::default(),
            reconnect_backoff: Duration::from_secs(30),
            max_plain_disconnects: 3,
            status_retries: 2,
            dial_backoff: Duration::from_secs(30),
            max_dial_backoff: Duration::from_secs(3600),
            score: ScoreConfig::default(),
            ban_duration: Duration::from_secs(12 * 3600),
            banned_peers_per_ip: 5,
            max_disconnected_peers: 500,
            max_banned_peers: 1000,
            disconnected_ttl: Duration::from_secs(6 * 3600),
            max_addrs_per_peer: 8,
            goodbye_timeout: Duration::from_secs(2),
        }
    }
}

/// The configuration contradicts itself or the host's caps.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `target_peers` is 0.
    #[error("target_peers must be at least 1")]
    NoTarget,
    /// A factor is negative, NaN or above its bound.
    #[error("{0} out of range")]
    Factor(&'static str),
    /// The score thresholds are not ordered `ban < disconnect < 0`.
    #[error("score thresholds must satisfy ban_threshold < disconnect_threshold < 0")]
    Thresholds,
    /// The host's hard cap on established connections leaves no room for the excess
    /// margin (go-libp2p#1640: a connection manager fighting the resource manager).
    #[error(
        "max_peers {max_peers} needs host max_established_{which} of at least {needed}, it is {have}"
    )]
    HostCap {
        /// Our `max_peers()`.
        max_peers: usize,
        /// "inbound" or "outbound".
        which: &'static str,
        /// What we need.
        needed: usize,
        /// What the host allows.
        have: usize,
    },
}

impl PeerManagerConfig {
    /// Connected peers allowed at most: `ceil(target × (1 + excess_factor))`.
    pub fn max_peers(&self) -> usize {
        // Less a hair, so that 100 × 1.1 = 110.00000000000001 gives 110.
        (self.target_peers as f64 * (1.0 + self.excess_factor) - 1e-9).ceil() as usize
    }

    /// The outbound floor: `ceil(target × min_outbound_factor)`.
    pub fn min_outbound(&self) -> usize {
        (self.target_peers as f64 * self.min_outbound_factor - 1e-9).ceil() as usize
    }

    /// Inbound peers allowed at most: `max_peers() - min_outbound()`.
    pub fn max_inbound(&self) -> usize {
        self.max_peers().saturating_sub(self.min_outbound())
    }

    /// Checks the fields against each other, and, when given, against the host's caps on
    /// established inbound and outbound connections.
    ///
    /// # Errors
    /// The first contradiction found.
    pub fn validate(&self, host_caps: Option<(usize, usize)>) -> Result<(), ConfigError> {
        if self.target_peers == 0 {
            return Err(ConfigError::NoTarget);
        }
        let ok = |f: f64, hi: f64| f.is_finite() && (0.0..=hi).contains(&f);
        if !ok(self.excess_factor, 10.0) {
            return Err(ConfigError::Factor("excess_factor"));
        }
        if !ok(self.min_outbound_factor, 1.0) {
            return Err(ConfigError::Factor("min_outbound_factor"));
        }
        let s = &self.score;
        if !(s.ban_threshold < s.disconnect_threshold && s.disconnect_threshold < 0.0) {
            return Err(ConfigError::Thresholds);
        }
        if let Some((max_in, max_out)) = host_caps {
            // The host's hard caps must sit above our soft ones, or the host refuses
            // peers our policy wants (and the two fight).
            if max_in < self.max_inbound() {
                return Err(ConfigError::HostCap {
                    max_peers: self.max_peers(),
                    which: "inbound",
                    needed: self.max_inbound(),
                    have: max_in,
                });
            }
            // Outbound needs room for the floor at least (dials past the host's cap fail
            // and are retried after their backoff).
            if max_out < self.min_outbound() {
                return Err(ConfigError::HostCap {
                    max_peers: self.max_peers(),
                    which: "outbound",
                    needed: self.min_outbound(),
                    have: max_out,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_lighthouse_and_validate() {
        let c = PeerManagerConfig::default();
        assert_eq!(c.max_peers(), 110);
        assert_eq!(c.min_outbound(), 20);
        assert_eq!(c.max_inbound(), 90);
        assert_eq!(c.validate(Some((160, 80))), Ok(()));
        assert!(matches!(
            c.validate(Some((50, 200))),
            Err(ConfigError::HostCap {
                which: "inbound",
                ..
            })
        ));
        let bad = PeerManagerConfig {
            target_peers: 0,
            ..PeerManagerConfig::default()
        };
        assert_eq!(bad.validate(None), Err(ConfigError::NoTarget));
        let mut bad = PeerManagerConfig::default();
        bad.score.ban_threshold = -10.0;
        assert_eq!(bad.validate(None), Err(ConfigError::Thresholds));
    }
}
