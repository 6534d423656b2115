//! Deterministic fault tests: each asserts the exact simulated instant things end.

use std::time::Duration;

use tcpclient_core::{Ending, Error};
use tcpclient_sim::{
    End, Fault, FaultFamily, FaultKind, Outcome, Point, Scenario, Schedule, ServerKind, TlsMode,
    run,
};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// The simulated time (in µs) of trace lines matching `kind` and `name`.
fn times(outcome: &Outcome, kind: &str, name: &str) -> Vec<u64> {
    outcome
        .trace
        .values()
        .into_iter()
        .filter(|v| v["kind"] == kind && (v["input"] == name || v["output"] == name))
        .map(|v| v["t_us"].as_u64().expect("t_us"))
        .collect()
}

fn closed_at(outcome: &Outcome) -> u64 {
    *times(outcome, "out", "Closed")
        .last()
        .expect("a Closed output")
}

fn checked(scenario: &Scenario) -> Outcome {
    let outcome = run(scenario);
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    outcome
}

#[test]
fn a_held_syn_ends_in_a_connect_timeout_at_the_exact_deadline() {
    let mut scenario = Scenario::simple(1, ServerKind::Echo, TlsMode::Plain);
    scenario.connect_timeout = ms(2000);
    scenario.schedule = Schedule::new(vec![Fault {
        at: Duration::ZERO,
        kind: FaultKind::Hold,
    }]);

    let outcome = checked(&scenario);

    assert_eq!(
        outcome.report.as_ref().unwrap().result,
        Err(Error::ConnectTimeout)
    );
    let connect = times(&outcome, "out", "Connect")[0];
    assert_eq!(closed_at(&outcome) - connect, 2_000_000);
}

#[test]
fn a_partition_after_the_handshake_ends_at_the_idle_deadline() {
    let mut scenario = Scenario::simple(2, ServerKind::TlsEcho, TlsMode::FromStart);
    scenario.idle_timeout = Some(ms(1500));
    scenario.script.messages = vec![(ms(100), 500), (ms(10_000), 500)];
    scenario.schedule = Schedule::new(vec![Fault {
        at: ms(400),
        kind: FaultKind::Partition,
    }]);

    let outcome = checked(&scenario);

    let report = outcome.report.as_ref().unwrap();
    assert_eq!(report.result, Err(Error::IdleTimeout));
    assert_eq!(
        report.bytes_received, 500,
        "the echo before the partition arrived"
    );
    let last_activity = [
        times(&outcome, "in", "Received"),
        times(&outcome, "in", "Written"),
    ]
    .concat()
    .into_iter()
    .max()
    .unwrap();
    assert_eq!(closed_at(&outcome) - last_activity, 1_500_000);
}

#[test]
fn a_partition_during_a_graceful_shutdown_ends_at_the_drain_deadline() {
    let mut scenario = Scenario::simple(3, ServerKind::Echo, TlsMode::Plain);
    scenario.drain_timeout = ms(3000);
    scenario.script.messages = vec![(ms(100), 1000), (ms(500), 1000)];
    scenario.schedule = Schedule::new(vec![Fault {
        at: ms(300),
        kind: FaultKind::Partition,
    }]);

    let outcome = checked(&scenario);

    let report = outcome.report.as_ref().unwrap();
    // turmoil accepts the writes and drops them: the second message counts as written, but
    // the server never acknowledged it, and its EOF never comes.
    assert_eq!(report.result, Err(Error::DrainTimeout));
    assert!(!report.peer_closed);
    assert_eq!(
        (
            report.bytes_written,
            report.bytes_unconfirmed,
            report.bytes_lost,
            report.bytes_undelivered
        ),
        (2000, 1000, 1000, 1000),
        "the first message reached the server, the second was lost"
    );
    assert_eq!(report.bytes_received, 1000);
    let finish = times(&outcome, "in", "Finish")[0];
    assert_eq!(closed_at(&outcome) - finish, 3_000_000);
}

#[test]
fn a_server_crash_under_tls_is_an_unexpected_eof() {
    let mut scenario = Scenario::simple(4, ServerKind::TlsEcho, TlsMode::FromStart);
    scenario.script.messages = vec![(ms(100), 2000), (ms(5000), 10)];
    scenario.schedule = Schedule::new(vec![Fault {
        at: ms(1000),
        kind: FaultKind::Crash,
    }]);

    let outcome = checked(&scenario);

    let report = outcome.report.as_ref().unwrap();
    assert_eq!(report.result, Err(Error::UnexpectedEof));
    assert_eq!(report.bytes_received, 2000);
}

#[test]
fn a_server_crash_in_plaintext_looks_like_the_peer_closing_and_is_never_confirmed() {
    let mut scenario = Scenario::simple(5, ServerKind::Echo, TlsMode::Plain);
    scenario.script.messages = vec![(ms(100), 2000), (ms(5000), 10)];
    scenario.schedule = Schedule::new(vec![Fault {
        at: ms(1000),
        kind: FaultKind::Crash,
    }]);

    let outcome = checked(&scenario);

    // turmoil closes the crashed host's streams with a FIN; our FIN, sent in answer, meets
    // a host that is gone and is never acknowledged.
    let report = outcome.report.as_ref().unwrap();
    assert_eq!(report.result, Err(Error::DrainTimeout));
    assert!(report.peer_closed);
    assert_eq!(
        (report.bytes_unconfirmed, report.bytes_lost),
        (2000, 0),
        "the server read every byte before it crashed; nothing says it did more"
    );
}

#[test]
fn starttls_in_the_simulator() {
    let mut scenario = Scenario::simple(6, ServerKind::StartTlsLine, TlsMode::StartTls);
    scenario.script.messages = vec![(ms(10), 5000), (ms(10), 70_000)];

    let outcome = checked(&scenario);

    let report = outcome.report.as_ref().unwrap();
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(
        report.bytes_received,
        b"220 ready\r\n220 go\r\n".len() as u64 + 75_000
    );
    assert_eq!(times(&outcome, "out", "TlsEstablished").len(), 1);
}

#[test]
fn the_same_seed_gives_the_same_trace() {
    for seed in [0, 7, 42, 1234, 99_999] {
        let first = run(&Scenario::from_seed(seed));
        let second = run(&Scenario::from_seed(seed));
        assert_eq!(
            first.trace.to_jsonl(),
            second.trace.to_jsonl(),
            "seed {seed}"
        );
        assert_eq!(first.trace.hash(), second.trace.hash());
    }
}

#[test]
fn different_seeds_give_different_runs() {
    let hashes: std::collections::BTreeSet<u64> = (0..20)
        .map(|s| run(&Scenario::from_seed(s)).trace.hash())
        .collect();
    assert!(hashes.len() > 15, "{hashes:?}");
}

#[test]
fn a_sweep_of_200_seeds_keeps_every_invariant() {
    let mut kinds = std::collections::BTreeSet::new();
    for seed in 0..200 {
        let outcome = run(&Scenario::from_seed(seed));
        assert!(
            outcome.violations.is_empty(),
            "seed {seed}: {:?}\nreplay: cargo run --release -p tcpclient-sim --features cli -- replay --seed {seed}",
            outcome.violations
        );
        kinds.insert(outcome.kind());
    }
    assert!(
        kinds.len() >= 8,
        "the sweep reaches many endings: {kinds:?}"
    );
}

#[test]
fn an_abort_reports_what_was_not_delivered() {
    let mut scenario = Scenario::simple(8, ServerKind::Silent, TlsMode::Plain);
    scenario.send_limit = 1 << 20;
    scenario.script.messages = (0..100).map(|_| (ms(1), 60_000)).collect();
    scenario.script.end = End::Abort;

    let outcome = checked(&scenario);

    let report = outcome.report.as_ref().unwrap();
    assert_eq!(report.result, Ok(Ending::Aborted));
    assert!(
        report.bytes_undelivered > 0,
        "a silent server's window fills: {report:?}"
    );
}

#[test]
fn coverage_counts_what_a_run_reached_and_names_what_it_did_not() {
    let mut scenario = Scenario::simple(3, ServerKind::Echo, TlsMode::Plain);
    scenario.script.messages = vec![(ms(10), 100)];

    let outcome = checked(&scenario);

    let coverage = &outcome.coverage;
    assert!(coverage.hits("phase Connected") > 0);
    assert_eq!(coverage.hits("ending Finished"), 1);
    assert_eq!(coverage.hits("attempt Won"), 1);
    let missing = coverage.missing();
    assert!(
        missing.contains(&"ending Stalled".to_string()),
        "{missing:?}"
    );
    assert!(missing.contains(&"session reconnected".to_string()));
    assert!(!missing.contains(&"ending Finished".to_string()));
}

/// A sink server, so that someone reads the connection's end; one message once connected;
/// 50 ms of simulation after the client is done, for its end to arrive.
fn watched_by_a_sink(seed: u64, end: End) -> Scenario {
    let mut scenario = Scenario::simple(seed, ServerKind::Sink, TlsMode::Plain);
    scenario.script.messages = vec![(ms(100), 1000)];
    scenario.script.end = end;
    scenario.linger = ms(50);
    scenario
}

#[test]
fn an_abort_is_a_reset_the_server_sees() {
    let outcome = checked(&watched_by_a_sink(9, End::Abort));

    let report = outcome.report.as_ref().unwrap();
    assert_eq!(report.result, Ok(Ending::Aborted));
    assert_eq!(outcome.peer_resets, 1, "the server read ECONNRESET");
}

#[test]
fn a_graceful_finish_is_an_end_the_server_sees_not_a_reset() {
    let outcome = checked(&watched_by_a_sink(9, End::Finish));

    let report = outcome.report.as_ref().unwrap();
    assert_eq!(report.result, Ok(Ending::Finished));
    assert_eq!(outcome.peer_resets, 0);
}

#[test]
fn a_seed_draws_its_faults_only_from_the_families_it_enabled() {
    let family_of = |kind: &FaultKind| match kind {
        FaultKind::Partition | FaultKind::Repair => Some(FaultFamily::Partition),
        FaultKind::PartitionOneWay(_) | FaultKind::RepairOneWay(_) => {
            Some(FaultFamily::OneWayPartition)
        }
        // Flapping is holds and releases too.
        FaultKind::Hold | FaultKind::Release => None,
        FaultKind::Latency(_) => Some(FaultFamily::Latency),
        FaultKind::Loss(_) => Some(FaultFamily::Loss),
        FaultKind::Crash | FaultKind::Bounce => Some(FaultFamily::Crash),
        FaultKind::Heal => None,
    };
    let mut without_faults = 0;
    for seed in 0..500 {
        let scenario = Scenario::from_seed(seed);
        let swarm = scenario.swarm;
        for fault in &scenario.schedule.faults {
            if let Some(family) = family_of(&fault.kind) {
                assert!(
                    swarm.has(family),
                    "seed {seed}: {} without {family:?}",
                    fault.kind
                );
            } else if matches!(fault.kind, FaultKind::Hold | FaultKind::Release) {
                assert!(swarm.has(FaultFamily::Hold) || swarm.has(FaultFamily::Flapping));
            }
        }
        assert_eq!(
            scenario.reconnect.is_some(),
            swarm.has(FaultFamily::Reconnect)
        );
        assert_eq!(
            scenario.consume_pause.is_some(),
            swarm.has(FaultFamily::SlowConsumer)
        );
        without_faults += usize::from(scenario.schedule.faults.is_empty());
    }
    assert!(
        (100..160).contains(&without_faults),
        "about one seed in four is calm: {without_faults} of 500"
    );
}

#[test]
fn a_client_still_open_after_a_healed_hold_must_finish_cleanly_and_does() {
    let mut scenario = Scenario::simple(4, ServerKind::Echo, TlsMode::Plain);
    scenario.script.messages = vec![(ms(10), 5000), (ms(100), 5000)];
    scenario.schedule = Schedule::new(vec![
        Fault::new(ms(50), FaultKind::Hold),
        Fault::new(ms(900), FaultKind::Heal),
    ]);

    let outcome = checked(&scenario);

    assert_eq!(outcome.coverage.hits("liveness finished after the heal"), 1);
    assert!(
        closed_at(&outcome) > 3_900_000,
        "the application waited for the heal and the grace period, then sent once more"
    );
    assert_eq!(outcome.report.unwrap().result, Ok(Ending::Finished));
}

#[test]
fn with_every_buggify_point_on_the_driver_misbehaves_everywhere_and_the_invariants_hold() {
    let mut coverage = tcpclient_sim::Coverage::default();
    for seed in 0..150 {
        let mut scenario = Scenario::from_seed(seed);
        scenario.buggify = Point::ALL.to_vec();
        let outcome = run(&scenario);
        assert!(
            outcome.violations.is_empty(),
            "seed {seed}: {:?}",
            outcome.violations
        );
        coverage.merge(&outcome.coverage);
    }
    for point in Point::ALL {
        let cell = format!("buggify {}", point.name());
        assert!(coverage.hits(&cell) > 0, "{cell} never fired");
    }
}
