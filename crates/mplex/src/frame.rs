//! The mplex frame codec: pure encode/decode, no state.
//!
//! ```text
//! | header: uvarint | length: uvarint | data: `length` bytes |
//! header = stream_id << 3 | flag
//! ```
//!
//! The header varint is at most 9 bytes (so stream ids are below 2^60), both
//! varints must be minimal (as the unsigned-varint spec requires), and the
//! length is checked against a limit (the spec's 1 MiB by default) from the
//! prefix alone, before any of the body is needed.

use bytes::BufMut;

/// The spec's cap on the data of one frame: 1 MiB.
pub const MAX_FRAME_SIZE: u32 = 1024 * 1024;

/// Largest stream id: a 9-byte header varint carries 63 bits, 3 of them flag.
pub const MAX_STREAM_ID: u64 = (1 << 60) - 1;

/// Most bytes of a header varint (unsigned-varint spec: 9 bytes, 63 bits).
pub const MAX_HEADER_VARINT: usize = 9;

/// Most bytes of a length varint we look at (a `u64`).
const MAX_LENGTH_VARINT: usize = 10;

/// Longest encoded prefix (header plus length varint) for a body of at most
/// [`MAX_FRAME_SIZE`] bytes: 9 + 3.
pub const MAX_PREFIX_LEN: usize = MAX_HEADER_VARINT + 3;

/// The 3-bit flag of a frame. "Initiator" flags are sent by the side that
/// opened the stream, "Receiver" flags by the side that accepted it. So on
/// receipt, `NewStream` and the `*Initiator` flags address a stream the
/// *remote* opened, the `*Receiver` flags one *we* opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    /// 0: open a stream; the body is its name (debugging only, ignored).
    NewStream,
    /// 1: data, sent by the acceptor of the stream.
    MessageReceiver,
    /// 2: data, sent by the opener of the stream.
    MessageInitiator,
    /// 3: half-close by the acceptor.
    CloseReceiver,
    /// 4: half-close by the opener.
    CloseInitiator,
    /// 5: reset by the acceptor.
    ResetReceiver,
    /// 6: reset by the opener.
    ResetInitiator,
}

/// What a frame does, whoever sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Open a stream.
    NewStream,
    /// Stream data.
    Message,
    /// Half-close.
    Close,
    /// Reset both ways.
    Reset,
}

impl Flag {
    /// The wire value (0..=6).
    pub const fn as_u8(self) -> u8 {
        match self {
            Flag::NewStream => 0,
            Flag::MessageReceiver => 1,
            Flag::MessageInitiator => 2,
            Flag::CloseReceiver => 3,
            Flag::CloseInitiator => 4,
            Flag::ResetReceiver => 5,
            Flag::ResetInitiator => 6,
        }
    }

    /// Parse a wire value; 7 (and anything above) is undefined.
    pub const fn from_u8(v: u8) -> Option<Flag> {
        Some(match v {
            0 => Flag::NewStream,
            1 => Flag::MessageReceiver,
            2 => Flag::MessageInitiator,
            3 => Flag::CloseReceiver,
            4 => Flag::CloseInitiator,
            5 => Flag::ResetReceiver,
            6 => Flag::ResetInitiator,
            _ => return None,
        })
    }

    /// What the frame does.
    pub const fn kind(self) -> Kind {
        match self {
            Flag::NewStream => Kind::NewStream,
            Flag::MessageReceiver | Flag::MessageInitiator => Kind::Message,
            Flag::CloseReceiver | Flag::CloseInitiator => Kind::Close,
            Flag::ResetReceiver | Flag::ResetInitiator => Kind::Reset,
        }
    }

    /// Whether the sender is the stream's opener (`NewStream` and the
    /// `*Initiator` flags).
    pub const fn from_opener(self) -> bool {
        self.as_u8() & 1 == 0
    }

    /// The flag for `kind` sent by the opener (`opener == true`) or by the
    /// acceptor of the stream. `NewStream` is always the opener's.
    pub const fn new(kind: Kind, opener: bool) -> Flag {
        match (kind, opener) {
            (Kind::NewStream, _) => Flag::NewStream,
            (Kind::Message, true) => Flag::MessageInitiator,
            (Kind::Message, false) => Flag::MessageReceiver,
            (Kind::Close, true) => Flag::CloseInitiator,
            (Kind::Close, false) => Flag::CloseReceiver,
            (Kind::Reset, true) => Flag::ResetInitiator,
            (Kind::Reset, false) => Flag::ResetReceiver,
        }
    }
}

/// A decoded frame prefix: the body (`len` bytes) follows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// The stream id (at most [`MAX_STREAM_ID`]).
    pub stream_id: u64,
    /// The flag.
    pub flag: Flag,
    /// Body length.
    pub len: u32,
}

/// A frame prefix that cannot be decoded. Each is the peer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The header varint runs past 9 bytes (stream id ≥ 2^60).
    #[error("header varint longer than 9 bytes")]
    HeaderTooLong,
    /// The length varint runs past 10 bytes.
    #[error("length varint longer than 10 bytes")]
    LengthTooLong,
    /// A varint is not minimally encoded (trailing zero groups).
    #[error("varint not minimally encoded")]
    NotMinimal,
    /// Flag 7, which the spec does not define.
    #[error("undefined flag {0}")]
    InvalidFlag(u8),
    /// The body is longer than allowed.
    #[error("frame body of {len} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// The announced length.
        len: u64,
        /// The limit in force.
        max: u32,
    },
}

/// Bytes a varint of `v` takes.
pub const fn varint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

fn put_varint<B: BufMut>(mut v: u64, dst: &mut B) {
    while v >= 0x80 {
        dst.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    dst.put_u8(v as u8);
}

/// Decode a varint of at most `max` bytes from the start of `src`.
/// `Ok(None)`: more bytes needed. `Err(())`: longer than `max` bytes.
fn get_varint(src: &[u8], max: usize) -> Result<Option<(u64, usize)>, VarintError> {
    let mut v: u64 = 0;
    for (i, &b) in src.iter().enumerate() {
        if i >= max {
            return Err(VarintError::TooLong);
        }
        // i < 10, so the shift is < 64; bits beyond 64 are caught below.
        let part = u64::from(b & 0x7f);
        if i == 9 && part > 1 {
            return Err(VarintError::TooLong);
        }
        v |= part << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(VarintError::NotMinimal);
            }
            return Ok(Some((v, i + 1)));
        }
    }
    if src.len() >= max {
        return Err(VarintError::TooLong);
    }
    Ok(None)
}

enum VarintError {
    TooLong,
    NotMinimal,
}

impl Header {
    /// A header for `stream_id` with `flag` and a `len`-byte body.
    pub const fn new(stream_id: u64, flag: Flag, len: u32) -> Header {
        Header {
            stream_id,
            flag,
            len,
        }
    }

    /// Encoded length of this prefix.
    pub const fn encoded_len(&self) -> usize {
        varint_len(self.header_value()) + varint_len(self.len as u64)
    }

    const fn header_value(&self) -> u64 {
        (self.stream_id << 3) | self.flag.as_u8() as u64
    }

    /// Append the prefix to `dst` (the caller appends `len` body bytes).
    /// `stream_id` must be at most [`MAX_STREAM_ID`] (debug-asserted; the core
    /// never allocates more).
    pub fn encode_into<B: BufMut>(&self, dst: &mut B) {
        debug_assert!(self.stream_id <= MAX_STREAM_ID);
        put_varint(self.header_value(), dst);
        put_varint(u64::from(self.len), dst);
    }

    /// Decode a prefix from the start of `src`, allowing bodies up to
    /// `max_len` bytes. `Ok(None)` if `src` holds only part of a prefix
    /// (never more than 9 + 10 bytes are needed to decide); otherwise the
    /// header and the number of prefix bytes consumed. The body is not
    /// needed.
    pub fn decode(src: &[u8], max_len: u32) -> Result<Option<(Header, usize)>, FrameError> {
        let (h, n1) = match get_varint(src, MAX_HEADER_VARINT) {
            Ok(Some(x)) => x,
            Ok(None) => return Ok(None),
            Err(VarintError::TooLong) => return Err(FrameError::HeaderTooLong),
            Err(VarintError::NotMinimal) => return Err(FrameError::NotMinimal),
        };
        let flag_bits = (h & 7) as u8;
        let flag = Flag::from_u8(flag_bits).ok_or(FrameError::InvalidFlag(flag_bits))?;
        let (len, n2) = match get_varint(&src[n1..], MAX_LENGTH_VARINT) {
            Ok(Some(x)) => x,
            Ok(None) => return Ok(None),
            Err(VarintError::TooLong) => return Err(FrameError::LengthTooLong),
            Err(VarintError::NotMinimal) => return Err(FrameError::NotMinimal),
        };
        if len > u64::from(max_len) {
            return Err(FrameError::TooLarge { len, max: max_len });
        }
        Ok(Some((
            Header {
                stream_id: h >> 3,
                flag,
                // len <= max_len, a u32.
                len: len as u32,
            },
            n1 + n2,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_header() -> impl Strategy<Value = Header> {
        (0..=MAX_STREAM_ID, 0u8..7, 0..=MAX_FRAME_SIZE).prop_map(|(id, f, len)| Header {
            stream_id: id,
            flag: Flag::from_u8(f).unwrap(),
            len,
        })
    }

    fn encode(h: &Header) -> Vec<u8> {
        let mut v = Vec::new();
        h.encode_into(&mut v);
        v
    }

    proptest! {
        #[test]
        fn decode_encode_roundtrip(h in arb_header(), body in prop::collection::vec(any::<u8>(), 0..64)) {
            let mut wire = encode(&h);
            prop_assert_eq!(wire.len(), h.encoded_len());
            prop_assert!(wire.len() <= MAX_PREFIX_LEN);
            wire.extend_from_slice(&body);
            prop_assert_eq!(Header::decode(&wire, MAX_FRAME_SIZE), Ok(Some((h, h.encoded_len()))));
            // Every strict prefix of the prefix is "need more".
            for cut in 0..h.encoded_len() {
                prop_assert_eq!(Header::decode(&wire[..cut], MAX_FRAME_SIZE), Ok(None));
            }
        }

        #[test]
        fn decode_arbitrary_bytes_never_panics(b in prop::collection::vec(any::<u8>(), 0..24), max in any::<u32>()) {
            match Header::decode(&b, max) {
                Ok(Some((h, n))) => {
                    prop_assert!(n <= b.len());
                    prop_assert!(h.len <= max);
                    prop_assert!(h.stream_id <= MAX_STREAM_ID);
                    // Accepted input is canonical: it re-encodes to itself.
                    prop_assert_eq!(&encode(&h)[..], &b[..n]);
                }
                Ok(None) => prop_assert!(b.len() < MAX_HEADER_VARINT + MAX_LENGTH_VARINT),
                Err(_) => {}
            }
        }

        #[test]
        fn flag_semantics_are_consistent(f in 0u8..7) {
            let flag = Flag::from_u8(f).unwrap();
            prop_assert_eq!(flag.as_u8(), f);
            prop_assert_eq!(Flag::new(flag.kind(), flag.from_opener()), flag);
        }
    }

    #[test]
    fn known_wire_bytes() {
        // Stream 17, MessageInitiator (2): header 17 << 3 | 2 = 138 = 0x8a 0x01.
        let h = Header::new(17, Flag::MessageInitiator, 300);
        assert_eq!(encode(&h), [0x8a, 0x01, 0xac, 0x02]);
        assert_eq!(encode(&Header::new(0, Flag::NewStream, 0)), [0, 0]);
        assert_eq!(encode(&Header::new(3, Flag::ResetReceiver, 0)), [0x1d, 0]);
        assert_eq!(
            encode(&Header::new(
                MAX_STREAM_ID,
                Flag::ResetInitiator,
                MAX_FRAME_SIZE
            ))
            .len(),
            9 + 3
        );
    }

    #[test]
    fn flag_initiator_and_receiver_semantics() {
        assert!(Flag::NewStream.from_opener());
        assert!(Flag::MessageInitiator.from_opener());
        assert!(!Flag::MessageReceiver.from_opener());
        assert!(Flag::CloseInitiator.from_opener());
        assert!(!Flag::CloseReceiver.from_opener());
        assert!(Flag::ResetInitiator.from_opener());
        assert!(!Flag::ResetReceiver.from_opener());
        assert_eq!(Flag::new(Kind::Message, false), Flag::MessageReceiver);
        assert_eq!(Flag::new(Kind::Reset, true), Flag::ResetInitiator);
    }

    #[test]
    fn rejects_what_the_spec_forbids() {
        // Flag 7.
        assert_eq!(
            Header::decode(&[0x0f, 0], MAX_FRAME_SIZE),
            Err(FrameError::InvalidFlag(7))
        );
        // One byte over the limit, from the prefix alone.
        let mut v = Vec::new();
        Header::new(1, Flag::MessageInitiator, MAX_FRAME_SIZE + 1).encode_into(&mut v);
        assert_eq!(
            Header::decode(&v, MAX_FRAME_SIZE),
            Err(FrameError::TooLarge {
                len: u64::from(MAX_FRAME_SIZE) + 1,
                max: MAX_FRAME_SIZE
            })
        );
        // Exactly the limit is fine.
        let mut v = Vec::new();
        Header::new(1, Flag::MessageInitiator, MAX_FRAME_SIZE).encode_into(&mut v);
        assert!(matches!(Header::decode(&v, MAX_FRAME_SIZE), Ok(Some(_))));
        // A 10-byte header varint (stream id ≥ 2^60), rejected after 9 bytes.
        assert_eq!(
            Header::decode(&[0xff; 9], MAX_FRAME_SIZE),
            Err(FrameError::HeaderTooLong)
        );
        assert_eq!(Header::decode(&[0xff; 8], MAX_FRAME_SIZE), Ok(None));
        // An 11-byte length varint.
        let mut v = vec![0x0a];
        v.extend_from_slice(&[0xff; 10]);
        assert_eq!(Header::decode(&v, u32::MAX), Err(FrameError::LengthTooLong));
        // A 10-byte length varint beyond 64 bits.
        let mut v = vec![0x0a];
        v.extend_from_slice(&[0xff; 9]);
        v.push(0x02);
        assert_eq!(Header::decode(&v, u32::MAX), Err(FrameError::LengthTooLong));
        // Non-minimal varints: 0x80 0x00 is zero in two bytes.
        assert_eq!(
            Header::decode(&[0x8a, 0x00, 0], MAX_FRAME_SIZE),
            Err(FrameError::NotMinimal)
        );
        assert_eq!(
            Header::decode(&[0x0a, 0x81, 0x00], MAX_FRAME_SIZE),
            Err(FrameError::NotMinimal)
        );
    }

    #[test]
    fn varint_len_matches_encoding() {
        for v in [
            0u64,
            1,
            127,
            128,
            16383,
            16384,
            1 << 20,
            u64::MAX >> 1,
            u64::MAX,
        ] {
            let mut b = Vec::new();
            put_varint(v, &mut b);
            assert_eq!(b.len(), varint_len(v), "{v}");
        }
    }
}
