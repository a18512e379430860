//! The negotiation error and who is to blame for it.

use std::io;

use plexus_core::Blame;

use crate::DecodeError;

/// A negotiation failed.
#[derive(Debug, thiserror::Error)]
pub enum NegotiationError {
    /// The peer sent bytes that are not a valid message (too long, garbage,
    /// no newline, …).
    #[error("invalid message: {0}")]
    InvalidMessage(#[from] DecodeError),
    /// The peer sent a valid message at the wrong time (a wrong first message,
    /// an echo of a protocol we did not propose, `na` to a dialer's header, …).
    #[error("unexpected message: expected {expected}, got {got}")]
    UnexpectedMessage {
        /// What we were waiting for.
        expected: &'static str,
        /// What the peer sent ([`crate::Message::kind`]).
        got: &'static str,
    },
    /// The peer's first message is another multistream version.
    #[error("unsupported multistream version {0:?}")]
    UnsupportedVersion(String),
    /// The dialer's proposals and `ls` requests went unanswered more than
    /// [`crate::Config::max_rejections`] times.
    #[error("more than {0} rejected proposals")]
    TooManyRejections(usize),
    /// The listener rejected every protocol we proposed.
    #[error("all protocols rejected")]
    ProtocolsExhausted,
    /// The listener rejected the protocol a lazy dialer already started to use.
    #[error("protocol {0:?} rejected")]
    ProtocolRejected(String),
    /// A dialer was given no protocol to propose.
    #[error("no protocol to propose")]
    NoProtocols,
    /// One of our own protocol ids is invalid (no leading `/`, a `\n`, the
    /// multistream header itself, or longer than the message limit).
    #[error("invalid local protocol id {0:?}")]
    InvalidLocalProtocol(String),
    /// The stream ended before agreement.
    #[error("stream closed before agreement")]
    UnexpectedEof,
    /// The underlying stream failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

impl NegotiationError {
    /// Who is to blame.
    pub fn blame(&self) -> Blame {
        use NegotiationError::*;
        match self {
            InvalidMessage(_) | UnexpectedMessage { .. } | TooManyRejections(_) => {
                Blame::PeerMisbehaved
            }
            UnsupportedVersion(_) | ProtocolsExhausted | ProtocolRejected(_) => {
                Blame::PeerIncompatible
            }
            NoProtocols | InvalidLocalProtocol(_) | UnexpectedEof | Io(_) => Blame::Local,
        }
    }

    fn into_io(self) -> io::Error {
        match self {
            NegotiationError::Io(e) => e,
            e => io::Error::other(e),
        }
    }

    /// A copy, for state machines and streams that keep reporting a failure
    /// (an I/O error keeps its kind and message).
    pub(crate) fn duplicate(&self) -> Self {
        use NegotiationError::*;
        match self {
            InvalidMessage(e) => InvalidMessage(e.clone()),
            UnexpectedMessage { expected, got } => UnexpectedMessage { expected, got },
            UnsupportedVersion(v) => UnsupportedVersion(v.clone()),
            TooManyRejections(n) => TooManyRejections(*n),
            ProtocolsExhausted => ProtocolsExhausted,
            ProtocolRejected(p) => ProtocolRejected(p.clone()),
            NoProtocols => NoProtocols,
            InvalidLocalProtocol(p) => InvalidLocalProtocol(p.clone()),
            UnexpectedEof => UnexpectedEof,
            Io(e) => Io(io::Error::new(e.kind(), e.to_string())),
        }
    }
}

/// An I/O error is passed through; any other error is wrapped (downcast
/// `get_ref()` to [`NegotiationError`]) with a kind that reflects its blame.
impl From<NegotiationError> for io::Error {
    fn from(e: NegotiationError) -> Self {
        let kind = match &e {
            NegotiationError::Io(_) => return e.into_io(),
            NegotiationError::UnexpectedEof => io::ErrorKind::UnexpectedEof,
            e => match e.blame() {
                Blame::PeerMisbehaved => io::ErrorKind::InvalidData,
                Blame::PeerIncompatible => io::ErrorKind::Unsupported,
                Blame::Local => io::ErrorKind::InvalidInput,
            },
        };
        io::Error::new(kind, e)
    }
}
