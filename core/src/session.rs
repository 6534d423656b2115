//! A client that comes back: one [`Client`] per connection (a generation), a new one after
//! each loss, with backoff, and every byte accounted for across all of them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::backoff::Backoff;
use crate::{
    AttemptId, Client, CloseReport, Config, Ending, Error, Event, Input, InvalidInput, Output,
    Phase, ReconnectPolicy,
};

/// A reconnecting client, as a pure state machine: the same contract as [`Client`] (inputs
/// in, outputs out, time passed in), over as many connections as it takes.
///
/// Each connection is a *generation*. When one ends without the application asking for it
/// (the server closed, reset or vanished), the session hands back what that connection did
/// not write ([`Event::Undelivered`], or, with
/// [`ReconnectPolicy::replay_undelivered`], keeps it for the next connection), reports the
/// end ([`Event::Disconnected`]) and the wait it chose ([`Event::Reconnecting`]), and starts
/// the next generation after that wait. [`Event::Reconnected`] says when it is up, so the
/// application can redo a preamble. Errors the policy calls permanent (an untrusted
/// certificate, a name that does not exist) end the session, as do
/// [`Input::Finish`](crate::Input::Finish), [`Input::Abort`](crate::Input::Abort) and the
/// policy's limits; the one [`Event::Closed`] then reports the whole session over every
/// generation: `bytes_accepted == bytes_confirmed + bytes_unconfirmed + bytes_undelivered`,
/// and the `Undelivered` events add up to `bytes_undelivered`. What a connection wrote and
/// its peer's TCP never acknowledged is lost with it, and handed back or replayed with what
/// it never wrote; what the peer's TCP acknowledged on a connection that then failed is
/// unconfirmed, so the session does not end clean.
///
/// Sends are accepted while waiting too: they go out on the next connection.
///
/// ```
/// use std::time::{Duration, Instant};
/// use std::io::ErrorKind;
/// use tcpclient_core::{AttemptId, Config, Event, Input, Output, ReconnectPolicy, Jitter, Session};
///
/// # fn run(start: Instant) -> Result<(), Box<dyn std::error::Error>> {
/// let policy = ReconnectPolicy::default().with_jitter(Jitter::None);
/// let mut session = Session::new(Config::new("127.0.0.1", 7), policy, start);
/// assert!(matches!(session.poll_output(), Some(Output::Connect { .. })));
/// session.handle_input(start, Input::Connected(AttemptId(0)))?;
/// assert!(matches!(session.poll_output(), Some(Output::Event(Event::Connected(_)))));
///
/// // The server goes away: the session waits the backoff, then connects again.
/// session.handle_input(start, Input::SocketError(ErrorKind::ConnectionReset))?;
/// let outputs: Vec<Output> = std::iter::from_fn(|| session.poll_output()).collect();
/// assert!(outputs.iter().any(|o| matches!(
///     o,
///     Output::Event(Event::Reconnecting { generation: 1, delay, .. }) if *delay == Duration::from_secs(1)
/// )));
/// assert_eq!(session.poll_timeout(), Some(start + Duration::from_secs(1)));
/// # Ok(())
/// # }
/// # run(tcpclient_testkit::epoch()).unwrap();
/// ```
#[doc(alias = "reconnect")]
#[derive(Debug)]
pub struct Session {
    config: Arc<Config>,
    policy: ReconnectPolicy,
    backoff: Backoff,
    /// The current generation's client.
    client: Client,
    generation: u32,
    /// Attempt ids issued by earlier generations: the current one's ids are offset by it,
    /// so that no id is ever reused across the session.
    attempt_base: u32,
    /// When the current generation connected.
    connected_at: Option<Instant>,
    /// When it became usable: connected, and, for TLS from the first byte, its handshake
    /// done. Stability is counted from here: a connection whose handshake never finishes
    /// is not a stable one, however long it lasts.
    usable_at: Option<Instant>,
    /// Reconnects since the last stable connection.
    failures: u32,
    /// When the connection was lost, for the first of those reconnects.
    lost_at: Option<Instant>,
    /// The application asked for the end.
    shutdown: Option<Ending>,
    /// The application asked for TLS before this generation connected (TLS from the first
    /// byte: every generation starts that way), or after (STARTTLS mid-stream).
    tls: TlsUse,
    /// What earlier generations added up to.
    earlier: Totals,
    /// `Send` bytes accepted over the whole session.
    accepted: u64,
    /// A `Send` was refused for a full queue since the last `SendReady`: one is owed, by
    /// this connection or the next.
    send_refused: bool,
    /// Sends made while the current connection is on its way out by itself (the peer
    /// closed it and it is flushing): they go on the next one. Bounded by the send limit.
    between: Vec<Bytes>,
    /// An earlier generation asked for a name to be resolved: its answer may still come.
    earlier_lookups: bool,
    /// The current generation asked for a name to be resolved.
    looked_up: bool,
    /// The generation whose question about acknowledgements is out, if one is.
    asked: Option<u32>,
    /// The current generation's `Undelivered` bytes, held until its end is judged.
    undelivered: Vec<Bytes>,
    outputs: VecDeque<Output>,
    closed: bool,
    now: Instant,
}

/// What the application asked of TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsUse {
    Off,
    FromTheStart,
    MidStream,
}

/// Sums over the generations that have ended.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    confirmed: u64,
    unconfirmed: u64,
    /// Bytes lost with their connection and handed back (not replayed).
    lost: u64,
    received: u64,
    wire_written: u64,
}

impl Totals {
    /// Application bytes written, each counted once: a lost byte replayed counts where it
    /// got through.
    fn written(&self) -> u64 {
        self.confirmed + self.unconfirmed + self.lost
    }
}

impl Session {
    /// Creates a session that starts its first connection at `now` (after
    /// [`Config::delay`], as a [`Client`] does).
    pub fn new(config: impl Into<Arc<Config>>, policy: ReconnectPolicy, now: Instant) -> Self {
        let config: Arc<Config> = config.into();
        Self {
            client: Client::new(config.clone(), now),
            backoff: Backoff::new(&policy),
            config,
            policy,
            generation: 0,
            attempt_base: 0,
            connected_at: None,
            usable_at: None,
            failures: 0,
            lost_at: None,
            shutdown: None,
            tls: TlsUse::Off,
            earlier: Totals::default(),
            accepted: 0,
            send_refused: false,
            between: Vec::new(),
            earlier_lookups: false,
            looked_up: false,
            asked: None,
            undelivered: Vec::new(),
            outputs: VecDeque::new(),
            closed: false,
            now,
        }
    }

    /// Handles one input at `now`, as [`Client::handle_input`] does; then drain
    /// [`poll_output`](Self::poll_output). Reports about an earlier generation's attempts
    /// are late, and ignored.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Result<(), InvalidInput> {
        self.now = self.now.max(now);
        // A report that arrives once the current connection has ended (its outputs not yet
        // all taken) is about that connection: late, and a no-op, as for a client.
        let ended = self.client.is_closed();
        self.settle();
        if self.closed || (ended && input.is_report()) {
            return match input {
                Input::Send(data) => Err(InvalidInput::SendAfterShutdown {
                    data,
                    phase: Phase::Closed,
                }),
                Input::Consumed(n) => self.consume(n),
                _ if input.is_report() => Ok(()),
                other => Err(InvalidInput::Unexpected {
                    input: other.name(),
                    phase: self.phase(),
                }),
            };
        }
        match input {
            Input::Send(data) => self.send(data),
            Input::Consumed(n) => self.consume(n),
            Input::Connected(attempt) => match self.inner(attempt) {
                Some(inner) => self.client.handle_input(now, Input::Connected(inner)),
                None => Ok(()),
            },
            Input::ConnectFailed(attempt, kind) => match self.inner(attempt) {
                Some(inner) => self
                    .client
                    .handle_input(now, Input::ConnectFailed(inner, kind)),
                None => Ok(()),
            },
            Input::StartTls => {
                let connected = self.connected_at.is_some();
                self.client.handle_input(now, Input::StartTls)?;
                // TLS from the first byte only if it was asked for before the first
                // connection, with nothing queued to go in plaintext before it.
                let from_start =
                    !connected && self.generation == 0 && self.client.bytes_accepted() == 0;
                self.tls = if from_start {
                    TlsUse::FromTheStart
                } else {
                    TlsUse::MidStream
                };
                Ok(())
            }
            Input::Finish => self.finish(now),
            // The answer to an ended generation's question is late; any other is the
            // current connection's to take or refuse.
            Input::Unacknowledged(_) if self.asked.is_some_and(|g| g != self.generation) => {
                self.asked = None;
                Ok(())
            }
            Input::Unacknowledged(answer) => self
                .client
                .handle_input(now, Input::Unacknowledged(answer))
                .inspect(|()| self.asked = None),
            Input::Abort => {
                self.shutdown = Some(Ending::Aborted);
                self.client.handle_input(now, Input::Abort)
            }
            Input::Resolved(_)
            | Input::ResolvedFamily(..)
            | Input::ResolveFailed(_)
            | Input::ResolveFamilyFailed(..)
                if self.earlier_lookups =>
            {
                // An earlier connection's lookup may answer after it ended, and the driver
                // cannot tell whose answer it is: one this connection cannot take is late.
                let _ = self.client.handle_input(now, input);
                Ok(())
            }
            other => self.client.handle_input(now, other),
        }
    }

    /// Queues `data` on the current connection, or for the next one while waiting: the
    /// same as [`Input::Send`], for the hot path.
    pub fn send(&mut self, data: Bytes) -> Result<(), InvalidInput> {
        self.settle();
        if self.closed || self.shutdown.is_some() {
            let phase = self.phase();
            return Err(InvalidInput::SendAfterShutdown { data, phase });
        }
        let len = data.len() as u64;
        let sent = self.client.send(data);
        self.after_send(len, sent)
    }

    /// Queues a copy of `data`, as [`Client::send_slice`] does, on the current connection
    /// or for the next one.
    pub fn send_slice(&mut self, data: &[u8]) -> Result<(), InvalidInput> {
        self.settle();
        if self.closed || self.shutdown.is_some() {
            return self.send(Bytes::copy_from_slice(data));
        }
        let sent = self.client.send_slice(data);
        self.after_send(data.len() as u64, sent)
    }

    /// Counts a send of `len` bytes the current client took, or decides what its refusal
    /// means for the session.
    fn after_send(&mut self, len: u64, sent: Result<(), InvalidInput>) -> Result<(), InvalidInput> {
        match sent {
            Ok(()) => {
                self.accepted += len;
                Ok(())
            }
            // The connection is ending by itself (the peer closed it); the session is not.
            Err(InvalidInput::SendAfterShutdown { data, .. }) => {
                let held: u64 = self.between.iter().map(|b| b.len() as u64).sum();
                let limit = self.config.send_limit as u64;
                if held > 0 && held + len > limit {
                    self.send_refused = true;
                    return Err(InvalidInput::QueueFull {
                        data,
                        queued: usize::try_from(held).unwrap_or(usize::MAX),
                        limit: self.config.send_limit,
                    });
                }
                self.between.push(data);
                self.accepted += len;
                Ok(())
            }
            Err(refusal) => {
                self.send_refused |= matches!(refusal, InvalidInput::QueueFull { .. });
                Err(refusal)
            }
        }
    }

    /// Returns the next thing to do, as [`Client::poll_output`] does.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        loop {
            if let Some(output) = self.outputs.pop_front() {
                return Some(output);
            }
            if self.closed {
                return None;
            }
            let output = self.client.poll_output()?;
            if let Some(output) = self.translate(output) {
                return Some(output);
            }
        }
    }

    /// Returns the next deadline: the current connection's, or the end of the wait
    /// before the next one.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        self.client.poll_timeout()
    }

    /// Returns the current generation: 0 for the first connection, one more for each
    /// reconnect.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// Returns the reconnect policy.
    pub fn policy(&self) -> &ReconnectPolicy {
        &self.policy
    }

    /// Returns the current generation's client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Returns the phase: the current connection's ([`Phase::Delay`] while waiting to
    /// reconnect), or [`Phase::Closed`] once the session is over.
    pub fn phase(&self) -> Phase {
        if self.closed {
            Phase::Closed
        } else {
            self.client.phase()
        }
    }

    /// Returns true once the session's [`Event::Closed`] has been emitted (or is waiting in
    /// the outputs).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Returns true while the driver should read the current connection's socket.
    pub fn wants_read(&self) -> bool {
        !self.closed && self.client.wants_read()
    }

    /// Returns true while the current connection waits for the application to consume.
    pub fn receive_window_full(&self) -> bool {
        !self.closed && self.client.receive_window_full()
    }

    /// Returns the attempt whose socket is the current connection.
    pub fn winning_attempt(&self) -> Option<AttemptId> {
        self.client
            .winning_attempt()
            .map(|a| AttemptId(a.0 + self.attempt_base))
    }

    /// Returns the application bytes accepted over the whole session.
    pub fn bytes_accepted(&self) -> u64 {
        self.accepted
    }

    /// Returns the application bytes written over the whole session (a byte lost with its
    /// connection and replayed on the next counts once).
    pub fn bytes_written(&self) -> u64 {
        self.earlier.written() + self.current(Client::bytes_written)
    }

    /// Returns the application bytes accepted and not yet written on the current (or next)
    /// connection: what a producer waits on.
    pub fn bytes_queued(&self) -> u64 {
        let between: u64 = self.between.iter().map(|b| b.len() as u64).sum();
        self.current(Client::bytes_queued) + between
    }

    /// Returns the application bytes delivered as `Data` over the whole session.
    pub fn bytes_received(&self) -> u64 {
        self.earlier.received + self.current(Client::bytes_received)
    }

    /// Returns the bytes delivered as `Data` and not yet consumed, over the whole session.
    pub fn bytes_unconsumed(&self) -> u64 {
        // An ended generation's client still holds what it delivered: once the session is
        // over, that is all there is.
        self.client.bytes_unconsumed()
    }

    /// The application is done with `n` more delivered bytes: the same as
    /// [`Input::Consumed`].
    pub fn consumed(&mut self, n: usize) -> Result<(), InvalidInput> {
        self.consume(n)
    }

    // ---- the application's requests ----

    fn consume(&mut self, n: usize) -> Result<(), InvalidInput> {
        self.settle();
        // The current client holds what earlier connections delivered unconsumed too, and
        // takes `Consumed` after its close as well.
        self.client.consumed(n)
    }

    fn finish(&mut self, now: Instant) -> Result<(), InvalidInput> {
        // Waiting to reconnect with nothing to deliver: nothing to connect for.
        let waiting = self.client.phase() == Phase::Delay && self.generation > 0;
        if waiting && self.client.bytes_queued() == 0 && self.shutdown.is_none() {
            self.shutdown = Some(Ending::Finished);
            let report = self.session_report(None, Ok(Ending::Finished));
            self.end(report);
            return Ok(());
        }
        self.client.handle_input(now, Input::Finish)?;
        self.shutdown = Some(Ending::Finished);
        Ok(())
    }

    // ---- the current generation's outputs ----

    /// Passes one of the client's outputs on, in the session's terms; `None` when the
    /// session keeps it (undelivered bytes, the generation's close).
    fn translate(&mut self, output: Output) -> Option<Output> {
        match output {
            Output::Connect {
                attempt,
                addr,
                options,
            } => Some(Output::Connect {
                attempt: self.outer(attempt),
                addr,
                options,
            }),
            Output::Cancel(attempt) => Some(Output::Cancel(self.outer(attempt))),
            Output::QueryUnacknowledged => {
                self.asked = Some(self.generation);
                Some(Output::QueryUnacknowledged)
            }
            Output::Resolve { host, port } => {
                self.looked_up = true;
                Some(Output::Resolve { host, port })
            }
            Output::Event(Event::Connected(addr)) => {
                self.connected_at = Some(self.now);
                if self.tls != TlsUse::FromTheStart {
                    self.usable_at = Some(self.now);
                }
                Some(Output::Event(self.connected(addr)))
            }
            Output::Event(Event::TlsEstablished(info)) => {
                self.usable_at.get_or_insert(self.now);
                Some(Output::Event(Event::TlsEstablished(info)))
            }
            Output::Event(Event::Undelivered(bytes)) => {
                self.undelivered.push(bytes);
                None
            }
            Output::Event(Event::SendReady) => {
                self.send_refused = false;
                Some(Output::Event(Event::SendReady))
            }
            Output::Event(Event::Closed(report)) => {
                self.generation_ended(*report);
                None
            }
            other => Some(other),
        }
    }

    fn connected(&self, addr: SocketAddr) -> Event {
        match self.generation {
            0 => Event::Connected(addr),
            generation => Event::Reconnected { generation, addr },
        }
    }

    /// A closed client may still hold outputs (its undelivered bytes and its report):
    /// take them now, so that a request never reaches a generation that has ended.
    fn settle(&mut self) {
        while !self.closed && self.client.is_closed() {
            let Some(output) = self.client.poll_output() else {
                return;
            };
            if let Some(output) = self.translate(output) {
                self.outputs.push_back(output);
            }
        }
    }

    /// The current generation ended with `report`: reconnect, or end the session.
    fn generation_ended(&mut self, report: CloseReport) {
        self.earlier.confirmed += report.bytes_confirmed;
        self.earlier.unconfirmed += report.bytes_unconfirmed;
        self.earlier.received += report.bytes_received;
        self.earlier.wire_written += report.wire_bytes_written;
        // A connection that lost everything it wrote (a server that accepts and never
        // reads) made no progress, however long it lasted: not a stable one.
        let progressed = report.bytes_written == 0 || report.bytes_lost < report.bytes_written;
        let stable = progressed
            && self.usable_at.is_some_and(|at| {
                self.now.saturating_duration_since(at) >= self.policy.stable_after
            });
        if stable {
            self.failures = 0;
            self.lost_at = None;
        }
        let lost_at = *self.lost_at.get_or_insert(self.now);
        let out_of_time = self
            .policy
            .max_elapsed
            .is_some_and(|max| self.now.saturating_duration_since(lost_at) >= max);
        let out_of_attempts = self
            .policy
            .max_attempts
            .is_some_and(|max| self.failures >= max);
        // Sends made while the connection was closing by itself wait for the next one: a
        // `Finish` delivers them first.
        let sends_wait = !self.between.is_empty();
        let ends = match &report.result {
            _ if self.shutdown == Some(Ending::Aborted) => true,
            _ if self.shutdown.is_some() && !sends_wait => true,
            Err(error) => (self.policy.is_permanent)(error) || out_of_time || out_of_attempts,
            Ok(_) => out_of_time || out_of_attempts,
        };
        if ends {
            self.earlier.lost += report.bytes_lost;
            let result = report.result.clone();
            let session = self.session_report(Some(&report), result);
            return self.end(session);
        }
        self.reconnect(report);
    }

    /// Starts the next generation after the backoff.
    fn reconnect(&mut self, report: CloseReport) {
        let delay = self.backoff.delay(&self.policy, self.failures);
        let ended = self.generation;
        self.generation += 1;
        self.attempt_base += self.client.attempts_issued();
        self.earlier_lookups |= std::mem::take(&mut self.looked_up);
        self.connected_at = None;
        self.usable_at = None;
        let config = Arc::new(Config {
            delay,
            ..(*self.config).clone()
        });
        let unconsumed = self.client.bytes_unconsumed();
        self.client = Client::new(config, self.now);
        // What the application still holds counts against the new connection's window.
        self.client.carry_unconsumed(unconsumed);
        if self.tls == TlsUse::FromTheStart {
            // Accepted: a new client takes StartTls, and this one has a TLS configuration.
            let _ = self.client.handle_input(self.now, Input::StartTls);
        }
        // Bytes meant for a STARTTLS session begun mid-stream must not go out in plaintext
        // before the application redoes its preamble: they come back instead.
        let resendable = self.tls != TlsUse::MidStream;
        let undelivered = std::mem::take(&mut self.undelivered);
        let between = std::mem::take(&mut self.between);
        if self.policy.replay_undelivered && resendable {
            for bytes in undelivered {
                self.client.resend(bytes);
            }
        } else {
            self.earlier.lost += report.bytes_lost;
            self.hand_back(undelivered);
        }
        if resendable {
            for bytes in between {
                self.client.resend(bytes);
            }
        } else {
            self.hand_back(between);
        }
        if self.tls == TlsUse::MidStream {
            self.tls = TlsUse::Off;
        }
        if self.shutdown == Some(Ending::Finished) {
            // Accepted: a new client takes `Finish`.
            let _ = self.client.handle_input(self.now, Input::Finish);
        }
        self.outputs.push_back(Output::Event(Event::Disconnected {
            generation: ended,
            report: Box::new(report),
        }));
        self.outputs.push_back(Output::Event(Event::Reconnecting {
            generation: self.generation,
            attempt: self.failures,
            delay,
        }));
        // A producer waiting for room after a refusal learns of it from this connection.
        if self.send_refused {
            if self.client.has_room() {
                self.send_refused = false;
                self.outputs.push_back(Output::Event(Event::SendReady));
            } else {
                self.client.owe_send_ready();
            }
        }
        self.failures = self.failures.saturating_add(1);
    }

    /// Ends the session: what is left is handed back, then the one report.
    fn end(&mut self, report: CloseReport) {
        let mut undelivered = std::mem::take(&mut self.undelivered);
        undelivered.append(&mut self.between);
        self.hand_back(undelivered);
        self.closed = true;
        self.outputs
            .push_back(Output::Event(Event::Closed(Box::new(report))));
    }

    fn hand_back(&mut self, bytes: Vec<Bytes>) {
        for chunk in bytes.into_iter().filter(|b| !b.is_empty()) {
            self.outputs
                .push_back(Output::Event(Event::Undelivered(chunk)));
        }
    }

    /// The whole session's report; `last` is the final generation's, if it ran.
    fn session_report(
        &self,
        last: Option<&CloseReport>,
        result: Result<Ending, Error>,
    ) -> CloseReport {
        let delivered = self.earlier.confirmed + self.earlier.unconfirmed;
        CloseReport {
            bytes_accepted: self.accepted,
            bytes_written: self.earlier.written(),
            bytes_confirmed: self.earlier.confirmed,
            bytes_unconfirmed: self.earlier.unconfirmed,
            bytes_lost: self.earlier.lost,
            bytes_undelivered: self.accepted.saturating_sub(delivered),
            bytes_received: self.earlier.received,
            wire_bytes_written: self.earlier.wire_written,
            peer_closed: last.is_some_and(|r| r.peer_closed),
            fin_acknowledged: last.is_some_and(|r| r.fin_acknowledged),
            attempts: last.map(|r| r.attempts.clone()).unwrap_or_default(),
            result,
        }
    }

    // ---- helpers ----

    /// The current client's figure, or 0 once its report is counted in `earlier`.
    fn current(&self, figure: fn(&Client) -> u64) -> u64 {
        if self.closed { 0 } else { figure(&self.client) }
    }

    fn outer(&self, attempt: AttemptId) -> AttemptId {
        AttemptId(attempt.0 + self.attempt_base)
    }

    /// The current generation's id for a session-wide attempt id; `None` for an attempt
    /// of an earlier generation.
    fn inner(&self, attempt: AttemptId) -> Option<AttemptId> {
        attempt.0.checked_sub(self.attempt_base).map(AttemptId)
    }
}
