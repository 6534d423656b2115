//! `--trace`: every event of the connection and every request the program makes, one JSON
//! line each on standard error, in the core's one trace schema (`tcpclient_core::trace`),
//! the simulator's too.

use std::io::Write;
use std::time::Instant;

use serde_json::Value;
use tcpclient_core::{Event, Request, trace};

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

    /// Traces a request the program made of the connection.
    pub fn request(&self, request: &Request) {
        self.request_with(request, Value::Null);
    }

    /// Traces a request, with `extra` details of the program's own (a dialogue's line).
    pub fn request_with(&self, request: &Request, extra: Value) {
        if !self.enabled {
            return;
        }
        let mut line = trace::request(self.start.elapsed(), request);
        if let (Some(details), Value::Object(extra)) = (line["details"].as_object_mut(), extra) {
            details.extend(extra);
        }
        self.write(&line);
    }

    /// Traces something that happened to the program itself (an interrupt).
    pub fn note(&self, what: &str) {
        if self.enabled {
            self.write(&trace::note(self.start.elapsed(), what, Value::Null));
        }
    }

    /// Traces an event from the connection.
    pub fn event(&self, event: &Event) {
        if self.enabled {
            self.write(&trace::event(self.start.elapsed(), event));
        }
    }

    fn write(&self, line: &Value) {
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }
}
