//! The system calls: a non-blocking connect, gathered writes, reads into a reused buffer,
//! and what the peer's TCP has not acknowledged.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Read};
use std::net::{SocketAddr, TcpStream};

use bytes::Bytes;
use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, TcpKeepalive, Type};
use tcpclient_core::{ConnectOptions, Unacknowledged};

/// Send flags that keep a write to a reset connection from raising SIGPIPE.
#[cfg(not(any(target_vendor = "apple", windows)))]
const NO_SIGNAL: libc::c_int = libc::MSG_NOSIGNAL;
#[cfg(any(target_vendor = "apple", windows))]
const NO_SIGNAL: libc::c_int = 0;

/// Most buffers gathered into one `writev`: well under every platform's `IOV_MAX`.
const MAX_IOVECS: usize = 128;

/// Starts a non-blocking connect with the attempt's socket options. `Ok(true)` when it
/// finished at once, `Ok(false)` while in progress: wait for writability, then call
/// [`finish_connect`].
///
/// A connect in progress is asked once more whether it is done (`getpeername`): on
/// loopback the handshake completes before the connect call returns, and one question
/// costs less than a wait of the poller (five system calls with `polling`'s epoll backend:
/// it re-arms its timer and its notifier on every wait). Over a real network it is one
/// system call per attempt against a round trip.
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

/// A non-blocking TCP socket for a connect attempt to `addr`, with the attempt's socket
/// options set (and, on Apple systems, `SO_NOSIGPIPE`), not yet connected: what every
/// driver over the operating system's sockets starts an attempt with.
pub fn socket_for(addr: SocketAddr, options: &ConnectOptions) -> io::Result<Socket> {
    let socket = nonblocking_stream(Domain::for_address(addr))?;
    apply(&socket, options)?;
    #[cfg(target_vendor = "apple")]
    socket.set_nosigpipe(true)?;
    Ok(socket)
}

/// Sets what the core asked for, before the connect (a local address must be bound first,
/// and buffer sizes count for the handshake's window).
fn apply(socket: &Socket, options: &ConnectOptions) -> io::Result<()> {
    socket.set_tcp_nodelay(options.nodelay)?;
    if let Some(keepalive) = options.keepalive {
        let params = TcpKeepalive::new()
            .with_time(keepalive.idle)
            .with_interval(keepalive.interval);
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_vendor = "apple",
            target_os = "freebsd"
        ))]
        let params = params.with_retries(keepalive.count);
        socket.set_tcp_keepalive(&params)?;
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(timeout) = options.user_timeout {
        socket.set_tcp_user_timeout(Some(timeout))?;
    }
    if let Some(size) = options.send_buffer {
        socket.set_send_buffer_size(size)?;
    }
    if let Some(size) = options.recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(local) = options.local {
        socket.bind(&SockAddr::from(local))?;
    }
    Ok(())
}

/// What the peer's TCP has not acknowledged of what was written to `socket`: the answer to
/// [`Output::QueryUnacknowledged`](tcpclient_core::Output::QueryUnacknowledged), for every
/// driver over the operating system's sockets. `fin_sent` says whether the socket's write
/// side was shut down (an `Output::ShutdownWrite` that succeeded).
///
/// On Linux and Android it is one `SIOCOUTQ` ioctl: the bytes written and not yet
/// acknowledged, plus one for the FIN once sent; the count outlives a reset or a timeout of
/// the connection, until the socket is closed. Elsewhere, and should the ioctl fail, the
/// answer is [`Unacknowledged::Unknown`]: never "delivered" for want of knowing.
///
/// ```no_run
/// # fn run(stream: &std::net::TcpStream) {
/// use tcpclient_core::Unacknowledged;
///
/// match tcpclient_polling::unacknowledged(stream, false) {
///     Unacknowledged::Known { bytes, .. } => println!("{bytes} bytes not acknowledged yet"),
///     _ => println!("this platform cannot tell"),
/// }
/// # }
/// ```
pub fn unacknowledged(socket: &impl std::os::fd::AsFd, fin_sent: bool) -> Unacknowledged {
    match send_queue(socket) {
        // The FIN comes last: it is acknowledged exactly when nothing is left.
        Some(queued) if fin_sent => Unacknowledged::Known {
            bytes: queued.saturating_sub(1),
            fin_acknowledged: queued == 0,
        },
        Some(queued) => Unacknowledged::Known {
            bytes: queued,
            fin_acknowledged: false,
        },
        None => Unacknowledged::Unknown,
    }
}

/// The error `socket` has met and no read or write has reported (`SO_ERROR`, which the
/// query clears). A driver that is neither reading nor writing learns of a reset only so:
/// our FIN answered with a reset, once the peer's process is gone, leaves the FIN
/// unacknowledged for good, and the core would wait for it until its drain deadline.
/// Report it (as `SocketError`) before the answer to a question about acknowledgements.
pub fn pending_error(socket: &impl std::os::fd::AsFd) -> Option<io::ErrorKind> {
    SockRef::from(socket)
        .take_error()
        .ok()
        .flatten()
        .map(|e| e.kind())
}

/// The sequence space written to `socket` and not yet acknowledged (`SIOCOUTQ`).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_queue(socket: &impl std::os::fd::AsFd) -> Option<u64> {
    use std::os::fd::AsRawFd;
    let mut queued: libc::c_int = 0;
    let fd = socket.as_fd().as_raw_fd();
    // SAFETY: `fd` is an open socket for as long as `socket` is borrowed, and `SIOCOUTQ`
    // writes one `int` into `queued`, which outlives the call.
    #[allow(unsafe_code)]
    let status = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut queued as *mut libc::c_int) };
    match status {
        0 => u64::try_from(queued).ok(),
        _ => None,
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_queue(_socket: &impl std::os::fd::AsFd) -> Option<u64> {
    None
}

/// Closes abortively: `SO_LINGER` 0 makes the close send a reset, so the peer learns the
/// stream was cut rather than finished.
pub(crate) fn reset(stream: &TcpStream) -> io::Result<()> {
    SockRef::from(stream).set_linger(Some(std::time::Duration::ZERO))
}

/// A non-blocking TCP socket, in one system call where the platform allows.
#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
fn nonblocking_stream(domain: Domain) -> io::Result<Socket> {
    Socket::new(domain, Type::STREAM.nonblocking(), Some(Protocol::TCP))
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
fn nonblocking_stream(domain: Domain) -> io::Result<Socket> {
    let socket = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
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
    pending: &mut VecDeque<Bytes>,
) -> io::Result<usize> {
    let mut total = 0;
    while !pending.is_empty() {
        let slices: Vec<IoSlice<'_>> = pending
            .iter()
            .take(MAX_IOVECS)
            .map(|b| IoSlice::new(b))
            .collect();
        let n = match SockRef::from(&*stream).send_vectored_with_flags(&slices, NO_SIGNAL) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        total += n;
        advance(pending, n);
    }
    Ok(total)
}

/// Drops `n` written bytes from the front; a partly written buffer keeps its rest (no copy).
fn advance(pending: &mut VecDeque<Bytes>, mut n: usize) {
    while n > 0 {
        let Some(front) = pending.front_mut() else {
            return;
        };
        if front.len() <= n {
            n -= front.len();
            pending.pop_front();
        } else {
            let _ = front.split_to(n);
            n = 0;
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_keeps_the_unwritten_rest_of_a_buffer() {
        let mut pending: VecDeque<Bytes> =
            [Bytes::from_static(b"abc"), Bytes::from_static(b"defg")].into();
        advance(&mut pending, 5);
        assert_eq!(pending, [Bytes::from_static(b"fg")]);
    }
}
