//! Reports that arrive after the client closed: a socket error from a `ShutdownWrite` the
//! driver performed after the core had already closed, a resolution that raced an abort, a
//! write that finished after the close. Drivers cannot avoid them (the core closes in the
//! same batch of outputs that asks for the last socket actions), so the contract makes them
//! no-ops: accepted, ignored, never a panic.

use std::io::ErrorKind;
use std::net::SocketAddr;

use bytes::Bytes;
use tcpclient_core::{AttemptId, Config, Ending, Event, Input, Output, Phase, Request};
use tcpclient_testkit::{Harness, Pair, closed};

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Every report a driver can make, once the client is closed.
fn late_reports() -> Vec<Input<'static>> {
    static ADDRS: [SocketAddr; 1] = [SocketAddr::V4(std::net::SocketAddrV4::new(
        std::net::Ipv4Addr::LOCALHOST,
        7,
    ))];
    vec![
        Input::Resolved {
            family: None,
            result: Ok(&ADDRS),
        },
        Input::Resolved {
            family: None,
            result: Err(ErrorKind::NotFound),
        },
        Input::Connected(AttemptId(0)),
        Input::ConnectFailed(AttemptId(0), ErrorKind::ConnectionRefused),
        Input::Received(b"late bytes"),
        Input::Written(4),
        Input::PeerEof,
        Input::SocketError(ErrorKind::NotConnected),
        Input::Timeout,
    ]
}

/// The server sent FIN, then RST, before we read its EOF: the core answers the EOF with
/// `ShutdownWrite`, `Close` and `Closed` in one batch, and the driver's `shutdown(SHUT_WR)`
/// then fails with ENOTCONN. That failure is reported to a closed client.
#[test]
fn a_shutdown_that_fails_after_the_close_is_a_late_report_and_changes_nothing() {
    let mut pair = Pair::connected(Config::new());
    pair.server.send(b"bye");
    pair.server_fin();
    let report = closed(&pair.log).clone();
    assert_eq!(report.result, Ok(Ending::PeerClosed));
    let tail: Vec<&Output> = pair.log.iter().rev().take(3).rev().collect();
    assert!(
        matches!(
            tail[..],
            [
                Output::ShutdownWrite,
                Output::Close,
                Output::Event(Event::Closed(_))
            ]
        ),
        "{tail:?}"
    );

    let accepted = pair
        .h
        .try_input(Input::SocketError(ErrorKind::NotConnected));

    assert_eq!(accepted, Ok(vec![]));
    assert_eq!(pair.h.client.phase(), Phase::Closed);
    assert_eq!(pair.h.client.poll_timeout(), None);
}

/// Every kind of report, after an abort in every early phase: accepted, no output, no timer.
#[test]
fn every_report_after_the_close_is_accepted_and_ignored() {
    for (name, host, config) in [
        ("resolving", "server.test", Config::new()),
        ("connecting", "127.0.0.1", Config::new()),
        (
            "delayed",
            "127.0.0.1",
            Config::new().with_delay(std::time::Duration::from_secs(1)),
        ),
    ] {
        let mut h = Harness::new((host, 7), config);
        let _ = h.outputs();
        let outputs = h.request(Request::Abort);
        assert!(
            matches!(outputs.last(), Some(Output::Event(Event::Closed(_)))),
            "{name}"
        );

        for report in late_reports() {
            let what = format!("{name}: {}", report.name());
            assert_eq!(h.try_input(report), Ok(vec![]), "{what}");
            assert_eq!(h.client.phase(), Phase::Closed, "{what}");
            assert_eq!(h.client.poll_timeout(), None, "{what}");
        }
    }
}

/// Requests from the application after the close are still refused: the data of a `Send`
/// comes back, so nothing is lost.
#[test]
fn application_requests_after_the_close_are_still_refused() {
    let mut h = Harness::new(("127.0.0.1", 7), Config::new());
    let _ = h.outputs();
    let _ = h.request(Request::Abort);

    let refused = h.try_request(Request::Send(Bytes::from_static(b"too late")));

    let data = refused.expect_err("a Send after the close").into_data();
    assert_eq!(data, Some(Bytes::from_static(b"too late")));
    assert!(h.try_request(Request::Finish).is_err());
    assert!(h.try_request(Request::StartTls).is_err());
}

/// Before the close, a report that makes no sense is still refused: only lateness is forgiven.
#[test]
fn a_senseless_report_before_the_close_is_still_refused() {
    let mut h = Harness::new(("server.test", 7), Config::new());
    let _ = h.outputs();

    assert!(h.try_input(Input::Connected(AttemptId(0))).is_err());
    assert!(h.try_input(Input::Received(b"x")).is_err());
    assert!(
        h.try_input(Input::Resolved {
            family: None,
            result: Ok(&[addr("127.0.0.1:7")])
        })
        .is_ok()
    );
}

#[test]
fn a_report_about_an_attempt_never_issued_is_refused_after_the_race_too() {
    let mut h = Harness::new(("127.0.0.1", 7), Config::new());
    let _ = h.outputs();
    h.input(Input::Connected(AttemptId(0)));

    // Attempt 0 won; attempt 1 was never handed out: no late report, a driver's mistake.
    assert!(
        h.try_input(Input::ConnectFailed(
            AttemptId(1),
            ErrorKind::ConnectionRefused
        ))
        .is_err()
    );
    assert!(h.try_input(Input::Connected(AttemptId(1))).is_err());
    assert!(
        h.try_input(Input::ConnectFailed(
            AttemptId(0),
            ErrorKind::ConnectionRefused
        ))
        .is_ok(),
        "about the winner, after the race: late, and ignored"
    );
}
