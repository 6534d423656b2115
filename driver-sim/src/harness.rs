//! A harness for the user's own protocol: their servers and client tasks inside turmoil, a
//! fault plan, the project's monitor on every client, and their own invariant over what
//! the run recorded.

use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use tcpclient_core::{CloseReport, Config, Destination, SplitMix};
use tcpclient_tokio::DriverEnd;

use crate::app_points::{AppPoint, AppPoints};
use crate::buggify::{Buggify, Point};
use crate::coverage::Coverage;
use crate::driver::{SimConnection, Turmoil, connect_with};
use crate::faults::Schedule;
use crate::scenario::apply;
use crate::swarm::Swarm;
use crate::trace::Trace;
use crate::wire::Wire;

/// Runs the user's servers and clients inside turmoil under one seed, with a fault plan, and
/// checks the run. A builder: each method adds or sets one thing, and [`run`](Self::run)
/// plays it.
///
/// - **Servers:** [`host`](Self::host) takes any turmoil host software. It is given a
///   [`Task`] too: its [`wire`](Task::wire), so that a server which accepts with a
///   [`Listener`](crate::Listener) lets the clients learn what its TCP acknowledged, and
///   its [`record`](Task::record), for what the server did.
/// - **Clients:** [`client`](Self::client) takes any task. It is given a [`Task`], whose
///   [`connect`](Task::connect) makes a connection with the tokio driver, watched by the
///   project's invariant monitor and traced, and whose [`record`](Task::record) adds to the
///   run's [`History`].
/// - **Faults:** [`faults`](Self::faults) gives an explicit [`Schedule`];
///   [`swarm`](Self::swarm) has the seed draw one from the [`Swarm`]'s families. Either
///   applies to every path between a client and a server.
/// - **Misbehaviour:** [`buggify`](Self::buggify) has the seed switch on the driver's
///   misbehaviours ([`Point`]). The application's own points
///   (`tcpclient_tokio::buggify::fires`) are always decided from the seed ([`AppPoints`]).
/// - **Checks:**
///   - the monitor on every connection;
///   - that a run whose faults healed finished (liveness);
///   - each [`invariant`](Self::invariant) of the user's over the recorded [`History`].
///
/// ```
/// use tcpclient_core::Config;
/// use tcpclient_sim::{FaultFamily, Harness, Listener, Swarm, PORT};
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
///
/// let verdict = Harness::new(7)
///     .host("server", |task| async move {
///         // Echoes one connection's bytes, acknowledging them through the Wire.
///         let listener = Listener::bind(("0.0.0.0", PORT), task.wire()).await?;
///         let (mut stream, _) = listener.accept().await?;
///         let mut buf = [0u8; 1024];
///         loop {
///             let n = stream.read(&mut buf).await?;
///             if n == 0 {
///                 return Ok(());
///             }
///             stream.write_all(&buf[..n]).await?;
///         }
///     })
///     .client("client", |task| async move {
///         let (mut conn, driver) = task.connect(("server", PORT), Config::new());
///         let app = async {
///             conn.write_all(b"ping").await?;
///             conn.shutdown().await?;
///             let mut echo = Vec::new();
///             conn.read_to_end(&mut echo).await?;
///             task.record(format!("echo: {}", String::from_utf8_lossy(&echo)));
///             Ok::<(), std::io::Error>(())
///         };
///         let (_, end) = tokio::join!(app, driver);
///         task.record(end.report.outcome());
///         Ok(())
///     })
///     .swarm(Swarm::none().with(FaultFamily::Latency))
///     .invariant("the echo is the request", |history| {
///         match history.records.iter().find(|r| r.what.starts_with("echo: ")) {
///             Some(record) if record.what != "echo: ping" => Err(record.what.clone()),
///             _ => Ok(()),
///         }
///     })
///     .run();
/// assert!(verdict.violations.is_empty(), "{:?}", verdict.violations);
/// ```
pub struct Harness {
    seed: u64,
    settings: Settings,
    hosts: Vec<(String, HostSoftware)>,
    clients: Vec<(String, ClientTask)>,
    plan: Plan,
    driver_points: bool,
    invariants: Vec<(String, Invariant)>,
}

/// What a host's software or a client task is given: the way to connect, the run's
/// [`Wire`], and its history.
#[derive(Clone)]
pub struct Task {
    name: String,
    shared: Rc<Shared>,
}

/// What the run recorded, for the user's invariants: the hosts' records, in the order they
/// were made, and every connection's close report.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// What the hosts recorded ([`Task::record`]).
    pub records: Vec<Record>,
    /// Each connection's close report, with the name of the host that made it.
    pub reports: Vec<(String, CloseReport)>,
}

/// One thing a host recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// When, in simulated time.
    pub at: Duration,
    /// The host that recorded it (a server's or a client's).
    pub host: String,
    /// What it recorded.
    pub what: String,
}

/// The result of a run: what was found wrong, and what happened.
#[derive(Debug)]
pub struct Verdict {
    /// The seed of the run.
    pub seed: u64,
    /// Invariants found broken: the monitor's, liveness, and the user's (none, if all is
    /// well). Each names what found it.
    pub violations: Vec<String>,
    /// Every connection's inputs, outputs and requests with their simulated times, and the
    /// faults as they were applied.
    pub trace: Trace,
    /// What the run reached.
    pub coverage: Coverage,
    /// What the hosts recorded, and the connections' reports.
    pub history: History,
    /// The faults the run applied.
    pub faults: Schedule,
    /// The driver's misbehaviours the seed switched on.
    pub driver_points: Vec<Point>,
    /// The application's own points the run reached, with what was drawn for each.
    pub app_points: Vec<AppPoint>,
    /// Simulated time the run took.
    pub simulated: Duration,
}

/// The turmoil settings a run uses.
#[derive(Debug, Clone, Copy)]
struct Settings {
    tick: Duration,
    max_latency: Duration,
    limit: Duration,
    horizon: Duration,
}

enum Plan {
    Schedule(Schedule),
    Swarm(Swarm),
}

type HostSoftware = Rc<dyn Fn(Task) -> Pin<Box<dyn Future<Output = turmoil::Result>>>>;
type ClientTask = Box<dyn FnOnce(Task) -> Pin<Box<dyn Future<Output = turmoil::Result>>>>;
type Invariant = Box<dyn Fn(&History) -> Result<(), String>>;

/// What the client tasks share with the harness.
struct Shared {
    trace: Trace,
    coverage: Rc<RefCell<Coverage>>,
    wire: Wire,
    buggify: Buggify,
    history: RefCell<History>,
    monitor_violations: RefCell<Vec<String>>,
}

impl Harness {
    /// A run with `seed`. Defaults: turmoil's tick of 1 ms, latencies of 1 to 10 ms,
    /// 120 s of simulated time at most, faults within the first 5 s, no fault, the driver
    /// as users run it.
    pub fn new(seed: u64) -> Self {
        Self {
            seed,
            settings: Settings {
                tick: Duration::from_millis(1),
                max_latency: Duration::from_millis(10),
                limit: Duration::from_secs(120),
                horizon: Duration::from_secs(5),
            },
            hosts: Vec::new(),
            clients: Vec::new(),
            plan: Plan::Schedule(Schedule::none()),
            driver_points: false,
            invariants: Vec::new(),
        }
    }

    /// A server host `name`, running `software` (started again when a fault bounces it; what
    /// it keeps outside the future, in an `Rc` it captured, survives as a disk would). It is
    /// given a [`Task`]: the run's [`Wire`], to accept with a
    /// [`Listener`](crate::Listener), and the history to record into.
    pub fn host<F, Fut>(mut self, name: &str, software: F) -> Self
    where
        F: Fn(Task) -> Fut + 'static,
        Fut: Future<Output = turmoil::Result> + 'static,
    {
        let software: HostSoftware = Rc::new(move |task| Box::pin(software(task)));
        self.hosts.push((name.to_owned(), software));
        self
    }

    /// A client host `name`, running `task` once; the run ends when every client's task has.
    pub fn client<F, Fut>(mut self, name: &str, task: F) -> Self
    where
        F: FnOnce(Task) -> Fut + 'static,
        Fut: Future<Output = turmoil::Result> + 'static,
    {
        let task: ClientTask = Box::new(move |handle| Box::pin(task(handle)));
        self.clients.push((name.to_owned(), task));
        self
    }

    /// Applies `schedule`'s faults, each at its time, to every path between a client and a
    /// server (a crash or a bounce to every server).
    pub fn faults(mut self, schedule: Schedule) -> Self {
        self.plan = Plan::Schedule(schedule);
        self
    }

    /// Has the seed draw the faults from `swarm`'s scheduled families, within the first
    /// `horizon` (5 s unless [`horizon`](Self::horizon) says otherwise), as the project's
    /// own sweep does ([`Schedule::random`]).
    pub fn swarm(mut self, swarm: Swarm) -> Self {
        self.plan = Plan::Swarm(swarm);
        self
    }

    /// The span of simulated time drawn faults fall in.
    pub fn horizon(mut self, horizon: Duration) -> Self {
        self.settings.horizon = horizon;
        self
    }

    /// Has the seed switch on the driver's misbehaviours ([`Point::random`]) for every
    /// connection.
    pub fn buggify(mut self) -> Self {
        self.driver_points = true;
        self
    }

    /// turmoil's step, 1 ms unless this says otherwise: a message is handed over at a step's
    /// start, and turmoil as released runs every host's runtime on every step, so a run costs
    /// about its simulated time over the tick (a 3.5 s request/response run of two hosts takes
    /// about 10 ms at 1 ms, in release). A longer tick runs faster and hands messages over more
    /// coarsely; timers still fire at their own instants. At least 1 ms, tokio's timer
    /// resolution.
    pub fn tick(mut self, tick: Duration) -> Self {
        self.settings.tick = tick.max(Duration::from_millis(1));
        self
    }

    /// The most latency a message sees (turmoil draws each between 1 ms and this).
    pub fn max_latency(mut self, latency: Duration) -> Self {
        self.settings.max_latency = latency.max(Duration::from_millis(1));
        self
    }

    /// The most simulated time the run may take: a run still going then is reported, as a
    /// hang when its faults had healed.
    pub fn limit(mut self, limit: Duration) -> Self {
        self.settings.limit = limit;
        self
    }

    /// Checks `check` over the run's [`History`] once it is over; an `Err` is a violation,
    /// named `name`.
    pub fn invariant(
        mut self,
        name: &str,
        check: impl Fn(&History) -> Result<(), String> + 'static,
    ) -> Self {
        self.invariants.push((name.to_owned(), Box::new(check)));
        self
    }

    /// Plays the run and checks it.
    pub fn run(self) -> Verdict {
        let Harness {
            seed,
            settings,
            hosts,
            clients,
            plan,
            driver_points,
            invariants,
        } = self;
        let mut rng = SplitMix::new(seed ^ 0x4a12_e55e_d5ee_d000);
        let faults = match plan {
            Plan::Schedule(schedule) => schedule,
            Plan::Swarm(swarm) => Schedule::random(&mut rng, settings.horizon, swarm),
        };
        let points = if driver_points {
            Point::random(&mut rng)
        } else {
            Vec::new()
        };
        let shared = Rc::new(Shared {
            trace: Trace::new(),
            coverage: Rc::default(),
            wire: Wire::default(),
            buggify: Buggify::with_points(seed, &points),
            history: RefCell::default(),
            monitor_violations: RefCell::default(),
        });
        let app_points = AppPoints::new(seed);
        let deciding = app_points.install();

        let mut sim = turmoil::Builder::new()
            .rng_seed(seed)
            .simulation_duration(settings.limit)
            .min_message_latency(Duration::from_millis(1))
            .max_message_latency(settings.max_latency)
            .tick_duration(settings.tick)
            .build();
        let servers: Vec<String> = hosts.iter().map(|(name, _)| name.clone()).collect();
        for (name, software) in hosts {
            let task = Task {
                name: name.clone(),
                shared: shared.clone(),
            };
            sim.host(name.as_str(), move || software(task.clone()));
        }
        let client_names: Vec<String> = clients.iter().map(|(name, _)| name.clone()).collect();
        for (name, task) in clients {
            let handle = Task {
                name: name.clone(),
                shared: shared.clone(),
            };
            sim.client(name.as_str(), task(handle));
        }

        let mut violations = Vec::new();
        let mut pending = faults.faults.iter().peekable();
        let finished = loop {
            while let Some(fault) = pending.next_if(|f| f.at <= sim.elapsed()) {
                let details = crate::serde_json::json!(fault.kind.to_string());
                shared.trace.note(sim.elapsed(), "fault", details);
                for client in &client_names {
                    for server in &servers {
                        apply(&mut sim, &fault.kind, client, server, false);
                    }
                }
            }
            match sim.step() {
                Ok(true) => break Ok(()),
                Ok(false) => {}
                Err(error) => break Err(error.to_string()),
            }
        };
        let simulated = sim.elapsed();
        drop(sim);
        drop(deciding);
        if let Err(error) = finished {
            violations.push(liveness(&faults, &error));
        }
        violations.extend(shared.monitor_violations.borrow().iter().cloned());
        let history = shared.history.borrow().clone();
        for (name, check) in &invariants {
            if let Err(why) = check(&history) {
                violations.push(format!("{name}: {why}"));
            }
        }
        let coverage = shared.coverage.borrow().clone();
        Verdict {
            seed,
            violations,
            trace: shared.trace.clone(),
            coverage,
            history,
            faults,
            driver_points: points,
            app_points: app_points.reached(),
            simulated,
        }
    }
}

/// The violation of a run that did not finish: a hang after its faults healed (or with
/// none), or a panic in the user's code. A run whose faults never healed is reported too:
/// the user's protocol may be right to wait, but the harness cannot tell.
fn liveness(faults: &Schedule, error: &str) -> String {
    let healed = match (faults.faults.is_empty(), faults.healed_at()) {
        (true, _) => "with no fault".to_owned(),
        (false, Some(at)) => format!("though its faults healed at {at:?}"),
        (false, None) => "and its faults never healed".to_owned(),
    };
    format!("liveness: the run did not finish {healed}: {error}")
}

impl Task {
    /// A connection to `destination` by `config`, on the tokio driver over turmoil, watched
    /// by the project's invariant monitor and traced. Run the returned driver future
    /// alongside the application (`tokio::join!`); it ends with the close report, which the
    /// history keeps.
    pub fn connect<D: Into<Destination>>(
        &self,
        destination: D,
        config: Config,
    ) -> (SimConnection, impl Future<Output = DriverEnd> + use<D>) {
        let destination: Destination = destination.into();
        let network = Turmoil {
            dns: None,
            wire: self.shared.wire.clone(),
            buggify: self.shared.buggify.clone(),
        };
        let (conn, driver) = connect_with(
            destination,
            config,
            self.shared.trace.clone(),
            network,
            self.shared.coverage.clone(),
        );
        let (name, shared) = (self.name.clone(), self.shared.clone());
        let driver = async move {
            let end = driver.await;
            for violation in &end.violations {
                let violation = format!("{name}: {violation}");
                shared.monitor_violations.borrow_mut().push(violation);
            }
            let report = (name, end.report.clone());
            shared.history.borrow_mut().reports.push(report);
            end
        };
        (conn, driver)
    }

    /// Records `what` in the run's history, with the simulated time and this host's name,
    /// for the invariants.
    pub fn record(&self, what: impl fmt::Display) {
        let record = Record {
            at: turmoil::sim_elapsed().unwrap_or_default(),
            host: self.name.clone(),
            what: what.to_string(),
        };
        self.shared.history.borrow_mut().records.push(record);
    }

    /// The run's [`Wire`], for a server's [`Listener`](crate::Listener).
    pub fn wire(&self) -> Wire {
        self.shared.wire.clone()
    }

    /// This host's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Verdict {
    /// What the seed drew, in one line: the faults, the driver's misbehaviours, the
    /// application's points that fired.
    pub fn drawn(&self) -> String {
        let faults: Vec<String> = self
            .faults
            .faults
            .iter()
            .map(|f| format!("{} at {:?}", f.kind, f.at))
            .collect();
        let driver: Vec<&str> = self.driver_points.iter().map(|p| p.name()).collect();
        let app: Vec<&str> = self
            .app_points
            .iter()
            .filter(|p| p.fired > 0)
            .map(|p| p.name)
            .collect();
        let list = |items: &[&str]| {
            if items.is_empty() {
                "none".to_owned()
            } else {
                items.join(", ")
            }
        };
        let faults: Vec<&str> = faults.iter().map(String::as_str).collect();
        format!(
            "seed {}: faults {}; driver misbehaviours {}; application points fired {}",
            self.seed,
            list(&faults),
            list(&driver),
            list(&app)
        )
    }
}
