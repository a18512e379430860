//! Hostile remotes, hand-built from snow and our payload type: bad signatures, wrong peers,
//! garbage handshake messages, corrupted and truncated transport frames. Every case must end
//! in a typed error with the right blame, and none may panic.

use std::io::ErrorKind;

use plexus_core::{Blame, Role, SecurityError, SecurityUpgrade};
use plexus_identity::Keypair;
use plexus_noise::{
    NOISE_PARAMS, NoiseError, NoiseExtensions, NoiseHandshakePayload, static_key_message,
};
use prost::Message;
use snow::{HandshakeState, TransportState};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{PIPE, connect, secp};

/// A remote speaking Noise through snow directly, so that it can lie.
struct Hand {
    io: DuplexStream,
    hs: HandshakeState,
    static_public: [u8; 32],
}

impl Hand {
    fn new(io: DuplexStream, initiator: bool) -> Hand {
        let params = NOISE_PARAMS.parse().unwrap();
        let kp = snow::Builder::new(NOISE_PARAMS.parse().unwrap())
            .generate_keypair()
            .unwrap();
        let b = snow::Builder::new(params)
            .local_private_key(&kp.private)
            .unwrap();
        let hs = if initiator {
            b.build_initiator()
        } else {
            b.build_responder()
        }
        .unwrap();
        Hand {
            io,
            hs,
            static_public: kp.public.try_into().unwrap(),
        }
    }

    async fn send(&mut self, payload: &[u8]) {
        let mut buf = vec![0u8; 65535];
        let n = self.hs.write_message(payload, &mut buf).unwrap();
        self.send_raw_frame(&buf[..n]).await;
    }

    async fn send_raw_frame(&mut self, body: &[u8]) {
        self.io
            .write_all(&(body.len() as u16).to_be_bytes())
            .await
            .unwrap();
        self.io.write_all(body).await.unwrap();
        self.io.flush().await.unwrap();
    }

    async fn recv(&mut self) -> Vec<u8> {
        let mut len = [0u8; 2];
        self.io.read_exact(&mut len).await.unwrap();
        let mut msg = vec![0u8; u16::from_be_bytes(len).into()];
        self.io.read_exact(&mut msg).await.unwrap();
        let mut payload = vec![0u8; msg.len()];
        let n = self.hs.read_message(&msg, &mut payload).unwrap();
        payload.truncate(n);
        payload
    }

    /// A payload for `kp` signing `signed_static` (our real static key for an honest one).
    fn payload(kp: &Keypair, signed_static: &[u8; 32]) -> Vec<u8> {
        NoiseHandshakePayload {
            identity_key: Some(kp.public().encode_protobuf()),
            identity_sig: Some(kp.sign(&static_key_message(signed_static))),
            extensions: Some(NoiseExtensions::default()),
        }
        .encode_to_vec()
    }

    fn honest_payload(&self, kp: &Keypair) -> Vec<u8> {
        Hand::payload(kp, &self.static_public)
    }

    fn into_transport(self) -> (DuplexStream, TransportState) {
        (self.io, self.hs.into_transport_mode().unwrap())
    }
}

fn other_static() -> [u8; 32] {
    let kp = snow::Builder::new(NOISE_PARAMS.parse().unwrap())
        .generate_keypair()
        .unwrap();
    kp.public.try_into().unwrap()
}

/// Our dialer against a hand-built responder that answers message 1 with `msg2_payload`.
async fn dial_hand(msg2_payload: impl FnOnce(&Hand) -> Vec<u8>) -> NoiseError {
    let ours = secp();
    let (a, b) = tokio::io::duplex(PIPE);
    let mut hand = Hand::new(b, false);
    let payload = msg2_payload(&hand);
    let (res, _hand) = tokio::join!(ours.handshake(a, Role::Initiator, None, vec![]), async {
        hand.recv().await;
        hand.send(&payload).await;
        hand
    });
    res.unwrap_err()
}

#[tokio::test]
async fn responder_signing_another_static_key_is_misbehaviour() {
    let kp = Keypair::generate_secp256k1();
    let e = dial_hand(|_| Hand::payload(&kp, &other_static())).await;
    assert!(matches!(e, NoiseError::BadSignature), "{e}");
    assert_eq!(e.blame(), Blame::PeerMisbehaved);
}

#[tokio::test]
async fn initiator_signing_another_static_key_is_misbehaviour() {
    let ours = secp();
    let (a, b) = tokio::io::duplex(PIPE);
    let mut hand = Hand::new(a, true);
    let kp = Keypair::generate_ed25519();
    let (res, ()) = tokio::join!(ours.handshake(b, Role::Responder, None, vec![]), async {
        hand.send(&[]).await;
        hand.recv().await;
        hand.send(&Hand::payload(&kp, &other_static())).await;
    });
    let e = res.unwrap_err();
    assert!(matches!(e, NoiseError::BadSignature), "{e}");
    // Through the seam: Failed, PeerMisbehaved, downcastable source.
    let se = SecurityError::from(e);
    assert_eq!(se.blame(), Blame::PeerMisbehaved);
    let SecurityError::Failed { source, .. } = se else {
        panic!("expected Failed")
    };
    assert!(matches!(
        source.downcast_ref::<NoiseError>(),
        Some(NoiseError::BadSignature)
    ));
}

#[tokio::test]
async fn unsupported_key_type_is_incompatibility() {
    let e = dial_hand(|_| {
        NoiseHandshakePayload {
            // A canonical RSA `PublicKey` protobuf: type 0, three bytes of data.
            identity_key: Some(vec![0x08, 0x00, 0x12, 0x03, 1, 2, 3]),
            identity_sig: Some(vec![0; 64]),
            extensions: None,
        }
        .encode_to_vec()
    })
    .await;
    assert!(matches!(e, NoiseError::UnsupportedKey(_)), "{e}");
    assert_eq!(e.blame(), Blame::PeerIncompatible);
}

type MakePayload<'a> = Box<dyn FnOnce(&Hand) -> Vec<u8> + 'a>;

#[tokio::test]
async fn invalid_or_missing_identity_is_misbehaviour() {
    let kp = Keypair::generate_secp256k1();
    let cases: Vec<(MakePayload, &str)> = vec![
        (Box::new(|_| vec![0xff; 10]), "undecodable payload"),
        (Box::new(|_| Vec::new()), "empty payload"),
        (
            Box::new(|h| {
                let mut p = NoiseHandshakePayload::decode(&h.honest_payload(&kp)[..]).unwrap();
                p.identity_sig = None;
                p.encode_to_vec()
            }),
            "no signature",
        ),
        (
            Box::new(|_| {
                NoiseHandshakePayload {
                    identity_key: Some(vec![0x08, 0x02, 0x12, 0x01, 0x00]),
                    identity_sig: Some(vec![1]),
                    extensions: None,
                }
                .encode_to_vec()
            }),
            "bad key bytes",
        ),
    ];
    let expected: [fn(&NoiseError) -> bool; 4] = [
        |e: &NoiseError| {
            matches!(
                e,
                NoiseError::MalformedPayload(_) | NoiseError::InvalidPayload(_)
            )
        },
        |e: &NoiseError| matches!(e, NoiseError::MissingIdentityKey),
        |e: &NoiseError| matches!(e, NoiseError::MissingSignature),
        |e: &NoiseError| matches!(e, NoiseError::InvalidKey(_)),
    ];
    for ((make, name), check) in cases.into_iter().zip(expected) {
        let e = dial_hand(make).await;
        assert!(check(&e), "{name}: {e}");
        assert_eq!(e.blame(), Blame::PeerMisbehaved, "{name}");
    }
}

#[tokio::test]
async fn honest_hand_built_responder_is_accepted() {
    // The hand-built remote is a correct peer when it does not lie: guards the tests above.
    let our_kp = Keypair::generate_secp256k1();
    let ours = plexus_noise::NoiseConfig::new(our_kp.clone());
    let kp = Keypair::generate_secp256k1();
    let (a, b) = tokio::io::duplex(PIPE);
    let mut hand = Hand::new(b, false);
    let payload = hand.honest_payload(&kp);
    let expect = Some(kp.public().to_peer_id());
    let (res, remote_payload) =
        tokio::join!(ours.handshake(a, Role::Initiator, expect, vec![]), async {
            hand.recv().await;
            hand.send(&payload).await;
            hand.recv().await
        });
    assert_eq!(res.unwrap().peer, kp.public().to_peer_id());
    let p = NoiseHandshakePayload::decode(&remote_payload[..]).unwrap();
    assert_eq!(p.identity_key, Some(our_kp.public().encode_protobuf()));
    assert!(our_kp.public().verify(
        &static_key_message(&ours.static_public_key()),
        p.identity_sig.as_deref().unwrap()
    ));
}

#[tokio::test]
async fn peer_id_mismatch() {
    let (a, b) = (secp(), secp());
    let wrong = Keypair::generate_secp256k1().public().to_peer_id();
    let (i, r) = connect(&a, &b, Some(wrong), vec![], vec![]).await;
    match i.unwrap_err() {
        NoiseError::PeerIdMismatch { expected, actual } => {
            assert_eq!(expected, wrong);
            assert_eq!(actual, b.local_peer_id());
        }
        other => panic!("{other}"),
    }
    // The dialer stopped before message 3.
    assert!(matches!(r.unwrap_err(), NoiseError::Io(e) if e.kind() == ErrorKind::UnexpectedEof));

    // Through the seam trait it is the dedicated SecurityError variant.
    let (x, y) = tokio::io::duplex(PIPE);
    let (sa, _sb) = tokio::join!(
        a.secure(Box::new(x), Role::Initiator, Some(wrong), vec![]),
        b.secure(Box::new(y), Role::Responder, None, vec![]),
    );
    match sa.unwrap_err() {
        SecurityError::PeerIdMismatch { expected, actual } => {
            assert_eq!((expected, actual), (wrong, b.local_peer_id()));
        }
        other => panic!("{other}"),
    }
}

#[tokio::test]
async fn garbage_instead_of_message_2() {
    // Well framed garbage: fails to decrypt.
    let ours = secp();
    let (a, mut b) = tokio::io::duplex(PIPE);
    let (res, _b) = tokio::join!(ours.handshake(a, Role::Initiator, None, vec![]), async {
        let mut msg1 = [0u8; 34];
        b.read_exact(&mut msg1).await.unwrap();
        assert_eq!(&msg1[..2], &[0, 32], "message 1 is one bare ephemeral key");
        let mut garbage = vec![0u8, 200];
        garbage.extend(super::pattern(200, 5));
        b.write_all(&garbage).await.unwrap();
        b
    });
    let e = res.unwrap_err();
    assert!(matches!(e, NoiseError::Decrypt), "{e}");
    assert_eq!(e.blame(), Blame::PeerMisbehaved);

    // Too short to even hold a key: also rejected, not a panic.
    let (a, mut b) = tokio::io::duplex(PIPE);
    let (res, _b) = tokio::join!(ours.handshake(a, Role::Initiator, None, vec![]), async {
        b.read_exact(&mut [0u8; 34]).await.unwrap();
        b.write_all(&[0, 3, 1, 2, 3]).await.unwrap();
        b
    });
    assert_eq!(res.unwrap_err().blame(), Blame::PeerMisbehaved);

    // Garbage whose length prefix promises more than arrives, then EOF: an I/O error.
    let (a, mut b) = tokio::io::duplex(PIPE);
    let (res, ()) = tokio::join!(
        ours.handshake(a, Role::Initiator, None, vec![]),
        async move {
            b.read_exact(&mut [0u8; 34]).await.unwrap();
            b.write_all(&[0xff, 0xff, 1, 2, 3]).await.unwrap();
            drop(b);
        }
    );
    let e = res.unwrap_err();
    assert!(
        matches!(&e, NoiseError::Io(io) if io.kind() == ErrorKind::UnexpectedEof),
        "{e}"
    );
    assert_eq!(e.blame(), Blame::Local);
}

#[tokio::test]
async fn malformed_message_1() {
    let ours = secp();
    for body in [vec![], vec![7u8; 31], vec![7u8; 33], vec![7u8; 100]] {
        let (a, mut b) = tokio::io::duplex(PIPE);
        let len = body.len();
        let (res, _b) = tokio::join!(ours.handshake(a, Role::Responder, None, vec![]), async {
            b.write_all(&(len as u16).to_be_bytes()).await.unwrap();
            b.write_all(&body).await.unwrap();
            b
        });
        let e = res.unwrap_err();
        assert!(
            matches!(e, NoiseError::MalformedMessage { msg: 1, .. }),
            "len {len}: {e}"
        );
        assert_eq!(e.blame(), Blame::PeerMisbehaved);
    }
}

#[tokio::test]
async fn garbage_message_3() {
    let ours = secp();
    let (a, b) = tokio::io::duplex(PIPE);
    let mut hand = Hand::new(a, true);
    let (res, _hand) = tokio::join!(ours.handshake(b, Role::Responder, None, vec![]), async {
        hand.send(&[]).await;
        hand.recv().await;
        hand.send_raw_frame(&super::pattern(120, 8)).await;
        hand
    });
    let e = res.unwrap_err();
    assert!(matches!(e, NoiseError::Decrypt), "{e}");
    assert_eq!(e.blame(), Blame::PeerMisbehaved);
}

/// Our dialer connected to an honest hand-built responder; returns our stream and the
/// remote's raw end with its transport state.
async fn transport_with_hand() -> (
    plexus_noise::NoiseStream<DuplexStream>,
    DuplexStream,
    TransportState,
) {
    let ours = secp();
    let kp = Keypair::generate_secp256k1();
    let (a, b) = tokio::io::duplex(PIPE);
    let mut hand = Hand::new(b, false);
    let payload = hand.honest_payload(&kp);
    let (res, hand) = tokio::join!(ours.handshake(a, Role::Initiator, None, vec![]), async {
        hand.recv().await;
        hand.send(&payload).await;
        hand.recv().await;
        hand
    });
    let (io, ts) = hand.into_transport();
    (res.unwrap().stream, io, ts)
}

fn frame(ts: &mut TransportState, plaintext: &[u8]) -> Vec<u8> {
    let mut buf = vec![0u8; 2 + plaintext.len() + 16];
    let n = ts.write_message(plaintext, &mut buf[2..]).unwrap();
    buf[..2].copy_from_slice(&(n as u16).to_be_bytes());
    buf
}

fn noise_err(e: &std::io::Error) -> &NoiseError {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<NoiseError>())
        .expect("a NoiseError inside")
}

#[tokio::test]
async fn truncated_frame_then_eof() {
    let (mut ours, mut raw, mut ts) = transport_with_hand().await;
    let first = frame(&mut ts, b"delivered");
    let second = frame(&mut ts, b"never complete");
    raw.write_all(&first).await.unwrap();
    raw.write_all(&second[..10]).await.unwrap();
    raw.shutdown().await.unwrap();

    // What arrived whole is not lost.
    let mut buf = [0u8; 64];
    let n = ours.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"delivered");
    let e = ours.read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
    let ne = noise_err(&e);
    assert!(
        matches!(ne, NoiseError::TruncatedFrame { have: 10, need } if *need == second.len()),
        "{ne}"
    );
    assert_eq!(ne.blame(), Blame::Local);
    // The read side stays failed.
    let e = ours.read(&mut buf).await.unwrap_err();
    assert!(matches!(noise_err(&e), NoiseError::Poisoned));
}

#[tokio::test]
async fn eof_inside_the_length_prefix() {
    let (mut ours, mut raw, _ts) = transport_with_hand().await;
    raw.write_all(&[0x00]).await.unwrap();
    raw.shutdown().await.unwrap();
    let e = ours.read(&mut [0u8; 8]).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnexpectedEof);
    assert!(matches!(
        noise_err(&e),
        NoiseError::TruncatedFrame { have: 1, need: 2 }
    ));
}

#[tokio::test]
async fn flipped_ciphertext_bit() {
    let (mut ours, mut raw, mut ts) = transport_with_hand().await;
    let good = frame(&mut ts, b"fine");
    let mut bad = frame(&mut ts, b"tampered with");
    bad[7] ^= 0x20;
    raw.write_all(&good).await.unwrap();
    raw.write_all(&bad).await.unwrap();
    raw.flush().await.unwrap();

    let mut buf = [0u8; 64];
    let n = ours.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"fine");
    let e = ours.read(&mut buf).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidData);
    let ne = noise_err(&e);
    assert!(matches!(ne, NoiseError::Decrypt), "{ne}");
    assert_eq!(ne.blame(), Blame::PeerMisbehaved);
    let e = ours.read(&mut buf).await.unwrap_err();
    assert!(matches!(noise_err(&e), NoiseError::Poisoned));
}

#[tokio::test]
async fn frames_from_the_hand_built_remote_are_read_in_order() {
    // Zero-length frames in between are skipped, not taken for EOF.
    let (mut ours, mut raw, mut ts) = transport_with_hand().await;
    for part in [&b"a"[..], b"", b"", b"bc", b""] {
        raw.write_all(&frame(&mut ts, part)).await.unwrap();
    }
    raw.shutdown().await.unwrap();
    let mut got = Vec::new();
    ours.read_to_end(&mut got).await.unwrap();
    assert_eq!(got, b"abc");
}

#[tokio::test]
async fn frames_split_anywhere_by_the_transport_are_read_exactly() {
    // Small and full-size frames whose wire bytes arrive in pieces of every kind: single
    // bytes, pieces ending inside a length prefix or a tag, pieces of exactly the read probe
    // (16 KiB) and one byte more, and pieces spanning several frames, with the reader
    // waiting in between (so reads start from an empty buffer again and again).
    let (mut ours, mut raw, mut ts) = transport_with_hand().await;
    let sizes = [
        1usize, 200, 65_519, 3, 16_000, 16_384, 65_519, 90, 1, 40_000, 700,
    ];
    let mut plain = Vec::new();
    let mut wire = Vec::new();
    for (i, len) in sizes.iter().enumerate() {
        let part: Vec<u8> = (0..*len).map(|j| (j * 31 + i * 7) as u8).collect();
        wire.extend_from_slice(&frame(&mut ts, &part));
        plain.extend_from_slice(&part);
    }
    let pieces = [
        1usize, 1, 5, 300, 16_384, 16_385, 2, 70_000, 18, 17, 1, 9_000,
    ];
    let reader = async {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 100_000];
        let lens = [7usize, 100_000, 1, 16_384, 333];
        for len in lens.iter().cycle() {
            let n = ours.read(&mut buf[..*len]).await.unwrap();
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        got
    };
    let writer = async {
        let mut off = 0;
        for p in pieces.iter().cycle() {
            if off == wire.len() {
                break;
            }
            let end = (off + p).min(wire.len());
            raw.write_all(&wire[off..end]).await.unwrap();
            off = end;
            tokio::task::yield_now().await;
        }
        raw.shutdown().await.unwrap();
    };
    let (got, ()) = tokio::join!(reader, writer);
    assert_eq!(got.len(), plain.len());
    assert!(got == plain, "plaintext differs");
}
