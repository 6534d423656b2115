//! Where a client is in its lifecycle: the public [`Phase`] and the internal state it summarises.

use std::fmt;
use std::net::SocketAddr;

use crate::race::Race;
use crate::{AlertSent, Ending, Error};

/// The lifecycle phase of a client, from [`Client::phase`](crate::Client::phase).
///
/// `Delay → Resolving → Connecting → Connected ⇄ TlsHandshaking → Draining → Closed`, with
/// every phase able to jump to `Closed` on an error or an abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr)]
#[non_exhaustive]
pub enum Phase {
    /// Waiting for [`Config::delay`](crate::Config::delay) to pass.
    Delay,
    /// Waiting for the driver to resolve the host name.
    Resolving,
    /// A connect attempt is under way.
    Connecting,
    /// Connected; data flows.
    Connected,
    /// Connected, and the TLS handshake is under way.
    TlsHandshaking,
    /// Shutting down: flushing, half-closed, reading until the peer's EOF, waiting for the
    /// peer to acknowledge our FIN, or, with the end decided, asking what the peer
    /// acknowledged before saying how it ended.
    Draining,
    /// Closed; [`Event::Closed`](crate::Event::Closed) has been emitted.
    Closed,
}

impl Phase {
    /// The phase's name in traces and tables: its variant's name.
    pub fn name(&self) -> &'static str {
        self.into()
    }

    /// Every phase, in lifecycle order.
    pub const ALL: [Phase; 7] = [
        Phase::Delay,
        Phase::Resolving,
        Phase::Connecting,
        Phase::Connected,
        Phase::TlsHandshaking,
        Phase::Draining,
        Phase::Closed,
    ];
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::Delay => "waiting for the start delay",
            Phase::Resolving => "resolving",
            Phase::Connecting => "connecting",
            Phase::Connected => "connected",
            Phase::TlsHandshaking => "in the TLS handshake",
            Phase::Draining => "shutting down",
            Phase::Closed => "closed",
        })
    }
}

/// The socket-level state. Data that only makes sense in one state lives in its variant.
#[derive(Debug)]
pub(crate) enum State {
    Delay,
    /// Resolving and racing connect attempts (RFC 8305).
    Establishing(Box<Race>),
    Open(Open),
    /// The end is decided; the socket is still open so that the driver can say what the
    /// peer acknowledged, which the close report needs.
    Closing(Box<Closing>),
    Closed,
}

/// A connected socket.
#[derive(Debug)]
pub(crate) struct Open {
    pub(crate) peer: SocketAddr,
    /// The peer's stream has ended (FIN, or TLS `close_notify`).
    pub(crate) peer_closed: bool,
    /// The TCP read side saw EOF.
    pub(crate) tcp_eof: bool,
    /// We sent our FIN.
    pub(crate) fin_sent: bool,
    /// The peer's stream ended after our FIN was handed out: its end answers ours.
    pub(crate) peer_closed_after_fin: bool,
    /// The peer's TCP acknowledged our FIN, and so every byte before it.
    pub(crate) fin_acked: bool,
}

impl Open {
    pub(crate) fn new(peer: SocketAddr) -> Self {
        Self {
            peer,
            peer_closed: false,
            tcp_eof: false,
            fin_sent: false,
            peer_closed_after_fin: false,
            fin_acked: false,
        }
    }
}

/// A connection whose end is decided, waiting for the driver's answer about what the peer
/// acknowledged, or, first, for a fatal TLS alert to be written.
#[derive(Debug)]
pub(crate) struct Closing {
    pub(crate) open: Open,
    pub(crate) result: Result<Ending, Error>,
    pub(crate) waiting_for: Wait,
}

/// What a closing connection waits for.
#[derive(Debug)]
pub(crate) enum Wait {
    /// The failed TLS session's last bytes, with the fatal alert among them if any, to be
    /// written: the question about what the peer acknowledged comes after.
    LastBytes(Option<AlertSent>),
    /// The driver's answer about what the peer acknowledged.
    Answer,
}
