//! `plexus devnet`: a local beacon network on the real stack, in one process.
//!
//! Every node is a full host (TCP and QUIC, Noise or TLS, yamux or mplex), with Ethereum
//! gossip (`plexus-eth-gossip`), Req/Resp, identify and a peer manager, on its own
//! loopback address (127.0.0.N), on a minimal-preset chain with every fork through Fulu at
//! genesis. Each slot the proposer publishes a block and data column sidecars; every node
//! attests on its subnet and sends a sync committee message; aggregators publish
//! aggregates. Nodes check what they receive (a checksum standing in for signatures) and
//! serve blocks by range. Scripted events: a late joiner that syncs by range, a
//! misbehaving node, a node on another fork, a node that leaves and comes back.
//! `docs/devnet.md` explains the simulation and how to read the report.

pub(crate) mod html;
pub(crate) mod report;
mod sim;

pub(crate) use sim::run;
