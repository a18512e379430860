//! Fork digests (`compute_fork_digest`, with Fulu's blob-parameter-only digests) and the
//! schedule of every digest a network goes through.

use sha2::{Digest, Sha256};
use ssz_derive::{Decode, Encode};

use crate::config::{ChainConfig, ConfigError, Network};
use crate::types::{Epoch, FAR_FUTURE_EPOCH, Fork, ForkDigest, Root, Version};

/// `compute_fork_data_root(version, genesis_validators_root)`: the SSZ root of
/// `ForkData{current_version, genesis_validators_root}` = SHA-256(version ‖ 28 zero bytes ‖ gvr).
pub fn compute_fork_data_root(version: Version, genesis_validators_root: &Root) -> Root {
    let mut h = Sha256::new();
    h.update(version);
    h.update([0u8; 28]);
    h.update(genesis_validators_root);
    h.finalize().into()
}

/// `compute_fork_digest(genesis_validators_root, epoch)` as of Fulu: the first 4 bytes of the
/// fork data root of `compute_fork_version(epoch)`; from `FULU_FORK_EPOCH` on, XORed first with
/// SHA-256(u64 LE blob-parameters epoch ‖ u64 LE max blobs per block) of
/// `get_blob_parameters(epoch)`.
///
/// The config must be valid ([`ChainConfig::validate`]); a scheduled fork without a version
/// counts as version zero here (validation rejects that).
pub fn compute_fork_digest(
    config: &ChainConfig,
    genesis_validators_root: &Root,
    epoch: Epoch,
) -> ForkDigest {
    let fork = config.fork_at(epoch);
    let version = config.fork(fork).version.unwrap_or_default();
    let mut base = compute_fork_data_root(version, genesis_validators_root);
    if fork >= Fork::Fulu {
        let bp = config.blob_parameters(epoch);
        let mut h = Sha256::new();
        h.update(bp.epoch.to_le_bytes());
        h.update(bp.max_blobs_per_block.to_le_bytes());
        let mask: [u8; 32] = h.finalize().into();
        for (b, m) in base.iter_mut().zip(mask) {
            *b ^= m;
        }
    }
    ForkDigest([base[0], base[1], base[2], base[3]])
}

/// `ENRForkID`, the SSZ value of the ENR `eth2` key (16 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct EnrForkId {
    /// The digest at the node's current epoch.
    pub fork_digest: ForkDigest,
    /// The version of the next scheduled fork (the current version when the next change is a
    /// blob-parameter-only fork, or when nothing is scheduled).
    pub next_fork_version: Version,
    /// The epoch of the next digest change, regular or blob-parameter-only
    /// ([`FAR_FUTURE_EPOCH`] when nothing is scheduled).
    pub next_fork_epoch: Epoch,
}

/// One digest of the schedule: from `epoch` until the next entry's epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct DigestEntry {
    /// First epoch of this digest.
    pub epoch: Epoch,
    /// The fork in force (`compute_fork_version`'s fork).
    pub fork: Fork,
    /// Its version.
    pub version: Version,
    /// The blob parameters mixed in (Fulu and later), `None` before Fulu.
    pub blob_parameters: Option<crate::BlobParameters>,
    /// The digest.
    pub digest: ForkDigest,
}

impl DigestEntry {
    /// Whether this entry starts a blob-parameter-only fork (same version as the entry before).
    pub fn is_bpo(&self, previous: Option<&DigestEntry>) -> bool {
        previous.is_some_and(|p| p.fork == self.fork)
    }
}

/// A network's fork schedule: its config, its genesis validators root, and every digest it goes
/// through (regular forks and blob-parameter-only forks), so a digest seen on the wire (topic,
/// Status, context bytes, ENR) maps back to its fork.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkSchedule {
    config: ChainConfig,
    genesis_validators_root: Root,
    entries: Vec<DigestEntry>,
}

impl ForkSchedule {
    /// Build the schedule. Fails if the config is invalid or two scheduled digests collide.
    pub fn new(config: ChainConfig, genesis_validators_root: Root) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut epochs: Vec<Epoch> = Fork::ALL
            .iter()
            .map(|f| config.fork(*f).epoch)
            .filter(|e| *e != FAR_FUTURE_EPOCH)
            .collect();
        let fulu = config.fork(Fork::Fulu).epoch;
        if fulu != FAR_FUTURE_EPOCH {
            epochs.extend(
                config
                    .blob_schedule
                    .iter()
                    .map(|b| b.epoch)
                    .filter(|e| *e > fulu),
            );
        }
        epochs.sort_unstable();
        epochs.dedup();
        let mut entries: Vec<DigestEntry> = Vec::with_capacity(epochs.len());
        for epoch in epochs {
            let fork = config.fork_at(epoch);
            let entry = DigestEntry {
                epoch,
                fork,
                version: config.fork(fork).version.unwrap_or_default(),
                blob_parameters: (fork >= Fork::Fulu).then(|| config.blob_parameters(epoch)),
                digest: compute_fork_digest(&config, &genesis_validators_root, epoch),
            };
            if entries.iter().any(|e| e.digest == entry.digest) {
                return Err(ConfigError::DigestCollision(entry.digest.to_string()));
            }
            entries.push(entry);
        }
        Ok(ForkSchedule {
            config,
            genesis_validators_root,
            entries,
        })
    }

    /// The schedule of a public network, with its built-in config and genesis validators root.
    /// `None` for [`Network::Minimal`], which has no genesis of its own: use
    /// [`ForkSchedule::new`] with `Network::Minimal.config()` and a root.
    pub fn for_network(network: Network) -> Option<Self> {
        let gvr = network.genesis_validators_root()?;
        ForkSchedule::new(network.config(), gvr).ok()
    }

    /// The config.
    pub fn config(&self) -> &ChainConfig {
        &self.config
    }

    /// The genesis validators root.
    pub fn genesis_validators_root(&self) -> &Root {
        &self.genesis_validators_root
    }

    /// Every digest, in epoch order; the first starts at epoch 0.
    pub fn entries(&self) -> &[DigestEntry] {
        &self.entries
    }

    /// The entry in force at `epoch`.
    pub fn entry_at(&self, epoch: Epoch) -> &DigestEntry {
        let i = self.entries.partition_point(|e| e.epoch <= epoch);
        // The first entry starts at epoch 0, so `i >= 1`.
        &self.entries[i.saturating_sub(1)]
    }

    /// The fork in force at `epoch`.
    pub fn fork_at(&self, epoch: Epoch) -> Fork {
        self.config.fork_at(epoch)
    }

    /// `compute_fork_digest(genesis_validators_root, epoch)`.
    pub fn digest_at(&self, epoch: Epoch) -> ForkDigest {
        self.entry_at(epoch).digest
    }

    /// The next digest change after `epoch` (regular or blob-parameter-only), if scheduled.
    pub fn next_entry(&self, epoch: Epoch) -> Option<&DigestEntry> {
        self.entries.iter().find(|e| e.epoch > epoch)
    }

    /// The next digest after `epoch` and the epoch it starts (the ENR `nfd` value is this
    /// digest, or zeros when `None`).
    pub fn next_digest(&self, epoch: Epoch) -> Option<(Epoch, ForkDigest)> {
        self.next_entry(epoch).map(|e| (e.epoch, e.digest))
    }

    /// The ENR `eth2` value at `epoch`.
    pub fn enr_fork_id(&self, epoch: Epoch) -> EnrForkId {
        let current = self.entry_at(epoch);
        match self.next_entry(epoch) {
            Some(next) => EnrForkId {
                fork_digest: current.digest,
                next_fork_version: next.version,
                next_fork_epoch: next.epoch,
            },
            None => EnrForkId {
                fork_digest: current.digest,
                next_fork_version: current.version,
                next_fork_epoch: FAR_FUTURE_EPOCH,
            },
        }
    }

    /// The entry whose digest this is (every scheduled digest, BPO ones included), if any.
    pub fn lookup(&self, digest: ForkDigest) -> Option<&DigestEntry> {
        self.entries.iter().find(|e| e.digest == digest)
    }

    /// The fork of a digest, if it is one of this network's.
    pub fn fork_of_digest(&self, digest: ForkDigest) -> Option<Fork> {
        self.lookup(digest).map(|e| e.fork)
    }
}

/// The digest of a pre-genesis bootnode's ENR: `compute_fork_digest(zero root, 0)`.
pub fn pre_genesis_digest(config: &ChainConfig) -> ForkDigest {
    compute_fork_digest(config, &[0u8; 32], 0)
}
