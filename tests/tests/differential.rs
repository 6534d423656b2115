//! One scenario, two drivers: the simulator and real sockets must agree on what a user sees.

use bytes::Bytes;
use tcpclient_core::Ending;
use tcpclient_tests::{Case, Server, in_simulation, over_loopback};

fn both(case: &Case) -> tcpclient_tests::Observed {
    let simulated = in_simulation(case);
    let real = over_loopback(case);
    assert_eq!(simulated, real, "the simulator drifted from reality");
    real
}

fn messages() -> Vec<Bytes> {
    vec![
        Bytes::from_static(b"hello, "),
        Bytes::from(vec![b'x'; 100_000]),
        Bytes::from_static(b"bye"),
    ]
}

#[test]
fn echo_then_a_graceful_shutdown() {
    let observed = both(&Case {
        server: Server::Echo,
        messages: messages(),
    });

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
    let observed = both(&Case {
        server: Server::TlsEcho,
        messages: messages(),
    });

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
fn a_refused_connection() {
    let observed = both(&Case {
        server: Server::Nobody,
        messages: messages(),
    });

    assert_eq!(observed.events, ["Undelivered", "Closed"]);
    assert_eq!(
        observed.result,
        Err("Connect(ConnectionRefused)".to_string())
    );
    assert_eq!(observed.accounting, (100_010, 0, 100_010, 0));
}
