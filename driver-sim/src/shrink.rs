//! Shrinking: a failing seed's scenario, cut down while it still fails the same way (fewer
//! faults, fewer buggify points, fewer and smaller messages, plainer settings), then printed
//! as a Rust test to paste next to the others.

use std::fmt::Write as _;
use std::time::Duration;

use tcpclient_core::ReconnectPolicy;

use crate::faults::{Direction, FaultKind, Schedule};
use crate::network::{Network, Path, Reach};
use crate::scenario::{End, Outcome, Scenario, TURMOIL_TCP_CAPACITY, TlsMode, run};
use crate::swarm::Swarm;

/// What shrinking found.
#[derive(Debug, Clone)]
pub struct Shrunk {
    /// The smallest scenario that still fails the same way.
    pub scenario: Scenario,
    /// Its outcome.
    pub outcome: Outcome,
    /// How many candidates were run.
    pub runs: usize,
}

/// Shrinks `scenario` while a violation of the shape of its first one (the same words,
/// whatever the numbers) remains; `None` if it does not fail.
pub fn shrink(scenario: &Scenario) -> Option<Shrunk> {
    let first = run(scenario);
    let shape = first.violations.first().map(|v| shape(v))?;
    Some(shrink_while(scenario, first, |outcome| {
        outcome.violations.iter().any(|v| shape == self::shape(v))
    }))
}

/// Shrinks `scenario`, whose run gave `outcome`, while `keeps` holds of the candidate's
/// outcome; each pass tries the candidates from the biggest cut to the smallest and starts
/// again from the first that keeps.
pub fn shrink_while(
    scenario: &Scenario,
    outcome: Outcome,
    keeps: impl Fn(&Outcome) -> bool,
) -> Shrunk {
    let mut best = Shrunk {
        scenario: scenario.clone(),
        outcome,
        runs: 0,
    };
    // Bounded: every accepted candidate is strictly simpler, and a pass is finite.
    'passes: for _ in 0..1000 {
        for candidate in candidates(&best.scenario) {
            let outcome = run(&candidate);
            best.runs += 1;
            if keeps(&outcome) {
                best.scenario = candidate;
                best.outcome = outcome;
                continue 'passes;
            }
        }
        break;
    }
    // The families described how the seed was drawn; the shrunk scenario was not drawn.
    best.scenario.swarm = Swarm::none();
    best
}

/// A violation with its numbers taken out.
pub(crate) fn shape(violation: &str) -> String {
    violation
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect::<String>()
        .split('#')
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join("#")
}

/// Simpler versions of `s`, biggest cuts first. Each differs from `s` in one respect and
/// is simpler in it, so shrinking ends.
fn candidates(s: &Scenario) -> Vec<Scenario> {
    let plain = Scenario::simple(s.seed, s.server, s.tls);
    let mut out = Vec::new();
    let mut with = |change: &dyn Fn(&mut Scenario)| {
        let mut candidate = s.clone();
        change(&mut candidate);
        out.push(candidate);
    };
    let faults = s.schedule.faults.len();
    if faults > 0 {
        with(&|c| c.schedule = Schedule::none());
    }
    for at in 0..faults {
        with(&|c| {
            c.schedule.faults.remove(at);
        });
    }
    if !s.buggify.is_empty() {
        with(&|c| c.buggify.clear());
    }
    for at in 0..s.buggify.len() {
        with(&|c| {
            c.buggify.remove(at);
        });
    }
    if s.reconnect.is_some() {
        with(&|c| c.reconnect = None);
    }
    if s.network != Network::SingleStack {
        with(&|c| c.network = Network::SingleStack);
    }
    let messages = s.script.messages.len();
    if messages > 1 {
        with(&|c| c.script.messages.truncate(messages / 2));
        with(&|c| c.script.messages.drain(..messages / 2).for_each(drop));
    }
    for at in 0..messages {
        with(&|c| {
            c.script.messages.remove(at);
        });
    }
    for (at, (pause, size)) in s.script.messages.iter().enumerate() {
        if *size > 1 {
            with(&|c| c.script.messages[at].1 = size / 2);
        }
        if !pause.is_zero() {
            with(&|c| c.script.messages[at].0 = Duration::ZERO);
        }
    }
    if s.script.end != End::Finish {
        with(&|c| c.script.end = End::Finish);
    }
    if s.tls != TlsMode::Plain && !s.server.speaks_tls() {
        with(&|c| c.tls = TlsMode::Plain);
    }
    // Every other setting back to `Scenario::simple`'s.
    if s.consume_pause != plain.consume_pause {
        with(&|c| c.consume_pause = plain.consume_pause);
    }
    if s.tcp_capacity != plain.tcp_capacity {
        with(&|c| c.tcp_capacity = plain.tcp_capacity);
    }
    if s.receive_window != plain.receive_window {
        with(&|c| c.receive_window = plain.receive_window);
    }
    if s.stall_timeout != plain.stall_timeout {
        with(&|c| c.stall_timeout = plain.stall_timeout);
    }
    if s.idle_timeout.is_some() {
        with(&|c| c.idle_timeout = None);
    }
    if s.half_open {
        with(&|c| c.half_open = false);
    }
    if s.max_latency != plain.max_latency {
        with(&|c| c.max_latency = plain.max_latency);
    }
    if s.connect_timeout != plain.connect_timeout {
        with(&|c| c.connect_timeout = plain.connect_timeout);
    }
    if s.drain_timeout != plain.drain_timeout {
        with(&|c| c.drain_timeout = plain.drain_timeout);
    }
    if s.send_limit != plain.send_limit {
        with(&|c| c.send_limit = plain.send_limit);
    }
    if s.tls_handshake_timeout != plain.tls_handshake_timeout {
        with(&|c| c.tls_handshake_timeout = plain.tls_handshake_timeout);
    }
    if s.tick != plain.tick {
        with(&|c| c.tick = plain.tick);
    }
    out
}

/// `scenario` as a Rust test: `Scenario::simple` and the fields that differ from it.
pub fn to_rust(scenario: &Scenario, name: &str) -> String {
    let s = scenario;
    let plain = Scenario::simple(s.seed, s.server, s.tls);
    let mut code = String::new();
    let mut line = |text: String| {
        let _ = writeln!(code, "    {text}");
    };
    if s.script.messages != plain.script.messages {
        let messages: Vec<String> = s
            .script
            .messages
            .iter()
            .map(|(pause, size)| format!("({}, {size})", duration(*pause)))
            .collect();
        line(format!(
            "scenario.script.messages = vec![{}];",
            messages.join(", ")
        ));
    }
    if s.script.end != plain.script.end {
        line(format!("scenario.script.end = End::{:?};", s.script.end));
    }
    if s.schedule != plain.schedule {
        let faults: Vec<String> = s
            .schedule
            .faults
            .iter()
            .map(|f| format!("Fault::new({}, {})", duration(f.at), fault(&f.kind)))
            .collect();
        line(format!(
            "scenario.schedule = Schedule::new(vec![{}]);",
            faults.join(", ")
        ));
    }
    let mut field = |name: &str, differs: bool, value: String| {
        if differs {
            line(format!("scenario.{name} = {value};"));
        }
    };
    field(
        "connect_timeout",
        s.connect_timeout != plain.connect_timeout,
        duration(s.connect_timeout),
    );
    field(
        "drain_timeout",
        s.drain_timeout != plain.drain_timeout,
        duration(s.drain_timeout),
    );
    field(
        "idle_timeout",
        s.idle_timeout != plain.idle_timeout,
        option(s.idle_timeout.map(duration)),
    );
    field(
        "tls_handshake_timeout",
        s.tls_handshake_timeout != plain.tls_handshake_timeout,
        duration(s.tls_handshake_timeout),
    );
    field("tick", s.tick != plain.tick, duration(s.tick));
    field("linger", s.linger != plain.linger, duration(s.linger));
    field(
        "send_limit",
        s.send_limit != plain.send_limit,
        s.send_limit.to_string(),
    );
    field(
        "half_open",
        s.half_open != plain.half_open,
        s.half_open.to_string(),
    );
    field(
        "max_latency",
        s.max_latency != plain.max_latency,
        duration(s.max_latency),
    );
    field("network", s.network != plain.network, network(&s.network));
    field(
        "receive_window",
        s.receive_window != plain.receive_window,
        option(s.receive_window.map(|w| w.to_string())),
    );
    field(
        "stall_timeout",
        s.stall_timeout != plain.stall_timeout,
        option(s.stall_timeout.map(duration)),
    );
    field(
        "consume_pause",
        s.consume_pause != plain.consume_pause,
        option(s.consume_pause.map(duration)),
    );
    field(
        "tcp_capacity",
        s.tcp_capacity != TURMOIL_TCP_CAPACITY,
        s.tcp_capacity.to_string(),
    );
    field(
        "reconnect",
        s.reconnect.is_some(),
        option(s.reconnect.as_ref().map(policy)),
    );
    field(
        "buggify",
        s.buggify != plain.buggify,
        format!(
            "vec![{}]",
            s.buggify
                .iter()
                .map(|p| format!("Point::{p:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    );
    // `mut` only if a field is set (an unused `mut` would fail the lints).
    let binding = if code.is_empty() { "let" } else { "let mut" };
    format!(
        "#[test]\nfn {name}() {{\n    {binding} scenario = Scenario::simple({}, ServerKind::{}, TlsMode::{:?});\n{code}    let outcome = run(&scenario);\n    assert!(outcome.violations.is_empty(), \"{{:?}}\", outcome.violations);\n}}\n",
        s.seed,
        s.server.name(),
        s.tls
    )
}

fn duration(d: Duration) -> String {
    if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("Duration::from_millis({})", d.as_millis())
    } else {
        format!("Duration::from_micros({})", d.as_micros())
    }
}

fn option(value: Option<String>) -> String {
    match value {
        Some(value) => format!("Some({value})"),
        None => "None".into(),
    }
}

fn fault(kind: &FaultKind) -> String {
    let way = |way: &Direction| format!("Direction::{way:?}");
    match kind {
        FaultKind::Latency(latency) => format!("FaultKind::Latency({})", duration(*latency)),
        FaultKind::Loss(rate) => format!("FaultKind::Loss({rate:?})"),
        FaultKind::PartitionOneWay(w) => format!("FaultKind::PartitionOneWay({})", way(w)),
        FaultKind::RepairOneWay(w) => format!("FaultKind::RepairOneWay({})", way(w)),
        other => format!("FaultKind::{other}"),
    }
}

fn network(network: &Network) -> String {
    let path = |p: &Path| {
        let reach = match p.reach {
            Reach::Answers(latency) => format!("Reach::Answers({})", duration(latency)),
            Reach::Refused(latency) => format!("Reach::Refused({})", duration(latency)),
            other => format!("Reach::{other:?}"),
        };
        format!(
            "Path {{ dns_delay: {}, reach: {reach} }}",
            duration(p.dns_delay)
        )
    };
    match network {
        Network::SingleStack => "Network::SingleStack".into(),
        Network::DualStack { v6, v4 } => format!(
            "Network::DualStack {{ v6: {}, v4: {} }}",
            path(v6),
            path(v4)
        ),
    }
}

fn policy(p: &ReconnectPolicy) -> String {
    let jitter = format!("Jitter::{:?}", p.jitter);
    format!(
        "ReconnectPolicy::default().with_seed({}).with_initial_delay({}).with_multiplier({:?}).with_max_delay({}).with_jitter({jitter}).with_max_attempts({}).with_max_elapsed({}).with_stable_after({}).with_replay_undelivered({})",
        p.seed,
        duration(p.initial_delay),
        p.multiplier,
        duration(p.max_delay),
        option(p.max_attempts.map(|n| n.to_string())),
        option(p.max_elapsed.map(duration)),
        duration(p.stable_after),
        p.replay_undelivered
    )
}
