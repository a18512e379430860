//! The `Identify` protobuf message, bounded encoding (trimming) and a wire-level pre-scan.

use plexus_core::wire::Fields;
use prost::Message;
use prost::encoding::encoded_len_varint;

use crate::IdentifyError;

/// Largest message body we send, in bytes: strictly under 4 KiB. rust-libp2p rejects bodies
/// over 4096 bytes and go-libp2p trims its own message to 4 KiB; staying below both keeps our
/// message readable by every implementation.
pub const MAX_SEND_SIZE: usize = 4095;

/// The identify message (`Identify`, proto2), as sent on `/ipfs/id/1.0.0` and
/// `/ipfs/id/push/1.0.0`. Every field is optional; a push may carry only what changed.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Identify {
    /// The protocol family, e.g. `/ipfs/0.1.0`. A mismatch is not a reason to disconnect.
    #[prost(string, optional, tag = "5")]
    pub protocol_version: Option<String>,
    /// The implementation, `name/version`.
    #[prost(string, optional, tag = "6")]
    pub agent_version: Option<String>,
    /// The sender's identity key as a libp2p `PublicKey` protobuf.
    #[prost(bytes = "vec", optional, tag = "1")]
    pub public_key: Option<Vec<u8>>,
    /// The sender's listen addresses, binary multiaddrs.
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub listen_addrs: Vec<Vec<u8>>,
    /// The address the sender sees the receiver's connection coming from (binary multiaddr).
    #[prost(bytes = "vec", optional, tag = "4")]
    pub observed_addr: Option<Vec<u8>>,
    /// The protocols the sender accepts inbound.
    #[prost(string, repeated, tag = "3")]
    pub protocols: Vec<String>,
    /// A signed peer record envelope (go-libp2p and rust-libp2p send one); kept as opaque
    /// bytes, never verified or interpreted.
    #[prost(bytes = "vec", optional, tag = "8")]
    pub signed_peer_record: Option<Vec<u8>>,
}

/// What [`Identify::encode_bounded`] removed to fit the size limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Trimmed {
    /// Listen addresses dropped from the end of the list.
    pub listen_addrs: usize,
    /// Protocols dropped from the end of the list.
    pub protocols: usize,
    /// Whether the signed peer record was dropped.
    pub signed_peer_record: bool,
}

impl Trimmed {
    /// Whether nothing was removed.
    pub fn is_empty(&self) -> bool {
        *self == Trimmed::default()
    }
}

/// Encoded size of a length-delimited field with a one-byte key (tags 1 to 15).
fn field_len(body: usize) -> usize {
    1 + encoded_len_varint(body as u64) + body
}

impl Identify {
    /// The message as one uvarint-length-prefixed protobuf, without any size check.
    pub fn encode_delimited(&self) -> Vec<u8> {
        self.encode_length_delimited_to_vec()
    }

    /// The message body's encoded size in bytes.
    pub fn body_len(&self) -> usize {
        self.encoded_len()
    }

    /// The message as one uvarint-length-prefixed protobuf whose body is at most `max` bytes.
    ///
    /// When it is larger, the signed peer record is dropped first (we never interpret it and
    /// it repeats the addresses), then listen addresses from the end of the list, then
    /// protocols from the end of the list. The message is encoded once.
    ///
    /// # Errors
    /// [`IdentifyError::LocalMessageTooLarge`] when even the trimmed message is too large.
    pub fn encode_bounded(&self, max: usize) -> Result<(Vec<u8>, Trimmed), IdentifyError> {
        let mut len = self.encoded_len();
        if len <= max {
            return Ok((self.encode_length_delimited_to_vec(), Trimmed::default()));
        }
        let mut trimmed = Trimmed::default();
        let mut keep_record = self.signed_peer_record.is_some();
        if let Some(record) = &self.signed_peer_record {
            len -= field_len(record.len());
            keep_record = false;
            trimmed.signed_peer_record = true;
        }
        let mut keep_addrs = self.listen_addrs.len();
        while len > max && keep_addrs > 0 {
            keep_addrs -= 1;
            len -= field_len(self.listen_addrs[keep_addrs].len());
        }
        let mut keep_protocols = self.protocols.len();
        while len > max && keep_protocols > 0 {
            keep_protocols -= 1;
            len -= field_len(self.protocols[keep_protocols].len());
        }
        if len > max {
            return Err(IdentifyError::LocalMessageTooLarge { size: len, max });
        }
        trimmed.listen_addrs = self.listen_addrs.len() - keep_addrs;
        trimmed.protocols = self.protocols.len() - keep_protocols;
        let msg = Identify {
            protocol_version: self.protocol_version.clone(),
            agent_version: self.agent_version.clone(),
            public_key: self.public_key.clone(),
            listen_addrs: self.listen_addrs[..keep_addrs].to_vec(),
            observed_addr: self.observed_addr.clone(),
            protocols: self.protocols[..keep_protocols].to_vec(),
            signed_peer_record: if keep_record {
                self.signed_peer_record.clone()
            } else {
                None
            },
        };
        debug_assert_eq!(msg.encoded_len(), len);
        Ok((msg.encode_length_delimited_to_vec(), trimmed))
    }
}

/// Entry counts of one message body, found by walking its wire format without allocating.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) listen_addrs: usize,
    pub(crate) protocols: usize,
}

/// Walk the protobuf wire format of one message body, counting the repeated entries.
pub(crate) fn prescan(bytes: &[u8]) -> Result<Counts, IdentifyError> {
    let mut counts = Counts::default();
    for f in Fields::new(bytes) {
        match f.map_err(|e| IdentifyError::Malformed(e.0))? {
            (2, Some(_)) => counts.listen_addrs += 1,
            (3, Some(_)) => counts.protocols += 1,
            _ => {}
        }
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn big() -> Identify {
        Identify {
            protocol_version: Some("/ipfs/0.1.0".into()),
            agent_version: Some("plexus/0.1.0".into()),
            public_key: Some(vec![8, 2, 18, 33]),
            listen_addrs: (0..300)
                .map(|i| vec![4, 127, 0, 0, (i % 256) as u8, 6, 0, 1])
                .collect(),
            observed_addr: Some(vec![4, 1, 2, 3, 4]),
            protocols: (0..100).map(|i| format!("/proto/number/{i}")).collect(),
            signed_peer_record: Some(vec![0xAB; 600]),
        }
    }

    #[test]
    fn small_message_is_not_trimmed() {
        let msg = Identify {
            agent_version: Some("a/1".into()),
            ..Identify::default()
        };
        let (bytes, trimmed) = msg.encode_bounded(MAX_SEND_SIZE).unwrap();
        assert!(trimmed.is_empty());
        assert_eq!(bytes, msg.encode_delimited());
    }

    #[test]
    fn trimming_drops_record_then_addrs_and_fits() {
        let msg = big();
        assert!(msg.body_len() > MAX_SEND_SIZE);
        let (bytes, trimmed) = msg.encode_bounded(MAX_SEND_SIZE).unwrap();
        assert!(trimmed.signed_peer_record);
        assert!(trimmed.listen_addrs > 0);
        assert_eq!(
            trimmed.protocols, 0,
            "protocols fit once addresses are trimmed"
        );
        let decoded = Identify::decode_length_delimited(&bytes[..]).unwrap();
        assert!(decoded.body_len() <= MAX_SEND_SIZE);
        assert_eq!(decoded.signed_peer_record, None);
        assert_eq!(decoded.protocols, msg.protocols);
        assert_eq!(
            decoded.listen_addrs[..],
            msg.listen_addrs[..msg.listen_addrs.len() - trimmed.listen_addrs]
        );
    }

    #[test]
    fn trimming_reaches_protocols_and_fails_on_huge_agent() {
        let msg = big();
        let (bytes, trimmed) = msg.encode_bounded(300).unwrap();
        assert_eq!(trimmed.listen_addrs, 300);
        assert!(trimmed.protocols > 0);
        assert!(bytes.len() <= 302);

        let huge = Identify {
            agent_version: Some("x".repeat(5000)),
            ..Identify::default()
        };
        assert!(matches!(
            huge.encode_bounded(MAX_SEND_SIZE),
            Err(IdentifyError::LocalMessageTooLarge {
                max: MAX_SEND_SIZE,
                ..
            })
        ));
    }

    #[test]
    fn prescan_counts_and_rejects_bad_wire() {
        let msg = big();
        let body = msg.encode_to_vec();
        assert_eq!(
            prescan(&body).unwrap(),
            Counts {
                listen_addrs: 300,
                protocols: 100
            }
        );
        // Group wire type (3).
        assert!(matches!(
            prescan(&[0x13]),
            Err(IdentifyError::Malformed("unsupported wire type"))
        ));
        // A length-delimited field claiming more bytes than there are.
        assert!(matches!(
            prescan(&[0x12, 5, 1]),
            Err(IdentifyError::Malformed("truncated field"))
        ));
        // An overlong varint key.
        assert!(matches!(
            prescan(&[0xff; 11]),
            Err(IdentifyError::Malformed("overlong varint"))
        ));
    }
}
