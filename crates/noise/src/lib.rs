//! Noise XX security for libp2p (`/noise`), as specified in `libp2p/specs:noise/README.md`,
//! with inlined muxer negotiation (`connections/inlined-muxer-negotiation.md`).
//!
//! Layers, bottom up:
//!
//! - [`NoiseHandshakePayload`] / [`NoiseExtensions`]: the protobuf payload carried in
//!   handshake messages 2 and 3, decoded with [`PayloadLimits`] and verified with
//!   [`verify_payload`].
//! - [`NoiseHandshake`]: the sans-IO XX handshake (`Noise_XX_25519_ChaChaPoly_SHA256`,
//!   dialer = initiator). Bytes in, bytes out, no I/O.
//! - [`NoiseFramer`]: the sans-IO transport framer (ring's ChaCha20-Poly1305 in place on the
//!   handshake's keys, or snow's `TransportState` for the RustCrypto backend): splits
//!   plaintext into frames of at most [`MAX_PLAINTEXT_LEN`] bytes, each sent as a u16
//!   big-endian length and at most [`MAX_FRAME_LEN`] bytes of ciphertext.
//! - [`NoiseStream`]: a tokio `AsyncRead + AsyncWrite` over any byte stream, with bounded
//!   buffers.
//! - [`NoiseConfig`]: the [`plexus_core::SecurityUpgrade`] for `/noise`; its
//!   [`NoiseConfig::handshake`] runs the handshake on any tokio byte stream.
//!
//! Every failure is a [`NoiseError`] that knows who is to blame ([`NoiseError::blame`]).
#![forbid(unsafe_code)]

mod config;
mod error;
mod framer;
mod handshake;
mod payload;
mod stream;

pub use config::{CryptoBackend, NoiseConfig, NoiseOutput};
pub use error::NoiseError;
pub use framer::{NoiseFramer, frame_len, read_frame, write_frame};
pub use handshake::{HandshakeResult, NoiseHandshake, select_muxer};
pub use payload::{
    NoiseExtensions, NoiseHandshakePayload, PayloadLimits, RemoteIdentity, static_key_message,
    verify_payload,
};
pub use stream::{NoiseStream, READ_CHUNK};

/// The multistream protocol id of Noise.
pub const PROTOCOL_ID: &str = "/noise";

/// The Noise protocol name: pattern XX, X25519, ChaCha20-Poly1305, SHA-256.
pub const NOISE_PARAMS: &str = "Noise_XX_25519_ChaChaPoly_SHA256";

/// The length prefix of every frame: a big-endian u16.
pub const LEN_PREFIX_LEN: usize = 2;

/// Largest Noise message (handshake or transport) in bytes, excluding the length prefix.
/// Fixed by the Noise framework and the u16 length prefix.
pub const MAX_FRAME_LEN: usize = 65535;

/// The ChaCha20-Poly1305 authentication tag appended to every encrypted message.
pub const TAG_LEN: usize = 16;

/// Largest plaintext carried by one transport frame: [`MAX_FRAME_LEN`] − [`TAG_LEN`].
pub const MAX_PLAINTEXT_LEN: usize = MAX_FRAME_LEN - TAG_LEN;

/// Length of an X25519 public key (the Noise static and ephemeral keys).
pub const DH_LEN: usize = 32;

/// The domain prefix of the identity signature over the Noise static key.
pub const STATIC_KEY_DOMAIN: &[u8] = b"noise-libp2p-static-key:";
