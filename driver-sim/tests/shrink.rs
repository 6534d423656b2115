//! Shrinking: a run cut down while it keeps what matters, and printed as a test.

use tcpclient_sim::{Scenario, run, shrink_while, to_rust};

#[test]
fn shrinking_keeps_the_outcome_and_cuts_faults_messages_and_settings() {
    // The first seed with faults, several messages, and an idle timeout that ends it.
    let (scenario, outcome) = (0..2000)
        .map(Scenario::from_seed)
        .filter(|s| s.schedule.faults.len() >= 2 && s.script.messages.len() >= 3)
        .map(|s| {
            let outcome = run(&s);
            (s, outcome)
        })
        .find(|(_, outcome)| outcome.kind() == "IdleTimeout")
        .expect("a seed that ends in an idle timeout");

    let shrunk = shrink_while(&scenario, outcome, |o| o.kind() == "IdleTimeout");

    let small = &shrunk.scenario;
    assert_eq!(shrunk.outcome.kind(), "IdleTimeout");
    assert_eq!(
        run(small).kind(),
        "IdleTimeout",
        "the shrunk scenario replays"
    );
    assert!(
        small.schedule.faults.len() < scenario.schedule.faults.len(),
        "{:?}",
        small.schedule
    );
    assert!(
        small.script.messages.len() < scenario.script.messages.len(),
        "{:?}",
        small.script
    );
    assert!(small.buggify.is_empty() && small.reconnect.is_none());
    assert!(small.idle_timeout.is_some(), "what it needs stays");

    let code = to_rust(small, "idle");
    assert!(
        code.contains(&format!("Scenario::simple({}, ServerKind::", small.seed)),
        "{code}"
    );
    assert!(
        code.contains("scenario.idle_timeout = Some(Duration::from_millis("),
        "{code}"
    );
}
