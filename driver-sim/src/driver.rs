//! The simulator runs the very driver users run on tokio (`tcpclient-tokio`), over turmoil's
//! network instead of the operating system's, with the trace and the invariant monitor as
//! its observer. It has no driver loop of its own.
//!
//! Time is turmoil's: it pauses and advances tokio's clock, which the driver reads, and the
//! driver's `select!` is `biased;`, so a seed fixes the whole run.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use tcpclient_core::monitor::Monitor;
use tcpclient_core::{
    AttemptId, Client, Config, ConnectOptions, Destination, Event, Family, Input, InvalidInput,
    Output, Preamble, Request, Unacknowledged,
};
use tcpclient_tokio::{Connection, DriverEnd, Observer};

use crate::buggify::{Buggify, BuggyStream, Point};
use crate::coverage::Coverage;
use crate::trace::Trace;
use crate::wire::Wire;

/// A simulated connection: `tcpclient-tokio`'s, observed by the simulator.
pub type SimConnection = Connection<SimObserver>;

/// A simulated name service: each address family answers on its own, after its own delay
/// (RFC 8305's AAAA and A lookups), with addresses or a failure.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimDns {
    /// The answers to give for any name, one per family at most.
    pub answers: Vec<DnsAnswer>,
}

/// One family's answer of a [`SimDns`].
#[derive(Debug, Clone, PartialEq)]
pub struct DnsAnswer {
    /// Which lookup this answers.
    pub family: Family,
    /// How long after the question the answer comes.
    pub delay: Duration,
    /// The addresses (the port comes from the question), or why there are none.
    pub result: Result<Vec<IpAddr>, std::io::ErrorKind>,
}

/// turmoil's network, as the driver sees it: its TCP, and its DNS (or a [`SimDns`]).
///
/// Socket options are not modelled by turmoil: they are in the trace, on each `Connect`.
/// Nor are `SO_LINGER` and the peer's acknowledgements: they are modelled in a [`Wire`]
/// shared with the simulated servers.
#[derive(Debug, Clone, Default)]
pub struct Turmoil {
    /// Names answered by this service instead of turmoil's.
    pub dns: Option<SimDns>,
    /// What turmoil does not model of each connection, shared with the servers.
    pub wire: Wire,
    /// Where the driver misbehaves (nowhere, by default).
    pub buggify: Buggify,
}

impl tcpclient_tokio::Network for Turmoil {
    type Stream = BuggyStream;

    fn connect(
        &self,
        addr: SocketAddr,
        _options: &ConnectOptions,
    ) -> impl Future<Output = io::Result<Self::Stream>> + Send + 'static {
        let (buggify, wire) = (self.buggify.clone(), self.wire.clone());
        async move {
            let connected = turmoil::net::TcpStream::connect(addr).await;
            if buggify.fires(Point::LateConnect) {
                let late = Duration::from_millis(1 + buggify.below(Point::LateConnect, 50));
                tokio::time::sleep(late).await;
            }
            connected.map(|stream| BuggyStream::new(stream, buggify, wire))
        }
    }

    fn lookup(
        &self,
        host: &str,
        port: u16,
        family: Family,
    ) -> impl Future<Output = io::Result<Vec<SocketAddr>>> + Send + 'static {
        let answer = self.dns.as_ref().map(|dns| {
            dns.answers
                .iter()
                .find(|a| a.family == family)
                .map(|a| (a.delay, a.result.clone()))
                .unwrap_or((Duration::ZERO, Ok(Vec::new())))
        });
        let host = host.to_owned();
        async move {
            let (delay, result) = match answer {
                Some(answer) => answer,
                None => (
                    Duration::ZERO,
                    turmoil::net::lookup_host((host.as_str(), port))
                        .await
                        .map(|addrs| addrs.map(|a| a.ip()).collect())
                        .map_err(|e| e.kind()),
                ),
            };
            tokio::time::sleep(delay).await;
            match result {
                Ok(ips) => Ok(ips
                    .into_iter()
                    .map(|ip| SocketAddr::new(ip, port))
                    .filter(|addr| Family::of(addr) == family)
                    .collect()),
                Err(kind) => Err(kind.into()),
            }
        }
    }

    fn reset(&self, stream: Self::Stream) {
        if let Ok(client) = stream.local_addr() {
            self.wire.record_reset(client);
        }
        drop(stream);
    }

    fn unacknowledged(&self, stream: &Self::Stream, fin_sent: bool) -> Unacknowledged {
        let Ok(client) = stream.local_addr() else {
            return Unacknowledged::Unknown;
        };
        let (taken, fin_taken) = self.wire.taken(client);
        let bytes = stream.written().saturating_sub(taken);
        Unacknowledged::Known {
            bytes,
            fin_acknowledged: fin_sent && fin_taken && bytes == 0,
        }
    }
}

/// What the simulator puts between the driver and the client: the trace of every input and
/// output with its simulated time, and the invariant monitor.
///
/// It is also where the driver's reports are buggified: a timeout before its deadline, a
/// report made twice, a cancelled attempt's outcome reported anyway, a timer that fires late.
pub struct SimObserver {
    trace: Trace,
    monitor: Monitor,
    coverage: Rc<RefCell<Coverage>>,
    session: bool,
    /// The last reconnect's attempt number.
    last_attempt: Option<u32>,
    buggify: Buggify,
    /// Attempts the engine cancelled, whose outcome a late report may still bring.
    cancelled: Vec<AttemptId>,
    /// The last deadline asked about, and when the timer fires for it.
    timer: Option<(Instant, Instant)>,
}

impl SimObserver {
    fn new(
        trace: Trace,
        client: &Client,
        coverage: Rc<RefCell<Coverage>>,
        buggify: Buggify,
    ) -> Self {
        Self {
            trace,
            monitor: Monitor::new(client),
            coverage,
            session: client.config().reconnect.is_some(),
            last_attempt: None,
            buggify,
            cancelled: Vec::new(),
            timer: None,
        }
    }

    /// Hands the engine one input, traced and checked.
    fn pass(
        &mut self,
        engine: &mut Client,
        now: Instant,
        input: Input<'_>,
    ) -> Result<(), InvalidInput> {
        self.trace.input(now, &input);
        let answer = self.monitor.input(engine, now, input);
        if let Err(refusal) = &answer {
            self.trace.refused(now, refusal);
        }
        self.coverage.borrow_mut().observe_client(engine);
        answer
    }

    /// The buggified inputs that come before `input`: an early timeout, a late report.
    fn before(&mut self, engine: &mut Client, now: Instant) {
        let early = engine.poll_timeout().is_some_and(|deadline| deadline > now);
        if early && self.buggify.fires(Point::EarlyTimeout) {
            // "A timeout that arrives early, or twice, does nothing": never refused.
            if let Err(refusal) = self.pass(engine, now, Input::Timeout) {
                self.monitor
                    .violate(format!("an early timeout was refused: {refusal}"));
            }
        }
        if !self.cancelled.is_empty() && self.buggify.fires(Point::LateReport) {
            let late = Point::LateReport;
            let at = self.buggify.below(late, self.cancelled.len() as u64) as usize;
            let attempt = self.cancelled.swap_remove(at);
            // Late, the report is taken and ignored; the monitor checks that it is, and
            // that it leaves the engine as it was.
            let _ = match self.buggify.below(late, 2) {
                0 => self.pass(engine, now, Input::Connected(attempt)),
                _ => self.pass(
                    engine,
                    now,
                    Input::ConnectFailed(attempt, io::ErrorKind::ConnectionRefused),
                ),
            };
        }
    }
}

impl Observer for SimObserver {
    /// A copied send reaches the client as the `Send` it is equivalent to, so the trace and
    /// the monitor see it as they see every other request.
    fn send_slice(
        &mut self,
        engine: &mut Client,
        now: Instant,
        data: &[u8],
    ) -> Result<(), InvalidInput> {
        self.request(
            engine,
            now,
            Request::Send(bytes::Bytes::copy_from_slice(data)),
        )
    }

    fn input(
        &mut self,
        engine: &mut Client,
        now: Instant,
        input: Input<'_>,
    ) -> Result<(), InvalidInput> {
        self.before(engine, now);
        let twice = matches!(
            input,
            Input::Connected(_)
                | Input::ConnectFailed(..)
                | Input::Resolved {
                    family: Some(_),
                    ..
                }
                | Input::PeerEof
                | Input::SocketError(_)
                | Input::Unacknowledged(_)
                | Input::Timeout
        )
        .then(|| input.clone());
        let answer = self.pass(engine, now, input);
        if let Some(again) = twice
            && answer.is_ok()
            && self.buggify.fires(Point::DuplicateReport)
        {
            // The second is taken and ignored, or refused with a typed error.
            let _ = self.pass(engine, now, again);
        }
        answer
    }

    fn request(
        &mut self,
        engine: &mut Client,
        now: Instant,
        request: Request,
    ) -> Result<(), InvalidInput> {
        self.before(engine, now);
        self.trace.request(now, &request);
        let answer = self.monitor.request(engine, now, request);
        if let Err(refusal) = &answer {
            self.trace.refused(now, refusal);
        }
        self.coverage.borrow_mut().observe_client(engine);
        answer
    }

    fn timer(&mut self, deadline: Option<Instant>) -> Option<Instant> {
        let deadline = deadline?;
        match self.timer {
            Some((asked, fires)) if asked == deadline => Some(fires),
            _ => {
                let fires = match self.buggify.fires(Point::LateTimeout) {
                    true => {
                        let late = 1 + self.buggify.below(Point::LateTimeout, 100);
                        let late = deadline.checked_add(Duration::from_millis(late));
                        late.unwrap_or(deadline)
                    }
                    false => deadline,
                };
                self.timer = Some((deadline, fires));
                Some(fires)
            }
        }
    }

    fn poll_output(&mut self, engine: &mut Client, now: Instant) -> Option<Output> {
        let output = self.monitor.poll_output(engine)?;
        self.trace.output(now, &output);
        let mut coverage = self.coverage.borrow_mut();
        coverage.observe_client(engine);
        coverage.observe_output(&output, self.session);
        if let Output::Event(tcpclient_core::Event::Reconnecting { attempt, .. }) = &output {
            coverage.observe_backoff(*attempt, self.last_attempt);
            self.last_attempt = Some(*attempt);
        }
        if let Output::Cancel(attempt) = &output {
            self.cancelled.push(*attempt);
        }
        if let (Output::Event(Event::Reconnected { replays_from, .. }), Some(policy)) =
            (&output, &engine.config().reconnect)
        {
            if policy.preamble != Preamble::None {
                coverage.hit("session preamble on a reconnect");
            }
            if *replays_from > 0 {
                coverage.hit("session replay from an acknowledgement");
            }
        }
        Some(output)
    }

    fn refused_report(&mut self, name: &'static str, refusal: &InvalidInput) {
        self.monitor
            .violate(format!("the driver's {name} was refused: {refusal}"));
    }

    fn finish(&mut self) -> Vec<String> {
        let mut coverage = self.coverage.borrow_mut();
        for point in self.buggify.fired() {
            coverage.hit(format!("buggify {}", point.name()));
        }
        self.monitor.take_violations()
    }
}

/// Creates a client to `destination` for `config` at the current simulated time, recording
/// into `trace`. Run the returned driver future alongside the application (for example with
/// `tokio::join!`); it ends with the close report. Names are resolved by turmoil's DNS.
///
/// # Panics
///
/// Outside a simulation of [`crate::turmoil`], as [`connect_with`].
pub fn connect(
    destination: impl Into<Destination>,
    config: Config,
    trace: Trace,
) -> (SimConnection, impl Future<Output = DriverEnd>) {
    connect_with(
        destination,
        config,
        trace,
        Turmoil::default(),
        Rc::default(),
    )
}

/// Like [`connect`], over `network` (its [`SimDns`] answering one family at a time, and its
/// [`Wire`] shared with the servers), and what the run reaches counted into `coverage`. With
/// [`Config::reconnect`] the future ends with the report of every connection.
///
/// # Panics
///
/// Outside a simulation of the turmoil this crate uses ([`crate::turmoil`]): with none
/// running, or inside one of another turmoil version, whose simulated network this crate
/// cannot reach. The message says which turmoil to use.
pub fn connect_with(
    destination: impl Into<Destination>,
    config: Config,
    trace: Trace,
    network: Turmoil,
    coverage: Rc<RefCell<Coverage>>,
) -> (SimConnection, impl Future<Output = DriverEnd>) {
    inside_a_simulation();
    let client = Client::new(destination, config, tcpclient_tokio::now());
    let observer = SimObserver::new(trace, &client, coverage, network.buggify.clone());
    tcpclient_tokio::start(network, client, observer)
}

/// The turmoil this crate is built on, as its `Cargo.toml` asks for it: a simulation must be
/// run by this one ([`crate::turmoil`]) for its clients to reach the simulated network.
pub const TURMOIL_VERSION: &str = "0.7";

/// Makes sure the caller runs inside a simulation of [`crate::turmoil`]. A crate with a
/// `turmoil` dependency of another version compiles (the two are different crates), and
/// without this its first connect would fail deep inside turmoil with "cannot access a
/// scoped thread local variable without calling `set` first".
fn inside_a_simulation() {
    if turmoil::sim_elapsed().is_none() {
        panic!(
            "tcpclient-sim: not inside a simulation of turmoil {TURMOIL_VERSION}, the one \
             tcpclient-sim is built on: run the client in a `tcpclient_sim::turmoil::Builder` \
             simulation (a `turmoil` dependency of another version runs a network this crate \
             cannot reach; depend on no turmoil of your own, or on {TURMOIL_VERSION})"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_turmoil_version_named_is_the_one_depended_on() {
        let manifest = include_str!("../Cargo.toml");
        let wanted = format!("turmoil = \"{TURMOIL_VERSION}.");
        assert!(
            manifest.contains(&wanted),
            "Cargo.toml asks for another turmoil"
        );
    }
}
