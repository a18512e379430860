//! Fuzz body for `yamux_ops` (placeholder, to be written by the owning crate).

/// Run one input.
pub fn run(_data: &[u8]) {}
