//! Helpers for the driver's tests: running an `EventLoop` or a `Runtime` connection to its
//! end, within a time limit. The loopback servers are `tcpclient_testkit::loopback`'s.

#![allow(dead_code)]

use std::time::{Duration, Instant};

use tcpclient_core::Event;
use tcpclient_polling::{ConnId, Connection, EventLoop};

// Each test file uses some of these.
#[allow(unused_imports)]
pub use tcpclient_testkit::loopback::*;

/// Turns `event_loop` until every connection has closed; returns each event with its id.
/// Panics if that takes longer than `limit`.
pub fn run_to_end(event_loop: &mut EventLoop, limit: Duration) -> Vec<(ConnId, Event)> {
    let deadline = Instant::now() + limit;
    let mut events = Vec::new();
    while !event_loop.is_empty() {
        assert!(
            Instant::now() < deadline,
            "connections still open after {limit:?}"
        );
        event_loop
            .turn(Some(Duration::from_millis(100)))
            .expect("turn");
        while let Some(event) = event_loop.poll_event() {
            events.push(event);
        }
    }
    events
}

/// Takes a connection's notifications until its close report, within `limit`.
pub fn events_until_closed(conn: &Connection, limit: Duration) -> Vec<Event> {
    events_until(conn, limit, |e| matches!(e, Event::Closed(_)))
}

/// Takes a connection's notifications until an event `last` accepts (or the close report),
/// within `limit`.
pub fn events_until(
    conn: &Connection,
    limit: Duration,
    last: impl Fn(&Event) -> bool,
) -> Vec<Event> {
    let deadline = Instant::now() + limit;
    let mut events = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no such event within {limit:?}: {events:?}"
        );
        if let Ok(Some(event)) = conn.recv_timeout(left) {
            let done = last(&event) || matches!(event, Event::Closed(_));
            events.push(event);
            if done {
                return events;
            }
        }
    }
}

/// The close report among `events`.
pub fn report(events: &[Event]) -> &tcpclient_core::CloseReport {
    match events.last() {
        Some(Event::Closed(report)) => report,
        other => panic!("expected Closed last, got {other:?}"),
    }
}
