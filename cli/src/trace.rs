//! `--trace`: every event of the connection and every request the program makes, one JSON
//! line each on standard error, in the simulator's trace vocabulary: the core's names for
//! inputs and outputs (`Input::name`, `Output::name`), errors as names, not text.

use std::io::Write;
use std::time::Instant;

use serde_json::{Value, json};
use tcpclient_core::{Error, Event};

/// Writes trace lines when enabled, stamped with microseconds since the start.
#[derive(Debug, Clone)]
pub struct Trace {
    enabled: bool,
    start: Instant,
}

impl Trace {
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            start: Instant::now(),
        }
    }

    /// Traces a request the program made of the connection (`Send`, `StartTls`, `Finish`,
    /// `Abort`: the names of the core's inputs).
    pub fn request(&self, input: &'static str, details: Value) {
        self.line(json!({ "kind": "in", "input": input, "details": details }));
    }

    /// Traces something that happened to the program itself (an interrupt).
    pub fn note(&self, what: &str) {
        self.line(json!({ "kind": "note", "what": what }));
    }

    /// Traces an event from the connection.
    pub fn event(&self, event: &Event) {
        if !self.enabled {
            return;
        }
        let details = match event {
            Event::Connected(peer) => json!({ "addr": peer.to_string() }),
            Event::Data(data) | Event::Undelivered(data) => json!({ "bytes": data.len() }),
            Event::TlsEstablished(info) => json!({
                "version": info.protocol_version.map(|v| v.as_str().unwrap_or("unknown")),
                "cipher_suite": info.cipher_suite.map(|s| s.as_str().unwrap_or("unknown")),
                "alpn": info.alpn_protocol.as_ref().map(|p| String::from_utf8_lossy(p).into_owned()),
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
                "delay_ms": delay.as_millis() as u64,
            }),
            Event::Disconnected { generation, report } => json!({
                "generation": generation,
                "outcome": report.outcome(),
                "reason": report.result.as_ref().err().map(ToString::to_string),
            }),
            Event::Closed(report) => {
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
                    "bytes_received": report.bytes_received,
                    "wire_bytes_written": report.wire_bytes_written,
                    "peer_closed": report.peer_closed,
                    "fin_acknowledged": report.fin_acknowledged,
                    "tls_alert_sent": report.tls_alert_sent.map(|a| a.name()),
                    "clean": report.is_clean(),
                })
            }
            _ => json!({}),
        };
        self.line(json!({ "kind": "out", "output": event.name(), "details": details }));
    }

    fn line(&self, mut body: Value) {
        if !self.enabled {
            return;
        }
        let t_us = u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX);
        if let Some(body) = body.as_object_mut() {
            body.insert("t_us".into(), json!(t_us));
        }
        let _ = writeln!(std::io::stderr().lock(), "{body}");
    }
}
