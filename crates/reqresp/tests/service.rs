//! The Req/Resp service between two hosts over loopback TCP: built-in and client handlers,
//! version fallback, typed errors with blame, hostile responders, rate limits.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures::StreamExt;
use plexus_core::{Blame, BoxFut, PeerId};
use plexus_eth::ssz_types::BitVector;
use plexus_eth::{
    BeaconBlocksByRangeRequest, Fork, ForkDigest, ForkSchedule, GoodbyeReason, MetaDataV3, Ping,
    StatusV2, encode_ssz,
};
use plexus_host::{HandlerOpts, Host, HostConfig};
use plexus_identity::Keypair;
use plexus_multiaddr::{Multiaddr, Protocol as Addr};
use plexus_reqresp::{
    CodecConfig, MetaData, Protocol, Quota, Quotas, ReqResp, ReqRespConfig, ReqRespError,
    ReqRespEvent, ReqRespHandle, Request, RespondError, Responder, ResponseSink, Status,
    encode_frames, encode_success_chunk, encode_varint,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WAIT: Duration = Duration::from_secs(10);

async fn host() -> Host {
    let mut cfg = HostConfig::new(Keypair::generate_ed25519());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    Host::new(cfg).await.unwrap()
}

fn addr_of(h: &Host) -> Multiaddr {
    h.listen_addrs()[0].clone().with(Addr::P2p(h.peer_id()))
}

/// The wall clock stands in Deneb.
fn config(s: &Arc<ForkSchedule>) -> ReqRespConfig {
    let epoch = slot_of(s, Fork::Deneb) / 32 + 10;
    ReqRespConfig::new(s, Arc::new(move || epoch))
}

fn metadata(seq: u64) -> MetaDataV3 {
    MetaDataV3 {
        seq_number: seq,
        attnets: BitVector::new(),
        syncnets: BitVector::new(),
        custody_group_count: 4,
    }
}

fn status(s: &ForkSchedule) -> StatusV2 {
    StatusV2 {
        fork_digest: digest_of(s, Fork::Deneb),
        finalized_root: [1; 32],
        finalized_epoch: 5,
        head_root: [2; 32],
        head_slot: 1000,
        earliest_available_slot: 0,
    }
}

/// Serves Status (v1 and v2, or only v1), and BlocksByRange with one block per slot; an
/// optional misbehaviour.
struct Chain {
    schedule: Arc<ForkSchedule>,
    status_v2: bool,
    mode: Mode,
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Honest,
    Unavailable,
    OutOfRange,
    Slow,
}

impl Responder for Chain {
    fn protocols(&self) -> Vec<Protocol> {
        let mut p = vec![Protocol::StatusV1, Protocol::BeaconBlocksByRangeV2];
        if self.status_v2 {
            p.push(Protocol::StatusV2);
        }
        p
    }

    fn respond<'a>(
        &'a self,
        _peer: PeerId,
        request: Request,
        sink: &'a mut ResponseSink,
    ) -> BoxFut<'a, Result<(), RespondError>> {
        Box::pin(async move {
            let s = status(&self.schedule);
            match request {
                Request::StatusV2(_) => sink.send(&encode_ssz(&s), 0).await.unwrap(),
                Request::StatusV1(_) => {
                    let v1: plexus_eth::StatusV1 = s.into();
                    sink.send(&encode_ssz(&v1), 0).await.unwrap()
                }
                Request::BeaconBlocksByRangeV2(r) => match self.mode {
                    Mode::Unavailable => {
                        return Err(RespondError::ResourceUnavailable("pruned".into()));
                    }
                    Mode::Slow => tokio::time::sleep(Duration::from_secs(3)).await,
                    Mode::Honest | Mode::OutOfRange => {
                        for slot in r.start_slot..r.start_slot + r.count {
                            let slot = if self.mode == Mode::OutOfRange {
                                slot + r.count
                            } else {
                                slot
                            };
                            let block = fake_block(slot, 1_200);
                            if slot % 2 == 1 {
                                // Half the blocks go pre-encoded, as a node serving the
                                // same block to many peers would send them.
                                let encoded = plexus_reqresp::EncodedPayload::new(&block);
                                sink.send_encoded(&encoded, slot).await.unwrap();
                            } else {
                                sink.send(&block, slot).await.unwrap();
                            }
                        }
                    }
                },
                _ => return Err(RespondError::ServerError("unexpected".into())),
            }
            Ok(())
        })
    }
}

async fn pair(
    mode: Mode,
    status_v2: bool,
    tweak_a: impl FnOnce(&mut ReqRespConfig),
    tweak_b: impl FnOnce(&mut ReqRespConfig),
) -> (Host, Host, ReqRespHandle, ReqRespHandle) {
    let s = mainnet();
    let a = host().await;
    let b = host().await;
    let mut ca = config(&s);
    tweak_a(&mut ca);
    let mut cb = config(&s);
    tweak_b(&mut cb);
    let ra = ReqResp::spawn(
        a.clone(),
        s.clone(),
        ca,
        Arc::new(plexus_reqresp::NoResponder),
        metadata(1),
    )
    .unwrap();
    let chain = Chain {
        schedule: s.clone(),
        status_v2,
        mode,
    };
    let rb = ReqResp::spawn(b.clone(), s.clone(), cb, Arc::new(chain), metadata(7)).unwrap();
    a.connect(vec![addr_of(&b)]).await.unwrap();
    (a, b, ra, rb)
}

fn range(s: &ForkSchedule, count: u64) -> Request {
    Request::BeaconBlocksByRangeV2(BeaconBlocksByRangeRequest {
        start_slot: slot_of(s, Fork::Deneb),
        count,
        step: 1,
    })
}

#[tokio::test]
async fn builtin_and_client_handlers_between_two_hosts() {
    let (_a, b, ra, _rb) = pair(Mode::Honest, true, |_| {}, |_| {}).await;
    let s = mainnet();
    let pb = b.peer_id();
    assert_eq!(ra.ping(pb).await.unwrap(), 7);
    match ra.metadata(pb).await.unwrap() {
        MetaData::V3(m) => assert_eq!(m, metadata(7)),
        m => panic!("expected v3, got {m:?}"),
    }
    assert_eq!(
        ra.status(pb, status(&s)).await.unwrap(),
        Status::V2(status(&s))
    );
    let mut blocks = ra.request(pb, range(&s, 5)).await.unwrap();
    assert_eq!(blocks.protocol(), Protocol::BeaconBlocksByRangeV2);
    let mut slots = Vec::new();
    while let Some(c) = blocks.next().await {
        let c = c.unwrap();
        assert_eq!(c.fork, Some(Fork::Deneb));
        assert_eq!(c.context, Some(digest_of(&s, Fork::Deneb)));
        slots.push(u64::from_le_bytes(c.ssz[100..108].try_into().unwrap()));
    }
    let start = slot_of(&s, Fork::Deneb);
    assert_eq!(slots, (start..start + 5).collect::<Vec<_>>());
}

#[tokio::test]
async fn status_falls_back_to_v1() {
    let (_a, b, ra, _rb) = pair(Mode::Honest, false, |_| {}, |_| {}).await;
    let s = mainnet();
    assert_eq!(
        ra.status(b.peer_id(), status(&s)).await.unwrap(),
        Status::V1(status(&s).into())
    );
}

#[tokio::test]
async fn error_answers_are_typed_with_blame() {
    let (_a, b, ra, _rb) = pair(Mode::Unavailable, true, |_| {}, |_| {}).await;
    let s = mainnet();
    let mut st = ra.request(b.peer_id(), range(&s, 3)).await.unwrap();
    let err = st.next().await.unwrap().unwrap_err();
    assert!(
        matches!(&err, ReqRespError::ResourceUnavailable(m) if m == "pruned"),
        "{err}"
    );
    assert_eq!(err.blame(), Blame::PeerIncompatible);
    assert!(
        st.next().await.is_none(),
        "the response ends with the error"
    );
}

#[tokio::test]
async fn out_of_range_blocks_are_a_violation() {
    let (_a, b, ra, _rb) = pair(Mode::OutOfRange, true, |_| {}, |_| {}).await;
    let s = mainnet();
    let mut st = ra.request(b.peer_id(), range(&s, 3)).await.unwrap();
    let err = st.next().await.unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            ReqRespError::Violation(plexus_reqresp::ResponseViolation::SlotOutOfRange { .. })
        ),
        "{err}"
    );
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
    assert!(st.next().await.is_none());
}

#[tokio::test]
async fn slow_responder_times_out() {
    let (_a, b, ra, _rb) = pair(
        Mode::Slow,
        true,
        |c| c.first_chunk_timeout = Duration::from_millis(300),
        |_| {},
    )
    .await;
    let s = mainnet();
    let mut st = ra.request(b.peer_id(), range(&s, 3)).await.unwrap();
    let err = st.next().await.unwrap().unwrap_err();
    assert!(
        matches!(err, ReqRespError::Timeout("the first chunk")),
        "{err}"
    );
    assert_eq!(err.blame(), Blame::Local);
}

#[tokio::test]
async fn concurrency_is_capped_at_two_per_protocol_both_ways() {
    // Outbound: two requests hold the slots of (peer, protocol); a third waits and gives up
    // after max_queue_delay without opening a stream.
    let (_a, b, ra, _rb) = pair(
        Mode::Slow,
        true,
        |c| c.max_queue_delay = Duration::from_millis(300),
        |_| {},
    )
    .await;
    let s = mainnet();
    let first = ra.request(b.peer_id(), range(&s, 1)).await.unwrap();
    let second = ra.request(b.peer_id(), range(&s, 1)).await.unwrap();
    let started = tokio::time::Instant::now();
    let third = ra.request(b.peer_id(), range(&s, 1)).await;
    assert!(
        matches!(third, Err(ReqRespError::Timeout("a concurrency slot"))),
        "{third:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Another protocol is not held up by them.
    assert_eq!(
        ra.ping(b.peer_id()).await.unwrap(),
        7,
        "ping answered while blocks wait"
    );
    drop((first, second));

    // Inbound: a peer that ignores the limit (raw streams, no self-limiter) gets its third
    // concurrent stream of the protocol reset, while the two in progress stay open.
    let (a2, b2, _ra2, _rb2) = pair(Mode::Slow, true, |_| {}, |_| {}).await;
    let p = Protocol::BeaconBlocksByRangeV2;
    let mut req = Vec::new();
    plexus_reqresp::encode_request(p, &range(&s, 1).to_ssz(), &CodecConfig::default(), &mut req)
        .unwrap();
    let mut streams = Vec::new();
    for _ in 0..3 {
        let (_, mut st) = a2.new_stream(b2.peer_id(), &[p.id()]).await.unwrap();
        st.write_all(&req).await.unwrap();
        st.shutdown().await.unwrap();
        streams.push(st);
    }
    let mut third = streams.pop().unwrap();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(WAIT, third.read_to_end(&mut buf))
        .await
        .expect("the third stream is ended quickly");
    assert!(r.is_err() && buf.is_empty(), "third stream: {r:?} {buf:?}");
    // The first two are still being served (the slow responder holds them for 3 s).
    for mut st in streams {
        let mut one = [0u8; 1];
        let r = tokio::time::timeout(Duration::from_millis(300), st.read(&mut one)).await;
        assert!(r.is_err(), "stream still open and silent: {r:?}");
    }
}

#[tokio::test]
async fn inbound_rate_limit_answers_139_after_the_delay_bound() {
    let generous = Quotas {
        ping: Quota::new(1000, Duration::from_secs(1)),
        ..Quotas::for_limits(&mainnet().config().request_limits(Fork::Deneb))
    };
    let (_a, b, ra, _rb) = pair(
        Mode::Honest,
        true,
        |c| c.outbound_quotas = Some(generous),
        |c| c.max_rate_limit_delay = Duration::ZERO,
    )
    .await;
    let pb = b.peer_id();
    assert_eq!(ra.ping(pb).await.unwrap(), 7);
    assert_eq!(ra.ping(pb).await.unwrap(), 7);
    let err = ra.ping(pb).await.unwrap_err();
    assert!(matches!(err, ReqRespError::RateLimited(_)), "{err}");
    assert_eq!(err.blame(), Blame::Local);
}

#[tokio::test]
async fn self_limiter_holds_requests_back() {
    let (_a, b, ra, _rb) = pair(
        Mode::Honest,
        true,
        |c| {
            let mut q = Quotas::for_limits(&mainnet().config().request_limits(Fork::Deneb));
            q.ping = Quota::new(1, Duration::from_millis(600));
            c.outbound_quotas = Some(q);
        },
        |_| {},
    )
    .await;
    let pb = b.peer_id();
    ra.ping(pb).await.unwrap();
    let t = std::time::Instant::now();
    ra.ping(pb).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t.elapsed()
    );
    // Beyond max_queue_delay the request fails at once, blamed on us.
    let (_a, b, ra, _rb) = pair(
        Mode::Honest,
        true,
        |c| {
            let mut q = Quotas::for_limits(&mainnet().config().request_limits(Fork::Deneb));
            q.ping = Quota::new(1, Duration::from_secs(60));
            c.outbound_quotas = Some(q);
            c.max_queue_delay = Duration::from_millis(100);
        },
        |_| {},
    )
    .await;
    ra.ping(b.peer_id()).await.unwrap();
    let err = ra.ping(b.peer_id()).await.unwrap_err();
    assert!(matches!(err, ReqRespError::RateLimited(_)), "{err}");
}

#[tokio::test]
async fn goodbye_reaches_the_peer() {
    let (a, b, ra, rb) = pair(Mode::Honest, true, |_| {}, |_| {}).await;
    let mut events = rb.events();
    ra.goodbye(b.peer_id(), GoodbyeReason::TooManyPeers)
        .await
        .unwrap();
    let e = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(e, ReqRespEvent::Goodbye { peer, reason: GoodbyeReason::TooManyPeers } if peer == a.peer_id()),
        "{e:?}"
    );
}

/// Raw bytes against the service: a malformed request gets InvalidRequest (1) and the
/// failure is reported with the peer to blame.
#[tokio::test]
async fn malformed_request_gets_invalid_request() {
    let (a, b, _ra, rb) = pair(Mode::Honest, true, |_| {}, |_| {}).await;
    let mut events = rb.events();
    let (_, mut stream) = a
        .new_stream(b.peer_id(), &[Protocol::PingV1.id()])
        .await
        .unwrap();
    let mut bytes = vec![0x88, 0x00]; // non-minimal varint
    encode_frames(&encode_ssz(&Ping(1)), &mut bytes);
    stream.write_all(&bytes).await.unwrap();
    stream.shutdown().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer[0], 1, "InvalidRequest");
    let e = tokio::time::timeout(WAIT, events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(
            e,
            ReqRespEvent::InboundFailed {
                blame: Blame::PeerMisbehaved,
                protocol: Protocol::PingV1,
                ..
            }
        ),
        "{e:?}"
    );
}

/// A hand-written responder on a bare host: more chunks than requested, wrong context bytes,
/// a trickle of one byte at a time, a snappy bomb. Each is a typed error on the requester.
#[tokio::test]
async fn requester_rejects_hostile_responses() {
    let s = mainnet();
    let a = host().await;
    let b = host().await;
    let mut ca = config(&s);
    ca.chunk_timeout = Duration::from_millis(400);
    ca.first_chunk_timeout = Duration::from_millis(400);
    let ra = ReqResp::spawn(
        a.clone(),
        s.clone(),
        ca,
        Arc::new(plexus_reqresp::NoResponder),
        metadata(1),
    )
    .unwrap();
    let mut incoming = b
        .handle(Protocol::BeaconBlocksByRangeV2.id(), HandlerOpts::default())
        .unwrap();
    a.connect(vec![addr_of(&b)]).await.unwrap();
    let deneb = digest_of(&s, Fork::Deneb);
    let start = slot_of(&s, Fork::Deneb);
    let chunk = |slot: u64, digest: ForkDigest| {
        let mut out = Vec::new();
        encode_success_chunk(
            Protocol::BeaconBlocksByRangeV2,
            Some(digest),
            &fake_block(slot, 1_200),
            &s,
            &CodecConfig::default(),
            &mut out,
        )
        .unwrap();
        out
    };
    let mut bomb = vec![0];
    bomb.extend_from_slice(&deneb.0);
    encode_varint(100_000, &mut bomb);
    let mut frames = Vec::new();
    encode_frames(&vec![0u8; 65_536], &mut frames);
    bomb.extend_from_slice(&frames);
    bomb.extend_from_slice(&frames[10..]);
    let cases: Vec<(Vec<u8>, bool, &str)> = vec![
        (
            [chunk(start, deneb), chunk(start + 1, deneb)].concat(),
            false,
            "extra chunk",
        ),
        (
            chunk(start, digest_of(&s, Fork::Capella)),
            false,
            "wrong context",
        ),
        (chunk(start, deneb), true, "trickle"),
        (bomb, false, "bomb"),
    ];
    for (bytes, trickle, name) in cases {
        let req = range(&s, 1);
        let serve = async {
            let mut inbound = incoming.next().await.unwrap();
            let mut sink = Vec::new();
            let _ = inbound.stream.read_to_end(&mut sink).await;
            if trickle {
                for b in &bytes {
                    if inbound.stream.write_all(&[*b]).await.is_err() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            } else {
                let _ = inbound.stream.write_all(&bytes).await;
                let _ = inbound.stream.shutdown().await;
            }
        };
        let ask = async {
            let mut st = ra.request(b.peer_id(), req).await.unwrap();
            let mut results = Vec::new();
            while let Some(r) = st.next().await {
                results.push(r);
            }
            results
        };
        let (_, results) = tokio::join!(tokio::time::timeout(WAIT, serve), ask);
        let err = results
            .into_iter()
            .find_map(|r| r.err())
            .unwrap_or_else(|| panic!("{name}: no error"));
        match name {
            "extra chunk" => assert!(
                matches!(
                    err,
                    ReqRespError::Codec(plexus_reqresp::CodecError::TooManyChunks { max: 1 })
                ),
                "{name}: {err}"
            ),
            "wrong context" => assert!(
                matches!(
                    err,
                    ReqRespError::Violation(
                        plexus_reqresp::ResponseViolation::ContextMismatch { .. }
                    )
                ),
                "{name}: {err}"
            ),
            "trickle" => assert!(matches!(err, ReqRespError::Timeout(_)), "{name}: {err}"),
            _ => assert!(
                matches!(
                    err,
                    ReqRespError::Codec(plexus_reqresp::CodecError::Overflow { .. })
                ),
                "{name}: {err}"
            ),
        }
        if name != "trickle" {
            assert_eq!(err.blame(), Blame::PeerMisbehaved, "{name}");
        }
    }
}
