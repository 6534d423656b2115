//! The promises against hostile servers and careless embedding programs: no panic, no hang,
//! every connection ends with its close report, every blocked producer wakes.

mod common;

use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use tcpclient_core::{Config, Error, Event, InvalidInput, TlsConfig, tls};
use tcpclient_polling::{EventLoop, Runtime};
use tcpclient_testkit::Pki;

const LIMIT: Duration = Duration::from_secs(20);

/// The policy the tests start from: the defaults.
fn config() -> Config {
    Config::new()
}

/// Sends a few bytes and its FIN, then resets the connection at once (`SO_LINGER` 0): the
/// client reads the EOF after the RST arrived, so its `shutdown(SHUT_WR)` fails (ENOTCONN)
/// after the core has already closed.
fn fin_then_reset_server() -> SocketAddr {
    serve(|mut stream| {
        let _ = stream.write_all(b"bye");
        let _ = stream.shutdown(Shutdown::Write);
        let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    })
}

/// Twenty connections to the FIN-then-RST server: each ends with exactly one close report,
/// and the loop keeps running (a debug assertion on the late `SocketError` killed it).
#[test]
fn a_fin_then_reset_ends_each_connection_without_killing_the_event_loop() {
    let addr = fin_then_reset_server();
    let mut event_loop = EventLoop::new().unwrap();
    let ids: Vec<_> = (0..20)
        .map(|_| event_loop.connect(addr, config()))
        .collect();

    let events = run_to_end(&mut event_loop, LIMIT);

    for id in ids {
        let closed = events
            .iter()
            .filter(|(of, e)| *of == id && matches!(e, Event::Closed(_)))
            .count();
        assert_eq!(closed, 1, "{events:?}");
    }
}

/// The same through a `Runtime`, beside a producer that waits for room on another
/// connection: the FIN-then-RST connections close, and the producer is not left blocked.
#[test]
fn a_fin_then_reset_does_not_stall_the_other_connections_of_a_runtime() {
    let hostile = fin_then_reset_server();
    let (slow, read) = slow_reader(Duration::ZERO);
    let runtime = Runtime::spawn().unwrap();
    let producer_conn = runtime
        .connect(slow, config().with_send_limit(64 * 1024))
        .unwrap();
    let sender = producer_conn.sender();
    let (done_tx, done) = mpsc::channel();
    std::thread::spawn(move || {
        let sent = (0..64).all(|_| sender.send_all(Bytes::from(vec![1u8; 32 * 1024])).is_ok());
        sender.finish().unwrap();
        let _ = done_tx.send(sent);
    });

    let hostile_conns: Vec<_> = (0..20)
        .map(|_| runtime.connect(hostile, config()).unwrap())
        .collect();
    for conn in &hostile_conns {
        let events = events_until_closed(conn, LIMIT);
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, Event::Closed(_)))
                .count(),
            1
        );
    }

    assert_eq!(done.recv_timeout(LIMIT), Ok(true), "the producer is stuck");
    assert!(report(&events_until_closed(&producer_conn, LIMIT)).is_clean());
    assert_eq!(read.recv_timeout(LIMIT).unwrap(), 64 * 32 * 1024);
}

/// A certificate verifier that panics: user code that runs on the loop thread.
#[derive(Debug)]
struct PanickingVerifier;

impl ServerCertVerifier for PanickingVerifier {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        panic!("a verifier with a bug");
    }

    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        tls::default_provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// When the loop thread dies (here a panic in user code it runs), every connection gets a
/// close report that says why, every blocked producer wakes with a refusal, and the runtime
/// takes no new connections.
#[test]
fn a_dead_loop_thread_closes_every_connection_and_wakes_every_producer() {
    let pki = Pki::new();
    let tls_server = tls_echo_server(pki.server_config());
    let (slow, _read) = slow_reader(Duration::from_secs(1));
    let runtime = Runtime::spawn().unwrap();

    let waiting = runtime
        .connect(slow, config().with_send_limit(64 * 1024))
        .unwrap();
    let sender = waiting.sender();
    let (refused_tx, refused) = mpsc::channel();
    std::thread::spawn(move || {
        // What the producer was told was taken, and how its last send ended.
        let mut accepted = 0u64;
        let result = (0..1000)
            .map(|_| {
                let sent = sender.send_all(Bytes::from(vec![2u8; 64 * 1024]));
                if sent.is_ok() {
                    accepted += 64 * 1024;
                }
                sent
            })
            .find(Result::is_err);
        let _ = refused_tx.send((accepted, result));
    });
    let events = events_until(&waiting, LIMIT, |e| matches!(e, Event::Connected(_)));
    assert!(matches!(events.last(), Some(Event::Connected(_))));
    std::thread::sleep(Duration::from_millis(200)); // the producer is blocked by now

    let provider = tls::default_provider();
    let client_config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PanickingVerifier))
        .with_no_client_auth();
    let tls = TlsConfig::new(Arc::new(client_config));
    let doomed = runtime.connect(tls_server, config().with_tls(tls)).unwrap();
    doomed.start_tls().unwrap();

    let mut reports = Vec::new();
    for conn in [&doomed, &waiting] {
        let events = events_until_closed(conn, LIMIT);
        let report = report(&events).clone();
        assert!(
            matches!(&report.result, Err(Error::DriverStopped { reason }) if reason.contains("a verifier with a bug")),
            "{report:?}"
        );
        assert_eq!(conn.recv(), None, "nothing after the close report");
        reports.push(report);
    }
    let (accepted, woken) = refused
        .recv_timeout(LIMIT)
        .expect("the producer stayed blocked");
    assert!(
        matches!(woken, Some(Err(InvalidInput::SendAfterShutdown { .. }))),
        "{woken:?}"
    );
    // The report counts exactly what the producer was told was taken, and claims no more
    // written than the slow server can have read.
    let waiting_report = &reports[1];
    assert_eq!(waiting_report.bytes_accepted, accepted);
    assert!(waiting_report.bytes_undelivered > 0, "{waiting_report:?}");
    assert!(runtime.connect(slow, config()).is_err());
}

/// An endless response the application stops reading, then drops its handle: the
/// connection is aborted at once, as dropping a `TcpStream` would close it, so the server's
/// writes fail promptly instead of blocking for ever.
#[test]
fn dropping_the_last_handle_aborts_the_connection_promptly() {
    let (ended_tx, ended) = mpsc::channel();
    let addr = serve(move |mut stream| {
        let block = vec![b'r'; 64 * 1024];
        let start = Instant::now();
        while stream.write_all(&block).is_ok() {}
        let _ = ended_tx.send(start.elapsed());
    });
    let runtime = Runtime::spawn().unwrap();
    let conn = runtime.connect(addr, config()).unwrap();
    let events = events_until(&conn, LIMIT, |e| matches!(e, Event::Data(_)));
    assert!(matches!(events.last(), Some(Event::Data(_))));
    std::thread::sleep(Duration::from_millis(300)); // the client's window fills

    let dropped = Instant::now();
    drop(conn);

    let server_saw_the_end = ended.recv_timeout(Duration::from_secs(5));
    assert!(
        server_saw_the_end.is_ok(),
        "the server was still writing {:?} after the handle was dropped",
        dropped.elapsed()
    );
}

/// A sending half that outlives the `Connection` keeps the connection: only the last handle
/// aborts it.
#[test]
fn a_sender_that_outlives_the_connection_handle_keeps_the_connection() {
    let (addr, read) = slow_reader(Duration::ZERO);
    let runtime = Runtime::spawn().unwrap();
    let conn = runtime.connect(addr, config()).unwrap();
    let sender = conn.sender();

    drop(conn);
    sender.send(Bytes::from(vec![7u8; 100_000])).unwrap();
    sender.finish().unwrap();

    assert_eq!(read.recv_timeout(LIMIT).unwrap(), 100_000);
}

/// A resolver that takes its time and counts how many lookups run at once.
struct SlowResolver {
    addr: SocketAddr,
    running: std::sync::atomic::AtomicUsize,
    most: std::sync::atomic::AtomicUsize,
}

impl tcpclient_polling::Resolve for SlowResolver {
    fn resolve(
        &self,
        _host: &str,
        port: u16,
        family: tcpclient_core::Family,
    ) -> std::io::Result<Vec<SocketAddr>> {
        if family == tcpclient_core::Family::V6 {
            return Ok(Vec::new());
        }
        use std::sync::atomic::Ordering::SeqCst;
        let now = self.running.fetch_add(1, SeqCst) + 1;
        self.most.fetch_max(now, SeqCst);
        std::thread::sleep(Duration::from_millis(50));
        self.running.fetch_sub(1, SeqCst);
        Ok(vec![SocketAddr::new(self.addr.ip(), port)])
    }
}

/// A burst of connections to host names with a slow resolver: the lookups queue for a few
/// helper threads instead of starting a thread each, and every connection still completes.
#[test]
fn a_burst_of_lookups_runs_on_a_bounded_pool_of_threads() {
    let addr = echo_server();
    let resolver = Arc::new(SlowResolver {
        addr,
        running: Default::default(),
        most: Default::default(),
    });
    struct Shared(Arc<SlowResolver>);
    impl tcpclient_polling::Resolve for Shared {
        fn resolve(
            &self,
            host: &str,
            port: u16,
            family: tcpclient_core::Family,
        ) -> std::io::Result<Vec<SocketAddr>> {
            self.0.resolve(host, port, family)
        }
    }
    let mut event_loop = EventLoop::with_resolver(Shared(resolver.clone())).unwrap();
    for _ in 0..40 {
        let id = event_loop.connect(("echo.test", addr.port()), Config::new());
        event_loop.send(id, Bytes::from_static(b"hi")).unwrap();
        event_loop.finish(id).unwrap();
    }

    let events = run_to_end(&mut event_loop, LIMIT);

    let clean = events
        .iter()
        .filter(|(_, e)| matches!(e, Event::Closed(r) if r.is_clean()))
        .count();
    assert_eq!(clean, 40, "{events:?}");
    let most = resolver.most.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (2..=tcpclient_polling::MAX_RESOLVER_THREADS).contains(&most),
        "{most} lookups at once: bounded, and still in parallel"
    );
}

/// However many writes a connection makes, it waits in the loop's progress queue once: an
/// `EventLoop` whose user never asks for progress does not grow.
#[test]
fn write_progress_is_one_entry_per_connection_however_many_writes() {
    let (addr, read) = slow_reader(Duration::ZERO);
    let mut event_loop = EventLoop::new().unwrap();
    let id = event_loop.connect(addr, config());
    let deadline = Instant::now() + LIMIT;
    let mut sent = 0;
    while sent < 8 << 20 {
        assert!(Instant::now() < deadline);
        if event_loop
            .send(id, Bytes::from(vec![0u8; 64 * 1024]))
            .is_ok()
        {
            sent += 64 * 1024;
        }
        event_loop.turn(Some(Duration::from_millis(10))).unwrap();
    }

    assert!(matches!(event_loop.poll_progress(), Some((of, written)) if of == id && written > 0));
    assert_eq!(
        event_loop.poll_progress(),
        None,
        "one entry, not one per write"
    );
    event_loop.finish(id).unwrap();
    run_to_end(&mut event_loop, LIMIT);
    assert_eq!(read.recv_timeout(LIMIT).unwrap(), 8 << 20);
}

/// The receiving half dropped while its window is full, a sender still finishing: reading
/// resumes (what arrives is discarded), so the drain can see the server's EOF.
#[test]
fn dropping_the_receiver_with_a_full_window_does_not_stall_a_finishing_sender() {
    let (got_tx, got) = mpsc::channel();
    let addr = serve(move |mut stream| {
        // 32 MiB first: more than the window and every socket buffer, so the client must
        // read before this write can finish; then everything the client sends, until EOF.
        let wrote_all = stream.write_all(&vec![b'w'; 32 << 20]).is_ok();
        let mut all = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut all);
        let _ = got_tx.send((wrote_all, all.len()));
    });
    let runtime = Runtime::spawn().unwrap();
    let conn = runtime.connect(addr, config()).unwrap();
    let sender = conn.sender();
    events_until(&conn, LIMIT, |e| matches!(e, Event::Data(_)));
    std::thread::sleep(Duration::from_millis(300)); // the window fills; reading pauses

    drop(conn);
    sender.send(Bytes::from(vec![b's'; 100_000])).unwrap();
    sender.finish().unwrap();

    assert_eq!(
        got.recv_timeout(LIMIT),
        Ok((true, 100_000)),
        "the client kept reading (and discarding) until the server's EOF"
    );
}

/// Every handle dropped after `finish`: what was sent is still delivered, as a closed
/// `TcpStream` still delivers what was written.
#[test]
fn dropping_every_handle_after_finish_still_delivers_what_was_sent() {
    let (addr, read) = slow_reader(Duration::from_millis(1));
    let runtime = Runtime::spawn().unwrap();
    let conn = runtime.connect(addr, config()).unwrap();
    conn.send(Bytes::from(vec![9u8; 1 << 20])).unwrap();
    conn.finish().unwrap();

    drop(conn);

    assert_eq!(read.recv_timeout(LIMIT).unwrap(), 1 << 20);
}
