//! [`HostLimits`]: every bound of the host in one config, and [`HandlerOpts`],
//! the per-protocol bounds of an inbound handler.

use std::time::Duration;

use plexus_core::{Limits, MuxLimits};

/// Per-protocol bounds of an inbound handler registered with
/// [`Host::handle`](crate::Host::handle).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HandlerOpts {
    /// Negotiated inbound streams waiting in [`Incoming`](crate::Incoming)
    /// for the application to take them. A stream arriving while the backlog
    /// is full is reset. Default 32. A value of 0 is treated as 1.
    pub backlog: usize,
    /// Inbound streams of this protocol that one peer may have open at once
    /// (from negotiation until the application drops the stream). The next
    /// one is reset. Default 8.
    pub max_inbound_per_peer: usize,
}

impl Default for HandlerOpts {
    fn default() -> Self {
        HandlerOpts {
            backlog: 32,
            max_inbound_per_peer: 8,
        }
    }
}

/// Every bound of the host, with safe defaults. `docs/host.md` lists each
/// default and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostLimits {
    /// Inbound connections past the `accept` checkpoint whose handshake
    /// (multistream, Noise, muxer) has not finished. Beyond it new inbound
    /// connections are refused at accept (reason `pending_cap`), before any
    /// byte is read. Default 64.
    ///
    /// When the table is full a newcomer (within its per-source caps) does
    /// not get refused while some pending connection has not completed its
    /// security handshake: the oldest such connection, from the source
    /// holding the most slots, is evicted (closed) to make room. Only when
    /// every pending connection completed Noise is the newcomer refused
    /// (`pending_cap`). A connection that completed Noise is never evicted.
    pub max_pending_inbound: usize,
    /// Pending inbound handshakes from one remote IP. The next one from that
    /// IP is refused at accept (reason `pending_ip_cap`) before any byte is
    /// read. One IP cannot take the whole pending table; honest nodes behind
    /// one NAT rarely handshake more than a few at once. Default 8.
    pub max_pending_inbound_per_ip: usize,
    /// Pending inbound handshakes from one IPv4 /24 (IPv4-mapped IPv6
    /// addresses count as IPv4). Beyond it: refused at accept
    /// (`pending_subnet_cap`). Default 16.
    pub max_pending_inbound_per_ipv4_24: usize,
    /// Pending inbound handshakes from one IPv6 /64 (what one host or one
    /// customer is usually given). Beyond it: refused at accept
    /// (`pending_subnet_cap`). Default 16.
    pub max_pending_inbound_per_ipv6_64: usize,
    /// Outbound dial attempts (TCP connect plus handshake) running at once.
    /// Further attempts wait for a slot (within their dial timeout).
    /// Default 32.
    pub max_pending_outbound: usize,
    /// Established inbound connections: the peer cap. At the cap new inbound
    /// connections are refused at accept (reason `peer_cap`) before any Noise
    /// work; established peers stay connected. Default 160.
    pub max_inbound_connections: usize,
    /// Established outbound connections. At the cap `connect` fails with
    /// [`DialError::LimitReached`](crate::DialError::LimitReached) (refusal
    /// reason `outbound_cap`). Default 80.
    pub max_outbound_connections: usize,
    /// Connections to one peer. With 1 (the default) a second connection is
    /// folded into the first by the simultaneous-dial rule (see
    /// `docs/host.md`); with more, connections beyond the cap are closed.
    /// 0 is treated as 1.
    pub max_connections_per_peer: usize,
    /// Per-connection muxer limits (streams per connection, backlogs). Used by
    /// the default muxers (yamux and mplex); muxers given in
    /// [`HostConfig::muxers`](crate::HostConfig::muxers) carry their own.
    pub mux: MuxLimits,
    /// The defaults a protocol handler should use (`HandlerOpts::default()`
    /// equals the default of this field). Read it with
    /// [`Host::limits`](crate::Host::limits).
    pub default_handler: HandlerOpts,
    /// Longest multistream negotiation of a connection (security protocol,
    /// muxer). Default 10 s.
    pub negotiation_timeout: Duration,
    /// Longest security (Noise) handshake. Default 10 s.
    pub security_timeout: Duration,
    /// An inbound connection that has not delivered a complete, valid
    /// multistream header this long after the upgrade started is closed (a
    /// real dialer sends it with its first write). Default 2 s.
    pub inbound_header_timeout: Duration,
    /// Longest wait for the remote's next security-handshake message, from
    /// our last handshake write (or the handshake's start): a Noise handshake
    /// stalling between messages is closed. Default 5 s.
    pub handshake_message_timeout: Duration,
    /// Longest multistream negotiation of a stream, inbound (the listener
    /// side) and outbound (`new_stream` with several protocols; opening the
    /// stream counts too). Default 10 s.
    pub stream_negotiation_timeout: Duration,
    /// Inbound streams of one connection negotiating their protocol at once.
    /// A stream arriving while all slots are busy is reset. Default 32.
    pub max_negotiating_streams: usize,
    /// Longest time one dial attempt (one address: waiting for an outbound
    /// slot, TCP connect and the whole upgrade) may take. Default 15 s.
    pub dial_timeout: Duration,
    /// Backoff after the first failed dial of an address; it doubles with
    /// each consecutive failure. `Duration::ZERO` disables backoff.
    /// Default 5 s.
    pub dial_backoff_initial: Duration,
    /// Longest backoff. Default 10 min.
    pub dial_backoff_max: Duration,
    /// Addresses remembered in the backoff table. When full, expired entries
    /// are pruned, then the entry expiring soonest is dropped. Default 1024.
    pub max_backoff_entries: usize,
    /// Entries in each ban table (peer ids, IPs, and the last-seen IP per
    /// peer). When full, expired bans are pruned, then the ban expiring
    /// soonest is dropped. Default 4096.
    pub max_ban_entries: usize,
    /// Addresses kept per peer in the address book (and candidates tried per
    /// dial). Oldest are dropped first. Default 16.
    pub max_addrs_per_peer: usize,
    /// Peers in the address book. When full, a peer that is not connected is
    /// dropped. Default 1024.
    pub max_address_book_peers: usize,
    /// Capacity of the event broadcast. A receiver that falls further behind
    /// misses the oldest events (`RecvError::Lagged`). Default 256.
    pub event_capacity: usize,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits {
            max_pending_inbound: 64,
            max_pending_inbound_per_ip: 8,
            max_pending_inbound_per_ipv4_24: 16,
            max_pending_inbound_per_ipv6_64: 16,
            max_pending_outbound: 32,
            max_inbound_connections: 160,
            max_outbound_connections: 80,
            max_connections_per_peer: 1,
            mux: MuxLimits::default(),
            default_handler: HandlerOpts::default(),
            negotiation_timeout: Duration::from_secs(10),
            security_timeout: Duration::from_secs(10),
            inbound_header_timeout: Duration::from_secs(2),
            handshake_message_timeout: Duration::from_secs(5),
            stream_negotiation_timeout: Duration::from_secs(10),
            max_negotiating_streams: 32,
            dial_timeout: Duration::from_secs(15),
            dial_backoff_initial: Duration::from_secs(5),
            dial_backoff_max: Duration::from_secs(600),
            max_backoff_entries: 1024,
            max_ban_entries: 4096,
            max_addrs_per_peer: 16,
            max_address_book_peers: 1024,
            event_capacity: 256,
        }
    }
}

impl HostLimits {
    /// The connection-establishment [`Limits`] handed to the upgrader.
    pub fn upgrade_limits(&self) -> Limits {
        Limits {
            negotiation_timeout: self.negotiation_timeout,
            security_timeout: self.security_timeout,
            inbound_header_timeout: self.inbound_header_timeout,
            handshake_message_timeout: self.handshake_message_timeout,
        }
    }
}
