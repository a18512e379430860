//! The wire layer: framing, bounded decoding of remote RPCs, encoding of ours, and message
//! signing (`StrictSign`).
//!
//! # Receiving
//!
//! A gossipsub stream carries RPCs, each `uvarint(len) ‖ protobuf RPC`. [`FrameDecoder`] takes
//! one body at a time off the front of a read buffer, checking the declared length against
//! [`WireLimits::max_transmit_size`] as soon as the prefix is complete, before the body arrives.
//! [`decode_rpc`] then turns a body into an [`Rpc`] in two steps:
//!
//! 1. a *prescan* walks the raw protobuf without allocating ([`plexus_core::wire::Fields`]) and
//!    checks every limit of [`WireLimits`]: first the total size of the control part, before
//!    looking inside it, then every count and length; topics are checked to be UTF-8;
//! 2. only then the RPC is decoded, with every `Vec` sized from the prescan's counts. Message
//!    payloads, message ids, `from`, signatures and peer-exchange records are zero-copy slices
//!    of the body, and each [`RawMessage::raw`] is the message's own bytes, as received.
//!
//! So the decoded form of a remote RPC is bounded by the limits whatever its bytes are, and a
//! rejected RPC cost no allocation. Every [`WireError`] is the remote's fault
//! ([`Blame::PeerMisbehaved`]).
//!
//! # Sending
//!
//! [`encode_control_frame`] encodes subscriptions and control messages as one frame.
//! A published message is encoded once ([`encode_message_raw`], or [`sign_message`] under
//! `StrictSign`) and framed once ([`encode_message_frame`]): the frame is identical for every
//! receiver, so it is shared across peers. What we send follows the canonical encoding (fields in
//! number order, absent fields absent), which go-, rust- and js-libp2p all read.
//!
//! # Partial messages
//!
//! The partial-messages extension (libp2p/specs PR 685) uses `RPC` field 10,
//! `ControlExtensions` field 10 and `SubOpts` fields 3 and 4. They are not decoded: like any
//! unknown field they are skipped (only the size of `RPC` field 10 counts, against
//! [`WireLimits::max_transmit_size`]).

use bytes::{Buf, BufMut, Bytes, BytesMut};
use plexus_core::Blame;
use plexus_core::wire::{Fields, read_varint};
use plexus_identity::{DecodingError, Keypair, ParseError, PeerId, PublicKey};
use prost::Message as _;
use prost::encoding::{encode_varint, encoded_len_varint};

use crate::proto;
use crate::types::{
    Control, Extensions, IHave, MessageId, PREAMBLE_EXTENSION, Preamble, Prune, PxPeer, RawMessage,
    Rpc, SubOpt, TopicHash,
};

/// What every signed payload starts with (`pubsub/README.md`, "Message Signing").
pub const SIGNING_PREFIX: &[u8] = b"libp2p-pubsub:";

/// Most field numbers recorded in [`Extensions::fields`]; further ones are ignored (a sender
/// supports a handful of extensions, and the list is only for logs and metrics).
pub const MAX_EXTENSION_FIELDS: usize = 64;

/// Longest uvarint length prefix: 10 bytes hold any `u64`.
pub const MAX_PREFIX_LEN: usize = 10;

/// The largest protobuf field number, 2^29 − 1.
const MAX_FIELD_NUMBER: u64 = (1 << 29) - 1;

// Field numbers. `RPC`:
const RPC_SUBSCRIPTIONS: u64 = 1;
const RPC_PUBLISH: u64 = 2;
const RPC_CONTROL: u64 = 3;
// `SubOpts`:
const SUB_SUBSCRIBE: u64 = 1;
const SUB_TOPIC: u64 = 2;
// `Message`:
const MSG_FROM: u32 = 1;
const MSG_DATA: u32 = 2;
const MSG_SEQNO: u32 = 3;
const MSG_TOPIC: u32 = 4;
const MSG_SIGNATURE: u32 = 5;
const MSG_KEY: u32 = 6;
// `ControlMessage`:
const CTRL_IHAVE: u64 = 1;
const CTRL_IWANT: u64 = 2;
const CTRL_GRAFT: u64 = 3;
const CTRL_PRUNE: u64 = 4;
const CTRL_IDONTWANT: u64 = 5;
const CTRL_EXTENSIONS: u64 = 6;
/// plexus's experimental PREAMBLE ([`crate::PREAMBLE_EXTENSION`]).
const CTRL_PREAMBLE: u64 = crate::types::PREAMBLE_EXTENSION as u64;
/// plexus's experimental IMRECEIVING.
const CTRL_IMRECEIVING: u64 = CTRL_PREAMBLE + 1;
// `ControlPreamble`: the topic is field 1, then:
const PREAMBLE_ID: u64 = 2;
const PREAMBLE_LEN: u64 = 3;
// `ControlIHave`, `ControlGraft`, `ControlPrune`: the topic is field 1.
const TOPIC_ID: u64 = 1;
const IHAVE_IDS: u64 = 2;
// `ControlIWant`, `ControlIDontWant`:
const IDS: u64 = 1;
// `ControlPrune`:
const PRUNE_PEERS: u64 = 2;
const PRUNE_BACKOFF: u64 = 3;
// `PeerInfo`:
const PEER_ID: u64 = 1;
const PEER_RECORD: u64 = 2;

/// Bounds on one remote RPC. Each is checked on the raw protobuf, before anything is decoded;
/// an RPC over any of them is rejected whole with a [`WireError`] naming the limit.
///
/// The defaults sit well above what honest Ethereum peers send (a supernode subscribed to every
/// subnet, during a fork transition), and bound what decoding one RPC allocates beyond its own
/// bytes (which decoded payloads and ids share, zero-copy) to a few MiB at worst: mostly
/// message ids (32 bytes each) and peer-exchange entries (64 bytes each). The router applies
/// the softer per-heartbeat caps (ignoring, not rejecting) on top.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireLimits {
    /// Largest RPC body, in bytes. Default 12,234,442: the Ethereum consensus spec's
    /// `max_message_size()` (the largest compressed gossip payload plus framing); an RPC
    /// carries one such message.
    pub max_transmit_size: usize,
    /// Most subscription changes in one RPC. Default 2048: the hello RPC lists every topic a
    /// peer is subscribed to, a few hundred for an Ethereum node subscribed to every subnet,
    /// twice that around a fork (both digests); each entry costs a small allocation.
    pub max_subscriptions_per_rpc: usize,
    /// Most published messages in one RPC. Default 512: implementations send one message per
    /// RPC (plus piggybacked control); a decoded message costs about 250 bytes of bookkeeping
    /// however small its encoding (5 bytes), so the count is what bounds it.
    pub max_messages_per_rpc: usize,
    /// Most bytes of control (`RPC` field 3, all occurrences together) in one RPC, checked
    /// before the control part is looked into. Default 1 MiB. This is the lesson of
    /// rust-libp2p #6409 and #6468: without a byte budget checked before decoding, a large
    /// RPC of tiny control entries amplified into far more memory than its size. Honest
    /// control stays below a few hundred KiB (IHAVE for every message of the gossip window
    /// across all subnets, an IWANT of up to 5000 ids, PRUNEs with peer exchange); 1 MiB
    /// leaves room for that and is still a twelfth of the transmit size. The id caps below
    /// fit inside it.
    pub max_control_bytes: usize,
    /// Most IHAVE entries in one RPC. Default 1024: an honest peer sends at most one per
    /// topic per heartbeat, and an empty entry (2 bytes) costs an allocation of its own.
    pub max_ihave: usize,
    /// Most message ids across all IHAVE entries of one RPC. Default 20,000: go-libp2p
    /// advertises up to 5000 ids per topic, and a peer gossiping many subnets to us can
    /// exceed 5000 in total; a decoded id costs 32 bytes however short its encoding.
    pub max_ihave_ids: usize,
    /// Most message ids across all IWANT entries of one RPC. Default 10,000: go- and
    /// rust-libp2p request at most 5000 ids per peer per heartbeat.
    pub max_iwant_ids: usize,
    /// Most message ids across all IDONTWANT entries of one RPC. Default 5000: IDONTWANT is
    /// sent right away for each large message received, so an RPC carries a handful; go-libp2p
    /// honours only the first few anyway.
    pub max_idontwant_ids: usize,
    /// Most PREAMBLE entries in one RPC (experimental extension). Default 512: one is sent
    /// right before each large message, so an RPC carries one.
    pub max_preambles: usize,
    /// Most message ids across all IMRECEIVING entries of one RPC (experimental extension).
    /// Default 5000, as IDONTWANT.
    pub max_imreceiving_ids: usize,
    /// Most GRAFT entries in one RPC. Default 1024: at most one per topic (joining every
    /// subnet around a fork is a few hundred).
    pub max_graft: usize,
    /// Most PRUNE entries in one RPC. Default 1024: at most one per topic (leaving every
    /// topic of the old fork is a few hundred).
    pub max_prune: usize,
    /// Most peers offered in one PRUNE's peer exchange. Default 32: go- and rust-libp2p send
    /// up to 16, the spec recommends more than `D_hi` (12).
    pub max_px_peers: usize,
    /// Longest message id, in bytes. Default 256: Ethereum ids are 20 bytes, the libp2p
    /// default id (`from ‖ seqno`) under 60, content hashes 32 or 64.
    pub max_message_id_len: usize,
    /// Longest topic, in bytes. Default 512: Ethereum topics are under 80 bytes
    /// (`/eth2/<digest>/beacon_attestation_63/ssz_snappy`).
    pub max_topic_len: usize,
    /// Longest peer id offered in peer exchange, in bytes. Default 64: a peer id multihash
    /// is at most 44 bytes (inlined key) or 34 (sha2-256).
    pub max_px_peer_id_len: usize,
    /// Longest signed peer record offered in peer exchange, in bytes. Default 4096: a record
    /// envelope with a handful of addresses is a few hundred bytes; identify bounds the same
    /// record well below 8 KiB.
    pub max_px_record_len: usize,
}

impl Default for WireLimits {
    fn default() -> Self {
        WireLimits {
            max_transmit_size: 12_234_442,
            max_subscriptions_per_rpc: 2048,
            max_messages_per_rpc: 512,
            max_control_bytes: 1024 * 1024,
            max_ihave: 1024,
            max_ihave_ids: 20_000,
            max_iwant_ids: 10_000,
            max_idontwant_ids: 5000,
            max_preambles: 512,
            max_imreceiving_ids: 5000,
            max_graft: 1024,
            max_prune: 1024,
            max_px_peers: 32,
            max_message_id_len: 256,
            max_topic_len: 512,
            max_px_peer_id_len: 64,
            max_px_record_len: 4096,
        }
    }
}

/// Why remote bytes were rejected. Every variant is the remote's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A frame's length prefix declares more than [`WireLimits::max_transmit_size`]
    /// (detected before the body arrives).
    #[error("frame of {declared} bytes declared, max {max}")]
    FrameTooLarge {
        /// The declared length.
        declared: u64,
        /// The limit.
        max: usize,
    },
    /// A frame's length prefix is longer than 10 bytes or does not fit 64 bits.
    #[error("invalid length prefix: varint over 10 bytes or 64 bits")]
    InvalidLengthPrefix,
    /// An RPC body handed to [`decode_rpc`] is larger than
    /// [`WireLimits::max_transmit_size`].
    #[error("RPC of {len} bytes, max {max}")]
    RpcTooLarge {
        /// The body's length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The control part is larger than [`WireLimits::max_control_bytes`].
    #[error("control part of {got} bytes, max {max}")]
    ControlTooLarge {
        /// Its size.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// More subscription changes than [`WireLimits::max_subscriptions_per_rpc`].
    #[error("{got} subscriptions in one RPC, max {max}")]
    TooManySubscriptions {
        /// How many.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// More published messages than [`WireLimits::max_messages_per_rpc`].
    #[error("{got} messages in one RPC, max {max}")]
    TooManyMessages {
        /// How many.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// More IHAVE entries than [`WireLimits::max_ihave`].
    #[error("{got} IHAVE entries in one RPC, max {max}")]
    TooManyIHave {
        /// How many.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// More IHAVE ids than [`WireLimits::max_ihave_ids`].
    #[error("{got} IHAVE ids in one RPC, max {max}")]
    TooManyIHaveIds {
        /// How many.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// More IWANT ids than [`WireLimits::max_iwant_ids`].
    #[error("{got} IWANT ids in one RPC, max {max}")]
    TooManyIWantIds {
        /// How many.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// More IDONTWANT ids than [`WireLimits::max_idontwant_ids`].
    #[error("{got} IDONTWANT ids in one RPC, max {max}")]
    TooManyIDontWantIds {
        /// How many.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// More PREAMBLE entries than [`WireLimits::max_preambles`].
    #[error("{got} PREAMBLE entries in one RPC, max {max}")]
    TooManyPreambles {
        /// How many.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// More IMRECEIVING ids than [`WireLimits::max_imreceiving_ids`].
    #[error("{got} IMRECEIVING ids in one RPC, max {max}")]
    TooManyIMReceivingIds {
        /// How many.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// A PREAMBLE without a message id.
    #[error("PREAMBLE without a message id")]
    PreambleWithoutId,
    /// More GRAFT entries than [`WireLimits::max_graft`].
    #[error("{got} GRAFT entries in one RPC, max {max}")]
    TooManyGraft {
        /// How many.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// More PRUNE entries than [`WireLimits::max_prune`].
    #[error("{got} PRUNE entries in one RPC, max {max}")]
    TooManyPrune {
        /// How many.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// A PRUNE offers more peers than [`WireLimits::max_px_peers`].
    #[error("{got} peers in one PRUNE, max {max}")]
    TooManyPxPeers {
        /// How many.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// A message id is longer than [`WireLimits::max_message_id_len`].
    #[error("message id of {len} bytes, max {max}")]
    MessageIdTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A topic is longer than [`WireLimits::max_topic_len`].
    #[error("topic of {len} bytes, max {max}")]
    TopicTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A peer-exchange peer id is longer than [`WireLimits::max_px_peer_id_len`].
    #[error("peer-exchange peer id of {len} bytes, max {max}")]
    PxPeerIdTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A peer-exchange signed peer record is longer than [`WireLimits::max_px_record_len`].
    #[error("peer-exchange record of {len} bytes, max {max}")]
    PxRecordTooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A topic (in a subscription, a message or a control entry) is not UTF-8.
    #[error("topic is not UTF-8")]
    TopicNotUtf8,
    /// A published message has no topic (the field is required).
    #[error("message without a topic")]
    MessageWithoutTopic,
    /// The protobuf wire format is broken (truncated field, bad varint, group wire type,
    /// field number 0, a known field with the wrong wire type).
    #[error("malformed RPC: {0}")]
    Malformed(&'static str),
    /// prost rejected a message the prescan let through.
    #[error("malformed RPC: {0}")]
    Decode(#[from] prost::DecodeError),
}

impl WireError {
    /// Who is to blame: always the remote, which sent garbage or exceeded a limit.
    pub fn blame(&self) -> Blame {
        Blame::PeerMisbehaved
    }
}

impl From<plexus_core::wire::WireError> for WireError {
    fn from(e: plexus_core::wire::WireError) -> Self {
        WireError::Malformed(e.0)
    }
}

// ---------------------------------------------------------------------------------------------
// Framing

/// The sans-IO reader of a gossipsub stream: takes one length-prefixed RPC body at a time off
/// the front of the read buffer.
///
/// Non-minimal length prefixes are accepted (send conservatively, accept liberally); a prefix
/// longer than 10 bytes or over 64 bits is not. After an error the stream is unusable (its
/// framing is lost): drop it.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_transmit_size: usize,
}

impl FrameDecoder {
    /// A decoder accepting bodies of at most `max_transmit_size` bytes.
    pub fn new(max_transmit_size: usize) -> Self {
        FrameDecoder { max_transmit_size }
    }

    /// The largest body accepted.
    pub fn max_transmit_size(&self) -> usize {
        self.max_transmit_size
    }

    /// Take one complete body off the front of `buf`, zero-copy. `Ok(None)` when `buf` does
    /// not hold a whole frame yet; nothing is consumed then, and nothing is reserved for the
    /// declared length (the caller's reads grow `buf`).
    ///
    /// The declared length is checked as soon as the prefix is complete, so an oversized frame
    /// is rejected before its body arrives.
    ///
    /// # Errors
    /// [`WireError::FrameTooLarge`], [`WireError::InvalidLengthPrefix`].
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Bytes>, WireError> {
        let Some((declared, prefix)) = read_prefix(buf)? else {
            return Ok(None);
        };
        let too_large = WireError::FrameTooLarge {
            declared,
            max: self.max_transmit_size,
        };
        let len = match usize::try_from(declared) {
            Ok(len) if len <= self.max_transmit_size => len,
            _ => return Err(too_large),
        };
        match prefix.checked_add(len) {
            Some(total) if total <= buf.len() => {}
            Some(_) => return Ok(None),
            None => return Err(too_large),
        }
        buf.advance(prefix);
        Ok(Some(buf.split_to(len).freeze()))
    }

    /// The whole length (prefix and body) of the frame at the front of `buf`, once its
    /// prefix is complete and within the limit: a reader can size its next read by it
    /// (never reserving more than arrives: the body is still read in bounded chunks).
    pub fn frame_len(&self, buf: &[u8]) -> Option<usize> {
        let (declared, prefix) = read_prefix(buf).ok()??;
        let len = usize::try_from(declared).ok()?;
        if len > self.max_transmit_size {
            return None;
        }
        prefix.checked_add(len)
    }

    /// [`FrameDecoder::decode`] then [`decode_rpc`]: the next whole RPC at the front of `buf`.
    ///
    /// # Errors
    /// Those of [`FrameDecoder::decode`] and [`decode_rpc`].
    pub fn decode_rpc(
        &mut self,
        buf: &mut BytesMut,
        limits: &WireLimits,
    ) -> Result<Option<Rpc>, WireError> {
        match self.decode(buf)? {
            Some(body) => decode_rpc(body, limits).map(Some),
            None => Ok(None),
        }
    }
}

/// Read a uvarint length prefix from the front of `buf`: `(value, prefix length)`, or `None`
/// when it is incomplete.
fn read_prefix(buf: &[u8]) -> Result<Option<(u64, usize)>, WireError> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().take(MAX_PREFIX_LEN).enumerate() {
        // The tenth byte holds bit 63 only: anything more overflows or continues past 10 bytes.
        if i == MAX_PREFIX_LEN - 1 && b > 1 {
            return Err(WireError::InvalidLengthPrefix);
        }
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((value, i + 1)));
        }
    }
    Ok(None)
}

// ---------------------------------------------------------------------------------------------
// Prescan

/// Entry counts of one RPC, from the prescan.
#[derive(Debug, Default)]
struct Counts {
    subscriptions: usize,
    messages: usize,
    control_bytes: usize,
    ihave: usize,
    ihave_ids: usize,
    iwant_ids: usize,
    idontwant_ids: usize,
    preambles: usize,
    imreceiving_ids: usize,
    graft: usize,
    prune: usize,
}

/// The fields of one message body; field numbers outside 1..=2^29−1 are malformed.
fn fields(body: &[u8]) -> impl Iterator<Item = Result<(u64, Option<&[u8]>), WireError>> {
    Fields::new(body).map(|f| {
        let (n, v) = f?;
        if n == 0 || n > MAX_FIELD_NUMBER {
            return Err(WireError::Malformed("invalid field number"));
        }
        Ok((n, v))
    })
}

fn at_most(got: usize, max: usize, err: fn(usize, usize) -> WireError) -> Result<(), WireError> {
    if got > max {
        Err(err(got, max))
    } else {
        Ok(())
    }
}

fn check_topic(t: &[u8], limits: &WireLimits) -> Result<(), WireError> {
    if t.len() > limits.max_topic_len {
        return Err(WireError::TopicTooLong {
            len: t.len(),
            max: limits.max_topic_len,
        });
    }
    std::str::from_utf8(t).map_err(|_| WireError::TopicNotUtf8)?;
    Ok(())
}

fn check_id(id: &[u8], limits: &WireLimits) -> Result<(), WireError> {
    if id.len() > limits.max_message_id_len {
        return Err(WireError::MessageIdTooLong {
            len: id.len(),
            max: limits.max_message_id_len,
        });
    }
    Ok(())
}

const WRONG_WIRE_TYPE: WireError = WireError::Malformed("known field with the wrong wire type");

/// Check every limit of `limits` on the raw RPC `body`, allocating nothing.
fn prescan(body: &[u8], limits: &WireLimits) -> Result<Counts, WireError> {
    let mut c = Counts::default();
    // Top level first: the control budget is checked before the control part is walked.
    for f in fields(body) {
        match f? {
            (RPC_SUBSCRIPTIONS, Some(_)) => c.subscriptions += 1,
            (RPC_PUBLISH, Some(_)) => c.messages += 1,
            (RPC_CONTROL, Some(b)) => c.control_bytes = c.control_bytes.saturating_add(b.len()),
            (RPC_SUBSCRIPTIONS | RPC_PUBLISH | RPC_CONTROL, None) => return Err(WRONG_WIRE_TYPE),
            _ => {}
        }
    }
    at_most(c.control_bytes, limits.max_control_bytes, |got, max| {
        WireError::ControlTooLarge { got, max }
    })?;
    at_most(
        c.subscriptions,
        limits.max_subscriptions_per_rpc,
        |got, max| WireError::TooManySubscriptions { got, max },
    )?;
    at_most(c.messages, limits.max_messages_per_rpc, |got, max| {
        WireError::TooManyMessages { got, max }
    })?;
    for f in fields(body) {
        match f? {
            (RPC_SUBSCRIPTIONS, Some(b)) => scan_subopts(b, limits)?,
            (RPC_PUBLISH, Some(b)) => scan_message(b, limits)?,
            (RPC_CONTROL, Some(b)) => scan_control(b, limits, &mut c)?,
            _ => {}
        }
    }
    at_most(c.ihave, limits.max_ihave, |got, max| {
        WireError::TooManyIHave { got, max }
    })?;
    at_most(c.ihave_ids, limits.max_ihave_ids, |got, max| {
        WireError::TooManyIHaveIds { got, max }
    })?;
    at_most(c.iwant_ids, limits.max_iwant_ids, |got, max| {
        WireError::TooManyIWantIds { got, max }
    })?;
    at_most(c.idontwant_ids, limits.max_idontwant_ids, |got, max| {
        WireError::TooManyIDontWantIds { got, max }
    })?;
    at_most(c.preambles, limits.max_preambles, |got, max| {
        WireError::TooManyPreambles { got, max }
    })?;
    at_most(c.imreceiving_ids, limits.max_imreceiving_ids, |got, max| {
        WireError::TooManyIMReceivingIds { got, max }
    })?;
    at_most(c.graft, limits.max_graft, |got, max| {
        WireError::TooManyGraft { got, max }
    })?;
    at_most(c.prune, limits.max_prune, |got, max| {
        WireError::TooManyPrune { got, max }
    })?;
    Ok(c)
}

fn scan_subopts(b: &[u8], limits: &WireLimits) -> Result<(), WireError> {
    for f in fields(b) {
        match f? {
            (SUB_SUBSCRIBE, Some(_)) | (SUB_TOPIC, None) => return Err(WRONG_WIRE_TYPE),
            (SUB_TOPIC, Some(t)) => check_topic(t, limits)?,
            // Partial messages (3, 4) and unknown fields.
            _ => {}
        }
    }
    Ok(())
}

fn scan_message(b: &[u8], limits: &WireLimits) -> Result<(), WireError> {
    let mut has_topic = false;
    for f in fields(b) {
        match f? {
            (n, None) if (1..=u64::from(MSG_KEY)).contains(&n) => return Err(WRONG_WIRE_TYPE),
            (n, Some(t)) if n == u64::from(MSG_TOPIC) => {
                check_topic(t, limits)?;
                has_topic = true;
            }
            _ => {}
        }
    }
    if has_topic {
        Ok(())
    } else {
        Err(WireError::MessageWithoutTopic)
    }
}

fn scan_control(b: &[u8], limits: &WireLimits, c: &mut Counts) -> Result<(), WireError> {
    for f in fields(b) {
        match f? {
            (CTRL_IHAVE, Some(e)) => {
                c.ihave += 1;
                for f in fields(e) {
                    match f? {
                        (TOPIC_ID, Some(t)) => check_topic(t, limits)?,
                        (IHAVE_IDS, Some(id)) => {
                            check_id(id, limits)?;
                            c.ihave_ids += 1;
                        }
                        (TOPIC_ID | IHAVE_IDS, None) => return Err(WRONG_WIRE_TYPE),
                        _ => {}
                    }
                }
            }
            (CTRL_IWANT, Some(e)) => c.iwant_ids += scan_ids(e, limits)?,
            (CTRL_IDONTWANT, Some(e)) => c.idontwant_ids += scan_ids(e, limits)?,
            (CTRL_GRAFT, Some(e)) => {
                c.graft += 1;
                for f in fields(e) {
                    match f? {
                        (TOPIC_ID, Some(t)) => check_topic(t, limits)?,
                        (TOPIC_ID, None) => return Err(WRONG_WIRE_TYPE),
                        _ => {}
                    }
                }
            }
            (CTRL_PRUNE, Some(e)) => {
                c.prune += 1;
                scan_prune(e, limits)?;
            }
            (CTRL_EXTENSIONS, Some(e)) => {
                // Any field, any wire type (unknown extensions are ignored); only well-formed.
                for f in fields(e) {
                    f?;
                }
            }
            (CTRL_PREAMBLE, Some(e)) => {
                c.preambles += 1;
                let mut has_id = false;
                for f in fields(e) {
                    match f? {
                        (TOPIC_ID, Some(t)) => check_topic(t, limits)?,
                        (PREAMBLE_ID, Some(id)) => {
                            check_id(id, limits)?;
                            has_id = true;
                        }
                        (TOPIC_ID | PREAMBLE_ID, None) | (PREAMBLE_LEN, Some(_)) => {
                            return Err(WRONG_WIRE_TYPE);
                        }
                        _ => {}
                    }
                }
                if !has_id {
                    return Err(WireError::PreambleWithoutId);
                }
            }
            (CTRL_IMRECEIVING, Some(e)) => c.imreceiving_ids += scan_ids(e, limits)?,
            (CTRL_IHAVE..=CTRL_EXTENSIONS | CTRL_PREAMBLE | CTRL_IMRECEIVING, None) => {
                return Err(WRONG_WIRE_TYPE);
            }
            _ => {}
        }
    }
    Ok(())
}

/// Check the ids of an IWANT or IDONTWANT entry; their count.
fn scan_ids(e: &[u8], limits: &WireLimits) -> Result<usize, WireError> {
    let mut n = 0;
    for f in fields(e) {
        match f? {
            (IDS, Some(id)) => {
                check_id(id, limits)?;
                n += 1;
            }
            (IDS, None) => return Err(WRONG_WIRE_TYPE),
            _ => {}
        }
    }
    Ok(n)
}

fn scan_prune(e: &[u8], limits: &WireLimits) -> Result<(), WireError> {
    let mut peers = 0;
    for f in fields(e) {
        match f? {
            (TOPIC_ID, Some(t)) => check_topic(t, limits)?,
            (PRUNE_PEERS, Some(p)) => {
                peers += 1;
                for f in fields(p) {
                    match f? {
                        (PEER_ID, Some(id)) if id.len() > limits.max_px_peer_id_len => {
                            return Err(WireError::PxPeerIdTooLong {
                                len: id.len(),
                                max: limits.max_px_peer_id_len,
                            });
                        }
                        (PEER_RECORD, Some(r)) if r.len() > limits.max_px_record_len => {
                            return Err(WireError::PxRecordTooLong {
                                len: r.len(),
                                max: limits.max_px_record_len,
                            });
                        }
                        (PEER_ID | PEER_RECORD, None) => return Err(WRONG_WIRE_TYPE),
                        _ => {}
                    }
                }
            }
            (TOPIC_ID | PRUNE_PEERS, None) | (PRUNE_BACKOFF, Some(_)) => {
                return Err(WRONG_WIRE_TYPE);
            }
            _ => {}
        }
    }
    at_most(peers, limits.max_px_peers, |got, max| {
        WireError::TooManyPxPeers { got, max }
    })
}

// ---------------------------------------------------------------------------------------------
// Decoding

/// Decode one RPC body (without its length prefix), after checking every limit of `limits` on
/// its raw bytes.
///
/// Zero-copy: message payloads, ids, `from`, seqnos, signatures, keys and peer-exchange entries
/// are slices of `body`; [`RawMessage::raw`] is the message's bytes exactly as received. The ids
/// of all IWANT (and all IDONTWANT) entries are concatenated. Unknown fields, and the fields of
/// the partial-messages extension, are skipped. [`Control::extensions`] is `Some` when the RPC
/// carried the extensions control message; its `fields` lists the field numbers found inside
/// (each once, at most [`MAX_EXTENSION_FIELDS`]). Missing `subscribe` flags decode as `false`
/// and missing topics of subscriptions and control entries as the empty topic (proto2
/// defaults); a published message must have a topic.
///
/// # Errors
/// A [`WireError`] naming the first limit exceeded or the defect found. Every limit, UTF-8 and
/// length-delimited structure is checked before anything is allocated; only a scalar field
/// with the wrong wire type is found while decoding ([`WireError::Decode`]).
pub fn decode_rpc(body: Bytes, limits: &WireLimits) -> Result<Rpc, WireError> {
    if body.len() > limits.max_transmit_size {
        return Err(WireError::RpcTooLarge {
            len: body.len(),
            max: limits.max_transmit_size,
        });
    }
    let c = prescan(&body, limits)?;
    let mut rpc = Rpc {
        subscriptions: Vec::with_capacity(c.subscriptions),
        messages: Vec::with_capacity(c.messages),
        control: Control {
            ihave: Vec::with_capacity(c.ihave),
            iwant: Vec::with_capacity(c.iwant_ids),
            graft: Vec::with_capacity(c.graft),
            prune: Vec::with_capacity(c.prune),
            idontwant: Vec::with_capacity(c.idontwant_ids),
            extensions: None,
            preamble: Vec::with_capacity(c.preambles),
            imreceiving: Vec::with_capacity(c.imreceiving_ids),
        },
    };
    for f in fields(&body) {
        let (n, Some(b)) = f? else { continue };
        match n {
            RPC_SUBSCRIPTIONS => {
                let s = proto::SubOpts::decode(body.slice_ref(b))?;
                rpc.subscriptions.push(SubOpt {
                    subscribe: s.subscribe.unwrap_or(false),
                    topic: topic(s.topic_id.as_deref().unwrap_or_default())?,
                });
            }
            RPC_PUBLISH => rpc.messages.push(message(body.slice_ref(b))?),
            RPC_CONTROL => decode_control(&body, b, &mut rpc.control)?,
            _ => {}
        }
    }
    Ok(rpc)
}

/// Decode one `Message` protobuf, typically one we encoded ([`encode_message_raw`],
/// [`sign_message`]) to get its [`RawMessage`]. `raw` becomes [`RawMessage::raw`]; the fields
/// are zero-copy slices of it. The wire format and the topic's UTF-8 are checked, no size
/// limit is (remote messages arrive in RPCs, through [`decode_rpc`]).
///
/// # Errors
/// [`WireError::TopicNotUtf8`], [`WireError::MessageWithoutTopic`],
/// [`WireError::Malformed`], [`WireError::Decode`].
pub fn decode_message(raw: Bytes) -> Result<RawMessage, WireError> {
    let unbounded = WireLimits {
        max_topic_len: usize::MAX,
        ..WireLimits::default()
    };
    scan_message(&raw, &unbounded)?;
    message(raw)
}

fn topic(b: &[u8]) -> Result<TopicHash, WireError> {
    std::str::from_utf8(b)
        .map(TopicHash::from)
        .map_err(|_| WireError::TopicNotUtf8)
}

/// Decode a prescanned `Message`.
fn message(raw: Bytes) -> Result<RawMessage, WireError> {
    let m = proto::Message::decode(raw.clone())?;
    let t = m.topic.ok_or(WireError::MessageWithoutTopic)?;
    Ok(RawMessage {
        from: m.from,
        data: m.data.unwrap_or_default(),
        seqno: m.seqno,
        topic: topic(&t)?,
        signature: m.signature,
        key: m.key,
        raw,
    })
}

/// Decode one prescanned occurrence `b` (a slice of `body`) of the control field into `out`.
fn decode_control(body: &Bytes, b: &[u8], out: &mut Control) -> Result<(), WireError> {
    for f in fields(b) {
        let (n, Some(e)) = f? else { continue };
        match n {
            CTRL_IHAVE => {
                let mut t: &[u8] = &[];
                let mut ids = Vec::new();
                for f in fields(e) {
                    match f? {
                        (TOPIC_ID, Some(v)) => t = v,
                        (IHAVE_IDS, Some(id)) => ids.push(MessageId(body.slice_ref(id))),
                        _ => {}
                    }
                }
                out.ihave.push(IHave {
                    topic: topic(t)?,
                    ids,
                });
            }
            CTRL_IWANT => push_ids(body, e, &mut out.iwant)?,
            CTRL_IDONTWANT => push_ids(body, e, &mut out.idontwant)?,
            CTRL_GRAFT => {
                let mut t: &[u8] = &[];
                for f in fields(e) {
                    if let (TOPIC_ID, Some(v)) = f? {
                        t = v;
                    }
                }
                out.graft.push(topic(t)?);
            }
            CTRL_PRUNE => {
                let p = proto::ControlPrune::decode(body.slice_ref(e))?;
                out.prune.push(Prune {
                    topic: topic(p.topic_id.as_deref().unwrap_or_default())?,
                    peers: p
                        .peers
                        .into_iter()
                        .map(|p| PxPeer {
                            peer_id: p.peer_id,
                            signed_peer_record: p.signed_peer_record,
                        })
                        .collect(),
                    backoff: p.backoff,
                });
            }
            CTRL_PREAMBLE => {
                let p = proto::ControlPreamble::decode(body.slice_ref(e))?;
                out.preamble.push(Preamble {
                    topic: topic(p.topic_id.as_deref().unwrap_or_default())?,
                    // The prescan found it.
                    id: MessageId(p.message_id.ok_or(WireError::PreambleWithoutId)?),
                    len: p.message_length.unwrap_or(0),
                });
            }
            CTRL_IMRECEIVING => push_ids(body, e, &mut out.imreceiving)?,
            CTRL_EXTENSIONS => {
                let ext = out.extensions.get_or_insert_with(Extensions::default);
                for f in fields(e) {
                    let (n, _) = f?;
                    // n ≤ 2^29 − 1 (checked by `fields`), so it fits a u32.
                    let n = u32::try_from(n).unwrap_or(u32::MAX);
                    if ext.fields.len() < MAX_EXTENSION_FIELDS && !ext.fields.contains(&n) {
                        ext.fields.push(n);
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn push_ids(body: &Bytes, e: &[u8], out: &mut Vec<MessageId>) -> Result<(), WireError> {
    for f in fields(e) {
        if let (IDS, Some(id)) = f? {
            out.push(MessageId(body.slice_ref(id)));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Encoding

fn topic_bytes(t: &TopicHash) -> Bytes {
    Bytes::copy_from_slice(t.as_str().as_bytes())
}

fn ids(ids: &[MessageId]) -> Vec<Bytes> {
    ids.iter().map(|id| id.0.clone()).collect()
}

/// The protobuf of an RPC carrying `subscriptions` and `control`, empty parts omitted.
fn control_rpc(subscriptions: &[SubOpt], control: &Control) -> proto::Rpc {
    let c = control;
    proto::Rpc {
        subscriptions: subscriptions
            .iter()
            .map(|s| proto::SubOpts {
                subscribe: Some(s.subscribe),
                topic_id: Some(topic_bytes(&s.topic)),
            })
            .collect(),
        publish: Vec::new(),
        control: (!c.is_empty()).then(|| proto::ControlMessage {
            ihave: c
                .ihave
                .iter()
                .map(|h| proto::ControlIHave {
                    topic_id: Some(topic_bytes(&h.topic)),
                    message_ids: ids(&h.ids),
                })
                .collect(),
            iwant: if c.iwant.is_empty() {
                Vec::new()
            } else {
                vec![proto::ControlIWant {
                    message_ids: ids(&c.iwant),
                }]
            },
            graft: c
                .graft
                .iter()
                .map(|t| proto::ControlGraft {
                    topic_id: Some(topic_bytes(t)),
                })
                .collect(),
            prune: c
                .prune
                .iter()
                .map(|p| proto::ControlPrune {
                    topic_id: Some(topic_bytes(&p.topic)),
                    peers: p
                        .peers
                        .iter()
                        .map(|x| proto::PeerInfo {
                            peer_id: x.peer_id.clone(),
                            signed_peer_record: x.signed_peer_record.clone(),
                        })
                        .collect(),
                    backoff: p.backoff,
                })
                .collect(),
            idontwant: if c.idontwant.is_empty() {
                Vec::new()
            } else {
                vec![proto::ControlIDontWant {
                    message_ids: ids(&c.idontwant),
                }]
            },
            extensions: c.extensions.as_ref().map(|e| proto::ControlExtensions {
                preamble: e.fields.contains(&PREAMBLE_EXTENSION).then_some(true),
            }),
            preamble: c
                .preamble
                .iter()
                .map(|p| proto::ControlPreamble {
                    topic_id: Some(topic_bytes(&p.topic)),
                    message_id: Some(p.id.0.clone()),
                    message_length: Some(p.len),
                })
                .collect(),
            imreceiving: if c.imreceiving.is_empty() {
                Vec::new()
            } else {
                vec![proto::ControlIDontWant {
                    message_ids: ids(&c.imreceiving),
                }]
            },
        }),
    }
}

/// One whole frame (`uvarint(len) ‖ RPC`) carrying `subscriptions` and `control`.
///
/// Empty parts are omitted (no control field when `control` is empty). Each subscription
/// carries its `subscribe` flag explicitly. All IWANT ids go in one IWANT entry, all
/// IDONTWANT ids in one IDONTWANT entry, all IMRECEIVING ids in one IMRECEIVING entry.
/// `extensions: Some(_)` is sent as a `ControlExtensions` message carrying only the extension
/// we implement ([`PREAMBLE_EXTENSION`], when listed in its `fields`); other listed fields are
/// not sent.
/// Nothing is checked against any limit: keeping frames within what peers accept is the
/// caller's part.
pub fn encode_control_frame(subscriptions: &[SubOpt], control: &Control) -> Bytes {
    Bytes::from(control_rpc(subscriptions, control).encode_length_delimited_to_vec())
}

/// The length of [`encode_control_frame`]'s output, prefix included.
pub fn control_frame_len(subscriptions: &[SubOpt], control: &Control) -> usize {
    let body = control_rpc(subscriptions, control).encoded_len();
    encoded_len_varint(body as u64) + body
}

/// Encoded length of a length-delimited field with a one-byte key (field numbers 1 to 15).
fn bytes_field_len(len: usize) -> usize {
    1 + encoded_len_varint(len as u64) + len
}

fn put_bytes_field(buf: &mut BytesMut, field: u32, v: &[u8]) {
    buf.put_u8((field << 3 | 2) as u8);
    encode_varint(v.len() as u64, buf);
    buf.put_slice(v);
}

fn message_len(
    from: Option<&[u8]>,
    data: &[u8],
    seqno: Option<&[u8]>,
    topic: &str,
    signature: Option<&[u8]>,
    key: Option<&[u8]>,
) -> usize {
    [
        from,
        Some(data),
        seqno,
        Some(topic.as_bytes()),
        signature,
        key,
    ]
    .into_iter()
    .flatten()
    .map(|v| bytes_field_len(v.len()))
    .sum()
}

fn put_message(
    buf: &mut BytesMut,
    from: Option<&[u8]>,
    data: &[u8],
    seqno: Option<&[u8]>,
    topic: &str,
    signature: Option<&[u8]>,
    key: Option<&[u8]>,
) {
    let fields = [
        (MSG_FROM, from),
        (MSG_DATA, Some(data)),
        (MSG_SEQNO, seqno),
        (MSG_TOPIC, Some(topic.as_bytes())),
        (MSG_SIGNATURE, signature),
        (MSG_KEY, key),
    ];
    for (n, v) in fields {
        if let Some(v) = v {
            put_bytes_field(buf, n, v);
        }
    }
}

/// The `Message` protobuf of a published message: the bytes of [`RawMessage::raw`], the
/// input of [`encode_message_frame`].
///
/// Fields in number order; a `None` field is absent from the encoding (not empty), as
/// `StrictNoSign` requires for `from`, `seqno`, `signature` and `key`. `data` and `topic` are
/// always present.
pub fn encode_message_raw(
    from: Option<&[u8]>,
    data: &[u8],
    seqno: Option<&[u8]>,
    topic: &str,
    signature: Option<&[u8]>,
    key: Option<&[u8]>,
) -> Bytes {
    let len = message_len(from, data, seqno, topic, signature, key);
    let mut buf = BytesMut::with_capacity(len);
    put_message(&mut buf, from, data, seqno, topic, signature, key);
    debug_assert_eq!(buf.len(), len);
    buf.freeze()
}

/// The whole frame of an RPC carrying one message and nothing else:
/// `uvarint(len) ‖ 0x12 ‖ uvarint(raw.len()) ‖ raw`, with `raw` a `Message` protobuf
/// ([`encode_message_raw`], [`sign_message`], or [`RawMessage::raw`] to forward a message
/// unchanged). Identical for every receiver: build it once and share it across peers.
pub fn encode_message_frame(raw: &[u8]) -> Bytes {
    let body = bytes_field_len(raw.len());
    let mut buf = BytesMut::with_capacity(encoded_len_varint(body as u64) + body);
    encode_varint(body as u64, &mut buf);
    put_bytes_field(&mut buf, RPC_PUBLISH as u32, raw);
    buf.freeze()
}

/// The length of [`encode_message_frame`]'s output for a message of `raw_len` bytes.
pub fn message_frame_len(raw_len: usize) -> usize {
    let body = bytes_field_len(raw_len);
    encoded_len_varint(body as u64) + body
}

/// The RPC body length of [`encode_message_frame`]'s output for a message of `raw_len` bytes:
/// what a receiver checks against its transmit size limit.
pub fn message_rpc_len(raw_len: usize) -> usize {
    bytes_field_len(raw_len)
}

// ---------------------------------------------------------------------------------------------
// Signing (StrictSign)

/// Why a message's signature was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `from` field.
    #[error("signed message without from")]
    MissingFrom,
    /// `from` is not a peer id.
    #[error("from is not a peer id: {0}")]
    InvalidFrom(ParseError),
    /// No `signature` field.
    #[error("message without signature")]
    MissingSignature,
    /// `from` does not inline its public key (sha2-256 peer id) and no `key` was sent.
    #[error("no public key: from does not inline one and key is absent")]
    MissingKey,
    /// `key` is not a supported public key.
    #[error("invalid key: {0}")]
    InvalidKey(DecodingError),
    /// `key` is not the key of `from`.
    #[error("key does not match from")]
    KeyMismatch,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// The message's protobuf is broken.
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

impl SignatureError {
    /// Who is to blame: a key type we do not implement (RSA, ECDSA) is
    /// [`Blame::PeerIncompatible`]; everything else is [`Blame::PeerMisbehaved`].
    pub fn blame(&self) -> Blame {
        match self {
            SignatureError::InvalidKey(DecodingError::UnsupportedKeyType { .. }) => {
                Blame::PeerIncompatible
            }
            _ => Blame::PeerMisbehaved,
        }
    }
}

/// What a message's signature covers: [`SIGNING_PREFIX`] ‖ the message's protobuf `raw`
/// without its `signature` (5) and `key` (6) fields, every other field kept byte for byte in
/// its order (go- and rust-libp2p sign their encoding with both fields cleared).
///
/// # Errors
/// [`WireError::Malformed`] when `raw` is not a well-formed protobuf.
pub fn signable_bytes(raw: &[u8]) -> Result<Vec<u8>, WireError> {
    let mut out = Vec::with_capacity(SIGNING_PREFIX.len() + raw.len());
    out.extend_from_slice(SIGNING_PREFIX);
    let mut rest = raw;
    while !rest.is_empty() {
        let start = rest;
        let key = read_varint(&mut rest)?;
        let skip = match key & 7 {
            0 => {
                read_varint(&mut rest)?;
                0
            }
            1 => 8,
            2 => usize::try_from(read_varint(&mut rest)?)
                .map_err(|_| WireError::Malformed("truncated field"))?,
            5 => 4,
            _ => return Err(WireError::Malformed("unsupported wire type")),
        };
        rest = rest
            .get(skip..)
            .ok_or(WireError::Malformed("truncated field"))?;
        let (field, _) = start.split_at(start.len() - rest.len());
        let n = key >> 3;
        if n != u64::from(MSG_SIGNATURE) && n != u64::from(MSG_KEY) {
            out.extend_from_slice(field);
        }
    }
    Ok(out)
}

/// A message authored and signed by `keypair` (`StrictSign`): its `Message` protobuf with
/// `from` = our peer id, `data`, `seqno` = 8 bytes big-endian, `topic`, `signature`, and `key`
/// only when the peer id does not inline the public key (never for ed25519 and secp256k1).
pub fn sign_message(keypair: &Keypair, topic: &str, data: &[u8], seqno: u64) -> Bytes {
    let public = keypair.public();
    let peer = public.to_peer_id();
    let from = peer.as_bytes();
    let seqno = seqno.to_be_bytes();
    let key = peer
        .as_public_key()
        .is_none()
        .then(|| public.encode_protobuf());
    let unsigned = message_len(Some(from), data, Some(&seqno), topic, None, None);
    // Room for the longest signature (secp256k1 DER, 72 bytes) and the key.
    let tail = bytes_field_len(72) + key.as_ref().map_or(0, |k| bytes_field_len(k.len()));
    let mut buf = BytesMut::with_capacity(SIGNING_PREFIX.len() + unsigned + tail);
    buf.put_slice(SIGNING_PREFIX);
    put_message(&mut buf, Some(from), data, Some(&seqno), topic, None, None);
    let signature = keypair.sign(&buf);
    put_bytes_field(&mut buf, MSG_SIGNATURE, &signature);
    if let Some(k) = &key {
        put_bytes_field(&mut buf, MSG_KEY, k);
    }
    let mut raw = buf.freeze();
    raw.advance(SIGNING_PREFIX.len());
    raw
}

/// Verify a `StrictSign` message: `from` is a peer id, the public key is `key` (which must
/// then be `from`'s key) or inlined in `from`, and `signature` verifies over
/// [`signable_bytes`] of `raw`. Returns the author.
///
/// Only the signature is checked here; the rest of the signature policy (a `seqno` is present,
/// or under `StrictNoSign` that all four fields are absent) is the router's.
///
/// # Errors
/// A [`SignatureError`] naming what is missing or wrong.
pub fn verify_message(msg: &RawMessage) -> Result<PeerId, SignatureError> {
    let from = msg.from.as_ref().ok_or(SignatureError::MissingFrom)?;
    let peer = PeerId::from_bytes(from).map_err(SignatureError::InvalidFrom)?;
    let signature = msg
        .signature
        .as_ref()
        .ok_or(SignatureError::MissingSignature)?;
    let key = match &msg.key {
        Some(k) => {
            let key = PublicKey::try_decode_protobuf(k).map_err(SignatureError::InvalidKey)?;
            if key.to_peer_id() != peer {
                return Err(SignatureError::KeyMismatch);
            }
            key
        }
        None => peer.as_public_key().ok_or(SignatureError::MissingKey)?,
    };
    let signed = signable_bytes(&msg.raw).map_err(|e| match e {
        WireError::Malformed(m) => SignatureError::Malformed(m),
        _ => SignatureError::Malformed("message protobuf"),
    })?;
    if key.verify(&signed, signature) {
        Ok(peer)
    } else {
        Err(SignatureError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_control() -> Control {
        Control {
            ihave: vec![IHave {
                topic: "t".into(),
                ids: vec![MessageId::new(vec![1, 2]), MessageId::new(vec![0xff])],
            }],
            iwant: vec![MessageId::new(vec![3])],
            graft: vec!["g".into()],
            prune: vec![Prune {
                topic: "p".into(),
                peers: vec![PxPeer {
                    peer_id: Some(Bytes::from_static(b"id")),
                    signed_peer_record: None,
                }],
                backoff: Some(60),
            }],
            idontwant: vec![MessageId::new(vec![4])],
            extensions: Some(Extensions {
                fields: vec![PREAMBLE_EXTENSION],
            }),
            preamble: vec![Preamble {
                topic: "t".into(),
                id: MessageId::new(vec![5]),
                len: 70_000,
            }],
            imreceiving: vec![MessageId::new(vec![6])],
        }
    }

    #[test]
    fn control_frame_matches_prost_and_its_length() {
        let subs = [SubOpt {
            subscribe: true,
            topic: "a".into(),
        }];
        let c = sample_control();
        let frame = encode_control_frame(&subs, &c);
        assert_eq!(frame.len(), control_frame_len(&subs, &c));
        let decoded = proto::Rpc::decode_length_delimited(frame.clone()).unwrap();
        assert_eq!(decoded, control_rpc(&subs, &c));
        let mut buf = BytesMut::from(&frame[..]);
        let rpc = FrameDecoder::new(1 << 20)
            .decode_rpc(&mut buf, &WireLimits::default())
            .unwrap()
            .unwrap();
        assert_eq!(rpc.control, c);
        assert_eq!(rpc.subscriptions, subs);
    }

    #[test]
    fn message_encoding_matches_prost() {
        let raw = encode_message_raw(Some(b"f"), b"data", Some(&[0; 8]), "t", Some(b"s"), None);
        let m = proto::Message::decode(raw.clone()).unwrap();
        let expected = proto::Message {
            from: Some(Bytes::from_static(b"f")),
            data: Some(Bytes::from_static(b"data")),
            seqno: Some(Bytes::from_static(&[0; 8])),
            topic: Some(Bytes::from_static(b"t")),
            signature: Some(Bytes::from_static(b"s")),
            key: None,
        };
        assert_eq!(m, expected);
        assert_eq!(raw, Bytes::from(expected.encode_to_vec()));
        let frame = encode_message_frame(&raw);
        assert_eq!(frame.len(), message_frame_len(raw.len()));
        let rpc = proto::Rpc::decode_length_delimited(frame).unwrap();
        assert_eq!(rpc.publish, vec![m]);
    }
}
