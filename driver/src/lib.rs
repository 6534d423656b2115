//! What every driver of [`tcpclient_core`] over the operating system's sockets does the
//! same way, whatever runs it (`tcpclient-polling`'s event loop, `tcpclient-tokio`'s task):
//!
//! - the socket of a connect attempt, with the socket options the core asked for
//!   ([`socket_for`]), and an abortive close ([`reset`]);
//! - the answer to the core's question about what the peer's TCP has not acknowledged
//!   ([`unacknowledged`]), and the error a socket met that no read or write reported
//!   ([`pending_error`]);
//! - name resolution, one address family at a time: the system's resolver
//!   ([`SystemResolver`]), fixed answers ([`FixedResolver`]), or any [`Resolve`];
//! - the transmits handed out and not yet written, gathered into vectored writes with one
//!   cap ([`PendingWrites`]);
//! - the rules for the application's handles on a connection: data consumed once handed
//!   out, data nobody will take consumed as it comes, dropping the handles an abort unless
//!   finishing ([`HandleState`]).
//!
//! It decides nothing: every decision is the core's. A driver depends on it and on its
//! runtime, and not on another driver.
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod handles;
mod pending;
mod resolver;
mod socket;

pub use handles::{Delivery, HandleState, refused_as_closed};
pub use pending::PendingWrites;
pub use resolver::{FixedResolver, Resolve, SystemResolver};
pub use socket::{pending_error, reset, socket_for, unacknowledged};
pub use tcpclient_core;
