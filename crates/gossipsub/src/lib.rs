//! Gossipsub v1.0–v1.3 with the Ethereum rules.
//!
//! The router ([`Router`]) is a sans-IO state machine: decoded RPCs, peer changes,
//! subscriptions, publishes, validation results and `now` go in; per-peer frames to send,
//! events and the next timeout come out. It is deterministic given its inputs and seed.
//! [`wire`] decodes remote bytes into bounded [`Rpc`]s (checking counts on the raw protobuf
//! before decoding) and encodes ours; [`score`] is peer scoring (P1–P7).
#![forbid(unsafe_code)]

mod config;
mod mcache;
mod metrics;
mod proto;
mod queue;
mod router;
pub mod score;
mod service;
pub mod sim;
mod time_cache;
pub mod types;
pub mod wire;

pub use config::{Config, ConfigError, MessageIdFn, QueueConfig, Signing, default_message_id};
pub use metrics::GossipMetrics;
pub use queue::Class;
pub use router::{
    Acceptance, Event, MAX_SENT_CONTROL_BYTES, MAX_SENT_IDONTWANT_PER_RPC, MAX_SENT_IDS_PER_RPC,
    MeshChange, PeerConn, PublishError, Router, RouterStats, TopicStats,
};
pub use service::{
    GossipEvent, Gossipsub, GossipsubService, SLOW_COPY_FACTOR, ServiceConfig, Snapshot,
    SpawnError, Stopped, StreamFault, wait_for_mesh,
};

pub use types::*;
