//! The shared virtual-time pair harness ([`plexus_testkit::pair`]) for the
//! mplex [`Core`], plus helpers to script and parse raw mplex frames.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::time::Instant;

use bytes::BytesMut;
use plexus_core::MuxLimits;
use plexus_mplex::frame::{Header, MAX_FRAME_SIZE};
use plexus_mplex::{Config, Core};
pub use plexus_testkit::pair::{at_eof, drain_events, pattern, read_all, write_all};

/// Two mplex cores (mplex is symmetric).
pub type Pair = plexus_testkit::pair::Pair<Core>;

pub fn new_pair(cfg: Config, limits: MuxLimits) -> Pair {
    Pair::new(
        Core::new(cfg.clone(), limits.clone()),
        Core::new(cfg, limits),
    )
}

pub fn default_pair() -> Pair {
    new_pair(Config::default(), MuxLimits::default())
}

/// Frames as wire bytes.
pub fn wire(frames: &[(Header, &[u8])]) -> BytesMut {
    let mut b = BytesMut::new();
    for (h, body) in frames {
        assert_eq!(h.len as usize, body.len(), "scripted frame length");
        h.encode_into(&mut b);
        b.extend_from_slice(body);
    }
    b
}

/// Decode every frame in `bytes` (prefixes plus bodies).
pub fn parse(mut bytes: &[u8]) -> Vec<(Header, Vec<u8>)> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let (h, n) = Header::decode(bytes, MAX_FRAME_SIZE)
            .expect("valid frame")
            .expect("complete prefix");
        bytes = &bytes[n..];
        let len = h.len as usize;
        out.push((h, bytes[..len].to_vec()));
        bytes = &bytes[len..];
    }
    out
}

/// Everything `core` transmits now, as frames.
pub fn drain_output(core: &mut Core, now: Instant) -> Vec<(Header, Vec<u8>)> {
    parse(&plexus_testkit::pair::drain_wire(core, now))
}
