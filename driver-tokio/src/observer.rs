//! What sees every input, request and output: nothing by default; in the simulator, the
//! trace and the invariant monitor.

use std::time::Instant;

use tcpclient_core::{Client, Input, InvalidInput, Output, Request};

/// Stands between the driver (and the application's requests) and the client: every input
/// goes through [`Observer::input`], every request through [`Observer::request`] (or
/// [`Observer::send_slice`]), every output through [`Observer::poll_output`].
/// Implementations must pass them on unchanged; they may record and check them.
pub trait Observer: 'static {
    /// Hands `client` the driver's report at `now`; returns the client's answer.
    fn input(
        &mut self,
        client: &mut Client,
        now: Instant,
        input: Input<'_>,
    ) -> Result<(), InvalidInput> {
        client.handle_input(now, input)
    }

    /// Makes the application's request of `client` at `now`; returns the client's answer.
    fn request(
        &mut self,
        client: &mut Client,
        now: Instant,
        request: Request,
    ) -> Result<(), InvalidInput> {
        request.apply(client, now)
    }

    /// Hands `client` a copy of `data` to send ([`Client::send_slice`]): the same as a
    /// [`Request::Send`] of those bytes, without making them a `Bytes` of their own.
    fn send_slice(
        &mut self,
        client: &mut Client,
        now: Instant,
        data: &[u8],
    ) -> Result<(), InvalidInput> {
        client.send_slice(now, data)
    }

    /// Takes the client's next output.
    fn poll_output(&mut self, client: &mut Client, now: Instant) -> Option<Output> {
        let _ = now;
        client.poll_output()
    }

    /// When the driver next wakes for the client's `deadline` (from
    /// [`Client::poll_timeout`]): the deadline itself, by default. A simulator may answer
    /// later, as the timer of a loaded machine fires late; an earlier answer only wakes the
    /// client for nothing.
    fn timer(&mut self, deadline: Option<Instant>) -> Option<Instant> {
        deadline
    }

    /// The driver's own report was refused: with a driver that performs every output, a
    /// bug. The default ignores it (the client is unchanged by a refusal).
    fn refused_report(&mut self, name: &'static str, refusal: &InvalidInput) {
        let _ = (name, refusal);
    }

    /// The driver loop ended; returns anything the observer found wrong.
    fn finish(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Sees nothing: the client as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl Observer for Unobserved {}
