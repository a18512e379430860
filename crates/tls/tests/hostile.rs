//! Hostile certificates, built with rcgen: each is refused with its typed error, by the
//! client's verifier (a hostile server presents it) and by the server's verifier (a hostile
//! client presents it); the controls next to them are accepted.

mod common;

use std::sync::Arc;

use common::*;
use plexus_identity::{DecodingError, Keypair};
use plexus_tls::{CertError, TlsConfig, cert_error, verify_certificate};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::sign::CertifiedKey;

/// The client's and the server's verifier both refuse `presented` with `expected`, and neither
/// side completes a handshake.
fn refused_both_ways(presented: Arc<CertifiedKey>, expected: &CertError) {
    let ours = TlsConfig::new(&Keypair::generate_secp256k1());

    let out = handshake(ours.client_config(None), hostile_server(presented.clone()));
    assert!(!out.established(), "client accepted; expected {expected:?}");
    let err = out.client_err.as_ref().expect("the client refuses");
    assert_eq!(cert_error(err), Some(expected), "as client: {err:?}");

    let out = handshake(hostile_client(presented), ours.server_config());
    assert!(!out.established(), "server accepted; expected {expected:?}");
    assert!(out.server.is_handshaking());
    let err = out.server_err.as_ref().expect("the server refuses");
    assert_eq!(cert_error(err), Some(expected), "as server: {err:?}");
}

/// Both verifiers accept `presented` as `host`.
fn accepted_both_ways(presented: Arc<CertifiedKey>, host: &Keypair) {
    let ours = TlsConfig::new(&Keypair::generate_ed25519());
    let out = handshake(
        ours.client_config(Some(peer(host))),
        hostile_server(presented.clone()),
    );
    assert!(out.established(), "as client: {:?}", out.client_err);
    let out = handshake(hostile_client(presented), ours.server_config());
    assert!(out.established(), "as server: {:?}", out.server_err);
}

fn check(cert: &CertificateDer<'_>) -> Result<plexus_identity::PublicKey, CertError> {
    verify_certificate(cert, UnixTime::now())
}

#[test]
fn control_an_honest_rcgen_certificate_is_accepted() {
    let host = Keypair::generate_ed25519();
    let (cert, key) = honest_cert_with(&host, |_, _| {});
    assert_eq!(check(&cert).unwrap(), host.public());
    accepted_both_ways(certified(vec![cert], &key), &host);
}

#[test]
fn without_the_extension() {
    let (cert, key) = build_cert(&rcgen::PKCS_ECDSA_P256_SHA256, |_, _| {});
    assert_eq!(check(&cert), Err(CertError::ExtensionMissing));
    refused_both_ways(certified(vec![cert], &key), &CertError::ExtensionMissing);
}

#[test]
fn with_a_bad_host_key_signature() {
    let host = Keypair::generate_secp256k1();
    // The host signs another certificate key's SubjectPublicKeyInfo.
    let other = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let (cert, key) = build_cert(&rcgen::PKCS_ECDSA_P256_SHA256, |params, _| {
        params.custom_extensions.push(libp2p_extension(
            honest_extension_value(&host, &other),
            true,
        ));
    });
    assert_eq!(check(&cert), Err(CertError::BadHostKeySignature));
    refused_both_ways(certified(vec![cert], &key), &CertError::BadHostKeySignature);

    // A signature by another host key over the right SubjectPublicKeyInfo.
    let impostor = Keypair::generate_ed25519();
    let (cert, key) = build_cert(&rcgen::PKCS_ECDSA_P256_SHA256, |params, key| {
        let mut msg = b"libp2p-tls-handshake:".to_vec();
        msg.extend(key.public_key_der());
        let value = signed_key(&host.public().encode_protobuf(), &impostor.sign(&msg));
        params
            .custom_extensions
            .push(libp2p_extension(value, false));
    });
    assert_eq!(check(&cert), Err(CertError::BadHostKeySignature));
    refused_both_ways(certified(vec![cert], &key), &CertError::BadHostKeySignature);
}

#[test]
fn with_two_libp2p_extensions() {
    let host = Keypair::generate_ed25519();
    let second = Keypair::generate_ed25519();
    let (cert, key) = honest_cert_with(&host, |params, key| {
        params.custom_extensions.push(libp2p_extension(
            honest_extension_value(&second, key),
            false,
        ));
    });
    assert_eq!(check(&cert), Err(CertError::DuplicateExtension));
    refused_both_ways(certified(vec![cert], &key), &CertError::DuplicateExtension);
}

#[test]
fn with_an_unknown_critical_extension() {
    let host = Keypair::generate_ed25519();
    let unknown = |critical| {
        move |params: &mut rcgen::CertificateParams, _: &rcgen::KeyPair| {
            let mut ext = rcgen::CustomExtension::from_oid_content(&[1, 2, 3, 4, 5], vec![5, 0]);
            ext.set_criticality(critical);
            params.custom_extensions.push(ext);
        }
    };
    let (cert, key) = honest_cert_with(&host, unknown(true));
    let expected = CertError::UnknownCriticalExtension("1.2.3.4.5".into());
    assert_eq!(check(&cert), Err(expected.clone()));
    refused_both_ways(certified(vec![cert], &key), &expected);

    // control: the same extension, not critical, is ignored
    let (cert, key) = honest_cert_with(&host, unknown(false));
    assert_eq!(check(&cert).unwrap(), host.public());
    accepted_both_ways(certified(vec![cert], &key), &host);
}

/// Critical key usage (nim-libp2p) and critical basic constraints (older py-libp2p) are
/// understood, so they are not unknown critical extensions; a key usage without
/// `digitalSignature` is refused.
#[test]
fn critical_key_usage_and_basic_constraints_are_understood() {
    let host = Keypair::generate_secp256k1();
    let (cert, key) = honest_cert_with(&host, |params, _| {
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
        ];
        params.is_ca = rcgen::IsCa::ExplicitNoCa;
    });
    assert_eq!(check(&cert).unwrap(), host.public());
    accepted_both_ways(certified(vec![cert], &key), &host);

    let (cert, key) = honest_cert_with(&host, |params, _| {
        params.key_usages = vec![rcgen::KeyUsagePurpose::KeyEncipherment];
    });
    assert_eq!(check(&cert), Err(CertError::KeyUsage));
    refused_both_ways(certified(vec![cert], &key), &CertError::KeyUsage);
}

#[test]
fn expired_and_not_yet_valid() {
    let host = Keypair::generate_ed25519();
    let (cert, key) = honest_cert_with(&host, |params, _| {
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(2001, 1, 1);
    });
    let not_after = 978_307_200; // 2001-01-01T00:00:00Z
    let Err(CertError::Expired { not_after: got, .. }) = check(&cert) else {
        panic!("not refused as expired: {:?}", check(&cert));
    };
    assert_eq!(got, not_after);
    let ck = certified(vec![cert], &key);
    // the error carries our clock, so compare the variant through the handshake
    let ours = TlsConfig::new(&Keypair::generate_ed25519());
    let out = handshake(ours.client_config(None), hostile_server(ck.clone()));
    assert!(matches!(
        out.client_err.as_ref().and_then(cert_error),
        Some(CertError::Expired { .. })
    ));
    let out = handshake(hostile_client(ck), ours.server_config());
    assert!(matches!(
        out.server_err.as_ref().and_then(cert_error),
        Some(CertError::Expired { .. })
    ));

    let (cert, key) = honest_cert_with(&host, |params, _| {
        params.not_before = rcgen::date_time_ymd(3000, 1, 1);
    });
    assert!(matches!(check(&cert), Err(CertError::NotYetValid { .. })));
    let ck = certified(vec![cert], &key);
    let out = handshake(ours.client_config(None), hostile_server(ck.clone()));
    assert!(matches!(
        out.client_err.as_ref().and_then(cert_error),
        Some(CertError::NotYetValid { .. })
    ));
    let out = handshake(hostile_client(ck), ours.server_config());
    assert!(matches!(
        out.server_err.as_ref().and_then(cert_error),
        Some(CertError::NotYetValid { .. })
    ));
}

#[test]
fn with_an_intermediate() {
    let host = Keypair::generate_ed25519();
    let (leaf, key) = honest_cert_with(&host, |_, _| {});
    let (other, _) = honest_cert_with(&Keypair::generate_ed25519(), |_, _| {});
    refused_both_ways(
        certified(vec![leaf.clone(), other.clone()], &key),
        &CertError::TooManyCertificates(2),
    );
    assert_eq!(
        plexus_tls::peer_id_of(&[leaf, other]),
        Err(CertError::TooManyCertificates(2))
    );
}

#[test]
fn garbage_der() {
    let (_, key) = honest_cert_with(&Keypair::generate_ed25519(), |_, _| {});
    for garbage in [
        vec![],
        vec![0x30, 0x03, 1, 2, 3],
        b"not a certificate".to_vec(),
    ] {
        let cert = CertificateDer::from(garbage);
        assert!(matches!(check(&cert), Err(CertError::Unparsable(_))));
        let ours = TlsConfig::new(&Keypair::generate_ed25519());
        let ck = certified(vec![cert], &key);
        let out = handshake(ours.client_config(None), hostile_server(ck.clone()));
        assert!(
            matches!(
                out.client_err.as_ref().and_then(cert_error),
                Some(CertError::Unparsable(_))
            ),
            "{:?}",
            out.client_err
        );
        let out = handshake(hostile_client(ck), ours.server_config());
        assert!(
            matches!(
                out.server_err.as_ref().and_then(cert_error),
                Some(CertError::Unparsable(_))
            ),
            "{:?}",
            out.server_err
        );
    }
}

#[test]
fn with_a_bad_self_signature() {
    let host = Keypair::generate_ed25519();
    let (cert, key) = honest_cert_with(&host, |_, _| {});
    // The last byte is inside the signature's `s` integer: the DER stays valid.
    let mut bad = cert.to_vec();
    *bad.last_mut().unwrap() ^= 0x01;
    let bad = CertificateDer::from(bad);
    assert_eq!(check(&bad), Err(CertError::BadSelfSignature));
    refused_both_ways(certified(vec![bad], &key), &CertError::BadSelfSignature);
}

#[test]
fn with_an_unsupported_signature_algorithm() {
    let host = Keypair::generate_ed25519();
    let (cert, key) = honest_cert_with(&host, |_, _| {});
    // ecdsa-with-SHA256 (…04 03 02) → ecdsa-with-SHA512 (…04 03 04), in the TBS and outside:
    // consistent DER, an algorithm we do not take.
    let sha256 = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02];
    let mut der = cert.to_vec();
    let mut replaced = 0;
    let mut i = 0;
    while i + sha256.len() <= der.len() {
        if der[i..i + sha256.len()] == sha256 {
            der[i + sha256.len() - 1] = 0x04;
            replaced += 1;
        }
        i += 1;
    }
    assert_eq!(replaced, 2);
    let der = CertificateDer::from(der);
    assert_eq!(check(&der), Err(CertError::UnsupportedSignatureAlgorithm));
    refused_both_ways(
        certified(vec![der], &key),
        &CertError::UnsupportedSignatureAlgorithm,
    );
}

#[test]
fn with_an_unsupported_host_key_type() {
    // An ECDSA (3) host key protobuf: 08 03 12 <len> <data>.
    let mut protobuf = vec![0x08, 0x03, 0x12, 0x04];
    protobuf.extend([1, 2, 3, 4]);
    let (cert, key) = build_cert(&rcgen::PKCS_ECDSA_P256_SHA256, |params, _| {
        params
            .custom_extensions
            .push(libp2p_extension(signed_key(&protobuf, &[0; 64]), false));
    });
    let expected = CertError::UnsupportedKeyType(DecodingError::UnsupportedKeyType {
        code: 3,
        name: "ECDSA",
    });
    assert_eq!(check(&cert), Err(expected.clone()));
    refused_both_ways(certified(vec![cert], &key), &expected);
}

#[test]
fn with_a_malformed_extension_value() {
    let host = Keypair::generate_ed25519();
    for value in [
        vec![],
        vec![0x04, 0x00],
        // SignedKey with a third element
        [
            &signed_key(&host.public().encode_protobuf(), &[1])[..],
            &[0x04, 0x00],
        ]
        .concat(),
    ] {
        let (cert, key) = build_cert(&rcgen::PKCS_ECDSA_P256_SHA256, |params, _| {
            params
                .custom_extensions
                .push(libp2p_extension(value, false));
        });
        assert_eq!(check(&cert), Err(CertError::BadExtensionEncoding));
        refused_both_ways(
            certified(vec![cert], &key),
            &CertError::BadExtensionEncoding,
        );
    }
}

#[test]
fn with_an_invalid_host_key() {
    // An ed25519 host key of 31 bytes.
    let mut protobuf = vec![0x08, 0x01, 0x12, 31];
    protobuf.extend([7u8; 31]);
    let (cert, _) = build_cert(&rcgen::PKCS_ECDSA_P256_SHA256, |params, _| {
        params
            .custom_extensions
            .push(libp2p_extension(signed_key(&protobuf, &[0; 64]), false));
    });
    assert!(matches!(check(&cert), Err(CertError::InvalidHostKey(_))));
}

/// A stolen certificate: a valid libp2p certificate of another peer, presented by someone
/// without its private key. The TLS 1.3 CertificateVerify signature does not verify.
#[test]
fn a_stolen_certificate_fails_the_handshake_signature() {
    let victim = Keypair::generate_ed25519();
    let victim_tls = TlsConfig::new(&victim);
    let thief_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let stolen = certified(vec![victim_tls.certificate().clone()], &thief_key);

    let ours = TlsConfig::new(&Keypair::generate_secp256k1());
    let out = handshake(
        ours.client_config(Some(peer(&victim))),
        hostile_server(stolen.clone()),
    );
    assert!(!out.established());
    assert_eq!(
        out.client_err,
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadSignature
        ))
    );

    let out = handshake(hostile_client(stolen), ours.server_config());
    assert!(!out.established());
    assert_eq!(
        out.server_err,
        Some(rustls::Error::InvalidCertificate(
            rustls::CertificateError::BadSignature
        ))
    );
}
