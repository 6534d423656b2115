//! Ours on tokio (`tcpclient-tokio`): the same jobs as the other contenders, through the
//! driver users run on tokio, on the same current-thread runtime as tokio's own rows.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tcpclient_core::{Config, TlsConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clients::{at, config};

async fn connect(
    destination: tcpclient_core::Destination,
    config: impl Into<Arc<Config>>,
) -> io::Result<tcpclient_tokio::Connection> {
    Ok(tcpclient_tokio::connect(destination, config).await?)
}

/// A clean close, or the report as the error.
async fn closed_cleanly(conn: &mut tcpclient_tokio::Connection) -> io::Result<()> {
    match conn.closed().await {
        Some(report) if report.is_clean() => Ok(()),
        Some(report) => Err(io::Error::other(report.to_string())),
        None => Err(io::Error::other("the driver stopped")),
    }
}

/// `count` sends of `message` (the same `Bytes`, no copy), then a graceful close.
pub fn send(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    tls: Option<&TlsConfig>,
    message: &Bytes,
    count: usize,
) -> io::Result<()> {
    rt.block_on(async {
        let mut conn = connect(at(addr), config(tls)).await?;
        if tls.is_some() {
            conn.start_tls().map_err(io::Error::other)?;
            conn.tls_established().await.map_err(io::Error::other)?;
        }
        for _ in 0..count {
            conn.send_all(message.clone())
                .await
                .map_err(io::Error::other)?;
        }
        conn.shutdown().await?;
        closed_cleanly(&mut conn).await
    })
}

/// Sends `count` messages and reads the echo of all of them.
pub fn echo(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    message: &Bytes,
    count: usize,
) -> io::Result<()> {
    rt.block_on(async {
        let mut conn = connect(at(addr), config(None)).await?;
        let sender = conn.sender();
        let expected = message.len() * count;
        let send = async {
            for _ in 0..count {
                sender
                    .send_all(message.clone())
                    .await
                    .map_err(io::Error::other)?;
            }
            sender.finish().map_err(io::Error::other)
        };
        let receive = async {
            let mut buf = vec![0u8; 256 * 1024];
            let mut received = 0;
            while received < expected {
                match conn.read(&mut buf).await? {
                    0 => break,
                    n => received += n,
                }
            }
            io::Result::Ok(received)
        };
        let (sent, received) = tokio::join!(send, receive);
        sent?;
        if received? != expected {
            return Err(io::Error::other("the echo came back short"));
        }
        closed_cleanly(&mut conn).await
    })
}

/// `n` × (connect, 16-byte request, response, close), one after another.
pub fn connections(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    tls: Option<&TlsConfig>,
    n: usize,
) -> io::Result<f64> {
    rt.block_on(async {
        let policy = Arc::new(config(tls));
        let start = Instant::now();
        let mut response = [0u8; 16];
        for _ in 0..n {
            let mut conn = connect(at(addr), policy.clone()).await?;
            if tls.is_some() {
                conn.start_tls().map_err(io::Error::other)?;
                conn.tls_established().await.map_err(io::Error::other)?;
            }
            conn.write_all(crate::connections::REQUEST).await?;
            conn.read_exact(&mut response).await?;
            conn.shutdown().await?;
            closed_cleanly(&mut conn).await?;
        }
        Ok(n as f64 / start.elapsed().as_secs_f64())
    })
}

/// `n` idle connections, each with its driver task: resident bytes per connection.
pub fn idle(addr: SocketAddr, n: usize, resident_bytes: fn() -> i64) -> io::Result<f64> {
    let rt = crate::clients::runtime()?;
    rt.block_on(async {
        tokio::task::yield_now().await;
        let before = resident_bytes();
        let config = Arc::new(Config::new());
        let connected = Arc::new(AtomicUsize::new(0));
        let mut held = Vec::with_capacity(n);
        for _ in 0..n {
            let (config, connected) = (config.clone(), connected.clone());
            held.push(tokio::spawn(async move {
                let conn = tcpclient_tokio::connect(addr, config).await;
                connected.fetch_add(1, Ordering::Relaxed);
                // Held open until the measurement is done.
                std::future::pending::<()>().await;
                drop(conn);
            }));
        }
        while connected.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok((resident_bytes() - before) as f64 / n as f64)
    })
}
