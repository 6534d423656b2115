//! The rule that admits a `Send` into the queue: one connection's, and a reconnecting
//! session's over its log of unacknowledged bytes, the same.

use bytes::Bytes;

use crate::{Config, InvalidInput};

/// When a `Send` is taken and when, after a refusal, there is room again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SendAdmission {
    limit: usize,
    low_watermark: usize,
}

impl SendAdmission {
    /// The rule of [`Config::send_limit`] and [`Config::send_low_watermark`].
    pub(crate) fn new(config: &Config) -> Self {
        Self {
            limit: config.send_limit,
            low_watermark: config.send_low_watermark,
        }
    }

    /// Admits `data` with `queued` bytes accepted and not yet written: the data back if it
    /// fits under the limit (or the queue is empty: one send of any size is taken then), or
    /// the [`InvalidInput::QueueFull`] refusal that hands it back.
    #[inline]
    pub(crate) fn admit(&self, queued: u64, data: Bytes) -> Result<Bytes, InvalidInput> {
        if !self.fits(queued, data.len()) {
            return Err(self.refuse(queued, data));
        }
        Ok(data)
    }

    /// Returns true when a send of `len` bytes would be admitted with `queued` bytes
    /// accepted and not yet written.
    #[inline]
    pub(crate) fn fits(&self, queued: u64, len: usize) -> bool {
        queued == 0 || queued.saturating_add(len as u64) <= self.limit as u64
    }

    #[cold]
    fn refuse(&self, queued: u64, data: Bytes) -> InvalidInput {
        InvalidInput::QueueFull {
            data,
            queued: usize::try_from(queued).unwrap_or(usize::MAX),
            limit: self.limit,
        }
    }

    /// Returns true when `queued` unwritten bytes leave room to send again after a refusal:
    /// the moment of [`Event::SendReady`](crate::Event::SendReady).
    pub(crate) fn has_room_again(&self, queued: u64) -> bool {
        queued <= self.low_watermark as u64
    }

    /// Returns the most bytes a `Send` may carry with `queued` unwritten bytes and not be
    /// refused (with nothing queued, any size is taken).
    pub(crate) fn capacity(&self, queued: u64) -> usize {
        let queued = usize::try_from(queued).unwrap_or(usize::MAX);
        self.limit.saturating_sub(queued)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_the_empty_queue_and_the_low_watermark() {
        let admission = SendAdmission::new(&Config::new().with_send_limit(10));
        let big = Bytes::from_static(&[0; 64]);
        assert!(
            admission.admit(0, big).is_ok(),
            "one oversized send into an empty queue"
        );
        let small = Bytes::from_static(&[0; 4]);
        assert!(admission.admit(8, small).is_err(), "8 + 4 > 10");
        assert!(
            admission.has_room_again(5) && !admission.has_room_again(6),
            "half the limit"
        );
    }
}
