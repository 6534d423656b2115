//! The application bytes handed to the driver and not yet known to have reached the peer.
//!
//! They are kept, as the same `Bytes` (reference counts, not copies), so that a connection
//! that ends can hand back exactly the bytes that did not get through, in order: to the
//! application as [`Event::Undelivered`](crate::Event::Undelivered), or to the next
//! connection of a reconnecting [`Client`](crate::Client#reconnecting). A byte is let go once the peer's TCP has
//! acknowledged it (where the driver cannot tell, once it is written): a byte written to the
//! kernel can still be lost with the connection. Under TLS a record's bytes stay here until
//! the whole record is, as the [`WireLedger`](crate::ledger::WireLedger) counts them.
//!
//! What the kernel holds unacknowledged is bounded by its send buffer, and the client asks
//! what was acknowledged every so many bytes written, so this stays bounded too.

use std::collections::VecDeque;

use bytes::Bytes;

/// Handed-out application bytes, from application offset `start` on.
#[derive(Debug, Default)]
pub(crate) struct Outstanding {
    chunks: VecDeque<Bytes>,
    /// Application offset of the first byte held.
    start: u64,
}

impl Outstanding {
    /// Keeps `chunk`, the next application bytes handed out.
    #[inline]
    pub(crate) fn push(&mut self, chunk: Bytes) {
        if !chunk.is_empty() {
            self.chunks.push_back(chunk);
        }
    }

    /// Lets go of every byte before application offset `delivered`: they got through.
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
    fn delivered_bytes_are_let_go_and_the_rest_comes_back_as_the_same_bytes() {
        let first = Bytes::from_static(b"hello ");
        let second = Bytes::from_static(b"world");
        let mut outstanding = Outstanding::default();
        outstanding.push(first);
        outstanding.push(second.clone());

        outstanding.release_until(8);
        let rest = outstanding.take();

        assert_eq!(rest, [Bytes::from_static(b"rld")]);
        assert_eq!(
            rest[0].as_ptr(),
            second[2..].as_ptr(),
            "a slice, not a copy"
        );
    }
}
