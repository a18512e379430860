//! The test vectors of `libp2p/specs: tls/tls.md` ("Test vectors"), verbatim.

use std::time::Duration;

use plexus_identity::{DecodingError, PeerId};
use plexus_tls::{CertError, peer_id_of, verify_certificate};
use rustls::pki_types::{CertificateDer, UnixTime};

/// 1. Valid certificate authenticating an ED25519 Peer ID.
const ED25519_CERT: &str = "308201ae30820156a0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea37c307a3078060a2b0601040183a25a0101046a3068042408011220a77f1d92fedb59dddaea5a1c4abd1ac2fbde7d7b879ed364501809923d7c11b90440d90d2769db992d5e6195dbb08e706b6651e024fda6cfb8846694a435519941cac215a8207792e42849cccc6cd8136c6e4bde92a58c5e08cfd4206eb5fe0bf909300a06082a8648ce3d0403020346003043021f50f6b6c52711a881778718238f650c9fb48943ae6ee6d28427dc6071ae55e702203625f116a7a454db9c56986c82a25682f7248ea1cb764d322ea983ed36a31b77";
const ED25519_PEER: &str = "12D3KooWM6CgA9iBFZmcYAHA6A2qvbAxqfkmrYiRQuz3XEsk4Ksv";

/// 2. Valid certificate authenticating an ECDSA Peer ID.
const ECDSA_CERT: &str = "308201f63082019da0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea381c23081bf3081bc060a2b0601040183a25a01010481ad3081aa045f0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004bf30511f909414ebdd3242178fd290f093a551cf75c973155de0bb5a96fedf6cb5d52da7563e794b512f66e60c7f55ba8a3acf3dd72a801980d205e8a1ad29f2044730450220064ea8124774caf8f50e57f436aa62350ce652418c019df5d98a3ac666c9386a022100aa59d704a931b5f72fb9222cb6cc51f954d04a4e2e5450f8805fe8918f71eaae300a06082a8648ce3d04030203470030440220799395b0b6c1e940a7e4484705f610ab51ed376f19ff9d7c16757cfbf61b8d4302206205c03fbb0f95205c779be86581d3e31c01871ad5d1f3435bcf375cb0e5088a";

/// 3. Valid certificate authenticating a secp256k1 Peer ID.
const SECP256K1_CERT: &str = "308201ba3082015fa0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea38184308181307f060a2b0601040183a25a01010471306f0425080212210206dc6968726765b820f050263ececf7f71e4955892776c0970542efd689d2382044630440220145e15a991961f0d08cd15425bb95ec93f6ffa03c5a385eedc34ecf464c7a8ab022026b3109b8a3f40ef833169777eb2aa337cfb6282f188de0666d1bcec2a4690dd300a06082a8648ce3d0403020349003046022100e1a217eeef9ec9204b3f774a08b70849646b6a1e6b8b27f93dc00ed58545d9fe022100b00dafa549d0f03547878338c7b15e7502888f6d45db387e5ae6b5d46899cef0";
const SECP256K1_PEER: &str = "16Uiu2HAkutTMoTzDw1tCvSRtu6YoixJwS46S1ZFxW8hSx9fWHiPs";

/// 4. Invalid certificate: the host key's signature does not match the certificate key.
const INVALID_CERT: &str = "308201f73082019da0030201020204499602d2300a06082a8648ce3d040302302031123010060355040a13096c69627032702e696f310a300806035504051301313020170d3735303130313133303030305a180f34303936303130313133303030305a302031123010060355040a13096c69627032702e696f310a300806035504051301313059301306072a8648ce3d020106082a8648ce3d030107034200040c901d423c831ca85e27c73c263ba132721bb9d7a84c4f0380b2a6756fd601331c8870234dec878504c174144fa4b14b66a651691606d8173e55bd37e381569ea381c23081bf3081bc060a2b0601040183a25a01010481ad3081aa045f0803125b3059301306072a8648ce3d020106082a8648ce3d03010703420004bf30511f909414ebdd3242178fd290f093a551cf75c973155de0bb5a96fedf6cb5d52da7563e794b512f66e60c7f55ba8a3acf3dd72a801980d205e8a1ad29f204473045022100bb6e03577b7cc7a3cd1558df0da2b117dfdcc0399bc2504ebe7de6f65cade72802206de96e2a5be9b6202adba24ee0362e490641ac45c240db71fe955f2c5cf8df6e300a06082a8648ce3d0403020348003045022100e847f267f43717358f850355bdcabbefb2cfbf8a3c043b203a14788a092fe8db022027c1d04a2d41fd6b57a7e8b3989e470325de4406e52e084e34a3fd56eef0d0df";

fn der(hex_str: &str) -> Vec<u8> {
    hex::decode(hex_str).unwrap()
}

fn now() -> UnixTime {
    UnixTime::now()
}

#[test]
fn ed25519_vector_authenticates_its_peer_id() {
    let key = verify_certificate(&der(ED25519_CERT), now()).unwrap();
    assert_eq!(key.to_peer_id().to_base58(), ED25519_PEER);
    let certs = [CertificateDer::from(der(ED25519_CERT))];
    assert_eq!(
        peer_id_of(&certs).unwrap(),
        ED25519_PEER.parse::<PeerId>().unwrap()
    );
}

#[test]
fn secp256k1_vector_authenticates_its_peer_id() {
    let key = verify_certificate(&der(SECP256K1_CERT), now()).unwrap();
    assert_eq!(key.to_peer_id().to_base58(), SECP256K1_PEER);
    let certs = [CertificateDer::from(der(SECP256K1_CERT))];
    assert_eq!(
        peer_id_of(&certs).unwrap(),
        SECP256K1_PEER.parse::<PeerId>().unwrap()
    );
}

/// plexus implements ed25519 and secp256k1 host keys only (ECDSA host keys are refused
/// everywhere in plexus, as in the Noise handshake), so the ECDSA vector is refused as an
/// unsupported key type, not mistaken for anything else.
#[test]
fn ecdsa_vector_is_an_unsupported_host_key() {
    assert_eq!(
        verify_certificate(&der(ECDSA_CERT), now()),
        Err(CertError::UnsupportedKeyType(
            DecodingError::UnsupportedKeyType {
                code: 3,
                name: "ECDSA"
            }
        ))
    );
}

/// The invalid vector carries an ECDSA host key too; whatever the reason, it must be refused.
#[test]
fn invalid_vector_is_refused() {
    let err = verify_certificate(&der(INVALID_CERT), now()).unwrap_err();
    assert!(
        matches!(err, CertError::UnsupportedKeyType(_)),
        "unexpected error {err:?}"
    );
    assert!(peer_id_of(&[CertificateDer::from(der(INVALID_CERT))]).is_err());
}

/// The vectors are valid from 1975-01-01 13:00 to 4096-01-01 13:00: the validity check runs on
/// third-party certificates too.
#[test]
fn vectors_outside_their_validity() {
    let before = UnixTime::since_unix_epoch(Duration::from_secs(0));
    assert!(matches!(
        verify_certificate(&der(ED25519_CERT), before),
        Err(CertError::NotYetValid { .. })
    ));
    let after = UnixTime::since_unix_epoch(Duration::from_secs(70_000_000_000));
    assert!(matches!(
        verify_certificate(&der(SECP256K1_CERT), after),
        Err(CertError::Expired { .. })
    ));
    // one second either side of the bounds
    let not_before = 157_813_200; // 1975-01-01T13:00:00Z
    assert!(
        verify_certificate(
            &der(ED25519_CERT),
            UnixTime::since_unix_epoch(Duration::from_secs(not_before))
        )
        .is_ok()
    );
    assert!(matches!(
        verify_certificate(
            &der(ED25519_CERT),
            UnixTime::since_unix_epoch(Duration::from_secs(not_before - 1))
        ),
        Err(CertError::NotYetValid { .. })
    ));
}

/// Every byte of a certificate is covered by DER structure or a signature: no single flipped
/// bit anywhere in the valid vectors yields an accepted certificate.
#[test]
fn no_single_bit_flip_is_accepted() {
    for vector in [ED25519_CERT, SECP256K1_CERT] {
        let good = der(vector);
        assert!(verify_certificate(&good, now()).is_ok());
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut bad = good.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    verify_certificate(&bad, now()).is_err(),
                    "flipping bit {bit} of byte {i} was accepted"
                );
            }
        }
    }
}

#[test]
fn truncations_and_trailing_bytes_are_refused() {
    let good = der(ED25519_CERT);
    for len in 0..good.len() {
        assert!(
            matches!(
                verify_certificate(&good[..len], now()),
                Err(CertError::Unparsable(_))
            ),
            "prefix of {len} bytes"
        );
    }
    let mut long = good.clone();
    long.push(0);
    assert!(matches!(
        verify_certificate(&long, now()),
        Err(CertError::Unparsable(_))
    ));
}
