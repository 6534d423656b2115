//! Happy Eyeballs and socket options over real sockets on loopback: a black-holed first
//! address costs the attempt delay, not the attempt timeout; an abort resets.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use tcpclient_core::{AttemptOutcome, Config, Ending, Event};
use tcpclient_polling::{EventLoop, FixedResolver};

const LIMIT: Duration = Duration::from_secs(20);

/// Answers every name with one address per family, ports and all.
fn dual_stack(v6: SocketAddr, v4: SocketAddr) -> FixedResolver {
    FixedResolver {
        v6: vec![v6],
        v4: vec![v4],
    }
}

#[test]
fn a_black_holed_ipv6_address_costs_the_attempt_delay_not_the_attempt_timeout() {
    let hole = black_hole("[::1]:0".parse().unwrap()).unwrap();
    let v6 = hole.addr;
    let v4 = echo_server();
    let mut event_loop = EventLoop::with_resolver(dual_stack(v6, v4)).unwrap();
    let id = event_loop.connect(("dual.test", 80), Config::new());
    event_loop.send(id, Bytes::from_static(b"ping")).unwrap();
    event_loop.finish(id).unwrap();

    let events = run_to_end(&mut event_loop, LIMIT);

    let events: Vec<Event> = events.into_iter().map(|(_, e)| e).collect();
    assert_eq!(events[0], Event::Connected(v4));
    let report = report(&events);
    assert_eq!(report.result, Ok(Ending::Finished));
    let [first, second] = &report.attempts[..] else {
        panic!("{:?}", report.attempts)
    };
    assert_eq!((first.addr, first.outcome), (v6, AttemptOutcome::Cancelled));
    assert_eq!((second.addr, second.outcome), (v4, AttemptOutcome::Won));
    let delay = second.started - first.started;
    let connected = second.ended - first.started;
    assert!(delay >= Duration::from_millis(250), "{delay:?}");
    assert!(
        connected < Duration::from_secs(1),
        "connected after {connected:?}: the 5 s attempt timeout was not waited out"
    );
    assert_eq!(
        first.ended, second.ended,
        "IPv6 cancelled the instant IPv4 won"
    );
}

#[test]
fn an_abort_resets_the_connection_so_the_peer_sees_a_reset_not_an_end() {
    let (seen_tx, seen) = mpsc::channel();
    let addr = serve(move |mut stream| {
        let mut buf = [0u8; 1024];
        let end = loop {
            match stream.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(_) => continue,
                Err(e) => break Err(e.kind()),
            }
        };
        let _ = seen_tx.send(end);
    });
    let mut event_loop = EventLoop::new().unwrap();
    let id = event_loop.connect(("127.0.0.1", addr.port()), Config::new());
    event_loop
        .send(id, Bytes::from_static(b"a partial message"))
        .unwrap();
    let deadline = Instant::now() + LIMIT;
    while event_loop.client(id).is_none_or(|c| c.bytes_written() < 17) {
        assert!(Instant::now() < deadline);
        event_loop.turn(Some(Duration::from_millis(10))).unwrap();
    }

    event_loop.abort(id).unwrap();
    run_to_end(&mut event_loop, LIMIT);

    assert_eq!(
        seen.recv_timeout(LIMIT),
        Ok(Err(std::io::ErrorKind::ConnectionReset)),
        "a FIN would tell the peer the stream was complete"
    );
}

#[test]
fn a_finish_ends_with_a_fin() {
    let (seen_tx, seen) = mpsc::channel();
    let addr = serve(move |mut stream| {
        let mut all = Vec::new();
        let _ = seen_tx.send(
            stream
                .read_to_end(&mut all)
                .map(|_| all.len())
                .map_err(|e| e.kind()),
        );
    });
    let mut event_loop = EventLoop::new().unwrap();
    let id = event_loop.connect(("127.0.0.1", addr.port()), Config::new());
    event_loop
        .send(id, Bytes::from_static(b"complete"))
        .unwrap();
    event_loop.finish(id).unwrap();

    run_to_end(&mut event_loop, LIMIT);

    assert_eq!(seen.recv_timeout(LIMIT), Ok(Ok(8)));
}
