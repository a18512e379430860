//! The sans-IO `ssz_snappy` codec: request and response-chunk decoders fed bytes as they
//! arrive, and the encoders.
//!
//! ```text
//! request        = uvarint(ssz_len) snappy_frames(ssz)            (nothing for empty requests)
//! response_chunk = result [context(4), success only] uvarint(ssz_len) snappy_frames(ssz)
//! ```

use std::sync::Arc;

use plexus_eth::{
    ChainConfig, DEFAULT_MAX_PAYLOAD_SIZE, ErrorMessage, Fork, ForkDigest, ForkSchedule,
};

use crate::error::{CodecError, EncodeError};
use crate::frame::{
    FrameBounds, PayloadDecoder, STREAM_IDENTIFIER, VarintReader, encode_frames, encode_varint,
};
use crate::protocol::{CONTEXT_BYTES_LEN, Protocol, ResponseCode};

/// Bounds of the codec. Every field has a safe default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecConfig {
    /// `MAX_PAYLOAD_SIZE`: no request or response chunk may declare more uncompressed bytes,
    /// whatever its type allows. Default 10 MiB (the spec's); [`CodecConfig::for_chain`]
    /// takes the chain config's.
    pub max_payload_size: u64,
    /// Snappy chunks allowed per payload beyond `ceil(len / 65536)` (the stream identifier,
    /// padding, chunks smaller than 64 KiB). Default 32: every client encoder writes full
    /// 64 KiB chunks and one identifier.
    pub max_extra_frames: u64,
}

impl Default for CodecConfig {
    fn default() -> Self {
        CodecConfig {
            max_payload_size: DEFAULT_MAX_PAYLOAD_SIZE,
            max_extra_frames: 32,
        }
    }
}

impl CodecConfig {
    /// The defaults with the chain config's `MAX_PAYLOAD_SIZE`.
    pub fn for_chain(config: &ChainConfig) -> Self {
        CodecConfig {
            max_payload_size: config.max_payload_size,
            ..CodecConfig::default()
        }
    }

    fn frames(&self) -> FrameBounds {
        FrameBounds {
            max_extra_frames: self.max_extra_frames,
        }
    }
}

fn check_declared(len: u64, (min, max): (u64, u64), cap: u64) -> Result<(), CodecError> {
    let max = max.min(cap);
    if len < min || len > max {
        return Err(CodecError::LengthOutOfBounds { len, min, max });
    }
    Ok(())
}

#[derive(Debug)]
enum RequestState {
    Length(VarintReader),
    Payload(PayloadDecoder),
    /// The payload is complete; for an empty payload a lone stream identifier may follow.
    Complete {
        ssz: Vec<u8>,
        trailer: usize,
    },
    Failed,
}

/// Decodes one request, fed bytes as they arrive; [`RequestDecoder::finish`] at EOF.
///
/// The declared length is checked against the request type's bounds (and
/// `MAX_PAYLOAD_SIZE`) as soon as the varint ends, before any payload byte is read. Any byte
/// after the payload is [`CodecError::TrailingBytes`] (an empty payload may be followed by one
/// bare stream identifier, which some encoders write).
#[derive(Debug)]
pub struct RequestDecoder {
    protocol: Protocol,
    config: CodecConfig,
    state: RequestState,
}

impl RequestDecoder {
    /// A decoder for a request of `protocol`.
    pub fn new(protocol: Protocol, config: CodecConfig) -> Self {
        RequestDecoder {
            protocol,
            config,
            state: RequestState::Length(VarintReader::default()),
        }
    }

    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Feed the next bytes of the stream (all of them are consumed).
    ///
    /// # Errors
    /// Any [`CodecError`] of the length prefix, the frames, or trailing bytes; the decoder is
    /// unusable afterwards.
    pub fn feed(&mut self, input: &[u8]) -> Result<(), CodecError> {
        let res = self.feed_inner(input);
        if res.is_err() {
            self.state = RequestState::Failed;
        }
        res
    }

    fn feed_inner(&mut self, mut input: &[u8]) -> Result<(), CodecError> {
        let Some(bounds) = self.protocol.request_bounds() else {
            return if input.is_empty() {
                Ok(())
            } else {
                Err(CodecError::TrailingBytes)
            };
        };
        while !input.is_empty() {
            match &mut self.state {
                RequestState::Length(v) => {
                    if let Some(len) = v.feed(&mut input)? {
                        check_declared(len, bounds, self.config.max_payload_size)?;
                        let dec = PayloadDecoder::new(len, self.config.frames());
                        self.state = if dec.is_complete() {
                            RequestState::Complete {
                                ssz: Vec::new(),
                                trailer: 0,
                            }
                        } else {
                            RequestState::Payload(dec)
                        };
                    }
                }
                RequestState::Payload(dec) => {
                    if dec.feed(&mut input)? {
                        let ssz = dec.take_payload();
                        self.state = RequestState::Complete { ssz, trailer: 0 };
                    }
                }
                RequestState::Complete { ssz, trailer } => {
                    // Only an empty payload may be followed by a bare stream identifier.
                    let n = input.len().min(STREAM_IDENTIFIER.len() - *trailer);
                    if !ssz.is_empty()
                        || n == 0
                        || input[..n] != STREAM_IDENTIFIER[*trailer..*trailer + n]
                    {
                        return Err(CodecError::TrailingBytes);
                    }
                    *trailer += n;
                    input = &input[n..];
                }
                RequestState::Failed => return Err(CodecError::TrailingBytes),
            }
        }
        Ok(())
    }

    /// The stream ended (the requester half-closed): the request's SSZ bytes (empty for
    /// protocols without a request body).
    ///
    /// # Errors
    /// [`CodecError::UnexpectedEof`] when the request is incomplete.
    pub fn finish(self) -> Result<Vec<u8>, CodecError> {
        if self.protocol.request_bounds().is_none() {
            return Ok(Vec::new());
        }
        match self.state {
            RequestState::Complete { ssz, trailer } if trailer == 0 || trailer == 10 => Ok(ssz),
            RequestState::Length(_) => Err(CodecError::UnexpectedEof("the request length prefix")),
            _ => Err(CodecError::UnexpectedEof("the request payload")),
        }
    }
}

/// Decode a whole request (the bytes up to the requester's EOF).
///
/// # Errors
/// As [`RequestDecoder::feed`] and [`RequestDecoder::finish`].
pub fn decode_request_bytes(
    protocol: Protocol,
    config: CodecConfig,
    bytes: &[u8],
) -> Result<Vec<u8>, CodecError> {
    let mut dec = RequestDecoder::new(protocol, config);
    dec.feed(bytes)?;
    dec.finish()
}

/// A decoded success chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuccessChunk {
    /// The fork of the payload type: from the context bytes, phase 0 on the v1 block
    /// protocols, `None` for fork-independent messages (Status, Ping, MetaData, Goodbye).
    pub fork: Option<Fork>,
    /// The context bytes, on protocols that have them.
    pub context: Option<ForkDigest>,
    /// The SSZ payload, exactly the declared length (not yet SSZ-decoded).
    pub ssz: Vec<u8>,
}

/// A decoded response chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Result 0 and a payload.
    Success(SuccessChunk),
    /// A non-zero result with its `ErrorMessage`; the last chunk of the response.
    Error {
        /// The result code.
        code: ResponseCode,
        /// The message (any bytes, by convention UTF-8).
        message: ErrorMessage,
    },
}

#[derive(Debug)]
enum ResponseState {
    /// Waiting for the result byte of the next chunk.
    Result,
    Context {
        buf: [u8; CONTEXT_BYTES_LEN],
        got: usize,
    },
    Length {
        code: ResponseCode,
        fork: Option<Fork>,
        context: Option<ForkDigest>,
        varint: VarintReader,
    },
    Payload {
        code: ResponseCode,
        fork: Option<Fork>,
        context: Option<ForkDigest>,
        dec: PayloadDecoder,
    },
    /// An error chunk was read, or the most chunks allowed: nothing more may follow.
    Done,
    /// After an empty error message: a bare stream identifier may follow (some encoders
    /// write one for empty payloads), nothing else.
    Trailer {
        got: usize,
    },
    Failed,
}

/// Decodes the chunks of one response, fed bytes as they arrive.
///
/// The result byte, the context bytes (looked up in the fork schedule: unknown digests and
/// digests of forks where the protocol has no response type are errors), and the declared
/// length (against the bounds of the type at that fork, and `MAX_PAYLOAD_SIZE`) are checked
/// before any payload byte is read. At most `max_chunks` success chunks are accepted; a byte
/// after the last allowed chunk or after an error chunk is an error.
#[derive(Debug)]
pub struct ResponseDecoder {
    protocol: Protocol,
    schedule: Arc<ForkSchedule>,
    config: CodecConfig,
    max_chunks: u64,
    chunks: u64,
    state: ResponseState,
}

impl ResponseDecoder {
    /// A decoder for the response to a request of `protocol` that allows at most
    /// `max_chunks` chunks (1 for single-chunk protocols; the request's
    /// `max_response_chunks` for the others).
    pub fn new(
        protocol: Protocol,
        schedule: Arc<ForkSchedule>,
        config: CodecConfig,
        max_chunks: u64,
    ) -> Self {
        let max_chunks = if protocol.is_single_chunk() {
            max_chunks.min(1)
        } else {
            max_chunks
        };
        ResponseDecoder {
            protocol,
            schedule,
            config,
            max_chunks,
            chunks: 0,
            state: if max_chunks == 0 {
                ResponseState::Done
            } else {
                ResponseState::Result
            },
        }
    }

    /// The protocol.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Success chunks decoded so far.
    pub fn chunks(&self) -> u64 {
        self.chunks
    }

    /// The most chunks this response may carry.
    pub fn max_chunks(&self) -> u64 {
        self.max_chunks
    }

    /// Whether the response is over: an error chunk was read or `max_chunks` were; any further
    /// byte is an error.
    pub fn is_done(&self) -> bool {
        matches!(
            self.state,
            ResponseState::Done | ResponseState::Trailer { .. }
        )
    }

    /// Whether the decoder is between chunks (EOF here is a clean end).
    pub fn at_chunk_boundary(&self) -> bool {
        matches!(
            self.state,
            ResponseState::Result | ResponseState::Done | ResponseState::Trailer { got: 0 | 10 }
        )
    }

    /// Consume bytes from `input` until one chunk is complete (returned; the rest of `input`
    /// is left for the next call) or `input` is exhausted (`Ok(None)`).
    ///
    /// # Errors
    /// Any [`CodecError`]; the decoder is unusable afterwards.
    pub fn decode(&mut self, input: &mut &[u8]) -> Result<Option<Chunk>, CodecError> {
        let res = self.decode_inner(input);
        if res.is_err() {
            self.state = ResponseState::Failed;
        }
        res
    }

    fn decode_inner(&mut self, input: &mut &[u8]) -> Result<Option<Chunk>, CodecError> {
        while !input.is_empty() {
            match &mut self.state {
                ResponseState::Result => {
                    let code = ResponseCode::from(input[0]);
                    *input = &input[1..];
                    if code.is_error() {
                        self.state = ResponseState::Length {
                            code,
                            fork: None,
                            context: None,
                            varint: VarintReader::default(),
                        };
                    } else if self.protocol.has_context_bytes() {
                        self.state = ResponseState::Context {
                            buf: [0; CONTEXT_BYTES_LEN],
                            got: 0,
                        };
                    } else {
                        let fork = match self.protocol {
                            Protocol::BeaconBlocksByRangeV1 | Protocol::BeaconBlocksByRootV1 => {
                                Some(Fork::Phase0)
                            }
                            _ => None,
                        };
                        self.state = ResponseState::Length {
                            code,
                            fork,
                            context: None,
                            varint: VarintReader::default(),
                        };
                    }
                }
                ResponseState::Context { buf, got } => {
                    let n = (CONTEXT_BYTES_LEN - *got).min(input.len());
                    buf[*got..*got + n].copy_from_slice(&input[..n]);
                    *got += n;
                    *input = &input[n..];
                    if *got == CONTEXT_BYTES_LEN {
                        let digest = ForkDigest(*buf);
                        let fork = self
                            .schedule
                            .lookup(digest)
                            .ok_or(CodecError::UnknownContext(digest))?
                            .fork;
                        if self
                            .protocol
                            .response_bounds(fork, self.schedule.config())
                            .is_none()
                        {
                            return Err(CodecError::WrongContext { digest, fork });
                        }
                        self.state = ResponseState::Length {
                            code: ResponseCode::Success,
                            fork: Some(fork),
                            context: Some(digest),
                            varint: VarintReader::default(),
                        };
                    }
                }
                ResponseState::Length {
                    code,
                    fork,
                    context,
                    varint,
                } => {
                    let Some(len) = varint.feed(input)? else {
                        continue;
                    };
                    let bounds = if code.is_error() {
                        Protocol::error_bounds()
                    } else {
                        // Fork-independent protocols ignore the fork argument.
                        self.protocol
                            .response_bounds(
                                fork.unwrap_or(self.protocol.since()),
                                self.schedule.config(),
                            )
                            .unwrap_or((1, 0))
                    };
                    check_declared(len, bounds, self.config.max_payload_size)?;
                    let (code, fork, context) = (*code, *fork, *context);
                    let dec = PayloadDecoder::new(len, self.config.frames());
                    if dec.is_complete() {
                        return self.complete(code, fork, context, Vec::new()).map(Some);
                    }
                    self.state = ResponseState::Payload {
                        code,
                        fork,
                        context,
                        dec,
                    };
                }
                ResponseState::Payload {
                    code,
                    fork,
                    context,
                    dec,
                } => {
                    if dec.feed(input)? {
                        let ssz = dec.take_payload();
                        let (code, fork, context) = (*code, *fork, *context);
                        return self.complete(code, fork, context, ssz).map(Some);
                    }
                }
                ResponseState::Trailer { got } => {
                    let n = input.len().min(STREAM_IDENTIFIER.len() - *got);
                    if n == 0 || input[..n] != STREAM_IDENTIFIER[*got..*got + n] {
                        return Err(CodecError::TrailingBytes);
                    }
                    *got += n;
                    *input = &input[n..];
                }
                ResponseState::Done => {
                    return Err(if self.chunks >= self.max_chunks {
                        CodecError::TooManyChunks {
                            max: self.max_chunks,
                        }
                    } else {
                        CodecError::TrailingBytes
                    });
                }
                ResponseState::Failed => return Err(CodecError::TrailingBytes),
            }
        }
        Ok(None)
    }

    fn complete(
        &mut self,
        code: ResponseCode,
        fork: Option<Fork>,
        context: Option<ForkDigest>,
        ssz: Vec<u8>,
    ) -> Result<Chunk, CodecError> {
        if code.is_error() {
            self.state = if ssz.is_empty() {
                ResponseState::Trailer { got: 0 }
            } else {
                ResponseState::Done
            };
            let message = plexus_eth::decode_ssz::<ErrorMessage>(&ssz)
                .map_err(|e| CodecError::Ssz(format!("{:?}", e.0)))?;
            return Ok(Chunk::Error { code, message });
        }
        self.chunks += 1;
        self.state = if self.chunks >= self.max_chunks {
            ResponseState::Done
        } else {
            ResponseState::Result
        };
        Ok(Chunk::Success(SuccessChunk { fork, context, ssz }))
    }

    /// The stream ended.
    ///
    /// # Errors
    /// [`CodecError::UnexpectedEof`] when it ended inside a chunk.
    pub fn finish(&self) -> Result<(), CodecError> {
        match self.state {
            ResponseState::Result
            | ResponseState::Done
            | ResponseState::Trailer { got: 0 | 10 } => Ok(()),
            ResponseState::Trailer { .. } => Err(CodecError::UnexpectedEof("a stream identifier")),
            ResponseState::Context { .. } => Err(CodecError::UnexpectedEof("context bytes")),
            ResponseState::Length { .. } => {
                Err(CodecError::UnexpectedEof("a chunk's length prefix"))
            }
            ResponseState::Payload { .. } => Err(CodecError::UnexpectedEof("a chunk's payload")),
            ResponseState::Failed => Err(CodecError::TrailingBytes),
        }
    }
}

/// Decode a whole response (every byte up to the responder's EOF) into its chunks.
///
/// # Errors
/// The first [`CodecError`].
pub fn decode_response_bytes(
    protocol: Protocol,
    schedule: Arc<ForkSchedule>,
    config: CodecConfig,
    max_chunks: u64,
    mut bytes: &[u8],
) -> Result<Vec<Chunk>, CodecError> {
    let mut dec = ResponseDecoder::new(protocol, schedule, config, max_chunks);
    let mut chunks = Vec::new();
    while !bytes.is_empty() {
        match dec.decode(&mut bytes)? {
            Some(c) => chunks.push(c),
            None => break,
        }
    }
    dec.finish()?;
    Ok(chunks)
}

fn check_len(len: usize, (min, max): (u64, u64), cap: u64) -> Result<(), EncodeError> {
    let max = max.min(cap);
    let len = len as u64;
    if len < min || len > max {
        return Err(EncodeError::OutOfBounds { len, min, max });
    }
    Ok(())
}

/// Append the encoded request: nothing for protocols without a request body, else the varint
/// length and one snappy framed stream.
///
/// # Errors
/// [`EncodeError::OutOfBounds`] for a payload outside the request type's bounds,
/// [`EncodeError::RequestBody`] for a body on a protocol without one.
pub fn encode_request(
    protocol: Protocol,
    ssz: &[u8],
    config: &CodecConfig,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let Some(bounds) = protocol.request_bounds() else {
        return if ssz.is_empty() {
            Ok(())
        } else {
            Err(EncodeError::RequestBody("unexpected"))
        };
    };
    check_len(ssz.len(), bounds, config.max_payload_size)?;
    encode_varint(ssz.len() as u64, out);
    encode_frames(ssz, out);
    Ok(())
}

/// Append a success chunk: result 0, the context digest (required exactly on protocols with
/// context bytes; it must be one of the schedule's digests, of a fork where the protocol has
/// a response type), the varint length and one snappy framed stream.
///
/// # Errors
/// [`EncodeError`] for a payload outside the type's bounds at that fork or a missing,
/// unexpected or unknown digest.
pub fn encode_success_chunk(
    protocol: Protocol,
    context: Option<ForkDigest>,
    ssz: &[u8],
    schedule: &ForkSchedule,
    config: &CodecConfig,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    chunk_head(protocol, context, ssz.len(), schedule, config, out)?;
    encode_varint(ssz.len() as u64, out);
    encode_frames(ssz, out);
    Ok(())
}

/// An SSZ payload encoded once: the varint of its length and its snappy frames, shared
/// (`Bytes`) by every response that carries it. A node that serves the same block to many
/// peers compresses it once instead of once per request
/// ([`crate::ResponseSink::send_encoded`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncodedPayload {
    ssz_len: usize,
    body: bytes::Bytes,
}

impl EncodedPayload {
    /// Compress `ssz`.
    pub fn new(ssz: &[u8]) -> EncodedPayload {
        let mut body = Vec::with_capacity(16 + ssz.len() / 2);
        encode_varint(ssz.len() as u64, &mut body);
        encode_frames(ssz, &mut body);
        EncodedPayload {
            ssz_len: ssz.len(),
            body: body.into(),
        }
    }

    /// The uncompressed SSZ length.
    pub fn ssz_len(&self) -> usize {
        self.ssz_len
    }

    /// The encoded bytes (varint and frames).
    pub fn bytes(&self) -> &bytes::Bytes {
        &self.body
    }
}

/// Append the head of a success chunk whose payload was encoded beforehand (result byte and
/// context bytes), after the same checks as [`encode_success_chunk`] on its length; the
/// payload's bytes follow it on the wire.
///
/// # Errors
/// As [`encode_success_chunk`].
pub fn encode_success_head(
    protocol: Protocol,
    context: Option<ForkDigest>,
    payload: &EncodedPayload,
    schedule: &ForkSchedule,
    config: &CodecConfig,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    chunk_head(protocol, context, payload.ssz_len, schedule, config, out)
}

/// The checks of a success chunk of `ssz_len` bytes and its head: result byte and context
/// bytes.
fn chunk_head(
    protocol: Protocol,
    context: Option<ForkDigest>,
    ssz_len: usize,
    schedule: &ForkSchedule,
    config: &CodecConfig,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    let fork = match (protocol.has_context_bytes(), context) {
        (true, Some(d)) => schedule.lookup(d).ok_or(EncodeError::BadContext(d))?.fork,
        (true, None) => return Err(EncodeError::Context("missing")),
        (false, Some(_)) => return Err(EncodeError::Context("unexpected")),
        (false, None) => match protocol {
            Protocol::BeaconBlocksByRangeV1 | Protocol::BeaconBlocksByRootV1 => Fork::Phase0,
            p => p.since(),
        },
    };
    let bounds = protocol
        .response_bounds(fork, schedule.config())
        .ok_or(match context {
            Some(d) => EncodeError::BadContext(d),
            None => EncodeError::Context("missing"),
        })?;
    check_len(ssz_len, bounds, config.max_payload_size)?;
    out.push(0);
    if let Some(d) = context {
        out.extend_from_slice(&d.0);
    }
    Ok(())
}

/// Append an error chunk: the code, no context bytes, the `ErrorMessage` (≤ 256 bytes by
/// type).
///
/// # Errors
/// [`EncodeError::SuccessCode`] for code 0.
pub fn encode_error_chunk(
    code: ResponseCode,
    message: &ErrorMessage,
    out: &mut Vec<u8>,
) -> Result<(), EncodeError> {
    if !code.is_error() {
        return Err(EncodeError::SuccessCode);
    }
    let ssz = plexus_eth::encode_ssz(message);
    out.push(code.to_u8());
    encode_varint(ssz.len() as u64, out);
    encode_frames(&ssz, out);
    Ok(())
}
