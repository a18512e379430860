//! Builder and accessor behaviour.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

use plexus_multiaddr::{Multiaddr, PeerId, Protocol};

#[test]
fn push_pop_with_len() {
    let mut m = Multiaddr::empty();
    assert!(m.is_empty());
    assert_eq!(m.len(), 0);
    assert_eq!(m.pop(), None);
    m.push(Protocol::Ip4(Ipv4Addr::LOCALHOST));
    m.push(Protocol::Udp(9000));
    let m = m.with(Protocol::QuicV1);
    assert_eq!(m.len(), 3);
    assert!(!m.is_empty());
    assert_eq!(m.to_string(), "/ip4/127.0.0.1/udp/9000/quic-v1");
    let mut m2 = m.clone();
    assert_eq!(m2.pop(), Some(Protocol::QuicV1));
    assert_eq!(m2.to_string(), "/ip4/127.0.0.1/udp/9000");
    assert_ne!(m2, m);
    assert_eq!(Multiaddr::from(Protocol::Tcp(1)).to_string(), "/tcp/1");
    assert_eq!((&m).into_iter().count(), 3);
    assert_eq!(
        format!("{m:?}"),
        "Multiaddr(/ip4/127.0.0.1/udp/9000/quic-v1)"
    );
}

#[test]
fn peer_id_and_without_p2p() {
    let id = PeerId::random();
    let base = Multiaddr::from_str("/ip4/10.0.0.1/tcp/9000").unwrap();
    let full = base.clone().with(Protocol::P2p(id));
    assert_eq!(full.peer_id(), Some(id));
    assert_eq!(full.without_p2p(), base);
    assert_eq!(base.peer_id(), None);
    assert_eq!(base.without_p2p(), base);
    // Only a *trailing* /p2p counts.
    let inner = Multiaddr::empty()
        .with(Protocol::P2p(id))
        .with(Protocol::Tcp(1));
    assert_eq!(inner.peer_id(), None);
    assert_eq!(inner.without_p2p(), inner);
}

#[test]
fn tcp_socket_addr_conversions() {
    let v4: SocketAddr = "192.0.2.42:443".parse().unwrap();
    let m = Multiaddr::from_tcp(v4);
    assert_eq!(m.to_string(), "/ip4/192.0.2.42/tcp/443");
    assert_eq!(m.to_tcp_socket_addr(), Some(v4));

    let v6 = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 4001);
    let m6 = Multiaddr::from_tcp(v6);
    assert_eq!(m6.to_string(), "/ip6/::1/tcp/4001");
    assert_eq!(m6.to_tcp_socket_addr(), Some(v6));

    // A trailing /p2p is allowed.
    let with_id = m.clone().with(Protocol::P2p(PeerId::random()));
    assert_eq!(with_id.to_tcp_socket_addr(), Some(v4));

    for s in [
        "/dns4/example.com/tcp/443",
        "/ip4/1.2.3.4/udp/443",
        "/ip4/1.2.3.4/udp/443/quic-v1",
        "/ip4/1.2.3.4",
        "/tcp/443",
        "/ip4/1.2.3.4/tcp/1/tcp/2",
        "/ip4/1.2.3.4/tcp/1/quic-v1",
        "",
    ] {
        assert_eq!(
            Multiaddr::from_str(s).unwrap().to_tcp_socket_addr(),
            None,
            "{s}"
        );
    }
}

#[test]
fn protocol_names_and_codes() {
    let id = PeerId::random();
    let all = [
        (Protocol::Ip4(Ipv4Addr::LOCALHOST), "ip4", 0x04),
        (Protocol::Ip6(Ipv6Addr::LOCALHOST), "ip6", 0x29),
        (Protocol::Dns("a".into()), "dns", 0x35),
        (Protocol::Dns4("a".into()), "dns4", 0x36),
        (Protocol::Dns6("a".into()), "dns6", 0x37),
        (Protocol::Tcp(1), "tcp", 0x06),
        (Protocol::Udp(1), "udp", 0x0111),
        (Protocol::QuicV1, "quic-v1", 0x01cd),
        (Protocol::P2p(id), "p2p", 0x01a5),
    ];
    for (p, name, code) in all {
        assert_eq!(p.name(), name);
        assert_eq!(p.code(), code);
        let mut b = Vec::new();
        p.encode(&mut b);
        let (back, rest) = Protocol::decode(&b).unwrap();
        assert_eq!(back, p);
        assert!(rest.is_empty());
        assert!(p.to_string().starts_with(&format!("/{name}")));
    }
}
