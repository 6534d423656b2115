//! How a reconnect leaves the current connection.

/// How [`Client::reconnect`](crate::Client::reconnect) leaves the current connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Leave {
    /// Drop it now, as an abort does: the peer sees a reset; what it did not get through
    /// goes back to the application or, by the policy, on the next connection.
    Reset,
    /// Close it gracefully first: what it holds is delivered, `close_notify` and FIN sent,
    /// within the drain timeout; sends made meanwhile wait for the next connection.
    Finish,
}
