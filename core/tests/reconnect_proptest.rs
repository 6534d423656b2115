//! Arbitrary policies, close reports and time jumps against the reconnecting session: never
//! a panic, never a wait past the cap or in the past, never two connections at once, and
//! every byte accounted for across every generation (see `tcpclient_testkit::SessionMonitor`).

use proptest::prelude::*;
use tcpclient_testkit::{PolicyKnobs, SessionOp, SessionScenario, run_session};

fn cases() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

fn op() -> impl Strategy<Value = SessionOp> {
    prop_oneof![
        4 => (0u16..3000).prop_map(SessionOp::Send),
        1 => Just(SessionOp::Finish),
        1 => Just(SessionOp::Abort),
        2 => any::<u16>().prop_map(SessionOp::Consume),
        4 => Just(SessionOp::ConnectOk),
        2 => Just(SessionOp::ConnectRefused),
        3 => (0u16..4000).prop_map(SessionOp::Write),
        2 => (0u16..3000).prop_map(SessionOp::Receive),
        2 => Just(SessionOp::PeerEof),
        2 => Just(SessionOp::Reset),
        2 => any::<u8>().prop_map(SessionOp::Advance),
        3 => Just(SessionOp::Timeout),
        1 => Just(SessionOp::LateConnected),
    ]
}

fn knobs() -> impl Strategy<Value = PolicyKnobs> {
    (
        any::<u64>(),
        any::<bool>(),
        any::<u8>(),
        any::<u8>(),
        any::<u8>(),
        0u8..6,
        0u8..20,
        any::<u8>(),
        any::<bool>(),
    )
        .prop_map(
            |(seed, full_jitter, multiplier, initial, max, attempts, elapsed, stable, replay)| {
                PolicyKnobs {
                    seed,
                    full_jitter,
                    multiplier,
                    initial_10ms: initial,
                    max_100ms: max,
                    max_attempts: attempts,
                    max_elapsed_s: elapsed,
                    stable_100ms: stable,
                    replay,
                }
            },
        )
}

proptest! {
    #![proptest_config(cases())]

    #[test]
    fn the_session_keeps_every_invariant(knobs in knobs(), ops in prop::collection::vec(op(), 0..120)) {
        let scenario = SessionScenario { knobs, ops };
        if let Err(violation) = run_session(&scenario) {
            panic!("{violation}");
        }
    }
}
