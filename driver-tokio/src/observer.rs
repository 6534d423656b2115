//! What sees every input and output: nothing by default; in the simulator, the trace and
//! the invariant monitor.

use std::time::Instant;

use tcpclient_core::{Engine, Input, InvalidInput, Output, SessionRequest};

/// Stands between the driver (and the application's requests) and the engine: every input
/// goes through [`Observer::input`], every output through [`Observer::poll_output`].
/// Implementations must pass them on unchanged; they may record and check them.
pub trait Observer: 'static {
    /// Hands `engine` the input at `now`; returns the engine's answer.
    fn input(
        &mut self,
        engine: &mut Engine,
        now: Instant,
        input: Input<'_>,
    ) -> Result<(), InvalidInput> {
        engine.handle_input(now, input)
    }

    /// Hands `engine` a copy of `data` to send ([`Engine::send_slice`]): the same as an
    /// [`Input::Send`] of those bytes.
    fn send_slice(
        &mut self,
        engine: &mut Engine,
        now: Instant,
        data: &[u8],
    ) -> Result<(), InvalidInput> {
        let _ = now;
        engine.send_slice(data)
    }

    /// Hands `engine` one of a reconnecting session's own requests at `now`
    /// ([`Engine::request`]); returns the engine's answer.
    fn request(
        &mut self,
        engine: &mut Engine,
        now: Instant,
        request: SessionRequest,
    ) -> Result<(), InvalidInput> {
        engine.request(now, request)
    }

    /// Takes the engine's next output.
    fn poll_output(&mut self, engine: &mut Engine, now: Instant) -> Option<Output> {
        let _ = now;
        engine.poll_output()
    }

    /// When the driver next wakes for the engine's `deadline` (from
    /// [`Engine::poll_timeout`]): the deadline itself, by default. A simulator may answer
    /// later, as the timer of a loaded machine fires late; an earlier answer only wakes the
    /// engine for nothing.
    fn timer(&mut self, deadline: Option<Instant>) -> Option<Instant> {
        deadline
    }

    /// The driver's own report was refused: with a driver that performs every output, a
    /// bug. The default ignores it (the engine is unchanged by a refusal).
    fn refused_report(&mut self, name: &'static str, refusal: &InvalidInput) {
        let _ = (name, refusal);
    }

    /// The driver loop ended; returns anything the observer found wrong.
    fn finish(&mut self) -> Vec<String> {
        Vec::new()
    }
}

/// Sees nothing: the engine as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unobserved;

impl Observer for Unobserved {}
