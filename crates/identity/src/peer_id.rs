//! Peer ids: the multihash of an encoded public key.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use sha2::Digest as _;

use crate::error::ParseError;
use crate::keys::{Keypair, PublicKey};

/// Multihash code of the identity "hash" (the digest is the input itself).
pub const MULTIHASH_IDENTITY: u64 = 0x00;
/// Multihash code of sha2-256.
pub const MULTIHASH_SHA2_256: u64 = 0x12;
/// Multicodec of a libp2p public key, the only codec accepted in a peer-id CID.
pub const MULTICODEC_LIBP2P_KEY: u64 = 0x72;
/// An encoded public key up to this length is inlined (identity multihash); longer keys are
/// hashed with sha2-256 (peer-ids.md).
pub const MAX_INLINE_KEY_LENGTH: usize = 42;
/// Longest multihash a [`PeerId`] can hold: code (1) + length (1) + 42-byte identity digest.
pub const MAX_MULTIHASH_LENGTH: usize = 2 + MAX_INLINE_KEY_LENGTH;
/// Longest peer-id string accepted by [`PeerId::from_str`]. The longest valid form is the
/// base32 CID of a 44-byte multihash: `b` + ceil(46 * 8 / 5) = 75 characters; base58 of 44
/// bytes is at most 61. Longer input is rejected before decoding (base58 is quadratic).
pub const MAX_PEER_ID_STRING_LENGTH: usize = 80;

const SHA2_256_LEN: usize = 32;
const CID_VERSION_1: u64 = 1;

/// The identity of a peer: the multihash (identity or sha2-256) of its encoded public key.
///
/// Stored inline, so it is `Copy`. Equality, ordering and hashing are over the multihash bytes.
#[derive(Clone, Copy)]
pub struct PeerId {
    len: u8,
    buf: [u8; MAX_MULTIHASH_LENGTH],
}

impl PeerId {
    /// The peer id of `key`: identity multihash of the encoded key if it is at most 42 bytes
    /// (both supported key types), sha2-256 otherwise.
    pub fn from_public_key(key: &PublicKey) -> PeerId {
        let encoded = key.encode_protobuf();
        if encoded.len() <= MAX_INLINE_KEY_LENGTH {
            Self::from_parts(MULTIHASH_IDENTITY as u8, &encoded)
        } else {
            Self::from_parts(MULTIHASH_SHA2_256 as u8, &sha2::Sha256::digest(&encoded))
        }
    }

    /// Build from a one-byte code and a digest of at most 42 bytes (one-byte length varint).
    fn from_parts(code: u8, digest: &[u8]) -> PeerId {
        debug_assert!(digest.len() <= MAX_INLINE_KEY_LENGTH);
        let mut buf = [0u8; MAX_MULTIHASH_LENGTH];
        buf[0] = code;
        buf[1] = digest.len() as u8;
        buf[2..2 + digest.len()].copy_from_slice(digest);
        PeerId {
            len: (2 + digest.len()) as u8,
            buf,
        }
    }

    /// Parse multihash bytes. Accepts identity (digest ≤ 42 bytes) and sha2-256 (32 bytes);
    /// varints must be minimal and the input must end exactly after the digest.
    pub fn from_bytes(bytes: &[u8]) -> Result<PeerId, ParseError> {
        if bytes.is_empty() {
            return Err(ParseError::Empty);
        }
        let (code, rest) = unsigned_varint::decode::u64(bytes).map_err(|_| ParseError::Varint)?;
        let (len, rest) = unsigned_varint::decode::u64(rest).map_err(|_| ParseError::Varint)?;
        let ok_len = match code {
            MULTIHASH_IDENTITY => len <= MAX_INLINE_KEY_LENGTH as u64,
            MULTIHASH_SHA2_256 => len == SHA2_256_LEN as u64,
            other => return Err(ParseError::UnsupportedMultihash(other)),
        };
        if !ok_len {
            return Err(ParseError::InvalidDigestLength { code, len });
        }
        if rest.len() != len as usize {
            return Err(ParseError::LengthMismatch {
                declared: len as usize,
                actual: rest.len(),
            });
        }
        Ok(Self::from_parts(code as u8, rest))
    }

    /// The multihash bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    /// The multihash bytes, owned.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }

    /// Legacy text form: base58btc of the multihash, no multibase prefix
    /// (`12D3KooW…` ed25519, `16Uiu2HA…` secp256k1, `Qm…` sha2-256).
    pub fn to_base58(&self) -> String {
        bs58::encode(self.as_bytes()).into_string()
    }

    /// CIDv1 text form: `b` + base32 lower, unpadded, of `0x01 ‖ 0x72 ‖ multihash`.
    pub fn to_cid_string(&self) -> String {
        let mut cid = Vec::with_capacity(2 + self.len as usize);
        cid.push(CID_VERSION_1 as u8);
        cid.push(MULTICODEC_LIBP2P_KEY as u8);
        cid.extend_from_slice(self.as_bytes());
        let mut s = String::from("b");
        s.push_str(
            &data_encoding::BASE32_NOPAD
                .encode(&cid)
                .to_ascii_lowercase(),
        );
        s
    }

    /// The public key embedded in an identity multihash, if it decodes as a supported key.
    /// `None` for sha2-256 peer ids (the key must be learned elsewhere).
    pub fn as_public_key(&self) -> Option<PublicKey> {
        if self.buf[0] != MULTIHASH_IDENTITY as u8 {
            return None;
        }
        PublicKey::try_decode_protobuf(&self.as_bytes()[2..]).ok()
    }

    /// A random peer id (identity-hashed fresh ed25519 key). For tests.
    pub fn random() -> PeerId {
        Keypair::generate_ed25519().public().to_peer_id()
    }

    /// The multihash code (0x00 identity or 0x12 sha2-256).
    pub fn multihash_code(&self) -> u64 {
        u64::from(self.buf[0])
    }
}

impl PartialEq for PeerId {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for PeerId {}

impl Hash for PeerId {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().hash(state);
    }
}

impl PartialOrd for PeerId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PeerId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PeerId").field(&self.to_base58()).finish()
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base58())
    }
}

impl From<PublicKey> for PeerId {
    fn from(key: PublicKey) -> PeerId {
        PeerId::from_public_key(&key)
    }
}

impl From<&PublicKey> for PeerId {
    fn from(key: &PublicKey) -> PeerId {
        PeerId::from_public_key(key)
    }
}

impl TryFrom<&[u8]> for PeerId {
    type Error = ParseError;
    fn try_from(bytes: &[u8]) -> Result<PeerId, ParseError> {
        PeerId::from_bytes(bytes)
    }
}

impl FromStr for PeerId {
    type Err = ParseError;

    /// Parse the legacy base58btc form (`1…` identity, `Qm…` sha2-256) or a CIDv1 in multibase
    /// base32 lower (`b…`) or base58btc (`z…`) whose codec is `libp2p-key` (0x72).
    fn from_str(s: &str) -> Result<PeerId, ParseError> {
        if s.is_empty() {
            return Err(ParseError::Empty);
        }
        if s.len() > MAX_PEER_ID_STRING_LENGTH {
            return Err(ParseError::TooLong(s.len()));
        }
        if s.starts_with('1') || s.starts_with("Qm") {
            return PeerId::from_bytes(&decode_base58(s)?);
        }
        let mut chars = s.chars();
        let prefix = chars.next().ok_or(ParseError::Empty)?;
        let body = chars.as_str();
        let cid = match prefix {
            'b' => {
                // Multibase `b` is lower case only; the decoder below is the upper-case alphabet.
                if !body.bytes().all(|c| matches!(c, b'a'..=b'z' | b'2'..=b'7')) {
                    return Err(ParseError::Base32);
                }
                data_encoding::BASE32_NOPAD
                    .decode(body.to_ascii_uppercase().as_bytes())
                    .map_err(|_| ParseError::Base32)?
            }
            'z' => decode_base58(body)?,
            other => return Err(ParseError::UnsupportedMultibase(other)),
        };
        let (version, rest) = unsigned_varint::decode::u64(&cid).map_err(|_| ParseError::Varint)?;
        if version != CID_VERSION_1 {
            return Err(ParseError::UnsupportedCidVersion(version));
        }
        let (codec, mh) = unsigned_varint::decode::u64(rest).map_err(|_| ParseError::Varint)?;
        if codec != MULTICODEC_LIBP2P_KEY {
            return Err(ParseError::WrongCodec(codec));
        }
        PeerId::from_bytes(mh)
    }
}

/// Decode base58btc into a bounded buffer.
fn decode_base58(s: &str) -> Result<Vec<u8>, ParseError> {
    // CID = 2 header bytes + multihash.
    let mut buf = [0u8; MAX_MULTIHASH_LENGTH + 2];
    let n = bs58::decode(s)
        .onto(&mut buf[..])
        .map_err(|_| ParseError::Base58)?;
    Ok(buf[..n].to_vec())
}
