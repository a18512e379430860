//! [`TlsConfig`]: our certificate and the rustls configs built around it.

use std::fmt;
use std::sync::Arc;

use plexus_identity::{Keypair, PeerId};
use rustls::client::Resumption;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
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
    /// The dialing config without a fixed expected peer (it reads one from the server name):
    /// built once and shared by every dial.
    client: Arc<ClientConfig>,
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
        let provider = Arc::new(provider());
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
        // Our preference (AES-128-GCM first) over the client's.
        server.ignore_client_order = true;
        server.session_storage = Arc::new(NoServerSessionStorage {});
        server.send_tls13_tickets = 0;

        let client = build_client_config(&provider, &certified_key, None);
        TlsConfig {
            inner: Arc::new(Inner {
                local_peer_id: keypair.public().to_peer_id(),
                certificate: generated.certificate,
                certified_key,
                provider,
                server: Arc::new(server),
                client,
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
    ///
    /// Without `expected` the same `Arc` is returned every call, and it still checks a peer:
    /// the one named by the server name, when that is a peer id (see [`server_name_for`]).
    /// Sharing one config saves building one per dial and the memory each connection would
    /// keep of it.
    pub fn client_config(&self, expected: Option<PeerId>) -> Arc<ClientConfig> {
        match expected {
            None => self.inner.client.clone(),
            Some(_) => {
                build_client_config(&self.inner.provider, &self.inner.certified_key, expected)
            }
        }
    }
}

/// The server name that makes the shared dialing config (`client_config(None)`) check that the
/// server is `expected`: the peer id itself. It never reaches the wire (no SNI). `None` when
/// the peer id is not a valid DNS name (longer than a 63-byte label); then dial with
/// `client_config(Some(expected))` and [`SERVER_NAME`].
pub fn server_name_for(expected: &PeerId) -> Option<String> {
    let name = expected.to_string();
    (name.len() <= 63 && ServerName::try_from(name.as_str()).is_ok()).then_some(name)
}

/// The ring provider with the TLS 1.3 suites in our order: AES-128-GCM first (as Go's TLS and
/// so go-libp2p choose on AES hardware), then AES-256-GCM, then ChaCha20-Poly1305. ring's
/// default puts AES-256 first; AES-128 runs 10 rounds instead of 14, which shows in QUIC,
/// where every packet is sealed and opened with the negotiated suite.
fn provider() -> CryptoProvider {
    use rustls::crypto::ring::cipher_suite as suite;
    CryptoProvider {
        cipher_suites: vec![
            suite::TLS13_AES_128_GCM_SHA256,
            suite::TLS13_AES_256_GCM_SHA384,
            suite::TLS13_CHACHA20_POLY1305_SHA256,
        ],
        ..rustls::crypto::ring::default_provider()
    }
}

fn build_client_config(
    provider: &Arc<CryptoProvider>,
    certified_key: &Arc<CertifiedKey>,
    expected: Option<PeerId>,
) -> Arc<ClientConfig> {
    let verifier = Arc::new(Libp2pCertVerifier::new(
        expected,
        provider.signature_verification_algorithms,
    ));
    let mut client = ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("the ring provider supports TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified_key.clone())));
    client.alpn_protocols = vec![ALPN.to_vec()];
    client.enable_sni = false;
    client.resumption = Resumption::disabled();
    Arc::new(client)
}
