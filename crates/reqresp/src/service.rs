//! Req/Resp on a [`Host`]: the requester (`request(peer, Request)` → a stream of checked
//! chunks), the responder (a [`Responder`] the client implements, plus built-in ping,
//! metadata and goodbye), concurrency caps, token-bucket rate limits both ways, timeouts and
//! response-size caps.

use std::collections::HashMap;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::StreamExt;
use plexus_core::{Blame, BoxFut, BoxStream, PeerId};
use plexus_eth::{
    Epoch, ErrorMessage, Fork, ForkSchedule, GoodbyeReason, MAX_CONCURRENT_REQUESTS, MetaDataV1,
    MetaDataV2, MetaDataV3, Ping, RequestLimits, Slot, StatusV1, StatusV2, decode_ssz, encode_ssz,
};
use plexus_host::{HandlerOpts, Host, HostEvent, InboundStream, OpenError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, broadcast, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, timeout, timeout_at};

use crate::check::{BlockRootFn, ResponseChecker, ResponseViolation};
use crate::codec::{
    Chunk, CodecConfig, EncodedPayload, RequestDecoder, ResponseDecoder, SuccessChunk,
    encode_error_chunk, encode_request, encode_success_chunk, encode_success_head,
};
use crate::error::{CodecError, EncodeError};
use crate::limiter::{Quotas, RateLimiter, request_cost};
use crate::protocol::{Protocol, ResponseCode};
use crate::request::Request;

/// The client-specific error code clients answer rate-limited requests with (Lighthouse's
/// `RateLimited`).
pub const RATE_LIMITED_CODE: u8 = 139;
/// Bytes read from a stream at a time.
const READ_CHUNK: usize = 16 * 1024;

/// The current epoch by the wall clock (the client's slot clock).
pub type EpochClock = Arc<dyn Fn() -> Epoch + Send + Sync>;

/// Configuration of the Req/Resp service. Every limit has a safe default.
#[derive(Clone)]
pub struct ReqRespConfig {
    /// Codec bounds (`MAX_PAYLOAD_SIZE`, snappy frames). Default: [`CodecConfig::for_chain`].
    pub codec: CodecConfig,
    /// Concurrent requests per peer per protocol id, both ways: outbound requests beyond it
    /// wait; inbound streams beyond it are reset by the host. Default 2
    /// (`MAX_CONCURRENT_REQUESTS`).
    pub max_concurrent_requests: usize,
    /// Inbound streams per protocol negotiated but not yet taken by the service. Default 64.
    pub backlog: usize,
    /// Requester: time from sending the request to the first response chunk complete.
    /// Default 10 s.
    pub first_chunk_timeout: Duration,
    /// Requester: time for each further chunk (and for EOF after the last). A peer that
    /// trickles bytes still has to finish each chunk in time. Default 10 s.
    pub chunk_timeout: Duration,
    /// Requester: how long a request may wait for a concurrency slot and for the self-limiter.
    /// Default 30 s.
    pub max_queue_delay: Duration,
    /// Requester: uncompressed bytes accepted in one response (all chunks); beyond it the
    /// stream is reset. Default 256 MiB (a full data column response is ~140 MiB).
    pub max_response_bytes: u64,
    /// Responder: time for the request to arrive complete (up to the requester's EOF).
    /// Default 5 s.
    pub request_timeout: Duration,
    /// Responder: time to write the whole response (a reader that does not read is cut off).
    /// Default 60 s.
    pub response_timeout: Duration,
    /// Responder: the longest a request over its rate limit is held back waiting for tokens
    /// (the spec asks responders to delay rather than refuse); beyond it the request is
    /// answered with code 139 (rate limited), as Lighthouse does. Default 5 s.
    pub max_rate_limit_delay: Duration,
    /// Inbound quotas per peer per protocol. `None`: [`Quotas::for_limits`] of the current
    /// fork. Default `None`.
    pub inbound_quotas: Option<Quotas>,
    /// Outbound self-limiter quotas per peer per protocol (never ask more than peers allow).
    /// `None`: the same defaults. Default `None`.
    pub outbound_quotas: Option<Quotas>,
    /// Computes block roots to check BlocksByRoot answers (plexus has no block types).
    /// Default `None`: those answers are checked for count and context only.
    pub block_root: Option<BlockRootFn>,
    /// Capacity of the [`ReqRespEvent`] broadcast. Default 256.
    pub event_capacity: usize,
    /// The wall-clock epoch, for the fork whose request limits apply.
    pub clock: EpochClock,
}

impl std::fmt::Debug for ReqRespConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReqRespConfig")
            .field("codec", &self.codec)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("first_chunk_timeout", &self.first_chunk_timeout)
            .field("chunk_timeout", &self.chunk_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish_non_exhaustive()
    }
}

impl ReqRespConfig {
    /// The defaults for a chain, with its `MAX_PAYLOAD_SIZE`, and `clock` giving the current
    /// epoch.
    pub fn new(schedule: &ForkSchedule, clock: EpochClock) -> Self {
        ReqRespConfig {
            codec: CodecConfig::for_chain(schedule.config()),
            max_concurrent_requests: MAX_CONCURRENT_REQUESTS as usize,
            backlog: 64,
            first_chunk_timeout: Duration::from_secs(10),
            chunk_timeout: Duration::from_secs(10),
            max_queue_delay: Duration::from_secs(30),
            max_response_bytes: 256 << 20,
            request_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(60),
            max_rate_limit_delay: Duration::from_secs(5),
            inbound_quotas: None,
            outbound_quotas: None,
            block_root: None,
            event_capacity: 256,
            clock,
        }
    }
}

/// Why a response was an error, as the responder answers it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RespondError {
    /// Code 1: the request is invalid.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Code 2: we failed.
    #[error("server error: {0}")]
    ServerError(String),
    /// Code 3: we do not have it (where the spec allows this answer).
    #[error("resource unavailable: {0}")]
    ResourceUnavailable(String),
    /// Any other code (≥ 4).
    #[error("error {code}: {message}")]
    Code {
        /// The code.
        code: u8,
        /// The message.
        message: String,
    },
}

impl RespondError {
    fn code_and_message(&self) -> (ResponseCode, &str) {
        match self {
            RespondError::InvalidRequest(m) => (ResponseCode::InvalidRequest, m),
            RespondError::ServerError(m) => (ResponseCode::ServerError, m),
            RespondError::ResourceUnavailable(m) => (ResponseCode::ResourceUnavailable, m),
            RespondError::Code { code, message } => {
                (ResponseCode::from((*code).max(4)), message.as_str())
            }
        }
    }
}

/// Writing a response chunk failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SinkError {
    /// More chunks than the request allows; the chunk was not sent.
    #[error("more than the {0} chunks the request allows")]
    TooManyChunks(u64),
    /// The chunk does not fit its type's bounds or context (our bug).
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The stream failed (the requester reset it or went away).
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

/// Where a [`Responder`] writes its chunks. Each chunk is checked and written in full; the
/// count is capped at what the request allows.
pub struct ResponseSink {
    stream: BoxStream,
    protocol: Protocol,
    schedule: Arc<ForkSchedule>,
    codec: CodecConfig,
    max_chunks: u64,
    sent: u64,
    buf: Vec<u8>,
}

impl std::fmt::Debug for ResponseSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseSink")
            .field("protocol", &self.protocol)
            .field("sent", &self.sent)
            .field("max_chunks", &self.max_chunks)
            .finish_non_exhaustive()
    }
}

impl ResponseSink {
    /// The protocol being answered.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Chunks sent so far.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// The most chunks the request allows.
    pub fn max_chunks(&self) -> u64 {
        self.max_chunks
    }

    /// The context bytes of the next chunk (the digest of `context_slot`'s epoch on
    /// protocols that carry them), or the chunk cap's error.
    fn next_chunk_context(
        &self,
        context_slot: Slot,
    ) -> Result<Option<plexus_eth::ForkDigest>, SinkError> {
        if self.sent >= self.max_chunks {
            return Err(SinkError::TooManyChunks(self.max_chunks));
        }
        Ok(self.protocol.has_context_bytes().then(|| {
            self.schedule
                .digest_at(self.schedule.config().epoch_at_slot(context_slot))
        }))
    }

    /// Send one success chunk of SSZ bytes. On protocols with context bytes, `context_slot`
    /// is the slot the spec takes the context epoch from (the block's slot, the sidecar
    /// header's, the attested header's for light client updates, the referenced block's for
    /// payload envelopes); the digest is `compute_fork_digest` of its epoch. Ignored elsewhere.
    ///
    /// # Errors
    /// [`SinkError`]; after an I/O error the response is over.
    pub async fn send(&mut self, ssz: &[u8], context_slot: Slot) -> Result<(), SinkError> {
        let context = self.next_chunk_context(context_slot)?;
        self.buf.clear();
        encode_success_chunk(
            self.protocol,
            context,
            ssz,
            &self.schedule,
            &self.codec,
            &mut self.buf,
        )?;
        self.stream.write_all(&self.buf).await?;
        self.sent += 1;
        Ok(())
    }

    /// Send one success chunk whose payload was encoded beforehand ([`EncodedPayload`]):
    /// the same checks and context bytes as [`ResponseSink::send`], without compressing again.
    ///
    /// # Errors
    /// As [`ResponseSink::send`].
    pub async fn send_encoded(
        &mut self,
        payload: &EncodedPayload,
        context_slot: Slot,
    ) -> Result<(), SinkError> {
        let context = self.next_chunk_context(context_slot)?;
        self.buf.clear();
        encode_success_head(
            self.protocol,
            context,
            payload,
            &self.schedule,
            &self.codec,
            &mut self.buf,
        )?;
        self.stream.write_all(&self.buf).await?;
        self.stream.write_all(payload.bytes()).await?;
        self.sent += 1;
        Ok(())
    }

    async fn send_error(&mut self, err: &RespondError) -> Result<(), SinkError> {
        let (code, message) = err.code_and_message();
        self.buf.clear();
        encode_error_chunk(code, &ErrorMessage::new(message), &mut self.buf)?;
        self.stream.write_all(&self.buf).await?;
        Ok(())
    }
}

/// The client's side of serving requests: one method for every protocol it serves.
///
/// `respond` writes zero or more chunks to the sink and returns; an `Err` is sent as the
/// final error chunk. Built-in handlers answer `ping/1`, `metadata/*` and `goodbye/1` unless
/// [`Responder::protocols`] lists them (then the client's handler answers instead).
pub trait Responder: Send + Sync + 'static {
    /// The protocols this responder serves (registered on the host).
    fn protocols(&self) -> Vec<Protocol>;

    /// Answer a validated `request` from `peer`.
    fn respond<'a>(
        &'a self,
        peer: PeerId,
        request: Request,
        sink: &'a mut ResponseSink,
    ) -> BoxFut<'a, Result<(), RespondError>>;
}

/// A responder that serves nothing (only the built-in protocols).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoResponder;

impl Responder for NoResponder {
    fn protocols(&self) -> Vec<Protocol> {
        Vec::new()
    }

    fn respond<'a>(
        &'a self,
        _: PeerId,
        _: Request,
        _: &'a mut ResponseSink,
    ) -> BoxFut<'a, Result<(), RespondError>> {
        Box::pin(async { Err(RespondError::ServerError("not served".into())) })
    }
}

/// What the service reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum ReqRespEvent {
    /// A peer said goodbye (the built-in goodbye handler).
    Goodbye {
        /// The peer.
        peer: PeerId,
        /// Its reason.
        reason: GoodbyeReason,
    },
    /// A peer pinged us with its metadata sequence number (the built-in ping handler).
    Ping {
        /// The peer.
        peer: PeerId,
        /// Its `MetaData.seq_number`.
        seq_number: u64,
    },
    /// An inbound request failed or was refused.
    InboundFailed {
        /// The peer.
        peer: PeerId,
        /// The protocol.
        protocol: Protocol,
        /// Who is to blame.
        blame: Blame,
        /// Why, for logs.
        error: String,
    },
}

/// A request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReqRespError {
    /// Opening or negotiating the stream failed; `blame` is the host's verdict.
    #[error("opening stream: {0}")]
    Open(#[from] OpenError),
    /// The peer answered InvalidRequest (1): our request, or an incompatible peer.
    #[error("peer says invalid request: {0}")]
    InvalidRequest(String),
    /// The peer answered ServerError (2).
    #[error("peer server error: {0}")]
    ServerError(String),
    /// The peer answered ResourceUnavailable (3).
    #[error("peer resource unavailable: {0}")]
    ResourceUnavailable(String),
    /// The peer answered rate limited (139), or our self-limiter held the request back longer
    /// than `max_queue_delay`.
    #[error("rate limited: {0}")]
    RateLimited(String),
    /// Another error code.
    #[error("peer answered {code}: {message}")]
    ErrorCode {
        /// The code.
        code: ResponseCode,
        /// The message.
        message: String,
    },
    /// No chunk (first or next) within its timeout, or no concurrency slot in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The response broke the wire format.
    #[error("invalid response: {0}")]
    Codec(#[from] CodecError),
    /// A chunk does not answer the request (wrong slot, root, order, context).
    #[error("response does not match the request: {0}")]
    Violation(#[from] ResponseViolation),
    /// The response exceeded `max_response_bytes`.
    #[error("response larger than {0} bytes")]
    TooLarge(u64),
    /// The stream failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// Our request did not encode (our bug).
    #[error("encoding the request: {0}")]
    Encode(#[from] EncodeError),
    /// A single-chunk request got no chunk.
    #[error("no response")]
    NoResponse,
    /// The service has stopped.
    #[error("req/resp service stopped")]
    Stopped,
}

impl ReqRespError {
    /// Who is to blame. Broken wire format, mismatched chunks and oversized responses are the
    /// peer's misbehaviour; `ResourceUnavailable` marks a peer that cannot serve us
    /// (incompatible, no penalty); error answers, timeouts and I/O are `Local` (a slow or busy
    /// peer is not malicious; the caller may retry elsewhere).
    pub fn blame(&self) -> Blame {
        match self {
            ReqRespError::Open(e) => e.blame(),
            ReqRespError::Codec(_) | ReqRespError::Violation(_) | ReqRespError::TooLarge(_) => {
                Blame::PeerMisbehaved
            }
            ReqRespError::ResourceUnavailable(_) => Blame::PeerIncompatible,
            ReqRespError::InvalidRequest(_)
            | ReqRespError::ServerError(_)
            | ReqRespError::RateLimited(_)
            | ReqRespError::ErrorCode { .. }
            | ReqRespError::Timeout(_)
            | ReqRespError::Io(_)
            | ReqRespError::Encode(_)
            | ReqRespError::NoResponse
            | ReqRespError::Stopped => Blame::Local,
        }
    }

    fn from_error_chunk(code: ResponseCode, message: &ErrorMessage) -> Self {
        let m = message.to_string_lossy();
        match code {
            ResponseCode::InvalidRequest => ReqRespError::InvalidRequest(m),
            ResponseCode::ServerError => ReqRespError::ServerError(m),
            ResponseCode::ResourceUnavailable => ReqRespError::ResourceUnavailable(m),
            ResponseCode::Custom(RATE_LIMITED_CODE) => ReqRespError::RateLimited(m),
            code => ReqRespError::ErrorCode { code, message: m },
        }
    }
}

/// The Status message of either version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `status/1`.
    V1(StatusV1),
    /// `status/2` (Fulu).
    V2(StatusV2),
}

/// The answer to a Status request, in the request's version, given our Status: the SSZ
/// of a `StatusV1` for `status/1` and of `ours` for `status/2`; `None` for any other
/// request. For a [`Responder`] that answers Status itself.
pub fn status_answer(request: &Request, ours: StatusV2) -> Option<Vec<u8>> {
    match request {
        Request::StatusV1(_) => Some(encode_ssz(&StatusV1::from(ours))),
        Request::StatusV2(_) => Some(encode_ssz(&ours)),
        _ => None,
    }
}

/// The MetaData message of any version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaData {
    /// `metadata/1`.
    V1(MetaDataV1),
    /// `metadata/2` (Altair).
    V2(MetaDataV2),
    /// `metadata/3` (Fulu).
    V3(MetaDataV3),
}

impl MetaData {
    /// The sequence number.
    pub fn seq_number(&self) -> u64 {
        match self {
            MetaData::V1(m) => m.seq_number,
            MetaData::V2(m) => m.seq_number,
            MetaData::V3(m) => m.seq_number,
        }
    }
}

type Key = (PeerId, Protocol);

struct Shared {
    host: Host,
    schedule: Arc<ForkSchedule>,
    cfg: ReqRespConfig,
    responder: Arc<dyn Responder>,
    metadata: Mutex<MetaDataV3>,
    inbound_limiter: Mutex<RateLimiter>,
    outbound_limiter: Mutex<RateLimiter>,
    outbound_slots: Mutex<HashMap<Key, Arc<Semaphore>>>,
    events: broadcast::Sender<ReqRespEvent>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn fork_and_limits(&self) -> (Fork, RequestLimits) {
        let fork = self.schedule.fork_at((self.cfg.clock)());
        (fork, self.schedule.config().request_limits(fork))
    }

    fn emit(&self, e: ReqRespEvent) {
        let _ = self.events.send(e);
    }

    fn forget_peer(&self, peer: &PeerId) {
        lock(&self.inbound_limiter).remove_peer(peer);
        lock(&self.outbound_limiter).remove_peer(peer);
        lock(&self.outbound_slots)
            .retain(|(p, _), s| p != peer || s.available_permits() < s_max(&self.cfg));
    }
}

fn s_max(cfg: &ReqRespConfig) -> usize {
    cfg.max_concurrent_requests.max(1)
}

/// The Req/Resp service. [`ReqResp::spawn`] starts it.
#[derive(Debug)]
pub struct ReqResp;

impl ReqResp {
    /// Register the built-in protocols (`ping/1`, `metadata/1..3`, `goodbye/1`) and the
    /// responder's on `host`, and start serving. `metadata` is what we answer (older versions
    /// get its prefix) and what [`ReqRespHandle::set_metadata`] updates.
    ///
    /// Runs until the host shuts down or every handle is dropped; then the protocols are
    /// unregistered. Must be called within a tokio runtime.
    ///
    /// # Errors
    /// [`plexus_host::AlreadyRegistered`] when a protocol already has a handler.
    pub fn spawn(
        host: Host,
        schedule: Arc<ForkSchedule>,
        cfg: ReqRespConfig,
        responder: Arc<dyn Responder>,
        metadata: MetaDataV3,
    ) -> Result<ReqRespHandle, plexus_host::AlreadyRegistered> {
        let mut protocols = vec![
            Protocol::PingV1,
            Protocol::MetaDataV1,
            Protocol::MetaDataV2,
            Protocol::MetaDataV3,
            Protocol::GoodbyeV1,
        ];
        for p in responder.protocols() {
            if !protocols.contains(&p) {
                protocols.push(p);
            }
        }
        let opts = HandlerOpts {
            backlog: cfg.backlog,
            max_inbound_per_peer: cfg.max_concurrent_requests.max(1),
        };
        let mut incoming = Vec::with_capacity(protocols.len());
        for p in &protocols {
            incoming.push(host.handle(p.id(), opts)?);
        }
        let (events, _) = broadcast::channel(cfg.event_capacity.max(1));
        let host_events = host.events();
        let (guard, stop) = watch::channel(());
        let shared = Arc::new(Shared {
            host,
            schedule,
            cfg,
            responder,
            metadata: Mutex::new(metadata),
            inbound_limiter: Mutex::new(RateLimiter::new()),
            outbound_limiter: Mutex::new(RateLimiter::new()),
            outbound_slots: Mutex::new(HashMap::new()),
            events,
        });
        tokio::spawn(run(shared.clone(), incoming, host_events, stop));
        Ok(ReqRespHandle {
            shared,
            _guard: Arc::new(guard),
        })
    }
}

async fn run(
    shared: Arc<Shared>,
    incoming: Vec<plexus_host::Incoming>,
    mut host_events: plexus_host::Events,
    mut stop: watch::Receiver<()>,
) {
    let mut incoming = futures::stream::select_all(incoming);
    let mut tasks = JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            inbound = incoming.next() => {
                let Some(inbound) = inbound else { break };
                let shared = shared.clone();
                tasks.spawn(async move { serve(shared, inbound).await });
            }
            event = host_events.recv() => match event {
                Ok(HostEvent::Disconnected { peer, .. }) => shared.forget_peer(&peer),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => break,
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
}

/// Read a request up to the requester's EOF.
async fn read_request(
    stream: &mut BoxStream,
    protocol: Protocol,
    codec: CodecConfig,
) -> Result<Vec<u8>, ReadError> {
    let mut dec = RequestDecoder::new(protocol, codec);
    let mut buf = vec![0u8; 1024];
    loop {
        let n = stream.read(&mut buf).await.map_err(ReadError::Io)?;
        if n == 0 {
            return dec.finish().map_err(ReadError::Codec);
        }
        dec.feed(&buf[..n]).map_err(ReadError::Codec)?;
    }
}

enum ReadError {
    Io(io::Error),
    Codec(CodecError),
}

async fn serve(shared: Arc<Shared>, inbound: InboundStream) {
    let Some(protocol) = Protocol::from_id(&inbound.protocol) else {
        return;
    };
    let peer = inbound.peer;
    let mut stream = inbound.stream;
    let cfg = &shared.cfg;
    let fail = |blame: Blame, error: String| {
        tracing::debug!(%peer, %protocol, %blame, %error, "inbound request failed");
        shared.emit(ReqRespEvent::InboundFailed {
            peer,
            protocol,
            blame,
            error,
        });
    };
    let mut sink = ResponseSink {
        stream: Box::new(NullStream),
        protocol,
        schedule: shared.schedule.clone(),
        codec: cfg.codec,
        max_chunks: 0,
        sent: 0,
        buf: Vec::new(),
    };
    // 1. The request, up to EOF, in time.
    let ssz = match timeout(
        cfg.request_timeout,
        read_request(&mut stream, protocol, cfg.codec),
    )
    .await
    {
        Err(_) => {
            stream.reset();
            return fail(Blame::Local, "request not received in time".into());
        }
        Ok(Err(ReadError::Io(e))) => return fail(Blame::Local, e.to_string()),
        Ok(Err(ReadError::Codec(e))) => {
            fail(e.blame(), e.to_string());
            sink.stream = stream;
            return finish_with_error(&mut sink, &RespondError::InvalidRequest(e.to_string()))
                .await;
        }
        Ok(Ok(ssz)) => ssz,
    };
    sink.stream = stream;
    let (_, limits) = shared.fork_and_limits();
    let request = match Request::from_ssz(protocol, &ssz) {
        Ok(r) => r,
        Err(e) => {
            fail(e.blame(), e.to_string());
            return finish_with_error(&mut sink, &RespondError::InvalidRequest(e.to_string()))
                .await;
        }
    };
    if let Err(e) = request.validate(&limits) {
        fail(Blame::PeerMisbehaved, e.to_string());
        return finish_with_error(&mut sink, &RespondError::InvalidRequest(e.to_string())).await;
    }
    // 2. The rate limit: hold the request back while tokens refill, up to a bound.
    let quota = cfg
        .inbound_quotas
        .unwrap_or_else(|| Quotas::for_limits(&limits))
        .get(protocol);
    let cost = request_cost(&request, &limits);
    let deadline = Instant::now() + cfg.max_rate_limit_delay;
    loop {
        let now = Instant::now();
        let r = lock(&shared.inbound_limiter).try_take(peer, protocol, quota, cost, now.into_std());
        match r {
            Ok(()) => break,
            Err(wait) if now + wait <= deadline => tokio::time::sleep(wait).await,
            Err(_) => {
                fail(Blame::PeerMisbehaved, "rate limited".into());
                return finish_with_error(
                    &mut sink,
                    &RespondError::Code {
                        code: RATE_LIMITED_CODE,
                        message: "rate limited".into(),
                    },
                )
                .await;
            }
        }
    }
    // 3. The answer.
    sink.max_chunks = request.max_response_chunks(&limits);
    let answer = async {
        match builtin(&shared, peer, &request) {
            Some(Builtin::Reply(ssz)) => sink.send(&ssz, 0).await.map_err(sink_to_respond),
            Some(Builtin::NoReply) => Ok(()),
            None => shared.responder.respond(peer, request, &mut sink).await,
        }
    };
    match timeout(cfg.response_timeout, answer).await {
        Err(_) => {
            sink.stream.reset();
            fail(Blame::Local, "response not written in time".into());
        }
        Ok(Ok(())) => {
            let _ = timeout(cfg.response_timeout, sink.stream.shutdown()).await;
        }
        Ok(Err(e)) => finish_with_error(&mut sink, &e).await,
    }
}

fn sink_to_respond(e: SinkError) -> RespondError {
    RespondError::ServerError(e.to_string())
}

async fn finish_with_error(sink: &mut ResponseSink, err: &RespondError) {
    let write = async {
        sink.send_error(err).await?;
        sink.stream.shutdown().await?;
        Ok::<_, SinkError>(())
    };
    if !matches!(timeout(Duration::from_secs(5), write).await, Ok(Ok(()))) {
        sink.stream.reset();
    }
}

enum Builtin {
    Reply(Vec<u8>),
    NoReply,
}

/// The built-in answer, unless the responder serves the protocol itself.
fn builtin(shared: &Shared, peer: PeerId, request: &Request) -> Option<Builtin> {
    if shared.responder.protocols().contains(&request.protocol()) {
        return None;
    }
    let md = lock(&shared.metadata).clone();
    Some(match request {
        Request::Ping(Ping(seq)) => {
            shared.emit(ReqRespEvent::Ping {
                peer,
                seq_number: *seq,
            });
            Builtin::Reply(encode_ssz(&Ping(md.seq_number)))
        }
        Request::MetaDataV1 => Builtin::Reply(encode_ssz(&MetaDataV1 {
            seq_number: md.seq_number,
            attnets: md.attnets,
        })),
        Request::MetaDataV2 => Builtin::Reply(encode_ssz(&MetaDataV2 {
            seq_number: md.seq_number,
            attnets: md.attnets,
            syncnets: md.syncnets,
        })),
        Request::MetaDataV3 => Builtin::Reply(encode_ssz(&md)),
        Request::Goodbye(g) => {
            shared.emit(ReqRespEvent::Goodbye {
                peer,
                reason: g.reason(),
            });
            // Clients close without answering a goodbye.
            Builtin::NoReply
        }
        _ => return None,
    })
}

/// A placeholder stream before the real one is moved into the sink.
struct NullStream;

impl tokio::io::AsyncRead for NullStream {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        _: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for NullStream {
    fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, _: &[u8]) -> Poll<io::Result<usize>> {
        Poll::Ready(Err(io::ErrorKind::NotConnected.into()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl plexus_core::MuxedStream for NullStream {
    fn reset(&mut self) {}
}

/// A handle to the service (cheap to clone). Dropping the last clone stops it.
#[derive(Clone)]
pub struct ReqRespHandle {
    shared: Arc<Shared>,
    _guard: Arc<watch::Sender<()>>,
}

impl std::fmt::Debug for ReqRespHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReqRespHandle")
            .field("peer", &self.shared.host.peer_id())
            .finish_non_exhaustive()
    }
}

/// The checked success chunks of one response, in order; ends after the last chunk (EOF, an
/// error chunk — yielded as an error — or the first failure). Dropping it early resets the
/// stream.
pub struct ResponseStream {
    protocol: Protocol,
    inner: Pin<Box<dyn futures::Stream<Item = Result<SuccessChunk, ReqRespError>> + Send>>,
}

impl std::fmt::Debug for ResponseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseStream")
            .field("protocol", &self.protocol)
            .finish_non_exhaustive()
    }
}

impl ResponseStream {
    /// The protocol negotiated (a fallback version when the peer refused the first).
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }
}

impl futures::Stream for ResponseStream {
    type Item = Result<SuccessChunk, ReqRespError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct Reader {
    stream: BoxStream,
    dec: ResponseDecoder,
    checker: ResponseChecker,
    buf: Vec<u8>,
    pos: usize,
    len: usize,
    deadline: Instant,
    first: bool,
    bytes: u64,
    cfg: ReqRespConfig,
    done: bool,
    _permit: OwnedSemaphorePermit,
}

impl Reader {
    fn fail(&mut self, e: ReqRespError) -> Option<Result<SuccessChunk, ReqRespError>> {
        self.stream.reset();
        self.done = true;
        Some(Err(e))
    }

    async fn next_chunk(&mut self) -> Option<Result<SuccessChunk, ReqRespError>> {
        loop {
            if self.done {
                return None;
            }
            if self.pos < self.len {
                let mut input = &self.buf[self.pos..self.len];
                let res = self.dec.decode(&mut input);
                self.pos = self.len - input.len();
                match res {
                    Ok(None) => {}
                    Ok(Some(Chunk::Success(c))) => {
                        self.first = false;
                        self.deadline = Instant::now() + self.cfg.chunk_timeout;
                        self.bytes += c.ssz.len() as u64;
                        if self.bytes > self.cfg.max_response_bytes {
                            return self.fail(ReqRespError::TooLarge(self.cfg.max_response_bytes));
                        }
                        if let Err(v) = self.checker.check(&c) {
                            return self.fail(v.into());
                        }
                        return Some(Ok(c));
                    }
                    Ok(Some(Chunk::Error { code, message })) => {
                        self.done = true;
                        return Some(Err(ReqRespError::from_error_chunk(code, &message)));
                    }
                    Err(e) => return self.fail(e.into()),
                }
                continue;
            }
            let what = if self.first {
                "the first chunk"
            } else {
                "the next chunk"
            };
            match timeout_at(self.deadline, self.stream.read(&mut self.buf)).await {
                Err(_) => return self.fail(ReqRespError::Timeout(what)),
                Ok(Err(e)) => {
                    self.done = true;
                    return Some(Err(e.into()));
                }
                Ok(Ok(0)) => {
                    self.done = true;
                    return self.dec.finish().err().map(|e| Err(e.into()));
                }
                Ok(Ok(n)) => {
                    self.pos = 0;
                    self.len = n;
                }
            }
        }
    }
}

impl ReqRespHandle {
    /// The events (a bounded broadcast: a receiver that falls behind misses the oldest).
    pub fn events(&self) -> broadcast::Receiver<ReqRespEvent> {
        self.shared.events.subscribe()
    }

    /// Replace the MetaData we answer with (bump `seq_number` on every change).
    pub fn set_metadata(&self, metadata: MetaDataV3) {
        *lock(&self.shared.metadata) = metadata;
    }

    /// The MetaData we answer with.
    pub fn metadata_local(&self) -> MetaDataV3 {
        lock(&self.shared.metadata).clone()
    }

    /// Send `request` to `peer` (dialing it if needed) and return its response chunks as they
    /// arrive, each checked against the request: at most the chunks it allows, context bytes
    /// matching the object's slot, slots in range and in order, roots and indices among those
    /// requested.
    ///
    /// Versions: the request's protocol is proposed first, then its older versions that can
    /// carry it (`status/2` → `/1`, `metadata/3` → `/2` → `/1`, blocks `/2` → `/1`).
    /// The call waits (up to `max_queue_delay`) for one of the `max_concurrent_requests`
    /// slots of (peer, protocol) and for the outbound self-limiter.
    ///
    /// # Errors
    /// [`ReqRespError`] for failures before the first chunk is awaited; later failures come
    /// through the stream.
    pub async fn request(
        &self,
        peer: PeerId,
        request: Request,
    ) -> Result<ResponseStream, ReqRespError> {
        let shared = &self.shared;
        let cfg = &shared.cfg;
        let first = request.protocol();
        let candidates: Vec<Protocol> = first
            .with_fallbacks(Fork::Gloas)
            .into_iter()
            .filter(|p| p.version() <= first.version() && request.for_protocol(*p).is_some())
            .collect();
        let queue_deadline = Instant::now() + cfg.max_queue_delay;
        // Concurrency slot of (peer, protocol).
        let sem = lock(&shared.outbound_slots)
            .entry((peer, first))
            .or_insert_with(|| Arc::new(Semaphore::new(s_max(cfg))))
            .clone();
        let permit = timeout_at(queue_deadline, sem.acquire_owned())
            .await
            .map_err(|_| ReqRespError::Timeout("a concurrency slot"))?
            .map_err(|_| ReqRespError::Stopped)?;
        // Self-limiter.
        let (_, limits) = shared.fork_and_limits();
        let quota = cfg
            .outbound_quotas
            .unwrap_or_else(|| Quotas::for_limits(&limits))
            .get(first);
        let cost = request_cost(&request, &limits);
        loop {
            let now = Instant::now();
            let r =
                lock(&shared.outbound_limiter).try_take(peer, first, quota, cost, now.into_std());
            match r {
                Ok(()) => break,
                Err(wait) if now + wait <= queue_deadline => tokio::time::sleep(wait).await,
                Err(wait) => {
                    return Err(ReqRespError::RateLimited(format!(
                        "self-limiter: next slot in {wait:?}"
                    )));
                }
            }
        }
        let ids: Vec<&str> = candidates.iter().map(|p| p.id()).collect();
        let (agreed, mut stream) = shared.host.new_stream(peer, &ids).await?;
        let protocol = Protocol::from_id(&agreed).unwrap_or(first);
        let request = request.for_protocol(protocol).unwrap_or(request);
        let mut bytes = Vec::new();
        encode_request(protocol, &request.to_ssz(), &cfg.codec, &mut bytes)?;
        let deadline = Instant::now() + cfg.first_chunk_timeout;
        let write = async {
            stream.write_all(&bytes).await?;
            stream.shutdown().await
        };
        match timeout_at(deadline, write).await {
            Err(_) => {
                stream.reset();
                return Err(ReqRespError::Timeout("sending the request"));
            }
            Ok(Err(e)) => {
                stream.reset();
                return Err(e.into());
            }
            Ok(Ok(())) => {}
        }
        let max_chunks = request.max_response_chunks(&limits);
        let reader = Reader {
            stream,
            dec: ResponseDecoder::new(protocol, shared.schedule.clone(), cfg.codec, max_chunks),
            checker: ResponseChecker::new(
                request,
                shared.schedule.clone(),
                limits,
                cfg.block_root.clone(),
            ),
            buf: vec![0u8; READ_CHUNK],
            pos: 0,
            len: 0,
            deadline,
            first: true,
            bytes: 0,
            cfg: cfg.clone(),
            done: false,
            _permit: permit,
        };
        let inner = futures::stream::unfold(reader, |mut r| async move {
            let item = r.next_chunk().await?;
            Some((item, r))
        });
        Ok(ResponseStream {
            protocol,
            inner: Box::pin(inner),
        })
    }

    /// Send a single-chunk request and return its chunk.
    ///
    /// # Errors
    /// As [`ReqRespHandle::request`]; [`ReqRespError::NoResponse`] when the peer closed
    /// without a chunk.
    pub async fn request_one(
        &self,
        peer: PeerId,
        request: Request,
    ) -> Result<(Protocol, SuccessChunk), ReqRespError> {
        let mut s = self.request(peer, request).await?;
        let protocol = s.protocol();
        match s.next().await {
            Some(Ok(c)) => Ok((protocol, c)),
            Some(Err(e)) => Err(e),
            None => Err(ReqRespError::NoResponse),
        }
    }

    /// Exchange Status (`status/2`, falling back to `status/1` with the same fields).
    ///
    /// # Errors
    /// As [`ReqRespHandle::request_one`]; [`ReqRespError::Codec`] for invalid SSZ.
    pub async fn status(&self, peer: PeerId, ours: StatusV2) -> Result<Status, ReqRespError> {
        let (p, c) = self.request_one(peer, Request::StatusV2(ours)).await?;
        Ok(if p == Protocol::StatusV2 {
            Status::V2(decode(&c.ssz)?)
        } else {
            Status::V1(decode(&c.ssz)?)
        })
    }

    /// Fetch the peer's MetaData (`metadata/3`, falling back to `/2` and `/1`).
    ///
    /// # Errors
    /// As [`ReqRespHandle::status`].
    pub async fn metadata(&self, peer: PeerId) -> Result<MetaData, ReqRespError> {
        let (p, c) = self.request_one(peer, Request::MetaDataV3).await?;
        Ok(match p {
            Protocol::MetaDataV1 => MetaData::V1(decode(&c.ssz)?),
            Protocol::MetaDataV2 => MetaData::V2(decode(&c.ssz)?),
            _ => MetaData::V3(decode(&c.ssz)?),
        })
    }

    /// Ping the peer with our metadata sequence number; returns the peer's.
    ///
    /// # Errors
    /// As [`ReqRespHandle::status`].
    pub async fn ping(&self, peer: PeerId) -> Result<u64, ReqRespError> {
        let seq = lock(&self.shared.metadata).seq_number;
        let (_, c) = self.request_one(peer, Request::Ping(Ping(seq))).await?;
        Ok(decode::<Ping>(&c.ssz)?.0)
    }

    /// Say goodbye: send the reason and close, without waiting for an answer (clients do not
    /// send one). The caller disconnects afterwards.
    ///
    /// # Errors
    /// Opening the stream or writing failed.
    pub async fn goodbye(&self, peer: PeerId, reason: GoodbyeReason) -> Result<(), ReqRespError> {
        let (_, mut stream) = self
            .shared
            .host
            .new_stream(peer, &[Protocol::GoodbyeV1.id()])
            .await?;
        let mut bytes = Vec::new();
        let req = Request::Goodbye(reason.into());
        encode_request(
            req.protocol(),
            &req.to_ssz(),
            &self.shared.cfg.codec,
            &mut bytes,
        )?;
        let write = async {
            stream.write_all(&bytes).await?;
            stream.shutdown().await
        };
        match timeout(self.shared.cfg.first_chunk_timeout, write).await {
            Ok(r) => Ok(r?),
            Err(_) => {
                stream.reset();
                Err(ReqRespError::Timeout("sending goodbye"))
            }
        }
    }
}

fn decode<T: plexus_eth::ssz::Decode>(ssz: &[u8]) -> Result<T, ReqRespError> {
    decode_ssz(ssz).map_err(|e| ReqRespError::Codec(CodecError::Ssz(format!("{:?}", e.0))))
}
