//! What a driver runs: one [`Client`], or a reconnecting [`Session`], behind one interface,
//! so that a driver is written once for both.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use crate::{
    AttemptId, Client, Config, Input, InvalidInput, Output, Phase, ReconnectPolicy, Session,
    SessionRequest,
};

/// A [`Client`] or a [`Session`]: the same inputs, the same outputs, the same contract.
///
/// Drivers hold one per connection; an application picks which when it connects.
#[derive(Debug)]
// A client inline: it is the common case and on the hot path; boxing it would cost every
// connection an allocation and a pointer chase. The rarer session is boxed instead.
#[allow(clippy::large_enum_variant)]
pub enum Engine {
    /// One connection.
    Client(Client),
    /// As many connections as it takes (boxed: a session is larger, and rarer).
    Session(Box<Session>),
}

impl Engine {
    /// A client for `config`, or, with a policy, a session, starting at `now`.
    pub fn new(
        config: impl Into<Arc<Config>>,
        reconnect: Option<ReconnectPolicy>,
        now: Instant,
    ) -> Self {
        match reconnect {
            None => Engine::Client(Client::new(config, now)),
            Some(policy) => Engine::Session(Box::new(Session::new(config, policy, now))),
        }
    }

    /// See [`Client::handle_input`].
    pub fn handle_input(&mut self, now: Instant, input: Input<'_>) -> Result<(), InvalidInput> {
        match self {
            Engine::Client(c) => c.handle_input(now, input),
            Engine::Session(s) => s.handle_input(now, input),
        }
    }

    /// See [`Session::request`]; refused by a client, which has no session to ask.
    pub fn request(&mut self, now: Instant, request: SessionRequest) -> Result<(), InvalidInput> {
        match self {
            Engine::Client(c) => Err(InvalidInput::Unexpected {
                input: request.name(),
                phase: c.phase(),
            }),
            Engine::Session(s) => s.request(now, request),
        }
    }

    /// See [`Client::send`].
    #[inline]
    pub fn send(&mut self, data: Bytes) -> Result<(), InvalidInput> {
        match self {
            Engine::Client(c) => c.send(data),
            Engine::Session(s) => s.send(data),
        }
    }

    /// See [`Client::send_slice`].
    pub fn send_slice(&mut self, data: &[u8]) -> Result<(), InvalidInput> {
        match self {
            Engine::Client(c) => c.send_slice(data),
            Engine::Session(s) => s.send_slice(data),
        }
    }

    /// See [`Client::consumed`].
    pub fn consumed(&mut self, n: usize) -> Result<(), InvalidInput> {
        match self {
            Engine::Client(c) => c.consumed(n),
            Engine::Session(s) => s.consumed(n),
        }
    }

    /// See [`Client::poll_output`].
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        match self {
            Engine::Client(c) => c.poll_output(),
            Engine::Session(s) => s.poll_output(),
        }
    }

    /// See [`Client::poll_timeout`].
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self {
            Engine::Client(c) => c.poll_timeout(),
            Engine::Session(s) => s.poll_timeout(),
        }
    }

    /// See [`Client::wants_read`].
    pub fn wants_read(&self) -> bool {
        match self {
            Engine::Client(c) => c.wants_read(),
            Engine::Session(s) => s.wants_read(),
        }
    }

    /// See [`Client::receive_window_full`].
    pub fn receive_window_full(&self) -> bool {
        match self {
            Engine::Client(c) => c.receive_window_full(),
            Engine::Session(s) => s.receive_window_full(),
        }
    }

    /// See [`Client::winning_attempt`]: the attempt whose socket is the connection now.
    pub fn winning_attempt(&self) -> Option<AttemptId> {
        match self {
            Engine::Client(c) => c.winning_attempt(),
            Engine::Session(s) => s.winning_attempt(),
        }
    }

    /// See [`Client::phase`].
    pub fn phase(&self) -> Phase {
        match self {
            Engine::Client(c) => c.phase(),
            Engine::Session(s) => s.phase(),
        }
    }

    /// See [`Client::is_closed`]: for a session, its end.
    pub fn is_closed(&self) -> bool {
        match self {
            Engine::Client(c) => c.is_closed(),
            Engine::Session(s) => s.is_closed(),
        }
    }

    /// See [`Client::bytes_accepted`]; over every connection of a session.
    pub fn bytes_accepted(&self) -> u64 {
        match self {
            Engine::Client(c) => c.bytes_accepted(),
            Engine::Session(s) => s.bytes_accepted(),
        }
    }

    /// See [`Client::bytes_written`]; over every connection of a session.
    pub fn bytes_written(&self) -> u64 {
        match self {
            Engine::Client(c) => c.bytes_written(),
            Engine::Session(s) => s.bytes_written(),
        }
    }

    /// See [`Client::bytes_queued`]; for a session, on the current (or next) connection.
    pub fn bytes_queued(&self) -> u64 {
        match self {
            Engine::Client(c) => c.bytes_queued(),
            Engine::Session(s) => s.bytes_queued(),
        }
    }

    /// See [`Client::bytes_received`]; over every connection of a session.
    pub fn bytes_received(&self) -> u64 {
        match self {
            Engine::Client(c) => c.bytes_received(),
            Engine::Session(s) => s.bytes_received(),
        }
    }

    /// See [`Client::bytes_unconsumed`]; over every connection of a session.
    pub fn bytes_unconsumed(&self) -> u64 {
        match self {
            Engine::Client(c) => c.bytes_unconsumed(),
            Engine::Session(s) => s.bytes_unconsumed(),
        }
    }

    /// The client of the connection now (a session's current generation).
    pub fn client(&self) -> &Client {
        match self {
            Engine::Client(c) => c,
            Engine::Session(s) => s.client(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        self.client().config()
    }
}
