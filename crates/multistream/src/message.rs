//! The multistream-select 1.0 message codec (sans-IO).
//!
//! Every message is `uvarint(len(body) + 1) ‖ body ‖ '\n'`; the length counts
//! the trailing newline. An `ls` response's body is a sequence of such
//! messages, one per protocol id, so the whole response ends in `\n\n`.

use bytes::{Buf, BufMut, BytesMut};

use crate::Config;

/// The multistream-select 1.0 header, the first message of every negotiation.
pub const HEADER: &str = "/multistream/1.0.0";

/// The longest multiformats unsigned varint: 9 bytes (63 bits).
const MAX_UVARINT_LEN: usize = 9;

/// One multistream-select message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// `/multistream/1.0.0`. A [`Message::Protocol`] with this id encodes the
    /// same bytes and decodes as `Header`.
    Header,
    /// A protocol id: a proposal (dialer) or its echo (listener). It starts
    /// with `/` and contains no `\n`.
    Protocol(String),
    /// `na`: the proposed protocol is not available.
    Na,
    /// `ls`: a request for the listener's protocols.
    Ls,
    /// The answer to `ls`: the listener's protocol ids.
    LsResponse(Vec<String>),
}

/// Why remote bytes are not a valid message. Every case is the peer's fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The length prefix exceeds [`Config::max_message_len`].
    #[error("message longer than {max} bytes")]
    TooLong {
        /// The limit that was exceeded.
        max: usize,
    },
    /// The length prefix is zero.
    #[error("empty message")]
    Empty,
    /// The message does not end in `\n`.
    #[error("message does not end in a newline")]
    MissingNewline,
    /// The message is not valid UTF-8.
    #[error("message is not valid UTF-8")]
    NotUtf8,
    /// The length prefix is not a minimal unsigned varint of at most 9 bytes.
    #[error("invalid length prefix (overlong or non-minimal varint)")]
    InvalidVarint,
    /// A protocol id that does not start with `/` or contains `\n`.
    #[error("invalid protocol id")]
    InvalidProtocolId,
    /// An `ls` response whose embedded entries are not well-formed messages.
    #[error("malformed ls response")]
    InvalidLsResponse,
    /// An `ls` response listing more than [`Config::max_ls_protocols`] ids.
    #[error("ls response lists more than {max} protocols")]
    TooManyProtocols {
        /// The limit that was exceeded.
        max: usize,
    },
}

impl Message {
    /// Appends the wire encoding of this message to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        match self {
            Message::Header => put_line(out, HEADER),
            Message::Protocol(p) => put_line(out, p),
            Message::Na => put_line(out, "na"),
            Message::Ls => put_line(out, "ls"),
            Message::LsResponse(list) => put_ls_response(out, list),
        }
    }

    /// The length of [`Message::encode`]'s output.
    pub fn encoded_len(&self) -> usize {
        match self {
            Message::Header => line_len(HEADER.len()),
            Message::Protocol(p) => line_len(p.len()),
            Message::Na | Message::Ls => line_len(2),
            Message::LsResponse(list) => line_len(ls_body_len(list)),
        }
    }

    /// Decodes one message from the front of `buf`.
    ///
    /// Returns `Ok(None)` if `buf` does not yet hold a whole message, and
    /// consumes exactly the bytes of the message it returns, never more. On
    /// `Ok(None)` and on error `buf` is left untouched. A length prefix above
    /// the limit is rejected as soon as its first bytes arrive.
    pub fn decode(buf: &mut BytesMut, cfg: &Config) -> Result<Option<Message>, DecodeError> {
        let Some((len, prefix)) = decode_len(buf, cfg.max_message_len)? else {
            return Ok(None);
        };
        if len == 0 {
            return Err(DecodeError::Empty);
        }
        let Some(frame) = buf.get(prefix..prefix + len) else {
            return Ok(None);
        };
        let msg = parse(frame, cfg)?;
        buf.advance(prefix + len);
        Ok(Some(msg))
    }

    /// A short name of this message's kind, for errors and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Header => "header",
            Message::Protocol(_) => "protocol id",
            Message::Na => "na",
            Message::Ls => "ls",
            Message::LsResponse(_) => "ls response",
        }
    }
}

/// Checks the protocol id rule: starts with `/`, contains no `\n`.
pub(crate) fn valid_protocol_id(s: &str) -> bool {
    s.starts_with('/') && !s.contains('\n')
}

/// Parses one frame (the bytes after the length prefix).
fn parse(frame: &[u8], cfg: &Config) -> Result<Message, DecodeError> {
    let Some((b'\n', body)) = frame.split_last() else {
        return Err(DecodeError::MissingNewline);
    };
    // A protocol id has no `\n`, so a body that is empty or ends in one can
    // only be an `ls` response (its entries each end in `\n`).
    if body.last().is_none_or(|&b| b == b'\n') {
        return parse_ls(body, cfg);
    }
    let s = std::str::from_utf8(body).map_err(|_| DecodeError::NotUtf8)?;
    Ok(match s {
        HEADER => Message::Header,
        "na" => Message::Na,
        "ls" => Message::Ls,
        _ if valid_protocol_id(s) => Message::Protocol(s.to_owned()),
        _ => return Err(DecodeError::InvalidProtocolId),
    })
}

fn parse_ls(mut body: &[u8], cfg: &Config) -> Result<Message, DecodeError> {
    let mut list = Vec::new();
    while !body.is_empty() {
        if list.len() == cfg.max_ls_protocols {
            return Err(DecodeError::TooManyProtocols {
                max: cfg.max_ls_protocols,
            });
        }
        let (len, prefix) = match decode_len(body, body.len()) {
            Ok(Some((len, prefix))) if len > 0 => (len, prefix),
            _ => return Err(DecodeError::InvalidLsResponse),
        };
        let entry = body
            .get(prefix..prefix + len)
            .ok_or(DecodeError::InvalidLsResponse)?;
        let Some((b'\n', id)) = entry.split_last() else {
            return Err(DecodeError::InvalidLsResponse);
        };
        let id = std::str::from_utf8(id).map_err(|_| DecodeError::NotUtf8)?;
        if !valid_protocol_id(id) {
            return Err(DecodeError::InvalidProtocolId);
        }
        list.push(id.to_owned());
        body = &body[prefix + len..];
    }
    Ok(Message::LsResponse(list))
}

/// Decodes a minimal uvarint length prefix that must not exceed `max`.
/// Returns `(value, prefix length)`, or `None` if more bytes are needed.
fn decode_len(buf: &[u8], max: usize) -> Result<Option<(usize, usize)>, DecodeError> {
    let max = max as u64;
    let mut value = 0u64;
    for (i, &b) in buf.iter().enumerate().take(MAX_UVARINT_LEN) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            if b == 0 && i > 0 {
                return Err(DecodeError::InvalidVarint);
            }
            if value > max {
                return Err(DecodeError::TooLong { max: max as usize });
            }
            return Ok(Some((value as usize, i + 1)));
        }
        // Another byte follows; being minimal, it adds at least 2^(7(i+1)).
        if value + (1u64 << (7 * (i + 1))) > max {
            return Err(DecodeError::TooLong { max: max as usize });
        }
    }
    if buf.len() >= MAX_UVARINT_LEN {
        return Err(DecodeError::InvalidVarint);
    }
    Ok(None)
}

fn uvarint_len(n: usize) -> usize {
    let bits = usize::BITS - (n | 1).leading_zeros();
    bits.div_ceil(7) as usize
}

fn put_uvarint(out: &mut BytesMut, n: usize) {
    let mut buf = unsigned_varint::encode::usize_buffer();
    out.extend_from_slice(unsigned_varint::encode::usize(n, &mut buf));
}

/// Length of a line message with a body of `n` bytes.
fn line_len(n: usize) -> usize {
    uvarint_len(n + 1) + n + 1
}

/// Appends `uvarint(len + 1) ‖ s ‖ '\n'`.
pub(crate) fn put_line(out: &mut BytesMut, s: &str) {
    out.reserve(line_len(s.len()));
    put_uvarint(out, s.len() + 1);
    out.extend_from_slice(s.as_bytes());
    out.put_u8(b'\n');
}

fn ls_body_len<S: AsRef<str>>(list: &[S]) -> usize {
    list.iter().map(|p| line_len(p.as_ref().len())).sum()
}

/// Appends an `ls` response listing `list`.
pub(crate) fn put_ls_response<S: AsRef<str>>(out: &mut BytesMut, list: &[S]) {
    let body = ls_body_len(list);
    out.reserve(line_len(body));
    put_uvarint(out, body + 1);
    for p in list {
        put_line(out, p.as_ref());
    }
    out.put_u8(b'\n');
}

/// How many of `list`'s first entries fit in one `ls` response within the
/// limits of `cfg`.
pub(crate) fn ls_fitting<S: AsRef<str>>(list: &[S], cfg: &Config) -> usize {
    let mut len = 1; // the final '\n'
    list.iter()
        .take(cfg.max_ls_protocols)
        .take_while(|p| {
            len += line_len(p.as_ref().len());
            len <= cfg.max_message_len
        })
        .count()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn enc(m: &Message) -> Vec<u8> {
        let mut out = BytesMut::new();
        m.encode(&mut out);
        assert_eq!(out.len(), m.encoded_len());
        out.to_vec()
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn dec(bytes: &[u8]) -> (Result<Option<Message>, DecodeError>, usize) {
        let mut buf = BytesMut::from(bytes);
        let r = Message::decode(&mut buf, &Config::default());
        (r, bytes.len() - buf.len())
    }

    fn proto(s: &str) -> Message {
        Message::Protocol(s.into())
    }

    #[test]
    fn known_encodings_match_the_spec_table() {
        let cases = [
            (Message::Na, "03 6e61 0a"),
            (Message::Ls, "03 6c73 0a"),
            (
                Message::Header,
                "13 2f6d756c746973747265616d2f312e302e30 0a",
            ),
            (proto("/noise"), "07 2f6e6f697365 0a"),
            (proto("/yamux/1.0.0"), "0d 2f79616d75782f312e302e30 0a"),
            (proto("/mplex/6.7.0"), "0d 2f6d706c65782f362e372e30 0a"),
            (
                proto("/meshsub/1.1.0"),
                "0f 2f6d6573687375622f312e312e30 0a",
            ),
        ];
        for (msg, wire) in cases {
            let wire = hex(wire);
            assert_eq!(enc(&msg), wire, "{msg:?}");
            assert_eq!(dec(&wire), (Ok(Some(msg)), wire.len()));
        }
    }

    #[test]
    fn ls_response_wire_format() {
        let msg = Message::LsResponse(vec!["/noise".into(), "/yamux/1.0.0".into()]);
        // 8 + 14 entry bytes + final newline = 23 = 0x17
        let wire = hex("17 07 2f6e6f697365 0a 0d 2f79616d75782f312e302e30 0a 0a");
        assert_eq!(enc(&msg), wire);
        assert_eq!(dec(&wire), (Ok(Some(msg)), wire.len()));
        assert!(wire.ends_with(b"\n\n"));
        // an empty list is a lone newline
        assert_eq!(enc(&Message::LsResponse(vec![])), hex("01 0a"));
    }

    #[test]
    fn decode_waits_for_a_whole_message_and_stops_after_it() {
        let mut wire = enc(&Message::Header);
        wire.extend_from_slice(&enc(&proto("/noise")));
        wire.extend_from_slice(b"app data");
        for cut in 0..enc(&Message::Header).len() {
            assert_eq!(dec(&wire[..cut]), (Ok(None), 0), "cut {cut}");
        }
        let mut buf = BytesMut::from(&wire[..]);
        let cfg = Config::default();
        assert_eq!(Message::decode(&mut buf, &cfg), Ok(Some(Message::Header)));
        assert_eq!(Message::decode(&mut buf, &cfg), Ok(Some(proto("/noise"))));
        assert_eq!(&buf[..], b"app data");
    }

    #[test]
    fn rejects_over_long_prefix_before_the_body_arrives() {
        // 1025 = 0x81 0x08: rejected from the two prefix bytes alone
        assert_eq!(
            dec(&[0x81, 0x08]).0,
            Err(DecodeError::TooLong { max: 1024 })
        );
        // 1024 is allowed (go-multistream's limit is inclusive)
        assert_eq!(dec(&[0x80, 0x08]), (Ok(None), 0));
        // an endless varint is rejected after the second byte
        assert_eq!(
            dec(&[0xff, 0xff]).0,
            Err(DecodeError::TooLong { max: 1024 })
        );
        let mut body = vec![b'/'; 1024];
        body.push(b'\n');
        let mut wire = vec![0x81, 0x08];
        wire.extend_from_slice(&body);
        assert_eq!(dec(&wire).0, Err(DecodeError::TooLong { max: 1024 }));
    }

    #[test]
    fn rejects_malformed_messages() {
        let cases: [(&[u8], DecodeError); 8] = [
            (&[0x00], DecodeError::Empty),
            (b"\x02na", DecodeError::MissingNewline),
            (b"\x03/a\x00", DecodeError::MissingNewline),
            (b"\x04/\xff\xfe\n", DecodeError::NotUtf8),
            (b"\x83\x00na\n", DecodeError::InvalidVarint),
            (b"\x04noi\n", DecodeError::InvalidProtocolId),
            (b"\x05/a\nb\n", DecodeError::InvalidProtocolId),
            (b"\x05\x05ab\n\n", DecodeError::InvalidLsResponse),
        ];
        for (wire, err) in cases {
            assert_eq!(dec(wire), (Err(err), 0), "{wire:?}");
        }
        // entries of an ls response are checked too
        assert_eq!(
            dec(b"\x05\x03ab\n\n").0,
            Err(DecodeError::InvalidProtocolId)
        );
        assert_eq!(dec(b"\x05\x03/\xff\n\n").0, Err(DecodeError::NotUtf8));
        assert_eq!(
            dec(b"\x04\x00\n\n\n").0,
            Err(DecodeError::InvalidLsResponse)
        );
    }

    #[test]
    fn rejects_ls_response_over_entry_limit() {
        let cfg = Config {
            max_ls_protocols: 2,
            ..Config::default()
        };
        let mut two = BytesMut::new();
        put_ls_response(&mut two, &["/a", "/b"]);
        assert!(Message::decode(&mut two, &cfg).unwrap().is_some());
        let mut three = BytesMut::new();
        put_ls_response(&mut three, &["/a", "/b", "/c"]);
        assert_eq!(
            Message::decode(&mut three, &cfg),
            Err(DecodeError::TooManyProtocols { max: 2 })
        );
    }

    #[test]
    fn ls_fitting_respects_both_limits() {
        let cfg = Config::default();
        let long = format!("/{}", "x".repeat(500));
        // 1 + 2 * (2 + 502) = 1009 fits, a third does not
        assert_eq!(ls_fitting(&[&long, &long, &long], &cfg), 2);
        let many = vec!["/p"; 1000];
        assert_eq!(ls_fitting(&many, &cfg), cfg.max_ls_protocols);
    }

    fn protocol_id() -> impl Strategy<Value = String> {
        "/[^\n]{0,60}".prop_filter("not the header", |s| s != HEADER)
    }

    fn message() -> impl Strategy<Value = Message> {
        prop_oneof![
            Just(Message::Header),
            Just(Message::Na),
            Just(Message::Ls),
            protocol_id().prop_map(Message::Protocol),
            proptest::collection::vec(protocol_id(), 0..12).prop_map(Message::LsResponse),
        ]
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(msg in message(), tail in proptest::collection::vec(any::<u8>(), 0..8)) {
            let mut wire = enc(&msg);
            let n = wire.len();
            wire.extend_from_slice(&tail);
            prop_assert_eq!(dec(&wire), (Ok(Some(msg)), n));
        }

        #[test]
        fn decoding_arbitrary_bytes_consumes_only_what_it_returns(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            prefix in proptest::collection::vec(any::<u8>(), 0..3),
        ) {
            // also try with a plausible length prefix in front
            for input in [bytes.clone(), [prefix, bytes].concat()] {
                let (r, used) = dec(&input);
                match r {
                    Ok(Some(msg)) => prop_assert_eq!(enc(&msg), &input[..used]),
                    Ok(None) | Err(_) => prop_assert_eq!(used, 0),
                }
            }
        }
    }
}
