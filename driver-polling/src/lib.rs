//! Runs [`tcpclient_core`] clients over real non-blocking sockets.
//!
//! Two ways in:
//!
//! - [`EventLoop`]: single-threaded. Create connections, call [`EventLoop::turn`] in your
//!   loop, take events from [`EventLoop::poll_event`]. Requests go straight to the client,
//!   so a full send queue is refused synchronously with the data handed back.
//! - [`Runtime`]: the same loop on a thread of its own, and a [`Connection`] handle per
//!   connection that any thread can use — `send` / `start_tls` / `finish` / `abort` in,
//!   events out, like the boxes of Kamaelia's `TCPClient` — with [`Sender`]s split off
//!   for other threads. Each client is shared by the loop and its handles behind one lock,
//!   so requests are answered at once here too.
//!
//! The loop is a `polling::Poller`; a connection's socket is registered level-triggered
//! while it has interest and re-registered when what its client wants changes; the next
//! client deadline is the wait timeout. Connects are non-blocking (socket2),
//! names are resolved on a bounded pool of helper threads (by [`SystemResolver`], or any
//! [`Resolve`]), queued transmits are gathered into `sendmsg` calls (with `MSG_NOSIGNAL`),
//! and all reads share one buffer; what every driver does the same way (the socket's
//! setup, the questions the core asks of it, the resolvers) is `tcpclient-driver`'s. The
//! driver decides nothing: every decision — what to
//! send, when to give up, what to report — is the core's.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod conn;
mod event_loop;
mod reactor;
mod resolver;
mod runtime;
mod socket;

pub use event_loop::EventLoop;
pub use reactor::{ConnId, Waker};
pub use resolver::MAX_RESOLVER_THREADS;
pub use runtime::{Connection, Disconnected, Runtime, Sender};
pub use tcpclient_core;
pub use tcpclient_driver::{FixedResolver, Resolve, SystemResolver};
