//! The yamux frame header: 12 bytes, big-endian, pure encode/decode.
//!
//! ```text
//! | version u8 | type u8 | flags u16 | stream id u32 | length u32 |
//! ```
//!
//! Only `Data` frames carry a body (`length` bytes). For `WindowUpdate` the
//! length is a window *delta*, for `Ping` an opaque value, for `GoAway` an
//! error code.

use bytes::BufMut;

/// Length of a frame header in bytes.
pub const HEADER_LEN: usize = 12;

/// The only yamux version.
pub const VERSION: u8 = 0;

/// The type of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FrameType {
    /// Stream data; `length` bytes of body follow the header.
    Data,
    /// A window increment (`length` is the delta) and/or stream flags.
    WindowUpdate,
    /// Ping (`SYN`) or its answer (`ACK`); `length` is an opaque value.
    Ping,
    /// Session termination; `length` is the error code.
    GoAway,
}

impl FrameType {
    /// The wire value.
    pub const fn as_u8(self) -> u8 {
        match self {
            FrameType::Data => 0,
            FrameType::WindowUpdate => 1,
            FrameType::Ping => 2,
            FrameType::GoAway => 3,
        }
    }

    /// Parse a wire value.
    pub const fn from_u8(v: u8) -> Option<FrameType> {
        match v {
            0 => Some(FrameType::Data),
            1 => Some(FrameType::WindowUpdate),
            2 => Some(FrameType::Ping),
            3 => Some(FrameType::GoAway),
            _ => None,
        }
    }
}

/// Frame flags (a bit set of `SYN`, `ACK`, `FIN`, `RST`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Flags(u16);

impl Flags {
    /// No flag.
    pub const NONE: Flags = Flags(0);
    /// Opens a stream (or marks an outbound ping).
    pub const SYN: Flags = Flags(0x1);
    /// Acknowledges a stream (or answers a ping).
    pub const ACK: Flags = Flags(0x2);
    /// Half-closes a stream.
    pub const FIN: Flags = Flags(0x4);
    /// Resets a stream.
    pub const RST: Flags = Flags(0x8);
    /// Every defined bit.
    pub const ALL: Flags = Flags(0xf);

    /// The wire bits.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// Flags from wire bits; `None` if an undefined bit is set.
    pub const fn from_bits(bits: u16) -> Option<Flags> {
        if bits & !Self::ALL.0 == 0 {
            Some(Flags(bits))
        } else {
            None
        }
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }
}

impl std::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, rhs: Flags) -> Flags {
        Flags(self.0 | rhs.0)
    }
}

impl std::ops::BitOrAssign for Flags {
    fn bitor_assign(&mut self, rhs: Flags) {
        self.0 |= rhs.0;
    }
}

/// A decoded frame header (the version is always [`VERSION`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Header {
    /// The frame type.
    pub ty: FrameType,
    /// The flags.
    pub flags: Flags,
    /// The stream id (0 for the session).
    pub stream_id: u32,
    /// Body length (Data), window delta (WindowUpdate), opaque value (Ping) or
    /// error code (GoAway).
    pub length: u32,
}

/// A header that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The version is not 0.
    #[error("unsupported yamux version {0}")]
    Version(u8),
    /// The type is not one of the four defined ones.
    #[error("unknown frame type {0}")]
    Type(u8),
    /// A flag bit outside `SYN|ACK|FIN|RST` is set.
    #[error("undefined flag bits {0:#06x}")]
    Flags(u16),
}

impl Header {
    /// A data header for `len` body bytes.
    pub const fn data(stream_id: u32, flags: Flags, len: u32) -> Header {
        Header {
            ty: FrameType::Data,
            flags,
            stream_id,
            length: len,
        }
    }

    /// A window update granting `delta` more bytes.
    pub const fn window_update(stream_id: u32, flags: Flags, delta: u32) -> Header {
        Header {
            ty: FrameType::WindowUpdate,
            flags,
            stream_id,
            length: delta,
        }
    }

    /// An outbound ping carrying `value`.
    pub const fn ping(value: u32) -> Header {
        Header {
            ty: FrameType::Ping,
            flags: Flags::SYN,
            stream_id: 0,
            length: value,
        }
    }

    /// The answer to a ping carrying `value`.
    pub const fn pong(value: u32) -> Header {
        Header {
            ty: FrameType::Ping,
            flags: Flags::ACK,
            stream_id: 0,
            length: value,
        }
    }

    /// A go-away with error `code`.
    pub const fn go_away(code: u32) -> Header {
        Header {
            ty: FrameType::GoAway,
            flags: Flags::NONE,
            stream_id: 0,
            length: code,
        }
    }

    /// Encode to the 12 wire bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[0] = VERSION;
        b[1] = self.ty.as_u8();
        b[2..4].copy_from_slice(&self.flags.bits().to_be_bytes());
        b[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        b[8..12].copy_from_slice(&self.length.to_be_bytes());
        b
    }

    /// Append the 12 wire bytes to `dst`.
    pub fn encode_into<B: BufMut>(&self, dst: &mut B) {
        dst.put_slice(&self.encode());
    }

    /// Decode 12 wire bytes. Checks version, type and flag bits; the meaning of
    /// the fields (stream ids, flag combinations) is checked by the core.
    pub fn decode(b: &[u8; HEADER_LEN]) -> Result<Header, FrameError> {
        if b[0] != VERSION {
            return Err(FrameError::Version(b[0]));
        }
        let ty = FrameType::from_u8(b[1]).ok_or(FrameError::Type(b[1]))?;
        let bits = u16::from_be_bytes([b[2], b[3]]);
        let flags = Flags::from_bits(bits).ok_or(FrameError::Flags(bits))?;
        let stream_id = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        let length = u32::from_be_bytes([b[8], b[9], b[10], b[11]]);
        Ok(Header {
            ty,
            flags,
            stream_id,
            length,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn arb_header() -> impl Strategy<Value = Header> {
        (0u8..4, 0u16..16, any::<u32>(), any::<u32>()).prop_map(|(t, f, id, len)| Header {
            ty: FrameType::from_u8(t).unwrap(),
            flags: Flags::from_bits(f).unwrap(),
            stream_id: id,
            length: len,
        })
    }

    proptest! {
        #[test]
        fn decode_encode_roundtrip(h in arb_header()) {
            prop_assert_eq!(Header::decode(&h.encode()), Ok(h));
        }

        #[test]
        fn decode_arbitrary_bytes_never_panics_and_checks_fields(b in any::<[u8; 12]>()) {
            match Header::decode(&b) {
                Ok(h) => {
                    prop_assert_eq!(b[0], 0);
                    prop_assert!(b[1] < 4);
                    prop_assert_eq!(h.encode(), b);
                }
                Err(FrameError::Version(v)) => prop_assert!(v != 0 && v == b[0]),
                Err(FrameError::Type(t)) => prop_assert!(b[0] == 0 && t >= 4),
                Err(FrameError::Flags(f)) => prop_assert!(b[1] < 4 && f & !0xf != 0),
            }
        }
    }

    #[test]
    fn known_wire_bytes() {
        let h = Header::data(3, Flags::SYN | Flags::FIN, 0x0102_0304);
        assert_eq!(h.encode(), [0, 0, 0, 5, 0, 0, 0, 3, 1, 2, 3, 4]);
        assert_eq!(
            Header::ping(7).encode(),
            [0, 2, 0, 1, 0, 0, 0, 0, 0, 0, 0, 7]
        );
        assert_eq!(
            Header::go_away(1).encode(),
            [0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
    }

    #[test]
    fn rejects_bad_version_type_and_flags() {
        assert_eq!(
            Header::decode(&[1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
            Err(FrameError::Version(1))
        );
        assert_eq!(
            Header::decode(&[0, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
            Err(FrameError::Type(4))
        );
        assert_eq!(
            Header::decode(&[0, 0, 0, 0x10, 0, 0, 0, 1, 0, 0, 0, 0]),
            Err(FrameError::Flags(0x10))
        );
        assert_eq!(
            Header::decode(&[0, 0, 0x80, 0, 0, 0, 0, 1, 0, 0, 0, 0]),
            Err(FrameError::Flags(0x8000))
        );
    }
}
