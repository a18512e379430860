//! Sans-IO dialer and listener state machines.
//!
//! Drive one by alternating: send [`DialerSelect::transmit`] (then
//! [`DialerSelect::advance_transmit`] by what was written), and feed received
//! bytes to [`DialerSelect::handle_input`]. Input is consumed one whole
//! message at a time and never past the agreed protocol: whatever remains in
//! the buffer after [`Progress::Agreed`] is application data. After an error
//! the machine keeps returning (a copy of) that error.

use bytes::{Buf, BytesMut};

use crate::message::{ls_fitting, put_line, put_ls_response, valid_protocol_id};
use crate::{Config, DecodeError, HEADER, Message, NegotiationError};

/// Where a negotiation stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Waiting for more input (after sending [`DialerSelect::transmit`]).
    NeedInput,
    /// Both sides agreed on this protocol.
    Agreed(String),
}

#[derive(Debug)]
enum State {
    Negotiating,
    Agreed(String),
    Failed(NegotiationError),
}

/// The initiator: proposes protocols in order until one is echoed.
///
/// The header and the first proposal are queued together at construction.
/// On `na` the next protocol is proposed; when none is left the negotiation
/// fails with [`NegotiationError::ProtocolsExhausted`].
#[derive(Debug)]
pub struct DialerSelect {
    state: State,
    cfg: Config,
    protocols: Vec<String>,
    current: usize,
    got_header: bool,
    out: BytesMut,
}

/// The responder: echoes a supported proposal, answers `na` to others and
/// `ls` with its list.
///
/// Bytes that are not a valid message right after an `na` are taken for the
/// application data of a lazy dialer: the negotiation fails with
/// [`NegotiationError::ProtocolRejected`] (`PeerIncompatible`), not as
/// misbehaviour.
///
/// Its header is queued at construction; a driver that has already received
/// the dialer's pipelined proposal sends the header and the answer together.
#[derive(Debug)]
pub struct ListenerSelect {
    state: State,
    cfg: Config,
    supported: Vec<String>,
    rejections: usize,
    /// The proposal we just answered with `na`, until the next message.
    last_rejected: Option<String>,
    got_header: bool,
    out: BytesMut,
}

fn check_local(protocols: &[&str], cfg: &Config) -> Result<Vec<String>, NegotiationError> {
    protocols
        .iter()
        .map(|&p| {
            if valid_protocol_id(p) && p != HEADER && p.len() < cfg.max_message_len {
                Ok(p.to_owned())
            } else {
                Err(NegotiationError::InvalidLocalProtocol(p.to_owned()))
            }
        })
        .collect()
}

fn expect_header(msg: Message) -> Result<(), NegotiationError> {
    match msg {
        Message::Header => Ok(()),
        Message::Protocol(p) if p.starts_with("/multistream/") => {
            Err(NegotiationError::UnsupportedVersion(p))
        }
        other => Err(NegotiationError::UnexpectedMessage {
            expected: "multistream header",
            got: other.kind(),
        }),
    }
}

/// Decodes and handles messages until agreement, an error or lack of input.
fn step(
    state: &mut State,
    input: &mut BytesMut,
    cfg: &Config,
    mut on_message: impl FnMut(Result<Message, DecodeError>) -> Result<Option<String>, NegotiationError>,
) -> Result<Progress, NegotiationError> {
    loop {
        match state {
            State::Negotiating => {}
            State::Agreed(p) => return Ok(Progress::Agreed(p.clone())),
            State::Failed(e) => return Err(e.duplicate()),
        }
        let res = match Message::decode(input, cfg) {
            Ok(None) => return Ok(Progress::NeedInput),
            Ok(Some(msg)) => on_message(Ok(msg)),
            Err(e) => on_message(Err(e)),
        };
        match res {
            Ok(None) => {}
            Ok(Some(p)) => *state = State::Agreed(p),
            Err(e) => {
                tracing::debug!(error = %e, "multistream negotiation failed");
                *state = State::Failed(e.duplicate());
                return Err(e);
            }
        }
    }
}

impl DialerSelect {
    /// A dialer proposing `protocols` in order of preference. Fails if the
    /// list is empty or holds an invalid id.
    pub fn new(protocols: &[&str], cfg: &Config) -> Result<Self, NegotiationError> {
        let protocols = check_local(protocols, cfg)?;
        let Some(first) = protocols.first() else {
            return Err(NegotiationError::NoProtocols);
        };
        let mut out = BytesMut::new();
        Message::Header.encode(&mut out);
        put_line(&mut out, first);
        Ok(DialerSelect {
            state: State::Negotiating,
            cfg: cfg.clone(),
            protocols,
            current: 0,
            got_header: false,
            out,
        })
    }

    /// Bytes to send now (empty if none).
    pub fn transmit(&self) -> &[u8] {
        &self.out
    }

    /// Marks the first `n` bytes of [`DialerSelect::transmit`] as sent.
    pub fn advance_transmit(&mut self, n: usize) {
        self.out.advance(n.min(self.out.len()));
    }

    /// Consumes whole messages from the front of `input` (see the module docs).
    pub fn handle_input(&mut self, input: &mut BytesMut) -> Result<Progress, NegotiationError> {
        let (protocols, current, got_header, out) = (
            &self.protocols,
            &mut self.current,
            &mut self.got_header,
            &mut self.out,
        );
        step(&mut self.state, input, &self.cfg, |msg| {
            let msg = msg?;
            if !*got_header {
                expect_header(msg)?;
                *got_header = true;
                return Ok(None);
            }
            let Some(proposed) = protocols.get(*current) else {
                return Err(NegotiationError::ProtocolsExhausted);
            };
            match msg {
                Message::Protocol(p) if p == *proposed => {
                    tracing::debug!(protocol = %p, "multistream: dialer agreed");
                    Ok(Some(p))
                }
                Message::Na => {
                    tracing::trace!(protocol = %proposed, "multistream: na");
                    *current += 1;
                    let next = protocols
                        .get(*current)
                        .ok_or(NegotiationError::ProtocolsExhausted)?;
                    put_line(out, next);
                    Ok(None)
                }
                other => Err(NegotiationError::UnexpectedMessage {
                    expected: "echo of our proposal or na",
                    got: other.kind(),
                }),
            }
        })
    }
}

impl ListenerSelect {
    /// A listener supporting `supported`. Fails if an id is invalid.
    pub fn new(supported: &[&str], cfg: &Config) -> Result<Self, NegotiationError> {
        let mut out = BytesMut::new();
        Message::Header.encode(&mut out);
        Ok(ListenerSelect {
            state: State::Negotiating,
            cfg: cfg.clone(),
            supported: check_local(supported, cfg)?,
            rejections: 0,
            last_rejected: None,
            got_header: false,
            out,
        })
    }

    /// Bytes to send now (empty if none).
    pub fn transmit(&self) -> &[u8] {
        &self.out
    }

    /// Marks the first `n` bytes of [`ListenerSelect::transmit`] as sent.
    pub fn advance_transmit(&mut self, n: usize) {
        self.out.advance(n.min(self.out.len()));
    }

    /// Consumes whole messages from the front of `input` (see the module docs).
    pub fn handle_input(&mut self, input: &mut BytesMut) -> Result<Progress, NegotiationError> {
        let (supported, rejections, last_rejected, got_header, out, cfg) = (
            &self.supported,
            &mut self.rejections,
            &mut self.last_rejected,
            &mut self.got_header,
            &mut self.out,
            &self.cfg,
        );
        let mut reject = || {
            if *rejections >= cfg.max_rejections {
                return Err(NegotiationError::TooManyRejections(cfg.max_rejections));
            }
            *rejections += 1;
            Ok(())
        };
        step(&mut self.state, input, cfg, |msg| {
            let msg = match msg {
                Ok(msg) => msg,
                // Garbage right after our `na` is what a lazy dialer sends
                // (its application data): not misbehaviour.
                Err(e) => match last_rejected.take() {
                    Some(p) => return Err(NegotiationError::ProtocolRejected(p)),
                    None => return Err(e.into()),
                },
            };
            *last_rejected = None;
            if !*got_header {
                expect_header(msg)?;
                *got_header = true;
                return Ok(None);
            }
            match msg {
                Message::Protocol(p) if supported.contains(&p) => {
                    tracing::debug!(protocol = %p, "multistream: listener agreed");
                    put_line(out, &p);
                    Ok(Some(p))
                }
                Message::Protocol(p) => {
                    tracing::trace!(protocol = %p, "multistream: answering na");
                    reject()?;
                    Message::Na.encode(out);
                    *last_rejected = Some(p);
                    Ok(None)
                }
                Message::Ls => {
                    reject()?;
                    put_ls_response(out, &supported[..ls_fitting(supported, cfg)]);
                    Ok(None)
                }
                other => Err(NegotiationError::UnexpectedMessage {
                    expected: "protocol id or ls",
                    got: other.kind(),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use plexus_core::Blame;

    use super::*;
    use crate::DecodeError;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn take(out: &mut BytesMut) -> Vec<u8> {
        out.split().to_vec()
    }

    /// Shuttles bytes between a dialer and a listener, `chunk` bytes at a
    /// time, until both have a result. Returns both results and what is left
    /// in each side's input buffer.
    fn run(
        d: &mut DialerSelect,
        l: &mut ListenerSelect,
        chunk: usize,
    ) -> (
        Result<Progress, NegotiationError>,
        Result<Progress, NegotiationError>,
    ) {
        let (mut d_in, mut l_in) = (BytesMut::new(), BytesMut::new());
        let (mut d_res, mut l_res) = (Ok(Progress::NeedInput), Ok(Progress::NeedInput));
        for _ in 0..10_000 {
            let to_l = d.transmit().len().min(chunk);
            l_in.extend_from_slice(&d.transmit()[..to_l]);
            d.advance_transmit(to_l);
            let to_d = l.transmit().len().min(chunk);
            d_in.extend_from_slice(&l.transmit()[..to_d]);
            l.advance_transmit(to_d);
            if matches!(l_res, Ok(Progress::NeedInput)) {
                l_res = l.handle_input(&mut l_in);
            }
            if matches!(d_res, Ok(Progress::NeedInput)) {
                d_res = d.handle_input(&mut d_in);
            }
            let idle = d.transmit().is_empty() && l.transmit().is_empty();
            let waiting = matches!(d_res, Ok(Progress::NeedInput))
                || matches!(l_res, Ok(Progress::NeedInput));
            if idle && (!waiting || d_res.is_err() || l_res.is_err()) {
                break;
            }
        }
        assert!(d_in.is_empty() && l_in.is_empty(), "bytes left unread");
        (d_res, l_res)
    }

    fn pair(dial: &[&str], listen: &[&str]) -> (DialerSelect, ListenerSelect) {
        let cfg = Config::default();
        (
            DialerSelect::new(dial, &cfg).unwrap(),
            ListenerSelect::new(listen, &cfg).unwrap(),
        )
    }

    fn agreed(p: &str) -> Progress {
        Progress::Agreed(p.into())
    }

    #[test]
    fn agree_on_first_second_and_third_proposal_at_any_chunking() {
        let listen = ["/c", "/yamux/1.0.0"];
        for chunk in [1, 2, 3, 7, 1000] {
            for (dial, want) in [
                (&["/yamux/1.0.0", "/b"][..], "/yamux/1.0.0"),
                (&["/a", "/c", "/yamux/1.0.0"][..], "/c"),
                (&["/a", "/b", "/yamux/1.0.0"][..], "/yamux/1.0.0"),
            ] {
                let (mut d, mut l) = pair(dial, &listen);
                let (dr, lr) = run(&mut d, &mut l, chunk);
                assert_eq!(dr.unwrap(), agreed(want), "chunk {chunk}");
                assert_eq!(lr.unwrap(), agreed(want), "chunk {chunk}");
            }
        }
    }

    #[test]
    fn all_rejected_is_peer_incompatible() {
        let (mut d, mut l) = pair(&["/a", "/b"], &["/noise"]);
        let (dr, lr) = run(&mut d, &mut l, 1);
        let e = dr.unwrap_err();
        assert!(matches!(e, NegotiationError::ProtocolsExhausted));
        assert_eq!(e.blame(), Blame::PeerIncompatible);
        assert_eq!(lr.unwrap(), Progress::NeedInput);
        // the failure sticks
        let e = d.handle_input(&mut BytesMut::new()).unwrap_err();
        assert!(matches!(e, NegotiationError::ProtocolsExhausted));
    }

    #[test]
    fn exact_bytes_on_the_wire() {
        let (mut d, mut l) = pair(&["/mplex/6.7.0", "/yamux/1.0.0"], &["/yamux/1.0.0"]);
        let header = hex("13 2f6d756c746973747265616d2f312e302e30 0a");
        let mplex = hex("0d 2f6d706c65782f362e372e30 0a");
        let yamux = hex("0d 2f79616d75782f312e302e30 0a");
        let na = hex("03 6e61 0a");

        // dialer pipelines header + first proposal in one write
        let mut first = d.out.split();
        assert_eq!(first.to_vec(), [&header[..], &mplex].concat());
        // listener answers header + na together
        assert_eq!(l.handle_input(&mut first).unwrap(), Progress::NeedInput);
        let mut answer = l.out.split();
        assert_eq!(answer.to_vec(), [&header[..], &na].concat());
        assert_eq!(d.handle_input(&mut answer).unwrap(), Progress::NeedInput);
        let mut second = d.out.split();
        assert_eq!(second.to_vec(), yamux);
        assert_eq!(l.handle_input(&mut second).unwrap(), agreed("/yamux/1.0.0"));
        let mut echo = l.out.split();
        assert_eq!(echo.to_vec(), yamux);
        assert_eq!(d.handle_input(&mut echo).unwrap(), agreed("/yamux/1.0.0"));

        let (mut d, _) = pair(&["/noise"], &[]);
        assert_eq!(
            take(&mut d.out),
            [&header[..], &hex("07 2f6e6f697365 0a")].concat()
        );
    }

    #[test]
    fn listener_answers_ls_with_its_list() {
        let (_, mut l) = pair(&["/x"], &["/noise", "/yamux/1.0.0"]);
        let mut input = BytesMut::new();
        Message::Header.encode(&mut input);
        Message::Ls.encode(&mut input);
        assert_eq!(l.handle_input(&mut input).unwrap(), Progress::NeedInput);
        let mut out = l.out.split();
        let cfg = Config::default();
        assert_eq!(Message::decode(&mut out, &cfg), Ok(Some(Message::Header)));
        assert_eq!(
            Message::decode(&mut out, &cfg),
            Ok(Some(Message::LsResponse(vec![
                "/noise".into(),
                "/yamux/1.0.0".into()
            ])))
        );
        assert!(out.is_empty());
        // still negotiating: a proposal after ls is accepted
        put_line(&mut input, "/noise");
        assert_eq!(l.handle_input(&mut input).unwrap(), agreed("/noise"));
    }

    #[test]
    fn listener_leaves_trailing_app_data_untouched() {
        let (mut d, mut l) = pair(&["/noise"], &["/noise"]);
        let app = b"\x00\x20noise handshake bytes\n\x03na\n";
        let mut input = d.out.split();
        input.extend_from_slice(app);
        assert_eq!(l.handle_input(&mut input).unwrap(), agreed("/noise"));
        assert_eq!(&input[..], app);
        // and again: agreement is stable and consumes nothing more
        assert_eq!(l.handle_input(&mut input).unwrap(), agreed("/noise"));
        assert_eq!(&input[..], app);
        // dialer likewise leaves the listener's early app data
        let mut back = l.out.split();
        back.extend_from_slice(b"hello");
        assert_eq!(d.handle_input(&mut back).unwrap(), agreed("/noise"));
        assert_eq!(&back[..], b"hello");
    }

    #[test]
    fn listener_bounds_rejected_proposals() {
        let cfg = Config {
            max_rejections: 3,
            ..Config::default()
        };
        let mut l = ListenerSelect::new(&["/ok"], &cfg).unwrap();
        let mut input = BytesMut::new();
        Message::Header.encode(&mut input);
        for p in ["/a", "/b"] {
            put_line(&mut input, p);
        }
        Message::Ls.encode(&mut input); // ls counts too
        assert_eq!(l.handle_input(&mut input).unwrap(), Progress::NeedInput);
        put_line(&mut input, "/c");
        let e = l.handle_input(&mut input).unwrap_err();
        assert!(matches!(e, NegotiationError::TooManyRejections(3)));
        assert_eq!(e.blame(), Blame::PeerMisbehaved);
        // even a supported proposal is refused afterwards
        put_line(&mut input, "/ok");
        assert!(matches!(
            l.handle_input(&mut input),
            Err(NegotiationError::TooManyRejections(3))
        ));
    }

    #[test]
    fn wrong_first_message() {
        let cfg = Config::default();
        type Check = fn(&NegotiationError) -> bool;
        let cases: [(Message, Check, Blame); 3] = [
            (
                Message::Protocol("/multistream/2.0.0".into()),
                |e| matches!(e, NegotiationError::UnsupportedVersion(v) if v == "/multistream/2.0.0"),
                Blame::PeerIncompatible,
            ),
            (
                Message::Protocol("/noise".into()),
                |e| {
                    matches!(
                        e,
                        NegotiationError::UnexpectedMessage {
                            got: "protocol id",
                            ..
                        }
                    )
                },
                Blame::PeerMisbehaved,
            ),
            (
                Message::Na,
                |e| matches!(e, NegotiationError::UnexpectedMessage { got: "na", .. }),
                Blame::PeerMisbehaved,
            ),
        ];
        for (msg, is, blame) in cases {
            let mut input = BytesMut::new();
            msg.encode(&mut input);
            let mut l = ListenerSelect::new(&["/noise"], &cfg).unwrap();
            let e = l.handle_input(&mut input.clone()).unwrap_err();
            assert!(is(&e), "{e:?}");
            assert_eq!(e.blame(), blame);
            let mut d = DialerSelect::new(&["/noise"], &cfg).unwrap();
            let e = d.handle_input(&mut input).unwrap_err();
            assert!(is(&e), "{e:?}");
        }
    }

    #[test]
    fn dialer_rejects_wrong_echo_and_listener_rejects_na() {
        let cfg = Config::default();
        let mut d = DialerSelect::new(&["/a"], &cfg).unwrap();
        let mut input = BytesMut::new();
        Message::Header.encode(&mut input);
        put_line(&mut input, "/b");
        let e = d.handle_input(&mut input).unwrap_err();
        assert!(matches!(
            e,
            NegotiationError::UnexpectedMessage {
                got: "protocol id",
                ..
            }
        ));
        assert_eq!(e.blame(), Blame::PeerMisbehaved);

        let mut l = ListenerSelect::new(&["/a"], &cfg).unwrap();
        let mut input = BytesMut::new();
        Message::Header.encode(&mut input);
        Message::Header.encode(&mut input);
        assert!(matches!(
            l.handle_input(&mut input),
            Err(NegotiationError::UnexpectedMessage { got: "header", .. })
        ));
    }

    #[test]
    fn garbage_right_after_na_is_a_lazy_dialer_not_misbehaviour() {
        let cfg = Config::default();
        let mut l = ListenerSelect::new(&["/tls/1.0.0"], &cfg).unwrap();
        let mut input = BytesMut::new();
        Message::Header.encode(&mut input);
        put_line(&mut input, "/noise");
        input.extend_from_slice(b"\x00\x20noise msg 1");
        let e = l.handle_input(&mut input).unwrap_err();
        assert!(matches!(&e, NegotiationError::ProtocolRejected(p) if p == "/noise"));
        assert_eq!(e.blame(), Blame::PeerIncompatible);
        // the na is still owed to the dialer
        assert!(l.transmit().ends_with(b"\x03na\n"));

        // after a valid message following the na, garbage is garbage again
        let mut l = ListenerSelect::new(&["/tls/1.0.0"], &cfg).unwrap();
        let mut input = BytesMut::new();
        Message::Header.encode(&mut input);
        put_line(&mut input, "/noise");
        Message::Ls.encode(&mut input);
        input.extend_from_slice(b"\x00");
        let e = l.handle_input(&mut input).unwrap_err();
        assert!(matches!(
            e,
            NegotiationError::InvalidMessage(DecodeError::Empty)
        ));
    }

    #[test]
    fn garbage_is_an_invalid_message() {
        let cfg = Config::default();
        let mut l = ListenerSelect::new(&["/a"], &cfg).unwrap();
        // 'G' reads as a length of 71; byte 71 is no newline
        let mut input = BytesMut::from(&b"GET / HTTP/1.1\r\n".repeat(5)[..]);
        let e = l.handle_input(&mut input).unwrap_err();
        assert!(matches!(
            e,
            NegotiationError::InvalidMessage(DecodeError::MissingNewline)
        ));
        assert_eq!(e.blame(), Blame::PeerMisbehaved);
    }

    proptest::proptest! {
        /// Whatever follows the agreed proposal, and however the input is cut,
        /// the listener agrees and leaves those bytes untouched.
        #[test]
        fn listener_never_reads_past_agreement(
            tail in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
            rejected in 0usize..4,
            chunk in 1usize..40,
        ) {
            let cfg = Config::default();
            let mut l = ListenerSelect::new(&["/yes"], &cfg).unwrap();
            let mut wire = BytesMut::new();
            Message::Header.encode(&mut wire);
            for i in 0..rejected {
                put_line(&mut wire, &format!("/no/{i}"));
            }
            put_line(&mut wire, "/yes");
            wire.extend_from_slice(&tail);
            let mut input = BytesMut::new();
            let mut res = Ok(Progress::NeedInput);
            for piece in wire.chunks(chunk) {
                input.extend_from_slice(piece);
                res = l.handle_input(&mut input);
                if !matches!(res, Ok(Progress::NeedInput)) {
                    break;
                }
            }
            proptest::prop_assert_eq!(res.unwrap(), agreed("/yes"));
            // what is left is a prefix of the tail (the rest was never fed)
            proptest::prop_assert!(tail.starts_with(&input[..]));
            let mut answer = l.out.split();
            let mut expected = BytesMut::new();
            Message::Header.encode(&mut expected);
            for _ in 0..rejected {
                Message::Na.encode(&mut expected);
            }
            put_line(&mut expected, "/yes");
            proptest::prop_assert_eq!(answer.split().to_vec(), expected.to_vec());
        }
    }

    #[test]
    fn invalid_local_protocols_are_local_errors() {
        let cfg = Config::default();
        let long = format!("/{}", "x".repeat(1023));
        for bad in ["noise", "/a\nb", HEADER, &long] {
            let e = DialerSelect::new(&["/ok", bad], &cfg).unwrap_err();
            assert!(matches!(&e, NegotiationError::InvalidLocalProtocol(p) if p == bad));
            assert_eq!(e.blame(), Blame::Local);
            assert!(ListenerSelect::new(&[bad], &cfg).is_err());
        }
        let e = DialerSelect::new(&[], &cfg).unwrap_err();
        assert!(matches!(e, NegotiationError::NoProtocols));
        // the longest id that fits the limit is fine
        let max = format!("/{}", "x".repeat(1022));
        assert!(DialerSelect::new(&[&max], &cfg).is_ok());
    }
}
