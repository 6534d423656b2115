//! `Client`, one machine with or without a reconnect policy: every method answers for
//! what is inside, whichever it is.

use std::time::Duration;

use bytes::Bytes;
use tcpclient_core::{
    AttemptId, Client, Config, Input, InvalidInput, Output, Phase, Preamble, ReconnectPolicy,
    Unacknowledged,
};

/// Where the clients here connect.
const LOCAL: (&str, u16) = ("127.0.0.1", 7);

/// A client for `config` to 127.0.0.1:7, reconnecting by `reconnect` if given.
fn client_of(
    config: Config,
    reconnect: Option<ReconnectPolicy>,
    now: std::time::Instant,
) -> Client {
    match reconnect {
        Some(policy) => Client::new(LOCAL, config.with_reconnect(policy), now),
        None => Client::new(LOCAL, config, now),
    }
}

/// One connection's worth of traffic: connected, five bytes sent and two written, three
/// received and one consumed, against a receive window of two bytes.
fn exercised(reconnect: Option<ReconnectPolicy>) -> Client {
    let now = tcpclient_testkit::epoch();
    let config = Config::new()
        .with_receive_window(Some(2))
        .with_send_limit(8)
        .with_idle_timeout(Some(Duration::from_secs(9)));
    let mut engine = client_of(config, reconnect, now);
    assert!(matches!(engine.poll_output(), Some(Output::Connect { .. })));
    while engine.poll_output().is_some() {}
    engine
        .handle_input(now, Input::Connected(AttemptId(0)))
        .unwrap();
    while engine.poll_output().is_some() {}

    // Owned and copied sends, coalesced into one transmit.
    engine.send(now, Bytes::from_static(b"hel")).unwrap();
    engine.send_slice(now, b"lo").unwrap();
    let transmit =
        std::iter::from_fn(|| engine.poll_output()).find(|o| matches!(o, Output::Transmit(_)));
    assert_eq!(
        transmit,
        Some(Output::Transmit(Bytes::from_static(b"hello")))
    );
    engine.handle_input(now, Input::Written(2)).unwrap();
    assert!(engine.wants_read(), "nothing received yet");
    assert!(!engine.receive_window_full());
    engine.handle_input(now, Input::Received(b"abc")).unwrap();
    engine.consumed(1).unwrap();
    while engine.poll_output().is_some() {}
    engine
}

fn every_method_answers_for_what_is_inside(engine: &mut Client) {
    assert_eq!(engine.phase(), Phase::Connected);
    assert!(!engine.is_closed());
    assert_eq!(engine.winning_attempt(), Some(AttemptId(0)));
    assert_eq!(engine.bytes_accepted(), 5);
    assert_eq!(engine.bytes_written(), 2);
    assert_eq!(engine.bytes_queued(), 3);
    assert_eq!(engine.bytes_received(), 3);
    assert_eq!(engine.bytes_unconsumed(), 2);
    assert!(engine.receive_window_full(), "2 of 2 bytes unconsumed");
    assert!(!engine.wants_read());
    // The current connection's own figures: 3 of the 8 bytes' limit queued.
    assert_eq!(engine.send_capacity(), 5);
    assert_eq!(engine.config().receive_window, Some(2));
    let idle = tcpclient_testkit::epoch() + Duration::from_secs(9);
    assert!(engine.poll_timeout().is_some_and(|t| t <= idle));

    // Refusals come through, and change nothing.
    let now = tcpclient_testkit::epoch();
    assert!(matches!(
        engine.send(now, Bytes::from_static(b"too much")),
        Err(InvalidInput::QueueFull { .. })
    ));
    assert!(matches!(
        engine.send_slice(now, b"too much"),
        Err(InvalidInput::QueueFull { data, .. }) if data == "too much"
    ));
    assert!(engine.consumed(100).is_err());
    assert!(
        engine
            .handle_input(now, Input::Connected(AttemptId(7)))
            .is_err()
    );
    assert_eq!(engine.bytes_accepted(), 5);

    engine.abort(now).unwrap();
    let outputs: Vec<Output> = std::iter::from_fn(|| engine.poll_output()).collect();
    assert_eq!(
        outputs,
        [Output::QueryUnacknowledged],
        "two bytes were written: first, what did the peer get?"
    );
    let all_of_it = Unacknowledged::Known {
        bytes: 0,
        fin_acknowledged: false,
    };
    engine
        .handle_input(now, Input::Unacknowledged(all_of_it))
        .unwrap();
    let outputs: Vec<Output> = std::iter::from_fn(|| engine.poll_output()).collect();
    assert!(outputs.contains(&Output::Reset));
    assert!(engine.is_closed());
    assert_eq!(
        (
            engine.bytes_accepted(),
            engine.bytes_written(),
            engine.bytes_received()
        ),
        (5, 2, 3),
        "the figures stay as they were at the close"
    );
}

#[test]
fn a_client_of_one_connection_answers_for_it() {
    let mut engine = exercised(None);
    assert!(engine.config().reconnect.is_none());
    every_method_answers_for_what_is_inside(&mut engine);
}

#[test]
fn a_reconnecting_client_answers_for_its_session() {
    let mut engine = exercised(Some(ReconnectPolicy::default()));
    assert!(engine.config().reconnect.is_some());
    every_method_answers_for_what_is_inside(&mut engine);
}

#[test]
fn the_report_for_a_stopped_driver_still_adds_up() {
    let report = tcpclient_core::CloseReport::driver_stopped(100, 60, 5, "loop died".into());
    assert_eq!(
        (
            report.bytes_accepted,
            report.bytes_written,
            report.bytes_undelivered,
            report.bytes_received
        ),
        (100, 60, 40, 5)
    );
    assert_eq!(report.outcome(), "DriverStopped");

    let claimed_too_much = tcpclient_core::CloseReport::driver_stopped(10, 25, 0, "x".into());
    assert_eq!(
        claimed_too_much.bytes_written, 10,
        "no more written than accepted"
    );
    assert_eq!(claimed_too_much.bytes_undelivered, 0);
}

#[test]
fn splitmix_gives_the_reference_sequence_and_fair_draws() {
    use tcpclient_core::SplitMix;
    let mut rng = SplitMix::new(0);
    assert_eq!(
        [rng.next_u64(), rng.next_u64(), rng.next_u64()],
        [0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f],
        "SplitMix64 as published"
    );

    let mut rng = SplitMix::new(42);
    assert_eq!(rng.below(0), 0);
    let (mut hits, mut seen, mut sum) = (0, [false; 7], 0.0);
    for _ in 0..10_000 {
        let n = rng.below(7) as usize;
        seen[n] = true;
        hits += usize::from(rng.chance(1, 4));
        let unit = rng.unit();
        assert!((0.0..1.0).contains(&unit));
        sum += unit;
    }
    assert_eq!(seen, [true; 7], "every value of 0..7, none past it");
    assert!(
        (2300..2700).contains(&hits),
        "chance(1, 4): {hits} of 10,000"
    );
    assert!(
        (4800.0..5200.0).contains(&sum),
        "unit's mean: {}",
        sum / 10_000.0
    );
    assert!(!SplitMix::new(1).chance(0, 4));
    assert!(SplitMix::new(1).chance(4, 4));
}

/// An empty send carries no data: nothing is handed out for it, then or before the next
/// send (no empty transmits), whether sends are coalesced or not, owned or copied, on a
/// client or a session.
#[test]
fn an_empty_send_hands_out_nothing() {
    for coalesce_below in [0, 1024] {
        for reconnect in [None, Some(ReconnectPolicy::default())] {
            let now = tcpclient_testkit::epoch();
            let config = Config::new().with_coalesce_below(coalesce_below);
            let mut engine = client_of(config, reconnect, now);
            while engine.poll_output().is_some() {}
            engine
                .handle_input(now, Input::Connected(AttemptId(0)))
                .unwrap();
            while engine.poll_output().is_some() {}

            engine.send(now, Bytes::new()).unwrap();
            engine.send_slice(now, b"").unwrap();

            let outputs: Vec<Output> = std::iter::from_fn(|| engine.poll_output()).collect();
            assert!(
                !outputs.iter().any(|o| matches!(o, Output::Transmit(_))),
                "coalesce_below {coalesce_below}: {outputs:?}"
            );
            assert_eq!(engine.bytes_accepted(), 0);
            // Nor is anything left of them to go out before the next send.
            engine.send(now, Bytes::new()).unwrap();
            engine.send_slice(now, b"data").unwrap();
            let transmits: Vec<Output> = std::iter::from_fn(|| engine.poll_output())
                .filter(|o| matches!(o, Output::Transmit(_)))
                .collect();
            assert_eq!(
                transmits,
                [Output::Transmit(Bytes::from_static(b"data"))],
                "coalesce_below {coalesce_below}"
            );
        }
    }
}

#[test]
fn reconnecting_requests_reach_a_session_and_one_connection_refuses_them() {
    let now = tcpclient_testkit::epoch();
    let config = Config::new;
    let mut client = Client::new(LOCAL, config(), now);
    assert!(matches!(
        client.preamble_done(now),
        Err(InvalidInput::Unexpected {
            input: "preamble_done",
            ..
        })
    ));

    let policy = ReconnectPolicy::default().with_preamble(Preamble::Dialogue);
    let mut session = Client::new(LOCAL, config().with_reconnect(policy), now);
    while session.poll_output().is_some() {}
    session
        .handle_input(now, Input::Connected(AttemptId(0)))
        .unwrap();
    let hello = Bytes::from_static(b"HELLO\n");
    assert_eq!(session.send_preamble(now, hello.clone()), Ok(()));
    let sent: Vec<Output> = std::iter::from_fn(|| session.poll_output()).collect();
    assert!(sent.contains(&Output::Transmit(hello)), "{sent:?}");
    assert_eq!(session.preamble_done(now), Ok(()));
}

/// One policy, shared in an `Arc`, serves clients to different servers: each resolves or
/// connects to its own destination, and none copies the policy.
#[test]
fn one_shared_policy_serves_clients_to_different_servers() {
    let now = tcpclient_testkit::epoch();
    let policy = std::sync::Arc::new(Config::new().with_send_limit(4096));
    let by_name = Client::new(("mail.test", 25), policy.clone(), now);
    let by_address = Client::new(("192.0.2.7", 5432), policy.clone(), now);
    let mut by_name = by_name;
    let mut by_address = by_address;

    assert_eq!(
        by_name.poll_output(),
        Some(Output::Resolve {
            host: "mail.test".into(),
            port: 25
        })
    );
    assert!(matches!(
        by_address.poll_output(),
        Some(Output::Connect { addr, .. }) if addr == "192.0.2.7:5432".parse().unwrap()
    ));
    assert_eq!(by_name.destination().host, "mail.test");
    assert_eq!(by_address.destination().port, 5432);
    assert_eq!(
        std::sync::Arc::strong_count(&policy),
        3,
        "shared, not copied"
    );
    assert_eq!(by_address.config().send_limit, 4096);
}
