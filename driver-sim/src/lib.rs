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
//! The `tcpclient-sim` program (built with the `cli` feature, so that a test depending on
//! this crate does not build its argument parser) sweeps seed ranges
//! (`sweep --seeds 0..2000`), replays one seed's trace (`replay --seed 7`) and shrinks a
//! failing seed to a test (`shrink --seed 7`).
//!
//! # Test your own protocol
//!
//! The same machinery runs a protocol of yours: your servers, your clients on the tokio
//! driver, the faults, and an invariant of your own, under one seed.
//!
//! - **[`Harness`]** is the run:
//!   - [`Harness::host`] adds a server (any turmoil host software, given a [`Task`] for the
//!     run's [`Wire`] and its history);
//!   - [`Harness::client`] adds a client task, whose [`Task::connect`] makes a connection
//!     watched by this project's invariant monitor;
//!   - [`Harness::faults`] applies a [`Schedule`] of yours, or [`Harness::swarm`] has the
//!     seed draw one from fault families;
//!   - [`Harness::invariant`] checks what the hosts recorded ([`Task::record`]) once the run
//!     is over.
//!
//!   The [`Verdict`] holds the violations (the monitor's, liveness, yours), the trace, the
//!   coverage, the history, and what the seed drew.
//! - **[`Seeds`]** runs a range of seeds from a `#[test]`:
//!   - `TCPCLIENT_SIM_SEED=17` picks one seed, and `TCPCLIENT_SIM_SEEDS=0..10000` a range;
//!   - `check_determinism` runs each seed twice and compares the runs;
//!   - a failing seed fails the test with the command that replays it, and what it drew;
//!   - [`shrink_plan`] then cuts its fault plan and your [`Workload`] down while it still
//!     fails the same way.
//! - **Buggify in your code.** `tcpclient_tokio::buggify::fires("a name")` is a fault point
//!   of your own. It is never on outside a simulation. Inside one, the seed switches it on
//!   for a run in four, and it then fires one time in four ([`AppPoints`]).
//! - **The repository's `driver-sim/tests/counter.rs`** is a worked example. It is an
//!   increment service that must apply each increment exactly once through client retries,
//!   swept over 1,000 seeds under every fault family. It carries two planted bugs the sweep
//!   finds.
//!
//! What to know when you write one:
//!
//! - **What a reconnecting client promises.** With [`ReconnectPolicy`](tcpclient_core::ReconnectPolicy)'s
//!   `replay_unacknowledged`, what your protocol did not acknowledge goes again on the next
//!   connection, whole messages in order. That is at least once, not exactly once:
//!   - the server may have processed a message whose answer was lost, and gets it again;
//!   - `Event::Reconnected`'s `replays_from` says where the new stream starts;
//!   - exactly once needs request ids the server remembers, as the counter example does.
//! - **Dead peers under turmoil.** turmoil has no retransmission, no keepalive and no
//!   `TCP_USER_TIMEOUT`: a held or partitioned link holds or drops what is sent. Only the
//!   core's own deadlines end such a connection: `connect_timeout`, `stall_timeout`,
//!   `idle_timeout` and `drain_timeout`. Set them to seconds in a simulated test, so that
//!   every run ends in bounded simulated time.
//! - **Comparing runs.** A close report's times are offsets from its client's start, so two
//!   runs of one seed give equal reports. Compare reports, traces ([`Trace::hash`]) and
//!   records. Do not compare the `Debug` text of anything that holds an `Instant`.
//! - **The connection's type.** A simulated connection is [`SimConnection`], the tokio
//!   driver's `Connection` with the simulator's observer. Code shared with production takes
//!   `tcpclient_tokio::Connection<O>` for any `O: tcpclient_tokio::Observer`, or the
//!   `AsyncRead + AsyncWrite` it is.
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
//!
//! - **Where a run's time goes.** turmoil 0.7 runs every host's runtime on every step, whether
//!   it has work or not: about 1 µs per host per step, so a run costs roughly its simulated
//!   time over the step, times the hosts. A 3.5 s request/response run of two hosts at the
//!   default 1 ms step runs about 100 times a second on one core in release, three quarters
//!   of that time turmoil's own stepping (the project's `stepping` benchmark measures both).
//!   [`Harness::tick`] lengthens the step: fewer steps, messages handed over at coarser
//!   instants, timers unchanged. (This project's own workspace builds turmoil and tokio with
//!   a patch that skips the hosts with nothing to do in a step, with the same runs: the same
//!   protocol runs about 440 times a second there. It is meant for turmoil and tokio
//!   upstream.)
#![deny(unsafe_code)]
#![deny(missing_docs)]

mod app_points;
mod buggify;
mod certificates;
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
mod shrink_plan;
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
pub use seeds::{SEED_VAR, SEEDS_VAR, Seeds, parse_seeds};
/// The JSON values of [`Trace::note`], re-exported so that a test needs no `serde_json` of
/// its own.
pub use serde_json;
pub use servers::{FLOOD_BYTES, PORT, ServerKind, ServerLog, SharedLog, serve, server};
pub use shrink::{Shrunk, shrink, shrink_while, to_rust};
pub use shrink_plan::{ShrunkPlan, Workload, shrink_plan};
pub use swarm::{FaultFamily, Swarm};
pub use tcpclient_core::SplitMix;
pub use tcpclient_tokio::DriverEnd;
pub use trace::{Trace, fnv1a};
/// The simulator this crate runs on, re-exported: build simulations with
/// `tcpclient_sim::turmoil::Builder`, so that they are of the turmoil version this crate's
/// clients can reach ([`TURMOIL_VERSION`]).
pub use turmoil;
pub use wire::{Listener, ServerStream, Wire};
