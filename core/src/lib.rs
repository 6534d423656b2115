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
//! That is the whole contract. Here it is over a blocking `std` socket, against an echo
//! server on 127.0.0.1:
//!
//! ```
//! use std::io::{ErrorKind, Read, Write};
//! use std::net::{Shutdown, TcpStream, ToSocketAddrs};
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use tcpclient_core::{Client, Config, Event, Input, Output};
//! # let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
//! # let port = listener.local_addr()?.port();
//! # std::thread::spawn(move || {
//! #     let (mut conn, _) = listener.accept().unwrap();
//! #     std::io::copy(&mut conn.try_clone().unwrap(), &mut conn).unwrap();
//! # });
//!
//! let mut client = Client::new(Config::new("localhost", port), Instant::now());
//! client.handle_input(Instant::now(), Input::Send(Bytes::from_static(b"hello")))?;
//! client.handle_input(Instant::now(), Input::Finish)?; // send it all, then close
//!
//! let mut socket: Option<TcpStream> = None;
//! let mut buf = [0u8; 4096];
//! loop {
//!     while let Some(output) = client.poll_output() {
//!         let now = Instant::now();
//!         match output {
//!             Output::Resolve { host, port } => {
//!                 let addrs: Vec<_> = (host.as_str(), port).to_socket_addrs()?.collect();
//!                 client.handle_input(now, Input::Resolved(&addrs))?;
//!             }
//!             Output::Connect(addr) => match TcpStream::connect(addr) {
//!                 Ok(stream) => {
//!                     socket = Some(stream);
//!                     client.handle_input(now, Input::Connected)?;
//!                 }
//!                 Err(e) => client.handle_input(now, Input::ConnectFailed(e.kind()))?,
//!             },
//!             Output::Transmit(bytes) => {
//!                 let result = socket.as_mut().map(|s| s.write_all(&bytes));
//!                 match result {
//!                     Some(Ok(())) => client.handle_input(now, Input::Written(bytes.len()))?,
//!                     Some(Err(e)) => client.handle_input(now, Input::SocketError(e.kind()))?,
//!                     None => {}
//!                 }
//!             }
//!             Output::ShutdownWrite => {
//!                 socket.as_ref().map(|s| s.shutdown(Shutdown::Write));
//!             }
//!             Output::Close => socket = None,
//!             Output::Event(Event::Data(data)) => println!("received {data:?}"),
//!             Output::Event(Event::Closed(report)) => {
//!                 println!("{report}");
//!                 assert!(report.is_clean());
//!                 return Ok(());
//!             }
//!             Output::Event(other) => println!("{other:?}"),
//!             _ => {}
//!         }
//!     }
//!     // Wait for data or the next deadline, whichever comes first.
//!     let wait = client.poll_timeout().map(|t| t.saturating_duration_since(Instant::now()));
//!     let input = match (&mut socket, client.wants_read()) {
//!         (Some(s), true) => {
//!             s.set_read_timeout(wait.map(|w| w.max(Duration::from_millis(1))))?;
//!             match s.read(&mut buf) {
//!                 Ok(0) => client.handle_input(Instant::now(), Input::PeerEof),
//!                 Ok(n) => client.handle_input(Instant::now(), Input::Received(&buf[..n])),
//!                 Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
//!                     client.handle_input(Instant::now(), Input::Timeout)
//!                 }
//!                 Err(e) => client.handle_input(Instant::now(), Input::SocketError(e.kind())),
//!             }
//!         }
//!         _ => {
//!             std::thread::sleep(wait.unwrap_or(Duration::from_millis(10)));
//!             client.handle_input(Instant::now(), Input::Timeout)
//!         }
//!     };
//!     input?;
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! A real event loop writes without blocking: it keeps what a short write left over
//! (`Bytes::split_to` copies nothing), reports [`Input::Written`] as bytes leave, and waits
//! for writability. `examples/blocking_echo.rs` is this loop as a program; the
//! `tcpclient-polling` and `tcpclient-sim` crates are the non-blocking and the simulated
//! drivers.
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
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

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

pub use client::Client;
pub use config::{Config, OnPeerEof, TlsConfig};
pub use error::{Error, InvalidInput, TlsError};
pub use input::Input;
pub use output::{Event, Output};
pub use report::{CloseReport, Ending, TlsInfo};
pub use state::Phase;
