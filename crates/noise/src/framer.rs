//! Sans-IO framing: handshake frames and the transport framer.

use bytes::{Buf, BytesMut};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

use crate::config::{CryptoBackend, noise_params};
use crate::{DH_LEN, LEN_PREFIX_LEN, MAX_FRAME_LEN, MAX_PLAINTEXT_LEN, NoiseError, TAG_LEN};

/// The total length (length prefix included) of the frame at the start of `input`, once its
/// two-byte length prefix is there. The frame is complete when `input.len()` reaches it.
pub fn frame_len(input: &[u8]) -> Option<usize> {
    match input {
        [hi, lo, ..] => Some(LEN_PREFIX_LEN + usize::from(u16::from_be_bytes([*hi, *lo]))),
        _ => None,
    }
}

/// Append `msg` to `out` as one frame (a big-endian u16 length, then `msg`). Used for
/// handshake messages, which are already encrypted where needed.
///
/// # Errors
/// [`NoiseError::BufferSize`] if `msg` is longer than [`MAX_FRAME_LEN`].
pub fn write_frame(msg: &[u8], out: &mut BytesMut) -> Result<(), NoiseError> {
    let len = u16::try_from(msg.len()).map_err(|_| NoiseError::BufferSize)?;
    out.reserve(LEN_PREFIX_LEN + msg.len());
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(msg);
    Ok(())
}

/// Take one whole frame off the front of `input` and return its body (without the prefix),
/// zero-copy. `None` (and `input` untouched) while the frame is incomplete.
pub fn read_frame(input: &mut BytesMut) -> Option<BytesMut> {
    let total = frame_len(input)?;
    if input.len() < total {
        return None;
    }
    input.advance(LEN_PREFIX_LEN);
    Some(input.split_to(total - LEN_PREFIX_LEN))
}

/// The transport-phase framer of a Noise session: encrypts plaintext into length-prefixed
/// frames and decrypts whole frames. Sans-IO.
///
/// With [`CryptoBackend::Accelerated`] the framer runs ring's ChaCha20-Poly1305 itself on the
/// keys of the handshake's split, in place: [`NoiseFramer::seal_in_place`] and
/// [`NoiseFramer::open_in_place`] encrypt and decrypt a buffer without copying it (snow's
/// transport API always copies between an input and an output slice). With
/// [`CryptoBackend::RustCrypto`] it runs snow's `TransportState`, and the in-place calls copy
/// through a scratch buffer. Both produce the same bytes (Noise's `ChaChaPoly`: the nonce is
/// four zero bytes and the little-endian frame counter, the associated data is empty).
///
/// Each frame carries at most [`MAX_PLAINTEXT_LEN`] plaintext bytes, i.e. at most
/// [`MAX_FRAME_LEN`] bytes of ciphertext after its two-byte length. Zero-length frames (a tag
/// only) are legal both ways.
///
/// A failure on a direction (a frame that does not decrypt, an exhausted nonce) poisons that
/// direction: every later call on it returns [`NoiseError::Poisoned`], since the Noise
/// protocol has no recovery. Drop the connection.
pub struct NoiseFramer {
    cipher: TransportCipher,
    read_failed: bool,
    write_failed: bool,
    /// The snow path's copy of a buffer to be sealed or opened "in place".
    scratch: Vec<u8>,
}

enum TransportCipher {
    Ring(Box<RingTransport>),
    Snow(Box<snow::TransportState>),
}

/// Noise `ChaChaPoly` on ring, one key and counter per direction.
struct RingTransport {
    send: LessSafeKey,
    recv: LessSafeKey,
    send_nonce: u64,
    recv_nonce: u64,
    remote_static: Option<[u8; DH_LEN]>,
}

/// The Noise nonce for counter `n`: 32 zero bits, then `n` little-endian.
fn ring_nonce(n: u64) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[4..].copy_from_slice(&n.to_le_bytes());
    Nonce::assume_unique_for_key(bytes)
}

impl std::fmt::Debug for NoiseFramer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseFramer")
            .field("sending_nonce", &self.sending_nonce())
            .field("receiving_nonce", &self.receiving_nonce())
            .field("read_failed", &self.read_failed)
            .field("write_failed", &self.write_failed)
            .finish_non_exhaustive()
    }
}

impl NoiseFramer {
    fn with_cipher(cipher: TransportCipher) -> Self {
        NoiseFramer {
            cipher,
            read_failed: false,
            write_failed: false,
            scratch: Vec::new(),
        }
    }

    /// The framer of a finished handshake, on `backend`'s cipher.
    pub(crate) fn from_handshake(
        mut hs: snow::HandshakeState,
        backend: CryptoBackend,
    ) -> Result<Self, snow::Error> {
        if !hs.is_handshake_finished() {
            return Err(snow::Error::State(
                snow::error::StateProblem::HandshakeNotFinished,
            ));
        }
        match backend {
            CryptoBackend::Accelerated => {
                let remote_static = hs
                    .get_remote_static()
                    .and_then(|k| <[u8; DH_LEN]>::try_from(k).ok());
                // Noise's Split(): the initiator sends with the first key, the responder with
                // the second.
                let (mut k1, mut k2) = hs.dangerously_get_raw_split();
                let (send, recv) = if hs.is_initiator() {
                    (&k1, &k2)
                } else {
                    (&k2, &k1)
                };
                let key = |k: &[u8; 32]| {
                    UnboundKey::new(&CHACHA20_POLY1305, k)
                        .map(LessSafeKey::new)
                        .map_err(|_| snow::Error::Init(snow::error::InitStage::ValidateCipherTypes))
                };
                let ring = RingTransport {
                    send: key(send)?,
                    recv: key(recv)?,
                    send_nonce: 0,
                    recv_nonce: 0,
                    remote_static,
                };
                k1.fill(0);
                k2.fill(0);
                std::hint::black_box((&k1, &k2));
                Ok(Self::with_cipher(TransportCipher::Ring(Box::new(ring))))
            }
            CryptoBackend::RustCrypto => Ok(Self::new(hs.into_transport_mode()?)),
        }
    }

    /// A framer over snow's transport state.
    pub(crate) fn new(state: snow::TransportState) -> Self {
        Self::with_cipher(TransportCipher::Snow(Box::new(state)))
    }

    /// Encrypt `plaintext` and append it to `out` as frames of at most [`MAX_PLAINTEXT_LEN`]
    /// plaintext bytes each. An empty `plaintext` becomes one zero-length frame. `out` grows by
    /// `2 + len + 16` bytes per frame; reuse it (clear it after writing) to avoid allocating.
    ///
    /// # Errors
    /// [`NoiseError::NonceExhausted`] after 2^64 − 1 frames, [`NoiseError::Poisoned`] after an
    /// earlier failure. On error `out` holds the frames encrypted before the failure.
    pub fn encrypt(&mut self, plaintext: &[u8], out: &mut BytesMut) -> Result<(), NoiseError> {
        let frames = plaintext.len().div_ceil(MAX_PLAINTEXT_LEN).max(1);
        out.reserve(plaintext.len() + frames * (LEN_PREFIX_LEN + TAG_LEN));
        let mut rest = plaintext;
        loop {
            let (chunk, tail) = rest.split_at(rest.len().min(MAX_PLAINTEXT_LEN));
            let start = out.len();
            out.extend_from_slice(&[0; LEN_PREFIX_LEN]);
            out.extend_from_slice(chunk);
            out.extend_from_slice(&[0; TAG_LEN]);
            if let Err(e) = self.seal_in_place(&mut out[start..], chunk.len()) {
                out.truncate(start);
                return Err(e);
            }
            rest = tail;
            if rest.is_empty() {
                return Ok(());
            }
        }
    }

    /// Encrypt one frame: write the length prefix and the ciphertext of `plaintext` (at most
    /// [`MAX_PLAINTEXT_LEN`] bytes) to the front of `out`, which must hold at least
    /// `2 + plaintext.len() + 16` bytes. Returns the bytes written. (Copies `plaintext` into
    /// `out`; [`NoiseFramer::seal_in_place`] avoids the copy when the plaintext is already
    /// there.)
    ///
    /// # Errors
    /// [`NoiseError::BufferSize`] for an oversized plaintext or a short `out`,
    /// [`NoiseError::NonceExhausted`], [`NoiseError::Poisoned`].
    pub fn encrypt_frame(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN
            || out.len() < LEN_PREFIX_LEN + plaintext.len() + TAG_LEN
        {
            return Err(NoiseError::BufferSize);
        }
        out[LEN_PREFIX_LEN..LEN_PREFIX_LEN + plaintext.len()].copy_from_slice(plaintext);
        self.seal_in_place(out, plaintext.len())
    }

    /// Encrypt one frame in place. `frame` holds two bytes for the length prefix, then
    /// `plaintext_len` (at most [`MAX_PLAINTEXT_LEN`]) bytes of plaintext, then at least 16
    /// bytes for the tag; on return it holds the whole frame (prefix, ciphertext, tag) at its
    /// front. Returns the frame's length, `2 + plaintext_len + 16`.
    ///
    /// # Errors
    /// [`NoiseError::BufferSize`] for an oversized plaintext or a short `frame`,
    /// [`NoiseError::NonceExhausted`], [`NoiseError::Poisoned`].
    pub fn seal_in_place(
        &mut self,
        frame: &mut [u8],
        plaintext_len: usize,
    ) -> Result<usize, NoiseError> {
        if self.write_failed {
            return Err(NoiseError::Poisoned);
        }
        let body_len = plaintext_len + TAG_LEN;
        if plaintext_len > MAX_PLAINTEXT_LEN || frame.len() < LEN_PREFIX_LEN + body_len {
            return Err(NoiseError::BufferSize);
        }
        let (prefix, body) = frame.split_at_mut(LEN_PREFIX_LEN);
        let n = match &mut self.cipher {
            TransportCipher::Ring(t) => {
                if t.send_nonce == u64::MAX {
                    self.write_failed = true;
                    return Err(NoiseError::NonceExhausted);
                }
                let (data, tag_out) = body[..body_len].split_at_mut(plaintext_len);
                let tag = t
                    .send
                    .seal_in_place_separate_tag(ring_nonce(t.send_nonce), Aad::empty(), data)
                    .map_err(|_| {
                        self.write_failed = true;
                        NoiseError::Internal {
                            context: "encrypt",
                            source: snow::Error::Input,
                        }
                    })?;
                tag_out.copy_from_slice(tag.as_ref());
                t.send_nonce += 1;
                body_len
            }
            TransportCipher::Snow(state) => {
                self.scratch.clear();
                self.scratch.extend_from_slice(&body[..plaintext_len]);
                state.write_message(&self.scratch, body).map_err(|e| {
                    self.write_failed = true;
                    NoiseError::from_snow_write(e, "encrypt")
                })?
            }
        };
        // n ≤ MAX_FRAME_LEN, checked above.
        prefix.copy_from_slice(&(n as u16).to_be_bytes());
        Ok(LEN_PREFIX_LEN + n)
    }

    /// Decrypt the next frame of `input` if it is complete: consume it from `input`, append its
    /// plaintext to `out` and return the plaintext length (which may be 0). `Ok(None)`, with
    /// nothing consumed, while the frame is incomplete. Only whole frames are consumed.
    ///
    /// `out` temporarily grows by the frame's ciphertext length (so the cipher can work in
    /// place without a scratch allocation), then shrinks to the plaintext.
    ///
    /// # Errors
    /// [`NoiseError::Decrypt`] for a frame that does not authenticate (or is shorter than a
    /// tag), [`NoiseError::NonceExhausted`], [`NoiseError::Poisoned`]. Nothing is consumed
    /// on error.
    pub fn decrypt_next(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<Option<usize>, NoiseError> {
        if self.read_failed {
            return Err(NoiseError::Poisoned);
        }
        let Some(total) = frame_len(input) else {
            return Ok(None);
        };
        if input.len() < total {
            return Ok(None);
        }
        let start = out.len();
        out.extend_from_slice(&input[LEN_PREFIX_LEN..total]);
        match self.open_in_place(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                input.advance(total);
                Ok(Some(n))
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }

    /// Decrypt one frame body (`ciphertext`, without the length prefix) into the front of
    /// `out` and return the plaintext length. `out` needs `ciphertext.len() - 16` bytes.
    /// (Copies; [`NoiseFramer::open_in_place`] decrypts where the ciphertext lies.)
    ///
    /// # Errors
    /// [`NoiseError::Decrypt`], [`NoiseError::NonceExhausted`], [`NoiseError::Poisoned`];
    /// [`NoiseError::BufferSize`] for a short `out`.
    pub fn decrypt_frame(
        &mut self,
        ciphertext: &[u8],
        out: &mut [u8],
    ) -> Result<usize, NoiseError> {
        if self.read_failed {
            return Err(NoiseError::Poisoned);
        }
        if ciphertext.len() < TAG_LEN || ciphertext.len() > MAX_FRAME_LEN {
            self.read_failed = true;
            return Err(NoiseError::Decrypt);
        }
        if out.len() < ciphertext.len() - TAG_LEN {
            return Err(NoiseError::BufferSize);
        }
        if let TransportCipher::Snow(state) = &mut self.cipher {
            // snow copies the ciphertext into `out` itself: one pass, no scratch.
            return state.read_message(ciphertext, out).map_err(|e| {
                self.read_failed = true;
                NoiseError::from_snow_read(e, "decrypt")
            });
        }
        if out.len() >= ciphertext.len() {
            out[..ciphertext.len()].copy_from_slice(ciphertext);
            return self.open_in_place(&mut out[..ciphertext.len()]);
        }
        // Room for the plaintext but not the tag: open in the scratch buffer.
        let mut body = std::mem::take(&mut self.scratch);
        body.clear();
        body.extend_from_slice(ciphertext);
        let result = self.open_in_place(&mut body);
        if let Ok(n) = result {
            out[..n].copy_from_slice(&body[..n]);
        }
        self.scratch = body;
        result
    }

    /// Decrypt one frame body (ciphertext and tag, without the length prefix) in place and
    /// return the plaintext length: the plaintext is then `body[..n]`. A body that does not
    /// authenticate is left in an unspecified state.
    ///
    /// # Errors
    /// [`NoiseError::Decrypt`] (also for a body shorter than a tag or longer than
    /// [`MAX_FRAME_LEN`]), [`NoiseError::NonceExhausted`], [`NoiseError::Poisoned`].
    pub fn open_in_place(&mut self, body: &mut [u8]) -> Result<usize, NoiseError> {
        if self.read_failed {
            return Err(NoiseError::Poisoned);
        }
        if body.len() < TAG_LEN || body.len() > MAX_FRAME_LEN {
            self.read_failed = true;
            return Err(NoiseError::Decrypt);
        }
        match &mut self.cipher {
            TransportCipher::Ring(t) => {
                if t.recv_nonce == u64::MAX {
                    self.read_failed = true;
                    return Err(NoiseError::NonceExhausted);
                }
                match t
                    .recv
                    .open_in_place(ring_nonce(t.recv_nonce), Aad::empty(), body)
                {
                    Ok(plain) => {
                        t.recv_nonce += 1;
                        Ok(plain.len())
                    }
                    Err(_) => {
                        self.read_failed = true;
                        Err(NoiseError::Decrypt)
                    }
                }
            }
            TransportCipher::Snow(state) => {
                self.scratch.clear();
                self.scratch.extend_from_slice(body);
                state.read_message(&self.scratch, body).map_err(|e| {
                    self.read_failed = true;
                    NoiseError::from_snow_read(e, "decrypt")
                })
            }
        }
    }

    /// The remote's Noise static key.
    pub fn remote_static(&self) -> Option<&[u8]> {
        match &self.cipher {
            TransportCipher::Ring(t) => t.remote_static.as_ref().map(|k| &k[..]),
            TransportCipher::Snow(state) => state.get_remote_static(),
        }
    }

    /// Frames encrypted so far (the next sending nonce).
    pub fn sending_nonce(&self) -> u64 {
        match &self.cipher {
            TransportCipher::Ring(t) => t.send_nonce,
            TransportCipher::Snow(state) => state.sending_nonce(),
        }
    }

    /// Frames decrypted so far (the next receiving nonce).
    pub fn receiving_nonce(&self) -> u64 {
        match &self.cipher {
            TransportCipher::Ring(t) => t.recv_nonce,
            TransportCipher::Snow(state) => state.receiving_nonce(),
        }
    }

    /// **Insecure, for tests and fuzzing only.** An (initiator, responder) pair of framers from
    /// an XX handshake with fixed static and ephemeral keys, so that their keys (and hence
    /// their frames) are the same in every run. Never use it for real traffic.
    #[doc(hidden)]
    pub fn insecure_fixed_key_pair() -> (NoiseFramer, NoiseFramer) {
        Self::fixed_key_pair_on(CryptoBackend::default(), CryptoBackend::default())
    }

    /// [`NoiseFramer::insecure_fixed_key_pair`] with each side's framer on its own backend.
    fn fixed_key_pair_on(
        initiator: CryptoBackend,
        responder: CryptoBackend,
    ) -> (NoiseFramer, NoiseFramer) {
        fn build<'a>(s: &'a [u8; 32], e: &'a [u8; 32]) -> Result<snow::Builder<'a>, snow::Error> {
            snow::Builder::with_resolver(noise_params(), CryptoBackend::default().resolver())
                .local_private_key(s)
                .map(|b| b.fixed_ephemeral_key_for_testing_only(e))
        }
        let mut i = build(&[0x11; 32], &[0x22; 32])
            .and_then(|b| b.build_initiator())
            .expect("valid fixed keys");
        let mut r = build(&[0x33; 32], &[0x44; 32])
            .and_then(|b| b.build_responder())
            .expect("valid fixed keys");
        let mut msg = [0u8; 256];
        let mut payload = [0u8; 256];
        let n = i.write_message(&[], &mut msg).expect("msg1");
        r.read_message(&msg[..n], &mut payload).expect("msg1");
        let n = r.write_message(&[], &mut msg).expect("msg2");
        i.read_message(&msg[..n], &mut payload).expect("msg2");
        let n = i.write_message(&[], &mut msg).expect("msg3");
        r.read_message(&msg[..n], &mut payload).expect("msg3");
        (
            NoiseFramer::from_handshake(i, initiator).expect("handshake done"),
            NoiseFramer::from_handshake(r, responder).expect("handshake done"),
        )
    }

    #[cfg(test)]
    pub(crate) fn set_receiving_nonce(&mut self, nonce: u64) {
        match &mut self.cipher {
            TransportCipher::Ring(t) => t.recv_nonce = nonce,
            TransportCipher::Snow(state) => state.set_receiving_nonce(nonce),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_splits_at_max_plaintext() {
        let (mut a, mut b) = NoiseFramer::insecure_fixed_key_pair();
        let data: Vec<u8> = (0..MAX_PLAINTEXT_LEN * 2 + 5).map(|i| i as u8).collect();
        let mut wire = BytesMut::new();
        a.encrypt(&data, &mut wire).unwrap();
        assert_eq!(wire.len(), data.len() + 3 * (LEN_PREFIX_LEN + TAG_LEN));
        assert_eq!(frame_len(&wire), Some(LEN_PREFIX_LEN + MAX_FRAME_LEN));
        let mut out = BytesMut::new();
        let mut sizes = vec![];
        while let Some(n) = b.decrypt_next(&mut wire, &mut out).unwrap() {
            sizes.push(n);
        }
        assert_eq!(sizes, [MAX_PLAINTEXT_LEN, MAX_PLAINTEXT_LEN, 5]);
        assert_eq!(&out[..], &data[..]);
        assert!(wire.is_empty());
    }

    #[test]
    fn zero_length_frames_are_legal() {
        let (mut a, mut b) = NoiseFramer::insecure_fixed_key_pair();
        let mut wire = BytesMut::new();
        a.encrypt(&[], &mut wire).unwrap();
        assert_eq!(&wire[..2], &[0, TAG_LEN as u8]);
        assert_eq!(wire.len(), LEN_PREFIX_LEN + TAG_LEN);
        a.encrypt(b"x", &mut wire).unwrap();
        let mut out = BytesMut::new();
        assert_eq!(b.decrypt_next(&mut wire, &mut out).unwrap(), Some(0));
        assert_eq!(b.decrypt_next(&mut wire, &mut out).unwrap(), Some(1));
        assert_eq!(&out[..], b"x");
    }

    #[test]
    fn incomplete_frames_are_not_consumed() {
        let (mut a, mut b) = NoiseFramer::insecure_fixed_key_pair();
        let mut full = BytesMut::new();
        a.encrypt(b"hello", &mut full).unwrap();
        let mut out = BytesMut::new();
        for cut in 0..full.len() {
            let mut part = BytesMut::from(&full[..cut]);
            assert_eq!(b.decrypt_next(&mut part, &mut out).unwrap(), None);
            assert_eq!(part.len(), cut);
            assert!(out.is_empty());
        }
        assert_eq!(b.decrypt_next(&mut full, &mut out).unwrap(), Some(5));
    }

    #[test]
    fn flipped_bit_fails_and_poisons_the_read_side() {
        let (mut a, mut b) = NoiseFramer::insecure_fixed_key_pair();
        let mut wire = BytesMut::new();
        a.encrypt(b"attack at dawn", &mut wire).unwrap();
        wire[5] ^= 0x01;
        let mut out = BytesMut::from(&b"kept"[..]);
        assert!(matches!(
            b.decrypt_next(&mut wire, &mut out),
            Err(NoiseError::Decrypt)
        ));
        assert_eq!(
            &out[..],
            b"kept",
            "output before the bad frame is untouched"
        );
        assert!(matches!(
            b.decrypt_next(&mut wire, &mut out),
            Err(NoiseError::Poisoned)
        ));
        assert_eq!(
            NoiseError::Decrypt.blame(),
            plexus_core::Blame::PeerMisbehaved
        );
    }

    #[test]
    fn frame_shorter_than_a_tag_is_a_decrypt_error() {
        let (_, mut b) = NoiseFramer::insecure_fixed_key_pair();
        let mut wire = BytesMut::from(&[0u8, 3, 1, 2, 3][..]);
        assert!(matches!(
            b.decrypt_next(&mut wire, &mut BytesMut::new()),
            Err(NoiseError::Decrypt)
        ));
    }

    #[test]
    fn receiving_nonce_exhaustion_is_typed() {
        let (mut a, mut b) = NoiseFramer::insecure_fixed_key_pair();
        let mut wire = BytesMut::new();
        a.encrypt(b"x", &mut wire).unwrap();
        b.set_receiving_nonce(u64::MAX);
        let err = b.decrypt_next(&mut wire, &mut BytesMut::new()).unwrap_err();
        assert!(matches!(err, NoiseError::NonceExhausted), "{err}");
        assert_eq!(err.blame(), plexus_core::Blame::Local);
    }

    #[test]
    fn encrypt_frame_rejects_oversized_plaintext_and_short_buffers() {
        let (mut a, _) = NoiseFramer::insecure_fixed_key_pair();
        let mut out = vec![0u8; LEN_PREFIX_LEN + MAX_FRAME_LEN + 1];
        let big = vec![0u8; MAX_PLAINTEXT_LEN + 1];
        assert!(matches!(
            a.encrypt_frame(&big, &mut out),
            Err(NoiseError::BufferSize)
        ));
        assert!(matches!(
            a.encrypt_frame(b"abc", &mut out[..20]),
            Err(NoiseError::BufferSize)
        ));
        assert_eq!(a.encrypt_frame(b"abc", &mut out[..21]).unwrap(), 21);
        assert_eq!(a.sending_nonce(), 1);
    }

    #[test]
    fn fixed_key_pair_is_deterministic() {
        let (mut a1, _) = NoiseFramer::insecure_fixed_key_pair();
        let (mut a2, _) = NoiseFramer::insecure_fixed_key_pair();
        let (mut w1, mut w2) = (BytesMut::new(), BytesMut::new());
        a1.encrypt(b"same", &mut w1).unwrap();
        a2.encrypt(b"same", &mut w2).unwrap();
        assert_eq!(w1, w2);
    }

    const BACKENDS: [CryptoBackend; 2] = [CryptoBackend::Accelerated, CryptoBackend::RustCrypto];

    #[test]
    fn ring_and_snow_framers_make_the_same_bytes_and_interoperate() {
        let data: Vec<u8> = (0..MAX_PLAINTEXT_LEN + 100)
            .map(|i| (i * 7) as u8)
            .collect();
        // Same keys, different cipher code: identical wire bytes, frame after frame.
        let (mut ring_i, _) =
            NoiseFramer::fixed_key_pair_on(CryptoBackend::Accelerated, CryptoBackend::Accelerated);
        let (mut snow_i, _) =
            NoiseFramer::fixed_key_pair_on(CryptoBackend::RustCrypto, CryptoBackend::RustCrypto);
        assert!(matches!(ring_i.cipher, TransportCipher::Ring(_)));
        assert!(matches!(snow_i.cipher, TransportCipher::Snow(_)));
        for round in 0..3 {
            let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
            ring_i.encrypt(&data[round..], &mut a).unwrap();
            snow_i.encrypt(&data[round..], &mut b).unwrap();
            assert_eq!(a, b, "round {round}");
        }
        assert_eq!(ring_i.remote_static(), snow_i.remote_static());
        assert!(ring_i.remote_static().is_some());
        // Every pairing talks both ways.
        for bi in BACKENDS {
            for br in BACKENDS {
                let (mut i, mut r) = NoiseFramer::fixed_key_pair_on(bi, br);
                for round in 0..4 {
                    let (tx, rx) = if round % 2 == 0 {
                        (&mut i, &mut r)
                    } else {
                        (&mut r, &mut i)
                    };
                    let mut wire = BytesMut::new();
                    tx.encrypt(&data, &mut wire).unwrap();
                    let mut out = BytesMut::new();
                    while rx.decrypt_next(&mut wire, &mut out).unwrap().is_some() {}
                    assert_eq!(&out[..], &data[..], "{bi:?} -> {br:?}");
                }
            }
        }
    }

    #[test]
    fn in_place_seal_and_open() {
        for backend in BACKENDS {
            let (mut a, mut b) = NoiseFramer::fixed_key_pair_on(backend, backend);
            let mut frame = vec![0u8; LEN_PREFIX_LEN + 5 + TAG_LEN + 3];
            frame[LEN_PREFIX_LEN..LEN_PREFIX_LEN + 5].copy_from_slice(b"hello");
            let n = a.seal_in_place(&mut frame, 5).unwrap();
            assert_eq!(n, LEN_PREFIX_LEN + 5 + TAG_LEN);
            assert_eq!(frame_len(&frame), Some(n));
            assert_ne!(&frame[2..7], b"hello", "encrypted");
            let body = &mut frame[LEN_PREFIX_LEN..n];
            let m = b.open_in_place(body).unwrap();
            assert_eq!(&body[..m], b"hello");
            // Too little room for the tag, or too much plaintext: refused, nothing consumed.
            let mut short = vec![0u8; LEN_PREFIX_LEN + 5 + TAG_LEN - 1];
            assert!(matches!(
                a.seal_in_place(&mut short, 5),
                Err(NoiseError::BufferSize)
            ));
            let mut big = vec![0u8; LEN_PREFIX_LEN + MAX_FRAME_LEN + 1];
            assert!(matches!(
                a.seal_in_place(&mut big, MAX_PLAINTEXT_LEN + 1),
                Err(NoiseError::BufferSize)
            ));
            assert_eq!(a.sending_nonce(), 1);
            // A body shorter than a tag does not decrypt, and poisons the read side.
            assert!(matches!(
                b.open_in_place(&mut [0u8; TAG_LEN - 1]),
                Err(NoiseError::Decrypt)
            ));
            assert!(matches!(
                b.open_in_place(&mut [0u8; TAG_LEN]),
                Err(NoiseError::Poisoned)
            ));
        }
    }

    #[test]
    fn decrypt_frame_into_a_plaintext_sized_buffer() {
        for backend in BACKENDS {
            let (mut a, mut b) = NoiseFramer::fixed_key_pair_on(backend, backend);
            let mut wire = BytesMut::new();
            a.encrypt(b"exactly", &mut wire).unwrap();
            let mut out = [0u8; 7];
            assert_eq!(
                b.decrypt_frame(&wire[LEN_PREFIX_LEN..], &mut out).unwrap(),
                7
            );
            assert_eq!(&out, b"exactly");
            a.encrypt(b"exactly", &mut wire).unwrap();
            assert!(matches!(
                b.decrypt_frame(&wire[LEN_PREFIX_LEN + 23 + LEN_PREFIX_LEN..], &mut [0u8; 6]),
                Err(NoiseError::BufferSize)
            ));
        }
    }

    #[test]
    fn sending_nonce_exhaustion_is_typed_and_poisons_the_write_side() {
        let (mut a, _) = NoiseFramer::insecure_fixed_key_pair();
        match &mut a.cipher {
            TransportCipher::Ring(t) => t.send_nonce = u64::MAX,
            TransportCipher::Snow(_) => panic!("the default backend runs ring"),
        }
        let mut wire = BytesMut::new();
        assert!(matches!(
            a.encrypt(b"x", &mut wire),
            Err(NoiseError::NonceExhausted)
        ));
        assert!(wire.is_empty());
        assert!(matches!(
            a.encrypt(b"x", &mut wire),
            Err(NoiseError::Poisoned)
        ));
    }

    #[test]
    fn handshake_frames() {
        let mut out = BytesMut::new();
        write_frame(b"abc", &mut out).unwrap();
        write_frame(b"", &mut out).unwrap();
        assert_eq!(&out[..], &[0, 3, b'a', b'b', b'c', 0, 0]);
        assert!(matches!(
            write_frame(&vec![0; MAX_FRAME_LEN + 1], &mut out),
            Err(NoiseError::BufferSize)
        ));
        let mut partial = BytesMut::from(&out[..4]);
        assert_eq!(read_frame(&mut partial), None);
        assert_eq!(partial.len(), 4);
        assert_eq!(read_frame(&mut out).as_deref(), Some(&b"abc"[..]));
        assert_eq!(read_frame(&mut out).as_deref(), Some(&b""[..]));
        assert!(out.is_empty());
    }
}
