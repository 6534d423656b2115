//! The bytes a reconnecting session keeps until the application's protocol acknowledges
//! them ([`ReconnectPolicy::replay_unacknowledged`](crate::ReconnectPolicy::replay_unacknowledged)),
//! as the same `Bytes` (reference counts, not copies).

use std::collections::VecDeque;

use bytes::Bytes;

/// Every byte sent and not yet acknowledged by the application, in order.
#[derive(Debug, Default)]
pub(crate) struct SendLog {
    chunks: VecDeque<Bytes>,
    /// Bytes held.
    len: u64,
    /// Bytes acknowledged so far.
    acknowledged: u64,
    /// The stream offset of the first byte held: every byte before it was acknowledged or
    /// handed back.
    front: u64,
}

impl SendLog {
    /// Keeps `data`, the next bytes sent.
    pub(crate) fn push(&mut self, data: Bytes) {
        if !data.is_empty() {
            self.len += data.len() as u64;
            self.chunks.push_back(data);
        }
    }

    /// Lets go of the next `n` bytes: the application's protocol acknowledged them. More
    /// than are held is refused, with how many are.
    pub(crate) fn acknowledge(&mut self, n: u64) -> Result<(), u64> {
        if n > self.len {
            return Err(self.len);
        }
        let mut left = n;
        while left > 0 {
            let Some(front) = self.chunks.front_mut() else {
                break;
            };
            let take = left.min(front.len() as u64);
            if take == front.len() as u64 {
                self.chunks.pop_front();
            } else {
                let _ = front.split_to(take as usize);
            }
            left -= take;
        }
        self.len -= n;
        self.acknowledged += n;
        self.front += n;
        Ok(())
    }

    /// Lets go of every byte held, not as acknowledged: they went back to the application.
    pub(crate) fn hand_back(&mut self) {
        self.chunks.clear();
        self.front += self.len;
        self.len = 0;
    }

    /// The bytes held: sent and not acknowledged.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// The bytes acknowledged so far.
    pub(crate) fn acknowledged(&self) -> u64 {
        self.acknowledged
    }

    /// The stream offset of the first byte held.
    pub(crate) fn front(&self) -> u64 {
        self.front
    }

    /// The bytes held, in order, to send again.
    pub(crate) fn replay(&self) -> Vec<Bytes> {
        self.chunks.iter().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledged_bytes_are_let_go_and_the_rest_replays_in_order() {
        let mut log = SendLog::default();
        log.push(Bytes::from_static(b"GET a\n"));
        log.push(Bytes::from_static(b"GET b\n"));

        assert_eq!(log.acknowledge(6), Ok(()));
        assert_eq!(log.replay(), [Bytes::from_static(b"GET b\n")]);
        assert_eq!((log.len(), log.acknowledged()), (6, 6));
        assert_eq!(log.acknowledge(7), Err(6), "no more than is held");
        assert_eq!(log.len(), 6, "a refusal changes nothing");
        assert_eq!(log.acknowledge(4), Ok(()), "part of a chunk");
        assert_eq!(log.replay(), [Bytes::from_static(b"b\n")]);
        log.push(Bytes::from_static(b"GET c\n"));
        assert_eq!(log.acknowledge(8), Ok(()), "all that is held");
        assert!(log.replay().is_empty());
        log.push(Bytes::from_static(b"GET d\n"));

        log.hand_back();
        assert_eq!((log.len(), log.acknowledged(), log.front()), (0, 18, 24));
        assert!(log.replay().is_empty());
    }
}
