//! The application's side: a stream (`AsyncRead` + `AsyncWrite`) and the events that are
//! not data, for one connection or a reconnecting session.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use tcpclient_core::{CloseReport, Event, InvalidInput, Leave, Request, TlsInfo};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::shared::Shared;
use crate::{Observer, Unobserved};

/// Most events set aside (events that are not data, met while reading data) kept for
/// [`Connection::next_event`]: an application that never asks for them must not make them
/// pile up. The oldest go first.
const SIDE_EVENTS: usize = 64;

/// One connection (or reconnecting session) run by a driver task: write with
/// [`AsyncWrite`] (a write is a `Send`, waiting while the send queue is full;
/// `poll_shutdown` is `Finish`), read with [`AsyncRead`] (data counts as consumed as it is
/// read), take the other events with [`next_event`](Self::next_event), and the close
/// report with [`closed`](Self::closed). [`sender`](Self::sender) splits off sending halves
/// for other tasks.
///
/// Dropping the last handle (this one and every [`Sender`] made from it) ends the
/// connection as dropping a `TcpStream` does, with an abort, unless it was shut down (then
/// what was sent is still delivered). Dropping this one alone discards what arrives from
/// then on; senders keep working.
///
/// Or take every event in order, data included, with [`recv`](Self::recv).
pub struct Connection<O: Observer = Unobserved> {
    owner: Arc<Owner<O>>,
    shared: Arc<Shared<O>>,
    /// Data taken from an event and not yet read.
    leftover: Bytes,
    /// Events that are not data, met while reading data.
    side: VecDeque<Event>,
    /// The reader saw the end of the data (it stays ended).
    eof: bool,
    /// The peer's end came before the close: a close that follows is not a truncation.
    peer_closed: bool,
}

/// The sending half of a [`Connection`], for another task: cheap to clone. Its requests
/// are the connection's, answered at once.
pub struct Sender<O: Observer = Unobserved> {
    owner: Arc<Owner<O>>,
    shared: Arc<Shared<O>>,
}

impl<O: Observer> Clone for Sender<O> {
    fn clone(&self) -> Self {
        Self {
            owner: self.owner.clone(),
            shared: self.shared.clone(),
        }
    }
}

/// Held by every handle of one connection; the last one to go ends it as the handles' rules
/// say.
struct Owner<O: Observer> {
    shared: Arc<Shared<O>>,
}

impl<O: Observer> Drop for Owner<O> {
    /// The last handle went: the connection ends as dropping a `TcpStream` ends it (an
    /// abort), unless it was finishing (then what was sent is still delivered).
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if let Some(request) = state.handles.dropped()
            && state.request(request).is_ok()
        {
            drop(state);
            self.shared.wake.notify_one();
        }
    }
}

/// The connection did not come up: its report says why, and what was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectError {
    /// The close report.
    pub report: Box<CloseReport>,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.report)
    }
}

impl std::error::Error for ConnectError {}

impl From<ConnectError> for io::Error {
    fn from(error: ConnectError) -> Self {
        let kind = match &error.report.result {
            Err(tcpclient_core::Error::Connect { kind, .. }) => *kind,
            Err(tcpclient_core::Error::ConnectTimeout) => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, error)
    }
}

impl<O: Observer> Connection<O> {
    pub(crate) fn new(shared: Arc<Shared<O>>) -> Self {
        Self {
            owner: Arc::new(Owner {
                shared: shared.clone(),
            }),
            shared,
            leftover: Bytes::new(),
            side: VecDeque::new(),
            eof: false,
            peer_closed: false,
        }
    }

    /// A sending half for another task.
    pub fn sender(&self) -> Sender<O> {
        Sender {
            owner: self.owner.clone(),
            shared: self.shared.clone(),
        }
    }

    /// Queues `data` (Kamaelia's `inbox`); refused at once with the data handed back when
    /// the send queue is full or the connection is shutting down.
    #[doc(alias = "inbox")]
    pub fn send(&self, data: Bytes) -> Result<(), InvalidInput> {
        self.shared.request(Request::Send(data))
    }

    /// Queues a copy of `data`, refused as [`send`](Self::send) refuses: small messages are
    /// copied straight into the client's coalescing buffer, with no [`Bytes`] each.
    #[doc(alias = "inbox")]
    pub fn send_slice(&self, data: &[u8]) -> Result<(), InvalidInput> {
        send_slice(&self.shared, data)
    }

    /// Queues `data`, waiting for room in the send queue.
    pub async fn send_all(&self, data: Bytes) -> Result<(), InvalidInput> {
        send_all(&self.shared, data).await
    }

    /// Switches to TLS (STARTTLS; Kamaelia's `makessl`): [`Event::TlsEstablished`]
    /// follows, which [`tls_established`](Self::tls_established) waits for.
    #[doc(alias = "makessl")]
    pub fn start_tls(&self) -> Result<(), InvalidInput> {
        self.shared.request(Request::StartTls)
    }

    /// Waits for the TLS handshake that [`start_tls`](Self::start_tls) asked for (Kamaelia's
    /// `sslready`): what it negotiated, or the report of a connection that ended instead.
    /// Data that arrives meanwhile stays for the reader.
    #[doc(alias = "sslready")]
    pub async fn tls_established(&mut self) -> Result<TlsInfo, StartTlsError> {
        let found = self
            .wait_for(|e| {
                matches!(
                    e,
                    Event::TlsEstablished(_) | Event::Closed(_) | Event::Disconnected { .. }
                )
            })
            .await;
        match found {
            Some(Event::TlsEstablished(info)) => Ok(info),
            Some(Event::Closed(report)) => {
                // Put back: `closed` and `next_event` still see the end.
                self.side.push_back(Event::Closed(report.clone()));
                Err(StartTlsError::Closed(report))
            }
            // A session's connection was lost during the handshake: the next one starts
            // without TLS, and its preamble is the application's to redo.
            Some(Event::Disconnected { generation, report }) => {
                self.side.push_back(Event::Disconnected {
                    generation,
                    report: report.clone(),
                });
                Err(StartTlsError::Closed(report))
            }
            _ => Err(StartTlsError::DriverGone),
        }
    }

    /// Graceful shutdown (Kamaelia's `producerFinished`): everything sent is delivered,
    /// then the connection closes. (`poll_shutdown` does the same.)
    #[doc(alias = "producerFinished")]
    pub fn finish(&self) -> Result<(), InvalidInput> {
        self.shared.request(Request::Finish)
    }

    /// Closes now (Kamaelia's `shutdownMicroprocess`).
    #[doc(alias = "shutdownMicroprocess")]
    pub fn abort(&self) -> Result<(), InvalidInput> {
        self.shared.request(Request::Abort)
    }

    /// Queues `data` as the current connection's preamble, ahead of the sends waiting for
    /// it: a reconnecting session with a
    /// [`Preamble::Dialogue`](tcpclient_core::Preamble::Dialogue). See
    /// [`Client::send_preamble`](tcpclient_core::Client::send_preamble).
    pub fn send_preamble(&self, data: Bytes) -> Result<(), InvalidInput> {
        self.shared.request(Request::SendPreamble(data))
    }

    /// The current connection's preamble is done: the sends waiting for it go out. See
    /// [`Client::preamble_done`](tcpclient_core::Client::preamble_done).
    pub fn preamble_done(&self) -> Result<(), InvalidInput> {
        self.shared.request(Request::PreambleDone)
    }

    /// Drops the current connection and makes the next one after the backoff (a
    /// reconnecting session). See [`Client::reconnect`](tcpclient_core::Client::reconnect).
    pub fn reconnect(&self, leave: Leave) -> Result<(), InvalidInput> {
        self.shared.request(Request::Reconnect(leave))
    }

    /// The application's protocol acknowledged `n` more bytes (a reconnecting session that
    /// replays what is unacknowledged). See
    /// [`Client::acknowledged`](tcpclient_core::Client::acknowledged).
    pub fn acknowledged(&self, n: usize) -> Result<(), InvalidInput> {
        self.shared.request(Request::Acknowledged(n))
    }

    /// Makes any of the application's requests as a value ([`Request`]); see
    /// [`Sender::request`].
    pub fn request(&self, request: Request) -> Result<(), InvalidInput> {
        self.shared.request(request)
    }

    /// Bytes accepted and not yet written: what a producer may wait on.
    pub fn bytes_queued(&self) -> u64 {
        self.shared.lock().client.bytes_queued()
    }

    /// The next event, data included, in order (Kamaelia's outboxes); `None` after
    /// `Closed`. `Data` counts as consumed once handed out.
    #[doc(alias = "outbox")]
    pub async fn recv(&mut self) -> Option<Event> {
        if !self.leftover.is_empty() {
            return Some(Event::Data(std::mem::take(&mut self.leftover)));
        }
        if let Some(event) = self.side.pop_front() {
            return Some(event);
        }
        poll_fn(|cx| {
            let mut state = self.shared.lock();
            match state.events.pop_front() {
                Some(event) => {
                    if state.taken(&event) {
                        self.shared.wake.notify_one();
                    }
                    Poll::Ready(Some(event))
                }
                None if state.over() => Poll::Ready(None),
                None => {
                    state.wait_to_read(cx.waker());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// The next event that is not data (connected, TLS up, peer closed, reconnecting, the
    /// close report, ...); data stays for the reader. `None` once nothing more can come.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.wait_for(|event| !matches!(event, Event::Data(_)))
            .await
    }

    /// Waits for the end and returns the close report. Data not read by then is
    /// discarded (so that the connection, not waiting for a reader, can finish).
    pub async fn closed(&mut self) -> Option<Box<CloseReport>> {
        self.leftover.clear();
        loop {
            match self.recv().await? {
                Event::Closed(report) => return Some(report),
                _ => continue,
            }
        }
    }

    /// Takes the first event `wanted` accepts, from the set-aside events or the queue,
    /// leaving the others where they are.
    async fn wait_for(&mut self, wanted: impl Fn(&Event) -> bool) -> Option<Event> {
        if let Some(at) = self.side.iter().position(&wanted) {
            return self.side.remove(at);
        }
        poll_fn(|cx| {
            let mut state = self.shared.lock();
            if let Some(at) = state.events.iter().position(&wanted) {
                return Poll::Ready(state.events.remove(at));
            }
            if state.over() {
                return Poll::Ready(None);
            }
            state.wait_to_read(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Waits until the connection is up (leaving its events queued), or has ended.
    pub(crate) async fn until_connected(self) -> Result<Self, ConnectError> {
        let report = poll_fn(|cx| {
            let mut state = self.shared.lock();
            let up = |e: &Event| matches!(e, Event::Connected(_) | Event::Reconnected { .. });
            if state.events.iter().any(up) {
                return Poll::Ready(None);
            }
            let closed = state.events.iter().find_map(|e| match e {
                Event::Closed(report) => Some(report.clone()),
                _ => None,
            });
            if closed.is_some() || state.over() {
                return Poll::Ready(Some(closed.unwrap_or_else(|| {
                    Box::new(CloseReport::driver_stopped(
                        0,
                        0,
                        0,
                        "the runtime shut down".into(),
                    ))
                })));
            }
            state.wait_to_read(cx.waker());
            Poll::Pending
        })
        .await;
        match report {
            None => Ok(self),
            Some(report) => Err(ConnectError { report }),
        }
    }

    /// Sets aside a non-data event met while reading. Bytes handed back and the close
    /// report are always kept (the first are bounded by the send limit); of the others, the
    /// newest few.
    fn set_aside(&mut self, event: Event) {
        if matches!(event, Event::SendReady) {
            return; // Writers learn of room by being woken.
        }
        let precious = |e: &Event| matches!(e, Event::Undelivered(_) | Event::Closed(_));
        if self.side.len() >= SIDE_EVENTS
            && let Some(at) = self.side.iter().position(|e| !precious(e))
        {
            self.side.remove(at);
        }
        self.side.push_back(event);
    }
}

impl<O: Observer> Sender<O> {
    /// See [`Connection::send`].
    #[doc(alias = "inbox")]
    pub fn send(&self, data: Bytes) -> Result<(), InvalidInput> {
        self.shared.request(Request::Send(data))
    }

    /// See [`Connection::send_slice`].
    #[doc(alias = "inbox")]
    pub fn send_slice(&self, data: &[u8]) -> Result<(), InvalidInput> {
        send_slice(&self.shared, data)
    }

    /// See [`Connection::send_all`].
    pub async fn send_all(&self, data: Bytes) -> Result<(), InvalidInput> {
        send_all(&self.shared, data).await
    }

    /// See [`Connection::start_tls`].
    #[doc(alias = "makessl")]
    pub fn start_tls(&self) -> Result<(), InvalidInput> {
        self.shared.request(Request::StartTls)
    }

    /// See [`Connection::finish`].
    #[doc(alias = "producerFinished")]
    pub fn finish(&self) -> Result<(), InvalidInput> {
        self.shared.request(Request::Finish)
    }

    /// See [`Connection::abort`].
    #[doc(alias = "shutdownMicroprocess")]
    pub fn abort(&self) -> Result<(), InvalidInput> {
        self.shared.request(Request::Abort)
    }

    /// See [`Connection::send_preamble`].
    pub fn send_preamble(&self, data: Bytes) -> Result<(), InvalidInput> {
        self.shared.request(Request::SendPreamble(data))
    }

    /// See [`Connection::preamble_done`].
    pub fn preamble_done(&self) -> Result<(), InvalidInput> {
        self.shared.request(Request::PreambleDone)
    }

    /// See [`Connection::reconnect`].
    pub fn reconnect(&self, leave: Leave) -> Result<(), InvalidInput> {
        self.shared.request(Request::Reconnect(leave))
    }

    /// See [`Connection::acknowledged`].
    pub fn acknowledged(&self, n: usize) -> Result<(), InvalidInput> {
        self.shared.request(Request::Acknowledged(n))
    }

    /// Makes any of the application's requests as a value ([`Request`]): what the methods
    /// above do, for code that passes requests through one place. The same as
    /// `EventLoop::request` and the polling `Runtime`'s handles' in the other drivers.
    pub fn request(&self, request: Request) -> Result<(), InvalidInput> {
        self.shared.request(request)
    }

    /// Bytes accepted and not yet written: what a producer may wait on.
    pub fn bytes_queued(&self) -> u64 {
        self.shared.lock().client.bytes_queued()
    }
}

/// Why [`Connection::start_tls`] did not end in a handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StartTlsError {
    /// The connection refused the request (no TLS configuration, TLS already on, ...).
    Refused(InvalidInput),
    /// The connection ended instead, with this report.
    Closed(Box<CloseReport>),
    /// The driver stopped (its runtime shut down).
    DriverGone,
}

impl std::fmt::Display for StartTlsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartTlsError::Refused(refusal) => write!(f, "STARTTLS refused: {refusal}"),
            StartTlsError::Closed(report) => write!(f, "closed before TLS was up: {report}"),
            StartTlsError::DriverGone => f.write_str("the driver stopped"),
        }
    }
}

impl std::error::Error for StartTlsError {}

fn send_slice<O: Observer>(shared: &Shared<O>, data: &[u8]) -> Result<(), InvalidInput> {
    let answer = shared.lock().send_slice(data);
    if answer.is_ok() {
        shared.wake.notify_one();
    }
    answer
}

async fn send_all<O: Observer>(shared: &Shared<O>, data: Bytes) -> Result<(), InvalidInput> {
    let mut data = Some(data);
    poll_fn(|cx| {
        let Some(chunk) = data.take() else {
            return Poll::Ready(Ok(()));
        };
        let mut state = shared.lock();
        match state.request(Request::Send(chunk)) {
            Ok(()) => {
                drop(state);
                shared.wake.notify_one();
                Poll::Ready(Ok(()))
            }
            Err(InvalidInput::QueueFull { data: back, .. }) if !state.over() => {
                data = Some(back);
                state.wait_to_write(cx.waker());
                drop(state);
                shared.wake.notify_one();
                Poll::Pending
            }
            Err(refusal) => Poll::Ready(Err(refusal)),
        }
    })
    .await
}

impl<O: Observer> AsyncRead for Connection<O> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if !this.leftover.is_empty() {
                let n = this.leftover.len().min(buf.remaining());
                buf.put_slice(&this.leftover[..n]);
                this.leftover.advance(n);
                return Poll::Ready(Ok(()));
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            let mut state = this.shared.lock();
            let Some(event) = state.events.pop_front() else {
                if state.over() {
                    this.eof = true;
                    return Poll::Ready(Ok(()));
                }
                state.wait_to_read(cx.waker());
                return Poll::Pending;
            };
            let session = state.client.config().reconnect.is_some();
            if state.taken(&event) {
                this.shared.wake.notify_one();
            }
            match event {
                Event::Data(data) => {
                    this.leftover = data;
                }
                Event::Closed(report) => {
                    drop(state);
                    this.eof = true;
                    // An end in error before the peer's own end is not a clean EOF: the
                    // data may be cut short (a TLS stream without close_notify, a reset).
                    let cut = (!this.peer_closed)
                        .then(|| report.result.clone().err())
                        .flatten();
                    this.set_aside(Event::Closed(report));
                    return Poll::Ready(match cut {
                        Some(error) => Err(io_error(&error)),
                        None => Ok(()),
                    });
                }
                other => {
                    drop(state);
                    // One connection's end of data is the stream's; a session's is only its
                    // last (the `Closed` above).
                    let ends = matches!(other, Event::PeerClosed) && !session;
                    if matches!(other, Event::PeerClosed) {
                        this.peer_closed = true;
                    }
                    if matches!(other, Event::Reconnected { .. }) {
                        this.peer_closed = false;
                    }
                    this.set_aside(other);
                    if ends {
                        this.eof = true;
                        return Poll::Ready(Ok(()));
                    }
                }
            }
        }
    }
}

/// The `io::Error` a reader gets for a connection that ended in `error` before its peer's
/// end.
fn io_error(error: &tcpclient_core::Error) -> io::Error {
    use tcpclient_core::Error;
    let kind = match error {
        Error::Socket(kind) => *kind,
        Error::UnexpectedEof => io::ErrorKind::UnexpectedEof,
        Error::Tls(_) => io::ErrorKind::InvalidData,
        Error::Stalled | Error::IdleTimeout | Error::DrainTimeout | Error::ConnectTimeout => {
            io::ErrorKind::TimedOut
        }
        Error::Connect { kind, .. } => *kind,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, error.clone())
}

impl<O: Observer> AsyncWrite for Connection<O> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut state = self.shared.lock();
        let answer = state.send_slice(buf);
        let poll = match answer {
            Ok(()) => Poll::Ready(Ok(buf.len())),
            Err(InvalidInput::QueueFull { .. }) if !state.over() => {
                state.wait_to_write(cx.waker());
                Poll::Pending
            }
            Err(refusal) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                refusal.to_string(),
            ))),
        };
        drop(state);
        self.shared.wake.notify_one();
        poll
    }

    /// Ready once everything written so far has reached the socket (or the connection
    /// ended: the close report says what did not). Reaching the socket is not reaching the
    /// peer: [`closed`](Self::closed)'s report says what the peer confirmed.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut state = self.shared.lock();
        if state.over() || state.client.bytes_queued() == 0 {
            return Poll::Ready(Ok(()));
        }
        state.wait_to_write(cx.waker());
        Poll::Pending
    }

    /// `Finish`, then ready once everything written has reached the socket: the FIN
    /// follows at once. Reading goes on until the peer's end.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let finishing = self.shared.lock().handles.is_finishing();
        if !finishing {
            // Refused only once the connection is shutting down or over: nothing to do.
            let _ = self.shared.request(Request::Finish);
        }
        self.poll_flush(cx)
    }
}

impl<O: Observer> Drop for Connection<O> {
    /// Nobody reads any more: what waits, and what comes, is consumed, so that a
    /// connection finishing after the drop is not held back by its receive window. (The
    /// connection itself ends with its last handle.)
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.handles.receiver_dropped();
        let mut reopened = false;
        for event in std::mem::take(&mut state.events) {
            reopened |= state.taken(&event);
        }
        drop(state);
        if reopened {
            self.shared.wake.notify_one();
        }
    }
}
