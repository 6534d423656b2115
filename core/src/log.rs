//! Diagnostics through `tracing`, behind the `tracing` feature: a span per client, an event
//! per phase change, per refused input and at the close. Without the feature this is a
//! zero-sized type whose methods do nothing, and a client carries no span.

use std::net::SocketAddr;

use crate::report::Attempt;
use crate::{AttemptId, CloseReport, Destination, InvalidInput, Phase};

/// What a client tells `tracing` about itself.
#[derive(Debug)]
pub(crate) struct Log {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
    #[cfg(feature = "tracing")]
    phase: Phase,
}

#[cfg(feature = "tracing")]
impl Log {
    pub(crate) fn new(destination: &Destination) -> Self {
        let span =
            tracing::debug_span!("client", host = %destination.host, port = destination.port);
        Self {
            span,
            phase: Phase::Delay,
        }
    }

    /// Records the phase a new client starts in.
    pub(crate) fn created(&mut self, phase: Phase) {
        tracing::debug!(parent: &self.span, phase = phase.name(), "created");
        self.phase = phase;
    }

    /// Records what an input did: a refusal, a phase change.
    pub(crate) fn input(
        &mut self,
        input: &'static str,
        result: &Result<(), InvalidInput>,
        phase: Phase,
    ) {
        if let Err(refusal) = result {
            tracing::debug!(parent: &self.span, input, reason = %refusal, "refused");
        }
        self.phase(phase);
    }

    /// Records the phase, if it changed.
    pub(crate) fn phase(&mut self, phase: Phase) {
        if phase != self.phase {
            tracing::debug!(parent: &self.span, from = self.phase.name(), to = phase.name(), "phase");
            self.phase = phase;
        }
    }

    pub(crate) fn attempt_started(&self, attempt: AttemptId, addr: SocketAddr) {
        tracing::debug!(parent: &self.span, attempt = attempt.0, %addr, "attempt started");
    }

    pub(crate) fn attempt_ended(&self, attempt: &Attempt) {
        let millis = attempt.ended.saturating_sub(attempt.started).as_millis() as u64;
        tracing::debug!(
            parent: &self.span,
            attempt = attempt.id.0,
            addr = %attempt.addr,
            outcome = %attempt.outcome,
            after_ms = millis,
            "attempt ended"
        );
    }

    pub(crate) fn closed(&mut self, report: &CloseReport) {
        self.phase = Phase::Closed;
        tracing::debug!(
            parent: &self.span,
            outcome = report.outcome(),
            accepted = report.bytes_accepted,
            written = report.bytes_written,
            confirmed = report.bytes_confirmed,
            unconfirmed = report.bytes_unconfirmed,
            lost = report.bytes_lost,
            undelivered = report.bytes_undelivered,
            received = report.bytes_received,
            tls_alert_sent = report.tls_alert_sent.map(|a| a.name()),
            "closed"
        );
    }
}

#[cfg(not(feature = "tracing"))]
impl Log {
    #[inline(always)]
    pub(crate) fn new(_destination: &Destination) -> Self {
        Self {}
    }

    #[inline(always)]
    pub(crate) fn created(&mut self, _phase: Phase) {}

    #[inline(always)]
    pub(crate) fn input(
        &mut self,
        _input: &'static str,
        _result: &Result<(), InvalidInput>,
        _phase: Phase,
    ) {
    }

    #[inline(always)]
    pub(crate) fn phase(&mut self, _phase: Phase) {}

    #[inline(always)]
    pub(crate) fn attempt_started(&self, _attempt: AttemptId, _addr: SocketAddr) {}

    #[inline(always)]
    pub(crate) fn attempt_ended(&self, _attempt: &Attempt) {}

    #[inline(always)]
    pub(crate) fn closed(&mut self, _report: &CloseReport) {}
}
