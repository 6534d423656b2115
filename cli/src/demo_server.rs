//! The embedded demo server behind `tcpclient demo`: a small line protocol with STARTTLS on
//! 127.0.0.1, presenting a certificate from a CA made on the spot with rcgen.
//!
//! The protocol, one command per line:
//!
//! | client | server |
//! |---|---|
//! | (connects) | `220 tcpclient demo server ready` |
//! | `ECHO <text>` | `250 <text>` |
//! | `STARTTLS` | `220 ready to start TLS`, then the TLS handshake |
//! | `QUIT` | `221 bye`, then it closes (with `close_notify` under TLS) |
//! | (EOF) | it closes (with `close_notify` under TLS) |
//! | anything else | `500 unknown command` |

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use tcpclient_core::{Destination, TlsConfig, tls};

/// A running demo server. It serves every connection on a thread of its own until the
/// process ends.
pub struct DemoServer {
    addr: SocketAddr,
    ca_pem: String,
}

impl DemoServer {
    /// Makes a CA and a certificate for `localhost`, binds 127.0.0.1 on a free port, and
    /// starts serving.
    pub fn start() -> io::Result<Self> {
        let (ca_pem, config) = certificates().map_err(io::Error::other)?;
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let config = config.clone();
                std::thread::spawn(move || serve(stream, config));
            }
        });
        Ok(Self { addr, ca_pem })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A verifying client TLS configuration that trusts only this server's CA.
    pub fn client_tls(&self) -> Result<TlsConfig, tcpclient_core::TlsError> {
        let roots = tls::roots_from_pem(self.ca_pem.as_bytes())?;
        let config = tls::client_config(roots, &[])?;
        Ok(TlsConfig::new(config))
    }

    /// The server as a client reaches it: its address, its certificate checked for
    /// `localhost` (the name the certificate carries).
    pub fn destination(&self) -> Destination {
        let server = Destination::from(self.addr());
        match ServerName::try_from("localhost") {
            Ok(name) => server.with_server_name(name),
            Err(_) => server,
        }
    }
}

/// A fresh CA, and a server configuration presenting a certificate it signed.
fn certificates() -> Result<(String, Arc<ServerConfig>), Box<dyn std::error::Error + Send + Sync>> {
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "tcpclient demo CA");
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    let cert = leaf.signed_by(&key, &issuer)?;

    let config = ServerConfig::builder_with_provider(tls::default_provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    Ok((ca_cert.pem(), Arc::new(config)))
}

/// Serves one connection: plaintext lines, then (after STARTTLS) lines over TLS.
fn serve(mut stream: TcpStream, config: Arc<ServerConfig>) -> io::Result<()> {
    stream.write_all(b"220 tcpclient demo server ready\r\n")?;
    // Read the plaintext part a byte at a time: a buffered reader could swallow the start
    // of the ClientHello that follows STARTTLS.
    while let Some(line) = read_line_unbuffered(&mut stream)? {
        match reply(&line) {
            Reply::Line(text) => stream.write_all(text.as_bytes())?,
            Reply::Quit(text) => {
                stream.write_all(text.as_bytes())?;
                return stream.shutdown(Shutdown::Write);
            }
            Reply::StartTls => {
                stream.write_all(b"220 ready to start TLS\r\n")?;
                let conn = ServerConnection::new(config).map_err(io::Error::other)?;
                return serve_tls(StreamOwned::new(conn, stream));
            }
        }
    }
    stream.shutdown(Shutdown::Write)
}

fn serve_tls(stream: StreamOwned<ServerConnection, TcpStream>) -> io::Result<()> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        // A clean close_notify reads as 0; a TCP EOF without it is an error: both end here.
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let stream = reader.get_mut();
        match reply(line.trim_end()) {
            Reply::Line(text) => stream.write_all(text.as_bytes())?,
            Reply::Quit(text) => {
                stream.write_all(text.as_bytes())?;
                break;
            }
            Reply::StartTls => stream.write_all(b"503 TLS is already on\r\n")?,
        }
    }
    let stream = reader.get_mut();
    stream.conn.send_close_notify();
    stream.flush()?;
    stream.sock.shutdown(Shutdown::Write)
}

enum Reply {
    Line(String),
    Quit(String),
    StartTls,
}

fn reply(line: &str) -> Reply {
    let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
    match command.to_ascii_uppercase().as_str() {
        "ECHO" => Reply::Line(format!("250 {rest}\r\n")),
        "STARTTLS" => Reply::StartTls,
        "QUIT" => Reply::Quit("221 bye\r\n".into()),
        _ => Reply::Line("500 unknown command\r\n".into()),
    }
}

/// Reads one line (without its CRLF) a byte at a time; `None` at EOF.
fn read_line_unbuffered(stream: &mut TcpStream) -> io::Result<Option<String>> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if stream.read(&mut byte)? == 0 {
            return Ok(None);
        }
        if byte[0] == b'\n' {
            let text = String::from_utf8_lossy(&line);
            return Ok(Some(text.trim_end_matches('\r').to_string()));
        }
        line.push(byte[0]);
    }
}
