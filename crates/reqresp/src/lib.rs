//! Ethereum consensus Req/Resp (`/eth2/beacon_chain/req/<name>/<version>/ssz_snappy`).
//!
//! - **Protocol table** ([`Protocol`]): every protocol id from phase 0 through Gloas, which
//!   responses carry `ForkDigest` context bytes and how the responder picks them
//!   ([`ContextSource`]), and the SSZ length bounds of each request and of each response
//!   chunk type at each fork.
//! - **Codec** (sans-IO): [`RequestDecoder`] and [`ResponseDecoder`] are fed bytes as they
//!   arrive and check everything before reading on: minimal varints, the declared length
//!   against the type's bounds and `MAX_PAYLOAD_SIZE`, the snappy frames (checksums, chunk
//!   sizes and counts, never more bytes than declared: a snappy bomb fails at its first
//!   oversized chunk), context bytes against the fork schedule, trailing bytes and the most
//!   chunks the request allows. [`encode_request`], [`encode_success_chunk`] and
//!   [`encode_error_chunk`] write what every client reads.
//! - **Checks against the request** ([`ResponseChecker`]): context digest against the
//!   object's slot, slot ranges and order, requested roots and indices.
//! - **Service on a host** ([`ReqResp::spawn`]): `request(peer, Request)` returns the checked
//!   chunks as a stream; a [`Responder`] the client implements answers requests, with
//!   built-in ping, metadata and goodbye; concurrency caps per peer and protocol, token-bucket
//!   rate limits both ways ([`Quotas`], [`RateLimiter`]), first- and next-chunk timeouts, and
//!   response-size caps.
//!
//! Every error names who is to blame (`plexus_core::Blame`). `docs/reqresp.md` has the
//! details and every default.
#![forbid(unsafe_code)]

mod bounds;
mod check;
mod codec;
mod error;
mod frame;
mod limiter;
mod protocol;
mod request;
mod service;

pub use check::{
    BlockRootFn, ChunkFields, ResponseChecker, ResponseViolation, block_header_root, chunk_fields,
};
pub use codec::{
    Chunk, CodecConfig, EncodedPayload, RequestDecoder, ResponseDecoder, SuccessChunk,
    decode_request_bytes, decode_response_bytes, encode_error_chunk, encode_request,
    encode_success_chunk, encode_success_head,
};
pub use error::{CodecError, EncodeError};
pub use frame::{MAX_CHUNK_DATA, STREAM_IDENTIFIER, encode_frames, encode_varint, masked_crc32c};
pub use limiter::{Quota, Quotas, RateLimiter, request_cost};
pub use protocol::{
    CONTEXT_BYTES_LEN, ContextSource, ENCODING, PROTOCOL_PREFIX, Protocol, ResponseCode,
    ResponseKind,
};
pub use request::Request;
pub use service::{
    EpochClock, MetaData, NoResponder, RATE_LIMITED_CODE, ReqResp, ReqRespConfig, ReqRespError,
    ReqRespEvent, ReqRespHandle, RespondError, Responder, ResponseSink, ResponseStream, SinkError,
    Status, status_answer,
};
