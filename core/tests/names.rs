//! The names and messages users see in traces, logs and error reports.

use std::io::ErrorKind;

use bytes::Bytes;
use tcpclient_core::{AttemptId, Error, Event, Family, Output, Request, TlsError};

#[test]
fn a_failed_lookup_says_why_in_the_words_people_use() {
    let resolve = |kind| {
        Error::Resolve {
            host: "mail.example".into(),
            kind,
        }
        .to_string()
    };
    assert_eq!(
        resolve(ErrorKind::NotFound),
        "could not resolve mail.example: no such host"
    );
    assert_eq!(
        resolve(ErrorKind::TimedOut),
        "could not resolve mail.example: the resolver timed out"
    );
    assert_eq!(
        resolve(ErrorKind::PermissionDenied),
        "could not resolve mail.example: permission denied"
    );
}

#[test]
fn outputs_families_attempts_and_tls_errors_are_named_after_their_variants() {
    let outputs = [
        (Output::Cancel(AttemptId(3)), "Cancel"),
        (Output::Transmit(Bytes::from_static(b"x")), "Transmit"),
        (Output::ShutdownWrite, "ShutdownWrite"),
        (Output::Close, "Close"),
        (Output::Reset, "Reset"),
        (Output::Event(Event::PeerClosed), "PeerClosed"),
        (
            Output::Resolve {
                host: "h".into(),
                port: 1,
            },
            "Resolve",
        ),
    ];
    for (output, name) in outputs {
        assert_eq!(output.name(), name);
    }
    assert_eq!(Family::V4.name(), "V4");
    assert_eq!(Family::V6.name(), "V6");
    assert_eq!(AttemptId(12).to_string(), "#12");
    let corrupt = TlsError::CorruptMessage {
        reason: "bad".into(),
    };
    assert_eq!(corrupt.name(), "CorruptMessage");
    assert_eq!(TlsError::CertificateIsCa.name(), "CertificateIsCa");
}

#[test]
fn floods_have_a_name_a_limit_and_words_for_people() {
    use tcpclient_core::{Flood, TlsError};
    let floods = [
        (
            Flood::EmptyRecords,
            "EmptyRecords",
            32,
            "empty records: more than 32 in a row",
        ),
        (
            Flood::WarningAlerts,
            "WarningAlerts",
            4,
            "warning alerts: more than 4",
        ),
        (
            Flood::KeyUpdates,
            "KeyUpdates",
            32,
            "key updates: more than 32 without data between",
        ),
        (
            Flood::RenegotiationRequests,
            "RenegotiationRequests",
            1,
            "renegotiation requests: more than 1",
        ),
    ];
    for (flood, name, limit, words) in floods {
        assert_eq!(flood.name(), name);
        assert_eq!(flood.limit(), limit);
        assert_eq!(flood.to_string(), words);
    }
    let error = TlsError::Flood(Flood::WarningAlerts);
    assert_eq!(error.name(), "Flood");
    assert_eq!(
        error.to_string(),
        "the server flooded the session with warning alerts: more than 4"
    );
}

#[test]
fn attempt_outcomes_have_a_name_for_tables_and_words_for_people() {
    use tcpclient_core::AttemptOutcome;
    let outcomes = [
        (AttemptOutcome::Won, "Won", "connected"),
        (AttemptOutcome::Refused, "Refused", "refused"),
        (AttemptOutcome::Cancelled, "Cancelled", "cancelled"),
        (AttemptOutcome::TimedOut, "TimedOut", "timed out"),
    ];
    for (outcome, name, words) in outcomes {
        assert_eq!(outcome.name(), name);
        assert_eq!(outcome.to_string(), words);
    }
}

#[test]
fn endings_read_as_words() {
    use tcpclient_core::Ending;
    assert_eq!(Ending::Finished.to_string(), "finished gracefully");
    assert_eq!(Ending::PeerClosed.to_string(), "closed by the peer");
    assert_eq!(Ending::Aborted.to_string(), "aborted");
}

#[test]
fn a_failed_connection_report_lists_each_attempt_when_there_were_several() {
    let mut h = tcpclient_testkit::Harness::new(("dual.test", 7), tcpclient_core::Config::new());
    h.outputs();
    let (v6, v4) = ("[::1]:7".parse().unwrap(), "127.0.0.1:7".parse().unwrap());
    h.input(tcpclient_core::Input::Resolved {
        family: None,
        result: Ok(&[v6, v4]),
    });
    h.advance(std::time::Duration::from_millis(10));
    h.input(tcpclient_core::Input::ConnectFailed(
        AttemptId(0),
        ErrorKind::ConnectionRefused,
    ));
    h.advance(std::time::Duration::from_millis(5));
    let outputs = h.input(tcpclient_core::Input::ConnectFailed(
        AttemptId(1),
        ErrorKind::ConnectionRefused,
    ));

    let report = tcpclient_testkit::closed(&outputs);
    assert_eq!(
        report.to_string(),
        "failed: connecting to 127.0.0.1:7 failed: connection refused; sent 0 of 0 bytes \
         (0 undelivered), received 0 bytes; attempts: [::1]:7 refused (started at +0 ms), \
         127.0.0.1:7 refused (started at +10 ms)"
    );
}

#[test]
fn phases_have_names_and_words_and_a_tls_client_shows_its_session_in_debug() {
    use tcpclient_core::{Client, Config, Input, Phase};
    assert_eq!(Phase::Connected.name(), "Connected");
    assert_eq!(Phase::Draining.name(), "Draining");
    assert_eq!(Phase::Delay.to_string(), "waiting for the start delay");
    assert_eq!(Phase::TlsHandshaking.to_string(), "in the TLS handshake");

    let pki = tcpclient_testkit::Pki::new();
    let now = tcpclient_testkit::epoch();
    let config = Config::new().with_tls(pki.client_tls());
    let mut client = Client::new(tcpclient_testkit::local(), config, now);
    while client.poll_output().is_some() {}
    client.start_tls(now).unwrap();
    client
        .handle_input(now, Input::Connected(AttemptId(0)))
        .unwrap();
    while client.poll_output().is_some() {}
    let debug = format!("{client:?}");
    assert!(
        debug.contains(
            "TlsSession { handshaking: true, close_notify_sent: false, peer_closed: false }"
        ),
        "{debug}"
    );
}

#[test]
fn a_report_lists_attempts_only_when_several_failed() {
    use tcpclient_core::{Config, Input};
    use tcpclient_testkit::{Harness, closed};
    let refused = |h: &mut Harness, n| {
        h.input(Input::ConnectFailed(
            AttemptId(n),
            ErrorKind::ConnectionRefused,
        ))
    };

    let mut one = Harness::new(("127.0.0.1", 7), Config::new());
    one.outputs();
    let outputs = refused(&mut one, 0);
    assert!(
        !closed(&outputs).to_string().contains("attempts:"),
        "one attempt: no list"
    );

    let mut won = Harness::new(("dual.test", 7), Config::new());
    won.outputs();
    let (v6, v4) = ("[::1]:7".parse().unwrap(), "127.0.0.1:7".parse().unwrap());
    won.input(Input::Resolved {
        family: None,
        result: Ok(&[v6, v4]),
    });
    refused(&mut won, 0);
    won.input(Input::Connected(AttemptId(1)));
    let outputs = won.request(Request::Abort);
    assert!(
        !closed(&outputs).to_string().contains("attempts:"),
        "it connected: no list"
    );
}

#[test]
fn an_alpn_name_may_be_1_to_255_bytes_as_tls_allows() {
    use tcpclient_core::tls::check_alpn_protocols;
    assert!(check_alpn_protocols(&[&[b'a'; 255]]).is_ok());
    assert!(check_alpn_protocols(&[&[b'a'; 256]]).is_err());
    assert!(check_alpn_protocols(&[b"h2", b""]).is_err());
    assert!(check_alpn_protocols(&[b"h2", b"http/1.1"]).is_ok());
}

#[test]
fn the_alert_sent_is_named_in_traces_and_in_words() {
    use tcpclient_core::AlertSent;
    let named = AlertSent::Named(rustls::AlertDescription::BadRecordMac);
    assert_eq!(named.name(), "BadRecordMac");
    assert_eq!(named.to_string(), "BadRecordMac");
    assert_eq!(AlertSent::Unnamed.name(), "Unnamed");
    assert_eq!(
        AlertSent::Unnamed.to_string(),
        "(sealed under the handshake's keys)"
    );
}
