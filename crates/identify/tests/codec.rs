//! Stream-level identify: framing, merging, limits, verification, over in-memory pipes.

use std::time::Duration;

use plexus_core::Blame;
use plexus_identify::{
    Identify, IdentifyError, Limits, MAX_SEND_SIZE, PeerInfo, decode_identify, read_identify,
    write_identify,
};
use plexus_identity::Keypair;
use plexus_multiaddr::Multiaddr;
use tokio::io::{AsyncWriteExt, duplex};

fn addr(s: &str) -> Multiaddr {
    s.parse().unwrap()
}

fn full_info(key: &Keypair) -> PeerInfo {
    PeerInfo {
        protocol_version: Some("/ipfs/0.1.0".into()),
        agent_version: Some("plexus/test".into()),
        public_key: Some(key.public()),
        listen_addrs: vec![addr("/ip4/127.0.0.1/tcp/9000"), addr("/ip6/::1/tcp/9001")],
        observed_addr: Some(addr("/ip4/10.0.0.1/tcp/4242")),
        protocols: vec!["/ipfs/id/1.0.0".into(), "/ipfs/ping/1.0.0".into()],
        signed_peer_record: Some(vec![0x5a; 100]),
        skipped_addrs: 0,
    }
}

/// Length-prefix a raw protobuf body.
fn delimited(body: &[u8]) -> Vec<u8> {
    let mut buf = unsigned_varint::encode::usize_buffer();
    let mut out = unsigned_varint::encode::usize(body.len(), &mut buf).to_vec();
    out.extend_from_slice(body);
    out
}

fn body(msg: &Identify) -> Vec<u8> {
    let d = msg.encode_delimited();
    let (_, rest) = unsigned_varint::decode::usize(&d).unwrap();
    rest.to_vec()
}

#[tokio::test]
async fn write_then_read_round_trips_and_verifies() {
    let key = Keypair::generate_ed25519();
    let info = full_info(&key);
    let (mut a, mut b) = duplex(64 * 1024);
    let trimmed = write_identify(&mut a, &info.to_message()).await.unwrap();
    assert!(trimmed.is_empty());
    let msg = read_identify(&mut b, &Limits::default()).await.unwrap();
    let decoded = PeerInfo::from_message(msg, &key.public().to_peer_id()).unwrap();
    assert_eq!(decoded, info);
}

#[tokio::test]
async fn go_style_split_is_merged() {
    // go-libp2p sends everything but the signed peer record, then a second message holding
    // only the record, in two writes.
    let key = Keypair::generate_secp256k1();
    let info = full_info(&key);
    let mut first = info.to_message();
    let record = first.signed_peer_record.take().unwrap();
    let second = Identify {
        signed_peer_record: Some(record),
        ..Identify::default()
    };
    let (mut a, mut b) = duplex(64 * 1024);
    let writer = tokio::spawn(async move {
        a.write_all(&first.encode_delimited()).await.unwrap();
        a.flush().await.unwrap();
        tokio::task::yield_now().await;
        a.write_all(&second.encode_delimited()).await.unwrap();
        a.shutdown().await.unwrap();
    });
    let msg = read_identify(&mut b, &Limits::default()).await.unwrap();
    writer.await.unwrap();
    assert_eq!(msg, info.to_message());
    let decoded = PeerInfo::from_message(msg, &key.public().to_peer_id()).unwrap();
    assert_eq!(decoded.signed_peer_record, Some(vec![0x5a; 100]));
    assert_eq!(decoded, info);
}

#[test]
fn merge_overwrites_scalars_and_concatenates_lists() {
    let m1 = Identify {
        agent_version: Some("old/1".into()),
        protocols: vec!["/a".into()],
        ..Identify::default()
    };
    let m2 = Identify {
        agent_version: Some("new/2".into()),
        protocols: vec!["/b".into()],
        ..Identify::default()
    };
    let mut data = m1.encode_delimited();
    data.extend(m2.encode_delimited());
    let msg = decode_identify(&data, &Limits::default()).unwrap();
    assert_eq!(msg.agent_version.as_deref(), Some("new/2"));
    assert_eq!(msg.protocols, vec!["/a".to_string(), "/b".to_string()]);
}

#[test]
fn message_count_cap() {
    let one = Identify {
        agent_version: Some("a/1".into()),
        ..Identify::default()
    }
    .encode_delimited();
    let limits = Limits::default();
    let ten = one.repeat(10);
    assert!(
        decode_identify(&ten, &limits).is_ok(),
        "10 messages are accepted"
    );
    let eleven = one.repeat(11);
    let err = decode_identify(&eleven, &limits).unwrap_err();
    assert!(
        matches!(err, IdentifyError::TooManyMessages { max: 10 }),
        "{err}"
    );
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
    // Empty messages (a zero length prefix) count too.
    let err = decode_identify(&[0u8; 11], &limits).unwrap_err();
    assert!(
        matches!(err, IdentifyError::TooManyMessages { .. }),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_prefix_is_rejected_before_the_body_arrives() {
    let (mut a, mut b) = duplex(64 * 1024);
    // Announce 8 KiB + 1 and send nothing more, keeping the stream open: the reader must not
    // wait for the body.
    let mut buf = unsigned_varint::encode::usize_buffer();
    a.write_all(unsigned_varint::encode::usize(8 * 1024 + 1, &mut buf))
        .await
        .unwrap();
    let err = tokio::time::timeout(
        Duration::from_secs(5),
        read_identify(&mut b, &Limits::default()),
    )
    .await
    .expect("rejected from the prefix alone")
    .unwrap_err();
    assert!(
        matches!(
            err,
            IdentifyError::MessageTooLarge {
                len: 8193,
                max: 8192
            }
        ),
        "{err}"
    );
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
    drop(a);
}

#[test]
fn largest_allowed_message_is_accepted() {
    let msg = Identify {
        signed_peer_record: Some(vec![1; 8 * 1024 - 3]),
        ..Identify::default()
    };
    assert_eq!(msg.body_len(), 8 * 1024);
    assert_eq!(
        decode_identify(&msg.encode_delimited(), &Limits::default()).unwrap(),
        msg
    );
}

#[test]
fn total_size_cap() {
    let limits = Limits {
        max_total_size: 1000,
        ..Limits::default()
    };
    let msg = Identify {
        signed_peer_record: Some(vec![1; 400]),
        ..Identify::default()
    }
    .encode_delimited();
    assert!(decode_identify(&msg.repeat(2), &limits).is_ok());
    let err = decode_identify(&msg.repeat(3), &limits).unwrap_err();
    assert!(
        matches!(err, IdentifyError::TotalTooLarge { max: 1000 }),
        "{err}"
    );
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
}

#[test]
fn entry_caps_apply_across_merged_messages() {
    let limits = Limits {
        max_listen_addrs: 3,
        max_protocols: 4,
        ..Limits::default()
    };
    let addrs = Identify {
        listen_addrs: vec![addr("/ip4/1.2.3.4/tcp/1").to_vec(); 2],
        ..Identify::default()
    }
    .encode_delimited();
    let err = decode_identify(&addrs.repeat(2), &limits).unwrap_err();
    assert!(
        matches!(
            err,
            IdentifyError::TooManyEntries {
                what: "listen addresses",
                max: 3
            }
        ),
        "{err}"
    );
    let protos = Identify {
        protocols: vec![String::new(); 5],
        ..Identify::default()
    }
    .encode_delimited();
    let err = decode_identify(&protos, &limits).unwrap_err();
    assert!(
        matches!(
            err,
            IdentifyError::TooManyEntries {
                what: "protocols",
                max: 4
            }
        ),
        "{err}"
    );
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
}

#[test]
fn framing_errors_are_typed() {
    let limits = Limits::default();
    // Nothing at all.
    let err = decode_identify(&[], &limits).unwrap_err();
    assert!(matches!(err, IdentifyError::Empty));
    assert_eq!(err.blame(), Blame::Local);
    // A prefix promising 5 bytes, 2 sent.
    let err = decode_identify(&[5, 0x32, 0], &limits).unwrap_err();
    assert!(matches!(err, IdentifyError::Truncated { have: 3 }), "{err}");
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
    // An unfinished prefix.
    let err = decode_identify(&[0x80], &limits).unwrap_err();
    assert!(matches!(err, IdentifyError::Truncated { have: 1 }), "{err}");
    // A non-minimal prefix.
    let err = decode_identify(&[0x80, 0x00], &limits).unwrap_err();
    assert!(matches!(err, IdentifyError::InvalidLengthPrefix), "{err}");
    // Invalid UTF-8 in a protocol (field 3).
    let err = decode_identify(&delimited(&[0x1a, 1, 0xff]), &limits).unwrap_err();
    assert!(matches!(err, IdentifyError::Decode(_)), "{err}");
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
    // A group wire type.
    let err = decode_identify(&delimited(&[0x0b]), &limits).unwrap_err();
    assert!(matches!(err, IdentifyError::Malformed(_)), "{err}");
}

#[test]
fn unknown_fields_are_ignored() {
    let mut b = body(&Identify {
        agent_version: Some("x/1".into()),
        ..Identify::default()
    });
    // Field 9, varint 7; field 100, bytes "hi".
    b.extend_from_slice(&[0x48, 7, 0xa2, 0x06, 2, b'h', b'i']);
    let msg = decode_identify(&delimited(&b), &Limits::default()).unwrap();
    assert_eq!(msg.agent_version.as_deref(), Some("x/1"));
}

#[test]
fn wrong_public_key_is_misbehaviour() {
    let key = Keypair::generate_ed25519();
    let other = Keypair::generate_ed25519();
    let msg = full_info(&other).to_message();
    let err = PeerInfo::from_message(msg, &key.public().to_peer_id()).unwrap_err();
    match &err {
        IdentifyError::PublicKeyMismatch { expected, actual } => {
            assert_eq!(*expected, key.public().to_peer_id());
            assert_eq!(*actual, other.public().to_peer_id());
        }
        e => panic!("unexpected {e}"),
    }
    assert_eq!(err.blame(), Blame::PeerMisbehaved);

    let garbage = Identify {
        public_key: Some(vec![8, 1, 18, 3, 1, 2, 3]),
        ..Identify::default()
    };
    let err = PeerInfo::from_message(garbage, &key.public().to_peer_id()).unwrap_err();
    assert!(matches!(err, IdentifyError::InvalidPublicKey(_)), "{err}");
    assert_eq!(err.blame(), Blame::PeerMisbehaved);
}

#[test]
fn absent_public_key_comes_from_the_peer_id() {
    let key = Keypair::generate_secp256k1();
    let info = PeerInfo::from_message(Identify::default(), &key.public().to_peer_id()).unwrap();
    assert_eq!(info.public_key, Some(key.public()));
}

#[test]
fn undecodable_addresses_are_skipped_and_counted() {
    let key = Keypair::generate_ed25519();
    let good = addr("/ip4/1.2.3.4/tcp/5");
    let msg = Identify {
        listen_addrs: vec![vec![0xff, 0xff, 0xff], good.to_vec(), vec![4, 1]],
        observed_addr: Some(vec![0x7f]),
        ..Identify::default()
    };
    let info = PeerInfo::from_message(msg, &key.public().to_peer_id()).unwrap();
    assert_eq!(info.listen_addrs, vec![good]);
    assert_eq!(info.observed_addr, None);
    assert_eq!(info.skipped_addrs, 3);
}

#[test]
fn push_merges_only_present_fields() {
    let key = Keypair::generate_ed25519();
    let mut known = full_info(&key);
    let update = PeerInfo {
        listen_addrs: vec![addr("/ip4/8.8.8.8/tcp/1")],
        ..PeerInfo::default()
    };
    let mut expected = known.clone();
    expected.listen_addrs = update.listen_addrs.clone();
    known.merge(update);
    assert_eq!(known, expected);

    let update = PeerInfo {
        agent_version: Some("plexus/2".into()),
        protocols: vec!["/new/1".into()],
        ..PeerInfo::default()
    };
    known.merge(update);
    assert_eq!(known.agent_version.as_deref(), Some("plexus/2"));
    assert_eq!(known.protocols, vec!["/new/1".to_string()]);
    assert_eq!(known.listen_addrs, expected.listen_addrs, "kept");
    assert_eq!(known.public_key, Some(key.public()), "kept");
}

#[tokio::test]
async fn large_own_message_is_trimmed_and_readable() {
    let key = Keypair::generate_ed25519();
    let mut info = full_info(&key);
    info.listen_addrs = (0..500u16)
        .map(|p| addr(&format!("/ip4/192.168.1.1/tcp/{}", 1000 + p)))
        .collect();
    let (mut a, mut b) = duplex(64 * 1024);
    let trimmed = write_identify(&mut a, &info.to_message()).await.unwrap();
    assert!(trimmed.signed_peer_record);
    assert!(trimmed.listen_addrs > 0 && trimmed.listen_addrs < 500);
    // rust-libp2p's limit: a single message whose body is at most 4096 bytes.
    let strict = Limits {
        max_messages: 1,
        max_message_size: MAX_SEND_SIZE,
        ..Limits::default()
    };
    let msg = read_identify(&mut b, &strict).await.unwrap();
    let got = PeerInfo::from_message(msg, &key.public().to_peer_id()).unwrap();
    assert_eq!(got.listen_addrs.len(), 500 - trimmed.listen_addrs);
    assert_eq!(
        got.listen_addrs[..],
        info.listen_addrs[..got.listen_addrs.len()]
    );
    assert_eq!(got.protocols, info.protocols);
}

#[tokio::test]
async fn closed_without_message_is_empty() {
    let (a, mut b) = duplex(1024);
    drop(a);
    // A dropped duplex end reads as EOF; with nothing sent that is `Empty`.
    let err = read_identify(&mut b, &Limits::default()).await.unwrap_err();
    assert!(matches!(err, IdentifyError::Empty), "{err}");
}
