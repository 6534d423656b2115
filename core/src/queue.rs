//! The bounded send queue: what the application handed in and the core has not yet handed out.

use std::collections::VecDeque;

use bytes::Bytes;

/// Data accepted by [`Input::Send`](crate::Input::Send) and not yet handed to the driver.
///
/// The queue only stores; the limit is checked by the client against everything not yet
/// delivered (queued here, plus handed out but not yet written), because that is what a slow
/// peer makes grow.
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    segments: VecDeque<Bytes>,
    /// Bytes in `segments`.
    len: usize,
    /// Application offset of the first queued byte: everything before it was handed out.
    front_offset: u64,
    /// Application offset where TLS starts: bytes before it leave in plaintext.
    tls_from: Option<u64>,
}

impl SendQueue {
    pub(crate) fn push(&mut self, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.len += data.len();
        self.segments.push_back(data);
    }

    /// Marks the current end of the queue as the point where TLS begins.
    pub(crate) fn start_tls_here(&mut self) {
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
    /// Segments never straddle the TLS boundary: `StartTls` marks the end of the queue, which
    /// is always between two `Send`s.
    pub(crate) fn pop_plaintext(&mut self) -> Option<Bytes> {
        if !self.has_plaintext_prefix() {
            return None;
        }
        self.pop()
    }

    /// Takes up to `max` bytes of TLS-bound data, as whole segments where they fit.
    pub(crate) fn pop_for_tls(&mut self, max: usize, out: &mut Vec<Bytes>) -> usize {
        let mut taken = 0;
        while taken < max && !self.has_plaintext_prefix() {
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

    /// Empties the queue, returning how many bytes were dropped.
    pub(crate) fn clear(&mut self) -> usize {
        let dropped = self.len;
        self.consumed(dropped);
        self.segments.clear();
        dropped
    }

    fn pop(&mut self) -> Option<Bytes> {
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
        let mut queue = SendQueue::default();
        queue.push(Bytes::from_static(b"EHLO\r\n"));
        queue.start_tls_here();
        queue.push(Bytes::from_static(b"secret"));

        assert_eq!(queue.pop_plaintext(), Some(Bytes::from_static(b"EHLO\r\n")));
        assert_eq!(queue.pop_plaintext(), None);

        let mut out = Vec::new();
        assert_eq!(queue.pop_for_tls(4, &mut out), 4);
        assert_eq!(out, [Bytes::from_static(b"secr")]);
        assert_eq!(queue.clear(), 2);
    }

    #[test]
    fn tls_data_waits_behind_the_plaintext_prefix() {
        let mut queue = SendQueue::default();
        queue.push(Bytes::from_static(b"plain"));
        queue.start_tls_here();
        let mut out = Vec::new();
        assert_eq!(queue.pop_for_tls(100, &mut out), 0);
        assert!(out.is_empty());
    }
}
