//! TCP transport for plexus, on tokio.
//!
//! Dials `/ip4|ip6|dns|dns4|dns6/<host>/tcp/<port>[/p2p/<id>]` and listens on
//! `/ip4|ip6/<ip>/tcp/<port>`. Every socket gets `TCP_NODELAY` (multistream,
//! Noise and yamux all write small frames that must not wait for Nagle) and,
//! on Linux and Android, `TCP_NOTSENT_LOWAT` (see [`TcpConfig::notsent_lowat`]).
//!
//! Accepting is split in two steps: [`Listener::accept`] yields a
//! [`PendingInbound`] as soon as the OS hands us the socket, and nothing is
//! read from it until [`PendingInbound::finish`]. A gater can therefore refuse
//! a banned IP before any handshake work; [`PendingInbound::refuse`] closes the
//! socket with a reset (`SO_LINGER` 0) so no `TIME_WAIT` state piles up under a
//! reconnect flood.
#![forbid(unsafe_code)]

use std::io;
use std::net::{IpAddr, SocketAddr};

use plexus_core::{
    BoxFut, Listener, PendingInbound, RawConn, Transport, TransportConn, TransportError,
};
use plexus_multiaddr::{Multiaddr, Protocol};
use tokio::net::{TcpSocket, TcpStream};

/// TCP transport settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConfig {
    /// Set `TCP_NODELAY` on every socket. Default `true`.
    pub nodelay: bool,
    /// The listen backlog passed to `listen(2)`. Default 1024.
    pub listen_backlog: u32,
    /// `TCP_NOTSENT_LOWAT` in bytes on every socket (Linux and Android; ignored
    /// elsewhere), `None` to keep the system default. Default
    /// [`DEFAULT_NOTSENT_LOWAT`] (256 KiB).
    ///
    /// It bounds the bytes the kernel holds *not yet sent* for a socket (bytes
    /// in flight are still bounded only by the congestion and receive windows,
    /// so throughput is not capped). Without it the send buffer auto-tunes to
    /// megabytes, and everything written later, such as a ping or a gossip
    /// message on another stream, waits behind that queue; with it the backlog
    /// stays in the muxer, which interleaves streams. This matters most for
    /// mplex, which has no flow control: on loopback under a bulk upload, ping
    /// p99 went from ~13 ms to under 1 ms (docs/BENCHMARKS.md).
    pub notsent_lowat: Option<u32>,
    /// The local IP outgoing connections are bound to (their source address), `None` to let
    /// the kernel choose. Applied only to targets of the same family (an IPv4 bind is not used
    /// for an IPv6 target). Default `None`.
    pub outbound_bind_ip: Option<IpAddr>,
}

/// The default [`TcpConfig::notsent_lowat`]: 256 KiB.
pub const DEFAULT_NOTSENT_LOWAT: u32 = 256 * 1024;

impl Default for TcpConfig {
    fn default() -> Self {
        TcpConfig {
            nodelay: true,
            listen_backlog: 1024,
            notsent_lowat: Some(DEFAULT_NOTSENT_LOWAT),
            outbound_bind_ip: None,
        }
    }
}

/// Connect to `sa` (from `bind` when it is set and of `sa`'s family) and configure the socket.
async fn connect(
    sa: SocketAddr,
    opts: SocketOptions,
    bind: Option<IpAddr>,
) -> io::Result<TcpStream> {
    let stream = match bind {
        Some(ip) if ip.is_ipv4() == sa.is_ipv4() => {
            let socket = if sa.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.bind(SocketAddr::new(ip, 0))?;
            socket.connect(sa).await?
        }
        _ => TcpStream::connect(sa).await?,
    };
    opts.apply(&stream)?;
    Ok(stream)
}

/// The per-socket options of a [`TcpConfig`].
#[derive(Debug, Clone, Copy)]
struct SocketOptions {
    nodelay: bool,
    notsent_lowat: Option<u32>,
}

impl SocketOptions {
    fn of(config: &TcpConfig) -> Self {
        SocketOptions {
            nodelay: config.nodelay,
            notsent_lowat: config.notsent_lowat,
        }
    }

    /// Apply to a connected socket. `TCP_NODELAY` failing is an error; a kernel
    /// without `TCP_NOTSENT_LOWAT` only costs latency, so that is logged.
    fn apply(self, stream: &TcpStream) -> io::Result<()> {
        stream.set_nodelay(self.nodelay)?;
        #[cfg(any(target_os = "linux", target_os = "android"))]
        if let Some(lowat) = self.notsent_lowat
            && let Err(e) = socket2::SockRef::from(stream).set_tcp_notsent_lowat(lowat)
        {
            tracing::debug!(error = %e, lowat, "cannot set TCP_NOTSENT_LOWAT");
        }
        Ok(())
    }
}

/// The TCP transport.
#[derive(Debug, Clone, Default)]
pub struct TcpTransport {
    config: TcpConfig,
}

impl TcpTransport {
    /// A transport with the given settings.
    pub fn new(config: TcpConfig) -> Self {
        TcpTransport { config }
    }
}

/// Where a multiaddr asks us to connect.
enum Target {
    Socket(SocketAddr),
    Dns {
        name: String,
        port: u16,
        family: Family,
    },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Family {
    Any,
    V4,
    V6,
}

/// Parse `host/tcp/port[/p2p/..]` into a dial target.
fn target(addr: &Multiaddr) -> Option<Target> {
    let mut it = addr.iter();
    let host = it.next()?;
    let port = match it.next()? {
        Protocol::Tcp(p) => *p,
        _ => return None,
    };
    match it.next() {
        None | Some(Protocol::P2p(_)) => {}
        Some(_) => return None,
    }
    if it.next().is_some() {
        return None;
    }
    Some(match host {
        Protocol::Ip4(ip) => Target::Socket(SocketAddr::new((*ip).into(), port)),
        Protocol::Ip6(ip) => Target::Socket(SocketAddr::new((*ip).into(), port)),
        Protocol::Dns(n) => Target::Dns {
            name: n.clone(),
            port,
            family: Family::Any,
        },
        Protocol::Dns4(n) => Target::Dns {
            name: n.clone(),
            port,
            family: Family::V4,
        },
        Protocol::Dns6(n) => Target::Dns {
            name: n.clone(),
            port,
            family: Family::V6,
        },
        _ => return None,
    })
}

async fn resolve(target: Target) -> Result<Vec<SocketAddr>, TransportError> {
    match target {
        Target::Socket(s) => Ok(vec![s]),
        Target::Dns { name, port, family } => {
            let mut addrs: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), port))
                .await?
                .filter(|a| match family {
                    Family::Any => true,
                    Family::V4 => a.is_ipv4(),
                    Family::V6 => a.is_ipv6(),
                })
                .collect();
            // The addressing spec prefers IPv6 when a name has both.
            addrs.sort_by_key(|a| a.is_ipv4());
            if addrs.is_empty() {
                return Err(TransportError::Io(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!("{name} has no address of the requested family"),
                )));
            }
            Ok(addrs)
        }
    }
}

impl Transport for TcpTransport {
    fn can_dial(&self, addr: &Multiaddr) -> bool {
        target(addr).is_some()
    }

    fn dial(&self, addr: Multiaddr) -> BoxFut<'static, Result<TransportConn, TransportError>> {
        let opts = SocketOptions::of(&self.config);
        let bind = self.config.outbound_bind_ip;
        Box::pin(async move {
            let target =
                target(&addr).ok_or_else(|| TransportError::UnsupportedAddr(addr.to_string()))?;
            let mut last_err = None;
            for sa in resolve(target).await? {
                match connect(sa, opts, bind).await {
                    Ok(stream) => {
                        let local_addr = Multiaddr::from_tcp(stream.local_addr()?);
                        return Ok(TransportConn::Raw(RawConn {
                            io: Box::new(stream),
                            local_addr,
                            remote_addr: Multiaddr::from_tcp(sa),
                        }));
                    }
                    Err(e) => last_err = Some(e),
                }
            }
            Err(TransportError::Io(
                last_err.unwrap_or_else(|| io::Error::other("no address to dial")),
            ))
        })
    }

    fn listen(
        &self,
        addr: Multiaddr,
    ) -> BoxFut<'static, Result<Box<dyn Listener>, TransportError>> {
        let config = self.config.clone();
        Box::pin(async move {
            let sa = match target(&addr) {
                Some(Target::Socket(sa)) if addr.peer_id().is_none() => sa,
                _ => return Err(TransportError::UnsupportedAddr(addr.to_string())),
            };
            let socket = if sa.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.bind(sa)?;
            let listener = socket.listen(config.listen_backlog)?;
            let local_addr = Multiaddr::from_tcp(listener.local_addr()?);
            tracing::debug!(%local_addr, "tcp listening");
            Ok(Box::new(TcpListener {
                listener,
                local_addr,
                opts: SocketOptions::of(&config),
            }) as Box<dyn Listener>)
        })
    }
}

/// A bound TCP listener.
struct TcpListener {
    listener: tokio::net::TcpListener,
    local_addr: Multiaddr,
    opts: SocketOptions,
}

impl Listener for TcpListener {
    fn local_addr(&self) -> &Multiaddr {
        &self.local_addr
    }

    fn accept(&mut self) -> BoxFut<'_, Result<Box<dyn PendingInbound>, TransportError>> {
        Box::pin(async move {
            let (stream, remote) = self.listener.accept().await?;
            let local = stream
                .local_addr()
                .map(Multiaddr::from_tcp)
                .unwrap_or_else(|_| self.local_addr.clone());
            Ok(Box::new(PendingTcp {
                stream,
                remote_addr: Multiaddr::from_tcp(remote),
                local_addr: local,
                opts: self.opts,
            }) as Box<dyn PendingInbound>)
        })
    }
}

/// An accepted socket from which nothing was read yet.
struct PendingTcp {
    stream: TcpStream,
    remote_addr: Multiaddr,
    local_addr: Multiaddr,
    opts: SocketOptions,
}

impl PendingInbound for PendingTcp {
    fn remote_addr(&self) -> &Multiaddr {
        &self.remote_addr
    }

    fn local_addr(&self) -> &Multiaddr {
        &self.local_addr
    }

    fn finish(self: Box<Self>) -> BoxFut<'static, Result<TransportConn, TransportError>> {
        Box::pin(async move {
            self.opts.apply(&self.stream)?;
            Ok(TransportConn::Raw(RawConn {
                io: Box::new(self.stream),
                local_addr: self.local_addr,
                remote_addr: self.remote_addr,
            }))
        })
    }

    fn refuse(self: Box<Self>) {
        // Reset instead of FIN: the refused peer learns at once, and we keep no
        // TIME_WAIT state for it.
        let _ = self.stream.set_zero_linger();
        drop(self.stream);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn addr(s: &str) -> Multiaddr {
        s.parse().unwrap()
    }

    #[test]
    fn can_dial_only_tcp_shapes() {
        let t = TcpTransport::default();
        assert!(t.can_dial(&addr("/ip4/127.0.0.1/tcp/1")));
        assert!(t.can_dial(&addr("/ip6/::1/tcp/1")));
        assert!(t.can_dial(&addr("/dns4/example.com/tcp/1")));
        let with_peer = format!(
            "/ip4/1.2.3.4/tcp/9000/p2p/{}",
            plexus_core::PeerId::random()
        );
        assert!(t.can_dial(&addr(&with_peer)));
        assert!(!t.can_dial(&addr("/ip4/127.0.0.1/udp/1/quic-v1")));
        assert!(!t.can_dial(&addr("/ip4/127.0.0.1")));
        assert!(!t.can_dial(&addr("/ip4/127.0.0.1/tcp/1/tcp/2")));
    }

    #[tokio::test]
    async fn listen_dial_accept_and_carry_bytes() {
        let t = TcpTransport::default();
        let mut l = t.listen(addr("/ip4/127.0.0.1/tcp/0")).await.unwrap();
        let la = l.local_addr().clone();
        assert_ne!(
            la.to_tcp_socket_addr().unwrap().port(),
            0,
            "real port reported"
        );
        let dial = tokio::spawn(t.dial(la.clone()));
        let pending = l.accept().await.unwrap();
        assert_eq!(pending.local_addr(), &la);
        let mut inbound = pending.finish().await.unwrap().into_raw().unwrap();
        let mut outbound = dial.await.unwrap().unwrap().into_raw().unwrap();
        assert_eq!(outbound.remote_addr, la);
        assert_eq!(inbound.remote_addr, outbound.local_addr);
        outbound.io.write_all(b"hello").await.unwrap();
        let mut buf = [0u8; 5];
        inbound.io.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hello");
    }

    #[tokio::test]
    async fn refused_connection_reads_nothing_and_dialer_sees_close() {
        let t = TcpTransport::default();
        let mut l = t.listen(addr("/ip4/127.0.0.1/tcp/0")).await.unwrap();
        let la = l.local_addr().clone();
        let dial = tokio::spawn(t.dial(la));
        let pending = l.accept().await.unwrap();
        pending.refuse();
        // The reset may reach the dialer while it is still setting up its
        // socket (the dial fails), or later (its first read fails or sees EOF).
        // Either way no byte ever arrives.
        if let Some(mut out) = dial.await.unwrap().ok().and_then(|c| c.into_raw()) {
            let mut buf = [0u8; 1];
            match out.io.read(&mut buf).await {
                Ok(0) | Err(_) => {}
                Ok(n) => panic!("refused connection delivered {n} bytes"),
            }
        }
    }

    /// `TCP_NOTSENT_LOWAT` of both ends of a connection configured by `t`'s options (the
    /// dial path's `connect` and the accept path's `apply`; the transport boxes its sockets,
    /// so they are checked here, before boxing).
    #[cfg(any(target_os = "linux", target_os = "android"))]
    async fn lowat_of_both_ends(t: TcpTransport) -> (u32, u32) {
        let opts = SocketOptions::of(&t.config);
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let dialed = connect(l.local_addr().unwrap(), opts, None).await.unwrap();
        let (accepted, _) = l.accept().await.unwrap();
        opts.apply(&accepted).unwrap();
        assert_eq!(dialed.nodelay().unwrap(), t.config.nodelay);
        (
            socket2::SockRef::from(&dialed).tcp_notsent_lowat().unwrap(),
            socket2::SockRef::from(&accepted)
                .tcp_notsent_lowat()
                .unwrap(),
        )
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[tokio::test]
    async fn notsent_lowat_is_set_by_default_and_can_be_left_alone() {
        let (d, a) = lowat_of_both_ends(TcpTransport::default()).await;
        assert_eq!((d, a), (DEFAULT_NOTSENT_LOWAT, DEFAULT_NOTSENT_LOWAT));
        let custom = TcpConfig {
            notsent_lowat: Some(64 * 1024),
            ..TcpConfig::default()
        };
        let (d, a) = lowat_of_both_ends(TcpTransport::new(custom)).await;
        assert_eq!((d, a), (64 * 1024, 64 * 1024));
        // None keeps the kernel's default (net.ipv4.tcp_notsent_lowat, "no limit" unless an
        // administrator changed it): whatever a fresh socket has.
        let fresh = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let s = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
            socket2::SockRef::from(&s).tcp_notsent_lowat().unwrap()
        };
        let off = TcpConfig {
            notsent_lowat: None,
            ..TcpConfig::default()
        };
        let (d, a) = lowat_of_both_ends(TcpTransport::new(off)).await;
        assert_eq!((d, a), (fresh, fresh));
    }

    #[tokio::test]
    async fn outgoing_connections_bind_the_configured_source_ip() {
        let t = TcpTransport::default();
        let mut l = t.listen(addr("/ip4/127.0.0.1/tcp/0")).await.unwrap();
        let la = l.local_addr().clone();
        let bound = TcpTransport::new(TcpConfig {
            outbound_bind_ip: Some("127.0.0.2".parse().unwrap()),
            ..TcpConfig::default()
        });
        let dial = tokio::spawn(bound.dial(la.clone()));
        let pending = l.accept().await.unwrap();
        let seen = pending.remote_addr().to_tcp_socket_addr().unwrap();
        assert_eq!(seen.ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
        let out = dial.await.unwrap().unwrap().into_raw().unwrap();
        assert_eq!(out.local_addr.to_tcp_socket_addr().unwrap(), seen);
    }

    #[tokio::test]
    async fn listen_rejects_non_socket_addresses() {
        let t = TcpTransport::default();
        assert!(matches!(
            t.listen(addr("/dns4/localhost/tcp/0")).await,
            Err(TransportError::UnsupportedAddr(_))
        ));
        assert!(matches!(
            t.dial(addr("/ip4/127.0.0.1/udp/1/quic-v1")).await,
            Err(TransportError::UnsupportedAddr(_))
        ));
    }
}
