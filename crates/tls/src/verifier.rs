//! The rustls verifiers: one type serves as the client's server-certificate verifier (with the
//! dialed peer id) and as the server's client-certificate verifier (mandatory client auth).

use plexus_identity::PeerId;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, SubjectPublicKeyInfoDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, PeerMisbehaved, SignatureScheme};

use crate::certificate;
use crate::error::CertError;

/// The TLS 1.3 CertificateVerify schemes we accept: those of the certificate keys we accept.
const TLS13_SCHEMES: &[SignatureScheme] = &[
    SignatureScheme::ECDSA_NISTP256_SHA256,
    SignatureScheme::ECDSA_NISTP384_SHA384,
    SignatureScheme::ED25519,
];

/// Verifies a remote's certificate by the libp2p rules instead of a CA chain.
#[derive(Debug)]
pub(crate) struct Libp2pCertVerifier {
    /// The dialed peer, checked on the client side when known.
    expected: Option<PeerId>,
    /// The provider's algorithms.
    algorithms: WebPkiSupportedAlgorithms,
}

impl Libp2pCertVerifier {
    pub(crate) fn new(expected: Option<PeerId>, algorithms: WebPkiSupportedAlgorithms) -> Self {
        Libp2pCertVerifier {
            expected,
            algorithms,
        }
    }

    /// The whole chain: exactly one certificate, valid by [`certificate::verify_with`], of the
    /// expected peer if one is known (set, or on the client side named by the server name).
    fn verify_chain(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: Option<&ServerName<'_>>,
        now: UnixTime,
    ) -> Result<(), CertError> {
        if !intermediates.is_empty() {
            return Err(CertError::TooManyCertificates(1 + intermediates.len()));
        }
        let key = certificate::verify_with(end_entity, now, &self.algorithms)?;
        let named = || match server_name? {
            ServerName::DnsName(name) => name.as_ref().parse::<PeerId>().ok(),
            _ => None,
        };
        if let Some(expected) = self.expected.or_else(named) {
            let actual = key.to_peer_id();
            if actual != expected {
                return Err(CertError::PeerIdMismatch { expected, actual });
            }
        }
        Ok(())
    }

    /// A TLS 1.3 CertificateVerify signature by the certificate's key.
    fn verify_tls13(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        if !TLS13_SCHEMES.contains(&dss.scheme) {
            return Err(PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme.into());
        }
        let spki = certificate::subject_public_key_info(cert).map_err(CertError::into_rustls)?;
        rustls::crypto::verify_tls13_signature_with_raw_key(
            message,
            &SubjectPublicKeyInfoDer::from(spki),
            dss,
            &self.algorithms,
        )
    }

    fn schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms
            .supported_schemes()
            .into_iter()
            .filter(|s| TLS13_SCHEMES.contains(s))
            .collect()
    }
}

/// The configs enable TLS 1.3 only; rustls never calls the TLS 1.2 hooks.
fn tls12_refused() -> rustls::Error {
    rustls::Error::General("libp2p TLS requires TLS 1.3".into())
}

impl ServerCertVerifier for Libp2pCertVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verify_chain(end_entity, intermediates, Some(server_name), now)
            .map_err(CertError::into_rustls)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}

impl ClientCertVerifier for Libp2pCertVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verify_chain(end_entity, intermediates, None, now)
            .map_err(CertError::into_rustls)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_tls13(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes()
    }
}
