//! TEMPORARY STUB — being replaced by the full implementation.
#![allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId([u8; 39]);
impl std::fmt::Display for PeerId { fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { write!(f, "{:?}", &self.0[..]) } }
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(Vec<u8>);
