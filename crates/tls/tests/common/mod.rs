//! Test support: an in-memory handshake driver, hostile certificates built with rcgen, and
//! hostile rustls peers that present whatever chain they are given and check nothing.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use plexus_identity::{Keypair, PeerId};
use plexus_tls::{ALPN, SERVER_NAME, TlsConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{
    ClientConfig, ClientConnection, Connection, DigitallySignedStruct, ServerConfig,
    ServerConnection, SignatureScheme,
};

/// The libp2p extension OID.
pub const LIBP2P_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 53594, 1, 1];

pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

// ---------------------------------------------------------------------------------------------
// DER, written independently of the crate's encoder.

fn der_len(len: usize) -> Vec<u8> {
    if len < 0x80 {
        vec![len as u8]
    } else if len < 0x100 {
        vec![0x81, len as u8]
    } else {
        vec![0x82, (len >> 8) as u8, len as u8]
    }
}

pub fn der_tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_len(contents.len()));
    out.extend_from_slice(contents);
    out
}

/// `SignedKey ::= SEQUENCE { publicKey OCTET STRING, signature OCTET STRING }`.
pub fn signed_key(public_key_protobuf: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut inner = der_tlv(0x04, public_key_protobuf);
    inner.extend(der_tlv(0x04, signature));
    der_tlv(0x30, &inner)
}

/// The honest extension value for `host` and the certificate key `cert_key`.
pub fn honest_extension_value(host: &Keypair, cert_key: &rcgen::KeyPair) -> Vec<u8> {
    let mut msg = b"libp2p-tls-handshake:".to_vec();
    msg.extend(cert_key.public_key_der());
    signed_key(&host.public().encode_protobuf(), &host.sign(&msg))
}

pub fn libp2p_extension(value: Vec<u8>, critical: bool) -> rcgen::CustomExtension {
    let mut ext = rcgen::CustomExtension::from_oid_content(LIBP2P_OID, value);
    ext.set_criticality(critical);
    ext
}

/// A certificate built by `edit` from default parameters, self-signed with a fresh key of
/// `alg`. `edit` gets the key, to compute the extension over its SubjectPublicKeyInfo.
pub fn build_cert(
    alg: &'static rcgen::SignatureAlgorithm,
    edit: impl FnOnce(&mut rcgen::CertificateParams, &rcgen::KeyPair),
) -> (CertificateDer<'static>, rcgen::KeyPair) {
    let key = rcgen::KeyPair::generate_for(alg).unwrap();
    let mut params = rcgen::CertificateParams::default();
    edit(&mut params, &key);
    let cert = params.self_signed(&key).unwrap();
    (cert.der().clone(), key)
}

/// An honest certificate for `host` (P-256, non-critical libp2p extension), then `edit`.
pub fn honest_cert_with(
    host: &Keypair,
    edit: impl FnOnce(&mut rcgen::CertificateParams, &rcgen::KeyPair),
) -> (CertificateDer<'static>, rcgen::KeyPair) {
    build_cert(&rcgen::PKCS_ECDSA_P256_SHA256, |params, key| {
        params
            .custom_extensions
            .push(libp2p_extension(honest_extension_value(host, key), false));
        edit(params, key);
    })
}

/// A chain and the key that signs the handshake, as a rustls `CertifiedKey`.
pub fn certified(chain: Vec<CertificateDer<'static>>, key: &rcgen::KeyPair) -> Arc<CertifiedKey> {
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let signing = provider().key_provider.load_private_key(der).unwrap();
    Arc::new(CertifiedKey::new(chain, signing))
}

// ---------------------------------------------------------------------------------------------
// Hostile peers: they present what they are given and accept anything.

#[derive(Debug)]
struct AcceptAnything;

impl ServerCertVerifier for AcceptAnything {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A server presenting `key` that asks for no client certificate.
pub fn hostile_server(key: Arc<CertifiedKey>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(SingleCertAndKey::from(key)));
    config.alpn_protocols = vec![ALPN.to_vec()];
    Arc::new(config)
}

/// A client presenting `key` (or nothing) with the given ALPN list, checking nothing.
pub fn hostile_client_alpn(key: Option<Arc<CertifiedKey>>, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnything));
    let mut config = match key {
        Some(key) => builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(key))),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config.enable_sni = false;
    Arc::new(config)
}

/// A client presenting `key`, offering ALPN `libp2p`.
pub fn hostile_client(key: Arc<CertifiedKey>) -> Arc<ClientConfig> {
    hostile_client_alpn(Some(key), &[ALPN])
}

// ---------------------------------------------------------------------------------------------
// The in-memory handshake.

/// What each side ended with.
pub struct Outcome {
    pub client: Connection,
    pub server: Connection,
    pub client_err: Option<rustls::Error>,
    pub server_err: Option<rustls::Error>,
}

impl Outcome {
    pub fn established(&self) -> bool {
        self.client_err.is_none()
            && self.server_err.is_none()
            && !self.client.is_handshaking()
            && !self.server.is_handshaking()
    }
}

/// Move what `from` has to send into `to`. Returns whether any bytes moved.
fn transfer(
    from: &mut Connection,
    to: &mut Connection,
    to_err: &mut Option<rustls::Error>,
) -> bool {
    let mut buf = Vec::new();
    while from.wants_write() {
        if from.write_tls(&mut buf).unwrap() == 0 {
            break;
        }
    }
    if buf.is_empty() {
        return false;
    }
    if to_err.is_some() {
        // A failed connection reads no more.
        return true;
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        match to.read_tls(&mut rd) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        if let Err(e) = to.process_new_packets() {
            *to_err = Some(e);
            break;
        }
    }
    true
}

/// Run a handshake between the two configs to its end (success, or both sides failed or
/// stopped talking), by copying bytes; at most 32 rounds.
pub fn handshake(client: Arc<ClientConfig>, server: Arc<ServerConfig>) -> Outcome {
    handshake_named(client, server, SERVER_NAME)
}

/// [`handshake`], the client connecting with server name `name`.
pub fn handshake_named(
    client: Arc<ClientConfig>,
    server: Arc<ServerConfig>,
    name: &str,
) -> Outcome {
    let name = ServerName::try_from(name.to_string()).unwrap();
    let mut client = Connection::Client(ClientConnection::new(client, name).unwrap());
    let mut server = Connection::Server(ServerConnection::new(server).unwrap());
    let (mut client_err, mut server_err) = (None, None);
    for _ in 0..32 {
        let a = transfer(&mut client, &mut server, &mut server_err);
        let b = transfer(&mut server, &mut client, &mut client_err);
        if !a && !b {
            break;
        }
    }
    Outcome {
        client,
        server,
        client_err,
        server_err,
    }
}

/// A `TlsConfig` for a fresh key of each type.
pub fn configs() -> Vec<(&'static str, Keypair, TlsConfig)> {
    let ed = Keypair::generate_ed25519();
    let secp = Keypair::generate_secp256k1();
    vec![
        ("ed25519", ed.clone(), TlsConfig::new(&ed)),
        ("secp256k1", secp.clone(), TlsConfig::new(&secp)),
    ]
}

pub fn peer(key: &Keypair) -> PeerId {
    key.public().to_peer_id()
}
