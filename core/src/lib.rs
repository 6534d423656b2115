//! A sans-IO TCP/TLS client connection engine: events in, actions out.
//!
//! `tcpclient-core` is the whole lifecycle of one client connection — start delay, name
//! resolution, connect attempts over every address, data both ways with a bounded send
//! queue, STARTTLS with rustls, graceful shutdown, abort — as a deterministic state
//! machine. It opens no socket, starts no thread, reads no clock. Your event loop (the
//! *driver*) performs the I/O it asks for and tells it what happened, so the same core runs
//! over real sockets, inside a network simulator, or under a fuzzer.
//!
//! # One client, a destination and a policy
//!
//! A [`Client`] is made with where it connects, a [`Destination`] (host, port, and the name
//! TLS verifies, the host's by default), and how, a [`Config`]: every timeout and limit, TLS,
//! and a reconnect policy if it should come back after losses. The policy is shared: one
//! `Arc<Config>` serves any number of clients to any servers. The application's requests are
//! the client's methods ([`Client::send`], [`Client::start_tls`], [`Client::finish`],
//! [`Client::abort`], [`Client::consumed`], ...), answered at once; [`Input`] is only what the
//! driver observed.
//!
//! # The driver loop
//!
//! After every input, drain [`Client::poll_output`] until it returns `None`, performing each
//! output in order; then wait until the socket is readable (while [`Client::wants_read`]),
//! writable (while transmits are unwritten) or [`Client::poll_timeout`] passes, and feed what
//! happened back in. That is the whole contract. Here it is as a complete program over one
//! blocking `std` socket, talking to an echo server it starts on 127.0.0.1 (this is
//! `examples/blocking_echo.rs`; run it with `cargo run -p tcpclient-core --example
//! blocking_echo`):
//!
//! ```
#![doc = include_str!("../examples/blocking_echo.rs")]
//! ```
//!
//! A real event loop writes without blocking: `examples/nonblocking_echo.rs` is the same
//! exchange over a non-blocking socket and the `polling` crate, with a connect that completes
//! later and writes that come out short. The `tcpclient-polling` crate is that driver for
//! many connections, and `tcpclient-sim` runs the same core inside the turmoil network
//! simulator.
//!
//! # The contract, in detail
//!
//! - **Several inputs and requests may come before one drain.** Transmits are made lazily
//!   in `poll_output`, so many sends before a drain leave as fewer transmits and TLS records.
//!   Drain before waiting: an output not taken is an action not performed.
//! - **Short writes.** Report what was written with [`Input::Written`]; keep the rest of the
//!   [`Output::Transmit`] with `Bytes::split_to(n)`, which drops the written prefix without
//!   a copy, and write it when the socket is writable again.
//! - **When a socket action fails.** A failed [`Output::ShutdownWrite`] is reported as
//!   [`Input::SocketError`]. [`Output::Close`] has nothing to report: drop the socket.
//! - **Written is not delivered.** [`Output::QueryUnacknowledged`] asks what the peer's TCP
//!   has not acknowledged of what was written: answer it at once, in the drain, with
//!   [`Input::Unacknowledged`] (on Linux, the `SIOCOUTQ` ioctl; [`Unacknowledged::Unknown`]
//!   where the platform cannot tell). It comes before the close of a connection that wrote
//!   something, while a finished connection waits for its FIN to be acknowledged, and every
//!   256 KiB written: the close report counts what the peer got from the answers.
//! - **[`Input::SocketError`]** is taken during a connect attempt (the attempt fails and the
//!   next address is tried) and while connected, draining included.
//! - **Late reports are no-ops.** A report that arrives after the close — the failed
//!   `shutdown` of a connection the peer already reset, a resolution that raced an
//!   [`Client::abort`] — is accepted and ignored. Before the close, a report that makes no
//!   sense is refused with [`InvalidInput`] and changes nothing.
//! - **A peer that never closes** after [`Client::finish`]: the drain deadline ends the
//!   connection with [`Error::DrainTimeout`], however completely our side closed: nothing
//!   confirms that the peer took what we sent. [`Ending::Finished`] means the close completed
//!   both ways: the peer's end came and its TCP acknowledged our FIN.
//! - **Consume what you are given.** With a [`Config::receive_window`] (1 MiB by default),
//!   report the `Data` bytes you are done with ([`Client::consumed`]); reading stops while the window is full and resumes once you do.
//!   An application that takes every `Data` as it comes sets the window to `None`.
//! - **[`Client::start_tls`]** may come once, before shutdown. Before the connection is up it
//!   means TLS from the first byte. Bytes sent before it leave in plaintext, before the
//!   ClientHello. The session starts at the first drain after it (once connected); from
//!   then on everything the server sends goes to TLS, which refuses plaintext as a corrupt
//!   record, so an injected reply never reaches the application as session data.
//!
//! The repository's ARCHITECTURE.md has the same contract as tables, and the invariants every
//! part of the project checks.
//!
//! # Crypto
//!
//! TLS runs on rustls with the crypto provider the features choose
//! ([`tls::default_provider`]): `aws-lc-rs`, the default, whose key exchange offers the
//! X25519MLKEM768 post-quantum hybrid first (and X25519 in the same flight, so a server
//! without it costs no extra round trip), or `ring` alone
//! (`default-features = false, features = ["ring"]`): no C compiler needed, no
//! post-quantum. [`TlsInfo::key_exchange_group`] says which group a session used.
//!
//! # Diagnostics
//!
//! With the `tracing` feature, each client has a `tracing` span (`client`, with its host and
//! port) and emits debug events when its phase changes, when it refuses an input, and when it
//! closes, with the close report's numbers. Without the feature none of this is compiled in.
//!
//! # Traces
//!
//! With the `trace` feature, [`trace`] writes any input, request and output as one JSON line
//! of one schema, the one the `tcpclient` program's `--trace` and the simulator's traces use.
//!
//! # What you can rely on
//!
//! - **Exactly one [`Event::Closed`]**, last, carrying a [`CloseReport`]: how it ended
//!   ([`Ending`] or [`Error`]) and where every byte went: confirmed by a close both ways,
//!   acknowledged by the peer's TCP and unconfirmed, or undelivered (never written, or
//!   written and lost with the connection, and handed back as [`Event::Undelivered`]).
//!   `bytes_accepted == bytes_confirmed + bytes_unconfirmed + bytes_undelivered`, whatever
//!   happened, and [`CloseReport::is_clean`] only when every byte is confirmed.
//! - **Bounded memory.** Bytes accepted but not yet written never exceed
//!   [`Config::send_limit`] (one oversized `Send` into an empty queue excepted); past it a
//!   `Send` is refused with the data handed back, and [`Event::SendReady`] says when to retry.
//!   Received data the application has not reported consumed ([`Client::consumed`]) stops
//!   the reading at [`Config::receive_window`], overshooting it by one read at most.
//! - **Dead peers are found.** Bytes that see no write progress for
//!   [`Config::stall_timeout`] end the connection with [`Error::Stalled`]; the default socket
//!   options add keepalive and `TCP_USER_TIMEOUT` for connections that only read.
//! - **No panics, no hangs.** An input that makes no sense is refused with [`InvalidInput`];
//!   every wait has a deadline, so a shutdown request plus enough time always ends in
//!   `Closed`.
//! - **Determinism.** The same inputs at the same instants give the same outputs.
//! - **Verified TLS.** The core uses the [`rustls::ClientConfig`] you pass in
//!   ([`tls::client_config`] builds a verifying one); plaintext sent before
//!   [`Client::start_tls`] leaves before the ClientHello, everything after it is encrypted.
//!
//! # Across connections
//!
//! With a [`ReconnectPolicy`] ([`Config::with_reconnect`]) the same [`Client`] keeps the
//! same contract over as many connections as it takes: backoff and limits, a [`Preamble`]
//! sent first on every connection (bytes of its own, or the application's dialogue, which
//! every other send waits for), [`Client::reconnect`] on demand, and at-least-once delivery
//! by the application's protocol ([`ReconnectPolicy::replay_unacknowledged`],
//! [`Client::acknowledged`]). Its one [`Event::Closed`] reports every connection
//! ([`GenerationReport`]) and every attempt.
//!
//! # Kamaelia's TCPClient, box by box
//!
//! | Kamaelia `TCPClient` | here |
//! |---|---|
//! | `TCPClient(host, port, delay, connect_timeout)` | [`Destination::new`], [`Config::delay`], [`Config::connect_timeout`] |
//! | `inbox` | [`Client::send`] |
//! | `makessl` | [`Client::start_tls`] |
//! | `control`: `producerFinished` | [`Client::finish`] |
//! | `control`: `shutdownMicroprocess` | [`Client::abort`] |
//! | `outbox` | [`Event::Data`] |
//! | `sslready` | [`Event::TlsEstablished`] |
//! | `signal` | [`Event::Closed`] with a [`CloseReport`] |
//! | ConnectedSocketAdapter, selector | the driver |
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod admission;
mod backoff;
mod buffers;
mod client;
mod config;
mod connection;
mod destination;
mod error;
mod input;
mod ledger;
mod lines;
mod log;
#[cfg(feature = "monitor")]
pub mod monitor;
mod options;
mod output;
mod outstanding;
mod preamble;
pub mod proxy;
mod queue;
mod race;
mod report;
mod request;
mod rng;
mod send_log;
mod session;
pub mod starttls;
mod state;
mod timers;
pub mod tls;
#[cfg(feature = "trace")]
pub mod trace;

pub use bytes::Bytes;
pub use rustls;

pub use backoff::{Jitter, ReconnectPolicy};
pub use client::Client;
pub use config::{Config, OnPeerEof, TlsConfig};
pub use destination::Destination;
pub use error::{Error, Flood, InvalidInput, TlsError};
pub use input::{Input, Unacknowledged};
pub use options::{AttemptId, ConnectOptions, Family, FamilyPreference, Keepalive, SocketOptions};
pub use output::{Event, Output};
pub use preamble::Preamble;
pub use report::{
    AlertSent, Attempt, AttemptOutcome, CloseReport, Ending, GenerationReport, PeerCertificates,
    TlsInfo,
};
pub use request::Request;
pub use rng::SplitMix;
pub use session::Leave;
pub use state::Phase;
