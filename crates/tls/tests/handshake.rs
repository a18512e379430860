//! Full in-memory handshakes between `TlsConfig`s (rustls connections driven by copying bytes).

mod common;

use std::io::{Read as _, Write as _};

use common::*;
use plexus_identity::PeerId;
use plexus_tls::{
    ALPN, CertError, TlsConfig, cert_error, peer_id_of, public_key_of, public_key_of_accepted,
    server_name_for,
};
use rustls::{AlertDescription, ProtocolVersion};
use std::sync::Arc;

#[test]
fn both_sides_learn_each_others_peer_id_for_every_key_type() {
    for (client_name, client_key, client_tls) in configs() {
        for (server_name, server_key, server_tls) in configs() {
            let what = format!("{client_name} -> {server_name}");
            for expected in [None, Some(peer(&server_key))] {
                let mut out = handshake(
                    client_tls.client_config(expected),
                    server_tls.server_config(),
                );
                assert!(
                    out.established(),
                    "{what}: {:?} / {:?}",
                    out.client_err,
                    out.server_err
                );
                let client_sees = peer_id_of(out.client.peer_certificates().unwrap()).unwrap();
                let server_sees = peer_id_of(out.server.peer_certificates().unwrap()).unwrap();
                assert_eq!(client_sees, peer(&server_key), "{what}");
                assert_eq!(server_sees, peer(&client_key), "{what}");
                assert_eq!(
                    public_key_of(out.server.peer_certificates().unwrap()).unwrap(),
                    client_key.public()
                );
                assert_eq!(
                    public_key_of_accepted(out.server.peer_certificates().unwrap()).unwrap(),
                    client_key.public()
                );
                assert_eq!(
                    public_key_of_accepted(out.client.peer_certificates().unwrap()).unwrap(),
                    server_key.public()
                );
                assert_eq!(out.client.alpn_protocol(), Some(ALPN), "{what}");
                assert_eq!(out.server.alpn_protocol(), Some(ALPN), "{what}");
                assert_eq!(
                    out.client.protocol_version(),
                    Some(ProtocolVersion::TLSv1_3)
                );
                assert_eq!(
                    out.server.protocol_version(),
                    Some(ProtocolVersion::TLSv1_3)
                );
                // exactly one certificate each way
                assert_eq!(out.client.peer_certificates().unwrap().len(), 1);
                assert_eq!(out.server.peer_certificates().unwrap().len(), 1);

                // and the keys work: application data both ways
                assert_eq!(send(&mut out.client, &mut out.server, b"ping"), b"ping");
                assert_eq!(send(&mut out.server, &mut out.client, b"pong"), b"pong");
            }
        }
    }
}

/// Write `data` on `from`, carry the records to `to`, read them back.
fn send(from: &mut rustls::Connection, to: &mut rustls::Connection, data: &[u8]) -> Vec<u8> {
    from.writer().write_all(data).unwrap();
    let mut records = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut records).unwrap();
    }
    let mut rd = &records[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).unwrap();
        to.process_new_packets().unwrap();
    }
    let mut got = vec![0; data.len()];
    to.reader().read_exact(&mut got).unwrap();
    got
}

#[test]
fn the_certificate_authenticates_our_peer_id() {
    for (_, key, tls) in configs() {
        assert_eq!(tls.local_peer_id(), peer(&key));
        assert_eq!(
            peer_id_of(std::slice::from_ref(tls.certificate())).unwrap(),
            peer(&key)
        );
    }
}

#[test]
fn each_config_has_a_fresh_certificate_key() {
    let key = plexus_identity::Keypair::generate_ed25519();
    let a = TlsConfig::new(&key);
    let b = TlsConfig::new(&key);
    assert_ne!(a.certificate(), b.certificate());
}

#[test]
fn dialing_the_wrong_peer_id_fails_with_the_mismatch() {
    for (_, _, client_tls) in configs() {
        for (_, server_key, server_tls) in configs() {
            let wrong = PeerId::random();
            let out = handshake(
                client_tls.client_config(Some(wrong)),
                server_tls.server_config(),
            );
            assert!(!out.established());
            let err = out.client_err.as_ref().expect("the client refuses");
            assert_eq!(
                cert_error(err),
                Some(&CertError::PeerIdMismatch {
                    expected: wrong,
                    actual: peer(&server_key),
                })
            );
            // the server is told with an alert, and never completes
            assert_eq!(
                out.server_err,
                Some(rustls::Error::AlertReceived(
                    AlertDescription::CertificateUnknown
                ))
            );
            assert!(out.server.is_handshaking());
        }
    }
}

/// The shared dialing config (`client_config(None)`, one `Arc` for every dial) checks the peer
/// named by the server name: the right one connects, another fails with the mismatch.
#[test]
fn the_shared_dialing_config_checks_the_peer_in_the_server_name() {
    for (_, _, client_tls) in configs() {
        assert!(Arc::ptr_eq(
            &client_tls.client_config(None),
            &client_tls.client_config(None)
        ));
        for (what, server_key, server_tls) in configs() {
            let right = peer(&server_key);
            let name = server_name_for(&right).expect("a base58 peer id is a DNS label");
            // base58 is case-sensitive: the name must reach the verifier unchanged
            assert!(name.chars().any(|c| c.is_ascii_uppercase()), "{name}");
            let out = handshake_named(
                client_tls.client_config(None),
                server_tls.server_config(),
                &name,
            );
            assert!(out.established(), "{what}: {:?}", out.client_err);

            let wrong = PeerId::random();
            let out = handshake_named(
                client_tls.client_config(None),
                server_tls.server_config(),
                &server_name_for(&wrong).unwrap(),
            );
            assert!(!out.established(), "{what}");
            assert_eq!(
                cert_error(out.client_err.as_ref().expect("the client refuses")),
                Some(&CertError::PeerIdMismatch {
                    expected: wrong,
                    actual: right,
                })
            );
        }
    }
}

#[test]
fn the_client_sends_no_sni() {
    let (_, _, tls) = configs().remove(0);
    let out = handshake(tls.client_config(None), tls.server_config());
    assert!(out.established());
    let rustls::Connection::Server(server) = &out.server else {
        unreachable!()
    };
    assert_eq!(server.server_name(), None);
}

#[test]
fn the_server_requires_a_client_certificate() {
    let (_, _, tls) = configs().remove(0);
    let out = handshake(hostile_client_alpn(None, &[ALPN]), tls.server_config());
    assert!(!out.established());
    assert_eq!(out.server_err, Some(rustls::Error::NoCertificatesPresented));
    assert_eq!(peer_id_of(&[]), Err(CertError::NoCertificate));
}

#[test]
fn the_server_refuses_a_client_without_alpn_libp2p() {
    let (_, key, tls) = configs().remove(0);
    let (cert, cert_key) = honest_cert_with(&key, |_, _| {});
    let client = hostile_client_alpn(Some(certified(vec![cert], &cert_key)), &[b"h3"]);
    let out = handshake(client, tls.server_config());
    assert!(!out.established());
    assert_eq!(out.server_err, Some(rustls::Error::NoApplicationProtocol));
}

/// Other implementations may pick other certificate keys; Ed25519 and P-384 are accepted both
/// ways (P-256 is what `TlsConfig` uses).
#[test]
fn ed25519_and_p384_certificate_keys_are_accepted() {
    let (_, _, tls) = configs().remove(1);
    for alg in [&rcgen::PKCS_ED25519, &rcgen::PKCS_ECDSA_P384_SHA384] {
        let host = plexus_identity::Keypair::generate_secp256k1();
        let (cert, key) = build_cert(alg, |params, key| {
            params
                .custom_extensions
                .push(libp2p_extension(honest_extension_value(&host, key), true));
        });
        let ck = certified(vec![cert], &key);

        let out = handshake(
            tls.client_config(Some(peer(&host))),
            hostile_server(ck.clone()),
        );
        assert!(out.established(), "{:?}", out.client_err);
        assert_eq!(
            peer_id_of(out.client.peer_certificates().unwrap()).unwrap(),
            peer(&host)
        );

        let out = handshake(hostile_client(ck), tls.server_config());
        assert!(out.established(), "{:?}", out.server_err);
        assert_eq!(
            peer_id_of(out.server.peer_certificates().unwrap()).unwrap(),
            peer(&host)
        );
    }
}

#[test]
fn errors_say_who_is_to_blame() {
    use plexus_core::{Blame, SecurityError};
    assert_eq!(
        CertError::BadHostKeySignature.blame(),
        Blame::PeerMisbehaved
    );
    assert_eq!(CertError::DuplicateExtension.blame(), Blame::PeerMisbehaved);
    assert_eq!(
        CertError::UnknownCriticalExtension("1.2.3".into()).blame(),
        Blame::PeerIncompatible
    );
    let (expected, actual) = (PeerId::random(), PeerId::random());
    let sec: SecurityError = CertError::PeerIdMismatch { expected, actual }.into();
    assert!(
        matches!(sec, SecurityError::PeerIdMismatch { expected: e, actual: a } if e == expected && a == actual)
    );
    let sec: SecurityError = CertError::BadSelfSignature.into();
    assert_eq!(sec.blame(), Blame::PeerMisbehaved);
}
