//! Integration tests of plexus-noise: handshakes, streams, early muxer negotiation, hostile
//! remotes and property tests. Everything runs over `tokio::io::duplex`: no sockets, no sleeps.
#![allow(missing_docs)]

mod handshake;
mod hostile;
mod muxer;
mod prop;
mod stream;

use plexus_core::Role;
use plexus_identity::{Keypair, PeerId};
use plexus_noise::{NoiseConfig, NoiseError, NoiseOutput};
use tokio::io::DuplexStream;

/// Duplex capacity: smaller than a frame, so backpressure paths run too.
pub const PIPE: usize = 48 * 1024;

pub fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

pub fn secp() -> NoiseConfig {
    NoiseConfig::new(Keypair::generate_secp256k1())
}

pub fn ed() -> NoiseConfig {
    NoiseConfig::new(Keypair::generate_ed25519())
}

pub type Side = Result<NoiseOutput<DuplexStream>, NoiseError>;

/// Run a handshake between `dialer` (initiator) and `listener` (responder).
pub async fn connect(
    dialer: &NoiseConfig,
    listener: &NoiseConfig,
    expect: Option<PeerId>,
    dialer_muxers: Vec<String>,
    listener_muxers: Vec<String>,
) -> (Side, Side) {
    let (a, b) = tokio::io::duplex(PIPE);
    tokio::join!(
        dialer.handshake(a, Role::Initiator, expect, dialer_muxers),
        listener.handshake(b, Role::Responder, None, listener_muxers),
    )
}

/// Deterministic pseudo-random bytes (xorshift), so reordering or loss shows.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
