//! The application bytes handed to the driver and not yet known to have reached the socket.
//!
//! They are kept, as the same `Bytes` (reference counts, not copies), so that a connection
//! that ends can hand back exactly the bytes that did not get out, in order: to the
//! application as [`Event::Undelivered`](crate::Event::Undelivered), or to the next
//! connection of a [`Session`](crate::Session). Under TLS a record's bytes stay here until
//! the whole record is written, as the [`WireLedger`](crate::ledger::WireLedger) counts them.

use std::collections::VecDeque;

use bytes::Bytes;

/// Handed-out application bytes, from application offset `start` on.
#[derive(Debug, Default)]
pub(crate) struct Unwritten {
    chunks: VecDeque<Bytes>,
    /// Application offset of the first byte held.
    start: u64,
}

impl Unwritten {
    /// Keeps `chunk`, the next application bytes handed out.
    #[inline]
    pub(crate) fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.chunks.push_back(chunk);
        }
    }

    /// Lets go of every byte before application offset `delivered`: they reached the socket.
    pub(crate) fn release_until(&mut self, delivered: u64) {
        while self.start < delivered {
            let Some(front) = self.chunks.front_mut() else {
                // Nothing held: the ledger counts bytes this list never saw. Catch up.
                self.start = delivered;
                return;
            };
            let n = (delivered - self.start).min(front.len() as u64) as usize;
            if n == front.len() {
                self.chunks.pop_front();
            } else {
                let _ = front.split_to(n);
            }
            self.start += n as u64;
        }
    }

    /// Takes every byte still held, in order.
    pub(crate) fn take(&mut self) -> VecDeque<Bytes> {
        let taken = std::mem::take(&mut self.chunks);
        self.start += taken.iter().map(|c| c.len() as u64).sum::<u64>();
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_bytes_are_let_go_and_the_rest_comes_back_as_the_same_bytes() {
        let first = Bytes::from_static(b"hello ");
        let second = Bytes::from_static(b"world");
        let mut unwritten = Unwritten::default();
        unwritten.push(first);
        unwritten.push(second.clone());

        unwritten.release_until(8);
        let rest = unwritten.take();

        assert_eq!(rest, [Bytes::from_static(b"rld")]);
        assert_eq!(
            rest[0].as_ptr(),
            second[2..].as_ptr(),
            "a slice, not a copy"
        );
    }
}
