//! The muxer conformance suite from `plexus-testkit`, run against mplex with
//! its default configuration: one test per case.

plexus_testkit::muxer_conformance_tests!(plexus_mplex::MplexConfig::default());
