//! Fuzz body for `key_protobuf`: the PublicKey and PrivateKey protobuf decoders.

use plexus_identity::{Keypair, PublicKey};

/// Length of a legacy ed25519 `PrivateKey` message (4-byte header + 96 bytes of data),
/// the one accepted form that re-encodes differently (as the 64-byte form).
const LEGACY_ED25519_PRIVATE_LEN: usize = 100;

/// Run one input: decoding never panics; accepted keys re-encode to exactly the input, and a
/// decoded keypair's signatures verify under its public key.
pub fn run(data: &[u8]) {
    if let Ok(pk) = PublicKey::try_decode_protobuf(data) {
        assert_eq!(
            pk.encode_protobuf(),
            data,
            "accepted public key is not canonical"
        );
        let id = pk.to_peer_id();
        assert_eq!(id.as_public_key().as_ref(), Some(&pk));
        // A random-looking signature does not verify (and does not panic).
        assert!(!pk.verify(data, data));
    }
    if let Ok(kp) = Keypair::from_protobuf_encoding(data) {
        let enc = kp.to_protobuf_encoding();
        assert!(
            enc == data || data.len() == LEGACY_ED25519_PRIVATE_LEN,
            "accepted private key is not canonical"
        );
        let again = Keypair::from_protobuf_encoding(&enc).expect("re-encoded keypair decodes");
        assert_eq!(again.public(), kp.public());
        let sig = kp.sign(data);
        assert!(kp.public().verify(data, &sig));
    }
}
