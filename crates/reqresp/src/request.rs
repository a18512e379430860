//! Typed requests: one variant per protocol, with their SSZ encoding, their checks against the
//! fork's request limits and the most response chunks each allows.

use plexus_eth::{
    BeaconBlocksByHeadRequest, BeaconBlocksByRangeRequest, BeaconBlocksByRootRequest,
    BlobSidecarsByRangeRequest, BlobSidecarsByRootRequest, DataColumnSidecarsByRangeRequest,
    DataColumnSidecarsByRootRequest, ExecutionPayloadEnvelopesByRangeRequest,
    ExecutionPayloadEnvelopesByRootRequest, Goodbye, LightClientBootstrapRequest,
    LightClientUpdatesByRangeRequest, Ping, RequestError, RequestLimits, StatusV1, StatusV2,
    decode_ssz, encode_ssz,
};

use crate::error::CodecError;
use crate::protocol::Protocol;

/// A request of any protocol. The variant fixes the protocol (and so its version).
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // each variant is named after its protocol; see `Protocol`
pub enum Request {
    StatusV1(StatusV1),
    StatusV2(StatusV2),
    Goodbye(Goodbye),
    Ping(Ping),
    MetaDataV1,
    MetaDataV2,
    MetaDataV3,
    BeaconBlocksByRangeV1(BeaconBlocksByRangeRequest),
    BeaconBlocksByRangeV2(BeaconBlocksByRangeRequest),
    BeaconBlocksByRootV1(BeaconBlocksByRootRequest),
    BeaconBlocksByRootV2(BeaconBlocksByRootRequest),
    BlobSidecarsByRange(BlobSidecarsByRangeRequest),
    BlobSidecarsByRoot(BlobSidecarsByRootRequest),
    DataColumnSidecarsByRange(DataColumnSidecarsByRangeRequest),
    DataColumnSidecarsByRoot(DataColumnSidecarsByRootRequest),
    BeaconBlocksByHead(BeaconBlocksByHeadRequest),
    LightClientBootstrap(LightClientBootstrapRequest),
    LightClientUpdatesByRange(LightClientUpdatesByRangeRequest),
    LightClientFinalityUpdate,
    LightClientOptimisticUpdate,
    ExecutionPayloadEnvelopesByRange(ExecutionPayloadEnvelopesByRangeRequest),
    ExecutionPayloadEnvelopesByRoot(ExecutionPayloadEnvelopesByRootRequest),
}

impl Request {
    /// The protocol this request is sent on.
    pub fn protocol(&self) -> Protocol {
        match self {
            Request::StatusV1(_) => Protocol::StatusV1,
            Request::StatusV2(_) => Protocol::StatusV2,
            Request::Goodbye(_) => Protocol::GoodbyeV1,
            Request::Ping(_) => Protocol::PingV1,
            Request::MetaDataV1 => Protocol::MetaDataV1,
            Request::MetaDataV2 => Protocol::MetaDataV2,
            Request::MetaDataV3 => Protocol::MetaDataV3,
            Request::BeaconBlocksByRangeV1(_) => Protocol::BeaconBlocksByRangeV1,
            Request::BeaconBlocksByRangeV2(_) => Protocol::BeaconBlocksByRangeV2,
            Request::BeaconBlocksByRootV1(_) => Protocol::BeaconBlocksByRootV1,
            Request::BeaconBlocksByRootV2(_) => Protocol::BeaconBlocksByRootV2,
            Request::BlobSidecarsByRange(_) => Protocol::BlobSidecarsByRangeV1,
            Request::BlobSidecarsByRoot(_) => Protocol::BlobSidecarsByRootV1,
            Request::DataColumnSidecarsByRange(_) => Protocol::DataColumnSidecarsByRangeV1,
            Request::DataColumnSidecarsByRoot(_) => Protocol::DataColumnSidecarsByRootV1,
            Request::BeaconBlocksByHead(_) => Protocol::BeaconBlocksByHeadV1,
            Request::LightClientBootstrap(_) => Protocol::LightClientBootstrapV1,
            Request::LightClientUpdatesByRange(_) => Protocol::LightClientUpdatesByRangeV1,
            Request::LightClientFinalityUpdate => Protocol::LightClientFinalityUpdateV1,
            Request::LightClientOptimisticUpdate => Protocol::LightClientOptimisticUpdateV1,
            Request::ExecutionPayloadEnvelopesByRange(_) => {
                Protocol::ExecutionPayloadEnvelopesByRangeV1
            }
            Request::ExecutionPayloadEnvelopesByRoot(_) => {
                Protocol::ExecutionPayloadEnvelopesByRootV1
            }
        }
    }

    /// The SSZ body (empty for protocols without one).
    pub fn to_ssz(&self) -> Vec<u8> {
        match self {
            Request::StatusV1(r) => encode_ssz(r),
            Request::StatusV2(r) => encode_ssz(r),
            Request::Goodbye(r) => encode_ssz(r),
            Request::Ping(r) => encode_ssz(r),
            Request::MetaDataV1
            | Request::MetaDataV2
            | Request::MetaDataV3
            | Request::LightClientFinalityUpdate
            | Request::LightClientOptimisticUpdate => Vec::new(),
            Request::BeaconBlocksByRangeV1(r) | Request::BeaconBlocksByRangeV2(r) => encode_ssz(r),
            Request::BeaconBlocksByRootV1(r) | Request::BeaconBlocksByRootV2(r) => encode_ssz(r),
            Request::BlobSidecarsByRange(r) => encode_ssz(r),
            Request::BlobSidecarsByRoot(r) => encode_ssz(r),
            Request::DataColumnSidecarsByRange(r) => encode_ssz(r),
            Request::DataColumnSidecarsByRoot(r) => encode_ssz(r),
            Request::BeaconBlocksByHead(r) => encode_ssz(r),
            Request::LightClientBootstrap(r) => encode_ssz(r),
            Request::LightClientUpdatesByRange(r) => encode_ssz(r),
            Request::ExecutionPayloadEnvelopesByRange(r) => encode_ssz(r),
            Request::ExecutionPayloadEnvelopesByRoot(r) => encode_ssz(r),
        }
    }

    /// Decode the SSZ body of a request of `protocol` (as returned by
    /// [`crate::RequestDecoder::finish`]).
    ///
    /// # Errors
    /// [`CodecError::Ssz`] when the bytes are not exactly one valid value.
    pub fn from_ssz(protocol: Protocol, ssz: &[u8]) -> Result<Request, CodecError> {
        fn d<T: plexus_eth::ssz::Decode>(b: &[u8]) -> Result<T, CodecError> {
            decode_ssz(b).map_err(|e| CodecError::Ssz(format!("{:?}", e.0)))
        }
        let empty = |r: Request| {
            if ssz.is_empty() {
                Ok(r)
            } else {
                Err(CodecError::TrailingBytes)
            }
        };
        Ok(match protocol {
            Protocol::StatusV1 => Request::StatusV1(d(ssz)?),
            Protocol::StatusV2 => Request::StatusV2(d(ssz)?),
            Protocol::GoodbyeV1 => Request::Goodbye(d(ssz)?),
            Protocol::PingV1 => Request::Ping(d(ssz)?),
            Protocol::MetaDataV1 => return empty(Request::MetaDataV1),
            Protocol::MetaDataV2 => return empty(Request::MetaDataV2),
            Protocol::MetaDataV3 => return empty(Request::MetaDataV3),
            Protocol::BeaconBlocksByRangeV1 => Request::BeaconBlocksByRangeV1(d(ssz)?),
            Protocol::BeaconBlocksByRangeV2 => Request::BeaconBlocksByRangeV2(d(ssz)?),
            Protocol::BeaconBlocksByRootV1 => Request::BeaconBlocksByRootV1(d(ssz)?),
            Protocol::BeaconBlocksByRootV2 => Request::BeaconBlocksByRootV2(d(ssz)?),
            Protocol::BlobSidecarsByRangeV1 => Request::BlobSidecarsByRange(d(ssz)?),
            Protocol::BlobSidecarsByRootV1 => Request::BlobSidecarsByRoot(d(ssz)?),
            Protocol::DataColumnSidecarsByRangeV1 => Request::DataColumnSidecarsByRange(d(ssz)?),
            Protocol::DataColumnSidecarsByRootV1 => Request::DataColumnSidecarsByRoot(d(ssz)?),
            Protocol::BeaconBlocksByHeadV1 => Request::BeaconBlocksByHead(d(ssz)?),
            Protocol::LightClientBootstrapV1 => Request::LightClientBootstrap(d(ssz)?),
            Protocol::LightClientUpdatesByRangeV1 => Request::LightClientUpdatesByRange(d(ssz)?),
            Protocol::LightClientFinalityUpdateV1 => {
                return empty(Request::LightClientFinalityUpdate);
            }
            Protocol::LightClientOptimisticUpdateV1 => {
                return empty(Request::LightClientOptimisticUpdate);
            }
            Protocol::ExecutionPayloadEnvelopesByRangeV1 => {
                Request::ExecutionPayloadEnvelopesByRange(d(ssz)?)
            }
            Protocol::ExecutionPayloadEnvelopesByRootV1 => {
                Request::ExecutionPayloadEnvelopesByRoot(d(ssz)?)
            }
        })
    }

    /// Check the request against the fork's limits (count limits, `step`, slot overflow,
    /// column indices). An invalid request is answered with `InvalidRequest`.
    ///
    /// # Errors
    /// The [`RequestError`].
    pub fn validate(&self, limits: &RequestLimits) -> Result<(), RequestError> {
        match self {
            Request::BeaconBlocksByRangeV1(r) | Request::BeaconBlocksByRangeV2(r) => r.validate(),
            Request::BeaconBlocksByRootV1(r) | Request::BeaconBlocksByRootV2(r) => {
                r.validate(limits)
            }
            Request::BlobSidecarsByRange(r) => r.validate(),
            Request::BlobSidecarsByRoot(r) => r.validate(limits),
            Request::DataColumnSidecarsByRange(r) => r.validate(limits),
            Request::DataColumnSidecarsByRoot(r) => r.validate(limits),
            Request::LightClientUpdatesByRange(r) => r.validate(),
            Request::ExecutionPayloadEnvelopesByRange(r) => r.validate(),
            Request::ExecutionPayloadEnvelopesByRoot(r) => r.validate(limits),
            Request::BeaconBlocksByHead(_)
            | Request::StatusV1(_)
            | Request::StatusV2(_)
            | Request::Goodbye(_)
            | Request::Ping(_)
            | Request::MetaDataV1
            | Request::MetaDataV2
            | Request::MetaDataV3
            | Request::LightClientBootstrap(_)
            | Request::LightClientFinalityUpdate
            | Request::LightClientOptimisticUpdate => Ok(()),
        }
    }

    /// The most success chunks the response may carry under `limits` (the fork's).
    pub fn max_response_chunks(&self, limits: &RequestLimits) -> u64 {
        match self {
            Request::BeaconBlocksByRangeV1(r) | Request::BeaconBlocksByRangeV2(r) => {
                r.max_response_chunks(limits)
            }
            Request::BeaconBlocksByRootV1(r) | Request::BeaconBlocksByRootV2(r) => {
                r.max_response_chunks()
            }
            Request::BlobSidecarsByRange(r) => r.max_response_chunks(limits),
            Request::BlobSidecarsByRoot(r) => r.max_response_chunks(),
            Request::DataColumnSidecarsByRange(r) => r.max_response_chunks(limits),
            Request::DataColumnSidecarsByRoot(r) => r.max_response_chunks(),
            Request::BeaconBlocksByHead(r) => r.max_response_chunks(limits),
            Request::LightClientUpdatesByRange(r) => r.max_response_chunks(),
            Request::ExecutionPayloadEnvelopesByRange(r) => r.max_response_chunks(limits),
            Request::ExecutionPayloadEnvelopesByRoot(r) => r.max_response_chunks(),
            Request::StatusV1(_)
            | Request::StatusV2(_)
            | Request::Goodbye(_)
            | Request::Ping(_)
            | Request::MetaDataV1
            | Request::MetaDataV2
            | Request::MetaDataV3
            | Request::LightClientBootstrap(_)
            | Request::LightClientFinalityUpdate
            | Request::LightClientOptimisticUpdate => 1,
        }
    }

    /// The same request on another version of its protocol, for fallback after the peer
    /// refused the first (`status/2` → `status/1` drops `earliest_available_slot`; the v1 and
    /// v2 block requests share their body). `None` when `protocol` is not a version of this
    /// request's message, or cannot carry it (`status/1` → `status/2`).
    pub fn for_protocol(&self, protocol: Protocol) -> Option<Request> {
        if protocol == self.protocol() {
            return Some(self.clone());
        }
        Some(match (self, protocol) {
            (Request::StatusV2(s), Protocol::StatusV1) => Request::StatusV1((*s).into()),
            (
                Request::MetaDataV1 | Request::MetaDataV2 | Request::MetaDataV3,
                Protocol::MetaDataV1,
            ) => Request::MetaDataV1,
            (
                Request::MetaDataV1 | Request::MetaDataV2 | Request::MetaDataV3,
                Protocol::MetaDataV2,
            ) => Request::MetaDataV2,
            (
                Request::MetaDataV1 | Request::MetaDataV2 | Request::MetaDataV3,
                Protocol::MetaDataV3,
            ) => Request::MetaDataV3,
            (
                Request::BeaconBlocksByRangeV1(r) | Request::BeaconBlocksByRangeV2(r),
                Protocol::BeaconBlocksByRangeV1,
            ) => Request::BeaconBlocksByRangeV1(*r),
            (
                Request::BeaconBlocksByRangeV1(r) | Request::BeaconBlocksByRangeV2(r),
                Protocol::BeaconBlocksByRangeV2,
            ) => Request::BeaconBlocksByRangeV2(*r),
            (
                Request::BeaconBlocksByRootV1(r) | Request::BeaconBlocksByRootV2(r),
                Protocol::BeaconBlocksByRootV1,
            ) => Request::BeaconBlocksByRootV1(r.clone()),
            (
                Request::BeaconBlocksByRootV1(r) | Request::BeaconBlocksByRootV2(r),
                Protocol::BeaconBlocksByRootV2,
            ) => Request::BeaconBlocksByRootV2(r.clone()),
            _ => return None,
        })
    }
}
