//! Which application bytes have really reached the socket.
//!
//! The driver reports progress in wire bytes ([`Input::Written`](crate::Input::Written)). In
//! plaintext a wire byte is an application byte. Under TLS a record carries application bytes
//! plus overhead, and the peer can only use the record once all of it is written, so its
//! application bytes count as delivered only when the record's last wire byte is written. This
//! keeps the close report honest: a byte is never counted as written when the peer cannot
//! have it.

use std::collections::VecDeque;

/// A run of wire bytes handed out in one transmit, and the application bytes it carries.
#[derive(Debug, Clone, Copy)]
struct Mark {
    /// Wire offset just past the run.
    wire_end: u64,
    /// Application offset just past the application bytes the run carries.
    app_end: u64,
    /// Wire bytes in the run.
    wire_len: u64,
    /// True for plaintext, where wire and application bytes match one to one.
    plaintext: bool,
}

/// Wire bytes handed out, wire bytes written, and what that means in application bytes.
#[derive(Debug, Default)]
pub(crate) struct WireLedger {
    marks: VecDeque<Mark>,
    wire_out: u64,
    wire_written: u64,
    app_out: u64,
    app_delivered: u64,
}

impl WireLedger {
    /// Records plaintext handed out: `len` wire bytes that are `len` application bytes.
    pub(crate) fn plaintext(&mut self, len: usize) {
        self.push(len as u64, len as u64, true);
    }

    /// Records TLS bytes handed out: `wire_len` bytes carrying `app_len` application bytes
    /// (zero for handshake messages and alerts).
    pub(crate) fn tls(&mut self, wire_len: usize, app_len: usize) {
        self.push(wire_len as u64, app_len as u64, false);
    }

    fn push(&mut self, wire_len: u64, app_len: u64, plaintext: bool) {
        if wire_len == 0 {
            return;
        }
        self.wire_out += wire_len;
        self.app_out += app_len;
        // Plaintext runs map one to one, so back-to-back runs are one run: the ledger stays
        // one mark long however many small sends are in flight.
        if let Some(last) = self.marks.back_mut()
            && plaintext
            && last.plaintext
        {
            last.wire_end = self.wire_out;
            last.app_end = self.app_out;
            last.wire_len += wire_len;
            return;
        }
        self.marks.push_back(Mark {
            wire_end: self.wire_out,
            app_end: self.app_out,
            wire_len,
            plaintext,
        });
    }

    /// Records `n` more wire bytes written by the driver.
    ///
    /// The client refuses a `Written` of more than is in flight before it gets here; should
    /// that check ever be wrong, the count stops at what was handed out rather than claiming
    /// bytes that never existed.
    pub(crate) fn written(&mut self, n: usize) {
        let n = (n as u64).min(self.in_flight());
        self.wire_written += n;
        while let Some(mark) = self.marks.front().copied() {
            if mark.wire_end <= self.wire_written {
                self.app_delivered = mark.app_end;
                self.marks.pop_front();
                continue;
            }
            let written_of_mark = mark.wire_len - (mark.wire_end - self.wire_written);
            if mark.plaintext && written_of_mark > 0 {
                self.app_delivered = mark.app_end - mark.wire_len + written_of_mark;
            }
            break;
        }
    }

    /// Wire bytes handed out and not yet written.
    pub(crate) fn in_flight(&self) -> u64 {
        self.wire_out - self.wire_written
    }

    /// Wire bytes written so far, TLS overhead included.
    pub(crate) fn wire_written(&self) -> u64 {
        self.wire_written
    }

    /// Application bytes that have fully reached the socket.
    pub(crate) fn app_delivered(&self) -> u64 {
        self.app_delivered
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_plaintext_write_delivers_exactly_its_bytes() {
        let mut ledger = WireLedger::default();
        ledger.plaintext(10);
        ledger.plaintext(5);
        ledger.written(12);
        assert_eq!(ledger.app_delivered(), 12);
        assert_eq!(ledger.in_flight(), 3);
    }

    #[test]
    fn a_tls_record_counts_only_once_fully_written() {
        let mut ledger = WireLedger::default();
        ledger.tls(300, 0); // handshake
        ledger.tls(122, 100); // one record
        ledger.written(400);
        assert_eq!(ledger.app_delivered(), 0);
        ledger.written(22);
        assert_eq!(ledger.app_delivered(), 100);
        assert_eq!(ledger.wire_written(), 422);
    }

    #[test]
    fn back_to_back_plaintext_is_one_mark() {
        let mut ledger = WireLedger::default();
        for _ in 0..1000 {
            ledger.plaintext(64);
        }
        assert_eq!(ledger.marks.len(), 1);
        ledger.written(64 * 999 + 10);
        assert_eq!(ledger.app_delivered(), 64 * 999 + 10);
    }
}
