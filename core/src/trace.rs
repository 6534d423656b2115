//! One trace schema for every tool that records a client's life (the `tcpclient` program's
//! `--trace`, the simulator's traces): a JSON object per input, request and output, in the
//! core's vocabulary. With the `trace` feature.
//!
//! Every line is `{"t_us": …, "kind": …, …}`:
//!
//! | kind | what | fields |
//! |---|---|---|
//! | `in` | what went into the client: a driver's [`Input`] or an application's [`Request`] | `input` (its name), `details` |
//! | `out` | what came out: an [`Output`], events included | `output` (its name, an event's for an event), `details` |
//! | `refused` | the client refused what went in | `why` |
//! | `note` | something outside the client (a fault, the end of a run) | `what`, `details` |
//!
//! Byte counts are `bytes`, times are microseconds (`_us`), errors are names (`error`,
//! `tls_error`, `outcome`) with the sentence in `reason`.
//!
//! ```
//! use std::time::Duration;
//! use tcpclient_core::{Input, trace};
//!
//! let line = trace::input(Duration::from_millis(5), &Input::Written(42));
//! assert_eq!(line.to_string(), r#"{"details":{"bytes":42},"input":"Written","kind":"in","t_us":5000}"#);
//! ```

use std::time::Duration;

use serde_json::{Value, json};

use crate::{CloseReport, Error, Event, Input, InvalidInput, Output, Request, Unacknowledged};

/// The line for a driver's report, at `at` since the trace's start.
pub fn input(at: Duration, input: &Input<'_>) -> Value {
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
    line(
        at,
        "in",
        json!({ "input": input.name(), "details": details }),
    )
}

/// The line for an application's request, at `at`: it goes in as an input does.
pub fn request(at: Duration, request: &Request) -> Value {
    let details = match request {
        Request::Send(data) | Request::SendPreamble(data) => json!({ "bytes": data.len() }),
        Request::Consumed(n) | Request::Acknowledged(n) => json!({ "bytes": n }),
        Request::Reconnect(leave) => json!({ "leave": format!("{leave:?}") }),
        _ => json!({}),
    };
    line(
        at,
        "in",
        json!({ "input": request.name(), "details": details }),
    )
}

/// The line for an output of the client, at `at`.
pub fn output(at: Duration, output: &Output) -> Value {
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
        Output::Event(event) => event_details(event),
        _ => json!({}),
    };
    line(
        at,
        "out",
        json!({ "output": output.name(), "details": details }),
    )
}

/// The line for an event, at `at`: the same as the [`Output::Event`] carrying it, for a
/// driver that hands the application events rather than outputs.
pub fn event(at: Duration, event: &Event) -> Value {
    line(
        at,
        "out",
        json!({ "output": event.name(), "details": event_details(event) }),
    )
}

/// The line for a refusal of what went in, at `at`.
pub fn refused(at: Duration, refusal: &InvalidInput) -> Value {
    line(at, "refused", json!({ "why": refusal.to_string() }))
}

/// The line for something outside the client (a fault, an interrupt, the end of a run).
pub fn note(at: Duration, what: &str, details: Value) -> Value {
    line(at, "note", json!({ "what": what, "details": details }))
}

fn line(at: Duration, kind: &str, body: Value) -> Value {
    let t_us = u64::try_from(at.as_micros()).unwrap_or(u64::MAX);
    let mut line = json!({ "t_us": t_us, "kind": kind });
    if let (Some(line), Value::Object(body)) = (line.as_object_mut(), body) {
        line.extend(body);
    }
    line
}

fn event_details(event: &Event) -> Value {
    match event {
        Event::Connected(addr) => json!({ "addr": addr.to_string() }),
        Event::Data(data) | Event::Undelivered(data) => json!({ "bytes": data.len() }),
        Event::TlsEstablished(info) => json!({
            "version": info.protocol_version.map(|v| v.as_str().unwrap_or("unknown")),
            "cipher_suite": info.cipher_suite.map(|s| s.as_str().unwrap_or("unknown")),
            "key_exchange_group": info.key_exchange_group.map(|g| g.as_str().unwrap_or("unknown")),
            "alpn": info.alpn_protocol.as_ref().map(|p| String::from_utf8_lossy(p).into_owned()),
            "resumed": info.resumed,
        }),
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
            "delay_us": u64::try_from(delay.as_micros()).unwrap_or(u64::MAX),
        }),
        Event::Disconnected { generation, report } => {
            let mut details = report_details(report);
            if let Some(details) = details.as_object_mut() {
                details.insert("generation".into(), json!(generation));
            }
            details
        }
        Event::Closed(report) => report_details(report),
        _ => json!({}),
    }
}

fn report_details(report: &CloseReport) -> Value {
    let (error, tls_error) = match &report.result {
        Ok(_) => (None, None),
        Err(Error::Tls(tls)) => (Some("Tls"), Some(tls.name())),
        Err(error) => (Some(error.name()), None),
    };
    json!({
        "outcome": report.outcome(),
        "error": error,
        "tls_error": tls_error,
        "reason": report.result.as_ref().err().map(ToString::to_string),
        "bytes_accepted": report.bytes_accepted,
        "bytes_written": report.bytes_written,
        "bytes_confirmed": report.bytes_confirmed,
        "bytes_unconfirmed": report.bytes_unconfirmed,
        "bytes_lost": report.bytes_lost,
        "bytes_undelivered": report.bytes_undelivered,
        "bytes_handed_back": report.bytes_handed_back,
        "bytes_received": report.bytes_received,
        "wire_bytes_written": report.wire_bytes_written,
        "generations": report.generations.len(),
        "peer_closed": report.peer_closed,
        "fin_acknowledged": report.fin_acknowledged,
        "tls_alert_sent": report.tls_alert_sent.map(|a| a.name()),
        "clean": report.is_clean(),
    })
}
