//! Real servers on 127.0.0.1 for the drivers' tests: each on a thread, each connection on a
//! thread of its own, with read timeouts so that no test can hang on one.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
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
    serve_on(addr, move |stream| {
        let conn = ServerConnection::new(config.clone()).expect("server connection");
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
    })
}
