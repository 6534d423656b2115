//! Test harness for tcpclient: a hand-advanced clock, an in-memory server (plaintext or
//! rustls), real loopback servers, certificates from rcgen, the operation decoder shared by
//! the proptest suite, the fuzz targets and the corpus replay, and the one invariant monitor
//! ([`Monitor`]) that they and the simulator feed.
#![deny(missing_docs)]

mod differential;
mod harness;
mod keys;
pub mod loopback;
mod monitor;
mod pair;
mod peer;
mod pki;
pub mod process;
mod scenario;
mod session;
mod world;

pub use differential::{ALLOWED, Comparison, Difference, Ending, tls_records};
pub use harness::{Harness, Kernel, closed, connect, epoch, events};
pub use monitor::{ConnectionMonitor, Monitor};
pub use pair::Pair;
pub use peer::Server;
pub use pki::{Leaf, Pki, SelfSigned, local, server_name};
pub use scenario::{MAX_OPS, Misuse, Op, Scenario, Setup};
pub use session::{
    PREAMBLE, PolicyKnobs, SessionMonitor, SessionOp, SessionOutcome, SessionScenario, reconnect,
    run_session,
};
pub use world::{Outcome, Violation, check, lifecycle, run, server_bytes};
