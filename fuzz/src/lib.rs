//! Fuzz target bodies. Each module has `pub fn run(data: &[u8])`; the cargo-fuzz binaries in
//! `fuzz_targets/` call it, and `tests/corpus.rs` replays every seed corpus through it on stable.
#![forbid(unsafe_code)]
pub mod eth_gossip;
pub mod gossipsub_router;
pub mod gossipsub_rpc;
pub mod identify_msg;
pub mod key_protobuf;
pub mod mplex_frames;
pub mod multiaddr_bytes;
pub mod multiaddr_str;
pub mod multistream_msg;
pub mod noise_frame;
pub mod noise_payload;
pub mod peer_id;
pub mod reqresp_request;
pub mod reqresp_response;
pub mod tls_certificate;
pub mod yamux_frames;
pub mod yamux_ops;

/// Every target: its name and its body.
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("multiaddr_bytes", multiaddr_bytes::run),
    ("multiaddr_str", multiaddr_str::run),
    ("key_protobuf", key_protobuf::run),
    ("peer_id", peer_id::run),
    ("multistream_msg", multistream_msg::run),
    ("noise_frame", noise_frame::run),
    ("noise_payload", noise_payload::run),
    ("yamux_frames", yamux_frames::run),
    ("yamux_ops", yamux_ops::run),
    ("identify_msg", identify_msg::run),
    ("mplex_frames", mplex_frames::run),
    ("gossipsub_rpc", gossipsub_rpc::run),
    ("gossipsub_router", gossipsub_router::run),
    ("eth_gossip", eth_gossip::run),
    ("reqresp_request", reqresp_request::run),
    ("reqresp_response", reqresp_response::run),
    ("tls_certificate", tls_certificate::run),
];
