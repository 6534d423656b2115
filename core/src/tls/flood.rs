//! Counts of what a server may legally repeat for free while each costs the client work
//! or keeps its idle timer from firing, checked against [`Flood::limit`].

use crate::error::{Flood, TlsError};

/// The session's counts, one per kind of flood.
#[derive(Debug, Default)]
pub(crate) struct FloodGuard {
    empty_records_in_a_row: u32,
    warning_alerts: u32,
    key_updates: u32,
    renegotiation_requests: u32,
}

impl FloodGuard {
    /// A record was opened: an empty one adds to the run of empty ones, any other ends it.
    pub(crate) fn record(&mut self, empty: bool) -> Result<(), TlsError> {
        match empty {
            true => count(&mut self.empty_records_in_a_row, Flood::EmptyRecords),
            false => {
                self.empty_records_in_a_row = 0;
                Ok(())
            }
        }
    }

    /// Application data with bytes in it came: key update requests start over.
    pub(crate) fn application_data(&mut self) {
        self.key_updates = 0;
    }

    pub(crate) fn warning_alert(&mut self) -> Result<(), TlsError> {
        count(&mut self.warning_alerts, Flood::WarningAlerts)
    }

    pub(crate) fn key_update(&mut self) -> Result<(), TlsError> {
        count(&mut self.key_updates, Flood::KeyUpdates)
    }

    pub(crate) fn renegotiation_request(&mut self) -> Result<(), TlsError> {
        count(
            &mut self.renegotiation_requests,
            Flood::RenegotiationRequests,
        )
    }
}

fn count(seen: &mut u32, flood: Flood) -> Result<(), TlsError> {
    if *seen >= flood.limit() {
        return Err(TlsError::Flood(flood));
    }
    *seen += 1;
    Ok(())
}
