//! The bounded send queue: what the application handed in and the core has not yet handed out.

use std::collections::VecDeque;

use bytes::{Bytes, BytesMut};

use crate::buffers::{BUFFER_SIZE, BufferPool};

/// Largest buffer small sends are copied together into.
const COALESCE_CHUNK: usize = BUFFER_SIZE;

/// Data accepted by [`Client::send`](crate::Client::send) and not yet handed to the driver.
///
/// Sends of at least [`Config::coalesce_below`](crate::Config::coalesce_below) bytes are
/// kept as they are and leave as the very same `Bytes`. Smaller ones are copied together
/// into one buffer: a stream of small messages then leaves in a few large transmits, where
/// one transmit (one `iovec`) per message would cost more than the copy.
///
/// The queue only stores; the limit is checked by the client against everything not yet
/// delivered (queued here, plus handed out but not yet written), because that is what a slow
/// peer makes grow.
#[derive(Debug)]
pub(crate) struct SendQueue {
    segments: VecDeque<Bytes>,
    /// Small sends copied together; newer than every segment.
    tail: BytesMut,
    /// The tail is (what is left of) a coalescing buffer, not the empty default.
    tail_is_buffer: bool,
    /// Bytes in `segments` and `tail`.
    len: usize,
    /// Application offset of the first queued byte: everything before it was handed out.
    front_offset: u64,
    /// Application offset where TLS starts: bytes before it leave in plaintext.
    tls_from: Option<u64>,
    /// Sends this long or longer are queued as they are. At most [`COALESCE_CHUNK`], so 32
    /// bits hold it, packed beside the flag above.
    coalesce_below: u32,
}

impl SendQueue {
    pub(crate) fn new(coalesce_below: usize) -> Self {
        Self {
            segments: VecDeque::new(),
            tail: BytesMut::new(),
            tail_is_buffer: false,
            len: 0,
            front_offset: 0,
            tls_from: None,
            // A send bigger than a coalescing buffer goes as it is.
            coalesce_below: coalesce_below.min(COALESCE_CHUNK) as u32,
        }
    }

    #[inline]
    /// Queues `data`; a small send is copied into a coalescing buffer taken from `buffers`.
    pub(crate) fn push(&mut self, data: Bytes, buffers: &mut BufferPool) {
        if !self.copied_into_tail(&data) {
            self.push_otherwise(data, buffers);
        }
    }

    #[inline(never)]
    fn push_otherwise(&mut self, data: Bytes, buffers: &mut BufferPool) {
        if self.goes_as_it_is(data.len()) {
            self.push_segment(data);
        } else {
            self.push_small(&data, buffers);
        }
    }

    #[inline]
    /// Queues a copy of `data`: into a coalescing buffer when it is small, so a stream of
    /// small messages costs no allocation per message; as a segment of its own otherwise.
    pub(crate) fn push_slice(&mut self, data: &[u8], buffers: &mut BufferPool) {
        if !self.copied_into_tail(data) {
            self.push_slice_otherwise(data, buffers);
        }
    }

    #[inline(never)]
    fn push_slice_otherwise(&mut self, data: &[u8], buffers: &mut BufferPool) {
        if self.goes_as_it_is(data.len()) {
            self.push_segment(Bytes::copy_from_slice(data));
        } else {
            self.push_small(data, buffers);
        }
    }

    /// The hot path of small sends, kept small enough to inline into a caller's loop: a
    /// send that is not a segment of its own and fits in the tail as it is, copied there.
    /// Returns whether it did.
    #[inline]
    fn copied_into_tail(&mut self, data: &[u8]) -> bool {
        if self.goes_as_it_is(data.len()) || !self.tail_has_room(data.len()) {
            return false;
        }
        self.len += data.len();
        self.tail.extend_from_slice(data);
        true
    }

    /// Whether `len` more bytes go into the tail as it is, in its allocation and within a
    /// coalescing chunk. (Room for no bytes is always there: an empty send queues nothing.)
    #[inline]
    fn tail_has_room(&self, len: usize) -> bool {
        self.tail.len() + len <= COALESCE_CHUNK && self.tail.capacity() - self.tail.len() >= len
    }

    /// A send of `len` bytes is a segment of its own, not copied into the tail (an empty
    /// one is neither: it is no segment at all).
    #[inline]
    fn goes_as_it_is(&self, len: usize) -> bool {
        len >= self.coalesce_below as usize && len > 0
    }

    fn push_segment(&mut self, data: Bytes) {
        self.len += data.len();
        self.seal_tail();
        self.segments.push_back(data);
    }

    #[inline]
    fn push_small(&mut self, data: &[u8], buffers: &mut BufferPool) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        if !self.tail_has_room(data.len()) {
            self.seal_tail();
            if self.tail.capacity() < data.len() {
                self.fresh_tail(buffers);
            }
        }
        self.tail.extend_from_slice(data);
    }

    /// Replaces the (sealed, so empty) tail with a reused or a new buffer.
    fn fresh_tail(&mut self, buffers: &mut BufferPool) {
        let used = std::mem::replace(&mut self.tail, buffers.take());
        if std::mem::replace(&mut self.tail_is_buffer, true) {
            buffers.give_back(used);
        }
    }

    /// Moves what small sends accumulated into a segment of its own.
    fn seal_tail(&mut self) {
        if !self.tail.is_empty() {
            self.segments.push_back(self.tail.split().freeze());
        }
    }

    /// Marks the current end of the queue as the point where TLS begins.
    pub(crate) fn start_tls_here(&mut self) {
        self.seal_tail();
        self.tls_from = Some(self.front_offset + self.len as u64);
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Returns true while bytes queued before `StartTls` still wait to go out in plaintext.
    pub(crate) fn has_plaintext_prefix(&self) -> bool {
        !self.is_empty() && self.tls_from.is_none_or(|from| self.front_offset < from)
    }

    /// Takes the next segment that must leave in plaintext, if any.
    ///
    /// Segments never straddle the TLS boundary: `StartTls` seals the queue at its end.
    pub(crate) fn pop_plaintext(&mut self) -> Option<Bytes> {
        if !self.has_plaintext_prefix() {
            return None;
        }
        self.pop()
    }

    /// Takes up to `max` bytes of TLS-bound data, as whole segments where they fit.
    pub(crate) fn pop_for_tls(&mut self, max: usize, out: &mut Vec<Bytes>) -> usize {
        let mut taken = 0;
        while taken < max && !self.is_empty() && !self.has_plaintext_prefix() {
            self.seal_tail();
            let Some(front) = self.segments.front_mut() else {
                break;
            };
            let room = max - taken;
            let piece = if front.len() <= room {
                self.pop()
            } else {
                let piece = front.split_to(room);
                self.consumed(piece.len());
                Some(piece)
            };
            let Some(piece) = piece else { break };
            taken += piece.len();
            out.push(piece);
        }
        taken
    }

    /// Empties the queue, returning what it held, in order (the bytes stay counted as
    /// undelivered in the ledger).
    pub(crate) fn take_all(&mut self) -> VecDeque<Bytes> {
        self.seal_tail();
        self.consumed(self.len);
        self.tail = BytesMut::new();
        self.tail_is_buffer = false;
        std::mem::take(&mut self.segments)
    }

    fn pop(&mut self) -> Option<Bytes> {
        if self.segments.is_empty() {
            self.seal_tail();
        }
        let segment = self.segments.pop_front()?;
        self.consumed(segment.len());
        Some(segment)
    }

    fn consumed(&mut self, n: usize) {
        self.len -= n;
        self.front_offset += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plaintext_before_the_tls_mark_leaves_first_and_whole() {
        let mut queue = SendQueue::new(0);
        let mut pool = BufferPool::default();
        queue.push(Bytes::from_static(b"EHLO\r\n"), &mut pool);
        queue.start_tls_here();
        queue.push(Bytes::from_static(b"secret"), &mut pool);

        assert_eq!(queue.pop_plaintext(), Some(Bytes::from_static(b"EHLO\r\n")));
        assert_eq!(queue.pop_plaintext(), None);

        let mut out = Vec::new();
        assert_eq!(queue.pop_for_tls(4, &mut out), 4);
        assert_eq!(out, [Bytes::from_static(b"secr")]);
        assert_eq!(queue.take_all(), [Bytes::from_static(b"et")]);
        assert!(queue.is_empty());
    }

    #[test]
    fn tls_data_waits_behind_the_plaintext_prefix() {
        let mut queue = SendQueue::new(1024);
        let mut pool = BufferPool::default();
        queue.push(Bytes::from_static(b"plain"), &mut pool);
        queue.start_tls_here();
        queue.push(Bytes::from_static(b"tls"), &mut pool);
        let mut out = Vec::new();
        assert_eq!(queue.pop_for_tls(100, &mut out), 0);
        assert_eq!(queue.pop_plaintext(), Some(Bytes::from_static(b"plain")));
        assert_eq!(queue.pop_for_tls(100, &mut out), 3);
    }

    #[test]
    fn small_sends_leave_together_and_large_ones_as_they_are() {
        let mut queue = SendQueue::new(1024);
        let mut pool = BufferPool::default();
        let large = Bytes::from(vec![9u8; 2000]);
        queue.push(Bytes::from_static(b"a"), &mut pool);
        queue.push(Bytes::from_static(b"bc"), &mut pool);
        queue.push(large.clone(), &mut pool);
        queue.push(Bytes::from_static(b"d"), &mut pool);

        assert_eq!(queue.pop_plaintext(), Some(Bytes::from_static(b"abc")));
        let second = queue.pop_plaintext().unwrap();
        assert_eq!(
            second.as_ptr(),
            large.as_ptr(),
            "the very same bytes, not a copy"
        );
        assert_eq!(queue.pop_plaintext(), Some(Bytes::from_static(b"d")));
        assert!(queue.is_empty());
    }

    /// Pushes and pops of every size in a pseudo-random order: what comes out is exactly
    /// what went in. (A pop seals the tail mid-buffer; the next pushes fill what is left.)
    #[test]
    fn every_byte_comes_out_in_order_whatever_the_mix_of_pushes_and_pops() {
        let mut queue = SendQueue::new(1024);
        let mut pool = BufferPool::default();
        let (mut sent, mut received) = (Vec::new(), Vec::new());
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for round in 0..20_000u32 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            if seed.is_multiple_of(5) {
                if let Some(segment) = queue.pop_plaintext() {
                    received.extend_from_slice(&segment);
                }
                continue;
            }
            let len = match seed % 7 {
                0 => 3000,
                1 => 1023,
                _ => (seed >> 20) as usize % 200,
            };
            let data: Vec<u8> = (0..len).map(|i| (round as usize + i) as u8).collect();
            sent.extend_from_slice(&data);
            queue.push(Bytes::from(data), &mut pool);
        }
        while let Some(segment) = queue.pop_plaintext() {
            received.extend_from_slice(&segment);
        }
        assert_eq!(received.len(), sent.len());
        assert!(received == sent, "bytes lost or reordered");
        assert!(queue.is_empty());
    }

    #[test]
    fn a_written_coalescing_buffer_is_reused_not_reallocated() {
        let mut queue = SendQueue::new(1024);
        let mut pool = BufferPool::default();
        let fill = |queue: &mut SendQueue, pool: &mut BufferPool| {
            for _ in 0..COALESCE_CHUNK / 64 {
                queue.push(Bytes::from_static(&[1u8; 64]), pool);
            }
        };
        fill(&mut queue, &mut pool);
        let first = queue.pop_plaintext().unwrap();
        let first_buffer = first.as_ptr();
        drop(first); // written

        fill(&mut queue, &mut pool); // a new buffer: the first one's remainder is not reclaimable yet
        fill(&mut queue, &mut pool); // the first buffer again
        let second = queue.pop_plaintext().unwrap();
        let third = queue.pop_plaintext().unwrap();

        assert_ne!(second.as_ptr(), first_buffer);
        assert_eq!(third.len(), COALESCE_CHUNK);
        assert_eq!(third.as_ptr(), first_buffer, "the first buffer came back");
    }

    /// `push_slice` (the path of `send_slice`) splits and coalesces as `push` does: small
    /// copies together, within a chunk, and a large one as a segment of its own.
    #[test]
    fn copied_sends_leave_as_sends_of_the_same_sizes_do() {
        let mut queue = SendQueue::new(1024);
        let mut pool = BufferPool::default();
        queue.push_slice(b"a", &mut pool);
        queue.push_slice(b"bc", &mut pool);
        queue.push_slice(&[9u8; 2000], &mut pool);
        queue.push_slice(b"d", &mut pool);
        assert_eq!(queue.pop_plaintext(), Some(Bytes::from_static(b"abc")));
        assert_eq!(queue.pop_plaintext(), Some(Bytes::from(vec![9u8; 2000])));
        assert_eq!(queue.pop_plaintext(), Some(Bytes::from_static(b"d")));
        assert!(queue.is_empty());

        for _ in 0..3000 {
            queue.push_slice(&[7u8; 64], &mut pool);
        }
        let mut total = 0;
        while let Some(segment) = queue.pop_plaintext() {
            assert!(segment.len() <= COALESCE_CHUNK);
            total += segment.len();
        }
        assert_eq!(total, 3000 * 64);
    }

    #[test]
    fn coalesced_buffers_stay_within_a_chunk() {
        let mut queue = SendQueue::new(1024);
        let mut pool = BufferPool::default();
        for _ in 0..3000 {
            queue.push(Bytes::from_static(&[7u8; 64]), &mut pool);
        }
        let mut total = 0;
        while let Some(segment) = queue.pop_plaintext() {
            assert!(segment.len() <= COALESCE_CHUNK);
            total += segment.len();
        }
        assert_eq!(total, 3000 * 64);
    }
}
