//! The sans-IO XX handshake with the libp2p payload and inlined muxer negotiation.

use bytes::BytesMut;
use plexus_core::Role;
use plexus_identity::PeerId;

use crate::payload::{
    NoiseExtensions, NoiseHandshakePayload, PayloadLimits, RemoteIdentity, verify_payload,
};
use crate::{
    CryptoBackend, DH_LEN, LEN_PREFIX_LEN, MAX_FRAME_LEN, NoiseConfig, NoiseError, NoiseFramer,
    TAG_LEN,
};

/// Bytes a handshake message adds around its payload at most (message 2: `e`, encrypted `s`
/// with its tag, and the payload's tag).
const HANDSHAKE_OVERHEAD: usize = DH_LEN + (DH_LEN + TAG_LEN) + TAG_LEN;

/// Largest local payload that fits in a handshake message.
const MAX_LOCAL_PAYLOAD: usize = MAX_FRAME_LEN - HANDSHAKE_OVERHEAD;

/// What a finished handshake produced.
#[derive(Debug)]
pub struct HandshakeResult {
    /// The transport framer.
    pub framer: NoiseFramer,
    /// The authenticated remote.
    pub remote: RemoteIdentity,
    /// The muxer agreed inside the handshake: `None` when either side listed none.
    pub early_muxer: Option<String>,
}

/// The Noise XX handshake as a sans-IO state machine, for one side of one connection.
///
/// The initiator (dialer) writes message 1 (an ephemeral key, empty payload), reads message 2
/// (the responder's payload with its muxer list, verified as soon as it arrives) and writes
/// message 3 (its payload and its muxer list). The responder mirrors this. Drive it with
/// [`NoiseHandshake::wants_write`] / [`NoiseHandshake::write_message`] and
/// [`NoiseHandshake::read_message`] until [`NoiseHandshake::is_finished`], then call
/// [`NoiseHandshake::finish`].
///
/// Any error is final: the handshake must be dropped with the connection.
pub struct NoiseHandshake {
    state: snow::HandshakeState,
    role: Role,
    expect: Option<PeerId>,
    local_payload: Vec<u8>,
    local_muxers: Vec<String>,
    limits: PayloadLimits,
    remote: Option<(RemoteIdentity, Vec<String>)>,
    messages: u8,
    failed: bool,
    scratch: Vec<u8>,
    backend: CryptoBackend,
}

impl std::fmt::Debug for NoiseHandshake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseHandshake")
            .field("role", &self.role)
            .field("expect", &self.expect)
            .field("messages", &self.messages)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl NoiseHandshake {
    /// Start a handshake. `expect` is the peer we dialed (any other authenticated peer fails
    /// the handshake); `muxers` is our muxer list in preference order (empty: do not
    /// negotiate a muxer in the handshake).
    ///
    /// # Errors
    /// [`NoiseError::LocalPayloadTooLarge`] when `muxers` is over the config's
    /// [`PayloadLimits`] (a peer would reject it), [`NoiseError::Internal`] if snow refuses
    /// the configuration.
    pub fn new(
        config: &NoiseConfig,
        role: Role,
        expect: Option<PeerId>,
        muxers: Vec<String>,
    ) -> Result<Self, NoiseError> {
        let limits = config.payload_limits().clone();
        let payload = NoiseHandshakePayload {
            identity_key: Some(config.identity_key_protobuf().to_vec()),
            identity_sig: Some(config.identity_signature().to_vec()),
            extensions: (!muxers.is_empty()).then(|| NoiseExtensions {
                webtransport_certhashes: Vec::new(),
                stream_muxers: muxers.clone(),
            }),
        };
        if payload.check_limits(&limits).is_err() {
            return Err(NoiseError::LocalPayloadTooLarge(
                "muxer list over the payload limits",
            ));
        }
        let local_payload = prost::Message::encode_to_vec(&payload);
        if local_payload.len() > MAX_LOCAL_PAYLOAD {
            return Err(NoiseError::LocalPayloadTooLarge(
                "payload does not fit a noise message",
            ));
        }
        let internal = |source| NoiseError::Internal {
            context: "handshake setup",
            source,
        };
        let builder = config.builder().map_err(internal)?;
        let state = match role {
            Role::Initiator => builder.build_initiator(),
            Role::Responder => builder.build_responder(),
        }
        .map_err(internal)?;
        Ok(NoiseHandshake {
            state,
            role,
            expect,
            local_payload,
            local_muxers: muxers,
            limits,
            remote: None,
            messages: 0,
            failed: false,
            scratch: Vec::new(),
            backend: config.backend(),
        })
    }

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// Whether all three messages went through.
    pub fn is_finished(&self) -> bool {
        !self.failed && self.state.is_handshake_finished()
    }

    /// Whether it is our turn to write.
    pub fn wants_write(&self) -> bool {
        !self.failed && !self.state.is_handshake_finished() && self.state.is_my_turn()
    }

    /// Whether we are waiting for the remote's next message.
    pub fn wants_read(&self) -> bool {
        !self.failed && !self.state.is_handshake_finished() && !self.state.is_my_turn()
    }

    /// The remote identity, once its payload was verified (after message 2 for the initiator,
    /// message 3 for the responder).
    pub fn remote(&self) -> Option<&RemoteIdentity> {
        self.remote.as_ref().map(|(id, _)| id)
    }

    /// Write our next message, framed, to the end of `out`.
    ///
    /// # Errors
    /// [`NoiseError::Poisoned`] after an earlier error; [`NoiseError::Internal`] when it is
    /// not our turn.
    pub fn write_message(&mut self, out: &mut BytesMut) -> Result<(), NoiseError> {
        if self.failed {
            return Err(NoiseError::Poisoned);
        }
        // Message 1 carries nothing: there is no key yet, a payload would go out in clear.
        let payload: &[u8] = if self.messages == 0 {
            &[]
        } else {
            &self.local_payload
        };
        let start = out.len();
        let max = (payload.len() + HANDSHAKE_OVERHEAD).min(MAX_FRAME_LEN);
        out.resize(start + LEN_PREFIX_LEN + max, 0);
        match self
            .state
            .write_message(payload, &mut out[start + LEN_PREFIX_LEN..])
        {
            Ok(n) => {
                out.truncate(start + LEN_PREFIX_LEN + n);
                // n ≤ MAX_FRAME_LEN: the buffer was no larger.
                out[start..start + LEN_PREFIX_LEN].copy_from_slice(&(n as u16).to_be_bytes());
                self.messages += 1;
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                self.failed = true;
                Err(NoiseError::from_snow_write(e, "handshake write"))
            }
        }
    }

    /// Read the remote's next message: `msg` is one whole frame body (see
    /// [`crate::read_frame`]). The message carrying the remote's payload is decoded and
    /// verified here, so a bad identity fails before we send anything more.
    ///
    /// # Errors
    /// [`NoiseError::MalformedMessage`] (a first message that is not exactly one key),
    /// [`NoiseError::Decrypt`], payload errors ([`NoiseError::InvalidPayload`],
    /// [`NoiseError::PayloadLimit`], …), [`NoiseError::BadSignature`],
    /// [`NoiseError::UnsupportedKey`], [`NoiseError::PeerIdMismatch`].
    pub fn read_message(&mut self, msg: &[u8]) -> Result<(), NoiseError> {
        if self.failed {
            return Err(NoiseError::Poisoned);
        }
        let result = self.read_inner(msg);
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn read_inner(&mut self, msg: &[u8]) -> Result<(), NoiseError> {
        let msg_no = self.messages + 1;
        if msg_no == 1 && msg.len() != DH_LEN {
            return Err(NoiseError::MalformedMessage {
                msg: 1,
                reason: "must be exactly one 32-byte ephemeral key and no payload",
            });
        }
        self.scratch.clear();
        self.scratch.resize(msg.len(), 0);
        let n = self
            .state
            .read_message(msg, &mut self.scratch)
            .map_err(|e| NoiseError::from_snow_read(e, "handshake read"))?;
        self.messages += 1;
        if msg_no == 1 {
            return Ok(());
        }
        let payload = NoiseHandshakePayload::decode_bounded(&self.scratch[..n], &self.limits)?;
        let remote_static: &[u8; DH_LEN] = self
            .state
            .get_remote_static()
            .and_then(|s| s.try_into().ok())
            .ok_or(NoiseError::MalformedMessage {
                msg: msg_no,
                reason: "no remote static key",
            })?;
        let remote = verify_payload(&payload, remote_static)?;
        if let Some(expected) = self.expect
            && expected != remote.peer
        {
            return Err(NoiseError::PeerIdMismatch {
                expected,
                actual: remote.peer,
            });
        }
        let muxers = payload
            .extensions
            .map(|e| e.stream_muxers)
            .unwrap_or_default();
        self.remote = Some((remote, muxers));
        Ok(())
    }

    /// Finish a completed handshake: split into the transport framer and settle the early
    /// muxer (the first of the initiator's list the responder also listed).
    ///
    /// # Errors
    /// [`NoiseError::NoCommonMuxer`] when both sides listed muxers and none is common;
    /// [`NoiseError::Poisoned`] after an earlier error; [`NoiseError::Internal`] when the
    /// handshake is not finished.
    pub fn finish(self) -> Result<HandshakeResult, NoiseError> {
        if self.failed {
            return Err(NoiseError::Poisoned);
        }
        let framer = NoiseFramer::from_handshake(self.state, self.backend).map_err(|source| {
            NoiseError::Internal {
                context: "handshake finish",
                source,
            }
        })?;
        let Some((remote, remote_muxers)) = self.remote else {
            return Err(NoiseError::Poisoned);
        };
        let (initiator, responder) = match self.role {
            Role::Initiator => (&self.local_muxers, &remote_muxers),
            Role::Responder => (&remote_muxers, &self.local_muxers),
        };
        let early_muxer = if initiator.is_empty() || responder.is_empty() {
            None
        } else {
            match select_muxer(initiator, responder) {
                Some(m) => Some(m.to_owned()),
                None => {
                    return Err(NoiseError::NoCommonMuxer {
                        ours: self.local_muxers,
                        theirs: remote_muxers,
                    });
                }
            }
        };
        Ok(HandshakeResult {
            framer,
            remote,
            early_muxer,
        })
    }
}

/// The inlined muxer negotiation rule: the first entry of the initiator's list that the
/// responder's list also holds, or `None` when there is no overlap.
pub fn select_muxer<'a>(initiator: &'a [String], responder: &[String]) -> Option<&'a str> {
    initiator
        .iter()
        .find(|m| responder.contains(m))
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_muxer_follows_the_initiator() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let i = s(&["/yamux/1.0.0", "/mplex/6.7.0"]);
        let r = s(&["/mplex/6.7.0", "/yamux/1.0.0"]);
        assert_eq!(select_muxer(&i, &r), Some("/yamux/1.0.0"));
        assert_eq!(select_muxer(&r, &i), Some("/mplex/6.7.0"));
        assert_eq!(select_muxer(&i, &s(&["/other"])), None);
        assert_eq!(select_muxer(&s(&["/a", "/b"]), &s(&["/b"])), Some("/b"));
    }
}
