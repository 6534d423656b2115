//! The one invariant monitor (feature `monitor`): every input with the core's answer, every
//! request, every output, checked against the invariants a client shows on its own (the
//! repository's ARCHITECTURE.md, section 4, numbers them).
//!
//! The project's proptest and fuzz worlds, its corpus replay and its simulator's driver all
//! feed their client through a [`Monitor`]; so can a driver of yours, or a test of your own
//! protocol. Invariants that need the peer (4, order) and the whole run (7, termination; 9,
//! determinism) are checked by those harnesses on top.

use std::time::{Duration, Instant};

use crate::{
    AttemptId, AttemptOutcome, Client, Ending, Error, Event, Input, InvalidInput, Output, Phase,
    Request, Unacknowledged,
};

mod session;

pub use session::SessionMonitor;

/// The most plaintext one read can bring beyond its own length: a TLS record begun in
/// earlier reads (16 KiB of plaintext, less its overhead already counted).
const ONE_RECORD: u64 = 16 * 1024 + 256;

/// Watches a [`Client`] of one connection: feed it through [`ConnectionMonitor::input`] and
/// [`ConnectionMonitor::request`] and drain it through [`ConnectionMonitor::poll_output`], and
/// every invariant below is checked as it goes. Broken ones are collected, in order, in
/// [`ConnectionMonitor::violations`]. [`Monitor`] picks it, or the [`SessionMonitor`].
///
/// | invariant (ARCHITECTURE.md section 4) | checked |
/// |---|---|
/// | 1. one ending | no output after `Closed` |
/// | 2. sockets | attempt ids never reused; every attempt ends exactly once (`Cancel`, or `Close`/`Reset` for the one that won); at most one attempt wins; `Transmit` and `ShutdownWrite` only after a win, on the winner; no socket left at `Closed` |
/// | 3. every byte accounted for | the close report against the accepted `Send`s, the `Written` reports, the `Data` events and the `Undelivered` bytes handed back; written = confirmed + unconfirmed + lost and accepted = confirmed + unconfirmed + undelivered |
/// | 15. never more than the client can know | a question about acknowledgements only on a connected socket, one at a time, and an answer taken only when asked; bytes confirmed only after our FIN and the peer's end, and our FIN acknowledged by the peer's TCP (where the driver cannot tell, the peer's end after our FIN); an `Ok` ending only after the peer's end; in plaintext, at least the bytes the last answer called unacknowledged counted lost |
/// | 16. events in the order a user relies on | no `Data` after `PeerClosed`; once the ClientHello is out, no `Data` before `TlsEstablished`; nothing but `Undelivered` between the first `Undelivered` and `Closed` |
/// | 5. bounded memory | an accepted `Send` into a non-empty queue stays within the limit; unconsumed `Data` past the receive window only by what the read that crossed it brought, and no read asked for (`wants_read`) at or past the window |
/// | 6. FIN last | `ShutdownWrite` only once every transmit was reported written |
/// | 7. no deadline in the past | after a `Timeout` at `now` and a full drain, no deadline at or before `now` |
/// | 8. refusals and late reports change nothing | the client before and after |
/// | 11. a vanished peer is found | while handed-out bytes wait to be written, a deadline at or before the last write progress plus the stall timeout; `Stalled` never before it |
/// | 13. timeouts hold | once a drain begins (`Finish` on an open connection, a win after `Finish`, the peer's close), a deadline at or before its start plus the drain timeout, and `DrainTimeout` never before it; with an idle timeout, a deadline at or before the last read or write plus it, and `IdleTimeout` never before it |
/// | 13. timeouts hold (attempts) | no attempt in the close report timed out before the attempt timeout |
/// | 14. a refused producer is called back | after a `Send` refused as `QueueFull`, once everything is written, `SendReady` came (unless the application or the peer shut down) |
#[derive(Debug)]
pub struct ConnectionMonitor {
    limit: u64,
    receive_window: Option<u64>,
    stall_timeout: Option<Duration>,
    drain_timeout: Duration,
    idle_timeout: Option<Duration>,
    attempt_timeout: Duration,
    /// The peer's close starts a drain (`OnPeerEof::Close`).
    drains_on_peer_close: bool,
    /// When the drain must end at the latest, once one began.
    drain_by: Option<Instant>,
    /// When an idle connection must end at the latest.
    idle_by: Option<Instant>,
    /// `Finish` or `Abort` was accepted.
    shut_down: bool,
    /// Attempts whose failure the driver reported (rather than the core's cap ending them).
    failed_by_driver: Vec<AttemptId>,
    /// A `Send` was refused as `QueueFull`, and no `SendReady` came since.
    owes_send_ready: bool,
    /// The latest instant of an input (the client's clock never runs back).
    now: Option<Instant>,
    /// When bytes in flight last moved: the first handed out, or the last written.
    last_progress: Option<Instant>,
    /// `Data` bytes the application reported consumed.
    consumed: u64,
    /// Attempts under way, by id.
    attempts: Vec<AttemptId>,
    /// Attempts ever started (ids below this were issued).
    issued: u32,
    /// The attempt that won, and whether its socket is still open.
    winner: Option<AttemptId>,
    connected: bool,
    /// Bytes of accepted `Send`s.
    accepted: u64,
    /// Wire bytes handed out in `Transmit`s.
    handed_out: u64,
    /// Wire bytes reported written.
    written: u64,
    /// Bytes delivered in `Data` events.
    received: u64,
    /// Bytes handed back in `Undelivered` events.
    handed_back: u64,
    /// `StartTls` was accepted: application and wire bytes differ.
    tls: bool,
    /// Bytes accepted when `StartTls` was: the plaintext before the ClientHello.
    plaintext_prefix: u64,
    /// `TlsEstablished` came.
    tls_established: bool,
    /// `PeerClosed` came, and whether our FIN (`ShutdownWrite`) had been handed out before.
    peer_closed: Option<bool>,
    /// `ShutdownWrite` came.
    fin_sent: bool,
    /// A `QueryUnacknowledged` is out, not yet answered.
    query_out: bool,
    /// An accepted answer said our FIN was acknowledged.
    fin_acknowledged: bool,
    /// An accepted answer said the driver cannot tell.
    cannot_tell: bool,
    /// The unacknowledged bytes of an answer that was the last input.
    unacknowledged: Option<u64>,
    /// An `Undelivered` came: only more of them, then `Closed`, may follow.
    handing_back: bool,
    closed: bool,
    /// A `Timeout` at this instant whose outputs are not all drained yet.
    timeout_at: Option<Instant>,
    violations: Vec<String>,
}

/// What an input must leave unchanged when it is refused, or when it is a late report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Snapshot {
    phase: Phase,
    accepted: u64,
    written: u64,
    queued: u64,
    received: u64,
    deadline: Option<Instant>,
}

impl Snapshot {
    fn of(client: &Client) -> Self {
        Self {
            phase: client.phase(),
            accepted: client.bytes_accepted(),
            written: client.bytes_written(),
            queued: client.bytes_queued(),
            received: client.bytes_received(),
            deadline: client.poll_timeout(),
        }
    }
}

impl ConnectionMonitor {
    /// A monitor for `client`, before any input.
    pub fn new(client: &Client) -> Self {
        let config = client.config();
        Self {
            limit: config.send_limit as u64,
            receive_window: config.receive_window.map(|w| w as u64),
            stall_timeout: config.stall_timeout,
            drain_timeout: config.drain_timeout,
            idle_timeout: config.idle_timeout,
            attempt_timeout: config.attempt_timeout,
            drains_on_peer_close: config.on_peer_eof == crate::OnPeerEof::Close,
            drain_by: None,
            idle_by: None,
            shut_down: false,
            failed_by_driver: Vec::new(),
            owes_send_ready: false,
            now: None,
            last_progress: None,
            consumed: 0,
            attempts: Vec::new(),
            issued: 0,
            winner: None,
            connected: false,
            accepted: 0,
            handed_out: 0,
            written: 0,
            received: 0,
            handed_back: 0,
            tls: false,
            plaintext_prefix: 0,
            tls_established: false,
            peer_closed: None,
            fin_sent: false,
            query_out: false,
            fin_acknowledged: false,
            cannot_tell: false,
            unacknowledged: None,
            handing_back: false,
            closed: false,
            timeout_at: None,
            violations: Vec::new(),
        }
    }

    /// Hands `client` the driver's report at `now` and checks its answer; returns the
    /// answer.
    pub fn input(
        &mut self,
        client: &mut Client,
        now: Instant,
        input: Input<'_>,
    ) -> Result<(), InvalidInput> {
        self.step(client, now, Step::Report(input))
    }

    /// Makes the application's request of `client` at `now` and checks its answer; returns
    /// the answer.
    pub fn request(
        &mut self,
        client: &mut Client,
        now: Instant,
        request: Request,
    ) -> Result<(), InvalidInput> {
        self.step(client, now, Step::Request(request))
    }

    fn step(
        &mut self,
        client: &mut Client,
        now: Instant,
        step: Step<'_>,
    ) -> Result<(), InvalidInput> {
        let name = step.name();
        let report = match &step {
            Step::Report(input) => Some(input),
            Step::Request(_) => None,
        };
        // A report about an attempt that has ended is late too.
        let ended_attempt = match report {
            Some(Input::Connected(a) | Input::ConnectFailed(a, _)) => {
                a.0 < self.issued && !self.attempts.contains(a)
            }
            _ => false,
        };
        // Judged by what the monitor saw (the `Closed` output), not by asking the client, so
        // that a client wrong about its own state cannot also be wrong about this check.
        let late = (self.closed && report.is_some()) || ended_attempt;
        let sent = match &step {
            Step::Request(Request::Send(data)) => Some(data.len() as u64),
            _ => None,
        };
        let written = match report {
            Some(Input::Written(n)) => *n as u64,
            _ => 0,
        };
        let (read, consumed) = match &step {
            Step::Report(Input::Received(data)) => (Some(data.len() as u64), 0),
            Step::Request(Request::Consumed(n)) => (None, *n as u64),
            _ => (None, 0),
        };
        let connected = match report {
            Some(Input::Connected(attempt)) => Some(*attempt),
            _ => None,
        };
        let failed = match report {
            Some(Input::ConnectFailed(attempt, _)) => Some(*attempt),
            _ => None,
        };
        let (timeout, start_tls) = (
            matches!(report, Some(Input::Timeout)),
            matches!(step, Step::Request(Request::StartTls)),
        );
        let ack_answer = match report {
            Some(Input::Unacknowledged(answer)) => Some(*answer),
            _ => None,
        };
        // Only an answer that ended the connection (the input right before its `Closed`)
        // says what the report must count lost.
        self.unacknowledged = None;
        let before = Snapshot::of(client);

        let answer = step.apply(client, now);

        if answer.is_err() && Snapshot::of(client) != before {
            self.violate(format!(
                "a refused {name} changed the client: {before:?} -> {:?}",
                Snapshot::of(client)
            ));
        }
        if late {
            if answer.is_err() {
                self.violate(format!("a late {name} (after the close) was refused"));
            } else if Snapshot::of(client) != before {
                self.violate(format!(
                    "a late {name} (after the close) changed the client"
                ));
            }
            return answer;
        }
        if matches!(answer, Err(InvalidInput::QueueFull { .. })) && !self.shut_down {
            self.owes_send_ready = true;
        }
        let Ok(()) = answer else {
            return answer;
        };
        // The client's clock never runs back: an earlier `now` counts as the latest seen.
        let now = self.now.map_or(now, |seen| seen.max(now));
        self.now = Some(now);
        match name {
            "Finish" if self.connected => self.drain_from(now),
            "Finish" | "Abort" => {}
            "Received" | "Written" if read.unwrap_or(written) > 0 && self.connected => {
                self.idle_from(now);
            }
            _ => {}
        }
        if matches!(name, "Finish" | "Abort") {
            self.shut_down = true;
            self.owes_send_ready = false;
        }
        if let Some(attempt) = failed {
            self.failed_by_driver.push(attempt);
        }
        self.consumed += consumed;
        if let Some(len) = read {
            self.check_read(before.received, client.bytes_received(), len);
        }
        if written > 0 {
            self.last_progress = self.now;
        }
        if client.wants_read() && self.over_window(client.bytes_received()) {
            self.violate(format!(
                "the client asks to read with {} bytes unconsumed, at or past its window",
                client.bytes_received() - self.consumed
            ));
        }
        if let Some(len) = sent {
            self.accepted += len;
            if before.queued > 0 && client.bytes_queued() > self.limit {
                self.violate(format!(
                    "a Send took the queue past its limit: {} > {}",
                    client.bytes_queued(),
                    self.limit
                ));
            }
        }
        self.written += written;
        if start_tls {
            self.tls = true;
            self.plaintext_prefix = self.accepted;
        }
        // An answer that comes once the client has closed (its `Closed` not yet taken) is a
        // late report, as any other.
        if let Some(ack_answer) = ack_answer
            && before.phase != Phase::Closed
        {
            self.answered(ack_answer);
        }
        // A win is the client choosing a winner; an accepted report about an attempt after
        // the race (late, or made twice) is ignored, not a win.
        if let Some(attempt) = connected {
            match (self.winner, client.winning_attempt()) {
                (Some(first), Some(now)) if now != first => {
                    self.violate(format!("{now} won after {first} had won"));
                }
                (None, Some(won)) => {
                    if won != attempt {
                        self.violate(format!("{won} won on a report about {attempt}"));
                    }
                    self.winner = Some(won);
                    self.connected = true;
                    self.idle_from(now);
                    if self.shut_down {
                        self.drain_from(now);
                    }
                }
                _ => {}
            }
        }
        if timeout {
            // Checked once the outputs are drained: draining arms deadlines too.
            self.timeout_at = Some(now);
        }
        answer
    }

    /// An answer about acknowledgements was accepted.
    fn answered(&mut self, answer: Unacknowledged) {
        if !self.query_out {
            self.violate(format!("an answer nobody asked for was taken: {answer:?}"));
        }
        self.query_out = false;
        match answer {
            Unacknowledged::Known {
                bytes,
                fin_acknowledged,
            } => {
                self.fin_acknowledged |= fin_acknowledged;
                self.unacknowledged = Some(bytes);
            }
            Unacknowledged::Unknown => self.cannot_tell = true,
        }
    }

    /// Takes the next output of `client`, checking it. After the last one (`None`), checks
    /// the deadlines.
    pub fn poll_output(&mut self, client: &mut Client) -> Option<Output> {
        let Some(output) = client.poll_output() else {
            if let Some(at) = self.timeout_at.take()
                && client.poll_timeout().is_some_and(|next| next <= at)
            {
                self.violate("after a Timeout a deadline is left in the past".into());
            }
            self.check_stall_deadline(client);
            self.check_timeouts(client);
            return None;
        };
        self.output(&output);
        Some(output)
    }

    /// The invariants broken so far, in the order they were seen.
    pub fn violations(&self) -> &[String] {
        &self.violations
    }

    /// Takes the violations seen so far.
    pub fn take_violations(&mut self) -> Vec<String> {
        std::mem::take(&mut self.violations)
    }

    /// Records a broken invariant seen by the harness around the monitor.
    pub fn violate(&mut self, what: String) {
        self.violations.push(what);
    }

    /// The unconsumed bytes, with `received` delivered, are at or past the receive window.
    fn over_window(&self, received: u64) -> bool {
        self.receive_window
            .is_some_and(|window| received - self.consumed.min(received) >= window)
    }

    /// A read of `len` bytes took the delivered bytes from `before` to `after`: it was asked
    /// for (the window had room), and it brought no more than itself and one record.
    fn check_read(&mut self, before: u64, after: u64, len: u64) {
        if self.over_window(before) {
            self.violate(format!(
                "a read was taken with {} bytes unconsumed, at or past the window",
                before - self.consumed.min(before)
            ));
        }
        if after - before > len + ONE_RECORD {
            self.violate(format!(
                "a read of {len} bytes delivered {} bytes",
                after - before
            ));
        }
    }

    /// A drain starts at `now`: it must end by the drain timeout.
    fn drain_from(&mut self, now: Instant) {
        if self.drain_by.is_none() {
            // No instant that far: the core arms no timer either.
            self.drain_by = now.checked_add(self.drain_timeout);
        }
    }

    /// The connection was busy at `now`: idle, it must end by the idle timeout.
    fn idle_from(&mut self, now: Instant) {
        self.idle_by = self.idle_timeout.and_then(|idle| now.checked_add(idle));
    }

    /// A drain and an idle connection must have a deadline by their timeouts, and a
    /// producer refused for a full queue must have been called back once it emptied.
    fn check_timeouts(&mut self, client: &Client) {
        // A question out decides the end: the answer comes before the driver waits.
        if self.closed || self.query_out {
            return;
        }
        let idle_by = self.idle_by.filter(|_| self.connected);
        for (what, by) in [("drain", self.drain_by), ("idle", idle_by)] {
            if let Some(by) = by
                && client.poll_timeout().is_none_or(|next| next > by)
            {
                self.violate(format!(
                    "no deadline by the {what} timeout: the next is {:?} after it",
                    client
                        .poll_timeout()
                        .map(|next| next.saturating_duration_since(by))
                ));
            }
        }
        // A client taking its last steps takes no sends, and owes no call back: `Closed` is
        // the answer.
        if client.is_closing() {
            self.owes_send_ready = false;
        }
        if self.owes_send_ready && client.bytes_queued() == 0 {
            self.violate(
                "a Send was refused as QueueFull, everything was written since, and no SendReady came"
                    .into(),
            );
            self.owes_send_ready = false;
        }
    }

    /// While handed-out bytes wait to be written, the client must wake by the last write
    /// progress plus the stall timeout.
    fn check_stall_deadline(&mut self, client: &Client) {
        let (Some(stall), Some(progress)) = (self.stall_timeout, self.last_progress) else {
            return;
        };
        if self.closed || !self.connected || self.handed_out == self.written {
            return;
        }
        let due = progress + stall;
        if client.poll_timeout().is_none_or(|next| next > due) {
            self.violate(format!(
                "bytes wait to be written with no deadline by the stall timeout ({:?} after the last progress)",
                stall
            ));
        }
    }

    fn output(&mut self, output: &Output) {
        if self.closed {
            self.violate(format!("{} after Closed", output.name()));
        }
        let undelivered_or_closed = matches!(
            output,
            Output::Event(Event::Undelivered(_) | Event::Closed(_))
        );
        if self.handing_back && !undelivered_or_closed {
            self.violate(format!("{} between Undelivered and Closed", output.name()));
        }
        match output {
            Output::Resolve { .. } => {}
            Output::Connect { attempt, .. } => {
                if attempt.0 < self.issued {
                    self.violate(format!("Connect reuses the id of {attempt}"));
                }
                if self.winner.is_some() {
                    self.violate(format!("Connect {attempt} after an attempt won"));
                }
                self.issued = attempt.0 + 1;
                self.attempts.push(*attempt);
            }
            Output::Cancel(attempt) => {
                if !self.attempts.contains(attempt) {
                    self.violate(format!("Cancel of {attempt}, which is not under way"));
                }
                if self.winner == Some(*attempt) {
                    self.violate(format!("Cancel of {attempt}, which won"));
                }
                self.attempts.retain(|a| a != attempt);
            }
            Output::QueryUnacknowledged => {
                if !self.connected {
                    self.violate("QueryUnacknowledged without a connected socket".into());
                }
                if self.query_out {
                    self.violate("QueryUnacknowledged while another is unanswered".into());
                }
                self.query_out = true;
            }
            Output::Transmit(bytes) => {
                if !self.connected {
                    self.violate("Transmit before an attempt won".into());
                }
                if self.handed_out == self.written {
                    self.last_progress = self.now;
                }
                self.handed_out += bytes.len() as u64;
            }
            Output::ShutdownWrite => {
                if !self.connected {
                    self.violate("ShutdownWrite without a connected socket".into());
                }
                if self.written != self.handed_out {
                    self.violate(format!(
                        "ShutdownWrite with {} bytes handed out and not written",
                        self.handed_out - self.written.min(self.handed_out)
                    ));
                }
                self.fin_sent = true;
            }
            Output::Close | Output::Reset => {
                if !self.connected {
                    self.violate(format!("{} without a connected socket", output.name()));
                }
                self.connected = false;
                self.attempts.retain(|a| Some(*a) != self.winner);
                // Whatever was handed out and not written is forgotten with the socket.
                self.handed_out = self.written;
            }
            Output::Event(Event::Connected(_)) if self.winner.is_none() => {
                self.violate("Connected before an attempt won".into());
            }
            Output::Event(Event::Data(data)) => {
                self.received += data.len() as u64;
                if self.peer_closed.is_some() {
                    self.violate("Data after PeerClosed".into());
                }
                let hello_out = self.tls && self.handed_out > self.plaintext_prefix;
                if hello_out && !self.tls_established {
                    self.violate("Data after the ClientHello and before TlsEstablished".into());
                }
            }
            Output::Event(Event::TlsEstablished(_)) => self.tls_established = true,
            Output::Event(Event::SendReady) => self.owes_send_ready = false,
            Output::Event(Event::PeerClosed) => {
                self.peer_closed = Some(self.fin_sent);
                if self.drains_on_peer_close && !self.shut_down {
                    if let Some(now) = self.now {
                        self.drain_from(now);
                    }
                    self.owes_send_ready = false;
                }
            }
            Output::Event(Event::Undelivered(bytes)) => {
                self.handed_back += bytes.len() as u64;
                self.handing_back = true;
            }
            Output::Event(Event::Closed(report)) => {
                self.closed = true;
                let due = self
                    .stall_timeout
                    .zip(self.last_progress)
                    .map(|(s, p)| p + s);
                if report.result == Err(Error::Stalled)
                    && due.is_none_or(|due| self.now < Some(due))
                {
                    self.violate("Stalled before the stall timeout ran out".into());
                }
                for (error, by) in [
                    (Error::DrainTimeout, self.drain_by),
                    (Error::IdleTimeout, self.idle_by),
                ] {
                    if report.result == Err(error.clone())
                        && by.is_none_or(|by| self.now < Some(by))
                    {
                        self.violate(format!("{error:?} before its timeout ran out"));
                    }
                }
                if self.connected || !self.attempts.is_empty() {
                    self.violate(format!(
                        "Closed while the driver still holds sockets: attempts {:?}, connected {}",
                        self.attempts, self.connected
                    ));
                }
                self.check_report(report);
            }
            Output::Event(_) => {}
        }
    }

    fn check_report(&mut self, report: &crate::CloseReport) {
        let mut broken = Vec::new();
        for attempt in &report.attempts {
            let lasted = attempt.ended.saturating_sub(attempt.started);
            // The core's own cap; an operating system's connect timeout is the driver's report.
            let capped = !self.failed_by_driver.contains(&attempt.id);
            if attempt.outcome == AttemptOutcome::TimedOut
                && capped
                && lasted < self.attempt_timeout
            {
                broken.push(format!(
                    "{} timed out after {lasted:?}, before the attempt timeout",
                    attempt.id
                ));
            }
        }
        if report.bytes_accepted != self.accepted {
            broken.push(format!(
                "{} bytes accepted, the report says {}",
                self.accepted, report.bytes_accepted
            ));
        }
        let delivered = report.bytes_confirmed + report.bytes_unconfirmed;
        if delivered + report.bytes_lost != report.bytes_written {
            broken.push("confirmed + unconfirmed + lost != written".into());
        }
        if delivered + report.bytes_undelivered != report.bytes_accepted {
            broken.push("confirmed + unconfirmed + undelivered != accepted".into());
        }
        if report.bytes_confirmed != 0 && report.bytes_confirmed != report.bytes_written {
            broken.push("only some of the written bytes confirmed".into());
        }
        let closed_both_ways = match self.peer_closed {
            Some(after_fin) => {
                self.fin_sent && (self.fin_acknowledged || (self.cannot_tell && after_fin))
            }
            None => false,
        };
        if report.bytes_confirmed > 0 && !closed_both_ways {
            broken.push(format!(
                "bytes confirmed without a close both ways (our FIN {}, its acknowledgement {}, the peer's end {:?})",
                self.fin_sent, self.fin_acknowledged, self.peer_closed
            ));
        }
        if report.bytes_handed_back != 0 || !report.generations.is_empty() {
            broken.push("a single connection's report with a session's figures".into());
        }
        if report.fin_acknowledged && !self.fin_acknowledged {
            broken.push("our FIN acknowledged, though no answer said so".into());
        }
        let graceful = matches!(report.result, Ok(Ending::Finished | Ending::PeerClosed));
        if graceful && (self.peer_closed.is_none() || !report.peer_closed) {
            broken.push("a graceful ending without the peer's end".into());
        }
        if let Some(unacknowledged) = self.unacknowledged
            && !self.tls
            && report.bytes_confirmed == 0
            && report.bytes_lost < unacknowledged
        {
            broken.push(format!(
                "the last answer left {unacknowledged} bytes unacknowledged, the report counts {} lost",
                report.bytes_lost
            ));
        }
        if report.wire_bytes_written != self.written {
            broken.push(format!(
                "{} wire bytes reported written, the report says {}",
                self.written, report.wire_bytes_written
            ));
        }
        if !self.tls && report.bytes_written != self.written {
            broken.push(format!(
                "in plaintext {} bytes were written, the report counts {}",
                self.written, report.bytes_written
            ));
        }
        if report.bytes_undelivered != self.handed_back {
            broken.push(format!(
                "{} bytes handed back as Undelivered, the report says {} were undelivered",
                self.handed_back, report.bytes_undelivered
            ));
        }
        if report.bytes_received != self.received {
            broken.push(format!(
                "{} bytes delivered as Data, the report says {}",
                self.received, report.bytes_received
            ));
        }
        for what in broken {
            self.violate(format!("{what}; report {report:?}"));
        }
    }
}

/// The monitor for a [`Client`]: [`ConnectionMonitor`] for one connection,
/// [`SessionMonitor`] for a reconnecting client, chosen by its configuration.
#[derive(Debug)]
pub struct Monitor {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Connection(ConnectionMonitor),
    Reconnecting(SessionMonitor),
}

impl Monitor {
    /// A monitor for `client`, before any input.
    pub fn new(client: &Client) -> Self {
        let kind = match &client.config().reconnect {
            None => Kind::Connection(ConnectionMonitor::new(client)),
            Some(policy) => Kind::Reconnecting(SessionMonitor::new(policy)),
        };
        Self { kind }
    }

    /// Hands `client` the driver's report at `now` and checks its answer.
    pub fn input(
        &mut self,
        client: &mut Client,
        now: Instant,
        input: Input<'_>,
    ) -> Result<(), InvalidInput> {
        match &mut self.kind {
            Kind::Connection(m) => m.input(client, now, input),
            Kind::Reconnecting(m) => m.input(client, now, input),
        }
    }

    /// Makes the application's request of `client` at `now` and checks its answer.
    pub fn request(
        &mut self,
        client: &mut Client,
        now: Instant,
        request: Request,
    ) -> Result<(), InvalidInput> {
        match &mut self.kind {
            Kind::Connection(m) => m.request(client, now, request),
            Kind::Reconnecting(m) => m.request(client, now, request),
        }
    }

    /// Takes the next output of `client`, checking it.
    pub fn poll_output(&mut self, client: &mut Client) -> Option<Output> {
        match &mut self.kind {
            Kind::Connection(m) => m.poll_output(client),
            Kind::Reconnecting(m) => m.poll_output(client),
        }
    }

    /// The invariants broken so far.
    pub fn violations(&self) -> &[String] {
        match &self.kind {
            Kind::Connection(m) => m.violations(),
            Kind::Reconnecting(m) => m.violations(),
        }
    }

    /// Records a broken invariant seen by the harness around the monitor.
    pub fn violate(&mut self, what: String) {
        match &mut self.kind {
            Kind::Connection(m) => m.violate(what),
            Kind::Reconnecting(m) => m.violate(what),
        }
    }

    /// Takes the violations seen so far.
    pub fn take_violations(&mut self) -> Vec<String> {
        match &mut self.kind {
            Kind::Connection(m) => m.take_violations(),
            Kind::Reconnecting(m) => m.take_violations(),
        }
    }
}

/// A report of the driver's or a request of the application's: what a monitor hands the
/// client, and checks it against.
#[derive(Debug)]
pub enum Step<'a> {
    /// A report of the driver's: what it observed.
    Report(Input<'a>),
    /// A request of the application's.
    Request(Request),
}

impl<'a> From<Input<'a>> for Step<'a> {
    fn from(input: Input<'a>) -> Self {
        Step::Report(input)
    }
}

impl From<Request> for Step<'_> {
    fn from(request: Request) -> Self {
        Step::Request(request)
    }
}

impl Step<'_> {
    /// The input's or the request's name, as traces give it.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Report(input) => input.name(),
            Step::Request(request) => request.name(),
        }
    }

    /// Makes the step: hands the report to `client`, or makes the request of it, at `now`.
    pub fn apply(self, client: &mut Client, now: Instant) -> Result<(), InvalidInput> {
        match self {
            Step::Report(input) => client.handle_input(now, input),
            Step::Request(request) => request.apply(client, now),
        }
    }
}
