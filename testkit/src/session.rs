//! The reconnecting session under arbitrary operations: a policy and a run of operations
//! decoded from bytes (for proptest, the `reconnect` fuzz target and its corpus replay), a
//! model of the network that loses connections at will, and the session monitor.
//!
//! [`SessionMonitor`] checks, after every step: ids never reused and never two connections
//! (or a connection and an earlier generation's attempt) alive at once; every wait within
//! the policy's cap and never scheduled in the past; one final `Closed`, last; and, in that
//! report, every byte across every generation (written = confirmed + unconfirmed + lost,
//! accepted = confirmed + unconfirmed + undelivered, the `Undelivered` events adding up to
//! the undelivered bytes, the `Data` events to the bytes received); a question about
//! acknowledgements only on a connection, and an answer only when asked. The run checks too
//! that the server got the application's bytes in order, as a merge of what each connection
//! got through and what was handed back, and all of them, once, when the session ends clean.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use bytes::Bytes;
use tcpclient_core::{
    AttemptId, Client, CloseReport, Config, Event, Input, InvalidInput, Jitter, Leave, Output,
    Preamble, ReconnectPolicy, Request, Unacknowledged,
};

use crate::world::Violation;
use tcpclient_core::monitor::{SessionMonitor, Step};

/// The policy a run uses, from a few bytes.
#[derive(Debug, Clone, Default, Arbitrary)]
pub struct PolicyKnobs {
    /// The jitter's seed.
    pub seed: u64,
    /// Full jitter, or none.
    pub full_jitter: bool,
    /// The multiplier is `1 + multiplier / 32`.
    pub multiplier: u8,
    /// The first delay, in 10 ms steps (0 means 1).
    pub initial_10ms: u8,
    /// The cap, in 100 ms steps (0 means 1).
    pub max_100ms: u8,
    /// Give up after this many reconnects without a stable connection (0: never).
    pub max_attempts: u8,
    /// Give up this many seconds after the loss (0: never).
    pub max_elapsed_s: u8,
    /// A connection is stable after this many 100 ms steps.
    pub stable_100ms: u8,
    /// Replay what was not written, instead of handing it back.
    pub replay: bool,
}

/// The preamble every connection of a run begins with: bytes the stream (bytes 0 to 250)
/// never holds.
pub const PREAMBLE: &[u8] = &[251, 252, 253, 254, 255];

impl PolicyKnobs {
    /// The preamble the run uses: none, [`PREAMBLE`] sent by the session, or the same
    /// bytes as the application's dialogue. (From the jitter seed's top bits, so that
    /// every encoded run stays decodable as it was.)
    pub fn preamble(&self) -> Preamble {
        match self.seed >> 62 {
            1 => Preamble::Fixed(Bytes::from_static(PREAMBLE)),
            2 => Preamble::Dialogue,
            _ => Preamble::None,
        }
    }

    /// The application acknowledges what the server got, and the session replays the rest
    /// after a reconnect.
    pub fn acknowledges(&self) -> bool {
        self.seed >> 61 & 1 == 1
    }

    /// The application asks for reconnects: `Abort` becomes a reconnect that resets, and a
    /// late report (once there is an earlier generation) one that closes gracefully.
    pub fn reconnects_on_demand(&self) -> bool {
        self.seed >> 60 & 1 == 1
    }

    /// The policy these knobs describe.
    pub fn policy(&self) -> ReconnectPolicy {
        let step = |n: u8, ms: u64| Duration::from_millis(ms * u64::from(n.max(1)));
        ReconnectPolicy::default()
            .with_seed(self.seed)
            .with_jitter(if self.full_jitter {
                Jitter::Full
            } else {
                Jitter::None
            })
            .with_multiplier(1.0 + f64::from(self.multiplier) / 32.0)
            .with_initial_delay(step(self.initial_10ms, 10))
            .with_max_delay(step(self.max_100ms, 100))
            .with_max_attempts((self.max_attempts > 0).then_some(u32::from(self.max_attempts)))
            .with_max_elapsed(
                (self.max_elapsed_s > 0).then(|| Duration::from_secs(self.max_elapsed_s.into())),
            )
            .with_stable_after(step(self.stable_100ms, 100))
            .with_replay_undelivered(self.replay)
            .with_preamble(self.preamble())
            .with_replay_unacknowledged(self.acknowledges())
    }
}

/// One step of a session run.
#[derive(Debug, Clone, Arbitrary)]
pub enum SessionOp {
    /// The application sends this many bytes of the numbered stream.
    Send(u16),
    /// The application finishes.
    Finish,
    /// The application aborts.
    Abort,
    /// The application consumes up to this many received bytes.
    Consume(u16),
    /// The oldest attempt under way connects.
    ConnectOk,
    /// The oldest attempt under way is refused.
    ConnectRefused,
    /// The socket takes up to this many bytes.
    Write(u16),
    /// The server sends this many bytes.
    Receive(u16),
    /// The server closes its side.
    PeerEof,
    /// The connection (or the oldest attempt) is reset.
    Reset,
    /// The clock moves this many 100 ms steps (the session is not told).
    Advance(u8),
    /// The clock jumps to the next deadline and the session is told.
    Timeout,
    /// A report about an earlier generation's first attempt arrives late.
    LateConnected,
}

/// A policy and operations, decoded from bytes; any bytes make a valid run.
#[derive(Debug, Clone, Default)]
pub struct SessionScenario {
    /// The policy.
    pub knobs: PolicyKnobs,
    /// What happens.
    pub ops: Vec<SessionOp>,
}

impl SessionScenario {
    /// Decodes a run from any bytes; never fails.
    pub fn decode(data: &[u8]) -> Self {
        let mut u = Unstructured::new(data);
        let knobs = PolicyKnobs::arbitrary(&mut u).unwrap_or_default();
        let mut ops = Vec::new();
        while !u.is_empty() && ops.len() < crate::MAX_OPS {
            match SessionOp::arbitrary(&mut u) {
                Ok(op) => ops.push(op),
                Err(_) => break,
            }
        }
        Self { knobs, ops }
    }
}

/// What a session run ended with.
#[derive(Debug, Clone)]
pub struct SessionOutcome {
    /// The session's report.
    pub report: CloseReport,
    /// Generations started.
    pub generations: u32,
}

/// Runs the `reconnect` target on `data`.
pub fn reconnect(data: &[u8]) -> Result<SessionOutcome, Violation> {
    run_session(&SessionScenario::decode(data))
}

/// Runs `scenario` with every check, then finishes and lets time pass until the end.
pub fn run_session(scenario: &SessionScenario) -> Result<SessionOutcome, Violation> {
    let mut world = SessionWorld::new(scenario);
    world.drain()?;
    for op in &scenario.ops {
        world.apply(op)?;
    }
    world.wind_down()?;
    world.outcome()
}

/// Byte `i` of the application's stream.
fn stream_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// The session, the network model and the clock.
struct SessionWorld {
    session: Client,
    monitor: SessionMonitor,
    start: Instant,
    now: Instant,
    trace: Vec<String>,
    attempts: VecDeque<AttemptId>,
    open: bool,
    eof_sent: bool,
    pending: VecDeque<Bytes>,
    /// Written, in the kernel, not yet carried to the server (nor acknowledged).
    kernel: VecDeque<Bytes>,
    /// The FIN is in the kernel; it reached the server.
    kernel_fin: bool,
    fin_carried: bool,
    /// The next byte of the application's stream to send.
    sent: u64,
    /// What the server got on each connection that ended, with the stream offset its
    /// application bytes began at; and on the current one.
    connections: Vec<(u64, Vec<u8>)>,
    connection: Vec<u8>,
    /// The stream offset the current connection's application bytes begin at.
    connection_start: u64,
    /// What was handed back, in order.
    handed_back: Vec<u8>,
    /// Every connection's preamble ([`PREAMBLE`], or nothing).
    preamble: Vec<u8>,
    /// The application makes the preamble itself ([`Preamble::Dialogue`]).
    dialogue: bool,
    /// The application acknowledges what the server got: the stream offset it has.
    acknowledges: bool,
    acknowledged: u64,
    reconnects_on_demand: bool,
    generations: u32,
    report: Option<CloseReport>,
    replay: bool,
}

impl SessionWorld {
    fn new(scenario: &SessionScenario) -> Self {
        let policy = scenario.knobs.policy();
        let config = Config::new()
            .with_connect_timeout(Duration::from_secs(2))
            .with_drain_timeout(Duration::from_secs(1))
            .with_stall_timeout(Some(Duration::from_secs(3)))
            .with_send_limit(8 * 1024);
        let start = crate::epoch();
        Self {
            session: Client::new(
                tcpclient_core::Destination::new("127.0.0.1", 4433)
                    .with_server_name(crate::server_name("localhost")),
                config.with_reconnect(policy.clone()),
                start,
            ),
            monitor: SessionMonitor::new(&policy),
            start,
            now: start,
            trace: vec![format!("policy {:?}", scenario.knobs)],
            attempts: VecDeque::new(),
            open: false,
            eof_sent: false,
            pending: VecDeque::new(),
            kernel: VecDeque::new(),
            kernel_fin: false,
            fin_carried: false,
            sent: 0,
            connections: Vec::new(),
            connection: Vec::new(),
            connection_start: 0,
            handed_back: Vec::new(),
            preamble: match policy.preamble {
                Preamble::None => Vec::new(),
                _ => PREAMBLE.to_vec(),
            },
            dialogue: policy.preamble == Preamble::Dialogue,
            acknowledges: scenario.knobs.acknowledges(),
            acknowledged: 0,
            reconnects_on_demand: scenario.knobs.reconnects_on_demand(),
            generations: 1,
            report: None,
            replay: policy.replay_undelivered,
        }
    }

    fn violation(&self, what: impl Into<String>) -> Violation {
        Violation {
            what: what.into(),
            trace: self.trace.clone(),
        }
    }

    fn input(&mut self, input: Input<'_>) -> Result<Result<(), InvalidInput>, Violation> {
        self.trace.push(format!(
            "{:?} in {}",
            self.now - self.start,
            match &input {
                Input::Received(d) => format!("Received({})", d.len()),
                other => format!("{other:?}"),
            }
        ));
        let answer = self.monitor.input(&mut self.session, self.now, input);
        if let Err(e) = &answer {
            self.trace.push(format!("  refused: {e}"));
        }
        self.drain()?;
        Ok(answer)
    }

    fn request(&mut self, request: Request) -> Result<Result<(), InvalidInput>, Violation> {
        self.trace.push(format!(
            "{:?} request {}",
            self.now - self.start,
            match &request {
                Request::SendPreamble(d) => format!("send_preamble({})", d.len()),
                Request::Send(d) => format!("Send({})", d.len()),
                other => format!("{other:?}"),
            }
        ));
        let answer = self.monitor.request(&mut self.session, self.now, request);
        if let Err(e) = &answer {
            self.trace.push(format!("  refused: {e}"));
        }
        self.drain()?;
        Ok(answer)
    }

    /// The application acknowledges what the server got on this connection.
    fn acknowledge(&mut self) -> Result<(), Violation> {
        let preamble = self.preamble.len().min(self.connection.len());
        let got = (self.connection.len() - preamble) as u64;
        let reached = self.connection_start + got;
        if !self.acknowledges || !self.open || reached <= self.acknowledged {
            return Ok(());
        }
        let n = (reached - self.acknowledged) as usize;
        if let Err(e) = self.request(Request::Acknowledged(n))? {
            return Err(self.violation(format!(
                "acknowledging what the server got was refused: {e}"
            )));
        }
        self.acknowledged = reached;
        Ok(())
    }

    /// The application's preamble, once the session waits for it.
    fn make_preamble(&mut self) -> Result<(), Violation> {
        if !self.dialogue || !self.session.awaits_preamble() {
            return Ok(());
        }
        let preamble = Bytes::from(self.preamble.clone());
        for request in [Request::SendPreamble(preamble), Request::PreambleDone] {
            if let Err(e) = self.request(request)? {
                return Err(self.violation(format!("the preamble was refused: {e}")));
            }
        }
        Ok(())
    }

    fn accepted<'a>(&mut self, step: impl Into<Step<'a>>) -> Result<(), Violation> {
        let step = step.into();
        let name = step.name();
        let answer = match step {
            Step::Report(input) => self.input(input)?,
            Step::Request(request) => self.request(request)?,
        };
        match answer {
            Ok(()) => Ok(()),
            Err(e) => Err(self.violation(format!("a valid {name} was refused: {e}"))),
        }
    }

    fn drain(&mut self) -> Result<(), Violation> {
        let mut answers = Vec::new();
        while let Some(output) = self.monitor.poll_output(&mut self.session) {
            self.trace.push(match &output {
                Output::Transmit(b) => format!("  out Transmit({})", b.len()),
                Output::Event(Event::Data(b)) => format!("  out Data({})", b.len()),
                Output::Event(Event::Undelivered(b)) => format!("  out Undelivered({})", b.len()),
                other => format!("  out {other:?}"),
            });
            match output {
                Output::Connect { attempt, .. } => self.attempts.push_back(attempt),
                Output::Cancel(attempt) => self.attempts.retain(|a| *a != attempt),
                Output::Transmit(bytes) => self.pending.push_back(bytes),
                Output::ShutdownWrite => self.kernel_fin = true,
                Output::QueryUnacknowledged => answers.push(Unacknowledged::Known {
                    bytes: self.kernel.iter().map(|b| b.len() as u64).sum(),
                    fin_acknowledged: self.fin_carried,
                }),
                Output::Close | Output::Reset => {
                    self.open = false;
                    let got = std::mem::take(&mut self.connection);
                    self.connections.push((self.connection_start, got));
                    // The next connection sends again from the first byte not acknowledged.
                    self.connection_start = self.acknowledged;
                    self.pending.clear();
                    // What the kernel still held is lost with the connection.
                    self.kernel.clear();
                    (self.kernel_fin, self.fin_carried) = (false, false);
                }
                Output::Event(Event::Undelivered(bytes)) => {
                    self.handed_back.extend_from_slice(&bytes)
                }
                Output::Event(Event::Reconnecting { .. }) => self.generations += 1,
                Output::Event(Event::Closed(report)) => self.report = Some(*report),
                _ => {}
            }
        }
        if let Some(what) = self.monitor.violations().first() {
            return Err(self.violation(what.clone()));
        }
        // Answered at once, as a driver does, before anything else happens.
        for answer in answers {
            self.accepted(Input::Unacknowledged(answer))?;
        }
        Ok(())
    }

    /// The network carries what the kernel holds to the server, the FIN last.
    fn carry(&mut self) {
        while let Some(chunk) = self.kernel.pop_front() {
            self.connection.extend_from_slice(&chunk);
        }
        self.fin_carried = self.kernel_fin;
    }

    fn apply(&mut self, op: &SessionOp) -> Result<(), Violation> {
        // The network runs when time passes or the server acts.
        if matches!(
            op,
            SessionOp::Receive(_) | SessionOp::PeerEof | SessionOp::Advance(_)
        ) {
            self.carry();
        }
        match op {
            SessionOp::Send(n) => {
                let data: Vec<u8> = (self.sent..self.sent + u64::from(*n))
                    .map(stream_byte)
                    .collect();
                if self.request(Request::Send(Bytes::from(data)))?.is_ok() {
                    self.sent += u64::from(*n);
                }
            }
            SessionOp::Finish => drop(self.request(Request::Finish)?),
            SessionOp::Abort if self.reconnects_on_demand => {
                drop(self.request(Request::Reconnect(Leave::Reset))?)
            }
            SessionOp::Abort => drop(self.request(Request::Abort)?),
            SessionOp::Consume(n) => {
                let n = self.session.bytes_unconsumed().min(u64::from(*n)) as usize;
                self.accepted(Request::Consumed(n))?;
            }
            SessionOp::ConnectOk => {
                if let Some(attempt) = self.attempts.pop_front() {
                    self.open = true;
                    self.eof_sent = false;
                    self.accepted(Input::Connected(attempt))?;
                }
            }
            SessionOp::ConnectRefused => {
                if let Some(&attempt) = self.attempts.front() {
                    self.accepted(Input::ConnectFailed(attempt, ErrorKind::ConnectionRefused))?;
                }
            }
            SessionOp::Write(n) => self.write(usize::from(*n))?,
            SessionOp::Receive(n) if self.open && self.session.wants_read() && *n > 0 => {
                let data = vec![7u8; usize::from(*n)];
                self.accepted(Input::Received(&data))?;
                // The server's answer: it has what it got so far.
                self.acknowledge()?;
            }
            SessionOp::PeerEof if self.open && self.session.wants_read() && !self.eof_sent => {
                self.eof_sent = true;
                self.accepted(Input::PeerEof)?;
            }
            SessionOp::Reset if self.open => {
                self.accepted(Input::SocketError(ErrorKind::ConnectionReset))?
            }
            SessionOp::Reset => {
                if let Some(&attempt) = self.attempts.front() {
                    self.accepted(Input::ConnectFailed(attempt, ErrorKind::ConnectionReset))?;
                }
            }
            SessionOp::Advance(steps) => {
                self.now += Duration::from_millis(100 * u64::from(*steps));
                self.make_preamble()?;
            }
            SessionOp::Timeout => self.timeout()?,
            SessionOp::LateConnected if self.generations > 1 && self.reconnects_on_demand => {
                drop(self.request(Request::Reconnect(Leave::Finish))?)
            }
            SessionOp::LateConnected if self.generations > 1 => {
                // The first generation's first attempt, long gone.
                let lines = self.trace.len();
                self.accepted(Input::Connected(AttemptId(0)))?;
                if self.trace.len() != lines + 1 {
                    return Err(self.violation("a late report produced outputs"));
                }
            }
            SessionOp::Receive(_) | SessionOp::PeerEof | SessionOp::LateConnected => {}
        }
        Ok(())
    }

    fn write(&mut self, max: usize) -> Result<(), Violation> {
        if !self.open {
            return Ok(());
        }
        let mut written = 0;
        while written < max {
            let Some(front) = self.pending.front_mut() else {
                break;
            };
            let chunk = front.split_to(front.len().min(max - written));
            if front.is_empty() {
                self.pending.pop_front();
            }
            written += chunk.len();
            self.kernel.push_back(chunk);
        }
        if written > 0 {
            self.accepted(Input::Written(written))?;
        }
        Ok(())
    }

    fn timeout(&mut self) -> Result<(), Violation> {
        let Some(deadline) = self.session.poll_timeout() else {
            return Ok(());
        };
        self.now = self.now.max(deadline);
        self.accepted(Input::Timeout)
    }

    /// Finishes, then lets only time and a network that takes everything act.
    fn wind_down(&mut self) -> Result<(), Violation> {
        self.make_preamble()?;
        let _ = self.request(Request::Finish)?;
        for _ in 0..1000 {
            if self.report.is_some() {
                return Ok(());
            }
            self.apply(&SessionOp::Write(u16::MAX))?;
            self.carry();
            if self.report.is_some() {
                return Ok(());
            }
            if self.session.poll_timeout().is_none() {
                return Err(self.violation("finishing with no deadline armed: this would hang"));
            }
            self.timeout()?;
        }
        Err(self.violation("1000 deadlines after Finish and the session still runs"))
    }

    fn outcome(mut self) -> Result<SessionOutcome, Violation> {
        let Some(report) = self.report.clone() else {
            return Err(self.violation("no Closed"));
        };
        let current = std::mem::take(&mut self.connection);
        self.connections.push((self.connection_start, current));
        // Every connection began with its preamble; the rest is the application's.
        let mut app = Vec::new();
        for (start, got) in &self.connections {
            let preamble = self.preamble.len().min(got.len());
            if got[..preamble] != self.preamble[..preamble] {
                return Err(self.violation(format!(
                    "a connection began with {:?}, not its preamble",
                    &got[..preamble]
                )));
            }
            app.push((*start, &got[preamble..]));
        }
        if self.acknowledges {
            self.check_acknowledged_replay(&report, &app)?;
            return Ok(SessionOutcome {
                report,
                generations: self.generations,
            });
        }
        // The server got the stream's bytes in order, except what was handed back: the
        // two together, merged by position, are the stream.
        let at_server: Vec<u8> = app
            .iter()
            .flat_map(|(_, got)| got.iter().copied())
            .collect();
        let total = at_server.len() + self.handed_back.len();
        if total as u64 != report.bytes_accepted {
            return Err(self.violation(format!(
                "the server got {} and {} came back, of {} accepted",
                at_server.len(),
                self.handed_back.len(),
                report.bytes_accepted
            )));
        }
        let stream: Vec<u8> = (0..at_server.len() as u64).map(stream_byte).collect();
        if self.replay && at_server != stream {
            return Err(self.violation("with replay, the server did not get the stream in order"));
        }
        // Clean: nothing came back at the end (what came back on the way is the
        // application's to send again), and without that, the server has the stream.
        let back_at_end = self.handed_back.len() as u64 != report.bytes_handed_back;
        let whole = report.bytes_handed_back > 0 || at_server == stream;
        if report.is_clean() && (back_at_end || !whole) {
            return Err(self.violation(format!(
                "a clean end, and the server has {} of {} bytes, in order: {}; {} came back, {} on the way",
                at_server.len(),
                report.bytes_accepted,
                at_server == stream,
                self.handed_back.len(),
                report.bytes_handed_back
            )));
        }
        Ok(SessionOutcome {
            report,
            generations: self.generations,
        })
    }

    /// At least once, in order: each connection got the stream from the first byte not
    /// acknowledged when it began; what came back is the stream's tail, and every byte
    /// before it reached a server.
    fn check_acknowledged_replay(
        &self,
        report: &CloseReport,
        app: &[(u64, &[u8])],
    ) -> Result<(), Violation> {
        for (start, got) in app {
            let expected: Vec<u8> = (*start..start + got.len() as u64)
                .map(stream_byte)
                .collect();
            if *got != expected {
                return Err(self.violation(format!(
                    "a connection that began at byte {start} got {} bytes that are not the stream from there",
                    got.len()
                )));
            }
        }
        let accepted = report.bytes_accepted;
        let back = self.handed_back.len() as u64;
        let tail: Vec<u8> = (accepted.saturating_sub(back)..accepted)
            .map(stream_byte)
            .collect();
        if self.handed_back != tail {
            return Err(self.violation(format!(
                "{back} bytes came back that are not the last of the {accepted} accepted"
            )));
        }
        let reached = app
            .iter()
            .map(|(start, got)| start + got.len() as u64)
            .fold(self.acknowledged, u64::max);
        if reached + back < accepted {
            return Err(self.violation(format!(
                "the servers got the stream up to byte {reached}, {back} came back, of {accepted} accepted"
            )));
        }
        if report.is_clean() && back != report.bytes_handed_back {
            return Err(self.violation("a clean end, and bytes came back at the end"));
        }
        Ok(())
    }
}
