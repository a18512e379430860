//! The gossipsub protobuf (proto2), the union of v1.0–v1.3 (`pubsub/README.md`,
//! `gossipsub-v1.{0,1,2,3}.md`).
//!
//! Deliberate departures from the published `.proto`, all wire-compatible:
//! - Every `string` field (topic ids) is declared `bytes`: [`crate::wire`] checks UTF-8 itself
//!   so that a bad topic is a precise error (`TopicNotUtf8`), and decoding from a
//!   [`bytes::Bytes`] buffer stays zero-copy. Message ids and `from` are bytes, never strings
//!   (go-libp2p declares ids `string` but emits non-UTF-8).
//! - The partial-messages extension (libp2p/specs PR 685: `RPC.partial = 10`,
//!   `ControlExtensions.partialMessages = 10`, `SubOpts.requestsPartial = 3`,
//!   `SubOpts.supportsSendingPartial = 4`) is not declared: prost skips those fields as unknown.
//!
//! Decoding of remote bytes goes through [`crate::wire::decode_rpc`], which checks every count
//! and size on the raw bytes first; these types are never decoded from unchecked input.

use bytes::Bytes;

/// `RPC`: one length-prefixed frame on a gossipsub stream.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Rpc {
    /// Subscription changes.
    #[prost(message, repeated, tag = "1")]
    pub(crate) subscriptions: Vec<SubOpts>,
    /// Published messages.
    #[prost(message, repeated, tag = "2")]
    pub(crate) publish: Vec<Message>,
    /// Control messages (gossipsub).
    #[prost(message, optional, tag = "3")]
    pub(crate) control: Option<ControlMessage>,
}

/// `RPC.SubOpts`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct SubOpts {
    /// `true` to subscribe, `false` to unsubscribe.
    #[prost(bool, optional, tag = "1")]
    pub(crate) subscribe: Option<bool>,
    /// `topicid` (a string on the wire; UTF-8 checked by the caller).
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub(crate) topic_id: Option<Bytes>,
}

/// `Message`: one published message.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct Message {
    /// The author's peer id bytes.
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub(crate) from: Option<Bytes>,
    /// The payload.
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub(crate) data: Option<Bytes>,
    /// The sequence number (8 bytes big-endian when set by libp2p implementations).
    #[prost(bytes = "bytes", optional, tag = "3")]
    pub(crate) seqno: Option<Bytes>,
    /// The topic (a string on the wire; UTF-8 checked by the caller).
    #[prost(bytes = "bytes", optional, tag = "4")]
    pub(crate) topic: Option<Bytes>,
    /// The author's signature.
    #[prost(bytes = "bytes", optional, tag = "5")]
    pub(crate) signature: Option<Bytes>,
    /// The author's public key (`PublicKey` protobuf), when not inlined in `from`.
    #[prost(bytes = "bytes", optional, tag = "6")]
    pub(crate) key: Option<Bytes>,
}

/// `ControlMessage`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ControlMessage {
    /// IHAVE.
    #[prost(message, repeated, tag = "1")]
    pub(crate) ihave: Vec<ControlIHave>,
    /// IWANT.
    #[prost(message, repeated, tag = "2")]
    pub(crate) iwant: Vec<ControlIWant>,
    /// GRAFT.
    #[prost(message, repeated, tag = "3")]
    pub(crate) graft: Vec<ControlGraft>,
    /// PRUNE.
    #[prost(message, repeated, tag = "4")]
    pub(crate) prune: Vec<ControlPrune>,
    /// IDONTWANT (v1.2).
    #[prost(message, repeated, tag = "5")]
    pub(crate) idontwant: Vec<ControlIDontWant>,
    /// Extensions (v1.3).
    #[prost(message, optional, tag = "6")]
    pub(crate) extensions: Option<ControlExtensions>,
    /// plexus's experimental PREAMBLE (`crate::PREAMBLE_EXTENSION`).
    #[prost(message, repeated, tag = "4721233")]
    pub(crate) preamble: Vec<ControlPreamble>,
    /// plexus's experimental IMRECEIVING (`crate::PREAMBLE_EXTENSION` + 1), shaped like
    /// IDONTWANT.
    #[prost(message, repeated, tag = "4721234")]
    pub(crate) imreceiving: Vec<ControlIDontWant>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ControlPreamble {
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub(crate) topic_id: Option<Bytes>,
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub(crate) message_id: Option<Bytes>,
    #[prost(uint64, optional, tag = "3")]
    pub(crate) message_length: Option<u64>,
}

/// `ControlIHave`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ControlIHave {
    /// `topicID`.
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub(crate) topic_id: Option<Bytes>,
    /// `messageIDs`.
    #[prost(bytes = "bytes", repeated, tag = "2")]
    pub(crate) message_ids: Vec<Bytes>,
}

/// `ControlIWant`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ControlIWant {
    /// `messageIDs`.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub(crate) message_ids: Vec<Bytes>,
}

/// `ControlGraft`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ControlGraft {
    /// `topicID`.
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub(crate) topic_id: Option<Bytes>,
}

/// `ControlPrune`.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ControlPrune {
    /// `topicID`.
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub(crate) topic_id: Option<Bytes>,
    /// Peer exchange (v1.1).
    #[prost(message, repeated, tag = "2")]
    pub(crate) peers: Vec<PeerInfo>,
    /// Backoff in seconds (v1.1).
    #[prost(uint64, optional, tag = "3")]
    pub(crate) backoff: Option<u64>,
}

/// `PeerInfo`: one peer offered in a PRUNE.
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct PeerInfo {
    /// `peerID` bytes.
    #[prost(bytes = "bytes", optional, tag = "1")]
    pub(crate) peer_id: Option<Bytes>,
    /// `signedPeerRecord` envelope.
    #[prost(bytes = "bytes", optional, tag = "2")]
    pub(crate) signed_peer_record: Option<Bytes>,
}

/// `ControlIDontWant` (v1.2).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ControlIDontWant {
    /// `messageIDs`.
    #[prost(bytes = "bytes", repeated, tag = "1")]
    pub(crate) message_ids: Vec<Bytes>,
}

/// `ControlExtensions` (v1.3): no extension is implemented, so no field is declared; prost
/// skips every field (including `partialMessages = 10`).
#[derive(Clone, PartialEq, prost::Message)]
pub(crate) struct ControlExtensions {
    /// plexus's experimental PREAMBLE / IMRECEIVING extension (`crate::PREAMBLE_EXTENSION`).
    #[prost(bool, optional, tag = "4721233")]
    pub(crate) preamble: Option<bool>,
}
