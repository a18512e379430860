//! Keys and peer identities for plexus.
//!
//! This crate implements the subset of `libp2p/specs:peer-ids/peer-ids.md` that an Ethereum
//! consensus client needs:
//!
//! - [`Keypair`] / [`PublicKey`] for **secp256k1** (the Ethereum node key, shared with discv5/ENR)
//!   and **ed25519** (the libp2p default). RSA and ECDSA keys decode to a typed
//!   [`DecodingError::UnsupportedKeyType`] error.
//! - The deterministic key protobuf (`PublicKey` / `PrivateKey` messages, proto2). Decoding is
//!   strict: the input must be exactly the canonical encoding of the key it carries.
//! - [`PeerId`], the multihash of the encoded public key, stored inline (it is `Copy`), with its
//!   legacy base58btc and CIDv1 string forms.
#![forbid(unsafe_code)]

mod error;
mod keys;
mod peer_id;
mod proto;

pub use error::{DecodingError, KeyFileError, ParseError};
pub use keys::{KeyType, Keypair, PublicKey};
pub use peer_id::{
    MAX_INLINE_KEY_LENGTH, MAX_MULTIHASH_LENGTH, MAX_PEER_ID_STRING_LENGTH, MULTICODEC_LIBP2P_KEY,
    MULTIHASH_IDENTITY, MULTIHASH_SHA2_256, PeerId,
};
