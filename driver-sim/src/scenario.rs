//! Scenarios: a server, a client script and a fault schedule, chosen from a seed, run in
//! turmoil and checked.

use std::cell::{Cell, RefCell};
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rustls::ServerConfig;
use tcpclient_core::{
    AttemptOutcome, CloseReport, Config, Ending, Event, InvalidInput, OnPeerEof, Preamble,
    ReconnectPolicy, TlsConfig,
};
use tokio::sync::Notify;

use crate::buggify::{Buggify, Point};
use crate::certificates;
use crate::coverage::Coverage;
use crate::driver::{Turmoil, connect_with};
use crate::faults::{Direction, FaultKind, Schedule};
use crate::liveness;
use crate::network::{Network, Reach, SERVER_V4, SERVER_V6};
use crate::servers::server;
use crate::servers::{ServerKind, SharedLog, serve_after_preamble};
use crate::swarm::{FaultFamily, Swarm};
use crate::trace::Trace;
use crate::wire::Wire;
use tcpclient_core::SplitMix;
use tcpclient_tokio::DriverEnd;

/// turmoil's default TCP capacity, in segments.
pub const TURMOIL_TCP_CAPACITY: usize = 64;

/// Simulated time a scenario may take before it counts as a hang.
pub const SIMULATION_LIMIT: Duration = Duration::from_secs(120);

/// How the client uses TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
pub enum TlsMode {
    /// No TLS.
    Plain,
    /// TLS from the first byte.
    FromStart,
    /// A `STARTTLS` line, the server's `220 go`, then TLS.
    StartTls,
}

impl TlsMode {
    /// The mode's name in summaries: its variant's name.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// How the application ends its side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
pub enum End {
    /// Graceful shutdown (Kamaelia's `producerFinished`).
    Finish,
    /// Abort (Kamaelia's `shutdownMicroprocess`).
    Abort,
}

impl End {
    /// The ending's name in summaries: its variant's name.
    pub fn name(self) -> &'static str {
        self.into()
    }
}

/// What the application does: send messages after pauses, then end.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// Pause before each message, and its size.
    pub messages: Vec<(Duration, usize)>,
    /// How it ends.
    pub end: End,
}

/// One simulated run, all of it decided by the seed.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The seed: of this scenario, and of turmoil's network.
    pub seed: u64,
    /// The server to talk to.
    pub server: ServerKind,
    /// TLS or not.
    pub tls: TlsMode,
    /// The application.
    pub script: Script,
    /// Faults over time.
    pub schedule: Schedule,
    /// The client's configuration (host and TLS are filled in at run time).
    pub connect_timeout: Duration,
    /// See [`Config::drain_timeout`].
    pub drain_timeout: Duration,
    /// See [`Config::idle_timeout`].
    pub idle_timeout: Option<Duration>,
    /// See [`Config::send_limit`].
    pub send_limit: usize,
    /// See [`Config::on_peer_eof`].
    pub half_open: bool,
    /// The largest one-way latency turmoil draws.
    pub max_latency: Duration,
    /// One server host, or one per address family (Happy Eyeballs).
    pub network: Network,
    /// See [`Config::receive_window`].
    pub receive_window: Option<usize>,
    /// See [`Config::stall_timeout`].
    pub stall_timeout: Option<Duration>,
    /// A slow application: it waits this long after each `Data` before taking the next
    /// event (and so before the core counts more as consumed).
    pub consume_pause: Option<Duration>,
    /// Segments turmoil lets one direction of a connection hold unread (its TCP buffers):
    /// a writer blocks once the reader is this far behind.
    pub tcp_capacity: usize,
    /// With a policy, the application's client reconnects
    /// ([`Config::with_reconnect`](tcpclient_core::Config::with_reconnect)).
    pub reconnect: Option<ReconnectPolicy>,
    /// How long the simulation goes on after the client's driver ends, so that the servers
    /// see how their connections ended ([`Outcome::peer_resets`]).
    pub linger: Duration,
    /// The fault families the scenario was drawn with (for summaries: the fields above
    /// are what the run uses).
    pub swarm: Swarm,
    /// Where the driver misbehaves, within its contract (see [`Point`]).
    pub buggify: Vec<Point>,
    /// turmoil's step: every host runs, and every message and timer moves, this much at a
    /// time. A coarser step makes more things happen at the same instant, and a run cheaper.
    pub tick: Duration,
    /// See [`Config::tls_handshake_timeout`].
    pub tls_handshake_timeout: Duration,
}

impl Scenario {
    /// The scenario for `seed`.
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = SplitMix::new(seed);
        let swarm = Swarm::random(&mut rng);
        let server = ServerKind::ALL[rng.below(ServerKind::ALL.len() as u64) as usize];
        let tls = match server {
            ServerKind::StartTlsLine => TlsMode::StartTls,
            ServerKind::TlsEcho => TlsMode::FromStart,
            _ if rng.chance(1, 4) => TlsMode::FromStart,
            _ => TlsMode::Plain,
        };
        let messages = (0..rng.below(8))
            .map(|_| {
                let pause = Duration::from_millis(rng.below(300));
                let size = match rng.below(4) {
                    0 => 1 + rng.below(64),
                    1 | 2 => 1 + rng.below(4096),
                    _ => 1 + rng.below(100_000),
                } as usize;
                (pause, size)
            })
            .collect();
        let end = if rng.chance(1, 5) {
            End::Abort
        } else {
            End::Finish
        };
        let schedule = Schedule::random(&mut rng, Duration::from_secs(3), swarm);
        let mut scenario = Self {
            seed,
            server,
            tls,
            script: Script { messages, end },
            schedule,
            connect_timeout: Duration::from_millis(500 + rng.below(4500)),
            drain_timeout: Duration::from_millis(200 + rng.below(4800)),
            idle_timeout: rng
                .chance(1, 3)
                .then(|| Duration::from_millis(500 + rng.below(5000))),
            send_limit: 1 << (10 + rng.below(8)),
            half_open: rng.chance(1, 4),
            max_latency: Duration::from_millis(1 + rng.below(100)),
            network: Network::random(&mut rng, swarm),
            receive_window: match rng.below(4) {
                0 => None,
                1 => Some(1 << (10 + rng.below(7))),
                _ => Config::new().receive_window,
            },
            stall_timeout: match rng.below(3) {
                0 | 1 => Some(Duration::from_millis(500 + rng.below(4500))),
                _ => Config::new().stall_timeout,
            },
            consume_pause: swarm
                .has(FaultFamily::SlowConsumer)
                .then(|| Duration::from_millis(1 + rng.below(50))),
            tcp_capacity: if swarm.has(FaultFamily::SmallBuffers) {
                1 + rng.below(16) as usize
            } else {
                TURMOIL_TCP_CAPACITY
            },
            reconnect: swarm.has(FaultFamily::Reconnect).then(|| {
                ReconnectPolicy::default()
                    .with_seed(seed)
                    .with_initial_delay(Duration::from_millis(50 + rng.below(450)))
                    .with_max_delay(Duration::from_secs(1 + rng.below(3)))
                    .with_max_attempts(Some(1 + rng.below(5) as u32))
                    .with_stable_after(Duration::from_millis(200 + rng.below(2000)))
                    .with_replay_undelivered(rng.chance(1, 2))
            }),
            linger: Duration::ZERO,
            swarm,
            buggify: Point::random(&mut rng),
            tick: Duration::from_millis([1, 2, 5, 10][rng.below(4) as usize]),
            tls_handshake_timeout: Duration::from_millis(500 + rng.below(4500)),
        };
        scenario.reconnect = scenario
            .reconnect
            .take()
            .map(|policy| session_modes(seed, scenario.tls, scenario.server, policy));
        scenario
    }

    /// A hand-written scenario: no messages, then a graceful shutdown; no faults; timeouts of
    /// five seconds; a 64 KiB send limit. Change the fields to taste.
    pub fn simple(seed: u64, server: ServerKind, tls: TlsMode) -> Self {
        Self {
            seed,
            server,
            tls,
            script: Script {
                messages: Vec::new(),
                end: End::Finish,
            },
            schedule: Schedule::none(),
            connect_timeout: Duration::from_secs(5),
            drain_timeout: Duration::from_secs(5),
            idle_timeout: None,
            send_limit: 64 * 1024,
            half_open: false,
            max_latency: Duration::from_millis(10),
            network: Network::SingleStack,
            receive_window: Config::new().receive_window,
            stall_timeout: Config::new().stall_timeout,
            consume_pause: None,
            tcp_capacity: TURMOIL_TCP_CAPACITY,
            reconnect: None,
            linger: Duration::ZERO,
            swarm: Swarm::none(),
            buggify: Vec::new(),
            tick: Duration::from_millis(1),
            tls_handshake_timeout: Config::new().tls_handshake_timeout,
        }
    }

    /// A one-line description, for summaries.
    pub fn describe(&self) -> String {
        let window = match self.receive_window {
            Some(window) => format!("receive window {window} B"),
            None => "no receive window".into(),
        };
        let consumer = match self.consume_pause {
            Some(pause) => format!("consumes every {} ms", pause.as_millis()),
            None => "consumes at once".into(),
        };
        let session = match &self.reconnect {
            Some(policy) => format!(
                ", reconnecting ({} attempts at most{}{}{})",
                policy.max_attempts.unwrap_or(u32::MAX),
                if policy.replay_undelivered {
                    ", replaying"
                } else {
                    ""
                },
                match policy.preamble {
                    Preamble::Fixed(_) => ", a fixed preamble",
                    Preamble::Dialogue => ", a preamble dialogue",
                    _ => "",
                },
                if policy.replay_unacknowledged {
                    ", replaying what is unacknowledged"
                } else {
                    ""
                }
            ),
            None => String::new(),
        };
        let buggify: Vec<&str> = self.buggify.iter().map(|p| p.name()).collect();
        let buggify = if buggify.is_empty() {
            "off".to_string()
        } else {
            buggify.join(", ")
        };
        let buffers = match self.tcp_capacity {
            TURMOIL_TCP_CAPACITY => String::new(),
            segments => format!(", TCP buffers of {segments} segments"),
        };
        format!(
            "seed {}: {} server, {}, {}, {} messages then {}, {window}, {consumer}{buffers}{session}, families: {}, faults: {}, buggify: {}",
            self.seed,
            self.server.name(),
            self.network.label(),
            self.tls.name(),
            self.script.messages.len(),
            self.script.end.name(),
            self.swarm.label(),
            self.schedule.label(),
            buggify
        )
    }

    fn config(&self, tls: &TlsConfig) -> Config {
        let mut config = Config::new()
            .with_connect_timeout(self.connect_timeout)
            .with_drain_timeout(self.drain_timeout)
            .with_tls_handshake_timeout(self.tls_handshake_timeout)
            .with_idle_timeout(self.idle_timeout)
            .with_stall_timeout(self.stall_timeout)
            .with_receive_window(self.receive_window)
            .with_send_limit(self.send_limit)
            .with_on_peer_eof(if self.half_open {
                OnPeerEof::KeepWriting
            } else {
                OnPeerEof::Close
            });
        if self.tls != TlsMode::Plain {
            config = config.with_tls(tls.clone());
        }
        config
    }
}

/// What every connection of a session begins with, where its scenario has a preamble.
pub const PREAMBLE: &[u8] = b"HELLO sim\n";

/// Byte `i` of what the application sends: a hash of its offset, so that a run of bytes
/// says where in the stream it is from.
pub fn stream_byte(i: u64) -> u8 {
    (i.wrapping_add(1).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8
}

/// A session's preamble and acknowledgements, from a stream of the seed's own (so that the
/// rest of a seed's scenario is what it was before sessions had them), where the server
/// reads the client's plaintext: none, [`PREAMBLE`] sent by the session, or the same bytes
/// as the application's dialogue; and, half the time, at-least-once replay of what the
/// application has not acknowledged (it acknowledges each message once its echo is back).
fn session_modes(
    seed: u64,
    tls: TlsMode,
    server: ServerKind,
    policy: ReconnectPolicy,
) -> ReconnectPolicy {
    if tls != TlsMode::Plain || server.speaks_tls() {
        return policy;
    }
    let mut rng = SplitMix::new(seed ^ 0x5345_5353_494f_4e53);
    let preamble = match rng.below(3) {
        0 => Preamble::None,
        1 => Preamble::Fixed(Bytes::from_static(PREAMBLE)),
        _ => Preamble::Dialogue,
    };
    policy
        .with_preamble(preamble)
        .with_replay_unacknowledged(rng.chance(1, 2))
}

/// How a run ended, and what was checked.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The scenario's seed.
    pub seed: u64,
    /// Every input and output, with simulated times.
    pub trace: Trace,
    /// The close report, if the client got that far.
    pub report: Option<CloseReport>,
    /// Invariants found broken (none, if all is well).
    pub violations: Vec<String>,
    /// Simulated time the run took.
    pub simulated: Duration,
    /// What the run reached.
    pub coverage: Coverage,
    /// Connections the servers saw reset by the client, by the end of the simulation (see
    /// [`Scenario::linger`]).
    pub peer_resets: usize,
}

impl Outcome {
    /// A short name for how the run ended: the ending's or the error's name
    /// (`Finished`, `ConnectTimeout`, `Tls/CorruptMessage`, ...).
    pub fn kind(&self) -> String {
        let Some(report) = &self.report else {
            return "NoCloseReport".into();
        };
        match &report.result {
            Err(tcpclient_core::Error::Tls(tls)) => format!("Tls/{}", tls.name()),
            _ => report.outcome().into(),
        }
    }
}

/// What the application did and saw.
#[derive(Debug, Default)]
struct AppLog {
    sent: Vec<u8>,
    received: Vec<u8>,
    /// Where each message sent ends, in the stream.
    boundaries: Vec<u64>,
    /// The stream offset up to which the application acknowledged (whole messages).
    acknowledged: u64,
    /// Requests of the session's own that were refused, though valid.
    refused: Vec<String>,
}

/// What the application does for a session's preamble and acknowledgements.
#[derive(Debug, Clone, Copy, Default)]
struct SessionUse {
    /// It makes the preamble on every connection.
    dialogue: bool,
    /// It acknowledges each message once the server's echo of it is back.
    acknowledges: bool,
}

impl SessionUse {
    /// With an echo server, an echo is the answer; other servers' bytes answer nothing.
    fn of(policy: Option<&ReconnectPolicy>, server: ServerKind) -> Self {
        Self {
            dialogue: policy.is_some_and(|p| p.preamble == Preamble::Dialogue),
            acknowledges: policy.is_some_and(|p| p.replay_unacknowledged) && server.echoes(),
        }
    }
}

thread_local! {
    /// Certificates per thread: making keys is the slow part of a run.
    static CERTIFICATES: Result<(Arc<ServerConfig>, TlsConfig), String> = certificates::make();
}

/// Runs `scenario` in a fresh simulation and checks it.
pub fn run(scenario: &Scenario) -> Outcome {
    let (server_tls, client_tls) = match CERTIFICATES.with(Clone::clone) {
        Ok(made) => made,
        Err(why) => {
            return Outcome {
                seed: scenario.seed,
                trace: Trace::new(),
                report: None,
                violations: vec![why],
                simulated: Duration::ZERO,
                coverage: Coverage::default(),
                peer_resets: 0,
            };
        }
    };
    let mut sim = turmoil::Builder::new()
        .rng_seed(scenario.seed)
        .simulation_duration(SIMULATION_LIMIT)
        .min_message_latency(Duration::from_millis(1))
        .max_message_latency(scenario.max_latency)
        .tcp_capacity(scenario.tcp_capacity)
        .tick_duration(scenario.tick)
        .build();
    let trace = Trace::new();
    let app_log = Rc::new(RefCell::new(AppLog::default()));
    let end: Rc<RefCell<Option<DriverEnd>>> = Rc::default();
    let closed_at: Rc<Cell<Duration>> = Rc::default();
    let wire = Wire::default();

    // The server hosts, each with its own log, and the addresses faults apply to.
    let mut servers: Vec<(IpAddr, SharedLog)> = Vec::new();
    let preamble = scenario
        .reconnect
        .as_ref()
        .filter(|policy| policy.preamble != Preamble::None)
        .map(|_| PREAMBLE.to_vec());
    let kind = scenario.server;
    let fault_targets: Vec<(String, bool)> = match scenario.network {
        Network::SingleStack => {
            let log = SharedLog::default();
            let (host_log, tls) = (log.clone(), server_tls.clone());
            let (wire, preamble) = (wire.clone(), preamble.clone());
            sim.host("server", move || {
                let bind = IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
                let (log, tls, wire) = (host_log.clone(), tls.clone(), wire.clone());
                serve_after_preamble(bind, kind, log, tls, wire, preamble.clone())
            });
            servers.push((sim.lookup("server"), log));
            vec![("server".into(), false)]
        }
        Network::DualStack { v6, v4 } => {
            for (ip, path) in [(IpAddr::V6(SERVER_V6), v6), (IpAddr::V4(SERVER_V4), v4)] {
                let log = SharedLog::default();
                match path.reach {
                    Reach::Refused(_) => sim.host(ip, || async {
                        // Nothing listens: every connect is refused.
                        std::future::pending::<()>().await;
                        Ok(())
                    }),
                    _ => {
                        let (host_log, tls) = (log.clone(), server_tls.clone());
                        let (wire, preamble) = (wire.clone(), preamble.clone());
                        let bind = match ip {
                            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
                            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                        };
                        sim.host(ip, move || {
                            let (log, tls, wire) = (host_log.clone(), tls.clone(), wire.clone());
                            serve_after_preamble(bind, kind, log, tls, wire, preamble.clone())
                        });
                    }
                }
                servers.push((ip, log));
            }
            vec![
                (SERVER_V6.to_string(), v6.reach == Reach::BlackHoled),
                (SERVER_V4.to_string(), v4.reach == Reach::BlackHoled),
            ]
        }
    };
    let config = scenario.config(&client_tls);
    let network = Turmoil {
        dns: scenario.network.dns(),
        wire: wire.clone(),
        buggify: Buggify::with_points(scenario.seed, &scenario.buggify),
    };
    let linger = scenario.linger;
    let (script, tls, client_trace) = (scenario.script.clone(), scenario.tls, trace.clone());
    let (app, driver_end, pause) = (app_log.clone(), end.clone(), scenario.consume_pause);
    let client_closed_at = closed_at.clone();
    // Held to liveness, the application keeps the connection busy past the grace period.
    let probe_at = liveness::applies(scenario).map(|healed| healed + liveness::GRACE);
    let reconnect = scenario.reconnect.clone();
    let uses = SessionUse::of(reconnect.as_ref(), scenario.server);
    let coverage: Rc<RefCell<Coverage>> = Rc::default();
    let client_coverage = coverage.clone();
    sim.client("client", async move {
        let config = match reconnect {
            Some(policy) => config.with_reconnect(policy),
            None => config,
        };
        let (conn, driver) = connect_with(server(), config, client_trace, network, client_coverage);
        let app = application(conn, script, tls, pause, probe_at, uses, app);
        let driver = async {
            let end = driver.await;
            client_closed_at.set(turmoil::sim_elapsed().unwrap_or_default());
            end
        };
        let (finished, ()) = tokio::join!(driver, app);
        *driver_end.borrow_mut() = Some(finished);
        tokio::time::sleep(linger).await;
        Ok(())
    });
    // Links exist once both ends do: each family's path is set now.
    if let Network::DualStack { v6, v4 } = scenario.network {
        for (ip, path) in [(IpAddr::V6(SERVER_V6), v6), (IpAddr::V4(SERVER_V4), v4)] {
            match path.reach {
                Reach::Answers(latency) | Reach::Refused(latency) => {
                    sim.set_link_latency("client", ip, latency)
                }
                Reach::BlackHoled => sim.hold("client", ip),
                Reach::NoAddress | Reach::DnsFails => {}
            }
        }
    }

    let mut violations: Vec<String> = Vec::new();
    let mut faults = scenario.schedule.faults.iter().peekable();
    loop {
        while let Some(fault) = faults.next_if(|f| f.at <= sim.elapsed()) {
            trace.note(
                sim.elapsed(),
                "fault",
                serde_json::json!(fault.kind.to_string()),
            );
            for (target, black_holed) in &fault_targets {
                apply(&mut sim, &fault.kind, "client", target, *black_holed);
            }
        }
        match sim.step() {
            Ok(true) => break,
            Ok(false) => {}
            Err(error) => {
                violations.push(format!(
                    "the simulation failed (a hang, or a panic): {error}"
                ));
                break;
            }
        }
    }
    let simulated = sim.elapsed();
    drop(sim);
    for (_, log) in &servers {
        violations.extend(log.borrow().preamble_broken.iter().cloned());
    }
    violations.extend(app_log.borrow().refused.iter().cloned());

    let end = end.borrow_mut().take();
    let report = end.as_ref().map(|e| e.report.clone());
    if let (Some(end), Some(_)) = (&end, &scenario.reconnect) {
        violations.extend(end.violations.iter().cloned());
        let logs: Vec<SharedLog> = servers.iter().map(|(_, log)| log.clone()).collect();
        check_session_bytes(
            scenario,
            &end.report,
            &logs,
            &app_log.borrow(),
            &mut violations,
        );
    } else if let Some(end) = &end {
        violations.extend(end.violations.iter().cloned());
        // The server the application talked to: the one the winning attempt reached.
        let won = end
            .report
            .attempts
            .iter()
            .find(|a| a.outcome == AttemptOutcome::Won)
            .map(|a| a.addr.ip());
        let log = match won {
            Some(ip) => servers
                .iter()
                .find(|(at, _)| *at == ip)
                .map(|(_, log)| log.clone()),
            None => None,
        };
        match log {
            Some(log) => check_bytes(
                scenario,
                &end.report,
                &log.borrow(),
                &app_log.borrow(),
                &mut violations,
            ),
            None if !app_log.borrow().received.is_empty() => {
                violations.push("no attempt won, yet the application received data".into())
            }
            None => {}
        }
    } else if violations.is_empty() {
        violations.push("the client never produced a close report".into());
    }
    if let Some(end) = &end {
        match liveness::check(scenario, &end.report, closed_at.get(), wire.withheld_fin()) {
            Some(Ok(())) => coverage
                .borrow_mut()
                .hit("liveness finished after the heal"),
            Some(Err(violation)) => violations.push(violation),
            None => {}
        }
    }
    let coverage = coverage.borrow().clone();
    let peer_resets = servers
        .iter()
        .map(|(_, log)| log.borrow().resets_seen)
        .sum();
    Outcome {
        seed: scenario.seed,
        trace,
        report,
        violations,
        simulated,
        coverage,
        peer_resets,
    }
}

/// Applies `fault` to the link between the client and `server` (a host name or address).
/// A black-holed path is the network, not a fault: what changes a link leaves it alone.
/// Applies `fault` to the path between `client` and `server` (a crash or a bounce to the
/// server), unless `black_holed` (the path is held for good, and stays so).
pub(crate) fn apply(
    sim: &mut turmoil::Sim<'_>,
    fault: &FaultKind,
    client: &str,
    server: &str,
    black_holed: bool,
) {
    let changes_link = !matches!(
        fault,
        FaultKind::Latency(_) | FaultKind::Loss(_) | FaultKind::Crash | FaultKind::Bounce
    );
    if black_holed && changes_link {
        return;
    }
    match fault {
        FaultKind::Partition => sim.partition(client, server),
        FaultKind::Repair => sim.repair(client, server),
        FaultKind::PartitionOneWay(Direction::ToServer) => sim.partition_oneway(client, server),
        FaultKind::PartitionOneWay(Direction::ToClient) => sim.partition_oneway(server, client),
        FaultKind::RepairOneWay(Direction::ToServer) => sim.repair_oneway(client, server),
        FaultKind::RepairOneWay(Direction::ToClient) => sim.repair_oneway(server, client),
        FaultKind::Hold => sim.hold(client, server),
        FaultKind::Release => sim.release(client, server),
        FaultKind::Latency(latency) => sim.set_link_latency(client, server, *latency),
        FaultKind::Loss(rate) => sim.set_link_fail_rate(client, server, *rate),
        FaultKind::Crash => sim.crash(server),
        FaultKind::Bounce => sim.bounce(server),
        FaultKind::Heal => {
            sim.repair(client, server);
            sim.release(client, server);
            sim.set_link_fail_rate(client, server, 0.0);
            if !sim.is_host_running(server) {
                sim.bounce(server);
            }
        }
    }
}

/// A session's bytes, over every connection: each server got an in-order part of what the
/// application sent (a connection may have lost what the kernel held, and what was handed
/// back is missing), and the application got no more than the servers sent.
fn check_session_bytes(
    scenario: &Scenario,
    report: &CloseReport,
    servers: &[SharedLog],
    app: &AppLog,
    violations: &mut Vec<String>,
) {
    let sent: usize = servers.iter().map(|log| log.borrow().sent.len()).sum();
    if app.received.len() > sent {
        violations.push(format!(
            "the application received {} bytes, the servers sent {sent}",
            app.received.len()
        ));
    }
    if report.bytes_received != app.received.len() as u64 {
        violations.push(format!(
            "the application got {} bytes but the session report says {}",
            app.received.len(),
            report.bytes_received
        ));
    }
    if !server_sees_plaintext(scenario) {
        return;
    }
    match &scenario.reconnect {
        Some(policy) if policy.replay_unacknowledged => {
            return check_replayed(report, servers, app, Starts::Messages, violations);
        }
        Some(policy) if policy.replay_undelivered => {
            return check_replayed(report, servers, app, Starts::Anywhere, violations);
        }
        _ => {}
    }
    for log in servers {
        let received = &log.borrow().received;
        if !is_subsequence(received, &app.sent) {
            violations.push(format!(
                "a server received {} bytes that are not an in-order part of the {} the application sent",
                received.len(),
                app.sent.len()
            ));
        }
    }
    let at_servers: usize = servers.iter().map(|log| log.borrow().received.len()).sum();
    check_claims(scenario, report, at_servers, violations);
    // A clean end: every byte reached a server, once, and in order where one server had
    // them all; but those handed back on the way, which the application did not send again.
    let handed_back = report.bytes_handed_back as usize;
    let exactly = match servers {
        [only] if handed_back == 0 => only.borrow().received == app.sent,
        _ => at_servers + handed_back == app.sent.len(),
    };
    if report.is_clean() && !exactly {
        violations.push(format!(
            "a clean end, yet the servers got {at_servers} of the {} bytes sent ({handed_back} handed back on the way), or not once each in order",
            app.sent.len()
        ));
    }
}

/// Where a connection of a replaying session may begin in the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Starts {
    /// At the start of a message: the first one not acknowledged.
    Messages,
    /// Anywhere: the first byte lost (a byte the lost connection had on the wire may then
    /// arrive twice).
    Anywhere,
}

/// At least once, in order: every connection got a run of the stream (from where `starts`
/// allows), every message acknowledged reached a server, and at a clean end every byte did
/// (but those handed back on the way).
fn check_replayed(
    report: &CloseReport,
    servers: &[SharedLog],
    app: &AppLog,
    starts: Starts,
    violations: &mut Vec<String>,
) {
    let sent = &app.sent;
    let mut covered = vec![false; sent.len()];
    for log in servers {
        for got in log
            .borrow()
            .connections
            .iter()
            .filter(|got| !got.is_empty())
        {
            let is_run_from = |start: usize| {
                sent.get(start..start + got.len())
                    .is_some_and(|part| part == got.as_slice())
            };
            let from = match starts {
                Starts::Messages => std::iter::once(0)
                    .chain(app.boundaries.iter().map(|end| *end as usize))
                    .find(|start| is_run_from(*start)),
                Starts::Anywhere => (0..sent.len()).find(|start| is_run_from(*start)),
            };
            match from {
                Some(start) => covered[start..start + got.len()].fill(true),
                None => violations.push(format!(
                    "a connection got {} bytes that are not a run of the stream from {}",
                    got.len(),
                    match starts {
                        Starts::Messages => "the start of a message",
                        Starts::Anywhere => "anywhere",
                    }
                )),
            }
        }
    }
    let reached = covered.iter().position(|c| !c).unwrap_or(sent.len()) as u64;
    if reached < app.acknowledged {
        violations.push(format!(
            "the application acknowledged {} bytes, and the servers got only the first {reached} of them",
            app.acknowledged
        ));
    }
    let missing = covered.iter().filter(|c| !**c).count() as u64;
    if report.is_clean() && missing > report.bytes_handed_back {
        violations.push(format!(
            "a clean end, and the servers never got {missing} of the {} bytes sent ({} handed back on the way)",
            sent.len(),
            report.bytes_handed_back
        ));
    }
}

/// The report never claims more than the servers got: what it says got through (confirmed
/// or acknowledged), they read, where a server records every byte it reads.
fn check_claims(
    scenario: &Scenario,
    report: &CloseReport,
    at_servers: usize,
    violations: &mut Vec<String>,
) {
    let through = report.bytes_confirmed + report.bytes_unconfirmed;
    let logs_every_read = scenario.server != ServerKind::StartTlsLine;
    if logs_every_read && (at_servers as u64) < through {
        violations.push(format!(
            "the report says {through} bytes got through, the server read {at_servers}"
        ));
    }
}

/// `part`'s bytes appear in `whole` in the same order (not necessarily together).
fn is_subsequence(part: &[u8], whole: &[u8]) -> bool {
    let mut rest = whole.iter();
    part.iter().all(|byte| rest.any(|b| b == byte))
}

/// Whether a server's "application bytes" are the client's: not for a TLS client talking to
/// a plaintext server, whose bytes are TLS records.
fn server_sees_plaintext(scenario: &Scenario) -> bool {
    scenario.tls == TlsMode::Plain
        || matches!(
            scenario.server,
            ServerKind::TlsEcho | ServerKind::StartTlsLine
        )
}

/// The application saw exactly what the server sent, in order, up to the fault; the server
/// got exactly what the application sent, up to what the report says was written.
fn check_bytes(
    scenario: &Scenario,
    report: &CloseReport,
    server: &crate::servers::ServerLog,
    app: &AppLog,
    violations: &mut Vec<String>,
) {
    if !server.sent.starts_with(&app.received) {
        violations.push(format!(
            "the application received {} bytes that are not a prefix of the {} the server sent",
            app.received.len(),
            server.sent.len()
        ));
    }
    if report.bytes_received != app.received.len() as u64 {
        violations.push(format!(
            "the application got {} bytes but the report says {}",
            app.received.len(),
            report.bytes_received
        ));
    }
    if !server_sees_plaintext(scenario) {
        return;
    }
    if !app.sent.starts_with(&server.received) {
        violations.push(format!(
            "the server received {} bytes that are not a prefix of the {} the application sent",
            server.received.len(),
            app.sent.len()
        ));
    }
    if server.received.len() as u64 > report.bytes_written {
        violations.push(format!(
            "the server received {} bytes but the report says only {} were written",
            server.received.len(),
            report.bytes_written
        ));
    }
    check_claims(scenario, report, server.received.len(), violations);
    if report.is_clean() && server.received != app.sent {
        violations.push(format!(
            "a clean close, yet the server got {} of the {} bytes sent, or not in order",
            server.received.len(),
            app.sent.len()
        ));
    }
    // A clean, mutual close with no fault: everything arrived both ways.
    let mutual = report.result == Ok(Ending::Finished) && report.peer_closed;
    let reads_to_eof = !matches!(
        scenario.server,
        ServerKind::Silent | ServerKind::ClosesMidStream | ServerKind::Resets | ServerKind::Flood
    );
    let sends_to_eof = reads_to_eof || scenario.server == ServerKind::Flood;
    if mutual && sends_to_eof && scenario.schedule.faults.is_empty() {
        if reads_to_eof && server.received != app.sent {
            violations.push(format!(
                "a clean close, yet the server got {} of {} bytes",
                server.received.len(),
                app.sent.len()
            ));
        }
        if app.received != server.sent {
            violations.push(format!(
                "a clean close, yet the application got {} of {} bytes",
                app.received.len(),
                server.sent.len()
            ));
        }
    }
}

/// The application side of a scenario: the producer follows the script, the receiver takes
/// events; both end when the connection does.
async fn application(
    mut conn: crate::SimConnection,
    script: Script,
    tls: TlsMode,
    consume_pause: Option<Duration>,
    probe_at: Option<Duration>,
    uses: SessionUse,
    log: Rc<RefCell<AppLog>>,
) {
    let start = tokio::time::Instant::now();
    let sender = conn.sender();
    let room = Rc::new(Notify::new());
    let go_ahead = Rc::new(Notify::new());
    let closed = Rc::new(Cell::new(false));

    let receiver = {
        let (log, room, go_ahead, closed) =
            (log.clone(), room.clone(), go_ahead.clone(), closed.clone());
        async move {
            // Where the echo now coming back is in the stream.
            let mut echo = 0u64;
            while let Some(event) = conn.recv().await {
                match event {
                    Event::Connected(_) | Event::Reconnected { .. } => {
                        if let Event::Reconnected { replays_from, .. } = event {
                            echo = replays_from;
                        }
                        if uses.dialogue {
                            // Refused only by a connection already on its way out.
                            let _ = conn.send_preamble(Bytes::from_static(PREAMBLE));
                            if conn.preamble_done().is_ok() {
                                // The replay begins at what is unacknowledged now.
                                echo = log.borrow().acknowledged;
                            }
                        }
                    }
                    Event::Data(data) => {
                        if uses.acknowledges {
                            echo += data.len() as u64;
                            acknowledge_echoed(&conn, &mut log.borrow_mut(), echo);
                        }
                        {
                            let mut log = log.borrow_mut();
                            log.received.extend_from_slice(&data);
                            if tls == TlsMode::StartTls
                                && log.received.windows(8).any(|w| w == b"220 go\r\n")
                            {
                                go_ahead.notify_one();
                            }
                        }
                        if let Some(pause) = consume_pause {
                            tokio::time::sleep(pause).await;
                        }
                    }
                    Event::SendReady => room.notify_one(),
                    Event::Closed(_) => break,
                    _ => {}
                }
            }
            closed.set(true);
            room.notify_one();
            go_ahead.notify_one();
        }
    };

    let producer = async move {
        let send = |data: Bytes| -> Result<(), InvalidInput> {
            let len = data.len();
            let copy = data.clone();
            sender.send(data)?;
            let mut log = log.borrow_mut();
            log.sent.extend_from_slice(&copy[..len]);
            let end = log.sent.len() as u64;
            log.boundaries.push(end);
            Ok(())
        };
        match tls {
            TlsMode::FromStart => drop(sender.start_tls()),
            TlsMode::StartTls => {
                let _ = send(Bytes::from_static(b"STARTTLS\r\n"));
                let waited =
                    tokio::time::timeout(Duration::from_secs(5), go_ahead.notified()).await;
                if waited.is_ok() && !closed.get() {
                    let _ = sender.start_tls();
                }
            }
            TlsMode::Plain => {}
        }
        let mut offset = 0u64;
        // After the script, one more message once the network has healed (see `liveness`).
        let probe = probe_at.map(|at| (Some(start + at), 100));
        let messages = script
            .messages
            .into_iter()
            .map(|(pause, size)| (None, pause, size));
        let messages = messages.chain(probe.map(|(at, size)| (at, Duration::ZERO, size)));
        'messages: for (at, pause, size) in messages {
            match at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => tokio::time::sleep(pause).await,
            }
            let mut data = Bytes::from(
                (offset..offset + size as u64)
                    .map(stream_byte)
                    .collect::<Vec<u8>>(),
            );
            offset += size as u64;
            loop {
                match send(data) {
                    Ok(()) => break,
                    Err(InvalidInput::QueueFull { data: back, .. }) => {
                        data = back;
                        let waited =
                            tokio::time::timeout(Duration::from_secs(10), room.notified()).await;
                        if waited.is_err() || closed.get() {
                            break 'messages;
                        }
                    }
                    Err(_) => break 'messages,
                }
            }
        }
        let _ = match script.end {
            End::Finish => sender.finish(),
            End::Abort => sender.abort(),
        };
    };
    tokio::join!(receiver, producer);
}

/// Acknowledges every whole message whose echo is back (the echo has reached stream offset
/// `echo`), as a request/response client acknowledges each request once it is answered.
fn acknowledge_echoed(conn: &crate::SimConnection, log: &mut AppLog, echo: u64) {
    let answered = log
        .boundaries
        .iter()
        .rev()
        .find(|end| **end <= echo)
        .copied()
        .unwrap_or(0);
    if answered <= log.acknowledged {
        return;
    }
    match conn.acknowledged((answered - log.acknowledged) as usize) {
        Ok(()) => log.acknowledged = answered,
        Err(refusal) => log.refused.push(format!(
            "acknowledging bytes {}..{answered}, answered, was refused: {refusal}",
            log.acknowledged
        )),
    }
}

/// Wall-clock helper for sweeps: how long `f` took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let value = f();
    (value, start.elapsed())
}
