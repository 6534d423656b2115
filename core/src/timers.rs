//! The fixed table of deadlines the client can have armed.

use std::time::{Duration, Instant};

/// One kind of deadline. Each kind is armed at most once at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// The end of [`Config::delay`](crate::Config::delay).
    StartDelay,
    /// The race's next moment: an attempt's cap, the attempt delay, the resolution delay.
    Race,
    /// The end of the overall connect timeout.
    Connect,
    /// The end of the TLS handshake timeout.
    TlsHandshake,
    /// The end of a graceful shutdown.
    Drain,
    /// The end of the write-stall timeout.
    Stall,
    /// The end of the idle timeout.
    Idle,
}

impl Timer {
    /// Every timer, in the order they fire when several expire at the same instant: the
    /// broader deadline (the whole connect) wins over the narrower ones (the race's).
    const ALL: [Timer; 7] = [
        Timer::StartDelay,
        Timer::Connect,
        Timer::Race,
        Timer::TlsHandshake,
        Timer::Drain,
        Timer::Stall,
        Timer::Idle,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Deadlines indexed by [`Timer`]: no heap, no callbacks, the next one is the minimum.
#[derive(Debug, Default)]
pub(crate) struct TimerTable {
    deadlines: [Option<Instant>; Timer::ALL.len()],
}

impl TimerTable {
    /// Arms `timer` to fire `after` from `now`. A deadline too far to represent is never.
    pub(crate) fn set(&mut self, timer: Timer, now: Instant, after: Duration) {
        self.deadlines[timer.index()] = now.checked_add(after);
    }

    /// Arms `timer` at an absolute instant (`None` disarms it).
    pub(crate) fn set_at(&mut self, timer: Timer, at: Option<Instant>) {
        self.deadlines[timer.index()] = at;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.deadlines[timer.index()]
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = None;
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = Default::default();
    }

    /// Returns the earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// Disarms and returns the first timer (in firing order) whose deadline is at or before `now`.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let timer = Timer::ALL
            .into_iter()
            .find(|t| self.get(*t).is_some_and(|deadline| deadline <= now))?;
        self.stop(timer);
        Some(timer)
    }
}
