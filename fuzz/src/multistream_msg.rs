//! Fuzz body for `multistream_msg`: the multistream-select message decoder and
//! the sans-IO listener and dialer fed arbitrary remote bytes.
//!
//! The first input byte picks a delivery chunk size; the rest is the remote's
//! bytes. Asserts: no panic; the decoder consumes nothing unless it returns a
//! message, and then exactly that message's encoding; the machines never
//! consume more than they were given, never read past agreement, and only
//! agree on a protocol they know.

use bytes::BytesMut;
use plexus_multistream::{Config, DialerSelect, ListenerSelect, Message, Progress};

const PROTOCOLS: &[&str] = &["/noise", "/yamux/1.0.0"];

/// Run one input.
pub fn run(data: &[u8]) {
    let Some((&first, data)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(first % 32) + 1;
    let cfg = Config {
        max_ls_protocols: 8,
        ..Config::default()
    };
    decode_all(data, &cfg);

    let mut listener = ListenerSelect::new(PROTOCOLS, &cfg).expect("valid protocols");
    feed(data, chunk, &cfg, |input| listener.handle_input(input));
    let mut dialer = DialerSelect::new(PROTOCOLS, &cfg).expect("valid protocols");
    feed(data, chunk, &cfg, |input| dialer.handle_input(input));
}

fn decode_all(data: &[u8], cfg: &Config) {
    let mut buf = BytesMut::from(data);
    let mut offset = 0;
    loop {
        let before = buf.len();
        match Message::decode(&mut buf, cfg) {
            Ok(Some(msg)) => {
                let used = before - buf.len();
                let mut again = BytesMut::new();
                msg.encode(&mut again);
                assert_eq!(&again[..], &data[offset..offset + used]);
                offset += used;
            }
            Ok(None) | Err(_) => {
                assert_eq!(buf.len(), before, "consumed without returning a message");
                return;
            }
        }
    }
}

fn feed(
    data: &[u8],
    chunk: usize,
    cfg: &Config,
    mut handle: impl FnMut(&mut BytesMut) -> Result<Progress, plexus_multistream::NegotiationError>,
) {
    let mut input = BytesMut::new();
    let mut fed = 0;
    for piece in data.chunks(chunk) {
        input.extend_from_slice(piece);
        fed += piece.len();
        let before = input.len();
        let res = handle(&mut input);
        assert!(input.len() <= before);
        match res {
            Ok(Progress::NeedInput) => {
                // less than one whole message is ever left waiting
                assert!(input.len() < cfg.max_message_len + 9);
            }
            Ok(Progress::Agreed(p)) => {
                assert!(PROTOCOLS.contains(&p.as_str()));
                // what is left is exactly the unread tail of what was fed
                assert_eq!(&input[..], &data[fed - input.len()..fed]);
                return;
            }
            Err(_) => return,
        }
    }
}
