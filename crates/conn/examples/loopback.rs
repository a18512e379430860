//! Two plexus nodes on loopback: TCP + Noise + yamux, one connection, one
//! stream. Prints the handshake time and the throughput of a bulk transfer.
//!
//! ```text
//! cargo run --release -p plexus-conn --example loopback -- [MIB]
//! ```

use std::sync::Arc;
use std::time::Instant;

use plexus_conn::Upgrader;
use plexus_core::{AllowAll, Limits, MuxerUpgrade, Transport};
use plexus_identity::Keypair;
use plexus_noise::NoiseConfig;
use plexus_tcp::TcpTransport;
use plexus_yamux::YamuxConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn upgrader(key: &Keypair) -> Upgrader {
    let muxers: Vec<Arc<dyn MuxerUpgrade>> = vec![Arc::new(YamuxConfig::default())];
    Upgrader::new(
        Arc::new(NoiseConfig::new(key.clone())),
        muxers,
        Arc::new(AllowAll),
        Limits::default(),
    )
}

#[tokio::main]
async fn main() {
    let mib: usize = match std::env::args().nth(1).map(|a| a.parse()) {
        None => 256,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: loopback [MIB > 0]");
            std::process::exit(2);
        }
    };
    let (ka, kb) = (Keypair::generate_secp256k1(), Keypair::generate_secp256k1());
    let (ua, ub) = (upgrader(&ka), upgrader(&kb));
    let tcp = TcpTransport::default();
    let mut listener = tcp
        .listen("/ip4/127.0.0.1/tcp/0".parse().expect("valid multiaddr"))
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().clone();
    println!("listener {} on {addr}", kb.public().to_peer_id());

    let server = tokio::spawn(async move {
        let conn = ub
            .accept(listener.accept().await.expect("accept"))
            .await
            .expect("upgrade");
        let mut s = conn.muxer.accept().await.expect("inbound stream");
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0usize;
        loop {
            let n = s.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            total += n;
        }
        s.write_all(&(total as u64).to_be_bytes())
            .await
            .expect("write");
        s.shutdown().await.expect("close");
    });

    let t0 = Instant::now();
    let conn = ua
        .dial(
            &tcp,
            addr.with(plexus_multiaddr::Protocol::P2p(kb.public().to_peer_id())),
        )
        .await
        .expect("dial");
    let setup = t0.elapsed();
    println!(
        "dialer {} connected in {:.2} ms ({} + {})",
        ka.public().to_peer_id(),
        setup.as_secs_f64() * 1e3,
        conn.info.security,
        conn.info.muxer
    );

    let mut s = conn.muxer.open().await.expect("open stream");
    let chunk = vec![0xA5u8; 256 * 1024];
    let t1 = Instant::now();
    for _ in 0..mib * 4 {
        s.write_all(&chunk).await.expect("write");
    }
    s.shutdown().await.expect("half-close");
    let mut ack = [0u8; 8];
    s.read_exact(&mut ack).await.expect("ack");
    let secs = t1.elapsed().as_secs_f64();
    server.await.expect("server task");
    let received = u64::from_be_bytes(ack);
    assert_eq!(
        received as usize,
        mib * 1024 * 1024,
        "listener received every byte"
    );
    println!(
        "sent {mib} MiB in {:.3} s: {:.0} MiB/s ({:.2} Gbit/s)",
        secs,
        mib as f64 / secs,
        mib as f64 * 8.0 * 1.048576 / 1000.0 / secs
    );
}
