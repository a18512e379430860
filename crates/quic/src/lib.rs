//! QUIC v1 (RFC 9000) as a plexus transport, on quinn with the libp2p TLS 1.3 handshake
//! (`plexus-tls`).
//!
//! - Addresses: `/ip4|ip6/<ip>/udp/<port>/quic-v1`, optionally ending in `/p2p/<id>` (the
//!   peer the dial must reach: checked inside the TLS handshake).
//! - A connection is secured and multiplexed by QUIC itself: [`QuicTransport`] yields
//!   [`TransportConn::Ready`] with the authenticated peer and a [`MuxedConn`] whose streams
//!   are QUIC bidirectional streams (shutdown = FIN, reset = RESET_STREAM + STOP_SENDING).
//! - Gating before crypto: the listener hands out every connection attempt as a
//!   [`PendingInbound`] wrapping quinn's `Incoming`, before any TLS work; refusing it sends a
//!   stateless CONNECTION_REFUSED. While more than [`QuicConfig::retry_above_pending`]
//!   handshakes are running, unvalidated addresses get a stateless Retry first.
//! - Outbound connections leave from a listening endpoint of the same IP family when there is
//!   one (so peers see our listen port), else from a dial-only endpoint.
//!
//! See `docs/quic.md`.
#![forbid(unsafe_code)]

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use plexus_core::{
    Blame, BoxFut, BoxStream, Listener, MuxError, MuxStats, MuxedConn, MuxedStream, PendingInbound,
    ReadyConn, SecurityError, Transport, TransportConn, TransportError,
};
use plexus_identity::{Keypair, PeerId};
use plexus_multiaddr::{Multiaddr, Protocol};
use plexus_tls::TlsConfig;
use quinn::crypto::rustls::{QuicClientConfig, QuicServerConfig};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The name of QUIC's security in [`plexus_core::ConnInfo::security`].
pub const SECURITY: &str = "/tls/1.0.0";
/// The name of QUIC's multiplexing in [`plexus_core::ConnInfo::muxer`].
pub const MUXER: &str = "/quic-v1";

/// QUIC settings. Every bound is a named field with its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuicConfig {
    /// Longest time the QUIC + TLS handshake may take, both ways. Default 5 s.
    pub handshake_timeout: Duration,
    /// A connection with no packet for this long is closed. Default 10 s.
    pub max_idle_timeout: Duration,
    /// Send a keep-alive (PING) after this long without sending. Default 5 s (half the idle
    /// timeout, so an idle but live connection stays up).
    pub keep_alive_interval: Duration,
    /// Bidirectional streams the remote may have open at once; more are held back by QUIC's
    /// own stream credit (never reset). Default 256.
    pub max_concurrent_bidi_streams: u32,
    /// Bidirectional streams the remote may open at first (clamped to
    /// `1..=max_concurrent_bidi_streams`). quinn keeps a table entry for every stream the remote
    /// may open, so granting all 256 up front costs an idle connection about 21 KiB; instead the
    /// credit starts here and doubles, up to `max_concurrent_bidi_streams`, whenever the inbound
    /// streams open on our side reach half of it (quinn sends the new `MAX_STREAMS` at once).
    /// Default 8.
    pub initial_concurrent_bidi_streams: u32,
    /// Bytes one stream may have in flight towards us. Default 10 MB (the bandwidth-delay
    /// product of 1 Gbit/s at 80 ms).
    pub stream_receive_window: u32,
    /// Bytes all streams of a connection together may have in flight towards us. Default
    /// 15 MB.
    pub receive_window: u32,
    /// While more inbound handshakes than this are running, a connection attempt from an
    /// address QUIC has not validated gets a stateless Retry (one round trip, no state)
    /// before its handshake starts. Default 64.
    pub retry_above_pending: usize,
    /// Path MTU discovery. Default on.
    pub mtu_discovery: bool,
    /// Address validation tokens (RFC 9000 §8.1.3): as a server, send two NEW_TOKEN tokens on
    /// each connection; as a client, keep the ones servers send and present them on the next
    /// dial. Default off: libp2p has no 0-RTT for them to speed up, and every dial uses the same
    /// server name, so a kept token would be presented to whichever peer is dialed next.
    pub validation_tokens: bool,
    /// Closing a connection returns once its CONNECTION_CLOSE packet has been handed to the
    /// socket, or after this long. quinn's close only queues the frame for the connection's driver task: a
    /// process that exits right after closing (or after the host's shutdown) could send
    /// none, and its peers would hold the dead connection until their idle timeout. The
    /// frame bypasses congestion control, so it goes out in well under a millisecond on an
    /// idle machine. Default 100 ms.
    pub close_linger: Duration,
    /// The UDP socket's receive buffer asked of the kernel (`SO_RCVBUF`), in bytes. Every
    /// connection of an endpoint shares one socket, and a burst of handshakes (each peer's
    /// Initial flight is a few padded 1200-byte datagrams) overflows Linux's default 208 KiB:
    /// the dropped Initials then wait out the first probe timeout (about a second) or fail the
    /// handshake. Larger is not better: under a bulk transfer that the reader cannot keep up
    /// with, the datagrams of every connection of the socket wait behind a full buffer (with
    /// 4 MiB, a ping on a loaded connection took 11 ms instead of 1). The kernel doubles the
    /// request for its bookkeeping and caps it at `net.core.rmem_max`; a smaller grant is
    /// logged. Memory is taken only while datagrams wait. Default 512 KiB.
    pub udp_receive_buffer: usize,
    /// The UDP socket's send buffer asked of the kernel (`SO_SNDBUF`), in bytes; capped at
    /// `net.core.wmem_max`. Default 512 KiB.
    pub udp_send_buffer: usize,
}

impl Default for QuicConfig {
    fn default() -> Self {
        QuicConfig {
            handshake_timeout: Duration::from_secs(5),
            max_idle_timeout: Duration::from_secs(10),
            keep_alive_interval: Duration::from_secs(5),
            max_concurrent_bidi_streams: 256,
            initial_concurrent_bidi_streams: 8,
            stream_receive_window: 10_000_000,
            receive_window: 15_000_000,
            retry_above_pending: 64,
            mtu_discovery: true,
            validation_tokens: false,
            close_linger: Duration::from_millis(100),
            udp_receive_buffer: 512 << 10,
            udp_send_buffer: 512 << 10,
        }
    }
}

/// The QUIC transport. Cheap to clone.
#[derive(Clone)]
pub struct QuicTransport {
    shared: Arc<Shared>,
}

struct Shared {
    tls: TlsConfig,
    cfg: QuicConfig,
    transport: Arc<quinn::TransportConfig>,
    /// The dialing config shared by every dial whose expected peer travels in the server name
    /// (`plexus_tls::server_name_for`), or that expects none.
    dial_config: quinn::ClientConfig,
    /// Listening endpoints (also used to dial from, per IP family).
    listening: Mutex<Vec<quinn::Endpoint>>,
    /// Dial-only endpoints, [v4, v6], made on first use.
    dialing: Mutex<[Option<quinn::Endpoint>; 2]>,
    /// Inbound handshakes running on all our endpoints.
    pending_in: Arc<AtomicUsize>,
}

impl std::fmt::Debug for QuicTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuicTransport")
            .field("cfg", &self.shared.cfg)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The UDP socket address of a QUIC multiaddr (`/ip4|ip6/…/udp/…/quic-v1`, then at most a
/// `/p2p`).
pub fn socket_addr(addr: &Multiaddr) -> Option<SocketAddr> {
    let mut it = addr.iter();
    let ip: IpAddr = match it.next()? {
        Protocol::Ip4(ip) => (*ip).into(),
        Protocol::Ip6(ip) => (*ip).into(),
        _ => return None,
    };
    let Protocol::Udp(port) = it.next()? else {
        return None;
    };
    if !matches!(it.next()?, Protocol::QuicV1) {
        return None;
    }
    match it.next() {
        None | Some(Protocol::P2p(_)) => {}
        _ => return None,
    }
    if it.next().is_some() {
        return None;
    }
    Some(SocketAddr::new(ip, *port))
}

/// The bidirectional stream credit a connection starts with.
fn initial_bidi_credit(cfg: &QuicConfig) -> u32 {
    match cfg.max_concurrent_bidi_streams {
        0 => 0,
        max => cfg.initial_concurrent_bidi_streams.clamp(1, max),
    }
}

/// The multiaddr of a UDP socket address, with `/quic-v1`.
pub fn multiaddr(sa: SocketAddr) -> Multiaddr {
    let ip = match sa.ip() {
        IpAddr::V4(ip) => Protocol::Ip4(ip),
        IpAddr::V6(ip) => Protocol::Ip6(ip),
    };
    Multiaddr::empty()
        .with(ip)
        .with(Protocol::Udp(sa.port()))
        .with(Protocol::QuicV1)
}

impl QuicTransport {
    /// A transport for `keypair` (the host identity: the TLS certificate carries it).
    pub fn new(keypair: &Keypair, cfg: QuicConfig) -> QuicTransport {
        let mut t = quinn::TransportConfig::default();
        t.max_concurrent_bidi_streams(initial_bidi_credit(&cfg).into())
            .max_concurrent_uni_streams(0u32.into())
            .stream_receive_window(cfg.stream_receive_window.into())
            .receive_window(cfg.receive_window.into())
            .keep_alive_interval(Some(cfg.keep_alive_interval))
            .max_idle_timeout(
                quinn::IdleTimeout::try_from(cfg.max_idle_timeout)
                    .ok()
                    .or_else(|| Some(quinn::IdleTimeout::from(quinn::VarInt::MAX))),
            )
            .datagram_receive_buffer_size(None);
        if !cfg.mtu_discovery {
            t.mtu_discovery_config(None);
        }
        let tls = TlsConfig::new(keypair);
        let transport = Arc::new(t);
        let dial_config = client_config(&tls, None, &cfg, &transport)
            .expect("plexus-tls's TLS 1.3 config with its initial cipher suite suits QUIC");
        QuicTransport {
            shared: Arc::new(Shared {
                tls,
                cfg,
                transport,
                dial_config,
                listening: Mutex::new(Vec::new()),
                dialing: Mutex::new([None, None]),
                pending_in: Arc::new(AtomicUsize::new(0)),
            }),
        }
    }

    /// The settings in force.
    pub fn config(&self) -> &QuicConfig {
        &self.shared.cfg
    }

    /// Inbound handshakes running now.
    pub fn pending_handshakes(&self) -> usize {
        self.shared.pending_in.load(Ordering::Relaxed)
    }
}

impl Shared {
    fn server_config(&self) -> Result<quinn::ServerConfig, TransportError> {
        let crypto = QuicServerConfig::try_from(self.tls.server_config())
            .map_err(|e| TransportError::Io(io::Error::other(e)))?;
        let mut sc = quinn::ServerConfig::with_crypto(Arc::new(crypto));
        sc.transport_config(self.transport.clone());
        // Never migrate: a peer's address is what the gate judged.
        sc.migration(false);
        if !self.cfg.validation_tokens {
            let mut tokens = quinn::ValidationTokenConfig::default();
            tokens.sent(0).log(Arc::new(quinn::NoneTokenLog));
            sc.validation_token_config(tokens);
        }
        Ok(sc)
    }

    /// The client config and server name to dial `expect` with.
    fn dial_config(
        &self,
        expect: Option<PeerId>,
    ) -> Result<(quinn::ClientConfig, String), TransportError> {
        let Some(peer) = expect else {
            return Ok((self.dial_config.clone(), plexus_tls::SERVER_NAME.into()));
        };
        match plexus_tls::server_name_for(&peer) {
            Some(name) => Ok((self.dial_config.clone(), name)),
            None => Ok((
                client_config(&self.tls, Some(peer), &self.cfg, &self.transport)?,
                plexus_tls::SERVER_NAME.into(),
            )),
        }
    }

    /// A quinn endpoint on a new UDP socket bound to `bind`, with the configured socket
    /// buffers.
    fn endpoint(
        &self,
        bind: SocketAddr,
        server: Option<quinn::ServerConfig>,
    ) -> Result<quinn::Endpoint, TransportError> {
        let socket = udp_socket(bind, &self.cfg)?;
        Ok(quinn::Endpoint::new(
            quinn::EndpointConfig::default(),
            server,
            socket,
            Arc::new(quinn::TokioRuntime),
        )?)
    }

    /// An endpoint to dial `to` from: a listening one that can reach it (same family;
    /// bound to the unspecified address, or loopback to loopback), else the dial-only one.
    fn endpoint_for(&self, to: &SocketAddr) -> Result<quinn::Endpoint, TransportError> {
        let v6 = to.is_ipv6();
        let reaches = |a: SocketAddr| {
            a.is_ipv6() == v6
                && (a.ip().is_unspecified() || a.ip().is_loopback() == to.ip().is_loopback())
        };
        if let Some(e) = lock(&self.listening)
            .iter()
            .find(|e| e.local_addr().is_ok_and(reaches))
        {
            return Ok(e.clone());
        }
        let mut dialing = lock(&self.dialing);
        let slot = &mut dialing[usize::from(v6)];
        if let Some(e) = slot {
            return Ok(e.clone());
        }
        let bind: SocketAddr = if v6 {
            (Ipv6Addr::UNSPECIFIED, 0).into()
        } else {
            (Ipv4Addr::UNSPECIFIED, 0).into()
        };
        let e = self.endpoint(bind, None)?;
        *slot = Some(e.clone());
        Ok(e)
    }
}

/// A quinn client config around plexus-tls's, checking `expect` if set.
fn client_config(
    tls: &TlsConfig,
    expect: Option<PeerId>,
    cfg: &QuicConfig,
    transport: &Arc<quinn::TransportConfig>,
) -> Result<quinn::ClientConfig, TransportError> {
    let crypto = QuicClientConfig::try_from(tls.client_config(expect))
        .map_err(|e| TransportError::Io(io::Error::other(e)))?;
    let mut cc = quinn::ClientConfig::new(Arc::new(crypto));
    cc.transport_config(transport.clone());
    if !cfg.validation_tokens {
        cc.token_store(Arc::new(quinn::NoneTokenStore));
    }
    Ok(cc)
}

/// A non-blocking UDP socket bound to `bind`, its buffers sized as `cfg` asks (the OS's
/// dual-stack default kept for IPv6).
fn udp_socket(bind: SocketAddr, cfg: &QuicConfig) -> io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol as SockProto, Socket, Type};
    let socket = Socket::new(Domain::for_address(bind), Type::DGRAM, Some(SockProto::UDP))?;
    // A refused size is not fatal: the socket works with what the kernel gives.
    let _ = socket.set_recv_buffer_size(cfg.udp_receive_buffer);
    let _ = socket.set_send_buffer_size(cfg.udp_send_buffer);
    // Linux reports twice the size granted (its bookkeeping overhead); the grant is capped
    // at the sysctl.
    let reported = if cfg!(target_os = "linux") { 2 } else { 1 };
    let rcv = socket.recv_buffer_size()? / reported;
    let snd = socket.send_buffer_size()? / reported;
    if rcv < cfg.udp_receive_buffer || snd < cfg.udp_send_buffer {
        tracing::info!(
            %bind,
            asked_receive = cfg.udp_receive_buffer,
            got_receive = rcv,
            asked_send = cfg.udp_send_buffer,
            got_send = snd,
            "QUIC UDP socket buffers smaller than configured \
             (raise net.core.rmem_max / wmem_max)"
        );
    }
    socket.set_nonblocking(true)?;
    socket.bind(&bind.into())?;
    Ok(socket.into())
}

/// The authenticated peer of an established connection.
fn remote_identity(
    conn: &quinn::Connection,
) -> Result<(PeerId, plexus_identity::PublicKey), TransportError> {
    let certs = conn
        .peer_identity()
        .and_then(|any| {
            any.downcast::<Vec<quinn::rustls::pki_types::CertificateDer<'static>>>()
                .ok()
        })
        .ok_or_else(|| {
            TransportError::Security(SecurityError::Failed {
                blame: Blame::PeerMisbehaved,
                source: "no certificate after the handshake".into(),
            })
        })?;
    // The verifier checked every signature during the handshake.
    let key = plexus_tls::public_key_of_accepted(&certs).map_err(|e| {
        TransportError::Security(SecurityError::Failed {
            blame: Blame::PeerMisbehaved,
            source: Box::new(e),
        })
    })?;
    Ok((key.to_peer_id(), key))
}

fn handshake_error(e: quinn::ConnectionError) -> TransportError {
    use quinn::ConnectionError as E;
    match e {
        E::TimedOut => TransportError::Timeout("the QUIC handshake"),
        // 0x100..=0x1ff: a TLS alert (RFC 9001 §4.8): the certificate or handshake failed.
        E::TransportError(t) if (0x100..=0x1ff).contains(&u64::from(t.code)) => {
            TransportError::Security(SecurityError::Failed {
                blame: Blame::PeerIncompatible,
                source: Box::new(t),
            })
        }
        other => TransportError::Io(io::Error::new(io::ErrorKind::ConnectionAborted, other)),
    }
}

fn ready(
    conn: quinn::Connection,
    local_addr: Multiaddr,
    cfg: &QuicConfig,
) -> Result<TransportConn, TransportError> {
    let (peer, public_key) = match remote_identity(&conn) {
        Ok(x) => x,
        Err(e) => {
            conn.close(0u32.into(), b"bad identity");
            return Err(e);
        }
    };
    let remote_addr = multiaddr(conn.remote_address());
    Ok(TransportConn::Ready(Box::new(ReadyConn {
        peer,
        public_key,
        muxer: Box::new(QuicConn::new(conn, cfg)),
        security: SECURITY,
        muxer_name: MUXER,
        local_addr,
        remote_addr,
    })))
}

impl Transport for QuicTransport {
    fn can_dial(&self, addr: &Multiaddr) -> bool {
        socket_addr(addr).is_some()
    }

    fn dial(&self, addr: Multiaddr) -> BoxFut<'static, Result<TransportConn, TransportError>> {
        let shared = self.shared.clone();
        Box::pin(async move {
            let to = socket_addr(&addr)
                .ok_or_else(|| TransportError::UnsupportedAddr(addr.to_string()))?;
            let expect = addr.peer_id();
            let endpoint = shared.endpoint_for(&to)?;
            // The server name is not sent (no SNI); plexus-tls reads the expected peer from it.
            let (cc, name) = shared.dial_config(expect)?;
            let connecting = endpoint
                .connect_with(cc, to, &name)
                .map_err(|e| TransportError::Io(io::Error::other(e)))?;
            let conn = tokio::time::timeout(shared.cfg.handshake_timeout, connecting)
                .await
                .map_err(|_| TransportError::Timeout("the QUIC handshake"))?
                .map_err(handshake_error)?;
            let local = endpoint
                .local_addr()
                .map(multiaddr)
                .unwrap_or_else(|_| Multiaddr::empty());
            ready(conn, local, &shared.cfg)
        })
    }

    fn listen(
        &self,
        addr: Multiaddr,
    ) -> BoxFut<'static, Result<Box<dyn Listener>, TransportError>> {
        let shared = self.shared.clone();
        Box::pin(async move {
            let sa = socket_addr(&addr)
                .ok_or_else(|| TransportError::UnsupportedAddr(addr.to_string()))?;
            let endpoint = shared.endpoint(sa, Some(shared.server_config()?))?;
            let local = multiaddr(endpoint.local_addr()?);
            lock(&shared.listening).push(endpoint.clone());
            Ok(Box::new(QuicListener {
                shared,
                endpoint,
                local,
            }) as Box<dyn Listener>)
        })
    }
}

struct QuicListener {
    shared: Arc<Shared>,
    endpoint: quinn::Endpoint,
    local: Multiaddr,
}

impl Drop for QuicListener {
    fn drop(&mut self) {
        lock(&self.shared.listening)
            .retain(|e| !e.local_addr().ok().eq(&self.endpoint.local_addr().ok()));
    }
}

impl Listener for QuicListener {
    fn local_addr(&self) -> &Multiaddr {
        &self.local
    }

    fn accept(&mut self) -> BoxFut<'_, Result<Box<dyn PendingInbound>, TransportError>> {
        Box::pin(async move {
            loop {
                let Some(incoming) = self.endpoint.accept().await else {
                    return Err(TransportError::Io(io::Error::new(
                        io::ErrorKind::NotConnected,
                        "the QUIC endpoint closed",
                    )));
                };
                // Under load, make unvalidated addresses prove they receive our packets
                // first: a stateless Retry costs nothing and spoofed sources never return.
                let busy = self.shared.pending_in.load(Ordering::Relaxed)
                    > self.shared.cfg.retry_above_pending;
                if busy && !incoming.remote_address_validated() && incoming.may_retry() {
                    let _ = incoming.retry();
                    continue;
                }
                let remote = multiaddr(incoming.remote_address());
                let local = incoming
                    .local_ip()
                    .and_then(|ip| {
                        self.endpoint
                            .local_addr()
                            .ok()
                            .map(|a| SocketAddr::new(ip, a.port()))
                    })
                    .map(multiaddr)
                    .unwrap_or_else(|| self.local.clone());
                return Ok(Box::new(QuicPending {
                    shared: self.shared.clone(),
                    incoming,
                    remote,
                    local,
                }) as Box<dyn PendingInbound>);
            }
        })
    }
}

/// A connection attempt: quinn's `Incoming`, before any TLS work.
struct QuicPending {
    shared: Arc<Shared>,
    incoming: quinn::Incoming,
    remote: Multiaddr,
    local: Multiaddr,
}

/// Counts a running inbound handshake while alive.
struct PendingGuard(Arc<AtomicUsize>);

impl Drop for PendingGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl PendingInbound for QuicPending {
    fn remote_addr(&self) -> &Multiaddr {
        &self.remote
    }

    fn local_addr(&self) -> &Multiaddr {
        &self.local
    }

    fn finish(self: Box<Self>) -> BoxFut<'static, Result<TransportConn, TransportError>> {
        let QuicPending {
            shared,
            incoming,
            local,
            ..
        } = *self;
        Box::pin(async move {
            shared.pending_in.fetch_add(1, Ordering::Relaxed);
            let _guard = PendingGuard(shared.pending_in.clone());
            let connecting = incoming.accept().map_err(handshake_error)?;
            let conn = tokio::time::timeout(shared.cfg.handshake_timeout, connecting)
                .await
                .map_err(|_| TransportError::Timeout("the QUIC handshake"))?
                .map_err(handshake_error)?;
            ready(conn, local, &shared.cfg)
        })
    }

    fn refuse(self: Box<Self>) {
        // A stateless CONNECTION_REFUSED: no TLS work, no connection state.
        self.incoming.refuse();
    }
}

/// A QUIC connection as a [`MuxedConn`].
struct QuicConn {
    conn: quinn::Connection,
    /// Stream handles alive, both directions.
    open: Arc<AtomicUsize>,
    /// Inbound stream handles alive.
    inbound: Arc<AtomicUsize>,
    /// The bidirectional stream credit granted to the remote now (see
    /// [`QuicConfig::initial_concurrent_bidi_streams`]); only ever raised, under this lock so
    /// that two raises cannot reach quinn out of order.
    bidi_credit: Mutex<u32>,
    max_bidi_credit: u32,
    /// [`QuicConfig::close_linger`].
    close_linger: Duration,
}

impl QuicConn {
    fn new(conn: quinn::Connection, cfg: &QuicConfig) -> QuicConn {
        QuicConn {
            conn,
            open: Arc::new(AtomicUsize::new(0)),
            inbound: Arc::new(AtomicUsize::new(0)),
            bidi_credit: Mutex::new(initial_bidi_credit(cfg)),
            max_bidi_credit: cfg.max_concurrent_bidi_streams,
            close_linger: cfg.close_linger,
        }
    }

    fn stream(
        &self,
        send: quinn::SendStream,
        recv: quinn::RecvStream,
        inbound: Option<OpenGuard>,
    ) -> BoxStream {
        self.open.fetch_add(1, Ordering::Relaxed);
        Box::new(QuicStream {
            send,
            recv,
            finished: false,
            read_eof: false,
            _open: OpenGuard(self.open.clone()),
            _inbound: inbound,
        })
    }

    /// Count an accepted inbound stream; when the inbound streams held reach half of the
    /// credit, double the credit (up to the maximum) before the remote runs out.
    fn accepted(&self) -> OpenGuard {
        let held = self.inbound.fetch_add(1, Ordering::Relaxed) + 1;
        let mut credit = lock(&self.bidi_credit);
        if *credit < self.max_bidi_credit && held.saturating_mul(2) >= *credit as usize {
            let raised = credit.saturating_mul(2).min(self.max_bidi_credit);
            self.conn.set_max_concurrent_bi_streams(raised.into());
            *credit = raised;
        }
        OpenGuard(self.inbound.clone())
    }
}

fn mux_error(e: quinn::ConnectionError) -> MuxError {
    use quinn::ConnectionError as E;
    match e {
        E::LocallyClosed | E::ApplicationClosed(_) | E::ConnectionClosed(_) | E::Reset => {
            MuxError::Closed
        }
        E::TimedOut => MuxError::Failed {
            blame: Blame::Local,
            source: "idle timeout".into(),
        },
        other => MuxError::Failed {
            blame: Blame::PeerMisbehaved,
            source: Box::new(other),
        },
    }
}

impl MuxedConn for QuicConn {
    fn open(&self) -> BoxFut<'_, Result<BoxStream, MuxError>> {
        Box::pin(async move {
            let (send, recv) = self.conn.open_bi().await.map_err(mux_error)?;
            Ok(self.stream(send, recv, None))
        })
    }

    fn accept(&self) -> BoxFut<'_, Result<BoxStream, MuxError>> {
        Box::pin(async move {
            let (send, recv) = self.conn.accept_bi().await.map_err(mux_error)?;
            let inbound = self.accepted();
            Ok(self.stream(send, recv, Some(inbound)))
        })
    }

    fn close(&self) -> BoxFut<'_, ()> {
        Box::pin(async move {
            if self.conn.close_reason().is_some() {
                // Closed already (by the peer, a timeout or an earlier close).
                return;
            }
            // Once closed, the connection sends nothing but its close packet: the next
            // datagram it hands to the socket is that.
            let sent = self.conn.stats().udp_tx.datagrams;
            self.conn.close(0u32.into(), b"");
            let deadline = tokio::time::Instant::now() + self.close_linger;
            let mut polls = 0u32;
            while self.conn.stats().udp_tx.datagrams == sent
                && tokio::time::Instant::now() < deadline
            {
                // The connection's driver task sends it: let it run, cheaply at first.
                if polls < 32 {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                polls += 1;
            }
        })
    }

    fn is_closed(&self) -> bool {
        self.conn.close_reason().is_some()
    }

    fn stats(&self) -> MuxStats {
        MuxStats {
            open_streams: self.open.load(Ordering::Relaxed),
            ..MuxStats::default()
        }
    }
}

impl Drop for QuicConn {
    fn drop(&mut self) {
        self.conn.close(0u32.into(), b"");
    }
}

struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A bidirectional QUIC stream as a [`MuxedStream`]. Dropped without shutdown, it follows the
/// rule of plexus's yamux and mplex streams: after the remote's end of stream was read it is
/// closed gracefully, otherwise it is reset (so a responder that gives up mid-response is not
/// mistaken for a complete answer).
struct QuicStream {
    send: quinn::SendStream,
    recv: quinn::RecvStream,
    /// We finished our sending half.
    finished: bool,
    /// We read the remote's end of stream.
    read_eof: bool,
    /// Counts the stream in [`MuxStats::open_streams`] while alive.
    _open: OpenGuard,
    /// Counts an inbound stream towards raising the stream credit while alive.
    _inbound: Option<OpenGuard>,
}

impl AsyncRead for QuicStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.recv).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() == before && buf.remaining() > 0 {
            self.read_eof = true;
        }
        r
    }
}

impl AsyncWrite for QuicStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(Pin::new(&mut self.send), cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(Pin::new(&mut self.send), cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = AsyncWrite::poll_shutdown(Pin::new(&mut self.send), cx);
        if matches!(r, Poll::Ready(Ok(()))) {
            self.finished = true;
        }
        r
    }
}

impl Drop for QuicStream {
    fn drop(&mut self) {
        if !self.finished && !self.read_eof {
            self.reset();
        }
        // Otherwise quinn finishes the sending half (if we did not) and stops the
        // receiving half.
    }
}

impl MuxedStream for QuicStream {
    fn reset(&mut self) {
        let _ = self.send.reset(0u32.into());
        let _ = self.recv.stop(0u32.into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    /// The kernel's cap on a socket buffer (`/proc/sys/net/core/{r,w}mem_max`), if readable.
    fn sysctl(name: &str) -> Option<usize> {
        std::fs::read_to_string(format!("/proc/sys/net/core/{name}"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn udp_sockets_get_the_configured_buffers_up_to_the_kernel_cap() {
        let Some((rmax, wmax)) = sysctl("rmem_max").zip(sysctl("wmem_max")) else {
            eprintln!("no /proc/sys/net/core: nothing to compare with");
            return;
        };
        let bind: SocketAddr = (Ipv4Addr::LOCALHOST, 0).into();
        let default_cfg = QuicConfig::default();
        let socket = socket2::Socket::from(udp_socket(bind, &default_cfg).unwrap());
        // Linux reports twice the granted size.
        assert!(socket.recv_buffer_size().unwrap() / 2 >= default_cfg.udp_receive_buffer.min(rmax));
        assert!(socket.send_buffer_size().unwrap() / 2 >= default_cfg.udp_send_buffer.min(wmax));

        // A smaller request is a smaller buffer: the setting is what decides.
        let small = QuicConfig {
            udp_receive_buffer: 64 << 10,
            udp_send_buffer: 64 << 10,
            ..QuicConfig::default()
        };
        let socket = socket2::Socket::from(udp_socket(bind, &small).unwrap());
        assert_eq!(socket.recv_buffer_size().unwrap(), 2 * (64 << 10));
        assert_eq!(socket.send_buffer_size().unwrap(), 2 * (64 << 10));
        assert!(socket.nonblocking().unwrap());
    }
}
