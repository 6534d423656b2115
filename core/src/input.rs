//! What goes into a client from the driver: what the socket, the resolver and the clock did.

use std::io::ErrorKind;
use std::net::SocketAddr;

use crate::{AttemptId, Family};

/// Something the driver observed: what the socket, the resolver and the clock did.
///
/// Feed inputs with [`Client::handle_input`](crate::Client::handle_input), then drain
/// [`Client::poll_output`](crate::Client::poll_output). The application's requests
/// (Kamaelia's `inbox`, `makessl` and `control` boxes) are methods of the
/// [`Client`](crate::Client): [`send`](crate::Client::send),
/// [`start_tls`](crate::Client::start_tls), [`finish`](crate::Client::finish),
/// [`abort`](crate::Client::abort), [`consumed`](crate::Client::consumed).
///
/// Inputs borrow (`Received(&[u8])`, the addresses of `Resolved`) so the driver can pass its
/// read buffer without a copy.
///
/// A driver's report that arrives after the client closed, or about a connect attempt that
/// has already ended, is accepted and ignored: a
/// `SocketError` from a `ShutdownWrite` performed after the core had already closed in the
/// same batch of outputs, a resolution that raced an `Abort`, a write that completed as the
/// connection closed. Drivers cannot order these away, so they need not try. Before the
/// close, a report that makes no sense (`Received` before `Connected`, say) is refused.
#[derive(Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
#[non_exhaustive]
pub enum Input<'a> {
    /// The driver's answer to an [`Output::Resolve`](crate::Output::Resolve): the
    /// addresses of the name, or why there are none. With `family: None` the answer covers
    /// both families (one `getaddrinfo`); with `Some(family)` it is that family's lookup (an
    /// `AAAA` or an `A` query, RFC 8305), the other's answer coming separately, and
    /// addresses of the other family in it are ignored.
    Resolved {
        /// The family this answer is for, or `None` for both.
        family: Option<Family>,
        /// The addresses, or the error kind of a failed lookup.
        result: Result<&'a [SocketAddr], ErrorKind>,
    },
    /// The socket of this attempt's [`Output::Connect`](crate::Output::Connect) is connected.
    Connected(AttemptId),
    /// The socket of this attempt's [`Output::Connect`](crate::Output::Connect) failed to
    /// connect (refused, unreachable, any socket error while connecting).
    ConnectFailed(AttemptId, ErrorKind),
    /// Bytes read from the socket.
    Received(&'a [u8]),
    /// This many bytes of the handed-out [`Output::Transmit`](crate::Output::Transmit)s were
    /// written to the socket, in order. Short writes are fine: report what was written.
    Written(usize),
    /// A read returned 0: the peer will send nothing more (its FIN).
    PeerEof,
    /// The connected socket failed (reset, broken pipe, ...). While connect attempts are
    /// under way, report an attempt's socket error as [`Input::ConnectFailed`].
    SocketError(ErrorKind),
    /// The answer to [`Output::QueryUnacknowledged`](crate::Output::QueryUnacknowledged):
    /// how much of what was written the peer's TCP has not acknowledged yet. Give it at
    /// once, before waiting; it is refused when no query is out.
    Unacknowledged(Unacknowledged),
    /// The deadline from [`Client::poll_timeout`](crate::Client::poll_timeout) was reached.
    /// A timeout that arrives early, or twice, does nothing.
    Timeout,
}

impl Input<'_> {
    /// A short name for error messages and traces.
    pub fn name(&self) -> &'static str {
        self.into()
    }
}

/// What the operating system says the peer's TCP has not acknowledged of the stream, the
/// answer a driver gives in [`Input::Unacknowledged`].
///
/// Written to the kernel is not delivered: the kernel keeps what it sent until the peer's
/// TCP acknowledges it, and a connection that dies first loses it. This is how the client
/// tells the two apart, so that its [`CloseReport`](crate::CloseReport) counts what the peer
/// really got, and hands back what it did not.
///
/// On Linux (and Android) the `SIOCOUTQ` ioctl on the connection's socket gives it: the
/// bytes written and not yet acknowledged, whether still unsent or in flight, plus one for
/// our FIN once the socket's write side was shut down (TCP numbers the FIN like a byte; it
/// comes last, so it is acknowledged exactly when the count is zero). The count survives the
/// connection's end: after a reset or a timeout the socket still says what was never
/// acknowledged, until it is closed. `tcpclient-polling` has the system call
/// (`unacknowledged`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Unacknowledged {
    /// The peer's TCP has acknowledged everything written but the last `bytes`.
    Known {
        /// Bytes written to the socket and not acknowledged yet.
        bytes: u64,
        /// Our FIN was sent ([`Output::ShutdownWrite`](crate::Output::ShutdownWrite)
        /// succeeded) and the peer's TCP acknowledged it, and with it every byte before
        /// it: `bytes` is then 0.
        fin_acknowledged: bool,
    },
    /// The platform cannot tell. Nothing written is then counted as acknowledged or as lost:
    /// what a two-way close does not confirm is reported unconfirmed.
    Unknown,
}
