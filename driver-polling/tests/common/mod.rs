//! Loopback servers for the driver's tests: each serves on 127.0.0.1, on a thread, with
//! read timeouts so that no test can hang on it.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use tcpclient_core::Event;
use tcpclient_polling::{ConnId, Connection, EventLoop, Notification};

// Each test file uses some of these.
#[allow(unused_imports)]
pub use tcpclient_testkit::loopback::{PATIENCE, echo_server, serve, tls_echo_server, unused_port};

/// Sends `payload`, then closes without reading anything.
pub fn closing_server(payload: &'static [u8]) -> SocketAddr {
    serve(move |mut stream| {
        let _ = stream.write_all(payload);
        let _ = stream.shutdown(Shutdown::Both);
    })
}

/// Closes its sending side at once, then collects everything the client sends until EOF.
pub fn half_closing_server() -> (SocketAddr, Receiver<Vec<u8>>) {
    let (tx, rx) = mpsc::channel();
    let addr = serve(move |mut stream| {
        let _ = stream.shutdown(Shutdown::Write);
        let mut all = Vec::new();
        let _ = stream.read_to_end(&mut all);
        let _ = tx.send(all);
    });
    (addr, rx)
}

/// Reads `n` bytes, closes its sending side, then reads everything else until EOF.
pub fn half_closing_after(n: usize) -> SocketAddr {
    serve(move |mut stream| {
        let mut first = vec![0u8; n];
        if stream.read_exact(&mut first).is_ok() {
            let _ = stream.shutdown(Shutdown::Write);
            let _ = std::io::copy(&mut stream, &mut std::io::sink());
        }
    })
}

/// Reads slowly (4 KiB, then a pause) and reports how many bytes it read in all.
pub fn slow_reader(pause: Duration) -> (SocketAddr, Receiver<u64>) {
    let (tx, rx) = mpsc::channel();
    let addr = serve(move |mut stream| {
        let mut buf = [0u8; 4096];
        let mut total = 0u64;
        while let Ok(n) = stream.read(&mut buf) {
            if n == 0 {
                break;
            }
            total += n as u64;
            std::thread::sleep(pause);
        }
        let _ = tx.send(total);
    });
    (addr, rx)
}

/// A line server that offers STARTTLS the way `protocol` (smtp, imap, pop3, ftp) does:
/// greeting, capability exchange, the STARTTLS command and its go-ahead; then it echoes
/// lines over TLS as `250 <line>`. With `inject`, the go-ahead carries extra plaintext in
/// the same write: a STARTTLS command injection.
pub fn starttls_server(
    protocol: &'static str,
    config: Arc<ServerConfig>,
    inject: bool,
) -> SocketAddr {
    serve(move |mut stream| {
        let greeting: &[u8] = match protocol {
            "smtp" => b"220-smtp.test ESMTP\r\n220 ready\r\n",
            "imap" => b"* OK IMAP4rev1 ready\r\n",
            "pop3" => b"+OK POP3 ready\r\n",
            _ => b"220-welcome\r\n220 ftp ready\r\n",
        };
        let _ = stream.write_all(greeting);
        loop {
            let Some(line) = read_line(&mut stream) else {
                return;
            };
            let reply: &[u8] = match (protocol, line.to_ascii_uppercase().as_str()) {
                ("smtp", l) if l.starts_with("EHLO") => {
                    b"250-smtp.test greets you\r\n250-8BITMIME\r\n250 STARTTLS\r\n"
                }
                ("smtp", "STARTTLS") => b"220 go ahead\r\n",
                ("imap", ". CAPABILITY") => b"* CAPABILITY IMAP4rev1 STARTTLS\r\n. OK done\r\n",
                ("imap", ". STARTTLS") => b". OK begin TLS\r\n",
                ("pop3", "STLS") => b"+OK begin TLS\r\n",
                ("ftp", "AUTH TLS") => b"234 go ahead\r\n",
                _ => b"500 what?\r\n",
            };
            let go_ahead = !reply.starts_with(b"500")
                && !reply.starts_with(b"250-")
                && !reply.starts_with(b"* CAP");
            let _ = stream.write_all(
                &[
                    reply,
                    if inject && go_ahead {
                        b"250 injected before TLS\r\n"
                    } else {
                        b""
                    },
                ]
                .concat(),
            );
            if go_ahead {
                break;
            }
        }
        let conn = ServerConnection::new(config.clone()).expect("server connection");
        let mut reader = BufReader::new(StreamOwned::new(conn, stream));
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap_or(0) > 0 {
            let reply = format!("250 {}\r\n", line.trim_end());
            if reader.get_mut().write_all(reply.as_bytes()).is_err() {
                return;
            }
            line.clear();
        }
        let tls = reader.get_mut();
        tls.conn.send_close_notify();
        let _ = tls.flush();
        let _ = tls.sock.shutdown(Shutdown::Write);
    })
}

/// Sends the same block forever (until the client goes away): an endless producer.
pub fn firehose() -> SocketAddr {
    serve(|mut stream| {
        let block = vec![b'f'; 64 * 1024];
        while stream.write_all(&block).is_ok() {}
    })
}

/// Reads a line a byte at a time (so no TLS byte is swallowed), without its CRLF.
pub fn read_line(stream: &mut TcpStream) -> Option<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(1) if byte[0] == b'\n' => {
                return Some(String::from_utf8_lossy(&line).trim_end().to_string());
            }
            Ok(1) => line.push(byte[0]),
            _ => return None,
        }
    }
}

/// Turns `event_loop` until every connection has closed; returns each event with its id.
/// Panics if that takes longer than `limit`.
pub fn run_to_end(event_loop: &mut EventLoop, limit: Duration) -> Vec<(ConnId, Event)> {
    let deadline = Instant::now() + limit;
    let mut events = Vec::new();
    while !event_loop.is_empty() {
        assert!(
            Instant::now() < deadline,
            "connections still open after {limit:?}"
        );
        event_loop
            .turn(Some(Duration::from_millis(100)))
            .expect("turn");
        while let Some(event) = event_loop.poll_event() {
            events.push(event);
        }
    }
    events
}

/// Takes a connection's notifications until its close report, within `limit`.
pub fn events_until_closed(conn: &Connection, limit: Duration) -> Vec<Event> {
    events_until(conn, limit, |e| matches!(e, Event::Closed(_)))
}

/// Takes a connection's notifications until an event `last` accepts (or the close report),
/// within `limit`.
pub fn events_until(
    conn: &Connection,
    limit: Duration,
    last: impl Fn(&Event) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + limit;
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no such event within {limit:?}: {events:?}"
        );
        if let Ok(Some(Notification::Event(event))) = conn.recv_timeout(left) {
            let done = last(&event) || matches!(event, Event::Closed(_));
            events.push(event);
            if done {
                return events;
            }
        }
    }
}

/// The close report among `events`.
pub fn report(events: &[Event]) -> &tcpclient_core::CloseReport {
    match events.last() {
        Some(Event::Closed(report)) => report,
        other => panic!("expected Closed last, got {other:?}"),
    }
}
