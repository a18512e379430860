//! The peer manager: what the consensus layer knows about peers, acted on by the network
//! layer.
//!
//! ```text
//! host events ─┐                          ┌─> Dial / Goodbye / Disconnect / Ban (host, Req/Resp)
//! Req/Resp ────┼─> PeerManager (sans-IO) ─┼─> RequestStatus / Ping / RequestMetadata
//! client ──────┘   store · scores · policy └─> SetAccepted (gossipsub's mesh hook)
//!                        │
//!                        └─> GateSnapshot ─> PeerManagerGate (host gater + dial ranker)
//! ```
//!
//! - [`PeerManager`] is the sans-IO core: a bounded peer store, scores that decay, the
//!   connection policy (target, excess, outbound floor, subnet-aware pruning), backoffs
//!   after every Goodbye and disconnect, and the Status handshake that admits a peer to
//!   gossip meshes. It takes events and `now` and returns [`Action`]s.
//! - [`PeerManagerGate`] is the host's gater and dial ranker: it refuses peers in backoff
//!   or banned before any crypto (by IP at `accept`, by id at `secured` and
//!   `peer_dial`), refuses inbound connections when full, and never ranks an address of a
//!   held-back peer.
//! - [`service::PeerManagerBuilder`] runs both against a host, Req/Resp and gossipsub.
//!
//! `docs/peer-manager.md` explains the policy and every default.
#![forbid(unsafe_code)]

mod config;
mod gate;
mod manager;
mod metrics;
mod score;
pub mod service;

pub use config::{ConfigError, GoodbyeBackoffs, PeerManagerConfig, ScoreConfig};
pub use gate::{GateSnapshot, PeerManagerGate};
pub use manager::{
    Action, Advertised, BackoffReason, ConnState, DialHistory, PeerInfo, PeerManager, PeerMetadata,
    PeerStatus, StatusState, StatusVerdict, SubnetNeeds,
};
pub use metrics::{CLIENTS, PeerManagerMetrics, SCORE_BUCKETS, client_of, reason_label};
pub use score::{PeerAction, ReportSource, SCORE_BOUND, Score, ScoreState, time_to_recover};
