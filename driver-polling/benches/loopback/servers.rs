//! The servers every contender talks to, on 127.0.0.1, each on its own thread(s).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;

use rustls::{ServerConfig, ServerConnection, StreamOwned};
use tcpclient_testkit::loopback;

/// Serves every connection on a thread of its own, on the servers' core, with `serve`.
fn spawn(serve: impl Fn(TcpStream) -> io::Result<()> + Send + Sync + 'static) -> SocketAddr {
    loopback::serve(move |stream| {
        crate::pinning::server();
        let _ = stream.set_nodelay(true);
        let _ = serve(stream);
    })
}

/// Reads everything until EOF (or `close_notify`), then closes: the client's clean close
/// marks the moment the last byte was read.
pub fn sink(tls: Option<Arc<ServerConfig>>) -> SocketAddr {
    spawn(move |stream| {
        let mut buf = vec![0u8; 256 * 1024];
        match &tls {
            None => {
                let mut stream = stream;
                while stream.read(&mut buf)? > 0 {}
                stream.shutdown(Shutdown::Write)
            }
            Some(config) => {
                let mut tls = StreamOwned::new(
                    ServerConnection::new(config.clone()).map_err(io::Error::other)?,
                    stream,
                );
                while tls.read(&mut buf)? > 0 {}
                close_tls(&mut tls)
            }
        }
    })
}

/// Echoes everything until EOF, then closes.
pub fn echo() -> SocketAddr {
    spawn(echo_on)
}

/// Reads a 16-byte request, answers 16 bytes, reads until EOF, closes.
pub fn request_response(tls: Option<Arc<ServerConfig>>) -> SocketAddr {
    spawn(move |stream| {
        let mut request = [0u8; 16];
        match &tls {
            None => {
                let mut stream = stream;
                stream.read_exact(&mut request)?;
                stream.write_all(&request)?;
                while stream.read(&mut request)? > 0 {}
                stream.shutdown(Shutdown::Write)
            }
            Some(config) => {
                let mut tls = StreamOwned::new(
                    ServerConnection::new(config.clone()).map_err(io::Error::other)?,
                    stream,
                );
                tls.read_exact(&mut request)?;
                tls.write_all(&request)?;
                while tls.read(&mut request).unwrap_or(0) > 0 {}
                close_tls(&mut tls)
            }
        }
    })
}

fn close_tls(tls: &mut StreamOwned<ServerConnection, TcpStream>) -> io::Result<()> {
    tls.conn.send_close_notify();
    tls.flush()?;
    tls.sock.shutdown(Shutdown::Write)
}

/// Sends `total` bytes in 16 KiB writes, then its FIN, then waits for the client's.
pub fn source(total: usize) -> SocketAddr {
    spawn(move |mut stream| {
        let block = vec![7u8; 16 * 1024];
        for _ in 0..total / block.len() {
            stream.write_all(&block)?;
        }
        stream.shutdown(Shutdown::Write)?;
        let mut buf = [0u8; 64];
        while stream.read(&mut buf)? > 0 {}
        Ok(())
    })
}

/// An echo server whose listener takes `backlog` connections waiting to be accepted, for
/// many clients connecting at once (the default backlog of 128 would drop SYNs and add a
/// one-second retransmission to some of them).
pub fn echo_with_backlog(backlog: i32) -> io::Result<SocketAddr> {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(backlog)?;
    let listener: std::net::TcpListener = socket.into();
    let addr = listener.local_addr()?;
    std::thread::spawn(move || {
        crate::pinning::server();
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                crate::pinning::server();
                let _ = stream.set_nodelay(true);
                let _ = echo_on(stream);
            });
        }
    });
    Ok(addr)
}

fn echo_on(mut stream: TcpStream) -> io::Result<()> {
    let mut reader = stream.try_clone()?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return stream.shutdown(Shutdown::Write);
        }
        stream.write_all(&buf[..n])?;
    }
}
