//! The system calls of this driver's own: a non-blocking connect, gathered writes, reads
//! into a reused buffer (the socket's setup and the questions every driver asks are in
//! `tcpclient-driver`).

use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};

use socket2::{SockAddr, SockRef};
use tcpclient_core::ConnectOptions;
use tcpclient_driver::{PendingWrites, socket_for};

/// Send flags that keep a write to a reset connection from raising SIGPIPE.
#[cfg(not(any(target_vendor = "apple", windows)))]
const NO_SIGNAL: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(any(target_vendor = "apple", windows))]
const NO_SIGNAL: libc::c_int = 0;

/// Starts a non-blocking connect with the attempt's socket options. `Ok(true)` when it
/// finished at once, `Ok(false)` while in progress: wait for writability, then call
/// [`finish_connect`].
///
/// A connect in progress is asked once more whether it is done (`getpeername`): on
/// loopback the handshake completes before the connect call returns, and one question
/// costs less than a wait of the poller (up to five system calls with `polling`'s epoll
/// backend as released: it re-arms its timer and its notifier on every wait). Over a real
/// network it is one system call per attempt against a round trip.
pub(crate) fn start_connect(
    addr: SocketAddr,
    options: &ConnectOptions,
) -> io::Result<(TcpStream, bool)> {
    let socket = socket_for(addr, options)?;
    let done = match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => true,
        Err(e)
            if e.raw_os_error() == Some(libc::EINPROGRESS)
                || e.kind() == io::ErrorKind::WouldBlock =>
        {
            socket.peer_addr().is_ok()
        }
        Err(e) => return Err(e),
    };
    Ok((socket.into(), done))
}

/// Settles a connect after the socket became writable: the pending error, if any, says why
/// it failed. (Writability of a connecting socket means the attempt is over.)
pub(crate) fn finish_connect(stream: &TcpStream) -> io::Result<()> {
    match stream.take_error()? {
        Some(error) => Err(error),
        None => Ok(()),
    }
}

/// Writes as much of `pending` as the socket takes, gathering buffers into few `sendmsg`s.
/// Returns the bytes written; stops at `WouldBlock`; fails on any other error.
///
/// A write to a connection the peer has reset fails with EPIPE; with a plain `writev` the
/// kernel also raises SIGPIPE, which kills a program that kept the default action. The
/// library cannot rely on its embedder ignoring SIGPIPE, so writes say `MSG_NOSIGNAL`
/// (Apple systems have no such flag: the socket is made `SO_NOSIGPIPE` instead).
pub(crate) fn write_gathered(
    stream: &mut TcpStream,
    pending: &mut PendingWrites,
) -> io::Result<usize> {
    let mut total = 0;
    while !pending.is_empty() {
        let written = pending.with_slices(|slices| {
            SockRef::from(&*stream).send_vectored_with_flags(slices, NO_SIGNAL)
        });
        let n = match written {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n;
        pending.advance(n);
    }
    Ok(total)
}

/// What one read produced.
pub(crate) enum ReadOutcome {
    Data(usize),
    Eof,
    WouldBlock,
}

/// One read into `buf`, retrying on `Interrupted`.
pub(crate) fn read_once(stream: &mut TcpStream, buf: &mut [u8]) -> io::Result<ReadOutcome> {
    loop {
        return match stream.read(buf) {
            Ok(0) => Ok(ReadOutcome::Eof),
            Ok(n) => Ok(ReadOutcome::Data(n)),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}
