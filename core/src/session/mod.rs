//! A client that comes back: one [`Connection`] per connection (a generation), a new one after
//! each loss, with backoff, and every byte accounted for across all of them.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

mod books;
mod request;

pub use request::Leave;

use crate::admission::SendAdmission;
use crate::backoff::Backoff;
use crate::connection::Connection;
use crate::request::Control;
use crate::send_log::SendLog;
use crate::{
    Attempt, AttemptId, CloseReport, Config, Destination, Ending, Error, Event, GenerationReport,
    Input, InvalidInput, Output, Phase, Preamble, ReconnectPolicy,
};
use books::{AppCounts, Totals, through_with_acknowledgements};

/// A reconnecting client, as a pure state machine: the same contract as a
/// [`Connection`] over as many connections as it takes, each a *generation*. What a
/// [`Client`](crate::Client) is with a reconnect policy (see its docs for the contract).
#[derive(Debug)]
pub(crate) struct Session {
    config: Arc<Config>,
    policy: ReconnectPolicy,
    backoff: Backoff,
    /// The current generation's client.
    client: Connection,
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
    /// The application asked for the next connection ([`Session::reconnect`]).
    restart: bool,
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
    /// Sends that wait: for the next connection, while the current one is on its way out
    /// by itself (the peer closed it and it is flushing); or for this one's preamble.
    /// Bounded by the send limit.
    waiting: Vec<Bytes>,
    /// The current generation's sends wait for the application's preamble
    /// ([`Preamble::Dialogue`]).
    holding: bool,
    /// Preamble bytes queued on the current generation: the front of its stream.
    preamble: u64,
    /// Every byte sent and not yet acknowledged by the application, with
    /// [`ReconnectPolicy::replay_unacknowledged`].
    log: Option<SendLog>,
    /// With [`ReconnectPolicy::replay_unacknowledged`], the stream offset of the current
    /// generation's first application byte: everything before it was acknowledged or
    /// handed back.
    replay_from: u64,
    /// Bytes the application had acknowledged when the current generation began.
    acknowledged_at_start: u64,
    /// An earlier generation asked for a name to be resolved: its answer may still come.
    earlier_lookups: bool,
    /// The current generation asked for a name to be resolved.
    looked_up: bool,
    /// The generation whose question about acknowledgements is out, if one is.
    asked: Option<u32>,
    /// The current generation's `Undelivered` bytes, held until its end is judged.
    undelivered: Vec<Bytes>,
    /// When the session was created: a report's times count from here.
    started: Instant,
    /// When the current generation's client was created.
    generation_started: Instant,
    /// The attempts of the generations that ended, under session-wide ids and times.
    attempts: Vec<Attempt>,
    /// The generations that ended.
    generations: Vec<GenerationReport>,
    /// Bytes handed back while the session went on.
    handed_back: u64,
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

impl Session {
    /// Creates a session that starts its first connection at `now` (after
    /// [`Config::delay`], as a [`Client`] does).
    pub fn new(
        destination: Destination,
        config: impl Into<Arc<Config>>,
        policy: ReconnectPolicy,
        now: Instant,
    ) -> Self {
        let config: Arc<Config> = config.into();
        let mut session = Self {
            client: Connection::new(destination, config.clone(), now),
            backoff: Backoff::new(&policy),
            log: policy.replay_unacknowledged.then(SendLog::default),
            config,
            policy,
            generation: 0,
            attempt_base: 0,
            connected_at: None,
            usable_at: None,
            failures: 0,
            lost_at: None,
            shutdown: None,
            restart: false,
            tls: TlsUse::Off,
            earlier: Totals::default(),
            accepted: 0,
            send_refused: false,
            waiting: Vec::new(),
            holding: false,
            preamble: 0,
            replay_from: 0,
            acknowledged_at_start: 0,
            earlier_lookups: false,
            looked_up: false,
            asked: None,
            undelivered: Vec::new(),
            started: now,
            generation_started: now,
            attempts: Vec::new(),
            generations: Vec::new(),
            handed_back: 0,
            outputs: VecDeque::new(),
            closed: false,
            now,
        };
        session.begin_preamble();
        session
    }

    /// Handles one of the driver's reports at `now`, as a connection does. Reports about
    /// an earlier generation's attempts are late, and ignored.
    pub(crate) fn handle_input(
        &mut self,
        now: Instant,
        input: Input<'_>,
    ) -> Result<(), InvalidInput> {
        self.now = self.now.max(now);
        // A report that arrives once the current connection has ended (its outputs not yet
        // all taken) is about that connection: late, and a no-op, as for a client.
        let ended = self.client.is_closed();
        self.settle();
        if self.closed || ended {
            return Ok(());
        }
        match input {
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
            Input::Resolved { .. } if self.earlier_lookups => {
                // An earlier connection's lookup may answer after it ended, and the driver
                // cannot tell whose answer it is: one this connection cannot take is late.
                let _ = self.client.handle_input(now, input);
                Ok(())
            }
            other => self.client.handle_input(now, other),
        }
    }

    /// Takes the application's request to start TLS, finish or abort at `now`.
    pub(crate) fn request(&mut self, now: Instant, request: Control) -> Result<(), InvalidInput> {
        self.now = self.now.max(now);
        self.settle();
        if self.closed {
            return Err(self.unexpected(request.name()));
        }
        match request {
            Control::StartTls => {
                let connected = self.connected_at.is_some();
                // TLS from the first byte only if it was asked for before the first
                // connection, with nothing queued to go in plaintext before it but a fixed
                // preamble, which goes after the handshake: queued again behind StartTls.
                let plaintext_queued = self.client.bytes_accepted() > self.preamble_fixed();
                let from_start = !connected && self.generation == 0 && !plaintext_queued;
                let preamble = match from_start {
                    true => self.client.take_back_unsent(),
                    false => Vec::new(),
                };
                let answer = self.client.request(now, Control::StartTls);
                for chunk in preamble {
                    self.client.resend(self.now, chunk);
                }
                answer?;
                self.tls = if from_start {
                    TlsUse::FromTheStart
                } else {
                    TlsUse::MidStream
                };
                Ok(())
            }
            Control::Finish => self.finish(now),
            Control::Abort => {
                self.shutdown = Some(Ending::Aborted);
                self.client.request(now, Control::Abort)
            }
        }
    }

    /// Queues `data` on the current connection, or for the next one while waiting (or for
    /// this one's preamble).
    pub fn send(&mut self, now: Instant, data: Bytes) -> Result<(), InvalidInput> {
        self.now = self.now.max(now);
        self.settle();
        if self.closed || self.shutdown.is_some() {
            let phase = self.phase();
            return Err(InvalidInput::SendAfterShutdown { data, phase });
        }
        let len = data.len() as u64;
        if let Some(log) = &self.log
            && !SendAdmission::new(&self.config).fits(log.len(), data.len())
        {
            // The application's window of unacknowledged bytes is full.
            self.send_refused = true;
            let queued = usize::try_from(log.len()).unwrap_or(usize::MAX);
            let limit = self.config.send_limit;
            return Err(InvalidInput::QueueFull {
                data,
                queued,
                limit,
            });
        }
        let kept = self.log.is_some().then(|| data.clone());
        let sent = match self.holding {
            // Waits for the preamble, as a send waits for the next connection.
            true => Err(InvalidInput::SendAfterShutdown {
                data,
                phase: self.phase(),
            }),
            false => self.client.send(self.now, data),
        };
        let sent = self.after_send(len, sent);
        if let (Ok(()), Some(log), Some(kept)) = (&sent, &mut self.log, kept) {
            log.push(kept);
        }
        sent
    }

    /// Queues a copy of `data`, as [`Client::send_slice`] does, on the current connection
    /// or for the next one.
    pub fn send_slice(&mut self, now: Instant, data: &[u8]) -> Result<(), InvalidInput> {
        self.now = self.now.max(now);
        self.settle();
        if self.closed || self.shutdown.is_some() || self.holding || self.log.is_some() {
            return self.send(now, Bytes::copy_from_slice(data));
        }
        let sent = self.client.send_slice(now, data);
        self.after_send(data.len() as u64, sent)
    }

    /// Queues `data` as part of the current connection's preamble
    /// ([`Preamble::Dialogue`]): ahead of every send waiting for it, and not replayed on
    /// the next connection, which has a preamble of its own. Refused unless the session
    /// [`awaits_preamble`](Self::awaits_preamble): once
    /// [`preamble_done`](Self::preamble_done) was called for this connection, once it is on
    /// its way out (closing, finishing, asked to make way), and without a dialogue.
    pub fn send_preamble(&mut self, now: Instant, data: Bytes) -> Result<(), InvalidInput> {
        self.now = self.now.max(now);
        self.settle();
        if !self.awaits_preamble() {
            return Err(self.unexpected("send_preamble"));
        }
        let len = data.len() as u64;
        self.client.send(now, data)?;
        self.preamble += len;
        Ok(())
    }

    /// The current connection's preamble is done ([`Preamble::Dialogue`]): what waited for
    /// it (sends, and what the session replays) goes out now, in order. Refused, as
    /// [`send_preamble`](Self::send_preamble) is, unless the session
    /// [`awaits_preamble`](Self::awaits_preamble): what waits then waits for the next
    /// connection.
    pub fn preamble_done(&mut self, now: Instant) -> Result<(), InvalidInput> {
        self.now = self.now.max(now);
        self.settle();
        // A connection on its way out takes nothing more: what waits, waits for the next.
        if !self.awaits_preamble() {
            return Err(self.unexpected("preamble_done"));
        }
        self.holding = false;
        if let Some(log) = &self.log {
            // What the application acknowledged since the replay was queued (answers the
            // lost connection gave, taken after the session had moved on) need not go
            // again: this connection's stream begins at the first byte not acknowledged now.
            drop_front(
                &mut self.waiting,
                log.front().saturating_sub(self.replay_from),
            );
            self.replay_from = log.front();
        }
        for chunk in std::mem::take(&mut self.waiting) {
            self.client.resend(self.now, chunk);
        }
        self.owe_send_ready();
        Ok(())
    }

    /// Drops the current connection (or the attempts under way) and makes the next one
    /// after the backoff, as a loss would: for an application that finds the server dead
    /// at its own level (a ping unanswered, a protocol error). `leave` says how; what the
    /// connection did not get through is handed back or kept by the policy.
    pub fn reconnect(&mut self, now: Instant, leave: Leave) -> Result<(), InvalidInput> {
        self.now = self.now.max(now);
        self.settle();
        let waiting = self.generation > 0 && self.client.phase() == Phase::Delay;
        if self.closed || self.shutdown.is_some() || self.restart || waiting {
            return Err(self.unexpected("reconnect"));
        }
        self.restart = true;
        let request = match leave {
            Leave::Reset => Control::Abort,
            Leave::Finish => Control::Finish,
        };
        // Refused only by a connection already on its way out: it ends all the same.
        let _ = self.client.request(now, request);
        // The connection takes no more sends, so a producer it refused will not hear from
        // it: the sends now wait for the next connection, and the room is the session's.
        self.owe_send_ready();
        Ok(())
    }

    /// The application's protocol acknowledged `n` more bytes, in the order they were sent
    /// ([`ReconnectPolicy::replay_unacknowledged`]): they will not be sent again, and make
    /// room in the window. Refused without that policy, and for more than are
    /// unacknowledged.
    pub fn acknowledged(&mut self, n: usize) -> Result<(), InvalidInput> {
        self.settle();
        let Some(log) = &mut self.log else {
            return Err(self.unexpected("acknowledged"));
        };
        if let Err(unacknowledged) = log.acknowledge(n as u64) {
            return Err(InvalidInput::AcknowledgedTooMuch {
                acknowledged: n,
                unacknowledged,
            });
        }
        self.owe_send_ready();
        Ok(())
    }

    /// Counts a send of `len` bytes the current client took, or decides what its refusal
    /// means for the session.
    fn after_send(&mut self, len: u64, sent: Result<(), InvalidInput>) -> Result<(), InvalidInput> {
        match sent {
            Ok(()) => {
                self.accepted += len;
                Ok(())
            }
            // The connection is ending by itself (the peer closed it), or the send waits for
            // its preamble; the session is not ending.
            Err(InvalidInput::SendAfterShutdown { data, .. }) => {
                let held = total(&self.waiting);
                let limit = self.config.send_limit as u64;
                if held > 0 && held + len > limit {
                    self.send_refused = true;
                    return Err(InvalidInput::QueueFull {
                        data,
                        queued: usize::try_from(held).unwrap_or(usize::MAX),
                        limit: self.config.send_limit,
                    });
                }
                self.waiting.push(data);
                self.accepted += len;
                Ok(())
            }
            Err(refusal) => {
                self.send_refused |= matches!(refusal, InvalidInput::QueueFull { .. });
                Err(refusal)
            }
        }
    }

    /// Says [`Event::SendReady`] now if a producer waits for room and there is some; if
    /// the connection's own queue is what is full, has it say so once it has drained.
    fn owe_send_ready(&mut self) {
        if !self.send_refused || self.shutdown.is_some() {
            return;
        }
        if self.has_room() {
            self.send_refused = false;
            self.outputs.push_back(Output::Event(Event::SendReady));
        } else {
            // If it is the connection's queue that is full, it says when it has drained
            // (this judges again then); any other queue frees room through the session.
            self.client.owe_send_ready();
        }
    }

    /// Whether a refused producer may send again: the current connection has room (or the
    /// sends waiting for the next one are few), and so has the window of unacknowledged
    /// bytes.
    fn has_room(&self) -> bool {
        let admission = SendAdmission::new(&self.config);
        let window = self
            .log
            .as_ref()
            .is_none_or(|log| admission.has_room_again(log.len()));
        // Sends wait, for the preamble or for the next connection, while this one takes none.
        let queue = match self.holding || !self.client.takes_sends() {
            true => admission.has_room_again(total(&self.waiting)),
            false => self.client.has_room(),
        };
        window && queue
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

    /// Returns the current generation's client.
    pub(crate) fn client(&self) -> &Connection {
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

    /// Returns true while the current connection's sends wait for the application's
    /// preamble ([`Preamble::Dialogue`]).
    pub fn awaits_preamble(&self) -> bool {
        // Not for a connection on its way out: finishing, closing, or asked to make way.
        let ending = self.restart || matches!(self.client.phase(), Phase::Draining | Phase::Closed);
        self.holding && !self.closed && self.shutdown.is_none() && !ending
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
    /// connection and replayed on the next counts once; a preamble not at all).
    pub fn bytes_written(&self) -> u64 {
        let current = self
            .current(Connection::bytes_written)
            .saturating_sub(self.preamble);
        self.earlier.written() + current
    }

    /// Returns the application bytes accepted and not yet written on the current (or next)
    /// connection, or, with [`ReconnectPolicy::replay_unacknowledged`], not yet
    /// acknowledged: what a producer waits on.
    pub fn bytes_queued(&self) -> u64 {
        let queued = self.current(Connection::bytes_queued) + total(&self.waiting);
        match &self.log {
            Some(log) => queued.max(log.len()),
            None => queued,
        }
    }

    /// Returns the bytes sent and not yet acknowledged by the application
    /// ([`ReconnectPolicy::replay_unacknowledged`]; zero without it).
    pub fn bytes_unacknowledged(&self) -> u64 {
        self.log.as_ref().map_or(0, SendLog::len)
    }

    /// Returns the application bytes delivered as `Data` over the whole session.
    pub fn bytes_received(&self) -> u64 {
        self.earlier.received + self.current(Connection::bytes_received)
    }

    /// Returns the bytes delivered as `Data` and not yet consumed, over the whole session.
    pub fn bytes_unconsumed(&self) -> u64 {
        // An ended generation's client still holds what it delivered: once the session is
        // over, that is all there is.
        self.client.bytes_unconsumed()
    }

    /// The application is done with `n` more delivered bytes.
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
        // Waiting to reconnect with nothing to deliver (a preamble alone is not worth a
        // connection): nothing to connect for.
        let waiting = self.client.phase() == Phase::Delay && self.generation > 0;
        let to_deliver =
            self.client.bytes_queued().saturating_sub(self.preamble) + total(&self.waiting);
        if waiting && to_deliver == 0 && self.shutdown.is_none() {
            self.shutdown = Some(Ending::Finished);
            let report = self.session_report(None, Ok(Ending::Finished));
            self.end(report);
            return Ok(());
        }
        match self.client.request(now, Control::Finish) {
            Ok(()) => {}
            // The connection is finishing already, to make way for the next one: the
            // session ends with it instead (after the sends that wait, if any).
            Err(InvalidInput::Unexpected { .. }) if self.restart && self.shutdown.is_none() => {}
            Err(refusal) => return Err(refusal),
        }
        self.shutdown = Some(Ending::Finished);
        Ok(())
    }

    // ---- the current generation ----

    /// Starts the current generation's preamble: a fixed one is queued first, a dialogue
    /// holds the sends until the application says it is done.
    fn begin_preamble(&mut self) {
        self.preamble = 0;
        self.holding = false;
        match &self.policy.preamble {
            Preamble::Fixed(bytes) => {
                self.preamble = bytes.len() as u64;
                self.client.resend(self.now, bytes.clone());
            }
            Preamble::Dialogue => self.holding = true,
            Preamble::None => {}
        }
    }

    /// The bytes of a fixed preamble (zero for any other).
    fn preamble_fixed(&self) -> u64 {
        match &self.policy.preamble {
            Preamble::Fixed(bytes) => bytes.len() as u64,
            _ => 0,
        }
    }

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
            Output::Event(Event::PeerClosed) => {
                // The connection may take no more sends now, and so never call back a
                // producer it refused: the sends wait for the next one, and the room is the
                // session's to judge.
                self.outputs.push_back(Output::Event(Event::PeerClosed));
                self.owe_send_ready();
                None
            }
            Output::Event(Event::SendReady) => {
                // The connection has room; the window of unacknowledged bytes may not.
                self.send_refused = true;
                self.owe_send_ready();
                None
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
            generation => Event::Reconnected {
                generation,
                addr,
                replays_from: self.replay_from,
            },
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
    fn generation_ended(&mut self, mut report: CloseReport) {
        // Its attempts, under the ids its `Connect`s had and the session's clock.
        let offset = self
            .generation_started
            .saturating_duration_since(self.started);
        for attempt in &mut report.attempts {
            attempt.id = self.outer(attempt.id);
            attempt.started += offset;
            attempt.ended += offset;
        }
        self.attempts.extend(report.attempts.iter().cloned());
        // Its preamble is its own: not the application's bytes, and not sent again.
        let app = AppCounts::of(&report, self.preamble);
        let through = report.bytes_confirmed + report.bytes_unconfirmed;
        drop_front(&mut self.undelivered, self.preamble.saturating_sub(through));
        self.earlier.confirmed += app.confirmed;
        self.earlier.unconfirmed += app.unconfirmed;
        self.earlier.received += report.bytes_received;
        self.earlier.wire_written += report.wire_bytes_written;
        // A connection that lost everything the application wrote on it (a server that
        // accepts and never reads, its preamble aside) made no progress, however long it
        // lasted: not a stable one. Nor, where the application acknowledges, did one on
        // which nothing it was waiting for was acknowledged.
        let progressed = match &self.log {
            Some(log) => log.acknowledged() > self.acknowledged_at_start || log.len() == 0,
            None => app.written == 0 || app.lost < app.written,
        };
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
        // `Finish` delivers them first; but not after an application's preamble, which it
        // can no longer make once finishing.
        let dialogue = self.policy.preamble == Preamble::Dialogue;
        let sends_wait = !self.waiting.is_empty() && !dialogue;
        let ends = match &report.result {
            _ if self.shutdown == Some(Ending::Aborted) => true,
            _ if self.shutdown.is_some() && !sends_wait => true,
            // A reconnect asked for ends as an abort or a finish does: Ok, and the next
            // connection follows unless the policy's limits say otherwise.
            Err(error) => (self.policy.is_permanent)(error) || out_of_time || out_of_attempts,
            Ok(_) => out_of_time || out_of_attempts,
        };
        self.restart = false;
        if ends {
            self.earlier.lost += app.lost;
            let result = report.result.clone();
            let mut session = self.session_report(Some((&report, app)), result);
            self.record(&report, app, session.bytes_undelivered, 0);
            session.generations = self.generations.clone();
            return self.end(session);
        }
        self.reconnect_after(report, app);
    }

    /// Lists the generation that ended with `report` (`app`: its application bytes) in the
    /// session's report: `handed_back` bytes went back to the application, `carried` to the
    /// next connection.
    fn record(&mut self, report: &CloseReport, app: AppCounts, handed_back: u64, carried: u64) {
        self.generations.push(GenerationReport {
            generation: self.generation,
            result: report.result.clone(),
            started: self
                .generation_started
                .saturating_duration_since(self.started),
            ended: self.now.saturating_duration_since(self.started),
            bytes_written: app.written,
            bytes_confirmed: app.confirmed,
            bytes_unconfirmed: app.unconfirmed,
            bytes_lost: app.lost,
            bytes_handed_back: handed_back,
            bytes_carried: carried,
        });
    }

    /// Starts the next generation after the backoff.
    fn reconnect_after(&mut self, report: CloseReport, app: AppCounts) {
        let delay = self.backoff.delay(&self.policy, self.failures);
        // Bytes meant for a STARTTLS session begun mid-stream must not go out in plaintext
        // before the application redoes it: they come back instead, unless a preamble
        // dialogue holds them until it has.
        let dialogue = self.policy.preamble == Preamble::Dialogue;
        let resendable = self.tls != TlsUse::MidStream || dialogue;
        let undelivered = std::mem::take(&mut self.undelivered);
        let waiting = std::mem::take(&mut self.waiting);
        let (carry, hand_back) = match (&mut self.log, resendable) {
            // Everything not acknowledged goes again, the waiting sends among it.
            (Some(log), true) => (log.replay(), Vec::new()),
            // Handed back, they are the application's again: not acknowledged, not kept.
            (Some(log), false) => {
                let all = log.replay();
                log.hand_back();
                (Vec::new(), all)
            }
            (None, true) if self.policy.replay_undelivered => {
                ([undelivered, waiting].concat(), Vec::new())
            }
            (None, true) => (waiting, undelivered),
            (None, false) => (Vec::new(), [undelivered, waiting].concat()),
        };
        // Replayed, lost bytes count where they get through; handed back, they were lost.
        let replayed = resendable && (self.log.is_some() || self.policy.replay_undelivered);
        if !replayed {
            self.earlier.lost += app.lost;
        }
        let (carried, handed_back) = (total(&carry), total(&hand_back));
        self.handed_back += handed_back;
        self.record(&report, app, handed_back, carried);
        self.hand_back(hand_back);
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
        let destination = self.client.destination().clone();
        self.client = Connection::new(destination, config, self.now);
        self.generation_started = self.now;
        // What the application still holds counts against the new connection's window.
        self.client.carry_unconsumed(unconsumed);
        if self.tls == TlsUse::FromTheStart {
            // Accepted: a new client takes StartTls, and this one has a TLS configuration.
            let _ = self.client.request(self.now, Control::StartTls);
        }
        self.replay_from = self.log.as_ref().map_or(0, SendLog::front);
        self.acknowledged_at_start = self.log.as_ref().map_or(0, SendLog::acknowledged);
        self.begin_preamble();
        for chunk in carry {
            match self.holding {
                true => self.waiting.push(chunk),
                false => self.client.resend(self.now, chunk),
            }
        }
        if self.tls == TlsUse::MidStream {
            self.tls = TlsUse::Off;
        }
        if self.shutdown == Some(Ending::Finished) {
            // Accepted: a new client takes `Finish`.
            let _ = self.client.request(self.now, Control::Finish);
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
        self.owe_send_ready();
        self.failures = self.failures.saturating_add(1);
    }

    /// Ends the session: what is left is handed back, then the one report.
    fn end(&mut self, report: CloseReport) {
        let mut undelivered = std::mem::take(&mut self.undelivered);
        undelivered.append(&mut self.waiting);
        if let Some(log) = &self.log {
            // Every byte not acknowledged is the log's, whichever connection last carried
            // it: what did not get through is its tail.
            undelivered = log.replay();
            let through = log.len().saturating_sub(report.bytes_undelivered);
            drop_front(&mut undelivered, through);
        }
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

    /// The whole session's report; `last` is the final generation's, with its application
    /// bytes, if it ran.
    fn session_report(
        &self,
        last: Option<(&CloseReport, AppCounts)>,
        result: Result<Ending, Error>,
    ) -> CloseReport {
        let (confirmed, unconfirmed, lost) = match &self.log {
            // Everything not acknowledged went again on each connection: the last one says
            // how far it got.
            Some(log) => {
                let app = last.map(|(_, app)| app).unwrap_or_default();
                let (confirmed, unconfirmed) = through_with_acknowledgements(
                    log.acknowledged(),
                    log.front(),
                    log.len(),
                    self.replay_from,
                    app,
                );
                (confirmed, unconfirmed, app.lost)
            }
            None => (
                self.earlier.confirmed,
                self.earlier.unconfirmed,
                self.earlier.lost,
            ),
        };
        let through = confirmed + unconfirmed;
        CloseReport {
            bytes_accepted: self.accepted,
            bytes_written: through + lost,
            bytes_confirmed: confirmed,
            bytes_unconfirmed: unconfirmed,
            bytes_lost: lost,
            bytes_undelivered: self.accepted.saturating_sub(through + self.handed_back),
            bytes_received: self.earlier.received,
            wire_bytes_written: self.earlier.wire_written,
            peer_closed: last.is_some_and(|(r, _)| r.peer_closed),
            fin_acknowledged: last.is_some_and(|(r, _)| r.fin_acknowledged),
            tls_alert_sent: last.and_then(|(r, _)| r.tls_alert_sent),
            bytes_handed_back: self.handed_back,
            attempts: self.attempts.clone(),
            generations: self.generations.clone(),
            result,
        }
    }

    // ---- helpers ----

    /// The current client's figure, or 0 once its report is counted in `earlier`.
    fn current(&self, figure: fn(&Connection) -> u64) -> u64 {
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

    /// The refusal of a request (named by its method) that makes no sense now.
    fn unexpected(&self, input: &'static str) -> InvalidInput {
        InvalidInput::Unexpected {
            input,
            phase: self.phase(),
        }
    }
}

/// The bytes in `chunks`.
fn total(chunks: &[Bytes]) -> u64 {
    chunks.iter().map(|b| b.len() as u64).sum()
}

/// Drops the first `n` bytes of `chunks`.
fn drop_front(chunks: &mut Vec<Bytes>, mut n: u64) {
    let mut kept = Vec::with_capacity(chunks.len());
    for mut chunk in chunks.drain(..) {
        let len = chunk.len() as u64;
        if n >= len {
            n -= len;
            continue;
        }
        let _ = chunk.split_to(n as usize);
        n = 0;
        kept.push(chunk);
    }
    *chunks = kept;
}
