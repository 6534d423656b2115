//! The driver: one [`Client`] over turmoil's simulated TCP, in an async loop.
//!
//! Like the polling driver it only performs what the core asks and reports what happened.
//! Time is turmoil's: `now` is `tokio::time::Instant::now()` inside the simulation, and every
//! `select!` is `biased;` so that a seed fixes the whole run.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tcpclient_core::{
    AttemptId, CloseReport, Config, Engine, Event, Family, Input, InvalidInput, Output,
    ReconnectPolicy,
};
use tcpclient_testkit::EngineMonitor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use turmoil::net::TcpStream;
use turmoil::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::trace::Trace;

/// Bytes read from the simulated socket at a time.
const READ_BUFFER: usize = 64 * 1024;

/// The application's handle on a simulated connection: Kamaelia's boxes, as in the polling
/// driver's `Connection`, but for code running inside the simulation.
///
/// Requests go straight to the client, so they are refused synchronously (the data handed
/// back); events arrive through [`recv`](Self::recv), which counts the `Data` it hands out as
/// consumed ([`Input::Consumed`], when the client has a window): what waits for `recv` is
/// bounded by the client's [`Config::receive_window`] (plus the one read that crossed it).
pub struct SimConnection {
    sender: SimSender,
    /// `Closed` was handed out: nothing more comes.
    done: bool,
}

/// The requesting half of a [`SimConnection`], cheap to clone, so that a producer task can
/// send while another takes events.
#[derive(Clone)]
pub struct SimSender {
    shared: Rc<Shared>,
}

/// What the driver loop returns: the close report, and any invariant of ARCHITECTURE.md
/// section 4 that the monitor saw broken on the way (there should be none).
#[derive(Debug, Clone)]
pub struct DriverEnd {
    /// The report of the one `Closed` event.
    pub report: CloseReport,
    /// Broken invariants, in the order they were seen.
    pub violations: Vec<String>,
}

/// What the handle and the driver loop share. Single-threaded: the simulation runs on one.
struct Shared {
    /// The client, or the reconnecting session.
    engine: RefCell<Engine>,
    trace: Trace,
    wake: Notify,
    /// Every input and output goes through it: the invariants are checked as the run goes.
    monitor: RefCell<EngineMonitor>,
    /// Events for the application, in order. Bounded by the core: it stops reading at its
    /// receive window, and `recv` reports what it takes as consumed.
    events: RefCell<VecDeque<Event>>,
    /// An event was queued, or the driver loop ended.
    events_ready: Notify,
    /// The driver loop ended (or was dropped): no more events will come.
    driver_gone: std::cell::Cell<bool>,
}

impl SimConnection {
    /// A requesting half for another task.
    pub fn sender(&self) -> SimSender {
        self.sender.clone()
    }

    /// The next event; `None` after `Closed`. `Data` counts as consumed once handed out.
    #[doc(alias = "outbox")]
    pub async fn recv(&mut self) -> Option<Event> {
        let shared = &self.sender.shared;
        loop {
            let next = shared.events.borrow_mut().pop_front();
            match next {
                Some(event) => {
                    let window = shared.engine.borrow().config().receive_window;
                    if let (Event::Data(data), Some(_)) = (&event, window) {
                        shared.report(Input::Consumed(data.len()));
                    }
                    self.done |= matches!(event, Event::Closed(_));
                    return Some(event);
                }
                None if self.done || shared.driver_gone.get() => return None,
                None => shared.events_ready.notified().await,
            }
        }
    }
}

impl SimSender {
    /// Queues `data` (Kamaelia's `inbox`).
    #[doc(alias = "inbox")]
    pub fn send(&self, data: Bytes) -> Result<(), InvalidInput> {
        self.shared.input(Input::Send(data))
    }

    /// Switches to TLS (Kamaelia's `makessl`).
    #[doc(alias = "makessl")]
    pub fn start_tls(&self) -> Result<(), InvalidInput> {
        self.shared.input(Input::StartTls)
    }

    /// Graceful shutdown (Kamaelia's `producerFinished`).
    #[doc(alias = "producerFinished")]
    pub fn finish(&self) -> Result<(), InvalidInput> {
        self.shared.input(Input::Finish)
    }

    /// Closes now (Kamaelia's `shutdownMicroprocess`).
    #[doc(alias = "shutdownMicroprocess")]
    pub fn abort(&self) -> Result<(), InvalidInput> {
        self.shared.input(Input::Abort)
    }

    /// Bytes accepted and not yet written: what a producer waits on.
    pub fn bytes_queued(&self) -> u64 {
        self.shared.engine.borrow().bytes_queued()
    }
}

impl Shared {
    /// Feeds one input now, traced and monitored; wakes the driver loop so it acts on the
    /// outputs.
    fn input(&self, input: Input<'_>) -> Result<(), InvalidInput> {
        let now = now();
        self.trace.input(now, &input);
        let result = self
            .monitor
            .borrow_mut()
            .input(&mut self.engine.borrow_mut(), now, input);
        if let Err(refusal) = &result {
            self.trace.refused(now, refusal);
        }
        self.wake.notify_one();
        result
    }

    /// Feeds a driver report. The core takes every report of a faithful driver, late ones
    /// included; a refusal is a bug in this driver, recorded as a violation.
    fn report(&self, input: Input<'_>) {
        let name = input.name();
        if let Err(refusal) = self.input(input) {
            self.monitor
                .borrow_mut()
                .violate(format!("the driver's {name} was refused: {refusal}"));
        }
    }

    /// Queues an event for [`SimConnection::recv`].
    fn deliver(&self, event: Event) {
        self.events.borrow_mut().push_back(event);
        self.events_ready.notify_one();
    }

    fn poll_output(&self) -> Option<Output> {
        let output = self
            .monitor
            .borrow_mut()
            .poll_output(&mut self.engine.borrow_mut())?;
        self.trace.output(now(), &output);
        Some(output)
    }
}

/// The simulated clock, as a `std` instant for the core.
fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

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

/// Creates a client for `config` at the current simulated time, recording into `trace`.
/// Run the returned driver future alongside the application (for example with
/// `tokio::join!`); it ends with the close report. Names are resolved by turmoil's DNS, both
/// families in one answer.
pub fn connect(config: Config, trace: Trace) -> (SimConnection, impl Future<Output = DriverEnd>) {
    connect_with_dns(config, trace, None)
}

/// Like [`connect`], with names resolved by `dns`, one family at a time (or by turmoil's
/// DNS if `None`).
pub fn connect_with_dns(
    config: Config,
    trace: Trace,
    dns: Option<SimDns>,
) -> (SimConnection, impl Future<Output = DriverEnd>) {
    connect_with(config, None, trace, dns)
}

/// Like [`connect_with_dns`], and with a reconnect policy, a
/// [`Session`](tcpclient_core::Session) that connects again when its connection is lost.
/// The driver future ends with the session's report.
pub fn connect_with(
    config: Config,
    reconnect: Option<ReconnectPolicy>,
    trace: Trace,
    dns: Option<SimDns>,
) -> (SimConnection, impl Future<Output = DriverEnd>) {
    let engine = Engine::new(config, reconnect, now());
    let shared = Rc::new(Shared {
        monitor: RefCell::new(EngineMonitor::new(&engine)),
        engine: RefCell::new(engine),
        trace,
        wake: Notify::new(),
        events: RefCell::new(VecDeque::new()),
        events_ready: Notify::new(),
        driver_gone: std::cell::Cell::new(false),
    });
    let driver = drive(shared.clone(), dns);
    (
        SimConnection {
            sender: SimSender { shared },
            done: false,
        },
        driver,
    )
}

type Connecting = Pin<Box<dyn Future<Output = io::Result<TcpStream>>>>;

/// The loop: perform outputs, then wait (biased) for a request, the connect, a write, a
/// read or the deadline, and report what happened.
async fn drive(shared: Rc<Shared>, dns: Option<SimDns>) -> DriverEnd {
    // However the loop ends (returned, or dropped with the simulation), `recv` stops waiting.
    let _gone = DriverGone(shared.clone());
    let mut socket: Option<(OwnedReadHalf, OwnedWriteHalf)> = None;
    // Answers of the simulated name service, due at their instants.
    let mut answers: Vec<(Instant, Family, Result<Vec<SocketAddr>, std::io::ErrorKind>)> =
        Vec::new();
    // One connect per attempt under way (Happy Eyeballs races them).
    let mut connecting: Vec<(AttemptId, Connecting)> = Vec::new();
    let mut pending: VecDeque<Bytes> = VecDeque::new();
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        while let Some(output) = shared.poll_output() {
            match output {
                Output::Resolve { host, port } => match &dns {
                    None => {
                        let resolved = turmoil::net::lookup_host((host.as_str(), port)).await;
                        match resolved {
                            Ok(addrs) => shared.report(Input::Resolved(&addrs.collect::<Vec<_>>())),
                            Err(e) => shared.report(Input::ResolveFailed(e.kind())),
                        }
                    }
                    Some(dns) => {
                        let asked = now();
                        for answer in &dns.answers {
                            let result = answer.result.clone().map(|ips| {
                                ips.into_iter()
                                    .map(|ip| SocketAddr::new(ip, port))
                                    .collect()
                            });
                            answers.push((asked + answer.delay, answer.family, result));
                        }
                        // In time order, the order given for a tie: a seed fixes it.
                        answers.sort_by_key(|(at, _, _)| *at);
                    }
                },
                Output::Connect { attempt, addr, .. } => {
                    connecting.push((attempt, Box::pin(TcpStream::connect(addr))));
                }
                Output::Cancel(attempt) => connecting.retain(|(a, _)| *a != attempt),
                Output::Transmit(bytes) => pending.push_back(bytes),
                Output::ShutdownWrite => {
                    if let Some((_, write)) = socket.as_mut()
                        && let Err(e) = write.shutdown().await
                    {
                        shared.report(Input::SocketError(e.kind()));
                    }
                }
                // turmoil sends a reset only for a socket dropped with unread data; an abort
                // is modelled as a close here (the polling driver's tests check the reset).
                Output::Close | Output::Reset => {
                    socket = None;
                    pending.clear();
                }
                Output::Event(Event::Closed(report)) => {
                    shared.deliver(Event::Closed(report.clone()));
                    // One more poll: the monitor flags anything that comes after Closed.
                    let _ = shared.poll_output();
                    let violations = shared.monitor.borrow_mut().take_violations();
                    return DriverEnd {
                        report: *report,
                        violations,
                    };
                }
                Output::Event(event) => shared.deliver(event),
            }
        }

        let deadline = shared.engine.borrow().poll_timeout();
        let next_answer = answers.first().map(|(at, _, _)| *at);
        let reading = socket.is_some() && shared.engine.borrow().wants_read();
        let writing = socket.is_some() && !pending.is_empty();
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                None => std::future::pending().await,
            }
        };
        let (read_half, write_half) = match socket.as_mut() {
            Some((r, w)) => (Some(r), Some(w)),
            None => (None, None),
        };
        tokio::select! {
            biased;
            () = shared.wake.notified() => {}
            (attempt, connected) = first_connect(&mut connecting), if !connecting.is_empty() => {
                match connected {
                    Ok(stream) => {
                        shared.report(Input::Connected(attempt));
                        // Only the winner's socket is kept; a loser's closes as it drops.
                        if shared.engine.borrow().winning_attempt() == Some(attempt) {
                            socket = Some(stream.into_split());
                        }
                    }
                    Err(e) => shared.report(Input::ConnectFailed(attempt, e.kind())),
                }
            }
            written = write_front(write_half, &pending), if writing => {
                match written {
                    Ok(n) => {
                        let _ = pending.front_mut().map(|front| front.split_to(n));
                        if pending.front().is_some_and(Bytes::is_empty) {
                            pending.pop_front();
                        }
                        shared.report(Input::Written(n));
                    }
                    Err(e) => shared.report(Input::SocketError(e.kind())),
                }
            }
            read = read_into(read_half, &mut buf), if reading => {
                match read {
                    Ok(0) => shared.report(Input::PeerEof),
                    Ok(n) => shared.report(Input::Received(&buf[..n])),
                    Err(e) => shared.report(Input::SocketError(e.kind())),
                }
            }
            () = sleep_until(next_answer), if next_answer.is_some() => {
                let now = now();
                while answers.first().is_some_and(|(at, _, _)| *at <= now) {
                    let (_, family, result) = answers.remove(0);
                    match result {
                        Ok(addrs) => shared.report(Input::ResolvedFamily(family, &addrs)),
                        Err(kind) => shared.report(Input::ResolveFamilyFailed(family, kind)),
                    }
                }
            }
            () = sleep => shared.report(Input::Timeout),
        }
    }
}

/// Marks the driver loop gone when it ends.
struct DriverGone(Rc<Shared>);

impl Drop for DriverGone {
    fn drop(&mut self) {
        self.0.driver_gone.set(true);
        self.0.events_ready.notify_one();
    }
}

/// Sleeps until `at` (for ever without one).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}

/// Awaits the first of the connects under way to finish (in attempt order when several
/// finish at once, so a seed fixes which), and takes it out of the list.
async fn first_connect(
    connecting: &mut Vec<(AttemptId, Connecting)>,
) -> (AttemptId, io::Result<TcpStream>) {
    std::future::poll_fn(|cx| {
        for at in 0..connecting.len() {
            if let Poll::Ready(result) = connecting[at].1.as_mut().poll(cx) {
                let (attempt, _) = connecting.remove(at);
                return Poll::Ready((attempt, result));
            }
        }
        Poll::Pending
    })
    .await
}

/// Writes the front transmit; pending for ever without a socket or a transmit.
async fn write_front(
    write: Option<&mut OwnedWriteHalf>,
    pending: &VecDeque<Bytes>,
) -> io::Result<usize> {
    match (write, pending.front()) {
        (Some(write), Some(front)) => write.write(front).await,
        _ => std::future::pending().await,
    }
}

/// Reads into `buf`; pending for ever without a socket.
async fn read_into(read: Option<&mut OwnedReadHalf>, buf: &mut [u8]) -> io::Result<usize> {
    match read {
        Some(read) => read.read(buf).await,
        None => std::future::pending().await,
    }
}
