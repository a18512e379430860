//! TEMPORARY STUB — being replaced by the full implementation.
#![allow(missing_docs)]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Multiaddr(Vec<u8>);
