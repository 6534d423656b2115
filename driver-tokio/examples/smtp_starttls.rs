//! An SMTP client that upgrades to TLS with STARTTLS, on `tokio_util`'s `Framed` lines:
//!
//! ```sh
//! cargo run -p tcpclient-tokio --example smtp_starttls -- smtp.example.org 587
//! ```
//!
//! Certificates are checked against the Mozilla roots (the `webpki-roots` crate). (`tests/examples.rs` runs the same
//! session against a local server that trusts its own CA.)

use futures_util::{SinkExt, StreamExt};
use tcpclient_core::{Config, TlsConfig, tls};
use tokio_util::codec::{Framed, LinesCodec};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// EHLO, STARTTLS, EHLO again over TLS, QUIT; returns the server's last reply.
pub async fn session(host: &str, port: u16, tls: TlsConfig) -> Result<String, Error> {
    let mut conn = tcpclient_tokio::connect((host, port), Config::new().with_tls(tls)).await?;
    let mut lines = Framed::new(&mut conn, LinesCodec::new());
    reply(&mut lines, "220").await?;
    lines.send("EHLO client.example").await?;
    reply(&mut lines, "250").await?;
    lines.send("STARTTLS").await?;
    reply(&mut lines, "220").await?;
    drop(lines);
    conn.start_tls()?;
    let info = conn.tls_established().await?;
    println!("TLS: {info}");
    let mut lines = Framed::new(&mut conn, LinesCodec::new());
    lines.send("EHLO client.example").await?;
    let last = reply(&mut lines, "250").await?;
    lines.send("QUIT").await?;
    Ok(last)
}

/// Reads one reply (its continuation lines `NNN-...` too); it must start with `code`.
async fn reply<T>(lines: &mut Framed<T, LinesCodec>, code: &str) -> Result<String, Error>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    loop {
        let line = lines.next().await.ok_or("the server closed")??;
        println!("S: {line}");
        if !line.starts_with(code) {
            return Err(format!("expected {code}, got {line}").into());
        }
        if line.as_bytes().get(3) != Some(&b'-') {
            return Ok(line);
        }
    }
}

#[tokio::main(flavor = "current_thread")]
#[allow(dead_code)]
async fn main() -> Result<(), Error> {
    let mut args = std::env::args().skip(1);
    let host = args.next().ok_or("usage: smtp_starttls HOST PORT")?;
    let port = args
        .next()
        .ok_or("usage: smtp_starttls HOST PORT")?
        .parse()?;
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let config = tls::client_config(roots, &[])?;
    // The certificate is checked against the host name (the destination's).
    session(&host, port, TlsConfig::new(config)).await?;
    Ok(())
}
