//! Shared helpers: fork schedules and payloads with the fields the checks read.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;

use plexus_eth::{Fork, ForkDigest, ForkSchedule, Network, Slot};
use plexus_reqresp::{
    Chunk, CodecConfig, CodecError, Protocol, ResponseDecoder, decode_response_bytes,
};

pub fn mainnet() -> Arc<ForkSchedule> {
    Arc::new(ForkSchedule::for_network(Network::Mainnet).expect("mainnet schedule"))
}

/// Sepolia schedules Gloas.
pub fn sepolia() -> Arc<ForkSchedule> {
    Arc::new(ForkSchedule::for_network(Network::Sepolia).expect("sepolia schedule"))
}

/// The digest of the first epoch of `fork` on `schedule`.
pub fn digest_of(schedule: &ForkSchedule, fork: Fork) -> ForkDigest {
    schedule
        .entries()
        .iter()
        .find(|e| e.fork == fork)
        .expect("fork scheduled")
        .digest
}

/// A slot in the first epoch of `fork`.
pub fn slot_of(schedule: &ForkSchedule, fork: Fork) -> Slot {
    let epoch = schedule
        .entries()
        .iter()
        .find(|e| e.fork == fork)
        .expect("fork scheduled")
        .epoch;
    epoch * schedule.config().preset.slots_per_epoch()
}

/// A `SignedBeaconBlock`-shaped payload of `len` bytes: message offset 100, then the slot.
/// (Only the fields the codec and the checks read are meaningful.)
pub fn fake_block(slot: Slot, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    b[0..4].copy_from_slice(&100u32.to_le_bytes());
    b[100..108].copy_from_slice(&slot.to_le_bytes());
    // Some structure so snappy has something to compress.
    for (i, x) in b.iter_mut().enumerate().skip(108) {
        *x = (i % 251) as u8;
    }
    b
}

/// A `BlobSidecar`-shaped payload (131,928 bytes) with `index` and a signed header of `slot`
/// whose other fields are `body`.
pub fn fake_blob_sidecar(slot: Slot, index: u64, body: u8) -> Vec<u8> {
    let mut b = vec![0u8; 131_928];
    b[0..8].copy_from_slice(&index.to_le_bytes());
    let h = 8 + 4096 * 32 + 48 + 48;
    b[h..h + 8].copy_from_slice(&slot.to_le_bytes());
    b[h + 16..h + 112].fill(body);
    b
}

/// The 112-byte header inside [`fake_blob_sidecar`].
pub fn blob_header(sidecar: &[u8]) -> [u8; 112] {
    let h = 8 + 4096 * 32 + 48 + 48;
    sidecar[h..h + 112].try_into().expect("112 bytes")
}

/// A Fulu `DataColumnSidecar`-shaped payload with no cells (356 bytes).
pub fn fake_column(slot: Slot, index: u64, body: u8) -> Vec<u8> {
    let mut b = vec![0u8; 356];
    b[0..8].copy_from_slice(&index.to_le_bytes());
    for k in 0..3 {
        b[8 + 4 * k..12 + 4 * k].copy_from_slice(&356u32.to_le_bytes());
    }
    b[20..28].copy_from_slice(&slot.to_le_bytes());
    b[36..132].fill(body);
    b
}

/// Decode a whole response.
pub fn decode_all(
    protocol: Protocol,
    schedule: &Arc<ForkSchedule>,
    max_chunks: u64,
    bytes: &[u8],
) -> Result<Vec<Chunk>, CodecError> {
    decode_response_bytes(
        protocol,
        schedule.clone(),
        CodecConfig::default(),
        max_chunks,
        bytes,
    )
}

/// Decode a response fed `step` bytes at a time.
pub fn decode_split(
    protocol: Protocol,
    schedule: &Arc<ForkSchedule>,
    max_chunks: u64,
    bytes: &[u8],
    step: usize,
) -> Result<Vec<Chunk>, CodecError> {
    let mut dec = ResponseDecoder::new(
        protocol,
        schedule.clone(),
        CodecConfig::default(),
        max_chunks,
    );
    let mut chunks = Vec::new();
    for piece in bytes.chunks(step.max(1)) {
        let mut input = piece;
        while !input.is_empty() {
            if let Some(c) = dec.decode(&mut input)? {
                chunks.push(c);
            }
        }
    }
    dec.finish()?;
    Ok(chunks)
}

pub fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
