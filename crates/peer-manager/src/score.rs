//! The peer score: what the client and the layers below report, decayed over time, with
//! the gossipsub router score folded in.

use std::time::{Duration, Instant};

use plexus_core::Blame;

use crate::config::ScoreConfig;

/// Highest and lowest application score.
pub const SCORE_BOUND: f64 = 100.0;

/// What a peer did, coarsely (Lighthouse's tolerance classes). The client reports these;
/// errors from the layers below map from their [`Blame`] ([`PeerAction::from_blame`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerAction {
    /// Unforgivable (an invalid block signed by the peer, an invalid fork choice): the
    /// score drops to the bottom and the peer is banned.
    Fatal,
    /// A clear protocol violation; a few of these get a peer disconnected. -10.
    LowToleranceError,
    /// An error an honest but faulty peer may make now and then. -5.
    MidToleranceError,
    /// A minor fault (a slow answer, a useless response). -1.
    HighToleranceError,
}

impl PeerAction {
    /// The score change.
    pub fn delta(self) -> f64 {
        match self {
            PeerAction::Fatal => -2.0 * SCORE_BOUND,
            PeerAction::LowToleranceError => -10.0,
            PeerAction::MidToleranceError => -5.0,
            PeerAction::HighToleranceError => -1.0,
        }
    }

    /// The action for an error of the layers below: a peer that misbehaved (broke a
    /// protocol, sent garbage) gets a low-tolerance error; an incompatible peer or a local
    /// failure (timeouts, I/O) costs nothing here.
    pub fn from_blame(blame: Blame) -> Option<PeerAction> {
        match blame {
            Blame::PeerMisbehaved => Some(PeerAction::LowToleranceError),
            Blame::PeerIncompatible | Blame::Local => None,
        }
    }

    /// A metrics label.
    pub fn label(self) -> &'static str {
        match self {
            PeerAction::Fatal => "fatal",
            PeerAction::LowToleranceError => "low_tolerance",
            PeerAction::MidToleranceError => "mid_tolerance",
            PeerAction::HighToleranceError => "high_tolerance",
        }
    }
}

/// Who reported an action (a metrics label).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReportSource {
    /// The connection layers (security, muxer).
    Transport,
    /// Req/Resp (our requests and the peer's).
    ReqResp,
    /// Gossipsub (stream faults, validation results).
    Gossipsub,
    /// The consensus client.
    Client,
    /// The peer manager itself (Status, ping).
    PeerManager,
}

impl ReportSource {
    /// A metrics label.
    pub fn label(self) -> &'static str {
        match self {
            ReportSource::Transport => "transport",
            ReportSource::ReqResp => "reqresp",
            ReportSource::Gossipsub => "gossipsub",
            ReportSource::Client => "client",
            ReportSource::PeerManager => "peer_manager",
        }
    }
}

/// Where a score stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScoreState {
    /// Above the disconnect threshold.
    Healthy,
    /// At or below the disconnect threshold.
    Disconnect,
    /// At or below the ban threshold.
    Ban,
}

/// One peer's score.
#[derive(Debug, Clone)]
pub struct Score {
    app: f64,
    gossip: f64,
    last_update: Instant,
    /// While set and in the future, the score does not decay (a ban holds it).
    hold_until: Option<Instant>,
}

impl Score {
    /// A fresh score of 0 at `now`.
    pub fn new(now: Instant) -> Self {
        Score {
            app: 0.0,
            gossip: 0.0,
            last_update: now,
            hold_until: None,
        }
    }

    /// Decay the application score toward 0 up to `now`, with the half-life (not while a
    /// ban holds it).
    pub fn decay(&mut self, cfg: &ScoreConfig, now: Instant) {
        let from = match self.hold_until {
            Some(h) if h >= now => {
                self.last_update = now;
                return;
            }
            Some(h) => {
                self.hold_until = None;
                h.max(self.last_update)
            }
            None => self.last_update,
        };
        let dt = now.saturating_duration_since(from).as_secs_f64();
        let hl = cfg.halflife.as_secs_f64();
        if hl > 0.0 && dt > 0.0 {
            self.app *= 0.5f64.powf(dt / hl);
            if self.app.abs() < 1e-6 {
                self.app = 0.0;
            }
        }
        self.last_update = now;
    }

    /// Apply an action.
    pub fn apply(&mut self, action: PeerAction) {
        self.app = (self.app + action.delta()).clamp(-SCORE_BOUND, SCORE_BOUND);
    }

    /// Add to the application score directly (clamped).
    pub fn add(&mut self, delta: f64) {
        if delta.is_finite() {
            self.app = (self.app + delta).clamp(-SCORE_BOUND, SCORE_BOUND);
        }
    }

    /// Hold the score (no decay) until `until` (a ban).
    pub fn hold(&mut self, until: Instant) {
        self.hold_until = Some(until);
    }

    /// Set the application score at `now` (after a ban ends: probation).
    pub fn set_app(&mut self, v: f64, now: Instant) {
        self.app = v.clamp(-SCORE_BOUND, SCORE_BOUND);
        self.hold_until = None;
        self.last_update = now;
    }

    /// The latest gossipsub router score.
    pub fn set_gossip(&mut self, s: f64) {
        if s.is_finite() {
            self.gossip = s;
        }
    }

    /// The application part.
    pub fn app(&self) -> f64 {
        self.app
    }

    /// The combined score: the application score plus the weighted gossip score, whose
    /// contribution alone stays above the disconnect threshold.
    pub fn value(&self, cfg: &ScoreConfig) -> f64 {
        let g = (self.gossip * cfg.gossip_weight)
            .clamp(cfg.disconnect_threshold + 1.0, cfg.gossip_positive_cap);
        self.app + g
    }

    /// Where the score stands.
    pub fn state(&self, cfg: &ScoreConfig) -> ScoreState {
        let v = self.value(cfg);
        if v <= cfg.ban_threshold {
            ScoreState::Ban
        } else if v <= cfg.disconnect_threshold {
            ScoreState::Disconnect
        } else {
            ScoreState::Healthy
        }
    }
}

/// How long the score takes to decay from `from` to above `to` (both negative).
pub fn time_to_recover(cfg: &ScoreConfig, from: f64, to: f64) -> Duration {
    if from >= to || to >= 0.0 {
        return Duration::ZERO;
    }
    let halvings = (from / to).log2();
    Duration::from_secs_f64(cfg.halflife.as_secs_f64() * halvings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decays_by_half_per_halflife_and_not_while_held() {
        let cfg = ScoreConfig::default();
        let t0 = Instant::now();
        let mut s = Score::new(t0);
        s.apply(PeerAction::LowToleranceError);
        s.apply(PeerAction::LowToleranceError);
        assert_eq!(s.value(&cfg), -20.0);
        assert_eq!(s.state(&cfg), ScoreState::Disconnect);
        s.decay(&cfg, t0 + cfg.halflife);
        assert!((s.value(&cfg) + 10.0).abs() < 1e-9);
        assert_eq!(s.state(&cfg), ScoreState::Healthy);
        s.apply(PeerAction::Fatal);
        assert_eq!(s.value(&cfg), -100.0);
        assert_eq!(s.state(&cfg), ScoreState::Ban);
        let t1 = t0 + cfg.halflife;
        s.hold(t1 + Duration::from_secs(3600));
        s.decay(&cfg, t1 + Duration::from_secs(3600));
        assert_eq!(s.value(&cfg), -100.0, "held while banned");
        s.decay(&cfg, t1 + Duration::from_secs(3600) + cfg.halflife);
        assert!((s.value(&cfg) + 50.0).abs() < 1e-9, "decays after the hold");
    }

    #[test]
    fn gossip_alone_never_disconnects() {
        let cfg = ScoreConfig::default();
        let mut s = Score::new(Instant::now());
        s.set_gossip(-1e9);
        assert_eq!(s.value(&cfg), cfg.disconnect_threshold + 1.0);
        assert_eq!(s.state(&cfg), ScoreState::Healthy);
        s.apply(PeerAction::HighToleranceError);
        assert_eq!(
            s.state(&cfg),
            ScoreState::Disconnect,
            "but it tips the balance"
        );
        s.set_gossip(1e9);
        assert_eq!(s.value(&cfg), -1.0 + cfg.gossip_positive_cap);
        // The Ethereum graylist threshold contributes -19.
        s.set_gossip(-16000.0);
        assert!((s.value(&cfg) + 1.0 + 19.0).abs() < 1e-9);
    }

    #[test]
    fn blame_maps_to_actions() {
        assert_eq!(
            PeerAction::from_blame(Blame::PeerMisbehaved),
            Some(PeerAction::LowToleranceError)
        );
        assert_eq!(PeerAction::from_blame(Blame::PeerIncompatible), None);
        assert_eq!(PeerAction::from_blame(Blame::Local), None);
        let cfg = ScoreConfig::default();
        let t = time_to_recover(&cfg, -50.0, -20.0);
        assert!((t.as_secs_f64() - 600.0 * (2.5f64).log2()).abs() < 1e-6);
    }
}
