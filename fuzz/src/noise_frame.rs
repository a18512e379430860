//! Fuzz body for `noise_frame`: arbitrary bytes into the Noise transport framer.
//!
//! The framer is keyed deterministically (`NoiseFramer::insecure_fixed_key_pair`, a fixed XX
//! handshake), so seeds holding frames encrypted by its initiator decrypt, and mutations of
//! them explore the authenticated path as well as the rejecting one.
//!
//! Input: first byte selects the mode.
//! - even: the rest is ciphertext fed to `decrypt_next` until it needs more input or fails.
//! - odd: the rest is plaintext, encrypted in chunks sized by its own bytes, then decrypted
//!   again; the round trip must be exact.

use bytes::BytesMut;
use plexus_noise::{LEN_PREFIX_LEN, MAX_PLAINTEXT_LEN, NoiseFramer, TAG_LEN};

/// Run one input.
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (mut tx, mut rx) = NoiseFramer::insecure_fixed_key_pair();
    let mut out = BytesMut::new();
    if mode & 1 == 0 {
        let mut input = BytesMut::from(rest);
        let mut frames = 0usize;
        loop {
            let before = input.len();
            match rx.decrypt_next(&mut input, &mut out) {
                Ok(Some(n)) => {
                    frames += 1;
                    // A frame is consumed whole and yields its length minus prefix and tag.
                    assert_eq!(before - input.len(), n + LEN_PREFIX_LEN + TAG_LEN);
                    assert!(n <= MAX_PLAINTEXT_LEN);
                }
                Ok(None) => {
                    assert_eq!(input.len(), before, "an incomplete frame is not consumed");
                    break;
                }
                Err(_) => {
                    // A failed read side stays failed.
                    assert!(rx.decrypt_next(&mut input, &mut out).is_err());
                    break;
                }
            }
        }
        assert!(out.len() <= rest.len());
        assert!(frames <= rest.len() / (LEN_PREFIX_LEN + TAG_LEN));
    } else {
        let mut wire = BytesMut::new();
        let mut off = 0;
        let mut i = 0;
        while off < rest.len() {
            // Chunk sizes from the data itself: small, or up to several frames.
            let len = (usize::from(rest[i % rest.len()]) * 613 + 1).min(rest.len() - off);
            tx.encrypt(&rest[off..off + len], &mut wire)
                .expect("encrypt");
            off += len;
            i += 1;
        }
        while rx
            .decrypt_next(&mut wire, &mut out)
            .expect("own frames decrypt")
            .is_some()
        {}
        assert!(wire.is_empty());
        assert_eq!(&out[..], rest);
    }
}
