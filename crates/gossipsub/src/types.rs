//! The router's vocabulary: topics, message ids, decoded RPCs, protocol versions.
//!
//! These are the *decoded and bounded* forms: [`crate::wire`] turns remote bytes into them only
//! after checking every count and size, so the router never sees an unbounded collection.

use std::fmt;

use bytes::Bytes;

/// A topic, as carried on the wire (gossipsub topic ids are strings; the Ethereum topics are
/// `/eth2/<fork digest>/<name>/ssz_snappy`). Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicHash(std::sync::Arc<str>);

impl TopicHash {
    /// The topic id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<&str> for TopicHash {
    fn from(s: &str) -> Self {
        TopicHash(s.into())
    }
}

impl From<String> for TopicHash {
    fn from(s: String) -> Self {
        TopicHash(s.into())
    }
}

impl fmt::Debug for TopicHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl fmt::Display for TopicHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A message id: bytes, never a string (go-libp2p declares ids as `string` but emits
/// non-UTF-8). Ethereum ids are 20 bytes. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MessageId(pub Bytes);

impl MessageId {
    /// An id from bytes.
    pub fn new(bytes: impl Into<Bytes>) -> Self {
        MessageId(bytes.into())
    }

    /// The id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().take(8) {
            write!(f, "{b:02x}")?;
        }
        if self.0.len() > 8 {
            f.write_str("…")?;
        }
        Ok(())
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A gossipsub protocol version, as negotiated on a peer's stream. Ordered: a later version
/// has every feature of an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// `/meshsub/1.0.0`: mesh, fanout, IHAVE/IWANT.
    V1_0,
    /// `/meshsub/1.1.0`: PRUNE backoff and PX, scoring.
    V1_1,
    /// `/meshsub/1.2.0`: IDONTWANT.
    V1_2,
    /// `/meshsub/1.3.0`: the extensions control message.
    V1_3,
}

impl Version {
    /// Every version, newest first: the order we offer them in.
    pub const ALL: [Version; 4] = [Version::V1_3, Version::V1_2, Version::V1_1, Version::V1_0];

    /// The protocol id.
    pub fn protocol(self) -> &'static str {
        match self {
            Version::V1_0 => "/meshsub/1.0.0",
            Version::V1_1 => "/meshsub/1.1.0",
            Version::V1_2 => "/meshsub/1.2.0",
            Version::V1_3 => "/meshsub/1.3.0",
        }
    }

    /// The version of a protocol id, if it is one of ours.
    pub fn from_protocol(p: &str) -> Option<Version> {
        Version::ALL.into_iter().find(|v| v.protocol() == p)
    }

    /// Whether PRUNE may carry a backoff and peer exchange.
    pub fn has_backoff(self) -> bool {
        self >= Version::V1_1
    }

    /// Whether IDONTWANT may be sent.
    pub fn has_idontwant(self) -> bool {
        self >= Version::V1_2
    }

    /// Whether the extensions control message may be sent.
    pub fn has_extensions(self) -> bool {
        self >= Version::V1_3
    }
}

/// One published message as received (or built by us), after the wire bounds were checked.
///
/// `raw` is the message's own protobuf encoding exactly as it arrived: the duplicate check
/// hashes it before any id function, decompression or validation runs, and forwarding reuses
/// it unchanged.
#[derive(Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// `from`: the author's peer id bytes (absent under `StrictNoSign`).
    pub from: Option<Bytes>,
    /// The payload.
    pub data: Bytes,
    /// `seqno` (8 bytes big-endian under `StrictSign`; absent under `StrictNoSign`).
    pub seqno: Option<Bytes>,
    /// The topic.
    pub topic: TopicHash,
    /// The author's signature (absent under `StrictNoSign`).
    pub signature: Option<Bytes>,
    /// The author's public key, when it cannot be read from `from`.
    pub key: Option<Bytes>,
    /// The message's protobuf encoding (field 2 of the RPC, without its tag and length).
    pub raw: Bytes,
}

impl fmt::Debug for RawMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawMessage")
            .field("topic", &self.topic)
            .field("data_len", &self.data.len())
            .field("signed", &self.signature.is_some())
            .finish_non_exhaustive()
    }
}

/// A subscription change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubOpt {
    /// `true` to subscribe, `false` to unsubscribe.
    pub subscribe: bool,
    /// The topic.
    pub topic: TopicHash,
}

/// IHAVE: ids of messages the sender has for a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IHave {
    /// The topic.
    pub topic: TopicHash,
    /// The ids.
    pub ids: Vec<MessageId>,
}

/// PRUNE: the sender removed us from its mesh of `topic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prune {
    /// The topic.
    pub topic: TopicHash,
    /// Peer exchange: peer id bytes and optional signed peer records (v1.1).
    pub peers: Vec<PxPeer>,
    /// The backoff in seconds, as sent (v1.1). The router clamps it.
    pub backoff: Option<u64>,
}

/// One peer offered in a PRUNE's peer exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PxPeer {
    /// The peer id bytes (unverified).
    pub peer_id: Option<Bytes>,
    /// A signed peer record envelope (opaque, unverified).
    pub signed_peer_record: Option<Bytes>,
}

/// The v1.3 extensions control message: which extensions the sender supports. Unknown
/// extensions are ignored. The one acted upon is plexus's experimental preamble extension
/// ([`PREAMBLE_EXTENSION`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extensions {
    /// Field numbers of the extensions present (known or not). Of those we send, only
    /// [`PREAMBLE_EXTENSION`] is encoded (as `true`); others are not sent.
    pub fields: Vec<u32>,
}

/// The field number of plexus's experimental PREAMBLE / IMRECEIVING extension, in
/// `ControlExtensions` (a bool: the sender reads both messages and sends them) and as the
/// `ControlMessage` field of PREAMBLE; IMRECEIVING is the next number. In the experimental
/// range of gossipsub v1.3 (above 0x200000). The messages follow the working draft
/// "gossipsub v1.4: PREAMBLE and IMRECEIVING" (r1, 2025-05-01), whose own field numbers
/// (6 and 7) collide with v1.3's extensions field; see docs/gossipsub.md.
pub const PREAMBLE_EXTENSION: u32 = 0x0048_0A51;

/// A PREAMBLE: the sender is starting to send us this message (experimental extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preamble {
    /// The message's topic.
    pub topic: TopicHash,
    /// Its id.
    pub id: MessageId,
    /// Its length in bytes (the `Message` protobuf), as the sender states it.
    pub len: u64,
}

/// The control part of an RPC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Control {
    /// IHAVE announcements.
    pub ihave: Vec<IHave>,
    /// IWANT requests (the ids of every IWANT entry, concatenated).
    pub iwant: Vec<MessageId>,
    /// GRAFT: topics the sender added us to.
    pub graft: Vec<TopicHash>,
    /// PRUNE entries.
    pub prune: Vec<Prune>,
    /// IDONTWANT (v1.2; the ids of every entry, concatenated).
    pub idontwant: Vec<MessageId>,
    /// Extensions (v1.3), when present.
    pub extensions: Option<Extensions>,
    /// PREAMBLE entries (experimental extension, [`PREAMBLE_EXTENSION`]).
    pub preamble: Vec<Preamble>,
    /// IMRECEIVING ids (experimental extension): the sender is receiving these messages now.
    pub imreceiving: Vec<MessageId>,
}

impl Control {
    /// Whether there is nothing in it.
    pub fn is_empty(&self) -> bool {
        self.ihave.is_empty()
            && self.iwant.is_empty()
            && self.graft.is_empty()
            && self.prune.is_empty()
            && self.idontwant.is_empty()
            && self.extensions.is_none()
            && self.preamble.is_empty()
            && self.imreceiving.is_empty()
    }
}

/// A decoded RPC.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rpc {
    /// Subscription changes.
    pub subscriptions: Vec<SubOpt>,
    /// Published messages.
    pub messages: Vec<RawMessage>,
    /// Control messages.
    pub control: Control,
}
