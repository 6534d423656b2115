//! A non-blocking driver: one socket, the `polling` crate for readiness, and the three
//! things a real event loop must get right — a connect that completes later, writes that
//! take only part of a transmit, and waiting for writability before writing the rest.
//!
//! It sends 1 MiB through a deliberately small send buffer to an echo server on 127.0.0.1,
//! so that most writes are short, finishes gracefully and checks that the echo is exact.

// The core's clippy.toml bans clocks and sockets from the core; a driver needs both.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::collections::VecDeque;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use polling::{Event as Readiness, Events, Poller};
use socket2::{Domain, SockAddr, Socket, Type};
use tcpclient_core::{AttemptId, Bytes, Client, Config, Event, Input, Output, Unacknowledged};

/// The poller's key for our one socket.
const KEY: usize = 7;

/// What the run saw, for the test in `tests/examples.rs`.
pub struct Run {
    /// Writes that took only part of what was offered.
    pub short_writes: usize,
    /// Bytes echoed back, all of them equal to what was sent.
    pub echoed: usize,
}

/// The socket and what the client handed out for it that is not written yet.
///
/// One socket: with one address the client races no attempts (the polling driver keeps one
/// socket per attempt, keyed by `AttemptId`).
struct Connection {
    attempt: AttemptId,
    stream: TcpStream,
    connecting: bool,
    /// Transmits not yet written; the front one may be partly written already.
    pending: VecDeque<Bytes>,
    /// A write stopped at `WouldBlock`: wait for writability before the next.
    blocked: bool,
    /// The write side was shut down: our FIN counts in what the kernel has unacknowledged.
    fin_sent: bool,
}

/// Runs the exchange and says how it went.
#[allow(dead_code)] // The test calls `exchange` directly.
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let run = exchange()?;
    println!(
        "echoed {} bytes; {} writes were short, and each kept its rest for later",
        run.echoed, run.short_writes
    );
    Ok(())
}

/// Runs the exchange.
pub fn exchange() -> Result<Run, Box<dyn std::error::Error>> {
    let port = start_echo_server()?;
    let payload: Bytes = (0..1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut client = Client::new(("127.0.0.1", port), Config::new(), Instant::now());
    client.send(Instant::now(), payload.clone())?;
    client.finish(Instant::now())?;

    let poller = Poller::new()?;
    let mut events = Events::new();
    let mut socket: Option<Connection> = None;
    let mut echo = Vec::new();
    let mut short_writes = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // 1. Perform every output, in order. Several inputs may have been fed since the
        //    last drain; it does not matter.
        while let Some(output) = client.poll_output() {
            let now = Instant::now();
            match output {
                Output::Resolve { host, port } => {
                    let addrs: io::Result<Vec<_>> = (host.as_str(), port)
                        .to_socket_addrs()
                        .map(Iterator::collect);
                    let result = addrs.as_deref().map_err(io::Error::kind);
                    let _ = client.handle_input(
                        now,
                        Input::Resolved {
                            family: None,
                            result,
                        },
                    );
                }
                Output::Connect { attempt, addr, .. } => match start_connect(addr) {
                    Ok(stream) => {
                        // SAFETY: the stream is deleted from the poller (`Output::Close`
                        // below, or at the end) before it is dropped.
                        #[allow(unsafe_code)]
                        unsafe {
                            poller.add(&stream, Readiness::writable(KEY))?;
                        }
                        socket = Some(Connection {
                            attempt,
                            stream,
                            connecting: true,
                            pending: VecDeque::new(),
                            blocked: false,
                            fin_sent: false,
                        });
                    }
                    Err(e) => {
                        let _ = client.handle_input(now, Input::ConnectFailed(attempt, e.kind()));
                    }
                },
                Output::Transmit(bytes) => {
                    if let Some(conn) = socket.as_mut() {
                        conn.pending.push_back(bytes);
                    }
                }
                // Every transmit has been reported written by now, as the contract says.
                Output::ShutdownWrite => {
                    if let Some(conn) = &mut socket {
                        match conn.stream.shutdown(Shutdown::Write) {
                            Ok(()) => conn.fin_sent = true,
                            // After the close this would be a late report, and a no-op.
                            Err(e) => {
                                let _ = client.handle_input(now, Input::SocketError(e.kind()));
                            }
                        }
                    }
                }
                // Written is not delivered: the kernel says what the peer has not
                // acknowledged yet, at once, before the next wait.
                Output::QueryUnacknowledged => {
                    let answer = match &socket {
                        Some(conn) => unacknowledged(&conn.stream, conn.fin_sent),
                        None => Unacknowledged::Unknown,
                    };
                    client.handle_input(now, Input::Unacknowledged(answer))?;
                }
                Output::Cancel(_) | Output::Close => {
                    if let Some(conn) = socket.take() {
                        poller.delete(&conn.stream)?;
                    }
                }
                Output::Reset => {
                    if let Some(conn) = socket.take() {
                        poller.delete(&conn.stream)?;
                        // SO_LINGER 0: the peer gets a reset, not a FIN.
                        socket2::SockRef::from(&conn.stream).set_linger(Some(Duration::ZERO))?;
                    }
                }
                Output::Event(Event::Data(data)) => {
                    echo.extend_from_slice(&data);
                    // Copied out, so done with: room again in the receive window.
                    client.consumed(data.len())?;
                }
                Output::Event(Event::Closed(report)) => {
                    if !report.is_clean() || echo != payload {
                        return Err(format!(
                            "{report}; {} of {} bytes echoed",
                            echo.len(),
                            payload.len()
                        )
                        .into());
                    }
                    return Ok(Run {
                        short_writes,
                        echoed: echo.len(),
                    });
                }
                Output::Event(_) => {}
            }
        }

        // 2. Write what the socket takes now. A short write keeps the rest of its transmit
        //    (`split_to` copies nothing) for when the socket is writable again.
        let mut wrote = false;
        if let Some(conn) = socket.as_mut().filter(|c| !c.connecting && !c.blocked) {
            while let Some(front) = conn.pending.front_mut() {
                match conn.stream.write(front) {
                    Ok(n) => {
                        if n < front.len() {
                            short_writes += 1;
                        }
                        let _ = front.split_to(n);
                        if front.is_empty() {
                            conn.pending.pop_front();
                        }
                        client.handle_input(Instant::now(), Input::Written(n))?;
                        wrote = true;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        conn.blocked = true;
                        break;
                    }
                    Err(e) => {
                        client.handle_input(Instant::now(), Input::SocketError(e.kind()))?;
                        wrote = true;
                        break;
                    }
                }
            }
        }
        if wrote {
            // What was written may have made new outputs (more transmits, the FIN).
            continue;
        }

        // 3. Ask for what matters now: writability while connecting or blocked, readability
        //    while the client wants to read. (polling is oneshot: ask again every turn.)
        if let Some(conn) = &socket {
            let write = conn.connecting || conn.blocked;
            let read = !conn.connecting && client.wants_read();
            poller.modify(&conn.stream, Readiness::new(KEY, read, write))?;
        }

        // 4. Sleep until the socket is ready or the client's next deadline.
        let timeout = client
            .poll_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()));
        events.clear();
        poller.wait(&mut events, timeout.or(Some(Duration::from_secs(30))))?;
        let now = Instant::now();

        // 5. Report what happened.
        let ready = events.iter().next();
        match (socket.as_mut(), ready) {
            (Some(conn), Some(_)) if conn.connecting => {
                // Writability of a connecting socket means the attempt is over; the pending
                // error says how.
                conn.connecting = false;
                match conn.stream.take_error()? {
                    None => client.handle_input(now, Input::Connected(conn.attempt))?,
                    Some(e) => {
                        client.handle_input(now, Input::ConnectFailed(conn.attempt, e.kind()))?
                    }
                }
            }
            (Some(conn), Some(ready)) => {
                if ready.writable {
                    conn.blocked = false;
                }
                if ready.readable && client.wants_read() {
                    match conn.stream.read(&mut buf) {
                        Ok(0) => client.handle_input(now, Input::PeerEof)?,
                        Ok(n) => client.handle_input(now, Input::Received(&buf[..n]))?,
                        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                        Err(e) => client.handle_input(now, Input::SocketError(e.kind()))?,
                    }
                }
            }
            _ => {}
        }
        if client
            .poll_timeout()
            .is_some_and(|deadline| deadline <= now)
        {
            client.handle_input(now, Input::Timeout)?;
        }
    }
}

/// What the peer's TCP has not acknowledged of what was written to `stream`: Linux's
/// `SIOCOUTQ` counts the bytes and, once sent, the FIN (which comes last, so it is
/// acknowledged when nothing is left). Other platforms say they cannot tell here.
fn unacknowledged(stream: &TcpStream, fin_sent: bool) -> Unacknowledged {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let mut queued: libc::c_int = 0;
        // SAFETY: the descriptor is open while `stream` is borrowed; the ioctl writes one
        // `int` into `queued`.
        #[allow(unsafe_code)]
        let status = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut queued) };
        if status == 0
            && let Ok(queued) = u64::try_from(queued)
        {
            return Unacknowledged::Known {
                bytes: queued.saturating_sub(u64::from(fin_sent)),
                fin_acknowledged: fin_sent && queued == 0,
            };
        }
    }
    let _ = (stream, fin_sent);
    Unacknowledged::Unknown
}

/// A non-blocking connect with a small send buffer (so writes come out short).
fn start_connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.set_send_buffer_size(4096)?;
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Err(e) => return Err(e),
    }
    Ok(socket.into())
}

/// An echo server on 127.0.0.1, on a thread; returns its port.
fn start_echo_server() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
            if let Ok(mut reader) = stream.try_clone() {
                let _ = std::io::copy(&mut reader, &mut stream);
            }
            let _ = stream.shutdown(Shutdown::Write);
        }
    });
    Ok(port)
}
