//! Fuzz body for `identify_msg`: the identify stream decoder fed arbitrary remote bytes.
//!
//! The first input byte picks a delivery chunk size; the rest is the whole stream up to EOF.
//! Asserts: no panic; the sync decoder, the sans-IO decoder fed in chunks and the async
//! `read_identify` over a chunking in-memory reader agree on the outcome; an accepted message
//! converts to a `PeerInfo` without panicking and re-encodes to bytes that decode to the same
//! message.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use plexus_identify::{
    Decoder, Identify, IdentifyError, Limits, PeerInfo, decode_identify, read_identify,
};
use plexus_identity::{Keypair, PeerId};
use tokio::io::{AsyncRead, ReadBuf};

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("current-thread runtime");
}

/// Hands out at most `chunk` bytes per read.
struct Chunked<'a> {
    data: &'a [u8],
    chunk: usize,
}

impl AsyncRead for Chunked<'_> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let n = self.chunk.min(self.data.len()).min(buf.remaining());
        let (head, rest) = self.data.split_at(n);
        buf.put_slice(head);
        self.data = rest;
        Poll::Ready(Ok(()))
    }
}

fn outcome(r: &Result<Identify, IdentifyError>) -> Result<&Identify, String> {
    r.as_ref().map_err(ToString::to_string)
}

/// Run one input.
pub fn run(data: &[u8]) {
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 64) + 1;
    // Small limits so the fuzzer reaches every cap.
    let limits = Limits {
        max_messages: 4,
        max_message_size: 1024,
        max_total_size: 2048,
        max_listen_addrs: 16,
        max_protocols: 16,
    };

    let whole = decode_identify(data, &limits);

    let mut decoder = Decoder::new(limits);
    let mut buf = BytesMut::new();
    let mut chunked = Ok(());
    for piece in data.chunks(chunk) {
        buf.extend_from_slice(piece);
        chunked = decoder.decode(&mut buf);
        if chunked.is_err() {
            break;
        }
    }
    let chunked = chunked.and_then(|()| decoder.finish(&buf));
    assert_eq!(outcome(&chunked), outcome(&whole));

    let mut reader = Chunked { data, chunk };
    let read = RUNTIME.with(|rt| rt.block_on(read_identify(&mut reader, &limits)));
    assert_eq!(outcome(&read), outcome(&whole));

    if let Ok(msg) = whole {
        let again = decode_identify(
            &msg.encode_delimited(),
            &Limits {
                max_message_size: usize::MAX,
                max_total_size: usize::MAX,
                ..limits
            },
        )
        .expect("re-encoded message decodes");
        assert_eq!(again, msg);
        let peer = fixed_peer();
        if let Ok(info) = PeerInfo::from_message(msg, &peer) {
            assert!(
                info.public_key.is_some(),
                "an ed25519 peer id inlines its key"
            );
            let _ = info.to_message();
        }
    }
}

fn fixed_peer() -> PeerId {
    Keypair::ed25519_from_bytes([7; 32])
        .expect("valid secret")
        .public()
        .to_peer_id()
}
