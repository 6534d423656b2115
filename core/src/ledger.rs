//! Which application bytes have really reached the socket, and which the peer's TCP has
//! acknowledged.
//!
//! The driver reports progress in wire bytes: written ([`Input::Written`](crate::Input::Written))
//! and, when asked, not yet acknowledged by the peer
//! ([`Input::Unacknowledged`](crate::Input::Unacknowledged)). In plaintext a wire byte is an
//! application byte. Under TLS a record carries application bytes plus overhead, and the
//! peer can only use the record once all of it is there, so its application bytes count as
//! written only when the record's last wire byte is written, and as acknowledged only when
//! that byte is acknowledged. This keeps the close report honest: a byte is never counted as
//! having got further than the peer can use it.

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
    /// Application bytes in the run.
    app_len: u64,
    /// True for plaintext, where wire and application bytes match one to one.
    plaintext: bool,
}

impl Mark {
    /// The application offset reached once the wire offset `wire` is reached inside the run:
    /// all of it at its end; in plaintext, byte for byte before that; under TLS, none of it.
    fn app_at(&self, wire: u64) -> u64 {
        if wire >= self.wire_end {
            return self.app_end;
        }
        let app_start = self.app_end - self.app_len;
        let wire_start = self.wire_end - self.wire_len;
        match self.plaintext {
            true => app_start + wire.saturating_sub(wire_start),
            false => app_start,
        }
    }
}

/// Wire bytes handed out, written and acknowledged, and what each means in application bytes.
///
/// The marks run from the oldest one not yet acknowledged: what the peer's TCP has not
/// acknowledged may still be lost with the connection. Where the driver cannot tell what was
/// acknowledged ([`WireLedger::forget_acknowledgements`]), they run from the oldest one not
/// yet written, as no acknowledgement will ever come to let go of them.
#[derive(Debug, Default)]
pub(crate) struct WireLedger {
    marks: VecDeque<Mark>,
    /// Index in `marks` of the first run not completely written.
    unwritten_from: usize,
    wire_out: u64,
    wire_written: u64,
    wire_acked: u64,
    app_out: u64,
    app_written: u64,
    app_acked: u64,
    /// Acknowledgements will never come: runs are let go of once written.
    untracked: bool,
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
        // one mark long however many small sends are in flight. (Not onto a run written
        // whole: the search for what is written starts after it.)
        let back_unwritten = self.marks.len() > self.unwritten_from;
        if let Some(last) = self.marks.back_mut()
            && plaintext
            && last.plaintext
            && back_unwritten
        {
            last.wire_end = self.wire_out;
            last.app_end = self.app_out;
            last.wire_len += wire_len;
            last.app_len += app_len;
            return;
        }
        self.marks.push_back(Mark {
            wire_end: self.wire_out,
            app_end: self.app_out,
            wire_len,
            app_len,
            plaintext,
        });
    }

    /// Records `n` more wire bytes written by the driver.
    ///
    /// The client refuses a `Written` of more than is in flight before it gets here; should
    /// that check ever be wrong, the count stops at what was handed out rather than claiming
    /// bytes that never existed.
    pub(crate) fn written(&mut self, n: usize) {
        self.wire_written += (n as u64).min(self.in_flight());
        let (app, at) = self.app_at(self.wire_written, self.unwritten_from);
        self.app_written = app;
        self.unwritten_from = at;
        if self.untracked {
            self.let_go_before(self.wire_written);
        }
    }

    /// Records that the peer's TCP has acknowledged every wire byte before offset `wire`
    /// (no more than was written; an acknowledgement never goes back).
    pub(crate) fn acknowledged(&mut self, wire: u64) {
        if self.untracked {
            return;
        }
        self.wire_acked = self.wire_acked.max(wire.min(self.wire_written));
        self.app_acked = self.app_at(self.wire_acked, 0).0;
        self.let_go_before(self.wire_acked);
    }

    /// The driver cannot tell what the peer acknowledged: keep nothing for it.
    pub(crate) fn forget_acknowledgements(&mut self) {
        self.untracked = true;
        self.let_go_before(self.wire_written);
    }

    /// The application offset reached at wire offset `wire`, searching from mark `from` on
    /// (every mark before it is reached); and the index of the first mark not reached whole.
    fn app_at(&self, wire: u64, from: usize) -> (u64, usize) {
        let mut at = from;
        while let Some(mark) = self.marks.get(at) {
            if mark.wire_end > wire {
                return (mark.app_at(wire), at);
            }
            at += 1;
        }
        (self.app_out, at)
    }

    /// Drops the marks wholly before wire offset `wire`.
    fn let_go_before(&mut self, wire: u64) {
        while self.marks.front().is_some_and(|mark| mark.wire_end <= wire) {
            self.marks.pop_front();
            self.unwritten_from = self.unwritten_from.saturating_sub(1);
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

    /// Wire bytes the peer's TCP is known to have acknowledged.
    pub(crate) fn wire_acked(&self) -> u64 {
        self.wire_acked
    }

    /// Application bytes that have fully reached the socket.
    pub(crate) fn app_written(&self) -> u64 {
        self.app_written
    }

    /// Application bytes the peer's TCP is known to have acknowledged (all of their record).
    pub(crate) fn app_acked(&self) -> u64 {
        self.app_acked
    }

    /// Whether acknowledgements are followed (the driver has not said it cannot tell).
    pub(crate) fn tracks_acknowledgements(&self) -> bool {
        !self.untracked
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
        assert_eq!(ledger.app_written(), 12);
        assert_eq!(ledger.in_flight(), 3);
    }

    #[test]
    fn a_tls_record_counts_only_once_fully_written_and_fully_acknowledged() {
        let mut ledger = WireLedger::default();
        ledger.tls(300, 0); // handshake
        ledger.tls(122, 100); // one record
        ledger.written(400);
        assert_eq!(ledger.app_written(), 0);
        ledger.written(22);
        assert_eq!(ledger.app_written(), 100);
        assert_eq!(ledger.wire_written(), 422);

        ledger.acknowledged(421);
        assert_eq!(
            ledger.app_acked(),
            0,
            "the record's last byte is not acknowledged"
        );
        ledger.acknowledged(422);
        assert_eq!(ledger.app_acked(), 100);
    }

    #[test]
    fn back_to_back_plaintext_is_one_mark_acknowledged_byte_for_byte() {
        let mut ledger = WireLedger::default();
        for _ in 0..1000 {
            ledger.plaintext(64);
        }
        assert_eq!(ledger.marks.len(), 1);
        ledger.written(64 * 999 + 10);
        assert_eq!(ledger.app_written(), 64 * 999 + 10);

        ledger.acknowledged(5000);
        assert_eq!(ledger.app_acked(), 5000);
        ledger.acknowledged(1000);
        assert_eq!(
            ledger.app_acked(),
            5000,
            "an acknowledgement never goes back"
        );
        ledger.acknowledged(u64::MAX);
        assert_eq!(
            ledger.app_acked(),
            64 * 999 + 10,
            "no more than was written"
        );
    }

    #[test]
    fn plaintext_after_a_run_written_whole_is_a_run_of_its_own() {
        let mut ledger = WireLedger::default();
        ledger.plaintext(10);
        ledger.written(10);
        ledger.plaintext(5);
        ledger.written(2);
        assert_eq!(ledger.app_written(), 12);
        ledger.acknowledged(11);
        assert_eq!(ledger.app_acked(), 11);
    }

    #[test]
    fn written_runs_are_kept_until_acknowledged_unless_acknowledgements_are_unknown() {
        let mut ledger = WireLedger::default();
        ledger.tls(100, 80);
        ledger.tls(100, 80);
        ledger.written(200);
        assert_eq!(ledger.marks.len(), 2, "kept for the acknowledgement");

        ledger.acknowledged(100);
        assert_eq!((ledger.marks.len(), ledger.app_acked()), (1, 80));
        ledger.tls(50, 30);
        ledger.written(25);
        assert_eq!(
            ledger.app_written(),
            160,
            "the half-written record does not count"
        );
        ledger.forget_acknowledgements();
        assert_eq!(
            ledger.marks.len(),
            1,
            "only the record not yet written is kept"
        );
        ledger.written(25);
        assert_eq!((ledger.app_written(), ledger.marks.len()), (190, 0));
    }
}
