//! Traces: every input, request and output of the core with its simulated time, as JSON
//! lines of the core's one trace schema (`tcpclient_core::trace`), and a hash of the whole.
//! The same seed gives a byte-identical trace.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::Value;
use tcpclient_core::{Input, InvalidInput, Output, Request, trace};

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
        self.push(trace::note(at, what, details));
    }

    pub(crate) fn input(&self, now: Instant, input: &Input<'_>) {
        self.push(trace::input(sim_time(now), input));
    }

    pub(crate) fn request(&self, now: Instant, request: &Request) {
        self.push(trace::request(sim_time(now), request));
    }

    pub(crate) fn refused(&self, now: Instant, refusal: &InvalidInput) {
        self.push(trace::refused(sim_time(now), refusal));
    }

    pub(crate) fn output(&self, now: Instant, output: &Output) {
        self.push(trace::output(sim_time(now), output));
    }

    fn push(&self, line: Value) {
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
