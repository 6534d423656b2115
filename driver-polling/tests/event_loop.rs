//! The polling driver over real sockets on 127.0.0.1: every loop bounded in count and time.

mod common;

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use socket2::{Domain, Socket, Type};
use tcpclient_core::{Config, Ending, Error, Event, InvalidInput, OnPeerEof, Phase, TlsError};
use tcpclient_polling::{EventLoop, Runtime};
use tcpclient_testkit::Pki;

const LIMIT: Duration = Duration::from_secs(20);

/// The policy the tests start from: the defaults.
fn config() -> Config {
    Config::new()
}

fn data(events: &[Event]) -> Vec<u8> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Data(d) => Some(d.to_vec()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn only_events(events: Vec<(tcpclient_polling::ConnId, Event)>) -> Vec<Event> {
    events.into_iter().map(|(_, e)| e).collect()
}

#[test]
fn echo() {
    let addr = echo_server();
    let mut event_loop = EventLoop::new().unwrap();
    let id = event_loop.connect(addr, config());
    let message = Bytes::from(vec![b'e'; 300_000]);
    event_loop.send(id, message.clone()).unwrap();
    event_loop.finish(id).unwrap();

    let events = only_events(run_to_end(&mut event_loop, LIMIT));

    assert_eq!(events[0], Event::Connected(addr));
    assert_eq!(data(&events), message);
    let report = report(&events);
    assert_eq!(report.result, Ok(Ending::Finished));
    assert_eq!(
        (report.bytes_written, report.bytes_received),
        (300_000, 300_000)
    );
    assert!(report.peer_closed);
}

#[test]
fn a_turn_waits_though_the_application_left_events_unread() {
    // A server that accepts (in its backlog) and never reads or writes: nothing happens on
    // the connection once it is up.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut event_loop = EventLoop::new().unwrap();
    let id = event_loop.connect(addr, config());
    let started = Instant::now();
    while event_loop
        .client(id)
        .is_some_and(|c| c.phase() != Phase::Connected)
        && started.elapsed() < LIMIT
    {
        event_loop.turn(Some(Duration::from_millis(10))).unwrap();
    }
    // `Connected` waits unread. A turn still waits for its timeout: a loop that only sends
    // and turns, leaving its events, must not spin.
    let (mut turns, started) = (0, Instant::now());
    while started.elapsed() < Duration::from_millis(500) && turns < 1_000 {
        event_loop.turn(Some(Duration::from_millis(100))).unwrap();
        turns += 1;
    }
    assert!(turns <= 10, "{turns} turns in 500 ms with nothing to do");
    assert_eq!(event_loop.poll_event(), Some((id, Event::Connected(addr))));
}

#[test]
fn a_name_is_resolved_off_the_loop_and_the_refused_address_falls_back() {
    let addr = echo_server();
    let mut event_loop = EventLoop::new().unwrap();
    // localhost resolves to ::1 and 127.0.0.1 here; the server is on 127.0.0.1 only.
    let id = event_loop.connect(("localhost", addr.port()), Config::new());
    event_loop
        .send(id, Bytes::from_static(b"via a name"))
        .unwrap();
    event_loop.finish(id).unwrap();

    let events = only_events(run_to_end(&mut event_loop, LIMIT));

    assert_eq!(data(&events), b"via a name");
    assert!(report(&events).is_clean());
}

#[test]
fn a_refused_port_is_a_connect_error_with_its_kind() {
    let unused = unused_port();
    let mut event_loop = EventLoop::new().unwrap();
    event_loop.connect(("127.0.0.1", unused), Config::new());

    let events = only_events(run_to_end(&mut event_loop, LIMIT));

    assert_eq!(
        report(&events).result,
        Err(Error::Connect {
            addr: SocketAddr::from(([127, 0, 0, 1], unused)),
            kind: ErrorKind::ConnectionRefused
        })
    );
}

#[test]
fn a_bad_host_is_a_resolve_error() {
    let mut event_loop = EventLoop::new().unwrap();
    event_loop.connect(("no-such-host.invalid", 80), Config::new());

    let events = only_events(run_to_end(&mut event_loop, LIMIT));

    let Err(Error::Resolve { host, kind }) = &report(&events).result else {
        panic!("{events:?}");
    };
    assert_eq!(
        (host.as_str(), *kind),
        ("no-such-host.invalid", ErrorKind::NotFound)
    );
}

/// The kernel drops SYNs to a listener whose accept queue is full, so a connect to it hangs
/// until the client's own deadline: a connect timeout without leaving loopback.
#[test]
fn connect_timeout_against_a_full_accept_queue() {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    listener
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    listener.listen(0).unwrap();
    let addr = listener.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..4 {
        let filler = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
        filler.set_nonblocking(true).unwrap();
        let _ = filler.connect(&addr.into());
        fillers.push(filler);
    }
    std::thread::sleep(Duration::from_millis(200));
    let mut event_loop = EventLoop::new().unwrap();
    // Before the client is made: its deadline counts from then.
    let started = Instant::now();
    event_loop.connect(
        addr,
        config().with_connect_timeout(Duration::from_millis(700)),
    );

    let events = only_events(run_to_end(&mut event_loop, LIMIT));

    assert_eq!(report(&events).result, Err(Error::ConnectTimeout));
    assert!(
        started.elapsed() >= Duration::from_millis(700),
        "not before the deadline"
    );
}

#[test]
fn the_server_closing_first_delivers_its_data_and_ends_cleanly() {
    let addr = closing_server(b"bye now\n");
    let mut event_loop = EventLoop::new().unwrap();
    event_loop.connect(addr, config());

    let events = only_events(run_to_end(&mut event_loop, LIMIT));

    assert_eq!(data(&events), b"bye now\n");
    assert!(events.contains(&Event::PeerClosed));
    assert_eq!(report(&events).result, Ok(Ending::PeerClosed));
}

#[test]
fn half_open_keeps_sending_after_the_servers_eof() {
    let (addr, received) = half_closing_server();
    let mut event_loop = EventLoop::new().unwrap();
    let id = event_loop.connect(addr, config().with_on_peer_eof(OnPeerEof::KeepWriting));
    let deadline = Instant::now() + LIMIT;
    let mut events = Vec::new();
    while !events.contains(&Event::PeerClosed) {
        assert!(Instant::now() < deadline);
        event_loop.turn(Some(Duration::from_millis(100))).unwrap();
        events.extend(std::iter::from_fn(|| event_loop.poll_event()).map(|(_, e)| e));
    }

    event_loop
        .send(id, Bytes::from_static(b"after your EOF"))
        .unwrap();
    event_loop.finish(id).unwrap();
    let events = only_events(run_to_end(&mut event_loop, LIMIT));

    assert_eq!(report(&events).result, Ok(Ending::Finished));
    assert_eq!(received.recv_timeout(LIMIT).unwrap(), b"after your EOF");
}

#[test]
fn starttls_against_a_rustls_server_thread() {
    let pki = Pki::new();
    let addr = starttls_server("pop3", pki.server_config(), false);
    let runtime = Runtime::spawn().unwrap();
    let conn = runtime
        .connect(addr, config().with_tls(pki.client_tls()))
        .unwrap();
    conn.send(Bytes::from_static(b"STLS\r\n")).unwrap();
    let deadline = Instant::now() + LIMIT;
    let mut seen = Vec::new();
    while !seen.ends_with(b"+OK begin TLS\r\n") {
        assert!(
            Instant::now() < deadline,
            "{:?}",
            String::from_utf8_lossy(&seen)
        );
        if let Ok(Some(Event::Data(d))) = conn.recv_timeout(Duration::from_millis(100)) {
            seen.extend_from_slice(&d);
        }
    }

    conn.start_tls().unwrap();
    conn.send(Bytes::from_static(b"secret\r\n")).unwrap();
    conn.finish().unwrap();
    let events = events_until_closed(&conn, LIMIT);

    let Event::TlsEstablished(info) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        info.protocol_version,
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
    assert_eq!(data(&events), b"250 secret\r\n");
    assert!(report(&events).is_clean(), "{events:?}");
}

#[test]
fn tls_from_the_start() {
    let pki = Pki::new();
    let addr = tls_echo_server(pki.server_config());
    let mut event_loop = EventLoop::new().unwrap();
    let id = event_loop.connect(addr, config().with_tls(pki.client_tls()));
    event_loop.start_tls(id).unwrap();
    event_loop
        .send(id, Bytes::from(vec![7u8; 100_000]))
        .unwrap();
    event_loop.finish(id).unwrap();

    let events = only_events(run_to_end(&mut event_loop, LIMIT));

    assert!(matches!(events[1], Event::TlsEstablished(_)), "{events:?}");
    assert_eq!(data(&events), vec![7u8; 100_000]);
    let report = report(&events);
    assert!(report.is_clean(), "{report:?}");
    assert!(report.wire_bytes_written > 100_000);
}

#[test]
fn an_untrusted_certificate_is_refused() {
    let pki = Pki::new();
    let stranger = Pki::new();
    let addr = tls_echo_server(pki.server_config());
    let mut event_loop = EventLoop::new().unwrap();
    let id = event_loop.connect(addr, config().with_tls(stranger.client_tls()));
    event_loop.start_tls(id).unwrap();
    event_loop
        .send(id, Bytes::from_static(b"never sent"))
        .unwrap();

    let events = only_events(run_to_end(&mut event_loop, LIMIT));

    let report = report(&events);
    assert!(
        matches!(
            report.result,
            Err(Error::Tls(TlsError::CertificateNotTrusted { .. }))
        ),
        "{report:?}"
    );
    assert_eq!(report.bytes_undelivered, 10);
}

#[test]
fn a_thousand_clients_in_one_loop_all_complete() {
    let addr = echo_server_with_backlog(2048);
    let mut event_loop = EventLoop::new().unwrap();
    let started = Instant::now();
    for i in 0..1000u32 {
        let id = event_loop.connect(addr, config());
        event_loop
            .send(id, Bytes::from(format!("client {i:04}\n")))
            .unwrap();
        event_loop.finish(id).unwrap();
    }

    let events = run_to_end(&mut event_loop, Duration::from_secs(60));

    let reports: Vec<_> = events
        .iter()
        .filter_map(|(_, e)| match e {
            Event::Closed(r) => Some(r),
            _ => None,
        })
        .collect();
    assert_eq!(reports.len(), 1000);
    assert!(
        reports
            .iter()
            .all(|r| r.is_clean() && r.bytes_received == 12),
        "{reports:?}"
    );
    eprintln!(
        "1,000 clients: {:?}, peak resident memory of the test process {} KiB",
        started.elapsed(),
        peak_rss_kib()
    );
}

#[test]
fn a_slow_reader_cannot_grow_the_clients_memory_past_the_send_limit() {
    const LIMIT_BYTES: usize = 64 * 1024;
    const TOTAL: usize = 4 * 1024 * 1024;
    let (addr, read) = slow_reader(Duration::from_micros(200));
    let mut event_loop = EventLoop::new().unwrap();
    let id = event_loop.connect(addr, config().with_send_limit(LIMIT_BYTES));
    let chunk = Bytes::from(vec![1u8; 8 * 1024]);
    let (mut sent, mut refusals, mut most_queued) = (0, 0, 0);
    let deadline = Instant::now() + LIMIT;

    while sent < TOTAL {
        assert!(Instant::now() < deadline, "sent only {sent} bytes");
        match event_loop.send(id, chunk.clone()) {
            Ok(()) => sent += chunk.len(),
            Err(InvalidInput::QueueFull { .. }) => {
                refusals += 1;
                // A producer waits for SendReady instead of polling.
                while !matches!(event_loop.poll_event(), Some((_, Event::SendReady))) {
                    assert!(Instant::now() < deadline);
                    event_loop.turn(Some(Duration::from_millis(100))).unwrap();
                }
            }
            Err(other) => panic!("{other}"),
        }
        let queued = event_loop.client(id).unwrap().bytes_queued();
        most_queued = most_queued.max(queued);
        assert!(queued <= LIMIT_BYTES as u64, "{queued} bytes queued");
    }
    event_loop.finish(id).unwrap();
    let events = only_events(run_to_end(&mut event_loop, LIMIT));

    assert!(
        refusals > 0,
        "the reader was never slow enough to push back"
    );
    assert!(report(&events).is_clean());
    assert_eq!(read.recv_timeout(LIMIT).unwrap(), TOTAL as u64);
    eprintln!(
        "slow reader: {refusals} refusals, at most {most_queued} bytes queued (limit {LIMIT_BYTES})"
    );
}

#[test]
fn a_blocking_producer_sends_many_times_the_limit_through_a_runtime_handle() {
    let (addr, read) = slow_reader(Duration::ZERO);
    let runtime = Runtime::spawn().unwrap();
    let conn = runtime
        .connect(addr, config().with_send_limit(256 * 1024))
        .unwrap();
    let sender = conn.sender();
    let producer = std::thread::spawn(move || {
        for _ in 0..128 {
            sender.send_all(Bytes::from(vec![3u8; 64 * 1024])).unwrap();
        }
        sender.finish().unwrap();
    });

    let events = events_until_closed(&conn, LIMIT);

    producer.join().unwrap();
    assert!(report(&events).is_clean(), "{events:?}");
    assert_eq!(conn.recv(), None, "nothing after the close report");
    assert_eq!(read.recv_timeout(LIMIT).unwrap(), 128 * 64 * 1024);
}

#[test]
fn runtime_handles_refuse_sends_past_the_limit_and_after_finish() {
    let (addr, _read) = slow_reader(Duration::from_millis(50));
    let runtime = Runtime::spawn().unwrap();
    let conn = runtime
        .connect(addr, config().with_send_limit(1000))
        .unwrap();
    conn.send(Bytes::from(vec![0u8; 800])).unwrap();

    let refused = conn.send(Bytes::from(vec![1u8; 800]));

    assert!(matches!(refused, Err(InvalidInput::QueueFull { ref data, .. }) if data.len() == 800));
    conn.finish().unwrap();
    assert!(matches!(
        conn.send(Bytes::from_static(b"late")),
        Err(InvalidInput::SendAfterShutdown { .. })
    ));
    let events = events_until_closed(&conn, LIMIT);
    assert_eq!(report(&events).bytes_accepted, 800);
}

/// A handle's requests are made of the client on the caller's thread: the client's refusals
/// come back from the call, before the loop has even looked, and `closed` waits for the
/// report.
#[test]
fn runtime_requests_are_answered_at_once_by_the_client() {
    let addr = echo_server();
    let runtime = Runtime::spawn().unwrap();
    let conn = runtime.connect(addr, config()).unwrap();

    assert_eq!(conn.start_tls(), Err(InvalidInput::NoTlsConfig));
    assert!(matches!(
        conn.sender().preamble_done(),
        Err(InvalidInput::Unexpected { .. })
    ));
    conn.send(Bytes::from_static(b"ping")).unwrap();
    conn.finish().unwrap();
    let report = conn.closed().expect("a close report");

    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.bytes_accepted, 4);
    assert_eq!(conn.recv(), None, "nothing after the close report");
}

/// An echo server whose listener has a large backlog, for many simultaneous connects.
fn echo_server_with_backlog(backlog: i32) -> SocketAddr {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_reuse_address(true).unwrap();
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .unwrap();
    socket.listen(backlog).unwrap();
    let listener: std::net::TcpListener = socket.into();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut stream = stream;
                stream.set_read_timeout(Some(PATIENCE)).unwrap();
                let mut reader = stream.try_clone().unwrap();
                let _ = std::io::copy(&mut reader, &mut stream);
                let _ = stream.shutdown(std::net::Shutdown::Write);
            });
        }
    });
    addr
}

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// A server whose first two connections are cut at once (reset), and whose third echoes:
/// an `EventLoop` session is disconnected twice and reconnects under one id, and the third
/// connection carries what is sent once it is up.
#[test]
fn an_event_loop_session_reconnects_under_the_same_id_until_a_connection_holds() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let addr = serve(move |mut stream| {
        if count.fetch_add(1, Ordering::SeqCst) < 2 {
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            return;
        }
        let mut buf = [0u8; 1024];
        loop {
            match std::io::Read::read(&mut stream, &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    let _ = std::io::Write::write_all(&mut stream, &buf[..n]);
                }
            }
        }
    });
    let policy = tcpclient_core::ReconnectPolicy::default()
        .with_initial_delay(Duration::from_millis(20))
        .with_replay_undelivered(true);
    let mut event_loop = EventLoop::new().unwrap();
    let id = event_loop.connect(addr, config().with_reconnect(policy));

    let mut events = Vec::new();
    let deadline = Instant::now() + LIMIT;
    while data(&events) != b"ping" {
        assert!(Instant::now() < deadline, "no echo: {events:?}");
        event_loop.turn(Some(Duration::from_millis(50))).unwrap();
        while let Some((of, event)) = event_loop.poll_event() {
            assert_eq!(of, id, "one id for the whole session");
            if matches!(event, Event::Reconnected { generation: 2, .. }) {
                event_loop.send(id, Bytes::from_static(b"ping")).unwrap();
            }
            events.push(event);
        }
    }
    event_loop.finish(id).unwrap();
    events.extend(
        run_to_end(&mut event_loop, LIMIT)
            .into_iter()
            .map(|(_, e)| e),
    );

    // A cut connection may be seen as established and then reset, or (when the reset lands
    // before the connect's readiness is read) as a failed connect: either way it is one
    // disconnection, followed by one scheduled reconnect.
    let reconnecting = events
        .iter()
        .filter(|e| matches!(e, Event::Reconnecting { .. }))
        .count();
    let disconnected = events
        .iter()
        .filter(|e| matches!(e, Event::Disconnected { .. }))
        .count();
    assert_eq!((disconnected, reconnecting), (2, 2), "{events:?}");
    assert_eq!(accepted.load(Ordering::SeqCst), 3);
    let Some(Event::Closed(report)) = events.last() else {
        panic!("the session's report last: {events:?}");
    };
    assert_eq!(report.result, Ok(Ending::Finished), "{report}");
    assert_eq!((report.bytes_accepted, report.bytes_written), (4, 4));
}

/// Collects everything a client sends until its FIN, then closes.
fn collecting_server() -> (SocketAddr, std::sync::mpsc::Receiver<Vec<u8>>) {
    let (tx, rx) = std::sync::mpsc::channel();
    let addr = serve(move |mut stream| {
        let mut all = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut all);
        let _ = tx.send(all);
    });
    (addr, rx)
}

/// Numbered messages, every third one as a `Bytes` and the others copied from a slice.
fn numbered(i: u32) -> Vec<u8> {
    let len = 1 + (i as usize * 37) % 3000;
    let mut message = format!("<{i}>").into_bytes();
    message.resize(len.max(message.len()), b'.');
    message
}

/// Copied sends and `Bytes` sends, mixed on one connection of an `EventLoop`: the server
/// gets every message once, in the order sent.
#[test]
fn copied_and_owned_sends_on_an_event_loop_arrive_in_order() {
    let (addr, collected) = collecting_server();
    let mut event_loop = EventLoop::new().unwrap();
    let id = event_loop.connect(addr, config().with_send_limit(64 * 1024));
    let mut expected = Vec::new();
    let deadline = Instant::now() + LIMIT;
    let mut i = 0;
    while i < 2_000 {
        assert!(Instant::now() < deadline, "stuck at message {i}");
        let message = numbered(i);
        let sent = if i % 3 == 0 {
            event_loop.send(id, Bytes::from(message.clone()))
        } else {
            event_loop.send_slice(id, &message)
        };
        match sent {
            Ok(()) => {
                expected.extend_from_slice(&message);
                i += 1;
            }
            Err(InvalidInput::QueueFull { data, .. }) => {
                assert_eq!(data, message, "handed back whole");
                event_loop.turn(Some(Duration::from_millis(10))).unwrap();
                while event_loop.poll_event().is_some() {}
            }
            Err(other) => panic!("{other}"),
        }
    }
    event_loop.finish(id).unwrap();
    let events = only_events(run_to_end(&mut event_loop, LIMIT));

    assert_eq!(report(&events).result, Ok(Ending::Finished));
    assert_eq!(report(&events).bytes_written, expected.len() as u64);
    assert!(collected.recv_timeout(LIMIT).unwrap() == expected);
}

/// The same through a `Runtime` handle from a producer thread, with the queue often full:
/// copied sends batched on the producer's side still leave in order with the `Bytes` ones,
/// and all of them before the finish.
#[test]
fn copied_and_owned_sends_through_a_runtime_arrive_in_order() {
    let (addr, collected) = collecting_server();
    let runtime = Runtime::spawn().unwrap();
    let conn = runtime
        .connect(addr, config().with_send_limit(16 * 1024))
        .unwrap();
    let sender = conn.sender();
    let producer = std::thread::spawn(move || {
        let mut expected = Vec::new();
        let deadline = Instant::now() + LIMIT;
        let mut i = 0;
        while i < 5_000 && Instant::now() < deadline {
            let message = numbered(i);
            let sent = if i % 3 == 0 {
                sender.send(Bytes::from(message.clone()))
            } else {
                sender.send_slice(&message)
            };
            match sent {
                Ok(()) => {
                    expected.extend_from_slice(&message);
                    i += 1;
                }
                Err(InvalidInput::QueueFull { .. }) => std::thread::yield_now(),
                Err(other) => panic!("{other}"),
            }
        }
        sender.finish().unwrap();
        (i, expected)
    });

    let events = events_until_closed(&conn, LIMIT);
    let (sent, expected) = producer.join().unwrap();

    assert_eq!(sent, 5_000, "the producer finished in time");
    assert_eq!(report(&events).result, Ok(Ending::Finished), "{events:?}");
    assert_eq!(report(&events).bytes_written, expected.len() as u64);
    assert!(collected.recv_timeout(LIMIT).unwrap() == expected);
}
