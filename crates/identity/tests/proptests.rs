//! Property tests: round trips, and decoders never panic on arbitrary input.

use std::str::FromStr;

use plexus_identity::{Keypair, PeerId, PublicKey};
use proptest::prelude::*;

fn any_keypair() -> impl Strategy<Value = Keypair> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|s| Keypair::ed25519_from_bytes(s).unwrap()),
        any::<[u8; 32]>()
            .prop_filter_map("valid scalar", |s| Keypair::secp256k1_from_bytes(s).ok()),
    ]
}

fn any_peer_id() -> impl Strategy<Value = PeerId> {
    prop_oneof![
        any_keypair().prop_map(|k| k.public().to_peer_id()),
        any::<[u8; 32]>().prop_map(|d| {
            let mut mh = vec![0x12, 0x20];
            mh.extend(d);
            PeerId::from_bytes(&mh).unwrap()
        }),
        proptest::collection::vec(any::<u8>(), 0..=42).prop_map(|d| {
            let mut mh = vec![0x00, d.len() as u8];
            mh.extend(d);
            PeerId::from_bytes(&mh).unwrap()
        }),
    ]
}

/// Inputs shaped like key messages, so the decoders get past the first byte.
fn key_message_like() -> impl Strategy<Value = Vec<u8>> {
    (0u8..6, proptest::collection::vec(any::<u8>(), 0..100)).prop_map(|(t, data)| {
        let mut v = vec![0x08, t, 0x12, data.len() as u8];
        v.extend(data);
        v
    })
}

proptest! {
    #[test]
    fn keypair_protobuf_round_trip(kp in any_keypair()) {
        let enc = kp.to_protobuf_encoding();
        let dec = Keypair::from_protobuf_encoding(&enc).unwrap();
        prop_assert_eq!(dec.public(), kp.public());
        prop_assert_eq!(dec.to_protobuf_encoding(), enc);
    }

    #[test]
    fn public_key_protobuf_round_trip(kp in any_keypair()) {
        let pk = kp.public();
        let enc = pk.encode_protobuf();
        prop_assert_eq!(PublicKey::try_decode_protobuf(&enc).unwrap(), pk.clone());
        prop_assert_eq!(PublicKey::from_raw_bytes(pk.key_type(), &pk.raw_bytes()).unwrap(), pk);
    }

    #[test]
    fn sign_verify(kp in any_keypair(), msg in proptest::collection::vec(any::<u8>(), 0..256)) {
        let sig = kp.sign(&msg);
        prop_assert!(kp.public().verify(&msg, &sig));
        let mut other = msg.clone();
        other.push(1);
        prop_assert!(!kp.public().verify(&other, &sig));
    }

    #[test]
    fn peer_id_round_trips(id in any_peer_id()) {
        prop_assert_eq!(PeerId::from_bytes(&id.to_bytes()).unwrap(), id);
        prop_assert_eq!(PeerId::from_str(&id.to_string()).unwrap(), id);
        prop_assert_eq!(PeerId::from_str(&id.to_cid_string()).unwrap(), id);
        if let Some(pk) = id.as_public_key() {
            prop_assert_eq!(pk.to_peer_id(), id);
        }
    }

    #[test]
    fn key_peer_id_embeds_key(kp in any_keypair()) {
        let id = kp.public().to_peer_id();
        prop_assert_eq!(id.as_public_key(), Some(kp.public()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        if let Ok(pk) = PublicKey::try_decode_protobuf(&bytes) {
            prop_assert_eq!(pk.encode_protobuf(), bytes.clone());
        }
        if let Ok(kp) = Keypair::from_protobuf_encoding(&bytes) {
            // Only the legacy 96-byte ed25519 form re-encodes differently.
            prop_assert!(kp.to_protobuf_encoding() == bytes || bytes.len() == 100);
        }
        if let Ok(id) = PeerId::from_bytes(&bytes) {
            prop_assert_eq!(id.to_bytes(), bytes.clone());
        }
    }

    #[test]
    fn key_shaped_bytes_never_panic(bytes in key_message_like()) {
        if let Ok(pk) = PublicKey::try_decode_protobuf(&bytes) {
            prop_assert_eq!(pk.encode_protobuf(), bytes.clone());
        }
        if let Ok(kp) = Keypair::from_protobuf_encoding(&bytes) {
            prop_assert!(kp.to_protobuf_encoding() == bytes || bytes.len() == 100);
        }
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        if let Ok(id) = PeerId::from_str(&s) {
            prop_assert_eq!(PeerId::from_str(&id.to_string()).unwrap(), id);
        }
    }

    #[test]
    fn peer_id_like_strings_never_panic(s in "(1|Qm|b|z|f)[a-zA-Z0-9]{0,80}") {
        if let Ok(id) = PeerId::from_str(&s) {
            prop_assert_eq!(PeerId::from_str(&id.to_string()).unwrap(), id);
            prop_assert_eq!(PeerId::from_str(&id.to_cid_string()).unwrap(), id);
        }
    }

    #[test]
    fn arbitrary_signatures_never_panic(kp in any_keypair(), sig in proptest::collection::vec(any::<u8>(), 0..100)) {
        // Random bytes are (overwhelmingly) not a valid signature of this message.
        prop_assert!(!kp.public().verify(b"message", &sig));
    }
}
