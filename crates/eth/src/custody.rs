//! PeerDAS custody (Fulu, `specs/fulu/das-core.md`): which data columns a node custodies, from
//! its discv5 node id and its custody group count (`MetaData.custody_group_count`, ENR `cgc`).
//!
//! Byte order, which the spec leaves implicit in its `uint256` types:
//! - a node id is the 32-byte keccak256 digest, read as a **big-endian** `uint256`
//!   (`NodeID(bytes)` in discv5; consensus-spec-tests give it as that integer in decimal);
//! - in `get_custody_groups`, `uint_to_bytes(current_id)` is SSZ, so **little-endian** 32 bytes;
//!   the group is the first 8 bytes of their SHA-256 read as a little-endian `u64`.

use std::collections::BTreeSet;

use plexus_identity::{KeyType, PeerId, PublicKey};
use sha2::{Digest as _, Sha256};
use sha3::Keccak256;

use crate::config::NUMBER_OF_COLUMNS;

/// `NUMBER_OF_CUSTODY_GROUPS`: 128 in the mainnet and minimal configs (and every published
/// network's). [`ChainConfig`](crate::ChainConfig) does not carry it; [`custody_columns`] uses
/// this value, [`custody_groups`] takes the count as an argument.
pub const NUMBER_OF_CUSTODY_GROUPS: u64 = 128;

/// The discv5 node id of a secp256k1 key: keccak256 of the 64-byte uncompressed public key
/// (`x ‖ y`, without the `0x04` prefix). `None` for ed25519 keys, which have no Ethereum node id.
pub fn node_id(public_key: &PublicKey) -> Option<[u8; 32]> {
    if public_key.key_type() != KeyType::Secp256k1 {
        return None;
    }
    // `raw_bytes` is the 33-byte compressed point, already validated when the key was built.
    let key = k256::ecdsa::VerifyingKey::from_sec1_bytes(&public_key.raw_bytes()).ok()?;
    let point = key.to_sec1_point(false);
    let uncompressed = point.as_bytes();
    debug_assert_eq!(uncompressed.len(), 65);
    let digest = Keccak256::digest(uncompressed.get(1..)?);
    Some(digest.into())
}

/// The discv5 node id of a peer, from the public key its peer id inlines (secp256k1 peer ids are
/// identity multihashes). `None` for ed25519 peers and for sha2-256 peer ids.
pub fn node_id_of_peer(peer: &PeerId) -> Option<[u8; 32]> {
    node_id(&peer.as_public_key()?)
}

/// The spec's `get_custody_groups(node_id, custody_group_count)`, with the group total as an
/// argument: the sorted custody groups of the node.
///
/// `node_id` is the node id's 32 bytes (big-endian `uint256`, as [`node_id`] returns them).
/// Starting from it, each id is hashed as 32 little-endian bytes; the group is
/// `u64::from_le_bytes(sha256[0..8]) % number_of_custody_groups`; the id is incremented (wrapping
/// from `2^256 − 1` to 0) until `custody_group_count` distinct groups are found.
///
/// Where the spec asserts `custody_group_count <= NUMBER_OF_CUSTODY_GROUPS`, the count is clamped
/// instead (the count comes from a peer's MetaData): a count at or above the total gives every
/// group, as the spec does for an equal count. `number_of_custody_groups == 0` gives no groups.
pub fn custody_groups(
    node_id: &[u8; 32],
    custody_group_count: u64,
    number_of_custody_groups: u64,
) -> Vec<u64> {
    if custody_group_count >= number_of_custody_groups {
        return (0..number_of_custody_groups).collect();
    }
    // The big-endian id as a little-endian array: `uint_to_bytes` and the increment both work
    // on it directly.
    let mut current = *node_id;
    current.reverse();
    let mut groups = BTreeSet::new();
    while (groups.len() as u64) < custody_group_count {
        let hash = Sha256::digest(current);
        let mut first = [0u8; 8];
        first.copy_from_slice(&hash[..8]);
        groups.insert(u64::from_le_bytes(first) % number_of_custody_groups);
        increment_le(&mut current);
    }
    groups.into_iter().collect()
}

/// `current + 1` on a little-endian 256-bit integer, wrapping `2^256 − 1` to 0.
fn increment_le(bytes: &mut [u8; 32]) {
    for byte in bytes.iter_mut() {
        let (next, carry) = byte.overflowing_add(1);
        *byte = next;
        if !carry {
            return;
        }
    }
}

/// The spec's `compute_columns_for_custody_group(custody_group)`, with the totals as arguments:
/// `[number_of_custody_groups * i + group for i in 0..number_of_columns / number_of_custody_groups]`.
///
/// Empty where the spec would fail its assertion (`group >= number_of_custody_groups`) and when
/// `number_of_custody_groups` is 0.
pub fn columns_for_custody_group(
    group: u64,
    number_of_columns: u64,
    number_of_custody_groups: u64,
) -> Vec<u64> {
    if group >= number_of_custody_groups {
        return Vec::new();
    }
    let columns_per_group = number_of_columns / number_of_custody_groups;
    // No overflow: the largest value is below `columns_per_group * groups <= number_of_columns`.
    (0..columns_per_group)
        .map(|i| number_of_custody_groups * i + group)
        .collect()
}

/// The data columns a node custodies (sorted), with [`NUMBER_OF_COLUMNS`](crate::NUMBER_OF_COLUMNS)
/// and [`NUMBER_OF_CUSTODY_GROUPS`] (128 each, so each group is one column, the column index
/// equal to the group index). `custody_group_count` is clamped as in [`custody_groups`].
pub fn custody_columns(node_id: &[u8; 32], custody_group_count: u64) -> Vec<u64> {
    let mut columns: Vec<u64> =
        custody_groups(node_id, custody_group_count, NUMBER_OF_CUSTODY_GROUPS)
            .into_iter()
            .flat_map(|g| columns_for_custody_group(g, NUMBER_OF_COLUMNS, NUMBER_OF_CUSTODY_GROUPS))
            .collect();
    columns.sort_unstable();
    columns
}

/// The data columns a peer custodies, from its peer id and its MetaData `custody_group_count`
/// ([`custody_columns`] of [`node_id_of_peer`]). `None` when the peer has no node id (ed25519 or
/// sha2-256 peer id).
pub fn peer_custody_columns(peer: &PeerId, custody_group_count: u64) -> Option<Vec<u64>> {
    Some(custody_columns(
        &node_id_of_peer(peer)?,
        custody_group_count,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use plexus_identity::Keypair;

    fn hex32(s: &str) -> [u8; 32] {
        let v = data_encoding::HEXLOWER.decode(s.as_bytes()).unwrap();
        v.try_into().unwrap()
    }

    /// A decimal `uint256` (as consensus-spec-tests write node ids) as 32 big-endian bytes.
    fn decimal_be(s: &str) -> [u8; 32] {
        let mut out = [0u8; 32];
        for d in s.bytes() {
            assert!(d.is_ascii_digit());
            // out = out * 10 + d, big-endian, must not overflow.
            let mut carry = u16::from(d - b'0');
            for byte in out.iter_mut().rev() {
                let v = u16::from(*byte) * 10 + carry;
                *byte = (v & 0xff) as u8;
                carry = v >> 8;
            }
            assert_eq!(carry, 0, "more than 256 bits");
        }
        out
    }

    const MAX_NODE_ID: &str =
        "115792089237316195423570985008687907853269984665640564039457584007913129639935";
    const MAX_NODE_ID_MINUS_1: &str =
        "115792089237316195423570985008687907853269984665640564039457584007913129639934";

    #[test]
    fn decimal_helper() {
        assert_eq!(decimal_be(MAX_NODE_ID), [0xff; 32]);
        let mut m1 = [0xff; 32];
        m1[31] = 0xfe;
        assert_eq!(decimal_be(MAX_NODE_ID_MINUS_1), m1);
        let mut short = [0u8; 32];
        short[29] = 0x10; // 1048576 = 0x100000
        assert_eq!(decimal_be("1048576"), short);
    }

    /// consensus-spec-tests `tests/mainnet/fulu/networking/get_custody_groups/pyspec_tests`
    /// (`NUMBER_OF_CUSTODY_GROUPS` = 128 in both presets): the meta.yaml of
    /// `get_custody_groups_1`, `_3`, `max_node_id_custody_group_count_is_4`,
    /// `max_node_id_{min,max}_custody_group_count` read from ethereum/consensus-spec-tests
    /// (commit 194a91fd). `get_custody_groups__2`, `max_node_id_minus_1_custody_group_count_is_4`,
    /// `max_node_id_minus_1_max_custody_group_count`, `min_node_id_{min,max}_custody_group_count`
    /// and `short_node_id` (stored there only as Git LFS pointers or not at all) were taken from
    /// a client's transcription of the same suite (v1.7.0-alpha.13, minimal). Every case was also
    /// recomputed with an independent Python script (hashlib.sha256, Python integers) following
    /// the spec text, which agreed on all of them.
    #[test]
    fn spec_test_vectors() {
        let all: Vec<u64> = (0..128).collect();
        let cases: &[(&str, u64, &[u64])] = &[
            (
                "51781405571328938149219259614021022118347017557305093857689627172914154745642",
                47,
                &[
                    3, 6, 7, 8, 9, 12, 25, 26, 29, 30, 32, 40, 42, 47, 52, 53, 54, 55, 56, 57, 69,
                    70, 71, 72, 74, 77, 80, 81, 83, 88, 93, 94, 95, 98, 101, 105, 106, 112, 114,
                    116, 118, 120, 121, 123, 124, 125, 127,
                ],
            ),
            (
                "84065159290331321853352677657753050104170032838956724170714636178275273565505",
                6,
                &[27, 29, 58, 67, 96, 117],
            ),
            (
                "62524992026686681062927724650084164361416283301810167550777687366062873585350",
                93,
                &[
                    0, 1, 2, 4, 5, 6, 7, 9, 10, 13, 14, 16, 19, 20, 21, 22, 23, 24, 25, 26, 29, 30,
                    31, 34, 36, 37, 38, 39, 40, 41, 42, 44, 45, 46, 49, 50, 53, 54, 55, 56, 57, 58,
                    60, 62, 66, 67, 68, 70, 71, 72, 74, 75, 76, 77, 78, 79, 80, 81, 82, 83, 84, 86,
                    87, 88, 89, 90, 91, 92, 93, 95, 96, 98, 99, 100, 101, 103, 104, 105, 107, 108,
                    109, 111, 112, 113, 114, 115, 117, 118, 120, 122, 123, 126, 127,
                ],
            ),
            (MAX_NODE_ID, 4, &[1, 47, 87, 102]),
            (MAX_NODE_ID_MINUS_1, 4, &[1, 47, 87, 102]),
            (MAX_NODE_ID, 0, &[]),
            (MAX_NODE_ID, 128, &all),
            (MAX_NODE_ID_MINUS_1, 128, &all),
            ("0", 0, &[]),
            ("0", 128, &all),
            ("1048576", 1, &[65]),
        ];
        for &(id, count, want) in cases {
            let node = decimal_be(id);
            assert_eq!(
                custody_groups(&node, count, 128),
                want,
                "node {id}, count {count}"
            );
            assert_eq!(
                custody_columns(&node, count),
                want,
                "node {id}, count {count}"
            );
        }
    }

    /// Cases computed with the independent Python script (spec algorithm, hashlib.sha256):
    /// node ids 0, 1, 2^256 − 1 (walks through the wrap to 0, 1, …), 2^256 − 2 and
    /// 0x0102…1f20; and a 4-group total where 2^256 − 1 → 0 → 1 must wrap.
    #[test]
    fn independent_vectors() {
        let mut one = [0u8; 32];
        one[31] = 1;
        let mut max_m1 = [0xff; 32];
        max_m1[31] = 0xfe;
        let mut ramp = [0u8; 32];
        for (i, b) in ramp.iter_mut().enumerate() {
            *b = i as u8 + 1;
        }
        let cases: &[([u8; 32], u64, &[u64])] = &[
            ([0; 32], 1, &[102]),
            ([0; 32], 4, &[1, 17, 87, 102]),
            ([0; 32], 8, &[1, 17, 19, 42, 75, 87, 102, 117]),
            (one, 4, &[1, 17, 75, 87]),
            ([0xff; 32], 8, &[1, 17, 19, 42, 47, 75, 87, 102]),
            (max_m1, 8, &[1, 17, 19, 42, 47, 75, 87, 102]),
            (ramp, 8, &[21, 37, 48, 63, 77, 98, 118, 125]),
        ];
        for (node, count, want) in cases {
            assert_eq!(custody_groups(node, *count, 128), *want, "count {count}");
        }
        assert_eq!(custody_groups(&[0xff; 32], 3, 4), [1, 2, 3]);
        assert_eq!(custody_groups(&[0; 32], 2, 4), [1, 2]);
    }

    #[test]
    fn increment_wraps() {
        let mut x = [0xff; 32];
        increment_le(&mut x);
        assert_eq!(x, [0; 32]);
        let mut y = [0u8; 32];
        y[0] = 0xff;
        increment_le(&mut y);
        assert_eq!(&y[..2], &[0, 1]);
    }

    #[test]
    fn groups_distinct_sorted_in_range_and_nested() {
        for fill in [0x00u8, 0x01, 0x37, 0x7a, 0xff] {
            let node = [fill; 32];
            let mut prev: Vec<u64> = Vec::new();
            for count in 0..=128 {
                let g = custody_groups(&node, count, 128);
                assert_eq!(g.len() as u64, count);
                assert!(g.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
                assert!(g.iter().all(|&x| x < 128));
                // The walk is the same for every count: a smaller count is a subset.
                assert!(prev.iter().all(|x| g.binary_search(x).is_ok()));
                prev = g;
            }
        }
    }

    #[test]
    fn count_clamped_to_total() {
        let all: Vec<u64> = (0..128).collect();
        for count in [128, 129, 1000, u64::MAX] {
            assert_eq!(custody_groups(&[7; 32], count, 128), all);
            assert_eq!(custody_columns(&[7; 32], count), all);
        }
        assert!(custody_groups(&[7; 32], 5, 0).is_empty());
        assert_eq!(custody_groups(&[7; 32], 5, 1), [0]);
    }

    #[test]
    fn columns_of_group() {
        // Mainnet: one column per group.
        for g in 0..128 {
            assert_eq!(columns_for_custody_group(g, 128, 128), [g]);
        }
        assert_eq!(columns_for_custody_group(3, 128, 32), [3, 35, 67, 99]);
        assert_eq!(columns_for_custody_group(0, 128, 64), [0, 64]);
        assert!(columns_for_custody_group(128, 128, 128).is_empty());
        assert!(columns_for_custody_group(0, 128, 0).is_empty());
        // Every column belongs to exactly one group.
        let mut seen: Vec<u64> = (0..32)
            .flat_map(|g| columns_for_custody_group(g, 128, 32))
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..128).collect::<Vec<_>>());
    }

    /// discv5 wire test vectors (devp2p `discv5-wire-test-vectors.md`): node-a-key → node-a id,
    /// node-b-key → node-b id; and the EIP-778 example record: key b71c71a6… → node id a448f24c…,
    /// whose compressed public key (the record's `secp256k1` entry) is 03ca634c….
    #[test]
    fn node_id_vectors() {
        let cases = [
            (
                "eef77acb6c6a6eebc5b363a475ac583ec7eccdb42b6481424c60f59aa326547f",
                "aaaa8419e9f49d0083561b48287df592939a8d19947d8c0ef88f2a4856a69fbb",
            ),
            (
                "66fb62bfbd66b9177a138c1e5cddbe4f7c30c343e94e68df8769459cb1cde628",
                "bbbb9d047f0488c0b5a93c1c3f2d8bafc7c8ff337024a55434a0d0555de64db9",
            ),
            (
                "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291",
                "a448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7",
            ),
        ];
        for (secret, want) in cases {
            let key = Keypair::secp256k1_from_bytes(hex32(secret)).unwrap();
            let public = key.public();
            assert_eq!(node_id(&public), Some(hex32(want)), "key {secret}");
            assert_eq!(node_id_of_peer(&public.to_peer_id()), Some(hex32(want)));
        }
        let compressed = data_encoding::HEXLOWER
            .decode(b"03ca634cae0d49acb401d8a4c6b6fe8c55b70d115bf400769cc1400f3258cd3138")
            .unwrap();
        let public = PublicKey::from_raw_bytes(KeyType::Secp256k1, &compressed).unwrap();
        assert_eq!(
            node_id(&public),
            Some(hex32(
                "a448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7"
            ))
        );
    }

    #[test]
    fn no_node_id_without_secp256k1_key() {
        let ed = Keypair::generate_ed25519().public();
        assert_eq!(node_id(&ed), None);
        assert_eq!(node_id_of_peer(&ed.to_peer_id()), None);
        assert_eq!(peer_custody_columns(&ed.to_peer_id(), 4), None);
        // A sha2-256 peer id carries no key.
        let mut bytes = vec![0x12, 0x20];
        bytes.extend_from_slice(&[0xab; 32]);
        let hashed = PeerId::from_bytes(&bytes).unwrap();
        assert_eq!(node_id_of_peer(&hashed), None);
    }

    #[test]
    fn peer_columns() {
        let key = Keypair::secp256k1_from_bytes(hex32(
            "b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291",
        ))
        .unwrap();
        let peer = key.public().to_peer_id();
        let id = node_id_of_peer(&peer).unwrap();
        let columns = peer_custody_columns(&peer, 4).unwrap();
        assert_eq!(columns, custody_groups(&id, 4, 128));
        assert_eq!(columns.len(), 4);
    }
}
