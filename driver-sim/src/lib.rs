//! Runs [`tcpclient_core`] clients inside the [turmoil](https://docs.rs/turmoil) network
//! simulator: scripted faults, seed sweeps, and traces that replay byte for byte.
//!
//! The same core that runs over real sockets in `tcpclient-polling` runs here over turmoil's
//! simulated TCP, driven by `tcpclient-tokio`'s driver — the one users run on tokio — over
//! the [`Turmoil`] network, with `now` from turmoil's clock and every `select!` `biased;`,
//! so a seed fixes everything. A [`Scenario`] — a server ([`ServerKind`]), an application
//! script, a fault [`Schedule`] drawn from the fault families the seed enabled ([`Swarm`]),
//! the driver's misbehaviours ([`Point`]) — comes from one seed; [`run`] plays it, records a
//! [`Trace`] of every input and output with its simulated time, and checks the invariants of
//! the design (exactly one `Closed`, every byte accounted for, bounded queue, termination,
//! deadlines kept) plus what only the whole run shows: the application saw exactly the bytes
//! the server sent, in order, up to the fault, and a run healed of its faults finished.
//!
//! ```
//! use tcpclient_sim::{Scenario, run};
//!
//! let first = run(&Scenario::from_seed(7));
//! let again = run(&Scenario::from_seed(7));
//! assert!(first.violations.is_empty(), "{:?}", first.violations);
//! assert_eq!(first.trace.hash(), again.trace.hash(), "same seed, same trace");
//! ```
//!
//! turmoil has no send buffer and no acknowledgements, so the [`Wire`] models what the
//! peer's TCP acknowledged: a byte once the server read it, our FIN once it read the end.
//! Servers of your own answer for it by accepting with a [`Listener`] that shares the
//! client's `Wire` (`Turmoil { wire, .. }` for [`connect_with`]); a server that reads from
//! turmoil's own listener acknowledges nothing, and every graceful close then ends at the
//! drain deadline, unconfirmed, as one would with a peer that vanished.
//!
//! The `tcpclient-sim` program sweeps seed ranges (`sweep --seeds 0..2000`), replays one
//! seed's trace (`replay --seed 7`) and shrinks a failing seed to a test (`shrink --seed 7`).
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod buggify;
mod coverage;
mod driver;
mod faults;
mod liveness;
mod network;
mod scenario;
mod servers;
mod shrink;
mod swarm;
mod trace;
mod wire;

pub use buggify::{Buggify, BuggyStream, Point};
pub use coverage::Coverage;
pub use driver::{DnsAnswer, SimConnection, SimDns, SimObserver, Turmoil, connect, connect_with};
pub use faults::{Direction, Fault, FaultKind, Schedule};
pub use network::{Network, Path, Reach, SERVER_V4, SERVER_V6};
pub use scenario::{
    End, Outcome, SIMULATION_LIMIT, Scenario, Script, TURMOIL_TCP_CAPACITY, TlsMode, run, timed,
};
pub use servers::{FLOOD_BYTES, PORT, ServerKind, ServerLog, SharedLog, serve, server};
pub use shrink::{Shrunk, shrink, shrink_while, to_rust};
pub use swarm::{FaultFamily, Swarm};
pub use tcpclient_core::SplitMix;
pub use tcpclient_tokio::DriverEnd;
pub use trace::{Trace, fnv1a};
pub use wire::{Listener, ServerStream, Wire};
