//! The same jobs done by each contender: ours (the polling driver), std, tokio, and their
//! TLS counterparts. Each ends with a graceful close and waits for the server's.

use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;

use bytes::Bytes;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};
use tcpclient_core::{Config, Destination, Event, InvalidInput, TlsConfig};
use tcpclient_polling::{ConnId, EventLoop};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The server at `addr`, its certificate checked for `localhost`.
pub fn at(addr: SocketAddr) -> Destination {
    let server = Destination::from(addr);
    match ServerName::try_from("localhost") {
        Ok(name) => server.with_server_name(name),
        Err(_) => server,
    }
}

pub fn config(tls: Option<&TlsConfig>) -> Config {
    let config = Config::new();
    match tls {
        Some(tls) => config.with_tls(tls.clone()),
        None => config,
    }
}

fn failed(what: impl std::fmt::Display) -> io::Error {
    io::Error::other(what.to_string())
}

/// Turns until connection `id` closes; returns the bytes it received. Errors if unclean.
fn until_closed(
    event_loop: &mut EventLoop,
    id: ConnId,
    mut on_data: impl FnMut(&Bytes),
) -> io::Result<()> {
    loop {
        while let Some((from, event)) = event_loop.poll_event() {
            match event {
                Event::Data(data) if from == id => {
                    on_data(&data);
                    event_loop.consumed(id, data.len()).map_err(failed)?;
                }
                Event::Closed(report) if from == id => {
                    return if report.is_clean() {
                        Ok(())
                    } else {
                        Err(failed(report))
                    };
                }
                _ => {}
            }
        }
        event_loop.turn(None)?;
    }
}

/// Ours: `count` copied sends of `message` (`send_slice`: no `Bytes` per message), then a
/// graceful close.
pub fn ours_send_slice(addr: SocketAddr, message: &[u8], count: usize) -> io::Result<()> {
    let mut event_loop = EventLoop::new()?;
    let id = event_loop.connect(at(addr), config(None));
    let mut left = count;
    while left > 0 {
        match event_loop.send_slice(id, message) {
            Ok(()) => left -= 1,
            Err(InvalidInput::QueueFull { .. }) => event_loop.turn(None)?,
            Err(other) => return Err(failed(other)),
        }
    }
    event_loop.finish(id).map_err(failed)?;
    until_closed(&mut event_loop, id, |_| {})
}

/// Ours: `count` sends of `message`, one `Send` each, then a graceful close.
pub fn ours_send(
    addr: SocketAddr,
    tls: Option<&TlsConfig>,
    message: &Bytes,
    count: usize,
) -> io::Result<()> {
    let mut event_loop = EventLoop::new()?;
    let id = event_loop.connect(at(addr), config(tls));
    if tls.is_some() {
        event_loop.start_tls(id).map_err(failed)?;
    }
    let mut left = count;
    while left > 0 {
        match event_loop.send(id, message.clone()) {
            Ok(()) => left -= 1,
            Err(InvalidInput::QueueFull { .. }) => event_loop.turn(None)?,
            Err(other) => return Err(failed(other)),
        }
    }
    event_loop.finish(id).map_err(failed)?;
    until_closed(&mut event_loop, id, |_| {})
}

/// Ours: sends `count` messages and reads the echo of all of them.
pub fn ours_echo(addr: SocketAddr, message: &Bytes, count: usize) -> io::Result<()> {
    let mut event_loop = EventLoop::new()?;
    let id = event_loop.connect(at(addr), config(None));
    let expected = (message.len() * count) as u64;
    let mut received = 0u64;
    let mut left = count;
    while left > 0 {
        match event_loop.send(id, message.clone()) {
            Ok(()) => left -= 1,
            Err(InvalidInput::QueueFull { .. }) => {
                event_loop.turn(None)?;
                while let Some((from, event)) = event_loop.poll_event() {
                    if let Event::Data(data) = event {
                        received += data.len() as u64;
                        event_loop.consumed(from, data.len()).map_err(failed)?;
                    }
                }
            }
            Err(other) => return Err(failed(other)),
        }
    }
    event_loop.finish(id).map_err(failed)?;
    until_closed(&mut event_loop, id, |data| received += data.len() as u64)?;
    if received != expected {
        return Err(failed(format!("echoed {received} of {expected}")));
    }
    Ok(())
}

/// std: one `write_all` per message (through a `BufWriter` of `buffer` bytes if given).
pub fn std_send(
    addr: SocketAddr,
    message: &[u8],
    count: usize,
    buffer: Option<usize>,
) -> io::Result<()> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut reader = stream.try_clone()?;
    match buffer {
        None => {
            let mut stream = &stream;
            for _ in 0..count {
                stream.write_all(message)?;
            }
        }
        Some(capacity) => {
            let mut writer = BufWriter::with_capacity(capacity, &stream);
            for _ in 0..count {
                writer.write_all(message)?;
            }
            writer.flush()?;
        }
    }
    stream.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest)?;
    Ok(())
}

/// std: a writer thread and a reader, as echo clients are written with blocking sockets.
pub fn std_echo(addr: SocketAddr, message: &[u8], count: usize) -> io::Result<()> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut writer = stream.try_clone()?;
    let message = message.to_vec();
    let sender = std::thread::spawn(move || -> io::Result<()> {
        for _ in 0..count {
            writer.write_all(&message)?;
        }
        writer.shutdown(Shutdown::Write)
    });
    let mut reader = &stream;
    let mut buf = vec![0u8; 256 * 1024];
    let mut received = 0;
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            break;
        }
        received += n;
    }
    sender.join().map_err(|_| failed("writer panicked"))??;
    let _ = received;
    Ok(())
}

/// rustls `StreamOwned` over a std socket: one `write_all` per message.
pub fn rustls_std_send(
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    message: &[u8],
    count: usize,
) -> io::Result<()> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").map_err(failed)?;
    let mut tls = StreamOwned::new(
        ClientConnection::new(config.clone(), name).map_err(failed)?,
        stream,
    );
    for _ in 0..count {
        tls.write_all(message)?;
    }
    tls.conn.send_close_notify();
    tls.flush()?;
    tls.sock.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    let _ = tls.read_to_end(&mut rest);
    Ok(())
}

/// A single-threaded tokio runtime, as one event loop is ours.
pub fn runtime() -> io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
}

/// tokio: one `write_all` per message (through a `BufWriter` of `buffer` bytes if given).
pub fn tokio_send(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    message: &[u8],
    count: usize,
    buffer: Option<usize>,
) -> io::Result<()> {
    rt.block_on(async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        match buffer {
            None => {
                for _ in 0..count {
                    stream.write_all(message).await?;
                }
            }
            Some(capacity) => {
                let mut writer = tokio::io::BufWriter::with_capacity(capacity, &mut stream);
                for _ in 0..count {
                    writer.write_all(message).await?;
                }
                writer.flush().await?;
            }
        }
        stream.shutdown().await?;
        let mut rest = Vec::new();
        stream.read_to_end(&mut rest).await?;
        Ok(())
    })
}

/// tokio: write and read halves joined on one task.
pub fn tokio_echo(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    message: &[u8],
    count: usize,
) -> io::Result<()> {
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let (mut reader, mut writer) = stream.into_split();
        let send = async {
            for _ in 0..count {
                writer.write_all(message).await?;
            }
            writer.shutdown().await
        };
        let receive = async {
            let mut buf = vec![0u8; 256 * 1024];
            while reader.read(&mut buf).await? > 0 {}
            io::Result::Ok(())
        };
        let (sent, received) = tokio::join!(send, receive);
        sent.and(received)
    })
}

/// tokio-rustls: one `write_all` per message.
pub fn tokio_rustls_send(
    rt: &tokio::runtime::Runtime,
    addr: SocketAddr,
    config: &Arc<ClientConfig>,
    message: &[u8],
    count: usize,
) -> io::Result<()> {
    rt.block_on(async {
        let stream = tokio::net::TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        let name = ServerName::try_from("localhost").map_err(failed)?;
        let mut tls = tokio_rustls::TlsConnector::from(config.clone())
            .connect(name, stream)
            .await?;
        for _ in 0..count {
            tls.write_all(message).await?;
        }
        tls.shutdown().await?;
        let mut rest = Vec::new();
        let _ = tls.read_to_end(&mut rest).await;
        Ok(())
    })
}

/// Gathering alone: `writev` of `batch` separate message buffers per call, no copying. What
/// a driver that only gathers queued buffers could reach at best.
pub fn std_writev(addr: SocketAddr, message: &[u8], count: usize, batch: usize) -> io::Result<()> {
    let stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut reader = stream.try_clone()?;
    let mut stream = &stream;
    let slices: Vec<std::io::IoSlice<'_>> =
        (0..batch).map(|_| std::io::IoSlice::new(message)).collect();
    let mut left = count;
    while left > 0 {
        let n = left.min(batch);
        let mut bufs = slices[..n].to_vec();
        let mut bufs = &mut bufs[..];
        while !bufs.is_empty() {
            let written = stream.write_vectored(bufs)?;
            std::io::IoSlice::advance_slices(&mut bufs, written);
        }
        left -= n;
    }
    stream.shutdown(Shutdown::Write)?;
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest)?;
    Ok(())
}

/// The read buffer of the receive contenders: the polling driver's own read size.
const RECEIVE_BUFFER: usize = 64 * 1024;

/// Ours: reads until the server's EOF, reporting each `Data` consumed as it comes; returns
/// the bytes received.
pub fn ours_receive(addr: SocketAddr) -> io::Result<u64> {
    let mut event_loop = EventLoop::new()?;
    let id = event_loop.connect(at(addr), config(None));
    let mut received = 0u64;
    until_closed(&mut event_loop, id, |data| received += data.len() as u64)?;
    Ok(received)
}

/// std: a blocking read loop until EOF; returns the bytes received.
pub fn std_receive(addr: SocketAddr) -> io::Result<u64> {
    let mut stream = TcpStream::connect(addr)?;
    let mut buf = vec![0u8; RECEIVE_BUFFER];
    let mut received = 0u64;
    loop {
        match stream.read(&mut buf)? {
            0 => break,
            n => received += n as u64,
        }
    }
    stream.shutdown(Shutdown::Write)?;
    Ok(received)
}

/// tokio: a read loop until EOF on one task; returns the bytes received.
pub fn tokio_receive(rt: &tokio::runtime::Runtime, addr: SocketAddr) -> io::Result<u64> {
    rt.block_on(async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let mut buf = vec![0u8; RECEIVE_BUFFER];
        let mut received = 0u64;
        loop {
            match stream.read(&mut buf).await? {
                0 => break,
                n => received += n as u64,
            }
        }
        stream.shutdown().await?;
        Ok(received)
    })
}
