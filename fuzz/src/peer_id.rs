//! Fuzz body for `peer_id`: PeerId from multihash bytes and from text.

use std::str::FromStr;

use plexus_identity::PeerId;

/// Run one input: byte and text parsing never panic; accepted ids round-trip through bytes,
/// base58 and CID text, and an embedded public key hashes back to the same id.
pub fn run(data: &[u8]) {
    if let Ok(id) = PeerId::from_bytes(data) {
        assert_eq!(id.as_bytes(), data);
        check(id);
    }
    let s = String::from_utf8_lossy(data);
    if let Ok(id) = PeerId::from_str(&s) {
        check(id);
    }
}

fn check(id: PeerId) {
    assert_eq!(PeerId::from_bytes(id.as_bytes()), Ok(id));
    assert_eq!(PeerId::from_str(&id.to_base58()), Ok(id));
    assert_eq!(PeerId::from_str(&id.to_cid_string()), Ok(id));
    if let Some(pk) = id.as_public_key() {
        assert_eq!(pk.to_peer_id(), id);
    }
}
