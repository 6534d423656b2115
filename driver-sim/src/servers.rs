//! Simulated servers to test against: well-behaved ones and misbehaving ones. Each records
//! the application bytes it received and sent, so a run can check that nothing was invented,
//! reordered or lost without being reported.

use std::cell::RefCell;
use std::io::{ErrorKind, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ServerConfig, ServerConnection};
use tcpclient_core::Destination;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

use crate::wire::{Listener, ServerStream, Wire};

/// The port every simulated server listens on.
pub const PORT: u16 = 4433;

/// The simulated server as clients reach it: the host `server`, [`PORT`], its certificate
/// checked for `localhost` (the name on the simulator's certificates).
pub fn server() -> Destination {
    let server = Destination::new("server", PORT);
    match ServerName::try_from("localhost") {
        Ok(name) => server.with_server_name(name),
        Err(_) => server,
    }
}

/// Bytes a mid-stream misbehaviour waits for before it strikes.
const STRIKE_AFTER: usize = 3000;

/// How the server behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, strum::IntoStaticStr)]
pub enum ServerKind {
    /// Sends back everything it receives; closes after the client's EOF.
    Echo,
    /// Reads and discards everything; closes after the client's EOF.
    Sink,
    /// `220 ready`, then on `STARTTLS` replies `220 go` and switches to TLS; echoes after.
    /// An `EHLO` is answered as an SMTP server would, offering STARTTLS.
    StartTlsLine,
    /// TLS from the first byte, echoing.
    TlsEcho,
    /// Accepts and never reads or writes.
    Silent,
    /// Reads a little, then waits, again and again.
    SlowReader,
    /// Echoes, then closes in the middle of the stream.
    ClosesMidStream,
    /// Reads, then drops the connection with data unread (a reset).
    Resets,
    /// Answers anything with garbage that is not TLS.
    Garbage,
    /// Sends [`FLOOD_BYTES`] as fast as the client takes them without reading, then closes
    /// its side and waits for the client's EOF.
    Flood,
}

/// What a [`ServerKind::Flood`] server sends.
pub const FLOOD_BYTES: usize = 1024 * 1024;

impl ServerKind {
    /// The kind's name in summaries and traces: its variant's name.
    pub fn name(self) -> &'static str {
        self.into()
    }

    /// Every kind, for sweeps.
    pub const ALL: [ServerKind; 10] = [
        ServerKind::Echo,
        ServerKind::Sink,
        ServerKind::StartTlsLine,
        ServerKind::TlsEcho,
        ServerKind::Silent,
        ServerKind::SlowReader,
        ServerKind::ClosesMidStream,
        ServerKind::Resets,
        ServerKind::Garbage,
        ServerKind::Flood,
    ];

    /// Whether this server speaks TLS (from the start, or after STARTTLS).
    pub fn speaks_tls(self) -> bool {
        matches!(self, ServerKind::TlsEcho | ServerKind::StartTlsLine)
    }

    /// Whether this server sends back what it receives (so the client has data to check).
    pub fn echoes(self) -> bool {
        matches!(
            self,
            ServerKind::Echo
                | ServerKind::StartTlsLine
                | ServerKind::TlsEcho
                | ServerKind::ClosesMidStream
        )
    }
}

/// What a server received and sent, in application bytes (decrypted, under TLS).
#[derive(Debug, Default)]
pub struct ServerLog {
    /// Bytes received, in order, across connections.
    pub received: Vec<u8>,
    /// Bytes sent (or handed to TLS), in order.
    pub sent: Vec<u8>,
    /// Connections accepted.
    pub accepted: usize,
    /// Connections the client reset: a read met `ConnectionReset`.
    pub resets_seen: usize,
    /// Bytes received on each connection, in the order they were accepted (the preamble
    /// left out).
    pub connections: Vec<Vec<u8>>,
    /// Connections that did not begin with the preamble the server requires: what they
    /// began with instead.
    pub preamble_broken: Vec<String>,
}

impl ServerLog {
    /// Connection `connection` received `bytes`.
    fn took(&mut self, connection: usize, bytes: &[u8]) {
        self.received.extend_from_slice(bytes);
        if let Some(log) = self.connections.get_mut(connection) {
            log.extend_from_slice(bytes);
        }
    }
}

/// A log shared between the server and the test.
pub type SharedLog = Rc<RefCell<ServerLog>>;

/// Serves `kind` on [`PORT`], one connection after another, until the host is crashed or
/// the simulation ends. A connection the client entered in `wire` as reset ends, for the
/// server, in `ConnectionReset`; what the server reads is entered there as acknowledged.
pub async fn serve(
    kind: ServerKind,
    log: SharedLog,
    tls: Arc<ServerConfig>,
    wire: Wire,
) -> turmoil::Result {
    serve_on(IpAddr::V4(Ipv4Addr::UNSPECIFIED), kind, log, tls, wire).await
}

/// Like [`serve`], listening on `bind` (`::` on an IPv6 host).
pub async fn serve_on(
    bind: IpAddr,
    kind: ServerKind,
    log: SharedLog,
    tls: Arc<ServerConfig>,
    wire: Wire,
) -> turmoil::Result {
    serve_after_preamble(bind, kind, log, tls, wire, None).await
}

/// Like [`serve_on`], requiring every connection to begin with `preamble` (a login, a
/// `HELLO`): a connection that begins otherwise is entered in
/// [`ServerLog::preamble_broken`] and dropped, as a server that refuses requests before the
/// login would. The preamble is not entered as received.
pub async fn serve_after_preamble(
    bind: IpAddr,
    kind: ServerKind,
    log: SharedLog,
    tls: Arc<ServerConfig>,
    wire: Wire,
    preamble: Option<Vec<u8>>,
) -> turmoil::Result {
    let preamble: Rc<[u8]> = preamble.unwrap_or_default().into();
    let listener = Listener::bind((bind, PORT), wire).await?;
    // Each connection on a task of its own, as a real server would: one that hangs (a
    // silent server, a dead client) must not keep the next one waiting in the accept queue,
    // which turmoil bounds with a panic.
    let tasks = tokio::task::LocalSet::new();
    tasks
        .run_until(async move {
            loop {
                let (mut stream, _) = listener.accept().await?;
                let connection = {
                    let mut log = log.borrow_mut();
                    log.accepted += 1;
                    log.connections.push(Vec::new());
                    log.connections.len() - 1
                };
                let (log, tls, preamble) = (log.clone(), tls.clone(), preamble.clone());
                // Errors end this connection only.
                tokio::task::spawn_local(async move {
                    let ended = match expect_preamble(&mut stream, &preamble, &log).await {
                        Ok(true) => handle(kind, stream, &log, &tls, connection).await,
                        Ok(false) => stream.shutdown().await,
                        Err(e) => Err(e),
                    };
                    if matches!(&ended, Err(e) if e.kind() == ErrorKind::ConnectionReset) {
                        log.borrow_mut().resets_seen += 1;
                    }
                });
            }
        })
        .await
}

/// Reads the connection's first `preamble.len()` bytes (never more): `Ok(true)` if they are
/// the preamble, `Ok(false)` if the stream ended first, an error (and an entry in the log)
/// if they are something else.
async fn expect_preamble(
    stream: &mut ServerStream,
    preamble: &[u8],
    log: &SharedLog,
) -> std::io::Result<bool> {
    let mut got = vec![0u8; preamble.len()];
    let mut at = 0;
    while at < got.len() {
        let n = stream.read(&mut got[at..]).await?;
        if n == 0 {
            return Ok(false);
        }
        if got[at..at + n] != preamble[at..at + n] {
            let began = got[..at + n].to_vec();
            log.borrow_mut().preamble_broken.push(format!(
                "a connection began with {began:?}, not the preamble {preamble:?}"
            ));
            return Err(std::io::Error::other("no preamble"));
        }
        at += n;
    }
    Ok(true)
}

async fn handle(
    kind: ServerKind,
    mut stream: ServerStream,
    log: &SharedLog,
    tls: &Arc<ServerConfig>,
    connection: usize,
) -> std::io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    match kind {
        ServerKind::Echo | ServerKind::Sink | ServerKind::ClosesMidStream | ServerKind::Resets => {
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return stream.shutdown().await;
                }
                log.borrow_mut().took(connection, &buf[..n]);
                let struck = log.borrow().received.len() >= STRIKE_AFTER;
                match kind {
                    ServerKind::Resets if struck => {
                        // Wait for more to arrive, then drop it unread: turmoil answers with RST.
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        return Ok(());
                    }
                    ServerKind::Echo | ServerKind::ClosesMidStream => {
                        stream.write_all(&buf[..n]).await?;
                        log.borrow_mut().sent.extend_from_slice(&buf[..n]);
                        if kind == ServerKind::ClosesMidStream && struck {
                            return stream.shutdown().await;
                        }
                    }
                    _ => {}
                }
            }
        }
        ServerKind::SlowReader => loop {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let n = stream.read(&mut buf[..1024]).await?;
            if n == 0 {
                return stream.shutdown().await;
            }
            log.borrow_mut().took(connection, &buf[..n]);
        },
        ServerKind::Silent => std::future::pending().await,
        ServerKind::Flood => {
            // Made once per process: building a megabyte per run was a tenth of a sweep.
            static FLOOD: OnceLock<Vec<u8>> = OnceLock::new();
            let flood = FLOOD.get_or_init(|| (0..FLOOD_BYTES).map(|i| (i % 239) as u8).collect());
            for chunk in flood.chunks(buf.len()) {
                stream.write_all(chunk).await?;
                log.borrow_mut().sent.extend_from_slice(chunk);
            }
            stream.shutdown().await?;
            // Only now read, until the client's EOF: turmoil answers a FIN that reaches a
            // socket already dropped with a reset, where a kernel would still take it.
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    return Ok(());
                }
                log.borrow_mut().took(connection, &buf[..n]);
            }
        }
        ServerKind::Garbage => loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return stream.shutdown().await;
            }
            log.borrow_mut().took(connection, &buf[..n]);
            let garbage = b"HTTP/1.1 400 Bad Request\r\n\r\n";
            stream.write_all(garbage).await?;
            log.borrow_mut().sent.extend_from_slice(garbage);
        },
        ServerKind::TlsEcho => tls_echo(stream, tls, Vec::new(), log, connection).await,
        ServerKind::StartTlsLine => {
            let greeting = b"220 ready\r\n";
            stream.write_all(greeting).await?;
            log.borrow_mut().sent.extend_from_slice(greeting);
            let mut line = Vec::new();
            loop {
                let n = stream.read(&mut buf).await?;
                if n == 0 {
                    // What never made a line was received all the same.
                    log.borrow_mut().took(connection, &line);
                    return stream.shutdown().await;
                }
                line.extend_from_slice(&buf[..n]);
                if let Some(end) = line.windows(2).position(|w| w == b"\r\n") {
                    let rest = line.split_off(end + 2);
                    log.borrow_mut().took(connection, &line);
                    if line == b"STARTTLS\r\n" {
                        let go = b"220 go\r\n";
                        stream.write_all(go).await?;
                        log.borrow_mut().sent.extend_from_slice(go);
                        return tls_echo(stream, tls, rest, log, connection).await;
                    }
                    // An SMTP client's EHLO is answered as an SMTP server would, offering
                    // STARTTLS; any other line is told what to say.
                    let answer: &[u8] = match line.starts_with(b"EHLO ") {
                        true => b"250-ready\r\n250 STARTTLS\r\n",
                        false => b"500 say STARTTLS\r\n",
                    };
                    stream.write_all(answer).await?;
                    log.borrow_mut().sent.extend_from_slice(answer);
                    line = rest;
                }
            }
        }
    }
}

/// Echoes over TLS, driving a rustls `ServerConnection` by hand; `first` holds bytes already
/// read. Answers the client's `close_notify` with its own and a FIN.
async fn tls_echo(
    stream: ServerStream,
    config: &Arc<ServerConfig>,
    first: Vec<u8>,
    log: &SharedLog,
    connection: usize,
) -> std::io::Result<()> {
    let mut conn = ServerConnection::new(config.clone()).map_err(std::io::Error::other)?;
    conn.set_buffer_limit(None);
    let (mut reader, mut writer) = tokio::io::split(stream);
    let mut incoming = first;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let mut slice = &incoming[..];
        let mut closed = false;
        while !slice.is_empty() && !closed {
            if conn.read_tls(&mut slice)? == 0 {
                break;
            }
            let state = match conn.process_new_packets() {
                Ok(state) => state,
                Err(_) => {
                    flush(&mut conn, &mut writer).await?;
                    return Ok(());
                }
            };
            let mut plaintext = vec![0u8; state.plaintext_bytes_to_read()];
            conn.reader().read_exact(&mut plaintext)?;
            if !plaintext.is_empty() {
                log.borrow_mut().took(connection, &plaintext);
                conn.writer().write_all(&plaintext)?;
                log.borrow_mut().sent.extend_from_slice(&plaintext);
            }
            closed = state.peer_has_closed();
        }
        if closed {
            conn.send_close_notify();
            flush(&mut conn, &mut writer).await?;
            writer.shutdown().await?;
            // Keep the socket until the client's FIN: turmoil answers a FIN that reaches a
            // socket already dropped with a reset, where a kernel would still take it.
            while reader.read(&mut buf).await? > 0 {}
            return Ok(());
        }
        flush(&mut conn, &mut writer).await?;
        let n = reader.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        incoming = buf[..n].to_vec();
        // What else has arrived already is taken too before answering, as a server that
        // reads all it can before it writes does: the last echo and the close_notify can
        // then leave in one write, and reach the client in one read.
        while let Some(more) = read_now(&mut reader, &mut buf) {
            match more? {
                0 => break,
                more => incoming.extend_from_slice(&buf[..more]),
            }
        }
    }
}

/// One read, if bytes (or the end of the stream) are there already; `None` if it would
/// wait. The next read that waits registers the task's waker again.
fn read_now(
    reader: &mut (impl AsyncRead + Unpin),
    buf: &mut [u8],
) -> Option<std::io::Result<usize>> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut read = ReadBuf::new(buf);
    match std::pin::Pin::new(reader).poll_read(&mut cx, &mut read) {
        std::task::Poll::Ready(done) => Some(done.map(|()| read.filled().len())),
        std::task::Poll::Pending => None,
    }
}

async fn flush(
    conn: &mut ServerConnection,
    writer: &mut (impl AsyncWrite + Unpin),
) -> std::io::Result<()> {
    while conn.wants_write() {
        let mut out = Vec::new();
        conn.write_tls(&mut out)?;
        writer.write_all(&out).await?;
    }
    Ok(())
}
