//! Property tests: payload codec round trip, framer chunking round trip, and arbitrary bytes
//! into every decoder never panic.

use bytes::BytesMut;
use plexus_noise::{
    MAX_PLAINTEXT_LEN, NoiseExtensions, NoiseFramer, NoiseHandshakePayload, PayloadLimits,
    verify_payload,
};
use proptest::prelude::*;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn payload_strategy() -> impl Strategy<Value = NoiseHandshakePayload> {
    let limits = PayloadLimits::default();
    let ext = (
        proptest::collection::vec(
            proptest::collection::vec(any::<u8>(), 0..=limits.max_certhash_len),
            0..=limits.max_certhashes,
        ),
        proptest::collection::vec("[ -~]{0,40}", 0..=limits.max_muxers),
    )
        .prop_map(|(webtransport_certhashes, stream_muxers)| NoiseExtensions {
            webtransport_certhashes,
            stream_muxers,
        });
    (
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..80)),
        proptest::option::of(ext),
    )
        .prop_map(
            |(identity_key, identity_sig, extensions)| NoiseHandshakePayload {
                identity_key,
                identity_sig,
                extensions,
            },
        )
}

proptest! {
    #[test]
    fn payload_decode_encode_round_trip(p in payload_strategy()) {
        let bytes = p.encode_to_vec();
        let back = NoiseHandshakePayload::decode_bounded(&bytes, &PayloadLimits::default()).unwrap();
        prop_assert_eq!(back, p);
    }

    #[test]
    fn payload_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(p) = NoiseHandshakePayload::decode_bounded(&bytes, &PayloadLimits::default()) {
            // Whatever decodes is within the limits and verifies (or not) without panicking.
            prop_assert!(p.check_limits(&PayloadLimits::default()).is_ok());
            let _ = verify_payload(&p, &[9u8; 32]);
        }
    }

    #[test]
    fn framer_round_trips_any_chunking(
        chunks in proptest::collection::vec(0usize..3 * MAX_PLAINTEXT_LEN / 2, 1..6),
        cuts in proptest::collection::vec(1usize..70_000, 1..20),
        seed in any::<u64>(),
    ) {
        let (mut tx, mut rx) = NoiseFramer::insecure_fixed_key_pair();
        let total: usize = chunks.iter().sum();
        let data = super::pattern(total, seed);
        let mut wire = BytesMut::new();
        let mut off = 0;
        for len in &chunks {
            tx.encrypt(&data[off..off + len], &mut wire).unwrap();
            off += len;
        }
        // Deliver the wire in arbitrary pieces, as a socket would.
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        let mut cuts = cuts.iter().cycle();
        while !wire.is_empty() {
            let n = (*cuts.next().unwrap()).min(wire.len());
            input.extend_from_slice(&wire.split_to(n));
            while let Some(n) = rx.decrypt_next(&mut input, &mut out).unwrap() {
                prop_assert!(n <= MAX_PLAINTEXT_LEN);
            }
        }
        prop_assert!(input.is_empty());
        prop_assert!(out[..] == data[..]);
    }

    #[test]
    fn decrypt_next_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048), valid_prefix in any::<bool>()) {
        let (mut tx, mut rx) = NoiseFramer::insecure_fixed_key_pair();
        let mut input = BytesMut::new();
        if valid_prefix {
            tx.encrypt(b"a valid frame first", &mut input).unwrap();
        }
        input.extend_from_slice(&bytes);
        let mut out = BytesMut::new();
        let mut frames = 0;
        while let Ok(Some(_)) = rx.decrypt_next(&mut input, &mut out) {
            frames += 1;
            prop_assert!(frames <= 1 + bytes.len() / 18, "only whole authenticated frames count");
        }
        if valid_prefix {
            prop_assert!(out.starts_with(b"a valid frame first"));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn stream_round_trips_any_write_and_read_sizes(
        writes in proptest::collection::vec(1usize..150_000, 1..8),
        reads in proptest::collection::vec(1usize..150_000, 1..8),
        seed in any::<u64>(),
    ) {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        let (got, data) = rt.block_on(async {
            let (a, b) = (super::secp(), super::secp());
            let (i, r) = super::connect(&a, &b, None, vec![], vec![]).await;
            let (mut i, mut r) = (i.unwrap().stream, r.unwrap().stream);
            let total: usize = writes.iter().sum();
            let data = super::pattern(total, seed);
            let writer = async {
                let mut off = 0;
                for len in &writes {
                    i.write_all(&data[off..off + len]).await.unwrap();
                    off += len;
                }
                i.shutdown().await.unwrap();
            };
            let reader = async {
                let mut got = Vec::new();
                let mut buf = vec![0u8; 150_000];
                for len in reads.iter().cycle() {
                    let n = r.read(&mut buf[..*len]).await.unwrap();
                    if n == 0 {
                        break;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                got
            };
            let ((), got) = tokio::join!(writer, reader);
            (got, data)
        });
        prop_assert!(got == data);
    }
}
