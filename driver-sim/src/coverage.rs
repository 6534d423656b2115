//! What a sweep reached: "sometimes" assertions. A clean sweep proves little unless it went
//! everywhere: every phase, every way a connection ends, each Happy Eyeballs outcome, each
//! reconnect path, the receive window filling and reopening. `sweep --require-coverage`
//! fails when a cell was never reached.

use std::collections::BTreeMap;

use crate::buggify::Point;
use tcpclient_core::{AttemptOutcome, Client, CloseReport, Event, Output, Phase};

/// Hits per cell.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Coverage {
    hits: BTreeMap<String, u64>,
    /// The receive window was full at the last look.
    window_full: bool,
}

/// Happy Eyeballs outcomes of single attempts that a sweep must see.
const ATTEMPTS: [&str; 3] = ["Won", "Refused", "Cancelled"];

/// Reconnect paths.
const SESSION: [&str; 8] = [
    "first reconnect",
    "reconnect again",
    "reconnected",
    "backoff reset after a stable connection",
    "bytes handed back mid-session",
    "session ended by its policy",
    "preamble on a reconnect",
    "replay from an acknowledgement",
];

impl Coverage {
    /// Every cell a sweep must reach.
    pub fn required() -> Vec<String> {
        let mut cells: Vec<String> = Phase::ALL
            .iter()
            .map(|p| format!("phase {}", p.name()))
            .collect();
        // Every way a run can end, but `DriverStopped`: the simulator's driver cannot stop
        // under a connection.
        cells.extend(
            CloseReport::OUTCOMES
                .iter()
                .filter(|o| **o != "DriverStopped")
                .map(|e| format!("ending {e}")),
        );
        cells.extend(ATTEMPTS.iter().map(|a| format!("attempt {a}")));
        cells.extend(SESSION.iter().map(|s| format!("session {s}")));
        cells.extend(
            ["window full", "window reopened", "SendReady", "Undelivered"]
                .iter()
                .map(|c| format!("flow {c}")),
        );
        cells.push("liveness finished after the heal".into());
        cells.extend(Point::ALL.iter().map(|p| format!("buggify {}", p.name())));
        cells
    }

    /// Counts one hit of `cell`.
    pub fn hit(&mut self, cell: impl Into<String>) {
        *self.hits.entry(cell.into()).or_default() += 1;
    }

    /// Adds `other`'s hits.
    pub fn merge(&mut self, other: &Coverage) {
        for (cell, n) in &other.hits {
            *self.hits.entry(cell.clone()).or_default() += n;
        }
    }

    /// Hits of `cell`.
    pub fn hits(&self, cell: &str) -> u64 {
        self.hits.get(cell).copied().unwrap_or(0)
    }

    /// The required cells never reached.
    pub fn missing(&self) -> Vec<String> {
        Self::required()
            .into_iter()
            .filter(|cell| self.hits(cell) == 0)
            .collect()
    }

    /// Looks at the client after an input or output: its phase, its window.
    pub(crate) fn observe_client(&mut self, engine: &Client) {
        self.hit(format!("phase {}", engine.phase().name()));
        let full = engine.receive_window_full();
        if full && !self.window_full {
            self.hit("flow window full");
        }
        if !full && self.window_full {
            self.hit("flow window reopened");
        }
        self.window_full = full;
    }

    /// Looks at an output.
    pub(crate) fn observe_output(&mut self, output: &Output, session: bool) {
        let Output::Event(event) = output else {
            return;
        };
        match event {
            Event::SendReady => self.hit("flow SendReady"),
            Event::Undelivered(_) => self.hit("flow Undelivered"),
            Event::Reconnecting { attempt: 0, .. } => self.hit("session first reconnect"),
            Event::Reconnecting { .. } => self.hit("session reconnect again"),
            Event::Reconnected { .. } => self.hit("session reconnected"),
            Event::Disconnected { report, .. } => {
                if report.bytes_undelivered > 0 {
                    self.hit("session bytes handed back mid-session");
                }
                self.attempts(report);
            }
            Event::Closed(report) => {
                self.hit(format!("ending {}", report.outcome()));
                if session && report.result.is_err() {
                    self.hit("session session ended by its policy");
                }
                self.attempts(report);
            }
            _ => {}
        }
    }

    /// A reconnect after a stable connection starts from attempt 0 again, after a later
    /// attempt was seen: the trace of a backoff reset.
    pub(crate) fn observe_backoff(&mut self, attempt: u32, previous: Option<u32>) {
        if attempt == 0 && previous.is_some() {
            self.hit("session backoff reset after a stable connection");
        }
    }

    fn attempts(&mut self, report: &CloseReport) {
        for attempt in &report.attempts {
            let name = match attempt.outcome {
                AttemptOutcome::Won => "Won",
                AttemptOutcome::Refused => "Refused",
                AttemptOutcome::Cancelled => "Cancelled",
                other => other.name(),
            };
            self.hit(format!("attempt {name}"));
        }
    }

    /// Every cell with its hits, required cells first (zeros included), then the others.
    pub fn table(&self) -> Vec<(String, u64)> {
        let required = Self::required();
        let mut rows: Vec<(String, u64)> = required
            .iter()
            .map(|cell| (cell.clone(), self.hits(cell)))
            .collect();
        rows.extend(
            self.hits
                .iter()
                .filter(|(cell, _)| !required.contains(cell))
                .map(|(cell, n)| (cell.clone(), *n)),
        );
        rows
    }
}
