//! Test harness for tcpclient: a hand-advanced clock, an in-memory server (plaintext or
//! rustls), real loopback servers, certificates from rcgen, the operation decoder shared by
//! the proptest suite, the fuzz targets and the corpus replay. The one invariant monitor they
//! and the simulator feed ([`Monitor`]) is the core's (its `monitor` feature), re-exported.
#![deny(missing_docs)]

mod differential;
mod harness;
mod keys;
pub mod loopback;
mod pair;
mod peer;
mod pki;
pub mod process;
mod scenario;
mod session;
mod world;

pub use differential::{ALLOWED, Comparison, Difference, Ending, tls_records};
pub use harness::{Harness, Kernel, closed, connect, epoch, events};
pub use pair::Pair;
pub use peer::Server;
pub use pki::{Leaf, Pki, SelfSigned, local, server_name};
pub use scenario::{MAX_OPS, Misuse, Op, Scenario, Setup};
pub use session::{
    PREAMBLE, PolicyKnobs, SessionOp, SessionOutcome, SessionScenario, reconnect, run_session,
};
pub use tcpclient_core::monitor::{ConnectionMonitor, Monitor, SessionMonitor, Step};
pub use world::{Outcome, Violation, check, lifecycle, run, server_bytes};
