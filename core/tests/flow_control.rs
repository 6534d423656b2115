//! Receive-side flow control and dead-peer detection, on the hand-advanced clock: the exact
//! input at which reading stops and resumes, and the exact instant a stalled connection ends.

use std::time::Duration;

use bytes::Bytes;
use tcpclient_core::{
    AttemptId, Config, Error, Event, Input, InvalidInput, Output, Request, SocketOptions,
};
use tcpclient_testkit::{Harness, Pair, Pki, closed, events, local};

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn base() -> Config {
    Config::new()
}

/// A connected client with `config`, its first outputs drained.
fn connected(config: Config) -> Harness {
    let mut h = Harness::new(local(), config);
    h.outputs();
    h.input(Input::Connected(AttemptId(0)));
    h
}

#[test]
fn reading_stops_at_the_receive_window_and_resumes_when_the_application_consumes() {
    let mut h = connected(base().with_receive_window(Some(10)));
    assert!(h.client.wants_read());

    h.input(Input::Received(b"012345"));
    assert!(h.client.wants_read(), "6 of 10 bytes unconsumed");
    h.input(Input::Received(b"6789"));
    assert!(!h.client.wants_read(), "10 of 10: the window is full");
    assert!(h.client.receive_window_full());

    h.request(Request::Consumed(0));
    assert!(!h.client.wants_read());
    h.request(Request::Consumed(1));
    assert!(
        h.client.wants_read(),
        "one byte consumed: 9 of 10, reading resumes"
    );
    assert_eq!(h.client.bytes_unconsumed(), 9);
}

#[test]
fn a_read_that_crosses_the_window_is_delivered_whole() {
    let mut h = connected(base().with_receive_window(Some(4)));

    let outputs = h.input(Input::Received(b"0123456789"));

    assert_eq!(
        events(&outputs),
        [Event::Data(Bytes::from_static(b"0123456789"))],
        "nothing is held back or lost: the window bounds the reads asked for"
    );
    assert!(!h.client.wants_read());
    assert_eq!(h.client.bytes_unconsumed(), 10);
}

#[test]
fn a_read_taken_while_the_window_is_full_is_still_delivered() {
    // A driver with a read in flight when the window filled: its bytes are the peer's
    // stream, and dropping them would lose data.
    let mut h = connected(base().with_receive_window(Some(4)));
    h.input(Input::Received(b"0123"));
    assert!(!h.client.wants_read());

    let outputs = h.input(Input::Received(b"45"));

    assert_eq!(events(&outputs), [Event::Data(Bytes::from_static(b"45"))]);
    assert_eq!(h.client.bytes_unconsumed(), 6);
}

#[test]
fn consuming_more_than_was_delivered_is_refused_and_changes_nothing() {
    let mut h = connected(base().with_receive_window(Some(10)));
    h.input(Input::Received(b"abc"));

    let refused = h.try_request(Request::Consumed(4));

    assert_eq!(
        refused,
        Err(InvalidInput::ConsumedTooMuch {
            consumed: 4,
            unconsumed: 3
        })
    );
    assert_eq!(h.client.bytes_unconsumed(), 3);
    h.request(Request::Consumed(3));
    assert_eq!(h.client.bytes_unconsumed(), 0);
}

#[test]
fn data_delivered_before_the_close_may_be_consumed_after_it() {
    let mut h = connected(base().with_receive_window(Some(10)));
    h.input(Input::Received(b"last words"));
    h.request(Request::Abort);
    assert!(h.client.is_closed());

    assert_eq!(h.request(Request::Consumed(10)), []);
    assert_eq!(h.client.bytes_unconsumed(), 0);
}

#[test]
fn without_a_window_reading_never_waits_for_the_application() {
    let mut h = connected(base().with_receive_window(None));

    for _ in 0..100 {
        h.input(Input::Received(&[0; 64 * 1024]));
    }

    assert!(h.client.wants_read(), "6.4 MB delivered, none reported");
    assert_eq!(h.client.bytes_unconsumed(), 100 * 64 * 1024);
}

#[test]
fn the_default_window_is_one_mebibyte() {
    let mut h = connected(base());

    h.input(Input::Received(&vec![0; 1024 * 1024 - 1]));
    assert!(h.client.wants_read());
    h.input(Input::Received(b"x"));
    assert!(!h.client.wants_read());
}

#[test]
fn under_tls_the_window_counts_plaintext() {
    let pki = Pki::new();
    let mut pair = Pair::new(
        base()
            .with_tls(pki.client_tls())
            .with_receive_window(Some(1000)),
    );
    pair.request(Request::StartTls);
    pair.server.start_tls(pki.server_config());
    pair.connect();

    pair.server.send(&[7; 999]);
    pair.drive();
    assert_eq!(pair.h.client.bytes_unconsumed(), 999);
    assert!(
        pair.h.client.wants_read(),
        "999 plaintext bytes, not their records"
    );

    pair.server.send(&[7; 1000]);
    pair.drive();
    assert_eq!(pair.h.client.bytes_unconsumed(), 1999);
    assert!(!pair.h.client.wants_read());

    pair.server.send(&[7; 10]);
    pair.drive();
    assert_eq!(
        pair.h.client.bytes_unconsumed(),
        1999,
        "the driver does not read while the window is full"
    );
    pair.request(Request::Consumed(1999));
    assert_eq!(
        pair.h.client.bytes_unconsumed(),
        10,
        "reading resumed once consumed"
    );
}

/// A connected client with 100 bytes handed out at time zero.
fn writing(stall: Option<Duration>) -> Harness {
    let mut h = Harness::new(local(), base().with_stall_timeout(stall));
    h.request(Request::Send(Bytes::from_static(&[1; 100])));
    let outputs = h.input(Input::Connected(AttemptId(0)));
    assert!(outputs.contains(&Output::Transmit(Bytes::from_static(&[1; 100]))));
    h
}

#[test]
fn a_connection_with_no_write_progress_is_stalled_at_the_last_progress_plus_the_stall_timeout() {
    let mut h = writing(Some(secs(30)));
    assert_eq!(
        h.deadline(),
        Some(secs(30)),
        "armed when the bytes were handed out"
    );

    h.advance(secs(10));
    h.input(Input::Written(40));
    assert_eq!(h.deadline(), Some(secs(40)), "progress restarts it");

    h.advance(secs(29));
    assert_eq!(h.input(Input::Timeout), [], "an early timeout does nothing");
    let outputs = h.fire();

    assert_eq!(h.elapsed(), secs(40));
    let report = closed(&outputs);
    assert_eq!(report.result, Err(Error::Stalled));
    assert_eq!(report.bytes_written, 40);
    assert_eq!(report.bytes_undelivered, 60);
}

#[test]
fn the_stall_deadline_stops_once_everything_is_written() {
    let mut h = writing(Some(secs(30)));

    h.advance(secs(1));
    h.input(Input::Written(100));

    assert_eq!(h.deadline(), None, "nothing waits to be written");
}

#[test]
fn a_quiet_connection_that_only_reads_never_stalls() {
    let mut h = connected(base());
    h.input(Input::Received(b"hello"));

    assert_eq!(h.deadline(), None);
}

#[test]
fn stall_and_idle_are_told_apart() {
    let mut h = Harness::new(
        local(),
        base()
            .with_stall_timeout(Some(secs(5)))
            .with_idle_timeout(Some(secs(5))),
    );
    h.request(Request::Send(Bytes::from_static(b"queued")));
    h.input(Input::Connected(AttemptId(0)));

    let outputs = h.fire();

    assert_eq!(
        closed(&outputs).result,
        Err(Error::Stalled),
        "with bytes waiting, the same instant is a stall, not idleness"
    );
}

#[test]
fn without_a_stall_timeout_unwritten_bytes_wait_for_other_deadlines() {
    let h = writing(None);

    assert_eq!(h.deadline(), None);
}

#[test]
fn the_defaults_find_a_vanished_peer() {
    let config = base();

    assert_eq!(config.stall_timeout, Some(secs(30)));
    let options = SocketOptions::default();
    assert_eq!(options.user_timeout, Some(secs(30)));
    let keepalive = options.keepalive.expect("keepalive on by default");
    assert_eq!((keepalive.idle, keepalive.interval), (secs(15), secs(15)));
}

#[test]
fn a_send_that_fills_the_queue_exactly_to_its_limit_is_taken_and_one_byte_more_is_not() {
    let mut h = connected(base().with_send_limit(10));
    h.request(Request::Send(Bytes::from_static(b"012345")));

    assert!(
        h.try_request(Request::Send(Bytes::from_static(b"6789")))
            .is_ok(),
        "6 + 4 bytes: the queue at its limit, not past it"
    );
    assert!(matches!(
        h.try_request(Request::Send(Bytes::from_static(b"x"))),
        Err(InvalidInput::QueueFull { .. })
    ));
}

#[test]
fn many_small_plaintext_sends_leave_as_one_transmit_of_up_to_64_kib() {
    let mut h = connected(base());
    for _ in 0..1000 {
        let message = Bytes::from(vec![b'x'; 64]);
        h.client.send(h.now, message).unwrap();
    }

    let outputs = h.outputs();

    let transmits: Vec<usize> = outputs
        .iter()
        .filter_map(|o| match o {
            Output::Transmit(b) => Some(b.len()),
            _ => None,
        })
        .collect();
    assert_eq!(transmits, [64_000], "one write for a thousand sends");
}
