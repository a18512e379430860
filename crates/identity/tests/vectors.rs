//! The `libp2p/specs:peer-ids/peer-ids.md` test vectors and string examples.

use std::str::FromStr;

use plexus_identity::{DecodingError, KeyType, Keypair, ParseError, PeerId, PublicKey};

const ED25519_PRIVATE: &str = "080112407e0830617c4a7de83925dfb2694556b12936c477a0e1feb2e148ec9da60fee7d1ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
const ED25519_PUBLIC: &str =
    "080112201ed1e8fae2c4a144b8be8fd4b47bf3d3b34b871c3cacf6010f0e42d474fce27e";
const SECP256K1_PRIVATE: &str =
    "0802122053DADF1D5A164D6B4ACDB15E24AA4C5B1D3461BDBD42ABEDB0A4404D56CED8FB";
const SECP256K1_PUBLIC: &str =
    "08021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99";
const ECDSA_PUBLIC: &str = "0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004de3d300fa36ae0e8f5d530899d83abab44abf3161f162a4bc901d8e6ecda020e8b6d5f8da30525e71d6851510c098e5c47c646a597fb4dcec034e9f77c409e62";
const ECDSA_PRIVATE: &str = "08031279307702010104203E5B1FE9712E6C314942A750BD67485DE3C1EFE85B1BFB520AE8F9AE3DFA4A4CA00A06082A8648CE3D030107A14403420004DE3D300FA36AE0E8F5D530899D83ABAB44ABF3161F162A4BC901D8E6ECDA020E8B6D5F8DA30525E71D6851510C098E5C47C646A597FB4DCEC034E9F77C409E62";

const SECP256K1_PEER_ID: &str = "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY";
const ED25519_PEER_ID: &str = "12D3KooWBtg3aaRMjxwedh83aGiUkwSxDwUZkzuJcfaqUmo7R3pq";

fn h(s: &str) -> Vec<u8> {
    hex::decode(s).unwrap()
}

#[test]
fn ed25519_private_key_vector_derives_public_key_and_peer_id() {
    let kp = Keypair::from_protobuf_encoding(&h(ED25519_PRIVATE)).unwrap();
    assert_eq!(kp.key_type(), KeyType::Ed25519);
    assert_eq!(kp.public().encode_protobuf(), h(ED25519_PUBLIC));
    assert_eq!(kp.to_protobuf_encoding(), h(ED25519_PRIVATE));
    assert_eq!(kp.public().to_peer_id().to_string(), ED25519_PEER_ID);
}

#[test]
fn secp256k1_private_key_vector_derives_public_key_and_peer_id() {
    let kp = Keypair::from_protobuf_encoding(&h(SECP256K1_PRIVATE)).unwrap();
    assert_eq!(kp.key_type(), KeyType::Secp256k1);
    assert_eq!(kp.public().encode_protobuf(), h(SECP256K1_PUBLIC));
    assert_eq!(kp.to_protobuf_encoding(), h(SECP256K1_PRIVATE));
    assert_eq!(kp.public().to_peer_id().to_string(), SECP256K1_PEER_ID);
    // The raw-secret constructor (Ethereum node key format) gives the same key.
    let secret: [u8; 32] = h(SECP256K1_PRIVATE)[4..].try_into().unwrap();
    let kp2 = Keypair::secp256k1_from_bytes(secret).unwrap();
    assert_eq!(kp2.public(), kp.public());
}

#[test]
fn ed25519_raw_seed_matches_vector() {
    let seed: [u8; 32] = h(ED25519_PRIVATE)[4..36].try_into().unwrap();
    let kp = Keypair::ed25519_from_bytes(seed).unwrap();
    assert_eq!(kp.public().encode_protobuf(), h(ED25519_PUBLIC));
}

#[test]
fn public_key_vectors_round_trip_exactly() {
    for (hex_pub, ty, id) in [
        (ED25519_PUBLIC, KeyType::Ed25519, ED25519_PEER_ID),
        (SECP256K1_PUBLIC, KeyType::Secp256k1, SECP256K1_PEER_ID),
    ] {
        let pk = PublicKey::try_decode_protobuf(&h(hex_pub)).unwrap();
        assert_eq!(pk.key_type(), ty);
        assert_eq!(pk.encode_protobuf(), h(hex_pub));
        assert_eq!(pk.to_peer_id().to_base58(), id);
        assert_eq!(PeerId::from_str(id).unwrap(), pk.to_peer_id());
        assert_eq!(PeerId::from_str(id).unwrap().as_public_key(), Some(pk));
    }
}

#[test]
fn peer_id_bytes_are_identity_multihash_of_encoded_key() {
    let secp = PublicKey::try_decode_protobuf(&h(SECP256K1_PUBLIC)).unwrap();
    let mut expect = vec![0x00, 0x25];
    expect.extend(h(SECP256K1_PUBLIC));
    assert_eq!(secp.to_peer_id().to_bytes(), expect);
    assert_eq!(secp.to_peer_id().as_bytes().len(), 39);

    let ed = PublicKey::try_decode_protobuf(&h(ED25519_PUBLIC)).unwrap();
    let mut expect = vec![0x00, 0x24];
    expect.extend(h(ED25519_PUBLIC));
    assert_eq!(ed.to_peer_id().to_bytes(), expect);
    assert_eq!(ed.to_peer_id().as_bytes().len(), 38);
}

#[test]
fn ecdsa_and_rsa_vectors_are_unsupported_key_types() {
    let ecdsa = DecodingError::UnsupportedKeyType {
        code: 3,
        name: "ECDSA",
    };
    assert_eq!(
        PublicKey::try_decode_protobuf(&h(ECDSA_PUBLIC)),
        Err(ecdsa.clone())
    );
    assert_eq!(
        Keypair::from_protobuf_encoding(&h(ECDSA_PRIVATE)).unwrap_err(),
        ecdsa
    );
    // RSA: a (truncated) RSA public key message; the type decides before the data is looked at.
    let rsa = [0x08, 0x00, 0x12, 0x03, 0x30, 0x01, 0x00];
    assert_eq!(
        PublicKey::try_decode_protobuf(&rsa),
        Err(DecodingError::UnsupportedKeyType {
            code: 0,
            name: "RSA"
        })
    );
}

#[test]
fn spec_string_examples() {
    // sha256 peer id, as CID and as legacy base58: the same peer.
    let cid =
        PeerId::from_str("bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe").unwrap();
    let legacy = PeerId::from_str("QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N").unwrap();
    assert_eq!(cid, legacy);
    assert_eq!(legacy.multihash_code(), 0x12);
    assert_eq!(legacy.as_bytes().len(), 34);
    assert_eq!(
        legacy.to_cid_string(),
        "bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe"
    );
    assert_eq!(
        cid.to_string(),
        "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
    );
    // A sha256 peer id does not embed its key.
    assert_eq!(legacy.as_public_key(), None);

    // ed25519 identity peer id: embeds its key.
    let ed = PeerId::from_str("12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA").unwrap();
    assert_eq!(
        ed.to_base58(),
        "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
    );
    let key = ed.as_public_key().unwrap();
    assert_eq!(key.key_type(), KeyType::Ed25519);
    assert_eq!(key.to_peer_id(), ed);
    // Its CID form starts with the libp2p-key + identity prefix and parses back.
    let cid = ed.to_cid_string();
    assert!(cid.starts_with("bafzaa"), "{cid}");
    assert_eq!(PeerId::from_str(&cid).unwrap(), ed);
}

#[test]
fn cid_with_other_codec_or_version_is_rejected() {
    let id = PeerId::from_str(SECP256K1_PEER_ID).unwrap();
    let encode = |prefix: &[u8]| {
        let mut v = prefix.to_vec();
        v.extend_from_slice(id.as_bytes());
        format!(
            "b{}",
            data_encoding::BASE32_NOPAD.encode(&v).to_ascii_lowercase()
        )
    };
    // dag-pb (0x70) instead of libp2p-key.
    assert_eq!(
        PeerId::from_str(&encode(&[0x01, 0x70])),
        Err(ParseError::WrongCodec(0x70))
    );
    assert_eq!(
        PeerId::from_str(&encode(&[0x02, 0x72])),
        Err(ParseError::UnsupportedCidVersion(2))
    );
    assert_eq!(PeerId::from_str(&encode(&[0x01, 0x72])), Ok(id));
    // base58btc multibase (`z`) CID is accepted too.
    let mut v = vec![0x01, 0x72];
    v.extend_from_slice(id.as_bytes());
    let z = format!("z{}", bs58::encode(&v).into_string());
    assert_eq!(PeerId::from_str(&z), Ok(id));
}

#[test]
fn peer_id_string_rejections() {
    assert_eq!(PeerId::from_str(""), Err(ParseError::Empty));
    assert_eq!(
        PeerId::from_str(&"1".repeat(81)),
        Err(ParseError::TooLong(81))
    );
    // `0` is not in the base58 alphabet.
    assert_eq!(PeerId::from_str("12D3KooW0000"), Err(ParseError::Base58));
    // Upper-case base32 (multibase `B`) is not accepted.
    let cid = PeerId::from_str(ED25519_PEER_ID).unwrap().to_cid_string();
    assert_eq!(
        PeerId::from_str(&cid.to_ascii_uppercase()),
        Err(ParseError::UnsupportedMultibase('B'))
    );
    // Mixed case inside a `b` CID.
    let mut mixed = cid.clone();
    mixed.replace_range(5..6, &mixed[5..6].to_ascii_uppercase());
    assert_eq!(PeerId::from_str(&mixed), Err(ParseError::Base32));
    // Truncated CID: the multihash length no longer matches.
    assert!(matches!(
        PeerId::from_str(&cid[..cid.len() - 8]),
        Err(ParseError::LengthMismatch { .. })
    ));
    // base16 multibase.
    assert_eq!(
        PeerId::from_str("f01720024"),
        Err(ParseError::UnsupportedMultibase('f'))
    );
    // `1` is base58 for a single 0x00 byte: identity code with no length varint.
    assert_eq!(PeerId::from_str("1"), Err(ParseError::Varint));
    // A legacy string of a sha1 (0x11) multihash, with a leading zero byte so it is `1…`.
    let sha1: Vec<u8> = [0x00, 0x11, 0x14].into_iter().chain([7u8; 20]).collect();
    let s = bs58::encode(&sha1).into_string();
    assert!(s.starts_with('1'));
    // 0x00 0x11 = identity multihash declaring 17 bytes, followed by 21 bytes.
    assert_eq!(
        PeerId::from_str(&s),
        Err(ParseError::LengthMismatch {
            declared: 17,
            actual: 21
        })
    );
}
