//! The application's requests as values, for what stands between an application and its
//! [`Client`]: an observer that checks or records them, a command queue, a trace.

use std::time::Instant;

use bytes::Bytes;

use crate::{Client, InvalidInput, Leave};

/// One of the application's requests, as a value: what the [`Client`]'s request methods
/// take, for code that passes requests through one place (an observer, a queue, a trace).
/// [`apply`](Self::apply) makes the call; an application calls the methods directly.
#[derive(Debug, Clone, PartialEq, Eq, strum::IntoStaticStr)]
#[non_exhaustive]
pub enum Request {
    /// [`Client::send`].
    #[doc(alias = "inbox")]
    Send(Bytes),
    /// [`Client::start_tls`].
    #[doc(alias = "makessl")]
    StartTls,
    /// [`Client::finish`].
    #[doc(alias = "producerFinished")]
    Finish,
    /// [`Client::abort`].
    #[doc(alias = "shutdownMicroprocess")]
    Abort,
    /// [`Client::consumed`].
    Consumed(usize),
    /// [`Client::reconnect`].
    Reconnect(Leave),
    /// [`Client::acknowledged`].
    Acknowledged(usize),
    /// [`Client::send_preamble`].
    SendPreamble(Bytes),
    /// [`Client::preamble_done`].
    PreambleDone,
}

impl Request {
    /// Makes the request of `client` at `now`: calls its method.
    pub fn apply(self, client: &mut Client, now: Instant) -> Result<(), InvalidInput> {
        match self {
            Request::Send(data) => client.send(now, data),
            Request::StartTls => client.start_tls(now),
            Request::Finish => client.finish(now),
            Request::Abort => client.abort(now),
            Request::Consumed(n) => client.consumed(n),
            Request::Reconnect(leave) => client.reconnect(now, leave),
            Request::Acknowledged(n) => client.acknowledged(n),
            Request::SendPreamble(data) => client.send_preamble(now, data),
            Request::PreambleDone => client.preamble_done(now),
        }
    }

    /// The request's name in traces: its variant's name.
    pub fn name(&self) -> &'static str {
        self.into()
    }
}

/// The requests that need the clock and take the same path through a reconnecting client
/// and its connection, so that a refusal names them the same way at both levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
pub(crate) enum Control {
    StartTls,
    Finish,
    Abort,
}

impl Control {
    /// The name a refusal gives it ([`InvalidInput::Unexpected`]): its variant's.
    pub(crate) fn name(self) -> &'static str {
        self.into()
    }
}
