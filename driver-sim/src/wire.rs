//! What turmoil does not model of a TCP connection, and the server's end that shows it: the
//! client's resets and the peer's acknowledgements.

use std::collections::HashMap;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use turmoil::ToSocketAddrs;
use turmoil::net::{TcpListener, TcpStream};

/// What turmoil does not model of a TCP connection, kept for each by its client address and
/// shared between the client's network and the simulated servers.
///
/// - **Resets.** turmoil sends a RST only for a stream dropped with data unread, never on
///   request. A connection the client resets is entered here, and the servers read the end
///   of its stream (the FIN turmoil sends instead, after the bytes already in flight, one
///   latency later) as `ConnectionReset`, where a kernel would have turned the RST into it.
///   Unlike a kernel, the server still gets those bytes; a reset here loses no more than a
///   close would.
/// - **Acknowledgements.** turmoil has no send buffer and no ACK: a write is a segment on its
///   way, and a segment a partition drops is gone, the stream stuck behind it. A byte counts
///   as acknowledged once the server has read it from its socket, and our FIN once it has
///   read the end of the stream: never sooner than a kernel, which acknowledges what reaches
///   the socket, so the client is never told more than a real one would be.
#[derive(Debug, Clone, Default)]
pub struct Wire(Arc<Mutex<HashMap<SocketAddr, Seen>>>);

/// What each side did of one connection.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    reset: bool,
    taken: u64,
    fin_taken: bool,
    /// The client sent its FIN after this many bytes.
    fin_after: Option<u64>,
}

impl Wire {
    /// The table (a panic elsewhere while it was held leaves it as it was).
    fn seen(&self) -> MutexGuard<'_, HashMap<SocketAddr, Seen>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Enters the connection whose client end is `client` as reset.
    pub fn record_reset(&self, client: SocketAddr) {
        self.seen().entry(client).or_default().reset = true;
    }

    /// Whether the connection whose client end is `client` was reset.
    pub fn was_reset(&self, client: SocketAddr) -> bool {
        self.seen().get(&client).is_some_and(|seen| seen.reset)
    }

    /// The server of `client`'s connection read `n` more bytes from its socket.
    pub fn took(&self, client: SocketAddr, n: usize) {
        self.seen().entry(client).or_default().taken += n as u64;
    }

    /// The server of `client`'s connection read the end of its stream.
    pub fn took_fin(&self, client: SocketAddr) {
        self.seen().entry(client).or_default().fin_taken = true;
    }

    /// The bytes the server of `client`'s connection read, and whether it read the end.
    pub fn taken(&self, client: SocketAddr) -> (u64, bool) {
        let seen = self.seen().get(&client).copied().unwrap_or_default();
        (seen.taken, seen.fin_taken)
    }

    /// `client` sent its FIN, after `written` bytes.
    pub fn sent_fin(&self, client: SocketAddr, written: u64) {
        self.seen().entry(client).or_default().fin_after = Some(written);
    }

    /// Whether turmoil kept a FIN from a server that read everything before it.
    ///
    /// turmoil hands a segment on to the socket only while its receive queue has room, and
    /// tries again only when the next segment arrives; a FIN, which takes no room in the
    /// sender's window, can arrive while the queue is full and then wait behind it for good,
    /// however much the server reads. Where no segment can be lost (no partition, no loss),
    /// a server that read every byte before our FIN, and not the FIN, met exactly that.
    pub fn withheld_fin(&self) -> bool {
        self.seen()
            .values()
            .any(|seen| seen.fin_after == Some(seen.taken) && !seen.fin_taken && !seen.reset)
    }
}

/// turmoil's listener, whose streams are [`ServerStream`]s: what a simulated server accepts
/// with, so that its connections show the client's resets and acknowledge what it reads.
pub struct Listener {
    listener: TcpListener,
    wire: Wire,
}

impl Listener {
    /// Listens on `addr`, entering what its connections see in `wire` (the client's
    /// [`Turmoil`](crate::Turmoil) network must share it).
    pub async fn bind(addr: impl ToSocketAddrs, wire: Wire) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        Ok(Self { listener, wire })
    }

    /// Accepts the next connection: its stream and the client's address.
    pub async fn accept(&self) -> std::io::Result<(ServerStream, SocketAddr)> {
        let (stream, client) = self.listener.accept().await?;
        let wire = self.wire.clone();
        Ok((
            ServerStream {
                stream,
                client,
                wire,
            },
            client,
        ))
    }
}

/// A server's end of a connection: turmoil's stream, whose end is a reset if the client
/// entered it in the [`Wire`] as one, and whose every read is entered there as acknowledged.
pub struct ServerStream {
    stream: TcpStream,
    client: SocketAddr,
    wire: Wire,
}

impl AsyncRead for ServerStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        if !matches!(read, Poll::Ready(Ok(()))) {
            return read;
        }
        let taken = buf.filled().len() - before;
        if taken > 0 {
            self.wire.took(self.client, taken);
        } else if buf.remaining() > 0 {
            if self.wire.was_reset(self.client) {
                return Poll::Ready(Err(ErrorKind::ConnectionReset.into()));
            }
            self.wire.took_fin(self.client);
        }
        read
    }
}

impl AsyncWrite for ServerStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
