//! Fuzz body for `noise_payload`: arbitrary bytes as a decrypted Noise handshake payload.
//!
//! Decode with the default limits; whatever decodes must respect them, re-encode to something
//! that decodes to the same payload, and go through signature verification against a fixed
//! Noise static key (seeds carry payloads validly signed over that key).

use plexus_noise::{NoiseHandshakePayload, PayloadLimits, verify_payload};

/// The fixed remote static key the seeds' signatures cover.
pub const FIXED_STATIC: [u8; 32] = [0x5a; 32];

/// Run one input.
pub fn run(data: &[u8]) {
    let limits = PayloadLimits::default();
    let Ok(payload) = NoiseHandshakePayload::decode_bounded(data, &limits) else {
        return;
    };
    assert!(payload.check_limits(&limits).is_ok());
    let again = NoiseHandshakePayload::decode_bounded(&payload.to_bytes(), &limits)
        .expect("re-encoded payload decodes");
    assert_eq!(again, payload);
    if let Ok(id) = verify_payload(&payload, &FIXED_STATIC) {
        assert_eq!(id.public_key.to_peer_id(), id.peer);
    }
}
