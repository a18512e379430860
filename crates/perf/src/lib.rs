//! libp2p perf (`/perf/1.0.0`): a throughput benchmark.
//!
//! The protocol lets a client make the server send any amount of data, so the spec says it
//! SHOULD NOT be enabled by default. Nothing in this crate registers a handler unless
//! [`Perf::enable`] is called (the `plexus` command does; the library never does).
//!
//! Two layers:
//!
//! - **Stream level** (no host needed): [`run`] (client) and [`serve`] (server), writing from
//!   one static zero buffer and reading into one buffer per run.
//! - **Host service**: [`Perf::enable`] and the [`perf`] client helper.
#![forbid(unsafe_code)]

mod error;
mod protocol;
mod service;

pub use error::PerfError;
pub use protocol::{CHUNK, PROGRESS_INTERVAL, PerfResult, Phase, Progress, Served, run, serve};
pub use service::{Perf, PerfConfig, PerfHandle, perf};

/// The perf protocol id.
pub const PROTOCOL: &str = "/perf/1.0.0";
