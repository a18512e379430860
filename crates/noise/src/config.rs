//! `NoiseConfig`: the local identity for Noise, the handshake driver and the
//! `SecurityUpgrade` implementation.

use std::sync::Arc;

use bytes::BytesMut;
use plexus_core::{BoxFut, BoxIo, Role, Secured, SecurityError, SecurityUpgrade};
use plexus_identity::{Keypair, PeerId, PublicKey};
use snow::params::NoiseParams;
use snow::params::{CipherChoice, DHChoice, HashChoice};
use snow::resolvers::{
    BoxedCryptoResolver, CryptoResolver, DefaultResolver, FallbackResolver, RingResolver,
};
use snow::types::{Cipher, Dh, Hash, Random};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::payload::{PayloadLimits, static_key_message};
use crate::{
    DH_LEN, LEN_PREFIX_LEN, NOISE_PARAMS, NoiseError, NoiseHandshake, NoiseStream, PROTOCOL_ID,
};

/// The parsed Noise protocol name.
pub(crate) fn noise_params() -> NoiseParams {
    NOISE_PARAMS
        .parse()
        .expect("NOISE_PARAMS is a valid noise protocol name")
}

/// Which implementation of the Noise primitives snow uses.
///
/// Both are constant-time, audited implementations and interoperate byte for byte; they differ
/// only in speed. See `docs/noise-crypto-backend.md` for the measurements behind the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CryptoBackend {
    /// Assembly with runtime CPU dispatch: ring's ChaCha20-Poly1305 and SHA-256, aws-lc's
    /// X25519 (about twice curve25519-dalek's speed; ring has no X25519 usable with a static
    /// key). The default: the fastest measured.
    #[default]
    Accelerated,
    /// The pure-Rust RustCrypto primitives (`chacha20poly1305`, `sha2`, `curve25519-dalek`).
    RustCrypto,
}

impl CryptoBackend {
    /// snow's resolver for this backend (its own X25519: used where our [`CachedDh25519`] is
    /// not, i.e. outside [`NoiseConfig`] handshakes).
    pub(crate) fn resolver(self) -> BoxedCryptoResolver {
        match self {
            CryptoBackend::Accelerated => Box::new(FallbackResolver::new(
                Box::new(RingResolver),
                Box::new(DefaultResolver),
            )),
            CryptoBackend::RustCrypto => Box::new(DefaultResolver),
        }
    }
}

/// snow's resolver for the handshakes of one [`NoiseConfig`]: the backend's primitives, and an
/// X25519 ([`CachedDh25519`]) that knows our static key pair, so that snow setting our static
/// secret (on every handshake) does not recompute its public key.
struct HandshakeResolver {
    backend: CryptoBackend,
    identity: Arc<StaticIdentity>,
}

impl CryptoResolver for HandshakeResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        match self.backend {
            CryptoBackend::Accelerated => RingResolver.resolve_rng(),
            CryptoBackend::RustCrypto => None,
        }
        .or_else(|| DefaultResolver.resolve_rng())
    }

    fn resolve_dh(&self, choice: &DHChoice) -> Option<Box<dyn Dh>> {
        match choice {
            DHChoice::Curve25519 => Some(Box::new(CachedDh25519::new(
                self.identity.clone(),
                self.backend,
            ))),
            _ => None,
        }
    }

    fn resolve_hash(&self, choice: &HashChoice) -> Option<Box<dyn Hash>> {
        match self.backend {
            CryptoBackend::Accelerated => RingResolver.resolve_hash(choice),
            CryptoBackend::RustCrypto => None,
        }
        .or_else(|| DefaultResolver.resolve_hash(choice))
    }

    fn resolve_cipher(&self, choice: &CipherChoice) -> Option<Box<dyn Cipher>> {
        match self.backend {
            CryptoBackend::Accelerated => RingResolver.resolve_cipher(choice),
            CryptoBackend::RustCrypto => None,
        }
        .or_else(|| DefaultResolver.resolve_cipher(choice))
    }
}

/// aws-lc's parsed form of the private key a [`CachedDh25519`] holds.
enum AwsKey {
    /// None: the RustCrypto backend, no key yet, or aws-lc refused it (then curve25519-dalek
    /// does the work).
    None,
    /// Our static key: the one parsed once in [`StaticIdentity`].
    Static,
    /// Another key (the ephemeral one).
    Own(aws_lc_rs::agreement::PrivateKey),
}

/// X25519 for snow: aws-lc's assembly ([`CryptoBackend::Accelerated`]) or curve25519-dalek
/// ([`CryptoBackend::RustCrypto`]), and [`Dh::set`] with our static secret takes the static
/// public key (and aws-lc key) computed once in [`NoiseConfig::new`].
///
/// Both implementations refuse a shared secret of all zeros (the peer sent a low-order point):
/// RFC 7748 §6.1 allows the check, and aws-lc always makes it, so the two backends agree.
struct CachedDh25519 {
    identity: Arc<StaticIdentity>,
    backend: CryptoBackend,
    privkey: [u8; DH_LEN],
    pubkey: [u8; DH_LEN],
    aws: AwsKey,
}

impl CachedDh25519 {
    fn new(identity: Arc<StaticIdentity>, backend: CryptoBackend) -> Self {
        CachedDh25519 {
            identity,
            backend,
            privkey: [0; DH_LEN],
            pubkey: [0; DH_LEN],
            aws: AwsKey::None,
        }
    }

    /// A key other than our static one was set: derive its public key.
    fn derive_pubkey(&mut self) {
        self.aws = AwsKey::None;
        if self.backend == CryptoBackend::Accelerated
            && let Ok(key) = aws_lc_rs::agreement::PrivateKey::from_private_key(
                &aws_lc_rs::agreement::X25519,
                &self.privkey,
            )
            && let Ok(public) = key.compute_public_key()
            && let Ok(public) = <[u8; DH_LEN]>::try_from(public.as_ref())
        {
            self.pubkey = public;
            self.aws = AwsKey::Own(key);
            return;
        }
        self.pubkey = curve25519_dalek::MontgomeryPoint::mul_base_clamped(self.privkey).to_bytes();
    }

    fn aws_key(&self) -> Option<&aws_lc_rs::agreement::PrivateKey> {
        match &self.aws {
            AwsKey::None => None,
            AwsKey::Static => self.identity.aws_secret.as_ref(),
            AwsKey::Own(k) => Some(k),
        }
    }
}

impl Drop for CachedDh25519 {
    fn drop(&mut self) {
        // aws-lc wipes its own copy when the key is freed.
        self.privkey.fill(0);
        std::hint::black_box(&self.privkey);
    }
}

impl Dh for CachedDh25519 {
    fn name(&self) -> &'static str {
        "25519"
    }

    fn pub_len(&self) -> usize {
        DH_LEN
    }

    fn priv_len(&self) -> usize {
        DH_LEN
    }

    fn set(&mut self, privkey: &[u8]) {
        let n = privkey.len().min(DH_LEN);
        self.privkey = [0; DH_LEN];
        self.privkey[..n].copy_from_slice(&privkey[..n]);
        // Compare without an early exit (both are our own secrets, but keep it constant-time).
        let same = self
            .privkey
            .iter()
            .zip(&self.identity.secret)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
        if same {
            self.pubkey = self.identity.public;
            self.aws = match (self.backend, &self.identity.aws_secret) {
                (CryptoBackend::Accelerated, Some(_)) => AwsKey::Static,
                _ => AwsKey::None,
            };
        } else {
            self.derive_pubkey();
        }
    }

    fn generate(&mut self, rng: &mut dyn Random) -> Result<(), snow::Error> {
        let mut bytes = [0u8; DH_LEN];
        rng.try_fill_bytes(&mut bytes)?;
        self.privkey = bytes;
        bytes.fill(0);
        std::hint::black_box(&bytes);
        self.derive_pubkey();
        Ok(())
    }

    fn pubkey(&self) -> &[u8] {
        &self.pubkey
    }

    fn privkey(&self) -> &[u8] {
        &self.privkey
    }

    fn dh(&self, pubkey: &[u8], out: &mut [u8]) -> Result<(), snow::Error> {
        let theirs: [u8; DH_LEN] = pubkey
            .get(..DH_LEN)
            .and_then(|p| p.try_into().ok())
            .ok_or(snow::Error::Dh)?;
        let out = out.get_mut(..DH_LEN).ok_or(snow::Error::Dh)?;
        if let Some(key) = self.aws_key() {
            // aws-lc refuses an all-zero result itself.
            let theirs = aws_lc_rs::agreement::UnparsedPublicKey::new(
                &aws_lc_rs::agreement::X25519,
                &theirs,
            );
            return aws_lc_rs::agreement::agree(key, theirs, snow::Error::Dh, |shared| {
                if shared.len() != DH_LEN {
                    return Err(snow::Error::Dh);
                }
                out.copy_from_slice(shared);
                Ok(())
            });
        }
        let shared = curve25519_dalek::MontgomeryPoint(theirs)
            .mul_clamped(self.privkey)
            .to_bytes();
        if shared.iter().fold(0u8, |acc, b| acc | b) == 0 {
            return Err(snow::Error::Dh);
        }
        out.copy_from_slice(&shared);
        Ok(())
    }
}

/// The local static identity: the Noise static X25519 key and the identity signature over it.
struct StaticIdentity {
    secret: [u8; DH_LEN],
    public: [u8; DH_LEN],
    /// `secret` parsed by aws-lc once (`None` only if aws-lc refused it).
    aws_secret: Option<aws_lc_rs::agreement::PrivateKey>,
    identity_key: Vec<u8>,
    signature: Vec<u8>,
    public_key: PublicKey,
    peer: PeerId,
}

impl Drop for StaticIdentity {
    fn drop(&mut self) {
        // Best effort without unsafe: overwrite the secret, and keep the write observable.
        self.secret.fill(0);
        std::hint::black_box(&self.secret);
    }
}

/// Noise (`/noise`) for one local identity.
///
/// `NoiseConfig::new` draws a fresh X25519 Noise static key (never stored, never the identity
/// key) and signs it with the identity key once; every handshake of this config (and of its
/// clones, which share it) uses that static key. The static key is thus per process lifetime of
/// the config, as the Noise spec allows ("MAY be per session"): it saves a signature and a key
/// generation on every handshake, and the identity key it would hide is sent in every handshake
/// payload anyway. Create a new `NoiseConfig` to rotate it.
///
/// Handshakes run without timeouts: the caller (the upgrader) bounds them.
#[derive(Clone)]
pub struct NoiseConfig {
    identity: Arc<StaticIdentity>,
    prologue: Arc<[u8]>,
    backend: CryptoBackend,
    limits: PayloadLimits,
    params: NoiseParams,
}

impl std::fmt::Debug for NoiseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NoiseConfig")
            .field("peer", &self.identity.peer)
            .field("prologue_len", &self.prologue.len())
            .field("backend", &self.backend)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// What a successful handshake on a `T` produced.
#[derive(Debug)]
pub struct NoiseOutput<T> {
    /// The authenticated remote peer.
    pub peer: PeerId,
    /// The remote's identity key.
    pub public_key: PublicKey,
    /// The encrypted stream.
    pub stream: NoiseStream<T>,
    /// The muxer agreed inside the handshake; `None`: negotiate one.
    pub early_muxer: Option<String>,
}

impl NoiseConfig {
    /// A config for the identity `keypair`, with a fresh Noise static key, the empty prologue,
    /// the default [`CryptoBackend`] and default [`PayloadLimits`].
    ///
    /// # Panics
    /// If the operating system's random number generator fails.
    pub fn new(keypair: Keypair) -> Self {
        let params = noise_params();
        let kp = snow::Builder::with_resolver(params.clone(), CryptoBackend::default().resolver())
            .generate_keypair()
            .expect("OS random number generator failed");
        let mut secret = [0u8; DH_LEN];
        let mut public = [0u8; DH_LEN];
        secret.copy_from_slice(&kp.private);
        public.copy_from_slice(&kp.public);
        drop(kp);
        let public_key = keypair.public();
        let aws_secret = aws_lc_rs::agreement::PrivateKey::from_private_key(
            &aws_lc_rs::agreement::X25519,
            &secret,
        )
        .ok();
        let identity = StaticIdentity {
            secret,
            public,
            aws_secret,
            identity_key: public_key.encode_protobuf(),
            signature: keypair.sign(&static_key_message(&public)),
            peer: public_key.to_peer_id(),
            public_key,
        };
        NoiseConfig {
            identity: Arc::new(identity),
            prologue: Arc::from(&[][..]),
            backend: CryptoBackend::default(),
            limits: PayloadLimits::default(),
            params,
        }
    }

    /// Use `prologue` (both sides must use the same; empty by default, as libp2p over TCP).
    pub fn with_prologue(mut self, prologue: impl Into<Vec<u8>>) -> Self {
        self.prologue = Arc::from(prologue.into());
        self
    }

    /// Use another crypto backend than the default.
    pub fn with_backend(mut self, backend: CryptoBackend) -> Self {
        self.backend = backend;
        self
    }

    /// Use other payload limits than the default.
    pub fn with_payload_limits(mut self, limits: PayloadLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Our peer id.
    pub fn local_peer_id(&self) -> PeerId {
        self.identity.peer
    }

    /// Our identity key.
    pub fn local_public_key(&self) -> &PublicKey {
        &self.identity.public_key
    }

    /// Our Noise static public key.
    pub fn static_public_key(&self) -> [u8; DH_LEN] {
        self.identity.public
    }

    /// The crypto backend in use.
    pub fn backend(&self) -> CryptoBackend {
        self.backend
    }

    /// The payload limits in use.
    pub fn payload_limits(&self) -> &PayloadLimits {
        &self.limits
    }

    pub(crate) fn identity_key_protobuf(&self) -> &[u8] {
        &self.identity.identity_key
    }

    pub(crate) fn identity_signature(&self) -> &[u8] {
        &self.identity.signature
    }

    /// A snow builder with our static key, prologue and backend.
    pub(crate) fn builder(&self) -> Result<snow::Builder<'_>, snow::Error> {
        let resolver = HandshakeResolver {
            backend: self.backend,
            identity: self.identity.clone(),
        };
        snow::Builder::with_resolver(self.params.clone(), Box::new(resolver))
            .local_private_key(&self.identity.secret)?
            .prologue(&self.prologue)
    }

    /// Run the handshake on `io` and wrap it into a [`NoiseStream`]. `expect` is the peer we
    /// dialed; `muxers` our muxer list in preference order (empty: none offered).
    ///
    /// Handshake frames are read exactly (length, then body), so no byte after the handshake
    /// is consumed from `io`.
    ///
    /// # Errors
    /// Any [`NoiseError`]; [`NoiseError::blame`] says whose fault it is. A stream that ends
    /// during the handshake is [`NoiseError::Io`] with `UnexpectedEof`.
    pub async fn handshake<T>(
        &self,
        mut io: T,
        role: Role,
        expect: Option<PeerId>,
        muxers: Vec<String>,
    ) -> Result<NoiseOutput<T>, NoiseError>
    where
        T: AsyncRead + AsyncWrite + Unpin,
    {
        let mut hs = NoiseHandshake::new(self, role, expect, muxers)?;
        let mut out = BytesMut::new();
        let mut msg = Vec::new();
        while !hs.is_finished() {
            if hs.wants_write() {
                out.clear();
                hs.write_message(&mut out)?;
                io.write_all(&out).await?;
                io.flush().await?;
            } else {
                let mut len = [0u8; LEN_PREFIX_LEN];
                io.read_exact(&mut len).await?;
                msg.clear();
                msg.resize(usize::from(u16::from_be_bytes(len)), 0);
                io.read_exact(&mut msg).await?;
                hs.read_message(&msg)?;
            }
        }
        let done = hs.finish()?;
        tracing::debug!(peer = %done.remote.peer, ?role, early_muxer = ?done.early_muxer, "noise handshake done");
        Ok(NoiseOutput {
            peer: done.remote.peer,
            public_key: done.remote.public_key,
            stream: NoiseStream::new(io, done.framer),
            early_muxer: done.early_muxer,
        })
    }
}

impl SecurityUpgrade for NoiseConfig {
    fn protocol(&self) -> &'static str {
        PROTOCOL_ID
    }

    fn secure(
        &self,
        io: BoxIo,
        role: Role,
        expect: Option<PeerId>,
        muxers: Vec<String>,
    ) -> BoxFut<'static, Result<Secured, SecurityError>> {
        let config = self.clone();
        Box::pin(async move {
            match config.handshake(io, role, expect, muxers).await {
                Ok(out) => Ok(Secured {
                    peer: out.peer,
                    public_key: out.public_key,
                    io: Box::new(out.stream),
                    early_muxer: out.early_muxer,
                }),
                Err(e) => {
                    tracing::debug!(?role, error = %e, blame = %e.blame(), "noise handshake failed");
                    Err(SecurityError::from(e))
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BACKENDS: [CryptoBackend; 2] = [CryptoBackend::Accelerated, CryptoBackend::RustCrypto];

    fn dh_of(config: &NoiseConfig, backend: CryptoBackend) -> CachedDh25519 {
        CachedDh25519::new(config.identity.clone(), backend)
    }

    fn reference(secret: &[u8; DH_LEN]) -> Box<dyn Dh> {
        let mut r = DefaultResolver.resolve_dh(&DHChoice::Curve25519).unwrap();
        r.set(secret);
        r
    }

    #[test]
    fn cached_dh_matches_snows_x25519() {
        let config = NoiseConfig::new(Keypair::generate_ed25519());
        for backend in BACKENDS {
            // Our static key: the cached public key is the one snow's X25519 derives, and the
            // accelerated backend uses the aws-lc key parsed once.
            let mut ours = dh_of(&config, backend);
            ours.set(&config.identity.secret);
            let static_ref = reference(&config.identity.secret);
            assert_eq!(ours.pubkey(), static_ref.pubkey());
            assert_eq!(ours.pubkey(), &config.static_public_key()[..]);
            assert_eq!(
                matches!(ours.aws, AwsKey::Static),
                backend == CryptoBackend::Accelerated
            );
            // Any other key is derived, and agreement matches snow's both ways.
            let mut other = dh_of(&config, backend);
            other.set(&[7u8; DH_LEN]);
            let other_ref = reference(&[7u8; DH_LEN]);
            assert_eq!(other.pubkey(), other_ref.pubkey());
            assert_eq!(
                matches!(other.aws, AwsKey::Own(_)),
                backend == CryptoBackend::Accelerated
            );
            let (mut a, mut b, mut c) = ([0u8; DH_LEN], [0u8; DH_LEN], [0u8; DH_LEN]);
            ours.dh(other.pubkey(), &mut a).unwrap();
            other.dh(ours.pubkey(), &mut b).unwrap();
            static_ref.dh(other_ref.pubkey(), &mut c).unwrap();
            assert_eq!(a, b);
            assert_eq!(a, c);
            assert_ne!(a, [0u8; DH_LEN]);
            assert!(ours.dh(&[1u8; 31], &mut a).is_err(), "short public key");
        }
    }

    #[test]
    fn low_order_points_are_refused_by_both_backends() {
        let config = NoiseConfig::new(Keypair::generate_ed25519());
        // u = 0 and u = 1 have small order: every clamped scalar maps them to 0.
        let mut one = [0u8; DH_LEN];
        one[0] = 1;
        for backend in BACKENDS {
            let mut ours = dh_of(&config, backend);
            ours.set(&config.identity.secret);
            let mut out = [0u8; DH_LEN];
            for point in [[0u8; DH_LEN], one] {
                assert!(
                    matches!(ours.dh(&point, &mut out), Err(snow::Error::Dh)),
                    "{backend:?}"
                );
            }
        }
    }

    #[test]
    fn generated_keys_agree_across_backends() {
        let config = NoiseConfig::new(Keypair::generate_ed25519());
        let mut rng = DefaultResolver.resolve_rng().unwrap();
        let mut a = dh_of(&config, CryptoBackend::Accelerated);
        let mut b = dh_of(&config, CryptoBackend::RustCrypto);
        a.generate(rng.as_mut()).unwrap();
        b.generate(rng.as_mut()).unwrap();
        assert!(matches!(a.aws, AwsKey::Own(_)));
        assert_eq!(a.pubkey(), reference(&a.privkey).pubkey());
        assert_eq!(b.pubkey(), reference(&b.privkey).pubkey());
        let (mut x, mut y) = ([0u8; DH_LEN], [0u8; DH_LEN]);
        a.dh(b.pubkey(), &mut x).unwrap();
        b.dh(a.pubkey(), &mut y).unwrap();
        assert_eq!(x, y);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// aws-lc and curve25519-dalek compute the same public keys and shared secrets for any
        /// pair of secrets (clamping included).
        #[test]
        fn aws_lc_and_dalek_agree(s1 in any::<[u8; DH_LEN]>(), s2 in any::<[u8; DH_LEN]>()) {
            let config = NoiseConfig::new(Keypair::generate_ed25519());
            let mut fast = dh_of(&config, CryptoBackend::Accelerated);
            let mut slow = dh_of(&config, CryptoBackend::RustCrypto);
            fast.set(&s1);
            slow.set(&s1);
            prop_assert_eq!(fast.pubkey(), slow.pubkey());
            let peer = reference(&s2);
            let (mut x, mut y) = ([0u8; DH_LEN], [0u8; DH_LEN]);
            fast.dh(peer.pubkey(), &mut x).unwrap();
            slow.dh(peer.pubkey(), &mut y).unwrap();
            prop_assert_eq!(x, y);
        }
    }
}
