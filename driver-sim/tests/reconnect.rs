//! Reconnecting sessions in the simulator: a server that crashes and comes back, the exact
//! instant of the reconnect, the same trace for the same seed, and the byte ledger across
//! generations.

use std::time::Duration;

use serde_json::Value;
use tcpclient_core::{Jitter, ReconnectPolicy};
use tcpclient_sim::{Fault, FaultKind, Outcome, Scenario, Schedule, ServerKind, TlsMode, run};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn lines(outcome: &Outcome) -> Vec<Value> {
    outcome.trace.values()
}

/// (time in ms, output name, details) of the session's events.
fn events(outcome: &Outcome, name: &str) -> Vec<(u64, Value)> {
    lines(outcome)
        .into_iter()
        .filter(|l| l["kind"] == "out" && l["output"] == name)
        .map(|l| {
            (
                l["t_us"].as_u64().expect("t_us") / 1000,
                l["details"].clone(),
            )
        })
        .collect()
}

/// An echo server, a message every 200 ms for 10 s, a session with a fixed 1 s backoff
/// (×1.6), stall and idle timeouts short enough to notice a dead server.
fn session(seed: u64, faults: Vec<Fault>) -> Scenario {
    let mut scenario = Scenario::simple(seed, ServerKind::Echo, TlsMode::Plain);
    scenario.script.messages = (0..50).map(|_| (ms(200), 1000)).collect();
    scenario.idle_timeout = Some(ms(1000));
    scenario.stall_timeout = Some(ms(1000));
    scenario.connect_timeout = ms(500);
    scenario.reconnect = Some(
        ReconnectPolicy::default()
            .with_jitter(Jitter::None)
            .with_seed(seed)
            .with_stable_after(ms(3000)),
    );
    scenario.schedule = Schedule::new(faults);
    scenario
}

fn checked(scenario: &Scenario) -> Outcome {
    let outcome = run(scenario);
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    outcome
}

#[test]
fn a_server_that_crashes_and_comes_back_at_5_s_is_reconnected_at_the_first_attempt_after() {
    let scenario = session(
        21,
        vec![
            Fault::new(ms(2000), FaultKind::Crash),
            Fault::new(ms(5000), FaultKind::Bounce),
        ],
    );

    let outcome = checked(&scenario);

    let reconnecting = events(&outcome, "Reconnecting");
    let reconnected = events(&outcome, "Reconnected");
    eprintln!("reconnecting: {reconnecting:?}");
    eprintln!("reconnected: {reconnected:?}");
    let (at, details) = reconnected.first().expect("reconnected after the bounce");
    // The attempt due after the bounce: the first Connect at or after 5 s.
    let connects: Vec<u64> = events(&outcome, "Connect")
        .iter()
        .map(|(t, _)| *t)
        .collect();
    let first_after = *connects
        .iter()
        .find(|t| **t >= 5000)
        .expect("an attempt after 5 s");
    assert!(
        *at >= first_after && *at < first_after + 100,
        "reconnected at {at} ms, the attempt after the bounce started at {first_after} ms"
    );
    assert!(
        connects.iter().filter(|t| **t < 5000 && **t > 2000).count() >= 1,
        "attempts while the server was down"
    );
    assert_eq!(details["generation"], reconnecting.len() as u64);
    let report = outcome.report.as_ref().expect("the session's report");
    assert_eq!(
        report.bytes_accepted,
        report.bytes_confirmed
            + report.bytes_unconfirmed
            + report.bytes_undelivered
            + report.bytes_handed_back
    );
    assert!(
        report.bytes_unconfirmed > 0 && !report.is_clean(),
        "what the crashed server took is not confirmed: {report}"
    );
}

#[test]
fn the_same_seed_gives_the_same_session_trace() {
    let faults = || {
        vec![
            Fault::new(ms(2000), FaultKind::Crash),
            Fault::new(ms(5000), FaultKind::Bounce),
        ]
    };
    let first = run(&session(22, faults()));
    let second = run(&session(22, faults()));

    assert_eq!(first.trace.hash(), second.trace.hash());
    assert_eq!(first.trace.lines(), second.trace.lines());
}

#[test]
fn three_crashes_keep_the_ledger_across_every_generation() {
    let crashes = [1000, 4000, 7000];
    let mut faults = Vec::new();
    for at in crashes {
        faults.push(Fault::new(ms(at), FaultKind::Crash));
        faults.push(Fault::new(ms(at + 1000), FaultKind::Bounce));
    }
    let mut scenario = session(23, faults);
    scenario.reconnect = scenario
        .reconnect
        .map(|policy| policy.with_replay_undelivered(true));

    let outcome = checked(&scenario);

    let disconnected = events(&outcome, "Disconnected");
    assert!(
        disconnected.len() >= 3,
        "one disconnect per crash at least: {disconnected:?}"
    );
    let report = outcome.report.as_ref().expect("the session's report");
    let written: u64 = disconnected
        .iter()
        .map(|(_, d)| d["bytes_written"].as_u64().unwrap_or(0))
        .sum();
    eprintln!(
        "generations: {:?}",
        disconnected
            .iter()
            .map(|(t, d)| (
                *t,
                d["generation"].clone(),
                d["outcome"].clone(),
                d["bytes_written"].clone(),
                d["bytes_undelivered"].clone()
            ))
            .collect::<Vec<_>>()
    );
    eprintln!(
        "session: accepted {}, written {} ({} by the lost connections), undelivered {}, received {}, result {:?}",
        report.bytes_accepted,
        report.bytes_written,
        written,
        report.bytes_undelivered,
        report.bytes_received,
        report.result
    );
    assert_eq!(
        report.bytes_accepted,
        report.bytes_confirmed + report.bytes_unconfirmed + report.bytes_undelivered
    );
    assert!(written <= report.bytes_written);
    assert_eq!(report.bytes_accepted, 50_000, "every message was accepted");
}

/// Found by the sweep with a planted bug (replayed chunks popped off the end) and shrunk by
/// `tcpclient-sim shrink --seed 2943` from four messages, a crash and a late-connect buggify
/// point to this.
#[test]
fn a_session_replays_what_a_crash_left_undelivered_in_order() {
    let mut scenario = Scenario::simple(2943, ServerKind::Echo, TlsMode::Plain);
    scenario.script.messages = vec![(ms(160), 1), (ms(63), 2045), (ms(0), 1)];
    scenario.schedule = Schedule::new(vec![
        Fault::new(ms(186), FaultKind::Crash),
        Fault::new(Duration::from_micros(3316500), FaultKind::Heal),
    ]);
    scenario.reconnect = Some(
        ReconnectPolicy::default()
            .with_seed(2943)
            .with_initial_delay(ms(397))
            .with_multiplier(1.6)
            .with_max_delay(ms(2000))
            .with_jitter(Jitter::Full)
            .with_max_attempts(Some(3))
            .with_max_elapsed(None)
            .with_stable_after(ms(1911))
            .with_replay_undelivered(true),
    );
    let outcome = run(&scenario);
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    assert_eq!(
        outcome.coverage.hits("liveness finished after the heal"),
        1,
        "the session came back and finished"
    );
}
