//! Connection racing (RFC 8305, Happy Eyeballs v2) on the hand-advanced clock: which attempt
//! starts when, which wins, which is cancelled, at exact instants.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use tcpclient_core::{
    AttemptId, AttemptOutcome, Config, Error, Event, Family, FamilyPreference, Input, Output,
    Request,
};
use tcpclient_testkit::{Harness, closed, connect};

const V6: &str = "[2001:db8::1]:443";
const V6B: &str = "[2001:db8::2]:443";
const V4: &str = "192.0.2.1:443";
const V4B: &str = "192.0.2.2:443";

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn id(n: u32) -> AttemptId {
    AttemptId(n)
}

/// A client for `dual.test`, resolution asked for.
fn dual_stack() -> Harness {
    let mut h = Harness::new(("dual.test", 443), Config::new());
    let asked = h.outputs();
    assert!(matches!(asked[..], [Output::Resolve { .. }]), "{asked:?}");
    h
}

fn at(h: &mut Harness, t: Duration) {
    let by = t - h.elapsed();
    h.advance(by);
}

#[test]
fn ipv6_black_holed_and_ipv4_answering_connects_over_ipv4_after_the_attempt_delay() {
    let mut h = dual_stack();
    assert_eq!(
        h.input(Input::Resolved {
            family: None,
            result: Ok(&[addr(V6), addr(V4)])
        }),
        [connect(0, V6)]
    );
    assert_eq!(h.deadline(), Some(ms(250)));

    assert_eq!(
        h.fire(),
        [connect(1, V4)],
        "IPv4 joins at 250 ms; IPv6 stays alive"
    );
    assert_eq!(h.elapsed(), ms(250));
    at(&mut h, ms(270)); // IPv4's round trip: 20 ms

    assert_eq!(
        h.input(Input::Connected(id(1))),
        [
            Output::Cancel(id(0)),
            Output::Event(Event::Connected(addr(V4)))
        ],
        "the black-holed IPv6 attempt is cancelled the instant IPv4 wins"
    );
    let report = closed(&h.request(Request::Abort)).clone();
    let [first, second] = &report.attempts[..] else {
        panic!("{:?}", report.attempts)
    };
    assert_eq!(
        (first.addr, first.outcome),
        (addr(V6), AttemptOutcome::Cancelled)
    );
    assert_eq!(first.ended, ms(270));
    assert_eq!(
        (second.addr, second.outcome),
        (addr(V4), AttemptOutcome::Won)
    );
    assert_eq!(second.started, ms(250));
}

#[test]
fn a_slow_ipv6_loses_to_an_ipv4_that_answers_first_and_its_late_answer_changes_nothing() {
    let mut h = dual_stack();
    h.input(Input::Resolved {
        family: None,
        result: Ok(&[addr(V6), addr(V4)]),
    });
    assert_eq!(h.fire(), [connect(1, V4)]);
    at(&mut h, ms(300));

    assert_eq!(
        h.input(Input::Connected(id(1))),
        [
            Output::Cancel(id(0)),
            Output::Event(Event::Connected(addr(V4)))
        ]
    );
    at(&mut h, ms(400));
    assert_eq!(
        h.try_input(Input::Connected(id(0))),
        Ok(vec![]),
        "the loser's late success is a no-op"
    );
    assert_eq!(h.client.peer_addr(), Some(addr(V4)));
}

#[test]
fn ipv6_winning_before_ipv4_started_cancels_nothing() {
    let mut h = dual_stack();
    h.input(Input::Resolved {
        family: None,
        result: Ok(&[addr(V6), addr(V4)]),
    });
    at(&mut h, ms(100));

    assert_eq!(
        h.input(Input::Connected(id(0))),
        [Output::Event(Event::Connected(addr(V6)))]
    );
    assert_eq!(h.deadline(), None, "no attempt is left to start");
}

#[test]
fn ipv6_winning_after_ipv4_started_cancels_the_ipv4_attempt() {
    let mut h = dual_stack();
    h.input(Input::Resolved {
        family: None,
        result: Ok(&[addr(V6), addr(V4)]),
    });
    assert_eq!(h.fire(), [connect(1, V4)]);
    at(&mut h, ms(300));

    assert_eq!(
        h.input(Input::Connected(id(0))),
        [
            Output::Cancel(id(1)),
            Output::Event(Event::Connected(addr(V6)))
        ]
    );
}

#[test]
fn an_ipv6_refusal_at_10_ms_starts_ipv4_at_10_ms_not_250() {
    let mut h = dual_stack();
    h.input(Input::Resolved {
        family: None,
        result: Ok(&[addr(V6), addr(V4)]),
    });
    at(&mut h, ms(10));

    assert_eq!(
        h.input(Input::ConnectFailed(id(0), ErrorKind::ConnectionRefused)),
        [Output::Cancel(id(0)), connect(1, V4)]
    );
}

#[test]
fn every_address_failing_is_one_error_that_lists_each_attempt() {
    let mut h = dual_stack();
    h.input(Input::Resolved {
        family: None,
        result: Ok(&[addr(V6), addr(V6B), addr(V4), addr(V4B)]),
    });
    // Families alternate: V6, V4, V6B, V4B.
    at(&mut h, ms(5));
    assert_eq!(
        h.input(Input::ConnectFailed(id(0), ErrorKind::NetworkUnreachable)),
        [Output::Cancel(id(0)), connect(1, V4)]
    );
    at(&mut h, ms(10));
    assert_eq!(
        h.input(Input::ConnectFailed(id(1), ErrorKind::ConnectionRefused)),
        [Output::Cancel(id(1)), connect(2, V6B)]
    );
    assert_eq!(h.fire(), [connect(3, V4B)], "250 ms after the last start");
    assert_eq!(h.elapsed(), ms(260));
    h.input(Input::ConnectFailed(id(2), ErrorKind::NetworkUnreachable));

    let outputs = h.input(Input::ConnectFailed(id(3), ErrorKind::ConnectionRefused));

    let report = closed(&outputs);
    assert_eq!(
        report.result,
        Err(Error::Connect {
            addr: addr(V4B),
            kind: ErrorKind::ConnectionRefused
        })
    );
    let seen: Vec<(SocketAddr, AttemptOutcome)> = report
        .attempts
        .iter()
        .map(|a| (a.addr, a.outcome))
        .collect();
    assert_eq!(
        seen,
        [
            (addr(V6), AttemptOutcome::Unreachable),
            (addr(V4), AttemptOutcome::Refused),
            (addr(V6B), AttemptOutcome::Unreachable),
            (addr(V4B), AttemptOutcome::Refused),
        ]
    );
    let text = report.to_string();
    for each in [V6, V4, V6B, V4B] {
        assert!(text.contains(each), "{text}");
    }
}

#[test]
fn every_address_black_holed_ends_at_the_connect_timeout() {
    let config = Config::new().with_connect_timeout(ms(2000));
    let mut h = Harness::new(("dual.test", 443), config);
    h.outputs();
    h.input(Input::Resolved {
        family: None,
        result: Ok(&[addr(V6), addr(V4)]),
    });
    assert_eq!(h.fire(), [connect(1, V4)]);

    let outputs = h.fire();

    assert_eq!(h.elapsed(), ms(2000), "bounded by the connect timeout");
    assert_eq!(outputs[..2], [Output::Cancel(id(0)), Output::Cancel(id(1))]);
    assert_eq!(closed(&outputs).result, Err(Error::ConnectTimeout));
}

#[test]
fn an_a_answer_first_waits_for_the_aaaa_answer_that_comes_within_the_resolution_delay() {
    let mut h = dual_stack();
    assert_eq!(
        h.input(Input::Resolved {
            family: Some(Family::V4),
            result: Ok(&[addr(V4)])
        }),
        []
    );
    assert_eq!(h.deadline(), Some(ms(50)), "the resolution delay");
    at(&mut h, ms(30));

    assert_eq!(
        h.input(Input::Resolved {
            family: Some(Family::V6),
            result: Ok(&[addr(V6)])
        }),
        [connect(0, V6)],
        "IPv6 first, as if both had come together"
    );
    assert_eq!(h.fire(), [connect(1, V4)]);
    assert_eq!(h.elapsed(), ms(280));
}

#[test]
fn an_aaaa_answer_after_the_resolution_delay_joins_the_race_when_it_arrives() {
    let mut h = dual_stack();
    h.input(Input::Resolved {
        family: Some(Family::V4),
        result: Ok(&[addr(V4)]),
    });

    assert_eq!(
        h.fire(),
        [connect(0, V4)],
        "IPv4 starts when the delay runs out"
    );
    assert_eq!(h.elapsed(), ms(50));
    at(&mut h, ms(80));
    assert_eq!(
        h.input(Input::Resolved {
            family: Some(Family::V6),
            result: Ok(&[addr(V6)])
        }),
        [connect(1, V6)]
    );
}

#[test]
fn a_failed_aaaa_lookup_starts_ipv4_at_once() {
    let mut h = dual_stack();
    h.input(Input::Resolved {
        family: Some(Family::V4),
        result: Ok(&[addr(V4)]),
    });
    at(&mut h, ms(5));

    assert_eq!(
        h.input(Input::Resolved {
            family: Some(Family::V6),
            result: Err(ErrorKind::NotFound)
        }),
        [connect(0, V4)]
    );
}

#[test]
fn ipv4_only_and_prefer_ipv4_change_the_order() {
    let mut h = Harness::new(
        ("dual.test", 443),
        Config::new().with_family_preference(FamilyPreference::PreferIpv4),
    );
    h.outputs();
    assert_eq!(
        h.input(Input::Resolved {
            family: None,
            result: Ok(&[addr(V6), addr(V4)])
        }),
        [connect(0, V4)]
    );
    assert_eq!(h.fire(), [connect(1, V6)]);

    let mut h = Harness::new(
        ("dual.test", 443),
        Config::new().with_family_preference(FamilyPreference::Ipv4Only),
    );
    h.outputs();
    assert_eq!(
        h.input(Input::Resolved {
            family: None,
            result: Ok(&[addr(V6), addr(V4)])
        }),
        [connect(0, V4)]
    );
    assert_eq!(h.deadline(), Some(ms(30_000)), "no other attempt to start");

    let mut h = Harness::new(
        ("dual.test", 443),
        Config::new().with_family_preference(FamilyPreference::Ipv6Only),
    );
    h.outputs();
    let outputs = h.input(Input::Resolved {
        family: None,
        result: Ok(&[addr(V4)]),
    });
    assert_eq!(
        closed(&outputs).result,
        Err(Error::NoAddresses {
            host: "dual.test".into()
        })
    );
}

#[test]
fn the_attempt_delay_is_clamped_to_rfc_8305s_bounds() {
    let mut h = Harness::new(("dual.test", 443), Config::new().with_attempt_delay(ms(1)));
    h.outputs();
    h.input(Input::Resolved {
        family: None,
        result: Ok(&[addr(V6), addr(V4)]),
    });
    assert_eq!(h.deadline(), Some(ms(10)));

    let mut h = Harness::new(
        ("dual.test", 443),
        Config::new().with_attempt_delay(ms(10_000)),
    );
    h.outputs();
    h.input(Input::Resolved {
        family: None,
        result: Ok(&[addr(V6), addr(V4)]),
    });
    assert_eq!(h.deadline(), Some(ms(2000)));
}

#[test]
fn every_connect_carries_the_socket_options_of_its_family() {
    let mut options = tcpclient_core::SocketOptions::default();
    options.local_v4 = Some("192.0.2.9".parse().unwrap());
    options.user_timeout = Some(ms(7000));
    let mut h = Harness::new(
        ("dual.test", 443),
        Config::new().with_socket_options(options),
    );
    h.outputs();

    let outputs = h.input(Input::Resolved {
        family: None,
        result: Ok(&[addr(V6), addr(V4)]),
    });
    let Output::Connect { options: v6, .. } = &outputs[0] else {
        panic!("{outputs:?}")
    };
    let outputs = h.fire();
    let Output::Connect { options: v4, .. } = &outputs[0] else {
        panic!("{outputs:?}")
    };

    assert_eq!(v6.local, None, "no IPv6 source address was given");
    assert_eq!(v4.local, Some(addr("192.0.2.9:0")));
    assert_eq!((v4.user_timeout, v4.nodelay), (Some(ms(7000)), true));
    assert!(v4.keepalive.is_some(), "keepalive is on by default");
}

#[test]
fn an_abort_resets_the_connection_and_a_finish_closes_it() {
    let mut h = Harness::new(("127.0.0.1", 7), Config::new());
    h.outputs();
    h.input(Input::Connected(id(0)));
    assert_eq!(h.request(Request::Abort)[0], Output::Reset);

    let mut pair = tcpclient_testkit::Pair::connected(Config::new());
    pair.request(Request::Finish);
    pair.server_fin();
    assert!(pair.log.contains(&Output::Close));
    assert!(!pair.log.contains(&Output::Reset));
}

#[test]
fn an_a_answer_after_the_ipv6_attempts_began_waits_for_the_attempt_delay() {
    let mut h = dual_stack();
    assert_eq!(
        h.input(Input::Resolved {
            family: Some(Family::V6),
            result: Ok(&[addr(V6), addr(V6B)])
        }),
        [connect(0, V6)]
    );
    at(&mut h, ms(30));

    assert_eq!(
        h.input(Input::Resolved {
            family: Some(Family::V4),
            result: Ok(&[addr(V4)])
        }),
        [],
        "IPv6 is under way: IPv4 joins after the attempt delay, not on its answer"
    );
    assert_eq!(h.deadline(), Some(ms(250)));
    assert_eq!(h.fire(), [connect(1, V4)]);
}

#[test]
fn a_repeated_failure_of_an_attempt_already_failed_starts_nothing() {
    let mut h = dual_stack();
    h.input(Input::Resolved {
        family: None,
        result: Ok(&[addr(V6), addr(V4), addr(V6B)]),
    });
    at(&mut h, ms(10));
    assert_eq!(
        h.input(Input::ConnectFailed(id(0), ErrorKind::ConnectionRefused)),
        [Output::Cancel(id(0)), connect(1, V4)]
    );

    let again = h.input(Input::ConnectFailed(id(0), ErrorKind::ConnectionRefused));

    assert_eq!(
        again,
        [],
        "late, and nothing to do: attempt 2 waits for the delay"
    );
    assert_eq!(h.deadline(), Some(ms(260)));
}

#[test]
fn a_failed_lookup_beside_an_empty_answer_is_no_usable_address_not_a_resolve_error() {
    let mut h = dual_stack();
    h.input(Input::Resolved {
        family: Some(Family::V6),
        result: Err(ErrorKind::NotFound),
    });

    let outputs = h.input(Input::Resolved {
        family: Some(Family::V4),
        result: Ok(&[]),
    });

    let report = closed(&outputs);
    assert_eq!(
        report.result,
        Err(Error::NoAddresses {
            host: "dual.test".into()
        })
    );
}

#[test]
fn an_address_given_twice_is_tried_once() {
    let mut h = dual_stack();
    assert_eq!(
        h.input(Input::Resolved {
            family: None,
            result: Ok(&[addr(V6), addr(V6), addr(V4), addr(V4)])
        }),
        [connect(0, V6)]
    );
    assert_eq!(h.fire(), [connect(1, V4)]);

    assert_eq!(
        h.deadline(),
        Some(ms(5000)),
        "two addresses, two attempts: nothing is left but the connect timeout"
    );
}

#[test]
fn an_address_that_answers_after_another_failed_is_still_tried() {
    let mut h = dual_stack();
    h.input(Input::Resolved {
        family: Some(Family::V6),
        result: Ok(&[addr(V6)]),
    });
    h.input(Input::ConnectFailed(id(0), ErrorKind::ConnectionRefused));
    at(&mut h, ms(20));

    let outputs = h.input(Input::Resolved {
        family: Some(Family::V4),
        result: Ok(&[addr(V4)]),
    });

    assert_eq!(outputs, [connect(1, V4)]);
}

#[test]
fn an_attempt_cap_shorter_than_the_attempt_delay_moves_on_to_the_next_address() {
    let config = Config::new()
        .with_attempt_timeout(ms(1000))
        .with_attempt_delay(ms(2000));
    let mut h = Harness::new(("dual.test", 443), config);
    h.outputs();
    h.input(Input::Resolved {
        family: None,
        result: Ok(&[addr(V6), addr(V4)]),
    });

    let outputs = h.fire();

    assert_eq!(h.elapsed(), ms(1000), "the cap, not the attempt delay");
    assert_eq!(outputs, [Output::Cancel(id(0)), connect(1, V4)]);
}

#[test]
fn a_timeout_long_after_several_deadlines_handles_every_one_that_passed() {
    let config = Config::new().with_connect_timeout(ms(2000));
    let mut h = Harness::new(("dual.test", 443), config);
    h.outputs();
    h.input(Input::Resolved {
        family: None,
        result: Ok(&[addr(V6), addr(V4)]),
    });

    // The attempt delay (250 ms) and the connect timeout (2 s) have both passed.
    h.advance(ms(5000));
    let outputs = h.input(Input::Timeout);

    // The race's deadline comes first, and leaves the client connecting: the connect
    // timeout, in the same Timeout, ends it.
    assert_eq!(closed(&outputs).result, Err(Error::ConnectTimeout));
    assert_eq!(
        h.client.poll_timeout(),
        None,
        "no deadline left in the past"
    );
}
