//! mplex-specific configuration. The limits every muxer shares (stream cap,
//! accept backlog, rapid-reset cap) live in [`plexus_core::MuxLimits`].

use std::time::Duration;

use crate::frame::MAX_FRAME_SIZE;

/// mplex configuration. Every field is a bound or a timer with a safe default.
///
/// mplex has no flow control: a sender may push data faster than the
/// application reads it. The receive-side bounds below are therefore the only
/// thing between a fast (or hostile) sender and our memory. When a data frame
/// does not fit them, input **blocks** at that frame (the driver stops reading
/// the transport, so TCP pushes back on the sender) for up to
/// [`Config::max_block`], waiting for the application to read; if it does not,
/// the stream at fault is **reset** (never the connection): the remote sees a
/// reset, the local reader first gets every byte already buffered and then an
/// error naming the reason ([`crate::ResetReason`]). This is go-mplex's
/// behaviour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Largest frame body we accept. A larger length prefix fails the
    /// connection (`FrameError::TooLarge`, peer misbehaved) before any of the
    /// body is read. Default 1 MiB, the spec's cap.
    pub max_frame_size: u32,
    /// Largest data frame body we send; larger writes are split, and it is the
    /// round-robin slice between streams. Default 64 KiB: one frame
    /// fits a Noise frame's worth of data, keeps the prefix overhead below
    /// 0.02 %, and bounds how long one bulk stream holds the wire (0.5 ms at
    /// 1 Gbit/s). go-mplex sends up to 1 MiB, rust-libp2p 8 KiB; every
    /// implementation accepts up to 1 MiB. Clamped to `1..=1 MiB`.
    pub max_send_frame: u32,
    /// Most bytes received on one stream and not yet read by the application.
    /// A data frame that would take the stream beyond it (checked from the
    /// frame's length prefix, before its body is buffered) blocks input for up
    /// to [`Config::max_block`], then resets the stream
    /// (`ResetReason::BufferOverflow`). Default 4 MiB: four times what the
    /// driver reads from the socket in one turn before it yields
    /// (16 × [`Config::read_chunk_size`]), so a reader that is scheduled at
    /// all rarely makes input block. Should be at least `max_frame_size`: a
    /// frame longer than the cap resets its stream at once.
    pub max_buffer_per_stream: usize,
    /// Most bytes received and not yet read over all streams of the
    /// connection (streams waiting in the accept backlog included). A data
    /// frame that would take the total beyond it blocks input for up to
    /// [`Config::max_block`], then resets the stream it is for
    /// (`ResetReason::ConnectionBufferFull`). Default 16 MiB: four streams at
    /// their cap; a beacon node has at most a few bulk streams per peer at
    /// once (yamux allows 256 KiB per stream and auto-tunes up to 64 MiB per
    /// connection).
    pub max_buffer_per_connection: usize,
    /// Longest time input stays blocked on a data frame that does not fit its
    /// stream's receive buffer (or the connection's) before that stream is
    /// reset and input resumes. While blocked the driver reads nothing from
    /// the transport, so **every** stream of the connection waits for the
    /// slow reader (mplex has one ordered byte stream and no per-stream flow
    /// control); writing and local operations go on. Default 5 s, go-mplex's
    /// `ReceiveTimeout` (go-mplex blocks its whole read loop up to 5 s per
    /// message, then resets the stream): long enough for a reader stalled by
    /// GC, disk or a busy runtime to catch up on a bulk transfer (a
    /// BlocksByRange response), short enough that a stream nobody reads
    /// cannot hold the connection for long. `Duration::ZERO` resets at once
    /// without blocking (never stalls other streams; bulk transfers then
    /// need a reader that keeps up).
    pub max_block: Duration,
    /// Most bytes one stream may have queued for sending (written by the
    /// application, not yet handed to the transport). Default 256 KiB.
    /// `write` accepts no more than this; the application waits for
    /// `Writable`. Also how much a [`crate::Stream`]'s `poll_write` accepts in
    /// a row before it yields once to the runtime (mplex has no flow control
    /// to pace a writer whose task also reads).
    pub max_stream_send_buffer: usize,
    /// Most resets we owe the remote and have not yet sent (refused streams,
    /// overflowing streams). At this bound the core reads no further frame
    /// until some went out (back-pressure: the driver stops reading the
    /// socket), so a burst from a peer that reads is answered in full.
    /// Default 1024 (at most 12 KiB of frames).
    pub max_pending_control: usize,
    /// How long input may stay paused on a full control queue (the remote
    /// reads none of what it made us owe) before the connection fails
    /// (`ConnError::RemoteNotReading`, peer misbehaved). Default 10 s.
    pub control_stall_timeout: Duration,
    /// After a local close, the longest time spent flushing queued stream
    /// data before the connection is dropped. Default 5 s.
    pub close_timeout: Duration,
    /// Driver only: most bytes the driver gathers for one batch of writes to
    /// the transport. Default 256 KiB.
    pub write_buffer_size: usize,
    /// Driver only: how many bytes the driver asks the transport for per read.
    /// Default 64 KiB (one Noise frame). The read buffer never holds more than
    /// this plus one partial frame prefix (19 bytes).
    pub read_chunk_size: usize,
    /// Driver only: a stream's `flush` returns once at most this many of the bytes
    /// written before it are still in the muxer, not yet written to the transport (see
    /// `plexus_mux::DriverConfig::flush_low_water`). Default 16 KiB.
    pub flush_low_water: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_frame_size: MAX_FRAME_SIZE,
            max_send_frame: 64 * 1024,
            max_buffer_per_stream: 4 * 1024 * 1024,
            max_buffer_per_connection: 16 * 1024 * 1024,
            max_stream_send_buffer: 256 * 1024,
            max_pending_control: 1024,
            control_stall_timeout: Duration::from_secs(10),
            max_block: Duration::from_secs(5),
            close_timeout: Duration::from_secs(5),
            write_buffer_size: 256 * 1024,
            read_chunk_size: 64 * 1024,
            flush_low_water: 16 * 1024,
        }
    }
}
