//! Successful handshakes: identities, both directions, key types, backends, the seam trait.

use plexus_core::{Blame, Role, SecurityUpgrade};
use plexus_identity::Keypair;
use plexus_noise::{CryptoBackend, NoiseConfig, NoiseError, PROTOCOL_ID};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{connect, ed, secp, strings};

/// Both sides learn the other's identity; one message goes each way.
async fn handshake_and_ping(dialer_key: Keypair, listener_key: Keypair) {
    let dialer = NoiseConfig::new(dialer_key.clone());
    let listener = NoiseConfig::new(listener_key.clone());
    let expect = Some(listener_key.public().to_peer_id());
    let (i, r) = connect(&dialer, &listener, expect, vec![], vec![]).await;
    let (mut i, mut r) = (i.unwrap(), r.unwrap());
    assert_eq!(i.peer, listener_key.public().to_peer_id());
    assert_eq!(i.public_key, listener_key.public());
    assert_eq!(r.peer, dialer_key.public().to_peer_id());
    assert_eq!(r.public_key, dialer_key.public());
    assert_eq!(
        (i.early_muxer.as_deref(), r.early_muxer.as_deref()),
        (None, None)
    );
    // The framers learned each other's static keys.
    assert_eq!(
        i.stream.framer().remote_static(),
        Some(&listener.static_public_key()[..])
    );
    assert_eq!(
        r.stream.framer().remote_static(),
        Some(&dialer.static_public_key()[..])
    );

    i.stream.write_all(b"ping").await.unwrap();
    i.stream.flush().await.unwrap();
    let mut buf = [0u8; 4];
    r.stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"ping");
    r.stream.write_all(b"pong").await.unwrap();
    r.stream.flush().await.unwrap();
    i.stream.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"pong");
}

#[tokio::test]
async fn secp256k1_to_secp256k1() {
    handshake_and_ping(Keypair::generate_secp256k1(), Keypair::generate_secp256k1()).await;
}

#[tokio::test]
async fn ed25519_dials_secp256k1() {
    handshake_and_ping(Keypair::generate_ed25519(), Keypair::generate_secp256k1()).await;
}

#[tokio::test]
async fn secp256k1_dials_ed25519() {
    handshake_and_ping(Keypair::generate_secp256k1(), Keypair::generate_ed25519()).await;
}

#[tokio::test]
async fn responder_accepts_without_expected_peer() {
    let (a, b) = (secp(), secp());
    let (i, r) = connect(&a, &b, None, vec![], vec![]).await;
    assert_eq!(i.unwrap().peer, b.local_peer_id());
    assert_eq!(r.unwrap().peer, a.local_peer_id());
}

#[tokio::test]
async fn static_key_lives_as_long_as_the_config() {
    let (a, b) = (secp(), secp());
    let (_, r1) = connect(&a, &b, None, vec![], vec![]).await;
    let (_, r2) = connect(&a.clone(), &b, None, vec![], vec![]).await;
    let k1 = r1
        .unwrap()
        .stream
        .framer()
        .remote_static()
        .unwrap()
        .to_vec();
    let k2 = r2
        .unwrap()
        .stream
        .framer()
        .remote_static()
        .unwrap()
        .to_vec();
    assert_eq!(k1, k2, "clones share the static key");
    assert_eq!(k1, a.static_public_key());
    let fresh = NoiseConfig::new(Keypair::generate_secp256k1());
    assert_ne!(fresh.static_public_key(), a.static_public_key());
}

#[tokio::test]
async fn backends_interoperate() {
    for (x, y) in [
        (CryptoBackend::Accelerated, CryptoBackend::RustCrypto),
        (CryptoBackend::RustCrypto, CryptoBackend::Accelerated),
        (CryptoBackend::RustCrypto, CryptoBackend::RustCrypto),
    ] {
        let a = secp().with_backend(x);
        let b = ed().with_backend(y);
        assert_eq!(a.backend(), x);
        let (i, r) = connect(&a, &b, Some(b.local_peer_id()), vec![], vec![]).await;
        let (mut i, mut r) = (i.unwrap(), r.unwrap());
        let data = super::pattern(200_000, 3);
        let (w, got) = tokio::join!(
            async {
                i.stream.write_all(&data).await.unwrap();
                i.stream.shutdown().await.unwrap();
            },
            async {
                let mut got = Vec::new();
                r.stream.read_to_end(&mut got).await.unwrap();
                got
            }
        );
        let () = w;
        assert_eq!(got, data, "{x:?} -> {y:?}");
    }
}

#[tokio::test]
async fn default_backend_is_accelerated() {
    assert_eq!(CryptoBackend::default(), CryptoBackend::Accelerated);
    assert_eq!(secp().backend(), CryptoBackend::Accelerated);
}

#[tokio::test]
async fn matching_prologue_works_and_a_mismatch_fails() {
    let a = secp().with_prologue(b"plexus".to_vec());
    let b = secp().with_prologue(b"plexus".to_vec());
    let (i, r) = connect(&a, &b, None, vec![], vec![]).await;
    assert!(i.is_ok() && r.is_ok());

    let c = secp().with_prologue(b"other".to_vec());
    let (i, r) = connect(&a, &c, None, vec![], vec![]).await;
    let ie = i.unwrap_err();
    assert!(matches!(ie, NoiseError::Decrypt), "{ie}");
    assert_eq!(ie.blame(), Blame::PeerMisbehaved);
    // The initiator gave up before message 3: the responder saw the stream end.
    let re = r.unwrap_err();
    match &re {
        NoiseError::Io(e) => assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof),
        other => panic!("{other}"),
    }
    assert_eq!(re.blame(), Blame::Local);
}

#[tokio::test]
async fn security_upgrade_trait_object() {
    let a = secp();
    let b = ed();
    let up: &dyn SecurityUpgrade = &a;
    assert_eq!(up.protocol(), PROTOCOL_ID);
    assert_eq!(PROTOCOL_ID, "/noise");
    let (x, y) = tokio::io::duplex(super::PIPE);
    let m = strings(&["/yamux/1.0.0"]);
    let (sa, sb) = tokio::join!(
        up.secure(
            Box::new(x),
            Role::Initiator,
            Some(b.local_peer_id()),
            m.clone()
        ),
        b.secure(Box::new(y), Role::Responder, None, m),
    );
    let (mut sa, mut sb) = (sa.unwrap(), sb.unwrap());
    assert_eq!(sa.peer, b.local_peer_id());
    assert_eq!(sb.peer, a.local_peer_id());
    assert_eq!(sa.public_key.to_peer_id(), sa.peer);
    assert_eq!(sa.early_muxer.as_deref(), Some("/yamux/1.0.0"));
    assert_eq!(sb.early_muxer.as_deref(), Some("/yamux/1.0.0"));
    sa.io.write_all(b"through the box").await.unwrap();
    sa.io.flush().await.unwrap();
    let mut buf = [0u8; 15];
    sb.io.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"through the box");
}

#[test]
fn sans_io_core_message_shapes() {
    use bytes::BytesMut;
    use plexus_noise::{NoiseHandshake, read_frame};

    let a = secp();
    let b = ed();
    let m = strings(&["/yamux/1.0.0"]);
    let mut i =
        NoiseHandshake::new(&a, Role::Initiator, Some(b.local_peer_id()), m.clone()).unwrap();
    let mut r = NoiseHandshake::new(&b, Role::Responder, None, m).unwrap();
    assert!(i.wants_write() && !i.wants_read());
    assert!(r.wants_read() && !r.wants_write());

    let mut wire = BytesMut::new();
    // Message 1: the bare 32-byte ephemeral key, framed: `00 20 ‖ e`.
    i.write_message(&mut wire).unwrap();
    assert_eq!(wire.len(), 34);
    assert_eq!(&wire[..2], &[0x00, 0x20]);
    let msg1 = read_frame(&mut wire).unwrap();
    r.read_message(&msg1).unwrap();
    assert!(r.remote().is_none());

    // Message 2: e (32) ‖ encrypted s (48) ‖ encrypted payload (+16).
    r.write_message(&mut wire).unwrap();
    let msg2 = read_frame(&mut wire).unwrap();
    assert!(msg2.len() > 32 + 48 + 16);
    i.read_message(&msg2).unwrap();
    assert_eq!(
        i.remote().unwrap().peer,
        b.local_peer_id(),
        "verified right after message 2"
    );

    // Message 3: encrypted s (48) ‖ encrypted payload (+16).
    i.write_message(&mut wire).unwrap();
    let msg3 = read_frame(&mut wire).unwrap();
    assert!(msg3.len() > 48 + 16);
    r.read_message(&msg3).unwrap();
    assert!(i.is_finished() && r.is_finished());
    assert!(!i.wants_write() && !i.wants_read());

    let mut i = i.finish().unwrap();
    let mut r = r.finish().unwrap();
    assert_eq!(r.remote.peer, a.local_peer_id());
    assert_eq!(i.early_muxer.as_deref(), Some("/yamux/1.0.0"));
    assert_eq!(r.early_muxer.as_deref(), Some("/yamux/1.0.0"));
    let mut out = BytesMut::new();
    i.framer.encrypt(b"split keys agree", &mut wire).unwrap();
    assert_eq!(
        r.framer.decrypt_next(&mut wire, &mut out).unwrap(),
        Some(16)
    );
    assert_eq!(&out[..], b"split keys agree");
    r.framer.encrypt(b"both ways", &mut wire).unwrap();
    out.clear();
    assert_eq!(i.framer.decrypt_next(&mut wire, &mut out).unwrap(), Some(9));
}

#[test]
fn a_failed_handshake_stays_failed() {
    use plexus_noise::NoiseHandshake;
    let mut r = NoiseHandshake::new(&secp(), Role::Responder, None, vec![]).unwrap();
    assert!(matches!(
        r.read_message(&[1, 2, 3]),
        Err(NoiseError::MalformedMessage { msg: 1, .. })
    ));
    assert!(!r.wants_read() && !r.wants_write() && !r.is_finished());
    assert!(matches!(
        r.read_message(&[0; 32]),
        Err(NoiseError::Poisoned)
    ));
    assert!(matches!(r.finish(), Err(NoiseError::Poisoned)));
}
