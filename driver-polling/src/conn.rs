//! One connection of an [`EventLoop`](crate::EventLoop): its client, its socket, and the
//! system calls that perform what the client asks.

use std::collections::VecDeque;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Instant;

use bytes::Bytes;
use polling::{Event as Readiness, Poller};
use tcpclient_core::{Client, Input};

use crate::socket::{ReadOutcome, finish_connect, read_once, start_connect, write_gathered};

/// Reads per readable socket per turn: enough to drain a burst, few enough to be fair.
const READS_PER_TURN: usize = 8;

/// One client and the socket the loop keeps for it.
pub(crate) struct Conn {
    pub(crate) client: Client,
    pub(crate) socket: Option<Socket>,
    /// Transmits handed out by the client and not yet written.
    pub(crate) pending: VecDeque<Bytes>,
    /// Bytes in `pending`.
    pub(crate) pending_bytes: usize,
    /// The application asked the loop to stop reading this connection.
    pub(crate) paused: bool,
    /// The deadline registered in `EventLoop::timers`.
    pub(crate) deadline: Option<Instant>,
    pub(crate) dirty: bool,
}

pub(crate) struct Socket {
    stream: TcpStream,
    connecting: bool,
    /// False once a write stopped at `WouldBlock`, until the poller says writable again.
    writable: bool,
    /// The interest registered with the poller (oneshot: `None` once it fired).
    armed: Option<Interest>,
}

/// What the loop asks the poller to report for a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Interest {
    read: bool,
    write: bool,
}

impl Interest {
    const NONE: Interest = Interest {
        read: false,
        write: false,
    };
    const WRITE: Interest = Interest {
        read: false,
        write: true,
    };
}

/// Whether a step told the client something, so that it may have new outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) enum Reported {
    Nothing,
    Something,
}

impl Conn {
    /// A connection for `client`, with no socket yet.
    pub(crate) fn new(client: Client) -> Self {
        Self {
            client,
            socket: None,
            pending: VecDeque::new(),
            pending_bytes: 0,
            paused: false,
            deadline: None,
            dirty: false,
        }
    }

    /// Reports what happened. The core takes every report of a driver that performs its
    /// outputs faithfully, a late one (after the close) included, so a refusal can only mean
    /// a bug here; it changes nothing in the client, and nothing is gained by stopping.
    pub(crate) fn feed(&mut self, now: Instant, input: Input<'_>) {
        let _ = self.client.handle_input(now, input);
    }

    pub(crate) fn connect(&mut self, addr: SocketAddr, key: u32, poller: &Poller, now: Instant) {
        let registered = start_connect(addr).and_then(|(stream, done)| {
            // SAFETY: `close` (and `remove`, through it) deletes the stream from the poller
            // before dropping it, which is what `Poller::add` requires.
            #[allow(unsafe_code)]
            unsafe {
                poller.add(&stream, Readiness::writable(key as usize))?;
            }
            Ok((stream, done))
        });
        match registered {
            Ok((stream, done)) => {
                self.socket = Some(Socket {
                    stream,
                    connecting: !done,
                    writable: done,
                    armed: Some(Interest::WRITE),
                });
                if done {
                    self.feed(now, Input::Connected);
                }
            }
            Err(e) => self.feed(now, Input::ConnectFailed(e.kind())),
        }
    }

    pub(crate) fn shutdown_write(&mut self, now: Instant) {
        let Some(socket) = &self.socket else { return };
        if let Err(e) = socket.stream.shutdown(Shutdown::Write) {
            self.feed(now, Input::SocketError(e.kind()));
        }
    }

    pub(crate) fn close(&mut self, poller: &Poller) {
        if let Some(socket) = self.socket.take() {
            let _ = poller.delete(&socket.stream);
        }
        self.pending.clear();
        self.pending_bytes = 0;
    }

    /// Writes what is pending if the socket can take it, and reports what happened.
    pub(crate) fn write_pending(&mut self, now: Instant) -> Reported {
        let Some(socket) = self.socket.as_mut() else {
            return Reported::Nothing;
        };
        if socket.connecting || !socket.writable || self.pending.is_empty() {
            return Reported::Nothing;
        }
        match write_gathered(&mut socket.stream, &mut self.pending) {
            Ok(n) => {
                self.pending_bytes -= n;
                if !self.pending.is_empty() {
                    socket.writable = false;
                }
                if n == 0 {
                    return Reported::Nothing;
                }
                self.feed(now, Input::Written(n));
            }
            Err(e) => self.feed(now, Input::SocketError(e.kind())),
        }
        Reported::Something
    }

    pub(crate) fn on_readiness(&mut self, readiness: Readiness, read_buf: &mut [u8], now: Instant) {
        let Some(socket) = self.socket.as_mut() else {
            return;
        };
        socket.armed = None;
        if socket.connecting {
            if readiness.readable || readiness.writable {
                socket.connecting = false;
                socket.writable = true;
                match finish_connect(&socket.stream) {
                    Ok(()) => self.feed(now, Input::Connected),
                    Err(e) => self.feed(now, Input::ConnectFailed(e.kind())),
                }
            }
            return;
        }
        if readiness.writable {
            socket.writable = true;
        }
        if readiness.readable {
            self.read(read_buf, now);
        }
    }

    fn read(&mut self, buf: &mut [u8], now: Instant) {
        for _ in 0..READS_PER_TURN {
            if self.paused || !self.client.wants_read() {
                return;
            }
            let Some(socket) = self.socket.as_mut() else {
                return;
            };
            match read_once(&mut socket.stream, buf) {
                Ok(ReadOutcome::Data(n)) => {
                    self.feed(now, Input::Received(&buf[..n]));
                    // A short read drained the socket: skip the read that would only say
                    // WouldBlock. The level-triggered re-arm reports anything that arrives.
                    if n < buf.len() {
                        return;
                    }
                }
                Ok(ReadOutcome::Eof) => return self.feed(now, Input::PeerEof),
                Ok(ReadOutcome::WouldBlock) => return,
                Err(e) => return self.feed(now, Input::SocketError(e.kind())),
            }
        }
    }

    /// Registers the interest the connection has now: read while the client wants data and
    /// the application has room; write while connecting or holding unwritten bytes. A
    /// failure is reported to the client (which then has a close to hand out).
    pub(crate) fn rearm(&mut self, key: u32, poller: &Poller, now: Instant) -> Reported {
        let wants_read = self.client.wants_read() && !self.paused;
        let Some(socket) = self.socket.as_mut() else {
            return Reported::Nothing;
        };
        let wanted = if socket.connecting {
            Interest::WRITE
        } else {
            Interest {
                read: wants_read,
                write: !socket.writable && !self.pending.is_empty(),
            }
        };
        if socket.armed == Some(wanted) || (socket.armed.is_none() && wanted == Interest::NONE) {
            return Reported::Nothing;
        }
        let interest = Readiness::new(key as usize, wanted.read, wanted.write);
        match poller.modify(&socket.stream, interest) {
            Ok(()) => {
                socket.armed = Some(wanted);
                Reported::Nothing
            }
            Err(e) => {
                self.feed(now, Input::SocketError(e.kind()));
                Reported::Something
            }
        }
    }
}
