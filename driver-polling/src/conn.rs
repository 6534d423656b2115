//! One connection of an [`EventLoop`](crate::EventLoop): its client, its socket, and the
//! system calls that perform what the client asks.

use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Instant;

use polling::{Event as Readiness, PollMode, Poller};
use tcpclient_core::{AttemptId, ConnectOptions, Input};

use tcpclient_driver::{PendingWrites, pending_error, reset, unacknowledged};

use crate::reactor::Hold;
use crate::socket::{ReadOutcome, finish_connect, read_once, start_connect, write_gathered};

/// Reads per readable socket per turn: enough to drain a burst, few enough to be fair.
const READS_PER_TURN: usize = 8;

/// One client, held as `H` says, and the sockets the loop keeps for it: one per connect
/// attempt under way, then the connection's (the attempt that won).
pub(crate) struct Conn<H> {
    pub(crate) client: H,
    pub(crate) socket: Option<Socket>,
    /// Connect attempts under way, each with its own socket and poller key.
    pub(crate) attempts: Vec<AttemptSocket>,
    /// Poller keys of attempt sockets that are gone, for the loop to forget.
    pub(crate) retired_keys: Vec<usize>,
    /// Lookups asked of the resolver pool and not yet answered.
    pub(crate) lookups: usize,
    /// Waiting in the loop's progress queue.
    pub(crate) progress_queued: bool,
    /// Transmits handed out by the client and not yet written.
    pub(crate) pending: PendingWrites,
    /// The deadline registered in `EventLoop::timers`.
    pub(crate) deadline: Option<Instant>,
    pub(crate) dirty: bool,
}

/// The socket of one connect attempt, registered for writability (the connect's end).
pub(crate) struct AttemptSocket {
    id: AttemptId,
    pub(crate) key: usize,
    stream: TcpStream,
}

/// The connection's socket.
pub(crate) struct Socket {
    stream: TcpStream,
    /// False once a write stopped at `WouldBlock`, until the poller says writable again.
    writable: bool,
    /// The interest registered with the poller (in oneshot mode, `None` once it fired).
    armed: Option<Interest>,
    /// Registered level-triggered: the interest stays armed after it fires, so a socket
    /// read again and again costs no re-arming system call.
    level: bool,
    /// Still registered under its attempt's key: re-register under the connection's.
    rekey: bool,
    /// The write side was shut down (our FIN is in the kernel's hands).
    fin_sent: bool,
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
}

/// Whether a step told the client something, so that it may have new outputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use]
pub(crate) enum Reported {
    Nothing,
    Something,
}

impl<H: Hold> Conn<H> {
    /// A connection for `client`, with no socket yet.
    pub(crate) fn new(client: H) -> Self {
        Self {
            client,
            socket: None,
            attempts: Vec::new(),
            retired_keys: Vec::new(),
            lookups: 0,
            progress_queued: false,
            pending: PendingWrites::default(),
            deadline: None,
            dirty: false,
        }
    }

    /// Reports what happened. The core takes every report of a driver that performs its
    /// outputs faithfully, a late one (after the close) included, so a refusal can only mean
    /// a bug here; it changes nothing in the client, and nothing is gained by stopping.
    pub(crate) fn feed(&mut self, now: Instant, input: Input<'_>) {
        let _ = self.client.lock().handle_input(now, input);
    }

    /// Starts attempt `id` to `addr`, its socket registered under `key`.
    pub(crate) fn connect(
        &mut self,
        id: AttemptId,
        addr: SocketAddr,
        options: &ConnectOptions,
        key: usize,
        poller: &Poller,
        now: Instant,
    ) {
        let registered = start_connect(addr, options).and_then(|(stream, done)| {
            // SAFETY: every attempt socket is deleted from the poller before it is dropped
            // (`cancel`, `close`, or when it becomes the connection's and that closes).
            #[allow(unsafe_code)]
            unsafe {
                poller.add(&stream, Readiness::writable(key))?;
            }
            Ok((stream, done))
        });
        match registered {
            Ok((stream, done)) => {
                self.attempts.push(AttemptSocket { id, key, stream });
                if done {
                    self.attempt_connected(id, now);
                }
            }
            Err(e) => {
                self.retired_keys.push(key);
                self.feed(now, Input::ConnectFailed(id, e.kind()));
            }
        }
    }

    /// The attempt whose socket has become writable: its connect is over. If the client
    /// takes it as the winner, its socket becomes the connection's.
    pub(crate) fn on_attempt_ready(&mut self, id: AttemptId, now: Instant) {
        let Some(attempt) = self.attempts.iter().find(|a| a.id == id) else {
            return;
        };
        match finish_connect(&attempt.stream) {
            Ok(()) => self.attempt_connected(id, now),
            Err(e) => self.feed(now, Input::ConnectFailed(id, e.kind())),
        }
    }

    fn attempt_connected(&mut self, id: AttemptId, now: Instant) {
        self.feed(now, Input::Connected(id));
        if self.client.lock().winning_attempt() != Some(id) {
            return;
        }
        let Some(at) = self.attempts.iter().position(|a| a.id == id) else {
            return;
        };
        let attempt = self.attempts.remove(at);
        self.retired_keys.push(attempt.key);
        self.socket = Some(Socket {
            stream: attempt.stream,
            writable: true,
            // Registered under the attempt's key: the next re-arm moves it to the
            // connection's.
            armed: None,
            level: false,
            rekey: true,
            fin_sent: false,
        });
    }

    /// Closes attempt `id`'s socket: it lost, failed or ran out of time.
    pub(crate) fn cancel(&mut self, id: AttemptId, poller: &Poller) {
        if let Some(at) = self.attempts.iter().position(|a| a.id == id) {
            let attempt = self.attempts.remove(at);
            let _ = poller.delete(&attempt.stream);
            self.retired_keys.push(attempt.key);
        }
    }

    pub(crate) fn shutdown_write(&mut self, now: Instant) {
        let Some(socket) = &mut self.socket else {
            return;
        };
        match socket.stream.shutdown(Shutdown::Write) {
            Ok(()) => socket.fin_sent = true,
            Err(e) => self.feed(now, Input::SocketError(e.kind())),
        }
    }

    /// Tells the client what the peer's TCP has not acknowledged yet, as the socket says.
    pub(crate) fn answer_query(&mut self, now: Instant) {
        let error = self.socket.as_ref().and_then(|s| pending_error(&s.stream));
        if let Some(kind) = error {
            self.feed(now, Input::SocketError(kind));
        }
        let answer = match &self.socket {
            Some(socket) => unacknowledged(&socket.stream, socket.fin_sent),
            None => tcpclient_core::Unacknowledged::Unknown,
        };
        self.feed(now, Input::Unacknowledged(answer));
    }

    /// Writes what is pending if the socket can take it, and reports what happened.
    pub(crate) fn write_pending(&mut self, now: Instant) -> Reported {
        let Some(socket) = self.socket.as_mut() else {
            return Reported::Nothing;
        };
        if !socket.writable || self.pending.is_empty() {
            return Reported::Nothing;
        }
        match write_gathered(&mut socket.stream, &mut self.pending) {
            Ok(n) => {
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
        if !socket.level {
            socket.armed = None;
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
            if !self.client.lock().wants_read() {
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

    /// Registers the interest the connection has now: read while the client wants to (it
    /// stops at its receive window); write while holding unwritten bytes. A failure is reported
    /// to the client (which then has a close to hand out).
    pub(crate) fn rearm(&mut self, key: usize, poller: &Poller, now: Instant) -> Reported {
        let wants_read = self.client.lock().wants_read();
        let Some(socket) = self.socket.as_mut() else {
            return Reported::Nothing;
        };
        let wanted = Interest {
            read: wants_read,
            write: !socket.writable && !self.pending.is_empty(),
        };
        let unchanged =
            socket.armed == Some(wanted) || (socket.armed.is_none() && wanted == Interest::NONE);
        if unchanged && !socket.rekey {
            return Reported::Nothing;
        }
        let interest = Readiness::new(key, wanted.read, wanted.write);
        // With no interest, oneshot: a hung-up socket is reported whatever the interest, and
        // level-triggered it would be reported on every wait.
        let level = poller.supports_level() && wanted != Interest::NONE;
        let mode = if level {
            PollMode::Level
        } else {
            PollMode::Oneshot
        };
        match poller.modify_with_mode(&socket.stream, interest, mode) {
            Ok(()) => {
                socket.armed = Some(wanted);
                socket.level = level;
                socket.rekey = false;
                Reported::Nothing
            }
            Err(e) => {
                self.feed(now, Input::SocketError(e.kind()));
                Reported::Something
            }
        }
    }
}

impl<H> Conn<H> {
    /// Closes the connection's socket (and any attempt's still open); with `abort`, so that
    /// the peer gets a reset.
    pub(crate) fn close(&mut self, poller: &Poller, abort: bool) {
        if let Some(socket) = self.socket.take() {
            let _ = poller.delete(&socket.stream);
            if abort {
                // If it fails the close is an ordinary one: nothing else to do.
                let _ = reset(&socket.stream);
            }
        }
        for attempt in std::mem::take(&mut self.attempts) {
            let _ = poller.delete(&attempt.stream);
            self.retired_keys.push(attempt.key);
        }
        self.pending.clear();
    }
}
