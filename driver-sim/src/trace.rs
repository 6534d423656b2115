//! Traces: every input and output of the core with its simulated time, as JSON lines, and a
//! hash of the whole. The same seed gives a byte-identical trace.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tcpclient_core::{Event, Input, InvalidInput, Output, Request, Unacknowledged};

/// A shared, append-only trace. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct Trace {
    lines: Rc<RefCell<Vec<String>>>,
}

impl Trace {
    /// An empty trace.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records something that happened outside the client (a fault, the end of the run), at
    /// simulated time `at`.
    pub fn note(&self, at: Duration, what: &str, details: Value) {
        self.push(at, "note", json!({ "what": what, "details": details }));
    }

    pub(crate) fn input(&self, now: Instant, input: &Input<'_>) {
        let details = match input {
            Input::Received(data) => json!({ "bytes": data.len() }),
            Input::Written(n) => json!({ "bytes": n }),
            Input::Resolved {
                family,
                result: Ok(addrs),
            } => json!({
                "family": family.map(|f| f.name()),
                "addrs": addrs.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
            Input::Resolved {
                family,
                result: Err(kind),
            } => json!({ "family": family.map(|f| f.name()), "kind": format!("{kind:?}") }),
            Input::SocketError(kind) => json!({ "kind": format!("{kind:?}") }),
            Input::Connected(attempt) => json!({ "attempt": attempt.0 }),
            Input::ConnectFailed(attempt, kind) => {
                json!({ "attempt": attempt.0, "kind": format!("{kind:?}") })
            }
            Input::Unacknowledged(Unacknowledged::Known {
                bytes,
                fin_acknowledged,
            }) => json!({ "bytes": bytes, "fin_acknowledged": fin_acknowledged }),
            Input::Unacknowledged(_) => json!({ "unknown": true }),
            _ => json!({}),
        };
        self.push(
            sim_time(now),
            "in",
            json!({ "input": input.name(), "details": details }),
        );
    }

    /// A request, traced as the input it once was (`Send`, `StartTls`, `Finish`, `Abort`,
    /// `Consumed`: "in") or as a reconnecting client's own ("request").
    pub(crate) fn request(&self, now: Instant, request: &Request) {
        let details = match request {
            Request::Send(data) | Request::SendPreamble(data) => json!({ "bytes": data.len() }),
            Request::Consumed(n) | Request::Acknowledged(n) => json!({ "bytes": n }),
            Request::Reconnect(leave) => json!({ "leave": format!("{leave:?}") }),
            _ => json!({}),
        };
        let line = match request {
            Request::Send(_)
            | Request::StartTls
            | Request::Finish
            | Request::Abort
            | Request::Consumed(_) => {
                ("in", json!({ "input": request.name(), "details": details }))
            }
            _ => (
                "request",
                json!({ "request": request.name(), "details": details }),
            ),
        };
        self.push(sim_time(now), line.0, line.1);
    }

    pub(crate) fn refused(&self, now: Instant, refusal: &InvalidInput) {
        self.push(
            sim_time(now),
            "refused",
            json!({ "why": refusal.to_string() }),
        );
    }

    pub(crate) fn output(&self, now: Instant, output: &Output) {
        let details = match output {
            Output::Resolve { host, port } => json!({ "host": host, "port": port }),
            Output::Connect {
                attempt,
                addr,
                options,
            } => json!({
                "attempt": attempt.0,
                "addr": addr.to_string(),
                "nodelay": options.nodelay,
                "keepalive": options.keepalive.is_some(),
                "user_timeout_ms": options.user_timeout.map(|t| t.as_millis() as u64),
                "local": options.local.map(|a| a.to_string()),
            }),
            Output::Cancel(attempt) => json!({ "attempt": attempt.0 }),
            Output::Transmit(bytes) => json!({ "bytes": bytes.len() }),
            Output::ShutdownWrite | Output::QueryUnacknowledged | Output::Close | Output::Reset => {
                json!({})
            }
            Output::Event(event) => event_details(event),
        };
        self.push(
            sim_time(now),
            "out",
            json!({ "output": output.name(), "details": details }),
        );
    }

    fn push(&self, at: Duration, kind: &str, body: Value) {
        let mut line = json!({ "t_us": at.as_micros() as u64, "kind": kind });
        if let (Some(line), Value::Object(body)) = (line.as_object_mut(), body) {
            line.extend(body);
        }
        self.lines.borrow_mut().push(line.to_string());
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lines.borrow().clone()
    }

    /// Every line so far, parsed: for tests that look for events and their instants.
    pub fn values(&self) -> Vec<Value> {
        self.lines
            .borrow()
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    /// The trace as JSON lines.
    pub fn to_jsonl(&self) -> String {
        self.lines
            .borrow()
            .iter()
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// A 64-bit FNV-1a hash of [`Self::to_jsonl`]: stable across runs, platforms and versions.
    pub fn hash(&self) -> u64 {
        fnv1a(self.to_jsonl().as_bytes())
    }
}

fn event_details(event: &Event) -> Value {
    match event {
        Event::Connected(addr) => json!({ "addr": addr.to_string() }),
        Event::Data(data) | Event::Undelivered(data) => json!({ "bytes": data.len() }),
        Event::TlsEstablished(info) => json!({ "tls": info.to_string() }),
        Event::Reconnected {
            generation,
            addr,
            replays_from,
        } => {
            json!({ "generation": generation, "addr": addr.to_string(), "replays_from": replays_from })
        }
        Event::Reconnecting {
            generation,
            attempt,
            delay,
        } => json!({
            "generation": generation,
            "attempt": attempt,
            "delay_us": delay.as_micros() as u64,
        }),
        Event::Disconnected { generation, report } => json!({
            "generation": generation,
            "outcome": report.outcome(),
            "bytes_written": report.bytes_written,
            "bytes_confirmed": report.bytes_confirmed,
            "bytes_unconfirmed": report.bytes_unconfirmed,
            "bytes_lost": report.bytes_lost,
            "bytes_undelivered": report.bytes_undelivered,
        }),
        Event::Closed(report) => {
            let (error, tls_error) = match &report.result {
                Ok(_) => (None, None),
                Err(tcpclient_core::Error::Tls(tls)) => (Some("Tls"), Some(tls.name())),
                Err(error) => (Some(error.name()), None),
            };
            json!({
                "outcome": report.outcome(),
                "error": error,
                "tls_error": tls_error,
                "bytes_accepted": report.bytes_accepted,
                "bytes_written": report.bytes_written,
                "bytes_confirmed": report.bytes_confirmed,
                "bytes_unconfirmed": report.bytes_unconfirmed,
                "bytes_lost": report.bytes_lost,
                "bytes_undelivered": report.bytes_undelivered,
                "bytes_handed_back": report.bytes_handed_back,
                "generations": report.generations.len(),
                "bytes_received": report.bytes_received,
                "wire_bytes_written": report.wire_bytes_written,
                "peer_closed": report.peer_closed,
                "clean": report.is_clean(),
            })
        }
        _ => json!({}),
    }
}

/// Simulated time since the start of the simulation; zero outside one.
fn sim_time(_now: Instant) -> Duration {
    turmoil::sim_elapsed().unwrap_or_default()
}

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
