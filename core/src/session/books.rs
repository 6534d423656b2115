//! A session's books: what each connection's report means for the application's own stream
//! (the preamble left out), and how the connections add up to the session's report.

use crate::CloseReport;

/// What one connection's report says of the application's bytes: its preamble, the first
/// bytes of its stream, left out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct AppCounts {
    pub(super) written: u64,
    pub(super) confirmed: u64,
    pub(super) unconfirmed: u64,
    pub(super) lost: u64,
}

impl AppCounts {
    /// `report`, whose stream began with `preamble` bytes of preamble.
    pub(super) fn of(report: &CloseReport, preamble: u64) -> Self {
        let through = report.bytes_confirmed + report.bytes_unconfirmed;
        let through_app = through.saturating_sub(preamble);
        let written = report.bytes_written.saturating_sub(preamble);
        let (confirmed, unconfirmed) = match report.bytes_confirmed {
            0 => (0, through_app),
            _ => (through_app, 0),
        };
        Self {
            written,
            confirmed,
            unconfirmed,
            lost: written.saturating_sub(through_app),
        }
    }

    /// Bytes that got through: confirmed or not.
    pub(super) fn through(&self) -> u64 {
        self.confirmed + self.unconfirmed
    }
}

/// Sums over the connections that have ended.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Totals {
    pub(super) confirmed: u64,
    pub(super) unconfirmed: u64,
    /// Bytes lost with their connection and not replayed.
    pub(super) lost: u64,
    pub(super) received: u64,
    pub(super) wire_written: u64,
}

impl Totals {
    /// Application bytes written, each counted once: a lost byte replayed counts where it
    /// got through.
    pub(super) fn written(&self) -> u64 {
        self.confirmed + self.unconfirmed + self.lost
    }
}

/// With the application's acknowledgements, every byte not acknowledged is sent again on the
/// next connection, so only the last connection says how far the rest got.
///
/// `acknowledged`: bytes the application acknowledged over the session; `front` and `held`:
/// the stream offset of the first byte not acknowledged (nor handed back) and how many are;
/// `start`: the stream offset the last connection's application bytes began at; `last`:
/// that connection's counts. An acknowledgement may come for bytes that connection was
/// already sending again: they count once.
///
/// Returns `(confirmed, unconfirmed)`: acknowledged bytes are confirmed (the protocol said
/// so), and the held bytes the last connection got through are confirmed if its close was
/// both ways, unconfirmed otherwise.
pub(super) fn through_with_acknowledgements(
    acknowledged: u64,
    front: u64,
    held: u64,
    start: u64,
    last: AppCounts,
) -> (u64, u64) {
    let beyond = (start + last.through()).saturating_sub(front).min(held);
    match last.confirmed {
        0 => (acknowledged, beyond),
        _ => (acknowledged + beyond, 0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Ending, Error};

    fn report(written: u64, confirmed: u64, unconfirmed: u64) -> CloseReport {
        let mut report = CloseReport::driver_stopped(written, written, 0, String::new());
        report.result = match confirmed {
            0 => Err(Error::DrainTimeout),
            _ => Ok(Ending::Finished),
        };
        report.bytes_confirmed = confirmed;
        report.bytes_unconfirmed = unconfirmed;
        report.bytes_lost = written - confirmed - unconfirmed;
        report
    }

    #[test]
    fn the_preamble_is_the_front_of_a_connections_stream() {
        let lost_in_the_preamble = AppCounts::of(&report(100, 0, 10), 30);
        assert_eq!(
            lost_in_the_preamble,
            AppCounts {
                written: 70,
                confirmed: 0,
                unconfirmed: 0,
                lost: 70
            }
        );
        let confirmed = AppCounts::of(&report(100, 100, 0), 30);
        assert_eq!((confirmed.confirmed, confirmed.lost), (70, 0));
    }

    #[test]
    fn acknowledged_bytes_are_confirmed_and_the_last_connection_says_the_rest() {
        let last = AppCounts {
            written: 50,
            confirmed: 0,
            unconfirmed: 40,
            lost: 10,
        };
        // The last connection began at byte 100; 30 of its 40 through were acknowledged
        // since, and 20 more are held.
        assert_eq!(
            through_with_acknowledgements(130, 130, 20, 100, last),
            (130, 10)
        );
        let closed_both_ways = AppCounts {
            confirmed: 40,
            unconfirmed: 0,
            ..last
        };
        assert_eq!(
            through_with_acknowledgements(130, 130, 20, 100, closed_both_ways),
            (140, 0)
        );
        // Acknowledged past what it got through (it was sending them again): none beyond.
        assert_eq!(
            through_with_acknowledgements(150, 150, 0, 100, last),
            (150, 0)
        );
    }
}
