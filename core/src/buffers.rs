//! Buffers the core writes into (coalesced small sends, encrypted records), reused once the
//! transmits cut from them are written and dropped.
//!
//! Reusing them spares the allocator: glibc, for one, can give a freed 64 KiB buffer's pages
//! back to the system and fault them in again for the next one, which made a stream of small
//! sends run at half speed. A couple of spares suffice when the writes keep up; the cap bounds
//! what an idle connection keeps.

use bytes::BytesMut;

/// Spare buffers kept, at most.
const SPARES: usize = 2;

/// A few buffers of one size, handed out and taken back.
#[derive(Debug)]
pub(crate) struct BufferPool {
    size: usize,
    spares: Vec<BytesMut>,
}

impl BufferPool {
    pub(crate) fn new(size: usize) -> Self {
        Self {
            size,
            spares: Vec::new(),
        }
    }

    /// Returns an empty buffer with room for at least `size` bytes: a spare whose earlier
    /// contents have all been dropped, or a new one.
    pub(crate) fn take(&mut self) -> BytesMut {
        let size = self.size;
        match self
            .spares
            .iter_mut()
            .position(|spare| spare.try_reclaim(size))
        {
            Some(i) => self.spares.swap_remove(i),
            None => BytesMut::with_capacity(size),
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
