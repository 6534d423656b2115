//! A program that restores the default SIGPIPE action (as C programs and some embedders do)
//! must not be killed by a write to a reset connection: the driver writes with
//! `MSG_NOSIGNAL`. This is a test binary of its own because it changes a process-wide setting.
#![cfg(unix)]

mod common;

use std::io::Read;
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use tcpclient_core::{Config, Error, Event, OnPeerEof};
use tcpclient_polling::EventLoop;

/// Reads a little, half-closes, then resets the connection. The client, which saw the FIN
/// and stopped reading, learns of the reset only from a write: EPIPE, and SIGPIPE unless the
/// write says `MSG_NOSIGNAL`.
fn fin_then_reset_server() -> SocketAddr {
    serve(|mut stream| {
        let mut first = [0u8; 1024];
        let _ = stream.read_exact(&mut first);
        let _ = stream.shutdown(Shutdown::Write);
        std::thread::sleep(Duration::from_millis(100));
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    })
}

#[test]
fn writing_to_a_reset_connection_is_an_error_not_a_signal() {
    // SAFETY: restoring a signal's default action; no handler runs Rust code.
    #[allow(unsafe_code)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let addr = fin_then_reset_server();
    let mut event_loop = EventLoop::new().unwrap();
    // Half-open: the client keeps writing after the server's FIN, until the reset.
    let config = Config::new().with_on_peer_eof(OnPeerEof::KeepWriting);
    let id = event_loop.connect(("127.0.0.1", addr.port()), config);
    let block = Bytes::from(vec![0u8; 64 * 1024]);
    let deadline = Instant::now() + Duration::from_secs(20);

    // Keep the queue full: the socket buffers fill, and writes go on until the reset.
    let report = 'run: loop {
        assert!(Instant::now() < deadline, "no close report");
        while event_loop.send(id, block.clone()).is_ok() {}
        event_loop.turn(Some(Duration::from_millis(100))).unwrap();
        while let Some((_, event)) = event_loop.poll_event() {
            if let Event::Closed(report) = event {
                break 'run report;
            }
        }
    };

    assert!(matches!(report.result, Err(Error::Socket(_))), "{report:?}");
}
