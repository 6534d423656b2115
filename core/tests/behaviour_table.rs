//! One test per row of the behaviour table in ARCHITECTURE.md section 5: what Kamaelia's TCPClient
//! did, and what we do instead. Each test asserts the exact outputs and the exact deadlines.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tcpclient_core::{
    AttemptId, AttemptOutcome, Config, Ending, Error, Event, Input, InvalidInput, OnPeerEof,
    Output, Phase, Request, TlsError,
};
use tcpclient_testkit::{Harness, Leaf, Pair, Pki, closed, connect, events, local};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn base() -> Config {
    Config::new()
}

fn data(bytes: &'static [u8]) -> Bytes {
    Bytes::from_static(bytes)
}

/// Kamaelia busy-waits through `delay`; here it is a deadline and nothing happens before it.
#[test]
fn delay() {
    let mut h = Harness::new(local(), base().with_delay(ms(250)));

    assert_eq!(h.outputs(), []);
    assert_eq!(h.client.phase(), Phase::Delay);
    assert_eq!(h.deadline(), Some(ms(250)));

    h.advance(ms(249));
    assert_eq!(h.input(Input::Timeout), [], "an early timeout does nothing");
    assert_eq!(h.client.phase(), Phase::Delay);

    assert_eq!(h.fire(), [connect(0, "127.0.0.1:7")]);
    assert_eq!(h.elapsed(), ms(250));
    assert_eq!(
        h.deadline(),
        Some(ms(250) + secs(30)),
        "connect timeout runs from the end of the delay"
    );
}

/// Kamaelia reports a refused connection as a clean end; here it is a typed error.
#[test]
fn connect_refused() {
    let mut h = Harness::new(local(), base());
    assert_eq!(h.outputs(), [connect(0, "127.0.0.1:7")]);

    let outputs = h.input(Input::ConnectFailed(
        AttemptId(0),
        ErrorKind::ConnectionRefused,
    ));

    assert_eq!(outputs.len(), 2);
    assert_eq!(outputs[0], Output::Cancel(AttemptId(0)));
    let report = closed(&outputs);
    assert_eq!(
        report.result,
        Err(Error::Connect {
            addr: addr("127.0.0.1:7"),
            kind: ErrorKind::ConnectionRefused
        })
    );
    assert!(!report.is_clean());
    assert_eq!(h.client.phase(), Phase::Closed);
    assert_eq!(h.deadline(), None);
}

/// Attempts overlap (Happy Eyeballs): a new one every attempt delay, each capped while
/// another address could still win, the last one kept until the whole connect times out.
#[test]
fn connect_timeout() {
    let config = Config::new()
        .with_connect_timeout(secs(10))
        .with_attempt_timeout(secs(3));
    let mut h = Harness::new(("db.test", 5432), config);
    assert_eq!(
        h.outputs(),
        [Output::Resolve {
            host: "db.test".into(),
            port: 5432
        }]
    );
    let addrs = [
        addr("10.0.0.1:5432"),
        addr("10.0.0.2:5432"),
        addr("10.0.0.3:5432"),
    ];

    assert_eq!(
        h.input(Input::Resolved {
            family: None,
            result: Ok(&addrs)
        }),
        [connect(0, "10.0.0.1:5432")]
    );
    assert_eq!(h.deadline(), Some(ms(250)), "the attempt delay");
    assert_eq!(h.fire(), [connect(1, "10.0.0.2:5432")]);
    assert_eq!(h.fire(), [connect(2, "10.0.0.3:5432")]);
    assert_eq!(h.elapsed(), ms(500));
    assert_eq!(h.deadline(), Some(secs(3)), "the first attempt's cap");

    assert_eq!(h.fire(), [Output::Cancel(AttemptId(0))]);
    assert_eq!(h.fire(), [Output::Cancel(AttemptId(1))]);
    assert_eq!(h.elapsed(), ms(3250));
    assert_eq!(
        h.deadline(),
        Some(secs(10)),
        "the last attempt gets what remains"
    );

    let outputs = h.fire();
    assert_eq!(h.elapsed(), secs(10));
    assert_eq!(outputs[0], Output::Cancel(AttemptId(2)));
    let report = closed(&outputs);
    assert_eq!(report.result, Err(Error::ConnectTimeout));
    let outcomes: Vec<AttemptOutcome> = report.attempts.iter().map(|a| a.outcome).collect();
    assert_eq!(
        outcomes,
        [
            AttemptOutcome::TimedOut,
            AttemptOutcome::TimedOut,
            AttemptOutcome::Cancelled
        ]
    );
    assert_eq!(h.deadline(), None);
}

/// Resolution is an output the driver performs; IPv6 and IPv4 alternate; each is tried.
#[test]
fn name_resolution() {
    let mut h = Harness::new(("dual.test", 80), Config::new());
    assert_eq!(
        h.outputs(),
        [Output::Resolve {
            host: "dual.test".into(),
            port: 80
        }]
    );
    assert_eq!(h.client.phase(), Phase::Resolving);
    let v6a = addr("[2001:db8::1]:80");
    let v6b = addr("[2001:db8::2]:80");
    let v4 = addr("192.0.2.1:80");

    assert_eq!(
        h.input(Input::Resolved {
            family: None,
            result: Ok(&[v6a, v6b, v4])
        }),
        [connect(0, "[2001:db8::1]:80")]
    );
    assert_eq!(
        h.input(Input::ConnectFailed(
            AttemptId(0),
            ErrorKind::NetworkUnreachable
        )),
        [Output::Cancel(AttemptId(0)), connect(1, "192.0.2.1:80")],
        "the other family comes next, at once after a failure"
    );
    assert_eq!(
        h.input(Input::Connected(AttemptId(1))),
        [Output::Event(Event::Connected(v4))]
    );
    let _ = v6b;
    assert_eq!(h.client.peer_addr(), Some(v4));
}

#[test]
fn name_resolution_failure_is_a_typed_error_without_a_socket() {
    let mut h = Harness::new(("nowhere.invalid", 80), Config::new());
    h.outputs();

    let outputs = h.input(Input::Resolved {
        family: None,
        result: Err(ErrorKind::NotFound),
    });

    assert_eq!(
        outputs.len(),
        1,
        "no socket was opened, so nothing to close"
    );
    assert_eq!(
        closed(&outputs).result,
        Err(Error::Resolve {
            host: "nowhere.invalid".into(),
            kind: ErrorKind::NotFound
        })
    );
}

#[test]
fn name_resolution_to_nothing_is_a_typed_error() {
    let mut h = Harness::new(("empty.test", 80), Config::new());
    h.outputs();

    let outputs = h.input(Input::Resolved {
        family: None,
        result: Ok(&[]),
    });

    assert_eq!(
        closed(&outputs).result,
        Err(Error::NoAddresses {
            host: "empty.test".into()
        })
    );
}

/// Kamaelia drops data queued before the connection is up; we connect, deliver, then close.
#[test]
fn producer_finished_before_connected() {
    let mut h = Harness::new(local(), base());
    assert_eq!(h.outputs(), [connect(0, "127.0.0.1:7")]);
    h.request(Request::Send(data(b"0123456789")));
    assert_eq!(h.request(Request::Finish), []);
    assert_eq!(
        h.client.phase(),
        Phase::Connecting,
        "finishing still connects first"
    );

    assert_eq!(
        h.input(Input::Connected(AttemptId(0))),
        [
            Output::Event(Event::Connected(addr("127.0.0.1:7"))),
            Output::Transmit(data(b"0123456789")),
        ]
    );
    assert_eq!(
        h.deadline(),
        Some(secs(10)),
        "the drain deadline starts with the connection"
    );
    assert_eq!(h.input(Input::Written(10)), [Output::ShutdownWrite]);
    assert_eq!(h.client.phase(), Phase::Draining);

    let outputs = h.input(Input::PeerEof);

    assert_eq!(
        outputs[..2],
        [Output::Event(Event::PeerClosed), Output::Close]
    );
    let report = closed(&outputs);
    assert_eq!(report.result, Ok(Ending::Finished));
    assert_eq!(
        (
            report.bytes_accepted,
            report.bytes_written,
            report.bytes_undelivered
        ),
        (10, 10, 0)
    );
    assert!(report.is_clean());
}

#[test]
fn producer_finished_before_connected_reports_every_byte_when_the_connect_fails() {
    let mut h = Harness::new(local(), base());
    h.outputs();
    h.request(Request::Send(data(b"0123456789")));
    h.request(Request::Finish);

    let outputs = h.input(Input::ConnectFailed(
        AttemptId(0),
        ErrorKind::ConnectionRefused,
    ));

    let report = closed(&outputs);
    assert!(matches!(report.result, Err(Error::Connect { .. })));
    assert_eq!(
        (
            report.bytes_accepted,
            report.bytes_written,
            report.bytes_undelivered
        ),
        (10, 0, 10)
    );
}

/// Kamaelia makes one more flush attempt and loses the rest; we flush everything, FIN,
/// read until the peer's EOF, then close.
#[test]
fn producer_finished_while_connected() {
    let mut pair = Pair::connected(base());
    pair.write_budget = Some(4);
    pair.send(b"first part, ");
    pair.send(b"second part");
    pair.advance(secs(1));

    pair.request(Request::Finish);
    assert_eq!(
        pair.h.deadline(),
        Some(secs(11)),
        "drain deadline: finish + drain timeout"
    );
    assert!(!pair.server.got_fin, "no FIN while bytes are still queued");

    pair.write_budget = None;
    pair.drive();
    assert_eq!(pair.server.plaintext, b"first part, second part");
    assert!(pair.server.got_fin);
    assert_eq!(pair.h.client.phase(), Phase::Draining);

    pair.server.send(b"late reply");
    pair.drive();
    pair.server_fin();

    assert_eq!(
        pair.take_events()[1..],
        [
            Event::Data(data(b"late reply")),
            Event::PeerClosed,
            pair.events().last().unwrap().clone()
        ]
    );
    let report = closed(&pair.log);
    assert_eq!(report.result, Ok(Ending::Finished));
    assert_eq!(
        (
            report.bytes_accepted,
            report.bytes_written,
            report.bytes_received
        ),
        (23, 23, 10)
    );
    assert!(report.peer_closed);
}

#[test]
fn producer_finished_while_connected_ends_at_the_drain_deadline_if_the_peer_never_closes() {
    let mut pair = Pair::connected(base());
    pair.send(b"all of it");
    pair.request(Request::Finish);
    assert!(pair.server.got_fin);

    pair.fire();

    assert_eq!(pair.h.elapsed(), secs(10));
    let report = closed(&pair.log);
    assert_eq!(
        report.result,
        Err(Error::DrainTimeout),
        "the peer's TCP took every byte and our FIN, but nothing says its application did"
    );
    assert_eq!(
        (
            report.bytes_written,
            report.bytes_unconfirmed,
            report.bytes_lost
        ),
        (9, 9, 0)
    );
    assert!(!report.peer_closed);
    assert!(!report.is_clean());
}

#[test]
fn producer_finished_while_connected_to_a_stalled_peer_reports_the_undelivered_bytes() {
    let mut pair = Pair::connected(base());
    pair.write_budget = Some(0);
    pair.send(b"stuck in the queue");
    pair.request(Request::Finish);

    pair.fire();

    let report = closed(&pair.log);
    assert_eq!(report.result, Err(Error::DrainTimeout));
    assert_eq!((report.bytes_written, report.bytes_undelivered), (0, 18));
    assert!(!pair.server.got_fin);
}

/// Kamaelia's shutdownMicroprocess also loses data, silently, and ends with a FIN that tells
/// the peer the stream is complete; we abort now, count what was lost, and reset the
/// connection so that the peer knows it was cut.
#[test]
fn shutdown_microprocess() {
    let mut pair = Pair::connected(base());
    pair.write_budget = Some(5);
    pair.send(b"0123456789");
    assert_eq!(pair.server.plaintext, b"01234");
    let before = pair.log.len();

    pair.request(Request::Abort);

    assert_eq!(pair.log[before], Output::Reset);
    let report = closed(&pair.log);
    assert_eq!(report.result, Ok(Ending::Aborted));
    assert_eq!(
        (
            report.bytes_accepted,
            report.bytes_written,
            report.bytes_undelivered
        ),
        (10, 5, 5)
    );
    assert!(!report.is_clean());
    assert_eq!(
        pair.log[before + 1],
        Output::Event(Event::Undelivered(data(b"56789"))),
        "the five bytes that never left, handed back"
    );
    assert_eq!(
        pair.log.len(),
        before + 3,
        "Reset, the undelivered bytes, then Closed, and nothing else"
    );
}

/// Kamaelia ends everything on the peer's EOF and drops what was queued. We report it and,
/// by default, flush what is queued before closing our side.
#[test]
fn peer_closes() {
    let mut pair = Pair::connected(base());
    pair.write_budget = Some(0);
    pair.send(b"still queued");

    pair.server_fin();
    assert_eq!(
        pair.take_events(),
        [Event::Connected(addr("127.0.0.1:7")), Event::PeerClosed]
    );
    assert_eq!(pair.h.client.phase(), Phase::Draining);
    assert!(matches!(
        pair.h.client.send(pair.h.now, data(b"more")),
        Err(InvalidInput::SendAfterShutdown { .. })
    ));

    pair.write_budget = None;
    pair.drive();

    assert_eq!(pair.server.plaintext, b"still queued");
    assert!(pair.server.got_fin);
    let report = closed(&pair.log);
    assert_eq!(report.result, Ok(Ending::PeerClosed));
    assert_eq!(report.bytes_undelivered, 0);
}

#[test]
fn peer_closes_and_a_finish_that_crossed_it_is_no_error() {
    let mut pair = Pair::connected(base());
    pair.write_budget = Some(0);
    pair.send(b"still queued");
    pair.server_fin();
    assert_eq!(pair.h.client.phase(), Phase::Draining);
    assert_eq!(pair.h.client.send_capacity(), 0, "nothing more can be sent");

    assert_eq!(pair.h.client.finish(pair.h.now), Ok(()));
    pair.write_budget = None;
    pair.drive();

    assert_eq!(closed(&pair.log).result, Ok(Ending::PeerClosed));
}

#[test]
fn peer_closes_and_the_half_open_connection_keeps_sending() {
    let mut pair = Pair::connected(base().with_on_peer_eof(OnPeerEof::KeepWriting));
    pair.server_fin();
    assert_eq!(pair.take_events()[1..], [Event::PeerClosed]);
    assert_eq!(pair.h.client.phase(), Phase::Connected);
    assert_eq!(
        pair.h.deadline(),
        None,
        "half-open waits for the application"
    );

    pair.send(b"the answer");
    assert_eq!(pair.server.plaintext, b"the answer");
    pair.request(Request::Finish);

    assert!(pair.server.got_fin);
    assert_eq!(closed(&pair.log).result, Ok(Ending::Finished));
}

/// Kamaelia's send error path names an undefined variable; ours is a typed error.
#[test]
fn socket_error_while_sending() {
    let mut pair = Pair::connected(base());
    pair.write_budget = Some(3);
    pair.send(b"abcdef");

    let outputs = pair.h.input(Input::SocketError(ErrorKind::BrokenPipe));

    assert_eq!(outputs[0], Output::Close);
    let report = closed(&outputs);
    assert_eq!(report.result, Err(Error::Socket(ErrorKind::BrokenPipe)));
    assert_eq!((report.bytes_written, report.bytes_undelivered), (3, 3));
}

/// Kamaelia's makessl blocks the whole scheduler in a handshake without verification. Ours
/// is a non-blocking, verified handshake and a `TlsEstablished` event.
#[test]
fn makessl() {
    let pki = Pki::new();
    let mut pair = Pair::connected(base().with_tls(pki.client_tls()));
    pair.send(b"STARTTLS\r\n");
    pair.server.send(b"220 go ahead\r\n");
    pair.drive();
    pair.server.start_tls(pki.server_config());

    pair.h.client.start_tls(pair.h.now).unwrap();
    assert_eq!(pair.h.client.phase(), Phase::TlsHandshaking);
    pair.drive();

    let events = pair.take_events();
    assert_eq!(events[1], Event::Data(data(b"220 go ahead\r\n")));
    let Event::TlsEstablished(info) = &events[2] else {
        panic!("expected TlsEstablished, got {events:?}");
    };
    assert_eq!(
        info.protocol_version,
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(pair.h.client.phase(), Phase::Connected);
    assert_eq!(
        pair.h.deadline(),
        None,
        "the handshake deadline is disarmed"
    );

    pair.send(b"AUTH secret");
    assert_eq!(pair.server.decrypted, b"AUTH secret");
    assert_eq!(pair.server.plaintext, b"STARTTLS\r\n");
}

#[test]
fn makessl_refuses_an_untrusted_certificate() {
    let trusted = Pki::new();
    let impostor = Pki::with_leaf(Leaf::Good);
    let mut pair = Pair::connected(base().with_tls(trusted.client_tls()));
    pair.server.start_tls(impostor.server_config());

    pair.request(Request::StartTls);

    let report = closed(&pair.log);
    assert!(
        matches!(
            report.result,
            Err(Error::Tls(TlsError::CertificateNotTrusted { .. }))
        ),
        "{report:?}"
    );
}

/// Kamaelia sends data queued before makessl through the new SSL socket; we send it in
/// plaintext before the ClientHello.
#[test]
fn data_queued_before_makessl() {
    let pki = Pki::new();
    let mut pair = Pair::new(base().with_tls(pki.client_tls()));
    pair.send(b"EHLO client\r\nSTARTTLS\r\n");
    pair.request(Request::StartTls);
    pair.send(b"MAIL FROM:<me>");
    pair.server.start_tls_at(23, pki.server_config());

    pair.connect();

    assert_eq!(pair.server.plaintext, b"EHLO client\r\nSTARTTLS\r\n");
    assert_eq!(pair.server.decrypted, b"MAIL FROM:<me>");
    assert!(matches!(pair.events()[1], Event::TlsEstablished(_)));
}

/// Kamaelia never notices an EOF in SSL mode and spins forever; an EOF without
/// `close_notify` is `UnexpectedEof` here.
#[test]
fn eof_while_in_ssl_mode() {
    let pki = Pki::new();
    let mut pair = Pair::new(base().with_tls(pki.client_tls()));
    pair.request(Request::StartTls);
    pair.server.start_tls(pki.server_config());
    pair.connect();
    pair.server.send(b"partial respo");
    pair.drive();

    pair.server_fin();

    let events = pair.events();
    assert_eq!(events[2], Event::Data(data(b"partial respo")));
    let report = closed(&pair.log);
    assert_eq!(report.result, Err(Error::UnexpectedEof));
    assert!(!report.is_clean());
}

/// Kamaelia's outgoing queue is unbounded. Ours refuses past the limit, hands the data
/// back, and says when there is room again.
#[test]
fn outgoing_queue() {
    let mut pair = Pair::connected(base().with_send_limit(1000));
    pair.write_budget = Some(0);
    pair.request(Request::Send(Bytes::from(vec![1; 600])));
    assert_eq!(pair.h.client.send_capacity(), 400);

    let refused = pair.h.client.send(pair.h.now, Bytes::from(vec![2; 600]));

    let Err(InvalidInput::QueueFull {
        data: back,
        queued: 600,
        limit: 1000,
    }) = refused
    else {
        panic!("expected QueueFull, got {refused:?}");
    };
    assert_eq!(back, vec![2; 600], "the refused data comes back");
    assert_eq!(pair.h.client.bytes_accepted(), 600);

    pair.write_budget = Some(99);
    pair.drive();
    assert_eq!(pair.h.client.bytes_queued(), 501);
    assert!(!pair.events().contains(&Event::SendReady));

    pair.write_budget = Some(1);
    pair.drive();
    assert_eq!(pair.h.client.bytes_queued(), 500);
    assert_eq!(pair.events().last(), Some(&Event::SendReady));
}

#[test]
fn outgoing_queue_takes_one_oversized_send_when_empty() {
    let mut pair = Pair::connected(base().with_send_limit(10));
    pair.write_budget = Some(0);

    pair.request(Request::Send(Bytes::from(vec![0; 50])));

    assert_eq!(pair.h.client.bytes_queued(), 50);
    assert!(pair.h.client.send(pair.h.now, data(b"x")).is_err());
}

/// Kamaelia holds a chunk back while its outbox is full, and reads on without bound. The core
/// holds nothing: each read the driver makes becomes one `Data` event at once, and at the
/// receive window it stops asking for reads until the application consumes.
#[test]
fn outbox_full() {
    let mut h = Harness::new(local(), base().with_receive_window(Some(6)));
    h.outputs();
    h.input(Input::Connected(AttemptId(0)));

    assert_eq!(
        h.input(Input::Received(b"one")),
        [Output::Event(Event::Data(data(b"one")))]
    );
    assert!(h.client.wants_read());
    assert_eq!(
        h.input(Input::Received(b"two")),
        [Output::Event(Event::Data(data(b"two")))]
    );
    assert_eq!(h.client.bytes_received(), 6);
    assert!(!h.client.wants_read(), "the window is full: no more reads");

    h.request(Request::Consumed(3));
    assert!(h.client.wants_read(), "consumed: reading resumes");
    h.input(Input::PeerEof);
    assert!(!h.client.wants_read(), "after EOF the driver stops reading");
    assert!(events(&h.outputs()).is_empty());
}

/// Kamaelia waits for ever on a peer that vanished with data queued; here the stall timeout
/// ends it.
#[test]
fn peer_vanishes_with_data_queued() {
    let mut h = Harness::new(local(), base().with_stall_timeout(Some(secs(30))));
    h.request(Request::Send(data(b"unanswered")));
    h.input(Input::Connected(AttemptId(0)));

    let outputs = h.fire();

    assert_eq!(h.elapsed(), secs(30));
    let report = closed(&outputs);
    assert_eq!(report.result, Err(Error::Stalled));
    assert_eq!(report.bytes_undelivered, 10);
}
