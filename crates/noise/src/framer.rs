//! Sans-IO framing: handshake frames and the transport framer.

use bytes::{Buf, BytesMut};

use crate::config::{CryptoBackend, noise_params};
use crate::{LEN_PREFIX_LEN, MAX_FRAME_LEN, MAX_PLAINTEXT_LEN, NoiseError, TAG_LEN};

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
/// frames and decrypts whole frames, over snow's `TransportState`. Sans-IO.
///
/// Each frame carries at most [`MAX_PLAINTEXT_LEN`] plaintext bytes, i.e. at most
/// [`MAX_FRAME_LEN`] bytes of ciphertext after its two-byte length. Zero-length frames (a tag
/// only) are legal both ways.
///
/// A failure on a direction (a frame that does not decrypt, an exhausted nonce) poisons that
/// direction: every later call on it returns [`NoiseError::Poisoned`], since the Noise
/// protocol has no recovery. Drop the connection.
pub struct NoiseFramer {
    state: snow::TransportState,
    read_failed: bool,
    write_failed: bool,
}

impl std::fmt::Debug for NoiseFramer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseFramer")
            .field("sending_nonce", &self.state.sending_nonce())
            .field("receiving_nonce", &self.state.receiving_nonce())
            .field("read_failed", &self.read_failed)
            .field("write_failed", &self.write_failed)
            .finish()
    }
}

impl NoiseFramer {
    pub(crate) fn new(state: snow::TransportState) -> Self {
        NoiseFramer {
            state,
            read_failed: false,
            write_failed: false,
        }
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
            out.resize(start + LEN_PREFIX_LEN + chunk.len() + TAG_LEN, 0);
            if let Err(e) = self.encrypt_frame(chunk, &mut out[start..]) {
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
    /// `2 + plaintext.len() + 16` bytes. Returns the bytes written.
    ///
    /// # Errors
    /// [`NoiseError::BufferSize`] for an oversized plaintext or a short `out`,
    /// [`NoiseError::NonceExhausted`], [`NoiseError::Poisoned`].
    pub fn encrypt_frame(&mut self, plaintext: &[u8], out: &mut [u8]) -> Result<usize, NoiseError> {
        if self.write_failed {
            return Err(NoiseError::Poisoned);
        }
        if plaintext.len() > MAX_PLAINTEXT_LEN
            || out.len() < LEN_PREFIX_LEN + plaintext.len() + TAG_LEN
        {
            return Err(NoiseError::BufferSize);
        }
        let (prefix, body) = out.split_at_mut(LEN_PREFIX_LEN);
        let n = self.state.write_message(plaintext, body).map_err(|e| {
            self.write_failed = true;
            NoiseError::from_snow_write(e, "encrypt")
        })?;
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
        out.resize(start + total - LEN_PREFIX_LEN, 0);
        match self.decrypt_frame(&input[LEN_PREFIX_LEN..total], &mut out[start..]) {
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
    /// `out` and return the plaintext length. `out` needs `ciphertext.len() - 16` bytes; give it
    /// `ciphertext.len()` to let the ring backend decrypt in place without a scratch copy.
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
        self.state.read_message(ciphertext, out).map_err(|e| {
            self.read_failed = true;
            NoiseError::from_snow_read(e, "decrypt")
        })
    }

    /// The remote's Noise static key.
    pub fn remote_static(&self) -> Option<&[u8]> {
        self.state.get_remote_static()
    }

    /// Frames encrypted so far (the next sending nonce).
    pub fn sending_nonce(&self) -> u64 {
        self.state.sending_nonce()
    }

    /// Frames decrypted so far (the next receiving nonce).
    pub fn receiving_nonce(&self) -> u64 {
        self.state.receiving_nonce()
    }

    /// **Insecure, for tests and fuzzing only.** An (initiator, responder) pair of framers from
    /// an XX handshake with fixed static and ephemeral keys, so that their keys (and hence
    /// their frames) are the same in every run. Never use it for real traffic.
    #[doc(hidden)]
    pub fn insecure_fixed_key_pair() -> (NoiseFramer, NoiseFramer) {
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
            NoiseFramer::new(i.into_transport_mode().expect("handshake done")),
            NoiseFramer::new(r.into_transport_mode().expect("handshake done")),
        )
    }

    #[cfg(test)]
    pub(crate) fn set_receiving_nonce(&mut self, nonce: u64) {
        self.state.set_receiving_nonce(nonce);
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
