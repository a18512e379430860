//! The shared virtual-time pair harness ([`plexus_testkit::pair`]) for the
//! yamux [`Core`], plus helpers to script and parse raw yamux frames.
#![allow(dead_code, unreachable_pub, unused_imports)]

use std::time::Instant;

use bytes::BytesMut;
use plexus_core::{MuxLimits, Role};
pub use plexus_testkit::pair::{at_eof, drain_events, pattern, read_all, write_all};
use plexus_yamux::frame::{FrameType, HEADER_LEN, Header};
use plexus_yamux::{Config, Core};

/// Two yamux cores: `a` dials (odd ids), `b` listens.
pub type Pair = plexus_testkit::pair::Pair<Core>;

pub fn new_pair(cfg: Config, limits: MuxLimits) -> Pair {
    Pair::new(
        Core::new(Role::Initiator, cfg.clone(), limits.clone()),
        Core::new(Role::Responder, cfg, limits),
    )
}

pub fn default_pair() -> Pair {
    new_pair(Config::default(), MuxLimits::default())
}

/// Frames as wire bytes.
pub fn wire(frames: &[(Header, &[u8])]) -> BytesMut {
    let mut b = BytesMut::new();
    for (h, body) in frames {
        h.encode_into(&mut b);
        b.extend_from_slice(body);
    }
    b
}

/// Decode every frame in `bytes` (headers plus data bodies).
pub fn parse(mut bytes: &[u8]) -> Vec<(Header, Vec<u8>)> {
    let mut out = Vec::new();
    while bytes.len() >= HEADER_LEN {
        let h = Header::decode(bytes[..HEADER_LEN].try_into().unwrap()).expect("valid header");
        bytes = &bytes[HEADER_LEN..];
        let body = if h.ty == FrameType::Data {
            let n = h.length as usize;
            let b = bytes[..n].to_vec();
            bytes = &bytes[n..];
            b
        } else {
            Vec::new()
        };
        out.push((h, body));
    }
    assert!(bytes.is_empty(), "trailing partial frame");
    out
}

/// Everything `core` transmits now, as frames.
pub fn drain_output(core: &mut Core, now: Instant) -> Vec<(Header, Vec<u8>)> {
    parse(&plexus_testkit::pair::drain_wire(core, now))
}
