//! Inlined muxer negotiation inside the Noise handshake.

use plexus_core::{Blame, Role, SecurityError, SecurityUpgrade};
use plexus_noise::{NoiseError, PayloadLimits};

use super::{connect, secp, strings};

#[tokio::test]
async fn overlap_picks_the_initiators_first_common_muxer() {
    let (a, b) = (secp(), secp());
    // The spec's example: the responder prefers mplex, the initiator yamux.
    let (i, r) = connect(
        &a,
        &b,
        None,
        strings(&["/yamux/1.0.0", "/mplex/6.7.0"]),
        strings(&["/mplex/6.7.0", "/yamux/1.0.0"]),
    )
    .await;
    assert_eq!(i.unwrap().early_muxer.as_deref(), Some("/yamux/1.0.0"));
    assert_eq!(r.unwrap().early_muxer.as_deref(), Some("/yamux/1.0.0"));

    // The initiator's first entry is unknown to the responder: its second one wins.
    let (i, r) = connect(
        &a,
        &b,
        None,
        strings(&["/new/2.0.0", "/mplex/6.7.0", "/yamux/1.0.0"]),
        strings(&["/yamux/1.0.0", "/mplex/6.7.0"]),
    )
    .await;
    assert_eq!(i.unwrap().early_muxer.as_deref(), Some("/mplex/6.7.0"));
    assert_eq!(r.unwrap().early_muxer.as_deref(), Some("/mplex/6.7.0"));
}

#[tokio::test]
async fn no_overlap_fails_both_sides_as_incompatible() {
    let (a, b) = (secp(), secp());
    let (i, r) = connect(
        &a,
        &b,
        None,
        strings(&["/yamux/1.0.0"]),
        strings(&["/mplex/6.7.0"]),
    )
    .await;
    for (side, e) in [("initiator", i.unwrap_err()), ("responder", r.unwrap_err())] {
        assert!(matches!(e, NoiseError::NoCommonMuxer { .. }), "{side}: {e}");
        assert_eq!(e.blame(), Blame::PeerIncompatible, "{side}");
    }

    // The same through the seam trait: a SecurityError blaming incompatibility.
    let (x, y) = tokio::io::duplex(super::PIPE);
    let (sa, sb) = tokio::join!(
        a.secure(
            Box::new(x),
            Role::Initiator,
            None,
            strings(&["/yamux/1.0.0"])
        ),
        b.secure(
            Box::new(y),
            Role::Responder,
            None,
            strings(&["/mplex/6.7.0"])
        ),
    );
    for e in [sa.unwrap_err(), sb.unwrap_err()] {
        assert_eq!(e.blame(), Blame::PeerIncompatible);
        let SecurityError::Failed { source, .. } = e else {
            panic!("expected Failed")
        };
        assert!(matches!(
            source.downcast_ref::<NoiseError>(),
            Some(NoiseError::NoCommonMuxer { .. })
        ));
    }
}

#[tokio::test]
async fn one_side_without_a_list_means_no_early_muxer() {
    let (a, b) = (secp(), secp());
    for (mi, mr) in [
        (strings(&["/yamux/1.0.0"]), vec![]),
        (vec![], strings(&["/yamux/1.0.0"])),
        (vec![], vec![]),
    ] {
        let (i, r) = connect(&a, &b, None, mi.clone(), mr.clone()).await;
        assert_eq!(i.unwrap().early_muxer, None, "{mi:?} / {mr:?}");
        assert_eq!(r.unwrap().early_muxer, None, "{mi:?} / {mr:?}");
    }
}

#[tokio::test]
async fn our_own_oversized_muxer_list_is_a_local_error() {
    let a = secp();
    let too_many = vec!["/m".to_string(); PayloadLimits::default().max_muxers + 1];
    let (x, _y) = tokio::io::duplex(super::PIPE);
    let e = a
        .handshake(x, Role::Initiator, None, too_many)
        .await
        .unwrap_err();
    assert!(matches!(e, NoiseError::LocalPayloadTooLarge(_)), "{e}");
    assert_eq!(e.blame(), Blame::Local);
}

#[tokio::test]
async fn remote_muxer_list_over_our_limits_is_misbehaviour() {
    // The listener accepts long lists, the dialer only one entry.
    let strict = secp().with_payload_limits(PayloadLimits {
        max_muxers: 1,
        ..PayloadLimits::default()
    });
    let lax = secp();
    let (i, r) = connect(
        &strict,
        &lax,
        None,
        strings(&["/yamux/1.0.0"]),
        strings(&["/a", "/b"]),
    )
    .await;
    let e = i.unwrap_err();
    assert!(
        matches!(
            e,
            NoiseError::PayloadLimit {
                what: "stream muxer count",
                limit: 1
            }
        ),
        "{e}"
    );
    assert_eq!(e.blame(), Blame::PeerMisbehaved);
    assert!(r.is_err());
}
