//! The reconnecting client's monitor: after every step, ids never reused and never two
//! connections (or a connection and an earlier generation's attempt) alive at once; every
//! wait within the policy's cap and never scheduled in the past; one final `Closed`, last;
//! and, in that report, every byte across every generation (written = confirmed +
//! unconfirmed + lost, accepted = confirmed + unconfirmed + undelivered, the `Undelivered`
//! events adding up to the undelivered bytes, the `Data` events to the bytes received); a
//! question about acknowledgements only on a connection, and an answer only when asked.

use std::time::Instant;

use crate::{
    AttemptId, Client, CloseReport, Event, Input, InvalidInput, Output, Phase, Preamble,
    ReconnectPolicy, Request,
};

use super::Step;

/// Watches a reconnecting [`Client`]'s outputs and answers; see the module documentation
/// of [`monitor`](crate::monitor).
#[derive(Debug)]
pub struct SessionMonitor {
    policy: ReconnectPolicy,
    /// The highest attempt id seen, plus one.
    issued: u32,
    /// Attempts under way.
    attempts: Vec<AttemptId>,
    /// The connection's socket is open.
    connected: bool,
    accepted: u64,
    received: u64,
    handed_back: u64,
    wire_written: u64,
    /// A `QueryUnacknowledged` is out, not yet answered.
    query_out: bool,
    /// Every attempt a `Connect` started, in order.
    connects: Vec<AttemptId>,
    closed: bool,
    now: Option<Instant>,
    /// The last reconnect's attempt number.
    last_attempt: Option<u32>,
    /// `Finish` or `Abort` was accepted (`Finish` only: `finishing`).
    shut_down: bool,
    finishing: bool,
    /// When the drain of the last connection must end at the latest, once it began.
    drain_by: Option<Instant>,
    /// A `Send` was refused as `QueueFull`, and no `SendReady` came since.
    owes_send_ready: bool,
    /// The preamble of generation `preamble_of` as far as it is known, and whether it is
    /// whole.
    preamble_of: Option<u32>,
    preamble: Vec<u8>,
    preamble_whole: bool,
    /// Bytes transmitted on the current connection.
    transmitted: u64,
    /// Transmits are TLS records, whose bytes say nothing of the order.
    encrypted: bool,
    /// Bytes the application acknowledged.
    acknowledged: u64,
    violations: Vec<String>,
}

impl SessionMonitor {
    /// A monitor for a session with `policy`.
    pub fn new(policy: &ReconnectPolicy) -> Self {
        Self {
            policy: policy.clone(),
            issued: 0,
            attempts: Vec::new(),
            connected: false,
            accepted: 0,
            received: 0,
            handed_back: 0,
            wire_written: 0,
            query_out: false,
            connects: Vec::new(),
            closed: false,
            now: None,
            last_attempt: None,
            shut_down: false,
            finishing: false,
            drain_by: None,
            owes_send_ready: false,
            preamble_of: None,
            preamble: Vec::new(),
            preamble_whole: false,
            transmitted: 0,
            encrypted: false,
            acknowledged: 0,
            violations: Vec::new(),
        }
        .with_preamble_of(0)
    }

    fn with_preamble_of(mut self, generation: u32) -> Self {
        self.preamble_of(generation);
        self
    }

    /// Follows `generation`'s preamble (from its start, if it is a new one).
    fn preamble_of(&mut self, generation: u32) {
        if self.preamble_of == Some(generation) {
            return;
        }
        self.preamble_of = Some(generation);
        (self.preamble, self.preamble_whole) = match &self.policy.preamble {
            Preamble::Fixed(bytes) => (bytes.to_vec(), true),
            Preamble::Dialogue => (Vec::new(), false),
            _ => (Vec::new(), true),
        };
        self.transmitted = 0;
    }

    /// Makes the application's request of `session` at `now` and checks what it said.
    pub fn request(
        &mut self,
        session: &mut Client,
        now: Instant,
        request: Request,
    ) -> Result<(), InvalidInput> {
        let (preamble, done, acknowledged) = match &request {
            Request::SendPreamble(data) => (Some(data.clone()), false, 0),
            Request::PreambleDone => (None, true, 0),
            Request::Acknowledged(n) => (None, false, *n as u64),
            Request::Send(_)
            | Request::StartTls
            | Request::Finish
            | Request::Abort
            | Request::Consumed(_) => {
                return self.step(session, now, Step::Request(request));
            }
            _ => (None, false, 0),
        };
        let unacknowledged = session.bytes_unacknowledged();
        let answer = request.apply(session, now);
        if answer.is_ok() {
            self.preamble_of(session.generation());
            if let Some(data) = preamble {
                self.preamble.extend_from_slice(&data);
            }
            self.preamble_whole |= done;
            self.acknowledged += acknowledged;
            if acknowledged > unacknowledged {
                self.violate(format!(
                    "{acknowledged} bytes acknowledged of {unacknowledged} unacknowledged"
                ));
            }
            self.now = Some(self.now.map_or(now, |seen| seen.max(now)));
        }
        answer
    }

    /// The preamble goes first on every connection: each transmitted byte within it is the
    /// preamble's, and none beyond it leaves before the application's preamble is done.
    fn transmitted(&mut self, bytes: &[u8]) {
        if self.encrypted {
            return;
        }
        let start = self.transmitted;
        self.transmitted += bytes.len() as u64;
        let known = self.preamble.len() as u64;
        let within = known.saturating_sub(start).min(bytes.len() as u64) as usize;
        let expected = &self.preamble[start.min(known) as usize..][..within];
        if bytes[..within] != *expected {
            self.violate(format!(
                "bytes {start}..{} of a connection are not its preamble",
                start + within as u64
            ));
        }
        if !self.preamble_whole && bytes.len() > within {
            self.violate(format!(
                "byte {} of a connection went out before its preamble was done",
                start + within as u64
            ));
        }
    }

    /// Hands `session` the driver's report at `now` and checks what it said.
    pub fn input(
        &mut self,
        session: &mut Client,
        now: Instant,
        input: Input<'_>,
    ) -> Result<(), InvalidInput> {
        self.step(session, now, Step::Report(input))
    }

    fn step(
        &mut self,
        session: &mut Client,
        now: Instant,
        step: Step<'_>,
    ) -> Result<(), InvalidInput> {
        let sent = match &step {
            Step::Request(Request::Send(data)) => data.len() as u64,
            _ => 0,
        };
        let written = match &step {
            Step::Report(Input::Written(n)) => *n as u64,
            _ => 0,
        };
        let late = self.closed && matches!(step, Step::Report(_));
        let timeout = matches!(step, Step::Report(Input::Timeout));
        // An answer that comes once the connection has closed (its outputs not yet all
        // taken) is a late report, as any other.
        let ack_answer = matches!(step, Step::Report(Input::Unacknowledged(_)))
            && session.phase() != Phase::Closed;
        let (finish, abort) = (
            matches!(step, Step::Request(Request::Finish)),
            matches!(step, Step::Request(Request::Abort)),
        );
        let answer = step.apply(session, now);
        if matches!(answer, Err(InvalidInput::QueueFull { .. })) && !self.shut_down {
            self.owes_send_ready = true;
        }
        if answer.is_ok() && (finish || abort) {
            self.shut_down = true;
            self.finishing = finish;
            self.owes_send_ready = false;
            if finish && self.connected {
                self.drain_from(session, self.now.map_or(now, |seen| seen.max(now)));
            }
        }
        if late && answer.is_err() {
            self.violate("a report after the session's end was refused".into());
        }
        if answer.is_ok() && ack_answer && !late {
            if !self.query_out {
                self.violate("an answer nobody asked for was taken".into());
            }
            self.query_out = false;
        }
        if answer.is_ok() {
            self.accepted += sent;
            if !late {
                self.wire_written += written;
            }
            self.now = Some(self.now.map_or(now, |seen| seen.max(now)));
        }
        if timeout {
            self.drain_check_deadline(session, now);
        }
        answer
    }

    fn drain_check_deadline(&mut self, session: &Client, now: Instant) {
        if session.poll_timeout().is_some_and(|next| next < now) {
            self.violate("a deadline was left in the past".into());
        }
    }

    /// Takes the next output of `session`, checking it. After the last one (`None`), checks
    /// the drain's deadline and that a refused producer was called back.
    pub fn poll_output(&mut self, session: &mut Client) -> Option<Output> {
        let Some(output) = session.poll_output() else {
            self.check_settled(session);
            return None;
        };
        self.output(&output, session);
        Some(output)
    }

    /// A drain starts at `now`: the session must end by the drain timeout.
    fn drain_from(&mut self, session: &Client, now: Instant) {
        if self.drain_by.is_none() {
            self.drain_by = now.checked_add(session.config().drain_timeout);
        }
    }

    /// Invariants 13 and 14 of ARCHITECTURE.md, for a session: a drain has a deadline by its
    /// timeout, and once everything is written on a live connection a producer refused for
    /// a full queue has had its `SendReady`.
    fn check_settled(&mut self, session: &Client) {
        // A question out decides the end: the answer comes before the driver waits.
        if self.closed || self.query_out {
            return;
        }
        if let Some(by) = self.drain_by
            && session.poll_timeout().is_none_or(|next| next > by)
        {
            self.violate("no deadline by the drain timeout".into());
        }
        // A connection taking its last steps (a failed TLS session's alert) hands back what
        // it did not deliver when it closes: the call back comes after that, or the
        // producer's sends would overtake the bytes handed back.
        if self.owes_send_ready
            && self.connected
            && session.bytes_queued() == 0
            && !session.is_closing()
        {
            self.violate(
                "a Send was refused as QueueFull, everything was written since, and no SendReady came"
                    .into(),
            );
            self.owes_send_ready = false;
        }
    }

    /// The invariants broken so far.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Records a broken invariant seen by the harness around the monitor.
    pub fn violate(&mut self, what: String) {
        self.violations.push(what);
    }

    /// Takes the violations seen so far.
    pub fn take_violations(&mut self) -> Vec<String> {
        std::mem::take(&mut self.violations)
    }

    fn output(&mut self, output: &Output, session: &Client) {
        if self.closed {
            self.violate(format!("{} after the session's Closed", output.name()));
        }
        match output {
            Output::Connect { attempt, .. } => {
                if attempt.0 < self.issued {
                    self.violate(format!("Connect reuses the id of {attempt}"));
                }
                if self.connected {
                    self.violate(format!("{attempt} started while a connection is up"));
                }
                self.issued = attempt.0 + 1;
                self.attempts.push(*attempt);
                self.connects.push(*attempt);
            }
            Output::Transmit(bytes) => {
                self.encrypted |= session.config().tls.is_some();
                self.preamble_of(session.generation());
                self.transmitted(bytes);
            }
            Output::Cancel(attempt) => {
                if !self.attempts.contains(attempt) {
                    self.violate(format!("Cancel of {attempt}, which is not under way"));
                }
                self.attempts.retain(|a| a != attempt);
            }
            Output::Close | Output::Reset => {
                if !self.connected {
                    self.violate(format!("{} without a connection", output.name()));
                }
                self.connected = false;
                // A question the driver did not answer dies with its socket.
                self.query_out = false;
            }
            Output::QueryUnacknowledged => {
                if !self.connected || self.query_out {
                    self.violate(format!(
                        "QueryUnacknowledged with the connection {}, another question {}",
                        if self.connected { "up" } else { "down" },
                        if self.query_out { "out" } else { "answered" }
                    ));
                }
                self.query_out = true;
            }
            Output::Event(Event::Connected(_) | Event::Reconnected { .. }) => {
                if self.connected {
                    self.violate("a second connection while one is up".into());
                }
                self.connected = true;
                if self.finishing
                    && let Some(now) = self.now
                {
                    self.drain_from(session, now);
                }
                // The winner left the attempts under way.
                if let Some(winner) = session.winning_attempt() {
                    self.attempts.retain(|a| *a != winner);
                }
            }
            // A connection that ended ends its drain; the next one, if any, has its own.
            Output::Event(Event::Disconnected { .. }) => self.drain_by = None,
            Output::Event(Event::Reconnecting { attempt, delay, .. }) => {
                if self.connected || !self.attempts.is_empty() {
                    self.violate(format!(
                        "reconnecting while sockets are open: attempts {:?}, connected {}",
                        self.attempts, self.connected
                    ));
                }
                if *delay > self.policy.max_delay || *delay > self.policy.backoff(*attempt) {
                    self.violate(format!(
                        "a delay of {delay:?} for attempt {attempt}, past its backoff"
                    ));
                }
                let expected = self.last_attempt.map_or(0, |last| last + 1);
                if *attempt != 0 && *attempt != expected {
                    self.violate(format!("attempt {attempt} after {:?}", self.last_attempt));
                }
                self.last_attempt = Some(*attempt);
                let due = self.now.and_then(|now| now.checked_add(*delay));
                if session.poll_timeout().is_some_and(|t| Some(t) > due) {
                    self.violate("the next connection is scheduled after its delay".into());
                }
            }
            Output::Event(Event::Data(data)) => self.received += data.len() as u64,
            Output::Event(Event::Undelivered(bytes)) => self.handed_back += bytes.len() as u64,
            Output::Event(Event::SendReady) => self.owes_send_ready = false,
            Output::Event(Event::Closed(report)) => {
                self.closed = true;
                if self.connected || !self.attempts.is_empty() {
                    self.violate("the session closed with sockets open".into());
                }
                self.check_report(report);
            }
            _ => {}
        }
    }

    fn check_report(&mut self, report: &CloseReport) {
        let through = report.bytes_confirmed + report.bytes_unconfirmed;
        let listed: Vec<AttemptId> = report.attempts.iter().map(|a| a.id).collect();
        let generations_in_order = report
            .generations
            .iter()
            .enumerate()
            .all(|(i, g)| g.generation as usize == i);
        let checks = [
            (report.bytes_accepted == self.accepted, "accepted"),
            (
                through + report.bytes_lost == report.bytes_written,
                "confirmed + unconfirmed + lost",
            ),
            (
                through + report.bytes_undelivered + report.bytes_handed_back
                    == report.bytes_accepted,
                "confirmed + unconfirmed + undelivered + handed back mid-session",
            ),
            (
                report.bytes_undelivered + report.bytes_handed_back == self.handed_back,
                "handed back",
            ),
            (listed == self.connects, "every attempt, under its own id"),
            (
                report.bytes_confirmed >= self.acknowledged,
                "confirmed, with what the application acknowledged",
            ),
            (generations_in_order, "every generation, in order"),
            (report.bytes_received == self.received, "received"),
            (
                report.wire_bytes_written == self.wire_written,
                "wire written",
            ),
        ];
        for (holds, what) in checks {
            if !holds {
                self.violate(format!(
                    "{what} does not add up: accepted {}, handed back {}, received {}, wire {}; report {report:?}",
                    self.accepted, self.handed_back, self.received, self.wire_written
                ));
            }
        }
    }
}
