//! Fuzz target `reqresp_response`: an Ethereum Req/Resp response stream (remote bytes up to
//! the responder's EOF) through `plexus_reqresp::ResponseDecoder`, against mainnet's or
//! Sepolia's fork schedule (Sepolia schedules Gloas).
//!
//! Input layout: byte 0 picks the protocol, byte 1 the most chunks allowed (0–15) and the
//! network (bit 4), byte 2 the delivery chunk size (1–256); the rest is the stream.
//!
//! Asserts: no panic; feeding in chunks gives the same chunks and outcome as feeding the
//! whole; never more success chunks than allowed, nothing after an error chunk; each success
//! chunk is within its type's bounds at its context fork, and re-encodes to bytes that decode
//! to the same chunk; reading fields for the request checks never panics.
use std::sync::{Arc, OnceLock};

use plexus_eth::{ForkSchedule, Network};
use plexus_reqresp::{
    Chunk, CodecConfig, CodecError, Protocol, ResponseDecoder, chunk_fields, encode_error_chunk,
    encode_success_chunk,
};

fn schedules() -> &'static [Arc<ForkSchedule>; 2] {
    static S: OnceLock<[Arc<ForkSchedule>; 2]> = OnceLock::new();
    S.get_or_init(|| {
        [Network::Mainnet, Network::Sepolia]
            .map(|n| Arc::new(ForkSchedule::for_network(n).expect("built-in network")))
    })
}

fn decode(
    protocol: Protocol,
    schedule: &Arc<ForkSchedule>,
    max: u64,
    stream: &[u8],
    step: usize,
) -> (Vec<Chunk>, Result<(), CodecError>) {
    let mut dec = ResponseDecoder::new(protocol, schedule.clone(), CodecConfig::default(), max);
    let mut chunks = Vec::new();
    for piece in stream.chunks(step) {
        let mut input = piece;
        while !input.is_empty() {
            match dec.decode(&mut input) {
                Ok(Some(c)) => chunks.push(c),
                Ok(None) => {}
                Err(e) => return (chunks, Err(e)),
            }
        }
    }
    (chunks, dec.finish())
}

pub fn run(data: &[u8]) {
    let [sel, opts, step, stream @ ..] = data else {
        return;
    };
    let protocol = Protocol::ALL[*sel as usize % Protocol::ALL.len()];
    let max = u64::from(opts & 0x0f);
    let schedule = &schedules()[usize::from(opts >> 4 & 1)];
    let config = CodecConfig::default();

    let whole = decode(protocol, schedule, max, stream, stream.len().max(1));
    let split = decode(protocol, schedule, max, stream, *step as usize + 1);
    assert_eq!(whole, split, "split delivery changed the outcome");

    let (chunks, _) = whole;
    let successes = chunks
        .iter()
        .filter(|c| matches!(c, Chunk::Success(_)))
        .count() as u64;
    let limit = if protocol.is_single_chunk() {
        max.min(1)
    } else {
        max
    };
    assert!(successes <= limit, "{successes} chunks, at most {limit}");
    for (i, c) in chunks.iter().enumerate() {
        let mut again = Vec::new();
        match c {
            Chunk::Error { code, message } => {
                assert_eq!(i, chunks.len() - 1, "an error chunk is the last");
                encode_error_chunk(*code, message, &mut again).expect("error chunk re-encodes");
            }
            Chunk::Success(s) => {
                let fork = s.fork.unwrap_or(protocol.since());
                let (min, max) = protocol
                    .response_bounds(fork, schedule.config())
                    .expect("accepted chunks have a type at their fork");
                let n = s.ssz.len() as u64;
                assert!(n >= min && n <= max, "{n} outside [{min}, {max}]");
                assert_eq!(s.context.is_some(), protocol.has_context_bytes());
                let _ = chunk_fields(protocol.response_kind(), fork, &s.ssz);
                encode_success_chunk(protocol, s.context, &s.ssz, schedule, &config, &mut again)
                    .expect("accepted chunk re-encodes");
            }
        }
        let (back, res) = decode(protocol, schedule, 1, &again, again.len());
        assert_eq!(res, Ok(()));
        assert_eq!(back, vec![c.clone()]);
    }
}
