//! One scenario, every driver: the simulator, the polling driver (its event loop and its
//! runtime's handles) and the tokio driver must agree on what a user sees.

use bytes::Bytes;
use tcpclient_core::Ending;
use tcpclient_tests::{
    Case, End, GREETING, Observed, Server, in_simulation, over_loopback, over_runtime, over_tokio,
};

fn every_driver(case: &Case) -> Observed {
    let simulated = in_simulation(case);
    let polling = over_loopback(case);
    let tokio = over_tokio(case);
    let runtime = over_runtime(case);
    assert_eq!(
        simulated, polling,
        "the simulator drifted from the polling driver"
    );
    assert_eq!(
        tokio, polling,
        "the tokio driver drifted from the polling driver"
    );
    if case.end == End::Abort {
        // The runtime's loop runs on a thread of its own, at once: an abort made right after
        // the sends can come after it connected and wrote some of them (over loopback, at
        // once), so how far it got is a race. What a user relies on still agrees: the
        // ending, the bytes accepted and received, and the report last.
        let (left, right) = (&runtime, &polling);
        assert_eq!(left.result, right.result, "the runtime's ending drifted");
        assert_eq!(left.accounting.0, right.accounting.0, "accepted");
        assert_eq!(left.accounting.3, right.accounting.3, "received");
        assert_eq!(left.events.last(), right.events.last());
    } else {
        assert_eq!(
            runtime, polling,
            "the polling runtime's handles drifted from its event loop"
        );
    }
    polling
}

fn messages() -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"hello, "),
        Bytes::from(vec![b'x'; 100_000]),
        Bytes::from_static(b"bye"),
    ]
}

fn case(server: Server) -> Case {
    Case {
        server,
        messages: messages(),
        end: End::Finish,
    }
}

#[test]
fn echo_then_a_graceful_shutdown() {
    let observed = every_driver(&case(Server::Echo));

    assert_eq!(
        observed.events,
        ["Connected", "Data", "PeerClosed", "Closed"]
    );
    assert_eq!(observed.data.len(), 100_010);
    assert_eq!(observed.result, Ok(Ending::Finished));
    assert_eq!(observed.accounting, (100_010, 100_010, 0, 100_010));
    assert!(observed.peer_closed);
}

#[test]
fn tls_echo_then_close_notify_both_ways() {
    let observed = every_driver(&case(Server::TlsEcho));

    assert_eq!(
        observed.events,
        [
            "Connected",
            "TlsEstablished(TLSv1_3, TLS13_AES_256_GCM_SHA384)",
            "Data",
            "PeerClosed",
            "Closed"
        ]
    );
    assert_eq!(observed.result, Ok(Ending::Finished));
    assert_eq!(observed.accounting, (100_010, 100_010, 0, 100_010));
}

#[test]
fn a_starttls_dialogue_then_echo_over_tls() {
    let observed = every_driver(&case(Server::StartTlsLine));

    assert_eq!(
        observed.events,
        [
            "Connected",
            "Data",
            "TlsEstablished(TLSv1_3, TLS13_AES_256_GCM_SHA384)",
            "Data",
            "PeerClosed",
            "Closed"
        ]
    );
    assert!(observed.data.starts_with(b"220 ready\r\n220 go\r\n"));
    assert_eq!(observed.data.len(), 19 + 100_010);
    assert_eq!(observed.result, Ok(Ending::Finished));
    assert_eq!(
        observed.accounting,
        (10 + 100_010, 10 + 100_010, 0, 19 + 100_010)
    );
}

#[test]
fn the_peer_closes_first() {
    let mut case = case(Server::GreetsAndCloses);
    case.messages.clear();
    case.end = End::Finish;

    let observed = every_driver(&case);

    assert_eq!(observed.data, GREETING);
    assert_eq!(
        observed.events,
        ["Connected", "Data", "PeerClosed", "Closed"]
    );
    assert_eq!(observed.result, Ok(Ending::Finished));
    assert!(observed.peer_closed);
}

#[test]
fn an_abort_right_after_sending_hands_every_byte_back() {
    let mut case = case(Server::Echo);
    case.end = End::Abort;

    let observed = every_driver(&case);

    assert_eq!(observed.events, ["Undelivered", "Closed"]);
    assert_eq!(observed.result, Ok(Ending::Aborted));
    assert_eq!(observed.accounting, (100_010, 0, 100_010, 0));
}

#[test]
fn a_refused_connection() {
    let observed = every_driver(&case(Server::Nobody));

    assert_eq!(observed.events, ["Undelivered", "Closed"]);
    assert_eq!(
        observed.result,
        Err("Connect(ConnectionRefused)".to_string())
    );
    assert_eq!(observed.accounting, (100_010, 0, 100_010, 0));
}
