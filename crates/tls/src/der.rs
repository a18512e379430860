//! The few DER rules this crate needs by hand: the `SignedKey` structure carried in the libp2p
//! extension, and slicing an `AlgorithmIdentifier` out of already-parsed structures.
//!
//! Decoding is strict DER: single-byte tags, definite lengths in their shortest form, primitive
//! OCTET STRINGs, no trailing bytes.

/// Universal tag of a SEQUENCE (constructed).
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
/// Universal tag of a primitive OCTET STRING.
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;

/// Read one TLV from the front of `input`: `(tag, contents, rest)`.
///
/// `None` for anything that is not strict DER: a multi-byte tag, an indefinite length, a long
/// form where the short form fits, leading zero length bytes, or contents running past the end.
pub(crate) fn read_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, input) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, input) = input.split_first()?;
    let (len, input) = if first < 0x80 {
        (usize::from(first), input)
    } else {
        let n = usize::from(first & 0x7f);
        // 0x80 is the indefinite form; more than 4 length bytes is beyond any certificate.
        if n == 0 || n > 4 || input.len() < n {
            return None;
        }
        let (bytes, input) = input.split_at(n);
        if bytes[0] == 0 {
            return None;
        }
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        if len < 0x80 {
            return None;
        }
        (len, input)
    };
    if input.len() < len {
        return None;
    }
    let (contents, rest) = input.split_at(len);
    Some((tag, contents, rest))
}

/// Read one TLV that must carry `tag`: `(contents, rest)`.
pub(crate) fn expect_tlv(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    match read_tlv(input)? {
        (t, contents, rest) if t == tag => Some((contents, rest)),
        _ => None,
    }
}

/// Append a DER length.
fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
        return;
    }
    let bytes = len.to_be_bytes();
    let skip = bytes.iter().take_while(|&&b| b == 0).count();
    out.push(0x80 | (bytes.len() - skip) as u8);
    out.extend_from_slice(&bytes[skip..]);
}

/// Append a TLV.
fn push_tlv(out: &mut Vec<u8>, tag: u8, contents: &[u8]) {
    out.push(tag);
    push_len(out, contents.len());
    out.extend_from_slice(contents);
}

/// `SignedKey ::= SEQUENCE { publicKey OCTET STRING, signature OCTET STRING }`, DER-encoded.
pub(crate) fn encode_signed_key(public_key: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut inner = Vec::with_capacity(public_key.len() + signature.len() + 8);
    push_tlv(&mut inner, TAG_OCTET_STRING, public_key);
    push_tlv(&mut inner, TAG_OCTET_STRING, signature);
    let mut out = Vec::with_capacity(inner.len() + 4);
    push_tlv(&mut out, TAG_SEQUENCE, &inner);
    out
}

/// Decode a `SignedKey`: `(publicKey, signature)`, both borrowed from `input`. `None` unless
/// `input` is exactly one strict-DER `SignedKey`.
pub(crate) fn decode_signed_key(input: &[u8]) -> Option<(&[u8], &[u8])> {
    let (seq, rest) = expect_tlv(input, TAG_SEQUENCE)?;
    if !rest.is_empty() {
        return None;
    }
    let (public_key, seq) = expect_tlv(seq, TAG_OCTET_STRING)?;
    let (signature, seq) = expect_tlv(seq, TAG_OCTET_STRING)?;
    if !seq.is_empty() {
        return None;
    }
    Some((public_key, signature))
}

/// The contents of the `AlgorithmIdentifier` at the front of a `SubjectPublicKeyInfo`'s DER.
pub(crate) fn spki_algorithm(spki: &[u8]) -> Option<&[u8]> {
    let (spki, _) = expect_tlv(spki, TAG_SEQUENCE)?;
    let (alg, _) = expect_tlv(spki, TAG_SEQUENCE)?;
    Some(alg)
}

/// Universal tag of a primitive BIT STRING.
const TAG_BIT_STRING: u8 = 0x03;

/// The contents of a certificate's outer `signatureAlgorithm`, after checking the unsigned
/// envelope strictly: `Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm
/// SEQUENCE, signatureValue BIT STRING }` with exactly these universal tags, nothing after the
/// three, nothing after the certificate. (The parser is laxer with tag classes; everything
/// inside `tbsCertificate` is covered by the signature.)
pub(crate) fn certificate_signature_algorithm(cert: &[u8]) -> Option<&[u8]> {
    let (cert, rest) = expect_tlv(cert, TAG_SEQUENCE)?;
    let (_tbs, cert) = expect_tlv(cert, TAG_SEQUENCE)?;
    let (alg, cert) = expect_tlv(cert, TAG_SEQUENCE)?;
    let (_sig, cert) = expect_tlv(cert, TAG_BIT_STRING)?;
    if !cert.is_empty() || !rest.is_empty() {
        return None;
    }
    Some(alg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lengths_use_the_shortest_form() {
        let mut out = Vec::new();
        push_len(&mut out, 0x7f);
        push_len(&mut out, 0x80);
        push_len(&mut out, 0x1234);
        assert_eq!(out, [0x7f, 0x81, 0x80, 0x82, 0x12, 0x34]);
    }

    #[test]
    fn signed_key_known_encoding() {
        assert_eq!(
            encode_signed_key(&[1, 2], &[3]),
            [0x30, 0x07, 0x04, 0x02, 1, 2, 0x04, 0x01, 3]
        );
    }

    #[test]
    fn rejects_non_der() {
        let good = [0x30, 0x07, 0x04, 0x02, 1, 2, 0x04, 0x01, 3];
        assert_eq!(decode_signed_key(&good), Some((&[1u8, 2][..], &[3u8][..])));
        // trailing byte after the sequence
        assert_eq!(decode_signed_key(&[&good[..], &[0]].concat()), None);
        // long form for a short length
        assert_eq!(
            decode_signed_key(&[0x30, 0x81, 0x07, 0x04, 0x02, 1, 2, 0x04, 0x01, 3]),
            None
        );
        // indefinite length
        assert_eq!(
            decode_signed_key(&[0x30, 0x80, 0x04, 0x02, 1, 2, 0x04, 0x01, 3, 0, 0]),
            None
        );
        // constructed OCTET STRING
        assert_eq!(
            decode_signed_key(&[0x30, 0x07, 0x24, 0x02, 1, 2, 0x04, 0x01, 3]),
            None
        );
        // a third element
        assert_eq!(
            decode_signed_key(&[0x30, 0x09, 0x04, 0x02, 1, 2, 0x04, 0x01, 3, 0x04, 0x00]),
            None
        );
        // one element only
        assert_eq!(decode_signed_key(&[0x30, 0x04, 0x04, 0x02, 1, 2]), None);
        // length past the end
        assert_eq!(decode_signed_key(&[0x30, 0x08, 0x04, 0x02, 1, 2]), None);
        // leading zero in a long-form length
        assert_eq!(read_tlv(&[0x04, 0x82, 0x00, 0x80]), None);
        // multi-byte tag
        assert_eq!(read_tlv(&[0x1f, 0x01, 0x00]), None);
    }

    proptest! {
        #[test]
        fn signed_key_roundtrip(pk in proptest::collection::vec(any::<u8>(), 0..600),
                                sig in proptest::collection::vec(any::<u8>(), 0..300)) {
            let der = encode_signed_key(&pk, &sig);
            prop_assert_eq!(decode_signed_key(&der), Some((&pk[..], &sig[..])));
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Some((pk, sig)) = decode_signed_key(&bytes) {
                // whatever decodes is canonical: it re-encodes to the input
                prop_assert_eq!(encode_signed_key(pk, sig), bytes);
            }
        }
    }
}
