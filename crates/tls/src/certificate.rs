//! The certificate: ours (generated with rcgen) and theirs (parsed with x509-parser and checked
//! against the libp2p TLS spec).

use std::sync::LazyLock;

use plexus_identity::{DecodingError, Keypair, PeerId, PublicKey};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{
    AlgorithmIdentifier, CertificateDer, PrivatePkcs8KeyDer, SignatureVerificationAlgorithm,
    UnixTime, alg_id,
};
use x509_parser::certificate::{X509Certificate, X509CertificateParser};
use x509_parser::extensions::{BasicConstraints, KeyUsage};
use x509_parser::nom::Parser as _;
use x509_parser::prelude::FromDer as _;

use crate::der;
use crate::error::CertError;

/// The libp2p Public Key Extension's OID, `1.3.6.1.4.1.53594.1.1`.
pub const EXTENSION_OID: &[u64] = &[1, 3, 6, 1, 4, 1, 53594, 1, 1];

/// What the host key signs, followed by the certificate's DER SubjectPublicKeyInfo.
pub const SIGNING_PREFIX: &[u8] = b"libp2p-tls-handshake:";

/// [`EXTENSION_OID`] as DER OID contents.
const OID_LIBP2P: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x83, 0xa2, 0x5a, 0x01, 0x01];
/// `id-ce-keyUsage` (2.5.29.15) as DER OID contents.
const OID_KEY_USAGE: &[u8] = &[0x55, 0x1d, 0x0f];
/// `id-ce-basicConstraints` (2.5.29.19) as DER OID contents.
const OID_BASIC_CONSTRAINTS: &[u8] = &[0x55, 0x1d, 0x13];

/// The (certificate key, certificate signature) algorithm pairs we verify: ECDSA on P-256 or
/// P-384 with SHA-256 or SHA-384, and Ed25519. RSA (which the spec says SHOULD NOT be used),
/// P-521 and SHA-1 are refused.
const ALLOWED_ALGORITHMS: &[(AlgorithmIdentifier, AlgorithmIdentifier)] = &[
    (alg_id::ECDSA_P256, alg_id::ECDSA_SHA256),
    (alg_id::ECDSA_P256, alg_id::ECDSA_SHA384),
    (alg_id::ECDSA_P384, alg_id::ECDSA_SHA256),
    (alg_id::ECDSA_P384, alg_id::ECDSA_SHA384),
    (alg_id::ED25519, alg_id::ED25519),
];

/// The ring provider's signature verification algorithms, for the functions that take no
/// [`crate::TlsConfig`] (the configs use the same provider).
pub(crate) static ALGORITHMS: LazyLock<WebPkiSupportedAlgorithms> =
    LazyLock::new(|| rustls::crypto::ring::default_provider().signature_verification_algorithms);

/// Our certificate and the PKCS#8 DER of its fresh key.
pub(crate) struct Generated {
    pub(crate) certificate: CertificateDer<'static>,
    pub(crate) key: PrivatePkcs8KeyDer<'static>,
}

/// A self-signed certificate for `host`: a fresh ECDSA P-256 key (unrelated to the host key),
/// validity 1975-01-01 to 4096-01-01, and the libp2p extension (not critical: go-libp2p before
/// its 2021 fix and webpki-based checks refuse a critical one, and every implementation reads a
/// non-critical one).
pub(crate) fn generate(host: &Keypair) -> Result<Generated, rcgen::Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut msg = SIGNING_PREFIX.to_vec();
    msg.extend_from_slice(&key.public_key_der());
    let signature = host.sign(&msg);
    let content = der::encode_signed_key(&host.public().encode_protobuf(), &signature);

    let mut params = rcgen::CertificateParams::default();
    let mut name = rcgen::DistinguishedName::new();
    name.push(rcgen::DnType::CommonName, "libp2p");
    params.distinguished_name = name;
    params
        .custom_extensions
        .push(rcgen::CustomExtension::from_oid_content(
            EXTENSION_OID,
            content,
        ));
    let certificate = params.self_signed(&key)?;
    Ok(Generated {
        certificate: certificate.der().clone(),
        key: PrivatePkcs8KeyDer::from(key.serialize_der()),
    })
}

/// Check one certificate against the libp2p TLS rules at time `now`, and return the host key it
/// authenticates.
///
/// The checks, cheapest first: one DER certificate and nothing after it; `notBefore ≤ now ≤
/// notAfter`; every extension OID at most once; the libp2p extension present; no critical
/// extension other than the libp2p one, key usage (which must allow `digitalSignature`) and
/// basic constraints; the extension a DER `SignedKey` whose key is a supported host key
/// (ed25519, secp256k1); the certificate signed with an allowed algorithm
/// (ECDSA P-256/P-384 with SHA-256/SHA-384, Ed25519) by its own key; the host key's signature
/// over `libp2p-tls-handshake:` ‖ SubjectPublicKeyInfo.
pub fn verify_certificate(der: &[u8], now: UnixTime) -> Result<PublicKey, CertError> {
    verify_with(der, now, &ALGORITHMS)
}

/// The host key of the remote that presented `certs` (what rustls'
/// `Connection::peer_certificates()` returns after the handshake), checked again in full at
/// the current time.
pub fn public_key_of(certs: &[CertificateDer<'_>]) -> Result<PublicKey, CertError> {
    match certs {
        [] => Err(CertError::NoCertificate),
        [cert] => verify_certificate(cert, UnixTime::now()),
        more => Err(CertError::TooManyCertificates(more.len())),
    }
}

/// The host key carried by `certs` that a handshake with this crate's configs accepted
/// (rustls' `peer_certificates()`, or quinn's `peer_identity()`, after the handshake): the
/// certificate is parsed and its libp2p extension decoded, but no signature is checked again,
/// since the verifier checked them all moments ago. Checking again cost each side of a QUIC
/// handshake a second secp256k1 (or ed25519) and a second P-256 verification. For
/// certificates from anywhere else, use [`public_key_of`].
pub fn public_key_of_accepted(certs: &[CertificateDer<'_>]) -> Result<PublicKey, CertError> {
    match certs {
        [] => Err(CertError::NoCertificate),
        [cert] => host_key(&parse(cert)?).map(|(key, _)| key),
        more => Err(CertError::TooManyCertificates(more.len())),
    }
}

/// The host key and its signature from a certificate's libp2p extension (the extensions
/// checked as [`libp2p_extension`] does); no signature is verified.
fn host_key<'a>(cert: &X509Certificate<'a>) -> Result<(PublicKey, &'a [u8]), CertError> {
    let value = libp2p_extension(cert)?;
    let (host_key, host_signature) =
        der::decode_signed_key(value).ok_or(CertError::BadExtensionEncoding)?;
    let host_key = PublicKey::try_decode_protobuf(host_key).map_err(|e| match e {
        DecodingError::UnsupportedKeyType { .. } | DecodingError::UnknownKeyType(_) => {
            CertError::UnsupportedKeyType(e)
        }
        other => CertError::InvalidHostKey(other),
    })?;
    Ok((host_key, host_signature))
}

/// The peer id of the remote that presented `certs`; see [`public_key_of`].
pub fn peer_id_of(certs: &[CertificateDer<'_>]) -> Result<PeerId, CertError> {
    public_key_of(certs).map(|key| key.to_peer_id())
}

/// Parse exactly one certificate from `der`.
fn parse(der: &[u8]) -> Result<X509Certificate<'_>, CertError> {
    let (rest, cert) = X509CertificateParser::new()
        .with_deep_parse_extensions(false)
        .parse(der)
        .map_err(|e| CertError::Unparsable(e.to_string()))?;
    if !rest.is_empty() {
        return Err(CertError::Unparsable(format!(
            "{} bytes after the certificate",
            rest.len()
        )));
    }
    Ok(cert)
}

/// The DER SubjectPublicKeyInfo of a certificate (for TLS CertificateVerify signatures).
pub(crate) fn subject_public_key_info(der: &[u8]) -> Result<&[u8], CertError> {
    Ok(parse(der)?.tbs_certificate.subject_pki.raw)
}

/// [`verify_certificate`] with the given provider algorithms.
pub(crate) fn verify_with(
    der: &[u8],
    now: UnixTime,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<PublicKey, CertError> {
    let cert = parse(der)?;
    let sig_alg = der::certificate_signature_algorithm(der)
        .ok_or_else(|| CertError::Unparsable("certificate envelope is not strict DER".into()))?;

    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let validity = cert.validity();
    let not_before = validity.not_before.timestamp();
    if now < not_before {
        return Err(CertError::NotYetValid { not_before, now });
    }
    let not_after = validity.not_after.timestamp();
    if now > not_after {
        return Err(CertError::Expired { not_after, now });
    }

    let (host_key, host_signature) = self::host_key(&cert)?;

    // RFC 5280 §4.1.1.2: the algorithm inside the signed part must be the outer one.
    if cert.tbs_certificate.signature != cert.signature_algorithm {
        return Err(CertError::Unparsable(
            "signatureAlgorithm differs from tbsCertificate.signature".into(),
        ));
    }
    let spki = &cert.tbs_certificate.subject_pki;
    let key_alg = der::spki_algorithm(spki.raw)
        .ok_or_else(|| CertError::Unparsable("subjectPublicKeyInfo".into()))?;
    let algorithm = select_algorithm(algorithms, key_alg, sig_alg)
        .ok_or(CertError::UnsupportedSignatureAlgorithm)?;
    if spki.subject_public_key.unused_bits != 0 || cert.signature_value.unused_bits != 0 {
        return Err(CertError::Unparsable(
            "bit string with unused bits in key or signature".into(),
        ));
    }
    algorithm
        .verify_signature(
            &spki.subject_public_key.data,
            cert.tbs_certificate.as_ref(),
            &cert.signature_value.data,
        )
        .map_err(|_| CertError::BadSelfSignature)?;

    let mut msg = Vec::with_capacity(SIGNING_PREFIX.len() + spki.raw.len());
    msg.extend_from_slice(SIGNING_PREFIX);
    msg.extend_from_slice(spki.raw);
    if !host_key.verify(&msg, host_signature) {
        return Err(CertError::BadHostKeySignature);
    }
    Ok(host_key)
}

/// Walk the extensions: reject duplicates, unknown critical ones and a key usage that forbids
/// signing; return the libp2p extension's value.
fn libp2p_extension<'a>(cert: &X509Certificate<'a>) -> Result<&'a [u8], CertError> {
    let extensions = cert.extensions();

    // Each OID at most once (RFC 5280 §4.2). Sorting keeps this O(n log n) for a hostile
    // certificate packed with tiny extensions.
    let mut oids: Vec<&[u8]> = extensions.iter().map(|e| e.oid.as_bytes()).collect();
    oids.sort_unstable();
    if let Some(pair) = oids.windows(2).find(|w| w[0] == w[1]) {
        if pair[0] == OID_LIBP2P {
            return Err(CertError::DuplicateExtension);
        }
        return Err(CertError::Unparsable(format!(
            "extension {} present more than once",
            oid_string(pair[0])
        )));
    }

    let mut value = None;
    for ext in extensions {
        match ext.oid.as_bytes() {
            OID_LIBP2P => value = Some(ext.value),
            // Understood: the key must be allowed to sign (it signs the TLS handshake).
            // nim-libp2p marks it critical.
            OID_KEY_USAGE => match KeyUsage::from_der(ext.value) {
                Ok((rest, usage)) if rest.is_empty() && usage.digital_signature() => {}
                _ => return Err(CertError::KeyUsage),
            },
            // Understood: a lone self-signed certificate is never used to verify another one, so
            // neither `cA` nor a path length constrains anything here; it must decode.
            OID_BASIC_CONSTRAINTS => match BasicConstraints::from_der(ext.value) {
                Ok(([], _)) => {}
                _ => {
                    return Err(CertError::Unparsable(
                        "basicConstraints does not decode".into(),
                    ));
                }
            },
            _ if ext.critical => {
                return Err(CertError::UnknownCriticalExtension(ext.oid.to_id_string()));
            }
            // Unknown and not critical: ignored, as the spec requires.
            _ => {}
        }
    }
    value.ok_or(CertError::ExtensionMissing)
}

/// A dotted OID for error messages (the raw bytes in hex if they do not decode).
fn oid_string(bytes: &[u8]) -> String {
    match x509_parser::der_parser::oid::Oid::new(bytes.into()).to_id_string() {
        s if !s.is_empty() => s,
        _ => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    }
}

/// The provider's algorithm for this (key algorithm, signature algorithm) pair, if the pair is
/// one we allow.
fn select_algorithm(
    algorithms: &WebPkiSupportedAlgorithms,
    key_alg: &[u8],
    sig_alg: &[u8],
) -> Option<&'static dyn SignatureVerificationAlgorithm> {
    let allowed = ALLOWED_ALGORITHMS
        .iter()
        .any(|(k, s)| k.as_ref() == key_alg && s.as_ref() == sig_alg);
    if !allowed {
        return None;
    }
    algorithms.all.iter().copied().find(|a| {
        a.public_key_alg_id().as_ref() == key_alg && a.signature_alg_id().as_ref() == sig_alg
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oid_constant_matches_the_dotted_form() {
        let oid = x509_parser::der_parser::oid::Oid::new(OID_LIBP2P.into());
        assert_eq!(oid.to_id_string(), "1.3.6.1.4.1.53594.1.1");
        let dotted: Vec<String> = EXTENSION_OID.iter().map(|n| n.to_string()).collect();
        assert_eq!(oid.to_id_string(), dotted.join("."));
        assert_eq!(oid_string(OID_KEY_USAGE), "2.5.29.15");
        assert_eq!(oid_string(OID_BASIC_CONSTRAINTS), "2.5.29.19");
    }

    #[test]
    fn every_allowed_pair_is_in_the_ring_provider() {
        for (k, s) in ALLOWED_ALGORITHMS {
            assert!(
                select_algorithm(&ALGORITHMS, k.as_ref(), s.as_ref()).is_some(),
                "{k:?} / {s:?}"
            );
        }
        // RSA is in ring's list but not allowed.
        assert!(
            select_algorithm(
                &ALGORITHMS,
                alg_id::RSA_ENCRYPTION.as_ref(),
                alg_id::RSA_PKCS1_SHA256.as_ref()
            )
            .is_none()
        );
    }

    #[test]
    fn generated_certificate_verifies_and_names_the_host() {
        for host in [Keypair::generate_ed25519(), Keypair::generate_secp256k1()] {
            let generated = generate(&host).unwrap();
            let key = verify_certificate(&generated.certificate, UnixTime::now()).unwrap();
            assert_eq!(key, host.public());
        }
    }
}
