//! The transmits a driver was handed and has not written yet.

use std::collections::VecDeque;
use std::io::IoSlice;

use bytes::Bytes;

/// The [`Output::Transmit`](tcpclient_core::Output::Transmit)s handed out and not yet
/// written, oldest first, with their total, gathered into few vectored writes.
///
/// ```
/// use tcpclient_core::Bytes;
/// use tcpclient_driver::PendingWrites;
///
/// let mut pending = PendingWrites::default();
/// pending.push(Bytes::from_static(b"abc"));
/// pending.push(Bytes::from_static(b"defg"));
/// let written = pending.with_slices(|slices| slices.iter().map(|s| s.len()).sum::<usize>());
/// assert_eq!(written, 7);
/// pending.advance(5); // a short write: the rest of the second buffer stays, not copied
/// assert_eq!(pending.bytes(), 2);
/// ```
#[derive(Debug, Default)]
pub struct PendingWrites {
    queue: VecDeque<Bytes>,
    bytes: usize,
}

impl PendingWrites {
    /// Most buffers gathered into one write: well under every platform's `IOV_MAX`, and as
    /// many as a write of small transmits needs (a coalesced one holds up to 64 KiB).
    pub const MAX_GATHER: usize = 64;

    /// Queues a transmit behind the others.
    pub fn push(&mut self, bytes: Bytes) {
        self.bytes += bytes.len();
        self.queue.push_back(bytes);
    }

    /// Whether everything was written.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The bytes not yet written.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Calls `write` with the oldest transmits (up to [`Self::MAX_GATHER`] of them) as the
    /// slices of one vectored write, and returns what it returns. Report what it wrote with
    /// [`advance`](Self::advance).
    pub fn with_slices<R>(&self, write: impl FnOnce(&[IoSlice<'_>]) -> R) -> R {
        let mut slices = [IoSlice::new(&[]); Self::MAX_GATHER];
        let mut count = 0;
        for (slice, bytes) in slices.iter_mut().zip(&self.queue) {
            *slice = IoSlice::new(bytes);
            count += 1;
        }
        write(&slices[..count])
    }

    /// Drops the `n` bytes written from the front; a partly written transmit keeps its
    /// rest (no copy).
    pub fn advance(&mut self, mut n: usize) {
        self.bytes = self.bytes.saturating_sub(n);
        while n > 0 {
            let Some(front) = self.queue.front_mut() else {
                return;
            };
            if front.len() <= n {
                n -= front.len();
                self.queue.pop_front();
            } else {
                let _ = front.split_to(n);
                n = 0;
            }
        }
    }

    /// Forgets every transmit: the connection's socket was closed
    /// ([`Output::Close`](tcpclient_core::Output::Close) forgets what was not written).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_keeps_the_unwritten_rest_of_a_buffer() {
        let mut pending = PendingWrites::default();
        pending.push(Bytes::from_static(b"abc"));
        pending.push(Bytes::from_static(b"defg"));
        pending.advance(5);
        assert_eq!(pending.queue, [Bytes::from_static(b"fg")]);
        assert_eq!(pending.bytes(), 2);
    }

    #[test]
    fn one_write_gathers_no_more_than_the_cap() {
        let mut pending = PendingWrites::default();
        for _ in 0..PendingWrites::MAX_GATHER + 10 {
            pending.push(Bytes::from_static(b"x"));
        }
        assert_eq!(
            pending.with_slices(|slices| slices.len()),
            PendingWrites::MAX_GATHER
        );
        pending.advance(PendingWrites::MAX_GATHER);
        assert_eq!(pending.with_slices(|slices| slices.len()), 10);
        pending.clear();
        assert!(pending.is_empty());
        assert_eq!(pending.bytes(), 0);
    }
}
