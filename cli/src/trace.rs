//! `--trace`: every lifecycle event as one JSON line on standard error.

use std::io::Write;
use std::time::Instant;

use serde_json::{Value, json};
use tcpclient_core::{Ending, Event};

/// Writes trace lines when enabled, stamped with seconds since the start.
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

    /// Traces something the application did or asked for.
    pub fn note(&self, what: &str, details: Value) {
        if !self.enabled {
            return;
        }
        let mut line = json!({ "t": self.start.elapsed().as_secs_f64(), "event": what });
        if let (Some(line), Value::Object(details)) = (line.as_object_mut(), details) {
            line.extend(details);
        }
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{line}");
    }

    /// Traces an event from the connection.
    pub fn event(&self, event: &Event) {
        if !self.enabled {
            return;
        }
        match event {
            Event::Connected(peer) => self.note("connected", json!({ "peer": peer.to_string() })),
            Event::Data(data) => self.note("data", json!({ "bytes": data.len() })),
            Event::TlsEstablished(info) => self.note(
                "tls_established",
                json!({
                    "version": info.protocol_version.map(|v| format!("{v:?}")),
                    "cipher_suite": info.cipher_suite.map(|s| format!("{s:?}")),
                    "alpn": info.alpn_protocol.as_ref().map(|p| String::from_utf8_lossy(p).into_owned()),
                }),
            ),
            Event::PeerClosed => self.note("peer_closed", json!({})),
            Event::SendReady => self.note("send_ready", json!({})),
            Event::Closed(report) => {
                let (ending, error) = match &report.result {
                    Ok(ending) => (Some(ending_name(*ending)), None),
                    Err(error) => (None, Some(error.to_string())),
                };
                self.note(
                    "closed",
                    json!({
                        "ending": ending,
                        "error": error,
                        "bytes_accepted": report.bytes_accepted,
                        "bytes_written": report.bytes_written,
                        "bytes_undelivered": report.bytes_undelivered,
                        "bytes_received": report.bytes_received,
                        "wire_bytes_written": report.wire_bytes_written,
                        "peer_closed": report.peer_closed,
                        "clean": report.is_clean(),
                    }),
                );
            }
            other => self.note("other", json!({ "debug": format!("{other:?}") })),
        }
    }
}

fn ending_name(ending: Ending) -> &'static str {
    match ending {
        Ending::Finished => "finished",
        Ending::PeerClosed => "peer_closed",
        Ending::Aborted => "aborted",
        _ => "other",
    }
}
