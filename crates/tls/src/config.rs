//! [`TlsConfig`]: our certificate and the rustls configs built around it.

use std::fmt;
use std::sync::Arc;

use plexus_identity::{Keypair, PeerId};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::NoServerSessionStorage;
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{ClientConfig, ServerConfig};

use crate::certificate;
use crate::verifier::Libp2pCertVerifier;

/// The ALPN protocol id of the libp2p TLS handshake.
pub const ALPN: &[u8] = b"libp2p";

/// A server name for rustls' `ClientConnection::new` (and quinn's `connect`). It never reaches
/// the wire (the client config disables SNI, as the spec requires) and the verifier ignores it.
pub const SERVER_NAME: &str = "libp2p";

/// Our side of the libp2p TLS handshake: a fresh self-signed certificate carrying the host key,
/// and the rustls client and server configs that present it and verify the remote's.
///
/// Both configs: TLS 1.3 only, the ring provider passed explicitly (never the process default),
/// ALPN `libp2p`, no session resumption (every handshake verifies the certificates), no SNI
/// sent. The server requires a client certificate.
///
/// Cloning is cheap (one `Arc`).
#[derive(Clone)]
pub struct TlsConfig {
    inner: Arc<Inner>,
}

struct Inner {
    local_peer_id: PeerId,
    certificate: CertificateDer<'static>,
    certified_key: Arc<CertifiedKey>,
    provider: Arc<CryptoProvider>,
    server: Arc<ServerConfig>,
}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("local_peer_id", &self.inner.local_peer_id)
            .finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Generate a certificate with a fresh ECDSA P-256 key for `keypair` (the host key) and build
    /// the configs.
    ///
    /// # Panics
    /// Only if the operating system's random number generator fails.
    pub fn new(keypair: &Keypair) -> TlsConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let generated = certificate::generate(keypair)
            .expect("generating a P-256 key and certificate fails only without an OS RNG");
        let signing_key = provider
            .key_provider
            .load_private_key(PrivateKeyDer::Pkcs8(generated.key))
            .expect("ring loads the PKCS#8 P-256 key rcgen made");
        let certified_key = Arc::new(CertifiedKey::new(
            vec![generated.certificate.clone()],
            signing_key,
        ));

        let verifier = Arc::new(Libp2pCertVerifier::new(
            None,
            provider.signature_verification_algorithms,
        ));
        let mut server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("the ring provider supports TLS 1.3")
            .with_client_cert_verifier(verifier)
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(certified_key.clone())));
        server.alpn_protocols = vec![ALPN.to_vec()];
        server.session_storage = Arc::new(NoServerSessionStorage {});
        server.send_tls13_tickets = 0;

        TlsConfig {
            inner: Arc::new(Inner {
                local_peer_id: keypair.public().to_peer_id(),
                certificate: generated.certificate,
                certified_key,
                provider,
                server: Arc::new(server),
            }),
        }
    }

    /// Our peer id (the one the certificate authenticates).
    pub fn local_peer_id(&self) -> PeerId {
        self.inner.local_peer_id
    }

    /// Our certificate (DER).
    pub fn certificate(&self) -> &CertificateDer<'static> {
        &self.inner.certificate
    }

    /// The config for accepting: presents our certificate, requires the client's and verifies
    /// it by the libp2p rules. The same `Arc` every call.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.inner.server.clone()
    }

    /// The config for dialing: presents our certificate and verifies the server's by the
    /// libp2p rules; with `expected`, a server authenticating as another peer fails the
    /// handshake with [`crate::CertError::PeerIdMismatch`]. Connect with [`SERVER_NAME`].
    pub fn client_config(&self, expected: Option<PeerId>) -> Arc<ClientConfig> {
        let verifier = Arc::new(Libp2pCertVerifier::new(
            expected,
            self.inner.provider.signature_verification_algorithms,
        ));
        let mut client = ClientConfig::builder_with_provider(self.inner.provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .expect("the ring provider supports TLS 1.3")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(
                self.inner.certified_key.clone(),
            )));
        client.alpn_protocols = vec![ALPN.to_vec()];
        client.enable_sni = false;
        client.resumption = Resumption::disabled();
        Arc::new(client)
    }
}
