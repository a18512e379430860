//! The pieces of an `ssz_snappy` payload: the minimal unsigned varint length prefix and the
//! snappy framing format, decoded incrementally with bounded memory and encoded the way every
//! client reads it.
//!
//! The framing is parsed here, not by `snap::read::FrameDecoder`: that reader pulls from an
//! `io::Read` with `read_exact` (a partial chunk cannot be resumed), has no notion of a declared
//! length, and would read past the end of one response chunk into the next. Each chunk's body
//! is decompressed with `snap::raw`.

use plexus_eth::max_compressed_len;

use crate::error::CodecError;

/// The stream identifier chunk that starts every framed stream.
pub const STREAM_IDENTIFIER: [u8; 10] =
    [0xff, 0x06, 0x00, 0x00, b's', b'N', b'a', b'P', b'p', b'Y'];
/// Most uncompressed bytes in one snappy chunk (the framing format's limit).
pub const MAX_CHUNK_DATA: usize = 65_536;
/// Largest body of a compressed chunk: checksum + snappy's worst case for 65,536 bytes.
const MAX_COMPRESSED_CHUNK: usize = 4 + 32 + MAX_CHUNK_DATA + MAX_CHUNK_DATA / 6;
/// Largest body of an uncompressed chunk: checksum + 65,536 bytes.
const MAX_UNCOMPRESSED_CHUNK: usize = 4 + MAX_CHUNK_DATA;

const CHUNK_COMPRESSED: u8 = 0x00;
const CHUNK_UNCOMPRESSED: u8 = 0x01;
const CHUNK_PADDING: u8 = 0xfe;
const CHUNK_STREAM_ID: u8 = 0xff;

/// The masked CRC-32C of the framing format: `((crc >> 15) | (crc << 17)) + 0xa282ead8`.
pub fn masked_crc32c(data: &[u8]) -> u32 {
    let crc = crc32c::crc32c(data);
    crc.rotate_right(15).wrapping_add(0xa282_ead8)
}

/// Append the unsigned varint of `n` (minimal, as every encoder writes it).
pub fn encode_varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// An incremental unsigned varint reader: at most 10 bytes, minimal encoding only.
#[derive(Debug, Clone, Default)]
pub(crate) struct VarintReader {
    value: u64,
    len: u32,
}

impl VarintReader {
    /// Consume bytes from `input` until the varint is complete (`Some(value)`) or the input is
    /// exhausted (`None`).
    pub(crate) fn feed(&mut self, input: &mut &[u8]) -> Result<Option<u64>, CodecError> {
        while let Some((&b, rest)) = input.split_first() {
            *input = rest;
            let shift = 7 * self.len;
            self.len += 1;
            if self.len == 10 && b > 1 {
                return Err(CodecError::VarintOverflow);
            }
            self.value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                if b == 0 && self.len > 1 {
                    return Err(CodecError::NonMinimalVarint);
                }
                return Ok(Some(self.value));
            }
            if self.len == 10 {
                return Err(CodecError::VarintOverflow);
            }
        }
        Ok(None)
    }
}

/// Bounds on the snappy frames of one payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FrameBounds {
    /// Chunks allowed beyond `ceil(declared / 65536)` (stream identifiers, padding, chunks
    /// smaller than 64 KiB).
    pub(crate) max_extra_frames: u64,
}

#[derive(Debug)]
enum Stage {
    /// Reading a 4-byte chunk header.
    Header { buf: [u8; 4], got: usize },
    /// Reading the body of a chunk we keep (stream identifier, data).
    Body { kind: u8, len: usize },
    /// Skipping the body of a padding or skippable chunk.
    Skip { left: usize },
}

/// Decodes the snappy frames of one payload of a declared uncompressed length, incrementally.
///
/// Memory: the output grows only as chunks decompress (never allocated from the declared
/// length), plus one chunk body (≤ 76,494 bytes). A chunk that would produce more than the
/// declared length fails from its header (uncompressed) or its block preamble (compressed),
/// before it is decompressed. Never consumes bytes past the payload's last chunk.
#[derive(Debug)]
pub(crate) struct PayloadDecoder {
    declared: u64,
    out: Vec<u8>,
    stage: Stage,
    body: Vec<u8>,
    seen_identifier: bool,
    consumed: u64,
    budget: u64,
    frames: u64,
    max_frames: u64,
}

impl PayloadDecoder {
    pub(crate) fn new(declared: u64, bounds: FrameBounds) -> Self {
        PayloadDecoder {
            declared,
            out: Vec::new(),
            stage: Stage::Header {
                buf: [0; 4],
                got: 0,
            },
            body: Vec::new(),
            seen_identifier: false,
            consumed: 0,
            budget: max_compressed_len(declared),
            frames: 0,
            max_frames: declared
                .div_ceil(MAX_CHUNK_DATA as u64)
                .saturating_add(bounds.max_extra_frames),
        }
    }

    /// Whether every declared byte has been produced.
    pub(crate) fn is_complete(&self) -> bool {
        self.out.len() as u64 == self.declared
    }

    /// The payload, once complete (the decoder is spent afterwards).
    pub(crate) fn take_payload(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    /// Consume bytes from `input` until the payload is complete or the input is exhausted.
    /// Returns whether the payload is complete.
    pub(crate) fn feed(&mut self, input: &mut &[u8]) -> Result<bool, CodecError> {
        while !self.is_complete() && !input.is_empty() {
            match &mut self.stage {
                Stage::Header { buf, got } => {
                    let n = (4 - *got).min(input.len());
                    buf[*got..*got + n].copy_from_slice(&input[..n]);
                    *got += n;
                    *input = &input[n..];
                    let header = (*got == 4).then_some(*buf);
                    self.charge(n)?;
                    if let Some(h) = header {
                        let len = u32::from_le_bytes([h[1], h[2], h[3], 0]) as usize;
                        self.start_chunk(h[0], len)?;
                    }
                }
                Stage::Body { kind, len } => {
                    let (kind, len) = (*kind, *len);
                    let n = (len - self.body.len()).min(input.len());
                    self.body.extend_from_slice(&input[..n]);
                    *input = &input[n..];
                    self.charge(n)?;
                    if self.body.len() == len {
                        self.finish_chunk(kind)?;
                        self.stage = Stage::Header {
                            buf: [0; 4],
                            got: 0,
                        };
                    }
                }
                Stage::Skip { left } => {
                    let n = (*left).min(input.len());
                    *left -= n;
                    *input = &input[n..];
                    let done = *left == 0;
                    self.charge(n)?;
                    if done {
                        self.stage = Stage::Header {
                            buf: [0; 4],
                            got: 0,
                        };
                    }
                }
            }
        }
        Ok(self.is_complete())
    }

    fn charge(&mut self, n: usize) -> Result<(), CodecError> {
        self.consumed += n as u64;
        if self.consumed > self.budget {
            return Err(CodecError::CompressedTooLong { max: self.budget });
        }
        Ok(())
    }

    fn start_chunk(&mut self, kind: u8, len: usize) -> Result<(), CodecError> {
        self.frames += 1;
        if self.frames > self.max_frames {
            return Err(CodecError::TooManyFrames {
                max: self.max_frames,
            });
        }
        if !self.seen_identifier && kind != CHUNK_STREAM_ID {
            return Err(CodecError::MissingStreamIdentifier);
        }
        let max = match kind {
            CHUNK_STREAM_ID => {
                if len != STREAM_IDENTIFIER.len() - 4 {
                    return Err(CodecError::BadStreamIdentifier);
                }
                Some(len)
            }
            CHUNK_COMPRESSED => Some(MAX_COMPRESSED_CHUNK),
            CHUNK_UNCOMPRESSED => Some(MAX_UNCOMPRESSED_CHUNK),
            0x02..=0x7f => return Err(CodecError::ReservedChunk(kind)),
            // Padding and reserved skippable chunks: only the compressed budget bounds them.
            CHUNK_PADDING | 0x80..=0xfd => None,
        };
        if let Some(max) = max
            && len > max
        {
            return Err(CodecError::ChunkTooLarge {
                len: len as u64,
                max: max as u64,
            });
        }
        // A chunk whose body cannot fit the remaining budget fails now, unread.
        if self.consumed + len as u64 > self.budget {
            return Err(CodecError::CompressedTooLong { max: self.budget });
        }
        if max.is_none() {
            // Skipped unread.
            self.stage = if len == 0 {
                Stage::Header {
                    buf: [0; 4],
                    got: 0,
                }
            } else {
                Stage::Skip { left: len }
            };
            return Ok(());
        }
        if kind != CHUNK_STREAM_ID {
            if len < 4 {
                return Err(CodecError::Snappy(
                    "data chunk shorter than its checksum".into(),
                ));
            }
            if kind == CHUNK_UNCOMPRESSED {
                // Known from the header: an oversized chunk is refused unread.
                self.check_room((len - 4) as u64)?;
            }
        }
        self.body.clear();
        self.stage = Stage::Body { kind, len };
        Ok(())
    }

    /// Fail if `n` more bytes would exceed the declared length.
    fn check_room(&self, n: u64) -> Result<(), CodecError> {
        let would_be = self.out.len() as u64 + n;
        if would_be > self.declared {
            return Err(CodecError::Overflow {
                declared: self.declared,
                would_be,
            });
        }
        Ok(())
    }

    fn finish_chunk(&mut self, kind: u8) -> Result<(), CodecError> {
        match kind {
            CHUNK_STREAM_ID => {
                if self.body[..] != STREAM_IDENTIFIER[4..] {
                    return Err(CodecError::BadStreamIdentifier);
                }
                self.seen_identifier = true;
            }
            CHUNK_COMPRESSED => {
                let expected =
                    u32::from_le_bytes([self.body[0], self.body[1], self.body[2], self.body[3]]);
                let block = &self.body[4..];
                let n = snap::raw::decompress_len(block)
                    .map_err(|e| CodecError::Snappy(e.to_string()))?;
                if n > MAX_CHUNK_DATA {
                    return Err(CodecError::ChunkTooLarge {
                        len: n as u64,
                        max: MAX_CHUNK_DATA as u64,
                    });
                }
                self.check_room(n as u64)?;
                let start = self.out.len();
                self.out.resize(start + n, 0);
                let written = snap::raw::Decoder::new()
                    .decompress(block, &mut self.out[start..])
                    .map_err(|e| CodecError::Snappy(e.to_string()))?;
                if written != n {
                    return Err(CodecError::Snappy("block shorter than its preamble".into()));
                }
                if masked_crc32c(&self.out[start..]) != expected {
                    return Err(CodecError::BadChecksum);
                }
            }
            CHUNK_UNCOMPRESSED => {
                let expected =
                    u32::from_le_bytes([self.body[0], self.body[1], self.body[2], self.body[3]]);
                let data = &self.body[4..];
                if masked_crc32c(data) != expected {
                    return Err(CodecError::BadChecksum);
                }
                self.out.extend_from_slice(data);
            }
            _ => {}
        }
        Ok(())
    }
}

/// Append `data` as one snappy framed stream: the stream identifier, then chunks of at most
/// 65,536 input bytes, each compressed unless compression saves less than 1/8 (then stored
/// uncompressed), as snappy's reference framing encoder and Lighthouse, Prysm, Teku and
/// Lodestar do. Nothing at all for empty data (as snap's encoder; decoders accept both
/// nothing and a bare identifier there).
pub fn encode_frames(data: &[u8], out: &mut Vec<u8>) {
    if data.is_empty() {
        return;
    }
    out.extend_from_slice(&STREAM_IDENTIFIER);
    let mut encoder = snap::raw::Encoder::new();
    let mut scratch = vec![0u8; snap::raw::max_compress_len(MAX_CHUNK_DATA.min(data.len()))];
    for chunk in data.chunks(MAX_CHUNK_DATA) {
        let crc = masked_crc32c(chunk);
        // Compressing into a buffer of max_compress_len(chunk) cannot fail.
        let compressed = encoder.compress(chunk, &mut scratch).unwrap_or(usize::MAX);
        let (kind, body) = if compressed < chunk.len() - chunk.len() / 8 {
            (CHUNK_COMPRESSED, &scratch[..compressed])
        } else {
            (CHUNK_UNCOMPRESSED, chunk)
        };
        let len = (body.len() + 4) as u32;
        out.push(kind);
        out.extend_from_slice(&len.to_le_bytes()[..3]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(body);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32c_check_value_and_mask() {
        // The CRC-32C check value from the framing format's references.
        assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
        // From the spec notes' ping/1 vector: data 01 00.. 00 has masked CRC 0x41de7501... the
        // LE bytes on the wire are 01 75 de 41.
        let ping = 1u64.to_le_bytes();
        assert_eq!(masked_crc32c(&ping).to_le_bytes(), [0x01, 0x75, 0xde, 0x41]);
    }

    #[test]
    fn varint_minimal_only() {
        let read = |bytes: &[u8]| {
            let mut r = VarintReader::default();
            let mut input = bytes;
            r.feed(&mut input)
        };
        assert_eq!(read(&[0x00]), Ok(Some(0)));
        assert_eq!(read(&[0xac, 0x02]), Ok(Some(300)));
        assert_eq!(read(&[0x80, 0x00]), Err(CodecError::NonMinimalVarint));
        assert_eq!(read(&[0xac, 0x82, 0x00]), Err(CodecError::NonMinimalVarint));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(read(&max), Ok(Some(u64::MAX)));
        let over = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02];
        assert_eq!(read(&over), Err(CodecError::VarintOverflow));
        let long = [0x80; 11];
        assert_eq!(read(&long), Err(CodecError::VarintOverflow));
        assert_eq!(read(&[0x80, 0x80]), Ok(None));
        for n in [0u64, 1, 127, 128, 16_383, 16_384, 10 << 20, u64::MAX] {
            let mut out = Vec::new();
            encode_varint(n, &mut out);
            assert_eq!(read(&out), Ok(Some(n)), "{n}");
        }
    }
}
