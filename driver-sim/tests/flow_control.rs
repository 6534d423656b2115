//! Receive-side flow control and dead-peer detection in the simulator: a slow application
//! against every server holds each within its receive window, and a partition with data
//! queued ends in `Stalled` at the exact simulated instant.

use std::time::Duration;

use serde_json::Value;
use tcpclient_core::{Ending, Error};
use tcpclient_sim::{
    FLOOD_BYTES, Fault, FaultKind, Outcome, Scenario, Schedule, ServerKind, TlsMode, run,
};

/// The size of one simulated read: the most a read that crosses the window adds to it.
const READ: u64 = 64 * 1024;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn lines(outcome: &Outcome) -> Vec<Value> {
    outcome.trace.values()
}

/// The most `Data` bytes ever delivered and not yet consumed, from the trace.
fn peak_unconsumed(outcome: &Outcome) -> u64 {
    let (mut unconsumed, mut peak) = (0u64, 0u64);
    for line in lines(outcome) {
        let bytes = line["details"]["bytes"].as_u64().unwrap_or(0);
        match (line["output"].as_str(), line["input"].as_str()) {
            (Some("Data"), _) => unconsumed += bytes,
            (_, Some("Consumed")) => unconsumed -= bytes,
            _ => continue,
        }
        peak = peak.max(unconsumed);
    }
    peak
}

/// When bytes waiting to be written last moved (µs): the last `Written`, or a `Transmit`
/// handed out while nothing was waiting.
fn last_write_progress(outcome: &Outcome) -> u64 {
    let (mut in_flight, mut progress) = (0u64, 0u64);
    for line in lines(outcome) {
        let bytes = line["details"]["bytes"].as_u64().unwrap_or(0);
        let at = line["t_us"].as_u64().expect("t_us");
        match (line["output"].as_str(), line["input"].as_str()) {
            (Some("Transmit"), _) => {
                if in_flight == 0 {
                    progress = at;
                }
                in_flight += bytes;
            }
            (_, Some("Written")) => {
                in_flight -= bytes;
                progress = at;
            }
            _ => {}
        }
    }
    progress
}

/// The simulated times (µs) of the trace lines for input or output `name`.
fn times(outcome: &Outcome, name: &str) -> Vec<u64> {
    lines(outcome)
        .iter()
        .filter(|l| l["input"] == name || l["output"] == name)
        .map(|l| l["t_us"].as_u64().expect("t_us"))
        .collect()
}

fn tls_for(kind: ServerKind) -> TlsMode {
    match kind {
        ServerKind::TlsEcho => TlsMode::FromStart,
        ServerKind::StartTlsLine => TlsMode::StartTls,
        _ => TlsMode::Plain,
    }
}

#[test]
fn a_slow_consumer_holds_every_server_within_its_receive_window() {
    const WINDOW: usize = 4096;
    for (seed, kind) in ServerKind::ALL.into_iter().enumerate() {
        let mut scenario = Scenario::simple(seed as u64, kind, tls_for(kind));
        scenario.receive_window = Some(WINDOW);
        scenario.consume_pause = Some(ms(5));
        scenario.script.messages = vec![(ms(10), 20_000), (ms(10), 20_000), (ms(10), 20_000)];
        scenario.drain_timeout = Duration::from_secs(60);

        let outcome = run(&scenario);

        assert!(
            outcome.violations.is_empty(),
            "{}: {:?}",
            kind.name(),
            outcome.violations
        );
        let peak = peak_unconsumed(&outcome);
        assert!(
            peak <= WINDOW as u64 + READ,
            "{}: {peak} bytes waited for the application",
            kind.name()
        );
        let report = outcome.report.expect("a close report");
        if kind.echoes() && kind != ServerKind::ClosesMidStream {
            // (StartTlsLine's dialogue comes on top of the echo.)
            assert!(
                report.bytes_received >= 60_000,
                "{}: the whole echo arrived",
                kind.name()
            );
        }
    }
}

#[test]
fn a_flood_to_a_slow_consumer_arrives_whole_a_window_at_a_time() {
    let mut scenario = Scenario::simple(11, ServerKind::Flood, TlsMode::Plain);
    scenario.receive_window = Some(16 * 1024);
    scenario.consume_pause = Some(ms(2));
    scenario.drain_timeout = Duration::from_secs(60);

    let outcome = run(&scenario);

    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    let report = outcome.report.as_ref().expect("a close report");
    assert_eq!(report.result, Ok(Ending::Finished));
    assert_eq!(report.bytes_received, FLOOD_BYTES as u64);
    assert!(peak_unconsumed(&outcome) <= 16 * 1024 + READ);
}

#[test]
fn without_a_window_a_slow_consumer_holds_what_the_server_sent() {
    let mut scenario = Scenario::simple(12, ServerKind::Flood, TlsMode::Plain);
    scenario.receive_window = None;
    scenario.consume_pause = Some(ms(2));
    scenario.drain_timeout = Duration::from_secs(60);

    let outcome = run(&scenario);

    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    assert_eq!(
        outcome
            .report
            .as_ref()
            .expect("a close report")
            .bytes_received,
        FLOOD_BYTES as u64
    );
    assert_eq!(
        times(&outcome, "Consumed"),
        Vec::<u64>::new(),
        "nothing is reported consumed without a window"
    );
}

#[test]
fn a_partition_with_data_queued_ends_in_stalled_at_the_last_progress_plus_the_stall_timeout() {
    let mut scenario = Scenario::simple(13, ServerKind::Sink, TlsMode::Plain);
    scenario.stall_timeout = Some(ms(2000));
    scenario.tcp_capacity = 4;
    scenario.send_limit = 64 * 1024;
    scenario.script.messages = (0..40).map(|_| (ms(10), 16 * 1024)).collect();
    scenario.drain_timeout = Duration::from_secs(60);
    scenario.schedule = Schedule::new(vec![Fault {
        at: ms(100),
        kind: FaultKind::Partition,
    }]);

    let outcome = run(&scenario);

    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    let report = outcome.report.as_ref().expect("a close report");
    assert_eq!(report.result, Err(Error::Stalled));
    assert!(report.bytes_undelivered > 0);
    let last_progress = last_write_progress(&outcome);
    let closed = *times(&outcome, "Closed").last().expect("a Closed output");
    assert_eq!(
        closed - last_progress,
        2_000_000,
        "exactly the stall timeout"
    );
}

#[test]
fn a_partition_of_a_connection_that_only_reads_is_not_a_stall() {
    let mut scenario = Scenario::simple(14, ServerKind::Silent, TlsMode::Plain);
    scenario.stall_timeout = Some(ms(500));
    scenario.idle_timeout = Some(ms(3000));
    scenario.schedule = Schedule::new(vec![Fault {
        at: ms(100),
        kind: FaultKind::Partition,
    }]);
    scenario.script.messages = vec![(ms(10_000), 1)];

    let outcome = run(&scenario);

    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    assert_eq!(
        outcome.report.expect("a close report").result,
        Err(Error::IdleTimeout),
        "nothing waited to be written: only the idle timeout applies"
    );
}
