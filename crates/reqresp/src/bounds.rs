//! SSZ length bounds of the response chunk types that plexus-eth does not define (blocks,
//! sidecars, light client objects, payload envelopes), per fork and preset, derived from the
//! spec's type definitions. Maxima above `MAX_PAYLOAD_SIZE` are capped by the caller.
//!
//! Field sizes used below (bytes): BLS signature 96, root 32, SSZ offset 4,
//! `BeaconBlockHeader` 112, `SignedBeaconBlockHeader` 208, `Eth1Data` 72, `AttestationData` 128.

use plexus_eth::{ChainConfig, Fork};

use crate::protocol::ResponseKind;

const OFFSET: u64 = 4;
const SIGNATURE: u64 = 96;
const ROOT: u64 = 32;
const HEADER: u64 = 112;
const SIGNED_HEADER: u64 = 208;
const ETH1_DATA: u64 = 72;
const ATTESTATION_DATA: u64 = 128;
/// No SSZ bound below `MAX_PAYLOAD_SIZE` (execution payloads, progressive lists).
const UNBOUNDED: u64 = u64::MAX;

/// `SyncAggregate`: `Bitvector[SYNC_COMMITTEE_SIZE]` + signature (160 mainnet, 100 minimal).
fn sync_aggregate(config: &ChainConfig) -> u64 {
    config.preset.sync_committee_size().div_ceil(8) + SIGNATURE
}

/// `SyncCommittee`: the member keys and the aggregate key (48 bytes each).
fn sync_committee(config: &ChainConfig) -> u64 {
    config.preset.sync_committee_size() * 48 + 48
}

/// The largest phase 0 `BeaconBlockBody` (16 proposer slashings, 2 attester slashings, 128
/// attestations, 16 deposits, 16 exits: the same in both presets).
fn phase0_body_max(config: &ChainConfig) -> u64 {
    let committee = config.preset.max_validators_per_committee();
    let proposer_slashing = 2 * SIGNED_HEADER;
    let indexed_attestation = OFFSET + ATTESTATION_DATA + SIGNATURE + 8 * committee;
    let attester_slashing = 2 * OFFSET + 2 * indexed_attestation;
    let attestation = OFFSET + ATTESTATION_DATA + SIGNATURE + (committee / 8 + 1);
    let deposit = 33 * ROOT + (48 + 32 + 8 + SIGNATURE);
    let exit = 8 + 8 + SIGNATURE;
    phase0_body_fixed()
        + 16 * proposer_slashing
        + 2 * (OFFSET + attester_slashing)
        + 128 * (OFFSET + attestation)
        + 16 * deposit
        + 16 * exit
}

/// randao reveal, eth1 data, graffiti, and the offsets of the five operation lists.
fn phase0_body_fixed() -> u64 {
    SIGNATURE + ETH1_DATA + ROOT + 5 * OFFSET
}

/// `SignedBeaconBlock` wrapper + `BeaconBlock` fixed part: message offset, signature, slot,
/// proposer index, parent root, state root, body offset.
const SIGNED_BLOCK_OVERHEAD: u64 = OFFSET + SIGNATURE + 8 + 8 + ROOT + ROOT + OFFSET;

/// Smallest `ExecutionPayload` (empty extra data, transactions, withdrawals): Bellatrix 508,
/// Capella 512 (withdrawals offset), Deneb to Fulu 528 (blob gas fields), Gloas 540 (block
/// access list offset, slot number).
fn execution_payload_min(fork: Fork) -> u64 {
    // parent_hash, fee_recipient, state_root, receipts_root, logs_bloom, prev_randao,
    // block_number, gas_limit, gas_used, timestamp, extra_data offset, base_fee_per_gas,
    // block_hash, transactions offset
    let bellatrix = 32 + 20 + 32 + 32 + 256 + 32 + 8 + 8 + 8 + 8 + OFFSET + 32 + 32 + OFFSET;
    match fork {
        Fork::Phase0 | Fork::Altair | Fork::Bellatrix => bellatrix,
        Fork::Capella => bellatrix + OFFSET,
        Fork::Deneb | Fork::Electra | Fork::Fulu => bellatrix + OFFSET + 16,
        Fork::Gloas => bellatrix + OFFSET + 16 + OFFSET + 8,
    }
}

/// `[min, max]` of `SignedBeaconBlock` at `fork` (max [`UNBOUNDED`] from Bellatrix: the
/// execution payload's transactions, and from Gloas the progressive operation lists, have no
/// bound below `MAX_PAYLOAD_SIZE`). Mainnet minima: phase 0 404, Altair 564, Bellatrix 1076,
/// Capella 1084, Deneb 1104, Electra and Fulu 1120, Gloas 924.
pub(crate) fn signed_beacon_block(fork: Fork, config: &ChainConfig) -> Option<(u64, u64)> {
    let base_min = SIGNED_BLOCK_OVERHEAD + phase0_body_fixed();
    let base_max = SIGNED_BLOCK_OVERHEAD + phase0_body_max(config);
    let sa = sync_aggregate(config);
    Some(match fork {
        Fork::Phase0 => (base_min, base_max),
        Fork::Altair => (base_min + sa, base_max + sa),
        Fork::Bellatrix => (
            base_min + sa + OFFSET + execution_payload_min(fork),
            UNBOUNDED,
        ),
        // + bls_to_execution_changes offset
        Fork::Capella => (
            base_min + sa + OFFSET + execution_payload_min(fork) + OFFSET,
            UNBOUNDED,
        ),
        // + blob_kzg_commitments offset
        Fork::Deneb => (
            base_min + sa + OFFSET + execution_payload_min(fork) + 2 * OFFSET,
            UNBOUNDED,
        ),
        // + execution_requests offset and its three list offsets
        Fork::Electra | Fork::Fulu => (
            base_min + sa + OFFSET + execution_payload_min(fork) + 3 * OFFSET + 3 * OFFSET,
            UNBOUNDED,
        ),
        Fork::Gloas => {
            // body: phase 0 fixed part, sync aggregate, offsets of bls_to_execution_changes,
            // signed_execution_payload_bid, payload_attestations, parent_execution_requests;
            // then the smallest bid (324) and ExecutionRequests (five list offsets).
            let bid = OFFSET + SIGNATURE + (4 * 32 + 20 + 5 * 8 + OFFSET + ROOT);
            let requests = 5 * OFFSET;
            (
                SIGNED_BLOCK_OVERHEAD + phase0_body_fixed() + sa + 4 * OFFSET + bid + requests,
                UNBOUNDED,
            )
        }
    })
}

/// `BlobSidecar` (Deneb, Electra): fixed 131,928 bytes (index, blob, commitment, proof,
/// signed header, 17-deep inclusion proof; the same in both presets).
pub(crate) fn blob_sidecar(fork: Fork) -> Option<(u64, u64)> {
    let size = 8 + 4096 * 32 + 48 + 48 + SIGNED_HEADER + 17 * ROOT;
    matches!(fork, Fork::Deneb | Fork::Electra).then_some((size, size))
}

/// `DataColumnSidecar`: Fulu 356 + 2144 per cell (column, commitments, proofs), Gloas 56 +
/// 2096 per cell (`MAX_DATA_COLUMN_SIDECAR_SIZE` = 8,585,272), at most
/// `MAX_BLOB_COMMITMENTS_PER_BLOCK` (4096) cells.
pub(crate) fn data_column_sidecar(fork: Fork) -> Option<(u64, u64)> {
    let cells = plexus_eth::MAX_BLOB_COMMITMENTS_PER_BLOCK;
    let cell = 64 * 32;
    match fork {
        Fork::Fulu => {
            let fixed = 8 + 3 * OFFSET + SIGNED_HEADER + 4 * ROOT;
            Some((fixed, fixed + cells * (cell + 48 + 48)))
        }
        Fork::Gloas => {
            let fixed = 8 + 2 * OFFSET + 8 + ROOT;
            Some((fixed, fixed + cells * (cell + 48)))
        }
        _ => None,
    }
}

/// `SignedExecutionPayloadEnvelope` (Gloas): at least 740 bytes (wrapper 100, envelope fixed
/// part 80, the smallest payload 540, five request list offsets); no bound below
/// `MAX_PAYLOAD_SIZE`.
pub(crate) fn signed_execution_payload_envelope(fork: Fork) -> Option<(u64, u64)> {
    (fork >= Fork::Gloas).then(|| {
        let envelope_fixed = OFFSET + OFFSET + 8 + ROOT + ROOT;
        (
            OFFSET + SIGNATURE + envelope_fixed + execution_payload_min(fork) + 5 * OFFSET,
            UNBOUNDED,
        )
    })
}

/// Light client objects (Altair on): exact for Altair and Bellatrix (fixed-size types: header
/// 112, sync committee, 5/6-deep branches); from Capella the header carries an execution
/// payload header and the branches deepen, so the Altair size is kept as a lower bound and
/// only `MAX_PAYLOAD_SIZE` bounds the maximum.
pub(crate) fn light_client(
    kind: ResponseKind,
    fork: Fork,
    config: &ChainConfig,
) -> Option<(u64, u64)> {
    if fork < Fork::Altair {
        return None;
    }
    let sa = sync_aggregate(config);
    let sc = sync_committee(config);
    let altair = match kind {
        ResponseKind::LightClientBootstrap => HEADER + sc + 5 * ROOT,
        ResponseKind::LightClientUpdate => HEADER + sc + 5 * ROOT + HEADER + 6 * ROOT + sa + 8,
        ResponseKind::LightClientFinalityUpdate => HEADER + HEADER + 6 * ROOT + sa + 8,
        ResponseKind::LightClientOptimisticUpdate => HEADER + sa + 8,
        _ => return None,
    };
    Some(if fork <= Fork::Bellatrix {
        (altair, altair)
    } else {
        (altair, UNBOUNDED)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use plexus_eth::Network;

    #[test]
    fn block_bounds_match_known_sizes() {
        let mainnet = Network::Mainnet.config();
        // Lighthouse's test builds a full Altair block of 157,916 bytes.
        assert_eq!(
            signed_beacon_block(Fork::Altair, &mainnet),
            Some((564, 157_916))
        );
        assert_eq!(
            signed_beacon_block(Fork::Phase0, &mainnet),
            Some((404, 157_756))
        );
        let mins: Vec<u64> = Fork::ALL
            .iter()
            .map(|f| signed_beacon_block(*f, &mainnet).unwrap().0)
            .collect();
        assert_eq!(mins, [404, 564, 1076, 1084, 1104, 1120, 1120, 924]);
        // The minimal preset's sync aggregate is 60 bytes smaller.
        let minimal = Network::Minimal.config();
        assert_eq!(signed_beacon_block(Fork::Altair, &minimal).unwrap().0, 504);
    }

    #[test]
    fn sidecar_bounds() {
        assert_eq!(blob_sidecar(Fork::Deneb), Some((131_928, 131_928)));
        assert_eq!(blob_sidecar(Fork::Fulu), None);
        assert_eq!(data_column_sidecar(Fork::Fulu), Some((356, 8_782_180)));
        // MAX_DATA_COLUMN_SIDECAR_SIZE of the Gloas preset.
        assert_eq!(data_column_sidecar(Fork::Gloas), Some((56, 8_585_272)));
        assert_eq!(data_column_sidecar(Fork::Electra), None);
        assert_eq!(
            signed_execution_payload_envelope(Fork::Gloas).unwrap().0,
            740
        );
        assert_eq!(signed_execution_payload_envelope(Fork::Fulu), None);
    }

    #[test]
    fn light_client_bounds() {
        let mainnet = Network::Mainnet.config();
        let lc = |k| light_client(k, Fork::Altair, &mainnet).unwrap();
        assert_eq!(lc(ResponseKind::LightClientBootstrap), (24_896, 24_896));
        assert_eq!(lc(ResponseKind::LightClientUpdate), (25_368, 25_368));
        assert_eq!(lc(ResponseKind::LightClientFinalityUpdate), (584, 584));
        assert_eq!(lc(ResponseKind::LightClientOptimisticUpdate), (280, 280));
        assert_eq!(
            light_client(ResponseKind::LightClientBootstrap, Fork::Phase0, &mainnet),
            None
        );
    }
}
