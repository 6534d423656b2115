//! The system calls every driver over the operating system's sockets makes the same way:
//! a socket set up for a connect attempt, an abortive close, what the peer's TCP has not
//! acknowledged, and the error a socket met and nobody reported.

use std::io;
use std::net::SocketAddr;

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, TcpKeepalive, Type};
use tcpclient_core::{ConnectOptions, Unacknowledged};

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
    #[cfg(any(target_os = "linux", target_os = "android"))]
    if let Some(bytes) = options.unsent_low_watermark {
        socket.set_tcp_notsent_lowat(bytes)?;
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
/// match tcpclient_driver::unacknowledged(stream, false) {
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

/// Makes the coming close of `socket` abortive: `SO_LINGER` 0 makes it send a reset, so the
/// peer learns the stream was cut rather than finished ([`Output::Reset`]).
///
/// [`Output::Reset`]: tcpclient_core::Output::Reset
pub fn reset(socket: &impl std::os::fd::AsFd) -> io::Result<()> {
    SockRef::from(socket).set_linger(Some(std::time::Duration::ZERO))
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

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use super::*;
    use tcpclient_core::SocketOptions;

    #[test]
    fn an_attempts_socket_gets_the_options_the_core_chose() {
        let addr: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let defaults = SocketOptions::default();
        let socket = socket_for(addr, &defaults.for_attempt(&addr)).unwrap();
        assert!(socket.tcp_nodelay().unwrap());
        assert!(socket.keepalive().unwrap());
        assert_eq!(socket.tcp_notsent_lowat().unwrap(), 64 * 1024);

        let mut system = defaults;
        system.unsent_low_watermark = None;
        let socket = socket_for(addr, &system.for_attempt(&addr)).unwrap();
        assert_eq!(
            socket.tcp_notsent_lowat().unwrap(),
            0,
            "left as the system has it"
        );
    }
}
