//! Host behaviour over loopback TCP: streams, handlers and their limits,
//! gating and refusal counters, simultaneous dials, backoff, dial ranking,
//! the typed causes events carry.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use plexus_core::{Blame, ConnectionGater, DenyReason, Direction, PeerId, Verdict};
use plexus_host::{
    AttemptError, DialError, DialFailure, DialRanker, DisconnectCause, Events, HandlerOpts, Host,
    HostConfig, HostEvent, OpenError,
};
use plexus_identity::Keypair;
use plexus_multiaddr::{Multiaddr, Protocol};
use plexus_multistream::NegotiationError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ECHO: &str = "/echo/1.0.0";
/// Upper bound on waiting for something that happens over loopback at once.
const WAIT: Duration = Duration::from_secs(10);

async fn host_with(f: impl FnOnce(&mut HostConfig)) -> Host {
    let mut cfg = HostConfig::new(Keypair::generate_ed25519());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    f(&mut cfg);
    Host::new(cfg).await.unwrap()
}

async fn host() -> Host {
    host_with(|_| {}).await
}

/// The host's listen address with its `/p2p` suffix.
fn addr_of(h: &Host) -> Multiaddr {
    h.listen_addrs()[0].clone().with(Protocol::P2p(h.peer_id()))
}

/// Send `msg` on a new `protocols` stream to `peer`, half-close, read the
/// answer to the end.
async fn round_trip(from: &Host, peer: PeerId, protocols: &[&str], msg: &[u8]) -> Vec<u8> {
    let (_, mut s) = from.new_stream(peer, protocols).await.unwrap();
    s.write_all(msg).await.unwrap();
    s.shutdown().await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(WAIT, s.read_to_end(&mut out))
        .await
        .unwrap()
        .unwrap();
    out
}

async fn wait_event(events: &mut Events, mut pred: impl FnMut(&HostEvent) -> bool) -> HostEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            match events.recv().await {
                Ok(ev) if pred(&ev) => return ev,
                Ok(_) => {}
                Err(e) => panic!("event stream: {e}"),
            }
        }
    })
    .await
    .expect("event did not come")
}

fn is_connected(peer: PeerId) -> impl FnMut(&HostEvent) -> bool {
    move |ev| matches!(ev, HostEvent::Connected(info) if info.peer == peer)
}

fn is_disconnected(peer: PeerId) -> impl FnMut(&HostEvent) -> bool {
    move |ev| matches!(ev, HostEvent::Disconnected { peer: p, .. } if *p == peer)
}

/// Wait until `cond` holds: state that settles over loopback without an event
/// (polled; bounded by `WAIT`).
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let res = tokio::time::timeout(WAIT, async {
        while !cond() {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(res.is_ok(), "timed out waiting for: {what}");
}

/// A loopback address nobody listens on (connection refused).
async fn closed_addr() -> Multiaddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let a = Multiaddr::from_tcp(l.local_addr().unwrap());
    drop(l);
    a
}

#[tokio::test]
async fn two_hosts_connect_and_stream_both_ways() {
    let a = host().await;
    let b = host().await;
    support::serve_echo(a.handle(ECHO, HandlerOpts::default()).unwrap());
    support::serve_echo(b.handle(ECHO, HandlerOpts::default()).unwrap());
    assert_eq!(b.protocols(), vec![ECHO.to_owned()]);
    let mut ea = a.events();
    let mut eb = b.events();

    let info = a.connect(vec![addr_of(&b)]).await.unwrap();
    assert_eq!(info.peer, b.peer_id());
    assert_eq!(info.direction, Direction::Outbound);
    assert_eq!(info.remote_addr, b.listen_addrs()[0]);
    wait_event(&mut ea, is_connected(b.peer_id())).await;
    let HostEvent::Connected(binfo) = wait_event(&mut eb, is_connected(a.peer_id())).await else {
        unreachable!()
    };
    assert_eq!(binfo.direction, Direction::Inbound);
    // The listener sees the dialer's observed address.
    assert_eq!(binfo.remote_addr, info.local_addr);

    // a -> b, lazy (one protocol) and with a choice of two.
    assert_eq!(round_trip(&a, b.peer_id(), &[ECHO], b"ping").await, b"ping");
    let (proto, _s) = a
        .new_stream(b.peer_id(), &["/nope/1.0.0", ECHO])
        .await
        .unwrap();
    assert_eq!(proto, ECHO);
    // b -> a over the same connection: no new dial.
    assert_eq!(round_trip(&b, a.peer_id(), &[ECHO], b"pong").await, b"pong");
    assert_eq!(b.metrics().handshakes_started(Direction::Outbound), 0);
    assert_eq!(a.connected_peers(), vec![b.peer_id()]);
    assert_eq!(b.connected_peers(), vec![a.peer_id()]);
    assert_eq!(a.metrics().streams_opened(), 2);
    assert_eq!(b.metrics().streams_opened(), 1);
    assert_eq!(a.metrics().connections_open(Direction::Outbound), 1);
    assert_eq!(b.metrics().connections_open(Direction::Inbound), 1);
    // Stream bytes are counted (payload plus multistream).
    assert!(a.metrics().stream_bytes_written() >= 4 + 4);
    assert!(a.metrics().stream_bytes_read() >= 4 + 4);
}

#[tokio::test]
async fn new_stream_dials_from_the_address_book_once() {
    let a = host().await;
    let b = host().await;
    support::serve_echo(b.handle(ECHO, HandlerOpts::default()).unwrap());
    let peer = b.peer_id();

    // Unknown peer, no address: a dial error, not a hang.
    match a.new_stream(peer, &[ECHO]).await {
        Err(OpenError::Dial(DialError::NoAddresses)) => {}
        other => panic!("expected NoAddresses, got {:?}", other.map(|(p, _)| p)),
    }

    a.add_addresses(peer, b.listen_addrs());
    // Five concurrent callers share one dial.
    let results = futures::future::join_all((0..5u8).map(|i| {
        let a = a.clone();
        async move { round_trip(&a, peer, &[ECHO], &[i; 3]).await }
    }))
    .await;
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r, &vec![i as u8; 3]);
    }
    assert_eq!(a.metrics().handshakes_started(Direction::Outbound), 1);
    assert_eq!(
        a.connection(&peer).unwrap().remote_addr,
        b.listen_addrs()[0]
    );
}

#[tokio::test]
async fn disconnect_is_seen_on_both_sides() {
    let a = host().await;
    let b = host().await;
    let mut ea = a.events();
    let mut eb = b.events();
    a.connect(vec![addr_of(&b)]).await.unwrap();
    wait_event(&mut eb, is_connected(a.peer_id())).await;

    a.disconnect(b.peer_id());
    wait_event(&mut ea, is_disconnected(b.peer_id())).await;
    wait_event(&mut eb, is_disconnected(a.peer_id())).await;
    assert!(a.connected_peers().is_empty());
    assert!(b.connected_peers().is_empty());
    assert!(a.connection(&b.peer_id()).is_none());
    assert_eq!(a.metrics().connections_open(Direction::Outbound), 0);
    assert_eq!(b.metrics().connections_open(Direction::Inbound), 0);
}

#[tokio::test]
async fn events_carry_the_typed_cause_and_its_blame() {
    // A local disconnect: `Local` on our side; on the remote's, a clean close
    // (yamux: go-away; mplex, which has no goodbye: end-of-file), no peer
    // blamed on either.
    for mplex in [false, true] {
        let b = host().await;
        let a = host_with(|c| {
            if mplex {
                c.muxers = vec![Arc::new(plexus_mplex::MplexConfig::default())];
            }
        })
        .await;
        let mut ea = a.events();
        let mut eb = b.events();
        let conn = a.connect(vec![addr_of(&b)]).await.unwrap();
        assert_eq!(conn.muxer.contains("mplex"), mplex, "{}", conn.muxer);
        let ev = wait_event(&mut eb, is_connected(a.peer_id())).await;
        assert_eq!(ev.blame(), None, "no failure, no blame");

        a.disconnect(b.peer_id());
        let ev = wait_event(&mut ea, is_disconnected(b.peer_id())).await;
        assert!(
            matches!(
                &ev,
                HostEvent::Disconnected {
                    cause: DisconnectCause::Local,
                    ..
                }
            ),
            "{ev:?}"
        );
        assert_eq!(ev.blame(), Some(Blame::Local));
        let ev = wait_event(&mut eb, is_disconnected(a.peer_id())).await;
        let HostEvent::Disconnected { cause, .. } = &ev else {
            unreachable!()
        };
        assert!(
            matches!(cause, DisconnectCause::RemoteClosed),
            "mplex: {mplex}, cause: {cause:?}"
        );
        assert_ne!(cause.blame(), Blame::PeerMisbehaved);
        assert_eq!(ev.blame(), Some(Blame::Local));
        assert_eq!(cause.to_string(), "closed by the remote");
    }

    // A dial to a closed port: the attempt's typed error, our (the network's)
    // fault, the same error the dial returns.
    let a = host().await;
    let mut events = a.events();
    let peer = PeerId::random();
    let bad = closed_addr().await;
    let target = bad.clone().with(Protocol::P2p(peer));
    let err = a.connect(vec![target.clone()]).await.unwrap_err();
    let ev = wait_event(&mut events, |e| matches!(e, HostEvent::DialFailed { .. })).await;
    let HostEvent::DialFailed {
        peer: Some(p),
        addr: Some(x),
        error: DialFailure::Attempt(attempt),
    } = &ev
    else {
        panic!("not an attempt failure: {ev:?}")
    };
    assert_eq!((*p, x), (peer, &bad));
    assert!(matches!(attempt, AttemptError::Upgrade(_)), "{attempt}");
    assert_eq!(attempt.blame(), Blame::Local);
    assert_eq!(ev.blame(), Some(Blame::Local));
    let DialError::Failed(attempts) = &err else {
        panic!("{err}")
    };
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].0, bad);
    assert_eq!(attempts[0].1.to_string(), attempt.to_string());

    // The whole dial failing before any attempt (backoff): `DialFailure::Dial`.
    assert!(matches!(
        a.connect(vec![target]).await,
        Err(DialError::Backoff)
    ));
    let ev = wait_event(&mut events, |e| matches!(e, HostEvent::DialFailed { .. })).await;
    assert!(
        matches!(
            &ev,
            HostEvent::DialFailed {
                addr: None,
                error: DialFailure::Dial(DialError::Backoff),
                ..
            }
        ),
        "{ev:?}"
    );
    assert_eq!(ev.blame(), Some(Blame::Local));
}

#[tokio::test]
async fn streams_over_the_per_peer_limit_are_reset_the_others_unaffected() {
    let a = host().await;
    let b = host().await;
    let mut incoming = b
        .handle(
            ECHO,
            HandlerOpts {
                backlog: 16,
                max_inbound_per_peer: 2,
            },
        )
        .unwrap();
    a.connect(vec![addr_of(&b)]).await.unwrap();
    let peer = b.peer_id();

    // Two streams, held open by b's handler.
    let mut held = Vec::new();
    let mut ours = Vec::new();
    for i in 0..2u8 {
        let (_, mut s) = a.new_stream(peer, &[ECHO]).await.unwrap();
        s.write_all(&[i]).await.unwrap();
        s.flush().await.unwrap();
        let got = tokio::time::timeout(WAIT, incoming.next())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.peer, a.peer_id());
        assert_eq!(got.protocol, ECHO);
        held.push(got);
        ours.push(s);
    }
    // The third concurrent stream of (a, ECHO) is reset.
    let (_, mut third) = a.new_stream(peer, &[ECHO]).await.unwrap();
    third.write_all(b"x").await.unwrap();
    third.flush().await.unwrap();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(WAIT, third.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(r.is_err(), "the stream over the limit must be reset");
    assert_eq!(b.metrics().streams_reset("per_peer_limit"), 1);

    // The first two carry data as if nothing happened.
    for (i, (theirs, mine)) in held.iter_mut().zip(ours.iter_mut()).enumerate() {
        let mut byte = [0u8; 1];
        theirs.stream.read_exact(&mut byte).await.unwrap();
        assert_eq!(byte[0], i as u8);
        theirs.stream.write_all(b"ok").await.unwrap();
        theirs.stream.flush().await.unwrap();
        let mut ok = [0u8; 2];
        mine.read_exact(&mut ok).await.unwrap();
        assert_eq!(&ok, b"ok");
    }

    // Dropping one held stream frees a slot.
    drop(held.remove(0));
    let (_, mut s) = a.new_stream(peer, &[ECHO]).await.unwrap();
    s.write_all(b"again").await.unwrap();
    s.flush().await.unwrap();
    let got = tokio::time::timeout(WAIT, incoming.next())
        .await
        .unwrap()
        .unwrap();
    let mut five = [0u8; 5];
    let mut st = got.stream;
    st.read_exact(&mut five).await.unwrap();
    assert_eq!(&five, b"again");
    assert_eq!(b.metrics().streams_reset("per_peer_limit"), 1);
    assert_eq!(b.metrics().streams_accepted(), 3);
}

#[tokio::test]
async fn a_full_backlog_resets_new_streams() {
    let a = host().await;
    let b = host().await;
    let mut incoming = b
        .handle(
            ECHO,
            HandlerOpts {
                backlog: 1,
                max_inbound_per_peer: 8,
            },
        )
        .unwrap();
    a.connect(vec![addr_of(&b)]).await.unwrap();

    let (_, mut first) = a.new_stream(b.peer_id(), &[ECHO]).await.unwrap();
    first.write_all(b"first").await.unwrap();
    first.flush().await.unwrap();
    let m = b.metrics().clone();
    until("first stream queued", || m.streams_accepted() == 1).await;

    // Nobody takes from the backlog: the second stream is reset.
    let (_, mut second) = a.new_stream(b.peer_id(), &[ECHO]).await.unwrap();
    second.write_all(b"second").await.unwrap();
    second.flush().await.unwrap();
    let mut buf = Vec::new();
    let r = tokio::time::timeout(WAIT, second.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(r.is_err(), "a stream beyond the backlog must be reset");
    assert_eq!(b.metrics().streams_reset("backlog_full"), 1);

    // The queued one is intact.
    let got = incoming.next().await.unwrap();
    let mut st = got.stream;
    let mut five = [0u8; 5];
    st.read_exact(&mut five).await.unwrap();
    assert_eq!(&five, b"first");
}

#[tokio::test]
async fn dropping_incoming_unregisters_the_protocol() {
    let a = host().await;
    let b = host().await;
    let incoming = b.handle(ECHO, HandlerOpts::default()).unwrap();
    assert!(b.handle(ECHO, HandlerOpts::default()).is_err());
    a.connect(vec![addr_of(&b)]).await.unwrap();

    drop(incoming);
    assert!(b.protocols().is_empty());
    // Negotiated eagerly (two protocols): `na` for both.
    match a.new_stream(b.peer_id(), &["/other/1.0.0", ECHO]).await {
        Err(OpenError::Negotiation(NegotiationError::ProtocolsExhausted)) => {}
        other => panic!("expected na, got {:?}", other.map(|(p, _)| p)),
    }
    // Lazily (one protocol): the rejection surfaces on the first read.
    let (_, mut s) = a.new_stream(b.peer_id(), &[ECHO]).await.unwrap();
    s.write_all(b"hi").await.unwrap();
    let mut buf = Vec::new();
    let err = s.read_to_end(&mut buf).await.unwrap_err();
    assert!(err.to_string().contains(ECHO), "{err}");

    // It can be registered again.
    support::serve_echo(b.handle(ECHO, HandlerOpts::default()).unwrap());
    assert_eq!(round_trip(&a, b.peer_id(), &[ECHO], b"back").await, b"back");
}

#[tokio::test]
async fn a_rejected_peer_is_banned_and_refused_at_accept_without_noise() {
    let server = host().await;
    // The client retries at once: no dial backoff.
    let client = host_with(|c| c.limits.dial_backoff_initial = Duration::ZERO).await;
    let mut es = server.events();
    let mut ec = client.events();
    client.connect(vec![addr_of(&server)]).await.unwrap();

    // The application rejects the peer after its handshake.
    wait_event(&mut es, is_connected(client.peer_id())).await;
    server
        .bans()
        .ban_peer_and_ip(client.peer_id(), Duration::from_secs(3600));
    server.disconnect(client.peer_id());
    wait_event(&mut ec, is_disconnected(server.peer_id())).await;
    assert!(server.bans().is_banned_peer(&client.peer_id()));
    let m = server.metrics();
    assert_eq!(m.handshakes_started(Direction::Inbound), 1);

    for _ in 0..100 {
        let r = client.connect(vec![addr_of(&server)]).await;
        assert!(r.is_err(), "a banned peer must not connect");
    }
    assert_eq!(m.refusals_at("banned_ip", "accept"), 100);
    assert_eq!(m.refusals("banned_ip"), 100);
    // Not one of them got to the Noise handshake.
    assert_eq!(m.handshakes_started(Direction::Inbound), 1);
    assert_eq!(m.handshakes_completed(Direction::Inbound), 1);
    assert_eq!(m.refusals_at_checkpoint("secured"), 0);
    assert!(server.connected_peers().is_empty());

    // Unbanning the peer lifts the IP ban that came with it.
    assert!(server.bans().unban_peer(&client.peer_id()));
    client.connect(vec![addr_of(&server)]).await.unwrap();
    assert_eq!(m.handshakes_started(Direction::Inbound), 2);
}

#[tokio::test]
async fn a_banned_peer_id_is_refused_after_noise_before_the_muxer() {
    let server = host().await;
    let client = host().await;
    server
        .bans()
        .ban_peer(client.peer_id(), Duration::from_secs(60));
    // The dialer finishes its side of Noise first and may see its dial
    // succeed; the server refuses right after, and the connection closes.
    let _ = client.connect(vec![addr_of(&server)]).await;
    let m = server.metrics().clone();
    until("refused at secured", || {
        m.refusals_at("banned_peer", "secured") == 1
    })
    .await;
    let c = client.clone();
    until("the client sees the close", move || {
        c.connected_peers().is_empty()
    })
    .await;
    assert!(server.connected_peers().is_empty());
    assert_eq!(m.handshakes_started(Direction::Inbound), 1);
    assert_eq!(m.handshakes_completed(Direction::Inbound), 0);
    // A plain peer ban leaves the IP alone.
    assert_eq!(m.refusals("banned_ip"), 0);

    // Outbound: the banned peer is not even dialed.
    let err = server.connect(vec![addr_of(&client)]).await.unwrap_err();
    assert!(matches!(err, DialError::Failed(_)), "{err}");
    assert_eq!(m.refusals_at("banned_peer", "peer_dial"), 1);
    assert_eq!(m.handshakes_started(Direction::Outbound), 1);
    assert_eq!(client.metrics().handshakes_started(Direction::Inbound), 0);
}

/// An application gater refusing one peer at `secured`.
struct RejectPeer(PeerId);

impl ConnectionGater for RejectPeer {
    fn secured(&self, _: Direction, peer: &PeerId, _: &Multiaddr) -> Verdict {
        if *peer == self.0 {
            Verdict::Deny(DenyReason::Other("rejected by test"))
        } else {
            Verdict::Allow
        }
    }
}

#[tokio::test]
async fn the_application_gater_runs_after_the_built_in_one() {
    let rejected = Keypair::generate_ed25519();
    let rejected_id = rejected.public().to_peer_id();
    let server = host_with(|c| c.gater = Some(Arc::new(RejectPeer(rejected_id)))).await;
    let client = host_with(|c| c.keypair = rejected).await;
    let other = host().await;

    let mut es = server.events();
    // The dialer may see its side succeed before the server refuses.
    let _ = client.connect(vec![addr_of(&server)]).await;
    let m = server.metrics().clone();
    until("refused by the app", || {
        m.refusals_at("app", "secured") == 1
    })
    .await;
    let c = client.clone();
    until("the client sees the close", move || {
        c.connected_peers().is_empty()
    })
    .await;
    other.connect(vec![addr_of(&server)]).await.unwrap();
    wait_event(&mut es, is_connected(other.peer_id())).await;
    assert_eq!(server.connected_peers(), vec![other.peer_id()]);

    // Banned too: the built-in gate refuses first, the app is not asked.
    server.bans().ban_peer(rejected_id, Duration::from_secs(60));
    let _ = client.connect(vec![addr_of(&server)]).await;
    until("refused by the ban list", || {
        m.refusals_at("banned_peer", "secured") == 1
    })
    .await;
    assert_eq!(m.refusals_at("app", "secured"), 1);
    assert_eq!(m.refusals("app"), 1);
}

#[tokio::test]
async fn at_the_peer_cap_new_inbound_is_refused_before_noise() {
    let server = host_with(|c| c.limits.max_inbound_connections = 2).await;
    support::serve_echo(server.handle(ECHO, HandlerOpts::default()).unwrap());
    let mut es = server.events();
    let c1 = host().await;
    let c2 = host().await;
    let c3 = host_with(|c| c.limits.dial_backoff_initial = Duration::ZERO).await;
    c1.connect(vec![addr_of(&server)]).await.unwrap();
    wait_event(&mut es, is_connected(c1.peer_id())).await;
    c2.connect(vec![addr_of(&server)]).await.unwrap();
    wait_event(&mut es, is_connected(c2.peer_id())).await;

    assert!(c3.connect(vec![addr_of(&server)]).await.is_err());
    let m = server.metrics();
    assert_eq!(m.refusals_at("peer_cap", "accept"), 1);
    assert_eq!(m.handshakes_started(Direction::Inbound), 2);

    // Established peers stay connected and work.
    assert_eq!(server.connected_peers().len(), 2);
    assert_eq!(
        round_trip(&c1, server.peer_id(), &[ECHO], b"still here").await,
        b"still here"
    );
    assert_eq!(
        round_trip(&c2, server.peer_id(), &[ECHO], b"me too").await,
        b"me too"
    );

    // Below the cap again, the third gets in.
    c1.disconnect(server.peer_id());
    wait_event(&mut es, is_disconnected(c1.peer_id())).await;
    c3.connect(vec![addr_of(&server)]).await.unwrap();
}

#[tokio::test]
async fn at_the_pending_cap_a_newcomer_evicts_a_silent_connection() {
    let server = host_with(|c| c.limits.max_pending_inbound = 1).await;
    // A raw TCP connection that never speaks holds the only pending slot.
    let sa = server.listen_addrs()[0].to_tcp_socket_addr().unwrap();
    let mut silent = tokio::net::TcpStream::connect(sa).await.unwrap();
    let m = server.metrics().clone();
    until("the silent connection is pending", || {
        m.handshakes_started(Direction::Inbound) == 1
    })
    .await;

    // The newcomer is not refused: the silent connection (no Noise done)
    // makes room for it.
    let client = host().await;
    client.connect(vec![addr_of(&server)]).await.unwrap();
    assert_eq!(m.pending_evictions("awaiting_first_byte"), 1);
    assert_eq!(m.refusals_at("pending_cap", "accept"), 0);
    assert_eq!(m.handshakes_started(Direction::Inbound), 2);
    // It is closed (the listener's multistream header may arrive first).
    let mut buf = [0u8; 256];
    tokio::time::timeout(WAIT, async {
        while let Ok(n) = silent.read(&mut buf).await
            && n > 0
        {}
    })
    .await
    .expect("the evicted connection is closed");
    until("no pending handshake left", || {
        m.pending_handshakes_total() == 0
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simultaneous_dials_end_in_exactly_one_connection() {
    let a = host().await;
    let b = host().await;
    support::serve_echo(a.handle(ECHO, HandlerOpts::default()).unwrap());
    support::serve_echo(b.handle(ECHO, HandlerOpts::default()).unwrap());
    // Both sides keep the connection dialed by the smaller peer id.
    let a_is_smaller = a.peer_id().as_bytes() < b.peer_id().as_bytes();
    let (pa, pb) = (a.peer_id(), b.peer_id());

    let mut both_dialed = 0;
    for round in 0..20 {
        let done = |h: &Host| h.metrics().handshakes_completed(Direction::Outbound);
        let (da, db) = (done(&a), done(&b));
        let (ra, rb) = tokio::join!(a.connect(vec![addr_of(&b)]), b.connect(vec![addr_of(&a)]));
        ra.unwrap();
        rb.unwrap();
        let (a2, b2) = (a.clone(), b.clone());
        until("both sides agree on one connection", move || {
            match (a2.connection(&pb), b2.connection(&pa)) {
                (Some(x), Some(y)) => {
                    x.local_addr == y.remote_addr
                        && x.remote_addr == y.local_addr
                        && a2.metrics().connections_open(Direction::Inbound)
                            + a2.metrics().connections_open(Direction::Outbound)
                            == 1
                        && b2.metrics().connections_open(Direction::Inbound)
                            + b2.metrics().connections_open(Direction::Outbound)
                            == 1
                }
                _ => false,
            }
        })
        .await;
        // When both dials completed (two connections existed), the one dialed
        // by the smaller peer id survived. (Otherwise one side saw the other's
        // connection before dialing and only one was made.)
        if done(&a) == da + 1 && done(&b) == db + 1 {
            both_dialed += 1;
            let kept = a.connection(&pb).unwrap();
            let expected = if a_is_smaller {
                Direction::Outbound
            } else {
                Direction::Inbound
            };
            assert_eq!(kept.direction, expected, "round {round}");
        }
        // The survivor works both ways.
        assert_eq!(round_trip(&a, pb, &[ECHO], b"ab").await, b"ab");
        assert_eq!(round_trip(&b, pa, &[ECHO], b"ba").await, b"ba");

        a.disconnect(pb);
        let (a2, b2) = (a.clone(), b.clone());
        until("both sides disconnected", move || {
            a2.connected_peers().is_empty() && b2.connected_peers().is_empty()
        })
        .await;
    }
    eprintln!("rounds with two connections: {both_dialed}/20");
    assert!(both_dialed > 0, "no round dialed both ways at once");
}

#[tokio::test]
async fn a_failed_address_backs_off() {
    let a = host().await;
    let peer = PeerId::random();
    let bad = closed_addr().await;
    let target = bad.clone().with(Protocol::P2p(peer));
    let mut events = a.events();

    let err = a.connect(vec![target.clone()]).await.unwrap_err();
    assert!(
        matches!(&err, DialError::Failed(v) if v.len() == 1),
        "{err}"
    );
    let ev = wait_event(&mut events, |e| matches!(e, HostEvent::DialFailed { .. })).await;
    assert!(
        matches!(&ev, HostEvent::DialFailed { peer: Some(p), addr: Some(x), .. } if *p == peer && *x == bad),
        "{ev:?}"
    );
    assert_eq!(a.metrics().dial_failures(), 1);

    // Within the first backoff (5 s) the address is not dialed.
    tokio::time::pause();
    assert!(matches!(
        a.connect(vec![target.clone()]).await,
        Err(DialError::Backoff)
    ));
    let ev = wait_event(&mut events, |e| matches!(e, HostEvent::DialFailed { .. })).await;
    assert!(
        matches!(ev, HostEvent::DialFailed { addr: None, .. }),
        "{ev:?}"
    );
    tokio::time::advance(Duration::from_millis(4900)).await;
    assert!(matches!(
        a.connect(vec![target.clone()]).await,
        Err(DialError::Backoff)
    ));
    assert_eq!(a.metrics().dial_failures(), 1);
    assert_eq!(a.metrics().handshakes_started(Direction::Outbound), 1);

    // After it, the address is dialed again (and fails again).
    tokio::time::advance(Duration::from_millis(200)).await;
    tokio::time::resume();
    assert!(matches!(
        a.connect(vec![target.clone()]).await,
        Err(DialError::Failed(_))
    ));
    assert_eq!(a.metrics().dial_failures(), 2);

    // The second backoff is twice as long.
    tokio::time::pause();
    tokio::time::advance(Duration::from_millis(9900)).await;
    assert!(matches!(
        a.connect(vec![target.clone()]).await,
        Err(DialError::Backoff)
    ));
    tokio::time::advance(Duration::from_millis(200)).await;
    tokio::time::resume();
    assert!(matches!(
        a.connect(vec![target]).await,
        Err(DialError::Failed(_))
    ));
    assert_eq!(a.metrics().dial_failures(), 3);
}

/// Ranks addresses on a given port first; records what it was asked.
struct PreferPort {
    port: u16,
    calls: Mutex<Vec<(Option<PeerId>, Vec<Multiaddr>)>>,
}

impl DialRanker for PreferPort {
    fn rank(&self, peer: Option<&PeerId>, addrs: Vec<Multiaddr>) -> Vec<Multiaddr> {
        self.calls
            .lock()
            .unwrap()
            .push((peer.copied(), addrs.clone()));
        let mut addrs = addrs;
        addrs.sort_by_key(|a| a.to_tcp_socket_addr().map(|s| s.port()) != Some(self.port));
        addrs
    }
}

#[tokio::test]
async fn the_dial_ranker_orders_candidates() {
    let b = host().await;
    let good = b.listen_addrs()[0].clone();
    let bad = closed_addr().await;
    let ranker = Arc::new(PreferPort {
        port: good.to_tcp_socket_addr().unwrap().port(),
        calls: Mutex::default(),
    });
    let r2 = ranker.clone();
    let a = host_with(move |c| c.dial_ranker = Some(r2)).await;

    // The unreachable address comes first; the ranker puts it last.
    a.add_addresses(b.peer_id(), vec![bad.clone(), good.clone()]);
    let (_, _s) = a.new_stream(b.peer_id(), &["/x/1.0.0"]).await.unwrap();
    let calls = ranker.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![(Some(b.peer_id()), vec![bad.clone(), good.clone()])]
    );
    assert_eq!(a.connection(&b.peer_id()).unwrap().remote_addr, good);
    assert_eq!(
        a.metrics().dial_failures(),
        0,
        "the bad address was never tried"
    );

    // Without a ranker the given order is kept: the bad address fails first.
    let c = host().await;
    c.add_addresses(b.peer_id(), vec![bad, good.clone()]);
    let info = c
        .connect(vec![Multiaddr::empty().with(Protocol::P2p(b.peer_id()))])
        .await
        .unwrap();
    assert_eq!(info.remote_addr, good);
    assert_eq!(c.metrics().dial_failures(), 1);
}

#[tokio::test]
async fn shutdown_closes_everything() {
    let a = host().await;
    let b = host().await;
    let mut incoming = a.handle(ECHO, HandlerOpts::default()).unwrap();
    let mut eb = b.events();
    let mut ea = a.events();
    b.connect(vec![addr_of(&a)]).await.unwrap();
    wait_event(&mut ea, is_connected(b.peer_id())).await;

    a.shutdown().await;
    let ev = wait_event(&mut ea, is_disconnected(b.peer_id())).await;
    assert!(
        matches!(
            &ev,
            HostEvent::Disconnected {
                cause: DisconnectCause::Shutdown,
                ..
            }
        ),
        "{ev:?}"
    );
    assert_eq!(ev.blame(), Some(Blame::Local));
    wait_event(&mut eb, is_disconnected(a.peer_id())).await;
    assert!(incoming.next().await.is_none());
    assert!(matches!(
        a.connect(vec![addr_of(&b)]).await,
        Err(DialError::Shutdown)
    ));
    // The listener is gone too.
    let err = b.connect(vec![addr_of(&a)]).await.unwrap_err();
    assert!(matches!(err, DialError::Failed(_)), "{err}");
}

#[tokio::test]
async fn dropping_the_last_handle_closes_connections() {
    let a = host().await;
    let b = host().await;
    let mut eb = b.events();
    let pa = a.peer_id();
    a.connect(vec![addr_of(&b)]).await.unwrap();
    wait_event(&mut eb, is_connected(pa)).await;
    let a2 = a.clone();
    drop(a);
    // A clone keeps it alive.
    assert_eq!(a2.connected_peers(), vec![b.peer_id()]);
    drop(a2);
    wait_event(&mut eb, is_disconnected(pa)).await;
}

#[tokio::test]
async fn yamux_is_preferred_and_mplex_serves_peers_that_only_speak_mplex() {
    // Two default hosts: yamux.
    let (a, b) = (host().await, host().await);
    support::serve_echo(b.handle("/echo/1", HandlerOpts::default()).unwrap());
    let conn = a.connect(vec![addr_of(&b)]).await.unwrap();
    assert_eq!(conn.muxer, "/yamux/1.0.0");
    assert_eq!(
        round_trip(&a, b.peer_id(), &["/echo/1"], b"via yamux").await,
        b"via yamux"
    );

    // A peer that offers only mplex still reaches a default host.
    let mplex_only = host_with(|c| {
        c.muxers = vec![Arc::new(plexus_mplex::MplexConfig::default())];
    })
    .await;
    let conn = mplex_only.connect(vec![addr_of(&b)]).await.unwrap();
    assert_eq!(conn.muxer, "/mplex/6.7.0");
    until("b sees the mplex connection", || {
        b.connection(&mplex_only.peer_id()).is_some()
    })
    .await;
    assert_eq!(
        b.connection(&mplex_only.peer_id()).unwrap().muxer,
        "/mplex/6.7.0"
    );
    assert_eq!(
        round_trip(&mplex_only, b.peer_id(), &["/echo/1"], b"via mplex").await,
        b"via mplex"
    );
}
