//! Buffers the core writes into (coalesced small sends, encrypted records), reused once the
//! transmits cut from them are written and dropped.
//!
//! Reusing them spares the allocator: glibc, for one, can give a freed 64 KiB buffer's pages
//! back to the system and fault them in again for the next one, which made a stream of small
//! sends run at half speed. A couple of spares suffice when the writes keep up; the cap bounds
//! what an idle connection keeps.

use bytes::BytesMut;

/// The size of every buffer.
pub(crate) const BUFFER_SIZE: usize = 64 * 1024;

/// Spare buffers kept, at most: enough for a coalescing buffer and the TLS batches in flight.
const SPARES: usize = 3;

/// A few buffers of [`BUFFER_SIZE`], handed out and taken back. Empty, it is one empty `Vec`:
/// an idle connection pays nothing more.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    spares: Vec<BytesMut>,
}

impl BufferPool {
    /// Returns an empty buffer with room for at least [`BUFFER_SIZE`] bytes: a spare whose
    /// earlier contents have all been dropped, or a new one.
    pub(crate) fn take(&mut self) -> BytesMut {
        match self
            .spares
            .iter_mut()
            .position(|spare| spare.try_reclaim(BUFFER_SIZE))
        {
            Some(i) => self.spares.swap_remove(i),
            None => BytesMut::with_capacity(BUFFER_SIZE),
        }
    }

    /// Keeps `used` (what is left of a buffer whose contents were split off and frozen) to be
    /// reclaimed once those are dropped.
    pub(crate) fn give_back(&mut self, used: BytesMut) {
        self.spares.push(used);
        if self.spares.len() > SPARES {
            self.spares.remove(0);
        }
    }

    /// Lets go of every spare.
    pub(crate) fn clear(&mut self) {
        self.spares.clear();
    }
}
