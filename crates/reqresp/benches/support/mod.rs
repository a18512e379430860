//! What both Req/Resp benches share: the chain (mainnet's current fork), and a
//! `SignedBeaconBlock`-shaped payload that snappy compresses partly (≈ 58 %), as it does blocks.

use std::sync::Arc;

use plexus_eth::{Fork, ForkDigest, ForkSchedule, Network, Slot};

/// Size of each block payload: 128 KiB of SSZ.
pub(crate) const BLOCK_LEN: usize = 128 * 1024;

/// Mainnet's schedule, its newest scheduled entry (the fork in force today, BPO digests
/// included), and the first slot of that entry.
pub(crate) struct Chain {
    pub(crate) schedule: Arc<ForkSchedule>,
    pub(crate) fork: Fork,
    pub(crate) digest: ForkDigest,
    pub(crate) start_slot: Slot,
}

impl Chain {
    pub(crate) fn mainnet() -> Chain {
        let schedule = Arc::new(ForkSchedule::for_network(Network::Mainnet).expect("mainnet"));
        let entry = *schedule.entries().last().expect("at least one entry");
        assert!(
            entry.fork >= Fork::Altair,
            "blocks_by_range/2 carries context bytes from Altair on"
        );
        let start_slot = entry.epoch * schedule.config().preset.slots_per_epoch();
        Chain {
            fork: entry.fork,
            digest: entry.digest,
            start_slot,
            schedule,
        }
    }
}

/// A small deterministic generator (xorshift64*), so payloads are the same in every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let r = self.next().to_le_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
    }
}

/// A `SignedBeaconBlock`-shaped payload of `len` bytes for `slot`: the message offset (100)
/// and a random 96-byte signature, the slot at the message's start, then alternating runs of
/// random bytes and of zeros, each 8–64 bytes long (hashes, keys and signatures next to
/// zero-padded integers and empty fields), so about half random bytes and half zeros
/// interleaved: snappy frames carry ≈ 58 % of it. Only the fields the codec and the response
/// checks read are meaningful.
pub(crate) fn block_payload(slot: Slot, len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut b = vec![0u8; len];
    b[0..4].copy_from_slice(&100u32.to_le_bytes());
    rng.fill(&mut b[4..100]);
    b[100..108].copy_from_slice(&slot.to_le_bytes());
    let mut i = 108;
    while i < len {
        let random = 8 + (rng.next() % 57) as usize;
        let end = (i + random).min(len);
        rng.fill(&mut b[i..end]);
        let zeros = 8 + (rng.next() % 57) as usize;
        i = end + zeros;
    }
    b
}
