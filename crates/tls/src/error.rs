//! What can be wrong with a remote's certificate, and who is to blame.

use std::sync::Arc;

use plexus_core::{Blame, SecurityError};
use plexus_identity::{DecodingError, PeerId};

/// Why a remote's certificate (chain) was refused.
///
/// Inside a rustls handshake it travels as
/// `rustls::Error::InvalidCertificate(CertificateError::Other(..))`; [`cert_error`] gets it
/// back out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The remote presented no certificate.
    #[error("no certificate")]
    NoCertificate,
    /// The remote presented a chain: exactly one self-signed certificate is allowed.
    #[error("{0} certificates presented, exactly one is allowed")]
    TooManyCertificates(usize),
    /// The bytes are not one DER X.509 certificate (or its structure is inconsistent).
    #[error("unparsable certificate: {0}")]
    Unparsable(String),
    /// `notBefore` is after now.
    #[error("certificate not valid yet (notBefore {not_before}, now {now}, unix seconds)")]
    NotYetValid {
        /// `notBefore`, unix seconds.
        not_before: i64,
        /// Our clock, unix seconds.
        now: i64,
    },
    /// `notAfter` is before now.
    #[error("certificate expired (notAfter {not_after}, now {now}, unix seconds)")]
    Expired {
        /// `notAfter`, unix seconds.
        not_after: i64,
        /// Our clock, unix seconds.
        now: i64,
    },
    /// The certificate's key or signature algorithm is not one we verify (ECDSA P-256/P-384
    /// with SHA-256/SHA-384, Ed25519).
    #[error("unsupported certificate signature algorithm")]
    UnsupportedSignatureAlgorithm,
    /// The certificate's signature does not verify with its own public key.
    #[error("certificate self-signature does not verify")]
    BadSelfSignature,
    /// The certificate has no libp2p public key extension.
    #[error("libp2p public key extension missing")]
    ExtensionMissing,
    /// The libp2p public key extension appears more than once.
    #[error("libp2p public key extension present more than once")]
    DuplicateExtension,
    /// A critical extension we do not understand (its OID, dotted).
    #[error("unknown critical extension {0}")]
    UnknownCriticalExtension(String),
    /// A key usage extension that does not allow the certificate key to sign (`digitalSignature`
    /// missing), or that does not decode.
    #[error("key usage extension forbids digital signatures or is malformed")]
    KeyUsage,
    /// The libp2p extension's value is not a DER `SignedKey`.
    #[error("libp2p extension is not a DER SignedKey")]
    BadExtensionEncoding,
    /// The host key in the extension is of a type plexus does not implement (RSA, ECDSA,
    /// unknown).
    #[error("unsupported host key type: {0}")]
    UnsupportedKeyType(DecodingError),
    /// The host key in the extension does not decode (bad length, not a curve point,
    /// non-canonical protobuf).
    #[error("invalid host key: {0}")]
    InvalidHostKey(DecodingError),
    /// The host key's signature over `libp2p-tls-handshake:` ‖ SubjectPublicKeyInfo does not
    /// verify.
    #[error("host key signature over the certificate key does not verify")]
    BadHostKeySignature,
    /// The remote is a valid peer, but not the one we dialed.
    #[error("peer id mismatch: dialed {expected}, remote is {actual}")]
    PeerIdMismatch {
        /// The peer we dialed.
        expected: PeerId,
        /// The peer the certificate authenticates.
        actual: PeerId,
    },
}

impl CertError {
    /// Who is to blame: a broken or forged certificate is the peer's misbehaviour; a key type or
    /// algorithm we do not implement, another peer than the dialed one, or a validity period
    /// that does not cover our clock (either clock may be wrong) is incompatibility.
    pub fn blame(&self) -> Blame {
        match self {
            CertError::NoCertificate
            | CertError::TooManyCertificates(_)
            | CertError::Unparsable(_)
            | CertError::BadSelfSignature
            | CertError::ExtensionMissing
            | CertError::DuplicateExtension
            | CertError::KeyUsage
            | CertError::BadExtensionEncoding
            | CertError::InvalidHostKey(_)
            | CertError::BadHostKeySignature => Blame::PeerMisbehaved,
            CertError::UnsupportedSignatureAlgorithm
            | CertError::UnknownCriticalExtension(_)
            | CertError::UnsupportedKeyType(_)
            | CertError::PeerIdMismatch { .. }
            | CertError::NotYetValid { .. }
            | CertError::Expired { .. } => Blame::PeerIncompatible,
        }
    }

    /// The rustls error a verifier returns for this refusal.
    pub(crate) fn into_rustls(self) -> rustls::Error {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
            Arc::new(self),
        )))
    }
}

/// The [`CertError`] inside a rustls error, if a plexus verifier produced it.
///
/// Works on the error the *verifying* side's `process_new_packets` returns; the other side only
/// sees the TLS alert (`AlertReceived(BadCertificate)`).
pub fn cert_error(err: &rustls::Error) -> Option<&CertError> {
    match err {
        rustls::Error::InvalidCertificate(rustls::CertificateError::Other(other)) => {
            other.0.downcast_ref::<CertError>()
        }
        _ => None,
    }
}

impl From<CertError> for SecurityError {
    fn from(e: CertError) -> SecurityError {
        match e {
            CertError::PeerIdMismatch { expected, actual } => {
                SecurityError::PeerIdMismatch { expected, actual }
            }
            other => SecurityError::Failed {
                blame: other.blame(),
                source: Box::new(other),
            },
        }
    }
}
