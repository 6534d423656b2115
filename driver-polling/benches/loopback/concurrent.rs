//! Many clients at once: each connects, has `size` bytes echoed, and closes gracefully, all
//! in flight together. Where an event loop should shine: one thread, many sockets.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use tcpclient_core::Event;
use tcpclient_polling::EventLoop;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clients::{at, config};

fn rate(n: usize, start: Instant) -> f64 {
    n as f64 / start.elapsed().as_secs_f64()
}

fn short(got: usize, size: usize) -> io::Error {
    io::Error::other(format!("{got} of {size} bytes came back"))
}

/// Ours: `n` connections on one `EventLoop`, started together, each sending its message and
/// finishing at once (the core sends, then closes, then reads the echo to the server's end).
pub fn ours(addr: SocketAddr, n: usize, size: usize) -> io::Result<f64> {
    let message = Bytes::from(vec![5u8; size]);
    let shared = Arc::new(config(None));
    let mut event_loop = EventLoop::new()?;
    let start = Instant::now();
    let mut echoed = HashMap::with_capacity(n);
    for _ in 0..n {
        let id = event_loop.connect(at(addr), shared.clone());
        event_loop
            .send(id, message.clone())
            .map_err(io::Error::other)?;
        event_loop.finish(id).map_err(io::Error::other)?;
        echoed.insert(id, 0usize);
    }
    let mut open = n;
    while open > 0 {
        event_loop.turn(None)?;
        while let Some((id, event)) = event_loop.poll_event() {
            match event {
                Event::Data(data) => {
                    *echoed.entry(id).or_default() += data.len();
                    event_loop
                        .consumed(id, data.len())
                        .map_err(io::Error::other)?;
                }
                Event::Closed(report) if report.is_clean() => {
                    let got = echoed.get(&id).copied().unwrap_or(0);
                    if got != size {
                        return Err(short(got, size));
                    }
                    open -= 1;
                }
                Event::Closed(report) => return Err(io::Error::other(report.to_string())),
                _ => {}
            }
        }
    }
    Ok(rate(n, start))
}

/// Ours on tokio: a task per connection, each with its driver task.
pub fn ours_on_tokio(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    n: usize,
    size: usize,
) -> io::Result<f64> {
    let message = Bytes::from(vec![5u8; size]);
    let shared = Arc::new(config(None));
    rt.block_on(async {
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let (config, message) = (shared.clone(), message.clone());
            tasks.spawn(async move {
                let mut conn = tcpclient_tokio::connect(at(addr), config).await?;
                conn.send_all(message).await.map_err(io::Error::other)?;
                conn.shutdown().await?;
                let mut echo = Vec::with_capacity(size);
                conn.read_to_end(&mut echo).await?;
                if echo.len() != size {
                    return Err(short(echo.len(), size));
                }
                match conn.closed().await {
                    Some(report) if report.is_clean() => Ok(()),
                    Some(report) => Err(io::Error::other(report.to_string())),
                    None => Err(io::Error::other("the driver stopped")),
                }
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(io::Error::other)??;
        }
        Ok(rate(n, start))
    })
}

/// tokio: a task per connection; each writes its message while reading the echo, shuts
/// its sending side down, and reads to the server's end.
pub fn tokio(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    n: usize,
    size: usize,
) -> io::Result<f64> {
    let message: Arc<[u8]> = vec![5u8; size].into();
    rt.block_on(async {
        let start = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..n {
            let message = message.clone();
            tasks.spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await?;
                stream.set_nodelay(true)?;
                let (mut reader, mut writer) = stream.into_split();
                let send = async {
                    writer.write_all(&message).await?;
                    writer.shutdown().await
                };
                let mut echo = Vec::with_capacity(size);
                let (sent, read) = tokio::join!(send, reader.read_to_end(&mut echo));
                sent?;
                read?;
                if echo.len() != size {
                    return Err(short(echo.len(), size));
                }
                io::Result::Ok(())
            });
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(io::Error::other)??;
        }
        Ok(rate(n, start))
    })
}

/// tokio's multi-thread runtime (its worker threads share the clients' core, as every
/// contender's client threads do).
pub fn multi_thread_runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
}
