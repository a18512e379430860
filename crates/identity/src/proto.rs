//! The key protobuf messages (`peer-ids.md`), hand-written for prost (proto2 semantics).
//!
//! ```proto
//! enum KeyType { RSA = 0; Ed25519 = 1; Secp256k1 = 2; ECDSA = 3; }
//! message PublicKey  { required KeyType Type = 1; required bytes Data = 2; }
//! message PrivateKey { required KeyType Type = 1; required bytes Data = 2; }
//! ```
//!
//! Both messages have the same shape, so one struct serves both. `Type` is an enum, which is a
//! plain varint on the wire; it is kept as `i32` so that unknown values reach our own typed error.

use prost::Message;
use zeroize::Zeroize;

use crate::error::DecodingError;

/// `PublicKey` or `PrivateKey`: `required KeyType Type = 1; required bytes Data = 2;`.
#[derive(Clone, PartialEq, Message)]
pub(crate) struct KeyMessage {
    /// The key type (protobuf enum value).
    #[prost(int32, required, tag = "1")]
    pub(crate) key_type: i32,
    /// The key data.
    #[prost(bytes = "vec", required, tag = "2")]
    pub(crate) data: Vec<u8>,
}

impl Drop for KeyMessage {
    fn drop(&mut self) {
        // Private key data passes through this struct; wipe it.
        self.data.zeroize();
    }
}

impl KeyMessage {
    /// Deterministic encoding: `08 <type varint> 12 <len varint> <data>`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// Decode, accepting only the canonical encoding (re-encoding must give back the input).
    ///
    /// This rejects, in one check, everything the spec's determinism rules forbid: missing or
    /// repeated fields, fields out of tag order, non-minimal varints, unknown fields and
    /// trailing bytes.
    pub(crate) fn decode_canonical(bytes: &[u8]) -> Result<Self, DecodingError> {
        let msg = KeyMessage::decode(bytes).map_err(|e| DecodingError::Protobuf(e.to_string()))?;
        let mut again = msg.encode();
        let canonical = again.as_slice() == bytes;
        again.zeroize();
        if canonical {
            Ok(msg)
        } else {
            Err(DecodingError::NonCanonical)
        }
    }
}
