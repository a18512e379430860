//! Every rejection, by error variant.

use std::str::FromStr;

use plexus_multiaddr::{Error, MAX_COMPONENTS, MAX_ENCODED_LENGTH, Multiaddr, PeerId, Protocol};

fn text(s: &str) -> Error {
    Multiaddr::from_str(s).unwrap_err()
}

fn bin(hex: &str) -> Error {
    Multiaddr::from_bytes(&hex::decode(hex).unwrap()).unwrap_err()
}

fn invalid_value(e: &Error) -> &'static str {
    match e {
        Error::InvalidValue { protocol, .. } => protocol,
        other => panic!("expected InvalidValue, got {other:?}"),
    }
}

#[test]
fn missing_leading_slash() {
    assert_eq!(text("ip4/1.2.3.4"), Error::MissingLeadingSlash);
    assert_eq!(text(" /ip4/1.2.3.4"), Error::MissingLeadingSlash);
}

#[test]
fn empty_components() {
    for s in [
        "/",
        "//",
        "//ip4/1.2.3.4",
        "/ip4/1.2.3.4//tcp/1",
        "/ip4//",
        "/ip4/1.2.3.4/tcp/1//",
    ] {
        assert_eq!(text(s), Error::EmptyComponent, "{s}");
    }
}

#[test]
fn unknown_protocol_names() {
    for (s, name) in [
        ("/ip4/1.2.3.4/udp/1/quic", "quic"),
        ("/dnsaddr/bootstrap.libp2p.io", "dnsaddr"),
        ("/ip4/1.2.3.4/tcp/1/ws", "ws"),
        ("/p2p-circuit", "p2p-circuit"),
        ("/IP4/1.2.3.4", "IP4"),
        ("/1.2.3.4", "1.2.3.4"),
    ] {
        assert_eq!(text(s), Error::UnknownProtocolName(name.into()), "{s}");
    }
    // The echoed name is bounded.
    let long = format!("/{}", "x".repeat(1000));
    match text(&long) {
        Error::UnknownProtocolName(n) => assert_eq!(n.len(), 64),
        other => panic!("{other:?}"),
    }
}

#[test]
fn missing_values() {
    assert_eq!(text("/ip4/1.2.3.4/tcp"), Error::MissingValue("tcp"));
    assert_eq!(text("/ip4"), Error::MissingValue("ip4"));
    assert_eq!(text("/ip6/"), Error::MissingValue("ip6"));
    assert_eq!(text("/p2p"), Error::MissingValue("p2p"));
    assert_eq!(text("/dns4"), Error::MissingValue("dns4"));
}

#[test]
fn invalid_text_values() {
    for (s, proto) in [
        ("/ip4/1.2.3", "ip4"),
        ("/ip4/256.1.1.1", "ip4"),
        ("/ip4/01.2.3.4", "ip4"),
        ("/ip4/::1", "ip4"),
        ("/ip6/1.2.3.4", "ip6"),
        ("/ip6/::1%eth0", "ip6"),
        ("/ip6/fe80::1::2", "ip6"),
        ("/tcp/65536", "tcp"),
        ("/tcp/-1", "tcp"),
        ("/tcp/+1", "tcp"),
        ("/tcp/0443", "tcp"),
        ("/tcp/1x", "tcp"),
        ("/tcp/999999", "tcp"),
        ("/udp/", "udp"),
        ("/p2p/notapeerid", "p2p"),
        ("/p2p/bafkqaaa", "p2p"),
        ("/ipfs/Qm", "p2p"),
    ] {
        let e = Multiaddr::from_str(s);
        match e {
            // "/udp/" is "/udp" + trailing slash: a missing value.
            Err(Error::MissingValue(p)) if s == "/udp/" => assert_eq!(p, proto),
            Err(e) => assert_eq!(invalid_value(&e), proto, "{s}"),
            Ok(m) => panic!("{s} parsed as {m}"),
        }
    }
    // Boundaries that are fine.
    assert_eq!(
        Multiaddr::from_str("/tcp/0").unwrap().iter().next(),
        Some(&Protocol::Tcp(0))
    );
    assert_eq!(
        Multiaddr::from_str("/udp/65535").unwrap().iter().next(),
        Some(&Protocol::Udp(65535))
    );
}

#[test]
fn invalid_dns_names() {
    // Text: over 253 bytes.
    let ok = format!("/dns/{}", "a".repeat(253));
    assert!(Multiaddr::from_str(&ok).is_ok());
    let long = format!("/dns/{}", "a".repeat(254));
    assert_eq!(text(&long), Error::InvalidDnsName("longer than 253 bytes"));
    // Binary: empty, containing '/', over-long (that one is ValueTooLong, see below).
    assert_eq!(bin("3500"), Error::InvalidDnsName("empty"));
    assert_eq!(bin("3603612f62"), Error::InvalidDnsName("contains '/'"));
    // Binary: invalid UTF-8.
    assert_eq!(invalid_value(&bin("3702c328")), "dns6");
}

#[test]
fn invalid_varints() {
    assert_eq!(bin("80"), Error::InvalidVarint);
    // Non-minimal code (0x04 as 84 00).
    assert_eq!(bin("8400c000022a"), Error::InvalidVarint);
    // Non-minimal length prefix on a dns name.
    assert_eq!(bin("35810061"), Error::InvalidVarint);
    // Truncated length prefix.
    assert_eq!(bin("35"), Error::InvalidVarint);
    // Over-long (11-byte) varint.
    assert_eq!(bin("ffffffffffffffffffff01"), Error::InvalidVarint);
}

#[test]
fn unknown_protocol_codes() {
    for (hex, code) in [
        ("38076578616d706c65", 0x38u64), // dnsaddr
        ("cc03", 0x01cc),                // quic (draft-29)
        ("dd03", 0x01dd),                // ws
        ("a202", 0x0122),                // p2p-circuit
        ("00", 0x00),
        ("ff01", 0xff),
    ] {
        assert_eq!(bin(hex), Error::UnknownProtocolCode(code), "{hex}");
    }
    // Garbage after a valid address is an unknown code (or a varint error).
    assert_eq!(bin("04c000022a0601bb33"), Error::UnknownProtocolCode(0x33));
}

#[test]
fn truncated_values() {
    assert_eq!(
        bin("04c00002"),
        Error::Truncated {
            protocol: "ip4",
            needed: 4,
            available: 3
        }
    );
    assert_eq!(
        bin("29000000"),
        Error::Truncated {
            protocol: "ip6",
            needed: 16,
            available: 3
        }
    );
    assert_eq!(
        bin("0601"),
        Error::Truncated {
            protocol: "tcp",
            needed: 2,
            available: 1
        }
    );
    assert_eq!(
        bin("9102"),
        Error::Truncated {
            protocol: "udp",
            needed: 2,
            available: 0
        }
    );
    assert_eq!(
        bin("350561"),
        Error::Truncated {
            protocol: "dns",
            needed: 5,
            available: 1
        }
    );
    assert_eq!(
        bin("a5032700"),
        Error::Truncated {
            protocol: "p2p",
            needed: 39,
            available: 1
        }
    );
}

#[test]
fn values_too_long() {
    // dns name of 254 bytes (length fe 01).
    let mut b = vec![0x35, 0xfe, 0x01];
    b.extend([b'a'; 254]);
    assert_eq!(
        Multiaddr::from_bytes(&b),
        Err(Error::ValueTooLong {
            protocol: "dns",
            len: 254,
            max: 253
        })
    );
    // A huge declared length is rejected before anything is read or allocated.
    assert_eq!(
        bin("35ffffffffffffffffff01"),
        Error::ValueTooLong {
            protocol: "dns",
            len: u64::MAX,
            max: 253
        }
    );
    // p2p multihash over 44 bytes.
    assert_eq!(
        bin("a5032d"),
        Error::ValueTooLong {
            protocol: "p2p",
            len: 45,
            max: 44
        }
    );
}

#[test]
fn invalid_binary_peer_ids() {
    // sha1 multihash inside /p2p.
    let mut b = hex::decode("a503161114").unwrap();
    b.extend([0u8; 20]);
    assert_eq!(
        invalid_value(&Multiaddr::from_bytes(&b).unwrap_err()),
        "p2p"
    );
    // Length prefix and multihash length disagree.
    assert_eq!(invalid_value(&bin("a50303122001")), "p2p");
}

#[test]
fn too_many_components() {
    let max = "/quic-v1".repeat(MAX_COMPONENTS);
    let m = Multiaddr::from_str(&max).unwrap();
    assert_eq!(m.len(), MAX_COMPONENTS);
    assert_eq!(Multiaddr::from_bytes(&m.to_vec()).unwrap(), m);
    let over = "/quic-v1".repeat(MAX_COMPONENTS + 1);
    assert_eq!(text(&over), Error::TooManyComponents);
    let over_bin = hex::decode("cd03".repeat(MAX_COMPONENTS + 1)).unwrap();
    assert_eq!(
        Multiaddr::from_bytes(&over_bin),
        Err(Error::TooManyComponents)
    );
    let mut full = m.clone();
    assert_eq!(
        full.try_push(Protocol::QuicV1),
        Err(Error::TooManyComponents)
    );
    assert_eq!(full.len(), MAX_COMPONENTS);
    let mut one_less = m;
    one_less.pop();
    assert_eq!(one_less.try_push(Protocol::Tcp(1)), Ok(()));
}

#[test]
#[should_panic(expected = "MAX_COMPONENTS")]
fn push_past_the_bound_panics() {
    let mut m = Multiaddr::from_str(&"/quic-v1".repeat(MAX_COMPONENTS)).unwrap();
    m.push(Protocol::QuicV1);
}

#[test]
fn too_long_binary() {
    let b = vec![0x06; MAX_ENCODED_LENGTH + 1];
    assert_eq!(
        Multiaddr::from_bytes(&b),
        Err(Error::TooLong(MAX_ENCODED_LENGTH + 1))
    );
}

#[test]
fn errors_name_the_peer_id_problem() {
    let e = text("/p2p/12D3KooW");
    assert_eq!(invalid_value(&e), "p2p");
    assert!(e.to_string().contains("p2p"));
    // And a valid one is fine.
    let id = PeerId::random();
    assert!(Multiaddr::from_str(&format!("/p2p/{id}")).is_ok());
}
