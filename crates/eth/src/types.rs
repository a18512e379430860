//! Basic consensus types shared by every module: epochs, roots, versions, fork digests, forks.

use std::fmt;
use std::str::FromStr;

use ssz_derive::{Decode, Encode};

/// An epoch number.
pub type Epoch = u64;
/// A slot number.
pub type Slot = u64;
/// A 32-byte SSZ root (`hash_tree_root`).
pub type Root = [u8; 32];
/// A 4-byte fork version.
pub type Version = [u8; 4];

/// `FAR_FUTURE_EPOCH`: a fork at this epoch is not scheduled.
pub const FAR_FUTURE_EPOCH: Epoch = u64::MAX;

/// A 4-byte fork digest (`compute_fork_digest`), shown as 8 lowercase hex digits, as in topics.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Encode, Decode)]
#[ssz(struct_behaviour = "transparent")]
pub struct ForkDigest(pub [u8; 4]);

impl ForkDigest {
    /// Parse exactly 8 lowercase hex digits, no `0x`: the form inside a topic string.
    pub fn from_topic_hex(s: &str) -> Option<Self> {
        if s.len() != 8 || !s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return None;
        }
        let mut out = [0u8; 4];
        data_encoding::HEXLOWER
            .decode_mut(s.as_bytes(), &mut out)
            .ok()?;
        Some(ForkDigest(out))
    }
}

impl fmt::Display for ForkDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&data_encoding::HEXLOWER.encode(&self.0))
    }
}

impl fmt::Debug for ForkDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ForkDigest({self})")
    }
}

/// The input of [`ForkDigest::from_str`] was not 8 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a fork digest (8 hex digits, optionally 0x-prefixed): {0:?}")]
pub struct ParseDigestError(pub String);

impl FromStr for ForkDigest {
    type Err = ParseDigestError;

    /// Lenient, for command lines and config: an optional `0x` and either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hex = s.strip_prefix("0x").unwrap_or(s).to_ascii_lowercase();
        ForkDigest::from_topic_hex(&hex)
            .ok_or_else(|| ParseDigestError(s.chars().take(32).collect()))
    }
}

/// A consensus fork, in activation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fork {
    /// Genesis (phase 0).
    Phase0,
    /// Altair.
    Altair,
    /// Bellatrix (the merge).
    Bellatrix,
    /// Capella.
    Capella,
    /// Deneb.
    Deneb,
    /// Electra.
    Electra,
    /// Fulu.
    Fulu,
    /// Gloas (not scheduled on mainnet at the spec commit this crate follows).
    Gloas,
}

impl Fork {
    /// Every fork, in activation order.
    pub const ALL: [Fork; 8] = [
        Fork::Phase0,
        Fork::Altair,
        Fork::Bellatrix,
        Fork::Capella,
        Fork::Deneb,
        Fork::Electra,
        Fork::Fulu,
        Fork::Gloas,
    ];

    /// Lowercase name, as in the spec's directory names (`phase0`, `altair`, …).
    pub fn name(self) -> &'static str {
        match self {
            Fork::Phase0 => "phase0",
            Fork::Altair => "altair",
            Fork::Bellatrix => "bellatrix",
            Fork::Capella => "capella",
            Fork::Deneb => "deneb",
            Fork::Electra => "electra",
            Fork::Fulu => "fulu",
            Fork::Gloas => "gloas",
        }
    }

    /// The prefix of its config keys: `GENESIS` for phase 0, else the upper-case name
    /// (`ALTAIR_FORK_VERSION`, `ALTAIR_FORK_EPOCH`).
    pub fn config_prefix(self) -> &'static str {
        match self {
            Fork::Phase0 => "GENESIS",
            Fork::Altair => "ALTAIR",
            Fork::Bellatrix => "BELLATRIX",
            Fork::Capella => "CAPELLA",
            Fork::Deneb => "DENEB",
            Fork::Electra => "ELECTRA",
            Fork::Fulu => "FULU",
            Fork::Gloas => "GLOAS",
        }
    }

    /// Position in [`Fork::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for Fork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
