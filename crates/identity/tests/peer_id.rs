//! PeerId byte parsing and trait behaviour.

use std::collections::{BTreeSet, HashSet};
use std::str::FromStr;

use plexus_identity::{KeyType, Keypair, ParseError, PeerId};

#[test]
fn from_bytes_rejections() {
    assert_eq!(PeerId::from_bytes(&[]), Err(ParseError::Empty));
    // sha1 (0x11) and sha2-512 (0x13) are not peer-id hashes.
    assert_eq!(
        PeerId::from_bytes(&[0x11, 0x14, 0, 0]),
        Err(ParseError::UnsupportedMultihash(0x11))
    );
    let mut sha512 = vec![0x13, 0x40];
    sha512.extend([0; 64]);
    assert_eq!(
        PeerId::from_bytes(&sha512),
        Err(ParseError::UnsupportedMultihash(0x13))
    );
    // identity digest longer than 42 bytes.
    let mut long = vec![0x00, 43];
    long.extend([0; 43]);
    assert_eq!(
        PeerId::from_bytes(&long),
        Err(ParseError::InvalidDigestLength { code: 0, len: 43 })
    );
    // sha2-256 with a 31-byte digest.
    let mut short = vec![0x12, 31];
    short.extend([0; 31]);
    assert_eq!(
        PeerId::from_bytes(&short),
        Err(ParseError::InvalidDigestLength {
            code: 0x12,
            len: 31
        })
    );
    // Digest shorter / longer than declared.
    let mut truncated = vec![0x12, 32];
    truncated.extend([0; 31]);
    assert_eq!(
        PeerId::from_bytes(&truncated),
        Err(ParseError::LengthMismatch {
            declared: 32,
            actual: 31
        })
    );
    let mut trailing = vec![0x12, 32];
    trailing.extend([0; 33]);
    assert_eq!(
        PeerId::from_bytes(&trailing),
        Err(ParseError::LengthMismatch {
            declared: 32,
            actual: 33
        })
    );
    // Non-minimal varint code, truncated varint, varint overflow.
    assert_eq!(
        PeerId::from_bytes(&[0x92, 0x00, 0x20]),
        Err(ParseError::Varint)
    );
    assert_eq!(PeerId::from_bytes(&[0x12]), Err(ParseError::Varint));
    assert_eq!(PeerId::from_bytes(&[0xff; 12]), Err(ParseError::Varint));
}

#[test]
fn from_bytes_accepts_identity_up_to_42_and_sha256() {
    for len in [0usize, 1, 36, 37, 42] {
        let mut mh = vec![0x00, len as u8];
        mh.extend((0..len).map(|i| i as u8));
        let id = PeerId::from_bytes(&mh).unwrap();
        assert_eq!(id.as_bytes(), &mh[..]);
        assert_eq!(id.to_bytes(), mh);
        assert_eq!(id.multihash_code(), 0);
    }
    let mut mh = vec![0x12, 32];
    mh.extend([0xab; 32]);
    let id = PeerId::try_from(&mh[..]).unwrap();
    assert_eq!(id.as_bytes(), &mh[..]);
    assert!(id.to_base58().starts_with("Qm"));
    assert_eq!(id.as_public_key(), None);
}

#[test]
fn identity_peer_id_with_garbage_has_no_public_key() {
    let id = PeerId::from_bytes(&[0x00, 0x03, 1, 2, 3]).unwrap();
    assert_eq!(id.as_public_key(), None);
    assert_eq!(PeerId::from_str(&id.to_string()), Ok(id));
}

#[test]
fn traits_are_consistent() {
    let a = PeerId::random();
    let b = PeerId::random();
    assert_ne!(a, b);
    assert_eq!(a.as_public_key().unwrap().key_type(), KeyType::Ed25519);
    let copy = a; // Copy
    assert_eq!(copy, a);
    assert_eq!(a.cmp(&b), a.as_bytes().cmp(b.as_bytes()));
    let set: HashSet<PeerId> = [a, b, copy].into_iter().collect();
    assert_eq!(set.len(), 2);
    let ordered: BTreeSet<PeerId> = [b, a].into_iter().collect();
    assert_eq!(ordered.len(), 2);
    assert_eq!(format!("{a}"), a.to_base58());
    assert_eq!(format!("{a:?}"), format!("PeerId({:?})", a.to_base58()));
    // Equality is over the bytes, independent of how the id was built.
    let k = Keypair::generate_secp256k1().public();
    let via_key = PeerId::from_public_key(&k);
    let via_bytes = PeerId::from_bytes(&via_key.to_bytes()).unwrap();
    assert_eq!(via_key, via_bytes);
    assert_eq!(PeerId::from(k.clone()), via_key);
    assert!(via_key.to_string().starts_with("16Uiu2HA"));
}
