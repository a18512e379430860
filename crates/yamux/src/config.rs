//! yamux-specific configuration. The limits every muxer shares (stream cap,
//! backlogs, rapid-reset cap) live in [`plexus_core::MuxLimits`].

use std::time::Duration;

/// The window every stream starts with, in each direction (fixed by the spec:
/// 256 KiB).
pub const INITIAL_WINDOW: u32 = 256 * 1024;

/// yamux configuration. Every field is a bound or a timer with a safe default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest receive window a stream may auto-tune to. Default 16 MiB (as
    /// go-yamux): enough for ~1 Gbit/s at 100 ms RTT on one stream.
    /// Values below [`INITIAL_WINDOW`] are treated as [`INITIAL_WINDOW`]
    /// (which disables auto-tuning).
    pub max_window: u32,
    /// Auto-tuning grows a stream's window only while the sum of the receive
    /// windows of all streams of the connection stays at or below this.
    /// Default 64 MiB. Every stream always keeps its 256 KiB initial window, so
    /// the worst-case receive buffering of one connection is
    /// `max(max_streams × 256 KiB, max_connection_window)`.
    pub max_connection_window: u64,
    /// Largest data frame body we send. Default 64 KiB: go-yamux and
    /// js-libp2p send at most 64 KiB per frame and accept larger ones only up
    /// to the window, rust-yamux rejects frames above 1 MiB; 64 KiB is accepted
    /// by all of them, keeps the 12-byte header overhead below 0.02 %, and
    /// bounds how long one stream holds the wire before the round robin moves
    /// on. Clamped to at least 1 byte.
    pub max_frame_size: u32,
    /// Most bytes one stream may have queued for sending (written by the
    /// application, not yet handed to the transport). Default 256 KiB (one
    /// initial window, so a new stream can put its whole window in one write).
    /// `write` accepts no more than this; the application waits for
    /// `Writable`.
    pub max_stream_send_buffer: usize,
    /// Interval between keep-alive pings (which also measure the RTT used by
    /// window auto-tuning). `None` disables keep-alive; one RTT probe is still
    /// sent when the connection starts. Default 30 s (as go-yamux).
    pub keepalive_interval: Option<Duration>,
    /// A ping not answered within this time fails the connection
    /// (`ConnError::PingTimeout`). Default 20 s: generous against a pong
    /// queued behind a full window of data on a slow link.
    pub ping_timeout: Duration,
    /// Most control frames the remote made us owe and we have not yet sent:
    /// answers to its pings plus stream resets. At this bound the core reads
    /// no further frame until some went out (back-pressure: the driver stops
    /// reading the socket), so a burst from a peer that reads is answered in
    /// full. Default 1024 (12 KiB of frames).
    pub max_pending_control: usize,
    /// How long input may stay blocked on a full control queue (the remote
    /// reads none of what it made us owe) before the connection fails
    /// (`ConnError::RemoteNotReading`, peer misbehaved). Default 10 s.
    pub control_stall_timeout: Duration,
    /// After a local close or a connection error, the longest time spent
    /// flushing the go-away (and, for a polite close, queued stream data)
    /// before the connection is dropped. Default 5 s.
    pub close_timeout: Duration,
    /// Driver only: most bytes the driver gathers for one batch of writes to
    /// the transport. Default 256 KiB.
    pub write_buffer_size: usize,
    /// Driver only: how many bytes the driver asks the transport for per read.
    /// Default 64 KiB (one Noise frame). The read buffer never holds more than
    /// this plus one partial frame header.
    pub read_chunk_size: usize,
    /// Driver only: a stream's `flush` returns once at most this many of the bytes
    /// written before it are still in the muxer, not yet written to the transport (see
    /// `plexus_mux::DriverConfig::flush_low_water`). Default 16 KiB.
    pub flush_low_water: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_window: 16 * 1024 * 1024,
            max_connection_window: 64 * 1024 * 1024,
            max_frame_size: 64 * 1024,
            max_stream_send_buffer: 256 * 1024,
            keepalive_interval: Some(Duration::from_secs(30)),
            ping_timeout: Duration::from_secs(20),
            max_pending_control: 1024,
            control_stall_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            write_buffer_size: 256 * 1024,
            read_chunk_size: 64 * 1024,
            flush_low_water: 16 * 1024,
        }
    }
}
