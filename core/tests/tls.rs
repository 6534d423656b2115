//! TLS in the core against an in-memory rustls server with rcgen certificates.

use std::time::Duration;

use bytes::Bytes;
use rustls::AlertDescription;
use tcpclient_core::{
    AlertSent, Config, Destination, Ending, Error, Event, Flood, Input, InvalidInput, Output,
    Phase, Request, TlsConfig, TlsError, tls,
};
use tcpclient_testkit::{Leaf, Pair, Pki, closed, local, server_name};

fn base() -> Config {
    Config::new()
}

/// A pair whose client speaks TLS from the first byte to a server presenting `pki`'s cert.
fn tls_pair(pki: &Pki, tls: TlsConfig) -> Pair {
    let mut pair = Pair::new(base().with_tls(tls));
    pair.request(Request::StartTls);
    pair.server.start_tls(pki.server_config());
    pair.connect();
    pair
}

fn transmits(outputs: &[Output]) -> Vec<&Bytes> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(b) => Some(b),
            _ => None,
        })
        .collect()
}

/// Every application byte the client has delivered so far, in order.
fn received(pair: &Pair) -> Vec<u8> {
    pair.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Data(data) => Some(data.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn tls_error(pair: &Pair) -> TlsError {
    match &closed(&pair.log).result {
        Err(Error::Tls(e)) => e.clone(),
        other => panic!("expected a TLS error, got {other:?}"),
    }
}

#[test]
fn tls_from_the_start_exchanges_data_both_ways() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    assert!(pair.server.tls_established());
    assert!(
        pair.server.plaintext.is_empty(),
        "not one plaintext byte on the wire"
    );

    pair.send(b"ping");
    pair.server.send(b"pong");
    pair.drive();

    assert_eq!(pair.server.decrypted, b"ping");
    let events = pair.events();
    assert!(matches!(events[0], Event::Connected(_)));
    assert!(matches!(events[1], Event::TlsEstablished(_)));
    assert_eq!(events[2], Event::Data(Bytes::from_static(b"pong")));
    assert!(pair.h.client.tls_info().is_some());
}

#[test]
fn tls_established_reports_version_suite_and_alpn() {
    let pki = Pki::new();
    let config = tls::client_config(pki.roots(), &[b"imap", b"h2"]).unwrap();
    let mut pair = Pair::new(base().with_tls(TlsConfig::new(config)));
    pair.request(Request::StartTls);
    pair.server.start_tls(pki.server_config_with_alpn(&[b"h2"]));

    pair.connect();

    let Event::TlsEstablished(info) = &pair.events()[1] else {
        panic!("{:?}", pair.events());
    };
    assert_eq!(
        info.protocol_version,
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(
        info.cipher_suite,
        Some(rustls::CipherSuite::TLS13_AES_256_GCM_SHA384)
    );
    assert_eq!(info.alpn_protocol.as_deref(), Some(&b"h2"[..]));
    assert_eq!(
        info.to_string(),
        "TLSv1_3, TLS13_AES_256_GCM_SHA384, ALPN h2"
    );
    assert!(!info.resumed);
    assert_eq!(info.peer_certificates.0, [pki.server_cert_der().clone()]);
    assert_eq!(
        format!("{:?}", info.peer_certificates),
        "PeerCertificates(1 DER)",
        "event logs say how many, not the bytes"
    );
}

/// A second session with the same client configuration resumes the first (from the ticket
/// the server sent), and says so; its certificates are those verified in the first.
#[test]
fn a_second_session_with_the_same_config_resumes_and_says_so() {
    let pki = Pki::new();
    let mut server = (*pki.server_config()).clone();
    server.send_tls13_tickets = 1;
    let server = std::sync::Arc::new(server);
    let client = pki.client_tls();
    let session = |server: &std::sync::Arc<rustls::ServerConfig>| {
        let mut pair = Pair::new(base().with_tls(client.clone()));
        pair.request(Request::StartTls);
        pair.server.start_tls(server.clone());
        pair.connect();
        // The ticket comes after the handshake: take it, then close.
        pair.server.send(b"ticket delivered");
        pair.drive();
        pair.request(Request::Finish);
        pair.server.send_close_notify();
        pair.server_fin();
        pair.events()
            .into_iter()
            .find_map(|e| match e {
                Event::TlsEstablished(info) => Some(info),
                _ => None,
            })
            .expect("a TLS session")
    };

    let first = session(&server);
    let second = session(&server);

    assert!(
        !first.resumed && first.peer_certificates.0.len() == 1,
        "{first:?}"
    );
    assert!(second.resumed, "{second:?}");
    assert_eq!(second.peer_certificates, first.peer_certificates);
    assert!(second.to_string().ends_with(", resumed"), "{second}");
}

#[test]
fn starttls_after_a_plaintext_exchange_keeps_the_plaintext_in_the_clear() {
    let pki = Pki::new();
    let mut pair = Pair::connected(base().with_tls(pki.client_tls()));
    pair.send(b"a001 STARTTLS\r\n");
    pair.server.send(b"a001 OK Begin TLS negotiation now\r\n");
    pair.drive();
    pair.server.start_tls(pki.server_config());

    pair.request(Request::StartTls);
    pair.send(b"a002 LOGIN user pass\r\n");

    assert_eq!(pair.server.plaintext, b"a001 STARTTLS\r\n");
    assert_eq!(pair.server.decrypted, b"a002 LOGIN user pass\r\n");
    let report_so_far = pair.h.client.bytes_written();
    assert_eq!(report_so_far, 15 + 22);
}

#[test]
fn sends_during_the_handshake_wait_and_leave_encrypted_after_it() {
    let pki = Pki::new();
    let mut pair = Pair::connected(base().with_tls(pki.client_tls()));
    pair.server.start_tls(pki.server_config());
    pair.h.client.start_tls(pair.h.now).unwrap();
    pair.h
        .client
        .send(pair.h.now, Bytes::from_static(b"early"))
        .unwrap();

    let first = pair.h.outputs();

    assert_eq!(
        transmits(&first).len(),
        1,
        "only the ClientHello leaves before the handshake"
    );
    assert_eq!(first[0], Output::Transmit(first_transmit(&first)));
    assert_eq!(pair.h.client.phase(), Phase::TlsHandshaking);
    pair.log.extend(first.clone());
    pair.server.receive(&first_transmit(&first));
    pair.h
        .client
        .handle_input(pair.h.now, Input::Written(first_transmit(&first).len()))
        .unwrap();
    pair.drive();
    assert_eq!(pair.server.decrypted, b"early");
    assert!(pair.server.plaintext.is_empty());
}

fn first_transmit(outputs: &[Output]) -> Bytes {
    transmits(outputs)[0].clone()
}

#[test]
fn many_small_sends_before_one_drain_become_one_record() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    for _ in 0..100 {
        let message = Bytes::from(vec![b'x'; 64]);
        pair.h.client.send(pair.h.now, message).unwrap();
    }

    let outputs = pair.h.outputs();

    let records = transmits(&outputs);
    assert_eq!(records.len(), 1, "6,400 bytes fit one record");
    assert_eq!(
        records[0].len(),
        6400 + 22,
        "TLS 1.3 overhead: 5 header + 1 type + 16 tag"
    );
}

#[test]
fn graceful_shutdown_sends_close_notify_then_fin_and_waits_for_the_peers() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.send(b"QUIT\r\n");

    pair.request(Request::Finish);

    assert!(pair.server.got_close_notify);
    assert!(pair.server.got_fin);
    assert_eq!(pair.server.decrypted, b"QUIT\r\n");
    assert_eq!(pair.h.client.phase(), Phase::Draining);
    assert!(
        matches!(
            pair.h.client.send(pair.h.now, Bytes::from_static(b"x")),
            Err(InvalidInput::SendAfterShutdown { .. })
        ),
        "rustls would accept this; the core refuses it"
    );

    pair.server.send(b"221 bye\r\n");
    pair.server.send_close_notify();
    pair.drive();

    let events = pair.events();
    let n = events.len();
    assert_eq!(
        events[n - 3..n - 1],
        [
            Event::Data(Bytes::from_static(b"221 bye\r\n")),
            Event::PeerClosed
        ]
    );
    let report = closed(&pair.log);
    assert_eq!(report.result, Ok(Ending::Finished));
    assert!(report.peer_closed);
    assert!(report.is_clean());
}

#[test]
fn the_peers_close_notify_is_its_eof_and_we_answer_in_kind() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());

    pair.server.send(b"goodbye");
    pair.server.send_close_notify();
    pair.drive();

    assert!(pair.server.got_close_notify);
    assert!(pair.server.got_fin);
    let report = closed(&pair.log);
    assert_eq!(report.result, Ok(Ending::PeerClosed));
    assert_eq!(report.bytes_received, 7);
}

#[test]
fn a_tcp_eof_after_close_notify_is_clean() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.request(Request::Finish);

    pair.server.send_close_notify();
    pair.server_fin();

    assert_eq!(closed(&pair.log).result, Ok(Ending::Finished));
}

#[test]
fn truncation_without_close_notify_is_unexpected_eof() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.request(Request::Finish);

    pair.server_fin();

    let report = closed(&pair.log);
    assert_eq!(report.result, Err(Error::UnexpectedEof));
    assert_eq!(
        report.bytes_undelivered, 0,
        "our side was delivered; theirs may be cut"
    );
}

#[test]
fn an_eof_during_the_handshake_is_unexpected_eof() {
    let pki = Pki::new();
    let mut pair = Pair::connected(base().with_tls(pki.client_tls()));

    pair.request(Request::StartTls);
    pair.server_fin();

    assert_eq!(closed(&pair.log).result, Err(Error::UnexpectedEof));
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let pki = Pki::new();
    let other_ca = Pki::new();
    let mut pair = tls_pair(&pki, other_ca.client_tls());

    assert!(matches!(
        tls_error(&pair),
        TlsError::CertificateNotTrusted { .. }
    ));
    assert!(pair.server.decrypted.is_empty());
    pair.drive();
}

/// The events of a client that receives, in one read, a TLS 1.3 server's whole first
/// flight followed by 0.5-RTT data `early` (and the server's `close_notify` if `close`).
fn first_flight_events(early: &[u8], close: bool) -> Vec<Event> {
    use std::io::Write;
    let pki = Pki::new();
    let mut config = (*pki.server_config()).clone();
    config.send_half_rtt_data = true;
    let mut server = rustls::ServerConnection::new(std::sync::Arc::new(config)).unwrap();
    let mut h = tcpclient_testkit::Harness::new(local(), base().with_tls(pki.client_tls()));
    h.outputs();
    h.request(Request::StartTls);
    let hello: Vec<u8> = transmits(&h.input(Input::Connected(tcpclient_core::AttemptId(0))))
        .iter()
        .flat_map(|b| b.to_vec())
        .collect();

    server.read_tls(&mut &hello[..]).unwrap();
    server.process_new_packets().unwrap();
    server.writer().write_all(early).unwrap();
    if close {
        server.send_close_notify();
    }
    let mut flight = Vec::new();
    while server.wants_write() {
        server.write_tls(&mut flight).unwrap();
    }
    tcpclient_testkit::events(&h.input(Input::Received(&flight)))
}

/// A TLS 1.3 server may send data right after its handshake flight, before it has our
/// Finished (0.5-RTT): it arrives with the flight and is delivered after `TlsEstablished`.
#[test]
fn data_sent_with_the_servers_handshake_flight_is_delivered() {
    let events = first_flight_events(b"half-rtt", false);

    assert!(matches!(events[0], Event::TlsEstablished(_)), "{events:?}");
    assert_eq!(events[1], Event::Data(Bytes::from_static(b"half-rtt")));
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let pki = Pki::with_leaf(Leaf::WrongName);
    let pair = tls_pair(&pki, pki.client_tls());

    assert!(matches!(
        tls_error(&pair),
        TlsError::CertificateNameMismatch { .. }
    ));
}

#[test]
fn an_expired_certificate_is_refused() {
    let pki = Pki::with_leaf(Leaf::Expired);
    let pair = tls_pair(&pki, pki.client_tls());

    assert!(matches!(
        tls_error(&pair),
        TlsError::CertificateExpired { .. }
    ));
}

#[test]
fn the_insecure_opt_in_accepts_any_certificate() {
    let pki = Pki::with_leaf(Leaf::WrongName);
    let config = tls::danger_client_config_accepting_any_certificate(&[]).unwrap();
    let pair = tls_pair(&pki, TlsConfig::new(config));

    assert!(matches!(pair.events()[1], Event::TlsEstablished(_)));
}

#[test]
fn a_handshake_failure_alert_is_reported() {
    let pki = Pki::new();
    let config = tls::client_config(pki.roots(), &[b"imap"]).unwrap();
    let mut pair = Pair::new(base().with_tls(TlsConfig::new(config)));
    pair.request(Request::StartTls);
    pair.server.start_tls(pki.server_config_with_alpn(&[b"h2"]));

    pair.connect();

    assert_eq!(
        tls_error(&pair),
        TlsError::AlertReceived {
            alert: "NoApplicationProtocol".into()
        }
    );
}

#[test]
fn garbage_instead_of_a_server_hello_is_a_corrupt_message() {
    let pki = Pki::new();
    let mut pair = Pair::connected(base().with_tls(pki.client_tls()));
    pair.request(Request::StartTls);

    pair.server.send_raw(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    pair.drive();

    assert!(
        matches!(tls_error(&pair), TlsError::CorruptMessage { .. }),
        "{:?}",
        pair.log.last()
    );
}

#[test]
fn a_garbage_record_after_the_handshake_is_a_corrupt_message() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());

    send_undecryptable(&mut pair);
    pair.drive();

    assert!(matches!(tls_error(&pair), TlsError::CorruptMessage { .. }));
}

#[test]
fn the_handshake_times_out_at_its_exact_deadline() {
    let pki = Pki::new();
    let config = base()
        .with_tls(pki.client_tls())
        .with_tls_handshake_timeout(Duration::from_secs(7));
    let mut pair = Pair::connected(config);
    pair.advance(Duration::from_secs(2));

    pair.request(Request::StartTls);
    assert_eq!(pair.h.deadline(), Some(Duration::from_secs(9)));
    pair.fire();

    assert_eq!(pair.h.elapsed(), Duration::from_secs(9));
    assert_eq!(closed(&pair.log).result, Err(Error::TlsHandshakeTimeout));
}

#[test]
fn start_tls_without_a_tls_config_or_twice_is_refused() {
    let mut pair = Pair::connected(base());
    assert_eq!(
        pair.h.client.start_tls(pair.h.now),
        Err(InvalidInput::NoTlsConfig)
    );

    let pki = Pki::new();
    let mut pair = Pair::connected(base().with_tls(pki.client_tls()));
    pair.h.client.start_tls(pair.h.now).unwrap();
    assert!(matches!(
        pair.h.client.start_tls(pair.h.now),
        Err(InvalidInput::Unexpected {
            input: "StartTls",
            ..
        })
    ));
}

#[test]
fn a_record_counts_as_written_only_when_all_of_it_is() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    let wire_before = pair.server.wire.len();
    pair.write_budget = Some(100);

    pair.request(Request::Send(Bytes::from(vec![7; 1000])));

    assert_eq!(pair.server.wire.len() - wire_before, 100);
    assert_eq!(
        pair.h.client.bytes_written(),
        0,
        "a partial record delivers nothing"
    );
    pair.request(Request::Abort);
    let report = closed(&pair.log);
    assert_eq!(
        (
            report.bytes_accepted,
            report.bytes_written,
            report.bytes_undelivered
        ),
        (1000, 0, 1000)
    );
}

#[test]
fn plaintext_accounting_holds_under_tls() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    let big = Bytes::from(vec![9; 40_000]);

    pair.request(Request::Send(big));
    pair.request(Request::Finish);
    pair.server.send_close_notify();
    pair.drive();

    let report = closed(&pair.log);
    assert_eq!(pair.server.decrypted.len(), 40_000);
    assert_eq!(
        (
            report.bytes_accepted,
            report.bytes_written,
            report.bytes_undelivered
        ),
        (40_000, 40_000, 0)
    );
    assert_eq!(report.wire_bytes_written as usize, pair.server.wire.len());
    assert!(
        report.wire_bytes_written > 40_000 + 3 * 22,
        "three records plus the handshake"
    );
}

#[test]
fn data_before_a_bad_record_in_the_same_read_is_still_delivered() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());

    pair.server.send(b"authentic");
    pair.server.send_raw(&[0x17, 0x03, 0x03, 0x00, 0x20]);
    pair.server.send_raw(&[0u8; 32]);
    pair.drive();

    let events = pair.events();
    let n = events.len();
    assert_eq!(events[n - 2], Event::Data(Bytes::from_static(b"authentic")));
    assert!(matches!(tls_error(&pair), TlsError::CorruptMessage { .. }));
    assert_eq!(closed(&pair.log).bytes_received, 9);
}

#[test]
fn a_drain_deadline_in_an_unfinished_handshake_is_not_a_clean_close() {
    let pki = Pki::new();
    let config = base()
        .with_tls(pki.client_tls())
        .with_drain_timeout(Duration::from_secs(1))
        .with_tls_handshake_timeout(Duration::from_secs(10));
    let mut pair = Pair::new(config);
    pair.request(Request::StartTls);
    pair.request(Request::Finish);
    pair.connect();

    pair.fire();

    assert_eq!(pair.h.elapsed(), Duration::from_secs(1));
    let report = closed(&pair.log);
    assert_eq!(report.result, Err(Error::DrainTimeout));
    assert!(!report.is_clean());
}

/// rustls 0.23 panics in debug builds (its own `debug_assert!`, rustls#959) when a record it
/// cannot accept arrives after our `close_notify`. The core must never drive it there: a
/// garbage record while draining is a typed error, in a debug build too.
#[test]
fn a_garbage_record_after_our_close_notify_is_a_typed_error_not_a_panic() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.request(Request::Finish);
    assert!(pair.server.got_close_notify);

    pair.server.send_raw(b"garbage, not a TLS record");
    pair.drive();

    assert!(
        matches!(tls_error(&pair), TlsError::CorruptMessage { .. }),
        "{:?}",
        pair.log.last()
    );
}

/// The same after our `close_notify`, with a record whose header is well formed but whose
/// contents do not authenticate (what a bit flip on the path makes of a real record).
#[test]
fn a_forged_record_after_our_close_notify_is_a_typed_error_not_a_panic() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.request(Request::Finish);

    send_undecryptable(&mut pair);
    pair.drive();

    assert!(matches!(tls_error(&pair), TlsError::CorruptMessage { .. }));
}

/// A record header split after its first byte, announcing more than TLS allows, after our
/// `close_notify`: refused as soon as the header is whole, not waited for.
#[test]
fn an_oversized_record_header_split_after_our_close_notify_is_refused_at_once() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.request(Request::Finish);

    pair.input(Input::Received(&[0x17]));
    pair.input(Input::Received(&[0x03, 0x03, 0xff, 0xff, 0, 0, 0, 0]));

    match tls_error(&pair) {
        TlsError::CorruptMessage { reason } => {
            assert_eq!(reason, "a record longer than TLS allows")
        }
        other => panic!("{other:?}"),
    }
}

/// Data the server sends after our `close_notify` and before its own is still delivered:
/// the guard above does not cost the drain its data.
#[test]
fn data_after_our_close_notify_is_still_delivered_before_the_peers_close() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.request(Request::Finish);

    pair.server.send(b"late reply");
    pair.server.send_close_notify();
    pair.drive();

    let events = pair.events();
    assert!(events.contains(&Event::Data(Bytes::from_static(b"late reply"))));
    assert_eq!(closed(&pair.log).result, Ok(Ending::Finished));
}

/// A pair speaking TLS from the start whose server may take its keys out of rustls, to send
/// the alerts rustls will not.
fn tls_pair_sending_alerts(pki: &Pki) -> Pair {
    pair_sending_with(pki, &pki.server_config())
}

/// A connected pair whose server, configured as `server` is, may take its keys out of
/// rustls.
fn pair_sending_with(pki: &Pki, server: &rustls::ServerConfig) -> Pair {
    let mut server = server.clone();
    server.enable_secret_extraction = true;
    let mut pair = Pair::new(base().with_tls(pki.client_tls()));
    pair.request(Request::StartTls);
    pair.server.start_tls(std::sync::Arc::new(server));
    pair.connect();
    pair
}

/// A server that gives up with a fatal alert after our `close_notify`: the alert is the
/// ending, by name, and the data before it is delivered.
#[test]
fn a_fatal_alert_after_our_close_notify_ends_the_session_with_that_alert() {
    let pki = Pki::new();
    let mut pair = tls_pair_sending_alerts(&pki);
    pair.request(Request::Finish);
    assert!(pair.server.got_close_notify);

    pair.server.send(b"partial answer");
    pair.server.send_alert(2, 80);
    pair.drive();

    assert!(
        pair.events()
            .contains(&Event::Data(Bytes::from_static(b"partial answer")))
    );
    assert_eq!(
        tls_error(&pair),
        TlsError::AlertReceived {
            alert: "InternalError".into()
        }
    );
}

/// TLS 1.3 makes every alert but `close_notify` and `user_canceled` fatal, whatever level
/// it claims: a "warning" `internal_error` after our `close_notify` ends the session too.
#[test]
fn a_warning_level_alert_other_than_user_canceled_is_still_an_error() {
    let pki = Pki::new();
    let mut pair = tls_pair_sending_alerts(&pki);
    pair.request(Request::Finish);

    pair.server.send_alert(1, 80);
    pair.server.send(b"not for us");
    pair.drive();

    assert!(!pair.events().iter().any(|e| matches!(e, Event::Data(_))));
    assert_eq!(
        tls_error(&pair),
        TlsError::AlertReceived {
            alert: "InternalError".into()
        }
    );
}

/// `user_canceled` (a warning) says the peer is abandoning what it was doing, not the
/// connection: after our `close_notify` it is passed over, and what the server sends after
/// it, then its own `close_notify`, end the session cleanly.
#[test]
fn a_user_canceled_warning_after_our_close_notify_is_passed_over() {
    let pki = Pki::new();
    let mut pair = tls_pair_sending_alerts(&pki);
    pair.request(Request::Finish);

    pair.server.send_alert(1, 90);
    pair.server.send(b"after the warning");
    pair.server.send_close_notify();
    pair.drive();

    assert!(
        pair.events()
            .contains(&Event::Data(Bytes::from_static(b"after the warning")))
    );
    let report = closed(&pair.log);
    assert_eq!(report.result, Ok(Ending::Finished), "{report}");
    assert!(report.peer_closed);
}

/// An ALPN name must be 1 to 255 bytes; an empty one made rustls panic while it built the
/// ClientHello. Refused with a typed error when the configuration is made.
#[test]
fn an_invalid_alpn_name_is_a_typed_error_when_the_config_is_made() {
    let empty = tls::client_config(rustls::RootCertStore::empty(), &[b"h2", b""]);
    let long = [b'x'; 256];
    let too_long = tls::danger_client_config_accepting_any_certificate(&[&long[..]]);

    assert!(matches!(empty, Err(TlsError::InvalidAlpnProtocol { .. })));
    assert!(matches!(
        too_long,
        Err(TlsError::InvalidAlpnProtocol { .. })
    ));
}

/// A configuration built by hand with an empty ALPN name ends the connection with a typed
/// error when TLS starts, instead of a panic inside rustls.
#[test]
fn a_hand_built_config_with_an_empty_alpn_name_fails_the_session_not_the_program() {
    let pki = Pki::new();
    let mut config = (*tls::client_config(pki.roots(), &[]).unwrap()).clone();
    config.alpn_protocols = vec![Vec::new()];
    let tls = TlsConfig::new(std::sync::Arc::new(config));
    let mut pair = Pair::connected(base().with_tls(tls));

    pair.request(Request::StartTls);

    assert!(matches!(
        tls_error(&pair),
        TlsError::InvalidAlpnProtocol { .. }
    ));
}

/// A self-signed certificate marked CA:TRUE, as `openssl req -x509` makes by default, given as
/// the trusted file: accepted when the server presents exactly that certificate, as
/// `openssl s_client -CAfile` and Go accept it.
#[test]
fn a_pinned_self_signed_certificate_is_accepted() {
    let cert = tcpclient_testkit::SelfSigned::new(&["localhost"]);
    let config = tls::client_config_from_pem(cert.pem().as_bytes(), &[]).unwrap();
    let mut pair = Pair::new(base().with_tls(TlsConfig::new(config)));
    pair.request(Request::StartTls);
    pair.server.start_tls(cert.server_config());
    pair.connect();

    pair.send(b"hello");

    assert!(pair.server.tls_established());
    assert_eq!(pair.server.decrypted, b"hello");
}

/// Pinning does not skip the name check.
#[test]
fn a_pinned_self_signed_certificate_for_another_name_is_refused() {
    let cert = tcpclient_testkit::SelfSigned::new(&["localhost"]);
    let config = tls::client_config_from_pem(cert.pem().as_bytes(), &[]).unwrap();
    let other = Destination::new("127.0.0.1", 7).with_server_name(server_name("other.test"));
    let mut pair = Pair::to(other, base().with_tls(TlsConfig::new(config)));
    pair.request(Request::StartTls);
    pair.server.start_tls(cert.server_config());
    pair.connect();

    assert!(matches!(
        tls_error(&pair),
        TlsError::CertificateNameMismatch { .. }
    ));
}

/// A destination with no name to verify the server against (a host that is neither a DNS
/// name nor an address makes one): TLS cannot start, and the report says how to give one.
#[test]
fn tls_without_a_name_to_verify_says_how_to_give_one() {
    let pki = Pki::new();
    assert_eq!(Destination::new("not a name!", 7).server_name, None);
    let mut nameless = Destination::new("127.0.0.1", 7);
    nameless.server_name = None;
    let mut pair = Pair::to(nameless, base().with_tls(pki.client_tls()));
    pair.request(Request::StartTls);
    pair.server.start_tls(pki.server_config());
    pair.connect();

    let error = tls_error(&pair);
    assert!(
        matches!(&error, TlsError::Other { reason } if reason.contains("with_server_name")),
        "{error:?}"
    );
}

/// A server certificate marked as a CA that is not itself trusted (only its issuer is) is
/// still refused, with an error that says what to do.
#[test]
fn a_ca_certificate_used_as_a_server_certificate_says_what_to_do() {
    let pki = Pki::with_ca_leaf(Leaf::Good);
    let config = tls::client_config_from_pem(pki.ca_pem().as_bytes(), &[]).unwrap();
    let mut pair = Pair::new(base().with_tls(TlsConfig::new(config)));
    pair.request(Request::StartTls);
    pair.server.start_tls(pki.server_config());
    pair.connect();

    let error = tls_error(&pair);
    assert_eq!(error, TlsError::CertificateIsCa);
    assert!(
        error.to_string().contains("trust that very certificate"),
        "{error}"
    );
}

/// The ordinary chain still verifies through the same configuration.
#[test]
fn a_ca_file_still_verifies_certificates_it_issued() {
    let pki = Pki::new();
    let config = tls::client_config_from_pem(pki.ca_pem().as_bytes(), &[]).unwrap();
    let mut pair = tls_pair(&pki, TlsConfig::new(config));

    pair.send(b"chained");

    assert_eq!(pair.server.decrypted, b"chained");
}

/// A TLS 1.3 suite and a TLS 1.2 one, for the rules that differ.
fn tls13_suite() -> rustls::SupportedCipherSuite {
    rustls::crypto::ring::cipher_suite::TLS13_AES_128_GCM_SHA256
}

fn tls12_suite() -> rustls::SupportedCipherSuite {
    rustls::crypto::ring::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
}

/// [`pair_under`] whose server may take its keys out of rustls, to seal what rustls will
/// not send.
fn pair_sending_under(pki: &Pki, suite: rustls::SupportedCipherSuite) -> Pair {
    pair_sending_with(pki, &pki.server_config_with_suites(vec![suite]))
}

/// Every cipher suite of ring's provider that a certificate of the test PKI can use.
fn every_suite() -> [rustls::SupportedCipherSuite; 6] {
    use rustls::crypto::ring::cipher_suite as suites;
    [
        suites::TLS13_AES_128_GCM_SHA256,
        suites::TLS13_AES_256_GCM_SHA384,
        suites::TLS13_CHACHA20_POLY1305_SHA256,
        suites::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        suites::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        suites::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    ]
}

/// Hands the client what the server has sent in two reads, the first cut a third of the way
/// in (inside a record).
fn deliver_in_two_reads(pair: &mut Pair) {
    let wire = pair.server.take_outgoing();
    let (first, second) = wire.split_at(wire.len() / 3);
    pair.input(Input::Received(first));
    pair.input(Input::Received(second));
}

/// A connected pair whose server offers only `suite`.
fn pair_under(pki: &Pki, suite: rustls::SupportedCipherSuite) -> Pair {
    let mut pair = Pair::new(base().with_tls(pki.client_tls()));
    pair.request(Request::StartTls);
    pair.server
        .start_tls(pki.server_config_with_suites(vec![suite]));
    pair.connect();
    pair
}

/// After our `close_notify` the core reads the peer's records itself, with the session's
/// keys: every cipher suite of both TLS versions, each record decrypted as rustls would.
#[test]
fn data_after_our_close_notify_is_read_under_every_cipher_suite() {
    let pki = Pki::new();
    for suite in every_suite() {
        let name = format!("{:?}", suite.suite());
        let mut pair = pair_under(&pki, suite);
        pair.request(Request::Finish);
        assert!(pair.server.got_close_notify, "{name}");

        // Several records, one of them split across reads.
        pair.server.send(&[b'a'; 20_000]);
        pair.server.send(b"tail");
        pair.server.send_close_notify();
        deliver_in_two_reads(&mut pair);

        let data = received(&pair);
        assert_eq!(data.len(), 20_004, "{name}");
        assert!(data.ends_with(b"tail"), "{name}");
        let report = closed(&pair.log);
        assert_eq!(report.result, Ok(Ending::Finished), "{name}");
        assert!(report.peer_closed, "{name}");
    }
}

/// Records the core seals itself are read by rustls under every suite, both ways, with
/// several records each way and the server's split across reads.
#[test]
fn data_goes_both_ways_under_every_cipher_suite() {
    let pki = Pki::new();
    for suite in every_suite() {
        let name = format!("{:?}", suite.suite());
        let mut pair = pair_under(&pki, suite);

        let upload: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
        pair.h
            .client
            .send(pair.h.now, Bytes::from(upload.clone()))
            .unwrap();
        pair.send(b"!");
        pair.server.send(&[b'b'; 20_000]);
        deliver_in_two_reads(&mut pair);
        pair.drive();

        assert_eq!(pair.server.tls_error, None, "{name}");
        assert_eq!(pair.server.decrypted.len(), upload.len() + 1, "{name}");
        assert!(pair.server.decrypted.starts_with(&upload), "{name}");
        let received: usize = pair
            .events()
            .iter()
            .map(|e| match e {
                Event::Data(d) => d.len(),
                _ => 0,
            })
            .sum();
        assert_eq!(received, 20_000, "{name}");
    }
}

/// A record the server is half way through when we finish: our `close_notify` and FIN go
/// out at once, and the record's end, arriving later, is still delivered.
#[test]
fn a_record_half_received_when_we_finish_is_still_delivered() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.server.send(&[b'r'; 1000]);
    let record = pair.server.take_outgoing();
    pair.input(Input::Received(&record[..100]));

    pair.request(Request::Finish);
    assert!(pair.server.got_close_notify);
    assert!(pair.server.got_fin);

    pair.input(Input::Received(&record[100..]));
    assert!(
        pair.events()
            .contains(&Event::Data(Bytes::from(vec![b'r'; 1000])))
    );
}

/// The server's `close_notify` followed by stray bytes and its FIN: a clean close.
#[test]
fn stray_bytes_after_the_peers_close_notify_change_nothing() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.server.send(b"last words");
    pair.server.send_close_notify();
    pair.server.send_raw(&[0x17, 0x03, 0x03, 0x01]);
    pair.server_fin();

    let report = closed(&pair.log);
    assert_eq!(report.result, Ok(Ending::PeerClosed));
    assert!(pair.server.got_close_notify && pair.server.got_fin);
}

/// A server that sends resumption tickets after the handshake, read after our
/// `close_notify` (we finished before connecting): the data after them is delivered, and
/// the tickets are kept, so that the next session with the same configuration resumes.
#[test]
fn resumption_tickets_after_our_close_notify_are_kept() {
    let pki = Pki::new();
    let mut server = (*pki.server_config()).clone();
    server.send_tls13_tickets = 2;
    let server = std::sync::Arc::new(server);
    let client = pki.client_tls();
    let mut pair = Pair::new(base().with_tls(client.clone()));
    pair.request(Request::StartTls);
    pair.request(Request::Finish);
    pair.server.start_tls(server.clone());
    pair.connect();
    assert!(pair.server.got_close_notify);

    pair.server.send(b"after the tickets");
    pair.server.send_close_notify();
    pair.drive();

    assert!(
        pair.events()
            .contains(&Event::Data(Bytes::from_static(b"after the tickets")))
    );
    assert_eq!(closed(&pair.log).result, Ok(Ending::Finished));

    let mut next = Pair::new(base().with_tls(client));
    next.request(Request::StartTls);
    next.server.start_tls(server);
    next.connect();
    let resumed = next
        .events()
        .iter()
        .any(|e| matches!(e, Event::TlsEstablished(info) if info.resumed));
    assert!(resumed, "{:?}", next.events());
}

/// The server changing its keys after our `close_notify` is followed, without an answer
/// (we send nothing more): what it sends with its new keys is still delivered.
#[test]
fn a_key_update_after_our_close_notify_is_followed() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.request(Request::Finish);

    pair.server.send(b"before");
    pair.server.update_keys();
    pair.server.send(b"after");
    pair.drive();
    let lengths = record_lengths(&pair.log);
    assert_eq!(
        lengths.last(),
        Some(&(2 + 17)),
        "asked for a key update, we still send nothing after our close_notify: {lengths:?}"
    );
    pair.server.send_close_notify();
    pair.server_fin();
    pair.drive();

    let data = received(&pair);
    assert_eq!(data, b"beforeafter");
    assert_eq!(closed(&pair.log).result, Ok(Ending::Finished));
    let lengths = record_lengths(&pair.log);
    assert_eq!(
        lengths.last(),
        Some(&(2 + 17)),
        "our close_notify is the last record, no KeyUpdate after it: {lengths:?}"
    );
}

#[test]
fn tls_info_is_unknown_while_the_handshake_is_under_way() {
    let pki = Pki::new();
    let mut h = tcpclient_testkit::Harness::new(local(), base().with_tls(pki.client_tls()));
    h.outputs();
    h.request(Request::StartTls);

    let outputs = h.input(Input::Connected(tcpclient_core::AttemptId(0)));

    assert!(!transmits(&outputs).is_empty(), "the ClientHello went out");
    assert!(h.client.tls_info().is_none(), "nothing is negotiated yet");
}

#[test]
fn bulk_data_under_tls_goes_out_one_sealed_record_per_transmit() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.h
        .client
        .send(pair.h.now, Bytes::from(vec![b'x'; 100 * 1024]))
        .unwrap();

    let outputs = pair.h.outputs();

    // Type and tag add 17 bytes to the plaintext, the header 5.
    let record = 16 * 1024 + 22;
    let sizes: Vec<usize> = transmits(&outputs).iter().map(|t| t.len()).collect();
    assert_eq!(
        sizes,
        [
            record,
            record,
            record,
            record,
            record,
            record,
            4 * 1024 + 22
        ],
        "each record is handed out as sealed, never copied into a larger buffer"
    );
}

#[test]
fn a_small_send_and_a_large_one_fill_each_record_before_starting_the_next() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    for size in [10, 20 * 1024] {
        let data = Bytes::from(vec![b'x'; size]);
        pair.h.client.send(pair.h.now, data).unwrap();
    }

    let outputs = pair.h.outputs();

    let mut wire: Vec<u8> = transmits(&outputs)
        .iter()
        .flat_map(|b| b.to_vec())
        .collect();
    let mut records = Vec::new();
    while wire.len() >= 5 {
        let len = u16::from_be_bytes([wire[3], wire[4]]) as usize;
        records.push(len);
        wire.drain(..5 + len);
    }
    assert!(
        wire.is_empty(),
        "whole records only: {} bytes left",
        wire.len()
    );
    assert_eq!(
        records,
        [16 * 1024 + 17, 10 + 20 * 1024 - 16 * 1024 + 17],
        "a full record of 16 KiB (type and tag add 17), then the rest"
    );
}

#[test]
fn a_tcp_eof_after_close_notify_on_a_half_open_connection_is_clean() {
    let pki = Pki::new();
    let config = base()
        .with_tls(pki.client_tls())
        .with_on_peer_eof(tcpclient_core::OnPeerEof::KeepWriting);
    let mut pair = Pair::new(config);
    pair.request(Request::StartTls);
    pair.server.start_tls(pki.server_config());
    pair.connect();

    pair.server.send_close_notify();
    pair.drive();
    pair.server_fin();

    assert!(
        !pair.h.client.is_closed(),
        "the peer's end, cleanly: we may still write"
    );
    pair.send(b"last words");
    pair.request(Request::Finish);
    assert_eq!(pair.server.decrypted, b"last words");
    assert_eq!(closed(&pair.log).result, Ok(Ending::Finished));
}

/// After our `close_notify` the core assembles the peer's records itself: a record that
/// arrives a byte at a time, header included, is taken whole.
#[test]
fn data_after_our_close_notify_arriving_a_byte_at_a_time_is_still_delivered() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.request(Request::Finish);
    pair.server.send(b"late reply");
    pair.server.send_close_notify();

    let mut events = Vec::new();
    for byte in pair.server.take_outgoing() {
        pair.h
            .client
            .handle_input(pair.h.now, Input::Received(&[byte]))
            .unwrap();
        events.extend(pair.h.outputs());
    }

    assert!(
        events.contains(&Output::Event(Event::Data(Bytes::from_static(
            b"late reply"
        )))),
        "{events:?}"
    );
}

/// The server changes its keys mid-session and asks us to change ours (rustls's
/// `refresh_traffic_keys` asks): what it sends after is read with its new keys, and what we
/// send after, sealed with ours, is read by the server, so our KeyUpdate reached it first.
#[test]
fn a_key_update_from_the_server_is_followed_both_ways() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.send(b"before");
    pair.server.send(b"before");
    pair.drive();

    pair.server.update_keys();
    pair.server.send(b"after");
    pair.drive();
    let lengths = record_lengths(&pair.log);
    assert_eq!(
        lengths.last(),
        Some(&22),
        "our KeyUpdate goes out at once, not with the next data: {lengths:?}"
    );
    pair.send(b"after it");
    pair.drive();

    let data: Vec<Event> = pair
        .events()
        .into_iter()
        .filter(|e| matches!(e, Event::Data(_)))
        .collect();
    assert_eq!(
        data,
        [
            Event::Data(Bytes::from_static(b"before")),
            Event::Data(Bytes::from_static(b"after"))
        ]
    );
    assert_eq!(pair.server.decrypted, b"beforeafter it");
    assert_eq!(pair.server.tls_error, None);
    // The client's records after the handshake, by payload length: our KeyUpdate (22: the
    // 5-byte message, its type, the tag) went between the two data records.
    let lengths = record_lengths(&pair.log);
    assert_eq!(
        lengths[lengths.len() - 3..],
        [6 + 17, 22, 8 + 17],
        "{lengths:?}"
    );
}

/// The payload lengths of the records in everything the client sent.
fn record_lengths(log: &[Output]) -> Vec<usize> {
    let mut wire: Vec<u8> = transmits(log).iter().flat_map(|b| b.to_vec()).collect();
    let mut lengths = Vec::new();
    while wire.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([wire[3], wire[4]]));
        lengths.push(len);
        wire.drain(..5 + len);
    }
    lengths
}

/// `suite` with its keys allowed to seal only `limit` records: the test-only way to reach
/// the confidentiality limit, which a real suite puts millions of records away.
fn worn(suite: rustls::SupportedCipherSuite, limit: u64) -> rustls::SupportedCipherSuite {
    let common = |common: &rustls::CipherSuiteCommon| rustls::CipherSuiteCommon {
        suite: common.suite,
        hash_provider: common.hash_provider,
        confidentiality_limit: limit,
    };
    match suite {
        rustls::SupportedCipherSuite::Tls13(suite) => {
            rustls::SupportedCipherSuite::Tls13(Box::leak(Box::new(rustls::Tls13CipherSuite {
                common: common(&suite.common),
                hkdf_provider: suite.hkdf_provider,
                aead_alg: suite.aead_alg,
                quic: suite.quic,
            })))
        }
        rustls::SupportedCipherSuite::Tls12(suite) => {
            rustls::SupportedCipherSuite::Tls12(Box::leak(Box::new(rustls::Tls12CipherSuite {
                common: common(&suite.common),
                prf_provider: suite.prf_provider,
                kx: suite.kx,
                sign: suite.sign,
                aead_alg: suite.aead_alg,
            })))
        }
    }
}

/// A connected pair whose client has only `suite` (worn, say), and whose server has the
/// real one and may take its keys out of rustls.
fn pair_with_client_suite(pki: &Pki, suite: rustls::SupportedCipherSuite) -> Pair {
    let provider = rustls::crypto::CryptoProvider {
        cipher_suites: vec![suite],
        ..(*tls::default_provider()).clone()
    };
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(pki.roots())
        .with_no_client_auth();
    let tls = TlsConfig::new(std::sync::Arc::new(config));
    let mut server = (*pki.server_config_with_suites(vec![suite])).clone();
    server.enable_secret_extraction = true;
    let mut pair = Pair::new(base().with_tls(tls));
    pair.request(Request::StartTls);
    pair.server.start_tls(std::sync::Arc::new(server));
    pair.connect();
    pair
}

/// A cipher suite whose keys may seal only `limit` records: the client must change its key
/// (a TLS 1.3 KeyUpdate) before each `limit`-th record, and the server must follow.
#[test]
fn the_sending_key_changes_before_the_suites_confidentiality_limit() {
    let pki = Pki::new();
    let mut pair = pair_with_client_suite(&pki, worn(tls13_suite(), 2));

    let message = vec![b'k'; 40 * 1024];
    pair.h
        .client
        .send(pair.h.now, Bytes::from(message.clone()))
        .unwrap();
    pair.drive();
    pair.send(b"!");
    pair.drive();

    assert_eq!(pair.server.tls_error, None);
    assert_eq!(pair.server.decrypted.len(), message.len() + 1);
    assert!(pair.server.decrypted.starts_with(&message));
    // Every record the client sent, by its payload length. A sealed KeyUpdate carries 22
    // (the 5-byte message, its type, the tag); data records 17 more than their plaintext.
    let lengths = record_lengths(&pair.log);
    let record = 16 * 1024 + 17;
    assert_eq!(
        lengths[lengths.len() - 7..],
        [record, 22, record, 22, 8 * 1024 + 17, 22, 1 + 17],
        "two records per key: one of data, then the key update: {lengths:?}"
    );
}

/// TLS 1.2 has no key update: at the confidentiality limit the session ends, with our
/// `close_notify` in the last record the key may seal, as rustls ends it. What was sealed
/// before it arrives; the rest is handed back.
#[test]
fn under_tls_1_2_the_confidentiality_limit_ends_the_session_with_close_notify() {
    let pki = Pki::new();
    // Our Finished is record 0; data may take records 1 and 2, the close_notify record 3.
    let mut pair = pair_with_client_suite(&pki, worn(tls12_suite(), 4));
    // The server takes its keys out of rustls, to read the alert's level too.
    pair.server
        .send_sealed(rustls::ContentType::ApplicationData, b"");
    pair.drive();
    for _ in 0..3 {
        pair.send(b"record");
        pair.drive();
    }

    assert!(
        matches!(tls_error(&pair), TlsError::Other { ref reason } if reason.contains("confidentiality limit")),
        "{:?}",
        closed(&pair.log).result
    );
    assert_eq!(pair.server.decrypted, b"recordrecord");
    assert_eq!(pair.server.alerts, [(1, AlertDescription::CloseNotify)]);
    assert!(pair.server.got_close_notify);
    let report = closed(&pair.log);
    assert_eq!(
        report.tls_alert_sent,
        Some(AlertSent::Named(AlertDescription::CloseNotify))
    );
    assert_eq!(report.bytes_undelivered, 6, "{report}");
}

/// The `user_canceled` alert's description.
const USER_CANCELED: u8 = 90;

/// The default provider's key exchange: the X25519MLKEM768 post-quantum hybrid against a
/// server that offers only it, and X25519 against one that has no post-quantum group, in
/// one round trip either way (the client sends a key share for each).
#[cfg(feature = "aws-lc-rs")]
#[test]
fn the_post_quantum_hybrid_is_chosen_where_offered_and_x25519_where_not() {
    use rustls::NamedGroup;
    let pki = Pki::new();
    for (offered, chosen) in [
        (NamedGroup::X25519MLKEM768, NamedGroup::X25519MLKEM768),
        (NamedGroup::X25519, NamedGroup::X25519),
    ] {
        let mut pair = Pair::new(base().with_tls(pki.client_tls()));
        pair.request(Request::StartTls);
        pair.server
            .start_tls(pki.server_config_with_groups(&[offered]));
        pair.connect();
        pair.send(b"hello");

        let info = pair
            .events()
            .into_iter()
            .find_map(|e| match e {
                Event::TlsEstablished(info) => Some(info),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{offered:?}: no handshake in {:?}", pair.events()));
        assert_eq!(info.key_exchange_group, Some(chosen));
        assert_eq!(pair.server.decrypted, b"hello", "{offered:?}");
        let client_flights = transmits(&pair.log).len();
        assert!(
            client_flights <= 3,
            "{offered:?}: no retry: {client_flights} transmits"
        );
    }
}

/// A HelloRequest, the empty handshake message of type 0.
const HELLO_REQUEST: [u8; 4] = [0, 0, 0, 0];

/// Under TLS 1.2 a renegotiation request is declined with a `no_renegotiation` warning
/// (RFC 5246 section 7.2.2), and the session goes on. A second one is a flood (rustls
/// refuses it too).
#[test]
fn under_tls_1_2_one_hello_request_is_declined_and_a_second_refused() {
    let pki = Pki::new();
    let mut pair = pair_sending_under(&pki, tls12_suite());
    pair.server
        .send_sealed(rustls::ContentType::Handshake, &HELLO_REQUEST);
    pair.server.send(b"still here");
    pair.drive();

    assert_eq!(received(&pair), b"still here");
    assert_ne!(pair.h.client.phase(), Phase::Closed);
    assert_eq!(pair.server.alerts, [(1, AlertDescription::NoRenegotiation)]);

    pair.server
        .send_sealed(rustls::ContentType::Handshake, &HELLO_REQUEST);
    pair.drive();
    assert_eq!(
        tls_error(&pair),
        TlsError::Flood(Flood::RenegotiationRequests)
    );
}

/// TLS 1.3 has no HelloRequest (RFC 8446): one is an unexpected message, as rustls and
/// OpenSSL say, and the data behind it is not delivered.
#[test]
fn under_tls_1_3_a_hello_request_is_an_unexpected_message() {
    let pki = Pki::new();
    let mut pair = tls_pair_sending_alerts(&pki);
    pair.server
        .send_sealed(rustls::ContentType::Handshake, &HELLO_REQUEST);
    pair.server.send(b"behind it");
    pair.drive();

    assert!(
        matches!(tls_error(&pair), TlsError::CorruptMessage { .. }),
        "{:?}",
        tls_error(&pair)
    );
    assert_eq!(received(&pair), b"");
}

/// Empty records are passed over up to rustls's limit in a row, which data starts over;
/// one more is a flood. Under both versions.
#[test]
fn empty_records_are_passed_over_up_to_the_limit_in_a_row_and_one_more_is_refused() {
    let pki = Pki::new();
    for suite in [tls13_suite(), tls12_suite()] {
        let name = format!("{:?}", suite.suite());
        let mut pair = pair_sending_under(&pki, suite);
        let limit = Flood::EmptyRecords.limit();
        for _ in 0..2 {
            for _ in 0..limit {
                pair.server
                    .send_sealed(rustls::ContentType::ApplicationData, b"");
            }
            pair.server
                .send_sealed(rustls::ContentType::ApplicationData, b"+");
        }
        pair.drive();
        assert_eq!(received(&pair), b"++", "{name}");
        assert_ne!(pair.h.client.phase(), Phase::Closed, "{name}");

        for _ in 0..=limit {
            pair.server
                .send_sealed(rustls::ContentType::ApplicationData, b"");
        }
        pair.drive();
        assert_eq!(
            tls_error(&pair),
            TlsError::Flood(Flood::EmptyRecords),
            "{name}"
        );
    }
}

/// `user_canceled`, the one warning TLS 1.3 lets through, is passed over up to rustls's
/// limit over the session, data or not between; one more is a flood.
#[test]
fn warning_alerts_are_passed_over_up_to_the_limit_and_one_more_is_refused() {
    let pki = Pki::new();
    let mut pair = tls_pair_sending_alerts(&pki);
    for _ in 0..Flood::WarningAlerts.limit() {
        pair.server.send_alert(1, USER_CANCELED);
        pair.server.send(b"+");
    }
    pair.drive();
    assert_eq!(received(&pair), b"++++");
    assert_ne!(pair.h.client.phase(), Phase::Closed);

    pair.server.send_alert(1, USER_CANCELED);
    pair.drive();
    assert_eq!(tls_error(&pair), TlsError::Flood(Flood::WarningAlerts));
}

/// Key update requests are answered (once while we are silent) up to rustls's limit
/// without application data between; data starts the count over; one more is a flood.
#[test]
fn key_updates_without_data_between_are_taken_up_to_the_limit() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    let limit = Flood::KeyUpdates.limit();
    for _ in 0..limit {
        pair.server.update_keys();
    }
    pair.server.send(b"+");
    for _ in 0..limit {
        pair.server.update_keys();
    }
    pair.server.send(b"+");
    pair.drive();
    assert_eq!(received(&pair), b"++");
    assert_ne!(pair.h.client.phase(), Phase::Closed);

    for _ in 0..=limit {
        pair.server.update_keys();
    }
    pair.drive();
    assert_eq!(tls_error(&pair), TlsError::Flood(Flood::KeyUpdates));
}

/// An alert whose level is neither warning (1) nor fatal (2) is malformed, even when it
/// names `close_notify`: not a clean end.
#[test]
fn an_alert_of_unknown_level_is_malformed_not_a_close() {
    let pki = Pki::new();
    let mut pair = tls_pair_sending_alerts(&pki);
    pair.server.send_alert(3, 0);
    pair.drive();

    assert!(
        matches!(tls_error(&pair), TlsError::CorruptMessage { .. }),
        "{:?}",
        closed(&pair.log).result
    );
}

/// A server that says its piece and closes right after its handshake flight (0.5-RTT data,
/// then `close_notify`, all in one read with its Finished): the session is established, the
/// data delivered, and the close is the peer's clean end, not an error.
#[test]
fn a_close_notify_in_the_same_read_as_the_servers_finished_is_a_clean_end() {
    let events = first_flight_events(b"421 busy\r\n", true);

    assert!(matches!(events[0], Event::TlsEstablished(_)), "{events:?}");
    assert_eq!(events[1], Event::Data(Bytes::from_static(b"421 busy\r\n")));
    assert_eq!(events[2], Event::PeerClosed, "{events:?}");
}

/// Two key update requests while we are silent get one answer (RFC 8446 section 4.6.3),
/// and the server still reads what we send after it.
#[test]
fn two_key_updates_while_we_are_silent_get_one_answer() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.server.update_keys();
    pair.server.update_keys();
    pair.server.send(b"twice");
    pair.drive();
    pair.send(b"after it");
    pair.drive();

    assert_eq!(received(&pair), b"twice");
    assert_eq!(pair.server.decrypted, b"after it");
    assert_eq!(pair.server.tls_error, None);
    let lengths = record_lengths(&pair.log);
    assert_eq!(lengths[lengths.len() - 2..], [22, 8 + 17], "{lengths:?}");
    assert_eq!(
        lengths.iter().filter(|&&l| l == 22).count(),
        1,
        "{lengths:?}"
    );
}

/// Handshake messages after the handshake that break the record rules rustls enforces: a
/// key update not at the end of its record, a record of another type inside a handshake
/// message, a renegotiation request with a body. Each is a corrupt message.
#[test]
fn post_handshake_messages_that_break_the_record_rules_are_corrupt() {
    let pki = Pki::new();
    let cases: [&[&[u8]]; 3] = [
        &[&[24, 0, 0, 1, 0, 4, 0, 0, 9]],
        &[&[4, 0, 0, 10, 1, 2], b"data"],
        &[&[0, 0, 0, 1, 9]],
    ];
    for (i, records) in cases.into_iter().enumerate() {
        let mut pair = tls_pair_sending_alerts(&pki);
        for (n, payload) in records.iter().enumerate() {
            let typ = if n == 0 {
                rustls::ContentType::Handshake
            } else {
                rustls::ContentType::ApplicationData
            };
            pair.server.send_sealed(typ, payload);
        }
        pair.drive();
        assert!(
            matches!(tls_error(&pair), TlsError::CorruptMessage { .. }),
            "case {i}: {:?}",
            tls_error(&pair)
        );
    }
}

/// The configuration's `max_fragment_size` bounds the records the core seals, as it bounds
/// rustls's: here 1 KiB of plaintext per record.
#[test]
fn the_configurations_max_fragment_size_bounds_every_record() {
    let pki = Pki::new();
    let mut config = (**pki.client_tls().client_config()).clone();
    config.max_fragment_size = Some(1024 + 5);
    let tls = TlsConfig::new(std::sync::Arc::new(config));
    let mut pair = tls_pair(&pki, tls);
    pair.h
        .client
        .send(pair.h.now, Bytes::from(vec![b'f'; 3000]))
        .unwrap();
    pair.drive();

    assert_eq!(pair.server.decrypted.len(), 3000);
    let lengths = record_lengths(&pair.log);
    assert_eq!(
        lengths[lengths.len() - 3..],
        [1024 + 17, 1024 + 17, 952 + 17],
        "{lengths:?}"
    );
}

// ---- fatal alerts: what the server is told when the session fails ----

/// The server sends a record of the right shape that no key sealed.
fn send_undecryptable(pair: &mut Pair) {
    pair.server
        .send_raw(&[0x17, 0x03, 0x03, 0x00, 0x20, 0xde, 0xad, 0xbe, 0xef]);
    pair.server.send_raw(&[0u8; 28]);
}

/// The server read `alert` from the client, and the close report says it went.
fn assert_alert_read_and_reported(pair: &Pair, alert: AlertDescription) {
    assert_eq!(pair.server.alert_received(), Some(alert));
    assert_eq!(alert_sent(pair), Some(AlertSent::Named(alert)));
}

/// What the client told the server before closing, as its close report says.
fn alert_sent(pair: &Pair) -> Option<AlertSent> {
    closed(&pair.log).tls_alert_sent
}

/// The outputs from the alert on: the alert's record, then (once written) the close.
fn last_transmit_then_close(pair: &Pair) -> (Bytes, Vec<&Output>) {
    let at = pair
        .log
        .iter()
        .rposition(|o| matches!(o, Output::Transmit(_)))
        .expect("a transmit");
    let Output::Transmit(alert) = &pair.log[at] else {
        unreachable!()
    };
    (alert.clone(), pair.log[at + 1..].iter().collect())
}

/// A record that fails to decrypt ends the session with `bad_record_mac` (RFC 8446
/// section 5.2: MUST), written before the socket closes: the server's rustls reads it.
#[test]
fn a_record_that_fails_to_decrypt_is_answered_with_bad_record_mac() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());

    send_undecryptable(&mut pair);
    pair.drive();

    assert!(matches!(tls_error(&pair), TlsError::CorruptMessage { .. }));
    assert_alert_read_and_reported(&pair, AlertDescription::BadRecordMac);
    let (alert, after) = last_transmit_then_close(&pair);
    assert_eq!(alert.len(), 5 + 2 + 1 + 16, "one sealed alert record");
    assert!(
        matches!(after[..], [Output::Close | Output::Reset, ..]),
        "{after:?}"
    );
    assert!(
        closed(&pair.log)
            .to_string()
            .contains("sent the server the TLS alert BadRecordMac"),
        "{}",
        closed(&pair.log)
    );
}

/// Each record error gets the alert RFC 8446 section 6.2 (and rustls) names for it, under
/// TLS 1.3 and TLS 1.2 alike; the server reads it with its own keys.
#[test]
fn each_record_error_is_answered_with_the_alert_the_rfc_names() {
    use rustls::ContentType::{Alert, ApplicationData, Handshake};
    let pki = Pki::new();
    let oversized = vec![b'x'; 16 * 1024 + 1];
    let cases: [(&str, rustls::ContentType, &[u8], AlertDescription); 5] = [
        (
            "a plaintext longer than 2^14",
            ApplicationData,
            &oversized,
            AlertDescription::RecordOverflow,
        ),
        (
            "a three-byte alert",
            Alert,
            &[2, 80, 0],
            AlertDescription::DecodeError,
        ),
        (
            "an alert of level 3",
            Alert,
            &[3, 80],
            AlertDescription::IllegalParameter,
        ),
        (
            "a server hello after the handshake",
            Handshake,
            &[2, 0, 0, 0],
            AlertDescription::UnexpectedMessage,
        ),
        (
            "a heartbeat",
            rustls::ContentType::Heartbeat,
            &[1, 0, 0],
            AlertDescription::DecodeError,
        ),
    ];
    for suite in [tls13_suite(), tls12_suite()] {
        for (what, typ, payload, expected) in &cases {
            let name = format!("{what} under {:?}", suite.suite());
            let mut pair = pair_sending_under(&pki, suite);
            pair.server.send_sealed(*typ, payload);
            pair.drive();
            assert_eq!(
                pair.server.alerts,
                [(2, *expected)],
                "{name}: {:?}",
                closed(&pair.log).result
            );
            assert_eq!(
                alert_sent(&pair),
                Some(AlertSent::Named(*expected)),
                "{name}"
            );
        }
    }
}

/// What TLS 1.2 does not have after its handshake, as rustls's `ExpectTraffic` refuses it:
/// a key update, a ticket (TLS 1.2 sends its ticket inside the handshake); and what TLS 1.3
/// does not have, a HelloRequest. Each an unexpected message.
#[test]
fn each_version_refuses_the_messages_the_other_has() {
    let pki = Pki::new();
    let key_update = [24, 0, 0, 1, 0];
    let ticket = [4, 0, 0, 6, 0, 0, 0, 0, 0, 0];
    for (suite, message) in [
        (tls12_suite(), &key_update[..]),
        (tls12_suite(), &ticket[..]),
        (tls13_suite(), &HELLO_REQUEST[..]),
    ] {
        let mut pair = pair_sending_under(&pki, suite);
        pair.server
            .send_sealed(rustls::ContentType::Handshake, message);
        pair.drive();
        assert_eq!(
            pair.server.alerts,
            [(2, AlertDescription::UnexpectedMessage)],
            "{message:?} under {:?}",
            suite.suite()
        );
    }
}

/// A change_cipher_spec is never encrypted: after the handshake a well-formed one is an
/// unexpected message and any other a decode error, under either version (one sealed
/// under TLS 1.3 hides inside application data, and rustls refuses that as unexpected).
#[test]
fn a_change_cipher_spec_after_the_handshake_is_unexpected_or_malformed() {
    use rustls::ContentType::ChangeCipherSpec;
    let pki = Pki::new();
    for suite in [tls13_suite(), tls12_suite()] {
        for (record, expected) in [
            (
                &[20, 3, 3, 0, 1, 1][..],
                AlertDescription::UnexpectedMessage,
            ),
            (&[20, 3, 3, 0, 1, 2][..], AlertDescription::DecodeError),
        ] {
            let mut pair = pair_sending_under(&pki, suite);
            pair.server.send_raw(record);
            pair.drive();
            assert_eq!(
                alert_sent(&pair),
                Some(AlertSent::Named(expected)),
                "{record:?}"
            );
        }
    }
    let mut pair = pair_sending_under(&pki, tls13_suite());
    pair.server.send_sealed(ChangeCipherSpec, &[1]);
    pair.drive();
    assert_eq!(
        alert_sent(&pair),
        Some(AlertSent::Named(AlertDescription::UnexpectedMessage))
    );
}

/// A record header rustls's deframer refuses is a decode error, in the handshake and after.
#[test]
fn a_bad_record_header_is_answered_with_decode_error() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.server.send_raw(&[0x17, 0x02, 0x00, 0x00, 0x05]);
    pair.drive();

    assert_alert_read_and_reported(&pair, AlertDescription::DecodeError);
}

/// A fatal alert from the server ends the session at both ends: nothing answers it. Nor
/// does anything follow our `close_notify` (rustls#959 is rustls asserting it never would).
#[test]
fn no_alert_answers_the_servers_fatal_alert_or_follows_our_close_notify() {
    let pki = Pki::new();
    let mut pair = tls_pair_sending_alerts(&pki);
    pair.server.send_alert(2, 80);
    pair.drive();
    assert_eq!(pair.server.alerts, []);
    assert_eq!(alert_sent(&pair), None);

    let mut pair = tls_pair_sending_alerts(&pki);
    pair.request(Request::Finish);
    pair.server
        .send_sealed(rustls::ContentType::ApplicationData, &[0; 16 * 1024 + 1]);
    pair.drive();
    assert!(matches!(tls_error(&pair), TlsError::CorruptMessage { .. }));
    assert!(pair.server.got_close_notify);
    assert_eq!(pair.server.alerts, []);
    assert_eq!(alert_sent(&pair), None);
}

/// The handshake sends the alert rustls queues: in plaintext before the server's hello,
/// where the record itself names it.
#[test]
fn garbage_instead_of_a_server_hello_is_answered_with_a_plaintext_decode_error() {
    let pki = Pki::new();
    let mut pair = Pair::connected(base().with_tls(pki.client_tls()));
    pair.request(Request::StartTls);

    pair.server.send_raw(b"HTTP/1.1 400 Bad Request\r\n\r\n");
    pair.drive();

    assert_plaintext_alert(&pair, AlertDescription::DecodeError);
}

/// The client's last bytes are `alert` in plaintext, and the close report names it.
fn assert_plaintext_alert(pair: &Pair, alert: AlertDescription) {
    let wire = &pair.server.wire;
    assert!(
        wire.ends_with(&[21, 3, 3, 0, 2, 2, u8::from(alert)]),
        "{:?}",
        &wire[wire.len().saturating_sub(7)..]
    );
    assert_eq!(alert_sent(pair), Some(AlertSent::Named(alert)));
}

/// A server hello choosing a suite the client never offered: rustls answers with a plaintext
/// `handshake_failure` (its error, `PeerMisbehaved`, does not say which alert), and the
/// report names it from the record.
#[test]
fn a_plaintext_handshake_alert_is_named_from_its_record() {
    let pki = Pki::new();
    let mut pair = Pair::connected(base().with_tls(pki.client_tls()));
    pair.request(Request::StartTls);
    let mut server = rustls::ServerConnection::new(pki.server_config()).unwrap();
    server.read_tls(&mut &pair.server.wire[..]).unwrap();
    server.process_new_packets().unwrap();
    let mut flight = Vec::new();
    server.write_tls(&mut flight).unwrap();
    // Header (5), handshake header (4), version (2), random (32), session id (1 + 32).
    let suite_at = 5 + 4 + 2 + 32 + 1 + usize::from(flight[5 + 4 + 2 + 32]);
    flight[suite_at..suite_at + 2].copy_from_slice(&[0x00, 0x2f]);

    pair.server.send_raw(&flight);
    pair.drive();

    assert_plaintext_alert(&pair, AlertDescription::HandshakeFailure);
}

/// After the server's hello (TLS 1.3) rustls seals its alert under the handshake's keys;
/// for a certificate the error names it, and the server's rustls reads the same. (A chain
/// from another CA of the same name fails its signature, which rustls answers with
/// `decrypt_error`.)
#[test]
fn an_untrusted_certificate_is_answered_with_the_alert_the_server_reads() {
    let pki = Pki::new();
    let other = Pki::new();
    let pair = tls_pair(&pki, other.client_tls());

    assert!(matches!(
        tls_error(&pair),
        TlsError::CertificateNotTrusted { .. }
    ));
    assert_alert_read_and_reported(&pair, AlertDescription::DecryptError);
}

/// A socket that takes nothing: the alert gets one second to be written, then the
/// connection closes without it, and the report does not claim it went.
#[test]
fn an_alert_that_cannot_be_written_in_a_second_is_given_up_and_not_reported_sent() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    pair.write_budget = Some(0);
    send_undecryptable(&mut pair);
    pair.drive();
    assert!(!pair.h.client.is_closed());
    assert_eq!(pair.h.client.phase(), Phase::Draining);
    let failed_at = pair.h.now;

    let deadline = pair.h.client.poll_timeout().expect("the alert's deadline");
    assert_eq!(deadline - failed_at, Duration::from_secs(1));
    pair.h.now = deadline;
    pair.input(Input::Timeout);
    pair.drive();
    for _ in 0..3 {
        if pair.h.client.is_closed() {
            break;
        }
        if let Some(next) = pair.h.client.poll_timeout() {
            pair.h.now = next;
            pair.input(Input::Timeout);
        }
    }

    assert!(matches!(tls_error(&pair), TlsError::CorruptMessage { .. }));
    assert_eq!(alert_sent(&pair), None);
    assert_eq!(pair.server.alert_received(), None);
    assert!(!pair.h.client.is_closing(), "closed, no longer closing");
}

/// While the alert waits to be written the socket is still open: the driver's reports are
/// checked as on an open connection (data is taken and not delivered, an EOF once), and the
/// application's sends are refused.
#[test]
fn while_the_alert_waits_the_connection_takes_reports_as_an_open_one() {
    let pki = Pki::new();
    let mut pair = tls_pair(&pki, pki.client_tls());
    assert!(!pair.h.client.is_closing());
    pair.write_budget = Some(0);
    send_undecryptable(&mut pair);
    pair.drive();
    assert_eq!(pair.h.client.phase(), Phase::Draining);
    assert!(pair.h.client.is_closing(), "the end is decided");
    let events = pair.events().len();
    let now = pair.h.now;
    let client = &mut pair.h.client;

    assert_eq!(client.handle_input(now, Input::Received(b"more")), Ok(()));
    assert_eq!(client.handle_input(now, Input::PeerEof), Ok(()));
    assert!(client.handle_input(now, Input::PeerEof).is_err());
    assert!(client.handle_input(now, Input::Received(b"after")).is_err());
    assert!(client.send(now, Bytes::from_static(b"no")).is_err());
    pair.drive();
    assert_eq!(pair.events().len(), events, "nothing delivered or emitted");
    assert!(!pair.h.client.is_closed());
}

/// Under TLS 1.2 a warning alert is passed over (up to the flood limit), as rustls does;
/// under TLS 1.3 every warning but `user_canceled` is fatal, answered with `decode_error`.
#[test]
fn a_warning_alert_is_passed_over_under_tls_1_2_and_a_decode_error_under_tls_1_3() {
    let pki = Pki::new();
    let no_renegotiation = 100;
    let mut pair = pair_sending_under(&pki, tls12_suite());
    pair.server.send_alert(1, no_renegotiation);
    pair.server.send(b"still here");
    pair.drive();
    assert_eq!(received(&pair), b"still here");
    assert_ne!(pair.h.client.phase(), Phase::Closed);

    let mut pair = pair_sending_under(&pki, tls13_suite());
    pair.server.send_alert(1, no_renegotiation);
    pair.drive();
    assert_eq!(
        tls_error(&pair),
        TlsError::AlertReceived {
            alert: "NoRenegotiation".into()
        }
    );
    assert_eq!(pair.server.alerts, [(2, AlertDescription::DecodeError)]);
}
