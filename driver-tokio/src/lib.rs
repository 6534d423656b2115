//! Runs [`tcpclient_core`] clients on tokio: one async driver over a [`Network`] — the
//! operating system's sockets ([`Tokio`]) for real, or another that gives tokio streams
//! (`tcpclient-sim` runs the same driver inside the turmoil simulator).
//!
//! [`connect`] starts a client on a task of its own and returns a [`Connection`] once it is
//! up: an [`AsyncRead`](tokio::io::AsyncRead) + [`AsyncWrite`](tokio::io::AsyncWrite)
//! stream that works with `tokio::io::copy`, `copy_bidirectional` and `tokio_util`'s
//! `Framed`. Happy Eyeballs, STARTTLS ([`Connection::start_tls`], then
//! [`Connection::tls_established`]), the receive window (data counts as consumed as it is
//! read), the stall deadline and reconnects
//! ([`Config::with_reconnect`](tcpclient_core::Config::with_reconnect)) work as in the other
//! drivers: every decision is the core's.
//!
//! ```no_run
//! use tokio::io::{AsyncReadExt, AsyncWriteExt};
//! use tcpclient_core::Config;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let mut conn = tcpclient_tokio::connect(("example.org", 80), Config::new()).await?;
//! conn.write_all(b"HEAD / HTTP/1.0\r\n\r\n").await?;
//! conn.shutdown().await?; // Finish: delivered, then FIN
//! let mut reply = Vec::new();
//! conn.read_to_end(&mut reply).await?;
//! let report = conn.closed().await;
//! # Ok(())
//! # }
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

pub mod buggify;
mod connection;
mod driver;
mod network;
mod observer;
mod shared;

use std::future::Future;
use std::sync::Arc;

use tcpclient_core::{Client, Config, Destination};

pub use connection::{ConnectError, Connection, Sender, StartTlsError};
pub use driver::DriverEnd;
pub use network::{Network, Tokio};
pub use observer::{Observer, Unobserved};
pub use tcpclient_core;

/// Connects to `destination`, by `config`, over the operating system's network, on a task of
/// its own; returns once the connection is up, or with the report of why it did not come up.
///
/// With [`Config::reconnect`] the connection comes back after losses as the policy says;
/// [`Connection::next_event`] tells of each (`Disconnected`, `Reconnecting`,
/// `Reconnected`). It returns once the first connection is up.
///
/// Must be called inside a tokio runtime (names are resolved on its blocking pool).
pub async fn connect(
    destination: impl Into<Destination>,
    config: impl Into<Arc<Config>>,
) -> Result<Connection, ConnectError> {
    let client = Client::new(destination, config, shared::now());
    let (conn, driver) = start(Tokio::default(), client, Unobserved);
    tokio::spawn(driver);
    conn.until_connected().await
}

/// The driver for `client` over `network`, with every input and output through
/// `observer`: the connection, and the driver's future to run (spawn it, or join it with
/// the application). The future ends with the close report. This is how the simulator runs
/// the driver inside turmoil, with its trace and invariant monitor as the observer.
pub fn start<N: Network, O: Observer>(
    network: N,
    client: Client,
    observer: O,
) -> (Connection<O>, impl Future<Output = DriverEnd>) {
    let shared = Arc::new(shared::Shared::new(client, observer));
    let driver = driver::drive(network, shared.clone());
    (Connection::new(shared), driver)
}

/// The clock the driver stamps inputs with: tokio's (a simulator's, inside one).
pub fn now() -> std::time::Instant {
    shared::now()
}
