//! Keypairs and public keys (secp256k1, ed25519).

use std::fmt;
use std::io;
use std::path::Path;

use ed25519_dalek::Signer as _;
use ed25519_dalek::Verifier as _;
use k256::ecdsa::signature::hazmat::PrehashSigner as _;
use k256::ecdsa::signature::hazmat::PrehashVerifier as _;
use sha2::Digest as _;
use zeroize::{Zeroize, Zeroizing};

use crate::error::{DecodingError, KeyFileError};
use crate::peer_id::PeerId;
use crate::proto::KeyMessage;

/// Length of a compressed SEC1 secp256k1 public key (`02|03 ‖ X`).
const SECP256K1_PUBLIC_LEN: usize = 33;
/// Length of a secp256k1 secret scalar.
const SECP256K1_SECRET_LEN: usize = 32;
/// Length of an ed25519 public key.
const ED25519_PUBLIC_LEN: usize = 32;
/// Length of an ed25519 private key's protobuf data: `secret ‖ public`.
const ED25519_KEYPAIR_LEN: usize = 64;
/// Legacy ed25519 private key data: `secret ‖ public ‖ public`.
const ED25519_LEGACY_KEYPAIR_LEN: usize = 96;
/// Length of an ed25519 signature.
const ED25519_SIGNATURE_LEN: usize = 64;
/// Longest DER-encoded secp256k1 ECDSA signature (`30 44 02 21 r33 02 21 s33`).
const SECP256K1_MAX_DER_SIGNATURE_LEN: usize = 72;
/// A key file larger than this cannot hold a supported private key protobuf
/// (largest: legacy ed25519, 4 + 96 bytes); refuse to read more.
const MAX_KEY_FILE_LEN: u64 = 1024;

/// The key types of the libp2p key protobuf that plexus implements.
///
/// RSA (0) and ECDSA (3) exist in the spec but decode to
/// [`DecodingError::UnsupportedKeyType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyType {
    /// Ed25519 (protobuf value 1).
    Ed25519,
    /// Secp256k1 (protobuf value 2), the Ethereum node key.
    Secp256k1,
}

impl KeyType {
    /// The protobuf enum value.
    pub fn code(self) -> i32 {
        match self {
            KeyType::Ed25519 => 1,
            KeyType::Secp256k1 => 2,
        }
    }

    /// Map a protobuf enum value to a supported key type.
    pub fn from_code(code: i32) -> Result<KeyType, DecodingError> {
        match code {
            1 => Ok(KeyType::Ed25519),
            2 => Ok(KeyType::Secp256k1),
            0 => Err(DecodingError::UnsupportedKeyType { code, name: "RSA" }),
            3 => Err(DecodingError::UnsupportedKeyType {
                code,
                name: "ECDSA",
            }),
            other => Err(DecodingError::UnknownKeyType(other)),
        }
    }
}

#[derive(Clone)]
enum KeypairInner {
    Ed25519(ed25519_dalek::SigningKey),
    Secp256k1(k256::ecdsa::SigningKey),
}

/// A private key with its public key. Secrets are zeroized on drop; `Debug` prints only the
/// key type and the public key.
#[derive(Clone)]
pub struct Keypair(KeypairInner);

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keypair")
            .field("key_type", &self.key_type())
            .field("public", &self.public())
            .finish_non_exhaustive()
    }
}

impl Keypair {
    /// Generate a fresh secp256k1 keypair from the OS-seeded thread RNG.
    pub fn generate_secp256k1() -> Keypair {
        loop {
            let mut secret = Zeroizing::new([0u8; SECP256K1_SECRET_LEN]);
            rand::fill(&mut secret[..]);
            // Fails only for 0 or ≥ n, probability ~2^-128: draw again.
            if let Ok(kp) = Keypair::secp256k1_from_bytes(*secret) {
                return kp;
            }
        }
    }

    /// Generate a fresh ed25519 keypair from the OS-seeded thread RNG.
    pub fn generate_ed25519() -> Keypair {
        let mut secret = Zeroizing::new([0u8; 32]);
        rand::fill(&mut secret[..]);
        Keypair(KeypairInner::Ed25519(
            ed25519_dalek::SigningKey::from_bytes(&secret),
        ))
    }

    /// A secp256k1 keypair from its 32-byte big-endian secret scalar (the format of an
    /// Ethereum node key). This function's copy of the secret is zeroized; the caller's
    /// array (arrays are `Copy`) is the caller's to wipe.
    ///
    /// # Errors
    /// [`DecodingError::InvalidKey`] if the scalar is 0 or not below the curve order.
    pub fn secp256k1_from_bytes(mut secret: [u8; 32]) -> Result<Keypair, DecodingError> {
        let key = k256::ecdsa::SigningKey::from_slice(&secret);
        secret.zeroize();
        key.map(|k| Keypair(KeypairInner::Secp256k1(k)))
            .map_err(|_| DecodingError::InvalidKey(KeyType::Secp256k1))
    }

    /// An ed25519 keypair from its 32-byte secret seed. This function's copy is zeroized.
    ///
    /// Every 32-byte string is a valid seed; the `Result` keeps the signature uniform.
    pub fn ed25519_from_bytes(mut secret: [u8; 32]) -> Result<Keypair, DecodingError> {
        let key = ed25519_dalek::SigningKey::from_bytes(&secret);
        secret.zeroize();
        Ok(Keypair(KeypairInner::Ed25519(key)))
    }

    /// The key type.
    pub fn key_type(&self) -> KeyType {
        match &self.0 {
            KeypairInner::Ed25519(_) => KeyType::Ed25519,
            KeypairInner::Secp256k1(_) => KeyType::Secp256k1,
        }
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        match &self.0 {
            KeypairInner::Ed25519(k) => PublicKey(PublicKeyInner::Ed25519(k.verifying_key())),
            KeypairInner::Secp256k1(k) => PublicKey(PublicKeyInner::Secp256k1(*k.verifying_key())),
        }
    }

    /// Sign `msg`.
    ///
    /// - ed25519: the 64-byte RFC 8032 signature of `msg`.
    /// - secp256k1: ECDSA (RFC 6979 deterministic nonce) over SHA-256(`msg`), DER-encoded,
    ///   always low-S.
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        match &self.0 {
            KeypairInner::Ed25519(k) => k.sign(msg).to_bytes().to_vec(),
            KeypairInner::Secp256k1(k) => {
                let digest = sha2::Sha256::digest(msg);
                let sig: k256::ecdsa::Signature = k
                    .sign_prehash(&digest)
                    .expect("signing a 32-byte prehash with a valid key cannot fail");
                // k256 already emits low-S; normalize anyway so the contract does not depend on it.
                let sig = sig.normalize_s();
                sig.to_der().as_bytes().to_vec()
            }
        }
    }

    /// The `PrivateKey` protobuf encoding (deterministic). For ed25519 the data is the 64-byte
    /// `secret ‖ public` form. The result holds the secret: zeroize it when done.
    pub fn to_protobuf_encoding(&self) -> Vec<u8> {
        let data = match &self.0 {
            KeypairInner::Ed25519(k) => Zeroizing::new(k.to_keypair_bytes()).to_vec(),
            KeypairInner::Secp256k1(k) => {
                let mut bytes = k.to_bytes();
                let v = bytes.to_vec();
                bytes.zeroize();
                v
            }
        };
        // `KeyMessage` zeroizes `data` when dropped.
        let msg = KeyMessage {
            key_type: self.key_type().code(),
            data,
        };
        msg.encode()
    }

    /// Decode a `PrivateKey` protobuf (canonical encoding only).
    ///
    /// Ed25519 data must be 64 bytes `secret ‖ public` with the public key matching the secret;
    /// the legacy 96-byte `secret ‖ public ‖ public` form is accepted only if both copies match.
    pub fn from_protobuf_encoding(bytes: &[u8]) -> Result<Keypair, DecodingError> {
        let msg = KeyMessage::decode_canonical(bytes)?;
        let key_type = KeyType::from_code(msg.key_type)?;
        let data = &msg.data;
        match key_type {
            KeyType::Secp256k1 => {
                let secret: [u8; SECP256K1_SECRET_LEN] =
                    data.as_slice()
                        .try_into()
                        .map_err(|_| DecodingError::InvalidLength {
                            key_type,
                            expected: SECP256K1_SECRET_LEN,
                            actual: data.len(),
                        })?;
                Keypair::secp256k1_from_bytes(secret)
            }
            KeyType::Ed25519 => {
                let pair = match data.len() {
                    ED25519_KEYPAIR_LEN => &data[..],
                    ED25519_LEGACY_KEYPAIR_LEN => {
                        if data[32..64] != data[64..96] {
                            return Err(DecodingError::Ed25519PublicMismatch);
                        }
                        &data[..64]
                    }
                    actual => {
                        return Err(DecodingError::InvalidLength {
                            key_type,
                            expected: ED25519_KEYPAIR_LEN,
                            actual,
                        });
                    }
                };
                let mut buf = Zeroizing::new([0u8; ED25519_KEYPAIR_LEN]);
                buf.copy_from_slice(pair);
                let key = ed25519_dalek::SigningKey::from_keypair_bytes(&buf)
                    .map_err(|_| DecodingError::Ed25519PublicMismatch)?;
                Ok(Keypair(KeypairInner::Ed25519(key)))
            }
        }
    }

    /// Write the `PrivateKey` protobuf to `path` (created or truncated; mode 0600 on unix).
    pub fn save(&self, path: &Path) -> io::Result<()> {
        use std::io::Write as _;
        let bytes = Zeroizing::new(self.to_protobuf_encoding());
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            opts.mode(0o600);
        }
        let mut file = opts.open(path)?;
        // `mode` applies only when the file is created: tighten an existing file too.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        file.write_all(&bytes)?;
        file.sync_all()
    }

    /// Read a key file written by [`Keypair::save`] (a `PrivateKey` protobuf).
    pub fn load(path: &Path) -> Result<Keypair, KeyFileError> {
        use std::io::Read as _;
        let file = std::fs::File::open(path)?;
        let len = file.metadata()?.len();
        if len > MAX_KEY_FILE_LEN {
            return Err(KeyFileError::TooLarge(len));
        }
        let mut bytes = Zeroizing::new(Vec::with_capacity(len as usize));
        file.take(MAX_KEY_FILE_LEN + 1).read_to_end(&mut bytes)?;
        if bytes.len() as u64 > MAX_KEY_FILE_LEN {
            return Err(KeyFileError::TooLarge(bytes.len() as u64));
        }
        Ok(Keypair::from_protobuf_encoding(&bytes)?)
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PublicKeyInner {
    Ed25519(ed25519_dalek::VerifyingKey),
    Secp256k1(k256::ecdsa::VerifyingKey),
}

/// A public key (ed25519 or secp256k1).
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey(PublicKeyInner);

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, raw) = match &self.0 {
            PublicKeyInner::Ed25519(_) => ("Ed25519", self.raw_bytes()),
            PublicKeyInner::Secp256k1(_) => ("Secp256k1", self.raw_bytes()),
        };
        write!(f, "PublicKey::{name}(")?;
        for b in raw {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

impl PublicKey {
    /// The key type.
    pub fn key_type(&self) -> KeyType {
        match &self.0 {
            PublicKeyInner::Ed25519(_) => KeyType::Ed25519,
            PublicKeyInner::Secp256k1(_) => KeyType::Secp256k1,
        }
    }

    /// The raw key bytes as carried in the protobuf `Data` field: 32 bytes (ed25519) or
    /// 33 bytes compressed SEC1 (secp256k1).
    pub fn raw_bytes(&self) -> Vec<u8> {
        match &self.0 {
            PublicKeyInner::Ed25519(k) => k.to_bytes().to_vec(),
            PublicKeyInner::Secp256k1(k) => k.to_sec1_point(true).as_bytes().to_vec(),
        }
    }

    /// A public key from its raw bytes (see [`PublicKey::raw_bytes`]).
    ///
    /// # Errors
    /// Wrong length, or bytes that are not a valid curve point.
    pub fn from_raw_bytes(key_type: KeyType, data: &[u8]) -> Result<PublicKey, DecodingError> {
        match key_type {
            KeyType::Ed25519 => {
                let raw: &[u8; ED25519_PUBLIC_LEN] =
                    data.try_into().map_err(|_| DecodingError::InvalidLength {
                        key_type,
                        expected: ED25519_PUBLIC_LEN,
                        actual: data.len(),
                    })?;
                ed25519_dalek::VerifyingKey::from_bytes(raw)
                    .map(|k| PublicKey(PublicKeyInner::Ed25519(k)))
                    .map_err(|_| DecodingError::InvalidKey(key_type))
            }
            KeyType::Secp256k1 => {
                if data.len() != SECP256K1_PUBLIC_LEN {
                    return Err(DecodingError::InvalidLength {
                        key_type,
                        expected: SECP256K1_PUBLIC_LEN,
                        actual: data.len(),
                    });
                }
                // Only the compressed form (02/03 prefix) is valid in the protobuf.
                if data[0] != 0x02 && data[0] != 0x03 {
                    return Err(DecodingError::InvalidKey(key_type));
                }
                k256::ecdsa::VerifyingKey::from_sec1_bytes(data)
                    .map(|k| PublicKey(PublicKeyInner::Secp256k1(k)))
                    .map_err(|_| DecodingError::InvalidKey(key_type))
            }
        }
    }

    /// The `PublicKey` protobuf encoding (deterministic): `08 <type> 12 <len> <raw key>`.
    pub fn encode_protobuf(&self) -> Vec<u8> {
        KeyMessage {
            key_type: self.key_type().code(),
            data: self.raw_bytes(),
        }
        .encode()
    }

    /// Decode a `PublicKey` protobuf. Only the canonical encoding of a supported, valid key is
    /// accepted.
    pub fn try_decode_protobuf(bytes: &[u8]) -> Result<PublicKey, DecodingError> {
        let msg = KeyMessage::decode_canonical(bytes)?;
        let key_type = KeyType::from_code(msg.key_type)?;
        PublicKey::from_raw_bytes(key_type, &msg.data)
    }

    /// Verify `sig` over `msg`. Never panics; any malformed signature is simply `false`.
    ///
    /// - ed25519: RFC 8032 verification (cofactorless, canonical `S` required).
    /// - secp256k1: `sig` must be strict DER (at most 72 bytes). High-S signatures are
    ///   normalized before verification, so the malleated twin of a valid signature verifies
    ///   too. go-libp2p accepts high-S; rust-libp2p (libp2p-identity 0.3, k256) rejects it.
    ///   We accept: no libp2p protocol uses a signature as an identifier, and honest signers
    ///   emit low-S anyway.
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        match &self.0 {
            PublicKeyInner::Ed25519(k) => {
                if sig.len() != ED25519_SIGNATURE_LEN {
                    return false;
                }
                match ed25519_dalek::Signature::from_slice(sig) {
                    Ok(s) => k.verify(msg, &s).is_ok(),
                    Err(_) => false,
                }
            }
            PublicKeyInner::Secp256k1(k) => {
                if sig.len() > SECP256K1_MAX_DER_SIGNATURE_LEN {
                    return false;
                }
                let Ok(s) = k256::ecdsa::Signature::from_der(sig) else {
                    return false;
                };
                let s = s.normalize_s();
                let digest = sha2::Sha256::digest(msg);
                k.verify_prehash(&digest, &s).is_ok()
            }
        }
    }

    /// The peer id of this key.
    pub fn to_peer_id(&self) -> PeerId {
        PeerId::from_public_key(self)
    }
}
