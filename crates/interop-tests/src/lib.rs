//! Interop tests against rust-libp2p live in `tests/`. This crate has no library code.
