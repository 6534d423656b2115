//! A sans-IO TCP/TLS client connection engine: events in, actions out.
//!
//! `tcpclient-core` is the whole lifecycle of one client connection — start delay, name
//! resolution, connect attempts over every address, data both ways with a bounded send
//! queue, STARTTLS with rustls, graceful shutdown, abort — as a deterministic state
//! machine. It opens no socket, starts no thread, reads no clock. Your event loop (the
//! *driver*) performs the I/O it asks for and tells it what happened, so the same core runs
//! over real sockets, inside a network simulator, or under a fuzzer.
//!
//! # The driver loop
//!
//! After every input, drain [`Client::poll_output`] until it returns `None`; then sleep until
//! the socket is ready or [`Client::poll_timeout`] passes, and feed what happened back in.
//! That is the whole contract. Here it is as a complete program over one blocking `std`
//! socket, talking to an echo server it starts on 127.0.0.1 (this is
//! `examples/blocking_echo.rs`; run it with `cargo run -p tcpclient-core --example
//! blocking_echo`):
//!
//! ```
#![doc = include_str!("../examples/blocking_echo.rs")]
//! ```
//!
//! A real event loop writes without blocking: it keeps what a short write left over
//! (`Bytes::split_to` copies nothing), reports [`Input::Written`] as bytes leave, and waits
//! for writability: the `tcpclient-polling` crate is that driver, and `tcpclient-sim` runs
//! the same core inside the turmoil network simulator.
//!
//! # What you can rely on
//!
//! - **Exactly one [`Event::Closed`]**, last, carrying a [`CloseReport`]: how it ended
//!   ([`Ending`] or [`Error`]) and where every byte went. `bytes_accepted == bytes_written +
//!   bytes_undelivered`, whatever happened.
//! - **Bounded memory.** Bytes accepted but not yet written never exceed
//!   [`Config::send_limit`] (one oversized `Send` into an empty queue excepted); past it a
//!   `Send` is refused with the data handed back, and [`Event::SendReady`] says when to retry.
//! - **No panics, no hangs.** An input that makes no sense is refused with [`InvalidInput`];
//!   every wait has a deadline, so a shutdown request plus enough time always ends in
//!   `Closed`.
//! - **Determinism.** The same inputs at the same instants give the same outputs.
//! - **Verified TLS.** The core uses the [`rustls::ClientConfig`] you pass in
//!   ([`tls::client_config`] builds a verifying one); plaintext sent before
//!   [`Input::StartTls`] leaves before the ClientHello, everything after it is encrypted.
//!
//! # Kamaelia's TCPClient, box by box
//!
//! | Kamaelia `TCPClient` | here |
//! |---|---|
//! | `TCPClient(host, port, delay, connect_timeout)` | [`Config::new`], [`Config::delay`], [`Config::connect_timeout`] |
//! | `inbox` | [`Input::Send`] |
//! | `makessl` | [`Input::StartTls`] |
//! | `control`: `producerFinished` | [`Input::Finish`] |
//! | `control`: `shutdownMicroprocess` | [`Input::Abort`] |
//! | `outbox` | [`Event::Data`] |
//! | `sslready` | [`Event::TlsEstablished`] |
//! | `signal` | [`Event::Closed`] with a [`CloseReport`] |
//! | ConnectedSocketAdapter, selector | the driver |
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod admission;
mod buffers;
mod client;
mod config;
mod error;
mod input;
mod ledger;
mod output;
mod queue;
mod report;
mod state;
mod timers;
pub mod tls;

pub use bytes::Bytes;
pub use rustls;

pub use admission::SendAdmission;
pub use client::Client;
pub use config::{Config, OnPeerEof, TlsConfig};
pub use error::{Error, InvalidInput, TlsError};
pub use input::Input;
pub use output::{Event, Output};
pub use report::{CloseReport, Ending, TlsInfo};
pub use state::Phase;
