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
//!
//! # In your own crate's tests
//!
//! - **One turmoil.** Build simulations with the one re-exported here,
//!   `tcpclient_sim::turmoil` ([`TURMOIL_VERSION`]), and depend on no other: a `turmoil` of
//!   another version compiles, but its simulated network is not the one this crate's clients
//!   reach. [`connect`] and [`connect_with`] say so plainly if it happens. `Trace::note`'s
//!   values are [`serde_json`]'s, re-exported too.
//! - **Fast debug builds.** A dependent crate does not inherit this workspace's profile, and
//!   a simulated test spends its time in TLS, tokio and turmoil: optimise those in your test
//!   builds too, as this workspace does (your code stays unoptimised and debuggable). In your
//!   workspace's `Cargo.toml`:
//!
//! ```toml
//! [profile.dev.package.rustls]
//! opt-level = 2
//! [profile.dev.package.aws-lc-rs] # or ring, with the core's `ring` feature
//! opt-level = 2
//! [profile.dev.package.tokio]
//! opt-level = 2
//! [profile.dev.package.turmoil]
//! opt-level = 2
//! ```
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod app_points;
mod buggify;
mod coverage;
mod driver;
mod faults;
mod harness;
mod liveness;
mod network;
mod scenario;
mod seeds;
mod servers;
mod shrink;
mod swarm;
mod trace;
mod wire;

pub use app_points::{AppPoint, AppPoints};
pub use buggify::{Buggify, BuggyStream, Point};
pub use coverage::Coverage;
pub use driver::{
    DnsAnswer, SimConnection, SimDns, SimObserver, TURMOIL_VERSION, Turmoil, connect, connect_with,
};
pub use faults::{Direction, Fault, FaultKind, Schedule};
pub use harness::{Harness, History, Record, Task, Verdict};
pub use network::{Network, Path, Reach, SERVER_V4, SERVER_V6};
pub use scenario::{
    End, Outcome, SIMULATION_LIMIT, Scenario, Script, TURMOIL_TCP_CAPACITY, TlsMode, run, timed,
};
pub use seeds::{SEED_VAR, SEEDS_VAR, Seeds};
/// The JSON values of [`Trace::note`], re-exported so that a test needs no `serde_json` of
/// its own.
pub use serde_json;
pub use servers::{FLOOD_BYTES, PORT, ServerKind, ServerLog, SharedLog, serve, server};
pub use shrink::{Shrunk, shrink, shrink_while, to_rust};
pub use swarm::{FaultFamily, Swarm};
pub use tcpclient_core::SplitMix;
pub use tcpclient_tokio::DriverEnd;
pub use trace::{Trace, fnv1a};
/// The simulator this crate runs on, re-exported: build simulations with
/// `tcpclient_sim::turmoil::Builder`, so that they are of the turmoil version this crate's
/// clients can reach ([`TURMOIL_VERSION`]).
pub use turmoil;
pub use wire::{Listener, ServerStream, Wire};
