//! The async glue over in-memory duplex pipes: no sockets, no sleeps.

use std::io;

use bytes::BytesMut;
use plexus_core::Blame;
use plexus_multistream::{
    Config, DecodeError, Message, NegotiationError, dialer_select, dialer_select_lazy,
    listener_select,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, duplex};

fn cfg() -> Config {
    Config::default()
}

fn encode(msgs: &[Message]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for m in msgs {
        m.encode(&mut out);
    }
    out.to_vec()
}

fn proto(p: &str) -> Message {
    Message::Protocol(p.into())
}

/// The typed error inside an io::Error from a `Negotiated` stream.
fn inner(e: &io::Error) -> &NegotiationError {
    e.get_ref()
        .and_then(|e| e.downcast_ref::<NegotiationError>())
        .unwrap_or_else(|| panic!("not a NegotiationError: {e:?}"))
}

/// Reads everything the peer sends until it closes.
async fn read_to_end(io: &mut DuplexStream) -> Vec<u8> {
    let mut v = Vec::new();
    io.read_to_end(&mut v).await.unwrap();
    v
}

#[tokio::test]
async fn select_both_ways_with_data_in_both_directions() {
    let (a, b) = duplex(64);
    let dial = async {
        let (p, mut s) = dialer_select(a, &["/mplex/6.7.0", "/yamux/1.0.0"], &cfg())
            .await
            .unwrap();
        s.write_all(b"ping").await.unwrap();
        s.flush().await.unwrap();
        let mut buf = [0; 4];
        s.read_exact(&mut buf).await.unwrap();
        (p, buf)
    };
    let listen = async {
        let (p, mut s) = listener_select(b, &["/yamux/1.0.0"], &cfg()).await.unwrap();
        let mut buf = [0; 4];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(b"pong").await.unwrap();
        s.flush().await.unwrap();
        (p, buf)
    };
    let ((dp, dbuf), (lp, lbuf)) = tokio::join!(dial, listen);
    assert_eq!(dp, "/yamux/1.0.0");
    assert_eq!(lp, "/yamux/1.0.0");
    assert_eq!(&dbuf, b"pong");
    assert_eq!(&lbuf, b"ping");
}

#[tokio::test]
async fn all_rejected_fails_both_sides_typed() {
    let (a, b) = duplex(64);
    let dial = async {
        let r = dialer_select(a, &["/a", "/b"], &cfg()).await;
        // the dialer gives up and drops (closes) its end
        r.err().unwrap()
    };
    let listen = async { listener_select(b, &["/c"], &cfg()).await };
    let (de, le) = tokio::join!(dial, listen);
    assert!(matches!(de, NegotiationError::ProtocolsExhausted));
    assert_eq!(de.blame(), Blame::PeerIncompatible);
    // EOF before agreement is blamed on nobody
    let le = le.err().unwrap();
    assert!(matches!(le, NegotiationError::UnexpectedEof));
    assert_eq!(le.blame(), Blame::Local);
}

#[tokio::test]
async fn lazy_dialer_sends_negotiation_and_data_in_one_write() {
    let (a, mut b) = duplex(4096);
    let mut s = dialer_select_lazy(a, "/noise", &cfg());
    assert!(!s.is_confirmed());
    s.write_all(b"hello").await.unwrap();
    s.flush().await.unwrap();
    // header, proposal and app data left together, in that order
    let mut wire = vec![0; 64];
    let n = b.read(&mut wire).await.unwrap();
    let mut expected = encode(&[Message::Header, proto("/noise")]);
    expected.extend_from_slice(b"hello");
    assert_eq!(&wire[..n], &expected[..]);
}

#[tokio::test]
async fn lazy_dialer_against_real_listener() {
    let (a, b) = duplex(4096);
    let dial = async {
        let mut s = dialer_select_lazy(a, "/yamux/1.0.0", &cfg());
        s.write_all(b"request").await.unwrap();
        s.flush().await.unwrap();
        let mut buf = [0; 8];
        s.read_exact(&mut buf).await.unwrap();
        assert!(s.is_confirmed());
        buf
    };
    let listen = async {
        let (p, mut s) = listener_select(b, &["/noise", "/yamux/1.0.0"], &cfg())
            .await
            .unwrap();
        let mut buf = [0; 7];
        s.read_exact(&mut buf).await.unwrap();
        s.write_all(b"response").await.unwrap();
        s.flush().await.unwrap();
        (p, buf)
    };
    let (dbuf, (p, lbuf)) = tokio::join!(dial, listen);
    assert_eq!(p, "/yamux/1.0.0");
    assert_eq!(&lbuf, b"request");
    assert_eq!(&dbuf, b"response");
}

#[tokio::test]
async fn lazy_dialer_that_reads_first_sends_its_proposal() {
    let (a, b) = duplex(4096);
    let dial = async {
        let mut s = dialer_select_lazy(a, "/x", &cfg());
        let mut buf = [0; 3];
        s.read_exact(&mut buf).await.unwrap();
        buf
    };
    let listen = async {
        let (_, mut s) = listener_select(b, &["/x"], &cfg()).await.unwrap();
        s.write_all(b"hey").await.unwrap();
        s.flush().await.unwrap();
        s
    };
    let (buf, _s) = tokio::join!(dial, listen);
    assert_eq!(&buf, b"hey");
}

#[tokio::test]
async fn lazy_dialer_facing_na_gets_protocol_rejected() {
    let (a, b) = duplex(4096);
    let dial = async {
        let mut s = dialer_select_lazy(a, "/noise", &cfg());
        s.write_all(b"\x00\x20handshake").await.unwrap();
        s.flush().await.unwrap();
        let mut buf = [0; 1];
        let e = s.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::Unsupported);
        let te = inner(&e);
        assert!(matches!(te, NegotiationError::ProtocolRejected(p) if p == "/noise"));
        assert_eq!(te.blame(), Blame::PeerIncompatible);
        // later writes and reads fail the same way
        let e = s.write(b"more").await.unwrap_err();
        assert!(matches!(inner(&e), NegotiationError::ProtocolRejected(_)));
        let e = s.read(&mut buf).await.unwrap_err();
        assert!(matches!(inner(&e), NegotiationError::ProtocolRejected(_)));
        assert!(!s.is_confirmed());
    };
    // the listener answers na, then sees the pipelined data: a lazy dialer,
    // not a misbehaving one
    let listen = async { listener_select(b, &["/tls/1.0.0"], &cfg()).await };
    let ((), le) = tokio::join!(dial, listen);
    let le = le.err().unwrap();
    assert!(matches!(&le, NegotiationError::ProtocolRejected(p) if p == "/noise"));
    assert_eq!(le.blame(), Blame::PeerIncompatible);
}

#[tokio::test]
async fn lazy_dialer_with_invalid_protocol_fails_on_first_io() {
    let (a, _b) = duplex(64);
    let mut s = dialer_select_lazy(a, "noise", &cfg());
    let e = s.write(b"x").await.unwrap_err();
    assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    assert!(matches!(inner(&e), NegotiationError::InvalidLocalProtocol(p) if p == "noise"));
    assert_eq!(inner(&e).blame(), Blame::Local);
}

#[tokio::test]
async fn lazy_shutdown_flushes_negotiation_first() {
    let (a, mut b) = duplex(4096);
    let mut s = dialer_select_lazy(a, "/x", &cfg());
    s.shutdown().await.unwrap();
    assert_eq!(
        read_to_end(&mut b).await,
        encode(&[Message::Header, proto("/x")])
    );
}

#[tokio::test]
async fn lazy_first_write_is_bounded_and_the_rest_follows() {
    let (a, mut b) = duplex(1 << 16);
    let data: Vec<u8> = (0..20_000u32).map(|i| i as u8).collect();
    let mut s = dialer_select_lazy(a, "/x", &cfg());
    s.write_all(&data).await.unwrap();
    s.shutdown().await.unwrap();
    drop(s);
    let mut expected = encode(&[Message::Header, proto("/x")]);
    expected.extend_from_slice(&data);
    assert_eq!(read_to_end(&mut b).await, expected);
}

#[tokio::test]
async fn listener_passes_pipelined_data_through_and_answers_together() {
    let (mut a, b) = duplex(4096);
    let mut wire = encode(&[Message::Header, proto("/a"), proto("/b")]);
    wire.extend_from_slice(b"app bytes after the proposal");
    a.write_all(&wire).await.unwrap();
    let (p, mut s) = listener_select(b, &["/b"], &cfg()).await.unwrap();
    assert_eq!(p, "/b");
    let mut buf = vec![0; 28];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"app bytes after the proposal");
    // header, na and echo, in one stream of bytes
    let mut answer = vec![0; 64];
    let n = a.read(&mut answer).await.unwrap();
    assert_eq!(
        &answer[..n],
        &encode(&[Message::Header, Message::Na, proto("/b")])[..]
    );
}

#[tokio::test]
async fn dialer_gets_app_data_sent_right_after_the_echo() {
    let (a, mut b) = duplex(4096);
    let mut wire = encode(&[Message::Header, Message::Na, proto("/two")]);
    wire.extend_from_slice(b"early");
    b.write_all(&wire).await.unwrap();
    let (p, mut s) = dialer_select(a, &["/one", "/two"], &cfg()).await.unwrap();
    assert_eq!(p, "/two");
    let mut buf = [0; 5];
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"early");
}

/// Feeds `input` to a listener (then closes) and returns its error.
async fn listener_error(input: &[u8], cfg: &Config) -> NegotiationError {
    let (mut a, b) = duplex(1 << 16);
    a.write_all(input).await.unwrap();
    a.shutdown().await.unwrap();
    listener_select(b, &["/ok"], cfg).await.err().unwrap()
}

#[tokio::test]
async fn hostile_input_gets_typed_errors() {
    let header = encode(&[Message::Header]);
    let with_header = |tail: &[u8]| [&header[..], tail].concat();
    let mut long = vec![0x81, 0x08]; // 1025
    long.extend(std::iter::repeat_n(b'/', 1025));

    let cases: Vec<(Vec<u8>, NegotiationError, Blame)> = vec![
        (
            with_header(&long),
            DecodeError::TooLong { max: 1024 }.into(),
            Blame::PeerMisbehaved,
        ),
        (
            with_header(b"\x04/\xc3\x28\n"),
            DecodeError::NotUtf8.into(),
            Blame::PeerMisbehaved,
        ),
        (
            with_header(b"\x05/abcd"),
            DecodeError::MissingNewline.into(),
            Blame::PeerMisbehaved,
        ),
        (
            b"\x13/multistream/2.0.0\n".to_vec(),
            NegotiationError::UnsupportedVersion("/multistream/2.0.0".into()),
            Blame::PeerIncompatible,
        ),
        (
            b"\x07/noise\n".to_vec(),
            NegotiationError::UnexpectedMessage {
                expected: "",
                got: "protocol id",
            },
            Blame::PeerMisbehaved,
        ),
        (
            vec![0xde, 0xad, 0xbe, 0xef],
            DecodeError::TooLong { max: 1024 }.into(),
            Blame::PeerMisbehaved,
        ),
        (
            with_header(b"\x0a/ok"),
            NegotiationError::UnexpectedEof,
            Blame::Local,
        ),
        (
            header[..5].to_vec(),
            NegotiationError::UnexpectedEof,
            Blame::Local,
        ),
    ];
    for (input, want, blame) in cases {
        let got = listener_error(&input, &cfg()).await;
        assert_eq!(
            std::mem::discriminant(&got),
            std::mem::discriminant(&want),
            "{got:?} != {want:?}"
        );
        match (&got, &want) {
            (NegotiationError::InvalidMessage(g), NegotiationError::InvalidMessage(w)) => {
                assert_eq!(g, w)
            }
            (NegotiationError::UnsupportedVersion(g), NegotiationError::UnsupportedVersion(w)) => {
                assert_eq!(g, w)
            }
            (
                NegotiationError::UnexpectedMessage { got: g, .. },
                NegotiationError::UnexpectedMessage { got: w, .. },
            ) => assert_eq!(g, w),
            _ => {}
        }
        assert_eq!(got.blame(), blame, "{got:?}");
    }
}

#[tokio::test]
async fn endless_na_provoking_proposals_hit_the_limit() {
    let mut input = encode(&[Message::Header]);
    for i in 0..1000 {
        input.extend_from_slice(&encode(&[proto(&format!("/nope/{i}"))]));
    }
    let e = listener_error(&input, &cfg()).await;
    assert!(matches!(e, NegotiationError::TooManyRejections(16)));
    assert_eq!(e.blame(), Blame::PeerMisbehaved);
}

#[tokio::test]
async fn dialer_hostile_answers() {
    // a listener echoing something we did not propose
    let (a, mut b) = duplex(4096);
    b.write_all(&encode(&[Message::Header, proto("/evil")]))
        .await
        .unwrap();
    let e = dialer_select(a, &["/good"], &cfg()).await.err().unwrap();
    assert!(matches!(
        e,
        NegotiationError::UnexpectedMessage {
            got: "protocol id",
            ..
        }
    ));
    assert_eq!(e.blame(), Blame::PeerMisbehaved);

    // a listener that sends an endless length prefix
    let (a, mut b) = duplex(4096);
    b.write_all(&[0xff; 32]).await.unwrap();
    let e = dialer_select(a, &["/good"], &cfg()).await.err().unwrap();
    assert!(matches!(
        e,
        NegotiationError::InvalidMessage(DecodeError::TooLong { max: 1024 })
    ));
}

#[tokio::test]
async fn io_error_is_local() {
    let (a, b) = duplex(64);
    drop(b);
    // writing the header into a closed pipe fails
    let e = dialer_select(a, &["/x"], &cfg()).await.err().unwrap();
    assert!(matches!(e, NegotiationError::Io(_)));
    assert_eq!(e.blame(), Blame::Local);
}

/// A stream that records `reset()`.
struct Resettable(DuplexStream, std::sync::Arc<std::sync::atomic::AtomicBool>);

impl tokio::io::AsyncRead for Resettable {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Resettable {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, data)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

impl plexus_core::MuxedStream for Resettable {
    fn reset(&mut self) {
        self.1.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test]
async fn reset_reaches_the_inner_stream() {
    let (a, _b) = duplex(64);
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut s = dialer_select_lazy(Resettable(a, flag.clone()), "/x", &cfg());
    let boxed: &mut dyn plexus_core::MuxedStream = &mut s;
    boxed.reset();
    assert!(flag.load(std::sync::atomic::Ordering::SeqCst));
}
