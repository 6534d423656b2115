//! The network the driver runs over: real sockets through tokio, or any other that gives
//! streams tokio can read and write (the simulator's turmoil network).
//!
//! Time is tokio's clock (`tokio::time`), which a simulator that pauses and advances tokio's
//! time (turmoil does) controls too; so the network only connects, resolves and resets.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tcpclient_core::{ConnectOptions, Family, Unacknowledged};
use tcpclient_driver::{Resolve, SystemResolver};
use tokio::io::{AsyncRead, AsyncWrite};

/// What the driver needs of a network.
///
/// The futures own what they need (`'static`), so the driver can race several connects and
/// lookups at once, and are `Send`, so a driver over a `Send` network can be spawned.
pub trait Network: 'static {
    /// A connected stream.
    type Stream: AsyncRead + AsyncWrite + Send + Unpin + 'static;

    /// Connects to `addr` with `options` set on the socket first.
    fn connect(
        &self,
        addr: SocketAddr,
        options: &ConnectOptions,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send + 'static;

    /// Looks up `host`'s addresses of one `family`, each with `port` (RFC 8305 asks for
    /// the AAAA and A lookups apart).
    fn lookup(
        &self,
        host: &str,
        port: u16,
        family: Family,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static;

    /// Ends `stream` so that the peer sees a reset (`SO_LINGER` 0) if the network can;
    /// otherwise closes it.
    fn reset(&self, stream: Self::Stream);

    /// What the peer has not acknowledged of what was written to `stream`, our FIN included
    /// once its write side was shut down (`fin_sent`): the answer to
    /// [`Output::QueryUnacknowledged`](tcpclient_core::Output::QueryUnacknowledged).
    /// [`Unacknowledged::Unknown`] where the network cannot tell.
    fn unacknowledged(&self, stream: &Self::Stream, fin_sent: bool) -> Unacknowledged;

    /// An error `stream` has met that no read or write reported (a reset answering our FIN
    /// once the peer's process is gone): the driver reports it before answering a
    /// question about acknowledgements. None where the network cannot tell, by default.
    fn pending_error(&self, stream: &Self::Stream) -> Option<io::ErrorKind> {
        let _ = stream;
        None
    }
}

/// The operating system's network through tokio: sockets set up as the core asks, names
/// resolved by a [`Resolve`] on tokio's blocking pool ([`SystemResolver`] by default).
#[derive(Clone)]
pub struct Tokio {
    resolver: Arc<dyn Resolve>,
}

impl Default for Tokio {
    fn default() -> Self {
        Self::with_resolver(SystemResolver)
    }
}

impl std::fmt::Debug for Tokio {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokio").finish_non_exhaustive()
    }
}

impl Tokio {
    /// Real sockets, names resolved by `resolver` (for tests, a fixed table).
    pub fn with_resolver(resolver: impl Resolve) -> Self {
        Self {
            resolver: Arc::new(resolver),
        }
    }
}

impl Network for Tokio {
    type Stream = tokio::net::TcpStream;

    fn connect(
        &self,
        addr: SocketAddr,
        options: &ConnectOptions,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send + 'static {
        let socket = tcpclient_driver::socket_for(addr, options)
            .map(|socket| tokio::net::TcpSocket::from_std_stream(socket.into()));
        async move { socket?.connect(addr).await }
    }

    fn lookup(
        &self,
        host: &str,
        port: u16,
        family: Family,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static {
        let (resolver, host) = (self.resolver.clone(), host.to_owned());
        async move {
            tokio::task::spawn_blocking(move || resolver.resolve(&host, port, family))
                .await
                .map_err(io::Error::other)?
        }
    }

    fn reset(&self, stream: Self::Stream) {
        // If it fails, the close is an ordinary one: nothing else to do.
        let _ = tcpclient_driver::reset(&stream);
    }

    fn unacknowledged(&self, stream: &Self::Stream, fin_sent: bool) -> Unacknowledged {
        tcpclient_driver::unacknowledged(stream, fin_sent)
    }

    fn pending_error(&self, stream: &Self::Stream) -> Option<io::ErrorKind> {
        tcpclient_driver::pending_error(stream)
    }
}
