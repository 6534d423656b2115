//! The client state machine: inputs in, outputs out, time passed in.

use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::admission::SendAdmission;
use crate::buffers::BufferPool;
use crate::ledger::WireLedger;
use crate::log::Log;
use crate::outstanding::Outstanding;
use crate::queue::SendQueue;
use crate::race::{Lost, Race, RaceSettings, Step};
use crate::report::Attempt;
use crate::request::Control;
use crate::state::{Closing, Open, State, Wait};
use crate::timers::{Timer, TimerTable};
use crate::tls::TlsSession;
use crate::{
    AlertSent, AttemptId, CloseReport, Config, Destination, Ending, Error, Event, Family, Input,
    InvalidInput, OnPeerEof, Output, Phase, TlsError, TlsInfo, Unacknowledged,
};

/// Wire bytes written between two questions about what the peer acknowledged while data
/// flows: what lets go of the bytes kept for handing back, at one system call per this many
/// bytes rather than one per write.
const QUERY_EVERY: u64 = 256 * 1024;

/// How long a close waits for the driver's answer. Drivers answer at once; this only bounds
/// a driver that does not.
const ANSWER_WAIT: Duration = Duration::from_millis(10);

/// How long a fatal TLS alert, the connection's last bytes, may take to be written before
/// the connection closes without it (less where the drain timeout is shorter, or a drain's
/// deadline nearer: it is a drain too). It is one small record, written at once unless the
/// peer stopped reading; then the peer will not read it either.
const ALERT_WAIT: Duration = Duration::from_secs(1);

/// The first wait, then doubled, between questions while our FIN waits for its
/// acknowledgement after the peer's end (the drain deadline bounds them all)...
const FIN_WAIT_FIRST: Duration = Duration::from_millis(1);
/// ...up to this.
const FIN_WAIT_MAX: Duration = Duration::from_millis(200);

/// One TCP (and optionally TLS) connection, as a pure state machine: what a
/// [`Client`](crate::Client) is without a reconnect policy, and each generation of one
/// with it. Its methods are the client's (documented there).
#[derive(Debug)]
pub(crate) struct Connection {
    /// Shared: many clients of one program usually have the same configuration, and a
    /// pointer per client is what an idle connection should cost.
    config: Arc<Config>,
    /// Where it connects.
    destination: Destination,
    /// The latest instant seen; time never runs backwards inside the client.
    now: Instant,
    /// The instant of the latest send not yet taken into `now`, which happens before `now`
    /// is next read (at the next drain, input or request): on the hot path a send only
    /// stores it.
    send_now: Option<Instant>,
    state: State,
    timers: TimerTable,
    queue: SendQueue,
    ledger: WireLedger,
    /// What was handed out and has not got through yet, kept to hand back if the connection
    /// ends.
    outstanding: Outstanding,
    /// The questions about what the peer acknowledged.
    queries: Queries,
    /// Buffers small sends are coalesced into (and the TLS session's own bytes written into),
    /// reused once written.
    buffers: BufferPool,
    tls: Tls,
    shutdown: Shutdown,
    outputs: VecDeque<Output>,
    /// `tracing` diagnostics (nothing without the `tracing` feature).
    log: Log,
    bytes_accepted: u64,
    bytes_received: u64,
    /// Bytes of `Data` the application reported consumed.
    bytes_consumed: u64,
    /// Unconsumed bytes an earlier connection of a reconnecting [`Client`](crate::Client#reconnecting) delivered:
    /// they count against this one's window, and are consumed first.
    carried_unconsumed: u64,
    /// A `Send` was refused since the last [`Event::SendReady`].
    send_refused: bool,
    /// Connect attempts started so far (ids below this were issued).
    attempts_started: u32,
    /// An `Output::Resolve` was handed out: answers may still come after the race.
    resolution_asked: bool,
    /// The attempt whose socket became the connection.
    winner: Option<AttemptId>,
    /// The attempts of the race, once it is over, for the close report.
    attempts: Vec<Attempt>,
    /// The fatal TLS alert written before the close, for the close report.
    tls_alert_sent: Option<AlertSent>,
}

/// The client's questions to the driver about what the peer's TCP acknowledged
/// ([`Output::QueryUnacknowledged`]).
#[derive(Debug, Default)]
struct Queries {
    /// One is out, not yet answered.
    out: bool,
    /// Wire bytes written when the last one went out.
    asked_at: u64,
    /// Questions asked while our FIN waits for its acknowledgement: the wait doubles.
    fin_waits: u8,
}

/// Whether, and why, the client is on its way out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shutdown {
    None,
    /// The application asked for a graceful shutdown.
    Finish,
    /// The peer closed first and [`OnPeerEof::Close`] applies.
    PeerClosed,
}

/// TLS: off, asked for but not started yet, or running.
#[derive(Debug)]
enum Tls {
    Off,
    /// `StartTls` arrived; the session starts once the plaintext before it is handed out
    /// and the connection is up.
    Requested,
    Active(Box<TlsSession>),
}

impl Connection {
    /// Creates a client that starts at `now`.
    ///
    /// Pass an `Arc<Config>` to share one configuration between many clients (each holds
    /// only the pointer); a `Config` is put in an `Arc` of its own.
    ///
    /// With no [`Config::delay`] the first output ([`Output::Resolve`], or [`Output::Connect`]
    /// for an IP literal) is ready at once; otherwise the first deadline is `now + delay`.
    #[inline]
    pub fn new(destination: Destination, config: impl Into<Arc<Config>>, now: Instant) -> Self {
        let config: Arc<Config> = config.into();
        let mut client = Self {
            now,
            send_now: None,
            state: State::Delay,
            timers: TimerTable::new(now),
            queue: SendQueue::new(config.coalesce_below),
            buffers: BufferPool::default(),
            ledger: WireLedger::default(),
            outstanding: Outstanding::default(),
            queries: Queries::default(),
            tls: Tls::Off,
            shutdown: Shutdown::None,
            outputs: VecDeque::new(),
            log: Log::new(&destination),
            bytes_accepted: 0,
            bytes_received: 0,
            bytes_consumed: 0,
            carried_unconsumed: 0,
            send_refused: false,
            attempts_started: 0,
            resolution_asked: false,
            winner: None,
            attempts: Vec::new(),
            tls_alert_sent: None,
            config,
            destination,
        };
        if client.config.delay.is_zero() {
            client.begin_connecting();
        } else {
            client
                .timers
                .set(Timer::StartDelay, now, client.config.delay);
        }
        let phase = client.phase();
        client.log.created(phase);
        client
    }

    /// Handles one input at `now`; then drain [`poll_output`](Self::poll_output).
    ///
    /// An input that makes no sense now (see [`InvalidInput`]) is refused and changes
    /// nothing; it never panics. A driver's report that arrives after the close is a no-op
    /// (see [`Input`]). `now` earlier than a previous `now` is taken as the previous.
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Result<(), InvalidInput> {
        let name = input.name();
        let result = self.handle(now, input);
        let phase = self.phase();
        self.log.input(name, &result, phase);
        result
    }

    /// Takes the application's request to start TLS, finish or abort at `now`, refused
    /// and logged as an input is.
    pub(crate) fn request(&mut self, now: Instant, request: Control) -> Result<(), InvalidInput> {
        let name = request.name();
        let result = self.handle_request(now, request);
        let phase = self.phase();
        self.log.input(name, &result, phase);
        result
    }

    fn handle_request(&mut self, now: Instant, request: Control) -> Result<(), InvalidInput> {
        self.catch_up(now);
        let name = request.name();
        if let State::Closing(_) = self.state {
            return match request {
                // Ends the alert's wait; otherwise the end is under way, and no later than
                // the driver's answer.
                Control::Abort => {
                    if self.alerting() {
                        self.alert_over(false);
                    }
                    Ok(())
                }
                Control::StartTls | Control::Finish => Err(self.unexpected(name)),
            };
        }
        match request {
            Control::StartTls => self.start_tls(name),
            Control::Finish => self.finish(name),
            Control::Abort => {
                self.require(name, !matches!(self.state, State::Closed))?;
                self.close(Ok(Ending::Aborted));
                Ok(())
            }
        }
    }

    fn handle(&mut self, now: Instant, input: Input<'_>) -> Result<(), InvalidInput> {
        if self.is_closed() {
            return Ok(());
        }
        self.catch_up(now);
        let name = input.name();
        if let State::Closing(_) = self.state {
            return self.while_closing(name, input);
        }
        match input {
            Input::Resolved { family, result } => self.resolved(name, family, result),
            Input::Connected(attempt) => self.attempt_report(name, attempt, None),
            Input::ConnectFailed(attempt, kind) => self.attempt_report(name, attempt, Some(kind)),
            Input::SocketError(kind) => {
                self.require(name, matches!(self.state, State::Open(_)))?;
                self.close(Err(Error::Socket(kind)));
                Ok(())
            }
            Input::Received(data) => self.received(name, data),
            Input::Written(n) => self.written(name, n),
            Input::PeerEof => self.peer_eof(name),
            Input::Unacknowledged(answer) => self.unacknowledged(name, answer),
            Input::Timeout => {
                self.handle_timeout();
                Ok(())
            }
        }
    }

    /// An input once the end is decided and the driver is asked what the peer acknowledged:
    /// the answer ends the connection; a write still counts; the application's requests are
    /// refused as after a shutdown; any other report is about a connection already ending,
    /// and ignored.
    fn while_closing(&mut self, name: &'static str, input: Input<'_>) -> Result<(), InvalidInput> {
        if self.alerting() {
            return self.while_alerting(name, input);
        }
        match input {
            Input::Unacknowledged(answer) => self.unacknowledged(name, answer),
            Input::Written(n) => {
                self.require(name, (n as u64) <= self.ledger.in_flight())?;
                self.ledger.written(n);
                Ok(())
            }
            Input::Timeout => {
                self.handle_timeout();
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// An input while a fatal TLS alert waits to be written: the socket is still open, so
    /// the driver's reports are checked as on an open connection, and what they say is of
    /// no more use (data is not delivered after the failure) but the writes. The alert's
    /// wait, and every deadline armed before it, end it; so do an abort and a socket error.
    fn while_alerting(&mut self, name: &'static str, input: Input<'_>) -> Result<(), InvalidInput> {
        let tcp_eof = match &self.state {
            State::Closing(closing) => closing.open.tcp_eof,
            _ => true,
        };
        match input {
            Input::Written(n) => {
                self.require(name, (n as u64) <= self.ledger.in_flight())?;
                self.ledger.written(n);
                self.restart_idle_timer();
                if let Some(stall) = self.config.stall_timeout {
                    self.timers.set(Timer::Stall, self.now, stall);
                }
                if self.ledger.in_flight() == 0 {
                    self.alert_over(true);
                }
                Ok(())
            }
            Input::Received(_) => self.require(name, !tcp_eof),
            Input::PeerEof => {
                self.require(name, !tcp_eof)?;
                if let State::Closing(closing) = &mut self.state {
                    closing.open.tcp_eof = true;
                }
                Ok(())
            }
            Input::Timeout => {
                if self.timers.take_expired(self.now).is_some() {
                    self.alert_over(false);
                }
                Ok(())
            }
            Input::SocketError(_) => {
                self.alert_over(false);
                Ok(())
            }
            Input::Unacknowledged(answer) => self.unacknowledged(name, answer),
            Input::Connected(attempt) => self.attempt_report(name, attempt, None),
            Input::ConnectFailed(attempt, kind) => self.attempt_report(name, attempt, Some(kind)),
            Input::Resolved { family, result } => self.resolved(name, family, result),
        }
    }

    /// Returns the next thing to do, or `None` when there is nothing until the next input.
    ///
    /// Call it until it returns `None` after every input. Transmits are made here, lazily,
    /// so several `Send`s handled before one drain leave as fewer TLS records.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        if self.outputs.is_empty() {
            self.catch_up_with_sends();
            self.hand_out();
            let phase = self.phase();
            self.log.phase(phase);
        }
        self.outputs.pop_front()
    }

    /// Returns the next deadline: hand the client [`Input::Timeout`] once it has passed.
    ///
    /// `None` means no deadline is armed. Ask after draining [`poll_output`](Self::poll_output).
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Returns the lifecycle phase.
    pub fn phase(&self) -> Phase {
        match &self.state {
            State::Delay => Phase::Delay,
            State::Establishing(race) if race.has_started() => Phase::Connecting,
            State::Establishing(_) => Phase::Resolving,
            State::Open(open) if self.shutdown != Shutdown::None || open.fin_sent => {
                Phase::Draining
            }
            State::Closing(_) => Phase::Draining,
            State::Open(_) if self.tls_handshaking() => Phase::TlsHandshaking,
            State::Open(_) => Phase::Connected,
            State::Closed => Phase::Closed,
        }
    }

    /// Returns true once the end is decided and the client takes its last steps before
    /// [`Event::Closed`]: writing a failed TLS session's alert, or waiting for the driver's
    /// answer about what the peer acknowledged. It takes no sends then, and owes no
    /// [`Event::SendReady`]: `Closed` comes next (with what was not delivered handed back
    /// before it), within a bounded wait.
    pub fn is_closing(&self) -> bool {
        matches!(self.state, State::Closing(_))
    }

    /// Returns true once [`Event::Closed`] has been emitted (or is waiting in the outputs).
    #[inline]
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed)
    }

    /// Returns the address connected to, once the connection is up.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        match &self.state {
            State::Open(open) => Some(open.peer),
            State::Closing(closing) => Some(closing.open.peer),
            _ => None,
        }
    }

    /// Returns the connect attempt that won, once the connection is up: the driver's socket
    /// for that attempt is the connection's from then on (the target of `Transmit`,
    /// `ShutdownWrite`, `Close` and `Reset`).
    pub fn winning_attempt(&self) -> Option<AttemptId> {
        self.winner
    }

    /// Returns what TLS negotiated, once the handshake has finished.
    pub fn tls_info(&self) -> Option<TlsInfo> {
        match &self.tls {
            Tls::Active(session) if !session.is_handshaking() => Some(session.info()),
            _ => None,
        }
    }

    /// Returns true while the driver should read from the socket: connected, no EOF yet, and
    /// room in [`Config::receive_window`]. Ask after every input: a consumed report can
    /// turn it back on.
    pub fn wants_read(&self) -> bool {
        matches!(&self.state, State::Open(open) if !open.tcp_eof) && !self.receive_window_full()
    }

    /// Returns true while the application holds [`Config::receive_window`] bytes or more of
    /// unconsumed `Data`, so the client does not ask to read.
    pub fn receive_window_full(&self) -> bool {
        self.config
            .receive_window
            .is_some_and(|window| self.bytes_unconsumed() >= window as u64)
    }

    /// Returns the application bytes accepted by a send so far.
    pub fn bytes_accepted(&self) -> u64 {
        self.bytes_accepted
    }

    /// Returns the application bytes that have reached the socket so far.
    pub fn bytes_written(&self) -> u64 {
        self.ledger.app_written()
    }

    /// Returns the application bytes the peer's TCP is known to have acknowledged so far:
    /// no more than [`bytes_written`](Self::bytes_written), and behind it until the driver
    /// next answers [`Output::QueryUnacknowledged`] (zero where it cannot tell).
    pub fn bytes_acknowledged(&self) -> u64 {
        self.ledger.app_acked()
    }

    /// Returns the application bytes accepted and not yet written: the send queue's fill,
    /// which [`Config::send_limit`] bounds.
    pub fn bytes_queued(&self) -> u64 {
        self.bytes_accepted - self.ledger.app_written()
    }

    /// Returns the application bytes delivered as [`Event::Data`] so far.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Returns the bytes delivered as [`Event::Data`] and not yet reported consumed.
    pub fn bytes_unconsumed(&self) -> u64 {
        self.carried_unconsumed + self.bytes_received - self.bytes_consumed
    }

    /// Returns how many more bytes a `Send` may carry now without being refused: zero once
    /// the client is shutting down. (With nothing queued, one `Send` of any size is taken.)
    pub fn send_capacity(&self) -> usize {
        if !self.takes_sends() {
            return 0;
        }
        self.admission().capacity(self.bytes_queued())
    }

    /// The rule of the configuration's send limit; made when needed rather than kept, as
    /// every idle client would keep it.
    #[inline]
    fn admission(&self) -> SendAdmission {
        SendAdmission::new(&self.config)
    }

    pub fn destination(&self) -> &Destination {
        &self.destination
    }

    /// Returns the configuration the client was created with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    // ---- application requests ----

    /// Queues `data` to send.
    #[doc(alias = "inbox")]
    #[inline]
    pub fn send(&mut self, now: Instant, data: Bytes) -> Result<(), InvalidInput> {
        if !self.takes(data.len()) {
            return self.send_checked(now, data);
        }
        self.count_accepted(now, data.len());
        self.queue.push(data, &mut self.buffers);
        Ok(())
    }

    /// [`send`](Self::send) with every check made in turn: the path of the refusals, out of
    /// line so that the accepting path stays small enough to inline into a caller's loop.
    #[cold]
    #[inline(never)]
    fn send_checked(&mut self, now: Instant, data: Bytes) -> Result<(), InvalidInput> {
        self.send_now = Some(now);
        if !self.takes_sends() {
            return Err(self.refuse_after_shutdown(data));
        }
        let data = match self.admission().admit(self.bytes_queued(), data) {
            Ok(data) => data,
            Err(refusal) => {
                self.send_refused = true;
                return Err(refusal);
            }
        };
        self.count_accepted(now, data.len());
        self.queue.push(data, &mut self.buffers);
        Ok(())
    }

    /// Queues a copy of `data` to send, with no [`Bytes`] of the caller's: the path for
    /// small messages. A send under [`Config::coalesce_below`] is copied straight into the
    /// coalescing buffer, so a stream of them costs no allocation per message. Refused
    /// exactly when [`Client::send`] would refuse the same bytes, and then handed back, as a
    /// copy, in the refusal.
    #[doc(alias = "inbox")]
    #[inline]
    pub fn send_slice(&mut self, now: Instant, data: &[u8]) -> Result<(), InvalidInput> {
        if !self.takes(data.len()) {
            return self.refuse_slice(now, data);
        }
        self.count_accepted(now, data.len());
        self.queue.push_slice(data, &mut self.buffers);
        Ok(())
    }

    /// The refusal of a copied send, made and counted where every refusal is. Out of line,
    /// so that the accepting path stays small enough to inline into a caller's loop.
    #[cold]
    #[inline(never)]
    fn refuse_slice(&mut self, now: Instant, data: &[u8]) -> Result<(), InvalidInput> {
        self.send_checked(now, Bytes::copy_from_slice(data))
    }

    /// Whether a send of `len` bytes is taken now: before shutdown, and within the limit.
    #[inline]
    fn takes(&self, len: usize) -> bool {
        self.takes_sends() && self.admission().fits(self.bytes_queued(), len)
    }

    /// Counts a send of `len` bytes accepted at `now`.
    #[inline]
    fn count_accepted(&mut self, now: Instant, len: usize) {
        self.send_now = Some(now);
        self.bytes_accepted += len as u64;
    }

    /// The application is done with `n` more delivered bytes. Needs no clock: consuming arms no deadline.
    pub fn consumed(&mut self, n: usize) -> Result<(), InvalidInput> {
        let unconsumed = self.bytes_unconsumed();
        if n as u64 > unconsumed {
            return Err(InvalidInput::ConsumedTooMuch {
                consumed: n,
                unconsumed,
            });
        }
        let carried = self.carried_unconsumed.min(n as u64);
        self.carried_unconsumed -= carried;
        self.bytes_consumed += n as u64 - carried;
        Ok(())
    }

    /// Takes over `n` unconsumed bytes of the connection before this one (a session's).
    pub(crate) fn carry_unconsumed(&mut self, n: u64) {
        self.carried_unconsumed += n;
    }

    /// Expects an [`Event::SendReady`] once there is room: a refusal was made to the
    /// application by a connection before this one (a session's).
    pub(crate) fn owe_send_ready(&mut self) {
        self.send_refused = true;
    }

    /// Whether a `Send` would find room now (the low watermark, as `SendReady` uses).
    pub(crate) fn has_room(&self) -> bool {
        self.takes_sends() && self.admission().has_room_again(self.bytes_queued())
    }

    /// Queues `data` as an accepted send, past the send limit if need be: a
    /// reconnecting [`Client`](crate::Client#reconnecting) replaying what the previous connection did not write
    /// (no more than that connection held, so still bounded).
    pub(crate) fn resend(&mut self, now: Instant, data: Bytes) {
        self.catch_up(now);
        if self.takes_sends() {
            self.bytes_accepted += data.len() as u64;
            self.queue.push(data, &mut self.buffers);
        }
    }

    /// Takes back every byte queued, before the connection is up: a session queues its
    /// preamble again behind a `StartTls` that makes the connection TLS from the first byte.
    pub(crate) fn take_back_unsent(&mut self) -> Vec<Bytes> {
        if !matches!(self.state, State::Delay | State::Establishing(_)) {
            return Vec::new();
        }
        let taken: Vec<Bytes> = self.queue.take_all().into_iter().collect();
        let len: u64 = taken.iter().map(|b| b.len() as u64).sum();
        self.bytes_accepted -= len;
        taken
    }

    /// Connect attempts issued so far (ids below this were handed out).
    pub(crate) fn attempts_issued(&self) -> u32 {
        self.attempts_started
    }

    /// Neither shutting down nor closed: new data, `StartTls` and `Finish` are welcome.
    #[inline]
    pub(crate) fn takes_sends(&self) -> bool {
        self.shutdown == Shutdown::None && !matches!(self.state, State::Closing(_) | State::Closed)
    }

    #[cold]
    fn refuse_after_shutdown(&self, data: Bytes) -> InvalidInput {
        let phase = self.phase();
        InvalidInput::SendAfterShutdown { data, phase }
    }

    fn start_tls(&mut self, name: &'static str) -> Result<(), InvalidInput> {
        if self.config.tls.is_none() {
            return Err(InvalidInput::NoTlsConfig);
        }
        let peer_gone = matches!(&self.state, State::Open(open) if open.peer_closed);
        let allowed = matches!(self.tls, Tls::Off) && self.takes_sends() && !peer_gone;
        self.require(name, allowed)?;
        self.queue.start_tls_here();
        self.tls = Tls::Requested;
        Ok(())
    }

    fn finish(&mut self, name: &'static str) -> Result<(), InvalidInput> {
        // The peer closed first and the client is already on its way out: finishing is
        // what the application would do anyway.
        if self.shutdown == Shutdown::PeerClosed && !self.is_closed() {
            return Ok(());
        }
        self.require(name, self.takes_sends())?;
        self.shutdown = Shutdown::Finish;
        if matches!(self.state, State::Open(_)) {
            self.timers
                .set(Timer::Drain, self.now, self.config.drain_timeout);
        }
        Ok(())
    }

    // ---- connecting ----

    /// Leaves the delay: resolve the host, or go straight to connecting to an IP literal.
    fn begin_connecting(&mut self) {
        self.timers
            .set(Timer::Connect, self.now, self.config.connect_timeout);
        let config = &self.config;
        let race = Race::new(RaceSettings {
            origin: self.timers.origin(),
            preference: config.family_preference,
            attempt_delay: config.attempt_delay,
            resolution_delay: config.resolution_delay,
            attempt_cap: config.attempt_timeout,
        });
        self.state = State::Establishing(Box::new(race));
        let destination = &self.destination;
        let host = destination
            .host
            .trim_start_matches('[')
            .trim_end_matches(']');
        match host.parse::<IpAddr>() {
            Ok(ip) => {
                let addr = SocketAddr::new(ip, destination.port);
                self.with_race(|race, now| race.handle_resolved(None, Ok(&[addr]), now));
            }
            Err(_) => {
                self.resolution_asked = true;
                self.outputs.push_back(Output::Resolve {
                    host: destination.host.clone(),
                    port: destination.port,
                });
            }
        }
    }

    /// A resolver's answer or failure, for one family or (`None`) for all.
    fn resolved(
        &mut self,
        name: &'static str,
        family: Option<Family>,
        answer: Result<&[SocketAddr], std::io::ErrorKind>,
    ) -> Result<(), InvalidInput> {
        // The driver looked up a family the configuration does not use: nothing to do.
        if family.is_some_and(|f| !self.config.family_preference.allows(f)) {
            return self.require(name, self.resolution_asked);
        }
        let race = match &self.state {
            State::Establishing(race) => race,
            // The race is over (a connection won, or the client closed): the answer for a
            // family that had not answered yet is late, and nothing to do.
            State::Open(_) | State::Closing(_) | State::Closed if self.resolution_asked => {
                return Ok(());
            }
            _ => return Err(self.unexpected(name)),
        };
        // An answer for a family already answered: the driver answers twice.
        self.require(name, race.awaits(family))?;
        self.with_race(|race, now| race.handle_resolved(family, answer, now));
        Ok(())
    }

    /// A report about one attempt: connected (`None`) or failed.
    fn attempt_report(
        &mut self,
        name: &'static str,
        attempt: AttemptId,
        failure: Option<std::io::ErrorKind>,
    ) -> Result<(), InvalidInput> {
        let issued = attempt.0 < self.attempts_started;
        let State::Establishing(race) = &self.state else {
            // The race is over: a report about one of its attempts is late.
            return self.require(name, issued);
        };
        let (started, live) = (race.started(attempt), race.is_live(attempt));
        self.require(name, started)?;
        if !live {
            // It lost, failed or timed out already: late, and nothing to do.
            return Ok(());
        }
        let State::Establishing(race) = &mut self.state else {
            return Ok(());
        };
        match failure {
            Some(kind) => self.with_race(|race, now| race.handle_failed(attempt, kind, now)),
            None => {
                let now = self.now;
                let won = race.handle_connected(attempt, now);
                self.run_race();
                if let Some(peer) = won {
                    self.winner = Some(attempt);
                    self.connected(peer);
                }
            }
        }
        Ok(())
    }

    /// Lets the race act at `now`, then carries out what it decided.
    fn with_race(&mut self, act: impl FnOnce(&mut Race, Instant)) {
        if let State::Establishing(race) = &mut self.state {
            act(race, self.now);
        }
        self.run_race();
    }

    /// Turns the race's steps into outputs, arms its timer, and ends the client if the race
    /// is lost.
    fn run_race(&mut self) {
        let State::Establishing(race) = &mut self.state else {
            return;
        };
        while let Some(step) = race.poll_output() {
            let output = match step {
                Step::Connect(attempt, addr) => {
                    self.attempts_started = self.attempts_started.max(attempt.0 + 1);
                    self.log.attempt_started(attempt, addr);
                    let options = Box::new(self.config.socket_options.for_attempt(&addr));
                    Output::Connect {
                        attempt,
                        addr,
                        options,
                    }
                }
                Step::Cancel(attempt) => Output::Cancel(attempt),
            };
            self.outputs.push_back(output);
        }
        self.timers.set_at(Timer::Race, race.poll_timeout());
        let lost = race.lost();
        let host = self.destination.host.clone();
        match lost {
            None => {}
            Some(Lost::Resolve(kind)) => self.close(Err(Error::Resolve { host, kind })),
            Some(Lost::NoAddresses) => self.close(Err(Error::NoAddresses { host })),
            Some(Lost::Failed(addr, kind)) => self.close(Err(Error::Connect { addr, kind })),
            Some(Lost::TimedOut) => self.close(Err(Error::ConnectTimeout)),
        }
    }

    fn connected(&mut self, peer: SocketAddr) {
        if let State::Establishing(race) = &mut self.state {
            self.attempts = race.take_attempts();
        }
        for attempt in &self.attempts {
            self.log.attempt_ended(attempt);
        }
        self.state = State::Open(Open::new(peer));
        self.timers.stop(Timer::Connect);
        self.timers.stop(Timer::Race);
        self.restart_idle_timer();
        if self.shutdown == Shutdown::Finish {
            self.timers
                .set(Timer::Drain, self.now, self.config.drain_timeout);
        }
        self.emit(Event::Connected(peer));
    }

    // ---- the connected socket ----

    fn received(&mut self, name: &'static str, data: &[u8]) -> Result<(), InvalidInput> {
        let readable = matches!(&self.state, State::Open(open) if !open.tcp_eof);
        self.require(name, readable)?;
        if data.is_empty() {
            return Ok(());
        }
        self.restart_idle_timer();
        let Tls::Active(session) = &mut self.tls else {
            self.deliver(Bytes::copy_from_slice(data));
            return Ok(());
        };
        let inbound = session.receive(data);
        if inbound.handshake_finished {
            let info = session.info();
            self.timers.stop(Timer::TlsHandshake);
            self.emit(Event::TlsEstablished(info));
        }
        if let Some(plaintext) = inbound.plaintext {
            self.deliver(plaintext);
        }
        if let Some((error, alert)) = inbound.failed {
            self.fail_tls(error, alert);
        } else if inbound.peer_closed {
            self.peer_closed();
        }
        Ok(())
    }

    /// The session failed (on what the server sent, or at its cipher's confidentiality
    /// limit under TLS 1.2). The alert that calls for goes out first, after whatever the
    /// session still had to send (a `no_renegotiation` warning, our answer to a key update),
    /// as the connection's last bytes; the close waits until they are written (for
    /// [`ALERT_WAIT`] at most), since a driver drops what it has not written when it closes.
    fn fail_tls(&mut self, error: TlsError, alert: Option<AlertSent>) {
        let result = Err(Error::Tls(error));
        let sendable = matches!(&self.state, State::Open(open) if !open.fin_sent);
        let session = match &mut self.tls {
            Tls::Active(session) if sendable && session.has_outgoing() => session,
            _ => return self.close(result),
        };
        let mut bytes = BytesMut::new();
        self.ledger.tls(session.write_outgoing(&mut bytes), 0);
        self.outputs.push_back(Output::Transmit(bytes.freeze()));
        self.update_stall_timer(false);
        let State::Open(open) = std::mem::replace(&mut self.state, State::Closed) else {
            return;
        };
        // The deadlines armed go on (the first to pass ends the wait), and the wait is a
        // drain too.
        let wait = ALERT_WAIT.min(self.config.drain_timeout);
        self.timers.set(Timer::Acknowledgement, self.now, wait);
        self.state = State::Closing(Box::new(Closing {
            open,
            result,
            waiting_for: Wait::LastBytes(alert),
        }));
    }

    /// The session's last bytes were written (`written`), or will not be: the close goes on.
    fn alert_over(&mut self, written: bool) {
        let State::Closing(closing) = std::mem::replace(&mut self.state, State::Closed) else {
            return;
        };
        let Closing {
            open,
            result,
            waiting_for,
        } = *closing;
        if let (true, Wait::LastBytes(alert)) = (written, waiting_for) {
            self.tls_alert_sent = alert;
        }
        self.state = State::Open(open);
        self.timers.stop_all();
        self.close(result);
    }

    /// Returns true while the session's last bytes (its alert) wait to be written.
    fn alerting(&self) -> bool {
        matches!(&self.state, State::Closing(closing) if matches!(closing.waiting_for, Wait::LastBytes(_)))
    }

    fn deliver(&mut self, data: Bytes) {
        self.bytes_received += data.len() as u64;
        self.emit(Event::Data(data));
    }

    fn written(&mut self, name: &'static str, n: usize) -> Result<(), InvalidInput> {
        let open = matches!(self.state, State::Open(_));
        self.require(name, open && (n as u64) <= self.ledger.in_flight())?;
        if n == 0 {
            return Ok(());
        }
        self.ledger.written(n);
        if self.ledger.tracks_acknowledgements()
            && self.ledger.wire_written() - self.queries.asked_at >= QUERY_EVERY
        {
            // Several writes may be reported before one drain: a question still among the
            // outputs has not been seen yet.
            let unseen = self.outputs.contains(&Output::QueryUnacknowledged);
            if !self.queries.out {
                self.ask();
            } else if !unseen {
                // The last question went unanswered for 256 KiB: a driver that does not
                // answer cannot tell. What an answer would have let go of is let go of
                // now, so that what the client keeps stays bounded.
                self.queries.out = false;
                self.ledger.forget_acknowledgements();
            }
        }
        if !self.ledger.tracks_acknowledgements() {
            self.outstanding.release_until(self.ledger.app_written());
        }
        self.restart_idle_timer();
        self.update_stall_timer(true);
        if self.ledger.in_flight() == 0 && self.queue.is_empty() {
            self.buffers.trim();
        }
        let room = self.admission().has_room_again(self.bytes_queued());
        if self.send_refused && room && self.shutdown == Shutdown::None {
            self.send_refused = false;
            self.emit(Event::SendReady);
        }
        Ok(())
    }

    fn peer_eof(&mut self, name: &'static str) -> Result<(), InvalidInput> {
        let State::Open(open) = &mut self.state else {
            return Err(self.unexpected(name));
        };
        if open.tcp_eof {
            return Err(self.unexpected(name));
        }
        open.tcp_eof = true;
        let clean = match &mut self.tls {
            Tls::Active(session) => session.tcp_eof(),
            Tls::Requested => false,
            Tls::Off => true,
        };
        match (&self.tls, clean) {
            (_, false) => self.close(Err(Error::UnexpectedEof)),
            // A clean TLS end was already handled when close_notify arrived.
            (Tls::Active(_), true) => {}
            _ => self.peer_closed(),
        }
        Ok(())
    }

    /// The peer's stream ended: FIN in plaintext, `close_notify` under TLS.
    fn peer_closed(&mut self) {
        let State::Open(open) = &mut self.state else {
            return;
        };
        if open.peer_closed {
            return;
        }
        open.peer_closed = true;
        open.peer_closed_after_fin = open.fin_sent;
        self.emit(Event::PeerClosed);
        if self.shutdown == Shutdown::None && self.config.on_peer_eof == OnPeerEof::Close {
            self.shutdown = Shutdown::PeerClosed;
            self.timers
                .set(Timer::Drain, self.now, self.config.drain_timeout);
        }
    }

    /// The driver's answer to [`Output::QueryUnacknowledged`]: what the peer's TCP has
    /// acknowledged lets go of the bytes kept for it, and, once the end is decided, the
    /// connection ends with the count.
    fn unacknowledged(
        &mut self,
        name: &'static str,
        answer: Unacknowledged,
    ) -> Result<(), InvalidInput> {
        let open = match &mut self.state {
            State::Open(open) => open,
            State::Closing(closing) => &mut closing.open,
            _ => return Err(self.unexpected(name)),
        };
        let written = self.ledger.wire_written();
        // More unacknowledged than was ever written, or a FIN acknowledged before bytes that
        // come before it, or that was never sent: no socket says that.
        let sensible = match answer {
            Unacknowledged::Known {
                bytes,
                fin_acknowledged,
            } => bytes <= written && (!fin_acknowledged || (bytes == 0 && open.fin_sent)),
            Unacknowledged::Unknown => true,
        };
        if !self.queries.out || !sensible {
            return Err(self.unexpected(name));
        }
        self.queries.out = false;
        match answer {
            Unacknowledged::Known {
                bytes,
                fin_acknowledged,
            } => {
                open.fin_acked |= fin_acknowledged;
                self.ledger.acknowledged(written - bytes);
                self.outstanding.release_until(self.ledger.app_acked());
            }
            Unacknowledged::Unknown => {
                self.ledger.forget_acknowledgements();
                self.outstanding.release_until(self.ledger.app_written());
            }
        }
        if let State::Closing(_) = self.state
            && !self.alerting()
        {
            self.end_closing(true);
        }
        Ok(())
    }

    /// Asks the driver what the peer's TCP has not acknowledged, unless a question is out.
    fn ask(&mut self) {
        if !self.queries.out {
            self.queries.out = true;
            self.queries.asked_at = self.ledger.wire_written();
            self.outputs.push_back(Output::QueryUnacknowledged);
        }
    }

    /// Runs the write-stall deadline while handed-out bytes wait to be written: armed when
    /// the first of them is handed out, restarted by `progress`, stopped once all are written.
    fn update_stall_timer(&mut self, progress: bool) {
        let Some(stall) = self.config.stall_timeout else {
            return;
        };
        if !matches!(self.state, State::Open(_)) || self.ledger.in_flight() == 0 {
            self.timers.stop(Timer::Stall);
        } else if progress || self.timers.get(Timer::Stall).is_none() {
            self.timers.set(Timer::Stall, self.now, stall);
        }
    }

    /// Restarts the idle deadline: something was received or written.
    fn restart_idle_timer(&mut self) {
        if let Some(idle) = self.config.idle_timeout {
            self.timers.set(Timer::Idle, self.now, idle);
        }
    }

    // ---- time ----

    fn handle_timeout(&mut self) {
        if let State::Closing(_) = self.state {
            // The driver did not answer: the connection ends with what is known.
            if self.timers.take_expired(self.now) == Some(Timer::Acknowledgement) {
                self.end_closing(false);
            }
            return;
        }
        while let Some(timer) = self.timers.take_expired(self.now) {
            match timer {
                Timer::StartDelay => self.begin_connecting(),
                Timer::Connect => self.close(Err(Error::ConnectTimeout)),
                Timer::Race => self.with_race(|race, now| race.handle_timeout(now)),
                Timer::TlsHandshake => self.close(Err(Error::TlsHandshakeTimeout)),
                // Never clean, however completely our side closed: without the peer's end
                // nothing confirms that it took what we sent.
                Timer::Drain => self.close(Err(Error::DrainTimeout)),
                Timer::Stall => self.close(Err(Error::Stalled)),
                Timer::Idle => self.close(Err(Error::IdleTimeout)),
                // Asked again by the shutdown as it moves on (see `advance_shutdown`).
                Timer::Acknowledgement => {}
            }
            if !matches!(
                self.state,
                State::Open(_) | State::Establishing(_) | State::Delay
            ) {
                // Decided: what else expired no longer matters.
                return;
            }
        }
    }

    // ---- the data path, run lazily from poll_output ----

    /// Hands out what can leave now, starts TLS when its turn comes, and moves a shutdown on.
    fn hand_out(&mut self) {
        if !matches!(self.state, State::Open(_)) {
            return;
        }
        while let Some(segment) = self.queue.pop_plaintext() {
            self.ledger.plaintext(segment.len());
            self.outstanding.push(segment.clone());
            self.outputs.push_back(Output::Transmit(segment));
        }
        if matches!(self.tls, Tls::Requested) && !self.queue.has_plaintext_prefix() {
            let Some(config) = &self.config.tls else {
                return;
            };
            match TlsSession::new(config, &self.destination) {
                Ok(session) => {
                    self.tls = Tls::Active(Box::new(session));
                    let timeout = self.config.tls_handshake_timeout;
                    self.timers.set(Timer::TlsHandshake, self.now, timeout);
                }
                Err(error) => return self.close(Err(Error::Tls(error))),
            }
        }
        if let Err((error, alert)) = self.encrypt_queue() {
            return self.fail_tls(error, alert);
        }
        self.advance_shutdown();
        self.update_stall_timer(false);
    }

    /// Under TLS: hands out the session's own TLS bytes, then seals what is queued one
    /// record at a time, each record its own transmit (its ciphertext is handed out as
    /// sealed, no copy).
    fn encrypt_queue(&mut self) -> Result<(), (TlsError, Option<AlertSent>)> {
        let Tls::Active(session) = &mut self.tls else {
            return Ok(());
        };
        let data_waits = session.can_send() && !self.queue.is_empty();
        if !data_waits && !session.has_outgoing() {
            return Ok(());
        }
        if session.has_outgoing() {
            let mut own = self.buffers.take();
            let handshake = session.write_outgoing(&mut own);
            self.ledger.tls(handshake, 0);
            self.outputs
                .push_back(Output::Transmit(own.split().freeze()));
            self.buffers.give_back(own);
        }
        let mut chunks = Vec::new();
        while session.can_send() {
            chunks.clear();
            let plaintext = self.queue.pop_for_tls(session.max_plaintext(), &mut chunks);
            if plaintext == 0 {
                break;
            }
            // Kept before sealing: should sealing fail, they are still handed back.
            for chunk in &chunks {
                self.outstanding.push(chunk.clone());
            }
            let record = session.seal(&chunks)?;
            self.ledger.tls(record.len(), plaintext);
            self.outputs.push_back(Output::Transmit(record));
        }
        Ok(())
    }

    /// Graceful shutdown, once everything queued is handed out: `close_notify`, then FIN once
    /// all is written, then close once the peer's stream has ended too.
    fn advance_shutdown(&mut self) {
        if self.shutdown == Shutdown::None || !self.queue.is_empty() || self.tls_handshaking() {
            return;
        }
        if let Tls::Active(session) = &mut self.tls {
            if let Err(error) = session.send_close_notify() {
                return self.close(Err(Error::Tls(error)));
            }
            if session.has_outgoing() {
                let mut alert = BytesMut::new();
                self.ledger.tls(session.write_outgoing(&mut alert), 0);
                self.outputs.push_back(Output::Transmit(alert.freeze()));
            }
        }
        let flushed = self.ledger.in_flight() == 0;
        let State::Open(open) = &mut self.state else {
            return;
        };
        if flushed && !open.fin_sent {
            open.fin_sent = true;
            self.outputs.push_back(Output::ShutdownWrite);
        }
        if !(open.fin_sent && open.peer_closed) {
            return;
        }
        // Both ends are closed. Where the driver can tell, the close completes once the
        // peer's TCP has acknowledged our FIN: ask until it has (or the drain deadline).
        if open.fin_acked || !self.ledger.tracks_acknowledgements() {
            let ending = self.ending();
            return self.close(Ok(ending));
        }
        if self.timers.get(Timer::Acknowledgement).is_none() {
            let doublings = u32::from(self.queries.fin_waits.min(16));
            let wait = FIN_WAIT_FIRST
                .saturating_mul(1 << doublings)
                .min(FIN_WAIT_MAX);
            self.queries.fin_waits = self.queries.fin_waits.saturating_add(1);
            self.timers.set(Timer::Acknowledgement, self.now, wait);
            self.ask();
        }
    }

    fn tls_handshaking(&self) -> bool {
        match &self.tls {
            Tls::Requested => true,
            Tls::Active(session) => session.is_handshaking(),
            Tls::Off => false,
        }
    }

    // ---- the end ----

    /// How a shutdown that completes now ended.
    fn ending(&self) -> Ending {
        match self.shutdown {
            Shutdown::PeerClosed => Ending::PeerClosed,
            Shutdown::Finish | Shutdown::None => Ending::Finished,
        }
    }

    /// Ends the client with `result`. A connection that wrote what its peer has not
    /// acknowledged (as far as is known) first asks the driver what it has: the close report
    /// waits for the answer.
    fn close(&mut self, result: Result<Ending, Error>) {
        let ask_first = matches!(self.state, State::Open(_))
            && self.ledger.tracks_acknowledgements()
            && self.ledger.wire_acked() < self.ledger.wire_written();
        if !ask_first {
            return self.finish_close(result, true);
        }
        let State::Open(open) = std::mem::replace(&mut self.state, State::Closed) else {
            return;
        };
        // Transmits the driver has not seen yet will never be written.
        self.outputs.retain(|o| !matches!(o, Output::Transmit(_)));
        self.timers.stop_all();
        self.timers
            .set(Timer::Acknowledgement, self.now, ANSWER_WAIT);
        self.ask();
        self.state = State::Closing(Box::new(Closing {
            open,
            result,
            waiting_for: Wait::Answer,
        }));
    }

    /// The driver answered, or (`answered: false`) did not in time: the decided end.
    fn end_closing(&mut self, answered: bool) {
        if let State::Closing(closing) = std::mem::replace(&mut self.state, State::Closed) {
            let Closing { open, result, .. } = *closing;
            self.state = State::Open(open);
            self.finish_close(result, answered);
        }
    }

    /// Closes the socket (if there is one) and emits the one [`Event::Closed`]. With
    /// `answered`, what the ledger says was acknowledged is up to date: what it does not
    /// count was lost. Without it, the bytes not known to be acknowledged are not known to
    /// be lost either.
    fn finish_close(&mut self, result: Result<Ending, Error>, answered: bool) {
        // `Some(aborted)` for a connection whose socket the driver must now close.
        let (peer_closed, fin_acknowledged, confirmed, socket) = match &mut self.state {
            State::Closed | State::Closing(_) => return,
            State::Delay => (false, false, false, None),
            State::Establishing(race) => {
                race.cancel_all(self.now);
                while let Some(step) = race.poll_output() {
                    if let Step::Cancel(attempt) = step {
                        self.outputs.push_back(Output::Cancel(attempt));
                    }
                }
                self.attempts = race.take_attempts();
                for attempt in &self.attempts {
                    self.log.attempt_ended(attempt);
                }
                (false, false, false, None)
            }
            State::Open(open) => {
                // The stream closed both ways: the peer's end came, and our FIN, sent after
                // every byte, was acknowledged by its TCP; where the driver cannot tell,
                // the peer's end came after our FIN, answering it.
                let fin_answered = match self.ledger.tracks_acknowledgements() {
                    true => open.fin_acked,
                    false => open.peer_closed_after_fin,
                };
                let graceful = matches!(result, Ok(Ending::Finished | Ending::PeerClosed));
                let confirmed = graceful && open.peer_closed && open.fin_sent && fin_answered;
                // Transmits the driver has not seen yet will never be written: they stay
                // undelivered.
                self.outputs.retain(|o| !matches!(o, Output::Transmit(_)));
                let abort = matches!(result, Ok(Ending::Aborted));
                (open.peer_closed, open.fin_acked, confirmed, Some(abort))
            }
        };
        self.state = State::Closed;
        self.timers.stop_all();
        let written = self.ledger.app_written();
        let known = answered && self.ledger.tracks_acknowledgements();
        let lost = match (confirmed, known) {
            (false, true) => written - self.ledger.app_acked(),
            _ => 0,
        };
        if let Some(abort) = socket {
            // An abort resets, so that the peer knows the stream was cut; so does a close
            // that hands back bytes as lost, so that the kernel drops them instead of
            // delivering them after the application has them back (to send again).
            let reset = abort || lost > 0;
            self.outputs
                .push_back(if reset { Output::Reset } else { Output::Close });
        }
        if lost == 0 {
            // What was written and is not known lost is not handed back.
            self.outstanding.release_until(written);
        }
        let mut undelivered = self.outstanding.take();
        undelivered.extend(self.queue.take_all());
        self.buffers.clear();
        self.tls = Tls::Off;
        let confirmed = if confirmed { written } else { 0 };
        let report = CloseReport {
            bytes_accepted: self.bytes_accepted,
            bytes_written: written,
            bytes_confirmed: confirmed,
            bytes_unconfirmed: written - confirmed - lost,
            bytes_lost: lost,
            bytes_undelivered: self.bytes_accepted - written + lost,
            bytes_received: self.bytes_received,
            wire_bytes_written: self.ledger.wire_written(),
            peer_closed,
            fin_acknowledged,
            tls_alert_sent: self.tls_alert_sent.take(),
            bytes_handed_back: 0,
            attempts: std::mem::take(&mut self.attempts),
            generations: Vec::new(),
            result,
        };
        self.log.closed(&report);
        for bytes in undelivered {
            self.emit(Event::Undelivered(bytes));
        }
        self.emit(Event::Closed(Box::new(report)));
    }

    // ---- helpers ----

    fn emit(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    /// Moves the clock to `now` and the latest send's, never back.
    #[inline]
    fn catch_up(&mut self, now: Instant) {
        self.catch_up_with_sends();
        self.now = self.now.max(now);
    }

    /// Moves the clock to the latest send's, never back.
    #[inline]
    fn catch_up_with_sends(&mut self) {
        if let Some(sent) = self.send_now.take() {
            self.now = self.now.max(sent);
        }
    }

    /// Refuses `input` (named by [`Input::name`], or a request's name) unless it is `allowed` now.
    fn require(&self, input: &'static str, allowed: bool) -> Result<(), InvalidInput> {
        if allowed {
            Ok(())
        } else {
            Err(self.unexpected(input))
        }
    }

    pub(crate) fn unexpected(&self, input: &'static str) -> InvalidInput {
        InvalidInput::Unexpected {
            input,
            phase: self.phase(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bursts of small sends, each handed out and not yet written, leave spare buffers in
    /// the pool; once everything is written the connection is quiet and keeps one.
    #[test]
    // Any instant will do: the test never lets time pass.
    #[allow(clippy::disallowed_methods)]
    fn a_connection_with_everything_written_keeps_one_spare_buffer() {
        let now = Instant::now();
        let destination = Destination::new("127.0.0.1", 7);
        let mut client = Connection::new(destination, Config::new(), now);
        while client.poll_output().is_some() {}
        client
            .handle_input(now, Input::Connected(AttemptId(0)))
            .unwrap();
        let mut handed_out = 0;
        for _ in 0..4 {
            for _ in 0..1000 {
                let message = Bytes::from(vec![1u8; 64]);
                client.send(now, message).unwrap();
            }
            while let Some(output) = client.poll_output() {
                if let Output::Transmit(bytes) = output {
                    handed_out += bytes.len();
                }
            }
        }
        assert!(client.buffers.len() > 1, "the bursts left spares");

        client
            .handle_input(now, Input::Written(handed_out))
            .unwrap();

        assert_eq!(client.buffers.len(), 1);
    }
}
