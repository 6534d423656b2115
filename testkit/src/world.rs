//! Runs a [`Scenario`] against a client, an in-memory server and a model of the socket, and
//! checks every invariant of ARCHITECTURE.md section 4 after every step: the client's own
//! through the [`Monitor`] (1, 2, 3, 5, 6, 8 and the deadline rule of 7), and on top of it
//! what needs the peer and the whole run:
//!
//! - 4, order: the server holds exactly the bytes the report says got through, in order
//!   (all of them, when the close is clean), and the application got exactly what the
//!   server sent, in order;
//! - 7, termination: from any state, `Finish` plus time alone ends in `Closed`;
//! - 9, determinism: the same scenario gives the same trace (checked by [`check`]);
//! - 10, no panic; and a refused `Send` hands its data back.

use std::collections::VecDeque;
use std::fmt;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tcpclient_core::{
    AttemptId, Client, CloseReport, Event, Family, Input, InvalidInput, Output, Phase, Request,
    TlsConfig, Unacknowledged, tls,
};

use crate::scenario::{Misuse, Op, Scenario};
use crate::{Monitor, Pki, Server};
use tcpclient_core::monitor::Step;

/// A broken invariant, with the trace that led to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// What went wrong.
    pub what: String,
    /// Every input and output up to the violation.
    pub trace: Vec<String>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invariant violated: {}", self.what)?;
        let skip = self.trace.len().saturating_sub(40);
        for line in &self.trace[skip..] {
            writeln!(f, "  {line}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Violation {}

/// What a scenario ended with.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Every input and output with its time, Transmits as lengths.
    pub trace: Vec<String>,
    /// The close report.
    pub report: CloseReport,
    /// The phases the client went through, in order, without repeats.
    pub phases: Vec<Phase>,
}

/// Runs `scenario` twice and checks every invariant, including that both runs agree.
pub fn check(scenario: &Scenario) -> Result<Outcome, Violation> {
    let first = run(scenario)?;
    let second = run(scenario)?;
    if first.trace != second.trace {
        let at = first
            .trace
            .iter()
            .zip(&second.trace)
            .position(|(a, b)| a != b)
            .unwrap_or(first.trace.len().min(second.trace.len()));
        return Err(Violation {
            what: format!("two runs of the same scenario differ at step {at}"),
            trace: first.trace[..at.min(first.trace.len())].to_vec(),
        });
    }
    Ok(first)
}

/// Runs `scenario` once, checking every invariant but determinism.
pub fn run(scenario: &Scenario) -> Result<Outcome, Violation> {
    let mut world = World::new(scenario);
    // The client may have asked for something already (a Connect to an IP literal).
    world.drain()?;
    if scenario.setup.tls_first {
        world.apply(&Op::StartTls)?;
    }
    for op in &scenario.ops {
        world.apply(op)?;
    }
    world.wind_down()?;
    world.outcome()
}

/// The `lifecycle` target: the scenario on a network that settles after every step, so
/// sessions go the distance; checked twice for determinism.
pub fn lifecycle(data: &[u8]) -> Result<Outcome, Violation> {
    let mut scenario = Scenario::decode(data);
    scenario.ops = scenario
        .ops
        .into_iter()
        .flat_map(|op| [op, Op::Settle])
        .collect();
    check(&scenario)
}

/// The `server_bytes` target: a TLS client takes arbitrary bytes from the server before,
/// during or after the handshake, or a real handshake with bytes flipped.
pub fn server_bytes(data: &[u8]) -> Result<Outcome, Violation> {
    let (mode, rest) = data.split_first().unwrap_or((&0, &[]));
    let setup = crate::Setup {
        tls_config: true,
        tls_first: mode & 1 == 1,
        half_open: mode & 2 == 2,
        ..crate::Setup::default()
    };
    let mut ops = vec![Op::Settle];
    if !setup.tls_first {
        ops.push(Op::StartTls);
    }
    let raw = rest.chunks(64).map(|chunk| Op::ServerRaw(chunk.to_vec()));
    match (mode >> 2) % 3 {
        // Garbage instead of the server's first flight.
        0 => ops.extend(raw),
        // A real handshake, then garbage where records should be.
        1 => {
            ops.extend([Op::Settle, Op::ServerSend(100)]);
            ops.extend(raw);
        }
        // A real first flight with bytes flipped: pairs of (position, bits).
        _ => {
            ops.extend([Op::WriteAll, Op::ServerSend(50)]);
            ops.extend(rest.chunks(3).map(|c| Op::Corrupt {
                at: u16::from_le_bytes([c[0], *c.get(1).unwrap_or(&0)]),
                xor: *c.get(2).unwrap_or(&1),
            }));
        }
    }
    ops.extend([Op::DeliverAll, Op::Settle]);
    run(&Scenario { setup, ops })
}

/// The certificates every scenario shares: making keys is the slow part.
fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(Pki::new)
}

/// The client side, built once; resumption is off so no run depends on an earlier one.
fn client_tls() -> &'static TlsConfig {
    static TLS: OnceLock<TlsConfig> = OnceLock::new();
    TLS.get_or_init(|| {
        let mut config = (*tls::client_config(pki().roots(), &[]).expect("client config")).clone();
        config.resumption = rustls::client::Resumption::disabled();
        TlsConfig::new(Arc::new(config))
    })
}

/// The server side, built once.
fn server_config() -> &'static Arc<rustls::ServerConfig> {
    static CONFIG: OnceLock<Arc<rustls::ServerConfig>> = OnceLock::new();
    CONFIG.get_or_init(|| pki().server_config())
}

/// Byte `i` of the stream the application sends: order mistakes change the bytes.
fn client_byte(i: u64) -> u8 {
    (i % 251) as u8
}

/// Byte `i` of the stream the server sends.
fn server_byte(i: u64) -> u8 {
    (i % 241) as u8 ^ 0x5a
}

fn pattern(start: u64, len: usize, byte: fn(u64) -> u8) -> Vec<u8> {
    (start..start + len as u64).map(byte).collect()
}

/// The client, the server, the socket between them and the clock.
///
/// The socket is a kernel with a send buffer: what the client writes waits there, not yet
/// acknowledged, until the network runs (time passes, the server acts, the client reads, or
/// the network settles) and carries it to the server, which acknowledges it. A reset or a
/// drain deadline in between loses what the kernel held.
struct World {
    client: Client,
    monitor: Monitor,
    start: Instant,
    now: Instant,
    trace: Vec<String>,
    phases: Vec<Phase>,

    /// Connect attempts under way, oldest first.
    attempts: VecDeque<AttemptId>,
    /// The connection's socket (the attempt that won) is open.
    open: bool,
    /// A resolution was asked for, and these families are still unanswered.
    resolving_v4: bool,
    resolving_v6: bool,
    /// A resolution was ever asked for (answers after the race are late, not senseless).
    resolution_asked: bool,
    /// Handed out by the client, not yet written.
    pending: VecDeque<Bytes>,
    wire_written: u64,
    /// Written, in the kernel, not yet carried to the server (so not acknowledged).
    kernel: VecDeque<Bytes>,
    /// The FIN is in the kernel, after those bytes.
    kernel_fin: bool,
    /// The FIN reached the server (and was acknowledged).
    fin_carried: bool,
    /// The driver cannot tell what was acknowledged.
    cannot_tell: bool,

    server: Server,
    /// What the server sent, waiting to be read by the client.
    inbound: VecDeque<u8>,
    /// Application bytes the server sent, in order.
    server_sent: u64,
    /// The server sent raw bytes: what the client receives is no longer the server's stream.
    server_raw: bool,
    server_fin: bool,
    fin_delivered: bool,

    accepted: u64,
    received: Vec<u8>,
    /// What the client handed back as undelivered, in order.
    handed_back: Vec<u8>,
    closed: Option<CloseReport>,
}

impl World {
    fn new(scenario: &Scenario) -> Self {
        let setup = &scenario.setup;
        let mut config = setup.config();
        if setup.tls_config {
            config = config.with_tls(client_tls().clone());
        }
        let start = Instant::now();
        let client = Client::new(setup.destination(), config, start);
        let mut world = Self {
            monitor: Monitor::new(&client),
            client,
            start,
            now: start,
            trace: Vec::new(),
            phases: Vec::new(),
            attempts: VecDeque::new(),
            open: false,
            resolving_v4: false,
            resolving_v6: false,
            resolution_asked: false,
            pending: VecDeque::new(),
            wire_written: 0,
            kernel: VecDeque::new(),
            kernel_fin: false,
            fin_carried: false,
            cannot_tell: setup.cannot_tell(),
            server: Server::new(),
            inbound: VecDeque::new(),
            server_sent: 0,
            server_raw: false,
            server_fin: false,
            fin_delivered: false,
            accepted: 0,
            received: Vec::new(),
            handed_back: Vec::new(),
            closed: None,
        };
        world.trace.push(format!("setup {setup:?}"));
        world
    }

    fn violation(&self, what: impl Into<String>) -> Violation {
        Violation {
            what: what.into(),
            trace: self.trace.clone(),
        }
    }

    fn at(&self) -> Duration {
        self.now - self.start
    }

    /// Hands the client a report or a request through the monitor, then drains its outputs.
    fn input<'a>(
        &mut self,
        step: impl Into<Step<'a>>,
    ) -> Result<Result<(), InvalidInput>, Violation> {
        let step = step.into();
        let line = match &step {
            Step::Request(Request::Send(data)) => {
                format!("{:?} in Send({})", self.at(), data.len())
            }
            Step::Report(Input::Received(data)) => {
                format!("{:?} in Received({})", self.at(), data.len())
            }
            Step::Report(other) => format!("{:?} in {other:?}", self.at()),
            Step::Request(other) => format!("{:?} in {other:?}", self.at()),
        };
        self.trace.push(line);
        let result = match step {
            Step::Report(input) => self.monitor.input(&mut self.client, self.now, input),
            Step::Request(request) => self.monitor.request(&mut self.client, self.now, request),
        };
        if let Err(refusal) = &result {
            self.trace.push(format!("  refused: {refusal}"));
        }
        self.drain()?;
        Ok(result)
    }

    fn drain(&mut self) -> Result<(), Violation> {
        while let Some(output) = self.monitor.poll_output(&mut self.client) {
            self.observe(output)?;
        }
        self.check_monitor()?;
        let phase = self.client.phase();
        if self.phases.last() != Some(&phase) {
            self.phases.push(phase);
        }
        if (phase == Phase::Closed) != self.closed.is_some() {
            return Err(self.violation(format!(
                "phase {phase:?} but Closed seen: {}",
                self.closed.is_some()
            )));
        }
        Ok(())
    }

    /// The monitor's first broken invariant, as a violation with the trace.
    fn check_monitor(&mut self) -> Result<(), Violation> {
        match self.monitor.violations().first() {
            Some(what) => Err(self.violation(what.clone())),
            None => Ok(()),
        }
    }

    /// Plays the socket and the server for one output (the monitor has checked it).
    fn observe(&mut self, output: Output) -> Result<(), Violation> {
        self.trace.push(match &output {
            Output::Transmit(bytes) => format!("  out Transmit({})", bytes.len()),
            Output::Event(Event::Data(bytes)) => format!("  out Data({})", bytes.len()),
            Output::Event(Event::Undelivered(bytes)) => {
                format!("  out Undelivered({})", bytes.len())
            }
            // Instants differ from run to run; times since the start do not.
            Output::Event(Event::Closed(report)) => {
                let attempts: Vec<String> = report
                    .attempts
                    .iter()
                    .map(|a| {
                        let (started, ended) = (a.started, a.ended);
                        format!("{} {} {:?}..{:?} {:?}", a.id, a.addr, started, ended, a.outcome)
                    })
                    .collect();
                format!(
                    "  out Closed({:?}, accepted {}, written {}, undelivered {}, received {}, wire {}, peer closed {}, attempts {attempts:?})",
                    report.result,
                    report.bytes_accepted,
                    report.bytes_written,
                    report.bytes_undelivered,
                    report.bytes_received,
                    report.wire_bytes_written,
                    report.peer_closed
                )
            }
            other => format!("  out {other:?}"),
        });
        self.check_monitor()?;
        match output {
            Output::Resolve { .. } => {
                (self.resolving_v4, self.resolving_v6) = (true, true);
                self.resolution_asked = true;
            }
            Output::Connect { attempt, .. } => self.attempts.push_back(attempt),
            Output::Cancel(attempt) => self.attempts.retain(|a| *a != attempt),
            Output::Transmit(bytes) => self.pending.push_back(bytes),
            Output::ShutdownWrite => self.kernel_fin = true,
            Output::QueryUnacknowledged => {
                let answer = match self.cannot_tell {
                    true => Unacknowledged::Unknown,
                    false => Unacknowledged::Known {
                        bytes: self.kernel.iter().map(|b| b.len() as u64).sum(),
                        fin_acknowledged: self.fin_carried,
                    },
                };
                self.expect_accepted(Input::Unacknowledged(answer))?;
            }
            Output::Close | Output::Reset => {
                self.open = false;
                self.pending.clear();
                // What the kernel still held is lost with the connection.
                self.kernel.clear();
            }
            Output::Event(Event::Data(data)) => self.received.extend_from_slice(&data),
            Output::Event(Event::Undelivered(bytes)) => self.handed_back.extend_from_slice(&bytes),
            Output::Event(Event::Closed(report)) => self.closed_with(*report)?,
            Output::Event(_) => {}
        }
        Ok(())
    }

    /// Checks the close report against what the server holds: exactly the bytes that got
    /// through, in order (the accounting itself is the monitor's).
    fn closed_with(&mut self, report: CloseReport) -> Result<(), Violation> {
        (self.resolving_v4, self.resolving_v6) = (false, false);
        // What came back is exactly the rest of what was sent, from where it stopped
        // getting through.
        let through = report.bytes_confirmed + report.bytes_unconfirmed;
        let expected = pattern(through, self.handed_back.len(), client_byte);
        if self.handed_back != expected {
            return Err(self.violation(format!(
                "the {} bytes handed back are not the unwritten rest of the stream; report {report:?}",
                self.handed_back.len()
            )));
        }
        if self.server.tls_error.is_none() {
            let mut at_server = self.server.plaintext.clone();
            at_server.extend_from_slice(&self.server.decrypted);
            let fail = |what: String| Err(self.violation(format!("{what}; report {report:?}")));
            // Where the driver can tell, what got through is exactly what the server has;
            // where it cannot, the server has at most what was written.
            let claimed = match self.cannot_tell {
                false => at_server.len() as u64 != through,
                true => at_server.len() as u64 > report.bytes_written,
            };
            if claimed {
                return fail(format!(
                    "the server has {} bytes but the report says {through} got through",
                    at_server.len(),
                ));
            }
            if report.is_clean() && at_server.len() as u64 != report.bytes_accepted {
                return fail(format!(
                    "a clean close, and the server has {} of {} bytes",
                    at_server.len(),
                    report.bytes_accepted
                ));
            }
            if at_server != pattern(0, at_server.len(), client_byte) {
                return fail("the server received bytes out of order or corrupted".into());
            }
        }
        self.closed = Some(report);
        Ok(())
    }

    fn apply(&mut self, op: &Op) -> Result<(), Violation> {
        // The network runs when time passes, the server acts or the client reads: what the
        // kernel holds reaches the server first.
        if matches!(
            op,
            Op::ServerSend(_)
                | Op::ServerRaw(_)
                | Op::Corrupt { .. }
                | Op::ServerCloseNotify
                | Op::Deliver(_)
                | Op::DeliverAll
                | Op::ServerFin
                | Op::Advance(_)
                | Op::Settle
        ) {
            self.carry();
        }
        match op {
            Op::Send(n) => self.send(usize::from(*n))?,
            Op::StartTls => {
                let plaintext_before = self.accepted as usize;
                if self.input(Request::StartTls)?.is_ok() {
                    self.server
                        .start_tls_at(plaintext_before, server_config().clone());
                }
            }
            Op::Finish => drop(self.input(Request::Finish)?),
            Op::Abort => drop(self.input(Request::Abort)?),
            Op::Resolve(n) if self.resolving() => self.resolve(*n)?,
            Op::ResolveFail if self.resolving() => {
                (self.resolving_v4, self.resolving_v6) = (false, false);
                self.expect_accepted(Input::Resolved {
                    family: None,
                    result: Err(ErrorKind::NotFound),
                })?;
            }
            Op::ConnectOk if !self.attempts.is_empty() => {
                let attempt = self.attempts.pop_front();
                self.open = true;
                if let Some(attempt) = attempt {
                    self.expect_accepted(Input::Connected(attempt))?;
                }
            }
            Op::ConnectRefused if !self.attempts.is_empty() => {
                if let Some(&attempt) = self.attempts.front() {
                    let refused = Input::ConnectFailed(attempt, ErrorKind::ConnectionRefused);
                    self.expect_accepted(refused)?;
                }
            }
            Op::Write(n) => drop(self.write(usize::from(*n))?),
            Op::WriteAll => drop(self.write(usize::MAX)?),
            Op::ServerSend(n) => {
                let data = pattern(self.server_sent, usize::from(*n), server_byte);
                self.server_sent += data.len() as u64;
                self.server.send(&data);
            }
            Op::ServerRaw(raw) => {
                self.server_raw = true;
                self.server.send_raw(&raw[..raw.len().min(64)]);
            }
            Op::Corrupt { at, xor } => {
                self.inbound.extend(self.server.take_outgoing());
                let waiting = self.inbound.len();
                if waiting > 0 {
                    self.server_raw = true;
                    self.inbound[usize::from(*at) % waiting] ^= (*xor).max(1);
                }
            }
            Op::ServerCloseNotify => self.server.send_close_notify(),
            Op::Deliver(n) => drop(self.deliver(usize::from(*n))?),
            Op::DeliverAll => drop(self.deliver(usize::MAX)?),
            Op::ServerFin => self.server_fin = true,
            Op::Reset if self.open => {
                self.expect_accepted(Input::SocketError(ErrorKind::ConnectionReset))?;
            }
            Op::Reset if !self.attempts.is_empty() => {
                if let Some(&attempt) = self.attempts.front() {
                    let reset = Input::ConnectFailed(attempt, ErrorKind::ConnectionReset);
                    self.expect_accepted(reset)?;
                }
            }
            Op::Advance(steps) => {
                self.now += Duration::from_millis(10 * u64::from(*steps));
                self.consume(64 * u64::from(*steps))?;
            }
            Op::Timeout => self.timeout()?,
            Op::Settle => self.settle()?,
            Op::Misuse(misuse) => self.misuse(*misuse)?,
            // An answer nobody asked for: the driver would not give it.
            Op::Resolve(_) | Op::ResolveFail | Op::ConnectOk | Op::ConnectRefused | Op::Reset => {}
        }
        self.inbound.extend(self.server.take_outgoing());
        Ok(())
    }

    fn resolving(&self) -> bool {
        self.resolving_v4 || self.resolving_v6
    }

    /// Answers the resolution: `n % 4` IPv4 and `(n >> 2) % 3` IPv6 addresses, and by
    /// `(n >> 4) % 4` all at once, the IPv4 family alone, the IPv6 family alone, or a
    /// failure of one family.
    fn resolve(&mut self, n: u8) -> Result<(), Violation> {
        let v4: Vec<SocketAddr> = (0..n % 4)
            .map(|i| SocketAddr::from(([127, 0, 0, 1 + i], 4433)))
            .collect();
        let v6: Vec<SocketAddr> = (0..(n >> 2) % 3)
            .map(|i| SocketAddr::from(([0, 0, 0, 0, 0, 0, 0, 1 + u16::from(i)], 4433)))
            .collect();
        match (n >> 4) % 4 {
            1 if self.resolving_v4 => {
                self.resolving_v4 = false;
                self.expect_accepted(Input::Resolved {
                    family: Some(Family::V4),
                    result: Ok(&v4),
                })
            }
            2 if self.resolving_v6 => {
                self.resolving_v6 = false;
                self.expect_accepted(Input::Resolved {
                    family: Some(Family::V6),
                    result: Ok(&v6),
                })
            }
            3 => {
                let family = if self.resolving_v6 {
                    Family::V6
                } else {
                    Family::V4
                };
                match family {
                    Family::V6 => self.resolving_v6 = false,
                    Family::V4 => self.resolving_v4 = false,
                }
                let failed = Input::Resolved {
                    family: Some(family),
                    result: Err(ErrorKind::NotFound),
                };
                self.expect_accepted(failed)
            }
            _ => {
                (self.resolving_v4, self.resolving_v6) = (false, false);
                let all: Vec<SocketAddr> = v6.into_iter().chain(v4).collect();
                self.expect_accepted(Input::Resolved {
                    family: None,
                    result: Ok(&all),
                })
            }
        }
    }

    fn expect_accepted<'a>(&mut self, step: impl Into<Step<'a>>) -> Result<(), Violation> {
        let step = step.into();
        let name = step.name();
        match self.input(step)? {
            Ok(()) => Ok(()),
            Err(e) => Err(self.violation(format!("a valid {name} was refused: {e}"))),
        }
    }

    fn send(&mut self, n: usize) -> Result<(), Violation> {
        let data = Bytes::from(pattern(self.accepted, n, client_byte));
        match self.input(Request::Send(data.clone()))? {
            Ok(()) => self.accepted += n as u64,
            Err(refusal) => {
                if refusal.into_data() != Some(data) {
                    return Err(self.violation("a refused Send did not hand its data back"));
                }
            }
        }
        Ok(())
    }

    /// The socket takes up to `max` bytes. Returns whether anything moved.
    fn write(&mut self, max: usize) -> Result<bool, Violation> {
        if !self.open || self.closed.is_some() {
            return Ok(false);
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
        if written == 0 {
            return Ok(false);
        }
        self.wire_written += written as u64;
        self.expect_accepted(Input::Written(written))?;
        Ok(true)
    }

    /// The network carries what the kernel holds to the server, the FIN last. Returns
    /// whether anything moved.
    fn carry(&mut self) -> bool {
        let mut moved = false;
        while let Some(chunk) = self.kernel.pop_front() {
            self.server.receive(&chunk);
            moved = true;
        }
        if self.kernel_fin && !self.fin_carried {
            self.fin_carried = true;
            self.server.got_fin = true;
            moved = true;
        }
        moved
    }

    /// The client reads up to `max` bytes, or the EOF after them. Returns whether anything moved.
    fn deliver(&mut self, max: usize) -> Result<bool, Violation> {
        self.inbound.extend(self.server.take_outgoing());
        if !self.open || self.fin_delivered || !self.client.wants_read() {
            return Ok(false);
        }
        if !self.inbound.is_empty() {
            let n = self.inbound.len().min(max);
            let data: Vec<u8> = self.inbound.drain(..n).collect();
            let checked = self.received.len();
            self.expect_accepted(Input::Received(&data))?;
            // Only what this read added: earlier bytes were checked when they arrived.
            let new = &self.received[checked..];
            if !self.server_raw && new != pattern(checked as u64, new.len(), server_byte) {
                return Err(
                    self.violation("the application received bytes the server did not send")
                );
            }
            return Ok(true);
        }
        if self.server_fin {
            self.fin_delivered = true;
            self.expect_accepted(Input::PeerEof)?;
            return Ok(true);
        }
        Ok(false)
    }

    /// The application reports up to `max` delivered bytes consumed (with a window; without
    /// one it consumes on delivery and says nothing).
    fn consume(&mut self, max: u64) -> Result<(), Violation> {
        let unconsumed = self.client.bytes_unconsumed().min(max);
        if self.client.config().receive_window.is_none() || unconsumed == 0 {
            return Ok(());
        }
        let n = usize::try_from(unconsumed).unwrap_or(usize::MAX);
        self.expect_accepted(Request::Consumed(n))
    }

    fn timeout(&mut self) -> Result<(), Violation> {
        let Some(deadline) = self.client.poll_timeout() else {
            return Ok(());
        };
        self.now = self.now.max(deadline);
        self.input(Input::Timeout)?
            .map_err(|e| self.violation(format!("Timeout refused: {e}")))?;
        Ok(())
    }

    fn settle(&mut self) -> Result<(), Violation> {
        if self.resolving() {
            self.apply(&Op::Resolve(1))?;
        }
        if !self.attempts.is_empty() {
            self.apply(&Op::ConnectOk)?;
        }
        for _ in 0..1000 {
            let wrote = self.write(usize::MAX)?;
            let carried = self.carry();
            self.consume(u64::MAX)?;
            let read = self.deliver(usize::MAX)?;
            if !wrote && !carried && !read {
                return Ok(());
            }
        }
        Err(self.violation("a perfect network did not settle in 1000 rounds"))
    }

    fn misuse(&mut self, misuse: Misuse) -> Result<(), Violation> {
        if self.closed.is_some() {
            return self.late(misuse);
        }
        let readable = self.open && !self.fin_delivered;
        // An id no attempt ever had.
        let never = AttemptId(u32::MAX);
        let input = match misuse {
            Misuse::Connected => Input::Connected(never),
            Misuse::WrittenTooMuch => {
                let pending: usize = self.pending.iter().map(Bytes::len).sum();
                Input::Written(pending + 1)
            }
            Misuse::ReceivedWhileNotReadable if !readable => Input::Received(b"x"),
            Misuse::PeerEofWhileNotReadable if !readable => Input::PeerEof,
            Misuse::Resolved if !self.resolution_asked => Input::Resolved {
                family: None,
                result: Ok(&[]),
            },
            Misuse::SocketError if !self.open => Input::SocketError(ErrorKind::ConnectionReset),
            Misuse::ResolveFailed if !self.resolution_asked => Input::Resolved {
                family: None,
                result: Err(ErrorKind::NotFound),
            },
            Misuse::ConnectFailed => Input::ConnectFailed(never, ErrorKind::ConnectionRefused),
            _ => return Ok(()),
        };
        let name = input.name();
        match self.input(input)? {
            Ok(()) => Err(self.violation(format!("a senseless {name} was accepted"))),
            Err(_) => Ok(()),
        }
    }

    /// A report that arrives after the close: the monitor checks that it is accepted and
    /// changes nothing; here, that it produces nothing either.
    fn late(&mut self, report: Misuse) -> Result<(), Violation> {
        const ADDRS: [SocketAddr; 1] = [SocketAddr::V4(std::net::SocketAddrV4::new(
            std::net::Ipv4Addr::LOCALHOST,
            4433,
        ))];
        let input = match report {
            Misuse::Connected => Input::Connected(AttemptId(0)),
            Misuse::WrittenTooMuch => Input::Written(1),
            Misuse::ReceivedWhileNotReadable => Input::Received(b"late"),
            Misuse::PeerEofWhileNotReadable => Input::PeerEof,
            Misuse::Resolved => Input::Resolved {
                family: None,
                result: Ok(&ADDRS),
            },
            Misuse::SocketError => Input::SocketError(ErrorKind::NotConnected),
            Misuse::ResolveFailed => Input::Resolved {
                family: None,
                result: Err(ErrorKind::NotFound),
            },
            Misuse::ConnectFailed => {
                Input::ConnectFailed(AttemptId(0), ErrorKind::ConnectionRefused)
            }
        };
        let name = input.name();
        let lines_before = self.trace.len();
        // Accepted, and unchanged: the monitor says so if not.
        let _ = self.input(input)?;
        if self.trace.len() != lines_before + 1 {
            return Err(self.violation(format!("a late {name} produced outputs")));
        }
        Ok(())
    }

    /// Asks for a graceful shutdown and lets only time pass: the client must close by itself.
    fn wind_down(&mut self) -> Result<(), Violation> {
        if self.closed.is_none() {
            let _ = self.input(Request::Finish)?;
        }
        // The drain deadline is at most 25.5 s away, and a finished connection asks what
        // the peer acknowledged every 200 ms at most until then.
        for _ in 0..1000 {
            if self.closed.is_some() {
                return Ok(());
            }
            if self.client.poll_timeout().is_none() {
                return Err(self.violation("shutting down with no deadline armed: this would hang"));
            }
            self.timeout()?;
        }
        Err(self.violation("1000 deadlines after Finish and still not closed"))
    }

    fn outcome(mut self) -> Result<Outcome, Violation> {
        let Some(report) = self.closed.clone() else {
            return Err(self.violation("no Closed event"));
        };
        for late in [
            Misuse::Connected,
            Misuse::WrittenTooMuch,
            Misuse::ReceivedWhileNotReadable,
            Misuse::PeerEofWhileNotReadable,
            Misuse::Resolved,
            Misuse::SocketError,
            Misuse::ResolveFailed,
            Misuse::ConnectFailed,
        ] {
            self.late(late)?;
        }
        if self.monitor.poll_output(&mut self.client).is_some() {
            return Err(self.violation("an output after Closed"));
        }
        self.check_monitor()?;
        Ok(Outcome {
            trace: self.trace,
            report,
            phases: self.phases,
        })
    }
}
