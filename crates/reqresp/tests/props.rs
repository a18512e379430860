//! Property tests: decoding arbitrary bytes never panics; any split of the input gives the
//! same result as the whole; encode then decode is the identity.

mod common;

use common::*;
use plexus_eth::Fork;
use plexus_reqresp::{
    CodecConfig, Protocol, RequestDecoder, ResponseDecoder, decode_request_bytes, encode_frames,
    encode_success_chunk, encode_varint,
};
use proptest::prelude::*;

fn protocol() -> impl Strategy<Value = Protocol> {
    (0..Protocol::ALL.len()).prop_map(|i| Protocol::ALL[i])
}

/// Decode a request fed in pieces whose sizes come from `cuts`.
fn request_in_pieces(p: Protocol, bytes: &[u8], cuts: &[usize]) -> Result<Vec<u8>, String> {
    let mut dec = RequestDecoder::new(p, CodecConfig::default());
    let mut rest = bytes;
    for c in cuts.iter().chain(std::iter::once(&usize::MAX)) {
        let n = (*c).min(rest.len());
        let (head, tail) = rest.split_at(n);
        dec.feed(head).map_err(|e| e.to_string())?;
        rest = tail;
        if rest.is_empty() {
            break;
        }
    }
    dec.finish().map_err(|e| e.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn request_decoder_any_bytes_any_split(
        p in protocol(),
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        cuts in proptest::collection::vec(0usize..40, 0..20),
    ) {
        let whole = decode_request_bytes(p, CodecConfig::default(), &bytes).map_err(|e| e.to_string());
        let split = request_in_pieces(p, &bytes, &cuts);
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn response_decoder_any_bytes_any_split(
        p in protocol(),
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        step in 1usize..17,
        max in 0u64..4,
    ) {
        let s = mainnet();
        let whole = decode_all(p, &s, max, &bytes);
        let split = decode_split(p, &s, max, &bytes, step);
        prop_assert_eq!(whole, split);
    }

    /// A valid prefix (varint and stream identifier) followed by arbitrary frames.
    #[test]
    fn framed_garbage_never_panics(
        declared in 0u64..200_000,
        frames in proptest::collection::vec(any::<u8>(), 0..2_000),
    ) {
        let mut b = Vec::new();
        encode_varint(declared, &mut b);
        b.extend_from_slice(&plexus_reqresp::STREAM_IDENTIFIER);
        b.extend_from_slice(&frames);
        let _ = decode_request_bytes(Protocol::BeaconBlocksByRootV2, CodecConfig::default(), &b);
        let s = mainnet();
        let mut r = vec![0];
        r.extend_from_slice(&digest_of(&s, Fork::Deneb).0);
        r.extend_from_slice(&b);
        let mut dec = ResponseDecoder::new(Protocol::BeaconBlocksByRangeV2, s, CodecConfig::default(), 3);
        let mut input = &r[..];
        while !input.is_empty() {
            match dec.decode(&mut input) {
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
    }

    /// Arbitrary payloads round-trip through the frames, split anywhere.
    #[test]
    fn payload_round_trip(
        data in proptest::collection::vec(any::<u8>(), 0..200_000),
        step in 1usize..70_000,
    ) {
        let s = mainnet();
        let len = data.len().max(1_104);
        let mut block = data.clone();
        block.resize(len, 0);
        let d = digest_of(&s, Fork::Deneb);
        let mut out = Vec::new();
        encode_success_chunk(Protocol::BeaconBlocksByRootV2, Some(d), &block, &s, &CodecConfig::default(), &mut out).unwrap();
        let chunks = decode_split(Protocol::BeaconBlocksByRootV2, &s, 1, &out, step).unwrap();
        prop_assert_eq!(chunks.len(), 1);
        match &chunks[0] {
            plexus_reqresp::Chunk::Success(c) => prop_assert_eq!(&c.ssz, &block),
            c => prop_assert!(false, "unexpected {:?}", c),
        }
        // Request side: the same payload under a BlocksByRoot length.
        let roots = &data[..data.len() / 32 * 32].to_vec()[..(data.len() / 32).min(1024) * 32];
        let mut req = Vec::new();
        encode_varint(roots.len() as u64, &mut req);
        encode_frames(roots, &mut req);
        prop_assert_eq!(decode_request_bytes(Protocol::BeaconBlocksByRootV2, CodecConfig::default(), &req).unwrap(), roots.to_vec());
    }
}
