//! Property tests for the identify codec.

use bytes::BytesMut;
use plexus_identify::{Decoder, Identify, Limits, PeerInfo, decode_identify};
use plexus_identity::Keypair;
use plexus_multiaddr::Multiaddr;
use proptest::prelude::*;

fn big_limits() -> Limits {
    Limits {
        max_messages: 64,
        max_message_size: 1 << 20,
        max_total_size: 1 << 22,
        max_listen_addrs: 1 << 16,
        max_protocols: 1 << 16,
    }
}

fn identify() -> impl Strategy<Value = Identify> {
    (
        proptest::option::of(".{0,40}"),
        proptest::option::of(".{0,40}"),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..32), 0..8),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..32)),
        proptest::collection::vec(".{0,30}", 0..8),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
    )
        .prop_map(
            |(
                protocol_version,
                agent_version,
                public_key,
                listen_addrs,
                observed_addr,
                protocols,
                signed_peer_record,
            )| Identify {
                protocol_version,
                agent_version,
                public_key,
                listen_addrs,
                observed_addr,
                protocols,
                signed_peer_record,
            },
        )
}

fn tcp_addr() -> impl Strategy<Value = Multiaddr> {
    (any::<[u8; 4]>(), any::<u16>())
        .prop_map(|(ip, port)| Multiaddr::from_tcp(std::net::SocketAddr::from((ip, port))))
}

/// Feed `data` to a decoder in pieces of the given sizes, then finish.
fn decode_chunked(data: &[u8], sizes: &[usize], limits: &Limits) -> Result<Identify, String> {
    let mut decoder = Decoder::new(*limits);
    let mut buf = BytesMut::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i)
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        i += 1;
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        decoder.decode(&mut buf).map_err(|e| e.to_string())?;
    }
    decoder.finish(&buf).map_err(|e| e.to_string())
}

proptest! {
    #[test]
    fn decode_of_encode_is_identity(msg in identify()) {
        let bytes = msg.encode_delimited();
        prop_assert_eq!(decode_identify(&bytes, &big_limits()).unwrap(), msg.clone());
        // Under the default limits too: generated messages are far below 8 KiB.
        prop_assert_eq!(decode_identify(&bytes, &Limits::default()).unwrap(), msg);
    }

    #[test]
    fn bounded_encoding_fits_and_is_a_prefix_of_the_lists(msg in identify(), max in 0usize..600) {
        match msg.encode_bounded(max) {
            Ok((bytes, trimmed)) => {
                let got = decode_identify(&bytes, &big_limits()).unwrap();
                prop_assert!(got.body_len() <= max);
                prop_assert_eq!(got.listen_addrs.len() + trimmed.listen_addrs, msg.listen_addrs.len());
                prop_assert_eq!(&got.listen_addrs[..], &msg.listen_addrs[..got.listen_addrs.len()]);
                prop_assert_eq!(&got.protocols[..], &msg.protocols[..got.protocols.len()]);
                prop_assert_eq!(got.agent_version, msg.agent_version);
                prop_assert_eq!(got.signed_peer_record.is_none(), msg.signed_peer_record.is_none() || trimmed.signed_peer_record);
            }
            Err(_) => {
                let bare = Identify { listen_addrs: vec![], protocols: vec![], signed_peer_record: None, ..msg };
                prop_assert!(bare.body_len() > max);
            }
        }
    }

    #[test]
    fn split_messages_merge_like_one(msg in identify(), cut_addrs in 0usize..8, cut_protos in 0usize..8) {
        // Split the lists across two messages; scalars only in the first.
        let a = cut_addrs.min(msg.listen_addrs.len());
        let p = cut_protos.min(msg.protocols.len());
        let first = Identify {
            listen_addrs: msg.listen_addrs[..a].to_vec(),
            protocols: msg.protocols[..p].to_vec(),
            signed_peer_record: None,
            ..msg.clone()
        };
        let second = Identify {
            listen_addrs: msg.listen_addrs[a..].to_vec(),
            protocols: msg.protocols[p..].to_vec(),
            signed_peer_record: msg.signed_peer_record.clone(),
            ..Identify::default()
        };
        let mut bytes = first.encode_delimited();
        bytes.extend(second.encode_delimited());
        prop_assert_eq!(decode_identify(&bytes, &big_limits()).unwrap(), msg);
    }

    #[test]
    fn chunked_delivery_decodes_like_whole(msgs in proptest::collection::vec(identify(), 1..4), sizes in proptest::collection::vec(1usize..64, 0..64)) {
        let bytes: Vec<u8> = msgs.iter().flat_map(Identify::encode_delimited).collect();
        let whole = decode_identify(&bytes, &Limits::default()).map_err(|e| e.to_string());
        prop_assert_eq!(decode_chunked(&bytes, &sizes, &Limits::default()), whole);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2048), sizes in proptest::collection::vec(1usize..64, 0..32)) {
        let limits = Limits { max_message_size: 512, max_total_size: 1024, max_messages: 3, ..Limits::default() };
        let whole = decode_identify(&data, &limits).map_err(|e| e.to_string());
        prop_assert_eq!(decode_chunked(&data, &sizes, &limits), whole.clone());
        if let Ok(msg) = whole {
            // What was accepted re-encodes to something that decodes to the same message.
            prop_assert_eq!(decode_identify(&msg.encode_delimited(), &big_limits()).unwrap(), msg);
        }
    }

    #[test]
    fn peer_info_round_trips(
        agent in proptest::option::of("[a-z]{1,10}/[0-9]\\.[0-9]"),
        addrs in proptest::collection::vec(tcp_addr(), 0..6),
        observed in proptest::option::of(tcp_addr()),
        protocols in proptest::collection::vec("/[a-z]{1,12}/1\\.0\\.0", 0..6),
        ed in any::<bool>(),
    ) {
        let key = if ed { Keypair::generate_ed25519() } else { Keypair::generate_secp256k1() };
        let info = PeerInfo {
            protocol_version: Some("/ipfs/0.1.0".into()),
            agent_version: agent,
            public_key: Some(key.public()),
            listen_addrs: addrs,
            observed_addr: observed,
            protocols,
            signed_peer_record: None,
            skipped_addrs: 0,
        };
        let bytes = info.to_message().encode_delimited();
        let msg = decode_identify(&bytes, &Limits::default()).unwrap();
        prop_assert_eq!(PeerInfo::from_message(msg, &key.public().to_peer_id()).unwrap(), info);
    }
}
