//! The libp2p TLS 1.3 handshake (`libp2p/specs: tls/tls.md`) for rustls.
//!
//! - [`TlsConfig`] generates a self-signed certificate with a fresh ECDSA P-256 key that
//!   carries the libp2p Public Key Extension (OID `1.3.6.1.4.1.53594.1.1`: the host key's
//!   protobuf and its signature over `libp2p-tls-handshake:` ‖ the certificate's
//!   SubjectPublicKeyInfo), and builds rustls client and server configs around it: TLS 1.3
//!   only, the ring provider passed explicitly, ALPN `libp2p`, client authentication required,
//!   no SNI, no resumption.
//! - Both configs verify the remote's certificate by the libp2p rules instead of a CA chain
//!   ([`verify_certificate`] lists them), and TLS 1.3 CertificateVerify signatures with the
//!   provider's algorithms (ECDSA P-256/P-384, Ed25519). The client checks the remote's peer id
//!   against the dialed one.
//! - After the handshake, [`peer_id_of`] / [`public_key_of`] give the remote's identity from
//!   rustls' `peer_certificates()`; [`cert_error`] finds the typed [`CertError`] inside a
//!   rustls error.
//!
//! Host keys are those `plexus-identity` implements (ed25519, secp256k1); a certificate
//! carrying an RSA or ECDSA host key is refused with [`CertError::UnsupportedKeyType`].
#![forbid(unsafe_code)]

mod certificate;
mod config;
mod der;
mod error;
mod verifier;

pub use certificate::{
    EXTENSION_OID, SIGNING_PREFIX, peer_id_of, public_key_of, public_key_of_accepted,
    verify_certificate,
};
pub use config::{ALPN, SERVER_NAME, TlsConfig, server_name_for};
pub use error::{CertError, cert_error};
/// The rustls this crate builds its configs with (0.23, ring provider), for callers that name
/// its types (`CertificateDer`, `UnixTime`, connections).
pub use rustls;
