//! Happy Eyeballs in the simulator: a dual-stack server, one host per family, each family's
//! path set by hand; the exact simulated instants at which attempts start, win and are
//! cancelled, read from the trace.
//!
//! In turmoil a connect completes (or is refused) one one-way latency after it starts: the
//! SYN crosses the link, and the answer comes back without one.

use std::time::Duration;

use serde_json::Value;
use tcpclient_core::{AttemptOutcome, Ending, Error};
use tcpclient_sim::{Network, Outcome, Path, Reach, Scenario, ServerKind, TlsMode, run};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// An echo server on both families, one message, a graceful finish.
fn dual_stack(v6: Reach, v4: Reach) -> Scenario {
    let mut scenario = Scenario::simple(3, ServerKind::Echo, TlsMode::Plain);
    scenario.script.messages = vec![(ms(0), 100)];
    scenario.network = Network::DualStack {
        v6: Path {
            dns_delay: ms(0),
            reach: v6,
        },
        v4: Path {
            dns_delay: ms(0),
            reach: v4,
        },
    };
    scenario
}

/// What happened to the attempts, as (milliseconds since the first connect, event).
fn attempt_events(outcome: &Outcome) -> Vec<(u64, String)> {
    attempt_events_since(outcome, "Connect")
}

/// The same, in milliseconds since the client asked for the name to be resolved.
fn attempt_events_since_resolve(outcome: &Outcome) -> Vec<(u64, String)> {
    attempt_events_since(outcome, "Resolve")
}

fn attempt_events_since(outcome: &Outcome, origin: &str) -> Vec<(u64, String)> {
    let lines: Vec<Value> = outcome.trace.values();
    let mut events = Vec::new();
    let mut start = None;
    for line in &lines {
        let t_us = line["t_us"].as_u64().expect("t_us");
        if line["kind"].as_str() == Some("out") && line["output"].as_str() == Some(origin) {
            start.get_or_insert(t_us);
        }
        let details = &line["details"];
        let event = match (
            line["kind"].as_str(),
            line["output"].as_str(),
            line["input"].as_str(),
        ) {
            (Some("out"), Some("Connect"), _) => {
                format!(
                    "connect #{} {}",
                    details["attempt"],
                    details["addr"].as_str().unwrap_or("")
                )
            }
            (Some("out"), Some("Cancel"), _) => format!("cancel #{}", details["attempt"]),
            (Some("in"), _, Some("Connected")) => format!("connected #{}", details["attempt"]),
            (Some("in"), _, Some("ConnectFailed")) => format!("failed #{}", details["attempt"]),
            _ => continue,
        };
        let start = *start.get_or_insert(t_us);
        events.push(((t_us - start) / 1000, event));
    }
    events
}

fn checked(scenario: &Scenario) -> Outcome {
    let outcome = run(scenario);
    assert!(outcome.violations.is_empty(), "{:?}", outcome.violations);
    outcome
}

#[test]
fn ipv6_black_holed_ipv4_connects_at_the_attempt_delay_plus_its_latency() {
    let outcome = checked(&dual_stack(Reach::BlackHoled, Reach::Answers(ms(10))));

    assert_eq!(
        attempt_events(&outcome),
        [
            (0, "connect #0 [fd00::6]:4433".to_string()),
            (250, "connect #1 10.0.0.4:4433".to_string()),
            (260, "connected #1".to_string()),
            (260, "cancel #0".to_string()),
        ]
    );
    assert_eq!(outcome.report.unwrap().result, Ok(Ending::Finished));
}

#[test]
fn a_slow_ipv6_loses_to_ipv4_and_is_cancelled_when_ipv4_wins() {
    // IPv6 would connect at 400 ms; IPv4, started at 250 ms, connects at 300 ms.
    let outcome = checked(&dual_stack(Reach::Answers(ms(400)), Reach::Answers(ms(50))));

    assert_eq!(
        attempt_events(&outcome),
        [
            (0, "connect #0 [fd00::6]:4433".to_string()),
            (250, "connect #1 10.0.0.4:4433".to_string()),
            (300, "connected #1".to_string()),
            (300, "cancel #0".to_string()),
        ]
    );
}

#[test]
fn a_fast_ipv6_wins_before_ipv4_is_tried() {
    let outcome = checked(&dual_stack(Reach::Answers(ms(50)), Reach::Answers(ms(5))));

    assert_eq!(
        attempt_events(&outcome),
        [
            (0, "connect #0 [fd00::6]:4433".to_string()),
            (50, "connected #0".to_string()),
        ]
    );
}

#[test]
fn an_ipv6_attempt_after_ipv4_started_wins_and_cancels_ipv4() {
    // IPv6 connects at 280 ms; IPv4, started at 250 ms, would at 450 ms.
    let outcome = checked(&dual_stack(
        Reach::Answers(ms(280)),
        Reach::Answers(ms(200)),
    ));

    assert_eq!(
        attempt_events(&outcome),
        [
            (0, "connect #0 [fd00::6]:4433".to_string()),
            (250, "connect #1 10.0.0.4:4433".to_string()),
            (280, "connected #0".to_string()),
            (280, "cancel #1".to_string()),
        ]
    );
}

#[test]
fn an_ipv6_refusal_at_10_ms_starts_ipv4_at_10_ms() {
    let outcome = checked(&dual_stack(Reach::Refused(ms(10)), Reach::Answers(ms(5))));

    assert_eq!(
        attempt_events(&outcome),
        [
            (0, "connect #0 [fd00::6]:4433".to_string()),
            (10, "failed #0".to_string()),
            (10, "cancel #0".to_string()),
            (10, "connect #1 10.0.0.4:4433".to_string()),
            (15, "connected #1".to_string()),
        ]
    );
}

/// A dual-stack server whose AAAA answer comes `aaaa_delay` after the A answer.
fn late_aaaa(aaaa_delay: Duration, v6: Reach, v4: Reach) -> Scenario {
    let mut scenario = dual_stack(v6, v4);
    if let Network::DualStack { v6, .. } = &mut scenario.network {
        v6.dns_delay = aaaa_delay;
    }
    scenario
}

#[test]
fn an_a_answer_first_waits_for_an_aaaa_answer_30_ms_later_and_tries_ipv6_first() {
    let outcome = checked(&late_aaaa(
        ms(30),
        Reach::Answers(ms(5)),
        Reach::Answers(ms(5)),
    ));

    assert_eq!(
        attempt_events_since_resolve(&outcome),
        [
            (30, "connect #0 [fd00::6]:4433".to_string()),
            (35, "connected #0".to_string()),
        ]
    );
}

#[test]
fn an_aaaa_answer_80_ms_late_starts_ipv4_at_50_ms_and_ipv6_joins_when_it_arrives() {
    // IPv4 would connect at 50 + 100 ms; IPv6, joining at 80 ms, connects at 85 ms.
    let outcome = checked(&late_aaaa(
        ms(80),
        Reach::Answers(ms(5)),
        Reach::Answers(ms(100)),
    ));

    assert_eq!(
        attempt_events_since_resolve(&outcome),
        [
            (50, "connect #0 10.0.0.4:4433".to_string()),
            (80, "connect #1 [fd00::6]:4433".to_string()),
            (85, "connected #1".to_string()),
            (85, "cancel #0".to_string()),
        ]
    );
}

#[test]
fn every_address_failing_is_one_error_listing_each_attempt_within_the_connect_timeout() {
    let mut scenario = dual_stack(Reach::BlackHoled, Reach::Refused(ms(20)));
    scenario.connect_timeout = ms(1000);

    let outcome = checked(&scenario);

    assert_eq!(
        attempt_events_since_resolve(&outcome),
        [
            (0, "connect #0 [fd00::6]:4433".to_string()),
            (250, "connect #1 10.0.0.4:4433".to_string()),
            (270, "failed #1".to_string()),
            (270, "cancel #1".to_string()),
            (1000, "cancel #0".to_string()),
        ]
    );
    let report = outcome.report.expect("a close report");
    assert_eq!(report.result, Err(Error::ConnectTimeout));
    let outcomes: Vec<_> = report
        .attempts
        .iter()
        .map(|a| (a.addr.to_string(), a.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("[fd00::6]:4433".to_string(), AttemptOutcome::Cancelled),
            ("10.0.0.4:4433".to_string(), AttemptOutcome::Refused),
        ]
    );
}

#[test]
fn the_same_seed_gives_the_same_dual_stack_trace() {
    let scenario = dual_stack(Reach::BlackHoled, Reach::Answers(ms(10)));
    assert_eq!(run(&scenario).trace.hash(), run(&scenario).trace.hash());
}
