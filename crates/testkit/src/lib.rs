//! Test support for plexus crates.
//!
//! - [`muxer`]: the muxer conformance suite, run against every
//!   [`plexus_core::MuxerUpgrade`] (yamux, mplex, …) through the seam traits
//!   only. Each case runs on a fresh connected pair and ends by checking that
//!   every per-connection counter ([`plexus_core::MuxStats`]) is back to zero
//!   on both sides.
//!
//! A muxer crate runs the whole suite, one `#[tokio::test]` per case, from a
//! test file:
//!
//! ```ignore
//! //! crates/<muxer>/tests/conformance.rs
//! plexus_testkit::muxer_conformance_tests!(my_muxer::Config::default());
//! ```
//!
//! - [`pair`]: the virtual-time two-core harness for any
//!   [`plexus_mux::MuxCore`], used by every muxer's core tests.
//!
//! This crate depends only on `plexus-core` and `plexus-mux` (never on a
//! concrete muxer), so every muxer can take it as a dev-dependency.
#![forbid(unsafe_code)]

pub mod muxer;
pub mod pair;

/// Re-exports used by [`muxer_conformance_tests!`]; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use plexus_core::MuxerUpgrade;
    pub use tokio;
}
