//! [`PeerInfo`]: a verified, decoded view of identify messages.

use plexus_identity::{PeerId, PublicKey};
use plexus_multiaddr::Multiaddr;

use crate::{Identify, IdentifyError};

/// What a peer told us about itself, decoded and checked against the authenticated peer id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerInfo {
    /// The protocol family, e.g. `/ipfs/0.1.0`.
    pub protocol_version: Option<String>,
    /// The implementation, `name/version`.
    pub agent_version: Option<String>,
    /// The peer's identity key: the one in the message (verified against the peer id), or the
    /// one inlined in the peer id when the message carries none.
    pub public_key: Option<PublicKey>,
    /// Listen addresses that decoded; the others are skipped and counted in `skipped_addrs`.
    pub listen_addrs: Vec<Multiaddr>,
    /// Our address as the peer sees it (`None` when absent or undecodable).
    pub observed_addr: Option<Multiaddr>,
    /// The protocols the peer accepts inbound.
    pub protocols: Vec<String>,
    /// The signed peer record envelope, opaque and unverified.
    pub signed_peer_record: Option<Vec<u8>>,
    /// Addresses (listen and observed) of the latest message carrying addresses that did not
    /// decode as multiaddrs plexus supports.
    pub skipped_addrs: usize,
}

/// Check that the `publicKey` of `msg`, when present, is the key of `peer`.
///
/// Returns the key: the message's, or the one inlined in `peer` (secp256k1 and ed25519 peer ids
/// embed their key) when the message has none.
///
/// # Errors
/// [`IdentifyError::InvalidPublicKey`] when the field does not decode (an unsupported key type
/// cannot belong to a peer plexus authenticated), [`IdentifyError::PublicKeyMismatch`] when it
/// is another peer's key. Both blame the peer.
pub fn verify_public_key(
    msg: &Identify,
    peer: &PeerId,
) -> Result<Option<PublicKey>, IdentifyError> {
    let Some(bytes) = &msg.public_key else {
        return Ok(peer.as_public_key());
    };
    let key = PublicKey::try_decode_protobuf(bytes).map_err(IdentifyError::InvalidPublicKey)?;
    let actual = key.to_peer_id();
    if actual != *peer {
        return Err(IdentifyError::PublicKeyMismatch {
            expected: *peer,
            actual,
        });
    }
    Ok(Some(key))
}

impl PeerInfo {
    /// Decode and verify a merged message from `peer` (the id the connection authenticated).
    /// Undecodable addresses are skipped and counted, never an error.
    ///
    /// # Errors
    /// As [`verify_public_key`].
    pub fn from_message(msg: Identify, peer: &PeerId) -> Result<PeerInfo, IdentifyError> {
        let public_key = verify_public_key(&msg, peer)?;
        let mut skipped_addrs = 0;
        let mut listen_addrs = Vec::with_capacity(msg.listen_addrs.len());
        for bytes in &msg.listen_addrs {
            match Multiaddr::from_bytes(bytes) {
                Ok(addr) => listen_addrs.push(addr),
                Err(e) => {
                    skipped_addrs += 1;
                    tracing::debug!(%peer, error = %e, "skipping undecodable listen address");
                }
            }
        }
        let observed_addr = match msg.observed_addr.as_deref().map(Multiaddr::from_bytes) {
            None => None,
            Some(Ok(addr)) => Some(addr),
            Some(Err(e)) => {
                skipped_addrs += 1;
                tracing::debug!(%peer, error = %e, "skipping undecodable observed address");
                None
            }
        };
        Ok(PeerInfo {
            protocol_version: msg.protocol_version,
            agent_version: msg.agent_version,
            public_key,
            listen_addrs,
            observed_addr,
            protocols: msg.protocols,
            signed_peer_record: msg.signed_peer_record,
            skipped_addrs,
        })
    }

    /// The message carrying this information (what we send about ourselves).
    pub fn to_message(&self) -> Identify {
        Identify {
            protocol_version: self.protocol_version.clone(),
            agent_version: self.agent_version.clone(),
            public_key: self.public_key.as_ref().map(PublicKey::encode_protobuf),
            listen_addrs: self.listen_addrs.iter().map(Multiaddr::to_vec).collect(),
            observed_addr: self.observed_addr.as_ref().map(Multiaddr::to_vec),
            protocols: self.protocols.clone(),
            signed_peer_record: self.signed_peer_record.clone(),
        }
    }

    /// Apply a (possibly partial) update, as from an identify push: every field the update
    /// carries replaces ours; absent fields (`None`, empty lists) leave ours unchanged. A list
    /// is replaced as a whole, since a push describes the new state.
    pub fn merge(&mut self, update: PeerInfo) {
        if update.protocol_version.is_some() {
            self.protocol_version = update.protocol_version;
        }
        if update.agent_version.is_some() {
            self.agent_version = update.agent_version;
        }
        if update.public_key.is_some() {
            self.public_key = update.public_key;
        }
        let carries_addrs = !update.listen_addrs.is_empty()
            || update.observed_addr.is_some()
            || update.skipped_addrs > 0;
        if !update.listen_addrs.is_empty() {
            self.listen_addrs = update.listen_addrs;
        }
        if update.observed_addr.is_some() {
            self.observed_addr = update.observed_addr;
        }
        if carries_addrs {
            self.skipped_addrs = update.skipped_addrs;
        }
        if !update.protocols.is_empty() {
            self.protocols = update.protocols;
        }
        if update.signed_peer_record.is_some() {
            self.signed_peer_record = update.signed_peer_record;
        }
    }

    /// Whether the peer says it accepts `protocol` inbound.
    pub fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|p| p == protocol)
    }
}
