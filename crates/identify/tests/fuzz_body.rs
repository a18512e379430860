//! Builds the `identify_msg` fuzz body (`fuzz/src/identify_msg.rs`, outside the workspace)
//! against this crate and replays its seed corpus, and checks what the seeds decode to.

#[allow(unreachable_pub)]
#[path = "../../../fuzz/src/identify_msg.rs"]
mod identify_msg;

use std::path::Path;

use plexus_identify::{IdentifyError, Limits, PeerInfo, decode_identify};
use plexus_identity::Keypair;

fn corpus() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/identify_msg");
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let path = e.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    seeds.sort();
    seeds
}

#[test]
fn seeds_replay_through_the_fuzz_body() {
    let seeds = corpus();
    assert!((3..=8).contains(&seeds.len()));
    for (_, data) in &seeds {
        identify_msg::run(data);
    }
}

#[test]
fn seeds_decode_as_named() {
    let peer = Keypair::ed25519_from_bytes([7; 32])
        .unwrap()
        .public()
        .to_peer_id();
    let limits = Limits::default();
    for (name, data) in corpus() {
        let stream = &data[1..];
        let res = decode_identify(stream, &limits);
        match name.as_str() {
            "single_full" | "go_split_record" => {
                let info = PeerInfo::from_message(res.unwrap(), &peer).unwrap();
                assert_eq!(info.agent_version.as_deref(), Some("plexus/0.1.0"));
                assert_eq!(info.listen_addrs.len(), 2);
                assert!(info.observed_addr.is_some());
                assert_eq!(info.protocols.len(), 3);
                assert_eq!(info.signed_peer_record.is_some(), name == "go_split_record");
            }
            "too_many_messages" => {
                let strict = Limits {
                    max_messages: 4,
                    ..limits
                };
                assert!(matches!(
                    decode_identify(stream, &strict),
                    Err(IdentifyError::TooManyMessages { max: 4 })
                ));
            }
            "oversized_prefix" => {
                let strict = Limits {
                    max_message_size: 1024,
                    ..limits
                };
                assert!(matches!(
                    decode_identify(stream, &strict),
                    Err(IdentifyError::MessageTooLarge { len: 1025, .. })
                ));
            }
            "garbage_fields" => assert!(res.is_err()),
            other => panic!("unexpected seed {other}"),
        }
    }
}

proptest::proptest! {
    #[test]
    fn fuzz_body_accepts_arbitrary_and_mutated_input(
        data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
        seed in 0usize..5,
        flips in proptest::collection::vec((proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()), 0..4),
    ) {
        identify_msg::run(&data);
        // Seeds with a few bytes changed reach deeper than random bytes.
        let mut mutated = corpus()[seed].1.clone();
        for (at, byte) in flips {
            let i = at % mutated.len();
            mutated[i] = byte;
        }
        identify_msg::run(&mutated);
    }
}
