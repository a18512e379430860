//! Property tests: text ⇔ struct ⇔ binary round trips; arbitrary input never panics.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use plexus_multiaddr::{MAX_COMPONENTS, Multiaddr, PeerId, Protocol};
use proptest::prelude::*;

fn dns_name() -> impl Strategy<Value = String> {
    // Any non-empty UTF-8 without '/', up to 253 bytes.
    prop_oneof!["[a-z0-9.-]{1,63}", "[^/]{1,60}",].prop_filter("≤ 253 bytes", |s| s.len() <= 253)
}

fn peer_id() -> impl Strategy<Value = PeerId> {
    prop_oneof![
        any::<[u8; 32]>().prop_map(|d| {
            let mut mh = vec![0x12, 0x20];
            mh.extend(d);
            PeerId::from_bytes(&mh).unwrap()
        }),
        proptest::collection::vec(any::<u8>(), 0..=42).prop_map(|d| {
            let mut mh = vec![0x00, d.len() as u8];
            mh.extend(d);
            PeerId::from_bytes(&mh).unwrap()
        }),
    ]
}

fn protocol() -> impl Strategy<Value = Protocol> {
    prop_oneof![
        any::<[u8; 4]>().prop_map(|b| Protocol::Ip4(Ipv4Addr::from(b))),
        any::<[u8; 16]>().prop_map(|b| Protocol::Ip6(Ipv6Addr::from(b))),
        dns_name().prop_map(Protocol::Dns),
        dns_name().prop_map(Protocol::Dns4),
        dns_name().prop_map(Protocol::Dns6),
        any::<u16>().prop_map(Protocol::Tcp),
        any::<u16>().prop_map(Protocol::Udp),
        Just(Protocol::QuicV1),
        peer_id().prop_map(Protocol::P2p),
    ]
}

fn multiaddr() -> impl Strategy<Value = Multiaddr> {
    proptest::collection::vec(protocol(), 0..=MAX_COMPONENTS).prop_map(|ps| {
        let mut m = Multiaddr::empty();
        for p in ps {
            m.push(p);
        }
        m
    })
}

/// Byte strings made of plausible components (valid and slightly broken).
fn component_bytes() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        protocol().prop_map(|p| {
            let mut b = Vec::new();
            p.encode(&mut b);
            b
        }),
        proptest::collection::vec(any::<u8>(), 0..4),
        Just(vec![0xa5, 0x03]),
        Just(vec![0x35]),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

/// Strings made of plausible text components.
fn component_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        protocol().prop_map(|p| p.to_string()),
        "/(ip4|ip6|tcp|udp|dns|dns4|dns6|p2p|ipfs|quic-v1|quic|ws)",
        "/[0-9a-fA-F:.]{0,12}",
        Just("/".to_string()),
    ];
    proptest::collection::vec(piece, 0..8).prop_map(|v| v.concat())
}

fn check_accepted_bytes(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(m) = Multiaddr::from_bytes(bytes) {
        prop_assert_eq!(m.to_vec(), bytes.to_vec());
        prop_assert_eq!(Multiaddr::from_str(&m.to_string()).unwrap(), m);
    }
    Ok(())
}

fn check_accepted_text(s: &str) -> Result<(), TestCaseError> {
    if let Ok(m) = Multiaddr::from_str(s) {
        let printed = m.to_string();
        prop_assert_eq!(Multiaddr::from_str(&printed).unwrap(), m.clone());
        prop_assert_eq!(Multiaddr::from_bytes(&m.to_vec()).unwrap(), m);
    }
    Ok(())
}

proptest! {
    #[test]
    fn text_round_trip(m in multiaddr()) {
        let s = m.to_string();
        prop_assert_eq!(Multiaddr::from_str(&s).unwrap(), m.clone());
    }

    #[test]
    fn binary_round_trip(m in multiaddr()) {
        let b = m.to_vec();
        let back = Multiaddr::from_bytes(&b).unwrap();
        prop_assert_eq!(&back, &m);
        prop_assert_eq!(back.to_vec(), b);
    }

    #[test]
    fn push_pop_inverse(m in multiaddr(), p in protocol()) {
        let mut m = m;
        prop_assume!(m.len() < MAX_COMPONENTS);
        let before = m.clone();
        m.push(p.clone());
        prop_assert_eq!(m.len(), before.len() + 1);
        prop_assert_eq!(m.pop(), Some(p));
        prop_assert_eq!(m, before);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        check_accepted_bytes(&bytes)?;
    }

    #[test]
    fn component_bytes_never_panic(bytes in component_bytes()) {
        check_accepted_bytes(&bytes)?;
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        check_accepted_text(&s)?;
    }

    #[test]
    fn component_text_never_panics(s in component_text()) {
        check_accepted_text(&s)?;
    }
}
