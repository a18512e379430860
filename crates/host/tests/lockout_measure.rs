//! Measures how long 120 silent TCP connections from 127.0.0.1 lock out an
//! honest dialer from the same IP (it uses only APIs that predate the
//! pending-handshake policy, so the same file measures the code before it):
//! `cargo test -p plexus-host --test lockout_measure -- --ignored --nocapture`.
//! Before: ~10 s per round (the handshake timeout); after: ~2 s (the header
//! deadline; the per-IP cap refuses this IP until then). From another IP see
//! `slowloris.rs`'s `measure_lockout_from_another_ip`.
use std::time::{Duration, Instant};

use plexus_host::{Host, HostConfig};
use plexus_identity::Keypair;
use plexus_multiaddr::Protocol;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
/// Three rounds; prints the lock-out of each.
#[ignore = "measurement"]
async fn measure_inbound_lockout() {
    let mut cfg = HostConfig::new(Keypair::generate_ed25519());
    cfg.listen = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    let server = Host::new(cfg).await.unwrap();
    let sa = server.listen_addrs()[0].to_tcp_socket_addr().unwrap();
    let target = server.listen_addrs()[0]
        .clone()
        .with(Protocol::P2p(server.peer_id()));
    for round in 0..3 {
        let mut ccfg = HostConfig::new(Keypair::generate_ed25519());
        ccfg.limits.dial_backoff_initial = Duration::ZERO;
        let client = Host::new(ccfg).await.unwrap();
        let mut silent = Vec::new();
        for _ in 0..120 {
            if let Ok(s) = tokio::net::TcpStream::connect(sa).await {
                silent.push(s);
            }
        }
        let start = Instant::now();
        let mut tries = 0;
        loop {
            tries += 1;
            match tokio::time::timeout(Duration::from_secs(2), client.connect(vec![target.clone()]))
                .await
            {
                Ok(Ok(_)) => break,
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        println!(
            "round {round}: locked out {:.2} s ({tries} tries)",
            start.elapsed().as_secs_f64()
        );
        client.shutdown().await;
        drop(silent);
    }
}
