//! A strict multiaddr for the subset of protocols plexus speaks.
//!
//! Supported: `ip4`, `ip6`, `dns`, `dns4`, `dns6`, `tcp`, `udp`, `quic-v1`, `p2p` (text alias
//! `ipfs`, always printed as `p2p`). Anything else is rejected with a typed error naming the
//! protocol (text) or its code (binary), so no address that we cannot dial is silently carried.
//!
//! # Text form
//! `(/<name>[/<value>])+`. The string must start with `/`; empty components (`//`) are
//! rejected; a single trailing `/` is tolerated (`/ip4/1.2.3.4/tcp/1/` parses; it prints
//! without it). The empty string is the empty multiaddr, printed as `""`. Values are strict:
//! dotted-quad IPv4, RFC 4291 IPv6 text, decimal ports 0..=65535 without sign or leading `+`,
//! DNS names of 1..=253 bytes without `/`, peer ids in any form [`PeerId`] parses.
//!
//! # Binary form
//! `(uvarint code ‖ value)+`, variable values length-prefixed by a uvarint. Decoding rejects
//! unknown codes, non-minimal varints, truncated or over-long values, trailing garbage, invalid
//! UTF-8 in names, invalid peer ids and more than [`MAX_COMPONENTS`] components. For every
//! accepted input, re-encoding gives back exactly the input bytes.
#![forbid(unsafe_code)]

mod error;
mod protocol;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

pub use error::Error;
pub use plexus_identity::PeerId;
pub use protocol::{MAX_DNS_NAME_LENGTH, Protocol, codes};

/// Most components a multiaddr may have (text or binary). The longest address plexus uses has
/// four (`/ip6/…/udp/…/quic-v1/p2p/…`); 32 leaves room for future encapsulations while bounding
/// what a remote can make us parse and store.
pub const MAX_COMPONENTS: usize = 32;

/// Longest binary multiaddr accepted: [`MAX_COMPONENTS`] components of at most
/// 3 (code) + 2 (length) + 253 (DNS name) bytes each.
pub const MAX_ENCODED_LENGTH: usize = MAX_COMPONENTS * (3 + 2 + MAX_DNS_NAME_LENGTH);

/// A sequence of protocol components, e.g. `/ip4/192.0.2.42/tcp/443/p2p/16Uiu2…`.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct Multiaddr {
    protocols: Vec<Protocol>,
}

impl Multiaddr {
    /// The empty multiaddr.
    pub fn empty() -> Multiaddr {
        Multiaddr::default()
    }

    /// Parse the binary form (see the crate docs for what is rejected).
    pub fn from_bytes(bytes: &[u8]) -> Result<Multiaddr, Error> {
        if bytes.len() > MAX_ENCODED_LENGTH {
            return Err(Error::TooLong(bytes.len()));
        }
        let mut protocols = Vec::new();
        let mut rest = bytes;
        while !rest.is_empty() {
            if protocols.len() == MAX_COMPONENTS {
                return Err(Error::TooManyComponents);
            }
            let (p, tail) = Protocol::decode(rest)?;
            protocols.push(p);
            rest = tail;
        }
        Ok(Multiaddr { protocols })
    }

    /// The binary form.
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.protocols.len() * 8);
        for p in &self.protocols {
            p.encode(&mut out);
        }
        out
    }

    /// The components, first to last.
    pub fn iter(&self) -> impl Iterator<Item = &Protocol> {
        self.protocols.iter()
    }

    /// Append a component.
    ///
    /// # Panics
    /// If the address already has [`MAX_COMPONENTS`] components (a local bug, never remote
    /// input: every parsed address is within the bound). Use [`Multiaddr::try_push`] to get
    /// an error instead.
    pub fn push(&mut self, p: Protocol) {
        self.try_push(p)
            .expect("multiaddr exceeds MAX_COMPONENTS components");
    }

    /// Append a component, or fail with [`Error::TooManyComponents`] if it is full.
    pub fn try_push(&mut self, p: Protocol) -> Result<(), Error> {
        if self.protocols.len() >= MAX_COMPONENTS {
            return Err(Error::TooManyComponents);
        }
        self.protocols.push(p);
        Ok(())
    }

    /// `self` with `p` appended (see [`Multiaddr::push`] for the bound).
    pub fn with(mut self, p: Protocol) -> Multiaddr {
        self.push(p);
        self
    }

    /// Remove and return the last component.
    pub fn pop(&mut self) -> Option<Protocol> {
        self.protocols.pop()
    }

    /// The peer id of a trailing `/p2p/<id>` component.
    pub fn peer_id(&self) -> Option<PeerId> {
        match self.protocols.last() {
            Some(Protocol::P2p(id)) => Some(*id),
            _ => None,
        }
    }

    /// `self` without a trailing `/p2p/<id>` component (unchanged if there is none).
    pub fn without_p2p(&self) -> Multiaddr {
        let mut m = self.clone();
        if matches!(m.protocols.last(), Some(Protocol::P2p(_))) {
            m.protocols.pop();
        }
        m
    }

    /// `/ip4/<ip>/tcp/<port>` or `/ip6/<ip>/tcp/<port>`.
    pub fn from_tcp(addr: SocketAddr) -> Multiaddr {
        let ip = match addr.ip() {
            IpAddr::V4(ip) => Protocol::Ip4(ip),
            IpAddr::V6(ip) => Protocol::Ip6(ip),
        };
        Multiaddr {
            protocols: vec![ip, Protocol::Tcp(addr.port())],
        }
    }

    /// The socket address of `/ip4|ip6/<ip>/tcp/<port>[/p2p/<id>]`; `None` for anything else
    /// (including DNS addresses, which need resolving first).
    pub fn to_tcp_socket_addr(&self) -> Option<SocketAddr> {
        match self.protocols.as_slice() {
            [ip, Protocol::Tcp(port)] | [ip, Protocol::Tcp(port), Protocol::P2p(_)] => {
                let ip = match ip {
                    Protocol::Ip4(ip) => IpAddr::V4(*ip),
                    Protocol::Ip6(ip) => IpAddr::V6(*ip),
                    _ => return None,
                };
                Some(SocketAddr::new(ip, *port))
            }
            _ => None,
        }
    }

    /// Whether there are no components.
    pub fn is_empty(&self) -> bool {
        self.protocols.is_empty()
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.protocols.len()
    }
}

impl fmt::Display for Multiaddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for p in &self.protocols {
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Multiaddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Multiaddr({self})")
    }
}

impl FromStr for Multiaddr {
    type Err = Error;

    fn from_str(s: &str) -> Result<Multiaddr, Error> {
        if s.is_empty() {
            return Ok(Multiaddr::empty());
        }
        let Some(body) = s.strip_prefix('/') else {
            return Err(Error::MissingLeadingSlash);
        };
        // Tolerate exactly one trailing slash.
        let body = body.strip_suffix('/').unwrap_or(body);
        if body.is_empty() {
            return Err(Error::EmptyComponent);
        }
        let mut parts = body.split('/');
        let mut protocols = Vec::new();
        while let Some(name) = parts.next() {
            if protocols.len() == MAX_COMPONENTS {
                return Err(Error::TooManyComponents);
            }
            protocols.push(Protocol::parse_text(name, &mut parts)?);
        }
        Ok(Multiaddr { protocols })
    }
}

impl TryFrom<&[u8]> for Multiaddr {
    type Error = Error;
    fn try_from(bytes: &[u8]) -> Result<Multiaddr, Error> {
        Multiaddr::from_bytes(bytes)
    }
}

impl TryFrom<Vec<u8>> for Multiaddr {
    type Error = Error;
    fn try_from(bytes: Vec<u8>) -> Result<Multiaddr, Error> {
        Multiaddr::from_bytes(&bytes)
    }
}

impl From<Protocol> for Multiaddr {
    fn from(p: Protocol) -> Multiaddr {
        Multiaddr { protocols: vec![p] }
    }
}

impl<'a> IntoIterator for &'a Multiaddr {
    type Item = &'a Protocol;
    type IntoIter = std::slice::Iter<'a, Protocol>;
    fn into_iter(self) -> Self::IntoIter {
        self.protocols.iter()
    }
}
