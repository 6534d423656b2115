//! What a reconnecting session's every connection begins with: a login, a `HELLO`, a
//! STARTTLS dialogue. It must come before anything the application queued meanwhile and
//! anything the session replays, or a server gets requests before the login they need.

use bytes::Bytes;

/// The preamble of every connection of a reconnecting [`Client`](crate::Client#reconnecting):
/// [`ReconnectPolicy::preamble`](crate::ReconnectPolicy::preamble).
///
/// Without one, [`Event::Reconnected`](crate::Event::Reconnected) is the place to redo a
/// login, but a send made before the application has seen that event, and everything queued
/// or replayed for the new connection, goes out first. With one, the session orders them.
///
/// ```
/// use std::time::Instant;
/// use tcpclient_core::{Bytes, Client, Config, Output, Preamble, ReconnectPolicy};
///
/// # fn run(now: Instant) -> Result<(), Box<dyn std::error::Error>> {
/// // Every connection logs in first; queued and replayed requests follow it.
/// let login = Preamble::Fixed(Bytes::from_static(b"AUTH secret\r\n"));
/// let policy = ReconnectPolicy::default().with_preamble(login);
/// let mut session = Client::new(("127.0.0.1", 6379), Config::new().with_reconnect(policy), now);
/// session.send(now, Bytes::from_static(b"GET k\r\n"))?;
/// let Some(Output::Connect { attempt, .. }) = session.poll_output() else { panic!() };
/// session.handle_input(now, tcpclient_core::Input::Connected(attempt))?;
/// let sent: Vec<Bytes> = std::iter::from_fn(|| session.poll_output())
///     .filter_map(|o| match o {
///         Output::Transmit(bytes) => Some(bytes),
///         _ => None,
///     })
///     .collect();
/// assert_eq!(sent.concat(), b"AUTH secret\r\nGET k\r\n");
/// # Ok(())
/// # }
/// # run(Instant::now()).unwrap();
/// ```
///
/// The preamble is not the application's bytes: the session's report and its
/// [`GenerationReport`](crate::GenerationReport)s leave it out, and it is never replayed.
/// (The report in [`Event::Disconnected`](crate::Event::Disconnected) is the connection's
/// own, and counts it.)
///
/// A preamble that needs the server's answers (a STARTTLS exchange, a SASL login) is a
/// [`Preamble::Dialogue`]: the application writes it on every connection with
/// [`Client::send_preamble`](crate::Client::send_preamble) and says when it is done
/// with [`Client::preamble_done`](crate::Client::preamble_done); every other send waits
/// until then.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Preamble {
    /// None: sends go out as they come, on whichever connection is up.
    #[default]
    None,
    /// These bytes, sent first on every connection by the session itself (after the TLS
    /// handshake, with TLS from the first byte).
    Fixed(Bytes),
    /// The application's own, on every connection: from `Connected` or `Reconnected` on,
    /// every send waits, with what the session replays, until
    /// [`Client::preamble_done`](crate::Client::preamble_done);
    /// [`Client::send_preamble`](crate::Client::send_preamble) goes ahead of them.
    Dialogue,
}
