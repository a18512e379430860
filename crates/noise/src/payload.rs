//! The libp2p handshake payload: protobuf messages, bounded decoding, signature verification.

use plexus_core::wire::{Fields, WireError};
use plexus_identity::{DecodingError, PeerId, PublicKey};
use prost::Message;

use crate::{DH_LEN, NoiseError, STATIC_KEY_DOMAIN};

/// Noise extensions (`NoiseExtensions`, proto2), carried in handshake messages 2 and 3.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct NoiseExtensions {
    /// WebTransport certificate hashes (multihashes). Unused on TCP; decoded and bounded.
    #[prost(bytes = "vec", repeated, tag = "1")]
    pub webtransport_certhashes: Vec<Vec<u8>>,
    /// Stream muxer protocol ids in preference order (inlined muxer negotiation).
    #[prost(string, repeated, tag = "2")]
    pub stream_muxers: Vec<String>,
}

/// The libp2p handshake payload (`NoiseHandshakePayload`, proto2).
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct NoiseHandshakePayload {
    /// The sender's identity key, as a libp2p `PublicKey` protobuf.
    #[prost(bytes = "vec", optional, tag = "1")]
    pub identity_key: Option<Vec<u8>>,
    /// The identity key's signature over [`static_key_message`] of the sender's Noise static key.
    #[prost(bytes = "vec", optional, tag = "2")]
    pub identity_sig: Option<Vec<u8>>,
    /// Extensions (early data).
    #[prost(message, optional, tag = "4")]
    pub extensions: Option<NoiseExtensions>,
}

/// Bounds on a decoded handshake payload, beyond the 65535-byte Noise message that carries it.
///
/// They cap the number of decoded entries (a 64 KiB payload of empty strings would otherwise
/// become thousands of heap objects) and keep strings to sizes real protocol ids have. They are
/// checked on the wire bytes before any entry is allocated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadLimits {
    /// Most stream muxer ids in one payload. Default 16 (real nodes list one to three).
    pub max_muxers: usize,
    /// Longest stream muxer id in bytes. Default 256 (`/yamux/1.0.0` is 12; multistream ids
    /// are short path-like strings).
    pub max_muxer_len: usize,
    /// Most WebTransport certificate hashes. Default 16 (WebTransport nodes send one or two).
    pub max_certhashes: usize,
    /// Longest WebTransport certificate hash in bytes. Default 128 (a sha2-256 multihash is
    /// 34 bytes, sha2-512 66).
    pub max_certhash_len: usize,
}

impl Default for PayloadLimits {
    fn default() -> Self {
        PayloadLimits {
            max_muxers: 16,
            max_muxer_len: 256,
            max_certhashes: 16,
            max_certhash_len: 128,
        }
    }
}

impl NoiseHandshakePayload {
    /// Decode a payload, rejecting anything over `limits` before allocating its entries.
    ///
    /// # Errors
    /// [`NoiseError::MalformedPayload`] for broken protobuf framing (including groups, which no
    /// libp2p implementation sends), [`NoiseError::PayloadLimit`] over a limit,
    /// [`NoiseError::InvalidPayload`] for anything else prost rejects (bad UTF-8, wrong wire
    /// type for a known field).
    pub fn decode_bounded(bytes: &[u8], limits: &PayloadLimits) -> Result<Self, NoiseError> {
        prescan(bytes, limits)?;
        let payload = NoiseHandshakePayload::decode(bytes)?;
        payload.check_limits(limits)?;
        Ok(payload)
    }

    /// The protobuf encoding (as `prost::Message::encode_to_vec`, without needing prost).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.encode_to_vec()
    }

    /// Check a decoded payload against `limits`.
    ///
    /// # Errors
    /// [`NoiseError::PayloadLimit`] naming the first limit exceeded.
    pub fn check_limits(&self, limits: &PayloadLimits) -> Result<(), NoiseError> {
        let Some(ext) = &self.extensions else {
            return Ok(());
        };
        if ext.stream_muxers.len() > limits.max_muxers {
            return Err(NoiseError::PayloadLimit {
                what: "stream muxer count",
                limit: limits.max_muxers,
            });
        }
        if ext
            .stream_muxers
            .iter()
            .any(|m| m.len() > limits.max_muxer_len)
        {
            return Err(NoiseError::PayloadLimit {
                what: "stream muxer length",
                limit: limits.max_muxer_len,
            });
        }
        if ext.webtransport_certhashes.len() > limits.max_certhashes {
            return Err(NoiseError::PayloadLimit {
                what: "certhash count",
                limit: limits.max_certhashes,
            });
        }
        if ext
            .webtransport_certhashes
            .iter()
            .any(|h| h.len() > limits.max_certhash_len)
        {
            return Err(NoiseError::PayloadLimit {
                what: "certhash length",
                limit: limits.max_certhash_len,
            });
        }
        Ok(())
    }

    /// The stream muxers listed in the payload (empty when there are no extensions).
    pub fn stream_muxers(&self) -> &[String] {
        self.extensions.as_ref().map_or(&[], |e| &e.stream_muxers)
    }
}

/// The remote identity proven by a verified handshake payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteIdentity {
    /// The remote's identity key.
    pub public_key: PublicKey,
    /// Its peer id.
    pub peer: PeerId,
}

/// The message an identity key signs: `"noise-libp2p-static-key:" ‖ static_key` (56 bytes).
pub fn static_key_message(static_key: &[u8; DH_LEN]) -> [u8; STATIC_KEY_DOMAIN.len() + DH_LEN] {
    let mut msg = [0u8; STATIC_KEY_DOMAIN.len() + DH_LEN];
    msg[..STATIC_KEY_DOMAIN.len()].copy_from_slice(STATIC_KEY_DOMAIN);
    msg[STATIC_KEY_DOMAIN.len()..].copy_from_slice(static_key);
    msg
}

/// Verify a payload against the remote's Noise static key as learned in the handshake: decode
/// its identity key, check the signature over [`static_key_message`], derive the peer id.
///
/// # Errors
/// [`NoiseError::MissingIdentityKey`], [`NoiseError::MissingSignature`],
/// [`NoiseError::UnsupportedKey`] (RSA, ECDSA, unknown key types: the peer is incompatible),
/// [`NoiseError::InvalidKey`], [`NoiseError::BadSignature`].
pub fn verify_payload(
    payload: &NoiseHandshakePayload,
    remote_static: &[u8; DH_LEN],
) -> Result<RemoteIdentity, NoiseError> {
    let key_bytes = payload
        .identity_key
        .as_deref()
        .ok_or(NoiseError::MissingIdentityKey)?;
    let public_key = PublicKey::try_decode_protobuf(key_bytes).map_err(|e| match e {
        DecodingError::UnsupportedKeyType { .. } | DecodingError::UnknownKeyType(_) => {
            NoiseError::UnsupportedKey(e)
        }
        other => NoiseError::InvalidKey(other),
    })?;
    let sig = payload
        .identity_sig
        .as_deref()
        .ok_or(NoiseError::MissingSignature)?;
    if !public_key.verify(&static_key_message(remote_static), sig) {
        return Err(NoiseError::BadSignature);
    }
    let peer = public_key.to_peer_id();
    Ok(RemoteIdentity { public_key, peer })
}

/// Walk the protobuf wire format of a payload without allocating, counting the repeated
/// extension entries and checking their lengths against `limits`.
fn prescan(bytes: &[u8], limits: &PayloadLimits) -> Result<(), NoiseError> {
    let mut muxers = 0usize;
    let mut certhashes = 0usize;
    for f in Fields::new(bytes) {
        let (field, body) = f.map_err(malformed)?;
        // Field 4 may repeat; protobuf merges the occurrences, so the counts add up.
        if field == 4
            && let Some(ext) = body
        {
            for f in Fields::new(ext) {
                match f.map_err(malformed)? {
                    (1, Some(hash)) => {
                        certhashes += 1;
                        if certhashes > limits.max_certhashes {
                            return Err(NoiseError::PayloadLimit {
                                what: "certhash count",
                                limit: limits.max_certhashes,
                            });
                        }
                        if hash.len() > limits.max_certhash_len {
                            return Err(NoiseError::PayloadLimit {
                                what: "certhash length",
                                limit: limits.max_certhash_len,
                            });
                        }
                    }
                    (2, Some(muxer)) => {
                        muxers += 1;
                        if muxers > limits.max_muxers {
                            return Err(NoiseError::PayloadLimit {
                                what: "stream muxer count",
                                limit: limits.max_muxers,
                            });
                        }
                        if muxer.len() > limits.max_muxer_len {
                            return Err(NoiseError::PayloadLimit {
                                what: "stream muxer length",
                                limit: limits.max_muxer_len,
                            });
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(())
}

fn malformed(e: WireError) -> NoiseError {
    NoiseError::MalformedPayload(e.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload_with_muxers(muxers: Vec<String>) -> Vec<u8> {
        NoiseHandshakePayload {
            identity_key: Some(vec![1, 2, 3]),
            identity_sig: Some(vec![4, 5]),
            extensions: Some(NoiseExtensions {
                webtransport_certhashes: vec![],
                stream_muxers: muxers,
            }),
        }
        .encode_to_vec()
    }

    #[test]
    fn muxer_count_limit_is_enforced_on_the_wire() {
        let limits = PayloadLimits::default();
        let ok = payload_with_muxers(vec!["/m".into(); limits.max_muxers]);
        assert_eq!(
            NoiseHandshakePayload::decode_bounded(&ok, &limits)
                .unwrap()
                .stream_muxers()
                .len(),
            limits.max_muxers
        );
        let over = payload_with_muxers(vec!["/m".into(); limits.max_muxers + 1]);
        let err = NoiseHandshakePayload::decode_bounded(&over, &limits).unwrap_err();
        assert!(
            matches!(
                err,
                NoiseError::PayloadLimit {
                    what: "stream muxer count",
                    ..
                }
            ),
            "{err}"
        );
        // Split across two extension fields (protobuf merges them): still counted together.
        let mut split = payload_with_muxers(vec!["/m".into(); limits.max_muxers]);
        split.extend(
            NoiseHandshakePayload {
                extensions: Some(NoiseExtensions {
                    webtransport_certhashes: vec![],
                    stream_muxers: vec!["/x".into()],
                }),
                ..Default::default()
            }
            .encode_to_vec(),
        );
        assert_eq!(
            NoiseHandshakePayload::decode(&split[..])
                .unwrap()
                .stream_muxers()
                .len(),
            limits.max_muxers + 1
        );
        assert!(matches!(
            NoiseHandshakePayload::decode_bounded(&split, &limits),
            Err(NoiseError::PayloadLimit {
                what: "stream muxer count",
                ..
            })
        ));
    }

    #[test]
    fn long_muxer_and_certhash_limits() {
        let limits = PayloadLimits::default();
        let long = payload_with_muxers(vec!["m".repeat(limits.max_muxer_len + 1)]);
        assert!(matches!(
            NoiseHandshakePayload::decode_bounded(&long, &limits),
            Err(NoiseError::PayloadLimit {
                what: "stream muxer length",
                ..
            })
        ));
        let hashes = NoiseHandshakePayload {
            extensions: Some(NoiseExtensions {
                webtransport_certhashes: vec![vec![0; limits.max_certhash_len + 1]],
                stream_muxers: vec![],
            }),
            ..Default::default()
        }
        .encode_to_vec();
        assert!(matches!(
            NoiseHandshakePayload::decode_bounded(&hashes, &limits),
            Err(NoiseError::PayloadLimit {
                what: "certhash length",
                ..
            })
        ));
        let many = NoiseHandshakePayload {
            extensions: Some(NoiseExtensions {
                webtransport_certhashes: vec![vec![0; 34]; limits.max_certhashes + 1],
                stream_muxers: vec![],
            }),
            ..Default::default()
        }
        .encode_to_vec();
        assert!(matches!(
            NoiseHandshakePayload::decode_bounded(&many, &limits),
            Err(NoiseError::PayloadLimit {
                what: "certhash count",
                ..
            })
        ));
    }

    #[test]
    fn wire_level_garbage_is_rejected() {
        let limits = PayloadLimits::default();
        // Truncated length-delimited field.
        assert!(matches!(
            NoiseHandshakePayload::decode_bounded(&[0x0a, 0x05, 1, 2], &limits),
            Err(NoiseError::MalformedPayload(_))
        ));
        // Group wire type.
        assert!(matches!(
            NoiseHandshakePayload::decode_bounded(&[0x0b], &limits),
            Err(NoiseError::MalformedPayload(_))
        ));
        // Eleven-byte varint.
        assert!(matches!(
            NoiseHandshakePayload::decode_bounded(&[0xff; 11], &limits),
            Err(NoiseError::MalformedPayload(_))
        ));
        // Invalid UTF-8 in a muxer id: prost rejects it.
        assert!(matches!(
            NoiseHandshakePayload::decode_bounded(&[0x22, 0x03, 0x12, 0x01, 0xff], &limits),
            Err(NoiseError::InvalidPayload(_))
        ));
        // Unknown fields are ignored.
        let p = NoiseHandshakePayload::decode_bounded(&[0x28, 0x01, 0x0a, 0x01, 0x07], &limits)
            .unwrap();
        assert_eq!(p.identity_key, Some(vec![7]));
    }

    #[test]
    fn static_key_message_layout() {
        let msg = static_key_message(&[0xab; 32]);
        assert_eq!(&msg[..24], b"noise-libp2p-static-key:");
        assert_eq!(&msg[24..], &[0xab; 32]);
    }
}
