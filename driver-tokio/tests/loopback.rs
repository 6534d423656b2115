//! The tokio driver over real sockets on 127.0.0.1 (and a black-holed [::1]): the stream
//! with tokio's own tools, STARTTLS, Happy Eyeballs, the receive window, reconnects, abort.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tcpclient_core::{Config, Ending, Event, ReconnectPolicy};
use tcpclient_driver::FixedResolver;
use tcpclient_testkit::Pki;
use tcpclient_testkit::loopback::*;
use tcpclient_tokio::{Connection, Tokio, Unobserved};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::{Framed, LinesCodec};

const LIMIT: Duration = Duration::from_secs(20);

/// The policy the tests start from: the defaults.
fn config() -> Config {
    Config::new()
}

async fn within<T>(what: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(LIMIT, what)
        .await
        .expect("within the time limit")
}

#[tokio::test]
async fn the_stream_echoes_and_closes_gracefully() {
    let mut conn = within(tcpclient_tokio::connect(echo_server(), config()))
        .await
        .unwrap();

    conn.write_all(b"hello over tokio").await.unwrap();
    conn.shutdown().await.unwrap();
    let mut echo = Vec::new();
    within(conn.read_to_end(&mut echo)).await.unwrap();
    let report = within(conn.closed()).await.expect("a report");

    assert_eq!(echo, b"hello over tokio");
    assert_eq!(report.result, Ok(Ending::Finished));
    assert!(report.is_clean());
}

#[tokio::test]
async fn tokio_io_copy_moves_a_megabyte_both_ways() {
    let payload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    let conn = within(tcpclient_tokio::connect(echo_server(), config()))
        .await
        .unwrap();
    let (mut reader, mut writer) = tokio::io::split(conn);

    let send = async {
        let mut source = &payload[..];
        tokio::io::copy(&mut source, &mut writer).await.unwrap();
        writer.shutdown().await.unwrap();
    };
    let receive = async {
        let mut sink = Vec::new();
        tokio::io::copy(&mut reader, &mut sink).await.unwrap();
        sink
    };
    let ((), echoed) = within(async { tokio::join!(send, receive) }).await;

    assert_eq!(echoed.len(), payload.len());
    assert!(echoed == payload, "every byte, in order");
}

#[tokio::test]
async fn copy_bidirectional_relays_between_a_local_stream_and_the_connection() {
    let conn = within(tcpclient_tokio::connect(echo_server(), config()))
        .await
        .unwrap();
    let (mut near, mut far) = tokio::io::duplex(64 * 1024);
    let relay = tokio::spawn(async move {
        let mut conn = conn;
        tokio::io::copy_bidirectional(&mut far, &mut conn).await
    });

    near.write_all(b"relayed").await.unwrap();
    near.shutdown().await.unwrap();
    let mut back = Vec::new();
    within(near.read_to_end(&mut back)).await.unwrap();
    let (up, down) = within(relay).await.unwrap().unwrap();

    assert_eq!(back, b"relayed");
    assert_eq!((up, down), (7, 7));
}

#[tokio::test]
async fn framed_lines_go_out_and_come_back() {
    let conn = within(tcpclient_tokio::connect(echo_server(), config()))
        .await
        .unwrap();
    let mut lines = Framed::new(conn, LinesCodec::new());

    lines.send("first").await.unwrap();
    lines.send("second").await.unwrap();

    assert_eq!(within(lines.next()).await.unwrap().unwrap(), "first");
    assert_eq!(within(lines.next()).await.unwrap().unwrap(), "second");
}

#[tokio::test]
async fn start_tls_upgrades_the_stream_mid_way() {
    let pki = Pki::new();
    let addr = starttls_server("smtp", pki.server_config(), false);
    let mut conn = within(tcpclient_tokio::connect(
        addr,
        config().with_tls(pki.client_tls()),
    ))
    .await
    .unwrap();
    let mut lines = Framed::new(&mut conn, LinesCodec::new());
    assert_eq!(
        within(lines.next()).await.unwrap().unwrap(),
        "220-smtp.test ESMTP"
    );
    assert_eq!(within(lines.next()).await.unwrap().unwrap(), "220 ready");
    lines.send("STARTTLS").await.unwrap();
    assert_eq!(within(lines.next()).await.unwrap().unwrap(), "220 go ahead");
    drop(lines);

    conn.start_tls().unwrap();
    let info = within(conn.tls_established()).await.unwrap();

    assert!(info.to_string().contains("TLS"), "{info}");
    conn.write_all(b"over TLS\r\n").await.unwrap();
    let mut lines = Framed::new(&mut conn, LinesCodec::new());
    assert_eq!(within(lines.next()).await.unwrap().unwrap(), "250 over TLS");
}

#[tokio::test]
async fn a_black_holed_ipv6_address_costs_the_attempt_delay_not_the_attempt_timeout() {
    let hole = black_hole("[::1]:0".parse().unwrap()).unwrap();
    let v4 = echo_server();
    let network = Tokio::with_resolver(FixedResolver {
        v6: vec![hole.addr],
        v4: vec![v4],
    });
    let engine =
        tcpclient_core::Client::new(("dual.test", 80), Config::new(), tcpclient_tokio::now());
    let started = Instant::now();
    let (mut conn, driver) = tcpclient_tokio::start(network, engine, Unobserved);
    tokio::spawn(driver);

    let connected = within(conn.next_event()).await;
    let took = started.elapsed();

    assert_eq!(connected, Some(Event::Connected(v4)));
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "connected over IPv4 after {took:?}"
    );
}

#[tokio::test]
async fn a_reader_that_stops_reading_holds_the_server_back_and_loses_nothing() {
    // 8 MiB of a numbered stream, as fast as the client takes it.
    let server = serve(|mut stream| {
        let stream_bytes: Vec<u8> = (0..8 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let _ = std::io::Write::write_all(&mut stream, &stream_bytes);
    });
    let mut conn = within(tcpclient_tokio::connect(
        server,
        config().with_receive_window(Some(64 * 1024)),
    ))
    .await
    .unwrap();
    let mut first = vec![0u8; 1];
    within(conn.read_exact(&mut first)).await.unwrap();

    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut rest = vec![0u8; 4 * 1024 * 1024];
    within(conn.read_exact(&mut rest)).await.unwrap();

    let all: Vec<u8> = [first, rest].concat();
    assert!(
        all.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8),
        "the stream is whole and in order"
    );
}

#[tokio::test]
async fn a_session_reconnects_to_a_server_that_cut_the_first_connection() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let accepted = std::sync::Arc::new(AtomicUsize::new(0));
    let count = accepted.clone();
    let addr = serve(move |mut stream| {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            let _ = tcpclient_driver::reset(&stream);
            return;
        }
        let mut buf = [0u8; 1024];
        while let Ok(n) = std::io::Read::read(&mut stream, &mut buf) {
            if n == 0 || std::io::Write::write_all(&mut stream, &buf[..n]).is_err() {
                return;
            }
        }
    });
    let policy = ReconnectPolicy::default().with_initial_delay(Duration::from_millis(20));
    let mut conn = within(tcpclient_tokio::connect(
        addr,
        config().with_reconnect(policy),
    ))
    .await
    .unwrap();

    let mut seen = Vec::new();
    while !matches!(seen.last(), Some(Event::Reconnected { .. })) {
        seen.push(within(conn.next_event()).await.expect("an event"));
    }
    conn.write_all(b"again").await.unwrap();
    let mut echo = [0u8; 5];
    within(conn.read_exact(&mut echo)).await.unwrap();

    assert_eq!(&echo, b"again");
    assert!(
        seen.iter().any(|e| matches!(e, Event::Disconnected { .. })),
        "{seen:?}"
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn dropping_the_connection_resets_it() {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Mutex::new(Some(tx));
    let addr = serve(move |mut stream| {
        let mut buf = [0u8; 16];
        let read = std::io::Read::read(&mut stream, &mut buf).map_err(|e| e.kind());
        if let Some(tx) = tx.lock().unwrap().take() {
            let _ = tx.send(read);
        }
    });
    let conn: Connection = within(tcpclient_tokio::connect(addr, config()))
        .await
        .unwrap();

    drop(conn);

    let read = within(rx).await.expect("the server saw the end");
    assert_eq!(read, Err(std::io::ErrorKind::ConnectionReset));
}

#[tokio::test]
async fn a_refused_port_is_a_connect_error_with_its_report() {
    let error = within(tcpclient_tokio::connect(
        ("127.0.0.1", unused_port()),
        Config::new(),
    ))
    .await
    .err()
    .expect("refused");

    let io: std::io::Error = error.clone().into();
    assert_eq!(io.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(error.to_string().contains("refused"), "{error}");
}

#[tokio::test]
async fn sends_from_another_task_wait_for_room() {
    let (addr, received) = slow_reader(Duration::from_millis(1));
    let mut conn = within(tcpclient_tokio::connect(
        addr,
        config().with_send_limit(16 * 1024),
    ))
    .await
    .unwrap();
    let sender = conn.sender();

    let producer = tokio::spawn(async move {
        for _ in 0..64 {
            sender.send_all(Bytes::from(vec![1u8; 4096])).await.unwrap();
        }
        sender.finish().unwrap();
    });
    within(producer).await.unwrap();
    let report = within(conn.closed()).await.expect("a report");

    assert_eq!(report.bytes_written, 64 * 4096, "{report}");
    let _ = received;
}

/// A server whose first connection reads nothing and is reset after a while; later ones
/// read everything.
fn stalls_then_resets_first() -> SocketAddr {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    serve(move |mut stream| {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            std::thread::sleep(Duration::from_millis(300));
            let _ = tcpclient_driver::reset(&stream);
            return;
        }
        let _ = std::io::copy(&mut stream, &mut std::io::sink());
    })
}

#[tokio::test]
async fn a_writer_waiting_for_room_resumes_after_the_session_reconnects() {
    let addr = stalls_then_resets_first();
    let policy = ReconnectPolicy::default().with_initial_delay(Duration::from_millis(20));
    let conn = within(tcpclient_tokio::connect(
        addr,
        config()
            .with_send_limit(16 * 1024)
            .with_socket_options(small_buffers())
            .with_reconnect(policy),
    ))
    .await
    .unwrap();
    let (_reader, mut writer) = tokio::io::split(conn);

    // Far more than the first connection's buffers take: the writer must wait for room.
    within(writer.write_all(&vec![7u8; 4 * 1024 * 1024]))
        .await
        .unwrap();
    within(writer.flush()).await.unwrap();
}

fn small_buffers() -> tcpclient_core::SocketOptions {
    let mut options = tcpclient_core::SocketOptions::default();
    options.send_buffer = Some(16 * 1024);
    options
}

#[tokio::test]
async fn two_tasks_waiting_for_room_both_resume() {
    let (addr, _received) = slow_reader(Duration::from_millis(1));
    let conn = within(tcpclient_tokio::connect(
        addr,
        config().with_send_limit(8 * 1024),
    ))
    .await
    .unwrap();
    let sender = conn.sender();
    let (_reader, mut writer) = tokio::io::split(conn);

    let a = tokio::spawn(async move {
        for _ in 0..32 {
            sender.send_all(Bytes::from(vec![1u8; 4096])).await.unwrap();
        }
    });
    let b = async {
        writer.write_all(&vec![2u8; 64 * 1024]).await.unwrap();
        writer.flush().await.unwrap();
    };

    within(async { tokio::join!(a, b) }).await.0.unwrap();
}

#[tokio::test]
async fn a_tls_stream_cut_without_close_notify_is_a_read_error_not_an_eof() {
    let pki = Pki::new();
    let server_config = pki.server_config();
    let addr = serve(move |stream| {
        let conn = rustls::ServerConnection::new(server_config.clone()).unwrap();
        let mut tls = rustls::StreamOwned::new(conn, stream);
        let _ = std::io::Write::write_all(&mut tls, b"partial answer");
        let _ = std::io::Write::flush(&mut tls);
        // FIN with no close_notify: the answer may have been cut short.
        let _ = tls.sock.shutdown(std::net::Shutdown::Write);
        std::thread::sleep(Duration::from_millis(200));
    });
    let mut conn = within(tcpclient_tokio::connect(
        addr,
        config().with_tls(pki.client_tls()),
    ))
    .await
    .unwrap();
    conn.start_tls().unwrap();
    within(conn.tls_established()).await.unwrap();

    let mut got = Vec::new();
    let read = within(conn.read_to_end(&mut got)).await;

    assert_eq!(got, b"partial answer");
    assert_eq!(
        read.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::UnexpectedEof)
    );
}

#[tokio::test]
async fn a_shut_down_connection_dropped_unread_still_takes_a_large_answer() {
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let done_tx = std::sync::Mutex::new(Some(done_tx));
    let addr = serve(move |mut stream| {
        let mut request = [0u8; 4];
        let _ = std::io::Read::read_exact(&mut stream, &mut request);
        // Far more than the window and the kernel's buffers together.
        let answer = vec![9u8; 64 * 1024 * 1024];
        let sent = std::io::Write::write_all(&mut stream, &answer).is_ok();
        if let Some(tx) = done_tx.lock().unwrap().take() {
            let _ = tx.send(sent);
        }
    });
    let mut conn = within(tcpclient_tokio::connect(addr, config()))
        .await
        .unwrap();
    conn.write_all(b"GET!").await.unwrap();
    conn.shutdown().await.unwrap();

    drop(conn);

    assert_eq!(
        within(done_rx).await,
        Ok(true),
        "the server got its whole answer out"
    );
}

#[tokio::test]
async fn the_end_of_a_half_open_stream_stays_the_end() {
    let (addr, _rest) = half_closing_server();
    let mut conn = within(tcpclient_tokio::connect(
        addr,
        config().with_on_peer_eof(tcpclient_core::OnPeerEof::KeepWriting),
    ))
    .await
    .unwrap();
    let mut buf = [0u8; 16];

    assert_eq!(within(conn.read(&mut buf)).await.unwrap(), 0);
    assert_eq!(
        within(conn.read(&mut buf)).await.unwrap(),
        0,
        "read again: still the end, at once"
    );
    conn.write_all(b"still writing").await.unwrap();
}
