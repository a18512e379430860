//! Fuzz target `reqresp_request`: an Ethereum Req/Resp request stream (remote bytes up to the
//! requester's EOF) through `plexus_reqresp::RequestDecoder`.
//!
//! Input layout: byte 0 picks the protocol, byte 1 the delivery chunk size (1–256); the rest
//! is the stream.
//!
//! Asserts: no panic; feeding in chunks gives the same outcome as feeding the whole; an
//! accepted payload is within the protocol's request bounds; a payload that decodes as the
//! protocol's SSZ type re-encodes (varint + frames) to a stream that decodes to the same
//! request.
use plexus_reqresp::{CodecConfig, Protocol, Request, RequestDecoder, encode_request};

pub fn run(data: &[u8]) {
    let [sel, step, stream @ ..] = data else {
        return;
    };
    let protocol = Protocol::ALL[*sel as usize % Protocol::ALL.len()];
    let step = *step as usize + 1;
    let config = CodecConfig::default();

    let whole = plexus_reqresp::decode_request_bytes(protocol, config, stream);
    let mut dec = RequestDecoder::new(protocol, config);
    let mut split = Ok(());
    for piece in stream.chunks(step) {
        split = dec.feed(piece);
        if split.is_err() {
            break;
        }
    }
    let split = split.and_then(|()| dec.finish());
    assert_eq!(whole, split, "split delivery changed the outcome");

    let Ok(ssz) = whole else { return };
    match protocol.request_bounds() {
        None => assert!(ssz.is_empty()),
        Some((min, max)) => {
            let n = ssz.len() as u64;
            assert!(n >= min && n <= max, "{n} outside [{min}, {max}]");
        }
    }
    let Ok(request) = Request::from_ssz(protocol, &ssz) else {
        return;
    };
    assert_eq!(request.protocol(), protocol);
    assert_eq!(request.to_ssz(), ssz, "SSZ is canonical");
    let mut again = Vec::new();
    encode_request(protocol, &ssz, &config, &mut again).expect("accepted payload re-encodes");
    let back = plexus_reqresp::decode_request_bytes(protocol, config, &again)
        .expect("our encoding decodes");
    assert_eq!(back, ssz);
}
