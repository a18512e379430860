//! The Ethereum consensus gossip profile over plexus-gossipsub.
//!
//! - [`gossipsub_config`]: the spec's gossipsub parameters, `StrictNoSign`, the spec's
//!   message-id function, the transmit size, and peers accepted for meshes only when the
//!   client says so;
//! - [`score`]: peer-scoring parameters derived from the chain config and the network's load
//!   (the model the clients share);
//! - [`plan`]: which fork digests' topics to be on at an epoch (the next digest's ahead of a
//!   fork, the previous one's for a while after);
//! - [`EthGossip`]: the service in the client's terms: topic kinds, epochs, SSZ payloads in
//!   and out, verdicts back; messages that do not decode within their topic's bound are
//!   rejected before the client sees them.
//!
//! See `docs/eth-gossip.md`.
#![forbid(unsafe_code)]

pub mod plan;
pub mod score;
mod service;

pub use plan::TransitionConfig;
pub use score::{NetworkLoad, ScoreModel};
pub use service::{
    EthGossip, EthGossipConfig, EthGossipEvent, EthPublishError, TopicChanges, gossipsub_config,
};
