//! The requests only a session takes, as values: for a driver that passes every request
//! through one place (an observer, a command queue).

use bytes::Bytes;

/// How [`Session::reconnect`](super::Session::reconnect) leaves the current connection.
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

/// A request of a [`Session`](super::Session)'s own, taken by
/// [`Session::request`](super::Session::request) (and by the drivers' handles, which pass
/// it on as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SessionRequest {
    /// [`Session::send_preamble`](super::Session::send_preamble).
    SendPreamble(Bytes),
    /// [`Session::preamble_done`](super::Session::preamble_done).
    PreambleDone,
    /// [`Session::reconnect`](super::Session::reconnect).
    Reconnect(Leave),
    /// [`Session::acknowledged`](super::Session::acknowledged).
    Acknowledged(usize),
}

impl SessionRequest {
    /// The request's name: its method's.
    pub fn name(&self) -> &'static str {
        match self {
            SessionRequest::SendPreamble(_) => "send_preamble",
            SessionRequest::PreambleDone => "preamble_done",
            SessionRequest::Reconnect(_) => "reconnect",
            SessionRequest::Acknowledged(_) => "acknowledged",
        }
    }
}
