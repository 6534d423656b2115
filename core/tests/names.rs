//! The names and messages users see in traces, logs and error reports.

use std::io::ErrorKind;

use bytes::Bytes;
use tcpclient_core::{AttemptId, Error, Event, Family, Output, TlsError};

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
