//! Token buckets per (peer, protocol), sans-IO: the time is passed in. Used inbound (what a
//! peer may ask of us) and outbound (the self-limiter: never ask more than peers allow).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use plexus_core::PeerId;
use plexus_eth::{MAX_REQUEST_LIGHT_CLIENT_UPDATES, RequestLimits};

use crate::protocol::Protocol;
use crate::request::Request;

/// A quota: at most `tokens` per `period`, refilled continuously. A request costs one token,
/// or for list requests the most chunks it may be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Bucket capacity.
    pub tokens: u64,
    /// Time to refill an empty bucket.
    pub period: Duration,
}

impl Quota {
    /// `tokens` per `period`.
    pub const fn new(tokens: u64, period: Duration) -> Self {
        Quota { tokens, period }
    }
}

/// The quota of every protocol family, per peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// `status/*`: 5 per 15 s.
    pub status: Quota,
    /// `goodbye/1`: 1 per 10 s.
    pub goodbye: Quota,
    /// `ping/1`: 2 per 10 s.
    pub ping: Quota,
    /// `metadata/*`: 2 per 5 s.
    pub metadata: Quota,
    /// Blocks by range, root and head: one full request (`MAX_REQUEST_BLOCKS[_DENEB]` blocks)
    /// per 10 s.
    pub blocks: Quota,
    /// Blob sidecars by range and root: `compute_max_request_blob_sidecars()` per 10 s.
    pub blobs: Quota,
    /// Data column sidecars by range and root: `compute_max_request_data_column_sidecars()`
    /// per 10 s.
    pub data_columns: Quota,
    /// Execution payload envelopes by range and root: `MAX_REQUEST_PAYLOADS` per 10 s.
    pub envelopes: Quota,
    /// `light_client_bootstrap/1`: 1 per 10 s.
    pub light_client_bootstrap: Quota,
    /// `light_client_updates_by_range/1`: `MAX_REQUEST_LIGHT_CLIENT_UPDATES` per 10 s.
    pub light_client_updates: Quota,
    /// The finality and optimistic update requests: 2 per 10 s.
    pub light_client_latest: Quota,
}

impl Quotas {
    /// The default quotas for a fork's request limits (what Lighthouse and other clients
    /// allow by default, with the list quotas following the chain config).
    pub fn for_limits(limits: &RequestLimits) -> Quotas {
        let s = Duration::from_secs;
        Quotas {
            status: Quota::new(5, s(15)),
            goodbye: Quota::new(1, s(10)),
            ping: Quota::new(2, s(10)),
            metadata: Quota::new(2, s(5)),
            blocks: Quota::new(limits.max_request_blocks.max(1), s(10)),
            blobs: Quota::new(limits.max_request_blob_sidecars.max(1), s(10)),
            data_columns: Quota::new(limits.max_request_data_column_sidecars.max(1), s(10)),
            envelopes: Quota::new(limits.max_request_payloads.max(1), s(10)),
            light_client_bootstrap: Quota::new(1, s(10)),
            light_client_updates: Quota::new(MAX_REQUEST_LIGHT_CLIENT_UPDATES, s(10)),
            light_client_latest: Quota::new(2, s(10)),
        }
    }

    /// The quota of `protocol`.
    pub fn get(&self, protocol: Protocol) -> Quota {
        match protocol {
            Protocol::StatusV1 | Protocol::StatusV2 => self.status,
            Protocol::GoodbyeV1 => self.goodbye,
            Protocol::PingV1 => self.ping,
            Protocol::MetaDataV1 | Protocol::MetaDataV2 | Protocol::MetaDataV3 => self.metadata,
            Protocol::BeaconBlocksByRangeV1
            | Protocol::BeaconBlocksByRangeV2
            | Protocol::BeaconBlocksByRootV1
            | Protocol::BeaconBlocksByRootV2
            | Protocol::BeaconBlocksByHeadV1 => self.blocks,
            Protocol::BlobSidecarsByRangeV1 | Protocol::BlobSidecarsByRootV1 => self.blobs,
            Protocol::DataColumnSidecarsByRangeV1 | Protocol::DataColumnSidecarsByRootV1 => {
                self.data_columns
            }
            Protocol::ExecutionPayloadEnvelopesByRangeV1
            | Protocol::ExecutionPayloadEnvelopesByRootV1 => self.envelopes,
            Protocol::LightClientBootstrapV1 => self.light_client_bootstrap,
            Protocol::LightClientUpdatesByRangeV1 => self.light_client_updates,
            Protocol::LightClientFinalityUpdateV1 | Protocol::LightClientOptimisticUpdateV1 => {
                self.light_client_latest
            }
        }
    }
}

/// The cost of a request: the most chunks it may be answered with (at least 1).
pub fn request_cost(request: &Request, limits: &RequestLimits) -> u64 {
    if request.protocol().is_single_chunk() {
        1
    } else {
        request.max_response_chunks(limits).max(1)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens available, in nanoseconds of refill time (`tokens × period / capacity`).
    level_ns: u128,
    last: Instant,
}

/// Token buckets keyed by (peer, protocol).
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: HashMap<(PeerId, Protocol), Bucket>,
}

impl RateLimiter {
    /// An empty limiter (every bucket starts full).
    pub fn new() -> Self {
        RateLimiter::default()
    }

    /// Take `cost` tokens (capped at the quota's capacity, so any request can pass once the
    /// bucket is full) from the bucket of (peer, protocol) at `now`. `Err(wait)`: the time
    /// until enough tokens are there; nothing is taken.
    pub fn try_take(
        &mut self,
        peer: PeerId,
        protocol: Protocol,
        quota: Quota,
        cost: u64,
        now: Instant,
    ) -> Result<(), Duration> {
        let capacity = quota.tokens.max(1);
        let full = quota.period.as_nanos();
        let per_token = full / u128::from(capacity);
        let need = per_token * u128::from(cost.clamp(1, capacity));
        let b = self.buckets.entry((peer, protocol)).or_insert(Bucket {
            level_ns: full,
            last: now,
        });
        let elapsed = now.saturating_duration_since(b.last).as_nanos();
        b.level_ns = (b.level_ns + elapsed).min(full);
        b.last = now;
        if b.level_ns >= need {
            b.level_ns -= need;
            Ok(())
        } else {
            let wait = need - b.level_ns;
            Err(Duration::from_nanos(
                u64::try_from(wait).unwrap_or(u64::MAX),
            ))
        }
    }

    /// Forget a peer's buckets (on disconnect).
    pub fn remove_peer(&mut self, peer: &PeerId) {
        self.buckets.retain(|(p, _), _| p != peer);
    }

    /// Buckets held.
    pub fn len(&self) -> usize {
        self.buckets.len()
    }

    /// Whether no bucket is held.
    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_continuously_and_caps_cost() {
        let peer = plexus_identity_peer();
        let mut l = RateLimiter::new();
        let q = Quota::new(2, Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(l.try_take(peer, Protocol::PingV1, q, 1, t0), Ok(()));
        assert_eq!(l.try_take(peer, Protocol::PingV1, q, 1, t0), Ok(()));
        assert_eq!(
            l.try_take(peer, Protocol::PingV1, q, 1, t0),
            Err(Duration::from_secs(5))
        );
        // Another protocol has its own bucket.
        assert_eq!(l.try_take(peer, Protocol::StatusV1, q, 1, t0), Ok(()));
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(l.try_take(peer, Protocol::PingV1, q, 1, t1), Ok(()));
        // A cost above the capacity costs the whole bucket.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!(l.try_take(peer, Protocol::PingV1, q, 100, t2), Ok(()));
        assert!(l.try_take(peer, Protocol::PingV1, q, 1, t2).is_err());
        l.remove_peer(&peer);
        assert!(l.is_empty());
    }

    fn plexus_identity_peer() -> PeerId {
        PeerId::random()
    }
}
