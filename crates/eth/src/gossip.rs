//! Gossip encoding (`ssz_snappy`: SSZ, then snappy **block** compression) and the gossipsub
//! message-id functions of phase 0 and Altair.
//!
//! Decoding reads the uncompressed length the snappy block declares in its preamble and checks
//! it against the topic's maximum before allocating or decompressing anything; the output
//! buffer is exactly the declared length, so a block that would expand past it fails inside
//! the decompressor.

use sha2::{Digest, Sha256};

use crate::config::DEFAULT_MAX_PAYLOAD_SIZE;
use crate::fork::ForkSchedule;
use crate::topic::{GossipTopic, max_compressed_len};
use crate::types::Fork;

/// A gossipsub message id: 20 bytes.
pub type MessageId = [u8; 20];

/// `MESSAGE_DOMAIN_VALID_SNAPPY` (the spec's value; configs may not change it in practice).
pub const MESSAGE_DOMAIN_VALID_SNAPPY: [u8; 4] = [1, 0, 0, 0];
/// `MESSAGE_DOMAIN_INVALID_SNAPPY`.
pub const MESSAGE_DOMAIN_INVALID_SNAPPY: [u8; 4] = [0, 0, 0, 0];

/// A gossip payload could not be decoded or encoded. Blame when decoding: the peer that sent
/// it (`PeerMisbehaved`; the message is REJECTed). When encoding: local (we must not publish it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GossipError {
    /// The compressed data is longer than `max_compressed_len(max)` for the topic's maximum.
    #[error(
        "compressed payload is {len} bytes, more than the {max} a {limit}-byte payload can take"
    )]
    CompressedTooLarge {
        /// Compressed length.
        len: usize,
        /// `max_compressed_len(limit)`.
        max: u64,
        /// The uncompressed limit.
        limit: u64,
    },
    /// The snappy preamble (uncompressed length varint) is missing or malformed.
    #[error("snappy block header is invalid")]
    BadHeader,
    /// The declared uncompressed length is above the topic's maximum (checked before
    /// decompressing).
    #[error("declared uncompressed length {declared} exceeds the limit {limit}")]
    TooLarge {
        /// Declared (or, when encoding, actual) uncompressed length.
        declared: u64,
        /// The topic's maximum.
        limit: u64,
    },
    /// The snappy body is invalid or does not produce exactly the declared length.
    #[error("snappy block is invalid: {0}")]
    BadSnappy(String),
}

/// Bound on snappy's expansion ratio (the densest element, a 3-byte copy, yields 64 bytes).
const MAX_EXPANSION: u64 = 22;

/// The uncompressed length a snappy block declares in its preamble (a varint of at most 5
/// bytes, below 2^32), without decompressing.
pub fn declared_len(data: &[u8]) -> Result<u64, GossipError> {
    if data.is_empty() {
        return Err(GossipError::BadHeader);
    }
    snap::raw::decompress_len(data)
        .map(|n| n as u64)
        .map_err(|_| GossipError::BadHeader)
}

/// Decompress a gossip `Message.data` whose uncompressed payload may be at most
/// `max_uncompressed` bytes (use [`crate::GossipKind::max_uncompressed_len`] or
/// [`crate::ResolvedTopic::max_uncompressed_len`]).
///
/// Order of checks: compressed length ≤ `max_compressed_len(max_uncompressed)`; the declared
/// length ≤ `max_uncompressed` (from the preamble, before allocating) and ≤ what the block's
/// size can expand to (22 × its length: a snappy element yields at most 64 bytes per 3); then
/// decompression into a buffer of exactly the declared length, which must be filled exactly.
pub fn decode_gossip(data: &[u8], max_uncompressed: u64) -> Result<Vec<u8>, GossipError> {
    let max_compressed = max_compressed_len(max_uncompressed);
    if data.len() as u64 > max_compressed {
        return Err(GossipError::CompressedTooLarge {
            len: data.len(),
            max: max_compressed,
            limit: max_uncompressed,
        });
    }
    let declared = declared_len(data)?;
    if declared > max_uncompressed {
        return Err(GossipError::TooLarge {
            declared,
            limit: max_uncompressed,
        });
    }
    // A snappy element yields at most 64 bytes per 3 input bytes (a 2-byte-offset copy), so a
    // block declaring more than that cannot be valid: refuse it without allocating.
    let possible = (data.len() as u64)
        .saturating_mul(MAX_EXPANSION)
        .saturating_add(64);
    if declared > possible {
        return Err(GossipError::BadSnappy(format!(
            "{} bytes cannot expand to the declared {declared}",
            data.len()
        )));
    }
    let len = usize::try_from(declared).map_err(|_| GossipError::TooLarge {
        declared,
        limit: max_uncompressed,
    })?;
    let mut out = vec![0u8; len];
    let n = snap::raw::Decoder::new()
        .decompress(data, &mut out)
        .map_err(|e| GossipError::BadSnappy(e.to_string()))?;
    if n != len {
        return Err(GossipError::BadSnappy(format!(
            "produced {n} bytes, declared {len}"
        )));
    }
    Ok(out)
}

/// Compress an SSZ payload for publishing. Refuses payloads over `max_uncompressed` (the spec
/// forbids emitting them).
pub fn encode_gossip(ssz: &[u8], max_uncompressed: u64) -> Result<Vec<u8>, GossipError> {
    if ssz.len() as u64 > max_uncompressed {
        return Err(GossipError::TooLarge {
            declared: ssz.len() as u64,
            limit: max_uncompressed,
        });
    }
    snap::raw::Encoder::new()
        .compress_vec(ssz)
        .map_err(|e| GossipError::BadSnappy(e.to_string()))
}

fn id_of(parts: &[&[u8]]) -> MessageId {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    let digest: [u8; 32] = h.finalize().into();
    let mut id = [0u8; 20];
    id.copy_from_slice(&digest[..20]);
    id
}

/// The message domains (valid, invalid snappy).
type Domains = ([u8; 4], [u8; 4]);
/// The spec's message domains.
const SPEC_DOMAINS: Domains = (MESSAGE_DOMAIN_VALID_SNAPPY, MESSAGE_DOMAIN_INVALID_SNAPPY);

/// The message id for `fork`'s rules, given the decompressed payload if `data` decompressed.
fn id_for(
    topic: &str,
    data: &[u8],
    decompressed: Option<&[u8]>,
    fork: Fork,
    (valid, invalid): Domains,
) -> MessageId {
    let (domain, payload) = match decompressed {
        Some(p) => (valid, p),
        None => (invalid, data),
    };
    if fork == Fork::Phase0 {
        id_of(&[&domain, payload])
    } else {
        let len = (topic.len() as u64).to_le_bytes();
        id_of(&[&domain, &len, topic.as_bytes(), payload])
    }
}

/// The gossipsub message id of `data` on `topic` under `fork`'s rules, with the spec's
/// `MAX_PAYLOAD_SIZE` (10 MiB) as the decompression cap.
///
/// Phase 0: `SHA256(MESSAGE_DOMAIN_VALID_SNAPPY ‖ decompressed)[:20]`. Altair and later:
/// `SHA256(MESSAGE_DOMAIN_VALID_SNAPPY ‖ u64_le(len(topic)) ‖ topic ‖ decompressed)[:20]`. When
/// `data` does not decompress (including a declared length over the cap, which is refused
/// before decompressing), the raw `data` is hashed under `MESSAGE_DOMAIN_INVALID_SNAPPY`.
pub fn message_id(topic: &str, data: &[u8], fork: Fork) -> MessageId {
    message_id_with_limit(topic, data, fork, DEFAULT_MAX_PAYLOAD_SIZE)
}

/// [`message_id`] with the decompression cap given (a config's `MAX_PAYLOAD_SIZE`).
pub fn message_id_with_limit(
    topic: &str,
    data: &[u8],
    fork: Fork,
    max_uncompressed: u64,
) -> MessageId {
    id_with(topic, data, fork, max_uncompressed, SPEC_DOMAINS)
}

fn id_with(topic: &str, data: &[u8], fork: Fork, max: u64, domains: Domains) -> MessageId {
    let payload = decode_gossip(data, max);
    id_for(topic, data, payload.as_deref().ok(), fork, domains)
}

/// Decompress a gossip message and compute its id with one decompression for both, under one
/// cap, `max_uncompressed`: pass the config's `MAX_PAYLOAD_SIZE` to get the id every node
/// computes. For a topic whose bound is smaller, use [`ForkSchedule::decode_message`], which
/// checks the payload against the topic's bound and keeps the id under `MAX_PAYLOAD_SIZE`.
pub fn decode_gossip_message(
    topic: &str,
    data: &[u8],
    fork: Fork,
    max_uncompressed: u64,
) -> (MessageId, Result<Vec<u8>, GossipError>) {
    let payload = decode_gossip(data, max_uncompressed);
    let id = id_for(topic, data, payload.as_deref().ok(), fork, SPEC_DOMAINS);
    (id, payload)
}

/// A decoded gossip message: its id, the topic it resolved to, and its SSZ payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GossipMessage {
    /// The gossipsub message id.
    pub id: MessageId,
    /// The topic.
    pub topic: crate::ResolvedTopic,
    /// The uncompressed SSZ payload (not yet SSZ-decoded: that is the client's).
    pub payload: Vec<u8>,
}

/// Why a gossip message was refused by [`ForkSchedule::decode_message`]. Blame: the sender
/// (`PeerMisbehaved`: REJECT).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GossipMessageError {
    /// The topic is unknown or does not belong to this network and fork.
    #[error(transparent)]
    Topic(#[from] crate::TopicError),
    /// The payload does not decode within the topic's bound.
    #[error(transparent)]
    Payload(#[from] GossipError),
}

impl ForkSchedule {
    /// The message-id function for plexus-gossipsub (or any gossipsub): the topic's digest picks
    /// the phase 0 or Altair rule (a digest not in the schedule, or an unparsable topic, gets the
    /// Altair rule; such messages are rejected anyway), with this config's `MAX_PAYLOAD_SIZE` as
    /// the decompression cap and its message domains. Use it as
    /// `Arc::new(move |m| MessageId::new(schedule.message_id(m.topic.as_str(), &m.data).to_vec()))`.
    pub fn message_id(&self, topic: &str, data: &[u8]) -> MessageId {
        let c = self.config();
        id_with(
            topic,
            data,
            self.message_id_fork(topic),
            c.max_payload_size,
            self.domains(),
        )
    }

    fn domains(&self) -> Domains {
        let c = self.config();
        (
            c.message_domain_valid_snappy,
            c.message_domain_invalid_snappy,
        )
    }

    fn message_id_fork(&self, topic: &str) -> Fork {
        GossipTopic::parse(topic)
            .ok()
            .and_then(|t| self.fork_of_digest(t.digest))
            .unwrap_or(Fork::Altair)
    }

    /// Resolve the topic, check the payload against the topic's bound, decompress it, and
    /// compute the message id: everything a node does with a gossip message before SSZ
    /// decoding and validation. The id is returned on failure too (for dedupe).
    pub fn decode_message(
        &self,
        topic: &str,
        data: &[u8],
    ) -> (MessageId, Result<GossipMessage, GossipMessageError>) {
        let max_payload = self.config().max_payload_size;
        let resolved = match self.resolve_topic(topic) {
            Ok(r) => r,
            Err(e) => return (self.message_id(topic, data), Err(e.into())),
        };
        let fork = resolved.entry.fork;
        let payload = decode_gossip(data, resolved.max_uncompressed_len);
        let id = match &payload {
            Ok(p) => id_for(topic, data, Some(p), fork, self.domains()),
            // These two depend on the cap: the id's cap is MAX_PAYLOAD_SIZE for every topic, so
            // a payload between the topic's bound and MAX_PAYLOAD_SIZE gets the id every other
            // node computes.
            Err(GossipError::TooLarge { .. } | GossipError::CompressedTooLarge { .. }) => {
                id_with(topic, data, fork, max_payload, self.domains())
            }
            Err(_) => id_for(topic, data, None, fork, self.domains()),
        };
        let result = payload
            .map_err(GossipMessageError::from)
            .map(|payload| GossipMessage {
                id,
                topic: resolved,
                payload,
            });
        (id, result)
    }
}
