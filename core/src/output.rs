//! What comes out of a client: socket actions for the driver, events for the application.

use std::net::SocketAddr;

use bytes::Bytes;

use crate::report::{CloseReport, TlsInfo};
use crate::{AttemptId, ConnectOptions};

/// Something the client wants done, from [`Client::poll_output`](crate::Client::poll_output).
///
/// The driver performs the socket actions and reports back with an [`Input`](crate::Input);
/// it passes [`Output::Event`]s on to the application. Perform them in the order they come.
///
/// Not `#[non_exhaustive]`: a driver matches every variant, so that a socket action added in
/// a later version is a compile error in the driver, not an action silently skipped.
#[derive(Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
pub enum Output {
    /// Resolve `host` to addresses and answer with
    /// [`Input::Resolved`](crate::Input::Resolved): the addresses, or why there are none.
    Resolve {
        /// The host name to resolve.
        host: String,
        /// The port to put in the resolved addresses.
        port: u16,
    },
    /// Open a socket with these options and start a non-blocking connect to `addr`; answer
    /// with [`Input::Connected`](crate::Input::Connected) or
    /// [`Input::ConnectFailed`](crate::Input::ConnectFailed), naming the attempt. Several
    /// attempts may be under way at once (Happy Eyeballs); each socket lives until its
    /// [`Output::Cancel`], or, for the one that wins, until [`Output::Close`] or
    /// [`Output::Reset`].
    Connect {
        /// Which attempt this is.
        attempt: AttemptId,
        /// Where to connect.
        addr: SocketAddr,
        /// The socket options to set before connecting. (Boxed: an `Output` is kept small,
        /// since every client holds a queue of them for its life.)
        options: Box<ConnectOptions>,
    },
    /// Close this attempt's socket: it lost the race, failed, or ran out of time.
    Cancel(AttemptId),
    /// Write these bytes after every earlier transmit, and report progress with
    /// [`Input::Written`](crate::Input::Written). On a short write keep the rest
    /// (`Bytes::split_to` copies nothing) and write it when the socket is writable again.
    Transmit(Bytes),
    /// Half-close: shut the write side of the socket down (send FIN). Every transmit has
    /// already been reported written when this comes.
    ShutdownWrite,
    /// Ask the connection's socket how much of what was written the peer's TCP has not
    /// acknowledged yet, and answer at once, before waiting, with
    /// [`Input::Unacknowledged`](crate::Input::Unacknowledged) (Linux: the `SIOCOUTQ`
    /// ioctl; [`Unacknowledged::Unknown`](crate::Unacknowledged::Unknown) where the platform
    /// cannot tell). It comes before every close of a connection that wrote something, while
    /// a finished connection waits for the acknowledgement of its FIN, and every few hundred
    /// kilobytes written: never once per write.
    QueryUnacknowledged,
    /// Close the connection's socket (the attempt that won) and forget any transmit not yet
    /// written.
    Close,
    /// Close the connection's socket abortively (`SO_LINGER` 0), so that the peer gets a
    /// reset and knows the stream was cut, not finished; forget any transmit not yet written.
    /// This is how [`Client::abort`](crate::Client::abort) ends a connection.
    Reset,
    /// Something for the application: one of Kamaelia's outboxes.
    #[doc(alias = "outbox")]
    Event(Event),
}

impl Output {
    /// The output's name in traces and messages: its variant's name, or the event's
    /// ([`Event::name`]).
    pub fn name(&self) -> &'static str {
        match self {
            Output::Event(event) => event.name(),
            other => other.into(),
        }
    }
}

/// Something for the application: Kamaelia's `outbox`, `sslready` and `signal` boxes.
#[derive(Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
#[non_exhaustive]
pub enum Event {
    /// The connection is up, to this address.
    Connected(SocketAddr),
    /// Bytes received from the peer (decrypted, under TLS).
    #[doc(alias = "outbox")]
    Data(Bytes),
    /// The TLS handshake finished; what was negotiated.
    #[doc(alias = "sslready")]
    TlsEstablished(TlsInfo),
    /// The peer will send nothing more (its FIN, or its TLS `close_notify`). What happens
    /// next depends on [`Config::on_peer_eof`](crate::Config::on_peer_eof). (Kamaelia's
    /// ConnectedSocketAdapter said `socketShutdown` and tore everything down.)
    #[doc(alias = "socketShutdown")]
    PeerClosed,
    /// After a [`InvalidInput::QueueFull`](crate::InvalidInput::QueueFull) refusal, the
    /// undelivered bytes dropped to [`Config::send_low_watermark`](crate::Config::send_low_watermark):
    /// send again.
    SendReady,
    /// A reconnecting [`Client`](crate::Client#reconnecting)'s connection is up again: generation `generation`
    /// (1 for the first reconnect), to `addr`. Redo any preamble (a greeting, a STARTTLS
    /// dialogue, a login) here. The first connection is [`Event::Connected`].
    Reconnected {
        /// Which connection of the session this is.
        generation: u32,
        /// The address connected to.
        addr: SocketAddr,
        /// With [`ReconnectPolicy::replay_unacknowledged`](crate::ReconnectPolicy::replay_unacknowledged):
        /// where this connection's stream begins, as an offset into every byte the
        /// application sent: the first byte not acknowledged when the last connection was
        /// lost. Answers on this connection are to the requests from there on, some of which
        /// the application may have acknowledged since (the answers of the lost connection
        /// reach it after the session has moved on). With a
        /// [`Preamble::Dialogue`](crate::Preamble::Dialogue), the stream begins instead at
        /// the first byte not acknowledged when the application calls
        /// [`Client::preamble_done`](crate::Client::preamble_done): by then it has taken
        /// every answer of the lost connection, so the next answer is to its first request
        /// not acknowledged. Zero without that policy.
        replays_from: u64,
    },
    /// A reconnecting [`Client`](crate::Client#reconnecting)'s connection `generation` ended, with its own report;
    /// [`Event::Reconnecting`] follows (the session's own end is [`Event::Closed`]).
    Disconnected {
        /// Which connection ended.
        generation: u32,
        /// That connection's report.
        report: Box<CloseReport>,
    },
    /// A reconnecting [`Client`](crate::Client#reconnecting) will start connection `generation` after `delay`: the
    /// `attempt`-th reconnect since the last stable connection (0 for the first).
    Reconnecting {
        /// The connection about to be made.
        generation: u32,
        /// Reconnects since the last stable connection, before this one.
        attempt: u32,
        /// The wait chosen (the backoff, jittered).
        delay: std::time::Duration,
    },
    /// Bytes accepted by [`Client::send`](crate::Client::send) that never reached the socket,
    /// handed back when the connection ends, in order, just before [`Event::Closed`].
    /// Together they are exactly [`CloseReport::bytes_undelivered`]. They are the very
    /// `Bytes` that were sent, or slices of them; sends smaller than
    /// [`Config::coalesce_below`](crate::Config::coalesce_below) come back copied together.
    Undelivered(Bytes),
    /// The end: the last output of every client, exactly once, with the byte accounting and
    /// how it ended. (Boxed: it comes once, and keeps every other output small.)
    #[doc(alias = "signal")]
    Closed(Box<CloseReport>),
}

impl Event {
    /// The event's name in traces and messages: its variant's name.
    pub fn name(&self) -> &'static str {
        self.into()
    }
}
