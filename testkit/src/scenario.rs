//! The operation decoder shared by the proptest suite, the fuzz targets and the corpus replay.
//!
//! A [`Scenario`] is decoded from raw bytes with `arbitrary`, so a fuzzer's input, a proptest
//! case and a committed corpus file all mean the same thing. Decoding never fails: missing
//! bytes give defaults, and a scenario of any bytes is a valid test.

use std::time::Duration;

use arbitrary::{Arbitrary, Unstructured};
use tcpclient_core::{Config, Destination, OnPeerEof};

/// Most operations taken from one input: keeps every case short enough to run thousands.
pub const MAX_OPS: usize = 400;

/// How the client is configured and connected.
#[derive(Debug, Clone, Default, Arbitrary)]
pub struct Setup {
    /// Start delay, in 10 ms steps.
    pub delay_10ms: u8,
    /// Use a host name (needs resolution) instead of an IP literal.
    pub resolve: bool,
    /// Give the client a TLS configuration (so `StartTls` is possible).
    pub tls_config: bool,
    /// Ask for TLS before anything else happens (TLS from the start).
    pub tls_first: bool,
    /// Keep writing after the peer's EOF instead of closing.
    pub half_open: bool,
    /// Arm an idle timeout, in 100 ms steps (0: none).
    pub idle_100ms: u8,
    /// The send limit is `64 << (limit_shift % 12)` bytes: 64 B to 128 KiB. The rest of it,
    /// `(limit_shift / 12) % 4`, picks the receive window: the default (1 MiB), none (the
    /// application consumes on delivery), 64 B or 4 KiB; and `limit_shift / 48 == 1` says
    /// that the driver cannot tell what the peer acknowledged. (One field for all three
    /// keeps the corpus's meaning.)
    pub limit_shift: u8,
    /// Connect, drain and handshake timeouts, in 100 ms steps (0 means 1).
    pub timeout_100ms: [u8; 4],
}

impl Setup {
    /// Whether the driver answers that it cannot tell what the peer acknowledged.
    pub fn cannot_tell(&self) -> bool {
        self.limit_shift / 48 == 1
    }

    /// Where the client connects: a name to resolve, or an address; its certificate is
    /// checked for `localhost`.
    pub fn destination(&self) -> Destination {
        let host = if self.resolve {
            "server.test"
        } else {
            "127.0.0.1"
        };
        Destination::new(host, 4433).with_server_name(crate::server_name("localhost"))
    }

    /// The client configuration this setup describes (without TLS; the world adds it).
    pub fn config(&self) -> Config {
        let step = |n: u8| Duration::from_millis(100 * u64::from(n.max(1)));
        let [connect, attempt, drain, handshake] = self.timeout_100ms;
        Config::new()
            .with_delay(Duration::from_millis(10 * u64::from(self.delay_10ms)))
            .with_connect_timeout(step(connect))
            .with_attempt_timeout(step(attempt))
            .with_drain_timeout(step(drain))
            .with_tls_handshake_timeout(step(handshake))
            .with_idle_timeout((self.idle_100ms > 0).then(|| step(self.idle_100ms)))
            .with_send_limit(64 << (self.limit_shift % 12))
            .with_receive_window(match (self.limit_shift / 12) % 4 {
                0 => Config::new().receive_window,
                1 => None,
                2 => Some(64),
                _ => Some(4096),
            })
            .with_on_peer_eof(if self.half_open {
                OnPeerEof::KeepWriting
            } else {
                OnPeerEof::Close
            })
    }
}

/// One step: the application, the driver, the server or the clock doing something.
#[derive(Debug, Clone, Arbitrary)]
pub enum Op {
    /// The application sends this many bytes (a numbered pattern, so order is checked).
    Send(u16),
    /// The application asks for TLS.
    StartTls,
    /// The application asks for a graceful shutdown.
    Finish,
    /// The application aborts.
    Abort,
    /// The driver answers a pending resolution: `n % 4` IPv4 and `(n >> 2) % 3` IPv6
    /// addresses, all at once or one family at a time (`(n >> 4) % 4`, see the world).
    Resolve(u8),
    /// The driver's resolver fails.
    ResolveFail,
    /// The oldest connect attempt under way succeeds.
    ConnectOk,
    /// The oldest connect attempt under way is refused.
    ConnectRefused,
    /// The socket accepts up to this many bytes of what the client handed out.
    Write(u16),
    /// The socket accepts everything handed out.
    WriteAll,
    /// The server sends this many bytes (encrypted once its TLS is up).
    ServerSend(u16),
    /// The server sends raw bytes, valid TLS or not.
    ServerRaw(Vec<u8>),
    /// Flips bits of one byte the server sent that the client has not read yet.
    Corrupt {
        /// Which byte, modulo the bytes waiting.
        at: u16,
        /// The bits to flip (0 flips one anyway).
        xor: u8,
    },
    /// The server sends its TLS `close_notify`.
    ServerCloseNotify,
    /// The client reads up to this many of the bytes the server sent.
    Deliver(u16),
    /// The client reads everything the server sent.
    DeliverAll,
    /// The server half-closes (the client sees EOF once it has read the rest).
    ServerFin,
    /// The connection is reset.
    Reset,
    /// The clock moves forward this many 10 ms steps (the client is not told), and the
    /// application consumes up to 64 bytes per step of what it was delivered.
    Advance(u8),
    /// The clock jumps to the next deadline and the client is told.
    Timeout,
    /// A well-behaved network and application: answers a pending resolution with one
    /// address, completes a pending connect, then writes, reads, consumes what was delivered
    /// and delivers FINs until nothing moves.
    Settle,
    /// The driver misbehaves: a report that makes no sense now, which the client must refuse;
    /// or, once the client has closed, the same report arriving late, which it must accept
    /// and ignore.
    Misuse(Misuse),
}

/// Reports a buggy driver might make, or a correct one might make too late (after the close).
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Misuse {
    /// `Connected` for an attempt that never started.
    Connected,
    /// `Written` of more than was handed out.
    WrittenTooMuch,
    /// `Received` while no socket is readable.
    ReceivedWhileNotReadable,
    /// `PeerEof` while no socket is readable.
    PeerEofWhileNotReadable,
    /// `Resolved` while not resolving.
    Resolved,
    /// `SocketError` while the driver holds no socket.
    SocketError,
    /// `ResolveFailed` while not resolving.
    ResolveFailed,
    /// `ConnectFailed` for an attempt that never started.
    ConnectFailed,
}

/// A setup and the operations to run, decoded from bytes.
#[derive(Debug, Clone, Default)]
pub struct Scenario {
    /// How the client starts.
    pub setup: Setup,
    /// What happens, in order.
    pub ops: Vec<Op>,
}

impl Scenario {
    /// Decodes a scenario from any bytes; never fails.
    pub fn decode(data: &[u8]) -> Self {
        let mut u = Unstructured::new(data);
        let setup = Setup::arbitrary(&mut u).unwrap_or_default();
        // One op after another until the bytes run out: no continuation flags, so a
        // mutation of one byte changes one op rather than where the list ends.
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < MAX_OPS {
            match Op::arbitrary(&mut u) {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        Self { setup, ops }
    }
}
