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
    /// The next question about what the peer acknowledged: while our FIN waits for its
    /// acknowledgement, and, once a close waits for the answer, the end of that wait.
    Acknowledgement,
}

impl Timer {
    /// Every timer, in the order they fire when several expire at the same instant: the
    /// broader deadline (the whole connect) wins over the narrower ones (the race's).
    const ALL: [Timer; 8] = [
        Timer::StartDelay,
        Timer::Connect,
        Timer::Race,
        Timer::TlsHandshake,
        Timer::Drain,
        Timer::Stall,
        Timer::Idle,
        Timer::Acknowledgement,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Deadlines indexed by [`Timer`]: no heap, no callbacks, the next one is the minimum.
///
/// Every client keeps one, so a deadline is kept in 8 bytes instead of an `Option<Instant>`'s
/// 16: nanoseconds after the table's origin, plus one, with zero for "not armed". 2^64
/// nanoseconds are 584 years; a deadline further away than that is never.
#[derive(Debug)]
pub(crate) struct TimerTable {
    origin: Instant,
    deadlines: [u64; Timer::ALL.len()],
}

impl TimerTable {
    /// An empty table for a client created at `origin` (no deadline is earlier).
    pub(crate) fn new(origin: Instant) -> Self {
        Self {
            origin,
            deadlines: [0; Timer::ALL.len()],
        }
    }

    /// Arms `timer` to fire `after` from `now`. A deadline too far to represent is never.
    pub(crate) fn set(&mut self, timer: Timer, now: Instant, after: Duration) {
        self.set_at(timer, now.checked_add(after));
    }

    /// Arms `timer` at an absolute instant (`None` disarms it). An instant before the
    /// origin is the origin: already past either way.
    pub(crate) fn set_at(&mut self, timer: Timer, at: Option<Instant>) {
        let encoded = at.map_or(0, |at| {
            let nanos = at.saturating_duration_since(self.origin).as_nanos();
            u64::try_from(nanos).map_or(0, |n| n.saturating_add(1))
        });
        self.deadlines[timer.index()] = encoded;
    }

    /// The instant deadlines are counted from: the client's creation.
    pub(crate) fn origin(&self) -> Instant {
        self.origin
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.decode(self.deadlines[timer.index()])
    }

    fn decode(&self, encoded: u64) -> Option<Instant> {
        let nanos = encoded.checked_sub(1)?;
        self.origin.checked_add(Duration::from_nanos(nanos))
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        self.deadlines[timer.index()] = 0;
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = [0; Timer::ALL.len()];
    }

    /// Returns the earliest armed deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        let earliest = self.deadlines.iter().filter(|&&d| d != 0).min()?;
        self.decode(*earliest)
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

#[cfg(test)]
mod tests {
    use super::*;

    // The one clock reading of these tests: time never passes in them.
    #[allow(clippy::disallowed_methods)]
    fn origin() -> Instant {
        Instant::now()
    }

    #[test]
    fn a_deadline_comes_back_to_the_nanosecond_and_the_earliest_is_next() {
        let origin = origin();
        let mut table = TimerTable::new(origin);
        table.set(Timer::Drain, origin, Duration::from_nanos(1_000_000_007));
        table.set(
            Timer::Idle,
            origin + Duration::from_secs(3),
            Duration::from_nanos(1),
        );
        table.set_at(Timer::StartDelay, Some(origin));

        assert_eq!(
            table.get(Timer::Drain),
            Some(origin + Duration::from_nanos(1_000_000_007))
        );
        assert_eq!(
            table.get(Timer::Idle),
            Some(origin + Duration::from_nanos(3_000_000_001))
        );
        assert_eq!(
            table.next(),
            Some(origin),
            "a deadline at the origin is armed"
        );
        assert_eq!(table.take_expired(origin), Some(Timer::StartDelay));
        assert_eq!(table.next(), table.get(Timer::Drain));
        assert_eq!(table.get(Timer::Race), None);
    }

    #[test]
    fn an_instant_before_the_origin_is_the_origin_and_an_unrepresentable_one_is_never() {
        let origin = origin();
        let mut table = TimerTable::new(origin + Duration::from_secs(1));
        table.set_at(Timer::Race, Some(origin));
        table.set(
            Timer::Connect,
            origin,
            Duration::from_secs(600 * 365 * 24 * 3600),
        );
        table.set(Timer::Stall, origin, Duration::MAX);

        assert_eq!(
            table.get(Timer::Race),
            Some(origin + Duration::from_secs(1))
        );
        assert_eq!(table.get(Timer::Connect), None, "past 2^64 ns");
        assert_eq!(table.get(Timer::Stall), None);
        table.stop_all();
        assert_eq!(table.next(), None);
    }
}
