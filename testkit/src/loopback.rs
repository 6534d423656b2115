//! Real servers on 127.0.0.1 for the drivers' tests: each on a thread, each connection on a
//! thread of its own, with read timeouts so that no test can hang on one.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use rustls::{ServerConfig, ServerConnection, StreamOwned};

/// No server socket waits longer than this for the client.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Binds 127.0.0.1 on a free port and serves each connection with `serve` on its own thread.
pub fn serve<F>(serve: F) -> SocketAddr
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    serve_on("127.0.0.1:0", serve)
}

/// Like [`serve`], on `addr` (`"[::1]:0"` for IPv6 loopback).
pub fn serve_on<F>(addr: &str, serve: F) -> SocketAddr
where
    F: Fn(TcpStream) + Send + Sync + 'static,
{
    let listener = TcpListener::bind(addr).expect("bind");
    let addr = listener.local_addr().expect("addr");
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
            let serve = serve.clone();
            std::thread::spawn(move || serve(stream));
        }
    });
    addr
}

/// A port where SYNs go unanswered, as on a black-holed route: a listener whose accept
/// queue is full. The hole lasts as long as this value.
pub struct BlackHole {
    /// The address to connect to (and never get an answer from).
    pub addr: SocketAddr,
    _sockets: Vec<socket2::Socket>,
}

/// Makes a [`BlackHole`] at `bind` (port 0 for any free port; `[::1]` for IPv6).
pub fn black_hole(bind: SocketAddr) -> std::io::Result<BlackHole> {
    use socket2::{Domain, Socket, Type};
    let listener = Socket::new(Domain::for_address(bind), Type::STREAM, None)?;
    if bind.is_ipv6() {
        listener.set_only_v6(true)?;
    }
    listener.bind(&bind.into())?;
    listener.listen(0)?;
    let addr = listener
        .local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::other("the listener has no address"))?;
    let mut sockets = vec![listener];
    for _ in 0..4 {
        let filler = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
        filler.set_nonblocking(true)?;
        let _ = filler.connect(&addr.into());
        sockets.push(filler);
    }
    // Until the fillers' handshakes are done, the queue is not full yet.
    std::thread::sleep(Duration::from_millis(200));
    Ok(BlackHole {
        addr,
        _sockets: sockets,
    })
}

/// A port on 127.0.0.1 that nothing listens on (it was free a moment ago).
pub fn unused_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// Echoes every byte until EOF, then closes its side.
pub fn echo_server() -> SocketAddr {
    serve(|mut stream| {
        let mut reader = stream.try_clone().expect("clone");
        let _ = std::io::copy(&mut reader, &mut stream);
        let _ = stream.shutdown(Shutdown::Write);
    })
}

/// Echoes over TLS from the first byte; answers the client's `close_notify` with its own.
pub fn tls_echo_server(config: Arc<ServerConfig>) -> SocketAddr {
    tls_echo_server_on("127.0.0.1:0", config)
}

/// Like [`tls_echo_server`], on `addr`.
pub fn tls_echo_server_on(addr: &str, config: Arc<ServerConfig>) -> SocketAddr {
    serve_on(addr, move |stream| tls_echo(stream, config.clone()))
}

/// Serves TLS on an accepted `stream` (after any plaintext dialogue): echoes, then answers
/// the client's `close_notify` with its own and a FIN.
pub fn tls_echo(stream: TcpStream, config: Arc<ServerConfig>) {
    let conn = ServerConnection::new(config).expect("server connection");
    let mut tls = StreamOwned::new(conn, stream);
    let mut buf = [0u8; 16 * 1024];
    while let Ok(n) = tls.read(&mut buf) {
        if n == 0 || tls.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    tls.conn.send_close_notify();
    let _ = tls.flush();
    let _ = tls.sock.shutdown(Shutdown::Write);
}

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

/// A server that offers STARTTLS the way `protocol` (smtp, imap, pop3, ftp, lmtp, nntp,
/// sieve, xmpp) does:
/// greeting, capability exchange, the STARTTLS command and its go-ahead; then it echoes
/// lines over TLS as `250 <line>`. With `inject`, the go-ahead carries extra plaintext in
/// the same write: a STARTTLS command injection.
pub fn starttls_server(
    protocol: &'static str,
    config: Arc<ServerConfig>,
    inject: bool,
) -> SocketAddr {
    serve(move |mut stream| {
        if protocol == "xmpp" {
            if !xmpp_until_proceed(&mut stream, inject) {
                return;
            }
        } else if !lines_until_go_ahead(&mut stream, protocol, inject) {
            return;
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

/// XMPP's opening (RFC 6120): the client's stream header, the server's header and features
/// offering starttls, the client's starttls element, `<proceed/>`. Returns whether TLS is
/// next.
fn xmpp_until_proceed(stream: &mut TcpStream, inject: bool) -> bool {
    if read_until(stream, b"'http://etherx.jabber.org/streams'>").is_none() {
        return false;
    }
    let _ = stream.write_all(
        b"<?xml version='1.0'?><stream:stream from='xmpp.test' id='1' version='1.0' \
          xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>\
          <stream:features><starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'><required/>\
          </starttls></stream:features>",
    );
    if read_until(stream, b"/>").is_none() {
        return false;
    }
    let proceed: &[u8] = b"<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>";
    let injected: &[u8] = if inject {
        b"<message>injected</message>"
    } else {
        b""
    };
    stream.write_all(&[proceed, injected].concat()).is_ok()
}

/// Reads byte by byte until what was read ends with `end`.
fn read_until(stream: &mut TcpStream, end: &[u8]) -> Option<Vec<u8>> {
    let mut read = Vec::new();
    let mut byte = [0u8; 1];
    while !read.ends_with(end) {
        stream.read_exact(&mut byte).ok()?;
        read.push(byte[0]);
        if read.len() > 64 * 1024 {
            return None;
        }
    }
    Some(read)
}

/// The line protocols' greeting, capability exchange and STARTTLS command, up to the
/// go-ahead. Returns whether TLS is next.
fn lines_until_go_ahead(stream: &mut TcpStream, protocol: &str, inject: bool) -> bool {
    {
        let greeting: &[u8] = match protocol {
            "smtp" => b"220-smtp.test ESMTP\r\n220 ready\r\n",
            "imap" => b"* OK IMAP4rev1 ready\r\n",
            "pop3" => b"+OK POP3 ready\r\n",
            "lmtp" => b"220 lmtp.test LMTP ready\r\n",
            "nntp" => b"200 news.test ready, posting allowed\r\n",
            "sieve" => b"\"IMPLEMENTATION\" \"test\"\r\n\"SIEVE\" \"fileinto\"\r\n\"STARTTLS\"\r\nOK \"ready\"\r\n",
            _ => b"220-welcome\r\n220 ftp ready\r\n",
        };
        let _ = stream.write_all(greeting);
        loop {
            let Some(line) = read_line(stream) else {
                return false;
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
                ("lmtp", l) if l.starts_with("LHLO") => {
                    b"250-lmtp.test\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
                }
                ("lmtp", "STARTTLS") => b"220 go ahead\r\n",
                ("nntp", "STARTTLS") => b"382 continue with TLS negotiation\r\n",
                ("sieve", "STARTTLS") => b"OK \"begin TLS negotiation now\"\r\n",
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
                return true;
            }
        }
    }
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
