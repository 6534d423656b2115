//! Connections per second: connect, one 16-byte request and response, graceful close.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use tcpclient_core::{Event, TlsConfig};
use tcpclient_polling::EventLoop;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clients::{at, config};

pub const REQUEST: &[u8; 16] = b"0123456789abcdef";

fn rate(n: usize, start: Instant) -> f64 {
    n as f64 / start.elapsed().as_secs_f64()
}

/// Ours: one loop, one connection after another; waits for the response, then finishes.
pub fn ours(addr: SocketAddr, tls: Option<&TlsConfig>, n: usize) -> io::Result<f64> {
    let mut event_loop = EventLoop::new()?;
    // One policy for every connection, as a program holds it (a `Config` is 368 bytes).
    let policy = Arc::new(config(tls));
    let start = Instant::now();
    for _ in 0..n {
        let id = event_loop.connect(at(addr), policy.clone());
        if tls.is_some() {
            event_loop.start_tls(id).map_err(io::Error::other)?;
        }
        event_loop
            .send(id, Bytes::from_static(REQUEST))
            .map_err(io::Error::other)?;
        let mut received = 0;
        let mut finished = false;
        'connection: loop {
            event_loop.turn(None)?;
            while let Some((_, event)) = event_loop.poll_event() {
                match event {
                    Event::Data(data) => received += data.len(),
                    Event::Closed(report) if report.is_clean() => break 'connection,
                    Event::Closed(report) => return Err(io::Error::other(report.to_string())),
                    _ => {}
                }
            }
            if received >= REQUEST.len() && !finished {
                finished = true;
                event_loop.finish(id).map_err(io::Error::other)?;
            }
        }
    }
    Ok(rate(n, start))
}

/// std, blocking: connect, write, read the response, shut down, read to EOF.
pub fn std(addr: SocketAddr, tls: Option<&Arc<ClientConfig>>, n: usize) -> io::Result<f64> {
    let start = Instant::now();
    let mut response = [0u8; 16];
    for _ in 0..n {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        match tls {
            None => {
                let mut stream = stream;
                stream.write_all(REQUEST)?;
                stream.read_exact(&mut response)?;
                stream.shutdown(Shutdown::Write)?;
                while stream.read(&mut response)? > 0 {}
            }
            Some(config) => {
                let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
                let conn = ClientConnection::new(config.clone(), name).map_err(io::Error::other)?;
                let mut tls = StreamOwned::new(conn, stream);
                tls.write_all(REQUEST)?;
                tls.read_exact(&mut response)?;
                tls.conn.send_close_notify();
                tls.flush()?;
                tls.sock.shutdown(Shutdown::Write)?;
                while tls.read(&mut response).unwrap_or(0) > 0 {}
            }
        }
    }
    Ok(rate(n, start))
}

/// tokio, one task: the same steps.
pub fn tokio(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    tls: Option<&Arc<ClientConfig>>,
    n: usize,
) -> io::Result<f64> {
    rt.block_on(async {
        let start = Instant::now();
        let mut response = [0u8; 16];
        for _ in 0..n {
            let mut stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            match tls {
                None => {
                    stream.write_all(REQUEST).await?;
                    stream.read_exact(&mut response).await?;
                    stream.shutdown().await?;
                    while stream.read(&mut response).await? > 0 {}
                }
                Some(config) => {
                    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
                    let mut tls = tokio_rustls::TlsConnector::from(config.clone())
                        .connect(name, stream)
                        .await?;
                    tls.write_all(REQUEST).await?;
                    tls.read_exact(&mut response).await?;
                    tls.shutdown().await?;
                    while tls.read(&mut response).await.unwrap_or(0) > 0 {}
                }
            }
        }
        Ok(rate(n, start))
    })
}
