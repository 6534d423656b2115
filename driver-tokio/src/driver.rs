//! The driver loop: perform the client's outputs over a [`Network`], then wait (biased, so
//! that under a simulator a seed fixes the run) for a request, a lookup, a connect, a
//! write, a read or the deadline, and report what happened. It decides nothing.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use tcpclient_core::{AttemptId, CloseReport, Event, Family, Input, Output, Unacknowledged};
use tcpclient_driver::PendingWrites;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::shared::Shared;
use crate::{Network, Observer};

/// The read buffer grows to this while reads keep filling it...
const READ_BUFFER_MAX: usize = 64 * 1024;
/// ...and shrinks back to this while they come short: an idle connection waits on a small
/// buffer, not a bulk transfer's.
const READ_BUFFER_MIN: usize = 512;

/// What the driver loop ends with.
#[derive(Debug, Clone)]
pub struct DriverEnd {
    /// The report of the one `Closed` event.
    pub report: CloseReport,
    /// What the observer found wrong on the way (nothing, without one).
    pub violations: Vec<String>,
}

type Pending<T> = Pin<Box<dyn Future<Output = io::Result<T>> + Send>>;

/// The connection's socket.
struct Socket<S> {
    stream: S,
    /// Its write side was shut down: our FIN is in the network's hands.
    fin_sent: bool,
}

/// What the socket did: a write or a read finished.
enum Transfer {
    Written(io::Result<usize>),
    Read(io::Result<usize>),
}

/// Runs the loop until the client's `Closed`.
pub(crate) async fn drive<N: Network, O: Observer>(net: N, shared: Arc<Shared<O>>) -> DriverEnd {
    // However the loop ends (returned, or dropped with its runtime), waiters wake.
    let _gone = Gone(shared.clone());
    let mut socket: Option<Socket<N::Stream>> = None;
    let mut lookups: Vec<(Family, Pending<Vec<SocketAddr>>)> = Vec::new();
    let mut connecting: Vec<(AttemptId, Pending<N::Stream>)> = Vec::new();
    let mut pending = PendingWrites::default();
    let mut buf = vec![0u8; READ_BUFFER_MIN];
    loop {
        while let Some(output) = shared.poll_output() {
            match output {
                Output::Resolve { host, port } => {
                    // AAAA and A apart (RFC 8305 section 3); the core waits a little for
                    // the one it prefers.
                    for family in [Family::V6, Family::V4] {
                        lookups.push((family, Box::pin(net.lookup(&host, port, family))));
                    }
                }
                Output::Connect {
                    attempt,
                    addr,
                    options,
                } => connecting.push((attempt, Box::pin(net.connect(addr, &options)))),
                Output::Cancel(attempt) => connecting.retain(|(a, _)| *a != attempt),
                Output::Transmit(bytes) => pending.push(bytes),
                Output::ShutdownWrite => {
                    if let Some(socket) = socket.as_mut() {
                        match socket.stream.shutdown().await {
                            Ok(()) => socket.fin_sent = true,
                            Err(e) => shared.report(Input::SocketError(e.kind())),
                        }
                    }
                }
                Output::QueryUnacknowledged => {
                    let answer = match &socket {
                        Some(socket) => {
                            if let Some(kind) = net.pending_error(&socket.stream) {
                                shared.report(Input::SocketError(kind));
                            }
                            net.unacknowledged(&socket.stream, socket.fin_sent)
                        }
                        None => Unacknowledged::Unknown,
                    };
                    shared.report(Input::Unacknowledged(answer));
                }
                Output::Close => {
                    socket = None;
                    pending.clear();
                }
                Output::Reset => {
                    if let Some(socket) = socket.take() {
                        net.reset(socket.stream);
                    }
                    pending.clear();
                }
                Output::Event(Event::Closed(report)) => {
                    shared.deliver(Event::Closed(report.clone()));
                    // One more poll: an observer flags anything that comes after Closed.
                    let _ = shared.poll_output();
                    let violations = shared.lock().observer.finish();
                    return DriverEnd {
                        report: *report,
                        violations,
                    };
                }
                Output::Event(event) => shared.deliver(event),
            }
        }

        let (deadline, wants_read) = {
            let mut state = shared.lock();
            let deadline = state.client.poll_timeout();
            (state.observer.timer(deadline), state.client.wants_read())
        };
        let reading = socket.is_some() && wants_read;
        let writing = socket.is_some() && !pending.is_empty();
        let stream = socket.as_mut().map(|socket| &mut socket.stream);
        tokio::select! {
            biased;
            () = shared.wake.notified() => {}
            (family, found) = first(&mut lookups), if !lookups.is_empty() => match found {
                Ok(addrs) => shared.report(Input::Resolved { family: Some(family), result: Ok(&addrs) }),
                Err(e) => shared.report(Input::Resolved { family: Some(family), result: Err(e.kind()) }),
            },
            (attempt, connected) = first(&mut connecting), if !connecting.is_empty() => {
                match connected {
                    Ok(stream) => {
                        shared.report(Input::Connected(attempt));
                        // Only the winner's stream is kept; a loser's closes as it drops.
                        if shared.lock().client.winning_attempt() == Some(attempt) {
                            socket = Some(Socket { stream, fin_sent: false });
                        }
                    }
                    Err(e) => shared.report(Input::ConnectFailed(attempt, e.kind())),
                }
            }
            done = transfer(stream, writing.then_some(&pending), reading.then_some(&mut buf)),
                if writing || reading => match done {
                Transfer::Written(Ok(n)) => {
                    pending.advance(n);
                    shared.report(Input::Written(n));
                }
                Transfer::Read(Ok(0)) => shared.report(Input::PeerEof),
                Transfer::Read(Ok(n)) => {
                    shared.report(Input::Received(&buf[..n]));
                    resize(&mut buf, n);
                }
                Transfer::Written(Err(e)) | Transfer::Read(Err(e)) => {
                    shared.report(Input::SocketError(e.kind()));
                }
            },
            () = sleep_until(deadline) => shared.report(Input::Timeout),
        }
    }
}

/// Wakes the application's waiters when the loop ends, however it ends.
struct Gone<O: Observer>(Arc<Shared<O>>);

impl<O: Observer> Drop for Gone<O> {
    fn drop(&mut self) {
        self.0.driver_gone();
    }
}

/// Sleeps until `at` (for ever without one).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Awaits the first of `futures` to finish (in list order when several finish at once, so
/// a seed fixes which) and takes it out of the list.
async fn first<K: Copy, T>(futures: &mut Vec<(K, Pending<T>)>) -> (K, io::Result<T>) {
    std::future::poll_fn(|cx| {
        for at in 0..futures.len() {
            if let Poll::Ready(result) = futures[at].1.as_mut().poll(cx) {
                let (key, _) = futures.remove(at);
                return Poll::Ready((key, result));
            }
        }
        Poll::Pending
    })
    .await
}

/// Waits for the socket to take some of `pending` (gathered) or to give some bytes into
/// `buf`, whichever comes first, the write tried first; pending for ever without a socket or
/// anything to do. One future for both, so the stream is not split into halves behind a lock.
async fn transfer<S: AsyncRead + AsyncWrite + Unpin>(
    stream: Option<&mut S>,
    pending: Option<&PendingWrites>,
    mut buf: Option<&mut Vec<u8>>,
) -> Transfer {
    let Some(stream) = stream else {
        return std::future::pending().await;
    };
    std::future::poll_fn(|cx| {
        if let Some(pending) = pending
            && let Poll::Ready(written) = poll_write_some(stream, pending, cx)
        {
            return Poll::Ready(Transfer::Written(written));
        }
        if let Some(buf) = buf.as_deref_mut() {
            let mut read = ReadBuf::new(buf);
            if let Poll::Ready(done) = Pin::new(&mut *stream).poll_read(cx, &mut read) {
                return Poll::Ready(Transfer::Read(done.map(|()| read.filled().len())));
            }
        }
        Poll::Pending
    })
    .await
}

/// Writes what it can of the pending transmits, gathered.
fn poll_write_some<S: AsyncWrite + Unpin>(
    stream: &mut S,
    pending: &PendingWrites,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    match pending.with_slices(|slices| Pin::new(stream).poll_write_vectored(cx, slices)) {
        Poll::Ready(Ok(0)) => Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
        other => other,
    }
}

/// Doubles the read buffer after a read that filled it, halves it after one that used
/// under a quarter of it, within [`READ_BUFFER_MIN`] and [`READ_BUFFER_MAX`].
fn resize(buf: &mut Vec<u8>, read: usize) {
    let len = buf.len();
    let wanted = if read == len {
        (len * 2).min(READ_BUFFER_MAX)
    } else if read < len / 4 {
        (len / 2).max(READ_BUFFER_MIN)
    } else {
        len
    };
    if wanted != len {
        *buf = vec![0u8; wanted];
    }
}
