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

/// The fixed part of a `SignedBeaconBlock`: the offset of `message` (4 bytes) and the
/// signature (96 bytes).
const SIGNED_BLOCK_FIXED: usize = 4 + 96;
/// The fixed part of a `BeaconBlock`: slot, proposer index, parent root, state root, and the
/// offset of the body.
const BLOCK_FIXED: usize = 8 + 8 + 32 + 32 + 4;

/// The slot and proposer index of an SSZ `SignedBeaconBlock` (a gossip `beacon_block`
/// payload, a by-range or by-root response chunk), read from its fixed part without decoding
/// the rest; `None` when that part is malformed. The container is `message: BeaconBlock`
/// (variable size, so a 4-byte offset, which must be 100) then `signature` (96 bytes);
/// `BeaconBlock` starts with `slot` and `proposer_index` (u64 little-endian), unchanged from
/// phase 0 through Gloas (only `BeaconBlockBody` changes).
pub fn signed_block_slot_and_proposer(ssz: &[u8]) -> Option<(Slot, u64)> {
    let offset = u32::from_le_bytes(ssz.get(0..4)?.try_into().ok()?);
    if offset as usize != SIGNED_BLOCK_FIXED || ssz.len() < SIGNED_BLOCK_FIXED + BLOCK_FIXED {
        return None;
    }
    let u64_at =
        |i: usize| -> Option<u64> { Some(u64::from_le_bytes(ssz.get(i..i + 8)?.try_into().ok()?)) };
    Some((u64_at(SIGNED_BLOCK_FIXED)?, u64_at(SIGNED_BLOCK_FIXED + 8)?))
}

#[cfg(test)]
mod block_fields_tests {
    use super::signed_block_slot_and_proposer as fields;

    fn signed_block(slot: u64, proposer: u64, len: usize) -> Vec<u8> {
        let mut b = vec![0xaa; len];
        b[0..4].copy_from_slice(&100u32.to_le_bytes());
        b[100..108].copy_from_slice(&slot.to_le_bytes());
        b[108..116].copy_from_slice(&proposer.to_le_bytes());
        b
    }

    #[test]
    fn slot_and_proposer_come_from_the_fixed_part() {
        assert_eq!(
            fields(&signed_block(13_200_000, 421_337, 1_000)),
            Some((13_200_000, 421_337))
        );
        // The smallest well-formed fixed part: 100 + 84 bytes.
        assert_eq!(fields(&signed_block(5, 6, 184)), Some((5, 6)));
        assert_eq!(fields(&signed_block(5, 6, 183)), None, "too short");
        let mut b = signed_block(5, 6, 1_000);
        b[0] = 99;
        assert_eq!(fields(&b), None, "message offset must be 100");
        assert_eq!(fields(&[]), None);
        assert_eq!(fields(&[100, 0, 0]), None, "a cut offset");
    }
}
