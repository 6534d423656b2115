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

/// A few buffers of [`BUFFER_SIZE`], handed out and taken back.
#[derive(Debug, Default)]
pub(crate) struct BufferPool {
    /// Allocated on first use: a connection that has never coalesced or encrypted anything
    /// (thousands of idle ones, say) pays one pointer for its pool.
    spares: Option<Box<Spares>>,
}

#[derive(Debug, Default)]
struct Spares(Vec<BytesMut>);

impl BufferPool {
    /// Returns an empty buffer with room for at least [`BUFFER_SIZE`] bytes: a spare whose
    /// earlier contents have all been dropped, or a new one.
    pub(crate) fn take(&mut self) -> BytesMut {
        let Some(Spares(spares)) = self.spares.as_deref_mut() else {
            return BytesMut::with_capacity(BUFFER_SIZE);
        };
        match spares
            .iter_mut()
            .position(|spare| spare.try_reclaim(BUFFER_SIZE))
        {
            Some(i) => spares.swap_remove(i),
            None => BytesMut::with_capacity(BUFFER_SIZE),
        }
    }

    /// Keeps `used` (what is left of a buffer whose contents were split off and frozen) to be
    /// reclaimed once those are dropped.
    pub(crate) fn give_back(&mut self, used: BytesMut) {
        let Spares(spares) = &mut **self.spares.get_or_insert_default();
        spares.push(used);
        if spares.len() > SPARES {
            spares.remove(0);
        }
    }

    /// Keeps one spare at most: a connection that has gone quiet keeps enough for its next
    /// burst to start without allocating, and thousands of quiet connections do not each
    /// hold several buffers.
    pub(crate) fn trim(&mut self) {
        if let Some(Spares(spares)) = self.spares.as_deref_mut() {
            spares.truncate(1);
        }
    }

    /// Lets go of every spare.
    pub(crate) fn clear(&mut self) {
        self.spares = None;
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.spares.as_ref().map_or(0, |s| s.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A buffer as the client leaves it: its contents cut off and handed out.
    fn used(pool: &mut BufferPool) -> (BytesMut, bytes::Bytes) {
        let mut buffer = pool.take();
        buffer.extend_from_slice(&[1; 100]);
        let handed_out = buffer.split().freeze();
        (buffer, handed_out)
    }

    #[test]
    fn a_spare_comes_back_once_what_was_cut_from_it_is_dropped() {
        let mut pool = BufferPool::default();
        let (rest, handed_out) = used(&mut pool);
        let address = handed_out.as_ptr();
        pool.give_back(rest);

        let fresh = pool.take(); // still being written: not reclaimable
        assert_ne!(fresh.as_ptr(), address);
        drop(handed_out);
        let reused = pool.take();
        assert_eq!(reused.as_ptr(), address);
        assert!(reused.capacity() >= BUFFER_SIZE);
    }

    #[test]
    fn at_most_a_few_spares_and_one_after_a_trim() {
        let mut pool = BufferPool::default();
        let mut in_flight = Vec::new(); // nothing reclaimable: every take allocates
        for _ in 0..SPARES + 2 {
            let (rest, handed_out) = used(&mut pool);
            in_flight.push(handed_out);
            pool.give_back(rest);
        }
        assert_eq!(pool.len(), SPARES);
        pool.trim();
        assert_eq!(pool.len(), 1);
        pool.clear();
        assert_eq!(pool.len(), 0);
    }
}
