//! One multiaddr component.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use plexus_identity::{MAX_MULTIHASH_LENGTH, PeerId};

use crate::error::Error;

/// Longest DNS name accepted in `dns`, `dns4` and `dns6` (RFC 1035: 253 characters of text).
pub const MAX_DNS_NAME_LENGTH: usize = 253;

/// Multicodec protocol codes (`multiformats/multiaddr:protocols.csv`) of the supported subset.
pub mod codes {
    /// `ip4`: 4-byte address.
    pub const IP4: u64 = 0x04;
    /// `tcp`: 2-byte big-endian port.
    pub const TCP: u64 = 0x06;
    /// `ip6`: 16-byte address.
    pub const IP6: u64 = 0x29;
    /// `dns`: length-prefixed UTF-8 name.
    pub const DNS: u64 = 0x35;
    /// `dns4`: length-prefixed UTF-8 name.
    pub const DNS4: u64 = 0x36;
    /// `dns6`: length-prefixed UTF-8 name.
    pub const DNS6: u64 = 0x37;
    /// `udp`: 2-byte big-endian port.
    pub const UDP: u64 = 0x0111;
    /// `p2p` (text alias `ipfs`): length-prefixed peer-id multihash.
    pub const P2P: u64 = 0x01a5;
    /// `quic-v1`: no value.
    pub const QUIC_V1: u64 = 0x01cd;
}

/// One component of a [`Multiaddr`](crate::Multiaddr).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `/ip4/<dotted quad>`.
    Ip4(Ipv4Addr),
    /// `/ip6/<RFC 4291 text>`.
    Ip6(Ipv6Addr),
    /// `/dns/<name>`: resolve to A and AAAA.
    Dns(String),
    /// `/dns4/<name>`: resolve to A only.
    Dns4(String),
    /// `/dns6/<name>`: resolve to AAAA only.
    Dns6(String),
    /// `/tcp/<port>`.
    Tcp(u16),
    /// `/udp/<port>`.
    Udp(u16),
    /// `/quic-v1` (RFC 9000 QUIC; draft-29 `/quic` is not supported).
    QuicV1,
    /// `/p2p/<peer id>` (parsed from `/ipfs/<peer id>` too; always printed as `/p2p/`).
    P2p(PeerId),
}

impl Protocol {
    /// The text name (`p2p` for [`Protocol::P2p`]).
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::Ip4(_) => "ip4",
            Protocol::Ip6(_) => "ip6",
            Protocol::Dns(_) => "dns",
            Protocol::Dns4(_) => "dns4",
            Protocol::Dns6(_) => "dns6",
            Protocol::Tcp(_) => "tcp",
            Protocol::Udp(_) => "udp",
            Protocol::QuicV1 => "quic-v1",
            Protocol::P2p(_) => "p2p",
        }
    }

    /// The multicodec code.
    pub fn code(&self) -> u64 {
        match self {
            Protocol::Ip4(_) => codes::IP4,
            Protocol::Ip6(_) => codes::IP6,
            Protocol::Dns(_) => codes::DNS,
            Protocol::Dns4(_) => codes::DNS4,
            Protocol::Dns6(_) => codes::DNS6,
            Protocol::Tcp(_) => codes::TCP,
            Protocol::Udp(_) => codes::UDP,
            Protocol::QuicV1 => codes::QUIC_V1,
            Protocol::P2p(_) => codes::P2P,
        }
    }

    /// Append the binary form (`uvarint code ‖ value`) to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let mut buf = unsigned_varint::encode::u64_buffer();
        out.extend_from_slice(unsigned_varint::encode::u64(self.code(), &mut buf));
        match self {
            Protocol::Ip4(ip) => out.extend_from_slice(&ip.octets()),
            Protocol::Ip6(ip) => out.extend_from_slice(&ip.octets()),
            Protocol::Dns(name) | Protocol::Dns4(name) | Protocol::Dns6(name) => {
                encode_len_prefixed(name.as_bytes(), out);
            }
            Protocol::Tcp(port) | Protocol::Udp(port) => out.extend_from_slice(&port.to_be_bytes()),
            Protocol::QuicV1 => {}
            Protocol::P2p(id) => encode_len_prefixed(id.as_bytes(), out),
        }
    }

    /// Decode one component from the front of `bytes`; returns it and the rest.
    pub fn decode(bytes: &[u8]) -> Result<(Protocol, &[u8]), Error> {
        let (code, rest) = unsigned_varint::decode::u64(bytes).map_err(|_| Error::InvalidVarint)?;
        match code {
            codes::IP4 => {
                let (v, rest) = take_fixed::<4>("ip4", rest)?;
                Ok((Protocol::Ip4(Ipv4Addr::from(v)), rest))
            }
            codes::IP6 => {
                let (v, rest) = take_fixed::<16>("ip6", rest)?;
                Ok((Protocol::Ip6(Ipv6Addr::from(v)), rest))
            }
            codes::TCP => {
                let (v, rest) = take_fixed::<2>("tcp", rest)?;
                Ok((Protocol::Tcp(u16::from_be_bytes(v)), rest))
            }
            codes::UDP => {
                let (v, rest) = take_fixed::<2>("udp", rest)?;
                Ok((Protocol::Udp(u16::from_be_bytes(v)), rest))
            }
            codes::QUIC_V1 => Ok((Protocol::QuicV1, rest)),
            codes::DNS | codes::DNS4 | codes::DNS6 => {
                let name = match code {
                    codes::DNS => "dns",
                    codes::DNS4 => "dns4",
                    _ => "dns6",
                };
                let (v, rest) = take_len_prefixed(name, MAX_DNS_NAME_LENGTH, rest)?;
                let s = std::str::from_utf8(v).map_err(|_| Error::InvalidValue {
                    protocol: name,
                    reason: "name is not UTF-8".into(),
                })?;
                check_dns_name(s)?;
                let s = s.to_owned();
                let p = match code {
                    codes::DNS => Protocol::Dns(s),
                    codes::DNS4 => Protocol::Dns4(s),
                    _ => Protocol::Dns6(s),
                };
                Ok((p, rest))
            }
            codes::P2P => {
                let (v, rest) = take_len_prefixed("p2p", MAX_MULTIHASH_LENGTH, rest)?;
                let id = PeerId::from_bytes(v).map_err(|e| Error::InvalidValue {
                    protocol: "p2p",
                    reason: e.to_string(),
                })?;
                Ok((Protocol::P2p(id), rest))
            }
            other => Err(Error::UnknownProtocolCode(other)),
        }
    }

    /// Parse one text component: `name` and, if the protocol has one, its value taken from
    /// `parts`.
    pub(crate) fn parse_text<'a>(
        name: &str,
        parts: &mut impl Iterator<Item = &'a str>,
    ) -> Result<Protocol, Error> {
        if name.is_empty() {
            return Err(Error::EmptyComponent);
        }
        // Resolve the name first, so an unknown name is reported as such.
        let proto: &'static str = match name {
            "ip4" => "ip4",
            "ip6" => "ip6",
            "dns" => "dns",
            "dns4" => "dns4",
            "dns6" => "dns6",
            "tcp" => "tcp",
            "udp" => "udp",
            "quic-v1" => return Ok(Protocol::QuicV1),
            "p2p" | "ipfs" => "p2p",
            other => return Err(Error::UnknownProtocolName(truncate(other))),
        };
        let value = parts.next().ok_or(Error::MissingValue(proto))?;
        if value.is_empty() {
            return Err(Error::EmptyComponent);
        }
        let invalid = |reason: &str| Error::InvalidValue {
            protocol: proto,
            reason: reason.to_owned(),
        };
        Ok(match proto {
            "ip4" => Protocol::Ip4(Ipv4Addr::from_str(value).map_err(|_| invalid("bad IPv4"))?),
            "ip6" => Protocol::Ip6(Ipv6Addr::from_str(value).map_err(|_| invalid("bad IPv6"))?),
            "dns" | "dns4" | "dns6" => {
                check_dns_name(value)?;
                let s = value.to_owned();
                match proto {
                    "dns" => Protocol::Dns(s),
                    "dns4" => Protocol::Dns4(s),
                    _ => Protocol::Dns6(s),
                }
            }
            "tcp" => Protocol::Tcp(parse_port(value).ok_or_else(|| invalid("bad port"))?),
            "udp" => Protocol::Udp(parse_port(value).ok_or_else(|| invalid("bad port"))?),
            _ => Protocol::P2p(PeerId::from_str(value).map_err(|e| invalid(&e.to_string()))?),
        })
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}", self.name())?;
        match self {
            Protocol::Ip4(ip) => write!(f, "/{ip}"),
            Protocol::Ip6(ip) => write!(f, "/{ip}"),
            Protocol::Dns(n) | Protocol::Dns4(n) | Protocol::Dns6(n) => write!(f, "/{n}"),
            Protocol::Tcp(p) | Protocol::Udp(p) => write!(f, "/{p}"),
            Protocol::QuicV1 => Ok(()),
            Protocol::P2p(id) => write!(f, "/{id}"),
        }
    }
}

/// A decimal port: 1–5 ASCII digits, no sign, no leading zero (except `0` itself), ≤ 65535.
fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if s.len() > 1 && s.starts_with('0') {
        return None;
    }
    s.parse().ok()
}

fn check_dns_name(s: &str) -> Result<(), Error> {
    if s.is_empty() {
        return Err(Error::InvalidDnsName("empty"));
    }
    if s.len() > MAX_DNS_NAME_LENGTH {
        return Err(Error::InvalidDnsName("longer than 253 bytes"));
    }
    if s.contains('/') {
        return Err(Error::InvalidDnsName("contains '/'"));
    }
    Ok(())
}

/// Keep error messages bounded: an unknown name is echoed back at most 64 bytes long.
fn truncate(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return s.to_owned();
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_owned()
}

fn encode_len_prefixed(v: &[u8], out: &mut Vec<u8>) {
    let mut buf = unsigned_varint::encode::usize_buffer();
    out.extend_from_slice(unsigned_varint::encode::usize(v.len(), &mut buf));
    out.extend_from_slice(v);
}

fn take_fixed<'a, const N: usize>(
    protocol: &'static str,
    bytes: &'a [u8],
) -> Result<([u8; N], &'a [u8]), Error> {
    match bytes.split_first_chunk::<N>() {
        Some((v, rest)) => Ok((*v, rest)),
        None => Err(Error::Truncated {
            protocol,
            needed: N,
            available: bytes.len(),
        }),
    }
}

fn take_len_prefixed<'a>(
    protocol: &'static str,
    max: usize,
    bytes: &'a [u8],
) -> Result<(&'a [u8], &'a [u8]), Error> {
    let (len, rest) = unsigned_varint::decode::u64(bytes).map_err(|_| Error::InvalidVarint)?;
    if len > max as u64 {
        return Err(Error::ValueTooLong { protocol, len, max });
    }
    let len = len as usize;
    if rest.len() < len {
        return Err(Error::Truncated {
            protocol,
            needed: len,
            available: rest.len(),
        });
    }
    Ok(rest.split_at(len))
}
