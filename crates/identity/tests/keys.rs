//! Keypairs, public keys and signatures.

use plexus_identity::{DecodingError, KeyFileError, KeyType, Keypair, PublicKey};

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

/// secp256k1 group order n, big-endian.
const SECP256K1_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// Parse a DER ECDSA signature into 32-byte r and s (test helper, trusts its input).
fn der_split(sig: &[u8]) -> ([u8; 32], [u8; 32]) {
    assert_eq!(sig[0], 0x30);
    assert_eq!(sig[1] as usize, sig.len() - 2);
    let mut i = 2;
    let mut out = [[0u8; 32]; 2];
    for o in &mut out {
        assert_eq!(sig[i], 0x02);
        let len = sig[i + 1] as usize;
        let int = &sig[i + 2..i + 2 + len];
        let int = if int.len() == 33 { &int[1..] } else { int };
        o[32 - int.len()..].copy_from_slice(int);
        i += 2 + len;
    }
    assert_eq!(i, sig.len());
    (out[0], out[1])
}

/// Minimal DER INTEGER for a 32-byte unsigned big-endian value.
fn der_int(v: &[u8; 32]) -> Vec<u8> {
    let mut b: Vec<u8> = v.iter().copied().skip_while(|&x| x == 0).collect();
    if b.first().is_none_or(|&x| x & 0x80 != 0) {
        b.insert(0, 0);
    }
    let mut out = vec![0x02, b.len() as u8];
    out.extend(b);
    out
}

fn der_join(r: &[u8; 32], s: &[u8; 32]) -> Vec<u8> {
    let body: Vec<u8> = der_int(r).into_iter().chain(der_int(s)).collect();
    let mut out = vec![0x30, body.len() as u8];
    out.extend(body);
    out
}

/// n - s, big-endian.
fn negate_mod_n(s: &[u8; 32]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let mut d = SECP256K1_N[i] as i16 - s[i] as i16 - borrow;
        borrow = 0;
        if d < 0 {
            d += 256;
            borrow = 1;
        }
        out[i] = d as u8;
    }
    out
}

/// s > n/2?
fn is_high(s: &[u8; 32]) -> bool {
    let neg = negate_mod_n(s);
    s > &neg
}

#[test]
fn sign_verify_round_trip_and_tampering() {
    for kp in [Keypair::generate_ed25519(), Keypair::generate_secp256k1()] {
        let pk = kp.public();
        let msg = b"plexus handshake payload";
        let sig = kp.sign(msg);
        assert!(pk.verify(msg, &sig), "{:?}", kp.key_type());
        // Tampered message.
        assert!(!pk.verify(b"plexus handshake payloaD", &sig));
        assert!(!pk.verify(b"", &sig));
        // Tampered signature: flip a bit in every position in turn.
        for i in 0..sig.len() {
            let mut bad = sig.clone();
            bad[i] ^= 0x01;
            assert!(!pk.verify(msg, &bad), "bit flip at {i} accepted");
        }
        // Truncated / extended / empty signatures.
        assert!(!pk.verify(msg, &sig[..sig.len() - 1]));
        let mut longer = sig.clone();
        longer.push(0);
        assert!(!pk.verify(msg, &longer));
        assert!(!pk.verify(msg, &[]));
        // Another key of the same type does not verify it.
        let other = match kp.key_type() {
            KeyType::Ed25519 => Keypair::generate_ed25519(),
            KeyType::Secp256k1 => Keypair::generate_secp256k1(),
        };
        assert!(!other.public().verify(msg, &sig));
    }
}

#[test]
fn ed25519_rfc8032_test_1() {
    // RFC 8032 §7.1 TEST 1 (empty message).
    let seed: [u8; 32] = h("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
        .try_into()
        .unwrap();
    let kp = Keypair::ed25519_from_bytes(seed).unwrap();
    let mut expect_pub = h("08011220");
    expect_pub.extend(h(
        "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
    ));
    assert_eq!(kp.public().encode_protobuf(), expect_pub);
    let sig = kp.sign(b"");
    assert_eq!(
        sig,
        h(
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        )
    );
    assert!(kp.public().verify(b"", &sig));
}

#[test]
fn secp256k1_signatures_are_deterministic_low_s_der() {
    let kp = Keypair::generate_secp256k1();
    for i in 0..64u8 {
        let msg = [i; 17];
        let sig = kp.sign(&msg);
        assert_eq!(sig, kp.sign(&msg), "RFC 6979 signing is deterministic");
        assert!(sig.len() <= 72);
        let (r, s) = der_split(&sig);
        assert!(!is_high(&s), "emitted a high-S signature");
        // Our helper re-encodes it byte for byte: it is minimal DER.
        assert_eq!(der_join(&r, &s), sig);
    }
}

#[test]
fn secp256k1_high_s_signature_is_accepted() {
    // Decision: like go-libp2p and rust-libp2p, verification normalizes S first, so the
    // malleated (n - s) twin of a valid signature verifies.
    let kp = Keypair::generate_secp256k1();
    let msg = b"malleable";
    let sig = kp.sign(msg);
    let (r, s) = der_split(&sig);
    let high = negate_mod_n(&s);
    assert!(is_high(&high));
    let twin = der_join(&r, &high);
    assert_ne!(twin, sig);
    assert!(kp.public().verify(msg, &twin));
    assert!(!kp.public().verify(b"other", &twin));
}

#[test]
fn secp256k1_non_der_signatures_are_rejected() {
    let kp = Keypair::generate_secp256k1();
    let msg = b"strict der";
    let sig = kp.sign(msg);
    let (r, s) = der_split(&sig);
    // Compact 64-byte r‖s is not DER.
    let compact: Vec<u8> = r.iter().chain(&s).copied().collect();
    assert!(!kp.public().verify(msg, &compact));
    // A non-minimal INTEGER (extra leading zero on r) is BER, not DER.
    let mut r_int = der_int(&r);
    r_int.insert(2, 0);
    r_int[1] += 1;
    let body: Vec<u8> = r_int.into_iter().chain(der_int(&s)).collect();
    let mut ber = vec![0x30, body.len() as u8];
    ber.extend(body);
    assert!(!kp.public().verify(msg, &ber));
    // Trailing byte after the SEQUENCE.
    let mut trailing = sig.clone();
    trailing.push(0);
    assert!(!kp.public().verify(msg, &trailing));
}

#[test]
fn wrong_length_public_keys_are_rejected() {
    let cases: [(KeyType, usize, usize); 5] = [
        (KeyType::Ed25519, 31, 32),
        (KeyType::Ed25519, 33, 32),
        (KeyType::Secp256k1, 32, 33),
        (KeyType::Secp256k1, 34, 33),
        (KeyType::Secp256k1, 65, 33),
    ];
    for (ty, len, expected) in cases {
        let mut data = vec![0x02; len];
        data[0] = 0x02;
        assert_eq!(
            PublicKey::from_raw_bytes(ty, &data),
            Err(DecodingError::InvalidLength {
                key_type: ty,
                expected,
                actual: len
            })
        );
        // Same through the protobuf.
        let mut pb = vec![0x08, ty_code(ty), 0x12, len as u8];
        pb.extend(&data);
        assert_eq!(
            PublicKey::try_decode_protobuf(&pb),
            Err(DecodingError::InvalidLength {
                key_type: ty,
                expected,
                actual: len
            })
        );
    }
}

fn ty_code(ty: KeyType) -> u8 {
    ty.code() as u8
}

#[test]
fn invalid_points_are_rejected() {
    let secp = h("037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99");
    assert!(PublicKey::from_raw_bytes(KeyType::Secp256k1, &secp).is_ok());
    // Uncompressed / hybrid prefixes on a 33-byte key.
    for prefix in [0x00, 0x04, 0x06, 0x07] {
        let mut k = secp.clone();
        k[0] = prefix;
        assert_eq!(
            PublicKey::from_raw_bytes(KeyType::Secp256k1, &k),
            Err(DecodingError::InvalidKey(KeyType::Secp256k1))
        );
    }
    // x = 5 is not on secp256k1 (5^3 + 7 = 132 is not a square mod p); x ≥ p is invalid too.
    let mut off_curve = vec![0x02];
    off_curve.extend([0u8; 31]);
    off_curve.push(5);
    assert_eq!(
        PublicKey::from_raw_bytes(KeyType::Secp256k1, &off_curve),
        Err(DecodingError::InvalidKey(KeyType::Secp256k1))
    );
    let mut too_big = vec![0x02];
    too_big.extend([0xff; 32]);
    assert_eq!(
        PublicKey::from_raw_bytes(KeyType::Secp256k1, &too_big),
        Err(DecodingError::InvalidKey(KeyType::Secp256k1))
    );
    // ed25519: y = 2 does not decompress to a point.
    let mut ed = [0u8; 32];
    ed[0] = 2;
    assert_eq!(
        PublicKey::from_raw_bytes(KeyType::Ed25519, &ed),
        Err(DecodingError::InvalidKey(KeyType::Ed25519))
    );
}

#[test]
fn invalid_private_keys_are_rejected() {
    // secp256k1: zero scalar and scalars ≥ n.
    assert_eq!(
        Keypair::secp256k1_from_bytes([0; 32]).unwrap_err(),
        DecodingError::InvalidKey(KeyType::Secp256k1)
    );
    assert_eq!(
        Keypair::secp256k1_from_bytes(SECP256K1_N).unwrap_err(),
        DecodingError::InvalidKey(KeyType::Secp256k1)
    );
    assert_eq!(
        Keypair::secp256k1_from_bytes([0xff; 32]).unwrap_err(),
        DecodingError::InvalidKey(KeyType::Secp256k1)
    );
    let mut n_minus_1 = SECP256K1_N;
    n_minus_1[31] -= 1;
    assert!(Keypair::secp256k1_from_bytes(n_minus_1).is_ok());
    // secp256k1 protobuf with 31 / 33 data bytes.
    for len in [31usize, 33] {
        let mut pb = vec![0x08, 0x02, 0x12, len as u8];
        pb.extend(vec![1u8; len]);
        assert_eq!(
            Keypair::from_protobuf_encoding(&pb).unwrap_err(),
            DecodingError::InvalidLength {
                key_type: KeyType::Secp256k1,
                expected: 32,
                actual: len
            }
        );
    }
    // ed25519 protobuf with 32 (seed only) / 63 / 65 data bytes.
    for len in [32usize, 63, 65] {
        let mut pb = vec![0x08, 0x01, 0x12, len as u8];
        pb.extend(vec![1u8; len]);
        assert_eq!(
            Keypair::from_protobuf_encoding(&pb).unwrap_err(),
            DecodingError::InvalidLength {
                key_type: KeyType::Ed25519,
                expected: 64,
                actual: len
            }
        );
    }
}

#[test]
fn ed25519_private_key_public_part_must_match() {
    let kp = Keypair::generate_ed25519();
    let good = kp.to_protobuf_encoding();
    assert_eq!(good.len(), 4 + 64);
    // Public half replaced by another key's public key.
    let other = Keypair::generate_ed25519().to_protobuf_encoding();
    let mut bad = good.clone();
    bad[36..].copy_from_slice(&other[36..]);
    assert_eq!(
        Keypair::from_protobuf_encoding(&bad).unwrap_err(),
        DecodingError::Ed25519PublicMismatch
    );

    // Legacy 96-byte form: accepted when both copies match, re-encoded as 64 bytes.
    let mut legacy = vec![0x08, 0x01, 0x12, 96];
    legacy.extend(&good[4..]);
    legacy.extend(&good[36..]);
    let decoded = Keypair::from_protobuf_encoding(&legacy).unwrap();
    assert_eq!(decoded.public(), kp.public());
    assert_eq!(decoded.to_protobuf_encoding(), good);
    // … and rejected when they differ.
    let mut legacy_bad = legacy.clone();
    legacy_bad[99] ^= 1;
    assert_eq!(
        Keypair::from_protobuf_encoding(&legacy_bad).unwrap_err(),
        DecodingError::Ed25519PublicMismatch
    );
    // Both copies equal but not the key of the secret.
    let mut legacy_wrong = vec![0x08, 0x01, 0x12, 96];
    legacy_wrong.extend(&good[4..36]);
    legacy_wrong.extend(&other[36..]);
    legacy_wrong.extend(&other[36..]);
    assert_eq!(
        Keypair::from_protobuf_encoding(&legacy_wrong).unwrap_err(),
        DecodingError::Ed25519PublicMismatch
    );
}

#[test]
fn non_canonical_protobuf_is_rejected() {
    let pk = h("08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99");
    assert!(PublicKey::try_decode_protobuf(&pk).is_ok());
    let key = &pk[4..];

    let mut swapped = vec![0x12, 0x21];
    swapped.extend(key);
    swapped.extend([0x08, 0x02]);
    let mut overlong_type = vec![0x08, 0x82, 0x00, 0x12, 0x21];
    overlong_type.extend(key);
    let mut overlong_len = vec![0x08, 0x02, 0x12, 0xa1, 0x00];
    overlong_len.extend(key);
    let mut unknown_field = pk.clone();
    unknown_field.extend([0x18, 0x01]);
    let mut duplicate_type = vec![0x08, 0x01];
    duplicate_type.extend(&pk);
    let mut missing_type = vec![0x12, 0x21];
    missing_type.extend(key);

    for (name, bytes) in [
        ("fields out of order", swapped),
        ("non-minimal type varint", overlong_type),
        ("non-minimal length varint", overlong_len),
        ("unknown field", unknown_field),
        ("duplicated field", duplicate_type),
        ("missing type", missing_type),
        ("missing data", vec![0x08, 0x02]),
    ] {
        assert_eq!(
            PublicKey::try_decode_protobuf(&bytes),
            Err(DecodingError::NonCanonical),
            "{name}"
        );
    }
    // Truncated message / garbage: not even protobuf.
    assert!(matches!(
        PublicKey::try_decode_protobuf(&pk[..pk.len() - 1]),
        Err(DecodingError::Protobuf(_))
    ));
    assert!(matches!(
        PublicKey::try_decode_protobuf(&[0xff; 8]),
        Err(DecodingError::Protobuf(_))
    ));
    // Unknown enum values.
    assert_eq!(
        PublicKey::try_decode_protobuf(&[0x08, 0x05, 0x12, 0x00]),
        Err(DecodingError::UnknownKeyType(5))
    );
    assert_eq!(
        Keypair::from_protobuf_encoding(&[0x08, 0x04, 0x12, 0x00]).unwrap_err(),
        DecodingError::UnknownKeyType(4)
    );
}

#[test]
fn debug_does_not_print_secrets() {
    let secret = [0x5au8; 32];
    for kp in [
        Keypair::secp256k1_from_bytes(secret).unwrap(),
        Keypair::ed25519_from_bytes(secret).unwrap(),
    ] {
        let dbg = format!("{kp:?}");
        assert!(!dbg.contains("5a5a5a"), "{dbg}");
        assert!(!dbg.to_lowercase().contains("5a, 5a"), "{dbg}");
        let public_hex = hex::encode(&kp.public().encode_protobuf()[4..]);
        assert!(dbg.contains(&public_hex), "{dbg}");
    }
}

#[test]
fn generated_keys_are_fresh_and_typed() {
    let a = Keypair::generate_secp256k1();
    let b = Keypair::generate_secp256k1();
    assert_eq!(a.key_type(), KeyType::Secp256k1);
    assert_eq!(a.public().key_type(), KeyType::Secp256k1);
    assert_ne!(a.public(), b.public());
    let c = Keypair::generate_ed25519();
    let d = Keypair::generate_ed25519();
    assert_eq!(c.key_type(), KeyType::Ed25519);
    assert_ne!(c.public(), d.public());
    // A clone signs identically.
    assert_eq!(a.clone().sign(b"x"), a.sign(b"x"));
}

fn temp_dir(tag: &str) -> std::path::PathBuf {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "plexus-identity-{tag}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn key_file_round_trip() {
    let dir = temp_dir("keyfile");
    for kp in [Keypair::generate_secp256k1(), Keypair::generate_ed25519()] {
        let path = dir.join(format!("{:?}.key", kp.key_type()));
        kp.save(&path).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), kp.to_protobuf_encoding());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let loaded = Keypair::load(&path).unwrap();
        assert_eq!(loaded.public(), kp.public());
        assert_eq!(loaded.sign(b"m"), kp.sign(b"m"));
        // Overwriting an existing, more open file tightens its mode.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            kp.save(&path).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn key_file_errors() {
    let dir = temp_dir("keyfile-err");
    assert!(matches!(
        Keypair::load(&dir.join("missing")),
        Err(KeyFileError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound
    ));
    let big = dir.join("big");
    std::fs::write(&big, vec![0u8; 4096]).unwrap();
    assert!(matches!(
        Keypair::load(&big),
        Err(KeyFileError::TooLarge(4096))
    ));
    let garbage = dir.join("garbage");
    std::fs::write(&garbage, b"\x08\x07\x12\x00").unwrap();
    assert!(matches!(
        Keypair::load(&garbage),
        Err(KeyFileError::Decoding(DecodingError::UnknownKeyType(7)))
    ));
    // A public key file is not a private key.
    let public = dir.join("public");
    std::fs::write(
        &public,
        Keypair::generate_secp256k1().public().encode_protobuf(),
    )
    .unwrap();
    assert!(matches!(
        Keypair::load(&public),
        Err(KeyFileError::Decoding(DecodingError::InvalidLength { .. }))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}
