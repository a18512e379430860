//! Text ⇔ binary vectors: the spec's, and derived ones for every supported protocol.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use plexus_multiaddr::{Multiaddr, PeerId, Protocol};

const SECP_ID: &str = "16Uiu2HAmLhLvBoYaoZfaMUKuibM6ac163GwKY74c5kiSLg5KvLpY";
/// Multihash of SECP_ID: identity, 37 bytes of key protobuf.
const SECP_ID_HEX: &str =
    "002508021221037777e994e452c21604f91de093ce415f5432f701dd8cd1a7a6fea0e630bfca99";

fn check(text: &str, hex: &str) -> Multiaddr {
    let bytes = hex::decode(hex).unwrap();
    let from_text = Multiaddr::from_str(text).unwrap();
    let from_bytes = Multiaddr::from_bytes(&bytes).unwrap();
    assert_eq!(from_text, from_bytes, "{text}");
    assert_eq!(hex::encode(from_text.to_vec()), hex, "{text}");
    assert_eq!(from_bytes.to_string(), text, "{hex}");
    assert_eq!(Multiaddr::try_from(&bytes[..]).unwrap(), from_text);
    from_text
}

#[test]
fn spec_vector_ip4_tcp() {
    let m = check("/ip4/192.0.2.42/tcp/443", "04c000022a0601bb");
    assert_eq!(m.to_vec().len(), 8);
    assert_eq!(m.to_string().len(), 23);
    let parts: Vec<_> = m.iter().cloned().collect();
    assert_eq!(
        parts,
        vec![
            Protocol::Ip4(Ipv4Addr::new(192, 0, 2, 42)),
            Protocol::Tcp(443)
        ]
    );
    // Per-component packed forms.
    let mut b = Vec::new();
    parts[0].encode(&mut b);
    assert_eq!(hex::encode(&b), "04c000022a");
    b.clear();
    parts[1].encode(&mut b);
    assert_eq!(hex::encode(&b), "0601bb");
    assert_eq!(parts[0].code(), 4);
    assert_eq!(parts[1].code(), 6);
}

#[test]
fn derived_vectors() {
    check(
        "/ip6/::1/tcp/4001",
        "2900000000000000000000000000000001060fa1",
    );
    let m = check(
        "/ip6/2001:db8::1/udp/9000/quic-v1",
        "2920010db8000000000000000000000001910223 28cd03"
            .replace(' ', "")
            .as_str(),
    );
    assert_eq!(
        m.iter().next(),
        Some(&Protocol::Ip6(Ipv6Addr::new(
            0x2001, 0xdb8, 0, 0, 0, 0, 0, 1
        )))
    );
    // go-multiaddr's quic-v1 vector.
    check("/ip4/127.0.0.1/udp/1234/quic-v1", "047f000001910204d2cd03");
    check(
        "/dns4/example.com/tcp/443",
        "360b6578616d706c652e636f6d0601bb",
    );
    check(
        "/dns6/example.com/udp/53",
        "370b6578616d706c652e636f6d91020035",
    );
    check(
        "/dns/localhost/tcp/0",
        "35096c6f63616c686f737406 0000".replace(' ', "").as_str(),
    );
    check("/tcp/65535", "06ffff");
    check("/quic-v1", "cd03");
    let m = check(
        &format!("/ip4/127.0.0.1/udp/9000/quic-v1/p2p/{SECP_ID}"),
        &format!("047f00000191022328cd03a50327{SECP_ID_HEX}"),
    );
    assert_eq!(m.peer_id(), Some(PeerId::from_str(SECP_ID).unwrap()));
    check(&format!("/p2p/{SECP_ID}"), &format!("a50327{SECP_ID_HEX}"));
}

#[test]
fn ipfs_alias_parses_as_p2p_and_prints_as_p2p() {
    let m = Multiaddr::from_str("/ipfs/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N").unwrap();
    assert_eq!(
        m.to_string(),
        "/p2p/QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"
    );
    assert_eq!(
        hex::encode(m.to_vec()),
        "a503221220 9dff3b17d74cf4d38a50d8b6383e92d181a10395a5e73a726dcccbd21bf6f0b9"
            .replace(' ', "")
    );
    // A CID-form peer id is accepted in text and printed in legacy form.
    let cid =
        Multiaddr::from_str("/p2p/bafzbeie5745rpv2m6tjyuugywy4d5ewrqgqqhfnf445he3omzpjbx5xqxe")
            .unwrap();
    assert_eq!(cid, m);
}

#[test]
fn empty_and_trailing_slash() {
    let empty = Multiaddr::from_str("").unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty, Multiaddr::default());
    assert_eq!(empty.to_string(), "");
    assert_eq!(empty.to_vec(), Vec::<u8>::new());
    assert_eq!(Multiaddr::from_bytes(&[]).unwrap(), empty);
    // One trailing slash is tolerated and not printed.
    let m = Multiaddr::from_str("/ip4/1.2.3.4/tcp/5/").unwrap();
    assert_eq!(m.to_string(), "/ip4/1.2.3.4/tcp/5");
    let q = Multiaddr::from_str("/quic-v1/").unwrap();
    assert_eq!(q.to_string(), "/quic-v1");
}

#[test]
fn ip6_text_forms() {
    // Any RFC 4291 text parses; printing is Rust's canonical (RFC 5952) form.
    let m = Multiaddr::from_str("/ip6/2001:0db8:0000:0000:0000:0000:0000:0001/tcp/1").unwrap();
    assert_eq!(m.to_string(), "/ip6/2001:db8::1/tcp/1");
    let mapped = Multiaddr::from_str("/ip6/::ffff:1.2.3.4/tcp/1").unwrap();
    assert_eq!(Multiaddr::from_str(&mapped.to_string()).unwrap(), mapped);
}
