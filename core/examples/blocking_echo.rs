//! A complete driver with nothing but `std`: one blocking socket whose read timeout comes
//! from `poll_timeout`. It starts an echo server on 127.0.0.1, sends three lines, finishes
//! gracefully (Kamaelia's `producerFinished`) and prints the echo and the close report.

// The core's clippy.toml bans clocks and sockets from the core; a driver needs both.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use tcpclient_core::{Bytes, Client, Config, Event, Input, Output, Unacknowledged};

/// Runs the echo exchange; the test in `tests/examples.rs` calls this too.
pub fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port = start_echo_server()?;
    let lines = ["hello\n", "from a driver\n", "of about a hundred lines\n"];
    let mut client = Client::new(("localhost", port), Config::new(), Instant::now());
    for line in lines {
        client.send(Instant::now(), Bytes::from(line))?;
    }
    client.finish(Instant::now())?;

    let mut socket: Option<TcpStream> = None;
    let mut echo = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        // 1. Do everything the client asks for, feeding each result straight back.
        while let Some(output) = client.poll_output() {
            let now = Instant::now();
            let fed = match output {
                Output::Resolve { host, port } => {
                    let addrs: io::Result<Vec<_>> = (host.as_str(), port)
                        .to_socket_addrs()
                        .map(Iterator::collect);
                    let result = addrs.as_deref().map_err(io::Error::kind);
                    client.handle_input(
                        now,
                        Input::Resolved {
                            family: None,
                            result,
                        },
                    )
                }
                // One blocking connect at a time: its answer comes before the client can ask for
                // another attempt, so attempts never overlap here (the polling driver races
                // them).
                Output::Connect { attempt, addr, .. } => {
                    // A blocking connect cannot be interrupted, so bound it by the deadline.
                    let left = client
                        .poll_timeout()
                        .map(|t| t.saturating_duration_since(now));
                    let limit = left
                        .unwrap_or(Duration::from_secs(30))
                        .max(Duration::from_millis(1));
                    match TcpStream::connect_timeout(&addr, limit) {
                        Ok(stream) => {
                            socket = Some(stream);
                            client.handle_input(Instant::now(), Input::Connected(attempt))
                        }
                        Err(e) => client
                            .handle_input(Instant::now(), Input::ConnectFailed(attempt, e.kind())),
                    }
                }
                Output::Transmit(bytes) => match socket.as_mut().map(|s| s.write_all(&bytes)) {
                    Some(Ok(())) => client.handle_input(now, Input::Written(bytes.len())),
                    Some(Err(e)) => client.handle_input(now, Input::SocketError(e.kind())),
                    None => Ok(()),
                },
                Output::ShutdownWrite => {
                    if let Some(s) = &socket {
                        s.shutdown(Shutdown::Write)?;
                    }
                    Ok(())
                }
                // With nothing but `std` there is no asking the kernel what the peer's TCP
                // acknowledged: say so. The server's end after ours still confirms the
                // exchange; `examples/nonblocking_echo.rs` asks the kernel.
                Output::QueryUnacknowledged => {
                    client.handle_input(now, Input::Unacknowledged(Unacknowledged::Unknown))
                }
                // A failed attempt left no socket; the connection's socket closes with
                // Close (FIN) or Reset (an abort; a real driver sets SO_LINGER 0 first).
                Output::Cancel(_) => Ok(()),
                Output::Close | Output::Reset => {
                    socket = None;
                    Ok(())
                }
                // Copied out, so done with: room again in the receive window.
                Output::Event(Event::Data(data)) => {
                    echo.extend_from_slice(&data);
                    client.consumed(data.len())
                }
                Output::Event(Event::Closed(report)) => {
                    println!("echo: {:?}", String::from_utf8_lossy(&echo));
                    println!("closed: {report}");
                    assert!(report.is_clean(), "{report:?}");
                    assert_eq!(echo, lines.concat().as_bytes());
                    return Ok(());
                }
                Output::Event(event) => {
                    println!("event: {event:?}");
                    Ok(())
                }
            };
            fed?;
        }

        // 2. Wait for data or the next deadline, whichever comes first, and say which.
        let wait = client
            .poll_timeout()
            .map(|t| t.saturating_duration_since(Instant::now()));
        let fed = match socket.as_mut().filter(|_| client.wants_read()) {
            Some(s) => {
                // A zero timeout means "block forever" to std, so never pass one.
                s.set_read_timeout(wait.map(|w| w.max(Duration::from_millis(1))))?;
                match s.read(&mut buf) {
                    Ok(0) => client.handle_input(Instant::now(), Input::PeerEof),
                    Ok(n) => client.handle_input(Instant::now(), Input::Received(&buf[..n])),
                    Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                        client.handle_input(Instant::now(), Input::Timeout)
                    }
                    Err(e) => client.handle_input(Instant::now(), Input::SocketError(e.kind())),
                }
            }
            None => {
                std::thread::sleep(wait.unwrap_or(Duration::from_millis(10)));
                client.handle_input(Instant::now(), Input::Timeout)
            }
        };
        fed?;
    }
}

/// Starts a one-connection echo server on 127.0.0.1 and returns its port.
fn start_echo_server() -> std::io::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    std::thread::spawn(move || -> std::io::Result<()> {
        let (mut conn, _) = listener.accept()?;
        std::io::copy(&mut conn.try_clone()?, &mut conn)?;
        conn.shutdown(Shutdown::Write)
    });
    Ok(port)
}
