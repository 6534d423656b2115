//! The one public machine: a client connection, reconnecting or not.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::connection::Connection;
use crate::request::Control;
use crate::session::Session;
use crate::{AttemptId, Config, Destination, Input, InvalidInput, Leave, Output, Phase, TlsInfo};

/// A TCP (and optionally TLS) client connection, as a pure state machine: one connection,
/// or, with a [`ReconnectPolicy`](crate::ReconnectPolicy), as many as it takes.
///
/// Kamaelia's `TCPClient` and its ConnectedSocketAdapter in one object that performs no I/O.
/// Its methods come in three kinds, as in quinn-proto:
///
/// - **What the driver observed:** [`handle_input`](Self::handle_input) with an [`Input`]
///   (the socket, the resolver, the clock). Drain [`poll_output`](Self::poll_output) after
///   it.
/// - **What the application asks for,** as methods: [`send`](Self::send),
///   [`start_tls`](Self::start_tls), [`finish`](Self::finish), [`abort`](Self::abort),
///   [`consumed`](Self::consumed); and, for a reconnecting client,
///   [`reconnect`](Self::reconnect), [`acknowledged`](Self::acknowledged) and the preamble's
///   two. Drain after them too.
/// - **What the client wants done:** [`poll_output`](Self::poll_output) until it returns
///   `None`, then [`poll_timeout`](Self::poll_timeout) for when to wake it next; and getters
///   (`&self`): [`phase`](Self::phase), [`bytes_queued`](Self::bytes_queued),
///   [`send_capacity`](Self::send_capacity), ...
///
/// The same inputs and requests at the same instants always give the same outputs.
///
/// ```
/// use std::time::{Duration, Instant};
/// use bytes::Bytes;
/// use tcpclient_core::{Client, Config, Event, Input, Output};
///
/// # fn run(start: Instant) -> Result<(), Box<dyn std::error::Error>> {
/// // `start` is whatever the driver's clock says: the system's, a simulator's, ...
/// let mut client = Client::new(("127.0.0.1", 7), Config::new(), start);
/// client.send(start, Bytes::from_static(b"ping"))?;
/// let Some(Output::Connect { attempt, addr, .. }) = client.poll_output() else { panic!() };
/// assert_eq!(addr, "127.0.0.1:7".parse()?);
///
/// client.handle_input(start, Input::Connected(attempt))?;
/// assert!(matches!(client.poll_output(), Some(Output::Event(Event::Connected(_)))));
/// assert_eq!(client.poll_output(), Some(Output::Transmit(Bytes::from_static(b"ping"))));
/// assert_eq!(client.poll_output(), None);
/// client.handle_input(start, Input::Written(4))?;
/// assert_eq!(client.bytes_written(), 4);
/// # Ok(())
/// # }
/// # run(Instant::now()).unwrap();
/// ```
///
/// # Reconnecting
///
/// With [`Config::with_reconnect`], the client comes back. Each connection is a
/// *generation*. When one ends without the application asking for it (the server closed,
/// reset or vanished), the client hands back what that connection did not write
/// ([`Event::Undelivered`](crate::Event::Undelivered), or, with
/// [`ReconnectPolicy::replay_undelivered`](crate::ReconnectPolicy::replay_undelivered), keeps it for the next connection), reports the
/// end ([`Event::Disconnected`](crate::Event::Disconnected)) and the wait it chose
/// ([`Event::Reconnecting`](crate::Event::Reconnecting)), and starts the next generation
/// after that wait. [`Event::Reconnected`](crate::Event::Reconnected) says when it is up.
/// Errors the policy calls permanent (an untrusted certificate, a name that does not
/// exist) end it, as do [`finish`](Self::finish), [`abort`](Self::abort) and the policy's
/// limits; the one [`Event::Closed`](crate::Event::Closed) then reports every generation:
/// `bytes_accepted == bytes_confirmed + bytes_unconfirmed + bytes_undelivered +
/// bytes_handed_back`, and the `Undelivered` events add up to the last two. What a
/// connection wrote and its peer's TCP never acknowledged is lost with it, and handed back
/// or replayed with what it never wrote; what the peer's TCP acknowledged on a connection
/// that then failed is unconfirmed, so the client does not end clean.
///
/// Sends are accepted while waiting too: they go out on the next connection, after its
/// [`Preamble`](crate::Preamble) (a login every connection begins with).
/// [`reconnect`](Self::reconnect) drops the current connection on the application's say-so
/// (a ping unanswered, a protocol error), and [`ReconnectPolicy::replay_unacknowledged`](crate::ReconnectPolicy::replay_unacknowledged)
/// keeps every byte until the application's protocol acknowledges it
/// ([`acknowledged`](Self::acknowledged)), for at-least-once delivery across connections.
///
/// ```
/// use std::time::{Duration, Instant};
/// use std::io::ErrorKind;
/// use tcpclient_core::{AttemptId, Client, Config, Event, Input, Output, ReconnectPolicy, Jitter};
///
/// # fn run(start: Instant) -> Result<(), Box<dyn std::error::Error>> {
/// let policy = ReconnectPolicy::default().with_jitter(Jitter::None);
/// let mut client = Client::new(("127.0.0.1", 7), Config::new().with_reconnect(policy), start);
/// assert!(matches!(client.poll_output(), Some(Output::Connect { .. })));
/// client.handle_input(start, Input::Connected(AttemptId(0)))?;
/// assert!(matches!(client.poll_output(), Some(Output::Event(Event::Connected(_)))));
///
/// // The server goes away: the client waits the backoff, then connects again.
/// client.handle_input(start, Input::SocketError(ErrorKind::ConnectionReset))?;
/// let outputs: Vec<Output> = std::iter::from_fn(|| client.poll_output()).collect();
/// assert!(outputs.iter().any(|o| matches!(
///     o,
///     Output::Event(Event::Reconnecting { generation: 1, delay, .. }) if *delay == Duration::from_secs(1)
/// )));
/// assert_eq!(client.poll_timeout(), Some(start + Duration::from_secs(1)));
/// # Ok(())
/// # }
/// # run(Instant::now()).unwrap();
/// ```
#[doc(alias = "TCPClient")]
#[doc(alias = "ConnectedSocketAdapter")]
#[derive(Debug)]
pub struct Client {
    machine: Machine,
}

/// One connection inline: the common case, and on the hot path; boxing it would cost every
/// client an allocation and a pointer chase. The reconnecting one is boxed: it is larger,
/// and rarer.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Machine {
    Once(Connection),
    Reconnecting(Box<Session>),
}

impl Client {
    /// Creates a client to `destination` that starts at `now`: one connection, or, with
    /// [`Config::reconnect`], as many as it takes.
    ///
    /// Pass an `Arc<Config>` to share one configuration between many clients, to one server
    /// or many (each holds only the pointer); a `Config` is put in an `Arc` of its own. The
    /// destination is a [`Destination`], or anything that makes one: a `SocketAddr`, a
    /// `(host, port)` pair.
    ///
    /// With no [`Config::delay`] the first output ([`Output::Resolve`], or [`Output::Connect`]
    /// for an IP literal) is ready at once; otherwise the first deadline is `now + delay`.
    #[inline]
    pub fn new(
        destination: impl Into<Destination>,
        config: impl Into<Arc<Config>>,
        now: Instant,
    ) -> Self {
        let config: Arc<Config> = config.into();
        let destination = destination.into();
        let machine = match config.reconnect.clone() {
            None => Machine::Once(Connection::new(destination, config, now)),
            Some(policy) => {
                Machine::Reconnecting(Box::new(Session::new(destination, config, policy, now)))
            }
        };
        Self { machine }
    }

    /// Handles one of the driver's reports at `now`; then drain
    /// [`poll_output`](Self::poll_output).
    ///
    /// A report that makes no sense now (see [`InvalidInput`]) is refused and changes
    /// nothing; it never panics. A report that arrives after the close, or about an attempt
    /// (or, reconnecting, a connection) that has ended, is a no-op (see [`Input`]). `now`
    /// earlier than a previous `now` is taken as the previous.
    #[inline]
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Result<(), InvalidInput> {
        match &mut self.machine {
            Machine::Once(c) => c.handle_input(now, input),
            Machine::Reconnecting(s) => s.handle_input(now, input),
        }
    }

    // ---- the application's requests ----

    /// Queues `data` to send, in order. Accepted in every phase before shutdown, including
    /// before the connection is up; refused with the data handed back when the queue is
    /// full ([`InvalidInput::QueueFull`]: wait for [`Event::SendReady`](crate::Event::SendReady))
    /// or the client is shutting down. Large sends leave as the same `Bytes`; small ones are
    /// coalesced (see [`Config::coalesce_below`]). `now` is when: the write-stall deadline
    /// of what it hands out counts from it.
    #[doc(alias = "inbox")]
    #[inline]
    pub fn send(&mut self, now: Instant, data: Bytes) -> Result<(), InvalidInput> {
        match &mut self.machine {
            Machine::Once(c) => c.send(now, data),
            Machine::Reconnecting(s) => s.send(now, data),
        }
    }

    /// Queues a copy of `data` to send, with no [`Bytes`] of the caller's: the path for
    /// small messages. A send under [`Config::coalesce_below`] is copied straight into the
    /// coalescing buffer, so a stream of them costs no allocation per message. Refused
    /// exactly when [`send`](Self::send) would refuse the same bytes, and then handed back,
    /// as a copy, in the refusal.
    ///
    /// ```
    /// use std::time::Instant;
    /// use tcpclient_core::{Client, Config, InvalidInput};
    ///
    /// # fn run(start: Instant) -> Result<(), InvalidInput> {
    /// let mut client = Client::new(("localhost", 7), Config::new().with_send_limit(1_000), start);
    /// for _ in 0..62 {
    ///     client.send_slice(start, b"a small message\n")?;
    /// }
    /// assert_eq!(client.bytes_queued(), 992);
    /// let Err(InvalidInput::QueueFull { data, .. }) = client.send_slice(start, b"one too many\n") else {
    ///     panic!("992 + 13 bytes are over the limit");
    /// };
    /// assert_eq!(data, "one too many\n");
    /// # Ok(())
    /// # }
    /// # run(Instant::now()).unwrap();
    /// ```
    #[doc(alias = "inbox")]
    #[inline]
    pub fn send_slice(&mut self, now: Instant, data: &[u8]) -> Result<(), InvalidInput> {
        match &mut self.machine {
            Machine::Once(c) => c.send_slice(now, data),
            Machine::Reconnecting(s) => s.send_slice(now, data),
        }
    }

    /// Switches to TLS (STARTTLS). Bytes sent before it leave in plaintext before the
    /// ClientHello; bytes sent after it leave encrypted once the handshake is done. Before
    /// the connection is up, it means TLS from the first byte (on every connection, when
    /// reconnecting). Once per connection, before shutdown; needs [`Config::tls`].
    #[doc(alias = "makessl")]
    pub fn start_tls(&mut self, now: Instant) -> Result<(), InvalidInput> {
        self.request(now, Control::StartTls)
    }

    /// Graceful shutdown: connect if not yet connected, deliver everything queued, send TLS
    /// `close_notify`, half-close (FIN), keep delivering received data until the peer's EOF
    /// or [`Config::drain_timeout`], then close.
    #[doc(alias = "producerFinished")]
    pub fn finish(&mut self, now: Instant) -> Result<(), InvalidInput> {
        self.request(now, Control::Finish)
    }

    /// Closes now. The close report counts what was not delivered.
    #[doc(alias = "shutdownMicroprocess")]
    pub fn abort(&mut self, now: Instant) -> Result<(), InvalidInput> {
        self.request(now, Control::Abort)
    }

    fn request(&mut self, now: Instant, request: Control) -> Result<(), InvalidInput> {
        match &mut self.machine {
            Machine::Once(c) => c.request(now, request),
            Machine::Reconnecting(s) => s.request(now, request),
        }
    }

    /// The application is done with `n` more bytes of the [`Event::Data`](crate::Event::Data)
    /// delivered to it, which frees room in [`Config::receive_window`]. More than was
    /// delivered and not yet consumed is refused. Accepted after the close too: data
    /// delivered before it may be consumed later. Needs no clock: consuming arms no
    /// deadline.
    #[inline]
    pub fn consumed(&mut self, n: usize) -> Result<(), InvalidInput> {
        match &mut self.machine {
            Machine::Once(c) => c.consumed(n),
            Machine::Reconnecting(s) => s.consumed(n),
        }
    }

    /// Reconnecting: drops the current connection (or the attempts under way) and makes the
    /// next one after the backoff, as a loss would: for an application that finds the
    /// server dead at its own level (a ping unanswered, a protocol error). `leave` says how;
    /// what the connection did not get through is handed back or kept by the policy.
    /// Refused without a [`ReconnectPolicy`](crate::ReconnectPolicy).
    ///
    /// ```
    /// use std::time::Instant;
    /// use tcpclient_core::{AttemptId, Client, Config, Event, Input, Leave, Output, ReconnectPolicy};
    ///
    /// # fn run(now: Instant) -> Result<(), Box<dyn std::error::Error>> {
    /// let config = Config::new().with_reconnect(ReconnectPolicy::default());
    /// let mut client = Client::new(("127.0.0.1", 7), config, now);
    /// while client.poll_output().is_some() {}
    /// client.handle_input(now, Input::Connected(AttemptId(0)))?;
    /// while client.poll_output().is_some() {}
    ///
    /// // No answer to our ping: this server is no good.
    /// client.reconnect(now, Leave::Reset)?;
    /// let outputs: Vec<Output> = std::iter::from_fn(|| client.poll_output()).collect();
    /// assert_eq!(outputs[0], Output::Reset);
    /// assert!(outputs.iter().any(|o| matches!(o, Output::Event(Event::Reconnecting { generation: 1, .. }))));
    /// # Ok(())
    /// # }
    /// # run(Instant::now()).unwrap();
    /// ```
    pub fn reconnect(&mut self, now: Instant, leave: Leave) -> Result<(), InvalidInput> {
        match &mut self.machine {
            Machine::Once(c) => Err(c.unexpected("reconnect")),
            Machine::Reconnecting(s) => s.reconnect(now, leave),
        }
    }

    /// Reconnecting: the application's protocol acknowledged `n` more bytes, in the order
    /// they were sent ([`ReconnectPolicy::replay_unacknowledged`](crate::ReconnectPolicy::replay_unacknowledged)): they will not be sent
    /// again, and make room in the window. Refused without that policy, and for more than
    /// are unacknowledged.
    ///
    /// ```
    /// use std::time::Instant;
    /// use tcpclient_core::{Bytes, Client, Config, ReconnectPolicy};
    ///
    /// # fn run(now: Instant) -> Result<(), Box<dyn std::error::Error>> {
    /// let policy = ReconnectPolicy::default().with_replay_unacknowledged(true);
    /// let mut client = Client::new(("127.0.0.1", 7), Config::new().with_reconnect(policy), now);
    /// client.send(now, Bytes::from_static(b"SET a 1\n"))?;
    /// client.send(now, Bytes::from_static(b"SET b 2\n"))?;
    /// // The server answered the first request: it will not be sent again.
    /// client.acknowledged(8)?;
    /// assert_eq!(client.bytes_unacknowledged(), 8);
    /// # Ok(())
    /// # }
    /// # run(Instant::now()).unwrap();
    /// ```
    pub fn acknowledged(&mut self, n: usize) -> Result<(), InvalidInput> {
        match &mut self.machine {
            Machine::Once(c) => Err(c.unexpected("acknowledged")),
            Machine::Reconnecting(s) => s.acknowledged(n),
        }
    }

    /// Reconnecting, with [`Preamble::Dialogue`](crate::Preamble::Dialogue): queues `data`
    /// as part of the current connection's preamble, ahead of every send waiting for it,
    /// and not replayed on the next connection, which has a preamble of its own. Refused
    /// unless the client [`awaits_preamble`](Self::awaits_preamble): once
    /// [`preamble_done`](Self::preamble_done) was called for this connection, once it is on
    /// its way out (closing, finishing, asked to make way), and without a dialogue.
    pub fn send_preamble(&mut self, now: Instant, data: Bytes) -> Result<(), InvalidInput> {
        match &mut self.machine {
            Machine::Once(c) => Err(c.unexpected("send_preamble")),
            Machine::Reconnecting(s) => s.send_preamble(now, data),
        }
    }

    /// Reconnecting, with [`Preamble::Dialogue`](crate::Preamble::Dialogue): the current
    /// connection's preamble is done, and what waited for it (sends, and what the client
    /// replays) goes out now, in order. Refused, as
    /// [`send_preamble`](Self::send_preamble) is, unless the client
    /// [`awaits_preamble`](Self::awaits_preamble): what waits then waits for the next
    /// connection.
    pub fn preamble_done(&mut self, now: Instant) -> Result<(), InvalidInput> {
        match &mut self.machine {
            Machine::Once(c) => Err(c.unexpected("preamble_done")),
            Machine::Reconnecting(s) => s.preamble_done(now),
        }
    }

    // ---- what the client wants done ----

    /// Returns the next thing to do, or `None` when there is nothing until the next input.
    ///
    /// Call it until it returns `None` after every input and request. Transmits are made
    /// here, lazily, so several sends before one drain leave as fewer TLS records.
    #[must_use]
    #[inline]
    pub fn poll_output(&mut self) -> Option<Output> {
        match &mut self.machine {
            Machine::Once(c) => c.poll_output(),
            Machine::Reconnecting(s) => s.poll_output(),
        }
    }

    /// Returns when to feed [`Input::Timeout`] next: the earliest armed deadline (start
    /// delay, connect attempts, handshake, drain, stall, idle, a reconnect's wait).
    ///
    /// `None` means no deadline is armed. Ask after draining [`poll_output`](Self::poll_output).
    #[must_use]
    #[inline]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.machine {
            Machine::Once(c) => c.poll_timeout(),
            Machine::Reconnecting(s) => s.poll_timeout(),
        }
    }

    /// Returns true while the driver should read from the socket: connected, no EOF yet, and
    /// room in [`Config::receive_window`]. Ask after every input: a
    /// [`consumed`](Self::consumed) can turn it back on.
    #[inline]
    pub fn wants_read(&self) -> bool {
        match &self.machine {
            Machine::Once(c) => c.wants_read(),
            Machine::Reconnecting(s) => s.wants_read(),
        }
    }

    // ---- where it is ----

    /// Returns the lifecycle phase (reconnecting: the current connection's,
    /// [`Phase::Delay`] while waiting to reconnect, [`Phase::Closed`] once it is over).
    #[inline]
    pub fn phase(&self) -> Phase {
        match &self.machine {
            Machine::Once(c) => c.phase(),
            Machine::Reconnecting(s) => s.phase(),
        }
    }

    /// Returns true once the end is decided and the current connection takes its last steps
    /// before it closes: writing a failed TLS session's alert, or waiting for the driver's
    /// answer about what the peer acknowledged. It takes no sends then, and owes no
    /// [`Event::SendReady`](crate::Event::SendReady): its close comes next (with what was not
    /// delivered handed back before it), within a bounded wait.
    pub fn is_closing(&self) -> bool {
        self.connection().is_closing()
    }

    /// Returns true once [`Event::Closed`](crate::Event::Closed) has been emitted (or is
    /// waiting in the outputs): for a reconnecting client, its end.
    #[inline]
    pub fn is_closed(&self) -> bool {
        match &self.machine {
            Machine::Once(c) => c.is_closed(),
            Machine::Reconnecting(s) => s.is_closed(),
        }
    }

    /// Returns the address the current connection is connected to, once it is up.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.connection().peer_addr()
    }

    /// Returns the connect attempt that won, once the connection is up: the driver's socket
    /// for that attempt is the connection's from then on (the target of `Transmit`,
    /// `ShutdownWrite`, `Close` and `Reset`).
    #[inline]
    pub fn winning_attempt(&self) -> Option<AttemptId> {
        match &self.machine {
            Machine::Once(c) => c.winning_attempt(),
            Machine::Reconnecting(s) => s.winning_attempt(),
        }
    }

    /// Returns what TLS negotiated on the current connection, once its handshake finished.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        self.connection().tls_info()
    }

    /// Returns the current generation: 0 for the first connection, one more for each
    /// reconnect (always 0 without a [`ReconnectPolicy`](crate::ReconnectPolicy)).
    pub fn generation(&self) -> u32 {
        match &self.machine {
            Machine::Once(_) => 0,
            Machine::Reconnecting(s) => s.generation(),
        }
    }

    /// Returns true while the current connection's sends wait for the application's
    /// preamble ([`Preamble::Dialogue`](crate::Preamble::Dialogue)).
    pub fn awaits_preamble(&self) -> bool {
        match &self.machine {
            Machine::Once(_) => false,
            Machine::Reconnecting(s) => s.awaits_preamble(),
        }
    }

    /// Returns the configuration the client was created with.
    pub fn config(&self) -> &Config {
        self.connection().config()
    }

    /// Returns where the client connects.
    pub fn destination(&self) -> &Destination {
        self.connection().destination()
    }

    // ---- the books ----

    /// Returns the application bytes accepted by [`send`](Self::send) so far (over every
    /// connection).
    pub fn bytes_accepted(&self) -> u64 {
        match &self.machine {
            Machine::Once(c) => c.bytes_accepted(),
            Machine::Reconnecting(s) => s.bytes_accepted(),
        }
    }

    /// Returns the application bytes that have reached the socket so far (over every
    /// connection: a byte lost with its connection and replayed on the next counts once; a
    /// preamble not at all).
    #[inline]
    pub fn bytes_written(&self) -> u64 {
        match &self.machine {
            Machine::Once(c) => c.bytes_written(),
            Machine::Reconnecting(s) => s.bytes_written(),
        }
    }

    /// Returns the bytes of the current connection its peer's TCP is known to have
    /// acknowledged so far: no more than it wrote, and behind it until the driver next
    /// answers [`Output::QueryUnacknowledged`] (zero where it cannot tell).
    pub fn bytes_acknowledged(&self) -> u64 {
        self.connection().bytes_acknowledged()
    }

    /// Returns the application bytes accepted and not yet written (on the current or next
    /// connection), or, with [`ReconnectPolicy::replay_unacknowledged`](crate::ReconnectPolicy::replay_unacknowledged), not yet
    /// acknowledged: what a producer waits on, and what [`Config::send_limit`] bounds.
    #[inline]
    pub fn bytes_queued(&self) -> u64 {
        match &self.machine {
            Machine::Once(c) => c.bytes_queued(),
            Machine::Reconnecting(s) => s.bytes_queued(),
        }
    }

    /// Returns the bytes sent and not yet acknowledged by the application
    /// ([`ReconnectPolicy::replay_unacknowledged`](crate::ReconnectPolicy::replay_unacknowledged); zero without it).
    pub fn bytes_unacknowledged(&self) -> u64 {
        match &self.machine {
            Machine::Once(_) => 0,
            Machine::Reconnecting(s) => s.bytes_unacknowledged(),
        }
    }

    /// Returns the application bytes delivered as [`Event::Data`](crate::Event::Data) so far
    /// (over every connection).
    #[inline]
    pub fn bytes_received(&self) -> u64 {
        match &self.machine {
            Machine::Once(c) => c.bytes_received(),
            Machine::Reconnecting(s) => s.bytes_received(),
        }
    }

    /// Returns the bytes delivered as [`Event::Data`](crate::Event::Data) and not yet
    /// reported [`consumed`](Self::consumed).
    #[inline]
    pub fn bytes_unconsumed(&self) -> u64 {
        match &self.machine {
            Machine::Once(c) => c.bytes_unconsumed(),
            Machine::Reconnecting(s) => s.bytes_unconsumed(),
        }
    }

    /// Returns true while the application holds [`Config::receive_window`] bytes or more of
    /// unconsumed `Data`, so the client does not ask to read.
    #[inline]
    pub fn receive_window_full(&self) -> bool {
        match &self.machine {
            Machine::Once(c) => c.receive_window_full(),
            Machine::Reconnecting(s) => s.receive_window_full(),
        }
    }

    /// Returns how many more bytes a [`send`](Self::send) to the current connection may
    /// carry now without being refused: zero once it is shutting down. (With nothing
    /// queued, one send of any size is taken.)
    pub fn send_capacity(&self) -> usize {
        self.connection().send_capacity()
    }

    /// The current connection.
    fn connection(&self) -> &Connection {
        match &self.machine {
            Machine::Once(c) => c,
            Machine::Reconnecting(s) => s.client(),
        }
    }
}
